//! A follow-up reconstructed with another kernel, registered onto the baseline: the change map
//! classifies both visits on the soft reference kernel's footing, so the kernel is not read as
//! disease. A0001's soft (B) and sharp (L) reconstructions of one acquisition as two visits.

use crate::common::out_dir;
use ildtrack_app::{AnalyzeOptions, Manifest, VisitInput};
use ildtrack_compute::CpuBackend;
use ildtrack_model::change::ClassFooting;
use ildtrack_track::{Comparison, Status};
use std::path::PathBuf;

#[test]
fn kernel_change_is_not_read_as_change_in_the_registered_map() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let Some(data) = ildtrack_dicom::shared_data::for_test(&root) else {
        return;
    };
    let visit = |kernel: &str, date: &str| VisitInput {
        date: Some(date.into()),
        ..VisitInput::from_path(data.join(format!("lung-pet-ct-dx/A0001-kernel-{kernel}")))
    };
    let manifest = Manifest {
        day0: None,
        visits: vec![visit("B", "2024-01-10"), visit("L", "2024-03-10")],
        rule: None,
    };
    let out = out_dir("registration-kernels");
    let b = CpuBackend::new();
    let r = ildtrack_app::track(&b, &manifest, &out, &AnalyzeOptions::default(), &|_, _| {})
        .expect("track");
    let (v0, v1) = (&r.visits[0], &r.visits[1]);
    // The two reconstructions' own figures differ by well over a point: the kernel alone.
    let own = v1.metrics.affected_pct - v0.metrics.affected_pct;
    assert!(own.abs() > 1.0, "own figures differ by {own:.2} points");
    let reg = v1.registration.as_ref().expect("registration summary");
    assert!(reg.quality.accepted, "{}", reg.quality.reason);
    assert_eq!(reg.classes_footing, ClassFooting::KernelHarmonized);
    let d = reg.followup_metrics.affected_pct - reg.baseline_metrics.affected_pct;
    let dg = reg.followup_metrics.ggo_pct - reg.baseline_metrics.ggo_pct;
    eprintln!(
        "own {own:+.2} points; registered affected {d:+.2}, GGO {dg:+.2} points, {:.0} mL moved",
        reg.moved_ml
    );
    // The harmonization targets (docs/HARMONIZATION.md), on the same voxels.
    assert!(d.abs() <= 1.0, "registered affected moved {d:.2} points");
    assert!(dg.abs() <= 1.0, "registered GGO moved {dg:.2} points");
    assert_eq!(v1.basis.comparison, Comparison::Registered, "{}", v1.reason);
    assert_eq!(v1.status, Status::Stable, "{}", v1.reason);
    let change = std::fs::read_to_string(
        out.join(reg.dir.as_deref().expect("maps written"))
            .join("change.json"),
    )
    .expect("change.json");
    assert!(change.contains("\"classes_footing\": \"kernel-harmonized\""));
}
