//! Small 2-D helpers on one slice (row-major `ny × nx` boolean images), run on the host on the
//! coarse working grid: convex hull filling, hole filling, flood fill.

/// Fills the convex hull of the `true` pixels (pixel centres; pixels whose centre lies inside or
/// on the hull are set).
#[cfg(test)]
pub(crate) fn convex_hull_fill(mask: &[bool], ny: usize, nx: usize) -> Vec<bool> {
    fill_polygon(&hull_of_points(extreme_points(mask, ny, nx)), ny, nx)
}

/// The left- and rightmost `true` pixel of every row (enough to span the convex hull).
pub(crate) fn extreme_points(mask: &[bool], ny: usize, nx: usize) -> Vec<(f64, f64)> {
    let mut pts: Vec<(f64, f64)> = Vec::new();
    for y in 0..ny {
        let row = &mask[y * nx..(y + 1) * nx];
        if let Some(x0) = row.iter().position(|&v| v) {
            let x1 = row.iter().rposition(|&v| v).unwrap_or(x0);
            pts.push((x0 as f64, y as f64));
            if x1 != x0 {
                pts.push((x1 as f64, y as f64));
            }
        }
    }
    pts
}

/// Convex hull (counter-clockwise vertices) of points `(x, y)`.
pub(crate) fn hull_of_points(pts: Vec<(f64, f64)>) -> Vec<(f64, f64)> {
    if pts.is_empty() {
        pts
    } else {
        monotone_chain(pts)
    }
}

/// Pixels whose centre lies inside or on a convex polygon.
pub(crate) fn fill_polygon(hull: &[(f64, f64)], ny: usize, nx: usize) -> Vec<bool> {
    let mut out = vec![false; ny * nx];
    if hull.is_empty() {
        return out;
    }
    let ymin = hull
        .iter()
        .map(|p| p.1)
        .fold(f64::INFINITY, f64::min)
        .max(0.0)
        .round() as usize;
    let ymax = hull
        .iter()
        .map(|p| p.1)
        .fold(f64::NEG_INFINITY, f64::max)
        .round() as usize;
    for y in ymin..=ymax.min(ny - 1) {
        let yf = y as f64;
        let mut lo = f64::INFINITY;
        let mut hi = f64::NEG_INFINITY;
        let n = hull.len();
        for i in 0..n {
            let (p, q) = (hull[i], hull[(i + 1) % n]);
            if (p.1 - yf) * (q.1 - yf) > 0.0 {
                continue;
            }
            if (p.1 - q.1).abs() < 1e-12 {
                lo = lo.min(p.0.min(q.0));
                hi = hi.max(p.0.max(q.0));
            } else {
                let x = p.0 + (yf - p.1) * (q.0 - p.0) / (q.1 - p.1);
                lo = lo.min(x);
                hi = hi.max(x);
            }
        }
        if n == 1 {
            lo = hull[0].0;
            hi = hull[0].0;
        }
        if lo <= hi {
            let x0 = (lo - 1e-9).ceil().max(0.0) as usize;
            let x1 = ((hi + 1e-9).floor().max(0.0) as usize).min(nx - 1);
            for x in x0..=x1 {
                out[y * nx + x] = true;
            }
        }
    }
    out
}

/// Pixels whose centre lies inside a convex polygon (vertices in pixel units `(x, y)`) at least
/// `inset_mm` from each of its edges, with pixel spacing `spacing_yx_mm`: the polygon shrunk by
/// `inset_mm`, one interval per row from the edges' half-planes. A polygon of fewer than three
/// vertices has no inside.
pub(crate) fn fill_polygon_inset(
    hull: &[(f64, f64)],
    inset_mm: f64,
    spacing_yx_mm: [f64; 2],
    ny: usize,
    nx: usize,
) -> Vec<bool> {
    let mut out = vec![false; ny * nx];
    let n = hull.len();
    if n < 3 {
        return out;
    }
    let (sy, sx) = (spacing_yx_mm[0], spacing_yx_mm[1]);
    let pts: Vec<(f64, f64)> = hull.iter().map(|&(x, y)| (x * sx, y * sy)).collect();
    let area2: f64 = (0..n)
        .map(|i| {
            let (p, q) = (pts[i], pts[(i + 1) % n]);
            p.0 * q.1 - q.0 * p.1
        })
        .sum();
    if area2.abs() < 1e-12 {
        return out;
    }
    let orient = area2.signum();
    for y in 0..ny {
        let yy = y as f64 * sy;
        let (mut lo, mut hi) = (f64::NEG_INFINITY, f64::INFINITY);
        for i in 0..n {
            let (p, q) = (pts[i], pts[(i + 1) % n]);
            let (ex, ey) = (q.0 - p.0, q.1 - p.1);
            let len = (ex * ex + ey * ey).sqrt();
            if len < 1e-12 {
                continue;
            }
            // Inside at distance >= inset: orient * cross(e, P - p) >= inset * len, i.e.
            // a - b * X >= c with X the x coordinate in mm.
            let a = orient * (ex * (yy - p.1) + ey * p.0);
            let b = orient * ey;
            let c = inset_mm * len;
            if b.abs() < 1e-12 {
                if a < c {
                    lo = f64::INFINITY;
                }
            } else if b > 0.0 {
                hi = hi.min((a - c) / b);
            } else {
                lo = lo.max((a - c) / b);
            }
        }
        if lo <= hi {
            let x0 = (lo / sx - 1e-9).ceil().max(0.0);
            let x1 = (hi / sx + 1e-9).floor().min((nx - 1) as f64);
            if x0 <= x1 {
                for x in x0 as usize..=x1 as usize {
                    out[y * nx + x] = true;
                }
            }
        }
    }
    out
}

fn cross(o: (f64, f64), a: (f64, f64), b: (f64, f64)) -> f64 {
    (a.0 - o.0) * (b.1 - o.1) - (a.1 - o.1) * (b.0 - o.0)
}

fn monotone_chain(mut pts: Vec<(f64, f64)>) -> Vec<(f64, f64)> {
    pts.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    pts.dedup();
    if pts.len() < 3 {
        return pts;
    }
    let mut lower: Vec<(f64, f64)> = Vec::new();
    for &p in &pts {
        while lower.len() >= 2 && cross(lower[lower.len() - 2], lower[lower.len() - 1], p) <= 0.0 {
            lower.pop();
        }
        lower.push(p);
    }
    let mut upper: Vec<(f64, f64)> = Vec::new();
    for &p in pts.iter().rev() {
        while upper.len() >= 2 && cross(upper[upper.len() - 2], upper[upper.len() - 1], p) <= 0.0 {
            upper.pop();
        }
        upper.push(p);
    }
    lower.pop();
    upper.pop();
    lower.extend(upper);
    lower
}

/// `false` pixels not 4-connected to the image border become `true`.
pub(crate) fn fill_holes(mask: &[bool], ny: usize, nx: usize) -> Vec<bool> {
    let mut reached = vec![false; ny * nx];
    let mut stack = Vec::new();
    for y in 0..ny {
        for x in 0..nx {
            if (y == 0 || x == 0 || y + 1 == ny || x + 1 == nx) && !mask[y * nx + x] {
                reached[y * nx + x] = true;
                stack.push(y * nx + x);
            }
        }
    }
    while let Some(i) = stack.pop() {
        let (y, x) = (i / nx, i % nx);
        let mut visit = |j: usize| {
            if !mask[j] && !reached[j] {
                reached[j] = true;
                stack.push(j);
            }
        };
        if y > 0 {
            visit(i - nx);
        }
        if y + 1 < ny {
            visit(i + nx);
        }
        if x > 0 {
            visit(i - 1);
        }
        if x + 1 < nx {
            visit(i + 1);
        }
    }
    reached.iter().map(|r| !r).collect()
}

/// 8-connected flood fill of `mask` from `seed`; stops early (returns `None`) when the region
/// grows beyond `max_pixels`.
pub(crate) fn flood(
    mask: &[bool],
    ny: usize,
    nx: usize,
    seed: usize,
    max_pixels: usize,
) -> Option<Vec<usize>> {
    let mut seen = vec![false; ny * nx];
    flood_with(mask, ny, nx, seed, max_pixels, &mut seen)
}

/// [`flood`] with a caller-provided visited map (left marked).
fn flood_with(
    mask: &[bool],
    ny: usize,
    nx: usize,
    seed: usize,
    max_pixels: usize,
    seen: &mut [bool],
) -> Option<Vec<usize>> {
    if !mask[seed] {
        return Some(Vec::new());
    }
    seen[seed] = true;
    let mut stack = vec![seed];
    let mut out = Vec::new();
    while let Some(i) = stack.pop() {
        out.push(i);
        if out.len() > max_pixels {
            return None;
        }
        let (y, x) = ((i / nx) as isize, (i % nx) as isize);
        for dy in -1..=1 {
            for dx in -1..=1 {
                let (qy, qx) = (y + dy, x + dx);
                if qy < 0 || qx < 0 || qy >= ny as isize || qx >= nx as isize {
                    continue;
                }
                let j = qy as usize * nx + qx as usize;
                if mask[j] && !seen[j] {
                    seen[j] = true;
                    stack.push(j);
                }
            }
        }
    }
    Some(out)
}

/// Closing with a (2r+1)² square: gaps up to 2r pixels wide between parts of `mask` are
/// filled (outside the image counts as set for the erosion, so borders do not erode).
pub(crate) fn close_square(mask: &[bool], ny: usize, nx: usize, r: usize) -> Vec<bool> {
    square_pass(&square_pass(mask, ny, nx, r, true), ny, nx, r, false)
}

/// Opening with a `(2r+1)²` square: what such squares inside `mask` cover (lines and spurs
/// narrower than the square go).
pub(crate) fn open_square(mask: &[bool], ny: usize, nx: usize, r: usize) -> Vec<bool> {
    square_pass(&square_pass(mask, ny, nx, r, false), ny, nx, r, true)
}

/// Dilation (`dilate`) or erosion with a `(2r+1)²` square, windows clipped at the border.
fn square_pass(m: &[bool], ny: usize, nx: usize, r: usize, dilate: bool) -> Vec<bool> {
    // Separable running max (dilate) / min (erode) along rows, then columns.
    let mut rows = vec![false; ny * nx];
    for y in 0..ny {
        for x in 0..nx {
            let (a, b) = (x.saturating_sub(r), (x + r).min(nx - 1));
            // Windows clipped at the border: outside pixels are ignored.
            let row = &m[y * nx + a..=y * nx + b];
            rows[y * nx + x] = if dilate {
                row.iter().any(|&v| v)
            } else {
                row.iter().all(|&v| v)
            };
        }
    }
    let mut out = vec![false; ny * nx];
    for y in 0..ny {
        let (a, b) = (y.saturating_sub(r), (y + r).min(ny - 1));
        for x in 0..nx {
            let mut col = (a..=b).map(|yy| rows[yy * nx + x]);
            out[y * nx + x] = if dilate {
                col.any(|v| v)
            } else {
                col.all(|v| v)
            };
        }
    }
    out
}

/// All 8-connected components of one slice: `(pixels)` per component.
pub(crate) fn components(mask: &[bool], ny: usize, nx: usize) -> Vec<Vec<usize>> {
    let mut seen = vec![false; ny * nx];
    let mut comps = Vec::new();
    for i in 0..ny * nx {
        if mask[i] && !seen[i] {
            comps.push(flood_with(mask, ny, nx, i, usize::MAX, &mut seen).unwrap_or_default());
        }
    }
    comps
}

/// Integer chamfer weights (0.1 mm units) for one slice: `[row, column, diagonal]`.
pub(crate) fn chamfer_weights(spacing_yx_mm: [f64; 2]) -> [u32; 3] {
    let wy = (spacing_yx_mm[0] * 10.0).round().max(1.0);
    let wx = (spacing_yx_mm[1] * 10.0).round().max(1.0);
    [
        wy as u32,
        wx as u32,
        (wy * wy + wx * wx).sqrt().round() as u32,
    ]
}

/// Chamfer distance (0.1 mm units) to the nearest source pixel, two raster sweeps, no obstacles.
/// `u32::MAX` where there is no source.
pub(crate) fn chamfer_sweep(sources: &[bool], ny: usize, nx: usize, w: [u32; 3]) -> Vec<u32> {
    chamfer_geodesic(sources, None, ny, nx, w)
}

/// Chamfer distance (0.1 mm units) to the nearest source pixel along paths that stay in
/// `passable` (all pixels when `None`): one pair of raster sweeps without obstacles; with
/// obstacles, the shortest 8-connected path (Dial's bucket queue: exact however the paths wind,
/// one visit per pixel). `u32::MAX` where no source is reachable.
pub(crate) fn chamfer_geodesic(
    sources: &[bool],
    passable: Option<&[bool]>,
    ny: usize,
    nx: usize,
    w: [u32; 3],
) -> Vec<u32> {
    match passable {
        Some(p) => chamfer_dial(sources, p, ny, nx, w),
        None => chamfer_sweeps(sources, None, ny, nx, w, 1),
    }
}

/// Shortest chamfer paths through `passable` from the source pixels, by Dial's algorithm
/// (buckets of equal distance, in a ring as long as the largest weight + 1).
fn chamfer_dial(
    sources: &[bool],
    passable: &[bool],
    ny: usize,
    nx: usize,
    w: [u32; 3],
) -> Vec<u32> {
    let mut d = vec![u32::MAX; ny * nx];
    let ring = w.iter().copied().max().unwrap_or(1) as usize + 1;
    let mut buckets: Vec<Vec<u32>> = vec![Vec::new(); ring];
    let mut pending = 0usize;
    for i in 0..ny * nx {
        if sources[i] && passable[i] {
            d[i] = 0;
            buckets[0].push(i as u32);
            pending += 1;
        }
    }
    let steps: [(isize, isize, u32); 8] = [
        (0, -1, w[1]),
        (0, 1, w[1]),
        (-1, 0, w[0]),
        (1, 0, w[0]),
        (-1, -1, w[2]),
        (-1, 1, w[2]),
        (1, -1, w[2]),
        (1, 1, w[2]),
    ];
    let mut cur = 0u32;
    while pending > 0 {
        // Every weight is >= 1 and < `ring`: what this bucket's pixels push lands elsewhere.
        let mut here = std::mem::take(&mut buckets[cur as usize % ring]);
        pending -= here.len();
        for &i in &here {
            let i = i as usize;
            if d[i] != cur {
                continue; // reached more cheaply since it was queued
            }
            let (y, x) = ((i / nx) as isize, (i % nx) as isize);
            for &(dy, dx, wk) in &steps {
                let (yy, xx) = (y + dy, x + dx);
                if yy < 0 || xx < 0 || yy >= ny as isize || xx >= nx as isize {
                    continue;
                }
                let j = yy as usize * nx + xx as usize;
                let nd = cur + wk;
                if passable[j] && nd < d[j] {
                    d[j] = nd;
                    buckets[nd as usize % ring].push(j as u32);
                    pending += 1;
                }
            }
        }
        here.clear();
        buckets[cur as usize % ring] = here;
        cur += 1;
    }
    d
}

/// Pairs of raster sweeps (at most `rounds`, until nothing changes); exact without obstacles
/// in one pair.
fn chamfer_sweeps(
    sources: &[bool],
    passable: Option<&[bool]>,
    ny: usize,
    nx: usize,
    w: [u32; 3],
    rounds: usize,
) -> Vec<u32> {
    let inf = u32::MAX / 2;
    let open = |i: usize| passable.is_none_or(|p| p[i]);
    let mut d: Vec<u32> = sources
        .iter()
        .enumerate()
        .map(|(i, &s)| if s && open(i) { 0 } else { inf })
        .collect();
    for _ in 0..rounds {
        let mut changed = false;
        for y in 0..ny {
            for x in 0..nx {
                let i = y * nx + x;
                if !open(i) {
                    continue;
                }
                let mut v = d[i];
                if x > 0 {
                    v = v.min(d[i - 1] + w[1]);
                }
                if y > 0 {
                    v = v.min(d[i - nx] + w[0]);
                    if x > 0 {
                        v = v.min(d[i - nx - 1] + w[2]);
                    }
                    if x + 1 < nx {
                        v = v.min(d[i - nx + 1] + w[2]);
                    }
                }
                changed |= v < d[i];
                d[i] = v;
            }
        }
        for y in (0..ny).rev() {
            for x in (0..nx).rev() {
                let i = y * nx + x;
                if !open(i) {
                    continue;
                }
                let mut v = d[i];
                if x + 1 < nx {
                    v = v.min(d[i + 1] + w[1]);
                }
                if y + 1 < ny {
                    v = v.min(d[i + nx] + w[0]);
                    if x + 1 < nx {
                        v = v.min(d[i + nx + 1] + w[2]);
                    }
                    if x > 0 {
                        v = v.min(d[i + nx - 1] + w[2]);
                    }
                }
                changed |= v < d[i];
                d[i] = v;
            }
        }
        if !changed {
            break;
        }
    }
    d.iter()
        .map(|&v| if v >= inf { u32::MAX } else { v })
        .collect()
}

/// Like [`chamfer_sweep`], also returning for each pixel the index of (approximately) its
/// nearest source pixel (`usize::MAX` where there is none).
pub(crate) fn chamfer_feature(
    sources: &[bool],
    ny: usize,
    nx: usize,
    w: [u32; 3],
) -> (Vec<u32>, Vec<usize>) {
    let inf = u32::MAX / 2;
    let mut d: Vec<u32> = sources.iter().map(|&s| if s { 0 } else { inf }).collect();
    let mut f: Vec<usize> = (0..ny * nx)
        .map(|i| if sources[i] { i } else { usize::MAX })
        .collect();
    let relax = |d: &mut Vec<u32>, f: &mut Vec<usize>, i: usize, j: usize, wij: u32| {
        if d[j] < inf && d[j] + wij < d[i] {
            d[i] = d[j] + wij;
            f[i] = f[j];
        }
    };
    for y in 0..ny {
        for x in 0..nx {
            let i = y * nx + x;
            if x > 0 {
                relax(&mut d, &mut f, i, i - 1, w[1]);
            }
            if y > 0 {
                relax(&mut d, &mut f, i, i - nx, w[0]);
                if x > 0 {
                    relax(&mut d, &mut f, i, i - nx - 1, w[2]);
                }
                if x + 1 < nx {
                    relax(&mut d, &mut f, i, i - nx + 1, w[2]);
                }
            }
        }
    }
    for y in (0..ny).rev() {
        for x in (0..nx).rev() {
            let i = y * nx + x;
            if x + 1 < nx {
                relax(&mut d, &mut f, i, i + 1, w[1]);
            }
            if y + 1 < ny {
                relax(&mut d, &mut f, i, i + nx, w[0]);
                if x + 1 < nx {
                    relax(&mut d, &mut f, i, i + nx + 1, w[2]);
                }
                if x > 0 {
                    relax(&mut d, &mut f, i, i + nx - 1, w[2]);
                }
            }
        }
    }
    let d = d
        .iter()
        .map(|&v| if v >= inf { u32::MAX } else { v })
        .collect();
    (d, f)
}

/// Whether the straight pixel line from `a` to `b` (exclusive of both ends) touches a
/// `blocked` pixel.
pub(crate) fn line_blocked(blocked: &[bool], nx: usize, a: usize, b: usize) -> bool {
    let (mut x0, mut y0) = ((a % nx) as isize, (a / nx) as isize);
    let (x1, y1) = ((b % nx) as isize, (b / nx) as isize);
    let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
    let (sx, sy) = (if x0 < x1 { 1 } else { -1 }, if y0 < y1 { 1 } else { -1 });
    let mut err = dx + dy;
    loop {
        if (x0, y0) == (x1, y1) {
            return false;
        }
        let e2 = 2 * err;
        if e2 >= dy {
            err += dy;
            x0 += sx;
        }
        if e2 <= dx {
            err += dx;
            y0 += sy;
        }
        if (x0, y0) != (x1, y1) && blocked[y0 as usize * nx + x0 as usize] {
            return true;
        }
    }
}

/// Walks the pixel line from `a` towards `b` (exclusive of `a`, inclusive of `b`), calling
/// `step(pixel)` until it returns `false`.
pub(crate) fn walk_line(nx: usize, a: usize, b: usize, mut step: impl FnMut(usize) -> bool) {
    let (mut x0, mut y0) = ((a % nx) as isize, (a / nx) as isize);
    let (x1, y1) = ((b % nx) as isize, (b / nx) as isize);
    let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
    let (sx, sy) = (if x0 < x1 { 1 } else { -1 }, if y0 < y1 { 1 } else { -1 });
    let mut err = dx + dy;
    while (x0, y0) != (x1, y1) {
        let e2 = 2 * err;
        if e2 >= dy {
            err += dy;
            x0 += sx;
        }
        if e2 <= dx {
            err += dx;
            y0 += sy;
        }
        if !step(y0 as usize * nx + x0 as usize) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn inset_polygon_matches_the_eroded_fill() {
        // A 40 x 30 pixel rectangle (corners at pixel centres) and a triangle, both orientations,
        // spacing 1.5 x 1.0 mm: shrunk by 3 mm, the rows and columns inside move in by 2 / 3
        // pixels; 0 mm gives fill_polygon.
        let (ny, nx) = (50, 60);
        let rect = vec![(10.0, 5.0), (50.0, 5.0), (50.0, 35.0), (10.0, 35.0)];
        let sp = [1.5, 1.0];
        for poly in [rect.clone(), rect.iter().rev().copied().collect::<Vec<_>>()] {
            assert_eq!(
                fill_polygon_inset(&poly, 0.0, sp, ny, nx),
                fill_polygon(&poly, ny, nx)
            );
            let m = fill_polygon_inset(&poly, 3.0, sp, ny, nx);
            for y in 0..ny {
                for x in 0..nx {
                    let want = (13..=47).contains(&x) && (7..=33).contains(&y);
                    assert_eq!(m[y * nx + x], want, "({x}, {y})");
                }
            }
        }
        let tri = vec![(5.0, 5.0), (55.0, 5.0), (30.0, 45.0)];
        let full = fill_polygon(&tri, ny, nx);
        let inset = fill_polygon_inset(&tri, 2.0, [1.0, 1.0], ny, nx);
        // Every inset pixel is inside, and at least 2 mm from each edge (checked directly).
        for y in 0..ny {
            for x in 0..nx {
                if inset[y * nx + x] {
                    assert!(full[y * nx + x]);
                    for i in 0..3 {
                        let (p, q) = (tri[i], tri[(i + 1) % 3]);
                        let (ex, ey) = (q.0 - p.0, q.1 - p.1);
                        let d = ((x as f64 - p.0) * ey - (y as f64 - p.1) * ex).abs()
                            / (ex * ex + ey * ey).sqrt();
                        assert!(d >= 2.0 - 1e-9, "({x}, {y}) edge {i}: {d}");
                    }
                }
            }
        }
        assert!(inset.iter().filter(|&&v| v).count() > 500);
        assert!(
            fill_polygon_inset(&tri[..2], 0.0, [1.0, 1.0], ny, nx)
                .iter()
                .all(|&v| !v)
        );
    }

    use super::*;

    fn img(rows: &[&str]) -> (Vec<bool>, usize, usize) {
        let ny = rows.len();
        let nx = rows[0].len();
        (
            rows.iter()
                .flat_map(|r| r.chars().map(|c| c == '#'))
                .collect(),
            ny,
            nx,
        )
    }

    #[test]
    fn hull_fills_a_crescent() {
        let (m, ny, nx) = img(&[
            "..........", //
            ".####.....",
            ".#........",
            ".#........",
            ".####.....",
            "..........",
        ]);
        let h = convex_hull_fill(&m, ny, nx);
        assert_eq!(h.iter().filter(|&&v| v).count(), 16);
        assert!(h[2 * nx + 3] && !h[2 * nx + 5]);
    }

    #[test]
    fn hull_of_a_diagonal_keeps_only_the_segment() {
        let (m, ny, nx) = img(&["#...", ".#..", "..#.", "...#"]);
        assert_eq!(convex_hull_fill(&m, ny, nx), m);
    }

    #[test]
    fn holes_and_components() {
        let (m, ny, nx) = img(&["#####..", "#...#..", "#####.#"]);
        let f = fill_holes(&m, ny, nx);
        assert_eq!(f.iter().filter(|&&v| v).count(), 16);
        assert_eq!(components(&m, ny, nx).len(), 2);
        assert!(flood(&m, ny, nx, 0, 5).is_none());
    }

    #[test]
    fn chamfer_distances_and_nearest_source() {
        let (src, ny, nx) = img(&["#....", ".....", "....#"]);
        let w = [10, 10, 14];
        let d = chamfer_sweep(&src, ny, nx, w);
        let (d2, f) = chamfer_feature(&src, ny, nx, w);
        assert_eq!(d, d2);
        assert_eq!(d[2], 20);
        assert_eq!(d[nx + 1], 14);
        assert_eq!(f[1], 0);
        assert_eq!(f[2 * nx + 3], 2 * nx + 4);
    }

    #[test]
    fn geodesic_chamfer_goes_around_walls() {
        // A source at the bottom left; a wall (column 2, rows 1-3) forces the path to the
        // bottom right up over the wall and down again. The first pair of raster sweeps leaves
        // the top row right of the wall unreached (the backward sweep runs right to left), so
        // this needs a second pair.
        let (src, ny, nx) = img(&[".....", ".....", ".....", "#...."]);
        let (wall, _, _) = img(&[".....", "..#..", "..#..", "..#.."]);
        let passable: Vec<bool> = wall.iter().map(|&b| !b).collect();
        let w = [10, 10, 14];
        let free = chamfer_sweep(&src, ny, nx, w);
        let d = chamfer_geodesic(&src, Some(&passable), ny, nx, w);
        assert_eq!(free[3 * nx + 4], 40);
        // (3,0) -> (2,1) -> (1,1) -> (0,2) -> (1,3) -> (2,4) -> (3,4): 14+10+14+14+14+10.
        assert_eq!(d[3 * nx + 4], 76);
        assert_eq!(d[nx + 2], u32::MAX, "wall pixels get no distance");
        assert_eq!(chamfer_geodesic(&src, None, ny, nx, w), free);
    }

    #[test]
    fn bucket_queue_matches_sweeps_run_to_convergence() {
        // Pseudo-random obstacle fields (a fixed LCG): the bucket queue gives what enough
        // pairs of raster sweeps converge to, with anisotropic weights too.
        let mut state = 12345u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as u32
        };
        for (ny, nx, w) in [
            (17, 23, [10, 10, 14]),
            (31, 19, [14, 7, 16]),
            (40, 40, [3, 3, 4]),
        ] {
            for _ in 0..20 {
                let passable: Vec<bool> = (0..ny * nx).map(|_| next() % 100 >= 30).collect();
                let sources: Vec<bool> = (0..ny * nx).map(|_| next() % 100 < 2).collect();
                let dial = chamfer_geodesic(&sources, Some(&passable), ny, nx, w);
                let sweeps = chamfer_sweeps(&sources, Some(&passable), ny, nx, w, 10_000);
                assert_eq!(dial, sweeps);
            }
        }
    }

    #[test]
    fn square_closing_fills_narrow_gaps_only() {
        let (m, ny, nx) = img(&[
            "##.##...#",
            "##.##...#",
            "##.##...#",
            ".........",
            ".........",
        ]);
        let c = close_square(&m, ny, nx, 1);
        // The one-pixel gap between the two blocks is filled, the three-pixel one is not, the
        // border column stays, nothing grows outward (away from the image border: windows are
        // clipped there, so a mask touching the border keeps what the dilation put on it).
        assert!(c[2] && c[nx + 2] && c[2 * nx + 2]);
        assert!(!c[5] && !c[nx + 6]);
        assert!(c[8] && c[2 * nx + 8]);
        assert!(!c[3 * nx] && !c[3 * nx + 2]);
    }

    #[test]
    fn square_opening_drops_spurs_and_keeps_blocks() {
        #[rustfmt::skip]
        let (m, ny, nx) = img(&[
            "####....",
            "########",
            "####....",
            "####....",
            ".#......",
            ".#......",
        ]);
        let o = open_square(&m, ny, nx, 1);
        // The 4x4 block stays whole; the one-pixel spurs to the right and below go.
        for y in 0..4 {
            for x in 0..4 {
                assert!(o[y * nx + x], "block pixel ({y}, {x})");
            }
        }
        assert!(!o[nx + 6] && !o[4 * nx + 1] && !o[5 * nx + 1]);
    }

    #[test]
    fn lines_see_blockers_between_their_ends() {
        let (blocked, _, nx) = img(&[".....", "..#..", "....."]);
        assert!(line_blocked(&blocked, nx, nx, nx + 4));
        assert!(!line_blocked(&blocked, nx, 0, 4));
        let mut seen = Vec::new();
        walk_line(nx, 0, 2 * nx + 2, |p| {
            seen.push(p);
            true
        });
        assert_eq!(seen, vec![nx + 1, 2 * nx + 2]);
    }
}
