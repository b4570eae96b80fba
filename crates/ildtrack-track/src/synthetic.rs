//! Synthetic, internally consistent [`VisitResult`] values for tests, examples and report
//! previews, independent of the segmentation's exact numbers.

use ildtrack_model::visit::{
    self as model, HuHistogram, Lungs, Metrics, SeriesSummary, Thresholds, VisitResult, Zones,
};
use std::collections::BTreeMap;

/// What a synthetic visit looks like.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticVisit {
    pub study_date: Option<String>,
    /// Whole-lung GGO + consolidation, percent.
    pub affected_pct: f64,
    /// Share of the affected volume that is consolidation (0–1).
    pub consolidation_share: f64,
    /// Both lungs, mL.
    pub volume_ml: f64,
    pub kernel: Option<String>,
    pub slice_thickness_mm: Option<f64>,
    pub kvp: Option<f64>,
    pub manufacturer: Option<String>,
    pub manufacturer_model: Option<String>,
    pub contrast_agent: Option<String>,
    pub patient_age_years: Option<f64>,
    /// Measured image noise (HU).
    pub noise_sd_hu: Option<f64>,
}

impl Default for SyntheticVisit {
    fn default() -> Self {
        SyntheticVisit {
            study_date: Some("2024-01-01".into()),
            affected_pct: 10.0,
            consolidation_share: 0.3,
            volume_ml: 3000.0,
            kernel: Some("B".into()),
            slice_thickness_mm: Some(1.0),
            kvp: Some(120.0),
            manufacturer: Some("Phantom".into()),
            manufacturer_model: Some("Model 1".into()),
            contrast_agent: None,
            patient_age_years: Some(40.0),
            noise_sd_hu: Some(20.0),
        }
    }
}

impl SyntheticVisit {
    pub fn new(study_date: &str, affected_pct: f64) -> Self {
        SyntheticVisit {
            study_date: Some(study_date.into()),
            affected_pct,
            ..Default::default()
        }
    }
}

fn r2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Metrics of a region of `volume_ml` with `affected_pct` disease.
pub fn metrics(volume_ml: f64, affected_pct: f64, consolidation_share: f64) -> Metrics {
    let a = affected_pct.clamp(0.0, 100.0);
    let cons_pct = a * consolidation_share.clamp(0.0, 1.0);
    let ggo_pct = a - cons_pct;
    let mean = -860.0 + 4.0 * ggo_pct + 7.5 * cons_pct;
    Metrics {
        voxel_count: (volume_ml * 1000.0).round() as u64,
        volume_ml: r2(volume_ml),
        mean_hu: Some(r2(mean)),
        sd_hu: Some(r2(90.0 + 2.0 * a)),
        skewness: Some(r2(2.5 - 0.05 * a)),
        kurtosis_excess: Some(r2(8.0 - 0.2 * a)),
        p10_hu: Some(r2(-920.0 + a)),
        p15_hu: Some(r2(-910.0 + a)),
        p50_hu: Some(r2(-860.0 + 2.0 * a)),
        p85_hu: Some(r2(-780.0 + 8.0 * a)),
        p90_hu: Some(r2(-740.0 + 9.0 * a)),
        laa950_pct: 1.5,
        haa_pct: r2(ggo_pct * 0.9 + 1.0),
        ggo_ml: r2(volume_ml * ggo_pct / 100.0),
        ggo_pct: r2(ggo_pct),
        consolidation_ml: r2(volume_ml * cons_pct / 100.0),
        consolidation_pct: r2(cons_pct),
        affected_ml: r2(volume_ml * a / 100.0),
        affected_pct: r2(a),
        extent_score: model::extent_score(a),
        vessel_ml: r2(volume_ml * 0.03),
    }
}

/// A whole-lung histogram shaped like the metrics (normal lung, GGO and consolidation peaks).
pub fn histogram(volume_ml: f64, affected_pct: f64, consolidation_share: f64) -> HuHistogram {
    let mut h = HuHistogram::default();
    let n = volume_ml * 1000.0;
    let a = affected_pct.clamp(0.0, 100.0) / 100.0;
    let c = a * consolidation_share.clamp(0.0, 1.0);
    let g = a - c;
    let comps = [
        (1.0 - a, -860.0, 45.0),
        (g, -520.0, 110.0),
        (c, -80.0, 90.0),
    ];
    for (i, count) in h.counts.iter_mut().enumerate() {
        let centre = (h.lo_hu + h.bin_width_hu * i as i32) as f64 + h.bin_width_hu as f64 / 2.0;
        let mut p = 0.0;
        for (w, mu, sd) in comps {
            let z = (centre - mu) / sd;
            p += w * (-0.5 * z * z).exp() / (sd * (2.0 * std::f64::consts::PI).sqrt())
                * h.bin_width_hu as f64;
        }
        *count = (p * n).round() as u64;
    }
    h
}

/// A complete `VisitResult`: lower zones carry more disease (subpleural, basal pattern).
pub fn visit_result(s: &SyntheticVisit) -> VisitResult {
    let half = s.volume_ml / 2.0;
    let a = s.affected_pct;
    let cs = s.consolidation_share;
    // Upper, middle, lower thirds: weights average to 1.
    let zone = |w: f64| metrics(half / 3.0, a * w, cs);
    let mut timings_ms = BTreeMap::new();
    timings_ms.insert("total".to_string(), 1000.0);
    VisitResult {
        schema_version: model::SCHEMA_VERSION.into(),
        version: "0.1.0".into(),
        series: SeriesSummary {
            series_instance_uid: Some("1.2.3.4".into()),
            series_description: Some("synthetic chest".into()),
            study_date: s.study_date.clone(),
            series_time: Some("10:00:00".into()),
            dims_zyx: [300, 512, 512],
            spacing_mm: [1.0, 0.7, 0.7],
            kernel: s.kernel.clone(),
            slice_thickness_mm: s.slice_thickness_mm,
            manufacturer: s.manufacturer.clone(),
            manufacturer_model: s.manufacturer_model.clone(),
            patient_age_years: s.patient_age_years,
            patient_sex: Some("F".into()),
            kvp: s.kvp,
            exposure_mas: Some(100.0),
            contrast_agent: s.contrast_agent.clone(),
            source_format: Some("phantom".into()),
            noise_sd_hu: s.noise_sd_hu,
        },
        lungs: Lungs {
            whole: metrics(s.volume_ml, a, cs),
            left: metrics(half, a, cs),
            right: metrics(half, a, cs),
            zones: Zones {
                right_upper: zone(0.4),
                right_middle: zone(0.8),
                right_lower: zone(1.8),
                left_upper: zone(0.4),
                left_middle: zone(0.8),
                left_lower: zone(1.8),
            },
            subpleural: metrics(s.volume_ml * 0.4, a * 1.8, cs),
            core: metrics(s.volume_ml * 0.6, a * 0.47, cs),
        },
        thresholds: Thresholds::default(),
        warnings: vec![],
        backend: "cpu".into(),
        backend_device: "synthetic".into(),
        timings_ms,
        histogram: Some(histogram(s.volume_ml, a, cs)),
        // Synthetic figures stand for what a soft reference kernel would show, whatever the
        // kernel name: measured at the reference, nothing to harmonize.
        harmonization: Some(model::Harmonization {
            mode: "auto".into(),
            status: model::HarmonizationStatus::NotNeeded,
            reason: "synthetic visit: figures already on the reference kernel's footing".into(),
            band_sigmas_mm: Vec::new(),
            reference_band_sd_hu: Vec::new(),
            measured_band_sd_hu: Vec::new(),
            gains: Vec::new(),
            tissue_voxels: 0,
            noise_before_hu: s.noise_sd_hu,
            noise_after_hu: None,
            lungs: None,
            histogram: None,
        }),
    }
}
