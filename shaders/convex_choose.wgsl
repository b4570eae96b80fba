// convex_choose.wgsl: the coupled choice of the discrete search (Backend::convex_choose; CPU
// twin ildtrack_compute::descriptor::convex_choose, the same f32 operations in the same
// order). One output element (component, voxel) per thread: the voxel's argmin over the
// candidates, recomputed for each of its three components.
//
// The quantised costs (u8, candidates of a voxel consecutive) are read through pages
// (pages.wgsl), the bounds (lo, hi per voxel) and the target (components stacked, as the
// output) bound whole at 10 and 11. P.aux.xyz = the voxel grid (nx, ny, nz); iarg = (radius,
// side, candidates per voxel, 1 when there is a target); farg.x = lambda.

@group(0) @binding(4) var<storage, read_write> out: array<u32>;
@group(0) @binding(10) var<storage, read> bounds: array<f32>;
@group(0) @binding(11) var<storage, read> tgt: array<f32>;

fn cost_byte(e: u32) -> u32 {
    return (page_word(e >> 2u) >> ((e & 3u) * 8u)) & 0xFFu;
}

@compute @workgroup_size(256)
fn convex_choose(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let ncell = P.aux.x * P.aux.y * P.aux.z;
    let r = P.iarg.x;
    let side = u32(P.iarg.y);
    let nk = u32(P.iarg.z);
    let lambda = P.farg.x;
    for (var g = P.win.x + gid.x; g < P.win.y; g += stride(nwg)) {
        let comp = g / ncell;
        let c = g % ncell;
        let lo = bounds[2u * c];
        let hi = bounds[2u * c + 1u];
        var best = 3.4028235e38;
        var pick = vec3<f32>(0.0);  // (z, y, x) in (.x, .y, .z)
        for (var k = 0u; k < nk; k++) {
            let o = vec3<f32>(vec3<i32>(i32(k / (side * side)), i32((k / side) % side), i32(k % side)) - vec3<i32>(r));
            var e = lo + f32(cost_byte(c * nk + k)) / 255.0 * (hi - lo);
            if (P.iarg.w == 1) {
                let dz = o.x - tgt[c];
                let dy = o.y - tgt[ncell + c];
                let dx = o.z - tgt[2u * ncell + c];
                e += lambda * (dz * dz + dy * dy + dx * dx);
            }
            if (e < best) {
                best = e;
                pick = o;
            }
        }
        out[g - P.win.x] = bitcast<u32>(pick[comp]);
    }
}
