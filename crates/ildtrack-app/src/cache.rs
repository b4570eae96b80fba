//! The content-addressed analysis cache: `<out>/.ildtrack-cache/<key>/` holds one visit's
//! analysis outputs; the key hashes everything the analysis depends on.

use crate::error::AppError;
use crate::files::{create_dir, io_err, write_atomic};
use crate::manifest::VisitInput;
use crate::options::{AnalyzeOptions, LabelFormat, Progress};
use crate::visit::{Analysed, QC_FILES, QC_INDEX, analyse_into, read_images};
use ildtrack_analysis::AnalysisConfig;
use ildtrack_compute::Backend;
use ildtrack_model::visit::VisitResult;
use ildtrack_volume::Identity;
use sha2::{Digest, Sha256};
use std::io::Read as _;
use std::path::{Path, PathBuf};

pub(crate) const CACHE_DIR: &str = ".ildtrack-cache";

/// The cache folder a job uses: `--cache` where given, else `<out>/.ildtrack-cache`.
pub(crate) fn cache_root(opts: &AnalyzeOptions, out: &Path) -> PathBuf {
    opts.cache_dir
        .clone()
        .unwrap_or_else(|| out.join(CACHE_DIR))
}

/// Copy one analysis's files (visit.json, label maps in the chosen format, DICOM SEG and SR,
/// QC pictures and their index) from a cache entry into an output folder.
pub(crate) fn copy_analysis_files(
    from_dir: &Path,
    to_dir: &Path,
    opts: &AnalyzeOptions,
) -> Result<(), AppError> {
    for name in [
        "visit.json",
        QC_INDEX,
        crate::options::DICOM_SEG_FILE,
        crate::options::DICOM_SR_FILE,
    ]
    .into_iter()
    .chain(opts.label_format.files().iter().copied())
    .chain(QC_FILES.iter().map(|(n, _)| *n))
    {
        let from = from_dir.join(name);
        if from.is_file() {
            let bytes = std::fs::read(&from).map_err(io_err("reading", &from))?;
            write_atomic(&to_dir.join(name), &bytes)?;
        }
    }
    Ok(())
}

/// Content key of one visit's analysis: software version, schema, settings, chosen series, and
/// every input file's relative path, size and bytes (a NRRD header's detached data file too).
pub fn cache_key(
    input: &Path,
    config: &AnalysisConfig,
    series_uid: Option<&str>,
) -> Result<String, AppError> {
    let mut h = Sha256::new();
    h.update(b"ildtrack-cache-v1\0");
    h.update(env!("CARGO_PKG_VERSION").as_bytes());
    h.update(b"\0");
    h.update(ildtrack_model::visit::SCHEMA_VERSION.as_bytes());
    h.update(b"\0");
    let cfg = serde_json::to_string(config)
        .map_err(|e| AppError::Other(format!("serialising config failed: {e}")))?;
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
    let meta = std::fs::metadata(input).map_err(|source| AppError::Io {
        action: "reading input",
        source,
        path: input.into(),
    })?;
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    if meta.is_dir() {
        for entry in walkdir::WalkDir::new(input).follow_links(true) {
            let entry = entry.map_err(|e| AppError::Io {
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
        // A NRRD header may keep its voxels in a detached data file: hash that too. (An
        // unreadable header adds nothing here; loading it then fails with the reason.)
        if ildtrack_dicom::nrrd::is_nrrd_path(input)
            && let Ok(all) = ildtrack_dicom::nrrd::input_files(input)
        {
            for data in all.into_iter().skip(1) {
                let name = data
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                files.push((format!("data file {name}"), data));
            }
        }
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

/// Analyse (or take from the cache folder `cache`) one visit.
pub(crate) fn analyse_cached<B: Backend>(
    backend: &B,
    v: &VisitInput,
    cache: &Path,
    opts: &AnalyzeOptions,
    progress: Progress<'_>,
) -> Result<(Analysed, PathBuf, bool), AppError> {
    let key = cache_key(&v.path, &opts.config, v.series_uid.as_deref())?;
    // An entry holds the label maps in one format: NRRD entries get their own key (NIfTI keys
    // stay as they were, so existing caches remain valid).
    let key = match opts.label_format {
        LabelFormat::Nifti => key,
        LabelFormat::Nrrd => format!("{key}-nrrd"),
    };
    // An entry with a DICOM SEG is another entry too.
    let key = if opts.dicom_out {
        format!("{key}-dcm")
    } else {
        key
    };
    let dir = cache.join(&key);
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
    // entry that looks whole (an error on the way removes the folder).
    create_dir(cache)?;
    let tmp = ildtrack_fs::temp_dir_for(&dir).map_err(io_err("creating folder", &dir))?;
    let a = analyse_into(
        backend,
        &v.path,
        tmp.path(),
        opts,
        v.series_uid.clone(),
        progress,
    )?;
    if opts.identify
        && let Some(id) = &a.identity
    {
        let b = serde_json::to_vec(id)
            .map_err(|e| AppError::Other(format!("serialising identity failed: {e}")))?;
        write_atomic(&tmp.path().join("identity.json"), &b)?;
    }
    ildtrack_fs::persist_dir(tmp, &dir).map_err(io_err("moving cache entry into place", &dir))?;
    Ok((a, dir, false))
}
