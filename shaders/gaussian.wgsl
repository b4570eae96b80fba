// gaussian.wgsl: separable Gaussian smoothing of HU (see CpuBackend::gaussian).
//
// gauss_to_f32: i16 -> f32 with OUTSIDE_FOV_HU read as -1024; gauss_pass: one axis (iarg.x,
// radius iarg.y, weights at binding 9, borders replicated); gauss_round: f32 -> i16 rounded
// half away from zero, OUTSIDE_FOV_HU kept where the input had it.

@group(0) @binding(1) var<storage, read> src: array<u32>;
@group(0) @binding(2) var<storage, read> orig: array<u32>;
@group(0) @binding(4) var<storage, read_write> out: array<u32>;
@group(0) @binding(9) var<storage, read> weights: array<f32>;

fn hu_src(g: u32) -> i32 {
    let l = g - P.base.x;
    return unpack_i16(src[l >> 1u], l);
}

@compute @workgroup_size(256)
fn gauss_to_f32(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    for (var g = P.win.x + gid.x; g < P.win.y; g += stride(nwg)) {
        let v = hu_src(g);
        out[g - P.win.x] = bitcast<u32>(select(f32(v), -1024.0, v == OUTSIDE_FOV_HU));
    }
}

@compute @workgroup_size(256)
fn gauss_pass(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = i32(P.iarg.y);
    for (var g = P.win.x + gid.x; g < P.win.y; g += stride(nwg)) {
        let c = coords(g);
        var pos: i32;
        var n: i32;
        var st: u32;
        switch P.iarg.x {
            case 0: { pos = i32(c.z); n = i32(P.dims.z); st = P.dims.x * P.dims.y; }
            case 1: { pos = i32(c.y); n = i32(P.dims.y); st = P.dims.x; }
            default: { pos = i32(c.x); n = i32(P.dims.x); st = 1u; }
        }
        let line0 = g - u32(pos) * st;
        var acc = 0.0;
        for (var k = 0; k <= 2 * r; k++) {
            let j = clamp(pos + k - r, 0, n - 1);
            acc += weights[k] * bitcast<f32>(src[line0 + u32(j) * st - P.base.x]);
        }
        out[g - P.win.x] = bitcast<u32>(acc);
    }
}

// As gauss_pass, input read through pages.
@compute @workgroup_size(256)
fn gauss_pass_paged(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = i32(P.iarg.y);
    for (var g = P.win.x + gid.x; g < P.win.y; g += stride(nwg)) {
        let c = coords(g);
        var pos: i32;
        var n: i32;
        var st: u32;
        switch P.iarg.x {
            case 0: { pos = i32(c.z); n = i32(P.dims.z); st = P.dims.x * P.dims.y; }
            case 1: { pos = i32(c.y); n = i32(P.dims.y); st = P.dims.x; }
            default: { pos = i32(c.x); n = i32(P.dims.x); st = 1u; }
        }
        let line0 = g - u32(pos) * st;
        var acc = 0.0;
        for (var k = 0; k <= 2 * r; k++) {
            let j = clamp(pos + k - r, 0, n - 1);
            acc += weights[k] * bitcast<f32>(page_word(line0 + u32(j) * st));
        }
        out[g - P.win.x] = bitcast<u32>(acc);
    }
}

fn round_away(v: f32) -> i32 {
    let t = trunc(v);
    var r = t;
    if (abs(v - t) >= 0.5) { r = t + sign(v); }
    return i32(clamp(r, -32767.0, 32767.0));
}

@compute @workgroup_size(256)
fn gauss_round(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    for (var w = P.win.x + gid.x; w < P.win.y; w += stride(nwg)) {
        var h = vec2<i32>(0, 0);
        for (var k = 0u; k < 2u; k++) {
            let g = w * 2u + k;
            if (g >= P.dims.w) { break; }
            let lo = g - P.base.y;
            let o = unpack_i16(orig[lo >> 1u], lo);
            let v = bitcast<f32>(src[g - P.base.x]);
            h[k] = select(round_away(v), OUTSIDE_FOV_HU, o == OUTSIDE_FOV_HU);
        }
        out[w - P.win.x] = pack_i16x2(h.x, h.y);
    }
}
