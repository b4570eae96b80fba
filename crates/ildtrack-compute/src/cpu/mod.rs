//! `CpuBackend`: the rayon reference implementation of every kernel.

mod ccl;
pub mod descriptor;
mod edt;

use crate::api::{
    Backend, Ball, ComponentInfo, ComputeError, Connectivity, Histograms, MIND_CHANNELS, MaskOp,
    Result, VolumeHandle, check_box, check_convex_choose, check_descriptor_grad, check_same,
    check_ssd_costs, joint_table_len, validate_spacing,
};
use ildtrack_volume::OUTSIDE_FOV_HU;
use ndarray::{Array3, ArrayView3, Axis, Zip};
use rayon::prelude::*;

/// A volume held in host memory (standard `(z, y, x)` layout).
#[derive(Debug, Clone)]
pub struct CpuVolume<T>(pub Array3<T>);

impl<T: Send + Sync> VolumeHandle for CpuVolume<T> {
    fn dims_zyx(&self) -> [usize; 3] {
        let s = self.0.shape();
        [s[0], s[1], s[2]]
    }
}

impl<T> CpuVolume<T> {
    /// The data, for callers that know they run on the CPU.
    pub fn array(&self) -> &Array3<T> {
        &self.0
    }
}

/// The rayon reference backend. Uses rayon's global thread pool.
#[derive(Debug, Clone, Default)]
pub struct CpuBackend;

impl CpuBackend {
    pub fn new() -> Self {
        CpuBackend
    }
}

fn dims<S: ndarray::RawData>(a: &ndarray::ArrayBase<S, ndarray::Ix3>) -> [usize; 3] {
    let s = a.shape();
    [s[0], s[1], s[2]]
}

fn standard<T: Clone>(a: ArrayView3<'_, T>) -> Array3<T> {
    a.as_standard_layout().into_owned()
}

/// Reads a HU voxel for arithmetic: OUTSIDE_FOV_HU counts as air.
#[inline]
fn hu_value(v: i16) -> f32 {
    if v == OUTSIDE_FOV_HU {
        -1024.0
    } else {
        v as f32
    }
}

/// Squared-distance tolerance (mm²) for ball membership: offsets with `|d|² <= r² + EPS` are in.
pub(crate) const BALL_EPS_MM2: f32 = 1e-3;

/// Largest ball (in voxels) that dilate / erode apply as a direct stencil instead of through
/// the distance transform (which costs the same whatever the radius).
const MAX_STENCIL_VOXELS: usize = 27;

/// The voxel offsets `(z, y, x)` of `ball` (`|d|² <= r² + EPS`, the membership rule of the
/// distance-transform path), or `None` if it has more than [`MAX_STENCIL_VOXELS`].
fn small_ball_offsets(ball: &Ball) -> Option<Vec<[isize; 3]>> {
    let s = ball.spacing_mm;
    let r2 = ball.radius_mm * ball.radius_mm + BALL_EPS_MM2 as f64;
    let reach = |k: usize| {
        if k == 0 && ball.in_plane {
            0
        } else {
            (r2.sqrt() / s[k]).floor() as isize
        }
    };
    let (kz, ky, kx) = (reach(0), reach(1), reach(2));
    if ((2 * kz + 1) * (2 * ky + 1) * (2 * kx + 1)) as usize > 8 * MAX_STENCIL_VOXELS {
        return None;
    }
    let mut offs = Vec::new();
    for dz in -kz..=kz {
        for dy in -ky..=ky {
            for dx in -kx..=kx {
                let d2 = (dz as f64 * s[0]).powi(2)
                    + (dy as f64 * s[1]).powi(2)
                    + (dx as f64 * s[2]).powi(2);
                if d2 <= r2 {
                    offs.push([dz, dy, dx]);
                }
            }
        }
    }
    (offs.len() <= MAX_STENCIL_VOXELS).then_some(offs)
}

/// Dilation (`any` non-zero over the offsets inside the volume) or erosion (`all` non-zero
/// over them; offsets outside the volume are ignored, as the distance transform has no voxels
/// there). Output 0/1. Slices in parallel.
fn stencil(m: &Array3<u8>, offs: &[[isize; 3]], erode: bool) -> Array3<u8> {
    let m = m.as_standard_layout();
    let sh = m.shape();
    let (nz, ny, nx) = (sh[0], sh[1], sh[2]);
    let src = m.as_slice().unwrap_or(&[]);
    let plane = ny * nx;
    let mut out = Array3::<u8>::zeros((nz, ny, nx));
    let Some(dst) = out.as_slice_mut() else {
        return out;
    };
    if plane == 0 {
        return out;
    }
    dst.par_chunks_mut(plane).enumerate().for_each(|(z, o)| {
        if erode {
            o.iter_mut()
                .zip(&src[z * plane..(z + 1) * plane])
                .for_each(|(o, &v)| *o = u8::from(v != 0));
        }
        for &[dz, dy, dx] in offs {
            let zz = z as isize + dz;
            if zz < 0 || zz >= nz as isize {
                continue;
            }
            let sp = &src[zz as usize * plane..(zz as usize + 1) * plane];
            // Rows y whose neighbour row y + dy exists; columns x with x + dx inside.
            let y0 = (-dy).max(0) as usize;
            let y1 = (ny as isize - dy.max(0)).max(0) as usize;
            let x0 = (-dx).max(0) as usize;
            let x1 = (nx as isize - dx.max(0)).max(0) as usize;
            if x0 >= x1 {
                continue;
            }
            for y in y0..y1 {
                let sy = (y as isize + dy) as usize;
                let orow = &mut o[y * nx + x0..y * nx + x1];
                let srow = &sp
                    [sy * nx + (x0 as isize + dx) as usize..sy * nx + (x1 as isize + dx) as usize];
                if erode {
                    orow.iter_mut()
                        .zip(srow)
                        .for_each(|(o, &v)| *o &= u8::from(v != 0));
                } else {
                    orow.iter_mut()
                        .zip(srow)
                        .for_each(|(o, &v)| *o |= u8::from(v != 0));
                }
            }
        }
    });
    out
}

impl Backend for CpuBackend {
    type I16 = CpuVolume<i16>;
    type U8 = CpuVolume<u8>;
    type U32 = CpuVolume<u32>;
    type F32 = CpuVolume<f32>;

    fn name(&self) -> &'static str {
        "cpu"
    }

    fn device_description(&self) -> String {
        format!("rayon, {} threads", rayon::current_num_threads())
    }

    fn upload_i16(&self, data: ArrayView3<'_, i16>) -> Result<Self::I16> {
        Ok(CpuVolume(standard(data)))
    }
    fn upload_u8(&self, data: ArrayView3<'_, u8>) -> Result<Self::U8> {
        Ok(CpuVolume(standard(data)))
    }
    fn upload_f32(&self, data: ArrayView3<'_, f32>) -> Result<Self::F32> {
        Ok(CpuVolume(standard(data)))
    }
    fn download_i16(&self, v: &Self::I16) -> Result<Array3<i16>> {
        Ok(v.0.clone())
    }
    fn download_u8(&self, v: &Self::U8) -> Result<Array3<u8>> {
        Ok(v.0.clone())
    }
    fn download_u32(&self, v: &Self::U32) -> Result<Array3<u32>> {
        Ok(v.0.clone())
    }
    fn download_f32(&self, v: &Self::F32) -> Result<Array3<f32>> {
        Ok(v.0.clone())
    }
    fn fill_u8(&self, dims_zyx: [usize; 3], value: u8) -> Result<Self::U8> {
        Ok(CpuVolume(Array3::from_elem(
            (dims_zyx[0], dims_zyx[1], dims_zyx[2]),
            value,
        )))
    }

    fn threshold(&self, hu: &Self::I16, lo_hu: i16, hi_hu: i16) -> Result<Self::U8> {
        Ok(CpuVolume(
            Zip::from(&hu.0).par_map_collect(|&v| u8::from(v >= lo_hu && v <= hi_hu)),
        ))
    }

    fn classify(&self, hu: &Self::I16, mask: &Self::U8, edges_hu: &[i16]) -> Result<Self::U8> {
        check_same(dims(&hu.0), dims(&mask.0))?;
        if edges_hu.len() > 254 || edges_hu.windows(2).any(|w| w[0] >= w[1]) {
            return Err(ComputeError::InvalidArgument(format!(
                "class edges must be strictly increasing and at most 254, got {edges_hu:?}"
            )));
        }
        let edges = edges_hu.to_vec();
        Ok(CpuVolume(Zip::from(&hu.0).and(&mask.0).par_map_collect(
            |&v, &m| {
                if m == 0 {
                    0
                } else {
                    1 + edges.iter().filter(|&&e| v >= e).count() as u8
                }
            },
        )))
    }

    fn mask_op(&self, a: &Self::U8, b: &Self::U8, op: MaskOp) -> Result<Self::U8> {
        check_same(dims(&a.0), dims(&b.0))?;
        Ok(CpuVolume(Zip::from(&a.0).and(&b.0).par_map_collect(
            |&x, &y| {
                let (x, y) = (x != 0, y != 0);
                u8::from(match op {
                    MaskOp::And => x && y,
                    MaskOp::Or => x || y,
                    MaskOp::AndNot => x && !y,
                    MaskOp::Xor => x != y,
                })
            },
        )))
    }

    fn select(&self, mask: &Self::U8, a: &Self::U8, b: &Self::U8) -> Result<Self::U8> {
        check_same(dims(&mask.0), dims(&a.0))?;
        check_same(dims(&mask.0), dims(&b.0))?;
        Ok(CpuVolume(
            Zip::from(&mask.0)
                .and(&a.0)
                .and(&b.0)
                .par_map_collect(|&m, &x, &y| if m != 0 { x } else { y }),
        ))
    }

    fn map_u8(&self, v: &Self::U8, lut: &[u8; 256]) -> Result<Self::U8> {
        Ok(CpuVolume(
            Zip::from(&v.0).par_map_collect(|&x| lut[x as usize]),
        ))
    }

    fn combine_u8(&self, a: &Self::U8, b: &Self::U8, n_b: usize, lut: &[u8]) -> Result<Self::U8> {
        check_same(dims(&a.0), dims(&b.0))?;
        if n_b == 0 || !lut.len().is_multiple_of(n_b) {
            return Err(ComputeError::InvalidArgument(format!(
                "combine lut length {} is not a multiple of n_b {n_b}",
                lut.len()
            )));
        }
        let n_a = lut.len() / n_b;
        Ok(CpuVolume(Zip::from(&a.0).and(&b.0).par_map_collect(
            |&x, &y| {
                let (x, y) = (x as usize, y as usize);
                if x < n_a && y < n_b {
                    lut[x * n_b + y]
                } else {
                    0
                }
            },
        )))
    }

    fn map_u8_per_slice(&self, v: &Self::U8, n_values: usize, table: &[u8]) -> Result<Self::U8> {
        let [nz, _, _] = dims(&v.0);
        if table.len() != nz * n_values {
            return Err(ComputeError::InvalidArgument(format!(
                "per-slice table has {} entries, expected {nz} slices x {n_values} values",
                table.len()
            )));
        }
        let mut out = Array3::<u8>::zeros(v.0.raw_dim());
        out.axis_iter_mut(Axis(0))
            .into_par_iter()
            .zip(v.0.axis_iter(Axis(0)).into_par_iter())
            .enumerate()
            .for_each(|(z, (mut o, i))| {
                let t = &table[z * n_values..(z + 1) * n_values];
                Zip::from(&mut o).and(&i).for_each(|o, &x| {
                    *o = if (x as usize) < n_values {
                        t[x as usize]
                    } else {
                        0
                    };
                });
            });
        Ok(CpuVolume(out))
    }

    fn map_labels(&self, labels: &Self::U32, lut: &[u8]) -> Result<Self::U8> {
        Ok(CpuVolume(Zip::from(&labels.0).par_map_collect(|&l| {
            lut.get(l as usize).copied().unwrap_or(0)
        })))
    }

    fn threshold_f32(&self, v: &Self::F32, lo: f32, hi: f32) -> Result<Self::U8> {
        Ok(CpuVolume(
            Zip::from(&v.0).par_map_collect(|&x| u8::from(x >= lo && x <= hi)),
        ))
    }

    fn less_equal_f32(&self, a: &Self::F32, b: &Self::F32) -> Result<Self::U8> {
        check_same(dims(&a.0), dims(&b.0))?;
        Ok(CpuVolume(
            Zip::from(&a.0)
                .and(&b.0)
                .par_map_collect(|&x, &y| u8::from(x <= y)),
        ))
    }

    fn value_counts(&self, v: &Self::U8) -> Result<Vec<u64>> {
        let counts =
            v.0.axis_iter(Axis(0))
                .into_par_iter()
                .fold(
                    || vec![0u64; 256],
                    |mut acc, s| {
                        s.for_each(|&x| acc[x as usize] += 1);
                        acc
                    },
                )
                .reduce(|| vec![0u64; 256], add_vecs);
        Ok(counts)
    }

    fn joint_counts(&self, a: &Self::U8, b: &Self::U8, n_a: usize, n_b: usize) -> Result<Vec<u64>> {
        check_same(dims(&a.0), dims(&b.0))?;
        let n = joint_table_len(n_a, n_b)?;
        let counts =
            a.0.axis_iter(Axis(0))
                .into_par_iter()
                .zip(b.0.axis_iter(Axis(0)).into_par_iter())
                .fold(
                    || vec![0u64; n],
                    |mut acc, (sa, sb)| {
                        Zip::from(&sa).and(&sb).for_each(|&x, &y| {
                            let (x, y) = (x as usize, y as usize);
                            if x < n_a && y < n_b {
                                acc[x * n_b + y] += 1;
                            }
                        });
                        acc
                    },
                )
                .reduce(|| vec![0u64; n], add_vecs);
        Ok(counts)
    }

    fn slice_counts(&self, v: &Self::U8, n_values: usize) -> Result<Vec<u64>> {
        let per: Vec<Vec<u64>> =
            v.0.axis_iter(Axis(0))
                .into_par_iter()
                .map(|s| {
                    let mut c = vec![0u64; n_values];
                    s.for_each(|&x| {
                        if (x as usize) < n_values {
                            c[x as usize] += 1;
                        }
                    });
                    c
                })
                .collect();
        Ok(per.concat())
    }

    fn histogram(
        &self,
        hu: &Self::I16,
        labels: &Self::U8,
        n_labels: usize,
        lo_hu: i16,
        hi_hu: i16,
    ) -> Result<Histograms> {
        check_same(dims(&hu.0), dims(&labels.0))?;
        if lo_hu > hi_hu || n_labels == 0 || n_labels > 256 {
            return Err(ComputeError::InvalidArgument(format!(
                "histogram needs lo_hu <= hi_hu and 1..=256 labels, got {lo_hu}..{hi_hu}, {n_labels} labels"
            )));
        }
        let n_bins = (hi_hu as i32 - lo_hu as i32 + 1) as usize;
        let n = n_bins * n_labels;
        let counts =
            hu.0.axis_iter(Axis(0))
                .into_par_iter()
                .zip(labels.0.axis_iter(Axis(0)).into_par_iter())
                .fold(
                    || vec![0u64; n],
                    |mut acc, (sh, sl)| {
                        Zip::from(&sh).and(&sl).for_each(|&v, &l| {
                            let l = l as usize;
                            if l < n_labels {
                                let b = (v.clamp(lo_hu, hi_hu) as i32 - lo_hu as i32) as usize;
                                acc[l * n_bins + b] += 1;
                            }
                        });
                        acc
                    },
                )
                .reduce(|| vec![0u64; n], add_vecs);
        Ok(Histograms {
            lo_hu,
            hi_hu,
            n_labels,
            counts,
        })
    }

    fn dilate(&self, m: &Self::U8, ball: &Ball) -> Result<Self::U8> {
        ball.validate()?;
        if let Some(offs) = small_ball_offsets(ball) {
            return Ok(CpuVolume(stencil(&m.0, &offs, false)));
        }
        // Distance to the nearest foreground voxel <= r.
        let r2 = (ball.radius_mm * ball.radius_mm) as f32 + BALL_EPS_MM2;
        if let Some(out) =
            edt::within_distance(&m.0, |v| v != 0, ball.spacing_mm, ball.in_plane, r2)
        {
            return Ok(CpuVolume(out));
        }
        let d2 = edt::squared_edt(&m.0, |v| v != 0, ball.spacing_mm, ball.in_plane);
        Ok(CpuVolume(
            Zip::from(&d2).par_map_collect(|&d| u8::from(d <= r2)),
        ))
    }

    fn erode(&self, m: &Self::U8, ball: &Ball) -> Result<Self::U8> {
        ball.validate()?;
        if let Some(offs) = small_ball_offsets(ball) {
            return Ok(CpuVolume(stencil(&m.0, &offs, true)));
        }
        // Distance to the nearest background voxel > r.
        let r2 = (ball.radius_mm * ball.radius_mm) as f32 + BALL_EPS_MM2;
        if let Some(mut out) =
            edt::within_distance(&m.0, |v| v == 0, ball.spacing_mm, ball.in_plane, r2)
        {
            out.par_mapv_inplace(|v| 1 - v);
            return Ok(CpuVolume(out));
        }
        let d2 = edt::squared_edt(&m.0, |v| v == 0, ball.spacing_mm, ball.in_plane);
        Ok(CpuVolume(
            Zip::from(&d2).par_map_collect(|&d| u8::from(d > r2)),
        ))
    }

    fn fill_holes_2d(&self, m: &Self::U8) -> Result<Self::U8> {
        let mut out = Array3::<u8>::zeros(m.0.raw_dim());
        out.axis_iter_mut(Axis(0))
            .into_par_iter()
            .zip(m.0.axis_iter(Axis(0)).into_par_iter())
            .for_each(|(mut o, s)| {
                let (ny, nx) = (s.shape()[0], s.shape()[1]);
                // o: 1 = foreground or not yet reached background; 0 = reached from border.
                let mut reached = vec![false; ny * nx];
                let mut stack: Vec<(usize, usize)> = Vec::new();
                let push = |y: usize,
                            x: usize,
                            reached: &mut Vec<bool>,
                            stack: &mut Vec<(usize, usize)>| {
                    if s[[y, x]] == 0 && !reached[y * nx + x] {
                        reached[y * nx + x] = true;
                        stack.push((y, x));
                    }
                };
                for x in 0..nx {
                    push(0, x, &mut reached, &mut stack);
                    push(ny - 1, x, &mut reached, &mut stack);
                }
                for y in 0..ny {
                    push(y, 0, &mut reached, &mut stack);
                    push(y, nx - 1, &mut reached, &mut stack);
                }
                while let Some((y, x)) = stack.pop() {
                    if y > 0 {
                        push(y - 1, x, &mut reached, &mut stack);
                    }
                    if y + 1 < ny {
                        push(y + 1, x, &mut reached, &mut stack);
                    }
                    if x > 0 {
                        push(y, x - 1, &mut reached, &mut stack);
                    }
                    if x + 1 < nx {
                        push(y, x + 1, &mut reached, &mut stack);
                    }
                }
                for ((y, x), o) in o.indexed_iter_mut() {
                    *o = u8::from(!reached[y * nx + x]);
                }
            });
        Ok(CpuVolume(out))
    }

    fn label_components(
        &self,
        m: &Self::U8,
        connectivity: Connectivity,
    ) -> Result<(Self::U32, Vec<ComponentInfo>)> {
        let (labels, infos) = ccl::label(&m.0, connectivity)?;
        Ok((CpuVolume(labels), infos))
    }

    fn gaussian(
        &self,
        hu: &Self::I16,
        sigma_mm: [f64; 3],
        spacing_mm: [f64; 3],
    ) -> Result<Self::I16> {
        validate_spacing(spacing_mm)?;
        if sigma_mm.iter().any(|s| !(s.is_finite() && *s >= 0.0)) {
            return Err(ComputeError::InvalidArgument(format!(
                "sigma must be finite and >= 0 mm, got {sigma_mm:?}"
            )));
        }
        let shape = dims(&hu.0);
        let kernel_of = |axis: usize| {
            let sigma_vox = sigma_mm[axis] / spacing_mm[axis];
            (sigma_vox >= 1e-3 && shape[axis] >= 2).then(|| crate::api::gaussian_weights(sigma_vox))
        };
        let kernels = [0, 1, 2].map(kernel_of);
        let to_hu = |orig: i16, v: f32| {
            if orig == OUTSIDE_FOV_HU {
                OUTSIDE_FOV_HU
            } else {
                v.round().clamp(i16::MIN as f32 + 1.0, i16::MAX as f32) as i16
            }
        };
        let (ny, nx) = (shape[1], shape[2]);
        // The in-plane passes of one slice (row-major f32), the same whichever path.
        let in_plane = |f: &mut [f32]| {
            if let Some(k) = &kernels[1] {
                blur_columns(f, ny, nx, k);
            }
            if let Some(k) = &kernels[2] {
                let mut padded = Vec::new();
                for row in f.chunks_mut(nx) {
                    blur_row(row, k, &mut padded);
                }
            }
        };
        let mut out = Array3::<i16>::zeros((shape[0], shape[1], shape[2]));
        let Some(kz) = &kernels[0] else {
            // In-plane only: slice by slice, one slice of f32 at a time (no volume-sized float
            // copy).
            out.axis_iter_mut(Axis(0))
                .into_par_iter()
                .zip(hu.0.axis_iter(Axis(0)).into_par_iter())
                .for_each(|(mut o, sl)| {
                    let mut f: Vec<f32> = sl.iter().map(|&v| hu_value(v)).collect();
                    in_plane(&mut f);
                    Zip::from(&mut o)
                        .and(&sl)
                        .and(&ndarray::ArrayView2::from_shape((ny, nx), &f[..]).expect("slice"))
                        .for_each(|o, &orig, &v| *o = to_hu(orig, v));
                });
            return Ok(CpuVolume(out));
        };
        // Across slices first (a volume of f32), then the same in-plane passes per slice.
        let mut f: Array3<f32> = Zip::from(&hu.0).par_map_collect(|&v| hu_value(v));
        Zip::from(f.lanes_mut(Axis(0))).par_for_each(|lane| blur_lane(lane, kz, &mut Vec::new()));
        f.axis_iter_mut(Axis(0))
            .into_par_iter()
            .for_each(|mut sl| in_plane(sl.as_slice_mut().expect("a fresh array is contiguous")));
        Zip::from(&mut out)
            .and(&hu.0)
            .and(&f)
            .par_for_each(|o, &orig, &v| *o = to_hu(orig, v));
        Ok(CpuVolume(out))
    }

    fn gaussian_mix(
        &self,
        hu: &Self::I16,
        sigmas_mm: &[f64],
        weights: &[f32],
        spacing_mm: [f64; 3],
    ) -> Result<Self::I16> {
        crate::api::validate_gaussian_mix(sigmas_mm, weights, spacing_mm)?;
        let shape = dims(&hu.0);
        let (ny, nx) = (shape[1], shape[2]);
        let stages = mix_stage_kernels(sigmas_mm, spacing_mm, shape);
        // Stages after the last non-zero weight add nothing: not computed.
        let used = weights.iter().rposition(|&w| w != 0.0).unwrap_or(0);
        let mut out = Array3::<i16>::zeros((shape[0], shape[1], shape[2]));
        // Slice by slice (every stage is in-plane): two slices of f32 at a time per thread.
        out.axis_iter_mut(Axis(0))
            .into_par_iter()
            .zip(hu.0.axis_iter(Axis(0)).into_par_iter())
            .for_each(|(mut o, sl)| {
                let mut f: Vec<f32> = sl.iter().map(|&v| hu_value(v)).collect();
                let mut acc: Vec<f32> = f.iter().map(|&v| weights[0] * v).collect();
                let mut padded = Vec::new();
                for (k, stage) in stages.iter().enumerate().take(used) {
                    blur_mix_stage(&mut f, ny, nx, stage, &mut padded);
                    let w = weights[k + 1];
                    for (a, &v) in acc.iter_mut().zip(&f) {
                        *a += w * v;
                    }
                }
                for ((o, &orig), &v) in o.iter_mut().zip(sl.iter()).zip(&acc) {
                    *o = mix_to_hu(orig, v);
                }
            });
        Ok(CpuVolume(out))
    }

    fn gaussian_stages(
        &self,
        hu: &Self::I16,
        sigmas_mm: &[f64],
        scale: f32,
        spacing_mm: [f64; 3],
    ) -> Result<Vec<Self::I16>> {
        let n = sigmas_mm.len();
        crate::api::validate_gaussian_mix(sigmas_mm, &vec![scale; n + 1], spacing_mm)?;
        let shape = dims(&hu.0);
        let (ny, nx) = (shape[1], shape[2]);
        let stages = mix_stage_kernels(sigmas_mm, spacing_mm, shape);
        // The cascade once per slice; `scale · x_k` is what `gaussian_mix` with that single
        // weight sums to (its other terms are zeros), so the results are bit for bit the same.
        let per_slice: Vec<Vec<Vec<i16>>> =
            hu.0.axis_iter(Axis(0))
                .into_par_iter()
                .map(|sl| {
                    let mut f: Vec<f32> = sl.iter().map(|&v| hu_value(v)).collect();
                    let mut padded = Vec::new();
                    let mut outs = Vec::with_capacity(n);
                    for stage in &stages {
                        blur_mix_stage(&mut f, ny, nx, stage, &mut padded);
                        outs.push(
                            sl.iter()
                                .zip(&f)
                                .map(|(&orig, &v)| mix_to_hu(orig, scale * v))
                                .collect(),
                        );
                    }
                    outs
                })
                .collect();
        let mut out: Vec<Array3<i16>> = (0..n)
            .map(|_| Array3::<i16>::zeros((shape[0], shape[1], shape[2])))
            .collect();
        for (z, stages_z) in per_slice.into_iter().enumerate() {
            for (o, v) in out.iter_mut().zip(stages_z) {
                let mut sl = o.index_axis_mut(Axis(0), z);
                for (d, s) in sl.iter_mut().zip(v) {
                    *d = s;
                }
            }
        }
        Ok(out.into_iter().map(CpuVolume).collect())
    }

    fn distance_mm(&self, m: &Self::U8, spacing_mm: [f64; 3]) -> Result<Self::F32> {
        validate_spacing(spacing_mm)?;
        let mut d2 = edt::squared_edt(&m.0, |v| v == 0, spacing_mm, false);
        d2.par_mapv_inplace(f32::sqrt);
        Ok(CpuVolume(d2))
    }

    fn downsample_mean(&self, hu: &Self::I16, factors: [usize; 3]) -> Result<Self::I16> {
        Ok(CpuVolume(block_mean(hu.0.view(), factors)?))
    }

    fn downsample_mean_host(
        &self,
        hu: ArrayView3<'_, i16>,
        factors: [usize; 3],
    ) -> Result<Self::I16> {
        Ok(CpuVolume(block_mean(hu, factors)?))
    }

    fn upsample_nearest(
        &self,
        m: &Self::U8,
        factors: [usize; 3],
        dims_zyx: [usize; 3],
    ) -> Result<Self::U8> {
        let d = dims(&m.0);
        if factors.contains(&0) || (0..3).any(|k| dims_zyx[k].div_ceil(factors[k]) != d[k]) {
            return Err(ComputeError::InvalidArgument(format!(
                "cannot upsample {d:?} by {factors:?} to {dims_zyx:?}"
            )));
        }
        let mut out = Array3::<u8>::zeros((dims_zyx[0], dims_zyx[1], dims_zyx[2]));
        out.axis_iter_mut(Axis(0))
            .into_par_iter()
            .enumerate()
            .for_each(|(z, mut s)| {
                let src = m.0.index_axis(Axis(0), z / factors[0]);
                // Row by row, each source voxel filling its run of `factors[2]` outputs.
                for (y, mut orow) in s.outer_iter_mut().enumerate() {
                    let srow = src.index_axis(Axis(0), y / factors[1]);
                    let out = orow.as_slice_mut().expect("a fresh array is contiguous");
                    for (run, &v) in out.chunks_mut(factors[2]).zip(srow.iter()) {
                        run.fill(v);
                    }
                }
            });
        Ok(CpuVolume(out))
    }

    fn crop_i16(
        &self,
        v: &Self::I16,
        min_zyx: [usize; 3],
        dims_zyx: [usize; 3],
    ) -> Result<Self::I16> {
        crop(&v.0, min_zyx, dims_zyx).map(CpuVolume)
    }

    fn crop_u8(&self, v: &Self::U8, min_zyx: [usize; 3], dims_zyx: [usize; 3]) -> Result<Self::U8> {
        crop(&v.0, min_zyx, dims_zyx).map(CpuVolume)
    }

    fn pad_u8(&self, v: &Self::U8, dims_zyx: [usize; 3], min_zyx: [usize; 3]) -> Result<Self::U8> {
        let d = dims(&v.0);
        check_box(dims_zyx, min_zyx, d)?;
        let mut out = Array3::<u8>::zeros((dims_zyx[0], dims_zyx[1], dims_zyx[2]));
        let [z, y, x] = min_zyx;
        out.slice_mut(ndarray::s![z..z + d[0], y..y + d[1], x..x + d[2]])
            .assign(&v.0);
        Ok(CpuVolume(out))
    }

    fn mind_ssc(&self, img: &Self::F32, dilation: usize, radius: usize) -> Result<Self::F32> {
        let d = dims(&img.0);
        let a = img.0.as_standard_layout();
        let src = a.as_slice().unwrap_or(&[]);
        let out = descriptor::mind_ssc(src, d, dilation, radius);
        Array3::from_shape_vec((d[0], d[1], d[2] * MIND_CHANNELS), out)
            .map(CpuVolume)
            .map_err(|e| ComputeError::InvalidArgument(format!("mind_ssc: {e}")))
    }

    fn ssd_costs(
        &self,
        fixed: &Self::F32,
        moving: &Self::F32,
        radius: usize,
    ) -> Result<(Self::U8, Self::F32)> {
        let pd = check_ssd_costs(dims(&fixed.0), dims(&moving.0), radius)?;
        let (f, m) = (fixed.0.as_standard_layout(), moving.0.as_standard_layout());
        let (q, lohi) = descriptor::ssd_costs(
            f.as_slice().unwrap_or(&[]),
            m.as_slice().unwrap_or(&[]),
            pd,
            radius,
        );
        let side = 2 * radius + 1;
        let shape_err =
            |e: ndarray::ShapeError| ComputeError::InvalidArgument(format!("ssd_costs: {e}"));
        Ok((
            CpuVolume(
                Array3::from_shape_vec((pd[0], pd[1], pd[2] * side * side * side), q)
                    .map_err(shape_err)?,
            ),
            CpuVolume(Array3::from_shape_vec((pd[0], pd[1], pd[2] * 2), lohi).map_err(shape_err)?),
        ))
    }

    fn convex_choose(
        &self,
        costs: &Self::U8,
        bounds: &Self::F32,
        target: Option<&Self::F32>,
        lambda: f32,
        radius: usize,
    ) -> Result<Self::F32> {
        let g = check_convex_choose(
            dims(&costs.0),
            dims(&bounds.0),
            target.map(|t| dims(&t.0)),
            lambda,
            radius,
        )?;
        let (q, b) = (costs.0.as_standard_layout(), bounds.0.as_standard_layout());
        let t = target.map(|t| t.0.as_standard_layout());
        let out = descriptor::convex_choose(
            q.as_slice().unwrap_or(&[]),
            b.as_slice().unwrap_or(&[]),
            t.as_ref().map(|t| t.as_slice().unwrap_or(&[])),
            lambda,
            g.iter().product(),
            radius,
        );
        Array3::from_shape_vec((3 * g[0], g[1], g[2]), out)
            .map(CpuVolume)
            .map_err(|e| ComputeError::InvalidArgument(format!("convex_choose: {e}")))
    }

    fn descriptor_grad(
        &self,
        fixed: &Self::F32,
        moving: &Self::F32,
        cover: &Self::F32,
        domain: &Self::U8,
        params: &Self::F32,
        spacing: usize,
    ) -> Result<Self::F32> {
        let pd = check_descriptor_grad(
            dims(&fixed.0),
            dims(&moving.0),
            dims(&cover.0),
            dims(&domain.0),
            dims(&params.0),
            spacing,
        )?;
        let (f, m, c, dm, p) = (
            fixed.0.as_standard_layout(),
            moving.0.as_standard_layout(),
            cover.0.as_standard_layout(),
            domain.0.as_standard_layout(),
            params.0.as_standard_layout(),
        );
        let g = descriptor::descriptor_grad(
            f.as_slice().unwrap_or(&[]),
            m.as_slice().unwrap_or(&[]),
            c.as_slice().unwrap_or(&[]),
            dm.as_slice().unwrap_or(&[]),
            dims(&cover.0),
            p.as_slice().unwrap_or(&[]),
            pd,
            spacing,
        );
        Array3::from_shape_vec((3 * pd[0], pd[1], pd[2]), g)
            .map(CpuVolume)
            .map_err(|e| ComputeError::InvalidArgument(format!("descriptor_grad: {e}")))
    }
}

fn crop<T: Clone + Send + Sync>(
    a: &Array3<T>,
    min_zyx: [usize; 3],
    dims_zyx: [usize; 3],
) -> Result<Array3<T>> {
    check_box(dims(a), min_zyx, dims_zyx)?;
    let [z, y, x] = min_zyx;
    let [dz, dy, dx] = dims_zyx;
    Ok(a.slice(ndarray::s![z..z + dz, y..y + dy, x..x + dx])
        .as_standard_layout()
        .into_owned())
}

fn add_vecs(mut a: Vec<u64>, b: Vec<u64>) -> Vec<u64> {
    a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
    a
}

/// [`blur_lane`] of every column of a `ny × nx` row-major slice, row by row: each output row is
/// the weighted sum of whole (clamped) input rows, taps in the same order — the same f32
/// arithmetic as `blur_lane`, vectorised along the rows.
fn blur_columns(f: &mut [f32], ny: usize, nx: usize, kernel: &[f32]) {
    if ny == 0 || nx == 0 {
        return;
    }
    let src = f.to_vec();
    let radius = (kernel.len() / 2) as isize;
    for (y, out) in f.chunks_mut(nx).enumerate() {
        out.fill(0.0);
        for (k, &w) in kernel.iter().enumerate() {
            let yy = (y as isize + k as isize - radius).clamp(0, ny as isize - 1) as usize;
            let srow = &src[yy * nx..(yy + 1) * nx];
            for (o, &v) in out.iter_mut().zip(srow) {
                *o += w * v;
            }
        }
    }
}

/// Per stage of a `gaussian_mix`, the in-plane (y, x) kernels; `None` where `gaussian` would
/// skip the axis (σ under 1e-3 voxel, or the axis one voxel long).
fn mix_stage_kernels(
    sigmas_mm: &[f64],
    spacing_mm: [f64; 3],
    shape: [usize; 3],
) -> Vec<[Option<Vec<f32>>; 2]> {
    sigmas_mm
        .iter()
        .map(|&s| {
            [1, 2].map(|axis| {
                let sigma_vox = s / spacing_mm[axis];
                (sigma_vox >= 1e-3 && shape[axis] >= 2)
                    .then(|| crate::api::gaussian_weights(sigma_vox))
            })
        })
        .collect()
}

/// One stage of the cascade on a slice `f` (`ny` × `nx`, row-major), in place.
fn blur_mix_stage(
    f: &mut [f32],
    ny: usize,
    nx: usize,
    [ky, kx]: &[Option<Vec<f32>>; 2],
    padded: &mut Vec<f32>,
) {
    if let Some(k) = ky {
        blur_columns(f, ny, nx, k);
    }
    if let Some(k) = kx {
        for row in f.chunks_mut(nx) {
            blur_row(row, k, padded);
        }
    }
}

/// A mixed value back to HU: rounded half away from zero, clamped to ±32767, `OUTSIDE_FOV_HU`
/// kept where the input had it.
fn mix_to_hu(orig: i16, v: f32) -> i16 {
    if orig == OUTSIDE_FOV_HU {
        OUTSIDE_FOV_HU
    } else {
        v.round().clamp(i16::MIN as f32 + 1.0, i16::MAX as f32) as i16
    }
}

/// [`blur_lane`] of one contiguous row: the row padded with its clamped ends, then one
/// vectorisable pass per tap (same order and operands as `blur_lane`).
fn blur_row(row: &mut [f32], kernel: &[f32], padded: &mut Vec<f32>) {
    let n = row.len();
    if n == 0 {
        return;
    }
    let radius = kernel.len() / 2;
    padded.clear();
    padded.extend(std::iter::repeat_n(row[0], radius));
    padded.extend_from_slice(row);
    padded.extend(std::iter::repeat_n(row[n - 1], radius));
    row.fill(0.0);
    for (k, &w) in kernel.iter().enumerate() {
        for (o, &v) in row.iter_mut().zip(&padded[k..k + n]) {
            *o += w * v;
        }
    }
}

/// One lane convolved with `kernel` (odd length, centred), borders clamped; `scratch` holds
/// the lane's old values. (Across slices; in-plane, `blur_columns` and `blur_row` do the same
/// arithmetic on whole rows.)
fn blur_lane(mut lane: ndarray::ArrayViewMut1<'_, f32>, kernel: &[f32], scratch: &mut Vec<f32>) {
    scratch.clear();
    scratch.extend(lane.iter().copied());
    let n = scratch.len() as isize;
    let radius = (kernel.len() / 2) as isize;
    for (i, o) in lane.iter_mut().enumerate() {
        let mut acc = 0.0f32;
        for (k, w) in kernel.iter().enumerate() {
            let j = (i as isize + k as isize - radius).clamp(0, n - 1);
            acc += w * scratch[j as usize];
        }
        *o = acc;
    }
}

/// Block mean over `factors` voxels (see `Backend::downsample_mean`), read straight from `src`.
fn block_mean(src: ArrayView3<'_, i16>, factors: [usize; 3]) -> Result<Array3<i16>> {
    if factors.contains(&0) {
        return Err(ComputeError::InvalidArgument(format!(
            "downsample factors must be >= 1, got {factors:?}"
        )));
    }
    let d = dims(&src);
    let od = [0, 1, 2].map(|k| d[k].div_ceil(factors[k]));
    let mut out = Array3::<i16>::zeros((od[0], od[1], od[2]));
    out.axis_iter_mut(Axis(0))
        .into_par_iter()
        .enumerate()
        .for_each(|(oz, mut s)| {
            let mut sum = vec![0i64; od[2]];
            let mut n = vec![0i64; od[2]];
            let mut inside = vec![0i64; od[2]];
            let mut scratch = Vec::new();
            for oy in 0..od[1] {
                sum.iter_mut().for_each(|v| *v = 0);
                n.iter_mut().for_each(|v| *v = 0);
                inside.iter_mut().for_each(|v| *v = 0);
                for z in oz * factors[0]..((oz + 1) * factors[0]).min(d[0]) {
                    for y in oy * factors[1]..((oy + 1) * factors[1]).min(d[1]) {
                        let row = src.slice(ndarray::s![z, y, ..]);
                        let row = match row.to_slice() {
                            Some(r) => r,
                            None => {
                                scratch.clear();
                                scratch.extend(row.iter().copied());
                                &scratch[..]
                            }
                        };
                        // One block's run of the row at a time.
                        for (ox, run) in row.chunks(factors[2]).enumerate() {
                            let (mut acc, mut outside) = (0i64, 0i64);
                            for &v in run {
                                if v == OUTSIDE_FOV_HU {
                                    outside += 1;
                                } else {
                                    acc += v as i64;
                                }
                            }
                            sum[ox] += acc - 1024 * outside;
                            n[ox] += run.len() as i64;
                            inside[ox] += run.len() as i64 - outside;
                        }
                    }
                }
                for ox in 0..od[2] {
                    s[[oy, ox]] = if inside[ox] == 0 || n[ox] == 0 {
                        OUTSIDE_FOV_HU
                    } else {
                        (sum[ox] as f64 / n[ox] as f64).round() as i16
                    };
                }
            }
        });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_wise_blurs_match_the_lane_blur_bit_for_bit() {
        // blur_columns / blur_row promise the same f32 operations in the same order as
        // blur_lane; kernels longer than the slice too (clamped ends).
        let (ny, nx) = (7, 11);
        let slice: Vec<f32> = (0..ny * nx)
            .map(|i| ((i * 7919) % 1500) as f32 - 1000.0)
            .collect();
        for sigma in [0.7, 1.9, 4.0] {
            let k = crate::api::gaussian_weights(sigma);
            let mut lanes =
                ndarray::Array2::from_shape_vec((ny, nx), slice.clone()).expect("shape");
            for lane in lanes.lanes_mut(Axis(0)) {
                blur_lane(lane, &k, &mut Vec::new());
            }
            for lane in lanes.lanes_mut(Axis(1)) {
                blur_lane(lane, &k, &mut Vec::new());
            }
            let mut rows = slice.clone();
            blur_columns(&mut rows, ny, nx, &k);
            let mut padded = Vec::new();
            for row in rows.chunks_mut(nx) {
                blur_row(row, &k, &mut padded);
            }
            let lanes: Vec<u32> = lanes.iter().map(|v| v.to_bits()).collect();
            let rows: Vec<u32> = rows.iter().map(|v| v.to_bits()).collect();
            assert_eq!(lanes, rows, "sigma {sigma}");
        }
    }
}
