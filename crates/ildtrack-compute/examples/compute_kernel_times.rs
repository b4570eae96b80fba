//! Times a few CpuBackend kernels on a 512×512×300 volume (a ball of 150 mm radius inside).
//! `cargo run --release -p ildtrack-compute --example compute_kernel_times`

use ildtrack_compute::{Backend, Ball, Connectivity, CpuBackend};
use ndarray::Array3;
use std::time::Instant;

fn main() -> Result<(), ildtrack_compute::ComputeError> {
    let b = CpuBackend::new();
    let sp = [1.0, 0.78, 0.78];
    let m = Array3::from_shape_fn((300, 512, 512), |(z, y, x)| {
        let d = ((z as f64 - 150.0) * sp[0]).powi(2)
            + ((y as f64 - 256.0) * sp[1]).powi(2)
            + ((x as f64 - 256.0) * sp[2]).powi(2);
        u8::from(d < 150.0f64.powi(2) && (x / 7 + y / 5 + z / 3) % 4 != 0)
    });
    let hu = m.mapv(|v| if v != 0 { -850i16 } else { 40 });
    let h = b.upload_u8(m.view())?;
    let hh = b.upload_i16(hu.view())?;
    let time = |name: &str, f: &mut dyn FnMut() -> Result<(), ildtrack_compute::ComputeError>| {
        let t = Instant::now();
        let r = f();
        println!(
            "{name:28} {:8.0} ms {}",
            t.elapsed().as_secs_f64() * 1e3,
            if r.is_ok() { "" } else { "ERR" }
        );
    };
    time("threshold", &mut || {
        b.threshold(&hh, -1000, -400).map(|_| ())
    });
    time("histogram (2 labels)", &mut || {
        b.histogram(&hh, &h, 2, -2048, 3071).map(|_| ())
    });
    time("dilate ball 10 mm", &mut || {
        b.dilate(&h, &Ball::new(10.0, sp)).map(|_| ())
    });
    time("close ball 10 mm", &mut || {
        b.close(&h, &Ball::new(10.0, sp)).map(|_| ())
    });
    time("distance_mm", &mut || b.distance_mm(&h, sp).map(|_| ()));
    time("label 6-conn", &mut || {
        b.label_components(&h, Connectivity::Face6).map(|_| ())
    });
    time("label 26-conn", &mut || {
        b.label_components(&h, Connectivity::Full26).map(|_| ())
    });
    time("fill_holes_2d", &mut || b.fill_holes_2d(&h).map(|_| ()));
    time("gaussian sigma 1 mm", &mut || {
        b.gaussian(&hh, [1.0; 3], sp).map(|_| ())
    });
    time("downsample 1x2x2", &mut || {
        b.downsample_mean(&hh, [1, 2, 2]).map(|_| ())
    });
    Ok(())
}
