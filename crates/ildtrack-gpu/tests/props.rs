//! Property tests: CPU = GPU on random shapes, masks and parameters (few cases: lavapipe is slow).

use ildtrack_compute::{Backend, Ball, Connectivity, CpuBackend};
use ndarray::Array3;
use proptest::prelude::*;

use crate::common::gpu;

fn mask_strategy() -> impl Strategy<Value = Array3<u8>> {
    (1usize..6, 1usize..20, 1usize..20).prop_flat_map(|(z, y, x)| {
        proptest::collection::vec(
            prop_oneof![3 => Just(0u8), 2 => Just(1u8), 1 => 2u8..=255],
            z * y * x,
        )
        .prop_map(move |v| Array3::from_shape_vec((z, y, x), v).expect("length matches"))
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn labels_counts_and_morphology_match_cpu(
        m in mask_strategy(),
        conn in prop_oneof![Just(Connectivity::Face6), Just(Connectivity::Full26), Just(Connectivity::Slice4), Just(Connectivity::Slice8)],
        radius_mm in 0.0f64..3.0,
        spacing in (0.5f64..3.0, 0.5f64..2.0, 0.5f64..2.0),
    ) {
        let Some(g) = gpu() else { return Ok(()) };
        let cpu = CpuBackend::new();
        let gm = g.upload_u8(m.view()).unwrap();
        let cm = cpu.upload_u8(m.view()).unwrap();
        let (gl, gi) = g.label_components(&gm, conn).unwrap();
        let (cl, ci) = cpu.label_components(&cm, conn).unwrap();
        prop_assert_eq!(g.download_u32(&gl).unwrap(), cl.0);
        prop_assert_eq!(gi, ci);
        let counts = g.value_counts(&gm).unwrap();
        prop_assert_eq!(counts.iter().sum::<u64>(), m.len() as u64);
        prop_assert_eq!(counts, cpu.value_counts(&cm).unwrap());
        let ball = Ball::new(radius_mm, [spacing.0, spacing.1, spacing.2]);
        let closed = g.download_u8(&g.close(&gm, &ball).unwrap()).unwrap();
        prop_assert!(closed.iter().zip(m.iter()).all(|(c, o)| *c >= u8::from(*o != 0)), "closing contains the input");
        prop_assert_eq!(closed, cpu.close(&cm, &ball).unwrap().0);
        let opened = g.download_u8(&g.open(&gm, &ball).unwrap()).unwrap();
        prop_assert_eq!(opened, cpu.open(&cm, &ball).unwrap().0);
    }
}
