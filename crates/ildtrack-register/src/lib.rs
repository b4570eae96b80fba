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
//! `A(p + u(p))`.
//!
//! [`register_with`] runs the heavy voxel kernels through an `ildtrack_compute::Backend`
//! (`mind_ssc` for the descriptors, `ssd_costs` and `convex_choose` for the discrete search's
//! cost volume and each round's coupled choice, `descriptor_grad` for every Adam step's data
//! term), so they run on the CPU or a GPU, each with its WGSL twin; [`register`] is the same on
//! `CpuBackend`. The rest (sampling onto the working grid, pooling into cells and smoothing the
//! coarse field, the parameter grid's smoothing and updates, the quality figures) is rayon on
//! the host.

pub mod adam;
pub mod affine;
pub mod change;
mod config;
pub mod convex;
pub mod field;
pub mod frame;
pub mod mind;
pub mod synthetic;

pub use affine::Affine;
pub use config::{RegisterConfig, RegisterError};
pub use field::{Quality, Registration};
pub use frame::Frame;

use ildtrack_compute::{Backend, CpuBackend};
use ildtrack_volume::Volume;

/// Register the follow-up `moving` (HU, lung mask non-zero) onto the baseline `fixed`, on the
/// CPU ([`register_with`] and `CpuBackend`).
pub fn register(
    fixed: &Volume<i16>,
    fixed_mask: &Volume<u8>,
    moving: &Volume<i16>,
    moving_mask: &Volume<u8>,
    cfg: &RegisterConfig,
) -> Result<Registration, RegisterError> {
    register_with(
        &CpuBackend::new(),
        fixed,
        fixed_mask,
        moving,
        moving_mask,
        cfg,
    )
}

/// Register the follow-up `moving` (HU, lung mask non-zero) onto the baseline `fixed`, the
/// voxel kernels on `backend`.
pub fn register_with<B: Backend>(
    backend: &B,
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
    let mf_dev = mind::mind_ssc(backend, fixed_img, dims)?;
    let mm_dev = mind::mind_ssc(backend, moving_img, dims)?;
    let domain = grid.domain(&fixed_mask.data, &ff, cfg.mask_dilation_mm);
    let cover = grid.moving_coverage(&fm, &aff);
    let shape = (dims[0], dims[1], dims[2]);
    let invalid = |e: ndarray::ShapeError| RegisterError::Invalid(format!("working grid: {e}"));
    let cover_dev =
        backend.upload_f32(ndarray::ArrayView3::from_shape(shape, &cover).map_err(invalid)?)?;
    let mut domain_mask = vec![0u8; grid.len()];
    for &i in &domain {
        domain_mask[i as usize] = 1;
    }
    let domain_dev = backend
        .upload_u8(ndarray::ArrayView3::from_shape(shape, &domain_mask).map_err(invalid)?)?;
    tracing::debug!(
        ms = t0.elapsed().as_millis() as u64,
        "registration: features"
    );
    let coarse = convex::coupled_search(backend, &mf_dev, &mm_dev, dims, cfg)?;
    tracing::debug!(ms = t0.elapsed().as_millis() as u64, "registration: convex");
    let data = adam::DataTerm {
        fixed: &mf_dev,
        moving: &mm_dev,
        cover: &cover_dev,
        domain: &domain_dev,
    };
    let disp = adam::optimise(backend, &data, dims, domain.len(), &coarse, cfg)?;
    drop(cover_dev);
    drop(domain_dev);
    let mf = mind::host(backend, mf_dev)?;
    let mm = mind::host(backend, mm_dev)?;
    tracing::debug!(ms = t0.elapsed().as_millis() as u64, "registration: adam");
    let similarity_before = adam::similarity(&mf, &mm, &cover, dims, &domain, None);
    let similarity_after = adam::similarity(&mf, &mm, &cover, dims, &domain, Some(&disp));
    let out = Registration::new(
        ff,
        fm,
        aff,
        grid,
        disp,
        &fixed_mask.data,
        &moving_mask.data,
        similarity_before,
        similarity_after,
    );
    tracing::debug!(
        ms = t0.elapsed().as_millis() as u64,
        "registration: similarity and quality"
    );
    out
}
