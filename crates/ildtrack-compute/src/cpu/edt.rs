//! Exact separable squared Euclidean distance transform (Felzenszwalb & Huttenlocher 2012),
//! anisotropic spacing in mm.

use ndarray::{Array3, Axis, Zip};
use rayon::prelude::*;

/// Squared distance (mm²) from every voxel centre to the nearest voxel centre where
/// `is_source(v)`; `f32::INFINITY` where there is no source (in reach). With `in_plane`, the
/// distance is taken within each z-slice only.
pub(crate) fn squared_edt(
    m: &Array3<u8>,
    is_source: impl Fn(u8) -> bool + Sync,
    spacing_mm: [f64; 3],
    in_plane: bool,
) -> Array3<f32> {
    let mut d: Array3<f32> =
        Zip::from(m).par_map_collect(|&v| if is_source(v) { 0.0 } else { f32::INFINITY });
    // x first (contiguous), then y, then z.
    let axes: &[usize] = if in_plane { &[2, 1] } else { &[2, 1, 0] };
    for &axis in axes {
        if d.shape()[axis] < 2 {
            continue;
        }
        let s2 = spacing_mm[axis] * spacing_mm[axis];
        Zip::from(d.lanes_mut(Axis(axis))).par_for_each(|mut lane| {
            let f: Vec<f32> = lane.to_vec();
            if f.iter().all(|v| *v == 0.0) || f.iter().all(|v| v.is_infinite()) {
                return;
            }
            let mut out = vec![0.0f32; f.len()];
            edt_1d(&f, &mut out, s2);
            lane.iter_mut().zip(out).for_each(|(o, v)| *o = v);
        });
    }
    d
}

/// Largest number of voxels per axis a ball may span for [`within_distance`] (beyond that the
/// brute-force minimum over offsets costs more than the exact transform).
pub(crate) const MAX_BOUNDED_REACH: usize = 12;

/// 1 where the squared distance (mm²) from the voxel centre to the nearest source voxel centre
/// is ≤ `r2`; with `in_plane`, within each z-slice. `None` when the ball reaches more than
/// [`MAX_BOUNDED_REACH`] voxels along y or z, or 4× that along x (the x pass is two scans
/// whatever the reach); then use [`squared_edt`].
///
/// Same separable decomposition as the exact transform, bounded by the radius: along x the
/// distance to the nearest source in the row (two scans), along y and z the minimum over the
/// few offsets inside the ball, as whole-row operations (vectorised). The sums are the same
/// f32 values the exact transform produces for each candidate source, so the result is the
/// thresholded exact transform.
pub(crate) fn within_distance(
    m: &Array3<u8>,
    is_source: impl Fn(u8) -> bool + Sync,
    spacing_mm: [f64; 3],
    in_plane: bool,
    r2: f32,
) -> Option<Array3<u8>> {
    let sh = m.shape();
    let (nz, ny, nx) = (sh[0], sh[1], sh[2]);
    let r = (r2.max(0.0) as f64).sqrt();
    let reach = [0, 1, 2].map(|k| (r / spacing_mm[k]).floor() as usize);
    let reach_z = if in_plane {
        0
    } else {
        reach[0].min(nz.saturating_sub(1))
    };
    if reach[1].min(ny) > MAX_BOUNDED_REACH
        || reach[2].min(nx) > MAX_BOUNDED_REACH * 4
        || reach_z > MAX_BOUNDED_REACH
    {
        return None;
    }
    let m = m.as_standard_layout();
    let src = m.as_slice()?;
    let [sz, sy, sx] = spacing_mm.map(|s| s as f32);
    let inf = f32::INFINITY;
    // In-plane squared distance (mm², f32) of one slice, within reach; infinity beyond.
    let plane = |z: usize, out: &mut [f32], gx: &mut [f32]| {
        let s = &src[z * ny * nx..(z + 1) * ny * nx];
        for y in 0..ny {
            let row = &s[y * nx..(y + 1) * nx];
            let g = &mut gx[y * nx..(y + 1) * nx];
            // Distance (voxels) to the nearest source on the left, then on the right.
            let mut last: Option<usize> = None;
            for x in 0..nx {
                if is_source(row[x]) {
                    last = Some(x);
                }
                g[x] = match last {
                    Some(l) if x - l <= reach[2] => {
                        let d = (x - l) as f32 * sx;
                        d * d
                    }
                    _ => inf,
                };
            }
            let mut next: Option<usize> = None;
            for x in (0..nx).rev() {
                if is_source(row[x]) {
                    next = Some(x);
                }
                if let Some(n) = next
                    && n - x <= reach[2]
                {
                    let d = (n - x) as f32 * sx;
                    g[x] = g[x].min(d * d);
                }
            }
        }
        for y in 0..ny {
            let o = &mut out[y * nx..(y + 1) * nx];
            o.copy_from_slice(&gx[y * nx..(y + 1) * nx]);
            for dy in 1..=reach[1] {
                let d = dy as f32 * sy;
                let w = d * d;
                for yy in [y.checked_sub(dy), (y + dy < ny).then_some(y + dy)]
                    .into_iter()
                    .flatten()
                {
                    let g = &gx[yy * nx..(yy + 1) * nx];
                    o.iter_mut().zip(g).for_each(|(o, &g)| *o = o.min(g + w));
                }
            }
        }
    };
    let mut out = Array3::<u8>::zeros((nz, ny, nx));
    if reach_z == 0 {
        out.axis_iter_mut(Axis(0))
            .into_par_iter()
            .enumerate()
            .for_each_init(
                || (vec![0f32; ny * nx], vec![0f32; ny * nx]),
                |(d, gx), (z, mut o)| {
                    plane(z, d, gx);
                    o.iter_mut()
                        .zip(d.iter())
                        .for_each(|(o, &d)| *o = u8::from(d <= r2));
                },
            );
        return Some(out);
    }
    let mut g = Array3::<f32>::zeros((nz, ny, nx));
    g.axis_iter_mut(Axis(0))
        .into_par_iter()
        .enumerate()
        .for_each_init(
            || vec![0f32; ny * nx],
            |gx, (z, mut o)| plane(z, o.as_slice_mut().expect("standard layout"), gx),
        );
    let gs = g.as_slice().expect("standard layout");
    out.axis_iter_mut(Axis(0))
        .into_par_iter()
        .enumerate()
        .for_each_init(
            || vec![0f32; ny * nx],
            |acc, (z, mut o)| {
                acc.copy_from_slice(&gs[z * ny * nx..(z + 1) * ny * nx]);
                for dz in 1..=reach_z {
                    let d = dz as f32 * sz;
                    let w = d * d;
                    for zz in [z.checked_sub(dz), (z + dz < nz).then_some(z + dz)]
                        .into_iter()
                        .flatten()
                    {
                        let g = &gs[zz * ny * nx..(zz + 1) * ny * nx];
                        acc.iter_mut().zip(g).for_each(|(a, &g)| *a = a.min(g + w));
                    }
                }
                o.iter_mut()
                    .zip(acc.iter())
                    .for_each(|(o, &a)| *o = u8::from(a <= r2));
            },
        );
    Some(out)
}

/// `d[i] = min_q f[q] + s2 (i − q)²` over finite `f[q]`; all-infinite input gives infinity.
pub(crate) fn edt_1d(f: &[f32], d: &mut [f32], s2: f64) {
    let n = f.len();
    let mut v: Vec<usize> = Vec::with_capacity(n);
    let mut z: Vec<f64> = Vec::with_capacity(n + 1);
    for q in 0..n {
        if !f[q].is_finite() {
            continue;
        }
        let fq = f[q] as f64 + s2 * (q * q) as f64;
        let mut s = f64::NEG_INFINITY;
        while let Some(&p) = v.last() {
            let fp = f[p] as f64 + s2 * (p * p) as f64;
            s = (fq - fp) / (2.0 * s2 * (q - p) as f64);
            let zk = z.last().copied().unwrap_or(f64::NEG_INFINITY);
            if s <= zk {
                v.pop();
                z.pop();
                s = f64::NEG_INFINITY;
            } else {
                break;
            }
        }
        if v.is_empty() {
            s = f64::NEG_INFINITY;
        }
        v.push(q);
        z.push(s);
    }
    if v.is_empty() {
        d.iter_mut().for_each(|x| *x = f32::INFINITY);
        return;
    }
    let mut k = 0usize;
    for (q, dq) in d.iter_mut().enumerate() {
        while k + 1 < v.len() && z[k + 1] < q as f64 {
            k += 1;
        }
        let p = v[k];
        let dx = q as f64 - p as f64;
        *dq = (s2 * dx * dx + f[p] as f64) as f32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_d_matches_brute_force() {
        let inf = f32::INFINITY;
        let f = [inf, 0.0, inf, inf, 4.0, inf, inf, inf, 0.0, inf];
        let mut d = [0.0f32; 10];
        edt_1d(&f, &mut d, 0.25);
        for (i, &di) in d.iter().enumerate() {
            let brute = f
                .iter()
                .enumerate()
                .filter(|(_, v)| v.is_finite())
                .map(|(q, v)| *v as f64 + 0.25 * ((i as f64 - q as f64).powi(2)))
                .fold(f64::INFINITY, f64::min);
            assert!((di as f64 - brute).abs() < 1e-5, "{i}: {} vs {brute}", d[i]);
        }
    }
}
