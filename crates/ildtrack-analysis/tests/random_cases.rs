//! Issue 17, "no silent losses", on a few random cases (`ildtrack_phantom::eval::random_cases`;
//! the benchmark with its distributions is the `analysis_random_placements` example).
//!
//! The target is stated as is: every case with under 90 % of its lesion inside the
//! lung mask raises `segmentation-doubt`, and a healthy chest raises none. The segmentation
//! does not meet the first yet (small losses against the mediastinum, spine and diaphragm stay
//! silent: `docs/SEGMENTATION.md`), so that test is `#[ignore]`d and run with `--ignored`;
//! what runs always: a healthy chest raises no doubt, and lesions the lung surrounds that the
//! mask loses whole (drawn cases of the development seeds, which the `cavity` stage was made
//! on) are warned about.

mod common;

use common::analyze_default;
use ildtrack_analysis::Analysis;
use ildtrack_phantom::eval::{RandomCase, random_cases};
use ildtrack_phantom::{Phantom, PhantomSpec, try_generate};
use ndarray::Zip;

/// The bar for a lesion kept: at least this share of its voxels inside the mask.
const KEPT_SHARE: f64 = 0.9;
/// The seed of the suite's cases, and how many (seconds each).
const SEED: u64 = 17;
const N: usize = 10;

struct Judged {
    name: String,
    /// Share of the lesion's voxels inside the mask; `None` without lesion voxels.
    inside: Option<f64>,
    /// mL of lesion outside the mask.
    lost_ml: f64,
    doubt: bool,
    warnings: Vec<String>,
}

fn judge(case: &RandomCase) -> Judged {
    let ph: Phantom = try_generate(&case.spec).unwrap_or_else(|e| panic!("{}: {e}", case.name));
    let a: Analysis = analyze_default(&ph.volume, &ph.meta, &[]);
    let (mut all, mut hit) = (0u64, 0u64);
    Zip::from(&ph.truth.ggo)
        .and(&ph.truth.consolidation)
        .and(&a.lungs.data)
        .for_each(|&g, &c, &m| {
            all += u64::from(g || c);
            hit += u64::from((g || c) && m != 0);
        });
    Judged {
        name: case.name.clone(),
        inside: (all > 0).then(|| hit as f64 / all as f64),
        lost_ml: (all - hit) as f64 * ph.truth.voxel_ml,
        doubt: a
            .result
            .warnings
            .iter()
            .any(|w| w.code == "segmentation-doubt"),
        warnings: a
            .result
            .warnings
            .iter()
            .map(|w| format!("{}: {}", w.code, w.message))
            .collect(),
    }
}

fn describe(j: &Judged) -> String {
    format!(
        "{}: {} inside, {:.1} mL lost, {:?}",
        j.name,
        j.inside
            .map_or("–".into(), |s| format!("{:.1} %", 100.0 * s)),
        j.lost_ml,
        j.warnings
    )
}

#[test]
fn a_healthy_chest_raises_no_doubt() {
    // The healthy preset, and a healthy chest with a dependent effusion and contrast (dense
    // tissue between lung and ribs, bright heart): nothing there is lung left out.
    let mut spec = PhantomSpec::preset("healthy").expect("preset");
    let mut cases = vec![("healthy".to_string(), spec.clone())];
    spec.effusion_mm = [15.0, 15.0];
    spec.contrast = true;
    cases.push(("healthy with effusion and contrast".into(), spec));
    for (name, spec) in cases {
        let j = judge(&RandomCase {
            name,
            position: "healthy",
            shape: "none",
            spec,
        });
        assert!(!j.doubt, "{}", describe(&j));
    }
}

#[test]
fn a_lost_lesion_the_lung_surrounds_is_warned() {
    // Consolidations inside the lung (an ellipsoid in the left middle, a ball in the right
    // upper zone) and against the right dome, each 4 % or less inside the mask on the commit
    // that added the `cavity` stage: kept, or warned about.
    let mut misses = Vec::new();
    for (seed, index) in [(2026u64, 18usize), (2026, 20), (1207, 32)] {
        let case = random_cases(seed, index + 1).pop().expect("drawn case");
        let j = judge(&case);
        if j.inside.is_some_and(|s| s < KEPT_SHARE) && !j.doubt {
            misses.push(describe(&j));
        }
    }
    assert!(misses.is_empty(), "{misses:#?}");
}

#[test]
#[ignore = "issue 17's target, not met yet: small losses stay silent (docs/SEGMENTATION.md)"]
fn no_loss_is_silent() {
    let judged: Vec<Judged> = random_cases(SEED, N).iter().map(judge).collect();
    let silent: Vec<String> = judged
        .iter()
        .filter(|j| j.inside.is_some_and(|s| s < KEPT_SHARE) && !j.doubt)
        .map(describe)
        .collect();
    assert!(silent.is_empty(), "{silent:#?}");
}
