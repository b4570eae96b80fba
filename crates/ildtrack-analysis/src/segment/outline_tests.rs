//! Unit tests of the outline's rules, each on a small synthetic slice.

use super::*;

fn grid(ny: usize, nx: usize, f: impl Fn(usize, usize) -> bool) -> Vec<bool> {
    (0..ny * nx).map(|i| f(i / nx, i % nx)).collect()
}

#[test]
fn small_holes_and_enclosed_holes_are_lung_large_open_ones_are_not() {
    // 12 x 12: a right lung ring around a 4 x 4 hole (16 px) and a 1-px hole.
    let (ny, nx) = (12, 12);
    let mut px = vec![0u8; ny * nx];
    for y in 1..11 {
        for x in 1..11 {
            px[y * nx + x] = 1;
        }
    }
    for y in 4..8 {
        for x in 4..8 {
            px[y * nx + x] = 0;
        }
    }
    px[2 * nx + 2] = 0;
    let f = fill_lung_holes(&px, 1, ny, nx, 4, |_| false);
    assert!(f[2 * nx + 2], "small hole filled");
    assert!(!f[5 * nx + 5], "large hole open in 3-D stays out");
    let f = fill_lung_holes(&px, 1, ny, nx, 4, |i| i == 5 * nx + 5);
    assert!(
        f[5 * nx + 5],
        "large hole enclosed by lung in 3-D is filled"
    );
    let left = fill_lung_holes(&px, 2, ny, nx, 4, |_| true);
    assert!(left.iter().all(|&v| !v), "no left lung: nothing");
}

#[test]
fn candidates_are_non_lung_body_tissue_under_the_bone_limit() {
    let px = [0u8, 1, 0, 0, 0];
    let filled = vec![vec![false, true, true, false, false], vec![false; 5]];
    let body = [true, true, true, false, true];
    let hu = [40i16, -800, 40, 40, tuning::CANDIDATE_MAX_HU];
    assert_eq!(
        dense_candidates(&px, &filled, &body, &hu),
        vec![true, false, false, false, false]
    );
}

#[test]
fn small_sections_get_no_additions_unless_the_second_outline_bounds_them() {
    assert!(section_outlined(30, 100, false, false, false));
    assert!(
        !section_outlined(20, 100, false, false, false),
        "apex, first outline"
    );
    assert!(
        section_outlined(20, 100, true, false, false),
        "above the widest, second outline"
    );
    assert!(
        !section_outlined(20, 100, true, true, false),
        "base without a dome model"
    );
    assert!(
        section_outlined(20, 100, true, true, true),
        "base with a dome model"
    );
}

#[test]
fn the_dome_margin_keeps_what_lies_well_under_the_dome_out() {
    assert!(under_dome_at(-10.0, 0.0));
    assert!(
        !under_dome_at(-tuning::DOME_MARGIN_MM, 0.0),
        "within the margin"
    );
    assert!(!under_dome_at(5.0, 0.0));
}

#[test]
fn the_rib_cage_bounds_only_where_there_is_a_rib_and_beyond_the_margin() {
    assert!(!inside_rib_cage(500, 0));
    assert!(inside_rib_cage(100 + tuning::RIB_MARGIN_CU, 100));
    assert!(!inside_rib_cage(100 + tuning::RIB_MARGIN_CU - 1, 100));
}

#[test]
fn seen_from_the_back_means_skin_behind_within_45_degrees() {
    assert!(seen_from_back([0.0, 0.0, 0.0], [0.0, 50.0, 0.0]));
    assert!(seen_from_back([0.0, 0.0, 0.0], [50.0, 50.0, 0.0]));
    assert!(
        !seen_from_back([0.0, 0.0, 0.0], [60.0, 50.0, 0.0]),
        "more lateral than posterior"
    );
    assert!(
        !seen_from_back([0.0, 0.0, 0.0], [0.0, -50.0, 0.0]),
        "in front"
    );
}

#[test]
fn from_the_back_the_wall_depth_counts_from_the_pleura() {
    assert_eq!(depth_from_pleura(400, 300, 10), 100);
    assert_eq!(
        depth_from_pleura(305, 300, 10),
        305,
        "shallower than the pleura: chest wall"
    );
    assert_eq!(depth_from_pleura(400, u32::MAX, 10), 400, "pleura unknown");
}

#[test]
fn nearer_the_wall_than_the_mediastinum_or_far_from_it() {
    assert!(nearer_wall(100, 100, 1.0, 1000));
    assert!(!nearer_wall(101, 100, 1.0, 1000));
    assert!(
        nearer_wall(190, 100, 2.0, 1000),
        "the second outline favours the wall"
    );
    assert!(
        nearer_wall(5000, 1000, 1.0, 1000),
        "far from the mediastinum"
    );
}

#[test]
fn on_one_slice_a_small_share_of_a_dense_region_is_an_organ() {
    // A 1 x 10 dense region inside the hull; the rule took 1 pixel (10 % < 20 %): dropped.
    let (ny, nx) = (1, 10);
    let cand = vec![true; 10];
    let hull = vec![true; 10];
    let filled = vec![false; 10];
    let mut f = filled.clone();
    f[0] = true;
    drop_organ_parts(&mut f, &filled, &cand, &hull, ny, nx);
    assert!(f.iter().all(|&v| !v));
    // 3 of 10 (30 %): disease, kept.
    let mut f = filled.clone();
    f[..3].fill(true);
    drop_organ_parts(&mut f, &filled, &cand, &hull, ny, nx);
    assert_eq!(f.iter().filter(|&&v| v).count(), 3);
}

#[test]
fn walks_stop_at_the_pleura_or_the_ribs_where_it_is_hidden() {
    assert_eq!(walk_limit(200, None), 200);
    // Seen nearby (150), ribs at 100: no deeper than the near pleura.
    assert_eq!(walk_limit(200, Some((150, 100))), 150);
    // Not seen nearby: rib cage + margin.
    assert_eq!(
        walk_limit(u32::MAX, Some((u32::MAX, 100))),
        100 + tuning::RIB_MARGIN_CU
    );
    // Seen only far inside the ribs (aerated lung in front of a posterior lesion): the ribs.
    assert_eq!(
        walk_limit(900, Some((500, 100))),
        100 + tuning::RIB_MARGIN_CU
    );
    assert_eq!(
        walk_limit(u32::MAX, Some((u32::MAX, 0))),
        u32::MAX,
        "nothing known"
    );
}

#[test]
fn walk_slack_is_larger_seen_from_the_back() {
    assert_eq!(walk_slack(14, false), 7);
    assert_eq!(walk_slack(14, true), 10);
}

#[test]
fn the_comb_of_walks_is_closed_on_dense_tissue_only() {
    // Two vertical walks 4 px apart in a 9 x 9 candidate slab; the gap between them closes,
    // except a non-candidate pixel and a pixel under the dome.
    let (ny, nx) = (9, 9);
    let mut f = grid(ny, nx, |_, x| x == 2 || x == 6);
    let cand = grid(ny, nx, |y, x| !(y == 4 && x == 4));
    close_comb(&mut f, &cand, |i| i == 3 * nx + 4, ny, nx);
    assert!(f[5 * nx + 4], "gap closed");
    assert!(!f[4 * nx + 4], "not a candidate");
    assert!(!f[3 * nx + 4], "under the dome");
}

#[test]
fn spurs_of_single_walks_are_dropped_but_the_lung_before_the_walks_stays() {
    let (ny, nx) = (8, 8);
    let before = grid(ny, nx, |y, x| (2..6).contains(&y) && (2..6).contains(&x));
    let mut f = before.clone();
    for x in 6..8 {
        f[3 * nx + x] = true; // a one-pixel-wide spur
    }
    f[2 * nx + 1] = true; // a thin pixel that was not there before either
    let mut lonely = before.clone();
    lonely[0] = true;
    drop_spurs(&mut f, &before, ny, nx);
    assert_eq!(f, before);
    // Pixels of the lung before the walks never go, even thin ones.
    let mut thin = grid(ny, nx, |y, _| y == 0);
    let was = thin.clone();
    drop_spurs(&mut thin, &was, ny, nx);
    assert_eq!(thin, was);
}

#[test]
fn pinholes_over_the_candidate_limit_are_filled() {
    let (ny, nx) = (9, 9);
    let mut f = grid(ny, nx, |y, x| (1..8).contains(&y) && (1..8).contains(&x));
    f[3 * nx + 3] = false; // a dense pixel (not a candidate) inside the addition
    f[5 * nx + 6] = false; // a candidate pixel: stays a hole (the rule left it out)
    let body = vec![true; ny * nx];
    let mut cand = vec![false; ny * nx];
    cand[5 * nx + 6] = true;
    fill_pinholes(&mut f, &body, &cand, 1, ny, nx);
    assert!(f[3 * nx + 3]);
    assert!(!f[5 * nx + 6]);
    // Too large a hole stays.
    let mut g = grid(ny, nx, |y, x| {
        (1..6).contains(&y) && (1..6).contains(&x) && !(3..5).contains(&x)
    });
    let before = g.clone();
    fill_pinholes(&mut g, &body, &vec![false; ny * nx], 1, ny, nx);
    assert_eq!(g, before);
}

#[test]
fn the_cut_counts_added_pixels_next_to_dense_tissue_left_out() {
    // One row: filled lung at 0, added at 1-2, a left-out candidate at 3 inside the hull.
    let filled = [true, false, false, false, false];
    let f = [true, true, true, false, false];
    let cand = [false, true, true, true, true];
    let hull = [true, true, true, true, false];
    assert_eq!(count_cut(&f, &filled, &cand, &hull, 1, 5), 1);
    let hull_short = [true, true, true, false, false];
    assert_eq!(
        count_cut(&f, &filled, &cand, &hull_short, 1, 5),
        0,
        "outside the hull: no cut"
    );
}
