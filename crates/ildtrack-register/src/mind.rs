//! MIND-SSC descriptors (Heinrich et al. 2013, the self-similarity context variant): for each
//! of the 12 pairs of a voxel's six neighbours that are not opposite each other, the
//! box-filtered squared difference of the two neighbours, turned into `exp(−D / V)` with `V`
//! the local mean over the pairs, and scaled so the largest channel is 1. A structural
//! descriptor: a region that turns from air-like to ground glass between visits changes its
//! HU, much less its MIND pattern, so the registration does not chase disease.

use rayon::prelude::*;

/// Number of MIND-SSC channels.
pub const CHANNELS: usize = 12;

/// The 12 neighbour pairs `(a, b)` as `(z, y, x)` unit offsets.
fn pairs() -> Vec<([i64; 3], [i64; 3])> {
    let six: [[i64; 3]; 6] = [
        [-1, 0, 0],
        [0, 0, -1],
        [0, -1, 0],
        [0, 0, 1],
        [1, 0, 0],
        [0, 1, 0],
    ];
    let mut out = Vec::with_capacity(CHANNELS);
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

/// Box filter of radius `r` along each axis (border clamped), in place.
pub fn box_filter(v: &mut [f32], dims: [usize; 3], r: usize) {
    if r == 0 {
        return;
    }
    let [nz, ny, nx] = dims;
    let norm = 1.0 / (2 * r + 1) as f32;
    // x lines
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
    // y lines, slice by slice
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
    // z lines
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
    let _ = nz;
}

/// MIND-SSC of `img` (`dims` `(z, y, x)`), neighbours `dilation` voxels away, patches of radius
/// `radius`. Channel-last: `out[voxel * CHANNELS + c]`.
pub fn mind_ssc(img: &[f32], dims: [usize; 3], dilation: i64, radius: usize) -> Vec<f32> {
    let n = img.len();
    let [nz, ny, nx] = dims;
    let ps = pairs();
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
                                clamp_add(z, a[0] * dilation, nz),
                                clamp_add(y, a[1] * dilation, ny),
                                clamp_add(x, a[2] * dilation, nx),
                            );
                            let pb = idx(
                                dims,
                                clamp_add(z, b[0] * dilation, nz),
                                clamp_add(y, b[1] * dilation, ny),
                                clamp_add(x, b[2] * dilation, nx),
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
        .map(|i| d.iter().map(|c| c[i]).sum::<f32>() / CHANNELS as f32)
        .collect();
    let mean = (var.iter().map(|&v| v as f64).sum::<f64>() / n.max(1) as f64) as f32;
    let (lo, hi) = (mean * 0.001 + 1e-12, mean * 1000.0 + 1e-12);
    let mut out = vec![0f32; n * CHANNELS];
    out.par_chunks_mut(CHANNELS).enumerate().for_each(|(i, o)| {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twelve_pairs_none_opposite() {
        let p = pairs();
        assert_eq!(p.len(), CHANNELS);
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
}
