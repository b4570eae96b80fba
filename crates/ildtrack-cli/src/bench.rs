//! `ildtrack bench`: per-kernel and end-to-end timings on each backend, side by side.
//!
//! Every kernel runs on the same phantom volume on every backend in the same run. Times are the
//! median of `repeat` runs after one warm-up; GPU kernels are timed to completion (the
//! backend's methods return once the device work has finished). Effective GB/s = bytes the
//! kernel must read and write at least (its floor) / time; the memory-copy bandwidth measured
//! on the same device in the same run is printed beside it.

use anyhow::{Context, Result};
use ildtrack_compute::{Backend, Ball, Connectivity, MaskOp};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Instant;

#[derive(Debug, Clone, Serialize)]
pub struct KernelTiming {
    pub kernel: String,
    pub median_ms: f64,
    pub min_ms: f64,
    pub voxels_per_s: f64,
    /// Bytes the kernel reads and writes at minimum (its floor), per run.
    pub bytes_moved: u64,
    pub effective_gb_s: f64,
    /// effective_gb_s / copy bandwidth of the same device.
    pub fraction_of_copy_bw: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct BackendBench {
    pub backend: String,
    pub device: String,
    /// The yardstick of `fraction_of_copy_bw`: host memcpy (CPU), a compute-shader copy of
    /// 1 GiB (GPU).
    pub copy_bandwidth_gb_s: f64,
    /// GPU: `copy_buffer_to_buffer` of 1 GiB (may run on a copy engine).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub copy_buffer_gb_s: Option<f64>,
    pub kernels: Vec<KernelTiming>,
    /// Segmentation + quantification (`analyze`), volume already in memory, no disk I/O.
    pub analyze_ms: Option<f64>,
    /// The timed run's `timings_ms` (`segment`, `quantify` and the segmentation stages).
    pub analyze_stages_ms: BTreeMap<String, f64>,
    pub analyze_error: Option<String>,
    /// `bench --profile` (GPU): per section, where the host time went: (section, what, count, ms).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub profile: Vec<(String, String, u64, f64)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub version: String,
    pub dims_zyx: [usize; 3],
    pub voxels: usize,
    pub repeat: usize,
    pub host: String,
    pub backends: Vec<BackendBench>,
}

fn median_min(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    let med = if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    };
    (med, v[0])
}

/// Time `f` `repeat` times after one warm-up run.
fn time_it<T>(repeat: usize, mut f: impl FnMut() -> Result<T>) -> Result<Vec<f64>> {
    drop(f()?);
    let mut out = Vec::with_capacity(repeat);
    for _ in 0..repeat {
        let t = Instant::now();
        let r = f()?;
        out.push(t.elapsed().as_secs_f64() * 1e3);
        drop(r);
    }
    Ok(out)
}

/// Host memory copy bandwidth (read + write bytes / s) with all threads, the CPU floor.
pub fn host_copy_bandwidth_gb_s(bytes: usize) -> f64 {
    use rayon::prelude::*;
    let src = vec![1u8; bytes];
    let mut dst = vec![0u8; bytes];
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        dst.par_chunks_mut(1 << 20)
            .zip(src.par_chunks(1 << 20))
            .for_each(|(d, s)| d.copy_from_slice(s));
        best = best.min(t.elapsed().as_secs_f64());
    }
    std::hint::black_box(&dst);
    2.0 * bytes as f64 / best / 1e9
}

/// One timed `analyze`: milliseconds and its `timings_ms` (stages).
pub type AnalyzeTiming = (f64, BTreeMap<String, f64>);

/// Runs every kernel of `backend` on `hu`.
pub fn bench_backend<B: Backend>(
    backend: &B,
    hu: &ildtrack_volume::Volume<i16>,
    copy_bandwidth_gb_s: f64,
    repeat: usize,
    analyze: &dyn Fn(&B) -> Result<AnalyzeTiming>,
    profile_take: &dyn Fn() -> Vec<(String, u64, f64)>,
) -> Result<BackendBench> {
    let n = hu.len() as u64;
    let spacing = hu.geometry.spacing_mm;
    let h = backend.upload_i16(hu.data.view()).context("upload")?;
    let mask = backend.threshold(&h, -500, i16::MAX).context("threshold")?;
    let lungs = backend.threshold(&h, -1024, -400).context("threshold")?;
    let mut kernels = Vec::new();
    let mut profile = Vec::new();
    drop(profile_take());
    let mut add = |name: &str, bytes: u64, times: Vec<f64>| {
        for (what, count, ms) in profile_take() {
            profile.push((name.to_string(), what, count, ms));
        }
        let (med, min) = median_min(times);
        let gbs = bytes as f64 / (med / 1e3) / 1e9;
        kernels.push(KernelTiming {
            kernel: name.to_string(),
            median_ms: med,
            min_ms: min,
            voxels_per_s: n as f64 / (med / 1e3),
            bytes_moved: bytes,
            effective_gb_s: gbs,
            fraction_of_copy_bw: gbs / copy_bandwidth_gb_s,
        });
    };
    // Floors: read i16 (2 B) and/or u8 (1 B) inputs once, write outputs once.
    add(
        "upload_i16",
        2 * n,
        time_it(repeat, || Ok(backend.upload_i16(hu.data.view())?))?,
    );
    add(
        "threshold",
        3 * n,
        time_it(repeat, || Ok(backend.threshold(&h, -1024, -400)?))?,
    );
    let edges = [-950i16, -700, -300, 100];
    add(
        "classify",
        4 * n,
        time_it(repeat, || Ok(backend.classify(&h, &lungs, &edges)?))?,
    );
    add(
        "mask_op",
        3 * n,
        time_it(repeat, || {
            Ok(backend.mask_op(&mask, &lungs, MaskOp::AndNot)?)
        })?,
    );
    add(
        "histogram",
        3 * n,
        time_it(repeat, || Ok(backend.histogram(&h, &lungs, 2, -1024, 200)?))?,
    );
    add(
        "value_counts",
        n,
        time_it(repeat, || Ok(backend.value_counts(&lungs)?))?,
    );
    let ball = Ball::new(3.0, spacing);
    add(
        "dilate_3mm",
        2 * n,
        time_it(repeat, || Ok(backend.dilate(&lungs, &ball)?))?,
    );
    add(
        "erode_3mm",
        2 * n,
        time_it(repeat, || Ok(backend.erode(&lungs, &ball)?))?,
    );
    add(
        "fill_holes_2d",
        2 * n,
        time_it(repeat, || Ok(backend.fill_holes_2d(&mask)?))?,
    );
    add(
        "label_components_26",
        5 * n,
        time_it(repeat, || {
            Ok(backend
                .label_components(&lungs, Connectivity::Full26)?
                .1
                .len())
        })?,
    );
    add(
        "gaussian_1mm",
        4 * n,
        time_it(repeat, || {
            Ok(backend.gaussian(&h, [1.0, 1.0, 1.0], spacing)?)
        })?,
    );
    add(
        "gaussian_mix_bands",
        4 * n,
        time_it(repeat, || {
            // Kernel harmonization's recomposition: three in-plane stages (σ 0.5, 1, 2 mm).
            Ok(backend.gaussian_mix(&h, &[0.5, 0.866, 1.732], &[0.2, 0.1, 0.3, 0.4], spacing)?)
        })?,
    );
    add(
        "distance_mm",
        5 * n,
        time_it(repeat, || Ok(backend.distance_mm(&lungs, spacing)?))?,
    );
    add(
        "download_u8",
        n,
        time_it(repeat, || Ok(backend.download_u8(&lungs)?))?,
    );
    let (analyze_ms, analyze_stages_ms, analyze_error) = match analyze(backend) {
        Ok((ms, stages)) => (Some(ms), stages, None),
        Err(e) => (None, BTreeMap::new(), Some(format!("{e:#}"))),
    };
    // The profile holds the warm-up and the timed analysis: halve it.
    for (what, count, ms) in profile_take() {
        profile.push(("analyze (per run)".to_string(), what, count / 2, ms / 2.0));
    }
    Ok(BackendBench {
        backend: backend.name().to_string(),
        device: backend.device_description(),
        copy_bandwidth_gb_s,
        copy_buffer_gb_s: None,
        kernels,
        analyze_ms,
        analyze_stages_ms,
        analyze_error,
        profile,
    })
}

/// Parses `512x512x400` (x × y × z, as people say CT sizes) into `(z, y, x)`.
pub fn parse_size(s: &str) -> Result<[usize; 3]> {
    let parts: Vec<&str> = s.split(['x', 'X', '×']).collect();
    anyhow::ensure!(
        parts.len() == 3,
        "size must look like 512x512x400 (columns x rows x slices), got {s:?}"
    );
    let mut v = [0usize; 3];
    for (i, p) in parts.iter().enumerate() {
        v[i] = p
            .trim()
            .parse()
            .with_context(|| format!("size component {p:?} in {s:?} is not a number"))?;
        anyhow::ensure!(
            (8..=2048).contains(&v[i]),
            "size component {} in {s:?} must be within 8..=2048",
            v[i]
        );
    }
    Ok([v[2], v[1], v[0]])
}

pub fn print_table(r: &BenchReport) {
    println!(
        "ildtrack {} bench: {}x{}x{} voxels ({:.1} M), median of {} runs, host: {}",
        r.version,
        r.dims_zyx[2],
        r.dims_zyx[1],
        r.dims_zyx[0],
        r.voxels as f64 / 1e6,
        r.repeat,
        r.host
    );
    for b in &r.backends {
        println!();
        match b.copy_buffer_gb_s {
            Some(dma) => println!(
                "backend {} — {} (copy bandwidth {:.1} GB/s by a shader copy of 1 GiB; copy_buffer_to_buffer {:.1} GB/s)",
                b.backend, b.device, b.copy_bandwidth_gb_s, dma
            ),
            None => println!(
                "backend {} — {} (copy bandwidth {:.1} GB/s)",
                b.backend, b.device, b.copy_bandwidth_gb_s
            ),
        }
        println!(
            "  {:<22} {:>10} {:>10} {:>12} {:>9} {:>7}",
            "kernel", "median ms", "min ms", "Mvox/s", "GB/s", "%copy"
        );
        for k in &b.kernels {
            println!(
                "  {:<22} {:>10.2} {:>10.2} {:>12.1} {:>9.2} {:>6.0}%",
                k.kernel,
                k.median_ms,
                k.min_ms,
                k.voxels_per_s / 1e6,
                k.effective_gb_s,
                100.0 * k.fraction_of_copy_bw
            );
        }
        match (&b.analyze_ms, &b.analyze_error) {
            (Some(ms), _) => println!(
                "  {:<22} {:>10.1}  (segmentation + quantification, no disk I/O)",
                "analyze (end to end)", ms
            ),
            (None, Some(e)) => println!("  analyze failed: {e}"),
            _ => {}
        }
        if !b.analyze_stages_ms.is_empty() {
            let stages: Vec<String> = b
                .analyze_stages_ms
                .iter()
                .map(|(k, v)| format!("{k} {v:.1}"))
                .collect();
            println!("  analyze stages ms: {}", stages.join(", "));
        }
        if !b.profile.is_empty() {
            println!(
                "  profile (host ms summed over the warm-up and {} timed runs; analyze: one run):",
                r.repeat
            );
            let mut last = "";
            for (section, what, count, ms) in &b.profile {
                if section != last {
                    println!("   {section}:");
                    last = section;
                }
                println!("     {what:<34} {count:>7} x {ms:>10.2} ms");
            }
        }
    }
    if r.backends.len() == 2
        && let (Some(a), Some(b)) = (r.backends[0].analyze_ms, r.backends[1].analyze_ms)
    {
        println!();
        println!(
            "analyze speed-up {} vs {}: {:.1}x",
            r.backends[1].backend,
            r.backends[0].backend,
            a / b
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_is_parsed_as_x_y_z_into_zyx() {
        assert_eq!(parse_size("512x256x40").ok(), Some([40, 256, 512]));
        assert!(parse_size("512x256").is_err());
        assert!(parse_size("512x256x0").is_err());
        assert!(parse_size("axbxc").is_err());
    }

    #[test]
    fn median_of_even_and_odd() {
        assert_eq!(median_min(vec![3.0, 1.0, 2.0]), (2.0, 1.0));
        assert_eq!(median_min(vec![4.0, 1.0, 2.0, 3.0]), (2.5, 1.0));
    }
}
