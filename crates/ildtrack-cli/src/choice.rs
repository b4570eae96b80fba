//! Types the argument parser and the backend selection share.

use clap::ValueEnum;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendChoice {
    /// A real GPU when one exists, otherwise the CPU (software adapters count as no GPU).
    Auto,
    Cpu,
    /// wgpu; software adapters (llvmpipe/lavapipe) are accepted.
    Gpu,
}

/// `--format`: the file format of the label maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatChoice {
    /// `lungs.nii.gz`, `classes.nii.gz`.
    Nifti,
    /// `lungs.nrrd`, `classes.nrrd` and `segmentation.seg.nrrd` (opens in 3D Slicer with named,
    /// coloured segments).
    Nrrd,
}

impl From<FormatChoice> for ildtrack_app::LabelFormat {
    fn from(f: FormatChoice) -> Self {
        match f {
            FormatChoice::Nifti => ildtrack_app::LabelFormat::Nifti,
            FormatChoice::Nrrd => ildtrack_app::LabelFormat::Nrrd,
        }
    }
}

/// An input the user gave that cannot be used (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);
