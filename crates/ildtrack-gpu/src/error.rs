//! The crate's error type.

/// Everything that can go wrong on the GPU side. Messages: facts first, lower case.
#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    /// No adapter matched (none installed, or only a software one and `allow_software` is false).
    #[error("no usable wgpu adapter: {0}")]
    NoAdapter(String),
    /// The adapter refused to create a device.
    #[error("device request failed on {adapter}: {reason}")]
    RequestDevice { adapter: String, reason: String },
    /// A validation, out-of-memory or internal error reported by wgpu.
    #[error("wgpu reported an error in {op}: {reason}")]
    Device { op: String, reason: String },
    /// A buffer mapping failed.
    #[error("mapping a {bytes}-byte buffer failed: {reason}")]
    Map { bytes: u64, reason: String },
    /// A volume or window does not fit the device limits.
    #[error("{what} needs {needed_bytes} bytes, the device allows {limit_bytes}")]
    TooLarge {
        what: String,
        needed_bytes: u64,
        limit_bytes: u64,
    },
    /// A caller passed something inconsistent (shape mismatch, bad radius, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// An iterative kernel did not converge.
    #[error("{kernel} did not converge after {iterations} iterations")]
    NoConvergence {
        kernel: &'static str,
        iterations: u32,
    },
}

impl From<GpuError> for ildtrack_compute::ComputeError {
    fn from(e: GpuError) -> Self {
        match e {
            GpuError::TooLarge { .. } => ildtrack_compute::ComputeError::OutOfMemory(e.to_string()),
            GpuError::InvalidArgument(m) => ildtrack_compute::ComputeError::InvalidArgument(m),
            other => ildtrack_compute::ComputeError::Device(other.to_string()),
        }
    }
}
