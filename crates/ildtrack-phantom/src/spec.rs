//! What to generate: [`PhantomSpec`], lesions, and named presets for the accuracy tests.

use ildtrack_volume::{Identity, ScanMeta};
use serde::{Deserialize, Serialize};

/// A patient side. DICOM LPS: the right lung lies at negative x (image left on a standard
/// axial display), the left lung at positive x.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Side {
    Right,
    Left,
}

impl Side {
    /// Lung label used in [`crate::Truth::lungs`]: 1 right, 2 left.
    pub fn label(self) -> u8 {
        match self {
            Side::Right => 1,
            Side::Left => 2,
        }
    }

    /// 0 for right, 1 for left (index into `[right, left]` arrays).
    pub fn index(self) -> usize {
        match self {
            Side::Right => 0,
            Side::Left => 1,
        }
    }

    /// Sign of x (LPS) on this side: −1 right, +1 left.
    pub fn x_sign(self) -> f64 {
        match self {
            Side::Right => -1.0,
            Side::Left => 1.0,
        }
    }
}

/// Craniocaudal zone: equal thirds of one lung's own z-extent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Zone {
    Upper,
    Middle,
    Lower,
}

impl Zone {
    /// 0 upper, 1 middle, 2 lower.
    pub fn index(self) -> usize {
        match self {
            Zone::Upper => 0,
            Zone::Middle => 1,
            Zone::Lower => 2,
        }
    }

    /// Centre of the zone as a fraction of the lung height from its lowest voxel (0) to its apex (1).
    pub fn centre_fraction(self) -> f64 {
        match self {
            Zone::Upper => 5.0 / 6.0,
            Zone::Middle => 0.5,
            Zone::Lower => 1.0 / 6.0,
        }
    }
}

/// Kind of lesion; its HU comes from [`LesionSpec::hu`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LesionKind {
    /// Ground-glass opacity (default −500 HU). Vessels running through it stay vessels.
    Ggo,
    /// Consolidation (default +20 HU). Covers vessels and GGO; airway lumen inside it stays air
    /// (air bronchogram).
    Consolidation,
    /// Honeycombing (fibrosis): clustered air cysts (2.5–4 mm radius, −950 HU, on a jittered
    /// 7 mm lattice) in fibrous walls at `hu` (default −50 HU). Lung, neither GGO nor
    /// consolidation in the truth; covers parenchyma, vessels and GGO like consolidation does.
    Honeycomb,
}

/// Where a lesion's anchor sits on its lung's surface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Placement {
    /// In the axial plane at the centre height of the zone (plus `z_shift_mm`), on the ray from
    /// the lung's axis at `angle_deg`: costal, mediastinal or paravertebral by the angle.
    #[default]
    Surface,
    /// On the diaphragmatic surface (the dome under the lung), straight below a point half way
    /// from the lung's axis towards `angle_deg`; `zone` and `z_shift_mm` are ignored.
    Diaphragm,
    /// On the apical surface, straight above a point a quarter of the way from the lung's axis
    /// towards `angle_deg`; `zone` and `z_shift_mm` are ignored.
    Apex,
}

/// The shape of a lesion, always intersected with the lung it belongs to. Sizes in mm.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub enum LesionShape {
    /// A ball of `radius_mm` centred on the anchor (a hemisphere against the pleura when
    /// subpleural).
    #[default]
    Ball,
    /// An ellipsoid centred on the anchor with semi-axes `radius_mm × axis_ratio` (`[1, ., .]`
    /// ratios in 0.2..=1), first axis turned `yaw_deg` about z from the outward normal, then
    /// tilted `pitch_deg` out of the axial plane.
    Ellipsoid {
        axis_ratio: [f64; 3],
        yaw_deg: f64,
        pitch_deg: f64,
    },
    /// A layer along the pleura: the lung within `thickness_mm` of the lung surface and within
    /// `radius_mm` of the anchor.
    Band { thickness_mm: f64 },
    /// A wedge with its base on the pleura and its tip `radius_mm` inside the lung along the
    /// inward normal: a cone of half-angle `half_angle_deg` around the normal.
    Wedge { half_angle_deg: f64 },
    /// A large region of one zone: all of the lung's third given by `zone` (shifted by
    /// `z_shift_mm`), between planes tilted like the oblique fissure; `radius_mm`, the angle
    /// and the placement are ignored.
    Lobe,
    /// Diffuse dependent disease (rapidly progressive ILD, severe pneumonia): the `share`
    /// (0.05..=0.95) of the lung that is most posterior and basal, ground glass at `ggo_hu`
    /// at its front edge growing denser towards the back, where the most dependent
    /// `consolidation_share` of it is `kind` at `hu` (all ground glass when `kind` is GGO).
    /// Size, zone, angle and placement are ignored; one lung per lesion (two for bilateral).
    Diffuse {
        share: f64,
        consolidation_share: f64,
        ggo_hu: f64,
    },
}

/// One lesion: by default a ball of `radius_mm` intersected with the lung it belongs to
/// (other shapes: [`LesionShape`]).
///
/// Placement: its centre sits at the centre height of `zone` in its lung, on a ray from the
/// lung's axis at `angle_deg` around it (0 = posterior, 90 = lateral, 180 = anterior,
/// 270 = medial). `subpleural = true` puts the centre on the pleural surface (so the ball's
/// part inside the lung abuts the chest wall); `false` puts it `radius_mm + 12` mm inside the
/// surface (as far as the lung allows), i.e. beyond the 10 mm subpleural band; a core centre
/// that would fall outside the lung moves back out along the ray until it is in the lung. When
/// the ray meets no lung at that height (under the dome) the anchor climbs until it does.
/// [`Placement`] moves the anchor to the diaphragmatic or apical surface instead.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LesionSpec {
    pub kind: LesionKind,
    pub side: Side,
    pub zone: Zone,
    pub subpleural: bool,
    pub radius_mm: f64,
    /// Mean HU of the lesion (texture and noise are added on top).
    pub hu: f64,
    /// Position around the lung axis, degrees (0 posterior, 90 lateral, 180 anterior).
    pub angle_deg: f64,
    /// Shift of the centre along z in mm from the zone centre (positive = towards the head).
    #[serde(default)]
    pub z_shift_mm: f64,
    #[serde(default)]
    pub shape: LesionShape,
    #[serde(default)]
    pub placement: Placement,
}

impl LesionSpec {
    /// A subpleural ground-glass ball, posterior-lateral (angle 40°), −500 HU.
    pub fn ggo(side: Side, zone: Zone, radius_mm: f64) -> Self {
        LesionSpec {
            kind: LesionKind::Ggo,
            side,
            zone,
            subpleural: true,
            radius_mm,
            hu: -500.0,
            angle_deg: 40.0,
            z_shift_mm: 0.0,
            shape: LesionShape::Ball,
            placement: Placement::Surface,
        }
    }

    /// A subpleural consolidation ball, posterior-lateral (angle 40°), +20 HU.
    pub fn consolidation(side: Side, zone: Zone, radius_mm: f64) -> Self {
        LesionSpec {
            kind: LesionKind::Consolidation,
            hu: 20.0,
            ..LesionSpec::ggo(side, zone, radius_mm)
        }
    }

    /// Subpleural honeycombing, posterior-lateral (angle 40°), walls at −50 HU.
    pub fn honeycomb(side: Side, zone: Zone, radius_mm: f64) -> Self {
        LesionSpec {
            kind: LesionKind::Honeycomb,
            hu: -50.0,
            ..LesionSpec::ggo(side, zone, radius_mm)
        }
    }

    pub fn at_angle(mut self, angle_deg: f64) -> Self {
        self.angle_deg = angle_deg;
        self
    }

    pub fn core(mut self) -> Self {
        self.subpleural = false;
        self
    }

    pub fn with_hu(mut self, hu: f64) -> Self {
        self.hu = hu;
        self
    }

    pub fn with_shape(mut self, shape: LesionShape) -> Self {
        self.shape = shape;
        self
    }

    pub fn placed(mut self, placement: Placement) -> Self {
        self.placement = placement;
        self
    }
}

/// Everything that defines one synthetic chest CT. Anatomy is in millimetres and independent
/// of the voxel grid; the grid (`dims_zyx`, `spacing_mm`) only samples it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhantomSpec {
    /// Voxel counts `[z, y, x]`.
    pub dims_zyx: [usize; 3],
    /// Voxel spacing `[z, y, x]` in mm (z = slice spacing = slice thickness written).
    pub spacing_mm: [f64; 3],
    /// Seed for the noise (and the anatomy unless `anatomy_seed` is set).
    pub seed: u64,
    /// Seed for the vessel tree and the parenchymal texture; `None` = `seed`. Give visits of the
    /// same synthetic patient the same anatomy seed.
    pub anatomy_seed: Option<u64>,
    /// SD of the white noise added to every voxel in the field of view, HU.
    pub noise_sd_hu: f64,
    /// SD of the smooth parenchymal texture (correlated, ~3 mm grain), HU.
    pub texture_sd_hu: f64,
    /// Mean HU of normal parenchyma at full inspiration (adult ≈ −850; children denser).
    pub parenchyma_hu: f64,
    pub lesions: Vec<LesionSpec>,
    /// Shift of the patient in the image plane `[x, y]` (LPS mm) from the scanner isocentre.
    pub body_offset_mm: [f64; 2],
    /// Arms above the head (out of the chest slices); `false` puts them beside the chest.
    pub arms_up: bool,
    /// Relative lung volume (inspiration): 1.0 = full inspiration. Lung volume ∝ `lung_scale`
    /// (height ∝ `lung_scale^0.6`, in-plane ∝ `lung_scale^0.2`); parenchyma gets denser
    /// below 1.0 (+300 HU × (1 − lung_scale)).
    pub lung_scale: f64,
    /// Overall body size (1.0 adult, ~0.78 for an 11-year-old). Lengths scale linearly.
    pub body_scale: f64,
    /// This lung is collapsed/absent: its hemithorax holds pleural fluid (+15 HU) and it has
    /// no lung voxels in the truth.
    pub collapsed: Option<Side>,
    /// The lungs meet at the anterior junction with no tissue between them (over the upper
    /// two thirds of their height).
    pub lungs_touching: bool,
    /// Contrast-enhanced: blood (heart, aorta, pulmonary vessels) at +250 HU instead of +40.
    /// Also sets `meta.contrast_agent` when written if that is empty.
    pub contrast: bool,
    /// Streaks of gas in the anterior-lateral subcutaneous fat over the middle of the lungs
    /// (subcutaneous emphysema, a complication of anti-MDA5 dermatomyositis): lung-like
    /// −880 HU, not lung.
    #[serde(default)]
    pub subcutaneous_emphysema: bool,
    /// Acquisition facts written to DICOM (kernel, date, age, ...). `slice_thickness_mm` and
    /// `pixel_spacing_mm` are filled from the grid when empty.
    pub meta: ScanMeta,
    /// Synthetic patient name and ID written to DICOM.
    pub identity: Identity,
    /// Dependent pleural effusion `[right, left]`: greatest depth of the posterior fluid
    /// crescent in mm (0 = none). The fluid takes the place of lung (it is not lung in the
    /// truth); it is deepest at the back and fades towards the apex.
    #[serde(default)]
    pub effusion_mm: [f64; 2],
    /// Mean HU of the effusion fluid.
    #[serde(default = "effusion_hu")]
    pub effusion_hu: f64,
    /// Partial volume across the slice thickness: each voxel's HU is the mean over this many
    /// planes spread evenly over its slice (odd, 1..=15; 1 = point sampling). The truth masks
    /// stay those of the slice centre, so with > 1 thick slices blur edges the truth does not.
    #[serde(default = "one")]
    pub slab_samples: u32,
}

fn one() -> u32 {
    1
}

fn effusion_hu() -> f64 {
    10.0
}

impl Default for PhantomSpec {
    /// A healthy adult at full inspiration (≈ 5.5 L of lung), 512×512×300 at
    /// 0.78×0.78×1.0 mm, standard kernel, noise 20 HU.
    fn default() -> Self {
        PhantomSpec {
            dims_zyx: [300, 512, 512],
            spacing_mm: [1.0, 0.78125, 0.78125],
            seed: 1,
            anatomy_seed: None,
            noise_sd_hu: 20.0,
            texture_sd_hu: 18.0,
            parenchyma_hu: -850.0,
            lesions: Vec::new(),
            body_offset_mm: [0.0, 0.0],
            arms_up: true,
            lung_scale: 1.0,
            body_scale: 1.0,
            collapsed: None,
            lungs_touching: false,
            contrast: false,
            subcutaneous_emphysema: false,
            meta: default_meta(),
            identity: Identity {
                patient_name: Some("PHANTOM^SYNTHETIC".into()),
                patient_id: Some("PHANTOM-0001".into()),
            },
            effusion_mm: [0.0; 2],
            effusion_hu: effusion_hu(),
            slab_samples: 1,
        }
    }
}

pub(crate) fn default_meta() -> ScanMeta {
    ScanMeta {
        modality: Some("CT".into()),
        series_description: Some("CHEST synthetic phantom".into()),
        study_date: Some("2025-01-15".into()),
        series_time: Some("10:00:00".into()),
        patient_age_years: Some(45.0),
        patient_sex: Some("F".into()),
        manufacturer: Some("ildtrack".into()),
        manufacturer_model: Some("Synthetic Phantom".into()),
        kernel: Some("B45f".into()),
        kvp: Some(120.0),
        exposure_mas: Some(100.0),
        source_format: Some("phantom".into()),
        ..ScanMeta::default()
    }
}

/// Names accepted by [`PhantomSpec::preset`].
pub const PRESETS: &[&str] = &[
    "healthy",
    "ild",
    "large-consolidation",
    "collapsed-right",
    "collapsed-left",
    "lungs-touching",
    "thick-slices",
    "thin-slices",
    "sharp-kernel",
    "off-centre",
    "arms-down",
    "small",
    "subcutaneous-emphysema",
];

impl PhantomSpec {
    /// The same anatomy on another voxel grid.
    pub fn with_grid(mut self, dims_zyx: [usize; 3], spacing_mm: [f64; 3]) -> Self {
        self.dims_zyx = dims_zyx;
        self.spacing_mm = spacing_mm;
        self
    }

    /// A grid that covers the default anatomy quickly: 160×160×100 at 2.5×2.5×3 mm
    /// (whole chest, ~2.5 M voxels, well under a second to generate).
    pub fn small() -> Self {
        PhantomSpec::default().with_grid([100, 160, 160], [3.0, 2.5, 2.5])
    }

    /// Typical adult ILD pattern: subpleural lower-zone GGO with consolidation cores, both sides,
    /// plus a smaller middle-zone GGO on the right.
    pub fn ild() -> Self {
        PhantomSpec {
            lesions: vec![
                LesionSpec::ggo(Side::Right, Zone::Lower, 35.0),
                LesionSpec::consolidation(Side::Right, Zone::Lower, 18.0),
                LesionSpec::ggo(Side::Left, Zone::Lower, 30.0).at_angle(60.0),
                LesionSpec::consolidation(Side::Left, Zone::Lower, 14.0).at_angle(60.0),
                LesionSpec::ggo(Side::Right, Zone::Middle, 20.0).at_angle(100.0),
            ],
            ..PhantomSpec::default()
        }
    }

    /// A named variant of the default adult for the robustness tests of issue 3
    /// (see [`PRESETS`]). Returns `None` for an unknown name.
    pub fn preset(name: &str) -> Option<Self> {
        let base = PhantomSpec::default();
        let spec = match name {
            "healthy" => base,
            "ild" => PhantomSpec::ild(),
            // About a third of the right lung: a large subpleural posterior-lateral consolidation
            // spanning the lower and middle zones.
            "large-consolidation" => PhantomSpec {
                lesions: vec![
                    LesionSpec::consolidation(Side::Right, Zone::Lower, 90.0)
                        .at_angle(50.0)
                        .with_z(30.0),
                ],
                ..base
            },
            "collapsed-right" => PhantomSpec {
                collapsed: Some(Side::Right),
                ..base
            },
            "collapsed-left" => PhantomSpec {
                collapsed: Some(Side::Left),
                ..base
            },
            "lungs-touching" => PhantomSpec {
                lungs_touching: true,
                ..base
            },
            "thick-slices" => {
                let mut s = PhantomSpec::ild().with_grid([60, 512, 512], [5.0, 0.78125, 0.78125]);
                s.slab_samples = 5;
                s.meta.series_description = Some("CHEST 5 mm".into());
                s
            }
            "thin-slices" => {
                PhantomSpec::ild().with_grid([480, 512, 512], [0.625, 0.78125, 0.78125])
            }
            "sharp-kernel" => {
                let mut s = PhantomSpec::ild();
                s.noise_sd_hu = 90.0;
                s.meta.kernel = Some("B70f".into());
                s
            }
            "off-centre" => PhantomSpec {
                body_offset_mm: [35.0, 25.0],
                ..PhantomSpec::ild()
            },
            "arms-down" => PhantomSpec {
                arms_up: false,
                ..PhantomSpec::ild()
            },
            "small" => PhantomSpec::small(),
            "subcutaneous-emphysema" => PhantomSpec {
                subcutaneous_emphysema: true,
                ..base
            },
            _ => return None,
        };
        Some(spec)
    }

    /// The seed of the anatomy (vessel tree, texture).
    pub fn anatomy_seed(&self) -> u64 {
        self.anatomy_seed.unwrap_or(self.seed)
    }

    /// Voxel count, checked for overflow.
    pub fn voxel_count(&self) -> Option<usize> {
        self.dims_zyx[0]
            .checked_mul(self.dims_zyx[1])?
            .checked_mul(self.dims_zyx[2])
    }
}

impl LesionSpec {
    /// Shift the centre along z (mm, + towards the head).
    pub fn with_z(mut self, z_shift_mm: f64) -> Self {
        self.z_shift_mm = z_shift_mm;
        self
    }
}
