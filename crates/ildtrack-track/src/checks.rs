//! Protocol checks between two visits and the volume adjustment.

use crate::round::round6;
use ildtrack_model::track::{TrackConfig, VolumeAdjusted};
use ildtrack_model::visit::VisitResult;
use ildtrack_volume::Warning;

fn norm(s: &Option<String>) -> Option<String> {
    s.as_ref()
        .map(|x| x.trim().to_ascii_lowercase())
        .filter(|x| !x.is_empty())
}

fn shown(s: &Option<String>) -> String {
    s.as_deref()
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .unwrap_or("unknown")
        .to_string()
}

/// Whether a contrast agent tag means contrast was given.
fn has_contrast(s: &Option<String>) -> bool {
    match norm(s) {
        None => false,
        Some(x) => !matches!(
            x.as_str(),
            "none" | "no" | "n" | "nil" | "0" | "-" | "without"
        ),
    }
}

fn push_unique(out: &mut Vec<Warning>, w: Warning) {
    if !out
        .iter()
        .any(|x| x.code == w.code && x.message == w.message)
    {
        out.push(w);
    }
}

/// Warn when this visit's patient is younger than the adult age.
/// Skipped when the analysis already warned (same code) for this visit.
pub(crate) fn age_check(r: &VisitResult, cfg: &TrackConfig, out: &mut Vec<Warning>) {
    if r.warnings.iter().any(|w| w.code == "pediatric-patient") {
        return;
    }
    if let Some(age) = r.series.patient_age_years
        && age < cfg.tolerances.adult_age_years
    {
        push_unique(
            out,
            Warning::new(
                "pediatric-patient",
                format!(
                    "patient age {age:.0} years is under {:.0}: children's lungs are denser, so adult density thresholds \
                     overstate GGO; compare visits with each other rather than with adult norms",
                    cfg.tolerances.adult_age_years
                ),
            ),
        );
    }
}

/// Join `(reference name, its value)` pairs: `the baseline's B and the previous visit's C`.
fn refs_text(diffs: &[(&str, String)]) -> String {
    diffs
        .iter()
        .map(|(what, val)| format!("{what}'s {val}"))
        .collect::<Vec<_>>()
        .join(" and ")
}

/// The two visits' reconstruction kernels differ: names that differ, or one unknown (the same
/// test as the `kernel-mismatch` and `kernel-unknown` warnings).
pub fn kernel_names_differ(a: &VisitResult, b: &VisitResult) -> bool {
    match (norm(&a.series.kernel), norm(&b.series.kernel)) {
        (Some(x), Some(y)) => x != y,
        (None, None) => false,
        _ => true,
    }
}

/// Compare this visit's protocol with reference visits (`("the baseline", r)`,
/// `("the previous visit", r)`); one warning per kind of difference naming every reference
/// that differs.
pub(crate) fn protocol_checks(
    cur: &VisitResult,
    refs: &[(&str, &VisitResult)],
    cfg: &TrackConfig,
    out: &mut Vec<Warning>,
) {
    let a = &cur.series;
    let tol = &cfg.tolerances;

    let mut kernel = Vec::new();
    let mut kernel_unknown = Vec::new();
    let mut thick = Vec::new();
    let mut kvp = Vec::new();
    let mut noise = Vec::new();
    let mut scanner_d = Vec::new();
    let mut contrast = Vec::new();
    let mut volume = Vec::new();
    let scanner = |s: &ildtrack_model::visit::SeriesSummary| {
        let m = [norm(&s.manufacturer), norm(&s.manufacturer_model)];
        if m.iter().all(Option::is_none) {
            None
        } else {
            Some(m)
        }
    };
    let show_scanner = |s: &ildtrack_model::visit::SeriesSummary| {
        format!(
            "{} {}",
            shown(&s.manufacturer),
            shown(&s.manufacturer_model)
        )
    };
    let contrast_word = |c: bool| {
        if c {
            "contrast-enhanced"
        } else {
            "without contrast"
        }
    };
    let ca = has_contrast(&a.contrast_agent);
    let va = cur.lungs.whole.volume_ml;
    for (what, r) in refs {
        let b = &r.series;
        match (norm(&a.kernel), norm(&b.kernel)) {
            (Some(x), Some(y)) if x != y => kernel.push((*what, shown(&b.kernel))),
            (None, Some(_)) | (Some(_), None) => kernel_unknown.push((*what, shown(&b.kernel))),
            _ => {}
        }
        if let (Some(x), Some(y)) = (a.slice_thickness_mm, b.slice_thickness_mm)
            && (x - y).abs() > tol.slice_thickness_mm
        {
            thick.push((*what, format!("{y:.2} mm")));
        }
        if let (Some(x), Some(y)) = (a.kvp, b.kvp)
            && (x - y).abs() > tol.kvp
        {
            kvp.push((*what, format!("{y:.0} kVp")));
        }
        if let (Some(x), Some(y)) = (a.noise_sd_hu, b.noise_sd_hu)
            && x.max(y) > tol.noise_ratio * x.min(y)
            && (x - y).abs() > 5.0
        {
            noise.push((*what, format!("{y:.0} HU")));
        }
        if let (Some(x), Some(y)) = (scanner(a), scanner(b))
            && x != y
        {
            scanner_d.push((*what, show_scanner(b)));
        }
        let cb = has_contrast(&b.contrast_agent);
        if ca != cb {
            contrast.push((*what, contrast_word(cb).to_string()));
        }
        let vb = r.lungs.whole.volume_ml;
        if vb > 0.0 {
            let change_pct = (va / vb - 1.0) * 100.0;
            if change_pct.abs() > tol.lung_volume_change_pct {
                volume.push((
                    *what,
                    format!(
                        "{vb:.0} mL ({}{change_pct:.0} %)",
                        if change_pct >= 0.0 { "+" } else { "" }
                    ),
                ));
            }
        }
    }
    if !kernel.is_empty() {
        push_unique(
            out,
            Warning::new(
                "kernel-mismatch",
                format!(
                    "reconstruction kernel {} differs from {}: the kernel alone can move density metrics more than a year of disease",
                    shown(&a.kernel),
                    refs_text(&kernel)
                ),
            ),
        );
    }
    if !kernel_unknown.is_empty() {
        push_unique(
            out,
            Warning::new(
                "kernel-unknown",
                format!(
                    "reconstruction kernel is {} here and {}: cannot confirm the same kernel",
                    shown(&a.kernel),
                    refs_text(&kernel_unknown)
                ),
            ),
        );
    }
    if !thick.is_empty() {
        push_unique(
            out,
            Warning::new(
                "slice-thickness-mismatch",
                format!(
                    "slice thickness {} differs from {}: partial-volume effects change density metrics",
                    a.slice_thickness_mm
                        .map(|t| format!("{t:.2} mm"))
                        .unwrap_or_default(),
                    refs_text(&thick)
                ),
            ),
        );
    }
    if !kvp.is_empty() {
        push_unique(
            out,
            Warning::new(
                "kvp-mismatch",
                format!(
                    "tube voltage {} differs from {}: HU values shift with kVp",
                    a.kvp.map(|v| format!("{v:.0} kVp")).unwrap_or_default(),
                    refs_text(&kvp)
                ),
            ),
        );
    }
    if !noise.is_empty() {
        push_unique(
            out,
            Warning::new(
                "noise-mismatch",
                format!(
                    "image noise {} differs from {}: a sharper kernel or a lower dose (whatever the \
                     kernel is called) widens the histogram and moves LAA, SD and GGO",
                    a.noise_sd_hu
                        .map(|v| format!("{v:.0} HU"))
                        .unwrap_or_default(),
                    refs_text(&noise)
                ),
            ),
        );
    }
    if !scanner_d.is_empty() {
        push_unique(
            out,
            Warning::new(
                "scanner-mismatch",
                format!(
                    "scanner {} differs from {}: calibration differs between scanners",
                    show_scanner(a),
                    refs_text(&scanner_d)
                ),
            ),
        );
    }
    if !contrast.is_empty() {
        push_unique(
            out,
            Warning::new(
                "contrast-mismatch",
                format!(
                    "this scan is {} unlike {}: contrast raises lung density (vessels, perfused parenchyma)",
                    contrast_word(ca),
                    contrast
                        .iter()
                        .map(|(w, v)| format!("{w} ({v})"))
                        .collect::<Vec<_>>()
                        .join(" and ")
                ),
            ),
        );
    }
    if !volume.is_empty() {
        push_unique(
            out,
            Warning::new(
                "lung-volume-change",
                format!(
                    "lung volume {va:.0} mL differs by more than {:.0} % from {}: a different depth of inspiration changes density \
                     on its own; see the volume-adjusted figures",
                    tol.lung_volume_change_pct,
                    refs_text(&volume)
                ),
            ),
        );
    }
}

/// Share of each zone in its lung's volume, percent (RU, RM, RL, LU, LM, LL).
fn zone_shares(r: &VisitResult) -> Option<[f64; 6]> {
    let (rv, lv) = (r.lungs.right.volume_ml, r.lungs.left.volume_ml);
    if !(rv > 0.0 && lv > 0.0) {
        return None;
    }
    let z = r.lungs.zones.iter();
    let mut out = [0.0; 6];
    for (i, (_, m)) in z.iter().enumerate() {
        out[i] = 100.0 * m.volume_ml / if i < 3 { rv } else { lv };
    }
    Some(out)
}

/// Zones are each lung's own thirds, so each should keep a similar share of its lung between
/// visits; a share moving by more than 10 points means the zones do not cover the same tissue
/// (different lung coverage, a partial scan, a segmentation change).
pub(crate) fn zone_alignment(
    cur: &VisitResult,
    refs: &[(&str, &VisitResult)],
    out: &mut Vec<Warning>,
) {
    const MAX_SHIFT_PCT: f64 = 10.0;
    let Some(a) = zone_shares(cur) else { return };
    let names = [
        "right upper",
        "right middle",
        "right lower",
        "left upper",
        "left middle",
        "left lower",
    ];
    let mut worst: Option<(f64, usize, &str)> = None;
    for (what, r) in refs {
        if let Some(b) = zone_shares(r) {
            for i in 0..6 {
                let d = (a[i] - b[i]).abs();
                if d > MAX_SHIFT_PCT && worst.is_none_or(|w| d > w.0) {
                    worst = Some((d, i, what));
                }
            }
        }
    }
    if let Some((d, i, what)) = worst {
        push_unique(
            out,
            Warning::new(
                "zone-alignment",
                format!(
                    "the {} zone holds {:.0} % of its lung here but differs by {d:.0} points from {what}: the zones may not cover \
                     the same tissue (different scan coverage or segmentation), so compare zone figures with care",
                    names[i], a[i]
                ),
            ),
        );
    }
}

/// Density figures of `cur` adjusted to the reference's lung volume (tissue mass conserved).
pub(crate) fn volume_adjusted(
    cur: &VisitResult,
    reference: &VisitResult,
) -> Option<VolumeAdjusted> {
    let (v, vr) = (cur.lungs.whole.volume_ml, reference.lungs.whole.volume_ml);
    if !(v > 0.0 && vr > 0.0) {
        return None;
    }
    // A single slice's "volume" is its area times its thickness, not the lungs' volume: no
    // inspiration adjustment between such visits (it gave MLD shifts of hundreds of HU).
    if [cur, reference].iter().any(|r| r.series.dims_zyx[0] <= 1) {
        return None;
    }
    let mass = cur.lungs.whole.mean_hu.map(|m| v * (m + 1000.0) / 1000.0);
    let mass_r = reference
        .lungs
        .whole
        .mean_hu
        .map(|m| vr * (m + 1000.0) / 1000.0);
    let mld_adj = mass.map(|g| -1000.0 + 1000.0 * g / vr);
    Some(VolumeAdjusted {
        reference_volume_ml: round6(vr),
        volume_ml: round6(v),
        volume_change_pct: round6((v / vr - 1.0) * 100.0),
        tissue_mass_g: mass.map(round6),
        reference_tissue_mass_g: mass_r.map(round6),
        mean_hu_at_reference_volume: mld_adj.map(round6),
        delta_mean_hu_adjusted: mld_adj
            .zip(reference.lungs.whole.mean_hu)
            .map(|(a, b)| round6(a - b)),
        tissue_mass_change_pct: mass.zip(mass_r).and_then(|(a, b)| {
            if b > 0.0 {
                Some(round6((a / b - 1.0) * 100.0))
            } else {
                None
            }
        }),
    })
}

/// A follow-up whose registration failed its checks, or whose disease moved between zones.
pub(crate) fn registration_warnings(
    registered: Option<&ildtrack_model::change::RegistrationSummary>,
    cfg: &TrackConfig,
    warnings: &mut Vec<Warning>,
) {
    let Some(r) = registered else {
        return;
    };
    if !r.quality.accepted {
        warnings.push(Warning::new(
            "registration-rejected",
            format!(
                "the registration of this visit onto the baseline did not pass its checks ({}): change maps are withheld{}",
                r.quality.reason,
                if cfg.comparison == ildtrack_model::track::Comparison::Registered {
                    " and the verdict compares each visit's own figures"
                } else {
                    ""
                }
            ),
        ));
    } else if let Some(m) = &r.migration {
        warnings.push(Warning::new("disease-migrated", m.clone()));
    }
}
