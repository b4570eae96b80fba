//! The registration's kernels (`mind_ssc`, `ssd_costs`, `convex_choose`, `descriptor_grad`)
//! against `CpuBackend`, and a whole registration through `WgpuBackend` against the same on the
//! CPU.
//!
//! Tolerances:
//! - `ssd_costs`: bounds within 1e-6 relative, bytes off by at most one in at most one in a
//!   thousand; `convex_choose`: at most one pick in a thousand differs. Both run the CPU's f32
//!   operations in its order, but a driver may fuse a multiply-add and round a cost, or a tie,
//!   the other way.
//! - `mind_ssc` within 1e-4 absolute (descriptors lie in [0, 1]; the box sums run in the CPU's
//!   order, the GPU's `exp` and division are a few ulp off, the mean variance is summed the same
//!   way in f64).
//! - `descriptor_grad` within 1e-4 of the largest gradient component (each parameter sums up to
//!   (2·spacing + 1)³ voxel contributions in another order than the CPU's scatter, and
//!   positions are f32 on the GPU, f64 on the CPU).
//! - The registration: the maps agree within 0.1 mm at every baseline lung voxel (a tenth of the
//!   1 mm inverse-consistency target): what is left after sixty Adam steps fed gradients that
//!   differ in their last bits. Adam's step is normalised by the gradient's running size, so
//!   where the data term is nearly flat a last-bit difference can move a parameter by a step.
//!   The test runs a 5 mm working grid: lavapipe finishes in seconds, and on the default
//!   2.5 mm grid the worst voxel exceeded the bound (figures in docs/REGISTRATION.md).

use ildtrack_compute::{Backend, CpuBackend, MIND_CHANNELS, param_grid_dims};
use ildtrack_gpu::WgpuBackend;
use ildtrack_register::synthetic::{deform, dist, lung_box, lung_points, random_deformation};
use ildtrack_register::{Frame, RegisterConfig, register_with};
use ndarray::Array3;
use rand::{Rng, SeedableRng, rngs::StdRng};

use crate::common::{AWKWARD, gpu, gpu_small_slabs, rng};

const CPU: CpuBackend = CpuBackend;

/// A working-grid-like image: smooth structure plus noise, values in the descriptor input's
/// range (0 ..= 1.4).
fn image(dims: [usize; 3], seed: u64) -> Array3<f32> {
    let mut r = rng(seed);
    Array3::from_shape_fn((dims[0], dims[1], dims[2]), |(z, y, x)| {
        let s = ((z as f32 * 0.9).sin() + (y as f32 * 0.6).cos() + (x as f32 * 0.4).sin()) / 3.0;
        (0.7 + 0.5 * s + r.random_range(-0.2..0.2f32)).clamp(0.0, 1.4)
    })
}

fn max_abs(a: &Array3<f32>, b: &Array3<f32>) -> f32 {
    assert_eq!(a.shape(), b.shape());
    a.iter()
        .zip(b.iter())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn check_mind(g: &WgpuBackend, what: &str) {
    for (i, &d) in AWKWARD.iter().chain(&[[12, 9, 14]]).enumerate() {
        let img = image(d, 300 + i as u64);
        for (dilation, radius) in [(1, 1), (2, 2), (1, 0)] {
            let c = CPU
                .download_f32(
                    &CPU.mind_ssc(&CPU.upload_f32(img.view()).unwrap(), dilation, radius)
                        .unwrap(),
                )
                .unwrap();
            let gh = g.upload_f32(img.view()).unwrap();
            let gg = g
                .download_f32(&g.mind_ssc(&gh, dilation, radius).unwrap())
                .unwrap();
            assert_eq!(c.shape(), [d[0], d[1], d[2] * MIND_CHANNELS]);
            let e = max_abs(&gg, &c);
            eprintln!(
                "{what} mind_ssc {d:?} dilation {dilation} radius {radius}: max difference {e:e}"
            );
            assert!(
                e <= 1e-4,
                "{what} mind_ssc {d:?} dilation {dilation} radius {radius}: max difference {e}"
            );
        }
    }
}

#[test]
fn mind_ssc_should_match_reference_backend() {
    let Some(g) = gpu() else { return };
    check_mind(g, "device limits");
    if let Some(s) = gpu_small_slabs() {
        check_mind(s, "small slabs");
    }
    // An empty image gives an empty descriptor on both.
    let e = Array3::<f32>::zeros((0, 3, 4));
    let ge = g.download_f32(&g.mind_ssc(&g.upload_f32(e.view()).unwrap(), 1, 1).unwrap());
    assert_eq!(ge.unwrap().shape(), [0, 3, 4 * MIND_CHANNELS]);
}

#[test]
fn descriptor_grad_should_match_reference_backend() {
    let Some(g) = gpu() else { return };
    let sizes: Vec<[usize; 3]> = AWKWARD.iter().copied().chain([[12, 9, 14]]).collect();
    check_descriptor_grad(g, &sizes);
    // Outputs cut into many chunks: voxels whose three components straddle a chunk border.
    if let Some(s) = gpu_small_slabs() {
        check_descriptor_grad(s, &[[20, 30, 33]]);
    }
}

fn check_descriptor_grad(g: &WgpuBackend, sizes: &[[usize; 3]]) {
    for (i, &d) in sizes.iter().enumerate() {
        let seed = 400 + 10 * i as u64;
        let fixed = CPU
            .mind_ssc(&CPU.upload_f32(image(d, seed).view()).unwrap(), 1, 1)
            .unwrap();
        let moving = CPU
            .mind_ssc(&CPU.upload_f32(image(d, seed + 1).view()).unwrap(), 1, 1)
            .unwrap();
        let (fixed, moving) = (
            CPU.download_f32(&fixed).unwrap(),
            CPU.download_f32(&moving).unwrap(),
        );
        let mut r = rng(seed + 2);
        // Coverage: the last slice unscanned, so some positions do not count.
        let cover = Array3::from_shape_fn((d[0], d[1], d[2]), |(z, _, _)| {
            if z + 1 == d[0] && d[0] > 2 {
                0.0f32
            } else {
                1.0
            }
        });
        let domain = Array3::from_shape_fn((d[0], d[1], d[2]), |_| u8::from(r.random_bool(0.7)));
        for spacing in [1, 2, 3] {
            let pd = param_grid_dims(d, spacing);
            let params =
                Array3::from_shape_fn((3 * pd[0], pd[1], pd[2]), |_| r.random_range(-1.5..1.5f32));
            let hc = |a: &Array3<f32>| CPU.upload_f32(a.view()).unwrap();
            let out = CPU
                .descriptor_grad(
                    &hc(&fixed),
                    &hc(&moving),
                    &hc(&cover),
                    &CPU.upload_u8(domain.view()).unwrap(),
                    &hc(&params),
                    spacing,
                )
                .unwrap();
            let c = CPU.download_f32(&out).unwrap();
            let h = |a: &Array3<f32>| g.upload_f32(a.view()).unwrap();
            let out = g
                .descriptor_grad(
                    &h(&fixed),
                    &h(&moving),
                    &h(&cover),
                    &g.upload_u8(domain.view()).unwrap(),
                    &h(&params),
                    spacing,
                )
                .unwrap();
            let gg = g.download_f32(&out).unwrap();
            let scale = c.iter().fold(0f32, |m, v| m.max(v.abs()));
            let e = max_abs(&gg, &c);
            eprintln!("descriptor_grad {d:?} spacing {spacing}: max difference {e:e} of {scale:e}");
            assert!(
                scale > 0.0 || d.iter().any(|&n| n < 2),
                "{d:?} spacing {spacing}: a gradient of zeros tests nothing"
            );
            assert!(
                e <= 1e-4 * scale.max(1e-3),
                "descriptor_grad {d:?} spacing {spacing}: max difference {e}, largest component {scale}"
            );
        }
    }
}

#[test]
fn ssd_costs_should_match_reference_backend() {
    let Some(g) = gpu() else { return };
    let sizes: Vec<[usize; 3]> = AWKWARD.iter().copied().chain([[6, 8, 7]]).collect();
    check_ssd_costs(g, &sizes);
    if let Some(s) = gpu_small_slabs() {
        check_ssd_costs(s, &[[9, 10, 11]]);
    }
    let desc = g
        .upload_f32(Array3::<f32>::zeros((2, 2, 2 * MIND_CHANNELS)).view())
        .unwrap();
    assert!(g.ssd_costs(&desc, &desc, 17).is_err());
    let odd = g
        .upload_f32(Array3::<f32>::zeros((2, 2, 5)).view())
        .unwrap();
    assert!(g.ssd_costs(&odd, &odd, 1).is_err());
}

fn check_ssd_costs(g: &WgpuBackend, sizes: &[[usize; 3]]) {
    for (i, &d) in sizes.iter().enumerate() {
        let seed = 500 + 10 * i as u64;
        let desc = |s| {
            let h = CPU.mind_ssc(&CPU.upload_f32(image(d, s).view()).unwrap(), 1, 1);
            CPU.download_f32(&h.unwrap()).unwrap()
        };
        let (fixed, moving) = (desc(seed), desc(seed + 1));
        for radius in [0, 1, 3] {
            let (cq, cb) = CPU
                .ssd_costs(
                    &CPU.upload_f32(fixed.view()).unwrap(),
                    &CPU.upload_f32(moving.view()).unwrap(),
                    radius,
                )
                .unwrap();
            let (cq, cb) = (
                CPU.download_u8(&cq).unwrap(),
                CPU.download_f32(&cb).unwrap(),
            );
            let (gq, gb) = g
                .ssd_costs(
                    &g.upload_f32(fixed.view()).unwrap(),
                    &g.upload_f32(moving.view()).unwrap(),
                    radius,
                )
                .unwrap();
            let (gq, gb) = (g.download_u8(&gq).unwrap(), g.download_f32(&gb).unwrap());
            let side = 2 * radius + 1;
            assert_eq!(cq.shape(), [d[0], d[1], d[2] * side * side * side]);
            assert_eq!(gq.shape(), cq.shape());
            let worst_q = gq
                .iter()
                .zip(cq.iter())
                .map(|(a, b)| a.abs_diff(*b))
                .max()
                .unwrap_or(0);
            let off = gq.iter().zip(cq.iter()).filter(|(a, b)| a != b).count();
            let scale = cb.iter().fold(0f32, |m, v| m.max(v.abs()));
            let worst_b = max_abs(&gb, &cb);
            eprintln!(
                "ssd_costs {d:?} radius {radius}: {off} of {} bytes off (worst {worst_q}), bounds max difference {worst_b:e} of {scale:e}",
                cq.len()
            );
            assert!(
                worst_b <= 1e-6 * scale.max(1e-6),
                "{d:?} radius {radius}: bounds differ by {worst_b}"
            );
            assert!(
                worst_q <= 1 && off * 1000 <= cq.len(),
                "{d:?} radius {radius}: {off} bytes differ, worst by {worst_q}"
            );
        }
    }
}

#[test]
fn convex_choose_should_match_reference_backend() {
    let Some(g) = gpu() else { return };
    let sizes: Vec<[usize; 3]> = AWKWARD.iter().copied().chain([[6, 8, 7]]).collect();
    check_convex_choose(g, &sizes);
    if let Some(s) = gpu_small_slabs() {
        check_convex_choose(s, &[[20, 30, 33]]);
    }
}

fn check_convex_choose(g: &WgpuBackend, sizes: &[[usize; 3]]) {
    for (i, &d) in sizes.iter().enumerate() {
        let seed = 600 + 10 * i as u64;
        let desc = |s| {
            let h = CPU.mind_ssc(&CPU.upload_f32(image(d, s).view()).unwrap(), 1, 1);
            CPU.download_f32(&h.unwrap()).unwrap()
        };
        let (fixed, moving) = (desc(seed), desc(seed + 1));
        let mut r = rng(seed + 2);
        for radius in [1, 2] {
            let (q, b) = CPU
                .ssd_costs(
                    &CPU.upload_f32(fixed.view()).unwrap(),
                    &CPU.upload_f32(moving.view()).unwrap(),
                    radius,
                )
                .unwrap();
            let (q, b) = (CPU.download_u8(&q).unwrap(), CPU.download_f32(&b).unwrap());
            let spread = radius as f32;
            let t =
                Array3::from_shape_fn((3 * d[0], d[1], d[2]), |_| r.random_range(-spread..spread));
            let (gq, gb) = (
                g.upload_u8(q.view()).unwrap(),
                g.upload_f32(b.view()).unwrap(),
            );
            let (cq, cb) = (
                CPU.upload_u8(q.view()).unwrap(),
                CPU.upload_f32(b.view()).unwrap(),
            );
            let (gt, ct) = (
                g.upload_f32(t.view()).unwrap(),
                CPU.upload_f32(t.view()).unwrap(),
            );
            for (lambda, with_target) in [(0.0, false), (0.003, true), (0.05, true), (2.0, true)] {
                let c = CPU
                    .convex_choose(&cq, &cb, with_target.then_some(&ct), lambda, radius)
                    .unwrap();
                let c = CPU.download_f32(&c).unwrap();
                let o = g
                    .convex_choose(&gq, &gb, with_target.then_some(&gt), lambda, radius)
                    .unwrap();
                let o = g.download_f32(&o).unwrap();
                assert_eq!(c.shape(), [3 * d[0], d[1], d[2]]);
                let off = o.iter().zip(c.iter()).filter(|(a, b)| a != b).count();
                eprintln!(
                    "convex_choose {d:?} radius {radius} lambda {lambda}: {off} of {} components differ",
                    c.len()
                );
                assert!(
                    off * 1000 <= c.len(),
                    "{d:?} radius {radius} lambda {lambda}: {off} picks differ"
                );
            }
        }
    }
    let b = g
        .upload_f32(Array3::<f32>::zeros((2, 2, 4)).view())
        .unwrap();
    let q = g
        .upload_u8(Array3::<u8>::zeros((2, 2, 2 * 27)).view())
        .unwrap();
    assert!(g.convex_choose(&q, &b, None, 0.0, 1).is_ok());
    assert!(g.convex_choose(&q, &b, None, 0.0, 2).is_err());
    assert!(g.convex_choose(&q, &b, None, f32::NAN, 1).is_err());
    let wrong = g
        .upload_f32(Array3::<f32>::zeros((2, 2, 2)).view())
        .unwrap();
    assert!(g.convex_choose(&q, &b, Some(&wrong), 0.1, 1).is_err());
}

#[test]
fn descriptor_grad_refuses_mismatched_operands() {
    let Some(g) = gpu() else { return };
    let d = [4, 5, 6];
    let desc = g
        .upload_f32(Array3::<f32>::zeros((4, 5, 6 * MIND_CHANNELS)).view())
        .unwrap();
    let cover = g
        .upload_f32(Array3::<f32>::zeros((4, 5, 6)).view())
        .unwrap();
    let domain = g.upload_u8(Array3::<u8>::ones((4, 5, 6)).view()).unwrap();
    let pd = param_grid_dims(d, 2);
    let wrong = g
        .upload_f32(Array3::<f32>::zeros((pd[0], pd[1], pd[2])).view())
        .unwrap();
    assert!(
        g.descriptor_grad(&desc, &desc, &cover, &domain, &wrong, 2)
            .is_err()
    );
    assert!(
        g.descriptor_grad(&desc, &cover, &cover, &domain, &wrong, 2)
            .is_err()
    );
    let params = g
        .upload_f32(Array3::<f32>::zeros((3 * pd[0], pd[1], pd[2])).view())
        .unwrap();
    assert!(
        g.descriptor_grad(&desc, &desc, &cover, &domain, &params, 0)
            .is_err()
    );
    assert!(
        g.descriptor_grad(&desc, &desc, &cover, &domain, &params, 2)
            .is_ok()
    );
}

#[test]
fn registration_on_the_gpu_should_match_reference_backend() {
    let Some(g) = gpu() else { return };
    // A small phantom chest (vessels give the descriptors lung-like texture) and a follow-up
    // moved by breathing-like motion with mass-preserving density.
    let spec = ildtrack_phantom::PhantomSpec {
        dims_zyx: [60, 96, 96],
        spacing_mm: [4.0, 3.6, 3.6],
        ..ildtrack_phantom::PhantomSpec::preset("ild").unwrap_or_default()
    };
    let ph = ildtrack_phantom::generate(&spec);
    let hu = ph.volume;
    let mask = hu.with_data(ph.truth.lungs.mapv(|l| u8::from(l != 0)));
    let f = Frame::of(hu.dims_zyx(), &hu.geometry).unwrap();
    let (lo, hi) = lung_box(&mask.data, &f);
    let d = random_deformation(&mut StdRng::seed_from_u64(11), lo, hi);
    let moving = deform(&hu, &f, &d, None);
    // The follow-up's lungs: the baseline mask moved by the same deformation.
    let as_hu = mask.with_data(mask.data.mapv(|m| i16::from(m) * 1000));
    let moved = deform(&as_hu, &f, &d, None);
    let moving_mask = moved.with_data(moved.data.mapv(|v| u8::from(v > 500)));
    // A 5 mm working grid (the default is 2.5 mm) keeps lavapipe's time in bounds; the kernels
    // are the same.
    let cfg = RegisterConfig {
        working_mm: 5.0,
        ..RegisterConfig::default()
    };
    let t = std::time::Instant::now();
    let on_cpu = register_with(&CPU, &hu, &mask, &moving, &moving_mask, &cfg).unwrap();
    let cpu_s = t.elapsed().as_secs_f64();
    let t = std::time::Instant::now();
    let on_gpu = register_with(g, &hu, &mask, &moving, &moving_mask, &cfg).unwrap();
    let gpu_s = t.elapsed().as_secs_f64();
    let pts = lung_points(&mask.data, &f, 1);
    assert!(pts.len() > 1000, "{} lung points", pts.len());
    let diff: Vec<f64> = pts
        .iter()
        .map(|p| dist(on_gpu.map_mm(*p), on_cpu.map_mm(*p)))
        .collect();
    let worst = diff.iter().copied().fold(0.0, f64::max);
    let mean = diff.iter().sum::<f64>() / diff.len() as f64;
    // The registration worked (else equal maps would prove little): error against the known
    // deformation, on both.
    let tre = |r: &ildtrack_register::Registration| {
        pts.iter()
            .map(|p| dist(r.map_mm(*p), d.inverse(*p)))
            .sum::<f64>()
            / pts.len() as f64
    };
    let (tre_cpu, tre_gpu) = (tre(&on_cpu), tre(&on_gpu));
    let motion = pts.iter().map(|p| dist(*p, d.inverse(*p))).sum::<f64>() / pts.len() as f64;
    eprintln!(
        "registration gpu vs cpu over {} lung points: mean {mean:.4} mm, worst {worst:.4} mm; \
         motion {motion:.2} mm, TRE cpu {tre_cpu:.3} mm, gpu {tre_gpu:.3} mm; {cpu_s:.1} s cpu, \
         {gpu_s:.1} s on {}",
        pts.len(),
        g.adapter_description()
    );
    assert!(
        tre_cpu < 3.0 && tre_cpu < 0.5 * motion,
        "the CPU registration missed: TRE {tre_cpu} mm for a mean motion of {motion} mm"
    );
    assert!(worst <= 0.1, "maps differ by up to {worst} mm");
}
