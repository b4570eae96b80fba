// map_labels.wgsl: component label -> u8 through a lookup table; labels past its end give 0.

@group(0) @binding(1) var<storage, read> labels: array<u32>;
@group(0) @binding(4) var<storage, read_write> out: array<u32>;
// lut of iarg.x entries.
@group(0) @binding(5) var<storage, read> lut: array<u32>;

fn mapped(g: u32) -> u32 {
    let l = labels[g - P.base.x];
    if (l >= u32(P.iarg.x)) { return 0u; }
    return lut[l];
}

@compute @workgroup_size(256)
fn map_labels(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
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
