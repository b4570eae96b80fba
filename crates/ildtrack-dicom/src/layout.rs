//! A small structural walk over a DICOM file's bytes, done before dicom-rs sees them.
//!
//! dicom-rs allocates what an element's length claims before reading it, so one lying length
//! means gigabytes. This walk checks every defined length against the bytes actually in the
//! file, finds the root Pixel Data element, and repairs two harmless real-world defects:
//! over-long strings in the file meta group (e.g. an 18-character AE title) and `UN` elements
//! of undefined length (implicit-VR sequences inside explicit-VR data; they are cut out).
//! The cleaned byte stream (meta + data set, optionally up to Pixel Data) is what dicom-rs parses.

/// Why a walk stopped.
#[derive(Debug)]
pub(crate) enum WalkError {
    /// The prefix we were given ends before the walk could finish; read more of the file.
    NeedMore,
    /// The file ends before what a length claims.
    Truncated(String),
    /// Structurally broken.
    Bad(String),
}

/// The root Pixel Data element.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct PixelElem {
    pub header_start: usize,
    pub value_start: usize,
    /// None: undefined length (encapsulated).
    pub len: Option<usize>,
}

#[derive(Debug, Clone)]
pub(crate) struct Layout {
    /// Where the meta group starts ("DICM" excluded) and the data set starts.
    pub meta_start: usize,
    pub dataset_start: usize,
    /// Rewritten meta group (with "DICM") when the original had over-long values.
    pub meta_fixed: Option<Vec<u8>>,
    /// Byte ranges of the data set to drop.
    pub cuts: Vec<(usize, usize)>,
    pub pixel: Option<PixelElem>,
    /// False for deflated data sets (not walked).
    pub walked: bool,
}

const MAX_DEPTH: usize = 24;

fn long_vr(vr: &[u8]) -> bool {
    matches!(
        vr,
        b"OB"
            | b"OD"
            | b"OF"
            | b"OL"
            | b"OV"
            | b"OW"
            | b"SQ"
            | b"SV"
            | b"UC"
            | b"UN"
            | b"UR"
            | b"UT"
            | b"UV"
    )
}

/// The VRs of PS3.5; anything else makes dicom-rs and this walk disagree on the header size.
fn known_vr(vr: &[u8]) -> bool {
    matches!(
        vr,
        b"AE"
            | b"AS"
            | b"AT"
            | b"CS"
            | b"DA"
            | b"DS"
            | b"DT"
            | b"FL"
            | b"FD"
            | b"IS"
            | b"LO"
            | b"LT"
            | b"OB"
            | b"OD"
            | b"OF"
            | b"OL"
            | b"OV"
            | b"OW"
            | b"PN"
            | b"SH"
            | b"SL"
            | b"SQ"
            | b"SS"
            | b"ST"
            | b"SV"
            | b"TM"
            | b"UC"
            | b"UI"
            | b"UL"
            | b"UN"
            | b"UR"
            | b"US"
            | b"UT"
            | b"UV"
    )
}

struct Walker<'a> {
    b: &'a [u8],
    file_len: usize,
    be: bool,
    cuts: Vec<(usize, usize)>,
}

impl Walker<'_> {
    fn u16_at(&self, p: usize, be: bool) -> u16 {
        let x = [self.b[p], self.b[p + 1]];
        if be {
            u16::from_be_bytes(x)
        } else {
            u16::from_le_bytes(x)
        }
    }
    fn u32_at(&self, p: usize, be: bool) -> u32 {
        let x = [self.b[p], self.b[p + 1], self.b[p + 2], self.b[p + 3]];
        if be {
            u32::from_be_bytes(x)
        } else {
            u32::from_le_bytes(x)
        }
    }
    fn need(&self, end: usize) -> Result<(), WalkError> {
        if end <= self.b.len() {
            Ok(())
        } else if self.b.len() < self.file_len {
            Err(WalkError::NeedMore)
        } else {
            Err(WalkError::Truncated(format!(
                "the file ends at byte {} inside an element header",
                self.file_len
            )))
        }
    }

    /// Walk elements from `pos` until `end` (None: until a delimiter or end of file).
    /// Returns (position after, root pixel element if found).
    fn elements(
        &mut self,
        mut pos: usize,
        end: Option<usize>,
        explicit: bool,
        depth: usize,
        root: bool,
    ) -> Result<(usize, Option<PixelElem>), WalkError> {
        if depth > MAX_DEPTH {
            return Err(WalkError::Bad(format!(
                "sequences nested deeper than {MAX_DEPTH}"
            )));
        }
        let be = self.be;
        loop {
            if let Some(e) = end {
                if pos >= e {
                    return Ok((pos, None));
                }
            } else if pos >= self.file_len {
                return Ok((pos, None));
            }
            self.need(pos + 8)?;
            let group = self.u16_at(pos, be);
            let elem = self.u16_at(pos + 2, be);
            if group == 0xFFFE {
                if elem == 0xE00D && end.is_none() && depth > 0 {
                    return Ok((pos + 8, None));
                }
                return Err(WalkError::Bad(format!(
                    "unexpected delimiter (FFFE,{elem:04X}) at byte {pos}"
                )));
            }
            if root && group == 0x0002 {
                return Err(WalkError::Bad(format!(
                    "file meta element (0002,{elem:04X}) repeated inside the data set at byte {pos} (two meta groups)"
                )));
            }
            let (hdr, len, vr): (usize, u32, Option<[u8; 2]>) = if explicit {
                let vr = [self.b[pos + 4], self.b[pos + 5]];
                if !known_vr(&vr) {
                    return Err(WalkError::Bad(format!(
                        "invalid VR bytes {:02X} {:02X} for element ({group:04X},{elem:04X}) at byte {pos}",
                        vr[0], vr[1]
                    )));
                }
                if long_vr(&vr) {
                    self.need(pos + 12)?;
                    (12, self.u32_at(pos + 8, be), Some(vr))
                } else {
                    (8, u32::from(self.u16_at(pos + 6, be)), Some(vr))
                }
            } else {
                (8, self.u32_at(pos + 4, be), None)
            };
            let value_start = pos + hdr;
            if root && group == 0x7FE0 && elem == 0x0010 {
                let len = (len != u32::MAX).then_some(len as usize);
                if let Some(l) = len
                    && value_start + l > self.file_len
                {
                    return Err(WalkError::Truncated(format!(
                        "Pixel Data claims {l} bytes but only {} remain in the file",
                        self.file_len.saturating_sub(value_start)
                    )));
                }
                return Ok((
                    pos,
                    Some(PixelElem {
                        header_start: pos,
                        value_start,
                        len,
                    }),
                ));
            }
            if len == u32::MAX {
                // Undefined length: a sequence of items (SQ, UN holding implicit VR, or implicit SQ).
                let is_un = vr == Some(*b"UN");
                let item_explicit = explicit && !is_un;
                let after = self.items(value_start, None, item_explicit, depth + 1)?;
                if is_un {
                    self.cuts.push((pos, after));
                }
                pos = after;
                continue;
            }
            let len = len as usize;
            let value_end = value_start + len;
            if value_end > self.file_len {
                return Err(WalkError::Truncated(format!(
                    "element ({group:04X},{elem:04X}) claims {len} bytes but only {} remain in the file",
                    self.file_len.saturating_sub(value_start)
                )));
            }
            if let Some(e) = end
                && value_end > e
            {
                return Err(WalkError::Bad(format!(
                    "element ({group:04X},{elem:04X}) of {len} bytes overruns its enclosing item"
                )));
            }
            let is_sq = vr == Some(*b"SQ")
                || (vr.is_none()
                    && len >= 8
                    && value_end <= self.b.len()
                    && self.u16_at(value_start, be) == 0xFFFE
                    && self.u16_at(value_start + 2, be) == 0xE000);
            if is_sq && len > 0 {
                if value_end > self.b.len() {
                    self.need(value_end)?;
                }
                self.items(value_start, Some(value_end), explicit, depth + 1)?;
            }
            pos = value_end;
        }
    }

    /// Walk sequence items from `pos`; returns the position after the sequence.
    fn items(
        &mut self,
        mut pos: usize,
        end: Option<usize>,
        explicit: bool,
        depth: usize,
    ) -> Result<usize, WalkError> {
        let be = self.be;
        loop {
            if let Some(e) = end
                && pos >= e
            {
                return Ok(pos);
            }
            self.need(pos + 8)?;
            let group = self.u16_at(pos, be);
            let elem = self.u16_at(pos + 2, be);
            let len = self.u32_at(pos + 4, be);
            match (group, elem) {
                (0xFFFE, 0xE0DD) => return Ok(pos + 8),
                (0xFFFE, 0xE000) => {
                    if len == u32::MAX {
                        let (after, _) = self.elements(pos + 8, None, explicit, depth, false)?;
                        pos = after;
                    } else {
                        let s = pos + 8;
                        let e = s + len as usize;
                        if e > self.file_len || end.is_some_and(|x| e > x) {
                            return Err(WalkError::Truncated(format!(
                                "sequence item at byte {pos} claims {len} bytes beyond its sequence or the file"
                            )));
                        }
                        self.need(e)?;
                        self.elements(s, Some(e), explicit, depth, false)?;
                        pos = e;
                    }
                }
                _ => {
                    return Err(WalkError::Bad(format!(
                        "expected a sequence item at byte {pos}, found ({group:04X},{elem:04X})"
                    )));
                }
            }
        }
    }
}

/// Parse the meta group (explicit VR little endian) starting at `p` (just after "DICM").
/// Returns (transfer syntax, dataset start, rewritten meta if values were over-long).
fn meta(
    b: &[u8],
    p0: usize,
    file_len: usize,
) -> Result<(String, usize, Option<Vec<u8>>), WalkError> {
    let mut p = p0;
    let mut ts = None;
    let mut elems: Vec<(u16, [u8; 2], Vec<u8>)> = Vec::new();
    let mut overlong = false;
    let mut has_group_length = false;
    loop {
        if p + 8 > b.len() {
            return if b.len() < file_len {
                Err(WalkError::NeedMore)
            } else {
                Err(WalkError::Truncated(
                    "the file ends inside the meta group".into(),
                ))
            };
        }
        let group = u16::from_le_bytes([b[p], b[p + 1]]);
        if group != 0x0002 {
            break;
        }
        let elem = u16::from_le_bytes([b[p + 2], b[p + 3]]);
        let vr = [b[p + 4], b[p + 5]];
        if !known_vr(&vr) {
            return Err(WalkError::Bad(format!(
                "invalid VR bytes {:02X} {:02X} for file meta element (0002,{elem:04X})",
                vr[0], vr[1]
            )));
        }
        let (hdr, len) = if long_vr(&vr) {
            if p + 12 > b.len() {
                return Err(WalkError::NeedMore);
            }
            (
                12,
                u32::from_le_bytes([b[p + 8], b[p + 9], b[p + 10], b[p + 11]]) as usize,
            )
        } else {
            (8, usize::from(u16::from_le_bytes([b[p + 6], b[p + 7]])))
        };
        if len == u32::MAX as usize || p + hdr + len > file_len {
            return Err(WalkError::Truncated(format!(
                "meta element (0002,{elem:04X}) claims {len} bytes beyond the file"
            )));
        }
        if p + hdr + len > b.len() {
            return Err(WalkError::NeedMore);
        }
        if elems.iter().any(|e| e.0 == elem) {
            return Err(WalkError::Bad(format!(
                "file meta element (0002,{elem:04X}) appears twice (two meta groups)"
            )));
        }
        let v = b[p + hdr..p + hdr + len].to_vec();
        let max = match &vr {
            b"AE" | b"SH" => 16,
            b"UI" => 64,
            _ => usize::MAX,
        };
        if v.len() > max {
            overlong = true;
        }
        if elem == 0x0000 {
            has_group_length = true;
        }
        if elem == 0x0010 {
            ts = Some(
                String::from_utf8_lossy(&v)
                    .trim_end_matches(['\0', ' '])
                    .to_string(),
            );
        }
        elems.push((elem, vr, v));
        p += hdr + len;
    }
    let ts = ts.unwrap_or_default();
    // dicom-rs ends the meta group where its group length says: the two must agree, or the
    // data set would be read from a different offset than the one checked here.
    if let Some((_, _, v)) = elems.iter().find(|e| e.0 == 0x0000)
        && v.len() == 4
    {
        let declared = u32::from_le_bytes([v[0], v[1], v[2], v[3]]) as usize;
        let first_after_length = p0 + 12;
        if p >= first_after_length && declared != p - first_after_length {
            return Err(WalkError::Bad(format!(
                "file meta group length says {declared} bytes but its elements take {}",
                p - first_after_length
            )));
        }
    }
    // Only repair over-long strings in an otherwise well-formed meta group; anything else is
    // left for dicom-rs to refuse with its own message.
    let fixed = if overlong && has_group_length && !ts.is_empty() {
        let mut body = Vec::new();
        for (elem, vr, v) in elems.iter().filter(|e| e.0 != 0x0000) {
            let max = match vr {
                b"AE" | b"SH" => 16,
                b"UI" => 64,
                _ => usize::MAX,
            };
            let mut v = v.clone();
            if v.len() > max {
                v.truncate(max);
            }
            if v.len() % 2 == 1 {
                v.push(if vr == b"UI" || vr == b"OB" { 0 } else { b' ' });
            }
            body.extend_from_slice(&0x0002u16.to_le_bytes());
            body.extend_from_slice(&elem.to_le_bytes());
            body.extend_from_slice(vr);
            if long_vr(vr) {
                body.extend_from_slice(&[0, 0]);
                body.extend_from_slice(&(v.len() as u32).to_le_bytes());
            } else {
                body.extend_from_slice(&(v.len() as u16).to_le_bytes());
            }
            body.extend_from_slice(&v);
        }
        let mut out = b"DICM".to_vec();
        out.extend_from_slice(&[0x02, 0x00, 0x00, 0x00, b'U', b'L', 4, 0]);
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&body);
        Some(out)
    } else {
        None
    };
    // Retired 12-bit JPEG syntaxes unknown to dicom-rs: see crate::ts::alias_retired_ts.
    let fixed = crate::ts::alias_retired_ts(&ts, fixed, b.get(p0..p).unwrap_or(&[]));
    Ok((ts, p, fixed))
}

/// Walk `b` (a prefix of a file of `file_len` bytes, or all of it).
pub(crate) fn walk(b: &[u8], file_len: usize) -> Result<Layout, WalkError> {
    let meta_start = if b.len() >= 132 && &b[128..132] == b"DICM" {
        132
    } else if b.len() >= 4 && &b[0..4] == b"DICM" {
        4
    } else if b.len() >= 2 && b[0] == 0x02 && b[1] == 0x00 {
        0
    } else {
        return Err(WalkError::Bad(
            "no DICM marker and no file meta group".into(),
        ));
    };
    let (ts, dataset_start, meta_fixed) = meta(b, meta_start, file_len)?;
    if ts == crate::ts::TS_DEFLATED || ts.is_empty() {
        return Ok(Layout {
            meta_start,
            dataset_start,
            meta_fixed,
            cuts: Vec::new(),
            pixel: None,
            walked: false,
        });
    }
    let explicit = ts != crate::ts::TS_IMPLICIT_LE;
    let be = ts == crate::ts::TS_EXPLICIT_BE;
    let mut w = Walker {
        b,
        file_len,
        be,
        cuts: Vec::new(),
    };
    let (_, pixel) = w.elements(dataset_start, None, explicit, 0, true)?;
    Ok(Layout {
        meta_start,
        dataset_start,
        meta_fixed,
        cuts: w.cuts,
        pixel,
        walked: true,
    })
}

impl Layout {
    /// The byte stream for dicom-rs ("DICM" + meta + data set minus cuts), up to `until`
    /// (exclusive; e.g. the Pixel Data header for header-only reads).
    pub fn stream<'a>(&self, b: &'a [u8], until: usize) -> std::borrow::Cow<'a, [u8]> {
        let until = until.min(b.len());
        if self.meta_fixed.is_none() && self.cuts.is_empty() && self.meta_start >= 4 {
            return std::borrow::Cow::Borrowed(&b[self.meta_start - 4..until]);
        }
        let mut out = match &self.meta_fixed {
            Some(m) => m.clone(),
            None => {
                let mut v = b"DICM".to_vec();
                v.extend_from_slice(&b[self.meta_start..self.dataset_start.min(until)]);
                v
            }
        };
        let mut p = self.dataset_start;
        for &(s, e) in &self.cuts {
            if s >= until {
                break;
            }
            out.extend_from_slice(&b[p..s]);
            p = e;
        }
        if p < until {
            out.extend_from_slice(&b[p..until]);
        }
        std::borrow::Cow::Owned(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta_bytes(ts: &str) -> Vec<u8> {
        let mut ts_v = ts.as_bytes().to_vec();
        if ts_v.len() % 2 == 1 {
            ts_v.push(0);
        }
        let mut body = Vec::new();
        body.extend_from_slice(&[0x02, 0x00, 0x10, 0x00, b'U', b'I']);
        body.extend_from_slice(&(ts_v.len() as u16).to_le_bytes());
        body.extend_from_slice(&ts_v);
        let mut b = vec![0u8; 128];
        b.extend_from_slice(b"DICM");
        b.extend_from_slice(&[0x02, 0x00, 0x00, 0x00, b'U', b'L', 4, 0]);
        b.extend_from_slice(&(body.len() as u32).to_le_bytes());
        b.extend_from_slice(&body);
        b
    }

    #[test]
    fn lying_length_is_truncation_not_allocation() {
        let mut b = meta_bytes("1.2.840.10008.1.2.1");
        // (0010,0010) PN with a 0xFFFF length but only 4 bytes present.
        b.extend_from_slice(&[
            0x10, 0x00, 0x10, 0x00, b'P', b'N', 0xFF, 0xFF, b'A', b'B', b'C', b'D',
        ]);
        let n = b.len();
        match walk(&b, n) {
            Err(WalkError::Truncated(m)) => assert!(m.contains("(0010,0010)"), "{m}"),
            other => panic!("expected truncation, got {other:?}"),
        }
    }

    #[test]
    fn meta_with_unknown_vr_or_wrong_group_length_is_refused() {
        // Found by cargo fuzz: a mutated VR in (0002,0001) made dicom-rs read the data set from
        // another offset and allocate 2.4 GB for a garbage length.
        let mut b = meta_bytes("1.2.840.10008.1.2.1");
        b.extend_from_slice(&[0x08, 0x00, 0x60, 0x00, b'C', b'S', 2, 0, b'C', b'T']);
        let n = b.len();
        assert!(walk(&b, n).is_ok());
        let mut bad_vr = b.clone();
        bad_vr[144 + 4] = 0xBA; // the VR of (0002,0010)
        assert!(matches!(walk(&bad_vr, n), Err(WalkError::Bad(m)) if m.contains("invalid VR")));
        let mut bad_len = b.clone();
        bad_len[140] = bad_len[140].wrapping_add(2); // group length value
        assert!(matches!(walk(&bad_len, n), Err(WalkError::Bad(m)) if m.contains("group length")));
    }

    #[test]
    fn finds_pixel_data_and_cuts_undefined_un() {
        let mut b = meta_bytes("1.2.840.10008.1.2.1");
        // (0008,2112) UN undefined length containing one implicit item, then seq delimiter.
        b.extend_from_slice(&[
            0x08, 0x00, 0x12, 0x21, b'U', b'N', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF,
        ]);
        b.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 12, 0, 0, 0]);
        b.extend_from_slice(&[0x08, 0x00, 0x50, 0x11, 4, 0, 0, 0, b'1', b'.', b'2', 0]);
        b.extend_from_slice(&[0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]);
        let pix_at = b.len();
        b.extend_from_slice(&[
            0xE0, 0x7F, 0x10, 0x00, b'O', b'W', 0, 0, 4, 0, 0, 0, 1, 2, 3, 4,
        ]);
        let n = b.len();
        let l = walk(&b, n).expect("walks");
        assert_eq!(l.cuts.len(), 1);
        assert_eq!(
            l.pixel,
            Some(PixelElem {
                header_start: pix_at,
                value_start: pix_at + 12,
                len: Some(4)
            })
        );
        // A prefix that stops in the middle asks for more.
        assert!(matches!(
            walk(&b[..pix_at - 4], n),
            Err(WalkError::NeedMore)
        ));
    }
}
