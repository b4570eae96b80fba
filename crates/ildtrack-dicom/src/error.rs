//! The crate's error type.

use std::path::PathBuf;

/// Why an input could not be loaded. Every variant names the file or folder it is about
/// (facts first, path last). See [`LoadError::is_unusable_input`] for the exit-code split.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("input does not exist: {}", path.display())]
    NotFound { path: PathBuf },

    #[error("cannot read ({source}): {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("file is empty (0 bytes): {}", path.display())]
    EmptyFile { path: PathBuf },

    #[error("file is truncated ({detail}): {}", path.display())]
    Truncated { path: PathBuf, detail: String },

    #[error("not a readable DICOM file ({reason}): {}", path.display())]
    InvalidDicom { path: PathBuf, reason: String },

    #[error("unusable DICOM header ({reason}): {}", path.display())]
    BadHeader { path: PathBuf, reason: String },

    #[error("cannot decode pixel data ({reason}): {}", path.display())]
    PixelData { path: PathBuf, reason: String },

    #[error("image too large ({detail}): {}", path.display())]
    TooLarge { path: PathBuf, detail: String },

    #[error("no DICOM files found ({detail}): {}", path.display())]
    NoDicom { path: PathBuf, detail: String },

    #[error("no usable CT series ({detail}): {}", path.display())]
    NoUsableSeries { path: PathBuf, detail: String },

    #[error("series {uid} not found ({detail}): {}", path.display())]
    SeriesNotFound {
        path: PathBuf,
        uid: String,
        detail: String,
    },

    #[error("cannot assemble a volume ({detail}): {}", path.display())]
    Assembly { path: PathBuf, detail: String },

    #[error("unusable DICOMDIR ({detail}): {}", path.display())]
    DicomDir { path: PathBuf, detail: String },

    #[error("invalid NIfTI file ({reason}): {}", path.display())]
    Nifti { path: PathBuf, reason: String },

    #[error("invalid or unsupported NRRD file ({reason}): {}", path.display())]
    Nrrd { path: PathBuf, reason: String },

    #[error("DICOM output (--dicom-out) needs a DICOM source; a {format} input has no source images to reference: {}", path.display())]
    DicomOutNeedsDicom { path: PathBuf, format: String },

    #[error("cannot write ({source}): {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("cannot write ({reason}): {}", path.display())]
    WriteInvalid { path: PathBuf, reason: String },

    #[error("internal error ({detail}): {}", path.display())]
    Internal { path: PathBuf, detail: String },
}

impl LoadError {
    /// `true` when the input itself is at fault (missing, unreadable, malformed, no usable CT):
    /// the CLI exits with code 2. `false` for our own failures (writing outputs, bugs): code 1.
    pub fn is_unusable_input(&self) -> bool {
        !matches!(
            self,
            LoadError::Write { .. } | LoadError::WriteInvalid { .. } | LoadError::Internal { .. }
        )
    }

    /// The file or folder the error is about.
    pub fn path(&self) -> &std::path::Path {
        match self {
            LoadError::NotFound { path }
            | LoadError::Io { path, .. }
            | LoadError::EmptyFile { path }
            | LoadError::Truncated { path, .. }
            | LoadError::InvalidDicom { path, .. }
            | LoadError::BadHeader { path, .. }
            | LoadError::PixelData { path, .. }
            | LoadError::TooLarge { path, .. }
            | LoadError::NoDicom { path, .. }
            | LoadError::NoUsableSeries { path, .. }
            | LoadError::SeriesNotFound { path, .. }
            | LoadError::Assembly { path, .. }
            | LoadError::DicomDir { path, .. }
            | LoadError::Nifti { path, .. }
            | LoadError::Nrrd { path, .. }
            | LoadError::DicomOutNeedsDicom { path, .. }
            | LoadError::Write { path, .. }
            | LoadError::WriteInvalid { path, .. }
            | LoadError::Internal { path, .. } => path,
        }
    }
}
