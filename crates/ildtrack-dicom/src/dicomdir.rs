//! DICOMDIR: list the image files a DICOMDIR references (any record order, any encoding).

use std::path::{Path, PathBuf};

use dicom_dictionary_std::tags;
use dicom_object::OpenFileOptions;

use crate::header::{SOP_MEDIA_STORAGE_DIRECTORY, flat, get_multi_str, get_str};
use crate::LoadError;

const EMPTY_MARK: &str = "lists no referenced files";

/// A file named DICOMDIR, or any file whose meta says Media Storage Directory.
pub(crate) fn looks_like_dicomdir(path: &Path) -> bool {
    if crate::scan::is_dicomdir_name(path) {
        return true;
    }
    let Ok((crate::header::Sniff::Dicom, _)) = crate::header::sniff(path) else { return false };
    OpenFileOptions::new()
        .read_until(tags::DIRECTORY_RECORD_SEQUENCE)
        .open_file(path)
        .map(|o| o.meta().media_storage_sop_class_uid().trim_end_matches(['\0', ' ']) == SOP_MEDIA_STORAGE_DIRECTORY)
        .unwrap_or(false)
}

pub(crate) fn is_empty_error(e: &LoadError) -> bool {
    matches!(e, LoadError::DicomDir { detail, .. } if detail.contains(EMPTY_MARK))
}

/// The existing files referenced by a DICOMDIR's records (ReferencedFileID), relative to its folder.
/// Record types and hierarchy offsets are not trusted: every record with a file reference counts.
pub(crate) fn referenced_files(path: &Path) -> Result<(Vec<PathBuf>, usize), LoadError> {
    let obj = OpenFileOptions::new()
        .open_file(path)
        .map_err(|e| LoadError::DicomDir { path: path.to_path_buf(), detail: format!("cannot parse: {}", flat(&e)) })?;
    let items = obj
        .element_opt(tags::DIRECTORY_RECORD_SEQUENCE)
        .ok()
        .flatten()
        .and_then(|e| e.items())
        .ok_or_else(|| LoadError::DicomDir { path: path.to_path_buf(), detail: "no DirectoryRecordSequence".into() })?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut files = Vec::new();
    let mut missing = 0usize;
    for it in items {
        let parts = get_multi_str(it, tags::REFERENCED_FILE_ID);
        let parts: Vec<String> = if parts.is_empty() {
            get_str(it, tags::REFERENCED_FILE_ID).map(|s| s.split('\\').map(str::to_string).collect()).unwrap_or_default()
        } else {
            parts
        };
        if parts.is_empty() {
            continue;
        }
        let mut p = base.to_path_buf();
        let mut ok = true;
        for c in &parts {
            let c = c.trim();
            // Never leave the DICOMDIR's folder.
            if c.is_empty() || c == "." || c == ".." || c.contains('/') {
                ok = false;
                break;
            }
            p.push(c);
        }
        if !ok {
            continue;
        }
        if p.is_file() {
            files.push(p);
        } else {
            missing += 1;
        }
    }
    files.sort();
    files.dedup();
    if files.is_empty() {
        let detail = if missing > 0 {
            format!("its {missing} referenced files are all missing")
        } else {
            EMPTY_MARK.to_string()
        };
        return Err(LoadError::DicomDir { path: path.to_path_buf(), detail });
    }
    Ok((files, missing))
}
