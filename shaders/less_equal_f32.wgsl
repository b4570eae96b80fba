// less_equal_f32.wgsl: 1 where a <= b, else 0 (NaN gives 0, inf <= inf gives 1).

@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<u32>;

@compute @workgroup_size(256)
fn less_equal_f32(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    for (var w = P.win.x + gid.x; w < P.win.y; w += stride(nwg)) {
        var r = vec4<u32>(0u);
        for (var k = 0u; k < 4u; k++) {
            let g = w * 4u + k;
            if (g >= P.dims.w) { break; }
            r[k] = select(0u, 1u, a[g - P.base.x] <= b[g - P.base.y]);
        }
        out[w - P.win.x] = pack_u8x4(r);
    }
}
