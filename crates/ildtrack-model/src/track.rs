//! The follow-up as written to `track.json` and `track.csv` (schema in `docs/track-json.md`):
//! the verdict rule and tolerances it was judged with, and each visit in date order with its
//! deltas, verdict and warnings. `ildtrack-track` computes these values; this module only
//! holds, names and serialises them.

use crate::visit::{Metrics, SeriesSummary, Thresholds, Zones};
use ildtrack_volume::Warning;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Version of the `track.json` schema.
pub const TRACK_SCHEMA_VERSION: &str = "1.0";

/// How far two protocols may differ before a warning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProtocolTolerances {
    /// Slice thickness difference above which visits are flagged (mm).
    pub slice_thickness_mm: f64,
    /// Tube voltage difference above which visits are flagged (kV).
    pub kvp: f64,
    /// Lung volume change (percent of the reference visit's volume) above which density changes
    /// are flagged as partly due to inspiration depth.
    pub lung_volume_change_pct: f64,
    /// Patients younger than this get the adult-threshold warning (years).
    pub adult_age_years: f64,
    /// Measured image noise (`series.noise_sd_hu`) of two visits differing by more than this
    /// ratio (and 5 HU) is flagged: a sharper kernel or a lower dose, whatever the kernel is
    /// called.
    pub noise_ratio: f64,
}

impl Default for ProtocolTolerances {
    fn default() -> Self {
        ProtocolTolerances {
            slice_thickness_mm: 0.5,
            kvp: 1.0,
            lung_volume_change_pct: 10.0,
            adult_age_years: 18.0,
            noise_ratio: 1.5,
        }
    }
}

/// The verdict rule (DOMAIN.md "What counts as change") and the protocol tolerances.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrackConfig {
    /// Whole-lung metric the verdict is judged on (a numeric field of `Metrics`), default `affected_pct`.
    pub metric: String,
    /// Change vs the baseline visit, in the metric's units (points for percentages), default 5.
    pub baseline_points: f64,
    /// Change vs the previous visit, default 3; counts only with the same trend (the change vs
    /// baseline goes the same way).
    pub previous_points: f64,
    /// `true` when a higher value means more disease (affected %, GGO %, MLD, HAA %).
    pub higher_is_worse: bool,
    pub tolerances: ProtocolTolerances,
    /// Register every follow-up onto the baseline (change maps, `change.json`), default true.
    pub register: bool,
    /// What the verdict compares, default `registered` (used where the registration passed its
    /// quality checks; otherwise each visit's own figures).
    pub comparison: Comparison,
    /// Whose zones a follow-up's zone figures use, default `own` (each visit's own thirds);
    /// `baseline`: the baseline's thirds carried to the follow-up by the registration.
    pub zones: ZoneSource,
}

/// Whose thirds a visit's zones are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ZoneSource {
    /// Each visit's own craniocaudal thirds.
    #[default]
    Own,
    /// The baseline's thirds, carried to each follow-up by its registration.
    Baseline,
}

/// What a verdict compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Comparison {
    /// Both visits measured on the baseline's lung voxels after registration, the follow-up's
    /// density corrected for the local volume change (breath).
    #[default]
    Registered,
    /// Each visit's own whole-lung figures.
    Unregistered,
}

impl Default for TrackConfig {
    fn default() -> Self {
        TrackConfig {
            metric: "affected_pct".into(),
            baseline_points: 5.0,
            previous_points: 3.0,
            higher_is_worse: true,
            tolerances: ProtocolTolerances::default(),
            register: true,
            comparison: Comparison::Registered,
            zones: ZoneSource::Own,
        }
    }
}

impl TrackConfig {
    /// The rule in words, printed with every verdict.
    pub fn rule_text(&self) -> String {
        let (worse, better) = if self.higher_is_worse {
            ("rises", "falls")
        } else {
            ("falls", "rises")
        };
        format!(
            "progressed if whole-lung {m} {worse} by >= {b} points vs the baseline visit, or by >= {p} points vs the \
             previous visit while also {worse2} vs baseline (same trend); improved if it {better} by the same amounts; \
             otherwise stable{reg}",
            m = self.metric,
            b = fmt_num(self.baseline_points),
            p = fmt_num(self.previous_points),
            worse2 = if self.higher_is_worse {
                "higher"
            } else {
                "lower"
            },
            reg = if self.register && self.comparison == Comparison::Registered {
                ". Where a follow-up's registration onto the baseline passes its quality checks, both visits are measured \
                 on the baseline's lung voxels and the follow-up's density is first corrected for the local volume change \
                 (breath); otherwise each visit's own figures are compared"
            } else {
                ""
            },
        )
    }
}

/// The verdict of one visit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Baseline,
    Improved,
    Stable,
    Progressed,
    /// The verdict metric is missing in this visit or its references (e.g. empty lung mask).
    Indeterminate,
}

impl Status {
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Baseline => "baseline",
            Status::Improved => "improved",
            Status::Stable => "stable",
            Status::Progressed => "progressed",
            Status::Indeterminate => "indeterminate",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Left and right lung.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sides<T> {
    pub left: T,
    pub right: T,
}

/// Metric name → (this visit − reference visit), for every numeric metric present in both.
pub type MetricDelta = BTreeMap<String, f64>;

/// Differences against one reference visit, region by region.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deltas {
    /// Index (in date order) of the reference visit.
    pub against_visit: usize,
    pub against_date: Option<String>,
    /// Days between the reference visit and this one.
    pub days_between: Option<i64>,
    /// Whole lung.
    pub metrics: MetricDelta,
    pub sides: Sides<MetricDelta>,
    /// Zone name (`right_upper` … `left_lower`) → deltas.
    pub zones: BTreeMap<String, MetricDelta>,
    pub subpleural: MetricDelta,
    pub core: MetricDelta,
}

/// The numbers behind a verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerdictBasis {
    pub metric: String,
    pub value: Option<f64>,
    pub baseline_value: Option<f64>,
    pub previous_value: Option<f64>,
    pub delta_baseline: Option<f64>,
    pub delta_previous: Option<f64>,
    /// Which part of the rule fired: `baseline`, `previous`, or `none`.
    pub triggered_by: String,
    /// The comparison crossed a protocol difference (see warnings): the change may be partly technical.
    pub protocol_mismatch: bool,
    /// This visit or a visit it is compared with has a `segmentation-doubt` analysis warning:
    /// the change may be partly a segmentation error.
    #[serde(default)]
    pub segmentation_doubt: bool,
    /// Which density metrics the deltas and the verdict used (`raw` in files written before
    /// kernel harmonization existed).
    #[serde(default)]
    pub density_metrics: DensityMetrics,
    /// Whether the value, baseline value and previous value are the registered comparison's
    /// (`unregistered` in files written before registration existed).
    #[serde(default = "unregistered")]
    pub comparison: Comparison,
}

fn unregistered() -> Comparison {
    Comparison::Unregistered
}

/// The density metrics behind a comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DensityMetrics {
    /// Each visit's own metrics (same reconstruction kernel).
    #[default]
    Raw,
    /// The visits differ in kernel: each visit's metrics on the soft reference kernel's
    /// footing (`VisitResult::reference_lungs`: harmonized where applied).
    Harmonized,
    /// The visits differ in kernel and one could not be harmonized: density deltas are left
    /// out (volume only) and the verdict is `indeterminate`.
    NotComparable,
}

/// Density figures corrected for a lung volume (inspiration) difference against the baseline,
/// assuming the lung tissue mass stays the same: mass_g = volume_ml × (MLD + 1000) / 1000.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VolumeAdjusted {
    pub reference_volume_ml: f64,
    pub volume_ml: f64,
    /// This visit's lung volume as a percentage change of the baseline's.
    pub volume_change_pct: f64,
    /// Lung tissue mass estimate (g) from volume and MLD.
    pub tissue_mass_g: Option<f64>,
    pub reference_tissue_mass_g: Option<f64>,
    /// MLD this visit would have at the baseline's lung volume (HU).
    pub mean_hu_at_reference_volume: Option<f64>,
    /// Volume-adjusted MLD minus the baseline MLD (HU).
    pub delta_mean_hu_adjusted: Option<f64>,
    /// Tissue mass change vs baseline (%): a density change that survives the volume correction.
    pub tissue_mass_change_pct: Option<f64>,
}

/// One visit in date order, as written to `track.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackedVisit {
    /// Position in date order (0 = baseline).
    pub index: usize,
    /// Position in the list handed to `ildtrack_track::track`.
    pub input_index: usize,
    pub label: Option<String>,
    /// `YYYY-MM-DD`.
    pub study_date: Option<String>,
    pub series_time: Option<String>,
    /// Days from day0 (negative before treatment).
    pub day: Option<i64>,
    /// Where this visit's outputs live, relative to the track folder.
    pub dir: Option<String>,
    pub series: SeriesSummary,
    /// Whole lung.
    pub metrics: Metrics,
    pub sides: Sides<Metrics>,
    pub zones: Zones,
    /// Whose thirds `zones` (and the zone deltas) are: `baseline` where `config.zones` asked
    /// for them and this follow-up's registration passed, else `own`.
    #[serde(default)]
    pub zones_source: ZoneSource,
    pub subpleural: Metrics,
    pub core: Metrics,
    /// Sum of the six zones' extent scores (0–24).
    pub total_extent_score: u32,
    pub fvc_pct_pred: Option<f64>,
    pub dlco_pct_pred: Option<f64>,
    pub delta_previous: Option<Deltas>,
    pub delta_baseline: Option<Deltas>,
    pub status: Status,
    /// The verdict rule in words.
    pub rule: String,
    /// The verdict with the numbers behind it, in words.
    pub reason: String,
    pub basis: VerdictBasis,
    /// Against the baseline; absent for the baseline itself.
    pub volume_adjusted: Option<VolumeAdjusted>,
    /// This visit's whole-lung metrics on the soft reference kernel's footing, where its
    /// deltas used them (`basis.density_metrics = "harmonized"`) or a later visit's deltas
    /// were taken against them (it was that visit's baseline or previous visit); absent
    /// otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub harmonized_metrics: Option<Metrics>,
    /// This follow-up registered onto the baseline (absent for the baseline and when
    /// registration is off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration: Option<crate::change::RegistrationSummary>,
    /// Protocol and comparison warnings for this visit.
    pub warnings: Vec<Warning>,
    /// The visit's own analysis warnings (from `visit.json`).
    pub analysis_warnings: Vec<Warning>,
    pub software_version: String,
}

/// The whole follow-up, as written to `track.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackResult {
    pub schema_version: String,
    /// ildtrack version that produced the track.
    pub version: String,
    /// Treatment day (`YYYY-MM-DD`) that `day` counts from.
    pub day0: Option<String>,
    pub config: TrackConfig,
    pub rule: String,
    /// Density thresholds of the baseline analysis.
    pub thresholds: Thresholds,
    /// In date order.
    pub visits: Vec<TrackedVisit>,
    /// Warnings about the series of visits as a whole.
    pub warnings: Vec<Warning>,
    /// How to read the comparison (zone alignment, volume adjustment).
    pub notes: Vec<String>,
}

impl TrackResult {
    /// Pretty JSON for `track.json`.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string_pretty(self)
    }

    /// A few lines for stdout: one per visit with its verdict, then the latest verdict's reason.
    pub fn summary_text(&self) -> String {
        let mut s = String::new();
        for v in &self.visits {
            let dp = v
                .basis
                .delta_previous
                .map(|d| format!(", {d:+.1} vs previous"))
                .unwrap_or_default();
            s.push_str(&format!(
                "{:<11} {:>6} {:<24} {:<12} {} {}{}{}\n",
                v.study_date.as_deref().unwrap_or("?"),
                v.day
                    .map(|d| if d > 0 {
                        format!("+{d}")
                    } else {
                        d.to_string()
                    })
                    .unwrap_or_else(|| "?".into()),
                v.label.as_deref().unwrap_or(""),
                v.status.as_str(),
                self.config.metric,
                v.basis
                    .value
                    .map(|x| format!("{x:.1}"))
                    .unwrap_or_else(|| "n/a".into()),
                dp,
                if v.warnings.is_empty() {
                    String::new()
                } else {
                    format!(" ({} warning(s))", v.warnings.len())
                }
            ));
        }
        if let Some(l) = self.visits.last() {
            s.push_str(&format!("latest: {}\nrule: {}", l.reason, self.rule));
        }
        s
    }

    /// The visit a tracked visit was compared with (previous in date order).
    pub fn previous_of(&self, index: usize) -> Option<&TrackedVisit> {
        index.checked_sub(1).and_then(|i| self.visits.get(i))
    }
}

/// Value of a numeric field of `Metrics` by name (`None` for unknown names and null statistics).
pub fn metric_value(m: &Metrics, name: &str) -> Option<f64> {
    metrics_map(m).get(name).copied()
}

/// Every numeric field of `Metrics` by name (null statistics omitted).
pub fn metrics_map(m: &Metrics) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    if let Ok(serde_json::Value::Object(obj)) = serde_json::to_value(m) {
        for (k, v) in obj {
            if let Some(x) = v.as_f64() {
                out.insert(k, x);
            }
        }
    }
    out
}

/// A limit or change in points as the rule and the verdicts print it (whole numbers bare).
pub fn fmt_num(x: f64) -> String {
    if (x - x.round()).abs() < 1e-9 {
        format!("{}", x.round() as i64)
    } else {
        format!("{x:.1}")
    }
}
