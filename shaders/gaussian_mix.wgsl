// gaussian_mix.wgsl: out = farg.x * a + farg.y * b over f32 volumes, the accumulation step of
// Backend::gaussian_mix (its blurs and its final rounding are gaussian.wgsl's gauss_to_f32,
// gauss_pass / gauss_pass_paged and gauss_round, shared with Backend::gaussian).

@group(0) @binding(1) var<storage, read> a: array<u32>;
@group(0) @binding(2) var<storage, read> b: array<u32>;
@group(0) @binding(4) var<storage, read_write> out: array<u32>;

@compute @workgroup_size(256)
fn mix_axpby(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    for (var g = P.win.x + gid.x; g < P.win.y; g += stride(nwg)) {
        let va = bitcast<f32>(a[g - P.base.x]);
        let vb = bitcast<f32>(b[g - P.base.y]);
        out[g - P.win.x] = bitcast<u32>(P.farg.x * va + P.farg.y * vb);
    }
}
