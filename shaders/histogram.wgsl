// histogram.wgsl: HU histograms per label: domain = u8 labels, input a = i16 HU; iarg = (n_labels, lo_hu, hi_hu, cells).
// Counters, workgroup tables and the u8 domain come from counters.wgsl (prepended).

@group(0) @binding(1) var<storage, read> hu: array<u32>;

// Bin i of label l counts HU == lo + i; values outside [lo, hi] clamp to the end bins.
@compute @workgroup_size(256)
fn histogram(
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
                let lab = dom_u8(g);
                var cell = NONE;
                if (lab < u32(P.iarg.x)) {
                    let lh = g - P.base.x;
                    let v = clamp(unpack_i16(hu[lh >> 1u], lh), P.iarg.y, P.iarg.z);
                    cell = lab * u32(P.iarg.z - P.iarg.y + 1) + u32(v - P.iarg.y);
                }
                counters_add(cell, use_shared);
            }
        }
    }
    counters_end(lid, ncells, use_shared);
}
