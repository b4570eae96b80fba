// pad_u8.wgsl: a volume of zeros with the input pasted at corner (z, y, x) = P.iarg.xyz.
// Output dims in P.dims, input dims (nx, ny, nz) in P.aux.xyz; input read through pages.

@group(0) @binding(4) var<storage, read_write> out: array<u32>;

fn value(g: u32) -> u32 {
    let c = vec3<i32>(coords(g)) - vec3<i32>(P.iarg.z, P.iarg.y, P.iarg.x);
    if (any(c < vec3<i32>(0)) || any(c >= vec3<i32>(P.aux.xyz))) { return 0u; }
    let s = vec3<u32>(c);
    let e = (s.z * P.aux.y + s.y) * P.aux.x + s.x;
    return unpack_u8(page_word(e >> 2u), e);
}

@compute @workgroup_size(256)
fn pad_u8(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    for (var w = P.win.x + gid.x; w < P.win.y; w += stride(nwg)) {
        var r = vec4<u32>(0u);
        for (var k = 0u; k < 4u; k++) {
            let g = w * 4u + k;
            if (g >= P.dims.w) { break; }
            r[k] = value(g);
        }
        out[w - P.win.x] = pack_u8x4(r);
    }
}
