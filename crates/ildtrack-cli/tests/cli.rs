//! The `ildtrack` binary as a user runs it: exit codes, JSON outputs, files written.

use std::path::{Path, PathBuf};
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ildtrack"))
}

fn shared_data() -> Option<PathBuf> {
    ildtrack_dicom::shared_data::for_test(Path::new(env!("CARGO_MANIFEST_DIR")))
}

#[test]
fn missing_input_is_exit_code_2_with_the_path_in_the_message() {
    let out = bin()
        .args(["inspect", "/definitely/not/here"])
        .output()
        .expect("run ildtrack");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/definitely/not/here"), "stderr: {err}");
}

#[test]
fn empty_folder_is_unusable_input() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out_dir = tempfile::tempdir().expect("tempdir");
    let out = bin()
        .args(["analyze"])
        .arg(dir.path())
        .arg("--out")
        .arg(out_dir.path().join("o"))
        .args(["--backend", "cpu"])
        .output()
        .expect("run ildtrack");
    assert_eq!(
        out.status.code(),
        Some(2),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out_dir.path().join("o/visit.json").exists());
}

#[test]
fn thresholds_that_do_not_increase_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = bin()
        .args(["analyze", "x", "--out"])
        .arg(dir.path())
        .args(["--ggo-lo-hu", "-200", "--backend", "cpu"])
        .output()
        .expect("run ildtrack");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("thresholds must increase"));
}

#[test]
fn inspect_json_lists_series_and_the_choice() {
    let Some(data) = shared_data() else { return };
    let out = bin()
        .arg("inspect")
        .arg(data.join("lung-pet-ct-dx/A0002-kernel-B70f"))
        .arg("--json")
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("inspect --json is JSON");
    let series = v["series"].as_array().expect("series array");
    assert_eq!(series.len(), 1);
    assert_eq!(series[0]["n_slices"], 30);
    assert_eq!(v["chosen"], 0);
    assert_eq!(series[0]["kernel"], "B70f");
}

#[test]
fn analyze_a_real_slice_writes_every_output_and_no_patient_identity() {
    let Some(data) = shared_data() else { return };
    let out_dir = tempfile::tempdir().expect("tempdir");
    let out = bin()
        .args(["analyze"])
        .arg(data.join("lungmask-slice/lidc-slice.dcm"))
        .arg("--out")
        .arg(out_dir.path())
        .args(["--backend", "cpu"])
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stderr: {stderr}");
    for f in [
        "visit.json",
        "lungs.nii.gz",
        "classes.nii.gz",
        "report.html",
        "qc_axial_middle.png",
    ] {
        assert!(out_dir.path().join(f).is_file(), "{f} missing");
    }
    // One slice: one axial picture, no coronal one (a coronal view of one slice is a line).
    assert!(!out_dir.path().join("qc_coronal.png").exists());
    let v: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out_dir.path().join("visit.json")).expect("read"),
    )
    .expect("json");
    assert_eq!(v["series"]["dims_zyx"][0], 1);
    let ml = v["lungs"]["whole"]["volume_ml"].as_f64().expect("volume");
    assert!(ml > 0.0);
    // Loader and analysis both notice the single slice: it is reported once.
    assert_eq!(
        v["warnings"]
            .as_array()
            .expect("warnings")
            .iter()
            .filter(|w| w["code"] == "single-slice")
            .count(),
        1
    );
    // The LIDC header carries a patient name/ID; none of it may reach stdout, stderr or the JSON.
    let obj = dicom_like_identity(&data.join("lungmask-slice/lidc-slice.dcm"));
    for s in obj.iter().filter(|s| s.len() >= 4) {
        assert!(
            !stdout.contains(s.as_str()) && !stderr.contains(s.as_str()),
            "identity leaked to the terminal"
        );
        assert!(
            !v.to_string().contains(s.as_str()),
            "identity leaked to visit.json"
        );
    }
}

/// Patient name and ID as the loader reads them (through the library, not printed).
fn dicom_like_identity(path: &Path) -> Vec<String> {
    match ildtrack_dicom::load(path, &ildtrack_dicom::LoadOptions::default()) {
        Ok(s) => [s.identity.patient_name, s.identity.patient_id]
            .into_iter()
            .flatten()
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// `--backend gpu` (any wgpu adapter, Mesa lavapipe in CI) gives the same `visit.json` metrics as
/// `--backend cpu`. Tolerances: volumes within 0.5 %, HU statistics within 1 HU, percentages
/// within 0.5 points (the GPU Gaussian may round a few voxels differently; masks, counts and
/// histograms are exact).
#[test]
fn analyze_gpu_matches_cpu_on_a_real_series() {
    let Some(data) = shared_data() else { return };
    if ildtrack_gpu::probe().is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but no wgpu adapter: install mesa-vulkan-drivers"
        );
        eprintln!("skipped: no wgpu adapter");
        return;
    }
    // B40f: harmonization not needed; B70f: harmonized (the band measurement and the
    // harmonized crop go through the backend's `gaussian_mix`).
    for series in ["A0002-kernel-B40f", "A0002-kernel-B70f"] {
        gpu_matches_cpu(&data.join("lung-pet-ct-dx").join(series), series);
    }
}

fn gpu_matches_cpu(input: &Path, series: &str) {
    let run = |backend: &str| -> serde_json::Value {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = bin()
            .arg("analyze")
            .arg(input)
            .arg("--out")
            .arg(dir.path())
            .args(["--backend", backend])
            .output()
            .expect("run");
        assert!(
            out.status.success(),
            "{backend}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_str(
            &std::fs::read_to_string(dir.path().join("visit.json")).expect("visit.json"),
        )
        .expect("json")
    };
    let cpu = run("cpu");
    let gpu = run("gpu");
    assert_eq!(cpu["backend"], "cpu");
    assert_eq!(gpu["backend"], "gpu");
    let (hc, hg) = (&cpu["harmonization"], &gpu["harmonization"]);
    assert_eq!(hc["status"], hg["status"], "{series}: harmonization status");
    for (c, g) in hc["measured_band_sd_hu"]
        .as_array()
        .into_iter()
        .flatten()
        .zip(hg["measured_band_sd_hu"].as_array().into_iter().flatten())
    {
        let (c, g) = (
            c.as_f64().unwrap_or(f64::NAN),
            g.as_f64().unwrap_or(f64::NAN),
        );
        assert!((c - g).abs() <= 0.05, "{series}: band SD cpu {c} gpu {g}");
    }
    let regions = ["whole", "left", "right", "subpleural", "core"];
    let mut pairs = vec![(&cpu["lungs"], &gpu["lungs"])];
    if hc["status"] == "applied" {
        pairs.push((&hc["lungs"], &hg["lungs"]));
    }
    for (r, (lc, lg)) in pairs
        .iter()
        .flat_map(|&p| regions.iter().map(move |r| (*r, p)))
    {
        let (c, g) = (&lc[r], &lg[r]);
        let num = |v: &serde_json::Value, k: &str| v[k].as_f64().unwrap_or(f64::NAN);
        let vol_c = num(c, "volume_ml");
        assert!(
            (vol_c - num(g, "volume_ml")).abs() <= 0.005 * vol_c.max(1.0),
            "{r} volume_ml"
        );
        for k in ["mean_hu", "sd_hu", "p10_hu", "p50_hu", "p90_hu"] {
            assert!(
                (num(c, k) - num(g, k)).abs() <= 1.0,
                "{series} {r} {k}: cpu {} gpu {}",
                num(c, k),
                num(g, k)
            );
        }
        for k in [
            "ggo_pct",
            "consolidation_pct",
            "affected_pct",
            "laa950_pct",
            "haa_pct",
        ] {
            assert!(
                (num(c, k) - num(g, k)).abs() <= 0.5,
                "{series} {r} {k}: cpu {} gpu {}",
                num(c, k),
                num(g, k)
            );
        }
    }
}

#[test]
fn probing_for_a_gpu_prints_no_display_error_without_a_runtime_dir() {
    // Where XDG_RUNTIME_DIR is unset (ssh, containers, CI), Mesa's Vulkan drivers probing for
    // a Wayland display made libwayland print "error: XDG_RUNTIME_DIR is invalid or not set"
    // twice per run: an error-looking line about a display ildtrack never uses.
    let Some(data) = shared_data() else { return };
    let out_dir = tempfile::tempdir().expect("tempdir");
    let out = bin()
        .env_remove("XDG_RUNTIME_DIR")
        .arg("analyze")
        .arg(data.join("lungmask-slice/lidc-slice.dcm"))
        .arg("--out")
        .arg(out_dir.path())
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stderr: {stderr}");
    assert!(!stderr.contains("XDG_RUNTIME_DIR"), "stderr: {stderr}");
}

/// `--format nrrd` writes the NRRD maps and the Slicer segmentation instead of NIfTI.
#[test]
fn analyze_with_format_nrrd_writes_nrrd_maps_and_a_slicer_segmentation() {
    let Some(data) = shared_data() else { return };
    let out_dir = tempfile::tempdir().expect("tempdir");
    let out = bin()
        .args(["analyze"])
        .arg(data.join("lungmask-slice/lidc-slice.dcm"))
        .arg("--out")
        .arg(out_dir.path())
        .args(["--backend", "cpu", "--format", "nrrd"])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for f in ["lungs.nrrd", "classes.nrrd", "segmentation.seg.nrrd"] {
        assert!(out_dir.path().join(f).is_file(), "{f} missing");
    }
    assert!(!out_dir.path().join("lungs.nii.gz").exists());
    let head = std::fs::read(out_dir.path().join("segmentation.seg.nrrd")).expect("read");
    let head = String::from_utf8_lossy(&head[..head.len().min(4096)]).to_string();
    assert!(head.contains("Segment0_Name:=right lung"), "{head}");
}

/// A NRRD that is not a CT volume (here 4-D) is unusable input: exit code 2, the file named.
#[test]
fn an_unsupported_nrrd_is_exit_code_2_naming_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("vectors.nrrd");
    std::fs::write(
        &p,
        "NRRD0004\ntype: short\ndimension: 4\nsizes: 3 2 2 2\nendian: little\nencoding: raw\n\n",
    )
    .expect("write");
    let out = bin()
        .arg("analyze")
        .arg(&p)
        .arg("--out")
        .arg(dir.path().join("o"))
        .args(["--backend", "cpu"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("vectors.nrrd") && err.contains("dimension 4"),
        "stderr: {err}"
    );
}

/// `--dicom-out` needs a DICOM source: a NRRD input is exit code 2 with the reason.
#[test]
fn dicom_out_on_a_nrrd_input_is_exit_code_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("ct.nrrd");
    std::fs::write(
        &p,
        "NRRD0004\ntype: short\ndimension: 3\nsizes: 2 2 2\nendian: little\nencoding: raw\n\n\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
    )
    .expect("write");
    let out = bin()
        .arg("analyze")
        .arg(&p)
        .arg("--out")
        .arg(dir.path().join("o"))
        .args(["--backend", "cpu", "--dicom-out"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("needs a DICOM source") && err.contains("ct.nrrd"),
        "stderr: {err}"
    );
}
