//! Subpleural versus core truth: lung voxels within `depth_mm` of the lung surface.
//!
//! Same definition as the analysis (DOMAIN.md: subpleural = within 10 mm of the lung surface):
//! the exact Euclidean distance in mm from a voxel centre to the nearest voxel centre outside
//! both lungs (`lungs == 0`); beyond the volume's border is *not* background. A voxel is
//! subpleural when that distance is ≤ `depth_mm`. Computed on demand (an exact separable
//! distance transform, Felzenszwalb–Huttenlocher), not during [`crate::generate`].

use crate::generate::{Phantom, RegionTruth};
use ndarray::{Array3, Axis, Zip};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Truth split into the subpleural band and the core of both lungs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SubpleuralTruth {
    pub depth_mm: f64,
    pub subpleural: RegionTruth,
    pub core: RegionTruth,
}

impl Phantom {
    /// Squared distance (mm²) from every voxel to the nearest non-lung voxel (0 outside the lungs;
    /// `f32::INFINITY` everywhere when the volume holds no background).
    pub fn lung_surface_distance2_mm2(&self) -> Array3<f32> {
        let spacing = self.volume.geometry.spacing_mm;
        let mut d: Array3<f32> = self
            .truth
            .lungs
            .mapv(|l| if l == 0 { 0.0 } else { f32::INFINITY });
        for axis in [2usize, 1, 0] {
            let s = spacing[axis] as f32;
            Zip::from(d.lanes_mut(Axis(axis))).par_for_each(|mut lane| {
                let n = lane.len();
                let f: Vec<f32> = lane.iter().copied().collect();
                let mut out = vec![0f32; n];
                dt1d(&f, s, &mut out);
                for (dst, v) in lane.iter_mut().zip(out) {
                    *dst = v;
                }
            });
        }
        d
    }

    /// Lung, GGO, consolidation and vessel volumes within `depth_mm` of the lung surface and deeper.
    pub fn subpleural_truth(&self, depth_mm: f64) -> SubpleuralTruth {
        let d2 = self.lung_surface_distance2_mm2();
        let lim = (depth_mm * depth_mm) as f32;
        let t = &self.truth;
        let nz = d2.len_of(Axis(0));
        // [band][lung, ggo, consolidation, vessel]
        let counts: [[u64; 4]; 2] = (0..nz)
            .into_par_iter()
            .map(|z| {
                let mut c = [[0u64; 4]; 2];
                Zip::from(d2.index_axis(Axis(0), z))
                    .and(t.lungs.index_axis(Axis(0), z))
                    .and(t.ggo.index_axis(Axis(0), z))
                    .and(t.consolidation.index_axis(Axis(0), z))
                    .and(t.vessels.index_axis(Axis(0), z))
                    .for_each(|&d, &l, &g, &co, &v| {
                        if l == 0 {
                            return;
                        }
                        let b = if d <= lim { 0 } else { 1 };
                        c[b][0] += 1;
                        c[b][1] += g as u64;
                        c[b][2] += co as u64;
                        c[b][3] += v as u64;
                    });
                c
            })
            .reduce(
                || [[0u64; 4]; 2],
                |mut a, b| {
                    for i in 0..2 {
                        for j in 0..4 {
                            a[i][j] += b[i][j];
                        }
                    }
                    a
                },
            );
        let ml = t.voxel_ml;
        let region = |c: [u64; 4]| RegionTruth {
            lung_ml: c[0] as f64 * ml,
            ggo_ml: c[1] as f64 * ml,
            consolidation_ml: c[2] as f64 * ml,
            vessel_ml: c[3] as f64 * ml,
        };
        SubpleuralTruth {
            depth_mm,
            subpleural: region(counts[0]),
            core: region(counts[1]),
        }
    }
}

/// 1-D squared distance transform of samples `f` spaced `s` mm apart (lower envelope of
/// parabolas); infinite samples are skipped.
fn dt1d(f: &[f32], s: f32, out: &mut [f32]) {
    let n = f.len();
    let mut v: Vec<usize> = Vec::with_capacity(n);
    let mut zb: Vec<f32> = Vec::with_capacity(n + 1);
    let pos = |i: usize| i as f32 * s;
    for q in 0..n {
        if !f[q].is_finite() {
            continue;
        }
        loop {
            let Some(&p) = v.last() else {
                v.push(q);
                zb.clear();
                zb.push(f32::NEG_INFINITY);
                break;
            };
            let (pq, pp) = (pos(q), pos(p));
            let x = ((f[q] + pq * pq) - (f[p] + pp * pp)) / (2.0 * (pq - pp));
            if zb.last().is_some_and(|&zl| x <= zl) {
                v.pop();
                zb.pop();
                continue;
            }
            v.push(q);
            zb.push(x);
            break;
        }
    }
    if v.is_empty() {
        out.iter_mut().for_each(|o| *o = f32::INFINITY);
        return;
    }
    zb.push(f32::INFINITY);
    let mut k = 0usize;
    for (q, o) in out.iter_mut().enumerate() {
        let x = pos(q);
        while k + 1 < v.len() && zb[k + 1] < x {
            k += 1;
        }
        let p = v[k];
        let dx = x - pos(p);
        *o = dx * dx + f[p];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brute(f: &[f32], s: f32) -> Vec<f32> {
        (0..f.len())
            .map(|q| {
                (0..f.len())
                    .map(|p| {
                        let d = (q as f32 - p as f32) * s;
                        d * d + f[p]
                    })
                    .fold(f32::INFINITY, f32::min)
            })
            .collect()
    }

    #[test]
    fn dt1d_matches_brute_force() {
        let mut rng = crate::rng::SplitMix::new(5);
        for n in [1usize, 2, 3, 7, 20, 33] {
            for _ in 0..20 {
                let f: Vec<f32> = (0..n)
                    .map(|_| {
                        if rng.uniform() < 0.3 {
                            f32::INFINITY
                        } else {
                            (rng.uniform() * 30.0) as f32
                        }
                    })
                    .collect();
                let mut out = vec![0f32; n];
                dt1d(&f, 1.7, &mut out);
                let b = brute(&f, 1.7);
                for (a, b) in out.iter().zip(b.iter()) {
                    assert!((a == b) || (a - b).abs() < 1e-3, "{f:?}: {out:?} vs {b:?}");
                }
            }
        }
    }
}
