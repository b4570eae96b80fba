//! Protocol checks between two visits and the volume adjustment.

use crate::{TrackConfig, VolumeAdjusted, round6};
use ildtrack_analysis::model::VisitResult;
use ildtrack_volume::Warning;

fn norm(s: &Option<String>) -> Option<String> {
    s.as_ref().map(|x| x.trim().to_ascii_lowercase()).filter(|x| !x.is_empty())
}

fn shown(s: &Option<String>) -> String {
    s.as_deref().map(str::trim).filter(|x| !x.is_empty()).unwrap_or("unknown").to_string()
}

/// Whether a contrast agent tag means contrast was given.
fn has_contrast(s: &Option<String>) -> bool {
    match norm(s) {
        None => false,
        Some(x) => !matches!(x.as_str(), "none" | "no" | "n" | "nil" | "0" | "-" | "without"),
    }
}

fn push_unique(out: &mut Vec<Warning>, w: Warning) {
    if !out.iter().any(|x| x.code == w.code && x.message == w.message) {
        out.push(w);
    }
}

/// Warn when this visit's patient is younger than the adult age.
pub(crate) fn age_check(r: &VisitResult, cfg: &TrackConfig, out: &mut Vec<Warning>) {
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

/// Compare this visit's protocol with a reference visit (`what` = "the baseline" / "the previous visit").
pub(crate) fn protocol_checks(cur: &VisitResult, reference: &VisitResult, what: &str, cfg: &TrackConfig, out: &mut Vec<Warning>) {
    let (a, b) = (&cur.series, &reference.series);
    let tol = &cfg.tolerances;
    match (norm(&a.kernel), norm(&b.kernel)) {
        (Some(x), Some(y)) if x != y => push_unique(
            out,
            Warning::new(
                "kernel-mismatch",
                format!(
                    "reconstruction kernel {} differs from {what}'s {}: the kernel alone can move density metrics more than a year of disease",
                    shown(&a.kernel),
                    shown(&b.kernel)
                ),
            ),
        ),
        (None, Some(_)) | (Some(_), None) => push_unique(
            out,
            Warning::new(
                "kernel-unknown",
                format!("reconstruction kernel is {} here and {} in {what}: cannot confirm the same kernel", shown(&a.kernel), shown(&b.kernel)),
            ),
        ),
        _ => {}
    }
    if let (Some(x), Some(y)) = (a.slice_thickness_mm, b.slice_thickness_mm)
        && (x - y).abs() > tol.slice_thickness_mm
    {
        push_unique(
            out,
            Warning::new(
                "slice-thickness-mismatch",
                format!("slice thickness {x:.2} mm differs from {what}'s {y:.2} mm: partial-volume effects change density metrics"),
            ),
        );
    }
    if let (Some(x), Some(y)) = (a.kvp, b.kvp)
        && (x - y).abs() > tol.kvp
    {
        push_unique(
            out,
            Warning::new("kvp-mismatch", format!("tube voltage {x:.0} kVp differs from {what}'s {y:.0} kVp: HU values shift with kVp")),
        );
    }
    let scanner = |s: &ildtrack_analysis::model::SeriesSummary| {
        let m = [norm(&s.manufacturer), norm(&s.manufacturer_model)];
        if m.iter().all(Option::is_none) { None } else { Some(m) }
    };
    if let (Some(x), Some(y)) = (scanner(a), scanner(b))
        && x != y
    {
        let show = |s: &ildtrack_analysis::model::SeriesSummary| {
            format!("{} {}", shown(&s.manufacturer), shown(&s.manufacturer_model))
        };
        push_unique(
            out,
            Warning::new(
                "scanner-mismatch",
                format!("scanner {} differs from {what}'s {}: calibration differs between scanners", show(a), show(b)),
            ),
        );
    }
    let (ca, cb) = (has_contrast(&a.contrast_agent), has_contrast(&b.contrast_agent));
    if ca != cb {
        push_unique(
            out,
            Warning::new(
                "contrast-mismatch",
                format!(
                    "this scan is {} and {what} is {}: contrast raises lung density (vessels, perfused parenchyma)",
                    if ca { "contrast-enhanced" } else { "without contrast" },
                    if cb { "contrast-enhanced" } else { "without contrast" }
                ),
            ),
        );
    }
    let (va, vb) = (cur.lungs.whole.volume_ml, reference.lungs.whole.volume_ml);
    if vb > 0.0 {
        let change_pct = (va / vb - 1.0) * 100.0;
        if change_pct.abs() > tol.lung_volume_change_pct {
            push_unique(
                out,
                Warning::new(
                    "lung-volume-change",
                    format!(
                        "lung volume {va:.0} mL is {}{change_pct:.0} % vs {what} ({vb:.0} mL): a different depth of inspiration changes \
                         density on its own; see the volume-adjusted figures",
                        if change_pct >= 0.0 { "+" } else { "" }
                    ),
                ),
            );
        }
    }
}

/// Density figures of `cur` adjusted to the reference's lung volume (tissue mass conserved).
pub(crate) fn volume_adjusted(cur: &VisitResult, reference: &VisitResult) -> Option<VolumeAdjusted> {
    let (v, vr) = (cur.lungs.whole.volume_ml, reference.lungs.whole.volume_ml);
    if !(v > 0.0 && vr > 0.0) {
        return None;
    }
    let mass = cur.lungs.whole.mean_hu.map(|m| v * (m + 1000.0) / 1000.0);
    let mass_r = reference.lungs.whole.mean_hu.map(|m| vr * (m + 1000.0) / 1000.0);
    let mld_adj = mass.map(|g| -1000.0 + 1000.0 * g / vr);
    Some(VolumeAdjusted {
        reference_volume_ml: round6(vr),
        volume_ml: round6(v),
        volume_change_pct: round6((v / vr - 1.0) * 100.0),
        tissue_mass_g: mass.map(round6),
        reference_tissue_mass_g: mass_r.map(round6),
        mean_hu_at_reference_volume: mld_adj.map(round6),
        delta_mean_hu_adjusted: mld_adj.zip(reference.lungs.whole.mean_hu).map(|(a, b)| round6(a - b)),
        tissue_mass_change_pct: mass
            .zip(mass_r)
            .and_then(|(a, b)| if b > 0.0 { Some(round6((a / b - 1.0) * 100.0)) } else { None }),
    })
}
