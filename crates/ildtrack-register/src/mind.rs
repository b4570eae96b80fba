//! MIND-SSC descriptors (Heinrich et al. 2013, the self-similarity context variant): for each
//! of the 12 pairs of a voxel's six neighbours that are not opposite each other, the
//! box-filtered squared difference of the two neighbours, turned into `exp(−D / V)` with `V`
//! the local mean over the pairs, and scaled so the largest channel is 1. A structural
//! descriptor: a region that turns from air-like to ground glass between visits changes its
//! HU, much less its MIND pattern, so the registration does not chase disease.
//!
//! The kernel is `Backend::mind_ssc` of ildtrack-compute (CPU twin
//! `ildtrack_compute::descriptor::mind_ssc`, WGSL `shaders/mind_ssc.wgsl`); this module names
//! what the registration uses of it.

use crate::config::RegisterError;
use ildtrack_compute::Backend;
use ndarray::Array3;

pub use ildtrack_compute::MIND_CHANNELS as CHANNELS;
pub use ildtrack_compute::descriptor::box_filter;

/// Descriptors of a working-grid image (`dims` `(z, y, x)`): neighbours one voxel away,
/// 3×3×3 patches, on the backend.
pub fn mind_ssc<B: Backend>(
    backend: &B,
    img: Vec<f32>,
    dims: [usize; 3],
) -> Result<B::F32, RegisterError> {
    let a = Array3::from_shape_vec((dims[0], dims[1], dims[2]), img)
        .map_err(|e| RegisterError::Invalid(format!("working image: {e}")))?;
    let h = backend.upload_f32(a.view())?;
    Ok(backend.mind_ssc(&h, 1, 1)?)
}

/// A backend volume's elements in `(z, y, x)` order on the host; the handle is given back
/// first, so a descriptor is held twice only while it is copied.
pub fn host<B: Backend>(backend: &B, h: B::F32) -> Result<Vec<f32>, RegisterError> {
    let a = backend.download_f32(&h)?;
    drop(h);
    Ok(to_vec(a))
}

/// The elements of `a` in `(z, y, x)` order.
pub(crate) fn to_vec(a: Array3<f32>) -> Vec<f32> {
    if a.is_standard_layout() {
        a.into_raw_vec_and_offset().0
    } else {
        a.iter().copied().collect()
    }
}
