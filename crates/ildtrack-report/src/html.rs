//! Self-contained HTML: escaping, the page frame with its print CSS, and the shared blocks
//! (facts, metrics tables, warnings, footer).

use base64::Engine as _;
use ildtrack_model::track::{Status, TrackedVisit};
use ildtrack_model::visit::{Metrics, SeriesSummary, Thresholds, VisitResult};
use ildtrack_volume::{Identity, Warning};
use std::fmt::Write as _;

pub use crate::escape::esc;

/// `<img>` with the PNG embedded as a base64 data URI.
pub fn img_png(png: &[u8], alt: &str) -> String {
    format!(
        r#"<img src="data:image/png;base64,{}" alt="{}">"#,
        base64::engine::general_purpose::STANDARD.encode(png),
        esc(alt)
    )
}

/// Image pairs side by side (`left[i]` | `right[i]`), two pairs per row; `who` names the two.
pub fn pairs_block(
    left: &[crate::image::QcImage],
    right: &[crate::image::QcImage],
    who: (&str, &str),
) -> String {
    let mut s = String::from(r#"<div class="imgs pairs">"#);
    for i in 0..left.len().max(right.len()) {
        s.push_str(r#"<div class="pair">"#);
        for (imgs, who, cls) in [(left, who.0, "prev"), (right, who.1, "cur")] {
            match imgs.get(i) {
                Some(im) => {
                    let _ = write!(
                        s,
                        "<figure class=\"{cls}\">{}<figcaption>{} · {}</figcaption></figure>",
                        img_png(&im.png, &format!("{who}: {}", im.caption)),
                        esc(who),
                        esc(&im.caption)
                    );
                }
                None => s.push_str("<div></div>"),
            }
        }
        s.push_str("</div>");
    }
    s.push_str("</div>");
    s
}

const CSS: &str = r#"
:root{--ink:#1c2630;--muted:#5f6b76;--line:#d5dde4;--bg:#f6f8fa;--prog:#c62828;--impr:#2e7d32;--stab:#546e7a;--base:#1565c0}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 -apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,"Liberation Sans",sans-serif;color:var(--ink);background:#fff}
main{max-width:1180px;margin:0 auto;padding:20px 28px 40px}
h1{font-size:24px;margin:0 0 2px}h2{font-size:19px;margin:26px 0 10px;padding-bottom:4px;border-bottom:2px solid var(--line)}
h3{font-size:16px;margin:14px 0 6px}
.sub{color:var(--muted);margin:0 0 12px}
.facts{display:grid;grid-template-columns:repeat(auto-fill,minmax(210px,1fr));gap:6px 18px;background:var(--bg);border:1px solid var(--line);border-radius:8px;padding:12px 16px}
.facts div{min-width:0;overflow-wrap:anywhere}.facts b{display:block;font-size:12px;font-weight:600;color:var(--muted);text-transform:uppercase;letter-spacing:.03em}
.verdict{border-radius:10px;padding:14px 18px;margin:16px 0;border:2px solid var(--stab);background:#eceff1}
.verdict.progressed{border-color:var(--prog);background:#fdecea}.verdict.improved{border-color:var(--impr);background:#e8f5e9}
.verdict.baseline{border-color:var(--base);background:#e3f2fd}
.verdict .big{font-size:21px;font-weight:700;margin:0 0 4px}.verdict p{margin:4px 0}
.badge{display:inline-block;padding:1px 9px;border-radius:11px;font-size:13px;font-weight:700;color:#fff;background:var(--stab);white-space:nowrap}
.badge.progressed{background:var(--prog)}.badge.improved{background:var(--impr)}.badge.baseline{background:var(--base)}
.rule{font-size:13px;color:var(--muted)}
.warn{border-left:5px solid #ef6c00;background:#fff8e1;padding:8px 12px;margin:8px 0;border-radius:4px}
.warn ul{margin:4px 0 0 0;padding-left:20px}.warn li{margin:2px 0}.code{font:12px ui-monospace,Menlo,Consolas,monospace;color:var(--muted)}
.ok{color:var(--impr)}
table{border-collapse:collapse;width:100%;font-size:14px;margin:6px 0 10px}
th,td{border-bottom:1px solid var(--line);padding:5px 7px;text-align:right;white-space:nowrap}
th{background:var(--bg);font-weight:600;font-size:13px;white-space:normal;vertical-align:bottom}th:first-child,td:first-child{text-align:left}td:first-child{white-space:normal}
td.l{text-align:left;white-space:normal}
.d{display:block;font-size:12px;color:var(--muted)}.d.up{color:var(--prog)}.d.down{color:var(--impr)}
.scroll{overflow-x:auto;scrollbar-gutter:stable;scrollbar-width:thin}
.imgs{display:grid;gap:8px;align-items:start}
.imgs.quad{grid-template-columns:repeat(4,1fr)}
.imgs.pairs{grid-template-columns:1fr 1fr;gap:12px 22px}.pair{display:grid;grid-template-columns:1fr 1fr;gap:4px;align-items:start}
.pair figure.cur figcaption{background:#0d47a1}
figure{margin:0;background:#000;border-radius:6px;overflow:hidden;break-inside:avoid}
figure img{display:block;width:100%;height:auto;image-rendering:auto}
figcaption{background:#263238;color:#eceff1;font-size:13px;padding:4px 8px}
.colhead{font-weight:700;text-align:center;color:var(--muted)}
.legend span{display:inline-block;margin-right:14px;font-size:13px}.sw{display:inline-block;width:12px;height:12px;border-radius:2px;vertical-align:-1px;margin-right:4px}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(460px,1fr));gap:10px 18px}
svg.chart{width:100%;height:auto;background:#fff;border:1px solid var(--line);border-radius:6px}
svg text{font-family:inherit;font-size:12px;fill:#37474f}svg .ct{font-size:14px;font-weight:600;fill:var(--ink)}
svg .grid line{stroke:#e3e8ec}svg .frame{stroke:#90a4ae}svg .day0{stroke:#6a1b9a;stroke-dasharray:4 3;stroke-width:1.5}svg .day0t{fill:#6a1b9a}
svg .band{font-size:11px;fill:#607d8b}svg .lg{font-size:12px}
svg.zones{width:300px;max-width:100%;height:auto}svg.zones.compact{width:150px;display:block;margin:0 auto}
svg .zs{font-size:22px;font-weight:700;fill:#1c2630}svg .zp{font-size:12px;fill:#1c2630}svg .side{font-size:14px;font-weight:700}svg .tot{font-size:13px;font-weight:600}
.zonegrid{display:flex;flex-wrap:wrap;gap:10px 8px}.zonegrid>div{width:158px;text-align:center;font-size:12.5px;line-height:1.35;break-inside:avoid}
.two{display:grid;grid-template-columns:320px 1fr;gap:18px;align-items:start}
footer{margin-top:30px;font-size:12.5px;color:var(--muted);border-top:1px solid var(--line);padding-top:10px}
footer table{font-size:12.5px;width:auto}
a{color:#1565c0}
@media screen and (max-width:800px){.imgs.quad{grid-template-columns:1fr 1fr}.imgs.pairs,.two{grid-template-columns:1fr}}
@page{size:A4;margin:12mm}
@media print{body{font-size:11px}main{max-width:none;padding:0}h2{break-after:avoid;margin-top:16px}
 .scroll{overflow:visible}table{font-size:9px;margin:4px 0}th,td{padding:2px 4px}th{white-space:normal}
 .two{grid-template-columns:230px 1fr}.imgs.pairs{gap:6px 12px}figcaption{font-size:9px;padding:2px 5px}
 .facts{grid-template-columns:repeat(4,1fr)}.d{font-size:8px}
 .verdict,.warn,figure,svg,table,.facts,.two,.keep{break-inside:avoid}
 *{-webkit-print-color-adjust:exact;print-color-adjust:exact}
 .charts{grid-template-columns:1fr 1fr}.noprint{display:none}
 a{color:inherit;text-decoration:none}}
"#;

/// The whole page around `body`. No scripts, no external resources.
pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; style-src 'unsafe-inline'\">\
         <title>{}</title><style>{CSS}</style></head><body><main>\n{body}\n</main></body></html>\n",
        esc(title)
    )
}

/// The reconstruction kernel and the measured image noise: `B60f · noise 33 HU`, or
/// `B60f · 33 HU` in a table cell (`compact`).
pub fn kernel_and_noise(series: &SeriesSummary, compact: bool) -> String {
    match series.noise_sd_hu {
        Some(n) => format!(
            "{} · {}{n:.0} HU",
            opt_s(&series.kernel),
            if compact { "" } else { "noise " }
        ),
        None => opt_s(&series.kernel),
    }
}

pub fn opt_s(s: &Option<String>) -> String {
    match s.as_deref().map(str::trim) {
        Some(x) if !x.is_empty() => esc(x),
        _ => "–".into(),
    }
}

pub fn f(x: Option<f64>, dec: usize) -> String {
    match x {
        Some(v) if v.is_finite() => format!("{v:.dec$}"),
        _ => "–".into(),
    }
}

pub fn day_text(day: Option<i64>) -> String {
    match day {
        Some(0) => "day 0".into(),
        Some(d) if d > 0 => format!("day +{d}"),
        Some(d) => format!("day {d}"),
        None => "day ?".into(),
    }
}

/// `visit label · date · day`.
pub fn visit_title(label: Option<&str>, date: Option<&str>, day: Option<i64>) -> String {
    let mut parts = Vec::new();
    if let Some(l) = label.filter(|l| !l.trim().is_empty()) {
        parts.push(esc(l));
    }
    parts.push(esc(date.unwrap_or("date unknown")));
    if day.is_some() {
        parts.push(day_text(day));
    }
    parts.join(" · ")
}

/// The study-facts grid.
pub fn facts(
    series: &SeriesSummary,
    day: Option<i64>,
    label: Option<&str>,
    identity: Option<&Identity>,
) -> String {
    let mut s = String::from(r#"<div class="facts">"#);
    let mut item = |k: &str, v: String| {
        let _ = write!(s, "<div><b>{}</b>{}</div>", esc(k), v);
    };
    if let Some(id) = identity {
        item("Patient name", opt_s(&id.patient_name));
        item("Patient ID", opt_s(&id.patient_id));
    }
    if let Some(l) = label {
        item("Visit", esc(l));
    }
    item("Study date", opt_s(&series.study_date));
    if day.is_some() {
        item("Day from day 0", day_text(day));
    }
    item("Series time", opt_s(&series.series_time));
    item(
        "Patient",
        format!(
            "{} · {}",
            series
                .patient_age_years
                .map(|a| format!("{a:.0} years"))
                .unwrap_or_else(|| "age unknown".into()),
            opt_s(&series.patient_sex)
        ),
    );
    item(
        "Scanner",
        format!(
            "{} {}",
            opt_s(&series.manufacturer),
            opt_s(&series.manufacturer_model)
        ),
    );
    item("Reconstruction kernel", kernel_and_noise(series, false));
    item(
        "Slice thickness",
        series
            .slice_thickness_mm
            .map(|t| format!("{t:.2} mm"))
            .unwrap_or_else(|| "–".into()),
    );
    item(
        "Tube",
        format!(
            "{} kVp · {} mAs",
            series
                .kvp
                .map(|v| format!("{v:.0}"))
                .unwrap_or_else(|| "–".into()),
            series
                .exposure_mas
                .map(|v| format!("{v:.0}"))
                .unwrap_or_else(|| "–".into())
        ),
    );
    item(
        "Contrast",
        match series.contrast_agent.as_deref().map(str::trim) {
            Some(x) if !x.is_empty() => esc(x),
            _ => "none recorded".into(),
        },
    );
    item("Series", opt_s(&series.series_description));
    let d = series.dims_zyx;
    let sp = series.spacing_mm;
    item(
        "Grid (z × y × x)",
        format!(
            "{} × {} × {} · {:.2} × {:.2} × {:.2} mm",
            d[0], d[1], d[2], sp[0], sp[1], sp[2]
        ),
    );
    item("Source", opt_s(&series.source_format));
    s.push_str("</div>");
    s
}

fn status_class(st: Status) -> &'static str {
    st.as_str()
}

/// Colour of a verdict for charts.
pub fn status_colour(st: Status) -> &'static str {
    match st {
        Status::Progressed => "#c62828",
        Status::Improved => "#2e7d32",
        Status::Baseline => "#1565c0",
        Status::Stable | Status::Indeterminate => "#546e7a",
    }
}

pub fn badge(st: Status) -> String {
    format!(
        r#"<span class="badge {}">{}</span>"#,
        status_class(st),
        st.as_str()
    )
}

/// A change in points with its sign: `+1.2`, `−3.4`.
pub(crate) fn pts(x: f64) -> String {
    format!("{}{:.1}", if x >= 0.0 { "+" } else { "−" }, x.abs())
}

/// The verdict in words a clinician reads in seconds.
pub fn plain_verdict(v: &TrackedVisit) -> String {
    let b = &v.basis;
    let is_affected = b.metric == "affected_pct";
    let what = if is_affected {
        "Disease extent (GGO + consolidation)".to_string()
    } else {
        format!("Whole-lung {}", b.metric)
    };
    let unit = if is_affected { " % of the lung" } else { "" };
    let val = b
        .value
        .map(|x| format!("{x:.1}{unit}"))
        .unwrap_or_else(|| "not measurable".into());
    let head = match v.status {
        Status::Baseline => "First scan (baseline)",
        Status::Progressed => "Worse (progressed)",
        Status::Improved => "Better (improved)",
        Status::Stable => "No clear change (stable)",
        Status::Indeterminate => "Cannot judge",
    };
    let mut s = format!(
        "<p class=\"big\">{head}</p><p>{} is <b>{}</b>",
        esc(&what),
        val
    );
    if v.status != Status::Baseline {
        if let (Some(bv), Some(db)) = (b.baseline_value, b.delta_baseline) {
            let _ = write!(s, "; first scan {bv:.1} (<b>{}</b> points)", pts(db));
        }
        if let (Some(pv), Some(dp)) = (b.previous_value, b.delta_previous) {
            let _ = write!(s, "; previous scan {pv:.1} (<b>{}</b> points)", pts(dp));
        }
    } else {
        s.push_str("; later scans are compared with this one");
    }
    s.push_str(".</p>");
    if b.segmentation_doubt {
        s.push_str("<p><b>Caution:</b> the lung outline of this scan or of a scan it is compared with is in doubt (see the warnings and the QC images); part of the change may be a segmentation error.</p>");
    }
    if b.protocol_mismatch {
        s.push_str("<p><b>Caution:</b> this scan was made differently from the scans it is compared with (see the warnings); part of the change may be technical, not disease.</p>");
    }
    if let Some(va) = &v.volume_adjusted
        && va.volume_change_pct.abs() > 10.0
    {
        let _ = write!(
            s,
            "<p>Lung volume is {}{:.0} % vs the first scan (breathing depth). At the first scan's volume the mean lung density would be {} HU ({} HU vs the first scan).</p>",
            if va.volume_change_pct >= 0.0 {
                "+"
            } else {
                "−"
            },
            va.volume_change_pct.abs(),
            f(va.mean_hu_at_reference_volume, 0),
            va.delta_mean_hu_adjusted
                .map(|d| format!("{}{:.0}", if d >= 0.0 { "+" } else { "−" }, d.abs()))
                .unwrap_or_else(|| "–".into())
        );
    }
    s
}

/// The verdict box (status, words, rule and numbers).
pub fn verdict_box(v: &TrackedVisit) -> String {
    format!(
        r#"<section class="verdict {}">{}<p class="rule"><b>Rule:</b> {}</p><p class="rule"><b>Numbers:</b> {}</p></section>"#,
        status_class(v.status),
        plain_verdict(v),
        esc(&v.rule),
        esc(&v.reason)
    )
}

/// A warnings box; an "all clear" line when there are none.
pub fn warnings_box(title: &str, ws: &[&Warning]) -> String {
    if ws.is_empty() {
        return format!(r#"<p class="ok">✓ {}: none.</p>"#, esc(title));
    }
    let mut s = format!(r#"<div class="warn"><b>{}</b><ul>"#, esc(title));
    for w in ws {
        let _ = write!(
            s,
            r#"<li>{} <span class="code">[{}]</span></li>"#,
            esc(&w.message),
            esc(&w.code)
        );
    }
    s.push_str("</ul></div>");
    s
}

/// `worse_up`: `Some(true)` when a rise means more disease, `Some(false)` when a fall does,
/// `None` for neutral figures (volumes, LAA).
fn delta_span(cur: f64, prev: Option<f64>, dec: usize, worse_up: Option<bool>) -> String {
    match prev {
        Some(p) if p.is_finite() && cur.is_finite() => {
            let d = cur - p;
            let cls = if d.abs() < 0.05 {
                ""
            } else if let Some(worse_up) = worse_up {
                if (d > 0.0) == worse_up {
                    " up"
                } else {
                    " down"
                }
            } else {
                ""
            };
            format!(
                r#"<span class="d{cls}">{}{:.dec$}</span>"#,
                if d >= 0.0 { "+" } else { "−" },
                d.abs()
            )
        }
        _ => String::new(),
    }
}

/// Region metrics table; with `prev` every cell shows the change vs the previous visit.
pub fn metrics_table(rows: &[(&str, &Metrics, Option<&Metrics>)]) -> String {
    let mut s = String::from(
        r#"<div class="scroll"><table><thead><tr><th>Region</th><th>Volume mL</th><th>MLD HU</th><th>SD HU</th><th>Skew</th><th>Kurt (excess)</th><th>P15 HU</th><th>P50 HU</th><th>P85 HU</th><th>LAA&#8209;950 %</th><th>HAA %</th><th>GGO %</th><th>Consol. %</th><th>Affected %</th><th>Affected mL</th></tr></thead><tbody>"#,
    );
    for (name, m, p) in rows {
        let cell =
            |v: Option<f64>, pv: Option<f64>, dec: usize, worse_up: Option<bool>| -> String {
                match v {
                    Some(x) => format!(
                        "<td>{}{}</td>",
                        f(Some(x), dec),
                        delta_span(x, pv, dec, worse_up)
                    ),
                    None => "<td>–</td>".into(),
                }
            };
        let _ = write!(s, "<tr><td>{}</td>", esc(name));
        s.push_str(&cell(Some(m.volume_ml), p.map(|p| p.volume_ml), 0, None));
        s.push_str(&cell(m.mean_hu, p.and_then(|p| p.mean_hu), 0, Some(true)));
        s.push_str(&cell(m.sd_hu, p.and_then(|p| p.sd_hu), 0, Some(true)));
        s.push_str(&cell(
            m.skewness,
            p.and_then(|p| p.skewness),
            2,
            Some(false),
        ));
        s.push_str(&cell(
            m.kurtosis_excess,
            p.and_then(|p| p.kurtosis_excess),
            2,
            Some(false),
        ));
        s.push_str(&cell(m.p15_hu, p.and_then(|p| p.p15_hu), 0, Some(true)));
        s.push_str(&cell(m.p50_hu, p.and_then(|p| p.p50_hu), 0, Some(true)));
        s.push_str(&cell(m.p85_hu, p.and_then(|p| p.p85_hu), 0, Some(true)));
        s.push_str(&cell(Some(m.laa950_pct), p.map(|p| p.laa950_pct), 1, None));
        s.push_str(&cell(Some(m.haa_pct), p.map(|p| p.haa_pct), 1, Some(true)));
        s.push_str(&cell(Some(m.ggo_pct), p.map(|p| p.ggo_pct), 1, Some(true)));
        s.push_str(&cell(
            Some(m.consolidation_pct),
            p.map(|p| p.consolidation_pct),
            1,
            Some(true),
        ));
        s.push_str(&cell(
            Some(m.affected_pct),
            p.map(|p| p.affected_pct),
            1,
            Some(true),
        ));
        s.push_str(&cell(
            Some(m.affected_ml),
            p.map(|p| p.affected_ml),
            0,
            Some(true),
        ));
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table></div>");
    s
}

/// Zone table (RU … LL) with extent scores.
pub fn zone_table(cur: &VisitResult, prev: Option<&VisitResult>) -> String {
    let mut s = String::from(
        r#"<div class="scroll"><table><thead><tr><th>Zone</th><th>Volume mL</th><th>MLD HU</th><th>GGO %</th><th>Consol. %</th><th>Affected %</th><th>Extent score</th></tr></thead><tbody>"#,
    );
    let pz = prev.map(|p| p.lungs.zones.iter());
    for (i, (name, m)) in cur.lungs.zones.iter().iter().enumerate() {
        let p = pz.as_ref().map(|z| z[i].1);
        let label = name.replace('_', " ");
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}{}</td><td>{}{}</td><td>{}{}</td><td>{}{}</td><td>{}{}</td><td><span class=\"sw\" style=\"background:{}\"></span>{}{}</td></tr>",
            esc(&label),
            f(Some(m.volume_ml), 0),
            delta_span(m.volume_ml, p.map(|p| p.volume_ml), 0, None),
            f(m.mean_hu, 0),
            m.mean_hu
                .map(|x| delta_span(x, p.and_then(|p| p.mean_hu), 0, Some(true)))
                .unwrap_or_default(),
            f(Some(m.ggo_pct), 1),
            delta_span(m.ggo_pct, p.map(|p| p.ggo_pct), 1, Some(true)),
            f(Some(m.consolidation_pct), 1),
            delta_span(
                m.consolidation_pct,
                p.map(|p| p.consolidation_pct),
                1,
                Some(true)
            ),
            f(Some(m.affected_pct), 1),
            delta_span(m.affected_pct, p.map(|p| p.affected_pct), 1, Some(true)),
            crate::palette::EXTENT_COLOURS[m.extent_score.min(4) as usize],
            m.extent_score,
            delta_span(
                m.extent_score as f64,
                p.map(|p| p.extent_score as f64),
                0,
                Some(true)
            ),
        );
    }
    s.push_str("</tbody></table></div>");
    s
}

/// Software version, thresholds and how the numbers were made.
pub fn footer(version: &str, th: &Thresholds, extra: &[(String, String)]) -> String {
    let mut s = String::from("<footer><table><tbody>");
    let mut row = |k: &str, v: String| {
        let _ = write!(s, "<tr><td>{}</td><td class=\"l\">{}</td></tr>", esc(k), v);
    };
    row("Software", format!("ildtrack {}", esc(version)));
    row(
        "Density classes",
        format!(
            "LAA &lt; {} HU · normal {}…{} HU · GGO {}…{} HU · consolidation {}…{} HU (vessels excluded) · HAA {}…{} HU · subpleural ≤ {} mm",
            th.laa_hu,
            th.laa_hu,
            th.ggo_lo_hu,
            th.ggo_lo_hu,
            th.consolidation_lo_hu,
            th.consolidation_lo_hu,
            th.consolidation_hi_hu,
            th.haa_lo_hu,
            th.haa_hi_hu,
            th.subpleural_mm
        ),
    );
    row("Zones", "upper / middle / lower thirds of each lung's own craniocaudal extent; extent score 0 none, 1 &lt; 25 %, 2 25–50 %, 3 50–75 %, 4 ≥ 75 % of the zone affected".into());
    for (k, v) in extra {
        row(k, esc(v));
    }
    s.push_str("</tbody></table><p>Research software, not a medical device. Kurtosis is excess kurtosis (normal = 0). No patient name or ID is shown unless requested.</p></footer>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_words() {
        assert_eq!(day_text(Some(-7)), "day -7");
        assert_eq!(day_text(Some(30)), "day +30");
        assert_eq!(day_text(Some(0)), "day 0");
    }
}
