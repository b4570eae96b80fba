//! Measuring a segmentation against the phantom's truth, and the lesion placements the
//! segmentation is judged on (golden test, accuracy tests, `analysis_segmentation_eval`).

use crate::spec::{LesionSpec, PhantomSpec, Side, Zone};
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
}
