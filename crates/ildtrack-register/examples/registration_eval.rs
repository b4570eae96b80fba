//! Registration against known deformations (issue 18's validation): every multi-slice real
//! series in ../shared/data and a phantom, each deformed by breathing-like motion (diaphragm
//! 10–30 mm craniocaudal, chest wall 5–10 mm anteroposterior) plus a smooth random field,
//! density changed as mass conservation says, and a new ground-glass lesion in the follow-up.
//! The follow-up's lungs are segmented again (as they would be), then registered onto the
//! original. Target registration error over the baseline lung voxels, folding, Dice, inverse
//! consistency, identical-pair error, time.
//!
//!   cargo run --release -p ildtrack-register --example registration_eval -- [--seeds 1,2] [--turn] [--out FILE] [FILTER]
//!
//! `--turn`: the follow-up's patient also lies turned (`synthetic::random_turn`: rolled 8–18°,
//! tilted up to 6° about the other axes).
//!
//! `RUST_LOG=ildtrack_register=debug` prints the registration's stage times (stderr).

use ildtrack_analysis::{AnalysisConfig, analyze};
use ildtrack_compute::CpuBackend;
use ildtrack_register::synthetic::{
    deform, dist, lung_box, lung_points, random_deformation, random_turn,
};
use ildtrack_register::{Frame, RegisterConfig, Registration, register};
use ildtrack_volume::Volume;
use rand::{Rng, SeedableRng, rngs::StdRng};
use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

struct Row {
    name: String,
    seed: u64,
    max_motion: f64,
    unscanned_pct: f64,
    mean_motion: f64,
    tre_mean: f64,
    tre_p95: f64,
    fold: f64,
    dice: f64,
    ic_mean: f64,
    secs: f64,
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn lungs(hu: &Volume<i16>, meta: &ildtrack_volume::ScanMeta) -> Option<Volume<u8>> {
    analyze(
        &CpuBackend::new(),
        hu,
        meta,
        &[],
        &AnalysisConfig::default(),
        &|_, _| {},
    )
    .ok()
    .map(|a| a.lungs)
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut seeds = vec![1u64, 2];
    let mut out_file = None;
    let mut filter = None;
    let mut turn = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--seeds" => {
                seeds = it
                    .next()
                    .map(|s| s.split(',').filter_map(|x| x.parse().ok()).collect())
                    .unwrap_or(seeds)
            }
            "--out" => out_file = it.next().cloned(),
            "--turn" => turn = true,
            f => filter = Some(f.to_string()),
        }
    }
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    let mut cases: Vec<(String, Volume<i16>, ildtrack_volume::ScanMeta)> = Vec::new();
    for (name, path) in ildtrack_dicom::shared_data::ct_series(&data) {
        if filter.as_ref().is_some_and(|f| !name.contains(f.as_str())) {
            continue;
        }
        match ildtrack_dicom::load(&path, &ildtrack_dicom::LoadOptions::default()) {
            Ok(s) if s.volume.dims_zyx()[0] >= 20 => cases.push((name, s.volume, s.meta)),
            Ok(_) => {}
            Err(e) => eprintln!("{name}: {e}"),
        }
    }
    if filter
        .as_ref()
        .is_none_or(|f| "phantom".contains(f.as_str()))
    {
        // REG_PHANTOM=512 times a full-size pair (512x512x300, 0.7 mm pixels, 1 mm slices).
        let full = std::env::var("REG_PHANTOM").is_ok_and(|v| v == "512");
        let (dims_zyx, spacing_mm) = if full {
            ([300, 512, 512], [1.0, 0.7, 0.7])
        } else {
            ([120, 192, 192], [2.5, 1.8, 1.8])
        };
        let spec = ildtrack_phantom::PhantomSpec {
            dims_zyx,
            spacing_mm,
            ..ildtrack_phantom::PhantomSpec::preset("ild").unwrap_or_default()
        };
        let ph = ildtrack_phantom::generate(&spec);
        let name = format!(
            "phantom ild {}x{}x{}",
            dims_zyx[2], dims_zyx[1], dims_zyx[0]
        );
        cases.push((name, ph.volume, ph.meta));
    }
    // REG_CONFIG='{"iterations": 100}' tries other settings.
    let cfg: RegisterConfig = std::env::var("REG_CONFIG")
        .ok()
        .and_then(|t| {
            serde_json::from_str(&t)
                .map_err(|e| eprintln!("REG_CONFIG: {e}"))
                .ok()
        })
        .unwrap_or_default();
    let quick = std::env::var("REG_QUICK").is_ok();
    let mut rows = Vec::new();
    let mut identity = Vec::new();
    for (name, hu, meta) in &cases {
        let Some(mask) = lungs(hu, meta) else {
            eprintln!("{name}: no lungs");
            continue;
        };
        let Ok(f) = Frame::of(hu.dims_zyx(), &hu.geometry) else {
            continue;
        };
        // Identical pair.
        let t = Instant::now();
        match register(hu, &mask, hu, &mask, &cfg)
            .ok()
            .filter(|_| !quick)
            .ok_or("skipped")
        {
            Ok(r) => {
                let pts = lung_points(&mask.data, &f, 2);
                let e: Vec<f64> = pts.iter().map(|p| dist(r.map_mm(*p), *p)).collect();
                let mean = e.iter().sum::<f64>() / e.len().max(1) as f64;
                identity.push((name.clone(), mean, t.elapsed().as_secs_f64()));
                println!("{name}: identical pair, mean error {mean:.3} mm");
            }
            Err(e) => eprintln!("{name}: {e}"),
        }
        let (lo, hi) = lung_box(&mask.data, &f);
        for &seed in &seeds {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut d = random_deformation(&mut rng, lo, hi);
            if turn {
                d.turns = random_turn(&mut rng, lo, hi).to_vec();
            }
            let pts = lung_points(&mask.data, &f, 2);
            let c = pts[rng.random_range(0..pts.len())];
            let moving = deform(hu, &f, &d, Some((c, 15.0)));
            let Some(mmask) = lungs(&moving, meta) else {
                eprintln!("{name} seed {seed}: follow-up lungs not found");
                continue;
            };
            let t = Instant::now();
            let r: Registration = match register(hu, &mask, &moving, &mmask, &cfg) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("{name} seed {seed}: {e}");
                    continue;
                }
            };
            let secs = t.elapsed().as_secs_f64();
            let mut tre = Vec::with_capacity(pts.len());
            let mut motion = Vec::with_capacity(pts.len());
            let dims = hu.dims_zyx();
            let scanned = |q: [f64; 3]| {
                let i = f.to_index(q);
                (0..3).all(|k| i[k] >= 0.0 && i[k] <= (dims[k] - 1) as f64)
            };
            let n_all = pts.len();
            // A baseline point whose counterpart the follow-up did not scan has no answer.
            let pts: Vec<[f64; 3]> = pts.into_iter().filter(|p| scanned(d.inverse(*p))).collect();
            let unscanned = n_all - pts.len();
            for p in &pts {
                let q_true = d.inverse(*p);
                motion.push(dist(q_true, *p));
                tre.push(dist(r.map_mm(*p), q_true));
            }
            // Inverse consistency: the backward registration undoes the forward one.
            let ic_mean = match register(&moving, &mmask, hu, &mask, &cfg)
                .ok()
                .filter(|_| !quick)
                .ok_or(())
            {
                Ok(b) => {
                    let e: Vec<f64> = pts
                        .iter()
                        .map(|p| dist(b.map_mm(r.map_mm(*p)), *p))
                        .collect();
                    e.iter().sum::<f64>() / e.len().max(1) as f64
                }
                Err(()) => f64::NAN,
            };
            if quick {
                println!(
                    "  left out (counterpart not scanned): {unscanned} of {n_all} points; diaphragm {:.1} mm wall {:.1} mm; dims {:?} spacing {:?}",
                    d.diaphragm_mm, d.wall_mm, dims, hu.geometry.spacing_mm
                );
                for (lo_m, hi_m) in [(0.0, 5.0), (5.0, 10.0), (10.0, 20.0), (20.0, 99.0)] {
                    let sel: Vec<f64> = tre
                        .iter()
                        .zip(&motion)
                        .filter(|(_, m)| **m >= lo_m && **m < hi_m)
                        .map(|(t, _)| *t)
                        .collect();
                    let mut s2 = sel.clone();
                    println!(
                        "  motion {lo_m}-{hi_m} mm: n {} TRE mean {:.2} p95 {:.2}",
                        sel.len(),
                        sel.iter().sum::<f64>() / sel.len().max(1) as f64,
                        percentile(&mut s2, 0.95)
                    );
                }
            }
            let n = tre.len().max(1) as f64;
            let row = Row {
                name: name.clone(),
                seed,
                max_motion: motion.iter().copied().fold(0.0, f64::max),
                unscanned_pct: 100.0 * unscanned as f64 / n_all.max(1) as f64,
                mean_motion: motion.iter().sum::<f64>() / n,
                tre_mean: tre.iter().sum::<f64>() / n,
                tre_p95: percentile(&mut tre, 0.95),
                fold: r.quality.folding_pct,
                dice: r.quality.lung_dice,
                ic_mean,
                secs,
            };
            println!(
                "{name} seed {seed}: motion mean {:.1} max {:.1} mm | TRE mean {:.2} p95 {:.2} mm | folding {:.3} % | Dice {:.3} | IC {:.2} mm | {:.1} s | similarity {:.4} -> {:.4}",
                row.mean_motion,
                row.max_motion,
                row.tre_mean,
                row.tre_p95,
                row.fold,
                row.dice,
                row.ic_mean,
                row.secs,
                r.quality.similarity_before,
                r.quality.similarity_after
            );
            rows.push(row);
        }
    }
    let mut md = String::new();
    let _ = writeln!(
        md,
        "| case | seed | motion mean / max mm | not scanned in follow-up % | TRE mean mm | TRE p95 mm | folding % | lung Dice | inverse consistency mm | time s |\n|---|---|---|---|---|---|---|---|---|---|"
    );
    for r in &rows {
        let _ = writeln!(
            md,
            "| {} | {} | {:.1} / {:.1} | {:.1} | {:.2} | {:.2} | {:.3} | {:.3} | {:.2} | {:.1} |",
            r.name,
            r.seed,
            r.mean_motion,
            r.max_motion,
            r.unscanned_pct,
            r.tre_mean,
            r.tre_p95,
            r.fold,
            r.dice,
            r.ic_mean,
            r.secs
        );
    }
    let _ = writeln!(
        md,
        "\n| case | identical pair: mean error mm | time s |\n|---|---|---|"
    );
    for (n, e, s) in &identity {
        let _ = writeln!(md, "| {n} | {e:.3} | {s:.1} |");
    }
    println!("\n{md}");
    if let Some(p) = out_file
        && let Err(e) = std::fs::write(&p, md)
    {
        eprintln!("{p}: {e}");
    }
}
