//! Stage `second_outline`: a side outlined again when its first outline cut dense tissue
//! (disease reaching the mediastinum or the diaphragm) or left a thick dense band between its
//! aerated lung and its ribs (disease the first outline did not touch).
//!
//! Contract: in, the first outline's result, the aerated lung it started from and its cut per
//! slice; out, the merged labels and the cut per side. The second outline takes the
//! mediastinum from the lungs' outline over [`tuning::OUTLINE_WINDOW_MM`] of slices (not behind
//! the front of the vertebral bodies), favours the wall side by
//! [`tuning::OUTLINE_WALL_FACTOR`], bounds the lung by the rib cage where its outline is hidden
//! and by the diaphragm dome. It replaces the first outline for a rib-gap side over all slices,
//! for a cut side only within [`tuning::OUTLINE_Z_MARGIN_MM`] of the run of cut slices around
//! the largest cut. Never runs on a scan without such a cut or band (it would take the liver
//! dome and heart wedges); never changes the side that was not outlined again.

use super::geometry::ChestGeometry;
use super::outline::{Pass, outline_pass};
use super::tuning::{self, is_bone};
use crate::dome::Dome;
use ndarray::Array3;
use rayon::prelude::*;

/// Why a side is outlined again.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Triggers {
    /// The first outline's cut is large against the lung ([`tuning::CUT_RATIO_WARN`]).
    pub cut_sides: [bool; 2],
    /// A thick dense band inside the ribs ([`tuning::RIB_GAP_TRIGGER`]), on a side not cut.
    pub gap_sides: [bool; 2],
}

impl Triggers {
    pub(crate) fn any(&self) -> bool {
        (0..2).any(|k| self.outlined(k))
    }
    pub(crate) fn outlined(&self, k: usize) -> bool {
        self.cut_sides[k] || self.gap_sides[k]
    }
}

/// The cut's size (pixels on the cut edge) as a length (mm) on one slice, an area (mm²) in
/// 3-D.
pub(crate) fn cut_mm(cut: u64, ls: [f64; 3], one_slice: bool) -> f64 {
    let px_mm = ls[1].max(ls[2]);
    if one_slice {
        cut as f64 * px_mm
    } else {
        cut as f64 * px_mm * ls[0]
    }
}

/// The cut's size against the lungs' (`lung_vox` working voxels): area / volume^(2/3) in 3-D,
/// length / area^(1/2) on one slice.
pub(crate) fn cut_ratio(cut: u64, lung_vox: f64, ls: [f64; 3], one_slice: bool) -> f64 {
    if lung_vox == 0.0 {
        0.0
    } else if one_slice {
        cut_mm(cut, ls, true) / (lung_vox * ls[1] * ls[2]).sqrt()
    } else {
        cut_mm(cut, ls, false) / (lung_vox * ls[0] * ls[1] * ls[2]).powf(2.0 / 3.0)
    }
}

/// Which sides the second outline takes, from the first outline's cut per side and the rib
/// gap; `lung_vox` is the lung mask's size after the first outline.
pub(crate) fn triggers(g: &ChestGeometry, first_cut: [u64; 2], lung_vox: f64) -> Triggers {
    let (ls, one_slice) = (g.grid.ls, g.grid.dims[0] == 1);
    let cut_sides =
        first_cut.map(|c| cut_ratio(c, lung_vox, ls, one_slice) >= tuning::CUT_RATIO_WARN);
    let gap_frac = [0, 1].map(|k| {
        let ml = g.aerated[k + 1] as f64 * g.grid.voxel_ml;
        if ml > 0.0 { g.rib_gap_ml[k] / ml } else { 0.0 }
    });
    let gap_sides = [0, 1].map(|k| gap_frac[k] >= tuning::RIB_GAP_TRIGGER && !cut_sides[k]);
    tracing::debug!(?gap_frac, ?first_cut, "rib gap and first-pass cut per side");
    Triggers {
        cut_sides,
        gap_sides,
    }
}

/// The slices where a cut side takes the second outline: the run of cut slices around the
/// largest cut (gaps up to `margin` slices; a stray cut far away does not widen it), and
/// `margin` slices beyond. None when nothing was cut.
pub(crate) fn cut_run(cuts: &[u64], margin: usize) -> Vec<bool> {
    let nz = cuts.len();
    let Some(peak) = (0..nz).max_by_key(|&z| cuts[z]).filter(|&z| cuts[z] > 0) else {
        return vec![false; nz];
    };
    let (mut lo, mut hi) = (peak, peak);
    while let Some(z) = (lo.saturating_sub(margin + 1)..lo)
        .rev()
        .find(|&z| cuts[z] > 0)
    {
        lo = z;
    }
    while let Some(z) = (hi + 1..(hi + margin + 2).min(nz)).find(|&z| cuts[z] > 0) {
        hi = z;
    }
    (0..nz)
        .map(|z| z + margin >= lo && z <= hi + margin)
        .collect()
}

/// Runs the second outline on `aerated` for the triggered sides and merges it into `lungs`.
/// Returns the cut per side afterwards.
pub(crate) fn second_outline(
    g: &ChestGeometry,
    lungs: &mut Array3<u8>,
    mut aerated: Array3<u8>,
    first_cut: &[[u64; 2]],
    first_domes: [Option<Dome>; 2],
    t: Triggers,
) -> [u64; 2] {
    let (ls, nz, nx) = (g.grid.ls, g.grid.dims[0], g.nx);
    let long = (tuning::OUTLINE_WINDOW_MM / ls[0]).round() as isize;
    let domes = [0usize, 1].map(|k| first_domes[k].filter(|_| t.outlined(k)));
    let mut outlines = g.outlines(long, true);
    // Behind the front of the vertebral bodies the space between the lungs' hulls is spine and
    // paravertebral gutter, not mediastinum: consolidation in the gutter stays in. Bone without
    // metal (rods, wires and leads are not the vertebral front).
    let centre_y = g.grid.lps(g.body_centre)[1];
    outlines.par_iter_mut().enumerate().for_each(|(z, o)| {
        let posterior_y = |i: usize| g.grid.lps([z as f64, (i / nx) as f64, (i % nx) as f64])[1];
        let spine = |i: usize| {
            g.columns.central[i % nx]
                && g.body[[z, i / nx, i % nx]] != 0
                && is_bone(g.hu[[z, i / nx, i % nx]])
        };
        not_behind_the_spine(&mut o.mediastinum, posterior_y, spine, centre_y);
    });
    let again = outline_pass(
        g,
        &mut aerated,
        &Pass {
            outlines: &outlines,
            pleura_window: long,
            wall_factor: tuning::OUTLINE_WALL_FACTOR,
            // A cut side: the consolidation lies in front of or behind the remaining aerated
            // lung; a rib-gap side keeps the test (heart wedges otherwise).
            lung_between_test: t.gap_sides,
            rib_bound: true,
            domes,
        },
    );
    let margin = (tuning::OUTLINE_Z_MARGIN_MM / ls[0]).round() as usize;
    let in_range: [Vec<bool>; 2] = [0, 1].map(|k| {
        if t.gap_sides[k] {
            vec![true; nz]
        } else {
            cut_run(&first_cut.iter().map(|c| c[k]).collect::<Vec<_>>(), margin)
        }
    });
    let redo = |k: usize, z: usize| t.outlined(k) && in_range[k][z];
    merge_outlines(lungs, &aerated, redo);
    [0, 1].map(|k| {
        if t.outlined(k) {
            (0..nz)
                .map(|z| {
                    if in_range[k][z] {
                        again[z][k]
                    } else {
                        first_cut[z][k]
                    }
                })
                .sum()
        } else {
            first_cut.iter().map(|c| c[k]).sum()
        }
    })
}

/// The mediastinum stops at the front of the vertebral bodies: the most anterior `spine` pixel
/// (central bone) behind the body's centre (`posterior_y` > `centre_y`, LPS +y is posterior);
/// behind it lie the spine and the paravertebral gutter, where consolidation stays in.
pub(crate) fn not_behind_the_spine(
    mediastinum: &mut [bool],
    posterior_y: impl Fn(usize) -> f64,
    spine: impl Fn(usize) -> bool,
    centre_y: f64,
) {
    let front = (0..mediastinum.len())
        .filter(|&i| spine(i))
        .map(&posterior_y)
        .filter(|&py| py > centre_y)
        .fold(f64::INFINITY, f64::min);
    if front.is_finite() {
        for (i, m) in mediastinum.iter_mut().enumerate() {
            if *m && posterior_y(i) > front {
                *m = false;
            }
        }
    }
}

/// Where `redo(side, z)`, the side's voxels come from `again`; elsewhere from `first`.
pub(crate) fn merge_outlines(
    first: &mut Array3<u8>,
    again: &Array3<u8>,
    redo: impl Fn(usize, usize) -> bool + Sync,
) {
    let side_of = |v: u8| (v == 1 || v == 2).then(|| v as usize - 1);
    first
        .outer_iter_mut()
        .into_par_iter()
        .zip(again.outer_iter().into_par_iter())
        .enumerate()
        .for_each(|(z, (mut first_s, again_s))| {
            first_s
                .iter_mut()
                .zip(again_s.iter())
                .for_each(|(first, &again_v)| {
                    let keep_first = side_of(*first).is_some_and(|k| !redo(k, z));
                    if !keep_first {
                        *first = if side_of(again_v).is_some_and(|k| redo(k, z)) {
                            again_v
                        } else {
                            0
                        };
                    }
                });
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cut_run_follows_the_largest_cut_and_ignores_a_stray_one() {
        // Cuts in slices 4-5 and 8 (gap 2 <= margin 2), a stray cut at 15.
        let mut cuts = vec![0u64; 20];
        cuts[4] = 3;
        cuts[5] = 9;
        cuts[8] = 1;
        cuts[15] = 2;
        let r = cut_run(&cuts, 2);
        let on: Vec<usize> = (0..20).filter(|&z| r[z]).collect();
        assert_eq!(on, (2..=10).collect::<Vec<_>>());
        assert!(cut_run(&[0, 0, 0], 2).iter().all(|&v| !v));
    }

    #[test]
    fn merging_takes_a_redone_side_from_the_second_outline_only_where_redone() {
        // One row of 4 voxels in 2 slices: first = [1, 1, 2, 0], again = [1, 0, 2, 1]; the
        // right side (0) redone in slice 0 only.
        let mut first =
            Array3::from_shape_vec((2, 1, 4), vec![1, 1, 2, 0, 1, 1, 2, 0]).expect("shape");
        let again = Array3::from_shape_vec((2, 1, 4), vec![1, 0, 2, 1, 1, 0, 2, 1]).expect("shape");
        merge_outlines(&mut first, &again, |k, z| k == 0 && z == 0);
        assert_eq!(
            first.as_slice().expect("standard"),
            &[1, 0, 2, 1, 1, 1, 2, 0]
        );
    }

    #[test]
    fn the_mediastinum_stops_at_the_front_of_the_spine() {
        // One column of 10 pixels, y = index (mm); all mediastinum; bone at 7-8 (spine) and
        // at 1 (sternum, in front of the centre at 5).
        let mut med = vec![true; 10];
        not_behind_the_spine(
            &mut med,
            |i| i as f64,
            |i| (7..9).contains(&i) || i == 1,
            5.0,
        );
        assert_eq!(
            med,
            [true, true, true, true, true, true, true, true, false, false]
        );
        // No spine behind the centre: unchanged.
        let mut med = vec![true; 10];
        not_behind_the_spine(&mut med, |i| i as f64, |i| i == 1, 5.0);
        assert!(med.iter().all(|&m| m));
    }

    #[test]
    fn the_cut_ratio_is_scale_free() {
        let ls = [2.0, 1.0, 1.0];
        // 3-D: 100 cut pixels = 200 mm²; 1000 voxels = 2000 mm³ -> 200 / 2000^(2/3).
        let r = cut_ratio(100, 1000.0, ls, false);
        assert!((r - 200.0 / 2000f64.powf(2.0 / 3.0)).abs() < 1e-12);
        // One slice: 10 pixels = 10 mm against sqrt(100 mm²).
        assert!((cut_ratio(10, 100.0, ls, true) - 1.0).abs() < 1e-12);
        assert_eq!(cut_ratio(10, 0.0, ls, true), 0.0);
    }
}
