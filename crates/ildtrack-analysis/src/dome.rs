//! The diaphragm dome under one lung as a smooth surface, fitted to the lung's aerated base.
//!
//! Where consolidation fills the lung's base, neither density nor the lung's outline in one
//! slice tells the consolidated recess around the dome from the liver or spleen under it. The
//! dome itself is smooth, and the aerated part of the base still rests on it: the foot-most
//! aerated voxel of each column that sits on dense tissue is a point of the dome — or, in the
//! columns under a lesion, of the lesion's top, far above the dome. A quadratic surface fitted to
//! those points, dropping points well above the fit and fitting again, follows the dome.

use ndarray::Array3;

/// Head position (mm along the head axis) of the dome under a point: `h = c · [1, x, y, x², y²,
/// xy]` with `x`, `y` in mm on the working grid.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dome {
    c: [f64; 6],
}

impl Dome {
    /// Head position (mm) of the dome at row `y`, column `x` (pixels), for spacing `ls`.
    pub(crate) fn at(&self, y: usize, x: usize, ls: [f64; 3]) -> f64 {
        let t = terms(y as f64 * ls[1], x as f64 * ls[2]);
        (0..6).map(|k| self.c[k] * t[k]).sum()
    }
}

fn terms(y: f64, x: f64) -> [f64; 6] {
    [1.0, x, y, x * x, y * y, x * y]
}

/// Points above the fit by more than this are not the dome (mm).
const ABOVE_MM: f64 = 5.0;
/// Organ under a base point for at least this far (mm).
const BELOW_MM: f64 = 10.0;
/// Base points lie within this of the lung's lowest (2nd percentile) base point (mm).
const SPAN_MM: f64 = 80.0;
/// Fewest base points for a fit.
const MIN_POINTS: usize = 50;

/// Fits the dome under lung `label` in `lungs` (working grid, spacing `ls`, `head_step` = +1
/// when the slice index grows towards the head). A column's foot-most voxel of the lung counts
/// when the voxel below it is inside the body and denser than `dense_hu` (the lung rests on
/// tissue there, not on the scan's edge). `None` when fewer than [`MIN_POINTS`] columns count
/// or the fit is singular.
pub(crate) fn fit(
    lungs: &Array3<u8>,
    hu: &Array3<i16>,
    body: &Array3<u8>,
    label: u8,
    ls: [f64; 3],
    head_step: isize,
    dense_hu: i16,
) -> Option<Dome> {
    let (nz, ny, nx) = lungs.dim();
    let head = |z: usize| z as f64 * ls[0] * head_step as f64;
    let mut pts: Vec<(f64, f64, f64)> = Vec::new();
    for y in 0..ny {
        for x in 0..nx {
            // Foot-most slice of the lung in this column.
            let zs = (0..nz).filter(|&z| lungs[[z, y, x]] == label);
            let zb = if head_step > 0 { zs.min() } else { zs.max() };
            let Some(zb) = zb else { continue };
            let below = zb as isize - head_step;
            if below < 0 || below >= nz as isize {
                continue;
            }
            // Dense, non-lung tissue inside the body for BELOW_MM under it (an organ, not a
            // vessel or the scan's edge).
            let steps = (BELOW_MM / ls[0]).ceil().max(1.0) as isize;
            let organ = (1..=steps).all(|s| {
                let b = zb as isize - s * head_step;
                (0..nz as isize).contains(&b) && {
                    let b = b as usize;
                    body[[b, y, x]] != 0 && lungs[[b, y, x]] == 0 && hu[[b, y, x]] > dense_hu
                }
            });
            if organ {
                pts.push((y as f64 * ls[1], x as f64 * ls[2], head(zb)));
            }
        }
    }
    // The base: within SPAN_MM of the lung's lowest points (the lesion's top and the lung's
    // surface over the heart lie higher).
    let mut hs: Vec<f64> = pts.iter().map(|p| p.2).collect();
    hs.sort_by(f64::total_cmp);
    let &low = hs.get(hs.len() / 50)?;
    pts.retain(|p| p.2 <= low + SPAN_MM);
    let mut keep: Vec<bool> = vec![true; pts.len()];
    let mut c = None;
    for _ in 0..8 {
        if keep.iter().filter(|&&k| k).count() < MIN_POINTS {
            return None;
        }
        let fitted = least_squares(pts.iter().zip(&keep).filter(|(_, k)| **k).map(|(p, _)| *p))?;
        let next: Vec<bool> = pts
            .iter()
            .map(|&(y, x, h)| {
                let t = terms(y, x);
                h - (0..6).map(|k| fitted[k] * t[k]).sum::<f64>() <= ABOVE_MM
            })
            .collect();
        c = Some(fitted);
        if next == keep {
            break;
        }
        keep = next;
    }
    c.map(|c| Dome { c })
}

/// Least squares for `h ≈ c · terms(y, x)`: the 6 × 6 normal equations by Gaussian elimination
/// with partial pivoting (coordinates centred and scaled first for conditioning).
fn least_squares(pts: impl Iterator<Item = (f64, f64, f64)> + Clone) -> Option<[f64; 6]> {
    let n = pts.clone().count() as f64;
    let (my, mx) = pts
        .clone()
        .fold((0.0, 0.0), |a, (y, x, _)| (a.0 + y / n, a.1 + x / n));
    let s = 100.0;
    let mut a = [[0.0f64; 7]; 6];
    for (y, x, h) in pts {
        let t = terms((y - my) / s, (x - mx) / s);
        for i in 0..6 {
            for j in 0..6 {
                a[i][j] += t[i] * t[j];
            }
            a[i][6] += t[i] * h;
        }
    }
    for col in 0..6 {
        let piv = (col..6).max_by(|&p, &q| a[p][col].abs().total_cmp(&a[q][col].abs()))?;
        if a[piv][col].abs() < 1e-9 {
            return None;
        }
        a.swap(col, piv);
        let pivot_row = a[col];
        for (r, row) in a.iter_mut().enumerate() {
            if r != col {
                let f = row[col] / pivot_row[col];
                for (v, p) in row[col..].iter_mut().zip(&pivot_row[col..]) {
                    *v -= f * p;
                }
            }
        }
    }
    let u: [f64; 6] = std::array::from_fn(|i| a[i][6] / a[i][i]);
    // Back from the centred, scaled coordinates: with Y = (y - my)/s, X = (x - mx)/s,
    // h = u0 + u1 X + u2 Y + u3 X² + u4 Y² + u5 XY.
    let (s2, xm, ym) = (s * s, mx, my);
    let c3 = u[3] / s2;
    let c4 = u[4] / s2;
    let c5 = u[5] / s2;
    let c1 = u[1] / s - 2.0 * c3 * xm - c5 * ym;
    let c2 = u[2] / s - 2.0 * c4 * ym - c5 * xm;
    let c0 = u[0] - u[1] / s * xm - u[2] / s * ym + c3 * xm * xm + c4 * ym * ym + c5 * xm * ym;
    Some([c0, c1, c2, c3, c4, c5])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fits_a_dome_under_a_lung_whose_base_is_partly_hidden() {
        // A paraboloid dome h = 40 - ((x-30)² + (y-30)²)/60 mm (1 mm voxels, z up = head);
        // lung above it; in one corner (x, y < 20) a "lesion" makes the lung begin 30 mm higher.
        let (nz, ny, nx) = (80, 60, 60);
        let dome = |y: f64, x: f64| 40.0 - ((x - 30.0).powi(2) + (y - 30.0).powi(2)) / 60.0;
        let mut lungs = Array3::<u8>::zeros((nz, ny, nx));
        let hu = Array3::<i16>::from_elem((nz, ny, nx), 40);
        let body = Array3::<u8>::from_elem((nz, ny, nx), 1);
        for z in 0..nz {
            for y in 0..ny {
                for x in 0..nx {
                    let mut floor = dome(y as f64, x as f64);
                    if x < 20 && y < 20 {
                        floor += 30.0;
                    }
                    if z as f64 >= floor {
                        lungs[[z, y, x]] = 1;
                    }
                }
            }
        }
        let d = fit(&lungs, &hu, &body, 1, [1.0, 1.0, 1.0], 1, -300).expect("fit");
        for (y, x) in [(30, 30), (5, 5), (50, 10), (10, 50)] {
            let got = d.at(y, x, [1.0, 1.0, 1.0]);
            let want = dome(y as f64, x as f64);
            assert!(
                (got - want).abs() < 2.0,
                "({y}, {x}): dome {got:.1} mm, truth {want:.1}"
            );
        }
        // The same with the slices in the other order (head at index 0): head positions are
        // then -(nz - 1 - z) mm.
        let flipped = lungs.slice(ndarray::s![..;-1, .., ..]).to_owned();
        let d = fit(&flipped, &hu, &body, 1, [1.0, 1.0, 1.0], -1, -300).expect("fit");
        let got = d.at(5, 5, [1.0, 1.0, 1.0]);
        let want = dome(5.0, 5.0) - (nz as f64 - 1.0);
        assert!((got - want).abs() < 2.0, "flipped: {got:.1} vs {want:.1}");
    }
}
