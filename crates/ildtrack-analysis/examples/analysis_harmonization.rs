//! Kernel harmonization on the real kernel pairs, the COVID slices and the phantom's sharp
//! kernel: band SDs measured in homogeneous tissue (the reference profile's derivation), and
//! the density metrics before and after, as the markdown tables of `docs/HARMONIZATION.md`.
//!
//! `cargo run --release -p ildtrack-analysis --example analysis_harmonization -- [--mode on|auto|off] [--no-phantom] [--no-covid]`

mod common;

use ildtrack_analysis::model::{Lungs, Metrics, VisitResult};
use ildtrack_analysis::{Analysis, AnalysisConfig, HarmonizeMode, analyze};
use ildtrack_compute::CpuBackend;
use ildtrack_phantom::{PhantomSpec, try_generate};
use ildtrack_volume::{ScanMeta, Volume, Warning};
use std::path::Path;
use std::time::Instant;

fn run(vol: &Volume<i16>, meta: &ScanMeta, warnings: &[Warning], mode: HarmonizeMode) -> Analysis {
    let cfg = AnalysisConfig {
        harmonize: mode,
        ..Default::default()
    };
    analyze(&CpuBackend::new(), vol, meta, warnings, &cfg, &|_, _| {})
        .unwrap_or_else(|e| panic!("analyze: {e}"))
}

fn f1(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{v:.0}"))
}

/// `raw → harmonized` of one metric, or the raw one alone.
fn pair(raw: f64, h: Option<f64>, digits: usize) -> String {
    match h {
        Some(h) => format!("{raw:.digits$} → **{h:.digits$}**"),
        None => format!("{raw:.digits$}"),
    }
}

fn row(name: &str, r: &VisitResult) {
    let h = r.harmonization.as_ref();
    let hw: Option<&Metrics> = h.and_then(|h| h.lungs.as_ref()).map(|l: &Lungs| &l.whole);
    let w = &r.lungs.whole;
    let status = h.map_or("–".to_string(), |h| format!("{:?}", h.status));
    let join = |v: &[f64], digits: usize| {
        v.iter()
            .map(|x| format!("{x:.digits$}"))
            .collect::<Vec<_>>()
            .join(" / ")
    };
    let bands = h.map_or("–".into(), |h| join(&h.measured_band_sd_hu, 2));
    let gains = h.map_or("–".into(), |h| join(&h.gains, 3));
    let one = |v: Option<f64>| v.map_or("–".into(), |v| format!("{v:.1}"));
    let noise = format!(
        "{} → {}",
        one(h.and_then(|h| h.noise_before_hu)),
        one(h.and_then(|h| h.noise_after_hu))
    );
    let hu_pair = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => format!("{a:.0} → **{b:.0}**"),
        (a, _) => f1(a),
    };
    let density = format!(
        "{} / {}",
        hu_pair(w.mean_hu, hw.and_then(|m| m.mean_hu)),
        hu_pair(w.p15_hu, hw.and_then(|m| m.p15_hu))
    );
    let laa = pair(w.laa950_pct, hw.map(|m| m.laa950_pct), 2);
    let ggo = pair(w.ggo_pct, hw.map(|m| m.ggo_pct), 2);
    println!(
        "| {name} | {} | {status} | {bands} | {gains} | {noise} | {laa} | {ggo} | {density} | {:.1} |",
        r.series.kernel.as_deref().unwrap_or("?"),
        w.volume_ml,
    );
}

/// The metrics a comparison across kernels uses (see `VisitResult::reference_lungs`).
fn reference(r: &VisitResult) -> Option<&Metrics> {
    r.reference_lungs().ok().map(|l| &l.whole)
}

fn delta_row(name: &str, sharp: &VisitResult, soft: &VisitResult) {
    let (a, b) = (&sharp.lungs.whole, &soft.lungs.whole);
    let d = |x: f64, y: f64| format!("{:+.2}", x - y);
    let dopt = |x: Option<f64>, y: Option<f64>| match (x, y) {
        (Some(x), Some(y)) => format!("{:+.1}", x - y),
        _ => "–".into(),
    };
    let (ra, rb) = (reference(sharp), reference(soft));
    let after = |f: &dyn Fn(&Metrics, &Metrics) -> String| match (ra, rb) {
        (Some(x), Some(y)) => f(x, y),
        _ => "n/a".into(),
    };
    println!(
        "| {name} | {} → **{}** | {} → **{}** | {} → **{}** | {} → **{}** | {} |",
        d(a.laa950_pct, b.laa950_pct),
        after(&|x, y| d(x.laa950_pct, y.laa950_pct)),
        d(a.ggo_pct, b.ggo_pct),
        after(&|x, y| d(x.ggo_pct, y.ggo_pct)),
        dopt(a.mean_hu, b.mean_hu),
        after(&|x, y| dopt(x.mean_hu, y.mean_hu)),
        dopt(a.p15_hu, b.p15_hu),
        after(&|x, y| dopt(x.p15_hu, y.p15_hu)),
        d(a.volume_ml, b.volume_ml),
    );
}

const HEAD: &str = "| series | kernel | harmonization | band SD (HU) σ ≤ 0.5 / 1 / 2 mm | gains | noise (HU) before → after | LAA-950 % | GGO % | mean / p15 (HU) | volume (mL) |\n|---|---|---|---|---|---|---|---|---|---|";
const DHEAD: &str = "| pair (sharp − soft) | Δ LAA-950 (points) | Δ GGO (points) | Δ mean (HU) | Δ p15 (HU) | Δ volume (mL) |\n|---|---|---|---|---|---|";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = match common::arg(&args, "--mode").as_deref() {
        Some("on") => HarmonizeMode::On,
        Some("off") => HarmonizeMode::Off,
        _ => HarmonizeMode::Auto,
    };
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    let load = |p: &Path| {
        ildtrack_dicom::load(p, &ildtrack_dicom::LoadOptions::default())
            .unwrap_or_else(|e| panic!("load {}: {e}", p.display()))
    };
    println!(
        "harmonize = \"{}\"; commit {}; CPU backend, {} threads\n",
        mode.name(),
        common::commit(),
        rayon::current_num_threads()
    );
    println!("{HEAD}");
    let mut results = std::collections::BTreeMap::new();
    for name in [
        "A0001-kernel-L",
        "A0001-kernel-B",
        "A0002-kernel-B70f",
        "A0002-kernel-B40f",
    ] {
        let p = data.join("lung-pet-ct-dx").join(name);
        if !p.exists() {
            println!("| {name} | absent |");
            continue;
        }
        let s = load(&p);
        let t = Instant::now();
        let a = run(&s.volume, &s.meta, &s.warnings, mode);
        let ms = t.elapsed().as_secs_f64() * 1e3;
        row(name, &a.result);
        eprintln!(
            "{name}: analyze {ms:.0} ms, harmonize {:.0} ms, quantify.harmonize {:.0} ms, tissue voxels {}",
            a.result.timings_ms.get("harmonize").copied().unwrap_or(0.0),
            a.result
                .timings_ms
                .get("quantify.harmonize")
                .copied()
                .unwrap_or(0.0),
            a.result
                .harmonization
                .as_ref()
                .map_or(0, |h| h.tissue_voxels)
        );
        results.insert(name, a.result);
    }
    println!("\n{DHEAD}");
    for (name, sharp, soft) in [
        ("A0001 L − B", "A0001-kernel-L", "A0001-kernel-B"),
        (
            "A0002 B70f − B40f",
            "A0002-kernel-B70f",
            "A0002-kernel-B40f",
        ),
    ] {
        if let (Some(a), Some(b)) = (results.get(sharp), results.get(soft)) {
            delta_row(name, a, b);
        }
    }
    if !args.iter().any(|a| a == "--no-phantom") {
        println!(
            "\nPhantom (full grid): `sharp-kernel` preset (B70f, white noise 90 HU) and its soft twin (the same volume through the phantom's soft-kernel smoothing, as its B30f series)\n"
        );
        println!("{HEAD}");
        let spec = PhantomSpec::preset("sharp-kernel").expect("preset");
        let ph = try_generate(&spec).expect("phantom");
        let twin = ildtrack_phantom::soft_kernel_twin(&ph.volume);
        let mut soft_meta = ph.meta.clone();
        soft_meta.kernel = Some("B30f".into());
        let a = run(&ph.volume, &ph.meta, &[], mode);
        let b = run(&twin, &soft_meta, &[], mode);
        row("phantom sharp-kernel", &a.result);
        row("phantom soft twin", &b.result);
        println!(
            "\ntruth: GGO {:.2} % of lung\n",
            100.0 * ph.truth.ggo_ml / (ph.truth.lung_ml[0] + ph.truth.lung_ml[1]).max(1e-9)
        );
        println!("{DHEAD}");
        delta_row("phantom sharp − soft twin", &a.result, &b.result);
    }
    if !args.iter().any(|a| a == "--no-covid") {
        println!("\nCOVID-19-NY-SBU axial slices (GE / Toshiba; one slice each)\n");
        println!("{HEAD}");
        for (name, p) in ildtrack_dicom::shared_data::ct_series(&data) {
            if !name.starts_with("covid") || !p.exists() {
                continue;
            }
            let s = load(&p);
            let a = run(&s.volume, &s.meta, &s.warnings, mode);
            row(&name, &a.result);
        }
    }
}
