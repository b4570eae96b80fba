//! Stage `airways`: the trachea and main bronchi, tracked from the neck and removed from the
//! air.
//!
//! Contract: in, the air in the body's core and the body; out, the lung candidates (air less
//! the dilated airways) and the dilated airways (kept out of the lungs later). Never removes:
//! air in a branch whose cross-section exceeds `airway_max_area_mm2` (it opened into the lung)
//! or that lies lateral of the hilum.

use super::body::Body;
use super::frame::Grid;
use super::tuning;
use crate::config::SegmentationParams;
use crate::error::AnalysisError;
use crate::plane;
use ildtrack_compute::{Backend, Ball, ComponentInfo, MaskOp};
use ndarray::{Array3, Axis};

/// The airways removed from the air.
pub(crate) struct Airways<B: Backend> {
    /// Air less the dilated airways.
    pub candidates: B::U8,
    /// The tracked airways dilated by [`tuning::AIRWAY_MARGIN_MM`]; `None` when none was found.
    pub dilated: Option<B::U8>,
    /// Tracked airway voxels (before dilation).
    pub voxels: usize,
}

pub(crate) fn remove_airways<B: Backend>(
    b: &B,
    grid: &Grid,
    air: &B::U8,
    body: &Body<B>,
    p: &SegmentationParams,
) -> Result<Airways<B>, AnalysisError> {
    let ls = grid.ls;
    let air_h = b.download_u8(air)?;
    let airway = track_airways(&air_h, &body.info, ls, p, grid.head_step() > 0);
    let voxels = airway.iter().filter(|&&v| v != 0).count();
    let dilated = if voxels > 0 {
        let a = b.upload_u8(airway.view())?;
        let r = tuning::AIRWAY_MARGIN_MM + 0.5 * ls[1].max(ls[2]);
        Some(b.dilate(&a, &Ball::new(r, ls))?)
    } else {
        None
    };
    let candidates = match &dilated {
        Some(a) => b.mask_op(air, a, MaskOp::AndNot)?,
        None => b.mask_op(air, air, MaskOp::And)?,
    };
    Ok(Airways {
        candidates,
        dilated,
        voxels,
    })
}

/// Trachea and main bronchi on the working grid (host): the small, central air region found
/// in the upper slices is tracked slice by slice towards the feet while its cross-section
/// stays below `airway_max_area_mm2`; a branch ends where it opens into the lung (larger) or
/// lies lateral of the hilum.
pub(crate) fn track_airways(
    air: &Array3<u8>,
    body: &ComponentInfo,
    ls: [f64; 3],
    p: &SegmentationParams,
    index_up_is_head: bool,
) -> Array3<u8> {
    let s = air.shape();
    let (nz, ny, nx) = (s[0], s[1], s[2]);
    let mut out = Array3::<u8>::zeros((nz, ny, nx));
    let px_mm2 = ls[1] * ls[2];
    let amax = (p.airway_max_area_mm2 / px_mm2).ceil() as usize;
    let amin = (tuning::AIRWAY_MIN_AREA_MM2 / px_mm2).ceil() as usize;
    let order: Vec<usize> = if index_up_is_head {
        (0..nz).rev().collect()
    } else {
        (0..nz).collect()
    };
    let slice =
        |z: usize| -> Vec<bool> { air.index_axis(Axis(0), z).iter().map(|&v| v != 0).collect() };
    let c = body.centroid_zyx();
    let width = (body.max_zyx[2] - body.min_zyx[2]) as f64;
    let half_w = width * tuning::AIRWAY_START_HALF_WIDTH;
    let half_d = (body.max_zyx[1] - body.min_zyx[1]) as f64 * tuning::AIRWAY_START_HALF_DEPTH;
    let lateral_max = width * tuning::AIRWAY_LATERAL_MAX;
    let search = ((nz as f64 * tuning::AIRWAY_SEARCH_SHARE).ceil() as usize).max(1);
    let mut start = None;
    for (k, &z) in order.iter().enumerate().take(search) {
        let m = slice(z);
        let mut best: Option<(f64, Vec<usize>)> = None;
        for comp in plane::components(&m, ny, nx) {
            if comp.len() < amin || comp.len() > amax {
                continue;
            }
            let (sy, sx) = comp.iter().fold((0.0, 0.0), |(a, b), &i| {
                (a + (i / nx) as f64, b + (i % nx) as f64)
            });
            let (cy, cx) = (sy / comp.len() as f64, sx / comp.len() as f64);
            if (cx - c[2]).abs() > half_w || (cy - c[1]).abs() > half_d {
                continue;
            }
            let d = (cx - c[2]).abs() * ls[2];
            if best.as_ref().is_none_or(|(bd, _)| d < *bd) {
                best = Some((d, comp));
            }
        }
        if let Some((_, comp)) = best {
            start = Some((k, comp));
            break;
        }
    }
    let Some((k0, comp)) = start else {
        return out;
    };
    let mut prev = comp;
    for &i in &prev {
        out[[order[k0], i / nx, i % nx]] = 1;
    }
    for &z in order.iter().skip(k0 + 1) {
        let m = slice(z);
        let mut seen = vec![false; ny * nx];
        let mut next = Vec::new();
        for &i in &prev {
            let (y, x) = ((i / nx) as isize, (i % nx) as isize);
            for (dy, dx) in [(0, 0), (-1, 0), (1, 0), (0, -1), (0, 1)] {
                let (qy, qx) = (y + dy, x + dx);
                if qy < 0 || qx < 0 || qy >= ny as isize || qx >= nx as isize {
                    continue;
                }
                let j = qy as usize * nx + qx as usize;
                if !m[j] || seen[j] {
                    continue;
                }
                match plane::flood(&m, ny, nx, j, amax) {
                    Some(region) => {
                        for &r in &region {
                            seen[r] = true;
                        }
                        let cx = region.iter().map(|&r| (r % nx) as f64).sum::<f64>()
                            / region.len().max(1) as f64;
                        if (cx - c[2]).abs() <= lateral_max {
                            next.extend(region);
                        }
                    }
                    None => seen[j] = true, // opens into the lung: this branch ends
                }
            }
        }
        if next.is_empty() {
            break;
        }
        for &i in &next {
            out[[z, i / nx, i % nx]] = 1;
        }
        prev = next;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body_info(nz: usize, ny: usize, nx: usize) -> ComponentInfo {
        ComponentInfo {
            voxels: (nz * ny * nx) as u64,
            min_zyx: [0, 0, 0],
            max_zyx: [nz - 1, ny - 1, nx - 1],
            sum_zyx: [
                ((nz - 1) as f64 / 2.0) * (nz * ny * nx) as f64,
                ((ny - 1) as f64 / 2.0) * (nz * ny * nx) as f64,
                ((nx - 1) as f64 / 2.0) * (nz * ny * nx) as f64,
            ],
        }
    }

    #[test]
    fn the_trachea_is_tracked_until_it_opens_into_the_lung() {
        // 1 mm voxels, 61 x 61 slices. Slices 9..5 (head first: index up is head): a central
        // 7 x 7 tube (49 mm²). Slice 4: the tube joins a 40 x 40 "lung" (too large: it opened).
        let (nz, ny, nx) = (10, 61, 61);
        let mut air = Array3::<u8>::zeros((nz, ny, nx));
        for z in 4..10 {
            for y in 27..34 {
                for x in 27..34 {
                    air[[z, y, x]] = 1;
                }
            }
        }
        for y in 10..50 {
            for x in 5..45 {
                air[[4, y, x]] = 1;
            }
        }
        let p = SegmentationParams::default();
        let out = track_airways(&air, &body_info(nz, ny, nx), [1.0; 3], &p, true);
        for z in 5..10 {
            assert_eq!(out[[z, 30, 30]], 1, "trachea in slice {z}");
        }
        assert_eq!(
            out.index_axis(Axis(0), 4)
                .iter()
                .filter(|&&v| v != 0)
                .count(),
            0
        );
        // Under 40 mm² nothing starts: a 5 x 5 tube is not a trachea.
        let mut thin = Array3::<u8>::zeros((nz, ny, nx));
        for z in 4..10 {
            for y in 28..33 {
                for x in 28..33 {
                    thin[[z, y, x]] = 1;
                }
            }
        }
        let out = track_airways(&thin, &body_info(nz, ny, nx), [1.0; 3], &p, true);
        assert_eq!(out.iter().filter(|&&v| v != 0).count(), 0);
    }

    #[test]
    fn an_air_tube_off_centre_is_not_the_trachea() {
        let (nz, ny, nx) = (6, 61, 61);
        let mut air = Array3::<u8>::zeros((nz, ny, nx));
        for z in 0..nz {
            for y in 27..34 {
                for x in 2..9 {
                    air[[z, y, x]] = 1;
                }
            }
        }
        let p = SegmentationParams::default();
        let out = track_airways(&air, &body_info(nz, ny, nx), [1.0; 3], &p, true);
        assert_eq!(out.iter().filter(|&&v| v != 0).count(), 0);
    }
}
