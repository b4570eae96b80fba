//! Registration against known answers: an identical pair, a feet-first copy, refusals, and a
//! real series deformed by breathing-like motion with a new lesion (issue 18's targets).

use ildtrack_register::synthetic::{
    Deformation, Density, Resample, cubic_in_plane, deform, deform_with, dist, lung_box,
    lung_points, random_deformation, random_turn,
};
use ildtrack_register::{Frame, RegisterConfig, register};
use ildtrack_volume::{Geometry, Volume};
use ndarray::Array3;
use rand::{SeedableRng, rngs::StdRng};

/// A smooth random lung-like texture with a "chest" around it: HU, its lung mask.
fn textured(dims: [usize; 3], spacing: [f64; 3], seed: u64) -> (Volume<i16>, Volume<u8>) {
    use rand::Rng;
    let mut rng = StdRng::seed_from_u64(seed);
    let blobs: Vec<([f64; 3], f64, f64)> = (0..120)
        .map(|_| {
            (
                [0, 1, 2].map(|k| rng.random_range(0.0..dims[k] as f64 * spacing[k])),
                rng.random_range(3.0..9.0),
                rng.random_range(-300.0..300.0),
            )
        })
        .collect();
    let g = Geometry::axial(spacing);
    let centre = [0, 1, 2].map(|k| 0.5 * (dims[k] - 1) as f64 * spacing[k]);
    let half = [0, 1, 2].map(|k| 0.32 * dims[k] as f64 * spacing[k]);
    let inside = |p: [f64; 3]| (0..3).all(|k| (p[k] - centre[k]).abs() < half[k]);
    let hu = Array3::from_shape_fn((dims[0], dims[1], dims[2]), |(z, y, x)| {
        let p = [
            z as f64 * spacing[0],
            y as f64 * spacing[1],
            x as f64 * spacing[2],
        ];
        let mut v = if inside(p) { -800.0 } else { 40.0 };
        for (c, s, a) in &blobs {
            let d2: f64 = (0..3).map(|k| (p[k] - c[k]).powi(2)).sum();
            v += a * (-0.5 * d2 / (s * s)).exp();
        }
        v.round() as i16
    });
    let mask = Array3::from_shape_fn((dims[0], dims[1], dims[2]), |(z, y, x)| {
        inside([
            z as f64 * spacing[0],
            y as f64 * spacing[1],
            x as f64 * spacing[2],
        ]) as u8
    });
    (Volume::new(hu, g), Volume::new(mask, g))
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

#[test]
fn identical_scans_map_onto_themselves() {
    let (hu, mask) = textured([40, 56, 56], [2.5, 2.0, 2.0], 5);
    let r = register(&hu, &mask, &hu, &mask, &RegisterConfig::default()).expect("register");
    let f = Frame::of(hu.dims_zyx(), &hu.geometry).expect("frame");
    let e: Vec<f64> = lung_points(&mask.data, &f, 1)
        .iter()
        .map(|p| dist(r.map_mm(*p), *p))
        .collect();
    assert!(
        mean(&e) <= 0.2,
        "identical pair: mean error {:.3} mm",
        mean(&e)
    );
    assert_eq!(r.quality.folding_pct, 0.0);
    assert!(r.quality.lung_dice > 0.99);
}

#[test]
fn a_feet_first_copy_registers_onto_the_head_first_original() {
    let (hu, mask) = textured([36, 48, 48], [2.5, 2.0, 2.0], 3);
    // The same scan stored bottom slice first: z index runs towards the feet.
    let mut g = hu.geometry;
    g.direction[0] = [0.0, 0.0, -1.0];
    let flip = |a: &Array3<i16>| {
        let mut b = a.clone();
        b.invert_axis(ndarray::Axis(0));
        b.to_owned()
    };
    let hu_ff = Volume::new(flip(&hu.data), g);
    let mut m = mask.data.clone();
    m.invert_axis(ndarray::Axis(0));
    let mask_ff = Volume::new(m.to_owned(), g);
    let r = register(&hu, &mask, &hu_ff, &mask_ff, &RegisterConfig::default()).expect("register");
    let n = hu.dims_zyx()[0] as f64;
    let f = Frame::of(hu.dims_zyx(), &hu.geometry).expect("frame");
    let mut err = Vec::new();
    for p in lung_points(&mask.data, &f, 2) {
        let i = f.to_index(p);
        let j = r.map_index(i);
        err.push(
            ((j[0] - (n - 1.0 - i[0])).powi(2) + (j[1] - i[1]).powi(2) + (j[2] - i[2]).powi(2))
                .sqrt(),
        );
    }
    assert!(mean(&err) < 0.2, "voxel error {:.3}", mean(&err));
}

#[test]
fn oblique_and_empty_inputs_are_refused_with_a_reason() {
    let (hu, mask) = textured([8, 16, 16], [2.5, 2.0, 2.0], 1);
    let mut g = hu.geometry;
    let h = std::f64::consts::FRAC_1_SQRT_2;
    g.direction[2] = [h, h, 0.0];
    let oblique = Volume::new(hu.data.clone(), g);
    let e = register(
        &hu,
        &mask,
        &oblique,
        &mask.clone(),
        &RegisterConfig::default(),
    )
    .expect_err("oblique");
    assert!(e.to_string().contains("not an axial orientation"), "{e}");
    let empty = mask.with_data(Array3::zeros(mask.data.dim()));
    let e = register(&hu, &mask, &hu, &empty, &RegisterConfig::default()).expect_err("empty");
    assert!(
        e.to_string().contains("follow-up lung mask is empty"),
        "{e}"
    );
}

/// Issue 18's targets on a real series: breathing-like motion (diaphragm 10–30 mm, chest wall
/// 5–10 mm, smooth bumps), mass-preserving density, a new ground-glass lesion, and where
/// `turned` the patient lying turned (`random_turn`); the follow-up's lungs segmented again.
/// Every baseline lung point counts, also one whose counterpart the follow-up did not scan
/// (`registration_eval` leaves those out and says how many).
fn meets_the_targets_on_a_real_series(seed: u64, turned: bool) {
    let Some(data) =
        ildtrack_dicom::shared_data::for_test(std::path::Path::new(env!("CARGO_MANIFEST_DIR")))
    else {
        return;
    };
    let path = data.join("lung-pet-ct-dx/A0002-kernel-B40f");
    let s = ildtrack_dicom::load(&path, &ildtrack_dicom::LoadOptions::default()).expect("load");
    let lungs = |hu: &Volume<i16>| {
        ildtrack_analysis::analyze(
            &ildtrack_compute::CpuBackend::new(),
            hu,
            &s.meta,
            &[],
            &ildtrack_analysis::AnalysisConfig::default(),
            &|_, _| {},
        )
        .expect("analyze")
        .lungs
    };
    let mask = lungs(&s.volume);
    let f = Frame::of(s.volume.dims_zyx(), &s.volume.geometry).expect("frame");
    let (lo, hi) = lung_box(&mask.data, &f);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut d = random_deformation(&mut rng, lo, hi);
    if turned {
        d.turns = random_turn(&mut rng, lo, hi).to_vec();
    }
    let pts = lung_points(&mask.data, &f, 2);
    let lesion = pts[pts.len() / 3];
    let moving = deform(&s.volume, &f, &d, Some((lesion, 15.0)));
    let mmask = lungs(&moving);
    let r = register(
        &s.volume,
        &mask,
        &moving,
        &mmask,
        &RegisterConfig::default(),
    )
    .expect("register");
    let mut tre: Vec<f64> = pts
        .iter()
        .map(|p| dist(r.map_mm(*p), d.inverse(*p)))
        .collect();
    let motion: Vec<f64> = pts.iter().map(|p| dist(d.inverse(*p), *p)).collect();
    tre.sort_by(|a, b| a.total_cmp(b));
    let p95 = tre[(tre.len() - 1) * 95 / 100];
    eprintln!(
        "turns {:?}; motion mean {:.1} max {:.1} mm; TRE mean {:.2} p95 {:.2} mm; folding {:.3} %; Dice {:.3}",
        d.turns.iter().map(|t| t.degrees).collect::<Vec<_>>(),
        mean(&motion),
        motion.iter().copied().fold(0.0, f64::max),
        mean(&tre),
        p95,
        r.quality.folding_pct,
        r.quality.lung_dice
    );
    assert!(mean(&tre) <= 1.5, "TRE mean {:.2} mm", mean(&tre));
    assert!(p95 <= 3.5, "TRE p95 {p95:.2} mm");
    assert!(
        r.quality.folding_pct < 0.1,
        "folding {} %",
        r.quality.folding_pct
    );
}

/// Seed 41 was not looked at while the method was developed (seeds 1–8 were).
#[test]
fn meets_the_targets_on_a_real_series_with_known_breathing_motion() {
    meets_the_targets_on_a_real_series(41, false);
}

/// The patient also lying turned (rolled 8–18°, tilted up to 6°): without the first
/// alignment's turn a 15° roll gave TRE 2.8 mm mean, 9.2 mm p95. Seed 43 was drawn once
/// for this test (the turn search was developed on hand-set turns of 0–15°).
#[test]
fn meets_the_targets_on_a_patient_lying_turned() {
    meets_the_targets_on_a_real_series(43, true);
}

/// The same pair gives the same map bit for bit on one thread and on three: sums over voxels
/// are taken in a fixed order, so `track.json` does not change between runs or machines with
/// another core count.
#[test]
fn the_map_does_not_depend_on_the_thread_count() {
    let (hu, mask) = textured([36, 48, 48], [2.5, 2.0, 2.0], 11);
    let f = Frame::of(hu.dims_zyx(), &hu.geometry).expect("frame");
    let (lo, hi) = lung_box(&mask.data, &f);
    let d = random_deformation(&mut StdRng::seed_from_u64(12), lo, hi);
    let moving = deform(&hu, &f, &d, None);
    let run = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("pool")
            .install(|| register(&hu, &mask, &moving, &mask, &RegisterConfig::default()))
            .expect("register")
    };
    let (a, b) = (run(1), run(3));
    assert_eq!(
        a.disp, b.disp,
        "displacements differ between 1 and 3 threads"
    );
    assert_eq!(a.affine, b.affine);
    assert_eq!(
        a.quality.similarity_after.to_bits(),
        b.quality.similarity_after.to_bits()
    );
}

/// The breath pairs' control: the same motion without the density change, and `deform` as it
/// was (mass preserved, trilinear).
#[test]
fn the_control_follow_up_moves_like_a_breath_but_keeps_its_density() {
    let (hu, mask) = textured([24, 32, 32], [5.0, 2.0, 2.0], 5);
    let f = Frame::of(hu.dims_zyx(), &hu.geometry).expect("frame");
    let (lo, hi) = lung_box(&mask.data, &f);
    let d = Deformation::breathing(lo, hi, -15.0, 5.0);
    let breath = deform(&hu, &f, &d, None);
    let same = deform_with(&hu, &f, &d, None, Density::Preserved, Resample::Trilinear);
    assert_eq!(breath.data, same.data, "deform changed behaviour");
    let control = deform_with(&hu, &f, &d, None, Density::Unchanged, Resample::Trilinear);
    // Expiration: lung-like voxels of the breath are denser than the control's; everything
    // else is the same resampled value.
    let (mut diff, mut n) = (0.0, 0usize);
    for (&b, &c) in breath.data.iter().zip(&control.data) {
        if c < -200 {
            if c > -1020 {
                diff += f64::from(b) - f64::from(c);
                n += 1;
            }
        } else if c > -200 {
            // (-200 itself may be a rounded -200.4, which the breath scales.)
            assert_eq!(b, c, "a non-lung voxel changed density");
        }
    }
    assert!(n > 1000, "{n} lung voxels");
    assert!(
        diff / n as f64 > 5.0,
        "breath − control {} HU",
        diff / n as f64
    );
    // No motion: the control is the input (within the output's HU range), whichever resampler.
    for r in [Resample::Trilinear, Resample::CubicInPlane] {
        let still = deform_with(&hu, &f, &Deformation::none(), None, Density::Unchanged, r);
        let moved = still
            .data
            .iter()
            .zip(&hu.data)
            .filter(|(a, b)| **a != (**b).clamp(-1024, 3071))
            .map(|(a, b)| format!("{a} vs {b}"))
            .take(5)
            .collect::<Vec<_>>();
        assert!(moved.is_empty(), "{r:?} changed a still scan: {moved:?}");
    }
}

/// Catmull-Rom in-plane: exact on the grid and on a linear ramp, no overshoot at a step.
#[test]
fn the_cubic_resampler_is_exact_on_ramps_and_does_not_ring() {
    let ramp = Array3::from_shape_fn((3, 8, 8), |(z, y, x)| {
        (10 * z) as f32 + 3.0 * y as f32 - 2.0 * x as f32
    });
    for i in [[1.0, 3.0, 4.0], [0.5, 3.25, 4.75], [1.9, 2.6, 5.1]] {
        let want = 10.0 * i[0] + 3.0 * i[1] - 2.0 * i[2];
        let got = cubic_in_plane(&ramp, i).expect("inside") as f64;
        assert!((got - want).abs() < 1e-3, "{i:?}: {got} vs {want}");
    }
    assert!(cubic_in_plane(&ramp, [0.0, -0.6, 2.0]).is_none());
    let step = Array3::from_shape_fn((2, 8, 8), |(_, _, x)| if x < 4 { -850.0 } else { 50.0 });
    for k in 0..=20 {
        let x = 2.0 + 0.2 * k as f64;
        let v = cubic_in_plane(&step, [0.5, 4.0, x]).expect("inside");
        assert!((-850.0..=50.0).contains(&v), "x {x}: {v} overshoots");
    }
}
