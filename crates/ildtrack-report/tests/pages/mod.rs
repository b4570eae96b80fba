//! Page content without a browser: escaping, identity, self-containment.

use crate::common::*;
use ildtrack_report::{
    CohortPage, CohortPatient, IndexPage, PreviousVisit, ReportOptions, VisitPage,
    render_cohort_html, render_index_html, render_visit_html,
};
use ildtrack_volume::Identity;

fn visit_page_html(identify: bool) -> String {
    let (t, results) = follow_up();
    let (cur_imgs, prev_imgs) = (qc_images(0.6), qc_images(0.9));
    let id = Identity {
        patient_name: Some("Doe^<Jane>".into()),
        patient_id: Some("PID-98765".into()),
    };
    let v = &t.visits[2];
    let p = &t.visits[1];
    render_visit_html(
        &VisitPage {
            result: &results[v.input_index],
            images: &cur_imgs,
            label: v.label.as_deref(),
            day: v.day,
            tracked: Some(v),
            previous: Some(PreviousVisit {
                result: &results[p.input_index],
                images: &prev_imgs,
                label: p.label.as_deref(),
                day: p.day,
            }),
            identity: Some(&id),
            index_href: Some("../../index.html"),
            change: None,
        },
        &ReportOptions { identify },
    )
}

/// No script tags, no external URLs in src/href, images embedded.
fn assert_self_contained(html: &str) {
    let lower = html.to_ascii_lowercase();
    assert!(!lower.contains("<script"), "a script tag reached the page");
    for attr in [
        "src=\"http",
        "href=\"http",
        "src=\"//",
        "url(http",
        "@import",
    ] {
        assert!(!lower.contains(attr), "external reference {attr}");
    }
    for (i, _) in lower.match_indices("<img ") {
        assert!(
            lower[i..].starts_with("<img src=\"data:image/png;base64,"),
            "image not embedded"
        );
    }
}

#[test]
fn visit_report_escapes_dicom_strings() {
    let html = visit_page_html(false);
    assert_self_contained(&html);
    assert!(!html.contains("document.title='PWNED'</script>"));
    assert!(html.contains("&lt;script&gt;document.title=&#39;PWNED&#39;&lt;/script&gt; &quot;dq&quot; &#39;sq&#39; &amp;amp"));
    assert!(html.contains("ACME &quot;Scan&quot; &lt;b&gt;"));
    assert_eq!(
        html.matches("<img ").count(),
        8,
        "4 images for this visit and 4 for the previous"
    );
    assert!(
        html.contains("No clear change"),
        "the +30 day visit is stable in the fixture"
    );
    assert!(
        html.contains("Rule:")
            && html.contains("Disease range enlarged")
            && html.contains("total ")
    );
}

#[test]
fn identity_only_when_asked() {
    let html = visit_page_html(false);
    assert!(!html.contains("Jane") && !html.contains("PID-98765"));
    let html = visit_page_html(true);
    assert!(html.contains("Doe^&lt;Jane&gt;") && html.contains("PID-98765"));
}

#[test]
fn index_lists_every_visit_with_trends() {
    let (t, _) = follow_up();
    let imgs = qc_images(0.3);
    let id = Identity {
        patient_name: Some("Doe^Jane".into()),
        patient_id: Some("PID-98765".into()),
    };
    let html = render_index_html(
        &IndexPage {
            track: &t,
            identity: Some(&id),
            latest_images: &imgs,
        },
        &ReportOptions::default(),
    );
    assert_self_contained(&html);
    assert!(!html.contains("Jane"));
    for v in &t.visits {
        assert!(html.contains(&format!(
            "href=\"visits/{}/report.html\"",
            v.study_date.as_deref().unwrap_or("?")
        )));
    }
    for title in [
        "Affected (GGO + consolidation)",
        "Ground-glass opacity",
        "Consolidation",
        "High attenuation area",
        "Mean lung density",
        "Lung volume",
        "Lung function",
    ] {
        assert!(html.contains(title), "chart {title} missing");
    }
    // One zone diagram per visit, each with its own clip-path ids.
    for v in &t.visits {
        assert!(html.contains(&format!("id=\"zd-{}-z0\"", v.index)));
    }
    assert!(html.contains("kernel-mismatch"));
}

#[test]
fn cohort_page_has_a_row_per_patient_with_trend_verdict_and_left_out_rows() {
    let (t, _) = follow_up();
    let patients = [
        CohortPatient {
            key: "MDA5-01",
            track: &t,
            index_href: "../MDA5-01/track/index.html".into(),
        },
        CohortPatient {
            key: XSS,
            track: &t,
            index_href: "x/index.html".into(),
        },
    ];
    let html = render_cohort_html(&CohortPage {
        patients: &patients,
        excluded: &["cohort row 9 (patient P3): date '2024-02-30' is not a date".into()],
    });
    assert_self_contained(&html);
    let n = t.visits.len();
    assert!(html.contains(&format!("Cohort · 2 patients, {} visits", 2 * n)));
    assert!(html.contains(r#"<a href="../MDA5-01/track/index.html"><b>MDA5-01</b></a>"#));
    // One sparkline per patient with a point per visit, coloured by its verdict.
    assert_eq!(html.matches("<svg class=\"spark\"").count(), 2);
    assert_eq!(html.matches("<circle").count(), 2 * n);
    let last = t.visits.last().expect("visits");
    assert!(html.contains(&format!(
        r#"<span class="badge {}">{}</span>"#,
        last.status.as_str(),
        last.status.as_str()
    )));
    assert!(html.contains(&format!("<b>{:.1}</b>", last.metrics.affected_pct)));
    assert!(html.contains("Not in this summary"));
    assert!(html.contains("cohort row 9 (patient P3): date &#39;2024-02-30&#39; is not a date"));
    assert!(
        !html.contains("<script>document.title"),
        "patient key escaped"
    );
}

#[test]
fn index_shows_the_harmonized_figure_where_the_verdict_used_it() {
    let (mut t, _) = follow_up();
    let html = render_index_html(
        &IndexPage {
            track: &t,
            identity: None,
            latest_images: &[],
        },
        &ReportOptions::default(),
    );
    assert!(
        !html.contains(" harmonized</span>"),
        "nothing harmonized yet"
    );
    let v = &mut t.visits[2];
    v.basis.density_metrics = ildtrack_model::track::DensityMetrics::Harmonized;
    // The verdict's value may be the registered comparison's: the figure shown is the visit's
    // harmonized one.
    v.basis.value = Some(v.metrics.affected_pct + 7.0);
    let mut h = v.metrics.clone();
    h.affected_pct += 2.0;
    v.harmonized_metrics = Some(h);
    let expect = format!("{:.1} harmonized</span>", v.metrics.affected_pct + 2.0);
    let html = render_index_html(
        &IndexPage {
            track: &t,
            identity: None,
            latest_images: &[],
        },
        &ReportOptions::default(),
    );
    assert!(html.contains(&expect), "{expect}");
    assert!(html.contains("judged on kernel-harmonized metrics"));
}

/// The change section names every colour of its legend, each zone of the baseline, the breath
/// note with both new-GGO figures, and migration when there is one.
#[test]
fn change_section_shows_legend_zones_and_migration() {
    use ildtrack_model::change::*;
    let zone = |new: f64| RegionChange {
        volume_ml: 400.0,
        new_ggo_ml: new,
        net_affected_ml: new,
        net_affected_points: 100.0 * new / 400.0,
        relative_volume_change: 1.0,
        ..Default::default()
    };
    let c = ChangeSummary {
        schema_version: CHANGE_SCHEMA_VERSION.into(),
        baseline: "2024-01-01".into(),
        followup: "2024-06-01".into(),
        quality: RegistrationQuality {
            lung_dice: 0.97,
            similarity_before: 0.03,
            similarity_after: 0.02,
            folding_pct: 0.0,
            mean_jacobian: 0.86,
            coverage_pct: 98.5,
            accepted: true,
            reason: String::new(),
        },
        breath_corrected: true,
        classes_footing: Default::default(),
        baseline_lung_ml: 2400.0,
        followup_lung_ml: 2064.0,
        transition_ml: vec![vec![0.0; 6]; 5],
        baseline_metrics: Default::default(),
        followup_metrics: Default::default(),
        followup_uncorrected_metrics: Default::default(),
        whole: zone(40.0),
        zones: ildtrack_volume::ZONE_NAMES
            .iter()
            .map(|n| {
                (
                    n.to_string(),
                    zone(if *n == "right_lower" { 40.0 } else { 0.0 }),
                )
            })
            .collect(),
        new_ggo_uncorrected_ml: 130.0,
        resolved_ggo_uncorrected_ml: 0.0,
        migration: Some(
            "disease moved: more in right_lower +40 mL while left_upper -40 mL cleared".into(),
        ),
        codes: Default::default(),
        notes: vec![],
    };
    let html = ildtrack_report::change::change_section(&ildtrack_report::ChangeView {
        change: &c,
        baseline_images: &[],
        followup_images: &[],
    });
    for (_, name, _) in ildtrack_report::qc::CHANGE_LEGEND {
        assert!(
            html.contains(&ildtrack_report::html::esc(name)),
            "legend lacks {name}"
        );
    }
    for z in ["right upper", "right lower", "left lower", "both lungs"] {
        assert!(html.contains(z), "no row {z}");
    }
    assert!(
        html.contains("130 mL of new GGO (with it: 40 mL)"),
        "{html}"
    );
    assert!(html.contains("Disease moved"));
    assert!(html.contains("2064 mL vs 2400 mL"));
    assert!(!html.contains("differ in reconstruction kernel"));
    let across = ChangeSummary {
        classes_footing: ClassFooting::KernelHarmonized,
        ..c.clone()
    };
    let html = ildtrack_report::change::change_section(&ildtrack_report::ChangeView {
        change: &across,
        baseline_images: &[],
        followup_images: &[],
    });
    assert!(html.contains("differ in reconstruction kernel"), "{html}");
}

/// A harmonized scan's page shows its harmonized figures beside its own; a scan measured at
/// the reference says so in one line; one that could not be harmonized says why.
#[test]
fn visit_report_shows_the_harmonized_figures_where_applied() {
    use ildtrack_model::visit::{Harmonization, HarmonizationStatus};
    let (t, results) = follow_up();
    let v = &t.visits[2];
    let render = |h: Option<Harmonization>| {
        let mut r = results[v.input_index].clone();
        r.harmonization = h;
        render_visit_html(
            &VisitPage {
                result: &r,
                images: &[],
                label: None,
                day: None,
                tracked: Some(v),
                previous: None,
                identity: None,
                index_href: None,
                change: None,
            },
            &ReportOptions { identify: false },
        )
    };
    let mut lungs = results[v.input_index].lungs.clone();
    lungs.whole.ggo_pct = 47.654;
    let h = |status, lungs: Option<ildtrack_model::visit::Lungs>| Harmonization {
        mode: "auto".into(),
        status,
        reason: "band SDs 6.35 / 4.63 / 1.86 × the soft reference".into(),
        band_sigmas_mm: vec![0.5, 1.0, 2.0],
        reference_band_sd_hu: vec![5.0, 5.4, 7.3],
        measured_band_sd_hu: vec![32.0, 25.0, 13.6],
        gains: vec![0.157, 0.216, 0.538],
        tissue_voxels: 50_000,
        noise_before_hu: Some(50.3),
        noise_after_hu: Some(12.4),
        lungs,
        histogram: None,
    };
    let html = render(Some(h(HarmonizationStatus::Applied, Some(lungs.clone()))));
    assert!(html.contains("Kernel-harmonized metrics"));
    assert!(html.contains(">47.7<"), "the harmonized GGO is shown");
    assert!(html.contains("0.16 / 0.22 / 0.54") && html.contains("50.3 → 12.4 HU"));
    let html = render(Some(h(HarmonizationStatus::NotNeeded, None)));
    assert!(!html.contains("Kernel-harmonized metrics"));
    assert!(html.contains("not needed"));
    let html = render(Some(h(HarmonizationStatus::Unavailable, None)));
    assert!(html.contains("not done"));
    assert!(!render(None).contains("harmoniz"));
}
