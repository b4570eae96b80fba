//! Every follow-up registered onto the baseline (`ildtrack-register`): the displacement field,
//! the warped follow-up, the Jacobian, the change map and `change.json` in
//! `visits/<date>/registration/`, and the registered, breath-corrected figures the verdict uses.

use crate::error::AppError;
use crate::files::{create_dir, write_atomic};
use crate::manifest::VisitInput;
use crate::options::AnalyzeOptions;
use ildtrack_compute::Backend;
use ildtrack_model::change::{ChangeSummary, RegistrationQuality, RegistrationSummary};
use ildtrack_model::visit::{VisitResult, Zones};
use ildtrack_register::change::{ChangeInputs, compute, correct_for_breath};
use ildtrack_report::{QcImage, qc};
use ildtrack_volume::{Geometry, Identity, Volume};
use ndarray::Array3;
use rayon::prelude::*;
use std::path::Path;

/// Folder of a visit's registration outputs.
pub const REGISTRATION_DIR: &str = "registration";

/// A registration is accepted (maps written, registered comparison used) only when the
/// registered follow-up lungs overlap the baseline's this well (Dice); breathing, growth and
/// posture leave 0.95–0.99 on the validation pairs (docs/REGISTRATION.md).
pub const MIN_LUNG_DICE: f64 = 0.90;
/// ... fold in at most this share of the baseline lungs, %.
pub const MAX_FOLDING_PCT: f64 = 0.5;
/// ... and map at least this share of the baseline lungs into the follow-up's lungs, %.
pub const MIN_COVERAGE_PCT: f64 = 90.0;

/// Spacing the displacement field is written at (its values are smooth; ITK interpolates).
const FIELD_SPACING_MM: f64 = 2.0;

/// One visit as the registration needs it: HU, lungs, classes on its own grid.
pub(crate) struct VisitImages {
    pub hu: Volume<i16>,
    pub lungs: Volume<u8>,
    pub classes: Volume<u8>,
    pub meta: ildtrack_volume::ScanMeta,
    pub identity: Identity,
}

/// Load a visit's HU again (the cache keeps label maps, not the scan) and its label maps from
/// its analysis folder.
pub(crate) fn load_visit(
    v: &VisitInput,
    result: &VisitResult,
    analysis_dir: &Path,
    opts: &AnalyzeOptions,
) -> Result<VisitImages, AppError> {
    let series_uid = v
        .series_uid
        .clone()
        .or_else(|| result.series.series_instance_uid.clone());
    let loaded = ildtrack_dicom::load(&v.path, &ildtrack_dicom::LoadOptions { series_uid })?;
    let files = opts.label_format.files();
    let label = |name: &str| -> Result<Volume<u8>, AppError> {
        let l = ildtrack_dicom::load(&analysis_dir.join(name), &Default::default())?;
        if l.volume.dims_zyx() != loaded.volume.dims_zyx() {
            return Err(AppError::Other(format!(
                "{} does not match its scan ({:?} vs {:?}): re-run the analysis",
                analysis_dir.join(name).display(),
                l.volume.dims_zyx(),
                loaded.volume.dims_zyx()
            )));
        }
        Ok(l.volume
            .with_data(l.volume.data.mapv(|v| v.clamp(0, 255) as u8)))
    };
    Ok(VisitImages {
        lungs: label(files[0])?,
        classes: label(files[1])?,
        hu: loaded.volume,
        meta: loaded.meta,
        identity: loaded.identity,
    })
}

/// What registering one follow-up gave: the summary `track.json` carries and, when accepted,
/// `change.json` and the report's image pairs.
pub(crate) struct FollowupChange {
    pub summary: RegistrationSummary,
    pub change: Option<ChangeSummary>,
    /// The follow-up's zone metrics on the baseline's zones (setting `zones = "baseline"`).
    pub zones: Option<Zones>,
    /// The baseline (lung contour) and the registered follow-up (change overlaid) at the same
    /// levels.
    pub baseline_images: Vec<QcImage>,
    pub followup_images: Vec<QcImage>,
}

/// Which classes a follow-up's change map compares.
pub(crate) enum Footing<'a> {
    /// Each visit's own (the visits share a reconstruction kernel).
    Own,
    /// The visits differ in kernel: both on the soft reference kernel's footing. `baseline` is
    /// the baseline's harmonized classes, `None` where its own already are on that footing;
    /// `followup_harmonized`: the follow-up's own classes are not (harmonization was applied
    /// to it), so it is analysed again for its harmonized ones.
    Reference {
        baseline: Option<&'a Array3<u8>>,
        followup_harmonized: bool,
    },
    /// The visits differ in kernel and a visit's density could not be put on the reference
    /// footing (the reason): no change map, the raw classes would show the kernel as disease.
    NotComparable(String),
}

/// The baseline's classes on the reference kernel's footing, for follow-ups reconstructed with
/// another kernel: `Ok(None)` where its own classes are (harmonization not needed), the
/// harmonized classes of a new analysis of its HU where harmonization was applied (the label
/// maps on disk hold the scan's own classes), `Err` with the reason where it could not be done.
pub(crate) fn baseline_reference_classes<B: Backend>(
    backend: &B,
    base: &VisitImages,
    result: &VisitResult,
    config: &ildtrack_analysis::AnalysisConfig,
) -> Result<Result<Option<Array3<u8>>, String>, AppError> {
    if let Err(why) = result.reference_lungs() {
        return Ok(Err(why));
    }
    if !result.harmonization_applied() {
        return Ok(Ok(None));
    }
    let a = ildtrack_analysis::analyze_for_comparison(
        backend,
        &base.hu,
        &base.meta,
        &[],
        config,
        &|_, _| {},
    )?;
    if let Err(why) = a.reference_classes() {
        return Ok(Err(why));
    }
    Ok(Ok(a.classes_harmonized.map(|c| c.data)))
}

/// The classes of `a` on `footing`'s HU.
fn footing_classes<'a>(
    a: &'a ildtrack_analysis::Analysis,
    footing: &Footing<'_>,
) -> Result<&'a Array3<u8>, String> {
    match footing {
        Footing::Own => Ok(&a.classes.data),
        _ => a.reference_classes().map(|v| &v.data),
    }
}

/// Why two visits must not be registered as one patient's, if they must not.
fn different_patients(a: &Identity, b: &Identity) -> Option<String> {
    let norm = |s: &Option<String>| {
        s.as_deref()
            .map(|x| x.trim().to_ascii_uppercase())
            .filter(|x| !x.is_empty())
    };
    match (norm(&a.patient_id), norm(&b.patient_id)) {
        (Some(x), Some(y)) if x != y => {
            Some("the two scans carry different patient IDs (not shown here)".into())
        }
        _ => None,
    }
}

/// Register `fu` onto `base`, judge the registration, and when it passes write the maps and
/// `change.json` into `out_dir` (a visit's `registration/` folder).
#[allow(clippy::too_many_arguments)]
pub(crate) fn register_followup<B: Backend>(
    backend: &B,
    base: &VisitImages,
    config: &ildtrack_analysis::AnalysisConfig,
    thresholds: &ildtrack_model::visit::Thresholds,
    fu: &VisitImages,
    footing: &Footing<'_>,
    base_name: &str,
    fu_name: &str,
    out_dir: &Path,
) -> Result<FollowupChange, AppError> {
    let rejected = |reason: String| FollowupChange {
        summary: RegistrationSummary {
            dir: None,
            quality: RegistrationQuality {
                lung_dice: 0.0,
                similarity_before: 0.0,
                similarity_after: 0.0,
                folding_pct: 0.0,
                mean_jacobian: 0.0,
                coverage_pct: 0.0,
                accepted: false,
                reason,
            },
            baseline_metrics: Default::default(),
            followup_metrics: Default::default(),
            whole: Default::default(),
            moved_ml: 0.0,
            new_ggo_uncorrected_ml: 0.0,
            classes_footing: Default::default(),
            resolved_ggo_uncorrected_ml: 0.0,
            migration: None,
        },
        change: None,
        zones: None,
        baseline_images: Vec::new(),
        followup_images: Vec::new(),
    };
    if let Some(why) = different_patients(&base.identity, &fu.identity) {
        return Ok(rejected(why));
    }
    if let Footing::NotComparable(why) = footing {
        return Ok(rejected(format!(
            "the visits differ in reconstruction kernel and {why}: no change map (each visit's \
             own classes would show the kernel as disease)"
        )));
    }
    let cfg = ildtrack_register::RegisterConfig::default();
    let reg = match ildtrack_register::register_with(
        backend,
        &base.hu,
        &base.lungs,
        &fu.hu,
        &fu.lungs,
        &cfg,
    ) {
        Ok(r) => r,
        Err(e) => return Ok(rejected(e.to_string())),
    };
    let warped_hu = reg.warp_hu(&fu.hu.data);
    let warped_classes = reg.warp_labels(&fu.classes.data);
    let jacobian = reg.jacobian();
    let (mut n_lung, mut n_cover) = (0u64, 0u64);
    ndarray::Zip::from(&base.lungs.data)
        .and(&warped_classes)
        .for_each(|&l, &c| {
            if l != 0 {
                n_lung += 1;
                n_cover += (c != 0) as u64;
            }
        });
    let q = reg.quality;
    let coverage_pct = 100.0 * n_cover as f64 / n_lung.max(1) as f64;
    let mut problems = Vec::new();
    if q.lung_dice < MIN_LUNG_DICE {
        problems.push(format!("lung Dice {:.3} < {MIN_LUNG_DICE}", q.lung_dice));
    }
    if q.folding_pct > MAX_FOLDING_PCT {
        problems.push(format!(
            "the map folds in {:.2} % of the lungs (> {MAX_FOLDING_PCT} %)",
            q.folding_pct
        ));
    }
    if coverage_pct < MIN_COVERAGE_PCT {
        problems.push(format!(
            "only {coverage_pct:.1} % of the baseline lungs map into the follow-up's lungs (< {MIN_COVERAGE_PCT} %)"
        ));
    }
    let quality = RegistrationQuality {
        lung_dice: q.lung_dice,
        similarity_before: q.similarity_before,
        similarity_after: q.similarity_after,
        folding_pct: q.folding_pct,
        mean_jacobian: q.mean_jacobian,
        coverage_pct,
        accepted: problems.is_empty(),
        reason: problems.join("; "),
    };
    let not_comparable = |why: String| {
        rejected(format!(
            "the follow-up's density could not be put on the reference kernel's footing \
             ({why}): no change map across kernels"
        ))
    };
    if !quality.accepted {
        let mut r = rejected(quality.reason.clone());
        r.summary.quality = quality;
        return Ok(r);
    }
    // The follow-up at the baseline's local volume (mass preserved), on its own grid, analysed
    // like any scan: its classes, carried onto the baseline, are the corrected follow-up's.
    // Correcting and analysing on the follow-up's own grid keeps the warp's interpolation (a
    // blur across thick slices, which the GGO rules would read as ground glass) out of it.
    let (fu_jac, baseline_z) = pull_back(&reg);
    let zones = zones_on_baseline(
        fu,
        &base.lungs.data,
        base.hu.geometry.direction[0][2] > 0.0,
        &baseline_z,
        thresholds,
    );
    drop(baseline_z);
    // OUTSIDE_FOV_HU lies under −1024: correct_for_breath leaves it as it is.
    let corrected_own = correct_for_breath(&fu.hu.data, &fu_jac);
    drop(fu_jac);
    let analyze = if matches!(footing, Footing::Own) {
        ildtrack_analysis::analyze
    } else {
        ildtrack_analysis::analyze_for_comparison
    };
    let fu_analysis = analyze(
        backend,
        &fu.hu.with_data(corrected_own),
        &fu.meta,
        &[],
        config,
        &|_, _| {},
    )?;
    let fu_classes = match footing_classes(&fu_analysis, footing) {
        Ok(c) => reg.warp_labels(c),
        Err(why) => return Ok(not_comparable(why)),
    };
    drop(fu_analysis);
    // Across kernels the comparison without the breath correction is on the reference footing
    // too: a harmonized follow-up's own HU analysed again for its harmonized classes (those on
    // disk are its own).
    let warped_classes = match footing {
        Footing::Reference {
            followup_harmonized: true,
            ..
        } => {
            let a = analyze(backend, &fu.hu, &fu.meta, &[], config, &|_, _| {})?;
            match footing_classes(&a, footing) {
                Ok(c) => reg.warp_labels(c),
                Err(why) => return Ok(not_comparable(why)),
            }
        }
        _ => warped_classes,
    };
    let baseline_classes = match footing {
        Footing::Reference {
            baseline: Some(c), ..
        } => *c,
        _ => &base.classes.data,
    };
    let corrected = correct_for_breath(&warped_hu, &jacobian);
    let inputs = ChangeInputs {
        baseline_lungs: &base.lungs.data,
        baseline_classes,
        baseline_hu: &base.hu.data,
        followup_hu: &corrected,
        followup_hu_uncorrected: &warped_hu,
        followup_classes: &fu_classes,
        followup_classes_uncorrected: &warped_classes,
        jacobian: &jacobian,
        voxel_ml: base.hu.geometry.voxel_volume_ml(),
        superior_is_high_index: base.hu.geometry.direction[0][2] > 0.0,
    };
    let (codes, mut summary) = compute(&inputs, quality, base_name, fu_name);
    if !matches!(footing, Footing::Own) {
        summary.classes_footing = ildtrack_model::change::ClassFooting::KernelHarmonized;
    }
    drop((corrected, fu_classes, warped_classes));
    let warped = Volume::new(warped_hu, base.hu.geometry);
    let codes = Volume::new(codes, base.hu.geometry);
    let (baseline_images, followup_images) = change_images(base, &warped, &codes);
    write_outputs(
        out_dir,
        &base.hu.geometry,
        &fu.hu.geometry,
        &reg,
        &summary,
        &warped,
        &Volume::new(jacobian, base.hu.geometry),
        &codes,
    )?;
    Ok(FollowupChange {
        summary: RegistrationSummary::from(&summary),
        zones: Some(zones),
        change: Some(summary),
        baseline_images,
        followup_images,
    })
}

/// The baseline and the registered follow-up at the baseline's QC levels (three axial, one
/// coronal), the change drawn on the follow-up.
fn change_images(
    base: &VisitImages,
    warped: &Volume<i16>,
    codes: &Volume<u8>,
) -> (Vec<QcImage>, Vec<QcImage>) {
    let (mut zs, y) = qc::representative_slices(&base.lungs);
    zs.sort_unstable();
    zs.dedup();
    if base.hu.geometry.direction[0][2] >= 0.0 {
        zs.reverse();
    }
    let names = match zs.len() {
        1 => vec!["axial"],
        2 => vec!["axial, upper level", "axial, lower level"],
        _ => vec![
            "axial, upper level",
            "axial, middle level",
            "axial, lower level",
        ],
    };
    let mut levels: Vec<(String, Option<usize>)> = zs
        .iter()
        .zip(names)
        .map(|(&z, n)| (format!("{n} (baseline slice {})", z + 1), Some(z)))
        .collect();
    if base.hu.dims_zyx()[0] >= 8 {
        levels.push(("coronal".into(), None));
    }
    let pairs: Vec<(QcImage, QcImage)> = levels
        .into_par_iter()
        .map(|(caption, z)| {
            let (b, f) = match z {
                Some(z) => (
                    qc::plain_axial_png(&base.hu, &base.lungs, z),
                    qc::change_axial_png(warped, &base.lungs, codes, z),
                ),
                None => (
                    qc::plain_coronal_png(&base.hu, &base.lungs, y),
                    qc::change_coronal_png(warped, &base.lungs, codes, y),
                ),
            };
            (
                QcImage {
                    caption: caption.clone(),
                    png: b,
                },
                QcImage { caption, png: f },
            )
        })
        .filter(|(b, f)| !b.png.is_empty() && !f.png.is_empty())
        .collect();
    pairs.into_iter().unzip()
}

/// `displacement.nii.gz`, `warped.nii.gz`, `jacobian.nii.gz`, `change.nii.gz`, `change.json`.
#[allow(clippy::too_many_arguments)]
fn write_outputs(
    dir: &Path,
    base_geometry: &Geometry,
    fu_geometry: &Geometry,
    reg: &ildtrack_register::Registration,
    summary: &ChangeSummary,
    warped: &Volume<i16>,
    jac: &Volume<f32>,
    codes: &Volume<u8>,
) -> Result<(), AppError> {
    create_dir(dir)?;
    let (field_geometry, field_dims) = field_grid(base_geometry, reg.fixed.dims);
    let f = [0, 1, 2].map(|k| (field_geometry.spacing_mm[k] / base_geometry.spacing_mm[k]).round());
    let n = field_dims.iter().product::<usize>();
    let vectors: Vec<[f32; 3]> = {
        use rayon::prelude::*;
        (0..n)
            .into_par_iter()
            .map(|i| {
                let [_, ny, nx] = field_dims;
                let c = [
                    (i / (ny * nx)) as f64,
                    ((i / nx) % ny) as f64,
                    (i % nx) as f64,
                ];
                let bi = [c[0] * f[0], c[1] * f[1], c[2] * f[2]];
                let p = base_geometry.index_to_lps(bi);
                let q = fu_geometry.index_to_lps(reg.map_index(bi));
                [0, 1, 2].map(|k| (q[k] - p[k]) as f32)
            })
            .collect()
    };
    let path = |n: &str| dir.join(n);
    ildtrack_dicom::nifti::write_displacement(
        &path("displacement.nii.gz"),
        field_dims,
        &field_geometry,
        &vectors,
    )?;
    ildtrack_dicom::nifti::write_i16(&path("warped.nii.gz"), warped)?;
    ildtrack_dicom::nifti::write_f32(&path("jacobian.nii.gz"), jac)?;
    ildtrack_dicom::nifti::write_u8(&path("change.nii.gz"), codes)?;
    let json = serde_json::to_string_pretty(summary)
        .map_err(|e| AppError::Other(format!("serialising change.json failed: {e}")))?;
    write_atomic(&path("change.json"), json.as_bytes())
}

/// The displacement field's grid: the baseline's origin and axes, spacing a whole multiple of
/// the baseline's near [`FIELD_SPACING_MM`], reaching at least the baseline's last voxel.
fn field_grid(g: &Geometry, dims: [usize; 3]) -> (Geometry, [usize; 3]) {
    let mut fg = *g;
    let mut fd = dims;
    for k in 0..3 {
        let f = (FIELD_SPACING_MM / g.spacing_mm[k]).round().max(1.0);
        fg.spacing_mm[k] = g.spacing_mm[k] * f;
        fd[k] = (dims[k].saturating_sub(1) as f64 / f).ceil() as usize + 1;
    }
    (fg, fd)
}

/// For each follow-up voxel, the Jacobian (follow-up volume per baseline volume) and the
/// baseline slice index (fractional) of the baseline position that maps there, found by
/// fixed-point iteration of `p = A⁻¹(q) − u(p)` (the map is `A(p + u(p))` with a per-axis
/// scaling `A` and a smooth `u`).
fn pull_back(reg: &ildtrack_register::Registration) -> (Array3<f32>, Array3<f32>) {
    let g = reg.grid;
    let det_a = reg.affine.det() as f32;
    let jw = Array3::from_shape_vec((g.dims[0], g.dims[1], g.dims[2]), reg.jacobian_working())
        .unwrap_or_else(|_| Array3::from_elem((1, 1, 1), det_a));
    let a = reg.affine;
    let d = reg.moving.dims;
    let shape = (d[0], d[1], d[2]);
    let mut jac = Array3::<f32>::zeros(shape);
    let mut bz = Array3::<f32>::zeros(shape);
    ndarray::Zip::indexed(&mut jac)
        .and(&mut bz)
        .par_for_each(|(z, y, x), j, b| {
            let q = reg.moving.to_mm([z as f64, y as f64, x as f64]);
            let a_inv = a.inverse(q);
            let mut p = a_inv;
            for _ in 0..6 {
                let u = reg.displacement_mm(p);
                p = [0, 1, 2].map(|k| a_inv[k] - u[k]);
            }
            *j = ildtrack_register::frame::trilinear(&jw, g.to_index(p)).unwrap_or(det_a);
            *b = reg.fixed.to_index(p)[0] as f32;
        });
    (jac, bz)
}

/// The follow-up's six zone metrics on the baseline's zones: each follow-up lung voxel (its own
/// HU and class) counted in the zone of the baseline position that maps onto it.
fn zones_on_baseline(
    fu: &VisitImages,
    baseline_lungs: &Array3<u8>,
    superior_high: bool,
    baseline_z: &Array3<f32>,
    thresholds: &ildtrack_model::visit::Thresholds,
) -> Zones {
    use ildtrack_analysis::stats::{class, region_metrics};
    const LO: i32 = -1024;
    const BINS: usize = 4096;
    let ext = ildtrack_register::change::side_extents(baseline_lungs);
    let mut hist = vec![vec![0u64; BINS]; 6];
    let mut counts = vec![vec![0u64; class::COUNT]; 6];
    ndarray::Zip::from(&fu.lungs.data)
        .and(&fu.hu.data)
        .and(&fu.classes.data)
        .and(baseline_z)
        .for_each(|&side, &h, &c, &bz| {
            let Some(zi) =
                ildtrack_register::change::zone_index(side, bz as f64, &ext, superior_high)
            else {
                return;
            };
            let bin = (h as i32 - LO).clamp(0, BINS as i32 - 1) as usize;
            hist[zi][bin] += 1;
            counts[zi][(c as usize).min(class::COUNT - 1)] += 1;
        });
    let ml = fu.hu.geometry.voxel_volume_ml();
    let m = |i: usize| region_metrics(&hist[i], LO, &counts[i], ml, thresholds);
    Zones {
        right_upper: m(0),
        right_middle: m(1),
        right_lower: m(2),
        left_upper: m(3),
        left_middle: m(4),
        left_lower: m(5),
    }
}
