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
}
