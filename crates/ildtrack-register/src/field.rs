//! The working grid, the displacement field on it, and what a registration gives back: the map
//! from baseline to follow-up positions, warped images, the Jacobian, quality figures.

use crate::affine::Affine;
use crate::config::{RegisterConfig, RegisterError};
use crate::frame::{Frame, trilinear};
use ndarray::{Array3, Zip};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Largest working grid (voxels) accepted: a 2.5 mm grid over any chest is far smaller.
const MAX_WORK_VOXELS: usize = 40_000_000;

/// An isotropic grid in the baseline's millimetre frame, around its lungs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WorkGrid {
    pub origin_mm: [f64; 3],
    pub spacing_mm: f64,
    pub dims: [usize; 3],
}

/// A displacement field on a [`WorkGrid`], working voxels, one array per axis `(z, y, x)`.
pub type Disp = [Vec<f32>; 3];

impl WorkGrid {
    /// The bounding box of the baseline lungs plus the margin, at the working spacing.
    pub fn around(
        mask: &Array3<u8>,
        ff: &Frame,
        cfg: &RegisterConfig,
    ) -> Result<WorkGrid, RegisterError> {
        let mut lo = [usize::MAX; 3];
        let mut hi = [0usize; 3];
        let mut any = false;
        for ((z, y, x), &v) in mask.indexed_iter() {
            if v != 0 {
                any = true;
                for (k, i) in [z, y, x].into_iter().enumerate() {
                    lo[k] = lo[k].min(i);
                    hi[k] = hi[k].max(i);
                }
            }
        }
        if !any {
            return Err(RegisterError::EmptyMask("baseline"));
        }
        let a = ff.to_mm(lo.map(|v| v as f64));
        let b = ff.to_mm(hi.map(|v| v as f64));
        let s = cfg.working_mm;
        let origin_mm = [0, 1, 2].map(|k| a[k].min(b[k]) - cfg.margin_mm);
        let dims = [0, 1, 2].map(|k| {
            let ext = (a[k] - b[k]).abs() + 2.0 * cfg.margin_mm;
            (ext / s).floor() as usize + 1
        });
        if dims.iter().product::<usize>() > MAX_WORK_VOXELS {
            return Err(RegisterError::Invalid(format!(
                "working grid {dims:?} too large"
            )));
        }
        Ok(WorkGrid {
            origin_mm,
            spacing_mm: s,
            dims,
        })
    }

    pub fn len(&self) -> usize {
        self.dims.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Millimetres (baseline frame) of working index `w`.
    pub fn to_mm(&self, w: [f64; 3]) -> [f64; 3] {
        [0, 1, 2].map(|k| self.origin_mm[k] + w[k] * self.spacing_mm)
    }

    /// Working index of millimetres `p`.
    pub fn to_index(&self, p: [f64; 3]) -> [f64; 3] {
        [0, 1, 2].map(|k| (p[k] - self.origin_mm[k]) / self.spacing_mm)
    }

    fn sample_with(&self, f: impl Fn([f64; 3]) -> f32 + Sync) -> Vec<f32> {
        (0..self.len())
            .into_par_iter()
            .map(|i| f(self.to_mm(index3(i, self.dims))))
            .collect()
    }

    /// The baseline's HU on the grid, as the descriptors want it (air −1000 outside the scan).
    pub fn sample_fixed(&self, hu: &Array3<i16>, ff: &Frame) -> Vec<f32> {
        self.sample_with(|p| norm(trilinear(hu, ff.to_index(p))))
    }

    /// The follow-up's HU on the grid through the first alignment.
    pub fn sample_moving(&self, hu: &Array3<i16>, fm: &Frame, aff: &Affine) -> Vec<f32> {
        self.sample_with(|p| norm(trilinear(hu, fm.to_index(aff.apply(p)))))
    }

    /// 1 where the follow-up (through the first alignment) has data, 0 beyond its scan: a
    /// follow-up that covers less than the baseline must not be matched to padding.
    pub fn moving_coverage(&self, fm: &Frame, aff: &Affine) -> Vec<f32> {
        self.sample_with(|p| inside(fm.dims, fm.to_index(aff.apply(p))) as u8 as f32)
    }

    /// Working voxels within `dilation_mm` of the baseline lungs and inside the baseline scan:
    /// where the similarity counts.
    pub fn domain(&self, mask: &Array3<u8>, ff: &Frame, dilation_mm: f64) -> Vec<u32> {
        let mut m = self.sample_with(|p| nearest(mask, ff.to_index(p)).unwrap_or(0) as f32);
        let r = (dilation_mm / self.spacing_mm).ceil().max(0.0) as usize;
        crate::mind::box_filter(&mut m, self.dims, r);
        let covered = self.sample_with(|p| inside(ff.dims, ff.to_index(p)) as u8 as f32);
        m.iter()
            .zip(&covered)
            .enumerate()
            .filter(|(_, (v, c))| **v > 1e-6 && **c > 0.5)
            .map(|(i, _)| i as u32)
            .collect()
    }
}

/// The `(z, y, x)` index of flat index `i` in a grid of `dims` (the compute crate's, which its
/// CPU twins use too).
pub(crate) use ildtrack_compute::descriptor::index3;

/// HU → descriptor input: clipped to air…bone-ish so metal and contrast do not dominate.
fn norm(hu: Option<f32>) -> f32 {
    (hu.unwrap_or(-1000.0).clamp(-1000.0, 400.0) + 1000.0) / 1000.0
}

fn inside(dims: [usize; 3], i: [f64; 3]) -> bool {
    (0..3).all(|k| i[k] >= -0.5 && i[k] <= dims[k] as f64 - 0.5)
}

fn nearest<T: Copy>(a: &Array3<T>, i: [f64; 3]) -> Option<T> {
    let d = a.dim();
    let dims = [d.0, d.1, d.2];
    let mut r = [0usize; 3];
    for k in 0..3 {
        let v = i[k].round();
        if !(v >= 0.0 && v < dims[k] as f64) {
            return None;
        }
        r[k] = v as usize;
    }
    Some(a[r])
}

/// Displacement (working voxels) at working index `w`, border clamped.
pub fn sample_disp(d: &Disp, dims: [usize; 3], w: [f64; 3]) -> [f32; 3] {
    ildtrack_compute::descriptor::sample_components3(|c| &d[c], dims, w)
}

/// How well the registration went.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Quality {
    /// Mean squared MIND difference over the lungs (dilated) before the deformable step
    /// (after the first alignment) and after it.
    pub similarity_before: f64,
    pub similarity_after: f64,
    /// Dice of the baseline lungs and the registered follow-up lungs (working grid).
    pub lung_dice: f64,
    /// Baseline lung voxels (working grid) where the map folds (Jacobian ≤ 0), %.
    pub folding_pct: f64,
    /// Mean Jacobian over the baseline lungs: follow-up lung volume per baseline volume.
    pub mean_jacobian: f64,
}

/// A registration result: baseline position `p` (mm) ↦ follow-up position `A(p + u(p))`.
#[derive(Debug, Clone)]
pub struct Registration {
    pub fixed: Frame,
    pub moving: Frame,
    pub affine: Affine,
    pub grid: WorkGrid,
    /// `u` on the working grid, working voxels.
    pub disp: Disp,
    pub quality: Quality,
}

impl Registration {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        fixed: Frame,
        moving: Frame,
        affine: Affine,
        grid: WorkGrid,
        disp: Disp,
        fixed_mask: &Array3<u8>,
        moving_mask: &Array3<u8>,
        similarity_before: f64,
        similarity_after: f64,
    ) -> Result<Registration, RegisterError> {
        let mut r = Registration {
            fixed,
            moving,
            affine,
            grid,
            disp,
            quality: Quality {
                similarity_before,
                similarity_after,
                lung_dice: 0.0,
                folding_pct: 0.0,
                mean_jacobian: 1.0,
            },
        };
        let jac = r.jacobian_working();
        let g = r.grid;
        let (mut inter, mut nf, mut nm, mut fold, mut jsum) = (0u64, 0u64, 0u64, 0u64, 0f64);
        for (i, j) in jac.iter().enumerate() {
            let w = index3(i, g.dims);
            let p = g.to_mm(w);
            let f = nearest(fixed_mask, fixed.to_index(p)).unwrap_or(0) != 0;
            let m = nearest(moving_mask, moving.to_index(r.map_mm(p))).unwrap_or(0) != 0;
            nf += f as u64;
            nm += m as u64;
            inter += (f && m) as u64;
            if f {
                fold += (*j <= 0.0) as u64;
                jsum += *j as f64;
            }
        }
        r.quality.lung_dice = 2.0 * inter as f64 / (nf + nm).max(1) as f64;
        r.quality.folding_pct = 100.0 * fold as f64 / nf.max(1) as f64;
        r.quality.mean_jacobian = jsum / nf.max(1) as f64;
        Ok(r)
    }

    /// `u(p)` in millimetres (border clamped outside the working grid).
    pub fn displacement_mm(&self, p: [f64; 3]) -> [f64; 3] {
        let u = sample_disp(&self.disp, self.grid.dims, self.grid.to_index(p));
        u.map(|v| v as f64 * self.grid.spacing_mm)
    }

    /// The follow-up position (mm, its frame) of baseline position `p` (mm).
    pub fn map_mm(&self, p: [f64; 3]) -> [f64; 3] {
        let u = self.displacement_mm(p);
        self.affine.apply([p[0] + u[0], p[1] + u[1], p[2] + u[2]])
    }

    /// The follow-up index of baseline index `i`.
    pub fn map_index(&self, i: [f64; 3]) -> [f64; 3] {
        self.moving.to_index(self.map_mm(self.fixed.to_mm(i)))
    }

    /// The follow-up's HU on the baseline grid (trilinear; −1024 where the follow-up has no
    /// data).
    pub fn warp_hu(&self, moving: &Array3<i16>) -> Array3<i16> {
        let d = self.fixed.dims;
        let mut out = Array3::<i16>::zeros((d[0], d[1], d[2]));
        Zip::indexed(&mut out).par_for_each(|(z, y, x), o| {
            let i = self.map_index([z as f64, y as f64, x as f64]);
            *o = trilinear(moving, i).map_or(-1024, |v| v.round() as i16);
        });
        out
    }

    /// A follow-up label map on the baseline grid (nearest; 0 where the follow-up has none).
    pub fn warp_labels(&self, moving: &Array3<u8>) -> Array3<u8> {
        let d = self.fixed.dims;
        let mut out = Array3::<u8>::zeros((d[0], d[1], d[2]));
        Zip::indexed(&mut out).par_for_each(|(z, y, x), o| {
            let i = self.map_index([z as f64, y as f64, x as f64]);
            *o = nearest(moving, i).unwrap_or(0);
        });
        out
    }

    /// Jacobian determinant of the map on the working grid (central differences; includes the
    /// first alignment's volume ratio).
    pub fn jacobian_working(&self) -> Vec<f32> {
        let dims = self.grid.dims;
        let [nz, ny, nx] = dims;
        let det_a = self.affine.det() as f32;
        let d = &self.disp;
        (0..self.grid.len())
            .into_par_iter()
            .map(|i| {
                let (z, y, x) = (i / (ny * nx), (i / nx) % ny, i % nx);
                let pos = [z, y, x];
                let n = [nz, ny, nx];
                let stride = [ny * nx, nx, 1];
                // grad[c][k] = ∂u_c / ∂w_k
                let mut m = [[0f32; 3]; 3];
                for k in 0..3 {
                    let (lo, hi) = (pos[k].saturating_sub(1), (pos[k] + 1).min(n[k] - 1));
                    let span = (hi - lo).max(1) as f32;
                    let il = i - (pos[k] - lo) * stride[k];
                    let ih = i + (hi - pos[k]) * stride[k];
                    for c in 0..3 {
                        m[c][k] = (d[c][ih] - d[c][il]) / span;
                    }
                }
                for (c, row) in m.iter_mut().enumerate() {
                    row[c] += 1.0;
                }
                let det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
                    - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
                    + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
                det * det_a
            })
            .collect()
    }

    /// The Jacobian on the baseline grid (trilinear from the working grid; the first
    /// alignment's ratio outside it).
    pub fn jacobian(&self) -> Array3<f32> {
        let jw = self.jacobian_working();
        let g = self.grid;
        let ja = Array3::from_shape_vec((g.dims[0], g.dims[1], g.dims[2]), jw)
            .unwrap_or_else(|_| Array3::zeros((1, 1, 1)));
        let det_a = self.affine.det() as f32;
        let d = self.fixed.dims;
        let mut out = Array3::<f32>::zeros((d[0], d[1], d[2]));
        Zip::indexed(&mut out).par_for_each(|(z, y, x), o| {
            let p = self.fixed.to_mm([z as f64, y as f64, x as f64]);
            *o = trilinear(&ja, g.to_index(p)).unwrap_or(det_a);
        });
        out
    }
}
