//! DICOMDIR: list the image files a DICOMDIR references (any record order, any encoding).

use std::path::{Path, PathBuf};

use dicom_dictionary_std::tags;
use dicom_object::OpenFileOptions;

use crate::LoadError;
use crate::header::{SOP_MEDIA_STORAGE_DIRECTORY, flat, get_multi_str, get_str};

const EMPTY_MARK: &str = "lists no referenced files";

/// A file named DICOMDIR, or any file whose meta says Media Storage Directory.
pub(crate) fn looks_like_dicomdir(path: &Path) -> bool {
    if is_dicomdir_name(path) {
        return true;
    }
    let Ok((crate::header::Sniff::Dicom, _)) = crate::header::sniff(path) else {
        return false;
    };
    OpenFileOptions::new()
        .read_until(tags::DIRECTORY_RECORD_SEQUENCE)
        .open_file(path)
        .map(|o| {
            o.meta()
                .media_storage_sop_class_uid()
                .trim_end_matches(['\0', ' '])
                == SOP_MEDIA_STORAGE_DIRECTORY
        })
        .unwrap_or(false)
}

pub(crate) fn is_empty_error(e: &LoadError) -> bool {
    matches!(e, LoadError::DicomDir { detail, .. } if detail.contains(EMPTY_MARK))
}

/// The existing files referenced by a DICOMDIR's records (ReferencedFileID), relative to its folder.
/// Record types and hierarchy offsets are not trusted: every record with a file reference counts.
pub(crate) fn referenced_files(path: &Path) -> Result<(Vec<PathBuf>, usize), LoadError> {
    let ids: Vec<Vec<String>> = match OpenFileOptions::new().open_file(path) {
        Ok(obj) => {
            let items = obj
                .element_opt(tags::DIRECTORY_RECORD_SEQUENCE)
                .ok()
                .flatten()
                .and_then(|e| e.items())
                .ok_or_else(|| LoadError::DicomDir {
                    path: path.to_path_buf(),
                    detail: "no DirectoryRecordSequence".into(),
                })?;
            items
                .iter()
                .map(|it| {
                    let parts = get_multi_str(it, tags::REFERENCED_FILE_ID);
                    if parts.is_empty() {
                        get_str(it, tags::REFERENCED_FILE_ID)
                            .map(|s| s.split('\\').map(str::to_string).collect())
                            .unwrap_or_default()
                    } else {
                        parts
                    }
                })
                .collect()
        }
        Err(e) => {
            // Broken record structure (e.g. stale lengths): find the ReferencedFileID
            // elements in the bytes themselves.
            let bytes = std::fs::read(path).map_err(|err| LoadError::Io {
                path: path.to_path_buf(),
                source: err,
            })?;
            let ids = scan_file_ids(&bytes);
            if ids.is_empty() {
                return Err(LoadError::DicomDir {
                    path: path.to_path_buf(),
                    detail: format!("cannot parse: {}", flat(&e)),
                });
            }
            ids
        }
    };
    let base = path.parent().unwrap_or(Path::new("."));
    let mut files = Vec::new();
    let mut missing = 0usize;
    for parts in ids {
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
        return Err(LoadError::DicomDir {
            path: path.to_path_buf(),
            detail,
        });
    }
    Ok((files, missing))
}

/// ReferencedFileID (0004,1500) values found by pattern in raw DICOMDIR bytes
/// (explicit VR little/big endian and implicit VR little endian).
fn scan_file_ids(b: &[u8]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i + 8 <= b.len() {
        let (len, hdr) = if b[i..i + 4] == [0x04, 0x00, 0x00, 0x15] {
            if &b[i + 4..i + 6] == b"CS" {
                (usize::from(u16::from_le_bytes([b[i + 6], b[i + 7]])), 8)
            } else {
                (
                    u32::from_le_bytes([b[i + 4], b[i + 5], b[i + 6], b[i + 7]]) as usize,
                    8,
                )
            }
        } else if b[i..i + 4] == [0x00, 0x04, 0x15, 0x00] && &b[i + 4..i + 6] == b"CS" {
            (usize::from(u16::from_be_bytes([b[i + 6], b[i + 7]])), 8)
        } else {
            i += 1;
            continue;
        };
        if len > 0 && len <= 512 && i + hdr + len <= b.len() {
            let v = &b[i + hdr..i + hdr + len];
            if v.iter()
                .all(|c| c.is_ascii_graphic() || *c == b' ' || *c == 0)
            {
                let s = String::from_utf8_lossy(v);
                let parts: Vec<String> = s
                    .trim_end_matches(['\0', ' '])
                    .split('\\')
                    .map(|p| p.trim().to_string())
                    .collect();
                out.push(parts);
                i += hdr + len;
                continue;
            }
        }
        i += 1;
    }
    out
}

pub(crate) fn is_dicomdir_name(p: &Path) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.eq_ignore_ascii_case("DICOMDIR"))
}
