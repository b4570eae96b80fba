//! Pixels → HU for one file: locate the pixel data in the file's bytes (sizes checked against
//! the bytes actually present), decode if encapsulated, and convert stored values to HU `i16`.

use std::path::Path;

use dicom_object::OpenFileOptions;
use dicom_pixeldata::PixelDecoder;
use ildtrack_volume::OUTSIDE_FOV_HU;

use crate::header::{FileHeader, PixelInfo, flat};
use crate::LoadError;
use crate::layout::WalkError;

/// HU below this are not physical (air is −1000): outside the reconstruction circle.
pub(crate) const OUTSIDE_BELOW_HU: f64 = -1500.0;
/// Largest matrix side we accept.
pub(crate) const MAX_MATRIX: u32 = 16384;

pub(crate) const TS_IMPLICIT_LE: &str = "1.2.840.10008.1.2";
pub(crate) const TS_EXPLICIT_LE: &str = "1.2.840.10008.1.2.1";
pub(crate) const TS_EXPLICIT_BE: &str = "1.2.840.10008.1.2.2";
pub(crate) const TS_DEFLATED: &str = "1.2.840.10008.1.2.1.99";

/// Whether pixel data in this transfer syntax is stored natively (not encapsulated).
pub(crate) fn is_native(ts: &str) -> bool {
    matches!(ts, TS_IMPLICIT_LE | TS_EXPLICIT_LE | TS_EXPLICIT_BE | TS_DEFLATED)
}

/// Counts gathered while converting, turned into warnings by the caller.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Stats {
    pub voxels: u64,
    pub padding: u64,
    pub below_fov: u64,
    pub saturated: u64,
    /// A JPEG 2000 codestream said signed where PixelRepresentation said unsigned.
    pub sign_fixed: bool,
}

impl Stats {
    pub fn add(&mut self, o: &Stats) {
        self.voxels += o.voxels;
        self.padding += o.padding;
        self.below_fov += o.below_fov;
        self.saturated += o.saturated;
        self.sign_fixed |= o.sign_fixed;
    }
}

/// Per-frame conversion parameters.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Convert {
    pub signed: bool,
    pub bits_stored: u16,
    pub shift: u16,
    pub slope: f64,
    pub intercept: f64,
    /// Inclusive range of stored values meaning "padding".
    pub padding: Option<(i64, i64)>,
}

impl Convert {
    pub fn new(p: &PixelInfo, slope: f64, intercept: f64) -> Self {
        let bits_stored = p.bits_stored.clamp(1, p.bits_allocated.max(1)).min(32);
        let shift = (p.high_bit + 1).saturating_sub(bits_stored).min(p.bits_allocated.saturating_sub(bits_stored));
        let signed = p.pixel_representation == 1;
        let fix = |v: i64| -> i64 {
            // A padding value written with the wrong signedness: reinterpret its low bits.
            if !signed && v < 0 { v & ((1i64 << bits_stored) - 1) } else { v }
        };
        let padding = p.padding.map(|a| {
            let a = fix(a);
            let b = p.padding_limit.map(fix).unwrap_or(a);
            (a.min(b), a.max(b))
        });
        Convert { signed, bits_stored, shift, slope, intercept, padding }
    }

    #[inline]
    fn stored(&self, raw: u32) -> i64 {
        let v = (raw >> self.shift) as u64;
        let mask = if self.bits_stored >= 32 { u64::from(u32::MAX) } else { (1u64 << self.bits_stored) - 1 };
        let v = v & mask;
        if self.signed && self.bits_stored < 64 && (v >> (self.bits_stored - 1)) & 1 == 1 {
            (v as i64) - (1i64 << self.bits_stored)
        } else {
            v as i64
        }
    }

    #[inline]
    fn hu(&self, v: i64, st: &mut Stats) -> i16 {
        if let Some((lo, hi)) = self.padding {
            if v >= lo && v <= hi {
                st.padding += 1;
                return OUTSIDE_FOV_HU;
            }
        }
        let h = (v as f64) * self.slope + self.intercept;
        if h < OUTSIDE_BELOW_HU {
            st.below_fov += 1;
            return OUTSIDE_FOV_HU;
        }
        let h = h.round();
        if h > f64::from(i16::MAX) {
            st.saturated += 1;
            i16::MAX
        } else {
            h as i16
        }
    }

    /// Convert `n` samples of `bits_allocated` bits from `src` (little or big endian).
    pub fn run(&self, src: &[u8], bits_allocated: u16, big_endian: bool, out: &mut [i16], st: &mut Stats) {
        st.voxels += out.len() as u64;
        match bits_allocated {
            8 => {
                for (o, &b) in out.iter_mut().zip(src) {
                    *o = self.hu(self.stored(u32::from(b)), st);
                }
            }
            16 => {
                let integral = self.slope == 1.0 && self.intercept.fract() == 0.0 && self.intercept.abs() < 1e6;
                let simple = self.shift == 0 && self.bits_stored == 16 && self.padding.is_none() && integral;
                if simple && !big_endian {
                    // The common case: 16-bit stored values, slope 1, integer intercept.
                    let ic = self.intercept as i32;
                    let lo = OUTSIDE_BELOW_HU as i32;
                    for (o, c) in out.iter_mut().zip(src.chunks_exact(2)) {
                        let raw = [c[0], c[1]];
                        let v = if self.signed { i32::from(i16::from_le_bytes(raw)) } else { i32::from(u16::from_le_bytes(raw)) };
                        let h = v + ic;
                        *o = if h < lo {
                            st.below_fov += 1;
                            OUTSIDE_FOV_HU
                        } else if h > i32::from(i16::MAX) {
                            st.saturated += 1;
                            i16::MAX
                        } else {
                            h as i16
                        };
                    }
                } else {
                    for (o, c) in out.iter_mut().zip(src.chunks_exact(2)) {
                        let raw = if big_endian { u16::from_be_bytes([c[0], c[1]]) } else { u16::from_le_bytes([c[0], c[1]]) };
                        *o = self.hu(self.stored(u32::from(raw)), st);
                    }
                }
            }
            _ => {
                for (o, c) in out.iter_mut().zip(src.chunks_exact(4)) {
                    let b = [c[0], c[1], c[2], c[3]];
                    let raw = if big_endian { u32::from_be_bytes(b) } else { u32::from_le_bytes(b) };
                    *o = self.hu(self.stored(raw), st);
                }
            }
        }
    }
}

/// Check the encapsulated pixel data items (offset table and fragments) starting at `p` fit in
/// the file, so the DICOM parser never allocates what a lying length claims. Returns the
/// fragments (offset table excluded).
pub(crate) fn check_fragments<'a>(path: &Path, bytes: &'a [u8], mut p: usize) -> Result<Vec<&'a [u8]>, LoadError> {
    let mut items = 0usize;
    let mut frags = Vec::new();
    loop {
        let Some(h) = bytes.get(p..p + 8) else {
            return Err(LoadError::Truncated {
                path: path.to_path_buf(),
                detail: format!("pixel data ends inside item {items} without a sequence delimiter"),
            });
        };
        let tag = [h[0], h[1], h[2], h[3]];
        let len = u32::from_le_bytes([h[4], h[5], h[6], h[7]]) as usize;
        match tag {
            [0xFE, 0xFF, 0xDD, 0xE0] => return Ok(frags),
            [0xFE, 0xFF, 0x00, 0xE0] => {
                let end = p + 8 + len;
                if len == 0xFFFF_FFFF || end > bytes.len() {
                    return Err(LoadError::Truncated {
                        path: path.to_path_buf(),
                        detail: format!(
                            "pixel data item {items} claims {len} bytes but only {} remain",
                            bytes.len().saturating_sub(p + 8)
                        ),
                    });
                }
                if items > 0 {
                    frags.push(&bytes[p + 8..end]);
                }
                items += 1;
                p = end;
            }
            _ => {
                return Err(LoadError::PixelData {
                    path: path.to_path_buf(),
                    reason: format!("unexpected tag {:02X}{:02X},{:02X}{:02X} in encapsulated pixel data", tag[1], tag[0], tag[3], tag[2]),
                });
            }
        }
    }
}

/// Signedness and precision of the first component of a JPEG 2000 codestream (SIZ marker).
pub(crate) fn j2k_siz(frag: &[u8]) -> Option<(bool, u16)> {
    let i = frag.windows(2).take(4096).position(|w| w == [0xFF, 0x51])?;
    let ssiz = *frag.get(i + 40)?;
    Some((ssiz & 0x80 != 0, u16::from(ssiz & 0x7F) + 1))
}

/// Decode the given frames of a file held in memory into `outs` (each `rows × cols`).
/// `jobs[i] = (frame index, slope, intercept)` for `outs[i]`.
pub(crate) fn decode_bytes(
    path: &Path,
    bytes: &[u8],
    header: &FileHeader,
    jobs: &[(u32, f64, f64)],
    outs: &mut [&mut [i16]],
) -> Result<Stats, LoadError> {
    let p = header.pixel.as_ref().ok_or_else(|| LoadError::BadHeader {
        path: path.to_path_buf(),
        reason: "no Rows/Columns: not an image".into(),
    })?;
    validate_pixel_info(path, p)?;
    let n_px = p.rows as usize * p.cols as usize;
    let fb = p.frame_bytes() as usize;
    let mut st = Stats::default();
    let ts = header.transfer_syntax.as_str();
    let walk_err = |e: WalkError| match e {
        WalkError::NeedMore => LoadError::Truncated { path: path.to_path_buf(), detail: "the file ends inside an element".into() },
        WalkError::Truncated(m) => LoadError::Truncated { path: path.to_path_buf(), detail: m },
        WalkError::Bad(m) => LoadError::InvalidDicom { path: path.to_path_buf(), reason: m },
    };
    let layout = crate::layout::walk(bytes, bytes.len()).map_err(walk_err)?;
    if layout.walked {
        let pixel = layout.pixel.ok_or_else(|| LoadError::PixelData {
            path: path.to_path_buf(),
            reason: "no Pixel Data element".into(),
        })?;
        if is_native(ts) {
            let needed = fb * p.n_frames as usize;
            let len = pixel.len.ok_or_else(|| LoadError::PixelData {
                path: path.to_path_buf(),
                reason: "native Pixel Data with undefined length".into(),
            })?;
            if len < needed {
                return Err(LoadError::Truncated {
                    path: path.to_path_buf(),
                    detail: format!(
                        "pixel data has {len} bytes, {}×{}×{} frame(s)×{} bits need {needed}",
                        p.rows, p.cols, p.n_frames, p.bits_allocated
                    ),
                });
            }
            let start = pixel.value_start;
            for ((frame, slope, intercept), out) in jobs.iter().zip(outs.iter_mut()) {
                let off = start + fb * (*frame as usize);
                let src = bytes.get(off..off + fb).ok_or_else(|| LoadError::Truncated {
                    path: path.to_path_buf(),
                    detail: format!("frame {frame} lies beyond the pixel data"),
                })?;
                check_out(path, out.len(), n_px)?;
                Convert::new(p, *slope, *intercept).run(src, p.bits_allocated, ts == TS_EXPLICIT_BE, out, &mut st);
            }
            return Ok(st);
        }
    }
    let mut pi = p.clone();
    if layout.walked {
        let pixel = layout.pixel.ok_or_else(|| LoadError::PixelData { path: path.to_path_buf(), reason: "no Pixel Data element".into() })?;
        if pixel.len.is_some() {
            return Err(LoadError::PixelData {
                path: path.to_path_buf(),
                reason: format!("transfer syntax {ts} needs encapsulated pixel data, found a defined length"),
            });
        }
        let frags = check_fragments(path, bytes, pixel.value_start)?;
        if frags.iter().all(|f| f.is_empty()) {
            return Err(LoadError::PixelData { path: path.to_path_buf(), reason: "encapsulated pixel data has no fragments".into() });
        }
        if ts.starts_with("1.2.840.10008.1.2.4.9") || ts.starts_with("1.2.840.10008.1.2.4.20") {
            if let Some((cs_signed, prec)) = frags.iter().find(|f| !f.is_empty()).and_then(|f| j2k_siz(f)) {
                let hdr_signed = p.pixel_representation == 1;
                if cs_signed && !hdr_signed {
                    // The codestream holds signed samples: read them as such (Toshiba writes this).
                    pi.pixel_representation = 1;
                    pi.bits_stored = prec.min(pi.bits_allocated);
                    pi.high_bit = pi.bits_stored - 1;
                    st.sign_fixed = true;
                } else if !cs_signed && hdr_signed && prec < p.bits_allocated {
                    return Err(LoadError::PixelData {
                        path: path.to_path_buf(),
                        reason: format!(
                            "PixelRepresentation says signed but the JPEG 2000 codestream is unsigned {prec}-bit: the sign of the stored values is ambiguous"
                        ),
                    });
                }
            }
        }
    }
    let stream = layout.stream(bytes, bytes.len());
    let mut obj = OpenFileOptions::new()
        .read_preamble(dicom_object::file::ReadPreamble::Never)
        .from_reader(&stream[..])
        .map_err(|e| LoadError::InvalidDicom { path: path.to_path_buf(), reason: flat(&e) })?;
    regroup_fragments(&mut obj, p.n_frames);
    let mut whole: Option<Vec<u8>> = None;
    for ((frame, slope, intercept), out) in jobs.iter().zip(outs.iter_mut()) {
        check_out(path, out.len(), n_px)?;
        let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            obj.decode_pixel_data_frame(*frame).map(|d| d.data().to_vec())
        }));
        let data: Vec<u8> = match decoded {
            Ok(Ok(d)) => d,
            other => {
                // Frames without an offset table: decode everything once and split.
                if whole.is_none() && p.n_frames > 1 {
                    let all = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| obj.decode_pixel_data().map(|d| d.data().to_vec())));
                    if let Ok(Ok(all)) = all {
                        whole = Some(all);
                    }
                }
                let per = whole.as_ref().map(|w| w.len() / p.n_frames as usize).unwrap_or(0);
                match whole.as_ref().and_then(|w| w.get(per * *frame as usize..per * (*frame as usize + 1))) {
                    Some(f) if per > 0 => f.to_vec(),
                    _ => {
                        let reason = match other {
                            Ok(Err(e)) => format!("frame {frame}: {}", flat(&e)),
                            Err(_) => format!("frame {frame}: the {} decoder crashed on this data", crate::scan::ts_name(ts)),
                            Ok(Ok(_)) => format!("frame {frame}: decoding failed"),
                        };
                        return Err(LoadError::PixelData { path: path.to_path_buf(), reason });
                    }
                }
            }
        };
        let bits = if data.len() >= n_px * 2 && pi.bits_allocated >= 16 {
            if data.len() >= n_px * 4 && pi.bits_allocated == 32 { 32 } else { 16 }
        } else if data.len() >= n_px {
            8
        } else {
            return Err(LoadError::PixelData {
                path: path.to_path_buf(),
                reason: format!("frame {frame} decoded to {} bytes, {}×{} pixels need {}", data.len(), p.rows, p.cols, fb),
            });
        };
        let mut fpi = pi.clone();
        if bits != fpi.bits_allocated {
            fpi.bits_allocated = bits;
            fpi.bits_stored = fpi.bits_stored.min(bits);
            fpi.high_bit = fpi.high_bit.min(bits - 1);
        }
        Convert::new(&fpi, *slope, *intercept).run(&data, bits, false, out, &mut st);
    }
    Ok(st)
}

/// Multi-frame encapsulated data without an offset table and with more fragments than frames:
/// group fragments into frames at each image start marker (JPEG SOI, JPEG 2000 SOC) so that
/// frame-by-frame decoding works.
fn regroup_fragments(obj: &mut dicom_object::DefaultDicomObject, n_frames: u32) {
    use dicom_core::value::{PixelFragmentSequence, Value};
    use dicom_core::{DataElement, VR};
    let Some(elem) = obj.get(dicom_dictionary_std::tags::PIXEL_DATA) else { return };
    let Value::PixelSequence(seq) = elem.value() else { return };
    let frags = seq.fragments();
    if n_frames == 1 && frags.len() > 1 {
        // One frame in several fragments: its codestream is their concatenation.
        let one: Vec<u8> = frags.iter().flat_map(|f| f.iter().copied()).collect();
        let seq = PixelFragmentSequence::new(Vec::<u32>::new(), vec![one]);
        obj.put(DataElement::new(dicom_dictionary_std::tags::PIXEL_DATA, VR::OB, seq));
        return;
    }
    if n_frames < 2 {
        return;
    }
    if frags.len() as u32 == n_frames || !seq.offset_table().is_empty() {
        return;
    }
    let starts = |f: &[u8]| f.starts_with(&[0xFF, 0xD8]) || f.starts_with(&[0xFF, 0x4F, 0xFF, 0x51]);
    let mut frames: Vec<Vec<u8>> = Vec::new();
    for f in frags {
        if starts(f) || frames.is_empty() {
            frames.push(f.to_vec());
        } else if let Some(last) = frames.last_mut() {
            last.extend_from_slice(f);
        }
    }
    if frames.len() as u32 != n_frames {
        return;
    }
    let seq = PixelFragmentSequence::new(Vec::<u32>::new(), frames);
    obj.put(DataElement::new(dicom_dictionary_std::tags::PIXEL_DATA, VR::OB, seq));
}

fn check_out(path: &Path, got: usize, want: usize) -> Result<(), LoadError> {
    if got == want {
        Ok(())
    } else {
        Err(LoadError::Internal { path: path.to_path_buf(), detail: format!("output slice has {got} voxels, expected {want}") })
    }
}

/// Refuse pixel layouts we cannot turn into HU, before allocating anything.
pub(crate) fn validate_pixel_info(path: &Path, p: &PixelInfo) -> Result<(), LoadError> {
    let bad = |reason: String| Err(LoadError::BadHeader { path: path.to_path_buf(), reason });
    if p.rows == 0 || p.cols == 0 {
        return bad(format!("matrix {}×{} is empty", p.rows, p.cols));
    }
    if p.rows > MAX_MATRIX || p.cols > MAX_MATRIX {
        return Err(LoadError::TooLarge {
            path: path.to_path_buf(),
            detail: format!("matrix {}×{} exceeds {MAX_MATRIX}×{MAX_MATRIX}", p.rows, p.cols),
        });
    }
    if !matches!(p.bits_allocated, 8 | 16 | 32) {
        return bad(format!("BitsAllocated {} is not 8, 16 or 32", p.bits_allocated));
    }
    if p.bits_stored == 0 || p.bits_stored > p.bits_allocated || p.high_bit >= p.bits_allocated {
        return bad(format!(
            "BitsStored {} / HighBit {} do not fit BitsAllocated {}",
            p.bits_stored, p.high_bit, p.bits_allocated
        ));
    }
    if p.samples_per_pixel != 1 {
        return bad(format!("{} samples per pixel ({}): colour, not a CT image", p.samples_per_pixel, p.photometric));
    }
    if p.pixel_representation > 1 {
        return bad(format!("PixelRepresentation {} is not 0 or 1", p.pixel_representation));
    }
    Ok(())
}

/// Read a file and decode its frames (see [`decode_bytes`]).
pub(crate) fn decode_file(
    header: &FileHeader,
    jobs: &[(u32, f64, f64)],
    outs: &mut [&mut [i16]],
) -> Result<Stats, LoadError> {
    let path = header.path.as_path();
    let bytes = std::fs::read(path).map_err(|e| LoadError::Io { path: path.to_path_buf(), source: e })?;
    if bytes.is_empty() {
        return Err(LoadError::EmptyFile { path: path.to_path_buf() });
    }
    decode_bytes(path, &bytes, header, jobs, outs)
}
