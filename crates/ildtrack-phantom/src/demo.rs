//! The scripted longitudinal case of issue 5: a child with rapidly progressive ILD
//! (anti-MDA5 dermatomyositis pattern: subpleural, lower-zone GGO and consolidation), scanned
//! at day −34 and −7, treated at day 0, then improving at +30, +90, +180 and +325.
//!
//! Affected % (GGO + consolidation, of both lungs) is scripted so that the default rule of
//! DOMAIN.md gives a clear verdict with a margin of several points: every later visit is at
//! least 10 points from the baseline. Visit +180 uses a sharper kernel (B60f, more noise) so
//! that protocol-check warnings show.

use crate::spec::{LesionSpec, PhantomSpec, Side, Zone};
use ildtrack_volume::Identity;
use serde::{Deserialize, Serialize};

/// One visit of the demo patient.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DemoVisit {
    pub label: String,
    /// Days from the treatment day (day 0).
    pub day: i64,
    /// `YYYY-MM-DD`.
    pub study_date: String,
    pub spec: PhantomSpec,
    /// The verdict the default rule must give: `baseline`, `progressed`, `stable` or `improved`.
    pub expected_status: &'static str,
}

/// The treatment day (day 0) of the demo patient.
pub const DEMO_DAY0: &str = "2024-03-11";

/// The demo grid: 224×224×84 at 1.4×1.4×3 mm (≈ 4.2 M voxels per visit).
pub const DEMO_DIMS_ZYX: [usize; 3] = [84, 224, 224];
pub const DEMO_SPACING_MM: [f64; 3] = [3.0, 1.4, 1.4];

/// (day, label, severity, expected status, lung_scale)
const SCRIPT: [(i64, &str, f64, &str, f64); 6] = [
    (-34, "day -34 (baseline)", 1.0, "baseline", 1.0),
    (-7, "day -7 (pre-infusion)", 1.02, "stable", 0.86),
    (30, "+30 days", 0.5, "improved", 1.0),
    (90, "+3 months", 0.35, "improved", 1.02),
    (180, "+6 months", 0.2, "improved", 0.99),
    (325, "+325 days", 0.1, "improved", 1.0),
];

/// The demo patient on the default demo grid.
pub fn demo_patient() -> Vec<DemoVisit> {
    demo_patient_sized(DEMO_DIMS_ZYX, DEMO_SPACING_MM)
}

/// The demo patient on another grid (same anatomy in mm; smaller grids run faster).
pub fn demo_patient_sized(dims_zyx: [usize; 3], spacing_mm: [f64; 3]) -> Vec<DemoVisit> {
    SCRIPT
        .iter()
        .enumerate()
        .map(|(i, &(day, label, severity, status, lung_scale))| {
            let study_date = add_days(DEMO_DAY0, day);
            let mut spec = PhantomSpec {
                dims_zyx,
                spacing_mm,
                seed: 1000 + i as u64,
                anatomy_seed: Some(77),
                noise_sd_hu: 20.0,
                parenchyma_hu: -825.0,
                body_scale: 0.78,
                lung_scale,
                arms_up: true,
                lesions: demo_lesions(severity),
                identity: Identity {
                    patient_name: Some("DEMO^CHILD".into()),
                    patient_id: Some("DEMO-MDA5-001".into()),
                },
                ..PhantomSpec::default()
            };
            spec.meta.study_date = Some(study_date.clone());
            spec.meta.patient_age_years = Some(if day < 200 { 11.0 } else { 12.0 });
            spec.meta.patient_sex = Some("F".into());
            spec.meta.kernel = Some("B45f".into());
            spec.meta.series_description = Some("CHEST ILD follow-up".into());
            spec.meta.exposure_mas = Some(40.0);
            spec.meta.kvp = Some(100.0);
            if day == 180 {
                spec.meta.kernel = Some("B60f".into());
                spec.noise_sd_hu = 32.0;
            }
            DemoVisit {
                label: label.into(),
                day,
                study_date,
                spec,
                expected_status: status,
            }
        })
        .collect()
}

/// Bilateral subpleural lower-zone disease; `severity` 1.0 ≈ 20 % of lung affected.
fn demo_lesions(severity: f64) -> Vec<LesionSpec> {
    let k = 1.1 * severity.max(0.0).cbrt();
    let mut v = Vec::new();
    for (side, ang) in [(Side::Right, 35.0), (Side::Left, 45.0)] {
        v.push(
            LesionSpec::ggo(side, Zone::Lower, 52.0 * k)
                .at_angle(ang)
                .with_z(-4.0),
        );
        v.push(
            LesionSpec::ggo(side, Zone::Lower, 40.0 * k)
                .at_angle(ang + 70.0)
                .with_z(6.0),
        );
        v.push(
            LesionSpec::consolidation(side, Zone::Lower, 24.0 * k)
                .at_angle(ang)
                .with_z(-8.0),
        );
    }
    v.push(LesionSpec::ggo(Side::Right, Zone::Middle, 22.0 * k).at_angle(80.0));
    v
}

/// `iso` (`YYYY-MM-DD`) plus `days`, proleptic Gregorian.
pub fn add_days(iso: &str, days: i64) -> String {
    let parts: Vec<i64> = iso.split('-').filter_map(|p| p.parse().ok()).collect();
    let (y, m, d) = match parts.as_slice() {
        [y, m, d] => (*y, *m, *d),
        _ => (2024, 1, 1),
    };
    let (y, m, d) = civil_from_days(days_from_civil(y, m, d) + days);
    format!("{y:04}-{m:02}-{d:02}")
}

// Howard Hinnant's algorithms.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_arithmetic() {
        assert_eq!(add_days("2024-03-11", -34), "2024-02-06");
        assert_eq!(add_days("2024-03-11", 0), "2024-03-11");
        assert_eq!(add_days("2024-03-11", 325), "2025-01-30");
        assert_eq!(add_days("2024-02-28", 1), "2024-02-29");
        assert_eq!(add_days("2023-12-31", 1), "2024-01-01");
    }
}
