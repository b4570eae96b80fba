//! `WgpuBackend`: the ildtrack voxel kernels as WGSL compute shaders on wgpu.
//!
//! Every kernel of [`ildtrack_compute::Backend`] has a twin in `shaders/<name>.wgsl` (the table
//! is [`SHADERS`]); the CPU backend is the reference and the parity tests in `tests/` compare
//! the two on random volumes with awkward sizes and on a volume forced through small slabs.
//!
//! Design:
//! - Handles ([`GpuBuf`]) stay on the device: the analysis uploads once, chains kernels and
//!   downloads only results. Every trait method is synchronous (it waits for the device), so
//!   a caller can time each kernel with a plain clock; multi-pass kernels (morphology, EDT,
//!   Gaussian) record all their passes into one submission and wait once.
//! - Transfers go through persistent staging buffers (two of 32 MiB each way, filled and
//!   drained by several threads) and freed volumes return to a pool for reuse by the next
//!   volume of the same size: creating a 512 MiB buffer, or fresh mapped host memory, costs
//!   more than the kernels on a real GPU (see docs/BENCHMARKS-gpu.md).
//! - [`profile_enable`] (`ildtrack bench --profile`) records where the host time goes and,
//!   where the adapter has timestamp queries, each submission's device time.
//! - Packing: HU as i16 two per 32-bit word, masks/classes as u8 four per word, labels u32,
//!   fields f32.
//! - Limits: the device is created with `adapter.limits()`. No storage binding is larger than
//!   `max_storage_buffer_binding_size` (128 MiB on lavapipe): outputs are cut into aligned
//!   chunks, inputs are bound as windows with a halo (whole slices for z neighbourhoods), and
//!   kernels that need random access (component labels, z distance passes, resampling, the
//!   registration's descriptors) read through four page bindings; the registration's small
//!   grids (coarse descriptors, coverage, domain, displacement parameters) are bound whole. Dispatches use at most 65,535 workgroups with grid-stride
//!   loops. Counters are 64-bit (two u32 words with carry), exact for any volume.
//! - Adapters: [`probe`] lists the best adapter; llvmpipe/lavapipe/SwiftShader/WARP count as
//!   software ([`AdapterSummary::is_software`]) so `--backend auto` can skip them, while
//!   `--backend gpu` may use them (`GpuOptions { allow_software: true, .. }`).
//!
//! Choosing a backend (what `--backend auto|cpu|gpu` does):
//! ```no_run
//! use ildtrack_gpu::{GpuOptions, WgpuBackend, probe};
//! // auto: a real GPU if there is one, else the CPU (llvmpipe does not count).
//! let gpu = match probe() {
//!     Some(a) if !a.is_software => WgpuBackend::new(GpuOptions::default()).ok(),
//!     _ => None,
//! };
//! // gpu: any adapter, software included; an error if there is none.
//! let forced = WgpuBackend::new(GpuOptions { allow_software: true, max_slab_bytes: None });
//! # let _ = (gpu, forced);
//! ```
//!
//! ```no_run
//! use ildtrack_compute::Backend;
//! use ildtrack_gpu::{GpuOptions, WgpuBackend};
//! let gpu = WgpuBackend::new(GpuOptions { allow_software: true, max_slab_bytes: None })?;
//! let hu = gpu.upload_i16(ndarray::Array3::<i16>::zeros((4, 5, 6)).view())?;
//! let air = gpu.threshold(&hu, -1024, -500)?;
//! let counts = gpu.value_counts(&air)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod backend;
mod context;
mod costs;
mod engine;
mod error;
mod profile;
mod register;
mod shaders;
mod transfer;

pub use backend::{GpuOptions, WgpuBackend};
pub use context::{AdapterSummary, probe};
pub use costs::{KernelCost, kernel_costs};
pub use engine::{ElemKind, GpuBuf};
pub use error::GpuError;
pub use profile::{profile_enable, profile_take};
pub use shaders::{SHADERS, shader_source};
