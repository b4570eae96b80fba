//! The error of every job.

use std::path::PathBuf;

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
