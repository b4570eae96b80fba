// mind_ssc.wgsl: MIND-SSC descriptors (Backend::mind_ssc; CPU twin
// ildtrack_compute::descriptor::mind_ssc, the same f32 operations in the same order except
// exp and division). Every input is read through pages (pages.wgsl). P.aux.xyz = the voxel
// grid (nx, ny, nz); a 12-channel output has P.dims.x = 12 nx, element (voxel * 12 + channel).
//
// mind_pairs: D_c = (img[voxel + a_c * dilation] - img[voxel + b_c * dilation])^2, border
//   clamped (iarg.x = dilation);
// mind_box: one box-filter pass over D along axis iarg.x (0 z, 1 y, 2 x), radius iarg.y,
//   farg.x = 1 / (2r + 1); the host runs x, then y, then z;
// mind_var: the voxel's mean of D over the channels (the host sums it in f64 for the mean);
// mind_final: exp(-D_c / clamp(var, farg.x, farg.y)) over the voxel's largest channel.

@group(0) @binding(4) var<storage, read_write> out: array<u32>;

const C: u32 = 12u;

// The 12 neighbour pairs (ildtrack_compute::descriptor::mind_pairs order), offsets as
// (z, y, x) in (.x, .y, .z).
var<private> PAIR_A: array<vec3<i32>, 12> = array<vec3<i32>, 12>(
    vec3<i32>(0, 0, -1), vec3<i32>(0, -1, 0), vec3<i32>(0, -1, 0), vec3<i32>(0, 0, 1),
    vec3<i32>(0, 0, 1), vec3<i32>(1, 0, 0), vec3<i32>(1, 0, 0), vec3<i32>(1, 0, 0),
    vec3<i32>(0, 1, 0), vec3<i32>(0, 1, 0), vec3<i32>(0, 1, 0), vec3<i32>(0, 1, 0));
var<private> PAIR_B: array<vec3<i32>, 12> = array<vec3<i32>, 12>(
    vec3<i32>(-1, 0, 0), vec3<i32>(-1, 0, 0), vec3<i32>(0, 0, -1), vec3<i32>(-1, 0, 0),
    vec3<i32>(0, -1, 0), vec3<i32>(0, 0, -1), vec3<i32>(0, -1, 0), vec3<i32>(0, 0, 1),
    vec3<i32>(-1, 0, 0), vec3<i32>(0, 0, -1), vec3<i32>(0, 0, 1), vec3<i32>(1, 0, 0));

fn rd(i: u32) -> f32 {
    return bitcast<f32>(page_word(i));
}

fn clamp_to(i: i32, n: u32) -> u32 {
    return u32(clamp(i, 0, i32(n) - 1));
}

// (z, y, x) of voxel v of the grid in P.aux.
fn voxel_zyx(v: u32) -> vec3<i32> {
    let nx = P.aux.x;
    let ny = P.aux.y;
    return vec3<i32>(i32(v / (nx * ny)), i32((v / nx) % ny), i32(v % nx));
}

fn voxel_at(q: vec3<i32>) -> u32 {
    let z = clamp_to(q.x, P.aux.z);
    let y = clamp_to(q.y, P.aux.y);
    let x = clamp_to(q.z, P.aux.x);
    return (z * P.aux.y + y) * P.aux.x + x;
}

@compute @workgroup_size(256)
fn mind_pairs(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let dl = P.iarg.x;
    for (var g = P.win.x + gid.x; g < P.win.y; g += stride(nwg)) {
        let v = g / C;
        let c = g % C;
        let q = voxel_zyx(v);
        let t = rd(voxel_at(q + PAIR_A[c] * dl)) - rd(voxel_at(q + PAIR_B[c] * dl));
        out[g - P.win.x] = bitcast<u32>(t * t);
    }
}

@compute @workgroup_size(256)
fn mind_box(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = P.iarg.y;
    for (var g = P.win.x + gid.x; g < P.win.y; g += stride(nwg)) {
        let v = g / C;
        let c = g % C;
        let q = voxel_zyx(v);
        var s = 0.0;
        for (var d = -r; d <= r; d++) {
            var t = q;
            switch P.iarg.x {
                case 0: { t.x = q.x + d; }
                case 1: { t.y = q.y + d; }
                default: { t.z = q.z + d; }
            }
            s += rd(voxel_at(t) * C + c);
        }
        out[g - P.win.x] = bitcast<u32>(s * P.farg.x);
    }
}

// The mean of voxel v's 12 channels of D, summed in channel order as on the CPU.
fn channel_mean(v: u32) -> f32 {
    var s = 0.0;
    for (var c = 0u; c < C; c++) {
        s += rd(v * C + c);
    }
    return s / f32(C);
}

@compute @workgroup_size(256)
fn mind_var(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    for (var g = P.win.x + gid.x; g < P.win.y; g += stride(nwg)) {
        out[g - P.win.x] = bitcast<u32>(channel_mean(g));
    }
}

@compute @workgroup_size(256)
fn mind_final(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    for (var g = P.win.x + gid.x; g < P.win.y; g += stride(nwg)) {
        let v = g / C;
        let c = g % C;
        let var_v = clamp(channel_mean(v), P.farg.x, P.farg.y);
        var mx = 0.0;
        var mine = 0.0;
        for (var k = 0u; k < C; k++) {
            let e = exp(-rd(v * C + k) / var_v);
            mx = max(mx, e);
            if (k == c) { mine = e; }
        }
        out[g - P.win.x] = bitcast<u32>(select(mine, mine / mx, mx > 0.0));
    }
}
