//! Every kernel of `WgpuBackend` against `CpuBackend` (the reference).
//!
//! Exact for masks, classes, labels, counts, histograms, component infos, resampling and
//! crops. Floats: `distance_mm` within 1e-4 relative (f32 on the GPU vs f64 steps on the CPU);
//! `gaussian` and `gaussian_mix` within 1 HU (f32 sums in a possibly different fused order can round the other
//! way at .5), with at most 1 % of voxels off by 1.

use ildtrack_compute::{Backend, Ball, Connectivity, CpuBackend, MaskOp};
use ildtrack_gpu::WgpuBackend;
use ndarray::Array3;

use crate::common::{AWKWARD, blobby_mask, gpu, gpu_small_slabs, phantom, random_hu, random_u8};

const CPU: CpuBackend = CpuBackend;

fn cpu_u8(a: &Array3<u8>) -> <CpuBackend as Backend>::U8 {
    CPU.upload_u8(a.view()).expect("cpu upload")
}
fn cpu_i16(a: &Array3<i16>) -> <CpuBackend as Backend>::I16 {
    CPU.upload_i16(a.view()).expect("cpu upload")
}

fn first_diff<T: PartialEq + std::fmt::Debug>(a: &Array3<T>, b: &Array3<T>) -> Option<String> {
    if a.shape() != b.shape() {
        return Some(format!("shapes {:?} vs {:?}", a.shape(), b.shape()));
    }
    let n = a.iter().zip(b.iter()).filter(|(x, y)| x != y).count();
    a.indexed_iter()
        .zip(b.iter())
        .find(|((_, x), y)| x != y)
        .map(|((i, x), y)| format!("{n} voxels differ, first at {i:?}: gpu {x:?} vs cpu {y:?}"))
}

#[track_caller]
fn same<T: PartialEq + std::fmt::Debug>(what: &str, gpu: &Array3<T>, cpu: &Array3<T>) {
    if let Some(d) = first_diff(gpu, cpu) {
        panic!("{what}: {d}");
    }
}

fn u8_on_both(
    g: &WgpuBackend,
    a: &Array3<u8>,
) -> (<WgpuBackend as Backend>::U8, <CpuBackend as Backend>::U8) {
    (g.upload_u8(a.view()).expect("gpu upload"), cpu_u8(a))
}

#[test]
fn transfers_round_trip() {
    let Some(g) = gpu() else { return };
    for (i, &d) in AWKWARD.iter().enumerate() {
        let hu = random_hu(d, i as u64);
        let m = random_u8(d, 200, 0.3, 50 + i as u64);
        same(
            "i16 round trip",
            &g.download_i16(&g.upload_i16(hu.view()).unwrap()).unwrap(),
            &hu,
        );
        same(
            "u8 round trip",
            &g.download_u8(&g.upload_u8(m.view()).unwrap()).unwrap(),
            &m,
        );
        // A non-standard layout uploads in logical order.
        let t = hu.clone().reversed_axes();
        let back = g.download_i16(&g.upload_i16(t.view()).unwrap()).unwrap();
        same(
            "transposed upload",
            &back,
            &t.as_standard_layout().to_owned(),
        );
        same(
            "fill_u8",
            &g.download_u8(&g.fill_u8(d, 7).unwrap()).unwrap(),
            &Array3::from_elem((d[0], d[1], d[2]), 7u8),
        );
    }
}

#[test]
fn empty_volumes_are_fine() {
    let Some(g) = gpu() else { return };
    for d in [[0, 3, 4], [2, 0, 5]] {
        let hu = Array3::<i16>::zeros((d[0], d[1], d[2]));
        let gh = g.upload_i16(hu.view()).unwrap();
        let m = g.threshold(&gh, -1000, 0).unwrap();
        assert_eq!(g.download_u8(&m).unwrap().shape(), &d[..]);
        assert_eq!(g.value_counts(&m).unwrap().iter().sum::<u64>(), 0);
        let (l, infos) = g.label_components(&m, Connectivity::Full26).unwrap();
        assert!(infos.is_empty());
        assert_eq!(g.download_u32(&l).unwrap().len(), 0);
        assert_eq!(
            g.download_f32(&g.distance_mm(&m, [1.0; 3]).unwrap())
                .unwrap()
                .len(),
            0
        );
    }
}

#[test]
fn voxelwise_kernels_should_match_reference_backend() {
    let Some(g) = gpu() else { return };
    for (i, &d) in AWKWARD.iter().enumerate() {
        let s = 100 * i as u64;
        let hu = random_hu(d, s);
        let (gh, ch) = (g.upload_i16(hu.view()).unwrap(), cpu_i16(&hu));
        let (ga, ca) = u8_on_both(g, &random_u8(d, 6, 0.4, s + 1));
        let (gb, cb) = u8_on_both(g, &random_u8(d, 5, 0.5, s + 2));
        let (gm, cm) = u8_on_both(g, &random_u8(d, 3, 0.5, s + 3));

        for (lo, hi) in [(-1024, -500), (i16::MIN, -900), (0, 0), (100, -100)] {
            same(
                "threshold",
                &g.download_u8(&g.threshold(&gh, lo, hi).unwrap()).unwrap(),
                &CPU.threshold(&ch, lo, hi).unwrap().0,
            );
        }
        for edges in [
            vec![],
            vec![-950, -700, -250, 100],
            vec![i16::MIN, 0, i16::MAX],
        ] {
            same(
                "classify",
                &g.download_u8(&g.classify(&gh, &ga, &edges).unwrap())
                    .unwrap(),
                &CPU.classify(&ch, &ca, &edges).unwrap().0,
            );
        }
        assert!(
            g.classify(&gh, &ga, &[5, 5]).is_err(),
            "non-increasing edges must be refused"
        );
        for op in [MaskOp::And, MaskOp::Or, MaskOp::AndNot, MaskOp::Xor] {
            same(
                "mask_op",
                &g.download_u8(&g.mask_op(&ga, &gb, op).unwrap()).unwrap(),
                &CPU.mask_op(&ca, &cb, op).unwrap().0,
            );
        }
        same(
            "select",
            &g.download_u8(&g.select(&gm, &ga, &gb).unwrap()).unwrap(),
            &CPU.select(&cm, &ca, &cb).unwrap().0,
        );
        let mut lut = [0u8; 256];
        lut.iter_mut()
            .enumerate()
            .for_each(|(k, v)| *v = (k * 37 % 251) as u8);
        same(
            "map_u8",
            &g.download_u8(&g.map_u8(&ga, &lut).unwrap()).unwrap(),
            &CPU.map_u8(&ca, &lut).unwrap().0,
        );
        let lut2: Vec<u8> = (0..4 * 3).map(|k| (k * 7 % 11) as u8 + 1).collect(); // n_a = 4 < 6 values: pairs outside give 0
        same(
            "combine_u8",
            &g.download_u8(&g.combine_u8(&ga, &gb, 3, &lut2).unwrap())
                .unwrap(),
            &CPU.combine_u8(&ca, &cb, 3, &lut2).unwrap().0,
        );
        let table: Vec<u8> = (0..d[0] * 4).map(|k| (k * 13 % 7) as u8).collect();
        same(
            "map_u8_per_slice",
            &g.download_u8(&g.map_u8_per_slice(&ga, 4, &table).unwrap())
                .unwrap(),
            &CPU.map_u8_per_slice(&ca, 4, &table).unwrap().0,
        );
        assert!(g.map_u8_per_slice(&ga, 4, &table[1..]).is_err());
        let wide: Vec<u8> = (0..d[0] * 300).map(|k| (k * 7 % 13) as u8).collect();
        same(
            "map_u8_per_slice 300 values",
            &g.download_u8(&g.map_u8_per_slice(&ga, 300, &wide).unwrap())
                .unwrap(),
            &CPU.map_u8_per_slice(&ca, 300, &wide).unwrap().0,
        );
        let lut_wide: Vec<u8> = (0..6 * 300).map(|k| (k % 5) as u8).collect();
        same(
            "combine_u8 n_b 300",
            &g.download_u8(&g.combine_u8(&ga, &gb, 300, &lut_wide).unwrap())
                .unwrap(),
            &CPU.combine_u8(&ca, &cb, 300, &lut_wide).unwrap().0,
        );
        // Labels and fields come from other kernels (the trait has no u32/f32 upload).
        let (gl, _) = g.label_components(&gb, Connectivity::Face6).unwrap();
        let (cl, _) = CPU.label_components(&cb, Connectivity::Face6).unwrap();
        let llut: Vec<u8> = (0..5).map(|k| (k * 3 + 1) as u8).collect();
        same(
            "map_labels",
            &g.download_u8(&g.map_labels(&gl, &llut).unwrap()).unwrap(),
            &CPU.map_labels(&cl, &llut).unwrap().0,
        );
        let spacing = [2.5, 0.7, 0.8];
        let (gd, cd) = (
            g.distance_mm(&ga, spacing).unwrap(),
            CPU.distance_mm(&ca, spacing).unwrap(),
        );
        let (gd2, cd2) = (
            g.distance_mm(&gb, spacing).unwrap(),
            CPU.distance_mm(&cb, spacing).unwrap(),
        );
        for (lo, hi) in [(0.5, 2.0), (0.0, 0.0), (1.0, f32::INFINITY)] {
            same(
                "threshold_f32",
                &g.download_u8(&g.threshold_f32(&gd, lo, hi).unwrap())
                    .unwrap(),
                &CPU.threshold_f32(&cd, lo, hi).unwrap().0,
            );
        }
        same(
            "less_equal_f32",
            &g.download_u8(&g.less_equal_f32(&gd, &gd2).unwrap())
                .unwrap(),
            &CPU.less_equal_f32(&cd, &cd2).unwrap().0,
        );
        // Shape mismatches are errors, not panics.
        let other = g.fill_u8([d[0] + 1, d[1], d[2]], 1).unwrap();
        assert!(g.mask_op(&ga, &other, MaskOp::And).is_err());
    }
}

#[test]
fn reductions_should_match_reference_backend() {
    let Some(g) = gpu() else { return };
    for (i, &d) in AWKWARD.iter().enumerate() {
        let s = 200 + i as u64;
        let hu = random_hu(d, s);
        let (gh, ch) = (g.upload_i16(hu.view()).unwrap(), cpu_i16(&hu));
        let (ga, ca) = u8_on_both(g, &random_u8(d, 250, 0.3, s + 1));
        let (gb, cb) = u8_on_both(g, &random_u8(d, 4, 0.3, s + 2));
        let vc = g.value_counts(&ga).unwrap();
        assert_eq!(vc, CPU.value_counts(&ca).unwrap(), "value_counts");
        assert_eq!(vc.iter().sum::<u64>(), d.iter().product::<usize>() as u64);
        assert_eq!(
            g.joint_counts(&ga, &gb, 7, 3).unwrap(),
            CPU.joint_counts(&ca, &cb, 7, 3).unwrap(),
            "joint_counts"
        );
        assert_eq!(
            g.joint_counts(&ga, &gb, 256, 256).unwrap(),
            CPU.joint_counts(&ca, &cb, 256, 256).unwrap(),
            "joint_counts large"
        );
        assert_eq!(
            g.slice_counts(&gb, 3).unwrap(),
            CPU.slice_counts(&cb, 3).unwrap(),
            "slice_counts"
        );
        assert_eq!(
            g.slice_counts(&ga, 300).unwrap(),
            CPU.slice_counts(&ca, 300).unwrap(),
            "slice_counts past 256 values"
        );
        assert_eq!(
            g.joint_counts(&gb, &ga, 2, 300).unwrap(),
            CPU.joint_counts(&cb, &ca, 2, 300).unwrap(),
            "joint_counts n_b > 256"
        );
        for (n_labels, lo, hi) in [(4, -1024, 3071), (1, -50, 50), (3, i16::MIN, i16::MAX)] {
            let gh_ = g.histogram(&gh, &gb, n_labels, lo, hi).unwrap();
            let ch_ = CPU.histogram(&ch, &cb, n_labels, lo, hi).unwrap();
            assert_eq!(gh_, ch_, "histogram {n_labels} labels {lo}..{hi}");
        }
        assert!(g.histogram(&gh, &gb, 0, 0, 1).is_err());
    }
}

#[test]
fn morphology_should_match_reference_backend() {
    let Some(g) = gpu() else { return };
    let balls = [
        Ball::new(1.0, [1.0, 1.0, 1.0]),
        Ball::new(2.0, [2.5, 0.7, 0.8]),
        Ball::disk(1.5, [1.0, 0.75, 0.75]),
        Ball::new(0.0, [1.0, 1.0, 1.0]),
        Ball::new(3.1, [1.25, 0.6, 0.6]),
    ];
    for (i, &d) in AWKWARD.iter().enumerate() {
        let m = blobby_mask(d, 0.45, 300 + i as u64);
        let (gm, cm) = u8_on_both(g, &m);
        for ball in &balls {
            same(
                "dilate",
                &g.download_u8(&g.dilate(&gm, ball).unwrap()).unwrap(),
                &CPU.dilate(&cm, ball).unwrap().0,
            );
            same(
                "erode",
                &g.download_u8(&g.erode(&gm, ball).unwrap()).unwrap(),
                &CPU.erode(&cm, ball).unwrap().0,
            );
            let closed = g.download_u8(&g.close(&gm, ball).unwrap()).unwrap();
            same("close", &closed, &CPU.close(&cm, ball).unwrap().0);
            assert!(
                closed
                    .iter()
                    .zip(m.iter())
                    .all(|(c, o)| *c >= u8::from(*o != 0)),
                "closing must contain the input"
            );
            same(
                "open",
                &g.download_u8(&g.open(&gm, ball).unwrap()).unwrap(),
                &CPU.open(&cm, ball).unwrap().0,
            );
        }
        assert!(g.dilate(&gm, &Ball::new(-1.0, [1.0; 3])).is_err());
        same(
            "fill_holes_2d",
            &g.download_u8(&g.fill_holes_2d(&gm).unwrap()).unwrap(),
            &CPU.fill_holes_2d(&cm).unwrap().0,
        );
    }
}

#[test]
fn components_should_match_reference_backend() {
    let Some(g) = gpu() else { return };
    for (i, &d) in AWKWARD.iter().chain(&[[6, 40, 37]]).enumerate() {
        for fill in [0.35, 0.5] {
            let m = blobby_mask(d, fill, 400 + i as u64);
            let (gm, cm) = u8_on_both(g, &m);
            for conn in [
                Connectivity::Face6,
                Connectivity::Full26,
                Connectivity::Slice4,
                Connectivity::Slice8,
            ] {
                let (gl, gi) = g.label_components(&gm, conn).unwrap();
                let (cl, ci) = CPU.label_components(&cm, conn).unwrap();
                same(
                    &format!("labels {conn:?}"),
                    &g.download_u32(&gl).unwrap(),
                    &cl.0,
                );
                assert_eq!(gi, ci, "component infos {conn:?}");
            }
        }
    }
    // Spirals need many propagation rounds: one long snake through a slice.
    let (ny, nx) = (31usize, 29usize);
    let snake = Array3::from_shape_fn((2, ny, nx), |(_, y, x)| {
        u8::from(y % 2 == 0 || (y % 4 == 1 && x == nx - 1) || (y % 4 == 3 && x == 0))
    });
    let (gm, cm) = u8_on_both(g, &snake);
    let (gl, gi) = g.label_components(&gm, Connectivity::Face6).unwrap();
    let (cl, ci) = CPU.label_components(&cm, Connectivity::Face6).unwrap();
    same("snake labels", &g.download_u32(&gl).unwrap(), &cl.0);
    assert_eq!(gi, ci);
    assert_eq!(ci.len(), 1, "the snake is one component");
    assert_eq!(
        gi[0].voxels,
        snake.iter().filter(|v| **v != 0).count() as u64
    );
}

#[test]
fn fields_should_match_reference_backend() {
    let Some(g) = gpu() else { return };
    for (i, &d) in AWKWARD.iter().enumerate() {
        let hu = random_hu(d, 500 + i as u64);
        let (gh, ch) = (g.upload_i16(hu.view()).unwrap(), cpu_i16(&hu));
        for (sigma, spacing) in [
            ([1.0, 1.0, 1.0], [1.0, 1.0, 1.0]),
            ([0.0, 1.5, 0.7], [2.5, 0.7, 0.8]),
            ([3.0, 3.0, 3.0], [1.25, 0.6, 0.6]),
        ] {
            let gs = g
                .download_i16(&g.gaussian(&gh, sigma, spacing).unwrap())
                .unwrap();
            let cs = CPU.gaussian(&ch, sigma, spacing).unwrap().0;
            let off = gs.iter().zip(cs.iter()).filter(|(a, b)| a != b).count();
            let worst = max_abs_diff(&gs, &cs);
            assert!(
                worst <= 1 && off * 100 <= gs.len().max(100),
                "gaussian {sigma:?}: {off} voxels off, worst {worst} HU"
            );
        }
        // Band decomposition and recomposition (gains below and above 1, a scaled band alone),
        // as the harmonization uses them.
        for (sigmas, weights, spacing) in [
            (
                vec![0.6, 1.0, 1.7],
                vec![0.25f32, 0.15, 0.3, 0.3],
                [5.0, 0.84, 0.84],
            ),
            (vec![0.5, 0.9], vec![0.0, 16.0, -16.0], [1.0, 0.65, 0.7]),
            (vec![], vec![1.0], [1.0, 1.0, 1.0]),
        ] {
            let gs = g
                .download_i16(&g.gaussian_mix(&gh, &sigmas, &weights, spacing).unwrap())
                .unwrap();
            let cs = CPU.gaussian_mix(&ch, &sigmas, &weights, spacing).unwrap().0;
            let off = gs.iter().zip(cs.iter()).filter(|(a, b)| a != b).count();
            let worst = max_abs_diff(&gs, &cs);
            assert!(
                worst <= 1 && off * 100 <= gs.len().max(100),
                "gaussian_mix {sigmas:?} {weights:?}: {off} voxels off, worst {worst} HU"
            );
        }
        // The stages on their own (the CPU's fused cascade against the GPU's composition).
        let gst = g
            .gaussian_stages(&gh, &[0.5, 0.9], 16.0, [1.0, 0.65, 0.7])
            .unwrap();
        let cst = CPU
            .gaussian_stages(&ch, &[0.5, 0.9], 16.0, [1.0, 0.65, 0.7])
            .unwrap();
        for (gs, cs) in gst.iter().zip(&cst) {
            let worst = max_abs_diff(&g.download_i16(gs).unwrap(), &cs.0);
            assert!(worst <= 1, "gaussian_stages: worst {worst}");
        }
        let m = blobby_mask(d, 0.6, 600 + i as u64);
        let (gm, cm) = u8_on_both(g, &m);
        for spacing in [[1.0, 1.0, 1.0], [2.5, 0.7, 0.8]] {
            let gd = g
                .download_f32(&g.distance_mm(&gm, spacing).unwrap())
                .unwrap();
            let cd = CPU.distance_mm(&cm, spacing).unwrap().0;
            for (a, b) in gd.iter().zip(cd.iter()) {
                let ok = (a.is_infinite() && b.is_infinite())
                    || (a - b).abs() <= 1e-4 * b.abs().max(1.0);
                assert!(ok, "distance_mm {spacing:?}: gpu {a} vs cpu {b}");
            }
        }
        // No background at all: infinite distances.
        let full = g.fill_u8(d, 1).unwrap();
        assert!(
            g.download_f32(&g.distance_mm(&full, [1.0; 3]).unwrap())
                .unwrap()
                .iter()
                .all(|v| v.is_infinite())
        );
    }
}

#[test]
fn resampling_and_crops_should_match_reference_backend() {
    let Some(g) = gpu() else { return };
    for (i, &d) in AWKWARD.iter().enumerate() {
        let hu = random_hu(d, 700 + i as u64);
        let (gh, ch) = (g.upload_i16(hu.view()).unwrap(), cpu_i16(&hu));
        for f in [[1, 2, 2], [2, 3, 4], [3, 1, 1]] {
            let gd = g.downsample_mean(&gh, f).unwrap();
            same(
                "downsample_mean",
                &g.download_i16(&gd).unwrap(),
                &CPU.downsample_mean(&ch, f).unwrap().0,
            );
            let small = random_u8(
                [
                    d[0].div_ceil(f[0]),
                    d[1].div_ceil(f[1]),
                    d[2].div_ceil(f[2]),
                ],
                9,
                0.2,
                7,
            );
            let (gs, cs) = u8_on_both(g, &small);
            same(
                "upsample_nearest",
                &g.download_u8(&g.upsample_nearest(&gs, f, d).unwrap())
                    .unwrap(),
                &CPU.upsample_nearest(&cs, f, d).unwrap().0,
            );
        }
        assert!(g.downsample_mean(&gh, [0, 1, 1]).is_err());
        let (gm, cm) = u8_on_both(g, &random_u8(d, 9, 0.2, 800 + i as u64));
        let (min, bx) = (
            [d[0] / 3, 1, d[2] / 2],
            [d[0] - d[0] / 3, d[1] - 2, d[2] - d[2] / 2],
        );
        same(
            "crop_i16",
            &g.download_i16(&g.crop_i16(&gh, min, bx).unwrap()).unwrap(),
            &CPU.crop_i16(&ch, min, bx).unwrap().0,
        );
        let gc = g.crop_u8(&gm, min, bx).unwrap();
        let cc = CPU.crop_u8(&cm, min, bx).unwrap();
        same("crop_u8", &g.download_u8(&gc).unwrap(), &cc.0);
        same(
            "pad_u8",
            &g.download_u8(&g.pad_u8(&gc, d, min).unwrap()).unwrap(),
            &CPU.pad_u8(&cc, d, min).unwrap().0,
        );
        assert!(
            g.crop_u8(&gm, [0, 0, 1], d).is_err(),
            "a box past the border must be refused"
        );
    }
}

/// A phantom of 64 x 128 x 128 voxels through 64 KiB bindings: hundreds of slabs, halos
/// across slab borders, labels spread over four pages.
#[test]
fn phantom_through_small_slabs_should_match_reference_backend() {
    let Some(g) = gpu_small_slabs() else { return };
    assert_eq!(g.max_binding_bytes(), crate::common::SMALL_SLAB_BYTES);
    let d = [64, 128, 128];
    let hu = phantom(d, 9);
    let spacing = [2.5, 0.7, 0.7];
    let (gh, ch) = (g.upload_i16(hu.view()).unwrap(), cpu_i16(&hu));
    let gt = g.threshold(&gh, -1024, -400).unwrap();
    let ct = CPU.threshold(&ch, -1024, -400).unwrap();
    same("threshold", &g.download_u8(&gt).unwrap(), &ct.0);
    let (gl, gi) = g.label_components(&gt, Connectivity::Full26).unwrap();
    let (cl, ci) = CPU.label_components(&ct, Connectivity::Full26).unwrap();
    same("labels", &g.download_u32(&gl).unwrap(), &cl.0);
    assert_eq!(gi, ci);
    let ball = Ball::new(2.0, spacing);
    let gc = g.close(&gt, &ball).unwrap();
    let cc = CPU.close(&ct, &ball).unwrap();
    same("close", &g.download_u8(&gc).unwrap(), &cc.0);
    same(
        "fill_holes_2d",
        &g.download_u8(&g.fill_holes_2d(&gc).unwrap()).unwrap(),
        &CPU.fill_holes_2d(&cc).unwrap().0,
    );
    let classes = g.classify(&gh, &gc, &[-950, -700, -250]).unwrap();
    let cclasses = CPU.classify(&ch, &cc, &[-950, -700, -250]).unwrap();
    assert_eq!(
        g.histogram(&gh, &classes, 5, -1024, 3071).unwrap(),
        CPU.histogram(&ch, &cclasses, 5, -1024, 3071).unwrap()
    );
    assert_eq!(
        g.slice_counts(&classes, 5).unwrap(),
        CPU.slice_counts(&cclasses, 5).unwrap()
    );
    let gd = g
        .download_f32(&g.distance_mm(&gc, spacing).unwrap())
        .unwrap();
    let cd = CPU.distance_mm(&cc, spacing).unwrap().0;
    let worst = gd
        .iter()
        .zip(cd.iter())
        .filter(|(a, b)| !(a.is_infinite() && b.is_infinite()))
        .map(|(a, b)| (a - b).abs() / b.abs().max(1.0))
        .fold(0.0f32, f32::max);
    assert!(worst <= 1e-4, "distance_mm relative error {worst}");
    let gs = g
        .download_i16(&g.gaussian(&gh, [2.0, 2.0, 2.0], spacing).unwrap())
        .unwrap();
    let cs = CPU.gaussian(&ch, [2.0, 2.0, 2.0], spacing).unwrap().0;
    let worst = max_abs_diff(&gs, &cs);
    assert!(worst <= 1, "gaussian worst difference {worst} HU");
    // Band passes across slab borders (in-plane halos only).
    let gm = g
        .download_i16(
            &g.gaussian_mix(&gh, &[0.8, 1.5], &[0.2, 0.3, 0.5], spacing)
                .unwrap(),
        )
        .unwrap();
    let cm = CPU
        .gaussian_mix(&ch, &[0.8, 1.5], &[0.2, 0.3, 0.5], spacing)
        .unwrap()
        .0;
    let worst = max_abs_diff(&gm, &cm);
    assert!(worst <= 1, "gaussian_mix worst difference {worst} HU");
    let gds = g.downsample_mean(&gh, [2, 4, 4]).unwrap();
    same(
        "downsample_mean",
        &g.download_i16(&gds).unwrap(),
        &CPU.downsample_mean(&ch, [2, 4, 4]).unwrap().0,
    );
}

#[test]
fn probe_and_description_agree_with_the_backend() {
    let Some(g) = gpu() else { return };
    let p = ildtrack_gpu::probe().expect("an adapter was opened, so probe must find one");
    assert_eq!(p.is_software, g.is_software());
    assert_eq!(g.device_description(), g.adapter_description());
    assert_eq!(g.name(), "gpu");
    assert!(g.max_binding_bytes() <= g.limits().max_storage_buffer_binding_size);
    let gbs = g.measure_copy_bandwidth_gbs(8 << 20, 2).unwrap();
    assert!(gbs.is_finite() && gbs > 0.0, "copy bandwidth {gbs}");
    eprintln!(
        "copy bandwidth {gbs:.1} GB/s on {}",
        g.adapter_description()
    );
    // The shader copy probe checks its own copy at this size (a pattern, not zeros).
    let shader = g
        .measure_shader_copy_bandwidth_gbs((8 << 20) + 12, 2)
        .unwrap();
    assert!(
        shader.is_finite() && shader > 0.0,
        "shader copy bandwidth {shader}"
    );
    g.warm_up().unwrap();
}

/// Largest |a - b| (HU) between two i16 volumes.
fn max_abs_diff(a: &Array3<i16>, b: &Array3<i16>) -> i32 {
    a.iter()
        .zip(b.iter())
        .map(|(x, y)| (i32::from(*x) - i32::from(*y)).abs())
        .max()
        .unwrap_or(0)
}
