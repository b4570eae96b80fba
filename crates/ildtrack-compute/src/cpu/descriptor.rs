//! The registration's voxel kernels on the CPU: the reference twins of `shaders/mind_ssc.wgsl`,
//! `ssd_costs.wgsl`, `convex_choose.wgsl` and `descriptor_grad.wgsl` (the `Backend` methods of
//! the same names), on
//! plain slices so a caller holding small host grids (a registration's coarse fields) can use
//! the same box filter and samplers.

use crate::api::MIND_CHANNELS;
use rayon::prelude::*;

/// The 12 neighbour pairs `(a, b)` of MIND-SSC as `(z, y, x)` unit offsets: pairs of the six
/// face neighbours that are not opposite each other, in the order the kernels number them.
pub fn mind_pairs() -> Vec<([i64; 3], [i64; 3])> {
    let six: [[i64; 3]; 6] = [
        [-1, 0, 0],
        [0, 0, -1],
        [0, -1, 0],
        [0, 0, 1],
        [1, 0, 0],
        [0, 1, 0],
    ];
    let mut out = Vec::with_capacity(MIND_CHANNELS);
    for i in 0..6 {
        for j in 0..i {
            let d2: i64 = (0..3).map(|k| (six[i][k] - six[j][k]).pow(2)).sum();
            if d2 == 2 {
                out.push((six[i], six[j]));
            }
        }
    }
    out
}

fn idx(dims: [usize; 3], z: usize, y: usize, x: usize) -> usize {
    (z * dims[1] + y) * dims[2] + x
}

fn clamp_add(i: usize, d: i64, n: usize) -> usize {
    (i as i64 + d).clamp(0, n as i64 - 1) as usize
}

/// Box filter of radius `r` along x, then y, then z (border clamped), in place: each output is
/// the sum over the `2r + 1` taps in order, times `1 / (2r + 1)`.
pub fn box_filter(v: &mut [f32], dims: [usize; 3], r: usize) {
    let [nz, ny, nx] = dims;
    if r == 0 || v.is_empty() || v.len() != nz * ny * nx {
        return;
    }
    let norm = 1.0 / (2 * r + 1) as f32;
    v.par_chunks_mut(nx).for_each(|line| {
        let src = line.to_vec();
        for x in 0..nx {
            let mut s = 0.0;
            for d in -(r as i64)..=(r as i64) {
                s += src[clamp_add(x, d, nx)];
            }
            line[x] = s * norm;
        }
    });
    v.par_chunks_mut(ny * nx).for_each(|slice| {
        let src = slice.to_vec();
        for y in 0..ny {
            for x in 0..nx {
                let mut s = 0.0;
                for d in -(r as i64)..=(r as i64) {
                    s += src[clamp_add(y, d, ny) * nx + x];
                }
                slice[y * nx + x] = s * norm;
            }
        }
    });
    let src = v.to_vec();
    v.par_chunks_mut(ny * nx)
        .enumerate()
        .for_each(|(z, slice)| {
            for (j, out) in slice.iter_mut().enumerate() {
                let mut s = 0.0;
                for d in -(r as i64)..=(r as i64) {
                    s += src[clamp_add(z, d, nz) * ny * nx + j];
                }
                *out = s * norm;
            }
        });
}

/// MIND-SSC of `img` (see `Backend::mind_ssc`). Channel-last: `out[voxel * 12 + c]`.
pub fn mind_ssc(img: &[f32], dims: [usize; 3], dilation: usize, radius: usize) -> Vec<f32> {
    let n = img.len();
    let [nz, ny, nx] = dims;
    if n == 0 || n != nz * ny * nx {
        return Vec::new();
    }
    let dl = dilation as i64;
    let ps = mind_pairs();
    let mut d: Vec<Vec<f32>> = ps
        .par_iter()
        .map(|(a, b)| {
            let mut e = vec![0f32; n];
            e.par_chunks_mut(ny * nx)
                .enumerate()
                .for_each(|(z, slice)| {
                    for y in 0..ny {
                        for x in 0..nx {
                            let pa = idx(
                                dims,
                                clamp_add(z, a[0] * dl, nz),
                                clamp_add(y, a[1] * dl, ny),
                                clamp_add(x, a[2] * dl, nx),
                            );
                            let pb = idx(
                                dims,
                                clamp_add(z, b[0] * dl, nz),
                                clamp_add(y, b[1] * dl, ny),
                                clamp_add(x, b[2] * dl, nx),
                            );
                            let t = img[pa] - img[pb];
                            slice[y * nx + x] = t * t;
                        }
                    }
                });
            e
        })
        .collect();
    for e in &mut d {
        box_filter(e, dims, radius);
    }
    // Local variance estimate, clamped around its global mean so flat regions do not blow up.
    let var: Vec<f32> = (0..n)
        .into_par_iter()
        .map(|i| d.iter().map(|c| c[i]).sum::<f32>() / MIND_CHANNELS as f32)
        .collect();
    let mean = (var.iter().map(|&v| v as f64).sum::<f64>() / n as f64) as f32;
    let (lo, hi) = mind_var_bounds(mean);
    let mut out = vec![0f32; n * MIND_CHANNELS];
    out.par_chunks_mut(MIND_CHANNELS)
        .enumerate()
        .for_each(|(i, o)| {
            let v = var[i].clamp(lo, hi);
            let mut mx = 0f32;
            for (c, oc) in o.iter_mut().enumerate() {
                *oc = (-d[c][i] / v).exp();
                mx = mx.max(*oc);
            }
            if mx > 0.0 {
                o.iter_mut().for_each(|x| *x /= mx);
            }
        });
    out
}

/// The clamp of MIND-SSC's local variance given the volume's mean variance.
pub fn mind_var_bounds(mean: f32) -> (f32, f32) {
    (mean * 0.001 + 1e-12, mean * 1000.0 + 1e-12)
}

/// Trilinear sample and its gradient (per index unit) of `a` at fractional index `i`; `None`
/// outside `[0, n − 1]` on any axis or on an axis shorter than 2.
#[inline]
pub fn trilinear_grad(a: &[f32], dims: [usize; 3], i: [f64; 3]) -> Option<(f32, [f32; 3])> {
    let mut base = [0usize; 3];
    let mut frac = [0f32; 3];
    for k in 0..3 {
        let n = dims[k] as f64;
        if !(i[k] >= 0.0 && i[k] <= n - 1.0) || dims[k] < 2 {
            return None;
        }
        let f = i[k].floor();
        base[k] = (f as usize).min(dims[k] - 2);
        frac[k] = (i[k] - base[k] as f64) as f32;
    }
    let (sy, sz) = (dims[2], dims[1] * dims[2]);
    let o = base[0] * sz + base[1] * sy + base[2];
    let v = |dz: usize, dy: usize, dx: usize| a[o + dz * sz + dy * sy + dx];
    let [fz, fy, fx] = frac;
    let (c000, c001, c010, c011) = (v(0, 0, 0), v(0, 0, 1), v(0, 1, 0), v(0, 1, 1));
    let (c100, c101, c110, c111) = (v(1, 0, 0), v(1, 0, 1), v(1, 1, 0), v(1, 1, 1));
    let l = |a0: f32, a1: f32, t: f32| a0 + (a1 - a0) * t;
    let c00 = l(c000, c001, fx);
    let c01 = l(c010, c011, fx);
    let c10 = l(c100, c101, fx);
    let c11 = l(c110, c111, fx);
    let c0 = l(c00, c01, fy);
    let c1 = l(c10, c11, fy);
    let val = l(c0, c1, fz);
    let gz = c1 - c0;
    let gy = l(c01 - c00, c11 - c10, fz);
    let gx = l(
        l(c001 - c000, c011 - c010, fy),
        l(c101 - c100, c111 - c110, fy),
        fz,
    );
    Some((val, [gz, gy, gx]))
}

/// Trilinear sample of every channel of a channel-last descriptor `feat` (`dims` the voxel
/// grid) at fractional index `p`, with the gradient per index unit; `None` outside the grid.
#[inline]
pub fn sample_channels_grad(
    feat: &[f32],
    dims: [usize; 3],
    p: [f64; 3],
) -> Option<([f32; MIND_CHANNELS], [[f32; 3]; MIND_CHANNELS])> {
    let mut base = [0usize; 3];
    let mut fr = [0f32; 3];
    for k in 0..3 {
        if !(p[k] >= 0.0 && p[k] <= (dims[k] as f64 - 1.0)) || dims[k] < 2 {
            return None;
        }
        let b = (p[k].floor() as usize).min(dims[k] - 2);
        base[k] = b;
        fr[k] = (p[k] - b as f64) as f32;
    }
    let (sy, sz) = (dims[2], dims[1] * dims[2]);
    let o = base[0] * sz + base[1] * sy + base[2];
    let corner = |dz: usize, dy: usize, dx: usize| (o + dz * sz + dy * sy + dx) * MIND_CHANNELS;
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
    let mut val = [0f32; MIND_CHANNELS];
    let mut grad = [[0f32; 3]; MIND_CHANNELS];
    let l = |a: f32, b: f32, t: f32| a + (b - a) * t;
    for c in 0..MIND_CHANNELS {
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

/// Whether the coverage map `cover` is fully 1 around fractional index `p` (trilinear value
/// above 0.999: all eight neighbours scanned).
#[inline]
pub fn covered(cover: &[f32], dims: [usize; 3], p: [f64; 3]) -> bool {
    trilinear_grad(cover, dims, p).is_some_and(|(v, _)| v > 0.999)
}

/// Base index and fraction per axis of fractional position `w` on a grid of `dims` (border
/// clamped; an axis of one point has fraction 0).
#[inline]
fn grid_cell(dims: [usize; 3], w: [f64; 3]) -> ([usize; 3], [f32; 3]) {
    let mut base = [0usize; 3];
    let mut frac = [0f32; 3];
    for k in 0..3 {
        let n = dims[k];
        let c = w[k].clamp(0.0, (n - 1) as f64);
        let b = (c.floor() as usize).min(n.saturating_sub(2));
        base[k] = b;
        frac[k] = if n < 2 { 0.0 } else { (c - b as f64) as f32 };
    }
    (base, frac)
}

/// Trilinear sample (border clamped) of a three-component grid stored component-major
/// (`grid[c * np + j]`, `np` points of `dims`) at fractional position `w`.
#[inline]
pub fn sample_grid3(grid: &[f32], dims: [usize; 3], w: [f64; 3]) -> [f32; 3] {
    let np = dims.iter().product::<usize>();
    sample_components3(|c| &grid[c * np..(c + 1) * np], dims, w)
}

/// Trilinear sample (border clamped) of three components, each a grid of `dims` points
/// (`component(c)[j]`), at fractional position `w`.
#[inline]
pub fn sample_components3<'a>(
    component: impl Fn(usize) -> &'a [f32],
    dims: [usize; 3],
    w: [f64; 3],
) -> [f32; 3] {
    let (base, [fz, fy, fx]) = grid_cell(dims, w);
    let (sy, sz) = (dims[2], dims[1] * dims[2]);
    let o = base[0] * sz + base[1] * sy + base[2];
    let step = [
        if dims[0] > 1 { sz } else { 0 },
        if dims[1] > 1 { sy } else { 0 },
        if dims[2] > 1 { 1 } else { 0 },
    ];
    let l = |a: f32, b: f32, t: f32| a + (b - a) * t;
    [0, 1, 2].map(|c| {
        let a = component(c);
        let v = |dz: usize, dy: usize, dx: usize| a[o + dz * step[0] + dy * step[1] + dx * step[2]];
        l(
            l(
                l(v(0, 0, 0), v(0, 0, 1), fx),
                l(v(0, 1, 0), v(0, 1, 1), fx),
                fy,
            ),
            l(
                l(v(1, 0, 0), v(1, 0, 1), fx),
                l(v(1, 1, 0), v(1, 1, 1), fx),
                fy,
            ),
            fz,
        )
    })
}

/// Adds `g` into the component-major grid `acc` (`np` points of `pdims`) at fractional
/// position `wp` with the trilinear weights `sample_grid3` reads with (its transpose).
fn scatter(acc: &mut [f32], pdims: [usize; 3], np: usize, wp: [f64; 3], g: [f32; 3]) {
    let (base, fr) = grid_cell(pdims, wp);
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

/// The `(z, y, x)` index of flat index `i` in a grid of `dims`.
#[inline]
pub fn index3(i: usize, dims: [usize; 3]) -> [f64; 3] {
    let [_, ny, nx] = dims;
    [
        (i / (ny * nx)) as f64,
        ((i / nx) % ny) as f64,
        (i % nx) as f64,
    ]
}

/// The data-term gradient of `Backend::descriptor_grad` on slices (`params` and the result
/// component-major, `pdims` the parameter grid).
#[allow(clippy::too_many_arguments)]
pub fn descriptor_grad(
    fixed: &[f32],
    moving: &[f32],
    cover: &[f32],
    domain: &[u8],
    dims: [usize; 3],
    params: &[f32],
    pdims: [usize; 3],
    spacing: usize,
) -> Vec<f32> {
    let np: usize = pdims.iter().product();
    let af = spacing as f64;
    // Fixed chunks, summed in order: the same gradient bit for bit whatever the thread count
    // or scheduling (a fold/reduce adds floats in whatever order the threads finish).
    let chunk = domain.len().div_ceil(GRAD_CHUNKS).max(1);
    let parts: Vec<Vec<f32>> = domain
        .par_chunks(chunk)
        .enumerate()
        .map(|(ci, part)| {
            let mut acc = vec![0f32; 3 * np];
            for (k, &d) in part.iter().enumerate() {
                if d == 0 {
                    continue;
                }
                let i = ci * chunk + k;
                let w = index3(i, dims);
                let wp = w.map(|v| v / af);
                let u = sample_grid3(params, pdims, wp);
                let p = [0, 1, 2].map(|k| w[k] + u[k] as f64);
                if !covered(cover, dims, p) {
                    continue;
                }
                let Some((v, g)) = sample_channels_grad(moving, dims, p) else {
                    continue;
                };
                let f = &fixed[i * MIND_CHANNELS..(i + 1) * MIND_CHANNELS];
                let mut gu = [0f32; 3];
                for c in 0..MIND_CHANNELS {
                    let r = 2.0 * (v[c] - f[c]) / MIND_CHANNELS as f32;
                    for k in 0..3 {
                        gu[k] += r * g[c][k];
                    }
                }
                scatter(&mut acc, pdims, np, wp, gu);
            }
            acc
        })
        .collect();
    let mut out = vec![0f32; 3 * np];
    for part in &parts {
        out.iter_mut().zip(part).for_each(|(x, y)| *x += y);
    }
    out
}

/// How many fixed pieces [`descriptor_grad`] splits the domain into (enough for the threads,
/// each with its own parameter-grid accumulator).
const GRAD_CHUNKS: usize = 32;

/// The displacements of a discrete search of `radius` cells each way, `(z, y, x)`, in the
/// order `Backend::ssd_costs` numbers them (x fastest).
pub fn search_offsets(radius: usize) -> Vec<[i64; 3]> {
    let r = radius as i64;
    let side = 2 * radius + 1;
    (0..side * side * side)
        .map(|k| {
            [
                (k / (side * side)) as i64 - r,
                ((k / side) % side) as i64 - r,
                (k % side) as i64 - r,
            ]
        })
        .collect()
}

/// The costs of `Backend::ssd_costs` on slices: quantised bytes (`nk` per voxel) and each
/// voxel's `[lo, hi]`.
pub fn ssd_costs(pf: &[f32], pm: &[f32], pd: [usize; 3], radius: usize) -> (Vec<u8>, Vec<f32>) {
    let ncell = pd.iter().product::<usize>();
    let offs = search_offsets(radius);
    let nk = offs.len();
    let mut q = vec![0u8; ncell * nk];
    let mut lohi = vec![0f32; ncell * 2];
    if ncell == 0 {
        return (q, lohi);
    }
    q.par_chunks_mut(nk)
        .zip(lohi.par_chunks_mut(2))
        .enumerate()
        .for_each(|(c, (qc, lh))| {
            let pos = [
                (c / (pd[1] * pd[2])) as i64,
                ((c / pd[2]) % pd[1]) as i64,
                (c % pd[2]) as i64,
            ];
            let f = &pf[c * MIND_CHANNELS..(c + 1) * MIND_CHANNELS];
            let mut cost = vec![0f32; nk];
            for (k, o) in offs.iter().enumerate() {
                let t = [0, 1, 2].map(|a| (pos[a] + o[a]).clamp(0, pd[a] as i64 - 1) as usize);
                let j = (t[0] * pd[1] + t[1]) * pd[2] + t[2];
                let m = &pm[j * MIND_CHANNELS..(j + 1) * MIND_CHANNELS];
                cost[k] = f.iter().zip(m).map(|(a, b)| (a - b) * (a - b)).sum::<f32>()
                    / MIND_CHANNELS as f32;
            }
            let lo = cost.iter().copied().fold(f32::MAX, f32::min);
            let hi = cost.iter().copied().fold(f32::MIN, f32::max);
            let scale = if hi > lo { 255.0 / (hi - lo) } else { 0.0 };
            for (qv, cv) in qc.iter_mut().zip(&cost) {
                *qv = ((cv - lo) * scale).round() as u8;
            }
            lh[0] = lo;
            lh[1] = hi;
        });
    (q, lohi)
}

/// The coupled choice of `Backend::convex_choose` on slices (`target` and the result
/// component-major over the `ncell` voxels).
pub fn convex_choose(
    q: &[u8],
    lohi: &[f32],
    target: Option<&[f32]>,
    lambda: f32,
    ncell: usize,
    radius: usize,
) -> Vec<f32> {
    let offs = search_offsets(radius);
    let nk = offs.len();
    let cost_at = |c: usize, k: usize| {
        let (lo, hi) = (lohi[2 * c], lohi[2 * c + 1]);
        lo + q[c * nk + k] as f32 / 255.0 * (hi - lo)
    };
    let picks: Vec<[f32; 3]> = (0..ncell)
        .into_par_iter()
        .map(|c| {
            let mut best = (f32::MAX, [0f32; 3]);
            for (k, o) in offs.iter().enumerate() {
                let of = o.map(|v| v as f32);
                let mut e = cost_at(c, k);
                if let Some(t) = target {
                    let dist: f32 = (0..3).map(|a| (of[a] - t[a * ncell + c]).powi(2)).sum();
                    e += lambda * dist;
                }
                if e < best.0 {
                    best = (e, of);
                }
            }
            best.1
        })
        .collect();
    let mut out = vec![0f32; 3 * ncell];
    for (c, p) in picks.iter().enumerate() {
        for a in 0..3 {
            out[a * ncell + c] = p[a];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twelve_pairs_none_opposite() {
        let p = mind_pairs();
        assert_eq!(p.len(), MIND_CHANNELS);
        for (a, b) in p {
            assert!((0..3).any(|k| a[k] != -b[k]), "opposite pair");
        }
    }

    #[test]
    fn mind_is_invariant_to_an_intensity_offset_and_scale() {
        let dims = [6, 7, 8];
        let img: Vec<f32> = (0..6 * 7 * 8)
            .map(|i| ((i * 37 % 11) as f32).sin())
            .collect();
        let shifted: Vec<f32> = img.iter().map(|v| 3.0 * v + 5.0).collect();
        let a = mind_ssc(&img, dims, 1, 1);
        let b = mind_ssc(&shifted, dims, 1, 1);
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() < 1e-4, "{x} vs {y}");
        }
        assert!(a.iter().all(|v| (0.0..=1.0).contains(v)));
    }

    #[test]
    fn the_gradient_is_the_derivative_of_the_descriptor_difference() {
        // A smooth two-channel-like pattern; the summed gradient at the parameters must match
        // a finite difference of the loss Σ mean_c (M_c(w + u) − F_c(w))².
        let dims = [6, 7, 8];
        let n: usize = dims.iter().product();
        let feat = |s: f32| -> Vec<f32> {
            (0..n * MIND_CHANNELS)
                .map(|j| {
                    let (i, c) = (j / MIND_CHANNELS, j % MIND_CHANNELS);
                    let w = index3(i, dims);
                    ((w[0] as f32 * 0.7 + s) * (c as f32 + 1.0) * 0.3).sin()
                        + (w[1] as f32 * 0.4 - w[2] as f32 * 0.3 + c as f32).cos()
                })
                .collect()
        };
        let (fixed, moving) = (feat(0.0), feat(0.4));
        let cover = vec![1f32; n];
        let domain: Vec<u8> = (0..n).map(|i| u8::from(i % 3 != 0)).collect();
        let pdims = dims.map(|v| (v - 1).div_ceil(2) + 1);
        let np: usize = pdims.iter().product();
        let params: Vec<f32> = (0..3 * np)
            .map(|j| 0.2 * ((j as f32) * 0.37).sin())
            .collect();
        let loss = |par: &[f32]| -> f64 {
            let mut s = 0f64;
            for (i, &d) in domain.iter().enumerate() {
                if d == 0 {
                    continue;
                }
                let w = index3(i, dims);
                let u = sample_grid3(par, pdims, w.map(|v| v / 2.0));
                let p = [0, 1, 2].map(|k| w[k] + u[k] as f64);
                if !covered(&cover, dims, p) {
                    continue;
                }
                if let Some((v, _)) = sample_channels_grad(&moving, dims, p) {
                    let f = &fixed[i * MIND_CHANNELS..(i + 1) * MIND_CHANNELS];
                    s += v
                        .iter()
                        .zip(f)
                        .map(|(a, b)| ((a - b) * (a - b)) as f64)
                        .sum::<f64>()
                        / MIND_CHANNELS as f64;
                }
            }
            s
        };
        let g = descriptor_grad(&fixed, &moving, &cover, &domain, dims, &params, pdims, 2);
        for j in [5, np + 17, 2 * np + 30] {
            let h = 1e-3f32;
            let mut a = params.clone();
            a[j] += h;
            let mut b = params.clone();
            b[j] -= h;
            let fd = (loss(&a) - loss(&b)) / (2.0 * h as f64);
            // A parameter the loss does not depend on would test nothing.
            assert!(fd.abs() > 1e-3, "parameter {j}: flat loss ({fd})");
            assert!(
                (fd - g[j] as f64).abs() <= 1e-3 * fd.abs(),
                "parameter {j}: finite difference {fd} vs gradient {}",
                g[j]
            );
        }
    }
}
