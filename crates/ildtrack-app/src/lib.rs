//! The jobs the CLI runs: `analyze` one visit, `track` a patient's visits, `demo`. This crate
//! ties the others together: it loads (`ildtrack-dicom`), analyses (`ildtrack-analysis`), writes
//! label maps and QC pictures, judges the follow-up (`ildtrack-track`), renders the pages
//! (`ildtrack-report`) and writes every file atomically (`ildtrack-fs`).
//!
//! - [`analyze_to_dir`] (module `visit`): load → analyze → `visit.json`, `lungs.nii.gz`,
//!   `classes.nii.gz` (or, with [`LabelFormat::Nrrd`], `lungs.nrrd`, `classes.nrrd` and the
//!   3D Slicer segmentation `segmentation.seg.nrrd`), QC PNGs, `report.html`.
//! - [`track`] (module `track`): every visit of a [`Manifest`] analysed with the same settings
//!   (each analysis cached by content under `<out>/.ildtrack-cache/<key>/` (module `cache`), the
//!   key hashing the input files' paths and bytes, the analysis settings and the software
//!   version), then `track.json`, `track.csv`, `visits/<date>/` (outputs + `report.html`) and
//!   `index.html`.
//! - [`cohort`] (module `cohort`): many patients' `track.json` → `cohort.csv` (one row per
//!   patient-visit) and `cohort.html` (one row per patient); what `workflow/Snakefile` runs last.
//! - [`demo`] (module `demo`): the scripted demo patient written as DICOM by `ildtrack-phantom`,
//!   then tracked.
//!
//! Architecture Invariant: every output file is written to a temporary file and renamed
//! (`ildtrack_fs`); a cache entry is filled in a temporary folder and renamed into place.

mod analyze;
mod cache;
mod cohort;
mod demo;
mod error;
mod files;
mod followup;
mod manifest;
mod options;
mod track;
mod visit;

pub use analyze::analyze_to_dir;
pub use cache::cache_key;
pub use cohort::{CohortEntry, cohort};
pub use demo::{demo, demo_mismatches, demo_with};
pub use error::AppError;
pub use manifest::{Manifest, VisitInput};
pub use options::{
    AnalyzeOptions, DICOM_SEG_FILE, DICOM_SR_FILE, LabelFormat, Progress, SEGMENTATION_FILE,
};
pub use track::{TrackOutcome, track, track_detailed};
pub use visit::{QC_FILES, VisitOutputs, visit_summary};

#[cfg(test)]
mod tests {
    /// The analysis writes its own class codes into `classes.nii.gz`; the report colours the QC
    /// pictures by the model's. They must be the same numbers.
    #[test]
    fn analysis_class_codes_are_the_model_codes() {
        use ildtrack_analysis::stats::class as a;
        use ildtrack_model::class as m;
        assert_eq!(
            [
                a::OUTSIDE,
                a::LAA,
                a::NORMAL,
                a::GGO,
                a::CONSOLIDATION,
                a::VESSEL_DENSE
            ],
            [
                m::OUTSIDE,
                m::LAA,
                m::NORMAL,
                m::GGO,
                m::CONSOLIDATION,
                m::VESSEL_DENSE
            ]
        );
        assert_eq!(a::COUNT, m::COUNT);
    }
}
