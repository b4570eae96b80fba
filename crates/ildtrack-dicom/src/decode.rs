//! Pixels → HU for one file: locate the pixel data in the file's bytes (sizes checked against
//! the bytes actually present), decode if encapsulated, and convert stored values to HU `i16`.

use std::path::Path;

use dicom_object::OpenFileOptions;
use dicom_pixeldata::PixelDecoder;
use ildtrack_volume::OUTSIDE_FOV_HU;

use crate::header::{FileHeader, PixelInfo, flat};
use crate::LoadError;

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
}

impl Stats {
    pub fn add(&mut self, o: &Stats) {
        self.voxels += o.voxels;
        self.padding += o.padding;
        self.below_fov += o.below_fov;
        self.saturated += o.saturated;
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

/// Find the root Pixel Data element of a native file in its bytes: returns (value start,
/// value length). The element's length must fit in the bytes present and hold `needed` bytes.
pub(crate) fn locate_native_pixels(bytes: &[u8], ts: &str, needed: usize) -> Option<(usize, usize)> {
    let be = ts == TS_EXPLICIT_BE;
    let explicit = ts != TS_IMPLICIT_LE;
    let tag: [u8; 4] = if be { [0x7F, 0xE0, 0x00, 0x10] } else { [0xE0, 0x7F, 0x10, 0x00] };
    let hdr = if explicit { 12 } else { 8 };
    let last = bytes.len().checked_sub(needed)?.checked_sub(hdr)?;
    let mut p = last;
    loop {
        if bytes[p..p + 4] == tag {
            let len_at = if explicit { p + 8 } else { p + 4 };
            let vr_ok = !explicit || {
                let vr = &bytes[p + 4..p + 6];
                (vr == b"OW" || vr == b"OB" || vr == b"UN" || vr == b"OD" || vr == b"OF") && bytes[p + 6] == 0 && bytes[p + 7] == 0
            };
            if vr_ok {
                let l = [bytes[len_at], bytes[len_at + 1], bytes[len_at + 2], bytes[len_at + 3]];
                let len = if be { u32::from_be_bytes(l) } else { u32::from_le_bytes(l) } as usize;
                let start = p + hdr;
                if len != 0xFFFF_FFFF && len >= needed && start.checked_add(len).is_some_and(|e| e <= bytes.len()) {
                    return Some((start, len));
                }
            }
        }
        if p <= 128 {
            return None;
        }
        p -= 1;
    }
}

/// Check the encapsulated pixel data items (offset table and fragments) fit in the file, so the
/// DICOM parser never allocates what a lying length claims. Returns the number of fragments.
pub(crate) fn check_fragments(path: &Path, bytes: &[u8]) -> Result<usize, LoadError> {
    let pat: [u8; 12] = [0xE0, 0x7F, 0x10, 0x00, b'O', b'B', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF];
    let start = bytes
        .windows(pat.len())
        .rposition(|w| w == pat || (w[..4] == pat[..4] && w[4..6] == *b"OW" && w[6..] == pat[6..]))
        .ok_or_else(|| LoadError::PixelData {
            path: path.to_path_buf(),
            reason: "encapsulated pixel data element not found".into(),
        })?;
    let mut p = start + pat.len();
    let mut items = 0usize;
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
            [0xFE, 0xFF, 0xDD, 0xE0] => return Ok(items.saturating_sub(1)),
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
    if is_native(ts) && ts != TS_DEFLATED {
        let needed = fb * p.n_frames as usize;
        let (start, _len) = locate_native_pixels(bytes, ts, needed).ok_or_else(|| LoadError::Truncated {
            path: path.to_path_buf(),
            detail: format!(
                "pixel data shorter than the header says: {}×{}×{} frames×{} bits = {} bytes needed, file has {} bytes",
                p.rows, p.cols, p.n_frames, p.bits_allocated, needed, bytes.len()
            ),
        })?;
        for ((frame, slope, intercept), out) in jobs.iter().zip(outs.iter_mut()) {
            let off = start + fb * (*frame as usize);
            let src = &bytes[off..off + fb];
            check_out(path, out.len(), n_px)?;
            Convert::new(p, *slope, *intercept).run(src, p.bits_allocated, ts == TS_EXPLICIT_BE, out, &mut st);
        }
        return Ok(st);
    }
    if ts != TS_DEFLATED {
        check_fragments(path, bytes)?;
    }
    let obj = OpenFileOptions::new()
        .from_reader(bytes)
        .map_err(|e| LoadError::InvalidDicom { path: path.to_path_buf(), reason: flat(&e) })?;
    for ((frame, slope, intercept), out) in jobs.iter().zip(outs.iter_mut()) {
        check_out(path, out.len(), n_px)?;
        let dec = obj.decode_pixel_data_frame(*frame).map_err(|e| LoadError::PixelData {
            path: path.to_path_buf(),
            reason: format!("frame {frame}: {}", flat(&e)),
        })?;
        let data = dec.data();
        let bits = if data.len() >= n_px * 2 && p.bits_allocated >= 16 {
            if data.len() >= n_px * 4 && p.bits_allocated == 32 { 32 } else { 16 }
        } else if data.len() >= n_px {
            8
        } else {
            return Err(LoadError::PixelData {
                path: path.to_path_buf(),
                reason: format!("frame {frame} decoded to {} bytes, {}×{} pixels need {}", data.len(), p.rows, p.cols, fb),
            });
        };
        let mut pi = p.clone();
        if bits != p.bits_allocated {
            pi.bits_allocated = bits;
            pi.bits_stored = pi.bits_stored.min(bits);
            pi.high_bit = pi.high_bit.min(bits - 1);
        }
        Convert::new(&pi, *slope, *intercept).run(data, bits, false, out, &mut st);
    }
    Ok(st)
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
