//! Inline SVG charts: trend lines, HU histogram overlay, six-zone diagram. No scripts, no
//! external resources; every text goes through [`esc`](crate::escape::esc).

use crate::escape::esc;
use crate::palette::EXTENT_COLOURS;
use ildtrack_model::visit::{HuHistogram, Thresholds, Zones};
use std::fmt::Write as _;

/// One line of a trend chart.
#[derive(Debug, Clone)]
pub struct Line {
    pub name: String,
    pub colour: String,
    /// `(x, y)`; x is days from day0.
    pub points: Vec<(f64, f64)>,
    /// Colour per point (e.g. by verdict); `None` uses the line colour.
    pub point_colours: Option<Vec<String>>,
    /// Tooltip per point.
    pub point_titles: Option<Vec<String>>,
    pub dashed: bool,
}

/// A "nice" tick step (1, 2, 2.5, 5 × 10^k) giving about `n` ticks over `range`.
fn nice_step(range: f64, n: f64) -> f64 {
    if !(range.is_finite() && range > 0.0) {
        return 1.0;
    }
    let raw = range / n;
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    let m = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 2.5 {
        2.5
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    m * mag
}

fn ticks(lo: f64, hi: f64, n: f64) -> (f64, f64, Vec<f64>) {
    let step = nice_step(hi - lo, n);
    let lo2 = (lo / step).floor() * step;
    let hi2 = (hi / step).ceil() * step;
    let mut t = Vec::new();
    let mut v = lo2;
    while v <= hi2 + step * 1e-6 && t.len() < 50 {
        t.push(if v.abs() < step * 1e-9 { 0.0 } else { v });
        v += step;
    }
    (lo2, hi2, t)
}

fn fmt_tick(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{}", v.round() as i64)
    } else if (v * 10.0 - (v * 10.0).round()).abs() < 1e-9 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// A line chart of values against days from day0, with a dashed vertical line at day 0.
/// The y axis spans at least `min_span_y` (so noise does not look like a trend) and does not
/// go below 0 when every value is ≥ 0.
pub fn line_chart(
    title: &str,
    y_unit: &str,
    lines: &[Line],
    show_day0: bool,
    min_span_y: f64,
) -> String {
    let (w, h) = (520.0, 250.0);
    let (ml, mr, mt, mb) = (58.0, 16.0, 30.0, 40.0);
    let pts: Vec<(f64, f64)> = lines
        .iter()
        .flat_map(|l| l.points.iter().copied())
        .filter(|p| p.0.is_finite() && p.1.is_finite())
        .collect();
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart" viewBox="0 0 {w} {h}" role="img" aria-label="{t}" xmlns="http://www.w3.org/2000/svg"><text x="{ml}" y="18" class="ct">{t}</text>"#,
        t = esc(title)
    );
    if pts.is_empty() {
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" class="empty" text-anchor="middle">no data</text></svg>"#,
            w / 2.0,
            h / 2.0
        );
        return s;
    }
    let (mut x0, mut x1) = pts
        .iter()
        .fold((f64::MAX, f64::MIN), |a, p| (a.0.min(p.0), a.1.max(p.0)));
    if show_day0 {
        x0 = x0.min(0.0);
        x1 = x1.max(0.0);
    }
    if x1 - x0 < 1.0 {
        x0 -= 1.0;
        x1 += 1.0;
    }
    let pad = (x1 - x0) * 0.04;
    let (x0, x1) = (x0 - pad, x1 + pad);
    let (mut y0, mut y1) = pts
        .iter()
        .fold((f64::MAX, f64::MIN), |a, p| (a.0.min(p.1), a.1.max(p.1)));
    let non_negative = y0 >= 0.0;
    let span = (y1 - y0).max(min_span_y).max(1e-6);
    let mid = (y0 + y1) / 2.0;
    if y1 - y0 < span {
        y0 = mid - span / 2.0;
        y1 = mid + span / 2.0;
    }
    let ypad = (y1 - y0) * 0.08;
    let (mut lo, mut hi) = (y0 - ypad, y1 + ypad);
    if non_negative && lo < 0.0 {
        hi -= lo;
        lo = 0.0;
    }
    let (y0, y1, yt) = ticks(lo, hi, 4.0);
    let (_, _, xt) = ticks(x0, x1, 6.0);
    let px = |x: f64| ml + (x - x0) / (x1 - x0) * (w - ml - mr);
    let py = |y: f64| h - mb - (y - y0) / (y1 - y0) * (h - mt - mb);
    s.push_str(r#"<g class="grid">"#);
    for &t in &yt {
        let _ = write!(
            s,
            r#"<line x1="{ml}" x2="{}" y1="{y:.1}" y2="{y:.1}"/>"#,
            w - mr,
            y = py(t)
        );
    }
    s.push_str("</g><g class=\"axis\">");
    for &t in &yt {
        let _ = write!(
            s,
            r#"<text x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
            ml - 6.0,
            py(t) + 4.0,
            fmt_tick(t)
        );
    }
    for &t in xt.iter().filter(|t| **t >= x0 && **t <= x1) {
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
            px(t),
            h - mb + 16.0,
            fmt_tick(t)
        );
    }
    let _ = write!(
        s,
        r#"<text x="{:.1}" y="{}" text-anchor="middle">days from day 0</text><text x="12" y="{:.1}" transform="rotate(-90 12 {:.1})" text-anchor="middle">{}</text></g>"#,
        ml + (w - ml - mr) / 2.0,
        h - 6.0,
        mt + (h - mt - mb) / 2.0,
        mt + (h - mt - mb) / 2.0,
        esc(y_unit)
    );
    let _ = write!(
        s,
        r#"<line class="frame" x1="{ml}" x2="{ml}" y1="{mt}" y2="{}"/>"#,
        h - mb
    );
    let _ = write!(
        s,
        r#"<line class="frame" x1="{ml}" x2="{}" y1="{}" y2="{}"/>"#,
        w - mr,
        h - mb,
        h - mb
    );
    if show_day0 {
        let _ = write!(
            s,
            r#"<line class="day0" x1="{x:.1}" x2="{x:.1}" y1="{mt}" y2="{}"/><text class="day0t" x="{:.1}" y="{}">day 0</text>"#,
            h - mb,
            px(0.0) + 4.0,
            mt + 10.0,
            x = px(0.0)
        );
    }
    for l in lines {
        let p: Vec<(f64, f64)> = l
            .points
            .iter()
            .copied()
            .filter(|p| p.0.is_finite() && p.1.is_finite())
            .collect();
        if p.is_empty() {
            continue;
        }
        let path: Vec<String> = p
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
            .collect();
        let _ = write!(
            s,
            r#"<polyline fill="none" stroke="{c}" stroke-width="2.2"{d} points="{}"/>"#,
            path.join(" "),
            c = esc(&l.colour),
            d = if l.dashed {
                r#" stroke-dasharray="6 4""#
            } else {
                ""
            }
        );
        for (i, &(x, y)) in l.points.iter().enumerate() {
            if !(x.is_finite() && y.is_finite()) {
                continue;
            }
            let c = l
                .point_colours
                .as_ref()
                .and_then(|c| c.get(i))
                .unwrap_or(&l.colour);
            let title = l
                .point_titles
                .as_ref()
                .and_then(|t| t.get(i))
                .cloned()
                .unwrap_or_else(|| format!("day {x:.0}: {y:.1}"));
            let _ = write!(
                s,
                r##"<circle cx="{:.1}" cy="{:.1}" r="4.5" fill="{}" stroke="#fff" stroke-width="1.5"><title>{}</title></circle>"##,
                px(x),
                py(y),
                esc(c),
                esc(&title)
            );
        }
    }
    if lines.len() > 1 {
        let legend_w: f64 = lines
            .iter()
            .map(|l| 30.0 + 7.0 * l.name.chars().count() as f64)
            .sum();
        let mut lx = w - mr - legend_w;
        for l in lines {
            let _ = write!(
                s,
                r#"<line x1="{lx:.1}" x2="{:.1}" y1="{y}" y2="{y}" stroke="{}" stroke-width="2.2"{}/><text x="{:.1}" y="{}" class="lg">{}</text>"#,
                lx + 18.0,
                esc(&l.colour),
                if l.dashed {
                    r#" stroke-dasharray="6 4""#
                } else {
                    ""
                },
                lx + 22.0,
                18.0,
                esc(&l.name),
                y = 14.0
            );
            lx += 30.0 + 7.0 * l.name.chars().count() as f64;
        }
    }
    s.push_str("</svg>");
    s
}

fn hist_fractions(h: &HuHistogram) -> Vec<(f64, f64)> {
    let total = h.total().max(1) as f64;
    h.counts
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            (
                (h.lo_hu + h.bin_width_hu * i as i32) as f64,
                100.0 * c as f64 / total,
            )
        })
        .collect()
}

/// One histogram panel at `(x_off, 0)` of size `pw × ph` over `[x0, x1]` HU.
#[allow(clippy::too_many_arguments)]
fn hist_panel(
    s: &mut String,
    x_off: f64,
    pw: f64,
    ph: f64,
    (x0, x1): (f64, f64),
    cur: &[(f64, f64)],
    prev: Option<&[(f64, f64)]>,
    bw: f64,
    th: &Thresholds,
    title: &str,
    x_ticks: &[f64],
) {
    let (ml, mr, mt, mb) = (46.0, 10.0, 62.0, 40.0);
    let in_range = |p: &&(f64, f64)| p.0 + bw > x0 && p.0 < x1;
    let ymax = cur
        .iter()
        .filter(in_range)
        .chain(prev.unwrap_or(&[]).iter().filter(in_range))
        .map(|p| p.1)
        .fold(0.0, f64::max)
        .max(0.05);
    let (_, y1, yt) = ticks(0.0, ymax * 1.05, 4.0);
    let px = |x: f64| x_off + ml + (x.clamp(x0, x1) - x0) / (x1 - x0) * (pw - ml - mr);
    let py = |y: f64| ph - mb - y / y1 * (ph - mt - mb);
    let _ = write!(
        s,
        r#"<text x="{:.1}" y="{}" class="ct">{}</text>"#,
        x_off + ml,
        mt - 18.0,
        esc(title)
    );
    let bands = [
        (f64::MIN, th.laa_hu as f64, "#dbe9f6", "LAA"),
        (th.laa_hu as f64, th.ggo_lo_hu as f64, "#ffffff", "normal"),
        (
            th.ggo_lo_hu as f64,
            th.consolidation_lo_hu as f64,
            "#fff3c4",
            "GGO",
        ),
        (
            th.consolidation_lo_hu as f64,
            th.consolidation_hi_hu as f64,
            "#fbd5cf",
            "consolidation",
        ),
    ];
    for (a, b, c, name) in bands {
        let (a, b) = (a.max(x0), b.min(x1));
        if b <= a {
            continue;
        }
        let _ = write!(
            s,
            r#"<rect x="{:.1}" y="{mt}" width="{:.1}" height="{}" fill="{c}"/><text x="{:.1}" y="{}" text-anchor="middle" class="band">{}</text>"#,
            px(a),
            px(b) - px(a),
            ph - mt - mb,
            (px(a) + px(b)) / 2.0,
            mt + 12.0,
            esc(name)
        );
    }
    s.push_str(r#"<g class="grid">"#);
    for &t in &yt {
        let _ = write!(
            s,
            r#"<line x1="{:.1}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}"/>"#,
            x_off + ml,
            x_off + pw - mr,
            y = py(t)
        );
    }
    s.push_str("</g><g class=\"axis\">");
    for &t in &yt {
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            x_off + ml - 5.0,
            py(t) + 4.0,
            fmt_tick(t)
        );
    }
    for &t in x_ticks {
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
            px(t),
            ph - mb + 16.0,
            t as i64
        );
    }
    let _ = write!(
        s,
        r#"<text x="{:.1}" y="{}" text-anchor="middle">HU</text><text x="{:.1}" y="{:.1}" transform="rotate(-90 {:.1} {:.1})" text-anchor="middle">% of lung</text></g>"#,
        x_off + ml + (pw - ml - mr) / 2.0,
        ph - 6.0,
        x_off + 12.0,
        mt + (ph - mt - mb) / 2.0,
        x_off + 12.0,
        mt + (ph - mt - mb) / 2.0
    );
    let path = |pts: &[(f64, f64)], close: bool| -> String {
        let mut d = format!("M{:.1},{:.1}", px(x0), py(0.0));
        for &(x, y) in pts {
            if x + bw <= x0 || x >= x1 {
                continue;
            }
            let _ = write!(
                d,
                " L{:.1},{:.1} L{:.1},{:.1}",
                px(x),
                py(y.min(y1)),
                px(x + bw),
                py(y.min(y1))
            );
        }
        let _ = write!(d, " L{:.1},{:.1}", px(x1), py(0.0));
        if close {
            d.push_str(" Z");
        }
        d
    };
    let _ = write!(
        s,
        "<path d=\"{}\" fill=\"#1565c0\" fill-opacity=\"0.28\" stroke=\"#1565c0\" stroke-width=\"1.6\"/>",
        path(cur, true)
    );
    if let Some(p) = prev {
        let _ = write!(
            s,
            "<path d=\"{}\" fill=\"none\" stroke=\"#263238\" stroke-width=\"1.8\" stroke-dasharray=\"5 3\"/>",
            path(p, false)
        );
    }
    let _ = write!(
        s,
        r#"<line class="frame" x1="{:.1}" x2="{:.1}" y1="{}" y2="{}"/>"#,
        x_off + ml,
        x_off + pw - mr,
        ph - mb,
        ph - mb
    );
}

/// HU histogram of the lung (percent of lung voxels per bin) with the previous visit's
/// overlaid and the density-class bands behind: the full range, and the disease range
/// (GGO and consolidation) enlarged so small changes show.
pub fn histogram_chart(
    current: &HuHistogram,
    previous: Option<&HuHistogram>,
    th: &Thresholds,
    cur_name: &str,
    prev_name: &str,
) -> String {
    let (w, h) = (1000.0, 300.0);
    let cur = hist_fractions(current);
    let prev = previous.map(hist_fractions);
    let bw = current.bin_width_hu as f64;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart" viewBox="0 0 {w} {h}" role="img" aria-label="HU histogram" xmlns="http://www.w3.org/2000/svg">"#
    );
    // Legend across the top.
    let _ = write!(
        s,
        "<rect x=\"46\" y=\"8\" width=\"16\" height=\"11\" fill=\"#1565c0\" fill-opacity=\"0.35\" stroke=\"#1565c0\"/><text x=\"68\" y=\"18\" class=\"lg\">{}</text>",
        esc(cur_name)
    );
    if previous.is_some() {
        let _ = write!(
            s,
            "<line x1=\"300\" x2=\"322\" y1=\"13\" y2=\"13\" stroke=\"#263238\" stroke-width=\"1.8\" stroke-dasharray=\"5 3\"/><text x=\"328\" y=\"18\" class=\"lg\">{}</text>",
            esc(prev_name)
        );
    }
    let full_ticks = [-1000.0, -800.0, -600.0, -400.0, -200.0, 0.0, 200.0];
    hist_panel(
        &mut s,
        0.0,
        520.0,
        h,
        (-1024.0, 200.0),
        &cur,
        prev.as_deref(),
        bw,
        th,
        "Whole range",
        &full_ticks,
    );
    let lo = th.ggo_lo_hu as f64;
    let hi = (th.consolidation_hi_hu as f64).max(lo + 100.0);
    let step = nice_step(hi - lo, 4.0);
    let mut zt = Vec::new();
    let mut t = (lo / step).ceil() * step;
    while t <= hi + 1e-9 {
        zt.push(t);
        t += step;
    }
    hist_panel(
        &mut s,
        530.0,
        470.0,
        h,
        (lo, hi),
        &cur,
        prev.as_deref(),
        bw,
        th,
        "Disease range enlarged (GGO and consolidation)",
        &zt,
    );
    s.push_str("</svg>");
    s
}

/// The right lung's outline in a 120 × 240 box (drawn on the viewer's left, as in radiology).
const LUNG_PATH: &str = "M82 10 C52 12 22 70 16 150 C13 190 14 218 22 232 C46 220 80 215 106 224 C103 170 101 120 101 70 C101 34 96 10 82 10 Z";

/// Six-zone diagram: each lung's upper, middle and lower third coloured by extent score.
/// `id` must be unique in the page (clip paths are referenced by id).
/// `compact` draws the smaller variant for the over-time strip.
pub fn zone_diagram(zones: &Zones, id: &str, compact: bool) -> String {
    let id = id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect::<String>();
    let (top, bottom) = (10.0, 232.0);
    let third = (bottom - top) / 3.0;
    let mut s = String::new();
    let (w, h) = (260.0, 252.0);
    let _ = write!(
        s,
        r#"<svg class="zones{}" viewBox="0 0 {w} {h}" role="img" aria-label="six-zone extent scores" xmlns="http://www.w3.org/2000/svg"><defs>"#,
        if compact { " compact" } else { "" }
    );
    for k in 0..3 {
        let _ = write!(
            s,
            r#"<clipPath id="{id}-z{k}"><rect x="0" y="{:.1}" width="130" height="{:.1}"/></clipPath>"#,
            top + third * k as f64,
            third
        );
    }
    let _ = write!(
        s,
        r#"<clipPath id="{id}-lung"><path d="{LUNG_PATH}"/></clipPath>"#
    );
    s.push_str("</defs>");
    let all = zones.iter();
    // Right lung on the viewer's left (x 0..120), left lung mirrored on the right (x 140..260).
    for (side, offset, mirror) in [("right", 4.0, false), ("left", 256.0, true)] {
        let transform = if mirror {
            format!("translate({offset} 0) scale(-1 1)")
        } else {
            format!("translate({offset} 0)")
        };
        let _ = write!(s, r#"<g transform="{transform}">"#);
        for (k, level) in ["upper", "middle", "lower"].iter().enumerate() {
            let name = format!("{side}_{level}");
            let m = all.iter().find(|(n, _)| *n == name).map(|(_, m)| *m);
            let score = m.map(|m| m.extent_score.min(4) as usize).unwrap_or(0);
            let _ = write!(
                s,
                r#"<path d="{LUNG_PATH}" fill="{}" clip-path="url(#{id}-z{k})"><title>{} {}: score {}</title></path>"#,
                EXTENT_COLOURS[score], side, level, score
            );
        }
        let _ = write!(s, r#"<g clip-path="url(#{id}-lung)">"#);
        for k in 1..3 {
            let y = top + third * k as f64;
            let _ = write!(
                s,
                r##"<line x1="0" x2="120" y1="{y:.1}" y2="{y:.1}" stroke="#455a64" stroke-width="1.2" stroke-dasharray="4 3"/>"##
            );
        }
        s.push_str("</g>");
        let _ = write!(
            s,
            r##"<path d="{LUNG_PATH}" fill="none" stroke="#37474f" stroke-width="2"/></g>"##
        );
        let cx = if mirror { 256.0 - 60.0 } else { 4.0 + 60.0 };
        for (k, level) in ["upper", "middle", "lower"].iter().enumerate() {
            let name = format!("{side}_{level}");
            if let Some((_, m)) = all.iter().find(|(n, _)| *n == name) {
                let cy = top + third * (k as f64 + 0.5);
                let _ = write!(
                    s,
                    r#"<text x="{cx}" y="{:.1}" text-anchor="middle" class="zs">{}</text><text x="{cx}" y="{:.1}" text-anchor="middle" class="zp">{:.1} %</text>"#,
                    cy + 2.0,
                    m.extent_score,
                    cy + 18.0,
                    m.affected_pct
                );
            }
        }
    }
    let total = zones.total_extent_score();
    let _ = write!(
        s,
        r#"<text x="64" y="{y}" text-anchor="middle" class="side">R</text><text x="196" y="{y}" text-anchor="middle" class="side">L</text><text x="130" y="{y}" text-anchor="middle" class="tot">total {total}/24</text>"#,
        y = bottom + 16.0
    );
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_steps() {
        assert_eq!(nice_step(10.0, 5.0), 2.0);
        assert_eq!(nice_step(100.0, 4.0), 25.0);
        assert_eq!(nice_step(0.7, 5.0), 0.2);
        let (lo, hi, t) = ticks(-3.2, 17.5, 4.0);
        assert!(lo <= -3.2 && hi >= 17.5 && t.len() >= 3, "{lo} {hi} {t:?}");
    }

    #[test]
    fn chart_escapes_text_and_handles_empty() {
        let l = Line {
            name: "<b>".into(),
            colour: "#000".into(),
            points: vec![(0.0, 1.0), (10.0, 2.0)],
            point_colours: None,
            point_titles: None,
            dashed: false,
        };
        let s = line_chart("a < b", "%", &[l.clone(), l], true, 1.0);
        assert!(s.contains("a &lt; b") && !s.contains("<b>"));
        assert!(line_chart("x", "%", &[], false, 1.0).contains("no data"));
    }
}
