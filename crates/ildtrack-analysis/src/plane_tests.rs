//! Unit tests of the per-slice geometry.
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
