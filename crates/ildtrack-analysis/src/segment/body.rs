//! Stages `downsample` and `body`: the working grid's HU, the body, and the air inside it.
//!
//! Contract: in, the full-grid HU volume; out, the block-mean HU on the working grid, the body
//! (largest tissue component, holes filled per slice, opened slices repaired), its core (the
//! body less a skin band) and the air inside that core. Never removes: a slice's body where
//! both neighbours agree on it; air deeper than [`tuning::SKIN_AIR_MM`] under the skin.

use super::frame::Grid;
use super::tuning;
use crate::config::SegmentationParams;
use crate::error::AnalysisError;
use ildtrack_compute::{Backend, Ball, ComponentInfo, Connectivity, MaskOp};
use ildtrack_volume::{OUTSIDE_FOV_HU, Volume};
use ndarray::{Array3, ArrayView2, Axis};
use rayon::prelude::*;

/// Block-mean HU on the working grid, computed in slabs of z so that the full-resolution copy
/// on the backend is never whole (peak memory).
pub(crate) fn downsample<B: Backend>(
    b: &B,
    hu: &Volume<i16>,
    grid: &Grid,
) -> Result<B::I16, AnalysisError> {
    let factors = grid.factors;
    let [nz, _, _] = hu.dims_zyx();
    // 64 working-grid slices per slab: few round trips, and far from a whole full-resolution
    // copy on the backend.
    let slab = factors[0] * 64;
    let mut host = Array3::<i16>::zeros((grid.dims[0], grid.dims[1], grid.dims[2]));
    let mut z0 = 0;
    while z0 < nz {
        let z1 = (z0 + slab).min(nz);
        let part = hu.data.slice(ndarray::s![z0..z1, .., ..]);
        let lowp = b.download_i16(&b.downsample_mean_host(part, factors)?)?;
        let lz0 = z0 / factors[0];
        // Slices in parallel: the first touches of `host`'s fresh pages dominate this copy.
        host.slice_mut(ndarray::s![lz0..lz0 + lowp.shape()[0], .., ..])
            .axis_iter_mut(Axis(0))
            .into_par_iter()
            .zip(lowp.axis_iter(Axis(0)).into_par_iter())
            .for_each(|(mut d, s)| d.assign(&s));
        z0 = z1;
    }
    Ok(b.upload_i16(host.view())?)
}

/// The body on the working grid.
pub(crate) struct Body<B: Backend> {
    /// The body with holes filled per slice.
    pub filled: B::U8,
    pub info: ComponentInfo,
    /// Centroid (working-grid index).
    pub centre: [f64; 3],
    /// LPS x of the centroid (mm).
    pub centre_x: f64,
    /// Left-right extent (mm).
    pub width_mm: f64,
}

/// The body: tissue (≥ `body_hu`) opened in-plane to cut the table off, its largest
/// 6-connected component, holes filled per slice, opened slices repaired
/// ([`close_opened_body_slices`]). `None` when no voxel is tissue.
pub(crate) fn find_body<B: Backend>(
    b: &B,
    grid: &Grid,
    low: &B::I16,
    p: &SegmentationParams,
) -> Result<Option<Body<B>>, AnalysisError> {
    let ls = grid.ls;
    let tissue = b.open(
        &b.threshold(low, p.body_hu, i16::MAX)?,
        &Ball::disk(grid.at_least_a_pixel(tuning::TABLE_OPENING_MM), ls),
    )?;
    let (tl, tinfo) = b.label_components(&tissue, Connectivity::Face6)?;
    drop(tissue);
    let Some((bi, info)) = tinfo.iter().enumerate().max_by_key(|(_, c)| c.voxels) else {
        return Ok(None);
    };
    let mut lut = vec![0u8; tinfo.len() + 1];
    lut[bi + 1] = 1;
    let body = b.map_labels(&tl, &lut)?;
    drop(tl);
    let body_filled = b.fill_holes_2d(&body)?;
    let filled = {
        let mut h = b.download_u8(&body_filled)?;
        let reach = ((tuning::OPENED_BODY_REACH_MM / ls[0]).round() as usize).max(1);
        // Only a body that reaches the image border needs its unfilled form (holes never touch
        // the border, so the filled body reaches it exactly where the body does), and only one
        // that meets padding outside the reconstruction circle needs the HU.
        let padded = meets_padding(b, low, &body, ls)?;
        let cut = if padded || touches_border(&h) {
            let hu = padded.then(|| b.download_i16(low)).transpose()?;
            let cut = CutImage {
                hu: hu.as_ref(),
                max_pure_air: p.max_pure_air_fraction,
            };
            fill_cut_slices(&mut h, &b.download_u8(&body)?, &cut)
        } else {
            0
        };
        drop(body);
        if close_opened_body_slices(&mut h, reach) + cut > 0 {
            b.upload_u8(h.view())?
        } else {
            body_filled
        }
    };
    let centre = info.centroid_zyx();
    let (bx0, bx1) = grid.x_range(info);
    Ok(Some(Body {
        filled,
        info: info.clone(),
        centre,
        centre_x: grid.lps_x(centre),
        width_mm: (bx1 - bx0).max(1.0),
    }))
}

/// Air (≤ `air_hu`, inside the field of view) in the body's core, and that core (the body
/// less a [`tuning::SKIN_AIR_MM`] band under the skin: air there is outside the chest).
pub(crate) fn air_in_body<B: Backend>(
    b: &B,
    grid: &Grid,
    low: &B::I16,
    body: &Body<B>,
    p: &SegmentationParams,
) -> Result<(B::U8, B::U8), AnalysisError> {
    let air_all = b.threshold(low, OUTSIDE_FOV_HU + 1, p.air_hu)?;
    let core = b.erode(&body.filled, &Ball::disk(tuning::SKIN_AIR_MM, grid.ls))?;
    let air = b.mask_op(&air_all, &core, MaskOp::And)?;
    Ok((air, core))
}

/// Some pixel of `m` (an `ny` × `nx` slice) lies on the image border.
fn slice_touches_border(m: &[bool], ny: usize, nx: usize) -> bool {
    (0..nx).any(|x| m[x] || m[(ny - 1) * nx + x])
        || (0..ny).any(|y| m[y * nx] || m[y * nx + nx - 1])
}

/// Some slice of `v` has a non-zero voxel on the image border.
fn touches_border(v: &Array3<u8>) -> bool {
    let (_, ny, nx) = v.dim();
    v.axis_iter(Axis(0)).any(|s| {
        let m: Vec<bool> = s.iter().map(|&x| x != 0).collect();
        slice_touches_border(&m, ny, nx)
    })
}

/// The body meets padding (blocks outside the reconstruction circle) somewhere in-plane.
fn meets_padding<B: Backend>(
    b: &B,
    low: &B::I16,
    body: &B::U8,
    ls: [f64; 3],
) -> Result<bool, AnalysisError> {
    let pad = b.threshold(low, OUTSIDE_FOV_HU, OUTSIDE_FOV_HU)?;
    if b.value_counts(&pad)?.get(1).is_none_or(|&c| c == 0) {
        return Ok(false);
    }
    let near = b.dilate(&pad, &Ball::disk(ls[1].max(ls[2]), ls))?;
    let both = b.mask_op(&near, body, MaskOp::And)?;
    Ok(b.value_counts(&both)?.get(1).is_some_and(|&c| c > 0))
}

/// What [`fill_cut_slices`] needs to tell a lung cut by the reconstruction circle from the
/// air outside the body: the working-grid HU (only when the body meets padding) and the share
/// of pure air above which a region is not lung (the lung components' own rule).
pub(crate) struct CutImage<'a> {
    pub hu: Option<&'a Array3<i16>>,
    pub max_pure_air: f64,
}

/// Slices where the body runs off the image (a field of view that cuts the patient): a lung
/// cut by the image touches the image edge and is not a hole of the body there, so it would be
/// taken for outside air. In such slices the outside is only the background reachable from the
/// image's corners (the chest wall cut by the image separates the lung from it). Where the body
/// meets padding outside the reconstruction circle, the corners are padding and reach every
/// region open to the circle: there a region open to the image or circle edge is outside only
/// when mostly pure air ([`background_outside_by_density`]). `body` is the unfilled body;
/// `filled` gets the slices refilled. Returns how many slices changed.
pub(crate) fn fill_cut_slices(filled: &mut Array3<u8>, body: &Array3<u8>, cut: &CutImage) -> usize {
    let (_, ny, nx) = body.dim();
    if ny < 2 || nx < 2 {
        return 0;
    }
    let changed: Vec<usize> = filled
        .axis_iter_mut(Axis(0))
        .into_par_iter()
        .zip(body.axis_iter(Axis(0)).into_par_iter())
        .enumerate()
        .map(|(z, (mut f, b))| {
            let m: Vec<bool> = b.iter().map(|&v| v != 0).collect();
            let hu: Option<Vec<i16>> = cut
                .hu
                .map(|h| h.index_axis(Axis(0), z).iter().copied().collect());
            let outside = match hu {
                Some(h) if body_meets_padding(&m, &h, ny, nx) => {
                    background_outside_by_density(&m, &h, ny, nx, cut.max_pure_air)
                }
                _ => background_from_corners(&m, ny, nx),
            };
            let Some(outside) = outside else { return 0 };
            let mut n = 0;
            for (v, &o) in f.iter_mut().zip(&outside) {
                if !o && *v == 0 {
                    *v = 1;
                    n += 1;
                }
            }
            usize::from(n > 0)
        })
        .collect();
    changed.iter().sum()
}

/// The body's slice runs off the image: it reaches the image border or padding (blocks outside
/// the reconstructed field of view).
pub(crate) fn runs_off_image(body: ArrayView2<u8>, hu: ArrayView2<i16>) -> bool {
    let (ny, nx) = body.dim();
    let m: Vec<bool> = body.iter().map(|&v| v != 0).collect();
    let h: Vec<i16> = hu.iter().copied().collect();
    slice_touches_border(&m, ny, nx) || body_meets_padding(&m, &h, ny, nx)
}

/// A body pixel of the slice `m` has a padding pixel of `hu` as 4-neighbour.
fn body_meets_padding(m: &[bool], hu: &[i16], ny: usize, nx: usize) -> bool {
    (0..ny * nx).any(|i| {
        m[i] && crate::plane::neighbours4(i, ny, nx)
            .into_iter()
            .flatten()
            .any(|j| hu[j] == OUTSIDE_FOV_HU)
    })
}

/// Background reachable from the image's corners (4-connected) in a slice whose body runs off
/// the image; `None` when the body stays inside the image or holds a corner.
fn background_from_corners(m: &[bool], ny: usize, nx: usize) -> Option<Vec<bool>> {
    let corners = [0, nx - 1, (ny - 1) * nx, ny * nx - 1];
    if !slice_touches_border(m, ny, nx) || corners.iter().any(|&c| m[c]) {
        return None;
    }
    let mut outside = vec![false; ny * nx];
    let mut stack: Vec<usize> = corners.to_vec();
    for &c in &corners {
        outside[c] = true;
    }
    while let Some(i) = stack.pop() {
        for j in crate::plane::neighbours4(i, ny, nx).into_iter().flatten() {
            if !m[j] && !outside[j] {
                outside[j] = true;
                stack.push(j);
            }
        }
    }
    Some(outside)
}

/// In a slice whose body meets padding: padding, and each background region (4-connected,
/// padding excluded) open to the image edge or the padding, are outside, unless the region is
/// lung the circle cut: not mostly pure air (at most `max_pure_air` of its pixels at or below
/// [`tuning::PURE_AIR_HU`]; outside air is purer) and lying in the body's convex hull (at least
/// [`tuning::CUT_LUNG_IN_HULL_SHARE`] of it; the table's pad and blankets between the body and
/// the circle, not pure air either, lie outside the hull).
fn background_outside_by_density(
    m: &[bool],
    hu: &[i16],
    ny: usize,
    nx: usize,
    max_pure_air: f64,
) -> Option<Vec<bool>> {
    let pad = |i: usize| hu[i] == OUTSIDE_FOV_HU;
    let hull = crate::plane::fill_polygon(
        &crate::plane::hull_of_points(crate::plane::extreme_points(m, ny, nx)),
        ny,
        nx,
    );
    let mut outside: Vec<bool> = (0..ny * nx).map(pad).collect();
    let mut seen = vec![false; ny * nx];
    for start in 0..ny * nx {
        if m[start] || seen[start] || pad(start) {
            continue;
        }
        seen[start] = true;
        let (mut region, mut stack, mut open) = (vec![start], vec![start], false);
        while let Some(i) = stack.pop() {
            for j in crate::plane::neighbours4(i, ny, nx) {
                match j {
                    None => open = true,
                    Some(j) if pad(j) => open = true,
                    Some(j) if !m[j] && !seen[j] => {
                        seen[j] = true;
                        region.push(j);
                        stack.push(j);
                    }
                    Some(_) => {}
                }
            }
        }
        let share = |n: usize| n as f64 / region.len() as f64;
        let pure = share(
            region
                .iter()
                .filter(|&&i| hu[i] <= tuning::PURE_AIR_HU)
                .count(),
        );
        let in_hull = share(region.iter().filter(|&&i| hull[i]).count());
        if open && (pure > max_pure_air || in_hull < tuning::CUT_LUNG_IN_HULL_SHARE) {
            region.iter().for_each(|&i| outside[i] = true);
        }
    }
    Some(outside)
}

/// A slice whose filled body area is under [`tuning::OPENED_BODY_SHARE`] of a slice within
/// `reach` on either side had its outline opened (gas in a thin chest wall left little tissue
/// and the table-cutting opening cut it): it gets the intersection of the nearest such slices'
/// bodies added. Returns how many slices were repaired.
pub(crate) fn close_opened_body_slices(body: &mut Array3<u8>, reach: usize) -> usize {
    let nz = body.dim().0;
    let area: Vec<usize> = body
        .axis_iter(Axis(0))
        .map(|s| s.iter().filter(|&&v| v != 0).count())
        .collect();
    let share = tuning::OPENED_BODY_SHARE;
    let mut fixed = Vec::new();
    for z in 1..nz.saturating_sub(1) {
        let below = (z.saturating_sub(reach)..z)
            .rev()
            .find(|&a| area[a] as f64 * share > area[z] as f64);
        let above =
            (z + 1..(z + 1 + reach).min(nz)).find(|&c| area[c] as f64 * share > area[z] as f64);
        if let (Some(a), Some(c)) = (below, above) {
            fixed.push((z, a, c));
        }
    }
    for &(z, a, c) in &fixed {
        let both: Vec<u8> = body
            .index_axis(Axis(0), a)
            .iter()
            .zip(body.index_axis(Axis(0), c).iter())
            .map(|(&x, &y)| u8::from(x != 0 && y != 0))
            .collect();
        for (v, &n) in body.index_axis_mut(Axis(0), z).iter_mut().zip(&both) {
            *v |= n;
        }
    }
    fixed.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ildtrack_compute::CpuBackend;
    use ildtrack_volume::Geometry;

    #[test]
    fn an_opened_slice_gets_the_body_its_neighbours_agree_on() {
        // Five slices of a 10 x 10 square body; slice 2 lost its left half (opened outline).
        let mut body = Array3::<u8>::ones((5, 10, 10));
        for y in 0..10 {
            for x in 0..5 {
                body[[2, y, x]] = 0;
            }
        }
        body[[1, 0, 0]] = 0; // the neighbours disagree on one pixel: it stays out
        assert_eq!(close_opened_body_slices(&mut body, 2), 1);
        assert_eq!(
            body.index_axis(Axis(0), 2)
                .iter()
                .filter(|&&v| v == 0)
                .count(),
            1
        );
        assert_eq!(body[[2, 0, 0]], 0);
        // A slice that is small only on one side (the end of the body) is left alone.
        let mut end = Array3::<u8>::ones((3, 4, 4));
        end.index_axis_mut(Axis(0), 2).fill(0);
        end[[2, 0, 0]] = 1;
        assert_eq!(close_opened_body_slices(&mut end, 2), 0);
    }

    #[test]
    fn a_lung_cut_by_the_image_edge_stays_inside_the_body() {
        // One 12 x 12 slice: the body runs off the left edge (columns 0..9, rows 2..10) with a
        // "lung" of background at rows 4..8, columns 0..4 open to the left edge; outside air at
        // the corners. The border-seeded fill leaves the lung out; the corner-seeded one fills it.
        let mut body = Array3::<u8>::zeros((1, 12, 12));
        for y in 2..10 {
            for x in 0..9 {
                body[[0, y, x]] = 1;
            }
        }
        for y in 4..8 {
            for x in 0..4 {
                body[[0, y, x]] = 0;
            }
        }
        let mut filled = body.clone();
        let no_hu = CutImage {
            hu: None,
            max_pure_air: 0.35,
        };
        assert_eq!(fill_cut_slices(&mut filled, &body, &no_hu), 1);
        assert_eq!(filled[[0, 5, 0]], 1, "the cut lung is inside the body");
        assert_eq!(filled[[0, 0, 0]], 0, "outside air stays outside");
        // A body inside the image: unchanged.
        let mut inner = Array3::<u8>::zeros((1, 12, 12));
        inner[[0, 5, 5]] = 1;
        let mut f = inner.clone();
        assert_eq!(fill_cut_slices(&mut f, &inner, &no_hu), 0);
        assert_eq!(f, inner);
    }

    #[test]
    fn a_lung_cut_by_the_reconstruction_circle_stays_inside_the_body() {
        // One 12 x 12 slice whose columns 0..2 and corners are padding: the body (rows 3..10,
        // columns 2..12) meets the padding on the left, with a lung (-850 HU, rows 5..8,
        // columns 2..5) open to it; pure air above the body, open to the padding too.
        let mut hu = Array3::<i16>::from_elem((1, 12, 12), -1000);
        let mut body = Array3::<u8>::zeros((1, 12, 12));
        for y in 0..12 {
            for x in 0..12 {
                if x < 2 || (y < 2 && x > 9) {
                    hu[[0, y, x]] = OUTSIDE_FOV_HU;
                } else if (3..10).contains(&y) {
                    let lung = (5..8).contains(&y) && x < 5;
                    hu[[0, y, x]] = if lung { -850 } else { 40 };
                    body[[0, y, x]] = u8::from(!lung);
                }
            }
        }
        let mut filled = body.clone();
        let cut = CutImage {
            hu: Some(&hu),
            max_pure_air: 0.35,
        };
        assert_eq!(fill_cut_slices(&mut filled, &body, &cut), 1);
        assert_eq!(filled[[0, 6, 2]], 1, "the cut lung is inside the body");
        assert_eq!(
            filled[[0, 1, 5]],
            0,
            "pure air open to the circle is outside"
        );
        assert_eq!(filled[[0, 6, 0]], 0, "padding is outside");
    }

    #[test]
    fn the_table_is_cut_off_and_air_under_the_skin_is_not_in_the_body_core() {
        // One 60 x 60 slice, 1 mm pixels: a body disc (radius 20) with an air pocket in its
        // centre and one just under the skin, and a 2-pixel table plate under it joined by a
        // 2-pixel bridge.
        let (ny, nx) = (60, 60);
        let mut hu = Array3::<i16>::from_elem((1, ny, nx), -1000);
        for y in 0..ny {
            for x in 0..nx {
                let r = ((y as f64 - 28.0).powi(2) + (x as f64 - 30.0).powi(2)).sqrt();
                if r <= 20.0 {
                    hu[[0, y, x]] = 40;
                }
                if r <= 4.0 || (y, x) == (10, 30) {
                    hu[[0, y, x]] = -900;
                }
                if (52..54).contains(&y) || ((48..52).contains(&y) && (29..31).contains(&x)) {
                    hu[[0, y, x]] = 100;
                }
            }
        }
        let b = CpuBackend::new();
        let grid = Grid::new(Geometry::axial([1.0, 1.0, 1.0]), [1, ny, nx], [1, 1, 1]);
        let low = b.upload_i16(hu.view()).expect("upload");
        let p = SegmentationParams::default();
        let body = find_body(&b, &grid, &low, &p)
            .expect("body")
            .expect("found");
        let filled = b.download_u8(&body.filled).expect("download");
        assert_eq!(filled[[0, 53, 5]], 0, "table plate cut off");
        assert_eq!(filled[[0, 28, 30]], 1, "holes filled");
        let (air, _) = air_in_body(&b, &grid, &low, &body, &p).expect("air");
        let air = b.download_u8(&air).expect("download");
        assert_eq!(air[[0, 28, 30]], 1, "deep air kept");
        assert_eq!(
            air[[0, 10, 30]],
            0,
            "air 2 mm under the skin is outside the chest"
        );
    }
}
