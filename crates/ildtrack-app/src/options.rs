//! What every job is told: settings and a progress callback.

use ildtrack_analysis::AnalysisConfig;
use ildtrack_track::TrackConfig;

/// Progress callback: `(stage, fraction 0..=1 of the whole job)`.
pub type Progress<'a> = &'a dyn Fn(&str, f32);

/// Settings of `analyze`, `track` and `demo`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AnalyzeOptions {
    /// Density thresholds, segmentation parameters, age preset.
    pub config: AnalysisConfig,
    /// Analyse this SeriesInstanceUID instead of the automatic choice (single-visit `analyze`).
    pub series_uid: Option<String>,
    /// Show patient name and ID in the reports (`--identify`).
    pub identify: bool,
    /// The verdict rule and protocol tolerances (`track`); a manifest's `[rule]` overrides it.
    pub track: TrackConfig,
    /// The content-addressed analysis cache (`--cache`). `track` defaults to
    /// `<out>/.ildtrack-cache`; `analyze` uses a cache only when given one. A workflow that
    /// runs `analyze` per visit and then `track` per patient passes both the same folder, so
    /// `track` finds every visit analysed.
    pub cache_dir: Option<std::path::PathBuf>,
    /// File format of the label maps (`--format`).
    pub label_format: LabelFormat,
    /// Also write a DICOM Segmentation ([`DICOM_SEG_FILE`]) referencing the source series
    /// (`--dicom-out`; needs a DICOM input).
    pub dicom_out: bool,
}

/// The DICOM Segmentation written with `--dicom-out`.
pub const DICOM_SEG_FILE: &str = "segmentation.dcm";

/// The DICOM Structured Report (TID 1500 measurements) written with `--dicom-out`.
pub const DICOM_SR_FILE: &str = "measurements.dcm";

/// File format of a visit's label maps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LabelFormat {
    /// `lungs.nii.gz`, `classes.nii.gz`.
    #[default]
    Nifti,
    /// `lungs.nrrd`, `classes.nrrd` and the 3D Slicer segmentation `segmentation.seg.nrrd`
    /// (segments named and coloured).
    Nrrd,
}

impl LabelFormat {
    /// The label-map files of a visit folder in this format.
    pub fn files(self) -> &'static [&'static str] {
        match self {
            LabelFormat::Nifti => &["lungs.nii.gz", "classes.nii.gz"],
            LabelFormat::Nrrd => &["lungs.nrrd", "classes.nrrd", SEGMENTATION_FILE],
        }
    }
}

/// The 3D Slicer segmentation written with [`LabelFormat::Nrrd`].
pub const SEGMENTATION_FILE: &str = "segmentation.seg.nrrd";
