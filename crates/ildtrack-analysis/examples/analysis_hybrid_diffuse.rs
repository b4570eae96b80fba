//! Diffuse dependent disease inserted into the real 3-D series (issue 17 item 3). For each 3-D
//! series in ../shared/data: `analyze` on the untouched scan gives the reference lung; then,
//! per side, the most posterior and basal share (30–80 %) of that lung is replaced by a
//! gradient from ground glass (−700 HU in front to −320 HU) to consolidation (−100 HU to +40 HU
//! at the back), keeping the scan's own noise; each hybrid is analysed and judged against the
//! inserted truth. Prints (or writes) a markdown report.
//!
//! `cargo run --release -p ildtrack-analysis --example analysis_hybrid_diffuse -- [--out FILE] [--qc DIR] [FILTER]`

mod common;

use common::{arg, codes, commit, has_warning, run};
use ildtrack_volume::Volume;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

/// (share of each lung replaced, consolidation share of the replaced part).
const VARIANTS: [(f64, f64); 6] = [
    (0.3, 0.2),
    (0.3, 0.6),
    (0.5, 0.2),
    (0.5, 0.6),
    (0.8, 0.2),
    (0.8, 0.6),
];
/// Weight of "basal" (mm below) against "posterior" (mm behind) in the dependence score.
const BASAL_WEIGHT: f64 = 0.5;
const GGO_HU: (f64, f64) = (-700.0, -320.0);
const CONSOLIDATION_HU: (f64, f64) = (-100.0, 40.0);
/// Parenchyma: reference-lung voxels at or below this HU give the local noise.
const PARENCHYMA_MAX_HU: i16 = -500;
/// In-plane half window (voxels) of the local parenchyma mean.
const WINDOW: usize = 3;

/// Small deterministic generator (xorshift64*) with Box–Muller normals.
struct Rng(u64);

impl Rng {
    fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        let u1 = self.next_f64().max(1e-12);
        let u2 = self.next_f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

/// Per voxel: the deviation of parenchyma from the local parenchyma mean (in-plane window),
/// `None` where the voxel is not parenchyma or the window holds too little of it.
fn local_deviation(hu: &Volume<i16>, lungs: &Volume<u8>) -> Vec<Option<f32>> {
    let [nz, ny, nx] = hu.dims_zyx();
    let mut out = vec![None; nz * ny * nx];
    let (w, h) = (nx + 1, ny + 1);
    let mut sum = vec![0f64; w * h];
    let mut cnt = vec![0u32; w * h];
    for z in 0..nz {
        let par = |y: usize, x: usize| {
            lungs.data[[z, y, x]] != 0 && hu.data[[z, y, x]] <= PARENCHYMA_MAX_HU
        };
        for y in 0..ny {
            for x in 0..nx {
                let (s, c) = if par(y, x) {
                    (f64::from(hu.data[[z, y, x]]), 1)
                } else {
                    (0.0, 0)
                };
                let i = (y + 1) * w + x + 1;
                sum[i] = s + sum[i - 1] + sum[i - w] - sum[i - w - 1];
                cnt[i] = c + cnt[i - 1] + cnt[i - w] - cnt[i - w - 1];
            }
        }
        for y in 0..ny {
            for x in 0..nx {
                if !par(y, x) {
                    continue;
                }
                let (y0, y1) = (y.saturating_sub(WINDOW), (y + WINDOW + 1).min(ny));
                let (x0, x1) = (x.saturating_sub(WINDOW), (x + WINDOW + 1).min(nx));
                let s = sum[y1 * w + x1] - sum[y0 * w + x1] - sum[y1 * w + x0] + sum[y0 * w + x0];
                let c = cnt[y1 * w + x1] + cnt[y0 * w + x0] - cnt[y0 * w + x1] - cnt[y1 * w + x0];
                if c >= 10 {
                    out[(z * ny + y) * nx + x] =
                        Some((f64::from(hu.data[[z, y, x]]) - s / f64::from(c)) as f32);
                }
            }
        }
    }
    out
}

/// One hybrid: the volume and its truth (flat indices into the grid).
struct Hybrid {
    volume: Volume<i16>,
    region: Vec<usize>,
    /// Planned consolidation (a subset of `region`), sorted.
    consolidation: Vec<usize>,
}

/// Replaces the most dependent `share` of each reference lung by the GGO → consolidation
/// gradient (the back `cons` of it consolidation), adding the scan's own parenchyma noise.
fn insert(
    hu: &Volume<i16>,
    lungs: &Volume<u8>,
    dev: &[Option<f32>],
    sigma: f64,
    share: f64,
    cons: f64,
    seed: u64,
) -> Hybrid {
    let [nz, ny, nx] = hu.dims_zyx();
    let g = &hu.geometry;
    let mut volume = hu.clone();
    let flat = volume.data.as_slice_mut().expect("standard layout");
    let mut rng = Rng(seed | 1);
    let (mut region, mut consolidation) = (Vec::new(), Vec::new());
    for side in [1u8, 2] {
        // Dependence score: LPS y (posterior) plus basal weight × mm below (−LPS z).
        let mut scored: Vec<(f64, usize)> = Vec::new();
        for z in 0..nz {
            for y in 0..ny {
                for x in 0..nx {
                    if lungs.data[[z, y, x]] == side {
                        let p = g.index_to_lps([z as f64, y as f64, x as f64]);
                        scored.push((p[1] - BASAL_WEIGHT * p[2], (z * ny + y) * nx + x));
                    }
                }
            }
        }
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        let n = (share * scored.len() as f64).round() as usize;
        let n_cons = (cons * n as f64).round() as usize;
        for (k, &(_, i)) in scored.iter().take(n).enumerate() {
            // k = 0 is the most dependent voxel.
            let base = if k < n_cons {
                let t = 1.0 - k as f64 / n_cons.max(1) as f64; // 1 at the back
                consolidation.push(i);
                CONSOLIDATION_HU.0 + t * (CONSOLIDATION_HU.1 - CONSOLIDATION_HU.0)
            } else {
                let t = (k - n_cons) as f64 / (n - n_cons).max(1) as f64; // 1 at the front
                GGO_HU.1 + t * (GGO_HU.0 - GGO_HU.1)
            };
            let noise = match dev[i] {
                Some(d) => f64::from(d).clamp(-4.0 * sigma, 4.0 * sigma),
                None => sigma * rng.normal(),
            };
            flat[i] = (base + noise)
                .round()
                .clamp(f64::from(i16::MIN), f64::from(i16::MAX)) as i16;
            region.push(i);
        }
    }
    consolidation.sort_unstable();
    Hybrid {
        volume,
        region,
        consolidation,
    }
}

/// What one hybrid measured.
struct Case {
    series: String,
    share: f64,
    cons: f64,
    inside: f64,
    cons_inside: f64,
    lung: f64,
    /// Our consolidation in the inserted region / planned consolidation − 1.
    cons_err: f64,
    doubt: bool,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let out = arg(&args, "--out");
    let qc_dir = arg(&args, "--qc");
    let filter = args
        .iter()
        .find(|a| !a.starts_with("--") && Some(*a) != out.as_ref() && Some(*a) != qc_dir.as_ref())
        .cloned();
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    let mut doc = String::new();
    let _ = writeln!(
        doc,
        "# Segmentation with diffuse disease inserted into the real 3-D series\n\n\
         Generated by `cargo run --release -p ildtrack-analysis --example \
         analysis_hybrid_diffuse -- --out docs/SEGMENTATION-hybrid.md{}` at commit {} ({} \
         threads). Issue 17 item 3: lesion voxels inside the mask median ≥ 98 %, consolidation \
         volume within 10 %, lung volume within 2 %; every case with < 90 % of the lesion \
         inside must raise `segmentation-doubt`.\n\n\
         Method: `analyze` on the untouched series gives the reference lung (labels 1 right, \
         2 left). Per side, the voxels of the reference lung are ranked by dependence, LPS y \
         (mm posterior) + {BASAL_WEIGHT} × mm below (−LPS z), read from the series geometry; \
         the top *share* of them is replaced: the back *consolidation share* of that region by \
         consolidation ({} → {} HU towards the back), the rest by ground glass ({} HU at the \
         front → {} HU). The scan's own noise is kept: a replaced parenchyma voxel (≤ \
         {PARENCHYMA_MAX_HU} HU) adds its deviation from the mean parenchyma of its \
         {}×{} in-plane window (clamped to ±4 σ); other voxels (vessels, airway walls) add \
         Gaussian noise of that σ (1.4826 × the median absolute parenchyma deviation). The \
         truth: the whole replaced region is lung; its planned consolidation part. The reference \
         lung is our own mask of the untouched scan, so lung % is the change against it, not \
         an error against a drawn truth; the four 3-D series in the data are all thick-slice \
         (5 mm and 8 mm). `--qc DIR` writes axial and coronal QC pictures of every hybrid.\n\n\
         Columns: inside % = share of the replaced region inside our mask; consolidation inside \
         % = the same for the planned consolidation; lung % = our lung volume / the untouched \
         scan's − 1; mask outside reference = our mask's volume outside the untouched scan's \
         lung mask (leaks; the lung % nets them against losses); consolidation % = our consolidation (class 4) inside the replaced region / \
         planned consolidation − 1; Δ whole % = (our whole-lung consolidation − the untouched \
         scan's) / planned − 1; HU-eligible % = our consolidation in the region / region voxels \
         whose final HU is in [−300, 100) − 1 (removes what noise pushes across the \
         thresholds). Judged figures: inside, lung %, consolidation %.\n",
        filter.as_ref().map(|f| format!(" {f}")).unwrap_or_default(),
        commit(),
        rayon::current_num_threads(),
        CONSOLIDATION_HU.0,
        CONSOLIDATION_HU.1,
        GGO_HU.0,
        GGO_HU.1,
        2 * WINDOW + 1,
        2 * WINDOW + 1,
    );
    let _ = writeln!(
        doc,
        "## Untouched series\n\n| series | dims (z, y, x) | spacing mm | lung mL | consolidation mL | \
         parenchyma σ HU | noise SD HU | warnings | s |\n|---|---|---|---|---|---|---|---|---|"
    );
    let mut table = String::from(
        "| series | share % | consolidation share % | region mL | planned consolidation mL | \
         inside % | consolidation inside % | lung % | mask outside reference mL | our consolidation mL | consolidation % | \
         Δ whole % | HU-eligible % | warnings | s |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    let mut cases: Vec<Case> = Vec::new();
    let started = Instant::now();
    for (name, path) in ildtrack_dicom::shared_data::ct_series(&data) {
        if filter.as_ref().is_some_and(|f| !name.contains(f.as_str())) {
            continue;
        }
        let s = match ildtrack_dicom::load(&path, &ildtrack_dicom::LoadOptions::default()) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("{name}: load failed: {e}");
                continue;
            }
        };
        let dims = s.volume.dims_zyx();
        if dims[0] < 2 {
            continue;
        }
        let t0 = Instant::now();
        let base = run(&s.volume, &s.meta, &s.warnings);
        let base_secs = t0.elapsed().as_secs_f64();
        let voxel_ml = s.volume.geometry.voxel_volume_ml();
        let dev = local_deviation(&s.volume, &base.lungs);
        let mut absdev: Vec<f32> = dev.iter().flatten().map(|d| d.abs()).collect();
        let mid = absdev.len() / 2;
        let sigma = if absdev.is_empty() {
            20.0
        } else {
            f64::from(*absdev.select_nth_unstable_by(mid, f32::total_cmp).1) * 1.4826
        };
        drop(absdev);
        let bw = &base.result.lungs.whole;
        let _ = writeln!(
            doc,
            "| {name} | {dims:?} | {:?} | {:.1} | {:.1} | {sigma:.1} | {} | {} | {base_secs:.1} |",
            s.volume
                .geometry
                .spacing_mm
                .map(|v| (v * 1000.0).round() / 1000.0),
            bw.volume_ml,
            bw.consolidation_ml,
            ildtrack_analysis::noise::noise_sd_hu(&s.volume)
                .map_or("–".into(), |v| format!("{v:.1}")),
            codes(&base),
        );
        eprintln!(
            "{name}: untouched {:.1} mL, σ {sigma:.1}, {base_secs:.1} s",
            bw.volume_ml
        );
        for (vi, &(share, cons)) in VARIANTS.iter().enumerate() {
            let t = Instant::now();
            let h = insert(
                &s.volume,
                &base.lungs,
                &dev,
                sigma,
                share,
                cons,
                0x1d7 + vi as u64,
            );
            let a = run(&h.volume, &s.meta, &s.warnings);
            let secs = t.elapsed().as_secs_f64();
            let mask = a.lungs.data.as_slice().expect("standard layout");
            let class = a.classes.data.as_slice().expect("standard layout");
            let hv = h.volume.data.as_slice().expect("standard layout");
            let inside = h.region.iter().filter(|&&i| mask[i] != 0).count();
            let cons_inside = h.consolidation.iter().filter(|&&i| mask[i] != 0).count();
            let ours_cons = h.region.iter().filter(|&&i| class[i] == 4).count();
            let eligible = h
                .region
                .iter()
                .filter(|&&i| (-300..100).contains(&hv[i]))
                .count();
            let reference = base.lungs.data.as_slice().expect("standard layout");
            let added = mask
                .iter()
                .zip(reference)
                .filter(|&(&m, &r)| m != 0 && r == 0)
                .count();
            let planned_ml = h.consolidation.len() as f64 * voxel_ml;
            let aw = &a.result.lungs.whole;
            let c = Case {
                series: name.clone(),
                share,
                cons,
                inside: inside as f64 / h.region.len().max(1) as f64,
                cons_inside: cons_inside as f64 / h.consolidation.len().max(1) as f64,
                lung: aw.volume_ml / bw.volume_ml - 1.0,
                cons_err: ours_cons as f64 / h.consolidation.len().max(1) as f64 - 1.0,
                doubt: has_warning(&a, "segmentation-doubt"),
            };
            let _ = writeln!(
                table,
                "| {name} | {:.0} | {:.0} | {:.1} | {planned_ml:.1} | {:.1} | {:.1} | {:+.2} | \
                 {:.1} | {:.1} | {:+.1} | {:+.1} | {:+.1} | {} | {secs:.1} |",
                100.0 * share,
                100.0 * cons,
                h.region.len() as f64 * voxel_ml,
                100.0 * c.inside,
                100.0 * c.cons_inside,
                100.0 * c.lung,
                added as f64 * voxel_ml,
                ours_cons as f64 * voxel_ml,
                100.0 * c.cons_err,
                100.0 * ((aw.consolidation_ml - bw.consolidation_ml) / planned_ml - 1.0),
                100.0 * (ours_cons as f64 / eligible.max(1) as f64 - 1.0),
                codes(&a),
            );
            eprintln!(
                "{name} {:.0}/{:.0}: inside {:.1} %, lung {:+.2} %, consolidation {:+.1} %, {secs:.1} s (total {:.0} s)",
                100.0 * share,
                100.0 * cons,
                100.0 * c.inside,
                100.0 * c.lung,
                100.0 * c.cons_err,
                started.elapsed().as_secs_f64()
            );
            if let Some(dir) = &qc_dir {
                let (zs, _) = ildtrack_report::qc::representative_slices(&base.lungs);
                let tag = format!("{dir}/{name}_{:.0}_{:.0}", 100.0 * share, 100.0 * cons);
                for (k, &z) in zs.iter().enumerate() {
                    let _ = std::fs::write(
                        format!("{tag}_ax{k}.png"),
                        ildtrack_report::qc::axial_png(&h.volume, &a.lungs, &a.classes, z),
                    );
                }
                let _ = std::fs::write(
                    format!("{tag}_cor.png"),
                    ildtrack_report::qc::coronal_png(
                        &h.volume,
                        &a.lungs,
                        &a.classes,
                        dims[1] * 3 / 5,
                    ),
                );
            }
            cases.push(c);
        }
    }
    let _ = writeln!(doc, "\n## Hybrids\n\n{table}");
    let _ = writeln!(doc, "## Summary\n\n{}", summary(&cases));
    match out {
        Some(p) => ildtrack_fs::write_atomic(Path::new(&p), doc.as_bytes()).expect("write"),
        None => print!("{doc}"),
    }
}

fn summary(cases: &[Case]) -> String {
    let mut ins: Vec<f64> = cases.iter().map(|c| c.inside).collect();
    ins.sort_by(f64::total_cmp);
    let median = |v: &[f64]| {
        if v.is_empty() {
            f64::NAN
        } else if v.len() % 2 == 1 {
            v[v.len() / 2]
        } else {
            0.5 * (v[v.len() / 2 - 1] + v[v.len() / 2])
        }
    };
    let mut cins: Vec<f64> = cases.iter().map(|c| c.cons_inside).collect();
    cins.sort_by(f64::total_cmp);
    let n = cases.len();
    let cons_ok = cases.iter().filter(|c| c.cons_err.abs() <= 0.10).count();
    let lung_ok = cases.iter().filter(|c| c.lung.abs() <= 0.02).count();
    let label = |c: &Case| format!("{} {:.0}/{:.0}", c.series, 100.0 * c.share, 100.0 * c.cons);
    let list = |pick: &dyn Fn(&Case) -> bool, show: &dyn Fn(&Case) -> String| {
        let v: Vec<String> = cases.iter().filter(|c| pick(c)).map(show).collect();
        if v.is_empty() {
            "none".to_string()
        } else {
            v.join("; ")
        }
    };
    let warned = |c: &Case| if c.doubt { "warned" } else { "not warned" };
    let below90 = cases.iter().filter(|c| c.inside < 0.9).count();
    let silent = cases.iter().filter(|c| c.inside < 0.9 && !c.doubt).count();
    format!(
        "{n} hybrids (series × share/consolidation-share variants, written `series share/cons`).\n\n\
         - Lesion inside the mask: median {:.1} % (target ≥ 98 %: {}), worst {:.1} %.\n\
         - Consolidation inside the mask: median {:.1} %, worst {:.1} %.\n\
         - Consolidation volume within 10 %: {cons_ok} of {n}.\n\
         - Lung volume within 2 %: {lung_ok} of {n}.\n\
         - Cases with < 90 % inside: {below90}; without `segmentation-doubt` (silent losses): {silent}.\n\
         - Any `segmentation-doubt` raised: {} of {n}.\n\n\
         Misses, by series and variant:\n\n\
         - Inside < 98 %: {}.\n\
         - Consolidation off by more than 10 %: {}.\n\
         - Lung off by more than 2 %: {}.\n\
         - < 90 % inside: {}.",
        100.0 * median(&ins),
        if median(&ins) >= 0.98 {
            "met"
        } else {
            "missed"
        },
        100.0 * ins.first().copied().unwrap_or(f64::NAN),
        100.0 * median(&cins),
        100.0 * cins.first().copied().unwrap_or(f64::NAN),
        cases.iter().filter(|c| c.doubt).count(),
        list(&|c| c.inside < 0.98, &|c| format!(
            "{} {:.1} % ({})",
            label(c),
            100.0 * c.inside,
            warned(c)
        )),
        list(&|c| c.cons_err.abs() > 0.10, &|c| format!(
            "{} {:+.1} % ({})",
            label(c),
            100.0 * c.cons_err,
            warned(c)
        )),
        list(&|c| c.lung.abs() > 0.02, &|c| format!(
            "{} {:+.2} % ({})",
            label(c),
            100.0 * c.lung,
            warned(c)
        )),
        list(&|c| c.inside < 0.9, &|c| format!(
            "{} {:.1} % ({})",
            label(c),
            100.0 * c.inside,
            warned(c)
        )),
    )
}
