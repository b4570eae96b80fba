//! A follow-up registered onto the baseline, as written to `visits/<date>/registration/change.json`
//! and summarised in `track.json` (schema in `docs/track-json.md`): where the disease changed,
//! not only how much. `ildtrack-register` computes these values; this module names them.
//!
//! The voxel codes of `change.nii.gz` are the `CHANGE_*` constants ([`CHANGE_CODES`] names
//! them): one per baseline lung voxel, (baseline class → follow-up class) after registration
//! and the breath correction of the follow-up's density.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Version of the `change.json` schema.
pub const CHANGE_SCHEMA_VERSION: &str = "1.0";

/// Outside the baseline lungs.
pub const CHANGE_OUTSIDE: u8 = 0;
/// Same class at both visits, neither GGO nor consolidation (normal, low attenuation, vessel).
pub const CHANGE_STABLE: u8 = 1;
pub const CHANGE_STABLE_GGO: u8 = 2;
pub const CHANGE_STABLE_CONSOLIDATION: u8 = 3;
/// Normal or low attenuation → GGO.
pub const CHANGE_NEW_GGO: u8 = 4;
/// GGO → normal or low attenuation.
pub const CHANGE_RESOLVED_GGO: u8 = 5;
pub const CHANGE_GGO_TO_CONSOLIDATION: u8 = 6;
pub const CHANGE_CONSOLIDATION_TO_GGO: u8 = 7;
/// Normal or low attenuation → consolidation.
pub const CHANGE_NEW_CONSOLIDATION: u8 = 8;
/// Consolidation → normal or low attenuation.
pub const CHANGE_RESOLVED_CONSOLIDATION: u8 = 9;
/// Normal → low attenuation.
pub const CHANGE_NEW_LAA: u8 = 10;
/// Low attenuation → normal.
pub const CHANGE_RESOLVED_LAA: u8 = 11;
/// A vessel (or dense structure) at one visit and not the other: not counted as disease change.
pub const CHANGE_VESSEL: u8 = 12;
/// The follow-up has no lung (or no image) where this baseline lung voxel maps to.
pub const CHANGE_NOT_COMPARABLE: u8 = 13;

/// `(code, name)` of every change code, for legends and the documentation.
pub const CHANGE_CODES: [(u8, &str); 14] = [
    (CHANGE_OUTSIDE, "outside the baseline lungs"),
    (
        CHANGE_STABLE,
        "stable (normal, low attenuation or vessel at both visits)",
    ),
    (CHANGE_STABLE_GGO, "stable GGO"),
    (CHANGE_STABLE_CONSOLIDATION, "stable consolidation"),
    (CHANGE_NEW_GGO, "new GGO"),
    (CHANGE_RESOLVED_GGO, "resolved GGO"),
    (CHANGE_GGO_TO_CONSOLIDATION, "GGO → consolidation"),
    (CHANGE_CONSOLIDATION_TO_GGO, "consolidation → GGO"),
    (CHANGE_NEW_CONSOLIDATION, "new consolidation"),
    (CHANGE_RESOLVED_CONSOLIDATION, "resolved consolidation"),
    (CHANGE_NEW_LAA, "new low attenuation"),
    (CHANGE_RESOLVED_LAA, "resolved low attenuation"),
    (CHANGE_VESSEL, "vessel at one visit only"),
    (CHANGE_NOT_COMPARABLE, "no follow-up lung here"),
];

/// Class names of the transition matrix's rows (baseline) and columns (follow-up), in the order
/// of the `ildtrack_model::class` codes 1..=5, then the follow-up's "outside lung".
pub const TRANSITION_CLASSES: [&str; 6] = [
    "laa",
    "normal",
    "ggo",
    "consolidation",
    "vessel",
    "outside_lung",
];

/// New and resolved disease in one region (mL of baseline lung).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RegionChange {
    /// Baseline lung volume of the region, mL.
    pub volume_ml: f64,
    pub new_ggo_ml: f64,
    pub resolved_ggo_ml: f64,
    pub ggo_to_consolidation_ml: f64,
    pub consolidation_to_ggo_ml: f64,
    pub new_consolidation_ml: f64,
    pub resolved_consolidation_ml: f64,
    /// GGO + consolidation: follow-up minus baseline, mL (breath-corrected).
    pub net_affected_ml: f64,
    /// Same, as points of the region's baseline volume.
    pub net_affected_points: f64,
    /// Local volume change: mean Jacobian of the region / mean Jacobian of both lungs. 1 = the
    /// region changed volume like the whole lung (growth and inspiration are not disease).
    pub relative_volume_change: f64,
}

/// Registration quality and the threshold it was judged against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegistrationQuality {
    /// Dice of the baseline lungs and the registered follow-up lungs.
    pub lung_dice: f64,
    /// Mean descriptor difference (MIND-SSC, squared) over the lungs before and after the
    /// deformable step: lower is more similar.
    pub similarity_before: f64,
    pub similarity_after: f64,
    /// Baseline lung voxels where the map folds (Jacobian ≤ 0), %.
    pub folding_pct: f64,
    /// Follow-up lung volume per baseline lung volume through the map.
    pub mean_jacobian: f64,
    /// Baseline lung voxels that map into the follow-up's lungs, %.
    pub coverage_pct: f64,
    /// Whether the registration passed the thresholds (`docs/REGISTRATION.md`); change maps and
    /// the registered comparison are withheld when not.
    pub accepted: bool,
    /// Why not accepted (empty when accepted).
    pub reason: String,
}

/// Whole-lung class shares on the baseline's lung voxels, the same classifier at both visits
/// (`docs/REGISTRATION.md`, "Change maps").
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RegisteredMetrics {
    pub laa950_pct: f64,
    pub ggo_pct: f64,
    pub consolidation_pct: f64,
    /// GGO + consolidation.
    pub affected_pct: f64,
    /// Mean HU of the non-vessel lung voxels.
    pub mean_hu: f64,
}

impl RegisteredMetrics {
    /// The metrics by name (as in `visit.json`'s metrics object), for the verdict rule.
    pub fn map(&self) -> BTreeMap<String, f64> {
        [
            ("laa950_pct", self.laa950_pct),
            ("ggo_pct", self.ggo_pct),
            ("consolidation_pct", self.consolidation_pct),
            ("affected_pct", self.affected_pct),
            ("mean_hu", self.mean_hu),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }
}

/// Which HU both visits' classes in a change map were decided on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClassFooting {
    /// Each scan's own HU (the visits share a reconstruction kernel).
    #[default]
    Own,
    /// The visits differ in reconstruction kernel: both on the soft reference kernel's footing
    /// (each visit's kernel-harmonized classes where harmonization was applied, its own where it
    /// measured at the reference; docs/HARMONIZATION.md).
    KernelHarmonized,
}

/// `change.json`: one follow-up registered onto the baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeSummary {
    pub schema_version: String,
    /// Date (or label) of the baseline and of this follow-up.
    pub baseline: String,
    pub followup: String,
    pub quality: RegistrationQuality,
    /// Whether the follow-up's density was corrected for the local volume change before it was
    /// classified (HU' = −1000 + (HU + 1000) · J for aerated tissue; airless tissue keeps its
    /// density: `ildtrack_register::change::correct_for_breath`).
    pub breath_corrected: bool,
    /// Which HU the two visits' classes were decided on (older files: `own`).
    #[serde(default)]
    pub classes_footing: ClassFooting,
    /// Baseline lung volume, and the follow-up's lung volume over the same tissue (mL).
    pub baseline_lung_ml: f64,
    pub followup_lung_ml: f64,
    /// mL of baseline lung, row = baseline class, column = follow-up class
    /// ([`TRANSITION_CLASSES`]).
    pub transition_ml: Vec<Vec<f64>>,
    /// Class shares of the baseline, of the follow-up as corrected for breath, and of the
    /// follow-up without the correction, all on the baseline's lung voxels.
    pub baseline_metrics: RegisteredMetrics,
    pub followup_metrics: RegisteredMetrics,
    pub followup_uncorrected_metrics: RegisteredMetrics,
    /// Both lungs, and per zone (the baseline's zones, `ZONE_NAMES` order).
    pub whole: RegionChange,
    pub zones: BTreeMap<String, RegionChange>,
    /// New GGO over the whole lung had the follow-up's density not been corrected for breath, mL.
    pub new_ggo_uncorrected_ml: f64,
    /// Resolved GGO over the whole lung had the follow-up's density not been corrected for
    /// breath, mL (absent in files written before it was added: 0).
    #[serde(default)]
    pub resolved_ggo_uncorrected_ml: f64,
    /// Disease moved: at least one zone gained and another lost ≥ the documented amount while the
    /// whole-lung net stayed within it (empty when not).
    pub migration: Option<String>,
    /// Voxel codes of `change.nii.gz`: code → name.
    pub codes: BTreeMap<u8, String>,
    /// What the figures mean and do not.
    pub notes: Vec<String>,
}

impl ChangeSummary {
    /// mL that moved between classes (off-diagonal of the transition matrix, vessel and
    /// outside-lung columns left out).
    pub fn moved_ml(&self) -> f64 {
        let mut s = 0.0;
        for (i, row) in self.transition_ml.iter().enumerate().take(4) {
            for (j, v) in row.iter().enumerate().take(4) {
                if i != j {
                    s += v;
                }
            }
        }
        s
    }
}

/// What `track.json` carries of a follow-up's registration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegistrationSummary {
    /// `registration/` folder of this visit, relative to the track folder (maps written only
    /// when accepted).
    pub dir: Option<String>,
    pub quality: RegistrationQuality,
    pub baseline_metrics: RegisteredMetrics,
    pub followup_metrics: RegisteredMetrics,
    pub whole: RegionChange,
    /// mL moved between classes (see [`ChangeSummary::moved_ml`]).
    pub moved_ml: f64,
    pub new_ggo_uncorrected_ml: f64,
    #[serde(default)]
    pub resolved_ggo_uncorrected_ml: f64,
    pub migration: Option<String>,
    /// See [`ChangeSummary::classes_footing`].
    #[serde(default)]
    pub classes_footing: ClassFooting,
}

impl From<&ChangeSummary> for RegistrationSummary {
    fn from(c: &ChangeSummary) -> Self {
        RegistrationSummary {
            dir: None,
            quality: c.quality.clone(),
            baseline_metrics: c.baseline_metrics.clone(),
            followup_metrics: c.followup_metrics.clone(),
            whole: c.whole.clone(),
            moved_ml: c.moved_ml(),
            new_ggo_uncorrected_ml: c.new_ggo_uncorrected_ml,
            resolved_ggo_uncorrected_ml: c.resolved_ggo_uncorrected_ml,
            migration: c.migration.clone(),
            classes_footing: c.classes_footing,
        }
    }
}
