//! Rounding of the deltas written to `track.json`.

/// Round to 6 decimals so the JSON does not carry float noise like 4.999999999.
pub(crate) fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}
