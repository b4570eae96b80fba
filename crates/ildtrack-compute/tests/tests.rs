//! CpuBackend against brute-force definitions, plus proptest invariants.
#![allow(clippy::unwrap_used)] // tests: a panic with the failing value is the report

use ildtrack_compute::{Backend, Ball, Connectivity, CpuBackend, MaskOp};
use ndarray::{Array3, s};
use proptest::prelude::*;

fn b() -> CpuBackend {
    CpuBackend::new()
}

fn mask_strategy(max: usize) -> impl Strategy<Value = Array3<u8>> {
    (1..=max, 1..=max, 1..=max).prop_flat_map(|(z, y, x)| {
        proptest::collection::vec(prop_oneof![3 => Just(0u8), 2 => Just(1u8)], z * y * x).prop_map(
            move |v| {
                Array3::from_shape_vec((z, y, x), v).unwrap_or_else(|_| Array3::zeros((z, y, x)))
            },
        )
    })
}

fn spacing_strategy() -> impl Strategy<Value = [f64; 3]> {
    (0.4f64..3.0, 0.4f64..2.0, 0.4f64..2.0).prop_map(|(a, b, c)| [a, b, c])
}

fn brute_dist2(
    m: &Array3<u8>,
    sp: [f64; 3],
    p: (usize, usize, usize),
    source: impl Fn(u8) -> bool,
) -> f64 {
    let mut best = f64::INFINITY;
    for ((z, y, x), &v) in m.indexed_iter() {
        if source(v) {
            let d = (sp[0] * (z as f64 - p.0 as f64)).powi(2)
                + (sp[1] * (y as f64 - p.1 as f64)).powi(2)
                + (sp[2] * (x as f64 - p.2 as f64)).powi(2);
            best = best.min(d);
        }
    }
    best
}

fn brute_dilate(m: &Array3<u8>, r: f64, sp: [f64; 3]) -> Array3<u8> {
    Array3::from_shape_fn(m.raw_dim(), |(z, y, x)| {
        u8::from(brute_dist2(m, sp, (z, y, x), |v| v != 0) <= r * r + 1e-3)
    })
}

fn brute_erode(m: &Array3<u8>, r: f64, sp: [f64; 3]) -> Array3<u8> {
    Array3::from_shape_fn(m.raw_dim(), |(z, y, x)| {
        u8::from(brute_dist2(m, sp, (z, y, x), |v| v == 0) > r * r + 1e-3)
    })
}

/// Flood-fill reference labelling (raster order of first voxel).
fn brute_labels(m: &Array3<u8>, conn: Connectivity) -> Array3<u32> {
    let sh = m.shape();
    let (nz, ny, nx) = (sh[0] as isize, sh[1] as isize, sh[2] as isize);
    let mut offs = Vec::new();
    for dz in -1isize..=1 {
        for dy in -1isize..=1 {
            for dx in -1isize..=1 {
                let n = dz.abs() + dy.abs() + dx.abs();
                let ok = match conn {
                    Connectivity::Face6 => n == 1,
                    Connectivity::Full26 => n >= 1,
                    Connectivity::Slice4 => dz == 0 && n == 1,
                    Connectivity::Slice8 => dz == 0 && n >= 1,
                };
                if ok {
                    offs.push((dz, dy, dx));
                }
            }
        }
    }
    let mut out = Array3::<u32>::zeros(m.raw_dim());
    let mut next = 0;
    for z in 0..nz {
        for y in 0..ny {
            for x in 0..nx {
                let p = [z as usize, y as usize, x as usize];
                if m[p] == 0 || out[p] != 0 {
                    continue;
                }
                next += 1;
                out[p] = next;
                let mut stack = vec![(z, y, x)];
                while let Some((cz, cy, cx)) = stack.pop() {
                    for &(dz, dy, dx) in &offs {
                        let (qz, qy, qx) = (cz + dz, cy + dy, cx + dx);
                        if qz < 0 || qy < 0 || qx < 0 || qz >= nz || qy >= ny || qx >= nx {
                            continue;
                        }
                        let q = [qz as usize, qy as usize, qx as usize];
                        if m[q] != 0 && out[q] == 0 {
                            out[q] = next;
                            stack.push((qz, qy, qx));
                        }
                    }
                }
            }
        }
    }
    out
}

#[test]
fn edt_is_exact_against_brute_force() {
    let mut m = Array3::<u8>::ones((7, 9, 11));
    m[[3, 4, 5]] = 0;
    m[[0, 0, 0]] = 0;
    m[[6, 8, 2]] = 0;
    let sp = [2.5, 0.7, 0.9];
    let be = b();
    let h = be.upload_u8(m.view()).unwrap();
    let d = be.download_f32(&be.distance_mm(&h, sp).unwrap()).unwrap();
    for ((z, y, x), &v) in d.indexed_iter() {
        let r = brute_dist2(&m, sp, (z, y, x), |v| v == 0).sqrt();
        assert!((v as f64 - r).abs() < 1e-4, "{z},{y},{x}: {v} vs {r}");
    }
}

#[test]
fn wide_ball_morphology_matches_brute_force() {
    // A ball reaching more than 12 voxels along y takes the exact transform, not the bounded
    // kernel; both must agree with the definition.
    let mut state = 12345u64;
    let m = Array3::from_shape_fn((4, 22, 22), |_| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        u8::from((state >> 33) % 5 < 2)
    });
    let be = b();
    let h = be.upload_u8(m.view()).unwrap();
    for (r, sp) in [
        (7.0, [1.0, 0.5, 0.5]),
        (3.0, [1.0, 0.5, 0.5]),
        (9.5, [2.0, 0.7, 0.6]),
    ] {
        let ball = Ball::new(r, sp);
        assert_eq!(
            be.download_u8(&be.dilate(&h, &ball).unwrap()).unwrap(),
            brute_dilate(&m, r, sp),
            "dilate r {r}"
        );
        assert_eq!(
            be.download_u8(&be.erode(&h, &ball).unwrap()).unwrap(),
            brute_erode(&m, r, sp),
            "erode r {r}"
        );
    }
}

#[test]
fn edt_without_background_is_infinite() {
    let be = b();
    let h = be.fill_u8([2, 3, 4], 1).unwrap();
    let d = be
        .download_f32(&be.distance_mm(&h, [1.0; 3]).unwrap())
        .unwrap();
    assert!(d.iter().all(|v| v.is_infinite()));
}

#[test]
fn ball_dilation_on_single_voxel_is_the_anisotropic_ball() {
    let mut m = Array3::<u8>::zeros((9, 21, 21));
    m[[4, 10, 10]] = 1;
    let sp = [2.0, 0.5, 0.5];
    let be = b();
    let h = be.upload_u8(m.view()).unwrap();
    let d = be
        .download_u8(&be.dilate(&h, &Ball::new(4.0, sp)).unwrap())
        .unwrap();
    // z reach: 4 mm / 2 mm = 2 slices; in-plane reach 8 voxels.
    assert_eq!(d[[4, 10, 18]], 1);
    assert_eq!(d[[4, 10, 19]], 0);
    assert_eq!(d[[6, 10, 10]], 1);
    assert_eq!(d[[7, 10, 10]], 0);
    assert_eq!(d[[6, 10, 11]], 0); // (4 mm)² + (0.5 mm)² > 16
    let count = d.iter().filter(|&&v| v != 0).count();
    assert_eq!(
        count as u64,
        brute_dilate(&m, 4.0, sp)
            .iter()
            .filter(|&&v| v != 0)
            .count() as u64
    );
}

#[test]
fn in_plane_disk_does_not_reach_other_slices() {
    let mut m = Array3::<u8>::zeros((3, 9, 9));
    m[[1, 4, 4]] = 1;
    let be = b();
    let h = be.upload_u8(m.view()).unwrap();
    let d = be
        .download_u8(&be.dilate(&h, &Ball::disk(2.0, [0.1, 1.0, 1.0])).unwrap())
        .unwrap();
    assert_eq!(d.slice(s![0, .., ..]).sum(), 0);
    assert_eq!(d.slice(s![2, .., ..]).sum(), 0);
    assert_eq!(d.slice(s![1, .., ..]).sum(), 13);
}

#[test]
fn erosion_does_not_eat_from_the_volume_border() {
    // A one-slice volume behaves as a 2-D image.
    let m = Array3::<u8>::ones((1, 10, 10));
    let be = b();
    let h = be.upload_u8(m.view()).unwrap();
    let e = be
        .download_u8(&be.erode(&h, &Ball::new(3.0, [5.0, 1.0, 1.0])).unwrap())
        .unwrap();
    assert_eq!(e, m);
}

#[test]
fn fill_holes_fills_enclosed_background_per_slice() {
    let mut m = Array3::<u8>::zeros((2, 7, 7));
    m.slice_mut(s![0, 1..6, 1..6]).fill(1);
    m.slice_mut(s![0, 2..5, 2..5]).fill(0); // enclosed hole
    m.slice_mut(s![1, 1..6, 1..6]).fill(1);
    m.slice_mut(s![1, 2..5, 2..7]).fill(0); // open to the border
    let be = b();
    let h = be.upload_u8(m.view()).unwrap();
    let f = be.download_u8(&be.fill_holes_2d(&h).unwrap()).unwrap();
    assert_eq!(f.slice(s![0, .., ..]).sum(), 25);
    assert_eq!(
        f.slice(s![1, .., ..]).sum() as usize,
        m.slice(s![1, .., ..]).iter().filter(|&&v| v != 0).count()
    );
}

#[test]
fn classify_counts_edges_inside_mask_only() {
    let hu =
        Array3::from_shape_vec((1, 1, 6), vec![-1000i16, -951, -950, -701, -300, 200]).unwrap();
    let mut mask = Array3::<u8>::ones((1, 1, 6));
    mask[[0, 0, 5]] = 0;
    let be = b();
    let c = be
        .classify(
            &be.upload_i16(hu.view()).unwrap(),
            &be.upload_u8(mask.view()).unwrap(),
            &[-950, -700, -300, 100],
        )
        .unwrap();
    assert_eq!(
        be.download_u8(&c)
            .unwrap()
            .iter()
            .copied()
            .collect::<Vec<_>>(),
        vec![1, 1, 2, 2, 4, 0]
    );
    assert!(
        be.classify(
            &be.upload_i16(hu.view()).unwrap(),
            &be.upload_u8(mask.view()).unwrap(),
            &[0, 0]
        )
        .is_err()
    );
}

#[test]
fn shape_mismatch_is_an_error() {
    let be = b();
    let a = be.fill_u8([1, 2, 3], 1).unwrap();
    let c = be.fill_u8([1, 3, 2], 1).unwrap();
    assert!(be.mask_op(&a, &c, MaskOp::And).is_err());
}

#[test]
fn in_plane_gaussian_matches_the_volume_path() {
    // σ_z = 0 runs slice by slice; a σ_z so small that its kernel is [0, 1, 0] takes the
    // volume-wide path with the same in-plane passes: the results must be identical.
    let be = b();
    let hu = Array3::from_shape_fn((5, 23, 19), |(z, y, x)| {
        ((z * 7919 + y * 104_729 + x * 1299) % 1500) as i16 - 1000
    });
    let h = be.upload_i16(hu.view()).unwrap();
    let spacing = [2.5, 0.7, 0.8];
    let slices = be.gaussian(&h, [0.0, 1.3, 2.1], spacing).unwrap();
    let volume = be.gaussian(&h, [0.003, 1.3, 2.1], spacing).unwrap();
    let (a, v) = (
        be.download_i16(&slices).unwrap(),
        be.download_i16(&volume).unwrap(),
    );
    assert_eq!(a, v);
    assert_ne!(a, hu, "the smoothing did something");
    // Empty in any direction: an empty result, no panic.
    for d in [(2, 5, 0), (2, 0, 5), (0, 3, 4)] {
        let e = be.upload_i16(Array3::<i16>::zeros(d).view()).unwrap();
        let g = be.gaussian(&e, [0.0, 1.3, 2.1], spacing).unwrap();
        assert_eq!(be.download_i16(&g).unwrap().dim(), d);
    }
}

#[test]
fn gaussian_keeps_constants_and_mass() {
    let be = b();
    let hu = Array3::from_elem((5, 6, 7), -800i16);
    let g = be
        .download_i16(
            &be.gaussian(
                &be.upload_i16(hu.view()).unwrap(),
                [1.0, 1.0, 1.0],
                [1.0; 3],
            )
            .unwrap(),
        )
        .unwrap();
    assert!(g.iter().all(|&v| v == -800));
    let mut imp = Array3::<i16>::zeros((1, 41, 41));
    imp[[0, 20, 20]] = 10000;
    let g = be
        .download_i16(
            &be.gaussian(
                &be.upload_i16(imp.view()).unwrap(),
                [0.0, 2.0, 2.0],
                [1.0; 3],
            )
            .unwrap(),
        )
        .unwrap();
    let sum: i64 = g.iter().map(|&v| v as i64).sum();
    assert!((sum - 10000).abs() < 200, "sum {sum}");
    assert!(g[[0, 20, 20]] < 10000 / 10);
}

#[test]
fn gaussian_mix_is_the_sum_of_cascaded_blurs() {
    // A mix with one non-zero weight is that stage: the input itself, or the stages' blurs
    // applied one after the other (the same as `gaussian` run in sequence, both in-plane).
    let be = b();
    let hu = Array3::from_shape_fn((3, 29, 31), |(z, y, x)| {
        ((z * 7919 + y * 104_729 + x * 1299) % 1500) as i16 - 1000
    });
    let mut hu = hu;
    hu[[1, 4, 5]] = ildtrack_volume::OUTSIDE_FOV_HU;
    let h = be.upload_i16(hu.view()).unwrap();
    let spacing = [5.0, 0.7, 0.8];
    let sig = [0.6, 1.1];
    let get = |w: &[f32]| {
        be.download_i16(&be.gaussian_mix(&h, &sig, w, spacing).unwrap())
            .unwrap()
    };
    assert_eq!(
        get(&[1.0, 0.0, 0.0]),
        hu,
        "weight on the input only: identity"
    );
    let g1 = be.gaussian(&h, [0.0, 0.6, 0.6], spacing).unwrap();
    assert_eq!(get(&[0.0, 1.0, 0.0]), be.download_i16(&g1).unwrap());
    assert_eq!(
        get(&[0.0, 0.0, 1.0])[[1, 4, 5]],
        ildtrack_volume::OUTSIDE_FOV_HU
    );
    // Stage 2 blurs stage 1's f32 values, `gaussian` twice rounds in between: within 1 HU
    // (without the outside-FOV voxel, which `gaussian` keeps and then reads as -1024 again).
    let mut inside = hu.clone();
    inside[[1, 4, 5]] = -500;
    let hi = be.upload_i16(inside.view()).unwrap();
    let g1 = be.gaussian(&hi, [0.0, 0.6, 0.6], spacing).unwrap();
    let g2 = be
        .download_i16(&be.gaussian(&g1, [0.0, 1.1, 1.1], spacing).unwrap())
        .unwrap();
    let m2 = be
        .download_i16(
            &be.gaussian_mix(&hi, &sig, &[0.0, 0.0, 1.0], spacing)
                .unwrap(),
        )
        .unwrap();
    let worst = m2
        .iter()
        .zip(g2.iter())
        .map(|(&a, &b)| (a as i32 - b as i32).abs())
        .max()
        .unwrap();
    assert!(worst <= 1, "cascade vs gaussian twice: {worst} HU");
    // On a constant volume a band (x1 - x2, scaled) is zero and any gains keep the level
    // (weights summing to 1).
    let flat = be
        .upload_i16(Array3::from_elem((2, 9, 9), -850i16).view())
        .unwrap();
    let mix = |w: &[f32]| {
        be.download_i16(&be.gaussian_mix(&flat, &sig, w, spacing).unwrap())
            .unwrap()
    };
    assert!(mix(&[0.0, 16.0, -16.0]).iter().all(|&v| v == 0));
    assert!(mix(&[0.3, 0.2, 0.5]).iter().all(|&v| v == -850));
    // The stages in one call are the single-weight mixes, bit for bit (the CPU computes the
    // cascade once instead of once per stage).
    let st = be.gaussian_stages(&h, &sig, 16.0, spacing).unwrap();
    assert_eq!(st.len(), 2);
    assert_eq!(be.download_i16(&st[0]).unwrap(), get(&[0.0, 16.0, 0.0]));
    assert_eq!(be.download_i16(&st[1]).unwrap(), get(&[0.0, 0.0, 16.0]));
    assert!(be.gaussian_stages(&h, &[-1.0], 16.0, spacing).is_err());
    // Bad arguments are errors, not panics.
    assert!(be.gaussian_mix(&h, &sig, &[1.0, 0.0], spacing).is_err());
    assert!(be.gaussian_mix(&h, &[-1.0], &[1.0, 0.0], spacing).is_err());
    assert!(
        be.gaussian_mix(&h, &[1.0], &[f32::NAN, 0.0], spacing)
            .is_err()
    );
    assert!(
        be.gaussian_mix(&h, &[1.0], &[1.0, 0.0], [0.0, 1.0, 1.0])
            .is_err()
    );
    assert!(be.gaussian_mix(&h, &[0.5; 9], &[0.1; 10], spacing).is_err());
    // Empty in any direction: an empty result.
    for d in [(2, 5, 0), (2, 0, 5), (0, 3, 4)] {
        let e = be.upload_i16(Array3::<i16>::zeros(d).view()).unwrap();
        let g = be
            .gaussian_mix(&e, &sig, &[1.0, -1.0, 1.0], spacing)
            .unwrap();
        assert_eq!(be.download_i16(&g).unwrap().dim(), d);
    }
}

#[test]
fn downsample_then_upsample_round_trip() {
    let be = b();
    let hu = Array3::from_shape_fn((3, 5, 5), |(z, y, x)| (z * 100 + y * 10 + x) as i16);
    let d = be
        .download_i16(
            &be.downsample_mean(&be.upload_i16(hu.view()).unwrap(), [1, 2, 2])
                .unwrap(),
        )
        .unwrap();
    assert_eq!(d.shape(), &[3, 3, 3]);
    assert_eq!(d[[0, 0, 0]], 6); // mean of 0,1,10,11 = 5.5 -> 6
    assert_eq!(d[[2, 2, 2]], 244);
    // Straight from host memory, contiguous or strided, outside-FOV voxels included: the same.
    let mut big = Array3::from_shape_fn((7, 9, 11), |(z, y, x)| {
        ((z * 131 + y * 17 + x * 7) % 400) as i16 - 200
    });
    big[[0, 0, 0]] = ildtrack_volume::OUTSIDE_FOV_HU;
    for view in [big.view(), big.slice(s![.., .., ..;2])] {
        let via_upload = be
            .downsample_mean(&be.upload_i16(view).unwrap(), [2, 3, 2])
            .unwrap();
        let direct = be.downsample_mean_host(view, [2, 3, 2]).unwrap();
        assert_eq!(
            be.download_i16(&direct).unwrap(),
            be.download_i16(&via_upload).unwrap()
        );
    }
    let m = Array3::from_shape_fn((3, 3, 3), |(z, y, x)| (z + y + x) as u8);
    let u = be
        .download_u8(
            &be.upsample_nearest(&be.upload_u8(m.view()).unwrap(), [1, 2, 2], [3, 5, 5])
                .unwrap(),
        )
        .unwrap();
    assert_eq!(u[[1, 3, 4]], m[[1, 1, 2]]);
    assert!(
        be.upsample_nearest(&be.upload_u8(m.view()).unwrap(), [1, 2, 2], [3, 7, 5])
            .is_err()
    );
}

#[test]
fn components_sizes_and_order() {
    let mut m = Array3::<u8>::zeros((2, 5, 5));
    m[[0, 0, 4]] = 1;
    m[[0, 2, 0]] = 1;
    m[[1, 3, 1]] = 1; // touches (0,2,0) only diagonally in 3-D
    let be = b();
    let h = be.upload_u8(m.view()).unwrap();
    let (_, i6) = be.label_components(&h, Connectivity::Face6).unwrap();
    assert_eq!(i6.len(), 3);
    let (l26, i26) = be.label_components(&h, Connectivity::Full26).unwrap();
    assert_eq!(i26.len(), 2);
    assert_eq!(i26[1].voxels, 2);
    let l26 = be.download_u32(&l26).unwrap();
    assert_eq!(l26[[0, 0, 4]], 1);
    assert_eq!(l26[[1, 3, 1]], 2);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]

    #[test]
    fn histogram_sum_equals_mask_count(m in mask_strategy(8), seed in 0i16..500) {
        let be = b();
        let hu = Array3::from_shape_fn(m.raw_dim(), |(z, y, x)| ((z * 37 + y * 101 + x * 7) as i16 * 13 + seed) % 2000 - 1000);
        let labels = m.mapv(|v| v * 2);
        let h = be.histogram(&be.upload_i16(hu.view()).unwrap(), &be.upload_u8(labels.view()).unwrap(), 3, -1024, 1024).unwrap();
        let count = m.iter().filter(|&&v| v != 0).count() as u64;
        prop_assert_eq!(h.total(2), count);
        prop_assert_eq!(h.total(0), m.len() as u64 - count);
        prop_assert_eq!(h.total(1), 0);
    }

    #[test]
    fn closing_contains_input_and_erosion_is_contained(m in mask_strategy(9), sp in spacing_strategy(), r in 0.0f64..4.0) {
        let be = b();
        let h = be.upload_u8(m.view()).unwrap();
        let ball = Ball::new(r, sp);
        let c = be.download_u8(&be.close(&h, &ball).unwrap()).unwrap();
        let e = be.download_u8(&be.erode(&h, &ball).unwrap()).unwrap();
        let o = be.download_u8(&be.open(&h, &ball).unwrap()).unwrap();
        for ((&mi, &ci), (&ei, &oi)) in m.iter().zip(c.iter()).zip(e.iter().zip(o.iter())) {
            prop_assert!(ci >= mi);
            prop_assert!(ei <= mi);
            prop_assert!(oi <= mi);
        }
    }

    #[test]
    fn morphology_matches_brute_force(m in mask_strategy(7), sp in spacing_strategy(), r in 0.0f64..3.5) {
        let be = b();
        let h = be.upload_u8(m.view()).unwrap();
        let ball = Ball::new(r, sp);
        prop_assert_eq!(be.download_u8(&be.dilate(&h, &ball).unwrap()).unwrap(), brute_dilate(&m, r, sp));
        prop_assert_eq!(be.download_u8(&be.erode(&h, &ball).unwrap()).unwrap(), brute_erode(&m, r, sp));
    }

    #[test]
    fn in_plane_morphology_matches_brute_force(m in mask_strategy(7), sp in spacing_strategy(), r in 0.0f64..3.5) {
        // Per slice: the brute force with a z spacing no ball reaches across.
        let be = b();
        let h = be.upload_u8(m.view()).unwrap();
        let ball = Ball::disk(r, sp);
        let far = [1e3, sp[1], sp[2]];
        prop_assert_eq!(be.download_u8(&be.dilate(&h, &ball).unwrap()).unwrap(), brute_dilate(&m, r, far));
        prop_assert_eq!(be.download_u8(&be.erode(&h, &ball).unwrap()).unwrap(), brute_erode(&m, r, far));
    }

    #[test]
    fn edt_matches_brute_force(m in mask_strategy(7), sp in spacing_strategy()) {
        let be = b();
        let d = be.download_f32(&be.distance_mm(&be.upload_u8(m.view()).unwrap(), sp).unwrap()).unwrap();
        for ((z, y, x), &v) in d.indexed_iter() {
            let r = brute_dist2(&m, sp, (z, y, x), |v| v == 0).sqrt();
            if r.is_infinite() {
                prop_assert!(v.is_infinite());
            } else {
                prop_assert!((v as f64 - r).abs() < 1e-3 * (1.0 + r), "{} vs {}", v, r);
            }
        }
    }

    #[test]
    fn labels_match_flood_fill(m in mask_strategy(8), c in 0usize..4) {
        let conn = [Connectivity::Face6, Connectivity::Full26, Connectivity::Slice4, Connectivity::Slice8][c];
        let be = b();
        let (l, infos) = be.label_components(&be.upload_u8(m.view()).unwrap(), conn).unwrap();
        let l = be.download_u32(&l).unwrap();
        let reference = brute_labels(&m, conn);
        prop_assert_eq!(&l, &reference);
        let total: u64 = infos.iter().map(|i| i.voxels).sum();
        prop_assert_eq!(total, m.iter().filter(|&&v| v != 0).count() as u64);
    }
}

#[test]
fn crop_then_pad_restores_the_box() {
    let be = b();
    let m = Array3::from_shape_fn((4, 5, 6), |(z, y, x)| (z * 30 + y * 6 + x) as u8);
    let h = be.upload_u8(m.view()).unwrap();
    let c = be.crop_u8(&h, [1, 2, 3], [2, 3, 3]).unwrap();
    let cm = be.download_u8(&c).unwrap();
    assert_eq!(cm[[0, 0, 0]], m[[1, 2, 3]]);
    let p = be
        .download_u8(&be.pad_u8(&c, [4, 5, 6], [1, 2, 3]).unwrap())
        .unwrap();
    assert_eq!(p[[2, 4, 5]], m[[2, 4, 5]]);
    assert_eq!(p[[0, 0, 0]], 0);
    assert!(be.crop_u8(&h, [3, 0, 0], [2, 1, 1]).is_err());
    assert!(be.pad_u8(&c, [2, 5, 6], [1, 2, 3]).is_err());
    let hu = Array3::from_elem((4, 5, 6), 7i16);
    assert_eq!(
        be.download_i16(
            &be.crop_i16(&be.upload_i16(hu.view()).unwrap(), [0, 0, 0], [4, 5, 6])
                .unwrap()
        )
        .unwrap(),
        hu
    );
}

#[test]
fn less_equal_f32_compares_fields() {
    let be = b();
    let mut a = Array3::<u8>::ones((1, 1, 5));
    a[[0, 0, 0]] = 0;
    let mut c = Array3::<u8>::ones((1, 1, 5));
    c[[0, 0, 4]] = 0;
    let da = be
        .distance_mm(&be.upload_u8(a.view()).unwrap(), [1.0; 3])
        .unwrap();
    let dc = be
        .distance_mm(&be.upload_u8(c.view()).unwrap(), [1.0; 3])
        .unwrap();
    let le = be
        .download_u8(&be.less_equal_f32(&da, &dc).unwrap())
        .unwrap();
    assert_eq!(le.iter().copied().collect::<Vec<_>>(), vec![1, 1, 1, 0, 0]);
}
