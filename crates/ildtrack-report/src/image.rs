//! A QC picture and its caption (the bottom of the crate: imports nothing of it).

/// One QC picture (PNG bytes) with its caption, e.g. `axial, upper zone`.
#[derive(Debug, Clone, PartialEq)]
pub struct QcImage {
    pub caption: String,
    pub png: Vec<u8>,
}
