//! Image noise estimate: the high-frequency noise that sharp reconstruction kernels add, which
//! turns normal lung into speckled "ground glass".

use ildtrack_volume::Volume;

/// Soft-tissue range (fat and muscle) whose neighbour differences measure the noise.
const TISSUE_HU: (i16, i16) = (-250, 250);
/// Slices sampled (evenly) for the estimate.
const SAMPLE_SLICES: usize = 24;
/// Fewer neighbour pairs than this give no estimate.
const MIN_PAIRS: u64 = 20_000;

/// Noise SD (HU) from in-plane neighbour differences in soft tissue: for noise of SD σ
/// independent between neighbours, |a − b| has median 0.6745·√2·σ. Edges between fat and
/// muscle are a small share of the pairs and the median ignores them. Correlated noise (smooth
/// kernels) gives a smaller figure, anti-correlated (sharp kernels) a larger one: it measures
/// the pixel-to-pixel noise that makes speckle. `None` without enough soft tissue.
pub fn noise_sd_hu(hu: &Volume<i16>) -> Option<f64> {
    let [nz, ny, nx] = hu.dims_zyx();
    if nx < 2 || nz == 0 {
        return None;
    }
    let step = nz.div_ceil(SAMPLE_SLICES).max(1);
    let mut hist = vec![0u64; 1024];
    let mut pairs = 0u64;
    let (lo, hi) = TISSUE_HU;
    for z in (step / 2..nz).step_by(step) {
        let sl = hu.data.index_axis(ndarray::Axis(0), z);
        for y in 0..ny {
            for x in 0..nx - 1 {
                let (a, b) = (sl[[y, x]], sl[[y, x + 1]]);
                if (lo..=hi).contains(&a) && (lo..=hi).contains(&b) {
                    let d = (a as i32 - b as i32).unsigned_abs() as usize;
                    hist[d.min(1023)] += 1;
                    pairs += 1;
                }
            }
        }
    }
    if pairs < MIN_PAIRS {
        return None;
    }
    // Median |a - b| (interpolated within its 1-HU bin).
    let half = pairs as f64 / 2.0;
    let mut acc = 0.0;
    for (d, &c) in hist.iter().enumerate() {
        if c > 0 && acc + c as f64 >= half {
            let med = d as f64 + (half - acc) / c as f64 - 0.5;
            return Some(med.max(0.0) / (0.6745 * std::f64::consts::SQRT_2));
        }
        acc += c as f64;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn white_noise_sd_is_recovered() {
        // 20 HU tissue with Gaussian noise of SD 30 and 80 HU (Box-Muller from an LCG).
        for sd in [30.0f64, 80.0] {
            let mut s: u64 = 12345;
            let mut uni = || {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 11) as f64 + 0.5) / (1u64 << 53) as f64
            };
            let data = ndarray::Array3::from_shape_fn((8, 64, 64), |_| {
                let g = (-2.0 * uni().ln()).sqrt() * (2.0 * std::f64::consts::PI * uni()).cos();
                (20.0 + sd * g).round() as i16
            });
            let v = Volume::new(data, Default::default());
            let est = noise_sd_hu(&v).expect("estimate");
            assert!((est - sd).abs() < 0.1 * sd, "sd {sd}: estimate {est:.1}");
        }
        let air = Volume::new(
            ndarray::Array3::from_elem((4, 32, 32), -1000i16),
            Default::default(),
        );
        assert!(noise_sd_hu(&air).is_none());
    }
}
