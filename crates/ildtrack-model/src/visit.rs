//! The serialised result of analysing one visit: `visit.json` (schema in `docs/visit-json.md`).
//!
//! Units are in every field name. Percentages are of the region's volume (0–100).
//! Architecture Invariant: adding a field is a minor schema change; renaming or removing one
//! bumps [`SCHEMA_VERSION`].

use ildtrack_volume::Warning;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Version of the `visit.json` schema.
pub const SCHEMA_VERSION: &str = "1.0";

/// One visit's analysis, as written to `visit.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VisitResult {
    pub schema_version: String,
    /// ildtrack version that produced it.
    pub version: String,
    pub series: SeriesSummary,
    pub lungs: Lungs,
    pub thresholds: Thresholds,
    pub warnings: Vec<Warning>,
    /// e.g. `cpu` or `gpu`.
    pub backend: String,
    /// Adapter or CPU description, e.g. `rayon, 2 threads` or `NVIDIA H100 (Vulkan)`.
    pub backend_device: String,
    /// Stage name → milliseconds (`load`, `segment`, `quantify`, `write`, `total`).
    pub timings_ms: BTreeMap<String, f64>,
    /// HU histogram of the whole lung (both lungs' mask), for the report's histogram overlay.
    /// Absent in files written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub histogram: Option<HuHistogram>,
    /// Kernel harmonization (`docs/HARMONIZATION.md`): what was measured, what was done and,
    /// where it was applied, the metrics on the harmonized HU. `lungs` above always holds the
    /// scan's own (raw) metrics. Absent in files written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub harmonization: Option<Harmonization>,
}

/// What kernel harmonization found and did for one visit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Harmonization {
    /// The setting: `off`, `auto` or `on`.
    pub mode: String,
    pub status: HarmonizationStatus,
    /// Why, in words (ratios to the reference, or what was missing).
    pub reason: String,
    /// Band edges: cumulative in-plane Gaussian σ (mm). Band `k` is the detail between σ
    /// `band_sigmas_mm[k-1]` (the voxel itself for `k = 0`) and `band_sigmas_mm[k]`; what is
    /// coarser than the last σ is never changed.
    pub band_sigmas_mm: Vec<f64>,
    /// The soft reference profile: robust SD (HU) of each band in homogeneous tissue.
    pub reference_band_sd_hu: Vec<f64>,
    /// The same measured on this scan (empty where it could not be measured).
    pub measured_band_sd_hu: Vec<f64>,
    /// Gain applied to each band (1 = unchanged; never above 1). Empty unless applied.
    pub gains: Vec<f64>,
    /// Voxels of homogeneous tissue (fat, muscle, blood) the bands were measured on.
    pub tissue_voxels: u64,
    /// Pixel-to-pixel noise (HU, as `series.noise_sd_hu`) of the measured slices, before and
    /// after harmonization (after: only where applied).
    pub noise_before_hu: Option<f64>,
    pub noise_after_hu: Option<f64>,
    /// Metrics of the same lung mask on the harmonized HU (classes and histograms). Present
    /// only where applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lungs: Option<Lungs>,
    /// Whole-lung histogram of the harmonized HU, where applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub histogram: Option<HuHistogram>,
}

/// Outcome of kernel harmonization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HarmonizationStatus {
    /// Applied: `harmonization.lungs` holds the harmonized metrics.
    Applied,
    /// Measured at or under the reference profile (a soft kernel): the scan's own metrics
    /// already stand on the reference footing.
    NotNeeded,
    /// Not enough homogeneous tissue to measure (e.g. a lung-only crop): metrics could not be
    /// put on the reference footing.
    Unavailable,
    /// Switched off by the settings.
    Off,
}

impl VisitResult {
    /// Whether kernel harmonization was applied to this scan (its `harmonization.lungs` and,
    /// in an analysis, its harmonized classes differ from its own).
    pub fn harmonization_applied(&self) -> bool {
        self.harmonization
            .as_ref()
            .is_some_and(|h| h.status == HarmonizationStatus::Applied)
    }

    /// The metrics on the soft reference kernel's footing, for comparing visits reconstructed
    /// with different kernels: the harmonized metrics where harmonization was applied, the
    /// scan's own where it measured the scan at the reference (nothing to correct); otherwise
    /// `Err` with the reason (harmonization off, not measurable, or a file written before it
    /// existed).
    pub fn reference_lungs(&self) -> Result<&Lungs, String> {
        let Some(h) = &self.harmonization else {
            return Err("no kernel harmonization recorded (visit.json older than it)".into());
        };
        match (h.status, &h.lungs) {
            (HarmonizationStatus::Applied, Some(l)) => Ok(l),
            (HarmonizationStatus::Applied, None) => {
                Err("harmonization applied but its metrics are missing".into())
            }
            (HarmonizationStatus::NotNeeded, _) => Ok(&self.lungs),
            (HarmonizationStatus::Unavailable, _) => {
                Err(format!("kernel harmonization not possible: {}", h.reason))
            }
            (HarmonizationStatus::Off, _) => Err("kernel harmonization switched off".into()),
        }
    }
}

/// Voxel counts per HU bin: bin `i` holds `lo_hu + i * bin_width_hu <= HU < lo_hu + (i + 1) * bin_width_hu`.
/// Values below the first bin are counted in the first bin, values above the last in the last.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HuHistogram {
    pub lo_hu: i32,
    pub bin_width_hu: i32,
    pub counts: Vec<u64>,
}

impl Default for HuHistogram {
    /// 10 HU bins from −1024 HU up to +206 HU (123 bins).
    fn default() -> Self {
        HuHistogram {
            lo_hu: -1024,
            bin_width_hu: 10,
            counts: vec![0; 123],
        }
    }
}

impl HuHistogram {
    /// Bin index of `hu` (clamped into the first / last bin). `None` when there are no bins.
    pub fn bin_index(&self, hu: i32) -> Option<usize> {
        if self.counts.is_empty() || self.bin_width_hu <= 0 {
            return None;
        }
        let i = (hu - self.lo_hu).div_euclid(self.bin_width_hu);
        Some(i.clamp(0, self.counts.len() as i32 - 1) as usize)
    }

    /// Count one voxel.
    pub fn add(&mut self, hu: i32) {
        if let Some(i) = self.bin_index(hu) {
            self.counts[i] += 1;
        }
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// The series facts a reader of the report needs. No patient name or ID.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SeriesSummary {
    pub series_instance_uid: Option<String>,
    pub series_description: Option<String>,
    /// `YYYY-MM-DD`.
    pub study_date: Option<String>,
    pub series_time: Option<String>,
    /// `[z, y, x]` voxel counts.
    pub dims_zyx: [usize; 3],
    /// `[z, y, x]` spacing in mm.
    pub spacing_mm: [f64; 3],
    pub kernel: Option<String>,
    pub slice_thickness_mm: Option<f64>,
    pub manufacturer: Option<String>,
    pub manufacturer_model: Option<String>,
    pub patient_age_years: Option<f64>,
    pub patient_sex: Option<String>,
    pub kvp: Option<f64>,
    pub exposure_mas: Option<f64>,
    pub contrast_agent: Option<String>,
    pub source_format: Option<String>,
    /// Pixel-to-pixel image noise (HU) measured in soft tissue (`ildtrack_analysis::noise::noise_sd_hu`);
    /// sharp kernels and low dose raise it.
    #[serde(default)]
    pub noise_sd_hu: Option<f64>,
}

/// Density-class thresholds in HU (defaults from DOMAIN.md). Ranges are `[lo, hi)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Thresholds {
    /// Below this: low attenuation (LAA), default −950.
    pub laa_hu: i32,
    /// GGO lower bound (= top of normal aerated lung), default −700.
    pub ggo_lo_hu: i32,
    /// GGO / consolidation boundary, default −300.
    pub consolidation_lo_hu: i32,
    /// Consolidation upper bound (exclusive), default +100.
    pub consolidation_hi_hu: i32,
    /// HAA range, inclusive both ends, default −600..−250.
    pub haa_lo_hu: i32,
    pub haa_hi_hu: i32,
    /// Subpleural band depth in mm, default 10.
    pub subpleural_mm: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            laa_hu: -950,
            ggo_lo_hu: -700,
            consolidation_lo_hu: -300,
            consolidation_hi_hu: 100,
            haa_lo_hu: -600,
            haa_hi_hu: -250,
            subpleural_mm: 10.0,
        }
    }
}

/// Metrics of every lung region.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lungs {
    pub whole: Metrics,
    pub left: Metrics,
    pub right: Metrics,
    pub zones: Zones,
    pub subpleural: Metrics,
    pub core: Metrics,
}

/// Upper, middle and lower craniocaudal thirds of each lung's own extent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Zones {
    pub right_upper: Metrics,
    pub right_middle: Metrics,
    pub right_lower: Metrics,
    pub left_upper: Metrics,
    pub left_middle: Metrics,
    pub left_lower: Metrics,
}

pub use ildtrack_volume::ZONE_NAMES;

impl Zones {
    /// `(name, metrics)` in the order of [`ZONE_NAMES`].
    pub fn iter(&self) -> [(&'static str, &Metrics); 6] {
        let m = [
            &self.right_upper,
            &self.right_middle,
            &self.right_lower,
            &self.left_upper,
            &self.left_middle,
            &self.left_lower,
        ];
        [0, 1, 2, 3, 4, 5].map(|k| (ZONE_NAMES[k], m[k]))
    }

    /// Sum of the six visual-style extent scores (0–24).
    pub fn total_extent_score(&self) -> u32 {
        self.iter().iter().map(|(_, m)| m.extent_score as u32).sum()
    }
}

/// First-order statistics and density-class fractions of one region.
/// Statistics of an empty region are `null` (None); volumes are 0.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub voxel_count: u64,
    pub volume_ml: f64,
    /// Mean lung density.
    pub mean_hu: Option<f64>,
    pub sd_hu: Option<f64>,
    pub skewness: Option<f64>,
    /// Excess kurtosis (normal = 0). pyradiomics reports non-excess = this + 3.
    pub kurtosis_excess: Option<f64>,
    pub p10_hu: Option<f64>,
    pub p15_hu: Option<f64>,
    pub p50_hu: Option<f64>,
    pub p85_hu: Option<f64>,
    pub p90_hu: Option<f64>,
    /// % of voxels below `laa_hu` (−950).
    pub laa950_pct: f64,
    /// % of voxels in the HAA range (−600..−250).
    pub haa_pct: f64,
    pub ggo_ml: f64,
    pub ggo_pct: f64,
    /// Consolidation, vessels excluded.
    pub consolidation_ml: f64,
    pub consolidation_pct: f64,
    /// GGO + consolidation.
    pub affected_ml: f64,
    pub affected_pct: f64,
    /// Visual-style extent score 0–4 from `affected_pct` (0 none, 1 < 25 %, 2 25–50 %, 3 50–75 %, 4 ≥ 75 %).
    pub extent_score: u8,
    /// Volume of voxels classed as vessel (excluded from GGO / consolidation).
    pub vessel_ml: f64,
}

/// Visual extent score from the percentage of a zone affected.
/// 0: none (< 1 %, treated as no disease), 1: < 25 %, 2: 25–50 %, 3: 50–75 %, 4: ≥ 75 %.
pub fn extent_score(affected_pct: f64) -> u8 {
    if affected_pct < 1.0 {
        0
    } else if affected_pct < 25.0 {
        1
    } else if affected_pct < 50.0 {
        2
    } else if affected_pct < 75.0 {
        3
    } else {
        4
    }
}
