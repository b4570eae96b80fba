//! Integration tests of the phantom: truth consistent with voxels, anatomy variants,
//! determinism, DICOM round trips (dicom-object and the project's loader) and the demo script.

use dicom_dictionary_std::tags;
use ildtrack_phantom::*;
use ildtrack_volume::OUTSIDE_FOV_HU;
use ndarray::{Array3, Zip};
use std::path::Path;

/// A spec on a coarse grid that still covers the whole chest.
fn small(mut spec: PhantomSpec) -> PhantomSpec {
    spec.dims_zyx = [100, 160, 160];
    spec.spacing_mm = [3.0, 2.5, 2.5];
    spec
}

fn count<T: Copy>(a: &Array3<T>, f: impl Fn(T) -> bool) -> usize {
    a.iter().filter(|&&v| f(v)).count()
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

#[test]
fn truth_volumes_are_counted_from_the_masks() {
    let ph = generate(&small(PhantomSpec::ild()));
    let t = &ph.truth;
    let vml = ph.volume.geometry.voxel_volume_ml();
    assert!(close(t.voxel_ml, vml, 1e-12));
    let right = count(&t.lungs, |v| v == 1) as f64 * vml;
    let left = count(&t.lungs, |v| v == 2) as f64 * vml;
    assert!(close(t.lung_ml[0], right, 1e-6) && close(t.lung_ml[1], left, 1e-6));
    assert!(close(t.ggo_ml, count(&t.ggo, |v| v) as f64 * vml, 1e-6));
    assert!(close(
        t.consolidation_ml,
        count(&t.consolidation, |v| v) as f64 * vml,
        1e-6
    ));
    assert!(close(
        t.vessel_ml,
        count(&t.vessels, |v| v) as f64 * vml,
        1e-6
    ));
    assert!(close(
        t.airway_ml,
        count(&t.airways, |v| v) as f64 * vml,
        1e-6
    ));
    assert!(t.ggo_ml > 10.0 && t.consolidation_ml > 1.0 && t.vessel_ml > 10.0 && t.airway_ml > 5.0);
    assert!(t.bronchus_wall_ml > 0.5 && t.bronchus_lumen_ml > 0.5);

    // GGO, consolidation and vessels are disjoint subsets of the lungs; airways are not lung.
    let mut bad = 0usize;
    Zip::from(&t.lungs)
        .and(&t.ggo)
        .and(&t.consolidation)
        .and(&t.vessels)
        .and(&t.airways)
        .for_each(|&l, &g, &c, &v, &a| {
            let n = g as u8 + c as u8 + v as u8;
            if n > 1 || (n == 1 && l == 0) || (a && l != 0) {
                bad += 1;
            }
        });
    assert_eq!(bad, 0);

    // Zones partition each lung.
    for side in [Side::Right, Side::Left] {
        let s = &t.per_side[side.index()];
        let zones: Vec<&RegionTruth> = [Zone::Upper, Zone::Middle, Zone::Lower]
            .iter()
            .map(|&z| &t.per_zone[Truth::zone_index(side, z)])
            .collect();
        let sum = |f: fn(&RegionTruth) -> f64| zones.iter().map(|r| f(r)).sum::<f64>();
        assert!(close(sum(|r| r.lung_ml), s.lung_ml, 1e-6));
        assert!(close(sum(|r| r.ggo_ml), s.ggo_ml, 1e-6));
        assert!(close(sum(|r| r.consolidation_ml), s.consolidation_ml, 1e-6));
        for r in &zones {
            assert!(
                r.lung_ml > 0.15 * s.lung_ml,
                "each third of the height holds lung"
            );
        }
    }
    // Per-zone recount from the masks with Truth::zone_of_slice.
    let [nz, _, _] = ph.volume.dims_zyx();
    let mut ggo_zone = [0usize; 6];
    for z in 0..nz {
        for side in [Side::Right, Side::Left] {
            let Some(zone) = t.zone_of_slice(side, z) else {
                continue;
            };
            let n = Zip::from(t.lungs.index_axis(ndarray::Axis(0), z))
                .and(t.ggo.index_axis(ndarray::Axis(0), z))
                .fold(0usize, |acc, &l, &g| {
                    acc + (l == side.label() && g) as usize
                });
            ggo_zone[Truth::zone_index(side, zone)] += n;
        }
    }
    for i in 0..6 {
        assert!(
            close(ggo_zone[i] as f64 * vml, t.per_zone[i].ggo_ml, 1e-6),
            "zone {}",
            ZONE_NAMES[i]
        );
    }
}

#[test]
fn voxel_values_match_the_truth_classes() {
    let mut spec = small(PhantomSpec::ild());
    spec.noise_sd_hu = 0.0;
    let ph = generate(&spec);
    let t = &ph.truth;
    let v = &ph.volume.data;
    let mean_where = |m: &Array3<bool>| {
        let (mut s, mut n) = (0f64, 0usize);
        Zip::from(v).and(m).for_each(|&h, &b| {
            if b {
                s += h as f64;
                n += 1;
            }
        });
        s / n.max(1) as f64
    };
    let ggo = mean_where(&t.ggo);
    let cons = mean_where(&t.consolidation);
    let ves = mean_where(&t.vessels);
    let air = mean_where(&t.airways);
    assert!((-560.0..-440.0).contains(&ggo), "ggo mean {ggo}");
    assert!((0.0..40.0).contains(&cons), "consolidation mean {cons}");
    assert!((30.0..50.0).contains(&ves), "vessel mean {ves}");
    assert!(air < -990.0, "airway mean {air}");
    // Normal parenchyma: lung, not in any class, not airway lumen.
    let (mut s, mut n) = (0f64, 0usize);
    let mut inside_range = 0usize;
    Zip::from(v)
        .and(&t.lungs)
        .and(&t.ggo)
        .and(&t.consolidation)
        .and(&t.vessels)
        .for_each(|&h, &l, &g, &c, &ve| {
            if l != 0 && !g && !c && !ve && h > -990 {
                s += h as f64;
                n += 1;
                inside_range += (-950..-700).contains(&h) as usize;
            }
        });
    let mean = s / n as f64;
    assert!((-880.0..-820.0).contains(&mean), "parenchyma mean {mean}");
    assert!(
        inside_range as f64 > 0.97 * n as f64,
        "parenchyma stays in the normal class"
    );
    // Outside the reconstruction circle: padding marker and never lung.
    let outside = count(v, |h| h == OUTSIDE_FOV_HU);
    assert!(outside > 0);
    Zip::from(v)
        .and(&t.lungs)
        .for_each(|&h, &l| assert!(!(h == OUTSIDE_FOV_HU && l != 0)));
    // Inside the FOV HU are clamped to the CT range.
    assert!(
        v.iter()
            .all(|&h| h == OUTSIDE_FOV_HU || (-1024..=3071).contains(&h))
    );
}

#[test]
fn default_adult_has_realistic_lung_volumes() {
    let ph = generate(&PhantomSpec::small());
    let t = &ph.truth;
    let total = t.total_lung_ml();
    assert!((5000.0..6200.0).contains(&total), "total {total}");
    assert!(t.lung_ml[0] > t.lung_ml[1], "right lung larger");
    assert!(t.affected_ml() == 0.0);
    let vessel_pct = 100.0 * t.vessel_ml / total;
    assert!((1.0..8.0).contains(&vessel_pct), "vessel {vessel_pct} %");
    // Inspiration: lung volume follows lung_scale roughly linearly.
    let half = generate(&PhantomSpec {
        lung_scale: 0.8,
        ..PhantomSpec::small()
    });
    let ratio = half.truth.total_lung_ml() / total;
    assert!((0.72..0.88).contains(&ratio), "ratio {ratio}");
}

#[test]
fn generation_is_deterministic_and_seeded() {
    let spec = PhantomSpec {
        dims_zyx: [40, 96, 96],
        spacing_mm: [6.0, 4.0, 4.0],
        ..PhantomSpec::ild()
    };
    let a = generate(&spec);
    let b = generate(&spec);
    assert_eq!(a.volume.data, b.volume.data);
    assert_eq!(a.truth.lungs, b.truth.lungs);
    // Another noise seed with the same anatomy: same truth, different voxels.
    let c = generate(&PhantomSpec {
        seed: 99,
        anatomy_seed: Some(spec.seed),
        ..spec.clone()
    });
    assert_eq!(a.truth.lungs, c.truth.lungs);
    assert_eq!(a.truth.vessels, c.truth.vessels);
    assert_ne!(a.volume.data, c.volume.data);
    // Another anatomy seed: another vessel tree.
    let d = generate(&PhantomSpec {
        anatomy_seed: Some(12345),
        ..spec
    });
    assert_ne!(a.truth.vessels, d.truth.vessels);
}

#[test]
fn generation_does_not_depend_on_the_thread_count() {
    let spec = PhantomSpec {
        dims_zyx: [24, 64, 64],
        spacing_mm: [10.0, 6.0, 6.0],
        ..PhantomSpec::ild()
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let one = pool.install(|| generate(&spec));
    let many = generate(&spec);
    assert_eq!(one.volume.data, many.volume.data);
    assert_eq!(one.truth.ggo, many.truth.ggo);
}

#[test]
fn slab_sampling_blurs_hu_but_keeps_the_centre_truth() {
    let point = PhantomSpec {
        noise_sd_hu: 0.0,
        texture_sd_hu: 0.0,
        ..PhantomSpec::default().with_grid([30, 96, 96], [10.0, 4.0, 4.0])
    };
    let slab = PhantomSpec {
        slab_samples: 5,
        ..point.clone()
    };
    let (a, b) = (generate(&point), generate(&slab));
    assert_eq!(a.truth.lungs, b.truth.lungs);
    assert_eq!(a.truth.ggo, b.truth.ggo);
    let changed = Zip::from(&a.volume.data)
        .and(&b.volume.data)
        .fold(0usize, |n, x, y| n + (x != y) as usize);
    let total = a.volume.len();
    assert!(
        changed > total / 100 && changed < total / 2,
        "{changed} of {total} voxels changed"
    );
    // Intermediate values appear only with partial volume (between parenchyma and soft tissue).
    let mid = |v: &Array3<i16>| count(v, |h| (-650..-400).contains(&h));
    let (mb, ma) = (mid(&b.volume.data), mid(&a.volume.data));
    assert!(mb > 2 * ma.max(1), "{mb} vs {ma}");
}

#[test]
fn lesions_land_in_their_zone_and_side() {
    for (side, zone) in [
        (Side::Right, Zone::Lower),
        (Side::Left, Zone::Upper),
        (Side::Right, Zone::Middle),
    ] {
        let spec = small(PhantomSpec {
            lesions: vec![LesionSpec::ggo(side, zone, 18.0)],
            ..PhantomSpec::default()
        });
        let t = generate(&spec).truth;
        let want = t.per_zone[Truth::zone_index(side, zone)].ggo_ml;
        assert!(t.ggo_ml > 3.0, "{side:?} {zone:?}: ggo {}", t.ggo_ml);
        assert!(
            want > 0.95 * t.ggo_ml,
            "{side:?} {zone:?}: {want} of {}",
            t.ggo_ml
        );
        // Subpleural: about half a ball of radius 18 mm (24.4 mL) lies inside the lung.
        assert!(
            (8.0..17.0).contains(&t.ggo_ml),
            "{side:?} {zone:?}: {}",
            t.ggo_ml
        );
    }
}

#[test]
fn large_subpleural_consolidation_is_about_a_third_of_a_lung() {
    let spec = small(PhantomSpec::preset("large-consolidation").unwrap_or_default());
    let t = generate(&spec).truth;
    let frac = t.per_side[0].consolidation_ml / t.lung_ml[0];
    assert!((0.25..0.40).contains(&frac), "fraction {frac}");
    assert_eq!(t.per_side[1].consolidation_ml, 0.0);
}

#[test]
fn collapsed_lung_has_no_lung_voxels() {
    for (name, side) in [
        ("collapsed-right", Side::Right),
        ("collapsed-left", Side::Left),
    ] {
        let ph = generate(&small(PhantomSpec::preset(name).unwrap_or_default()));
        assert_eq!(ph.truth.lung_ml[side.index()], 0.0);
        assert!(ph.truth.lung_ml[1 - side.index()] > 2000.0);
        assert!(ph.truth.lung_z_extent[side.index()].is_none());
    }
}

#[test]
fn touching_lungs_share_a_boundary() {
    let adjacent = |ph: &Phantom| {
        let l = &ph.truth.lungs;
        let [nz, ny, nx] = ph.volume.dims_zyx();
        let mut n = 0;
        for z in 0..nz {
            for y in 0..ny {
                for x in 1..nx {
                    if l[[z, y, x - 1]] == 1 && l[[z, y, x]] == 2 {
                        n += 1;
                    }
                }
            }
        }
        n
    };
    let touching = generate(&small(
        PhantomSpec::preset("lungs-touching").unwrap_or_default(),
    ));
    let apart = generate(&PhantomSpec::small());
    assert!(
        adjacent(&touching) > 20,
        "touching: {}",
        adjacent(&touching)
    );
    assert_eq!(adjacent(&apart), 0);
}

#[test]
fn off_centre_patient_moves_the_lungs() {
    let centroid_x = |ph: &Phantom| {
        let (mut s, mut n) = (0f64, 0f64);
        for ((_, _, x), &l) in ph.truth.lungs.indexed_iter() {
            if l != 0 {
                s += ph.volume.geometry.index_to_lps([0.0, 0.0, x as f64])[0];
                n += 1.0;
            }
        }
        s / n
    };
    let base = generate(&small(PhantomSpec::ild()));
    let off = generate(&small(
        PhantomSpec::preset("off-centre").unwrap_or_default(),
    ));
    let dx = centroid_x(&off) - centroid_x(&base);
    assert!(close(dx, 35.0, 4.0), "shift {dx}");
    assert!(close(
        off.truth.total_lung_ml(),
        base.truth.total_lung_ml(),
        0.02 * base.truth.total_lung_ml()
    ));
}

#[test]
fn arms_down_adds_tissue_beside_the_chest() {
    let body = |ph: &Phantom| count(&ph.volume.data, |h| h > -500 && h != OUTSIDE_FOV_HU);
    // A 512 mm field of view: with the default 400 mm the arms are mostly cut off (as on real scanners).
    let wide = |s: PhantomSpec| s.with_grid([100, 160, 160], [3.0, 3.2, 3.2]);
    let up = generate(&wide(PhantomSpec::ild()));
    let down = generate(&wide(PhantomSpec::preset("arms-down").unwrap_or_default()));
    assert!(body(&down) as f64 > 1.1 * body(&up) as f64);
    assert_eq!(up.truth.lungs, down.truth.lungs);
}

#[test]
fn presets_all_generate() {
    for name in PRESETS {
        let spec = PhantomSpec::preset(name).unwrap_or_default();
        assert!(validate(&spec).is_ok(), "{name}");
        // Only the grid-independent parts are checked here, on a tiny grid.
        let ph = generate(&PhantomSpec {
            dims_zyx: [30, 64, 64],
            spacing_mm: [10.0, 6.0, 6.0],
            ..spec
        });
        assert!(ph.truth.total_lung_ml() > 1000.0, "{name}");
    }
    assert!(PhantomSpec::preset("nope").is_none());
}

#[test]
fn invalid_specs_are_refused_or_repaired() {
    let bad = [
        PhantomSpec {
            dims_zyx: [0, 10, 10],
            ..PhantomSpec::default()
        },
        PhantomSpec {
            dims_zyx: [100_000, 100_000, 100_000],
            ..PhantomSpec::default()
        },
        PhantomSpec {
            spacing_mm: [f64::NAN, 1.0, 1.0],
            ..PhantomSpec::default()
        },
        PhantomSpec {
            spacing_mm: [-1.0, 1.0, 1.0],
            ..PhantomSpec::default()
        },
        PhantomSpec {
            noise_sd_hu: -3.0,
            ..PhantomSpec::default()
        },
        PhantomSpec {
            lesions: vec![LesionSpec::ggo(Side::Left, Zone::Lower, f64::INFINITY)],
            ..PhantomSpec::default()
        },
    ];
    for spec in &bad {
        let err = try_generate(spec)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.starts_with("invalid phantom spec"), "{err}");
        let fixed = sanitized(spec);
        assert!(validate(&fixed).is_ok(), "{fixed:?}");
    }
    // generate() repairs instead of failing (small repaired case only).
    let ph = generate(&PhantomSpec {
        dims_zyx: [0, 8, 8],
        ..PhantomSpec::default()
    });
    assert_eq!(ph.volume.dims_zyx(), [1, 8, 8]);
}

#[test]
fn subpleural_and_core_partition_the_lungs() {
    let spec = small(PhantomSpec {
        lesions: vec![
            LesionSpec::ggo(Side::Right, Zone::Lower, 20.0),
            LesionSpec::consolidation(Side::Left, Zone::Middle, 12.0)
                .core()
                .at_angle(90.0),
        ],
        ..PhantomSpec::default()
    });
    let ph = generate(&spec);
    let sp = ph.subpleural_truth(10.0);
    let t = &ph.truth;
    assert!(close(
        sp.subpleural.lung_ml + sp.core.lung_ml,
        t.total_lung_ml(),
        1e-6
    ));
    assert!(close(sp.subpleural.ggo_ml + sp.core.ggo_ml, t.ggo_ml, 1e-6));
    assert!(close(
        sp.subpleural.vessel_ml + sp.core.vessel_ml,
        t.vessel_ml,
        1e-6
    ));
    // A 10 mm band of a ~5.5 L lung is a substantial share of it, not all of it.
    let frac = sp.subpleural.lung_ml / t.total_lung_ml();
    assert!((0.2..0.6).contains(&frac), "band fraction {frac}");
    assert!(
        sp.subpleural.ggo_ml > 0.6 * t.ggo_ml,
        "subpleural ggo {} of {}",
        sp.subpleural.ggo_ml,
        t.ggo_ml
    );
    assert!(
        sp.core.consolidation_ml > 0.9 * t.consolidation_ml,
        "core lesion {} of {}",
        sp.core.consolidation_ml,
        t.consolidation_ml
    );
    // The distance field agrees with brute force at sampled lung voxels.
    let d2 = ph.lung_surface_distance2_mm2();
    let s = ph.volume.geometry.spacing_mm;
    let bg: Vec<[usize; 3]> = t
        .lungs
        .indexed_iter()
        .filter(|(_, l)| **l == 0)
        .map(|((z, y, x), _)| [z, y, x])
        .collect();
    let mut checked = 0;
    for ((z, y, x), &l) in t.lungs.indexed_iter().step_by(997) {
        if l == 0 {
            continue;
        }
        let best = bg
            .iter()
            .map(|b| {
                let d = [
                    (b[0] as f64 - z as f64) * s[0],
                    (b[1] as f64 - y as f64) * s[1],
                    (b[2] as f64 - x as f64) * s[2],
                ];
                d[0] * d[0] + d[1] * d[1] + d[2] * d[2]
            })
            .fold(f64::INFINITY, f64::min);
        assert!(
            (d2[[z, y, x]] as f64 - best).abs() < 1e-2 * best.max(1.0),
            "at {z},{y},{x}"
        );
        checked += 1;
        if checked > 40 {
            break;
        }
    }
    assert!(checked > 10);
}

// ---------------------------------------------------------------- DICOM

fn read(path: &Path) -> dicom_object::DefaultDicomObject {
    match dicom_object::open_file(path) {
        Ok(o) => o,
        Err(e) => panic!("cannot read back {}: {e}", path.display()),
    }
}

fn str_of(o: &dicom_object::DefaultDicomObject, tag: dicom_core::Tag) -> String {
    o.element(tag)
        .ok()
        .and_then(|e| e.to_str().ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn floats(o: &dicom_object::DefaultDicomObject, tag: dicom_core::Tag) -> Vec<f64> {
    o.element(tag)
        .ok()
        .and_then(|e| e.to_multi_float64().ok())
        .unwrap_or_default()
}

fn hu_of_file(o: &dicom_object::DefaultDicomObject) -> Vec<i32> {
    let bytes = o
        .element(tags::PIXEL_DATA)
        .ok()
        .and_then(|e| e.to_bytes().ok())
        .unwrap_or_default();
    let signed = o
        .element(tags::PIXEL_REPRESENTATION)
        .ok()
        .and_then(|e| e.to_int::<u16>().ok())
        == Some(1);
    let pad: Option<i32> = o
        .element(tags::PIXEL_PADDING_VALUE)
        .ok()
        .and_then(|e| e.to_int::<i32>().ok());
    let intercept = floats(o, tags::RESCALE_INTERCEPT)
        .first()
        .copied()
        .unwrap_or(0.0) as i32;
    bytes
        .chunks_exact(2)
        .map(|c| {
            let raw = if signed {
                i16::from_le_bytes([c[0], c[1]]) as i32
            } else {
                u16::from_le_bytes([c[0], c[1]]) as i32
            };
            if Some(raw) == pad.map(|p| if signed { p } else { p & 0xFFFF }) {
                OUTSIDE_FOV_HU as i32
            } else {
                raw + intercept
            }
        })
        .collect()
}

fn tiny_phantom() -> Phantom {
    let mut spec = PhantomSpec::ild().with_grid([12, 64, 64], [20.0, 5.0, 5.0]);
    spec.meta.patient_age_years = Some(11.0);
    spec.meta.kernel = Some("B70f".into());
    generate(&spec)
}

#[test]
fn dicom_round_trip_signed_unsigned_and_padding() {
    let ph = tiny_phantom();
    let [nz, ny, nx] = ph.volume.dims_zyx();
    let cases = [
        WriteOptions::default(),
        WriteOptions {
            unsigned: true,
            padding_value: Some(0),
            ..WriteOptions::default()
        },
        WriteOptions {
            unsigned: true,
            padding_value: Some(7),
            transfer_syntax: TransferSyntax::ImplicitVrLittleEndian,
            feet_first: true,
            shuffle_names: true,
            ..WriteOptions::default()
        },
        WriteOptions {
            padding_value: Some(-3024),
            ..WriteOptions::default()
        },
    ];
    for opts in &cases {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let w =
            write_dicom_series_detailed(&ph, dir.path(), opts).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(w.thin.len(), nz);
        for (iz, path) in w.thin.iter().enumerate() {
            if opts.shuffle_names {
                assert!(path.extension().is_none());
            }
            let o = read(path);
            assert_eq!(
                o.meta().transfer_syntax().trim_end_matches('\0'),
                if opts.transfer_syntax == TransferSyntax::ImplicitVrLittleEndian {
                    "1.2.840.10008.1.2"
                } else {
                    "1.2.840.10008.1.2.1"
                }
            );
            assert_eq!(str_of(&o, tags::SOP_CLASS_UID), "1.2.840.10008.5.1.4.1.1.2");
            assert_eq!(str_of(&o, tags::MODALITY), "CT");
            assert_eq!(str_of(&o, tags::IMAGE_TYPE), "ORIGINAL\\PRIMARY\\AXIAL");
            assert_eq!(str_of(&o, tags::CONVOLUTION_KERNEL), "B70f");
            assert_eq!(str_of(&o, tags::PATIENT_AGE), "011Y");
            assert_eq!(str_of(&o, tags::STUDY_DATE), "20250115");
            assert_eq!(str_of(&o, tags::SERIES_INSTANCE_UID), w.thin_series_uid);
            assert_eq!(
                str_of(&o, tags::PATIENT_POSITION),
                if opts.feet_first { "FFS" } else { "HFS" }
            );
            let inst: usize = str_of(&o, tags::INSTANCE_NUMBER).parse().unwrap_or(0);
            assert_eq!(inst, if opts.feet_first { iz + 1 } else { nz - iz });
            let ipp = floats(&o, tags::IMAGE_POSITION_PATIENT);
            let want = ph.volume.geometry.index_to_lps([iz as f64, 0.0, 0.0]);
            assert_eq!(ipp.len(), 3);
            for k in 0..3 {
                assert!(close(ipp[k], want[k], 1e-4), "ipp {ipp:?} vs {want:?}");
            }
            assert_eq!(
                floats(&o, tags::IMAGE_ORIENTATION_PATIENT),
                vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
            );
            assert_eq!(floats(&o, tags::PIXEL_SPACING), vec![5.0, 5.0]);
            assert_eq!(floats(&o, tags::SLICE_THICKNESS), vec![20.0]);
            let hu = hu_of_file(&o);
            assert_eq!(hu.len(), ny * nx);
            let slice = ph.volume.data.index_axis(ndarray::Axis(0), iz);
            // A voxel whose stored value equals the padding value is written one higher.
            let collide_hu = opts.padding_value.map(|p| {
                if opts.unsigned {
                    p as i32 - 1024
                } else {
                    p as i32
                }
            });
            let same = |a: i32, b: i16| {
                a == b as i32 || (Some(b as i32) == collide_hu && a == b as i32 + 1)
            };
            let mismatches = hu
                .iter()
                .zip(slice.iter())
                .filter(|(a, b)| !same(**a, **b))
                .count();
            assert_eq!(mismatches, 0, "slice {iz} with {opts:?}");
        }
    }
    // Unsigned storage cannot hold a negative padding value.
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let err = write_dicom_series(
        &ph,
        dir.path(),
        &WriteOptions {
            unsigned: true,
            padding_value: Some(-2000),
            ..WriteOptions::default()
        },
    );
    assert!(matches!(err, Err(PhantomError::InvalidOption(_))));
}

#[test]
fn scout_and_thick_series_are_written_beside_the_thin_one() {
    let ph = tiny_phantom();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let w = write_dicom_series_detailed(&ph, dir.path(), &WriteOptions::messy())
        .unwrap_or_else(|e| panic!("{e}"));
    let scout = w.scout.clone().unwrap_or_default();
    let o = read(&scout);
    assert_eq!(str_of(&o, tags::IMAGE_TYPE), "ORIGINAL\\PRIMARY\\LOCALIZER");
    assert_ne!(str_of(&o, tags::SERIES_INSTANCE_UID), w.thin_series_uid);
    assert!(!w.thick.is_empty());
    let t = read(&w.thick[0]);
    let thick: f64 = str_of(&t, tags::SLICE_THICKNESS).parse().unwrap_or(0.0);
    assert!(thick > 20.0);
    assert_eq!(
        Some(str_of(&t, tags::SERIES_INSTANCE_UID)),
        w.thick_series_uid
    );
    assert_eq!(
        str_of(&t, tags::STUDY_INSTANCE_UID),
        str_of(&o, tags::STUDY_INSTANCE_UID)
    );
    let files = std::fs::read_dir(dir.path())
        .map(|r| r.count())
        .unwrap_or(0);
    assert_eq!(files, w.all().len(), "no temporary files left behind");
}

#[test]
fn project_loader_reads_the_series_back_exactly() {
    let spec = PhantomSpec::ild().with_grid([40, 96, 96], [6.0, 3.5, 3.5]);
    let ph = generate(&PhantomSpec {
        body_offset_mm: [12.0, -8.0],
        ..spec
    });
    for opts in [WriteOptions::default(), WriteOptions::messy()] {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let w =
            write_dicom_series_detailed(&ph, dir.path(), &opts).unwrap_or_else(|e| panic!("{e}"));
        let loaded = ildtrack_dicom::load(dir.path(), &ildtrack_dicom::LoadOptions::default())
            .unwrap_or_else(|e| panic!("loader failed with {opts:?}: {e}"));
        assert_eq!(
            loaded.meta.series_instance_uid.as_deref(),
            Some(w.thin_series_uid.as_str()),
            "thin series chosen"
        );
        assert_eq!(loaded.volume.dims_zyx(), ph.volume.dims_zyx());
        let (g, h) = (loaded.volume.geometry, ph.volume.geometry);
        for k in 0..3 {
            assert!(close(g.spacing_mm[k], h.spacing_mm[k], 1e-4));
            assert!(
                close(g.origin_mm[k], h.origin_mm[k], 1e-3),
                "origin {:?} vs {:?}",
                g.origin_mm,
                h.origin_mm
            );
            for c in 0..3 {
                assert!(close(g.direction[k][c], h.direction[k][c], 1e-6));
            }
        }
        let collide = opts.unsigned && opts.padding_value == Some(0);
        let diff = Zip::from(&loaded.volume.data)
            .and(&ph.volume.data)
            .fold(0usize, |n, &a, &b| {
                n + (a != b && !(collide && b == -1024 && a == -1023)) as usize
            });
        assert_eq!(diff, 0, "HU differ with {opts:?}");
        assert_eq!(loaded.meta.kernel.as_deref(), Some("B45f"));
        assert_eq!(loaded.meta.patient_age_years, Some(45.0));
    }
}

#[test]
fn project_loader_prefers_the_lung_kernel_series() {
    let mut spec = PhantomSpec::ild().with_grid([30, 80, 80], [8.0, 4.5, 4.5]);
    spec.meta.kernel = Some("B70f".into());
    spec.noise_sd_hu = 80.0;
    let ph = generate(&spec);
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let opts = WriteOptions {
        with_soft_kernel_series: true,
        shuffle_names: true,
        ..WriteOptions::default()
    };
    let w = write_dicom_series_detailed(&ph, dir.path(), &opts).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(w.soft.len(), w.thin.len());
    let soft = read(&w.soft[3]);
    assert_eq!(str_of(&soft, tags::CONVOLUTION_KERNEL), "B30f");
    // The soft series is smoother: lower SD inside normal parenchyma (away from edges).
    let mid = w.thin.len() / 2;
    let t = &ph.truth;
    let [_, ny, nx] = ph.volume.dims_zyx();
    let interior = |y: usize, x: usize| {
        (y.saturating_sub(1)..=(y + 1).min(ny - 1)).all(|yy| {
            (x.saturating_sub(1)..=(x + 1).min(nx - 1)).all(|xx| {
                t.lungs[[mid, yy, xx]] != 0
                    && !t.vessels[[mid, yy, xx]]
                    && !t.ggo[[mid, yy, xx]]
                    && !t.consolidation[[mid, yy, xx]]
            })
        })
    };
    let sd = |v: &[i32]| {
        let v: Vec<f64> = (0..ny * nx)
            .filter(|&i| interior(i / nx, i % nx))
            .map(|i| v[i] as f64)
            .collect();
        assert!(v.len() > 50);
        let m = v.iter().sum::<f64>() / v.len() as f64;
        (v.iter().map(|h| (h - m).powi(2)).sum::<f64>() / v.len() as f64).sqrt()
    };
    let (s_soft, s_thin) = (
        sd(&hu_of_file(&read(&w.soft[mid]))),
        sd(&hu_of_file(&read(&w.thin[mid]))),
    );
    assert!(s_soft < 0.7 * s_thin, "soft {s_soft} thin {s_thin}");
    let loaded = ildtrack_dicom::load(dir.path(), &ildtrack_dicom::LoadOptions::default())
        .unwrap_or_else(|e| panic!("loader failed: {e}"));
    assert_eq!(loaded.meta.kernel.as_deref(), Some("B70f"));
    assert_eq!(
        loaded.meta.series_instance_uid.as_deref(),
        Some(w.thin_series_uid.as_str())
    );
}

// ---------------------------------------------------------------- demo

#[test]
fn demo_verdicts_follow_the_default_rule_with_margin() {
    let visits = demo_patient();
    assert_eq!(visits.len(), 6);
    let days: Vec<i64> = visits.iter().map(|v| v.day).collect();
    assert_eq!(days, vec![-34, -7, 30, 90, 180, 325]);
    assert_eq!(visits[0].study_date, "2024-02-06");
    // The verdict compares follow-ups registered onto the baseline: disease volume per
    // baseline lung volume (a visit at a shallower breath has the same lesions in smaller
    // lungs; its own percentage rises, the registered one does not).
    let truths: Vec<_> = visits
        .iter()
        .map(|v| generate(&v.spec).truth.whole())
        .collect();
    let pct: Vec<f64> = truths
        .iter()
        .map(|t| 100.0 * t.affected_ml() / truths[0].lung_ml)
        .collect();
    eprintln!("demo affected % of the baseline lung volume: {pct:?}");
    // The pre-infusion visit is the shallower breath that makes the demo exercise registration.
    assert!(
        truths[1].lung_ml < 0.9 * truths[0].lung_ml,
        "lungs {} vs {} mL",
        truths[1].lung_ml,
        truths[0].lung_ml
    );
    let margin = 2.0;
    for i in 0..visits.len() {
        let status = visits[i].expected_status;
        if i == 0 {
            assert_eq!(status, "baseline");
            continue;
        }
        let (db, dp) = (pct[i] - pct[0], pct[i] - pct[i - 1]);
        match status {
            "progressed" => assert!(
                db >= 5.0 + margin && dp >= 3.0 + margin,
                "visit {i}: {db} {dp}"
            ),
            "improved" => assert!(db <= -(5.0 + margin) && dp < 0.0, "visit {i}: {db} {dp}"),
            "stable" => assert!(
                db.abs() < 5.0 - margin && dp.abs() < 3.0 - margin,
                "visit {i}"
            ),
            other => panic!("unexpected status {other}"),
        }
    }
    // Descriptions a loader could mistake for a dose report are avoided.
    assert!(visits.iter().all(|v| {
        !v.spec
            .meta
            .series_description
            .clone()
            .unwrap_or_default()
            .to_lowercase()
            .contains("dose")
    }));
    // A child (pediatric warning) with one protocol difference (kernel).
    assert!(
        visits
            .iter()
            .all(|v| v.spec.meta.patient_age_years.is_some_and(|a| a < 18.0))
    );
    let kernels: std::collections::BTreeSet<_> = visits
        .iter()
        .filter_map(|v| v.spec.meta.kernel.clone())
        .collect();
    assert_eq!(kernels.len(), 2);
    // Subpleural lower-zone disease dominates.
    let t = generate(&visits[1].spec).truth;
    let lower = t.per_zone[2].affected_ml() + t.per_zone[5].affected_ml();
    assert!(
        lower > 0.6 * t.affected_ml(),
        "lower {lower} of {}",
        t.affected_ml()
    );
}

/// Not a timed assertion: prints how long the default 512×512×300 phantom takes.
#[test]
fn default_size_generation_smoke() {
    let t0 = std::time::Instant::now();
    let ph = generate(&PhantomSpec::default());
    let ms = t0.elapsed().as_secs_f64() * 1e3;
    eprintln!(
        "512x512x300 phantom generated in {ms:.0} ms ({} threads)",
        rayon::current_num_threads()
    );
    assert_eq!(ph.volume.dims_zyx(), [300, 512, 512]);
    assert!((5000.0..6200.0).contains(&ph.truth.total_lung_ml()));
}

// ---------------------------------------------------------------- robustness

mod prop {
    use super::*;
    use proptest::prelude::*;

    fn side() -> impl Strategy<Value = Side> {
        prop_oneof![Just(Side::Right), Just(Side::Left)]
    }
    fn zone() -> impl Strategy<Value = Zone> {
        prop_oneof![Just(Zone::Upper), Just(Zone::Middle), Just(Zone::Lower)]
    }
    fn lesion() -> impl Strategy<Value = LesionSpec> {
        (
            side(),
            zone(),
            any::<bool>(),
            0.0f64..120.0,
            -900.0f64..200.0,
            -360.0f64..720.0,
            any::<bool>(),
        )
            .prop_map(|(side, zone, subpleural, radius_mm, hu, angle_deg, ggo)| {
                LesionSpec {
                    kind: if ggo {
                        LesionKind::Ggo
                    } else {
                        LesionKind::Consolidation
                    },
                    side,
                    zone,
                    subpleural,
                    radius_mm,
                    hu,
                    angle_deg,
                    z_shift_mm: 0.0,
                    shape: LesionShape::Ball,
                    placement: Placement::Surface,
                }
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

        /// Any valid spec generates without panicking, and its truth adds up.
        #[test]
        fn random_specs_generate_consistent_truth(
            dims in (1usize..24, 1usize..40, 1usize..40),
            spacing in (0.5f64..25.0, 0.5f64..15.0, 0.5f64..15.0),
            offset in (-150.0f64..150.0, -150.0f64..150.0),
            lung_scale in 0.3f64..1.5,
            body_scale in 0.3f64..1.5,
            lesions in proptest::collection::vec(lesion(), 0..4),
            flags in (any::<bool>(), any::<bool>(), any::<bool>(), 0u32..4),
            seed in any::<u64>(),
        ) {
            let spec = PhantomSpec {
                dims_zyx: [dims.0, dims.1, dims.2],
                spacing_mm: [spacing.0, spacing.1, spacing.2],
                body_offset_mm: [offset.0, offset.1],
                lung_scale,
                body_scale,
                lesions,
                arms_up: flags.0,
                lungs_touching: flags.1,
                contrast: flags.2,
                collapsed: match flags.3 { 1 => Some(Side::Right), 2 => Some(Side::Left), _ => None },
                slab_samples: 1 + 2 * (seed % 3) as u32,
                seed,
                ..PhantomSpec::default()
            };
            prop_assert!(validate(&spec).is_ok());
            let ph = try_generate(&spec).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let t = &ph.truth;
            prop_assert_eq!(ph.volume.dims_zyx(), spec.dims_zyx);
            let zones: f64 = t.per_zone.iter().map(|r| r.lung_ml).sum();
            prop_assert!((zones - t.total_lung_ml()).abs() < 1e-6);
            let n_lung = t.lungs.iter().filter(|&&l| l != 0).count() as f64;
            prop_assert!((n_lung * t.voxel_ml - t.total_lung_ml()).abs() < 1e-6);
            prop_assert!(t.affected_ml() <= t.total_lung_ml() + 1e-9);
            if let Some(s) = spec.collapsed {
                prop_assert_eq!(t.lung_ml[s.index()], 0.0);
            }
        }
    }
}
