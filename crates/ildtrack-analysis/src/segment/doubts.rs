//! Stage `doubts`: what the segmentation says about itself, and the chest wall handed to
//! quantification.
//!
//! Contract: in, the final lung labels and the chest geometry; out, `segmentation-doubt`
//! warnings (lungs vanishing between slices, one or unequal lungs, much dense tissue added,
//! a rib gap or a cut the outlines could not resolve, diseased-lung density just outside the
//! mask) and the chest wall (body tissue outside the lungs nearer the skin than the mid-line
//! band, in slices with lung). Changes no label.

use super::geometry::{ChestGeometry, SliceLungs};
use super::second::{Triggers, cut_mm};
use super::tuning;
use crate::plane;
use ildtrack_volume::{Warning, meets_image_edge};
use ndarray::{Array3, Axis};
use rayon::prelude::*;

/// A `segmentation-doubt` warning.
pub(crate) fn doubt(msg: impl Into<String>) -> Warning {
    Warning::new("segmentation-doubt", msg)
}

/// Per side, slices where the lung's section is under 1/[`tuning::VANISH_SMALL_DIVISOR`] of its
/// largest while sections over 1/[`tuning::VANISH_LARGE_DIVISOR`] of it lie within `gap` slices
/// on both sides: the body outline or the lung segmentation failed there.
pub(crate) fn vanished_slices(
    slices: &[SliceLungs],
    max_area: [usize; 2],
    gap: usize,
) -> [usize; 2] {
    let nz = slices.len();
    [0, 1].map(|k| {
        let big = |z: usize| {
            slices[z].area[k] * tuning::VANISH_LARGE_DIVISOR >= max_area[k] && max_area[k] > 0
        };
        (0..nz)
            .filter(|&z| {
                slices[z].area[k] * tuning::VANISH_SMALL_DIVISOR < max_area[k]
                    && (z.saturating_sub(gap)..z).any(big)
                    && (z + 1..(z + 1 + gap).min(nz)).any(big)
            })
            .count()
    })
}

pub(crate) fn vanish_doubt(g: &ChestGeometry) -> Option<Warning> {
    let gap = ((tuning::VANISH_WINDOW_MM / g.grid.ls[0]).round() as usize).max(1);
    let vanished = vanished_slices(&g.slices, g.max_area, gap);
    vanished.iter().any(|&n| n > 0).then(|| {
        doubt(format!(
            "the lungs vanish in {} slice(s) (right {}, left {}) between slices where they are \
             large: the body outline or the lung segmentation failed there (gas in the chest \
             wall can open the body's outline); lung volume and disease extent are \
             underestimated; check the QC images",
            vanished[0].max(vanished[1]),
            vanished[0],
            vanished[1]
        ))
    })
}

/// Per slice with lung: how much of the body's outline (pixels) lies on the image edge or
/// against blocks outside the reconstructed field of view — where the image, not the skin,
/// ends the body — within [`tuning::TRUNCATED_LUNG_REACH_MM`] of the lung (arms cut by the image
/// far from the chest do not count).
pub(crate) fn body_on_image_edge(
    body: &Array3<u8>,
    hu: &Array3<i16>,
    lungs: &Array3<u8>,
    w: [u32; 3],
) -> Vec<usize> {
    let (_, ny, nx) = body.dim();
    let reach = (tuning::TRUNCATED_LUNG_REACH_MM * 10.0) as u32;
    body.axis_iter(Axis(0))
        .into_par_iter()
        .zip(hu.axis_iter(Axis(0)).into_par_iter())
        .zip(lungs.axis_iter(Axis(0)).into_par_iter())
        .map(|((b, h), l)| {
            if l.iter().all(|&v| v == 0) {
                return 0;
            }
            let edge: Vec<usize> = b
                .indexed_iter()
                .filter(|&((y, x), &v)| v != 0 && meets_image_edge(h, y, x))
                .map(|((y, x), _)| y * nx + x)
                .collect();
            // The distance to the lung only where the body meets the image edge at all.
            if edge.is_empty() {
                return 0;
            }
            let lung: Vec<bool> = l.iter().map(|&v| v != 0).collect();
            let d = plane::chamfer_sweep(&lung, ny, nx, w);
            edge.iter().filter(|&&i| d[i] <= reach).count()
        })
        .collect()
}

/// Slices where the body runs off the image along at least [`tuning::TRUNCATED_EDGE_MM`] of its
/// outline near the lung (`edge_px` from [`body_on_image_edge`], pixels of `px_mm`).
pub(crate) fn cut_slices(edge_px: &[usize], px_mm: f64) -> Vec<bool> {
    edge_px
        .iter()
        .map(|&n| n as f64 * px_mm >= tuning::TRUNCATED_EDGE_MM)
        .collect()
}

/// `truncated-fov` when, in slices with lung, the body runs off the image along at least
/// [`tuning::TRUNCATED_EDGE_MM`] of its outline (in two slices or more on 3-D scans).
pub(crate) fn truncation_warning(edge_px: &[usize], px_mm: f64) -> Option<Warning> {
    let cut: Vec<f64> = edge_px
        .iter()
        .map(|&n| n as f64 * px_mm)
        .filter(|&mm| mm >= tuning::TRUNCATED_EDGE_MM)
        .collect();
    let needed = if edge_px.len() == 1 { 1 } else { 2 };
    (cut.len() >= needed).then(|| {
        Warning::new(
            "truncated-fov",
            format!(
                "the body runs off the reconstructed image in {} slice(s) with lung (up to {:.0} mm \
                 of its outline on the image edge): the field of view cuts the patient; tissue at \
                 the image edge is not skin, the lung mask may reach into it or miss lung cut off \
                 by the image; check the QC images",
                cut.len(),
                cut.iter().fold(0.0f64, |a, &b| a.max(b))
            ),
        )
    })
}

/// Chest wall: body voxels outside the lungs nearer the skin than the mid-line band, in slices
/// whose wall distance was measured (slices with lung). Holds subpleural lenses.
pub(crate) fn chest_wall(g: &ChestGeometry, lungs: &Array3<u8>) -> Array3<u8> {
    let ld = g.grid.dims;
    let nx = g.nx;
    let to_midline = &g.columns.beyond_midline_cu;
    let mut wall = Array3::<u8>::zeros((ld[0], ld[1], ld[2]));
    wall.axis_iter_mut(Axis(0))
        .into_par_iter()
        .enumerate()
        .for_each(|(z, mut s)| {
            let d_all = &g.walls[z].depth;
            if d_all.is_empty() {
                return;
            }
            let body = g.body.index_axis(Axis(0), z);
            let lung = lungs.index_axis(Axis(0), z);
            for (i, ((o, &bv), &lv)) in s.iter_mut().zip(body.iter()).zip(lung.iter()).enumerate() {
                *o = u8::from(bv != 0 && lv == 0 && d_all[i] <= to_midline[i % nx]);
            }
        });
    wall
}

/// What the final mask's sizes (`counts` per label) say against the aerated lung it started
/// from (`aerated` per label): no lung, one lung, very unequal lungs, much non-aerated tissue
/// added.
pub(crate) fn volume_doubts(voxel_ml: f64, aerated: [u64; 3], counts: [u64; 3]) -> Vec<Warning> {
    let mut warnings = Vec::new();
    let (r_ml, l_ml) = (counts[1] as f64 * voxel_ml, counts[2] as f64 * voxel_ml);
    if counts[1] == 0 && counts[2] == 0 {
        warnings.push(doubt(
            "no lung found: no air-filled region inside the rib cage passed the lung tests \
             (a slice below or above the lungs, or lungs filled with dense disease)",
        ));
    } else if counts[1] == 0 || counts[2] == 0 {
        warnings.push(doubt(format!(
            "only one lung found ({} lung {:.0} mL); the other is absent, collapsed or outside the scan",
            if counts[1] == 0 { "left" } else { "right" },
            r_ml.max(l_ml)
        )));
    } else if r_ml.min(l_ml) < tuning::UNEQUAL_LUNGS_SHARE * r_ml.max(l_ml) {
        warnings.push(doubt(format!(
            "lung volumes very unequal (right {r_ml:.0} mL, left {l_ml:.0} mL): collapse, resection or a segmentation error"
        )));
    }
    let total_aerated = (aerated[1] + aerated[2]).max(1) as f64;
    let dense_added = (counts[1] + counts[2]) as f64 - total_aerated;
    if dense_added > tuning::DENSE_ADDED_WARN * total_aerated {
        warnings.push(doubt(format!(
            "{:.0} % of the lung mask is non-aerated tissue added from the chest-wall side; check the QC images",
            100.0 * dense_added / (counts[1] + counts[2]) as f64
        )));
    }
    warnings
}

fn side_name(sides: [bool; 2]) -> &'static str {
    match sides {
        [true, true] => "right and left",
        [true, false] => "right",
        _ => "left",
    }
}

/// The second outline's doubts: a rib gap, a cut (first and final size).
pub(crate) fn outline_doubts(
    g: &ChestGeometry,
    t: &Triggers,
    first_total: u64,
    now_total: u64,
) -> Vec<Warning> {
    let mut warnings = Vec::new();
    let one_slice = g.grid.dims[0] == 1;
    // In cm (one slice) or cm² (3-D).
    let cut_size = |c: u64| -> f64 {
        let mm = cut_mm(c, g.grid.ls, one_slice);
        if one_slice { mm / 10.0 } else { mm / 100.0 }
    };
    if t.gap_sides.iter().any(|&s| s) {
        warnings.push(doubt(format!(
            "dense tissue more than {:.0} mm thick lies between the {} lung and its ribs \
             ({:.0} mL beyond that thickness): consolidation or pleural effusion along the chest \
             wall; the lung was outlined again out to the ribs, but part of it may still be \
             outside the mask (or effusion inside it); check the QC images",
            tuning::RIB_GAP_MM,
            side_name(t.gap_sides),
            (0..2)
                .filter(|&k| t.gap_sides[k])
                .map(|k| g.rib_gap_ml[k])
                .sum::<f64>()
        )));
    }
    if t.cut_sides.iter().any(|&c| c) {
        warnings.push(doubt(format!(
            "dense tissue inside the {} lung's outline was split between chest wall and \
             mediastinum over {:.0} {unit}: consolidation reaches the mediastinum or the \
             diaphragm; the lung was outlined again with the mediastinum from the slices above \
             (cut now {:.0} {unit}), but part of it may still be outside the mask and the lung \
             volume and disease extent underestimated; check the QC images",
            side_name(t.cut_sides),
            cut_size(first_total),
            cut_size(now_total),
            unit = if one_slice { "cm" } else { "cm²" }
        )));
    }
    warnings
}

/// Disease left outside the mask: the share of the in-body band
/// [`tuning::BORDER_BAND_CU`] outside the lungs (in-plane) with diseased-lung density.
pub(crate) fn border_doubt(band: u64, lungish: u64) -> Option<Warning> {
    (band > 0 && lungish as f64 >= tuning::BORDER_LUNGISH_WARN * band as f64).then(|| {
        doubt(format!(
            "{:.0} % of the tissue 2-6 mm outside the lung mask has the density of diseased lung \
             ({} to {} HU): dense disease (consolidation, crazy paving) may be outside the mask, and \
             the lung volume and disease extent underestimated; check the QC images",
            100.0 * lungish as f64 / band as f64,
            tuning::BORDER_LUNGISH_HU.0,
            tuning::BORDER_LUNGISH_HU.1
        ))
    })
}

/// Voxels (in the body) in the band [`tuning::BORDER_BAND_CU`] outside the lung mask in-plane,
/// and how many of them have the density of diseased lung ([`tuning::BORDER_LUNGISH_HU`]): a
/// mask that stops inside dense disease is surrounded by it; one that reaches the pleura is
/// surrounded by chest wall and mediastinum.
pub(crate) fn lung_density_outside(
    lungs: &Array3<u8>,
    body: &Array3<u8>,
    hu: &Array3<i16>,
    w: [u32; 3],
) -> (u64, u64) {
    let [_, ny, nx] = [lungs.shape()[0], lungs.shape()[1], lungs.shape()[2]];
    let (b0, b1) = tuning::BORDER_BAND_CU;
    // Pixels farther than the band from the lungs' bounding box cannot be in it: the distance
    // is taken in the box grown by that much.
    let grow = [
        b1 as usize / w[0] as usize + 1,
        b1 as usize / w[1] as usize + 1,
    ];
    let (h0, h1) = tuning::BORDER_LUNGISH_HU;
    (0..lungs.shape()[0])
        .into_par_iter()
        .map(|z| {
            let sl = lungs.index_axis(Axis(0), z);
            let (mut y0, mut y1, mut x0, mut x1) = (ny, 0, nx, 0);
            for ((y, x), &v) in sl.indexed_iter() {
                if v != 0 {
                    (y0, y1, x0, x1) = (y0.min(y), y1.max(y + 1), x0.min(x), x1.max(x + 1));
                }
            }
            if y0 >= y1 {
                return (0, 0);
            }
            let (y0, y1) = (y0.saturating_sub(grow[0]), (y1 + grow[0]).min(ny));
            let (x0, x1) = (x0.saturating_sub(grow[1]), (x1 + grow[1]).min(nx));
            let (by, bx) = (y1 - y0, x1 - x0);
            let lung: Vec<bool> = (0..by * bx)
                .map(|i| sl[[y0 + i / bx, x0 + i % bx]] != 0)
                .collect();
            let d = plane::chamfer_sweep(&lung, by, bx, w);
            let (bs, hs) = (body.index_axis(Axis(0), z), hu.index_axis(Axis(0), z));
            let (mut band, mut lungish) = (0u64, 0u64);
            for (i, &dv) in d.iter().enumerate() {
                let (y, x) = (y0 + i / bx, x0 + i % bx);
                if bs[[y, x]] != 0 && (b0..=b1).contains(&dv) {
                    band += 1;
                    lungish += u64::from((h0..=h1).contains(&hs[[y, x]]));
                }
            }
            (band, lungish)
        })
        .reduce(|| (0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ildtrack_volume::OUTSIDE_FOV_HU;

    fn slices(areas: &[usize]) -> Vec<SliceLungs> {
        areas
            .iter()
            .map(|&a| SliceLungs {
                hull: [Vec::new(), Vec::new()],
                area: [a, 100],
            })
            .collect()
    }

    #[test]
    fn a_lung_vanishing_between_large_sections_is_counted() {
        let s = slices(&[100, 90, 5, 95, 100, 3]);
        // Slice 2 vanished between large ones; slice 5 is an end, not a gap.
        assert_eq!(vanished_slices(&s, [100, 100], 1), [1, 0]);
        assert_eq!(
            vanished_slices(&s, [0, 100], 1),
            [0, 0],
            "no lung: nothing vanished"
        );
    }

    #[test]
    fn lung_density_in_the_band_outside_the_mask_is_counted() {
        // One slice, 1 mm pixels: a lung square; the ring 2-6 mm outside it holds -500 HU
        // tissue on the left half and +40 HU elsewhere.
        let (ny, nx) = (40, 40);
        let mut lungs = Array3::<u8>::zeros((1, ny, nx));
        let mut hu = Array3::<i16>::from_elem((1, ny, nx), 40);
        for y in 15..25 {
            for x in 15..25 {
                lungs[[0, y, x]] = 1;
            }
        }
        for y in 0..ny {
            for x in 0..20 {
                if lungs[[0, y, x]] == 0 {
                    hu[[0, y, x]] = -500;
                }
            }
        }
        let body = Array3::<u8>::ones((1, ny, nx));
        let w = plane::chamfer_weights([1.0, 1.0]);
        let (band, lungish) = lung_density_outside(&lungs, &body, &hu, w);
        assert!(
            band > 0 && lungish > 0 && lungish < band,
            "{band} {lungish}"
        );
        assert!(border_doubt(band, lungish).is_some());
        assert!(border_doubt(100, 7).is_none());
        assert!(border_doubt(0, 0).is_none());
    }

    #[test]
    fn a_body_running_off_the_image_is_a_truncated_field_of_view() {
        // Two slices of 10 x 10: the body fills columns 0..8 (runs off the left edge), lung in
        // the middle; in the second slice the right columns are outside the field of view and
        // the body reaches them.
        let mut body = Array3::<u8>::zeros((2, 10, 10));
        let mut hu = Array3::<i16>::zeros((2, 10, 10));
        let mut lungs = Array3::<u8>::zeros((2, 10, 10));
        for z in 0..2 {
            for y in 2..8 {
                for x in 0..8 {
                    body[[z, y, x]] = 1;
                }
            }
            lungs[[z, 5, 4]] = 1;
        }
        for y in 0..10 {
            hu[[1, y, 8]] = OUTSIDE_FOV_HU;
            hu[[1, y, 9]] = OUTSIDE_FOV_HU;
        }
        let w = plane::chamfer_weights([5.0, 5.0]);
        assert_eq!(body_on_image_edge(&body, &hu, &lungs, w), vec![6, 12]);
        // The same contact far from the lung (arms cut by the image): not counted.
        let far = plane::chamfer_weights([20.0, 20.0]);
        assert_eq!(body_on_image_edge(&body, &hu, &lungs, far), vec![0, 0]);
        assert!(truncation_warning(&[6, 12], 5.0).is_some());
        // The slices the rib gap leaves out: those with 20 mm or more of body on the edge.
        assert_eq!(cut_slices(&[6, 12, 0], 2.0), vec![false, true, false]);
        assert!(
            truncation_warning(&[6, 0], 5.0).is_none(),
            "one slice of a 3-D scan"
        );
        assert!(
            truncation_warning(&[3, 3], 5.0).is_none(),
            "a few mm of contact"
        );
        assert!(truncation_warning(&[6], 5.0).is_some(), "one-slice input");
        // A body inside the image: no contact.
        let mut inner = Array3::<u8>::zeros((1, 10, 10));
        inner[[0, 4, 4]] = 1;
        assert_eq!(
            body_on_image_edge(&inner, &Array3::zeros((1, 10, 10)), &inner, w),
            vec![0]
        );
    }

    #[test]
    fn mask_sizes_raise_the_right_doubts() {
        let says = |w: Vec<Warning>, what: &str| w.len() == 1 && w[0].message.contains(what);
        assert!(says(
            volume_doubts(1.0, [0, 100, 100], [0, 0, 0]),
            "no lung found"
        ));
        assert!(says(
            volume_doubts(1.0, [0, 100, 0], [0, 100, 0]),
            "only one lung found (right"
        ));
        assert!(says(
            volume_doubts(1.0, [0, 100, 15], [0, 100, 15]),
            "very unequal"
        ));
        assert!(volume_doubts(1.0, [0, 100, 100], [0, 100, 100]).is_empty());
        // Dense tissue added: 35 % of the aerated lung is the limit.
        assert!(volume_doubts(1.0, [0, 100, 100], [0, 135, 135]).is_empty());
        assert!(says(
            volume_doubts(1.0, [0, 100, 100], [0, 140, 140]),
            "non-aerated tissue added"
        ));
        assert_eq!(side_name([true, false]), "right");
        assert_eq!(side_name([false, true]), "left");
        assert_eq!(side_name([true, true]), "right and left");
    }
}
