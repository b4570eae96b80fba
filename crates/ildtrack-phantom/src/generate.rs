//! Painting the volume slice by slice (rayon over z) and counting the truth from the very
//! masks used to paint.

use crate::PhantomError;
use crate::anatomy::{Anatomy, Class, Seg, dist2_to_segment, kind_rank};
use crate::rng::{GaussTable, Texture};
use crate::spec::{LesionKind, LesionShape, PhantomSpec, Side, Zone};
use ildtrack_volume::{Geometry, Identity, OUTSIDE_FOV_HU, ScanMeta, Volume};
use ndarray::Array3;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Largest voxel count [`try_generate`] accepts (≈ 268 M, e.g. 512×512×1024): the phantom and
/// its truth take about 8 bytes per voxel.
pub const MAX_VOXELS: usize = 1 << 28;

pub use ildtrack_volume::ZONE_NAMES;

/// A generated synthetic CT with its ground truth.
#[derive(Debug, Clone)]
pub struct Phantom {
    /// HU, `(z, y, x)`, axial LPS geometry; [`OUTSIDE_FOV_HU`] outside the reconstruction circle.
    pub volume: Volume<i16>,
    pub truth: Truth,
    /// Acquisition facts (grid facts and UIDs filled in).
    pub meta: ScanMeta,
    /// Synthetic patient name and ID (written to DICOM only).
    pub identity: Identity,
    /// The spec it was generated from.
    pub spec: PhantomSpec,
}

/// Volumes and counts of one region (a lung, a zone), mL.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RegionTruth {
    pub lung_ml: f64,
    pub ggo_ml: f64,
    pub consolidation_ml: f64,
    pub vessel_ml: f64,
}

impl RegionTruth {
    pub fn affected_ml(&self) -> f64 {
        self.ggo_ml + self.consolidation_ml
    }
    fn pct(&self, ml: f64) -> f64 {
        if self.lung_ml > 0.0 {
            100.0 * ml / self.lung_ml
        } else {
            0.0
        }
    }
    pub fn ggo_pct(&self) -> f64 {
        self.pct(self.ggo_ml)
    }
    pub fn consolidation_pct(&self) -> f64 {
        self.pct(self.consolidation_ml)
    }
    pub fn affected_pct(&self) -> f64 {
        self.pct(self.affected_ml())
    }
}

/// Ground truth, exactly consistent with the voxels.
///
/// Painting rules (later wins where stated):
/// 1. `lungs` (1 right, 2 left) are the geometric lungs minus the trachea and main bronchi
///    (lumen and wall); they include intrapulmonary bronchi, vessels and lesions.
/// 2. GGO paints only normal parenchyma of its own lung.
/// 3. Vessels paint over parenchyma and GGO: **a vessel voxel inside GGO counts as vessel, not GGO**.
/// 4. Intrapulmonary bronchi (wall, then air lumen) paint over parenchyma, GGO and vessels.
/// 5. Consolidation paints over everything in its own lung except bronchus lumen (air
///    bronchogram): **vessels inside consolidation count as consolidation** (they are invisible there).
///
/// So `ggo`, `consolidation` and `vessels` are disjoint subsets of `lungs != 0`.
/// A collapsed lung has no lung voxels (its hemithorax holds pleural fluid); effusion fluid
/// (`effusion_mm`) is not lung either. Every lesion shape follows the same rules by its class.
///
/// Zones: equal thirds of each lung's own z-extent (`lung_z_extent`, slice indices, index 0 is
/// the lowest = most caudal slice); slice `z` has fraction `(z - lo + 0.5) / (hi - lo + 1)`:
/// lower < 1/3 ≤ middle < 2/3 ≤ upper.
#[derive(Debug, Clone)]
pub struct Truth {
    /// 0 background, 1 right lung, 2 left lung.
    pub lungs: Array3<u8>,
    pub ggo: Array3<bool>,
    pub consolidation: Array3<bool>,
    /// Pulmonary vessels inside the lungs (not inside consolidation).
    pub vessels: Array3<bool>,
    /// Lumen of the trachea and main bronchi (not lung).
    pub airways: Array3<bool>,
    /// `[right, left]`.
    pub lung_ml: [f64; 2],
    pub ggo_ml: f64,
    pub consolidation_ml: f64,
    pub vessel_ml: f64,
    pub airway_ml: f64,
    /// Air inside intrapulmonary bronchi (lung; −1000 HU).
    pub bronchus_lumen_ml: f64,
    /// Walls of intrapulmonary bronchi (lung; −100 HU, so in the consolidation HU range but
    /// neither vessel nor lesion: a tubular structure the analysis must not call disease).
    pub bronchus_wall_ml: f64,
    /// `[right, left]`.
    pub per_side: [RegionTruth; 2],
    /// In the order of [`ZONE_NAMES`].
    pub per_zone: [RegionTruth; 6],
    /// Lowest and highest slice index holding each lung, `[right, left]`.
    pub lung_z_extent: [Option<[usize; 2]>; 2],
    pub voxel_ml: f64,
    /// Per spec lesion (in the order of `spec.lesions`): its lesion voxels (GGO,
    /// consolidation, honeycombing) in the truth lung, mL, after what was painted over it
    /// (vessels over GGO, bronchi, later lesions) took its share.
    pub lesion_ml: Vec<f64>,
}

/// The truth's numbers without the masks (for JSON, logs and tests).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TruthSummary {
    pub lung_ml: f64,
    pub right_lung_ml: f64,
    pub left_lung_ml: f64,
    pub ggo_ml: f64,
    pub consolidation_ml: f64,
    pub affected_ml: f64,
    pub ggo_pct: f64,
    pub consolidation_pct: f64,
    pub affected_pct: f64,
    pub vessel_ml: f64,
    pub airway_ml: f64,
    pub bronchus_wall_ml: f64,
    pub zones: Vec<(String, RegionTruth)>,
}

impl Truth {
    pub fn total_lung_ml(&self) -> f64 {
        self.lung_ml[0] + self.lung_ml[1]
    }
    pub fn affected_ml(&self) -> f64 {
        self.ggo_ml + self.consolidation_ml
    }
    pub fn whole(&self) -> RegionTruth {
        RegionTruth {
            lung_ml: self.total_lung_ml(),
            ggo_ml: self.ggo_ml,
            consolidation_ml: self.consolidation_ml,
            vessel_ml: self.vessel_ml,
        }
    }
    /// GGO + consolidation as % of both lungs.
    pub fn affected_pct(&self) -> f64 {
        self.whole().affected_pct()
    }
    /// Index into [`Truth::per_zone`] / [`ZONE_NAMES`].
    pub fn zone_index(side: Side, zone: Zone) -> usize {
        side.index() * 3 + zone.index()
    }
    /// The zone of slice `z` in lung `side`, or `None` outside that lung's z-extent.
    pub fn zone_of_slice(&self, side: Side, z: usize) -> Option<Zone> {
        let [lo, hi] = self.lung_z_extent[side.index()]?;
        zone_of(z, lo, hi)
    }
    pub fn summary(&self) -> TruthSummary {
        let w = self.whole();
        TruthSummary {
            lung_ml: w.lung_ml,
            right_lung_ml: self.lung_ml[0],
            left_lung_ml: self.lung_ml[1],
            ggo_ml: w.ggo_ml,
            consolidation_ml: w.consolidation_ml,
            affected_ml: w.affected_ml(),
            ggo_pct: w.ggo_pct(),
            consolidation_pct: w.consolidation_pct(),
            affected_pct: w.affected_pct(),
            vessel_ml: self.vessel_ml,
            airway_ml: self.airway_ml,
            bronchus_wall_ml: self.bronchus_wall_ml,
            zones: ZONE_NAMES
                .iter()
                .zip(self.per_zone.iter())
                .map(|(n, r)| (n.to_string(), r.clone()))
                .collect(),
        }
    }
}

fn zone_of(z: usize, lo: usize, hi: usize) -> Option<Zone> {
    if z < lo || z > hi {
        return None;
    }
    let frac = (z - lo) as f64 + 0.5;
    let n = (hi - lo + 1) as f64;
    let u = frac / n;
    Some(if u < 1.0 / 3.0 {
        Zone::Lower
    } else if u < 2.0 / 3.0 {
        Zone::Middle
    } else {
        Zone::Upper
    })
}

/// Check a spec for values that cannot be generated.
pub fn validate(spec: &PhantomSpec) -> Result<(), PhantomError> {
    let bad = |m: String| Err(PhantomError::InvalidSpec(m));
    if spec.dims_zyx.contains(&0) {
        return bad(format!("dims_zyx {:?} has a zero size", spec.dims_zyx));
    }
    match spec.voxel_count() {
        Some(n) if n <= MAX_VOXELS => {}
        _ => {
            return bad(format!(
                "dims_zyx {:?} exceeds {MAX_VOXELS} voxels",
                spec.dims_zyx
            ));
        }
    }
    if spec
        .spacing_mm
        .iter()
        .any(|s| !s.is_finite() || *s < 0.01 || *s > 100.0)
    {
        return bad(format!(
            "spacing_mm {:?} must be within 0.01..100 mm",
            spec.spacing_mm
        ));
    }
    let finite = [
        ("noise_sd_hu", spec.noise_sd_hu),
        ("texture_sd_hu", spec.texture_sd_hu),
        ("parenchyma_hu", spec.parenchyma_hu),
        ("lung_scale", spec.lung_scale),
        ("body_scale", spec.body_scale),
        ("body_offset_mm[0]", spec.body_offset_mm[0]),
        ("body_offset_mm[1]", spec.body_offset_mm[1]),
    ];
    for (name, v) in finite {
        if !v.is_finite() {
            return bad(format!("{name} is not finite"));
        }
    }
    if spec.noise_sd_hu < 0.0 || spec.texture_sd_hu < 0.0 {
        return bad("noise_sd_hu and texture_sd_hu must be ≥ 0".into());
    }
    if !(0.3..=1.5).contains(&spec.lung_scale) || !(0.3..=1.5).contains(&spec.body_scale) {
        return bad(format!(
            "lung_scale {} and body_scale {} must be within 0.3..1.5",
            spec.lung_scale, spec.body_scale
        ));
    }
    for (i, l) in spec.lesions.iter().enumerate() {
        if !l.radius_mm.is_finite() || l.radius_mm < 0.0 || l.radius_mm > 500.0 {
            return bad(format!(
                "lesion {i}: radius_mm {} must be within 0..500",
                l.radius_mm
            ));
        }
        if !l.hu.is_finite() || !l.angle_deg.is_finite() || !l.z_shift_mm.is_finite() {
            return bad(format!(
                "lesion {i}: hu, angle_deg and z_shift_mm must be finite"
            ));
        }
        if let Err(m) = check_shape(&l.shape) {
            return bad(format!("lesion {i}: {m}"));
        }
    }
    if spec.lesions.len() > MAX_LESIONS {
        return bad(format!(
            "{} lesions exceed the {MAX_LESIONS} allowed",
            spec.lesions.len()
        ));
    }
    if spec
        .effusion_mm
        .iter()
        .any(|d| !d.is_finite() || !(0.0..=100.0).contains(d))
    {
        return bad(format!(
            "effusion_mm {:?} must be within 0..100 mm",
            spec.effusion_mm
        ));
    }
    if !spec.effusion_hu.is_finite() || !(-100.0..=200.0).contains(&spec.effusion_hu) {
        return bad(format!(
            "effusion_hu {} must be within -100..200",
            spec.effusion_hu
        ));
    }
    Ok(())
}

/// Most lesions one spec may hold (their index is kept per voxel as a `u16`).
pub const MAX_LESIONS: usize = 4096;

/// The parameters of a shape that cannot be generated, in words.
fn check_shape(shape: &LesionShape) -> Result<(), String> {
    let within = |name: &str, v: f64, lo: f64, hi: f64| {
        if v.is_finite() && (lo..=hi).contains(&v) {
            Ok(())
        } else {
            Err(format!("{name} {v} must be within {lo}..{hi}"))
        }
    };
    match *shape {
        LesionShape::Ball | LesionShape::Lobe => Ok(()),
        LesionShape::Ellipsoid {
            axis_ratio,
            yaw_deg,
            pitch_deg,
        } => {
            for k in axis_ratio {
                within("ellipsoid axis_ratio", k, 0.1, 1.0)?;
            }
            within("ellipsoid yaw_deg", yaw_deg, -360.0, 360.0)?;
            within("ellipsoid pitch_deg", pitch_deg, -90.0, 90.0)
        }
        LesionShape::Band { thickness_mm } => within("band thickness_mm", thickness_mm, 0.5, 100.0),
        LesionShape::Wedge { half_angle_deg } => {
            within("wedge half_angle_deg", half_angle_deg, 1.0, 80.0)
        }
        LesionShape::Diffuse {
            share,
            consolidation_share,
            ggo_hu,
        } => {
            within("diffuse share", share, 0.01, 1.0)?;
            within("diffuse consolidation_share", consolidation_share, 0.0, 1.0)?;
            within("diffuse ggo_hu", ggo_hu, -1000.0, 100.0)
        }
    }
}

/// Generate a phantom, refusing an invalid spec.
pub fn try_generate(spec: &PhantomSpec) -> Result<Phantom, PhantomError> {
    validate(spec)?;
    build(spec)
}

/// Generate a phantom. An invalid spec (zero or huge dims, bad spacing, non-finite values) is
/// repaired (clamped to the valid ranges, lesions with bad values dropped) with a `tracing`
/// warning; use [`try_generate`] to get an error instead.
pub fn generate(spec: &PhantomSpec) -> Phantom {
    match try_generate(spec) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!("phantom spec repaired: {e}");
            let fixed = sanitized(spec);
            match build(&fixed) {
                Ok(p) => p,
                Err(e2) => {
                    tracing::warn!(
                        "phantom generation failed after repair ({e2}); returning a 1-voxel phantom"
                    );
                    let tiny = PhantomSpec {
                        dims_zyx: [1, 1, 1],
                        lesions: Vec::new(),
                        ..fixed
                    };
                    // A 1-voxel grid: shapes always match, so this cannot fail; fall back to a
                    // hand-built empty phantom anyway rather than panic.
                    build(&tiny).unwrap_or_else(|_| empty_phantom(&tiny))
                }
            }
        }
    }
}

fn empty_phantom(spec: &PhantomSpec) -> Phantom {
    let shape = (1, 1, 1);
    Phantom {
        volume: Volume::new(
            Array3::from_elem(shape, OUTSIDE_FOV_HU),
            Geometry::axial([1.0; 3]),
        ),
        truth: Truth {
            lungs: Array3::zeros(shape),
            ggo: Array3::from_elem(shape, false),
            consolidation: Array3::from_elem(shape, false),
            vessels: Array3::from_elem(shape, false),
            airways: Array3::from_elem(shape, false),
            lung_ml: [0.0; 2],
            ggo_ml: 0.0,
            consolidation_ml: 0.0,
            vessel_ml: 0.0,
            airway_ml: 0.0,
            bronchus_lumen_ml: 0.0,
            bronchus_wall_ml: 0.0,
            per_side: Default::default(),
            per_zone: Default::default(),
            lung_z_extent: [None, None],
            voxel_ml: 0.001,
            lesion_ml: Vec::new(),
        },
        meta: spec.meta.clone(),
        identity: spec.identity.clone(),
        spec: spec.clone(),
    }
}

/// A copy of `spec` with every value clamped into what [`validate`] accepts.
pub fn sanitized(spec: &PhantomSpec) -> PhantomSpec {
    let mut s = spec.clone();
    for d in s.dims_zyx.iter_mut() {
        *d = (*d).clamp(1, 4096);
    }
    while s.voxel_count().is_none_or(|n| n > MAX_VOXELS) && s.dims_zyx[0] > 1 {
        s.dims_zyx[0] /= 2;
    }
    while s.voxel_count().is_none_or(|n| n > MAX_VOXELS) {
        s.dims_zyx[1] = (s.dims_zyx[1] / 2).max(1);
        s.dims_zyx[2] = (s.dims_zyx[2] / 2).max(1);
    }
    let fix =
        |v: f64, lo: f64, hi: f64, dflt: f64| if v.is_finite() { v.clamp(lo, hi) } else { dflt };
    for sp in s.spacing_mm.iter_mut() {
        *sp = fix(*sp, 0.01, 100.0, 1.0);
    }
    s.noise_sd_hu = fix(s.noise_sd_hu, 0.0, 1000.0, 20.0);
    s.texture_sd_hu = fix(s.texture_sd_hu, 0.0, 1000.0, 18.0);
    s.parenchyma_hu = fix(s.parenchyma_hu, -1000.0, 100.0, -850.0);
    s.lung_scale = fix(s.lung_scale, 0.3, 1.5, 1.0);
    s.body_scale = fix(s.body_scale, 0.3, 1.5, 1.0);
    s.body_offset_mm = [
        fix(s.body_offset_mm[0], -500.0, 500.0, 0.0),
        fix(s.body_offset_mm[1], -500.0, 500.0, 0.0),
    ];
    s.lesions.retain(|l| {
        l.radius_mm.is_finite()
            && (0.0..=500.0).contains(&l.radius_mm)
            && l.hu.is_finite()
            && l.angle_deg.is_finite()
            && l.z_shift_mm.is_finite()
            && check_shape(&l.shape).is_ok()
    });
    s.lesions.truncate(MAX_LESIONS);
    s.effusion_mm = s.effusion_mm.map(|d| fix(d, 0.0, 100.0, 0.0));
    s.effusion_hu = fix(s.effusion_hu, -100.0, 200.0, 10.0);
    s
}

/// Grid ↔ anatomy-frame mapping.
#[derive(Debug, Clone, Copy)]
struct Grid {
    ny: usize,
    nx: usize,
    sy: f64,
    sx: f64,
    /// LPS of voxel (0,0,0), `[x, y, z]`.
    origin: [f64; 3],
    sz: f64,
    /// Patient offset from the isocentre, mm.
    off: [f64; 2],
    fov_r2: f64,
}

impl Grid {
    /// Anatomy-frame x of column `ix`.
    #[inline]
    fn ax(&self, ix: usize) -> f64 {
        self.origin[0] + ix as f64 * self.sx - self.off[0]
    }
    #[inline]
    fn ay(&self, iy: usize) -> f64 {
        self.origin[1] + iy as f64 * self.sy - self.off[1]
    }
    fn z(&self, iz: usize) -> f64 {
        self.origin[2] + iz as f64 * self.sz
    }
    /// Column/row index range covering anatomy-frame `[lo, hi]`; `None` when empty.
    fn range(
        lo: f64,
        hi: f64,
        origin: f64,
        off: f64,
        step: f64,
        n: usize,
    ) -> Option<(usize, usize)> {
        let a = ((lo + off - origin) / step).ceil().max(0.0);
        let b = ((hi + off - origin) / step).floor();
        if b < 0.0 || a > b || a >= n as f64 {
            return None;
        }
        Some((a as usize, (b as usize).min(n - 1)))
    }
    fn box_px(
        &self,
        xlo: f64,
        xhi: f64,
        ylo: f64,
        yhi: f64,
    ) -> Option<((usize, usize), (usize, usize))> {
        let xr = Grid::range(xlo, xhi, self.origin[0], self.off[0], self.sx, self.nx)?;
        let yr = Grid::range(ylo, yhi, self.origin[1], self.off[1], self.sy, self.ny)?;
        Some((yr, xr))
    }
}

/// Anatomy-frame bounding box (x, y) of the part of segment `s` (radius `r`) near plane `z`.
fn seg_box(s: &Seg, z: f64, r: f64) -> Option<(f64, f64, f64, f64)> {
    let (zlo, zhi) = (s.p0[2].min(s.p1[2]) - r, s.p0[2].max(s.p1[2]) + r);
    if z < zlo || z > zhi {
        return None;
    }
    let dz = s.p1[2] - s.p0[2];
    let (t0, t1) = if dz.abs() < 1e-9 {
        (0.0, 1.0)
    } else {
        let ta = (z - r - s.p0[2]) / dz;
        let tb = (z + r - s.p0[2]) / dz;
        (ta.min(tb).max(0.0), ta.max(tb).min(1.0))
    };
    if t0 > t1 {
        return None;
    }
    let q = |t: f64| {
        [
            s.p0[0] + t * (s.p1[0] - s.p0[0]),
            s.p0[1] + t * (s.p1[1] - s.p0[1]),
        ]
    };
    let (a, b) = (q(t0), q(t1));
    Some((
        a[0].min(b[0]) - r,
        a[0].max(b[0]) + r,
        a[1].min(b[1]) - r,
        a[1].max(b[1]) + r,
    ))
}

#[derive(Debug, Clone, Default)]
struct SliceStats {
    /// `[side][lung, ggo, consolidation, vessel]` voxel counts.
    counts: [[u64; 4]; 2],
    airway: u64,
    bronchus_lumen: u64,
    bronchus_wall: u64,
    /// Lesion voxels in the lung per spec lesion.
    lesions: Vec<u64>,
}

struct Painter<'a> {
    an: &'a Anatomy,
    grid: Grid,
    tex: &'a Texture,
    gauss: &'a GaussTable,
    texture_sd: f32,
    noise_sd: f32,
    blood_hu: f32,
    slab_samples: usize,
    /// `spec.lesions.len()`.
    lesion_count: usize,
}

impl Painter<'_> {
    /// Paint slice `iz`: classes and labels at the slice centre; HU the mean over
    /// `slab_samples` planes across the slice thickness (partial volume), plus noise.
    fn paint(&self, iz: usize, hu: &mut [i16], lab: &mut [u8], cls: &mut [u8]) -> SliceStats {
        let g = &self.grid;
        let z = g.z(iz);
        let (ny, nx) = (g.ny, g.nx);
        let n = self.slab_samples.max(1);
        let centre = n / 2;
        let mut base = vec![0f32; ny * nx];
        let mut acc = vec![0f32; ny * nx];
        let (mut scls, mut slab, mut sbase) = if n > 1 {
            (vec![0u8; ny * nx], vec![0u8; ny * nx], vec![0f32; ny * nx])
        } else {
            (Vec::new(), Vec::new(), Vec::new())
        };
        // Which lesion painted each pixel (only kept when there are lesions).
        let n_lesions = self.an.balls.len() + self.an.shaped.len();
        let owner_len = if n_lesions > 0 { ny * nx } else { 0 };
        let mut owner = vec![u16::MAX; owner_len];
        let mut sowner = vec![u16::MAX; if n > 1 { owner_len } else { 0 }];
        for j in 0..n {
            let zj = z + ((j as f64 + 0.5) / n as f64 - 0.5) * g.sz;
            if j == centre {
                self.classify(zj, cls, lab, &mut base, &mut owner);
                self.add_noiseless_hu(zj, cls, &base, &mut acc);
            } else {
                sowner.fill(u16::MAX);
                self.classify(zj, &mut scls, &mut slab, &mut sbase, &mut sowner);
                self.add_noiseless_hu(zj, &scls, &sbase, &mut acc);
            }
        }
        let inv_n = 1.0 / n as f32;
        let mut st = SliceStats {
            lesions: vec![0; self.lesion_count],
            ..SliceStats::default()
        };
        let plane = (ny * nx) as u64;
        for i in 0..ny * nx {
            let c = cls[i];
            if c == Class::OutsideFov as u8 {
                hu[i] = OUTSIDE_FOV_HU;
                continue;
            }
            let mut v = acc[i] * inv_n;
            if self.noise_sd > 0.0 {
                v += self.noise_sd * self.gauss.at(iz as u64 * plane + i as u64);
            }
            hu[i] = v.round().clamp(-1024.0, 3071.0) as i16;
            let l = lab[i];
            if l == 1 || l == 2 {
                let s = &mut st.counts[(l - 1) as usize];
                s[0] += 1;
                if c == Class::Ggo as u8 {
                    s[1] += 1;
                } else if c == Class::Consolidation as u8 {
                    s[2] += 1;
                } else if c == Class::Vessel as u8 {
                    s[3] += 1;
                } else if c == Class::BronchusLumen as u8 {
                    st.bronchus_lumen += 1;
                } else if c == Class::BronchusWall as u8 {
                    st.bronchus_wall += 1;
                }
                let lesion = c == Class::Ggo as u8
                    || c == Class::Consolidation as u8
                    || c == Class::HoneycombWall as u8
                    || c == Class::HoneycombCyst as u8;
                if lesion
                    && let Some(k) = owner.get(i)
                    && let Some(v) = st.lesions.get_mut(usize::from(*k))
                {
                    *v += 1;
                }
            } else if c == Class::AirwayLumen as u8 {
                st.airway += 1;
            }
        }
        st
    }

    /// Add the noiseless HU (class mean + gradient + texture) of plane `z` to `acc`.
    fn add_noiseless_hu(&self, z: f64, cls: &[u8], base: &[f32], acc: &mut [f32]) {
        let g = &self.grid;
        let an = self.an;
        let (ny, nx) = (g.ny, g.nx);
        let grav = 30.0 / an.cav_b;
        for iy in 0..ny {
            let y = g.ay(iy);
            for ix in 0..nx {
                let i = iy * nx + ix;
                let c = cls[i];
                if c == Class::OutsideFov as u8 {
                    continue;
                }
                let mut v = base[i];
                let tex_w = if c == Class::Parenchyma as u8 {
                    v += (grav * (y - an.cav_yc)) as f32;
                    1.0
                } else if c == Class::Ggo as u8 {
                    1.5
                } else if c == Class::Consolidation as u8 || c == Class::HoneycombWall as u8 {
                    0.5
                } else {
                    0.0
                };
                if tex_w > 0.0 && self.texture_sd > 0.0 {
                    v += tex_w * self.texture_sd * self.tex.sample(g.ax(ix), y, z);
                }
                acc[i] += v;
            }
        }
    }

    /// Classes, lung labels and class-mean HU of the plane at height `z` (mm).
    /// `owner` (empty, or one per pixel, filled with `u16::MAX`) gets the index of the spec
    /// lesion that painted each pixel.
    fn classify(
        &self,
        z: f64,
        cls: &mut [u8],
        lab: &mut [u8],
        base: &mut [f32],
        owner: &mut [u16],
    ) {
        let g = &self.grid;
        let an = self.an;
        let sc = an.slice_ctx(z);
        let (ny, nx) = (g.ny, g.nx);
        // 1. Base anatomy.
        for iy in 0..ny {
            let y = g.ay(iy);
            let ly = g.origin[1] + iy as f64 * g.sy;
            for ix in 0..nx {
                let i = iy * nx + ix;
                let lx = g.origin[0] + ix as f64 * g.sx;
                if lx * lx + ly * ly > g.fov_r2 {
                    cls[i] = Class::OutsideFov as u8;
                    lab[i] = 0;
                    continue;
                }
                let (c, b, l) = an.base(g.ax(ix), y, &sc);
                cls[i] = c as u8;
                base[i] = b;
                lab[i] = l;
            }
        }
        // Helper to visit pixels near a segment with their squared distance.
        let visit_seg = |s: &Seg, f: &mut dyn FnMut(usize, f64)| {
            let Some((xlo, xhi, ylo, yhi)) = seg_box(s, z, s.r) else {
                return;
            };
            let Some(((y0, y1), (x0, x1))) = g.box_px(xlo, xhi, ylo, yhi) else {
                return;
            };
            for iy in y0..=y1 {
                let y = g.ay(iy);
                for ix in x0..=x1 {
                    let d2 = dist2_to_segment([g.ax(ix), y, z], s.p0, s.p1);
                    if d2 <= s.r * s.r {
                        f(iy * nx + ix, d2);
                    }
                }
            }
        };
        // 2. Trachea and main bronchi (not lung).
        for s in &an.airways {
            visit_seg(s, &mut |i, d2| {
                if cls[i] == Class::OutsideFov as u8 || cls[i] == Class::Bone as u8 {
                    return;
                }
                lab[i] = 0;
                if d2 <= s.r_lumen * s.r_lumen {
                    cls[i] = Class::AirwayLumen as u8;
                    base[i] = -1000.0;
                } else {
                    cls[i] = Class::AirwayWall as u8;
                    base[i] = 60.0;
                }
            });
        }
        // What the shaped lesions claim in this plane: rank of the class (0 none), HU, owner.
        let claims = self.shaped_claims(z, &sc, lab);
        // 3. GGO over parenchyma of its own lung.
        let paint_ball =
            |kind: LesionKind, cls: &mut [u8], lab: &[u8], base: &mut [f32], owner: &mut [u16]| {
                for b in an.balls.iter().filter(|b| b.kind == kind) {
                    let dz = z - b.c[2];
                    if dz.abs() > b.r {
                        continue;
                    }
                    let rr2 = b.r * b.r - dz * dz;
                    let rr = rr2.sqrt();
                    let Some(((y0, y1), (x0, x1))) =
                        g.box_px(b.c[0] - rr, b.c[0] + rr, b.c[1] - rr, b.c[1] + rr)
                    else {
                        continue;
                    };
                    for iy in y0..=y1 {
                        let dy = g.ay(iy) - b.c[1];
                        for ix in x0..=x1 {
                            let dx = g.ax(ix) - b.c[0];
                            if dx * dx + dy * dy > rr2 {
                                continue;
                            }
                            let i = iy * nx + ix;
                            if lab[i] != b.label {
                                continue;
                            }
                            let c = cls[i];
                            let ok = match kind {
                                LesionKind::Ggo => c == Class::Parenchyma as u8,
                                LesionKind::Consolidation | LesionKind::Honeycomb => {
                                    c != Class::BronchusLumen as u8
                                }
                            };
                            if ok {
                                if let Some(o) = owner.get_mut(i) {
                                    *o = b.idx;
                                }
                                (cls[i], base[i]) = match kind {
                                    LesionKind::Ggo => (Class::Ggo as u8, b.hu as f32),
                                    LesionKind::Consolidation => {
                                        (Class::Consolidation as u8, b.hu as f32)
                                    }
                                    LesionKind::Honeycomb if in_cyst([g.ax(ix), g.ay(iy), z]) => {
                                        (Class::HoneycombCyst as u8, -950.0)
                                    }
                                    LesionKind::Honeycomb => {
                                        (Class::HoneycombWall as u8, b.hu as f32)
                                    }
                                };
                            }
                        }
                    }
                }
                // Then the shaped lesions' claims of this class.
                let Some((rank, hu, by)) = &claims else {
                    return;
                };
                let want = kind_rank(kind);
                for i in 0..ny * nx {
                    if rank[i] != want {
                        continue;
                    }
                    let c = cls[i];
                    let ok = match kind {
                        LesionKind::Ggo => c == Class::Parenchyma as u8,
                        _ => c != Class::BronchusLumen as u8,
                    };
                    if !ok {
                        continue;
                    }
                    if let Some(o) = owner.get_mut(i) {
                        *o = by[i];
                    }
                    (cls[i], base[i]) = match kind {
                        LesionKind::Ggo => (Class::Ggo as u8, hu[i]),
                        LesionKind::Consolidation => (Class::Consolidation as u8, hu[i]),
                        LesionKind::Honeycomb => {
                            let (iy, ix) = (i / nx, i % nx);
                            if in_cyst([g.ax(ix), g.ay(iy), z]) {
                                (Class::HoneycombCyst as u8, -950.0)
                            } else {
                                (Class::HoneycombWall as u8, hu[i])
                            }
                        }
                    };
                }
            };
        paint_ball(LesionKind::Ggo, cls, lab, base, owner);
        // 4. Vessels over parenchyma and GGO.
        for s in &an.vessels {
            visit_seg(s, &mut |i, _| {
                let c = cls[i];
                if lab[i] != 0 && (c == Class::Parenchyma as u8 || c == Class::Ggo as u8) {
                    cls[i] = Class::Vessel as u8;
                    base[i] = self.blood_hu;
                }
            });
        }
        // 5. Intrapulmonary bronchi (wall, then lumen).
        for s in &an.bronchi {
            visit_seg(s, &mut |i, d2| {
                let c = cls[i];
                if lab[i] == 0 {
                    return;
                }
                let soft = c == Class::Parenchyma as u8
                    || c == Class::Ggo as u8
                    || c == Class::Vessel as u8;
                if d2 <= s.r_lumen * s.r_lumen {
                    if soft || c == Class::BronchusWall as u8 {
                        cls[i] = Class::BronchusLumen as u8;
                        base[i] = -1000.0;
                    }
                } else if soft {
                    cls[i] = Class::BronchusWall as u8;
                    base[i] = -100.0;
                }
            });
        }
        // 6. Consolidation over everything in its lung except bronchus lumen.
        paint_ball(LesionKind::Consolidation, cls, lab, base, owner);
        // 7. Honeycombing likewise.
        paint_ball(LesionKind::Honeycomb, cls, lab, base, owner);
    }

    /// Per pixel of plane `z`: the class rank (see [`kind_rank`]; 0 none), HU and spec index
    /// of the shaped lesion that claims it. A denser class wins over a lighter one, a later
    /// lesion over an earlier one of the same class. `None` when no shaped lesion reaches `z`.
    #[allow(clippy::type_complexity)]
    fn shaped_claims(
        &self,
        z: f64,
        sc: &crate::anatomy::SliceCtx,
        lab: &[u8],
    ) -> Option<(Vec<u8>, Vec<f32>, Vec<u16>)> {
        let g = &self.grid;
        let an = self.an;
        let here: Vec<_> = an
            .shaped
            .iter()
            .filter(|s| z >= s.bbox[4] && z <= s.bbox[5])
            .collect();
        if here.is_empty() {
            return None;
        }
        let n = g.ny * g.nx;
        let (mut rank, mut hu, mut by) = (vec![0u8; n], vec![0f32; n], vec![u16::MAX; n]);
        for s in here {
            let Some(((y0, y1), (x0, x1))) = g.box_px(s.bbox[0], s.bbox[1], s.bbox[2], s.bbox[3])
            else {
                continue;
            };
            let t = match s.form {
                crate::anatomy::Form::Band { thickness, .. } => thickness,
                _ => 0.0,
            };
            let near = [an.slice_ctx(z - t), an.slice_ctx(z + t)];
            for iy in y0..=y1 {
                let y = g.ay(iy);
                for ix in x0..=x1 {
                    let i = iy * g.nx + ix;
                    if lab[i] != s.label {
                        continue;
                    }
                    if let Some((kind, v)) = s.at(an, [g.ax(ix), y, z], sc, &near) {
                        let r = kind_rank(kind);
                        if r >= rank[i] {
                            (rank[i], hu[i], by[i]) = (r, v, s.idx);
                        }
                    }
                }
            }
        }
        Some((rank, hu, by))
    }
}

/// Honeycomb cysts: one per cell of a 7 mm lattice, centre jittered within the cell, radius
/// 2.5–4 mm (deterministic: a hash of the cell).
const CYST_CELL_MM: f64 = 7.0;

fn in_cyst(p: [f64; 3]) -> bool {
    let cell = p.map(|v| (v / CYST_CELL_MM).floor() as i64);
    for dz in -1..=1 {
        for dy in -1..=1 {
            for dx in -1..=1 {
                let c = [cell[0] + dx, cell[1] + dy, cell[2] + dz];
                let mut rng = crate::rng::SplitMix::new(
                    (c[0] as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
                        ^ (c[1] as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
                        ^ (c[2] as u64).wrapping_mul(0x1656_67B1_9E37_79F9),
                );
                let centre = [0, 1, 2].map(|k| (c[k] as f64 + rng.range(0.2, 0.8)) * CYST_CELL_MM);
                let r = rng.range(2.5, 4.0);
                let d2: f64 = (0..3).map(|k| (p[k] - centre[k]).powi(2)).sum();
                if d2 <= r * r {
                    return true;
                }
            }
        }
    }
    false
}

pub(crate) fn grid_geometry(spec: &PhantomSpec) -> Geometry {
    let [nz, ny, nx] = spec.dims_zyx;
    let [sz, sy, sx] = spec.spacing_mm;
    let mut geo = Geometry::axial(spec.spacing_mm);
    geo.origin_mm = [
        -((nx as f64 - 1.0) / 2.0) * sx,
        -((ny as f64 - 1.0) / 2.0) * sy,
        -((nz as f64 - 1.0) / 2.0) * sz,
    ];
    geo
}

fn build(spec: &PhantomSpec) -> Result<Phantom, PhantomError> {
    let [nz, ny, nx] = spec.dims_zyx;
    let [sz, sy, sx] = spec.spacing_mm;
    let geo = grid_geometry(spec);
    let fov_r = (nx as f64 * sx).min(ny as f64 * sy) / 2.0;
    let grid = Grid {
        ny,
        nx,
        sy,
        sx,
        origin: geo.origin_mm,
        sz,
        off: spec.body_offset_mm,
        fov_r2: fov_r * fov_r,
    };
    let an = Anatomy::new(spec);
    let tex = Texture::new(spec.anatomy_seed(), 1.6);
    let gauss = GaussTable::new(spec.seed);
    let painter = Painter {
        an: &an,
        grid,
        tex: &tex,
        gauss: &gauss,
        texture_sd: spec.texture_sd_hu as f32,
        noise_sd: spec.noise_sd_hu as f32,
        blood_hu: if spec.contrast { 250.0 } else { 40.0 },
        slab_samples: (spec.slab_samples.clamp(1, 15) as usize) | 1,
        lesion_count: spec.lesions.len(),
    };
    let plane = ny * nx;
    let n = plane * nz;
    let mut hu = vec![0i16; n];
    let mut lab = vec![0u8; n];
    let mut cls = vec![0u8; n];
    let stats: Vec<SliceStats> = hu
        .par_chunks_mut(plane)
        .zip(lab.par_chunks_mut(plane))
        .zip(cls.par_chunks_mut(plane))
        .enumerate()
        .map(|(iz, ((h, l), c))| painter.paint(iz, h, l, c))
        .collect();

    let voxel_ml = geo.voxel_volume_ml();
    let mut extent: [Option<[usize; 2]>; 2] = [None, None];
    for (iz, st) in stats.iter().enumerate() {
        for (ext, c) in extent.iter_mut().zip(st.counts.iter()) {
            if c[0] > 0 {
                *ext = Some(match *ext {
                    None => [iz, iz],
                    Some([lo, _]) => [lo, iz],
                });
            }
        }
    }
    let mut per_side: [RegionTruth; 2] = Default::default();
    let mut per_zone: [RegionTruth; 6] = Default::default();
    let mut airway = 0u64;
    let mut lesion_voxels = vec![0u64; spec.lesions.len()];
    let (mut b_lumen, mut b_wall) = (0u64, 0u64);
    for (iz, st) in stats.iter().enumerate() {
        airway += st.airway;
        b_lumen += st.bronchus_lumen;
        b_wall += st.bronchus_wall;
        for (t, v) in lesion_voxels.iter_mut().zip(&st.lesions) {
            *t += v;
        }
        for side in 0..2 {
            let c = st.counts[side];
            let add = |r: &mut RegionTruth| {
                r.lung_ml += c[0] as f64 * voxel_ml;
                r.ggo_ml += c[1] as f64 * voxel_ml;
                r.consolidation_ml += c[2] as f64 * voxel_ml;
                r.vessel_ml += c[3] as f64 * voxel_ml;
            };
            add(&mut per_side[side]);
            if let Some([lo, hi]) = extent[side]
                && let Some(zone) = zone_of(iz, lo, hi)
            {
                add(&mut per_zone[side * 3 + zone.index()]);
            }
        }
    }
    let mask = |class: Class| -> Vec<bool> { cls.par_iter().map(|&c| c == class as u8).collect() };
    let shape = (nz, ny, nx);
    let arr = |v: Vec<bool>| {
        Array3::from_shape_vec(shape, v)
            .map_err(|e| PhantomError::Internal(format!("truth mask shape: {e}")))
    };
    let truth = Truth {
        ggo: arr(mask(Class::Ggo))?,
        consolidation: arr(mask(Class::Consolidation))?,
        vessels: arr(mask(Class::Vessel))?,
        airways: arr(mask(Class::AirwayLumen))?,
        lungs: Array3::from_shape_vec(shape, lab)
            .map_err(|e| PhantomError::Internal(format!("lung mask shape: {e}")))?,
        lung_ml: [per_side[0].lung_ml, per_side[1].lung_ml],
        ggo_ml: per_side[0].ggo_ml + per_side[1].ggo_ml,
        consolidation_ml: per_side[0].consolidation_ml + per_side[1].consolidation_ml,
        vessel_ml: per_side[0].vessel_ml + per_side[1].vessel_ml,
        airway_ml: airway as f64 * voxel_ml,
        bronchus_lumen_ml: b_lumen as f64 * voxel_ml,
        bronchus_wall_ml: b_wall as f64 * voxel_ml,
        per_side,
        per_zone,
        lung_z_extent: extent,
        voxel_ml,
        lesion_ml: lesion_voxels.iter().map(|&v| v as f64 * voxel_ml).collect(),
    };
    drop(cls);
    let volume = Volume::new(
        Array3::from_shape_vec(shape, hu)
            .map_err(|e| PhantomError::Internal(format!("volume shape: {e}")))?,
        geo,
    );
    let meta = crate::meta::complete_meta(spec);
    tracing::debug!(
        lung_ml = truth.total_lung_ml(),
        affected_ml = truth.affected_ml(),
        "phantom generated"
    );
    Ok(Phantom {
        volume,
        truth,
        meta,
        identity: spec.identity.clone(),
        spec: spec.clone(),
    })
}
