// upsample_nearest.wgsl: output voxel p takes input voxel p / factors (iarg.xyz = fz, fy, fx).
// Output dims in P.dims, input dims (nx, ny, nz) in P.aux.xyz; input u8 read through pages.

@group(0) @binding(4) var<storage, read_write> out: array<u32>;

// Random access into a volume bound as up to four pages of 2^P.win.w words each.

fn value(g: u32) -> u32 {
    let c = coords(g);
    let s = c / vec3<u32>(u32(P.iarg.z), u32(P.iarg.y), u32(P.iarg.x));
    let e = (s.z * P.aux.y + s.y) * P.aux.x + s.x;
    return unpack_u8(page_word(e >> 2u), e);
}

@compute @workgroup_size(256)
fn upsample_nearest(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
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
