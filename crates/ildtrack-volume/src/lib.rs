//! Volumes with true patient geometry, the scan facts later stages need, and warnings.
//!
//! Every stage of ildtrack passes data through these types:
//! - [`Volume<T>`]: an `ndarray::Array3<T>` indexed `(z, y, x)` (slice, row, column) plus a
//!   [`Geometry`] that maps an index to DICOM patient coordinates (LPS, millimetres).
//! - [`ScanMeta`]: the acquisition facts (date, age, kernel, thickness, kVp, ...) that the
//!   analysis and the follow-up checks need. Patient name and ID live in [`Identity`], which is
//!   never logged and never serialised unless the user asks for it.
//! - [`Warning`]: a non-fatal data problem (`code`, `message`) carried into JSON and reports.
//!
//! HU volumes are `Volume<i16>`. Voxels outside the reconstructed field of view (pixel padding,
//! the area outside the reconstruction circle) hold [`OUTSIDE_FOV_HU`], never an air value, so
//! that they can never be mistaken for lung.
//!
//! Architecture Invariant: this crate does no I/O and depends on nothing heavier than ndarray
//! and serde.

use ndarray::Array3;
use serde::{Deserialize, Serialize};

/// The six lung zones' names (as in `visit.json`), in the fixed order RU, RM, RL, LU, LM, LL.
pub const ZONE_NAMES: [&str; 6] = [
    "right_upper",
    "right_middle",
    "right_lower",
    "left_upper",
    "left_middle",
    "left_lower",
];

/// Marker stored in HU volumes for voxels outside the reconstructed field of view
/// (PixelPaddingValue, outside the reconstruction circle). Not a physical HU value.
pub const OUTSIDE_FOV_HU: i16 = i16::MIN;

/// Pixel (`y`, `x`) of the slice `hu` has a 4-neighbour off the image or in the padding outside
/// the reconstructed field of view ([`OUTSIDE_FOV_HU`]): there the image, not the patient, ends.
pub fn meets_image_edge(hu: ndarray::ArrayView2<'_, i16>, y: usize, x: usize) -> bool {
    let (ny, nx) = hu.dim();
    let off = |y: isize, x: isize| {
        y < 0
            || x < 0
            || y >= ny as isize
            || x >= nx as isize
            || hu[[y as usize, x as usize]] == OUTSIDE_FOV_HU
    };
    let (y, x) = (y as isize, x as isize);
    off(y - 1, x) || off(y + 1, x) || off(y, x - 1) || off(y, x + 1)
}

/// Where a volume's voxels sit in patient space (DICOM LPS, millimetres).
///
/// Index order is `(z, y, x)` = (slice, row, column). `direction[k]` is the unit vector (in LPS)
/// along which index axis `k` grows, with `k` in the same `(z, y, x)` order:
/// `direction[2]` is the DICOM row direction (ImageOrientationPatient[0..3]),
/// `direction[1]` the column direction (ImageOrientationPatient[3..6]), and
/// `direction[0]` the direction from one slice to the next (normally their cross product).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Geometry {
    /// Voxel spacing along `(z, y, x)` in millimetres; all > 0.
    pub spacing_mm: [f64; 3],
    /// LPS position of the centre of voxel `(0, 0, 0)`, as `[x, y, z]` (the DICOM order).
    pub origin_mm: [f64; 3],
    /// Unit vectors in LPS `[x, y, z]` for index axes `(z, y, x)`.
    pub direction: [[f64; 3]; 3],
}

impl Default for Geometry {
    fn default() -> Self {
        Self::axial([1.0, 1.0, 1.0])
    }
}

impl Geometry {
    /// A standard axial geometry: rows along +x (patient left), columns along +y (posterior),
    /// slices along +z (towards the head), origin at 0.
    pub fn axial(spacing_mm: [f64; 3]) -> Self {
        Geometry {
            spacing_mm,
            origin_mm: [0.0; 3],
            direction: [[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]],
        }
    }

    /// Volume of one voxel in millilitres.
    pub fn voxel_volume_ml(&self) -> f64 {
        self.spacing_mm.iter().product::<f64>() / 1000.0
    }

    /// LPS position (mm, `[x, y, z]`) of the centre of voxel `(z, y, x)` (fractional indices allowed).
    pub fn index_to_lps(&self, idx_zyx: [f64; 3]) -> [f64; 3] {
        let mut p = self.origin_mm;
        for ((dir, &sp), &i) in self.direction.iter().zip(&self.spacing_mm).zip(&idx_zyx) {
            for (pc, &d) in p.iter_mut().zip(dir) {
                *pc += d * sp * i;
            }
        }
        p
    }

    /// The 4×4 matrix mapping `(x, y, z, 1)` voxel indices (NIfTI order i=x, j=y, k=z) to
    /// RAS millimetres, as NIfTI's sform wants it. DICOM is LPS: x and y are negated.
    pub fn nifti_sform_ras(&self) -> [[f64; 4]; 4] {
        let mut m = [[0.0; 4]; 4];
        // NIfTI column i <- our axis x (k=2), j <- y (k=1), k <- z (k=0).
        let axes = [2usize, 1, 0];
        for (col, &k) in axes.iter().enumerate() {
            for (row, m_row) in m.iter_mut().take(3).enumerate() {
                let sign = if row < 2 { -1.0 } else { 1.0 };
                m_row[col] = sign * self.direction[k][row] * self.spacing_mm[k];
            }
        }
        for (row, m_row) in m.iter_mut().take(3).enumerate() {
            let sign = if row < 2 { -1.0 } else { 1.0 };
            m_row[3] = sign * self.origin_mm[row];
        }
        m[3][3] = 1.0;
        m
    }
}

/// A 3-D array in `(z, y, x)` order with its patient geometry.
#[derive(Debug, Clone)]
pub struct Volume<T> {
    pub data: Array3<T>,
    pub geometry: Geometry,
}

impl<T> Volume<T> {
    pub fn new(data: Array3<T>, geometry: Geometry) -> Self {
        Volume { data, geometry }
    }

    /// `(z, y, x)` sizes.
    pub fn dims_zyx(&self) -> [usize; 3] {
        let s = self.data.shape();
        [s[0], s[1], s[2]]
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// A volume of the same grid with other contents.
    pub fn with_data<U>(&self, data: Array3<U>) -> Volume<U> {
        Volume {
            data,
            geometry: self.geometry,
        }
    }

    /// Columns `x0..x1` (clamped to the volume), the geometry kept: the origin moves to the
    /// first kept column, so every voxel keeps its patient position.
    pub fn columns(&self, x0: usize, x1: usize) -> Volume<T>
    where
        T: Clone,
    {
        let nx = self.data.shape()[2];
        let (x0, x1) = (x0.min(nx), x1.clamp(x0.min(nx), nx));
        let mut geometry = self.geometry;
        geometry.origin_mm = geometry.index_to_lps([0.0, 0.0, x0 as f64]);
        Volume {
            data: self.data.slice(ndarray::s![.., .., x0..x1]).to_owned(),
            geometry,
        }
    }
}

/// A non-fatal problem with the data or the analysis, carried into JSON and reports.
///
/// `code` is a stable kebab-case identifier (e.g. `missing-slices`, `gantry-tilt`,
/// `pediatric-patient`); `message` is one sentence for a human.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Warning {
    pub code: String,
    pub message: String,
}

impl Warning {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Warning {
            code: code.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}] {}", self.code, self.message)
    }
}

/// Acquisition facts of one series, kept for analysis warnings and protocol checks between
/// visits. Every field is optional because real files omit any of them.
/// Contains no patient-identifying data (see [`Identity`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScanMeta {
    pub series_instance_uid: Option<String>,
    pub study_instance_uid: Option<String>,
    pub series_description: Option<String>,
    pub modality: Option<String>,
    /// StudyDate as `YYYY-MM-DD`.
    pub study_date: Option<String>,
    /// SeriesTime / AcquisitionTime as `HH:MM:SS` (for ordering same-day visits).
    pub series_time: Option<String>,
    /// PatientAge in years (from PatientAge, else BirthDate and StudyDate).
    pub patient_age_years: Option<f64>,
    /// "M", "F" or "O".
    pub patient_sex: Option<String>,
    pub manufacturer: Option<String>,
    pub manufacturer_model: Option<String>,
    /// ConvolutionKernel (multi-valued joined with `\`).
    pub kernel: Option<String>,
    pub slice_thickness_mm: Option<f64>,
    pub kvp: Option<f64>,
    /// Exposure in mAs.
    pub exposure_mas: Option<f64>,
    /// ContrastBolusAgent, or `Some("")`-free: `None` means no contrast tag present.
    pub contrast_agent: Option<String>,
    /// In-plane pixel spacing `[row, column]` in mm as given by the header.
    pub pixel_spacing_mm: Option<[f64; 2]>,
    pub transfer_syntax: Option<String>,
    /// Where the data came from: `dicom-folder`, `dicomdir`, `dicom-file`, `enhanced-multiframe`, `nifti`, `phantom`.
    pub source_format: Option<String>,
}

/// Patient name and ID. Never logged or written unless the user asks (`--identify`).
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Identity {
    pub patient_name: Option<String>,
    pub patient_id: Option<String>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Redacted on purpose: Debug output ends up in logs.
        f.write_str("Identity { <redacted> }")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_image_edge_is_the_border_or_padding_beside_a_pixel() {
        // 5 x 5: padding at (2, 2).
        let mut hu = ndarray::Array2::<i16>::zeros((5, 5));
        hu[[2, 2]] = OUTSIDE_FOV_HU;
        assert!(meets_image_edge(hu.view(), 0, 1), "top row");
        assert!(meets_image_edge(hu.view(), 1, 2), "above the padding");
        assert!(!meets_image_edge(hu.view(), 1, 1), "padding only diagonal");
        assert!(
            !meets_image_edge(hu.view(), 3, 3),
            "inside, no padding beside it"
        );
    }

    #[test]
    fn voxel_volume_is_product_of_spacings() {
        let g = Geometry::axial([2.0, 0.5, 0.5]);
        assert!((g.voxel_volume_ml() - 0.0005).abs() < 1e-12);
    }

    #[test]
    fn columns_keep_every_voxel_at_its_patient_position() {
        let mut g = Geometry::axial([2.0, 1.0, 0.5]);
        g.origin_mm = [-10.0, 0.0, 0.0];
        let v = Volume::new(
            Array3::from_shape_fn((2, 3, 8), |(z, y, x)| (z * 100 + y * 10 + x) as i16),
            g,
        );
        let c = v.columns(3, 6);
        assert_eq!(c.dims_zyx(), [2, 3, 3]);
        assert_eq!(c.data[[1, 2, 0]], 123);
        assert_eq!(
            c.geometry.index_to_lps([1.0, 2.0, 0.0]),
            v.geometry.index_to_lps([1.0, 2.0, 3.0])
        );
        assert_eq!(v.columns(6, 100).dims_zyx(), [2, 3, 2], "clamped");
    }

    #[test]
    fn index_to_lps_follows_direction_and_spacing() {
        let mut g = Geometry::axial([2.5, 0.7, 0.8]);
        g.origin_mm = [-100.0, -50.0, 30.0];
        assert_eq!(g.index_to_lps([0.0, 0.0, 0.0]), [-100.0, -50.0, 30.0]);
        let p = g.index_to_lps([2.0, 10.0, 5.0]);
        assert!((p[0] - (-100.0 + 4.0)).abs() < 1e-9);
        assert!((p[1] - (-50.0 + 7.0)).abs() < 1e-9);
        assert!((p[2] - 35.0).abs() < 1e-9);
    }

    #[test]
    fn sform_is_lps_negated_in_x_and_y() {
        let mut g = Geometry::axial([3.0, 0.5, 0.6]);
        g.origin_mm = [10.0, 20.0, 30.0];
        let m = g.nifti_sform_ras();
        // voxel (i=1,j=0,k=0) moves +0.6 mm in L = -0.6 in R.
        assert_eq!(m[0][0], -0.6);
        assert_eq!(m[1][1], -0.5);
        assert_eq!(m[2][2], 3.0);
        assert_eq!([m[0][3], m[1][3], m[2][3]], [-10.0, -20.0, 30.0]);
    }

    #[test]
    fn identity_debug_is_redacted() {
        let id = Identity {
            patient_name: Some("Doe^Jane".into()),
            patient_id: Some("123".into()),
        };
        let s = format!("{id:?}");
        assert!(!s.contains("Doe") && !s.contains("123"));
    }
}
