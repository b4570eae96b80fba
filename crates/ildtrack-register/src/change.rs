//! Change maps: every baseline lung voxel's class at the baseline and at the registered
//! follow-up, the follow-up's density corrected for the local volume change first (mass
//! preservation), and what moved where (`change.json`, `change.nii.gz`).
//!
//! Classes come from the analysis itself at both visits: the baseline's own classes, and the
//! classes the caller's analysis gave the follow-up after it was warped onto the baseline and
//! its density corrected for breath (so the speckle, vessel and rim rules that decide each
//! visit's `visit.json` decide the change too, and the correction moves voxels across class
//! edges through the same rules). The uncorrected figures use the follow-up's own classes
//! carried onto the baseline (nearest).

use ildtrack_model::change::*;
use ildtrack_model::class;
use ildtrack_volume::ZONE_NAMES;
use ndarray::{Array3, Zip};
use rayon::prelude::*;
use std::collections::BTreeMap;

/// A zone gains (loses) disease when GGO + consolidation rises (falls) by at least this many
/// points of its baseline volume and [`MIGRATION_MIN_ML`]; the verdict rule's default
/// baseline step.
pub const MIGRATION_POINTS: f64 = 5.0;
pub const MIGRATION_MIN_ML: f64 = 5.0;

/// Everything on the baseline grid.
pub struct ChangeInputs<'a> {
    /// 1 right, 2 left.
    pub baseline_lungs: &'a Array3<u8>,
    /// The baseline analysis's classes.
    pub baseline_classes: &'a Array3<u8>,
    /// Baseline HU (mean density).
    pub baseline_hu: &'a Array3<i16>,
    /// The follow-up's HU warped onto the baseline and corrected for breath (mean density).
    pub followup_hu: &'a Array3<i16>,
    /// The same without the breath correction.
    pub followup_hu_uncorrected: &'a Array3<i16>,
    /// Classes of the analysis of the warped, corrected follow-up (0 = not in its lungs).
    pub followup_classes: &'a Array3<u8>,
    /// The follow-up's own classes carried onto the baseline (nearest; 0 = no lung).
    pub followup_classes_uncorrected: &'a Array3<u8>,
    /// Jacobian of baseline → follow-up.
    pub jacobian: &'a Array3<f32>,
    pub voxel_ml: f64,
    /// Whether a higher slice index is further towards the head.
    pub superior_is_high_index: bool,
}

/// Aerated tissue (air and tissue mixed: normal lung, ground glass) is at most this dense: its
/// density follows the local volume (mass preserved).
pub const AERATED_MAX_HU: f32 = -200.0;
/// Airless tissue (consolidation, vessels, muscle, blood, fat) is at least this dense: it does
/// not compress, its density stays. Between the two the correction fades linearly.
pub const AIRLESS_MIN_HU: f32 = -100.0;

/// HU' = −1000 + (HU + 1000) · J: the follow-up's density at the baseline's local volume, for
/// aerated tissue (≤ [`AERATED_MAX_HU`]); airless tissue (≥ [`AIRLESS_MIN_HU`]) keeps its
/// density — a breath changes how much air a voxel holds, not how dense blood or muscle is
/// (and the field's J reaches past the lungs, where it means nothing). Voxels without data
/// (−1024 from the warp) stay as they are.
pub fn correct_for_breath(hu: &Array3<i16>, jacobian: &Array3<f32>) -> Array3<i16> {
    Zip::from(hu).and(jacobian).par_map_collect(|&h, &j| {
        if h <= -1024 || !j.is_finite() || j <= 0.0 {
            return h;
        }
        let hf = h as f32;
        let w = ((AIRLESS_MIN_HU - hf) / (AIRLESS_MIN_HU - AERATED_MAX_HU)).clamp(0.0, 1.0);
        if w == 0.0 {
            return h;
        }
        let full = -1000.0 + (hf + 1000.0) * j;
        (hf + w * (full - hf))
            .round()
            .clamp(-1024.0, i16::MAX as f32) as i16
    })
}

/// A baseline lung voxel's class (a lung voxel its analysis left unclassed counts as normal).
fn lung_class(c: u8) -> u8 {
    if c == class::OUTSIDE {
        class::NORMAL
    } else {
        c.min(class::VESSEL_DENSE)
    }
}

/// The change code of a (baseline class, follow-up class) pair; `None` follow-up = no lung there.
pub fn change_code(b: u8, f: Option<u8>) -> u8 {
    use class::*;
    let Some(f) = f else {
        return CHANGE_NOT_COMPARABLE;
    };
    let clear = |c: u8| c == LAA || c == NORMAL;
    match (b, f) {
        _ if b == VESSEL_DENSE && f == VESSEL_DENSE => CHANGE_STABLE,
        _ if b == VESSEL_DENSE || f == VESSEL_DENSE => CHANGE_VESSEL,
        (GGO, GGO) => CHANGE_STABLE_GGO,
        (CONSOLIDATION, CONSOLIDATION) => CHANGE_STABLE_CONSOLIDATION,
        (GGO, CONSOLIDATION) => CHANGE_GGO_TO_CONSOLIDATION,
        (CONSOLIDATION, GGO) => CHANGE_CONSOLIDATION_TO_GGO,
        (b, GGO) if clear(b) => CHANGE_NEW_GGO,
        (GGO, f) if clear(f) => CHANGE_RESOLVED_GGO,
        (b, CONSOLIDATION) if clear(b) => CHANGE_NEW_CONSOLIDATION,
        (CONSOLIDATION, f) if clear(f) => CHANGE_RESOLVED_CONSOLIDATION,
        (NORMAL, LAA) => CHANGE_NEW_LAA,
        (LAA, NORMAL) => CHANGE_RESOLVED_LAA,
        _ => CHANGE_STABLE,
    }
}

/// Each side's (first, last) slice holding lung in `lungs` (1 right, 2 left).
pub fn side_extents(lungs: &Array3<u8>) -> [Option<(usize, usize)>; 2] {
    let mut out = [None, None];
    for (z, plane) in lungs.outer_iter().enumerate() {
        for (side, e) in out.iter_mut().enumerate() {
            if plane.iter().any(|&v| v == side as u8 + 1) {
                *e = Some(e.map_or((z, z), |(lo, _)| (lo, z)));
            }
        }
    }
    out
}

/// Zone index (`ZONE_NAMES` order) of slice position `z` in lung `side` (1 right, 2 left):
/// thirds of that side's craniocaudal extent, positions beyond it in the nearest third.
pub fn zone_index(
    side: u8,
    z: f64,
    extents: &[Option<(usize, usize)>; 2],
    superior_high: bool,
) -> Option<usize> {
    let s = (side as usize).checked_sub(1).filter(|&s| s < 2)?;
    let (lo, hi) = extents[s]?;
    let extent = (hi - lo + 1) as f64;
    // 0 = most superior third.
    let from_top = if superior_high {
        hi as f64 - z
    } else {
        z - lo as f64
    };
    let third = ((from_top + 0.5) * 3.0 / extent).floor().clamp(0.0, 2.0) as usize;
    Some(s * 3 + third)
}

/// Zone index of each slice for each side in the baseline (see [`zone_index`]).
fn zone_of_slice(lungs: &Array3<u8>, superior_high: bool) -> [Vec<Option<usize>>; 2] {
    let ext = side_extents(lungs);
    let nz = lungs.shape()[0];
    [1u8, 2].map(|side| {
        (0..nz)
            .map(|z| {
                let (lo, hi) = ext[side as usize - 1]?;
                (lo..=hi)
                    .contains(&z)
                    .then(|| zone_index(side, z as f64, &ext, superior_high))
                    .flatten()
            })
            .collect()
    })
}

#[derive(Default, Clone)]
struct Tally {
    /// transition counts, baseline class 1..=5 → follow-up class 1..=5 or 6 (outside).
    t: [[u64; 6]; 6],
    jac_sum: f64,
    n: u64,
    /// Uncorrected follow-up: counts of new GGO and of resolved GGO.
    new_ggo_uncorrected: u64,
    resolved_ggo_uncorrected: u64,
    hu_sum: [f64; 3],
    hu_n: [u64; 3],
    uncorrected: [u64; 6],
}

impl Tally {
    fn add(&mut self, o: &Tally) {
        for i in 0..6 {
            for j in 0..6 {
                self.t[i][j] += o.t[i][j];
            }
            self.uncorrected[i] += o.uncorrected[i];
        }
        self.jac_sum += o.jac_sum;
        self.n += o.n;
        self.new_ggo_uncorrected += o.new_ggo_uncorrected;
        self.resolved_ggo_uncorrected += o.resolved_ggo_uncorrected;
        for k in 0..3 {
            self.hu_sum[k] += o.hu_sum[k];
            self.hu_n[k] += o.hu_n[k];
        }
    }
}

/// The change codes on the baseline grid and `change.json` (names and quality from the caller).
pub fn compute(
    inp: &ChangeInputs<'_>,
    quality: RegistrationQuality,
    baseline_name: &str,
    followup_name: &str,
) -> (Array3<u8>, ChangeSummary) {
    let zones = zone_of_slice(inp.baseline_lungs, inp.superior_is_high_index);
    // One pass: each slice's change codes and its tallies per zone (6) plus a slot for voxels
    // without a zone (none in practice).
    let mut codes = Array3::<u8>::zeros(inp.baseline_lungs.dim());
    let per_slice: Vec<[Tally; 7]> = codes
        .axis_iter_mut(ndarray::Axis(0))
        .into_par_iter()
        .enumerate()
        .map(|(z, mut plane)| {
            let mut t: [Tally; 7] = Default::default();
            for ((y, x), code) in plane.indexed_iter_mut() {
                let side = inp.baseline_lungs[[z, y, x]];
                if side == 0 {
                    continue;
                }
                let b = lung_class(inp.baseline_classes[[z, y, x]]);
                let f = inp.followup_classes[[z, y, x]];
                *code = change_code(b, (f != class::OUTSIDE).then_some(f));
                if side > 2 {
                    continue;
                }
                let zi = zones[side as usize - 1][z].unwrap_or(6);
                let tz = &mut t[zi];
                let fu = inp.followup_classes_uncorrected[[z, y, x]];
                if fu != class::OUTSIDE {
                    tz.uncorrected[fu as usize - 1] += 1;
                    if fu == class::GGO && (b == class::NORMAL || b == class::LAA) {
                        tz.new_ggo_uncorrected += 1;
                    }
                    if b == class::GGO && (fu == class::NORMAL || fu == class::LAA) {
                        tz.resolved_ggo_uncorrected += 1;
                    }
                    if fu != class::VESSEL_DENSE {
                        tz.hu_sum[2] += inp.followup_hu_uncorrected[[z, y, x]] as f64;
                        tz.hu_n[2] += 1;
                    }
                }
                let col = if f == class::OUTSIDE {
                    5
                } else {
                    if f != class::VESSEL_DENSE {
                        tz.hu_sum[1] += inp.followup_hu[[z, y, x]] as f64;
                        tz.hu_n[1] += 1;
                    }
                    if b != class::VESSEL_DENSE {
                        tz.hu_sum[0] += inp.baseline_hu[[z, y, x]] as f64;
                        tz.hu_n[0] += 1;
                    }
                    f as usize - 1
                };
                tz.t[b as usize - 1][col] += 1;
                tz.jac_sum += inp.jacobian[[z, y, x]] as f64;
                tz.n += 1;
            }
            t
        })
        .collect();
    let mut zt: [Tally; 7] = Default::default();
    for s in &per_slice {
        for (a, b) in zt.iter_mut().zip(s) {
            a.add(b);
        }
    }
    let mut whole = Tally::default();
    zt.iter().for_each(|t| whole.add(t));
    let ml = inp.voxel_ml;
    let mean_j = whole.jac_sum / whole.n.max(1) as f64;
    let region = |t: &Tally| -> RegionChange {
        use class::*;
        let c = |b: u8, f: usize| t.t[b as usize - 1][f] as f64 * ml;
        let (g, cn) = (GGO as usize - 1, CONSOLIDATION as usize - 1);
        let clear_to = |f: usize| c(LAA, f) + c(NORMAL, f);
        let from_to_clear = |b: u8| c(b, LAA as usize - 1) + c(b, NORMAL as usize - 1);
        let affected_b: f64 = (0..5).map(|f| c(GGO, f) + c(CONSOLIDATION, f)).sum();
        let affected_f: f64 = (1..=5u8).map(|b| c(b, g) + c(b, cn)).sum();
        let volume_ml = t.n as f64 * ml;
        let net = affected_f - affected_b;
        RegionChange {
            volume_ml,
            new_ggo_ml: clear_to(g),
            resolved_ggo_ml: from_to_clear(GGO),
            ggo_to_consolidation_ml: c(GGO, cn),
            consolidation_to_ggo_ml: c(CONSOLIDATION, g),
            new_consolidation_ml: clear_to(cn),
            resolved_consolidation_ml: from_to_clear(CONSOLIDATION),
            net_affected_ml: net,
            net_affected_points: if volume_ml > 0.0 {
                100.0 * net / volume_ml
            } else {
                0.0
            },
            relative_volume_change: if t.n > 0 && mean_j > 0.0 {
                t.jac_sum / t.n as f64 / mean_j
            } else {
                1.0
            },
        }
    };
    // Class shares over the voxels compared at both visits.
    let shares = |counts: [u64; 5], hu: f64| -> RegisteredMetrics {
        let n = counts.iter().sum::<u64>().max(1) as f64;
        let p = |c: u8| 100.0 * counts[c as usize - 1] as f64 / n;
        RegisteredMetrics {
            laa950_pct: p(class::LAA),
            ggo_pct: p(class::GGO),
            consolidation_pct: p(class::CONSOLIDATION),
            affected_pct: p(class::GGO) + p(class::CONSOLIDATION),
            mean_hu: hu,
        }
    };
    let mut bc = [0u64; 5];
    let mut fc = [0u64; 5];
    for (i, row) in whole.t.iter().enumerate().take(5) {
        for (j, &v) in row.iter().enumerate().take(5) {
            bc[i] += v;
            fc[j] += v;
        }
    }
    let mut uc = [0u64; 5];
    uc.copy_from_slice(&whole.uncorrected[..5]);
    let mean = |k: usize| whole.hu_sum[k] / whole.hu_n[k].max(1) as f64;
    let zone_changes: BTreeMap<String, RegionChange> = ZONE_NAMES
        .iter()
        .enumerate()
        .map(|(i, n)| (n.to_string(), region(&zt[i])))
        .collect();
    let whole_change = region(&whole);
    let migration = migration_of(&whole_change, &zone_changes);
    let followup_lung_ml = whole.jac_sum * ml;
    let summary = ChangeSummary {
        schema_version: CHANGE_SCHEMA_VERSION.into(),
        baseline: baseline_name.into(),
        followup: followup_name.into(),
        quality,
        breath_corrected: true,
        classes_footing: Default::default(),
        baseline_lung_ml: whole.n as f64 * ml,
        followup_lung_ml,
        transition_ml: whole
            .t
            .iter()
            .take(5)
            .map(|r| r.iter().map(|&v| v as f64 * ml).collect())
            .collect(),
        baseline_metrics: shares(bc, mean(0)),
        followup_metrics: shares(fc, mean(1)),
        followup_uncorrected_metrics: shares(uc, mean(2)),
        whole: whole_change,
        zones: zone_changes,
        new_ggo_uncorrected_ml: whole.new_ggo_uncorrected as f64 * ml,
        resolved_ggo_uncorrected_ml: whole.resolved_ggo_uncorrected as f64 * ml,
        migration,
        codes: CHANGE_CODES
            .iter()
            .map(|(c, n)| (*c, n.to_string()))
            .collect(),
        notes: vec![
            "Both visits are classified on the baseline's lung voxels by the same HU edges after the same smoothing; \
             vessels are where each visit's own analysis found them. Shares therefore differ slightly from visit.json."
                .into(),
            "The follow-up's density is corrected for the local volume change the registration measured \
             (HU' = -1000 + (HU + 1000) * J) before it is classified: a shallower breath is not read as new ground glass."
                .into(),
            "Zones are the baseline's thirds of each lung's craniocaudal extent, carried to the follow-up by the registration."
                .into(),
        ],
    };
    (codes, summary)
}

/// A zone gaining disease while another clears and the whole lung stays within the step.
fn migration_of(whole: &RegionChange, zones: &BTreeMap<String, RegionChange>) -> Option<String> {
    if whole.net_affected_points.abs() >= MIGRATION_POINTS {
        return None;
    }
    let moved = |sign: f64| -> Vec<String> {
        ZONE_NAMES
            .iter()
            .filter_map(|n| {
                let z = zones.get(*n)?;
                (sign * z.net_affected_points >= MIGRATION_POINTS
                    && sign * z.net_affected_ml >= MIGRATION_MIN_ML)
                    .then(|| format!("{n} {:+.0} mL", z.net_affected_ml))
            })
            .collect()
    };
    let (gained, cleared) = (moved(1.0), moved(-1.0));
    (!gained.is_empty() && !cleared.is_empty()).then(|| {
        format!(
            "disease moved: more in {} while {} cleared; the whole lung changed {:+.1} points",
            gained.join(", "),
            cleared.join(", "),
            whole.net_affected_points
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ildtrack_model::class::*;

    #[test]
    fn change_codes_cover_the_documented_transitions() {
        assert_eq!(change_code(NORMAL, Some(GGO)), CHANGE_NEW_GGO);
        assert_eq!(change_code(LAA, Some(GGO)), CHANGE_NEW_GGO);
        assert_eq!(change_code(GGO, Some(NORMAL)), CHANGE_RESOLVED_GGO);
        assert_eq!(
            change_code(GGO, Some(CONSOLIDATION)),
            CHANGE_GGO_TO_CONSOLIDATION
        );
        assert_eq!(
            change_code(CONSOLIDATION, Some(GGO)),
            CHANGE_CONSOLIDATION_TO_GGO
        );
        assert_eq!(
            change_code(NORMAL, Some(CONSOLIDATION)),
            CHANGE_NEW_CONSOLIDATION
        );
        assert_eq!(
            change_code(CONSOLIDATION, Some(LAA)),
            CHANGE_RESOLVED_CONSOLIDATION
        );
        assert_eq!(change_code(NORMAL, Some(LAA)), CHANGE_NEW_LAA);
        assert_eq!(change_code(LAA, Some(NORMAL)), CHANGE_RESOLVED_LAA);
        assert_eq!(change_code(VESSEL_DENSE, Some(GGO)), CHANGE_VESSEL);
        assert_eq!(change_code(NORMAL, Some(NORMAL)), CHANGE_STABLE);
        assert_eq!(change_code(GGO, Some(GGO)), CHANGE_STABLE_GGO);
        assert_eq!(change_code(GGO, None), CHANGE_NOT_COMPARABLE);
        // Every code the function gives is named.
        for b in 1..=5 {
            for f in (1..=5).map(Some).chain([None]) {
                let c = change_code(b, f);
                assert!(CHANGE_CODES.iter().any(|(k, _)| *k == c), "{b} {f:?}");
            }
        }
    }

    #[test]
    fn breath_correction_preserves_mass() {
        let hu = Array3::from_elem((1, 1, 3), -800i16);
        let j = Array3::from_shape_vec((1, 1, 3), vec![0.8f32, 1.0, 1.25]).expect("shape");
        let c = correct_for_breath(&hu, &j);
        // 200 HU above air at 0.8 of the volume: 160 above air at the baseline's volume.
        assert_eq!(c.as_slice().expect("standard layout"), &[-840, -800, -750]);
        // Airless tissue keeps its density; between aerated and airless the correction fades.
        let hu = Array3::from_shape_vec((1, 1, 4), vec![40i16, -100, -150, -200]).expect("shape");
        let j = Array3::from_elem((1, 1, 4), 0.8f32);
        let c = correct_for_breath(&hu, &j);
        // -150: half of (-1000 + 850 * 0.8 = -320) - (-150) = -85; -200: -1000 + 800 * 0.8.
        assert_eq!(
            c.as_slice().expect("standard layout"),
            &[40, -100, -235, -360]
        );
    }

    /// Two slabs of lung: the upper gains GGO and the lower loses as much: migration, whole
    /// lung stable; the transition matrix and zones add up.
    #[test]
    fn migration_and_transition_matrix() {
        let (nz, ny, nx) = (30, 4, 4);
        let lungs = Array3::from_elem((nz, ny, nx), 1u8);
        let class_at = |lo: usize, hi: usize| {
            Array3::from_shape_fn((nz, ny, nx), move |(z, _, _)| {
                if (lo..hi).contains(&z) { GGO } else { NORMAL }
            })
        };
        let (classes, fclasses) = (class_at(0, 10), class_at(20, 30));
        // Superior = high index: zone "upper" is z 20..30, "lower" z 0..10.
        let bhu = Array3::from_shape_fn((nz, ny, nx), |(z, _, _)| if z < 10 { -500 } else { -850 });
        let fhu =
            Array3::from_shape_fn((nz, ny, nx), |(z, _, _)| if z >= 20 { -500 } else { -850 });
        let jac = Array3::from_elem((nz, ny, nx), 1.0f32);
        let inp = ChangeInputs {
            baseline_lungs: &lungs,
            baseline_classes: &classes,
            baseline_hu: &bhu,
            followup_hu: &fhu,
            followup_hu_uncorrected: &fhu,
            followup_classes: &fclasses,
            followup_classes_uncorrected: &fclasses,
            jacobian: &jac,
            voxel_ml: 0.5,
            superior_is_high_index: true,
        };
        let q = RegistrationQuality {
            lung_dice: 1.0,
            similarity_before: 0.0,
            similarity_after: 0.0,
            folding_pct: 0.0,
            mean_jacobian: 1.0,
            coverage_pct: 100.0,
            accepted: true,
            reason: String::new(),
        };
        let (codes, s) = compute(&inp, q, "b", "f");
        assert_eq!(codes[[25, 0, 0]], CHANGE_NEW_GGO);
        assert_eq!(codes[[5, 0, 0]], CHANGE_RESOLVED_GGO);
        assert_eq!(codes[[15, 0, 0]], CHANGE_STABLE);
        let n = 10.0 * 16.0 * 0.5;
        assert!((s.zones["right_upper"].new_ggo_ml - n).abs() < 1e-9);
        assert!((s.zones["right_lower"].resolved_ggo_ml - n).abs() < 1e-9);
        assert!(s.whole.net_affected_ml.abs() < 1e-9);
        assert!(s.migration.is_some(), "{s:?}");
        let total: f64 = s.transition_ml.iter().flatten().sum();
        assert!((total - s.baseline_lung_ml).abs() < 1e-9);
        assert!((s.moved_ml() - 2.0 * n).abs() < 1e-9);
    }
}
