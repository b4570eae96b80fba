//! `analyze` (segmentation + quantification, volume in memory) per backend.
//! The SimpleITK peer on the same series: `scripts/bench_analyze.sh` runs both side by side.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ildtrack_benches::*;
use ildtrack_compute::{Backend, CpuBackend};

fn run<B: Backend>(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    b: &B,
    ph: &ildtrack_phantom::Phantom,
) {
    let config = ildtrack_analysis::AnalysisConfig::default();
    g.bench_function(b.name(), |bch| {
        bch.iter(|| {
            ildtrack_analysis::analyze(b, &ph.volume, &ph.meta, &[], &config, &|_, _| {})
                .expect("analyze")
        })
    });
}

fn analyze(c: &mut Criterion) {
    let dims = bench_dims();
    let ph = phantom(dims);
    let mut g = c.benchmark_group(format!("analyze_{}x{}x{}", dims[2], dims[1], dims[0]));
    g.sample_size(10);
    g.throughput(Throughput::Elements(ph.volume.len() as u64));
    run(&mut g, &CpuBackend::new(), &ph);
    match ildtrack_gpu::WgpuBackend::new(ildtrack_gpu::GpuOptions {
        allow_software: true,
        ..Default::default()
    }) {
        Ok(gpu) => run(&mut g, &gpu, &ph),
        Err(e) => eprintln!("gpu skipped: {e}"),
    }
    g.finish();
}

criterion_group!(benches, analyze);
criterion_main!(benches);
