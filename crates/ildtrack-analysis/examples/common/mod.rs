//! What the evaluation examples share: running `analyze` with the default settings, the
//! warning codes of a result, the commit, and `--name value` arguments.

#![allow(dead_code)]

use ildtrack_analysis::{Analysis, AnalysisConfig, analyze};
use ildtrack_compute::CpuBackend;
use ildtrack_volume::{ScanMeta, Volume, Warning};

/// `analyze` on the CPU backend with the default settings; panics with the error.
pub fn run(vol: &Volume<i16>, meta: &ScanMeta, warnings: &[Warning]) -> Analysis {
    analyze(
        &CpuBackend::new(),
        vol,
        meta,
        warnings,
        &AnalysisConfig::default(),
        &|_, _| {},
    )
    .unwrap_or_else(|e| panic!("analyze: {e}"))
}

/// The result carries a warning with `code`.
pub fn has_warning(a: &Analysis, code: &str) -> bool {
    a.result.warnings.iter().any(|w| w.code == code)
}

/// The result's warning codes, sorted, once each; "–" when there are none.
pub fn codes(a: &Analysis) -> String {
    let mut c: Vec<&str> = a.result.warnings.iter().map(|w| w.code.as_str()).collect();
    c.sort_unstable();
    c.dedup();
    if c.is_empty() {
        "–".into()
    } else {
        c.join(", ")
    }
}

/// The checked-out commit (short hash), empty when git is not there.
pub fn commit() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// The value after `name` in `args`.
pub fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}
