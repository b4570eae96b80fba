//! What the working grid is too coarse for. The segmentation's rules are in mm, but a rule
//! that tells thin from thick by a morphological step, or looks at a band of a few mm, needs
//! pixels finer than that step: on a coarser grid (thick-pixel reconstructions, downsampled
//! series) the step would silently do nothing or measure partial volume. Such steps are skipped
//! there, and a `coarse-grid` warning names them and the spacing.
//!
//! Contract: the stages ask [`Step::runs`] before such a step; [`warning`] lists exactly the
//! steps that did not run. Changes no voxel.

use super::frame::Grid;
use super::tuning;
use ildtrack_volume::Warning;

/// A step that needs pixels finer than some size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Dense ground glass joins the lung where an opening of
    /// [`tuning::DENSE_GG_OPENING_MM`] keeps it (stage `candidates`).
    DenseGroundGlass,
    /// Diseased-lung density in a band [`tuning::BORDER_BAND_CU`] outside the mask (stage
    /// `doubts`).
    BorderCheck,
}

const STEPS: [Step; 2] = [Step::DenseGroundGlass, Step::BorderCheck];

impl Step {
    /// The step runs on this grid: its pixels (the coarser in-plane axis) are fine enough.
    pub(crate) fn runs(self, grid: &Grid) -> bool {
        let px = grid.ls[1].max(grid.ls[2]);
        match self {
            // The opening's disk must reach past its centre voxel, or every partial-volume
            // voxel between lung and tissue passes it as "thick" dense lung.
            Step::DenseGroundGlass => px <= tuning::DENSE_GG_OPENING_MM,
            // The band must begin beyond the one pixel of partial volume at the mask's edge,
            // or the lung's own blurred edge reads as disease outside it.
            Step::BorderCheck => px < tuning::BORDER_BAND_CU.0 as f64 / 10.0,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Step::DenseGroundGlass => {
                "joining dense ground glass to the lungs (lung filled with dense ground glass may be left out)"
            }
            Step::BorderCheck => {
                "the check for diseased-lung density just outside the mask (no segmentation-doubt from it)"
            }
        }
    }
}

/// `coarse-grid` naming the steps that did not run on this grid, with the scan's spacing.
pub(crate) fn warning(grid: &Grid) -> Option<Warning> {
    let skipped: Vec<&str> = STEPS
        .iter()
        .filter(|s| !s.runs(grid))
        .map(|s| s.name())
        .collect();
    if skipped.is_empty() {
        return None;
    }
    let sp = grid.g.spacing_mm;
    Some(Warning::new(
        "coarse-grid",
        format!(
            "the image's grid ({:.1} × {:.1} mm pixels, {:.1} mm slices; segmented at {:.1} mm pixels) \
             is too coarse for {}: skipped; lung boundaries blur over a pixel, so lung volume \
             and disease extent are less exact than on a finer reconstruction",
            sp[1],
            sp[2],
            sp[0],
            grid.ls[1].max(grid.ls[2]),
            skipped.join(", and ")
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ildtrack_volume::Geometry;

    fn grid(px: f64) -> Grid {
        Grid::new(Geometry::axial([5.0, px, px]), [4, 40, 40], [1, 1, 1])
    }

    #[test]
    fn steps_skip_on_pixels_coarser_than_they_need_and_the_warning_names_them() {
        assert!(STEPS.iter().all(|s| s.runs(&grid(1.4))));
        assert!(warning(&grid(1.4)).is_none());
        assert!(Step::DenseGroundGlass.runs(&grid(2.0)));
        assert!(!Step::BorderCheck.runs(&grid(2.0)));
        assert!(!Step::DenseGroundGlass.runs(&grid(3.0)));
        let w = warning(&grid(4.5)).expect("coarse");
        assert_eq!(w.code, "coarse-grid");
        assert!(w.message.contains("4.5 × 4.5 mm") && w.message.contains("dense ground glass"));
        assert!(w.message.contains("just outside the mask"));
    }
}
