//! Adam instance optimisation: a displacement grid (every `adam_grid` working voxels), twice
//! box-smoothed and trilinearly upsampled, moved to lower the squared descriptor difference over
//! the (dilated) baseline lungs plus a diffusion regulariser. The gradient of the descriptor
//! difference through trilinear sampling is written out (no autograd) and runs on the compute
//! backend (`Backend::descriptor_grad`); the box filters are symmetric, so their transpose is
//! themselves.

use crate::config::{RegisterConfig, RegisterError};
use crate::field::{Disp, index3, sample_disp};
use crate::mind::{CHANNELS, box_filter, to_vec};
use ildtrack_compute::Backend;
use ildtrack_compute::descriptor::{covered, sample_channels_grad as sample_grad};
use ndarray::Array3;
use rayon::prelude::*;

/// What the data term reads, on the backend: both descriptors, the follow-up's coverage and
/// the domain (working grid).
pub struct DataTerm<'a, B: Backend> {
    pub fixed: &'a B::F32,
    pub moving: &'a B::F32,
    pub cover: &'a B::F32,
    pub domain: &'a B::U8,
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
    // Per fixed chunk, then summed in order: the same figure whatever the scheduling.
    let parts: Vec<(f64, u64)> = domain
        .par_chunks(4096)
        .map(|part| {
            part.iter()
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
                .fold((0f64, 0u64), |a, e| (a.0 + e, a.1 + 1))
        })
        .collect();
    let (s, n) = parts
        .iter()
        .fold((0f64, 0u64), |a, b| (a.0 + b.0, a.1 + b.1));
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
/// The data term's gradient is `Backend::descriptor_grad`; the regulariser, the smoothing and
/// the Adam update work on the small parameter grid on the host.
pub fn optimise<B: Backend>(
    backend: &B,
    data: &DataTerm<'_, B>,
    dims: [usize; 3],
    n_domain: usize,
    init: &Disp,
    cfg: &RegisterConfig,
) -> Result<Disp, RegisterError> {
    let a = cfg.adam_grid;
    let af = a as f64;
    let pdims = ildtrack_compute::param_grid_dims(dims, a);
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
    let n_dom = n_domain.max(1) as f32;
    let lambda = cfg.smoothness;
    for it in 0..cfg.iterations {
        let s = smooth(&par, pdims);
        // Data term: gradient on the smoothed grid, scattered with the trilinear weights.
        let stacked: Vec<f32> = s.iter().flatten().copied().collect();
        let params = backend.upload_f32(
            Array3::from_shape_vec((3 * pdims[0], pdims[1], pdims[2]), stacked)
                .map_err(|e| RegisterError::Invalid(format!("parameter grid: {e}")))?
                .view(),
        )?;
        let g_s = backend.descriptor_grad(
            data.fixed,
            data.moving,
            data.cover,
            data.domain,
            &params,
            a,
        )?;
        let g_s = to_vec(backend.download_f32(&g_s)?);
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
    Ok([0, 1, 2].map(|c| up.iter().map(|v| v[c]).collect()))
}
