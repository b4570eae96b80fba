//! Stage `candidates`: which air components are lung.
//!
//! Contract: in, the lung candidates (air in the body's core less the airways); out, their
//! labels and the kept lung components (largest first). A component is lung when it has a
//! lung-like mean, is not mostly pure air, is thick somewhere and is large enough; lung broken
//! up by dense ground glass is regrown through thick regions of it first. Never removes: a
//! candidate component that passes those tests (up to [`tuning::MAX_LUNG_COMPONENTS`]).

use super::frame::Grid;
use super::tuning;
use crate::config::SegmentationParams;
use crate::error::AnalysisError;
use ildtrack_compute::{Backend, Ball, ComponentInfo, Connectivity, MaskOp};
use ildtrack_volume::OUTSIDE_FOV_HU;
use ndarray::Array3;

/// Labelled air components and which of them are lung.
pub(crate) struct LungComponents<B: Backend> {
    pub labels: B::U32,
    pub infos: Vec<ComponentInfo>,
    /// Indices into `infos` of the lung components, largest first.
    pub kept: Vec<usize>,
}

/// What [`find_lungs`] needs besides the candidates.
pub(crate) struct CandidateInputs<'a, B: Backend> {
    pub low: &'a B::I16,
    pub air: &'a B::U8,
    pub body_core: &'a B::U8,
    pub airways: Option<&'a B::U8>,
}

/// The lung components of `candidates`; lung filled with dense ground glass (−400 to
/// `dense_lung_hu`) breaks the aerated lung into fragments below the size rule: thick regions
/// of that range 6-connected to lung-like air of a tenth of the size join the candidates and the
/// components are found again with the full rules.
pub(crate) fn find_lungs<B: Backend>(
    b: &B,
    grid: &Grid,
    mut candidates: B::U8,
    inp: &CandidateInputs<'_, B>,
    p: &SegmentationParams,
) -> Result<LungComponents<B>, AnalysisError> {
    let (mut found, seeds) = lung_components(b, &candidates, inp.low, grid, p)?;
    let regrow = super::coarse::Step::DenseGroundGlass.runs(grid);
    if regrow && p.dense_lung_hu > p.air_hu && !seeds.is_empty() {
        let loose = b.mask_op(
            &b.threshold(inp.low, OUTSIDE_FOV_HU + 1, p.dense_lung_hu)?,
            inp.body_core,
            MaskOp::And,
        )?;
        let mut extra = b.mask_op(&loose, inp.air, MaskOp::AndNot)?;
        if let Some(a) = inp.airways {
            extra = b.mask_op(&extra, a, MaskOp::AndNot)?;
        }
        let thick = b.open(&extra, &Ball::new(tuning::DENSE_GG_OPENING_MM, grid.ls))?;
        if b.value_counts(&thick)?.get(1).is_some_and(|&c| c > 0) {
            let mut lut = vec![0u8; found.infos.len() + 1];
            for &i in &seeds {
                lut[i + 1] = 1;
            }
            let lung_h = b.download_u8(&b.map_labels(&found.labels, &lut)?)?;
            let (reached, grown) = grow_into(&lung_h, &b.download_u8(&thick)?);
            if grown > 0 {
                candidates = b.mask_op(&candidates, &b.upload_u8(reached.view())?, MaskOp::Or)?;
                (found, _) = lung_components(b, &candidates, inp.low, grid, p)?;
                tracing::debug!(grown, "dense ground glass joined the lungs");
            }
        }
    }
    Ok(found)
}

/// Voxels a component of `ml` must have (one slice: an area of `ml` ×
/// [`tuning::SLICE_AREA_MM2_PER_ML`] mm²); at least 1.
pub(crate) fn min_voxels(ml: f64, grid: &Grid) -> u64 {
    let ls = grid.ls;
    let v = if grid.dims[0] == 1 {
        (ml * tuning::SLICE_AREA_MM2_PER_ML / (ls[1] * ls[2])).ceil()
    } else {
        (ml / grid.voxel_ml).ceil()
    };
    (v as u64).max(1)
}

/// Mean HU and pure-air share from a component's HU histogram (bin `k` holds HU `k − 1100`).
pub(crate) fn mean_and_pure_air(h: &[u64]) -> (f64, f64) {
    let n: u64 = h.iter().sum();
    let s: f64 = h
        .iter()
        .enumerate()
        .map(|(k, &c)| c as f64 * (k as f64 - 1100.0))
        .sum();
    let below: u64 = h
        .iter()
        .take((1100 + tuning::PURE_AIR_HU as i32 + 1) as usize)
        .sum();
    if n == 0 {
        (f64::NAN, 1.0)
    } else {
        (s / n as f64, below as f64 / n as f64)
    }
}

/// Lung-like: mean above [`tuning::LUNG_MEAN_MIN_HU`], at most `max_pure_air` of the voxels
/// pure air (gas in bowel or stomach is purer), and thick somewhere.
pub(crate) fn is_lung_like(mean_hu: f64, pure_air: f64, max_pure_air: f64, thick: bool) -> bool {
    mean_hu > tuning::LUNG_MEAN_MIN_HU && pure_air <= max_pure_air && thick
}

/// Labels the candidates and keeps the lung components. Returns them and the seeds for the
/// dense ground-glass regrowth (the same rules at [`tuning::SEED_SIZE_SHARE`] of the size).
fn lung_components<B: Backend>(
    b: &B,
    cand: &B::U8,
    low: &B::I16,
    grid: &Grid,
    p: &SegmentationParams,
) -> Result<(LungComponents<B>, Vec<usize>), AnalysisError> {
    let (labels, infos) = b.label_components(cand, Connectivity::Face6)?;
    let mut order: Vec<usize> = (0..infos.len()).collect();
    order.sort_by(|&i, &j| infos[j].voxels.cmp(&infos[i].voxels));
    order.truncate(tuning::MAX_AIR_COMPONENTS);
    let seed_min = min_voxels(tuning::SEED_SIZE_SHARE * p.min_component_ml, grid);
    order.retain(|&i| infos[i].voxels >= seed_min);
    // Mean HU per candidate (rank r -> label r + 1).
    let mut rank_lut = vec![0u8; infos.len() + 1];
    for (r, &i) in order.iter().enumerate() {
        rank_lut[i + 1] = (r + 1) as u8;
    }
    let rank_map = b.map_labels(&labels, &rank_lut)?;
    let hist = b.histogram(low, &rank_map, order.len() + 1, -1100, 400)?;
    let thick = {
        let inside = b.map_u8(&rank_map, &{
            let mut l = [1u8; 256];
            l[0] = 0;
            l
        })?;
        let d = b.distance_mm(&inside, grid.ls)?;
        let core = b.threshold_f32(&d, tuning::LUNG_CORE_MM, f32::INFINITY)?;
        b.joint_counts(&rank_map, &core, order.len() + 1, 2)?
    };
    drop(rank_map);
    let lung_like: Vec<usize> = order
        .iter()
        .enumerate()
        .filter(|(r, _)| {
            let (mean, pure) = mean_and_pure_air(hist.label(r + 1));
            is_lung_like(
                mean,
                pure,
                p.max_pure_air_fraction,
                thick[(r + 1) * 2 + 1] > 0,
            )
        })
        .map(|(_, &i)| i)
        .collect();
    let full_min = min_voxels(p.min_component_ml, grid);
    let kept: Vec<usize> = lung_like
        .iter()
        .copied()
        .filter(|&i| infos[i].voxels >= full_min)
        .take(tuning::MAX_LUNG_COMPONENTS)
        .collect();
    Ok((
        LungComponents {
            labels,
            infos,
            kept,
        },
        lung_like,
    ))
}

/// The voxels of `region` (non-zero) 6-connected through `region` to a voxel of `seed`
/// (non-zero), seed voxels themselves excluded, as a 0/1 mask, and their count.
pub(crate) fn grow_into(seed: &Array3<u8>, region: &Array3<u8>) -> (Array3<u8>, usize) {
    let sh = seed.shape();
    let (nz, ny, nx) = (sh[0], sh[1], sh[2]);
    let (sd, reg) = (seed.as_standard_layout(), region.as_standard_layout());
    let (sd, reg) = (sd.as_slice().unwrap_or(&[]), reg.as_slice().unwrap_or(&[]));
    let mut out = Array3::<u8>::zeros((nz, ny, nx));
    let o = out.as_slice_mut().unwrap_or(&mut []);
    let (sy, sz) = (nx, ny * nx);
    // Depth-first from every seed voxel; a voxel is taken once, when first reached.
    let mut stack: Vec<usize> = (0..sd.len()).filter(|&i| sd[i] != 0).collect();
    let mut n = 0;
    while let Some(i) = stack.pop() {
        let (z, y, x) = (i / sz, (i / sy) % ny, i % nx);
        let nb = [
            (x > 0).then(|| i - 1),
            (x + 1 < nx).then(|| i + 1),
            (y > 0).then(|| i - sy),
            (y + 1 < ny).then(|| i + sy),
            (z > 0).then(|| i - sz),
            (z + 1 < nz).then(|| i + sz),
        ];
        for j in nb.into_iter().flatten() {
            if reg[j] != 0 && sd[j] == 0 && o[j] == 0 {
                o[j] = 1;
                n += 1;
                stack.push(j);
            }
        }
    }
    (out, n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ildtrack_compute::CpuBackend;
    use ildtrack_volume::Geometry;

    #[test]
    fn grow_into_follows_six_connected_region_from_the_seed_only() {
        let mut seed = Array3::<u8>::zeros((1, 3, 4));
        seed[[0, 0, 0]] = 1;
        let mut region = Array3::<u8>::zeros((1, 3, 4));
        for x in 1..3 {
            region[[0, 0, x]] = 1;
        }
        region[[0, 1, 3]] = 1; // diagonal to (0,0,2): not 6-connected
        region[[0, 0, 0]] = 1; // the seed voxel itself is not returned
        let (reached, n) = grow_into(&seed, &region);
        assert_eq!(n, 2);
        assert_eq!(reached[[0, 0, 1]] + reached[[0, 0, 2]], 2);
        assert_eq!(reached[[0, 1, 3]], 0);
        assert_eq!(reached[[0, 0, 0]], 0);
    }

    #[test]
    fn lung_like_needs_tissue_in_the_air_and_thickness() {
        // Histogram bins: HU k - 1100.
        let mut lung = vec![0u64; 1500];
        lung[1100 - 850] = 90; // -850 HU
        lung[1100 - 990] = 10; // pure air
        let (m, pure) = mean_and_pure_air(&lung);
        assert!((m - (-864.0)).abs() < 1e-9 && (pure - 0.1).abs() < 1e-12);
        assert!(is_lung_like(m, pure, 0.5, true));
        assert!(!is_lung_like(m, pure, 0.5, false), "thin air layer");
        let mut gas = vec![0u64; 1500];
        gas[1100 - 1000] = 80;
        gas[1100 - 900] = 20;
        let (m, pure) = mean_and_pure_air(&gas);
        assert!(m > tuning::LUNG_MEAN_MIN_HU, "mean alone would pass");
        assert!(!is_lung_like(m, pure, 0.5, true), "mostly pure air: gas");
        assert!(!is_lung_like(-990.0, 0.0, 0.5, true), "mean too low");
        assert_eq!(mean_and_pure_air(&[]).1, 1.0);
    }

    #[test]
    fn one_slice_judges_an_area_and_a_volume_otherwise() {
        let g = Geometry::axial([2.0, 1.0, 1.0]);
        let flat = Grid::new(g, [1, 10, 10], [1, 1, 1]);
        assert_eq!(min_voxels(1.0, &flat), 60);
        let deep = Grid::new(g, [10, 10, 10], [1, 1, 1]);
        assert_eq!(min_voxels(1.0, &deep), 500);
        assert_eq!(min_voxels(0.0, &deep), 1);
    }

    #[test]
    fn dense_ground_glass_joins_lung_fragments_it_touches() {
        // 12 slices, 2 mm voxels: two aerated fragments (-850 HU) of 12 mL joined by a thick
        // block of -300 HU ground glass; with a 30 mL minimum neither fragment alone is lung,
        // but they are seeds and the block joins them into one 30+ mL component.
        let (nz, ny, nx) = (12, 30, 40);
        let mut hu = Array3::<i16>::from_elem((nz, ny, nx), 40);
        let mut air = Array3::<u8>::zeros((nz, ny, nx));
        for z in 1..11 {
            for y in 5..25 {
                for x in 3..37 {
                    let v = if (3..13).contains(&x) || (27..37).contains(&x) {
                        -850
                    } else {
                        -300
                    };
                    hu[[z, y, x]] = v;
                    air[[z, y, x]] = u8::from(v == -850);
                }
            }
        }
        let b = CpuBackend::new();
        let grid = Grid::new(Geometry::axial([2.0, 2.0, 2.0]), [nz, ny, nx], [1, 1, 1]);
        let low = b.upload_i16(hu.view()).expect("upload");
        let air_b = b.upload_u8(air.view()).expect("upload");
        let core = b
            .upload_u8(Array3::<u8>::ones((nz, ny, nx)).view())
            .expect("upload");
        let p = SegmentationParams {
            min_component_ml: 30.0,
            ..SegmentationParams::default()
        };
        let inp = CandidateInputs {
            low: &low,
            air: &air_b,
            body_core: &core,
            airways: None,
        };
        let cand = b.upload_u8(air.view()).expect("upload");
        let found = find_lungs(&b, &grid, cand, &inp, &p).expect("lungs");
        assert_eq!(found.kept.len(), 1, "fragments joined through ground glass");
        let p_off = SegmentationParams {
            dense_lung_hu: p.air_hu,
            ..p
        };
        let cand = b.upload_u8(air.view()).expect("upload");
        let found = find_lungs(&b, &grid, cand, &inp, &p_off).expect("lungs");
        assert!(
            found.kept.is_empty(),
            "without the rule the fragments are too small"
        );
    }
}
