//! Region metrics from 1-HU histograms and density-class counts (exact, no sampling).
//!
//! Definitions match pyradiomics' first-order features on the same voxels: population
//! moments (divide by N), skewness `m3 / m2^1.5`, kurtosis `m4 / m2²` (we report the *excess*,
//! `− 3`), percentiles as numpy's linear interpolation between order statistics.

use ildtrack_model::visit::{Metrics, Thresholds, extent_score};

/// Density class codes written to `classes.nii.gz` and counted per region (defined with the
/// output schema).
pub use ildtrack_model::class;

/// Metrics of a region given its HU histogram (`hist[i]` counts `HU == lo_hu + i`) and its
/// voxel counts per class code.
pub fn region_metrics(
    hist: &[u64],
    lo_hu: i32,
    classes: &[u64],
    voxel_ml: f64,
    t: &Thresholds,
) -> Metrics {
    let n: u64 = hist.iter().sum();
    let mut m = Metrics {
        voxel_count: n,
        volume_ml: n as f64 * voxel_ml,
        ..Default::default()
    };
    if n == 0 {
        return m;
    }
    let nf = n as f64;
    let hu = |i: usize| lo_hu as f64 + i as f64;
    let mean = hist
        .iter()
        .enumerate()
        .map(|(i, &c)| c as f64 * hu(i))
        .sum::<f64>()
        / nf;
    let (mut m2, mut m3, mut m4) = (0.0, 0.0, 0.0);
    for (i, &c) in hist.iter().enumerate() {
        if c == 0 {
            continue;
        }
        let d = hu(i) - mean;
        let d2 = d * d;
        m2 += c as f64 * d2;
        m3 += c as f64 * d2 * d;
        m4 += c as f64 * d2 * d2;
    }
    m2 /= nf;
    m3 /= nf;
    m4 /= nf;
    m.mean_hu = Some(mean);
    m.sd_hu = Some(m2.sqrt());
    if m2 > 0.0 {
        m.skewness = Some(m3 / m2.powf(1.5));
        m.kurtosis_excess = Some(m4 / (m2 * m2) - 3.0);
    }
    m.p10_hu = percentile(hist, lo_hu, 10.0);
    m.p15_hu = percentile(hist, lo_hu, 15.0);
    m.p50_hu = percentile(hist, lo_hu, 50.0);
    m.p85_hu = percentile(hist, lo_hu, 85.0);
    m.p90_hu = percentile(hist, lo_hu, 90.0);
    let count_where = |f: &dyn Fn(i32) -> bool| -> u64 {
        hist.iter()
            .enumerate()
            .filter(|(i, _)| f(lo_hu + *i as i32))
            .map(|(_, &c)| c)
            .sum()
    };
    m.laa950_pct = 100.0 * count_where(&|v| v < t.laa_hu) as f64 / nf;
    m.haa_pct = 100.0 * count_where(&|v| v >= t.haa_lo_hu && v <= t.haa_hi_hu) as f64 / nf;
    let cls = |c: u8| classes.get(c as usize).copied().unwrap_or(0) as f64;
    m.ggo_ml = cls(class::GGO) * voxel_ml;
    m.ggo_pct = 100.0 * cls(class::GGO) / nf;
    m.consolidation_ml = cls(class::CONSOLIDATION) * voxel_ml;
    m.consolidation_pct = 100.0 * cls(class::CONSOLIDATION) / nf;
    m.affected_ml = m.ggo_ml + m.consolidation_ml;
    m.affected_pct = m.ggo_pct + m.consolidation_pct;
    m.vessel_ml = cls(class::VESSEL_DENSE) * voxel_ml;
    m.extent_score = extent_score(m.affected_pct);
    m
}

/// numpy's default (linear) percentile of the voxel values described by `hist`.
pub fn percentile(hist: &[u64], lo_hu: i32, q: f64) -> Option<f64> {
    let n: u64 = hist.iter().sum();
    if n == 0 {
        return None;
    }
    let pos = q / 100.0 * (n - 1) as f64;
    let k = pos.floor() as u64;
    let frac = pos - k as f64;
    let a = order_statistic(hist, k)?;
    let b = if frac > 0.0 {
        order_statistic(hist, (k + 1).min(n - 1))?
    } else {
        a
    };
    Some(lo_hu as f64 + a as f64 + frac * (b as f64 - a as f64))
}

/// Bin index holding the `k`-th smallest value (0-based).
fn order_statistic(hist: &[u64], k: u64) -> Option<usize> {
    let mut cum = 0u64;
    for (i, &c) in hist.iter().enumerate() {
        cum += c;
        if cum > k {
            return Some(i);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference statistics computed directly on the sample.
    fn direct(values: &[i32]) -> (f64, f64, f64, f64) {
        let n = values.len() as f64;
        let mean = values.iter().map(|&v| v as f64).sum::<f64>() / n;
        let m = |p: i32| {
            values
                .iter()
                .map(|&v| (v as f64 - mean).powi(p))
                .sum::<f64>()
                / n
        };
        (
            mean,
            m(2).sqrt(),
            m(3) / m(2).powf(1.5),
            m(4) / m(2).powi(2) - 3.0,
        )
    }

    fn np_percentile(values: &[i32], q: f64) -> f64 {
        let mut v: Vec<f64> = values.iter().map(|&x| x as f64).collect();
        v.sort_by(|a, b| a.total_cmp(b));
        let pos = q / 100.0 * (v.len() - 1) as f64;
        let k = pos.floor() as usize;
        let f = pos - k as f64;
        if k + 1 < v.len() {
            v[k] + f * (v[k + 1] - v[k])
        } else {
            v[k]
        }
    }

    #[test]
    fn histogram_stats_equal_direct_stats() {
        let values: Vec<i32> = (0..997)
            .map(|i| ((i * 7919) % 1301) - 1000 + (i % 3) * 40)
            .collect();
        let lo = -1024;
        let mut hist = vec![0u64; 2000];
        for &v in &values {
            hist[(v - lo) as usize] += 1;
        }
        let m = region_metrics(&hist, lo, &[0, 0, 0, 10, 5, 2], 0.5, &Thresholds::default());
        let (mean, sd, skew, kurt) = direct(&values);
        assert!((m.mean_hu.expect("mean_hu") - mean).abs() < 1e-9);
        assert!((m.sd_hu.expect("sd_hu") - sd).abs() < 1e-9);
        assert!((m.skewness.expect("skewness") - skew).abs() < 1e-9);
        assert!((m.kurtosis_excess.expect("kurtosis_excess") - kurt).abs() < 1e-9);
        for (q, got) in [
            (10.0, m.p10_hu),
            (15.0, m.p15_hu),
            (50.0, m.p50_hu),
            (85.0, m.p85_hu),
            (90.0, m.p90_hu),
        ] {
            assert!(
                (got.expect("percentile") - np_percentile(&values, q)).abs() < 1e-9,
                "p{q}"
            );
        }
        assert_eq!(m.voxel_count, 997);
        assert!((m.ggo_ml - 5.0).abs() < 1e-12 && (m.consolidation_ml - 2.5).abs() < 1e-12);
        assert!((m.vessel_ml - 1.0).abs() < 1e-12);
        let laa = values.iter().filter(|&&v| v < -950).count() as f64 / 997.0 * 100.0;
        assert!((m.laa950_pct - laa).abs() < 1e-9);
    }

    #[test]
    fn empty_region_has_no_statistics() {
        let m = region_metrics(&[0; 10], -5, &[0; 6], 1.0, &Thresholds::default());
        assert_eq!(m.voxel_count, 0);
        assert!(m.mean_hu.is_none() && m.p50_hu.is_none());
        assert_eq!(m.extent_score, 0);
    }
}
