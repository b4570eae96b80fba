//! The compute backend: every voxel kernel the analysis uses, behind one trait.
//!
//! [`Backend`] hands out opaque volume handles (one associated type per element type:
//! `I16` for HU, `U8` for masks / class codes, `U32` for component labels, `F32` for fields
//! such as distances), so a GPU implementation can keep volumes on the device between kernels:
//! the analysis uploads once, chains kernels on handles and downloads only results. No kernel
//! takes a per-voxel callback; voxel-wise mappings are expressed as small lookup tables.
//!
//! [`CpuBackend`] (rayon) is the reference: every kernel of every other backend is tested
//! against it (`..._should_match_reference_backend`).
//!
//! Conventions shared by every kernel (a GPU twin must follow them exactly):
//! - Volumes are `(z, y, x)`; all operands of one call have the same shape, else
//!   [`ComputeError::ShapeMismatch`].
//! - Masks are `U8` volumes where any non-zero value is "in"; kernels that *produce* masks
//!   write 0 or 1.
//! - Morphology uses a Euclidean ball in millimetres on voxel centres
//!   (`|d_z·s_z, d_y·s_y, d_x·s_x| <= radius_mm`), clipped at the volume border (voxels outside
//!   the volume are neither foreground nor background: erosion does not eat from the border,
//!   dilation does not grow from it). A one-slice volume therefore behaves as a 2-D image.
//! - [`OUTSIDE_FOV_HU`](ildtrack_volume::OUTSIDE_FOV_HU) is an ordinary `i16` for thresholds and
//!   histograms (it is the lowest value); smoothing and downsampling read it as −1024 HU and
//!   keep it where every input voxel was outside the field of view.
//! - Registration kernels ([`Backend::mind_ssc`], [`Backend::ssd_costs`],
//!   [`Backend::convex_choose`], [`Backend::descriptor_grad`]) hold
//!   multi-channel fields in `F32` volumes: a descriptor of a `(nz, ny, nx)` grid has dims
//!   `(nz, ny, nx · 12)` (channel-last), a displacement grid `(3 · pz, py, px)` (components
//!   stacked along z). Their f32 results agree between backends within a tolerance, not bit
//!   for bit (exp, division and summation order).
//! - Component labels are numbered `1..=n` in raster order (z, then y, then x) of each
//!   component's first voxel; 0 is background.
//!
//! Architecture Invariant: this crate knows nothing about lungs; it is voxel arithmetic only.

pub(crate) mod api;
mod cpu;

pub use api::*;
pub use cpu::descriptor;
pub use cpu::{CpuBackend, CpuVolume};
