//! `analyze` against the phantom's truth and against real series in ../shared/data.
//!
//! Phantoms run on half the default grid (256×256×150 at 1.56×1.56×2 mm) to keep the suite
//! fast; `examples/analysis_phantom_eval.rs` runs the full-size grid. The figures each case
//! reaches today are in docs/SEGMENTATION.md (`examples/analysis_segmentation_eval.rs`); the
//! tests assert the targets below, not those figures.

mod common;

use common::{analyze_default, analyze_path, analyze_with};
use ildtrack_analysis::model::VisitResult;
use ildtrack_analysis::{Analysis, AnalysisConfig};
use ildtrack_phantom::eval::{consolidation_placements, dice, half_grid, inside};
use ildtrack_phantom::{LesionSpec, Phantom, PhantomSpec, Side, Zone, try_generate};
use ildtrack_report::qc;
use ildtrack_volume::Volume;
use std::path::{Path, PathBuf};

// ---- targets -----------------------------------------------------------------------------

/// Share of a large consolidation's voxels (radius 50 mm and more) inside the lung mask: what
/// lies outside is neither measured nor shown, and issue 3 allows at most a twentieth of it.
const TARGET_INSIDE: f64 = 0.95;
/// Dice of each lung (right, left) against the truth: a mask one voxel too wide all round a
/// half-grid lung scores about 0.965, so this asks for less than a voxel of disagreement.
const TARGET_DICE: f64 = 0.97;
/// Dice per side between the mask of a scan whose image cuts the body (and the lungs) and the
/// untouched scan's mask cut the same way: the cut costs at most the lung tissue within the skin
/// band of the image edge.
const TARGET_CUT_DICE: f64 = 0.95;
/// Relative error of the total lung volume (the bound): lung volume is compared
/// between visits, and a change larger than this must be the patient's, not the mask's.
const TARGET_LUNG_ERR: f64 = 0.02;
/// Relative error of the lung volume of a coarse version of a real series (2–4.5 mm pixels,
/// 5–10 mm slices) against the series itself (issue 17 item 5): a coarse reconstruction of the
/// same acquisition must not read as a change of the lungs.
const TARGET_COARSE_LUNG_ERR: f64 = 0.03;
/// Dice per side of that coarse version's mask against the series' mask read at its voxel
/// centres (issue 17 item 5).
const TARGET_COARSE_DICE: f64 = 0.95;
/// Relative error of the consolidation volume of a large lesion (or a preset's disease): a
/// change between visits larger than a tenth must be the lesion's, not the segmentation's.
const TARGET_CONS_ERR: f64 = 0.10;
/// Relative error of the GGO volume on thin (≤ 2 mm) slices, for the same reason as
/// [`TARGET_CONS_ERR`].
const TARGET_GGO_ERR: f64 = 0.10;
/// Relative error of the GGO volume on 10 mm slices: a slab that thick averages small vessels
/// with the lung around them into GGO-range values, so half as much again as on thin slices.
const TARGET_THICK_GGO_ERR: f64 = 0.15;
/// Share of a small subpleural lesion (8-12 mm radius hemisphere, half grid) inside the mask.
/// Its flat face lies on the pleura, and one voxel layer on that face is 1.5 × voxel / radius
/// of its volume (0.2 at 12 mm on 1.56 mm pixels); the pleura falls anywhere within its
/// boundary voxel, so about half that layer (0.1) may be lost without a fault: 0.85.
const TARGET_SMALL_INSIDE: f64 = 0.85;
/// Relative error of a small lesion's consolidation volume (8-12 mm radius, half grid). A
/// one-voxel shell is about 3 × voxel / radius of its volume (0.39 at 12 mm, 0.59 at 8 mm on
/// 1.56 mm pixels), and its partial-volume voxels fall either side of the consolidation
/// threshold, so the volume is good to about half a shell at 12 mm: 0.25 (8 mm held to it too).
const TARGET_SMALL_CONS_ERR: f64 = 0.25;
/// Relative error of each zone's lung volume: a zone border one 2 mm slice off at each end of
/// a zone about 90 mm high (0.045), on top of the lung volume's own error: 0.06.
const TARGET_ZONE_ERR: f64 = 0.06;
/// Share of the truth's vessel voxels classed GGO or consolidation on the healthy phantom:
/// vessels and their partial-volume rims have GGO- and consolidation-range HU and belong to
/// the vessel class; a fiftieth is left for the boundary voxels of the thinnest vessels.
const TARGET_VESSEL_AS_DISEASE: f64 = 0.02;
/// Consolidation (mL) on the healthy phantom: under half the smallest lesion the tests
/// measure (an 8 mm subpleural lens, about 1 mL), so a false lesion cannot pass for a real one.
const TARGET_HEALTHY_CONS_ML: f64 = 0.5;
/// Relative error of each lung's pixel count on the LIDC slice against lungmask R231's mask
/// (a different method on the same slice: their borders differ by about a pixel all round).
const TARGET_LUNGMASK_PX_ERR: f64 = 0.05;
/// Relative difference of the lung volume between the two kernels of one acquisition (same
/// raw data: any difference is the segmentation's response to noise).
const TARGET_KERNEL_LUNG_ERR: f64 = 0.01;
/// Difference (percentage points of the lung) of the GGO share between the two kernels of one
/// acquisition, once the sharp kernel is denoised.
const TARGET_KERNEL_GGO_POINTS: f64 = 2.0;

/// Cases that miss a target today, and which target ("inside", "consolidation"). For these
/// the tests assert what the tool must do instead: warn (`segmentation-doubt` for a large
/// lesion, `thick-slices` for 10 mm slices), so that no miss is silent. Their figures are in
/// docs/SEGMENTATION.md; every other case is held to the target itself.
const KNOWN_MISSES: &[(&str, &str)] = &[
    ("left-lower-70-posterior", "inside"),
    ("left-middle-70-anterior", "consolidation"),
    ("thick-slices", "inside"),
    ("thick-slices", "consolidation"),
];

// ---- helpers -----------------------------------------------------------------------------

fn phantom(name: &str) -> Phantom {
    let spec = PhantomSpec::preset(name).unwrap_or_else(|| panic!("no preset {name}"));
    try_generate(&half_grid(spec)).unwrap_or_else(|e| panic!("phantom {name}: {e}"))
}

fn run(ph: &Phantom) -> Analysis {
    run_with(ph, &AnalysisConfig::default())
}

fn run_with(ph: &Phantom, cfg: &AnalysisConfig) -> Analysis {
    analyze_with(&ph.volume, &ph.meta, &[], cfg)
}

/// The default phantom (half grid) with these lesions, analysed.
fn with_lesions(lesions: Vec<LesionSpec>) -> (Phantom, Analysis) {
    let mut spec = half_grid(PhantomSpec::default());
    spec.lesions = lesions;
    let ph = try_generate(&spec).unwrap_or_else(|e| panic!("phantom: {e}"));
    let a = run(&ph);
    (ph, a)
}

/// The default phantom (half grid) with one subpleural consolidation hemisphere, analysed.
fn one_subpleural_lesion(
    side: Side,
    zone: Zone,
    radius_mm: f64,
    angle_deg: f64,
) -> (Phantom, Analysis) {
    with_lesions(vec![
        LesionSpec::consolidation(side, zone, radius_mm).at_angle(angle_deg),
    ])
}

/// One of the ten large consolidation placements of `eval::consolidation_placements`, by name,
/// on the default phantom (half grid), analysed; and the lung label of its side.
fn placement(name: &str) -> (Phantom, Analysis, u8) {
    let (_, l) = consolidation_placements()
        .into_iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no placement {name}"));
    let label = if l.side == Side::Right { 1 } else { 2 };
    let (ph, a) = with_lesions(vec![l]);
    (ph, a, label)
}

/// Our consolidation (mL) and the phantom's truth.
fn consolidation_ml(ph: &Phantom, a: &Analysis) -> (f64, f64) {
    (
        a.result.lungs.whole.consolidation_ml,
        ph.truth.consolidation_ml,
    )
}

/// Share of the phantom's consolidation voxels inside our lung mask.
fn inside_share(ph: &Phantom, a: &Analysis) -> f64 {
    let (i, n) = inside(&ph.truth.consolidation, &a.lungs.data);
    i as f64 / n.max(1) as f64
}

/// At least `min_share` of the phantom's consolidation voxels lie inside our lung mask.
fn assert_inside(ph: &Phantom, a: &Analysis, min_share: f64, what: &str) {
    let s = inside_share(ph, a);
    assert!(
        s >= min_share,
        "{what}: consolidation inside mask {:.1} % (target {:.0} %)",
        100.0 * s,
        100.0 * min_share
    );
}

/// Dice of our lung with label `label` (1 right, 2 left) against the phantom's.
fn lung_dice(a: &Analysis, ph: &Phantom, label: u8) -> f64 {
    dice(&a.lungs.data, &ph.truth.lungs, label)
}

/// Dice of our right and left lung against the phantom's.
fn dice_both(a: &Analysis, ph: &Phantom) -> (f64, f64) {
    (lung_dice(a, ph, 1), lung_dice(a, ph, 2))
}

fn rel_err(ours: f64, truth: f64) -> f64 {
    (ours - truth).abs() / truth
}

fn has_warning(r: &VisitResult, code: &str) -> bool {
    r.warnings.iter().any(|w| w.code == code)
}

/// A `segmentation-doubt` warning whose message `says` what is expected.
fn has_doubt(r: &VisitResult, says: impl Fn(&str) -> bool) -> bool {
    r.warnings
        .iter()
        .any(|w| w.code == "segmentation-doubt" && says(&w.message))
}

/// `case` meets `target` (`ok`), or it is a known miss of it and the tool `warned`.
fn meets_or_warns(case: &str, target: &str, ok: bool, warned: bool) -> bool {
    ok || (warned && KNOWN_MISSES.contains(&(case, target)))
}

fn split_warned(r: &VisitResult) -> bool {
    has_doubt(r, |m| m.contains("split between"))
}

// ---- phantoms ----------------------------------------------------------------------------

#[test]
fn ild_phantom_matches_truth() {
    // The disease the tool is for (subpleural GGO with consolidation cores in every zone):
    // lungs, GGO, consolidation, zones and the subpleural/core split against the truth.
    let ph = phantom("ild");
    let a = run(&ph);
    let t = &ph.truth;
    let l = &a.result.lungs;
    let (dr, dl) = dice_both(&a, &ph);
    assert!(
        dr >= TARGET_DICE && dl >= TARGET_DICE,
        "dice right {dr:.4} left {dl:.4}"
    );
    let vol_err = rel_err(l.whole.volume_ml, t.total_lung_ml());
    assert!(
        vol_err <= TARGET_LUNG_ERR,
        "lung volume {:.0} vs {:.0} mL",
        l.whole.volume_ml,
        t.total_lung_ml()
    );
    let ggo_err = rel_err(l.whole.ggo_ml, t.ggo_ml);
    assert!(
        ggo_err <= TARGET_GGO_ERR,
        "GGO {:.1} vs {:.1} mL",
        l.whole.ggo_ml,
        t.ggo_ml
    );
    // The preset's consolidation is small (cores inside GGO patches), so chest wall taken in
    // at a subpleural core or a vessel junction counted as consolidation shows here first.
    let cons_err = rel_err(l.whole.consolidation_ml, t.consolidation_ml);
    assert!(
        cons_err <= TARGET_CONS_ERR,
        "consolidation {:.1} vs {:.1} mL",
        l.whole.consolidation_ml,
        t.consolidation_ml
    );
    assert_inside(&ph, &a, TARGET_INSIDE, "ild");
    // Zones: each zone's volume close to the truth's, disease where the truth has it.
    for ((name, m), tz) in l.zones.iter().iter().zip(t.per_zone.iter()) {
        assert!(
            rel_err(m.volume_ml, tz.lung_ml) <= TARGET_ZONE_ERR,
            "{name}: {:.0} vs {:.0} mL",
            m.volume_ml,
            tz.lung_ml
        );
        assert_eq!(
            m.ggo_ml > 1.0,
            tz.ggo_ml > 1.0,
            "{name}: GGO {:.1} vs {:.1} mL",
            m.ggo_ml,
            tz.ggo_ml
        );
    }
    // Subpleural disease: the ILD lesions are subpleural.
    assert!(l.subpleural.affected_ml > l.core.affected_ml);
    assert!(l.subpleural.volume_ml > 0.0 && l.core.volume_ml > 0.0);
    assert!((l.subpleural.volume_ml + l.core.volume_ml - l.whole.volume_ml).abs() < 1e-6);
    assert!((l.left.volume_ml + l.right.volume_ml - l.whole.volume_ml).abs() < 1e-6);
}

#[test]
fn vessels_are_not_counted_as_disease() {
    // Vessels and their partial-volume rims are GGO-range and consolidation-range: they must
    // be classed as vessels, or every healthy lung shows disease. Junctions of arteries just
    // thinner than the vessel opening survive it and must still not count as consolidation.
    let ph = phantom("healthy");
    let a = run(&ph);
    let t = &ph.truth;
    let (mut n, mut disease) = (0u64, 0u64);
    for (&v, &c) in t.vessels.iter().zip(a.classes.data.iter()) {
        if v {
            n += 1;
            disease += u64::from(c == 3 || c == 4);
        }
    }
    assert!(n > 1000);
    assert!(
        (disease as f64) < TARGET_VESSEL_AS_DISEASE * n as f64,
        "{disease} of {n} vessel voxels counted as GGO/consolidation"
    );
    let w = &a.result.lungs.whole;
    assert!(
        w.consolidation_pct < 0.2,
        "healthy consolidation {:.2} %",
        w.consolidation_pct
    );
    assert!(
        w.consolidation_ml < TARGET_HEALTHY_CONS_ML,
        "healthy consolidation {:.2} mL",
        w.consolidation_ml
    );
    // Vessels are found at all (not all left as normal lung).
    assert!(
        w.vessel_ml > 0.5 * t.vessel_ml,
        "vessel {:.0} vs truth {:.0} mL",
        w.vessel_ml,
        t.vessel_ml
    );
}

#[test]
fn perihilar_consolidation_is_not_a_vessel_junction() {
    // A 12 mm consolidation ball beside the right hilum, among the thick vessels: it is thicker
    // than any junction of them, so it must stay consolidation and not be opened away as a
    // vessel junction. (8 mm balls there are taken for junctions: a known limit.)
    let (ph, a) = with_lesions(vec![
        LesionSpec::consolidation(Side::Right, Zone::Middle, 12.0)
            .at_angle(300.0)
            .core(),
    ]);
    let (c, t) = consolidation_ml(&ph, &a);
    assert!(
        rel_err(c, t) <= TARGET_SMALL_CONS_ERR,
        "consolidation {c:.1} vs {t:.1} mL"
    );
}

#[test]
fn posterior_subpleural_consolidation_stays_inside() {
    // Posterior (dependent) subpleural consolidation, the commonest place of ILD: the body
    // wall behind it is thick paravertebral muscle, so judged by depth from the skin it looks
    // nearer the mediastinum and must not be cut out of the lung.
    for (side, zone) in [(Side::Right, Zone::Middle), (Side::Left, Zone::Lower)] {
        let (ph, a) = one_subpleural_lesion(side, zone, 12.0, 0.0);
        assert_inside(&ph, &a, TARGET_SMALL_INSIDE, &format!("{side:?} {zone:?}"));
        let (c, t) = consolidation_ml(&ph, &a);
        assert!(
            rel_err(c, t) <= TARGET_SMALL_CONS_ERR,
            "{side:?} {zone:?}: consolidation {c:.1} vs {t:.1} mL"
        );
    }
}

#[test]
fn thin_subpleural_consolidation_is_not_vessel() {
    // A subpleural lens thinner than the vessel ball's diameter (an 8 mm hemisphere) cannot
    // hold the in-lung vessel opening's ball; it must not be classed as vessel (0 mL of
    // consolidation) wherever it lies around the lung.
    for angle in [0.0, 90.0, 135.0] {
        let (ph, a) = one_subpleural_lesion(Side::Right, Zone::Middle, 8.0, angle);
        let (c, t) = consolidation_ml(&ph, &a);
        assert!(
            rel_err(c, t) <= TARGET_SMALL_CONS_ERR,
            "angle {angle}: consolidation {c:.2} vs {t:.2} mL"
        );
    }
}

#[test]
fn lateral_subpleural_consolidation_is_not_overcounted() {
    // Beside a lateral lesion the chest wall curves: a mask that reaches into the wall there
    // counts the wall as consolidation. The lesion must be inside and its volume not inflated.
    let (ph, a) = one_subpleural_lesion(Side::Right, Zone::Middle, 12.0, 90.0);
    assert_inside(&ph, &a, TARGET_SMALL_INSIDE, "12 mm lateral");
    let (c, t) = consolidation_ml(&ph, &a);
    assert!(
        rel_err(c, t) <= TARGET_SMALL_CONS_ERR,
        "consolidation {c:.2} vs {t:.2} mL"
    );
}

#[test]
fn sharp_kernel_noise_is_not_ground_glass() {
    // 90 HU white noise on 1.56 mm pixels: speckle must not count as GGO, and noise above
    // `denoise_noise_hu` is measured, recorded, denoised for the classes and warned about
    // (`noisy-scan`). Denoising must bring GGO nearer the truth than the raw HU.
    let ph = phantom("sharp-kernel");
    let a = run(&ph);
    let (g, t) = (a.result.lungs.whole.ggo_ml, ph.truth.ggo_ml);
    assert!(rel_err(g, t) <= TARGET_GGO_ERR, "GGO {g:.1} vs {t:.1} mL");
    assert!(has_warning(&a.result, "noisy-scan"));
    // The noise estimate finds the phantom's 90 HU.
    let n = a.result.series.noise_sd_hu.unwrap_or(0.0);
    assert!((75.0..100.0).contains(&n), "noise {n:.1} HU");
    let mut raw_cfg = AnalysisConfig::default();
    raw_cfg.quantification.denoise_sigma_mm = 0.0;
    let raw = run_with(&ph, &raw_cfg);
    let gr = raw.result.lungs.whole.ggo_ml;
    assert!(!has_warning(&raw.result, "noisy-scan"));
    // Consolidation on the scan's own grid (nothing averages the noise): its brightest pixels
    // lie over +150 HU, and pinholes of them left out of the mask would cut the lesion apart
    // for the vessel opening.
    let (c, ct) = consolidation_ml(&ph, &a);
    assert!(
        rel_err(c, ct) <= TARGET_CONS_ERR,
        "consolidation {c:.1} vs {ct:.1} mL"
    );
    assert_inside(&ph, &a, TARGET_INSIDE, "sharp-kernel");
    assert!(
        rel_err(gr, t) > rel_err(g, t),
        "raw {gr:.1}, denoised {g:.1}, truth {t:.1} mL"
    );
    // The default phantom's noise (about 20 HU) is measured and not warned about.
    let healthy = run(&phantom("healthy"));
    let quiet = healthy.result.series.noise_sd_hu.unwrap_or(0.0);
    assert!(
        (15.0..28.0).contains(&quiet),
        "default phantom noise {quiet:.1} HU"
    );
    assert!(!has_warning(&healthy.result, "noisy-scan"));
}

#[test]
fn sharp_kernel_noise_does_not_take_consolidation_over_the_edge() {
    // Full size (0.78 mm pixels, 90 HU noise): much of the 20-40 HU consolidation lies above
    // +100 HU pixel by pixel and must not count as "vessel / dense"; and the vessel rim must
    // not take the ground glass around every vessel crossing a GGO patch.
    let spec = PhantomSpec::preset("sharp-kernel").expect("preset");
    let ph = try_generate(&spec).expect("phantom");
    let a = run(&ph);
    let (c, t) = consolidation_ml(&ph, &a);
    assert!(
        rel_err(c, t) <= TARGET_CONS_ERR,
        "consolidation {c:.1} vs {t:.1} mL"
    );
    let (g, gt) = (a.result.lungs.whole.ggo_ml, ph.truth.ggo_ml);
    assert!(rel_err(g, gt) <= TARGET_GGO_ERR, "GGO {g:.1} vs {gt:.1} mL");
}

#[test]
fn honeycombing_stays_in_the_lung() {
    // Fibrotic honeycombing (clustered 2.5-4 mm air cysts in -50 HU walls, radius 60 mm,
    // posterior-lateral right base): no cyst is a lung candidate by itself and the walls are
    // too dense for the crazy-paving rule, so only the dense-region rule (the pleura outlined
    // from the slices above) keeps it in the lung. The right lung must lose little more than
    // on the healthy phantom, and clearly less than without that rule. (A single slice has no
    // slices above: see the notes of issue 3.)
    let missed_right = |ph: &Phantom, a: &Analysis| -> f64 {
        let n = ph
            .truth
            .lungs
            .iter()
            .zip(a.lungs.data.iter())
            .filter(|&(&t, &o)| t == 1 && o == 0)
            .count();
        n as f64 * ph.volume.geometry.voxel_volume_ml()
    };
    let healthy = phantom("healthy");
    let base = missed_right(&healthy, &run(&healthy));
    let (ph, a) = with_lesions(vec![LesionSpec::honeycomb(Side::Right, Zone::Lower, 60.0)]);
    let m = missed_right(&ph, &a);
    let mut cfg = AnalysisConfig::default();
    cfg.segmentation.include_dense_regions = false;
    let m2 = missed_right(&ph, &run_with(&ph, &cfg));
    // 25 mL is about a twentieth of the honeycombed region; the rule must save 10 mL or more.
    assert!(
        m <= base + 25.0 && m2 > m + 10.0,
        "missed right: healthy {base:.1} mL, honeycomb {m:.1} mL, without the rule {m2:.1} mL"
    );
    let d = lung_dice(&a, &ph, 1);
    assert!(d >= TARGET_DICE, "right Dice {d:.4}");
}

#[test]
fn large_subpleural_consolidation_stays_inside() {
    // Issue 3: a consolidation of a third of a lung against the chest wall. The chest-wall
    // rule alone cuts it between wall and mediastinum; the second outline must take it back
    // into the lung, and the cut must be warned about.
    let ph = phantom("large-consolidation");
    let a = run(&ph);
    assert_inside(&ph, &a, TARGET_INSIDE, "large-consolidation");
    let (c, ct) = consolidation_ml(&ph, &a);
    assert!(
        rel_err(c, ct) <= TARGET_CONS_ERR,
        "consolidation {c:.0} vs {ct:.0} mL"
    );
    let (dr, dl) = dice_both(&a, &ph);
    assert!(
        dr >= TARGET_DICE && dl >= TARGET_DICE,
        "dice right {dr:.4} left {dl:.4}"
    );
    // ... and it says so: the rule split the lesion between chest wall and mediastinum.
    assert!(split_warned(&a.result), "{:?}", a.result.warnings);
    assert!(!split_warned(&run(&phantom("ild")).result));
}

#[test]
fn large_posterior_consolidation_is_not_lost_silently() {
    // A posterior consolidation of radius 70 mm (the dependent pattern of many ILDs), with
    // consolidated lung above and below it, so no hull of the neighbouring slices covers it.
    // It must be warned about and taken in by the second outline, and that outline must not
    // move the borders with the heart and the dome far from the lesion.
    let (ph, a, _) = placement("right-middle-70-posterior");
    assert!(
        has_doubt(&a.result, |m| m.contains("right lung")),
        "{:?}",
        a.result.warnings
    );
    assert_inside(&ph, &a, TARGET_INSIDE, "posterior 70 mm");
    let (c, ct) = consolidation_ml(&ph, &a);
    assert!(
        rel_err(c, ct) <= TARGET_CONS_ERR,
        "consolidation {c:.0} vs {ct:.0} mL"
    );
    let (dr, dl) = dice_both(&a, &ph);
    let (v, t) = (a.result.lungs.whole.volume_ml, ph.truth.total_lung_ml());
    assert!(
        dr >= TARGET_DICE && dl >= TARGET_DICE && rel_err(v, t) <= TARGET_LUNG_ERR,
        "dice right {dr:.4} left {dl:.4}, lung {v:.0} vs {t:.0} mL"
    );
}

#[test]
fn large_basal_consolidation_beside_the_heart_is_measured() {
    // Left lower 80 mm, anterolateral, against the heart and the dome: the second outline must
    // take the lesion in without letting in the diaphragm under the dome or the heart's border,
    // which would inflate both the lung and the consolidation.
    let (ph, a, label) = placement("left-lower-80-anterolateral");
    assert_inside(&ph, &a, TARGET_INSIDE, "left lower 80 mm");
    let d = lung_dice(&a, &ph, label);
    let (v, t) = (a.result.lungs.whole.volume_ml, ph.truth.total_lung_ml());
    let (c, ct) = consolidation_ml(&ph, &a);
    assert!(
        d >= TARGET_DICE && rel_err(v, t) <= TARGET_LUNG_ERR && rel_err(c, ct) <= TARGET_CONS_ERR,
        "left Dice {d:.4}, lung {v:.0} vs {t:.0} mL, consolidation {c:.0} vs {ct:.0} mL"
    );
}

#[test]
fn large_consolidations_elsewhere_are_warned_and_mostly_kept() {
    // The other placements of a large subpleural consolidation (lateral and posterior bases,
    // left posterior, left anterior against the heart, right upper reaching the apex): each
    // must be warned about (none lost silently) and taken into the mask, and measured, without
    // the lung growing into the chest wall, the heart or the dome. A known miss
    // (`KNOWN_MISSES`) is held to its warning instead.
    let mut misses = Vec::new();
    for name in [
        "right-lower-70-lateral",
        "left-lower-60-lateral",
        "right-lower-60-posterior",
        "left-middle-60-posterior",
        "left-middle-70-anterior",
        "right-upper-60-posterolateral",
        "left-lower-70-posterior",
    ] {
        let (ph, a, label) = placement(name);
        let s = inside_share(&ph, &a);
        let d = lung_dice(&a, &ph, label);
        let (v, t) = (a.result.lungs.whole.volume_ml, ph.truth.total_lung_ml());
        let (c, ct) = consolidation_ml(&ph, &a);
        let warned = has_warning(&a.result, "segmentation-doubt");
        let ok = warned
            && meets_or_warns(name, "inside", s >= TARGET_INSIDE, warned)
            && meets_or_warns(
                name,
                "consolidation",
                rel_err(c, ct) <= TARGET_CONS_ERR,
                warned,
            )
            && d >= TARGET_DICE
            && rel_err(v, t) <= TARGET_LUNG_ERR;
        if !ok {
            misses.push(format!(
                "{name}: warned {warned}, {:.1} % inside, Dice {d:.4}, lung {:+.2} %, \
                 consolidation {:+.1} %",
                100.0 * s,
                100.0 * (v / t - 1.0),
                100.0 * (c / ct - 1.0)
            ));
        }
    }
    assert!(misses.is_empty(), "{misses:#?}");
}

#[test]
fn subcutaneous_emphysema_does_not_open_the_chest() {
    // Gas streaks in the anterior-lateral subcutaneous fat leave under 8 mm of tissue between
    // gas and lung in some slices; the body's opening (which cuts the table off) must not open
    // the chest wall there and take the lungs of those slices for outside air.
    let ph = phantom("subcutaneous-emphysema");
    let a = run(&ph);
    let (dr, dl) = dice_both(&a, &ph);
    assert!(
        dr >= TARGET_DICE && dl >= TARGET_DICE,
        "dice right {dr:.4} left {dl:.4}"
    );
    assert!(
        !a.result
            .warnings
            .iter()
            .any(|w| w.message.contains("vanish"))
    );
    // Full size: whatever is still lost must be said.
    let spec = PhantomSpec::preset("subcutaneous-emphysema").expect("preset");
    let ph = try_generate(&spec).expect("phantom");
    let a = run(&ph);
    let lost = (1..=2u8).any(|k| lung_dice(&a, &ph, k) < TARGET_DICE);
    let warned = has_doubt(&a.result, |m| m.contains("vanish"));
    assert!(
        !lost || warned,
        "lung lost without a warning: {:?}",
        a.result.warnings
    );
    let (v, t) = (a.result.lungs.whole.volume_ml, ph.truth.total_lung_ml());
    assert!(rel_err(v, t) <= TARGET_LUNG_ERR, "lung {v:.0} mL vs {t:.0}");
}

#[test]
fn collapsed_lung_is_reported() {
    // A collapsed right lung: the missing lung must be warned about, and the left found whole.
    let ph = phantom("collapsed-right");
    let a = run(&ph);
    assert!(
        has_warning(&a.result, "segmentation-doubt"),
        "{:?}",
        a.result.warnings
    );
    assert!(a.result.lungs.right.volume_ml < 0.05 * a.result.lungs.left.volume_ml);
    let dl = lung_dice(&a, &ph, 2);
    assert!(dl >= TARGET_DICE, "left Dice {dl:.4}");
}

#[test]
fn touching_lungs_are_split() {
    // Lungs touching in front of and behind the mediastinum: the split must follow the lungs
    // (each side's core on its own side, voxels assigned through the lung, not in a straight
    // line), or one lung takes the other's paravertebral base. Full size too: the half grid
    // can hide a wrong split.
    for full in [false, true] {
        let spec = PhantomSpec::preset("lungs-touching").expect("preset");
        let ph = try_generate(&if full { spec } else { half_grid(spec) }).expect("phantom");
        let a = run(&ph);
        let (dr, dl) = dice_both(&a, &ph);
        assert!(
            dr >= TARGET_DICE && dl >= TARGET_DICE,
            "full size {full}: dice right {dr:.4} left {dl:.4}"
        );
    }
}

#[test]
fn thick_slices_and_off_centre_patients() {
    // Thick slices (10 mm on the half grid) and a patient off the table's centre must be
    // segmented and measured as well as the default; thick slices are warned about, and a
    // known miss on them (`KNOWN_MISSES`) is held to that warning.
    for name in ["thick-slices", "off-centre"] {
        let ph = phantom(name);
        let a = run(&ph);
        let (dr, dl) = dice_both(&a, &ph);
        assert!(
            dr >= TARGET_DICE && dl >= TARGET_DICE,
            "{name}: dice right {dr:.4} left {dl:.4}"
        );
        let warned = has_warning(&a.result, "thick-slices");
        let s = inside_share(&ph, &a);
        assert!(
            meets_or_warns(name, "inside", s >= TARGET_INSIDE, warned),
            "{name}: consolidation inside mask {:.2} %",
            100.0 * s
        );
        let (c, ct) = consolidation_ml(&ph, &a);
        assert!(
            meets_or_warns(
                name,
                "consolidation",
                rel_err(c, ct) <= TARGET_CONS_ERR,
                warned
            ),
            "{name}: consolidation {c:.1} vs {ct:.1} mL"
        );
        if name == "thick-slices" {
            assert!(warned);
            // Small vessels smeared through a thick slab are GGO-range streaks without a dense
            // core; they must not count as GGO.
            let (g, t) = (a.result.lungs.whole.ggo_ml, ph.truth.ggo_ml);
            assert!(
                rel_err(g, t) <= TARGET_THICK_GGO_ERR,
                "{name}: GGO {g:.1} vs {t:.1} mL"
            );
        }
    }
}

#[test]
fn gas_under_the_dome_of_10_mm_slices_is_not_lung() {
    // 10 mm slices are thicker than the diaphragm, so the stomach's gas touches the left lung
    // base in the slice above and joins its 3-D component; it must not be taken for lung.
    let ph = phantom("thick-slices");
    let a = run(&ph);
    let (dr, dl) = dice_both(&a, &ph);
    assert!(
        dr >= TARGET_DICE && dl >= TARGET_DICE,
        "dice right {dr:.4} left {dl:.4}"
    );
    let (v, t) = (a.result.lungs.whole.volume_ml, ph.truth.total_lung_ml());
    assert!(rel_err(v, t) <= TARGET_LUNG_ERR, "lung {v:.0} vs {t:.0} mL");
}

#[test]
fn a_single_slice_is_analysed_in_2d() {
    // A single slice (a 2-D export) has no neighbours to outline from: it must be analysed in
    // 2-D, warned about, and its lungs found to the same target.
    let ph = phantom("ild");
    let z = ph.truth.lung_z_extent[0]
        .map(|[lo, hi]| (lo + hi) / 2)
        .unwrap_or(40);
    let slice = ph
        .volume
        .data
        .slice(ndarray::s![z..z + 1, .., ..])
        .to_owned();
    let vol = Volume::new(slice, ph.volume.geometry);
    let truth = ph
        .truth
        .lungs
        .slice(ndarray::s![z..z + 1, .., ..])
        .to_owned();
    let a = analyze_default(&vol, &ph.meta, &[]);
    assert!(has_warning(&a.result, "single-slice"));
    let (dr, dl) = (
        dice(&a.lungs.data, &truth, 1),
        dice(&a.lungs.data, &truth, 2),
    );
    assert!(
        dr >= TARGET_DICE && dl >= TARGET_DICE,
        "dice right {dr:.4} left {dl:.4}"
    );
}

#[test]
fn an_age_the_anatomy_contradicts_is_unknown() {
    // De-identified data: a birth date equal to the study date makes a newborn of an adult. No
    // pediatric warning or preset may follow from it, and the result says the age was set aside.
    let ph = try_generate(&PhantomSpec::small()).unwrap_or_else(|e| panic!("{e}"));
    let cfg = AnalysisConfig {
        age_preset: ildtrack_analysis::AgePreset::Auto,
        ..AnalysisConfig::default()
    };
    for (age, believed) in [(0.0, false), (4.0, false), (14.0, true)] {
        let mut meta = ph.meta.clone();
        meta.patient_age_years = Some(age);
        let a = analyze_with(&ph.volume, &meta, &[], &cfg);
        let r = &a.result;
        assert_eq!(has_warning(r, "pediatric-patient"), believed, "age {age}");
        assert_eq!(has_warning(r, "age-implausible"), !believed, "age {age}");
        assert_eq!(
            r.series.patient_age_years,
            believed.then_some(age),
            "age {age}"
        );
        // The auto preset would lower the LAA threshold for a believed child under 13 only.
        assert_eq!(r.thresholds.laa_hu, -950, "age {age}");
    }
}

#[test]
fn result_serialises_and_qc_pngs_have_true_aspect() {
    let ph = try_generate(&PhantomSpec::small()).unwrap_or_else(|e| panic!("{e}"));
    let mut meta = ph.meta.clone();
    // A teenager: the phantom's adult-sized lungs are plausible at 14 (see the age test below).
    meta.patient_age_years = Some(14.0);
    meta.contrast_agent = Some("IOPAMIDOL".into());
    let a = analyze_default(&ph.volume, &meta, &[]);
    let r = &a.result;
    assert!(has_warning(r, "pediatric-patient") && has_warning(r, "contrast-enhanced"));
    assert_eq!(r.backend, "cpu");
    assert!(r.timings_ms.contains_key("segment") && r.timings_ms.contains_key("quantify"));
    let h = r.histogram.as_ref().map(|h| h.total()).unwrap_or(0);
    assert_eq!(h, r.lungs.whole.voxel_count);
    // A healthy phantom on 2.5 mm pixels: vessel caps at the pleura are not subpleural lenses.
    let c = r.lungs.whole.consolidation_ml;
    assert!(c < 0.1, "consolidation {c:.2} mL on a healthy phantom");
    let json = serde_json::to_string(r).unwrap_or_default();
    let back: VisitResult = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}"));
    // serde_json's default float parsing may differ in the last bit: compare what matters.
    assert_eq!(back.lungs.whole.voxel_count, r.lungs.whole.voxel_count);
    assert!((back.lungs.whole.volume_ml - r.lungs.whole.volume_ml).abs() < 1e-9);
    assert_eq!(back.warnings, r.warnings);
    assert_eq!(back.histogram, r.histogram);
    let (zs, y) = qc::representative_slices(&a.lungs);
    assert_eq!(zs.len(), 3);
    let png = qc::coronal_png(&ph.volume, &a.lungs, &a.classes, y);
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let [nz, _, nx] = ph.volume.dims_zyx();
    let sp = ph.volume.geometry.spacing_mm;
    let width = u32::from_be_bytes([png[16], png[17], png[18], png[19]]) as usize;
    let height = u32::from_be_bytes([png[20], png[21], png[22], png[23]]) as usize;
    assert_eq!(width, nx);
    assert_eq!(height, (nz as f64 * sp[0] / sp[2]).round() as usize);
    assert!(!qc::axial_png(&ph.volume, &a.lungs, &a.classes, zs[1]).is_empty());
}

// ---- real data ---------------------------------------------------------------------------

fn data_dir() -> Option<PathBuf> {
    ildtrack_dicom::shared_data::for_test(Path::new(env!("CARGO_MANIFEST_DIR")))
}

#[test]
fn lidc_slice_is_close_to_the_lungmask_reference() {
    let Some(d) = data_dir() else { return };
    let a = analyze_path(&d.join("lungmask-slice/lidc-slice.dcm"));
    let count = |v: u8| a.lungs.data.iter().filter(|&&x| x == v).count() as f64;
    let (r, l) = (count(1), count(2));
    // lungmask R231's mask of this slice: right 32,376 px, left 18,268 px.
    assert!(
        rel_err(r, 32376.0) <= TARGET_LUNGMASK_PX_ERR,
        "right {r} px vs 32376"
    );
    assert!(
        rel_err(l, 18268.0) <= TARGET_LUNGMASK_PX_ERR,
        "left {l} px vs 18268"
    );
    assert!(
        rel_err(r + l, 50644.0) <= TARGET_LUNGMASK_PX_ERR,
        "total {} px vs 50644",
        r + l
    );
}

#[test]
fn kernel_pairs_give_the_same_lung_volume() {
    let Some(d) = data_dir() else { return };
    for (a_name, b_name) in [
        ("A0001-kernel-L", "A0001-kernel-B"),
        ("A0002-kernel-B70f", "A0002-kernel-B40f"),
    ] {
        let a = analyze_path(&d.join("lung-pet-ct-dx").join(a_name));
        let b = analyze_path(&d.join("lung-pet-ct-dx").join(b_name));
        let (va, vb) = (
            a.result.lungs.whole.volume_ml,
            b.result.lungs.whole.volume_ml,
        );
        assert!(
            rel_err(va, vb) <= TARGET_KERNEL_LUNG_ERR,
            "{a_name} {va:.0} mL vs {b_name} {vb:.0} mL"
        );
        // The sharp kernel widens the histogram: more LAA and a larger SD.
        let (wa, wb) = (&a.result.lungs.whole, &b.result.lungs.whole);
        assert!(
            wa.laa950_pct > wb.laa950_pct && wa.sd_hu > wb.sd_hu,
            "{a_name} vs {b_name}"
        );
        assert!(va > 1500.0 && vb > 1500.0);
        assert!(!split_warned(&a.result) && !split_warned(&b.result));
        // The sharp kernel's noise is denoised for the classes and warned about, so its GGO
        // agrees with the soft kernel's.
        assert!(has_warning(&a.result, "noisy-scan") && !has_warning(&b.result, "noisy-scan"));
        let (ga, gb) = (wa.ggo_pct, wb.ggo_pct);
        assert!(
            (ga - gb).abs() < TARGET_KERNEL_GGO_POINTS,
            "{a_name} GGO {ga:.2} % vs {b_name} {gb:.2} %"
        );
    }
}

#[test]
fn covid_slices_with_visible_ggo_score_higher() {
    let Some(d) = data_dir() else { return };
    let base = d.join("covid-ny-sbu");
    let ggo = |sub: &str, file: &str| -> f64 {
        let a = analyze_path(&base.join(sub).join("axial").join(file));
        assert!(
            a.result.lungs.whole.volume_ml > 0.0,
            "{sub}/{file}: no lung found"
        );
        a.result.lungs.whole.ggo_pct
    };
    let visible = ggo("A002304", "19010112-135.dcm").min(ggo("A046441", "19001111-045.dcm"));
    let clear = ggo("A048383", "19001231-30.dcm").max(ggo("A072894", "19010103-40.dcm"));
    assert!(
        visible > clear + 10.0,
        "visible GGO {visible:.1} % vs clear {clear:.1} %"
    );
}

#[test]
fn bowel_gas_in_an_abdominal_slice_is_not_lung() {
    // A058062's two "axial" slices are at the level of the kidneys: the colon's gas has a
    // lung-like mean HU and must not be labelled lung. Most of it is pure air, which lung is
    // not; its partial-volume rest lies outside the rib cage's hull, is dropped too and warned
    // about (`air-outside-rib-cage`). In the follow-up the bone hull (spine and two lateral
    // ribs) is small against the body, which once meant "cropped field of view, not judged";
    // the body lies wholly inside the image there, so it is judged.
    let Some(d) = data_dir() else { return };
    for file in ["19001231-084.dcm", "19010108-078.dcm"] {
        let a = analyze_path(&d.join("covid-ny-sbu/A058062/axial").join(file));
        let v = a.result.lungs.whole.volume_ml;
        assert!(v < 0.5, "{file}: {v:.1} mL of 'lung' in an abdominal slice");
        assert!(has_warning(&a.result, "air-outside-rib-cage"), "{file}");
        // And it says no lung was found (not "only one lung found").
        assert!(
            has_doubt(&a.result, |m| m.starts_with("no lung found")),
            "{file}: {:?}",
            a.result.warnings
        );
    }
}

#[test]
fn organs_cut_by_one_slice_are_not_consolidation() {
    // Single slices at the liver dome and the spleen: the wall-vs-mediastinum rule must not
    // take the wall side of the organ into the lung as a straight-edged wedge and count it as
    // consolidation; the lung of those slices must still be found.
    let Some(d) = data_dir() else { return };
    for (sub, file) in [
        ("A098752", "19001231-32.dcm"),
        ("A098752", "19010127-128.dcm"),
        ("A067967", "19001231-270.dcm"),
    ] {
        let a = analyze_path(&d.join("covid-ny-sbu").join(sub).join("axial").join(file));
        let c = a.result.lungs.whole.consolidation_pct;
        assert!(c < 1.0, "{sub}/{file}: consolidation {c:.1} %");
        assert!(
            a.result.lungs.whole.volume_ml > 3.0,
            "{sub}/{file}: lung lost"
        );
    }
    // ... while real consolidation cut by one slice (the follow-up of A046441) is kept.
    let a = analyze_path(&d.join("covid-ny-sbu/A046441/axial/19010101-23.dcm"));
    let c = a.result.lungs.whole.consolidation_pct;
    assert!(c > 5.0, "A046441 follow-up consolidation {c:.1} %");
}

#[test]
fn a_lung_broken_up_by_dense_ground_glass_is_still_found() {
    // A046441's follow-up slice: severe diffuse disease leaves the left lung's aerated part in
    // fragments joined by -400..-200 HU ground glass; each fragment alone is below the component
    // size, and the lung must still be found.
    let Some(d) = data_dir() else { return };
    let a = analyze_path(&d.join("covid-ny-sbu/A046441/axial/19010101-23.dcm"));
    let (r, l) = (
        a.result.lungs.right.volume_ml,
        a.result.lungs.left.volume_ml,
    );
    assert!(l > 5.0 && r > 5.0, "right {r:.1} mL, left {l:.1} mL");
    // Much of its dependent disease is still outside the mask: that is said.
    assert!(disease_outside_warned(&a.result), "{:?}", a.result.warnings);
}

fn disease_outside_warned(r: &VisitResult) -> bool {
    has_doubt(r, |m| m.contains("outside the mask"))
}

#[test]
fn dense_disease_left_outside_the_mask_is_reported() {
    // A046441's prior slice: the posterior (dependent) consolidation and crazy paving of both
    // lungs lies outside the mask (the aerated lung's outline does not reach it). The clear
    // slices' masks reach the pleura and are not flagged.
    let Some(d) = data_dir() else { return };
    let base = d.join("covid-ny-sbu");
    let a = analyze_path(&base.join("A046441/axial/19001111-045.dcm"));
    assert!(disease_outside_warned(&a.result), "{:?}", a.result.warnings);
    for (sub, file) in [
        ("A048383", "19001231-30.dcm"),
        ("A072894", "19010103-40.dcm"),
    ] {
        let c = analyze_path(&base.join(sub).join("axial").join(file));
        assert!(
            !disease_outside_warned(&c.result),
            "{sub}/{file}: {:?}",
            c.result.warnings
        );
    }
}

#[test]
fn normal_lung_on_5_mm_slices_shows_little_ggo() {
    // A0001 (5 mm slices, standard kernel B): lungs without diffuse disease, where the partial
    // volume of vessels through a 5 mm slab must not read as GGO.
    let Some(d) = data_dir() else { return };
    let a = analyze_path(&d.join("lung-pet-ct-dx/A0001-kernel-B"));
    let g = a.result.lungs.whole.ggo_pct;
    assert!(
        g < 5.0,
        "GGO {g:.1} % of a normal-looking lung on 5 mm slices"
    );
    assert!(
        !has_warning(&a.result, "segmentation-doubt"),
        "{:?}",
        a.result.warnings
    );
}

#[test]
fn a_field_of_view_that_cuts_the_body_is_said() {
    // The whole body in the image: no warning. The same scan cut to its central columns (a
    // small display field of view in a large patient): the body runs off the image beside the
    // lungs, and `truncated-fov` says so.
    let ph = phantom("healthy");
    let whole = run(&ph);
    assert!(!has_warning(&whole.result, "truncated-fov"));
    let nx = ph.volume.dims_zyx()[2];
    let cut = ph.volume.columns(nx / 5, nx - nx / 5);
    let a = analyze_default(&cut, &ph.meta, &[]);
    assert!(
        has_warning(&a.result, "truncated-fov"),
        "{:?}",
        a.result.warnings
    );
    // Real: a 3-D series whose arms reach the image edge far from the lungs is not truncated;
    // cut to its central columns, it is.
    let Some(d) = data_dir() else { return };
    let s = ildtrack_dicom::load(
        &d.join("lung-pet-ct-dx/A0002-kernel-B40f"),
        &Default::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let whole = analyze_default(&s.volume, &s.meta, &s.warnings);
    assert!(!has_warning(&whole.result, "truncated-fov"));
    let nx = s.volume.dims_zyx()[2];
    for x0 in [nx * 3 / 20, nx / 5] {
        let cut = s.volume.columns(x0, nx - x0);
        let a = analyze_default(&cut, &s.meta, &s.warnings);
        assert!(
            has_warning(&a.result, "truncated-fov"),
            "{:?}",
            a.result.warnings
        );
        // The lungs the image still shows are found, also where the image cuts them (a lung
        // open to the image edge is not outside air): the untouched scan's mask, cut the same.
        let same = whole
            .lungs
            .data
            .slice(ndarray::s![.., .., x0..nx - x0])
            .to_owned();
        for side in [1u8, 2] {
            let d = dice(&a.lungs.data, &same, side);
            assert!(
                d >= TARGET_CUT_DICE,
                "cut at column {x0}: side {side} Dice {d:.3}"
            );
        }
    }
}

/// The A0001 series and its analysis, or `None` (printed) when ../shared/data is absent.
fn a0001() -> Option<(ildtrack_dicom::LoadedSeries, Analysis)> {
    let d = data_dir()?;
    let s = ildtrack_dicom::load(
        &d.join("lung-pet-ct-dx/A0001-kernel-B"),
        &Default::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let whole = analyze_default(&s.volume, &s.meta, &s.warnings);
    Some((s, whole))
}

#[test]
fn a_coarse_reconstruction_keeps_the_lungs_or_says_what_it_skipped() {
    // Issue 17 item 5: the real series area-resampled to 4.5 mm pixels and 10 mm slices (the
    // coarsest the issue names) and to 3 mm pixels at its own 5 mm slices.
    let Some((s, whole)) = a0001() else { return };
    let ml0 = whole.result.lungs.whole.volume_ml;
    for target in [[10.0, 4.5, 4.5], [5.0, 3.0, 3.0]] {
        let v = ildtrack_phantom::degrade::resample_area(&s.volume, target);
        let a = analyze_default(&v, &s.meta, &s.warnings);
        let ml = a.result.lungs.whole.volume_ml;
        assert!(
            (ml / ml0 - 1.0).abs() <= TARGET_COARSE_LUNG_ERR,
            "{target:?}: {ml:.0} mL vs {ml0:.0} mL"
        );
        let reference = ildtrack_phantom::degrade::mask_at_centres(
            &whole.lungs.data,
            s.volume.geometry.spacing_mm,
            v.geometry.spacing_mm,
            v.dims_zyx(),
        );
        for side in [1u8, 2] {
            let d = dice(&a.lungs.data, &reference, side);
            assert!(
                d >= TARGET_COARSE_DICE,
                "{target:?}: side {side} Dice {d:.3}"
            );
        }
        // Dense ground-glass regrowth cannot work on pixels this coarse: said, not silent.
        assert!(
            has_warning(&a.result, "coarse-grid"),
            "{:?}",
            a.result.warnings
        );
    }
    assert!(!has_warning(&whole.result, "coarse-grid"));
}

#[test]
fn a_reconstruction_circle_that_cuts_the_body_is_said_and_never_in_the_mask() {
    // Issue 17 item 4: a smaller field of view (15 % of the image cut in front and on both
    // sides) with padding outside the circle inscribed in it: the body runs off the image and the
    // circle beside the lungs, which the circle does not cut.
    let Some((s, whole)) = a0001() else { return };
    let [_, ny, nx] = s.volume.dims_zyx();
    let (y, x) = ((ny * 3 / 20, ny), (nx * 3 / 20, nx - nx * 3 / 20));
    let mut v = ildtrack_phantom::degrade::crop_yx(&s.volume, y, x);
    ildtrack_phantom::degrade::pad_outside_circle(&mut v);
    let a = analyze_default(&v, &s.meta, &s.warnings);
    assert!(
        has_warning(&a.result, "truncated-fov"),
        "{:?}",
        a.result.warnings
    );
    let pad = ildtrack_volume::OUTSIDE_FOV_HU;
    let same = {
        let mut m = whole
            .lungs
            .data
            .slice(ndarray::s![.., y.0..y.1, x.0..x.1])
            .to_owned();
        m.zip_mut_with(&v.data, |l, &h| {
            if h == pad {
                *l = 0
            }
        });
        m
    };
    let kept = same.iter().filter(|&&l| l != 0).count() as f64;
    let all = whole.lungs.data.iter().filter(|&&l| l != 0).count() as f64;
    assert!(
        kept >= 0.999 * all,
        "the circle must spare the lungs for this test: {kept} of {all}"
    );
    let (ml, ml0) = (
        a.result.lungs.whole.volume_ml,
        whole.result.lungs.whole.volume_ml,
    );
    assert!(
        (ml / ml0 - 1.0).abs() <= TARGET_LUNG_ERR,
        "{ml:.0} mL vs {ml0:.0} mL"
    );
    assert_eq!(
        ildtrack_phantom::degrade::voxels_on_image_edge(&a.lungs.data, &v),
        0,
        "mask voxels on the image edge or the padding"
    );
}

// ---- kernel harmonization (issue 19) -----------------------------------------------------

/// Issue 19's targets for a sharp-kernel scan, harmonized, against its soft-kernel twin:
/// |Δ LAA-950| (points), |Δ GGO| (points), |Δ mean lung density| (HU), |Δ p15| (HU).
const TARGET_HARM_LAA: f64 = 1.0;
const TARGET_HARM_GGO: f64 = 0.5;
const TARGET_HARM_MLD: f64 = 5.0;
const TARGET_HARM_P15: f64 = 8.0;
/// A soft-kernel scan is the reference already: no % metric may move more than this.
const TARGET_HARM_SOFT_MOVE: f64 = 0.2;

/// The % metrics of a region, by name.
fn pct_metrics(m: &ildtrack_analysis::model::Metrics) -> [(&'static str, f64); 5] {
    [
        ("laa950", m.laa950_pct),
        ("haa", m.haa_pct),
        ("ggo", m.ggo_pct),
        ("consolidation", m.consolidation_pct),
        ("affected", m.affected_pct),
    ]
}

/// The harmonized metrics cover the very same voxels as the raw ones, region by region.
fn assert_same_mask(name: &str, r: &VisitResult) {
    let h = r
        .harmonization
        .as_ref()
        .and_then(|h| h.lungs.as_ref())
        .unwrap_or_else(|| panic!("{name}: no harmonized metrics"));
    let raw = &r.lungs;
    let pairs = [
        (&raw.whole, &h.whole),
        (&raw.left, &h.left),
        (&raw.right, &h.right),
        (&raw.subpleural, &h.subpleural),
        (&raw.core, &h.core),
    ];
    for (a, b) in pairs {
        assert_eq!(a.voxel_count, b.voxel_count, "{name}: lung mask changed");
        assert_eq!(a.volume_ml, b.volume_ml, "{name}: lung volume changed");
    }
    for ((z, a), (_, b)) in raw.zones.iter().iter().zip(h.zones.iter().iter()) {
        assert_eq!(a.voxel_count, b.voxel_count, "{name}: zone {z} changed");
    }
}

/// Asserts the four targets between `sharp`'s reference-footing metrics and `soft`'s; returns
/// the deltas for the message.
fn assert_harmonized_pair(name: &str, sharp: &VisitResult, soft: &VisitResult, check_ggo: bool) {
    let a = &sharp
        .reference_lungs()
        .expect("sharp: reference metrics")
        .whole;
    let b = &soft
        .reference_lungs()
        .expect("soft: reference metrics")
        .whole;
    let d_laa = a.laa950_pct - b.laa950_pct;
    let d_ggo = a.ggo_pct - b.ggo_pct;
    let d_mld = a.mean_hu.unwrap_or(f64::NAN) - b.mean_hu.unwrap_or(f64::NAN);
    let d_p15 = a.p15_hu.unwrap_or(f64::NAN) - b.p15_hu.unwrap_or(f64::NAN);
    let said = format!(
        "{name}: dLAA {d_laa:+.2} dGGO {d_ggo:+.2} dMLD {d_mld:+.1} dp15 {d_p15:+.1} (raw: dLAA {:+.2} dGGO {:+.2})",
        sharp.lungs.whole.laa950_pct - soft.lungs.whole.laa950_pct,
        sharp.lungs.whole.ggo_pct - soft.lungs.whole.ggo_pct,
    );
    eprintln!("{said}");
    assert!(d_laa.abs() <= TARGET_HARM_LAA, "{said}");
    assert!(!check_ggo || d_ggo.abs() <= TARGET_HARM_GGO, "{said}");
    assert!(d_mld.abs() <= TARGET_HARM_MLD, "{said}");
    assert!(d_p15.abs() <= TARGET_HARM_P15, "{said}");
}

#[test]
fn harmonization_meets_the_targets_on_both_real_kernel_pairs() {
    // Issue 19: the same acquisitions reconstructed with a sharp and a soft kernel
    // (Lung-PET-CT-Dx A0001 L / B, A0002 B70f / B40f). The sharp scans must be harmonized (by
    // what they measure), the soft ones left alone, and the harmonized sharp metrics must land
    // on the soft ones.
    let Some(data) = data_dir() else { return };
    for (sharp, soft) in [
        ("A0001-kernel-L", "A0001-kernel-B"),
        ("A0002-kernel-B70f", "A0002-kernel-B40f"),
    ] {
        let dir = data.join("lung-pet-ct-dx");
        let a = analyze_path(&dir.join(sharp)).result;
        let b = analyze_path(&dir.join(soft)).result;
        use ildtrack_analysis::model::HarmonizationStatus;
        let status = |r: &VisitResult| r.harmonization.as_ref().map(|h| h.status);
        assert_eq!(status(&a), Some(HarmonizationStatus::Applied), "{sharp}");
        assert!(a.warnings.iter().any(|w| w.code == "kernel-harmonized"));
        let h = a.harmonization.as_ref().expect("record");
        assert!(
            h.gains.iter().all(|&g| g > 0.0 && g <= 1.0) && h.gains.iter().any(|&g| g < 0.5),
            "{sharp}: gains {:?}",
            h.gains
        );
        let (nb, na) = (
            h.noise_before_hu.expect("noise before"),
            h.noise_after_hu.expect("noise after"),
        );
        assert!(na < 0.5 * nb, "{sharp}: noise {nb} -> {na} HU");
        assert_same_mask(sharp, &a);
        // The soft scan: measured at the reference, untouched (0 points moved).
        assert_eq!(status(&b), Some(HarmonizationStatus::NotNeeded), "{soft}");
        let moved = pct_metrics(&b.reference_lungs().expect("soft").whole)
            .iter()
            .zip(pct_metrics(&b.lungs.whole))
            .map(|((_, x), (_, y))| (x - y).abs())
            .fold(0.0f64, f64::max);
        assert!(
            moved <= TARGET_HARM_SOFT_MOVE,
            "{soft}: moved {moved:.2} points"
        );
        assert_harmonized_pair(sharp, &a, &b, true);
    }
}

#[test]
fn harmonization_off_and_without_reference_tissue() {
    // `off` measures nothing and changes nothing; a scan with no fat, muscle or blood (a lung
    // crop) cannot be put on the reference footing, and says so where harmonization was asked.
    use ildtrack_analysis::HarmonizeMode;
    use ildtrack_analysis::model::HarmonizationStatus;
    let ph = phantom("sharp-kernel");
    let off = run_with(
        &ph,
        &AnalysisConfig {
            harmonize: HarmonizeMode::Off,
            ..Default::default()
        },
    );
    let h = off.result.harmonization.as_ref().expect("record");
    assert_eq!(h.status, HarmonizationStatus::Off);
    assert!(h.lungs.is_none() && h.measured_band_sd_hu.is_empty());
    assert!(off.result.reference_lungs().is_err());
    let auto = run(&ph);
    assert_eq!(
        auto.result.lungs, off.result.lungs,
        "raw metrics do not depend on it"
    );
    assert_eq!(
        auto.classes.data, off.classes.data,
        "nor does the class map"
    );
    // Lung-like HU only: nothing to measure.
    let lungish = ph
        .volume
        .with_data(ph.volume.data.mapv(|v| v.clamp(-1000, -600)));
    let on = analyze_with(
        &lungish,
        &ph.meta,
        &[],
        &AnalysisConfig {
            harmonize: HarmonizeMode::On,
            ..Default::default()
        },
    );
    let h = on.result.harmonization.as_ref().expect("record");
    assert_eq!(h.status, HarmonizationStatus::Unavailable);
    assert!(has_warning(&on.result, "harmonization-unavailable"));
    assert!(on.result.reference_lungs().is_err());
}

#[test]
fn harmonization_on_the_sharp_kernel_phantom() {
    // The phantom's sharp kernel (white noise 90 HU, full grid) against its soft twin (the same
    // volume through the phantom's soft-kernel smoothing). LAA-950, mean and p15 meet issue 19's
    // targets; GGO does not (docs/HARMONIZATION.md: the phantom's "kernel" is noise on an
    // unchanged resolution, and scaling its bands blurs vessel edges into ground glass), so it is
    // reported, not asserted.
    let spec = PhantomSpec::preset("sharp-kernel").expect("preset");
    let ph = try_generate(&spec).expect("phantom");
    let twin = ildtrack_phantom::soft_kernel_twin(&ph.volume);
    let mut meta = ph.meta.clone();
    meta.kernel = Some("B30f".into());
    let a = analyze_default(&ph.volume, &ph.meta, &[]).result;
    let b = analyze_default(&twin, &meta, &[]).result;
    assert_same_mask("phantom sharp-kernel", &a);
    assert_harmonized_pair("phantom sharp-kernel", &a, &b, false);
}
