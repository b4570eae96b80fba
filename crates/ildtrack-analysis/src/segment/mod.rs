//! Lung segmentation on a coarse working grid (about 1.4 mm), generic over the backend: a
//! pipeline of named stages, each a module with typed inputs and outputs and a contract (what
//! comes in, what goes out, what it must never remove). In order:
//!
//! 1. [`body`]: block-mean HU on the working grid; the body (table cut off, holes filled, opened
//!    slices repaired); the air inside its core.
//! 2. [`airways`]: trachea and main bronchi tracked from the neck, removed.
//! 3. [`candidates`]: lung components among the air (lung-like mean, not mostly pure air,
//!    thick, large), lung broken up by dense ground glass regrown first.
//! 4. [`sides`]: right and left; touching lungs split at their junctions.
//! 5. [`cleanup`]: the hilum closed; air outside the rib cage and gas joined between slices
//!    dropped.
//! 6. [`geometry`]: the chest's geometry, once: hulls, outlines, wall distances, pleura and rib
//!    depths behind the skin, rib gap.
//! 7. [`outline`]: holes filled and dense disease added per slice, bounded by the pleura and
//!    the chest wall, under the diaphragm dome kept out.
//! 8. [`second`]: a side outlined again where the first outline cut dense tissue or left a
//!    thick dense band inside the ribs.
//! 9. [`cavity`]: dense tissue outside the final mask where the side's lung goes on around it
//!    (above, below and to both sides), per side and zone; a doubt naming them when large.
//! 10. [`doubts`]: what the result says about itself; the chest wall for quantification.
//!
//! Every tuning constant is in [`tuning`]; current figures in `docs/SEGMENTATION.md`.

mod airways;
mod body;
mod candidates;
mod cavity;
mod cleanup;
mod coarse;
mod doubts;
mod frame;
mod geometry;
mod outline;
mod second;
mod sides;
pub(crate) mod tuning;

pub(crate) use frame::working_factors;

use crate::config::SegmentationParams;
use crate::error::AnalysisError;
use ildtrack_compute::Backend;
use ildtrack_volume::{Volume, Warning};
use ndarray::Array3;

/// What segmentation hands to quantification.
pub(crate) struct Segmentation {
    /// 0 background, 1 right, 2 left; on the working grid.
    pub lungs_low: Array3<u8>,
    pub factors: [usize; 3],
    pub low_spacing_mm: [f64; 3],
    /// Block-mean HU on the working grid.
    pub low_hu: Array3<i16>,
    /// Working-grid voxels at the image edge or against padding, where the lungs reach next to
    /// them (see [`cleanup::clear_image_edge`]); the full-grid mask stays out of them.
    pub image_edge_low: Option<Array3<u8>>,
    /// Chest wall on the working grid (see [`doubts::chest_wall`]). Holds subpleural lenses.
    pub chest_wall_low: Array3<u8>,
    pub warnings: Vec<Warning>,
    /// Stage name → milliseconds.
    pub stage_ms: Vec<(String, f64)>,
}

impl Segmentation {
    fn empty(grid: &frame::Grid, warnings: Vec<Warning>) -> Self {
        let d = grid.dims;
        Segmentation {
            lungs_low: Array3::zeros((d[0], d[1], d[2])),
            factors: grid.factors,
            low_spacing_mm: grid.ls,
            low_hu: Array3::zeros((d[0], d[1], d[2])),
            chest_wall_low: Array3::zeros((d[0], d[1], d[2])),
            image_edge_low: None,
            warnings,
            stage_ms: Vec::new(),
        }
    }
}

pub(crate) fn segment<B: Backend>(
    b: &B,
    hu: &Volume<i16>,
    p: &SegmentationParams,
    progress: &dyn Fn(&str, f32),
) -> Result<Segmentation, AnalysisError> {
    let factors = working_factors(hu.geometry.spacing_mm, p.working_resolution_mm);
    let grid = frame::Grid::new(hu.geometry, hu.dims_zyx(), factors);
    let mut warnings = Vec::new();
    let mut stages = crate::stages::Stages::start();
    let low = body::downsample(b, hu, &grid)?;
    stages.lap("segment.downsample");
    progress("segment: body", 0.1);
    let Some(body) = body::find_body(b, &grid, &low, p)? else {
        warnings.push(doubts::doubt(
            "no body found (no voxel above the tissue threshold)",
        ));
        return Ok(Segmentation::empty(&grid, warnings));
    };
    let (air, body_core) = body::air_in_body(b, &grid, &low, &body, p)?;
    stages.lap("segment.body");
    progress("segment: airways", 0.25);
    let airways = airways::remove_airways(b, &grid, &air, &body, p)?;
    stages.lap("segment.airways");
    progress("segment: lungs", 0.4);
    let inputs = candidates::CandidateInputs {
        low: &low,
        air: &air,
        body_core: &body_core,
        airways: airways.dilated.as_ref(),
    };
    let found = candidates::find_lungs(b, &grid, airways.candidates, &inputs, p)?;
    drop((air, body_core));
    if found.kept.is_empty() {
        warnings.push(doubts::doubt("no aerated lung found inside the body"));
        return Ok(Segmentation::empty(&grid, warnings));
    }
    let sides = sides::assign_sides(b, &grid, found, &body, &mut warnings)?;
    stages.lap("segment.lungs");
    progress("segment: dense regions", 0.6);
    let closed = cleanup::close_hilum(
        b,
        &grid,
        sides.lungs,
        &sides.boxes,
        airways.dilated.as_ref(),
        p.closing_radius_mm,
    )?;
    let mut host = geometry::HostVolumes::download(
        b,
        closed,
        body.filled,
        low,
        airways.dilated.as_ref(),
        grid.dims,
    )?;
    warnings.extend(cleanup::drop_non_lung(
        &grid,
        &mut host,
        p.max_pure_air_fraction,
    ));
    stages.lap("segment.cleanup");
    let (mut geo, mut lungs) =
        geometry::ChestGeometry::measure(&grid, host, body.centre, body.centre_x, p);
    let edge = doubts::body_on_image_edge(&geo.body, &geo.hu, &lungs, geo.w);
    let px = grid.ls[1].max(grid.ls[2]);
    geo.ignore_cut_slices(&doubts::cut_slices(&edge, px));
    warnings.extend(doubts::truncation_warning(&edge, px));
    warnings.extend(doubts::vanish_doubt(&geo));
    stages.lap("segment.geometry");
    let dense = outline_lungs(&geo, &mut lungs);
    let image_edge = cleanup::clear_image_edge(&mut lungs, &geo.hu);
    stages.lap("segment.dense");
    let chest_wall = doubts::chest_wall(&geo, &lungs);
    // Only where dense disease is meant to be inside the mask: with it left out on purpose
    // (`include_dense_regions` off) the hollows it leaves are what was asked for.
    let suspected = if !geo.include_dense {
        [[0.0; 3]; 2]
    } else {
        cavity::suspected_lung(&cavity::CavityInputs {
            lungs: &lungs,
            body: &geo.body,
            hu: &geo.hu,
            airways: geo.airways.as_ref(),
            ls: grid.ls,
            voxel_ml: grid.voxel_ml,
            head_step: geo.head_step,
        })
    };
    tracing::debug!(
        ?suspected,
        "suspected lung outside the mask (mL, side × zone)"
    );
    warnings.extend(cavity::cavity_doubt(&suspected));
    stages.lap("segment.cavity");
    let mut counts = [0u64; 3];
    lungs.iter().for_each(|&v| counts[(v as usize).min(2)] += 1);
    warnings.extend(doubts::volume_doubts(
        geo.grid.voxel_ml,
        geo.aerated,
        counts,
    ));
    if let Some((t, first, now)) = dense {
        warnings.extend(doubts::outline_doubts(&geo, &t, first, now));
    }
    let (band, lungish) = if coarse::Step::BorderCheck.runs(&grid) {
        doubts::lung_density_outside(&lungs, &geo.body, &geo.hu, geo.w)
    } else {
        (0, 0)
    };
    stages.lap("segment.border_check");
    warnings.extend(doubts::border_doubt(band, lungish));
    warnings.extend(coarse::warning(&grid));
    tracing::debug!(
        airway_voxels = airways.voxels,
        band,
        lungish,
        "segmentation done"
    );
    progress("segment", 1.0);
    Ok(Segmentation {
        lungs_low: lungs,
        chest_wall_low: chest_wall,
        image_edge_low: image_edge,
        factors,
        low_spacing_mm: grid.ls,
        low_hu: geo.hu,
        warnings,
        stage_ms: stages.ms,
    })
}

/// The first outline, and the second where it is triggered. Returns the triggers and the cut
/// before and after when the second outline ran.
fn outline_lungs(
    geo: &geometry::ChestGeometry,
    lungs: &mut Array3<u8>,
) -> Option<(second::Triggers, u64, u64)> {
    if !geo.include_dense {
        outline::outline_pass(geo, lungs, &first_pass(geo, &[], [None, None]));
        return None;
    }
    let aerated = lungs.clone();
    let domes = if geo.grid.dims[0] > 1 {
        [0usize, 1].map(|k| {
            crate::dome::fit(
                lungs,
                &geo.hu,
                &geo.body,
                k as u8 + 1,
                geo.grid.ls,
                geo.head_step,
                tuning::DOME_DENSE_HU,
            )
        })
    } else {
        [None, None]
    };
    let outlines = geo.outlines(geo.pleura_window, false);
    let first = outline::outline_pass(geo, lungs, &first_pass(geo, &outlines, domes));
    let first_cut = [0, 1].map(|k| first.iter().map(|c| c[k]).sum::<u64>());
    let lung_vox = lungs.iter().filter(|&&v| v != 0).count() as f64;
    let t = second::triggers(geo, first_cut, lung_vox);
    if !t.any() {
        return None;
    }
    let cut = second::second_outline(geo, lungs, aerated, &first, domes, t);
    Some((t, first_cut[0] + first_cut[1], cut[0] + cut[1]))
}

fn first_pass<'a>(
    geo: &geometry::ChestGeometry,
    outlines: &'a [geometry::SliceOutline],
    domes: [Option<crate::dome::Dome>; 2],
) -> outline::Pass<'a> {
    outline::Pass {
        outlines,
        pleura_window: geo.pleura_window,
        wall_factor: 1.0,
        lung_between_test: [true, true],
        rib_bound: false,
        domes,
    }
}
