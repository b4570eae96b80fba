//! Parity on real CT from `../shared/data` (skipped with a notice when the folder is absent).

use std::path::PathBuf;

use ildtrack_analysis::{AnalysisConfig, analyze};
use ildtrack_compute::{Backend, Ball, Connectivity, CpuBackend};

use crate::common::{count_differing, gpu};

fn data(rel: &str) -> Option<PathBuf> {
    let root =
        ildtrack_dicom::shared_data::for_test(std::path::Path::new(env!("CARGO_MANIFEST_DIR")))?;
    Some(root.join(rel))
}

#[test]
fn lidc_slice_kernels_and_analysis_match_cpu() {
    let Some(path) = data("lungmask-slice/lidc-slice.dcm") else {
        return;
    };
    let Some(g) = gpu() else { return };
    let series = ildtrack_dicom::load(&path, &Default::default()).expect("the LIDC slice loads");
    let hu = &series.volume;
    let spacing = hu.geometry.spacing_mm;
    let cpu = CpuBackend::new();
    let (gh, ch) = (
        g.upload_i16(hu.data.view()).unwrap(),
        cpu.upload_i16(hu.data.view()).unwrap(),
    );
    let (gt, ct) = (
        g.threshold(&gh, -1024, -400).unwrap(),
        cpu.threshold(&ch, -1024, -400).unwrap(),
    );
    assert_eq!(g.download_u8(&gt).unwrap(), ct.0, "threshold");
    let (gl, gi) = g.label_components(&gt, Connectivity::Slice8).unwrap();
    let (cl, ci) = cpu.label_components(&ct, Connectivity::Slice8).unwrap();
    assert_eq!(g.download_u32(&gl).unwrap(), cl.0, "labels");
    assert_eq!(gi, ci, "component infos");
    let ball = Ball::disk(3.0, spacing);
    let (gc, cc) = (g.close(&gt, &ball).unwrap(), cpu.close(&ct, &ball).unwrap());
    assert_eq!(g.download_u8(&gc).unwrap(), cc.0, "closing");
    assert_eq!(
        g.download_u8(&g.fill_holes_2d(&gc).unwrap()).unwrap(),
        cpu.fill_holes_2d(&cc).unwrap().0,
        "fill_holes_2d"
    );
    assert_eq!(
        g.histogram(&gh, &gt, 2, -2048, 3071).unwrap(),
        cpu.histogram(&ch, &ct, 2, -2048, 3071).unwrap(),
        "histogram"
    );

    let cfg = AnalysisConfig::default();
    let a = analyze(g, hu, &series.meta, &series.warnings, &cfg, &|_, _| {}).expect("gpu analyze");
    let c =
        analyze(&cpu, hu, &series.meta, &series.warnings, &cfg, &|_, _| {}).expect("cpu analyze");
    let (ga, ca) = (
        a.result.lungs.whole.voxel_count,
        c.result.lungs.whole.voxel_count,
    );
    assert!(
        ca > 10_000,
        "the CPU finds lungs on the LIDC slice ({ca} px)"
    );
    assert!(
        ga.abs_diff(ca) * 1000 <= ca,
        "lung pixels gpu {ga} vs cpu {ca}"
    );
    let differ = count_differing(&a.lungs.data, &c.lungs.data) as u64;
    assert!(differ * 1000 <= ca, "{differ} pixels labelled differently");
}
