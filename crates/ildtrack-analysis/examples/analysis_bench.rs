//! End-to-end `analyze` timing and peak memory on one input (NIfTI or DICOM), CPU backend.
//! `cargo run --release -p ildtrack-analysis --example analysis_bench -- INPUT [REPEATS]`
//! With `--make-phantom OUT.nii.gz` it first writes the default 512×512×300 ILD phantom.

use ildtrack_analysis::{AnalysisConfig, analyze};
use ildtrack_compute::CpuBackend;
use std::path::Path;
use std::time::Instant;

fn vm_hwm_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM"))
                .map(|l| l.to_string())
        })
        .and_then(|l| {
            l.split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--make-phantom") {
        let out = args.get(1).ok_or("--make-phantom OUT.nii.gz")?;
        let ph = ildtrack_phantom::try_generate(&ildtrack_phantom::PhantomSpec::ild())?;
        ildtrack_dicom::nifti::write_i16(Path::new(out), &ph.volume)?;
        println!("wrote {out}");
        return Ok(());
    }
    let input = args
        .first()
        .ok_or("usage: analysis_bench INPUT [REPEATS]")?;
    let repeats: usize = args.get(1).and_then(|v| v.parse().ok()).unwrap_or(3);
    let t = Instant::now();
    let s = ildtrack_dicom::load(Path::new(input), &ildtrack_dicom::LoadOptions::default())?;
    let load_ms = t.elapsed().as_secs_f64() * 1e3;
    let vol_mb = s.volume.len() as f64 * 2.0 / 1048576.0;
    let after_load = vm_hwm_mb();
    let mut best = f64::INFINITY;
    for _ in 0..repeats {
        let t = Instant::now();
        let a = analyze(
            &CpuBackend::new(),
            &s.volume,
            &s.meta,
            &s.warnings,
            &AnalysisConfig::default(),
            &|_, _| {},
        )?;
        let ms = t.elapsed().as_secs_f64() * 1e3;
        best = best.min(ms);
        println!(
            "analyze {ms:.0} ms {:?}",
            a.result
                .timings_ms
                .iter()
                .filter(|(k, _)| !k.contains('.'))
                .collect::<Vec<_>>()
        );
        drop(a);
    }
    println!(
        "dims {:?}: load {load_ms:.0} ms, best analyze {best:.0} ms on {} threads; i16 volume {vol_mb:.0} MiB, peak RSS after load {after_load:.0} MiB, overall {:.0} MiB ({:.2}x the i16 volume)",
        s.volume.dims_zyx(),
        rayon::current_num_threads(),
        vm_hwm_mb(),
        vm_hwm_mb() / vol_mb
    );
    Ok(())
}
