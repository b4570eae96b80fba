//! The working grid and its patient geometry: block sizes, working-grid index → LPS, and the
//! per-column tables (distance from the body's mid-sagittal line) that several stages share.

use ildtrack_compute::ComponentInfo;
use ildtrack_volume::Geometry;

/// Block sizes of the working grid: about `target_mm` in-plane and 1.5× that along z (lungs
/// change slowly from slice to slice; thin-slice scans need not be segmented slice by slice).
pub(crate) fn working_factors(spacing_mm: [f64; 3], target_mm: f64) -> [usize; 3] {
    let t = [1.5 * target_mm, target_mm, target_mm];
    [0, 1, 2].map(|k| ((t[k] / spacing_mm[k]).round() as usize).clamp(1, 8))
}

/// The working grid: dimensions, spacing and how its indices map to patient coordinates.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Grid {
    /// Source geometry (full grid).
    pub g: Geometry,
    /// Block size per axis (z, y, x).
    pub factors: [usize; 3],
    /// Working-grid dimensions (z, y, x).
    pub dims: [usize; 3],
    /// Working-grid spacing (mm).
    pub ls: [f64; 3],
    /// Volume of one working voxel (mL).
    pub voxel_ml: f64,
}

impl Grid {
    pub(crate) fn new(g: Geometry, full_dims: [usize; 3], factors: [usize; 3]) -> Self {
        let ls = [0, 1, 2].map(|k| g.spacing_mm[k] * factors[k] as f64);
        Grid {
            g,
            factors,
            dims: [0, 1, 2].map(|k| full_dims[k].div_ceil(factors[k])),
            ls,
            voxel_ml: ls.iter().product::<f64>() / 1000.0,
        }
    }

    /// LPS position (mm) of a working-grid index (fractional allowed).
    pub(crate) fn lps(&self, idx: [f64; 3]) -> [f64; 3] {
        let f = self.factors;
        let full = [0, 1, 2].map(|k| idx[k] * f[k] as f64 + (f[k] as f64 - 1.0) / 2.0);
        self.g.index_to_lps(full)
    }

    /// LPS x (mm, patient left positive) of a working-grid index.
    pub(crate) fn lps_x(&self, idx: [f64; 3]) -> f64 {
        self.lps(idx)[0]
    }

    /// LPS x extent of a component's bounding box (at its centroid's z and y).
    pub(crate) fn x_range(&self, c: &ComponentInfo) -> (f64, f64) {
        let cen = c.centroid_zyx();
        let a = self.lps_x([cen[0], cen[1], c.min_zyx[2] as f64]);
        let b = self.lps_x([cen[0], cen[1], c.max_zyx[2] as f64]);
        (a.min(b), a.max(b))
    }

    /// `radius_mm`, or one in-plane pixel where the grid is coarser: a disk that holds only its
    /// centre voxel opens or closes nothing, while a one-pixel disk still removes structures one
    /// pixel thin (what a thin shell becomes on a coarse grid).
    pub(crate) fn at_least_a_pixel(&self, radius_mm: f64) -> f64 {
        radius_mm.max(self.ls[1].max(self.ls[2]))
    }

    /// +1 when increasing slice index goes towards the head, else −1.
    pub(crate) fn head_step(&self) -> isize {
        if self.g.direction[0][2] >= 0.0 { 1 } else { -1 }
    }
}

/// Per-column facts about the body's mid-sagittal line (axial geometry assumed: the x index
/// alone decides left-right).
pub(crate) struct Columns {
    /// Columns within `mm` of the mid-line, for the widths in [`crate::segment::tuning`].
    pub midline: Vec<bool>,
    pub central: Vec<bool>,
    pub central_narrow: Vec<bool>,
    pub paravertebral: Vec<bool>,
    /// Columns on the patient's right of the mid-line.
    pub right: Vec<bool>,
    /// Distance (0.1 mm units) of each column beyond the [`tuning::MIDLINE_MM`] band.
    pub beyond_midline_cu: Vec<u32>,
}

use super::tuning;

impl Columns {
    /// `body_centre` is the body's centroid (working-grid index), `centre_x` its LPS x.
    pub(crate) fn new(grid: &Grid, body_centre: [f64; 3], centre_x: f64) -> Self {
        let nx = grid.dims[2];
        let dist: Vec<f64> = (0..nx)
            .map(|x| grid.lps_x([body_centre[0], body_centre[1], x as f64]) - centre_x)
            .collect();
        let within = |mm: f64| dist.iter().map(|d| d.abs() <= mm).collect::<Vec<bool>>();
        Columns {
            midline: within(tuning::MIDLINE_MM),
            central: within(tuning::CENTRAL_MM),
            central_narrow: within(tuning::CENTRAL_RIGHT_OUTLINE_MM),
            paravertebral: within(tuning::PARAVERTEBRAL_MM),
            right: dist.iter().map(|&d| d < 0.0).collect(),
            beyond_midline_cu: dist
                .iter()
                .map(|d| ((d.abs() - tuning::MIDLINE_MM).max(0.0) * 10.0).round() as u32)
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(flip_x: bool) -> Grid {
        let mut g = Geometry {
            spacing_mm: [2.0, 1.0, 1.0],
            ..Geometry::default()
        };
        if flip_x {
            g.direction[2][0] = -1.0;
        }
        Grid::new(g, [4, 20, 20], [1, 2, 2])
    }

    #[test]
    fn working_factors_aim_at_the_target_and_stay_within_1_to_8() {
        assert_eq!(working_factors([1.0, 0.7, 0.7], 1.4), [2, 2, 2]);
        assert_eq!(working_factors([10.0, 0.1, 3.0], 1.4), [1, 8, 1]);
    }

    #[test]
    fn a_radius_is_at_least_one_pixel() {
        let g = Grid::new(Geometry::axial([5.0, 4.5, 3.0]), [2, 8, 8], [1, 1, 1]);
        assert_eq!(g.at_least_a_pixel(4.0), 4.5);
        assert_eq!(g.at_least_a_pixel(6.0), 6.0);
    }

    #[test]
    fn columns_measure_distance_from_the_mid_line_in_patient_x() {
        let gr = grid(false);
        assert_eq!(gr.dims, [4, 10, 10]);
        // Block centres at LPS x = 0.5, 2.5, ... 18.5; mid-line at x = 9.5.
        let c = Columns::new(&gr, [0.0, 0.0, 4.5], 9.5);
        assert_eq!(c.right.iter().filter(|&&r| r).count(), 5);
        assert!(c.right[0] && !c.right[9]);
        assert!(c.midline.iter().all(|&m| m), "every column within 15 mm");
        assert_eq!(c.beyond_midline_cu[0], 0);
        // Flipped x: the patient's right is at the high indices.
        let c = Columns::new(
            &grid(true),
            [0.0, 0.0, 4.5],
            grid(true).lps_x([0.0, 0.0, 4.5]),
        );
        assert!(c.right[9] && !c.right[0]);
    }
}
