//! The real CT series of the project's shared data folder (`../shared/data`, see its
//! `PROVENANCE.md`), by name: the one list the golden test, the accuracy tests and the
//! evaluation examples all use.

use std::path::{Path, PathBuf};

/// `../shared/data` seen from the workspace root of a crate at `manifest_dir`
/// (`crates/<name>`), when present.
pub fn dir(manifest_dir: &Path) -> Option<PathBuf> {
    let d = manifest_dir.join("../../../shared/data");
    d.is_dir().then_some(d)
}

/// [`dir`] for a test: when the folder is absent the test says "skipped" and gets `None` —
/// except under CI (`CI=true`), where a missing folder is a broken checkout and the test fails
/// (a skipped real-data test must not pass for a tested one).
pub fn for_test(manifest_dir: &Path) -> Option<PathBuf> {
    let d = dir(manifest_dir);
    if d.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but ../shared/data (the real CT data) is missing next to the checkout"
        );
        eprintln!("skipped: ../shared/data not found");
    }
    d
}

/// Every CT series under `data` that analysis takes: the Lung-PET-CT-Dx kernel pairs, the LIDC
/// slice and each COVID-19-NY-SBU slice, as (name, path), in a fixed order. Paths may be
/// missing on disk when the folder is incomplete.
pub fn ct_series(data: &Path) -> Vec<(String, PathBuf)> {
    let mut inputs: Vec<(String, PathBuf)> = [
        "A0001-kernel-L",
        "A0001-kernel-B",
        "A0002-kernel-B70f",
        "A0002-kernel-B40f",
    ]
    .iter()
    .map(|k| (k.to_string(), data.join("lung-pet-ct-dx").join(k)))
    .collect();
    inputs.push((
        "lidc-slice".into(),
        data.join("lungmask-slice/lidc-slice.dcm"),
    ));
    let list = |d: PathBuf| -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(d)
            .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        v.sort();
        v
    };
    let stem = |q: &Path| q.file_stem().map(|n| n.to_string_lossy().to_string());
    for p in list(data.join("covid-ny-sbu")) {
        for f in list(p.join("axial")) {
            if let (Some(a), Some(b)) = (stem(&p), stem(&f)) {
                inputs.push((format!("covid-{a}-{b}"), f));
            }
        }
    }
    inputs
}

#[cfg(test)]
mod for_test_tests {
    use super::*;

    #[test]
    fn a_missing_data_folder_skips_outside_ci_and_fails_under_it() {
        let r = std::panic::catch_unwind(|| for_test(Path::new("/nonexistent/crates/x")));
        if std::env::var("CI").as_deref() == Ok("true") {
            assert!(r.is_err(), "under CI a missing folder must fail the test");
        } else {
            assert_eq!(r.ok().flatten(), None);
        }
    }
}
