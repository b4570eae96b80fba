//! Follow-up tracking: one patient's analysed visits in, one verdict per visit and the story
//! over time out (`track.json`, `track.csv`; schema in `docs/track-json.md`).
//!
//! [`track`] takes [`TrackVisit`]s (a `visit.json` [`VisitResult`] plus the manifest's label,
//! date override and lung-function values), and
//! - sorts them by study date, ties broken by series time (visits without a date go last, with a
//!   warning);
//! - gives each a `day` counted from `day0` (the treatment day; default: the first visit's date);
//! - computes deltas against the previous visit and against the baseline (the first visit) for
//!   every numeric metric of the whole lung, each side, each zone, subpleural and core;
//! - judges a verdict (`baseline`, `improved`, `stable`, `progressed`) with the configurable
//!   rule of DOMAIN.md ([`TrackConfig`]; default: `affected_pct` rises ≥ 5 points vs baseline,
//!   or ≥ 3 points vs the previous visit with the same trend), and prints the rule and the numbers
//!   behind it in [`TrackedVisit::reason`];
//! - checks the protocol between visits (kernel, slice thickness, kVp, scanner, contrast, lung
//!   volume change > 10 % with volume-adjusted figures, age < 18) and carries the findings as
//!   [`Warning`]s; a verdict built on mismatched protocols says so.
//!
//! Zones are each lung's own craniocaudal thirds in each visit (no registration); the result
//! carries that note so a reader knows what "right lower zone" means across visits.
//!
//! ```
//! use ildtrack_track::{track, TrackConfig, TrackVisit};
//! # fn demo(results: Vec<ildtrack_model::visit::VisitResult>) -> Result<(), ildtrack_track::TrackError> {
//! let visits = results.into_iter().map(TrackVisit::new).collect();
//! let tracked = track(visits, Some("2024-03-01"), &TrackConfig::default())?;
//! let json = tracked.to_json()?;
//! let csv = tracked.to_csv();
//! # let _ = (json, csv); Ok(()) }
//! ```
//!
//! Architecture Invariant: this crate does no I/O; it turns values into values.

pub mod date;
pub mod synthetic;

mod checks;
pub use checks::kernel_names_differ;
mod round;

// The result types live in `ildtrack-model` (they are the `track.json` schema); named here too
// so callers can keep saying `ildtrack_track::TrackResult`.
pub use ildtrack_model::change::{ClassFooting, RegistrationSummary};
pub use ildtrack_model::track::{
    Comparison, Deltas, DensityMetrics, MetricDelta, ProtocolTolerances, Sides, Status,
    TRACK_SCHEMA_VERSION, TrackConfig, TrackResult, TrackedVisit, VerdictBasis, VolumeAdjusted,
    ZoneSource, metric_value, metrics_map,
};

use ildtrack_model::track::fmt_num;
use ildtrack_model::visit::{Lungs, Metrics, VisitResult};
use ildtrack_volume::Warning;
use round::round6;

/// Errors of the tracking step.
#[derive(Debug, thiserror::Error)]
pub enum TrackError {
    #[error("no visits to track")]
    NoVisits,
    #[error("invalid date {value:?} (expected YYYY-MM-DD) in {field}")]
    BadDate { value: String, field: String },
    #[error("unknown verdict metric {0:?}: not a numeric field of the metrics object")]
    UnknownMetric(String),
    #[error("invalid tracking setting: {0}")]
    InvalidConfig(String),
    #[error("serialising track result failed: {0}")]
    Serialise(#[from] serde_json::Error),
}

/// Check that the verdict metric exists and the limits are positive and finite.
pub fn validate_config(cfg: &TrackConfig) -> Result<(), TrackError> {
    if metric_value(&Metrics::default(), &cfg.metric).is_none()
        && !OPTIONAL_METRICS.contains(&cfg.metric.as_str())
    {
        return Err(TrackError::UnknownMetric(cfg.metric.clone()));
    }
    for (name, v) in [
        ("baseline_points", cfg.baseline_points),
        ("previous_points", cfg.previous_points),
        (
            "tolerances.lung_volume_change_pct",
            cfg.tolerances.lung_volume_change_pct,
        ),
    ] {
        if !(v.is_finite() && v > 0.0) {
            return Err(TrackError::InvalidConfig(format!(
                "{name} must be a positive number, got {v}"
            )));
        }
    }
    let r = cfg.tolerances.noise_ratio;
    if !(r.is_finite() && r >= 1.0) {
        return Err(TrackError::InvalidConfig(format!(
            "tolerances.noise_ratio must be >= 1, got {r}"
        )));
    }
    Ok(())
}

/// Metrics fields that are `null` for an empty region; valid verdict metrics.
const OPTIONAL_METRICS: &[&str] = &[
    "mean_hu",
    "sd_hu",
    "skewness",
    "kurtosis_excess",
    "p10_hu",
    "p15_hu",
    "p50_hu",
    "p85_hu",
    "p90_hu",
];

/// One visit handed to [`track`]: its analysis and what the manifest adds.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackVisit {
    pub result: VisitResult,
    /// Free text, e.g. `pre-infusion`, `+3 months`.
    pub label: Option<String>,
    /// Study date override (`YYYY-MM-DD`); otherwise `result.series.study_date`.
    pub study_date: Option<String>,
    /// FVC, % predicted.
    pub fvc_pct_pred: Option<f64>,
    /// DLCO, % predicted.
    pub dlco_pct_pred: Option<f64>,
    /// Where this visit's outputs live, relative to the track output folder (e.g. `visits/2024-01-30`).
    pub dir: Option<String>,
    /// This visit registered onto the baseline (follow-ups only).
    pub registered: Option<RegistrationSummary>,
    /// This follow-up's zone metrics on the baseline's zones (from its registration).
    pub zones_on_baseline: Option<ildtrack_model::visit::Zones>,
}

impl TrackVisit {
    pub fn new(result: VisitResult) -> Self {
        TrackVisit {
            result,
            label: None,
            study_date: None,
            fvc_pct_pred: None,
            dlco_pct_pred: None,
            dir: None,
            registered: None,
            zones_on_baseline: None,
        }
    }
}

/// Note attached to every result: what zones mean across visits.
pub const ZONE_ALIGNMENT_NOTE: &str = "Zones are the upper, middle and lower thirds of each lung's own craniocaudal \
     extent, computed separately in every visit; visits are aligned by each lung's extent, not by image registration, \
     so a zone follows the lung if the patient breathes in less deeply or is positioned differently.";

/// Note attached to every result: how to read volume-adjusted figures.
pub const VOLUME_ADJUSTMENT_NOTE: &str = "Volume-adjusted figures assume the lung tissue mass (volume x (MLD + 1000) / 1000) \
     is unchanged by inspiration: a density change that disappears after adjustment is likely due to breathing depth.";

fn metric_delta(cur: &Metrics, reference: &Metrics) -> MetricDelta {
    let a = metrics_map(cur);
    let b = metrics_map(reference);
    a.iter()
        .filter_map(|(k, va)| b.get(k).map(|vb| (k.clone(), round6(va - vb))))
        .collect()
}

fn deltas(
    cur: &Lungs,
    reference: &Lungs,
    against_visit: usize,
    against_date: Option<String>,
    days_between: Option<i64>,
) -> Deltas {
    let zones = zone_deltas(&cur.zones, &reference.zones);
    Deltas {
        against_visit,
        against_date,
        days_between,
        metrics: metric_delta(&cur.whole, &reference.whole),
        sides: Sides {
            left: metric_delta(&cur.left, &reference.left),
            right: metric_delta(&cur.right, &reference.right),
        },
        zones,
        subpleural: metric_delta(&cur.subpleural, &reference.subpleural),
        core: metric_delta(&cur.core, &reference.core),
    }
}

/// The metrics of `x` a comparison with `density` uses.
fn lungs_for(x: &VisitResult, density: DensityMetrics) -> &Lungs {
    if density == DensityMetrics::Harmonized {
        x.reference_lungs().unwrap_or(&x.lungs)
    } else {
        &x.lungs
    }
}

/// The zones a visit's figures use and whose they are (see [`ZoneSource`]).
fn zones_for<'a>(
    cfg: &TrackConfig,
    v: &'a TrackVisit,
) -> (&'a ildtrack_model::visit::Zones, ZoneSource) {
    match (&v.zones_on_baseline, cfg.zones) {
        (Some(z), ZoneSource::Baseline) => (z, ZoneSource::Baseline),
        _ => (&v.result.lungs.zones, ZoneSource::Own),
    }
}

fn zone_deltas(
    cur: &ildtrack_model::visit::Zones,
    reference: &ildtrack_model::visit::Zones,
) -> std::collections::BTreeMap<String, MetricDelta> {
    cur.iter()
        .iter()
        .zip(reference.iter().iter())
        .map(|((name, a), (_, b))| ((*name).to_string(), metric_delta(a, b)))
        .collect()
}

/// Metrics of a delta that do not depend on density: what stays comparable when the kernels
/// differ and a visit could not be harmonized.
const VOLUME_METRICS: [&str; 2] = ["volume_ml", "voxel_count"];

/// `d` with only the [`VOLUME_METRICS`] left.
fn volume_only(mut d: Deltas) -> Deltas {
    let keep = |m: &mut MetricDelta| m.retain(|k, _| VOLUME_METRICS.contains(&k.as_str()));
    keep(&mut d.metrics);
    keep(&mut d.sides.left);
    keep(&mut d.sides.right);
    d.zones.values_mut().for_each(keep);
    keep(&mut d.subpleural);
    keep(&mut d.core);
    d
}

const EPS: f64 = 1e-9;

/// Judge one visit against baseline and previous values of the verdict metric.
fn judge(
    cfg: &TrackConfig,
    value: Option<f64>,
    base: Option<f64>,
    prev: Option<f64>,
) -> (Status, String) {
    let (Some(v), Some(b), Some(p)) = (value, base, prev) else {
        return (Status::Indeterminate, "none".into());
    };
    // Signed so that positive = worse.
    let sign = if cfg.higher_is_worse { 1.0 } else { -1.0 };
    let db = sign * (v - b);
    let dp = sign * (v - p);
    if db >= cfg.baseline_points - EPS {
        (Status::Progressed, "baseline".into())
    } else if db <= -cfg.baseline_points + EPS {
        (Status::Improved, "baseline".into())
    } else if dp >= cfg.previous_points - EPS && db > EPS {
        (Status::Progressed, "previous".into())
    } else if dp <= -cfg.previous_points + EPS && db < -EPS {
        (Status::Improved, "previous".into())
    } else {
        (Status::Stable, "none".into())
    }
}

/// `(value, baseline value, previous value)` of `metric` in the registered comparison, when
/// this visit's registration passed and so did the previous visit's (`prev`, none when the
/// previous visit is the baseline).
fn registered_values(
    metric: &str,
    this: &TrackVisit,
    prev: Option<&TrackVisit>,
) -> Option<(f64, f64, f64)> {
    fn accepted(v: &TrackVisit) -> Option<&RegistrationSummary> {
        v.registered.as_ref().filter(|r| r.quality.accepted)
    }
    let r = accepted(this)?;
    let v = *r.followup_metrics.map().get(metric)?;
    let b = *r.baseline_metrics.map().get(metric)?;
    let p = match prev {
        None => b,
        Some(pv) => *accepted(pv)?.followup_metrics.map().get(metric)?,
    };
    Some((v, b, p))
}

fn signed(x: f64) -> String {
    format!("{}{:.1}", if x >= 0.0 { "+" } else { "" }, x)
}

/// Track a patient's visits: order, deltas, verdicts, protocol checks.
///
/// `day0` (`YYYY-MM-DD`) is the treatment day; without it days count from the first visit.
pub fn track(
    visits: Vec<TrackVisit>,
    day0: Option<&str>,
    cfg: &TrackConfig,
) -> Result<TrackResult, TrackError> {
    validate_config(cfg)?;
    if visits.is_empty() {
        return Err(TrackError::NoVisits);
    }
    let mut track_warnings = Vec::new();

    // Resolve dates and order.
    struct Item {
        input_index: usize,
        date: Option<String>,
        days: Option<i64>,
        time: Option<String>,
        v: TrackVisit,
    }
    let mut items = Vec::with_capacity(visits.len());
    for (i, v) in visits.into_iter().enumerate() {
        let (raw, field) = match &v.study_date {
            Some(d) => (Some(d.clone()), format!("date override of visit {}", i + 1)),
            None => (
                v.result.series.study_date.clone(),
                format!("study_date of visit {}", i + 1),
            ),
        };
        let (date, days) = match raw {
            Some(d) => {
                let norm = date::normalise_iso(&d).ok_or_else(|| TrackError::BadDate {
                    value: d.clone(),
                    field,
                })?;
                let days = date::days_from_iso(&norm);
                (Some(norm), days)
            }
            None => {
                track_warnings.push(Warning::new(
                    "missing-study-date",
                    format!(
                        "visit {} has no study date; it is placed after the dated visits (give a date in the manifest)",
                        i + 1
                    ),
                ));
                (None, None)
            }
        };
        let time = v.result.series.series_time.clone();
        items.push(Item {
            input_index: i,
            date,
            days,
            time,
            v,
        });
    }
    items.sort_by(|a, b| {
        let ka = (a.days.is_none(), a.days, a.time.clone(), a.input_index);
        let kb = (b.days.is_none(), b.days, b.time.clone(), b.input_index);
        ka.cmp(&kb)
    });
    for w in items.windows(2) {
        if w[0].days.is_some() && w[0].days == w[1].days && w[0].time == w[1].time {
            track_warnings.push(Warning::new(
                "same-date-visits",
                format!(
                    "two visits share the date {} and series time; their order follows the input order",
                    w[0].date.as_deref().unwrap_or("?")
                ),
            ));
        }
    }

    let day0_days = match day0 {
        Some(d) => Some(date::days_from_iso(d).ok_or_else(|| TrackError::BadDate {
            value: d.to_string(),
            field: "day0".into(),
        })?),
        None => items.first().and_then(|it| it.days),
    };
    let day0_norm = match day0 {
        Some(d) => date::normalise_iso(d),
        None => items.first().and_then(|it| it.date.clone()),
    };

    // Consistency of software and thresholds across visits.
    let base_result = &items[0].v.result;
    for it in items.iter().skip(1) {
        if it.v.result.version != base_result.version {
            let w = Warning::new(
                "software-version-mismatch",
                format!(
                    "visits were analysed with different ildtrack versions ({} and {}); re-run track to analyse all with one version",
                    base_result.version, it.v.result.version
                ),
            );
            if !track_warnings.contains(&w) {
                track_warnings.push(w);
            }
        }
        if it.v.result.thresholds != base_result.thresholds {
            let w = Warning::new(
                "threshold-mismatch",
                "visits were analysed with different density thresholds; their metrics are not comparable",
            );
            if !track_warnings.contains(&w) {
                track_warnings.push(w);
            }
        }
    }

    let rule = cfg.rule_text();
    let mut out: Vec<TrackedVisit> = Vec::with_capacity(items.len());
    for (idx, it) in items.iter().enumerate() {
        let r = &it.v.result;
        let day = match (it.days, day0_days) {
            (Some(d), Some(d0)) => Some(d - d0),
            _ => None,
        };
        let value = metric_value(&r.lungs.whole, &cfg.metric);
        let mut warnings = Vec::new();
        checks::age_check(r, cfg, &mut warnings);

        let mut density = DensityMetrics::Raw;
        let mut comparison = Comparison::Unregistered;
        let mut value_used = value;
        let (
            delta_previous,
            delta_baseline,
            status,
            triggered_by,
            basis_vals,
            volume_adjusted,
            mismatch,
            doubt,
            reason,
        );
        let doubted = |x: &VisitResult| x.warnings.iter().any(|w| w.code == "segmentation-doubt");
        if idx == 0 {
            doubt = doubted(r);
            delta_previous = None;
            delta_baseline = None;
            status = Status::Baseline;
            triggered_by = "none".to_string();
            basis_vals = (None, None, None, None);
            volume_adjusted = None;
            mismatch = false;
            reason = format!(
                "baseline: first visit; whole-lung {} {}{}",
                cfg.metric,
                value
                    .map(|v| format!("{v:.1}"))
                    .unwrap_or_else(|| "n/a".into()),
                if doubt {
                    ". Caution: the lung segmentation of this visit is in doubt (segmentation-doubt: see its warnings and QC images)."
                } else {
                    ""
                }
            );
        } else {
            let base = &items[0];
            let prev = &items[idx - 1];
            // Visits reconstructed with different kernels: density is compared on the soft
            // reference kernel's footing (docs/HARMONIZATION.md), or not at all where a visit
            // could not be put on it. A difference in measured noise alone (dose, patient size,
            // same kernel) is warned about (`noise-mismatch`) but compared on each visit's own
            // figures: on standard-kernel slices that differ only in dose, the harmonized GGO
            // of the noisier one rose by 3-23 points while its own figure did not move.
            let three = [r, &base.v.result, &prev.v.result];
            let cross_kernel = [&base.v.result, &prev.v.result]
                .iter()
                .any(|x| checks::kernel_names_differ(r, x));
            let not_comparable: Option<String> = if cross_kernel {
                three.iter().find_map(|x| x.reference_lungs().err())
            } else {
                None
            };
            density = match (cross_kernel, &not_comparable) {
                (false, _) => DensityMetrics::Raw,
                (true, None) => DensityMetrics::Harmonized,
                (true, Some(_)) => DensityMetrics::NotComparable,
            };
            let lungs_of = |x| lungs_for(x, density);
            let between = |a: Option<i64>, b: Option<i64>| a.zip(b).map(|(a, b)| a - b);
            let mut dp = deltas(
                lungs_of(r),
                lungs_of(&prev.v.result),
                idx - 1,
                prev.date.clone(),
                between(it.days, prev.days),
            );
            let mut db = deltas(
                lungs_of(r),
                lungs_of(&base.v.result),
                0,
                base.date.clone(),
                between(it.days, base.days),
            );
            // Zones on the baseline's thirds where asked for and registered (raw figures only:
            // across kernels each visit's harmonized zones stay).
            if density == DensityMetrics::Raw {
                let zb = zones_for(cfg, &it.v);
                dp.zones = zone_deltas(zb.0, zones_for(cfg, &prev.v).0);
                db.zones = zone_deltas(zb.0, &base.v.result.lungs.zones);
            }
            if density == DensityMetrics::NotComparable {
                dp = volume_only(dp);
                db = volume_only(db);
            }
            let comparable = density != DensityMetrics::NotComparable;
            let own = metric_value(&lungs_of(r).whole, &cfg.metric).filter(|_| comparable);
            let own_b =
                metric_value(&lungs_of(&base.v.result).whole, &cfg.metric).filter(|_| comparable);
            let own_p =
                metric_value(&lungs_of(&prev.v.result).whole, &cfg.metric).filter(|_| comparable);
            // The registered comparison (same voxels, breath-corrected density) where this
            // visit's and the previous visit's registrations passed; across kernels only where
            // their change maps classified both visits on the reference kernel's footing (each
            // scan's own classes would read the kernel as disease): the harmonized figures
            // decide otherwise.
            let on_reference = |v: &TrackVisit| {
                v.registered
                    .as_ref()
                    .is_some_and(|r| r.classes_footing == ClassFooting::KernelHarmonized)
            };
            let reg_comparable =
                !cross_kernel || (on_reference(&it.v) && (idx == 1 || on_reference(&prev.v)));
            let reg = if cfg.comparison == Comparison::Registered && reg_comparable {
                registered_values(&cfg.metric, &it.v, (idx > 1).then_some(&prev.v))
            } else {
                None
            };
            comparison = if reg.is_some() {
                Comparison::Registered
            } else {
                Comparison::Unregistered
            };
            let (value, bval, pval) = match reg {
                Some((v, b, p)) => (Some(v), Some(b), Some(p)),
                None => (own, own_b, own_p),
            };
            value_used = value;
            let empty = three
                .iter()
                .any(|x| x.lungs.whole.volume_ml.is_nan() || x.lungs.whole.volume_ml <= 0.0);
            let (st, trig) = if empty {
                (Status::Indeterminate, "none".to_string())
            } else {
                judge(cfg, value, bval, pval)
            };
            let n_before = warnings.len();
            let mut refs: Vec<(&str, &VisitResult)> = vec![("the baseline", &base.v.result)];
            if idx > 1 {
                refs.push(("the previous visit", &prev.v.result));
            }
            checks::protocol_checks(r, &refs, cfg, &mut warnings);
            // Registered, the follow-up's density was corrected for its local volume change:
            // a different breath is said, but does not caution this verdict.
            let registered = comparison == Comparison::Registered;
            let cautions = |w: &Warning| !(registered && w.code == "lung-volume-change");
            if registered {
                for w in warnings[n_before..]
                    .iter_mut()
                    .filter(|w| w.code == "lung-volume-change")
                {
                    w.message.push_str(
                        " (the registered comparison corrected the follow-up's density for the local volume change the registration measured, so this does not caution the verdict)",
                    );
                }
            }
            mismatch = warnings[n_before..].iter().any(cautions);
            let n_protocol = warnings.len();
            // Zone alignment concerns the zone figures, not the whole-lung verdict.
            checks::zone_alignment(r, &refs, &mut warnings);
            let va = checks::volume_adjusted(r, &base.v.result);
            let d_b = value.zip(bval).map(|(a, b)| a - b);
            let d_p = value.zip(pval).map(|(a, b)| a - b);
            let mut text = match (value, bval, pval, d_b, d_p) {
                _ if empty => format!(
                    "{st}: no lung was found in this visit or in a visit it is compared with"
                ),
                (Some(v), Some(b), Some(p), Some(xb), Some(xp)) => format!(
                    "{st}: whole-lung {m} {v:.1} (baseline {b:.1}, change {xb} points; previous visit {p:.1}, change {xp} points)",
                    m = cfg.metric,
                    xb = signed(xb),
                    xp = signed(xp),
                ),
                _ if !comparable => format!(
                    "{st}: density metrics are not comparable across these reconstruction kernels ({}); lung volume {:.0} mL (baseline {:.0} mL) still compares",
                    not_comparable.as_deref().unwrap_or("?"),
                    r.lungs.whole.volume_ml,
                    base.v.result.lungs.whole.volume_ml,
                ),
                _ => format!(
                    "{st}: whole-lung {} is missing in this visit or its reference visits",
                    cfg.metric
                ),
            };
            match trig.as_str() {
                "baseline" => text.push_str(&format!(
                    "; the change vs baseline reaches {} points",
                    fmt_num(cfg.baseline_points)
                )),
                "previous" => text.push_str(&format!(
                    "; the change vs the previous visit reaches {} points in the same direction as vs baseline",
                    fmt_num(cfg.previous_points)
                )),
                _ if st == Status::Stable => text.push_str(&format!(
                    "; neither {} points vs baseline nor {} points vs the previous visit with the same trend",
                    fmt_num(cfg.baseline_points),
                    fmt_num(cfg.previous_points)
                )),
                _ => {}
            }
            text.push('.');
            // The names are distinct: this visit, the baseline, the previous visit.
            let which: Vec<&str> = [("this visit", r)]
                .into_iter()
                .chain(refs.iter().copied())
                .filter(|&(_, x)| doubted(x))
                .map(|(name, _)| name)
                .collect();
            doubt = !which.is_empty();
            if doubt {
                text.push_str(&format!(
                    " Caution: the lung segmentation of {} is in doubt (segmentation-doubt: see its warnings and QC images); part of the change may be a segmentation error.",
                    which.join(" and ")
                ));
            }
            if mismatch {
                let mut what: Vec<&str> = Vec::new();
                for w in warnings[n_before..n_protocol]
                    .iter()
                    .filter(|w| cautions(w))
                {
                    if !what.contains(&w.code.as_str()) {
                        what.push(w.code.as_str());
                    }
                }
                text.push_str(&format!(
                    " Caution: the scans differ in protocol ({}); part of the change may be technical, not disease.",
                    what.join(", ")
                ));
            }
            match density {
                DensityMetrics::Harmonized => text.push_str(&format!(
                    " The visits differ in reconstruction kernel: {}; each visit's own figures stay in its visit.json.",
                    if comparison == Comparison::Registered {
                        "density deltas use the kernel-harmonized metrics and the registered comparison classifies both visits on the soft reference kernel's footing (docs/HARMONIZATION.md)"
                    } else {
                        "density deltas and this verdict use the kernel-harmonized metrics (each visit on the soft reference kernel's footing, docs/HARMONIZATION.md)"
                    }
                )),
                DensityMetrics::NotComparable => text.push_str(&format!(
                    " The visits differ in reconstruction kernel and density could not be harmonized ({}): density deltas are left out; lung volume still compares.",
                    not_comparable.as_deref().unwrap_or("?")
                )),
                DensityMetrics::Raw => {}
            }
            if comparison == Comparison::Registered {
                text.push_str(&format!(
                    " Registered comparison: both visits measured on the baseline's lung voxels, the follow-up's density corrected for the local volume change the registration measured (breath); each visit's own{} whole-lung {} is {} (baseline {}).",
                    if density == DensityMetrics::Harmonized { " harmonized" } else { "" },
                    cfg.metric,
                    own.map(|v| format!("{v:.1}")).unwrap_or_else(|| "n/a".into()),
                    own_b.map(|v| format!("{v:.1}")).unwrap_or_else(|| "n/a".into()),
                ));
            }
            checks::registration_warnings(it.v.registered.as_ref(), cfg, &mut warnings);
            delta_previous = Some(dp);
            delta_baseline = Some(db);
            status = st;
            triggered_by = trig;
            basis_vals = (bval, pval, d_b.map(round6), d_p.map(round6));
            volume_adjusted = va;
            reason = text;
        }
        let total_extent_score = zones_for(cfg, &it.v).0.total_extent_score();
        out.push(TrackedVisit {
            index: idx,
            input_index: it.input_index,
            label: it.v.label.clone(),
            study_date: it.date.clone(),
            series_time: it.time.clone(),
            day,
            dir: it.v.dir.clone(),
            series: r.series.clone(),
            metrics: r.lungs.whole.clone(),
            sides: Sides {
                left: r.lungs.left.clone(),
                right: r.lungs.right.clone(),
            },
            zones: zones_for(cfg, &it.v).0.clone(),
            zones_source: zones_for(cfg, &it.v).1,
            subpleural: r.lungs.subpleural.clone(),
            core: r.lungs.core.clone(),
            total_extent_score,
            fvc_pct_pred: it.v.fvc_pct_pred,
            dlco_pct_pred: it.v.dlco_pct_pred,
            delta_previous,
            delta_baseline,
            status,
            rule: rule.clone(),
            reason,
            basis: VerdictBasis {
                metric: cfg.metric.clone(),
                value: value_used,
                baseline_value: basis_vals.0,
                previous_value: basis_vals.1,
                delta_baseline: basis_vals.2,
                delta_previous: basis_vals.3,
                triggered_by,
                protocol_mismatch: mismatch,
                segmentation_doubt: doubt,
                density_metrics: density,
                comparison,
            },
            volume_adjusted,
            harmonized_metrics: (density == DensityMetrics::Harmonized)
                .then(|| lungs_for(r, density).whole.clone()),
            registration: it.v.registered.clone(),
            warnings,
            analysis_warnings: r.warnings.clone(),
            software_version: r.version.clone(),
        });
    }
    // A visit another was compared with on harmonized metrics (the baseline, a previous
    // visit) shows its harmonized figures too, so the deltas beside can be read against them.
    for i in 1..out.len() {
        if out[i].basis.density_metrics == DensityMetrics::Harmonized {
            for j in [0, i - 1] {
                if out[j].harmonized_metrics.is_none() {
                    out[j].harmonized_metrics = items[j]
                        .v
                        .result
                        .reference_lungs()
                        .ok()
                        .map(|l| l.whole.clone());
                }
            }
        }
    }
    for v in &out {
        tracing::debug!(index = v.index, status = %v.status, "visit judged");
    }

    Ok(TrackResult {
        schema_version: TRACK_SCHEMA_VERSION.into(),
        version: env!("CARGO_PKG_VERSION").into(),
        day0: day0_norm,
        config: cfg.clone(),
        rule,
        thresholds: items[0].v.result.thresholds.clone(),
        visits: out,
        warnings: track_warnings,
        notes: vec![ZONE_ALIGNMENT_NOTE.into(), VOLUME_ADJUSTMENT_NOTE.into()],
    })
}

#[cfg(test)]
mod tests;
