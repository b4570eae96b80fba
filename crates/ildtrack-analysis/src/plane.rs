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

/// The 4-neighbours (up, down, left, right) of pixel `i` in an `ny` × `nx` slice, `None` off
/// the slice.
pub(crate) fn neighbours4(i: usize, ny: usize, nx: usize) -> [Option<usize>; 4] {
    let (y, x) = (i / nx, i % nx);
    [
        (y > 0).then(|| i - nx),
        (y + 1 < ny).then(|| i + nx),
        (x > 0).then(|| i - 1),
        (x + 1 < nx).then(|| i + 1),
    ]
}

#[cfg(test)]
#[path = "plane_tests.rs"]
mod tests;
