//! Reading one DICOM file's header (everything before Pixel Data) into plain Rust values.

use std::path::{Path, PathBuf};

use dicom_dictionary_std::tags;
use dicom_object::mem::InMemDicomObject;
use dicom_object::{DefaultDicomObject, OpenFileOptions};
use ildtrack_volume::{Identity, ScanMeta};

use crate::LoadError;
use crate::geometry::cross;
use crate::layout::WalkError;

pub(crate) const SOP_MEDIA_STORAGE_DIRECTORY: &str = "1.2.840.10008.1.3.10";

/// Pixel layout facts shared by all frames of a file.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PixelInfo {
    pub rows: u32,
    pub cols: u32,
    pub bits_allocated: u16,
    pub bits_stored: u16,
    pub high_bit: u16,
    /// 0 unsigned, 1 two's complement.
    pub pixel_representation: u16,
    pub samples_per_pixel: u16,
    pub photometric: String,
    pub n_frames: u32,
    /// PixelPaddingValue and PixelPaddingRangeLimit, as stored values.
    pub padding: Option<i64>,
    pub padding_limit: Option<i64>,
}

impl PixelInfo {
    pub fn frame_bytes(&self) -> u64 {
        u64::from(self.rows)
            * u64::from(self.cols)
            * u64::from(self.samples_per_pixel.max(1))
            * u64::from(self.bits_allocated.div_ceil(8))
    }
}

/// Geometry and rescale of one frame (one slice).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct FrameGeom {
    pub position: Option<[f64; 3]>,
    pub orientation: Option<[f64; 6]>,
    pub pixel_spacing: Option<[f64; 2]>,
    pub thickness_mm: Option<f64>,
    pub slope: f64,
    pub intercept: f64,
}

/// Everything the scan needs from one file, without its pixels.
#[derive(Debug, Clone)]
pub(crate) struct FileHeader {
    pub path: PathBuf,
    pub file_len: u64,
    pub sop_class: String,
    pub sop_instance: Option<String>,
    pub transfer_syntax: String,
    pub series_uid: Option<String>,
    pub image_type: Vec<String>,
    pub instance_number: Option<i64>,
    pub acquisition_number: Option<i64>,
    pub meta: ScanMeta,
    pub identity: Identity,
    pub pixel: Option<PixelInfo>,
    /// One entry per frame (one for single-frame files).
    pub frames: Vec<FrameGeom>,
    /// True when geometry came from enhanced per-frame functional groups.
    pub enhanced: bool,
}

/// An error and its sources on one line (dicom-rs nests the useful part deep).
pub(crate) fn flat(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    let mut n = 0;
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
        n += 1;
        if n > 6 {
            break;
        }
    }
    s
}

pub(crate) fn get_str(obj: &InMemDicomObject, tag: dicom_core::Tag) -> Option<String> {
    let e = obj.element_opt(tag).ok()??;
    let s = e.to_str().ok()?;
    let t = s
        .trim_matches(|c: char| c.is_whitespace() || c == '\0')
        .to_string();
    if t.is_empty() { None } else { Some(t) }
}

pub(crate) fn get_multi_str(obj: &InMemDicomObject, tag: dicom_core::Tag) -> Vec<String> {
    let Some(e) = obj.element_opt(tag).ok().flatten() else {
        return Vec::new();
    };
    match e.to_multi_str() {
        Ok(v) => v
            .iter()
            .map(|s| {
                s.trim_matches(|c: char| c.is_whitespace() || c == '\0')
                    .to_string()
            })
            .collect(),
        Err(_) => Vec::new(),
    }
}

pub(crate) fn get_f64(obj: &InMemDicomObject, tag: dicom_core::Tag) -> Option<f64> {
    let e = obj.element_opt(tag).ok()??;
    let v = e.to_multi_float64().ok()?;
    v.first().copied().filter(|x| x.is_finite())
}

pub(crate) fn get_multi_f64(obj: &InMemDicomObject, tag: dicom_core::Tag) -> Option<Vec<f64>> {
    let e = obj.element_opt(tag).ok()??;
    let v = e.to_multi_float64().ok()?;
    if v.iter().all(|x| x.is_finite()) {
        Some(v)
    } else {
        None
    }
}

pub(crate) fn get_int(obj: &InMemDicomObject, tag: dicom_core::Tag) -> Option<i64> {
    let e = obj.element_opt(tag).ok()??;
    if let Ok(v) = e.to_multi_int::<i64>() {
        return v.first().copied();
    }
    // Some writers put "5.0" in an IS; accept integral floats.
    let f = e.to_multi_float64().ok()?;
    let x = *f.first()?;
    if x.is_finite() && x.fract() == 0.0 && x.abs() < 1e15 {
        Some(x as i64)
    } else {
        None
    }
}

fn first_item(obj: &InMemDicomObject, tag: dicom_core::Tag) -> Option<&InMemDicomObject> {
    obj.element_opt(tag).ok()??.items()?.first()
}

fn arr3(v: Option<Vec<f64>>) -> Option<[f64; 3]> {
    let v = v?;
    if v.len() >= 3 {
        Some([v[0], v[1], v[2]])
    } else {
        None
    }
}

fn arr6(v: Option<Vec<f64>>) -> Option<[f64; 6]> {
    let v = v?;
    if v.len() >= 6 {
        Some([v[0], v[1], v[2], v[3], v[4], v[5]])
    } else {
        None
    }
}

fn arr2(v: Option<Vec<f64>>) -> Option<[f64; 2]> {
    let v = v?;
    if v.len() >= 2 && v[0] > 0.0 && v[1] > 0.0 {
        Some([v[0], v[1]])
    } else {
        None
    }
}

/// `YYYYMMDD` → `YYYY-MM-DD` (None when it is not a plausible date).
pub(crate) fn format_date(s: &str) -> Option<String> {
    let d: String = s.chars().filter(|c| c.is_ascii_digit()).collect();
    if d.len() != 8 {
        return None;
    }
    let month: u32 = d[4..6].parse().ok()?;
    let day: u32 = d[6..8].parse().ok()?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    Some(format!("{}-{}-{}", &d[0..4], &d[4..6], &d[6..8]))
}

/// `HHMMSS.frac` → `HH:MM:SS`.
pub(crate) fn format_time(s: &str) -> Option<String> {
    let d: String = s
        .chars()
        .take_while(|c| *c != '.')
        .filter(|c| c.is_ascii_digit())
        .collect();
    if d.len() < 4 {
        return None;
    }
    let ss = if d.len() >= 6 { &d[4..6] } else { "00" };
    Some(format!("{}:{}:{}", &d[0..2], &d[2..4], ss))
}

/// PatientAge (`012Y`, `006M`, `010W`, `005D`) in years.
pub(crate) fn parse_age_years(s: &str) -> Option<f64> {
    let s = s.trim();
    if s.len() < 2 {
        return None;
    }
    let (num, unit) = s.split_at(s.len() - 1);
    let n: f64 = num.trim().parse().ok()?;
    if !(0.0..=200.0).contains(&n) {
        return None;
    }
    match unit.to_ascii_uppercase().as_str() {
        "Y" => Some(n),
        "M" => Some(n / 12.0),
        "W" => Some(n * 7.0 / 365.25),
        "D" => Some(n / 365.25),
        _ => None,
    }
}

/// Age (years) at the study from the birth date, when both dates parse, the age is 0–150 years
/// and the birth date is not a placeholder that de-identification writes (1900-01-01).
pub(crate) fn age_from_dates(birth: &str, study: &str) -> Option<f64> {
    let digits: String = birth.chars().filter(|c| c.is_ascii_digit()).collect();
    if digits == "19000101" {
        return None;
    }
    let age = (days_from_ymd(study)? - days_from_ymd(birth)?) / 365.25;
    (0.0..=150.0).contains(&age).then_some(age)
}

fn days_from_ymd(s: &str) -> Option<f64> {
    let d: String = s.chars().filter(|c| c.is_ascii_digit()).collect();
    if d.len() != 8 {
        return None;
    }
    let y: f64 = d[0..4].parse().ok()?;
    let m: f64 = d[4..6].parse().ok()?;
    let day: f64 = d[6..8].parse().ok()?;
    Some(y * 365.25 + (m - 1.0) * 30.44 + day)
}

fn pixel_info(obj: &InMemDicomObject) -> Option<PixelInfo> {
    let rows = get_int(obj, tags::ROWS)?;
    let cols = get_int(obj, tags::COLUMNS)?;
    let bits_allocated = get_int(obj, tags::BITS_ALLOCATED).unwrap_or(16);
    let bits_stored = get_int(obj, tags::BITS_STORED).unwrap_or(bits_allocated);
    let high_bit = get_int(obj, tags::HIGH_BIT).unwrap_or(bits_stored - 1);
    let n_frames = get_int(obj, tags::NUMBER_OF_FRAMES).unwrap_or(1).max(1);
    Some(PixelInfo {
        rows: u32::try_from(rows).ok()?,
        cols: u32::try_from(cols).ok()?,
        bits_allocated: u16::try_from(bits_allocated).ok()?,
        bits_stored: u16::try_from(bits_stored).ok()?,
        high_bit: u16::try_from(high_bit).ok()?,
        pixel_representation: u16::try_from(get_int(obj, tags::PIXEL_REPRESENTATION).unwrap_or(0))
            .ok()?,
        samples_per_pixel: u16::try_from(get_int(obj, tags::SAMPLES_PER_PIXEL).unwrap_or(1))
            .ok()?,
        photometric: get_str(obj, tags::PHOTOMETRIC_INTERPRETATION)
            .unwrap_or_else(|| "MONOCHROME2".into()),
        n_frames: u32::try_from(n_frames).ok()?,
        padding: get_int(obj, tags::PIXEL_PADDING_VALUE),
        padding_limit: get_int(obj, tags::PIXEL_PADDING_RANGE_LIMIT),
    })
}

/// Parse the header of an already opened object.
pub(crate) fn parse_header(
    path: &Path,
    file_len: u64,
    file: &DefaultDicomObject,
) -> Result<FileHeader, LoadError> {
    let obj: &InMemDicomObject = file;
    let meta_table = file.meta();
    let ts = meta_table
        .transfer_syntax()
        .trim_end_matches(['\0', ' '])
        .to_string();
    let sop_class = meta_table
        .media_storage_sop_class_uid()
        .trim_end_matches(['\0', ' '])
        .to_string();
    let sop_class = if sop_class.is_empty() {
        get_str(obj, tags::SOP_CLASS_UID).unwrap_or_default()
    } else {
        sop_class
    };

    let mut meta = ScanMeta {
        series_instance_uid: get_str(obj, tags::SERIES_INSTANCE_UID),
        study_instance_uid: get_str(obj, tags::STUDY_INSTANCE_UID),
        series_description: get_str(obj, tags::SERIES_DESCRIPTION),
        modality: get_str(obj, tags::MODALITY).map(|m| m.to_ascii_uppercase()),
        study_date: get_str(obj, tags::STUDY_DATE).and_then(|d| format_date(&d)),
        series_time: get_str(obj, tags::SERIES_TIME)
            .or_else(|| get_str(obj, tags::ACQUISITION_TIME))
            .and_then(|t| format_time(&t)),
        patient_age_years: get_str(obj, tags::PATIENT_AGE).and_then(|a| parse_age_years(&a)),
        patient_sex: get_str(obj, tags::PATIENT_SEX)
            .map(|s| s.to_ascii_uppercase())
            .filter(|s| matches!(s.as_str(), "M" | "F" | "O")),
        manufacturer: get_str(obj, tags::MANUFACTURER),
        manufacturer_model: get_str(obj, tags::MANUFACTURER_MODEL_NAME),
        kernel: {
            let k = get_multi_str(obj, tags::CONVOLUTION_KERNEL);
            let k: Vec<String> = k.into_iter().filter(|s| !s.is_empty()).collect();
            if k.is_empty() {
                None
            } else {
                Some(k.join("\\"))
            }
        },
        slice_thickness_mm: get_f64(obj, tags::SLICE_THICKNESS).filter(|t| *t > 0.0),
        kvp: get_f64(obj, tags::KVP),
        exposure_mas: get_f64(obj, tags::EXPOSURE).or_else(|| {
            let ma = get_f64(obj, tags::X_RAY_TUBE_CURRENT)?;
            let ms = get_f64(obj, tags::EXPOSURE_TIME)?;
            Some(ma * ms / 1000.0)
        }),
        contrast_agent: get_str(obj, tags::CONTRAST_BOLUS_AGENT),
        pixel_spacing_mm: arr2(get_multi_f64(obj, tags::PIXEL_SPACING)),
        transfer_syntax: if ts.is_empty() {
            None
        } else {
            Some(ts.clone())
        },
        source_format: None,
    };
    if meta.patient_age_years.is_none()
        && let (Some(b), Some(s)) = (
            get_str(obj, tags::PATIENT_BIRTH_DATE),
            get_str(obj, tags::STUDY_DATE),
        )
    {
        meta.patient_age_years = age_from_dates(&b, &s);
    }
    let identity = Identity {
        patient_name: get_str(obj, tags::PATIENT_NAME),
        patient_id: get_str(obj, tags::PATIENT_ID),
    };
    let pixel = pixel_info(obj);

    // Frame geometry: classic single/multi-frame first, enhanced functional groups override.
    let classic = FrameGeom {
        position: arr3(get_multi_f64(obj, tags::IMAGE_POSITION_PATIENT)),
        orientation: arr6(get_multi_f64(obj, tags::IMAGE_ORIENTATION_PATIENT)),
        pixel_spacing: meta.pixel_spacing_mm,
        thickness_mm: meta.slice_thickness_mm,
        slope: get_f64(obj, tags::RESCALE_SLOPE).unwrap_or(1.0),
        intercept: get_f64(obj, tags::RESCALE_INTERCEPT).unwrap_or(0.0),
    };
    let n_frames = pixel.as_ref().map(|p| p.n_frames).unwrap_or(1);
    let spacing_between_slices = get_f64(obj, tags::SPACING_BETWEEN_SLICES).filter(|s| *s > 0.0);
    let mut frames = Vec::new();
    let mut enhanced = false;
    let shared = first_item(obj, tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE);
    let per_frame = obj
        .element_opt(tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE)
        .ok()
        .flatten()
        .and_then(|e| e.items());
    if let Some(items) = per_frame {
        enhanced = true;
        let base = shared.map(|s| apply_groups(classic, s)).unwrap_or(classic);
        for it in items.iter().take(n_frames as usize) {
            frames.push(apply_groups(base, it));
        }
        if let Some(first) = frames.first() {
            meta.pixel_spacing_mm = first.pixel_spacing.or(meta.pixel_spacing_mm);
            meta.slice_thickness_mm = first.thickness_mm.or(meta.slice_thickness_mm);
        }
        // Enhanced CT keeps the kernel in the CT Reconstruction functional group.
        if meta.kernel.is_none() {
            let from_group = |g: &InMemDicomObject| {
                first_item(g, tags::CT_RECONSTRUCTION_SEQUENCE)
                    .and_then(|r| get_str(r, tags::CONVOLUTION_KERNEL))
            };
            meta.kernel = shared
                .and_then(from_group)
                .or_else(|| items.first().and_then(from_group));
        }
    } else if n_frames > 1 {
        // Classic multi-frame: frames stacked along the normal at SpacingBetweenSlices.
        let step = spacing_between_slices
            .or(classic.thickness_mm)
            .unwrap_or(1.0);
        for k in 0..n_frames.min(100_000) {
            let mut f = classic;
            if let (Some(p), Some(o)) = (classic.position, classic.orientation) {
                let n = cross([o[0], o[1], o[2]], [o[3], o[4], o[5]]);
                f.position = Some([
                    p[0] + n[0] * step * f64::from(k),
                    p[1] + n[1] * step * f64::from(k),
                    p[2] + n[2] * step * f64::from(k),
                ]);
            }
            frames.push(f);
        }
    } else {
        frames.push(classic);
    }

    Ok(FileHeader {
        path: path.to_path_buf(),
        file_len,
        sop_class,
        sop_instance: get_str(obj, tags::SOP_INSTANCE_UID),
        transfer_syntax: ts,
        series_uid: meta.series_instance_uid.clone(),
        image_type: get_multi_str(obj, tags::IMAGE_TYPE)
            .into_iter()
            .map(|s| s.to_ascii_uppercase())
            .collect(),
        instance_number: get_int(obj, tags::INSTANCE_NUMBER),
        acquisition_number: get_int(obj, tags::ACQUISITION_NUMBER),
        meta,
        identity,
        pixel,
        frames,
        enhanced,
    })
}

fn apply_groups(mut f: FrameGeom, group: &InMemDicomObject) -> FrameGeom {
    if let Some(p) = first_item(group, tags::PLANE_POSITION_SEQUENCE)
        && let Some(v) = arr3(get_multi_f64(p, tags::IMAGE_POSITION_PATIENT))
    {
        f.position = Some(v);
    }
    if let Some(o) = first_item(group, tags::PLANE_ORIENTATION_SEQUENCE)
        && let Some(v) = arr6(get_multi_f64(o, tags::IMAGE_ORIENTATION_PATIENT))
    {
        f.orientation = Some(v);
    }
    if let Some(m) = first_item(group, tags::PIXEL_MEASURES_SEQUENCE) {
        if let Some(v) = arr2(get_multi_f64(m, tags::PIXEL_SPACING)) {
            f.pixel_spacing = Some(v);
        }
        if let Some(t) = get_f64(m, tags::SLICE_THICKNESS).filter(|t| *t > 0.0) {
            f.thickness_mm = Some(t);
        }
    }
    if let Some(t) = first_item(group, tags::PIXEL_VALUE_TRANSFORMATION_SEQUENCE) {
        if let Some(s) = get_f64(t, tags::RESCALE_SLOPE) {
            f.slope = s;
        }
        if let Some(i) = get_f64(t, tags::RESCALE_INTERCEPT) {
            f.intercept = i;
        }
    }
    f
}

/// What a file turned out to be when scanning a folder.
#[derive(Debug)]
pub(crate) enum Sniff {
    Empty,
    NotDicom,
    Dicom,
}

/// Cheap look at the first bytes: DICM magic at 128, or a plausible group-0002/0008 start.
pub(crate) fn sniff(path: &Path) -> Result<(Sniff, u64), LoadError> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).map_err(|e| LoadError::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    if len == 0 {
        return Ok((Sniff::Empty, 0));
    }
    let mut buf = [0u8; 132];
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(LoadError::Io {
                    path: path.to_path_buf(),
                    source: e,
                });
            }
        }
    }
    if n >= 132 && &buf[128..132] == b"DICM" {
        return Ok((Sniff::Dicom, len));
    }
    // Files without preamble but starting with the meta group (0002,xxxx).
    if n >= 4 && buf[0] == 0x02 && buf[1] == 0x00 {
        return Ok((Sniff::Dicom, len));
    }
    Ok((Sniff::NotDicom, len))
}

/// Read and parse one file's header. `len` is its size in bytes. Only the bytes up to Pixel
/// Data are read (in growing chunks), walked and checked ([`crate::layout`]) before dicom-rs parses them.
pub(crate) fn read_header(path: &Path, len: u64) -> Result<FileHeader, LoadError> {
    use std::io::Read;
    let io = |e: std::io::Error| LoadError::Io {
        path: path.to_path_buf(),
        source: e,
    };
    let file_len = usize::try_from(len).map_err(|_| LoadError::TooLarge {
        path: path.to_path_buf(),
        detail: format!("{len} bytes"),
    })?;
    let mut f = std::fs::File::open(path).map_err(io)?;
    let mut buf: Vec<u8> = Vec::new();
    let mut want = file_len.min(16 << 10);
    let layout = loop {
        if buf.len() < want {
            let start = buf.len();
            buf.resize(want, 0);
            let mut got = start;
            while got < want {
                match f.read(&mut buf[got..]) {
                    Ok(0) => break,
                    Ok(k) => got += k,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(io(e)),
                }
            }
            buf.truncate(got);
        }
        match crate::layout::walk(&buf, file_len) {
            Ok(l) => break l,
            Err(WalkError::NeedMore) if buf.len() < file_len && buf.len() == want => {
                want = file_len.min(want * 4)
            }
            Err(WalkError::NeedMore) if buf.len() < file_len => {
                return Err(LoadError::Truncated {
                    path: path.to_path_buf(),
                    detail: format!(
                        "the file changed or could not be read past byte {}",
                        buf.len()
                    ),
                });
            }
            Err(WalkError::NeedMore) => {
                return Err(LoadError::Truncated {
                    path: path.to_path_buf(),
                    detail: "the file ends inside an element".into(),
                });
            }
            Err(WalkError::Truncated(m)) => {
                return Err(LoadError::Truncated {
                    path: path.to_path_buf(),
                    detail: m,
                });
            }
            Err(WalkError::Bad(m)) => {
                return Err(LoadError::InvalidDicom {
                    path: path.to_path_buf(),
                    reason: m,
                });
            }
        }
    };
    if !layout.walked {
        // Deflated data set: only dicom-rs can read it (all of it, through the repaired meta).
        let mut all = Vec::new();
        std::fs::File::open(path)
            .and_then(|mut f| f.read_to_end(&mut all))
            .map_err(io)?;
        let stream = layout.stream(&all, all.len());
        let obj = OpenFileOptions::new()
            .read_preamble(dicom_object::file::ReadPreamble::Never)
            .read_until(tags::PIXEL_DATA)
            .from_reader(&stream[..])
            .map_err(|e| LoadError::InvalidDicom {
                path: path.to_path_buf(),
                reason: flat(&e),
            })?;
        return parse_header(path, len, &obj);
    }
    let until = layout.pixel.map(|p| p.header_start).unwrap_or(buf.len());
    let stream = layout.stream(&buf, until);
    let obj = OpenFileOptions::new()
        .read_preamble(dicom_object::file::ReadPreamble::Never)
        .read_until(tags::PIXEL_DATA)
        .from_reader(&stream[..])
        .map_err(|e| LoadError::InvalidDicom {
            path: path.to_path_buf(),
            reason: flat(&e),
        })?;
    let mut h = parse_header(path, len, &obj)?;
    // Report the file's own (retired 12-bit JPEG) syntax, not the alias dicom-rs was given.
    if let Some(ts) = crate::ts::retired_ts_in(
        buf.get(layout.meta_start..layout.dataset_start)
            .unwrap_or(&[]),
        &h.transfer_syntax,
    ) {
        h.meta.transfer_syntax = Some(ts.clone());
        h.transfer_syntax = ts;
    }
    Ok(h)
}

#[cfg(test)]
mod age_tests {
    use super::age_from_dates;

    #[test]
    fn age_from_dates_refuses_placeholders_and_impossible_ages() {
        let a = age_from_dates("19800615", "20200615").expect("age");
        assert!((a - 40.0).abs() < 0.01);
        assert_eq!(
            age_from_dates("19000101", "20150301"),
            None,
            "placeholder birth date"
        );
        assert_eq!(
            age_from_dates("20200102", "20200101"),
            None,
            "born after the study"
        );
        assert_eq!(age_from_dates("1980", "20200101"), None, "unparsable");
        // Equal dates parse (a newborn is possible); the analysis judges it by the anatomy.
        assert_eq!(age_from_dates("20200101", "20200101"), Some(0.0));
    }
}
