//! Registration of a follow-up CT onto the baseline: where the disease changed, not only how
//! much.
//!
//! The method follows ConvexAdam (Siebert, Hansen, Heinrich 2021), training-free:
//! 1. [`affine`]: a lung-focused alignment from the two lung masks' moments (centroid and
//!    spread per axis: inspiration mostly scales the lungs craniocaudally);
//! 2. on a working grid (isotropic, around the baseline's lungs) both images become MIND-SSC
//!    descriptors ([`mind`]), a structural feature that does not chase density change;
//! 3. [`convex`]: a discrete search of displacements on a coarse grid (sum of squared
//!    descriptor differences), made smooth by coupled convex optimisation;
//! 4. [`adam`]: Adam instance optimisation of a finer displacement grid, descriptor difference
//!    plus a diffusion regulariser, the gradient through trilinear sampling written out.
//!
//! The result maps each baseline position `p` (mm, [`frame::Frame`]) to the follow-up position
//! `A(p + u(p))`. Voxel work here is rayon on the CPU; it does not go through the compute
//! `Backend` yet (no GPU twin).

pub mod adam;
pub mod affine;
pub mod convex;
pub mod field;
pub mod frame;
pub mod mind;
pub mod synthetic;

pub use affine::Affine;
pub use field::{Quality, Registration};
pub use frame::Frame;

use ildtrack_volume::Volume;
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("cannot register: {0}")]
    Orientation(String),
    #[error("cannot register: the {0} lung mask is empty")]
    EmptyMask(&'static str),
    #[error("cannot register: {0}")]
    Invalid(String),
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

/// Register the follow-up `moving` (HU, lung mask non-zero) onto the baseline `fixed`.
pub fn register(
    fixed: &Volume<i16>,
    fixed_mask: &Volume<u8>,
    moving: &Volume<i16>,
    moving_mask: &Volume<u8>,
    cfg: &RegisterConfig,
) -> Result<Registration, RegisterError> {
    if fixed.dims_zyx() != fixed_mask.dims_zyx() || moving.dims_zyx() != moving_mask.dims_zyx() {
        return Err(RegisterError::Invalid(
            "an image and its lung mask differ in size".into(),
        ));
    }
    if !(cfg.working_mm.is_finite() && cfg.working_mm >= 0.5)
        || cfg.cell == 0
        || cfg.adam_grid == 0
        || !(0..=16).contains(&cfg.search_cells)
    {
        return Err(RegisterError::Invalid(format!(
            "settings out of range: {cfg:?}"
        )));
    }
    let ff = Frame::of(fixed.dims_zyx(), &fixed.geometry)?;
    let fm = Frame::of(moving.dims_zyx(), &moving.geometry)?;
    let aff = affine::from_masks(&fixed_mask.data, &ff, &moving_mask.data, &fm)?;
    let grid = field::WorkGrid::around(&fixed_mask.data, &ff, cfg)?;
    let t0 = std::time::Instant::now();
    let fixed_img = grid.sample_fixed(&fixed.data, &ff);
    let moving_img = grid.sample_moving(&moving.data, &fm, &aff);
    let dims = grid.dims;
    let mf = mind::mind_ssc(&fixed_img, dims, 1, 1);
    let mm = mind::mind_ssc(&moving_img, dims, 1, 1);
    let domain = grid.domain(&fixed_mask.data, &ff, cfg.mask_dilation_mm);
    let cover = grid.moving_coverage(&fm, &aff);
    tracing::debug!(
        ms = t0.elapsed().as_millis() as u64,
        "registration: features"
    );
    let coarse = convex::coupled_search(&mf, &mm, dims, cfg);
    tracing::debug!(ms = t0.elapsed().as_millis() as u64, "registration: convex");
    let disp = adam::optimise(&mf, &mm, &cover, dims, &domain, &coarse, cfg);
    tracing::debug!(ms = t0.elapsed().as_millis() as u64, "registration: adam");
    let similarity_before = adam::similarity(&mf, &mm, &cover, dims, &domain, None);
    let similarity_after = adam::similarity(&mf, &mm, &cover, dims, &domain, Some(&disp));
    Registration::new(
        ff,
        fm,
        aff,
        grid,
        disp,
        &fixed_mask.data,
        &moving_mask.data,
        similarity_before,
        similarity_after,
    )
}
