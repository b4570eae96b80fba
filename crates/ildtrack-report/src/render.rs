//! The two pages: one visit's `report.html` and the longitudinal `index.html`.

use crate::html::{self, esc, f};
use crate::palette;
use crate::svg::{self, Line};
use ildtrack_model::track::{DensityMetrics, TrackResult, TrackedVisit};
use ildtrack_model::visit::VisitResult;
use ildtrack_volume::{Identity, Warning};
use std::fmt::Write as _;

pub use crate::image::QcImage;

/// What may appear in a report.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReportOptions {
    /// Show patient name and ID (`--identify`). Off by default.
    pub identify: bool,
}

/// The previous visit shown beside the current one.
#[derive(Debug, Clone, Copy)]
pub struct PreviousVisit<'a> {
    pub result: &'a VisitResult,
    pub images: &'a [QcImage],
    pub label: Option<&'a str>,
    pub day: Option<i64>,
}

/// Everything one visit's `report.html` shows.
#[derive(Debug, Clone, Copy)]
pub struct VisitPage<'a> {
    pub result: &'a VisitResult,
    /// Axial ×3 then coronal, with the lung contour and GGO / consolidation overlays.
    pub images: &'a [QcImage],
    pub label: Option<&'a str>,
    pub day: Option<i64>,
    /// The verdict when the visit is part of a follow-up.
    pub tracked: Option<&'a TrackedVisit>,
    pub previous: Option<PreviousVisit<'a>>,
    /// Shown only with [`ReportOptions::identify`].
    pub identity: Option<&'a Identity>,
    /// Link back to the longitudinal report, e.g. `../../index.html`.
    pub index_href: Option<&'a str>,
    /// A follow-up registered onto the baseline: the change section.
    pub change: Option<crate::change::ChangeView<'a>>,
}

/// What kernel harmonization did for this scan: the harmonized figures where it was applied
/// (visits reconstructed with another kernel are compared on them), else one line saying why
/// not.
fn harmonization_block(r: &VisitResult) -> String {
    use ildtrack_model::visit::HarmonizationStatus as S;
    let Some(h) = &r.harmonization else {
        return String::new();
    };
    let fmt = |v: &[f64], d: usize| {
        v.iter()
            .map(|x| format!("{x:.d$}"))
            .collect::<Vec<_>>()
            .join(" / ")
    };
    match (h.status, &h.lungs) {
        (S::Applied, Some(hl)) => {
            let mut s = format!(
                "<section class=\"keep\"><h3>Kernel-harmonized metrics</h3><p class=\"sub\">This scan measured sharper or noisier than the soft reference kernel ({}). Its density classes and histogram metrics were also computed on HU harmonized to that reference: band gains {} for detail up to σ {} mm, noise {} → {} HU. The lung mask, the pictures and the table above are the scan's own; visits reconstructed with another kernel are compared on these (docs/HARMONIZATION.md). Small numbers: harmonized minus own.</p>",
                esc(&h.reason),
                fmt(&h.gains, 2),
                fmt(&h.band_sigmas_mm, 1),
                h.noise_before_hu.map_or("?".into(), |v| format!("{v:.1}")),
                h.noise_after_hu.map_or("?".into(), |v| format!("{v:.1}")),
            );
            let l = &r.lungs;
            s.push_str(&html::metrics_table(&[
                ("Both lungs", &hl.whole, Some(&l.whole)),
                ("Right lung", &hl.right, Some(&l.right)),
                ("Left lung", &hl.left, Some(&l.left)),
            ]));
            s.push_str("</section>");
            s
        }
        (S::NotNeeded, _) => format!(
            "<p class=\"sub\">Kernel harmonization: not needed — the scan measured at the soft reference kernel ({}); its own figures are the ones compared across kernels.</p>",
            esc(&h.reason)
        ),
        _ => format!(
            "<p class=\"sub\">Kernel harmonization: not done ({}); compare this scan's density only with visits of the same kernel.</p>",
            esc(&h.reason)
        ),
    }
}

/// Render one visit's report.
pub fn render_visit_html(p: &VisitPage<'_>, opts: &ReportOptions) -> String {
    let r = p.result;
    // In a follow-up the visit's date may be overridden (manifest `date`): show that one.
    let mut series = r.series.clone();
    if let Some(d) = p.tracked.and_then(|t| t.study_date.clone()) {
        series.study_date = Some(d);
    }
    let title = html::visit_title(p.label, series.study_date.as_deref(), p.day);
    let mut b = String::new();
    if let Some(href) = p.index_href {
        let _ = write!(
            b,
            r#"<p class="noprint"><a href="{}">← all visits (longitudinal report)</a></p>"#,
            esc(href)
        );
    }
    let _ = write!(
        b,
        "<h1>Chest CT lung report · {title}</h1><p class=\"sub\">Quantitative CT of interstitial lung disease (ildtrack)</p>"
    );
    let identity = if opts.identify { p.identity } else { None };
    b.push_str(&html::facts(&series, p.day, p.label, identity));

    // Verdict.
    if let Some(t) = p.tracked {
        b.push_str(&html::verdict_box(t));
    } else {
        let w = &r.lungs.whole;
        let _ = write!(
            b,
            r#"<section class="verdict baseline"><p class="big">Single visit</p><p>Disease extent (GGO + consolidation) is <b>{:.1} % of the lung</b> ({:.0} mL of {:.0} mL): GGO {:.1} %, consolidation {:.1} %. Six-zone extent score {}/24.</p></section>"#,
            w.affected_pct,
            w.affected_ml,
            w.volume_ml,
            w.ggo_pct,
            w.consolidation_pct,
            r.lungs.zones.total_extent_score()
        );
    }
    let mut ws: Vec<&Warning> = Vec::new();
    if let Some(t) = p.tracked {
        ws.extend(t.warnings.iter());
    }
    ws.extend(r.warnings.iter());
    b.push_str(&html::warnings_box("Warnings", &ws));

    // Images.
    b.push_str("<h2>Images</h2><p class=\"legend\"><span><i class=\"sw\" style=\"background:#00e600\"></i>right lung contour</span><span><i class=\"sw\" style=\"background:#2896ff\"></i>left lung contour</span><span><i class=\"sw\" style=\"background:#ffd700\"></i>ground-glass opacity</span><span><i class=\"sw\" style=\"background:#ff1e1e\"></i>consolidation</span><span>Patient's right is on the image left.</span></p>");
    b.push_str(&images_block(p));
    if let Some(c) = &p.change {
        b.push_str(&crate::change::change_section(c));
    }

    // Tables.
    let prev = p.previous.map(|pv| pv.result);
    let _ = write!(
        b,
        "<h2>Measurements</h2><p class=\"sub\">{}</p>",
        if let Some(pv) = p.previous {
            format!(
                "Small numbers under each value: change since the previous visit ({}); red = towards more disease.",
                html::visit_title(pv.label, pv.result.series.study_date.as_deref(), pv.day)
            )
        } else {
            "First or only visit: no previous values to compare.".into()
        }
    );
    let l = &r.lungs;
    let pl = prev.map(|x| &x.lungs);
    b.push_str(&html::metrics_table(&[
        ("Both lungs", &l.whole, pl.map(|x| &x.whole)),
        ("Right lung", &l.right, pl.map(|x| &x.right)),
        ("Left lung", &l.left, pl.map(|x| &x.left)),
        (
            "Subpleural (≤ 10 mm)",
            &l.subpleural,
            pl.map(|x| &x.subpleural),
        ),
        ("Core", &l.core, pl.map(|x| &x.core)),
    ]));
    b.push_str(&harmonization_block(r));
    // One block, so that print never leaves the heading alone at the foot of a page.
    b.push_str(
        "<section class=\"keep\"><h3>Zones and visual-style extent score</h3><div class=\"two\"><div>",
    );
    b.push_str(&svg::zone_diagram(&l.zones, "zd-main", false));
    b.push_str(&zone_legend());
    b.push_str("</div><div>");
    b.push_str(&html::zone_table(r, prev));
    b.push_str("</div></div></section>");

    // Histogram.
    b.push_str("<h2>Density histogram</h2>");
    match &r.histogram {
        Some(h) => {
            let ph = prev.and_then(|x| x.histogram.as_ref());
            let cur_name = format!(
                "this visit ({})",
                r.series.study_date.as_deref().unwrap_or("?")
            );
            let prev_name = format!(
                "previous ({})",
                prev.and_then(|x| x.series.study_date.as_deref())
                    .unwrap_or("?")
            );
            b.push_str(&svg::histogram_chart(
                h,
                ph,
                &r.thresholds,
                &cur_name,
                &prev_name,
            ));
        }
        None => b.push_str("<p class=\"sub\">No histogram in this visit's analysis.</p>"),
    }
    let mut extra = vec![
        (
            "Backend".to_string(),
            format!("{} ({})", r.backend, r.backend_device),
        ),
        ("visit.json schema".to_string(), r.schema_version.clone()),
    ];
    if let Some(t) = r.timings_ms.get("total") {
        extra.push(("Analysis time".into(), format!("{:.1} s", t / 1000.0)));
    }
    if let Some(uid) = &r.series.series_instance_uid {
        extra.push(("Series UID".into(), uid.clone()));
    }
    b.push_str(&html::footer(&r.version, &r.thresholds, &extra));
    html::page(
        &format!(
            "ildtrack report {}",
            r.series.study_date.as_deref().unwrap_or("")
        ),
        &b,
    )
}

fn images_block(p: &VisitPage<'_>) -> String {
    let mut s = String::new();
    if p.images.is_empty() {
        return "<p class=\"sub\">No QC images.</p>".into();
    }
    match p.previous.filter(|pv| !pv.images.is_empty()) {
        Some(pv) => {
            let _ = write!(
                s,
                r#"<p class="sub">Left of each pair: previous visit ({}); right: this visit ({}).</p>"#,
                html::visit_title(pv.label, pv.result.series.study_date.as_deref(), pv.day),
                html::visit_title(p.label, p.result.series.study_date.as_deref(), p.day)
            );
            s.push_str(&html::pairs_block(
                pv.images,
                p.images,
                ("previous", "this visit"),
            ));
        }
        None => {
            s.push_str(r#"<div class="imgs quad">"#);
            for im in p.images {
                let _ = write!(
                    s,
                    "<figure>{}<figcaption>{}</figcaption></figure>",
                    html::img_png(&im.png, &im.caption),
                    esc(&im.caption)
                );
            }
            s.push_str("</div>");
        }
    }
    s
}

/// Colour key of the extent score.
fn zone_legend() -> String {
    let mut s = String::from("<p class=\"legend\">Extent score: ");
    for (i, (c, w)) in palette::EXTENT_COLOURS
        .iter()
        .zip(palette::EXTENT_WORDS)
        .enumerate()
    {
        let _ = write!(
            s,
            "<span><i class=\"sw\" style=\"background:{c}\"></i>{i}: {}</span>",
            esc(w)
        );
    }
    s.push_str("</p>");
    s
}

/// Everything the longitudinal `index.html` shows.
#[derive(Debug, Clone, Copy)]
pub struct IndexPage<'a> {
    pub track: &'a TrackResult,
    /// Shown only with [`ReportOptions::identify`].
    pub identity: Option<&'a Identity>,
    /// QC image strip of the latest visit (optional).
    pub latest_images: &'a [QcImage],
}

fn trend(
    track: &TrackResult,
    title: &str,
    unit: &str,
    min_span: f64,
    get: impl Fn(&TrackedVisit) -> Option<f64>,
) -> String {
    let mut points = Vec::new();
    let mut colours = Vec::new();
    let mut titles = Vec::new();
    for v in &track.visits {
        if let (Some(d), Some(y)) = (v.day, get(v)) {
            points.push((d as f64, y));
            colours.push(html::status_colour(v.status).to_string());
            titles.push(format!(
                "{} ({}): {:.1} {} — {}",
                v.label
                    .as_deref()
                    .unwrap_or(v.study_date.as_deref().unwrap_or("?")),
                html::day_text(v.day),
                y,
                unit,
                v.status
            ));
        }
    }
    svg::line_chart(
        title,
        unit,
        &[Line {
            name: title.into(),
            colour: "#37474f".into(),
            points,
            point_colours: Some(colours),
            point_titles: Some(titles),
            dashed: false,
        }],
        track.day0.is_some(),
        min_span,
    )
}

/// Render the longitudinal report.
pub fn render_index_html<'a>(p: &IndexPage<'a>, opts: &ReportOptions) -> String {
    let t = p.track;
    let mut b = String::new();
    let first = t.visits.first();
    let last = t.visits.last();
    let _ = write!(
        b,
        "<h1>Chest CT follow-up · {} visit{}</h1><p class=\"sub\">{} to {}{} · quantitative CT of interstitial lung disease (ildtrack)</p>",
        t.visits.len(),
        if t.visits.len() == 1 { "" } else { "s" },
        esc(first.and_then(|v| v.study_date.as_deref()).unwrap_or("?")),
        esc(last.and_then(|v| v.study_date.as_deref()).unwrap_or("?")),
        t.day0
            .as_deref()
            .map(|d| format!(" · day 0 = {}", esc(d)))
            .unwrap_or_default()
    );
    if let Some(l) = last {
        let identity = if opts.identify { p.identity } else { None };
        let mut series = l.series.clone();
        if l.study_date.is_some() {
            series.study_date = l.study_date.clone();
        }
        b.push_str(&html::facts(&series, l.day, l.label.as_deref(), identity));
        let _ = write!(
            b,
            "<h2>Latest visit: {}</h2>",
            html::visit_title(l.label.as_deref(), l.study_date.as_deref(), l.day)
        );
        b.push_str(&html::verdict_box(l));
    }
    // Warnings every visit carries are shown once here, not repeated visit by visit.
    let visit_ws = |v: &'a TrackedVisit| v.warnings.iter().chain(v.analysis_warnings.iter());
    let common: Vec<&Warning> = match t.visits.first() {
        Some(v0) if t.visits.len() > 1 => {
            let mut c: Vec<&Warning> = Vec::new();
            for w in visit_ws(v0) {
                if t.visits.iter().all(|v| visit_ws(v).any(|x| x == w)) && !c.contains(&w) {
                    c.push(w);
                }
            }
            c
        }
        _ => Vec::new(),
    };
    let all_ws: Vec<&Warning> = t.warnings.iter().chain(common.iter().copied()).collect();
    if !all_ws.is_empty() {
        b.push_str(&html::warnings_box(
            "Warnings about the whole follow-up",
            &all_ws,
        ));
    }

    // Visits table.
    b.push_str("<h2>Visits</h2><div class=\"scroll\"><table><thead><tr><th>Visit</th><th>Date</th><th>Day</th><th>Verdict</th><th>Affected %</th><th>vs previous</th><th>vs first</th><th>GGO %</th><th>Consol. %</th><th>MLD HU</th><th>Lung mL</th><th>Score /24</th><th>Kernel · noise</th><th>Warn&shy;ings</th></tr></thead><tbody>");
    for v in &t.visits {
        let dp = v
            .delta_previous
            .as_ref()
            .and_then(|d| d.metrics.get("affected_pct").copied());
        let db = v
            .delta_baseline
            .as_ref()
            .and_then(|d| d.metrics.get("affected_pct").copied());
        let sign = |x: Option<f64>| x.map(html::pts).unwrap_or_else(|| "–".into());
        // Where the verdict compared this visit on kernel-harmonized metrics, the deltas beside
        // are harmonized too: show that figure under the scan's own one.
        let harmonized = v
            .harmonized_metrics
            .as_ref()
            .map(|h| h.affected_pct)
            .filter(|h| (h - v.metrics.affected_pct).abs() >= 0.05)
            .map(|h| format!("<span class=\"d\">{h:.1} harmonized</span>"))
            .unwrap_or_default();
        // The registered comparison with the baseline: net change in points and mL that
        // changed class; where disease moved between zones, said so.
        let (registered, moved) = match &v.registration {
            Some(r) if r.quality.accepted => (
                format!(
                    "<span class=\"d\">reg. {}</span>",
                    html::pts(r.followup_metrics.affected_pct - r.baseline_metrics.affected_pct)
                ),
                format!(
                    "<span class=\"d\">Δ {:.0}{}</span>",
                    r.moved_ml,
                    if r.migration.is_some() { " ⇄" } else { "" }
                ),
            ),
            Some(_) => (
                "<span class=\"d\">reg. rejected</span>".into(),
                String::new(),
            ),
            None => (String::new(), String::new()),
        };
        let name = esc(v.label.as_deref().unwrap_or("visit"));
        let link = match &v.dir {
            Some(d) => format!(r#"<a href="{}/report.html">{}</a>"#, esc(d), name),
            None => name,
        };
        let _ = write!(
            b,
            "<tr><td class=\"l\">{link}</td><td>{}</td><td>{}</td><td>{}</td><td><b>{:.1}</b>{harmonized}</td><td>{}</td><td>{}{registered}</td><td>{:.1}</td><td>{:.1}</td><td>{}</td><td>{:.0}{moved}</td><td>{}</td><td>{}</td><td class=\"l\">{}</td></tr>",
            html::opt_s(&v.study_date),
            v.day
                .map(|d| if d > 0 {
                    format!("+{d}")
                } else {
                    d.to_string()
                })
                .unwrap_or_else(|| "–".into()),
            html::badge(v.status),
            v.metrics.affected_pct,
            sign(dp),
            sign(db),
            v.metrics.ggo_pct,
            v.metrics.consolidation_pct,
            f(v.metrics.mean_hu, 0),
            v.metrics.volume_ml,
            v.total_extent_score,
            html::kernel_and_noise(&v.series, true),
            v.warnings.len() + v.analysis_warnings.len()
        );
    }
    b.push_str("</tbody></table></div>");
    if t.visits.iter().any(|v| v.registration.is_some()) {
        b.push_str("<p class=\"rule\">Under “vs first”, <b>reg.</b> is the registered comparison with the first visit: both visits measured on its lung voxels, the follow-up's density corrected for breath, and across reconstruction kernels both visits classified on HU harmonized to the soft reference kernel (the verdict uses it where the registration passed). Under “Lung mL”, <b>Δ</b> is the lung (mL) that changed class since the first visit (GGO, consolidation, normal, low attenuation); ⇄ marks disease that moved between zones. Each follow-up's report shows where.</p>");
    }
    if t.visits
        .iter()
        .any(|v| v.basis.density_metrics == DensityMetrics::Harmonized)
    {
        b.push_str("<p class=\"rule\">Visits compared across reconstruction kernels are judged on kernel-harmonized metrics (docs/HARMONIZATION.md): their “vs previous” and “vs first” columns are harmonized changes, and the harmonized affected % is shown under the scan's own where the two differ.</p>");
    }

    // Trends.
    b.push_str("<h2>Trends</h2><p class=\"sub\">Points are coloured by verdict: <span style=\"color:#c62828\">progressed</span>, <span style=\"color:#2e7d32\">improved</span>, <span style=\"color:#546e7a\">stable</span>, <span style=\"color:#1565c0\">baseline</span>. The dashed line marks day 0.</p><div class=\"charts\">");
    let mean_volume =
        t.visits.iter().map(|v| v.metrics.volume_ml).sum::<f64>() / t.visits.len().max(1) as f64;
    b.push_str(&trend(
        t,
        "Affected (GGO + consolidation)",
        "% of lung",
        10.0,
        |v| Some(v.metrics.affected_pct),
    ));
    b.push_str(&trend(t, "Ground-glass opacity", "% of lung", 10.0, |v| {
        Some(v.metrics.ggo_pct)
    }));
    b.push_str(&trend(t, "Consolidation", "% of lung", 5.0, |v| {
        Some(v.metrics.consolidation_pct)
    }));
    b.push_str(&trend(
        t,
        "High attenuation area (HAA)",
        "% of lung",
        10.0,
        |v| Some(v.metrics.haa_pct),
    ));
    b.push_str(&trend(t, "Mean lung density", "HU", 60.0, |v| {
        v.metrics.mean_hu
    }));
    // A ±10 % band at least: smaller changes are within breathing variation.
    b.push_str(&trend(t, "Lung volume", "mL", 0.2 * mean_volume, |v| {
        Some(v.metrics.volume_ml)
    }));
    if t.visits
        .iter()
        .any(|v| v.fvc_pct_pred.is_some() || v.dlco_pct_pred.is_some())
    {
        let pts = |g: fn(&TrackedVisit) -> Option<f64>| -> Vec<(f64, f64)> {
            t.visits
                .iter()
                .filter_map(|v| Some((v.day? as f64, g(v)?)))
                .collect()
        };
        b.push_str(&svg::line_chart(
            "Lung function",
            "% predicted",
            &[
                Line {
                    name: "FVC".into(),
                    colour: "#6a1b9a".into(),
                    points: pts(|v| v.fvc_pct_pred),
                    point_colours: None,
                    point_titles: None,
                    dashed: false,
                },
                Line {
                    name: "DLCO".into(),
                    colour: "#00838f".into(),
                    points: pts(|v| v.dlco_pct_pred),
                    point_colours: None,
                    point_titles: None,
                    dashed: true,
                },
            ],
            t.day0.is_some(),
            20.0,
        ));
    }
    b.push_str("</div>");

    // Zones over time.
    b.push_str("<h2>Six-zone extent score over time</h2><div class=\"zonegrid\">");
    for v in &t.visits {
        let _ = write!(
            b,
            "<div>{}<br><b>{}</b><br>{} · {}<br>{}</div>",
            svg::zone_diagram(&v.zones, &format!("zd-{}", v.index), true),
            esc(v.label.as_deref().unwrap_or("visit")),
            html::opt_s(&v.study_date),
            html::day_text(v.day),
            html::badge(v.status)
        );
    }
    b.push_str("</div>");
    b.push_str(&zone_legend());

    if !p.latest_images.is_empty() {
        b.push_str("<h2>Latest visit images</h2><div class=\"imgs quad\">");
        for im in p.latest_images {
            let _ = write!(
                b,
                "<figure>{}<figcaption>{}</figcaption></figure>",
                html::img_png(&im.png, &im.caption),
                esc(&im.caption)
            );
        }
        b.push_str("</div>");
    }

    // Verdicts and warnings per visit.
    b.push_str("<h2>Verdicts and warnings, visit by visit</h2>");
    for v in t.visits.iter().rev() {
        let _ = write!(
            b,
            "<h3>{} {}</h3>",
            html::visit_title(v.label.as_deref(), v.study_date.as_deref(), v.day),
            html::badge(v.status)
        );
        let _ = write!(b, "<p>{}</p>", esc(&v.reason));
        let ws: Vec<&Warning> = visit_ws(v).filter(|w| !common.contains(w)).collect();
        if !ws.is_empty() {
            b.push_str(&html::warnings_box("Warnings", &ws));
        }
    }
    let _ = write!(
        b,
        "<h2>How to read this</h2><p class=\"rule\"><b>Verdict rule:</b> {}</p>",
        esc(&t.rule)
    );
    for n in &t.notes {
        let _ = write!(b, "<p class=\"rule\">{}</p>", esc(n));
    }
    let versions: Vec<String> = {
        let mut v: Vec<String> = t
            .visits
            .iter()
            .map(|v| v.software_version.clone())
            .collect();
        v.dedup();
        v
    };
    b.push_str(&html::footer(
        &t.version,
        &t.thresholds,
        &[
            (
                "Visits analysed with".into(),
                format!("ildtrack {}", versions.join(", ")),
            ),
            ("track.json schema".into(), t.schema_version.clone()),
            (
                "Protocol tolerances".into(),
                format!(
                    "slice thickness ±{} mm, kVp ±{}, lung volume ±{} %, image noise ×{}, adult from {} years",
                    t.config.tolerances.slice_thickness_mm,
                    t.config.tolerances.kvp,
                    t.config.tolerances.lung_volume_change_pct,
                    t.config.tolerances.noise_ratio,
                    t.config.tolerances.adult_age_years
                ),
            ),
        ],
    ));
    html::page("ildtrack follow-up", &b)
}
