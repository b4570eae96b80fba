//! Rendering: one visit's `report.html`, the longitudinal `index.html`, their SVG charts, and
//! the QC pictures (PNG). Values in, bytes or `String` out; writing files is `ildtrack-app`'s
//! job (`track.csv` and `track.json` are serialised by `ildtrack-model`).
//!
//! Every HTML page is a single self-contained file: PNGs embedded as base64 data URIs, charts
//! as inline SVG, CSS inline with print rules, no script and no network (a Content-Security-Policy
//! forbids both). Every string that came from a DICOM header goes through [`html::esc`]. Patient
//! name and ID appear only with [`ReportOptions::identify`].
//!
//! - [`render_visit_html`] / [`VisitPage`]: header with study facts, verdict, warnings, three
//!   axial and one coronal QC image beside the previous visit's, metrics by lung / side /
//!   subpleural / core / zone, six-zone extent diagram, HU histogram over the previous visit's,
//!   version and thresholds.
//! - [`render_index_html`] / [`IndexPage`]: latest verdict in words, visits table, trend charts
//!   against days from day 0 (affected %, GGO %, consolidation %, HAA %, MLD, lung volume,
//!   FVC / DLCO), six-zone diagrams over time, verdicts and warnings visit by visit.
//! - [`render_cohort_html`] / [`CohortPage`]: one row per patient of a cohort (trend of affected %
//!   as a sparkline, latest verdict, link to the patient's index), rows that were left out.
//! - [`qc`]: axial and coronal QC pictures with the lung contour and GGO / consolidation
//!   overlays, and the choice of their slices.
//!
//! Module layering (no file imports a file that imports it back): `escape` and `palette` at the
//! bottom; `html` and `svg` use them; `render` and `cohort` use those; `qc` stands alone.
//!
//! Architecture Invariant: rendering is pure (values in, `String` / PNG bytes out); this crate
//! never touches the file system.

pub mod change;
mod cohort;
mod escape;
pub mod html;
mod image;
pub mod palette;
pub mod qc;
mod render;
pub mod svg;

pub use change::ChangeView;
pub use cohort::{CohortPage, CohortPatient, render_cohort_html};
pub use render::{
    IndexPage, PreviousVisit, QcImage, ReportOptions, VisitPage, render_index_html,
    render_visit_html,
};
