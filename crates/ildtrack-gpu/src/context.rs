//! Adapter discovery, device creation and the synchronous helpers every kernel uses.

use std::sync::{Arc, Mutex};

use crate::error::GpuError;

/// What `probe` found: enough to print, record in `visit.json` and decide `--backend auto`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdapterSummary {
    /// Adapter name as the driver reports it (e.g. "NVIDIA H100 80GB HBM3", "llvmpipe (LLVM 15.0.6, 256 bits)").
    pub name: String,
    /// wgpu backend: "vulkan", "metal", "dx12", "gl".
    pub backend: String,
    /// "DiscreteGpu", "IntegratedGpu", "VirtualGpu", "Cpu", "Other".
    pub device_type: String,
    /// Driver name and version string.
    pub driver: String,
    /// True for CPU rasterisers (llvmpipe, lavapipe, SwiftShader, WARP): correct, but not a GPU.
    pub is_software: bool,
}

impl AdapterSummary {
    fn from_info(info: &wgpu::AdapterInfo) -> Self {
        AdapterSummary {
            name: info.name.clone(),
            backend: info.backend.to_str().to_string(),
            device_type: format!("{:?}", info.device_type),
            driver: format!("{} {}", info.driver, info.driver_info)
                .trim()
                .to_string(),
            is_software: is_software_adapter(info),
        }
    }

    /// One line for logs and `visit.json`: `name (backend, type, driver)`.
    pub fn describe(&self) -> String {
        let sw = if self.is_software { ", software" } else { "" };
        format!(
            "{} ({}, {}{}, {})",
            self.name, self.backend, self.device_type, sw, self.driver
        )
    }
}

/// llvmpipe, lavapipe, SwiftShader, WARP and anything wgpu types as `Cpu` count as software.
pub(crate) fn is_software_adapter(info: &wgpu::AdapterInfo) -> bool {
    if info.device_type == wgpu::DeviceType::Cpu {
        return true;
    }
    let text = format!("{} {} {}", info.name, info.driver, info.driver_info).to_lowercase();
    [
        "llvmpipe",
        "lavapipe",
        "swiftshader",
        "softpipe",
        "microsoft basic render",
        "warp",
    ]
    .iter()
    .any(|k| text.contains(k))
}

/// Backends worth trying for compute: Vulkan, Metal, DX12 (GL compute lacks what we need).
const COMPUTE_BACKENDS: wgpu::Backends = wgpu::Backends::PRIMARY;

fn new_instance() -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    if desc.backends.is_empty() || desc.backends == wgpu::Backends::all() {
        desc.backends = COMPUTE_BACKENDS;
    }
    wgpu::Instance::new(desc)
}

/// Ordered best first: real GPUs (discrete, integrated, virtual) before software ones.
fn rank(info: &wgpu::AdapterInfo) -> u8 {
    if is_software_adapter(info) {
        return 9;
    }
    match info.device_type {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        _ => 3,
    }
}

fn best_adapter(
    instance: &wgpu::Instance,
    allow_software: bool,
) -> Result<wgpu::Adapter, GpuError> {
    let mut adapters = pollster::block_on(instance.enumerate_adapters(COMPUTE_BACKENDS));
    if adapters.is_empty() {
        return Err(GpuError::NoAdapter(
            "wgpu enumerated no Vulkan/Metal/DX12 adapter".into(),
        ));
    }
    adapters.sort_by_key(|a| rank(&a.get_info()));
    let names: Vec<String> = adapters.iter().map(|a| a.get_info().name).collect();
    adapters
        .into_iter()
        .find(|a| allow_software || !is_software_adapter(&a.get_info()))
        .ok_or_else(|| {
            GpuError::NoAdapter(format!(
                "only software adapters found ({}) and allow_software is false",
                names.join(", ")
            ))
        })
}

/// Best adapter on this machine (real GPUs first), or `None`. Creates no device.
///
/// For `--backend auto`: use the GPU only when `Some(s)` with `!s.is_software`.
pub fn probe() -> Option<AdapterSummary> {
    let instance = new_instance();
    let adapter = best_adapter(&instance, true).ok()?;
    Some(AdapterSummary::from_info(&adapter.get_info()))
}

/// A device, its queue, the limits we asked for and a sink for asynchronous wgpu errors.
pub(crate) struct GpuContext {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub limits: wgpu::Limits,
    pub summary: AdapterSummary,
    errors: Arc<Mutex<Vec<String>>>,
    /// A persistent readback buffer for small reads (counters, tables, flags, timestamps): a
    /// fresh `MAP_READ` buffer per read can make the driver allocate and pin new host memory.
    small_read: Mutex<Option<wgpu::Buffer>>,
}

/// Reads up to this many bytes go through `GpuContext::small_read`.
const SMALL_READ_BYTES: u64 = 1 << 20;

impl GpuContext {
    pub fn new(allow_software: bool) -> Result<Self, GpuError> {
        let instance = new_instance();
        let adapter = best_adapter(&instance, allow_software)?;
        let summary = AdapterSummary::from_info(&adapter.get_info());
        // Never assume defaults: ask for exactly what this adapter offers.
        let limits = adapter.limits();
        // Timestamps between commands, when offered: `bench --profile` reads device time.
        let timestamps =
            wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::TIMESTAMP_QUERY_INSIDE_ENCODERS;
        let features = if adapter.features().contains(timestamps) {
            timestamps
        } else {
            wgpu::Features::empty()
        };
        let desc = wgpu::DeviceDescriptor {
            label: Some("ildtrack"),
            required_features: features,
            required_limits: limits.clone(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&desc)).map_err(|e| {
            GpuError::RequestDevice {
                adapter: summary.describe(),
                reason: e.to_string(),
            }
        })?;
        let errors: Arc<Mutex<Vec<String>>> = Arc::default();
        let sink = errors.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            tracing::error!(error = %e, "wgpu error");
            if let Ok(mut v) = sink.lock() {
                v.push(e.to_string());
            }
        }));
        tracing::info!(adapter = %summary.describe(), max_binding_bytes = limits.max_storage_buffer_binding_size, "wgpu device ready");
        Ok(GpuContext {
            device,
            queue,
            limits,
            summary,
            errors,
            small_read: Mutex::new(None),
        })
    }

    /// Run `f` inside out-of-memory and validation error scopes (thread-local, so errors land
    /// on the call that caused them); an out-of-memory error becomes [`GpuError::TooLarge`].
    pub fn scoped<T>(&self, op: &str, bytes: u64, f: impl FnOnce() -> T) -> Result<T, GpuError> {
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let val = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let out = f();
        let val = pollster::block_on(val.pop());
        let oom = pollster::block_on(oom.pop());
        if let Some(e) = oom {
            return Err(GpuError::TooLarge {
                what: format!("{op} (device out of memory: {e})"),
                needed_bytes: bytes,
                limit_bytes: self.limits.max_buffer_size,
            });
        }
        if let Some(e) = val {
            return Err(GpuError::Device {
                op: op.to_string(),
                reason: e.to_string(),
            });
        }
        Ok(out)
    }

    /// Wait for all submitted work; turn any error wgpu reported meanwhile into `Err`.
    pub fn sync(&self, op: &str) -> Result<(), GpuError> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| GpuError::Device {
                op: op.to_string(),
                reason: e.to_string(),
            })?;
        self.take_errors(op)
    }

    pub fn take_errors(&self, op: &str) -> Result<(), GpuError> {
        let mut v = match self.errors.lock() {
            Ok(v) => v,
            Err(p) => p.into_inner(),
        };
        if v.is_empty() {
            Ok(())
        } else {
            let reason = if v.len() == 1 {
                v[0].clone()
            } else {
                format!("{} (and {} more errors)", v[0], v.len() - 1)
            };
            v.clear();
            Err(GpuError::Device {
                op: op.to_string(),
                reason,
            })
        }
    }

    /// Copy `bytes` bytes of `src` (from offset 0) back to the host.
    pub fn read_bytes(&self, src: &wgpu::Buffer, bytes: u64) -> Result<Vec<u8>, GpuError> {
        let size = bytes.max(4).div_ceil(4) * 4;
        let t = std::time::Instant::now();
        let mut small = if size <= SMALL_READ_BYTES {
            Some(self.small_read.lock().unwrap_or_else(|p| p.into_inner()))
        } else {
            None
        };
        let staging = match small.as_mut() {
            Some(slot) => slot
                .get_or_insert_with(|| {
                    self.device.create_buffer(&wgpu::BufferDescriptor {
                        label: Some("small-readback"),
                        size: SMALL_READ_BYTES,
                        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                        mapped_at_creation: false,
                    })
                })
                .clone(),
            None => self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("readback"),
                size,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }),
        };
        let mut enc = self.device.create_command_encoder(&Default::default());
        enc.copy_buffer_to_buffer(src, 0, &staging, 0, size.min(src.size()));
        self.queue.submit([enc.finish()]);
        crate::profile::record("read.staging+submit", t);
        let t = std::time::Instant::now();
        let slot: Arc<Mutex<Option<Result<(), String>>>> = Arc::default();
        let slot2 = slot.clone();
        staging
            .slice(0..size)
            .map_async(wgpu::MapMode::Read, move |r| {
                if let Ok(mut s) = slot2.lock() {
                    *s = Some(r.map_err(|e| e.to_string()));
                }
            });
        self.sync("readback")?;
        // Another thread's poll may be the one running our callback: wait for it to land.
        let started = std::time::Instant::now();
        let mut res = slot.lock().ok().and_then(|mut s| s.take());
        while res.is_none() && started.elapsed() < std::time::Duration::from_secs(30) {
            std::thread::sleep(std::time::Duration::from_micros(200));
            let _ = self.device.poll(wgpu::PollType::Poll);
            res = slot.lock().ok().and_then(|mut s| s.take());
        }
        if !matches!(res, Some(Ok(()))) {
            // Leave no half-mapped buffer behind for the next read.
            if let Some(slot) = small.as_mut() {
                **slot = None;
            }
        }
        match res {
            Some(Ok(())) => {}
            Some(Err(reason)) => {
                return Err(GpuError::Map {
                    bytes: size,
                    reason,
                });
            }
            None => {
                return Err(GpuError::Map {
                    bytes: size,
                    reason: "callback never ran".into(),
                });
            }
        }
        crate::profile::record("read.wait+map", t);
        let t = std::time::Instant::now();
        let out = {
            let view = staging
                .slice(0..size)
                .get_mapped_range()
                .map_err(|e| GpuError::Map {
                    bytes: size,
                    reason: e.to_string(),
                })?;
            view[..bytes as usize].to_vec()
        };
        staging.unmap();
        crate::profile::record(
            if bytes >= 1 << 20 {
                "read.copy >=1MiB"
            } else {
                "read.copy <1MiB"
            },
            t,
        );
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(name: &str, driver: &str, ty: wgpu::DeviceType) -> wgpu::AdapterInfo {
        let mut i = wgpu::AdapterInfo::new(ty, wgpu::Backend::Vulkan);
        i.name = name.to_string();
        i.driver = driver.to_string();
        i
    }

    #[test]
    fn software_adapters_are_recognised() {
        let check = |name: &str, driver: &str, ty, want: bool| {
            assert_eq!(
                is_software_adapter(&info(name, driver, ty)),
                want,
                "{name} / {driver} / {ty:?}"
            );
        };
        check(
            "llvmpipe (LLVM 15.0.6, 256 bits)",
            "llvmpipe",
            wgpu::DeviceType::Cpu,
            true,
        );
        // Classified by name even when the driver reports another type.
        check(
            "llvmpipe (LLVM 15.0.6, 256 bits)",
            "",
            wgpu::DeviceType::Other,
            true,
        );
        check(
            "SwiftShader Device (Subzero)",
            "SwiftShader driver",
            wgpu::DeviceType::Other,
            true,
        );
        check(
            "Microsoft Basic Render Driver",
            "",
            wgpu::DeviceType::Other,
            true,
        );
        check(
            "NVIDIA H100 80GB HBM3",
            "NVIDIA 550.54",
            wgpu::DeviceType::DiscreteGpu,
            false,
        );
        check(
            "AMD Radeon Graphics (RADV RENOIR)",
            "radv",
            wgpu::DeviceType::IntegratedGpu,
            false,
        );
    }

    #[test]
    fn real_gpus_rank_before_software() {
        let h100 = info("NVIDIA H100", "nvidia", wgpu::DeviceType::DiscreteGpu);
        let igpu = info("Intel(R) UHD", "intel", wgpu::DeviceType::IntegratedGpu);
        let lvp = info("llvmpipe", "llvmpipe", wgpu::DeviceType::Cpu);
        assert!(rank(&h100) < rank(&igpu) && rank(&igpu) < rank(&lvp));
    }

    #[test]
    fn summary_describes_adapter_and_software_flag() {
        let s = AdapterSummary::from_info(&info(
            "llvmpipe (LLVM 15)",
            "llvmpipe",
            wgpu::DeviceType::Cpu,
        ));
        assert!(s.is_software);
        assert_eq!(s.backend, "vulkan");
        assert!(
            s.describe().contains("llvmpipe (LLVM 15)") && s.describe().contains("software"),
            "{}",
            s.describe()
        );
    }
}
