//! Analysis settings: density thresholds, segmentation parameters, age preset (TOML).

use crate::error::AnalysisError;
pub use crate::harmonize::HarmonizeMode;
use ildtrack_model::visit::Thresholds;
use serde::{Deserialize, Serialize};

/// Everything `analyze` can be told. Every field has a default; a TOML file may set any subset:
///
/// ```toml
/// age_preset = "auto"
/// harmonize = "off"
/// [thresholds]
/// ggo_lo_hu = -750
/// [quantification]
/// vessel_radius_mm = 3.5
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct AnalysisConfig {
    pub thresholds: Thresholds,
    pub segmentation: SegmentationParams,
    pub quantification: QuantifyParams,
    pub age_preset: AgePreset,
    /// Kernel harmonization before classification (`docs/HARMONIZATION.md`): `off`, `auto`
    /// (default: where the scan measures sharper or noisier than the soft reference) or `on`.
    pub harmonize: HarmonizeMode,
}

impl AnalysisConfig {
    /// Parses a TOML config; unknown keys are an error (typos must not pass silently).
    pub fn from_toml_str(text: &str) -> Result<AnalysisConfig, AnalysisError> {
        let cfg_err = |e: toml::de::Error| AnalysisError::Config(e.to_string().trim().to_string());
        let mut given: toml::Table = toml::from_str(text).map_err(cfg_err)?;
        move_quantification_keys(&mut given)?;
        let c: AnalysisConfig = given.clone().try_into().map_err(cfg_err)?;
        // `Thresholds` (shared with visit.json) accepts unknown keys; a config file must not.
        let known = toml::Table::try_from(&c).map_err(|e| AnalysisError::Config(e.to_string()))?;
        if let Some(key) = unknown_key(&given, &known, "") {
            return Err(AnalysisError::Config(format!("unknown key `{key}`")));
        }
        c.validate()?;
        Ok(c)
    }

    /// Checks that thresholds are ordered and parameters are in range.
    pub fn validate(&self) -> Result<(), AnalysisError> {
        let t = &self.thresholds;
        if !(t.laa_hu < t.ggo_lo_hu
            && t.ggo_lo_hu < t.consolidation_lo_hu
            && t.consolidation_lo_hu < t.consolidation_hi_hu)
        {
            return Err(AnalysisError::Config(format!(
                "thresholds must increase: laa {} < ggo_lo {} < consolidation_lo {} < consolidation_hi {}",
                t.laa_hu, t.ggo_lo_hu, t.consolidation_lo_hu, t.consolidation_hi_hu
            )));
        }
        for v in [
            t.laa_hu,
            t.ggo_lo_hu,
            t.consolidation_lo_hu,
            t.consolidation_hi_hu,
            t.haa_lo_hu,
            t.haa_hi_hu,
        ] {
            if !(-2048..=4095).contains(&v) {
                return Err(AnalysisError::Config(format!(
                    "threshold {v} HU is outside -2048..4095"
                )));
            }
        }
        if t.haa_lo_hu > t.haa_hi_hu {
            return Err(AnalysisError::Config(format!(
                "haa_lo_hu {} > haa_hi_hu {}",
                t.haa_lo_hu, t.haa_hi_hu
            )));
        }
        let s = &self.segmentation;
        let q = &self.quantification;
        let pos = [
            ("subpleural_mm", t.subpleural_mm),
            ("working_resolution_mm", s.working_resolution_mm),
            ("vessel_radius_mm", q.vessel_radius_mm),
            ("airway_max_area_mm2", s.airway_max_area_mm2),
        ];
        for (name, v) in pos {
            if !(v.is_finite() && v > 0.0) {
                return Err(AnalysisError::Config(format!(
                    "{name} must be > 0, got {v}"
                )));
            }
        }
        for (name, v) in [
            ("vessel_margin_mm", q.vessel_margin_mm),
            ("vessel_junction_ratio", q.vessel_junction_ratio),
            ("min_component_ml", s.min_component_ml),
            ("ggo_opening_per_slice", q.ggo_opening_per_slice),
            ("noise_sigma_mm", q.noise_sigma_mm),
            ("denoise_noise_hu", q.denoise_noise_hu),
            ("denoise_sigma_mm", q.denoise_sigma_mm),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(AnalysisError::Config(format!(
                    "{name} must be >= 0, got {v}"
                )));
            }
        }
        if !(0.0..=1.0).contains(&s.max_pure_air_fraction) {
            return Err(AnalysisError::Config(format!(
                "max_pure_air_fraction must be in 0..=1, got {}",
                s.max_pure_air_fraction
            )));
        }
        Ok(())
    }

    /// Thresholds after the age preset is applied for a patient of `age_years`.
    pub fn effective_thresholds(&self, age_years: Option<f64>) -> Thresholds {
        let mut t = self.thresholds.clone();
        if let (AgePreset::Auto, Some(age)) = (self.age_preset, age_years)
            && age < 13.0
        {
            // Low-attenuation threshold −846 HU at age ≤ 6, reaching −950 HU at 13
            // (PMC5116406; Children 2021;8:1172); linear in between.
            let f = ((age - 6.0) / 7.0).clamp(0.0, 1.0);
            t.laa_hu = (-846.0 + f * (-950.0 + 846.0)).round() as i32;
        }
        t
    }
}

/// Keys of [`QuantifyParams`] that settings files written before `[quantification]` existed
/// give under `[segmentation]`: moved to `[quantification]`; given in both is an error.
fn move_quantification_keys(given: &mut toml::Table) -> Result<(), AnalysisError> {
    let known = toml::Table::try_from(QuantifyParams::default())
        .map_err(|e| AnalysisError::Config(e.to_string()))?;
    let Some(toml::Value::Table(seg)) = given.get_mut("segmentation") else {
        return Ok(());
    };
    let moved: Vec<(String, toml::Value)> = known
        .keys()
        .filter_map(|k| seg.remove(k).map(|v| (k.clone(), v)))
        .collect();
    if moved.is_empty() {
        return Ok(());
    }
    let quant = given
        .entry("quantification")
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    let toml::Value::Table(q) = quant else {
        return Err(AnalysisError::Config(
            "`quantification` must be a table".into(),
        ));
    };
    for (k, v) in moved {
        if q.contains_key(&k) {
            return Err(AnalysisError::Config(format!(
                "`{k}` is given under both [segmentation] and [quantification]"
            )));
        }
        q.insert(k, v);
    }
    Ok(())
}

fn unknown_key(given: &toml::Table, known: &toml::Table, prefix: &str) -> Option<String> {
    for (k, v) in given {
        let path = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match (v, known.get(k)) {
            (_, None) => return Some(path),
            (toml::Value::Table(g), Some(toml::Value::Table(kn))) => {
                if let Some(p) = unknown_key(g, kn, &path) {
                    return Some(p);
                }
            }
            _ => {}
        }
    }
    None
}

/// Which density thresholds to use for children.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum AgePreset {
    /// Adult thresholds at every age (a `pediatric-patient` warning is still given under 18).
    #[default]
    Adult,
    /// Age-appropriate low-attenuation threshold under 13 years (from PatientAge).
    Auto,
}

/// Segmentation parameters (see `docs/visit-json.md` and the crate docs for the method).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SegmentationParams {
    /// Voxels at or above this are tissue (body mask).
    pub body_hu: i16,
    /// Voxels at or below this inside the body are air (aerated lung, airways).
    pub air_hu: i16,
    /// Segmentation runs on a grid of about this spacing (block means); quantification runs
    /// on the full grid.
    pub working_resolution_mm: f64,
    /// Air components smaller than this are ignored.
    pub min_component_ml: f64,
    /// An air component with more than this share of its working-grid voxels at or below
    /// −960 HU is gas in bowel or stomach, not lung (raise it for severe bullous emphysema).
    pub max_pure_air_fraction: f64,
    /// Lung filled with dense ground glass: regions between `air_hu` and this (working-grid
    /// block means), thicker than 5 mm and connected to an aerated lung, join it. At or below
    /// `air_hu` turns this off.
    pub dense_lung_hu: i16,
    /// Largest cross-section of trachea / main bronchus tracked from the neck down.
    pub airway_max_area_mm2: f64,
    /// In-plane closing radius per lung (takes in vessels indenting the lung at the hilum).
    pub closing_radius_mm: f64,
    /// Holes in a lung slice up to this area are filled (vessels); larger ones only when
    /// enclosed by lung in 3-D.
    pub hole_max_area_mm2: f64,
    /// The pleura of a slice is outlined by the aerated lung of this many mm of slices
    /// towards the head (convex hull of their union).
    pub pleura_window_mm: f64,
    /// A non-aerated voxel inside the lung's outline is taken as disease when it is nearer the
    /// chest wall than the mediastinum, or at least this far from the mediastinum.
    pub mediastinum_margin_mm: f64,
    /// Include dense regions bounded by the chest wall (per-slice convex hull test).
    pub include_dense_regions: bool,
}

impl Default for SegmentationParams {
    fn default() -> Self {
        SegmentationParams {
            body_hu: -500,
            air_hu: -400,
            working_resolution_mm: 1.4,
            min_component_ml: 5.0,
            max_pure_air_fraction: 0.35,
            dense_lung_hu: -200,
            airway_max_area_mm2: 700.0,
            closing_radius_mm: 5.0,
            hole_max_area_mm2: 600.0,
            pleura_window_mm: 40.0,
            mediastinum_margin_mm: 1000.0,
            include_dense_regions: true,
        }
    }
}

/// Quantification parameters: how lung voxels are classed (vessels, subpleural lenses, GGO
/// speckle, noise). The settings file's `[quantification]` section; for files written before
/// it existed, these keys are also read from `[segmentation]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuantifyParams {
    /// Dense structures that a ball of this radius does not fit into are vessels, not
    /// consolidation (a morphological opening on the working grid).
    pub vessel_radius_mm: f64,
    /// GGO-range voxels within this distance (in-plane) of a vessel are vessel wall / partial
    /// volume. The default, 1.0 mm, is the one-voxel halo of a CT vessel at ~0.6–0.9 mm pixels
    /// (wider takes in the diagonal neighbours too: a two-voxel ring). Voxels of that rim bordering a GGO patch (what
    /// survives the GGO opening) stay GGO: a vessel crossing ground glass.
    pub vessel_margin_mm: f64,
    /// A dense blob that survives the vessel opening is a junction of vessels (where several
    /// thick vessels meet, at the hilum) when the thick dense tissue attached to it within
    /// 2 × `vessel_radius_mm` (what an opening with half the vessel radius keeps) is more
    /// than this multiple of the blob's own volume and the blob is at most 1.25 ×
    /// `vessel_radius_mm` thick (largest inscribed ball); junctions count as vessel. Only blobs
    /// smaller than a ball of 2 × `vessel_radius_mm` are tested. 0 turns this off.
    pub vessel_junction_ratio: f64,
    /// Dense tissue resting on the chest wall that holds the vessel ball when the ball may
    /// reach into the wall (a subpleural lens or band of consolidation thinner than
    /// 2 × `vessel_radius_mm`) is consolidation, not vessel.
    pub subpleural_lens: bool,
    /// GGO voxels that an in-plane opening of this radius (at least one pixel) removes (speckle
    /// from noise, thin partial-volume halos around vessels) count as normal lung; 0 turns this
    /// off.
    pub ggo_opening_mm: f64,
    /// ... and at least this fraction of the slice spacing (thick slices smear small vessels
    /// into GGO-range streaks as wide as about half the slice).
    pub ggo_opening_per_slice: f64,
    /// Voxels of a consolidated region at or above `consolidation_hi_hu` whose working-grid
    /// block mean, Gaussian-smoothed in-plane (this σ, mm), falls under it are consolidation
    /// pushed over the edge by noise (sharp kernels), not vessel or bone; 0 turns this off.
    pub noise_sigma_mm: f64,
    /// On scans whose measured noise (`noise_sd_hu`) is above this (HU; sharp kernels, low
    /// dose), the density class of non-dense lung (LAA / normal / GGO) is decided on the HU
    /// Gaussian-smoothed in-plane with σ `denoise_sigma_mm`; histogram metrics stay on the
    /// scan's own HU.
    pub denoise_noise_hu: f64,
    /// σ (mm) of that smoothing; 0 turns it off.
    pub denoise_sigma_mm: f64,
}

impl Default for QuantifyParams {
    fn default() -> Self {
        QuantifyParams {
            vessel_radius_mm: 6.0,
            vessel_margin_mm: 1.0,
            vessel_junction_ratio: 1.0,
            subpleural_lens: true,
            ggo_opening_mm: 1.0,
            ggo_opening_per_slice: 0.45,
            noise_sigma_mm: 1.0,
            denoise_noise_hu: 25.0,
            denoise_sigma_mm: 1.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_overrides_some_fields_and_rejects_typos() {
        let c = AnalysisConfig::from_toml_str(
            "age_preset = \"auto\"\n[thresholds]\nggo_lo_hu = -750\n",
        )
        .expect("valid toml");
        assert_eq!(c.thresholds.ggo_lo_hu, -750);
        assert_eq!(c.thresholds.laa_hu, -950);
        assert_eq!(c.age_preset, AgePreset::Auto);
        assert_eq!(c.harmonize, HarmonizeMode::Auto, "auto by default");
        for (text, mode) in [
            ("off", HarmonizeMode::Off),
            ("auto", HarmonizeMode::Auto),
            ("on", HarmonizeMode::On),
        ] {
            let c = AnalysisConfig::from_toml_str(&format!("harmonize = \"{text}\"\n"))
                .expect("valid harmonize");
            assert_eq!(c.harmonize, mode);
        }
        assert!(AnalysisConfig::from_toml_str("harmonize = \"yes\"\n").is_err());
        assert!(AnalysisConfig::from_toml_str("[thresholds]\nggo_low_hu = 1\n").is_err());
        assert!(AnalysisConfig::from_toml_str("[thresholds]\nggo_lo_hu = -200\n").is_err());
        assert!(
            AnalysisConfig::from_toml_str("[segmentation]\nmax_pure_air_fraction = 1.5\n").is_err()
        );
        assert!(
            AnalysisConfig::from_toml_str("[segmentation]\nggo_opening_per_slice = -1\n").is_err()
        );
    }

    #[test]
    fn quantification_keys_are_read_from_either_section() {
        let new = AnalysisConfig::from_toml_str("[quantification]\nvessel_radius_mm = 3.5\n")
            .expect("valid");
        let old = AnalysisConfig::from_toml_str("[segmentation]\nvessel_radius_mm = 3.5\n")
            .expect("valid");
        assert_eq!(new, old);
        assert_eq!(new.quantification.vessel_radius_mm, 3.5);
        assert!(
            AnalysisConfig::from_toml_str(
                "[segmentation]\nvessel_radius_mm = 3\n[quantification]\nvessel_radius_mm = 4\n"
            )
            .is_err()
        );
        assert!(AnalysisConfig::from_toml_str("[quantification]\nair_hu = -400\n").is_err());
    }

    #[test]
    fn child_preset_moves_laa_threshold() {
        let c = AnalysisConfig {
            age_preset: AgePreset::Auto,
            ..Default::default()
        };
        assert_eq!(c.effective_thresholds(Some(4.0)).laa_hu, -846);
        assert_eq!(c.effective_thresholds(Some(30.0)).laa_hu, -950);
        let mid = c.effective_thresholds(Some(9.5)).laa_hu;
        assert!(mid < -846 && mid > -950);
        assert_eq!(
            AnalysisConfig::default()
                .effective_thresholds(Some(4.0))
                .laa_hu,
            -950
        );
    }
}
