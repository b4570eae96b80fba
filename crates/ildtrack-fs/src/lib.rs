//! Atomic writes: a crash never leaves a half-written output that looks whole.
//!
//! Every output of ildtrack (label maps, DICOM of the phantom, `visit.json`, reports, cache
//! entries) goes through this crate: the bytes go to a temporary file in the target's own folder
//! (so the rename never crosses a file system), the file is synced, then renamed over the
//! target. On error the temporary file is removed.
//!
//! It is its own crate because the writers sit on different branches of the crate graph
//! (`ildtrack-dicom`, `ildtrack-phantom`, `ildtrack-app`) and `ildtrack-volume`, the one crate
//! they all share, does no I/O.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The folder a file is written into (`.` for a bare file name).
fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// Hidden, and named after its target so a leftover says where it came from.
fn temp_prefix(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    format!(".{name}.")
}

/// Write what `body` writes to `path` atomically: through a temporary file in the same folder,
/// synced, then renamed over `path`. The parent folder must exist. `body` gets the file itself;
/// wrap it in a `BufWriter` (and flush) when writing in small pieces.
///
/// The file gets the permissions a plain `File::create` would give (0o666 less the umask), not
/// the owner-only mode of a temporary file.
pub fn write_atomic_with(
    path: &Path,
    body: impl FnOnce(&mut std::fs::File) -> io::Result<()>,
) -> io::Result<()> {
    let prefix = temp_prefix(path);
    let mut b = tempfile::Builder::new();
    b.prefix(&prefix).suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        b.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let mut tmp = b.tempfile_in(parent_of(path))?;
    body(tmp.as_file_mut())?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Write `bytes` to `path` atomically (see [`write_atomic_with`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic_with(path, |f| f.write_all(bytes))
}

/// A folder being filled before it is moved into place with [`persist_dir`]. Removed with
/// everything in it when dropped unpersisted (an error on the way).
#[derive(Debug)]
pub struct TempDir(tempfile::TempDir);

impl TempDir {
    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

/// A fresh, empty folder beside `target` (hidden, named after it) to fill and then
/// move over `target` with [`persist_dir`].
pub fn temp_dir_for(target: &Path) -> io::Result<TempDir> {
    tempfile::Builder::new()
        .prefix(&temp_prefix(target))
        .suffix(".tmp")
        .tempdir_in(parent_of(target))
        .map(TempDir)
}

/// Move a filled folder over `target`: a folder already at `target` is removed first, so a
/// reader sees the old folder, no folder, or the new one whole — never a part of one.
pub fn persist_dir(dir: TempDir, target: &Path) -> io::Result<PathBuf> {
    match std::fs::remove_dir_all(target) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let from = dir.0.keep();
    if let Err(e) = std::fs::rename(&from, target) {
        let _ = std::fs::remove_dir_all(&from);
        return Err(e);
    }
    Ok(target.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .expect("ls")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn writes_replace_and_leave_no_temp_files() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("a.txt");
        write_atomic(&p, b"one").expect("write");
        write_atomic(&p, b"two").expect("write");
        assert_eq!(std::fs::read(&p).expect("read"), b"two");
        assert_eq!(names(dir.path()), ["a.txt"]);
        let err = write_atomic(&dir.path().join("missing").join("b.txt"), b"x");
        assert!(err.is_err());
    }

    #[test]
    fn a_failing_body_leaves_the_old_file_and_no_temp_file() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("a.bin");
        write_atomic(&p, b"old").expect("write");
        let err = write_atomic_with(&p, |f| {
            f.write_all(b"half")?;
            Err(io::Error::other("disk full"))
        })
        .expect_err("body fails");
        assert_eq!(err.to_string(), "disk full");
        assert_eq!(std::fs::read(&p).expect("read"), b"old");
        assert_eq!(names(dir.path()), ["a.bin"]);
    }

    #[cfg(unix)]
    #[test]
    fn files_are_as_readable_as_plain_created_ones() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().expect("tmp");
        let plain = dir.path().join("plain");
        std::fs::File::create(&plain).expect("create");
        let atomic = dir.path().join("atomic");
        write_atomic(&atomic, b"x").expect("write");
        let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode(&atomic), mode(&plain));
    }

    #[test]
    fn folders_move_into_place_whole_or_not_at_all() {
        let root = tempfile::tempdir().expect("tmp");
        let target = root.path().join("entry");
        std::fs::create_dir(&target).expect("mkdir");
        std::fs::write(target.join("stale"), b"old").expect("write");
        let t = temp_dir_for(&target).expect("temp dir");
        write_atomic(&t.path().join("new"), b"new").expect("write");
        persist_dir(t, &target).expect("persist");
        assert_eq!(names(&target), ["new"]);
        assert_eq!(names(root.path()), ["entry"]);
        // Dropped without persisting: nothing is left behind.
        let t = temp_dir_for(&target).expect("temp dir");
        write_atomic(&t.path().join("half"), b"x").expect("write");
        drop(t);
        assert_eq!(names(root.path()), ["entry"]);
        assert_eq!(names(&target), ["new"]);
    }
}
