//! `--dicom-out` on the real series of `../shared/data`: the DICOM Segmentation is read back by
//! highdicom (the test venv; `scripts/dicom_out_check.py`) — segments, labels, codes, every
//! segment's voxels equal to `lungs.nii.gz` / `classes.nii.gz` of the same run, frames only
//! where a segment is present, the source series, study, patient and Frame of Reference — and
//! `dciodvfy` (dicom3tools) reports no error in it. The TID 1500 Structured Report is parsed by
//! highdicom's MeasurementReport and holds the visit's numbers, its lung groups referencing the
//! SEG's segments; `dciodvfy` reports no error in it either. A NIfTI or NRRD input is refused
//! up front.

use crate::common::out_dir;
use ildtrack_app::{AnalyzeOptions, DICOM_SEG_FILE, DICOM_SR_FILE};
use ildtrack_compute::CpuBackend;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn dicom_seg_and_sr_read_back_in_highdicom_equal_to_the_outputs_and_pass_dciodvfy() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let Some(data) = ildtrack_dicom::shared_data::for_test(manifest) else {
        return;
    };
    let Some(py) = ildtrack_dicom::shared_data::tools_python_for_test(
        manifest,
        &["highdicom", "pydicom", "SimpleITK", "numpy"],
    ) else {
        return;
    };
    let Some(dciodvfy) = ildtrack_dicom::shared_data::tool_for_test("dciodvfy", &[]) else {
        return;
    };
    let opts = AnalyzeOptions {
        dicom_out: true,
        ..Default::default()
    };
    for name in ["A0002-kernel-B70f", "A0001-kernel-L"] {
        let dicom = data.join("lung-pet-ct-dx").join(name);
        let out = out_dir(&format!("dicom-out-{name}"));
        let v = ildtrack_app::analyze_to_dir(&CpuBackend::new(), &dicom, &out, &opts, &|_, _| {})
            .expect("analyze --dicom-out");
        let seg = out.join(DICOM_SEG_FILE);
        assert_eq!(v.dicom_seg.as_deref(), Some(seg.as_path()));
        assert!(seg.is_file());

        let o = Command::new(&py)
            .arg(root().join("scripts/dicom_out_check.py"))
            .args([&seg, &dicom, &out])
            .output()
            .expect("run dicom_out_check.py");
        assert!(
            o.status.success(),
            "{name}: dicom_out_check.py failed:\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let c: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
        eprintln!(
            "{name}: SEG {} frames ({} expected), {} bytes",
            c["frames"],
            c["expected_frames"],
            std::fs::metadata(&seg).map(|m| m.len()).unwrap_or(0)
        );
        assert_eq!(c["segmentation_type"], "BINARY");
        for key in [
            "frame_of_reference_equal",
            "study_equal",
            "patient_equal",
            "referenced_series_equal",
            "referenced_instances",
            "new_series_uid",
        ] {
            assert_eq!(c[key], true, "{name}: {key}");
        }
        assert_eq!(
            c["frames"], c["expected_frames"],
            "{name}: frames only where a segment is present"
        );
        let segs = c["segments"].as_array().expect("segments");
        let labels: Vec<&str> = segs
            .iter()
            .map(|s| s["label"].as_str().unwrap_or(""))
            .collect();
        assert_eq!(
            labels,
            [
                "Right lung",
                "Left lung",
                "Low attenuation",
                "Ground-glass opacity",
                "Consolidation",
                "Vessels and dense structures"
            ]
        );
        let types: Vec<String> = segs
            .iter()
            .map(|s| format!("{}:{}", s["type"][0], s["type"][1]).replace('"', ""))
            .collect();
        assert_eq!(
            types,
            [
                "SCT:3341006",
                "SCT:44029006",
                "DCM:112084",
                "DCM:112120",
                "SCT:95436008",
                "SCT:59820001"
            ]
        );
        for s in segs {
            assert_eq!(s["voxels_equal"], true, "{name}: segment {}", s["label"]);
            assert_eq!(s["algorithm"], "AUTOMATIC");
        }
        assert!(
            segs[0]["voxels"].as_u64().unwrap_or(0) > 100_000,
            "{name}: right lung empty?"
        );

        // The SR: highdicom's MeasurementReport parses it; each group's numbers are the
        // visit's, the right and left lung groups reference segments 1 and 2 of this SEG.
        let sr = out.join(DICOM_SR_FILE);
        assert_eq!(v.dicom_sr.as_deref(), Some(sr.as_path()));
        let o = Command::new(&py)
            .arg(root().join("scripts/dicom_out_check.py"))
            .arg("sr")
            .args([&sr, &seg])
            .output()
            .expect("run dicom_out_check.py sr");
        assert!(
            o.status.success(),
            "{name}: dicom_out_check.py sr failed:\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let c: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
        assert_eq!(c["template"], "1500");
        for key in ["evidence_has_seg_series", "study_equal", "patient_equal"] {
            assert_eq!(c[key], true, "{name}: SR {key}");
        }
        let groups = c["groups"].as_array().expect("groups");
        assert_eq!(groups.len(), 3, "{name}: {groups:?}");
        let l = &v.result.lungs;
        let z = &l.zones;
        let side = |ms: [&ildtrack_model::visit::Metrics; 3]| {
            ms.iter().map(|m| f64::from(m.extent_score)).sum::<f64>()
        };
        let want = [
            (
                "right lung",
                "1411",
                "3341006",
                Some(1),
                &l.right,
                side([&z.right_upper, &z.right_middle, &z.right_lower]),
            ),
            (
                "left lung",
                "1411",
                "44029006",
                Some(2),
                &l.left,
                side([&z.left_upper, &z.left_middle, &z.left_lower]),
            ),
            (
                "both lungs",
                "1501",
                "39607008",
                None,
                &l.whole,
                f64::from(z.total_extent_score()),
            ),
        ];
        for (g, (id, template, site, segment, m, score)) in groups.iter().zip(want) {
            assert_eq!(g["tracking_identifier"], id);
            assert_eq!(g["template"], template, "{id}");
            assert_eq!(g["finding_site"][0], site, "{id}");
            assert_eq!(g["has_tracking_uid"], true, "{id}");
            if let Some(n) = segment {
                assert_eq!(g["segment_numbers"][0], n, "{id}");
                assert_eq!(g["segment_of_this_seg"], true, "{id}");
            }
            let got = |k: &str, unit: &str| {
                assert_eq!(g["measurements"][k][1], unit, "{name} {id} {k}");
                g["measurements"][k][0].as_f64().expect("value")
            };
            // Written as DICOM decimal strings (at most 16 characters): 6 decimals kept.
            let close = |a: f64, b: f64| (a - b).abs() <= 1e-6 * b.abs().max(1.0);
            assert!(
                close(got("Volume", "ml"), m.volume_ml),
                "{name} {id} volume"
            );
            let mean = m.mean_hu.expect("mean HU");
            assert!(
                close(got("Attenuation Coefficient", "[hnsf'U]"), mean),
                "{name} {id} mean"
            );
            assert!(close(
                got("Low attenuation area below -950 HU", "%"),
                m.laa950_pct
            ));
            assert!(close(
                got("Ground-glass opacity volume fraction", "%"),
                m.ggo_pct
            ));
            assert!(close(
                got("Consolidation volume fraction", "%"),
                m.consolidation_pct
            ));
            assert!(close(
                got("Affected lung volume fraction", "%"),
                m.affected_pct
            ));
            assert_eq!(
                got("Six-zone extent score", "{score}"),
                score,
                "{name} {id}"
            );
        }

        // dciodvfy prints "Error - …" for every conformance error; warnings are allowed (they
        // concern attributes copied from the source, e.g. an empty Study ID, and the SR's
        // private coding scheme 99ILDTRACK). Only the error lines are shown, never the whole
        // output (it quotes the patient's name).
        for (file, iod) in [(&seg, "Segmentation"), (&sr, "ComprehensiveSR")] {
            let o = Command::new(&dciodvfy)
                .arg(file)
                .output()
                .expect("run dciodvfy");
            let text = String::from_utf8_lossy(&o.stderr).to_string()
                + &String::from_utf8_lossy(&o.stdout);
            assert!(
                text.lines().any(|l| l.trim() == iod),
                "{name}: dciodvfy did not check it as {iod}"
            );
            let errors: Vec<&str> = text.lines().filter(|l| l.starts_with("Error")).collect();
            assert!(
                errors.is_empty(),
                "{name} {iod}: dciodvfy errors:\n{}",
                errors.join("\n")
            );
        }
        let _ = std::fs::remove_dir_all(&out);
    }
}

#[test]
fn dicom_out_on_nifti_or_nrrd_input_is_unusable_input_before_any_analysis() {
    let dir = out_dir("dicom-out-refused");
    let vol = ildtrack_volume::Volume::new(
        ndarray::Array3::<u8>::zeros((2, 4, 4)),
        ildtrack_volume::Geometry::default(),
    );
    let nii = dir.join("ct.nii.gz");
    ildtrack_dicom::nifti::write_u8(&nii, &vol).expect("write nifti");
    let nrrd = dir.join("ct.nrrd");
    ildtrack_dicom::nrrd::write_u8(&nrrd, &vol).expect("write nrrd");
    let opts = AnalyzeOptions {
        dicom_out: true,
        ..Default::default()
    };
    for (input, format) in [(&nii, "NIfTI"), (&nrrd, "NRRD")] {
        let e = ildtrack_app::analyze_to_dir(
            &CpuBackend::new(),
            input,
            &dir.join("o"),
            &opts,
            &|_, _| {},
        )
        .expect_err("refused");
        let s = e.to_string();
        assert!(e.is_unusable_input(), "{s}");
        assert!(
            s.contains("needs a DICOM source") && s.contains(format),
            "{s}"
        );
        assert!(
            !dir.join("o/visit.json").exists(),
            "analysed before refusing"
        );
    }
}

/// A real DICOM series in which no lung is found (the 2-frame enhanced CT sample): nothing to
/// put in a Segmentation (it needs a frame), so neither object is written, the visit says so,
/// and the run still succeeds.
#[test]
fn dicom_out_without_lung_voxels_writes_neither_object_and_warns() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let Some(data) = ildtrack_dicom::shared_data::for_test(manifest) else {
        return;
    };
    let out = out_dir("dicom-out-empty");
    let opts = AnalyzeOptions {
        dicom_out: true,
        ..Default::default()
    };
    let input = data.join("transfer-syntaxes/enhanced-ct/eCT_Supplemental.dcm");
    let v = ildtrack_app::analyze_to_dir(&CpuBackend::new(), &input, &out, &opts, &|_, _| {})
        .expect("analyze");
    assert_eq!(
        v.result.lungs.whole.voxel_count, 0,
        "the sample has no lungs"
    );
    assert!(
        v.result
            .warnings
            .iter()
            .any(|w| w.code == "dicom-out-empty")
    );
    assert_eq!((v.dicom_seg, v.dicom_sr), (None, None));
    assert!(!out.join(DICOM_SEG_FILE).exists() && !out.join(DICOM_SR_FILE).exists());
}

/// `track --dicom-out`: every visit folder gets its SEG and SR (here on phantom DICOM).
#[test]
fn track_with_dicom_out_writes_seg_and_sr_per_visit() {
    let root = out_dir("track-dicom-out");
    let inputs = crate::pipeline::write_small_visits(&root.join("dicom"), 2);
    let out = root.join("out");
    let m = ildtrack_app::Manifest {
        visits: inputs,
        ..Default::default()
    };
    let opts = AnalyzeOptions {
        dicom_out: true,
        ..Default::default()
    };
    let r = ildtrack_app::track_detailed(&CpuBackend::new(), &m, &out, &opts, &|_, _| {})
        .expect("track");
    assert_eq!(r.result.visits.len(), 2);
    for v in &r.result.visits {
        let dir = out.join(v.dir.as_deref().expect("dir"));
        for f in [DICOM_SEG_FILE, DICOM_SR_FILE] {
            assert!(dir.join(f).is_file(), "{} missing in {}", f, dir.display());
        }
    }
}

/// A series with a missing slice: the loader interpolates it, so that frame has no source
/// image; the SEG must still pass dciodvfy (its Derivation Image Sequence present and empty).
#[test]
fn dicom_seg_of_a_series_with_a_gap_passes_dciodvfy() {
    let Some(dciodvfy) = ildtrack_dicom::shared_data::tool_for_test("dciodvfy", &[]) else {
        return;
    };
    let root = out_dir("dicom-out-gap");
    let inputs = crate::pipeline::write_small_visits(&root.join("dicom"), 1);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&inputs[0].path)
        .expect("ls")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    files.sort();
    std::fs::remove_file(&files[files.len() / 2]).expect("remove a middle slice");
    let opts = AnalyzeOptions {
        dicom_out: true,
        ..Default::default()
    };
    let v = ildtrack_app::analyze_to_dir(
        &CpuBackend::new(),
        &inputs[0].path,
        &root.join("out"),
        &opts,
        &|_, _| {},
    )
    .expect("analyze");
    assert!(
        v.result.warnings.iter().any(|w| w.code.contains("gap")
            || w.message.contains("gap")
            || w.message.contains("missing")),
        "the loader did not see the gap: {:?}",
        v.result.warnings
    );
    for (file, iod) in [
        (v.dicom_seg.expect("SEG"), "Segmentation"),
        (v.dicom_sr.expect("SR"), "ComprehensiveSR"),
    ] {
        let o = Command::new(&dciodvfy)
            .arg(&file)
            .output()
            .expect("run dciodvfy");
        let text =
            String::from_utf8_lossy(&o.stderr).to_string() + &String::from_utf8_lossy(&o.stdout);
        assert!(
            text.lines().any(|l| l.trim() == iod),
            "not checked as {iod}"
        );
        let errors: Vec<&str> = text.lines().filter(|l| l.starts_with("Error")).collect();
        assert!(errors.is_empty(), "{iod}: {}", errors.join("\n"));
    }
}
