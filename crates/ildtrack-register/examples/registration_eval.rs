//! Registration against known deformations (issue 18's validation): every multi-slice real
//! series in ../shared/data and a phantom, each deformed by breathing-like motion (diaphragm
//! 10–30 mm craniocaudal, chest wall 5–10 mm anteroposterior) plus a smooth random field,
//! density changed as mass conservation says, and a new ground-glass lesion in the follow-up.
//! The follow-up's lungs are segmented again (as they would be), then registered onto the
//! original. Target registration error over the baseline lung voxels, folding, Dice, inverse
//! consistency, identical-pair error, time.
//!
//!   cargo run --release -p ildtrack-register --example registration_eval -- [--seeds 1,2] [--out FILE] [FILTER]

use ildtrack_analysis::{AnalysisConfig, analyze};
use ildtrack_compute::CpuBackend;
use ildtrack_register::{Frame, RegisterConfig, Registration, register};
use ildtrack_volume::Volume;
use ndarray::Array3;
use rand::{Rng, SeedableRng, rngs::StdRng};
use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

/// A smooth deformation `v` (mm, in the baseline frame): the follow-up shows at `y` what the
/// baseline has at `y + v(y)`.
struct Deformation {
    diaphragm_mm: f64,
    z_apex: f64,
    z_base: f64,
    wall_mm: f64,
    y_centre: f64,
    y_half: f64,
    bumps: Vec<([f64; 3], f64, [f64; 3])>,
}

impl Deformation {
    fn v(&self, p: [f64; 3]) -> [f64; 3] {
        let t = ((p[0] - self.z_apex) / (self.z_base - self.z_apex)).clamp(0.0, 1.0);
        let mut v = [
            self.diaphragm_mm * t * t,
            self.wall_mm * ((p[1] - self.y_centre) / self.y_half).clamp(-1.5, 1.5),
            0.0,
        ];
        for (c, s, a) in &self.bumps {
            let d2: f64 = (0..3).map(|k| (p[k] - c[k]).powi(2)).sum();
            let g = (-0.5 * d2 / (s * s)).exp();
            for k in 0..3 {
                v[k] += a[k] * g;
            }
        }
        v
    }
    /// Where the follow-up shows baseline position `p`: `q` with `q + v(q) = p`.
    fn inverse(&self, p: [f64; 3]) -> [f64; 3] {
        let mut q = p;
        for _ in 0..40 {
            let v = self.v(q);
            q = [0, 1, 2].map(|k| p[k] - v[k]);
        }
        q
    }
    fn jacobian(&self, p: [f64; 3]) -> f64 {
        let h = 0.5;
        let mut m = [[0f64; 3]; 3];
        for k in 0..3 {
            let mut a = p;
            let mut b = p;
            a[k] -= h;
            b[k] += h;
            let (va, vb) = (self.v(a), self.v(b));
            for c in 0..3 {
                m[c][k] = (vb[c] - va[c]) / (2.0 * h) + if c == k { 1.0 } else { 0.0 };
            }
        }
        m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
            - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
            + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
    }
}

fn lung_box(mask: &Array3<u8>, f: &Frame) -> ([f64; 3], [f64; 3]) {
    let mut lo = [f64::MAX; 3];
    let mut hi = [f64::MIN; 3];
    for ((z, y, x), &v) in mask.indexed_iter() {
        if v != 0 {
            let p = f.to_mm([z as f64, y as f64, x as f64]);
            for k in 0..3 {
                lo[k] = lo[k].min(p[k]);
                hi[k] = hi[k].max(p[k]);
            }
        }
    }
    (lo, hi)
}

fn random_deformation(rng: &mut StdRng, lo: [f64; 3], hi: [f64; 3]) -> Deformation {
    // Which end is the base: the frame's z grows towards the head (LPS +z), so the base is low z.
    let (z_apex, z_base) = (hi[0], lo[0]);
    let sign = if rng.random_bool(0.5) { 1.0 } else { -1.0 };
    let bumps = (0..4)
        .map(|_| {
            let c = [0, 1, 2].map(|k| rng.random_range(lo[k]..=hi[k].max(lo[k] + 1.0)));
            let s = rng.random_range(30.0..60.0);
            let a = [0, 1, 2].map(|_| rng.random_range(-5.0..5.0));
            (c, s, a)
        })
        .collect();
    Deformation {
        diaphragm_mm: sign * rng.random_range(10.0..30.0),
        z_apex,
        z_base,
        wall_mm: sign * rng.random_range(5.0..10.0),
        y_centre: 0.5 * (lo[1] + hi[1]),
        y_half: 0.5 * (hi[1] - lo[1]).max(1.0),
        bumps,
    }
}

fn deform(
    hu: &Volume<i16>,
    f: &Frame,
    d: &Deformation,
    lesion: Option<([f64; 3], f64)>,
) -> Volume<i16> {
    let mut out = hu.data.clone();
    let src: Array3<f32> = hu.data.mapv(|v| v as f32);
    ndarray::Zip::indexed(&mut out).par_for_each(|(z, y, x), o| {
        let p = f.to_mm([z as f64, y as f64, x as f64]);
        let v = d.v(p);
        let q = [0, 1, 2].map(|k| p[k] + v[k]);
        let i = f.to_index(q);
        let mut h = ildtrack_register::frame::trilinear(&src, i).unwrap_or(-1024.0) as f64;
        // Mass conservation in lung-like tissue: denser where it was compressed.
        if h < -200.0 {
            h = -1000.0 + (h + 1000.0) * d.jacobian(p);
        }
        if let Some((c, r)) = lesion {
            let d2: f64 = (0..3).map(|k| (p[k] - c[k]).powi(2)).sum();
            if d2 < r * r && h < -600.0 {
                h = -500.0 + (h + 850.0) * 0.3;
            }
        }
        *o = h.round().clamp(-1024.0, 3071.0) as i16;
    });
    hu.with_data(out)
}

struct Row {
    name: String,
    seed: u64,
    max_motion: f64,
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

fn lung_points(mask: &Array3<u8>, f: &Frame, step: usize) -> Vec<[f64; 3]> {
    mask.indexed_iter()
        .filter(|((z, y, x), v)| **v != 0 && z % step == 0 && y % step == 0 && x % step == 0)
        .map(|((z, y, x), _)| f.to_mm([z as f64, y as f64, x as f64]))
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut seeds = vec![1u64, 2];
    let mut out_file = None;
    let mut filter = None;
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
        let spec = ildtrack_phantom::PhantomSpec {
            dims_zyx: [120, 192, 192],
            spacing_mm: [2.5, 1.8, 1.8],
            ..ildtrack_phantom::PhantomSpec::preset("ild").unwrap_or_default()
        };
        let ph = ildtrack_phantom::generate(&spec);
        cases.push(("phantom ild 192x192x120".into(), ph.volume, ph.meta));
    }
    let cfg = RegisterConfig::default();
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
        match register(hu, &mask, hu, &mask, &cfg) {
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
            let d = random_deformation(&mut rng, lo, hi);
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
            for p in &pts {
                let q_true = d.inverse(*p);
                motion.push(dist(q_true, *p));
                tre.push(dist(r.map_mm(*p), q_true));
            }
            // Inverse consistency: the backward registration undoes the forward one.
            let ic_mean = match register(&moving, &mmask, hu, &mask, &cfg) {
                Ok(b) => {
                    let e: Vec<f64> = pts
                        .iter()
                        .map(|p| dist(b.map_mm(r.map_mm(*p)), *p))
                        .collect();
                    e.iter().sum::<f64>() / e.len().max(1) as f64
                }
                Err(_) => f64::NAN,
            };
            let n = tre.len().max(1) as f64;
            let row = Row {
                name: name.clone(),
                seed,
                max_motion: motion.iter().copied().fold(0.0, f64::max),
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
        "| case | seed | motion mean / max mm | TRE mean mm | TRE p95 mm | folding % | lung Dice | inverse consistency mm | time s |\n|---|---|---|---|---|---|---|---|---|"
    );
    for r in &rows {
        let _ = writeln!(
            md,
            "| {} | {} | {:.1} / {:.1} | {:.2} | {:.2} | {:.3} | {:.3} | {:.2} | {:.1} |",
            r.name,
            r.seed,
            r.mean_motion,
            r.max_motion,
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
    if let Some(p) = out_file {
        if let Err(e) = std::fs::write(&p, md) {
            eprintln!("{p}: {e}");
        }
    }
}

fn dist(a: [f64; 3], b: [f64; 3]) -> f64 {
    (0..3).map(|k| (a[k] - b[k]).powi(2)).sum::<f64>().sqrt()
}
