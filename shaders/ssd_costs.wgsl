// ssd_costs.wgsl: the discrete search's cost volume (Backend::ssd_costs; CPU twin
// ildtrack_compute::descriptor::ssd_costs, the same f32 operations in the same order).
//
// ssd_bounds: per voxel (cell) its lowest and highest cost over the displacements (element
//   cell * 2 + 0 / 1 of an F32 output); ssd_quantise: each candidate's cost as a byte between
//   them. Both descriptor grids are bound whole (fixed at 10, moving at 11), the bounds at 12.
//   P.aux.xyz = the cell grid (nx, ny, nz); iarg = (radius, side, candidates per cell).

@group(0) @binding(4) var<storage, read_write> out: array<u32>;
@group(0) @binding(10) var<storage, read> fixed: array<f32>;
@group(0) @binding(11) var<storage, read> moving: array<f32>;
@group(0) @binding(12) var<storage, read> bounds: array<f32>;

const C: u32 = 12u;

// The mean squared descriptor difference of cell `cell` and its neighbour at candidate k.
fn cost(cell: u32, k: u32) -> f32 {
    let n = P.aux.xyz;
    let r = P.iarg.x;
    let side = u32(P.iarg.y);
    let pos = vec3<i32>(vec3<u32>(cell % n.x, (cell / n.x) % n.y, cell / (n.x * n.y)));
    let o = vec3<i32>(vec3<u32>(k % side, (k / side) % side, k / (side * side))) - vec3<i32>(r);
    let t = vec3<u32>(clamp(pos + o, vec3<i32>(0), vec3<i32>(n) - vec3<i32>(1)));
    let j = (t.z * n.y + t.y) * n.x + t.x;
    var s = 0.0;
    for (var c = 0u; c < C; c++) {
        let d = fixed[cell * C + c] - moving[j * C + c];
        s += d * d;
    }
    return s / f32(C);
}

@compute @workgroup_size(256)
fn ssd_bounds(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let nk = u32(P.iarg.z);
    for (var g = P.win.x + gid.x; g < P.win.y; g += stride(nwg)) {
        let cell = g / 2u;
        var lo = 3.4028235e38;
        var hi = -3.4028235e38;
        for (var k = 0u; k < nk; k++) {
            let v = cost(cell, k);
            lo = min(lo, v);
            hi = max(hi, v);
        }
        out[g - P.win.x] = bitcast<u32>(select(lo, hi, g % 2u == 1u));
    }
}

fn round_away(v: f32) -> u32 {
    let t = trunc(v);
    var r = t;
    if (abs(v - t) >= 0.5) { r = t + sign(v); }
    return u32(clamp(r, 0.0, 255.0));
}

@compute @workgroup_size(256)
fn ssd_quantise(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let nk = u32(P.iarg.z);
    for (var w = P.win.x + gid.x; w < P.win.y; w += stride(nwg)) {
        var b = vec4<u32>(0u);
        for (var l = 0u; l < 4u; l++) {
            let e = w * 4u + l;
            if (e >= P.dims.w) { break; }
            let cell = e / nk;
            let lo = bounds[cell * 2u];
            let hi = bounds[cell * 2u + 1u];
            let scale = select(0.0, 255.0 / (hi - lo), hi > lo);
            b[l] = round_away((cost(cell, e % nk) - lo) * scale);
        }
        out[w - P.win.x] = pack_u8x4(b);
    }
}
