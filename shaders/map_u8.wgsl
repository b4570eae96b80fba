// map_u8.wgsl: lut[v] for every voxel (lut of 256 entries, one per u32).

@group(0) @binding(1) var<storage, read> v: array<u32>;
@group(0) @binding(4) var<storage, read_write> out: array<u32>;
@group(0) @binding(5) var<storage, read> lut: array<u32, 256>;

fn mapped(g: u32) -> u32 {
    let l = g - P.base.x;
    return lut[unpack_u8(v[l >> 2u], l)];
}

@compute @workgroup_size(256)
fn map_u8(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
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
