//! DCT JPEG decoder (ITU T.81, Huffman coding only) for the 12-bit lossy transfer syntaxes
//! (JPEG Extended …4.51, and the retired …4.53 / …4.55) that dicom-rs' `jpeg-decoder` refuses.
//!
//! Scope: baseline / extended sequential (SOF0, SOF1) and progressive (SOF2: DC first and
//! refinement, AC first and refinement with end-of-band runs, spectral selection), 8- and 12-bit
//! precision, 8- and 16-bit quantisation tables, restart intervals, fill bytes and byte stuffing,
//! 1 to 4 components (no colour conversion; subsampled components are replicated). The IDCT is a
//! separable float IDCT. Every length and index comes from untrusted data and is checked; errors
//! are [`JpegError`] values, never panics.

/// Why a JPEG codestream could not be decoded.
#[derive(Debug, thiserror::Error)]
#[error("12-bit JPEG: {0}")]
pub struct JpegError(String);

fn err<T>(m: impl Into<String>) -> Result<T, JpegError> {
    Err(JpegError(m.into()))
}

/// A decoded image: `samples` holds `width × height × components` values, row-major, interleaved.
#[derive(Debug, Clone)]
pub struct Decoded {
    pub width: u32,
    pub height: u32,
    pub components: usize,
    pub precision: u8,
    pub samples: Vec<u16>,
}

/// Zig-zag index → natural (row-major) index within an 8×8 block.
const ZIGZAG: [usize; 64] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20,
    13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59,
    52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
];

/// Upper bound on the samples a frame may claim (the caller also checks against Rows/Columns).
const MAX_SAMPLES: u64 = 1 << 26;

/// The first frame header (SOFn) of a codestream: (marker, precision), without decoding.
pub fn sof_info(data: &[u8]) -> Option<(u8, u8)> {
    if data.get(0..2)? != [0xFF, 0xD8] {
        return None;
    }
    let mut p = 2usize;
    loop {
        // Skip fill bytes before a marker.
        while *data.get(p)? == 0xFF && *data.get(p + 1)? == 0xFF {
            p += 1;
        }
        if *data.get(p)? != 0xFF {
            return None;
        }
        let m = *data.get(p + 1)?;
        if matches!(m, 0xD0..=0xD7 | 0x01) {
            p += 2;
            continue;
        }
        if m == 0xD9 || m == 0xDA {
            return None;
        }
        let len = u16::from_be_bytes([*data.get(p + 2)?, *data.get(p + 3)?]) as usize;
        if matches!(m, 0xC0..=0xCF) && !matches!(m, 0xC4 | 0xC8 | 0xCC) {
            return Some((m, *data.get(p + 4)?));
        }
        if len < 2 {
            return None;
        }
        p += 2 + len;
    }
}

/// Frame `frame` of several fragments per frame, from the basic offset table (byte offsets of
/// each frame's first fragment item, counted from the first item, 8-byte item headers included).
pub(crate) fn frame_by_offsets(frags: &[&[u8]], bot: &[u32], frame: u32) -> Option<Vec<u8>> {
    let start = u64::from(*bot.get(frame as usize)?);
    let end = bot
        .get(frame as usize + 1)
        .map_or(u64::MAX, |&e| u64::from(e));
    let mut at = 0u64;
    let mut out = Vec::new();
    for f in frags {
        if at >= start && at < end {
            out.extend_from_slice(f);
        }
        at += 8 + f.len() as u64;
    }
    if out.is_empty() { None } else { Some(out) }
}

#[derive(Clone)]
struct Huffman {
    /// Per code length 1..=16: (max code + 1 or 0 when none, first code, index of first value).
    maxcode: [i32; 17],
    mincode: [i32; 17],
    valptr: [usize; 17],
    values: Vec<u8>,
}

impl Huffman {
    fn new(counts: &[u8; 16], values: Vec<u8>) -> Result<Self, JpegError> {
        let mut maxcode = [-1i32; 17];
        let mut mincode = [0i32; 17];
        let mut valptr = [0usize; 17];
        let mut code: i32 = 0;
        let mut k = 0usize;
        for l in 1..=16 {
            let n = counts[l - 1] as i32;
            if n > 0 {
                valptr[l] = k;
                mincode[l] = code;
                code += n;
                k += n as usize;
                maxcode[l] = code - 1;
                if code > (1 << l) {
                    return err("a Huffman table has more codes than its code lengths allow");
                }
            }
            code <<= 1;
        }
        Ok(Self {
            maxcode,
            mincode,
            valptr,
            values,
        })
    }
}

struct Component {
    id: u8,
    h: usize,
    v: usize,
    tq: usize,
    /// Blocks per line / column, padded to whole MCUs.
    bw: usize,
    bh: usize,
    /// Blocks actually covering the component (non-interleaved scans).
    bw_used: usize,
    bh_used: usize,
    coefs: Vec<i32>,
    dc_pred: i32,
}

struct Frame {
    progressive: bool,
    precision: u8,
    width: usize,
    height: usize,
    hmax: usize,
    vmax: usize,
    mcux: usize,
    mcuy: usize,
    comps: Vec<Component>,
}

/// Bit reader over entropy-coded data: removes stuffed zero bytes, stops at markers.
struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
    acc: u32,
    n: u32,
    /// Zero bits fabricated past a marker or the end of data.
    fabricated: u32,
}

impl<'a> Bits<'a> {
    fn new(data: &'a [u8], pos: usize) -> Self {
        Self {
            data,
            pos,
            acc: 0,
            n: 0,
            fabricated: 0,
        }
    }

    fn fill(&mut self) -> Result<(), JpegError> {
        while self.n <= 24 {
            let b = match self.data.get(self.pos) {
                Some(&0xFF) => match self.data.get(self.pos + 1) {
                    Some(&0x00) => {
                        self.pos += 2;
                        0xFF
                    }
                    _ => {
                        self.fabricated += 8;
                        0
                    }
                },
                Some(&b) => {
                    self.pos += 1;
                    b
                }
                None => {
                    self.fabricated += 8;
                    0
                }
            };
            self.acc |= u32::from(b) << (24 - self.n);
            self.n += 8;
        }
        // Allow the few padding bits an encoder may have left out; more means truncation.
        if self.fabricated > 64 {
            return err(format!(
                "the entropy-coded data ends early (truncated scan) near byte {}",
                self.pos
            ));
        }
        Ok(())
    }

    fn bits(&mut self, k: u32) -> Result<u32, JpegError> {
        if k == 0 {
            return Ok(0);
        }
        if self.n < k {
            self.fill()?;
        }
        let v = self.acc >> (32 - k);
        self.acc <<= k;
        self.n -= k;
        Ok(v)
    }

    fn bit(&mut self) -> Result<bool, JpegError> {
        Ok(self.bits(1)? == 1)
    }

    fn decode(&mut self, t: &Huffman) -> Result<u8, JpegError> {
        if self.n < 16 {
            self.fill()?;
        }
        let mut code: i32 = 0;
        for l in 1..=16usize {
            code = (code << 1) | ((self.acc >> 31) as i32);
            self.acc <<= 1;
            self.n -= 1;
            if code <= t.maxcode[l] {
                let i = t.valptr[l] + (code - t.mincode[l]) as usize;
                return t
                    .values
                    .get(i)
                    .copied()
                    .ok_or_else(|| JpegError("Huffman code points past its table".into()));
            }
        }
        err("invalid Huffman code in the entropy-coded data")
    }

    /// EXTEND (T.81 F.2.2.1): `s` magnitude bits to a signed value.
    fn receive_extend(&mut self, s: u8) -> Result<i32, JpegError> {
        if s == 0 {
            return Ok(0);
        }
        if s > 16 {
            return err(format!(
                "coefficient magnitude category {s} is larger than 16"
            ));
        }
        let v = self.bits(u32::from(s))? as i32;
        Ok(if v < (1 << (s - 1)) {
            v - (1 << s) + 1
        } else {
            v
        })
    }

    /// Discard buffered bits and resume at the next restart marker.
    fn restart(&mut self, expected: u8) -> Result<(), JpegError> {
        self.acc = 0;
        self.n = 0;
        self.fabricated = 0;
        // Skip to the next marker.
        loop {
            match self.data.get(self.pos) {
                None => return err("the scan ends where a restart marker was expected"),
                Some(&0xFF) => match self.data.get(self.pos + 1) {
                    Some(&0x00) => self.pos += 2,
                    Some(&0xFF) => self.pos += 1,
                    Some(&m) if (0xD0..=0xD7).contains(&m) => {
                        if m != 0xD0 + expected {
                            tracing::debug!(
                                "restart marker RST{} where RST{expected} was expected",
                                m - 0xD0
                            );
                        }
                        self.pos += 2;
                        return Ok(());
                    }
                    _ => return err("another marker where a restart marker was expected"),
                },
                Some(_) => self.pos += 1,
            }
        }
    }

    /// Position of the first marker at or after the reader's position (end of the scan).
    fn next_marker(&self) -> usize {
        let mut p = self.pos;
        while let Some(&b) = self.data.get(p) {
            if b == 0xFF {
                match self.data.get(p + 1) {
                    Some(&0x00) => p += 2,
                    Some(m) if (0xD0..=0xD7).contains(m) => p += 2,
                    _ => return p,
                }
            } else {
                p += 1;
            }
        }
        p
    }
}

struct Scan {
    comps: Vec<(usize, usize, usize)>, // (component index, DC table, AC table)
    ss: usize,
    se: usize,
    ah: u32,
    al: u32,
}

/// Decode a complete JPEG codestream. `max_width`/`max_height` bound the frame size before any
/// allocation.
pub fn decode(data: &[u8], max_width: u32, max_height: u32) -> Result<Decoded, JpegError> {
    if data.get(0..2) != Some(&[0xFF, 0xD8][..]) {
        return err("no start-of-image marker: not a JPEG codestream");
    }
    let mut qt: [Option<[u16; 64]>; 4] = [None; 4];
    let mut dc: [Option<Huffman>; 4] = [None, None, None, None];
    let mut ac: [Option<Huffman>; 4] = [None, None, None, None];
    let mut frame: Option<Frame> = None;
    let mut restart_interval = 0usize;
    let mut p = 2usize;
    let mut scans = 0usize;
    loop {
        let Some(&b) = data.get(p) else {
            if scans > 0 {
                break; // missing EOI after complete scans: accept
            }
            return err("the codestream ends before any scan");
        };
        if b != 0xFF {
            return err(format!("expected a marker at byte {p}, found {b:#04x}"));
        }
        let Some(&m) = data.get(p + 1) else {
            return err("the codestream ends inside a marker");
        };
        if m == 0xFF {
            p += 1;
            continue;
        }
        p += 2;
        match m {
            0xD9 => break,
            0x01 | 0xD0..=0xD7 => continue,
            _ => {}
        }
        let len = match (data.get(p), data.get(p + 1)) {
            (Some(&a), Some(&b)) => u16::from_be_bytes([a, b]) as usize,
            _ => return err(format!("the codestream ends inside marker {m:#04x}")),
        };
        if len < 2 {
            return err(format!("marker {m:#04x} has length {len}"));
        }
        let Some(seg) = data.get(p + 2..p + len) else {
            return err(format!(
                "marker {m:#04x} segment of {len} bytes runs past the end at byte {p}"
            ));
        };
        p += len;
        match m {
            0xDB => parse_dqt(seg, &mut qt)?,
            0xC4 => parse_dht(seg, &mut dc, &mut ac)?,
            0xDD => {
                let (Some(&a), Some(&b)) = (seg.first(), seg.get(1)) else {
                    return err("DRI segment too short");
                };
                restart_interval = u16::from_be_bytes([a, b]) as usize;
            }
            0xC0..=0xC2 => {
                if frame.is_some() {
                    return err("more than one frame header");
                }
                frame = Some(parse_sof(seg, m == 0xC2, max_width, max_height)?);
            }
            0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => {
                return err(format!(
                    "JPEG process with frame marker {m:#04x} (lossless, hierarchical or arithmetic) is not supported here"
                ));
            }
            0xDA => {
                let Some(f) = frame.as_mut() else {
                    return err("scan before the frame header");
                };
                let scan = parse_sos(seg, f)?;
                let mut bits = Bits::new(data, p);
                decode_scan(f, &scan, &dc, &ac, restart_interval, &mut bits)?;
                p = bits.next_marker();
                scans += 1;
            }
            0xDC => return err("DNL marker (height defined later) is not supported"),
            _ => {} // APPn, COM, and others: skipped
        }
    }
    let Some(f) = frame else {
        return err("no frame header");
    };
    if scans == 0 {
        return err("no scan");
    }
    finish(&f, &qt)
}

fn parse_dqt(mut seg: &[u8], qt: &mut [Option<[u16; 64]>; 4]) -> Result<(), JpegError> {
    while let Some(&pt) = seg.first() {
        let pq = pt >> 4;
        let tq = (pt & 15) as usize;
        if tq > 3 || pq > 1 {
            return err(format!(
                "quantisation table id {tq} / precision {pq} out of range"
            ));
        }
        let n = if pq == 0 { 64 } else { 128 };
        let Some(body) = seg.get(1..1 + n) else {
            return err("quantisation table segment too short");
        };
        let mut t = [0u16; 64];
        for (k, &z) in ZIGZAG.iter().enumerate() {
            // Stored in zig-zag order; kept in natural order.
            let v = if pq == 0 {
                u16::from(body.get(k).copied().unwrap_or(0))
            } else {
                u16::from_be_bytes([
                    body.get(2 * k).copied().unwrap_or(0),
                    body.get(2 * k + 1).copied().unwrap_or(0),
                ])
            };
            if let Some(slot) = t.get_mut(z) {
                *slot = v;
            }
        }
        qt[tq] = Some(t);
        seg = seg.get(1 + n..).unwrap_or(&[]);
    }
    Ok(())
}

fn parse_dht(
    mut seg: &[u8],
    dc: &mut [Option<Huffman>; 4],
    ac: &mut [Option<Huffman>; 4],
) -> Result<(), JpegError> {
    while let Some(&tcth) = seg.first() {
        let tc = tcth >> 4;
        let th = (tcth & 15) as usize;
        if tc > 1 || th > 3 {
            return err(format!("Huffman table class {tc} / id {th} out of range"));
        }
        let Some(c) = seg.get(1..17) else {
            return err("Huffman table segment too short");
        };
        let mut counts = [0u8; 16];
        counts.copy_from_slice(c);
        let total: usize = counts.iter().map(|&c| c as usize).sum();
        if total > 256 {
            return err("Huffman table has more than 256 values");
        }
        let Some(vals) = seg.get(17..17 + total) else {
            return err("Huffman table values run past the segment");
        };
        let h = Huffman::new(&counts, vals.to_vec())?;
        if tc == 0 {
            dc[th] = Some(h);
        } else {
            ac[th] = Some(h);
        }
        seg = seg.get(17 + total..).unwrap_or(&[]);
    }
    Ok(())
}

fn parse_sof(
    seg: &[u8],
    progressive: bool,
    max_width: u32,
    max_height: u32,
) -> Result<Frame, JpegError> {
    let g = |i: usize| {
        seg.get(i)
            .copied()
            .ok_or_else(|| JpegError("frame header too short".into()))
    };
    let precision = g(0)?;
    if precision != 8 && precision != 12 {
        return err(format!(
            "sample precision {precision} bits (DCT JPEG allows 8 or 12)"
        ));
    }
    let height = u16::from_be_bytes([g(1)?, g(2)?]) as usize;
    let width = u16::from_be_bytes([g(3)?, g(4)?]) as usize;
    let nc = g(5)? as usize;
    if width == 0 || height == 0 {
        return err(format!(
            "frame size {width}×{height} (height 0 would need DNL, unsupported)"
        ));
    }
    if width as u64 > u64::from(max_width) || height as u64 > u64::from(max_height) {
        return err(format!(
            "frame size {width}×{height} exceeds the expected {max_width}×{max_height}"
        ));
    }
    if !(1..=4).contains(&nc) {
        return err(format!("{nc} components (1 to 4 allowed)"));
    }
    if (width as u64) * (height as u64) * (nc as u64) > MAX_SAMPLES {
        return err("frame too large");
    }
    let mut comps = Vec::with_capacity(nc);
    for i in 0..nc {
        let id = g(6 + 3 * i)?;
        let hv = g(7 + 3 * i)?;
        let tq = g(8 + 3 * i)? as usize;
        let (h, v) = ((hv >> 4) as usize, (hv & 15) as usize);
        if !(1..=4).contains(&h) || !(1..=4).contains(&v) || tq > 3 {
            return err(format!(
                "component {id}: sampling {h}×{v} or table {tq} out of range"
            ));
        }
        comps.push(Component {
            id,
            h,
            v,
            tq,
            bw: 0,
            bh: 0,
            bw_used: 0,
            bh_used: 0,
            coefs: Vec::new(),
            dc_pred: 0,
        });
    }
    let hmax = comps.iter().map(|c| c.h).max().unwrap_or(1);
    let vmax = comps.iter().map(|c| c.v).max().unwrap_or(1);
    let mcux = width.div_ceil(8 * hmax);
    let mcuy = height.div_ceil(8 * vmax);
    for c in &mut comps {
        c.bw = mcux * c.h;
        c.bh = mcuy * c.v;
        c.bw_used = (width * c.h).div_ceil(hmax).div_ceil(8);
        c.bh_used = (height * c.v).div_ceil(vmax).div_ceil(8);
        c.coefs = vec![0; c.bw * c.bh * 64];
    }
    Ok(Frame {
        progressive,
        precision,
        width,
        height,
        hmax,
        vmax,
        mcux,
        mcuy,
        comps,
    })
}

fn parse_sos(seg: &[u8], f: &Frame) -> Result<Scan, JpegError> {
    let g = |i: usize| {
        seg.get(i)
            .copied()
            .ok_or_else(|| JpegError("scan header too short".into()))
    };
    let ns = g(0)? as usize;
    if !(1..=4).contains(&ns) {
        return err(format!("scan with {ns} components"));
    }
    let mut comps = Vec::with_capacity(ns);
    for i in 0..ns {
        let id = g(1 + 2 * i)?;
        let t = g(2 + 2 * i)?;
        let Some(ci) = f.comps.iter().position(|c| c.id == id) else {
            return err(format!("scan names component {id}, absent from the frame"));
        };
        let (td, ta) = ((t >> 4) as usize, (t & 15) as usize);
        if td > 3 || ta > 3 {
            return err("scan Huffman table id out of range");
        }
        comps.push((ci, td, ta));
    }
    let ss = g(1 + 2 * ns)? as usize;
    let se = g(2 + 2 * ns)? as usize;
    let a = g(3 + 2 * ns)?;
    let (ah, al) = (u32::from(a >> 4), u32::from(a & 15));
    if f.progressive {
        if ss > se || se > 63 || (ss == 0 && se != 0) || (ss > 0 && ns != 1) || al > 13 || ah > 13 {
            return err(format!(
                "invalid progressive scan parameters Ss={ss} Se={se} Ah={ah} Al={al}"
            ));
        }
    } else if ss != 0 || se != 63 || a != 0 {
        // Sequential: parameters are fixed; tolerate odd values by using the full band.
        tracing::debug!("sequential scan with Ss={ss} Se={se} A={a}: ignored");
        return Ok(Scan {
            comps,
            ss: 0,
            se: 63,
            ah: 0,
            al: 0,
        });
    }
    Ok(Scan {
        comps,
        ss,
        se,
        ah,
        al,
    })
}

fn decode_scan(
    f: &mut Frame,
    s: &Scan,
    dc: &[Option<Huffman>; 4],
    ac: &[Option<Huffman>; 4],
    restart_interval: usize,
    bits: &mut Bits<'_>,
) -> Result<(), JpegError> {
    let need_dc = !f.progressive || (s.ss == 0 && s.ah == 0);
    let need_ac = !f.progressive || s.ss > 0;
    let mut tables: Vec<(Option<&Huffman>, Option<&Huffman>)> = Vec::new();
    for &(ci, td, ta) in &s.comps {
        let d = dc.get(td).and_then(|t| t.as_ref());
        let a = ac.get(ta).and_then(|t| t.as_ref());
        if (need_dc && d.is_none()) || (need_ac && a.is_none()) {
            return err(format!(
                "scan uses a Huffman table that was not defined (component {ci})"
            ));
        }
        tables.push((d, a));
    }
    for c in &mut f.comps {
        c.dc_pred = 0;
    }
    let single = s.comps.len() == 1;
    let (units_x, units_y) = match s.comps.first() {
        Some(&(ci, _, _)) if single => {
            let c = f
                .comps
                .get(ci)
                .ok_or_else(|| JpegError("component index".into()))?;
            (c.bw_used, c.bh_used)
        }
        _ => (f.mcux, f.mcuy),
    };
    let total = units_x * units_y;
    let mut eobrun: u32 = 0;
    let mut rst = 0u8;
    let progressive = f.progressive;
    for mcu in 0..total {
        if restart_interval > 0 && mcu > 0 && mcu % restart_interval == 0 {
            bits.restart(rst)?;
            rst = (rst + 1) & 7;
            eobrun = 0;
            for c in &mut f.comps {
                c.dc_pred = 0;
            }
        }
        let (mx, my) = (mcu % units_x, mcu / units_x);
        for (k, &(ci, _, _)) in s.comps.iter().enumerate() {
            let (dt, at) = tables.get(k).copied().unwrap_or((None, None));
            let c = f
                .comps
                .get_mut(ci)
                .ok_or_else(|| JpegError("component index".into()))?;
            let (nh, nv) = if single { (1, 1) } else { (c.h, c.v) };
            for by in 0..nv {
                for bx in 0..nh {
                    let (x, y) = if single {
                        (mx, my)
                    } else {
                        (mx * c.h + bx, my * c.v + by)
                    };
                    let off = (y * c.bw + x) * 64;
                    let mut pred = c.dc_pred;
                    let Some(blk) = c.coefs.get_mut(off..off + 64) else {
                        return err("block outside the component");
                    };
                    if !progressive {
                        decode_sequential(bits, blk, dt, at, &mut pred)?;
                    } else if s.ss == 0 {
                        if s.ah == 0 {
                            let t = dt.ok_or_else(|| JpegError("missing DC table".into()))?;
                            let sz = bits.decode(t)?;
                            pred = pred.wrapping_add(bits.receive_extend(sz)?);
                            if let Some(b0) = blk.first_mut() {
                                *b0 = pred.wrapping_shl(s.al);
                            }
                        } else if bits.bit()?
                            && let Some(b0) = blk.first_mut()
                        {
                            *b0 |= 1 << s.al;
                        }
                    } else if s.ah == 0 {
                        let t = at.ok_or_else(|| JpegError("missing AC table".into()))?;
                        ac_first(bits, blk, t, s, &mut eobrun)?;
                    } else {
                        let t = at.ok_or_else(|| JpegError("missing AC table".into()))?;
                        ac_refine(bits, blk, t, s, &mut eobrun)?;
                    }
                    c.dc_pred = pred;
                }
            }
        }
    }
    Ok(())
}

fn decode_sequential(
    bits: &mut Bits<'_>,
    blk: &mut [i32],
    dt: Option<&Huffman>,
    at: Option<&Huffman>,
    pred: &mut i32,
) -> Result<(), JpegError> {
    let (Some(dt), Some(at)) = (dt, at) else {
        return err("missing Huffman table");
    };
    let t = bits.decode(dt)?;
    *pred = pred.wrapping_add(bits.receive_extend(t)?);
    if let Some(b0) = blk.first_mut() {
        *b0 = *pred;
    }
    let mut k = 1usize;
    while k < 64 {
        let rs = bits.decode(at)?;
        let (r, s) = ((rs >> 4) as usize, rs & 15);
        if s == 0 {
            if r == 15 {
                k += 16;
                continue;
            }
            break;
        }
        k += r;
        let Some(&z) = ZIGZAG.get(k) else {
            return err("AC coefficient run past the end of the block");
        };
        let v = bits.receive_extend(s)?;
        if let Some(slot) = blk.get_mut(z) {
            *slot = v;
        }
        k += 1;
    }
    Ok(())
}

fn ac_first(
    bits: &mut Bits<'_>,
    blk: &mut [i32],
    t: &Huffman,
    s: &Scan,
    eobrun: &mut u32,
) -> Result<(), JpegError> {
    if *eobrun > 0 {
        *eobrun -= 1;
        return Ok(());
    }
    let mut k = s.ss;
    while k <= s.se {
        let rs = bits.decode(t)?;
        let (r, sz) = ((rs >> 4) as u32, rs & 15);
        if sz == 0 {
            if r < 15 {
                *eobrun = (1u32 << r) - 1 + bits.bits(r)?;
                break;
            }
            k += 16;
            continue;
        }
        k += r as usize;
        if k > s.se {
            return err("AC coefficient run past the spectral band");
        }
        let Some(&z) = ZIGZAG.get(k) else {
            return err("AC index out of range");
        };
        let v = bits.receive_extend(sz)?;
        if let Some(slot) = blk.get_mut(z) {
            *slot = v.wrapping_shl(s.al);
        }
        k += 1;
    }
    Ok(())
}

fn ac_refine(
    bits: &mut Bits<'_>,
    blk: &mut [i32],
    t: &Huffman,
    s: &Scan,
    eobrun: &mut u32,
) -> Result<(), JpegError> {
    let p1: i32 = 1 << s.al;
    let m1: i32 = -p1;
    let mut k = s.ss;
    // Refine one already-nonzero coefficient with a correction bit.
    fn refine(bits: &mut Bits<'_>, c: &mut i32, p1: i32, m1: i32) -> Result<(), JpegError> {
        if bits.bit()? && (*c & p1) == 0 {
            *c += if *c >= 0 { p1 } else { m1 };
        }
        Ok(())
    }
    if *eobrun == 0 {
        while k <= s.se {
            let rs = bits.decode(t)?;
            let (mut r, sz) = ((rs >> 4) as i32, rs & 15);
            let mut value = 0i32;
            if sz != 0 {
                if sz != 1 {
                    return err("refinement scan with a coefficient magnitude other than 1");
                }
                value = if bits.bit()? { p1 } else { m1 };
            } else if r != 15 {
                *eobrun = (1u32 << r) + bits.bits(r as u32)?;
                break;
            }
            while k <= s.se {
                let Some(&z) = ZIGZAG.get(k) else {
                    return err("AC index out of range");
                };
                let Some(c) = blk.get_mut(z) else {
                    return err("AC index out of range");
                };
                if *c != 0 {
                    refine(bits, c, p1, m1)?;
                } else {
                    if r == 0 {
                        break;
                    }
                    r -= 1;
                }
                k += 1;
            }
            if value != 0 {
                let Some(&z) = ZIGZAG.get(k) else {
                    return err("new coefficient past the spectral band");
                };
                if k > s.se {
                    return err("new coefficient past the spectral band");
                }
                if let Some(c) = blk.get_mut(z) {
                    *c = value;
                }
            }
            k += 1;
        }
    }
    if *eobrun > 0 {
        while k <= s.se {
            let Some(&z) = ZIGZAG.get(k) else {
                return err("AC index out of range");
            };
            if let Some(c) = blk.get_mut(z)
                && *c != 0
            {
                refine(bits, c, p1, m1)?;
            }
            k += 1;
        }
        *eobrun -= 1;
    }
    Ok(())
}

/// Dequantise, inverse-DCT, level-shift, clamp, crop and interleave.
fn finish(f: &Frame, qt: &[Option<[u16; 64]>; 4]) -> Result<Decoded, JpegError> {
    // cos table: c[x][u] = C(u)/2 · cos((2x+1)uπ/16)
    let mut cos = [[0f32; 8]; 8];
    for (x, row) in cos.iter_mut().enumerate() {
        for (u, v) in row.iter_mut().enumerate() {
            let cu = if u == 0 {
                std::f64::consts::FRAC_1_SQRT_2
            } else {
                1.0
            };
            *v = (cu / 2.0 * (((2 * x + 1) * u) as f64 * std::f64::consts::PI / 16.0).cos()) as f32;
        }
    }
    let shift = (1i32 << (f.precision - 1)) as f32;
    let maxv = ((1i32 << f.precision) - 1) as f32;
    let nc = f.comps.len();
    let mut out = vec![0u16; f.width * f.height * nc];
    for (ci, c) in f.comps.iter().enumerate() {
        let Some(q) = qt.get(c.tq).and_then(|t| t.as_ref()) else {
            return err(format!(
                "component {} uses quantisation table {} that was not defined",
                c.id, c.tq
            ));
        };
        let pw = c.bw * 8;
        let ph = c.bh * 8;
        let mut plane = vec![0u16; pw * ph];
        let mut tmp = [0f32; 64];
        for by in 0..c.bh {
            for bx in 0..c.bw {
                let off = (by * c.bw + bx) * 64;
                let Some(blk) = c.coefs.get(off..off + 64) else {
                    continue;
                };
                let mut deq = [0f32; 64];
                for ((d, &v), &qv) in deq.iter_mut().zip(blk).zip(q.iter()) {
                    *d = v as f32 * f32::from(qv);
                }
                // Rows: tmp[v][x] = Σ_u deq[v][u] c[x][u]
                for (drow, trow) in deq.chunks_exact(8).zip(tmp.chunks_exact_mut(8)) {
                    for (t, cx) in trow.iter_mut().zip(&cos) {
                        *t = drow.iter().zip(cx).map(|(a, b)| a * b).sum();
                    }
                }
                // Columns: out[y][x] = Σ_v tmp[v][x] c[y][v]
                for (y, cy) in cos.iter().enumerate() {
                    for x in 0..8 {
                        let s: f32 = cy
                            .iter()
                            .enumerate()
                            .map(|(v, c)| tmp.get(v * 8 + x).copied().unwrap_or(0.0) * c)
                            .sum();
                        let val = (s + shift).round().clamp(0.0, maxv) as u16;
                        if let Some(px) = plane.get_mut((by * 8 + y) * pw + bx * 8 + x) {
                            *px = val;
                        }
                    }
                }
            }
        }
        // Replicate subsampled components up to full resolution.
        let (sx, sy) = (f.hmax / c.h, f.vmax / c.v);
        for y in 0..f.height {
            for x in 0..f.width {
                let v = plane.get((y / sy) * pw + x / sx).copied().unwrap_or(0);
                if let Some(o) = out.get_mut((y * f.width + x) * nc + ci) {
                    *o = v;
                }
            }
        }
    }
    Ok(Decoded {
        width: f.width as u32,
        height: f.height as u32,
        components: nc,
        precision: f.precision,
        samples: out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[allow(dead_code)]
    mod fixtures {
        include!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/testsupport/fixtures.rs"
        ));
    }
    use fixtures::{FILES, codestream};

    fn data_dir() -> Option<PathBuf> {
        fixtures::shared_data(env!("CARGO_MANIFEST_DIR"))
    }

    #[test]
    fn frame_header_is_found_and_sizes_are_checked() {
        let Some(d) = data_dir() else { return };
        for name in &FILES[..3] {
            let cs = codestream(&d.join("transfer-syntaxes").join(name));
            let (m, p) = sof_info(&cs).expect("SOF");
            assert_eq!(p, 12);
            assert!(matches!(m, 0xC1 | 0xC2), "{m:#x}");
            let t0 = std::time::Instant::now();
            let img = decode(&cs, 512, 512).expect("decode");
            eprintln!(
                "{name}: 512×512 decoded in {:.1} ms",
                t0.elapsed().as_secs_f64() * 1e3
            );
            assert_eq!(
                (img.width, img.height, img.components, img.precision),
                (512, 512, 1, 12)
            );
            assert!(img.samples.iter().all(|&s| s < 4096));
            // A frame larger than the DICOM header claims is refused before allocating.
            assert!(decode(&cs, 256, 512).is_err());
        }
    }

    #[test]
    fn truncated_streams_are_errors() {
        let Some(d) = data_dir() else { return };
        for name in &FILES[..3] {
            let cs = codestream(&d.join("transfer-syntaxes").join(name));
            for frac in [0.1, 0.5, 0.9] {
                let cut = (cs.len() as f64 * frac) as usize;
                let e = decode(&cs[..cut], 512, 512);
                assert!(e.is_err(), "{name} cut at {cut} of {} decoded", cs.len());
            }
            assert!(decode(&cs[..1], 512, 512).is_err());
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode(&[], 512, 512).is_err());
        assert!(decode(b"not a jpeg at all", 512, 512).is_err());
        let mut x: u32 = 12345;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x
        };
        for _ in 0..200 {
            let mut g: Vec<u8> = (0..600).map(|_| (next() & 0xFF) as u8).collect();
            g[0] = 0xFF;
            g[1] = 0xD8;
            assert!(decode(&g, 512, 512).is_err());
        }
        // Corrupted real streams: any outcome but a panic or a hang.
        let Some(d) = data_dir() else { return };
        for name in &FILES[..3] {
            let cs = codestream(&d.join("transfer-syntaxes").join(name));
            for _ in 0..60 {
                let mut c = cs.clone();
                let nflip = 1 + next() % 8;
                for _ in 0..nflip {
                    let i = if next() % 2 == 0 {
                        next() as usize % 700
                    } else {
                        next() as usize % c.len()
                    };
                    c[i] = (next() & 0xFF) as u8;
                }
                let _ = decode(&c, 512, 512);
            }
        }
    }
}

#[cfg(test)]
mod synthetic {
    use super::*;

    #[test]
    fn frames_are_grouped_by_the_offset_table() {
        let frags: [&[u8]; 4] = [&[1, 2], &[3], &[4, 5, 6, 7], &[8]];
        // Items take 10, 9, 12, 9 bytes: frame 0 = items 0-1, frame 1 = items 2-3.
        let bot = [0u32, 19];
        assert_eq!(frame_by_offsets(&frags, &bot, 0), Some(vec![1, 2, 3]));
        assert_eq!(frame_by_offsets(&frags, &bot, 1), Some(vec![4, 5, 6, 7, 8]));
        assert_eq!(frame_by_offsets(&frags, &bot, 2), None);
        assert_eq!(frame_by_offsets(&frags, &[0, 5000], 1), None);
    }

    /// A minimal baseline-extended encoder for flat 8×8 blocks (DC only): 12-bit, 16-bit
    /// quantisation table (Pq = 1), restart interval `ri` with RSTn markers, byte stuffing.
    fn encode_flat(width: u16, height: u16, dcs: &[i32], q0: u16, ri: u16) -> Vec<u8> {
        let mut o = vec![0xFF, 0xD8];
        // DQT, Pq = 1, table 0: q0 for DC, 1 elsewhere.
        o.extend_from_slice(&[0xFF, 0xDB, 0, 2 + 1 + 128, 0x10]);
        o.extend_from_slice(&q0.to_be_bytes());
        for _ in 1..64 {
            o.extend_from_slice(&[0, 1]);
        }
        // SOF1: 12-bit, one component, 1×1, table 0.
        o.extend_from_slice(&[0xFF, 0xC1, 0, 11, 12]);
        o.extend_from_slice(&height.to_be_bytes());
        o.extend_from_slice(&width.to_be_bytes());
        o.extend_from_slice(&[1, 1, 0x11, 0]);
        // DHT DC 0: categories 0..=15 all 4-bit codes 0000..1111 (1111 is all ones: use 0..=14).
        o.extend_from_slice(&[0xFF, 0xC4, 0, 2 + 17 + 15, 0x00]);
        let mut counts = [0u8; 16];
        counts[3] = 15;
        o.extend_from_slice(&counts);
        o.extend((0..15u8).collect::<Vec<_>>());
        // DHT AC 0: only EOB, code "0".
        o.extend_from_slice(&[0xFF, 0xC4, 0, 2 + 17 + 1, 0x10, 1]);
        o.extend_from_slice(&[0; 15]);
        o.push(0x00);
        if ri > 0 {
            o.extend_from_slice(&[0xFF, 0xDD, 0, 4]);
            o.extend_from_slice(&ri.to_be_bytes());
        }
        o.extend_from_slice(&[0xFF, 0xDA, 0, 8, 1, 1, 0x00, 0, 63, 0]);
        let mut acc: u64 = 0;
        let mut n = 0u32;
        let mut out: Vec<u8> = Vec::new();
        let put = |acc: &mut u64, n: &mut u32, v: u32, k: u32, out: &mut Vec<u8>| {
            *acc = (*acc << k) | u64::from(v);
            *n += k;
            while *n >= 8 {
                let b = (*acc >> (*n - 8)) as u8;
                out.push(b);
                if b == 0xFF {
                    out.push(0);
                }
                *n -= 8;
            }
        };
        let mut pred = 0i32;
        for (i, &d) in dcs.iter().enumerate() {
            if ri > 0 && i > 0 && i % ri as usize == 0 {
                if n > 0 {
                    let pad = 8 - n;
                    put(&mut acc, &mut n, (1 << pad) - 1, pad, &mut out);
                }
                out.extend_from_slice(&[0xFF, 0xD0 + ((i / ri as usize - 1) % 8) as u8]);
                pred = 0;
            }
            let diff = d - pred;
            pred = d;
            let cat = 32 - diff.unsigned_abs().leading_zeros();
            put(&mut acc, &mut n, cat, 4, &mut out);
            if cat > 0 {
                let bits = if diff < 0 {
                    (diff - 1) as u32 & ((1 << cat) - 1)
                } else {
                    diff as u32
                };
                put(&mut acc, &mut n, bits, cat, &mut out);
            }
            put(&mut acc, &mut n, 0, 1, &mut out); // EOB
        }
        if n > 0 {
            let pad = 8 - n;
            put(&mut acc, &mut n, (1 << pad) - 1, pad, &mut out);
        }
        o.extend_from_slice(&out);
        o.extend_from_slice(&[0xFF, 0xD9]);
        o
    }

    #[test]
    fn restart_intervals_16_bit_tables_and_stuffing_decode_exactly() {
        // 3×2 blocks, the last column and row cropped (20×13 pixels).
        let dcs = [-7, 0, 7, 3, -1, 5];
        for ri in [0u16, 1, 2, 4] {
            let cs = encode_flat(20, 13, &dcs, 256, ri);
            let img = decode(&cs, 20, 13).expect("decode");
            assert_eq!((img.width, img.height, img.precision), (20, 13, 12));
            for y in 0..13usize {
                for x in 0..20usize {
                    let d = dcs[(y / 8) * 3 + x / 8];
                    // DC-only IDCT: F(0,0)·q0 / 8, level shift 2048.
                    let want = (2048 + d * 256 / 8) as u16;
                    assert_eq!(img.samples[y * 20 + x], want, "ri {ri} at {x},{y}");
                }
            }
            // Dropping the restart markers breaks decoding instead of silently shifting blocks.
            if ri == 1 {
                let mut bad = cs.clone();
                if let Some(i) = bad.windows(2).position(|w| w == [0xFF, 0xD0]) {
                    bad[i + 1] = 0xC8; // JPG marker: not a restart
                    assert!(decode(&bad, 20, 13).is_err());
                }
            }
        }
        // A 0xFF data byte (stuffed as FF 00) inside the scan.
        let cs = encode_flat(16, 8, &[0, 127], 16, 0);
        assert!(cs.windows(2).any(|w| w == [0xFF, 0x00]));
        let img = decode(&cs, 16, 8).expect("decode");
        for y in 0..8usize {
            assert_eq!(&img.samples[y * 16..y * 16 + 8], &[2048u16; 8]);
            assert_eq!(&img.samples[y * 16 + 8..y * 16 + 16], &[2048 + 127 * 2; 8]);
        }
        // Clamping: a DC far beyond the 12-bit range saturates at 4095.
        let cs = encode_flat(8, 8, &[400], 256, 0);
        let img = decode(&cs, 8, 8).expect("decode");
        assert!(img.samples.iter().all(|&s| s == 4095));
    }
}
