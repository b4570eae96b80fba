//! Lung segmentation and GGO / consolidation quantification, generic over the compute backend.
//!
//! STATUS: only the result model ([`model`]) exists so far; it is the contract that
//! `ildtrack-track`, `ildtrack-report` and the CLI build on (`visit.json`).

pub mod model;
