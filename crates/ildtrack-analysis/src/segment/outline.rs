//! Stage `outline`: dense disease kept inside the lung, per slice and side, bounded by the
//! pleura and the chest wall. Used twice: the first outline of every scan, and the second
//! outline of a side whose first outline cut dense tissue or left a thick dense band inside the
//! ribs (`second_outline`).
//!
//! Contract: in, lung labels of aerated lung and a [`Pass`]; out, the labels with holes filled
//! and dense disease added, and per slice and side the size of the cut (added pixels next to
//! dense tissue the rule left out). Never removes a voxel of the input labels; never adds bone,
//! tissue outside the body, the airways, or what lies more than [`tuning::DOME_MARGIN_MM`]
//! under a side's fitted diaphragm dome.

use super::geometry::{
    ChestGeometry, SliceOutline, WallMap, max3x3, min3x3, pleura_depth, rib_grid,
};
use super::tuning;
use crate::dome::Dome;
use crate::plane;
use ndarray::{Array3, Axis};
use rayon::prelude::*;

/// How one outline pass works.
pub(crate) struct Pass<'a> {
    /// Per slice: the sides' hulls and the mediastinum ([`ChestGeometry::outlines`]).
    pub outlines: &'a [SliceOutline],
    /// Slices on each side of `z` whose aerated lung gives the pleura's depth.
    pub pleura_window: isize,
    /// A voxel is taken when its distance to the chest wall is at most this × its distance to
    /// the mediastinum.
    pub wall_factor: f64,
    /// Per side: no aerated lung may lie on the straight line to the nearest skin point.
    pub lung_between_test: [bool; 2],
    /// The rib cage bounds the lung where its own outline is hidden (second outline).
    pub rib_bound: bool,
    /// Per side: the fitted diaphragm dome.
    pub domes: [Option<Dome>; 2],
}

/// One pass over every slice of `lungs`; returns the cut per slice and side (pixels).
pub(crate) fn outline_pass(
    g: &ChestGeometry,
    lungs: &mut Array3<u8>,
    pass: &Pass,
) -> Vec<[u64; 2]> {
    lungs
        .axis_iter_mut(Axis(0))
        .into_par_iter()
        .enumerate()
        .map(|(z, mut s)| {
            let px: Vec<u8> = s.iter().copied().collect();
            if px.iter().all(|&v| v == 0) {
                return [0, 0];
            }
            let (out, cut) = outline_slice(g, pass, z, px);
            s.iter_mut().zip(out).for_each(|(o, v)| *o = v);
            cut
        })
        .collect()
}

/// What the per-side rules of one slice read.
struct SliceCtx<'a> {
    g: &'a ChestGeometry,
    pass: &'a Pass<'a>,
    z: usize,
    cand: &'a [bool],
    aerated: &'a [bool],
    body: &'a [bool],
    /// Geodesic distance to the mediastinum through non-aerated pixels.
    d_med: &'a [u32],
    /// The rib cage's inner surface per skin pixel ([`rib_grid`]), with a rib bound.
    ribs: Option<&'a [u32]>,
    wall: &'a WallMap,
}

fn outline_slice(g: &ChestGeometry, pass: &Pass, z: usize, px: Vec<u8>) -> (Vec<u8>, [u64; 2]) {
    let (ny, nx) = (g.ny, g.nx);
    let mut cut_px = [0u64; 2];
    let body: Vec<bool> = g
        .body
        .index_axis(Axis(0), z)
        .iter()
        .map(|&v| v != 0)
        .collect();
    let hu: Vec<i16> = g.hu.index_axis(Axis(0), z).iter().copied().collect();
    let airway: Option<Vec<u8>> = g
        .airways
        .as_ref()
        .map(|a| a.index_axis(Axis(0), z).iter().copied().collect());
    let enclosed = |i: usize| g.enclosed[[z, i / nx, i % nx]] != 0;
    let mut filled: Vec<Vec<bool>> = [1u8, 2u8]
        .iter()
        .map(|&side| fill_lung_holes(&px, side, ny, nx, g.small_hole_px, enclosed))
        .collect();
    if g.include_dense {
        let cand = dense_candidates(&px, &filled, &body, &hu);
        let o = &pass.outlines[z];
        if cand
            .iter()
            .enumerate()
            .any(|(i, &c)| c && (o.right[i] || o.left[i]))
        {
            let aerated: Vec<bool> = px.iter().map(|&v| v != 0).collect();
            // Distance to the mediastinum through non-aerated pixels: dense tissue with aerated
            // lung between it and the mediastinum is not mediastinum.
            let not_aerated: Vec<bool> = aerated.iter().map(|&a| !a).collect();
            let d_med = plane::chamfer_geodesic(&o.mediastinum, Some(&not_aerated), ny, nx, g.w);
            let ribs = pass
                .rib_bound
                .then(|| rib_grid(&g.bone_depth, z, g.rib_window, ny, nx));
            let ctx = SliceCtx {
                g,
                pass,
                z,
                cand: &cand,
                aerated: &aerated,
                body: &body,
                d_med: &d_med,
                ribs: ribs.as_deref(),
                wall: &g.walls[z],
            };
            for (k, hull) in [&o.right, &o.left].into_iter().enumerate() {
                if let Some((f, cut)) = add_dense(&ctx, k, hull, &filled[k]) {
                    cut_px[k] += cut;
                    filled[k] = f;
                }
            }
        }
    }
    let mut out = px;
    for (k, f) in filled.iter().enumerate() {
        for i in 0..ny * nx {
            let airway_here = airway.as_ref().is_some_and(|a| a[i] != 0);
            if f[i] && out[i] == 0 && !airway_here {
                out[i] = k as u8 + 1;
            }
        }
    }
    (out, cut_px)
}

/// Side `k`'s dense additions in one slice: its lung (`filled`) and the cut, or `None` when
/// nothing is added.
fn add_dense(ctx: &SliceCtx, k: usize, hull: &[bool], filled: &[bool]) -> Option<(Vec<bool>, u64)> {
    let SliceCtx { g, pass, z, .. } = *ctx;
    let (ny, nx, ls) = (g.ny, g.nx, g.grid.ls);
    let cols = &g.columns;
    let dome = pass.domes[k];
    let rel = (z as isize - g.widest[k] as isize) * g.head_step;
    let (below_widest, above_widest) = (rel < 0, rel > 0);
    if !section_outlined(
        g.slices[z].area[k],
        g.max_area[k],
        pass.rib_bound,
        below_widest,
        dome.is_some(),
    ) {
        return None;
    }
    let head_mm = z as f64 * ls[0] * g.head_step as f64;
    let under_dome =
        |i: usize| dome.is_some_and(|d| under_dome_at(head_mm, d.at(i / nx, i % nx, ls)));
    let (d_all, nearest) = (&ctx.wall.depth, &ctx.wall.skin);
    let pleura = pleura_depth(&g.skin_depth, z, k, pass.pleura_window, ny, nx);
    // Second outline, slices above the widest: the hulls of the slices towards the apex are
    // narrower than the lung here, and a lateral lesion lay outside every hull. The rib cage
    // bounds the lung there too, on this side, away from the mid-line (no walks from such
    // voxels: the ribs bound them already).
    let cage_ribs = ctx.ribs.filter(|_| pass.rib_bound && above_widest);
    let inside_cage = |i: usize| -> bool {
        let Some(r) = cage_ribs else { return false };
        let sp = nearest[i];
        if sp == usize::MAX || cols.central[i % nx] || cols.right[i % nx] != (k == 0) {
            return false;
        }
        inside_rib_cage(d_all[i], max3x3(r, ny, nx, sp))
    };
    // The pleura from nearby slices only (the first outline's window), with the rib cage.
    let near_ribs = ctx.ribs.map(|r| {
        (
            pleura_depth(&g.skin_depth, z, k, g.pleura_window, ny, nx),
            r,
        )
    });
    let lps = |i: usize| g.grid.lps([z as f64, (i / nx) as f64, (i % nx) as f64]);
    let from_back = |i: usize, sp: usize| seen_from_back(lps(i), lps(sp));
    let mid_band = if pass.rib_bound && k == 0 {
        &cols.central_narrow
    } else {
        &cols.central
    };
    let step = g.w[0].max(g.w[1]);
    // Seen from the back (beyond the mid-line band), the wall's depth counts from the pleura.
    let wall_depth = |i: usize| -> u32 {
        let d = d_all[i];
        if nearest[i] == usize::MAX || mid_band[i % nx] || !from_back(i, nearest[i]) {
            return d;
        }
        depth_from_pleura(d, min3x3(&pleura, ny, nx, nearest[i]), step)
    };
    let mut f = filled.to_vec();
    let mut added: Vec<usize> = Vec::new();
    for i in 0..ny * nx {
        if ctx.cand[i]
            && (hull[i]
                || (inside_cage(i) && (!from_back(i, nearest[i]) || !cols.paravertebral[i % nx])))
            && nearer_wall(wall_depth(i), ctx.d_med[i], pass.wall_factor, g.med_margin)
            && nearest[i] != usize::MAX
            && !under_dome(i)
            && (!pass.lung_between_test[k] || !plane::line_blocked(ctx.aerated, nx, i, nearest[i]))
        {
            f[i] = true;
            added.push(i);
        }
    }
    if added.is_empty() {
        return None;
    }
    if g.grid.dims[0] == 1 {
        drop_organ_parts(&mut f, filled, ctx.cand, hull, ny, nx);
        added.retain(|&i| f[i]);
        if added.is_empty() {
            return None;
        }
    }
    // Out to the pleura: from each added voxel towards its nearest skin point, as long as it
    // stays deeper than the pleura there.
    let before_walks = near_ribs.is_some().then(|| f.clone());
    for &q in &added {
        if !hull[q] {
            continue;
        }
        let sp = nearest[q];
        let near = near_ribs
            .as_ref()
            .map(|(near, ribs)| (min3x3(near, ny, nx, sp), max3x3(ribs, ny, nx, sp)));
        let limit = walk_limit(min3x3(&pleura, ny, nx, sp), near);
        let slack = walk_slack(step, from_back(q, sp));
        if limit == u32::MAX {
            continue;
        }
        plane::walk_line(nx, q, sp, |r| {
            if ctx.cand[r]
                && !under_dome(r)
                && d_all[r] != u32::MAX
                && d_all[r] + slack >= limit
                && !f[r]
            {
                f[r] = true;
                true
            } else {
                f[r] && d_all[r] >= limit
            }
        });
    }
    if near_ribs.is_some() {
        close_comb(&mut f, ctx.cand, under_dome, ny, nx);
        if let Some(before) = &before_walks {
            drop_spurs(&mut f, before, ny, nx);
        }
    }
    fill_pinholes(&mut f, ctx.body, ctx.cand, g.pinhole_px, ny, nx);
    let cut = count_cut(&f, filled, ctx.cand, hull, ny, nx);
    Some((f, cut))
}

/// Side `side`'s lung with holes filled: small ones (up to `small_hole_px`: vessels, bronchi)
/// and those `enclosed` by lung in 3-D; a large hole open below or above (the diaphragm dome
/// seen in one slice) stays out.
pub(crate) fn fill_lung_holes(
    px: &[u8],
    side: u8,
    ny: usize,
    nx: usize,
    small_hole_px: usize,
    enclosed: impl Fn(usize) -> bool,
) -> Vec<bool> {
    let m: Vec<bool> = px.iter().map(|&v| v == side).collect();
    if !m.iter().any(|&v| v) {
        return m;
    }
    let filled = plane::fill_holes(&m, ny, nx);
    let holes: Vec<bool> = filled.iter().zip(&m).map(|(&f, &m)| f && !m).collect();
    let mut out = m;
    for comp in plane::components(&holes, ny, nx) {
        if comp.len() <= small_hole_px || comp.iter().any(|&i| enclosed(i)) {
            for i in comp {
                out[i] = true;
            }
        }
    }
    out
}

/// Candidates for dense disease: body tissue that is neither lung (of either side, holes
/// filled) nor at or over [`tuning::CANDIDATE_MAX_HU`] (bone, contrast).
pub(crate) fn dense_candidates(
    px: &[u8],
    filled: &[Vec<bool>],
    body: &[bool],
    hu: &[i16],
) -> Vec<bool> {
    (0..px.len())
        .map(|i| {
            px[i] == 0
                && !filled[0][i]
                && !filled[1][i]
                && body[i]
                && hu[i] < tuning::CANDIDATE_MAX_HU
        })
        .collect()
}

/// A section under 1/[`tuning::SMALL_SECTION_DIVISOR`] of the side's largest (apex, base) gets
/// no additions: the hull spans the diaphragm dome there, not disease. The second outline
/// (`rib_bound`) outlines such slices above the widest (an upper-zone lesion reaching the apex),
/// and below it where a dome model keeps the organ under the dome out.
pub(crate) fn section_outlined(
    area: usize,
    max_area: usize,
    rib_bound: bool,
    below_widest: bool,
    has_dome: bool,
) -> bool {
    let outlined_anyway = rib_bound && (!below_widest || has_dome);
    area * tuning::SMALL_SECTION_DIVISOR >= max_area || outlined_anyway
}

/// Under the fitted dome (height `dome_mm` along the head axis) by more than
/// [`tuning::DOME_MARGIN_MM`]: liver or spleen, not disease.
pub(crate) fn under_dome_at(head_mm: f64, dome_mm: f64) -> bool {
    head_mm < dome_mm - tuning::DOME_MARGIN_MM
}

/// At least [`tuning::RIB_MARGIN_CU`] deeper than the rib cage's inner surface `rib` (0: no rib).
pub(crate) fn inside_rib_cage(depth: u32, rib: u32) -> bool {
    rib > 0 && depth >= rib + tuning::RIB_MARGIN_CU
}

/// The nearest skin point `skin` (LPS) lies behind the voxel `at` (LPS +y), within 45°.
pub(crate) fn seen_from_back(at: [f64; 3], skin: [f64; 3]) -> bool {
    let (dx, dy) = (skin[0] - at[0], skin[1] - at[1]);
    dy > 0.0 && dy >= dx.abs()
}

/// Seen from the back, the body wall (paravertebral muscles) is much thicker than at the side:
/// a voxel's distance to the chest wall counts from the pleura (`pleura`, the depth at which
/// aerated lung meets that skin point nearby), not from the skin. Shallower than the pleura
/// (within one chamfer `step`) is chest wall: the full distance stays.
pub(crate) fn depth_from_pleura(depth: u32, pleura: u32, step: u32) -> u32 {
    if pleura == u32::MAX || depth < pleura + step {
        depth
    } else {
        depth - pleura
    }
}

/// Bounded by the chest wall: the wall is no farther than `factor` × the mediastinum, or the
/// mediastinum is at least `med_margin` away.
pub(crate) fn nearer_wall(wall: u32, d_med: u32, factor: f64, med_margin: u32) -> bool {
    wall as f64 <= factor * d_med as f64 || d_med >= med_margin
}

/// One slice cannot tell disease from an organ (liver dome, spleen, heart) by its 3-D context:
/// a dense region (`cand` within `hull`) of which the rule took under
/// [`tuning::SINGLE_SLICE_MIN_SHARE`] is such an organ, and its part is dropped.
pub(crate) fn drop_organ_parts(
    f: &mut [bool],
    filled: &[bool],
    cand: &[bool],
    hull: &[bool],
    ny: usize,
    nx: usize,
) {
    let region: Vec<bool> = (0..ny * nx).map(|i| cand[i] && hull[i]).collect();
    for c in plane::components(&region, ny, nx) {
        let taken = c.iter().filter(|&&i| f[i] && !filled[i]).count();
        if taken > 0 && (taken as f64) < tuning::SINGLE_SLICE_MIN_SHARE * c.len() as f64 {
            for &i in &c {
                if !filled[i] {
                    f[i] = false;
                }
            }
        }
    }
}

/// How deep a walk from an added voxel towards skin point goes: to the pleura seen there
/// (`pleura`). With a rib bound (`near` = the pleura seen in nearby slices and the rib cage's
/// depth there): where no aerated lung met the skin point nearby, or only deeper than
/// [`tuning::RIB_GAP_MM`] inside the ribs (aerated lung in front of a posterior lesion), no
/// deeper than [`tuning::RIB_MARGIN_CU`] inside the ribs; where it was seen nearby, no deeper
/// than there.
pub(crate) fn walk_limit(pleura: u32, near: Option<(u32, u32)>) -> u32 {
    let mut limit = pleura;
    if let Some((nl, rib)) = near {
        let hidden = nl == u32::MAX || (rib > 0 && nl > rib + (tuning::RIB_GAP_MM as u32) * 10);
        if hidden && rib > 0 {
            limit = limit.min(rib + tuning::RIB_MARGIN_CU);
        } else if nl != u32::MAX {
            limit = limit.min(nl);
        }
    }
    limit
}

/// A walk may stop this far short of the pleura (chamfer steps): the lung's posterior outline
/// curves along z, and seen from the back the depth beside a lesion overestimates it.
pub(crate) fn walk_slack(step: u32, from_back: bool) -> u32 {
    let (n, d) = if from_back {
        tuning::WALK_SLACK_BACK
    } else {
        tuning::WALK_SLACK_SIDE
    };
    step * n / d
}

/// Walks out to the ribs leave a comb of lines: the gaps between them are closed (a square of
/// 2 × [`tuning::COMB_CLOSE_PX`] + 1), dense non-bone tissue only, never under the dome.
pub(crate) fn close_comb(
    f: &mut [bool],
    cand: &[bool],
    under_dome: impl Fn(usize) -> bool,
    ny: usize,
    nx: usize,
) {
    let closed = plane::close_square(f, ny, nx, tuning::COMB_CLOSE_PX);
    for i in 0..ny * nx {
        if closed[i] && !f[i] && cand[i] && !under_dome(i) {
            f[i] = true;
        }
    }
}

/// Single walks that found no neighbours leave spurs into the chest wall: what the walks added
/// (not in `before`) and a 3×3 square inside the lung cannot cover goes.
pub(crate) fn drop_spurs(f: &mut [bool], before: &[bool], ny: usize, nx: usize) {
    let opened = plane::open_square(f, ny, nx, 1);
    for i in 0..ny * nx {
        if f[i] && !opened[i] && !before[i] {
            f[i] = false;
        }
    }
}

/// Pinholes (≤ `pinhole_px`) the lung encloses whose pixels are body but not candidates (over
/// the candidates' HU limit: noise of sharp kernels, or a vessel in the consolidation) are
/// lung: left out, they would cut the consolidation apart for the vessel opening.
pub(crate) fn fill_pinholes(
    f: &mut [bool],
    body: &[bool],
    cand: &[bool],
    pinhole_px: usize,
    ny: usize,
    nx: usize,
) {
    let holes = plane::fill_holes(f, ny, nx);
    let pin: Vec<bool> = holes.iter().zip(f.iter()).map(|(&h, &v)| h && !v).collect();
    for comp in plane::components(&pin, ny, nx) {
        if comp.len() <= pinhole_px && comp.iter().all(|&i| body[i] && !cand[i]) {
            for i in comp {
                f[i] = true;
            }
        }
    }
}

/// The cut: added pixels (in `f`, not in `filled`) 4-adjacent to a candidate inside the hull
/// that the rule left out (the split between chest wall and mediastinum).
pub(crate) fn count_cut(
    f: &[bool],
    filled: &[bool],
    cand: &[bool],
    hull: &[bool],
    ny: usize,
    nx: usize,
) -> u64 {
    let mut cut = 0u64;
    for i in 0..ny * nx {
        if f[i] && !filled[i] {
            let nb = crate::plane::neighbours4(i, ny, nx);
            if nb.iter().flatten().any(|&j| cand[j] && hull[j] && !f[j]) {
                cut += 1;
            }
        }
    }
    cut
}

#[cfg(test)]
#[path = "outline_tests.rs"]
mod tests;
