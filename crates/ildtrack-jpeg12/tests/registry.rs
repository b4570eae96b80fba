//! The codec as dicom-rs sees it: the registry's JPEG Extended entry is this crate's, and
//! dicom-pixeldata's ordinary decode path gives the samples of this crate's decoder for real
//! 12-bit files, close to the uncompressed original.

use std::path::{Path, PathBuf};

use dicom_dictionary_std::uids;
use dicom_pixeldata::PixelDecoder;

#[allow(dead_code)]
mod fixtures {
    include!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testsupport/fixtures.rs"
    ));
}
use fixtures::codestream;

fn data_dir() -> Option<PathBuf> {
    fixtures::shared_data(env!("CARGO_MANIFEST_DIR")).map(|d| d.join("transfer-syntaxes"))
}

/// The file's data set under a freshly built meta group naming `ts`: these test files' own meta
/// groups carry an over-long AE title that dicom-rs refuses (the loader repairs it; here it is
/// simply replaced).
fn open(path: &Path, ts: &str) -> dicom_object::DefaultDicomObject {
    use dicom_encoding::TransferSyntaxIndex;
    let b = std::fs::read(path).expect("read test file");
    assert_eq!(&b[128..132], b"DICM");
    let group_len = u32::from_le_bytes([b[140], b[141], b[142], b[143]]) as usize;
    let syntax = dicom_transfer_syntax_registry::TransferSyntaxRegistry
        .get(ts)
        .expect("registered syntax");
    let obj = dicom_object::InMemDicomObject::read_dataset_with_ts(&b[144 + group_len..], syntax)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    obj.with_meta(dicom_object::meta::FileMetaTableBuilder::new().transfer_syntax(ts))
        .expect("meta group")
}

/// HU of 16-bit little-endian samples under the object's representation and rescale.
fn hu(obj: &dicom_object::DefaultDicomObject, b: &[u8]) -> Vec<i32> {
    use dicom_dictionary_std::tags;
    let num = |t, d: f64| {
        obj.element(t)
            .ok()
            .and_then(|e| e.to_float64().ok())
            .unwrap_or(d)
    };
    let signed = num(tags::PIXEL_REPRESENTATION, 0.0) == 1.0;
    let (slope, intercept) = (
        num(tags::RESCALE_SLOPE, 1.0),
        num(tags::RESCALE_INTERCEPT, 0.0),
    );
    b.chunks_exact(2)
        .map(|c| {
            let v = if signed {
                f64::from(i16::from_le_bytes([c[0], c[1]]))
            } else {
                f64::from(u16::from_le_bytes([c[0], c[1]]))
            };
            (v * slope + intercept).round() as i32
        })
        .collect()
}

#[test]
fn the_registry_holds_this_crates_jpeg_extended() {
    assert!(ildtrack_jpeg12::is_registered());
    assert!(ildtrack_jpeg12::extended_reader().is_some());
}

#[test]
fn decode_pixel_data_reads_12_bit_jpeg_extended_with_this_decoder() {
    let Some(d) = data_dir() else { return };
    let path =
        d.join("ctimage/CTImage.dcm_JPEGProcess2_4TransferSyntax_1.2.840.10008.1.2.4.51.dcm");
    let obj = open(&path, uids::JPEG_EXTENDED12_BIT);
    let whole = obj.decode_pixel_data().expect("decode_pixel_data");
    let frame = obj
        .decode_pixel_data_frame(0)
        .expect("decode_pixel_data_frame");
    let direct = ildtrack_jpeg12::decode(&codestream(&path), 512, 512).expect("direct decode");
    assert_eq!(direct.precision, 12);
    let direct: Vec<u8> = direct
        .samples
        .iter()
        .flat_map(|s| s.to_le_bytes())
        .collect();
    assert_eq!(whole.data(), &direct[..]);
    assert_eq!(frame.data(), &direct[..]);

    // Against the uncompressed original, in HU (quality ~ 1:6: a few HU on average).
    let reference = open(
        &d.join("ctimage/CTImage.dcm"),
        uids::IMPLICIT_VR_LITTLE_ENDIAN,
    );
    let want = hu(
        &reference,
        reference.decode_pixel_data().expect("native").data(),
    );
    let got = hu(&obj, frame.data());
    assert_eq!(got.len(), want.len());
    let diffs: Vec<i32> = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).collect();
    let max = diffs.iter().copied().max().unwrap_or(0);
    let mean = diffs.iter().map(|&v| f64::from(v)).sum::<f64>() / diffs.len() as f64;
    eprintln!("…4.51 via decode_pixel_data: max |diff| {max}, mean {mean:.2}");
    assert!(max <= 100 && mean < 8.0, "max {max} mean {mean}");
}

#[test]
fn eight_bit_jpeg_extended_stays_with_dicom_rs() {
    // The 8-bit baseline stream decoded by our reader's fallback equals jpeg-decoder's result
    // through the baseline entry (same bytes, no 12-bit path taken).
    let Some(d) = data_dir() else { return };
    let path = d.join("ctimage/CTImage.dcm_JPEGProcess1TransferSyntax_1.2.840.10008.1.2.4.50.dcm");
    let obj = open(&path, uids::JPEG_BASELINE8_BIT);
    let baseline = obj.decode_pixel_data_frame(0).expect("baseline decode");
    let reader = ildtrack_jpeg12::extended_reader().expect("reader");
    let mut ours = Vec::new();
    reader
        .decode_frame(&obj, 0, &mut ours)
        .expect("extended reader");
    assert_eq!(baseline.data(), &ours[..]);
}
