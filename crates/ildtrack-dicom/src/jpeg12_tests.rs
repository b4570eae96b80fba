//! The 12-bit JPEG decoder (`ildtrack-jpeg12`, registered with dicom-rs) seen through the
//! loader: real 12-bit files against their uncompressed original, the retired syntaxes named as
//! themselves, and the decoder's 8-bit path against jpeg-decoder.

use std::path::{Path, PathBuf};

#[allow(dead_code)]
mod fixtures {
    include!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../ildtrack-jpeg12/testsupport/fixtures.rs"
    ));
}
use fixtures::{FILES, codestream};

fn data_dir() -> Option<PathBuf> {
    fixtures::shared_data(env!("CARGO_MANIFEST_DIR"))
}

fn load_hu(path: &Path) -> Vec<i16> {
    let sc = crate::scan(path).expect("scan");
    let uid = sc.series.first().map(|e| e.uid.clone());
    let s = crate::load(path, &crate::LoadOptions { series_uid: uid }).expect("load");
    s.volume.data.iter().copied().collect()
}

#[test]
fn real_12_bit_files_decode_close_to_the_uncompressed_reference() {
    let Some(d) = data_dir() else { return };
    let ts = d.join("transfer-syntaxes");
    let reference = load_hu(&ts.join("ctimage/CTImage.dcm"));
    for name in &FILES[..3] {
        let got = load_hu(&ts.join(name));
        assert_eq!(got.len(), reference.len(), "{name}");
        let diffs: Vec<i32> = got
            .iter()
            .zip(&reference)
            .map(|(a, b)| (i32::from(*a) - i32::from(*b)).abs())
            .collect();
        let max = diffs.iter().copied().max().unwrap_or(0);
        let mean = diffs.iter().map(|&d| f64::from(d)).sum::<f64>() / diffs.len() as f64;
        eprintln!("{name}: max |diff| {max} HU, mean |diff| {mean:.2} HU");
        // Typical of a correct decoder on this file (quality ~ 1:6): a few HU on average.
        assert!(max <= 100 && mean < 8.0, "{name}: max {max} mean {mean}");
    }
    // Fragmented, no offset table, 2 frames of a perfusion map (no uncompressed reference):
    // both frames decode to the same plausible range.
    let got = load_hu(&ts.join(FILES[3]));
    assert_eq!(got.len(), 2 * 512 * 512);
    for f in got.chunks(512 * 512) {
        let mut v = f.to_vec();
        v.sort_unstable();
        let (p1, p99) = (v[v.len() / 100], v[v.len() * 99 / 100]);
        eprintln!("{}: HU p1 {p1} p99 {p99}", FILES[3]);
        assert!(
            (-1500..=0).contains(&p1) && (100..=5000).contains(&p99),
            "{p1} {p99}"
        );
    }
}

#[test]
fn retired_syntaxes_are_reported_as_themselves() {
    let Some(d) = data_dir() else { return };
    for (name, uid) in [
        (FILES[1], "1.2.840.10008.1.2.4.53"),
        (FILES[2], "1.2.840.10008.1.2.4.55"),
        (FILES[0], "1.2.840.10008.1.2.4.51"),
    ] {
        let sc = crate::scan(&d.join("transfer-syntaxes").join(name)).expect("scan");
        let e = sc.series.first().expect("one series");
        assert_eq!(e.transfer_syntax, uid, "{name}");
    }
}

#[test]
fn eight_bit_baseline_matches_jpeg_decoder() {
    let Some(d) = data_dir() else { return };
    let path = d.join("transfer-syntaxes/ctimage/CTImage.dcm_JPEGProcess1TransferSyntax_1.2.840.10008.1.2.4.50.dcm");
    let cs = codestream(&path);
    let mine = ildtrack_jpeg12::decode(&cs, 512, 512).expect("decode 8-bit");
    assert_eq!(mine.precision, 8);
    use dicom_pixeldata::PixelDecoder;
    // Through the loader's repaired meta group (this file's AE title is over-long).
    let bytes = std::fs::read(&path).expect("read");
    let layout = crate::layout::walk(&bytes, bytes.len())
        .map_err(|_| "layout walk failed")
        .expect("layout");
    let stream = layout.stream(&bytes, bytes.len());
    let obj = dicom_object::OpenFileOptions::new()
        .read_preamble(dicom_object::file::ReadPreamble::Never)
        .from_reader(&stream[..])
        .expect("open");
    let theirs = obj
        .decode_pixel_data()
        .expect("jpeg-decoder")
        .data()
        .to_vec();
    assert_eq!(theirs.len(), mine.samples.len());
    let max = mine
        .samples
        .iter()
        .zip(&theirs)
        .map(|(a, b)| (i32::from(*a) - i32::from(*b)).abs())
        .max()
        .unwrap_or(0);
    eprintln!("8-bit baseline: max |diff| vs jpeg-decoder {max}");
    assert!(max <= 1, "max diff {max}");
}
