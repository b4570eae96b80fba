//! DICOM Segmentation (binary SEG) output: the lung and density-class label maps as a
//! Segmentation Storage object beside the source series, for PACS and viewers (OHIF, 3D Slicer).
//!
//! - [`source_series`] re-reads the headers of the analysed DICOM stack: SOP class and instance
//!   of every slice with its position, the Frame of Reference, and the patient / study
//!   attributes to copy (read into the object and written out, never logged).
//! - [`write_seg`] writes one binary SEG: a segment per [`SegmentSpec`] with coded concepts
//!   (codes in `docs/DICOM-OUT.md`), one frame per segment and slice where the segment has
//!   voxels, each frame referencing the source image at its position (Derivation Image), the
//!   whole series referenced (Common Instance Reference), same Frame of Reference, dimensions
//!   (segment number, image position).
//!
//! New UIDs are `2.25.<128-bit number>` (PS3.5 B.2: a UUID as a decimal number; no registered
//! root needed), drawn from the process's random hasher keys, the clock and a counter.

use std::io::Write;
use std::path::Path;

use dicom_core::smallvec::SmallVec;
use dicom_core::value::{DataSetSequence, PrimitiveValue};
use dicom_core::{DataElement, Tag, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::InMemDicomObject;
use dicom_object::meta::FileMetaTableBuilder;
use ildtrack_volume::Volume;

use crate::LoadError;
use crate::series::LoadOptions;

/// The SOP class of a Segmentation.
pub const SEGMENTATION_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.66.4";

/// One source image of the analysed stack.
#[derive(Debug, Clone)]
pub struct SourceInstance {
    pub sop_class_uid: String,
    pub sop_instance_uid: String,
    /// ImagePositionPatient (LPS, mm) of the slice.
    pub position: [f64; 3],
    /// The frame (1-based) when the instance is multi-frame (enhanced CT), else `None`.
    pub frame: Option<u32>,
}

/// What a derived object needs from its source series.
#[derive(Debug, Clone)]
pub struct SourceSeries {
    pub study_instance_uid: String,
    pub series_instance_uid: String,
    pub frame_of_reference_uid: String,
    pub instances: Vec<SourceInstance>,
    /// Patient, study and equipment-independent attributes copied from the first source file.
    /// Holds patient name and ID: never log it.
    copied: InMemDicomObject,
}

/// Attributes copied from the source: Patient and General Study modules (and the character
/// set they are written in).
const COPIED: [Tag; 14] = [
    tags::SPECIFIC_CHARACTER_SET,
    tags::PATIENT_NAME,
    tags::PATIENT_ID,
    tags::PATIENT_BIRTH_DATE,
    tags::PATIENT_SEX,
    tags::PATIENT_AGE,
    tags::STUDY_INSTANCE_UID,
    tags::STUDY_DATE,
    tags::STUDY_TIME,
    tags::REFERRING_PHYSICIAN_NAME,
    tags::STUDY_ID,
    tags::ACCESSION_NUMBER,
    tags::STUDY_DESCRIPTION,
    tags::POSITION_REFERENCE_INDICATOR,
];

/// Type 2 attributes of the copied modules: written empty when the source lacks them.
pub(crate) const TYPE2: [(Tag, VR); 7] = [
    (tags::PATIENT_NAME, VR::PN),
    (tags::PATIENT_ID, VR::LO),
    (tags::PATIENT_BIRTH_DATE, VR::DA),
    (tags::PATIENT_SEX, VR::CS),
    (tags::REFERRING_PHYSICIAN_NAME, VR::PN),
    (tags::STUDY_ID, VR::SH),
    (tags::ACCESSION_NUMBER, VR::SH),
];

fn not_dicom_source(path: &Path, format: &str) -> LoadError {
    LoadError::DicomOutNeedsDicom {
        path: path.to_path_buf(),
        format: format.to_string(),
    }
}

/// The analysed stack of `input` (the same choice as [`crate::load`] with `opts`), for
/// [`write_seg`]. A NIfTI or NRRD input has no DICOM source: [`LoadError::DicomOutNeedsDicom`].
pub fn source_series(input: &Path, opts: &LoadOptions) -> Result<SourceSeries, LoadError> {
    if input.is_file() && crate::nifti::is_nifti_path(input) {
        return Err(not_dicom_source(input, "NIfTI"));
    }
    if input.is_file() && crate::nrrd::is_nrrd_path(input) {
        return Err(not_dicom_source(input, "NRRD"));
    }
    let mut scan = crate::scan(input)?;
    if opts.series_uid.is_some() {
        crate::scan::choose(&mut scan, opts);
    }
    let Some(idx) = scan.chosen else {
        return Err(LoadError::NoUsableSeries {
            path: input.to_path_buf(),
            detail: "no stack chosen".into(),
        });
    };
    let e = &scan.series[idx];
    let mut instances = Vec::with_capacity(e.slices.len());
    for s in &e.slices {
        let f = &scan.files[s.file];
        let (Some(sop), Some(pos)) = (
            f.sop_instance.clone(),
            f.frames.get(s.frame as usize).and_then(|g| g.position),
        ) else {
            continue;
        };
        instances.push(SourceInstance {
            sop_class_uid: f.sop_class.clone(),
            sop_instance_uid: sop,
            position: pos,
            frame: (f.frames.len() > 1).then_some(s.frame + 1),
        });
    }
    let first = e.slices.first().map(|s| scan.files[s.file].path.clone());
    let Some(first_file) = first else {
        return Err(LoadError::NoUsableSeries {
            path: input.to_path_buf(),
            detail: "the chosen stack has no slices".into(),
        });
    };
    // The file passed the scan's byte-level walk, so dicom-rs may read its header.
    let obj = dicom_object::OpenFileOptions::new()
        .read_until(tags::PIXEL_DATA)
        .open_file(&first_file)
        .map_err(|e| LoadError::InvalidDicom {
            path: first_file.clone(),
            reason: crate::header::flat(&e),
        })?;
    let mut copied = InMemDicomObject::new_empty();
    for t in COPIED {
        if let Ok(el) = obj.element(t) {
            copied.put(el.clone());
        }
    }
    let get = |t: Tag| crate::header::get_str(&copied, t);
    let frame_of_reference_uid = crate::header::get_str(&obj, tags::FRAME_OF_REFERENCE_UID)
        .ok_or_else(|| LoadError::BadHeader {
            path: first_file.clone(),
            reason: "no FrameOfReferenceUID: a segmentation cannot share its frame".into(),
        })?;
    let study_instance_uid = get(tags::STUDY_INSTANCE_UID).ok_or_else(|| LoadError::BadHeader {
        path: first_file.clone(),
        reason: "no StudyInstanceUID".into(),
    })?;
    Ok(SourceSeries {
        study_instance_uid,
        series_instance_uid: e.uid.clone(),
        frame_of_reference_uid,
        instances,
        copied,
    })
}

impl SourceSeries {
    /// Each SOP instance once (a multi-frame instance holds several slices), in slice order.
    pub fn distinct_instances(&self) -> impl Iterator<Item = &SourceInstance> {
        let mut seen = std::collections::HashSet::new();
        self.instances
            .iter()
            .filter(move |i| seen.insert(i.sop_instance_uid.as_str()))
    }

    /// The patient / study attributes copied from the source (holds patient name and ID).
    pub(crate) fn copied_attributes(&self) -> &InMemDicomObject {
        &self.copied
    }
}

/// A coded concept (code value, coding scheme, meaning).
#[derive(Debug, Clone, Copy)]
pub struct Code {
    pub value: &'static str,
    pub scheme: &'static str,
    pub meaning: &'static str,
}

/// One segment of a SEG: the voxels of `layers[layer]` equal to `label`.
#[derive(Debug, Clone)]
pub struct SegmentSpec {
    pub label_text: String,
    pub category: Code,
    pub property: Code,
    pub layer: usize,
    pub label: u8,
}

/// A fresh `2.25.` UID.
pub fn new_uid() -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static KEYS: std::sync::OnceLock<std::collections::hash_map::RandomState> =
        std::sync::OnceLock::new();
    let keys = KEYS.get_or_init(std::collections::hash_map::RandomState::new);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let half = |salt: u64| {
        let mut h = keys.build_hasher();
        h.write_u64(salt);
        h.write_u64(n);
        h.write_u128(t);
        h.write_u32(std::process::id());
        h.finish()
    };
    let v = ((u128::from(half(1)) << 64) | u128::from(half(2))) >> 6;
    format!("2.25.{v}")
}

pub(crate) fn put(obj: &mut InMemDicomObject, tag: Tag, vr: VR, v: impl Into<String>) {
    obj.put(DataElement::new(tag, vr, PrimitiveValue::from(v.into())));
}

fn put_strs(obj: &mut InMemDicomObject, tag: Tag, vr: VR, v: &[String]) {
    obj.put(DataElement::new(
        tag,
        vr,
        PrimitiveValue::Strs(v.iter().cloned().collect()),
    ));
}

pub(crate) fn put_seq(obj: &mut InMemDicomObject, tag: Tag, items: Vec<InMemDicomObject>) {
    obj.put(DataElement::new(tag, VR::SQ, DataSetSequence::from(items)));
}

pub(crate) fn code_item(c: Code) -> InMemDicomObject {
    let mut o = InMemDicomObject::new_empty();
    put(&mut o, tags::CODE_VALUE, VR::SH, c.value);
    put(&mut o, tags::CODING_SCHEME_DESIGNATOR, VR::SH, c.scheme);
    put(&mut o, tags::CODE_MEANING, VR::LO, c.meaning);
    o
}

/// Decimal string of at most 16 characters (the DS limit); the SR's numbers too.
pub(crate) fn ds(v: f64) -> String {
    for p in (0..=10).rev() {
        let s = format!("{v:.p$}");
        let s = if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        };
        if s.len() <= 16 {
            return if s == "-0" { "0".into() } else { s };
        }
    }
    format!("{v:.3e}")
}

fn ds_list(v: &[f64]) -> Vec<String> {
    v.iter().map(|x| ds(*x)).collect()
}

/// DICOM date and time of now (UTC).
pub(crate) fn now_da_tm() -> (String, String) {
    da_tm(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    )
}

/// DICOM date and time of `secs` seconds after 1970-01-01 00:00 UTC.
fn da_tm(secs: u64) -> (String, String) {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        format!("{y:04}{m:02}{d:02}"),
        format!("{:02}{:02}{:02}", rem / 3600, rem % 3600 / 60, rem % 60),
    )
}

/// Write a binary DICOM Segmentation of `layers` (label maps on the grid of the source volume,
/// `(z, y, x)` with the source's geometry) to `path`, atomically. Returns the SEG's
/// SeriesInstanceUID and SOPInstanceUID, or `None` (nothing written) when no segment has a
/// voxel: a Segmentation must hold at least one frame.
pub fn write_seg(
    path: &Path,
    source: &SourceSeries,
    layers: &[&Volume<u8>],
    segments: &[SegmentSpec],
    software_version: &str,
) -> Result<Option<(String, String)>, LoadError> {
    let invalid = |reason: String| LoadError::WriteInvalid {
        path: path.to_path_buf(),
        reason,
    };
    let Some(first) = layers.first() else {
        return Err(invalid("no label map".into()));
    };
    let [nz, ny, nx] = first.dims_zyx();
    if layers.iter().any(|l| l.dims_zyx() != [nz, ny, nx]) {
        return Err(invalid("label maps differ in size".into()));
    }
    if let Some(s) = segments.iter().find(|s| s.layer >= layers.len()) {
        return Err(invalid(format!(
            "segment {} names a missing layer",
            s.label_text
        )));
    }
    let (rows, cols) = (
        u16::try_from(ny).map_err(|_| invalid(format!("{ny} rows do not fit DICOM")))?,
        u16::try_from(nx).map_err(|_| invalid(format!("{nx} columns do not fit DICOM")))?,
    );
    let g = &first.geometry;
    let iop = [
        g.direction[2][0],
        g.direction[2][1],
        g.direction[2][2],
        g.direction[1][0],
        g.direction[1][1],
        g.direction[1][2],
    ];
    // Source image at each volume slice: the instance whose position is that slice's (within
    // 1 % of the slice spacing); slices the loader interpolated have none.
    let tol = 0.01 * g.spacing_mm[0].max(1e-3);
    let source_at: Vec<Option<&SourceInstance>> = (0..nz)
        .map(|z| {
            let p = g.index_to_lps([z as f64, 0.0, 0.0]);
            source
                .instances
                .iter()
                .find(|s| (0..3).all(|k| (s.position[k] - p[k]).abs() <= tol.max(1e-3)))
        })
        .collect();

    let series_uid = new_uid();
    let sop_uid = new_uid();
    let dim_org_uid = new_uid();
    let (date, time) = now_da_tm();
    let mut obj = source.copied.clone();
    for (t, vr) in TYPE2 {
        if obj.element_opt(t).ok().flatten().is_none() {
            put(&mut obj, t, vr, "");
        }
    }
    if obj.element_opt(tags::STUDY_DATE).ok().flatten().is_none() {
        put(&mut obj, tags::STUDY_DATE, VR::DA, "");
    }
    if obj.element_opt(tags::STUDY_TIME).ok().flatten().is_none() {
        put(&mut obj, tags::STUDY_TIME, VR::TM, "");
    }
    if obj
        .element_opt(tags::POSITION_REFERENCE_INDICATOR)
        .ok()
        .flatten()
        .is_none()
    {
        put(&mut obj, tags::POSITION_REFERENCE_INDICATOR, VR::LO, "");
    }
    put(&mut obj, tags::SOP_CLASS_UID, VR::UI, SEGMENTATION_STORAGE);
    put(&mut obj, tags::SOP_INSTANCE_UID, VR::UI, sop_uid.clone());
    put(&mut obj, tags::MODALITY, VR::CS, "SEG");
    put(
        &mut obj,
        tags::SERIES_INSTANCE_UID,
        VR::UI,
        series_uid.clone(),
    );
    put(&mut obj, tags::SERIES_NUMBER, VR::IS, "900");
    put(
        &mut obj,
        tags::SERIES_DESCRIPTION,
        VR::LO,
        "ildtrack lungs and density classes",
    );
    put(
        &mut obj,
        tags::FRAME_OF_REFERENCE_UID,
        VR::UI,
        source.frame_of_reference_uid.clone(),
    );
    // General and Enhanced General Equipment.
    put(&mut obj, tags::MANUFACTURER, VR::LO, "ildtrack");
    put(&mut obj, tags::MANUFACTURER_MODEL_NAME, VR::LO, "ildtrack");
    put(&mut obj, tags::DEVICE_SERIAL_NUMBER, VR::LO, "0");
    put(&mut obj, tags::SOFTWARE_VERSIONS, VR::LO, software_version);
    // General Image / Segmentation Image.
    put(&mut obj, tags::INSTANCE_NUMBER, VR::IS, "1");
    put(&mut obj, tags::CONTENT_DATE, VR::DA, date.clone());
    put(&mut obj, tags::CONTENT_TIME, VR::TM, time.clone());
    put(&mut obj, tags::SERIES_DATE, VR::DA, date);
    put(&mut obj, tags::SERIES_TIME, VR::TM, time);
    put_strs(
        &mut obj,
        tags::IMAGE_TYPE,
        VR::CS,
        &["DERIVED".into(), "PRIMARY".into()],
    );
    put(&mut obj, tags::CONTENT_LABEL, VR::CS, "LUNG_DENSITY");
    put(
        &mut obj,
        tags::CONTENT_DESCRIPTION,
        VR::LO,
        "Lungs and CT density classes (ildtrack, research use)",
    );
    put(&mut obj, tags::CONTENT_CREATOR_NAME, VR::PN, "");
    put(&mut obj, tags::SEGMENTATION_TYPE, VR::CS, "BINARY");
    put(&mut obj, tags::LOSSY_IMAGE_COMPRESSION, VR::CS, "00");
    // Image Pixel: 1-bit.
    obj.put(DataElement::new(
        tags::SAMPLES_PER_PIXEL,
        VR::US,
        PrimitiveValue::from(1u16),
    ));
    put(
        &mut obj,
        tags::PHOTOMETRIC_INTERPRETATION,
        VR::CS,
        "MONOCHROME2",
    );
    obj.put(DataElement::new(
        tags::ROWS,
        VR::US,
        PrimitiveValue::from(rows),
    ));
    obj.put(DataElement::new(
        tags::COLUMNS,
        VR::US,
        PrimitiveValue::from(cols),
    ));
    for t in [tags::BITS_ALLOCATED, tags::BITS_STORED] {
        obj.put(DataElement::new(t, VR::US, PrimitiveValue::from(1u16)));
    }
    obj.put(DataElement::new(
        tags::HIGH_BIT,
        VR::US,
        PrimitiveValue::from(0u16),
    ));
    obj.put(DataElement::new(
        tags::PIXEL_REPRESENTATION,
        VR::US,
        PrimitiveValue::from(0u16),
    ));

    // Segment Sequence.
    let seg_items: Vec<InMemDicomObject> = segments
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut o = InMemDicomObject::new_empty();
            obj_u16(&mut o, tags::SEGMENT_NUMBER, (i + 1) as u16);
            put(&mut o, tags::SEGMENT_LABEL, VR::LO, s.label_text.clone());
            put(&mut o, tags::SEGMENT_ALGORITHM_TYPE, VR::CS, "AUTOMATIC");
            put(&mut o, tags::SEGMENT_ALGORITHM_NAME, VR::LO, "ildtrack");
            put_seq(
                &mut o,
                tags::SEGMENTED_PROPERTY_CATEGORY_CODE_SEQUENCE,
                vec![code_item(s.category)],
            );
            put_seq(
                &mut o,
                tags::SEGMENTED_PROPERTY_TYPE_CODE_SEQUENCE,
                vec![code_item(s.property)],
            );
            o
        })
        .collect();
    put_seq(&mut obj, tags::SEGMENT_SEQUENCE, seg_items);

    // Dimensions: segment number, then image position.
    let mut org = InMemDicomObject::new_empty();
    put(
        &mut org,
        tags::DIMENSION_ORGANIZATION_UID,
        VR::UI,
        dim_org_uid.clone(),
    );
    put_seq(&mut obj, tags::DIMENSION_ORGANIZATION_SEQUENCE, vec![org]);
    let dim = |pointer: Tag, group: Tag, desc: &str| {
        let mut o = InMemDicomObject::new_empty();
        put(
            &mut o,
            tags::DIMENSION_ORGANIZATION_UID,
            VR::UI,
            dim_org_uid.clone(),
        );
        o.put(DataElement::new(
            tags::DIMENSION_INDEX_POINTER,
            VR::AT,
            PrimitiveValue::Tags(SmallVec::from_vec(vec![pointer])),
        ));
        o.put(DataElement::new(
            tags::FUNCTIONAL_GROUP_POINTER,
            VR::AT,
            PrimitiveValue::Tags(SmallVec::from_vec(vec![group])),
        ));
        put(&mut o, tags::DIMENSION_DESCRIPTION_LABEL, VR::LO, desc);
        o
    };
    put_seq(
        &mut obj,
        tags::DIMENSION_INDEX_SEQUENCE,
        vec![
            dim(
                tags::REFERENCED_SEGMENT_NUMBER,
                tags::SEGMENT_IDENTIFICATION_SEQUENCE,
                "ReferencedSegmentNumber",
            ),
            dim(
                tags::IMAGE_POSITION_PATIENT,
                tags::PLANE_POSITION_SEQUENCE,
                "ImagePositionPatient",
            ),
        ],
    );

    // Shared functional groups: orientation and pixel measures.
    let mut shared = InMemDicomObject::new_empty();
    let mut orient = InMemDicomObject::new_empty();
    put_strs(
        &mut orient,
        tags::IMAGE_ORIENTATION_PATIENT,
        VR::DS,
        &ds_list(&iop),
    );
    put_seq(&mut shared, tags::PLANE_ORIENTATION_SEQUENCE, vec![orient]);
    let mut meas = InMemDicomObject::new_empty();
    put_strs(
        &mut meas,
        tags::PIXEL_SPACING,
        VR::DS,
        &ds_list(&[g.spacing_mm[1], g.spacing_mm[2]]),
    );
    put(
        &mut meas,
        tags::SLICE_THICKNESS,
        VR::DS,
        ds(g.spacing_mm[0]),
    );
    put(
        &mut meas,
        tags::SPACING_BETWEEN_SLICES,
        VR::DS,
        ds(g.spacing_mm[0]),
    );
    put_seq(&mut shared, tags::PIXEL_MEASURES_SEQUENCE, vec![meas]);
    put_seq(
        &mut obj,
        tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE,
        vec![shared],
    );

    // Frames: per segment, the slices where it has voxels; bits packed without gaps, LSB first.
    let px = ny * nx;
    let mut frames: Vec<InMemDicomObject> = Vec::new();
    let mut bits: Vec<u8> = Vec::new();
    let mut nbits: usize = 0;
    for (i, s) in segments.iter().enumerate() {
        let layer = &layers[s.layer].data;
        for (z, source_here) in source_at.iter().enumerate() {
            let plane = layer.index_axis(ndarray::Axis(0), z);
            if !plane.iter().any(|&v| v == s.label) {
                continue;
            }
            bits.resize((nbits + px).div_ceil(8), 0);
            for (k, &v) in plane.iter().enumerate() {
                if v == s.label {
                    let b = nbits + k;
                    bits[b / 8] |= 1 << (b % 8);
                }
            }
            nbits += px;
            let mut f = InMemDicomObject::new_empty();
            let mut content = InMemDicomObject::new_empty();
            content.put(DataElement::new(
                tags::DIMENSION_INDEX_VALUES,
                VR::UL,
                PrimitiveValue::U32(SmallVec::from_vec(vec![(i + 1) as u32, (z + 1) as u32])),
            ));
            put_seq(&mut f, tags::FRAME_CONTENT_SEQUENCE, vec![content]);
            let mut pos = InMemDicomObject::new_empty();
            put_strs(
                &mut pos,
                tags::IMAGE_POSITION_PATIENT,
                VR::DS,
                &ds_list(&g.index_to_lps([z as f64, 0.0, 0.0])),
            );
            put_seq(&mut f, tags::PLANE_POSITION_SEQUENCE, vec![pos]);
            let mut sid = InMemDicomObject::new_empty();
            obj_u16(&mut sid, tags::REFERENCED_SEGMENT_NUMBER, (i + 1) as u16);
            put_seq(&mut f, tags::SEGMENT_IDENTIFICATION_SEQUENCE, vec![sid]);
            if let Some(src) = source_here {
                let mut srci = InMemDicomObject::new_empty();
                put(
                    &mut srci,
                    tags::REFERENCED_SOP_CLASS_UID,
                    VR::UI,
                    src.sop_class_uid.clone(),
                );
                put(
                    &mut srci,
                    tags::REFERENCED_SOP_INSTANCE_UID,
                    VR::UI,
                    src.sop_instance_uid.clone(),
                );
                if let Some(frame) = src.frame {
                    srci.put(DataElement::new(
                        tags::REFERENCED_FRAME_NUMBER,
                        VR::IS,
                        PrimitiveValue::from(frame.to_string()),
                    ));
                }
                put_seq(
                    &mut srci,
                    tags::PURPOSE_OF_REFERENCE_CODE_SEQUENCE,
                    vec![code_item(Code {
                        value: "121322",
                        scheme: "DCM",
                        meaning: "Source image for image processing operation",
                    })],
                );
                let mut deriv = InMemDicomObject::new_empty();
                put_seq(
                    &mut deriv,
                    tags::DERIVATION_CODE_SEQUENCE,
                    vec![code_item(Code {
                        value: "113076",
                        scheme: "DCM",
                        meaning: "Segmentation",
                    })],
                );
                put_seq(&mut deriv, tags::SOURCE_IMAGE_SEQUENCE, vec![srci]);
                put_seq(&mut f, tags::DERIVATION_IMAGE_SEQUENCE, vec![deriv]);
            } else {
                // A slice the loader interpolated has no source image; the sequence is type 2
                // in the Derivation Image macro, so it is present and empty.
                put_seq(&mut f, tags::DERIVATION_IMAGE_SEQUENCE, vec![]);
            }
            frames.push(f);
        }
    }
    if frames.is_empty() {
        // A SEG needs at least one frame: with no segment voxel there is nothing to write.
        return Ok(None);
    }
    put(
        &mut obj,
        tags::NUMBER_OF_FRAMES,
        VR::IS,
        frames.len().to_string(),
    );
    put_seq(&mut obj, tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE, frames);

    // Common Instance Reference: the whole source series.
    let refs: Vec<InMemDicomObject> = source
        .distinct_instances()
        .map(|s| {
            let mut o = InMemDicomObject::new_empty();
            put(
                &mut o,
                tags::REFERENCED_SOP_CLASS_UID,
                VR::UI,
                s.sop_class_uid.clone(),
            );
            put(
                &mut o,
                tags::REFERENCED_SOP_INSTANCE_UID,
                VR::UI,
                s.sop_instance_uid.clone(),
            );
            o
        })
        .collect();
    let mut rs = InMemDicomObject::new_empty();
    put(
        &mut rs,
        tags::SERIES_INSTANCE_UID,
        VR::UI,
        source.series_instance_uid.clone(),
    );
    put_seq(&mut rs, tags::REFERENCED_INSTANCE_SEQUENCE, refs);
    put_seq(&mut obj, tags::REFERENCED_SERIES_SEQUENCE, vec![rs]);

    if bits.len() % 2 == 1 {
        bits.push(0); // even length
    }
    obj.put(DataElement::new(
        tags::PIXEL_DATA,
        VR::OB,
        PrimitiveValue::U8(SmallVec::from_vec(bits)),
    ));

    let file = obj
        .with_meta(
            FileMetaTableBuilder::new()
                .transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN)
                .media_storage_sop_class_uid(SEGMENTATION_STORAGE)
                .media_storage_sop_instance_uid(sop_uid.clone()),
        )
        .map_err(|e| invalid(format!("file meta: {e}")))?;
    let mut bytes = Vec::new();
    file.write_all(&mut bytes)
        .map_err(|e| invalid(format!("encoding the SEG: {}", crate::header::flat(&e))))?;
    ildtrack_fs::write_atomic_with(path, |f| f.write_all(&bytes)).map_err(|e| {
        LoadError::Write {
            path: path.to_path_buf(),
            source: e,
        }
    })?;
    tracing::debug!(frames = nbits / px.max(1), "DICOM SEG written");
    Ok(Some((series_uid, sop_uid)))
}

fn obj_u16(o: &mut InMemDicomObject, tag: Tag, v: u16) {
    o.put(DataElement::new(tag, VR::US, PrimitiveValue::from(v)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_uids_are_distinct_valid_2_25_uids() {
        let a: Vec<String> = (0..1000).map(|_| new_uid()).collect();
        let set: std::collections::HashSet<&String> = a.iter().collect();
        assert_eq!(set.len(), a.len(), "a UID repeated");
        for u in &a {
            // PS3.5 9.1: at most 64 characters, digits and dots, no leading zero in a component.
            assert!(u.len() <= 64 && u.starts_with("2.25."), "{u}");
            let n = &u[5..];
            assert!(
                n.bytes().all(|b| b.is_ascii_digit()) && (n == "0" || !n.starts_with('0')),
                "{u}"
            );
        }
    }

    #[test]
    fn decimal_strings_fit_16_characters() {
        for v in [
            0.0,
            -0.0,
            1.0 / 3.0,
            -173.1767578125,
            123456.789012345,
            -1e-12,
            5.0,
        ] {
            let s = ds(v);
            assert!(s.len() <= 16, "{v} → {s}");
            let back: f64 = s.parse().expect("parses");
            assert!((back - v).abs() <= 1e-6 * v.abs().max(1.0), "{v} → {s}");
        }
        assert_eq!(ds(-0.0), "0");
        assert_eq!(ds(8.0), "8");
    }

    #[test]
    fn civil_dates_from_unix_seconds() {
        assert_eq!(da_tm(0), ("19700101".into(), "000000".into()));
        assert_eq!(da_tm(951827696), ("20000229".into(), "123456".into()));
        assert_eq!(da_tm(1798761599), ("20261231".into(), "235959".into()));
        assert_eq!(da_tm(4107542400), ("21000301".into(), "000000".into()));
    }

    #[test]
    fn todays_date_and_time_are_dicom_da_and_tm() {
        let (d, t) = now_da_tm();
        assert!(d.len() == 8 && d.bytes().all(|b| b.is_ascii_digit()), "{d}");
        assert!(d.as_str() >= "20240101", "{d}");
        assert!(t.len() == 6 && t.as_str() < "240000", "{t}");
    }
}
