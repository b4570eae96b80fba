//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong generating or writing a phantom. Messages: facts first, path last.
#[derive(Debug, thiserror::Error)]
pub enum PhantomError {
    #[error("invalid phantom spec: {0}")]
    InvalidSpec(String),
    #[error("invalid write option: {0}")]
    InvalidOption(String),
    #[error("i/o error: {source}: {}", path.display())]
    Io {
        #[source]
        source: std::io::Error,
        path: PathBuf,
    },
    #[error("dicom encoding failed: {message}: {}", path.display())]
    Dicom { message: String, path: PathBuf },
    #[error("internal error: {0}")]
    Internal(String),
}
