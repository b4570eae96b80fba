//! The registration's settings and errors (the bottom of the crate: imports nothing of it).

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("cannot register: {0}")]
    Orientation(String),
    #[error("cannot register: the {0} lung mask is empty")]
    EmptyMask(&'static str),
    #[error("cannot register: {0}")]
    Invalid(String),
    #[error("registration kernel failed: {0}")]
    Compute(#[from] ildtrack_compute::ComputeError),
}

/// Settings of the registration (defaults: ConvexAdam's lung settings adapted to millimetres).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegisterConfig {
    /// Working grid spacing (isotropic), mm.
    pub working_mm: f64,
    /// Margin around the baseline's lungs that the working grid covers, mm.
    pub margin_mm: f64,
    /// Cell of the discrete search, in working voxels.
    pub cell: usize,
    /// Search range of the discrete step, in cells each way.
    pub search_cells: i64,
    /// Coupling weights of the convex step, relative to the cost's typical spread.
    pub coupling: Vec<f32>,
    /// Adam iterations.
    pub iterations: usize,
    /// Adam step, working voxels.
    pub learning_rate: f32,
    /// Spacing of the Adam displacement grid, working voxels.
    pub adam_grid: usize,
    /// Weight of the diffusion regulariser.
    pub smoothness: f32,
    /// How far around the baseline lungs the similarity counts, mm.
    pub mask_dilation_mm: f64,
}

impl Default for RegisterConfig {
    fn default() -> Self {
        RegisterConfig {
            working_mm: 2.5,
            margin_mm: 15.0,
            cell: 3,
            search_cells: 5,
            coupling: vec![0.003, 0.01, 0.03, 0.1, 0.3, 1.0],
            iterations: 60,
            learning_rate: 0.5,
            adam_grid: 2,
            smoothness: 0.1,
            mask_dilation_mm: 10.0,
        }
    }
}
