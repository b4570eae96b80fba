//! The jobs the CLI runs: `analyze` one visit, `track` a patient's visits, `demo`. This crate
//! ties the others together: it loads (`ildtrack-dicom`), analyses (`ildtrack-analysis`), writes
//! label maps and QC pictures, judges the follow-up (`ildtrack-track`), renders the pages
//! (`ildtrack-report`) and writes every file atomically (`ildtrack-fs`).
//!
//! - [`analyze_to_dir`] (module `visit`): load → analyze → `visit.json`, `lungs.nii.gz`,
//!   `classes.nii.gz`, QC PNGs, `report.html`.
//! - [`track`] (module `track`): every visit of a [`Manifest`] analysed with the same settings
//!   (each analysis cached by content under `<out>/.ildtrack-cache/<key>/` (module `cache`), the
//!   key hashing the input files' paths and bytes, the analysis settings and the software
//!   version), then `track.json`, `track.csv`, `visits/<date>/` (outputs + `report.html`) and
//!   `index.html`.
//! - [`demo`] (module `demo`): the scripted demo patient written as DICOM by `ildtrack-phantom`,
//!   then tracked.
//!
//! Architecture Invariant: every output file is written to a temporary file and renamed
//! (`ildtrack_fs`); a cache entry is filled in a temporary folder and renamed into place.

mod cache;
mod demo;
mod manifest;
mod track;
mod visit;

pub use cache::cache_key;
pub use demo::{demo, demo_mismatches, demo_with};
pub use manifest::{Manifest, VisitInput};
pub use track::{TrackOutcome, track, track_detailed};
pub use visit::{QC_FILES, VisitOutputs, analyze_to_dir, visit_summary};

use ildtrack_analysis::AnalysisConfig;
use ildtrack_track::TrackConfig;
use std::path::{Path, PathBuf};

/// Errors of the visit pipeline.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{action} failed: {source}: {}", path.display())]
    Io {
        action: &'static str,
        #[source]
        source: std::io::Error,
        path: PathBuf,
    },
    #[error(transparent)]
    Load(#[from] ildtrack_dicom::LoadError),
    #[error("analysis failed: {0}")]
    Analysis(#[from] ildtrack_analysis::AnalysisError),
    #[error(transparent)]
    Track(#[from] ildtrack_track::TrackError),
    #[error("invalid manifest ({reason}): {}", path.display())]
    Manifest { reason: String, path: PathBuf },
    #[error("{0}")]
    Other(String),
}

impl AppError {
    /// The user's input cannot be used (CLI exit code 2), as opposed to a failure of ours or
    /// of the machine.
    pub fn is_unusable_input(&self) -> bool {
        match self {
            AppError::Load(e) => e.is_unusable_input(),
            AppError::Manifest { .. } => true,
            AppError::Track(e) => !matches!(e, ildtrack_track::TrackError::Serialise(_)),
            AppError::Analysis(
                ildtrack_analysis::AnalysisError::InvalidInput(_)
                | ildtrack_analysis::AnalysisError::Config(_),
            ) => true,
            AppError::Io { action, .. } => {
                action.starts_with("reading") || action.starts_with("listing")
            }
            _ => false,
        }
    }
}

/// Progress callback: `(stage, fraction 0..=1 of the whole job)`.
pub type Progress<'a> = &'a dyn Fn(&str, f32);

/// Settings of `analyze`, `track` and `demo`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AnalyzeOptions {
    /// Density thresholds, segmentation parameters, age preset.
    pub config: AnalysisConfig,
    /// Analyse this SeriesInstanceUID instead of the automatic choice (single-visit `analyze`).
    pub series_uid: Option<String>,
    /// Show patient name and ID in the reports (`--identify`).
    pub identify: bool,
    /// The verdict rule and protocol tolerances (`track`); a manifest's `[rule]` overrides it.
    pub track: TrackConfig,
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> AppError + use<> {
    let path = path.to_path_buf();
    move |source| AppError::Io {
        action,
        source,
        path,
    }
}

fn create_dir(dir: &Path) -> Result<(), AppError> {
    std::fs::create_dir_all(dir).map_err(io_err("creating folder", dir))
}

/// [`ildtrack_fs::write_atomic`] with the error naming the file.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), AppError> {
    ildtrack_fs::write_atomic(path, bytes).map_err(io_err("writing", path))
}

#[cfg(test)]
mod tests {
    /// The analysis writes its own class codes into `classes.nii.gz`; the report colours the QC
    /// pictures by the model's. They must be the same numbers.
    #[test]
    fn analysis_class_codes_are_the_model_codes() {
        use ildtrack_analysis::stats::class as a;
        use ildtrack_model::class as m;
        assert_eq!(
            [
                a::OUTSIDE,
                a::LAA,
                a::NORMAL,
                a::GGO,
                a::CONSOLIDATION,
                a::VESSEL_DENSE
            ],
            [
                m::OUTSIDE,
                m::LAA,
                m::NORMAL,
                m::GGO,
                m::CONSOLIDATION,
                m::VESSEL_DENSE
            ]
        );
        assert_eq!(a::COUNT, m::COUNT);
    }
}
