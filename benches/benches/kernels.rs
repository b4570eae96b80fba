//! Every kernel of the Backend trait, per backend, on a phantom volume (Throughput = voxels).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ildtrack_benches::*;
use ildtrack_compute::{Backend, Ball, Connectivity, CpuBackend};

fn kernels<B: Backend>(c: &mut Criterion, b: &B, hu: &ildtrack_volume::Volume<i16>) {
    let dims = hu.dims_zyx();
    let spacing = hu.geometry.spacing_mm;
    let h = b.upload_i16(hu.data.view()).expect("upload");
    let lungs = b.threshold(&h, -1024, -400).expect("threshold");
    let mut g = c.benchmark_group(format!(
        "kernels_{}_{}x{}x{}",
        b.name(),
        dims[2],
        dims[1],
        dims[0]
    ));
    g.sample_size(10);
    g.throughput(Throughput::Elements(hu.len() as u64));
    g.bench_function("threshold", |x| {
        x.iter(|| b.threshold(&h, -1024, -400).expect("threshold"))
    });
    g.bench_function("classify", |x| {
        x.iter(|| {
            b.classify(&h, &lungs, &[-950, -700, -300, 100])
                .expect("classify")
        })
    });
    g.bench_function("histogram", |x| {
        x.iter(|| b.histogram(&h, &lungs, 2, -1024, 200).expect("histogram"))
    });
    let ball = Ball::new(3.0, spacing);
    g.bench_function("dilate_3mm", |x| {
        x.iter(|| b.dilate(&lungs, &ball).expect("dilate"))
    });
    g.bench_function("erode_3mm", |x| {
        x.iter(|| b.erode(&lungs, &ball).expect("erode"))
    });
    g.bench_function("fill_holes_2d", |x| {
        x.iter(|| b.fill_holes_2d(&lungs).expect("fill"))
    });
    g.bench_function("label_components_26", |x| {
        x.iter(|| {
            b.label_components(&lungs, Connectivity::Full26)
                .expect("ccl")
                .1
                .len()
        })
    });
    g.bench_function("gaussian_1mm", |x| {
        x.iter(|| b.gaussian(&h, [1.0; 3], spacing).expect("gaussian"))
    });
    g.bench_function("distance_mm", |x| {
        x.iter(|| b.distance_mm(&lungs, spacing).expect("edt"))
    });
    g.finish();
}

fn all(c: &mut Criterion) {
    let ph = phantom(bench_dims());
    kernels(c, &CpuBackend::new(), &ph.volume);
    match ildtrack_gpu::WgpuBackend::new(ildtrack_gpu::GpuOptions {
        allow_software: true,
        ..Default::default()
    }) {
        Ok(gpu) => kernels(c, &gpu, &ph.volume),
        Err(e) => eprintln!("gpu skipped: {e}"),
    }
}

criterion_group!(benches, all);
criterion_main!(benches);
