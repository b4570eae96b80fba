// counts.wgsl: value_counts, joint_counts and slice_counts of u8 volumes (iarg.w = table cells).
//
// The table holds 64-bit counters as (low, high) u32 pairs: a carry out of the low word is
// added to the high word, so counts are exact for any volume. A workgroup first counts in
// shared memory when the table is small (<= SHARED_CELLS cells), then flushes non-zero cells.

const SHARED_CELLS: u32 = 2048u;
const NONE: u32 = 0xFFFFFFFFu;

@group(0) @binding(4) var<storage, read> dom: array<u32>;
@group(0) @binding(5) var<storage, read_write> table: array<atomic<u32>>;
var<workgroup> sh: array<atomic<u32>, 2048>;

fn add_global(c: u32, v: u32) {
    let old = atomicAdd(&table[2u * c], v);
    if (old > 0xFFFFFFFFu - v) { atomicAdd(&table[2u * c + 1u], 1u); }
}

fn dom_u8(g: u32) -> u32 {
    let l = g - P.base.w;
    return unpack_u8(dom[l >> 2u], l);
}

@group(0) @binding(1) var<storage, read> other: array<u32>;

fn other_u8(g: u32) -> u32 {
    let l = g - P.base.x;
    return unpack_u8(other[l >> 2u], l);
}

// Count of each u8 value (256 cells).
@compute @workgroup_size(256)
fn value_counts(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let ncells = u32(P.iarg.w);
    let use_shared = ncells <= SHARED_CELLS;
    if (use_shared) {
        for (var i = lid; i < ncells; i += WG) { atomicStore(&sh[i], 0u); }
    }
    workgroupBarrier();
    for (var w = P.win.x + gid.x; w < P.win.y; w += stride(nwg)) {
        for (var k = 0u; k < 4u; k++) {
            let g = w * 4u + k;
            if (g >= P.dims.w) { break; }
            let cell = dom_u8(g);
            if (cell != NONE) {
                if (use_shared) { atomicAdd(&sh[cell], 1u); } else { add_global(cell, 1u); }
            }
        }
    }
    workgroupBarrier();
    if (use_shared) {
        for (var i = lid; i < ncells; i += WG) {
            let v = atomicLoad(&sh[i]);
            if (v > 0u) { add_global(i, v); }
        }
    }
}

// counts[a * n_b + b], n_a = iarg.x, n_b = iarg.y; the domain is a, `other` is b.
@compute @workgroup_size(256)
fn joint_counts(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let ncells = u32(P.iarg.w);
    let use_shared = ncells <= SHARED_CELLS;
    if (use_shared) {
        for (var i = lid; i < ncells; i += WG) { atomicStore(&sh[i], 0u); }
    }
    workgroupBarrier();
    for (var w = P.win.x + gid.x; w < P.win.y; w += stride(nwg)) {
        for (var k = 0u; k < 4u; k++) {
            let g = w * 4u + k;
            if (g >= P.dims.w) { break; }
            let a = dom_u8(g);
            let b = other_u8(g);
            var cell = NONE;
            if (a < u32(P.iarg.x) && b < u32(P.iarg.y)) { cell = a * u32(P.iarg.y) + b; }
            if (cell != NONE) {
                if (use_shared) { atomicAdd(&sh[cell], 1u); } else { add_global(cell, 1u); }
            }
        }
    }
    workgroupBarrier();
    if (use_shared) {
        for (var i = lid; i < ncells; i += WG) {
            let v = atomicLoad(&sh[i]);
            if (v > 0u) { add_global(i, v); }
        }
    }
}

// counts[z * n_values + v] for v < n_values = iarg.x.
@compute @workgroup_size(256)
fn slice_counts(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let ncells = u32(P.iarg.w);
    let use_shared = ncells <= SHARED_CELLS;
    if (use_shared) {
        for (var i = lid; i < ncells; i += WG) { atomicStore(&sh[i], 0u); }
    }
    workgroupBarrier();
    for (var w = P.win.x + gid.x; w < P.win.y; w += stride(nwg)) {
        for (var k = 0u; k < 4u; k++) {
            let g = w * 4u + k;
            if (g >= P.dims.w) { break; }
            let v = dom_u8(g);
            var cell = NONE;
            if (v < u32(P.iarg.x)) { cell = (g / (P.dims.x * P.dims.y)) * u32(P.iarg.x) + v; }
            if (cell != NONE) {
                if (use_shared) { atomicAdd(&sh[cell], 1u); } else { add_global(cell, 1u); }
            }
        }
    }
    workgroupBarrier();
    if (use_shared) {
        for (var i = lid; i < ncells; i += WG) {
            let v = atomicLoad(&sh[i]);
            if (v > 0u) { add_global(i, v); }
        }
    }
}
