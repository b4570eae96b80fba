//! `ildtrack demo`: the scripted demo patient, generated, written as DICOM and tracked.

use crate::error::AppError;
use crate::files::{create_dir, io_err};
use crate::manifest::{Manifest, VisitInput};
use crate::options::{AnalyzeOptions, Progress};
use crate::track::{TrackOutcome, track_detailed};
use ildtrack_compute::Backend;
use ildtrack_track::TrackResult;
use std::path::Path;

/// `ildtrack demo`: the scripted demo patient (ildtrack-phantom) as DICOM under
/// `out/dicom/<date>/`, tracked into `out`.
pub fn demo<B: Backend>(
    backend: &B,
    out: &Path,
    progress: Progress<'_>,
) -> Result<TrackResult, AppError> {
    Ok(demo_with(
        backend,
        out,
        ildtrack_phantom::demo_patient(),
        &AnalyzeOptions::default(),
        progress,
    )?
    .result)
}

/// [`demo`] on given demo visits (e.g. `ildtrack_phantom::demo_patient_sized` for a quick run).
pub fn demo_with<B: Backend>(
    backend: &B,
    out: &Path,
    visits: Vec<ildtrack_phantom::DemoVisit>,
    opts: &AnalyzeOptions,
    progress: Progress<'_>,
) -> Result<TrackOutcome, AppError> {
    create_dir(out)?;
    let n = visits.len().max(1);
    let mut manifest = Manifest {
        day0: Some(ildtrack_phantom::DEMO_DAY0.to_string()),
        ..Default::default()
    };
    for (i, dv) in visits.iter().enumerate() {
        progress(
            &format!("generate visit {}/{n}", i + 1),
            0.2 * i as f32 / n as f32,
        );
        let dir = out.join("dicom").join(&dv.study_date);
        let ph = ildtrack_phantom::try_generate(&dv.spec)
            .map_err(|e| AppError::Other(format!("demo phantom: {e}")))?;
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(io_err("clearing demo folder", &dir))?;
        }
        ildtrack_phantom::write_dicom_series(&ph, &dir, &ildtrack_phantom::WriteOptions::default())
            .map_err(|e| {
                AppError::Other(format!("writing demo DICOM failed: {e}: {}", dir.display()))
            })?;
        manifest.visits.push(VisitInput {
            path: dir,
            label: Some(dv.label.clone()),
            ..Default::default()
        });
    }
    let progress_rest = |s: &str, f: f32| progress(s, 0.2 + 0.8 * f);
    track_detailed(backend, &manifest, out, opts, &progress_rest)
}

/// Expected demo verdicts, for checking a run: `(label, expected, got)` for every mismatch.
pub fn demo_mismatches(
    result: &TrackResult,
    visits: &[ildtrack_phantom::DemoVisit],
) -> Vec<(String, String, String)> {
    result
        .visits
        .iter()
        .filter_map(|v| {
            let dv = visits.get(v.input_index)?;
            (v.status.as_str() != dv.expected_status).then(|| {
                (
                    dv.label.clone(),
                    dv.expected_status.to_string(),
                    v.status.to_string(),
                )
            })
        })
        .collect()
}
