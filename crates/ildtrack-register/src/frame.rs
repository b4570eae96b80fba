//! Millimetre frames and sampling. Each volume's voxel `(z, y, x)` sits at
//! `p_k = sign_k · spacing_k · i_k` mm: the axes point the same way in patient space (LPS) for
//! both visits whatever the slice order (feet first, head first), and the origin is left to the
//! alignment (tables and patients move between visits).

use crate::config::RegisterError;
use ildtrack_volume::Geometry;
use ndarray::Array3;

/// A volume's millimetre frame (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Frame {
    pub dims: [usize; 3],
    pub spacing: [f64; 3],
    /// +1 or −1 per axis `(z, y, x)`: whether the index grows along +LPS.
    pub sign: [f64; 3],
}

impl Frame {
    /// The frame of a volume of `dims` with `geometry`; an oblique or non-axial orientation is
    /// refused (the axes must be within 30° of LPS z, y, x).
    pub fn of(dims: [usize; 3], geometry: &Geometry) -> Result<Frame, RegisterError> {
        let mut sign = [1.0; 3];
        // Index axis z follows LPS z (component 2), y follows LPS y (1), x follows LPS x (0).
        for (k, lps) in [2usize, 1, 0].into_iter().enumerate() {
            let c = geometry.direction[k][lps];
            if c.abs() < 0.866 {
                return Err(RegisterError::Orientation(format!(
                    "axis {k} of the volume points along {:?}, not an axial orientation",
                    geometry.direction[k]
                )));
            }
            sign[k] = c.signum();
        }
        if geometry
            .spacing_mm
            .iter()
            .any(|s| !(s.is_finite() && *s > 0.0))
        {
            return Err(RegisterError::Orientation(format!(
                "voxel spacing {:?} is not positive",
                geometry.spacing_mm
            )));
        }
        Ok(Frame {
            dims,
            spacing: geometry.spacing_mm,
            sign,
        })
    }

    /// Millimetres of (fractional) index `i`.
    pub fn to_mm(&self, i: [f64; 3]) -> [f64; 3] {
        [0, 1, 2].map(|k| self.sign[k] * self.spacing[k] * i[k])
    }

    /// Fractional index of millimetres `p`.
    pub fn to_index(&self, p: [f64; 3]) -> [f64; 3] {
        [0, 1, 2].map(|k| p[k] / (self.sign[k] * self.spacing[k]))
    }
}

/// Trilinear sample of `a` at fractional index `i`; `None` outside the volume (a half voxel of
/// margin is clamped, so border voxels are whole).
#[inline]
pub fn trilinear<T: Copy + Into<f32>>(a: &Array3<T>, i: [f64; 3]) -> Option<f32> {
    let d = a.dim();
    let dims = [d.0, d.1, d.2];
    let mut base = [0usize; 3];
    let mut frac = [0f32; 3];
    for k in 0..3 {
        let n = dims[k] as f64;
        if !(i[k] >= -0.5 && i[k] <= n - 0.5) {
            return None;
        }
        let c = i[k].clamp(0.0, n - 1.0);
        let f = c.floor();
        base[k] = (f as usize).min(dims[k].saturating_sub(2));
        frac[k] = (c - base[k] as f64) as f32;
        if dims[k] == 1 {
            base[k] = 0;
            frac[k] = 0.0;
        }
    }
    let at = |z: usize, y: usize, x: usize| {
        let z = (base[0] + z).min(dims[0] - 1);
        let y = (base[1] + y).min(dims[1] - 1);
        let x = (base[2] + x).min(dims[2] - 1);
        a[[z, y, x]].into()
    };
    let [fz, fy, fx] = frac;
    let l = |a0: f32, a1: f32, t: f32| a0 + (a1 - a0) * t;
    let c00 = l(at(0, 0, 0), at(0, 0, 1), fx);
    let c01 = l(at(0, 1, 0), at(0, 1, 1), fx);
    let c10 = l(at(1, 0, 0), at(1, 0, 1), fx);
    let c11 = l(at(1, 1, 0), at(1, 1, 1), fx);
    Some(l(l(c00, c01, fy), l(c10, c11, fy), fz))
}

/// Trilinear sample and its gradient of an f32 grid (the compute crate's, shared with the
/// CPU twin of the Adam step's data term).
pub use ildtrack_compute::descriptor::trilinear_grad;
