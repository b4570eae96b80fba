//! The backend interface and the types every backend shares.

use ndarray::{Array3, ArrayView3};

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

/// Voxel-wise logical operation of two masks (non-zero = true); the result is 0/1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaskOp {
    And,
    Or,
    /// `a && !b`
    AndNot,
    Xor,
}

/// Neighbourhood for connected components and hole filling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connectivity {
    /// 3-D, face neighbours (6).
    Face6,
    /// 3-D, face, edge and corner neighbours (26).
    Full26,
    /// Each z-slice on its own, 4 neighbours in-plane; labels are still unique over the volume.
    Slice4,
    /// Each z-slice on its own, 8 neighbours in-plane; labels are still unique over the volume.
    Slice8,
}

/// A Euclidean ball structuring element in millimetres (see the crate conventions).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ball {
    pub radius_mm: f64,
    /// Voxel spacing `(z, y, x)` in mm, all > 0.
    pub spacing_mm: [f64; 3],
    /// `true`: a disk in each z-slice (no reach across slices).
    pub in_plane: bool,
}

impl Ball {
    pub fn new(radius_mm: f64, spacing_mm: [f64; 3]) -> Self {
        Ball {
            radius_mm,
            spacing_mm,
            in_plane: false,
        }
    }
    pub fn disk(radius_mm: f64, spacing_mm: [f64; 3]) -> Self {
        Ball {
            radius_mm,
            spacing_mm,
            in_plane: true,
        }
    }
    /// Checks radius ≥ 0 and finite positive spacings.
    pub fn validate(&self) -> Result<()> {
        if !(self.radius_mm.is_finite() && self.radius_mm >= 0.0) {
            return Err(ComputeError::InvalidArgument(format!(
                "ball radius must be finite and >= 0 mm, got {}",
                self.radius_mm
            )));
        }
        validate_spacing(self.spacing_mm)
    }
}

/// Checks that every spacing is finite and > 0 mm (shared by every backend).
pub fn validate_spacing(spacing_mm: [f64; 3]) -> Result<()> {
    if spacing_mm.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
        return Err(ComputeError::InvalidArgument(format!(
            "voxel spacing must be finite and > 0 mm, got {spacing_mm:?}"
        )));
    }
    Ok(())
}

/// Normalised Gaussian weights for `sigma_vox` voxels, truncated at 3 σ: `2r + 1` taps,
/// `r = ceil(3 σ)`. Every backend uses these exact f32 weights so results agree.
pub fn gaussian_weights(sigma_vox: f64) -> Vec<f32> {
    let radius = (3.0 * sigma_vox).ceil() as usize;
    let mut kernel: Vec<f32> = (0..=2 * radius)
        .map(|i| {
            let d = i as f64 - radius as f64;
            (-0.5 * d * d / (sigma_vox * sigma_vox)).exp() as f32
        })
        .collect();
    let sum: f32 = kernel.iter().sum();
    kernel.iter_mut().for_each(|k| *k /= sum);
    kernel
}

/// Most blur stages one [`Backend::gaussian_mix`] may chain.
pub const MAX_MIX_STAGES: usize = 8;

/// Checks the arguments of [`Backend::gaussian_mix`] (shared by every backend): finite
/// positive spacing, finite σ ≥ 0, finite weights, one weight more than σs, at most
/// [`MAX_MIX_STAGES`] stages.
pub fn validate_gaussian_mix(
    sigmas_mm: &[f64],
    weights: &[f32],
    spacing_mm: [f64; 3],
) -> Result<()> {
    validate_spacing(spacing_mm)?;
    if sigmas_mm.len() > MAX_MIX_STAGES {
        return Err(ComputeError::InvalidArgument(format!(
            "gaussian_mix takes at most {MAX_MIX_STAGES} blur stages, got {}",
            sigmas_mm.len()
        )));
    }
    if weights.len() != sigmas_mm.len() + 1 {
        return Err(ComputeError::InvalidArgument(format!(
            "gaussian_mix needs one weight per stage and one for the input: {} sigmas, {} weights",
            sigmas_mm.len(),
            weights.len()
        )));
    }
    if sigmas_mm.iter().any(|s| !(s.is_finite() && *s >= 0.0)) {
        return Err(ComputeError::InvalidArgument(format!(
            "sigma must be finite and >= 0 mm, got {sigmas_mm:?}"
        )));
    }
    if weights.iter().any(|w| !w.is_finite()) {
        return Err(ComputeError::InvalidArgument(format!(
            "gaussian_mix weights must be finite, got {weights:?}"
        )));
    }
    Ok(())
}

/// Channels of a MIND-SSC descriptor ([`Backend::mind_ssc`]).
pub const MIND_CHANNELS: usize = 12;

/// The parameter-grid dims of [`Backend::descriptor_grad`]: a point every `spacing` voxels
/// from the first voxel, the last voxel covered (`(n − 1).div_ceil(spacing) + 1` per axis).
pub fn param_grid_dims(dims_zyx: [usize; 3], spacing: usize) -> [usize; 3] {
    dims_zyx.map(|n| n.saturating_sub(1).div_ceil(spacing.max(1)) + 1)
}

/// Checks the operands of [`Backend::descriptor_grad`] (shared by every backend): `fixed` and
/// `moving` of dims `(nz, ny, nx · MIND_CHANNELS)`, `cover` and `domain` of `(nz, ny, nx)`,
/// `params` of `(3 · pz, py, px)` for [`param_grid_dims`], `spacing >= 1`.
pub fn check_descriptor_grad(
    fixed: [usize; 3],
    moving: [usize; 3],
    cover: [usize; 3],
    domain: [usize; 3],
    params: [usize; 3],
    spacing: usize,
) -> Result<[usize; 3]> {
    if spacing == 0 {
        return Err(ComputeError::InvalidArgument(
            "descriptor_grad needs a parameter spacing >= 1".into(),
        ));
    }
    check_same(cover, domain)?;
    let desc = [cover[0], cover[1], cover[2] * MIND_CHANNELS];
    check_same(fixed, desc)?;
    check_same(moving, desc)?;
    let p = param_grid_dims(cover, spacing);
    check_same(params, [3 * p[0], p[1], p[2]])?;
    Ok(p)
}

/// Largest search radius of [`Backend::ssd_costs`].
pub const MAX_SEARCH_RADIUS: usize = 16;

/// Checks the operands of [`Backend::ssd_costs`]; returns the voxel grid.
pub fn check_ssd_costs(fixed: [usize; 3], moving: [usize; 3], radius: usize) -> Result<[usize; 3]> {
    check_same(fixed, moving)?;
    if !fixed[2].is_multiple_of(MIND_CHANNELS) {
        return Err(ComputeError::InvalidArgument(format!(
            "ssd_costs needs descriptors of {MIND_CHANNELS} channels, got dims {fixed:?}"
        )));
    }
    if radius > MAX_SEARCH_RADIUS {
        return Err(ComputeError::InvalidArgument(format!(
            "ssd_costs search radius {radius} exceeds {MAX_SEARCH_RADIUS}"
        )));
    }
    Ok([fixed[0], fixed[1], fixed[2] / MIND_CHANNELS])
}

/// Checks the operands of [`Backend::convex_choose`]; returns the voxel grid.
pub fn check_convex_choose(
    costs: [usize; 3],
    bounds: [usize; 3],
    target: Option<[usize; 3]>,
    lambda: f32,
    radius: usize,
) -> Result<[usize; 3]> {
    if radius > MAX_SEARCH_RADIUS || !lambda.is_finite() {
        return Err(ComputeError::InvalidArgument(format!(
            "convex_choose: radius {radius} (at most {MAX_SEARCH_RADIUS}), lambda {lambda} (finite)"
        )));
    }
    let side = 2 * radius + 1;
    let nk = side * side * side;
    if !bounds[2].is_multiple_of(2) {
        return Err(ComputeError::InvalidArgument(format!(
            "convex_choose: bounds of dims {bounds:?} do not hold two values per voxel"
        )));
    }
    let g = [bounds[0], bounds[1], bounds[2] / 2];
    check_same(costs, [g[0], g[1], g[2] * nk])?;
    if let Some(t) = target {
        check_same(t, [3 * g[0], g[1], g[2]])?;
    }
    Ok(g)
}

/// One connected component (index `i` in the returned list is label `i + 1`).
#[derive(Debug, Clone, PartialEq)]
pub struct ComponentInfo {
    pub voxels: u64,
    /// Inclusive bounding box, `(z, y, x)` indices.
    pub min_zyx: [usize; 3],
    pub max_zyx: [usize; 3],
    /// Sum of voxel indices `(z, y, x)`; divide by `voxels` for the centroid.
    pub sum_zyx: [f64; 3],
}

impl ComponentInfo {
    /// Centroid in voxel indices `(z, y, x)`.
    pub fn centroid_zyx(&self) -> [f64; 3] {
        let n = self.voxels.max(1) as f64;
        [
            self.sum_zyx[0] / n,
            self.sum_zyx[1] / n,
            self.sum_zyx[2] / n,
        ]
    }
}

/// Masked HU histograms: one row of 1-HU bins per label value `0..n_labels`.
/// Bin `i` counts `HU == lo_hu + i`; values outside `[lo_hu, hi_hu]` are clamped into the
/// first / last bin. Label values `>= n_labels` are not counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Histograms {
    pub lo_hu: i16,
    pub hi_hu: i16,
    pub n_labels: usize,
    /// Label-major: `counts[label * n_bins() + bin]`.
    pub counts: Vec<u64>,
}

impl Histograms {
    pub fn n_bins(&self) -> usize {
        (self.hi_hu as i32 - self.lo_hu as i32 + 1) as usize
    }
    /// The bins of one label.
    pub fn label(&self, label: usize) -> &[u64] {
        let n = self.n_bins();
        &self.counts[label * n..(label + 1) * n]
    }
    /// Voxel count of one label.
    pub fn total(&self, label: usize) -> u64 {
        self.label(label).iter().sum()
    }
}

/// The voxel kernels of ildtrack. See the crate documentation for the shared conventions.
///
/// Every method validates shapes and arguments and returns [`ComputeError`] instead of
/// panicking. Methods with a default body are compositions of other kernels; a backend may
/// override them with a fused kernel if it gives the same result.
pub trait Backend: Send + Sync {
    /// HU volume handle.
    type I16: VolumeHandle;
    /// Mask / class-code handle.
    type U8: VolumeHandle;
    /// Component-label handle.
    type U32: VolumeHandle;
    /// Scalar-field handle (distances, registration images, descriptors and displacements).
    type F32: VolumeHandle;

    /// Short backend name for `visit.json` (`cpu`, `gpu`).
    fn name(&self) -> &'static str;
    /// Device description, e.g. `rayon, 2 threads` or the GPU adapter name.
    fn device_description(&self) -> String;

    // ---- transfers -------------------------------------------------------------------------
    fn upload_i16(&self, data: ArrayView3<'_, i16>) -> Result<Self::I16>;
    fn upload_u8(&self, data: ArrayView3<'_, u8>) -> Result<Self::U8>;
    fn upload_f32(&self, data: ArrayView3<'_, f32>) -> Result<Self::F32>;
    fn download_i16(&self, v: &Self::I16) -> Result<Array3<i16>>;
    fn download_u8(&self, v: &Self::U8) -> Result<Array3<u8>>;
    fn download_u32(&self, v: &Self::U32) -> Result<Array3<u32>>;
    fn download_f32(&self, v: &Self::F32) -> Result<Array3<f32>>;
    /// A new volume filled with `value`.
    fn fill_u8(&self, dims_zyx: [usize; 3], value: u8) -> Result<Self::U8>;

    // ---- voxel-wise ------------------------------------------------------------------------
    /// 1 where `lo_hu <= v <= hi_hu` (inclusive both ends), else 0.
    fn threshold(&self, hu: &Self::I16, lo_hu: i16, hi_hu: i16) -> Result<Self::U8>;
    /// Density classes: 0 where `mask == 0`; else `1 + #{e in edges_hu : v >= e}`.
    /// `edges_hu` must be strictly increasing and at most 254 long.
    fn classify(&self, hu: &Self::I16, mask: &Self::U8, edges_hu: &[i16]) -> Result<Self::U8>;
    /// Logical operation of two masks, 0/1 result.
    fn mask_op(&self, a: &Self::U8, b: &Self::U8, op: MaskOp) -> Result<Self::U8>;
    /// `if mask != 0 { a } else { b }`, voxel-wise.
    fn select(&self, mask: &Self::U8, a: &Self::U8, b: &Self::U8) -> Result<Self::U8>;
    /// `lut[v]` for every voxel.
    fn map_u8(&self, v: &Self::U8, lut: &[u8; 256]) -> Result<Self::U8>;
    /// `lut[a * n_b + b]` for every voxel (a 2-D lookup table, `a < n_a`, `b < n_b`;
    /// pairs outside the table give 0). `lut.len()` must be `n_a * n_b`.
    fn combine_u8(&self, a: &Self::U8, b: &Self::U8, n_b: usize, lut: &[u8]) -> Result<Self::U8>;
    /// `table[z * n_values + v]` for every voxel (a lookup table per z-slice; values
    /// `>= n_values` give 0). `table.len()` must be `dims_z * n_values`.
    fn map_u8_per_slice(&self, v: &Self::U8, n_values: usize, table: &[u8]) -> Result<Self::U8>;
    /// Component label → u8 through `lut` (labels `>= lut.len()` give 0).
    fn map_labels(&self, labels: &Self::U32, lut: &[u8]) -> Result<Self::U8>;
    /// 1 where `lo <= v <= hi`, else 0 (NaN gives 0).
    fn threshold_f32(&self, v: &Self::F32, lo: f32, hi: f32) -> Result<Self::U8>;
    /// 1 where `a <= b`, else 0 (NaN gives 0; `inf <= inf` is 1).
    fn less_equal_f32(&self, a: &Self::F32, b: &Self::F32) -> Result<Self::U8>;

    // ---- reductions ------------------------------------------------------------------------
    /// Count of each u8 value.
    fn value_counts(&self, v: &Self::U8) -> Result<Vec<u64>>;
    /// Joint counts: `counts[a * n_b + b]`, pairs with `a >= n_a` or `b >= n_b` not counted.
    fn joint_counts(&self, a: &Self::U8, b: &Self::U8, n_a: usize, n_b: usize) -> Result<Vec<u64>>;
    /// Per z-slice counts of each value below `n_values`: `counts[z * n_values + v]`.
    fn slice_counts(&self, v: &Self::U8, n_values: usize) -> Result<Vec<u64>>;
    /// HU histograms per label value (see [`Histograms`]). `lo_hu <= hi_hu`.
    fn histogram(
        &self,
        hu: &Self::I16,
        labels: &Self::U8,
        n_labels: usize,
        lo_hu: i16,
        hi_hu: i16,
    ) -> Result<Histograms>;

    // ---- morphology ------------------------------------------------------------------------
    fn dilate(&self, m: &Self::U8, ball: &Ball) -> Result<Self::U8>;
    fn erode(&self, m: &Self::U8, ball: &Ball) -> Result<Self::U8>;
    /// Dilation then erosion; always a superset of `m`.
    fn close(&self, m: &Self::U8, ball: &Ball) -> Result<Self::U8> {
        let d = self.dilate(m, ball)?;
        self.erode(&d, ball)
    }
    /// Erosion then dilation; always a subset of `m`.
    fn open(&self, m: &Self::U8, ball: &Ball) -> Result<Self::U8> {
        let e = self.erode(m, ball)?;
        self.dilate(&e, ball)
    }
    /// Per z-slice: background pixels not 4-connected to the slice border become 1.
    /// Output is 0/1.
    fn fill_holes_2d(&self, m: &Self::U8) -> Result<Self::U8>;

    // ---- components ------------------------------------------------------------------------
    /// Connected components of the non-zero voxels: labels (see crate conventions) and one
    /// [`ComponentInfo`] per label (`infos[i]` is label `i + 1`).
    fn label_components(
        &self,
        m: &Self::U8,
        connectivity: Connectivity,
    ) -> Result<(Self::U32, Vec<ComponentInfo>)>;

    // ---- fields ----------------------------------------------------------------------------
    /// Gaussian smoothing, separable, `sigma_mm` per axis `(z, y, x)` (0 = no smoothing on that
    /// axis), kernel truncated at 3 σ, borders replicated, result rounded to the nearest i16.
    fn gaussian(
        &self,
        hu: &Self::I16,
        sigma_mm: [f64; 3],
        spacing_mm: [f64; 3],
    ) -> Result<Self::I16>;
    /// Cascaded in-plane Gaussian blurs mixed with weights (a band decomposition and its
    /// recomposition with per-band gains in one pass): `x_0` is the HU (`OUTSIDE_FOV_HU` read as
    /// −1024, as in [`Backend::gaussian`]), `x_k` is `x_{k−1}` blurred in-plane (y and x, not
    /// across slices) with σ `sigmas_mm[k − 1]` (weights of [`gaussian_weights`], truncated at
    /// 3 σ, borders replicated, an axis with σ under 1e-3 voxel or one voxel long untouched),
    /// and the result is `Σ_k weights[k] · x_k` in f32, rounded half away from zero to i16
    /// (clamped to ±32767), `OUTSIDE_FOV_HU` kept where the input had it. Stages after the last
    /// non-zero weight add nothing and need not be computed. `weights.len() == sigmas_mm.len() + 1 <= MAX_MIX_STAGES + 1` (see
    /// [`validate_gaussian_mix`]).
    fn gaussian_mix(
        &self,
        hu: &Self::I16,
        sigmas_mm: &[f64],
        weights: &[f32],
        spacing_mm: [f64; 3],
    ) -> Result<Self::I16>;
    /// Every blur stage of [`Backend::gaussian_mix`] on its own: `k`-th result =
    /// `gaussian_mix` with weight `scale` on stage `k + 1` and 0 elsewhere (`scale · x_{k+1}`,
    /// rounded the same way), for `k < sigmas_mm.len()`. The default runs one `gaussian_mix`
    /// per stage; a backend may compute the cascade once.
    fn gaussian_stages(
        &self,
        hu: &Self::I16,
        sigmas_mm: &[f64],
        scale: f32,
        spacing_mm: [f64; 3],
    ) -> Result<Vec<Self::I16>> {
        let n = sigmas_mm.len();
        (1..=n)
            .map(|k| {
                let mut w = vec![0.0f32; n + 1];
                w[k] = scale;
                self.gaussian_mix(hu, sigmas_mm, &w, spacing_mm)
            })
            .collect()
    }
    /// Exact Euclidean distance in mm from each voxel centre to the nearest voxel centre with
    /// `m == 0` (0 on background). A volume without background gives `f32::INFINITY`.
    fn distance_mm(&self, m: &Self::U8, spacing_mm: [f64; 3]) -> Result<Self::F32>;

    // ---- resampling ------------------------------------------------------------------------
    /// Block mean over `factors` `(z, y, x)` voxels (partial blocks at the end included),
    /// rounded; output dims are `ceil(dims / factors)`.
    fn downsample_mean(&self, hu: &Self::I16, factors: [usize; 3]) -> Result<Self::I16>;
    /// [`Backend::downsample_mean`] of a host volume: the same as `upload_i16` then
    /// `downsample_mean` (the default); a backend whose volumes live in host memory reads the
    /// view in place instead of copying it first.
    fn downsample_mean_host(
        &self,
        hu: ArrayView3<'_, i16>,
        factors: [usize; 3],
    ) -> Result<Self::I16> {
        self.downsample_mean(&self.upload_i16(hu)?, factors)
    }
    /// Nearest-neighbour upsampling: output voxel `p` takes input voxel `p / factors`;
    /// `dims_zyx` must satisfy `ceil(dims / factors) == input dims`.
    fn upsample_nearest(
        &self,
        m: &Self::U8,
        factors: [usize; 3],
        dims_zyx: [usize; 3],
    ) -> Result<Self::U8>;

    // ---- regions of interest ---------------------------------------------------------------
    /// The box `[min_zyx, min_zyx + dims_zyx)`; it must lie inside the volume.
    fn crop_i16(
        &self,
        v: &Self::I16,
        min_zyx: [usize; 3],
        dims_zyx: [usize; 3],
    ) -> Result<Self::I16>;
    /// The box `[min_zyx, min_zyx + dims_zyx)`; it must lie inside the volume.
    fn crop_u8(&self, v: &Self::U8, min_zyx: [usize; 3], dims_zyx: [usize; 3]) -> Result<Self::U8>;
    /// A `dims_zyx` volume of zeros with `v` pasted at `min_zyx` (the inverse of a crop);
    /// `v` must fit.
    fn pad_u8(&self, v: &Self::U8, dims_zyx: [usize; 3], min_zyx: [usize; 3]) -> Result<Self::U8>;

    // ---- registration ----------------------------------------------------------------------
    /// MIND-SSC descriptors (Heinrich et al. 2013, the self-similarity context variant) of an
    /// f32 image: for each of the [`MIND_CHANNELS`] pairs of a voxel's six face neighbours
    /// `dilation` voxels away that are not opposite each other (border clamped), the squared
    /// difference of the two neighbours, box-filtered over `2 radius + 1` voxels along x, then
    /// y, then z (border clamped; each output the in-order sum of its taps times
    /// `1 / (2 radius + 1)`); then `exp(−D_c / V)` with `V` the mean of the voxel's D over the
    /// channels, clamped to `[m · 1e-3 + 1e-12, m · 1e3 + 1e-12]` (`m` the mean of V over the
    /// volume), divided by the voxel's largest channel. Output: dims `(nz, ny, nx · 12)`,
    /// channel-last (`[z, y, x · 12 + c]`). An empty image gives an empty descriptor.
    fn mind_ssc(&self, img: &Self::F32, dilation: usize, radius: usize) -> Result<Self::F32>;
    /// The data-term gradient of a descriptor registration with a displacement grid. `fixed`
    /// and `moving` are [`Backend::mind_ssc`] descriptors of one `(nz, ny, nx)` grid; `params`
    /// holds a displacement (voxels) at every `spacing`-th voxel, dims `(3 · pz, py, px)` for
    /// [`param_grid_dims`], the components z, y, x stacked along z. For each voxel `w` with
    /// `domain != 0`: `u` = `params` trilinear at `w / spacing` (border clamped), `p = w + u`;
    /// where `p` lies in `[0, n − 1]` on every axis (each at least 2 long) and `cover`
    /// (trilinear at `p`) exceeds 0.999, `g_k = Σ_c 2 (M_c(p) − F_c(w)) / 12 · ∂M_c/∂p_k`
    /// (M trilinear, its gradient per voxel) is added into the result at `w / spacing` with
    /// the trilinear weights (the transpose of how `u` was read). Result: dims of `params`,
    /// the sum over the domain (not divided by its size). See [`check_descriptor_grad`].
    /// The costs of a discrete displacement search between two descriptor grids (dims
    /// `(nz, ny, nx · 12)` both, as [`Backend::mind_ssc`] gives): for each voxel and each
    /// displacement `o` in `[−radius, radius]³` (numbered x fastest, see
    /// `descriptor::search_offsets`), the mean over the channels of `(F_c − M_c(voxel + o))²`,
    /// the displaced voxel clamped to the grid. Returned quantised per voxel between its lowest
    /// and highest cost (`lo`, `hi`): byte `round((cost − lo) · (255 / (hi − lo)))` (half away
    /// from zero; 0 when `hi == lo`), as a U8 volume of dims `(nz, ny, nx · (2 radius + 1)³)`,
    /// and `lo`, `hi` as an F32 volume of dims `(nz, ny, nx · 2)`. `radius <= 16`.
    fn ssd_costs(
        &self,
        fixed: &Self::F32,
        moving: &Self::F32,
        radius: usize,
    ) -> Result<(Self::U8, Self::F32)>;
    /// The coupled choice of a discrete search (ConvexAdam's convex step) over the costs of
    /// [`Backend::ssd_costs`] (`costs`, `bounds` as it returns them for `radius`, of a
    /// `(nz, ny, nx)` grid): for each voxel, the displacement `o` (whole voxels) that minimises
    /// `cost + lambda · |o − t|²`, the cost read back as `lo + byte / 255 · (hi − lo)` and `t`
    /// the voxel's entry of `target` (without a target, the cost alone); the first minimum in
    /// candidate order wins. `target` and the result have dims `(3 · nz, ny, nx)`, components
    /// z, y, x stacked along z.
    fn convex_choose(
        &self,
        costs: &Self::U8,
        bounds: &Self::F32,
        target: Option<&Self::F32>,
        lambda: f32,
        radius: usize,
    ) -> Result<Self::F32>;
    #[allow(clippy::too_many_arguments)]
    fn descriptor_grad(
        &self,
        fixed: &Self::F32,
        moving: &Self::F32,
        cover: &Self::F32,
        domain: &Self::U8,
        params: &Self::F32,
        spacing: usize,
    ) -> Result<Self::F32>;
}

/// Checks that the box `[min_zyx, min_zyx + box_zyx)` lies inside `dims_zyx`.
pub fn check_box(dims_zyx: [usize; 3], min_zyx: [usize; 3], box_zyx: [usize; 3]) -> Result<()> {
    if (0..3).any(|k| {
        min_zyx[k]
            .checked_add(box_zyx[k])
            .is_none_or(|e| e > dims_zyx[k])
    }) {
        return Err(ComputeError::InvalidArgument(format!(
            "box at {min_zyx:?} of size {box_zyx:?} does not fit in {dims_zyx:?}"
        )));
    }
    Ok(())
}

/// Size of a `joint_counts` table (`n_a` × `n_b`), at most 2^20 entries.
pub fn joint_table_len(n_a: usize, n_b: usize) -> Result<usize> {
    n_a.checked_mul(n_b)
        .filter(|&n| n <= 1 << 20)
        .ok_or_else(|| {
            ComputeError::InvalidArgument(format!("joint count table {n_a} x {n_b} too large"))
        })
}

/// Checks two shapes are equal.
pub fn check_same(a: [usize; 3], b: [usize; 3]) -> Result<()> {
    if a == b {
        Ok(())
    } else {
        Err(ComputeError::ShapeMismatch(a, b))
    }
}
