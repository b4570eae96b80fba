// copy_u32.wgsl: out = input a, word for word. Not a Backend kernel: the bandwidth probe of
// `ildtrack bench` (the ceiling a memory-bound compute shader can reach on this device).

@group(0) @binding(1) var<storage, read> src: array<u32>;
@group(0) @binding(4) var<storage, read_write> out: array<u32>;

@compute @workgroup_size(256)
fn copy_u32(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    for (var w = P.win.x + gid.x; w < P.win.y; w += stride(nwg)) {
        out[w - P.win.x] = src[w - P.base.x];
    }
}
