//! Run-based connected-component labelling: runs along x per row, union-find over runs.

use crate::api::{ComponentInfo, ComputeError, Connectivity, Result};
use ndarray::{Array3, Axis};
use rayon::prelude::*;

type Run = (u32, u32); // inclusive x range

fn find(parent: &mut [u32], mut a: u32) -> u32 {
    while parent[a as usize] != a {
        let p = parent[a as usize];
        parent[a as usize] = parent[p as usize];
        a = p;
    }
    a
}

fn union(parent: &mut [u32], a: u32, b: u32) {
    let (ra, rb) = (find(parent, a), find(parent, b));
    if ra != rb {
        // Keep the smaller id as root: roots are then the first run of their component.
        let (lo, hi) = if ra < rb { (ra, rb) } else { (rb, ra) };
        parent[hi as usize] = lo;
    }
}

pub(crate) fn label(
    m: &Array3<u8>,
    conn: Connectivity,
) -> Result<(Array3<u32>, Vec<ComponentInfo>)> {
    let s = m.shape();
    let (nz, ny, nx) = (s[0], s[1], s[2]);
    let m = m.as_standard_layout();
    let data = m
        .as_slice()
        .ok_or_else(|| ComputeError::Device("non-contiguous mask".into()))?;
    let n_rows = nz * ny;
    // Runs per row.
    let rows: Vec<Vec<Run>> = (0..n_rows)
        .into_par_iter()
        .map(|r| {
            let row = &data[r * nx..(r + 1) * nx];
            let mut runs = Vec::new();
            let mut x = 0;
            while x < nx {
                if row[x] != 0 {
                    let x0 = x;
                    while x < nx && row[x] != 0 {
                        x += 1;
                    }
                    runs.push((x0 as u32, (x - 1) as u32));
                } else {
                    x += 1;
                }
            }
            runs
        })
        .collect();
    let mut start = Vec::with_capacity(n_rows + 1);
    let mut total = 0usize;
    for r in &rows {
        start.push(total);
        total += r.len();
    }
    start.push(total);
    if total >= u32::MAX as usize {
        return Err(ComputeError::InvalidArgument(format!(
            "too many runs for labelling: {total}"
        )));
    }
    let mut parent: Vec<u32> = (0..total as u32).collect();
    // Earlier neighbour rows (dz, dy) and whether diagonal (x ± 1) contact counts.
    let (neigh, expand): (&[(isize, isize)], u32) = match conn {
        Connectivity::Face6 => (&[(0, -1), (-1, 0)], 0),
        Connectivity::Slice4 => (&[(0, -1)], 0),
        Connectivity::Slice8 => (&[(0, -1)], 1),
        Connectivity::Full26 => (&[(0, -1), (-1, -1), (-1, 0), (-1, 1)], 1),
    };
    for z in 0..nz {
        for y in 0..ny {
            let r = z * ny + y;
            if rows[r].is_empty() {
                continue;
            }
            for &(dz, dy) in neigh {
                let (zz, yy) = (z as isize + dz, y as isize + dy);
                if zz < 0 || yy < 0 || yy >= ny as isize {
                    continue;
                }
                let rr = zz as usize * ny + yy as usize;
                let (a, b) = (&rows[r], &rows[rr]);
                let (mut i, mut j) = (0, 0);
                while i < a.len() && j < b.len() {
                    let (a0, a1) = a[i];
                    let (b0, b1) = b[j];
                    if a0 <= b1 + expand && b0 <= a1 + expand {
                        union(&mut parent, (start[r] + i) as u32, (start[rr] + j) as u32);
                    }
                    if a1 < b1 { i += 1 } else { j += 1 }
                }
            }
        }
    }
    // Final labels in raster order of each component's first run (= its root).
    let mut label_of_run = vec![0u32; total];
    let mut infos: Vec<ComponentInfo> = Vec::new();
    for r in 0..n_rows {
        let (z, y) = (r / ny, r % ny);
        for (i, &(x0, x1)) in rows[r].iter().enumerate() {
            let id = start[r] + i;
            let root = find(&mut parent, id as u32) as usize;
            let l = if root == id {
                infos.push(ComponentInfo {
                    voxels: 0,
                    min_zyx: [z, y, x0 as usize],
                    max_zyx: [z, y, x1 as usize],
                    sum_zyx: [0.0; 3],
                });
                infos.len() as u32
            } else {
                label_of_run[root]
            };
            label_of_run[id] = l;
            let info = &mut infos[l as usize - 1];
            let len = (x1 - x0 + 1) as u64;
            info.voxels += len;
            info.min_zyx = [
                info.min_zyx[0].min(z),
                info.min_zyx[1].min(y),
                info.min_zyx[2].min(x0 as usize),
            ];
            info.max_zyx = [
                info.max_zyx[0].max(z),
                info.max_zyx[1].max(y),
                info.max_zyx[2].max(x1 as usize),
            ];
            info.sum_zyx[0] += z as f64 * len as f64;
            info.sum_zyx[1] += y as f64 * len as f64;
            info.sum_zyx[2] += (x0 as f64 + x1 as f64) * len as f64 / 2.0;
        }
    }
    let mut out = Array3::<u32>::zeros((nz, ny, nx));
    out.axis_iter_mut(Axis(0))
        .into_par_iter()
        .enumerate()
        .for_each(|(z, mut sl)| {
            for (y, mut row) in sl.axis_iter_mut(Axis(0)).enumerate() {
                let r = z * ny + y;
                for (i, &(x0, x1)) in rows[r].iter().enumerate() {
                    let l = label_of_run[start[r] + i];
                    for x in x0..=x1 {
                        row[x as usize] = l;
                    }
                }
            }
        });
    Ok((out, infos))
}
