//! Quality-control pictures: lung window, lung contour, GGO (yellow) and consolidation (red)
//! overlays, as PNG bytes. Axial images are shown as a radiologist reads them (patient's right
//! on the image's left, anterior up); coronal images are resampled to true aspect (slice
//! spacing) with the head up.

use ildtrack_model::{change, class};
use ildtrack_volume::{OUTSIDE_FOV_HU, Volume};
use ndarray::{Array2, Axis};

const WINDOW_LO_HU: f32 = -1350.0;
const WINDOW_HI_HU: f32 = 150.0;
const GGO_RGB: [f32; 3] = [255.0, 215.0, 0.0];
const CONS_RGB: [f32; 3] = [255.0, 30.0, 30.0];
const RIGHT_RGB: [u8; 3] = [0, 230, 0];
const LEFT_RGB: [u8; 3] = [40, 150, 255];

fn gray(v: i16) -> f32 {
    if v == OUTSIDE_FOV_HU {
        return 0.0;
    }
    ((v as f32 - WINDOW_LO_HU) / (WINDOW_HI_HU - WINDOW_LO_HU) * 255.0).clamp(0.0, 255.0)
}

/// An overlay: colour and opacity for a label value, or none.
type Overlay = fn(u8) -> Option<([f32; 3], f32)>;

/// The density classes: GGO yellow, consolidation red.
fn class_overlay(v: u8) -> Option<([f32; 3], f32)> {
    match v {
        class::GGO => Some((GGO_RGB, 0.45)),
        class::CONSOLIDATION => Some((CONS_RGB, 0.5)),
        _ => None,
    }
}

/// The change codes of `change.nii.gz` that [`CHANGE_LEGEND`] colours.
fn change_overlay(v: u8) -> Option<([f32; 3], f32)> {
    CHANGE_LEGEND
        .iter()
        .find(|(c, _, _)| *c == v)
        .map(|(_, _, rgb)| (rgb.map(|x| x as f32), 0.6))
}

/// Change codes drawn on the registered follow-up, their names and colours (the report's
/// legend uses the same).
pub const CHANGE_LEGEND: [(u8, &str, [u8; 3]); 6] = [
    (change::CHANGE_NEW_GGO, "new GGO", [255, 150, 0]),
    (change::CHANGE_RESOLVED_GGO, "resolved GGO", [0, 200, 255]),
    (
        change::CHANGE_NEW_CONSOLIDATION,
        "new consolidation",
        [230, 0, 0],
    ),
    (
        change::CHANGE_RESOLVED_CONSOLIDATION,
        "resolved consolidation",
        [60, 90, 255],
    ),
    (
        change::CHANGE_GGO_TO_CONSOLIDATION,
        "GGO → consolidation",
        [220, 0, 220],
    ),
    (
        change::CHANGE_CONSOLIDATION_TO_GGO,
        "consolidation → GGO",
        [0, 190, 110],
    ),
];

/// Renders one plane (rows × cols) of HU, lung labels and an overlay's labels to RGB.
fn render(
    hu: &Array2<i16>,
    lungs: &Array2<u8>,
    labels: &Array2<u8>,
    overlay: Overlay,
) -> (Vec<u8>, usize, usize) {
    let (h, w) = (hu.nrows(), hu.ncols());
    let mut rgb = vec![0u8; h * w * 3];
    for r in 0..h {
        for c in 0..w {
            let g = gray(hu[[r, c]]);
            let mut px = [g, g, g];
            if let Some((col, alpha)) = overlay(labels[[r, c]]) {
                for k in 0..3 {
                    px[k] = px[k] * (1.0 - alpha) + col[k] * alpha;
                }
            }
            let l = lungs[[r, c]];
            let mut out = px.map(|v| v.round() as u8);
            if l != 0 {
                let edge = [(0isize, 1isize), (0, -1), (1, 0), (-1, 0)]
                    .iter()
                    .any(|&(dr, dc)| {
                        let (rr, cc) = (r as isize + dr, c as isize + dc);
                        rr < 0
                            || cc < 0
                            || rr >= h as isize
                            || cc >= w as isize
                            || lungs[[rr as usize, cc as usize]] != l
                    });
                if edge {
                    out = if l == 1 { RIGHT_RGB } else { LEFT_RGB };
                }
            }
            rgb[(r * w + c) * 3..(r * w + c) * 3 + 3].copy_from_slice(&out);
        }
    }
    (rgb, w, h)
}

fn encode(rgb: &[u8], w: usize, h: usize) -> Vec<u8> {
    let mut buf = Vec::new();
    let result = (|| -> Result<(), png::EncodingError> {
        let mut enc = png::Encoder::new(&mut buf, w as u32, h as u32);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut wr = enc.write_header()?;
        wr.write_image_data(rgb)?;
        wr.finish()
    })();
    if let Err(e) = result {
        tracing::warn!("QC png encoding failed: {e}");
        return Vec::new();
    }
    buf
}

/// Row / column flips that bring a plane to display orientation.
fn flip(a: &mut Array2<impl Clone>, rows: bool, cols: bool) {
    if rows {
        a.invert_axis(Axis(0));
    }
    if cols {
        a.invert_axis(Axis(1));
    }
}

/// Axial slice `z` (clamped into range) as PNG, GGO and consolidation overlaid.
pub fn axial_png(hu: &Volume<i16>, lungs: &Volume<u8>, classes: &Volume<u8>, z: usize) -> Vec<u8> {
    axial_with(hu, lungs, classes, z, class_overlay)
}

/// Coronal plane at row `y` (clamped), resampled to true aspect, head up, as PNG.
pub fn coronal_png(
    hu: &Volume<i16>,
    lungs: &Volume<u8>,
    classes: &Volume<u8>,
    y: usize,
) -> Vec<u8> {
    coronal_with(hu, lungs, classes, y, class_overlay)
}

/// [`axial_png`] with the change codes of `change.nii.gz` overlaid ([`CHANGE_LEGEND`]); with
/// `codes` all zero, the plain slice.
pub fn change_axial_png(
    hu: &Volume<i16>,
    lungs: &Volume<u8>,
    codes: &Volume<u8>,
    z: usize,
) -> Vec<u8> {
    axial_with(hu, lungs, codes, z, change_overlay)
}

/// [`coronal_png`] with the change codes overlaid.
pub fn change_coronal_png(
    hu: &Volume<i16>,
    lungs: &Volume<u8>,
    codes: &Volume<u8>,
    y: usize,
) -> Vec<u8> {
    coronal_with(hu, lungs, codes, y, change_overlay)
}

/// Axial slice `z` with the lung contour only.
pub fn plain_axial_png(hu: &Volume<i16>, lungs: &Volume<u8>, z: usize) -> Vec<u8> {
    axial_with(hu, lungs, lungs, z, |_| None)
}

/// Coronal plane at row `y` with the lung contour only.
pub fn plain_coronal_png(hu: &Volume<i16>, lungs: &Volume<u8>, y: usize) -> Vec<u8> {
    coronal_with(hu, lungs, lungs, y, |_| None)
}

fn axial_with(
    hu: &Volume<i16>,
    lungs: &Volume<u8>,
    labels: &Volume<u8>,
    z: usize,
    overlay: Overlay,
) -> Vec<u8> {
    let z = z.min(hu.dims_zyx()[0].saturating_sub(1));
    if hu.is_empty() || lungs.dims_zyx() != hu.dims_zyx() || labels.dims_zyx() != hu.dims_zyx() {
        return Vec::new();
    }
    let d = hu.geometry.direction;
    // Columns should go to patient left (+x), rows to posterior (+y).
    let (fr, fc) = (d[1][1] < 0.0, d[2][0] < 0.0);
    let mut h = hu.data.index_axis(Axis(0), z).to_owned();
    let mut l = lungs.data.index_axis(Axis(0), z).to_owned();
    let mut c = labels.data.index_axis(Axis(0), z).to_owned();
    flip(&mut h, fr, fc);
    flip(&mut l, fr, fc);
    flip(&mut c, fr, fc);
    let (rgb, w, hh) = render(&h, &l, &c, overlay);
    encode(&rgb, w, hh)
}

fn coronal_with(
    hu: &Volume<i16>,
    lungs: &Volume<u8>,
    labels: &Volume<u8>,
    y: usize,
    overlay: Overlay,
) -> Vec<u8> {
    let [nz, ny, nx] = hu.dims_zyx();
    if hu.is_empty() || lungs.dims_zyx() != hu.dims_zyx() || labels.dims_zyx() != hu.dims_zyx() {
        return Vec::new();
    }
    let y = y.min(ny - 1);
    let sp = hu.geometry.spacing_mm;
    let rows = ((nz as f64 * sp[0] / sp[2]).round() as usize).clamp(1, 4096);
    let zi = |r: usize| {
        ((r as f64 + 0.5) * nz as f64 / rows as f64)
            .floor()
            .min(nz as f64 - 1.0) as usize
    };
    let h = Array2::from_shape_fn((rows, nx), |(r, x)| hu.data[[zi(r), y, x]]);
    let l = Array2::from_shape_fn((rows, nx), |(r, x)| lungs.data[[zi(r), y, x]]);
    let c = Array2::from_shape_fn((rows, nx), |(r, x)| labels.data[[zi(r), y, x]]);
    let d = hu.geometry.direction;
    let (mut h, mut l, mut c) = (h, l, c);
    let (fr, fc) = (d[0][2] >= 0.0, d[2][0] < 0.0);
    flip(&mut h, fr, fc);
    flip(&mut l, fr, fc);
    flip(&mut c, fr, fc);
    let (rgb, w, hh) = render(&h, &l, &c, overlay);
    encode(&rgb, w, hh)
}

/// Three axial levels (25 %, 50 %, 75 % of the lung voxels counted along z) and one coronal row
/// (50 % along y). Without lung: the middle slices.
///
/// One pass over the mask, z slabs in parallel (the volume is read once, contiguously).
pub fn representative_slices(lungs: &Volume<u8>) -> (Vec<usize>, usize) {
    use rayon::prelude::*;
    let [nz, ny, _] = lungs.dims_zyx();
    // Per slice: the lung voxels of each of its rows (y).
    let rows_per_slice: Vec<Vec<u64>> = lungs
        .data
        .axis_iter(Axis(0))
        .into_par_iter()
        .map(|plane| {
            plane
                .axis_iter(Axis(0))
                .map(|row| row.iter().filter(|&&v| v != 0).count() as u64)
                .collect()
        })
        .collect();
    let per_z: Vec<u64> = rows_per_slice
        .iter()
        .map(|rows| rows.iter().sum())
        .collect();
    let mut per_y = vec![0u64; ny];
    for rows in &rows_per_slice {
        for (acc, n) in per_y.iter_mut().zip(rows) {
            *acc += n;
        }
    }
    let zs = vec![
        count_quantile(&per_z, 0.25, nz),
        count_quantile(&per_z, 0.5, nz),
        count_quantile(&per_z, 0.75, nz),
    ];
    (zs, count_quantile(&per_y, 0.5, ny))
}

/// The first index at which the running sum of `counts` reaches `q` of the total
/// (`n / 2` when all counts are 0).
fn count_quantile(counts: &[u64], q: f64, n: usize) -> usize {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return n / 2;
    }
    let target = (q * total as f64).ceil() as u64;
    let mut cum = 0;
    for (i, &c) in counts.iter().enumerate() {
        cum += c;
        if cum >= target.max(1) {
            return i;
        }
    }
    n.saturating_sub(1)
}

#[cfg(test)]
mod slice_choice_tests {
    use super::*;
    use ildtrack_volume::Geometry;
    use ndarray::Array3;

    /// Oracle: count along z and along y separately, the obvious way.
    fn oracle(lungs: &Volume<u8>) -> (Vec<usize>, usize) {
        let [nz, ny, _] = lungs.dims_zyx();
        let per_z: Vec<u64> = lungs
            .data
            .axis_iter(Axis(0))
            .map(|s| s.iter().filter(|&&v| v != 0).count() as u64)
            .collect();
        let per_y: Vec<u64> = lungs
            .data
            .axis_iter(Axis(1))
            .map(|s| s.iter().filter(|&&v| v != 0).count() as u64)
            .collect();
        let zs = vec![
            count_quantile(&per_z, 0.25, nz),
            count_quantile(&per_z, 0.5, nz),
            count_quantile(&per_z, 0.75, nz),
        ];
        (zs, count_quantile(&per_y, 0.5, ny))
    }

    #[test]
    fn one_pass_slice_choice_matches_separate_counts() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut cases: Vec<Array3<u8>> = vec![
            Array3::zeros((5, 6, 7)),
            Array3::from_elem((1, 4, 4), 1),
            Array3::from_shape_fn((9, 1, 3), |(z, _, x)| u8::from(z == 7 && x == 1)),
        ];
        for _ in 0..40 {
            let dims = (
                1 + (next() % 24) as usize,
                1 + (next() % 24) as usize,
                1 + (next() % 24) as usize,
            );
            let density = next() % 100;
            let empty_z = (next() % dims.0 as u64) as usize;
            let vals: Vec<u8> = (0..dims.0 * dims.1 * dims.2)
                .map(|k| {
                    let z = k / (dims.1 * dims.2);
                    if z == empty_z || next() % 100 >= density {
                        0
                    } else {
                        1 + (next() % 2) as u8
                    }
                })
                .collect();
            cases.push(Array3::from_shape_vec(dims, vals).expect("shape"));
        }
        for data in cases {
            let v = Volume::new(data, Geometry::default());
            assert_eq!(
                representative_slices(&v),
                oracle(&v),
                "dims {:?}",
                v.dims_zyx()
            );
        }
        // Empty volume: middle slices.
        let v = Volume::new(Array3::<u8>::zeros((10, 8, 6)), Geometry::default());
        assert_eq!(representative_slices(&v), (vec![5, 5, 5], 4));
    }
}
