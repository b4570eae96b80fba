//! Kernel harmonization: band-energy normalisation to a soft reference profile
//! (Gallardo-Estrella et al., Eur Radiol 2016, doi 10.1007/s00330-015-3824-y), training-free.
//!
//! Each slice is split into frequency bands by cascaded in-plane Gaussians (band `k` =
//! `G(σ_{k-1}) * HU − G(σ_k) * HU`, `σ_{-1} = 0`, σ of [`BAND_SIGMAS_MM`]; what is coarser than
//! the last σ — the mean density of any region larger than a few mm — is never changed). The
//! robust SD of every band is measured in homogeneous tissue every chest CT has (subcutaneous
//! and mediastinal fat, muscle, blood in the heart and aorta), where a band holds only what the
//! reconstruction kernel and the dose put there. Each band is then scaled by
//! `min(1, reference / measured)` and the bands recomposed: a sharp kernel's fine bands are
//! brought down to the soft reference's; nothing is ever amplified (noise that a kernel did not
//! put in cannot be put back faithfully). One [`Backend::gaussian_mix`] does the decomposition,
//! the gains and the recomposition.
//!
//! The reference profile ([`REFERENCE_BAND_SD_HU`]) was measured on the two soft-kernel scans
//! of the real kernel pairs (see `docs/HARMONIZATION.md` and the `analysis_harmonization`
//! example, which prints these figures for every real series).

use crate::error::AnalysisError;
use crate::noise;
use ildtrack_compute::Backend;
use ildtrack_model::visit::{Harmonization, HarmonizationStatus};
use ildtrack_volume::{OUTSIDE_FOV_HU, Volume};
use ndarray::{Array3, Axis};
use serde::{Deserialize, Serialize};

/// When to harmonize (`harmonize = "off" | "auto" | "on"` in the settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum HarmonizeMode {
    /// Never: only the scan's own metrics.
    Off,
    /// Where the scan measures sharper or noisier than the reference profile (any band above
    /// [`AUTO_RATIO`] × the reference), whatever its kernel is called.
    #[default]
    Auto,
    /// Wherever the bands can be measured (bands already at or under the reference keep gain 1).
    On,
}

impl HarmonizeMode {
    pub fn name(self) -> &'static str {
        match self {
            HarmonizeMode::Off => "off",
            HarmonizeMode::Auto => "auto",
            HarmonizeMode::On => "on",
        }
    }
}

/// Cumulative in-plane σ (mm) of the band edges. The finest band reaches the voxel; 2 mm is
/// about 0.08 cycles/mm, below which the kernel pairs' transfer functions barely differ, and
/// where the σ of the blurs (and their cost) would grow.
pub const BAND_SIGMAS_MM: [f64; 3] = [0.5, 1.0, 2.0];

/// The soft reference profile: robust SD (HU) of each band of [`BAND_SIGMAS_MM`] in
/// homogeneous tissue, the geometric mean of the two soft-kernel scans of the real kernel
/// pairs (Philips "B" of A0001 and Siemens B40f of A0002, each measured by [`measure`]; the
/// figures of each are in `docs/HARMONIZATION.md`).
pub const REFERENCE_BAND_SD_HU: [f64; 3] = [5.03, 5.45, 7.30];

/// `auto` harmonizes when a band's SD exceeds the reference by more than this factor. The two
/// soft scans the reference comes from lie at 0.83–1.20 × it, band by band (see
/// `docs/HARMONIZATION.md`); the margin above that keeps soft kernels of ordinary dose
/// untouched, while the sharp kernels of the pairs measure 1.1–6.4 × (finest band 5.7–6.4 ×).
pub const AUTO_RATIO: f64 = 1.5;

/// Slices sampled (evenly) for the band measurement.
const SAMPLE_SLICES: usize = 6;
/// Fewer homogeneous-tissue voxels than this: no measurement (a 512 × 512 chest slice has
/// 30 000 – 80 000).
pub const MIN_TISSUE_VOXELS: u64 = 20_000;
/// Homogeneous tissue: voxels whose coarsest stage (`G(2 mm) * HU`) lies in the fat or in the
/// muscle / blood range. The mixtures at their borders fall between the two ranges and are left
/// out, so edges (and the band energy of edges) barely enter.
const FAT_HU: (f32, f32) = (-150.0, -50.0);
const SOFT_HU: (f32, f32) = (0.0, 100.0);
/// Bands are measured scaled by this factor (the backend rounds to whole HU; ×16 keeps
/// 1/16 HU of resolution for bands of a few HU).
const BAND_SCALE: f32 = 16.0;

/// Incremental σ of each blur stage of [`BAND_SIGMAS_MM`] (Gaussians compose in quadrature).
pub fn stage_sigmas_mm() -> Vec<f64> {
    let mut prev = 0.0f64;
    BAND_SIGMAS_MM
        .iter()
        .map(|&s| {
            let inc = (s * s - prev * prev).max(0.0).sqrt();
            prev = s;
            inc
        })
        .collect()
}

/// `gaussian_mix` weights that scale band `k` by `gains[k]` and keep the coarse rest:
/// `Σ g_k (x_k − x_{k+1}) + x_n`.
pub fn mix_weights(gains: &[f64]) -> Vec<f32> {
    let n = gains.len();
    let mut w = vec![0.0f64; n + 1];
    for (k, &g) in gains.iter().enumerate() {
        w[k] += g;
        w[k + 1] -= g;
    }
    w[n] += 1.0;
    w.into_iter().map(|v| v as f32).collect()
}

/// What [`measure`] found on a scan.
#[derive(Debug, Clone)]
pub struct Measurement {
    /// Robust SD (HU) of each band in homogeneous tissue.
    pub band_sd_hu: Vec<f64>,
    pub tissue_voxels: u64,
    /// The sampled slices (host copy), for the noise before and after.
    sample: Volume<i16>,
    /// Their blur stages x_1..x_n × [`BAND_SCALE`].
    stages: Vec<Array3<i16>>,
}

/// Every `step`-th slice (at most [`SAMPLE_SLICES`]) as a small volume, cropped in-plane to
/// the box of what is denser than air (the body, table included) with a margin wider than the
/// coarsest blur's reach: the air around the body holds no tissue to measure, and costs.
fn sample_slices(hu: &Volume<i16>) -> Volume<i16> {
    let [nz, ny, nx] = hu.dims_zyx();
    let step = nz.div_ceil(SAMPLE_SLICES).max(1);
    let zs: Vec<usize> = (step / 2..nz).step_by(step).collect();
    let data = hu.data.select(Axis(0), &zs);
    let (mut y0, mut y1, mut x0, mut x1) = (ny, 0, nx, 0);
    for sl in data.outer_iter() {
        for (y, row) in sl.outer_iter().enumerate() {
            let first = row.iter().position(|&v| v > BODY_HU);
            let last = row.iter().rposition(|&v| v > BODY_HU);
            if let (Some(a), Some(b)) = (first, last) {
                y0 = y0.min(y);
                y1 = y1.max(y + 1);
                x0 = x0.min(a);
                x1 = x1.max(b + 1);
            }
        }
    }
    if y1 <= y0 {
        return hu.with_data(data);
    }
    let sp = hu.geometry.spacing_mm;
    let reach = |s: f64| (CROP_MARGIN_MM / s).ceil() as usize;
    let (my, mx) = (reach(sp[1]), reach(sp[2]));
    let (y0, y1) = (y0.saturating_sub(my), (y1 + my).min(ny));
    let (x0, x1) = (x0.saturating_sub(mx), (x1 + mx).min(nx));
    let data = data.slice(ndarray::s![.., y0..y1, x0..x1]).to_owned();
    hu.with_data(data)
}

/// Denser than this is body (or table) for the in-plane crop of the sampled slices.
const BODY_HU: i16 = -500;
/// The crop's margin: beyond 3 σ of the coarsest band edge.
const CROP_MARGIN_MM: f64 = 8.0;

/// Robust SD (`median |v| / 0.6745`) of zero-mean values given × [`BAND_SCALE`].
fn robust_sd(scaled: impl Iterator<Item = i32>) -> f64 {
    let mut hist = vec![0u64; 1 << 16];
    let mut n = 0u64;
    for v in scaled {
        hist[(v.unsigned_abs() as usize).min((1 << 16) - 1)] += 1;
        n += 1;
    }
    let half = n as f64 / 2.0;
    let mut acc = 0.0;
    for (d, &c) in hist.iter().enumerate() {
        if c > 0 && acc + c as f64 >= half {
            // Interpolated inside the bin of |v|, as `noise_sd_hu` does.
            let med = (d as f64 + (half - acc) / c as f64 - 0.5).max(0.0);
            return med / BAND_SCALE as f64 / 0.6745;
        }
        acc += c as f64;
    }
    0.0
}

/// Measures the band SDs of `hu` in homogeneous tissue on a few evenly spaced slices.
/// `Ok(None)` when there is too little such tissue (a lung-only crop, a tiny field of view).
pub fn measure<B: Backend>(b: &B, hu: &Volume<i16>) -> Result<Option<Measurement>, AnalysisError> {
    let sample = sample_slices(hu);
    if sample.data.is_empty() {
        return Ok(None);
    }
    let spacing = hu.geometry.spacing_mm;
    let sig = stage_sigmas_mm();
    let n = sig.len();
    let h = b.upload_i16(sample.data.view())?;
    // Every blur stage x_k (k ≥ 1) × BAND_SCALE (the backend rounds to whole units: 1/16 HU
    // here); x_0 is the sample itself.
    let stages = b
        .gaussian_stages(&h, &sig, BAND_SCALE, spacing)?
        .iter()
        .map(|s| b.download_i16(s))
        .collect::<Result<Vec<Array3<i16>>, _>>()?;
    drop(h);
    let coarse = &stages[n - 1];
    let in_range = |v: f32, r: (f32, f32)| v >= r.0 && v <= r.1;
    let mask: Vec<bool> = coarse
        .iter()
        .zip(sample.data.iter())
        .map(|(&c, &raw)| {
            let c = c as f32 / BAND_SCALE;
            raw != OUTSIDE_FOV_HU && (in_range(c, FAT_HU) || in_range(c, SOFT_HU))
        })
        .collect();
    let tissue_voxels = mask.iter().filter(|&&m| m).count() as u64;
    if tissue_voxels < MIN_TISSUE_VOXELS {
        return Ok(None);
    }
    let scale = BAND_SCALE as i32;
    let stage = |k: usize, i: usize| -> i32 {
        if k == 0 {
            sample.data.as_slice().map_or(0, |d| d[i] as i32 * scale)
        } else {
            stages[k - 1].as_slice().map_or(0, |d| d[i] as i32)
        }
    };
    let band_sd_hu = (0..n)
        .map(|k| {
            robust_sd(
                mask.iter()
                    .enumerate()
                    .filter(|&(_, &m)| m)
                    .map(|(i, _)| stage(k, i) - stage(k + 1, i)),
            )
        })
        .collect();
    Ok(Some(Measurement {
        band_sd_hu,
        tissue_voxels,
        sample,
        stages,
    }))
}

impl Measurement {
    /// The sampled slices harmonized with `weights` (from the stages already measured: the
    /// same sum `gaussian_mix` forms, to 1/16 HU per stage), for the noise after.
    fn mixed(&self, weights: &[f32]) -> Volume<i16> {
        let mut acc: Array3<f32> = self.sample.data.mapv(|v| {
            weights[0]
                * if v == OUTSIDE_FOV_HU {
                    -1024.0
                } else {
                    v as f32
                }
        });
        for (st, &w) in self.stages.iter().zip(&weights[1..]) {
            ndarray::Zip::from(&mut acc)
                .and(st)
                .for_each(|a, &x| *a += w * x as f32 / BAND_SCALE);
        }
        let data = ndarray::Zip::from(&acc)
            .and(&self.sample.data)
            .map_collect(|&a, &raw| {
                if raw == OUTSIDE_FOV_HU {
                    OUTSIDE_FOV_HU
                } else {
                    a.round().clamp(-32767.0, 32767.0) as i16
                }
            });
        self.sample.with_data(data)
    }
}

/// The decision for one scan: the record for `visit.json`, and the `gaussian_mix` weights
/// where harmonization is to be applied.
pub struct Plan {
    pub record: Harmonization,
    pub weights: Option<Vec<f32>>,
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// Measures `hu` and decides (see [`HarmonizeMode`]); with `Off` nothing is measured.
pub fn plan<B: Backend>(
    b: &B,
    hu: &Volume<i16>,
    mode: HarmonizeMode,
) -> Result<Plan, AnalysisError> {
    let mut record = Harmonization {
        mode: mode.name().to_string(),
        status: HarmonizationStatus::Off,
        reason: String::new(),
        band_sigmas_mm: BAND_SIGMAS_MM.to_vec(),
        reference_band_sd_hu: REFERENCE_BAND_SD_HU.to_vec(),
        measured_band_sd_hu: Vec::new(),
        gains: Vec::new(),
        tissue_voxels: 0,
        noise_before_hu: None,
        noise_after_hu: None,
        lungs: None,
        histogram: None,
    };
    if mode == HarmonizeMode::Off {
        record.reason = "harmonize = \"off\"".into();
        return Ok(Plan {
            record,
            weights: None,
        });
    }
    let Some(m) = measure(b, hu)? else {
        record.status = HarmonizationStatus::Unavailable;
        record.reason = format!(
            "fewer than {MIN_TISSUE_VOXELS} voxels of homogeneous fat, muscle or blood on the \
             sampled slices: the kernel's band profile cannot be measured"
        );
        return Ok(Plan {
            record,
            weights: None,
        });
    };
    record.tissue_voxels = m.tissue_voxels;
    record.measured_band_sd_hu = m.band_sd_hu.iter().map(|&v| round2(v)).collect();
    record.noise_before_hu = noise::noise_sd_hu(&m.sample).map(|v| (v * 10.0).round() / 10.0);
    let ratios: Vec<f64> = m
        .band_sd_hu
        .iter()
        .zip(REFERENCE_BAND_SD_HU)
        .map(|(&s, r)| s / r)
        .collect();
    let ratio_text = ratios
        .iter()
        .map(|r| format!("{r:.2}"))
        .collect::<Vec<_>>()
        .join(" / ");
    let worst = ratios.iter().copied().fold(0.0f64, f64::max);
    if mode == HarmonizeMode::Auto && worst <= AUTO_RATIO {
        record.status = HarmonizationStatus::NotNeeded;
        record.reason = format!(
            "band SDs {ratio_text} × the soft reference: none above {AUTO_RATIO}, the scan is \
             as soft as the reference"
        );
        return Ok(Plan {
            record,
            weights: None,
        });
    }
    let gains: Vec<f64> = ratios
        .iter()
        .map(|&r| if r > 1.0 { 1.0 / r } else { 1.0 })
        .collect();
    let weights = mix_weights(&gains);
    // Noise after, on the same sampled slices.
    record.noise_after_hu =
        noise::noise_sd_hu(&m.mixed(&weights)).map(|v| (v * 10.0).round() / 10.0);
    record.status = HarmonizationStatus::Applied;
    record.reason = format!("band SDs {ratio_text} × the soft reference");
    record.gains = gains
        .iter()
        .map(|&g| (g * 1000.0).round() / 1000.0)
        .collect();
    Ok(Plan {
        record,
        weights: Some(weights),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ildtrack_compute::CpuBackend;

    /// Muscle-like tissue (40 HU) with white noise of `sd` HU on 0.8 mm pixels.
    fn tissue(sd: f64) -> Volume<i16> {
        let mut s: u64 = 99;
        let mut uni = || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        };
        let data = Array3::from_shape_fn((4, 160, 160), |_| {
            let g = (-2.0 * uni().ln()).sqrt() * (2.0 * std::f64::consts::PI * uni()).cos();
            (40.0 + sd * g).round() as i16
        });
        let mut v = Volume::new(data, Default::default());
        v.geometry.spacing_mm = [5.0, 0.8, 0.8];
        v
    }

    #[test]
    fn noisy_tissue_is_harmonized_and_quiet_tissue_is_not() {
        let b = CpuBackend::new();
        let noisy = plan(&b, &tissue(60.0), HarmonizeMode::Auto).expect("plan");
        assert_eq!(noisy.record.status, HarmonizationStatus::Applied);
        assert!(noisy.weights.is_some());
        assert!(noisy.record.gains.iter().all(|&g| g > 0.0 && g < 1.0));
        let (nb, na) = (
            noisy.record.noise_before_hu.expect("before"),
            noisy.record.noise_after_hu.expect("after"),
        );
        assert!(na < nb / 3.0, "noise {nb} -> {na}");
        // White noise of 2 HU lies under the reference in every band: auto leaves it, on keeps
        // every gain at 1.
        let quiet = plan(&b, &tissue(2.0), HarmonizeMode::Auto).expect("plan");
        assert_eq!(quiet.record.status, HarmonizationStatus::NotNeeded);
        assert!(quiet.weights.is_none());
        let on = plan(&b, &tissue(2.0), HarmonizeMode::On).expect("plan");
        assert_eq!(on.record.gains, vec![1.0; BAND_SIGMAS_MM.len()]);
        // Air only: nothing to measure.
        let air = tissue(0.0).with_data(Array3::from_elem((4, 160, 160), -1000i16));
        let none = plan(&b, &air, HarmonizeMode::On).expect("plan");
        assert_eq!(none.record.status, HarmonizationStatus::Unavailable);
        let off = plan(&b, &tissue(60.0), HarmonizeMode::Off).expect("plan");
        assert_eq!(off.record.status, HarmonizationStatus::Off);
        assert!(off.record.measured_band_sd_hu.is_empty());
    }

    #[test]
    fn unit_gains_recompose_the_input_and_sigmas_compose() {
        let w = mix_weights(&[1.0, 1.0, 1.0]);
        assert_eq!(w, vec![1.0, 0.0, 0.0, 0.0]);
        let w = mix_weights(&[0.25, 0.5, 1.0]);
        assert_eq!(w, vec![0.25, 0.25, 0.5, 0.0]);
        // Weights always sum to 1: the mean density of a region is kept.
        let w = mix_weights(&[0.1, 0.7, 0.3]);
        assert!((w.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        let s = stage_sigmas_mm();
        let mut acc = 0.0;
        for (k, v) in s.iter().enumerate() {
            acc += v * v;
            assert!((acc.sqrt() - BAND_SIGMAS_MM[k]).abs() < 1e-9);
        }
    }
}
