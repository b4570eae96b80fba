//! Stage `geometry`: the chest's geometry, computed once on the host and shared by both
//! outlines and the doubts.
//!
//! Contract: in, the cleaned lung labels, the body and the working-grid HU; out, per slice and
//! side the aerated lung's hull and area, the windowed outlines and mediastinum, the chamfer
//! distance of every pixel to the outside of the body with its nearest skin pixel, the depth at
//! which aerated lung starts behind each skin pixel, the rib cage's depth behind it, the rib gap
//! per side, and the non-lung regions enclosed by lung in 3-D. Reads only; removes nothing.

use super::frame::{Columns, Grid};
use super::tuning::{self, is_bone};
use crate::config::SegmentationParams;
use crate::error::AnalysisError;
use crate::plane;
use ildtrack_compute::{Backend, Connectivity};
use ndarray::{Array3, Axis};
use rayon::prelude::*;
use std::collections::HashMap;

/// One slice's aerated lung: hull vertices and area (pixels) per side (0 right, 1 left).
pub(crate) struct SliceLungs {
    pub hull: [Vec<(f64, f64)>; 2],
    pub area: [usize; 2],
}

/// One slice's outline: the (windowed) hull of the right and of the left lung, and the
/// mediastinum between them.
pub(crate) struct SliceOutline {
    pub right: Vec<bool>,
    pub left: Vec<bool>,
    pub mediastinum: Vec<bool>,
}

/// Per slice: chamfer distance (0.1 mm) of each pixel to the outside of the body and its
/// nearest skin pixel (`usize::MAX` where none); empty for slices not needed.
#[derive(Default)]
pub(crate) struct WallMap {
    pub depth: Vec<u32>,
    pub skin: Vec<usize>,
}

/// Skin pixel → depth (0.1 mm) of something behind it, per slice (and side).
pub(crate) type SkinDepths = Vec<(usize, u32)>;

pub(crate) struct ChestGeometry {
    pub grid: Grid,
    pub ny: usize,
    pub nx: usize,
    /// Chamfer weights ([`plane::chamfer_weights`]).
    pub w: [u32; 3],
    pub head_step: isize,
    pub columns: Columns,
    /// The body's centroid (working-grid index).
    pub body_centre: [f64; 3],
    pub slices: Vec<SliceLungs>,
    pub max_area: [usize; 2],
    /// The slice with the largest section, per side.
    pub widest: [usize; 2],
    /// Voxel counts of the cleaned aerated lung by label (0, 1 right, 2 left).
    pub aerated: [u64; 3],
    pub body: Array3<u8>,
    pub hu: Array3<i16>,
    pub airways: Option<Array3<u8>>,
    /// Non-lung regions enclosed by lung in 3-D (1), before clean-up.
    pub enclosed: Array3<u8>,
    pub walls: Vec<WallMap>,
    /// Per slice and side: skin pixel → depth at which aerated lung starts behind it.
    pub skin_depth: Vec<[SkinDepths; 2]>,
    /// Per slice: skin pixel → depth of the deepest bone behind it, away from the mid-line.
    pub bone_depth: Vec<SkinDepths>,
    /// Dense tissue thicker than [`tuning::RIB_GAP_MM`] between aerated lung and ribs (mL
    /// beyond that thickness), per side.
    pub rib_gap_ml: [f64; 2],
    pub include_dense: bool,
    /// The first outline's window of slices towards the head (slices).
    pub pleura_window: isize,
    pub rib_window: isize,
    pub small_hole_px: usize,
    pub pinhole_px: usize,
    /// `mediastinum_margin_mm` in chamfer units.
    pub med_margin: u32,
}

/// Non-lung regions enclosed by lung in 3-D (not connected to the volume border); on a
/// one-slice input none (a lesion enclosed by lung cannot be told from the dome seen in one
/// slice there).
pub(crate) fn enclosed_regions<B: Backend>(
    b: &B,
    lungs: &B::U8,
    ld: [usize; 3],
) -> Result<Array3<u8>, AnalysisError> {
    let mut lut = [0u8; 256];
    lut[0] = 1;
    let not_lung = b.map_u8(lungs, &lut)?;
    let (nl, ni) = b.label_components(&not_lung, Connectivity::Face6)?;
    let mut elut = vec![0u8; ni.len() + 1];
    for (i, c) in ni.iter().enumerate() {
        let touches = ld[0] == 1 || (0..3).any(|k| c.min_zyx[k] == 0 || c.max_zyx[k] + 1 == ld[k]);
        elut[i + 1] = u8::from(!touches);
    }
    Ok(b.download_u8(&b.map_labels(&nl, &elut)?)?)
}

/// The host arrays the geometry is measured on.
pub(crate) struct HostVolumes {
    pub lungs: Array3<u8>,
    pub body: Array3<u8>,
    pub hu: Array3<i16>,
    pub airways: Option<Array3<u8>>,
    pub enclosed: Array3<u8>,
}

impl HostVolumes {
    /// The backend volumes the host stages need, each dropped as soon as it is on the host
    /// (peak memory); the enclosed regions from the lungs before clean-up.
    pub(crate) fn download<B: Backend>(
        b: &B,
        lungs: B::U8,
        body: B::U8,
        hu: B::I16,
        airways: Option<&B::U8>,
        ld: [usize; 3],
    ) -> Result<HostVolumes, AnalysisError> {
        let lungs_h = b.download_u8(&lungs)?;
        let body_h = b.download_u8(&body)?;
        drop(body);
        let hu_h = b.download_i16(&hu)?;
        drop(hu);
        let airways = airways.map(|a| b.download_u8(a)).transpose()?;
        let enclosed = enclosed_regions(b, &lungs, ld)?;
        Ok(HostVolumes {
            lungs: lungs_h,
            body: body_h,
            hu: hu_h,
            airways,
            enclosed,
        })
    }
}

impl ChestGeometry {
    pub(crate) fn measure(
        grid: &Grid,
        host: HostVolumes,
        body_centre: [f64; 3],
        centre_x: f64,
        p: &SegmentationParams,
    ) -> (ChestGeometry, Array3<u8>) {
        let HostVolumes {
            lungs,
            body,
            hu,
            airways,
            enclosed,
        } = host;
        let (ls, ld) = (grid.ls, grid.dims);
        let (ny, nx) = (ld[1], ld[2]);
        let w = plane::chamfer_weights([ls[1], ls[2]]);
        let mut aerated = [0u64; 3];
        lungs
            .iter()
            .for_each(|&v| aerated[(v as usize).min(2)] += 1);
        let slices = slice_lungs(&lungs);
        let max_area = [0, 1].map(|k| slices.iter().map(|s| s.area[k]).max().unwrap_or(0));
        let widest = [0, 1].map(|k| {
            (0..slices.len())
                .max_by_key(|&z| slices[z].area[k])
                .unwrap_or(0)
        });
        let include_dense = p.include_dense_regions;
        let walls: Vec<WallMap> = (0..ld[0])
            .into_par_iter()
            .map(|z| {
                if !include_dense || (slices[z].area[0] == 0 && slices[z].area[1] == 0) {
                    return WallMap::default();
                }
                let exterior: Vec<bool> = body
                    .index_axis(Axis(0), z)
                    .iter()
                    .map(|&v| v == 0)
                    .collect();
                let (depth, skin) = plane::chamfer_feature(&exterior, ny, nx, w);
                WallMap { depth, skin }
            })
            .collect();
        let columns = Columns::new(grid, body_centre, centre_x);
        let skin_depth = aerated_depths(&walls, &lungs);
        let bone_depth = bone_depths(&walls, &hu, &columns.central);
        let rib_window = (tuning::RIB_WINDOW_MM / ls[0]).round() as isize;
        let mut geo = ChestGeometry {
            grid: *grid,
            ny,
            nx,
            w,
            head_step: grid.head_step(),
            columns,
            body_centre,
            slices,
            max_area,
            widest,
            aerated,
            body,
            hu,
            airways,
            enclosed,
            walls,
            skin_depth,
            bone_depth,
            rib_gap_ml: [0.0, 0.0],
            include_dense,
            pleura_window: (p.pleura_window_mm / ls[0]).round() as isize,
            rib_window,
            small_hole_px: (p.hole_max_area_mm2 / (ls[1] * ls[2])).ceil() as usize,
            pinhole_px: (tuning::PINHOLE_MAX_MM2 / (ls[1] * ls[2])).ceil() as usize,
            med_margin: (p.mediastinum_margin_mm * 10.0).round() as u32,
        };
        geo.rib_gap_ml = geo.rib_gap(&[]);
        (geo, lungs)
    }

    /// The rib gap measured again without the slices `cut` marks (the image cuts the body next
    /// to the lung there: the nearest exterior pixel is not skin, so depths behind it are not
    /// chest wall). Unchanged when no slice is cut.
    pub(crate) fn ignore_cut_slices(&mut self, cut: &[bool]) {
        if cut.contains(&true) {
            self.rib_gap_ml = self.rib_gap(cut);
        }
    }

    /// Per slice the outline of each lung and the mediastinum. The hull of a side is that of
    /// its aerated lung in this slice and the slices up to `window` towards the head (disease
    /// hides the lung's outline in its own slice, not in the lung above it). The mediastinum
    /// lies between the two lungs' own hulls in this slice, or (`outlined`) between their
    /// windowed hulls — the outline the lungs had in the slices above; the mid-line band is
    /// mediastinum too (touching lungs leave no gap; one lung has no other hull).
    pub(crate) fn outlines(&self, window: isize, outlined: bool) -> Vec<SliceOutline> {
        let (ny, nx, nz) = (self.ny, self.nx, self.grid.dims[0]);
        let slices = &self.slices;
        (0..nz)
            .into_par_iter()
            .map(|z| {
                let windowed = |k: usize| -> Vec<(f64, f64)> {
                    if slices[z].hull[k].is_empty() {
                        return Vec::new();
                    }
                    let mut pts = Vec::new();
                    for j in 0..=window {
                        let zz = z as isize + j * self.head_step;
                        if zz < 0 || zz >= nz as isize {
                            break;
                        }
                        pts.extend_from_slice(&slices[zz as usize].hull[k]);
                    }
                    plane::hull_of_points(pts)
                };
                let (vr, vl) = (windowed(0), windowed(1));
                let right = plane::fill_polygon(&vr, ny, nx);
                let left = plane::fill_polygon(&vl, ny, nx);
                let between = |a: &[(f64, f64)], b: &[(f64, f64)], ha: &[bool], hb: &[bool]| {
                    let both: Vec<(f64, f64)> = a.iter().chain(b).copied().collect();
                    let all = plane::fill_polygon(&plane::hull_of_points(both), ny, nx);
                    all.iter()
                        .zip(ha.iter().zip(hb))
                        .map(|(&b, (&r, &l))| b && !r && !l)
                        .collect::<Vec<bool>>()
                };
                let own = &slices[z].hull;
                let mut mediastinum = if outlined && !vr.is_empty() && !vl.is_empty() {
                    between(&vr, &vl, &right, &left)
                } else if !own[0].is_empty() && !own[1].is_empty() {
                    let own_r = plane::fill_polygon(&own[0], ny, nx);
                    let own_l = plane::fill_polygon(&own[1], ny, nx);
                    between(&own[0], &own[1], &own_r, &own_l)
                } else {
                    vec![false; ny * nx]
                };
                for (i, m) in mediastinum.iter_mut().enumerate() {
                    if self.columns.midline[i % nx] {
                        *m = true;
                    }
                }
                SliceOutline {
                    right,
                    left,
                    mediastinum,
                }
            })
            .collect()
    }

    /// Dense tissue between the aerated lung and the rib cage thicker than
    /// [`tuning::RIB_GAP_MM`], per side (mL beyond that thickness), in slices whose section is
    /// at least 1/[`tuning::RIB_GAP_SECTION_DIVISOR`] of the side's largest (apex and base have
    /// other tissue there), beyond the paravertebral band: consolidation or effusion along the
    /// chest wall that the first outline may not touch at all. 0 on one-slice inputs.
    fn rib_gap(&self, cut: &[bool]) -> [f64; 2] {
        let (ls, ld) = (self.grid.ls, self.grid.dims);
        if ld[0] == 1 {
            return [0.0, 0.0];
        }
        let (ny, nx) = (self.ny, self.nx);
        (0..ld[0])
            .into_par_iter()
            .map(|z| {
                let sides = [0, 1].map(|k| {
                    self.slices[z].area[k] * tuning::RIB_GAP_SECTION_DIVISOR >= self.max_area[k]
                        && self.max_area[k] > 0
                });
                if !sides.iter().any(|&s| s) || cut.get(z).copied().unwrap_or(false) {
                    return [0.0, 0.0];
                }
                let ribs = rib_grid(&self.bone_depth, z, self.rib_window, ny, nx);
                [0, 1].map(|k| {
                    if !sides[k] {
                        return 0.0;
                    }
                    self.skin_depth[z][k]
                        .iter()
                        .filter(|&&(sp, _)| !self.columns.paravertebral[sp % nx])
                        .filter_map(|&(sp, l)| {
                            rib_gap_beyond_mm(l, max3x3(&ribs, ny, nx, sp))
                                .map(|gap| gap * ls[1].max(ls[2]) * ls[0] / 1000.0)
                        })
                        .sum::<f64>()
                })
            })
            .reduce(|| [0.0, 0.0], |a, b| [a[0] + b[0], a[1] + b[1]])
    }
}

/// The dense band's thickness beyond [`tuning::RIB_GAP_MM`] (mm) between the ribs at depth
/// `rib` and aerated lung starting at depth `lung` (chamfer units) behind one skin point;
/// `None` where there is no rib or the band is thinner.
pub(crate) fn rib_gap_beyond_mm(lung: u32, rib: u32) -> Option<f64> {
    let gap_mm = (f64::from(lung) - f64::from(rib)) / 10.0;
    (rib > 0 && gap_mm > tuning::RIB_GAP_MM).then_some(gap_mm - tuning::RIB_GAP_MM)
}

/// Hull vertices and aerated area per slice and side.
fn slice_lungs(lungs: &Array3<u8>) -> Vec<SliceLungs> {
    let (ny, nx) = (lungs.shape()[1], lungs.shape()[2]);
    lungs
        .axis_iter(Axis(0))
        .into_par_iter()
        .map(|s| {
            let sl = s.as_standard_layout();
            let px = sl.as_slice().unwrap_or(&[]);
            let r: Vec<bool> = px.iter().map(|&v| v == 1).collect();
            let l: Vec<bool> = px.iter().map(|&v| v == 2).collect();
            let area = [
                r.iter().filter(|&&v| v).count(),
                l.iter().filter(|&&v| v).count(),
            ];
            SliceLungs {
                hull: [
                    plane::hull_of_points(plane::extreme_points(&r, ny, nx)),
                    plane::hull_of_points(plane::extreme_points(&l, ny, nx)),
                ],
                area,
            }
        })
        .collect()
}

/// Per slice and side: for each skin pixel, the shallowest depth at which aerated lung of that
/// side lies behind it (nearest-skin feature map).
fn aerated_depths(walls: &[WallMap], lungs: &Array3<u8>) -> Vec<[SkinDepths; 2]> {
    (0..walls.len())
        .into_par_iter()
        .map(|z| {
            let mut out: [SkinDepths; 2] = [Vec::new(), Vec::new()];
            let WallMap { depth, skin } = &walls[z];
            if depth.is_empty() {
                return out;
            }
            let mut best: [HashMap<usize, u32>; 2] = Default::default();
            for (i, &v) in lungs.index_axis(Axis(0), z).iter().enumerate() {
                if (v == 1 || v == 2) && skin[i] != usize::MAX {
                    let e = best[v as usize - 1].entry(skin[i]).or_insert(u32::MAX);
                    *e = (*e).min(depth[i]);
                }
            }
            for k in 0..2 {
                out[k] = best[k].iter().map(|(&s, &d)| (s, d)).collect();
            }
            out
        })
        .collect()
}

/// Per slice: for each skin pixel, the depth of the deepest bone ([`is_bone`]) behind it away
/// from the `central` columns (vertebrae, sternum): the rib cage's inner surface.
fn bone_depths(walls: &[WallMap], hu: &Array3<i16>, central: &[bool]) -> Vec<SkinDepths> {
    let nx = hu.shape()[2];
    (0..walls.len())
        .into_par_iter()
        .map(|z| {
            let WallMap { depth, skin } = &walls[z];
            if depth.is_empty() {
                return Vec::new();
            }
            let mut best: HashMap<usize, u32> = Default::default();
            for (i, &h) in hu.index_axis(Axis(0), z).iter().enumerate() {
                if is_bone(h) && !central[i % nx] && skin[i] != usize::MAX {
                    let e = best.entry(skin[i]).or_insert(0);
                    *e = (*e).max(depth[i]);
                }
            }
            best.into_iter().collect()
        })
        .collect()
}

/// Depth of the rib cage's inner surface per skin pixel: the deepest bone behind it in the
/// nearest slice within `z ± window` that has bone there (of two equally near, the deeper); 0
/// where none. The nearest slice, not the deepest over the window: where ribs run obliquely
/// past a skin point the window's deepest lies well inside this slice's ribs.
pub(crate) fn rib_grid(
    bone_depth: &[SkinDepths],
    z: usize,
    window: isize,
    ny: usize,
    nx: usize,
) -> Vec<u32> {
    let mut ribs = vec![0u32; ny * nx];
    let n = bone_depth.len() as isize;
    let mut found: Vec<(usize, u32)> = Vec::new();
    for dz in 0..=window {
        let near: &[isize] = if dz == 0 { &[0] } else { &[-dz, dz] };
        found.clear();
        for &o in near {
            let zz = z as isize + o;
            if (0..n).contains(&zz) {
                found.extend(
                    bone_depth[zz as usize]
                        .iter()
                        .filter(|&&(sp, _)| ribs[sp] == 0),
                );
            }
        }
        // Both slices at this distance are read before either is written.
        for &(sp, d) in &found {
            ribs[sp] = ribs[sp].max(d);
        }
    }
    ribs
}

/// Pleura depth (chamfer units) behind each skin pixel of slice `z` for side `k`: the
/// shallowest depth at which aerated lung met that skin pixel on each side of `z` (towards the
/// head, towards the feet, within `window`), and the deeper of the two — a lesion at `z`
/// (deeper lung behind it) is skipped on both sides, and where the wall's depth changes
/// steadily along z the near side gives about the depth at `z`; `u32::MAX` where unknown.
pub(crate) fn pleura_depth(
    skin_depth: &[[SkinDepths; 2]],
    z: usize,
    k: usize,
    window: isize,
    ny: usize,
    nx: usize,
) -> Vec<u32> {
    let lo = (z as isize - window).max(0) as usize;
    let hi = ((z as isize + window) as usize).min(skin_depth.len().saturating_sub(1));
    let side = |a: usize, b: usize| {
        let mut g = vec![u32::MAX; ny * nx];
        for sd in &skin_depth[a..=b] {
            for &(s, d) in &sd[k] {
                g[s] = g[s].min(d);
            }
        }
        g
    };
    let (up, down) = (side(lo, z), side(z, hi));
    up.iter()
        .zip(&down)
        .map(|(&a, &b)| {
            if a == u32::MAX || b == u32::MAX {
                a.min(b)
            } else {
                a.max(b)
            }
        })
        .collect()
}

/// `f` folded over the 3×3 neighbourhood of pixel `s` (clipped at the border), from `init`.
fn fold3x3(g: &[u32], ny: usize, nx: usize, s: usize, init: u32, f: fn(u32, u32) -> u32) -> u32 {
    let (y, x) = (s / nx, s % nx);
    let mut m = init;
    for yy in y.saturating_sub(1)..=(y + 1).min(ny - 1) {
        for xx in x.saturating_sub(1)..=(x + 1).min(nx - 1) {
            m = f(m, g[yy * nx + xx]);
        }
    }
    m
}

/// Maximum of `g` over the 3×3 neighbourhood of pixel `s`.
pub(crate) fn max3x3(g: &[u32], ny: usize, nx: usize, s: usize) -> u32 {
    fold3x3(g, ny, nx, s, 0, u32::max)
}

/// Minimum of `g` over the 3×3 neighbourhood of pixel `s`.
pub(crate) fn min3x3(g: &[u32], ny: usize, nx: usize, s: usize) -> u32 {
    fold3x3(g, ny, nx, s, u32::MAX, u32::min)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::config::SegmentationParams;
    use ildtrack_compute::CpuBackend;
    use ildtrack_volume::Geometry;

    /// Three slices of 40 x 40, 2 mm voxels: a body square, two lung squares either side of the
    /// mid-line with an 8-column gap, ribs (300 HU) under the lateral skin (33 mm from the
    /// mid-line: beyond the central band).
    fn chest() -> (Grid, HostVolumes) {
        let (nz, ny, nx) = (3, 40, 40);
        let mut lungs = Array3::<u8>::zeros((nz, ny, nx));
        let mut hu = Array3::<i16>::from_elem((nz, ny, nx), 40);
        let body = Array3::<u8>::from_shape_fn((nz, ny, nx), |(_, y, x)| {
            u8::from((2..38).contains(&y) && (2..38).contains(&x))
        });
        for z in 0..nz {
            for y in 10..30 {
                for x in 8..16 {
                    lungs[[z, y, x]] = 1;
                    lungs[[z, y, x + 16]] = 2;
                }
                hu[[z, y, 3]] = 300;
                hu[[z, y, 36]] = 300;
            }
        }
        let grid = Grid::new(Geometry::axial([2.0, 2.0, 2.0]), [nz, ny, nx], [1, 1, 1]);
        let enclosed = Array3::zeros((nz, ny, nx));
        (
            grid,
            HostVolumes {
                lungs,
                body,
                hu,
                airways: None,
                enclosed,
            },
        )
    }

    #[test]
    fn the_chest_geometry_sees_hulls_mediastinum_skin_and_ribs() {
        let (grid, host) = chest();
        let p = SegmentationParams::default();
        let centre = [1.0, 19.5, 19.5];
        let (g, lungs) = ChestGeometry::measure(&grid, host, centre, grid.lps_x(centre), &p);
        assert_eq!(lungs[[1, 20, 10]], 1);
        assert_eq!(g.aerated, [3 * 1600 - 2 * 3 * 160, 3 * 160, 3 * 160]);
        assert_eq!(g.slices[1].area, [160, 160]);
        let o = g.outlines(0, false);
        // The gap between the lungs is mediastinum, the lungs' own hulls are not.
        assert!(o[1].mediastinum[20 * 40 + 20]);
        assert!(!o[1].mediastinum[20 * 40 + 10] && o[1].right[20 * 40 + 10]);
        assert!(o[1].left[20 * 40 + 28] && !o[1].right[20 * 40 + 28]);
        // Wall distance from the body's edge; ribs seen behind the lateral skin.
        let edge = g.walls[1].depth[20 * 40 + 2];
        assert!(
            edge > 0 && edge <= g.w[0].max(g.w[1]),
            "outermost body pixel: one step"
        );
        assert!(g.walls[1].depth[20 * 40 + 10] > edge);
        assert!(!g.bone_depth[1].is_empty(), "ribs behind the skin");
        assert!(!g.skin_depth[1][0].is_empty() && !g.skin_depth[1][1].is_empty());
        assert_eq!(g.rib_gap_ml, [0.0, 0.0], "lung right against the ribs");
    }

    #[test]
    fn only_regions_enclosed_by_lung_in_3d_are_enclosed() {
        // A 5 x 7 x 7 lung block with a one-voxel cavity in its centre and a notch open to the
        // top slice.
        let mut lungs = Array3::<u8>::zeros((5, 7, 7));
        for z in 0..5 {
            for y in 1..6 {
                for x in 1..6 {
                    lungs[[z, y, x]] = 1;
                }
            }
        }
        lungs[[2, 3, 3]] = 0;
        lungs[[4, 3, 3]] = 0;
        let b = CpuBackend::new();
        let up = b.upload_u8(lungs.view()).expect("upload");
        let e = enclosed_regions(&b, &up, [5, 7, 7]).expect("enclosed");
        assert_eq!(e[[2, 3, 3]], 1);
        assert_eq!(e[[4, 3, 3]], 0, "open to the volume border");
        let flat = lungs.slice(ndarray::s![2..3, .., ..]).to_owned();
        let up = b.upload_u8(flat.view()).expect("upload");
        let e = enclosed_regions(&b, &up, [1, 7, 7]).expect("enclosed");
        assert_eq!(e[[0, 3, 3]], 0, "one slice: nothing is enclosed in 3-D");
    }

    #[test]
    fn the_rib_grid_takes_the_nearest_slice_with_bone() {
        // Skin pixel 0: bone at depth 30 in slice 1 and 80 in slice 3; from slice 2 both are
        // one slice away: the deeper (80). From slice 1 its own (30), not the window's deepest.
        let bone = vec![vec![], vec![(0, 30)], vec![], vec![(0, 80)], vec![(1, 5)]];
        assert_eq!(rib_grid(&bone, 2, 2, 1, 2)[0], 80);
        assert_eq!(rib_grid(&bone, 1, 2, 1, 2)[0], 30);
        assert_eq!(
            rib_grid(&bone, 0, 0, 1, 2),
            vec![0, 0],
            "nothing within the window"
        );
    }

    #[test]
    fn pleura_depth_skips_a_lesion_seen_on_both_sides() {
        // Skin pixel 0, side 0: the lung starts at 25-30 above, 40-45 below, and at 90 in the
        // lesion's slice (2). Each side's shallowest (25, 40), the deeper of the two: 40. Only
        // one side known: that side's. Unknown: MAX.
        let sd = |d: Option<u32>| -> [SkinDepths; 2] {
            [d.map(|d| vec![(0, d)]).unwrap_or_default(), vec![]]
        };
        let s = vec![
            sd(Some(30)),
            sd(Some(25)),
            sd(Some(90)),
            sd(Some(40)),
            sd(Some(45)),
        ];
        assert_eq!(pleura_depth(&s, 2, 0, 2, 1, 2), vec![40, u32::MAX]);
        let one_side = vec![sd(None), sd(None), sd(Some(90)), sd(Some(40)), sd(None)];
        assert_eq!(pleura_depth(&one_side, 1, 0, 1, 1, 1), vec![90]);
        assert_eq!(pleura_depth(&one_side, 0, 0, 0, 1, 1), vec![u32::MAX]);
    }

    #[test]
    fn a_rib_gap_counts_only_beyond_its_threshold_and_behind_a_rib() {
        assert_eq!(rib_gap_beyond_mm(500, 0), None, "no rib");
        assert_eq!(
            rib_gap_beyond_mm(100 + 300, 100),
            None,
            "exactly the threshold"
        );
        let g = rib_gap_beyond_mm(100 + 350, 100).expect("gap");
        assert!((g - 5.0).abs() < 1e-9);
    }

    #[test]
    fn neighbourhood_extremes_clip_at_the_border() {
        let g = [5, 1, 9, 4, 7, 3];
        assert_eq!(max3x3(&g, 2, 3, 0), 7);
        assert_eq!(min3x3(&g, 2, 3, 5), 1);
    }
}
