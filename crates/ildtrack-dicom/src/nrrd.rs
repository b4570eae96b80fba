//! NRRD input and output (`.nrrd`, and `.nhdr` with a detached data file): the format of
//! 3D Slicer, the Chest Imaging Platform and the Lung CT Analyzer.
//!
//! Reading (format spec: <https://teem.sourceforge.net/nrrd/format.html>, NRRD0001–NRRD0005):
//! - a 3-D (or 2-D: one slice) volume of a signed/unsigned 8/16/32/64-bit integer, float or
//!   double type, `raw` or `gzip` encoded, either endianness, attached (after the header's blank
//!   line) or in one detached `data file` (relative to the header's folder), with `byte skip`
//!   (including −1 for raw: the data are the file's last bytes) and `line skip`;
//! - geometry from `space` + `space directions` + `space origin` (the centre of the first
//!   voxel): `left-posterior-superior` and `scanner-xyz` are taken as DICOM LPS as they are,
//!   `right-anterior-superior` and `left-anterior-superior` are flipped into LPS; without a space,
//!   `spacings` and LPS axes are assumed, with a warning (`nrrd-no-orientation`);
//! - voxel values are taken as HU (NRRD has no rescale), through the same conversion as NIfTI
//!   ([`crate::hu`]): below −1500 or not finite → outside the field of view.
//!
//! What is not supported is refused with an error naming the file: other encodings (bzip2,
//! ascii, hex), data split over several files, 4-D and vector data, block types, other spaces.
//! Every size in the header is checked (overflow, [`MAX_VOXELS`], bytes present) before the
//! voxel buffer is allocated, and the header itself is read with a size bound.
//!
//! Writing: `u8` label maps as gzip NRRD in LPS ([`write_u8`]) and a 3D Slicer segmentation
//! ([`write_segmentation`], `.seg.nrrd`: one layer per label map, segments named and coloured),
//! each through [`ildtrack_fs::write_atomic_with`].

use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};

use ildtrack_volume::{Geometry, Identity, ScanMeta, Volume, Warning};
use ndarray::Array3;

use crate::LoadError;
use crate::hu::Scalar;
use crate::kernel::KernelClass;
use crate::nifti::{WRITE_CHUNK_BYTES, write_u8_voxels};
use crate::series::{LoadedSeries, Scan, SeriesEntry};

/// Largest NRRD volume we read, in voxels (2^31, as for NIfTI).
pub const MAX_VOXELS: u64 = 1 << 31;

/// Largest header we read. Real headers are a few hundred bytes to a few kB (Slicer's
/// segmentations carry some key/value lines per segment); a file without a blank line in its
/// first MiB is not a NRRD we can use.
const MAX_HEADER_BYTES: u64 = 1 << 20;

/// `.nrrd` or `.nhdr` (case-insensitive; `.seg.nrrd` included).
pub fn is_nrrd_path(p: &Path) -> bool {
    let n = p
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    n.ends_with(".nrrd") || n.ends_with(".nhdr")
}

fn bad(path: &Path, reason: impl Into<String>) -> LoadError {
    LoadError::Nrrd {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn io(path: &Path, e: std::io::Error) -> LoadError {
    match e.kind() {
        std::io::ErrorKind::NotFound => LoadError::NotFound {
            path: path.to_path_buf(),
        },
        std::io::ErrorKind::UnexpectedEof => LoadError::Truncated {
            path: path.to_path_buf(),
            detail: e.to_string(),
        },
        _ => LoadError::Io {
            path: path.to_path_buf(),
            source: e,
        },
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Raw,
    Gzip,
}

/// A parsed header: what the reader needs, already checked.
#[derive(Debug, Clone)]
struct Header {
    /// Voxels along x, y, z (NRRD axes 0, 1, 2; z = 1 for a 2-D file).
    dims: [u64; 3],
    ty: Scalar,
    type_name: String,
    little_endian: bool,
    encoding: Encoding,
    /// The detached data file, resolved against the header's folder; `None`: attached.
    data_file: Option<PathBuf>,
    /// Byte offset of attached data in the header's file.
    data_offset: u64,
    /// `None` = −1: the data are the last bytes of the (raw) data file.
    byte_skip: Option<u64>,
    line_skip: u64,
    geometry: Geometry,
    warnings: Vec<Warning>,
    content: Option<String>,
}

impl Header {
    fn voxels(&self) -> u64 {
        self.dims[0] * self.dims[1] * self.dims[2]
    }
}

fn scalar_of(t: &str) -> Option<Scalar> {
    // Every spelling the format spec allows for each type.
    Some(match t {
        "signed char" | "int8" | "int8_t" => Scalar::I8,
        "uchar" | "unsigned char" | "uint8" | "uint8_t" => Scalar::U8,
        "short" | "short int" | "signed short" | "signed short int" | "int16" | "int16_t" => {
            Scalar::I16
        }
        "ushort" | "unsigned short" | "unsigned short int" | "uint16" | "uint16_t" => Scalar::U16,
        "int" | "signed int" | "int32" | "int32_t" => Scalar::I32,
        "uint" | "unsigned int" | "uint32" | "uint32_t" => Scalar::U32,
        "longlong"
        | "long long"
        | "long long int"
        | "signed long long"
        | "signed long long int"
        | "int64"
        | "int64_t" => Scalar::I64,
        "ulonglong" | "unsigned long long" | "unsigned long long int" | "uint64" | "uint64_t" => {
            Scalar::U64
        }
        "float" => Scalar::F32,
        "double" => Scalar::F64,
        _ => return None,
    })
}

/// `(a,b,c)` → a 3-vector; `none` → `None`.
fn parse_vector(path: &Path, field: &str, s: &str) -> Result<Option<[f64; 3]>, LoadError> {
    let s = s.trim();
    if s == "none" {
        return Ok(None);
    }
    let inner = s
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| {
            bad(
                path,
                format!("{field}: \"{s}\" is not a vector \"(x,y,z)\""),
            )
        })?;
    let v: Vec<f64> = inner
        .split(',')
        .map(|c| c.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .map_err(|_| {
            bad(
                path,
                format!("{field}: \"{s}\" holds a value that is not a number"),
            )
        })?;
    match v[..] {
        [a, b, c] if v.iter().all(|x| x.is_finite()) => Ok(Some([a, b, c])),
        [_, _, _] => Err(bad(path, format!("{field}: \"{s}\" is not finite"))),
        _ => Err(bad(
            path,
            format!(
                "{field}: \"{s}\" has {} components; only 3-D space is supported",
                v.len()
            ),
        )),
    }
}

/// Space directions: one `(x,y,z)` or `none` per axis, vectors without spaces inside (the spec
/// writes them so), but tolerate spaces after commas as some writers add them.
fn split_vectors(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut depth = 0;
    for ch in s.chars() {
        match ch {
            '(' => {
                depth += 1;
                cur.push(ch);
            }
            ')' => {
                depth -= 1;
                cur.push(ch);
            }
            c if c.is_whitespace() && depth == 0 => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Sign flips taking a space's coordinates to LPS, by name (full or abbreviated).
fn to_lps_signs(space: &str) -> Option<[f64; 3]> {
    Some(match space {
        // scanner-xyz is DICOM's patient coordinate system as the scanner reports it: LPS.
        "left-posterior-superior" | "lps" | "scanner-xyz" => [1.0, 1.0, 1.0],
        "right-anterior-superior" | "ras" => [-1.0, -1.0, 1.0],
        "left-anterior-superior" | "las" => [1.0, -1.0, 1.0],
        _ => return None,
    })
}

/// Parse the header text (everything up to, not including, the blank line). `data_offset` is
/// where attached data begin in the header's file; `path` is the header's file.
fn parse_header(path: &Path, text: &str, data_offset: u64) -> Result<Header, LoadError> {
    let mut lines = text.lines();
    let magic = lines.next().unwrap_or("").trim_end();
    match magic.strip_prefix("NRRD000") {
        Some("1" | "2" | "3" | "4" | "5") => {}
        _ if magic.starts_with("NRRD") => {
            return Err(bad(
                path,
                format!("\"{magic}\": only NRRD0001 to NRRD0005 are known"),
            ));
        }
        _ => {
            return Err(bad(
                path,
                "does not start with \"NRRD000x\": not a NRRD file",
            ));
        }
    }
    let mut fields: std::collections::BTreeMap<String, String> = Default::default();
    let mut content = None;
    for line in lines {
        let line = line.trim_end_matches('\r');
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        // key:=value pairs (Slicer's segment metadata, ITK's meta data) carry nothing we need.
        // Field names hold no ':', so a ':' followed by '=' is a key/value pair.
        let Some((k, v)) = line.split_once(':') else {
            return Err(bad(
                path,
                format!("header line \"{line}\" is not \"field: value\""),
            ));
        };
        if v.starts_with('=') {
            continue;
        }
        // The spec spells a field with or without its inner spaces ("data file" / "datafile").
        let key: String = k
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_ascii_lowercase();
        let v = v.trim().to_string();
        if key == "content" {
            content = Some(v.clone());
        }
        if fields.insert(key.clone(), v).is_some() {
            return Err(bad(path, format!("field \"{k}\" appears twice")));
        }
    }
    let get = |k: &str| fields.get(k).map(String::as_str);
    let need = |k: &str, name: &str| {
        get(k).ok_or_else(|| bad(path, format!("required field \"{name}\" is missing")))
    };
    let type_name = need("type", "type")?.to_ascii_lowercase();
    let ty = match scalar_of(&type_name) {
        Some(t) => t,
        None if type_name == "block" => {
            return Err(bad(path, "type \"block\" is not a supported scalar type"));
        }
        None => {
            return Err(bad(
                path,
                format!("type \"{type_name}\" is not a supported scalar type"),
            ));
        }
    };
    let dimension: usize = need("dimension", "dimension")?
        .parse()
        .map_err(|_| bad(path, "dimension is not a whole number"))?;
    if !(2..=3).contains(&dimension) {
        return Err(bad(
            path,
            format!(
                "dimension {dimension}: only 3-D volumes (or a 2-D slice) are supported, not vector, time or segmentation data"
            ),
        ));
    }
    let sizes: Vec<u64> = need("sizes", "sizes")?
        .split_whitespace()
        .map(|s| s.parse::<u64>())
        .collect::<Result<_, _>>()
        .map_err(|_| bad(path, "sizes holds a value that is not a whole number"))?;
    if sizes.len() != dimension {
        return Err(bad(
            path,
            format!("sizes has {} values, dimension is {dimension}", sizes.len()),
        ));
    }
    if sizes.contains(&0) {
        return Err(bad(path, "a size is 0"));
    }
    let mut dims = [1u64; 3];
    dims[..dimension].copy_from_slice(&sizes);
    dims.iter()
        .try_fold(1u64, |a, &d| a.checked_mul(d))
        .filter(|&n| n <= MAX_VOXELS)
        .ok_or_else(|| LoadError::TooLarge {
            path: path.to_path_buf(),
            detail: format!("sizes {sizes:?} exceed {MAX_VOXELS} voxels"),
        })?;
    // A colour, vector or list axis would be read as a spatial one: refuse it.
    if let Some(kinds) = get("kinds") {
        let kinds: Vec<&str> = kinds.split_whitespace().collect();
        if kinds.len() != dimension {
            return Err(bad(
                path,
                format!("kinds has {} values, dimension is {dimension}", kinds.len()),
            ));
        }
        if let Some((axis, k)) = kinds.iter().enumerate().find(|(_, k)| {
            !matches!(
                k.to_ascii_lowercase().as_str(),
                "domain" | "space" | "???" | "none"
            )
        }) {
            return Err(bad(
                path,
                format!(
                    "kinds: axis {axis} is \"{k}\", not a spatial axis (a CT volume has only domain axes)"
                ),
            ));
        }
    }
    let encoding = match need("encoding", "encoding")?.to_ascii_lowercase().as_str() {
        "raw" => Encoding::Raw,
        "gzip" | "gz" => Encoding::Gzip,
        other => {
            return Err(bad(
                path,
                format!("encoding \"{other}\" is not supported (raw and gzip are)"),
            ));
        }
    };
    let little_endian = match get("endian").map(str::to_ascii_lowercase).as_deref() {
        Some("little") => true,
        Some("big") => false,
        Some(other) => {
            return Err(bad(
                path,
                format!("endian \"{other}\" is neither little nor big"),
            ));
        }
        None if ty.bytes() == 1 => true,
        None => {
            return Err(bad(
                path,
                format!(
                    "field \"endian\" is missing for the {}-byte type \"{type_name}\"",
                    ty.bytes()
                ),
            ));
        }
    };
    let byte_skip = match get("byteskip") {
        None => Some(0),
        Some("-1") if encoding == Encoding::Raw => None,
        Some("-1") => {
            return Err(bad(path, "byte skip -1 is only allowed with raw encoding"));
        }
        Some(s) => Some(
            s.parse::<u64>()
                .map_err(|_| bad(path, format!("byte skip \"{s}\" is not -1 or a count")))?,
        ),
    };
    let line_skip = match get("lineskip") {
        None => 0,
        Some(s) => s
            .parse::<u64>()
            .map_err(|_| bad(path, format!("line skip \"{s}\" is not a count")))?,
    };
    let data_file = match get("datafile") {
        None => None,
        Some(f) => {
            // "LIST" and "fmt min max step [subdim]" split the data over several files.
            if f.starts_with("LIST") || f.split_whitespace().count() > 1 {
                return Err(bad(
                    path,
                    format!("data file \"{f}\": data split over several files is not supported"),
                ));
            }
            let p = Path::new(f);
            Some(if p.is_absolute() {
                p.to_path_buf()
            } else {
                path.parent().unwrap_or(Path::new(".")).join(p)
            })
        }
    };
    if data_file.is_none() && path_is_nhdr(path) {
        return Err(bad(path, "a .nhdr header needs a \"data file\" field"));
    }

    // Geometry: per-axis step vectors in LPS (x, y, z axes = NRRD axes 0, 1, 2).
    let mut warnings = Vec::new();
    let space = get("space").map(str::to_ascii_lowercase);
    let mut steps: Vec<[f64; 3]> = Vec::with_capacity(3);
    let mut origin = [0.0; 3];
    if let Some(space) = &space {
        let signs = to_lps_signs(space).ok_or_else(|| {
            bad(
                path,
                format!(
                    "space \"{space}\" is not supported (left-posterior-superior, right-anterior-superior, left-anterior-superior and scanner-xyz are)"
                ),
            )
        })?;
        if let Some(sd) = get("spacedimension")
            && sd != "3"
        {
            return Err(bad(
                path,
                format!("space dimension {sd} given with space \"{space}\""),
            ));
        }
        let dirs = get("spacedirections")
            .ok_or_else(|| bad(path, "space is given but \"space directions\" is missing"))?;
        let parts = split_vectors(dirs);
        if parts.len() != dimension {
            return Err(bad(
                path,
                format!(
                    "space directions has {} entries, dimension is {dimension}",
                    parts.len()
                ),
            ));
        }
        for (axis, p) in parts.iter().enumerate() {
            let v = parse_vector(path, "space directions", p)?.ok_or_else(|| {
                bad(
                    path,
                    format!("space directions: axis {axis} is \"none\", not a spatial axis"),
                )
            })?;
            steps.push([v[0] * signs[0], v[1] * signs[1], v[2] * signs[2]]);
        }
        if let Some(o) = get("spaceorigin") {
            let o = parse_vector(path, "space origin", o)?
                .ok_or_else(|| bad(path, "space origin is \"none\""))?;
            origin = [o[0] * signs[0], o[1] * signs[1], o[2] * signs[2]];
        }
    } else {
        if get("spacedimension").is_some() || get("spacedirections").is_some() {
            return Err(bad(
                path,
                "space directions without a named space: the patient axes are unknown",
            ));
        }
        let sp: Vec<f64> = match get("spacings") {
            Some(s) => s
                .split_whitespace()
                .map(|v| {
                    v.parse::<f64>()
                        .ok()
                        .filter(|x| x.is_finite() && *x > 0.0)
                        .unwrap_or(1.0)
                })
                .collect(),
            None => vec![1.0; dimension],
        };
        if sp.len() != dimension {
            return Err(bad(
                path,
                format!("spacings has {} values, dimension is {dimension}", sp.len()),
            ));
        }
        for (axis, s) in sp.iter().enumerate() {
            let mut v = [0.0; 3];
            v[axis] = *s;
            steps.push(v);
        }
        warnings.push(Warning::new(
            "nrrd-no-orientation",
            "no space in the NRRD header: axes assumed to be LPS with the spacings given (1 mm where none)",
        ));
    }
    if dimension == 2 {
        // One slice: its normal from the two in-plane axes, 1 mm deep unless the header says.
        let n = crate::geometry::cross(steps[0], steps[1]);
        let len = crate::geometry::norm(n);
        let t = get("thicknesses")
            .and_then(|s| s.split_whitespace().find_map(|v| v.parse::<f64>().ok()))
            .filter(|t| t.is_finite() && *t > 0.0)
            .unwrap_or(1.0);
        steps.push(if len > 0.0 {
            [n[0] / len * t, n[1] / len * t, n[2] / len * t]
        } else {
            [0.0; 3]
        });
    }
    let mut spacing = [0.0; 3];
    let mut direction = [[0.0; 3]; 3];
    // Our axes (z, y, x) = NRRD axes (2, 1, 0).
    for (ax, nrrd_axis) in [(0usize, 2usize), (1, 1), (2, 0)] {
        let v = steps[nrrd_axis];
        let n = crate::geometry::norm(v);
        if !(n.is_finite() && n > 0.0) {
            return Err(bad(
                path,
                format!("axis {nrrd_axis} has a zero or invalid step in space directions"),
            ));
        }
        spacing[ax] = n;
        direction[ax] = [v[0] / n, v[1] / n, v[2] / n];
    }
    let det = crate::geometry::dot(
        direction[0],
        crate::geometry::cross(direction[1], direction[2]),
    );
    if det.abs() < 1e-3 {
        return Err(bad(
            path,
            "space directions are parallel: the axes span no volume",
        ));
    }
    Ok(Header {
        dims,
        ty,
        type_name,
        little_endian,
        encoding,
        data_file,
        data_offset,
        byte_skip,
        line_skip,
        geometry: Geometry {
            spacing_mm: spacing,
            origin_mm: origin,
            direction,
        },
        warnings,
        content,
    })
}

fn path_is_nhdr(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("nhdr"))
}

/// Read the header of `path`: its text and the byte offset just past the blank line that ends it
/// (the file's length when it has none, as a detached header may end at EOF).
fn read_header(path: &Path) -> Result<Header, LoadError> {
    let f = std::fs::File::open(path).map_err(|e| io(path, e))?;
    if f.metadata().map(|m| m.len()).unwrap_or(0) == 0 {
        return Err(LoadError::EmptyFile {
            path: path.to_path_buf(),
        });
    }
    let mut r = std::io::BufReader::new(f).take(MAX_HEADER_BYTES);
    let mut text = String::new();
    let mut offset = 0u64;
    let mut ended = false;
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = r.read_until(b'\n', &mut line).map_err(|e| io(path, e))?;
        if n == 0 {
            break;
        }
        offset += n as u64;
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            ended = true;
            break;
        }
        if offset == n as u64 && !line.starts_with(b"NRRD") {
            return Err(bad(
                path,
                "does not start with \"NRRD000x\": not a NRRD file",
            ));
        }
        let s = std::str::from_utf8(&line)
            .map_err(|_| bad(path, "header holds bytes that are not text"))?;
        text.push_str(s);
    }
    if !ended && r.limit() == 0 {
        return Err(bad(
            path,
            format!("no blank line ends the header within its first {MAX_HEADER_BYTES} bytes"),
        ));
    }
    let h = parse_header(path, &text, offset)?;
    if !ended && h.data_file.is_none() {
        return Err(bad(
            path,
            "the header has no blank line and no data file: no voxel data",
        ));
    }
    Ok(h)
}

/// The files a NRRD volume is read from: the header's file and, when detached, the data file.
/// (The analysis cache hashes all of them.)
pub fn input_files(path: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let h = read_header(path)?;
    Ok(std::iter::once(path.to_path_buf())
        .chain(h.data_file)
        .collect())
}

/// Read a `.nrrd` / `.nhdr` CT volume as HU.
pub fn read(path: &Path) -> Result<LoadedSeries, LoadError> {
    let h = read_header(path)?;
    let n = h.voxels();
    let bpv = h.ty.bytes() as u64;
    let need = n * bpv; // ≤ 2^31 × 8: no overflow
    let data_path = h.data_file.clone().unwrap_or_else(|| path.to_path_buf());
    let f = std::fs::File::open(&data_path).map_err(|e| io(&data_path, e))?;
    let file_len = f
        .metadata()
        .map(|m| m.len())
        .map_err(|e| io(&data_path, e))?;
    let mut r = std::io::BufReader::with_capacity(1 << 20, f);
    let start = if h.data_file.is_none() {
        h.data_offset
    } else {
        0
    };
    std::io::copy(&mut (&mut r).take(start), &mut std::io::sink())
        .map_err(|e| io(&data_path, e))?;
    for k in 0..h.line_skip {
        let mut skipped = Vec::new();
        let got = (&mut r)
            .take(MAX_HEADER_BYTES)
            .read_until(b'\n', &mut skipped)
            .map_err(|e| io(&data_path, e))?;
        if got == 0 || !skipped.ends_with(b"\n") {
            return Err(LoadError::Truncated {
                path: data_path.clone(),
                detail: format!("line skip {}: only {k} lines found", h.line_skip),
            });
        }
    }
    let mut r: Box<dyn Read> = match (h.encoding, h.byte_skip) {
        // −1: the data are the last `need` bytes of the file, whatever comes before them. A file
        // shorter than that falls through to the truncation check below.
        (Encoding::Raw, None) => {
            use std::io::{Seek, SeekFrom};
            r.seek(SeekFrom::Start(file_len.saturating_sub(need).max(start)))
                .map_err(|e| io(&data_path, e))?;
            Box::new(r)
        }
        (Encoding::Raw, Some(skip)) => {
            std::io::copy(&mut (&mut r).take(skip), &mut std::io::sink())
                .map_err(|e| io(&data_path, e))?;
            Box::new(r)
        }
        (Encoding::Gzip, skip) => {
            let mut gz: Box<dyn Read> = Box::new(flate2::read::MultiGzDecoder::new(r));
            // With gzip, byte skip counts decompressed bytes (the spec).
            std::io::copy(&mut (&mut gz).take(skip.unwrap_or(0)), &mut std::io::sink())
                .map_err(|e| bad(&data_path, format!("gzip data: {e}")))?;
            gz
        }
    };
    // Grow with the bytes actually present, never trusting `need` for the allocation.
    let mut data = Vec::with_capacity(need.min(64 << 20) as usize);
    (&mut r)
        .take(need)
        .read_to_end(&mut data)
        .map_err(|e| match h.encoding {
            Encoding::Gzip => bad(&data_path, format!("gzip data: {e}")),
            Encoding::Raw => io(&data_path, e),
        })?;
    if (data.len() as u64) < need {
        return Err(LoadError::Truncated {
            path: data_path,
            detail: format!(
                "voxel data has {} bytes, {}×{}×{} voxels of type \"{}\" need {need}",
                data.len(),
                h.dims[0],
                h.dims[1],
                h.dims[2],
                h.type_name
            ),
        });
    }
    let mut out = vec![0i16; n as usize];
    let converted = crate::hu::to_hu(&data, h.ty, h.little_endian, 1.0, 0.0, &mut out);
    drop(data);
    let array = Array3::from_shape_vec(
        (h.dims[2] as usize, h.dims[1] as usize, h.dims[0] as usize),
        out,
    )
    .map_err(|e| LoadError::Internal {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })?;
    let mut warnings = h.warnings.clone();
    warnings.extend(crate::hu::warnings(converted));
    if h.dims[2] == 1 {
        warnings.push(Warning::new("single-slice", "only one slice: a 2-D image"));
    }
    let meta = ScanMeta {
        series_description: h.content.clone().filter(|c| !c.is_empty()),
        source_format: Some("nrrd".into()),
        pixel_spacing_mm: Some([h.geometry.spacing_mm[1], h.geometry.spacing_mm[2]]),
        slice_thickness_mm: Some(h.geometry.spacing_mm[0]),
        ..ScanMeta::default()
    };
    Ok(LoadedSeries {
        volume: Volume::new(array, h.geometry),
        meta,
        identity: Identity::default(),
        warnings,
    })
}

/// A one-entry [`Scan`] describing a NRRD file from its header.
pub(crate) fn scan_entry(path: &Path) -> Result<Scan, LoadError> {
    let h = read_header(path)?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("nrrd")
        .to_string();
    let entry = SeriesEntry {
        uid: name.clone(),
        stack: 0,
        description: h.content.clone(),
        modality: None,
        kernel: None,
        kernel_class: KernelClass::Unknown,
        image_type: Vec::new(),
        sop_class_uid: String::new(),
        manufacturer: None,
        study_date: None,
        series_time: None,
        acquisition_number: None,
        n_slices: h.dims[2] as usize,
        n_files: if h.data_file.is_some() { 2 } else { 1 },
        thickness_mm: Some(h.geometry.spacing_mm[0]),
        spacing_mm: Some(h.geometry.spacing_mm),
        coverage_mm: h.geometry.spacing_mm[0] * (h.dims[2].saturating_sub(1)) as f64,
        rows: h.dims[1] as u32,
        cols: h.dims[0] as u32,
        transfer_syntax: "nrrd".into(),
        transfer_syntax_name: format!(
            "NRRD {}, {}{}",
            h.type_name,
            match h.encoding {
                Encoding::Raw => "raw",
                Encoding::Gzip => "gzip",
            },
            if h.data_file.is_some() {
                ", detached data"
            } else {
                ""
            }
        ),
        orientation: crate::nifti::orientation_name(h.geometry.direction[0]).into(),
        warnings: h.warnings.clone(),
        rejected_because: None,
        slices: Vec::new(),
        identity: Identity::default(),
        meta: ScanMeta::default(),
    };
    Ok(Scan::one_volume(path, "nrrd", entry))
}

// ---------------------------------------------------------------------------------------------
// Writing

/// gzip level of written NRRD files: label maps compress well at a low level (as for NIfTI).
const GZ_LEVEL: u32 = 2;

fn vec3(v: [f64; 3]) -> String {
    // `{}` on f64 prints the shortest text that reads back to the same value.
    format!("({},{},{})", v[0], v[1], v[2])
}

/// The header lines shared by both writers: space, directions and origin in LPS, `sizes`
/// (x, y, z) after `lead` (the list axis of a multi-layer segmentation, if any).
fn geometry_lines(g: &Geometry, dims_zyx: [usize; 3], lead: Option<usize>) -> String {
    let step = |ax: usize| {
        let d = g.direction[ax];
        let s = g.spacing_mm[ax];
        [d[0] * s, d[1] * s, d[2] * s]
    };
    let [z, y, x] = dims_zyx;
    let dim = 3 + usize::from(lead.is_some());
    let sizes = match lead {
        Some(n) => format!("{n} {x} {y} {z}"),
        None => format!("{x} {y} {z}"),
    };
    let (kinds, none) = if lead.is_some() {
        ("list domain domain domain", "none ")
    } else {
        ("domain domain domain", "")
    };
    format!(
        "type: unsigned char\ndimension: {dim}\nspace: left-posterior-superior\nsizes: {sizes}\n\
         space directions: {none}{} {} {}\nkinds: {kinds}\nendian: little\nencoding: gzip\n\
         space origin: {}\n",
        vec3(step(2)),
        vec3(step(1)),
        vec3(step(0)),
        vec3(g.origin_mm),
    )
}

fn write_gz(
    path: &Path,
    header: &str,
    body: &mut dyn FnMut(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(), LoadError> {
    ildtrack_fs::write_atomic_with(path, |f| {
        let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
        w.write_all(header.as_bytes())?;
        let mut gz = flate2::write::GzEncoder::new(w, flate2::Compression::new(GZ_LEVEL));
        body(&mut gz)?;
        let mut w = gz.finish()?;
        w.flush()
    })
    .map_err(|e| LoadError::Write {
        path: path.to_path_buf(),
        source: e,
    })
}

const MAGIC: &str = "NRRD0004\n# Complete NRRD file format specification at:\n# http://teem.sourceforge.net/nrrd/format.html\n";

/// Write a `u8` volume (a label map) as gzip NRRD in LPS.
pub fn write_u8(path: &Path, vol: &Volume<u8>) -> Result<(), LoadError> {
    let header = format!(
        "{MAGIC}{}\n",
        geometry_lines(&vol.geometry, vol.dims_zyx(), None)
    );
    write_gz(path, &header, &mut |w| write_u8_voxels(w, &vol.data))
}

/// One segment of a 3D Slicer segmentation: the voxels of layer `layer` equal to `label`.
#[derive(Debug, Clone)]
pub struct Segment {
    /// Unique within the file (Slicer's segment ID).
    pub id: String,
    /// Shown in Slicer's segment list.
    pub name: String,
    /// RGB, each 0..=1.
    pub color: [f64; 3],
    pub layer: usize,
    pub label: u8,
}

/// Write a 3D Slicer segmentation (`.seg.nrrd`, "labelmap" layout): one layer per label map in
/// `layers` (all on the same grid; a 4-D file with a leading list axis when there are several,
/// so overlapping segments — a lung and its density classes — are kept), and for each segment
/// the `Segment{i}_…` keys Slicer reads: ID, Name, Color, LabelValue, Layer, Extent, Tags.
pub fn write_segmentation(
    path: &Path,
    layers: &[&Volume<u8>],
    segments: &[Segment],
) -> Result<(), LoadError> {
    let invalid = |reason: String| LoadError::WriteInvalid {
        path: path.to_path_buf(),
        reason,
    };
    let Some(first) = layers.first() else {
        return Err(invalid("a segmentation needs at least one layer".into()));
    };
    let dims = first.dims_zyx();
    if layers.iter().any(|l| l.dims_zyx() != dims) {
        return Err(invalid("the segmentation's layers differ in size".into()));
    }
    if let Some(s) = segments.iter().find(|s| s.layer >= layers.len()) {
        return Err(invalid(format!(
            "segment {} names layer {} of {}",
            s.id,
            s.layer,
            layers.len()
        )));
    }
    // Per (layer, label): voxel bounding box as [xmin, xmax, ymin, ymax, zmin, zmax].
    let mut boxes = vec![[usize::MAX, 0, usize::MAX, 0, usize::MAX, 0]; layers.len() * 256];
    for (li, layer) in layers.iter().enumerate() {
        for ((z, y, x), &v) in layer.data.indexed_iter() {
            let b = &mut boxes[li * 256 + usize::from(v)];
            b[0] = b[0].min(x);
            b[1] = b[1].max(x);
            b[2] = b[2].min(y);
            b[3] = b[3].max(y);
            b[4] = b[4].min(z);
            b[5] = b[5].max(z);
        }
    }
    let lead = (layers.len() > 1).then_some(layers.len());
    let mut header = format!("{MAGIC}{}", geometry_lines(&first.geometry, dims, lead));
    header.push_str(
        // Older Slicer reads MasterRepresentation; newer ones name it SourceRepresentation.
        "Segmentation_MasterRepresentation:=Binary labelmap\n\
         Segmentation_SourceRepresentation:=Binary labelmap\n\
         Segmentation_ContainedRepresentationNames:=Binary labelmap|\n\
         Segmentation_ReferenceImageExtentOffset:=0 0 0\n",
    );
    for (i, s) in segments.iter().enumerate() {
        let b = boxes[s.layer * 256 + usize::from(s.label)];
        // Slicer writes an empty segment's extent as "0 -1 0 -1 0 -1".
        let extent = if b[0] == usize::MAX {
            "0 -1 0 -1 0 -1".to_string()
        } else {
            format!("{} {} {} {} {} {}", b[0], b[1], b[2], b[3], b[4], b[5])
        };
        let clean = |t: &str| t.replace(['\n', '\r'], " ");
        header.push_str(&format!(
            "Segment{i}_Color:={} {} {}\nSegment{i}_ColorAutoGenerated:=0\nSegment{i}_Extent:={extent}\n\
             Segment{i}_ID:={}\nSegment{i}_LabelValue:={}\nSegment{i}_Layer:={}\nSegment{i}_Name:={}\n\
             Segment{i}_NameAutoGenerated:=0\nSegment{i}_Tags:=Segmentation.Status:completed|\n",
            s.color[0],
            s.color[1],
            s.color[2],
            clean(&s.id),
            s.label,
            s.layer,
            clean(&s.name),
        ));
    }
    header.push('\n');
    write_gz(path, &header, &mut |w| {
        if layers.len() == 1 {
            return write_u8_voxels(w, &layers[0].data);
        }
        // The list axis is the fastest: every voxel's layers side by side.
        let mut iters: Vec<_> = layers.iter().map(|l| l.data.iter()).collect();
        let mut buf = Vec::with_capacity(WRITE_CHUNK_BYTES + layers.len());
        'voxels: loop {
            for it in iters.iter_mut() {
                match it.next() {
                    Some(&v) => buf.push(v),
                    None => break 'voxels,
                }
            }
            if buf.len() >= WRITE_CHUNK_BYTES {
                w.write_all(&buf)?;
                buf.clear();
            }
        }
        w.write_all(&buf)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ildtrack-nrrd-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("mkdir");
        d
    }

    /// 3×2×2 int16 voxels -1000, -999, … in file order (x fastest).
    fn voxels_i16() -> Vec<i16> {
        (0..12).map(|k| -1000 + k as i16).collect()
    }

    fn le_bytes(v: &[i16]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    fn gz(b: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(b).expect("gzip");
        e.finish().expect("gzip")
    }

    const HEAD: &str = "NRRD0004\ntype: short\ndimension: 3\nsizes: 3 2 2\nendian: little\n";

    fn write(p: &Path, header: &str, data: &[u8]) {
        let mut b = header.as_bytes().to_vec();
        b.extend_from_slice(data);
        std::fs::write(p, b).expect("write");
    }

    fn err_of(header: &str, data: &[u8]) -> String {
        let d = tmp("bad");
        let p = d.join("bad.nrrd");
        write(&p, header, data);
        let e = read(&p).expect_err("must be refused");
        let s = e.to_string();
        assert!(s.contains("bad.nrrd"), "error names the file: {s}");
        let _ = std::fs::remove_dir_all(&d);
        s
    }

    #[test]
    fn attached_raw_ras_is_flipped_into_lps_with_voxels_in_place() {
        let d = tmp("ras");
        let p = d.join("ct.nrrd");
        write(
            &p,
            &format!(
                "{HEAD}encoding: raw\nspace: right-anterior-superior\n\
                 space directions: (0.7,0,0) (0,0.8,0) (0,0,2.5)\nspace origin: (10,20,-30)\n\
                 # a comment\nITK_InputFilterName:=NrrdImageIO\ncontent: test volume\n\n"
            ),
            &le_bytes(&voxels_i16()),
        );
        let r = read(&p).expect("read");
        let g = r.volume.geometry;
        assert_eq!(r.volume.dims_zyx(), [2, 2, 3]);
        assert_eq!(g.spacing_mm, [2.5, 0.8, 0.7]);
        assert_eq!(g.origin_mm, [-10.0, -20.0, -30.0]);
        assert_eq!(
            g.direction,
            [[0.0, 0.0, 1.0], [0.0, -1.0, 0.0], [-1.0, 0.0, 0.0]]
        );
        assert_eq!(
            r.volume.data.iter().copied().collect::<Vec<_>>(),
            voxels_i16()
        );
        assert_eq!(r.meta.source_format.as_deref(), Some("nrrd"));
        assert_eq!(r.meta.series_description.as_deref(), Some("test volume"));
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn gzip_big_endian_float_in_lps_reads_as_hu() {
        let d = tmp("gz");
        let p = d.join("ct.nrrd");
        let f: Vec<u8> = voxels_i16()
            .iter()
            .flat_map(|&v| (f32::from(v) + 0.25).to_be_bytes())
            .collect();
        write(
            &p,
            "NRRD0005\ntype: float\ndimension: 3\nsizes: 3 2 2\nendian: big\nencoding: gzip\n\
             space: LPS\nspace directions: (1,0,0) (0,1,0) (0,0,1)\n\n",
            &gz(&f),
        );
        let r = read(&p).expect("read");
        assert_eq!(
            r.volume.data.iter().copied().collect::<Vec<_>>(),
            voxels_i16()
        );
        assert_eq!(r.volume.geometry.origin_mm, [0.0; 3]);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn detached_header_with_line_and_byte_skip_and_byte_skip_minus_one() {
        let d = tmp("nhdr");
        let mut data = b"junk line\nmore\n\x01\x02\x03".to_vec();
        data.extend(le_bytes(&voxels_i16()));
        std::fs::write(d.join("ct.raw"), &data).expect("write");
        let head = "NRRD0004\ntype: int16\ndimension: 3\nsizes: 3 2 2\nendian: little\nencoding: raw\n\
                    space: scanner-xyz\nspace directions: (1,0,0) (0,1,0) (0,0,3)\n";
        let p = d.join("a.nhdr");
        std::fs::write(
            &p,
            format!("{head}line skip: 2\nbyte skip: 3\ndata file: ct.raw\n"),
        )
        .expect("write");
        let r = read(&p).expect("read with skips");
        assert_eq!(
            r.volume.data.iter().copied().collect::<Vec<_>>(),
            voxels_i16()
        );
        assert_eq!(r.volume.geometry.spacing_mm, [3.0, 1.0, 1.0]);
        assert_eq!(
            input_files(&p).expect("files"),
            vec![p.clone(), d.join("ct.raw")]
        );
        let p = d.join("b.nhdr");
        std::fs::write(&p, format!("{head}byteskip: -1\ndatafile: ct.raw")).expect("write");
        let r = read(&p).expect("read with byte skip -1 and no final newline");
        assert_eq!(
            r.volume.data.iter().copied().collect::<Vec<_>>(),
            voxels_i16()
        );
        // gzip detached.
        std::fs::write(d.join("ct.raw.gz"), gz(&le_bytes(&voxels_i16()))).expect("write");
        let p = d.join("c.nhdr");
        std::fs::write(&p, head.replace("raw", "gzip") + "data file: ct.raw.gz\n").expect("write");
        let r = read(&p).expect("read gzip detached");
        assert_eq!(
            r.volume.data.iter().copied().collect::<Vec<_>>(),
            voxels_i16()
        );
        // A missing data file is named.
        let p = d.join("d.nhdr");
        std::fs::write(&p, format!("{head}data file: absent.raw\n")).expect("write");
        let e = read(&p).expect_err("missing data file").to_string();
        assert!(e.contains("absent.raw"), "{e}");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn without_a_space_spacings_are_used_and_a_warning_says_so() {
        let d = tmp("nospace");
        let p = d.join("ct.nrrd");
        write(
            &p,
            &format!("{HEAD}encoding: raw\nspacings: 0.5 0.5 2\n\n"),
            &le_bytes(&voxels_i16()),
        );
        let r = read(&p).expect("read");
        assert_eq!(r.volume.geometry.spacing_mm, [2.0, 0.5, 0.5]);
        assert!(r.warnings.iter().any(|w| w.code == "nrrd-no-orientation"));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn malformed_and_unsupported_headers_get_clear_errors() {
        let data = le_bytes(&voxels_i16());
        let sp = "space: LPS\nspace directions: (1,0,0) (0,1,0) (0,0,1)\n";
        let cases: Vec<(String, &str)> = vec![
            ("P5\n3 2\n255\n".into(), "not a NRRD file"),
            ("NRRD0009\n\n".into(), "NRRD0001 to NRRD0005"),
            (format!("{HEAD}{sp}\n"), "\"encoding\" is missing"),
            (format!("{HEAD}encoding: bzip2\n{sp}\n"), "encoding \"bzip2\""),
            (format!("{HEAD}encoding: ascii\n{sp}\n"), "encoding \"ascii\""),
            (
                format!("NRRD0004\ntype: block\nblock size: 4\ndimension: 3\nsizes: 3 2 2\nencoding: raw\n{sp}\n"),
                "block",
            ),
            (
                format!("NRRD0004\ntype: short\ndimension: 3\nsizes: 3 2 2\nencoding: raw\n{sp}\n"),
                "\"endian\" is missing",
            ),
            (
                "NRRD0004\ntype: short\ndimension: 4\nsizes: 2 3 2 2\nendian: little\nencoding: raw\n\n".into(),
                "dimension 4",
            ),
            (
                "NRRD0004\ntype: short\ndimension: 3\nsizes: 3 2\nendian: little\nencoding: raw\n\n".into(),
                "sizes has 2 values",
            ),
            (
                "NRRD0004\ntype: short\ndimension: 3\nsizes: 3 0 2\nendian: little\nencoding: raw\n\n".into(),
                "a size is 0",
            ),
            (
                "NRRD0004\ntype: short\ndimension: 3\nsizes: 3 -2 2\nendian: little\nencoding: raw\n\n".into(),
                "not a whole number",
            ),
            (
                "NRRD0004\ntype: short\ndimension: 3\nsizes: 4294967296 4294967296 16\nendian: little\nencoding: raw\n\n".into(),
                "exceed",
            ),
            (
                "NRRD0004\ntype: short\ndimension: 3\nsizes: 100000 100000 100000\nendian: little\nencoding: raw\n\n".into(),
                "exceed",
            ),
            (format!("{HEAD}encoding: raw\nspace: 3D-right-handed\nspace directions: (1,0,0) (0,1,0) (0,0,1)\n\n"), "space \"3d-right-handed\""),
            (format!("{HEAD}encoding: raw\nspace: LPS\n\n"), "\"space directions\" is missing"),
            (format!("{HEAD}encoding: raw\nspace: LPS\nspace directions: (1,0,0) (0,1,0)\n\n"), "2 entries"),
            (format!("{HEAD}encoding: raw\nspace: LPS\nspace directions: (1,0,0) (0,1,0) none\n\n"), "\"none\""),
            (format!("{HEAD}encoding: raw\nspace: LPS\nspace directions: (1,0,0) (2,0,0) (0,0,1)\n\n"), "parallel"),
            (format!("{HEAD}encoding: raw\nspace: LPS\nspace directions: (1,0,0) (0,1,0) (0,0,0)\n\n"), "zero or invalid"),
            (format!("{HEAD}encoding: raw\nspace: LPS\nspace directions: (1,0) (0,1,0) (0,0,1)\n\n"), "components"),
            (format!("{HEAD}encoding: raw\nspace: LPS\nspace directions: (a,0,0) (0,1,0) (0,0,1)\n\n"), "not a number"),
            (format!("{HEAD}encoding: raw\nspace: LPS\nspace directions: (nan,0,0) (0,1,0) (0,0,1)\n\n"), "not finite"),
            (format!("{HEAD}encoding: raw\n{sp}space origin: 1 2 3\n\n"), "space origin"),
            (format!("{HEAD}encoding: raw\n{sp}type: float\n\n"), "appears twice"),
            (format!("{HEAD}encoding: raw\n{sp}this line has no colon\n\n"), "not \"field: value\""),
            (format!("{HEAD}encoding: raw\n{sp}data file: LIST\n\n"), "several files"),
            (format!("{HEAD}encoding: raw\n{sp}kinds: RGB-color domain domain\n\n"), "\"RGB-color\", not a spatial axis"),
            (format!("{HEAD}encoding: raw\n{sp}kinds: domain domain\n\n"), "kinds has 2 values"),
            (format!("{HEAD}encoding: raw\n{sp}data file: s%03d.raw 1 10 1\n\n"), "several files"),
            (format!("{HEAD}encoding: gzip\n{sp}byte skip: -1\n\n"), "only allowed with raw"),
        ];
        for (header, want) in cases {
            let e = err_of(&header, &data);
            assert!(
                e.contains(want),
                "header {header:?}: error {e:?} lacks {want:?}"
            );
        }
        // Data shorter than the sizes claim, raw and gzip; a corrupt gzip stream.
        let e = err_of(&format!("{HEAD}encoding: raw\n{sp}\n"), &data[..20]);
        assert!(e.contains("truncated") && e.contains("need 24"), "{e}");
        let e = err_of(&format!("{HEAD}encoding: gzip\n{sp}\n"), &gz(&data[..20]));
        assert!(e.contains("truncated"), "{e}");
        let e = err_of(&format!("{HEAD}encoding: gzip\n{sp}\n"), b"not gzip at all");
        assert!(e.contains("gzip"), "{e}");
        // A header with neither a blank line nor a data file: no voxel data anywhere.
        let e = err_of(&format!("{HEAD}encoding: raw\n{sp}"), b"");
        assert!(e.contains("no blank line and no data file"), "{e}");
        // Binary bytes where the header should go on.
        let e = err_of(&format!("{HEAD}encoding: raw\n{sp}"), &data);
        assert!(e.contains("not text"), "{e}");
        // A header without any blank line within the bound.
        let e = err_of(&"NRRD0004\n".repeat(1 << 17), b"");
        assert!(e.contains("no blank line"), "{e}");
        // A .nhdr needs a data file.
        let d = tmp("nhdr-bad");
        let p = d.join("x.nhdr");
        std::fs::write(&p, format!("{HEAD}encoding: raw\n{sp}")).expect("write");
        let e = read(&p).expect_err("no data file").to_string();
        assert!(
            e.contains("needs a \"data file\"") && e.contains("x.nhdr"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn written_label_maps_and_segmentations_read_back() {
        let d = tmp("write");
        let g = Geometry {
            spacing_mm: [2.5, 0.7, 0.6],
            origin_mm: [-170.25, -160.0, -300.0],
            direction: [[0.0, 0.0, -1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]],
        };
        let lungs = Volume::new(
            Array3::from_shape_fn((4, 5, 6), |(z, y, x)| ((z + y + x) % 3) as u8),
            g,
        );
        let classes = lungs.with_data(lungs.data.mapv(|v| if v == 2 { 5 } else { 0 }));
        let p = d.join("lungs.nrrd");
        write_u8(&p, &lungs).expect("write");
        let r = read(&p).expect("read back");
        assert_eq!(r.volume.geometry.spacing_mm, g.spacing_mm);
        assert_eq!(r.volume.geometry.origin_mm, g.origin_mm);
        assert_eq!(r.volume.geometry.direction, g.direction);
        assert!(
            r.volume
                .data
                .iter()
                .zip(lungs.data.iter())
                .all(|(a, b)| *a == i16::from(*b))
        );
        let segs = [
            Segment {
                id: "right_lung".into(),
                name: "right lung".into(),
                color: [0.5, 0.7, 0.5],
                layer: 0,
                label: 1,
            },
            Segment {
                id: "dense".into(),
                name: "vessels".into(),
                color: [0.8, 0.2, 0.2],
                layer: 1,
                label: 5,
            },
            Segment {
                id: "ggo".into(),
                name: "GGO".into(),
                color: [1.0, 0.8, 0.0],
                layer: 1,
                label: 3,
            },
        ];
        let p = d.join("s.seg.nrrd");
        write_segmentation(&p, &[&lungs, &classes], &segs).expect("write seg");
        let bytes = std::fs::read(&p).expect("read");
        let end = bytes
            .windows(2)
            .position(|w| w == b"\n\n")
            .expect("blank line")
            + 2;
        let head = std::str::from_utf8(&bytes[..end]).expect("text");
        for want in [
            "dimension: 4\n",
            "sizes: 2 6 5 4\n",
            "kinds: list domain domain domain\n",
            "space directions: none (0.6,0,0) (0,0.7,0) (0,0,-2.5)\n",
            "Segmentation_MasterRepresentation:=Binary labelmap\n",
            "Segmentation_SourceRepresentation:=Binary labelmap\n",
            "Segment0_Name:=right lung\n",
            "Segment0_LabelValue:=1\n",
            "Segment0_Layer:=0\n",
            "Segment0_Extent:=0 5 0 4 0 3\n",
            "Segment1_Layer:=1\n",
            "Segment1_Color:=0.8 0.2 0.2\n",
            "Segment2_Extent:=0 -1 0 -1 0 -1\n",
        ] {
            assert!(head.contains(want), "{want:?} missing from\n{head}");
        }
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(&bytes[end..])
            .read_to_end(&mut raw)
            .expect("gunzip");
        let want: Vec<u8> = lungs
            .data
            .iter()
            .zip(classes.data.iter())
            .flat_map(|(a, b)| [*a, *b])
            .collect();
        assert_eq!(raw, want, "layers interleaved, list axis fastest");
        // A 4-D file is not a CT volume: refused when given as input.
        let e = read(&p).expect_err("4-D").to_string();
        assert!(e.contains("dimension 4"), "{e}");
        let _ = std::fs::remove_dir_all(&d);
    }

    /// Headers assembled at random from field lines with plausible and broken values, over
    /// random bytes: every outcome is a volume or an error, never a panic, and a volume always
    /// has the voxel count its header claims.
    mod fuzz {
        use super::*;
        use proptest::prelude::*;

        fn field_line() -> impl Strategy<Value = String> {
            prop_oneof![
                "type: (short|uchar|float|double|int64|block|[a-z ]{0,10})",
                "dimension: (2|3|4|-1|[0-9]{1,3})",
                "sizes: [0-9 -]{0,16}",
                "sizes: (2 2 2|1 1|3 2 1|4294967296 4294967296 2)",
                "encoding: (raw|gzip|gz|bzip2|ascii|x)",
                "endian: (little|big|middle)",
                "space: (LPS|RAS|LAS|scanner-xyz|3D-right-handed)",
                "space directions: [()0-9,. nonea-]{0,30}",
                "space directions: \\(1,0,0\\) \\(0,1,0\\) \\(0,0,1\\)",
                "space origin: [()0-9,. -]{0,20}",
                "spacings: [0-9. na-]{0,12}",
                "byte skip: -?[0-9]{1,3}",
                "line skip: [0-9]{1,2}",
                "data file: [a-z.%0-9 ]{0,10}",
                "[a-z]{1,6}:=.{0,8}",
                ".{0,20}",
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(300))]
            #[test]
            fn arbitrary_headers_and_data_never_panic(
                lines in proptest::collection::vec(field_line(), 0..12),
                blank in any::<bool>(),
                data in proptest::collection::vec(any::<u8>(), 0..96),
            ) {
                let d = tmp("fuzz");
                let p = d.join("f.nrrd");
                let mut b = format!("NRRD0004\n{}\n", lines.join("\n")).into_bytes();
                if blank {
                    b.push(b'\n');
                }
                b.extend_from_slice(&data);
                std::fs::write(&p, &b).expect("write");
                let _ = scan_entry(&p);
                if let Ok(v) = read(&p) {
                    let h = read_header(&p).expect("header read before");
                    prop_assert_eq!(v.volume.data.len() as u64, h.voxels());
                }
                let _ = std::fs::remove_dir_all(&d);
            }
        }
    }
}
