//! The discrete step: on a grid of cells (features averaged over each cell), every cell's cost
//! for each displacement within the search range (whole cells), then coupled convex
//! optimisation: alternately smooth the field and let each cell choose the displacement that
//! best trades its cost against distance from the smooth field, the coupling growing each
//! round (ConvexAdam's scheme).

use crate::config::RegisterConfig;
use crate::field::{Disp, index3, sample_disp};
use crate::mind::{CHANNELS, box_filter};
use rayon::prelude::*;

fn pool(feat: &[f32], dims: [usize; 3], g: usize) -> (Vec<f32>, [usize; 3]) {
    let pd = dims.map(|n| n.div_ceil(g));
    let [nz, ny, nx] = dims;
    let mut out = vec![0f32; pd.iter().product::<usize>() * CHANNELS];
    out.par_chunks_mut(CHANNELS).enumerate().for_each(|(c, o)| {
        let (cz, cy, cx) = (c / (pd[1] * pd[2]), (c / pd[2]) % pd[1], c % pd[2]);
        let mut n = 0f32;
        for z in cz * g..((cz + 1) * g).min(nz) {
            for y in cy * g..((cy + 1) * g).min(ny) {
                for x in cx * g..((cx + 1) * g).min(nx) {
                    let i = ((z * ny + y) * nx + x) * CHANNELS;
                    for (k, v) in o.iter_mut().enumerate() {
                        *v += feat[i + k];
                    }
                    n += 1.0;
                }
            }
        }
        o.iter_mut().for_each(|v| *v /= n.max(1.0));
    });
    (out, pd)
}

/// Coarse displacement field, upsampled to the working grid (working voxels).
pub fn coupled_search(mf: &[f32], mm: &[f32], dims: [usize; 3], cfg: &RegisterConfig) -> Disp {
    let g = cfg.cell;
    let r = cfg.search_cells;
    let (pf, pd) = pool(mf, dims, g);
    let (pm, _) = pool(mm, dims, g);
    let ncell = pd.iter().product::<usize>();
    let side = (2 * r + 1) as usize;
    let nk = side * side * side;
    let offs: Vec<[i64; 3]> = (0..nk)
        .map(|k| {
            [
                (k / (side * side)) as i64 - r,
                ((k / side) % side) as i64 - r,
                (k % side) as i64 - r,
            ]
        })
        .collect();
    // Costs, quantised to a byte per candidate between each cell's min and max.
    let mut q = vec![0u8; ncell * nk];
    let mut lohi = vec![(0f32, 0f32); ncell];
    q.par_chunks_mut(nk)
        .zip(lohi.par_iter_mut())
        .enumerate()
        .for_each(|(c, (qc, lh))| {
            let pos = [
                (c / (pd[1] * pd[2])) as i64,
                ((c / pd[2]) % pd[1]) as i64,
                (c % pd[2]) as i64,
            ];
            let f = &pf[c * CHANNELS..(c + 1) * CHANNELS];
            let mut cost = vec![0f32; nk];
            for (k, o) in offs.iter().enumerate() {
                let t = [0, 1, 2].map(|a| (pos[a] + o[a]).clamp(0, pd[a] as i64 - 1) as usize);
                let j = (t[0] * pd[1] + t[1]) * pd[2] + t[2];
                let m = &pm[j * CHANNELS..(j + 1) * CHANNELS];
                cost[k] =
                    f.iter().zip(m).map(|(a, b)| (a - b) * (a - b)).sum::<f32>() / CHANNELS as f32;
            }
            let lo = cost.iter().copied().fold(f32::MAX, f32::min);
            let hi = cost.iter().copied().fold(f32::MIN, f32::max);
            let scale = if hi > lo { 255.0 / (hi - lo) } else { 0.0 };
            for (qv, cv) in qc.iter_mut().zip(&cost) {
                *qv = ((cv - lo) * scale).round() as u8;
            }
            *lh = (lo, hi);
        });
    let cost_at = |c: usize, k: usize| {
        let (lo, hi) = lohi[c];
        lo + q[c * nk + k] as f32 / 255.0 * (hi - lo)
    };
    // Typical spread of a cell's costs: the coupling weights are relative to it.
    let spread = lohi.iter().map(|(lo, hi)| (hi - lo) as f64).sum::<f64>() / ncell.max(1) as f64;
    let mut d: Disp = [vec![0f32; ncell], vec![0f32; ncell], vec![0f32; ncell]];
    let choose = |d: &mut Disp, target: Option<&Disp>, lambda: f32| {
        let picks: Vec<[f32; 3]> = (0..ncell)
            .into_par_iter()
            .map(|c| {
                let mut best = (f32::MAX, [0f32; 3]);
                for (k, o) in offs.iter().enumerate() {
                    let of = o.map(|v| v as f32);
                    let mut e = cost_at(c, k);
                    if let Some(t) = target {
                        let dist: f32 = (0..3).map(|a| (of[a] - t[a][c]).powi(2)).sum();
                        e += lambda * dist;
                    }
                    if e < best.0 {
                        best = (e, of);
                    }
                }
                best.1
            })
            .collect();
        for (c, p) in picks.iter().enumerate() {
            for a in 0..3 {
                d[a][c] = p[a];
            }
        }
    };
    choose(&mut d, None, 0.0);
    for &w in &cfg.coupling {
        let mut s = d.clone();
        for comp in &mut s {
            for _ in 0..3 {
                box_filter(comp, pd, 1);
            }
        }
        choose(&mut d, Some(&s), w * spread as f32);
    }
    // Cells → working voxels.
    let gf = g as f32;
    for comp in &mut d {
        comp.iter_mut().for_each(|v| *v *= gf);
    }
    let n = dims.iter().product::<usize>();
    let up: Vec<[f32; 3]> = (0..n)
        .into_par_iter()
        .map(|i| {
            let cpos = index3(i, dims).map(|v| (v + 0.5) / g as f64 - 0.5);
            sample_disp(&d, pd, cpos)
        })
        .collect();
    [0, 1, 2].map(|a| up.iter().map(|v| v[a]).collect())
}
