// downsample_mean.wgsl: block mean over (fz, fy, fx) = iarg.xyz input voxels, partial blocks
// included, rounded half away from zero; OUTSIDE_FOV_HU counts as -1024 and is kept where the
// whole block is outside. Output dims in P.dims, input dims (nx, ny, nz) in P.aux.xyz; the
// input is read through pages (i16, two per word).

@group(0) @binding(4) var<storage, read_write> out: array<u32>;

// Random access into a volume bound as up to four pages of 2^P.win.w words each.

fn hu_in(x: u32, y: u32, z: u32) -> i32 {
    let e = (z * P.aux.y + y) * P.aux.x + x;
    return unpack_i16(page_word(e >> 1u), e);
}

fn block_mean(g: u32) -> i32 {
    let c = coords(g);
    let f = vec3<u32>(u32(P.iarg.z), u32(P.iarg.y), u32(P.iarg.x)); // x, y, z factors
    let lo = c * f;
    let hi = min(lo + f, P.aux.xyz);
    var sum = 0;
    var n = 0;
    var inside = 0;
    for (var z = lo.z; z < hi.z; z++) {
        for (var y = lo.y; y < hi.y; y++) {
            for (var x = lo.x; x < hi.x; x++) {
                let v = hu_in(x, y, z);
                n += 1;
                if (v == OUTSIDE_FOV_HU) { sum -= 1024; } else { sum += v; inside += 1; }
            }
        }
    }
    if (inside == 0) { return OUTSIDE_FOV_HU; }
    // round(sum / n) half away from zero, in integers.
    if (sum >= 0) { return (2 * sum + n) / (2 * n); }
    return -((-2 * sum + n) / (2 * n));
}

@compute @workgroup_size(256)
fn downsample_mean(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    for (var w = P.win.x + gid.x; w < P.win.y; w += stride(nwg)) {
        var h = vec2<i32>(0, 0);
        for (var k = 0u; k < 2u; k++) {
            let g = w * 2u + k;
            if (g >= P.dims.w) { break; }
            h[k] = block_mean(g);
        }
        out[w - P.win.x] = pack_i16x2(h.x, h.y);
    }
}
