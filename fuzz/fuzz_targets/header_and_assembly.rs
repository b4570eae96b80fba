//! Fuzz header parsing and series assembly: arbitrary bytes as a DICOM file → byte-level
//! layout walk → header → a small synthetic series (shifted copies, a duplicate) → series
//! choice → assembly plan → pixel decode of frame 0. Must never panic, hang or allocate more
//! than the input justifies.
//!
//! Run (nightly): `cd fuzz && cargo +nightly fuzz run header_and_assembly -- -rss_limit_mb=1024`
//! Seed corpus: `mkdir -p corpus/header_and_assembly && cp ../../shared/data/malformed/* ../../shared/data/transfer-syntaxes/*.dcm corpus/header_and_assembly/`
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: {
        // ildtrack-dicom contains decoder panics (dicom-rs 0.10.1's RLE decoder indexes past
        // the end of short segments) with catch_unwind and turns them into errors. libfuzzer-sys
        // aborts on any panic through its hook, even a caught one; a quiet hook lets contained
        // panics pass while an uncaught one still aborts (libfuzzer-sys checks the closure).
        std::panic::set_hook(Box::new(|_| {}));
    },
    |data: &[u8]| {
    if let Some(decoded) = ildtrack_dicom::fuzzing::header_and_assembly(data) {
        // Like dicom-rs's fuzz targets: the decoded length is what the header promised.
        assert_eq!(decoded.len(), decoded.expected_len);
    }
    }
);
