//! Lung segmentation and GGO / consolidation quantification, generic over the compute backend.
//!
//! [`analyze`] turns a HU volume into a [`VisitResult`](model::VisitResult) (`visit.json`), a
//! left/right lung label map and a density-class map:
//!
//! 1. **Segmentation** (module `segment`, on a ~1.4 mm working grid): body → air in the body →
//!    trachea and main bronchi tracked from the neck and removed → lung components → right /
//!    left (touching lungs split at the junction by erosion) → vessels and **dense disease kept
//!    inside**: per slice, the lung's outline (convex hull of the aerated lung here and in the
//!    slices just above) bounds the region where non-aerated tissue counts as lung when it lies
//!    against the chest wall (no aerated lung between it and the skin, nearer the wall than the
//!    mediastinum), so subpleural consolidation stays in the mask while the heart and the
//!    diaphragm dome do not. A one-slice input works the same way in 2-D. See `segment.rs`.
//! 2. **Quantification** (full grid, cropped to the lungs): density classes with configurable
//!    thresholds ([`stats::class`] codes: 0 outside, 1 LAA, 2 normal, 3 GGO, 4 consolidation,
//!    5 vessel / dense, excluded from GGO and consolidation); vessels are the dense structures
//!    removed by an in-plane morphological opening (a white top-hat), the junctions where thick
//!    vessels meet (hilum; thick enough to survive the opening), plus a thin partial-volume
//!    rim; a subpleural lens (dense tissue resting on the chest wall that holds the ball when
//!    the ball may reach into the wall) is consolidation, not vessel. Metrics come from exact 1-HU histograms for whole lungs, sides, six zones (equal
//!    thirds of each lung's own craniocaudal extent) and subpleural (≤ 10 mm from the lung
//!    surface, by distance transform) vs core.
//!
//! Non-fatal problems (young patient, thick slices, contrast, single slice, low volume,
//! segmentation doubts) are [`Warning`]s in the result. The crate never names a concrete
//! backend; the CLI picks one.

mod age;
pub mod config;
mod dome;
mod error;
pub mod harmonize;
mod junctions;
mod stages;
pub use ildtrack_model::visit as model;
pub mod noise;
mod plane;
mod quantify;
mod segment;
pub mod stats;

pub use config::{AgePreset, AnalysisConfig, HarmonizeMode, QuantifyParams, SegmentationParams};
pub use error::AnalysisError;

use ildtrack_compute::Backend;
use ildtrack_volume::{ScanMeta, Volume, Warning};
use model::{SCHEMA_VERSION, SeriesSummary, VisitResult};
use std::collections::BTreeMap;
use std::time::Instant;

/// The result of [`analyze`].
#[derive(Debug, Clone)]
pub struct Analysis {
    pub result: VisitResult,
    /// 0 background, 1 right lung, 2 left lung; on the input grid.
    pub lungs: Volume<u8>,
    /// Density class per voxel ([`stats::class`]): 0 outside lung, 1 LAA, 2 normal, 3 GGO,
    /// 4 consolidation, 5 vessel / dense (excluded); on the input grid.
    pub classes: Volume<u8>,
    /// The same classes decided on the kernel-harmonized HU, where harmonization was applied
    /// and they were asked for ([`analyze_for_comparison`]).
    pub classes_harmonized: Option<Volume<u8>>,
}

impl Analysis {
    /// The classes on the soft reference kernel's footing, for comparing visits reconstructed
    /// with different kernels (the voxel twin of [`VisitResult::reference_lungs`]): the
    /// harmonized classes where harmonization was applied, the scan's own where it measured the
    /// scan at the reference; otherwise `Err` with the reason.
    pub fn reference_classes(&self) -> Result<&Volume<u8>, String> {
        self.result.reference_lungs()?;
        match (
            self.result.harmonization_applied(),
            &self.classes_harmonized,
        ) {
            (true, Some(c)) => Ok(c),
            (true, None) => Err("harmonization applied but its classes are missing".into()),
            (false, _) => Ok(&self.classes),
        }
    }
}

/// Segments the lungs of `hu` and measures them. `progress(stage, fraction)` is called as work
/// advances. Fills every [`VisitResult`] field; `timings_ms` gets `segment` and `quantify` and
/// their stages (`segment.*`, `quantify.*`).
pub fn analyze<B: Backend>(
    backend: &B,
    hu: &Volume<i16>,
    meta: &ScanMeta,
    load_warnings: &[Warning],
    config: &AnalysisConfig,
    progress: &dyn Fn(&str, f32),
) -> Result<Analysis, AnalysisError> {
    analyze_keeping(backend, hu, meta, load_warnings, config, progress, false)
}

/// [`analyze`], also keeping the harmonized classes on the input grid where harmonization is
/// applied ([`Analysis::reference_classes`]), for comparing voxels with a visit of another
/// kernel. `analyze` leaves them out: one more full-grid map, which only that comparison needs.
pub fn analyze_for_comparison<B: Backend>(
    backend: &B,
    hu: &Volume<i16>,
    meta: &ScanMeta,
    load_warnings: &[Warning],
    config: &AnalysisConfig,
    progress: &dyn Fn(&str, f32),
) -> Result<Analysis, AnalysisError> {
    analyze_keeping(backend, hu, meta, load_warnings, config, progress, true)
}

fn analyze_keeping<B: Backend>(
    backend: &B,
    hu: &Volume<i16>,
    meta: &ScanMeta,
    load_warnings: &[Warning],
    config: &AnalysisConfig,
    progress: &dyn Fn(&str, f32),
    keep_harmonized_classes: bool,
) -> Result<Analysis, AnalysisError> {
    config.validate()?;
    let dims = hu.dims_zyx();
    if dims.contains(&0) {
        return Err(AnalysisError::InvalidInput(format!(
            "volume has an empty dimension {dims:?}"
        )));
    }
    let spacing = hu.geometry.spacing_mm;
    if spacing.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
        return Err(AnalysisError::InvalidInput(format!(
            "voxel spacing must be > 0 mm, got {spacing:?}"
        )));
    }
    let mut timings = BTreeMap::new();
    let t0 = Instant::now();
    let seg = segment::segment(backend, hu, &config.segmentation, progress)?;
    timings.insert("segment".to_string(), t0.elapsed().as_secs_f64() * 1e3);
    for (k, v) in &seg.stage_ms {
        timings.insert(k.clone(), *v);
    }
    // The header's age only where the anatomy does not contradict it (placeholder dates).
    let seg_ml = seg.lungs_low.iter().filter(|&&v| v != 0).count() as f64
        * seg.low_spacing_mm.iter().product::<f64>()
        / 1000.0;
    let (age, age_note) = age::checked_age(meta.patient_age_years, seg_ml, dims[0] == 1);
    let meta = &ScanMeta {
        patient_age_years: age,
        ..meta.clone()
    };
    let thresholds = config.effective_thresholds(meta.patient_age_years);
    let mut warnings: Vec<Warning> = load_warnings.to_vec();
    for w in scan_warnings(meta, dims, config) {
        // The loader may have said the same thing (e.g. `single-slice`): one warning per fact,
        // in the analysis' words, which say what it means for the numbers.
        warnings.retain(|l| l.code != w.code);
        warnings.push(w);
    }
    warnings.extend(age_note);
    warnings.extend(seg.warnings.iter().cloned());

    // Image noise, for the record (kernel and dose show in it; the report and track read it).
    let t_noise = Instant::now();
    let noise = noise::noise_sd_hu(hu);
    timings.insert("noise".to_string(), t_noise.elapsed().as_secs_f64() * 1e3);

    progress("quantify", 0.0);
    let sp = &config.quantification;
    let denoise = sp.denoise_sigma_mm > 0.0 && noise.is_some_and(|n| n > sp.denoise_noise_hu);
    if denoise {
        warnings.push(Warning::new(
            "noisy-scan",
            format!(
                "image noise {:.0} HU (sharp kernel or low dose): GGO / normal / low-attenuation \
                 classes were decided on HU smoothed in-plane (σ {} mm); GGO can still differ from a \
                 soft-kernel reconstruction of the same acquisition by 1-2 points — compare \
                 visits reconstructed with the same kernel",
                noise.unwrap_or(0.0),
                sp.denoise_sigma_mm
            ),
        ));
    }
    // Kernel harmonization: measured on the whole scan (fat, muscle, blood), applied to the
    // lung crop inside `quantify`.
    let t_h = Instant::now();
    let plan = harmonize::plan(backend, hu, config.harmonize)?;
    timings.insert("harmonize".to_string(), t_h.elapsed().as_secs_f64() * 1e3);
    let mut record = plan.record;
    let mix = plan.weights.map(|weights| quantify::HarmonizeMix {
        sigmas_mm: harmonize::stage_sigmas_mm(),
        weights,
        // After harmonization the noise is the reference's; the smoothed classes are for
        // scans still noisy after it (none of the real ones).
        denoise: sp.denoise_sigma_mm > 0.0
            && record
                .noise_after_hu
                .is_some_and(|n| n > sp.denoise_noise_hu),
        keep_classes: keep_harmonized_classes,
    });
    let t1 = Instant::now();
    let q = quantify::quantify(backend, hu, &seg, &thresholds, sp, denoise, mix.as_ref())?;
    if let Some((lungs, histogram)) = q.harmonized {
        let fmt = |v: &[f64]| {
            v.iter()
                .map(|x| format!("{x:.2}"))
                .collect::<Vec<_>>()
                .join(" / ")
        };
        let (raw, harm) = (&q.lungs.whole, &lungs.whole);
        warnings.push(Warning::new(
            "kernel-harmonized",
            format!(
                "the scan measured sharper or noisier than the soft reference kernel ({}): \
                 density classes and histogram metrics were also computed on HU harmonized to \
                 it (band gains {} for bands up to {} mm; noise {} → {} HU; LAA-950 {:.2} → \
                 {:.2} %, GGO {:.2} → {:.2} %). `lungs` keeps the scan's own figures, \
                 `harmonization.lungs` the harmonized ones; the lung mask is the same",
                record.reason,
                fmt(&record.gains),
                fmt(&record.band_sigmas_mm),
                record
                    .noise_before_hu
                    .map_or("?".to_string(), |v| format!("{v:.1}")),
                record
                    .noise_after_hu
                    .map_or("?".to_string(), |v| format!("{v:.1}")),
                raw.laa950_pct,
                harm.laa950_pct,
                raw.ggo_pct,
                harm.ggo_pct,
            ),
        ));
        record.lungs = Some(lungs);
        record.histogram = Some(histogram);
    } else if config.harmonize == HarmonizeMode::On
        && record.status == model::HarmonizationStatus::Unavailable
    {
        warnings.push(Warning::new(
            "harmonization-unavailable",
            format!(
                "harmonize = \"on\" but {}: only the scan's own metrics; compare with visits \
                 of the same kernel",
                record.reason
            ),
        ));
    }
    timings.insert("quantify".to_string(), t1.elapsed().as_secs_f64() * 1e3);
    for (k, v) in &q.stage_ms {
        timings.insert(k.clone(), *v);
    }
    progress("quantify", 1.0);

    let whole_ml = q.lungs.whole.volume_ml;
    let coverage_mm = dims[0] as f64 * spacing[0];
    if dims[0] > 1 && coverage_mm >= 150.0 && whole_ml < 1000.0 {
        warnings.push(Warning::new(
            "low-lung-volume",
            format!("lung volume {whole_ml:.0} mL over {coverage_mm:.0} mm of scan is very low: collapse, expiration, partial coverage or a segmentation failure"),
        ));
    }

    let mut seen = std::collections::HashSet::new();
    warnings.retain(|w| seen.insert((w.code.clone(), w.message.clone())));
    let result = VisitResult {
        schema_version: SCHEMA_VERSION.to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        series: SeriesSummary {
            noise_sd_hu: noise.map(|n| (n * 10.0).round() / 10.0),
            ..series_summary(meta, dims, spacing)
        },
        lungs: q.lungs,
        thresholds,
        warnings,
        backend: backend.name().to_string(),
        backend_device: backend.device_description(),
        timings_ms: timings,
        histogram: Some(q.histogram),
        harmonization: Some(record),
    };
    Ok(Analysis {
        result,
        lungs: hu.with_data(q.lungs_full),
        classes: hu.with_data(q.classes_full),
        classes_harmonized: q.classes_harmonized_full.map(|c| hu.with_data(c)),
    })
}

fn series_summary(meta: &ScanMeta, dims: [usize; 3], spacing: [f64; 3]) -> SeriesSummary {
    SeriesSummary {
        series_instance_uid: meta.series_instance_uid.clone(),
        series_description: meta.series_description.clone(),
        study_date: meta.study_date.clone(),
        series_time: meta.series_time.clone(),
        dims_zyx: dims,
        spacing_mm: spacing,
        kernel: meta.kernel.clone(),
        slice_thickness_mm: meta.slice_thickness_mm,
        manufacturer: meta.manufacturer.clone(),
        manufacturer_model: meta.manufacturer_model.clone(),
        patient_age_years: meta.patient_age_years,
        patient_sex: meta.patient_sex.clone(),
        kvp: meta.kvp,
        exposure_mas: meta.exposure_mas,
        contrast_agent: meta.contrast_agent.clone(),
        source_format: meta.source_format.clone(),
        noise_sd_hu: None,
    }
}

/// Warnings that follow from the acquisition facts alone.
pub fn scan_warnings(
    meta: &ScanMeta,
    dims_zyx: [usize; 3],
    config: &AnalysisConfig,
) -> Vec<Warning> {
    let mut w = Vec::new();
    if let Some(age) = meta.patient_age_years
        && age < 18.0
    {
        let how = match config.age_preset {
            AgePreset::Adult => {
                "adult density thresholds were used (set age_preset = \"auto\" for age-appropriate ones)"
            }
            AgePreset::Auto => {
                "an age-adjusted low-attenuation threshold was used; other thresholds are adult ones"
            }
        };
        w.push(Warning::new(
            "pediatric-patient",
            format!("patient is {age:.1} years old: children's lungs are denser and {how}"),
        ));
    }
    if let Some(t) = meta.slice_thickness_mm
        && t > 2.5
    {
        w.push(Warning::new(
            "thick-slices",
            format!(
                "slice thickness {t:.1} mm > 2.5 mm: partial volume blurs GGO and small vessels{}",
                if t >= 7.5 {
                    "; slices this thick also count the edges of consolidation lying in ground \
                     glass as consolidation (phantom, 10 mm: consolidation +22 %): compare visits \
                     of the same thickness"
                } else {
                    ""
                }
            ),
        ));
    }
    if let Some(c) = &meta.contrast_agent
        && !c.trim().is_empty()
    {
        w.push(Warning::new(
            "contrast-enhanced",
            "contrast agent recorded: enhanced vessels and lung raise densities; compare only with enhanced scans",
        ));
    }
    if dims_zyx[0] == 1 {
        w.push(Warning::new(
            "single-slice",
            "one slice: volumes and percentages describe this slice only, zones are not anatomical",
        ));
    }
    w
}
