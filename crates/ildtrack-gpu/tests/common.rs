//! Shared helpers: the device under test (or a skip), random and phantom volumes.

use std::sync::OnceLock;

use ildtrack_gpu::{GpuOptions, WgpuBackend};
use ndarray::Array3;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn open(max_slab_bytes: Option<u64>) -> Option<WgpuBackend> {
    match WgpuBackend::new(GpuOptions {
        allow_software: true,
        max_slab_bytes,
    }) {
        Ok(b) => {
            eprintln!("testing on {}", b.adapter_description());
            Some(b)
        }
        Err(e) => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!(
                    "CI=true but no wgpu adapter could be opened ({e}); install mesa-vulkan-drivers"
                );
            }
            eprintln!("skipped: no wgpu adapter ({e})");
            None
        }
    }
}

/// The GPU backend with device limits, shared by the tests; `None` = skip.
pub fn gpu() -> Option<&'static WgpuBackend> {
    static G: OnceLock<Option<WgpuBackend>> = OnceLock::new();
    G.get_or_init(|| open(None)).as_ref()
}

/// The GPU backend with every storage binding capped at `SMALL_SLAB_BYTES`.
pub fn gpu_small_slabs() -> Option<&'static WgpuBackend> {
    static G: OnceLock<Option<WgpuBackend>> = OnceLock::new();
    G.get_or_init(|| open(Some(SMALL_SLAB_BYTES))).as_ref()
}

pub const SMALL_SLAB_BYTES: u64 = 64 * 1024;

/// Awkward sizes: not multiples of the workgroup, of 4 voxels per word, of a slice.
pub const AWKWARD: &[[usize; 3]] = &[[7, 13, 11], [1, 17, 19], [5, 3, 2], [9, 21, 10]];

pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

pub fn random_hu(dims: [usize; 3], seed: u64) -> Array3<i16> {
    let mut r = rng(seed);
    Array3::from_shape_fn((dims[0], dims[1], dims[2]), |_| {
        if r.random_bool(0.03) {
            ildtrack_volume::OUTSIDE_FOV_HU
        } else {
            r.random_range(-1100..=1500)
        }
    })
}

/// Values in `0..n` with probability `p_zero` of 0.
pub fn random_u8(dims: [usize; 3], n: u8, p_zero: f64, seed: u64) -> Array3<u8> {
    let mut r = rng(seed);
    Array3::from_shape_fn((dims[0], dims[1], dims[2]), |_| {
        if r.random_bool(p_zero) {
            0
        } else {
            r.random_range(1..n.max(2))
        }
    })
}

/// Blobby random mask: smoothed noise thresholded, so components and holes have structure.
pub fn blobby_mask(dims: [usize; 3], fill: f64, seed: u64) -> Array3<u8> {
    let mut r = rng(seed);
    let noise = Array3::from_shape_fn((dims[0], dims[1], dims[2]), |_| r.random::<f32>());
    let [nz, ny, nx] = dims;
    Array3::from_shape_fn((nz, ny, nx), |(z, y, x)| {
        let mut s = 0.0;
        let mut n = 0.0;
        for dz in -1i64..=1 {
            for dy in -1i64..=1 {
                for dx in -1i64..=1 {
                    let (zz, yy, xx) = (z as i64 + dz, y as i64 + dy, x as i64 + dx);
                    if zz >= 0
                        && yy >= 0
                        && xx >= 0
                        && (zz as usize) < nz
                        && (yy as usize) < ny
                        && (xx as usize) < nx
                    {
                        s += noise[[zz as usize, yy as usize, xx as usize]];
                        n += 1.0;
                    }
                }
            }
        }
        u8::from(s / n < fill as f32)
    })
}

/// A small chest-like phantom: outside-FOV corners, air, a soft-tissue body, two lungs at
/// about -850 HU with vessels, a trachea and noise.
pub fn phantom(dims: [usize; 3], seed: u64) -> Array3<i16> {
    let mut r = rng(seed);
    let [nz, ny, nx] = dims;
    let (cy, cx) = (ny as f64 / 2.0, nx as f64 / 2.0);
    Array3::from_shape_fn((nz, ny, nx), |(z, y, x)| {
        let (fy, fx) = ((y as f64 - cy) / cy, (x as f64 - cx) / cx);
        if fy * fy + fx * fx > 1.0 {
            return ildtrack_volume::OUTSIDE_FOV_HU;
        }
        let noise = r.random_range(-40..=40);
        let body = (fy / 0.7).powi(2) + (fx / 0.9).powi(2) <= 1.0;
        if !body {
            return -1000 + noise;
        }
        let lung = |c: f64| {
            ((fy + 0.05) / 0.5).powi(2)
                + ((fx - c) / 0.33).powi(2)
                + ((z as f64 / nz as f64 - 0.5) / 0.45).powi(2)
                <= 1.0
        };
        let trachea = fy.powi(2) + fx.powi(2) < 0.004 && (z as f64) > nz as f64 * 0.7;
        if trachea {
            return -1000 + noise;
        }
        if lung(-0.42) || lung(0.42) {
            let vessel = ((x + 2 * y + 3 * z) % 17) < 2;
            return if vessel { 40 + noise } else { -850 + noise };
        }
        30 + noise
    })
}

/// Voxels where two maps (labels, classes) differ.
pub fn count_differing(a: &Array3<u8>, b: &Array3<u8>) -> usize {
    a.iter().zip(b.iter()).filter(|(x, y)| x != y).count()
}
