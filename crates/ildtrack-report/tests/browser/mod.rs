//! The reports in a real headless browser (Debian `chromium`): the page loads with no failed
//! requests and no console errors, every image decodes, DICOM strings stay text, a screenshot
//! is taken. Fails when chromium is missing under `CI=true`; skips with a message otherwise.

mod harness;

use crate::common::*;
use harness::{check_page, chromium};
use ildtrack_report::{
    CohortPage, CohortPatient, IndexPage, PreviousVisit, ReportOptions, VisitPage,
    render_cohort_html, render_index_html, render_visit_html,
};

#[test]
fn reports_load_cleanly_in_headless_chromium() {
    let Some(bin) = chromium() else { return };
    let dir = out_dir("browser");
    let (t, results) = follow_up();
    let imgs: Vec<_> = t
        .visits
        .iter()
        .map(|v| qc_images(v.metrics.affected_pct / 30.0))
        .collect();
    let v = &t.visits[3];
    let p = &t.visits[2];
    let html = render_visit_html(
        &VisitPage {
            result: &results[v.input_index],
            images: &imgs[3],
            label: v.label.as_deref(),
            day: v.day,
            tracked: Some(v),
            previous: Some(PreviousVisit {
                result: &results[p.input_index],
                images: &imgs[2],
                label: p.label.as_deref(),
                day: p.day,
            }),
            identity: None,
            index_href: Some("../../index.html"),
            change: None,
        },
        &ReportOptions::default(),
    );
    check_page(&bin, &dir, "report", &html, 8);
    let index = render_index_html(
        &IndexPage {
            track: &t,
            identity: None,
            latest_images: &imgs[5],
        },
        &ReportOptions::default(),
    );
    check_page(&bin, &dir, "index", &index, 4);
}

#[test]
fn cohort_page_loads_cleanly_in_headless_chromium() {
    let Some(bin) = chromium() else { return };
    let dir = out_dir("browser-cohort");
    let (t, _) = follow_up();
    // The patient key is the user's text: a hostile one stays text.
    let patients = [
        CohortPatient {
            key: XSS,
            track: &t,
            index_href: "P1/track/index.html".into(),
        },
        CohortPatient {
            key: "P2",
            track: &t,
            index_href: "P2/track/index.html".into(),
        },
    ];
    let html = render_cohort_html(&CohortPage {
        patients: &patients,
        excluded: &["cohort row 7 (patient P3): input 'scans/x' does not exist".into()],
    });
    check_page(&bin, &dir, "cohort", &html, 0);
}
