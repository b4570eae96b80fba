//! Measuring a segmentation against the phantom's truth, and the lesion placements the
//! segmentation is judged on (golden test, accuracy tests, `analysis_segmentation_eval`).

use crate::rng::SplitMix;
use crate::spec::{LesionKind, LesionSpec, PhantomSpec, Side, Zone};
use ndarray::Array3;

/// Ten large subpleural consolidations (50–90 mm radius hemispheres against the chest wall,
/// the heart, the spine, the diaphragm and the apex), by name.
pub fn consolidation_placements() -> Vec<(&'static str, LesionSpec)> {
    let c = |side, zone, r, angle, z| {
        LesionSpec::consolidation(side, zone, r)
            .at_angle(angle)
            .with_z(z)
    };
    vec![
        (
            "right-lower-90-anterolateral",
            c(Side::Right, Zone::Lower, 90.0, 50.0, 30.0),
        ),
        (
            "left-lower-80-anterolateral",
            c(Side::Left, Zone::Lower, 80.0, 50.0, 30.0),
        ),
        (
            "right-middle-70-posterior",
            c(Side::Right, Zone::Middle, 70.0, 0.0, 0.0),
        ),
        (
            "right-lower-70-lateral",
            c(Side::Right, Zone::Lower, 70.0, 90.0, 0.0),
        ),
        (
            "left-lower-60-lateral",
            c(Side::Left, Zone::Lower, 60.0, 90.0, 0.0),
        ),
        (
            "right-lower-60-posterior",
            c(Side::Right, Zone::Lower, 60.0, 0.0, 0.0),
        ),
        (
            "left-middle-60-posterior",
            c(Side::Left, Zone::Middle, 60.0, 0.0, 0.0),
        ),
        (
            "left-middle-70-anterior",
            c(Side::Left, Zone::Middle, 70.0, 130.0, 0.0),
        ),
        (
            "right-upper-60-posterolateral",
            c(Side::Right, Zone::Upper, 60.0, 60.0, 0.0),
        ),
        (
            "left-lower-70-posterior",
            c(Side::Left, Zone::Lower, 70.0, 0.0, 0.0),
        ),
    ]
}

/// `n` lesions drawn at random for `seed`, for judging the segmentation over placements nobody
/// chose: side, zone and a position over the whole lung surface (angle 0–360°: posterior,
/// lateral, anterior, and medial against the heart, aorta, hilum and spine; ±30 mm along z
/// from the zone's centre, reaching the apex and the diaphragm), 85 % on the pleura and 15 %
/// inside the lung; radius 10–90 mm (log-uniform); 70 % consolidation (−200…+60 HU), 30 %
/// ground glass (−700…−300 HU). Names carry the seed and index. Deterministic for a seed.
pub fn random_placements(seed: u64, n: usize) -> Vec<(String, LesionSpec)> {
    let mut r = SplitMix::new(seed ^ 0x0005_EED0_F1E5_10A5);
    (0..n)
        .map(|i| {
            let side = if r.uniform() < 0.5 {
                Side::Right
            } else {
                Side::Left
            };
            let zone =
                [Zone::Upper, Zone::Middle, Zone::Lower][(r.uniform() * 3.0).min(2.0) as usize];
            let radius = (10f64.ln() + r.uniform() * (90f64.ln() - 10f64.ln())).exp();
            let angle = r.range(0.0, 360.0);
            let z = r.range(-30.0, 30.0);
            let subpleural = r.uniform() < 0.85;
            let consolidation = r.uniform() < 0.7;
            let mut l = if consolidation {
                LesionSpec::consolidation(side, zone, radius).with_hu(r.range(-200.0, 60.0))
            } else {
                LesionSpec::ggo(side, zone, radius).with_hu(r.range(-700.0, -300.0))
            }
            .at_angle(angle)
            .with_z(z);
            l.subpleural = subpleural;
            let kind = if l.kind == LesionKind::Consolidation {
                "cons"
            } else {
                "ggo"
            };
            (
                format!(
                    "s{seed}-{i:02}-{kind}-{}-{:?}-{radius:.0}mm-{angle:.0}deg{}",
                    if side == Side::Right { "R" } else { "L" },
                    zone,
                    if subpleural { "" } else { "-core" }
                ),
                l,
            )
        })
        .collect()
}

/// The default phantom on half the grid with `lesion` as its only lesion: how every placement
/// is judged.
pub fn one_lesion(lesion: LesionSpec) -> PhantomSpec {
    let mut spec = half_grid(PhantomSpec::default());
    spec.lesions = vec![lesion];
    spec
}

/// The same anatomy on half the grid in each direction (voxels twice as large): the grid the
/// test suite runs on.
pub fn half_grid(spec: PhantomSpec) -> PhantomSpec {
    let d = spec.dims_zyx;
    let s = spec.spacing_mm;
    spec.with_grid(
        [d[0] / 2, d[1] / 2, d[2] / 2],
        [s[0] * 2.0, s[1] * 2.0, s[2] * 2.0],
    )
}

/// Dice overlap of label `label` between `ours` and `truth` (1 when both are empty).
pub fn dice(ours: &Array3<u8>, truth: &Array3<u8>, label: u8) -> f64 {
    let (mut i, mut a, mut b) = (0u64, 0u64, 0u64);
    for (&o, &t) in ours.iter().zip(truth.iter()) {
        a += u64::from(o == label);
        b += u64::from(t == label);
        i += u64::from(o == label && t == label);
    }
    if a + b == 0 {
        1.0
    } else {
        2.0 * i as f64 / (a + b) as f64
    }
}

/// Voxels of `truth` inside `mask` (non-zero), and all voxels of `truth`.
pub fn inside(truth: &Array3<bool>, mask: &Array3<u8>) -> (u64, u64) {
    truth
        .iter()
        .zip(mask.iter())
        .fold((0, 0), |(i, n), (&c, &m)| {
            (i + u64::from(c && m != 0), n + u64::from(c))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dice_and_inside_count_overlap() {
        let ours = Array3::from_shape_vec((1, 1, 4), vec![1, 1, 0, 2]).expect("shape");
        let truth = Array3::from_shape_vec((1, 1, 4), vec![1, 0, 0, 2]).expect("shape");
        assert!((dice(&ours, &truth, 1) - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(dice(&ours, &truth, 2), 1.0);
        assert_eq!(dice(&ours, &truth, 7), 1.0);
        let t = Array3::from_shape_vec((1, 1, 4), vec![true, true, false, false]).expect("shape");
        assert_eq!(inside(&t, &ours), (2, 2));
        assert_eq!(consolidation_placements().len(), 10);
    }

    #[test]
    fn random_placements_are_deterministic_and_cover_the_lung_surface() {
        let a = random_placements(7, 200);
        assert_eq!(a, random_placements(7, 200));
        assert_ne!(a, random_placements(8, 200));
        let quadrant = |lo: f64, hi: f64| a.iter().any(|(_, l)| (lo..hi).contains(&l.angle_deg));
        assert!(
            quadrant(225.0, 315.0),
            "medial (mediastinal, paravertebral)"
        );
        assert!(
            quadrant(0.0, 45.0) && quadrant(135.0, 225.0),
            "posterior, anterior"
        );
        assert!(
            a.iter()
                .all(|(_, l)| (10.0..=90.0 + 1e-9).contains(&l.radius_mm))
        );
        assert!(
            a.iter().any(|(_, l)| !l.subpleural)
                && a.iter().any(|(_, l)| l.kind == LesionKind::Ggo)
        );
        for (_, l) in &a {
            let ok = match l.kind {
                LesionKind::Consolidation => (-200.0..=60.0).contains(&l.hu),
                _ => (-700.0..=-300.0).contains(&l.hu),
            };
            assert!(ok, "{l:?}");
        }
    }
}
