//! The lung-focused first alignment: the follow-up's lungs moved, turned and scaled per axis
//! so their centroid, orientation and spread match the baseline's. Inspiration changes lung
//! height most, width least; the table position changes everything by a shift; a patient
//! lying turned (rolled on the table, head tilted) turns everything. The turn is the one that
//! puts most of the baseline's lungs inside the follow-up's, kept only where it does clearly
//! better than none.

use crate::config::RegisterError;
use crate::frame::Frame;
use ndarray::{Array3, Axis};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// `q = moving_centre + rotation · (scale ⊙ (p − fixed_centre))`, millimetres in the two frames.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Affine {
    pub fixed_centre: [f64; 3],
    pub moving_centre: [f64; 3],
    pub scale: [f64; 3],
    /// Rows: the moving frame's axes; a proper rotation (identity: not turned).
    #[serde(default = "identity")]
    pub rotation: [[f64; 3]; 3],
}

/// The identity rotation.
pub fn identity() -> [[f64; 3]; 3] {
    [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
}

impl Affine {
    pub fn apply(&self, p: [f64; 3]) -> [f64; 3] {
        let d = [0, 1, 2].map(|k| self.scale[k] * (p[k] - self.fixed_centre[k]));
        let r = &self.rotation;
        [0, 1, 2].map(|i| self.moving_centre[i] + r[i][0] * d[0] + r[i][1] * d[1] + r[i][2] * d[2])
    }
    /// The baseline position (mm) that [`Affine::apply`] takes to `q`.
    pub fn inverse(&self, q: [f64; 3]) -> [f64; 3] {
        let e = [0, 1, 2].map(|k| q[k] - self.moving_centre[k]);
        let r = &self.rotation;
        [0, 1, 2].map(|k| {
            self.fixed_centre[k]
                + (r[0][k] * e[0] + r[1][k] * e[1] + r[2][k] * e[2]) / self.scale[k]
        })
    }
    /// Determinant (the volume ratio follow-up / baseline; a rotation keeps volume).
    pub fn det(&self) -> f64 {
        self.scale.iter().product()
    }
}

/// Rotation by `degrees` about the frame's axis `axis` (0 craniocaudal, 1 anteroposterior,
/// 2 left-right).
pub fn axis_rotation(axis: usize, degrees: f64) -> [[f64; 3]; 3] {
    let (a, b) = match axis {
        0 => (1, 2),
        1 => (0, 2),
        _ => (0, 1),
    };
    let (s, c) = degrees.to_radians().sin_cos();
    let mut r = identity();
    r[a][a] = c;
    r[a][b] = -s;
    r[b][a] = s;
    r[b][b] = c;
    r
}

fn mat_mul(x: &[[f64; 3]; 3], y: &[[f64; 3]; 3]) -> [[f64; 3]; 3] {
    let mut m = [[0.0; 3]; 3];
    for i in 0..3 {
        for j in 0..3 {
            m[i][j] = (0..3).map(|k| x[i][k] * y[k][j]).sum();
        }
    }
    m
}

/// Centroid and standard deviation per axis (mm) of a mask's voxels.
pub fn moments(mask: &Array3<u8>, frame: &Frame) -> Option<([f64; 3], [f64; 3])> {
    let (c, cov) = covariance(mask, frame)?;
    Some((c, [0, 1, 2].map(|k| cov[k][k].max(0.0).sqrt())))
}

/// Centroid and covariance (mm²) of a mask's voxels.
pub fn covariance(mask: &Array3<u8>, frame: &Frame) -> Option<([f64; 3], [[f64; 3]; 3])> {
    let parts = mask
        .axis_iter(Axis(0))
        .into_par_iter()
        .enumerate()
        .map(|(z, sl)| {
            let mut n = 0f64;
            let mut s = [0f64; 3];
            let mut s2 = [[0f64; 3]; 3];
            for ((y, x), &v) in sl.indexed_iter() {
                if v != 0 {
                    let p = frame.to_mm([z as f64, y as f64, x as f64]);
                    n += 1.0;
                    for i in 0..3 {
                        s[i] += p[i];
                        for j in 0..3 {
                            s2[i][j] += p[i] * p[j];
                        }
                    }
                }
            }
            (n, s, s2)
        })
        .collect::<Vec<_>>();
    // Summed in slice order: the same figures whatever the scheduling.
    let (mut n, mut s, mut s2) = (0f64, [0f64; 3], [[0f64; 3]; 3]);
    for (pn, ps, ps2) in parts {
        n += pn;
        for i in 0..3 {
            s[i] += ps[i];
            for j in 0..3 {
                s2[i][j] += ps2[i][j];
            }
        }
    }
    if n < 1.0 {
        return None;
    }
    let c = s.map(|v| v / n);
    let mut cov = [[0f64; 3]; 3];
    for i in 0..3 {
        for j in 0..3 {
            cov[i][j] = s2[i][j] / n - c[i] * c[j];
        }
    }
    Some((c, cov))
}

/// Largest turn searched about the craniocaudal axis (a patient rolled on the table) and about
/// the other two (head tilted), degrees.
const MAX_ROLL_DEG: f64 = 20.0;
const MAX_TILT_DEG: f64 = 10.0;
/// A turn is kept only where it puts this much more of the baseline's lungs (share of its
/// sampled points) inside the follow-up's than no turn does: a scan lying as the baseline did
/// keeps exactly the alignment without one.
const MIN_TURN_GAIN: f64 = 0.01;
/// Spacing of the baseline lung points the turn is judged on, mm.
const TURN_SAMPLE_MM: f64 = 4.0;

/// The alignment of the two lung masks. Each scale is kept within 0.6–1.6 (a breath or a
/// year's growth; beyond that the masks, not the lungs, differ).
pub fn from_masks(
    fixed: &Array3<u8>,
    ff: &Frame,
    moving: &Array3<u8>,
    fm: &Frame,
) -> Result<Affine, RegisterError> {
    let (cf, sf) = moments(fixed, ff).ok_or(RegisterError::EmptyMask("baseline"))?;
    let (cm, cov_m) = covariance(moving, fm).ok_or(RegisterError::EmptyMask("follow-up"))?;
    // The follow-up's spread along the turned baseline axis k (column k of the rotation).
    let with = |rotation: [[f64; 3]; 3]| {
        let scale = [0, 1, 2].map(|k| {
            let r = [0, 1, 2].map(|i| rotation[i][k]);
            let var: f64 = (0..3)
                .map(|i| (0..3).map(|j| r[i] * cov_m[i][j] * r[j]).sum::<f64>())
                .sum();
            let sm = var.max(0.0).sqrt();
            if sf[k] > 1e-6 && sm > 1e-6 {
                (sm / sf[k]).clamp(0.6, 1.6)
            } else {
                1.0
            }
        });
        Affine {
            fixed_centre: cf,
            moving_centre: cm,
            scale,
            rotation,
        }
    };
    let points = sample_points(fixed, ff, TURN_SAMPLE_MM);
    let overlap = |a: &Affine| inside_share(&points, a, moving, fm);
    let none = with(identity());
    let base_score = overlap(&none);
    // Coordinate search over the three angles, coarse to fine.
    let mut angles = [0.0f64; 3];
    let mut best = base_score;
    let rot = |a: &[f64; 3]| {
        mat_mul(
            &mat_mul(&axis_rotation(0, a[0]), &axis_rotation(1, a[1])),
            &axis_rotation(2, a[2]),
        )
    };
    for step in [2.5, 1.25, 0.625] {
        for axis in 0..3 {
            let limit = if axis == 0 {
                MAX_ROLL_DEG
            } else {
                MAX_TILT_DEG
            };
            let reach = if step == 2.5 { limit } else { 2.0 * step };
            let centre = angles[axis];
            let n = (reach / step).round() as i32;
            for i in -n..=n {
                let mut a = angles;
                a[axis] = (centre + i as f64 * step).clamp(-limit, limit);
                if a == angles {
                    continue;
                }
                let score = overlap(&with(rot(&a)));
                if score > best {
                    best = score;
                    angles = a;
                }
            }
        }
    }
    if best - base_score < MIN_TURN_GAIN {
        return Ok(none);
    }
    tracing::debug!(
        roll = angles[0],
        tilt_ap = angles[1],
        tilt_lr = angles[2],
        gain = best - base_score,
        "registration: first alignment turned"
    );
    Ok(with(rot(&angles)))
}

/// Millimetre positions of the mask's voxels on a grid of about `step_mm`.
fn sample_points(mask: &Array3<u8>, f: &Frame, step_mm: f64) -> Vec<[f64; 3]> {
    let (nz, ny, nx) = mask.dim();
    let st = [0, 1, 2].map(|k| ((step_mm / f.spacing[k]).round() as usize).max(1));
    let mut out = Vec::new();
    for z in (0..nz).step_by(st[0]) {
        for y in (0..ny).step_by(st[1]) {
            for x in (0..nx).step_by(st[2]) {
                if mask[(z, y, x)] != 0 {
                    out.push(f.to_mm([z as f64, y as f64, x as f64]));
                }
            }
        }
    }
    out
}

/// Share of `points` (baseline mm) that `a` takes into the follow-up's mask.
fn inside_share(points: &[[f64; 3]], a: &Affine, moving: &Array3<u8>, fm: &Frame) -> f64 {
    let (nz, ny, nx) = moving.dim();
    let hits: usize = points
        .par_iter()
        .filter(|p| {
            let i = fm.to_index(a.apply(**p)).map(|v| v.round());
            i.iter().all(|&v| v >= 0.0)
                && (i[0] as usize) < nz
                && (i[1] as usize) < ny
                && (i[2] as usize) < nx
                && moving[(i[0] as usize, i[1] as usize, i[2] as usize)] != 0
        })
        .count();
    hits as f64 / points.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverse_undoes_apply_with_a_turn() {
        let r = mat_mul(&axis_rotation(0, 12.0), &axis_rotation(2, -4.0));
        let a = Affine {
            fixed_centre: [10.0, -20.0, 5.0],
            moving_centre: [12.0, -15.0, 1.0],
            scale: [0.85, 0.97, 1.02],
            rotation: r,
        };
        for p in [[0.0, 0.0, 0.0], [-120.0, 80.0, 140.0], [33.0, -7.0, -90.0]] {
            let back = a.inverse(a.apply(p));
            for k in 0..3 {
                assert!((back[k] - p[k]).abs() < 1e-9, "{p:?} -> {back:?}");
            }
        }
        // A rotation keeps lengths: the determinant is the scales' product.
        let d = |x: [f64; 3], y: [f64; 3]| (0..3).map(|k| (x[k] - y[k]).powi(2)).sum::<f64>();
        let unit = Affine {
            scale: [1.0; 3],
            ..a
        };
        let (p, q) = ([1.0, 2.0, 3.0], [-40.0, 7.0, 19.0]);
        assert!((d(unit.apply(p), unit.apply(q)) - d(p, q)).abs() < 1e-6);
        assert!((a.det() - 0.85 * 0.97 * 1.02).abs() < 1e-12);
    }

    /// A mask turned 12° about the craniocaudal axis: the first alignment finds the turn (its
    /// map puts the points back), and an unturned copy keeps no turn at all.
    #[test]
    fn the_first_alignment_finds_a_roll_and_adds_none_where_there_is_none() {
        use crate::synthetic::Turn;
        let g = ildtrack_volume::Geometry {
            spacing_mm: [3.0, 3.0, 3.0],
            ..Default::default()
        };
        let dims = [60usize, 80, 80];
        let f = Frame::of(dims, &g).expect("frame");
        let centre = f.to_mm([30.0, 40.0, 40.0]);
        // Two "lungs": ellipsoids either side, one larger (so a turn is not symmetric).
        let inside = |p: [f64; 3]| {
            let e = |c: [f64; 3], r: [f64; 3]| {
                (0..3).map(|k| ((p[k] - c[k]) / r[k]).powi(2)).sum::<f64>() <= 1.0
            };
            e([centre[0], centre[1], centre[2] - 45.0], [70.0, 50.0, 35.0])
                || e(
                    [centre[0] + 10.0, centre[1] - 10.0, centre[2] + 45.0],
                    [55.0, 40.0, 28.0],
                )
        };
        let turn = Turn {
            centre,
            axis: 0,
            degrees: 12.0,
        };
        // The follow-up shows at q what the baseline has at turn(q).
        let fixed = Array3::from_shape_fn((dims[0], dims[1], dims[2]), |(z, y, x)| {
            u8::from(inside(f.to_mm([z as f64, y as f64, x as f64])))
        });
        let moving = Array3::from_shape_fn((dims[0], dims[1], dims[2]), |(z, y, x)| {
            let q = f.to_mm([z as f64, y as f64, x as f64]);
            let back = Turn {
                degrees: -12.0,
                ..turn
            };
            u8::from(inside(back.apply(q)))
        });
        let a = from_masks(&fixed, &f, &moving, &f).expect("align");
        let p = [centre[0] + 20.0, centre[1] + 30.0, centre[2] - 60.0];
        let err: f64 = (0..3)
            .map(|k| (a.apply(p)[k] - turn.apply(p)[k]).powi(2))
            .sum::<f64>()
            .sqrt();
        assert!(err < 3.0, "mapped {err:.2} mm from where the turn puts it");
        let same = from_masks(&fixed, &f, &fixed, &f).expect("align");
        assert_eq!(same.rotation, identity());
    }
}
