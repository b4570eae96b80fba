// counts.wgsl: value_counts, joint_counts and slice_counts of u8 volumes (iarg.w = table cells).
// Counters, workgroup tables and the u8 domain come from counters.wgsl (prepended).

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
    let use_shared = counters_begin(lid, ncells);
    for (var s = P.win.x + gid.x * SEG; s < P.win.y; s += stride(nwg) * SEG) {
        for (var w = s; w < min(s + SEG, P.win.y); w++) {
            for (var k = 0u; k < 4u; k++) {
                let g = w * 4u + k;
                if (g >= P.dims.w) { break; }
                let cell = dom_u8(g);
                counters_add(cell, use_shared);
            }
        }
    }
    counters_end(lid, ncells, use_shared);
}

// counts[a * n_b + b], n_a = iarg.x, n_b = iarg.y; the domain is a, `other` is b.
@compute @workgroup_size(256)
fn joint_counts(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let ncells = u32(P.iarg.w);
    let use_shared = counters_begin(lid, ncells);
    for (var s = P.win.x + gid.x * SEG; s < P.win.y; s += stride(nwg) * SEG) {
        for (var w = s; w < min(s + SEG, P.win.y); w++) {
            for (var k = 0u; k < 4u; k++) {
                let g = w * 4u + k;
                if (g >= P.dims.w) { break; }
                let a = dom_u8(g);
                let b = other_u8(g);
                var cell = NONE;
                if (a < u32(P.iarg.x) && b < u32(P.iarg.y)) { cell = a * u32(P.iarg.y) + b; }
                counters_add(cell, use_shared);
            }
        }
    }
    counters_end(lid, ncells, use_shared);
}

// counts[z * n_values + v] for v < n_values = iarg.x.
@compute @workgroup_size(256)
fn slice_counts(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let ncells = u32(P.iarg.w);
    let use_shared = counters_begin(lid, ncells);
    for (var s = P.win.x + gid.x * SEG; s < P.win.y; s += stride(nwg) * SEG) {
        for (var w = s; w < min(s + SEG, P.win.y); w++) {
            for (var k = 0u; k < 4u; k++) {
                let g = w * 4u + k;
                if (g >= P.dims.w) { break; }
                let v = dom_u8(g);
                var cell = NONE;
                if (v < u32(P.iarg.x)) { cell = (g / (P.dims.x * P.dims.y)) * u32(P.iarg.x) + v; }
                counters_add(cell, use_shared);
            }
        }
    }
    counters_end(lid, ncells, use_shared);
}
