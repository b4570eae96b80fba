//! Colours and words shared by the HTML tables and the SVG charts.

/// Colours of the visual extent score 0–4.
pub const EXTENT_COLOURS: [&str; 5] = ["#eef1f4", "#fde3a7", "#fdae61", "#f46d43", "#c62828"];
/// Words for the extent score.
pub const EXTENT_WORDS: [&str; 5] = ["none", "< 25 %", "25–50 %", "50–75 %", "≥ 75 %"];
