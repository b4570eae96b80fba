//! Runs `analyze` on phantom presets and prints accuracy against the truth; writes QC PNGs.
//! `cargo run --release -p ildtrack-analysis --example analysis_phantom_eval -- [PRESET ...] [--small] [--out DIR]`

use ildtrack_analysis::{AnalysisConfig, analyze};
use ildtrack_compute::CpuBackend;
use ildtrack_phantom::{PhantomSpec, try_generate};
use ildtrack_report::qc;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let small = args.iter().any(|a| a == "--small");
    let out = args
        .iter()
        .position(|a| a == "--out")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let presets: Vec<String> = args
        .iter()
        .filter(|a| !a.starts_with("--") && Some(*a) != out.as_ref())
        .cloned()
        .collect();
    let presets = if presets.is_empty() {
        vec!["ild".to_string()]
    } else {
        presets
    };
    for name in presets {
        let Some(mut spec) = PhantomSpec::preset(&name) else {
            eprintln!("unknown preset {name}");
            continue;
        };
        // PHANTOM_LESIONS: a JSON array of `LesionSpec`s that replaces the preset's lesions.
        if let Ok(j) = std::env::var("PHANTOM_LESIONS") {
            match serde_json::from_str(&j) {
                Ok(l) => spec.lesions = l,
                Err(e) => {
                    eprintln!("PHANTOM_LESIONS: {e}");
                    return;
                }
            }
        }
        if small {
            let d = spec.dims_zyx;
            let s = spec.spacing_mm;
            spec = spec.with_grid(
                [d[0] / 2, d[1] / 2, d[2] / 2],
                [s[0] * 2.0, s[1] * 2.0, s[2] * 2.0],
            );
        }
        let t = Instant::now();
        let ph = match try_generate(&spec) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("{name}: {e}");
                continue;
            }
        };
        let gen_ms = t.elapsed().as_secs_f64() * 1e3;
        let t = Instant::now();
        let config = match std::env::var("ILD_CONFIG") {
            Ok(p) => std::fs::read_to_string(p)
                .ok()
                .and_then(|t| AnalysisConfig::from_toml_str(&t).ok())
                .unwrap_or_default(),
            Err(_) => AnalysisConfig::default(),
        };
        let a = match analyze(
            &CpuBackend::new(),
            &ph.volume,
            &ph.meta,
            &[],
            &config,
            &|_, _| {},
        ) {
            Ok(a) => a,
            Err(e) => {
                eprintln!("{name}: {e}");
                continue;
            }
        };
        let ms = t.elapsed().as_secs_f64() * 1e3;
        let tr = &ph.truth;
        let mut inter = [0u64; 3];
        let mut ours = [0u64; 3];
        let mut theirs = [0u64; 3];
        let (mut cons_in, mut cons_n, mut ves_dis, mut ves_n) = (0u64, 0u64, 0u64, 0u64);
        for (((&l, &t), &c), (&cons, &ves)) in a
            .lungs
            .data
            .iter()
            .zip(tr.lungs.iter())
            .zip(a.classes.data.iter())
            .zip(tr.consolidation.iter().zip(tr.vessels.iter()))
        {
            ours[l as usize] += 1;
            theirs[t as usize] += 1;
            if l == t {
                inter[l as usize] += 1;
            }
            if cons {
                cons_n += 1;
                cons_in += u64::from(l != 0);
            }
            if ves {
                ves_n += 1;
                ves_dis += u64::from(c == 3 || c == 4);
            }
        }
        let dice = |k: usize| 2.0 * inter[k] as f64 / (ours[k] + theirs[k]).max(1) as f64;
        let r = &a.result.lungs;
        let pct = |a: f64, b: f64| {
            if b > 0.0 {
                100.0 * (a - b) / b
            } else {
                f64::NAN
            }
        };
        println!(
            "{name}: dims {:?} gen {gen_ms:.0} ms analyze {ms:.0} ms ({:?})\n  dice R {:.4} L {:.4}; lung {:.0} mL vs {:.0} ({:+.2} %); GGO {:.1} vs {:.1} mL ({:+.1} %); cons {:.1} vs {:.1} mL ({:+.1} %)\n  consolidation inside mask {:.1} %; vessel voxels counted as GGO/cons {:.2} % of {} ; vessel_ml {:.1} vs truth {:.1}",
            spec.dims_zyx,
            a.result.timings_ms,
            dice(1),
            dice(2),
            r.whole.volume_ml,
            tr.total_lung_ml(),
            pct(r.whole.volume_ml, tr.total_lung_ml()),
            r.whole.ggo_ml,
            tr.ggo_ml,
            pct(r.whole.ggo_ml, tr.ggo_ml),
            r.whole.consolidation_ml,
            tr.consolidation_ml,
            pct(r.whole.consolidation_ml, tr.consolidation_ml),
            100.0 * cons_in as f64 / cons_n.max(1) as f64,
            100.0 * ves_dis as f64 / ves_n.max(1) as f64,
            ves_n,
            r.whole.vessel_ml,
            tr.vessel_ml
        );
        for ((zn, m), tz) in r.zones.iter().iter().zip(tr.per_zone.iter()) {
            println!(
                "  {zn:13} lung {:7.1}/{:7.1} ggo {:6.1}/{:6.1} cons {:6.1}/{:6.1}",
                m.volume_ml,
                tz.lung_ml,
                m.ggo_ml,
                tz.ggo_ml,
                m.consolidation_ml,
                tz.consolidation_ml
            );
        }
        if std::env::var("QC_DEBUG").is_ok() {
            let nz = a.lungs.data.shape()[0];
            let mut fc = vec![0u64; nz];
            let mut fl = vec![0u64; nz];
            let mut ml = vec![0u64; nz];
            let (mut fc_vessel, mut fc_n) = (0u64, 0u64);
            // False consolidation by what the truth has there: outside the lungs, GGO, vessel,
            // other lung (parenchyma, bronchus wall); with the HU sum of each.
            let mut fc_kind = [(0u64, 0i64); 4];
            let mut miss_c = (0u64, 0i64);
            for ((z, y, x), &c) in a.classes.data.indexed_iter() {
                if c == 4 && !tr.consolidation[[z, y, x]] {
                    fc[z] += 1;
                    fc_vessel += u64::from(tr.vessels[[z, y, x]]);
                    fc_n += 1;
                    let k = if tr.lungs[[z, y, x]] == 0 {
                        0
                    } else if tr.ggo[[z, y, x]] {
                        1
                    } else if tr.vessels[[z, y, x]] {
                        2
                    } else {
                        3
                    };
                    fc_kind[k].0 += 1;
                    fc_kind[k].1 += i64::from(ph.volume.data[[z, y, x]]);
                } else if c != 4 && tr.consolidation[[z, y, x]] {
                    miss_c.0 += 1;
                    miss_c.1 += i64::from(ph.volume.data[[z, y, x]]);
                }
                let (l, t) = (a.lungs.data[[z, y, x]], tr.lungs[[z, y, x]]);
                if l != 0 && t == 0 {
                    fl[z] += 1;
                }
                if l == 0 && t != 0 {
                    ml[z] += 1;
                }
            }
            println!(
                "  false cons per z: {:?}",
                fc.iter()
                    .enumerate()
                    .filter(|(_, v)| **v > 50)
                    .collect::<Vec<_>>()
            );
            println!(
                "  false cons voxels {fc_n}, of which truth vessel {fc_vessel}; bronchus wall truth {:.1} mL",
                tr.bronchus_wall_ml
            );
            let mean = |p: (u64, i64)| p.1 as f64 / p.0.max(1) as f64;
            println!(
                "  false cons by truth: outside lungs {} (mean {:.0} HU), GGO {} ({:.0}), vessel {} ({:.0}), other lung {} ({:.0}); missed cons {} ({:.0})",
                fc_kind[0].0,
                mean(fc_kind[0]),
                fc_kind[1].0,
                mean(fc_kind[1]),
                fc_kind[2].0,
                mean(fc_kind[2]),
                fc_kind[3].0,
                mean(fc_kind[3]),
                miss_c.0,
                mean(miss_c)
            );
            // Components (26-connected) of the consolidation class: size, share of truth
            // consolidation, extent and PCA elongation.
            let sh = a.classes.data.shape();
            let (nz, ny, nx) = (sh[0], sh[1], sh[2]);
            let mut seen = vec![false; nz * ny * nx];
            let cls = a.classes.data.as_slice().expect("standard layout");
            let sp = ph.volume.geometry.spacing_mm;
            for start in 0..cls.len() {
                if cls[start] != 4 || seen[start] {
                    continue;
                }
                let mut stack = vec![start];
                seen[start] = true;
                let mut pts: Vec<[f64; 3]> = Vec::new();
                let (mut truth_n, mut ves_n) = (0usize, 0usize);
                while let Some(i) = stack.pop() {
                    let (z, y, x) = (i / (ny * nx), (i / nx) % ny, i % nx);
                    pts.push([z as f64 * sp[0], y as f64 * sp[1], x as f64 * sp[2]]);
                    truth_n += usize::from(tr.consolidation[[z, y, x]]);
                    ves_n += usize::from(tr.vessels[[z, y, x]]);
                    for dz in -1i64..=1 {
                        for dy in -1i64..=1 {
                            for dx in -1i64..=1 {
                                let (qz, qy, qx) = (z as i64 + dz, y as i64 + dy, x as i64 + dx);
                                if qz < 0
                                    || qy < 0
                                    || qx < 0
                                    || qz >= nz as i64
                                    || qy >= ny as i64
                                    || qx >= nx as i64
                                {
                                    continue;
                                }
                                let j = (qz as usize * ny + qy as usize) * nx + qx as usize;
                                if cls[j] == 4 && !seen[j] {
                                    seen[j] = true;
                                    stack.push(j);
                                }
                            }
                        }
                    }
                }
                if pts.len() < 30 {
                    continue;
                }
                let n = pts.len() as f64;
                let m = [0, 1, 2].map(|k| pts.iter().map(|p| p[k]).sum::<f64>() / n);
                let mut c = [[0f64; 3]; 3];
                for p in &pts {
                    for i in 0..3 {
                        for j in 0..3 {
                            c[i][j] += (p[i] - m[i]) * (p[j] - m[j]) / n;
                        }
                    }
                }
                // Largest eigenvalue by power iteration; trace gives the rest's sum.
                let mut v = [1.0, 0.7, 0.3];
                for _ in 0..50 {
                    let w = [0, 1, 2].map(|i| (0..3).map(|j| c[i][j] * v[j]).sum::<f64>());
                    let nn = w.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
                    v = w.map(|x| x / nn);
                }
                let l1 = (0..3)
                    .map(|i| (0..3).map(|j| v[i] * c[i][j] * v[j]).sum::<f64>())
                    .sum::<f64>();
                let tr_c = c[0][0] + c[1][1] + c[2][2];
                println!(
                    "    cons comp {:6} vox truth {:5.1} % vessel {:5.1} % centre zyx [{:.0} {:.0} {:.0}] mm sd1 {:.1} mm rest sd {:.1} mm",
                    pts.len(),
                    100.0 * truth_n as f64 / n,
                    100.0 * ves_n as f64 / n,
                    m[0],
                    m[1],
                    m[2],
                    l1.sqrt(),
                    ((tr_c - l1) / 2.0).max(0.0).sqrt()
                );
            }
            println!(
                "  false lung per z: {:?}",
                fl.iter()
                    .enumerate()
                    .filter(|(_, v)| **v > 40)
                    .collect::<Vec<_>>()
            );
            println!(
                "  missed lung per z: {:?}",
                ml.iter()
                    .enumerate()
                    .filter(|(_, v)| **v > 40)
                    .collect::<Vec<_>>()
            );
        }
        if let Ok(dir) = std::env::var("QC_DUMP") {
            // Raw volumes (z, y, x order, C layout) for offline analysis.
            let w = |n: &str, b: Vec<u8>| {
                let _ = std::fs::write(format!("{dir}/{name}_{n}.raw"), b);
            };
            w("classes", a.classes.data.iter().copied().collect());
            w("lungs", a.lungs.data.iter().copied().collect());
            w("truth_lungs", tr.lungs.iter().copied().collect());
            w(
                "truth_cons",
                tr.consolidation.iter().map(|&v| u8::from(v)).collect(),
            );
            w("truth_ggo", tr.ggo.iter().map(|&v| u8::from(v)).collect());
            w(
                "truth_vessels",
                tr.vessels.iter().map(|&v| u8::from(v)).collect(),
            );
            w(
                "hu",
                ph.volume
                    .data
                    .iter()
                    .flat_map(|v| v.to_le_bytes())
                    .collect(),
            );
        }
        if std::env::var("NOISE").is_ok() {
            println!(
                "  noise {:?}",
                ildtrack_analysis::noise::noise_sd_hu(&ph.volume)
            );
        }
        for w in &a.result.warnings {
            println!("  warning {w}");
        }
        if let Some(dir) = &out {
            let (zs, y) = qc::representative_slices(&a.lungs);
            for (i, z) in zs.iter().enumerate() {
                let _ = std::fs::write(
                    format!("{dir}/{name}_ax{i}.png"),
                    qc::axial_png(&ph.volume, &a.lungs, &a.classes, *z),
                );
            }
            if let Ok(zs) = std::env::var("QC_Z") {
                let tl = ph.volume.with_data(tr.lungs.clone());
                let tc = ph
                    .volume
                    .with_data(tr.consolidation.mapv(|c| if c { 4u8 } else { 0 }));
                for z in zs.split(',').filter_map(|v| v.parse::<usize>().ok()) {
                    let _ = std::fs::write(
                        format!("{dir}/{name}_truth_z{z}.png"),
                        qc::axial_png(&ph.volume, &tl, &tc, z),
                    );
                    let _ = std::fs::write(
                        format!("{dir}/{name}_z{z}.png"),
                        qc::axial_png(&ph.volume, &a.lungs, &a.classes, z),
                    );
                }
            }
            let _ = std::fs::write(
                format!("{dir}/{name}_cor.png"),
                qc::coronal_png(&ph.volume, &a.lungs, &a.classes, y),
            );
        }
    }
}
