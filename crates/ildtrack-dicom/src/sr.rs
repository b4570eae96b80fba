//! DICOM Structured Report output: a TID 1500 Measurement Report (Comprehensive SR) with the
//! main metrics per region, referencing the DICOM SEG of the same run ([`crate::seg`]) and the
//! source series. Codes and structure: `docs/DICOM-OUT.md`.
//!
//! Tree: Imaging Measurement Report (TID 1500) → language, observer context (device),
//! procedure reported, Image Library (the source images), Imaging Measurements → one
//! Measurement Group per region (TID 1411 volumetric ROI measurements when the region is a
//! SEG segment; the whole lungs as a TID 1501 group), each with tracking identifiers, finding
//! site and NUM items in UCUM units.

use std::io::Write;
use std::path::Path;

use dicom_core::value::PrimitiveValue;
use dicom_core::{DataElement, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::InMemDicomObject;
use dicom_object::meta::FileMetaTableBuilder;

use crate::LoadError;
use crate::seg::{Code, SEGMENTATION_STORAGE, SourceSeries, code_item, ds, new_uid, put, put_seq};

/// Comprehensive SR Storage.
pub const COMPREHENSIVE_SR_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.88.33";

/// Our own coding scheme (PS3.3 8.2: a private scheme designator starts with "99") for the
/// metrics DICOM has no code for; declared in the Coding Scheme Identification Sequence.
pub const PRIVATE_SCHEME: &str = "99ILDTRACK";

/// One numeric measurement.
#[derive(Debug, Clone)]
pub struct Measurement {
    pub concept: Code,
    pub value: f64,
    /// UCUM unit.
    pub unit: Code,
    /// How the value was derived (e.g. Mean), as a HAS CONCEPT MOD.
    pub derivation: Option<Code>,
}

/// The measurements of one region.
#[derive(Debug, Clone)]
pub struct RegionMeasurements {
    pub tracking_id: String,
    pub finding_site: Code,
    /// The SEG segment this region is (TID 1411), or `None` (TID 1501).
    pub segment_number: Option<u16>,
    pub measurements: Vec<Measurement>,
}

const fn dcm(value: &'static str, meaning: &'static str) -> Code {
    Code {
        value,
        scheme: "DCM",
        meaning,
    }
}

/// A content item: relationship, value type, concept name.
fn item(rel: &str, vt: &str, concept: Code) -> InMemDicomObject {
    let mut o = InMemDicomObject::new_empty();
    put(&mut o, tags::RELATIONSHIP_TYPE, VR::CS, rel);
    put(&mut o, tags::VALUE_TYPE, VR::CS, vt);
    put_seq(
        &mut o,
        tags::CONCEPT_NAME_CODE_SEQUENCE,
        vec![code_item(concept)],
    );
    o
}

fn container(rel: &str, concept: Code, children: Vec<InMemDicomObject>) -> InMemDicomObject {
    let mut o = item(rel, "CONTAINER", concept);
    put(&mut o, tags::CONTINUITY_OF_CONTENT, VR::CS, "SEPARATE");
    put_seq(&mut o, tags::CONTENT_SEQUENCE, children);
    o
}

fn code_value(rel: &str, concept: Code, value: Code) -> InMemDicomObject {
    let mut o = item(rel, "CODE", concept);
    put_seq(&mut o, tags::CONCEPT_CODE_SEQUENCE, vec![code_item(value)]);
    o
}

fn text(rel: &str, concept: Code, value: &str) -> InMemDicomObject {
    let mut o = item(rel, "TEXT", concept);
    put(&mut o, tags::TEXT_VALUE, VR::UT, value);
    o
}

fn uidref(rel: &str, concept: Code, value: &str) -> InMemDicomObject {
    let mut o = item(rel, "UIDREF", concept);
    put(&mut o, tags::UID, VR::UI, value);
    o
}

fn image(
    rel: &str,
    concept: Code,
    class: &str,
    instance: &str,
    segment: Option<u16>,
) -> InMemDicomObject {
    let mut o = item(rel, "IMAGE", concept);
    let mut r = InMemDicomObject::new_empty();
    put(&mut r, tags::REFERENCED_SOP_CLASS_UID, VR::UI, class);
    put(&mut r, tags::REFERENCED_SOP_INSTANCE_UID, VR::UI, instance);
    if let Some(s) = segment {
        r.put(DataElement::new(
            tags::REFERENCED_SEGMENT_NUMBER,
            VR::US,
            PrimitiveValue::from(s),
        ));
    }
    put_seq(&mut o, tags::REFERENCED_SOP_SEQUENCE, vec![r]);
    o
}

fn num(m: &Measurement) -> InMemDicomObject {
    let mut o = item("CONTAINS", "NUM", m.concept);
    let mut mv = InMemDicomObject::new_empty();
    put(&mut mv, tags::NUMERIC_VALUE, VR::DS, ds(m.value));
    put_seq(
        &mut mv,
        tags::MEASUREMENT_UNITS_CODE_SEQUENCE,
        vec![code_item(m.unit)],
    );
    put_seq(&mut o, tags::MEASURED_VALUE_SEQUENCE, vec![mv]);
    if let Some(d) = m.derivation {
        put_seq(
            &mut o,
            tags::CONTENT_SEQUENCE,
            vec![code_value(
                "HAS CONCEPT MOD",
                dcm("121401", "Derivation"),
                d,
            )],
        );
    }
    o
}

/// Write the Measurement Report to `path`, atomically. `seg` is the (SeriesInstanceUID,
/// SOPInstanceUID) of the SEG the regions' segment numbers refer to.
pub fn write_sr(
    path: &Path,
    source: &SourceSeries,
    seg: &(String, String),
    regions: &[RegionMeasurements],
    software_version: &str,
) -> Result<(), LoadError> {
    let invalid = |reason: String| LoadError::WriteInvalid {
        path: path.to_path_buf(),
        reason,
    };
    let series_uid = new_uid();
    let sop_uid = new_uid();
    let device_uid = new_uid();
    let (date, time) = crate::seg::now_da_tm();
    let mut obj = source.copied_attributes().clone();
    for (t, vr) in crate::seg::TYPE2 {
        if obj.element_opt(t).ok().flatten().is_none() {
            put(&mut obj, t, vr, "");
        }
    }
    for (t, vr) in [(tags::STUDY_DATE, VR::DA), (tags::STUDY_TIME, VR::TM)] {
        if obj.element_opt(t).ok().flatten().is_none() {
            put(&mut obj, t, vr, "");
        }
    }
    obj.remove_element(tags::POSITION_REFERENCE_INDICATOR);
    put(
        &mut obj,
        tags::SOP_CLASS_UID,
        VR::UI,
        COMPREHENSIVE_SR_STORAGE,
    );
    put(&mut obj, tags::SOP_INSTANCE_UID, VR::UI, sop_uid.clone());
    put(&mut obj, tags::MODALITY, VR::CS, "SR");
    put(&mut obj, tags::SERIES_INSTANCE_UID, VR::UI, series_uid);
    put(&mut obj, tags::SERIES_NUMBER, VR::IS, "901");
    put(
        &mut obj,
        tags::SERIES_DESCRIPTION,
        VR::LO,
        "ildtrack measurements",
    );
    put_seq(
        &mut obj,
        tags::REFERENCED_PERFORMED_PROCEDURE_STEP_SEQUENCE,
        vec![],
    );
    put(&mut obj, tags::MANUFACTURER, VR::LO, "ildtrack");
    put(&mut obj, tags::SOFTWARE_VERSIONS, VR::LO, software_version);
    put(&mut obj, tags::INSTANCE_NUMBER, VR::IS, "1");
    put(&mut obj, tags::CONTENT_DATE, VR::DA, date.clone());
    put(&mut obj, tags::CONTENT_TIME, VR::TM, time.clone());
    put(&mut obj, tags::SERIES_DATE, VR::DA, date);
    put(&mut obj, tags::SERIES_TIME, VR::TM, time);
    put(&mut obj, tags::COMPLETION_FLAG, VR::CS, "COMPLETE");
    put(&mut obj, tags::VERIFICATION_FLAG, VR::CS, "UNVERIFIED");
    put_seq(&mut obj, tags::PERFORMED_PROCEDURE_CODE_SEQUENCE, vec![]);
    let mut scheme = InMemDicomObject::new_empty();
    put(
        &mut scheme,
        tags::CODING_SCHEME_DESIGNATOR,
        VR::SH,
        PRIVATE_SCHEME,
    );
    put(
        &mut scheme,
        tags::CODING_SCHEME_NAME,
        VR::ST,
        "ildtrack metrics",
    );
    put(
        &mut scheme,
        tags::CODING_SCHEME_RESPONSIBLE_ORGANIZATION,
        VR::ST,
        "ildtrack",
    );
    put_seq(
        &mut obj,
        tags::CODING_SCHEME_IDENTIFICATION_SEQUENCE,
        vec![scheme],
    );

    // Evidence: the source images and the SEG, by series.
    let sop_ref = |class: &str, inst: &str| {
        let mut o = InMemDicomObject::new_empty();
        put(&mut o, tags::REFERENCED_SOP_CLASS_UID, VR::UI, class);
        put(&mut o, tags::REFERENCED_SOP_INSTANCE_UID, VR::UI, inst);
        o
    };
    let mut src_series = InMemDicomObject::new_empty();
    put(
        &mut src_series,
        tags::SERIES_INSTANCE_UID,
        VR::UI,
        source.series_instance_uid.clone(),
    );
    put_seq(
        &mut src_series,
        tags::REFERENCED_SOP_SEQUENCE,
        source
            .distinct_instances()
            .map(|i| sop_ref(&i.sop_class_uid, &i.sop_instance_uid))
            .collect(),
    );
    let mut seg_series = InMemDicomObject::new_empty();
    put(
        &mut seg_series,
        tags::SERIES_INSTANCE_UID,
        VR::UI,
        seg.0.clone(),
    );
    put_seq(
        &mut seg_series,
        tags::REFERENCED_SOP_SEQUENCE,
        vec![sop_ref(SEGMENTATION_STORAGE, &seg.1)],
    );
    let mut study = InMemDicomObject::new_empty();
    put(
        &mut study,
        tags::STUDY_INSTANCE_UID,
        VR::UI,
        source.study_instance_uid.clone(),
    );
    put_seq(
        &mut study,
        tags::REFERENCED_SERIES_SEQUENCE,
        vec![src_series, seg_series],
    );
    put_seq(
        &mut obj,
        tags::CURRENT_REQUESTED_PROCEDURE_EVIDENCE_SEQUENCE,
        vec![study],
    );

    // Content tree.
    let mut root = Vec::new();
    root.push(code_value(
        "HAS CONCEPT MOD",
        dcm("121049", "Language of Content Item and Descendants"),
        Code {
            value: "en-US",
            scheme: "RFC5646",
            meaning: "English (United States)",
        },
    ));
    root.push(code_value(
        "HAS OBS CONTEXT",
        dcm("121005", "Observer Type"),
        dcm("121007", "Device"),
    ));
    root.push(uidref(
        "HAS OBS CONTEXT",
        dcm("121012", "Device Observer UID"),
        &device_uid,
    ));
    let mut dev_name = item(
        "HAS OBS CONTEXT",
        "TEXT",
        dcm("121013", "Device Observer Name"),
    );
    put(&mut dev_name, tags::TEXT_VALUE, VR::UT, "ildtrack");
    root.push(dev_name);
    root.push(code_value(
        "HAS CONCEPT MOD",
        dcm("121058", "Procedure reported"),
        Code {
            value: "24627-2",
            scheme: "LN",
            meaning: "Chest CT",
        },
    ));
    // TID 1600 Image Library entries: the source images.
    let source_concept = Code {
        value: "260753009",
        scheme: "SCT",
        meaning: "Source",
    };
    let library: Vec<InMemDicomObject> = source
        .distinct_instances()
        .map(|i| {
            image(
                "CONTAINS",
                source_concept,
                &i.sop_class_uid,
                &i.sop_instance_uid,
                None,
            )
        })
        .collect();
    root.push(container(
        "CONTAINS",
        dcm("111028", "Image Library"),
        vec![container(
            "CONTAINS",
            dcm("126200", "Image Library Group"),
            library,
        )],
    ));
    let groups: Vec<InMemDicomObject> = regions
        .iter()
        .map(|r| {
            let mut c = vec![
                text(
                    "HAS OBS CONTEXT",
                    dcm("112039", "Tracking Identifier"),
                    &r.tracking_id,
                ),
                uidref(
                    "HAS OBS CONTEXT",
                    dcm("112040", "Tracking Unique Identifier"),
                    &new_uid(),
                ),
            ];
            if let Some(s) = r.segment_number {
                c.push(image(
                    "CONTAINS",
                    dcm("121191", "Referenced Segment"),
                    SEGMENTATION_STORAGE,
                    &seg.1,
                    Some(s),
                ));
                c.push(uidref(
                    "CONTAINS",
                    dcm("121232", "Source series for segmentation"),
                    &source.series_instance_uid,
                ));
            }
            c.push(code_value(
                "HAS CONCEPT MOD",
                Code {
                    value: "363698007",
                    scheme: "SCT",
                    meaning: "Finding Site",
                },
                r.finding_site,
            ));
            c.extend(r.measurements.iter().map(num));
            let mut g = container("CONTAINS", dcm("125007", "Measurement Group"), c);
            let template = if r.segment_number.is_some() {
                "1411"
            } else {
                "1501"
            };
            let mut t = InMemDicomObject::new_empty();
            put(&mut t, tags::MAPPING_RESOURCE, VR::CS, "DCMR");
            put(&mut t, tags::TEMPLATE_IDENTIFIER, VR::CS, template);
            put_seq(&mut g, tags::CONTENT_TEMPLATE_SEQUENCE, vec![t]);
            g
        })
        .collect();
    root.push(container(
        "CONTAINS",
        dcm("126010", "Imaging Measurements"),
        groups,
    ));

    put(&mut obj, tags::VALUE_TYPE, VR::CS, "CONTAINER");
    put_seq(
        &mut obj,
        tags::CONCEPT_NAME_CODE_SEQUENCE,
        vec![code_item(dcm("126000", "Imaging Measurement Report"))],
    );
    put(&mut obj, tags::CONTINUITY_OF_CONTENT, VR::CS, "SEPARATE");
    let mut t = InMemDicomObject::new_empty();
    put(&mut t, tags::MAPPING_RESOURCE, VR::CS, "DCMR");
    put(&mut t, tags::TEMPLATE_IDENTIFIER, VR::CS, "1500");
    put_seq(&mut obj, tags::CONTENT_TEMPLATE_SEQUENCE, vec![t]);
    put_seq(&mut obj, tags::CONTENT_SEQUENCE, root);

    let file = obj
        .with_meta(
            FileMetaTableBuilder::new()
                .transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN)
                .media_storage_sop_class_uid(COMPREHENSIVE_SR_STORAGE)
                .media_storage_sop_instance_uid(sop_uid),
        )
        .map_err(|e| invalid(format!("file meta: {e}")))?;
    let mut bytes = Vec::new();
    file.write_all(&mut bytes)
        .map_err(|e| invalid(format!("encoding the SR: {}", crate::header::flat(&e))))?;
    ildtrack_fs::write_atomic_with(path, |f| f.write_all(&bytes)).map_err(|e| LoadError::Write {
        path: path.to_path_buf(),
        source: e,
    })
}
