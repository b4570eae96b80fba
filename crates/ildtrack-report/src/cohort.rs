//! `cohort.html`: one row per patient of a cohort (a workflow's many `track` runs) with a small
//! trend of affected % and the latest verdict, linking to each patient's `index.html`.

use crate::escape::esc;
use crate::html;
use ildtrack_model::track::{Status, TrackResult};
use std::fmt::Write as _;

/// One patient of the cohort page.
#[derive(Debug, Clone)]
pub struct CohortPatient<'a> {
    /// The cohort table's patient key (a study code chosen by the user, shown as given).
    pub key: &'a str,
    pub track: &'a TrackResult,
    /// Link to the patient's `index.html`, relative to the cohort page.
    pub index_href: String,
}

/// Everything on `cohort.html`.
#[derive(Debug, Clone)]
pub struct CohortPage<'a> {
    pub patients: &'a [CohortPatient<'a>],
    /// Rows of the cohort table that were not analysed, each with its reason (shown in a
    /// warning box so a reader sees the cohort is incomplete).
    pub excluded: &'a [String],
}

/// A 150×38 sparkline of affected % against days from day 0 (visit order where days are
/// unknown), points coloured by verdict.
fn sparkline(t: &TrackResult) -> String {
    let (w, h, pad) = (150.0, 38.0, 5.0);
    let pts: Vec<(f64, f64, Status)> = t
        .visits
        .iter()
        .map(|v| {
            let x = match v.day {
                Some(d) if t.visits.iter().all(|u| u.day.is_some()) => d as f64,
                _ => v.index as f64,
            };
            (x, v.metrics.affected_pct, v.status)
        })
        .filter(|p| p.0.is_finite() && p.1.is_finite())
        .collect();
    let mut s = String::new();
    let label = pts
        .iter()
        .map(|p| format!("{:.1}", p.1))
        .collect::<Vec<_>>()
        .join(" → ");
    let _ = write!(
        s,
        r#"<svg class="spark" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="affected %: {}" xmlns="http://www.w3.org/2000/svg">"#,
        esc(&label)
    );
    if pts.is_empty() {
        s.push_str("</svg>");
        return s;
    }
    let (x0, x1) = pts
        .iter()
        .fold((f64::MAX, f64::MIN), |a, p| (a.0.min(p.0), a.1.max(p.0)));
    let y1 = pts.iter().fold(0.0f64, |a, p| a.max(p.1));
    // At least 10 points of affected % tall, so noise does not look like a trend.
    let y1 = y1.max(10.0);
    let sx = |x: f64| {
        if x1 > x0 {
            pad + (x - x0) / (x1 - x0) * (w - 2.0 * pad)
        } else {
            w / 2.0
        }
    };
    let sy = |y: f64| h - pad - y.max(0.0) / y1 * (h - 2.0 * pad);
    let path: Vec<String> = pts
        .iter()
        .map(|p| format!("{:.1},{:.1}", sx(p.0), sy(p.1)))
        .collect();
    let _ = write!(
        s,
        r##"<polyline points="{}" fill="none" stroke="#90a4ae" stroke-width="1.5"/>"##,
        path.join(" ")
    );
    for p in &pts {
        let _ = write!(
            s,
            r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{}"><title>{:.1} % ({})</title></circle>"#,
            sx(p.0),
            sy(p.1),
            html::status_colour(p.2),
            p.1,
            p.2.as_str()
        );
    }
    s.push_str("</svg>");
    s
}

/// Render `cohort.html`.
pub fn render_cohort_html(p: &CohortPage<'_>) -> String {
    let n_visits: usize = p.patients.iter().map(|c| c.track.visits.len()).sum();
    let mut b = String::new();
    let _ = write!(
        b,
        "<h1>Cohort · {} patient{}, {} visit{}</h1><p class=\"sub\">Quantitative CT of interstitial lung disease (ildtrack). One row per patient: the trend of affected % (GGO + consolidation) over the visits, points coloured by verdict (<span style=\"color:#c62828\">progressed</span>, <span style=\"color:#2e7d32\">improved</span>, <span style=\"color:#546e7a;font-weight:600\">stable</span>, <span style=\"color:#1565c0\">baseline</span>), and the latest verdict. Each patient's name links to the follow-up report.</p>",
        p.patients.len(),
        if p.patients.len() == 1 { "" } else { "s" },
        n_visits,
        if n_visits == 1 { "" } else { "s" },
    );
    if !p.excluded.is_empty() {
        b.push_str("<div class=\"warn\"><b>Not in this summary</b> — rows of the cohort table that could not be analysed:<ul>");
        for e in p.excluded {
            let _ = write!(b, "<li>{}</li>", esc(e));
        }
        b.push_str("</ul></div>");
    }
    let counts = |st: Status| {
        p.patients
            .iter()
            .filter(|c| c.track.visits.last().is_some_and(|v| v.status == st))
            .count()
    };
    let _ = write!(
        b,
        "<p>Latest verdicts: {} progressed · {} stable · {} improved · {} baseline only · {} indeterminate</p>",
        counts(Status::Progressed),
        counts(Status::Stable),
        counts(Status::Improved),
        counts(Status::Baseline),
        counts(Status::Indeterminate),
    );
    b.push_str("<div class=\"scroll\"><table><thead><tr><th>Patient</th><th>Visits</th><th>First</th><th>Latest</th><th>Affected % over time</th><th>Latest affected %</th><th>vs first</th><th>Latest verdict</th><th>Warnings</th></tr></thead><tbody>");
    for c in p.patients {
        let t = c.track;
        let (first, last) = (t.visits.first(), t.visits.last());
        let date = |v: Option<&ildtrack_model::track::TrackedVisit>| match v
            .map(|v| (&v.study_date, v.day))
        {
            Some((d, day)) => format!(
                "{}{}",
                html::opt_s(d),
                day.map(|x| format!("<span class=\"d\">{}</span>", html::day_text(Some(x))))
                    .unwrap_or_default()
            ),
            None => "–".into(),
        };
        let vs_first = last
            .and_then(|l| l.delta_baseline.as_ref())
            .and_then(|d| d.metrics.get("affected_pct").copied())
            .map(html::pts)
            .unwrap_or_else(|| "–".into());
        let n_warn: usize = t.warnings.len()
            + t.visits
                .iter()
                .map(|v| v.warnings.len() + v.analysis_warnings.len())
                .sum::<usize>();
        let _ = write!(
            b,
            "<tr><td class=\"l\"><a href=\"{}\"><b>{}</b></a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><b>{}</b></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&c.index_href),
            esc(c.key),
            t.visits.len(),
            date(first),
            date(last),
            sparkline(t),
            last.map(|l| format!("{:.1}", l.metrics.affected_pct))
                .unwrap_or_else(|| "–".into()),
            vs_first,
            last.map(|l| html::badge(l.status))
                .unwrap_or_else(|| "–".into()),
            n_warn,
        );
    }
    b.push_str("</tbody></table></div>");
    b.push_str(&format!(
        "<footer><p class=\"rule\">Verdict rule (per patient, from its track.json): {}. Generated by ildtrack {}. The numbers behind this page are in cohort.csv (one row per patient-visit).</p></footer>",
        esc(p
            .patients
            .first()
            .map(|c| c.track.rule.as_str())
            .unwrap_or("–")),
        esc(env!("CARGO_PKG_VERSION"))
    ));
    html::page("ildtrack cohort", &b)
}
