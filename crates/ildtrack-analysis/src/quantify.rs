//! Quantification on the full grid, cropped to the lungs: density classes (vessels and
//! junctions excluded, subpleural lenses kept as consolidation, noise-pushed consolidation
//! recovered, noisy scans classified on smoothed HU, GGO speckle opened away) and exact 1-HU
//! histograms per region (sides, six zones, subpleural vs core).

use crate::config::QuantifyParams;
use crate::error::AnalysisError;
use crate::junctions::drop_vessel_junctions;
use crate::plane;
use crate::segment;
use crate::stages::Stages;
use crate::stats;
use ildtrack_compute::{Backend, Ball, Connectivity, MaskOp, VolumeHandle};
use ildtrack_model::visit::{HuHistogram, Lungs, Metrics, Thresholds, Zones};
use ildtrack_volume::{OUTSIDE_FOV_HU, Volume};
use ndarray::{Array3, s};

const HIST_LO_HU: i16 = -2048;
const HIST_HI_HU: i16 = 3071;
/// Region codes on the full grid: 1..=6 zones (RU RM RL LU LM LL) in the core, +6 subpleural.
const N_REGIONS: usize = 13;

pub(crate) struct Quantified {
    pub(crate) lungs: Lungs,
    pub(crate) histogram: HuHistogram,
    pub(crate) lungs_full: Array3<u8>,
    pub(crate) classes_full: Array3<u8>,
    /// The classes decided on the harmonized HU, where harmonization was applied and
    /// `HarmonizeMix::keep_classes` asked for them (same grid).
    pub(crate) classes_harmonized_full: Option<Array3<u8>>,
    /// `quantify.*` stage times (ms), for `timings_ms`.
    pub(crate) stage_ms: Vec<(String, f64)>,
    /// Metrics and whole-lung histogram of the same mask on the harmonized HU, where asked.
    pub(crate) harmonized: Option<(Lungs, HuHistogram)>,
}

/// Kernel harmonization for [`quantify`]: the `gaussian_mix` that turns the scan's HU into
/// the harmonized HU, and whether the harmonized classes are decided on smoothed HU
/// (`denoise`, from the noise measured after harmonization).
pub(crate) struct HarmonizeMix {
    pub(crate) sigmas_mm: Vec<f64>,
    pub(crate) weights: Vec<f32>,
    pub(crate) denoise: bool,
    /// Keep the harmonized classes on the full grid (`Quantified::classes_harmonized_full`).
    pub(crate) keep_classes: bool,
}

/// Working class code (never written out): GGO in a vessel's rim, until it is known whether it
/// borders a GGO patch.
const RIM_GGO: u8 = stats::class::COUNT as u8;

/// The box `lo..hi` (z, y, x) of an array.
fn crop<T>(a: &Array3<T>, lo: [usize; 3], hi: [usize; 3]) -> ndarray::ArrayView3<'_, T> {
    a.slice(s![lo[0]..hi[0], lo[1]..hi[1], lo[2]..hi[2]])
}

/// A subpleural lens reaches at least this multiple of the vessel radius into the lung.
const LENS_MIN_DEPTH: f64 = 0.5;
/// The chest wall holding a lens starts this multiple of the vessel radius inside the hull.
const LENS_HULL_MARGIN: f64 = 0.5;

/// Dense tissue inside the lungs that rests on the chest wall and is thick enough to hold the
/// vessel ball when the ball may reach into the wall: a subpleural lens of consolidation
/// (a band or hemisphere under the pleura, thinner than 2 × `vessel_radius_mm`) that the
/// in-lung opening alone takes for vessel. Vessels touching the pleura are thinner than the
/// ball's cap. Working grid, cropped to `lo..hi` like the lungs; computed on a crop widened by
/// the ball so the wall beside the lungs is there. `None` when off
/// ([`QuantifyParams::subpleural_lens`]).
fn subpleural_lenses<B: Backend>(
    b: &B,
    seg: &segment::Segmentation,
    lo: [usize; 3],
    hi: [usize; 3],
    dense_hu: i16,
    p: &QuantifyParams,
) -> Result<Option<B::U8>, AnalysisError> {
    if !p.subpleural_lens {
        return Ok(None);
    }
    let ls = seg.low_spacing_mm;
    let ld = seg.lungs_low.shape();
    let m = [0, 1, 2].map(|k| (p.vessel_radius_mm / ls[k]).ceil() as usize + 1);
    let wlo = [0, 1, 2].map(|k| lo[k].saturating_sub(m[k]));
    let whi = [0, 1, 2].map(|k| (hi[k] + m[k]).min(ld[k]));
    let lungs_h = crop(&seg.lungs_low, wlo, whi);
    // Where the ball may lie: dense lung, and the chest wall (segmentation's: nearer the skin
    // than the mid-line band) outside the convex hull of both lungs in each slice — not the
    // mediastinum, heart, hila or diaphragm dome, which the lungs curve around.
    let (ny, nx) = (whi[1] - wlo[1], whi[2] - wlo[2]);
    let mut outside_hull = ndarray::Array3::<u8>::zeros(lungs_h.raw_dim());
    // The lung's outline dips under a lens where the lung beside it reaches further out: the
    // wall starts a little inside the hull.
    let hull_margin_mm = LENS_HULL_MARGIN * p.vessel_radius_mm;
    {
        use ndarray::Axis;
        use rayon::prelude::*;
        outside_hull
            .axis_iter_mut(Axis(0))
            .into_par_iter()
            .zip(lungs_h.axis_iter(Axis(0)).into_par_iter())
            .for_each(|(mut out, lung)| {
                let m: Vec<bool> = lung.iter().map(|&v| v != 0).collect();
                let hull = plane::hull_of_points(plane::extreme_points(&m, ny, nx));
                let inner =
                    plane::fill_polygon_inset(&hull, hull_margin_mm, [ls[1], ls[2]], ny, nx);
                for ((o, &l), &h) in out.iter_mut().zip(&m).zip(&inner) {
                    *o = u8::from(l || !h);
                }
            });
    }
    let outside_hull = b.upload_u8(outside_hull.view())?;
    let lungs = b.upload_u8(lungs_h)?;
    let hu = b.upload_i16(crop(&seg.low_hu, wlo, whi))?;
    let dense_lung = b.mask_op(&b.threshold(&hu, dense_hu, i16::MAX)?, &lungs, MaskOp::And)?;
    let chest_wall = b.upload_u8(crop(&seg.chest_wall_low, wlo, whi))?;
    let wall = b.mask_op(
        &b.mask_op(&chest_wall, &outside_hull, MaskOp::And)?,
        &lungs,
        MaskOp::AndNot,
    )?;
    drop((chest_wall, hu, outside_hull));
    let dense_held = b.mask_op(&dense_lung, &wall, MaskOp::Or)?;
    // Centres of the balls that fit and reach into the wall (balls wholly inside the lung are
    // the plain opening's, and the vessel-junction test has had its say on those).
    let ball = Ball::new(p.vessel_radius_mm, ls);
    let centres = b.mask_op(
        &b.erode(&dense_held, &ball)?,
        &b.dilate(&wall, &ball)?,
        MaskOp::And,
    )?;
    drop((dense_held, wall));
    let lens = b.mask_op(&b.dilate(&centres, &ball)?, &dense_lung, MaskOp::And)?;
    drop((centres, dense_lung));
    // A lens reaches deeper into the lung than the ball's cap in a vessel touching the pleura
    // or the partial-volume rim of the pleura: keep the pieces that reach `LENS_MIN_DEPTH` ×
    // the vessel radius from the lung's border.
    // On thick slices the depth reaches one slice up and down as well: the diaphragm dome and
    // the chest wall cut obliquely by a thick slice leave lens-shaped partial-volume bands. On
    // coarse pixels (> 2 mm) it is at least 1.5 pixels: a vessel's cap there is a whole pixel
    // (the 2.5 mm 'small' phantom had 0.4 mL of such caps as consolidation).
    let depth_mm = (LENS_MIN_DEPTH * p.vessel_radius_mm)
        .max(1.01 * ls[0])
        .max(1.5 * ls[1].max(ls[2]));
    let deep = b.mask_op(
        &b.erode(&lungs, &Ball::new(depth_mm, ls))?,
        &lens,
        MaskOp::And,
    )?;
    let (labels, infos) = b.label_components(&lens, Connectivity::Full26)?;
    let mut keep = vec![0u8; infos.len() + 1];
    {
        let lh = b.download_u32(&labels)?;
        let dh = b.download_u8(&deep)?;
        for (&l, &d) in lh.iter().zip(dh.iter()) {
            if d != 0 && l != 0 {
                keep[l as usize] = 1;
            }
        }
    }
    tracing::debug!(
        pieces = infos.len(),
        kept = keep.iter().filter(|&&k| k != 0).count(),
        "subpleural lens pieces"
    );
    let lens = b.map_labels(&labels, &keep)?;
    let inner = [0, 1, 2].map(|k| lo[k] - wlo[k]);
    let bd = [0, 1, 2].map(|k| hi[k] - lo[k]);
    Ok(Some(b.crop_u8(&lens, inner, bd)?))
}

/// What the density classes of any HU source of the crop share: the dense regions too thick
/// for the vessel opening (consolidation; working grid, upsampled) and, where on, the
/// consolidated voxels whose smoothed block mean lies under the upper edge. Both come from the
/// segmentation's working-grid HU, so they are computed once for the scan's own HU and the
/// harmonized HU.
struct VesselStructures<B: Backend> {
    big_c: B::U8,
    fix: Option<B::U8>,
}

/// Inputs of [`classes_of`] that do not change with the HU source.
struct ClassContext<'a, B: Backend> {
    lungs_c: &'a B::U8,
    edges: [i16; 4],
    p: &'a QuantifyParams,
    spacing: [f64; 3],
}

#[allow(clippy::too_many_arguments)]
fn vessel_structures<B: Backend>(
    b: &B,
    seg: &segment::Segmentation,
    lungs_lc: &B::U8,
    lo: [usize; 3],
    hi: [usize; 3],
    f: [usize; 3],
    fb: [usize; 3],
    edges: [i16; 4],
    p: &QuantifyParams,
    stages: &mut Stages,
) -> Result<VesselStructures<B>, AnalysisError> {
    // Large dense regions (consolidation) survive an opening with a ball of
    // `vessel_radius_mm` on the working grid; thinner dense structures are vessels, and so
    // are the survivors where several thick vessels meet (junctions).
    let low_hu = b.upload_i16(crop(&seg.low_hu, lo, hi))?;
    let dense_low = b.mask_op(
        &b.threshold(&low_hu, edges[2], i16::MAX)?,
        lungs_lc,
        MaskOp::And,
    )?;
    // Under the consolidation's upper edge once averaged (working-grid block means,
    // smoothed in-plane): see below.
    let under_low = if p.noise_sigma_mm > 0.0 {
        let sm = b.gaussian(
            &low_hu,
            [0.0, p.noise_sigma_mm, p.noise_sigma_mm],
            seg.low_spacing_mm,
        )?;
        Some(b.threshold(&sm, i16::MIN, edges[3].saturating_sub(1))?)
    } else {
        None
    };
    drop(low_hu);
    let ls = seg.low_spacing_mm;
    let big_low = b.open(&dense_low, &Ball::new(p.vessel_radius_mm, ls))?;
    let big_low = drop_vessel_junctions(b, &dense_low, big_low, ls, p)?;
    stages.lap("quantify.vessel_opening");
    let big_low = match subpleural_lenses(b, seg, lo, hi, edges[2], p)? {
        Some(lens) => b.mask_op(&big_low, &lens, MaskOp::Or)?,
        None => big_low,
    };
    stages.lap("quantify.subpleural_lens");
    let big_low = b.dilate(
        &big_low,
        &Ball::new(1.01 * ls.iter().copied().fold(0.0, f64::max), ls),
    )?;
    let big_c = b.upsample_nearest(&big_low, f, fb)?;
    // Consolidated and under the upper edge once smoothed (see below), on the working grid.
    let fix_low = match under_low {
        Some(u) => Some(b.mask_op(&u, &big_low, MaskOp::And)?),
        None => None,
    };
    drop((dense_low, big_low));
    let fix = match fix_low {
        Some(fix_low) => Some(b.upsample_nearest(&fix_low, f, fb)?),
        None => None,
    };
    Ok(VesselStructures { big_c, fix })
}

/// Density classes of the crop from one HU source (the scan's own or the harmonized), vessels
/// excluded (see [`quantify`]).
fn classes_of<B: Backend>(
    b: &B,
    hu_c: &B::I16,
    denoise: bool,
    vs: &VesselStructures<B>,
    cx: &ClassContext<'_, B>,
) -> Result<B::U8, AnalysisError> {
    let (lungs_c, edges, p, spacing) = (cx.lungs_c, cx.edges, cx.p, cx.spacing);
    let mut classes = b.classify(hu_c, lungs_c, &edges)?;
    // Noisy scans (sharp kernels, low dose): noise scatters GGO voxels out of their range and
    // the speckle opening then removes what is left of thin GGO. The class of non-dense lung is
    // decided on HU smoothed in-plane there (dense classes and vessels stay on the scan's own
    // HU). A wider σ turns the edges of dense structures into GGO; soft kernels are untouched.
    if denoise {
        let hs = b.gaussian(hu_c, [0.0, p.denoise_sigma_mm, p.denoise_sigma_mm], spacing)?;
        let smoothed = b.classify(&hs, lungs_c, &edges)?;
        drop(hs);
        use stats::class::{CONSOLIDATION, COUNT, OUTSIDE};
        let mut lut = vec![0u8; COUNT * COUNT];
        for own in 0..COUNT as u8 {
            for sm in 0..COUNT as u8 {
                let keep_own = own == OUTSIDE || own >= CONSOLIDATION || sm >= CONSOLIDATION;
                lut[own as usize * COUNT + sm as usize] = if keep_own { own } else { sm };
            }
        }
        classes = b.combine_u8(&classes, &smoothed, COUNT, &lut)?;
    }
    let dense = b.mask_op(
        &b.threshold(hu_c, edges[2], i16::MAX)?,
        lungs_c,
        MaskOp::And,
    )?;
    let vessel = b.mask_op(&dense, &vs.big_c, MaskOp::AndNot)?;
    drop(dense);
    // Noise pushes consolidation over the upper edge: a voxel of a consolidated region at
    // or above `consolidation_hi_hu` whose working-grid block mean, smoothed in-plane (σ
    // `noise_sigma_mm`), is under it is consolidation, not a vessel or bone (sharp kernels: a
    // third of a 30 HU consolidation lies above +100 HU at 90 HU noise). Contrast-filled
    // vessels and calcification stay above the edge after smoothing and stay excluded. (The
    // same smoothing on the full grid: same result, +400 ms at 512 x 512 x 300.)
    if let Some(fix) = &vs.fix {
        let mut lut = vec![0u8; stats::class::COUNT * 2];
        for c in 0..stats::class::COUNT {
            lut[c * 2] = c as u8;
            lut[c * 2 + 1] = if c == stats::class::VESSEL_DENSE as usize {
                stats::class::CONSOLIDATION
            } else {
                c as u8
            };
        }
        classes = b.combine_u8(&classes, fix, 2, &lut)?;
    }
    // Vessels and their rim: GGO within `vessel_margin_mm` of a vessel is the vessel's
    // partial volume (below: unless it borders a GGO patch).
    let rim_disk = Ball::disk(p.vessel_margin_mm, spacing);
    let rim = b.dilate(&vessel, &rim_disk)?;
    let vcode = b.combine_u8(&vessel, &rim, 2, &[0, 1, 2, 2])?; // 0 none, 1 rim, 2 vessel
    drop((vessel, rim));
    let mut lut = vec![0u8; stats::class::COUNT * 3];
    for c in 0..stats::class::COUNT as u8 {
        for v in 0..3u8 {
            lut[(c * 3 + v) as usize] = match (c, v) {
                (0, _) => 0,
                (_, 2) => stats::class::VESSEL_DENSE,
                (stats::class::GGO, 1) => RIM_GGO,
                _ => c,
            };
        }
    }
    classes = b.combine_u8(&classes, &vcode, 3, &lut)?;
    drop(vcode);
    // GGO speckle and thin partial-volume halos: GGO voxels removed by an in-plane opening
    // become "normal" (sharp-kernel noise, vessel walls in thick slices); GGO patches stay.
    // Thick slices smear every small vessel crossing the slab into a GGO-range streak with
    // no dense core: the opening grows with the slice spacing (the smear's width).
    // At least one pixel: on coarse pixels (> 1 mm) a 1 mm disk is the pixel itself and the
    // opening would remove nothing.
    // A vessel crossing ground glass is surrounded by ground glass, not by its own halo: rim
    // GGO within the rim's width of a patch is GGO. Without the opening there are no
    // patches to tell halos from: the rim is all vessel.
    let ggo_open_mm = p
        .ggo_opening_mm
        .max(p.ggo_opening_per_slice * spacing[0])
        .max(1.01 * spacing[1].max(spacing[2]));
    let mut gl = [0u8; 256];
    gl[stats::class::GGO as usize] = 1;
    let ggo = b.map_u8(&classes, &gl)?;
    // Per voxel: 2 in a GGO patch, + 1 next to one (within the rim's width).
    let code = if p.ggo_opening_mm > 0.0 {
        let kept = b.open(&ggo, &Ball::disk(ggo_open_mm, spacing))?;
        drop(ggo);
        let near_patch = b.dilate(&kept, &rim_disk)?;
        b.combine_u8(&kept, &near_patch, 2, &[0, 1, 2, 3])?
    } else {
        // No opening: every GGO voxel is in a patch, none counts as next to one.
        let mut l = [0u8; 256];
        l[1] = 2;
        b.map_u8(&ggo, &l)?
    };
    // (class, in a patch, next to one) -> class.
    let mut sl = vec![0u8; (RIM_GGO as usize + 1) * 4];
    for c in 0..=RIM_GGO {
        for code in 0..4u8 {
            let (in_patch, near) = (code / 2 == 1, code % 2 == 1);
            sl[c as usize * 4 + code as usize] = match c {
                stats::class::GGO if !in_patch => stats::class::NORMAL,
                RIM_GGO if near => stats::class::GGO,
                RIM_GGO => stats::class::VESSEL_DENSE,
                _ => c,
            };
        }
    }
    classes = b.combine_u8(&classes, &code, 4, &sl)?;
    drop(code);
    Ok(classes)
}

/// Metrics of every region and the whole-lung histogram from the per-region histograms and
/// class counts.
fn region_results(
    hist: &ildtrack_compute::Histograms,
    jc: &[u64],
    voxel_ml: f64,
    t: &Thresholds,
) -> (Lungs, HuHistogram) {
    let metrics_of = |codes: &[usize]| -> Metrics {
        let nb = hist.n_bins();
        let mut h = vec![0u64; nb];
        let mut c = vec![0u64; stats::class::COUNT];
        for &r in codes {
            h.iter_mut().zip(hist.label(r)).for_each(|(a, b)| *a += b);
            for k in 0..stats::class::COUNT {
                c[k] += jc[r * stats::class::COUNT + k];
            }
        }
        stats::region_metrics(&h, HIST_LO_HU as i32, &c, voxel_ml, t)
    };
    let zone = |z: usize| metrics_of(&[z, z + 6]);
    let lungs = Lungs {
        whole: metrics_of(&(1..13).collect::<Vec<_>>()),
        right: metrics_of(&[1, 2, 3, 7, 8, 9]),
        left: metrics_of(&[4, 5, 6, 10, 11, 12]),
        zones: Zones {
            right_upper: zone(1),
            right_middle: zone(2),
            right_lower: zone(3),
            left_upper: zone(4),
            left_middle: zone(5),
            left_lower: zone(6),
        },
        subpleural: metrics_of(&[7, 8, 9, 10, 11, 12]),
        core: metrics_of(&[1, 2, 3, 4, 5, 6]),
    };
    let mut histogram = HuHistogram::default();
    for r in 1..N_REGIONS {
        for (i, &c) in hist.label(r).iter().enumerate() {
            if c > 0
                && let Some(k) = histogram.bin_index(HIST_LO_HU as i32 + i as i32)
            {
                histogram.counts[k] += c;
            }
        }
    }
    (lungs, histogram)
}

pub(crate) fn quantify<B: Backend>(
    b: &B,
    hu: &Volume<i16>,
    seg: &segment::Segmentation,
    t: &Thresholds,
    p: &QuantifyParams,
    denoise: bool,
    harmonize: Option<&HarmonizeMix>,
) -> Result<Quantified, AnalysisError> {
    let dims = hu.dims_zyx();
    let spacing = hu.geometry.spacing_mm;
    let f = seg.factors;
    let voxel_ml = hu.geometry.voxel_volume_ml();
    let ls = seg.lungs_low.shape();
    let ld = [ls[0], ls[1], ls[2]];
    // Bounding box of the lungs on the working grid, one block of margin (slices in parallel,
    // each row by its first and last non-zero voxel).
    let (mut lo, mut hi) = {
        use ndarray::Axis;
        use rayon::prelude::*;
        let none = (ld, [0usize; 3]);
        let merge = |a: ([usize; 3], [usize; 3]), b: ([usize; 3], [usize; 3])| {
            (
                [0, 1, 2].map(|k| a.0[k].min(b.0[k])),
                [0, 1, 2].map(|k| a.1[k].max(b.1[k])),
            )
        };
        seg.lungs_low
            .axis_iter(Axis(0))
            .into_par_iter()
            .enumerate()
            .map(|(z, sl)| {
                let mut bb = none;
                for (y, row) in sl.outer_iter().enumerate() {
                    if let (Some(x0), Some(x1)) = (
                        row.iter().position(|&v| v != 0),
                        row.iter().rposition(|&v| v != 0),
                    ) {
                        bb = merge(bb, ([z, y, x0], [z + 1, y + 1, x1 + 1]));
                    }
                }
                bb
            })
            .reduce(|| none, merge)
    };
    if hi[0] == 0 {
        let empty = Metrics::default();
        let zones = Zones {
            right_upper: empty.clone(),
            right_middle: empty.clone(),
            right_lower: empty.clone(),
            left_upper: empty.clone(),
            left_middle: empty.clone(),
            left_lower: empty.clone(),
        };
        return Ok(Quantified {
            lungs: Lungs {
                whole: empty.clone(),
                left: empty.clone(),
                right: empty.clone(),
                zones,
                subpleural: empty.clone(),
                core: empty,
            },
            histogram: HuHistogram::default(),
            lungs_full: Array3::zeros((dims[0], dims[1], dims[2])),
            classes_full: Array3::zeros((dims[0], dims[1], dims[2])),
            classes_harmonized_full: None,
            stage_ms: Vec::new(),
            harmonized: None,
        });
    }
    for k in 0..3 {
        lo[k] = lo[k].saturating_sub(1);
        hi[k] = (hi[k] + 1).min(ld[k]);
    }
    let flo = [0, 1, 2].map(|k| lo[k] * f[k]);
    let fhi = [0, 1, 2].map(|k| (hi[k] * f[k]).min(dims[k]));
    let fb = [0, 1, 2].map(|k| fhi[k] - flo[k]);
    let mut stages = Stages::start();

    // Working-grid lungs and HU, cropped to the lungs' box (one voxel of background around).
    let lungs_lc = b.upload_u8(crop(&seg.lungs_low, lo, hi))?;
    let lungs_c = b.upsample_nearest(&lungs_lc, f, fb)?;
    let hu_c = b.upload_i16(crop(&hu.data, flo, fhi))?;
    // Boundary refinement on the full grid: voxels within one working-grid voxel (in-plane)
    // outside the mask that are lung-like (below the consolidation threshold) join the
    // neighbouring lung. Recovers the blockiness of the upsampled mask.
    let lungs_c = {
        let ls = seg.low_spacing_mm;
        let disk = Ball::disk(1.01 * ls[1].max(ls[2]), ls);
        let mut dil = Vec::new();
        for side in 1..=2u8 {
            let mut lut = [0u8; 256];
            lut[side as usize] = side;
            dil.push(b.dilate(&b.map_u8(&lungs_lc, &lut)?, &disk)?);
        }
        // right wins where both reach.
        let mut band_low = b.combine_u8(&dil[0], &dil[1], 2, &[0, 2, 1, 1])?;
        drop(dil);
        if let Some(edge) = &seg.image_edge_low {
            let edge = b.upload_u8(crop(edge, lo, hi))?;
            let none = b.fill_u8([0, 1, 2].map(|k| hi[k] - lo[k]), 0)?;
            band_low = b.select(&edge, &none, &band_low)?;
        }
        let band = b.upsample_nearest(&band_low, f, fb)?;
        let lungish = b.threshold(
            &hu_c,
            OUTSIDE_FOV_HU + 1,
            (t.consolidation_lo_hu - 1).clamp(-2048, 4095) as i16,
        )?;
        let add = b.mask_op(&lungish, &lungs_c, MaskOp::AndNot)?;
        let refined = b.select(&add, &band, &lungs_c)?;
        drop((band, lungish, add));
        refined
    };
    stages.lap("quantify.refine");
    // Density classes with vessels excluded.
    let clamp16 = |v: i32| v.clamp(i16::MIN as i32, i16::MAX as i32) as i16;
    let edges = [
        t.laa_hu,
        t.ggo_lo_hu,
        t.consolidation_lo_hu,
        t.consolidation_hi_hu,
    ]
    .map(clamp16);
    // The harmonized HU of the same crop (classes and histograms only: the mask above came
    // from the scan's own HU and stays).
    let hu_h = match harmonize {
        Some(h) => Some(b.gaussian_mix(&hu_c, &h.sigmas_mm, &h.weights, spacing)?),
        None => None,
    };
    stages.lap("quantify.harmonize");
    let vs = vessel_structures(b, seg, &lungs_lc, lo, hi, f, fb, edges, p, &mut stages)?;
    let cx = ClassContext {
        lungs_c: &lungs_c,
        edges,
        p,
        spacing,
    };
    let classes = classes_of(b, &hu_c, denoise, &vs, &cx)?;
    // Peak memory: the cropped HU copy is not needed again until the histogram; it is
    // uploaded again there.
    drop(hu_c);
    let classes_h = match (&hu_h, harmonize) {
        (Some(hh), Some(h)) => Some(classes_of(b, hh, h.denoise, &vs, &cx)?),
        _ => None,
    };
    drop(vs);
    stages.lap("quantify.classes");
    // Zones: equal thirds of each lung's own z extent; "upper" is towards the head.
    let nzc = fb[0];
    let sc = b.slice_counts(&lungs_c, 3)?;
    let head_up = hu.geometry.direction[0][2] >= 0.0;
    let mut table = vec![0u8; nzc * 3];
    for side in 1..=2usize {
        let zs: Vec<usize> = (0..nzc).filter(|&z| sc[z * 3 + side] > 0).collect();
        if let (Some(&z0), Some(&z1)) = (zs.first(), zs.last()) {
            let n = (z1 - z0 + 1) as f64;
            for z in z0..=z1 {
                let third = ((3.0 * (z - z0) as f64 / n).floor() as usize).min(2);
                let zone = if head_up { 2 - third } else { third };
                table[z * 3 + side] = ((side - 1) * 3 + zone + 1) as u8;
            }
        }
    }
    let zone_map = b.map_u8_per_slice(&lungs_c, 3, &table)?;
    // Subpleural band on the working grid (computed here, late, for peak memory).
    let sub_c = {
        let d = b.distance_mm(&lungs_lc, seg.low_spacing_mm)?;
        let band = b.threshold_f32(&d, 0.0, t.subpleural_mm as f32)?;
        drop(d);
        b.upsample_nearest(&band, f, fb)?
    };
    let mut rlut = vec![0u8; 7 * 2];
    for r in 1..7u8 {
        rlut[(r * 2) as usize] = r;
        rlut[(r * 2 + 1) as usize] = r + 6;
    }
    let region = b.combine_u8(&zone_map, &sub_c, 2, &rlut)?;
    drop((zone_map, sub_c));
    let hu_c = b.upload_i16(crop(&hu.data, flo, fhi))?;
    let hist = b.histogram(&hu_c, &region, N_REGIONS, HIST_LO_HU, HIST_HI_HU)?;
    let jc = b.joint_counts(&region, &classes, N_REGIONS, stats::class::COUNT)?;
    drop(hu_c);
    let harmonized = match (&hu_h, &classes_h) {
        (Some(hh), Some(ch)) => Some((
            b.histogram(hh, &region, N_REGIONS, HIST_LO_HU, HIST_HI_HU)?,
            b.joint_counts(&region, ch, N_REGIONS, stats::class::COUNT)?,
        )),
        _ => None,
    };
    drop((region, hu_h));
    let classes_h = classes_h.filter(|_| harmonize.is_some_and(|h| h.keep_classes));

    stages.lap("quantify.regions_histogram");
    let (lungs, histogram) = region_results(&hist, &jc, voxel_ml, t);
    let harmonized = harmonized.map(|(h, j)| region_results(&h, &j, voxel_ml, t));
    debug_assert_eq!(VolumeHandle::dims_zyx(&classes), fb);
    // Padded to the input grid on the host: the cropped maps come down, the full-grid copies
    // are never on the backend (peak memory).
    // Slices in parallel: the first touch of a fresh volume's pages is a large part of the cost.
    let pad_host = |v: Array3<u8>| -> Array3<u8> {
        use ndarray::Axis;
        use rayon::prelude::*;
        let mut full = Array3::<u8>::zeros((dims[0], dims[1], dims[2]));
        full.axis_iter_mut(Axis(0))
            .into_par_iter()
            .enumerate()
            .for_each(|(z, mut sl)| {
                if (flo[0]..fhi[0]).contains(&z) {
                    sl.slice_mut(s![flo[1]..fhi[1], flo[2]..fhi[2]])
                        .assign(&v.index_axis(Axis(0), z - flo[0]));
                }
            });
        full
    };
    let lungs_full = pad_host(b.download_u8(&lungs_c)?);
    drop(lungs_c);
    let classes_full = pad_host(b.download_u8(&classes)?);
    drop(classes);
    let classes_harmonized_full = match classes_h {
        Some(ch) => Some(pad_host(b.download_u8(&ch)?)),
        None => None,
    };
    stages.lap("quantify.metrics_maps");
    Ok(Quantified {
        lungs,
        histogram,
        lungs_full,
        classes_full,
        classes_harmonized_full,
        stage_ms: stages.ms,
        harmonized,
    })
}
