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

/// An input the user gave that cannot be used (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);
