// crop.wgsl: the box [min, min + dims) of a volume (crop_i16, crop_u8). Output dims in P.dims,
// input dims (nx, ny, nz) in P.aux.xyz, box corner (z, y, x) in P.iarg.xyz; input read
// through pages.

@group(0) @binding(4) var<storage, read_write> out: array<u32>;

fn src_index(g: u32) -> u32 {
    let c = coords(g) + vec3<u32>(u32(P.iarg.z), u32(P.iarg.y), u32(P.iarg.x));
    return (c.z * P.aux.y + c.y) * P.aux.x + c.x;
}

@compute @workgroup_size(256)
fn crop_i16(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    for (var w = P.win.x + gid.x; w < P.win.y; w += stride(nwg)) {
        var h = vec2<i32>(0, 0);
        for (var k = 0u; k < 2u; k++) {
            let g = w * 2u + k;
            if (g >= P.dims.w) { break; }
            let e = src_index(g);
            h[k] = unpack_i16(page_word(e >> 1u), e);
        }
        out[w - P.win.x] = pack_i16x2(h.x, h.y);
    }
}

@compute @workgroup_size(256)
fn crop_u8(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    for (var w = P.win.x + gid.x; w < P.win.y; w += stride(nwg)) {
        var r = vec4<u32>(0u);
        for (var k = 0u; k < 4u; k++) {
            let g = w * 4u + k;
            if (g >= P.dims.w) { break; }
            let e = src_index(g);
            r[k] = unpack_u8(page_word(e >> 2u), e);
        }
        out[w - P.win.x] = pack_u8x4(r);
    }
}
