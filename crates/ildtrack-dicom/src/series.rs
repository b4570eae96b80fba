//! The types a scan and a load hand back: the series table and the loaded series.

use std::path::PathBuf;

use ildtrack_volume::{Identity, ScanMeta, Volume, Warning};
use serde::Serialize;

use crate::header::FileHeader;
use crate::kernel::KernelClass;

/// Options for [`crate::load`].
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Analyse this SeriesInstanceUID instead of the automatic choice.
    pub series_uid: Option<String>,
}

/// A loaded series: the HU volume and what we know about it.
#[derive(Debug, Clone)]
pub struct LoadedSeries {
    /// HU, `(z, y, x)`, LPS geometry; outside the field of view = `OUTSIDE_FOV_HU`.
    pub volume: Volume<i16>,
    pub meta: ScanMeta,
    /// Patient name and ID: never log or print unless the user asks.
    pub identity: Identity,
    pub warnings: Vec<Warning>,
}

/// One slice of a stack: a frame of a file.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SliceRef {
    pub file: usize,
    pub frame: u32,
}

/// The result of [`crate::scan`]: every series (split into stacks) found under the input, and
/// the one [`crate::load`] would analyse.
#[derive(Debug, Clone, Serialize)]
pub struct Scan {
    pub input: PathBuf,
    /// `dicom-folder`, `dicomdir`, `dicom-file`, `enhanced-multiframe`, `nifti` or `nrrd`.
    pub source_format: String,
    pub series: Vec<SeriesEntry>,
    /// Index into `series` of the chosen stack (None when nothing is usable).
    pub chosen: Option<usize>,
    pub choice_reasons: Vec<String>,
    /// Files that were ignored or unreadable, and other notes about the input as a whole.
    pub notes: Vec<Warning>,
    #[serde(skip)]
    pub(crate) files: Vec<FileHeader>,
}

impl Scan {
    /// The scan of a file that holds one volume (NIfTI, NRRD): its one entry, chosen.
    pub(crate) fn one_volume(
        input: &std::path::Path,
        source_format: &str,
        entry: SeriesEntry,
    ) -> Scan {
        let what = match source_format {
            "nifti" => "NIfTI",
            "nrrd" => "NRRD",
            other => other,
        };
        Scan {
            input: input.to_path_buf(),
            source_format: source_format.into(),
            choice_reasons: vec![format!(
                "chosen {}: a {what} file holds one volume",
                entry.uid
            )],
            series: vec![entry],
            chosen: Some(0),
            notes: Vec::new(),
            files: Vec::new(),
        }
    }
}

/// One stack of one series: same SeriesInstanceUID, orientation, matrix and pixel spacing.
#[derive(Debug, Clone, Serialize)]
pub struct SeriesEntry {
    pub uid: String,
    /// Index of this stack within its series (0 unless the series was split).
    pub stack: usize,
    pub description: Option<String>,
    pub modality: Option<String>,
    pub kernel: Option<String>,
    pub kernel_class: KernelClass,
    pub image_type: Vec<String>,
    pub sop_class_uid: String,
    pub manufacturer: Option<String>,
    pub study_date: Option<String>,
    pub series_time: Option<String>,
    pub acquisition_number: Option<i64>,
    /// Slices in this stack (after nothing is dropped; see `warnings` for duplicates).
    pub n_slices: usize,
    pub n_files: usize,
    pub thickness_mm: Option<f64>,
    /// Voxel spacing `(z, y, x)` in mm, z from the slice positions.
    pub spacing_mm: Option<[f64; 3]>,
    /// Extent along the slice normal from first to last slice centre, mm.
    pub coverage_mm: f64,
    pub rows: u32,
    pub cols: u32,
    pub transfer_syntax: String,
    pub transfer_syntax_name: String,
    /// `axial`, `coronal`, `sagittal`, `oblique` or `unknown`.
    pub orientation: String,
    pub warnings: Vec<Warning>,
    /// Why this stack can never be analysed (None: it is a candidate).
    pub rejected_because: Option<String>,
    #[serde(skip)]
    pub(crate) slices: Vec<SliceRef>,
    #[serde(skip)]
    pub(crate) identity: Identity,
    #[serde(skip)]
    pub(crate) meta: ScanMeta,
}
