//! Quick manual check: `cargo run -p ildtrack-dicom --example probe -- <input> [--json]`
//! prints the series table, the choice, and loads the chosen series with timings.
use std::path::PathBuf;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(input) = args.first().map(PathBuf::from) else {
        eprintln!("usage: probe <input> [--json]");
        std::process::exit(2);
    };
    let t = Instant::now();
    let scan = match ildtrack_dicom::scan(&input) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(if e.is_unusable_input() { 2 } else { 1 });
        }
    };
    let t_scan = t.elapsed();
    if args.iter().any(|a| a == "--json") {
        println!(
            "{}",
            serde_json::to_string_pretty(&scan).unwrap_or_default()
        );
    } else {
        for (i, e) in scan.series.iter().enumerate() {
            println!(
                "{}{i}: {} [{}] {:?} {:?} kernel={:?} n={} {}x{} thick={:?} spacing={:?} {} {} rejected={:?} warnings={:?}",
                if scan.chosen == Some(i) { "*" } else { " " },
                e.uid,
                e.stack,
                e.modality,
                e.description,
                e.kernel,
                e.n_slices,
                e.rows,
                e.cols,
                e.thickness_mm,
                e.spacing_mm,
                e.orientation,
                e.transfer_syntax_name,
                e.rejected_because,
                e.warnings
            );
        }
        for r in &scan.choice_reasons {
            println!("  reason: {r}");
        }
        for n in &scan.notes {
            println!("  note: {n}");
        }
    }
    let t = Instant::now();
    match ildtrack_dicom::load_scan(scan, &Default::default()) {
        Ok(s) => {
            let t_load = t.elapsed();
            let d = s.volume.data.as_slice().unwrap_or(&[]);
            let valid: Vec<i16> = d
                .iter()
                .copied()
                .filter(|&v| v != ildtrack_volume::OUTSIDE_FOV_HU)
                .collect();
            let min = valid.iter().min().copied();
            let max = valid.iter().max().copied();
            println!(
                "loaded {:?} spacing {:?} origin {:?} dir {:?} HU [{min:?}, {max:?}] scan {:.1} ms load {:.1} ms",
                s.volume.dims_zyx(),
                s.volume.geometry.spacing_mm,
                s.volume.geometry.origin_mm,
                s.volume.geometry.direction,
                t_scan.as_secs_f64() * 1e3,
                t_load.as_secs_f64() * 1e3
            );
            println!("meta {:?}", s.meta);
            for w in &s.warnings {
                println!("  warning: {w}");
            }
        }
        Err(e) => {
            eprintln!("load error: {e}");
        }
    }
}
