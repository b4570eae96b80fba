//! File-system helpers of the jobs, each error naming its file.

use crate::error::AppError;
use std::path::Path;

pub(crate) fn io_err(
    action: &'static str,
    path: &Path,
) -> impl FnOnce(std::io::Error) -> AppError + use<> {
    let path = path.to_path_buf();
    move |source| AppError::Io {
        action,
        source,
        path,
    }
}

pub(crate) fn create_dir(dir: &Path) -> Result<(), AppError> {
    std::fs::create_dir_all(dir).map_err(io_err("creating folder", dir))
}

/// [`ildtrack_fs::write_atomic`] with the error naming the file.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), AppError> {
    ildtrack_fs::write_atomic(path, bytes).map_err(io_err("writing", path))
}
