// fill_holes_2d.wgsl: per z-slice, background not 4-connected to the slice border becomes 1.
//
// The background (input of label_components with Slice4) is labelled first; fill_holes_border
// marks every label that touches the slice border (flags at binding 9), fill_holes_out writes
// 1 for foreground and for background whose label is not marked.

@group(0) @binding(1) var<storage, read> mask: array<u32>;
@group(0) @binding(4) var<storage, read_write> dom: array<u32>;
@group(0) @binding(5) var<storage, read> page0: array<u32>;
@group(0) @binding(6) var<storage, read> page1: array<u32>;
@group(0) @binding(7) var<storage, read> page2: array<u32>;
@group(0) @binding(8) var<storage, read> page3: array<u32>;
@group(0) @binding(9) var<storage, read_write> flags: array<atomic<u32>>;

fn label(g: u32) -> u32 {
    let p = g >> P.win.w;
    let l = g & ((1u << P.win.w) - 1u);
    switch p {
        case 0u: { return page0[l]; }
        case 1u: { return page1[l]; }
        case 2u: { return page2[l]; }
        default: { return page3[l]; }
    }
}

// Domain = the background mask (read only here).
@compute @workgroup_size(256)
fn fill_holes_border(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    for (var w = P.win.x + gid.x; w < P.win.y; w += stride(nwg)) {
        let word = dom[w - P.win.x];
        for (var k = 0u; k < 4u; k++) {
            let g = w * 4u + k;
            if (g >= P.dims.w) { break; }
            if (unpack_u8(word, k) == 0u) { continue; }
            let c = coords(g);
            if (c.x == 0u || c.y == 0u || c.x + 1u == P.dims.x || c.y + 1u == P.dims.y) {
                atomicStore(&flags[label(g)], 1u);
            }
        }
    }
}

// Domain = the output mask; input a = the original mask.
@compute @workgroup_size(256)
fn fill_holes_out(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    for (var w = P.win.x + gid.x; w < P.win.y; w += stride(nwg)) {
        var r = vec4<u32>(0u);
        for (var k = 0u; k < 4u; k++) {
            let g = w * 4u + k;
            if (g >= P.dims.w) { break; }
            let lm = g - P.base.x;
            if (unpack_u8(mask[lm >> 2u], lm) != 0u) {
                r[k] = 1u;
            } else {
                r[k] = select(1u, 0u, atomicLoad(&flags[label(g)]) != 0u);
            }
        }
        dom[w - P.win.x] = pack_u8x4(r);
    }
}
