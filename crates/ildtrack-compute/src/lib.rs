//! The compute backend: every voxel kernel the analysis uses, behind one trait.
//!
//! [`Backend`] hands out opaque volume handles (one associated type per element type), so a GPU
//! implementation can keep volumes on the device between kernels: the analysis uploads once,
//! chains kernels on handles and downloads only results. No kernel takes a per-voxel callback.
//!
//! `CpuBackend` (rayon) is the reference: every kernel of every other backend is tested
//! against it (`..._should_match_reference_backend`).
//!
//! STATUS: the trait below is the starting contract; the compute/analysis work owns and may
//! extend it (every addition needs a CPU reference and, later, a WGSL twin).

use ndarray::Array3;

pub type Result<T> = std::result::Result<T, ComputeError>;

#[derive(Debug, thiserror::Error)]
pub enum ComputeError {
    #[error("volume shapes differ: {0:?} vs {1:?}")]
    ShapeMismatch([usize; 3], [usize; 3]),
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("device error: {0}")]
    Device(String),
    #[error("out of device memory: {0}")]
    OutOfMemory(String),
}

/// Something with a `(z, y, x)` shape that lives on a backend.
pub trait VolumeHandle: Send + Sync {
    fn dims_zyx(&self) -> [usize; 3];
}
