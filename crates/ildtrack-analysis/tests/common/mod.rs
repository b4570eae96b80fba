//! What the analysis' test binaries share: `analyze` on the CPU backend, from a volume or a path.

#![allow(dead_code)]

use ildtrack_analysis::{Analysis, AnalysisConfig, analyze};
use ildtrack_compute::CpuBackend;
use ildtrack_volume::{ScanMeta, Volume, Warning};
use std::path::Path;

/// `analyze` on the CPU backend with `cfg`; panics with the error.
pub fn analyze_with(
    vol: &Volume<i16>,
    meta: &ScanMeta,
    warnings: &[Warning],
    cfg: &AnalysisConfig,
) -> Analysis {
    analyze(&CpuBackend::new(), vol, meta, warnings, cfg, &|_, _| {})
        .unwrap_or_else(|e| panic!("analyze: {e}"))
}

/// `analyze` with the default settings.
pub fn analyze_default(vol: &Volume<i16>, meta: &ScanMeta, warnings: &[Warning]) -> Analysis {
    analyze_with(vol, meta, warnings, &AnalysisConfig::default())
}

/// Loads `p` and analyses it with the default settings.
pub fn analyze_path(p: &Path) -> Analysis {
    let s = ildtrack_dicom::load(p, &ildtrack_dicom::LoadOptions::default())
        .unwrap_or_else(|e| panic!("load {}: {e}", p.display()));
    analyze_default(&s.volume, &s.meta, &s.warnings)
}
