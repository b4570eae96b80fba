//! Timing check: `cargo run --release -p ildtrack-dicom --example loadtime -- <folder> [repeats]`
//! loads the folder repeatedly and prints the best wall time next to a plain read of the same
//! bytes (the `cat` floor). The criterion bench lives in `benches/`.
use std::path::PathBuf;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(dir) = args.first().map(PathBuf::from) else {
        eprintln!("usage: loadtime <folder> [repeats]");
        std::process::exit(2);
    };
    let n: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(5);
    let mut files: Vec<PathBuf> = walk(&dir);
    files.sort();
    let (mut best_read, mut best_load, mut best_scan) = (f64::MAX, f64::MAX, f64::MAX);
    let mut bytes = 0usize;
    for _ in 0..n {
        let t = Instant::now();
        bytes = files
            .iter()
            .map(|f| std::fs::read(f).map(|b| b.len()).unwrap_or(0))
            .sum();
        best_read = best_read.min(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let sc = ildtrack_dicom::scan(&dir);
        best_scan = best_scan.min(t.elapsed().as_secs_f64());
        let t = Instant::now();
        match sc.and_then(|sc| ildtrack_dicom::load_scan(sc, &Default::default())) {
            Ok(s) => std::hint::black_box(s.volume.len()),
            Err(e) => {
                eprintln!("error: {e}");
                std::process::exit(1);
            }
        };
        best_load = best_load.min(t.elapsed().as_secs_f64());
    }
    println!(
        "{} files, {:.1} MB: read {:.1} ms, scan {:.1} ms, assemble+decode {:.1} ms, total {:.1} ms = {:.2}× the read floor",
        files.len(),
        bytes as f64 / 1e6,
        best_read * 1e3,
        best_scan * 1e3,
        best_load * 1e3,
        (best_scan + best_load) * 1e3,
        (best_scan + best_load) / best_read
    );
}

fn walk(d: &std::path::Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Ok(rd) = std::fs::read_dir(d) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                v.extend(walk(&p));
            } else {
                v.push(p);
            }
        }
    }
    v
}
