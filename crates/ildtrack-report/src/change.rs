//! The "Change since the baseline" section of a follow-up's report: the baseline and the
//! registered follow-up side by side with the change overlaid, and where GGO and consolidation
//! came and went, zone by zone.

use crate::html::{self, esc};
use crate::image::QcImage;
use crate::qc::CHANGE_LEGEND;
use ildtrack_model::change::{ChangeSummary, ClassFooting};
use ildtrack_volume::ZONE_NAMES;
use std::fmt::Write as _;

/// A follow-up's registration onto the baseline, as its report shows it.
#[derive(Debug, Clone, Copy)]
pub struct ChangeView<'a> {
    pub change: &'a ChangeSummary,
    /// The baseline at the report's levels (lung contour, no overlay) ...
    pub baseline_images: &'a [QcImage],
    /// ... and the registered follow-up at the same levels, change overlaid.
    pub followup_images: &'a [QcImage],
}

fn ml(x: f64) -> String {
    format!("{x:.0}")
}

/// The section's HTML.
pub fn change_section(v: &ChangeView<'_>) -> String {
    let c = v.change;
    let q = &c.quality;
    let mut s = String::from("<h2>Change since the baseline (registered)</h2>");
    let _ = write!(
        s,
        "<p class=\"sub\">The follow-up ({}) registered onto the baseline ({}): lung Dice {:.3}, folding {:.2} %, {:.1} % of the baseline lungs mapped into the follow-up's; follow-up lung volume over the same tissue {:.0} mL vs {:.0} mL (mean Jacobian {:.2}). The follow-up's density was corrected for the local volume change (breath) before it was classified. Zones are the baseline's.</p>",
        esc(&c.followup),
        esc(&c.baseline),
        q.lung_dice,
        q.folding_pct,
        q.coverage_pct,
        c.followup_lung_ml,
        c.baseline_lung_ml,
        q.mean_jacobian
    );
    if c.classes_footing == ClassFooting::KernelHarmonized {
        s.push_str("<p class=\"sub\">The visits differ in reconstruction kernel: both visits' classes here were decided on HU harmonized to the soft reference kernel (docs/HARMONIZATION.md), so the kernel is not read as change. The pictures show each scan's own HU.</p>");
    }
    if let Some(m) = &c.migration {
        let _ = write!(s, "<p class=\"warn\"><b>Disease moved:</b> {}</p>", esc(m));
    }
    s.push_str("<p class=\"legend\">");
    for (_, name, rgb) in CHANGE_LEGEND {
        let _ = write!(
            s,
            "<span><i class=\"sw\" style=\"background:rgb({},{},{})\"></i>{}</span>",
            rgb[0],
            rgb[1],
            rgb[2],
            esc(name)
        );
    }
    s.push_str("<span>Patient's right is on the image left.</span></p>");
    s.push_str(&html::pairs_block(
        v.baseline_images,
        v.followup_images,
        ("baseline", "follow-up, registered"),
    ));
    s.push_str("<div class=\"scroll\"><table><thead><tr><th>Region</th><th>Baseline mL</th><th>New GGO mL</th><th>Resolved GGO mL</th><th>GGO → consol. mL</th><th>Consol. → GGO mL</th><th>New consol. mL</th><th>Resolved consol. mL</th><th>Net affected</th><th>Volume change vs whole lung</th></tr></thead><tbody>");
    let rows = std::iter::once(("both lungs".to_string(), &c.whole)).chain(
        ZONE_NAMES
            .iter()
            .filter_map(|n| c.zones.get(*n).map(|z| (n.replace('_', " "), z))),
    );
    for (name, z) in rows {
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:+.0} mL ({:+.1} pts)</td><td>{:.2}×</td></tr>",
            esc(&name),
            ml(z.volume_ml),
            ml(z.new_ggo_ml),
            ml(z.resolved_ggo_ml),
            ml(z.ggo_to_consolidation_ml),
            ml(z.consolidation_to_ggo_ml),
            ml(z.new_consolidation_ml),
            ml(z.resolved_consolidation_ml),
            z.net_affected_ml,
            z.net_affected_points,
            z.relative_volume_change
        );
    }
    let _ = write!(
        s,
        "</tbody></table></div><p class=\"sub\">Without the breath correction the follow-up would show {:.0} mL of new GGO (with it: {:.0} mL). Maps: <code>registration/change.nii.gz</code>, <code>displacement.nii.gz</code> (ITK displacement field), <code>warped.nii.gz</code>, <code>jacobian.nii.gz</code>; figures in <code>change.json</code>.</p>",
        c.new_ggo_uncorrected_ml, c.whole.new_ggo_ml
    );
    s
}
