//! Small deterministic random sources: a splitmix64 generator, a per-voxel hash into a table of
//! Gaussian values (white noise independent of thread scheduling), and a periodic smooth 3-D
//! texture tile (correlated parenchymal texture).

/// splitmix64: tiny, fast, good enough for anatomy variation and noise; fully deterministic.
#[derive(Debug, Clone)]
pub(crate) struct SplitMix(u64);

impl SplitMix {
    pub fn new(seed: u64) -> Self {
        SplitMix(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix64(self.0)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(1e-300);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

/// The splitmix64 finaliser: a strong 64-bit mixing function.
#[inline]
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

const GAUSS_BITS: u32 = 16;

/// 65,536 standard-normal values; a voxel's noise is `table[hash(seed, voxel index)]`.
pub(crate) struct GaussTable {
    values: Vec<f32>,
    seed: u64,
}

impl GaussTable {
    pub fn new(seed: u64) -> Self {
        let mut rng = SplitMix::new(seed.wrapping_mul(0xD1B5_4A32_D192_ED03) ^ 0x006E_6F69_7365);
        let values = (0..1usize << GAUSS_BITS)
            .map(|_| rng.normal() as f32)
            .collect();
        GaussTable { values, seed }
    }

    #[inline]
    pub fn at(&self, index: u64) -> f32 {
        let h = mix64(index ^ self.seed.rotate_left(17));
        // `values` has exactly 2^GAUSS_BITS entries and the shift leaves GAUSS_BITS bits.
        let i = (h >> (64 - GAUSS_BITS)) as usize;
        self.values.get(i).copied().unwrap_or(0.0)
    }
}

/// A periodic, smoothed Gaussian random field on an `N³` lattice with unit SD, sampled with
/// trilinear interpolation: correlated texture with a grain of ~`cell_mm` × 1.2.
pub(crate) struct Texture {
    values: Vec<f32>,
    inv_cell_mm: f64,
}

const TEX_N: usize = 48;

impl Texture {
    pub fn new(seed: u64, cell_mm: f64) -> Self {
        let n = TEX_N;
        let mut rng = SplitMix::new(seed ^ 0x0074_6578_7475_7265);
        let mut v: Vec<f32> = (0..n * n * n).map(|_| rng.normal() as f32).collect();
        let mut tmp = vec![0f32; v.len()];
        let idx = |z: usize, y: usize, x: usize| (z * n + y) * n + x;
        for _pass in 0..3 {
            for axis in 0..3 {
                for z in 0..n {
                    for y in 0..n {
                        for x in 0..n {
                            let (a, b) = match axis {
                                0 => (idx((z + n - 1) % n, y, x), idx((z + 1) % n, y, x)),
                                1 => (idx(z, (y + n - 1) % n, x), idx(z, (y + 1) % n, x)),
                                _ => (idx(z, y, (x + n - 1) % n), idx(z, y, (x + 1) % n)),
                            };
                            let c = idx(z, y, x);
                            tmp[c] = 0.25 * v[a] + 0.5 * v[c] + 0.25 * v[b];
                        }
                    }
                }
                std::mem::swap(&mut v, &mut tmp);
            }
        }
        let len = v.len() as f64;
        let mean = v.iter().map(|&a| a as f64).sum::<f64>() / len;
        let var = v.iter().map(|&a| (a as f64 - mean).powi(2)).sum::<f64>() / len;
        let inv_sd = if var > 0.0 { 1.0 / var.sqrt() } else { 1.0 };
        for a in v.iter_mut() {
            *a = ((*a as f64 - mean) * inv_sd) as f32;
        }
        Texture {
            values: v,
            inv_cell_mm: 1.0 / cell_mm.max(1e-3),
        }
    }

    /// Texture value (unit SD) at a point in mm.
    #[inline]
    pub fn sample(&self, x_mm: f64, y_mm: f64, z_mm: f64) -> f32 {
        let n = TEX_N;
        let fx = x_mm * self.inv_cell_mm;
        let fy = y_mm * self.inv_cell_mm;
        let fz = z_mm * self.inv_cell_mm;
        let (x0, tx) = split(fx, n);
        let (y0, ty) = split(fy, n);
        let (z0, tz) = split(fz, n);
        let x1 = (x0 + 1) % n;
        let y1 = (y0 + 1) % n;
        let z1 = (z0 + 1) % n;
        let v = &self.values;
        let g = |z: usize, y: usize, x: usize| v.get((z * n + y) * n + x).copied().unwrap_or(0.0);
        let c00 = g(z0, y0, x0) * (1.0 - tx) + g(z0, y0, x1) * tx;
        let c01 = g(z0, y1, x0) * (1.0 - tx) + g(z0, y1, x1) * tx;
        let c10 = g(z1, y0, x0) * (1.0 - tx) + g(z1, y0, x1) * tx;
        let c11 = g(z1, y1, x0) * (1.0 - tx) + g(z1, y1, x1) * tx;
        let c0 = c00 * (1.0 - ty) + c01 * ty;
        let c1 = c10 * (1.0 - ty) + c11 * ty;
        c0 * (1.0 - tz) + c1 * tz
    }
}

#[inline]
fn split(f: f64, n: usize) -> (usize, f32) {
    let fl = f.floor();
    let i = (fl as i64).rem_euclid(n as i64) as usize;
    (i, (f - fl) as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gauss_table_has_unit_sd_and_depends_on_seed() {
        let t = GaussTable::new(3);
        let n = 200_000u64;
        let (mut s, mut s2) = (0.0f64, 0.0f64);
        for i in 0..n {
            let v = t.at(i) as f64;
            s += v;
            s2 += v * v;
        }
        let mean = s / n as f64;
        let sd = (s2 / n as f64 - mean * mean).sqrt();
        assert!(mean.abs() < 0.02, "mean {mean}");
        assert!((sd - 1.0).abs() < 0.02, "sd {sd}");
        let u = GaussTable::new(4);
        assert!((0..100).any(|i| t.at(i) != u.at(i)));
    }

    #[test]
    fn texture_is_smooth_and_unit_sd() {
        let tex = Texture::new(9, 2.0);
        // Neighbouring samples 0.5 mm apart are strongly correlated; 40 mm apart are not.
        let (mut near, mut far, mut var) = (0.0f64, 0.0f64, 0.0f64);
        let mut rng = SplitMix::new(1);
        let k = 20_000;
        for _ in 0..k {
            let (x, y, z) = (
                rng.range(0.0, 96.0),
                rng.range(0.0, 96.0),
                rng.range(0.0, 96.0),
            );
            let a = tex.sample(x, y, z) as f64;
            near += a * tex.sample(x + 0.5, y, z) as f64;
            far += a * tex.sample(x + 40.0, y, z) as f64;
            var += a * a;
        }
        let (near, far, var) = (near / k as f64, far / k as f64, var / k as f64);
        assert!(near / var > 0.8, "near corr {}", near / var);
        assert!((far / var).abs() < 0.15, "far corr {}", far / var);
    }
}
