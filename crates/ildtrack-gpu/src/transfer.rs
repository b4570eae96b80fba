//! Host <-> device transfers through persistent staging buffers, and the device-buffer pool.
//!
//! Why: on a real GPU, `queue.write_buffer` and a fresh `MAP_READ` buffer per download make the
//! driver allocate (and pin) new host memory of the whole volume's size on every call; in a VM
//! the first touch of that memory costs more than the copy. Two staging buffers of
//! [`STAGE_BYTES`] each, created once per backend and reused, keep the host side a plain
//! (multi-threaded) memcpy that overlaps the DMA of the previous chunk. Likewise creating a
//! volume-sized device buffer costs ~10 ms on the H100 for 512 MiB (a dedicated allocation), so
//! dropped volumes go back to a [`Pool`] and are reused by the next volume of the same size.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;

use wgpu::WriteOnly;

use crate::context::GpuContext;
use crate::error::GpuError;

/// Bytes per staging buffer (two for uploads, two for downloads).
pub(crate) const STAGE_BYTES: u64 = 32 << 20;
/// Below this many bytes a transfer is split over no threads.
const PAR_MIN_BYTES: usize = 1 << 20;

/// Freed device volumes kept for reuse, least recently freed first out.
///
/// A buffer freed while its thread records a batch (commands not yet submitted) stays with
/// that batch until it is submitted: the same thread may reuse it in the batch (later in the
/// same command buffer), another thread may not (its submission could run first).
pub(crate) struct Pool {
    free: Mutex<VecDeque<wgpu::Buffer>>,
    batches: Mutex<HashMap<ThreadId, Vec<wgpu::Buffer>>>,
    cap_bytes: u64,
}

impl Pool {
    pub fn new(cap_bytes: u64) -> Self {
        Pool {
            free: Mutex::new(VecDeque::new()),
            batches: Mutex::default(),
            cap_bytes,
        }
    }

    /// A pooled buffer of exactly `size` bytes, if there is one.
    pub fn take(&self, size: u64) -> Option<wgpu::Buffer> {
        {
            let mut batches = self.batches.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(mine) = batches.get_mut(&std::thread::current().id())
                && let Some(i) = mine.iter().rposition(|b| b.size() == size)
            {
                return Some(mine.swap_remove(i));
            }
        }
        let mut f = self.free.lock().unwrap_or_else(|p| p.into_inner());
        let i = f.iter().rposition(|b| b.size() == size)?;
        f.remove(i)
    }

    /// This thread starts recording a batch.
    pub fn begin_batch(&self) {
        self.batches
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(std::thread::current().id(), Vec::new());
    }

    /// This thread's batch has been submitted: its freed buffers join the pool.
    pub fn end_batch(&self) {
        let mine = self
            .batches
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&std::thread::current().id());
        for b in mine.unwrap_or_default() {
            self.put(b);
        }
    }

    pub fn put(&self, b: wgpu::Buffer) {
        if b.size() > self.cap_bytes {
            return;
        }
        {
            let mut batches = self.batches.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(mine) = batches.get_mut(&std::thread::current().id()) {
                mine.push(b);
                return;
            }
        }
        let mut f = self.free.lock().unwrap_or_else(|p| p.into_inner());
        f.push_back(b);
        let mut total: u64 = f.iter().map(wgpu::Buffer::size).sum();
        while total > self.cap_bytes {
            match f.pop_front() {
                Some(old) => total -= old.size(),
                None => break,
            }
        }
    }

    /// Drop every pooled buffer (before retrying an allocation that ran out of memory).
    pub fn clear(&self) {
        self.free.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

/// A device buffer that returns to its pool when dropped.
pub(crate) struct PooledBuffer {
    buf: Option<wgpu::Buffer>,
    pool: Arc<Pool>,
}

impl PooledBuffer {
    pub fn new(buf: wgpu::Buffer, pool: Arc<Pool>) -> Self {
        PooledBuffer {
            buf: Some(buf),
            pool,
        }
    }
}

impl std::ops::Deref for PooledBuffer {
    type Target = wgpu::Buffer;
    fn deref(&self) -> &wgpu::Buffer {
        self.buf.as_ref().expect("pooled buffer present until drop")
    }
}

impl Drop for PooledBuffer {
    fn drop(&mut self) {
        if let Some(b) = self.buf.take() {
            self.pool.put(b);
        }
    }
}

/// One staging buffer and whether its (re)mapping has completed.
struct Stage {
    buf: wgpu::Buffer,
    /// `Some(Ok)` once mapped; `None` while a `map_async` is pending.
    mapped: Arc<Mutex<Option<Result<(), String>>>>,
}

impl Stage {
    fn new(ctx: &GpuContext, size: u64, write: bool) -> Self {
        let usage = if write {
            wgpu::BufferUsages::MAP_WRITE | wgpu::BufferUsages::COPY_SRC
        } else {
            wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST
        };
        let buf = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(if write {
                "upload-stage"
            } else {
                "download-stage"
            }),
            size,
            usage,
            mapped_at_creation: write,
        });
        let mapped = Arc::new(Mutex::new(if write { Some(Ok(())) } else { None }));
        Stage { buf, mapped }
    }

    fn request_map(&self, mode: wgpu::MapMode, len: u64) {
        *self.mapped.lock().unwrap_or_else(|p| p.into_inner()) = None;
        let slot = self.mapped.clone();
        self.buf.slice(0..len).map_async(mode, move |r| {
            if let Ok(mut s) = slot.lock() {
                *s = Some(r.map_err(|e| e.to_string()));
            }
        });
    }

    /// Wait until the pending map has completed (another thread's poll may run the callback).
    fn wait_mapped(&self, ctx: &GpuContext) -> Result<(), GpuError> {
        let started = std::time::Instant::now();
        loop {
            if let Some(r) = self
                .mapped
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
            {
                return r.map_err(|reason| GpuError::Map {
                    bytes: self.buf.size(),
                    reason,
                });
            }
            if started.elapsed() > std::time::Duration::from_secs(60) {
                return Err(GpuError::Map {
                    bytes: self.buf.size(),
                    reason: "map callback never ran".into(),
                });
            }
            ctx.device
                .poll(wgpu::PollType::wait_indefinitely())
                .map_err(|e| GpuError::Device {
                    op: "staging map".into(),
                    reason: e.to_string(),
                })?;
            if self
                .mapped
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .is_none()
            {
                std::thread::sleep(std::time::Duration::from_micros(50));
            }
        }
    }
}

/// The persistent staging buffers of one backend.
pub(crate) struct Staging {
    up: Mutex<Option<[Stage; 2]>>,
    down: Mutex<Option<[Stage; 2]>>,
    /// Set when a map request failed: later transfers recreate the buffers.
    broken: AtomicBool,
}

fn threads() -> usize {
    rayon::current_num_threads().clamp(1, 16)
}

/// Fills `buf[0..len)` (mapped for writing): `f(offset, part)` writes the parts, each its
/// own mapped view (views of disjoint ranges may coexist), several threads for large chunks.
fn par_write(
    buf: &wgpu::Buffer,
    len: u64,
    f: &(dyn Fn(usize, WriteOnly<'_, [u8]>) + Sync),
) -> Result<(), GpuError> {
    let n = if len as usize >= PAR_MIN_BYTES {
        threads() as u64
    } else {
        1
    };
    // Parts start at multiples of wgpu::MAP_ALIGNMENT (8) and have lengths of whole words.
    let part = len.div_ceil(n).div_ceil(wgpu::MAP_ALIGNMENT) * wgpu::MAP_ALIGNMENT;
    let mut views = Vec::new();
    let mut off = 0u64;
    while off < len {
        let take = part.min(len - off);
        let v = buf
            .slice(off..off + take)
            .get_mapped_range_mut()
            .map_err(|e| GpuError::Map {
                bytes: take,
                reason: e.to_string(),
            })?;
        views.push((off as usize, v));
        off += take;
    }
    if views.len() == 1 {
        let (o, mut v) = views.pop().expect("one view");
        f(o, v.slice(..));
        return Ok(());
    }
    // rayon's pool: already running in the analysis, no thread start per chunk.
    rayon::scope(|s| {
        for (o, mut v) in views {
            s.spawn(move |_| f(o, v.slice(..)));
        }
    });
    Ok(())
}

fn par_read(src: &[u8], dst: &mut [u8]) {
    let n = if src.len() >= PAR_MIN_BYTES {
        threads()
    } else {
        1
    };
    if n <= 1 {
        dst.copy_from_slice(src);
        return;
    }
    use rayon::prelude::*;
    let part = src.len().div_ceil(n);
    dst.par_chunks_mut(part)
        .zip(src.par_chunks(part))
        .for_each(|(d, c)| d.copy_from_slice(c));
}

impl Staging {
    pub fn new() -> Self {
        Staging {
            up: Mutex::new(None),
            down: Mutex::new(None),
            broken: AtomicBool::new(false),
        }
    }

    fn stage_bytes(ctx: &GpuContext) -> u64 {
        STAGE_BYTES.min(ctx.limits.max_buffer_size / 4 * 4).max(4)
    }

    /// Write `total` bytes into `dst` from offset 0: `fill(offset, part)` writes the bytes
    /// `offset .. offset + part.len()` of the source (offsets are multiples of 4). Bytes from
    /// `total` up to the next multiple of 4 are zero. Waits until the data is on the device.
    pub fn upload(
        &self,
        ctx: &GpuContext,
        dst: &wgpu::Buffer,
        total: usize,
        fill: &(dyn Fn(usize, WriteOnly<'_, [u8]>) + Sync),
    ) -> Result<(), GpuError> {
        let mut guard = self.up.lock().unwrap_or_else(|p| p.into_inner());
        if self.broken.swap(false, Ordering::Relaxed) {
            *guard = None;
        }
        let sb = Self::stage_bytes(ctx);
        let stages =
            guard.get_or_insert_with(|| [Stage::new(ctx, sb, true), Stage::new(ctx, sb, true)]);
        let padded = (total.div_ceil(4) * 4) as u64;
        let mut off = 0u64;
        let mut k = 0;
        let res = (|| {
            while off < padded {
                let len = (padded - off).min(sb);
                let st = &stages[k];
                st.wait_mapped(ctx)?;
                let data = (total as u64).saturating_sub(off).min(len) as usize;
                let base = off as usize;
                // Each part writes the source bytes it covers and zeros past `total`.
                par_write(&st.buf, len, &|o, part| {
                    let have = data.saturating_sub(o).min(part.len());
                    let (head, mut pad) = part.split_at(have);
                    if have > 0 {
                        fill(base + o, head);
                    }
                    pad.fill(0);
                })?;
                st.buf.unmap();
                let mut enc = ctx.device.create_command_encoder(&Default::default());
                enc.copy_buffer_to_buffer(&st.buf, 0, dst, off, len);
                ctx.queue.submit([enc.finish()]);
                st.request_map(wgpu::MapMode::Write, sb);
                off += len;
                k ^= 1;
            }
            ctx.sync("upload")?;
            stages[0].wait_mapped(ctx)?;
            stages[1].wait_mapped(ctx)
        })();
        if res.is_err() {
            self.broken.store(true, Ordering::Relaxed);
        }
        res
    }

    /// The first `bytes` bytes of `src`, read back in chunks (the copy of chunk i + 1 runs
    /// while chunk i is copied out on the host).
    pub fn download(
        &self,
        ctx: &GpuContext,
        src: &wgpu::Buffer,
        bytes: u64,
    ) -> Result<Vec<u8>, GpuError> {
        let mut guard = self.down.lock().unwrap_or_else(|p| p.into_inner());
        if self.broken.swap(false, Ordering::Relaxed) {
            *guard = None;
        }
        let sb = Self::stage_bytes(ctx);
        let stages =
            guard.get_or_insert_with(|| [Stage::new(ctx, sb, false), Stage::new(ctx, sb, false)]);
        let padded = bytes.div_ceil(4) * 4;
        let mut out = vec![0u8; bytes as usize];
        let res = (|| {
            let n_chunks = padded.div_ceil(sb);
            let issue = |i: u64| {
                let off = i * sb;
                let len = (padded - off).min(sb).min(src.size() - off);
                let st = &stages[(i % 2) as usize];
                let mut enc = ctx.device.create_command_encoder(&Default::default());
                enc.copy_buffer_to_buffer(src, off, &st.buf, 0, len);
                ctx.queue.submit([enc.finish()]);
                st.request_map(wgpu::MapMode::Read, len);
                len
            };
            let mut lens = [0u64; 2];
            if n_chunks > 0 {
                lens[0] = issue(0);
            }
            for i in 0..n_chunks {
                if i + 1 < n_chunks {
                    lens[((i + 1) % 2) as usize] = issue(i + 1);
                }
                let st = &stages[(i % 2) as usize];
                let len = lens[(i % 2) as usize];
                st.wait_mapped(ctx)?;
                {
                    let view =
                        st.buf
                            .slice(0..len)
                            .get_mapped_range()
                            .map_err(|e| GpuError::Map {
                                bytes: len,
                                reason: e.to_string(),
                            })?;
                    let off = (i * sb) as usize;
                    let n = (bytes as usize - off).min(len as usize);
                    par_read(&view[..n], &mut out[off..off + n]);
                }
                st.buf.unmap();
            }
            ctx.take_errors("download")
        })();
        if res.is_err() {
            self.broken.store(true, Ordering::Relaxed);
        }
        res.map(|()| out)
    }
}
