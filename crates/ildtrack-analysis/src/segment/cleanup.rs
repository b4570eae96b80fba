//! Stage `cleanup`: the hilum closed, and air that is not lung dropped.
//!
//! Contract: in, the lung labels; out, the lung labels with (on the backend) the vessels that
//! indent the hilum closed in (per side, in-plane, airways kept out), then (on the host) lung
//! pieces lying outside the rib cage and gas pieces joined to a lung only between slices
//! dropped. Never removes: a piece with more than 1 − [`tuning::OUTSIDE_RIBS_SHARE`] of it
//! inside the rib cage's hull; a piece in a slice whose rib-cage hull is too small to judge
//! (cut field of view); a piece that is not mostly pure air. After the outline,
//! [`clear_image_edge`] takes the lungs off the image edge and the padding: where the image, not
//! the pleura, ends a lung, that edge is not lung (it may be tissue the image cut).

use super::body::runs_off_image;
use super::frame::Grid;
use super::geometry::HostVolumes;
use super::tuning::{self, is_bone};
use crate::error::AnalysisError;
use crate::plane;
use ildtrack_compute::{Backend, Ball};
use ildtrack_volume::Warning;
use ndarray::{Array3, Axis};
use rayon::prelude::*;

/// Per side, an in-plane closing (`radius_mm`) takes in the vessels that indent the hilum;
/// worked in the lungs' bounding box (plus the radius) only. Closed voxels on the airways stay
/// out.
pub(crate) fn close_hilum<B: Backend>(
    b: &B,
    grid: &Grid,
    lungs: B::U8,
    boxes: &[([usize; 3], [usize; 3])],
    airways: Option<&B::U8>,
    radius_mm: f64,
) -> Result<B::U8, AnalysisError> {
    if radius_mm <= 0.0 {
        return Ok(lungs);
    }
    let (ld, ls) = (grid.dims, grid.ls);
    let margin = [0, 1, 2].map(|k| {
        if k == 0 {
            0
        } else {
            (radius_mm / ls[k]).ceil() as usize + 1
        }
    });
    let mut bmin = ld;
    let mut bmax = [0usize; 3];
    for (lo, hi) in boxes {
        for k in 0..3 {
            bmin[k] = bmin[k].min(lo[k].saturating_sub(margin[k]));
            bmax[k] = bmax[k].max((hi[k] + 1 + margin[k]).min(ld[k]));
        }
    }
    let bdims = [0, 1, 2].map(|k| bmax[k] - bmin[k]);
    let lungs_box = b.crop_u8(&lungs, bmin, bdims)?;
    let mut closed = Vec::new();
    for side in 1..=2u8 {
        let mut lut = [0u8; 256];
        lut[side as usize] = 1;
        let m = b.map_u8(&lungs_box, &lut)?;
        let c = b.close(&m, &Ball::disk(radius_mm, ls))?;
        closed.push(b.pad_u8(&c, ld, bmin)?);
    }
    drop(lungs_box);
    // Keep the label; background closed by right -> 1, else by left -> 2.
    let both = b.combine_u8(&closed[0], &closed[1], 2, &[0, 2, 1, 1])?;
    let mut lut = vec![0u8; 3 * 3];
    for v in 0..3usize {
        for c in 0..3usize {
            lut[v * 3 + c] = if v != 0 { v as u8 } else { c as u8 };
        }
    }
    let mut lungs = b.combine_u8(&lungs, &both, 3, &lut)?;
    if let Some(a) = airways {
        let mut not = [0u8; 256];
        not[0] = 1;
        let not_airway = b.map_u8(a, &not)?;
        lungs = b.select(&not_airway, &lungs, &b.fill_u8(ld, 0)?)?;
    }
    Ok(lungs)
}

/// On the host: air outside the rib cage ([`drop_air_outside_rib_cage`], said in an
/// `air-outside-rib-cage` warning from 1 mL) and gas joined between slices
/// ([`drop_gas_pieces`]) leave the lungs.
pub(crate) fn drop_non_lung(
    grid: &Grid,
    host: &mut HostVolumes,
    max_pure_air_fraction: f64,
) -> Option<Warning> {
    let w = plane::chamfer_weights([grid.ls[1], grid.ls[2]]);
    let outside_ml = drop_air_outside_rib_cage(&mut host.lungs, &host.hu, &host.body, grid.ls, w);
    let gas_ml = drop_gas_pieces(&mut host.lungs, &host.hu, grid.ls, max_pure_air_fraction);
    if gas_ml > 0.0 {
        tracing::debug!(gas_ml, "gas joined to the lungs between slices dropped");
    }
    (outside_ml >= 1.0).then(|| {
        Warning::new(
            "air-outside-rib-cage",
            format!(
                "{outside_ml:.0} mL of air-filled regions outside the rib cage (subcutaneous \
                 emphysema, skin or breast folds, bowel) were left out of the lungs; check the QC \
                 images"
            ),
        )
    })
}

/// Working-grid voxels on the image's in-plane border or 8-adjacent (in-plane) to padding
/// outside the reconstruction circle leave the lungs. Returns those voxels as a mask when a lung
/// voxel is still 4-adjacent to one of them (quantification's boundary refinement must not
/// grow back into them), else `None`.
pub(crate) fn clear_image_edge(lungs: &mut Array3<u8>, hu: &Array3<i16>) -> Option<Array3<u8>> {
    let (_, ny, nx) = lungs.dim();
    let touches = lungs
        .axis_iter_mut(Axis(0))
        .into_par_iter()
        .zip(hu.axis_iter(Axis(0)).into_par_iter())
        .map(|(mut l, h)| {
            let edge = edge_pixels(h, ny, nx);
            let mut near = false;
            for (i, v) in l.iter_mut().enumerate() {
                if *v == 0 {
                    continue;
                }
                if edge[i] {
                    *v = 0;
                } else {
                    near |= plane::neighbours4(i, ny, nx)
                        .into_iter()
                        .flatten()
                        .any(|j| edge[j]);
                }
            }
            near
        })
        .reduce(|| false, |a, b| a || b);
    touches.then(|| {
        let mut edge = Array3::<u8>::zeros(lungs.dim());
        edge.axis_iter_mut(Axis(0))
            .into_par_iter()
            .zip(hu.axis_iter(Axis(0)).into_par_iter())
            .for_each(|(mut e, h)| {
                for (o, &b) in e.iter_mut().zip(&edge_pixels(h, ny, nx)) {
                    *o = u8::from(b);
                }
            });
        edge
    })
}

/// One slice's pixels on the image border or 8-adjacent to padding.
fn edge_pixels(h: ndarray::ArrayView2<'_, i16>, ny: usize, nx: usize) -> Vec<bool> {
    let mut edge: Vec<bool> = (0..ny * nx)
        .map(|i| {
            let (y, x) = (i / nx, i % nx);
            y == 0 || x == 0 || y + 1 == ny || x + 1 == nx
        })
        .collect();
    for ((y, x), &v) in h.indexed_iter() {
        if v == ildtrack_volume::OUTSIDE_FOV_HU {
            for yy in y.saturating_sub(1)..(y + 2).min(ny) {
                for xx in x.saturating_sub(1)..(x + 2).min(nx) {
                    edge[yy * nx + xx] = true;
                }
            }
        }
    }
    edge
}

/// Drops lung pieces (per slice, 8-connected) with at least [`tuning::OUTSIDE_RIBS_SHARE`] of
/// their pixels outside the convex hull of the slices' bone ([`is_bone`]) deeper than
/// [`tuning::BONE_MIN_DEPTH_MM`] under the skin, over slices within ±[`tuning::RIB_WINDOW_MM`]:
/// subcutaneous emphysema, skin and breast folds, bowel. Slices whose bone hull covers under
/// 1/[`tuning::RIB_HULL_MIN_BODY_DIVISOR`] of the body are left alone where the body runs off
/// the image (cropped field of view), judged where it does not (below the rib cage).
/// Returns the volume dropped (mL).
pub(crate) fn drop_air_outside_rib_cage(
    lungs: &mut Array3<u8>,
    hu: &Array3<i16>,
    body: &Array3<u8>,
    ls: [f64; 3],
    w: [u32; 3],
) -> f64 {
    let (nz, ny, nx) = lungs.dim();
    let min_depth = (tuning::BONE_MIN_DEPTH_MM * 10.0) as u32;
    // Per slice: row extremes of deep bone (hull points), and the body's area.
    let bone_pts: Vec<(Vec<(f64, f64)>, usize)> = (0..nz)
        .into_par_iter()
        .map(|z| {
            if lungs.index_axis(Axis(0), z).iter().all(|&v| v == 0) {
                return (Vec::new(), 0);
            }
            let exterior: Vec<bool> = body
                .index_axis(Axis(0), z)
                .iter()
                .map(|&v| v == 0)
                .collect();
            let d = plane::chamfer_sweep(&exterior, ny, nx, w);
            let hs = hu.index_axis(Axis(0), z);
            let bone: Vec<bool> = hs
                .iter()
                .zip(&d)
                .map(|(&h, &dd)| is_bone(h) && dd != u32::MAX && dd >= min_depth)
                .collect();
            let body = d.iter().filter(|&&dd| dd > 0 && dd != u32::MAX).count();
            (plane::extreme_points(&bone, ny, nx), body)
        })
        .collect();
    let win = (tuning::RIB_WINDOW_MM / ls[0]).round() as usize;
    let body_slices = body;
    let dropped: usize = lungs
        .axis_iter_mut(Axis(0))
        .into_par_iter()
        .enumerate()
        .map(|(z, mut s)| {
            let body = bone_pts[z].1;
            if body == 0 || s.iter().all(|&v| v == 0) {
                return 0;
            }
            let mut pts = Vec::new();
            for bp in &bone_pts[z.saturating_sub(win)..=(z + win).min(nz - 1)] {
                pts.extend_from_slice(&bp.0);
            }
            let hull = plane::fill_polygon(&plane::hull_of_points(pts), ny, nx);
            let hull_px = hull.iter().filter(|&&v| v).count();
            // A small bone hull is a cropped field of view where the body runs off the image;
            // in a whole body it is a slice below the rib cage (abdomen: bowel gas), judged.
            if hull_px == 0
                || (hull_px * tuning::RIB_HULL_MIN_BODY_DIVISOR < body
                    && runs_off_image(
                        body_slices.index_axis(Axis(0), z),
                        hu.index_axis(Axis(0), z),
                    ))
            {
                return 0;
            }
            let lung: Vec<bool> = s.iter().map(|&v| v != 0).collect();
            let mut n = 0;
            for c in plane::components(&lung, ny, nx) {
                let out = c.iter().filter(|&&i| !hull[i]).count();
                if out as f64 >= tuning::OUTSIDE_RIBS_SHARE * c.len() as f64 {
                    for &i in &c {
                        s[[i / nx, i % nx]] = 0;
                    }
                    n += c.len();
                }
            }
            n
        })
        .sum();
    dropped as f64 * ls.iter().product::<f64>() / 1000.0
}

/// Gas under the diaphragm that joined a lung only through the faces between slices: where a
/// slice is thicker than the diaphragm, the stomach's gas touches the lung base in the slice
/// above and becomes part of the lung's 3-D component. Per slice, an in-plane piece of the
/// lung mask of at least [`tuning::GAS_PIECE_MIN_MM2`] with more than `max_share` of its voxels
/// at or below [`tuning::PURE_AIR_HU`] is gas (the lung components' own rule, per piece); so is
/// a piece whose neighbours in the adjacent slices are all gas. Gas pieces are dropped;
/// returns the mL dropped.
pub(crate) fn drop_gas_pieces(
    lungs: &mut Array3<u8>,
    hu: &Array3<i16>,
    ls: [f64; 3],
    max_share: f64,
) -> f64 {
    let (nz, ny, nx) = lungs.dim();
    if nz < 2 {
        return 0.0; // one slice: each piece is a whole component, judged already
    }
    let pure_air = tuning::PURE_AIR_HU;
    let min_px = (tuning::GAS_PIECE_MIN_MM2 / (ls[1] * ls[2])).ceil() as usize;
    // A gas piece needs more than `max_share * min_px` pure-air lung voxels in its slice: most
    // scans have no such slice, and skip the per-slice maps below (fresh memory is slow to
    // touch in some VMs).
    let possible = lungs
        .axis_iter(Axis(0))
        .into_par_iter()
        .zip(hu.axis_iter(Axis(0)).into_par_iter())
        .any(|(s, h)| {
            let pure = s
                .iter()
                .zip(h.iter())
                .filter(|&(&v, &x)| v != 0 && x <= pure_air)
                .count();
            pure as f64 > max_share * min_px as f64
        });
    if !possible {
        return 0.0;
    }
    // Per slice: piece id per pixel (0 none, else local index + 1) and whether it is gas.
    let per_slice: Vec<(Vec<u32>, Vec<bool>)> = lungs
        .axis_iter(Axis(0))
        .into_par_iter()
        .zip(hu.axis_iter(Axis(0)).into_par_iter())
        .map(|(s, h)| {
            let mut ids = vec![0u32; ny * nx];
            let lung: Vec<bool> = s.iter().map(|&v| v != 0).collect();
            if !lung.contains(&true) {
                return (ids, Vec::new());
            }
            let hs: Vec<i16> = h.iter().copied().collect();
            let pieces = plane::components(&lung, ny, nx);
            let gas = pieces
                .iter()
                .enumerate()
                .map(|(k, c)| {
                    for &i in c {
                        ids[i] = k as u32 + 1;
                    }
                    let pure = c.iter().filter(|&&i| hs[i] <= pure_air).count();
                    c.len() >= min_px && pure as f64 > max_share * c.len() as f64
                })
                .collect();
            (ids, gas)
        })
        .collect();
    if per_slice.iter().all(|(_, g)| !g.contains(&true)) {
        return 0.0;
    }
    let base: Vec<usize> = per_slice
        .iter()
        .scan(0usize, |acc, (_, g)| {
            let b = *acc;
            *acc += g.len();
            Some(b)
        })
        .collect();
    let mut gas: Vec<bool> = per_slice
        .iter()
        .flat_map(|(_, g)| g.iter().copied())
        .collect();
    // Pieces that overlap between adjacent slices.
    let mut nbrs: Vec<Vec<usize>> = vec![Vec::new(); gas.len()];
    for z in 0..nz - 1 {
        let (a, b) = (&per_slice[z].0, &per_slice[z + 1].0);
        let mut pairs: Vec<(usize, usize)> = a
            .iter()
            .zip(b)
            .filter(|&(&p, &q)| p != 0 && q != 0)
            .map(|(&p, &q)| (base[z] + p as usize - 1, base[z + 1] + q as usize - 1))
            .collect();
        pairs.sort_unstable();
        pairs.dedup();
        for (p, q) in pairs {
            nbrs[p].push(q);
            nbrs[q].push(p);
        }
    }
    loop {
        let more: Vec<usize> = (0..gas.len())
            .filter(|&p| !gas[p] && !nbrs[p].is_empty() && nbrs[p].iter().all(|&q| gas[q]))
            .collect();
        if more.is_empty() {
            break;
        }
        for p in more {
            gas[p] = true;
        }
    }
    let dropped: usize = lungs
        .axis_iter_mut(Axis(0))
        .into_par_iter()
        .enumerate()
        .map(|(z, mut s)| {
            let ids = &per_slice[z].0;
            let mut n = 0;
            for (v, &id) in s.iter_mut().zip(ids) {
                if id != 0 && gas[base[z] + id as usize - 1] {
                    *v = 0;
                    n += 1;
                }
            }
            n
        })
        .sum();
    dropped as f64 * ls.iter().product::<f64>() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use ildtrack_compute::CpuBackend;
    use ildtrack_volume::Geometry;

    #[test]
    fn the_image_edge_and_padding_are_never_lung() {
        // One 6 x 6 slice of lung; column 5 is padding.
        let mut lungs = Array3::<u8>::ones((1, 6, 6));
        let mut hu = Array3::<i16>::from_elem((1, 6, 6), -850);
        for y in 0..6 {
            hu[[0, y, 5]] = ildtrack_volume::OUTSIDE_FOV_HU;
        }
        let edge = clear_image_edge(&mut lungs, &hu).expect("lung next to the edge");
        // Left: rows 1..5 of columns 1..4 stay (column 4 is next to the padding).
        assert_eq!(lungs.iter().filter(|&&v| v != 0).count(), 4 * 3);
        assert_eq!(lungs[[0, 0, 2]], 0);
        assert_eq!(lungs[[0, 2, 4]], 0);
        assert_eq!(edge[[0, 2, 4]], 1);
        // A lung away from the edge is untouched and needs no mask.
        let mut inner = Array3::<u8>::zeros((1, 6, 6));
        inner[[0, 3, 2]] = 1;
        assert!(clear_image_edge(&mut inner, &Array3::from_elem((1, 6, 6), -850)).is_none());
        assert_eq!(inner[[0, 3, 2]], 1);
    }

    #[test]
    fn air_outside_the_rib_cage_is_not_lung() {
        // One 80 x 80 slice, 2 mm pixels: a body disc (radius 36 px), a ring of eight "ribs"
        // (radius 28 px, 500 HU), two lungs inside it and a pocket of air under the skin
        // outside it (radius 33 px). Only the pocket goes.
        let (ny, nx) = (80usize, 80usize);
        let mut hu = Array3::<i16>::from_elem((1, ny, nx), -1000);
        let mut lungs = Array3::<u8>::zeros((1, ny, nx));
        let at =
            |y: usize, x: usize| ((y as f64 - 40.0).powi(2) + (x as f64 - 40.0).powi(2)).sqrt();
        for y in 0..ny {
            for x in 0..nx {
                let r = at(y, x);
                if r <= 36.0 {
                    hu[[0, y, x]] = 40;
                }
                let ang = (y as f64 - 40.0).atan2(x as f64 - 40.0);
                let near_rib = (0..8).any(|k| {
                    let a = k as f64 * std::f64::consts::FRAC_PI_4;
                    (ang - a).sin().abs() < 0.08 && (ang - a).cos() > 0.0
                });
                if (27.0..30.0).contains(&r) && near_rib {
                    hu[[0, y, x]] = 500;
                }
                let lung = ((y as f64 - 40.0).powi(2) / 300.0 + (x as f64 - 28.0).powi(2) / 80.0
                    <= 1.0)
                    || ((y as f64 - 40.0).powi(2) / 300.0 + (x as f64 - 52.0).powi(2) / 80.0
                        <= 1.0);
                if lung {
                    lungs[[0, y, x]] = if x < 40 { 1 } else { 2 };
                    hu[[0, y, x]] = -850;
                }
                if (32.0..34.5).contains(&r) && y < 20 {
                    lungs[[0, y, x]] = 1;
                    hu[[0, y, x]] = -900;
                }
            }
        }
        let body = hu.mapv(|h| u8::from(h > -500 || h == -850 || h == -900));
        let w = plane::chamfer_weights([2.0, 2.0]);
        let before = lungs.iter().filter(|&&v| v != 0).count();
        let pocket = (0..ny * nx)
            .filter(|&i| {
                let (y, x) = (i / nx, i % nx);
                (32.0..34.5).contains(&at(y, x)) && y < 20
            })
            .count();
        let mut kept = lungs.clone();
        let ml = drop_air_outside_rib_cage(&mut lungs, &hu, &body, [2.0, 2.0, 2.0], w);
        let after = lungs.iter().filter(|&&v| v != 0).count();
        assert_eq!(before - after, pocket, "only the pocket is dropped");
        assert!((ml - pocket as f64 * 8.0 / 1000.0).abs() < 1e-9);
        // Without ribs (a cut field of view, or no bone deep enough) nothing is judged.
        let no_ribs = hu.mapv(|h| if h == 500 { 40 } else { h });
        assert_eq!(
            drop_air_outside_rib_cage(&mut kept, &no_ribs, &body, [2.0; 3], w),
            0.0
        );
    }

    #[test]
    fn a_small_bone_hull_is_judged_unless_the_image_cuts_the_body() {
        // One 40 x 40 slice, 2 mm pixels: a body square (rows 5..35), a spine and two ribs in
        // its back third (a small hull), and a gas pocket in front. Inside the image the
        // pocket is below the rib cage and goes; with the body reaching the image's edge (a
        // cropped field of view) nothing is judged.
        let (ny, nx) = (40usize, 40usize);
        let mut hu = Array3::<i16>::from_elem((1, ny, nx), -1000);
        let mut lungs = Array3::<u8>::zeros((1, ny, nx));
        for y in 5..35 {
            for x in 5..35 {
                hu[[0, y, x]] = 40;
            }
        }
        for (y, x) in [(30, 20), (26, 10), (26, 30)] {
            hu[[0, y, x]] = 500;
        }
        for y in 9..12 {
            for x in 18..22 {
                hu[[0, y, x]] = -900;
                lungs[[0, y, x]] = 1;
            }
        }
        let body = hu.mapv(|h| u8::from(h > -950));
        let w = plane::chamfer_weights([2.0, 2.0]);
        let mut inside = lungs.clone();
        let ml = drop_air_outside_rib_cage(&mut inside, &hu, &body, [2.0; 3], w);
        assert!(ml > 0.0 && inside.iter().all(|&v| v == 0), "pocket dropped");
        let mut cut_body = body.clone();
        for y in 5..35 {
            cut_body[[0, y, 0]] = 1;
            hu[[0, y, 0]] = 40;
        }
        assert!(runs_off_image(
            cut_body.index_axis(Axis(0), 0),
            hu.index_axis(Axis(0), 0)
        ));
        assert!(!runs_off_image(
            body.index_axis(Axis(0), 0),
            hu.index_axis(Axis(0), 0)
        ));
        let mut cropped = lungs.clone();
        assert_eq!(
            drop_air_outside_rib_cage(&mut cropped, &hu, &cut_body, [2.0; 3], w),
            0.0
        );
    }

    #[test]
    fn gas_joined_only_between_slices_is_dropped() {
        // Three slices, 2 mm voxels. Lung (-850 HU) in slices 1-2 at x < 20. Stomach gas
        // (-1000 HU) in slices 0-1 at x >= 20, and above it in slice 2 a piece of lung density
        // (partial volume of the dome) whose only neighbour, below, is gas: all three go.
        let (nz, ny, nx) = (3, 20, 40);
        let mut hu = Array3::<i16>::from_elem((nz, ny, nx), 40);
        let mut lungs = Array3::<u8>::zeros((nz, ny, nx));
        for z in 0..3 {
            for y in 2..18 {
                for x in 2..38 {
                    let lung_side = x < 18;
                    if (2..18).contains(&x) && z > 0 || (22..38).contains(&x) {
                        hu[[z, y, x]] = if lung_side || z == 2 { -850 } else { -1000 };
                        lungs[[z, y, x]] = 1;
                    }
                }
            }
        }
        let ml = drop_gas_pieces(&mut lungs, &hu, [2.0, 2.0, 2.0], 0.5);
        assert!((ml - 3.0 * 256.0 * 8.0 / 1000.0).abs() < 1e-9, "{ml}");
        assert_eq!(
            lungs.iter().filter(|&&v| v != 0).count(),
            2 * 256,
            "the lung stays"
        );
        assert!((22..38).all(|x| lungs[[2, 10, x]] == 0));
        // One slice: never judged here (each piece is a whole component, judged already).
        let mut one = Array3::<u8>::ones((1, 4, 4));
        let gas = Array3::from_elem((1, 4, 4), -1000);
        assert_eq!(drop_gas_pieces(&mut one, &gas, [2.0; 3], 0.5), 0.0);
    }

    #[test]
    fn the_hilum_closing_takes_in_an_indenting_vessel_but_not_the_airway() {
        // One slice, 1 mm: a right lung square with a 2-pixel notch (vessel) and an airway
        // pixel in another notch.
        let (ny, nx) = (30, 30);
        let mut lungs = Array3::<u8>::zeros((1, ny, nx));
        for y in 5..25 {
            for x in 5..25 {
                lungs[[0, y, x]] = 1;
            }
        }
        // Two one-pixel inlets 4 deep from the lower edge: a vessel, and an airway.
        for y in 21..25 {
            lungs[[0, y, 10]] = 0;
            lungs[[0, y, 20]] = 0;
        }
        let mut airway = Array3::<u8>::zeros((1, ny, nx));
        airway[[0, 22, 20]] = 1;
        let b = CpuBackend::new();
        let grid = Grid::new(Geometry::axial([1.0; 3]), [1, ny, nx], [1, 1, 1]);
        let up = |a: &Array3<u8>| b.upload_u8(a.view()).expect("upload");
        let closed = close_hilum(
            &b,
            &grid,
            up(&lungs),
            &[([0, 5, 5], [0, 24, 24])],
            Some(&up(&airway)),
            3.0,
        )
        .expect("closing");
        let c = b.download_u8(&closed).expect("download");
        assert_eq!(
            (c[[0, 21, 10]], c[[0, 22, 10]]),
            (1, 1),
            "vessel inlet closed"
        );
        assert_eq!((c[[0, 21, 20]], c[[0, 22, 20]]), (1, 0), "airway stays out");
        let off = close_hilum(&b, &grid, up(&lungs), &[], None, 0.0).expect("off");
        assert_eq!(b.download_u8(&off).expect("download")[[0, 22, 10]], 0);
    }
}
