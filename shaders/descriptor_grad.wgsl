// descriptor_grad.wgsl: the data-term gradient of a descriptor registration
// (Backend::descriptor_grad; CPU twin ildtrack_compute::descriptor::descriptor_grad, which
// scatters each voxel's gradient into the parameter grid; here the scatter is a gather, with
// the same weights, so no float atomics are needed).
//
// grad_voxel: per working voxel v, the gradient g (3 components, element v * 3 + k of the
//   output, P.dims.x = 3 nx), 0 outside the domain or where the follow-up is not covered.
//   moving descriptor through pages (bindings 5-8, shift P.win.w), fixed descriptor through
//   pages at 10-13 (shift P.aux.w), cover (f32), domain (u8 packed) and the parameter grid
//   (f32, components stacked along z) bound whole at 14, 15, 16. P.aux.xyz = the voxel grid
//   (nx, ny, nz); iarg = (spacing, px, py, pz).
// grad_gather: per parameter element (component c, point j), the sum over the voxels whose
//   trilinear footprint covers j of weight * g_c, reading grad_voxel's output through pages.
//   P.aux.xyz = the voxel grid; iarg.x = spacing; the output dims are (px, py, 3 pz).

@group(0) @binding(4) var<storage, read_write> out: array<u32>;
@group(0) @binding(10) var<storage, read> fpage0: array<u32>;
@group(0) @binding(11) var<storage, read> fpage1: array<u32>;
@group(0) @binding(12) var<storage, read> fpage2: array<u32>;
@group(0) @binding(13) var<storage, read> fpage3: array<u32>;
@group(0) @binding(14) var<storage, read> cover: array<f32>;
@group(0) @binding(15) var<storage, read> domain: array<u32>;
@group(0) @binding(16) var<storage, read> params: array<f32>;

const C: u32 = 12u;

fn fixed_word(w: u32) -> u32 {
    let sh = P.aux.w;
    let p = w >> sh;
    let l = w & ((1u << sh) - 1u);
    switch p {
        case 0u: { return fpage0[l]; }
        case 1u: { return fpage1[l]; }
        case 2u: { return fpage2[l]; }
        default: { return fpage3[l]; }
    }
}

// Grid (nx, ny, nz) of the voxels, as the CPU's (z, y, x) dims in (.z, .y, .x).
fn grid() -> vec3<u32> {
    return P.aux.xyz;
}

// Base index and fraction on one axis of n points at position w, border clamped (the CPU's
// grid_cell): an axis of one point has fraction 0.
fn cell_base(w: f32, n: u32) -> u32 {
    let c = clamp(w, 0.0, f32(n - 1u));
    return min(u32(floor(c)), max(n, 2u) - 2u);
}

fn cell_frac(w: f32, n: u32, b: u32) -> f32 {
    if (n < 2u) { return 0.0; }
    return clamp(w, 0.0, f32(n - 1u)) - f32(b);
}

// Component c of the parameter grid (px, py, pz) trilinear at (x, y, z), border clamped.
fn sample_params(c: u32, w: vec3<f32>, pd: vec3<u32>) -> f32 {
    let b = vec3<u32>(cell_base(w.x, pd.x), cell_base(w.y, pd.y), cell_base(w.z, pd.z));
    let f = vec3<f32>(cell_frac(w.x, pd.x, b.x), cell_frac(w.y, pd.y, b.y), cell_frac(w.z, pd.z, b.z));
    let sx = select(0u, 1u, pd.x > 1u);
    let sy = select(0u, pd.x, pd.y > 1u);
    let sz = select(0u, pd.x * pd.y, pd.z > 1u);
    let o = c * pd.x * pd.y * pd.z + (b.z * pd.y + b.y) * pd.x + b.x;
    let c00 = mix(params[o], params[o + sx], f.x);
    let c01 = mix(params[o + sy], params[o + sy + sx], f.x);
    let c10 = mix(params[o + sz], params[o + sz + sx], f.x);
    let c11 = mix(params[o + sz + sy], params[o + sz + sy + sx], f.x);
    return mix(mix(c00, c01, f.y), mix(c10, c11, f.y), f.z);
}

fn lerp(a: f32, b: f32, t: f32) -> f32 {
    return a + (b - a) * t;
}

fn domain_at(v: u32) -> bool {
    return ((domain[v >> 2u] >> ((v & 3u) * 8u)) & 0xFFu) != 0u;
}

fn grad_of_voxel(v: u32) -> vec3<f32> {
    let n = grid();
    let a = f32(P.iarg.x);
    let pd = vec3<u32>(u32(P.iarg.y), u32(P.iarg.z), u32(P.iarg.w));
    let wi = vec3<u32>(v % n.x, (v / n.x) % n.y, v / (n.x * n.y));
    let w = vec3<f32>(wi);
    let wp = w / a;
    // u in (z, y, x) components 0, 1, 2 of the parameter grid; positions here are (x, y, z).
    let u = vec3<f32>(sample_params(2u, wp, pd), sample_params(1u, wp, pd), sample_params(0u, wp, pd));
    let p = w + u;
    let nf = vec3<f32>(n) - vec3<f32>(1.0);
    if (any(n < vec3<u32>(2u)) || !all(p >= vec3<f32>(0.0)) || !all(p <= nf)) {
        return vec3<f32>(0.0);
    }
    let b = min(vec3<u32>(floor(p)), n - vec3<u32>(2u));
    let f = p - vec3<f32>(b);
    let sy = n.x;
    let sz = n.x * n.y;
    let o = (b.z * n.y + b.y) * n.x + b.x;
    // Coverage, trilinear (the CPU's trilinear_grad value).
    let k00 = lerp(cover[o], cover[o + 1u], f.x);
    let k01 = lerp(cover[o + sy], cover[o + sy + 1u], f.x);
    let k10 = lerp(cover[o + sz], cover[o + sz + 1u], f.x);
    let k11 = lerp(cover[o + sz + sy], cover[o + sz + sy + 1u], f.x);
    if (!(lerp(lerp(k00, k01, f.y), lerp(k10, k11, f.y), f.z) > 0.999)) {
        return vec3<f32>(0.0);
    }
    var corners = array<u32, 8>(o, o + 1u, o + sy, o + sy + 1u, o + sz, o + sz + 1u, o + sz + sy, o + sz + sy + 1u);
    var gu = vec3<f32>(0.0);  // (z, y, x) in (.x, .y, .z), as the CPU's gu
    for (var c = 0u; c < C; c++) {
        var s: array<f32, 8>;
        for (var k = 0u; k < 8u; k++) {
            s[k] = bitcast<f32>(page_word(corners[k] * C + c));
        }
        let c00 = lerp(s[0], s[1], f.x);
        let c01 = lerp(s[2], s[3], f.x);
        let c10 = lerp(s[4], s[5], f.x);
        let c11 = lerp(s[6], s[7], f.x);
        let c0 = lerp(c00, c01, f.y);
        let c1 = lerp(c10, c11, f.y);
        let val = lerp(c0, c1, f.z);
        let gz = c1 - c0;
        let gy = lerp(c01 - c00, c11 - c10, f.z);
        let gx = lerp(lerp(s[1] - s[0], s[3] - s[2], f.y), lerp(s[5] - s[4], s[7] - s[6], f.y), f.z);
        let r = 2.0 * (val - bitcast<f32>(fixed_word(v * C + c))) / f32(C);
        gu += r * vec3<f32>(gz, gy, gx);
    }
    return gu;
}

@compute @workgroup_size(256)
fn grad_voxel(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    // One thread per voxel writes the voxel's three components that fall in this chunk (a
    // voxel cut by a chunk border is computed in both chunks).
    for (var v = P.win.x / 3u + gid.x; v * 3u < P.win.y; v += stride(nwg)) {
        var g = vec3<f32>(0.0);
        if (domain_at(v)) {
            g = grad_of_voxel(v);
        }
        for (var k = 0u; k < 3u; k++) {
            let e = v * 3u + k;
            if (e >= P.win.x && e < P.win.y) {
                out[e - P.win.x] = bitcast<u32>(g[k]);
            }
        }
    }
}

// Weight of voxel coordinate w on parameter point j of an axis of np points (spacing a):
// the CPU scatter's (1 - frac) at its base, frac at base + 1.
fn tent(w: u32, j: u32, a: f32, np: u32) -> f32 {
    let wp = f32(w) / a;
    let b = cell_base(wp, np);
    let f = cell_frac(wp, np, b);
    if (b == j) { return 1.0 - f; }
    if (b + 1u == j && np >= 2u) { return f; }
    return 0.0;
}

@compute @workgroup_size(256)
fn grad_gather(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = grid();
    let a = u32(P.iarg.x);
    let af = f32(a);
    let pd = vec3<u32>(P.dims.x, P.dims.y, P.dims.z / 3u);
    let np = pd.x * pd.y * pd.z;
    for (var g = P.win.x + gid.x; g < P.win.y; g += stride(nwg)) {
        let comp = g / np;
        let j = g % np;
        let jp = vec3<u32>(j % pd.x, (j / pd.x) % pd.y, j / (pd.x * pd.y));
        // Voxels w with w / a within one parameter step of j.
        let lo = vec3<u32>(max(jp, vec3<u32>(1u)) - vec3<u32>(1u)) * a;
        let hi = min((jp + vec3<u32>(1u)) * a, n - vec3<u32>(1u));
        var s = 0.0;
        for (var z = lo.z; z <= hi.z; z++) {
            let wz = tent(z, jp.z, af, pd.z);
            if (wz == 0.0) { continue; }
            for (var y = lo.y; y <= hi.y; y++) {
                let wy = tent(y, jp.y, af, pd.y);
                if (wy == 0.0) { continue; }
                for (var x = lo.x; x <= hi.x; x++) {
                    let wx = tent(x, jp.x, af, pd.x);
                    if (wx == 0.0) { continue; }
                    let v = (z * n.y + y) * n.x + x;
                    s += wz * wy * wx * bitcast<f32>(page_word(v * 3u + comp));
                }
            }
        }
        out[g - P.win.x] = bitcast<u32>(s);
    }
}
