// edt.wgsl: exact separable squared Euclidean distance transform (mm^2), one axis per pass.
//
// Pass along axis a: d(i) = min_q f(q) + s^2 (i - q)^2 over the voxel's line, searched outwards
// from i and stopped as soon as s^2 k^2 can no longer improve the best value or exceeds the
// limit farg.y (morphology needs distances up to the ball radius only; the result is exact for
// every value <= limit). P.aux.w carries the bits of +infinity.

@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> src: array<u32>;

// Random access into a volume bound as up to four pages of 2^P.win.w words each.

fn inf() -> f32 { return bitcast<f32>(P.aux.w); }

// Mask (input a, u8) -> 0 at sources, +inf elsewhere. iarg.x = 0: sources are m != 0;
// iarg.x = 1: sources are m == 0.
@compute @workgroup_size(256)
fn edt_init(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    for (var g = P.win.x + gid.x; g < P.win.y; g += stride(nwg)) {
        let l = g - P.base.x;
        let m = unpack_u8(src[l >> 2u], l);
        let is_src = (m != 0u) == (P.iarg.x == 0);
        out[g - P.win.x] = select(inf(), 0.0, is_src);
    }
}

fn line(g: u32) -> vec3<u32> {
    // (position along the axis, axis length, flat stride of the axis)
    let c = coords(g);
    switch P.iarg.x {
        case 0: { return vec3<u32>(c.z, P.dims.z, P.dims.x * P.dims.y); }
        case 1: { return vec3<u32>(c.y, P.dims.y, P.dims.x); }
        default: { return vec3<u32>(c.x, P.dims.x, 1u); }
    }
}

fn finish(d: f32) -> f32 {
    return select(d, sqrt(d), P.iarg.y == 1);
}

fn win_f(g: u32) -> f32 { return bitcast<f32>(src[g - P.base.x]); }

// f32 input a bound as a window with a halo of the search radius.
@compute @workgroup_size(256)
fn edt_pass_win(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let s2 = P.farg.x;
    let limit = P.farg.y;
    for (var g = P.win.x + gid.x; g < P.win.y; g += stride(nwg)) {
        let ln = line(g);
        var best = win_f(g);
        for (var k = 1u; k < ln.y; k++) {
            let dk = s2 * f32(k) * f32(k);
            if (dk >= best || dk > limit) { break; }
            let lo = ln.x >= k;
            let hi = ln.x + k < ln.y;
            if (!lo && !hi) { break; }
            if (lo) { best = min(best, win_f(g - k * ln.z) + dk); }
            if (hi) { best = min(best, win_f(g + k * ln.z) + dk); }
        }
        out[g - P.win.x] = finish(best);
    }
}

// f32 input read through four pages (for z passes whose halo does not fit one binding).
@compute @workgroup_size(256)
fn edt_pass_paged(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let s2 = P.farg.x;
    let limit = P.farg.y;
    for (var g = P.win.x + gid.x; g < P.win.y; g += stride(nwg)) {
        let ln = line(g);
        var best = bitcast<f32>(page_word(g));
        for (var k = 1u; k < ln.y; k++) {
            let dk = s2 * f32(k) * f32(k);
            if (dk >= best || dk > limit) { break; }
            let lo = ln.x >= k;
            let hi = ln.x + k < ln.y;
            if (!lo && !hi) { break; }
            if (lo) { best = min(best, bitcast<f32>(page_word(g - k * ln.z)) + dk); }
            if (hi) { best = min(best, bitcast<f32>(page_word(g + k * ln.z)) + dk); }
        }
        out[g - P.win.x] = finish(best);
    }
}
