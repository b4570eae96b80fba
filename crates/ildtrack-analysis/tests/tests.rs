//! `analyze` against the phantom's truth and against real series in ../shared/data.
//!
//! Phantoms run on half the default grid (256×256×150 at 1.56×1.56×2 mm) to keep the suite
//! fast; `examples/analysis_phantom_eval.rs` runs the full-size grid.

use ildtrack_analysis::model::VisitResult;
use ildtrack_analysis::{Analysis, AnalysisConfig, analyze};
use ildtrack_report::qc;
use ildtrack_compute::CpuBackend;
use ildtrack_phantom::{LesionSpec, Phantom, PhantomSpec, Side, Zone, try_generate};
use ildtrack_volume::Volume;
use std::path::{Path, PathBuf};

fn half_grid(spec: PhantomSpec) -> PhantomSpec {
    let d = spec.dims_zyx;
    let s = spec.spacing_mm;
    spec.with_grid(
        [d[0] / 2, d[1] / 2, d[2] / 2],
        [s[0] * 2.0, s[1] * 2.0, s[2] * 2.0],
    )
}

fn phantom(name: &str) -> Phantom {
    let spec = PhantomSpec::preset(name).unwrap_or_else(|| panic!("no preset {name}"));
    try_generate(&half_grid(spec)).unwrap_or_else(|e| panic!("phantom {name}: {e}"))
}

fn run(ph: &Phantom) -> Analysis {
    run_with(ph, &AnalysisConfig::default())
}

fn run_with(ph: &Phantom, cfg: &AnalysisConfig) -> Analysis {
    analyze(
        &CpuBackend::new(),
        &ph.volume,
        &ph.meta,
        &[],
        cfg,
        &|_, _| {},
    )
    .unwrap_or_else(|e| panic!("analyze: {e}"))
}

/// The default phantom (half grid) with one subpleural consolidation hemisphere, analysed.
fn one_subpleural_lesion(
    side: Side,
    zone: Zone,
    radius_mm: f64,
    angle_deg: f64,
) -> (Phantom, Analysis) {
    let mut spec = half_grid(PhantomSpec::default());
    spec.lesions = vec![LesionSpec::consolidation(side, zone, radius_mm).at_angle(angle_deg)];
    let ph = try_generate(&spec).unwrap_or_else(|e| panic!("phantom: {e}"));
    let a = run(&ph);
    (ph, a)
}

/// Our consolidation (mL) and the phantom's truth.
fn consolidation_ml(ph: &Phantom, a: &Analysis) -> (f64, f64) {
    (
        a.result.lungs.whole.consolidation_ml,
        ph.truth.consolidation_ml,
    )
}

/// Truth consolidation voxels inside our lung mask, and all of them.
fn consolidation_inside(truth: &ndarray::Array3<bool>, lungs: &ndarray::Array3<u8>) -> (u64, u64) {
    truth
        .iter()
        .zip(lungs.iter())
        .fold((0, 0), |(i, n), (&c, &m)| {
            (i + u64::from(c && m != 0), n + u64::from(c))
        })
}

/// At least `min_share` of the phantom's consolidation voxels lie inside our lung mask.
fn assert_inside(ph: &Phantom, a: &Analysis, min_share: f64, what: &str) {
    let (inside, n) = consolidation_inside(&ph.truth.consolidation, &a.lungs.data);
    assert!(
        inside as f64 >= min_share * n as f64,
        "{what}: consolidation inside mask {inside}/{n}"
    );
}

/// Dice of our right and left lung against the phantom's.
fn dice_both(a: &Analysis, ph: &Phantom) -> (f64, f64) {
    (
        dice(&a.lungs.data, &ph.truth.lungs, 1),
        dice(&a.lungs.data, &ph.truth.lungs, 2),
    )
}

fn dice(ours: &ndarray::Array3<u8>, truth: &ndarray::Array3<u8>, label: u8) -> f64 {
    let (mut i, mut a, mut b) = (0u64, 0u64, 0u64);
    for (&o, &t) in ours.iter().zip(truth.iter()) {
        a += u64::from(o == label);
        b += u64::from(t == label);
        i += u64::from(o == label && t == label);
    }
    2.0 * i as f64 / (a + b).max(1) as f64
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

#[test]
fn ild_phantom_matches_truth() {
    let ph = phantom("ild");
    let a = run(&ph);
    let t = &ph.truth;
    let l = &a.result.lungs;
    let (dr, dl) = (
        dice(&a.lungs.data, &t.lungs, 1),
        dice(&a.lungs.data, &t.lungs, 2),
    );
    assert!(dr >= 0.97 && dl >= 0.97, "dice right {dr:.4} left {dl:.4}");
    let vol_err = rel_err(l.whole.volume_ml, t.total_lung_ml());
    assert!(
        vol_err <= 0.02,
        "lung volume {:.0} vs {:.0} mL",
        l.whole.volume_ml,
        t.total_lung_ml()
    );
    let ggo_err = rel_err(l.whole.ggo_ml, t.ggo_ml);
    assert!(
        ggo_err <= 0.10,
        "GGO {:.1} vs {:.1} mL",
        l.whole.ggo_ml,
        t.ggo_ml
    );
    // The ILD preset has only ~18 mL of consolidation (cores inside GGO), so small excesses
    // weigh: measured +7.0 % on this grid (a hilar vessel junction used to add +9 %; the rest
    // is chest wall the mask takes in at the subpleural cores).
    let cons_err = rel_err(l.whole.consolidation_ml, t.consolidation_ml);
    assert!(
        cons_err <= 0.10,
        "consolidation {:.1} vs {:.1} mL",
        l.whole.consolidation_ml,
        t.consolidation_ml
    );
    // Every truth consolidation voxel is inside the mask.
    let (inside, n) = consolidation_inside(&t.consolidation, &a.lungs.data);
    assert!(
        inside as f64 >= 0.95 * n as f64,
        "consolidation inside mask {inside}/{n}"
    );
    // Zones: each zone's volume within 6 %, disease where the truth has it.
    for ((name, m), tz) in l.zones.iter().iter().zip(t.per_zone.iter()) {
        assert!(
            rel_err(m.volume_ml, tz.lung_ml) <= 0.06,
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
        (disease as f64) < 0.02 * n as f64,
        "{disease} of {n} vessel voxels counted as GGO/consolidation"
    );
    let w = &a.result.lungs.whole;
    assert!(
        w.consolidation_pct < 0.2,
        "healthy consolidation {:.2} %",
        w.consolidation_pct
    );
    // The left hilar junction (arteries just thinner than the vessel radius meeting) survives
    // the vessel opening; it counted as ~1.5 mL of consolidation before it was recognised.
    assert!(
        w.consolidation_ml < 0.5,
        "healthy consolidation {:.2} mL",
        w.consolidation_ml
    );
    assert!(
        w.vessel_ml > 0.5 * t.vessel_ml,
        "vessel {:.0} vs truth {:.0} mL",
        w.vessel_ml,
        t.vessel_ml
    );
}

#[test]
fn perihilar_consolidation_is_not_a_vessel_junction() {
    // A 12 mm consolidation ball beside the right hilum, among the thick vessels (their
    // attached volume is 1.7 x its own): thicker than a junction of them (inscribed radius
    // 7.8 mm), so it stays consolidation; measured -10 % on this grid, 0 mL without the
    // thickness test. 8 mm balls there are taken for junctions, a known limit.
    let mut spec = half_grid(PhantomSpec::default());
    let mut l = LesionSpec::consolidation(Side::Right, Zone::Middle, 12.0).at_angle(300.0);
    l.subpleural = false;
    spec.lesions = vec![l];
    let ph = try_generate(&spec).unwrap_or_else(|e| panic!("phantom: {e}"));
    let a = run(&ph);
    let (c, t) = consolidation_ml(&ph, &a);
    assert!(rel_err(c, t) <= 0.20, "consolidation {c:.1} vs {t:.1} mL");
}

#[test]
fn posterior_subpleural_consolidation_stays_inside() {
    // Posterior (dependent) subpleural consolidation, the commonest place of ILD: behind it the
    // body wall is 4-5 cm of paravertebral muscle, so measured from the skin it looked nearer
    // the mediastinum and was cut out (37 % inside, 0 mL consolidation on this grid).
    // 97 % were inside while the pleura depth was the minimum over +-40 mm of slices, which let
    // the mask reach into the chest wall beside lateral lesions; with the depth from both sides
    // of the lesion 92-93 % (the outermost shell is missed), consolidation -4 %.
    for (side, zone) in [(Side::Right, Zone::Middle), (Side::Left, Zone::Lower)] {
        let (ph, a) = one_subpleural_lesion(side, zone, 12.0, 0.0);
        assert_inside(&ph, &a, 0.90, &format!("{side:?} {zone:?}"));
        let (c, t) = consolidation_ml(&ph, &a);
        assert!(
            rel_err(c, t) <= 0.15,
            "{side:?} {zone:?}: consolidation {c:.1} vs {t:.1} mL"
        );
    }
}

#[test]
fn thin_subpleural_consolidation_is_not_vessel() {
    // A subpleural lens thinner than the vessel ball's diameter (an 8 mm hemisphere: 8 mm deep)
    // does not survive the in-lung vessel opening; it counted as 0 mL (all "vessel") before the
    // ball was allowed to rest in the chest wall. Measured on this grid: posterior -2 %,
    // lateral +3 %, anterolateral +18 % (one-voxel rim on a 1.1 mL lesion); 0 mL with
    // `subpleural_lens = false`.
    for angle in [0.0, 90.0, 135.0] {
        let (ph, a) = one_subpleural_lesion(Side::Right, Zone::Middle, 8.0, angle);
        let (c, t) = consolidation_ml(&ph, &a);
        assert!(
            rel_err(c, t) <= 0.25,
            "angle {angle}: consolidation {c:.2} vs {t:.2} mL"
        );
    }
}

#[test]
fn lateral_subpleural_consolidation_is_not_overcounted() {
    // The mask used to reach into the chest wall beside lateral lesions (pleura depth as the
    // minimum over +-40 mm of slices: the wall curves), and that wall counted as consolidation
    // (+69 % on this 12 mm lesion). Measured: -1 %, 96 % of the lesion inside; since the
    // phantom's lungs reach the chest wall (its cavity narrows with them: a 4 mm gap to the
    // ribs here instead of 11) -8 %, 89 % inside (the outer rim against the wall).
    let (ph, a) = one_subpleural_lesion(Side::Right, Zone::Middle, 12.0, 90.0);
    assert_inside(&ph, &a, 0.87, "12 mm lateral");
    let (c, t) = consolidation_ml(&ph, &a);
    assert!(rel_err(c, t) <= 0.15, "consolidation {c:.2} vs {t:.2} mL");
}

#[test]
fn sharp_kernel_noise_is_not_ground_glass() {
    // 90 HU white noise on 1.56 mm pixels: the 1 mm GGO opening was the pixel itself and removed
    // nothing, so speckle counted as GGO (+241 %). The opening is now at least one pixel: -8 %.
    // The noise is measured and recorded (86 HU here, 20 HU on the default phantom).
    // Noise above `denoise_noise_hu` (25 HU) now decides classes 1-3 on HU smoothed in-plane
    // (σ 1 mm), and says so (`noisy-scan`): -9.8 -> -4.8 % (full size -19.5 -> -12.4 %).
    let ph = phantom("sharp-kernel");
    let a = run(&ph);
    let (g, t) = (a.result.lungs.whole.ggo_ml, ph.truth.ggo_ml);
    assert!(rel_err(g, t) <= 0.07, "GGO {g:.1} vs {t:.1} mL");
    assert!(has_warning(&a.result, "noisy-scan"));
    let n = a.result.series.noise_sd_hu.unwrap_or(0.0);
    assert!((75.0..100.0).contains(&n), "noise {n:.1} HU");
    let mut raw_cfg = AnalysisConfig::default();
    raw_cfg.quantification.denoise_sigma_mm = 0.0;
    let raw = run_with(&ph, &raw_cfg);
    let gr = raw.result.lungs.whole.ggo_ml;
    assert!(!has_warning(&raw.result, "noisy-scan"));
    // Consolidation on this grid (the working grid is the scan's own: nothing averages the
    // noise): 6 % of its pixels lie over +150 HU and were left out of the additions as pinholes
    // in the lung, which cut the lesion apart for the vessel opening: -52 %, 90.6 % inside. The
    // pinholes the additions enclose are now filled: -1.1 %, 97.1 % inside.
    let (c, ct) = consolidation_ml(&ph, &a);
    assert!(rel_err(c, ct) <= 0.10, "consolidation {c:.1} vs {ct:.1} mL");
    assert_inside(&ph, &a, 0.95, "sharp-kernel");
    assert!(
        rel_err(gr, t) > rel_err(g, t),
        "raw {gr:.1}, denoised {g:.1}, truth {t:.1} mL"
    );
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
    // Full size (0.78 mm pixels, 86 HU noise): a third of the 20-40 HU consolidation lies above
    // +100 HU and counted as "vessel / dense" (consolidation -16.5 %). Voxels of a consolidated
    // region whose in-plane smoothed HU (σ 1 mm) is under +100 are consolidation: +2.8 %.
    // (The half grid's -52 % was pinholes in the lung mask: see the test above.)
    let spec = PhantomSpec::preset("sharp-kernel").expect("preset");
    let ph = try_generate(&spec).expect("phantom");
    let a = run(&ph);
    let (c, t) = consolidation_ml(&ph, &a);
    assert!(rel_err(c, t) <= 0.10, "consolidation {c:.1} vs {t:.1} mL");
    // GGO at full size: the 1 mm vessel rim took the ground glass around every vessel crossing
    // a GGO patch (-12.4 %; soft-kernel ILD phantom -8.4 %). Rim voxels bordering a patch are
    // GGO now: -0.7 % (ILD -3.0 %).
    let (g, gt) = (a.result.lungs.whole.ggo_ml, ph.truth.ggo_ml);
    assert!(rel_err(g, gt) <= 0.05, "GGO {g:.1} vs {gt:.1} mL");
}

#[test]
fn honeycombing_stays_in_the_lung() {
    // Fibrotic honeycombing (clustered 2.5-4 mm air cysts in -50 HU walls, radius 60 mm,
    // posterior-lateral right base): no cyst is a lung candidate by itself and the walls are
    // too dense for the crazy-paving rule; the pleura outlined from the slices above takes it
    // in. Right lung missed (truth lung outside our mask), measured: healthy phantom 1.3 mL,
    // with the honeycombing 16.2 mL (without the dense-region rule 36.0 mL); right Dice 0.9955.
    // (A single slice has no slices above: A046441's baseline slice loses most of its
    // posterior honeycombing — see the notes of issue 3.)
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
    let mut spec = half_grid(PhantomSpec::default());
    spec.lesions = vec![LesionSpec::honeycomb(Side::Right, Zone::Lower, 60.0)];
    let ph = try_generate(&spec).unwrap_or_else(|e| panic!("phantom: {e}"));
    let a = run(&ph);
    let m = missed_right(&ph, &a);
    let mut cfg = AnalysisConfig::default();
    cfg.segmentation.include_dense_regions = false;
    let m2 = missed_right(&ph, &run_with(&ph, &cfg));
    assert!(
        m <= base + 25.0 && m2 > m + 10.0,
        "missed right: healthy {base:.1} mL, honeycomb {m:.1} mL, without the rule {m2:.1} mL"
    );
    let d = dice(&a.lungs.data, &ph.truth.lungs, 1);
    assert!(d >= 0.99, "right Dice {d:.4}");
}

#[test]
fn large_subpleural_consolidation_stays_inside() {
    // Issue 3: >= 95 % of a consolidation of a third of a lung inside the mask. The chest-wall
    // test keeps the part away from the mediastinum (38 % here); the cut through the lesion then
    // triggers a second outline (mediastinum from the slices above, measured through
    // non-aerated tissue; the wall side favoured 3:1; the walk out to the rib cage where the
    // pleura was not seen nearby; the diaphragm dome fitted to the aerated base keeps the liver
    // out and lets the recess around it in; behind the vertebral bodies is not mediastinum; the
    // gaps between the walks to the ribs closed): 98.1 % (half grid), right Dice 0.980. Since the
    // phantom's lungs reach the chest wall at every level: 96.0 %, Dice 0.979 (full 95.5 %); the
    // comb closing 5 -> 9 px: 96.3 %, Dice 0.980 (full 95.8 %); walks no deeper than the pleura
    // seen within 40 mm of slices: 97.3 %, Dice 0.981 (full 96.8 %).
    let ph = phantom("large-consolidation");
    let a = run(&ph);
    assert_inside(&ph, &a, 0.95, "large-consolidation");
    assert!(dice(&a.lungs.data, &ph.truth.lungs, 1) >= 0.97);
    assert!(dice(&a.lungs.data, &ph.truth.lungs, 2) >= 0.97);
    // ... and it says so: the rule split the lesion between chest wall and mediastinum.
    assert!(split_warned(&a.result), "{:?}", a.result.warnings);
    assert!(!split_warned(&run(&phantom("ild")).result));
}

#[test]
fn large_posterior_consolidation_is_not_lost_silently() {
    // KNOWN GAP, measured: a posterior consolidation of radius 70 mm in the right middle zone
    // (~480 mL, the dependent pattern of many ILDs). The first pass adds none of it (the lung
    // above and below is consolidated too, so no hull covers it; nothing added means no cut),
    // which left 8 % of it inside the mask and no warning. The dense band between the aerated
    // lung and the ribs (> 30 mm thick) now says so and triggers the second outline: 72.6 %
    // inside, right Dice 0.915 -> 0.965; with the space behind the vertebral bodies no longer
    // "mediastinum" and the walk out to the ribs where the aerated lung seen from that skin point
    // lies in front of the lesion: 86.1 %, Dice 0.970; with the aerated-lung-in-between test
    // kept for sides outlined for their rib gap: 85.4 %, Dice 0.979; the comb the walks to the
    // ribs leave closed: 89.3 %, Dice 0.982. Since the phantom's lungs reach the chest wall at
    // every level (its cavity narrows with them) the lesion lies against the ribs, the first
    // pass cuts it (the cut doubt fires instead of the rib-gap one): 85.9 %, Dice 0.972; comb
    // closing 5 -> 9 px: 87.6 %, Dice 0.974; walks no deeper than the pleura seen within 40 mm
    // of slices (the 150 mm window's lay 10 mm deeper): 89.3 %, Dice 0.975; the mid-line band
    // where wall depth is counted from the skin 30 -> 22 mm for the right side's second
    // outline (the strip 22-30 mm from the mid-line was cut off): 93.6 %, Dice 0.979; the rib
    // cage bounding the slices above the widest: 94.7 %, Dice 0.988; the rib cage's depth from
    // the nearest slice with ribs there (the deepest over +-20 mm lay up to 5 mm deeper where
    // ribs run obliquely: the upper pole's posterolateral wedge), 5 mm inside it: 96.9 %,
    // Dice 0.991.
    let (ph, a) = one_subpleural_lesion(Side::Right, Zone::Middle, 70.0, 0.0);
    assert!(
        has_doubt(&a.result, |m| m.contains("right lung")),
        "{:?}",
        a.result.warnings
    );
    assert_inside(&ph, &a, 0.95, "posterior 70 mm");
    // The second outline replaced the whole side and took the heart's and dome's borders far
    // from the lesion (lung +1.09 %, Dice 0.979); now only around the slices of the first
    // pass's cut (+-20 mm): lung +0.23 %, Dice 0.987; the diaphragm ring under the liver dome
    // (5 mm margin under the fitted dome) kept out by a 2 mm margin: lung +0.02 %, Dice 0.991.
    assert!(dice(&a.lungs.data, &ph.truth.lungs, 1) >= 0.985);
    assert!(dice(&a.lungs.data, &ph.truth.lungs, 2) >= 0.99);
}

#[test]
fn large_basal_consolidation_beside_the_heart_is_measured() {
    // Left lower 80 mm at 50° (anterolateral), 30 mm towards the head: ~730 mL against the
    // heart and the dome. The second outline let in the diaphragm under the dome (up to 5 mm
    // under the fitted dome): Dice 0.970, lung +2.42 %, consolidation +10.6 %; with a 2 mm
    // margin: Dice 0.977, lung +1.65 %, consolidation +7.7 %, 97.7 % inside (the heart-border
    // wedge of the cut's slices is what is left).
    let mut spec = half_grid(PhantomSpec::default());
    spec.lesions = vec![
        LesionSpec::consolidation(Side::Left, Zone::Lower, 80.0)
            .at_angle(50.0)
            .with_z(30.0),
    ];
    let ph = try_generate(&spec).expect("phantom");
    let a = run(&ph);
    assert_inside(&ph, &a, 0.95, "left lower 80 mm");
    let d = dice(&a.lungs.data, &ph.truth.lungs, 2);
    let (v, t) = (a.result.lungs.whole.volume_ml, ph.truth.total_lung_ml());
    let (c, ct) = consolidation_ml(&ph, &a);
    assert!(
        d >= 0.97 && rel_err(v, t) <= 0.02 && rel_err(c, ct) <= 0.10,
        "left Dice {d:.4}, lung {v:.0} vs {t:.0} mL, consolidation {c:.0} vs {ct:.0} mL"
    );
}

#[test]
fn large_consolidations_elsewhere_are_warned_and_mostly_kept() {
    // Four more placements of a large subpleural consolidation (radius 60-70 mm, 220-450 mL):
    // each is warned about and mostly inside. Before the rib-gap doubt three of them were
    // silent (9.9 %, 8.0 %, 74 % inside); then 94.3-99.5 %, Dice 0.984-0.991. Since the
    // phantom's lungs reach the chest wall at every level (its cavity narrows with them; the
    // rib-gap trigger 0.4 -> 0.1 % of the side's aerated volume: the right posterior-basal one
    // was silent again at 8 %): 89.0-98.9 %, Dice 0.987-0.992 (left middle posterior 89.0 %);
    // comb closing 5 -> 9 px: 89.8-99.0 %, Dice 0.987-0.991; walks no deeper than the pleura
    // seen within 40 mm of slices: 93.8-99.0 %, Dice 0.989-0.991; the rib cage bounding the
    // slices above the widest: 95.1-99.0 %, Dice 0.989-0.991; the rib cage's depth from the
    // nearest slice with ribs, 5 mm inside it: 95.8-98.7 %, Dice 0.990-0.994.
    for (side, zone, r, angle) in [
        (Side::Right, Zone::Lower, 70.0, 90.0),
        (Side::Left, Zone::Lower, 60.0, 90.0),
        (Side::Right, Zone::Lower, 60.0, 0.0),
        (Side::Left, Zone::Middle, 60.0, 0.0),
    ] {
        let (ph, a) = one_subpleural_lesion(side, zone, r, angle);
        let label = if side == Side::Right { 1 } else { 2 };
        let (inside, n) = consolidation_inside(&ph.truth.consolidation, &a.lungs.data);
        let d = dice(&a.lungs.data, &ph.truth.lungs, label);
        assert!(
            has_warning(&a.result, "segmentation-doubt"),
            "{side:?} {zone:?} {r} mm at {angle}°: no warning"
        );
        assert!(
            inside as f64 >= 0.95 * n as f64 && d >= 0.98,
            "{side:?} {zone:?} {r} mm at {angle}°: {inside}/{n} inside, Dice {d:.4}"
        );
    }
    // An upper-zone lesion (60 mm, lateral-posterior), warned about. It reaches the apex, whose slices (aerated section under a quarter of the
    // largest) got no additions at all: 53 % inside, Dice 0.961, lung -2.1 %. The second
    // outline (a side already in doubt, bounded by the ribs) now outlines the slices above the
    // widest too: 80.7 %, Dice 0.977, lung -0.03 % (full size 80.9 %); with the spurs of single
    // walks dropped: 80.4 %, Dice 0.978, lung -0.2 %. The lateral part lay outside every hull
    // (the apex slices are narrower) and the walks from the hull go to the skin in front or
    // behind; the rib cage of the slice now bounds it too above the widest slice (seen from
    // the side or the front): 87.4 %, Dice 0.982, lung +0.36 % (full size 86.7 %); also from
    // behind beyond the paravertebral band: 89.2 %, Dice 0.983, lung +0.51 %. Tried: the
    // hull of the slices just below as well (5 / 10 / 20 mm: 85 / 88 / 93 % inside, but every
    // placement's lung +1.4 to +5 %; again this session: the same). The rib cage's depth from
    // the nearest slice with ribs (not the deepest over +-20 mm), 5 mm inside it: 95.9 %, Dice
    // 0.985, lung +1.13 %.
    // Left middle anterior (70 mm, against the heart): 94.1 % inside, Dice 0.964, lung +2.27 %;
    // walks no deeper than the pleura seen nearby: 96.3 %, lung +2.68 %; the second outline
    // only around the cut's slices (a stray cut at the heart's border in a basal slice no
    // longer widens it): Dice 0.975, lung +1.64 %; the rib cage above the widest slice:
    // 97.2 %, Dice 0.976, lung +1.75 %; the rib cage from the nearest slice: 98.5 %, Dice
    // 0.977, lung +1.96 % (slivers of posterior chest wall).
    let (ph, a) = one_subpleural_lesion(Side::Left, Zone::Middle, 70.0, 130.0);
    assert!(has_warning(&a.result, "segmentation-doubt"));
    assert_inside(&ph, &a, 0.95, "left anterior 70 mm");
    let d = dice(&a.lungs.data, &ph.truth.lungs, 2);
    let lung = a.result.lungs.whole.volume_ml;
    let truth = ph.truth.total_lung_ml();
    assert!(
        d >= 0.97 && rel_err(lung, truth) <= 0.02,
        "left Dice {d:.4}, lung {lung:.0} vs {truth:.0} mL"
    );
    let (ph, a) = one_subpleural_lesion(Side::Right, Zone::Upper, 60.0, 60.0);
    assert!(has_warning(&a.result, "segmentation-doubt"));
    assert_inside(&ph, &a, 0.95, "upper zone 60 mm");
    assert!(dice(&a.lungs.data, &ph.truth.lungs, 1) >= 0.98);
}

#[test]
fn subcutaneous_emphysema_does_not_open_the_chest() {
    // Gas streaks in the anterior-lateral subcutaneous fat (the phantom's
    // `subcutaneous_emphysema`, -880 HU) leave under 8 mm of tissue between gas and lung in some
    // slices; the body's opening (which cuts the table off) opened the chest wall there and the
    // lungs of 6 slices were taken for outside air, silently (lung volume -5.7 %, Dice 0.966 /
    // 0.971). Slices whose filled body dips below 0.9 x both neighbours now get the body both
    // neighbours agree on: Dice 0.999 / 0.998, lung +0.2 %. (Full size: -4.2 -> -0.5 %, four
    // working slices of the left lung still lost, and the "lungs vanish" doubt says so.)
    let ph = phantom("subcutaneous-emphysema");
    let a = run(&ph);
    let (dr, dl) = dice_both(&a, &ph);
    assert!(dr >= 0.99 && dl >= 0.99, "dice right {dr:.4} left {dl:.4}");
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
    let lost = (1..=2u8).any(|k| dice(&a.lungs.data, &ph.truth.lungs, k) < 0.99);
    let warned = has_doubt(&a.result, |m| m.contains("vanish"));
    assert!(
        !lost || warned,
        "lung lost without a warning: {:?}",
        a.result.warnings
    );
    let (v, t) = (a.result.lungs.whole.volume_ml, ph.truth.total_lung_ml());
    // The bound (measured +1.2 %, as on the healthy phantom at full size).
    assert!((v / t - 1.0).abs() <= 0.02, "lung {v:.0} mL vs {t:.0}");
}

fn split_warned(r: &VisitResult) -> bool {
    has_doubt(r, |m| m.contains("split between"))
}

#[test]
fn collapsed_lung_is_reported() {
    let ph = phantom("collapsed-right");
    let a = run(&ph);
    assert!(
        has_warning(&a.result, "segmentation-doubt"),
        "{:?}",
        a.result.warnings
    );
    assert!(a.result.lungs.right.volume_ml < 0.05 * a.result.lungs.left.volume_ml);
    assert!(dice(&a.lungs.data, &ph.truth.lungs, 2) >= 0.95);
}

#[test]
fn touching_lungs_are_split() {
    // Half grid and full size: voxels went to the straight-line nearest eroded core, and the
    // left core, reaching lower under the lower dome, took the paravertebral base of the right
    // lung (full size Dice 0.950 / 0.948; the half grid hid it at 0.987). Geodesic through the
    // lung: 0.980 / 0.980 full size, 0.989 half grid. With the phantom's cavity narrowing with
    // its lungs, the first cores that split were one across both lungs (Dice 0.78 / 0.64); the
    // cores must now lie on their own sides: 0.983 / 0.983 full size, 0.992 half grid.
    for full in [false, true] {
        let spec = PhantomSpec::preset("lungs-touching").expect("preset");
        let ph = try_generate(&if full { spec } else { half_grid(spec) }).expect("phantom");
        let a = run(&ph);
        let (dr, dl) = dice_both(&a, &ph);
        assert!(
            dr >= 0.975 && dl >= 0.975,
            "full size {full}: dice right {dr:.4} left {dl:.4}"
        );
    }
}

#[test]
fn thick_slices_and_off_centre_patients() {
    for name in ["thick-slices", "off-centre"] {
        let ph = phantom(name);
        let a = run(&ph);
        let (dr, dl) = dice_both(&a, &ph);
        assert!(
            dr >= 0.95 && dl >= 0.95,
            "{name}: dice right {dr:.4} left {dl:.4}"
        );
        if name == "thick-slices" {
            assert!(has_warning(&a.result, "thick-slices"));
            // Small vessels smeared through a thick slab are GGO-range streaks without a dense
            // core; the slice-scaled GGO opening keeps them out (was +700 % on this grid).
            let (g, t) = (a.result.lungs.whole.ggo_ml, ph.truth.ggo_ml);
            assert!(rel_err(g, t) <= 0.15, "{name}: GGO {g:.1} vs {t:.1} mL");
        }
    }
}

#[test]
fn gas_under_the_dome_of_10_mm_slices_is_not_lung() {
    // The thick-slices preset on the half grid: 10 mm slices, thicker than the diaphragm, so
    // the stomach's gas touches the left lung base in the slice above and joined its 3-D
    // component: left Dice 0.9765, lung +2.98 % (+58 mL in five basal slices, median -995 HU).
    // Pure-air in-plane pieces are dropped: left 0.9881, lung +1.85 %.
    let ph = try_generate(&half_grid(
        PhantomSpec::preset("thick-slices").expect("preset"),
    ))
    .expect("phantom");
    let a = run(&ph);
    let (dr, dl) = dice_both(&a, &ph);
    assert!(
        dr >= 0.985 && dl >= 0.985,
        "dice right {dr:.4} left {dl:.4}"
    );
    let (v, t) = (a.result.lungs.whole.volume_ml, ph.truth.total_lung_ml());
    assert!(rel_err(v, t) <= 0.02, "lung {v:.0} vs {t:.0} mL");
}

#[test]
fn a_single_slice_is_analysed_in_2d() {
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
    let a = analyze(
        &CpuBackend::new(),
        &vol,
        &ph.meta,
        &[],
        &AnalysisConfig::default(),
        &|_, _| {},
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(has_warning(&a.result, "single-slice"));
    let (dr, dl) = (
        dice(&a.lungs.data, &truth, 1),
        dice(&a.lungs.data, &truth, 2),
    );
    assert!(dr >= 0.95 && dl >= 0.95, "dice right {dr:.4} left {dl:.4}");
}

#[test]
fn result_serialises_and_qc_pngs_have_true_aspect() {
    let ph = try_generate(&PhantomSpec::small()).unwrap_or_else(|e| panic!("{e}"));
    let mut meta = ph.meta.clone();
    meta.patient_age_years = Some(9.0);
    meta.contrast_agent = Some("IOPAMIDOL".into());
    let a = analyze(
        &CpuBackend::new(),
        &ph.volume,
        &meta,
        &[],
        &AnalysisConfig::default(),
        &|_, _| {},
    )
    .unwrap_or_else(|e| panic!("{e}"));
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
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    if d.is_dir() {
        Some(d)
    } else {
        eprintln!("skipped: ../shared/data not found");
        None
    }
}

fn analyze_path(p: &Path) -> Analysis {
    let s = ildtrack_dicom::load(p, &ildtrack_dicom::LoadOptions::default())
        .unwrap_or_else(|e| panic!("load {}: {e}", p.display()));
    analyze(
        &CpuBackend::new(),
        &s.volume,
        &s.meta,
        &s.warnings,
        &AnalysisConfig::default(),
        &|_, _| {},
    )
    .unwrap_or_else(|e| panic!("analyze {}: {e}", p.display()))
}

#[test]
fn lidc_slice_is_close_to_the_lungmask_reference() {
    let Some(d) = data_dir() else { return };
    let a = analyze_path(&d.join("lungmask-slice/lidc-slice.dcm"));
    let count = |v: u8| a.lungs.data.iter().filter(|&&x| x == v).count() as f64;
    let (r, l) = (count(1), count(2));
    // lungmask R231: right 32,376 px, left 18,268 px.
    assert!(rel_err(r, 32376.0) <= 0.05, "right {r} px vs 32376");
    assert!(rel_err(l, 18268.0) <= 0.05, "left {l} px vs 18268");
    assert!(
        rel_err(r + l, 50644.0) <= 0.06,
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
            rel_err(va, vb) <= 0.01,
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
        // The sharp kernel (35-50 HU of noise) is denoised for the classes and warned about;
        // its GGO comes within 2 points of the soft kernel's (was 0.8 and 2.3 points below).
        assert!(has_warning(&a.result, "noisy-scan") && !has_warning(&b.result, "noisy-scan"));
        let (ga, gb) = (wa.ggo_pct, wb.ggo_pct);
        assert!(
            (ga - gb).abs() < 2.0,
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
    // A058062's prior "axial" slice is at the level of the kidneys: the transverse colon holds
    // ~20 mL-equivalent of gas with a lung-like mean (-882 HU on the working grid) that used to be
    // labelled left lung; most of its blocks are pure air (<= -960 HU), which lung's are not.
    // The partial-volume rest (4.3 mL "lung", 7 % GGO) lies outside the rib cage's hull and is
    // dropped too, with an `air-outside-rib-cage` warning.
    let Some(d) = data_dir() else { return };
    let a = analyze_path(&d.join("covid-ny-sbu/A058062/axial/19001231-084.dcm"));
    let v = a.result.lungs.whole.volume_ml;
    assert!(v < 0.5, "{v:.1} mL of 'lung' in an abdominal slice");
    assert!(has_warning(&a.result, "air-outside-rib-cage"));
    // And it says no lung was found (it said "only one lung found (left lung 0 mL)").
    assert!(
        has_doubt(&a.result, |m| m.starts_with("no lung found")),
        "{:?}",
        a.result.warnings
    );
}

#[test]
fn organs_cut_by_one_slice_are_not_consolidation() {
    // Single slices at the liver dome and the spleen: the wall-vs-mediastinum rule took the wall
    // side of the organ into the lung (straight-edged wedges) and counted it as consolidation
    // (A098752 8.5 % and 5.5 %, A067967 13.3 %). The wedge is a small share (0.01-0.14) of the
    // organ region it was cut from; consolidation 0.26-1.0 of its region stays.
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
    // The follow-up of A046441 keeps its consolidation.
    let a = analyze_path(&d.join("covid-ny-sbu/A046441/axial/19010101-23.dcm"));
    let c = a.result.lungs.whole.consolidation_pct;
    assert!(c > 5.0, "A046441 follow-up consolidation {c:.1} %");
}

#[test]
fn a_lung_broken_up_by_dense_ground_glass_is_still_found() {
    // A046441's follow-up slice: severe diffuse disease leaves the left lung's aerated part in
    // fragments joined by -400..-200 HU ground glass; each fragment alone is below the component
    // size, so the left lung used to be missing (0 mL).
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
    // A0001 (5 mm slices, standard kernel B): lungs without diffuse disease. Vessel partial volume
    // used to give 7 % GGO here.
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
