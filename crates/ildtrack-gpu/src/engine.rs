//! Device buffers, the pipeline cache and the windowed ("z-slab with halo") dispatcher.
//!
//! Every volume lives in one buffer (≤ `max_buffer_size`), but no kernel ever binds more than
//! `max_storage_buffer_binding_size` of it: the output is cut into chunks of whole 32-bit words
//! whose byte offset is a multiple of `min_storage_buffer_offset_alignment`, and each input is
//! bound as the window that covers the chunk plus a halo (in voxels along the flattened
//! `(z, y, x)` order, so a halo of `r·nx·ny` is `r` slices). Shaders loop grid-stride over the
//! chunk's words, with at most 65,535 workgroups per dispatch.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use wgpu::util::DeviceExt;

use crate::context::GpuContext;
use crate::error::GpuError;
use crate::shaders::shader_source;
use crate::transfer::{Pool, PooledBuffer, Staging};

/// Element type of a device volume and how it is packed into 32-bit words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ElemKind {
    /// HU, two per word (little end first).
    I16,
    /// 0/1 bytes, four per word.
    Mask,
    /// Labels, counts, one per word.
    U32,
    /// Float images (smoothed HU, distances, vesselness), one per word.
    F32,
}

impl ElemKind {
    pub fn bytes(self) -> u64 {
        match self {
            ElemKind::I16 => 2,
            ElemKind::Mask => 1,
            ElemKind::U32 | ElemKind::F32 => 4,
        }
    }
    pub fn per_word(self) -> u64 {
        4 / self.bytes()
    }
}

/// A volume resident on the device.
#[derive(Clone)]
pub struct GpuBuf {
    pub(crate) buf: Arc<PooledBuffer>,
    pub(crate) dims: [usize; 3],
    pub(crate) kind: ElemKind,
}

impl std::fmt::Debug for GpuBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GpuBuf({:?}, {:?})", self.kind, self.dims)
    }
}

impl GpuBuf {
    pub fn dims_zyx(&self) -> [usize; 3] {
        self.dims
    }
    pub fn kind(&self) -> ElemKind {
        self.kind
    }
    pub fn nvox(&self) -> u64 {
        self.dims.iter().map(|&d| d as u64).product()
    }
    pub fn words(&self) -> u64 {
        self.nvox().div_ceil(self.kind.per_word())
    }
}

/// Uniform block shared by every kernel (see `shaders/common.wgsl`).
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct Params {
    /// nx, ny, nz, nvox.
    pub dims: [u32; 4],
    /// Output word start, output word end (global), chunk index, spare.
    pub win: [u32; 4],
    /// First element held by the binding of input a, b, c and of the output.
    pub base: [u32; 4],
    pub iarg: [i32; 4],
    pub farg: [f32; 4],
    /// Kernel-specific (input dims of resampling kernels, +inf bits for the EDT).
    pub aux: [u32; 4],
}

/// A whole or partial buffer bound at an explicit binding (tables, counters, label pages).
pub(crate) struct Extra<'a> {
    pub buf: &'a wgpu::Buffer,
    pub offset: u64,
    pub size: u64,
}

impl<'a> Extra<'a> {
    pub fn whole(buf: &'a wgpu::Buffer) -> Self {
        Extra {
            buf,
            offset: 0,
            size: buf.size(),
        }
    }
}

/// One kernel launch over the whole output volume.
pub(crate) struct Launch<'a> {
    pub shader: &'static str,
    pub entry: &'static str,
    pub out: &'a GpuBuf,
    /// Inputs at bindings 1, 2, 3 with their halo in elements (flattened index distance).
    pub inputs: &'a [(&'a GpuBuf, u64)],
    pub extras: &'a [(u32, Extra<'a>)],
    /// Page word shift for kernels reading through pages (`P.win.w`).
    pub page_shift: u32,
    pub iarg: [i32; 4],
    pub farg: [f32; 4],
    pub aux: [u32; 4],
}

impl<'a> Launch<'a> {
    pub fn new(shader: &'static str, entry: &'static str, out: &'a GpuBuf) -> Self {
        Launch {
            shader,
            entry,
            out,
            inputs: &[],
            extras: &[],
            page_shift: 0,
            iarg: [0; 4],
            farg: [0.0; 4],
            aux: [0; 4],
        }
    }
}

/// Chunks hold whole blocks of this many output words (the CCL ranking works per block).
pub(crate) const BLOCK_WORDS: u64 = 256;

pub(crate) const WORKGROUP: u64 = 256;

/// Records the time from its creation to its drop in the profile.
pub(crate) struct Rec(pub &'static str, pub std::time::Instant);

impl Drop for Rec {
    fn drop(&mut self) {
        crate::profile::record(self.0, self.1);
    }
}

pub(crate) struct Engine {
    pub ctx: GpuContext,
    /// Cap on any storage binding: the device limit, or lower for tests (`max_slab_bytes`).
    pub max_binding_bytes: u64,
    modules: Mutex<HashMap<&'static str, Arc<wgpu::ShaderModule>>>,
    pipelines: Mutex<HashMap<(&'static str, &'static str), Arc<wgpu::ComputePipeline>>>,
    pool: Arc<Pool>,
    pub(crate) staging: Staging,
    /// The open command encoder of each thread's `batch`.
    pending: Mutex<HashMap<std::thread::ThreadId, wgpu::CommandEncoder>>,
}

/// Freed volume buffers kept for reuse: real GPUs, software adapters (host memory).
const POOL_BYTES_GPU: u64 = 16 << 30;
const POOL_BYTES_SOFTWARE: u64 = 512 << 20;

fn align_down(v: u64, a: u64) -> u64 {
    v / a * a
}

impl Engine {
    /// A uniform buffer holding one kernel's parameters.
    fn params_buffer(&self, params: &Params) -> wgpu::Buffer {
        self.ctx
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("params"),
                contents: bytemuck::bytes_of(params),
                usage: wgpu::BufferUsages::UNIFORM,
            })
    }

    pub fn new(ctx: GpuContext, max_slab_bytes: Option<u64>) -> Self {
        let dev_max = ctx.limits.max_storage_buffer_binding_size;
        let max_binding_bytes =
            max_slab_bytes.map_or(dev_max, |c| c.clamp(4096, dev_max.max(4096)).min(dev_max));
        let pool_bytes = if ctx.summary.is_software {
            POOL_BYTES_SOFTWARE
        } else {
            POOL_BYTES_GPU
        };
        Engine {
            ctx,
            max_binding_bytes,
            modules: Mutex::default(),
            pipelines: Mutex::default(),
            pool: Arc::new(Pool::new(pool_bytes)),
            staging: Staging::new(),
            pending: Mutex::default(),
        }
    }

    fn align(&self) -> u64 {
        u64::from(self.ctx.limits.min_storage_buffer_offset_alignment).max(4)
    }

    pub fn pipeline(
        &self,
        shader: &'static str,
        entry: &'static str,
    ) -> Result<Arc<wgpu::ComputePipeline>, GpuError> {
        let mut pipes = self.pipelines.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = pipes.get(&(shader, entry)) {
            return Ok(p.clone());
        }
        let module = {
            let mut mods = self.modules.lock().unwrap_or_else(|p| p.into_inner());
            match mods.get(shader) {
                Some(m) => m.clone(),
                None => {
                    let src = shader_source(shader).ok_or_else(|| {
                        GpuError::InvalidArgument(format!("unknown shader {shader}"))
                    })?;
                    let m = Arc::new(self.ctx.device.create_shader_module(
                        wgpu::ShaderModuleDescriptor {
                            label: Some(shader),
                            source: wgpu::ShaderSource::Wgsl(src.into()),
                        },
                    ));
                    mods.insert(shader, m.clone());
                    m
                }
            }
        };
        let p = Arc::new(self.ctx.device.create_compute_pipeline(
            &wgpu::ComputePipelineDescriptor {
                label: Some(entry),
                layout: None,
                module: &module,
                entry_point: Some(entry),
                compilation_options: Default::default(),
                cache: None,
            },
        ));
        self.ctx
            .take_errors(&format!("creating pipeline {shader}::{entry}"))?;
        pipes.insert((shader, entry), p.clone());
        Ok(p)
    }

    /// A zeroed device buffer for a `dims` volume of `kind`.
    pub fn alloc(&self, dims: [usize; 3], kind: ElemKind) -> Result<GpuBuf, GpuError> {
        let (b, reused) = self.alloc_any(dims, kind)?;
        if reused {
            // A pooled buffer holds an earlier volume: clear it (queued, ordered before any
            // later use of the buffer on this queue; inside a batch, in the batch's encoder).
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(enc) = pending.get_mut(&std::thread::current().id()) {
                enc.clear_buffer(&b.buf, 0, None);
            } else {
                let mut enc = self.ctx.device.create_command_encoder(&Default::default());
                enc.clear_buffer(&b.buf, 0, None);
                self.ctx.queue.submit([enc.finish()]);
            }
        }
        Ok(b)
    }

    /// A device buffer for a `dims` volume of `kind` whose contents are undefined (a pooled
    /// buffer may hold an earlier volume): for outputs a kernel writes in full (every launch
    /// writes every word of its output, the padding of the last word included).
    pub fn alloc_uninit(&self, dims: [usize; 3], kind: ElemKind) -> Result<GpuBuf, GpuError> {
        Ok(self.alloc_any(dims, kind)?.0)
    }

    fn alloc_any(&self, dims: [usize; 3], kind: ElemKind) -> Result<(GpuBuf, bool), GpuError> {
        let nvox = dims.iter().try_fold(1u64, |a, &d| a.checked_mul(d as u64));
        let nvox = nvox.filter(|&n| n < u64::from(u32::MAX)).ok_or_else(|| {
            GpuError::InvalidArgument(format!("volume {dims:?} has more than 2^32 voxels"))
        })?;
        let bytes = (nvox.div_ceil(kind.per_word()) * 4).max(4);
        self.check_buffer_size(bytes, "volume buffer")?;
        let t = std::time::Instant::now();
        if let Some(buf) = self.pool.take(bytes) {
            crate::profile::record("alloc (pooled)", t);
            return Ok((
                GpuBuf {
                    buf: Arc::new(PooledBuffer::new(buf, self.pool.clone())),
                    dims,
                    kind,
                },
                true,
            ));
        }
        let create = || {
            self.ctx.scoped("allocating a volume", bytes, || {
                self.ctx.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("volume"),
                    size: bytes,
                    usage: wgpu::BufferUsages::STORAGE
                        | wgpu::BufferUsages::COPY_SRC
                        | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                })
            })
        };
        let buf = match create() {
            Ok(b) => b,
            Err(GpuError::TooLarge { .. }) => {
                // Out of device memory: give the pooled buffers back and try once more.
                self.pool.clear();
                self.ctx.sync("freeing pooled buffers")?;
                create()?
            }
            Err(e) => return Err(e),
        };
        crate::profile::record(
            if bytes >= 1 << 26 {
                "alloc >=64MiB"
            } else {
                "alloc <64MiB"
            },
            t,
        );
        Ok((
            GpuBuf {
                buf: Arc::new(PooledBuffer::new(buf, self.pool.clone())),
                dims,
                kind,
            },
            false,
        ))
    }

    pub fn check_buffer_size(&self, bytes: u64, what: &str) -> Result<(), GpuError> {
        let limit = self.ctx.limits.max_buffer_size;
        if bytes > limit {
            return Err(GpuError::TooLarge {
                what: what.to_string(),
                needed_bytes: bytes,
                limit_bytes: limit,
            });
        }
        Ok(())
    }

    /// Upload a volume whose packed little-endian bytes (`total` of them) `fill(offset, part)`
    /// writes; waits until the data is on the device (so an upload is timed as an upload).
    pub fn upload_with(
        &self,
        dims: [usize; 3],
        kind: ElemKind,
        total: usize,
        fill: &(dyn Fn(usize, wgpu::WriteOnly<'_, [u8]>) + Sync),
    ) -> Result<GpuBuf, GpuError> {
        let b = self.alloc_uninit(dims, kind)?;
        if (total as u64).div_ceil(4) * 4 > b.buf.size() {
            return Err(GpuError::InvalidArgument(format!(
                "{total} bytes do not fit a {dims:?} {kind:?} volume"
            )));
        }
        let t = std::time::Instant::now();
        self.staging.upload(&self.ctx, &b.buf, total, fill)?;
        crate::profile::record("upload.staged", t);
        Ok(b)
    }

    /// A small storage buffer (tables, counters) initialised from `data`.
    pub fn small_buffer(&self, label: &str, data: &[u8]) -> Result<wgpu::Buffer, GpuError> {
        let mut v = data.to_vec();
        v.resize(v.len().max(4).div_ceil(4) * 4, 0);
        self.check_buffer_size(v.len() as u64, label)?;
        let _t = Rec("table", std::time::Instant::now());
        if v.len() as u64 > self.ctx.limits.max_storage_buffer_binding_size {
            return Err(GpuError::TooLarge {
                what: label.to_string(),
                needed_bytes: v.len() as u64,
                limit_bytes: self.ctx.limits.max_storage_buffer_binding_size,
            });
        }
        Ok(self
            .ctx
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents: &v,
                usage: wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_SRC
                    | wgpu::BufferUsages::COPY_DST,
            }))
    }

    /// Largest number of output words per chunk so every binding fits `max_binding_bytes`.
    pub fn chunk_words(&self, out: &GpuBuf, inputs: &[(&GpuBuf, u64)]) -> Result<u64, GpuError> {
        let a = self.align();
        let cap = self.max_binding_bytes;
        let unit = (a / 4).max(BLOCK_WORDS);
        let mut w = align_down(cap / 4, unit);
        for (inp, halo) in inputs {
            let b = inp.kind.bytes();
            let fixed = 2 * halo * b + a + 8;
            let room = cap
                .checked_sub(fixed)
                .filter(|&r| r > 0)
                .ok_or(GpuError::TooLarge {
                    what: format!("input window with a halo of {halo} voxels"),
                    needed_bytes: fixed,
                    limit_bytes: cap,
                })?;
            w = w.min(room / (out.kind.per_word() * b));
        }
        let w = align_down(w, unit);
        if w == 0 {
            return Err(GpuError::TooLarge {
                what: "one aligned output chunk".to_string(),
                needed_bytes: a,
                limit_bytes: cap,
            });
        }
        Ok(w)
    }

    /// Record one launch (all its chunks) into `enc`. Returns the number of chunks.
    pub fn encode(&self, enc: &mut wgpu::CommandEncoder, l: &Launch<'_>) -> Result<u32, GpuError> {
        let out = l.out;
        for (inp, _) in l.inputs {
            if inp.dims != out.dims {
                return Err(GpuError::InvalidArgument(format!(
                    "input {:?} and output {:?} shapes differ",
                    inp.dims, out.dims
                )));
            }
        }
        let pipe = self.pipeline(l.shader, l.entry)?;
        let layout = pipe.get_bind_group_layout(0);
        let n = out.nvox();
        let words = out.words();
        let chunk = self.chunk_words(out, l.inputs)?;
        let a = self.align();
        let [nz, ny, nx] = out.dims;
        let max_groups = u64::from(
            self.ctx
                .limits
                .max_compute_workgroups_per_dimension
                .clamp(1, 65_535),
        );
        let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some(l.entry),
            timestamp_writes: None,
        });
        pass.set_pipeline(&pipe);
        let mut w0 = 0u64;
        let mut idx = 0u32;
        while w0 < words {
            let w1 = (w0 + chunk).min(words);
            let v0 = w0 * out.kind.per_word();
            let v1 = (w1 * out.kind.per_word()).min(n);
            let mut base = [0u32; 4];
            let mut entries: Vec<wgpu::BindGroupEntry<'_>> = Vec::with_capacity(8);
            let mut windows: Vec<(&wgpu::Buffer, u64, u64)> = Vec::new();
            for (i, (inp, halo)) in l.inputs.iter().enumerate() {
                let b = inp.kind.bytes();
                let lo = v0.saturating_sub(*halo) * b;
                let hi = ((v1 + halo).min(n) * b).div_ceil(4) * 4;
                let lo = align_down(lo, a);
                let hi = hi.min(inp.buf.size()).max(lo + 4);
                base[i] = (lo / b) as u32;
                windows.push((&inp.buf, lo, hi - lo));
            }
            let out_lo = w0 * 4;
            let out_size = (w1 - w0) * 4;
            base[3] = (w0 * out.kind.per_word()) as u32;
            let params = Params {
                dims: [nx as u32, ny as u32, nz as u32, n as u32],
                win: [w0 as u32, w1 as u32, idx, l.page_shift],
                base,
                iarg: l.iarg,
                farg: l.farg,
                aux: l.aux,
            };
            let ubuf = self.params_buffer(&params);
            entries.push(wgpu::BindGroupEntry {
                binding: 0,
                resource: ubuf.as_entire_binding(),
            });
            for (i, (buf, off, size)) in windows.iter().enumerate() {
                entries.push(wgpu::BindGroupEntry {
                    binding: 1 + i as u32,
                    resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: buf,
                        offset: *off,
                        size: std::num::NonZeroU64::new(*size),
                    }),
                });
            }
            entries.push(wgpu::BindGroupEntry {
                binding: 4,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: &out.buf,
                    offset: out_lo,
                    size: std::num::NonZeroU64::new(out_size),
                }),
            });
            for (binding, e) in l.extras {
                entries.push(wgpu::BindGroupEntry {
                    binding: *binding,
                    resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: e.buf,
                        offset: e.offset,
                        size: std::num::NonZeroU64::new(e.size),
                    }),
                });
            }
            let bg = self
                .ctx
                .device
                .create_bind_group(&wgpu::BindGroupDescriptor {
                    label: Some(l.entry),
                    layout: &layout,
                    entries: &entries,
                });
            let groups = (w1 - w0).div_ceil(WORKGROUP).clamp(1, max_groups);
            pass.set_bind_group(0, &bg, &[]);
            pass.dispatch_workgroups(groups as u32, 1, 1);
            w0 = w1;
            idx += 1;
        }
        drop(pass);
        self.ctx.take_errors(l.entry)?;
        Ok(idx)
    }

    /// One workgroup of `entry` with only the uniform block and `extras` at explicit bindings.
    pub fn encode_single(
        &self,
        enc: &mut wgpu::CommandEncoder,
        shader: &'static str,
        entry: &'static str,
        extras: &[(u32, Extra<'_>)],
        iarg: [i32; 4],
    ) -> Result<(), GpuError> {
        let pipe = self.pipeline(shader, entry)?;
        let layout = pipe.get_bind_group_layout(0);
        let params = Params {
            dims: [0; 4],
            win: [0; 4],
            base: [0; 4],
            iarg,
            farg: [0.0; 4],
            aux: [0; 4],
        };
        let ubuf = self.params_buffer(&params);
        let mut entries = vec![wgpu::BindGroupEntry {
            binding: 0,
            resource: ubuf.as_entire_binding(),
        }];
        for (b, e) in extras {
            entries.push(wgpu::BindGroupEntry {
                binding: *b,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: e.buf,
                    offset: e.offset,
                    size: std::num::NonZeroU64::new(e.size),
                }),
            });
        }
        let bg = self
            .ctx
            .device
            .create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some(entry),
                layout: &layout,
                entries: &entries,
            });
        let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some(entry),
            timestamp_writes: None,
        });
        pass.set_pipeline(&pipe);
        pass.set_bind_group(0, &bg, &[]);
        pass.dispatch_workgroups(1, 1, 1);
        drop(pass);
        self.ctx.take_errors(entry)
    }

    /// Bind a whole volume as four pages of `2^shift` words (for random access).
    /// Returns the pages and the shift; unused pages repeat page 0.
    pub fn pages<'b>(&self, b: &'b GpuBuf) -> Result<([Extra<'b>; 4], u32), GpuError> {
        let size = b.buf.size();
        // Pages as small as four of them allow (so large volumes really use all four), never
        // above the device's binding limit. `max_slab_bytes` does not apply: random access
        // cannot be cut into slabs.
        let dev_max = self.ctx.limits.max_storage_buffer_binding_size.max(4);
        let dev_pow2 = 1u64 << (63 - dev_max.leading_zeros());
        let page_bytes = size
            .div_ceil(4)
            .next_power_of_two()
            .max(self.align())
            .min(dev_pow2);
        if page_bytes * 4 < size {
            return Err(GpuError::TooLarge {
                what: "a volume read by random access (four page bindings)".to_string(),
                needed_bytes: size,
                limit_bytes: page_bytes * 4,
            });
        }
        let shift = (page_bytes / 4).trailing_zeros();
        let page = |k: u64| {
            let off = k * page_bytes;
            if off >= size {
                Extra {
                    buf: &b.buf,
                    offset: 0,
                    size: page_bytes.min(size),
                }
            } else {
                Extra {
                    buf: &b.buf,
                    offset: off,
                    size: page_bytes.min(size - off),
                }
            }
        };
        Ok(([page(0), page(1), page(2), page(3)], shift))
    }

    /// Runs `f` with every `run` (and zeroing `alloc`) of this thread recorded into one command encoder, then
    /// submits it once and waits once: a multi-pass kernel pays one submit/wait instead of one
    /// per pass. `f` must not read back or submit by itself (only `run`, `alloc*`, tables).
    /// Nested batches join the outer one.
    pub fn batch<T, E: From<GpuError>>(
        &self,
        op: &str,
        f: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, E> {
        let me = std::thread::current().id();
        let stamps;
        {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            if pending.contains_key(&me) {
                drop(pending);
                return f();
            }
            stamps = self.timestamps();
            let mut enc = self
                .ctx
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(op) });
            if let Some((qs, _)) = &stamps {
                enc.write_timestamp(qs, 0);
            }
            pending.insert(me, enc);
        }
        self.pool.begin_batch();
        let out = f();
        let enc = self
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&me);
        let t = std::time::Instant::now();
        if let Some(mut enc) = enc {
            if let Some((qs, rb)) = &stamps {
                enc.write_timestamp(qs, 1);
                enc.resolve_query_set(qs, 0..2, rb, 0);
            }
            self.ctx.queue.submit([enc.finish()]);
        }
        self.pool.end_batch();
        self.ctx.sync(op)?;
        if crate::profile::enabled() {
            crate::profile::record(&format!("batch.submit+wait {op}"), t);
        }
        if let Some((_, rb)) = &stamps {
            self.record_stamps(&format!("gpu batch {op}"), rb)?;
        }
        out
    }

    /// Encode, submit and wait for a list of launches.
    pub fn run(&self, op: &str, launches: &[Launch<'_>]) -> Result<(), GpuError> {
        {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(enc) = pending.get_mut(&std::thread::current().id()) {
                // Inside `batch`: recorded now, submitted and waited for when the batch ends.
                for l in launches {
                    self.encode(enc, l)?;
                }
                return Ok(());
            }
        }
        if crate::profile::enabled() {
            // Profiling: settle earlier work (deferred frees) first so "wait" is this op alone.
            let t = std::time::Instant::now();
            self.ctx.sync(op)?;
            crate::profile::record("run.prepoll", t);
        }
        let t = std::time::Instant::now();
        let mut enc = self
            .ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("ildtrack"),
            });
        let stamps = self.timestamps();
        if let Some((qs, _)) = &stamps {
            enc.write_timestamp(qs, 0);
        }
        let mut chunks = 0;
        for l in launches {
            chunks += self.encode(&mut enc, l)?;
        }
        if let Some((qs, rb)) = &stamps {
            enc.write_timestamp(qs, 1);
            enc.resolve_query_set(qs, 0..2, rb, 0);
        }
        let cb = enc.finish();
        crate::profile::record("run.encode", t);
        let t2 = std::time::Instant::now();
        self.ctx.queue.submit([cb]);
        crate::profile::record("run.submit", t2);
        let t2 = std::time::Instant::now();
        self.ctx.sync(op)?;
        if crate::profile::enabled() {
            crate::profile::record(&format!("run.wait {op}"), t2);
        }
        if let Some((_, rb)) = &stamps {
            self.record_stamps(&format!("gpu {op}"), rb)?;
        }
        tracing::trace!(
            op,
            chunks,
            elapsed_us = t.elapsed().as_micros() as u64,
            "gpu kernel"
        );
        Ok(())
    }

    /// A command encoder for hand-built submissions; when profiling, it starts with a timestamp.
    pub fn encoder(&self) -> (wgpu::CommandEncoder, Option<(wgpu::QuerySet, wgpu::Buffer)>) {
        let mut enc = self.ctx.device.create_command_encoder(&Default::default());
        let stamps = self.timestamps();
        if let Some((qs, _)) = &stamps {
            enc.write_timestamp(qs, 0);
        }
        (enc, stamps)
    }

    /// Submit an `encoder()`; wait when `wait` or when profiling (then record its device time).
    pub fn submit(
        &self,
        op: &str,
        mut enc: wgpu::CommandEncoder,
        stamps: Option<(wgpu::QuerySet, wgpu::Buffer)>,
        wait: bool,
    ) -> Result<(), GpuError> {
        if let Some((qs, rb)) = &stamps {
            enc.write_timestamp(qs, 1);
            enc.resolve_query_set(qs, 0..2, rb, 0);
        }
        self.ctx.queue.submit([enc.finish()]);
        if wait || crate::profile::enabled() {
            self.ctx.sync(op)?;
        }
        if let Some((_, rb)) = &stamps {
            self.record_stamps(&format!("gpu {op}"), rb)?;
        }
        Ok(())
    }

    /// Device time between the two resolved timestamps in `rb`, into the profile.
    fn record_stamps(&self, what: &str, rb: &wgpu::Buffer) -> Result<(), GpuError> {
        let b = self.ctx.read_bytes(rb, 16)?;
        let t0 = u64::from_le_bytes(b[0..8].try_into().unwrap_or([0; 8]));
        let t1 = u64::from_le_bytes(b[8..16].try_into().unwrap_or([0; 8]));
        let ns = t1.saturating_sub(t0) as f64 * f64::from(self.ctx.queue.get_timestamp_period());
        crate::profile::record_ms(what, ns / 1e6);
        Ok(())
    }

    /// When profiling on a device with timestamps: a two-entry query set and its resolve buffer.
    fn timestamps(&self) -> Option<(wgpu::QuerySet, wgpu::Buffer)> {
        if !crate::profile::enabled()
            || !self
                .ctx
                .device
                .features()
                .contains(wgpu::Features::TIMESTAMP_QUERY_INSIDE_ENCODERS)
        {
            return None;
        }
        let qs = self.ctx.device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("profile"),
            ty: wgpu::QueryType::Timestamp,
            count: 2,
        });
        let rb = self.ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("profile-resolve"),
            size: 16,
            usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        Some((qs, rb))
    }

    pub fn download_bytes(&self, b: &GpuBuf) -> Result<Vec<u8>, GpuError> {
        let bytes = b.nvox() * b.kind.bytes();
        let t = std::time::Instant::now();
        let out = self.staging.download(&self.ctx, &b.buf, bytes);
        crate::profile::record("download.staged", t);
        out
    }
}
