//! `analyze` with the GPU backend gives the same result as with the CPU backend.
//!
//! Tolerances: lung label maps agree on >= 99.9 % of lung voxels, volumes within 0.5 %,
//! GGO / consolidation within 2 % of the lung volume's share (0.5 percentage points), mean HU
//! within 1 HU. The only inexact kernel is the f32 Gaussian (±1 HU on rare voxels), which can
//! move a voxel across a threshold; everything else is exact.

use ildtrack_analysis::{AnalysisConfig, analyze};
use ildtrack_compute::CpuBackend;
use ildtrack_phantom::{PhantomSpec, try_generate};

use crate::common::{count_differing, gpu};

#[test]
fn analyze_on_gpu_matches_cpu_on_a_phantom() {
    let Some(g) = gpu() else { return };
    let spec = PhantomSpec::preset("ild")
        .expect("ild preset")
        .with_grid([60, 96, 96], [5.0, 4.1666, 4.1666]);
    let ph = try_generate(&spec).expect("phantom");
    let cfg = AnalysisConfig::default();
    let t = std::time::Instant::now();
    let c = analyze(
        &CpuBackend::new(),
        &ph.volume,
        &ph.meta,
        &[],
        &cfg,
        &|_, _| {},
    )
    .expect("cpu analyze");
    let cpu_ms = t.elapsed().as_secs_f64() * 1e3;
    let t = std::time::Instant::now();
    let a = analyze(g, &ph.volume, &ph.meta, &[], &cfg, &|_, _| {}).expect("gpu analyze");
    let gpu_ms = t.elapsed().as_secs_f64() * 1e3;
    eprintln!(
        "analyze {:?}: cpu {cpu_ms:.0} ms, gpu ({}) {gpu_ms:.0} ms",
        spec.dims_zyx,
        g.adapter_description()
    );
    assert_eq!(a.result.backend, "gpu");

    let lung_voxels = c.lungs.data.iter().filter(|v| **v != 0).count().max(1);
    let differ = count_differing(&a.lungs.data, &c.lungs.data);
    assert!(
        differ * 1000 <= lung_voxels,
        "{differ} of {lung_voxels} lung voxels labelled differently"
    );
    let class_differ = count_differing(&a.classes.data, &c.classes.data);
    assert!(
        class_differ * 200 <= lung_voxels,
        "{class_differ} voxels classed differently"
    );

    let (gl, cl) = (&a.result.lungs, &c.result.lungs);
    for (name, gm, cm) in [
        ("whole", &gl.whole, &cl.whole),
        ("left", &gl.left, &cl.left),
        ("right", &gl.right, &cl.right),
        ("subpleural", &gl.subpleural, &cl.subpleural),
    ] {
        assert!(
            (gm.volume_ml - cm.volume_ml).abs() <= 0.005 * cm.volume_ml.max(1.0),
            "{name} volume {} vs {}",
            gm.volume_ml,
            cm.volume_ml
        );
        assert!(
            (gm.ggo_pct - cm.ggo_pct).abs() <= 0.5,
            "{name} ggo_pct {} vs {}",
            gm.ggo_pct,
            cm.ggo_pct
        );
        assert!(
            (gm.consolidation_pct - cm.consolidation_pct).abs() <= 0.5,
            "{name} consolidation_pct {} vs {}",
            gm.consolidation_pct,
            cm.consolidation_pct
        );
        if let (Some(x), Some(y)) = (gm.mean_hu, cm.mean_hu) {
            assert!((x - y).abs() <= 1.0, "{name} mean_hu {x} vs {y}");
        }
    }
    assert!(
        cl.whole.volume_ml > 100.0,
        "the phantom has lungs: {} mL",
        cl.whole.volume_ml
    );
}
