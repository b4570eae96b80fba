//! Stage `sides`: right and left lung.
//!
//! Contract: in, the lung components and the body; out, the lung labels (1 right, 2 left) on
//! the working grid and the kept components' bounding boxes. A component whose centroid lies
//! on the patient's right is right lung; one component spanning the mid-line (lungs touching)
//! is split at its junctions (eroded cores, one on each side; every voxel to the core it
//! reaches first through the lung), or at the body mid-line with a doubt when no junction is
//! found. Never removes: any voxel of a kept component.

use super::body::Body;
use super::candidates::LungComponents;
use super::doubts::doubt;
use super::frame::Grid;
use super::tuning;
use crate::error::AnalysisError;
use ildtrack_compute::{Backend, ComponentInfo, Connectivity};
use ildtrack_volume::Warning;
use ndarray::Array3;

/// Lung labels (0 none, 1 right, 2 left) and the kept components' bounding boxes (inclusive).
pub(crate) struct Sides<B: Backend> {
    pub lungs: B::U8,
    pub boxes: Vec<([usize; 3], [usize; 3])>,
}

/// A component spanning the body's mid-line and wider than [`tuning::SPANNING_BODY_SHARE`] of
/// the body holds both lungs.
pub(crate) fn spans_both_sides(x_range: (f64, f64), centre_x: f64, body_width_mm: f64) -> bool {
    let (lx0, lx1) = x_range;
    (lx1 - lx0) > tuning::SPANNING_BODY_SHARE * body_width_mm && lx0 < centre_x && lx1 > centre_x
}

pub(crate) fn assign_sides<B: Backend>(
    b: &B,
    grid: &Grid,
    found: LungComponents<B>,
    body: &Body<B>,
    warnings: &mut Vec<Warning>,
) -> Result<Sides<B>, AnalysisError> {
    let LungComponents {
        labels,
        infos,
        kept,
    } = found;
    let centre_x = body.centre_x;
    let side_of = |c: &ComponentInfo| {
        if grid.lps_x(c.centroid_zyx()) < centre_x {
            1u8
        } else {
            2u8
        }
    };
    let largest = &infos[kept[0]];
    let spans = spans_both_sides(grid.x_range(largest), centre_x, body.width_mm);
    let mut split: Option<B::U8> = None; // 1 where the largest component goes right
    if spans {
        let mut lut = vec![0u8; infos.len() + 1];
        lut[kept[0] + 1] = 1;
        let comp = b.map_labels(&labels, &lut)?;
        split = split_touching(b, &comp, grid, centre_x, largest.voxels)?;
        if split.is_none() {
            warnings.push(doubt(
                "the lungs touch and could not be separated at a junction; split at the body mid-line",
            ));
        }
    }
    let mut side_lut = vec![0u8; infos.len() + 1];
    for (k, &i) in kept.iter().enumerate() {
        side_lut[i + 1] = if k == 0 && spans {
            3
        } else {
            side_of(&infos[i])
        };
    }
    let mut lungs = b.map_labels(&labels, &side_lut)?;
    drop(labels);
    if spans {
        let goes_right = match split {
            Some(s) => s,
            None => midline_mask(b, grid, centre_x)?,
        };
        // value 3 -> 1 (right) or 2 (left); others unchanged.
        let mut lut2 = vec![0u8; 4 * 2];
        for v in 0..4u8 {
            for r in 0..2u8 {
                lut2[(v * 2 + r) as usize] = if v == 3 {
                    if r == 1 { 1 } else { 2 }
                } else {
                    v
                };
            }
        }
        lungs = b.combine_u8(&lungs, &goes_right, 2, &lut2)?;
    }
    let boxes = kept
        .iter()
        .map(|&i| (infos[i].min_zyx, infos[i].max_zyx))
        .collect();
    Ok(Sides { lungs, boxes })
}

/// 1 where the voxel lies on the patient's right of the body mid-line.
fn midline_mask<B: Backend>(b: &B, grid: &Grid, centre_x: f64) -> Result<B::U8, AnalysisError> {
    let ld = grid.dims;
    let m = Array3::from_shape_fn((ld[0], ld[1], ld[2]), |(z, y, x)| {
        u8::from(grid.lps_x([z as f64, y as f64, x as f64]) < centre_x)
    });
    Ok(b.upload_u8(m.view())?)
}

/// Two eroded cores split touching lungs when the smaller holds at least
/// 1/[`tuning::SPLIT_CORE_RATIO`] of the larger, they lie on either side of the mid-line, and
/// their x-ranges overlap by at most [`tuning::MAX_CORE_OVERLAP`] of their joint span (a core
/// still reaching far across holds both lungs joined over a broad junction).
pub(crate) fn cores_split_the_lungs(
    voxels: [u64; 2],
    centroid_x: [f64; 2],
    right_range: (f64, f64),
    left_range: (f64, f64),
    centre_x: f64,
) -> bool {
    if voxels[1] * tuning::SPLIT_CORE_RATIO < voxels[0] {
        return false;
    }
    if (centroid_x[0] - centre_x) * (centroid_x[1] - centre_x) >= 0.0 {
        return false;
    }
    let ((r0, r1), (l0, l1)) = (right_range, left_range);
    r1 - l0 <= tuning::MAX_CORE_OVERLAP * (l1 - r0)
}

/// Splits one component spanning both sides: erode (distance threshold) until it falls into two
/// large cores on either side of the mid-line ([`cores_split_the_lungs`]); every voxel goes to
/// the core it reaches first through the lung. Returns a mask that is 1 where the voxel goes to
/// the right lung.
fn split_touching<B: Backend>(
    b: &B,
    comp: &B::U8,
    grid: &Grid,
    centre_x: f64,
    voxels: u64,
) -> Result<Option<B::U8>, AnalysisError> {
    let ls = grid.ls;
    let dist = b.distance_mm(comp, ls)?;
    for r_mm in tuning::SPLIT_EROSION_MM {
        let core = b.threshold_f32(&dist, r_mm, f32::INFINITY)?;
        let (cl, ci) = b.label_components(&core, Connectivity::Face6)?;
        let mut idx: Vec<usize> = (0..ci.len()).collect();
        idx.sort_by(|&i, &j| ci[j].voxels.cmp(&ci[i].voxels));
        if idx.len() < 2 {
            if idx.is_empty() || ci[idx[0]].voxels < voxels / tuning::SPLIT_MIN_CORE_DIVISOR {
                break;
            }
            continue;
        }
        let (a, c) = (&ci[idx[0]], &ci[idx[1]]);
        let (xa, xc) = (grid.lps_x(a.centroid_zyx()), grid.lps_x(c.centroid_zyx()));
        let (right, left) = if xa < xc {
            (idx[0], idx[1])
        } else {
            (idx[1], idx[0])
        };
        if !cores_split_the_lungs(
            [a.voxels, c.voxels],
            [xa, xc],
            grid.x_range(&ci[right]),
            grid.x_range(&ci[left]),
            centre_x,
        ) {
            continue;
        }
        // The straight-line nearest core gave the paravertebral base of the right lung to the
        // left core, which reaches lower under the lower dome: hence geodesic.
        let mut lut = vec![0u8; ci.len() + 1];
        lut[right + 1] = 1;
        lut[left + 1] = 2;
        let seeds = b.download_u8(&b.map_labels(&cl, &lut)?)?;
        let region = b.download_u8(comp)?;
        let goes_right = geodesic_sides(&region, &seeds, ls, |z, y, x| {
            grid.lps_x([z as f64, y as f64, x as f64]) < centre_x
        });
        tracing::debug!(r_mm, "touching lungs split");
        return Ok(Some(b.upload_u8(goes_right.view())?));
    }
    Ok(None)
}

/// Competitive growth from two seed sets (1 right, 2 left) through `region` (6-connected,
/// steps weighted by the voxel spacing `ls` in mm): 1 where a voxel of the region is reached
/// first from the right seeds. Region voxels neither seed reaches go by `right_of`.
pub(crate) fn geodesic_sides(
    region: &Array3<u8>,
    seeds: &Array3<u8>,
    ls: [f64; 3],
    right_of: impl Fn(usize, usize, usize) -> bool,
) -> Array3<u8> {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    let (nz, ny, nx) = region.dim();
    let (Some(reg), Some(sd)) = (region.as_slice(), seeds.as_slice()) else {
        return Array3::from_shape_fn((nz, ny, nx), |(z, y, x)| {
            u8::from(region[[z, y, x]] != 0 && right_of(z, y, x))
        });
    };
    // Distances in hundredths of a millimetre.
    let w = ls.map(|v| ((v * 100.0).round() as u32).max(1));
    let mut dist = vec![u32::MAX; reg.len()];
    let mut side = vec![0u8; reg.len()];
    let mut heap = BinaryHeap::new();
    for (i, &s) in sd.iter().enumerate() {
        if s != 0 && reg[i] != 0 {
            dist[i] = 0;
            side[i] = s;
            heap.push(Reverse((0u32, i as u32)));
        }
    }
    let (sy, sz) = (nx, ny * nx);
    while let Some(Reverse((d, i))) = heap.pop() {
        let i = i as usize;
        if d > dist[i] {
            continue;
        }
        let (z, r) = (i / sz, i % sz);
        let (y, x) = (r / sy, r % sy);
        let mut visit = |j: usize, step: u32| {
            let nd = d + step;
            if reg[j] != 0 && nd < dist[j] {
                dist[j] = nd;
                side[j] = side[i];
                heap.push(Reverse((nd, j as u32)));
            }
        };
        if x > 0 {
            visit(i - 1, w[2]);
        }
        if x + 1 < nx {
            visit(i + 1, w[2]);
        }
        if y > 0 {
            visit(i - sy, w[1]);
        }
        if y + 1 < ny {
            visit(i + sy, w[1]);
        }
        if z > 0 {
            visit(i - sz, w[0]);
        }
        if z + 1 < nz {
            visit(i + sz, w[0]);
        }
    }
    Array3::from_shape_fn((nz, ny, nx), |(z, y, x)| {
        let i = (z * ny + y) * nx + x;
        u8::from(match side[i] {
            1 => true,
            2 => false,
            _ => reg[i] != 0 && right_of(z, y, x),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ildtrack_compute::CpuBackend;
    use ildtrack_volume::Geometry;

    /// Components of `mask` as found by the candidates stage (all kept, largest first), and a
    /// body 40 columns wide centred at column 19.5 (1 mm pixels).
    fn setup(
        mask: &Array3<u8>,
    ) -> (
        CpuBackend,
        Grid,
        LungComponents<CpuBackend>,
        Body<CpuBackend>,
    ) {
        let b = CpuBackend::new();
        let d = mask.dim();
        let grid = Grid::new(Geometry::axial([1.0; 3]), [d.0, d.1, d.2], [1, 1, 1]);
        let up = b.upload_u8(mask.view()).expect("upload");
        let (labels, infos) = b
            .label_components(&up, Connectivity::Face6)
            .expect("labels");
        let mut kept: Vec<usize> = (0..infos.len()).collect();
        kept.sort_by(|&i, &j| infos[j].voxels.cmp(&infos[i].voxels));
        let all = Array3::<u8>::ones(d);
        let (_, binfo) = b
            .label_components(
                &b.upload_u8(all.view()).expect("upload"),
                Connectivity::Face6,
            )
            .expect("body");
        let info = binfo[0].clone();
        let centre = info.centroid_zyx();
        let body = Body {
            filled: b.upload_u8(all.view()).expect("upload"),
            centre,
            centre_x: grid.lps_x(centre),
            width_mm: 40.0,
            info,
        };
        (
            b,
            grid,
            LungComponents {
                labels,
                infos,
                kept,
            },
            body,
        )
    }

    #[test]
    fn separate_lungs_go_to_their_side_and_touching_ones_are_split() {
        // Two blocks: columns 4..14 (patient right: low LPS x) and 25..35.
        let mut mask = Array3::<u8>::zeros((4, 12, 40));
        for z in 0..4 {
            for y in 1..11 {
                for x in (4..14).chain(25..35) {
                    mask[[z, y, x]] = 1;
                }
            }
        }
        let (b, grid, found, body) = setup(&mask);
        let mut w = Vec::new();
        let sides = assign_sides(&b, &grid, found, &body, &mut w).expect("sides");
        let l = b.download_u8(&sides.lungs).expect("download");
        assert_eq!((l[[1, 5, 8]], l[[1, 5, 30]]), (1, 2));
        assert!(w.is_empty() && sides.boxes.len() == 2);
        // Joined by a thin bridge across the mid-line: one component, split at the bridge.
        for z in 0..4 {
            for x in 14..25 {
                mask[[z, 5, x]] = 1;
            }
        }
        let (b, grid, found, body) = setup(&mask);
        assert_eq!(found.kept.len(), 1);
        let sides = assign_sides(&b, &grid, found, &body, &mut w).expect("sides");
        let l = b.download_u8(&sides.lungs).expect("download");
        assert_eq!((l[[1, 5, 8]], l[[1, 5, 30]]), (1, 2), "split");
        assert!(w.is_empty(), "a junction was found: no doubt");
    }

    #[test]
    fn geodesic_sides_follow_the_region_not_the_straight_line() {
        // A U of two arms (x = 0 and x = 2) joined by a bar at y = 6; right seed at the bottom
        // of the left arm, left seed at the top of the right arm. The top of the left arm is
        // nearer the left seed in a straight line, but far through the region: it stays right.
        let (ny, nx) = (7, 3);
        let mut region = Array3::<u8>::zeros((1, ny, nx));
        for y in 0..ny {
            region[[0, y, 0]] = 1;
            region[[0, y, 2]] = 1;
        }
        region[[0, 6, 1]] = 1;
        let mut seeds = Array3::<u8>::zeros((1, ny, nx));
        seeds[[0, 6, 0]] = 1;
        seeds[[0, 0, 2]] = 2;
        let right = geodesic_sides(&region, &seeds, [1.0, 1.0, 1.0], |_, _, _| false);
        for y in 0..ny {
            assert_eq!(right[[0, y, 0]], 1, "left arm y {y}");
        }
        assert_eq!(right[[0, 6, 1]], 1, "bar");
        for y in 0..4 {
            assert_eq!(right[[0, y, 2]], 0, "right arm y {y}");
        }
        assert_eq!(right[[0, 3, 1]], 0, "outside the region");
    }

    #[test]
    fn only_a_wide_component_across_the_mid_line_spans_both_sides() {
        assert!(spans_both_sides((-100.0, 100.0), 0.0, 300.0));
        assert!(!spans_both_sides((-100.0, 60.0), 0.0, 300.0), "too narrow");
        assert!(
            !spans_both_sides((10.0, 200.0), 0.0, 300.0),
            "one side only"
        );
    }

    #[test]
    fn cores_split_only_when_balanced_on_both_sides_and_apart() {
        let (r, l) = ((-120.0, -10.0), (10.0, 120.0));
        assert!(cores_split_the_lungs([100, 90], [-60.0, 60.0], r, l, 0.0));
        assert!(
            !cores_split_the_lungs([100, 10], [-60.0, 60.0], r, l, 0.0),
            "unbalanced"
        );
        assert!(
            !cores_split_the_lungs([100, 90], [-60.0, -5.0], r, l, 0.0),
            "same side"
        );
        // The right core reaches 60 mm across: overlap 70 mm of a 240 mm span.
        assert!(!cores_split_the_lungs(
            [100, 90],
            [-60.0, 60.0],
            (-120.0, 60.0),
            (-10.0, 120.0),
            0.0
        ));
    }
}
