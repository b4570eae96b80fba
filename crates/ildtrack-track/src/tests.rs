use super::*;
use crate::synthetic::{SyntheticVisit, visit_result};

fn tv(date: &str, affected: f64) -> TrackVisit {
    TrackVisit::new(visit_result(&SyntheticVisit::new(date, affected)))
}

/// Whether a visit's own warnings include `code`.
fn warns(v: &TrackedVisit, code: &str) -> bool {
    v.warnings.iter().any(|w| w.code == code)
}

fn statuses(t: &TrackResult) -> Vec<Status> {
    t.visits.iter().map(|v| v.status).collect()
}

/// check(affected % per visit in date order, expected verdicts)
fn check(values: &[f64], expect: &[Status]) {
    let visits = values
        .iter()
        .enumerate()
        .map(|(i, &a)| tv(&format!("2024-01-{:02}", i + 1), a))
        .collect();
    let t = track(visits, None, &TrackConfig::default()).expect("track");
    assert_eq!(statuses(&t), expect, "values {values:?}");
}

#[test]
fn verdict_rule_table() {
    use Status::*;
    check(&[10.0], &[Baseline]);
    check(&[10.0, 15.0], &[Baseline, Progressed]); // exactly 5 points vs baseline
    check(&[10.0, 14.9], &[Baseline, Progressed]); // 4.9 vs baseline, but 4.9 >= 3 vs previous, same trend
    check(&[10.0, 12.9], &[Baseline, Stable]);
    check(&[10.0, 7.0], &[Baseline, Improved]); // -3 vs previous = baseline, same trend
    check(&[10.0, 5.0], &[Baseline, Improved]);
    // +3 vs previous but still below baseline: not the same trend.
    check(&[10.0, 6.0, 9.0], &[Baseline, Improved, Stable]);
    // -3 vs previous but still above baseline: not the same trend.
    check(&[10.0, 14.0, 11.0], &[Baseline, Progressed, Stable]);
    // Far above baseline even while improving vs previous.
    check(&[10.0, 30.0, 20.0], &[Baseline, Progressed, Progressed]);
    // Drifting by 2 per visit: the baseline rule catches it at the third step.
    check(
        &[10.0, 12.0, 14.0, 16.0],
        &[Baseline, Stable, Stable, Progressed],
    );
}

#[test]
fn visits_sorted_by_date_then_time_and_days_from_day0() {
    let mut late_same_day = tv("2024-02-01", 12.0);
    late_same_day.result.series.series_time = Some("15:00:00".into());
    let visits = vec![
        late_same_day,
        tv("2024-03-01", 13.0),
        tv("2024-02-01", 11.0),
        tv("2024-01-01", 10.0),
    ];
    let t = track(visits, Some("2024-02-15"), &TrackConfig::default()).expect("track");
    let order: Vec<usize> = t.visits.iter().map(|v| v.input_index).collect();
    assert_eq!(order, vec![3, 2, 0, 1]);
    let days: Vec<Option<i64>> = t.visits.iter().map(|v| v.day).collect();
    assert_eq!(days, vec![Some(-45), Some(-14), Some(-14), Some(15)]);
    assert_eq!(t.visits[0].status, Status::Baseline);
    assert_eq!(t.day0.as_deref(), Some("2024-02-15"));
}

#[test]
fn date_override_wins_and_bad_dates_are_errors() {
    let mut a = tv("2024-05-01", 10.0);
    a.study_date = Some("2023-01-01".into());
    let t = track(
        vec![tv("2024-01-01", 10.0), a],
        None,
        &TrackConfig::default(),
    )
    .expect("track");
    assert_eq!(t.visits[0].study_date.as_deref(), Some("2023-01-01"));
    assert_eq!(t.visits[1].day, Some(365));

    let mut bad = tv("2024-01-01", 10.0);
    bad.study_date = Some("2024-02-30".into());
    let err = track(vec![bad], None, &TrackConfig::default()).expect_err("bad date");
    assert!(err.to_string().contains("2024-02-30"), "{err}");
    assert!(matches!(
        track(vec![], None, &TrackConfig::default()),
        Err(TrackError::NoVisits)
    ));
    assert!(
        track(
            vec![tv("2024-01-01", 1.0)],
            Some("01/02/2024"),
            &TrackConfig::default()
        )
        .is_err()
    );
}

#[test]
fn missing_date_goes_last_with_warning() {
    let mut undated = tv("2024-01-01", 10.0);
    undated.result.series.study_date = None;
    let t = track(
        vec![undated, tv("2024-06-01", 10.0)],
        None,
        &TrackConfig::default(),
    )
    .expect("track");
    assert_eq!(t.visits[1].input_index, 0);
    assert_eq!(t.visits[1].day, None);
    assert!(t.warnings.iter().any(|w| w.code == "missing-study-date"));
}

#[test]
fn deltas_cover_every_region_and_match_values() {
    let t = track(
        vec![
            tv("2024-01-01", 10.0),
            tv("2024-02-01", 16.0),
            tv("2024-03-01", 13.0),
        ],
        None,
        &TrackConfig::default(),
    )
    .expect("track");
    let v = &t.visits[2];
    let dp = v.delta_previous.as_ref().expect("previous");
    let db = v.delta_baseline.as_ref().expect("baseline");
    assert_eq!(dp.against_visit, 1);
    assert_eq!(db.against_visit, 0);
    assert_eq!(dp.days_between, Some(29));
    assert!((dp.metrics["affected_pct"] - (13.0 - 16.0)).abs() < 1e-9);
    assert!((db.metrics["affected_pct"] - 3.0).abs() < 1e-9);
    assert_eq!(db.zones.len(), 6);
    let rl = db.zones["right_lower"]["affected_pct"];
    let expect_rl =
        t.visits[2].zones.right_lower.affected_pct - t.visits[0].zones.right_lower.affected_pct;
    assert!((rl - expect_rl).abs() < 1e-9 && rl > 0.0);
    assert!(
        db.sides.left.contains_key("mean_hu")
            && db.subpleural.contains_key("ggo_ml")
            && db.core.contains_key("haa_pct")
    );
    assert!(t.visits[0].delta_previous.is_none() && t.visits[0].delta_baseline.is_none());
    assert!(
        v.reason.contains("13.0") && v.reason.contains("-3.0"),
        "{}",
        v.reason
    );
    assert_eq!(v.rule, TrackConfig::default().rule_text());
}

#[test]
fn protocol_mismatches_warn_and_caveat_the_verdict() {
    let base = SyntheticVisit::new("2024-01-01", 10.0);
    let other = SyntheticVisit {
        study_date: Some("2024-04-01".into()),
        affected_pct: 20.0,
        kernel: Some("L".into()),
        slice_thickness_mm: Some(5.0),
        kvp: Some(100.0),
        manufacturer: Some("Other".into()),
        contrast_agent: Some("Omnipaque".into()),
        volume_ml: 2500.0,
        patient_age_years: Some(12.0),
        noise_sd_hu: Some(45.0),
        ..Default::default()
    };
    let t = track(
        vec![
            TrackVisit::new(visit_result(&base)),
            TrackVisit::new(visit_result(&other)),
        ],
        None,
        &TrackConfig::default(),
    )
    .expect("track");
    let v = &t.visits[1];
    let codes: Vec<&str> = v.warnings.iter().map(|w| w.code.as_str()).collect();
    for c in [
        "kernel-mismatch",
        "slice-thickness-mismatch",
        "kvp-mismatch",
        "scanner-mismatch",
        "contrast-mismatch",
        "lung-volume-change",
        "pediatric-patient",
        "noise-mismatch",
    ] {
        assert!(codes.contains(&c), "{c} missing in {codes:?}");
    }
    assert!(v.basis.protocol_mismatch);
    assert!(v.reason.contains("Caution"), "{}", v.reason);
    // No duplicate when the previous visit is the baseline.
    assert_eq!(codes.iter().filter(|c| **c == "kernel-mismatch").count(), 1);
    let va = v.volume_adjusted.as_ref().expect("volume adjusted");
    assert!((va.volume_change_pct - (-16.666_667)).abs() < 1e-3);
    // Mass conservation: MLD at the baseline volume is lower (less dense) than measured.
    let mld = v.metrics.mean_hu.expect("mld");
    let adj = va.mean_hu_at_reference_volume.expect("adj");
    assert!((adj - (-1000.0 + (mld + 1000.0) * 2500.0 / 3000.0)).abs() < 1e-6);
    assert!(adj < mld);
    // Same protocol: no warnings.
    let same = track(
        vec![tv("2024-01-01", 10.0), tv("2024-02-01", 10.5)],
        None,
        &TrackConfig::default(),
    )
    .expect("track");
    assert!(
        same.visits[1].warnings.is_empty(),
        "{:?}",
        same.visits[1].warnings
    );
    assert!(!same.visits[1].reason.contains("Caution"));
}

#[test]
fn segmentation_doubts_caveat_the_verdict() {
    let mut doubted = visit_result(&SyntheticVisit::new("2024-04-01", 20.0));
    doubted.warnings.push(Warning::new(
        "segmentation-doubt",
        "dense tissue more than 30 mm thick lies between the right lung and its ribs",
    ));
    let t = track(
        vec![
            tv("2024-01-01", 10.0),
            TrackVisit::new(doubted),
            tv("2024-07-01", 21.0),
        ],
        None,
        &TrackConfig::default(),
    )
    .expect("track");
    assert!(!t.visits[0].basis.segmentation_doubt);
    // The doubted visit itself, and the next one (compared with it as the previous visit).
    for (i, who) in [(1, "this visit"), (2, "the previous visit")] {
        let v = &t.visits[i];
        assert!(v.basis.segmentation_doubt, "visit {i}");
        assert!(
            v.reason.contains("segmentation of") && v.reason.contains(who),
            "visit {i}: {}",
            v.reason
        );
    }
    // A doubt on the baseline reaches every later verdict.
    let mut base = visit_result(&SyntheticVisit::new("2024-01-01", 10.0));
    base.warnings
        .push(Warning::new("segmentation-doubt", "only one lung found"));
    let t = track(
        vec![TrackVisit::new(base), tv("2024-04-01", 10.5)],
        None,
        &TrackConfig::default(),
    )
    .expect("track");
    assert!(t.visits[0].reason.contains("in doubt"));
    assert!(t.visits[1].basis.segmentation_doubt);
    assert!(t.visits[1].reason.contains("the baseline"));
    // No doubt, no caution.
    let t = track(
        vec![tv("2024-01-01", 10.0), tv("2024-04-01", 10.5)],
        None,
        &TrackConfig::default(),
    )
    .expect("track");
    assert!(!t.visits[1].basis.segmentation_doubt);
    assert!(!t.visits[1].reason.contains("in doubt"));
}

#[test]
fn single_slices_get_no_inspiration_adjustment() {
    // Two single slices of different thickness: "volumes" 17 vs 40 mL. The mass-conserving
    // adjustment made of that an MLD of +314 HU (A046441 of COVID-19-NY-SBU).
    let mut a = visit_result(&SyntheticVisit::new("2024-01-01", 10.0));
    let mut b = visit_result(&SyntheticVisit {
        volume_ml: 2.0 * 3000.0,
        ..SyntheticVisit::new("2024-04-01", 10.0)
    });
    let three_d = track(
        vec![TrackVisit::new(a.clone()), TrackVisit::new(b.clone())],
        None,
        &TrackConfig::default(),
    )
    .expect("track");
    assert!(three_d.visits[1].volume_adjusted.is_some());
    a.series.dims_zyx[0] = 1;
    b.series.dims_zyx[0] = 1;
    let t = track(
        vec![TrackVisit::new(a), TrackVisit::new(b)],
        None,
        &TrackConfig::default(),
    )
    .expect("track");
    assert!(t.visits[1].volume_adjusted.is_none());
}

#[test]
fn contrast_none_strings_are_not_contrast() {
    let mut a = SyntheticVisit::new("2024-01-01", 10.0);
    a.contrast_agent = Some("NONE".into());
    let t = track(
        vec![TrackVisit::new(visit_result(&a)), tv("2024-02-01", 10.0)],
        None,
        &TrackConfig::default(),
    )
    .expect("track");
    assert!(!warns(&t.visits[1], "contrast-mismatch"));
}

#[test]
fn configurable_metric_and_limits() {
    let cfg = TrackConfig {
        metric: "mean_hu".into(),
        baseline_points: 20.0,
        previous_points: 10.0,
        ..Default::default()
    };
    // mean_hu = -860 + 4 ggo + 7.5 cons; ggo 7 / cons 3 per 10 points affected: +10 points -> +50.5 HU.
    let t = track(
        vec![tv("2024-01-01", 10.0), tv("2024-02-01", 20.0)],
        None,
        &cfg,
    )
    .expect("track");
    assert_eq!(t.visits[1].status, Status::Progressed);
    assert!(t.rule.contains("mean_hu") && t.rule.contains("20"));
    let bad = TrackConfig {
        metric: "nonsense".into(),
        ..Default::default()
    };
    assert!(matches!(
        track(vec![tv("2024-01-01", 1.0)], None, &bad),
        Err(TrackError::UnknownMetric(_))
    ));
    let bad = TrackConfig {
        baseline_points: -1.0,
        ..Default::default()
    };
    assert!(matches!(
        track(vec![tv("2024-01-01", 1.0)], None, &bad),
        Err(TrackError::InvalidConfig(_))
    ));
    // Lower is worse (e.g. skewness).
    let cfg = TrackConfig {
        metric: "p15_hu".into(),
        higher_is_worse: false,
        ..Default::default()
    };
    let t = track(
        vec![tv("2024-01-01", 10.0), tv("2024-02-01", 20.0)],
        None,
        &cfg,
    )
    .expect("track");
    assert_eq!(t.visits[1].status, Status::Improved);
}

#[test]
fn csv_has_one_row_per_visit_and_matching_columns() {
    let mut a = tv("2024-01-01", 10.0);
    a.label = Some("pre, \"infusion\"".into());
    a.fvc_pct_pred = Some(71.5);
    let t = track(
        vec![a, tv("2024-02-01", 16.0)],
        Some("2024-01-15"),
        &TrackConfig::default(),
    )
    .expect("track");
    let csv = t.to_csv();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3);
    let header: Vec<&str> = lines[0].split(',').collect();
    assert!(header.contains(&"affected_pct") && header.contains(&"delta_baseline_affected_pct"));
    assert!(lines[1].contains("\"pre, \"\"infusion\"\"\""));
    assert!(lines[1].contains("71.5") && lines[1].contains(",-14,baseline,"));
    let row2: Vec<&str> = lines[2].split(',').collect();
    assert_eq!(row2.len(), header.len());
    let col = header
        .iter()
        .position(|h| *h == "delta_baseline_affected_pct")
        .expect("col");
    assert_eq!(row2[col], "6");
    let st = header.iter().position(|h| *h == "status").expect("col");
    assert_eq!(row2[st], "progressed");
}

#[test]
fn json_round_trips() {
    let t = track(
        vec![tv("2024-01-01", 10.0), tv("2024-02-01", 16.0)],
        None,
        &TrackConfig::default(),
    )
    .expect("track");
    let s = t.to_json().expect("json");
    let back: TrackResult = serde_json::from_str(&s).expect("parse");
    assert_eq!(back, t);
    let v: serde_json::Value = serde_json::from_str(&s).expect("value");
    for k in [
        "study_date",
        "day",
        "label",
        "metrics",
        "sides",
        "zones",
        "delta_previous",
        "delta_baseline",
        "status",
        "rule",
        "warnings",
    ] {
        assert!(v["visits"][1].get(k).is_some(), "visits[].{k} missing");
    }
    assert_eq!(v["visits"][1]["status"], "progressed");
}

#[test]
fn empty_lung_is_indeterminate() {
    let mut a = tv("2024-02-01", 0.0);
    a.result.lungs.whole.volume_ml = 0.0;
    let t = track(
        vec![tv("2024-01-01", 10.0), a],
        None,
        &TrackConfig::default(),
    )
    .expect("track");
    assert_eq!(t.visits[1].status, Status::Indeterminate);
    assert!(
        t.visits[1].reason.contains("no lung"),
        "{}",
        t.visits[1].reason
    );
}

#[test]
fn zone_shares_that_move_are_flagged() {
    let mut b = tv("2024-02-01", 10.0);
    // Upper right zone doubles at the expense of the lower one: coverage changed.
    b.result.lungs.zones.right_upper.volume_ml *= 2.0;
    b.result.lungs.zones.right_lower.volume_ml *= 0.5;
    let t = track(
        vec![tv("2024-01-01", 10.0), b],
        None,
        &TrackConfig::default(),
    )
    .expect("track");
    let w: Vec<&Warning> = t.visits[1]
        .warnings
        .iter()
        .filter(|w| w.code == "zone-alignment")
        .collect();
    assert_eq!(w.len(), 1, "{:?}", t.visits[1].warnings);
    assert!(w[0].message.contains("right"), "{}", w[0].message);
    let same = track(
        vec![tv("2024-01-01", 10.0), tv("2024-02-01", 12.0)],
        None,
        &TrackConfig::default(),
    )
    .expect("track");
    assert!(!warns(&same.visits[1], "zone-alignment"));
}

#[test]
fn noise_mismatch_is_flagged_under_the_same_kernel_name() {
    // Same kernel name, noise 20 vs 38 HU (a lower dose or another vendor's "B"): flagged;
    // 20 vs 26 HU (ratio 1.3) is not.
    let run = |n: f64| {
        let other = SyntheticVisit {
            noise_sd_hu: Some(n),
            ..SyntheticVisit::new("2024-04-01", 10.0)
        };
        let t = track(
            vec![
                TrackVisit::new(visit_result(&SyntheticVisit::new("2024-01-01", 10.0))),
                TrackVisit::new(visit_result(&other)),
            ],
            None,
            &TrackConfig::default(),
        )
        .expect("track");
        warns(&t.visits[1], "noise-mismatch")
    };
    assert!(run(38.0));
    assert!(!run(26.0));
    let mut cfg = TrackConfig::default();
    cfg.tolerances.noise_ratio = 0.5;
    assert!(validate_config(&cfg).is_err());
}

/// A harmonization record with `status` and, where applied, `lungs`.
fn harmonization(
    status: ildtrack_model::visit::HarmonizationStatus,
    lungs: Option<ildtrack_model::visit::Lungs>,
) -> ildtrack_model::visit::Harmonization {
    ildtrack_model::visit::Harmonization {
        mode: "auto".into(),
        status,
        reason: "no fat, muscle or blood on the sampled slices".into(),
        band_sigmas_mm: vec![0.5, 1.0, 2.0],
        reference_band_sd_hu: vec![5.0, 5.5, 7.3],
        measured_band_sd_hu: Vec::new(),
        gains: Vec::new(),
        tissue_voxels: 0,
        noise_before_hu: None,
        noise_after_hu: None,
        lungs,
        histogram: None,
    }
}

/// A soft baseline (measured at the reference) and a sharp follow-up (kernel L) whose own
/// figures read 6 points worse, its harmonized ones 0.3 points.
fn soft_and_sharp() -> (VisitResult, VisitResult) {
    use ildtrack_model::visit::HarmonizationStatus::*;
    let mut soft = visit_result(&SyntheticVisit::new("2024-01-01", 10.0));
    soft.harmonization = Some(harmonization(NotNeeded, None));
    let spec = SyntheticVisit {
        study_date: Some("2024-04-01".into()),
        affected_pct: 16.0,
        kernel: Some("L".into()),
        noise_sd_hu: Some(50.0),
        ..Default::default()
    };
    let harmonized = visit_result(&SyntheticVisit {
        affected_pct: 10.3,
        ..spec.clone()
    })
    .lungs;
    let mut sharp = visit_result(&spec);
    sharp.harmonization = Some(harmonization(Applied, Some(harmonized)));
    (soft, sharp)
}

#[test]
fn kernel_change_is_judged_on_harmonized_metrics_or_not_at_all() {
    use ildtrack_model::visit::HarmonizationStatus::*;
    // The verdict follows the harmonized figures and says so.
    let (soft, sharp) = soft_and_sharp();
    let run = |a: &VisitResult, b: &VisitResult| {
        track(
            vec![TrackVisit::new(a.clone()), TrackVisit::new(b.clone())],
            None,
            &TrackConfig::default(),
        )
        .expect("track")
    };
    let t = run(&soft, &sharp);
    let v = &t.visits[1];
    assert_eq!(v.status, Status::Stable, "{}", v.reason);
    assert_eq!(v.basis.density_metrics, DensityMetrics::Harmonized);
    assert!(
        v.reason.contains("kernel-harmonized metrics"),
        "{}",
        v.reason
    );
    assert!(
        warns(v, "kernel-mismatch"),
        "the mismatch is still reported"
    );
    let d = v.delta_baseline.as_ref().expect("deltas").metrics["affected_pct"];
    assert!((d - 0.3).abs() < 1e-6, "delta {d}");
    // The visit's own figures stay the scan's.
    assert_eq!(v.metrics, sharp.lungs.whole);
    // Without harmonization (switched off) the raw jump is not judged: not comparable, volume
    // still compared.
    let mut unharmonized = sharp.clone();
    unharmonized.harmonization = Some(harmonization(Unavailable, None));
    let t = run(&soft, &unharmonized);
    let v = &t.visits[1];
    assert_eq!(v.status, Status::Indeterminate, "{}", v.reason);
    assert_eq!(v.basis.density_metrics, DensityMetrics::NotComparable);
    assert!(v.reason.contains("not comparable"), "{}", v.reason);
    assert!(v.reason.contains("no fat, muscle or blood"), "{}", v.reason);
    let d = &v.delta_baseline.as_ref().expect("deltas").metrics;
    assert!(
        d.contains_key("volume_ml") && !d.contains_key("affected_pct"),
        "{d:?}"
    );
    // Same kernel: each visit's own figures, harmonized or not.
    let mut same = sharp.clone();
    same.series.study_date = Some("2024-06-01".into());
    let t = run(&sharp, &same);
    assert_eq!(t.visits[1].basis.density_metrics, DensityMetrics::Raw);
}

/// Same kernel, one visit noisier (dose, patient size): each visit's own figures are compared,
/// with the noise difference warned about. Harmonizing only the noisier one raised its GGO on
/// real standard-kernel slices by 3-23 points while its own figure stayed put: a false
/// progression if the verdict used it.
#[test]
fn a_noise_difference_alone_is_judged_on_each_visits_own_figures() {
    use ildtrack_model::visit::HarmonizationStatus::*;
    let mut quiet = visit_result(&SyntheticVisit {
        study_date: Some("2024-01-01".into()),
        affected_pct: 42.0,
        kernel: Some("STANDARD".into()),
        noise_sd_hu: Some(9.9),
        ..Default::default()
    });
    quiet.harmonization = Some(harmonization(NotNeeded, None));
    let noisy_spec = SyntheticVisit {
        study_date: Some("2024-01-12".into()),
        affected_pct: 43.4,
        kernel: Some("STANDARD".into()),
        noise_sd_hu: Some(17.6),
        ..Default::default()
    };
    let harmonized = visit_result(&SyntheticVisit {
        affected_pct: 61.3,
        ..noisy_spec.clone()
    })
    .lungs;
    let mut noisy = visit_result(&noisy_spec);
    noisy.harmonization = Some(harmonization(Applied, Some(harmonized)));
    let t = track(
        vec![TrackVisit::new(quiet), TrackVisit::new(noisy)],
        None,
        &TrackConfig::default(),
    )
    .expect("track");
    let v = &t.visits[1];
    assert_eq!(v.basis.density_metrics, DensityMetrics::Raw);
    assert_eq!(v.status, Status::Stable, "{}", v.reason);
    assert!(
        warns(v, "noise-mismatch"),
        "the noise difference is still said"
    );
}

/// A follow-up's registration summary with the registered affected % of both visits.
fn registered(baseline: f64, followup: f64, accepted: bool) -> RegistrationSummary {
    use ildtrack_model::change::{RegionChange, RegisteredMetrics, RegistrationQuality};
    let m = |a: f64| RegisteredMetrics {
        affected_pct: a,
        ggo_pct: a,
        ..Default::default()
    };
    RegistrationSummary {
        dir: None,
        quality: RegistrationQuality {
            lung_dice: if accepted { 0.97 } else { 0.6 },
            similarity_before: 0.03,
            similarity_after: 0.02,
            folding_pct: 0.0,
            mean_jacobian: 0.85,
            coverage_pct: 98.0,
            accepted,
            reason: if accepted {
                String::new()
            } else {
                "lung Dice 0.600 < 0.9".into()
            },
        },
        baseline_metrics: m(baseline),
        followup_metrics: m(followup),
        whole: RegionChange::default(),
        moved_ml: 0.0,
        new_ggo_uncorrected_ml: 0.0,
        resolved_ggo_uncorrected_ml: 0.0,
        migration: None,
        classes_footing: Default::default(),
    }
}

/// A shallower breath raises the follow-up's own affected % by 6 points (progressed on its own
/// figures); registered and corrected for breath it moved 0.5: the verdict follows the
/// registered comparison and says so, and the setting switches back.
#[test]
fn registered_comparison_decides_where_the_registration_passed() {
    let mut fu = tv("2024-02-01", 16.0);
    fu.registered = Some(registered(10.2, 10.7, true));
    let visits = vec![tv("2024-01-01", 10.0), fu.clone()];
    let t = track(visits.clone(), None, &TrackConfig::default()).expect("track");
    let v = &t.visits[1];
    assert_eq!(v.status, Status::Stable, "{}", v.reason);
    assert_eq!(v.basis.comparison, Comparison::Registered);
    assert_eq!(v.basis.value, Some(10.7));
    assert_eq!(v.basis.baseline_value, Some(10.2));
    assert!(v.reason.contains("Registered comparison"), "{}", v.reason);
    assert!(v.registration.is_some());

    let cfg = TrackConfig {
        comparison: Comparison::Unregistered,
        ..TrackConfig::default()
    };
    let t = track(visits, None, &cfg).expect("track");
    assert_eq!(t.visits[1].status, Status::Progressed);
    assert_eq!(t.visits[1].basis.comparison, Comparison::Unregistered);

    // A third visit compares with the previous follow-up's registered figure, not its own.
    let mut third = tv("2024-03-01", 17.0);
    third.registered = Some(registered(10.2, 14.0, true));
    let t = track(
        vec![tv("2024-01-01", 10.0), fu, third],
        None,
        &TrackConfig::default(),
    )
    .expect("track");
    let v = &t.visits[2];
    assert_eq!(v.basis.previous_value, Some(10.7));
    assert_eq!(v.status, Status::Progressed, "{}", v.reason); // +3.3 vs previous, same trend
}

/// A sharp baseline and a soft follow-up compared on harmonized metrics: the baseline carries
/// its harmonized figures too (the follow-up's deltas are against them), a visit compared raw
/// carries none.
#[test]
fn the_reference_visit_of_a_harmonized_comparison_shows_its_harmonized_figures() {
    let (mut soft, mut sharp) = soft_and_sharp();
    sharp.series.study_date = Some("2024-01-01".into());
    soft.series.study_date = Some("2024-04-01".into());
    let t = track(
        vec![TrackVisit::new(sharp.clone()), TrackVisit::new(soft)],
        None,
        &TrackConfig::default(),
    )
    .expect("track");
    assert_eq!(
        t.visits[1].basis.density_metrics,
        DensityMetrics::Harmonized
    );
    let h = t.visits[0]
        .harmonized_metrics
        .as_ref()
        .expect("baseline's harmonized figures");
    assert!((h.affected_pct - 10.3).abs() < 1e-9, "{}", h.affected_pct);
    let same = track(
        vec![tv("2024-01-01", 10.0), tv("2024-02-01", 11.0)],
        None,
        &TrackConfig::default(),
    )
    .expect("track");
    assert!(same.visits.iter().all(|v| v.harmonized_metrics.is_none()));
}

/// Across kernels a registration's figures decide only when its change map classified both
/// visits on the reference kernel's footing; a map of each scan's own classes (which reads the
/// kernel as disease) does not.
#[test]
fn registered_comparison_across_kernels_needs_harmonized_classes() {
    let (soft, sharp) = soft_and_sharp();
    let sharp = TrackVisit::new(sharp);
    let judge = |footing: ClassFooting, fu_registered: f64| {
        let mut fu = sharp.clone();
        let mut r = registered(10.2, fu_registered, true);
        r.classes_footing = footing;
        fu.registered = Some(r);
        let t = track(
            vec![TrackVisit::new(soft.clone()), fu],
            None,
            &TrackConfig::default(),
        )
        .expect("track");
        t.visits[1].clone()
    };
    // Own classes across kernels: registered +7 points would read progressed; not used.
    let v = judge(ClassFooting::Own, 17.2);
    assert_eq!(v.basis.comparison, Comparison::Unregistered, "{}", v.reason);
    assert_eq!(v.status, Status::Stable, "{}", v.reason);
    // Harmonized classes: used, and the reason says on what footing.
    let v = judge(ClassFooting::KernelHarmonized, 10.6);
    assert_eq!(v.basis.comparison, Comparison::Registered, "{}", v.reason);
    assert_eq!(v.basis.value, Some(10.6));
    assert!(
        v.reason.contains("soft reference kernel's footing"),
        "{}",
        v.reason
    );
    let v = judge(ClassFooting::KernelHarmonized, 17.2);
    assert_eq!(v.status, Status::Progressed, "{}", v.reason);
}

/// A shallower breath (lungs 20 % smaller): `lung-volume-change` is said either way, but
/// cautions the verdict only where the comparison was not corrected for breath.
#[test]
fn breath_cautions_only_the_unregistered_verdict() {
    let mut fu = TrackVisit::new(visit_result(&SyntheticVisit {
        volume_ml: 2400.0,
        ..SyntheticVisit::new("2024-02-01", 12.0)
    }));
    fu.registered = Some(registered(10.0, 10.4, true));
    let visits = vec![tv("2024-01-01", 10.0), fu];
    let t = track(visits.clone(), None, &TrackConfig::default()).expect("track");
    let v = &t.visits[1];
    assert_eq!(v.basis.comparison, Comparison::Registered);
    assert!(warns(v, "lung-volume-change"));
    assert!(!v.basis.protocol_mismatch, "{}", v.reason);
    assert!(!v.reason.contains("differ in protocol"), "{}", v.reason);
    let cfg = TrackConfig {
        comparison: Comparison::Unregistered,
        ..TrackConfig::default()
    };
    let t = track(visits, None, &cfg).expect("track");
    let v = &t.visits[1];
    assert!(v.basis.protocol_mismatch);
    assert!(v.reason.contains("lung-volume-change"), "{}", v.reason);
}

/// A rejected registration: warned with its reason, the verdict on each visit's own figures.
#[test]
fn rejected_registration_is_warned_and_not_used() {
    let mut fu = tv("2024-02-01", 16.0);
    fu.registered = Some(registered(10.2, 10.7, false));
    let t = track(
        vec![tv("2024-01-01", 10.0), fu],
        None,
        &TrackConfig::default(),
    )
    .expect("track");
    let v = &t.visits[1];
    assert!(warns(v, "registration-rejected"));
    assert!(
        v.warnings
            .iter()
            .any(|w| w.message.contains("lung Dice 0.600"))
    );
    assert_eq!(v.basis.comparison, Comparison::Unregistered);
    assert_eq!(v.status, Status::Progressed);
}

/// Disease that moved between zones is warned even when the whole lung is stable.
#[test]
fn migrated_disease_is_warned() {
    let mut fu = tv("2024-02-01", 10.0);
    let mut r = registered(10.0, 10.1, true);
    r.migration =
        Some("disease moved: more in right_lower +80 mL while left_upper -75 mL cleared".into());
    fu.registered = Some(r);
    let t = track(
        vec![tv("2024-01-01", 10.0), fu],
        None,
        &TrackConfig::default(),
    )
    .expect("track");
    assert_eq!(t.visits[1].status, Status::Stable);
    assert!(warns(&t.visits[1], "disease-migrated"));
}

/// `zones = "baseline"`: a registered follow-up's zones (and zone deltas) are the baseline's
/// thirds carried over; the default keeps each visit's own.
#[test]
fn zones_follow_the_setting() {
    let base = tv("2024-01-01", 10.0);
    let mut fu = tv("2024-02-01", 10.0);
    let mut carried = fu.result.lungs.zones.clone();
    carried.right_lower.ggo_pct += 7.0;
    fu.zones_on_baseline = Some(carried.clone());
    let visits = vec![base.clone(), fu.clone()];
    let own = track(visits.clone(), None, &TrackConfig::default()).expect("track");
    assert_eq!(own.visits[1].zones_source, ZoneSource::Own);
    assert_eq!(own.visits[1].zones, fu.result.lungs.zones);
    let cfg = TrackConfig {
        zones: ZoneSource::Baseline,
        ..TrackConfig::default()
    };
    let t = track(visits, None, &cfg).expect("track");
    let v = &t.visits[1];
    assert_eq!(v.zones_source, ZoneSource::Baseline);
    assert_eq!(v.zones, carried);
    let d = v.delta_baseline.as_ref().expect("delta");
    let want = carried.right_lower.ggo_pct - base.result.lungs.zones.right_lower.ggo_pct;
    assert!((d.zones["right_lower"]["ggo_pct"] - want).abs() < 1e-6);
    assert_eq!(t.visits[0].zones_source, ZoneSource::Own);
}
