// mask_op.wgsl: logical op of two masks (iarg.x: 0 and, 1 or, 2 and-not, 3 xor), 0/1 out.

@group(0) @binding(1) var<storage, read> a: array<u32>;
@group(0) @binding(2) var<storage, read> b: array<u32>;
@group(0) @binding(4) var<storage, read_write> out: array<u32>;

fn op(g: u32) -> u32 {
    let la = g - P.base.x;
    let lb = g - P.base.y;
    let x = unpack_u8(a[la >> 2u], la) != 0u;
    let y = unpack_u8(b[lb >> 2u], lb) != 0u;
    var r = false;
    switch P.iarg.x {
        case 0: { r = x && y; }
        case 1: { r = x || y; }
        case 2: { r = x && !y; }
        default: { r = x != y; }
    }
    return select(0u, 1u, r);
}

@compute @workgroup_size(256)
fn mask_op(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    for (var w = P.win.x + gid.x; w < P.win.y; w += stride(nwg)) {
        var r = vec4<u32>(0u);
        for (var k = 0u; k < 4u; k++) {
            let g = w * 4u + k;
            if (g >= P.dims.w) { break; }
            r[k] = op(g);
        }
        out[w - P.win.x] = pack_u8x4(r);
    }
}
