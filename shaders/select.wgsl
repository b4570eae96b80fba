// select.wgsl: if mask != 0 { a } else { b }, voxel-wise.

@group(0) @binding(1) var<storage, read> mask: array<u32>;
@group(0) @binding(2) var<storage, read> a: array<u32>;
@group(0) @binding(3) var<storage, read> b: array<u32>;
@group(0) @binding(4) var<storage, read_write> out: array<u32>;

fn pick(g: u32) -> u32 {
    let lm = g - P.base.x;
    if (unpack_u8(mask[lm >> 2u], lm) != 0u) {
        let la = g - P.base.y;
        return unpack_u8(a[la >> 2u], la);
    }
    let lb = g - P.base.z;
    return unpack_u8(b[lb >> 2u], lb);
}

@compute @workgroup_size(256)
fn select_u8(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    for (var w = P.win.x + gid.x; w < P.win.y; w += stride(nwg)) {
        var r = vec4<u32>(0u);
        for (var k = 0u; k < 4u; k++) {
            let g = w * 4u + k;
            if (g >= P.dims.w) { break; }
            r[k] = pick(g);
        }
        out[w - P.win.x] = pack_u8x4(r);
    }
}
