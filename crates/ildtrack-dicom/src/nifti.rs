//! NIfTI-1 input and output (`.nii`, `.nii.gz`).
//!
//! Reading: any common datatype → HU `i16` through `scl_slope`/`scl_inter`, geometry from the
//! sform (else the qform, else pixdim with a warning), RAS converted to DICOM LPS.
//! Writing: single-file NIfTI-1 with both sform and qform from
//! [`ildtrack_volume::Geometry::nifti_sform_ras`], gzip when the name ends in `.gz`, written to a
//! temporary file in the same folder and renamed into place.

use std::io::{Read, Write};
use std::path::Path;

use ildtrack_volume::{Geometry, Identity, ScanMeta, Volume, Warning};
use ndarray::Array3;

use crate::LoadError;
use crate::hu::Scalar;
use crate::kernel::KernelClass;
use crate::series::{LoadedSeries, Scan, SeriesEntry};

/// Largest NIfTI volume we read, in voxels (2^31).
const MAX_VOXELS: u64 = 1 << 31;

/// `.nii` or `.nii.gz` (case-insensitive).
pub fn is_nifti_path(p: &Path) -> bool {
    let n = p
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    n.ends_with(".nii") || n.ends_with(".nii.gz")
}

fn is_gz(p: &Path) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("")
        .to_ascii_lowercase()
        .ends_with(".gz")
}

#[derive(Debug, Clone)]
struct Header {
    dims: [u64; 3],
    extra_volumes: u64,
    datatype: i16,
    vox_offset: u64,
    slope: f64,
    inter: f64,
    geometry: Geometry,
    warnings: Vec<Warning>,
    descrip: String,
}

fn scalar_of(dt: i16) -> Option<Scalar> {
    Some(match dt {
        2 => Scalar::U8,
        256 => Scalar::I8,
        4 => Scalar::I16,
        512 => Scalar::U16,
        8 => Scalar::I32,
        768 => Scalar::U32,
        16 => Scalar::F32,
        64 => Scalar::F64,
        1024 => Scalar::I64,
        1280 => Scalar::U64,
        _ => return None,
    })
}

fn bytes_per_voxel(dt: i16) -> Option<usize> {
    scalar_of(dt).map(Scalar::bytes)
}

fn open_reader(path: &Path) -> Result<Box<dyn Read>, LoadError> {
    let f = std::fs::File::open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            LoadError::NotFound {
                path: path.to_path_buf(),
            }
        } else {
            LoadError::Io {
                path: path.to_path_buf(),
                source: e,
            }
        }
    })?;
    if f.metadata().map(|m| m.len()).unwrap_or(0) == 0 {
        return Err(LoadError::EmptyFile {
            path: path.to_path_buf(),
        });
    }
    let r = std::io::BufReader::with_capacity(1 << 20, f);
    Ok(if is_gz(path) {
        Box::new(flate2::read::MultiGzDecoder::new(r))
    } else {
        Box::new(r)
    })
}

fn bad(path: &Path, reason: impl Into<String>) -> LoadError {
    LoadError::Nifti {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn parse_header(path: &Path, h: &[u8; 348]) -> Result<Header, LoadError> {
    let le = match i32::from_le_bytes([h[0], h[1], h[2], h[3]]) {
        348 => true,
        _ if i32::from_be_bytes([h[0], h[1], h[2], h[3]]) == 348 => false,
        540 => {
            return Err(bad(
                path,
                "NIfTI-2 header (sizeof_hdr 540) is not supported",
            ));
        }
        n => {
            return Err(bad(
                path,
                format!("sizeof_hdr is {n}, not 348: not a NIfTI-1 file"),
            ));
        }
    };
    let i16_at = |o: usize| {
        if le {
            i16::from_le_bytes([h[o], h[o + 1]])
        } else {
            i16::from_be_bytes([h[o], h[o + 1]])
        }
    };
    let f32_at = |o: usize| {
        let b = [h[o], h[o + 1], h[o + 2], h[o + 3]];
        f64::from(if le {
            f32::from_le_bytes(b)
        } else {
            f32::from_be_bytes(b)
        })
    };
    let magic = &h[344..348];
    if magic == b"ni1\0" {
        return Err(bad(
            path,
            "two-file NIfTI (.hdr/.img) is not supported; convert to a single .nii",
        ));
    }
    if magic != b"n+1\0" {
        return Err(bad(path, "magic is not \"n+1\": not a single-file NIfTI-1"));
    }
    let ndim = i16_at(40);
    if !(1..=7).contains(&ndim) {
        return Err(bad(path, format!("dim[0] = {ndim}, must be 1..7")));
    }
    let mut dims = [1u64; 3];
    let mut extra = 1u64;
    for k in 1..=ndim as usize {
        let d = i16_at(40 + 2 * k);
        if d < 1 {
            return Err(bad(path, format!("dim[{k}] = {d}, must be ≥ 1")));
        }
        if k <= 3 {
            dims[k - 1] = d as u64;
        } else {
            extra *= d as u64;
        }
    }
    let datatype = i16_at(70);
    if bytes_per_voxel(datatype).is_none() {
        return Err(bad(
            path,
            format!("datatype {datatype} is not a supported scalar type"),
        ));
    }
    let vox_offset = f32_at(108);
    if !(352.0..1e9).contains(&vox_offset) {
        return Err(bad(path, format!("vox_offset {vox_offset} is below 352")));
    }
    let mut slope = f32_at(112);
    let mut inter = f32_at(116);
    if !slope.is_finite() || slope == 0.0 {
        slope = 1.0;
        inter = 0.0;
    }
    if !inter.is_finite() {
        inter = 0.0;
    }
    let mut warnings = Vec::new();
    let pixdim = [f32_at(80).abs(), f32_at(84).abs(), f32_at(88).abs()];
    let qform_code = i16_at(252);
    let sform_code = i16_at(254);
    // 3×4 affine in RAS, columns = voxel axes i, j, k.
    let mut m = [[0.0f64; 4]; 3];
    if sform_code > 0 {
        for (r, row) in m.iter_mut().enumerate() {
            for (c, v) in row.iter_mut().enumerate() {
                *v = f32_at(280 + 16 * r + 4 * c);
            }
        }
    } else if qform_code > 0 {
        let (b, c, d) = (f32_at(256), f32_at(260), f32_at(264));
        let a = (1.0 - (b * b + c * c + d * d)).max(0.0).sqrt();
        let rot = [
            [
                a * a + b * b - c * c - d * d,
                2.0 * (b * c - a * d),
                2.0 * (b * d + a * c),
            ],
            [
                2.0 * (b * c + a * d),
                a * a + c * c - b * b - d * d,
                2.0 * (c * d - a * b),
            ],
            [
                2.0 * (b * d - a * c),
                2.0 * (c * d + a * b),
                a * a + d * d - c * c - b * b,
            ],
        ];
        let qfac = if f32_at(76) < 0.0 { -1.0 } else { 1.0 };
        let sc = [pixdim[0], pixdim[1], pixdim[2] * qfac];
        for r in 0..3 {
            for c in 0..3 {
                m[r][c] = rot[r][c] * sc[c];
            }
        }
        m[0][3] = f32_at(268);
        m[1][3] = f32_at(272);
        m[2][3] = f32_at(276);
    } else {
        for k in 0..3 {
            m[k][k] = if pixdim[k] > 0.0 { pixdim[k] } else { 1.0 };
        }
        warnings.push(Warning::new(
            "nifti-no-orientation",
            "neither sform nor qform is set: orientation assumed RAS from pixdim alone",
        ));
    }
    // RAS → LPS: negate x and y rows.
    for row in m.iter_mut().take(2) {
        for v in row.iter_mut() {
            *v = -*v;
        }
    }
    let col = |c: usize| [m[0][c], m[1][c], m[2][c]];
    let mut spacing = [0.0; 3];
    let mut direction = [[0.0; 3]; 3];
    // Our axes (z, y, x) = NIfTI (k, j, i).
    for (ax, c) in [(0usize, 2usize), (1, 1), (2, 0)] {
        let v = col(c);
        let n = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
        if !(n.is_finite() && n > 0.0) {
            return Err(bad(
                path,
                format!("voxel axis {c} has zero or invalid length in the affine"),
            ));
        }
        spacing[ax] = n;
        direction[ax] = [v[0] / n, v[1] / n, v[2] / n];
    }
    let descrip = String::from_utf8_lossy(&h[148..228])
        .trim_end_matches('\0')
        .trim()
        .to_string();
    Ok(Header {
        dims,
        extra_volumes: extra,
        datatype,
        vox_offset: vox_offset as u64,
        slope,
        inter,
        geometry: Geometry {
            spacing_mm: spacing,
            origin_mm: [m[0][3], m[1][3], m[2][3]],
            direction,
        },
        warnings,
        descrip,
    })
}

fn read_header_from(path: &Path, r: &mut dyn Read) -> Result<(Header, bool), LoadError> {
    let mut h = [0u8; 348];
    r.read_exact(&mut h).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => LoadError::Truncated {
            path: path.to_path_buf(),
            detail: "shorter than a 348-byte NIfTI header".into(),
        },
        _ => LoadError::Io {
            path: path.to_path_buf(),
            source: e,
        },
    })?;
    let le = i32::from_le_bytes([h[0], h[1], h[2], h[3]]) == 348;
    Ok((parse_header(path, &h)?, le))
}

/// Read a `.nii` / `.nii.gz` CT volume as HU.
pub fn read(path: &Path) -> Result<LoadedSeries, LoadError> {
    let mut r = open_reader(path)?;
    let (h, le) = read_header_from(path, &mut *r)?;
    let bpv = bytes_per_voxel(h.datatype).unwrap_or(1) as u64;
    let n = h.dims[0] * h.dims[1] * h.dims[2];
    if n > MAX_VOXELS {
        return Err(LoadError::TooLarge {
            path: path.to_path_buf(),
            detail: format!(
                "{}×{}×{} voxels exceeds {MAX_VOXELS}",
                h.dims[0], h.dims[1], h.dims[2]
            ),
        });
    }
    let need = n * bpv;
    // Skip to the data.
    let skip = h.vox_offset - 348;
    std::io::copy(&mut (&mut *r).take(skip), &mut std::io::sink()).map_err(|e| LoadError::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    // Grow with the bytes actually present, never trusting `need` for the allocation.
    let mut data = Vec::with_capacity(need.min(64 << 20) as usize);
    (&mut *r)
        .take(need)
        .read_to_end(&mut data)
        .map_err(|e| LoadError::Io {
            path: path.to_path_buf(),
            source: e,
        })?;
    if (data.len() as u64) < need {
        return Err(LoadError::Truncated {
            path: path.to_path_buf(),
            detail: format!(
                "image data has {} bytes, {}×{}×{} voxels of datatype {} need {need}",
                data.len(),
                h.dims[0],
                h.dims[1],
                h.dims[2],
                h.datatype
            ),
        });
    }
    let Some(ty) = scalar_of(h.datatype) else {
        return Err(bad(
            path,
            format!("datatype {} is not supported", h.datatype),
        ));
    };
    let mut out = vec![0i16; n as usize];
    let converted = crate::hu::to_hu(&data, ty, le, h.slope, h.inter, &mut out);
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
    if h.extra_volumes > 1 {
        warnings.push(Warning::new(
            "nifti-4d",
            format!(
                "{} volumes in the file; only the first is used",
                h.extra_volumes
            ),
        ));
    }
    warnings.extend(crate::hu::warnings(converted));
    if h.dims[2] == 1 {
        warnings.push(Warning::new("single-slice", "only one slice: a 2-D image"));
    }
    let meta = ScanMeta {
        series_description: (!h.descrip.is_empty()).then(|| h.descrip.clone()),
        source_format: Some("nifti".into()),
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

/// "axial", "coronal", "sagittal" or "oblique" from the slice axis (LPS unit vector).
pub(crate) fn orientation_name(d: [f64; 3]) -> &'static str {
    match (0..3).max_by(|&a, &b| d[a].abs().total_cmp(&d[b].abs())) {
        Some(2) if d[2].abs() >= 0.8 => "axial",
        Some(1) if d[1].abs() >= 0.8 => "coronal",
        Some(0) if d[0].abs() >= 0.8 => "sagittal",
        _ => "oblique",
    }
}

/// A one-entry [`Scan`] describing a NIfTI file from its header.
pub(crate) fn scan_entry(path: &Path) -> Result<Scan, LoadError> {
    let mut r = open_reader(path)?;
    let (h, _) = read_header_from(path, &mut *r)?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("nifti")
        .to_string();
    let orientation = orientation_name(h.geometry.direction[0]);
    let entry = SeriesEntry {
        uid: name.clone(),
        stack: 0,
        description: (!h.descrip.is_empty()).then(|| h.descrip.clone()),
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
        n_files: 1,
        thickness_mm: Some(h.geometry.spacing_mm[0]),
        spacing_mm: Some(h.geometry.spacing_mm),
        coverage_mm: h.geometry.spacing_mm[0] * (h.dims[2].saturating_sub(1)) as f64,
        rows: h.dims[1] as u32,
        cols: h.dims[0] as u32,
        transfer_syntax: "nifti".into(),
        transfer_syntax_name: format!(
            "NIfTI-1 datatype {}{}",
            h.datatype,
            if is_gz(path) { ", gzip" } else { "" }
        ),
        orientation: orientation.into(),
        warnings: h.warnings.clone(),
        rejected_because: None,
        slices: Vec::new(),
        identity: Identity::default(),
        meta: ScanMeta::default(),
    };
    Ok(Scan::one_volume(path, "nifti", entry))
}

fn write_err(path: &Path, e: std::io::Error) -> LoadError {
    LoadError::Write {
        path: path.to_path_buf(),
        source: e,
    }
}

/// Quaternion (b, c, d), qfac of the rotation part of an orthonormal 3×3 (columns = axes).
fn quatern(m: [[f64; 3]; 3]) -> ([f64; 3], f64) {
    // Normalise columns.
    let mut r = m;
    for c in 0..3 {
        let n = (r[0][c] * r[0][c] + r[1][c] * r[1][c] + r[2][c] * r[2][c]).sqrt();
        if n > 0.0 {
            for row in r.iter_mut() {
                row[c] /= n;
            }
        }
    }
    let det = r[0][0] * (r[1][1] * r[2][2] - r[1][2] * r[2][1])
        - r[0][1] * (r[1][0] * r[2][2] - r[1][2] * r[2][0])
        + r[0][2] * (r[1][0] * r[2][1] - r[1][1] * r[2][0]);
    let qfac = if det < 0.0 { -1.0 } else { 1.0 };
    if qfac < 0.0 {
        for row in r.iter_mut() {
            row[2] = -row[2];
        }
    }
    let trace = r[0][0] + r[1][1] + r[2][2] + 1.0;
    let (a, b, c, d): (f64, f64, f64, f64);
    if trace > 0.5 {
        let aa = 0.5 * trace.sqrt();
        a = aa;
        b = 0.25 * (r[2][1] - r[1][2]) / aa;
        c = 0.25 * (r[0][2] - r[2][0]) / aa;
        d = 0.25 * (r[1][0] - r[0][1]) / aa;
    } else {
        let xd = 1.0 + r[0][0] - (r[1][1] + r[2][2]);
        let yd = 1.0 + r[1][1] - (r[0][0] + r[2][2]);
        let zd = 1.0 + r[2][2] - (r[0][0] + r[1][1]);
        if xd > 1.0 {
            let bb = 0.5 * xd.sqrt();
            b = bb;
            c = 0.25 * (r[0][1] + r[1][0]) / bb;
            d = 0.25 * (r[0][2] + r[2][0]) / bb;
            a = 0.25 * (r[2][1] - r[1][2]) / bb;
        } else if yd > 1.0 {
            let cc = 0.5 * yd.sqrt();
            c = cc;
            b = 0.25 * (r[0][1] + r[1][0]) / cc;
            d = 0.25 * (r[1][2] + r[2][1]) / cc;
            a = 0.25 * (r[0][2] - r[2][0]) / cc;
        } else {
            let dd = 0.5 * zd.sqrt();
            d = dd;
            b = 0.25 * (r[0][2] + r[2][0]) / dd;
            c = 0.25 * (r[1][2] + r[2][1]) / dd;
            a = 0.25 * (r[1][0] - r[0][1]) / dd;
        }
    }
    if a < 0.0 {
        ([-b, -c, -d], qfac)
    } else {
        ([b, c, d], qfac)
    }
}

fn header_bytes(
    dims_xyz: [usize; 3],
    datatype: i16,
    bitpix: i16,
    g: &Geometry,
) -> Result<Vec<u8>, String> {
    let mut h = vec![0u8; 352];
    let put_i16 = |h: &mut Vec<u8>, o: usize, v: i16| h[o..o + 2].copy_from_slice(&v.to_le_bytes());
    let put_f32 =
        |h: &mut Vec<u8>, o: usize, v: f64| h[o..o + 4].copy_from_slice(&(v as f32).to_le_bytes());
    h[0..4].copy_from_slice(&348i32.to_le_bytes());
    put_i16(&mut h, 40, 3);
    for (k, &d) in dims_xyz.iter().enumerate() {
        let d = i16::try_from(d).map_err(|_| format!("dimension {d} exceeds NIfTI-1's 32767"))?;
        put_i16(&mut h, 42 + 2 * k, d);
    }
    for k in 3..7 {
        put_i16(&mut h, 42 + 2 * k, 1);
    }
    put_i16(&mut h, 70, datatype);
    put_i16(&mut h, 72, bitpix);
    let s = g.nifti_sform_ras();
    let rot = [
        [s[0][0], s[0][1], s[0][2]],
        [s[1][0], s[1][1], s[1][2]],
        [s[2][0], s[2][1], s[2][2]],
    ];
    let (q, qfac) = quatern(rot);
    put_f32(&mut h, 76, qfac);
    put_f32(&mut h, 80, g.spacing_mm[2]);
    put_f32(&mut h, 84, g.spacing_mm[1]);
    put_f32(&mut h, 88, g.spacing_mm[0]);
    put_f32(&mut h, 108, 352.0);
    put_f32(&mut h, 112, 1.0);
    put_f32(&mut h, 116, 0.0);
    h[123] = 2; // mm
    let desc = b"ildtrack";
    h[148..148 + desc.len()].copy_from_slice(desc);
    put_i16(&mut h, 252, 1);
    put_i16(&mut h, 254, 1);
    put_f32(&mut h, 256, q[0]);
    put_f32(&mut h, 260, q[1]);
    put_f32(&mut h, 264, q[2]);
    put_f32(&mut h, 268, s[0][3]);
    put_f32(&mut h, 272, s[1][3]);
    put_f32(&mut h, 276, s[2][3]);
    for (r, row) in s.iter().take(3).enumerate() {
        for (c, &v) in row.iter().enumerate() {
            put_f32(&mut h, 280 + 16 * r + 4 * c, v);
        }
    }
    h[344..348].copy_from_slice(b"n+1\0");
    Ok(h)
}

/// gzip level of written `.nii.gz` files. Label maps are long runs of a few values: level 2
/// (zlib-rs backend) gives files within ~5 % of level 3 and about 30 % faster.
const GZ_LEVEL: u32 = 2;

/// Bytes of voxel data converted and written per step by [`write_i16`].
pub(crate) const WRITE_CHUNK_BYTES: usize = 1 << 20;

/// Write `header` then the voxel bytes that `body` feeds to its writer, through a temporary file
/// in the same folder (gzip when `path` ends in `.gz`), synced, renamed over `path`. The body is
/// streamed: no full-size copy of the volume is made.
fn write_atomic(
    path: &Path,
    header: &[u8],
    body: &mut dyn FnMut(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(), LoadError> {
    ildtrack_fs::write_atomic_with(path, |f| {
        let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
        if is_gz(path) {
            let mut gz = flate2::write::GzEncoder::new(w, flate2::Compression::new(GZ_LEVEL));
            gz.write_all(header)?;
            body(&mut gz)?;
            w = gz.finish()?;
        } else {
            w.write_all(header)?;
            body(&mut w)?;
        }
        w.flush()
    })
    .map_err(|e| write_err(path, e))
}

fn dims_xyz<T>(vol: &Volume<T>) -> [usize; 3] {
    let [z, y, x] = vol.dims_zyx();
    [x, y, z]
}

/// Write a `u8` volume (e.g. a label mask) as NIfTI-1 (`.nii.gz` compressed, `.nii` plain).
pub fn write_u8(path: &Path, vol: &Volume<u8>) -> Result<(), LoadError> {
    let h = header_bytes(dims_xyz(vol), 2, 8, &vol.geometry).map_err(|reason| {
        LoadError::WriteInvalid {
            path: path.to_path_buf(),
            reason,
        }
    })?;
    write_atomic(path, &h, &mut |w| write_u8_voxels(w, &vol.data))
}

/// A `u8` volume's voxels in logical `(z, y, x)` order (x fastest), as NIfTI and NRRD store
/// them: straight from memory in standard layout, else one bounded chunk at a time.
pub(crate) fn write_u8_voxels(w: &mut dyn Write, data: &Array3<u8>) -> std::io::Result<()> {
    if let Some(s) = data.as_slice() {
        return w.write_all(s);
    }
    let mut buf = Vec::with_capacity(WRITE_CHUNK_BYTES);
    for &v in data.iter() {
        buf.push(v);
        if buf.len() == WRITE_CHUNK_BYTES {
            w.write_all(&buf)?;
            buf.clear();
        }
    }
    w.write_all(&buf)
}

/// Write an `i16` HU volume as NIfTI-1 (`.nii.gz` compressed, `.nii` plain).
pub fn write_i16(path: &Path, vol: &Volume<i16>) -> Result<(), LoadError> {
    let h = header_bytes(dims_xyz(vol), 4, 16, &vol.geometry).map_err(|reason| {
        LoadError::WriteInvalid {
            path: path.to_path_buf(),
            reason,
        }
    })?;
    write_atomic(path, &h, &mut |w| {
        let mut buf = Vec::with_capacity(WRITE_CHUNK_BYTES);
        for v in vol.data.iter() {
            buf.extend_from_slice(&v.to_le_bytes());
            if buf.len() >= WRITE_CHUNK_BYTES {
                w.write_all(&buf)?;
                buf.clear();
            }
        }
        w.write_all(&buf)
    })
}

/// Write an `f32` volume (e.g. a Jacobian determinant map) as NIfTI-1.
pub fn write_f32(path: &Path, vol: &Volume<f32>) -> Result<(), LoadError> {
    let h = header_bytes(dims_xyz(vol), 16, 32, &vol.geometry).map_err(|reason| {
        LoadError::WriteInvalid {
            path: path.to_path_buf(),
            reason,
        }
    })?;
    write_atomic(path, &h, &mut |w| {
        write_f32_values(w, vol.data.iter().copied())
    })
}

/// NIFTI_INTENT_DISPVECT: a displacement vector per voxel.
const INTENT_DISPVECT: i16 = 1006;

/// Write a displacement field on `geometry`'s grid as a NIfTI-1 vector image (5-D, three
/// `f32` components per voxel, intent DISPVECT), the form ITK, SimpleITK, ANTs and 3D Slicer
/// read as a displacement field transform. `lps` holds each voxel's displacement in LPS
/// millimetres (ITK's physical space), `(z, y, x)` order, x fastest. The file stores it in NIfTI's RAS (x and y negated),
/// as ITK's NIfTI reader turns the vectors of a displacement field back into LPS.
pub fn write_displacement(
    path: &Path,
    dims_zyx: [usize; 3],
    geometry: &ildtrack_volume::Geometry,
    lps: &[[f32; 3]],
) -> Result<(), LoadError> {
    let [nz, ny, nx] = dims_zyx;
    if lps.len() != nz * ny * nx {
        return Err(LoadError::WriteInvalid {
            path: path.to_path_buf(),
            reason: format!("{} vectors for a {dims_zyx:?} grid", lps.len()),
        });
    }
    let mut h =
        header_bytes([nx, ny, nz], 16, 32, geometry).map_err(|reason| LoadError::WriteInvalid {
            path: path.to_path_buf(),
            reason,
        })?;
    // dim[0] = 5, dim[4] = 1 (time), dim[5] = 3 (vector components); intent code at 68.
    h[40..42].copy_from_slice(&5i16.to_le_bytes());
    h[48..50].copy_from_slice(&1i16.to_le_bytes());
    h[50..52].copy_from_slice(&3i16.to_le_bytes());
    h[68..70].copy_from_slice(&INTENT_DISPVECT.to_le_bytes());
    let sign = [-1.0f32, -1.0, 1.0];
    write_atomic(path, &h, &mut |w| {
        for (c, s) in sign.iter().enumerate() {
            write_f32_values(w, lps.iter().map(|v| s * v[c]))?;
        }
        Ok(())
    })
}

fn write_f32_values(w: &mut dyn Write, it: impl Iterator<Item = f32>) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(WRITE_CHUNK_BYTES);
    for v in it {
        buf.extend_from_slice(&v.to_le_bytes());
        if buf.len() >= WRITE_CHUNK_BYTES {
            w.write_all(&buf)?;
            buf.clear();
        }
    }
    w.write_all(&buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Volumes not in standard (C) layout are streamed in chunks: the file must still hold the
    /// voxels in (z, y, x) order, across chunk boundaries, gzip and plain alike.
    #[test]
    fn streamed_writes_of_non_standard_layout_round_trip() {
        use ndarray::ShapeBuilder as _;
        // 1.28 M voxels: more than one WRITE_CHUNK_BYTES chunk for u8 and for i16.
        let (nz, ny, nx) = (40usize, 160usize, 200usize);
        let n = nz * ny * nx;
        assert!(n > WRITE_CHUNK_BYTES);
        let f_order = |k: usize| -> i16 { ((k * 7919) % 3001) as i16 - 1000 };
        let arr =
            Array3::from_shape_vec((nz, ny, nx).f(), (0..n).map(f_order).collect()).expect("shape");
        assert!(arr.as_slice().is_none(), "test needs a non-standard layout");
        let g = Geometry {
            spacing_mm: [2.5, 0.7, 0.7],
            origin_mm: [-170.0, -160.0, -300.0],
            ..Geometry::default()
        };
        let hu = Volume::new(arr, g);
        let labels = hu.with_data(hu.data.mapv(|v| (v.rem_euclid(7)) as u8));
        let dir =
            std::env::temp_dir().join(format!("ildtrack-nifti-stream-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        for name in ["hu.nii", "hu.nii.gz"] {
            let p = dir.join(name);
            write_i16(&p, &hu).expect("write i16");
            let r = read(&p).expect("read i16");
            assert_eq!(r.volume.dims_zyx(), [nz, ny, nx], "{name}");
            assert!(
                r.volume
                    .data
                    .iter()
                    .zip(hu.data.iter())
                    .all(|(a, b)| a == b),
                "{name}: voxels differ"
            );
        }
        for name in ["lab.nii", "lab.nii.gz"] {
            let p = dir.join(name);
            write_u8(&p, &labels).expect("write u8");
            let r = read(&p).expect("read u8");
            assert_eq!(r.volume.dims_zyx(), [nz, ny, nx], "{name}");
            assert!(
                r.volume
                    .data
                    .iter()
                    .zip(labels.data.iter())
                    .all(|(a, b)| *a == i16::from(*b)),
                "{name}: voxels differ"
            );
        }
        let left: Vec<_> = std::fs::read_dir(&dir)
            .expect("ls")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name())
            .collect();
        assert_eq!(left.len(), 4, "temporary files left: {left:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn quaternion_of_identity_and_lps_flip() {
        let (q, qfac) = quatern([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]);
        assert_eq!(qfac, 1.0);
        assert!(q.iter().all(|v| v.abs() < 1e-12));
        // LPS axial → RAS: x and y negated = rotation by 180° about z: (b,c,d) = (0,0,1).
        let (q, qfac) = quatern([[-1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, 1.0]]);
        assert_eq!(qfac, 1.0);
        assert!((q[2].abs() - 1.0).abs() < 1e-12, "{q:?}");
    }
}
