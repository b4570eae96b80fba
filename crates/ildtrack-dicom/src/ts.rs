//! Transfer syntax UIDs and what the loader needs to know about them.

use dicom_dictionary_std::uids;

pub(crate) const TS_IMPLICIT_LE: &str = uids::IMPLICIT_VR_LITTLE_ENDIAN;
pub(crate) const TS_EXPLICIT_LE: &str = uids::EXPLICIT_VR_LITTLE_ENDIAN;
// Retired by DICOM (hence deprecated in the dictionary) but still found in archives.
#[allow(deprecated)]
pub(crate) const TS_EXPLICIT_BE: &str = uids::EXPLICIT_VR_BIG_ENDIAN;
pub(crate) const TS_DEFLATED: &str = uids::DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN;
/// Retired 12-bit JPEG syntaxes, read as [`uids::JPEG_EXTENDED12_BIT`] (see [`alias_retired_ts`]).
#[allow(deprecated)]
const TS_RETIRED_12_BIT: [&str; 2] = [
    uids::JPEG_SPECTRAL_SELECTION_NON_HIERARCHICAL68,
    uids::JPEG_FULL_PROGRESSION_NON_HIERARCHICAL1012,
];

/// Whether pixel data in this transfer syntax is stored natively (not encapsulated).
pub(crate) fn is_native(ts: &str) -> bool {
    matches!(
        ts,
        TS_IMPLICIT_LE | TS_EXPLICIT_LE | TS_EXPLICIT_BE | TS_DEFLATED
    )
}

/// Whether pixel data in this syntax is a JPEG 2000 codestream (whose SIZ marker says signed
/// or unsigned).
pub(crate) fn is_jpeg2000(ts: &str) -> bool {
    [
        uids::JPEG2000_LOSSLESS,
        uids::JPEG2000,
        uids::JPEG2000MC_LOSSLESS,
        uids::JPEG2000MC,
        uids::JPIP_REFERENCED,
        uids::JPIP_REFERENCED_DEFLATE,
        uids::HTJ2K_LOSSLESS,
        uids::HTJ2K_LOSSLESS_RPCL,
        uids::HTJ2K,
        uids::JPIPHTJ2K_REFERENCED,
        uids::JPIPHTJ2K_REFERENCED_DEFLATE,
    ]
    .contains(&ts)
}

/// The registry's name of a transfer syntax, or `unknown (uid)`.
pub(crate) fn ts_name(uid: &str) -> String {
    use dicom_encoding::TransferSyntaxIndex;
    dicom_transfer_syntax_registry::TransferSyntaxRegistry
        .get(uid)
        .map(|t| t.name().to_string())
        .unwrap_or_else(|| {
            if uid.is_empty() {
                "unknown".into()
            } else {
                format!("unknown ({uid})")
            }
        })
}

/// The retired JPEG Spectral Selection (Process 6 & 8, …4.53) and Full Progression (Process 10
/// & 12, …4.55) syntaxes are unknown to dicom-rs, which then refuses the whole file. Their data
/// set is encoded exactly as JPEG Extended (Process 2 & 4, …4.51), whose UID has the same length:
/// the meta group handed to dicom-rs (`fixed`, or `DICM` + the original `meta` bytes) names
/// …4.51 instead, and its registered decoder (`ildtrack-jpeg12`) reads the progressive
/// codestream. `None`/`fixed` unchanged for every other syntax.
pub(crate) fn alias_retired_ts(ts: &str, fixed: Option<Vec<u8>>, meta: &[u8]) -> Option<Vec<u8>> {
    const ALIAS: &[u8] = uids::JPEG_EXTENDED12_BIT.as_bytes();
    if !TS_RETIRED_12_BIT.contains(&ts) {
        return fixed;
    }
    let mut m = fixed.unwrap_or_else(|| {
        let mut v = b"DICM".to_vec();
        v.extend_from_slice(meta);
        v
    });
    let from = ts.as_bytes();
    if let Some(i) = m.windows(from.len()).position(|w| w == from)
        && let Some(dst) = m.get_mut(i..i + ALIAS.len())
    {
        dst.copy_from_slice(ALIAS);
        tracing::debug!(
            "transfer syntax {ts} read as {} (same encoding)",
            String::from_utf8_lossy(ALIAS)
        );
    }
    Some(m)
}

/// The retired syntax UID in the original `meta` bytes when `seen` is the alias given to
/// dicom-rs by [`alias_retired_ts`].
pub(crate) fn retired_ts_in(meta: &[u8], seen: &str) -> Option<String> {
    if seen != uids::JPEG_EXTENDED12_BIT {
        return None;
    }
    TS_RETIRED_12_BIT
        .into_iter()
        .find(|t| meta.windows(t.len()).any(|w| w == t.as_bytes()))
        .map(str::to_string)
}
