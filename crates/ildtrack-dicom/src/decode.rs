//! Pixels → HU for one file: locate the pixel data in the file's bytes (sizes checked against
//! the bytes actually present), decode if encapsulated, and convert stored values to HU `i16`.

use std::path::Path;

use dicom_object::OpenFileOptions;
use dicom_pixeldata::PixelDecoder;
use ildtrack_volume::OUTSIDE_FOV_HU;

use crate::LoadError;
use crate::header::{FileHeader, PixelInfo, flat};
use crate::layout::WalkError;
use crate::ts::{TS_EXPLICIT_BE, is_jpeg2000, is_native};
use dicom_dictionary_std::uids;

/// HU below this are not physical (air is −1000): outside the reconstruction circle.
pub(crate) const OUTSIDE_BELOW_HU: f64 = -1500.0;
/// Largest matrix side we accept.
pub(crate) const MAX_MATRIX: u32 = 16384;

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

/// How many values equal `x` (16-bit lane counters, so it vectorises well).
fn count_eq(v: &[i16], x: i16) -> u64 {
    v.chunks(65_535)
        .map(|c| u64::from(c.iter().fold(0u16, |a, &o| a + u16::from(o == x))))
        .sum()
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
        let shift = (p.high_bit + 1)
            .saturating_sub(bits_stored)
            .min(p.bits_allocated.saturating_sub(bits_stored));
        let signed = p.pixel_representation == 1;
        let fix = |v: i64| -> i64 {
            // A padding value written with the wrong signedness: reinterpret its low bits.
            if !signed && v < 0 {
                v & ((1i64 << bits_stored) - 1)
            } else {
                v
            }
        };
        let padding = p.padding.map(|a| {
            let a = fix(a);
            let b = p.padding_limit.map(fix).unwrap_or(a);
            (a.min(b), a.max(b))
        });
        Convert {
            signed,
            bits_stored,
            shift,
            slope,
            intercept,
            padding,
        }
    }

    /// HU for every 16-bit raw value (cached per thread for the last conversion seen).
    fn lut16(&self) -> std::rc::Rc<Vec<i16>> {
        use std::cell::RefCell;
        type Key = (u64, u64, bool, u16, u16, Option<(i64, i64)>);
        thread_local! {
            static CACHE: RefCell<Option<(Key, std::rc::Rc<Vec<i16>>)>> = const { RefCell::new(None) };
        }
        let key: Key = (
            self.slope.to_bits(),
            self.intercept.to_bits(),
            self.signed,
            self.bits_stored,
            self.shift,
            self.padding,
        );
        CACHE.with(|c| {
            if let Some((k, t)) = c.borrow().as_ref()
                && *k == key
            {
                return t.clone();
            }
            let mut st = Stats::default();
            let t: std::rc::Rc<Vec<i16>> = std::rc::Rc::new(
                (0..=u16::MAX)
                    .map(|raw| self.hu(self.stored(u32::from(raw)), &mut st))
                    .collect(),
            );
            *c.borrow_mut() = Some((key, t.clone()));
            t
        })
    }

    #[inline]
    fn stored(&self, raw: u32) -> i64 {
        let v = (raw >> self.shift) as u64;
        let mask = if self.bits_stored >= 32 {
            u64::from(u32::MAX)
        } else {
            (1u64 << self.bits_stored) - 1
        };
        let v = v & mask;
        if self.signed && self.bits_stored < 64 && (v >> (self.bits_stored - 1)) & 1 == 1 {
            (v as i64) - (1i64 << self.bits_stored)
        } else {
            v as i64
        }
    }

    #[inline]
    fn hu(&self, v: i64, st: &mut Stats) -> i16 {
        if let Some((lo, hi)) = self.padding
            && v >= lo
            && v <= hi
        {
            st.padding += 1;
            return OUTSIDE_FOV_HU;
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
    pub fn run(
        &self,
        src: &[u8],
        bits_allocated: u16,
        big_endian: bool,
        out: &mut [i16],
        st: &mut Stats,
    ) {
        st.voxels += out.len() as u64;
        match bits_allocated {
            8 => {
                for (o, &b) in out.iter_mut().zip(src) {
                    *o = self.hu(self.stored(u32::from(b)), st);
                }
            }
            16 => {
                let integral = self.slope == 1.0
                    && self.intercept.fract() == 0.0
                    && self.intercept.abs() < 1e6;
                let read = |c: &[u8]| {
                    if big_endian {
                        u16::from_be_bytes([c[0], c[1]])
                    } else {
                        u16::from_le_bytes([c[0], c[1]])
                    }
                };
                let ic16 = i16::try_from(self.intercept as i64)
                    .ok()
                    .filter(|_| integral);
                let pad16 = match self.padding {
                    None => Some((1i16, 0i16)),
                    Some((a, b)) => i16::try_from(a).ok().zip(i16::try_from(b).ok()),
                };
                let fits16 = self.shift == 0 && (self.signed || self.bits_stored <= 15);
                if let (Some(ic), Some((plo, phi)), true, false) = (ic16, pad16, fits16, big_endian)
                {
                    // The common CT case in 16-bit lanes: stored value fits i16, slope 1,
                    // integer intercept; saturating add clips at +32767.
                    let k = 16 - self.bits_stored as u32;
                    let mask = if self.bits_stored >= 16 {
                        u16::MAX
                    } else {
                        (1u16 << self.bits_stored) - 1
                    };
                    let signed = self.signed;
                    let lo = OUTSIDE_BELOW_HU as i16;
                    for (o, c) in out.iter_mut().zip(src.chunks_exact(2)) {
                        let raw = u16::from_le_bytes([c[0], c[1]]);
                        let v = if signed {
                            ((raw << k) as i16) >> k
                        } else {
                            (raw & mask) as i16
                        };
                        let h = v.saturating_add(ic);
                        *o = if (v >= plo && v <= phi) || h < lo {
                            OUTSIDE_FOV_HU
                        } else {
                            h
                        };
                    }
                    st.below_fov += count_eq(out, OUTSIDE_FOV_HU);
                    if i32::from(ic) > 0 {
                        st.saturated += count_eq(out, i16::MAX);
                    }
                } else if integral && self.bits_stored <= 16 {
                    // Slope 1, integer intercept: branch-free integer arithmetic (vectorises),
                    // then one counting pass.
                    let ic = self.intercept as i32;
                    let lo = OUTSIDE_BELOW_HU as i32;
                    let (plo, phi) = self
                        .padding
                        .map(|(a, b)| {
                            (a.clamp(-70000, 70000) as i32, b.clamp(-70000, 70000) as i32)
                        })
                        .unwrap_or((1, 0));
                    let shift = u32::from(self.shift);
                    let mask = ((1u32 << self.bits_stored) - 1) as i32;
                    let sb = if self.signed {
                        1i32 << (self.bits_stored - 1)
                    } else {
                        0
                    };
                    let convert = |raw: u16| -> i16 {
                        let v = (i32::from(raw) >> shift) & mask;
                        let v = (v ^ sb) - sb;
                        let h = v + ic;
                        let out = (v >= plo && v <= phi) || h < lo;
                        if out {
                            OUTSIDE_FOV_HU
                        } else {
                            h.min(i32::from(i16::MAX)) as i16
                        }
                    };
                    if big_endian {
                        for (o, c) in out.iter_mut().zip(src.chunks_exact(2)) {
                            *o = convert(u16::from_be_bytes([c[0], c[1]]));
                        }
                    } else {
                        for (o, c) in out.iter_mut().zip(src.chunks_exact(2)) {
                            *o = convert(u16::from_le_bytes([c[0], c[1]]));
                        }
                    }
                    st.below_fov += count_eq(out, OUTSIDE_FOV_HU);
                    // Saturation is only possible when the largest stored value can exceed it.
                    let max_v = if self.signed { sb - 1 } else { mask };
                    if i64::from(max_v) + i64::from(ic) > i64::from(i16::MAX) {
                        st.saturated += count_eq(out, i16::MAX);
                    }
                } else {
                    // Any other rescale: a 65,536-entry table per distinct conversion.
                    let lut = self.lut16();
                    for (o, c) in out.iter_mut().zip(src.chunks_exact(2)) {
                        *o = lut[usize::from(read(c))];
                    }
                    for &o in out.iter() {
                        if o == OUTSIDE_FOV_HU {
                            st.below_fov += 1;
                        } else if o == i16::MAX {
                            st.saturated += 1;
                        }
                    }
                }
            }
            _ => {
                for (o, c) in out.iter_mut().zip(src.chunks_exact(4)) {
                    let b = [c[0], c[1], c[2], c[3]];
                    let raw = if big_endian {
                        u32::from_be_bytes(b)
                    } else {
                        u32::from_le_bytes(b)
                    };
                    *o = self.hu(self.stored(raw), st);
                }
            }
        }
    }
}

/// Check the encapsulated pixel data items (offset table and fragments) starting at `p` fit in
/// the file, so the DICOM parser never allocates what a lying length claims. Returns the
/// fragments (offset table excluded).
pub(crate) fn check_fragments<'a>(
    path: &Path,
    bytes: &'a [u8],
    mut p: usize,
) -> Result<Vec<&'a [u8]>, LoadError> {
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
                    reason: format!(
                        "unexpected tag {:02X}{:02X},{:02X}{:02X} in encapsulated pixel data",
                        tag[1], tag[0], tag[3], tag[2]
                    ),
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
        WalkError::NeedMore => LoadError::Truncated {
            path: path.to_path_buf(),
            detail: "the file ends inside an element".into(),
        },
        WalkError::Truncated(m) => LoadError::Truncated {
            path: path.to_path_buf(),
            detail: m,
        },
        WalkError::Bad(m) => LoadError::InvalidDicom {
            path: path.to_path_buf(),
            reason: m,
        },
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
                let src = bytes
                    .get(off..off + fb)
                    .ok_or_else(|| LoadError::Truncated {
                        path: path.to_path_buf(),
                        detail: format!("frame {frame} lies beyond the pixel data"),
                    })?;
                check_out(path, out.len(), n_px)?;
                Convert::new(p, *slope, *intercept).run(
                    src,
                    p.bits_allocated,
                    ts == TS_EXPLICIT_BE,
                    out,
                    &mut st,
                );
            }
            return Ok(st);
        }
    }
    let mut pi = p.clone();
    if layout.walked {
        let pixel = layout.pixel.ok_or_else(|| LoadError::PixelData {
            path: path.to_path_buf(),
            reason: "no Pixel Data element".into(),
        })?;
        if pixel.len.is_some() {
            return Err(LoadError::PixelData {
                path: path.to_path_buf(),
                reason: format!(
                    "transfer syntax {ts} needs encapsulated pixel data, found a defined length"
                ),
            });
        }
        let frags = check_fragments(path, bytes, pixel.value_start)?;
        if frags.iter().all(|f| f.is_empty()) {
            return Err(LoadError::PixelData {
                path: path.to_path_buf(),
                reason: "encapsulated pixel data has no fragments".into(),
            });
        }
        if is_jpeg2000(ts)
            && let Some((cs_signed, prec)) = frags
                .iter()
                .find(|f| !f.is_empty())
                .and_then(|f| j2k_siz(f))
        {
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
    let stream = layout.stream(bytes, bytes.len());
    let mut obj = OpenFileOptions::new()
        .read_preamble(dicom_object::file::ReadPreamble::Never)
        .from_reader(&stream[..])
        .map_err(|e| LoadError::InvalidDicom {
            path: path.to_path_buf(),
            reason: flat(&e),
        })?;
    regroup_fragments(&mut obj, p.n_frames);
    let mut whole: Option<Vec<u8>> = None;
    for ((frame, slope, intercept), out) in jobs.iter().zip(outs.iter_mut()) {
        check_out(path, out.len(), n_px)?;
        let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let native = obj
                .decode_pixel_data_frame(*frame)
                .map(|d| d.data().to_vec());
            if native.is_err() && ts == uids::JPEG_BASELINE8_BIT {
                // Some archives label 12-bit (extended) JPEG as baseline: the registered JPEG
                // Extended decoder (ildtrack-jpeg12), which reads any baseline stream too.
                if let Some(Ok(d)) = extended_frame(&obj, *frame) {
                    return Ok(d);
                }
            }
            native
        }));
        let data: Vec<u8> = match decoded {
            Ok(Ok(d)) => d,
            other => {
                // Frames without an offset table: decode everything once and split.
                if whole.is_none() && p.n_frames > 1 {
                    let all = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        obj.decode_pixel_data().map(|d| d.data().to_vec())
                    }));
                    if let Ok(Ok(all)) = all {
                        whole = Some(all);
                    }
                }
                let per = whole
                    .as_ref()
                    .map(|w| w.len() / p.n_frames as usize)
                    .unwrap_or(0);
                match whole
                    .as_ref()
                    .and_then(|w| w.get(per * *frame as usize..per * (*frame as usize + 1)))
                {
                    Some(f) if per > 0 => f.to_vec(),
                    _ => {
                        let reason = match other {
                            Ok(Err(e)) => format!("frame {frame}: {}", flat(&e)),
                            Err(_) => format!(
                                "frame {frame}: the {} decoder crashed on this data",
                                crate::ts::ts_name(ts)
                            ),
                            Ok(Ok(_)) => format!("frame {frame}: decoding failed"),
                        };
                        return Err(LoadError::PixelData {
                            path: path.to_path_buf(),
                            reason,
                        });
                    }
                }
            }
        };
        let bits = if data.len() >= n_px * 2 && pi.bits_allocated >= 16 {
            if data.len() >= n_px * 4 && pi.bits_allocated == 32 {
                32
            } else {
                16
            }
        } else if data.len() >= n_px {
            8
        } else {
            return Err(LoadError::PixelData {
                path: path.to_path_buf(),
                reason: format!(
                    "frame {frame} decoded to {} bytes, {}×{} pixels need {}",
                    data.len(),
                    p.rows,
                    p.cols,
                    fb
                ),
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

/// Frame `frame` through the registry's JPEG Extended decoder.
fn extended_frame(
    obj: &dicom_object::DefaultDicomObject,
    frame: u32,
) -> Option<Result<Vec<u8>, dicom_encoding::adapters::DecodeError>> {
    let reader = ildtrack_jpeg12::extended_reader()?;
    let mut out = Vec::new();
    Some(reader.decode_frame(obj, frame, &mut out).map(|()| out))
}

/// Multi-frame encapsulated data without an offset table and with more fragments than frames:
/// group fragments into frames at each image start marker (JPEG SOI, JPEG 2000 SOC) so that
/// frame-by-frame decoding works.
fn regroup_fragments(obj: &mut dicom_object::DefaultDicomObject, n_frames: u32) {
    use dicom_core::value::{PixelFragmentSequence, Value};
    use dicom_core::{DataElement, VR};
    let Some(elem) = obj.get(dicom_dictionary_std::tags::PIXEL_DATA) else {
        return;
    };
    let Value::PixelSequence(seq) = elem.value() else {
        return;
    };
    let frags = seq.fragments();
    if n_frames == 1 && frags.len() > 1 {
        // One frame in several fragments: its codestream is their concatenation.
        let one: Vec<u8> = frags.iter().flat_map(|f| f.iter().copied()).collect();
        let seq = PixelFragmentSequence::new(Vec::<u32>::new(), vec![one]);
        obj.put(DataElement::new(
            dicom_dictionary_std::tags::PIXEL_DATA,
            VR::OB,
            seq,
        ));
        return;
    }
    if n_frames < 2 {
        return;
    }
    if frags.len() as u32 == n_frames || !seq.offset_table().is_empty() {
        return;
    }
    let starts =
        |f: &[u8]| f.starts_with(&[0xFF, 0xD8]) || f.starts_with(&[0xFF, 0x4F, 0xFF, 0x51]);
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
    obj.put(DataElement::new(
        dicom_dictionary_std::tags::PIXEL_DATA,
        VR::OB,
        seq,
    ));
}

fn check_out(path: &Path, got: usize, want: usize) -> Result<(), LoadError> {
    if got == want {
        Ok(())
    } else {
        Err(LoadError::Internal {
            path: path.to_path_buf(),
            detail: format!("output slice has {got} voxels, expected {want}"),
        })
    }
}

/// Refuse pixel layouts we cannot turn into HU, before allocating anything.
pub(crate) fn validate_pixel_info(path: &Path, p: &PixelInfo) -> Result<(), LoadError> {
    let bad = |reason: String| {
        Err(LoadError::BadHeader {
            path: path.to_path_buf(),
            reason,
        })
    };
    if p.rows == 0 || p.cols == 0 {
        return bad(format!("matrix {}×{} is empty", p.rows, p.cols));
    }
    if p.rows > MAX_MATRIX || p.cols > MAX_MATRIX {
        return Err(LoadError::TooLarge {
            path: path.to_path_buf(),
            detail: format!(
                "matrix {}×{} exceeds {MAX_MATRIX}×{MAX_MATRIX}",
                p.rows, p.cols
            ),
        });
    }
    if !matches!(p.bits_allocated, 8 | 16 | 32) {
        return bad(format!(
            "BitsAllocated {} is not 8, 16 or 32",
            p.bits_allocated
        ));
    }
    if p.bits_stored == 0 || p.bits_stored > p.bits_allocated || p.high_bit >= p.bits_allocated {
        return bad(format!(
            "BitsStored {} / HighBit {} do not fit BitsAllocated {}",
            p.bits_stored, p.high_bit, p.bits_allocated
        ));
    }
    if p.samples_per_pixel != 1 {
        return bad(format!(
            "{} samples per pixel ({}): colour, not a CT image",
            p.samples_per_pixel, p.photometric
        ));
    }
    if p.pixel_representation > 1 {
        return bad(format!(
            "PixelRepresentation {} is not 0 or 1",
            p.pixel_representation
        ));
    }
    Ok(())
}

/// Read a file and decode its frames (see [`decode_bytes`]). The read buffer is reused per
/// thread, so a series costs no page faults beyond the output volume.
pub(crate) fn decode_file(
    header: &FileHeader,
    jobs: &[(u32, f64, f64)],
    outs: &mut [&mut [i16]],
) -> Result<Stats, LoadError> {
    use std::cell::RefCell;
    use std::io::Read;
    thread_local! {
        static BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    }
    let path = header.path.as_path();
    BUF.with(|cell| {
        let mut buf = cell.borrow_mut();
        buf.clear();
        let io = |e: std::io::Error| LoadError::Io {
            path: path.to_path_buf(),
            source: e,
        };
        let mut f = std::fs::File::open(path).map_err(io)?;
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        buf.reserve(usize::try_from(len).unwrap_or(0));
        f.read_to_end(&mut buf).map_err(io)?;
        if buf.is_empty() {
            return Err(LoadError::EmptyFile {
                path: path.to_path_buf(),
            });
        }
        let r = decode_bytes(path, &buf, header, jobs, outs);
        if buf.capacity() > 64 << 20 {
            *buf = Vec::new();
        }
        r
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The definition, voxel by voxel, that every fast path must reproduce.
    fn reference(c: &Convert, raw: u16) -> i16 {
        let mut st = Stats::default();
        c.hu(c.stored(u32::from(raw)), &mut st)
    }

    fn info(bits_stored: u16, signed: bool, padding: Option<i64>) -> PixelInfo {
        PixelInfo {
            rows: 1,
            cols: 1,
            bits_allocated: 16,
            bits_stored,
            high_bit: bits_stored - 1,
            pixel_representation: u16::from(signed),
            samples_per_pixel: 1,
            photometric: "MONOCHROME2".into(),
            n_frames: 1,
            padding,
            padding_limit: None,
        }
    }

    #[test]
    fn sign_extension_padding_and_outside_fov() {
        let c = Convert::new(&info(12, true, Some(-2000)), 1.0, 0.0);
        assert_eq!(c.stored(0x0FFF), -1); // 12-bit two's complement
        assert_eq!(c.stored(0xF7FF), 2047); // garbage above bit 11 is ignored
        let mut out = [0i16; 4];
        let mut st = Stats::default();
        let src: Vec<u8> = [-1000i16, -2000, 100, -1600]
            .iter()
            .flat_map(|v| (*v as u16 & 0x0FFF).to_le_bytes())
            .collect();
        c.run(&src, 16, false, &mut out, &mut st);
        assert_eq!(out, [-1000, OUTSIDE_FOV_HU, 100, OUTSIDE_FOV_HU]);
        assert_eq!(st.below_fov, 2);
    }

    proptest! {
        #[test]
        fn every_conversion_path_matches_the_definition(
            raws in proptest::collection::vec(any::<u16>(), 1..300),
            bits_stored in 8u16..=16,
            signed in any::<bool>(),
            slope in prop_oneof![Just(1.0f64), 0.5f64..3.0],
            intercept in prop_oneof![Just(-1024.0f64), Just(0.0), Just(-32768.0), -3000.0f64..3000.0],
            padding in proptest::option::of(-3000i64..70000),
            big_endian in any::<bool>(),
        ) {
            let c = Convert::new(&info(bits_stored, signed, padding), slope, intercept);
            let src: Vec<u8> = raws.iter().flat_map(|r| if big_endian { r.to_be_bytes() } else { r.to_le_bytes() }).collect();
            let mut out = vec![0i16; raws.len()];
            let mut st = Stats::default();
            c.run(&src, 16, big_endian, &mut out, &mut st);
            for (r, o) in raws.iter().zip(&out) {
                prop_assert_eq!(*o, reference(&c, *r), "raw {:#06x}", r);
            }
            let outside = out.iter().filter(|&&o| o == OUTSIDE_FOV_HU).count() as u64;
            prop_assert_eq!(st.below_fov + st.padding, outside);
        }
    }
}
