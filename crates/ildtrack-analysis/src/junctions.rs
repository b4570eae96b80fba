//! Vessel junctions: where several vessels meet at the hilum, their union survives the vessel
//! opening like a consolidation would; [`drop_vessel_junctions`] tells the two apart.

use crate::config::QuantifyParams;
use crate::error::AnalysisError;
use ildtrack_compute::{Backend, Ball, Connectivity, VolumeHandle};

/// Removes from `big` (the dense blobs that survived the vessel opening, working grid) the
/// blobs that are junctions of vessels: where several vessels just thinner than the vessel
/// radius meet (the hilum), their union is thick enough to survive the opening. Such a blob
/// sits in thick dense tissue (kept by an opening with half the vessel radius) that is not a
/// blob itself, several times its own volume within 2 × the vessel radius (the vessels
/// leaving it), and it is barely thicker than the vessels (largest inscribed ball at most
/// [`JUNCTION_MAX_RADIUS`] × the vessel radius); a consolidation has only thin vessels and the
/// thin edge of its own border around it, or is thicker. Blobs larger than a ball of 2 × the
/// vessel radius are kept untested (and all but the first 255 candidates).
/// See [`QuantifyParams::vessel_junction_ratio`]. Known limit: a small consolidation pressed
/// against the hilar vessels looks the same and is taken for a junction.
/// A vessel junction's largest inscribed ball is at most this multiple of the vessel radius
/// (tubes meeting out of one plane make the junction a little thicker than each of them).
const JUNCTION_MAX_RADIUS: f64 = 1.25;

pub(crate) fn drop_vessel_junctions<B: Backend>(
    b: &B,
    dense: &B::U8,
    big: B::U8,
    ls: [f64; 3],
    p: &QuantifyParams,
) -> Result<B::U8, AnalysisError> {
    if p.vessel_junction_ratio <= 0.0 {
        return Ok(big);
    }
    let (labels, infos) = b.label_components(&big, Connectivity::Full26)?;
    let r = p.vessel_radius_mm;
    let voxel_mm3 = ls[0] * ls[1] * ls[2];
    let max_voxels = 4.0 / 3.0 * std::f64::consts::PI * (2.0 * r).powi(3) / voxel_mm3;
    // Candidates get codes 1..=255 in one u8 map.
    let cands: Vec<usize> = (0..infos.len())
        .filter(|&i| (infos[i].voxels as f64) < max_voxels)
        .take(255)
        .collect();
    if cands.is_empty() {
        return Ok(big);
    }
    let mut lut = vec![0u8; infos.len() + 1];
    for (k, &i) in cands.iter().enumerate() {
        lut[i + 1] = (k + 1) as u8;
    }
    let cand_map = b.map_labels(&labels, &lut)?;
    let dims = VolumeHandle::dims_zyx(&big);
    let margin = [0, 1, 2].map(|k| (2.0 * r / ls[k]).ceil() as usize);
    let thick_ball = Ball::new(0.5 * r, ls);
    let mut junction = vec![false; infos.len() + 1];
    for (k, &i) in cands.iter().enumerate() {
        let info = &infos[i];
        let lo = [0, 1, 2].map(|a| info.min_zyx[a].saturating_sub(margin[a]));
        let hi = [0, 1, 2].map(|a| (info.max_zyx[a] + 1 + margin[a]).min(dims[a]));
        let bd = [0, 1, 2].map(|a| hi[a] - lo[a]);
        let thick = b.open(&b.crop_u8(dense, lo, bd)?, &thick_ball)?;
        let (tl, _) = b.label_components(&thick, Connectivity::Full26)?;
        let tl = b.download_u32(&tl)?;
        let blob = b.download_u8(&b.crop_u8(&cand_map, lo, bd)?)?;
        let any_blob = b.download_u8(&b.crop_u8(&big, lo, bd)?)?;
        let code = (k + 1) as u8;
        let mut touching = std::collections::HashSet::new();
        for (&t, &c) in tl.iter().zip(blob.iter()) {
            if c == code && t != 0 {
                touching.insert(t);
            }
        }
        // Thick tissue connected to this blob that is no blob itself (another consolidation
        // next to this one does not make it a junction).
        let attached = tl
            .iter()
            .zip(any_blob.iter())
            .filter(|&(&t, &g)| g == 0 && t != 0 && touching.contains(&t))
            .count();
        let ratio = attached as f64 / info.voxels.max(1) as f64;
        // The largest ball inside the dense tissue at the blob: a junction of vessels thinner
        // than the vessel radius is at most a little thicker than them.
        let mut r_in = 0.0f64;
        if ratio > p.vessel_junction_ratio {
            let dist = b.download_f32(&b.distance_mm(&b.crop_u8(dense, lo, bd)?, ls)?)?;
            for (&d, &c) in dist.iter().zip(blob.iter()) {
                if c == code {
                    r_in = r_in.max(d as f64);
                }
            }
        }
        junction[i + 1] = ratio > p.vessel_junction_ratio && r_in <= JUNCTION_MAX_RADIUS * r;
        tracing::debug!(
            blob_ml = info.voxels as f64 * voxel_mm3 / 1000.0,
            centre_zyx = ?info.centroid_zyx(),
            attached,
            ratio,
            r_in,
            junction = junction[i + 1],
            "dense blob: vessel junction test"
        );
    }
    if !junction.iter().any(|&j| j) {
        return Ok(big);
    }
    let keep: Vec<u8> = junction
        .iter()
        .enumerate()
        .map(|(l, &j)| u8::from(l != 0 && !j))
        .collect();
    Ok(b.map_labels(&labels, &keep)?)
}
