//! Real scans made harder the way issue 17 asks (coarse grids, cut fields of view), shared by
//! the robustness example and the tests: area resampling to a coarser spacing, crops with the
//! origin moved, a reconstruction circle whose outside is padding, and the reference mask read
//! at the coarse grid's voxel centres.

use ildtrack_volume::{OUTSIDE_FOV_HU, Volume, meets_image_edge};
use ndarray::{Array3, Axis};

/// Per output voxel of one axis: the source voxels it overlaps and by how much (mm), for an
/// axis of `n` voxels of `src` mm resampled to `dst` mm (whole output voxels only).
fn overlaps(n: usize, src: f64, dst: f64) -> Vec<Vec<(usize, f64)>> {
    if dst <= src || src <= 0.0 {
        return (0..n).map(|i| vec![(i, src)]).collect();
    }
    let out = ((n as f64 * src) / dst).floor() as usize;
    (0..out)
        .map(|o| {
            let (a, b) = (o as f64 * dst, (o + 1) as f64 * dst);
            let first = (a / src).floor() as usize;
            (first..n)
                .take_while(|&j| (j as f64) * src < b)
                .map(|j| {
                    (
                        j,
                        (b.min((j + 1) as f64 * src) - a.max(j as f64 * src)).max(0.0),
                    )
                })
                .filter(|&(_, w)| w > 0.0)
                .collect()
        })
        .collect()
}

/// One axis of `(value sum, inside weight, total weight)` resampled by `ov`.
fn resample_axis(a: &Array3<[f64; 3]>, axis: usize, ov: &[Vec<(usize, f64)>]) -> Array3<[f64; 3]> {
    let mut d = a.dim();
    match axis {
        0 => d.0 = ov.len(),
        1 => d.1 = ov.len(),
        _ => d.2 = ov.len(),
    }
    let mut out = Array3::from_elem(d, [0.0; 3]);
    for (o, src) in ov.iter().enumerate() {
        let mut lane = out.index_axis_mut(Axis(axis), o);
        for &(j, w) in src {
            let s = a.index_axis(Axis(axis), j);
            lane.zip_mut_with(&s, |acc, v| {
                for k in 0..3 {
                    acc[k] += w * v[k];
                }
            });
        }
    }
    out
}

/// Area (box) resampling to `spacing_mm` (z, y, x): each output voxel is the overlap-weighted
/// mean of the source voxels it covers, as a scanner reconstructing at that grid would average.
/// Axes already at or coarser than the target keep their spacing. Padding outside the field of
/// view stays padding where it covers half the output voxel or more, and never enters a mean.
pub fn resample_area(v: &Volume<i16>, spacing_mm: [f64; 3]) -> Volume<i16> {
    let sp = v.geometry.spacing_mm;
    let mut acc = v.data.mapv(|h| {
        if h == OUTSIDE_FOV_HU {
            [0.0, 0.0, 1.0]
        } else {
            [h as f64, 1.0, 1.0]
        }
    });
    let mut out_sp = sp;
    for k in 0..3 {
        let ov = overlaps(acc.shape()[k], sp[k], spacing_mm[k]);
        if spacing_mm[k] > sp[k] {
            out_sp[k] = spacing_mm[k];
        }
        acc = resample_axis(&acc, k, &ov);
    }
    let data = acc.mapv(|[s, inside, total]| {
        if total <= 0.0 || inside <= 0.5 * total {
            OUTSIDE_FOV_HU
        } else {
            (s / inside)
                .round()
                .clamp(i16::MIN as f64 + 1.0, i16::MAX as f64) as i16
        }
    });
    let mut g = v.geometry;
    // The first output voxel's centre: half an output voxel in from the source's first edge.
    g.origin_mm = g.index_to_lps([0, 1, 2].map(|k| 0.5 * out_sp[k] / sp[k] - 0.5));
    g.spacing_mm = out_sp;
    Volume::new(data, g)
}

/// The source index nearest each output voxel's centre, per axis, for a volume resampled from
/// `src` to `dst` spacing by [`resample_area`] (`out` output voxels).
fn centres(out: usize, src: f64, dst: f64) -> Vec<usize> {
    (0..out)
        .map(|o| (((o as f64 + 0.5) * dst / src) - 0.5).round().max(0.0) as usize)
        .collect()
}

/// The full-grid mask `m` (spacing `src_mm`) read at the voxel centres of a grid of `dims` and
/// `dst_mm` made by [`resample_area`]: the reference a coarse result is compared with.
pub fn mask_at_centres(
    m: &Array3<u8>,
    src_mm: [f64; 3],
    dst_mm: [f64; 3],
    dims: [usize; 3],
) -> Array3<u8> {
    let c = [0, 1, 2].map(|k| centres(dims[k], src_mm[k], dst_mm[k]));
    let d = m.dim();
    Array3::from_shape_fn((dims[0], dims[1], dims[2]), |(z, y, x)| {
        m[[
            c[0][z].min(d.0 - 1),
            c[1][y].min(d.1 - 1),
            c[2][x].min(d.2 - 1),
        ]]
    })
}

/// Mask voxels (non-zero in `mask`, on `v`'s grid) with a 4-neighbour off the image or in the
/// padding outside the reconstructed field of view: a lung mask must have none.
pub fn voxels_on_image_edge(mask: &Array3<u8>, v: &Volume<i16>) -> usize {
    mask.indexed_iter()
        .filter(|&((z, y, x), &m)| m != 0 && meets_image_edge(v.data.index_axis(Axis(0), z), y, x))
        .count()
}

/// Rows `y0..y1` and columns `x0..x1` of every slice, the origin moved to the first kept voxel.
pub fn crop_yx(v: &Volume<i16>, y: (usize, usize), x: (usize, usize)) -> Volume<i16> {
    let [_, ny, nx] = v.dims_zyx();
    let (y0, y1) = (y.0.min(ny), y.1.clamp(y.0.min(ny), ny));
    let (x0, x1) = (x.0.min(nx), x.1.clamp(x.0.min(nx), nx));
    let mut g = v.geometry;
    g.origin_mm = g.index_to_lps([0.0, y0 as f64, x0 as f64]);
    Volume::new(v.data.slice(ndarray::s![.., y0..y1, x0..x1]).to_owned(), g)
}

/// Every voxel outside the circle inscribed in the slice (centre of the image, radius half its
/// smaller side) becomes padding ([`OUTSIDE_FOV_HU`]), as outside a reconstruction circle.
pub fn pad_outside_circle(v: &mut Volume<i16>) {
    let (_, ny, nx) = v.data.dim();
    let (cy, cx) = ((ny as f64 - 1.0) / 2.0, (nx as f64 - 1.0) / 2.0);
    let r = ny.min(nx) as f64 / 2.0;
    for ((_, y, x), h) in v.data.indexed_iter_mut() {
        if (y as f64 - cy).powi(2) + (x as f64 - cx).powi(2) > r * r {
            *h = OUTSIDE_FOV_HU;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ildtrack_volume::Geometry;

    #[test]
    fn area_resampling_averages_by_overlap_and_keeps_padding_out_of_means() {
        // One row of 6 voxels of 1 mm resampled to 1.5 mm: 4 output voxels (whole ones only).
        let mut d = Array3::<i16>::zeros((1, 1, 6));
        for (i, h) in [0i16, 30, 60, 90, 120, 150].iter().enumerate() {
            d[[0, 0, i]] = *h;
        }
        let v = Volume::new(d, Geometry::axial([1.0, 1.0, 1.0]));
        let r = resample_area(&v, [1.0, 1.0, 1.5]);
        assert_eq!(r.dims_zyx(), [1, 1, 4]);
        // [0, 1.5): 1 mm of 0 and 0.5 mm of 30.
        assert_eq!(r.data[[0, 0, 0]], 10);
        assert_eq!(r.geometry.spacing_mm, [1.0, 1.0, 1.5]);
        assert!(
            (r.geometry.origin_mm[0] - 0.25).abs() < 1e-9,
            "centre of [0, 1.5) in source mm"
        );
        // Padding: a voxel half padded is padding; a voxel under half padded ignores it.
        let mut p = Array3::<i16>::from_elem((1, 1, 4), 100);
        p[[0, 0, 0]] = OUTSIDE_FOV_HU;
        let r = resample_area(&Volume::new(p, Geometry::axial([1.0; 3])), [1.0, 1.0, 2.0]);
        assert_eq!(r.data[[0, 0, 0]], OUTSIDE_FOV_HU);
        assert_eq!(r.data[[0, 0, 1]], 100);
        let mut q = Array3::<i16>::from_elem((1, 1, 3), 100);
        q[[0, 0, 0]] = OUTSIDE_FOV_HU;
        let r = resample_area(&Volume::new(q, Geometry::axial([1.0; 3])), [1.0, 1.0, 3.0]);
        assert_eq!(r.data[[0, 0, 0]], 100, "padding never enters a mean");
    }

    #[test]
    fn the_reference_mask_is_read_at_output_centres_and_crops_move_the_origin() {
        let m = Array3::from_shape_fn((1, 1, 6), |(_, _, x)| x as u8);
        let r = mask_at_centres(&m, [1.0; 3], [1.0, 1.0, 3.0], [1, 1, 2]);
        assert_eq!(r.iter().copied().collect::<Vec<_>>(), vec![1, 4]);
        let v = Volume::new(
            Array3::<i16>::zeros((2, 10, 10)),
            Geometry::axial([1.0, 2.0, 3.0]),
        );
        let c = crop_yx(&v, (2, 8), (1, 20));
        assert_eq!(c.dims_zyx(), [2, 6, 9]);
        assert_eq!(c.geometry.origin_mm, [3.0, 4.0, 0.0]);
        let mut p = c.clone();
        pad_outside_circle(&mut p);
        assert_eq!(p.data[[0, 0, 0]], OUTSIDE_FOV_HU);
        assert_eq!(p.data[[0, 3, 4]], 0);
    }
}
