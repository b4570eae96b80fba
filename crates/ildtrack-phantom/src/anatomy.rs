//! The analytic chest model, in millimetres, in an "anatomy frame": x (patient left +),
//! y (posterior +), z (head +), origin at the body centre in-plane and the volume centre in z.
//!
//! Every structure is a cheap analytic test (ellipses, ellipsoids, capsules) so that each slice
//! can be painted independently and in parallel. The lung test [`Anatomy::lung_side`] is the
//! single definition of "lung" used both for painting and for growing the vessel tree.

use crate::rng::SplitMix;
use crate::spec::{LesionKind, PhantomSpec, Side};

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
    /// (ignores `collapsed`, airways and lesions).
    #[inline]
    pub fn lung_side(&self, x: f64, y: f64, sc: &SliceCtx) -> u8 {
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
        let label = self.lung_side(x, y, sc);
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

    /// Turn lesion specs into balls at positions on the lung surface.
    fn place_lesions(&mut self, spec: &PhantomSpec) {
        for l in &spec.lesions {
            let idx = l.side.index();
            let label = l.side.label();
            let shape = self.lungs[idx];
            let z = self.z_base + self.h * l.zone.centre_fraction() + l.z_shift_mm;
            let sc = self.slice_ctx(z);
            let th = l.angle_deg.to_radians();
            // Ray from the lung's axis: 0 posterior (+y), 90 lateral, 180 anterior.
            let dir = [l.side.x_sign() * th.sin(), th.cos()];
            let centre = [shape.cx, shape.cy];
            let step = 0.5;
            let max_len = 2.0 * shape.a.max(shape.b);
            let mut last_inside: Option<f64> = None;
            let mut s = 0.0;
            while s <= max_len {
                let x = centre[0] + dir[0] * s;
                let y = centre[1] + dir[1] * s;
                if self.lung_side(x, y, &sc) == label {
                    last_inside = Some(s);
                }
                s += step;
            }
            let surface = last_inside.unwrap_or(shape.a.min(shape.b) * sc.k);
            let dist = if l.subpleural {
                surface
            } else {
                (surface - l.radius_mm - 12.0).max(0.0)
            };
            let c = [centre[0] + dir[0] * dist, centre[1] + dir[1] * dist, z];
            self.balls.push(Ball {
                c,
                r: l.radius_mm.max(0.0),
                kind: l.kind,
                hu: l.hu,
                label,
            });
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
