//! Stage `cavity`: dense tissue the final mask left out where that side's lung goes on around
//! it — probably lung the outlines refused (consolidation against the mediastinum, the spine,
//! the diaphragm or the wall).
//!
//! Contract: in, the final lung labels, the body, the working-grid HU and the tracked airways;
//! out, per side and zone the volume (mL) of suspected lung outside the mask, and a
//! `segmentation-doubt` naming side, zone and volume where it reaches
//! [`tuning::CAVITY_DOUBT_ML`]. Changes no label.
//!
//! A voxel is suspected for a side when it is outside every lung, inside the body, of a density
//! diseased lung can have ([`tuning::CAVITY_DENSE_HU`]), not airway, and lies in a hollow of
//! that side's lung in both directions: the lung lies within [`tuning::CAVITY_Z_REACH_MM`]
//! towards the head *and* towards the feet of it (the same column), and the voxel is inside the
//! in-plane closing of the side's lung by a disk of [`tuning::CAVITY_CLOSING_MM`]. A lesion that
//! replaced lung leaves such a hollow; the heart's border, the aorta and the dome are broad
//! impressions that fail at least one of the two. The hilum's vessels and the aortic arch do
//! pass both on real chests, which is why the doubt needs a volume above what they make.

use super::tuning;
use crate::plane;
use ildtrack_volume::Warning;
use ndarray::{Array3, Axis};
use rayon::prelude::*;

/// Suspected lung outside the mask (mL) per side (0 right, 1 left) and zone (0 upper,
/// 1 middle, 2 lower).
pub(crate) type SideZoneMl = [[f64; 3]; 2];

/// What the check reads.
pub(crate) struct CavityInputs<'a> {
    /// Final labels: 0 background, 1 right, 2 left.
    pub lungs: &'a Array3<u8>,
    pub body: &'a Array3<u8>,
    pub hu: &'a Array3<i16>,
    pub airways: Option<&'a Array3<u8>>,
    /// Working-grid spacing (z, y, x) in mm.
    pub ls: [f64; 3],
    pub voxel_ml: f64,
    /// +1 where the head lies towards higher slice indices, else −1.
    pub head_step: isize,
}

/// Per voxel, 1 where the side `label` of `lungs` is absent but lies within `reach` slices on
/// both sides along z, in the same column; else 0. One byte per voxel: the sweep towards higher
/// z stores how far back the lung was seen, the sweep back overwrites it with the answer.
fn lung_on_both_sides(lungs: &Array3<u8>, label: u8, reach: usize) -> Array3<u8> {
    let (nz, ny, nx) = lungs.dim();
    // Only whether the lung is within `reach` matters, so distances are capped.
    let cap = reach.min(u8::MAX as usize - 1) as u8 + 1;
    let mut out = Array3::<u8>::from_elem((nz, ny, nx), cap);
    let mut last = vec![cap; ny * nx];
    for z in 0..nz {
        let l = lungs.index_axis(Axis(0), z);
        let mut o = out.index_axis_mut(Axis(0), z);
        for (i, (ov, &lv)) in o.iter_mut().zip(l.iter()).enumerate() {
            *ov = last[i];
            last[i] = if lv == label {
                1
            } else {
                last[i].saturating_add(1).min(cap)
            };
        }
    }
    last.fill(cap);
    for z in (0..nz).rev() {
        let l = lungs.index_axis(Axis(0), z);
        let mut o = out.index_axis_mut(Axis(0), z);
        for (i, (ov, &lv)) in o.iter_mut().zip(l.iter()).enumerate() {
            *ov = u8::from(lv != label && *ov < cap && last[i] < cap);
            last[i] = if lv == label {
                1
            } else {
                last[i].saturating_add(1).min(cap)
            };
        }
    }
    out
}

/// The closing of `mask` (one slice) by a disk of radius `r_cu` (chamfer units).
fn closed(mask: &[bool], ny: usize, nx: usize, w: [u32; 3], r_cu: u32) -> Vec<bool> {
    let to_mask = plane::chamfer_sweep(mask, ny, nx, w);
    let outside: Vec<bool> = to_mask.iter().map(|&d| d > r_cu).collect();
    plane::chamfer_sweep(&outside, ny, nx, w)
        .into_iter()
        .map(|d| d > r_cu)
        .collect()
}

/// Suspected lung outside the mask per side and zone (see the module doc). Zones are equal
/// thirds of each side's own z extent, upper towards the head, as in quantification.
pub(crate) fn suspected_lung(c: &CavityInputs) -> SideZoneMl {
    let (nz, ny, nx) = c.lungs.dim();
    let mut ml = [[0.0; 3]; 2];
    // Along z the check needs slices on both sides; one slice says nothing.
    if nz < 3 || ny == 0 || nx == 0 || c.ls.iter().any(|&s| s.is_nan() || s <= 0.0) {
        return ml;
    }
    let reach = (tuning::CAVITY_Z_REACH_MM / c.ls[0]).round().max(1.0) as usize;
    let r_cu = (tuning::CAVITY_CLOSING_MM * 10.0).round() as u32;
    let w = plane::chamfer_weights([c.ls[1], c.ls[2]]);
    let (lo, hi) = tuning::CAVITY_DENSE_HU;
    for (k, side_ml) in ml.iter_mut().enumerate() {
        let label = k as u8 + 1;
        let with: Vec<usize> = (0..nz)
            .filter(|&z| c.lungs.index_axis(Axis(0), z).iter().any(|&v| v == label))
            .collect();
        let (Some(&z0), Some(&z1)) = (with.first(), with.last()) else {
            continue;
        };
        let along_z = lung_on_both_sides(c.lungs, label, reach);
        let per_slice: Vec<u64> = (z0..=z1)
            .into_par_iter()
            .map(|z| {
                let zc = along_z.index_axis(Axis(0), z);
                if !zc.iter().any(|&v| v != 0) {
                    return 0;
                }
                let all = c.lungs.index_axis(Axis(0), z);
                let l: Vec<bool> = all.iter().map(|&v| v == label).collect();
                let cl = closed(&l, ny, nx, w, r_cu);
                let (b, h) = (c.body.index_axis(Axis(0), z), c.hu.index_axis(Axis(0), z));
                let air = c.airways.map(|a| a.index_axis(Axis(0), z));
                zc.indexed_iter()
                    .filter(|&((y, x), &v)| {
                        v != 0
                            && cl[y * nx + x]
                            && all[[y, x]] == 0
                            && b[[y, x]] != 0
                            && (lo..=hi).contains(&h[[y, x]])
                            && air.as_ref().is_none_or(|a| a[[y, x]] == 0)
                    })
                    .count() as u64
            })
            .collect();
        let n = (z1 - z0 + 1) as f64;
        for (j, &count) in per_slice.iter().enumerate() {
            let third = ((3.0 * j as f64 / n).floor() as usize).min(2);
            let zone = if c.head_step > 0 { 2 - third } else { third };
            side_ml[zone] += count as f64 * c.voxel_ml;
        }
    }
    ml
}

const ZONES: [&str; 3] = ["upper", "middle", "lower"];
const SIDES: [&str; 2] = ["right", "left"];

/// `segmentation-doubt` naming every side and zone whose suspected lung reaches
/// [`tuning::CAVITY_DOUBT_ML`].
pub(crate) fn cavity_doubt(ml: &SideZoneMl) -> Option<Warning> {
    let places: Vec<String> = (0..2)
        .flat_map(|k| (0..3).map(move |z| (k, z)))
        .filter(|&(k, z)| ml[k][z] >= tuning::CAVITY_DOUBT_ML)
        .map(|(k, z)| format!("{} {} zone ({:.0} mL)", SIDES[k], ZONES[z], ml[k][z]))
        .collect();
    (!places.is_empty()).then(|| {
        super::doubts::doubt(format!(
            "tissue of diseased-lung density ({} to {} HU) lies outside the lung mask where the \
             lung goes on around it (above, below and to both sides): {}; consolidation may have \
             been left out of the mask there, and that side's lung volume and disease extent \
             underestimated; check the QC images",
            tuning::CAVITY_DENSE_HU.0,
            tuning::CAVITY_DENSE_HU.1,
            places.join(", ")
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A box-shaped right lung (slices 2..18, rows 10..50, columns 5..30) in a body of soft
    /// tissue, 2 mm voxels; `bite` carves a block out of it (dense tissue, not lung).
    fn chest(bite: Option<([usize; 2], [usize; 2], [usize; 2])>) -> (Array3<u8>, Array3<i16>) {
        let (nz, ny, nx) = (20, 60, 40);
        let mut lungs = Array3::<u8>::zeros((nz, ny, nx));
        let mut hu = Array3::<i16>::from_elem((nz, ny, nx), 40);
        for z in 2..18 {
            for y in 10..50 {
                for x in 5..30 {
                    lungs[[z, y, x]] = 1;
                    hu[[z, y, x]] = -850;
                }
            }
        }
        if let Some((zr, yr, xr)) = bite {
            for z in zr[0]..zr[1] {
                for y in yr[0]..yr[1] {
                    for x in xr[0]..xr[1] {
                        lungs[[z, y, x]] = 0;
                        hu[[z, y, x]] = -20;
                    }
                }
            }
        }
        (lungs, hu)
    }

    fn run(lungs: &Array3<u8>, hu: &Array3<i16>, head_step: isize) -> SideZoneMl {
        let body = Array3::<u8>::ones(lungs.dim());
        suspected_lung(&CavityInputs {
            lungs,
            body: &body,
            hu,
            airways: None,
            ls: [2.0; 3],
            voxel_ml: 0.008,
            head_step,
        })
    }

    #[test]
    fn a_hollow_the_lung_goes_on_around_is_suspected_in_its_zone() {
        // A 4 × 10 × 8 voxel lesion against the lung's medial face (x 22..30 of 5..30) in
        // slices 13..17 of 2..18: the top third of the lung when the head is towards higher z.
        let (lungs, hu) = chest(Some(([13, 17], [20, 30], [22, 30])));
        let ml = run(&lungs, &hu, 1);
        let want = (4 * 10 * 8) as f64 * 0.008;
        // The lung lies above (slice 17) and below (slice 12) and on both sides in-plane (rows
        // outside 20..30), so the hollow is found whole; the part of the lesion in the face's
        // open side (x 29, beyond the closing's reach) may be missed.
        assert!(
            ml[0][0] >= 0.8 * want && ml[0][0] <= want + 1e-9,
            "{ml:?} vs {want}"
        );
        assert_eq!(ml[1], [0.0; 3], "no left lung, nothing suspected there");
        // Head towards lower z: the same slices are the lower zone.
        let flipped = run(&lungs, &hu, -1);
        assert!((flipped[0][2] - ml[0][0]).abs() < 1e-9, "{flipped:?}");
    }

    #[test]
    fn soft_tissue_beside_an_intact_lung_is_not_suspected() {
        // The box lung in soft tissue: every outside voxel is dense, but none lies in a hollow.
        let (lungs, hu) = chest(None);
        assert_eq!(run(&lungs, &hu, 1), [[0.0; 3]; 2]);
        // A hollow that reaches the lung's end along z (slices 14..18 of 2..18) has no lung
        // beyond it: an impression (the dome, the apex), not suspected.
        let (lungs, hu) = chest(Some(([14, 18], [20, 30], [22, 30])));
        assert_eq!(run(&lungs, &hu, 1)[0], [0.0; 3]);
        // Bone in a hollow is not of diseased lung's density.
        let (lungs, mut hu) = chest(Some(([8, 12], [20, 30], [22, 30])));
        hu.mapv_inplace(|h| if h == -20 { 400 } else { h });
        assert_eq!(run(&lungs, &hu, 1)[0], [0.0; 3]);
    }

    #[test]
    fn one_slice_or_an_empty_grid_suspects_nothing() {
        let (lungs, hu) = chest(Some(([8, 12], [20, 30], [22, 30])));
        let one = lungs.slice(ndarray::s![9..10, .., ..]).to_owned();
        let one_hu = hu.slice(ndarray::s![9..10, .., ..]).to_owned();
        assert_eq!(run(&one, &one_hu, 1), [[0.0; 3]; 2]);
        let empty = Array3::<u8>::zeros((0, 0, 0));
        assert_eq!(run(&empty, &Array3::zeros((0, 0, 0)), 1), [[0.0; 3]; 2]);
    }

    #[test]
    fn the_doubt_names_side_zone_and_volume_at_its_threshold() {
        let t = tuning::CAVITY_DOUBT_ML;
        assert!(cavity_doubt(&[[0.0; 3]; 2]).is_none());
        assert!(cavity_doubt(&[[t - 1.0, 0.0, 0.0], [0.0; 3]]).is_none());
        let w = cavity_doubt(&[[0.0; 3], [0.0, 0.0, t + 20.0]]).expect("doubt");
        assert_eq!(w.code, "segmentation-doubt");
        assert!(
            w.message
                .contains(&format!("left lower zone ({:.0} mL)", t + 20.0)),
            "{}",
            w.message
        );
        assert!(!w.message.contains("right"), "{}", w.message);
    }
}
