//! Picks the compute backend (`--backend auto|cpu|gpu`) and runs the jobs generically over it.

use crate::bench;
use crate::choice::{BackendChoice, UsageError};
use crate::progress::Progress;
use anyhow::{Context, Result};
use ildtrack_app::AnalyzeOptions;
use ildtrack_compute::{Backend, CpuBackend};
use ildtrack_gpu::{GpuOptions, WgpuBackend};
use std::path::Path;

pub enum AnyBackend {
    Cpu(CpuBackend),
    Gpu(Box<WgpuBackend>),
}

/// `auto`: a real (hardware) GPU when wgpu finds one, else the CPU with a one-line notice.
/// `gpu`: any wgpu adapter, software ones included; an error when there is none.
pub fn select(choice: BackendChoice) -> Result<AnyBackend> {
    let b = match choice {
        BackendChoice::Cpu => AnyBackend::Cpu(CpuBackend::new()),
        BackendChoice::Gpu => AnyBackend::Gpu(Box::new(
            WgpuBackend::new(GpuOptions {
                allow_software: true,
                ..Default::default()
            })
            .context("--backend gpu: no usable wgpu adapter")?,
        )),
        BackendChoice::Auto => match WgpuBackend::new(GpuOptions {
            allow_software: false,
            ..Default::default()
        }) {
            Ok(g) => AnyBackend::Gpu(Box::new(g)),
            Err(e) => {
                eprintln!("note: no hardware GPU ({e}); using the CPU backend");
                AnyBackend::Cpu(CpuBackend::new())
            }
        },
    };
    eprintln!("backend: {} ({})", b.name(), b.device());
    Ok(b)
}

impl AnyBackend {
    pub fn name(&self) -> &'static str {
        match self {
            AnyBackend::Cpu(b) => b.name(),
            AnyBackend::Gpu(b) => b.name(),
        }
    }

    pub fn device(&self) -> String {
        match self {
            AnyBackend::Cpu(b) => b.device_description(),
            AnyBackend::Gpu(b) => b.device_description(),
        }
    }

    pub fn analyze(&self, input: &Path, out: &Path, opts: &AnalyzeOptions) -> Result<()> {
        match self {
            AnyBackend::Cpu(b) => analyze(b, input, out, opts),
            AnyBackend::Gpu(b) => analyze(b.as_ref(), input, out, opts),
        }
    }

    pub fn track(
        &self,
        visits: &[std::path::PathBuf],
        manifest: Option<&Path>,
        out: &Path,
        day0: Option<String>,
        opts: &AnalyzeOptions,
    ) -> Result<()> {
        match self {
            AnyBackend::Cpu(b) => track(b, visits, manifest, out, day0, opts),
            AnyBackend::Gpu(b) => track(b.as_ref(), visits, manifest, out, day0, opts),
        }
    }

    pub fn demo(&self, out: &Path) -> Result<()> {
        match self {
            AnyBackend::Cpu(b) => demo(b, out),
            AnyBackend::Gpu(b) => demo(b.as_ref(), out),
        }
    }
}

fn analyze<B: Backend>(b: &B, input: &Path, out: &Path, opts: &AnalyzeOptions) -> Result<()> {
    let progress = Progress::new();
    let res = ildtrack_app::analyze_to_dir(b, input, out, opts, &|s, f| progress.update(s, f));
    progress.finish();
    let outputs = res?;
    println!("{}", outputs.summary);
    println!("outputs in {}", out.display());
    Ok(())
}

fn track<B: Backend>(
    b: &B,
    visits: &[std::path::PathBuf],
    manifest: Option<&Path>,
    out: &Path,
    day0: Option<String>,
    opts: &AnalyzeOptions,
) -> Result<()> {
    let mut inputs = match manifest {
        Some(m) => ildtrack_app::Manifest::from_toml_path(m)?,
        None => ildtrack_app::Manifest::default(),
    };
    for v in visits {
        inputs
            .visits
            .push(ildtrack_app::VisitInput::from_path(v.clone()));
    }
    if day0.is_some() {
        inputs.day0 = day0;
    }
    if inputs.visits.is_empty() {
        return Err(UsageError("no visits given: pass visit folders or --manifest".into()).into());
    }
    let progress = Progress::new();
    let res = ildtrack_app::track(b, &inputs, out, opts, &|s, f| progress.update(s, f));
    progress.finish();
    let result = res?;
    println!("{}", result.summary_text());
    println!("longitudinal report: {}", out.join("index.html").display());
    Ok(())
}

fn demo<B: Backend>(b: &B, out: &Path) -> Result<()> {
    let progress = Progress::new();
    let res = ildtrack_app::demo(b, out, &|s, f| progress.update(s, f));
    progress.finish();
    let result = res?;
    println!("{}", result.summary_text());
    println!("open {}", out.join("index.html").display());
    Ok(())
}

/// `ildtrack bench`.
pub fn bench(
    size: &str,
    backends: &str,
    repeat: usize,
    json: bool,
    allow_software: bool,
    profile: bool,
) -> Result<()> {
    let dims = bench::parse_size(size)?;
    let spec = phantom_spec("ild", dims)?;
    eprintln!(
        "generating a {}x{}x{} phantom...",
        dims[2], dims[1], dims[0]
    );
    let ph = ildtrack_phantom::generate(&spec);
    let hu = ph.volume;
    let meta = ph.meta;
    let mut out = Vec::new();
    for name in backends.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let choice = match name {
            "cpu" => BackendChoice::Cpu,
            "gpu" => BackendChoice::Gpu,
            other => {
                return Err(UsageError(format!("unknown backend {other:?} (use cpu, gpu)")).into());
            }
        };
        let b = match select(choice) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("skipping backend {name}: {e:#}");
                continue;
            }
        };
        let config = ildtrack_analysis::AnalysisConfig::default();
        let r = match &b {
            AnyBackend::Cpu(cb) => {
                let bw = bench::host_copy_bandwidth_gb_s(hu.len() * 2);
                bench::bench_backend(
                    cb,
                    &hu,
                    bw,
                    repeat,
                    &|be| time_analyze(be, &hu, &meta, &config),
                    &Vec::new,
                )?
            }
            AnyBackend::Gpu(gb) => {
                if gb.is_software() && !allow_software {
                    eprintln!(
                        "skipping backend gpu: {} is a software adapter (its times say nothing about GPU speed); pass --allow-software to run it anyway",
                        gb.adapter_description()
                    );
                    continue;
                }
                gb.warm_up().context("compiling the GPU pipelines")?;
                let l = gb.limits();
                eprintln!(
                    "gpu limits: max_buffer_size {} B, max_storage_buffer_binding_size {} B, workgroup storage {} B",
                    l.max_buffer_size,
                    l.max_storage_buffer_binding_size,
                    l.max_compute_workgroup_storage_size
                );
                // Yardstick: a 1 GiB word copy by a compute shader (what a memory-bound kernel
                // can reach), timed as the difference of 8 and 1 copies per submission so the
                // submit/wait latency drops out; beside it the same for copy_buffer_to_buffer.
                let bw = gb
                    .measure_shader_copy_bandwidth_gbs(1 << 30, 5)
                    .context("measuring GPU copy bandwidth")?;
                let dma = gb
                    .measure_copy_bandwidth_gbs(1 << 30, 5)
                    .context("measuring GPU copy bandwidth")?;
                ildtrack_gpu::profile_enable(profile);
                let take = || {
                    if profile {
                        ildtrack_gpu::profile_take()
                    } else {
                        Vec::new()
                    }
                };
                let mut r = bench::bench_backend(
                    gb.as_ref(),
                    &hu,
                    bw,
                    repeat,
                    &|be| time_analyze(be, &hu, &meta, &config),
                    &take,
                )?;
                ildtrack_gpu::profile_enable(false);
                r.copy_buffer_gb_s = Some(dma);
                r
            }
        };
        out.push(r);
    }
    let report = bench::BenchReport {
        version: env!("CARGO_PKG_VERSION").to_string(),
        dims_zyx: dims,
        voxels: hu.len(),
        repeat,
        host: format!(
            "{} logical CPUs",
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        ),
        backends: out,
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        bench::print_table(&report);
    }
    Ok(())
}

fn time_analyze<B: Backend>(
    b: &B,
    hu: &ildtrack_volume::Volume<i16>,
    meta: &ildtrack_volume::ScanMeta,
    config: &ildtrack_analysis::AnalysisConfig,
) -> Result<bench::AnalyzeTiming> {
    // One warm-up (pipeline compilation on GPUs), then the timed run.
    ildtrack_analysis::analyze(b, hu, meta, &[], config, &|_, _| {})?;
    let t = std::time::Instant::now();
    let a = ildtrack_analysis::analyze(b, hu, meta, &[], config, &|_, _| {})?;
    let ms = t.elapsed().as_secs_f64() * 1e3;
    Ok((ms, a.result.timings_ms))
}

/// A phantom preset on a `dims_zyx` grid that keeps an adult chest's field of view
/// (400 mm in-plane, 300 mm craniocaudal) whatever the voxel count.
fn phantom_spec(preset: &str, dims_zyx: [usize; 3]) -> Result<ildtrack_phantom::PhantomSpec> {
    let spec = ildtrack_phantom::PhantomSpec::preset(preset).ok_or_else(|| {
        UsageError(format!(
            "unknown phantom preset {preset:?}; known: {}",
            ildtrack_phantom::PRESETS.join(", ")
        ))
    })?;
    let spacing_mm = [
        300.0 / dims_zyx[0] as f64,
        400.0 / dims_zyx[1] as f64,
        400.0 / dims_zyx[2] as f64,
    ];
    Ok(spec.with_grid(dims_zyx, spacing_mm))
}

/// `ildtrack phantom`.
pub fn phantom(out: &Path, size: &str, preset: &str, truth: bool) -> Result<()> {
    let dims = bench::parse_size(size)?;
    let spec = phantom_spec(preset, dims)?;
    let ph = ildtrack_phantom::generate(&spec);
    let files =
        ildtrack_phantom::write_dicom_series(&ph, out, &ildtrack_phantom::WriteOptions::default())
            .with_context(|| format!("writing the phantom series into {}", out.display()))?;
    if truth {
        let path = out.join("truth.json");
        let text = serde_json::to_string_pretty(&ph.truth.summary())?;
        ildtrack_fs::write_atomic(&path, text.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    println!(
        "wrote {} DICOM files ({}x{}x{}, preset {preset}) into {}",
        files.len(),
        dims[2],
        dims[1],
        dims[0],
        out.display()
    );
    Ok(())
}
