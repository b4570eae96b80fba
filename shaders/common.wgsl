// common.wgsl: prepended to every kernel (see crates/ildtrack-gpu/src/shaders.rs).
//
// Volumes are flat (z, y, x) arrays of 32-bit words: i16 two per word, u8 four per word
// (little end first), u32 / f32 one per word. A kernel sees windows of them: `P.base` holds
// the first element index of the window bound for inputs a, b, c and for the output, and
// kernels loop grid-stride over the output words `P.win.x .. P.win.y` (global indices).

struct Params {
    dims: vec4<u32>,  // nx, ny, nz, nvox
    win: vec4<u32>,   // out word start, out word end, chunk index, page word shift
    base: vec4<u32>,  // first element in the bindings of input a, b, c and of the output
    iarg: vec4<i32>,
    farg: vec4<f32>,
    aux: vec4<u32>,   // kernel specific (e.g. the input dims of a resampling kernel)
}

@group(0) @binding(0) var<uniform> P: Params;

const WG: u32 = 256u;
const OUTSIDE_FOV_HU: i32 = -32768;

// Signed 16-bit element `l` of a word array element `w` (l = local element index).
fn unpack_i16(w: u32, l: u32) -> i32 {
    let sh = (l & 1u) * 16u;
    return bitcast<i32>(w << (16u - sh)) >> 16u;
}

fn unpack_u8(w: u32, l: u32) -> u32 {
    return (w >> ((l & 3u) * 8u)) & 0xFFu;
}

fn pack_u8x4(v: vec4<u32>) -> u32 {
    return (v.x & 0xFFu) | ((v.y & 0xFFu) << 8u) | ((v.z & 0xFFu) << 16u) | ((v.w & 0xFFu) << 24u);
}

fn pack_i16x2(a: i32, b: i32) -> u32 {
    return (bitcast<u32>(a) & 0xFFFFu) | (bitcast<u32>(b) << 16u);
}

// (x, y, z) of a flat voxel index.
fn coords(g: u32) -> vec3<u32> {
    let nx = P.dims.x;
    let ny = P.dims.y;
    return vec3<u32>(g % nx, (g / nx) % ny, g / (nx * ny));
}

fn flat(x: u32, y: u32, z: u32) -> u32 {
    return (z * P.dims.y + y) * P.dims.x + x;
}

fn stride(nwg: vec3<u32>) -> u32 {
    return nwg.x * WG;
}
