//! The real CT series of the project's shared data folder (`../shared/data`, see its
//! `PROVENANCE.md`), by name: the one list the golden test, the accuracy tests and the
//! evaluation examples all use; and the test venv's Python ([`tools_python_for_test`]).

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

/// The Python of the test venv that `scripts/setup.sh` makes (`.venv-tools/` at the workspace
/// root, or `ILDTRACK_TOOLS_PYTHON`), when it imports every module in `modules`: tests run
/// software outside this project (SimpleITK, pynrrd, highdicom) through it. Absent, the test
/// says "skipped" and gets `None` — except under CI (`CI=true`), where it fails: the set-up
/// script installs the venv, so a missing one is a broken machine, not a reason to pass.
pub fn tools_python_for_test(manifest_dir: &Path, modules: &[&str]) -> Option<PathBuf> {
    let py = std::env::var_os("ILDTRACK_TOOLS_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest_dir.join("../../.venv-tools/bin/python"));
    let imports = format!("import {}", modules.join(", "));
    let ok = std::process::Command::new(&py)
        .args(["-c", &imports])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if ok {
        return Some(py);
    }
    let why = format!(
        "{} cannot `{imports}` (scripts/setup.sh makes the test venv .venv-tools)",
        py.display()
    );
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true but {why}"
    );
    eprintln!("skipped: {why}");
    None
}

/// A command-line tool from a system package the set-up script installs (e.g. `dciodvfy` of
/// dicom3tools), when it runs: absent, the test says "skipped" and gets `None`, except under
/// CI (`CI=true`), where it fails. `probe` are arguments that make the tool run and exit
/// (its exit code is not judged: some tools exit non-zero on a usage message).
pub fn tool_for_test(name: &str, probe: &[&str]) -> Option<PathBuf> {
    let runs = std::process::Command::new(name)
        .args(probe)
        .output()
        .is_ok();
    if runs {
        return Some(PathBuf::from(name));
    }
    let why = format!("{name} is not installed (scripts/setup.sh installs it)");
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true but {why}"
    );
    eprintln!("skipped: {why}");
    None
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

    #[test]
    fn a_missing_tools_python_skips_outside_ci_and_fails_under_it() {
        let r = std::panic::catch_unwind(|| {
            tools_python_for_test(Path::new("/nonexistent/crates/x"), &["json"])
        });
        if std::env::var_os("ILDTRACK_TOOLS_PYTHON").is_some() {
            return; // the override points at a real Python: nothing missing to test
        }
        if std::env::var("CI").as_deref() == Ok("true") {
            assert!(r.is_err(), "under CI a missing venv must fail the test");
        } else {
            assert_eq!(r.ok().flatten(), None);
        }
    }
}
