//! The lung-focused first alignment: the follow-up's lungs moved and scaled per axis so their
//! centroid and spread match the baseline's. Inspiration changes lung height most, width
//! least; the table position changes everything by a shift. Rotations are left to the
//! deformable step.

use crate::config::RegisterError;
use crate::frame::Frame;
use ndarray::{Array3, Axis};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// `q = moving_centre + scale ⊙ (p − fixed_centre)`, millimetres in the two frames.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Affine {
    pub fixed_centre: [f64; 3],
    pub moving_centre: [f64; 3],
    pub scale: [f64; 3],
}

impl Affine {
    pub fn apply(&self, p: [f64; 3]) -> [f64; 3] {
        [0, 1, 2].map(|k| self.moving_centre[k] + self.scale[k] * (p[k] - self.fixed_centre[k]))
    }
    /// Determinant (the volume ratio follow-up / baseline).
    pub fn det(&self) -> f64 {
        self.scale.iter().product()
    }
}

/// Centroid and standard deviation per axis (mm) of a mask's voxels.
pub fn moments(mask: &Array3<u8>, frame: &Frame) -> Option<([f64; 3], [f64; 3])> {
    let (n, s, s2) = mask
        .axis_iter(Axis(0))
        .into_par_iter()
        .enumerate()
        .map(|(z, sl)| {
            let mut n = 0f64;
            let mut s = [0f64; 3];
            let mut s2 = [0f64; 3];
            for ((y, x), &v) in sl.indexed_iter() {
                if v != 0 {
                    let p = frame.to_mm([z as f64, y as f64, x as f64]);
                    n += 1.0;
                    for k in 0..3 {
                        s[k] += p[k];
                        s2[k] += p[k] * p[k];
                    }
                }
            }
            (n, s, s2)
        })
        .collect::<Vec<_>>()
        // Summed in slice order: the same moments whatever the scheduling.
        .into_iter()
        .fold((0.0, [0.0; 3], [0.0; 3]), |a, b| {
            (
                a.0 + b.0,
                [0, 1, 2].map(|k| a.1[k] + b.1[k]),
                [0, 1, 2].map(|k| a.2[k] + b.2[k]),
            )
        });
    if n < 1.0 {
        return None;
    }
    let c = s.map(|v| v / n);
    let sd = [0, 1, 2].map(|k| (s2[k] / n - c[k] * c[k]).max(0.0).sqrt());
    Some((c, sd))
}

/// The alignment of the two lung masks. Each scale is kept within 0.6–1.6 (a breath or a
/// year's growth; beyond that the masks, not the lungs, differ).
pub fn from_masks(
    fixed: &Array3<u8>,
    ff: &Frame,
    moving: &Array3<u8>,
    fm: &Frame,
) -> Result<Affine, RegisterError> {
    let (cf, sf) = moments(fixed, ff).ok_or(RegisterError::EmptyMask("baseline"))?;
    let (cm, sm) = moments(moving, fm).ok_or(RegisterError::EmptyMask("follow-up"))?;
    let scale = [0, 1, 2].map(|k| {
        if sf[k] > 1e-6 && sm[k] > 1e-6 {
            (sm[k] / sf[k]).clamp(0.6, 1.6)
        } else {
            1.0
        }
    });
    Ok(Affine {
        fixed_centre: cf,
        moving_centre: cm,
        scale,
    })
}
