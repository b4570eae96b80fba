//! The pipeline end to end on phantom DICOM: demo verdicts, the content cache, manifests.

use crate::common::out_dir;
use ildtrack_app::{AnalyzeOptions, Manifest, VisitInput};
use ildtrack_compute::CpuBackend;
use std::path::Path;
use std::time::Instant;

#[test]
fn demo_verdicts_are_the_scripted_ones() {
    let out = out_dir("demo");
    let visits = ildtrack_phantom::demo_patient();
    let t0 = Instant::now();
    let outcome = ildtrack_app::demo_with(
        &CpuBackend::new(),
        &out,
        visits.clone(),
        &AnalyzeOptions::default(),
        &|_, _| {},
    )
    .expect("demo");
    let secs = t0.elapsed().as_secs_f64();
    eprintln!("demo: {} visits in {secs:.1} s", visits.len());
    let r = &outcome.result;
    eprintln!("{}", r.summary_text());
    assert_eq!(r.visits.len(), visits.len());
    let mism = ildtrack_app::demo_mismatches(r, &visits);
    assert!(mism.is_empty(), "verdicts differ from the script: {mism:?}");
    // Days from day 0 as scripted.
    for v in &r.visits {
        assert_eq!(v.day, Some(visits[v.input_index].day), "{:?}", v.label);
    }
    // Deltas match the generator's truth (affected % of both lungs, vs baseline).
    let t1 = Instant::now();
    let truth: Vec<f64> = visits
        .iter()
        .map(|dv| {
            ildtrack_phantom::generate(&dv.spec)
                .truth
                .summary()
                .affected_pct
        })
        .collect();
    eprintln!("truth regenerated in {:.1} s", t1.elapsed().as_secs_f64());
    let base = r.visits[0].input_index;
    for v in r.visits.iter().skip(1) {
        let measured = v
            .delta_baseline
            .as_ref()
            .map(|d| d.metrics["affected_pct"])
            .expect("delta");
        let expected = truth[v.input_index] - truth[base];
        eprintln!(
            "{:<24} delta vs baseline: measured {measured:+.1}, truth {expected:+.1} points",
            visits[v.input_index].label
        );
        assert!(
            (measured - expected).abs() <= 2.0,
            "{}: measured {measured:.1} vs truth {expected:.1}",
            visits[v.input_index].label
        );
    }
    // The +180 visit used a sharper kernel: the verdict carries the warning.
    let sharp = r
        .visits
        .iter()
        .find(|v| visits[v.input_index].day == 180)
        .expect("+180");
    assert!(
        sharp.warnings.iter().any(|w| w.code == "kernel-mismatch"),
        "{:?}",
        sharp.warnings
    );
    for f in ["track.json", "track.csv", "index.html"] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    for v in &r.visits {
        let d = out.join(v.dir.as_deref().expect("dir"));
        for f in [
            "visit.json",
            "lungs.nii.gz",
            "classes.nii.gz",
            "report.html",
            "qc_axial_upper.png",
            "qc_coronal.png",
        ] {
            assert!(d.join(f).is_file(), "{} missing", d.join(f).display());
        }
    }
    // No patient name or ID anywhere in the reports (the phantom's DICOM has them).
    for v in &r.visits {
        let html =
            std::fs::read_to_string(out.join(v.dir.as_deref().unwrap_or("")).join("report.html"))
                .expect("report");
        assert!(!html.contains("DEMO^CHILD") && !html.contains("DEMO-MDA5-001"));
    }
    let index = std::fs::read_to_string(out.join("index.html")).expect("index");
    assert!(!index.contains("DEMO^CHILD") && !index.contains("DEMO-MDA5-001"));
    // No temporary files left behind.
    for e in walkdir::WalkDir::new(&out)
        .into_iter()
        .filter_map(Result::ok)
    {
        let name = e.file_name().to_string_lossy();
        // ildtrack_fs names its temporary files and folders `.<target>.<random>.tmp`.
        assert!(!name.ends_with(".tmp"), "leftover {}", e.path().display());
    }
    crate::harness::check_file(&out.join("index.html"), "demo-index", 4);
    let last = r.visits.last().and_then(|v| v.dir.clone()).expect("dir");
    // Four QC pictures of the previous visit and four of this one, then the change section's
    // four baseline / registered follow-up pairs.
    crate::harness::check_file(&out.join(last).join("report.html"), "demo-report", 16);
}

pub(crate) fn write_small_visits(root: &Path, n: usize) -> Vec<VisitInput> {
    let visits = ildtrack_phantom::demo_patient_sized([24, 96, 96], [10.0, 3.2, 3.2]);
    visits
        .iter()
        .take(n)
        .map(|dv| {
            let dir = root.join(&dv.study_date);
            let ph = ildtrack_phantom::generate(&dv.spec);
            ildtrack_phantom::write_dicom_series(
                &ph,
                &dir,
                &ildtrack_phantom::WriteOptions::default(),
            )
            .expect("write dicom");
            VisitInput {
                path: dir,
                label: Some(dv.label.clone()),
                ..Default::default()
            }
        })
        .collect()
}

#[test]
fn rerun_after_adding_a_visit_analyses_only_that_visit() {
    let root = out_dir("cache");
    let inputs = write_small_visits(&root.join("dicom"), 3);
    let out = root.join("out");
    let b = CpuBackend::new();
    let opts = AnalyzeOptions::default();
    let m2 = Manifest {
        day0: Some(ildtrack_phantom::DEMO_DAY0.into()),
        visits: inputs[..2].to_vec(),
        rule: None,
    };
    let first = ildtrack_app::track_detailed(&b, &m2, &out, &opts, &|_, _| {}).expect("track 2");
    assert_eq!((first.analysed.len(), first.from_cache.len()), (2, 0));
    let report0 = out
        .join(first.result.visits[0].dir.as_deref().expect("dir"))
        .join("report.html");
    let fresh_html = std::fs::read(&report0).expect("report");

    let m3 = Manifest {
        visits: inputs.clone(),
        ..m2.clone()
    };
    let second = ildtrack_app::track_detailed(&b, &m3, &out, &opts, &|_, _| {}).expect("track 3");
    assert_eq!(
        second.analysed,
        vec![inputs[2].path.clone()],
        "only the new visit is analysed"
    );
    assert_eq!(second.from_cache.len(), 2);
    assert_eq!(second.result.visits.len(), 3);
    // Cached results are the same numbers and the same pages as fresh ones.
    assert_eq!(
        second.result.visits[0].metrics,
        first.result.visits[0].metrics
    );
    assert!(
        std::fs::read(&report0).expect("report") == fresh_html,
        "the baseline's report changed when read from the cache"
    );

    // A changed setting invalidates the cache.
    let mut changed = opts.clone();
    changed.config.thresholds.ggo_lo_hu = -720;
    let third =
        ildtrack_app::track_detailed(&b, &m3, &out, &changed, &|_, _| {}).expect("track changed");
    assert_eq!(third.analysed.len(), 3);
    // Changed input bytes invalidate it too.
    let f = std::fs::read_dir(&inputs[0].path)
        .expect("ls")
        .filter_map(Result::ok)
        .next()
        .expect("a file")
        .path();
    let mut bytes = std::fs::read(&f).expect("read");
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&f, bytes).expect("write");
    let fourth =
        ildtrack_app::track_detailed(&b, &m3, &out, &changed, &|_, _| {}).expect("track edited");
    assert_eq!(fourth.analysed, vec![inputs[0].path.clone()]);
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("track.json")).expect("track.json"))
            .expect("json");
    assert_eq!(json["visits"].as_array().map(Vec::len), Some(3));
    let csv = std::fs::read_to_string(out.join("track.csv")).expect("csv");
    assert_eq!(csv.lines().count(), 4);
}

/// The workflow's split: `analyze` per visit into a shared cache, then `track` with the same
/// cache analyses nothing, and its numbers are those `analyze` wrote.
#[test]
fn track_takes_visits_that_analyze_put_in_a_shared_cache() {
    let root = out_dir("shared-cache");
    let inputs = write_small_visits(&root.join("dicom"), 2);
    let b = CpuBackend::new();
    let opts = AnalyzeOptions {
        cache_dir: Some(root.join("cache")),
        ..Default::default()
    };
    let mut written = Vec::new();
    for (i, v) in inputs.iter().enumerate() {
        let out = root.join(format!("visit-{i}"));
        let o =
            ildtrack_app::analyze_to_dir(&b, &v.path, &out, &opts, &|_, _| {}).expect("analyze");
        for f in [
            "visit.json",
            "lungs.nii.gz",
            "classes.nii.gz",
            "report.html",
        ] {
            assert!(
                out.join(f).is_file(),
                "analyze through the cache wrote no {f}"
            );
        }
        written.push(o.result);
    }
    // Again through the cache: the same result, nothing analysed (timings are from the cache).
    let again =
        ildtrack_app::analyze_to_dir(&b, &inputs[0].path, &root.join("again"), &opts, &|_, _| {})
            .expect("analyze again");
    assert_eq!(again.result, written[0]);
    let m = Manifest {
        day0: None,
        visits: inputs.clone(),
        rule: None,
    };
    let t = ildtrack_app::track_detailed(&b, &m, &root.join("track"), &opts, &|_, _| {})
        .expect("track");
    assert_eq!(
        t.analysed,
        Vec::<std::path::PathBuf>::new(),
        "track analysed again"
    );
    assert_eq!(t.from_cache.len(), 2);
    assert!(
        !root.join("track/.ildtrack-cache").exists(),
        "track used its own cache, not the shared one"
    );
    for v in &t.result.visits {
        assert_eq!(v.metrics, written[v.input_index].lungs.whole);
    }
}

#[test]
fn manifest_reads_paths_dates_and_rule() {
    let dir = out_dir("manifest");
    let text = r#"
day0 = "2024-03-11"
[[visit]]
path = "scans/a"
label = "pre-infusion"
date = "2024-02-06"
fvc_pct_pred = 62
dlco_pct_pred = 48.5
[[visit]]
path = "/abs/b"
[rule]
baseline_points = 6
"#;
    let p = dir.join("patient.toml");
    std::fs::write(&p, text).expect("write");
    let m = Manifest::from_toml_path(&p).expect("parse");
    assert_eq!(m.day0.as_deref(), Some("2024-03-11"));
    assert_eq!(m.visits.len(), 2);
    assert_eq!(m.visits[0].path, dir.join("scans/a"));
    assert_eq!(m.visits[0].fvc_pct_pred, Some(62.0));
    assert_eq!(m.visits[1].path, Path::new("/abs/b"));
    let rule = m.rule.expect("rule");
    assert_eq!((rule.baseline_points, rule.previous_points), (6.0, 3.0));

    for (bad, needle) in [
        ("day0 = \"11/03/2024\"", "day0"),
        (
            "[[visit]]\npath = \"a\"\ndate = \"2024-13-01\"",
            "2024-13-01",
        ),
        ("[[visit]]\npath = \"a\"\ncolour = 1", "colour"),
        ("[rule]\nmetric = \"nope\"", "nope"),
        ("day0 = ", ""),
    ] {
        std::fs::write(&p, bad).expect("write");
        let e = Manifest::from_toml_path(&p).expect_err(bad);
        let msg = e.to_string();
        assert!(
            msg.contains(needle) && msg.contains("patient.toml"),
            "{msg}"
        );
        assert!(e.is_unusable_input());
    }
    let e = Manifest::from_toml_path(&dir.join("missing.toml")).expect_err("missing");
    assert!(e.to_string().contains("missing.toml"));
}

#[test]
fn analyze_to_dir_writes_every_output() {
    let root = out_dir("analyze");
    let inputs = write_small_visits(&root.join("dicom"), 1);
    let out = root.join("out");
    let opts = AnalyzeOptions {
        identify: true,
        ..Default::default()
    };
    let v =
        ildtrack_app::analyze_to_dir(&CpuBackend::new(), &inputs[0].path, &out, &opts, &|_, _| {})
            .expect("analyze");
    for p in [&v.visit_json, &v.lungs_map, &v.classes_map, &v.report_html] {
        assert!(p.is_file(), "{} missing", p.display());
    }
    assert_eq!(v.qc_pngs.len(), 4);
    assert!(v.summary.contains("affected"), "{}", v.summary);
    let html = std::fs::read_to_string(&v.report_html).expect("html");
    assert!(html.contains("DEMO^CHILD"), "identify shows the name");
    let err = ildtrack_app::analyze_to_dir(
        &CpuBackend::new(),
        &root.join("nothing-here"),
        &out,
        &opts,
        &|_, _| {},
    )
    .expect_err("missing");
    assert!(
        err.is_unusable_input() && err.to_string().contains("nothing-here"),
        "{err}"
    );
}

fn shared_data() -> Option<std::path::PathBuf> {
    ildtrack_dicom::shared_data::for_test(Path::new(env!("CARGO_MANIFEST_DIR")))
}

/// The same real acquisition reconstructed with two kernels, tracked as two visits: the
/// verdict carries the kernel warning, lung volumes agree, the kernel's density effect is in
/// each visit's own figures, and the deltas and the verdict — on kernel-harmonized metrics —
/// read "stable" (issue 19).
#[test]
fn real_kernel_pair_is_flagged() {
    let Some(data) = shared_data() else { return };
    let root = out_dir("kernel-pair");
    let pair = data.join("lung-pet-ct-dx");
    let m = Manifest {
        day0: None,
        visits: vec![
            VisitInput {
                path: pair.join("A0001-kernel-B"),
                label: Some("standard kernel B".into()),
                ..Default::default()
            },
            VisitInput {
                path: pair.join("A0001-kernel-L"),
                label: Some("lung kernel L".into()),
                // Same acquisition: a later date makes it the "follow-up".
                date: Some("2099-01-01".into()),
                ..Default::default()
            },
        ],
        rule: None,
    };
    let t = ildtrack_app::track(
        &CpuBackend::new(),
        &m,
        &root,
        &AnalyzeOptions::default(),
        &|_, _| {},
    )
    .expect("track");
    let v = &t.visits[1];
    eprintln!("{}", t.summary_text());
    let codes: Vec<&str> = v.warnings.iter().map(|w| w.code.as_str()).collect();
    assert!(codes.contains(&"kernel-mismatch"), "{codes:?}");
    assert!(!codes.contains(&"lung-volume-change"), "{codes:?}");
    assert!(v.basis.protocol_mismatch && v.reason.contains("Caution"));
    let db = v.delta_baseline.as_ref().expect("deltas");
    let vol_change = db.metrics["volume_ml"] / t.visits[0].metrics.volume_ml * 100.0;
    assert!(
        vol_change.abs() < 3.0,
        "lung volume moved {vol_change:.1} % with the kernel"
    );
    // The sharp kernel widens the histogram: its own SD and LAA-950 are higher ...
    let (own, base) = (&v.metrics, &t.visits[0].metrics);
    assert!(
        own.sd_hu.unwrap_or(0.0) - base.sd_hu.unwrap_or(0.0) > 10.0,
        "SD {:?} vs {:?}",
        own.sd_hu,
        base.sd_hu
    );
    assert!(
        own.laa950_pct - base.laa950_pct > 1.0,
        "LAA {} vs {}",
        own.laa950_pct,
        base.laa950_pct
    );
    // ... but the comparison is on harmonized metrics: no change of disease.
    assert_eq!(
        v.basis.density_metrics,
        ildtrack_track::DensityMetrics::Harmonized
    );
    assert_eq!(v.status, ildtrack_track::Status::Stable, "{}", v.reason);
    assert!(
        db.metrics["laa950_pct"].abs() <= 1.0,
        "harmonized LAA delta {}",
        db.metrics["laa950_pct"]
    );
    assert!(v.reason.contains("kernel-harmonized"), "{}", v.reason);
    let html = std::fs::read_to_string(
        root.join(v.dir.as_deref().expect("dir"))
            .join("report.html"),
    )
    .expect("report");
    assert!(html.contains("kernel-mismatch"));
}

#[test]
fn cache_key_follows_bytes_paths_settings_and_dicomdir_folders() {
    let root = out_dir("cache-key");
    let a = root.join("a");
    std::fs::create_dir_all(a.join("sub")).expect("mkdir");
    std::fs::write(a.join("sub/x.dcm"), b"one").expect("write");
    std::fs::write(a.join("DICOMDIR"), b"index").expect("write");
    let cfg = ildtrack_analysis::AnalysisConfig::default();
    let k1 = ildtrack_app::cache_key(&a, &cfg, None).expect("key");
    assert_eq!(
        k1,
        ildtrack_app::cache_key(&a, &cfg, None).expect("key"),
        "stable"
    );
    // A copy elsewhere with the same relative paths and bytes has the same key.
    let b = root.join("b");
    std::fs::create_dir_all(b.join("sub")).expect("mkdir");
    std::fs::write(b.join("sub/x.dcm"), b"one").expect("write");
    std::fs::write(b.join("DICOMDIR"), b"index").expect("write");
    assert_eq!(k1, ildtrack_app::cache_key(&b, &cfg, None).expect("key"));
    // The DICOMDIR file stands for its folder.
    assert_eq!(
        k1,
        ildtrack_app::cache_key(&a.join("DICOMDIR"), &cfg, None).expect("key")
    );
    std::fs::write(b.join("sub/x.dcm"), b"two").expect("write");
    assert_ne!(
        k1,
        ildtrack_app::cache_key(&b, &cfg, None).expect("key"),
        "bytes"
    );
    std::fs::rename(b.join("sub/x.dcm"), b.join("sub/y.dcm")).expect("mv");
    std::fs::write(b.join("sub/y.dcm"), b"one").expect("write");
    assert_ne!(
        k1,
        ildtrack_app::cache_key(&b, &cfg, None).expect("key"),
        "paths"
    );
    let mut cfg2 = cfg.clone();
    cfg2.thresholds.haa_hi_hu = -240;
    assert_ne!(
        k1,
        ildtrack_app::cache_key(&a, &cfg2, None).expect("key"),
        "settings"
    );
    assert_ne!(
        k1,
        ildtrack_app::cache_key(&a, &cfg, Some("1.2.3")).expect("key"),
        "series"
    );
    assert!(ildtrack_app::cache_key(&root.join("nope"), &cfg, None).is_err());
}

/// A single real slice: one axial picture, no coronal, the single-slice warning in the report.
#[test]
fn single_real_slice_gives_one_picture() {
    let Some(data) = shared_data() else { return };
    let out = out_dir("single-slice");
    let v = ildtrack_app::analyze_to_dir(
        &CpuBackend::new(),
        &data.join("lungmask-slice/lidc-slice.dcm"),
        &out,
        &AnalyzeOptions::default(),
        &|_, _| {},
    )
    .expect("analyze");
    assert_eq!(v.qc_pngs.len(), 1, "{:?}", v.qc_pngs);
    let html = std::fs::read_to_string(&v.report_html).expect("html");
    assert_eq!(html.matches("<img ").count(), 1);
    assert!(
        html.contains("single-slice"),
        "the single-slice warning reaches the report"
    );
}
