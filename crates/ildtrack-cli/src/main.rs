//! `ildtrack`: quantitative chest CT for interstitial lung disease.
//!
//! The only crate with clap, anyhow, indicatif and a tracing subscriber. Errors are printed once
//! (the whole chain) and mapped to exit codes: 0 ok, 2 unusable input, 1 internal error.

mod backend;
mod bench;
mod choice;
mod inspect;
mod progress;

use anyhow::{Context, Result};
use choice::{BackendChoice, FormatChoice, UsageError};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(name = "ildtrack", version, about = "Quantitative chest CT for interstitial lung disease: segment, measure, track across visits.", long_about = None)]
struct Cli {
    /// More log output (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Debug, Clone)]
struct AnalysisArgs {
    /// Compute backend.
    #[arg(long, value_enum, default_value_t = BackendChoice::Auto)]
    backend: BackendChoice,
    /// TOML file with analysis settings (thresholds, age preset, ...); flags below override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// GGO lower bound in HU (default −700).
    #[arg(long, allow_hyphen_values = true)]
    ggo_lo_hu: Option<i32>,
    /// GGO / consolidation boundary in HU (default −300).
    #[arg(long, allow_hyphen_values = true)]
    consolidation_lo_hu: Option<i32>,
    /// Consolidation upper bound in HU, exclusive (default +100).
    #[arg(long, allow_hyphen_values = true)]
    consolidation_hi_hu: Option<i32>,
    /// Low-attenuation threshold in HU (default −950).
    #[arg(long, allow_hyphen_values = true)]
    laa_hu: Option<i32>,
    /// Kernel harmonization before classification (docs/HARMONIZATION.md): auto (default in
    /// the settings) where the scan measures sharper or noisier than the soft reference.
    #[arg(long, value_enum)]
    harmonize: Option<HarmonizeArg>,
    /// Show patient name and ID in reports (never in logs).
    #[arg(long)]
    identify: bool,
    /// Analysis cache folder, shared between runs (`track` defaults to <OUT>/.ildtrack-cache;
    /// `analyze` uses one only when given). A visit analysed with the same settings and input
    /// bytes is taken from it, not analysed again.
    #[arg(long)]
    cache: Option<PathBuf>,
    /// File format of the label maps: nifti (lungs.nii.gz, classes.nii.gz) or nrrd (lungs.nrrd,
    /// classes.nrrd and the 3D Slicer segmentation segmentation.seg.nrrd).
    #[arg(long, value_enum, default_value_t = FormatChoice::Nifti)]
    format: FormatChoice,
    /// Also write a DICOM Segmentation (segmentation.dcm: lungs and density classes, coded,
    /// referencing the source series) for PACS and viewers. Needs a DICOM input.
    #[arg(long)]
    dicom_out: bool,
}

/// `--harmonize` values (the settings' `harmonize`).
#[derive(clap::ValueEnum, Debug, Clone, Copy)]
enum HarmonizeArg {
    Off,
    Auto,
    On,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// List every series found in INPUT and say which one would be analysed, and why.
    Inspect {
        /// A folder, DICOMDIR, DICOM file, NIfTI file or NRRD file (.nrrd / .nhdr).
        input: PathBuf,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Segment the lungs and quantify GGO / consolidation of one scan.
    Analyze {
        input: PathBuf,
        /// Output folder (created).
        #[arg(long)]
        out: PathBuf,
        /// Analyse this SeriesInstanceUID instead of the automatic choice.
        #[arg(long)]
        series: Option<String>,
        #[command(flatten)]
        analysis: AnalysisArgs,
    },
    /// Analyse every visit of one patient and compare them over time.
    Track {
        /// Visits (anything `analyze` accepts), in any order.
        visits: Vec<PathBuf>,
        /// TOML manifest listing visits with labels, dates and lung-function values.
        #[arg(long)]
        manifest: Option<PathBuf>,
        #[arg(long)]
        out: PathBuf,
        /// Treatment day (YYYY-MM-DD): visits are shown as days before / after it.
        #[arg(long)]
        day0: Option<String>,
        #[command(flatten)]
        analysis: AnalysisArgs,
    },
    /// Summarise many patients' `track` outputs: cohort.csv (one row per patient-visit) and
    /// cohort.html (one row per patient, with its trend and latest verdict).
    Cohort {
        /// Each patient's track output folder, as KEY=FOLDER (KEY is the patient's study code
        /// shown in the summary) or FOLDER (KEY is the folder's name).
        patients: Vec<String>,
        /// Output folder for cohort.csv and cohort.html (created).
        #[arg(long)]
        out: PathBuf,
        /// A cohort row that was left out, with its reason (shown in cohort.html); repeatable.
        #[arg(long)]
        excluded: Vec<String>,
    },
    /// Generate a synthetic patient (child with rapidly progressive ILD, six visits) and track it.
    Demo {
        #[arg(long, default_value = "ildtrack-demo")]
        out: PathBuf,
        #[arg(long, value_enum, default_value_t = BackendChoice::Auto)]
        backend: BackendChoice,
    },
    /// Write a synthetic chest CT with known truth as a DICOM series (test data, benchmarks).
    Phantom {
        /// Output folder for the DICOM files (created).
        #[arg(long)]
        out: PathBuf,
        /// Volume size, columns x rows x slices (the field of view stays that of an adult chest).
        #[arg(long, default_value = "512x512x300")]
        size: String,
        /// Anatomy / disease preset: healthy, ild, large-consolidation, collapsed-right, lungs-touching, ...
        #[arg(long, default_value = "ild")]
        preset: String,
        /// Also write the generator's truth (volumes per lung, zone and class) as truth.json.
        #[arg(long)]
        truth: bool,
    },
    /// Time every kernel and the whole analysis on each backend, side by side.
    Bench {
        /// Volume size, columns x rows x slices.
        #[arg(long, default_value = "512x512x300")]
        size: String,
        /// Comma-separated backends to run: cpu, gpu.
        #[arg(long, default_value = "cpu,gpu")]
        backend: String,
        /// Timed runs per kernel (after one warm-up).
        #[arg(long, default_value_t = 3)]
        repeat: usize,
        #[arg(long)]
        json: bool,
        /// Also time software GPU adapters (llvmpipe/lavapipe): a correctness run, not GPU speed.
        #[arg(long)]
        allow_software: bool,
        /// GPU: also record where each kernel's host time goes (allocation, encode, submit,
        /// wait, readback) and print it after the table.
        #[arg(long)]
        profile: bool,
    },
}

fn init_logging(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    // dicom-rs logs every oddity of every file it parses; the loader turns the ones that
    // matter into warnings of its own, so keep dicom-rs quiet unless asked (-vv or RUST_LOG).
    let default = match verbose {
        0 => {
            "warn,dicom_object=error,dicom_parser=error,dicom_encoding=error,dicom_pixeldata=error"
        }
        1 => {
            "info,dicom_object=error,dicom_parser=error,dicom_encoding=error,dicom_pixeldata=error"
        }
        _ => "debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// Exit code 2 when the error comes from unusable input, 1 otherwise.
fn exit_code_for(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<ildtrack_dicom::LoadError>() {
            return if e.is_unusable_input() { 2 } else { 1 };
        }
        if let Some(e) = cause.downcast_ref::<ildtrack_app::AppError>()
            && e.is_unusable_input()
        {
            return 2;
        }
        if cause.downcast_ref::<UsageError>().is_some() {
            return 2;
        }
    }
    1
}

/// One glibc malloc arena for the whole process. With one arena per thread, a volume freed by
/// one rayon worker is not reused by the next allocation made on another, and peak RSS
/// wandered from run to run: 527-628 MiB on the 512x512x300 sharp-kernel phantom (the target
/// is 4x the 150 MiB volume), 512-533 MiB with one arena at the same speed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn one_malloc_arena() {
    // SAFETY: mallopt only sets an allocator parameter; called first thing in main, before
    // any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn one_malloc_arena() {}

/// While wgpu enumerates adapters, Mesa's Vulkan drivers look for a Wayland display, and
/// libwayland prints "error: XDG_RUNTIME_DIR is invalid or not set in the environment." where
/// that variable is unset (ssh sessions, containers, CI): an error-looking line about a display
/// ildtrack never uses. Where it is unset or not a directory, it is pointed at a private
/// directory of this user (created with mode 0700; left alone if someone else owns it).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn quiet_display_probe() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let set =
        std::env::var_os("XDG_RUNTIME_DIR").is_some_and(|d| std::path::Path::new(&d).is_dir());
    if set {
        return;
    }
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    let dir = std::env::temp_dir().join(format!("ildtrack-runtime-{uid}"));
    let _ = std::fs::create_dir(&dir);
    let ours = std::fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir() && m.uid() == uid);
    if !ours || std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).is_err() {
        return;
    }
    // SAFETY: called first thing in main, before any other thread exists: nothing reads the
    // environment concurrently.
    unsafe {
        std::env::set_var("XDG_RUNTIME_DIR", &dir);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn quiet_display_probe() {}

fn main() -> ExitCode {
    one_malloc_arena();
    quiet_display_probe();
    let cli = Cli::parse();
    init_logging(cli.verbose);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(exit_code_for(&e))
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Inspect { input, json } => {
            let scan = ildtrack_dicom::scan(&input)?;
            inspect::run(&scan, json)
        }
        Command::Analyze {
            input,
            out,
            series,
            analysis,
        } => {
            let opts = analyze_options(&analysis, series)?;
            let backend = backend::select(analysis.backend)?;
            backend.analyze(&input, &out, &opts)
        }
        Command::Track {
            visits,
            manifest,
            out,
            day0,
            analysis,
        } => {
            let opts = analyze_options(&analysis, None)?;
            let backend = backend::select(analysis.backend)?;
            backend.track(&visits, manifest.as_deref(), &out, day0, &opts)
        }
        Command::Cohort {
            patients,
            out,
            excluded,
        } => {
            let entries = patients
                .iter()
                .map(|p| cohort_entry(p))
                .collect::<Result<Vec<_>>>()?;
            ildtrack_app::cohort(&entries, &excluded, &out)?;
            println!(
                "cohort of {} patient(s): {} and {}",
                entries.len(),
                out.join("cohort.csv").display(),
                out.join("cohort.html").display()
            );
            Ok(())
        }
        Command::Demo { out, backend } => {
            let backend = backend::select(backend)?;
            backend.demo(&out)
        }
        Command::Phantom {
            out,
            size,
            preset,
            truth,
        } => backend::phantom(&out, &size, &preset, truth),
        Command::Bench {
            size,
            backend,
            repeat,
            json,
            allow_software,
            profile,
        } => backend::bench(
            &size,
            &backend,
            repeat.max(1),
            json,
            allow_software,
            profile,
        ),
    }
}

/// `KEY=FOLDER` or `FOLDER` (key: the folder's name).
fn cohort_entry(arg: &str) -> Result<ildtrack_app::CohortEntry> {
    let (key, dir) = match arg.split_once('=') {
        Some((k, d)) if !k.is_empty() && !k.contains(['/', '\\']) => {
            (k.to_string(), PathBuf::from(d))
        }
        _ => {
            let dir = PathBuf::from(arg);
            let key = dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .ok_or_else(|| UsageError(format!("{arg:?}: give a patient as KEY=FOLDER")))?;
            (key, dir)
        }
    };
    if !dir.join("track.json").is_file() {
        return Err(UsageError(format!(
            "patient {key}: {} holds no track.json (run `ildtrack track --out {}` first)",
            dir.display(),
            dir.display()
        ))
        .into());
    }
    Ok(ildtrack_app::CohortEntry {
        key,
        track_dir: dir,
    })
}

fn analyze_options(
    a: &AnalysisArgs,
    series: Option<String>,
) -> Result<ildtrack_app::AnalyzeOptions> {
    let mut config = match &a.config {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read config file {}", p.display()))?;
            ildtrack_analysis::AnalysisConfig::from_toml_str(&text)
                .map_err(|e| UsageError(format!("invalid config file {}: {e}", p.display())))?
        }
        None => ildtrack_analysis::AnalysisConfig::default(),
    };
    if let Some(h) = a.harmonize {
        config.harmonize = match h {
            HarmonizeArg::Off => ildtrack_analysis::HarmonizeMode::Off,
            HarmonizeArg::Auto => ildtrack_analysis::HarmonizeMode::Auto,
            HarmonizeArg::On => ildtrack_analysis::HarmonizeMode::On,
        };
    }
    let t = &mut config.thresholds;
    if let Some(v) = a.ggo_lo_hu {
        t.ggo_lo_hu = v;
    }
    if let Some(v) = a.consolidation_lo_hu {
        t.consolidation_lo_hu = v;
    }
    if let Some(v) = a.consolidation_hi_hu {
        t.consolidation_hi_hu = v;
    }
    if let Some(v) = a.laa_hu {
        t.laa_hu = v;
    }
    if !(t.laa_hu < t.ggo_lo_hu
        && t.ggo_lo_hu < t.consolidation_lo_hu
        && t.consolidation_lo_hu < t.consolidation_hi_hu)
    {
        return Err(UsageError(format!(
            "thresholds must increase: laa {} < ggo {} < consolidation {} < upper {} HU",
            t.laa_hu, t.ggo_lo_hu, t.consolidation_lo_hu, t.consolidation_hi_hu
        ))
        .into());
    }
    Ok(ildtrack_app::AnalyzeOptions {
        config,
        series_uid: series,
        identify: a.identify,
        cache_dir: a.cache.clone(),
        label_format: a.format.into(),
        dicom_out: a.dicom_out,
        ..Default::default()
    })
}
