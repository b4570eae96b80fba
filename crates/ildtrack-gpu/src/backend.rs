//! `WgpuBackend`: the `Backend` trait on the device. Every method waits for its result.

use ildtrack_compute::{
    Backend, Ball, ComponentInfo, ComputeError, Connectivity, Histograms, MaskOp, Result,
    VolumeHandle, check_box, check_same, joint_table_len,
};
use ndarray::{Array3, ArrayView3};

use crate::context::{AdapterSummary, GpuContext};
use crate::engine::{ElemKind, Engine, Extra, GpuBuf, Launch};
use crate::error::GpuError;

/// Squared-distance tolerance (mm²) of ball membership; the same value as `CpuBackend`.
const BALL_EPS_MM2: f32 = 1e-3;

/// How to open the device.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GpuOptions {
    /// Accept llvmpipe/lavapipe and other CPU rasterisers (`--backend gpu`, tests).
    pub allow_software: bool,
    /// Cap in bytes on every windowed storage binding (test knob: forces many small slabs;
    /// clamped to at least 4 KiB). Kernels that read through four pages (labelling, long z
    /// distance passes, resampling, crops) size their pages from the volume and the device
    /// limit instead. `None`: the device limit.
    pub max_slab_bytes: Option<u64>,
}

/// The wgpu implementation of [`Backend`]. Handles ([`GpuBuf`]) stay on the device.
pub struct WgpuBackend {
    eng: Engine,
}

impl std::fmt::Debug for WgpuBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WgpuBackend({})", self.adapter_description())
    }
}

impl VolumeHandle for GpuBuf {
    fn dims_zyx(&self) -> [usize; 3] {
        self.dims
    }
}

fn err(e: GpuError) -> ComputeError {
    e.into()
}

fn kind(b: &GpuBuf, k: ElemKind, what: &str) -> Result<()> {
    if b.kind == k {
        Ok(())
    } else {
        Err(ComputeError::InvalidArgument(format!(
            "{what} must be a {k:?} volume, got {:?}",
            b.kind
        )))
    }
}

fn to_i32(v: usize, what: &str) -> Result<i32> {
    i32::try_from(v).map_err(|_| {
        ComputeError::InvalidArgument(format!("{what} {v} does not fit a shader argument"))
    })
}

fn u64s_from_pairs(words: &[u32]) -> Vec<u64> {
    words
        .chunks_exact(2)
        .map(|p| u64::from(p[0]) | (u64::from(p[1]) << 32))
        .collect()
}

impl WgpuBackend {
    /// Open the best adapter (real GPUs first) and create a device with its full limits.
    pub fn new(opts: GpuOptions) -> std::result::Result<WgpuBackend, GpuError> {
        let ctx = GpuContext::new(opts.allow_software)?;
        Ok(WgpuBackend {
            eng: Engine::new(ctx, opts.max_slab_bytes),
        })
    }

    /// `name (backend, type, driver)` of the adapter in use.
    pub fn adapter_description(&self) -> String {
        self.eng.ctx.summary.describe()
    }

    /// The adapter in use.
    pub fn adapter(&self) -> &AdapterSummary {
        &self.eng.ctx.summary
    }

    /// True on llvmpipe/lavapipe and other CPU rasterisers.
    pub fn is_software(&self) -> bool {
        self.eng.ctx.summary.is_software
    }

    /// The largest storage binding any kernel uses (device limit or `max_slab_bytes`).
    pub fn max_binding_bytes(&self) -> u64 {
        self.eng.max_binding_bytes
    }

    /// Compile every pipeline now (the first call of a kernel otherwise pays for it: seconds on
    /// lavapipe's JIT, tens of milliseconds on a real driver). Call before timing kernels.
    pub fn warm_up(&self) -> std::result::Result<(), GpuError> {
        for (shader, entry) in crate::shaders::entry_points() {
            self.eng.pipeline(shader, entry)?;
        }
        Ok(())
    }

    /// Measured device copy bandwidth in GB/s (read + write bytes per second) of
    /// `copy_buffer_to_buffer` over `bytes` (clamped to 4 KiB ..= `max_buffer_size`): the
    /// yardstick for "effective GB/s" in `ildtrack bench`. One submission of one copy and one
    /// of eight back-to-back copies are each timed (best of `reps`); the difference divides
    /// out the submit/wait latency, so a large buffer measures device memory, not overhead.
    pub fn measure_copy_bandwidth_gbs(
        &self,
        bytes: u64,
        reps: u32,
    ) -> std::result::Result<f64, GpuError> {
        let bytes = (bytes.clamp(4096, self.eng.ctx.limits.max_buffer_size) / 4) * 4;
        let make = |label| {
            self.eng
                .ctx
                .scoped("allocating the bandwidth probe", bytes, || {
                    self.eng.ctx.device.create_buffer(&wgpu::BufferDescriptor {
                        label: Some(label),
                        size: bytes,
                        usage: wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
                        mapped_at_creation: false,
                    })
                })
        };
        let (a, b) = (make("bw-src")?, make("bw-dst")?);
        let per_copy = self.copy_seconds("bandwidth probe", reps, |enc, c| {
            let (s, d) = if c % 2 == 0 { (&a, &b) } else { (&b, &a) };
            enc.copy_buffer_to_buffer(s, 0, d, 0, bytes);
            Ok(())
        })?;
        Ok(2.0 * bytes as f64 / per_copy / 1e9)
    }

    /// Measured bandwidth in GB/s (read + write) of a compute-shader word copy (`copy_u32`)
    /// between two buffers of `bytes` (clamped to 4 KiB ..= `max_buffer_size`): the ceiling a
    /// memory-bound kernel can reach, where `measure_copy_bandwidth_gbs` may measure a copy
    /// engine. Timed as there: one launch and eight launches per submission, best of `reps`.
    pub fn measure_shader_copy_bandwidth_gbs(
        &self,
        bytes: u64,
        reps: u32,
    ) -> std::result::Result<f64, GpuError> {
        let words = (bytes.clamp(4096, self.eng.ctx.limits.max_buffer_size) / 4) as usize;
        let dims = [1, 1, words];
        // A pattern that depends on the index (never zeros, which would hide a wrong copy).
        let word = |i: usize| (i as u32).wrapping_mul(2_654_435_761).rotate_left(7) ^ 0x5bd1_e995;
        let a = self
            .eng
            .upload_with(dims, ElemKind::U32, words * 4, &|o, mut part| {
                let v: Vec<u8> = (o / 4..o / 4 + part.len() / 4)
                    .flat_map(|i| word(i).to_le_bytes())
                    .collect();
                part.copy_from_slice(&v);
            })?;
        let b = self.eng.alloc(dims, ElemKind::U32)?;
        let per_copy = self.copy_seconds("shader copy probe", reps, |enc, c| {
            let (s, d) = if c % 2 == 0 { (&a, &b) } else { (&b, &a) };
            let inputs = [(s, 0u64)];
            let mut l = Launch::new("copy_u32", "copy_u32", d);
            l.inputs = &inputs;
            self.eng.encode(enc, &l).map(|_| ())
        })?;
        // Small probes (the tests) also check the copy.
        if words <= 16 << 20 {
            let got = self.eng.download_bytes(&b)?;
            if let Some(i) = (0..words).find(|&i| got[4 * i..4 * i + 4] != word(i).to_le_bytes()) {
                return Err(GpuError::Device {
                    op: "shader copy probe".into(),
                    reason: format!("word {i} was not copied"),
                });
            }
        }
        Ok(2.0 * (words * 4) as f64 / per_copy / 1e9)
    }

    /// Seconds per copy: one submission of one copy and one of eight back-to-back copies
    /// (`encode(encoder, copy index)`) are each timed, best of `reps` after a warm-up; the
    /// difference divides out the submit/wait latency.
    fn copy_seconds(
        &self,
        what: &str,
        reps: u32,
        encode: impl Fn(&mut wgpu::CommandEncoder, u32) -> std::result::Result<(), GpuError>,
    ) -> std::result::Result<f64, GpuError> {
        const MANY: u32 = 8;
        let time = |copies: u32| -> std::result::Result<f64, GpuError> {
            let mut best = f64::INFINITY;
            for i in 0..=reps.max(1) {
                let t = std::time::Instant::now();
                let mut enc = self
                    .eng
                    .ctx
                    .device
                    .create_command_encoder(&Default::default());
                for c in 0..copies {
                    encode(&mut enc, c)?;
                }
                self.eng.ctx.queue.submit([enc.finish()]);
                self.eng.ctx.sync(what)?;
                if i > 0 {
                    best = best.min(t.elapsed().as_secs_f64());
                }
            }
            Ok(best)
        };
        let one = time(1)?;
        let many = time(MANY)?;
        Ok(if many > one {
            (many - one) / f64::from(MANY - 1)
        } else {
            many / f64::from(MANY)
        })
    }

    /// Device limits the backend runs with (as requested from `adapter.limits()`).
    pub fn limits(&self) -> &wgpu::Limits {
        &self.eng.ctx.limits
    }

    /// Whether `input` with `halo` can be bound as windows without cutting the output into
    /// too many tiny chunks (more than 64, or chunks under one block); else use pages.
    fn windowed(&self, out: &GpuBuf, input: &GpuBuf, halo: u64) -> bool {
        self.eng.chunk_words(out, &[(input, halo)]).is_ok_and(|w| {
            w >= (out.words() / 64)
                .max(crate::engine::BLOCK_WORDS)
                .min(out.words())
        })
    }

    /// An output volume shaped like `like`; its kernel writes every word.
    /// HU → f32 (`OUTSIDE_FOV_HU` read as −1024), the first step of the smoothing kernels.
    fn hu_to_f32(&self, hu: &GpuBuf, op: &str) -> Result<GpuBuf> {
        let f = self.new_like(hu, ElemKind::F32)?;
        let inputs = [(hu, 0)];
        let mut l = Launch::new("gaussian", "gauss_to_f32", &f);
        l.inputs = &inputs;
        self.run(op, &[l])?;
        Ok(f)
    }

    /// Separable Gaussian passes over an f32 volume (the CPU's axis order and weights; an
    /// axis with σ under 1e-3 voxel or one voxel long is skipped).
    fn blur_f32(
        &self,
        mut f: GpuBuf,
        sigma_mm: [f64; 3],
        spacing_mm: [f64; 3],
        op: &str,
    ) -> Result<GpuBuf> {
        let [_, ny, nx] = f.dims;
        for axis in 0..3 {
            let n = f.dims[axis];
            let sigma_vox = sigma_mm[axis] / spacing_mm[axis];
            if sigma_vox < 1e-3 || n < 2 {
                continue;
            }
            // The same weights as CpuBackend.
            let kernel = ildtrack_compute::gaussian_weights(sigma_vox);
            let radius = kernel.len() / 2;
            let words: Vec<u32> = kernel.iter().map(|k| k.to_bits()).collect();
            let tab = self.table("gauss-weights", &words)?;
            let st = match axis {
                0 => nx * ny,
                1 => nx,
                _ => 1,
            } as u64;
            let halo = radius.min(n - 1) as u64 * st;
            let out = self.new_like(&f, ElemKind::F32)?;
            let iarg = [axis as i32, to_i32(radius, "gaussian radius")?, 0, 0];
            if self.windowed(&out, &f, halo) {
                let inputs = [(&f, halo)];
                let extras = [(9, Extra::whole(&tab))];
                let mut l = Launch::new("gaussian", "gauss_pass", &out);
                l.inputs = &inputs;
                l.extras = &extras;
                l.iarg = iarg;
                self.run(op, &[l])?;
            } else {
                let (pages, shift) = self.eng.pages(&f).map_err(err)?;
                let [p0, p1, p2, p3] = pages;
                let extras = [(5, p0), (6, p1), (7, p2), (8, p3), (9, Extra::whole(&tab))];
                let mut l = Launch::new("gaussian", "gauss_pass_paged", &out);
                l.extras = &extras;
                l.page_shift = shift;
                l.iarg = iarg;
                self.run(op, &[l])?;
            }
            f = out;
        }
        Ok(f)
    }

    /// f32 → i16 rounded half away from zero, `OUTSIDE_FOV_HU` kept where `orig` has it.
    fn round_to_hu(&self, f: &GpuBuf, orig: &GpuBuf, op: &str) -> Result<GpuBuf> {
        let out = self.new_like(orig, ElemKind::I16)?;
        let inputs = [(f, 0), (orig, 0)];
        let mut l = Launch::new("gaussian", "gauss_round", &out);
        l.inputs = &inputs;
        self.run(op, &[l])?;
        Ok(out)
    }

    /// `wa * a + wb * b` of two f32 volumes of the same shape.
    fn axpby(&self, a: &GpuBuf, b: &GpuBuf, wa: f32, wb: f32) -> Result<GpuBuf> {
        let out = self.new_like(a, ElemKind::F32)?;
        let inputs = [(a, 0), (b, 0)];
        let mut l = Launch::new("gaussian_mix", "mix_axpby", &out);
        l.inputs = &inputs;
        l.farg = [wa, wb, 0.0, 0.0];
        self.run("gaussian_mix", &[l])?;
        Ok(out)
    }

    fn new_like(&self, like: &GpuBuf, k: ElemKind) -> Result<GpuBuf> {
        self.eng.alloc_uninit(like.dims, k).map_err(err)
    }

    fn run(&self, op: &str, launches: &[Launch<'_>]) -> Result<()> {
        self.eng.run(op, launches).map_err(err)
    }

    fn table(&self, label: &str, words: &[u32]) -> Result<wgpu::Buffer> {
        self.eng
            .small_buffer(label, bytemuck::cast_slice(words))
            .map_err(err)
    }

    fn read_words(&self, buf: &wgpu::Buffer, n_words: usize) -> Result<Vec<u32>> {
        let bytes = self
            .eng
            .ctx
            .read_bytes(buf, n_words as u64 * 4)
            .map_err(err)?;
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }

    /// A zeroed 64-bit counter table of `cells` cells (two words each).
    fn counter_table(&self, cells: usize) -> Result<wgpu::Buffer> {
        let bytes = (cells as u64).saturating_mul(8);
        if bytes > self.eng.ctx.limits.max_storage_buffer_binding_size {
            return Err(err(GpuError::TooLarge {
                what: format!("a counter table of {cells} cells"),
                needed_bytes: bytes,
                limit_bytes: self.eng.ctx.limits.max_storage_buffer_binding_size,
            }));
        }
        self.table("counters", &vec![0u32; cells * 2])
    }

    fn counts(
        &self,
        entry: &'static str,
        shader: &'static str,
        dom: &GpuBuf,
        other: Option<(&GpuBuf, u64)>,
        cells: usize,
        iarg: [i32; 4],
    ) -> Result<Vec<u64>> {
        let tab = self.counter_table(cells)?;
        let inputs: Vec<(&GpuBuf, u64)> = other.into_iter().collect();
        let extras = [(5, Extra::whole(&tab))];
        let mut l = Launch::new(shader, entry, dom);
        l.inputs = &inputs;
        l.extras = &extras;
        l.iarg = iarg;
        l.iarg[3] = to_i32(cells, "table size")?;
        self.run(entry, &[l])?;
        Ok(u64s_from_pairs(&self.read_words(&tab, cells * 2)?))
    }

    /// Squared EDT (mm²) to the nearest source voxel (`sources_are_background`: `m == 0`,
    /// else `m != 0`), exact up to `limit_mm2`; optionally the square root on the last pass.
    fn squared_edt(
        &self,
        m: &GpuBuf,
        sources_are_background: bool,
        spacing_mm: [f64; 3],
        in_plane: bool,
        limit_mm2: f32,
        sqrt: bool,
    ) -> Result<GpuBuf> {
        let inf_bits = f32::INFINITY.to_bits();
        let mut f = self.new_like(m, ElemKind::F32)?;
        {
            let inputs = [(m, 0u64)];
            let mut l = Launch::new("edt", "edt_init", &f);
            l.inputs = &inputs;
            l.iarg = [i32::from(sources_are_background), 0, 0, 0];
            l.aux = [0, 0, 0, inf_bits];
            self.run("edt_init", &[l])?;
        }
        let [_, ny, nx] = m.dims;
        let axes: &[usize] = if in_plane { &[2, 1] } else { &[2, 1, 0] };
        let axes: Vec<usize> = axes.iter().copied().filter(|&a| m.dims[a] >= 2).collect();
        for (i, &axis) in axes.iter().enumerate() {
            let n = m.dims[axis] as u64;
            let st = match axis {
                0 => (nx * ny) as u64,
                1 => nx as u64,
                _ => 1,
            };
            let s = spacing_mm[axis];
            let radius = if limit_mm2.is_finite() {
                ((f64::from(limit_mm2).sqrt() / s).floor() as u64 + 1).min(n - 1)
            } else {
                n - 1
            };
            let halo = radius * st;
            let out = self.new_like(m, ElemKind::F32)?;
            let last = sqrt && i + 1 == axes.len();
            let iarg = [axis as i32, i32::from(last), 0, 0];
            let farg = [(s * s) as f32, limit_mm2, 0.0, 0.0];
            if self.windowed(&out, &f, halo) {
                let inputs = [(&f, halo)];
                let mut l = Launch::new("edt", "edt_pass_win", &out);
                l.inputs = &inputs;
                l.iarg = iarg;
                l.farg = farg;
                l.aux = [0, 0, 0, inf_bits];
                self.run("edt_pass", &[l])?;
            } else {
                let (pages, shift) = self.eng.pages(&f).map_err(err)?;
                let [p0, p1, p2, p3] = pages;
                let extras = [(5, p0), (6, p1), (7, p2), (8, p3)];
                let mut l = Launch::new("edt", "edt_pass_paged", &out);
                l.extras = &extras;
                l.page_shift = shift;
                l.iarg = iarg;
                l.farg = farg;
                l.aux = [0, 0, 0, inf_bits];
                self.run("edt_pass", &[l])?;
            }
            f = out;
        }
        Ok(f)
    }

    /// Connected components: labels 1..n in raster order of first voxels; infos optional.
    fn ccl(
        &self,
        m: &GpuBuf,
        connectivity: Connectivity,
        want_infos: bool,
    ) -> Result<(GpuBuf, u32, Vec<ComponentInfo>)> {
        kind(m, ElemKind::Mask, "label_components mask")?;
        if m.nvox() >= 1 << 31 {
            return Err(ComputeError::InvalidArgument(format!(
                "{} voxels: labelling needs < 2^31",
                m.nvox()
            )));
        }
        let labels = self.new_like(m, ElemKind::U32)?;
        let (pages, shift) = self.eng.pages(&labels).map_err(err)?;
        let [p0, p1, p2, p3] = pages;
        let conn = match connectivity {
            Connectivity::Face6 => 0,
            Connectivity::Full26 => 1,
            Connectivity::Slice4 => 2,
            Connectivity::Slice8 => 3,
        };
        let flag = self.table("ccl-flag", &[0u32])?;
        let nbr_words = link_offsets(connectivity);
        let n_nbrs = (nbr_words.len() / 4) as i32;
        let nbrs = self.table("ccl-neighbours", &nbr_words)?;
        let paged = [
            (5, p0.clone_ref()),
            (6, p1.clone_ref()),
            (7, p2.clone_ref()),
            (8, p3.clone_ref()),
        ];
        let with_flag = [
            (5, p0.clone_ref()),
            (6, p1.clone_ref()),
            (7, p2.clone_ref()),
            (8, p3.clone_ref()),
            (9, Extra::whole(&flag)),
            (11, Extra::whole(&nbrs)),
        ];
        fn mk<'a>(
            m: &'a GpuBuf,
            entry: &'static str,
            extras: &'a [(u32, Extra<'a>)],
            shift: u32,
            conn: i32,
        ) -> Launch<'a> {
            let mut l = Launch::new("label_components", entry, m);
            l.extras = extras;
            l.page_shift = shift;
            l.iarg = [conn, 0, 0, 0];
            l
        }
        {
            let inputs = [(m, m.dims[2] as u64)];
            let mut l = mk(m, "ccl_init", &paged, shift, conn);
            l.inputs = &inputs;
            self.run("ccl_init", &[l])?;
        }
        // One link pass (unite never leaves a pair apart) and one compress pass make every
        // label its component's root, with no readback in between. Debug builds (the tests)
        // then run check rounds: a check that still finds differing neighbours is a bug.
        let mut rounds = 0u32;
        loop {
            let (mut enc, stamps) = self.eng.encoder();
            enc.clear_buffer(&flag, 0, None);
            let mut link = mk(m, "ccl_link", &with_flag, shift, conn);
            link.iarg[1] = n_nbrs;
            self.eng.encode(&mut enc, &link).map_err(err)?;
            self.eng
                .encode(&mut enc, &mk(m, "ccl_compress", &paged, shift, conn))
                .map_err(err)?;
            self.eng
                .submit("ccl_link+compress", enc, stamps, false)
                .map_err(err)?;
            rounds += 1;
            if !cfg!(debug_assertions) {
                break;
            }
            if rounds >= 2 {
                let changed = self.read_words(&flag, 1)?;
                if changed.first().copied().unwrap_or(0) == 0 {
                    break;
                }
                return Err(err(GpuError::NoConvergence {
                    kernel: "label_components",
                    iterations: rounds,
                }));
            }
        }
        // Rank the roots in raster order.
        let n_blocks = m.words().div_ceil(crate::engine::BLOCK_WORDS) as usize;
        let blocks = self.table("ccl-blocks", &vec![0u32; n_blocks + 1])?;
        {
            let extras = [
                (5, p0.clone_ref()),
                (6, p1.clone_ref()),
                (7, p2.clone_ref()),
                (8, p3.clone_ref()),
                (9, Extra::whole(&blocks)),
            ];
            let (mut enc, stamps) = self.eng.encoder();
            self.eng
                .encode(&mut enc, &mk(m, "ccl_block_counts", &extras, shift, conn))
                .map_err(err)?;
            self.eng
                .encode_single(
                    &mut enc,
                    "label_components",
                    "ccl_scan",
                    &[(9, Extra::whole(&blocks))],
                    [0, to_i32(n_blocks, "block count")?, 0, 0],
                )
                .map_err(err)?;
            let assign = [
                (5, p0.clone_ref()),
                (6, p1.clone_ref()),
                (7, p2.clone_ref()),
                (8, p3.clone_ref()),
                (10, Extra::whole(&blocks)),
            ];
            self.eng
                .encode(&mut enc, &mk(m, "ccl_assign", &assign, shift, conn))
                .map_err(err)?;
            self.eng
                .encode(&mut enc, &mk(m, "ccl_finalize", &paged, shift, conn))
                .map_err(err)?;
            self.eng
                .submit("ccl_rank", enc, stamps, true)
                .map_err(err)?;
        }
        let n = {
            let bytes = self
                .eng
                .ctx
                .read_bytes(&blocks, (n_blocks as u64 + 1) * 4)
                .map_err(err)?;
            let w: Vec<u32> = bytemuck::pod_collect_to_vec(&bytes);
            w.last().copied().unwrap_or(0)
        };
        let mut infos = Vec::new();
        if want_infos && n > 0 {
            let per = 14usize;
            let mut init = vec![0u32; n as usize * per];
            for c in init.chunks_exact_mut(per) {
                c[2..5].fill(u32::MAX);
            }
            let tab = self.table("ccl-infos", &init)?;
            let extras = [
                (5, p0.clone_ref()),
                (6, p1.clone_ref()),
                (7, p2.clone_ref()),
                (8, p3.clone_ref()),
                (9, Extra::whole(&tab)),
            ];
            self.run("ccl_infos", &[mk(m, "ccl_infos", &extras, shift, conn)])?;
            let w = self.read_words(&tab, n as usize * per)?;
            for c in w.chunks_exact(per) {
                let pair = |i: usize| u64::from(c[i]) | (u64::from(c[i + 1]) << 32);
                infos.push(ComponentInfo {
                    voxels: pair(0),
                    min_zyx: [c[2] as usize, c[3] as usize, c[4] as usize],
                    max_zyx: [c[5] as usize, c[6] as usize, c[7] as usize],
                    sum_zyx: [pair(8) as f64, pair(10) as f64, pair(12) as f64],
                });
            }
        }
        Ok((labels, n, infos))
    }
}

/// `(dx, dy, dz, 0)` words of the neighbours `ccl_link` visits: the backward half of the
/// connectivity (earlier in raster order) without `(-1, 0, 0)`, which `ccl_init` covers.
fn link_offsets(connectivity: Connectivity) -> Vec<u32> {
    let mut out = Vec::new();
    for dz in -1i32..=0 {
        for dy in -1i32..=1 {
            for dx in -1i32..=1 {
                let backward = dz < 0 || (dz == 0 && (dy < 0 || (dy == 0 && dx < 0)));
                let s = dx.abs() + dy.abs() + dz.abs();
                let ok = match connectivity {
                    Connectivity::Face6 => s == 1,
                    Connectivity::Full26 => s >= 1,
                    Connectivity::Slice4 => dz == 0 && s == 1,
                    Connectivity::Slice8 => dz == 0 && s >= 1,
                };
                if backward && ok && !(dy == 0 && dz == 0) {
                    out.extend([dx as u32, dy as u32, dz as u32, 0]);
                }
            }
        }
    }
    out
}

/// Writes the bytes `offset .. offset + part.len()` of `view` in (z, y, x) order, packed
/// little-endian (`offset` and the length are multiples of the element size).
fn fill_from_view<T: bytemuck::Pod>(
    view: &ArrayView3<'_, T>,
    offset: usize,
    mut part: wgpu::WriteOnly<'_, [u8]>,
) {
    let es = std::mem::size_of::<T>();
    if let Some(s) = view.as_slice() {
        let bytes: &[u8] = bytemuck::cast_slice(s);
        part.copy_from_slice(&bytes[offset..offset + part.len()]);
        return;
    }
    let (_, ny, nx) = view.dim();
    let mut e = offset / es;
    let end = e + part.len() / es;
    let mut at = 0usize;
    let mut row_buf: Vec<T> = Vec::new();
    while e < end {
        let (z, y, x) = (e / (nx * ny), (e / nx) % ny, e % nx);
        let n = (nx - x).min(end - e);
        let row = view.slice(ndarray::s![z, y, x..x + n]);
        let bytes: &[u8] = match row.as_slice() {
            Some(r) => bytemuck::cast_slice(r),
            None => {
                row_buf.clear();
                row_buf.extend(row.iter().copied());
                bytemuck::cast_slice(&row_buf)
            }
        };
        part.slice(at..at + n * es).copy_from_slice(bytes);
        at += n * es;
        e += n;
    }
}

impl Extra<'_> {
    fn clone_ref(&self) -> Extra<'_> {
        Extra {
            buf: self.buf,
            offset: self.offset,
            size: self.size,
        }
    }
}

impl Backend for WgpuBackend {
    type I16 = GpuBuf;
    type U8 = GpuBuf;
    type U32 = GpuBuf;
    type F32 = GpuBuf;

    fn name(&self) -> &'static str {
        "gpu"
    }

    fn device_description(&self) -> String {
        self.adapter_description()
    }

    fn upload_i16(&self, data: ArrayView3<'_, i16>) -> Result<GpuBuf> {
        let d = data.dim();
        self.eng
            .upload_with(
                [d.0, d.1, d.2],
                ElemKind::I16,
                data.len() * 2,
                &|o, part| fill_from_view(&data, o, part),
            )
            .map_err(err)
    }

    fn upload_u8(&self, data: ArrayView3<'_, u8>) -> Result<GpuBuf> {
        let d = data.dim();
        self.eng
            .upload_with([d.0, d.1, d.2], ElemKind::Mask, data.len(), &|o, part| {
                fill_from_view(&data, o, part)
            })
            .map_err(err)
    }

    fn upload_f32(&self, data: ArrayView3<'_, f32>) -> Result<GpuBuf> {
        let d = data.dim();
        self.eng
            .upload_with(
                [d.0, d.1, d.2],
                ElemKind::F32,
                data.len() * 4,
                &|o, part| fill_from_view(&data, o, part),
            )
            .map_err(err)
    }

    fn download_i16(&self, v: &GpuBuf) -> Result<Array3<i16>> {
        kind(v, ElemKind::I16, "download_i16 input")?;
        let bytes = self.eng.download_bytes(v).map_err(err)?;
        let data: Vec<i16> = bytemuck::pod_collect_to_vec(&bytes);
        Array3::from_shape_vec((v.dims[0], v.dims[1], v.dims[2]), data)
            .map_err(|e| ComputeError::Device(e.to_string()))
    }

    fn download_u8(&self, v: &GpuBuf) -> Result<Array3<u8>> {
        kind(v, ElemKind::Mask, "download_u8 input")?;
        let bytes = self.eng.download_bytes(v).map_err(err)?;
        Array3::from_shape_vec((v.dims[0], v.dims[1], v.dims[2]), bytes)
            .map_err(|e| ComputeError::Device(e.to_string()))
    }

    fn download_u32(&self, v: &GpuBuf) -> Result<Array3<u32>> {
        kind(v, ElemKind::U32, "download_u32 input")?;
        let bytes = self.eng.download_bytes(v).map_err(err)?;
        let data: Vec<u32> = bytemuck::pod_collect_to_vec(&bytes);
        Array3::from_shape_vec((v.dims[0], v.dims[1], v.dims[2]), data)
            .map_err(|e| ComputeError::Device(e.to_string()))
    }

    fn download_f32(&self, v: &GpuBuf) -> Result<Array3<f32>> {
        kind(v, ElemKind::F32, "download_f32 input")?;
        let bytes = self.eng.download_bytes(v).map_err(err)?;
        let data: Vec<f32> = bytemuck::pod_collect_to_vec(&bytes);
        Array3::from_shape_vec((v.dims[0], v.dims[1], v.dims[2]), data)
            .map_err(|e| ComputeError::Device(e.to_string()))
    }

    fn fill_u8(&self, dims_zyx: [usize; 3], value: u8) -> Result<GpuBuf> {
        let out = self.eng.alloc(dims_zyx, ElemKind::Mask).map_err(err)?;
        if value != 0 {
            let mut l = Launch::new("fill_u8", "fill_u8", &out);
            l.iarg = [i32::from(value), 0, 0, 0];
            self.run("fill_u8", &[l])?;
        }
        Ok(out)
    }

    fn threshold(&self, hu: &GpuBuf, lo_hu: i16, hi_hu: i16) -> Result<GpuBuf> {
        kind(hu, ElemKind::I16, "threshold input")?;
        let out = self.new_like(hu, ElemKind::Mask)?;
        let inputs = [(hu, 0)];
        let mut l = Launch::new("threshold", "threshold", &out);
        l.inputs = &inputs;
        l.iarg = [i32::from(lo_hu), i32::from(hi_hu), 0, 0];
        self.run("threshold", &[l])?;
        Ok(out)
    }

    fn classify(&self, hu: &GpuBuf, mask: &GpuBuf, edges_hu: &[i16]) -> Result<GpuBuf> {
        kind(hu, ElemKind::I16, "classify HU")?;
        kind(mask, ElemKind::Mask, "classify mask")?;
        check_same(hu.dims, mask.dims)?;
        if edges_hu.len() > 254 || edges_hu.windows(2).any(|w| w[0] >= w[1]) {
            return Err(ComputeError::InvalidArgument(format!(
                "class edges must be strictly increasing and at most 254, got {edges_hu:?}"
            )));
        }
        let edges: Vec<u32> = edges_hu.iter().map(|&e| i32::from(e) as u32).collect();
        let tab = self.table("edges", &edges)?;
        let out = self.new_like(hu, ElemKind::Mask)?;
        let inputs = [(hu, 0), (mask, 0)];
        let extras = [(5, Extra::whole(&tab))];
        let mut l = Launch::new("classify", "classify", &out);
        l.inputs = &inputs;
        l.extras = &extras;
        l.iarg = [edges_hu.len() as i32, 0, 0, 0];
        self.run("classify", &[l])?;
        Ok(out)
    }

    fn mask_op(&self, a: &GpuBuf, b: &GpuBuf, op: MaskOp) -> Result<GpuBuf> {
        kind(a, ElemKind::Mask, "mask_op a")?;
        kind(b, ElemKind::Mask, "mask_op b")?;
        check_same(a.dims, b.dims)?;
        let code = match op {
            MaskOp::And => 0,
            MaskOp::Or => 1,
            MaskOp::AndNot => 2,
            MaskOp::Xor => 3,
        };
        let out = self.new_like(a, ElemKind::Mask)?;
        let inputs = [(a, 0), (b, 0)];
        let mut l = Launch::new("mask_op", "mask_op", &out);
        l.inputs = &inputs;
        l.iarg = [code, 0, 0, 0];
        self.run("mask_op", &[l])?;
        Ok(out)
    }

    fn select(&self, mask: &GpuBuf, a: &GpuBuf, b: &GpuBuf) -> Result<GpuBuf> {
        for (v, w) in [(mask, "select mask"), (a, "select a"), (b, "select b")] {
            kind(v, ElemKind::Mask, w)?;
        }
        check_same(mask.dims, a.dims)?;
        check_same(mask.dims, b.dims)?;
        let out = self.new_like(mask, ElemKind::Mask)?;
        let inputs = [(mask, 0), (a, 0), (b, 0)];
        let mut l = Launch::new("select", "select_u8", &out);
        l.inputs = &inputs;
        self.run("select", &[l])?;
        Ok(out)
    }

    fn map_u8(&self, v: &GpuBuf, lut: &[u8; 256]) -> Result<GpuBuf> {
        kind(v, ElemKind::Mask, "map_u8 input")?;
        let words: Vec<u32> = lut.iter().map(|&x| u32::from(x)).collect();
        let tab = self.table("lut", &words)?;
        let out = self.new_like(v, ElemKind::Mask)?;
        let inputs = [(v, 0)];
        let extras = [(5, Extra::whole(&tab))];
        let mut l = Launch::new("map_u8", "map_u8", &out);
        l.inputs = &inputs;
        l.extras = &extras;
        self.run("map_u8", &[l])?;
        Ok(out)
    }

    fn combine_u8(&self, a: &GpuBuf, b: &GpuBuf, n_b: usize, lut: &[u8]) -> Result<GpuBuf> {
        kind(a, ElemKind::Mask, "combine_u8 a")?;
        kind(b, ElemKind::Mask, "combine_u8 b")?;
        check_same(a.dims, b.dims)?;
        if n_b == 0 || !lut.len().is_multiple_of(n_b) {
            return Err(ComputeError::InvalidArgument(format!(
                "combine lut length {} is not a multiple of n_b {n_b}",
                lut.len()
            )));
        }
        let n_a = lut.len() / n_b;
        let words: Vec<u32> = lut.iter().map(|&x| u32::from(x)).collect();
        let tab = self.table("lut", &words)?;
        let out = self.new_like(a, ElemKind::Mask)?;
        let inputs = [(a, 0), (b, 0)];
        let extras = [(5, Extra::whole(&tab))];
        let mut l = Launch::new("combine_u8", "combine_u8", &out);
        l.inputs = &inputs;
        l.extras = &extras;
        l.iarg = [to_i32(n_a.min(256), "n_a")?, to_i32(n_b, "n_b")?, 0, 0];
        self.run("combine_u8", &[l])?;
        Ok(out)
    }

    fn map_u8_per_slice(&self, v: &GpuBuf, n_values: usize, table: &[u8]) -> Result<GpuBuf> {
        kind(v, ElemKind::Mask, "map_u8_per_slice input")?;
        let nz = v.dims[0];
        if table.len() != nz * n_values {
            return Err(ComputeError::InvalidArgument(format!(
                "per-slice table has {} entries, expected {nz} slices x {n_values} values",
                table.len()
            )));
        }
        let words: Vec<u32> = table.iter().map(|&x| u32::from(x)).collect();
        let tab = self.table("per-slice-lut", &words)?;
        let out = self.new_like(v, ElemKind::Mask)?;
        let inputs = [(v, 0)];
        let extras = [(5, Extra::whole(&tab))];
        let mut l = Launch::new("map_u8_per_slice", "map_u8_per_slice", &out);
        l.inputs = &inputs;
        l.extras = &extras;
        l.iarg = [to_i32(n_values, "n_values")?, 0, 0, 0];
        self.run("map_u8_per_slice", &[l])?;
        Ok(out)
    }

    fn map_labels(&self, labels: &GpuBuf, lut: &[u8]) -> Result<GpuBuf> {
        kind(labels, ElemKind::U32, "map_labels input")?;
        let words: Vec<u32> = lut.iter().map(|&x| u32::from(x)).collect();
        let tab = self.table("label-lut", &words)?;
        let out = self.new_like(labels, ElemKind::Mask)?;
        let inputs = [(labels, 0)];
        let extras = [(5, Extra::whole(&tab))];
        let mut l = Launch::new("map_labels", "map_labels", &out);
        l.inputs = &inputs;
        l.extras = &extras;
        l.iarg = [to_i32(lut.len(), "label lut length")?, 0, 0, 0];
        self.run("map_labels", &[l])?;
        Ok(out)
    }

    fn threshold_f32(&self, v: &GpuBuf, lo: f32, hi: f32) -> Result<GpuBuf> {
        kind(v, ElemKind::F32, "threshold_f32 input")?;
        let out = self.new_like(v, ElemKind::Mask)?;
        let inputs = [(v, 0)];
        let mut l = Launch::new("threshold_f32", "threshold_f32", &out);
        l.inputs = &inputs;
        l.farg = [lo, hi, 0.0, 0.0];
        self.run("threshold_f32", &[l])?;
        Ok(out)
    }

    fn value_counts(&self, v: &GpuBuf) -> Result<Vec<u64>> {
        kind(v, ElemKind::Mask, "value_counts input")?;
        self.counts("value_counts", "counts", v, None, 256, [0; 4])
    }

    fn joint_counts(&self, a: &GpuBuf, b: &GpuBuf, n_a: usize, n_b: usize) -> Result<Vec<u64>> {
        kind(a, ElemKind::Mask, "joint_counts a")?;
        kind(b, ElemKind::Mask, "joint_counts b")?;
        check_same(a.dims, b.dims)?;
        let n = joint_table_len(n_a, n_b)?;
        if n == 0 {
            return Ok(Vec::new());
        }
        let iarg = [to_i32(n_a.min(256), "n_a")?, to_i32(n_b, "n_b")?, 0, 0];
        let mut c = self.counts("joint_counts", "counts", a, Some((b, 0)), n, iarg)?;
        c.truncate(n);
        Ok(c)
    }

    fn slice_counts(&self, v: &GpuBuf, n_values: usize) -> Result<Vec<u64>> {
        kind(v, ElemKind::Mask, "slice_counts input")?;
        let cells = v.dims[0] * n_values;
        if cells == 0 {
            return Ok(Vec::new());
        }
        // Values >= 256 never occur in a u8 volume: count 256 per slice and pad.
        let nv = n_values.min(256);
        let mut c = self.counts(
            "slice_counts",
            "counts",
            v,
            None,
            v.dims[0] * nv,
            [nv as i32, 0, 0, 0],
        )?;
        if nv < n_values {
            let mut out = vec![0u64; cells];
            for z in 0..v.dims[0] {
                out[z * n_values..z * n_values + nv].copy_from_slice(&c[z * nv..(z + 1) * nv]);
            }
            c = out;
        }
        Ok(c)
    }

    fn histogram(
        &self,
        hu: &GpuBuf,
        labels: &GpuBuf,
        n_labels: usize,
        lo_hu: i16,
        hi_hu: i16,
    ) -> Result<Histograms> {
        kind(hu, ElemKind::I16, "histogram HU")?;
        kind(labels, ElemKind::Mask, "histogram labels")?;
        check_same(hu.dims, labels.dims)?;
        if lo_hu > hi_hu || n_labels == 0 || n_labels > 256 {
            return Err(ComputeError::InvalidArgument(format!(
                "histogram needs lo_hu <= hi_hu and 1..=256 labels, got {lo_hu}..{hi_hu}, {n_labels} labels"
            )));
        }
        let n_bins = (i32::from(hi_hu) - i32::from(lo_hu) + 1) as usize;
        let cells = n_bins * n_labels;
        let iarg = [n_labels as i32, i32::from(lo_hu), i32::from(hi_hu), 0];
        let counts = self.counts("histogram", "histogram", labels, Some((hu, 0)), cells, iarg)?;
        Ok(Histograms {
            lo_hu,
            hi_hu,
            n_labels,
            counts,
        })
    }

    fn dilate(&self, m: &GpuBuf, ball: &Ball) -> Result<GpuBuf> {
        kind(m, ElemKind::Mask, "dilate input")?;
        ball.validate()?;
        let r2 = (ball.radius_mm * ball.radius_mm) as f32 + BALL_EPS_MM2;
        self.eng.batch("dilate", || {
            let d2 = self.squared_edt(m, false, ball.spacing_mm, ball.in_plane, r2, false)?;
            self.threshold_f32(&d2, f32::NEG_INFINITY, r2)
        })
    }

    fn erode(&self, m: &GpuBuf, ball: &Ball) -> Result<GpuBuf> {
        kind(m, ElemKind::Mask, "erode input")?;
        ball.validate()?;
        let r2 = (ball.radius_mm * ball.radius_mm) as f32 + BALL_EPS_MM2;
        self.eng.batch("erode", || {
            let d2 = self.squared_edt(m, true, ball.spacing_mm, ball.in_plane, r2, false)?;
            // d2 > r2, i.e. d2 >= the next float above r2 (r2 > 0).
            self.threshold_f32(&d2, f32::from_bits(r2.to_bits() + 1), f32::INFINITY)
        })
    }

    fn fill_holes_2d(&self, m: &GpuBuf) -> Result<GpuBuf> {
        kind(m, ElemKind::Mask, "fill_holes_2d input")?;
        let mut lut = [0u8; 256];
        lut[0] = 1;
        let background = self.map_u8(m, &lut)?;
        let (labels, n, _) = self.ccl(&background, Connectivity::Slice4, false)?;
        let flags = self.table("border-flags", &vec![0u32; n as usize + 1])?;
        let (pages, shift) = self.eng.pages(&labels).map_err(err)?;
        let [p0, p1, p2, p3] = pages;
        let out = self.new_like(m, ElemKind::Mask)?;
        let extras = [
            (5, p0),
            (6, p1),
            (7, p2),
            (8, p3),
            (9, Extra::whole(&flags)),
        ];
        let mut border = Launch::new("fill_holes_2d", "fill_holes_border", &background);
        border.extras = &extras;
        border.page_shift = shift;
        let inputs = [(m, 0)];
        let mut fill = Launch::new("fill_holes_2d", "fill_holes_out", &out);
        fill.inputs = &inputs;
        fill.extras = &extras;
        fill.page_shift = shift;
        self.run("fill_holes_2d", &[border, fill])?;
        Ok(out)
    }

    fn label_components(
        &self,
        m: &GpuBuf,
        connectivity: Connectivity,
    ) -> Result<(GpuBuf, Vec<ComponentInfo>)> {
        let (labels, _, infos) = self.ccl(m, connectivity, true)?;
        Ok((labels, infos))
    }

    fn gaussian(&self, hu: &GpuBuf, sigma_mm: [f64; 3], spacing_mm: [f64; 3]) -> Result<GpuBuf> {
        kind(hu, ElemKind::I16, "gaussian input")?;
        ildtrack_compute::validate_spacing(spacing_mm)?;
        if sigma_mm.iter().any(|s| !(s.is_finite() && *s >= 0.0)) {
            return Err(ComputeError::InvalidArgument(format!(
                "sigma must be finite and >= 0 mm, got {sigma_mm:?}"
            )));
        }
        self.eng.batch("gaussian", || {
            let f = self.hu_to_f32(hu, "gaussian")?;
            let f = self.blur_f32(f, sigma_mm, spacing_mm, "gaussian")?;
            self.round_to_hu(&f, hu, "gaussian")
        })
    }

    fn gaussian_mix(
        &self,
        hu: &GpuBuf,
        sigmas_mm: &[f64],
        weights: &[f32],
        spacing_mm: [f64; 3],
    ) -> Result<GpuBuf> {
        kind(hu, ElemKind::I16, "gaussian_mix input")?;
        ildtrack_compute::validate_gaussian_mix(sigmas_mm, weights, spacing_mm)?;
        self.eng.batch("gaussian_mix", || {
            let mut f = self.hu_to_f32(hu, "gaussian_mix")?;
            // acc = w0 * x0 (+ 0 * x0), then acc = 1 * acc + w_k * x_k: the CPU's order.
            let mut acc = self.axpby(&f, &f, weights[0], 0.0)?;
            // Stages after the last non-zero weight add nothing (as on the CPU).
            let used = weights.iter().rposition(|&w| w != 0.0).unwrap_or(0);
            for (k, &s) in sigmas_mm.iter().enumerate().take(used) {
                f = self.blur_f32(f, [0.0, s, s], spacing_mm, "gaussian_mix")?;
                acc = self.axpby(&acc, &f, 1.0, weights[k + 1])?;
            }
            self.round_to_hu(&acc, hu, "gaussian_mix")
        })
    }

    fn distance_mm(&self, m: &GpuBuf, spacing_mm: [f64; 3]) -> Result<GpuBuf> {
        kind(m, ElemKind::Mask, "distance_mm input")?;
        ildtrack_compute::validate_spacing(spacing_mm)?;
        self.eng.batch("distance_mm", || {
            self.squared_edt(m, true, spacing_mm, false, f32::INFINITY, true)
        })
    }

    fn downsample_mean(&self, hu: &GpuBuf, factors: [usize; 3]) -> Result<GpuBuf> {
        kind(hu, ElemKind::I16, "downsample_mean input")?;
        if factors.contains(&0) {
            return Err(ComputeError::InvalidArgument(format!(
                "downsample factors must be >= 1, got {factors:?}"
            )));
        }
        if factors.iter().product::<usize>() > 32_768 {
            return Err(ComputeError::InvalidArgument(format!(
                "downsample blocks of {factors:?} exceed 32768 voxels (the GPU sums in 32 bits)"
            )));
        }
        let d = hu.dims;
        let od = [0, 1, 2].map(|k| d[k].div_ceil(factors[k]));
        let out = self.eng.alloc_uninit(od, ElemKind::I16).map_err(err)?;
        let (pages, shift) = self.eng.pages(hu).map_err(err)?;
        let [p0, p1, p2, p3] = pages;
        let extras = [(5, p0), (6, p1), (7, p2), (8, p3)];
        let mut l = Launch::new("downsample_mean", "downsample_mean", &out);
        l.extras = &extras;
        l.page_shift = shift;
        l.iarg = [factors[0] as i32, factors[1] as i32, factors[2] as i32, 0];
        l.aux = [d[2] as u32, d[1] as u32, d[0] as u32, 0];
        self.run("downsample_mean", &[l])?;
        Ok(out)
    }

    fn upsample_nearest(
        &self,
        m: &GpuBuf,
        factors: [usize; 3],
        dims_zyx: [usize; 3],
    ) -> Result<GpuBuf> {
        kind(m, ElemKind::Mask, "upsample_nearest input")?;
        let d = m.dims;
        if factors.contains(&0) || (0..3).any(|k| dims_zyx[k].div_ceil(factors[k]) != d[k]) {
            return Err(ComputeError::InvalidArgument(format!(
                "cannot upsample {d:?} by {factors:?} to {dims_zyx:?}"
            )));
        }
        let out = self
            .eng
            .alloc_uninit(dims_zyx, ElemKind::Mask)
            .map_err(err)?;
        let (pages, shift) = self.eng.pages(m).map_err(err)?;
        let [p0, p1, p2, p3] = pages;
        let extras = [(5, p0), (6, p1), (7, p2), (8, p3)];
        let mut l = Launch::new("upsample_nearest", "upsample_nearest", &out);
        l.extras = &extras;
        l.page_shift = shift;
        l.iarg = [
            to_i32(factors[0], "factor")?,
            to_i32(factors[1], "factor")?,
            to_i32(factors[2], "factor")?,
            0,
        ];
        l.aux = [d[2] as u32, d[1] as u32, d[0] as u32, 0];
        self.run("upsample_nearest", &[l])?;
        Ok(out)
    }

    fn less_equal_f32(&self, a: &GpuBuf, b: &GpuBuf) -> Result<GpuBuf> {
        kind(a, ElemKind::F32, "less_equal_f32 a")?;
        kind(b, ElemKind::F32, "less_equal_f32 b")?;
        check_same(a.dims, b.dims)?;
        let out = self.new_like(a, ElemKind::Mask)?;
        let inputs = [(a, 0), (b, 0)];
        let mut l = Launch::new("less_equal_f32", "less_equal_f32", &out);
        l.inputs = &inputs;
        self.run("less_equal_f32", &[l])?;
        Ok(out)
    }

    fn crop_i16(&self, v: &GpuBuf, min_zyx: [usize; 3], dims_zyx: [usize; 3]) -> Result<GpuBuf> {
        kind(v, ElemKind::I16, "crop_i16 input")?;
        self.crop(v, min_zyx, dims_zyx, "crop_i16")
    }

    fn crop_u8(&self, v: &GpuBuf, min_zyx: [usize; 3], dims_zyx: [usize; 3]) -> Result<GpuBuf> {
        kind(v, ElemKind::Mask, "crop_u8 input")?;
        self.crop(v, min_zyx, dims_zyx, "crop_u8")
    }

    fn pad_u8(&self, v: &GpuBuf, dims_zyx: [usize; 3], min_zyx: [usize; 3]) -> Result<GpuBuf> {
        kind(v, ElemKind::Mask, "pad_u8 input")?;
        check_box(dims_zyx, min_zyx, v.dims)?;
        let out = self
            .eng
            .alloc_uninit(dims_zyx, ElemKind::Mask)
            .map_err(err)?;
        let (pages, shift) = self.eng.pages(v).map_err(err)?;
        let [p0, p1, p2, p3] = pages;
        let extras = [(5, p0), (6, p1), (7, p2), (8, p3)];
        let mut l = Launch::new("pad_u8", "pad_u8", &out);
        l.extras = &extras;
        l.page_shift = shift;
        l.iarg = [min_zyx[0] as i32, min_zyx[1] as i32, min_zyx[2] as i32, 0];
        l.aux = [v.dims[2] as u32, v.dims[1] as u32, v.dims[0] as u32, 0];
        self.run("pad_u8", &[l])?;
        Ok(out)
    }

    fn mind_ssc(&self, img: &GpuBuf, dilation: usize, radius: usize) -> Result<GpuBuf> {
        kind(img, ElemKind::F32, "mind_ssc input")?;
        crate::register::mind_ssc(&self.eng, img, dilation, radius)
    }

    fn ssd_costs(
        &self,
        fixed: &GpuBuf,
        moving: &GpuBuf,
        radius: usize,
    ) -> Result<(GpuBuf, GpuBuf)> {
        kind(fixed, ElemKind::F32, "ssd_costs fixed")?;
        kind(moving, ElemKind::F32, "ssd_costs moving")?;
        crate::register::ssd_costs(&self.eng, fixed, moving, radius)
    }

    fn convex_choose(
        &self,
        costs: &GpuBuf,
        bounds: &GpuBuf,
        target: Option<&GpuBuf>,
        lambda: f32,
        radius: usize,
    ) -> Result<GpuBuf> {
        kind(costs, ElemKind::Mask, "convex_choose costs")?;
        kind(bounds, ElemKind::F32, "convex_choose bounds")?;
        if let Some(t) = target {
            kind(t, ElemKind::F32, "convex_choose target")?;
        }
        crate::register::convex_choose(&self.eng, costs, bounds, target, lambda, radius)
    }

    fn descriptor_grad(
        &self,
        fixed: &GpuBuf,
        moving: &GpuBuf,
        cover: &GpuBuf,
        domain: &GpuBuf,
        params: &GpuBuf,
        spacing: usize,
    ) -> Result<GpuBuf> {
        kind(fixed, ElemKind::F32, "descriptor_grad fixed")?;
        kind(moving, ElemKind::F32, "descriptor_grad moving")?;
        kind(cover, ElemKind::F32, "descriptor_grad cover")?;
        kind(domain, ElemKind::Mask, "descriptor_grad domain")?;
        kind(params, ElemKind::F32, "descriptor_grad params")?;
        crate::register::descriptor_grad(&self.eng, fixed, moving, cover, domain, params, spacing)
    }
}

impl WgpuBackend {
    fn crop(
        &self,
        v: &GpuBuf,
        min_zyx: [usize; 3],
        dims_zyx: [usize; 3],
        entry: &'static str,
    ) -> Result<GpuBuf> {
        check_box(v.dims, min_zyx, dims_zyx)?;
        let out = self.eng.alloc_uninit(dims_zyx, v.kind).map_err(err)?;
        let (pages, shift) = self.eng.pages(v).map_err(err)?;
        let [p0, p1, p2, p3] = pages;
        let extras = [(5, p0), (6, p1), (7, p2), (8, p3)];
        let mut l = Launch::new("crop", entry, &out);
        l.extras = &extras;
        l.page_shift = shift;
        l.iarg = [min_zyx[0] as i32, min_zyx[1] as i32, min_zyx[2] as i32, 0];
        l.aux = [v.dims[2] as u32, v.dims[1] as u32, v.dims[0] as u32, 0];
        self.run(entry, &[l])?;
        Ok(out)
    }
}
