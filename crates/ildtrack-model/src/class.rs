//! Density class codes of the voxels of `classes.nii.gz` (and of `Analysis::classes` in memory).

pub const OUTSIDE: u8 = 0;
pub const LAA: u8 = 1;
pub const NORMAL: u8 = 2;
pub const GGO: u8 = 3;
pub const CONSOLIDATION: u8 = 4;
/// Vessels, their partial-volume rim, and anything ≥ the consolidation upper bound.
pub const VESSEL_DENSE: u8 = 5;
pub const COUNT: usize = 6;
