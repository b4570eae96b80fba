//! Workspace-wide architecture rules that no single crate's tests can see.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn no_file_level_import_circles() {
    let script = root().join("scripts/import_cycles.py");
    // The checker first proves it can find a circle (its self-test), then checks the tree.
    for args in [vec!["--self-test"], vec![]] {
        let out = Command::new("python3")
            .arg(&script)
            .args(&args)
            .current_dir(root())
            .output()
            .expect("python3 runs scripts/import_cycles.py");
        assert!(
            out.status.success(),
            "import_cycles.py {args:?}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn analysis_source_files_stay_small() {
    // A newcomer should be able to read any one file of the analysis: ~700 lines at most,
    // tests (`*_tests.rs`, `tests/`) excepted.
    let mut stack = vec![root().join("crates/ildtrack-analysis/src")];
    let mut big = Vec::new();
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read src").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs")
                && !p.to_string_lossy().ends_with("_tests.rs")
            {
                let n = std::fs::read_to_string(&p).expect("read").lines().count();
                if n > 720 {
                    big.push(format!("{} ({n} lines)", p.display()));
                }
            }
        }
    }
    assert!(big.is_empty(), "too large: {big:?}");
}
