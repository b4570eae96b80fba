//! Slice geometry → a regular volume: sort along the slice normal, drop duplicates, find the
//! spacing, detect gaps and gantry tilt, and say how each output slice is made.
//!
//! Decisions (each announced with a [`Warning`]):
//! - duplicate positions: the first slice (by the caller's preference order) is kept;
//! - missing slices or irregular spacing: the volume is resampled onto a regular grid at the
//!   median spacing, filling each missing position by linear interpolation between its
//!   neighbours (real slices are copied unchanged);
//! - gantry tilt (slice origins drifting in-plane along the stack): each slice is shifted
//!   in-plane (bilinear) onto an orthogonal grid; voxels shifted in from outside get
//!   [`ildtrack_volume::OUTSIDE_FOV_HU`].

use ildtrack_volume::{Geometry, Warning};

use crate::geometry::{cross, dot, norm};

/// The geometry of one input slice.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SliceGeom {
    /// ImagePositionPatient (LPS mm).
    pub position_mm: [f64; 3],
    /// ImageOrientationPatient (row cosines, then column cosines).
    pub orientation: [f64; 6],
    /// PixelSpacing `[between rows, between columns]` in mm.
    pub pixel_spacing_mm: [f64; 2],
    /// SliceThickness, used as the spacing of a one-slice volume.
    pub thickness_mm: Option<f64>,
}

/// How one output slice is made from the sorted, de-duplicated input slices.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OutSlice {
    /// Copy input slice `i`.
    Copy(usize),
    /// `(1 - w) * lo + w * hi`.
    Interp { lo: usize, hi: usize, w: f64 },
}

/// The assembly plan for a stack.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Input slice indices (into the caller's list) in output order, duplicates removed.
    pub order: Vec<usize>,
    /// One entry per output slice, indexing into `order`.
    pub out: Vec<OutSlice>,
    /// Per output slice, in-plane shift `[rows, cols]` in pixels to apply (tilt correction).
    pub shift_px: Option<Vec<[f64; 2]>>,
    pub geometry: Geometry,
    pub warnings: Vec<Warning>,
}

impl Plan {
    /// True when output slices are exactly the input slices in order (no resampling).
    pub fn is_direct(&self) -> bool {
        self.shift_px.is_none()
            && self.out.len() == self.order.len()
            && self
                .out
                .iter()
                .enumerate()
                .all(|(i, o)| *o == OutSlice::Copy(i))
    }
}

/// Most slices we will ever produce (guards allocations against absurd positions).
pub const MAX_OUT_SLICES: usize = 8192;

fn unit(v: [f64; 3]) -> Option<[f64; 3]> {
    let n = norm(v);
    if n.is_finite() && n > 1e-6 {
        Some([v[0] / n, v[1] / n, v[2] / n])
    } else {
        None
    }
}

/// Plan the assembly of slices that share orientation and matrix. `slices` are in the caller's
/// preference order (the first of duplicates is kept). Errors are plain strings; the caller
/// adds the path.
pub fn plan(slices: &[SliceGeom]) -> Result<Plan, String> {
    let first = slices.first().ok_or("no slices")?;
    let o = first.orientation;
    let r = unit([o[0], o[1], o[2]]).ok_or("ImageOrientationPatient row vector is zero")?;
    let c = unit([o[3], o[4], o[5]]).ok_or("ImageOrientationPatient column vector is zero")?;
    let n =
        unit(cross(r, c)).ok_or("ImageOrientationPatient row and column vectors are parallel")?;
    let ps = first.pixel_spacing_mm;
    if !(ps[0] > 0.0 && ps[1] > 0.0 && ps[0].is_finite() && ps[1].is_finite()) {
        return Err(format!("PixelSpacing {:?} is not positive", ps));
    }
    for s in slices {
        if s.position_mm
            .iter()
            .any(|v| !v.is_finite() || v.abs() > 1e6)
        {
            return Err(format!(
                "ImagePositionPatient {:?} is not a plausible position",
                s.position_mm
            ));
        }
    }
    let mut warnings = Vec::new();

    // Sort by distance along the normal (stable: keeps the caller's order among equals).
    let mut idx: Vec<usize> = (0..slices.len()).collect();
    let d = |i: usize| dot(slices[i].position_mm, n);
    idx.sort_by(|&a, &b| d(a).total_cmp(&d(b)));

    // Duplicates: positions closer than a small tolerance.
    let dup_tol = 0.01;
    let mut order: Vec<usize> = Vec::with_capacity(idx.len());
    let mut dropped = 0usize;
    let mut i = 0;
    while i < idx.len() {
        let mut j = i + 1;
        while j < idx.len() && (d(idx[j]) - d(idx[i])).abs() < dup_tol {
            j += 1;
        }
        // Keep the preferred one (lowest caller index) among the group.
        let keep = idx[i..j].iter().copied().min().unwrap_or(idx[i]);
        order.push(keep);
        dropped += j - i - 1;
        i = j;
    }
    if dropped > 0 {
        warnings.push(Warning::new(
            "duplicate-slices",
            format!("{dropped} slice(s) repeat an already present position and were dropped (the first file kept)"),
        ));
    }

    let pos: Vec<f64> = order.iter().map(|&i| d(i)).collect();
    let origin = slices[order[0]].position_mm;
    if order.len() == 1 {
        let dz = first
            .thickness_mm
            .filter(|t| *t > 0.0 && t.is_finite())
            .unwrap_or(1.0);
        warnings.push(Warning::new(
            "single-slice",
            format!("only one slice: a 2-D image, volumes assume a {dz} mm slab"),
        ));
        return Ok(Plan {
            order,
            out: vec![OutSlice::Copy(0)],
            shift_px: None,
            geometry: Geometry {
                spacing_mm: [dz, ps[0], ps[1]],
                origin_mm: origin,
                direction: [n, c, r],
            },
            warnings,
        });
    }

    let mut steps: Vec<f64> = pos.windows(2).map(|w| w[1] - w[0]).collect();
    steps.sort_by(f64::total_cmp);
    // The median step, unless every step is a whole multiple of the smallest one (gaps in a
    // short stack can outnumber the regular steps).
    let mut nominal = steps[steps.len() / 2];
    let smallest = steps[0];
    if smallest > 0.0 && smallest < 0.75 * nominal {
        let multiples = steps.iter().all(|s| {
            let k = (s / smallest).round();
            k >= 1.0 && (s - k * smallest).abs() <= (0.05 * smallest).max(0.02)
        });
        if multiples {
            nominal = smallest;
        }
    }
    if nominal.is_nan() || nominal <= 0.0 {
        return Err("slice spacing is zero".into());
    }
    let tol = (0.05 * nominal).max(0.02);
    let regular = pos
        .windows(2)
        .all(|w| ((w[1] - w[0]) - nominal).abs() <= tol);

    let mut out = Vec::new();
    if regular {
        out.extend((0..order.len()).map(OutSlice::Copy));
    } else {
        let extent = pos[pos.len() - 1] - pos[0];
        let n_out = (extent / nominal).round() as usize + 1;
        if n_out > MAX_OUT_SLICES || n_out > 16 * order.len() {
            return Err(format!(
                "slice positions span {extent:.1} mm at {nominal:.3} mm spacing ({n_out} slices for {} files)",
                order.len()
            ));
        }
        let mut gaps = Vec::new();
        let mut interpolated = 0usize;
        let mut k = 0usize;
        for j in 0..n_out {
            let t = pos[0] + nominal * j as f64;
            while k + 1 < pos.len() && pos[k + 1] <= t + tol {
                k += 1;
            }
            if (pos[k] - t).abs() <= tol {
                out.push(OutSlice::Copy(k));
            } else if k + 1 < pos.len() {
                let w = ((t - pos[k]) / (pos[k + 1] - pos[k])).clamp(0.0, 1.0);
                out.push(OutSlice::Interp {
                    lo: k,
                    hi: k + 1,
                    w,
                });
                interpolated += 1;
            } else {
                out.push(OutSlice::Copy(k));
                interpolated += 1;
            }
        }
        for w in pos.windows(2) {
            let s = w[1] - w[0];
            if s > 1.5 * nominal {
                gaps.push(format!(
                    "{:.1}–{:.1} mm ({} missing)",
                    w[0],
                    w[1],
                    (s / nominal).round() as i64 - 1
                ));
            }
        }
        if !gaps.is_empty() {
            warnings.push(Warning::new(
                "missing-slices",
                format!(
                    "gaps in the slice positions along the normal at {}; {interpolated} slice(s) filled by linear interpolation onto a regular {nominal:.3} mm grid",
                    gaps.join(", ")
                ),
            ));
        } else {
            warnings.push(Warning::new(
                "irregular-spacing",
                format!(
                    "slice spacing varies (from {:.3} to {:.3} mm); resampled onto a regular {nominal:.3} mm grid, {interpolated} slice(s) interpolated",
                    steps[0],
                    steps[steps.len() - 1]
                ),
            ));
        }
    }

    // In-plane drift of the slice origins (gantry tilt): offset of each slice from the normal line.
    let inplane = |i: usize| -> [f64; 2] {
        let p = slices[i].position_mm;
        let v = [p[0] - origin[0], p[1] - origin[1], p[2] - origin[2]];
        [dot(v, c) / ps[0], dot(v, r) / ps[1]] // [rows, cols] in pixels
    };
    let offs: Vec<[f64; 2]> = order.iter().map(|&i| inplane(i)).collect();
    let max_off = offs
        .iter()
        .map(|o| o[0].abs().max(o[1].abs()))
        .fold(0.0, f64::max);
    let mut shift_px = None;
    if max_off > 0.1 {
        let last = *offs.last().unwrap_or(&[0.0, 0.0]);
        let extent = pos[pos.len() - 1] - pos[0];
        let drift_mm = ((last[0] * ps[0]).powi(2) + (last[1] * ps[1]).powi(2)).sqrt();
        let angle = drift_mm.atan2(extent).to_degrees();
        let shifts: Vec<[f64; 2]> = out
            .iter()
            .map(|o| match *o {
                OutSlice::Copy(k) => offs[k],
                OutSlice::Interp { lo, hi, w } => [
                    offs[lo][0] * (1.0 - w) + offs[hi][0] * w,
                    offs[lo][1] * (1.0 - w) + offs[hi][1] * w,
                ],
            })
            .collect();
        warnings.push(Warning::new(
            "gantry-tilt",
            format!(
                "slice origins drift in-plane by up to {max_off:.1} pixels (gantry tilt about {angle:.1}°); slices shifted in-plane onto an orthogonal grid"
            ),
        ));
        shift_px = Some(shifts);
    }

    Ok(Plan {
        order,
        out,
        shift_px,
        geometry: Geometry {
            spacing_mm: [nominal, ps[0], ps[1]],
            origin_mm: origin,
            direction: [n, c, r],
        },
        warnings,
    })
}

/// Sample `src` (rows × cols) at `(y - shift[0], x - shift[1])` bilinearly into `dst`.
/// Any neighbour outside the image or outside the field of view gives `OUTSIDE_FOV_HU`.
pub fn shift_slice(src: &[i16], dst: &mut [i16], rows: usize, cols: usize, shift: [f64; 2]) {
    use ildtrack_volume::OUTSIDE_FOV_HU as OUT;
    for y in 0..rows {
        let sy = y as f64 - shift[0];
        let y0 = sy.floor();
        let fy = sy - y0;
        for x in 0..cols {
            let sx = x as f64 - shift[1];
            let x0 = sx.floor();
            let fx = sx - x0;
            let get = |yy: f64, xx: f64| -> Option<f64> {
                if yy < 0.0 || xx < 0.0 || yy >= rows as f64 || xx >= cols as f64 {
                    return None;
                }
                let v = src[yy as usize * cols + xx as usize];
                if v == OUT { None } else { Some(f64::from(v)) }
            };
            let mut acc = 0.0;
            let mut ok = true;
            for (dy, wy) in [(0.0, 1.0 - fy), (1.0, fy)] {
                for (dx, wx) in [(0.0, 1.0 - fx), (1.0, fx)] {
                    let w = wy * wx;
                    if w < 1e-9 {
                        continue;
                    }
                    match get(y0 + dy, x0 + dx) {
                        Some(v) => acc += w * v,
                        None => ok = false,
                    }
                }
            }
            dst[y * cols + x] = if ok {
                acc.round().clamp(-32767.0, 32767.0) as i16
            } else {
                OUT
            };
        }
    }
}

/// `(1 - w) * a + w * b`, with `OUTSIDE_FOV_HU` winning.
pub fn interp_slice(a: &[i16], b: &[i16], w: f64, dst: &mut [i16]) {
    use ildtrack_volume::OUTSIDE_FOV_HU as OUT;
    for ((d, &x), &y) in dst.iter_mut().zip(a).zip(b) {
        *d = if x == OUT || y == OUT {
            OUT
        } else {
            (f64::from(x) * (1.0 - w) + f64::from(y) * w).round() as i16
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ildtrack_volume::OUTSIDE_FOV_HU as OUT;

    #[test]
    fn shift_moves_content_and_fills_from_outside() {
        let (rows, cols) = (8, 8);
        let mut src = vec![0i16; rows * cols];
        src[5 * cols + 5] = 1000;
        let mut dst = vec![0i16; rows * cols];
        shift_slice(&src, &mut dst, rows, cols, [1.0, 2.0]);
        assert_eq!(dst[6 * cols + 7], 1000);
        assert_eq!(dst[5 * cols + 5], 0);
        // Row 0 and columns 0..2 came from outside the image.
        assert_eq!(dst[0], OUT);
        assert_eq!(dst[3 * cols + 1], OUT);
        // Half a pixel: the bright value is shared by two neighbours.
        shift_slice(&src, &mut dst, rows, cols, [0.0, 0.5]);
        assert_eq!((dst[5 * cols + 5], dst[5 * cols + 6]), (500, 500));
    }

    #[test]
    fn tilted_stack_is_resampled_onto_the_first_slice_grid() {
        let g: Vec<SliceGeom> = (0..4)
            .map(|k| SliceGeom {
                position_mm: [0.0, 1.0 * k as f64, 2.0 * k as f64],
                orientation: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0],
                pixel_spacing_mm: [0.5, 0.5],
                thickness_mm: Some(2.0),
            })
            .collect();
        let p = plan(&g).expect("plan");
        let sh = p.shift_px.expect("shifts");
        // Each slice starts 1 mm = 2 rows further along +y: shifted by 2 rows per slice.
        for (k, s) in sh.iter().enumerate() {
            assert!(
                (s[0] - 2.0 * k as f64).abs() < 1e-9 && s[1].abs() < 1e-9,
                "{s:?}"
            );
        }
        assert_eq!(p.geometry.spacing_mm[0], 2.0);
        assert_eq!(p.geometry.direction[0], [0.0, 0.0, 1.0]);
        let w = p
            .warnings
            .iter()
            .find(|w| w.code == "gantry-tilt")
            .expect("warning");
        assert!(w.message.contains("26.6°"), "{}", w.message);
    }

    #[test]
    fn interpolation_keeps_outside_marker() {
        let mut d = [0i16; 3];
        interp_slice(&[0, 100, OUT], &[100, 300, 5], 0.25, &mut d);
        assert_eq!(d, [25, 150, OUT]);
    }
}
