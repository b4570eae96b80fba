//! Runs `analyze` on the real series in ../shared/data and prints the figures issue 3 asks for;
//! writes QC PNGs. `cargo run --release -p ildtrack-analysis --example analysis_real_eval -- [--out DIR] [FILTER]`

use ildtrack_analysis::{AnalysisConfig, analyze};
use ildtrack_compute::CpuBackend;
use ildtrack_report::qc;
use std::path::Path;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let out = args
        .iter()
        .position(|a| a == "--out")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let filter = args
        .iter()
        .find(|a| !a.starts_with("--") && Some(*a) != out.as_ref())
        .cloned();
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    let inputs = ildtrack_dicom::shared_data::ct_series(&data);
    for (name, path) in inputs {
        if filter.as_ref().is_some_and(|f| !name.contains(f.as_str())) {
            continue;
        }
        let t = Instant::now();
        let s = match ildtrack_dicom::load(&path, &ildtrack_dicom::LoadOptions::default()) {
            Ok(s) => s,
            Err(e) => {
                println!("{name}: load failed: {e}");
                continue;
            }
        };
        let load_ms = t.elapsed().as_secs_f64() * 1e3;
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
            &s.volume,
            &s.meta,
            &s.warnings,
            &config,
            &|_, _| {},
        ) {
            Ok(a) => a,
            Err(e) => {
                println!("{name}: analyze failed: {e}");
                continue;
            }
        };
        let ms = t.elapsed().as_secs_f64() * 1e3;
        let l = &a.result.lungs;
        let vox = |v: u8| a.lungs.data.iter().filter(|&&x| x == v).count();
        let f = |o: Option<f64>| o.map(|v| format!("{v:.1}")).unwrap_or_else(|| "-".into());
        println!(
            "{name}: dims {:?} sp {:?} load {load_ms:.0} ms analyze {ms:.0} ms | R {:.1} mL ({} px) L {:.1} mL ({} px) | MLD {} SD {} skew {} kurt {} p15 {} | LAA {:.2}% HAA {:.2}% GGO {:.2}% cons {:.2}% vessel {:.1} mL",
            a.result.series.dims_zyx,
            a.result
                .series
                .spacing_mm
                .map(|v| (v * 1000.0).round() / 1000.0),
            l.right.volume_ml,
            vox(1),
            l.left.volume_ml,
            vox(2),
            f(l.whole.mean_hu),
            f(l.whole.sd_hu),
            l.whole
                .skewness
                .map(|v| format!("{v:.2}"))
                .unwrap_or_default(),
            l.whole
                .kurtosis_excess
                .map(|v| format!("{v:.2}"))
                .unwrap_or_default(),
            f(l.whole.p15_hu),
            l.whole.laa950_pct,
            l.whole.haa_pct,
            l.whole.ggo_pct,
            l.whole.consolidation_pct,
            l.whole.vessel_ml,
        );
        let codes: Vec<&str> = a.result.warnings.iter().map(|w| w.code.as_str()).collect();
        println!("   warnings {codes:?}");
        if std::env::var("NOISE").is_ok() {
            println!(
                "   noise {:?}",
                ildtrack_analysis::noise::noise_sd_hu(&s.volume)
            );
        }
        if std::env::var("QC_DEBUG").is_ok() {
            // Consolidation voxels per slice (slices with at least 40).
            let per_z: Vec<(usize, usize)> = a
                .classes
                .data
                .outer_iter()
                .enumerate()
                .map(|(z, s)| (z, s.iter().filter(|&&c| c == 4).count()))
                .filter(|&(_, n)| n >= 40)
                .collect();
            println!("   consolidation voxels per z {per_z:?}");
        }
        if let Some(dir) = &out {
            let (zs, y) = qc::representative_slices(&a.lungs);
            for (i, z) in zs.iter().enumerate() {
                if i > 0 && a.lungs.dims_zyx()[0] == 1 {
                    break;
                }
                let _ = std::fs::write(
                    format!("{dir}/{name}_ax{i}.png"),
                    qc::axial_png(&s.volume, &a.lungs, &a.classes, *z),
                );
            }
            if let Ok(zs) = std::env::var("QC_Z") {
                for z in zs.split(',').filter_map(|v| v.parse::<usize>().ok()) {
                    if z < a.lungs.dims_zyx()[0] {
                        let _ = std::fs::write(
                            format!("{dir}/{name}_z{z}.png"),
                            qc::axial_png(&s.volume, &a.lungs, &a.classes, z),
                        );
                    }
                }
            }
            if a.lungs.dims_zyx()[0] > 1 {
                let _ = std::fs::write(
                    format!("{dir}/{name}_cor.png"),
                    qc::coronal_png(&s.volume, &a.lungs, &a.classes, y),
                );
            }
        }
    }
}
