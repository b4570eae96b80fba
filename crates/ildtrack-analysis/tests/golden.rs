//! The regression baseline: what `analyze` produces today, pinned.
//!
//! For every phantom preset (half grid), ten large-consolidation placements (half grid) and
//! every real series in ../shared/data, `tests/golden/*.tsv` holds a hash of the lung label map,
//! of the class map and of the `visit.json` content (everything but timings, backend and
//! version), with a few headline figures to read a difference by. A change of behaviour updates
//! the table on purpose (`GOLDEN_UPDATE=1 cargo test -p ildtrack-analysis --test golden`), and
//! the commit says what moved and why.

mod common;

use common::{analyze_default, analyze_path};
use ildtrack_analysis::Analysis;
use ildtrack_phantom::eval::{consolidation_placements, half_grid, one_lesion};
use ildtrack_phantom::{PhantomSpec, try_generate};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn hash(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    d.iter().take(12).map(|b| format!("{b:02x}")).collect()
}

/// One table row: case name → tab-separated hashes and figures.
fn row(a: &Analysis) -> String {
    let mut v = serde_json::to_value(&a.result).expect("visit.json serialises");
    if let Some(o) = v.as_object_mut() {
        for k in ["timings_ms", "backend", "backend_device", "version"] {
            o.remove(k);
        }
    }
    let metrics = serde_json::to_string(&v).expect("json");
    let l = &a.result.lungs;
    let mut codes: Vec<&str> = a.result.warnings.iter().map(|w| w.code.as_str()).collect();
    codes.sort_unstable();
    codes.dedup();
    format!(
        "{}\t{}\t{}\t{:.1}\t{:.1}\t{:.2}\t{:.2}\t{}",
        hash(a.lungs.data.as_slice().expect("standard layout")),
        hash(a.classes.data.as_slice().expect("standard layout")),
        hash(metrics.as_bytes()),
        l.right.volume_ml,
        l.left.volume_ml,
        l.whole.ggo_pct,
        l.whole.consolidation_pct,
        if codes.is_empty() {
            "-".to_string()
        } else {
            codes.join(",")
        }
    )
}

const HEADER: &str =
    "case\tlungs\tclasses\tvisit_json\tright_ml\tleft_ml\tggo_pct\tconsolidation_pct\twarnings";

fn table_path(group: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{group}.tsv"))
}

/// Compares `rows` with the committed table of `group` (or rewrites it with GOLDEN_UPDATE=1).
/// With `may_be_missing`, table rows not produced are skipped (real data not present).
fn check(group: &str, rows: BTreeMap<String, String>, may_be_missing: bool) {
    let path = table_path(group);
    if std::env::var_os("GOLDEN_UPDATE").is_some() {
        let mut text = format!("{HEADER}\n");
        for (k, v) in &rows {
            text.push_str(&format!("{k}\t{v}\n"));
        }
        ildtrack_fs::write_atomic(&path, text.as_bytes()).expect("write golden table");
        eprintln!("golden: {} rewritten ({} rows)", path.display(), rows.len());
        return;
    }
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (GOLDEN_UPDATE=1 writes it)", path.display()));
    let mut want = BTreeMap::new();
    for line in text.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let (k, v) = line.split_once('\t').expect("case<TAB>row");
        want.insert(k.to_string(), v.to_string());
    }
    let mut diffs = Vec::new();
    for (k, w) in &want {
        match rows.get(k) {
            Some(g) if g == w => {}
            Some(g) => diffs.push(format!("{k}\n  was {w}\n  now {g}")),
            None if may_be_missing => eprintln!("golden {group}: {k} skipped (input absent)"),
            None => diffs.push(format!("{k}: not produced")),
        }
    }
    for k in rows.keys().filter(|k| !want.contains_key(*k)) {
        diffs.push(format!("{k}: not in the table"));
    }
    assert!(
        diffs.is_empty(),
        "golden {group} differs ({HEADER}):\n{}",
        diffs.join("\n")
    );
}

fn run(ph: &ildtrack_phantom::Phantom) -> Analysis {
    analyze_default(&ph.volume, &ph.meta, &[])
}

#[test]
fn golden_phantom_presets() {
    let mut rows = BTreeMap::new();
    for name in ildtrack_phantom::PRESETS {
        let spec = PhantomSpec::preset(name).expect("preset");
        let ph = try_generate(&half_grid(spec)).unwrap_or_else(|e| panic!("{name}: {e}"));
        rows.insert(name.to_string(), row(&run(&ph)));
    }
    check("presets", rows, false);
}

#[test]
fn golden_consolidation_placements() {
    let mut rows = BTreeMap::new();
    for (name, lesion) in consolidation_placements() {
        let spec = one_lesion(lesion);
        let ph = try_generate(&spec).unwrap_or_else(|e| panic!("{name}: {e}"));
        rows.insert(name.to_string(), row(&run(&ph)));
    }
    check("placements", rows, false);
}

#[test]
fn golden_real_series() {
    let Some(data) = ildtrack_dicom::shared_data::for_test(Path::new(env!("CARGO_MANIFEST_DIR")))
    else {
        return;
    };
    let mut rows = BTreeMap::new();
    for (name, path) in ildtrack_dicom::shared_data::ct_series(&data) {
        if !path.exists() {
            continue;
        }
        rows.insert(name, row(&analyze_path(&path)));
    }
    check("real", rows, true);
}
