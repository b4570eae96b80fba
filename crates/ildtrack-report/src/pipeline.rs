//! The jobs the CLI runs: `analyze` one visit, `track` a patient's visits, `demo`.
//!
//! - [`analyze_to_dir`]: load → analyze → `visit.json`, `lungs.nii.gz`, `classes.nii.gz`, QC
//!   PNGs, `report.html`.
//! - [`track`]: every visit of a [`Manifest`] analysed with the same settings (each analysis
//!   cached by content under `<out>/.ildtrack-cache/<key>/`, the key hashing the input files'
//!   paths and bytes, the analysis settings and the software version), then `track.json`,
//!   `track.csv`, `visits/<date>/` (outputs + `report.html`) and `index.html`.
//! - [`demo`]: the scripted demo patient written as DICOM by `ildtrack-phantom`, then tracked.
//!
//! Every file is written atomically (temporary file in the same folder, then rename).

use crate::render::{
    IndexPage, PreviousVisit, QcImage, ReportOptions, VisitPage, render_index_html,
    render_visit_html,
};
use crate::{ReportError, write_atomic};
use ildtrack_analysis::AnalysisConfig;
use ildtrack_analysis::model::VisitResult;
use ildtrack_compute::Backend;
use ildtrack_track::{TrackConfig, TrackResult, TrackVisit};
use ildtrack_volume::{Identity, Volume};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Progress callback: `(stage, fraction 0..=1 of the whole job)`.
pub type Progress<'a> = &'a dyn Fn(&str, f32);

/// Settings of `analyze`, `track` and `demo`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AnalyzeOptions {
    /// Density thresholds, segmentation parameters, age preset.
    pub config: AnalysisConfig,
    /// Analyse this SeriesInstanceUID instead of the automatic choice (single-visit `analyze`).
    pub series_uid: Option<String>,
    /// Show patient name and ID in the reports (`--identify`).
    pub identify: bool,
    /// The verdict rule and protocol tolerances (`track`); a manifest's `[rule]` overrides it.
    pub track: TrackConfig,
}

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
    pub lungs_nifti: PathBuf,
    pub classes_nifti: PathBuf,
    pub qc_pngs: Vec<PathBuf>,
    pub report_html: PathBuf,
    pub result: VisitResult,
    /// One paragraph for stdout.
    pub summary: String,
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> ReportError + use<> {
    let path = path.to_path_buf();
    move |source| ReportError::Io {
        action,
        source,
        path,
    }
}

fn create_dir(dir: &Path) -> Result<(), ReportError> {
    std::fs::create_dir_all(dir).map_err(io_err("creating folder", dir))
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
struct Analysed {
    result: VisitResult,
    images: Vec<QcImage>,
    identity: Option<Identity>,
}

/// Load and analyse `input`, writing `visit.json`, the NIfTI maps and QC PNGs into `dir`.
fn analyse_into<B: Backend>(
    backend: &B,
    input: &Path,
    dir: &Path,
    config: &AnalysisConfig,
    series_uid: Option<String>,
    progress: Progress<'_>,
) -> Result<Analysed, ReportError> {
    let t0 = Instant::now();
    progress("load", 0.0);
    let loaded = ildtrack_dicom::load(input, &ildtrack_dicom::LoadOptions { series_uid })?;
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
            let r = rayon::join(
                || ildtrack_dicom::nifti::write_u8(&dir.join("lungs.nii.gz"), &analysis.lungs),
                || ildtrack_dicom::nifti::write_u8(&dir.join("classes.nii.gz"), &analysis.classes),
            );
            (r, elapsed_ms(t))
        },
        || {
            let t = Instant::now();
            let named = qc_images(&loaded.volume, &analysis.lungs, &analysis.classes);
            (named, elapsed_ms(t))
        },
    );
    niftis.0?;
    niftis.1?;
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
    result.timings_ms.insert("load".into(), load_ms);
    result
        .timings_ms
        .insert("write".into(), tw.elapsed().as_secs_f64() * 1e3);
    result
        .timings_ms
        .insert("total".into(), t0.elapsed().as_secs_f64() * 1e3);
    let json = serde_json::to_string_pretty(&result)
        .map_err(|e| ReportError::Other(format!("serialising visit.json failed: {e}")))?;
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

/// QC pictures with the file each goes to: three axial levels (fewer when the series has fewer
/// distinct slices) and a coronal plane when there are enough slices to show one.
fn qc_images(
    hu: &Volume<i16>,
    lungs: &Volume<u8>,
    classes: &Volume<u8>,
) -> Vec<(&'static str, QcImage)> {
    let (mut zs, y) = ildtrack_analysis::qc::representative_slices(lungs);
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
                Some(z) => ildtrack_analysis::qc::axial_png(hu, lungs, classes, z),
                None => ildtrack_analysis::qc::coronal_png(hu, lungs, classes, y),
            };
            (file, QcImage { caption, png })
        })
        .collect();
    out.retain(|(_, im)| !im.png.is_empty());
    out
}

/// `qc.json`: the QC files of a visit folder with their captions, in report order.
const QC_INDEX: &str = "qc.json";

fn write_images(dir: &Path, images: &[(&str, QcImage)]) -> Result<(), ReportError> {
    let mut index = Vec::new();
    for (file, im) in images {
        write_atomic(&dir.join(file), &im.png)?;
        index.push(serde_json::json!({ "file": file, "caption": im.caption }));
    }
    let text = serde_json::to_string_pretty(&index)
        .map_err(|e| ReportError::Other(format!("serialising qc.json failed: {e}")))?;
    write_atomic(&dir.join(QC_INDEX), text.as_bytes())
}

fn read_images(dir: &Path) -> Vec<QcImage> {
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

/// `ildtrack analyze`: one visit into `out`.
pub fn analyze_to_dir<B: Backend>(
    backend: &B,
    input: &Path,
    out: &Path,
    opts: &AnalyzeOptions,
    progress: Progress<'_>,
) -> Result<VisitOutputs, ReportError> {
    let a = analyse_into(
        backend,
        input,
        out,
        &opts.config,
        opts.series_uid.clone(),
        progress,
    )?;
    let html = render_visit_html(
        &VisitPage {
            result: &a.result,
            images: &a.images,
            label: None,
            day: None,
            tracked: None,
            previous: None,
            identity: a.identity.as_ref(),
            index_href: None,
        },
        &ReportOptions {
            identify: opts.identify,
        },
    );
    let report_html = out.join("report.html");
    write_atomic(&report_html, html.as_bytes())?;
    progress("done", 1.0);
    Ok(VisitOutputs {
        dir: out.to_path_buf(),
        visit_json: out.join("visit.json"),
        lungs_nifti: out.join("lungs.nii.gz"),
        classes_nifti: out.join("classes.nii.gz"),
        qc_pngs: QC_FILES
            .iter()
            .map(|(n, _)| out.join(n))
            .filter(|p| p.exists())
            .collect(),
        report_html,
        summary: visit_summary(&a.result),
        result: a.result,
    })
}

/// One visit of a follow-up.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VisitInput {
    /// Anything `analyze` accepts (folder, file, DICOMDIR, NIfTI). Relative paths in a manifest
    /// are relative to the manifest's folder.
    pub path: PathBuf,
    /// e.g. `pre-infusion`, `+3 months`.
    #[serde(default)]
    pub label: Option<String>,
    /// Study date override, `YYYY-MM-DD`.
    #[serde(default, alias = "study_date")]
    pub date: Option<String>,
    /// FVC, % predicted.
    #[serde(default)]
    pub fvc_pct_pred: Option<f64>,
    /// DLCO, % predicted.
    #[serde(default)]
    pub dlco_pct_pred: Option<f64>,
    /// Analyse this SeriesInstanceUID instead of the automatic choice.
    #[serde(default)]
    pub series_uid: Option<String>,
}

impl VisitInput {
    pub fn from_path(path: PathBuf) -> Self {
        VisitInput {
            path,
            ..Default::default()
        }
    }
}

/// A patient's visits (`patient.toml`):
///
/// ```toml
/// day0 = "2024-03-11"            # treatment day; days count from here
///
/// [[visit]]
/// path = "scans/2024-02-06"      # relative to this file
/// label = "pre-infusion"
/// date = "2024-02-06"            # optional override of the DICOM StudyDate
/// fvc_pct_pred = 62
/// dlco_pct_pred = 48
///
/// [rule]                          # optional: the verdict rule (defaults of DOMAIN.md)
/// metric = "affected_pct"
/// baseline_points = 5
/// previous_points = 3
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    #[serde(default)]
    pub day0: Option<String>,
    #[serde(default, rename = "visit", alias = "visits")]
    pub visits: Vec<VisitInput>,
    #[serde(default)]
    pub rule: Option<TrackConfig>,
}

impl Manifest {
    /// Parse a manifest; relative visit paths are resolved against `base_dir`.
    pub fn from_toml_str(
        text: &str,
        base_dir: &Path,
        origin: &Path,
    ) -> Result<Manifest, ReportError> {
        let mut m: Manifest = toml::from_str(text).map_err(|e| ReportError::Manifest {
            reason: e.to_string(),
            path: origin.to_path_buf(),
        })?;
        for v in &mut m.visits {
            if v.path.is_relative() {
                v.path = base_dir.join(&v.path);
            }
            if let Some(d) = &v.date
                && ildtrack_track::date::days_from_iso(d).is_none()
            {
                return Err(ReportError::Manifest {
                    reason: format!("visit {}: date {d:?} is not YYYY-MM-DD", v.path.display()),
                    path: origin.to_path_buf(),
                });
            }
        }
        if let Some(d) = &m.day0
            && ildtrack_track::date::days_from_iso(d).is_none()
        {
            return Err(ReportError::Manifest {
                reason: format!("day0 {d:?} is not YYYY-MM-DD"),
                path: origin.to_path_buf(),
            });
        }
        if let Some(r) = &m.rule {
            ildtrack_track::validate_config(r).map_err(|e| ReportError::Manifest {
                reason: e.to_string(),
                path: origin.to_path_buf(),
            })?;
        }
        Ok(m)
    }

    /// Read and parse `patient.toml` (at most 1 MiB).
    pub fn from_toml_path(path: &Path) -> Result<Manifest, ReportError> {
        let meta = std::fs::metadata(path).map_err(io_err("reading manifest", path))?;
        if meta.len() > 1 << 20 {
            return Err(ReportError::Manifest {
                reason: format!("file is {} bytes, more than 1 MiB", meta.len()),
                path: path.into(),
            });
        }
        let text = std::fs::read_to_string(path).map_err(io_err("reading manifest", path))?;
        let base = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        Self::from_toml_str(&text, &base, path)
    }
}

/// How a [`track`] run went.
#[derive(Debug, Clone)]
pub struct TrackOutcome {
    pub result: TrackResult,
    /// Inputs analysed in this run (cache misses).
    pub analysed: Vec<PathBuf>,
    /// Inputs whose analysis came from the cache.
    pub from_cache: Vec<PathBuf>,
}

const CACHE_DIR: &str = ".ildtrack-cache";

/// Content key of one visit's analysis: software version, schema, settings, chosen series, and
/// every input file's relative path, size and bytes.
pub fn cache_key(
    input: &Path,
    config: &AnalysisConfig,
    series_uid: Option<&str>,
) -> Result<String, ReportError> {
    let mut h = Sha256::new();
    h.update(b"ildtrack-cache-v1\0");
    h.update(env!("CARGO_PKG_VERSION").as_bytes());
    h.update(b"\0");
    h.update(ildtrack_analysis::model::SCHEMA_VERSION.as_bytes());
    h.update(b"\0");
    let cfg = serde_json::to_string(config)
        .map_err(|e| ReportError::Other(format!("serialising config failed: {e}")))?;
    h.update(cfg.as_bytes());
    h.update(b"\0");
    h.update(series_uid.unwrap_or("").as_bytes());
    h.update(b"\0");
    // A DICOMDIR indexes the files beside it: hash its whole folder.
    let is_dicomdir = input.is_file()
        && input
            .file_name()
            .is_some_and(|n| n.to_string_lossy().eq_ignore_ascii_case("DICOMDIR"));
    let input = match input.parent() {
        Some(parent) if is_dicomdir && !parent.as_os_str().is_empty() => parent,
        Some(_) if is_dicomdir => Path::new("."),
        _ => input,
    };
    let meta = std::fs::metadata(input).map_err(|source| ReportError::Io {
        action: "reading input",
        source,
        path: input.into(),
    })?;
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    if meta.is_dir() {
        for entry in walkdir::WalkDir::new(input).follow_links(true) {
            let entry = entry.map_err(|e| ReportError::Io {
                action: "listing input",
                path: e
                    .path()
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| input.to_path_buf()),
                source: e
                    .into_io_error()
                    .unwrap_or_else(|| std::io::Error::other("walk error")),
            })?;
            if entry.file_type().is_file() {
                let rel = entry
                    .path()
                    .strip_prefix(input)
                    .unwrap_or(entry.path())
                    .to_string_lossy()
                    .replace('\\', "/");
                files.push((rel, entry.path().to_path_buf()));
            }
        }
        files.sort();
    } else {
        let name = input
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        files.push((name, input.to_path_buf()));
    }
    let mut buf = vec![0u8; 1 << 20];
    for (rel, path) in &files {
        h.update(rel.as_bytes());
        h.update(b"\0");
        let mut f = std::fs::File::open(path).map_err(io_err("reading input", path))?;
        let mut n_total: u64 = 0;
        loop {
            let n = f.read(&mut buf).map_err(io_err("reading input", path))?;
            if n == 0 {
                break;
            }
            n_total += n as u64;
            h.update(&buf[..n]);
        }
        h.update(n_total.to_le_bytes());
    }
    let digest = h.finalize();
    Ok(digest.iter().take(16).map(|b| format!("{b:02x}")).collect())
}

/// Analyse (or take from the cache) one visit.
fn analyse_cached<B: Backend>(
    backend: &B,
    v: &VisitInput,
    out: &Path,
    opts: &AnalyzeOptions,
    progress: Progress<'_>,
) -> Result<(Analysed, PathBuf, bool), ReportError> {
    let key = cache_key(&v.path, &opts.config, v.series_uid.as_deref())?;
    let dir = out.join(CACHE_DIR).join(&key);
    let json_path = dir.join("visit.json");
    if json_path.is_file() {
        let identity = if opts.identify {
            std::fs::read(dir.join("identity.json"))
                .ok()
                .and_then(|b| serde_json::from_slice::<Identity>(&b).ok())
        } else {
            None
        };
        if !opts.identify || identity.is_some() {
            match std::fs::read(&json_path).map(|b| serde_json::from_slice::<VisitResult>(&b)) {
                Ok(Ok(result)) => {
                    tracing::info!(key = %key, "visit analysis taken from the cache");
                    return Ok((
                        Analysed {
                            result,
                            images: read_images(&dir),
                            identity,
                        },
                        dir,
                        true,
                    ));
                }
                _ => tracing::warn!(key = %key, "cached visit.json unreadable; analysing again"),
            }
        }
    }
    // Analyse into a fresh folder, then move it into place, so a crash never leaves a cache
    // entry that looks whole.
    let tmp = out
        .join(CACHE_DIR)
        .join(format!(".tmp-{key}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let a = analyse_into(
        backend,
        &v.path,
        &tmp,
        &opts.config,
        v.series_uid.clone(),
        progress,
    )?;
    if opts.identify
        && let Some(id) = &a.identity
    {
        let b = serde_json::to_vec(id)
            .map_err(|e| ReportError::Other(format!("serialising identity failed: {e}")))?;
        write_atomic(&tmp.join("identity.json"), &b)?;
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::rename(&tmp, &dir).map_err(io_err("moving cache entry into place", &dir))?;
    Ok((a, dir, false))
}

fn copy_file(from: &Path, to: &Path) -> Result<(), ReportError> {
    let bytes = std::fs::read(from).map_err(io_err("reading", from))?;
    write_atomic(to, &bytes)
}

/// `ildtrack track`: analyse (or reuse) every visit, judge them, write every output into `out`.
pub fn track<B: Backend>(
    backend: &B,
    manifest: &Manifest,
    out: &Path,
    opts: &AnalyzeOptions,
    progress: Progress<'_>,
) -> Result<TrackResult, ReportError> {
    Ok(track_detailed(backend, manifest, out, opts, progress)?.result)
}

/// [`track`], also saying which visits were analysed and which came from the cache.
pub fn track_detailed<B: Backend>(
    backend: &B,
    manifest: &Manifest,
    out: &Path,
    opts: &AnalyzeOptions,
    progress: Progress<'_>,
) -> Result<TrackOutcome, ReportError> {
    if manifest.visits.is_empty() {
        return Err(ReportError::Track(ildtrack_track::TrackError::NoVisits));
    }
    create_dir(out)?;
    let n = manifest.visits.len();
    let mut analysed_all = Vec::with_capacity(n);
    let (mut analysed, mut from_cache) = (Vec::new(), Vec::new());
    for (i, v) in manifest.visits.iter().enumerate() {
        let stage_progress = |s: &str, f: f32| {
            progress(
                &format!("visit {}/{n}: {s}", i + 1),
                0.9 * (i as f32 + f) / n as f32,
            )
        };
        let (a, cache_dir, hit) = analyse_cached(backend, v, out, opts, &stage_progress)?;
        if hit {
            from_cache.push(v.path.clone());
        } else {
            analysed.push(v.path.clone());
        }
        analysed_all.push((a, cache_dir));
    }
    progress("compare visits", 0.92);

    // Output folder per visit: visits/<date>, unique.
    let mut visit_inputs = Vec::with_capacity(n);
    for (v, (a, _)) in manifest.visits.iter().zip(&analysed_all) {
        let mut tv = TrackVisit::new(a.result.clone());
        tv.label = v.label.clone();
        tv.study_date = v.date.clone();
        tv.fvc_pct_pred = v.fvc_pct_pred;
        tv.dlco_pct_pred = v.dlco_pct_pred;
        visit_inputs.push(tv);
    }
    let cfg = manifest.rule.clone().unwrap_or_else(|| opts.track.clone());
    // First pass gives the date order; directory names follow it.
    let mut result = ildtrack_track::track(visit_inputs.clone(), manifest.day0.as_deref(), &cfg)?;
    let mut used = std::collections::BTreeSet::new();
    for tvis in &result.visits {
        let base = tvis
            .study_date
            .clone()
            .unwrap_or_else(|| format!("visit-{}", tvis.index + 1));
        let mut name = base.clone();
        let mut k = 2;
        while !used.insert(name.clone()) {
            name = format!("{base}-{k}");
            k += 1;
        }
        visit_inputs[tvis.input_index].dir = Some(format!("visits/{name}"));
    }
    result = ildtrack_track::track(visit_inputs, manifest.day0.as_deref(), &cfg)?;

    let ropts = ReportOptions {
        identify: opts.identify,
    };
    for (k, tvis) in result.visits.iter().enumerate() {
        let (a, cache_dir) = &analysed_all[tvis.input_index];
        let rel = tvis
            .dir
            .clone()
            .unwrap_or_else(|| format!("visits/visit-{}", k + 1));
        let vdir = out.join(&rel);
        create_dir(&vdir)?;
        for name in ["visit.json", "lungs.nii.gz", "classes.nii.gz", QC_INDEX]
            .into_iter()
            .chain(QC_FILES.iter().map(|(n, _)| *n))
        {
            let from = cache_dir.join(name);
            if from.is_file() {
                copy_file(&from, &vdir.join(name))?;
            }
        }
        let previous = k.checked_sub(1).map(|p| {
            let pv = &result.visits[p];
            let (pa, _) = &analysed_all[pv.input_index];
            PreviousVisit {
                result: &pa.result,
                images: &pa.images,
                label: pv.label.as_deref(),
                day: pv.day,
            }
        });
        let html = render_visit_html(
            &VisitPage {
                result: &a.result,
                images: &a.images,
                label: tvis.label.as_deref(),
                day: tvis.day,
                tracked: Some(tvis),
                previous,
                identity: a.identity.as_ref(),
                index_href: Some("../../index.html"),
            },
            &ropts,
        );
        write_atomic(&vdir.join("report.html"), html.as_bytes())?;
    }
    progress("write reports", 0.97);
    write_atomic(&out.join("track.json"), result.to_json().map_err(ildtrack_track::TrackError::from)?.as_bytes())?;
    write_atomic(&out.join("track.csv"), result.to_csv().as_bytes())?;
    let latest = result.visits.last().map(|l| &analysed_all[l.input_index]);
    let index = render_index_html(
        &IndexPage {
            track: &result,
            identity: latest.and_then(|(a, _)| a.identity.as_ref()),
            latest_images: latest.map(|(a, _)| a.images.as_slice()).unwrap_or(&[]),
        },
        &ropts,
    );
    write_atomic(&out.join("index.html"), index.as_bytes())?;
    progress("done", 1.0);
    tracing::info!(
        analysed = analysed.len(),
        cached = from_cache.len(),
        "track finished"
    );
    Ok(TrackOutcome {
        result,
        analysed,
        from_cache,
    })
}

/// `ildtrack demo`: the scripted demo patient (ildtrack-phantom) as DICOM under
/// `out/dicom/<date>/`, tracked into `out`.
pub fn demo<B: Backend>(
    backend: &B,
    out: &Path,
    progress: Progress<'_>,
) -> Result<TrackResult, ReportError> {
    Ok(demo_with(
        backend,
        out,
        ildtrack_phantom::demo_patient(),
        &AnalyzeOptions::default(),
        progress,
    )?
    .result)
}

/// [`demo`] on given demo visits (e.g. `ildtrack_phantom::demo_patient_sized` for a quick run).
pub fn demo_with<B: Backend>(
    backend: &B,
    out: &Path,
    visits: Vec<ildtrack_phantom::DemoVisit>,
    opts: &AnalyzeOptions,
    progress: Progress<'_>,
) -> Result<TrackOutcome, ReportError> {
    create_dir(out)?;
    let n = visits.len().max(1);
    let mut manifest = Manifest {
        day0: Some(ildtrack_phantom::DEMO_DAY0.to_string()),
        ..Default::default()
    };
    for (i, dv) in visits.iter().enumerate() {
        progress(
            &format!("generate visit {}/{n}", i + 1),
            0.2 * i as f32 / n as f32,
        );
        let dir = out.join("dicom").join(&dv.study_date);
        let ph = ildtrack_phantom::try_generate(&dv.spec)
            .map_err(|e| ReportError::Other(format!("demo phantom: {e}")))?;
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(io_err("clearing demo folder", &dir))?;
        }
        ildtrack_phantom::write_dicom_series(&ph, &dir, &ildtrack_phantom::WriteOptions::default())
            .map_err(|e| {
                ReportError::Other(format!("writing demo DICOM failed: {e}: {}", dir.display()))
            })?;
        manifest.visits.push(VisitInput {
            path: dir,
            label: Some(dv.label.clone()),
            ..Default::default()
        });
    }
    let progress_rest = |s: &str, f: f32| progress(s, 0.2 + 0.8 * f);
    track_detailed(backend, &manifest, out, opts, &progress_rest)
}

/// Expected demo verdicts, for checking a run: `(label, expected, got)` for every mismatch.
pub fn demo_mismatches(
    result: &TrackResult,
    visits: &[ildtrack_phantom::DemoVisit],
) -> Vec<(String, String, String)> {
    result
        .visits
        .iter()
        .filter_map(|v| {
            let dv = visits.get(v.input_index)?;
            (v.status.as_str() != dv.expected_status).then(|| {
                (
                    dv.label.clone(),
                    dv.expected_status.to_string(),
                    v.status.to_string(),
                )
            })
        })
        .collect()
}
