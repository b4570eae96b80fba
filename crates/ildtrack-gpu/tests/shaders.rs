//! Every WGSL kernel parses and validates with naga (no GPU needed).

use std::collections::BTreeSet;

/// `None` when `src` parses, validates and has an entry point; else the error text.
fn check(name: &str, src: &str) -> Option<String> {
    let module = match naga::front::wgsl::parse_str(src) {
        Ok(m) => m,
        Err(e) => {
            return Some(format!(
                "{name}.wgsl: parse error:\n{}",
                e.emit_to_string(src)
            ));
        }
    };
    let mut v = naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::default(),
    );
    if let Err(e) = v.validate(&module) {
        return Some(format!(
            "{name}.wgsl: validation error:\n{}",
            e.emit_to_string(src)
        ));
    }
    if module.entry_points.is_empty() {
        return Some(format!("{name}.wgsl: no entry point"));
    }
    None
}

#[test]
fn every_shader_parses_and_validates() {
    assert!(
        ildtrack_gpu::SHADERS.len() >= 20,
        "shader table looks truncated"
    );
    let failures: Vec<String> = ildtrack_gpu::SHADERS
        .iter()
        .filter_map(|(n, s)| check(n, s))
        .collect();
    assert!(
        failures.is_empty(),
        "{} shader(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn the_validator_rejects_broken_shaders() {
    let common = ildtrack_gpu::shader_source("fill_u8").unwrap_or_default();
    // A type error (u32 + i32), an unknown identifier, a function without its return.
    let bad = [
        "@compute @workgroup_size(1) fn main() { let a = 1u + 1i; }",
        "@compute @workgroup_size(1) fn main() { let a = nope; }",
        "fn helper() -> u32 { let x = 1u; }",
    ];
    for b in bad {
        assert!(
            check("bad", &format!("{common}\n{b}")).is_some(),
            "accepted: {b}"
        );
    }
    assert!(check("good", common).is_none());
}

#[test]
fn every_wgsl_file_is_in_the_table() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shaders");
    let on_disk: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".wgsl"))
                .map(str::to_string)
        })
        // Preludes, prepended to kernels rather than kernels of their own.
        .filter(|n| !matches!(n.as_str(), "common" | "counters" | "pages"))
        .collect();
    let in_table: BTreeSet<String> = ildtrack_gpu::SHADERS
        .iter()
        .map(|(n, _)| n.to_string())
        .collect();
    assert_eq!(
        on_disk, in_table,
        "shaders/*.wgsl and ildtrack_gpu::SHADERS differ"
    );
}
