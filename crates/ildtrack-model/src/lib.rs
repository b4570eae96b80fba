//! The output schemas of ildtrack as Rust types, shared by the crates that produce them
//! (`ildtrack-analysis`, `ildtrack-track`), render them (`ildtrack-report`) and write them
//! (`ildtrack-app`).
//!
//! - [`visit`]: `visit.json`, one visit's analysis (`docs/visit-json.md`).
//! - [`track`]: `track.json` and `track.csv`, the follow-up (`docs/track-json.md`).
//! - [`change`]: `change.json`, a follow-up registered onto the baseline.
//! - [`class`]: the density-class codes of `classes.nii.gz`.
//!
//! Architecture Invariant: values and their serialisation only (serde); no I/O, no analysis.
//! A crate that needs the schema depends on this crate, not on the crate that computes it.

pub mod change;
pub mod class;
pub mod track;
mod track_csv;
pub use track_csv::cohort_csv;
pub mod visit;
