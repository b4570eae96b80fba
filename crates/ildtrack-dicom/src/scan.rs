//! Input discovery: walk a folder / DICOMDIR / file, read headers only, group into series and
//! stacks, describe each one, and choose the series to analyse with reasons.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ildtrack_volume::Warning;
use rayon::prelude::*;

use crate::LoadError;
use crate::assemble::{self, SliceGeom};
use crate::geometry::{cross, dot};
use crate::header::{self, FileHeader, SOP_MEDIA_STORAGE_DIRECTORY, Sniff};
use crate::kernel::{KernelClass, classify_kernel};
use crate::series::{LoadOptions, Scan, SeriesEntry, SliceRef};
use crate::ts::ts_name;

fn orientation_name(o: Option<[f64; 6]>) -> String {
    let Some(o) = o else { return "unknown".into() };
    let n = cross([o[0], o[1], o[2]], [o[3], o[4], o[5]]);
    let len = dot(n, n).sqrt();
    if len.is_nan() || len <= 1e-6 {
        return "unknown".into();
    }
    let a = [n[0].abs() / len, n[1].abs() / len, n[2].abs() / len];
    let (k, m) = a.iter().enumerate().fold(
        (0, 0.0),
        |acc, (i, &v)| if v > acc.1 { (i, v) } else { acc },
    );
    if m < 0.8 {
        return "oblique".into();
    }
    ["sagittal", "coronal", "axial"][k].into()
}

/// Collect the files to look at for an input path, with notes about skipped entries.
fn list_files(input: &Path, notes: &mut Vec<Warning>) -> Result<(Vec<PathBuf>, String), LoadError> {
    let md = std::fs::metadata(input).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            LoadError::NotFound {
                path: input.to_path_buf(),
            }
        } else {
            LoadError::Io {
                path: input.to_path_buf(),
                source: e,
            }
        }
    })?;
    if md.is_dir() {
        let mut files = Vec::new();
        let mut walk_errors = 0usize;
        for entry in walkdir::WalkDir::new(input)
            .follow_links(true)
            .sort_by_file_name()
        {
            match entry {
                Ok(e) if e.file_type().is_file() => files.push(e.into_path()),
                Ok(_) => {}
                Err(_) => walk_errors += 1,
            }
        }
        if walk_errors > 0 {
            notes.push(Warning::new(
                "unreadable-entries",
                format!("{walk_errors} folder entries could not be read and were skipped"),
            ));
        }
        return Ok((files, "dicom-folder".into()));
    }
    Ok((vec![input.to_path_buf()], "dicom-file".into()))
}

/// Outcome of looking at one file during a folder scan.
enum Seen {
    Header(Box<FileHeader>),
    Empty(PathBuf),
    NotDicom(PathBuf),
    Directory(PathBuf),
    Unreadable(PathBuf, String),
    Truncated(PathBuf, String),
}

fn look(path: &Path) -> Seen {
    match header::sniff(path) {
        Err(e) => Seen::Unreadable(path.to_path_buf(), e.to_string()),
        Ok((Sniff::Empty, _)) => Seen::Empty(path.to_path_buf()),
        Ok((Sniff::NotDicom, _)) => Seen::NotDicom(path.to_path_buf()),
        Ok((Sniff::Dicom, len)) => match header::read_header(path, len) {
            Ok(h) if h.sop_class == SOP_MEDIA_STORAGE_DIRECTORY => {
                Seen::Directory(path.to_path_buf())
            }
            Ok(h) => Seen::Header(Box::new(h)),
            Err(e @ LoadError::Truncated { .. }) => {
                Seen::Truncated(path.to_path_buf(), e.to_string())
            }
            Err(e) => Seen::Unreadable(path.to_path_buf(), e.to_string()),
        },
    }
}

fn examples(paths: &[PathBuf], root: &Path) -> String {
    let names: Vec<String> = paths
        .iter()
        .take(3)
        .map(|p| p.strip_prefix(root).unwrap_or(p).display().to_string())
        .collect();
    let more = if paths.len() > 3 {
        format!(" and {} more", paths.len() - 3)
    } else {
        String::new()
    };
    format!("{}{more}", names.join(", "))
}

/// Headers of every DICOM file under `input` (a folder, a DICOMDIR or a single file).
pub(crate) fn scan_input(input: &Path) -> Result<Scan, LoadError> {
    let mut notes = Vec::new();
    let md = std::fs::metadata(input).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            LoadError::NotFound {
                path: input.to_path_buf(),
            }
        } else {
            LoadError::Io {
                path: input.to_path_buf(),
                source: e,
            }
        }
    })?;
    if md.is_file() && crate::nifti::is_nifti_path(input) {
        return crate::nifti::scan_entry(input);
    }
    if md.is_file() && crate::nrrd::is_nrrd_path(input) {
        return crate::nrrd::scan_entry(input);
    }
    let (paths, mut source_format) = if md.is_file() && crate::dicomdir::looks_like_dicomdir(input)
    {
        match crate::dicomdir::referenced_files(input) {
            Ok((files, missing)) => {
                if missing > 0 {
                    notes.push(Warning::new(
                        "dicomdir-missing-files",
                        format!("the DICOMDIR references {missing} file(s) that do not exist"),
                    ));
                }
                (files, "dicomdir".to_string())
            }
            Err(e @ LoadError::DicomDir { .. }) if crate::dicomdir::is_empty_error(&e) => {
                return Err(e);
            }
            Err(e) => {
                let dir = input.parent().unwrap_or(Path::new(".")).to_path_buf();
                notes.push(Warning::new(
                    "dicomdir-unusable",
                    format!("{e}; scanned the folder {} instead", dir.display()),
                ));
                let (files, _) = list_files(&dir, &mut notes)?;
                (files, "dicom-folder".to_string())
            }
        }
    } else {
        list_files(input, &mut notes)?
    };
    let single_file = md.is_file() && source_format == "dicom-file";

    if single_file {
        // A single file must be usable: every problem is an error naming it.
        let path = &paths[0];
        let (kind, len) = header::sniff(path)?;
        match kind {
            Sniff::Empty => return Err(LoadError::EmptyFile { path: path.clone() }),
            Sniff::NotDicom => {
                return Err(LoadError::InvalidDicom {
                    path: path.clone(),
                    reason: "no DICM marker and no file meta group: not a DICOM Part 10 file"
                        .into(),
                });
            }
            Sniff::Dicom => {}
        }
        let h = header::read_header(path, len)?;
        if h.enhanced {
            source_format = "enhanced-multiframe".into();
        }
        let mut scan = group(input, vec![h], notes, source_format);
        choose(&mut scan, &LoadOptions::default());
        return Ok(scan);
    }

    let seen: Vec<Seen> = paths.par_iter().map(|p| look(p)).collect();
    let mut headers = Vec::new();
    let (mut empty, mut not_dicom, mut dirs, mut unreadable) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for s in seen {
        match s {
            Seen::Header(h) => headers.push(*h),
            Seen::Empty(p) => empty.push(p),
            Seen::NotDicom(p) => not_dicom.push(p),
            Seen::Directory(p) => dirs.push(p),
            Seen::Unreadable(p, why) => unreadable.push((p, why, "unreadable-file")),
            Seen::Truncated(p, why) => unreadable.push((p, why, "truncated-files")),
        }
    }
    let root = if md.is_dir() {
        input
    } else {
        input.parent().unwrap_or(input)
    };
    if !empty.is_empty() {
        notes.push(Warning::new(
            "empty-files",
            format!(
                "{} zero-byte file(s) ignored: {}",
                empty.len(),
                examples(&empty, root)
            ),
        ));
    }
    if !not_dicom.is_empty() {
        notes.push(Warning::new(
            "non-dicom-files",
            format!(
                "{} non-DICOM file(s) ignored: {}",
                not_dicom.len(),
                examples(&not_dicom, root)
            ),
        ));
    }
    if !dirs.is_empty() {
        notes.push(Warning::new(
            "dicomdir-index",
            format!(
                "{} DICOMDIR index file(s) skipped (the folder was scanned directly): {}",
                dirs.len(),
                examples(&dirs, root)
            ),
        ));
    }
    for (_, why, code) in unreadable.iter().take(20) {
        notes.push(Warning::new(*code, format!("ignored: {why}")));
    }
    if unreadable.len() > 20 {
        notes.push(Warning::new(
            "unreadable-file",
            format!(
                "{} more unreadable DICOM files ignored",
                unreadable.len() - 20
            ),
        ));
    }
    if headers.is_empty() {
        let total = empty.len() + not_dicom.len() + dirs.len() + unreadable.len();
        let detail = if total == 0 {
            "the folder is empty".to_string()
        } else {
            let mut parts = Vec::new();
            if !empty.is_empty() {
                parts.push(format!("{} zero-byte", empty.len()));
            }
            if !not_dicom.is_empty() {
                parts.push(format!("{} not DICOM", not_dicom.len()));
            }
            if !unreadable.is_empty() {
                parts.push(format!(
                    "{} unreadable or truncated DICOM (first: {})",
                    unreadable.len(),
                    unreadable[0].1
                ));
            }
            if !dirs.is_empty() {
                parts.push(format!("{} DICOMDIR index only", dirs.len()));
            }
            format!("{total} file(s): {}", parts.join(", "))
        };
        return Err(LoadError::NoDicom {
            path: input.to_path_buf(),
            detail,
        });
    }
    let mut scan = group(input, headers, notes, source_format);
    choose(&mut scan, &LoadOptions::default());
    Ok(scan)
}

/// Group headers into series, then into stacks by orientation, matrix and pixel spacing;
/// split stacks by AcquisitionNumber when that separates repeated positions.
pub(crate) fn group(
    input: &Path,
    mut files: Vec<FileHeader>,
    notes: Vec<Warning>,
    source_format: String,
) -> Scan {
    files.sort_by(|a, b| {
        (a.series_uid.as_deref(), a.instance_number, a.path.as_path()).cmp(&(
            b.series_uid.as_deref(),
            b.instance_number,
            b.path.as_path(),
        ))
    });
    let mut by_series: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, f) in files.iter().enumerate() {
        let key = f
            .series_uid
            .clone()
            .unwrap_or_else(|| "(no SeriesInstanceUID)".into());
        by_series.entry(key).or_default().push(i);
    }
    let mut series = Vec::new();
    for (uid, idxs) in by_series {
        // Stacks: (rows, cols, orientation, pixel spacing) clusters.
        struct St {
            rows: u32,
            cols: u32,
            o: Option<[f64; 6]>,
            ps: Option<[f64; 2]>,
            slices: Vec<SliceRef>,
        }
        let mut stacks: Vec<St> = Vec::new();
        for &fi in &idxs {
            let f = &files[fi];
            let (rows, cols) = f.pixel.as_ref().map(|p| (p.rows, p.cols)).unwrap_or((0, 0));
            for (k, fr) in f.frames.iter().enumerate() {
                let same = |s: &St| {
                    s.rows == rows
                        && s.cols == cols
                        && match (s.o, fr.orientation) {
                            (Some(a), Some(b)) => {
                                a.iter().zip(b.iter()).all(|(x, y)| (x - y).abs() < 1e-3)
                            }
                            (None, None) => true,
                            _ => false,
                        }
                        && match (s.ps, fr.pixel_spacing) {
                            (Some(a), Some(b)) => {
                                (a[0] - b[0]).abs() < 1e-3 * a[0]
                                    && (a[1] - b[1]).abs() < 1e-3 * a[1]
                            }
                            (None, None) => true,
                            _ => false,
                        }
                };
                let r = SliceRef {
                    file: fi,
                    frame: k as u32,
                };
                match stacks.iter_mut().find(|s| same(s)) {
                    Some(s) => s.slices.push(r),
                    None => stacks.push(St {
                        rows,
                        cols,
                        o: fr.orientation,
                        ps: fr.pixel_spacing,
                        slices: vec![r],
                    }),
                }
            }
        }
        // Split by acquisition when positions repeat and acquisitions separate them.
        let mut final_stacks: Vec<Vec<SliceRef>> = Vec::new();
        for s in stacks {
            let pos_key = |r: &SliceRef| {
                files[r.file].frames[r.frame as usize]
                    .position
                    .map(|p| p.map(|v| (v * 100.0).round() as i64))
            };
            let mut seen = std::collections::HashSet::new();
            let has_dup = s.slices.iter().any(|r| !seen.insert(pos_key(r)));
            if has_dup {
                let mut by_acq: BTreeMap<Option<i64>, Vec<SliceRef>> = BTreeMap::new();
                for r in &s.slices {
                    by_acq
                        .entry(files[r.file].acquisition_number)
                        .or_default()
                        .push(*r);
                }
                let separates = by_acq.len() > 1
                    && by_acq.values().all(|v| {
                        let mut seen = std::collections::HashSet::new();
                        v.iter().all(|r| seen.insert(pos_key(r)))
                    });
                if separates {
                    final_stacks.extend(by_acq.into_values());
                    continue;
                }
            }
            final_stacks.push(s.slices);
        }
        let n_stacks = final_stacks.len();
        for (si, slices) in final_stacks.into_iter().enumerate() {
            let mut e = describe(&uid, si, slices, &files);
            if n_stacks > 1 {
                e.warnings.push(Warning::new(
                    "series-split",
                    format!("series {uid} holds {n_stacks} stacks (different orientation, matrix, spacing or acquisition); this is stack {si}"),
                ));
            }
            series.push(e);
        }
    }
    Scan {
        input: input.to_path_buf(),
        source_format,
        series,
        chosen: None,
        choice_reasons: Vec::new(),
        notes,
        files,
    }
}

pub(crate) fn slice_geoms(e: &SeriesEntry, files: &[FileHeader]) -> Option<Vec<SliceGeom>> {
    e.slices
        .iter()
        .map(|r| {
            let fr = files[r.file].frames.get(r.frame as usize)?;
            let ps = fr
                .pixel_spacing
                .or_else(|| (e.slices.len() == 1).then_some([1.0, 1.0]))?;
            let o = fr
                .orientation
                .or_else(|| (e.slices.len() == 1).then_some([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]))?;
            let p = fr
                .position
                .or_else(|| (e.slices.len() == 1).then_some([0.0, 0.0, 0.0]))?;
            Some(SliceGeom {
                position_mm: p,
                orientation: o,
                pixel_spacing_mm: ps,
                thickness_mm: fr.thickness_mm,
            })
        })
        .collect()
}

fn describe(uid: &str, stack: usize, slices: Vec<SliceRef>, files: &[FileHeader]) -> SeriesEntry {
    let f0 = &files[slices[0].file];
    let fr0 = f0.frames[slices[0].frame as usize];
    let mut n_files: Vec<usize> = slices.iter().map(|s| s.file).collect();
    n_files.dedup();
    let mut e = SeriesEntry {
        uid: uid.to_string(),
        stack,
        description: f0.meta.series_description.clone(),
        modality: f0.meta.modality.clone(),
        kernel: f0.meta.kernel.clone(),
        kernel_class: f0
            .meta
            .kernel
            .as_deref()
            .map(classify_kernel)
            .unwrap_or(KernelClass::Unknown),
        image_type: f0.image_type.clone(),
        sop_class_uid: f0.sop_class.clone(),
        manufacturer: f0.meta.manufacturer.clone(),
        study_date: f0.meta.study_date.clone(),
        series_time: f0.meta.series_time.clone(),
        acquisition_number: f0.acquisition_number,
        n_slices: slices.len(),
        n_files: n_files.len(),
        thickness_mm: fr0.thickness_mm,
        spacing_mm: None,
        coverage_mm: 0.0,
        rows: f0.pixel.as_ref().map(|p| p.rows).unwrap_or(0),
        cols: f0.pixel.as_ref().map(|p| p.cols).unwrap_or(0),
        transfer_syntax: f0.transfer_syntax.clone(),
        transfer_syntax_name: ts_name(&f0.transfer_syntax),
        orientation: orientation_name(fr0.orientation),
        warnings: Vec::new(),
        rejected_because: None,
        slices,
        identity: f0.identity.clone(),
        meta: f0.meta.clone(),
    };
    // Truncated native files: the pixel data cannot be all there.
    if let Some(p) = &f0.pixel
        && crate::ts::is_native(&f0.transfer_syntax)
        && f0.transfer_syntax != crate::ts::TS_DEFLATED
    {
        let need = p.frame_bytes().saturating_mul(u64::from(p.n_frames));
        let short: Vec<PathBuf> = {
            let mut v: Vec<PathBuf> = e
                .slices
                .iter()
                .map(|s| &files[s.file])
                .filter(|f| f.file_len < need)
                .map(|f| f.path.clone())
                .collect();
            v.dedup();
            v
        };
        if !short.is_empty() {
            let before = e.slices.len();
            e.slices.retain(|s| files[s.file].file_len >= need);
            e.warnings.push(Warning::new(
                    "truncated-files",
                    format!(
                        "{} file(s) are shorter than their pixel data ({} bytes) and were left out ({} of {} slices kept): {}",
                        short.len(),
                        need,
                        e.slices.len(),
                        before,
                        short.iter().take(3).map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
                    ),
                ));
            e.n_slices = e.slices.len();
        }
    }
    let rejected = reject_reason(&e, f0);
    let bad_uid = |u: &str| {
        u.is_empty() || u.len() > 64 || !u.chars().all(|c| c.is_ascii_digit() || c == '.')
    };
    if let Some(u) = [
        Some(uid),
        f0.meta.study_instance_uid.as_deref(),
        f0.sop_instance.as_deref(),
    ]
    .into_iter()
    .flatten()
    .find(|u| bad_uid(u))
    {
        e.warnings.push(Warning::new(
            "invalid-uid",
            format!("UID {u:?} is not a valid DICOM UID (digits and dots, at most 64 characters); grouping by it may be unreliable"),
        ));
    }
    if e.modality.is_none() && rejected.is_none() {
        e.warnings.push(Warning::new(
            "modality-missing",
            "no Modality tag: assumed to be CT",
        ));
    }
    if !e.slices.is_empty() {
        match slice_geoms(&e, files) {
            None => {
                e.rejected_because = Some(
                    "slices lack ImagePositionPatient, ImageOrientationPatient or PixelSpacing"
                        .into(),
                )
            }
            Some(g) => match assemble::plan(&g) {
                Ok(plan) => {
                    e.spacing_mm = Some(plan.geometry.spacing_mm);
                    e.coverage_mm =
                        plan.geometry.spacing_mm[0] * (plan.out.len().saturating_sub(1)) as f64;
                    e.warnings.extend(plan.warnings);
                }
                Err(why) => e.rejected_because = Some(format!("slices cannot be assembled: {why}")),
            },
        }
    }
    if rejected.is_some() {
        e.rejected_because = rejected;
    }
    if e.slices.is_empty() && e.rejected_because.is_none() {
        e.rejected_because = Some("no complete slice left".into());
    }
    e
}

/// Dose sheets saved as images ("Dose Report", "Dose Info", GE's "Patient Protocol").
/// A description that merely mentions dose ("Low Dose CT Lung Screening") is a real CT.
fn is_dose_report_description(desc_lower: &str) -> bool {
    [
        "dose report",
        "dose info",
        "dose summary",
        "dose sr",
        "radiation dose",
        "patient protocol",
    ]
    .iter()
    .any(|k| desc_lower.contains(k))
}

fn reject_reason(e: &SeriesEntry, f0: &FileHeader) -> Option<String> {
    let desc = e
        .description
        .clone()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let sop = f0.sop_class.as_str();
    if sop.starts_with("1.2.840.10008.5.1.4.1.1.88") || is_dose_report_description(&desc) {
        return Some("dose report".into());
    }
    if sop.starts_with("1.2.840.10008.5.1.4.1.1.7") {
        return Some("secondary capture".into());
    }
    match e.modality.as_deref() {
        Some("CT") => {}
        Some(m) => return Some(format!("modality {m}, not CT")),
        None if sop.is_empty() || sop.starts_with("1.2.840.10008.5.1.4.1.1.2") => {}
        None => return Some(format!("no Modality and SOP class {sop} is not CT")),
    }
    if f0.pixel.is_none() {
        return Some("no image (no Rows/Columns)".into());
    }
    if e.image_type
        .iter()
        .any(|t| t == "LOCALIZER" || t == "SCOUT")
        || ["scout", "topogram", "localizer", "surview", "scanogram"]
            .iter()
            .any(|w| desc.contains(w))
    {
        return Some("localizer / scout image".into());
    }
    if let Some(p) = &f0.pixel
        && p.samples_per_pixel != 1
    {
        return Some(format!(
            "{} samples per pixel: colour, not CT",
            p.samples_per_pixel
        ));
    }
    None
}

/// A sortable preference key for a candidate stack (bigger is better).
fn rank(e: &SeriesEntry, max_cov: f64) -> (bool, bool, bool, bool, bool, i64, i64, usize) {
    let original = e.image_type.first().is_some_and(|t| t == "ORIGINAL");
    let primary = e.image_type.get(1).is_none_or(|t| t == "PRIMARY");
    let axial = e.orientation == "axial";
    // Coverage within 90 % of the best counts as full coverage.
    let full = e.coverage_mm >= 0.9 * max_cov;
    let thin = -((e
        .thickness_mm
        .or(e.spacing_mm.map(|s| s[0]))
        .unwrap_or(99.0)
        * 10.0)
        .round() as i64);
    let lung = match e.kernel_class {
        KernelClass::Lung => 2,
        KernelClass::Unknown => 1,
        KernelClass::Soft => 0,
    };
    (
        e.modality.is_some(),
        original && primary,
        axial,
        e.n_slices > 1,
        full,
        thin,
        lung,
        e.n_slices,
    )
}

fn describe_short(e: &SeriesEntry) -> String {
    format!(
        "{}{} ({}, {} {} slice(s){}, {}, kernel {})",
        e.uid,
        if e.stack > 0 {
            format!(" stack {}", e.stack)
        } else {
            String::new()
        },
        e.description.as_deref().unwrap_or("no description"),
        e.n_slices,
        e.orientation,
        e.thickness_mm
            .map(|t| format!(" {t:.2} mm thick"))
            .unwrap_or_default(),
        if e.coverage_mm > 0.0 {
            format!("{:.0} mm coverage", e.coverage_mm)
        } else {
            "no coverage".into()
        },
        e.kernel
            .as_deref()
            .map(|k| format!("{k} [{:?}]", e.kernel_class).to_lowercase())
            .unwrap_or_else(|| "unknown".into()),
    )
}

/// Choose the stack to analyse (or honour `opts.series_uid`) and record the reasons.
pub(crate) fn choose(scan: &mut Scan, opts: &LoadOptions) {
    scan.chosen = None;
    scan.choice_reasons.clear();
    let mut cands: Vec<usize> = (0..scan.series.len())
        .filter(|&i| scan.series[i].rejected_because.is_none())
        .collect();
    if let Some(uid) = &opts.series_uid {
        let with_uid: Vec<usize> = (0..scan.series.len())
            .filter(|&i| &scan.series[i].uid == uid)
            .collect();
        if with_uid.is_empty() {
            scan.choice_reasons
                .push(format!("--series {uid}: no such series"));
            return;
        }
        let usable: Vec<usize> = with_uid
            .iter()
            .copied()
            .filter(|i| cands.contains(i))
            .collect();
        cands = if usable.is_empty() {
            // The user insists: take it anyway if it has slices, and say so.
            scan.choice_reasons.push(format!(
                "--series {uid}: taken although it would be rejected ({})",
                scan.series[with_uid[0]]
                    .rejected_because
                    .clone()
                    .unwrap_or_default()
            ));
            with_uid
                .into_iter()
                .filter(|&i| {
                    !scan.series[i].slices.is_empty() && scan.series[i].spacing_mm.is_some()
                })
                .collect()
        } else {
            scan.choice_reasons
                .push(format!("--series {uid} given by the user"));
            usable
        };
        if cands.is_empty() {
            return;
        }
    }
    for e in &scan.series {
        if let Some(why) = &e.rejected_because {
            scan.choice_reasons
                .push(format!("rejected {}: {why}", describe_short(e)));
        }
    }
    if cands.is_empty() {
        return;
    }
    let max_cov = cands
        .iter()
        .map(|&i| scan.series[i].coverage_mm)
        .fold(0.0, f64::max);
    cands.sort_by(|&a, &b| {
        rank(&scan.series[b], max_cov)
            .cmp(&rank(&scan.series[a], max_cov))
            .then(scan.series[a].uid.cmp(&scan.series[b].uid))
    });
    let best = cands[0];
    let e = &scan.series[best];
    let rb = rank(e, max_cov);
    let mut why = vec![if rb.0 {
        "CT".to_string()
    } else {
        "assumed CT (no Modality)".to_string()
    }];
    why.push(if rb.1 {
        "ORIGINAL/PRIMARY".into()
    } else {
        format!(
            "image type {} (no ORIGINAL/PRIMARY candidate)",
            e.image_type.join("\\")
        )
    });
    why.push(if rb.2 {
        "axial".into()
    } else {
        format!("{} (no axial candidate)", e.orientation)
    });
    why.push(format!(
        "{} slices over {:.0} mm (most coverage)",
        e.n_slices, e.coverage_mm
    ));
    if let Some(t) = e.thickness_mm {
        why.push(format!("{t:.2} mm slices"));
    }
    scan.choice_reasons.insert(
        0,
        format!("chosen {}: {}", describe_short(e), why.join(", ")),
    );
    for &o in &cands[1..] {
        let oe = &scan.series[o];
        let ro = rank(oe, max_cov);
        let reason = if ro.0 != rb.0 {
            "no Modality tag"
        } else if ro.1 != rb.1 {
            "not ORIGINAL/PRIMARY"
        } else if ro.2 != rb.2 {
            "not axial"
        } else if ro.3 != rb.3 {
            "a single slice"
        } else if ro.4 != rb.4 {
            "less coverage"
        } else if ro.5 != rb.5 {
            "thicker slices"
        } else if ro.6 != rb.6 {
            "softer kernel (a lung kernel is preferred)"
        } else if ro.7 != rb.7 {
            "fewer slices"
        } else {
            "equal rank; lower UID wins"
        };
        scan.choice_reasons
            .push(format!("not chosen {}: {reason}", describe_short(oe)));
    }
    scan.chosen = Some(best);
}

#[cfg(test)]
mod dose_report_tests {
    use super::is_dose_report_description;

    #[test]
    fn low_dose_ct_is_not_a_dose_report() {
        assert!(!is_dose_report_description("low dose ct lung screening"));
        assert!(!is_dose_report_description("chest low dose 1.25 mm"));
        assert!(is_dose_report_description("dose report"));
        assert!(is_dose_report_description("patient protocol"));
        assert!(is_dose_report_description("ct dose info"));
    }
}
