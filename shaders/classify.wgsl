// classify.wgsl: density classes: 0 outside the mask, else 1 + number of edges <= HU.

@group(0) @binding(1) var<storage, read> hu: array<u32>;
@group(0) @binding(2) var<storage, read> mask: array<u32>;
@group(0) @binding(4) var<storage, read_write> out: array<u32>;
// Class edges in HU, strictly increasing; iarg.x of them are used.
@group(0) @binding(5) var<storage, read> edges: array<i32>;

fn class_of(g: u32) -> u32 {
    let lm = g - P.base.y;
    if (unpack_u8(mask[lm >> 2u], lm) == 0u) { return 0u; }
    let lh = g - P.base.x;
    let v = unpack_i16(hu[lh >> 1u], lh);
    var c = 1u;
    for (var i = 0u; i < u32(P.iarg.x); i++) {
        if (v >= edges[i]) { c += 1u; }
    }
    return c;
}

@compute @workgroup_size(256)
fn classify(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    for (var w = P.win.x + gid.x; w < P.win.y; w += stride(nwg)) {
        var r = vec4<u32>(0u);
        for (var k = 0u; k < 4u; k++) {
            let g = w * 4u + k;
            if (g >= P.dims.w) { break; }
            r[k] = class_of(g);
        }
        out[w - P.win.x] = pack_u8x4(r);
    }
}
