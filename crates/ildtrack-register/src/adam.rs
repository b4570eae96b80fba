//! Adam instance optimisation: a displacement grid (every `adam_grid` working voxels), twice
//! box-smoothed and trilinearly upsampled, moved to lower the squared descriptor difference over
//! the (dilated) baseline lungs plus a diffusion regulariser. The gradient of the descriptor
//! difference through trilinear sampling is written out (no autograd); the box filters are
//! symmetric, so their transpose is themselves.

use crate::config::RegisterConfig;
use crate::field::{Disp, index3, sample_disp};
use crate::mind::{CHANNELS, box_filter};
use rayon::prelude::*;

/// Trilinear sample of every channel (channel-last `feat`) at working position `p`, with the
/// gradient per working voxel; `None` outside the grid.
#[inline]
fn sample_grad(
    feat: &[f32],
    dims: [usize; 3],
    p: [f64; 3],
) -> Option<([f32; CHANNELS], [[f32; 3]; CHANNELS])> {
    let mut base = [0usize; 3];
    let mut fr = [0f32; 3];
    for k in 0..3 {
        if !(p[k] >= 0.0 && p[k] <= (dims[k] - 1) as f64) || dims[k] < 2 {
            return None;
        }
        let b = (p[k].floor() as usize).min(dims[k] - 2);
        base[k] = b;
        fr[k] = (p[k] - b as f64) as f32;
    }
    let (sy, sz) = (dims[2], dims[1] * dims[2]);
    let o = base[0] * sz + base[1] * sy + base[2];
    let corner = |dz: usize, dy: usize, dx: usize| (o + dz * sz + dy * sy + dx) * CHANNELS;
    let cs = [
        corner(0, 0, 0),
        corner(0, 0, 1),
        corner(0, 1, 0),
        corner(0, 1, 1),
        corner(1, 0, 0),
        corner(1, 0, 1),
        corner(1, 1, 0),
        corner(1, 1, 1),
    ];
    let [fz, fy, fx] = fr;
    let mut val = [0f32; CHANNELS];
    let mut grad = [[0f32; 3]; CHANNELS];
    let l = |a: f32, b: f32, t: f32| a + (b - a) * t;
    for c in 0..CHANNELS {
        let v: [f32; 8] = cs.map(|i| feat[i + c]);
        let c00 = l(v[0], v[1], fx);
        let c01 = l(v[2], v[3], fx);
        let c10 = l(v[4], v[5], fx);
        let c11 = l(v[6], v[7], fx);
        let c0 = l(c00, c01, fy);
        let c1 = l(c10, c11, fy);
        val[c] = l(c0, c1, fz);
        grad[c] = [
            c1 - c0,
            l(c01 - c00, c11 - c10, fz),
            l(
                l(v[1] - v[0], v[3] - v[2], fy),
                l(v[5] - v[4], v[7] - v[6], fy),
                fz,
            ),
        ];
    }
    Some((val, grad))
}

/// Whether the follow-up has data at working position `p` (all eight neighbours scanned).
fn covered(cover: &[f32], dims: [usize; 3], p: [f64; 3]) -> bool {
    crate::frame::trilinear_grad(cover, dims, p).is_some_and(|(v, _)| v > 0.999)
}

/// Mean squared descriptor difference over `domain`, the follow-up's descriptors displaced by
/// `disp` (working grid, working voxels) or not at all.
pub fn similarity(
    mf: &[f32],
    mm: &[f32],
    cover: &[f32],
    dims: [usize; 3],
    domain: &[u32],
    disp: Option<&Disp>,
) -> f64 {
    let (s, n) = domain
        .par_iter()
        .filter_map(|&i| {
            let i = i as usize;
            let w = index3(i, dims);
            let u = disp.map_or([0.0; 3], |d| [d[0][i], d[1][i], d[2][i]]);
            let p = [0, 1, 2].map(|k| w[k] + u[k] as f64);
            if !covered(cover, dims, p) {
                return None;
            }
            let (v, _) = sample_grad(mm, dims, p)?;
            let f = &mf[i * CHANNELS..(i + 1) * CHANNELS];
            Some(
                v.iter()
                    .zip(f)
                    .map(|(a, b)| ((a - b) * (a - b)) as f64)
                    .sum::<f64>()
                    / CHANNELS as f64,
            )
        })
        .fold(|| (0f64, 0u64), |a, e| (a.0 + e, a.1 + 1))
        .reduce(|| (0.0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    s / n.max(1) as f64
}

fn smooth(p: &Disp, pdims: [usize; 3]) -> Disp {
    let mut s = p.clone();
    for comp in &mut s {
        box_filter(comp, pdims, 1);
        box_filter(comp, pdims, 1);
    }
    s
}

/// Refine `init` (working grid, working voxels); returns the refined field on the working grid.
pub fn optimise(
    mf: &[f32],
    mm: &[f32],
    cover: &[f32],
    dims: [usize; 3],
    domain: &[u32],
    init: &Disp,
    cfg: &RegisterConfig,
) -> Disp {
    let a = cfg.adam_grid;
    let af = a as f64;
    let pdims = dims.map(|n| (n - 1).div_ceil(a) + 1);
    let np: usize = pdims.iter().product();
    // Parameters start at the coarse field sampled at the parameter points.
    let mut par: Disp = [vec![0f32; np], vec![0f32; np], vec![0f32; np]];
    for (j, [pz, py, px]) in (0..np).map(|j| (j, [0, 1, 2])) {
        let u = sample_disp(init, dims, index3(j, pdims).map(|v| v * af));
        par[pz][j] = u[0];
        par[py][j] = u[1];
        par[px][j] = u[2];
    }
    let (b1, b2, eps) = (0.9f32, 0.999f32, 1e-8f32);
    let mut m1: Disp = [vec![0f32; np], vec![0f32; np], vec![0f32; np]];
    let mut m2 = m1.clone();
    let n_dom = domain.len().max(1) as f32;
    let lambda = cfg.smoothness;
    for it in 0..cfg.iterations {
        let s = smooth(&par, pdims);
        // Data term: gradient on the smoothed grid, scattered with the trilinear weights.
        let g_s = domain
            .par_iter()
            .fold(
                || vec![0f32; 3 * np],
                |mut acc, &i| {
                    let i = i as usize;
                    let w = index3(i, dims);
                    let wp = w.map(|v| v / af);
                    let u = sample_disp(&s, pdims, wp);
                    let p = [0, 1, 2].map(|k| w[k] + u[k] as f64);
                    if !covered(cover, dims, p) {
                        return acc;
                    }
                    let Some((v, g)) = sample_grad(mm, dims, p) else {
                        return acc;
                    };
                    let f = &mf[i * CHANNELS..(i + 1) * CHANNELS];
                    let mut gu = [0f32; 3];
                    for c in 0..CHANNELS {
                        let r = 2.0 * (v[c] - f[c]) / CHANNELS as f32;
                        for k in 0..3 {
                            gu[k] += r * g[c][k];
                        }
                    }
                    scatter(&mut acc, pdims, np, wp, gu);
                    acc
                },
            )
            .reduce(
                || vec![0f32; 3 * np],
                |mut a, b| {
                    a.iter_mut().zip(&b).for_each(|(x, y)| *x += y);
                    a
                },
            );
        let mut grad: Disp = [0, 1, 2].map(|c| {
            g_s[c * np..(c + 1) * np]
                .iter()
                .map(|v| v / n_dom)
                .collect::<Vec<f32>>()
        });
        // Diffusion regulariser on the smoothed grid: mean squared difference of neighbours.
        let [pz, py, px] = pdims;
        let stride = [py * px, px, 1];
        let n_edges = (3 * np).max(1) as f32;
        for c in 0..3 {
            let sc = &s[c];
            let gc = &mut grad[c];
            for j in 0..np {
                let pos = [j / (py * px), (j / px) % py, j % px];
                for k in 0..3 {
                    if pos[k] + 1 < [pz, py, px][k] {
                        let d = sc[j + stride[k]] - sc[j];
                        let gd = 2.0 * lambda * d / n_edges;
                        gc[j + stride[k]] += gd;
                        gc[j] -= gd;
                    }
                }
            }
        }
        // Through the two box filters (symmetric).
        let grad = smooth(&grad, pdims);
        let t = (it + 1) as i32;
        let (c1, c2) = (1.0 - b1.powi(t), 1.0 - b2.powi(t));
        for c in 0..3 {
            par[c]
                .par_iter_mut()
                .zip(m1[c].par_iter_mut())
                .zip(m2[c].par_iter_mut())
                .zip(grad[c].par_iter())
                .for_each(|(((p, m), v), g)| {
                    *m = b1 * *m + (1.0 - b1) * g;
                    *v = b2 * *v + (1.0 - b2) * g * g;
                    *p -= cfg.learning_rate * (*m / c1) / ((*v / c2).sqrt() + eps);
                });
        }
    }
    let s = smooth(&par, pdims);
    let n = dims.iter().product::<usize>();
    let up: Vec<[f32; 3]> = (0..n)
        .into_par_iter()
        .map(|i| sample_disp(&s, pdims, index3(i, dims).map(|v| v / af)))
        .collect();
    [0, 1, 2].map(|c| up.iter().map(|v| v[c]).collect())
}

/// Add `g` (3 components) into the grid `acc` (component-major, `np` each) at fractional
/// position `wp` with trilinear weights (border clamped, as `sample_disp` reads).
fn scatter(acc: &mut [f32], pdims: [usize; 3], np: usize, wp: [f64; 3], g: [f32; 3]) {
    let mut base = [0usize; 3];
    let mut fr = [0f32; 3];
    for k in 0..3 {
        let n = pdims[k];
        let c = wp[k].clamp(0.0, (n - 1) as f64);
        let b = (c.floor() as usize).min(n.saturating_sub(2));
        base[k] = b;
        fr[k] = if n < 2 { 0.0 } else { (c - b as f64) as f32 };
    }
    let (sy, sz) = (pdims[2], pdims[1] * pdims[2]);
    for dz in 0..2usize {
        let wz = if dz == 0 { 1.0 - fr[0] } else { fr[0] };
        if pdims[0] < 2 && dz == 1 {
            continue;
        }
        for dy in 0..2usize {
            let wy = if dy == 0 { 1.0 - fr[1] } else { fr[1] };
            if pdims[1] < 2 && dy == 1 {
                continue;
            }
            for dx in 0..2usize {
                let wx = if dx == 0 { 1.0 - fr[2] } else { fr[2] };
                if pdims[2] < 2 && dx == 1 {
                    continue;
                }
                let j = (base[0] + dz) * sz + (base[1] + dy) * sy + base[2] + dx;
                let w = wz * wy * wx;
                for c in 0..3 {
                    acc[c * np + j] += w * g[c];
                }
            }
        }
    }
}
