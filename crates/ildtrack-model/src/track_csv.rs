//! `track.csv`: one row per visit, for R and pandas.

use crate::track::{Deltas, MetricDelta, TrackResult, TrackedVisit, metrics_map};
use crate::visit::ZONE_NAMES;

/// Quote a field when it contains a separator, quote or line break (RFC 4180).
/// Fields starting with `=` or `@` get a leading `'` so a spreadsheet does not run them as
/// formulas (labels like `+3 months` are kept as they are for R and pandas).
fn field(s: &str) -> String {
    let s = if s.starts_with(['=', '@']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

fn num(x: Option<f64>) -> String {
    match x {
        Some(v) if v.is_finite() => {
            let r = (v * 1e4).round() / 1e4;
            format!("{r}")
        }
        _ => String::new(),
    }
}

fn d(delta: &Option<Deltas>, key: &str) -> String {
    num(delta.as_ref().and_then(|d| d.metrics.get(key).copied()))
}

const WHOLE: &[&str] = &[
    "volume_ml",
    "mean_hu",
    "sd_hu",
    "skewness",
    "kurtosis_excess",
    "p15_hu",
    "laa950_pct",
    "haa_pct",
    "ggo_ml",
    "ggo_pct",
    "consolidation_ml",
    "consolidation_pct",
    "affected_ml",
    "affected_pct",
];
const DELTAS: &[&str] = &[
    "affected_pct",
    "ggo_pct",
    "consolidation_pct",
    "haa_pct",
    "mean_hu",
    "volume_ml",
];

impl TrackResult {
    /// `track.csv`: a header and one row per visit (see `docs/track-json.md`).
    pub fn to_csv(&self) -> String {
        to_csv(self)
    }
}

fn to_csv(t: &TrackResult) -> String {
    let mut out = header().join(",");
    out.push('\n');
    for v in &t.visits {
        out.push_str(&row(v).join(","));
        out.push('\n');
    }
    out
}

/// `cohort.csv`: one row per patient-visit, `patient` first, then the `track.csv` columns.
/// `patients` pairs each patient's key (the cohort table's `patient`) with its follow-up.
pub fn cohort_csv(patients: &[(&str, &TrackResult)]) -> String {
    let mut out = String::from("patient,");
    out.push_str(&header().join(","));
    out.push('\n');
    for (patient, t) in patients {
        for v in &t.visits {
            out.push_str(&field(patient));
            out.push(',');
            out.push_str(&row(v).join(","));
            out.push('\n');
        }
    }
    out
}

fn header() -> Vec<String> {
    let mut header: Vec<String> = [
        "index",
        "label",
        "study_date",
        "day",
        "status",
        "fvc_pct_pred",
        "dlco_pct_pred",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    header.extend(WHOLE.iter().map(|s| s.to_string()));
    for side in ["left", "right"] {
        for k in ["volume_ml", "affected_pct", "ggo_pct", "consolidation_pct"] {
            header.push(format!("{side}_{k}"));
        }
    }
    // Same order as `Zones::iter`.
    for z in ZONE_NAMES {
        header.push(format!("{z}_affected_pct"));
        header.push(format!("{z}_extent_score"));
    }
    header.push("total_extent_score".into());
    for k in DELTAS {
        header.push(format!("delta_previous_{k}"));
        header.push(format!("delta_baseline_{k}"));
    }
    header.extend(
        [
            "mean_hu_at_baseline_volume",
            "kernel",
            "slice_thickness_mm",
            "kvp",
            "manufacturer",
            "warnings",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    header
}

fn row(v: &TrackedVisit) -> Vec<String> {
    let m = metrics_map(&v.metrics);
    let get = |map: &MetricDelta, k: &str| num(map.get(k).copied());
    let mut r = vec![
        v.index.to_string(),
        field(v.label.as_deref().unwrap_or("")),
        field(v.study_date.as_deref().unwrap_or("")),
        v.day.map(|x| x.to_string()).unwrap_or_default(),
        v.status.to_string(),
        num(v.fvc_pct_pred),
        num(v.dlco_pct_pred),
    ];
    r.extend(WHOLE.iter().map(|k| get(&m, k)));
    for side in [&v.sides.left, &v.sides.right] {
        r.push(num(Some(side.volume_ml)));
        r.push(num(Some(side.affected_pct)));
        r.push(num(Some(side.ggo_pct)));
        r.push(num(Some(side.consolidation_pct)));
    }
    for (_, z) in v.zones.iter() {
        r.push(num(Some(z.affected_pct)));
        r.push(z.extent_score.to_string());
    }
    r.push(v.total_extent_score.to_string());
    for k in DELTAS {
        r.push(d(&v.delta_previous, k));
        r.push(d(&v.delta_baseline, k));
    }
    r.push(num(v
        .volume_adjusted
        .as_ref()
        .and_then(|a| a.mean_hu_at_reference_volume)));
    r.push(field(v.series.kernel.as_deref().unwrap_or("")));
    r.push(num(v.series.slice_thickness_mm));
    r.push(num(v.series.kvp));
    r.push(field(v.series.manufacturer.as_deref().unwrap_or("")));
    let mut codes: Vec<&str> = Vec::new();
    for w in v.warnings.iter().chain(v.analysis_warnings.iter()) {
        if !codes.contains(&w.code.as_str()) {
            codes.push(w.code.as_str());
        }
    }
    r.push(field(&codes.join(";")));
    r
}

#[cfg(test)]
mod tests {
    use super::field;

    #[test]
    fn csv_fields_are_quoted_and_defused() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("=cmd()"), "'=cmd()");
        assert_eq!(field("-5"), "-5");
        assert_eq!(field("+3 months"), "+3 months");
        assert_eq!(field("@x"), "'@x");
    }
}
