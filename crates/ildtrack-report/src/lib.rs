//! Reports: one visit's `report.html`, the longitudinal `index.html`, and the visit pipeline
//! the CLI calls (`analyze`, `track`, `demo`).
//!
//! Every HTML page is a single self-contained file: PNGs embedded as base64 data URIs, charts
//! as inline SVG, CSS inline with print rules, no script and no network (a Content-Security-Policy
//! forbids both). Every string that came from a DICOM header goes through [`html::esc`]. Patient
//! name and ID appear only with [`ReportOptions::identify`].
//!
//! - [`render_visit_html`] / [`VisitPage`]: header with study facts, verdict, warnings, three
//!   axial and one coronal QC image beside the previous visit's, metrics by lung / side /
//!   subpleural / core / zone, six-zone extent diagram, HU histogram over the previous visit's,
//!   version and thresholds.
//! - [`render_index_html`] / [`IndexPage`]: latest verdict in words, visits table, trend charts
//!   against days from day 0 (affected %, GGO %, consolidation %, HAA %, MLD, lung volume,
//!   FVC / DLCO), six-zone diagrams over time, verdicts and warnings visit by visit.
//! - [`write_atomic`]: every output is written to a temporary file in the same folder, then renamed.
//!
//! Architecture Invariant: rendering is pure (values in, `String` out); only [`write_atomic`]
//! and the `pipeline` module touch the file system.

pub mod html;
pub mod pipeline;
pub mod svg;

mod atomic;
mod render;

pub use atomic::write_atomic;
pub use render::{
    IndexPage, PreviousVisit, QcImage, ReportOptions, VisitPage, render_index_html,
    render_visit_html,
};

use std::path::PathBuf;

/// Errors of report writing and the visit pipeline.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
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

impl ReportError {
    /// The user's input cannot be used (CLI exit code 2), as opposed to a failure of ours or
    /// of the machine.
    pub fn is_unusable_input(&self) -> bool {
        match self {
            ReportError::Load(e) => e.is_unusable_input(),
            ReportError::Manifest { .. } => true,
            ReportError::Track(e) => !matches!(e, ildtrack_track::TrackError::Serialise(_)),
            ReportError::Analysis(
                ildtrack_analysis::AnalysisError::InvalidInput(_)
                | ildtrack_analysis::AnalysisError::Config(_),
            ) => true,
            ReportError::Io { action, .. } => {
                action.starts_with("reading") || action.starts_with("listing")
            }
            _ => false,
        }
    }
}
