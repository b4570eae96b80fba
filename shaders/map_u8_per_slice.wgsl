// map_u8_per_slice.wgsl: a lookup table per z-slice; values >= n_values give 0.

@group(0) @binding(1) var<storage, read> v: array<u32>;
@group(0) @binding(4) var<storage, read_write> out: array<u32>;
// table[z * n_values + v], n_values = iarg.x.
@group(0) @binding(5) var<storage, read> table: array<u32>;

fn mapped(g: u32) -> u32 {
    let l = g - P.base.x;
    let x = unpack_u8(v[l >> 2u], l);
    if (x >= u32(P.iarg.x)) { return 0u; }
    let z = g / (P.dims.x * P.dims.y);
    return table[z * u32(P.iarg.x) + x];
}

@compute @workgroup_size(256)
fn map_u8_per_slice(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    for (var w = P.win.x + gid.x; w < P.win.y; w += stride(nwg)) {
        var r = vec4<u32>(0u);
        for (var k = 0u; k < 4u; k++) {
            let g = w * 4u + k;
            if (g >= P.dims.w) { break; }
            r[k] = mapped(g);
        }
        out[w - P.win.x] = pack_u8x4(r);
    }
}
