//! Per-kernel wall time of CpuBackend and WgpuBackend on an `ild` phantom.
//!
//! `cargo run --release -p ildtrack-gpu --example gpu_kernel_times -- [ZxYxX] [--reps N] [--only k1,k2]`
//! Default 64x256x256. Every trait method is synchronous, so a plain clock times it; the GPU
//! pipelines are compiled first (`warm_up`). Prints a table: kernel, cpu ms, gpu ms, gpu
//! voxels/s, and the effective GB/s from `kernel_costs()`.

use std::time::Instant;

use ildtrack_compute::{Backend, Ball, Connectivity, CpuBackend};
use ildtrack_gpu::{GpuOptions, WgpuBackend, kernel_costs};
use ildtrack_phantom::{PhantomSpec, try_generate};

fn time<T>(reps: usize, mut f: impl FnMut() -> T) -> f64 {
    let _ = f();
    let t = Instant::now();
    for _ in 0..reps {
        let _ = f();
    }
    t.elapsed().as_secs_f64() * 1e3 / reps as f64
}

const ALL: &[&str] = &[
    "upload_i16",
    "threshold",
    "classify",
    "histogram",
    "value_counts",
    "dilate",
    "erode",
    "fill_holes_2d",
    "label_components",
    "map_labels",
    "gaussian",
    "distance_mm",
    "threshold_f32",
    "downsample_mean",
    "download_u8",
];

fn kernels<B: Backend>(
    b: &B,
    hu: &ndarray::Array3<i16>,
    spacing: [f64; 3],
    reps: usize,
    only: &[String],
) -> Result<Vec<(&'static str, f64)>, Box<dyn std::error::Error>> {
    let h = b.upload_i16(hu.view())?;
    let m = b.threshold(&h, -1024, -400)?;
    let c = b.classify(&h, &m, &[-950, -700, -250])?;
    let ball = Ball::new(3.0, spacing);
    let mut out = Vec::new();
    for &k in ALL {
        if !only.is_empty() && !only.iter().any(|o| o == k) {
            continue;
        }
        let ms = match k {
            "upload_i16" => time(reps, || b.upload_i16(hu.view())),
            "threshold" => time(reps, || b.threshold(&h, -1024, -400)),
            "classify" => time(reps, || b.classify(&h, &m, &[-950, -700, -250])),
            "histogram" => time(reps, || b.histogram(&h, &c, 5, -1024, 3071)),
            "value_counts" => time(reps, || b.value_counts(&c)),
            "dilate" => time(reps, || b.dilate(&m, &ball)),
            "erode" => time(reps, || b.erode(&m, &ball)),
            "fill_holes_2d" => time(reps, || b.fill_holes_2d(&m)),
            "label_components" => time(reps, || b.label_components(&m, Connectivity::Full26)),
            "map_labels" => {
                let (labels, _) = b.label_components(&m, Connectivity::Full26)?;
                time(reps, || b.map_labels(&labels, &[0, 1, 1, 1]))
            }
            "gaussian" => time(reps, || b.gaussian(&h, [1.0, 1.0, 1.0], spacing)),
            "distance_mm" => time(reps, || b.distance_mm(&m, spacing)),
            "threshold_f32" => {
                let d = b.distance_mm(&m, spacing)?;
                time(reps, || b.threshold_f32(&d, 0.0, 10.0))
            }
            "downsample_mean" => time(reps, || b.downsample_mean(&h, [2, 2, 2])),
            _ => time(reps, || b.download_u8(&m)),
        };
        out.push((k, ms));
    }
    Ok(out)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dims: [usize; 3] = args
        .iter()
        .find(|a| a.contains('x'))
        .map(|a| {
            let v: Vec<usize> = a.split('x').filter_map(|p| p.parse().ok()).collect();
            [
                v.first().copied().unwrap_or(64),
                v.get(1).copied().unwrap_or(256),
                v.get(2).copied().unwrap_or(256),
            ]
        })
        .unwrap_or([64, 256, 256]);
    let only: Vec<String> = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .map(|s| s.split(',').map(str::to_string).collect())
        .unwrap_or_default();
    let reps: usize = args
        .iter()
        .position(|a| a == "--reps")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let base = PhantomSpec::preset("ild").ok_or("no ild preset")?;
    let ext = [0, 1, 2].map(|k| base.dims_zyx[k] as f64 * base.spacing_mm[k]);
    let spacing = [0, 1, 2].map(|k| ext[k] / dims[k] as f64);
    let ph = try_generate(&base.with_grid(dims, spacing))?;
    let gpu = WgpuBackend::new(GpuOptions {
        allow_software: true,
        max_slab_bytes: None,
    })?;
    gpu.warm_up()?;
    let copy_gbs = gpu.measure_copy_bandwidth_gbs(256 << 20, 3)?;
    let n = dims.iter().product::<usize>() as f64;
    println!(
        "volume {dims:?} ({:.1} M voxels), spacing {spacing:.3?} mm, {reps} reps",
        n / 1e6
    );
    println!(
        "cpu: {}\ngpu: {} (copy bandwidth {copy_gbs:.1} GB/s)",
        CpuBackend.device_description(),
        gpu.adapter_description()
    );
    let tc = kernels(&CpuBackend, &ph.volume.data, spacing, reps, &only)?;
    let tg = kernels(&gpu, &ph.volume.data, spacing, reps, &only)?;
    println!(
        "{:<18} {:>10} {:>10} {:>12} {:>10} {:>8}",
        "kernel", "cpu ms", "gpu ms", "gpu Mvox/s", "gpu GB/s", "of copy"
    );
    for ((k, c), (_, g)) in tc.iter().zip(&tg) {
        let bytes = kernel_costs()
            .iter()
            .find(|x| x.kernel == *k)
            .map_or(0.0, |x| x.bytes_per_voxel);
        let gbs = n * bytes / g / 1e6;
        println!(
            "{k:<18} {c:>10.2} {g:>10.2} {:>12.1} {gbs:>10.2} {:>7.0}%",
            n / g / 1e3,
            100.0 * gbs / copy_gbs
        );
    }
    Ok(())
}
