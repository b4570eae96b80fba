//! One visit: load, analyse, write `visit.json`, the label maps, the QC pictures and
//! `report.html`.

use crate::error::AppError;
use crate::files::{create_dir, write_atomic};
use crate::options::{
    AnalyzeOptions, DICOM_SEG_FILE, DICOM_SR_FILE, LabelFormat, Progress, SEGMENTATION_FILE,
};
use ildtrack_compute::Backend;
use ildtrack_model::visit::VisitResult;
use ildtrack_report::{QcImage, qc};
use ildtrack_volume::{Identity, Volume};
use rayon::prelude::*;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The QC picture files of one visit, in report order (axial upper / middle / lower, coronal).
pub const QC_FILES: [(&str, &str); 4] = [
    ("qc_axial_upper.png", "axial, upper third"),
    ("qc_axial_middle.png", "axial, middle third"),
    ("qc_axial_lower.png", "axial, lower third"),
    ("qc_coronal.png", "coronal"),
];

/// What [`analyze_to_dir`] wrote.
#[derive(Debug, Clone)]
pub struct VisitOutputs {
    pub dir: PathBuf,
    pub visit_json: PathBuf,
    /// `lungs.nii.gz` or `lungs.nrrd` (codes 1 right, 2 left).
    pub lungs_map: PathBuf,
    /// `classes.nii.gz` or `classes.nrrd` (codes of `ildtrack_model::class`).
    pub classes_map: PathBuf,
    /// `segmentation.seg.nrrd` (3D Slicer) with [`LabelFormat::Nrrd`].
    pub segmentation: Option<PathBuf>,
    /// `segmentation.dcm` (DICOM SEG) with `--dicom-out`.
    pub dicom_seg: Option<PathBuf>,
    /// `measurements.dcm` (DICOM SR, TID 1500) with `--dicom-out`.
    pub dicom_sr: Option<PathBuf>,
    pub qc_pngs: Vec<PathBuf>,
    pub report_html: PathBuf,
    pub result: VisitResult,
    /// One paragraph for stdout.
    pub summary: String,
}

/// One paragraph describing a visit's result.
pub fn visit_summary(r: &VisitResult) -> String {
    let w = &r.lungs.whole;
    let score = r.lungs.zones.total_extent_score();
    let mut s = format!(
        "{}: lungs {:.0} mL (right {:.0}, left {:.0}); mean lung density {} HU; GGO {:.1} %, consolidation {:.1} %, \
         affected {:.1} % ({:.0} mL); HAA {:.1} %, LAA-950 {:.1} %; six-zone extent score {score}/24.",
        r.series.study_date.as_deref().unwrap_or("date unknown"),
        w.volume_ml,
        r.lungs.right.volume_ml,
        r.lungs.left.volume_ml,
        w.mean_hu
            .map(|m| format!("{m:.0}"))
            .unwrap_or_else(|| "n/a".into()),
        w.ggo_pct,
        w.consolidation_pct,
        w.affected_pct,
        w.affected_ml,
        w.haa_pct,
        w.laa950_pct,
    );
    if !r.warnings.is_empty() {
        let codes: Vec<&str> = r.warnings.iter().map(|w| w.code.as_str()).collect();
        s.push_str(&format!(
            " {} warning(s): {}.",
            codes.len(),
            codes.join(", ")
        ));
    }
    if let Some(t) = r.timings_ms.get("total") {
        s.push_str(&format!(
            " Analysed in {:.1} s on {}.",
            t / 1000.0,
            r.backend
        ));
    }
    s
}

/// The analysis products of one visit, in memory.
pub(crate) struct Analysed {
    pub(crate) result: VisitResult,
    pub(crate) images: Vec<QcImage>,
    pub(crate) identity: Option<Identity>,
}

/// Load and analyse `input` (the stack `series_uid`, else the automatic choice), writing
/// `visit.json`, the label maps (in `opts.label_format`), the DICOM SEG (`opts.dicom_out`) and
/// QC PNGs into `dir`.
pub(crate) fn analyse_into<B: Backend>(
    backend: &B,
    input: &Path,
    dir: &Path,
    opts: &AnalyzeOptions,
    series_uid: Option<String>,
    progress: Progress<'_>,
) -> Result<Analysed, AppError> {
    let (config, format, dicom_out) = (&opts.config, opts.label_format, opts.dicom_out);
    let t0 = Instant::now();
    progress("load", 0.0);
    let load_opts = ildtrack_dicom::LoadOptions { series_uid };
    // Before any analysis: a NIfTI or NRRD input cannot give DICOM output (exit code 2).
    let source = if dicom_out {
        Some(ildtrack_dicom::seg::source_series(input, &load_opts)?)
    } else {
        None
    };
    let loaded = ildtrack_dicom::load(input, &load_opts)?;
    let load_ms = t0.elapsed().as_secs_f64() * 1e3;
    progress("analyse", 0.15);
    let analysis = ildtrack_analysis::analyze(
        backend,
        &loaded.volume,
        &loaded.meta,
        &loaded.warnings,
        config,
        &|s, f| progress(s, 0.15 + 0.75 * f.clamp(0.0, 1.0)),
    )?;
    progress("write", 0.9);
    let tw = Instant::now();
    create_dir(dir)?;
    // The two label maps are compressed while the QC pictures are drawn and encoded.
    let elapsed_ms = |t: Instant| t.elapsed().as_secs_f64() * 1e3;
    let ((niftis, nifti_ms), (named, qc_ms)) = rayon::join(
        || {
            let t = Instant::now();
            let r = write_label_maps(dir, format, &analysis.lungs, &analysis.classes);
            (r, elapsed_ms(t))
        },
        || {
            let t = Instant::now();
            let named = qc_images(&loaded.volume, &analysis.lungs, &analysis.classes);
            (named, elapsed_ms(t))
        },
    );
    niftis?;
    let mut dicom_out_skipped = false;
    if let Some(source) = &source {
        let seg = ildtrack_dicom::seg::write_seg(
            &dir.join(DICOM_SEG_FILE),
            source,
            &[&analysis.lungs, &analysis.classes],
            &dicom_segments(),
            env!("CARGO_PKG_VERSION"),
        )?;
        match seg {
            Some(seg) => ildtrack_dicom::sr::write_sr(
                &dir.join(DICOM_SR_FILE),
                source,
                &seg,
                &sr_regions(&analysis.result),
                env!("CARGO_PKG_VERSION"),
            )?,
            None => dicom_out_skipped = true,
        }
    }
    // Only the identity is needed from here on: free the HU volume before the last writes.
    let identity = loaded.identity;
    drop(loaded.volume);
    let t = Instant::now();
    write_images(dir, &named)?;
    tracing::debug!(
        nifti_ms,
        qc_ms,
        qc_files_ms = elapsed_ms(t),
        "visit outputs written"
    );
    let images: Vec<QcImage> = named.into_iter().map(|(_, im)| im).collect();
    let mut result = analysis.result;
    if dicom_out_skipped {
        result.warnings.push(ildtrack_volume::Warning::new(
            "dicom-out-empty",
            "no lung voxel was found: no DICOM SEG or SR was written (a Segmentation needs at least one frame)",
        ));
    }
    result.timings_ms.insert("load".into(), load_ms);
    result
        .timings_ms
        .insert("write".into(), tw.elapsed().as_secs_f64() * 1e3);
    result
        .timings_ms
        .insert("total".into(), t0.elapsed().as_secs_f64() * 1e3);
    let json = serde_json::to_string_pretty(&result)
        .map_err(|e| AppError::Other(format!("serialising visit.json failed: {e}")))?;
    write_atomic(&dir.join("visit.json"), json.as_bytes())?;
    // Use the numbers as written: a later run that reads them from the cache then gives a
    // byte-identical track.json (JSON floats do not always round-trip to the last bit).
    let result = serde_json::from_str(&json).unwrap_or(result);
    Ok(Analysed {
        result,
        images,
        identity: Some(identity),
    })
}

/// The segments of [`SEGMENTATION_FILE`]: layer 0 is `lungs` (1 right, 2 left), layer 1 is
/// `classes` (the codes of `ildtrack_model::class`; 0 = outside is no segment). GGO and
/// consolidation have the colours of the QC overlays (yellow, red).
fn slicer_segments() -> Vec<ildtrack_dicom::nrrd::Segment> {
    use ildtrack_model::class;
    let seg = |id: &str, name: &str, color: [f64; 3], layer: usize, label: u8| {
        ildtrack_dicom::nrrd::Segment {
            id: id.into(),
            name: name.into(),
            color,
            layer,
            label,
        }
    };
    vec![
        seg("right_lung", "right lung", [0.55, 0.75, 0.85], 0, 1),
        seg("left_lung", "left lung", [0.40, 0.60, 0.90], 0, 2),
        seg(
            "low_attenuation",
            "low attenuation (LAA)",
            [0.20, 0.30, 0.80],
            1,
            class::LAA,
        ),
        seg(
            "normal",
            "normal lung density",
            [0.85, 0.85, 0.80],
            1,
            class::NORMAL,
        ),
        seg(
            "ggo",
            "ground-glass opacity",
            [1.0, 215.0 / 255.0, 0.0],
            1,
            class::GGO,
        ),
        seg(
            "consolidation",
            "consolidation",
            [1.0, 30.0 / 255.0, 30.0 / 255.0],
            1,
            class::CONSOLIDATION,
        ),
        seg(
            "vessels",
            "vessels and dense structures",
            [0.75, 0.20, 0.60],
            1,
            class::VESSEL_DENSE,
        ),
    ]
}

/// The segments of the DICOM SEG, with their codes (listed in `docs/DICOM-OUT.md`): the two
/// lungs (layer 0) and the density classes that are findings or structures (layer 1; normal
/// lung density is no segment).
fn dicom_segments() -> Vec<ildtrack_dicom::seg::SegmentSpec> {
    use ildtrack_dicom::seg::{Code, SegmentSpec};
    use ildtrack_model::class;
    const ANATOMY: Code = Code {
        value: "91723000",
        scheme: "SCT",
        meaning: "Anatomical Structure",
    };
    const ABNORMAL: Code = Code {
        value: "49755003",
        scheme: "SCT",
        meaning: "Morphologically Abnormal Structure",
    };
    let seg = |label: &str, category: Code, property: Code, layer: usize, value: u8| SegmentSpec {
        label_text: label.into(),
        category,
        property,
        layer,
        label: value,
    };
    vec![
        seg(
            "Right lung",
            ANATOMY,
            Code {
                value: "3341006",
                scheme: "SCT",
                meaning: "Right lung",
            },
            0,
            1,
        ),
        seg(
            "Left lung",
            ANATOMY,
            Code {
                value: "44029006",
                scheme: "SCT",
                meaning: "Left lung",
            },
            0,
            2,
        ),
        seg(
            "Low attenuation",
            ABNORMAL,
            Code {
                value: "112084",
                scheme: "DCM",
                meaning: "Lucency",
            },
            1,
            class::LAA,
        ),
        seg(
            "Ground-glass opacity",
            ABNORMAL,
            Code {
                value: "112120",
                scheme: "DCM",
                meaning: "Ground glass opacity",
            },
            1,
            class::GGO,
        ),
        seg(
            "Consolidation",
            ABNORMAL,
            Code {
                value: "95436008",
                scheme: "SCT",
                meaning: "Lung consolidation",
            },
            1,
            class::CONSOLIDATION,
        ),
        seg(
            "Vessels and dense structures",
            ANATOMY,
            Code {
                value: "59820001",
                scheme: "SCT",
                meaning: "Blood vessel",
            },
            1,
            class::VESSEL_DENSE,
        ),
    ]
}

/// The regions of the DICOM SR and their metrics (codes in `docs/DICOM-OUT.md`): right and
/// left lung (SEG segments 1 and 2, TID 1411) and the whole lungs (TID 1501). Extent scores:
/// a side sums its three zones (0–12), the whole lungs all six (0–24).
fn sr_regions(r: &VisitResult) -> Vec<ildtrack_dicom::sr::RegionMeasurements> {
    use ildtrack_dicom::seg::Code;
    use ildtrack_dicom::sr::{Measurement, PRIVATE_SCHEME, RegionMeasurements};
    let ucum = |value: &'static str, meaning: &'static str| Code {
        value,
        scheme: "UCUM",
        meaning,
    };
    let own = |value: &'static str, meaning: &'static str| Code {
        value,
        scheme: PRIVATE_SCHEME,
        meaning,
    };
    let pct = ucum("%", "Percent");
    let z = &r.lungs.zones;
    let side_score = |zs: [&ildtrack_model::visit::Metrics; 3]| {
        zs.iter().map(|m| f64::from(m.extent_score)).sum::<f64>()
    };
    let metrics = |m: &ildtrack_model::visit::Metrics, score: f64| {
        let mut v = vec![Measurement {
            concept: Code {
                value: "118565006",
                scheme: "SCT",
                meaning: "Volume",
            },
            value: m.volume_ml,
            unit: ucum("ml", "milliliter"),
            derivation: None,
        }];
        if let Some(mean) = m.mean_hu {
            v.push(Measurement {
                concept: Code {
                    value: "112031",
                    scheme: "DCM",
                    meaning: "Attenuation Coefficient",
                },
                value: mean,
                unit: ucum("[hnsf'U]", "Hounsfield unit"),
                derivation: Some(Code {
                    value: "373098007",
                    scheme: "SCT",
                    meaning: "Mean",
                }),
            });
        }
        for (code, meaning, value) in [
            ("LAA950", "Low attenuation area below -950 HU", m.laa950_pct),
            ("GGO", "Ground-glass opacity volume fraction", m.ggo_pct),
            ("CONS", "Consolidation volume fraction", m.consolidation_pct),
            ("AFFECTED", "Affected lung volume fraction", m.affected_pct),
        ] {
            v.push(Measurement {
                concept: own(code, meaning),
                value,
                unit: pct,
                derivation: None,
            });
        }
        v.push(Measurement {
            concept: own("EXTENT", "Six-zone extent score"),
            value: score,
            unit: ucum("{score}", "score"),
            derivation: None,
        });
        v
    };
    let site = |value: &'static str, meaning: &'static str| Code {
        value,
        scheme: "SCT",
        meaning,
    };
    vec![
        RegionMeasurements {
            tracking_id: "right lung".into(),
            finding_site: site("3341006", "Right lung"),
            segment_number: Some(1),
            measurements: metrics(
                &r.lungs.right,
                side_score([&z.right_upper, &z.right_middle, &z.right_lower]),
            ),
        },
        RegionMeasurements {
            tracking_id: "left lung".into(),
            finding_site: site("44029006", "Left lung"),
            segment_number: Some(2),
            measurements: metrics(
                &r.lungs.left,
                side_score([&z.left_upper, &z.left_middle, &z.left_lower]),
            ),
        },
        RegionMeasurements {
            tracking_id: "both lungs".into(),
            finding_site: site("39607008", "Lung"),
            segment_number: None,
            measurements: metrics(&r.lungs.whole, f64::from(z.total_extent_score())),
        },
    ]
}

/// Write the two label maps in `format` into `dir` (in parallel: each is compressed on its own).
fn write_label_maps(
    dir: &Path,
    format: LabelFormat,
    lungs: &Volume<u8>,
    classes: &Volume<u8>,
) -> Result<(), AppError> {
    match format {
        LabelFormat::Nifti => {
            let (a, b) = rayon::join(
                || ildtrack_dicom::nifti::write_u8(&dir.join("lungs.nii.gz"), lungs),
                || ildtrack_dicom::nifti::write_u8(&dir.join("classes.nii.gz"), classes),
            );
            a?;
            b?;
        }
        LabelFormat::Nrrd => {
            let ((a, b), c) = rayon::join(
                || {
                    rayon::join(
                        || ildtrack_dicom::nrrd::write_u8(&dir.join("lungs.nrrd"), lungs),
                        || ildtrack_dicom::nrrd::write_u8(&dir.join("classes.nrrd"), classes),
                    )
                },
                || {
                    ildtrack_dicom::nrrd::write_segmentation(
                        &dir.join(SEGMENTATION_FILE),
                        &[lungs, classes],
                        &slicer_segments(),
                    )
                },
            );
            a?;
            b?;
            c?;
        }
    }
    Ok(())
}

/// QC pictures with the file each goes to: three axial levels (fewer when the series has fewer
/// distinct slices) and a coronal plane when there are enough slices to show one.
fn qc_images(
    hu: &Volume<i16>,
    lungs: &Volume<u8>,
    classes: &Volume<u8>,
) -> Vec<(&'static str, QcImage)> {
    let (mut zs, y) = qc::representative_slices(lungs);
    // representative_slices gives z at 25 / 50 / 75 % of the lung voxels along z; z grows
    // towards the head in the usual geometry, so the highest z is the upper third.
    let head_up = hu.geometry.direction[0][2] >= 0.0;
    zs.sort_unstable();
    zs.dedup();
    if head_up {
        zs.reverse();
    }
    let levels: &[(&str, &str)] = match zs.len() {
        1 => &[("qc_axial_middle.png", "axial")],
        2 => &[
            ("qc_axial_upper.png", "axial, upper level"),
            ("qc_axial_lower.png", "axial, lower level"),
        ],
        _ => &QC_FILES[..3],
    };
    // (file, caption, Some(axial z) | None for the coronal plane at `y`), drawn in parallel.
    let mut jobs: Vec<(&'static str, String, Option<usize>)> = zs
        .iter()
        .zip(levels.iter())
        .map(|(&z, (file, caption))| (*file, format!("{caption} (slice {})", z + 1), Some(z)))
        .collect();
    if hu.dims_zyx()[0] >= 8 {
        jobs.push((QC_FILES[3].0, "coronal".into(), None));
    }
    let mut out: Vec<(&'static str, QcImage)> = jobs
        .into_par_iter()
        .map(|(file, caption, z)| {
            let png = match z {
                Some(z) => qc::axial_png(hu, lungs, classes, z),
                None => qc::coronal_png(hu, lungs, classes, y),
            };
            (file, QcImage { caption, png })
        })
        .collect();
    out.retain(|(_, im)| !im.png.is_empty());
    out
}

/// `qc.json`: the QC files of a visit folder with their captions, in report order.
pub(crate) const QC_INDEX: &str = "qc.json";

fn write_images(dir: &Path, images: &[(&str, QcImage)]) -> Result<(), AppError> {
    let mut index = Vec::new();
    for (file, im) in images {
        write_atomic(&dir.join(file), &im.png)?;
        index.push(serde_json::json!({ "file": file, "caption": im.caption }));
    }
    let text = serde_json::to_string_pretty(&index)
        .map_err(|e| AppError::Other(format!("serialising qc.json failed: {e}")))?;
    write_atomic(&dir.join(QC_INDEX), text.as_bytes())
}

pub(crate) fn read_images(dir: &Path) -> Vec<QcImage> {
    let listed: Vec<(String, String)> = std::fs::read(dir.join(QC_INDEX))
        .ok()
        .and_then(|b| serde_json::from_slice::<Vec<serde_json::Value>>(&b).ok())
        .map(|v| {
            v.iter()
                .filter_map(|e| {
                    Some((
                        e.get("file")?.as_str()?.to_string(),
                        e.get("caption")?.as_str()?.to_string(),
                    ))
                })
                // Only our own file names: never follow a path from the file.
                .filter(|(f, _)| QC_FILES.iter().any(|(q, _)| q == f))
                .collect()
        })
        .unwrap_or_else(|| {
            QC_FILES
                .iter()
                .map(|(f, c)| (f.to_string(), c.to_string()))
                .collect()
        });
    listed
        .into_iter()
        .filter_map(|(file, caption)| {
            std::fs::read(dir.join(&file))
                .ok()
                .map(|png| QcImage { caption, png })
        })
        .collect()
}
