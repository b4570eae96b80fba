// pages.wgsl: prepended (after common.wgsl) to kernels that read an input at random positions.
// Random access through four page bindings of 2^P.win.w words each, used when a window with
// halo does not fit one storage binding.

@group(0) @binding(5) var<storage, read> page0: array<u32>;
@group(0) @binding(6) var<storage, read> page1: array<u32>;
@group(0) @binding(7) var<storage, read> page2: array<u32>;
@group(0) @binding(8) var<storage, read> page3: array<u32>;

fn page_word(w: u32) -> u32 {
    let sh = P.win.w;
    let p = w >> sh;
    let l = w & ((1u << sh) - 1u);
    switch p {
        case 0u: { return page0[l]; }
        case 1u: { return page1[l]; }
        case 2u: { return page2[l]; }
        default: { return page3[l]; }
    }
}
