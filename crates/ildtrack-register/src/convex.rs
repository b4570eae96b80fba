//! The discrete step: on a grid of cells (features averaged over each cell), every cell's cost
//! for each displacement within the search range (whole cells), then coupled convex
//! optimisation: alternately smooth the field and let each cell choose the displacement that
//! best trades its cost against distance from the smooth field, the coupling growing each
//! round (ConvexAdam's scheme). The costs (`Backend::ssd_costs`) and each round's choice
//! (`Backend::convex_choose`) run on the backend, the costs staying there; pooling and the
//! smoothing of the small coarse field run on the host.

use crate::config::{RegisterConfig, RegisterError};
use crate::field::{Disp, index3, sample_disp};
use crate::mind::{CHANNELS, box_filter, to_vec};
use ildtrack_compute::Backend;
use ndarray::{Array3, ArrayView3};
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
pub fn coupled_search<B: Backend>(
    backend: &B,
    mf: &B::F32,
    mm: &B::F32,
    dims: [usize; 3],
    cfg: &RegisterConfig,
) -> Result<Disp, RegisterError> {
    let g = cfg.cell;
    let r = cfg.search_cells;
    // One descriptor on the host at a time (each is 12 floats per working voxel).
    let (pf, pd) = pool(&to_vec(backend.download_f32(mf)?), dims, g);
    let (pm, _) = pool(&to_vec(backend.download_f32(mm)?), dims, g);
    let ncell = pd.iter().product::<usize>();
    // Costs, quantised to a byte per candidate between each cell's min and max.
    let shape = (pd[0], pd[1], pd[2] * CHANNELS);
    let invalid = |e: ndarray::ShapeError| RegisterError::Invalid(format!("coarse grid: {e}"));
    let pf = backend.upload_f32(ArrayView3::from_shape(shape, &pf).map_err(invalid)?)?;
    let pm = backend.upload_f32(ArrayView3::from_shape(shape, &pm).map_err(invalid)?)?;
    let (q, bounds) = backend.ssd_costs(&pf, &pm, r as usize)?;
    drop((pf, pm));
    let lohi = to_vec(backend.download_f32(&bounds)?);
    // Typical spread of a cell's costs: the coupling weights are relative to it.
    let spread = lohi
        .chunks_exact(2)
        .map(|p| (p[1] - p[0]) as f64)
        .sum::<f64>()
        / ncell.max(1) as f64;
    let cell_shape = (3 * pd[0], pd[1], pd[2]);
    // Each round's choice runs where the costs are; the smooth target goes there and back.
    let choose = |target: Option<&Disp>, lambda: f32| -> Result<Disp, RegisterError> {
        let t = match target {
            Some(t) => {
                let stacked: Vec<f32> = t.iter().flatten().copied().collect();
                let a = Array3::from_shape_vec(cell_shape, stacked).map_err(invalid)?;
                Some(backend.upload_f32(a.view())?)
            }
            None => None,
        };
        let picks = backend.convex_choose(&q, &bounds, t.as_ref(), lambda, r as usize)?;
        let picks = to_vec(backend.download_f32(&picks)?);
        Ok([0, 1, 2].map(|c| picks[c * ncell..(c + 1) * ncell].to_vec()))
    };
    let mut d = choose(None, 0.0)?;
    for &w in &cfg.coupling {
        let mut s = d.clone();
        for comp in &mut s {
            for _ in 0..3 {
                box_filter(comp, pd, 1);
            }
        }
        d = choose(Some(&s), w * spread as f32)?;
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
    Ok([0, 1, 2].map(|a| up.iter().map(|v| v[a]).collect()))
}
