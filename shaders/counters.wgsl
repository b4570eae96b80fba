// counters.wgsl: prepended (after common.wgsl) to the counting kernels (counts, histogram).
//
// The table holds 64-bit counters as (low, high) u32 pairs: a carry out of the low word is
// added to the high word, so counts are exact for any volume. A workgroup first counts in
// shared memory when the table is small (<= SHARED_CELLS cells, 16 KiB: the WebGPU minimum of
// workgroup storage), then flushes non-zero cells. Each invocation also merges runs of equal
// cells (large uniform regions, e.g. air, hit one cell) into one atomic add.

const SHARED_CELLS: u32 = 4096u;
// Words (4 voxels each) one invocation counts in a row before striding on: runs of equal
// cells stay within one invocation, so fewer atomics.
const SEG: u32 = 8u;
const NONE: u32 = 0xFFFFFFFFu;

@group(0) @binding(4) var<storage, read> dom: array<u32>;
@group(0) @binding(5) var<storage, read_write> table: array<atomic<u32>>;
var<workgroup> sh: array<atomic<u32>, 4096>;
// The current run of one invocation: its cell and length.
var<private> run_cell: u32 = 0xFFFFFFFFu;
var<private> run_n: u32 = 0u;

fn add_global(c: u32, v: u32) {
    let old = atomicAdd(&table[2u * c], v);
    if (old > 0xFFFFFFFFu - v) { atomicAdd(&table[2u * c + 1u], 1u); }
}

fn dom_u8(g: u32) -> u32 {
    let l = g - P.base.w;
    return unpack_u8(dom[l >> 2u], l);
}

// Start of a counting kernel: true when the `ncells` table fits in workgroup memory (then
// zeroed). Every invocation of the workgroup must call it (it holds a barrier).
fn counters_begin(lid: u32, ncells: u32) -> bool {
    let use_shared = ncells <= SHARED_CELLS;
    if (use_shared) {
        for (var i = lid; i < ncells; i += WG) { atomicStore(&sh[i], 0u); }
    }
    workgroupBarrier();
    return use_shared;
}

fn counters_flush(use_shared: bool) {
    if (run_cell != NONE && run_n > 0u) {
        if (use_shared) { atomicAdd(&sh[run_cell], run_n); } else { add_global(run_cell, run_n); }
    }
    run_n = 0u;
}

// Count one voxel in `cell` (NONE: not counted).
fn counters_add(cell: u32, use_shared: bool) {
    if (cell == run_cell) {
        run_n += 1u;
        return;
    }
    counters_flush(use_shared);
    run_cell = cell;
    run_n = 1u;
}

// End of a counting kernel: flush the workgroup's non-zero cells. Every invocation calls it.
fn counters_end(lid: u32, ncells: u32, use_shared: bool) {
    counters_flush(use_shared);
    workgroupBarrier();
    if (use_shared) {
        for (var i = lid; i < ncells; i += WG) {
            let v = atomicLoad(&sh[i]);
            if (v > 0u) { add_global(i, v); }
        }
    }
}
