//! Shared set-up for the criterion benches in `benches/benches/`.
//!
//! Sizes come from `ILDTRACK_BENCH_SIZE` (`512x512x300` style, columns × rows × slices; default
//! 512x512x300). Results and the machine that produced them go to `docs/BENCHMARKS.md`.

use std::path::{Path, PathBuf};

/// `(z, y, x)` from `ILDTRACK_BENCH_SIZE` or the default 512×512×300.
pub fn bench_dims() -> [usize; 3] {
    let s = std::env::var("ILDTRACK_BENCH_SIZE").unwrap_or_else(|_| "512x512x300".into());
    let v: Vec<usize> = s.split('x').filter_map(|p| p.trim().parse().ok()).collect();
    if v.len() == 3 && v.iter().all(|&n| n >= 8) {
        [v[2], v[1], v[0]]
    } else {
        [300, 512, 512]
    }
}

/// The `ild` phantom on a `dims_zyx` grid with an adult chest's field of view (400 mm in-plane,
/// 300 mm craniocaudal), the same volume `ildtrack bench --size` uses.
pub fn phantom(dims_zyx: [usize; 3]) -> ildtrack_phantom::Phantom {
    let spacing_mm = [
        300.0 / dims_zyx[0] as f64,
        400.0 / dims_zyx[1] as f64,
        400.0 / dims_zyx[2] as f64,
    ];
    ildtrack_phantom::generate(
        &ildtrack_phantom::PhantomSpec::ild().with_grid(dims_zyx, spacing_mm),
    )
}

/// Writes the phantom as an uncompressed DICOM series into a new temporary folder.
pub fn phantom_series(ph: &ildtrack_phantom::Phantom) -> (tempfile::TempDir, Vec<PathBuf>) {
    let dir = tempfile::tempdir().expect("temporary folder for the bench series");
    let files = ildtrack_phantom::write_dicom_series(
        ph,
        dir.path(),
        &ildtrack_phantom::WriteOptions::default(),
    )
    .expect("writing the bench series");
    (dir, files)
}

/// Total bytes of the files.
pub fn total_bytes(files: &[PathBuf]) -> u64 {
    files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum()
}

/// The floor: `cat` every file to /dev/null (same bytes, same page cache).
pub fn cat_files(dir: &Path) {
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg("find . -type f -print0 | xargs -0 cat > /dev/null")
        .current_dir(dir)
        .status()
        .expect("running cat");
    assert!(status.success());
}
