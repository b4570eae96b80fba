//! Known deformations for validation (tests, `registration_eval`): breathing-like motion
//! (diaphragm craniocaudal, chest wall anteroposterior), smooth random bumps, mass-preserving
//! density in lung, and a lesion that appears in the follow-up.

use crate::frame::{Frame, trilinear};
use ildtrack_volume::Volume;
use ndarray::Array3;
use rand::Rng;

/// A smooth deformation `v` (mm, in the baseline frame): the follow-up shows at `y` what the
/// baseline has at `y + v(y)`.
pub struct Deformation {
    pub diaphragm_mm: f64,
    pub z_apex: f64,
    pub z_base: f64,
    pub wall_mm: f64,
    pub y_centre: f64,
    pub y_half: f64,
    /// Gaussian bumps: centre (mm), sigma (mm), amplitude (mm per axis).
    pub bumps: Vec<([f64; 3], f64, [f64; 3])>,
    /// The patient lying turned: after the motion above, these rotations in order.
    pub turns: Vec<Turn>,
}

/// A rigid rotation of the patient on the table: `degrees` about the frame's axis `axis`
/// (0: craniocaudal, the patient rolled; 1: anteroposterior; 2: left-right, head up or down)
/// through `centre` (mm).
#[derive(Debug, Clone, Copy)]
pub struct Turn {
    pub centre: [f64; 3],
    pub axis: usize,
    pub degrees: f64,
}

impl Turn {
    /// `p` turned about the centre.
    pub fn apply(&self, p: [f64; 3]) -> [f64; 3] {
        let (a, b) = match self.axis {
            0 => (1, 2),
            1 => (0, 2),
            _ => (0, 1),
        };
        let (s, c) = self.degrees.to_radians().sin_cos();
        let (u, w) = (p[a] - self.centre[a], p[b] - self.centre[b]);
        let mut q = p;
        q[a] = self.centre[a] + c * u - s * w;
        q[b] = self.centre[b] + s * u + c * w;
        q
    }
}

impl Deformation {
    /// Breathing only, over the lungs' box `lo..hi` (mm): the diaphragm moves `diaphragm_mm`
    /// (negative: up, the follow-up's lungs smaller) growing quadratically from the apex, the
    /// chest wall `wall_mm` (positive: inwards); no bumps.
    pub fn breathing(lo: [f64; 3], hi: [f64; 3], diaphragm_mm: f64, wall_mm: f64) -> Self {
        Deformation {
            diaphragm_mm,
            z_apex: hi[0],
            z_base: lo[0],
            wall_mm,
            y_centre: 0.5 * (lo[1] + hi[1]),
            y_half: 0.5 * (hi[1] - lo[1]).max(1.0),
            bumps: vec![],
            turns: vec![],
        }
    }

    /// No motion (for [`deform`] to add a lesion only).
    pub fn none() -> Self {
        Deformation {
            diaphragm_mm: 0.0,
            z_apex: 1.0,
            z_base: 0.0,
            wall_mm: 0.0,
            y_centre: 0.0,
            y_half: 1.0,
            bumps: vec![],
            turns: vec![],
        }
    }

    pub fn v(&self, p: [f64; 3]) -> [f64; 3] {
        let t = ((p[0] - self.z_apex) / (self.z_base - self.z_apex)).clamp(0.0, 1.0);
        let mut v = [
            self.diaphragm_mm * t * t,
            self.wall_mm * ((p[1] - self.y_centre) / self.y_half).clamp(-1.5, 1.5),
            0.0,
        ];
        for (c, s, a) in &self.bumps {
            let d2: f64 = (0..3).map(|k| (p[k] - c[k]).powi(2)).sum();
            let g = (-0.5 * d2 / (s * s)).exp();
            for k in 0..3 {
                v[k] += a[k] * g;
            }
        }
        if !self.turns.is_empty() {
            let q = self
                .turns
                .iter()
                .fold([0, 1, 2].map(|k| p[k] + v[k]), |q, t| t.apply(q));
            v = [0, 1, 2].map(|k| q[k] - p[k]);
        }
        v
    }
    /// Where the follow-up shows baseline position `p`: `q` with `q + v(q) = p`.
    pub fn inverse(&self, p: [f64; 3]) -> [f64; 3] {
        let mut q = p;
        for _ in 0..40 {
            let v = self.v(q);
            q = [0, 1, 2].map(|k| p[k] - v[k]);
        }
        q
    }
    pub fn jacobian(&self, p: [f64; 3]) -> f64 {
        let h = 0.5;
        let mut m = [[0f64; 3]; 3];
        for k in 0..3 {
            let mut a = p;
            let mut b = p;
            a[k] -= h;
            b[k] += h;
            let (va, vb) = (self.v(a), self.v(b));
            for c in 0..3 {
                m[c][k] = (vb[c] - va[c]) / (2.0 * h) + if c == k { 1.0 } else { 0.0 };
            }
        }
        m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
            - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
            + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
    }
}

/// Bounding box (mm) of a mask's voxels.
pub fn lung_box(mask: &Array3<u8>, f: &Frame) -> ([f64; 3], [f64; 3]) {
    let mut lo = [f64::MAX; 3];
    let mut hi = [f64::MIN; 3];
    for ((z, y, x), &v) in mask.indexed_iter() {
        if v != 0 {
            let p = f.to_mm([z as f64, y as f64, x as f64]);
            for k in 0..3 {
                lo[k] = lo[k].min(p[k]);
                hi[k] = hi[k].max(p[k]);
            }
        }
    }
    (lo, hi)
}

/// Diaphragm 10–30 mm, chest wall 5–10 mm (inspiration or expiration at random), four smooth
/// bumps of up to 5 mm per axis.
pub fn random_deformation(rng: &mut impl Rng, lo: [f64; 3], hi: [f64; 3]) -> Deformation {
    // Which end is the base: the frame's z grows towards the head (LPS +z), so the base is low z.
    let (z_apex, z_base) = (hi[0], lo[0]);
    let sign = if rng.random_bool(0.5) { 1.0 } else { -1.0 };
    let bumps = (0..4)
        .map(|_| {
            let c = [0, 1, 2].map(|k| rng.random_range(lo[k]..=hi[k].max(lo[k] + 1.0)));
            let s = rng.random_range(30.0..60.0);
            let a = [0, 1, 2].map(|_| rng.random_range(-5.0..5.0));
            (c, s, a)
        })
        .collect();
    Deformation {
        diaphragm_mm: sign * rng.random_range(10.0..30.0),
        z_apex,
        z_base,
        wall_mm: sign * rng.random_range(5.0..10.0),
        y_centre: 0.5 * (lo[1] + hi[1]),
        y_half: 0.5 * (hi[1] - lo[1]).max(1.0),
        bumps,
        turns: vec![],
    }
}

/// A patient lying turned, about the lungs' box centre: rolled 8–18° either way about the
/// craniocaudal axis, and tilted up to 6° either way about each other axis.
pub fn random_turn(rng: &mut impl Rng, lo: [f64; 3], hi: [f64; 3]) -> [Turn; 3] {
    let centre = [0, 1, 2].map(|k| 0.5 * (lo[k] + hi[k]));
    let sign = if rng.random_bool(0.5) { 1.0 } else { -1.0 };
    let roll = sign * rng.random_range(8.0..18.0);
    [
        Turn {
            centre,
            axis: 0,
            degrees: roll,
        },
        Turn {
            centre,
            axis: 1,
            degrees: rng.random_range(-6.0..6.0),
        },
        Turn {
            centre,
            axis: 2,
            degrees: rng.random_range(-6.0..6.0),
        },
    ]
}

/// What [`deform_with`] does to lung density.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Density {
    /// Scaled by the local volume change (mass conservation): a breath.
    Preserved,
    /// Left as resampled: the same motion without the density a breath brings (a control).
    Unchanged,
}

/// How [`deform_with`] resamples the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resample {
    /// Trilinear (what [`deform`] uses).
    Trilinear,
    /// Catmull-Rom cubic in-plane (y, x), linear across slices, clamped to the range of the
    /// 2 × 2 × 2 neighbours (no overshoot): sharper vessels in-plane.
    CubicInPlane,
}

/// The follow-up: `hu` deformed by `d`, lung density scaled by the volume change, and a
/// ground-glass ball (`centre` mm, radius mm) where it was aerated lung.
pub fn deform(
    hu: &Volume<i16>,
    f: &Frame,
    d: &Deformation,
    lesion: Option<([f64; 3], f64)>,
) -> Volume<i16> {
    deform_with(hu, f, d, lesion, Density::Preserved, Resample::Trilinear)
}

/// [`deform`] with the density change and the resampler chosen: [`Density::Unchanged`] gives
/// the same motion and resampling with no mass-preserving density change.
pub fn deform_with(
    hu: &Volume<i16>,
    f: &Frame,
    d: &Deformation,
    lesion: Option<([f64; 3], f64)>,
    density: Density,
    resample: Resample,
) -> Volume<i16> {
    let mut out = hu.data.clone();
    let src: Array3<f32> = hu.data.mapv(|v| v as f32);
    ndarray::Zip::indexed(&mut out).par_for_each(|(z, y, x), o| {
        let p = f.to_mm([z as f64, y as f64, x as f64]);
        let v = d.v(p);
        let q = [0, 1, 2].map(|k| p[k] + v[k]);
        let i = f.to_index(q);
        let sample = match resample {
            Resample::Trilinear => trilinear(&src, i),
            Resample::CubicInPlane => cubic_in_plane(&src, i),
        };
        let mut h = sample.unwrap_or(-1024.0) as f64;
        // Mass conservation in lung-like tissue: denser where it was compressed.
        if density == Density::Preserved && h < -200.0 {
            h = -1000.0 + (h + 1000.0) * d.jacobian(p);
        }
        if let Some((c, r)) = lesion {
            let d2: f64 = (0..3).map(|k| (p[k] - c[k]).powi(2)).sum();
            if d2 < r * r && h < -600.0 {
                h = -500.0 + (h + 850.0) * 0.3;
            }
        }
        *o = h.round().clamp(-1024.0, 3071.0) as i16;
    });
    hu.with_data(out)
}

/// Catmull-Rom weights of the four neighbours at fraction `t` of the way from the second to the
/// third.
fn catmull_rom(t: f32) -> [f32; 4] {
    let (t2, t3) = (t * t, t * t * t);
    [
        0.5 * (-t3 + 2.0 * t2 - t),
        0.5 * (3.0 * t3 - 5.0 * t2 + 2.0),
        0.5 * (-3.0 * t3 + 4.0 * t2 + t),
        0.5 * (t3 - t2),
    ]
}

/// [`Resample::CubicInPlane`]: `None` outside the grid, as [`trilinear`]; edges repeat.
pub fn cubic_in_plane(a: &Array3<f32>, i: [f64; 3]) -> Option<f32> {
    let (nz, ny, nx) = a.dim();
    let dims = [nz, ny, nx];
    let mut base = [0isize; 3];
    let mut frac = [0f32; 3];
    for k in 0..3 {
        let n = dims[k] as f64;
        if !(i[k] >= -0.5 && i[k] <= n - 0.5) {
            return None;
        }
        let c = i[k].clamp(0.0, n - 1.0);
        let fl = c.floor();
        base[k] = fl as isize;
        frac[k] = (c - fl) as f32;
    }
    let at = |z: isize, y: isize, x: isize| {
        let cl = |v: isize, n: usize| v.clamp(0, n as isize - 1) as usize;
        a[[cl(z, nz), cl(y, ny), cl(x, nx)]]
    };
    let (wy, wx) = (catmull_rom(frac[1]), catmull_rom(frac[2]));
    let mut lo = f32::MAX;
    let mut hi = f32::MIN;
    let mut planes = [0f32; 2];
    for (dz, plane) in planes.iter_mut().enumerate() {
        let z = base[0] + dz as isize;
        let mut s = 0f32;
        for (jy, wyj) in wy.iter().enumerate() {
            let y = base[1] + jy as isize - 1;
            let mut r = 0f32;
            for (jx, wxj) in wx.iter().enumerate() {
                let x = base[2] + jx as isize - 1;
                let v = at(z, y, x);
                if (jy == 1 || jy == 2) && (jx == 1 || jx == 2) {
                    lo = lo.min(v);
                    hi = hi.max(v);
                }
                r += wxj * v;
            }
            s += wyj * r;
        }
        *plane = s;
    }
    let v = planes[0] + (planes[1] - planes[0]) * frac[0];
    Some(v.clamp(lo, hi))
}

/// Millimetre positions of every `step`-th mask voxel along each axis.
pub fn lung_points(mask: &Array3<u8>, f: &Frame, step: usize) -> Vec<[f64; 3]> {
    mask.indexed_iter()
        .filter(|((z, y, x), v)| **v != 0 && z % step == 0 && y % step == 0 && x % step == 0)
        .map(|((z, y, x), _)| f.to_mm([z as f64, y as f64, x as f64]))
        .collect()
}

/// Euclidean distance, mm.
pub fn dist(a: [f64; 3], b: [f64; 3]) -> f64 {
    (0..3).map(|k| (a[k] - b[k]).powi(2)).sum::<f64>().sqrt()
}
