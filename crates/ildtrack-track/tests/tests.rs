//! Integration tests of `ildtrack-track`: the golden `track.json`.

use ildtrack_track::synthetic::{SyntheticVisit, visit_result};
use ildtrack_track::{TrackConfig, TrackVisit, track};

/// A small fixed follow-up: baseline, worse, treatment (day 0), two better visits, one on a
/// different kernel with a smaller inspiration.
fn fixed_visits() -> Vec<TrackVisit> {
    let specs = [
        ("2024-01-01", 12.0, "pre-treatment 1", None),
        ("2024-01-28", 19.0, "pre-treatment 2", Some(70.0)),
        ("2024-03-05", 15.5, "+30 days", Some(74.0)),
        ("2024-06-03", 9.0, "+90 days", None),
    ];
    let mut out: Vec<TrackVisit> = specs
        .iter()
        .map(|(d, a, l, fvc)| {
            let mut v = TrackVisit::new(visit_result(&SyntheticVisit {
                patient_age_years: Some(15.0),
                ..SyntheticVisit::new(d, *a)
            }));
            v.label = Some((*l).into());
            v.fvc_pct_pred = *fvc;
            v.dir = Some(format!("visits/{d}"));
            v
        })
        .collect();
    let odd = SyntheticVisit {
        kernel: Some("L".into()),
        volume_ml: 2600.0,
        patient_age_years: Some(15.0),
        ..SyntheticVisit::new("2024-09-01", 8.5)
    };
    let mut v = TrackVisit::new(visit_result(&odd));
    v.label = Some("+180 days".into());
    v.dir = Some("visits/2024-09-01".into());
    // Out of order on input: tracking sorts by date.
    out.insert(1, v);
    out
}

#[test]
fn golden_track_json() {
    let t = track(fixed_visits(), Some("2024-02-04"), &TrackConfig::default()).expect("track");
    let statuses: Vec<String> = t.visits.iter().map(|v| v.status.to_string()).collect();
    assert_eq!(
        statuses,
        ["baseline", "progressed", "stable", "improved", "stable"]
    );
    let json: serde_json::Value = serde_json::from_str(&t.to_json().expect("json")).expect("parse");
    insta::assert_json_snapshot!("track_json", json);
}

#[test]
fn golden_track_csv() {
    let t = track(fixed_visits(), Some("2024-02-04"), &TrackConfig::default()).expect("track");
    insta::assert_snapshot!("track_csv", t.to_csv());
}
