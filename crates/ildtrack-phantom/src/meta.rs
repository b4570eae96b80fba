//! The series' identifying facts: deterministic UIDs and the spec's ScanMeta completed, shared
//! by the generator (which returns the meta) and the DICOM writer (which writes it).

use ildtrack_volume::ScanMeta;

use crate::rng::mix64;
use crate::spec::PhantomSpec;

/// Deterministic DICOM UID (`2.25.<decimal>`) from a key.
pub fn synthetic_uid(key: &str, seed: u64) -> String {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ seed;
    for b in key.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let hi = mix64(h) as u128;
    let lo = mix64(h ^ 0xA5A5_A5A5_5A5A_5A5A) as u128;
    // 2.25 UIDs are decimal UUIDs: keep it below 2^122 like a random v4 UUID.
    let v = ((hi << 64) | lo) >> 6;
    format!("2.25.{v}")
}

pub(crate) fn study_key(spec: &PhantomSpec) -> String {
    format!(
        "study|{}|{}|{}",
        spec.identity.patient_id.as_deref().unwrap_or(""),
        spec.meta.study_date.as_deref().unwrap_or(""),
        spec.seed
    )
}

/// The spec's ScanMeta with grid facts, UIDs and defaults filled in.
pub(crate) fn complete_meta(spec: &PhantomSpec) -> ScanMeta {
    let mut m = spec.meta.clone();
    let d = crate::spec::default_meta();
    m.modality.get_or_insert_with(|| "CT".into());
    if m.slice_thickness_mm.is_none() {
        m.slice_thickness_mm = Some(spec.spacing_mm[0]);
    }
    if m.pixel_spacing_mm.is_none() {
        m.pixel_spacing_mm = Some([spec.spacing_mm[1], spec.spacing_mm[2]]);
    }
    if m.study_instance_uid.is_none() {
        m.study_instance_uid = Some(synthetic_uid(&study_key(spec), spec.anatomy_seed()));
    }
    if m.series_instance_uid.is_none() {
        m.series_instance_uid = Some(synthetic_uid(
            &format!("{}|series2", study_key(spec)),
            spec.anatomy_seed(),
        ));
    }
    if spec.contrast && m.contrast_agent.is_none() {
        m.contrast_agent = Some("IODINE".into());
    }
    if m.kernel.is_none() {
        m.kernel = d.kernel;
    }
    m.source_format.get_or_insert_with(|| "phantom".into());
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_are_valid_and_distinct() {
        let a = synthetic_uid("a", 1);
        let b = synthetic_uid("b", 1);
        let c = synthetic_uid("a", 2);
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_eq!(a, synthetic_uid("a", 1));
        for u in [a, b, c] {
            assert!(u.len() <= 64 && u.starts_with("2.25."));
            assert!(u[5..].chars().all(|ch| ch.is_ascii_digit()));
            assert!(!u[5..].starts_with('0') || u.len() == 6);
        }
    }
}
