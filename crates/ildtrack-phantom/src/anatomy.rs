//! The analytic chest model, in millimetres, in an "anatomy frame": x (patient left +),
//! y (posterior +), z (head +), origin at the body centre in-plane and the volume centre in z.
//!
//! Every structure is a cheap analytic test (ellipses, ellipsoids, capsules) so that each slice
//! can be painted independently and in parallel. The lung test [`Anatomy::lung_side`] is the
//! single definition of "lung" used both for painting and for growing the vessel tree.

use crate::rng::SplitMix;
use crate::spec::{LesionKind, LesionShape, LesionSpec, PhantomSpec, Placement, Side};

/// Tissue class of a voxel, the painting result from which HU and truth masks are derived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Class {
    /// Outside the reconstruction circle (written as pixel padding).
    OutsideFov = 0,
    Air = 1,
    Fat = 2,
    Soft = 3,
    Bone = 4,
    Cartilage = 5,
    Blood = 6,
    Organ = 7,
    Table = 8,
    PleuralFluid = 9,
    /// Trachea and main bronchi lumen (not lung).
    AirwayLumen = 10,
    /// Trachea and main bronchi wall (not lung).
    AirwayWall = 11,
    /// Normal lung parenchyma.
    Parenchyma = 12,
    /// Pulmonary vessel inside the lung.
    Vessel = 13,
    /// Intrapulmonary bronchus lumen (lung).
    BronchusLumen = 14,
    /// Intrapulmonary bronchus wall (lung).
    BronchusWall = 15,
    Ggo = 16,
    Consolidation = 17,
    /// Gas in the stomach or the chest wall (air that is not lung).
    BowelGas = 18,
    /// Fibrous wall of honeycombing (lung).
    HoneycombWall = 19,
    /// Air cyst of honeycombing (lung).
    HoneycombCyst = 20,
}

/// A tube segment with a round cross-section (a capsule).
#[derive(Debug, Clone, Copy)]
pub struct Seg {
    pub p0: [f64; 3],
    pub p1: [f64; 3],
    /// Outer radius (vessel radius, or airway wall outer radius), mm.
    pub r: f64,
    /// Lumen radius for airways (0 for vessels), mm.
    pub r_lumen: f64,
}

/// A branch waiting to grow: start, direction, radius, generation, with a bronchus beside it.
type Branch = ([f64; 3], [f64; 3], f64, u32, bool);

/// A lesion ball after placement.
#[derive(Debug, Clone, Copy)]
pub struct Ball {
    pub c: [f64; 3],
    pub r: f64,
    pub kind: LesionKind,
    pub hu: f64,
    pub label: u8,
    /// Index of its spec lesion (owner in the per-lesion truth).
    pub idx: u16,
}

/// A lesion of another shape than a ball, after placement (see [`LesionShape`]).
#[derive(Debug, Clone, Copy)]
pub struct Shaped {
    pub kind: LesionKind,
    pub hu: f64,
    pub label: u8,
    pub idx: u16,
    pub form: Form,
    /// Anatomy-frame box `[xlo, xhi, ylo, yhi, zlo, zhi]` that holds the whole lesion.
    pub bbox: [f64; 6],
}

/// The geometry of a [`Shaped`] lesion.
#[derive(Debug, Clone, Copy)]
pub enum Form {
    /// Unit axes (rows) and their semi-axes, mm.
    Ellipsoid {
        c: [f64; 3],
        axes: [[f64; 3]; 3],
        semi: [f64; 3],
    },
    /// Lung within `thickness` of the lung surface and within `r` of `c`.
    Band { c: [f64; 3], r: f64, thickness: f64 },
    /// Cone from `apex` along unit `dir`, up to `len` mm.
    Wedge {
        apex: [f64; 3],
        dir: [f64; 3],
        cos_half: f64,
        len: f64,
    },
    /// Lung between the planes `z = zlo + tilt (y − cy)` and `z = zhi + tilt (y − cy)`.
    Lobe {
        zlo: f64,
        zhi: f64,
        tilt: f64,
        cy: f64,
    },
    /// Lung whose dependency score (see [`Anatomy::dependency`]) is at least `thr`; the part
    /// with `u = (score − thr) / (top − thr) ≥ cons_from` is `kind`, the rest ground glass.
    Diffuse {
        thr: f64,
        top: f64,
        cons_from: f64,
        ggo_hu: f64,
    },
}

/// Which lesion class a shaped lesion paints at a point; the painting passes go GGO, then
/// consolidation, then honeycombing, and a denser class claims a point before a lighter one.
pub fn kind_rank(kind: LesionKind) -> u8 {
    match kind {
        LesionKind::Ggo => 1,
        LesionKind::Consolidation => 2,
        LesionKind::Honeycomb => 3,
    }
}

#[derive(Debug, Clone, Copy)]
pub struct LungShape {
    pub cx: f64,
    pub cy: f64,
    /// Lateral semi-axis.
    pub a: f64,
    /// Medial semi-axis (larger when the lungs touch: they reach the anterior junction).
    pub a_med: f64,
    pub b: f64,
    pub dome_mm: f64,
}

/// The z-dependent part of the model, computed once per slice.
#[derive(Debug, Clone, Copy)]
pub struct SliceCtx {
    pub z: f64,
    /// Fraction of lung height (0 base, 1 apex); outside [0,1] = no lung.
    pub t: f64,
    /// Apex taper factor of the lung ellipses.
    pub k: f64,
    pub med_ant: f64,
    /// Heart cross-section: (cx, cy, a, b) when the slice cuts it.
    pub heart: Option<(f64, f64, f64, f64)>,
    pub aorta: bool,
    pub ribs: bool,
    pub sternum: bool,
    /// Pleural cavity of this slice: lateral semi-axes (right, left) and the antero-posterior
    /// semi-axis. It narrows with the lungs above the base, so that the lungs reach the chest
    /// wall at every level (the ribs and the muscle of the shoulder girdle close in on the
    /// apices); below the base it is the full cavity.
    pub cav_a: [f64; 2],
    pub cav_b: f64,
}

#[derive(Debug, Clone)]
pub struct Anatomy {
    pub f: f64,
    pub body_a: f64,
    pub body_b: f64,
    pub fat_mm: f64,
    pub cav_a: f64,
    pub cav_b: f64,
    pub cav_yc: f64,
    pub lungs: [LungShape; 2],
    pub h: f64,
    pub z_base: f64,
    pub z_carina: f64,
    pub med_ant: f64,
    pub med_mid: f64,
    pub med_post: f64,
    pub heart_c: [f64; 3],
    pub heart_r: [f64; 3],
    pub aorta_c: [f64; 2],
    pub aorta_r: f64,
    pub aorta_top: f64,
    pub spine_c: [f64; 2],
    pub spine_r: f64,
    pub canal_c: [f64; 2],
    pub canal_r: f64,
    pub stomach_c: [f64; 3],
    pub stomach_r: f64,
    pub arms_up: bool,
    pub collapsed: Option<Side>,
    pub touching: bool,
    pub contrast: bool,
    /// Subcutaneous emphysema in the chest wall.
    pub emphysema: bool,
    pub parenchyma_hu: f64,
    /// Trachea and main bronchi (lumen = truth airways).
    pub airways: Vec<Seg>,
    /// Intrapulmonary bronchi (part of the lung).
    pub bronchi: Vec<Seg>,
    pub vessels: Vec<Seg>,
    pub balls: Vec<Ball>,
    pub shaped: Vec<Shaped>,
    /// Depth of the dependent effusion crescent `[right, left]`, mm (0 = none).
    pub effusion_mm: [f64; 2],
    pub effusion_hu: f64,
}

impl Anatomy {
    pub fn new(spec: &PhantomSpec) -> Self {
        let ls = spec.lung_scale.clamp(0.3, 1.5);
        let s = spec.body_scale.clamp(0.3, 1.5);
        let f = s * ls.powf(0.2);
        let h = 272.0 * s * ls.powf(0.6);
        let z_base = -h / 2.0;
        let cav_a = 141.0 * f;
        let cav_b = 95.0 * f;
        let cav_yc = 6.0 * f;
        let a_r = 77.0 * f;
        let a_l = 70.0 * f;
        let med_k = if spec.lungs_touching { 2.2 } else { 1.0 };
        let lungs = [
            LungShape {
                cx: -(cav_a - a_r),
                cy: cav_yc,
                a: a_r,
                a_med: a_r * med_k,
                b: cav_b,
                dome_mm: 0.24 * h,
            },
            LungShape {
                cx: cav_a - a_l,
                cy: cav_yc,
                a: a_l,
                a_med: a_l * med_k,
                b: cav_b,
                dome_mm: 0.19 * h,
            },
        ];
        let z_carina = z_base + 0.64 * h;
        let mut an = Anatomy {
            f,
            body_a: 165.0 * f,
            body_b: 112.0 * f,
            fat_mm: 12.0 * f,
            cav_a,
            cav_b,
            cav_yc,
            lungs,
            h,
            z_base,
            z_carina,
            med_ant: 4.0 * f,
            med_mid: 20.0 * f,
            med_post: 26.0 * f,
            heart_c: [18.0 * f, -24.0 * f, z_base + 0.30 * h],
            heart_r: [60.0 * f, 50.0 * f, 0.22 * h],
            aorta_c: [24.0 * f, 46.0 * f],
            aorta_r: 12.0 * f,
            aorta_top: z_base + 0.74 * h,
            spine_c: [0.0, 70.0 * f],
            spine_r: 18.0 * f,
            canal_c: [0.0, 96.0 * f],
            canal_r: 7.0 * f,
            stomach_c: [55.0 * f, -5.0 * f, z_base + 0.19 * h - 32.0 * f],
            stomach_r: 24.0 * f,
            arms_up: spec.arms_up,
            collapsed: spec.collapsed,
            touching: spec.lungs_touching,
            contrast: spec.contrast,
            emphysema: spec.subcutaneous_emphysema,
            parenchyma_hu: spec.parenchyma_hu + 300.0 * (1.0 - ls),
            airways: Vec::new(),
            bronchi: Vec::new(),
            vessels: Vec::new(),
            balls: Vec::new(),
            shaped: Vec::new(),
            effusion_mm: spec
                .effusion_mm
                .map(|d| if d.is_finite() { d.max(0.0) } else { 0.0 }),
            effusion_hu: spec.effusion_hu,
        };
        an.build_airways();
        let mut rng =
            SplitMix::new(spec.anatomy_seed().wrapping_mul(0x2545_F491_4F6C_DD1D) ^ 0x7472_6565);
        for side in [Side::Right, Side::Left] {
            if an.collapsed != Some(side) {
                an.grow_tree(side, &mut rng);
            }
        }
        an.place_lesions(spec);
        an
    }

    fn build_airways(&mut self) {
        let f = self.f;
        let (tx, ty) = (0.0, 24.0 * f);
        let zc = self.z_carina;
        let top = self.z_base + 3.0 * self.h; // far above any grid
        let trachea = Seg {
            p0: [tx, ty, zc],
            p1: [tx, ty, top],
            r: 10.5 * f,
            r_lumen: 8.5 * f,
        };
        let right = Seg {
            p0: [tx, ty, zc],
            p1: [-34.0 * f, 28.0 * f, zc - 0.09 * self.h],
            r: 8.0 * f,
            r_lumen: 6.5 * f,
        };
        let left = Seg {
            p0: [tx, ty, zc],
            p1: [38.0 * f, 30.0 * f, zc - 0.13 * self.h],
            r: 7.0 * f,
            r_lumen: 5.5 * f,
        };
        self.airways = vec![trachea, right, left];
    }

    /// Slice-dependent values at height `z` (mm).
    pub fn slice_ctx(&self, z: f64) -> SliceCtx {
        let t = (z - self.z_base) / self.h;
        let k = if (0.0..=1.0).contains(&t) {
            (1.0 - t.powf(2.5)).max(0.0).sqrt()
        } else {
            0.0
        };
        let med_ant = if self.touching && t > 0.3 {
            0.0
        } else {
            self.med_ant
        };
        let dz = (z - self.heart_c[2]) / self.heart_r[2];
        let heart = if dz.abs() < 1.0 {
            let q = (1.0 - dz * dz).sqrt();
            Some((
                self.heart_c[0],
                self.heart_c[1],
                self.heart_r[0] * q,
                self.heart_r[1] * q,
            ))
        } else {
            None
        };
        // The cavity shrinks laterally by what each lung's taper takes off its lateral
        // semi-axis, and antero-posteriorly so that it still cuts the tapered lung ellipse
        // where the full cavity cuts the full one (the lungs stay pressed against the wall).
        let kc = if t <= 0.0 { 1.0 } else { k };
        let cav_a = [0, 1].map(|i| self.cav_a - self.lungs[i].a * (1.0 - kc));
        let s_b = (0..2)
            .map(|i| {
                let cx = self.lungs[i].cx;
                let full = (1.0 - (cx / self.cav_a).powi(2)).max(0.0).sqrt();
                let now = (1.0 - (cx / cav_a[i]).powi(2)).max(1e-3).sqrt();
                kc * full / now
            })
            .fold(0.0f64, f64::max)
            .clamp(0.4, 1.0);
        SliceCtx {
            z,
            t,
            k,
            med_ant,
            heart,
            aorta: z < self.aorta_top,
            ribs: t > -0.08 && t < 1.04,
            sternum: t > 0.25 && t < 0.95,
            cav_a,
            cav_b: self.cav_b * s_b,
        }
    }

    /// Squared normalised radius of `(x, y)` in the slice's pleural cavity (> 1: outside).
    #[inline]
    pub fn cavity_rho2(&self, x: f64, y: f64, sc: &SliceCtx) -> f64 {
        let qa = x / sc.cav_a[usize::from(x >= 0.0)];
        let qb = (y - self.cav_yc) / sc.cav_b;
        qa * qa + qb * qb
    }

    /// Half-width of the mediastinum at `y` (mm): the lungs lie at |x| beyond it.
    #[inline]
    pub fn med_half_width(&self, y: f64, sc: &SliceCtx) -> f64 {
        let f = self.f;
        let ramp = |y: f64, y0: f64, y1: f64, v0: f64, v1: f64| {
            let u = ((y - y0) / (y1 - y0)).clamp(0.0, 1.0);
            v0 + (v1 - v0) * u
        };
        if y < 0.0 {
            if sc.med_ant == 0.0 {
                // Touching lungs: the anterior junction reaches further back.
                return ramp(y, -35.0 * f, -20.0 * f, 0.0, self.med_mid);
            }
            ramp(y, -58.0 * f, -40.0 * f, sc.med_ant, self.med_mid)
        } else {
            ramp(y, 30.0 * f, 42.0 * f, self.med_mid, self.med_post)
        }
    }

    /// Which lung (1 right, 2 left, 0 none) occupies `(x, y)` of slice `sc`, by geometry alone
    /// (ignores `collapsed`, airways and lesions) after the effusion took its place.
    #[inline]
    pub fn lung_side(&self, x: f64, y: f64, sc: &SliceCtx) -> u8 {
        let label = self.lung_side_dry(x, y, sc);
        if label != 0 && self.in_effusion(label, x, y, sc) {
            return 0;
        }
        label
    }

    /// Whether `(x, y)` of lung `label`'s space holds effusion fluid: a posterior crescent
    /// against the pleural cavity wall, deepest at the back and thinning laterally (fluid
    /// settles where the supine patient is lowest), fading from mid-height to the apex.
    #[inline]
    pub fn in_effusion(&self, label: u8, x: f64, y: f64, sc: &SliceCtx) -> bool {
        let depth = self.effusion_mm[usize::from(label == 2)];
        if depth <= 0.0 {
            return false;
        }
        let back = (y - self.cav_yc) / sc.cav_b;
        if back <= 0.0 {
            return false;
        }
        let fade = ((0.85 - sc.t) / 0.35).clamp(0.0, 1.0);
        let wall_mm = (1.0 - self.cavity_rho2(x, y, sc).sqrt()) * sc.cav_b;
        wall_mm < depth * back.min(1.0) * fade
    }

    /// Lung by geometry alone, without the effusion.
    #[inline]
    fn lung_side_dry(&self, x: f64, y: f64, sc: &SliceCtx) -> u8 {
        if !(0.0..=1.0).contains(&sc.t) {
            return 0;
        }
        if self.cavity_rho2(x, y, sc) > 1.0 {
            return 0;
        }
        let m = self.med_half_width(y, sc);
        let (idx, label) = if x < 0.0 { (0, 1u8) } else { (1, 2u8) };
        if (idx == 0 && x >= -m) || (idx == 1 && x < m) {
            return 0;
        }
        let l = &self.lungs[idx];
        let medial = (x - l.cx) * l.cx < 0.0;
        let dx = (x - l.cx) / if medial { l.a_med } else { l.a };
        let dy = (y - l.cy) / l.b;
        let rho2 = dx * dx + dy * dy;
        if rho2 > sc.k * sc.k {
            return 0;
        }
        let floor = self.z_base + l.dome_mm * (1.0 - rho2).max(0.0);
        if sc.z < floor {
            return 0;
        }
        if let Some((hx, hy, ha, hb)) = sc.heart {
            let u = (x - hx) / ha;
            let v = (y - hy) / hb;
            if u * u + v * v <= 1.0 {
                return 0;
            }
        }
        if sc.aorta {
            let u = x - self.aorta_c[0];
            let v = y - self.aorta_c[1];
            let r = self.aorta_r + 2.0 * self.f;
            if u * u + v * v <= r * r {
                return 0;
            }
        }
        let u = x - self.spine_c[0];
        let v = y - self.spine_c[1];
        let r = self.spine_r + 4.0 * self.f;
        if u * u + v * v <= r * r {
            return 0;
        }
        label
    }

    pub fn lung_side_at(&self, p: [f64; 3]) -> u8 {
        let sc = self.slice_ctx(p[2]);
        self.lung_side(p[0], p[1], &sc)
    }

    /// Base class, mean HU, and lung label (0/1/2, after `collapsed`) of a point inside the
    /// field of view, before airways, vessels and lesions.
    #[inline]
    pub fn base(&self, x: f64, y: f64, sc: &SliceCtx) -> (Class, f32, u8) {
        let f = self.f;
        // Body.
        let bx = x / self.body_a;
        let by = y / self.body_b;
        let rb2 = bx * bx + by * by;
        if rb2 > 1.0 {
            if !self.arms_up {
                for sgn in [-1.0, 1.0] {
                    let ax = x - sgn * (self.body_a + 46.0 * f);
                    let (aa, ab) = (38.0 * f, 46.0 * f);
                    let q = (ax / aa).powi(2) + (y / ab).powi(2);
                    if q <= 1.0 {
                        let hr = 11.0 * f;
                        if ax * ax + y * y <= hr * hr {
                            return (Class::Bone, 700.0, 0);
                        }
                        return if q > 0.8 {
                            (Class::Fat, -100.0, 0)
                        } else {
                            (Class::Soft, 45.0, 0)
                        };
                    }
                }
            }
            let table_top = self.body_b + 2.0 * f;
            if y >= table_top && y < table_top + 12.0 && x.abs() < 230.0 {
                let d = y - table_top;
                return if !(2.0..10.0).contains(&d) {
                    (Class::Table, 350.0, 0)
                } else {
                    (Class::Table, -350.0, 0)
                };
            }
            return (Class::Air, -1000.0, 0);
        }
        // Spine (inside the full-size cavity: the slice's cavity may be narrower).
        let cy = y - self.cav_yc;
        let (qa, qb) = (x / self.cav_a, cy / self.cav_b);
        if qa * qa + qb * qb <= 1.0 {
            let u = x - self.spine_c[0];
            let v = y - self.spine_c[1];
            let d2 = u * u + v * v;
            if d2 <= self.spine_r * self.spine_r {
                let inner = self.spine_r - 2.0 * f;
                return if d2 > inner * inner {
                    (Class::Bone, 800.0, 0)
                } else {
                    (Class::Bone, 280.0, 0)
                };
            }
            let u = x - self.canal_c[0];
            let v = y - self.canal_c[1];
            if u * u + v * v <= self.canal_r * self.canal_r {
                return (Class::Soft, 25.0, 0);
            }
            if x.abs() < 6.0 * f && y > self.canal_c[1] && y < self.body_b {
                return (Class::Bone, 600.0, 0);
            }
        }
        // Chest wall outside the pleural cavity.
        let rc2 = self.cavity_rho2(x, y, sc);
        if rc2 > 1.0 {
            let rc = rc2.sqrt();
            // Ribs run from the vertebrae outwards: none across the mid-line behind or (where
            // the cavity has narrowed) in front of the spine.
            let beside_spine = cy > 0.0 && x.abs() < self.spine_r + 6.0 * f;
            if sc.ribs && (1.03..1.11).contains(&rc) && !beside_spine {
                let phi = x.abs().atan2(cy); // 0 posterior, pi anterior
                if sc.sternum && phi > 2.75 && x.abs() < 14.0 * f {
                    return (Class::Bone, 450.0, 0);
                }
                let drop = 0.24 * self.h;
                let period = 0.105 * self.h;
                let u = (sc.z - self.z_base + drop * 0.5 * (1.0 - phi.cos())).rem_euclid(period);
                if u < 0.038 * self.h && phi < 2.75 {
                    return if phi > 2.2 {
                        (Class::Cartilage, 120.0, 0)
                    } else {
                        (Class::Bone, 700.0, 0)
                    };
                }
            }
            // Subcutaneous fat: the outer `fat_mm` of the body.
            let fa = 1.0 - self.fat_mm / self.body_a;
            let fb = 1.0 - self.fat_mm / self.body_b;
            let q = (bx / fa).powi(2) + (by / fb).powi(2);
            if q > 1.0 {
                // Subcutaneous emphysema: gas streaks in the anterior-lateral fat.
                if self.emphysema && (0.3..0.8).contains(&sc.t) {
                    let phi = x.abs().atan2(cy);
                    if (1.2..2.6).contains(&phi) && (phi * 9.0 + sc.z / 15.0).sin() > 0.5 {
                        return (Class::BowelGas, -880.0, 0);
                    }
                }
                return (Class::Fat, -100.0, 0);
            }
            return (Class::Soft, 45.0, 0);
        }
        // Lungs.
        let label = self.lung_side_dry(x, y, sc);
        if label != 0 && self.in_effusion(label, x, y, sc) {
            return (Class::PleuralFluid, self.effusion_hu as f32, 0);
        }
        if label != 0 {
            let side = if label == 1 { Side::Right } else { Side::Left };
            if self.collapsed == Some(side) {
                return (Class::PleuralFluid, 15.0, 0);
            }
            return (Class::Parenchyma, self.parenchyma_hu as f32, label);
        }
        let blood = if self.contrast { 250.0 } else { 40.0 };
        if let Some((hx, hy, ha, hb)) = sc.heart {
            let u = (x - hx) / ha;
            let v = (y - hy) / hb;
            if u * u + v * v <= 1.0 {
                return (Class::Blood, blood, 0);
            }
        }
        if sc.aorta {
            let u = x - self.aorta_c[0];
            let v = y - self.aorta_c[1];
            if u * u + v * v <= self.aorta_r * self.aorta_r {
                return (Class::Blood, blood, 0);
            }
        }
        // Abdomen below the diaphragm domes.
        let idx = if x < 0.0 { 0 } else { 1 };
        let l = &self.lungs[idx];
        let dx = (x - l.cx) / l.a;
        let dy = (y - l.cy) / l.b;
        let floor = self.z_base + l.dome_mm * (1.0 - (dx * dx + dy * dy)).max(0.0);
        if sc.z < floor {
            let s = self.stomach_c;
            let (u, v, w) = (x - s[0], y - s[1], sc.z - s[2]);
            if u * u + v * v + w * w <= self.stomach_r * self.stomach_r && sc.z < floor - 6.0 * f {
                return (Class::BowelGas, -1000.0, 0);
            }
            return if x < 15.0 * f {
                (Class::Organ, 60.0, 0)
            } else {
                (Class::Organ, 48.0, 0)
            };
        }
        // Mediastinum (and soft tissue above the apices).
        if y < -30.0 * f && x.abs() < 30.0 * f {
            return (Class::Fat, -90.0, 0);
        }
        (Class::Soft, 35.0, 0)
    }

    /// Grow one lung's pulmonary artery tree (and the first bronchial generations beside it).
    fn grow_tree(&mut self, side: Side, rng: &mut SplitMix) {
        let f = self.f;
        let sx = side.x_sign();
        let zc = self.z_carina;
        // Pulmonary arteries from the hilum, with the first bronchial generations beside them.
        let start = match side {
            Side::Right => [-28.0 * f, 16.0 * f, zc - 0.07 * self.h],
            Side::Left => [31.0 * f, 16.0 * f, zc - 0.12 * self.h],
        };
        let bronchus_root = match side {
            Side::Right => self.airways.get(1).map(|s| s.p1),
            Side::Left => self.airways.get(2).map(|s| s.p1),
        }
        .unwrap_or(start);
        let arteries: [([f64; 3], f64); 4] = [
            ([sx * 0.55, 0.05, 0.85], 5.5 * f),
            ([sx * 1.0, 0.15, 0.05], 5.0 * f),
            ([sx * 0.45, 0.45, -0.8], 6.0 * f),
            ([sx * 0.5, -0.5, -0.6], 4.5 * f),
        ];
        self.grow(side, start, &arteries, Some(bronchus_root), rng);
        // Pulmonary veins: lower and more anterior, draining towards the left atrium.
        let vein_start = [sx * 24.0 * f, -6.0 * f, self.z_base + 0.42 * self.h];
        let veins: [([f64; 3], f64); 3] = [
            ([sx * 0.7, -0.1, 0.7], 4.5 * f),
            ([sx * 1.0, 0.3, -0.1], 4.5 * f),
            ([sx * 0.5, 0.5, -0.7], 5.0 * f),
        ];
        self.grow(side, vein_start, &veins, None, rng);
    }

    /// Grow a binary tree of capsules from `start` along `roots` (direction, radius), keeping
    /// every segment inside the lung of `side`.
    fn grow(
        &mut self,
        side: Side,
        start: [f64; 3],
        roots: &[([f64; 3], f64)],
        bronchus_root: Option<[f64; 3]>,
        rng: &mut SplitMix,
    ) {
        let f = self.f;
        let label = side.label();
        let min_r = 0.6;
        let mut stack: Vec<Branch> = roots
            .iter()
            .map(|(d, r)| (start, normalize(*d), *r, 0u32, bronchus_root.is_some()))
            .collect();
        let max_segments = 4000;
        let mut count = 0usize;
        while let Some((p0, dir, r, generation, with_bronchus)) = stack.pop() {
            if count >= max_segments {
                break;
            }
            let mut len = (4.0 * r + 9.0 * f) * rng.range(0.8, 1.25);
            if generation == 0 {
                len += 14.0 * f;
            }
            let mut found = None;
            for attempt in 0..5 {
                let d = if attempt == 0 {
                    dir
                } else {
                    perturb(dir, 0.6, rng)
                };
                let p1 = add(p0, scale(d, len));
                let mid = add(p0, scale(d, 0.5 * len));
                let tip = add(p0, scale(d, len + r));
                if self.lung_side_at(p1) == label
                    && self.lung_side_at(tip) == label
                    && (generation == 0 || self.lung_side_at(mid) == label)
                {
                    found = Some((p1, d));
                    break;
                }
                len *= 0.75;
            }
            let Some((p1, d)) = found else { continue };
            self.vessels.push(Seg {
                p0,
                p1,
                r,
                r_lumen: 0.0,
            });
            count += 1;
            if with_bronchus && generation <= 2 {
                let w = normalize(cross(d, [0.0, 0.0, 1.0]));
                let w = if w == [0.0; 3] { [1.0, 0.0, 0.0] } else { w };
                let rb_l = 0.6 * r;
                let rb = rb_l + 0.25 * r + 0.4;
                let off = scale(w, r + rb + 0.6);
                let b0 = match bronchus_root {
                    Some(b) if generation == 0 => b,
                    _ => add(p0, off),
                };
                self.bronchi.push(Seg {
                    p0: b0,
                    p1: add(p1, off),
                    r: rb,
                    r_lumen: rb_l,
                });
            }
            let (r1, r2) = if rng.uniform() < 0.5 {
                (0.84 * r, 0.72 * r)
            } else {
                (0.72 * r, 0.84 * r)
            };
            let axis = perpendicular(d, rng);
            let a1 = rng.range(20.0, 38.0).to_radians();
            let a2 = -rng.range(20.0, 38.0).to_radians();
            for (rr, ang, br) in [(r1, a1, true), (r2, a2, false)] {
                if rr >= min_r {
                    stack.push((
                        p1,
                        rotate(d, axis, ang),
                        rr,
                        generation + 1,
                        with_bronchus && br,
                    ));
                }
            }
        }
    }

    /// Turn lesion specs into balls and shaped lesions at positions on the lung surface.
    fn place_lesions(&mut self, spec: &PhantomSpec) {
        for (i, l) in spec.lesions.iter().enumerate() {
            let idx = u16::try_from(i).unwrap_or(u16::MAX - 1);
            match l.shape {
                LesionShape::Ball => {
                    let (c, _) = self.anchor(l, false);
                    self.balls.push(Ball {
                        c,
                        r: l.radius_mm.max(0.0),
                        kind: l.kind,
                        hu: l.hu,
                        label: l.side.label(),
                        idx,
                    });
                }
                shape => {
                    if let Some(s) = self.shaped_lesion(l, shape, idx) {
                        self.shaped.push(s);
                    }
                }
            }
        }
    }

    /// Centre of lesion `l` (on the pleura when subpleural or `on_pleura`, else
    /// `radius_mm + 12` mm inside), and the outward unit normal there.
    fn anchor(&self, l: &LesionSpec, on_pleura: bool) -> ([f64; 3], [f64; 3]) {
        let idx = l.side.index();
        let label = l.side.label();
        let shape = self.lungs[idx];
        let th = l.angle_deg.to_radians();
        // Ray from the lung's axis: 0 posterior (+y), 90 lateral, 180 anterior.
        let dir = [l.side.x_sign() * th.sin(), th.cos()];
        let centre = [shape.cx, shape.cy];
        let inside = |surface: f64| {
            if l.subpleural || on_pleura {
                surface
            } else {
                (surface - l.radius_mm - 12.0).max(0.0)
            }
        };
        if l.placement != Placement::Surface {
            // The in-plane distance to the lung ellipse along the ray, then a vertical search
            // for the lung's lowest (diaphragm) or highest (apex) point above that spot.
            let medial = dir[0] * shape.cx < 0.0;
            let (qa, qb) = (
                dir[0] / if medial { shape.a_med } else { shape.a },
                dir[1] / shape.b,
            );
            let reach = 1.0 / (qa * qa + qb * qb).sqrt().max(1e-9);
            let (frac, up) = match l.placement {
                Placement::Apex => (0.25, -1.0),
                _ => (0.5, 1.0),
            };
            let (x, y) = (
                centre[0] + dir[0] * frac * reach,
                centre[1] + dir[1] * frac * reach,
            );
            let (z0, z1) = (self.z_base, self.z_base + self.h);
            let steps = (self.h / 0.5) as usize;
            // Heights from `from` in 0.5 mm steps, upwards or (apex) downwards.
            let walk = move |from: f64| (0..=steps).map(move |k| from + up * (k as f64 * 0.5));
            let found = walk(if up > 0.0 { z0 } else { z1 })
                .find(|&z| self.lung_side_at([x, y, z]) == label);
            if let Some(z) = found {
                let last = walk(z)
                    .take_while(|&zz| self.lung_side_at([x, y, zz]) == label)
                    .last()
                    .unwrap_or(z);
                let span = (last - z).abs();
                let depth = if l.subpleural || on_pleura {
                    0.0
                } else {
                    (l.radius_mm + 12.0).clamp(0.0, span)
                };
                return ([x, y, z + up * depth], [0.0, 0.0, -up]);
            }
        }
        let step = 0.5;
        let max_len = 2.0 * shape.a.max(shape.b);
        let last_on_ray = |sc: &SliceCtx| {
            let mut last_inside: Option<f64> = None;
            let mut s = 0.0;
            while s <= max_len {
                let x = centre[0] + dir[0] * s;
                let y = centre[1] + dir[1] * s;
                if self.lung_side(x, y, sc) == label {
                    last_inside = Some(s);
                }
                s += step;
            }
            last_inside
        };
        let mut z = self.z_base + self.h * l.zone.centre_fraction() + l.z_shift_mm;
        let mut sc = self.slice_ctx(z);
        let mut last_inside = last_on_ray(&sc);
        if last_inside.is_none() {
            // Under the dome the ray can miss the lung (a medial ray in the lower zone meets
            // only liver or heart): climb until it meets the lung, so the lesion touches it.
            let mut up = z;
            while up < self.z_base + self.h {
                up += 2.0;
                let c = self.slice_ctx(up);
                if let Some(s) = last_on_ray(&c) {
                    (z, sc, last_inside) = (up, c, Some(s));
                    break;
                }
            }
        }
        let surface = last_inside.unwrap_or(shape.a.min(shape.b) * sc.k);
        let mut dist = inside(surface);
        // A core centre that fell outside the lung (under the dome, in the heart's notch)
        // moves back out along the ray until it is in the lung.
        let in_lung =
            |d: f64| self.lung_side(centre[0] + dir[0] * d, centre[1] + dir[1] * d, &sc) == label;
        if dist < surface && !in_lung(dist) {
            while dist < surface && !in_lung(dist) {
                dist += step;
            }
        }
        (
            [centre[0] + dir[0] * dist, centre[1] + dir[1] * dist, z],
            [dir[0], dir[1], 0.0],
        )
    }

    /// Anatomy-frame box around lung `idx` over its whole height.
    fn lung_box(&self, idx: usize) -> [f64; 6] {
        let l = &self.lungs[idx];
        let w = l.a.max(l.a_med);
        [
            l.cx - w,
            l.cx + w,
            l.cy - l.b,
            l.cy + l.b,
            self.z_base,
            self.z_base + self.h,
        ]
    }

    /// Dependency score of a point of lung `idx`: 0 front and apex, 1 back and base. Posterior
    /// weighs more than basal: a supine patient's dependent lung is the back first.
    pub fn dependency(&self, idx: usize, p: [f64; 3]) -> f64 {
        let l = &self.lungs[idx];
        let back = ((p[1] - (l.cy - l.b)) / (2.0 * l.b)).clamp(0.0, 1.0);
        let low = (1.0 - (p[2] - self.z_base) / self.h).clamp(0.0, 1.0);
        0.6 * back + 0.4 * low
    }

    fn shaped_lesion(&self, l: &LesionSpec, shape: LesionShape, idx: u16) -> Option<Shaped> {
        let side = l.side.index();
        let r = l.radius_mm.max(0.0);
        let ball_box =
            |c: [f64; 3], r: f64| [c[0] - r, c[0] + r, c[1] - r, c[1] + r, c[2] - r, c[2] + r];
        let (form, bbox) = match shape {
            LesionShape::Ball => return None,
            LesionShape::Ellipsoid {
                axis_ratio,
                yaw_deg,
                pitch_deg,
            } => {
                let (c, n) = self.anchor(l, false);
                let len_xy = (n[0] * n[0] + n[1] * n[1]).sqrt();
                // Vertical normals (diaphragm, apex) turn the axes from the ray's direction.
                let u = if len_xy > 1e-9 {
                    [n[0] / len_xy, n[1] / len_xy, 0.0]
                } else {
                    let th = l.angle_deg.to_radians();
                    [l.side.x_sign() * th.sin(), th.cos(), 0.0]
                };
                let w = [-u[1], u[0], 0.0];
                let (sy, cy) = yaw_deg.to_radians().sin_cos();
                let (sp, cp) = pitch_deg.to_radians().sin_cos();
                let flat = add(scale(u, cy), scale(w, sy));
                let e1 = add(scale(flat, cp), [0.0, 0.0, sp]);
                let e2 = add(scale(u, -sy), scale(w, cy));
                let e3 = cross(e1, e2);
                let semi = axis_ratio.map(|k| (k * r).max(0.1));
                let big = semi.iter().copied().fold(0.0, f64::max);
                (
                    Form::Ellipsoid {
                        c,
                        axes: [e1, e2, e3],
                        semi,
                    },
                    ball_box(c, big),
                )
            }
            LesionShape::Band { thickness_mm } => {
                let (c, _) = self.anchor(l, true);
                (
                    Form::Band {
                        c,
                        r,
                        thickness: thickness_mm.max(0.0),
                    },
                    ball_box(c, r),
                )
            }
            LesionShape::Wedge { half_angle_deg } => {
                let (base, n) = self.anchor(l, true);
                let apex = sub(base, scale(n, r));
                // The cone runs a little past the pleura so the lung, not the cone, ends it.
                let len = r + 15.0;
                (
                    Form::Wedge {
                        apex,
                        dir: n,
                        cos_half: half_angle_deg.to_radians().cos(),
                        len,
                    },
                    ball_box(apex, len),
                )
            }
            LesionShape::Lobe => {
                let third = self.h / 3.0;
                let centre = self.z_base + self.h * l.zone.centre_fraction() + l.z_shift_mm;
                let tilt = 0.5;
                let zlo = match l.zone {
                    crate::spec::Zone::Lower => f64::NEG_INFINITY,
                    _ => centre - third / 2.0,
                };
                let zhi = match l.zone {
                    crate::spec::Zone::Upper => f64::INFINITY,
                    _ => centre + third / 2.0,
                };
                (
                    Form::Lobe {
                        zlo,
                        zhi,
                        tilt,
                        cy: self.lungs[side].cy,
                    },
                    self.lung_box(side),
                )
            }
            LesionShape::Diffuse {
                share,
                consolidation_share,
                ggo_hu,
            } => {
                // The score threshold that leaves `share` of this lung above it, found on a
                // coarse sample of the lung (the grid's own voxels are not known here).
                let bx = self.lung_box(side);
                let label = l.side.label();
                let step = 4.0;
                let mut scores = Vec::new();
                let mut z = bx[4] + step / 2.0;
                while z < bx[5] {
                    let sc = self.slice_ctx(z);
                    let mut y = bx[2] + step / 2.0;
                    while y < bx[3] {
                        let mut x = bx[0] + step / 2.0;
                        while x < bx[1] {
                            if self.lung_side(x, y, &sc) == label {
                                scores.push(self.dependency(side, [x, y, z]));
                            }
                            x += step;
                        }
                        y += step;
                    }
                    z += step;
                }
                scores.sort_by(f64::total_cmp);
                let top = scores.last().copied()?;
                let at = ((1.0 - share.clamp(0.0, 1.0)) * scores.len() as f64) as usize;
                let thr = scores[at.min(scores.len() - 1)];
                let cons_from = if l.kind == LesionKind::Ggo {
                    f64::INFINITY
                } else {
                    1.0 - consolidation_share.clamp(0.0, 1.0)
                };
                (
                    Form::Diffuse {
                        thr,
                        top,
                        cons_from,
                        ggo_hu,
                    },
                    bx,
                )
            }
        };
        Some(Shaped {
            kind: l.kind,
            hu: l.hu,
            label: l.side.label(),
            idx,
            form,
            bbox,
        })
    }
}

impl Shaped {
    /// Class and mean HU this lesion paints at `p` (a point of its lung on slice `sc`), or
    /// `None` outside it. `near` holds the slice contexts `thickness` below and above `sc` for
    /// a band.
    pub fn at(
        &self,
        an: &Anatomy,
        p: [f64; 3],
        sc: &SliceCtx,
        near: &[SliceCtx; 2],
    ) -> Option<(LesionKind, f32)> {
        let plain = Some((self.kind, self.hu as f32));
        match self.form {
            Form::Ellipsoid { c, axes, semi } => {
                let d = sub(p, c);
                let q: f64 = (0..3).map(|k| (dot(d, axes[k]) / semi[k]).powi(2)).sum();
                (q <= 1.0).then_some(())?;
                plain
            }
            Form::Band { c, r, thickness } => {
                let d = sub(p, c);
                (dot(d, d) <= r * r).then_some(())?;
                // Near the surface when a point `thickness` away in one of ten directions (eight
                // in the plane, straight up and down) is no longer this lung.
                let t = thickness;
                let out = |x: f64, y: f64, s: &SliceCtx| an.lung_side(x, y, s) != self.label;
                let diag = t * std::f64::consts::FRAC_1_SQRT_2;
                let dirs = [
                    (t, 0.0),
                    (-t, 0.0),
                    (0.0, t),
                    (0.0, -t),
                    (diag, diag),
                    (diag, -diag),
                    (-diag, diag),
                    (-diag, -diag),
                ];
                let near_surface = dirs.iter().any(|&(dx, dy)| out(p[0] + dx, p[1] + dy, sc))
                    || near.iter().any(|s| out(p[0], p[1], s));
                near_surface.then_some(())?;
                plain
            }
            Form::Wedge {
                apex,
                dir,
                cos_half,
                len,
            } => {
                let d = sub(p, apex);
                let along = dot(d, dir);
                let dist2 = dot(d, d);
                (along > 0.0 && dist2 <= len * len && along * along >= cos_half * cos_half * dist2)
                    .then_some(())?;
                plain
            }
            Form::Lobe { zlo, zhi, tilt, cy } => {
                let shift = tilt * (p[1] - cy);
                (p[2] >= zlo + shift && p[2] < zhi + shift).then_some(())?;
                plain
            }
            Form::Diffuse {
                thr,
                top,
                cons_from,
                ggo_hu,
            } => {
                let s = an.dependency(usize::from(self.label == 2), p);
                if s < thr {
                    return None;
                }
                let u = ((s - thr) / (top - thr).max(1e-9)).min(1.0);
                if u >= cons_from {
                    return plain;
                }
                // Ground glass denser towards the back, up to −350 HU at the consolidation edge.
                let reach = if cons_from.is_finite() {
                    cons_from
                } else {
                    1.0
                };
                let w = (u / reach.max(1e-9)).min(1.0);
                let hu = ggo_hu + (-350.0 - ggo_hu).max(0.0) * w;
                Some((LesionKind::Ggo, hu as f32))
            }
        }
    }
}

pub fn add(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}
pub fn sub(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}
pub fn scale(a: [f64; 3], s: f64) -> [f64; 3] {
    [a[0] * s, a[1] * s, a[2] * s]
}
pub fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}
fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}
fn normalize(a: [f64; 3]) -> [f64; 3] {
    let n = dot(a, a).sqrt();
    if n > 1e-12 {
        scale(a, 1.0 / n)
    } else {
        [0.0; 3]
    }
}
/// A random unit vector perpendicular to `d`.
fn perpendicular(d: [f64; 3], rng: &mut SplitMix) -> [f64; 3] {
    for _ in 0..8 {
        let v = [rng.normal(), rng.normal(), rng.normal()];
        let p = sub(v, scale(d, dot(v, d)));
        let p = normalize(p);
        if p != [0.0; 3] {
            return p;
        }
    }
    let p = normalize(cross(d, [0.0, 0.0, 1.0]));
    if p == [0.0; 3] { [1.0, 0.0, 0.0] } else { p }
}
/// Rodrigues rotation of `v` about unit `axis` by `angle` radians.
fn rotate(v: [f64; 3], axis: [f64; 3], angle: f64) -> [f64; 3] {
    let (s, c) = angle.sin_cos();
    let k = axis;
    let kxv = cross(k, v);
    let kdv = dot(k, v);
    normalize([
        v[0] * c + kxv[0] * s + k[0] * kdv * (1.0 - c),
        v[1] * c + kxv[1] * s + k[1] * kdv * (1.0 - c),
        v[2] * c + kxv[2] * s + k[2] * kdv * (1.0 - c),
    ])
}
/// `d` turned by up to `max_angle` radians in a random direction.
fn perturb(d: [f64; 3], max_angle: f64, rng: &mut SplitMix) -> [f64; 3] {
    let axis = perpendicular(d, rng);
    rotate(d, axis, rng.range(-max_angle, max_angle))
}

/// Squared distance from point `p` to segment `a`–`b`.
#[inline]
pub fn dist2_to_segment(p: [f64; 3], a: [f64; 3], b: [f64; 3]) -> f64 {
    let ab = sub(b, a);
    let ap = sub(p, a);
    let len2 = dot(ab, ab);
    let t = if len2 > 0.0 {
        (dot(ap, ab) / len2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let q = add(a, scale(ab, t));
    let d = sub(p, q);
    dot(d, d)
}
