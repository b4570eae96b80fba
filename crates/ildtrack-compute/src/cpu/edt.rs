//! Exact separable squared Euclidean distance transform (Felzenszwalb & Huttenlocher 2012),
//! anisotropic spacing in mm.

use ndarray::{Array3, Axis, Zip};

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
        for i in 0..10 {
            let brute = f
                .iter()
                .enumerate()
                .filter(|(_, v)| v.is_finite())
                .map(|(q, v)| *v as f64 + 0.25 * ((i as f64 - q as f64).powi(2)))
                .fold(f64::INFINITY, f64::min);
            assert!(
                (d[i] as f64 - brute).abs() < 1e-5,
                "{i}: {} vs {brute}",
                d[i]
            );
        }
    }
}
