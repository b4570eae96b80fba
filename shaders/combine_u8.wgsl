// combine_u8.wgsl: 2-D lookup table of two u8 volumes; pairs outside the table give 0.

@group(0) @binding(1) var<storage, read> a: array<u32>;
@group(0) @binding(2) var<storage, read> b: array<u32>;
@group(0) @binding(4) var<storage, read_write> out: array<u32>;
// lut[a * n_b + b], n_a = iarg.x, n_b = iarg.y.
@group(0) @binding(5) var<storage, read> lut: array<u32>;

fn mapped(g: u32) -> u32 {
    let la = g - P.base.x;
    let lb = g - P.base.y;
    let x = unpack_u8(a[la >> 2u], la);
    let y = unpack_u8(b[lb >> 2u], lb);
    if (x >= u32(P.iarg.x) || y >= u32(P.iarg.y)) { return 0u; }
    return lut[x * u32(P.iarg.y) + y];
}

@compute @workgroup_size(256)
fn combine_u8(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
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
