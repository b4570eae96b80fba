//! Synthetic chest CT with known ground truth, written as real DICOM.
//!
//! Tests, benchmarks and the `ildtrack demo` command use it: [`generate`] paints an analytic
//! chest (body with fat and muscle, ribs, sternum, spine, mediastinum and heart, aorta, two
//! lungs with textured parenchyma and a dependent density gradient, trachea and main bronchi,
//! intrapulmonary bronchi, a branching vessel tree tapering from ~6 mm to ~1 mm, GGO and
//! consolidation lesions of several shapes ([`LesionShape`]: balls, ellipsoids, bands and wedges
//! along the pleura, whole zones, diffuse dependent disease) anchored anywhere on the lung
//! surface ([`Placement`]), honeycombing (air cysts in fibrous walls), a dependent pleural
//! effusion (`effusion_mm`, not lung), stomach gas, a patient table, optional arms; the pleural
//! cavity and
//! its ribs narrow with the lungs towards the apices, so the lungs reach the chest wall at every
//! level, 3-4 mm inside the ribs as on real scans) on any voxel grid, and
//! returns the HU [`Volume`](ildtrack_volume::Volume) together with a [`Truth`] counted from
//! the very masks used to paint it (lung labels, GGO, consolidation, vessels, airways; mL per
//! lung and per zone; subpleural vs core on demand with [`Phantom::subpleural_truth`]). [`write_dicom_series`] writes it as a CT Image Storage series with the
//! conventions real exports vary in (signed/unsigned, padding, feet-first, random names, a
//! scout and a thick series in the same folder). [`demo_patient`] is the scripted longitudinal
//! case of issue 5.
//!
//! ```no_run
//! use ildtrack_phantom::{PhantomSpec, WriteOptions, generate, write_dicom_series};
//! let ph = generate(&PhantomSpec::ild());
//! println!("{:.0} mL of lung, {:.1} % affected", ph.truth.total_lung_ml(), ph.truth.affected_pct());
//! write_dicom_series(&ph, std::path::Path::new("/tmp/phantom"), &WriteOptions::default())?;
//! # Ok::<(), ildtrack_phantom::PhantomError>(())
//! ```
//!
//! Variants for robustness tests ([`PhantomSpec::preset`], names in [`PRESETS`]): `healthy`,
//! `ild`, `large-consolidation` (≈ a third of the right lung), `collapsed-right`/`-left`,
//! `lungs-touching`, `thick-slices` (5 mm with partial volume, see `slab_samples`),
//! `thin-slices`, `sharp-kernel` (B70f, noise 90 HU), `off-centre`, `arms-down`, `small`,
//! `subcutaneous-emphysema` (gas streaks in the anterior-lateral subcutaneous fat).
//! Writer variants ([`WriteOptions`]): signed/unsigned, PixelPaddingValue or none, explicit or
//! implicit VR, head- or feet-first numbering, random file names, plus a scout, a 5 mm series
//! and a soft-kernel series in the same folder ([`WriteOptions::messy`] turns most on).
//!
//! Conventions: voxel `(z, y, x)`; axial LPS geometry (x → patient left, y → posterior,
//! z → head; z index 0 is the most caudal slice); the isocentre is at the image centre and the
//! patient is shifted by `body_offset_mm`. Voxels outside the reconstruction circle (diameter =
//! the smaller in-plane field of view) hold [`OUTSIDE_FOV_HU`](ildtrack_volume::OUTSIDE_FOV_HU).
//! HU inside are clamped to −1024..3071. Everything is deterministic given the seeds.
//!
//! Architecture Invariant: truth volumes are counted from the same per-voxel classes that
//! produced the HU values, never from analytic formulas; the painting rules are on [`Truth`].

mod anatomy;
pub mod degrade;
mod demo;
mod dicom_write;
mod error;
pub mod eval;
mod generate;
mod meta;
mod rng;
mod spec;
mod subpleural;

pub use demo::{
    DEMO_DAY0, DEMO_DIMS_ZYX, DEMO_SPACING_MM, DemoVisit, add_days, demo_patient,
    demo_patient_sized,
};
pub use dicom_write::{
    TransferSyntax, WriteOptions, WrittenSeries, soft_kernel_twin, write_dicom_series,
    write_dicom_series_detailed,
};
pub use error::PhantomError;
pub use generate::{
    MAX_VOXELS, Phantom, RegionTruth, Truth, TruthSummary, ZONE_NAMES, generate, sanitized,
    try_generate, validate,
};
pub use meta::synthetic_uid;
pub use spec::{LesionKind, LesionShape, LesionSpec, PRESETS, PhantomSpec, Placement, Side, Zone};
pub use subpleural::SubpleuralTruth;
