//! What can go wrong in an analysis.

use ildtrack_compute::ComputeError;

#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    #[error("compute backend failed: {0}")]
    Compute(#[from] ComputeError),
    #[error("invalid analysis config: {0}")]
    Config(String),
    #[error("invalid input volume: {0}")]
    InvalidInput(String),
}
