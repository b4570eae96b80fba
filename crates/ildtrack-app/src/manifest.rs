//! `patient.toml`: a patient's visits, their labels, dates, lung function and the verdict rule.

use crate::error::AppError;
use crate::files::io_err;
use ildtrack_track::TrackConfig;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// One visit of a follow-up.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VisitInput {
    /// Anything `analyze` accepts (folder, file, DICOMDIR, NIfTI). Relative paths in a manifest
    /// are relative to the manifest's folder.
    pub path: PathBuf,
    /// e.g. `pre-infusion`, `+3 months`.
    #[serde(default)]
    pub label: Option<String>,
    /// Study date override, `YYYY-MM-DD`.
    #[serde(default, alias = "study_date")]
    pub date: Option<String>,
    /// FVC, % predicted.
    #[serde(default)]
    pub fvc_pct_pred: Option<f64>,
    /// DLCO, % predicted.
    #[serde(default)]
    pub dlco_pct_pred: Option<f64>,
    /// Analyse this SeriesInstanceUID instead of the automatic choice.
    #[serde(default)]
    pub series_uid: Option<String>,
}

impl VisitInput {
    pub fn from_path(path: PathBuf) -> Self {
        VisitInput {
            path,
            ..Default::default()
        }
    }
}

/// A patient's visits (`patient.toml`):
///
/// ```toml
/// day0 = "2024-03-11"            # treatment day; days count from here
///
/// [[visit]]
/// path = "scans/2024-02-06"      # relative to this file
/// label = "pre-infusion"
/// date = "2024-02-06"            # optional override of the DICOM StudyDate
/// fvc_pct_pred = 62
/// dlco_pct_pred = 48
///
/// [rule]                          # optional: the verdict rule (defaults of DOMAIN.md)
/// metric = "affected_pct"
/// baseline_points = 5
/// previous_points = 3
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    #[serde(default)]
    pub day0: Option<String>,
    #[serde(default, rename = "visit", alias = "visits")]
    pub visits: Vec<VisitInput>,
    #[serde(default)]
    pub rule: Option<TrackConfig>,
}

impl Manifest {
    /// Parse a manifest; relative visit paths are resolved against `base_dir`.
    pub fn from_toml_str(text: &str, base_dir: &Path, origin: &Path) -> Result<Manifest, AppError> {
        let mut m: Manifest = toml::from_str(text).map_err(|e| AppError::Manifest {
            reason: e.to_string(),
            path: origin.to_path_buf(),
        })?;
        for v in &mut m.visits {
            if v.path.is_relative() {
                v.path = base_dir.join(&v.path);
            }
            if let Some(d) = &v.date
                && ildtrack_track::date::days_from_iso(d).is_none()
            {
                return Err(AppError::Manifest {
                    reason: format!("visit {}: date {d:?} is not YYYY-MM-DD", v.path.display()),
                    path: origin.to_path_buf(),
                });
            }
        }
        if let Some(d) = &m.day0
            && ildtrack_track::date::days_from_iso(d).is_none()
        {
            return Err(AppError::Manifest {
                reason: format!("day0 {d:?} is not YYYY-MM-DD"),
                path: origin.to_path_buf(),
            });
        }
        if let Some(r) = &m.rule {
            ildtrack_track::validate_config(r).map_err(|e| AppError::Manifest {
                reason: e.to_string(),
                path: origin.to_path_buf(),
            })?;
        }
        Ok(m)
    }

    /// Read and parse `patient.toml` (at most 1 MiB).
    pub fn from_toml_path(path: &Path) -> Result<Manifest, AppError> {
        let meta = std::fs::metadata(path).map_err(io_err("reading manifest", path))?;
        if meta.len() > 1 << 20 {
            return Err(AppError::Manifest {
                reason: format!("file is {} bytes, more than 1 MiB", meta.len()),
                path: path.into(),
            });
        }
        let text = std::fs::read_to_string(path).map_err(io_err("reading manifest", path))?;
        let base = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        Self::from_toml_str(&text, &base, path)
    }
}
