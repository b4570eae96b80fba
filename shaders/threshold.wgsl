// threshold.wgsl: 1 where lo_hu <= HU <= hi_hu (iarg.xy), else 0. i16 in, u8 out.

@group(0) @binding(1) var<storage, read> hu: array<u32>;
@group(0) @binding(4) var<storage, read_write> out: array<u32>;

fn hu_at(g: u32) -> i32 {
    let l = g - P.base.x;
    return unpack_i16(hu[l >> 1u], l);
}

fn inside(g: u32) -> u32 {
    let v = hu_at(g);
    return select(0u, 1u, v >= P.iarg.x && v <= P.iarg.y);
}

@compute @workgroup_size(256)
fn threshold(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    for (var w = P.win.x + gid.x; w < P.win.y; w += stride(nwg)) {
        var r = vec4<u32>(0u);
        for (var k = 0u; k < 4u; k++) {
            let g = w * 4u + k;
            if (g >= P.dims.w) { break; }
            r[k] = inside(g);
        }
        out[w - P.win.x] = pack_u8x4(r);
    }
}
