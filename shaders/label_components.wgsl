// label_components.wgsl: connected components by union-find hooking with pointer jumping.
//
// The label volume (u32, one per voxel) is bound as four pages of 2^P.win.w words so any
// voxel can follow its label pointer anywhere; the mask is the chunked domain (binding 4).
// Labels: 0 = background, else (index of a voxel of the component) + 1, always pointing to a
// smaller-or-equal index of the same component. ccl_init gives each voxel its x-run start;
// one ccl_link pass merges the trees of every adjacent pair (unite: hook the larger root under
// the smaller, retried until both share a root) and one ccl_compress pass (pointer jumping)
// makes every label the first voxel (raster order) of its component; debug builds run a
// second link pass that must find nothing to merge. Roots are then ranked in
// raster order (block counts, one scan, in-block scan) so labels become 1..n exactly as
// CpuBackend numbers them, and ccl_infos gathers counts, boxes and coordinate sums.

const BLOCK_WORDS: u32 = 256u; // one block = 256 mask words = 1024 voxels
const FLAG: u32 = 0x80000000u;

@group(0) @binding(4) var<storage, read> dom: array<u32>;
@group(0) @binding(5) var<storage, read_write> page0: array<atomic<u32>>;
@group(0) @binding(6) var<storage, read_write> page1: array<atomic<u32>>;
@group(0) @binding(7) var<storage, read_write> page2: array<atomic<u32>>;
@group(0) @binding(8) var<storage, read_write> page3: array<atomic<u32>>;
@group(0) @binding(9) var<storage, read_write> aux: array<atomic<u32>>;
@group(0) @binding(10) var<storage, read> offsets: array<u32>;

fn lload(g: u32) -> u32 {
    let p = g >> P.win.w;
    let l = g & ((1u << P.win.w) - 1u);
    switch p {
        case 0u: { return atomicLoad(&page0[l]); }
        case 1u: { return atomicLoad(&page1[l]); }
        case 2u: { return atomicLoad(&page2[l]); }
        default: { return atomicLoad(&page3[l]); }
    }
}

fn lstore(g: u32, v: u32) {
    let p = g >> P.win.w;
    let l = g & ((1u << P.win.w) - 1u);
    switch p {
        case 0u: { atomicStore(&page0[l], v); }
        case 1u: { atomicStore(&page1[l], v); }
        case 2u: { atomicStore(&page2[l], v); }
        default: { atomicStore(&page3[l], v); }
    }
}

fn lmin(g: u32, v: u32) -> u32 {
    let p = g >> P.win.w;
    let l = g & ((1u << P.win.w) - 1u);
    switch p {
        case 0u: { return atomicMin(&page0[l], v); }
        case 1u: { return atomicMin(&page1[l], v); }
        case 2u: { return atomicMin(&page2[l], v); }
        default: { return atomicMin(&page3[l], v); }
    }
}

fn dom_u8(g: u32) -> u32 {
    let l = g - P.base.w;
    return unpack_u8(dom[l >> 2u], l);
}

@group(0) @binding(1) var<storage, read> mask_halo: array<u32>;

// Mask with a halo of one row behind (input a), for the run scan of ccl_init.
fn mask_a(g: u32) -> u32 {
    let l = g - P.base.x;
    return unpack_u8(mask_halo[l >> 2u], l);
}

// Every foreground voxel starts with the label of the first voxel of its run along x, so
// runs never need linking inside themselves.
@compute @workgroup_size(256)
fn ccl_init(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    for (var w = P.win.x + gid.x; w < P.win.y; w += stride(nwg)) {
        for (var k = 0u; k < 4u; k++) {
            let g = w * 4u + k;
            if (g >= P.dims.w) { break; }
            if (dom_u8(g) == 0u) {
                lstore(g, 0u);
                continue;
            }
            // Walk back to the start of the run, a word (4 voxels) at a time where whole
            // words are foreground (mask words are aligned: the window starts on a word).
            let row0 = g - g % P.dims.x;
            var s = g;
            loop {
                if (s == row0) { break; }
                if ((s & 3u) == 0u && s >= row0 + 4u) {
                    let mw = mask_halo[(s - 4u - P.base.x) >> 2u];
                    if ((mw & 0xFFu) != 0u && (mw & 0xFF00u) != 0u && (mw & 0xFF0000u) != 0u && (mw & 0xFF000000u) != 0u) {
                        s -= 4u;
                        continue;
                    }
                }
                if (mask_a(s - 1u) == 0u) { break; }
                s -= 1u;
            }
            lstore(g, s + 1u);
        }
    }
}

fn root_of(l0: u32) -> u32 {
    var l = l0;
    loop {
        let n = lload(l - 1u);
        if (n == l || n == 0u) { break; }
        l = n;
    }
    return l;
}

// Neighbour offsets (dx, dy, dz, 0) to visit, P.iarg.y of them: the backward half of the
// connectivity without (-1, 0, 0) (same x-run, same label after ccl_init). Each adjacent pair
// is then looked at once, from its later voxel.
@group(0) @binding(11) var<storage, read> nbrs: array<vec4<i32>>;

// Merge the trees of labels a and b: hook the larger root under the smaller one with
// atomicMin, which keeps every pointer aimed at a smaller index of the same component (no
// cycles). If the larger one was no longer a root (another invocation hooked it meanwhile, to
// `old`), atomicMin may have moved it off `old`: go on merging `old` with the smaller root, so
// nothing is lost. On return a and b are in one tree, so one link pass joins every pair
// (Playne & Hawick, 2018) and the labelling needs no rounds until convergence.
fn unite(a0: u32, b0: u32) {
    var a = a0;
    var b = b0;
    loop {
        a = root_of(a);
        b = root_of(b);
        if (a == b) { break; }
        let hi = max(a, b);
        let lo = min(a, b);
        let old = lmin(hi - 1u, lo);
        if (old == hi) { break; }
        a = old;
        b = lo;
    }
}

// For every adjacent foreground pair with different labels, merge their trees (unite);
// aux[0] = 1 records that something differed (a check pass finds nothing).
@compute @workgroup_size(256)
fn ccl_link(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let dims = vec3<i32>(P.dims.xyz);
    let n_nbrs = u32(P.iarg.y);
    // Largest dx of the neighbour rows: 1 for 26 / slice-8 connectivity, 0 for 6 / slice-4.
    let dmax = select(0, 1, P.iarg.x == 1 || P.iarg.x == 3);
    for (var w = P.win.x + gid.x; w < P.win.y; w += stride(nwg)) {
        for (var k = 0u; k < 4u; k++) {
            let g = w * 4u + k;
            if (g >= P.dims.w) { break; }
            if (dom_u8(g) == 0u) { continue; }
            let c = vec3<i32>(coords(g));
            // Inside a run (x - 1 is foreground, hence in x's tree since ccl_init), x - 1
            // already meets every neighbour of x except the one at dx = dmax in each row,
            // and that one too when the voxel left of it is foreground (same run, same tree):
            // only runs' first voxels look at all neighbours, the others at one per row.
            var left_fg = false;
            if (c.x > 0) {
                if (g - 1u >= P.base.w) { left_fg = dom_u8(g - 1u) != 0u; } else { left_fg = lload(g - 1u) != 0u; }
            }
            let l = lload(g);
            var last = l;
            var changed = false;
            for (var i = 0u; i < n_nbrs; i++) {
                let o = nbrs[i].xyz;
                if (left_fg && o.x != dmax) { continue; }
                let q = c + o;
                if (any(q < vec3<i32>(0)) || any(q >= dims)) { continue; }
                let ln = lload(flat(u32(q.x), u32(q.y), u32(q.z)));
                if (ln == 0u || ln == l || ln == last) { continue; }
                if (left_fg && lload(flat(u32(q.x - 1), u32(q.y), u32(q.z))) != 0u) { continue; }
                last = ln;
                unite(ln, l);
                changed = true;
            }
            if (changed) { atomicStore(&aux[0], 1u); }
        }
    }
}

@compute @workgroup_size(256)
fn ccl_compress(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    for (var w = P.win.x + gid.x; w < P.win.y; w += stride(nwg)) {
        for (var k = 0u; k < 4u; k++) {
            let g = w * 4u + k;
            if (g >= P.dims.w) { break; }
            if (dom_u8(g) == 0u) { continue; }
            let l = lload(g);
            let r = root_of(l);
            if (r != l) { lstore(g, r); }
        }
    }
}

fn roots_in_word(w: u32) -> u32 {
    var c = 0u;
    if (w >= P.win.y) { return 0u; }
    for (var k = 0u; k < 4u; k++) {
        let g = w * 4u + k;
        if (g >= P.dims.w) { break; }
        if (dom_u8(g) != 0u && lload(g) == g + 1u) { c += 1u; }
    }
    return c;
}

var<workgroup> wg_sum: atomic<u32>;
var<workgroup> wg_scan: array<u32, 256>;

// aux[b] = number of component roots in block b (blocks never straddle chunks).
@compute @workgroup_size(256)
fn ccl_block_counts(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let b0 = P.win.x / BLOCK_WORDS;
    let b1 = (P.win.y + BLOCK_WORDS - 1u) / BLOCK_WORDS;
    for (var b = b0 + wid.x; b < b1; b += nwg.x) {
        if (lid == 0u) { atomicStore(&wg_sum, 0u); }
        workgroupBarrier();
        let c = roots_in_word(b * BLOCK_WORDS + lid);
        if (c > 0u) { atomicAdd(&wg_sum, c); }
        workgroupBarrier();
        if (lid == 0u) { atomicStore(&aux[b], atomicLoad(&wg_sum)); }
        workgroupBarrier();
    }
}

// One workgroup: aux[0..n) (n = iarg.y) becomes its exclusive prefix sum, aux[n] the total.
@compute @workgroup_size(256)
fn ccl_scan(@builtin(local_invocation_index) lid: u32) {
    let n = u32(P.iarg.y);
    let seg = (n + WG - 1u) / WG;
    let lo = min(lid * seg, n);
    let hi = min(lo + seg, n);
    var s = 0u;
    for (var i = lo; i < hi; i++) { s += atomicLoad(&aux[i]); }
    wg_scan[lid] = s;
    workgroupBarrier();
    if (lid == 0u) {
        var acc = 0u;
        for (var t = 0u; t < WG; t++) {
            let v = wg_scan[t];
            wg_scan[t] = acc;
            acc += v;
        }
        atomicStore(&aux[n], acc);
    }
    workgroupBarrier();
    var acc = wg_scan[lid];
    for (var i = lo; i < hi; i++) {
        let v = atomicLoad(&aux[i]);
        atomicStore(&aux[i], acc);
        acc += v;
    }
}

// Roots get their final label (rank in raster order + 1), flagged with the top bit.
@compute @workgroup_size(256)
fn ccl_assign(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let b0 = P.win.x / BLOCK_WORDS;
    let b1 = (P.win.y + BLOCK_WORDS - 1u) / BLOCK_WORDS;
    for (var b = b0 + wid.x; b < b1; b += nwg.x) {
        let w = b * BLOCK_WORDS + lid;
        let c = roots_in_word(w);
        wg_scan[lid] = c;
        workgroupBarrier();
        if (lid == 0u) {
            var acc = 0u;
            for (var t = 0u; t < WG; t++) {
                let v = wg_scan[t];
                wg_scan[t] = acc;
                acc += v;
            }
        }
        workgroupBarrier();
        if (c > 0u) {
            var rank = offsets[b] + wg_scan[lid];
            for (var k = 0u; k < 4u; k++) {
                let g = w * 4u + k;
                if (g >= P.dims.w) { break; }
                if (dom_u8(g) != 0u && lload(g) == g + 1u) {
                    rank += 1u;
                    lstore(g, rank | FLAG);
                }
            }
        }
        workgroupBarrier();
    }
}

@compute @workgroup_size(256)
fn ccl_finalize(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    for (var w = P.win.x + gid.x; w < P.win.y; w += stride(nwg)) {
        for (var k = 0u; k < 4u; k++) {
            let g = w * 4u + k;
            if (g >= P.dims.w) { break; }
            if (dom_u8(g) == 0u) { continue; }
            let v = lload(g);
            if ((v & FLAG) != 0u) {
                lstore(g, v & ~FLAG);
            } else {
                lstore(g, lload(v - 1u) & ~FLAG);
            }
        }
    }
}

// Per label l (final, 1..n): 14 words at aux[14 (l - 1)]: count (lo, hi), min z y x,
// max z y x, sum z (lo, hi), sum y (lo, hi), sum x (lo, hi).
fn add64(i: u32, v: u32) {
    if (v == 0u) { return; }
    let old = atomicAdd(&aux[i], v);
    if (old > 0xFFFFFFFFu - v) { atomicAdd(&aux[i + 1u], 1u); }
}

fn flush(l: u32, n: u32, mn: vec3<u32>, mx: vec3<u32>, sum: vec3<u32>) {
    let o = 14u * (l - 1u);
    add64(o, n);
    atomicMin(&aux[o + 2u], mn.z);
    atomicMin(&aux[o + 3u], mn.y);
    atomicMin(&aux[o + 4u], mn.x);
    atomicMax(&aux[o + 5u], mx.z);
    atomicMax(&aux[o + 6u], mx.y);
    atomicMax(&aux[o + 7u], mx.x);
    add64(o + 8u, sum.z);
    add64(o + 10u, sum.y);
    add64(o + 12u, sum.x);
}

const INFO_SEGMENT: u32 = 64u; // words (256 voxels) per thread: fewer atomics on big components

@compute @workgroup_size(256)
fn ccl_infos(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    for (var s = P.win.x + gid.x * INFO_SEGMENT; s < P.win.y; s += stride(nwg) * INFO_SEGMENT) {
        // Neighbouring voxels share a label most of the time: accumulate, flush on change.
        var cur = 0u;
        var n = 0u;
        var mn = vec3<u32>(0xFFFFFFFFu);
        var mx = vec3<u32>(0u);
        var sum = vec3<u32>(0u);
        let end = min(s + INFO_SEGMENT, P.win.y);
        for (var w = s; w < end; w++) {
            for (var k = 0u; k < 4u; k++) {
                let g = w * 4u + k;
                if (g >= P.dims.w) { break; }
                if (dom_u8(g) == 0u) { continue; }
                let l = lload(g);
                if (l != cur) {
                    if (cur != 0u) { flush(cur, n, mn, mx, sum); }
                    cur = l;
                    n = 0u;
                    mn = vec3<u32>(0xFFFFFFFFu);
                    mx = vec3<u32>(0u);
                    sum = vec3<u32>(0u);
                }
                let c = coords(g);
                n += 1u;
                mn = min(mn, c);
                mx = max(mx, c);
                sum += c;
            }
        }
        if (cur != 0u) { flush(cur, n, mn, mx, sum); }
    }
}
