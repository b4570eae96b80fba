// Test fixtures shared by this crate's tests and ildtrack-dicom's 12-bit JPEG tests (each
// includes this file into a `fixtures` module): the real 12-bit JPEG files of
// `../shared/data/transfer-syntaxes`.

use std::path::{Path, PathBuf};

/// The 12-bit lossy JPEG files (…4.51, …4.53, …4.55 and a fragmented multi-frame …4.51),
/// relative to `transfer-syntaxes`.
pub const FILES: [&str; 4] = [
    "ctimage/CTImage.dcm_JPEGProcess2_4TransferSyntax_1.2.840.10008.1.2.4.51.dcm",
    "ctimage/CTImage.dcm_JPEGProcess6_8TransferSyntax_1.2.840.10008.1.2.4.53.dcm",
    "ctimage/CTImage.dcm_JPEGProcess10_12TransferSyntax_1.2.840.10008.1.2.4.55.dcm",
    "CT0012.fragmented_no_bot_jpeg_baseline.51.dcm",
];

/// `../shared/data` seen from a crate under `crates/`, or `None` (with a message) when absent.
pub fn shared_data(manifest_dir: &str) -> Option<PathBuf> {
    let p = Path::new(manifest_dir).join("../../../shared/data");
    if p.is_dir() {
        Some(p)
    } else {
        // Under CI a missing folder is a broken checkout: fail rather than skip (the same rule
        // as `ildtrack_dicom::shared_data::for_test`, which this crate cannot depend on).
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but ../shared/data (the real CT data) is missing next to the checkout"
        );
        eprintln!("skipped: ../shared/data not found");
        None
    }
}

/// The codestream of a single-fragment file: from SOI to the last EOI.
pub fn codestream(path: &Path) -> Vec<u8> {
    let b = std::fs::read(path).expect("read test file");
    let s = b
        .windows(3)
        .position(|w| w == [0xFF, 0xD8, 0xFF])
        .expect("SOI");
    let e = b.windows(2).rposition(|w| w == [0xFF, 0xD9]).expect("EOI");
    b[s..e + 2].to_vec()
}
