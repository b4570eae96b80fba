//! Loading an uncompressed 512×512×300 series from the page cache, against `cat` of the same
//! bytes (the floor). Target: within 2× of the floor on 2 cores.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ildtrack_benches::*;

fn load(c: &mut Criterion) {
    let dims = bench_dims();
    let ph = phantom(dims);
    let (dir, files) = phantom_series(&ph);
    let bytes = total_bytes(&files);
    // Warm the page cache.
    cat_files(dir.path());
    let mut g = c.benchmark_group(format!("load_{}x{}x{}", dims[2], dims[1], dims[0]));
    g.sample_size(10);
    g.throughput(Throughput::Bytes(bytes));
    g.bench_function("cat_floor", |b| b.iter(|| cat_files(dir.path())));
    g.bench_function("ildtrack_dicom_load", |b| {
        b.iter(|| {
            let s = ildtrack_dicom::load(dir.path(), &ildtrack_dicom::LoadOptions::default())
                .expect("load");
            assert_eq!(s.volume.dims_zyx(), dims);
            s
        })
    });
    g.finish();
}

criterion_group!(benches, load);
criterion_main!(benches);
