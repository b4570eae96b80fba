// threshold_f32.wgsl: 1 where lo <= v <= hi (farg.xy), NaN gives 0. f32 in, u8 out.

@group(0) @binding(1) var<storage, read> field: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<u32>;

fn inside(g: u32) -> u32 {
    let v = field[g - P.base.x];
    // NaN compares false both ways.
    return select(0u, 1u, v >= P.farg.x && v <= P.farg.y);
}

@compute @workgroup_size(256)
fn threshold_f32(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
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
