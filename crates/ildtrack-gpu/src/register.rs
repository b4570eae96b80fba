//! The registration's kernels on the device: the bodies of `Backend::mind_ssc`
//! (`shaders/mind_ssc.wgsl`), `Backend::ssd_costs` (`shaders/ssd_costs.wgsl`),
//! `Backend::convex_choose` (`shaders/convex_choose.wgsl`) and `Backend::descriptor_grad`
//! (`shaders/descriptor_grad.wgsl`).
//! Descriptors (12 channels) and displacement grids are read at random positions, so every
//! volume is bound through pages (or whole, for the small grids), never as slabs.

use ildtrack_compute::{
    ComputeError, MIND_CHANNELS, Result, check_convex_choose, check_descriptor_grad,
    check_ssd_costs,
};

use crate::engine::{ElemKind, Engine, Extra, GpuBuf, Launch};
use crate::error::GpuError;

fn err(e: GpuError) -> ComputeError {
    e.into()
}

fn arg(v: usize, what: &str) -> Result<i32> {
    i32::try_from(v).map_err(|_| {
        ComputeError::InvalidArgument(format!("{what} {v} does not fit a shader argument"))
    })
}

fn grid_aux(d: [usize; 3], w: u32) -> [u32; 4] {
    [d[2] as u32, d[1] as u32, d[0] as u32, w]
}

/// `b` bound whole (a small grid read at random positions); it must fit one binding.
fn whole<'a>(eng: &Engine, b: &'a GpuBuf) -> Result<Extra<'a>> {
    let size = (b.words() * 4).max(4);
    let limit = eng.ctx.limits.max_storage_buffer_binding_size;
    if size > limit {
        return Err(err(GpuError::TooLarge {
            what: "a registration grid bound whole".to_string(),
            needed_bytes: size,
            limit_bytes: limit,
        }));
    }
    Ok(Extra {
        buf: &b.buf,
        offset: 0,
        size,
    })
}

/// One pass of the MIND-SSC kernel `entry` over `out`, `input` read through pages.
fn paged_pass(
    eng: &Engine,
    entry: &'static str,
    out: &GpuBuf,
    input: &GpuBuf,
    iarg: [i32; 4],
    farg: [f32; 4],
) -> Result<()> {
    let (pages, shift) = eng.pages(input).map_err(err)?;
    let [p0, p1, p2, p3] = pages;
    let extras = [(5, p0), (6, p1), (7, p2), (8, p3)];
    let mut l = Launch::new("mind_ssc", entry, out);
    l.extras = &extras;
    l.page_shift = shift;
    l.iarg = iarg;
    l.farg = farg;
    l.aux = grid_aux(input_grid(input, entry), 0);
    eng.run("mind_ssc", &[l]).map_err(err)
}

/// The voxel grid of a MIND pass's input: the image itself for `mind_pairs`, else a
/// 12-channel volume.
fn input_grid(input: &GpuBuf, entry: &str) -> [usize; 3] {
    let d = input.dims;
    if entry == "mind_pairs" {
        d
    } else {
        [d[0], d[1], d[2] / MIND_CHANNELS]
    }
}

pub(crate) fn mind_ssc(
    eng: &Engine,
    img: &GpuBuf,
    dilation: usize,
    radius: usize,
) -> Result<GpuBuf> {
    let d = img.dims;
    let od = [d[0], d[1], d[2] * MIND_CHANNELS];
    if img.nvox() == 0 {
        return eng.alloc(od, ElemKind::F32).map_err(err);
    }
    let dl = arg(dilation, "MIND dilation")?;
    let r = arg(radius, "MIND patch radius")?;
    // Squared differences, box-filtered along x, y, z (the CPU's order), and the voxels'
    // channel means: one submission.
    let (dsq, var) = eng.batch("mind_ssc", || -> Result<(GpuBuf, GpuBuf)> {
        let mut dsq = eng.alloc_uninit(od, ElemKind::F32).map_err(err)?;
        paged_pass(eng, "mind_pairs", &dsq, img, [dl, 0, 0, 0], [0.0; 4])?;
        if radius > 0 {
            let norm = 1.0 / (2 * radius + 1) as f32;
            for axis in [2, 1, 0] {
                let next = eng.alloc_uninit(od, ElemKind::F32).map_err(err)?;
                paged_pass(
                    eng,
                    "mind_box",
                    &next,
                    &dsq,
                    [axis, r, 0, 0],
                    [norm, 0.0, 0.0, 0.0],
                )?;
                dsq = next;
            }
        }
        let var = eng.alloc_uninit(d, ElemKind::F32).map_err(err)?;
        paged_pass(eng, "mind_var", &var, &dsq, [0; 4], [0.0; 4])?;
        Ok((dsq, var))
    })?;
    // The mean variance in f64 in voxel order, exactly as the CPU sums it.
    let bytes = eng.download_bytes(&var).map_err(err)?;
    let vars: Vec<f32> = bytemuck::pod_collect_to_vec(&bytes);
    let mean = (vars.iter().map(|&v| v as f64).sum::<f64>() / vars.len().max(1) as f64) as f32;
    let (lo, hi) = ildtrack_compute::descriptor::mind_var_bounds(mean);
    let out = eng.alloc_uninit(od, ElemKind::F32).map_err(err)?;
    paged_pass(eng, "mind_final", &out, &dsq, [0; 4], [lo, hi, 0.0, 0.0])?;
    Ok(out)
}

pub(crate) fn descriptor_grad(
    eng: &Engine,
    fixed: &GpuBuf,
    moving: &GpuBuf,
    cover: &GpuBuf,
    domain: &GpuBuf,
    params: &GpuBuf,
    spacing: usize,
) -> Result<GpuBuf> {
    let pd = check_descriptor_grad(
        fixed.dims,
        moving.dims,
        cover.dims,
        domain.dims,
        params.dims,
        spacing,
    )?;
    let d = cover.dims;
    if cover.nvox() == 0 {
        return eng.alloc(params.dims, ElemKind::F32).map_err(err);
    }
    let a = arg(spacing, "parameter spacing")?;
    let iarg = [
        a,
        arg(pd[2], "parameter grid")?,
        arg(pd[1], "parameter grid")?,
        arg(pd[0], "parameter grid")?,
    ];
    eng.batch("descriptor_grad", || -> Result<GpuBuf> {
        let per_voxel = eng
            .alloc_uninit([d[0], d[1], d[2] * 3], ElemKind::F32)
            .map_err(err)?;
        {
            let (pm, shift_m) = eng.pages(moving).map_err(err)?;
            let (pf, shift_f) = eng.pages(fixed).map_err(err)?;
            let [m0, m1, m2, m3] = pm;
            let [f0, f1, f2, f3] = pf;
            let extras = [
                (5, m0),
                (6, m1),
                (7, m2),
                (8, m3),
                (10, f0),
                (11, f1),
                (12, f2),
                (13, f3),
                (14, whole(eng, cover)?),
                (15, whole(eng, domain)?),
                (16, whole(eng, params)?),
            ];
            let mut l = Launch::new("descriptor_grad", "grad_voxel", &per_voxel);
            l.extras = &extras;
            l.page_shift = shift_m;
            l.iarg = iarg;
            l.aux = grid_aux(d, shift_f);
            eng.run("descriptor_grad", &[l]).map_err(err)?;
        }
        let out = eng.alloc_uninit(params.dims, ElemKind::F32).map_err(err)?;
        let (pg, shift) = eng.pages(&per_voxel).map_err(err)?;
        let [g0, g1, g2, g3] = pg;
        let extras = [(5, g0), (6, g1), (7, g2), (8, g3)];
        let mut l = Launch::new("descriptor_grad", "grad_gather", &out);
        l.extras = &extras;
        l.page_shift = shift;
        l.iarg = [a, 0, 0, 0];
        l.aux = grid_aux(d, 0);
        eng.run("descriptor_grad", &[l]).map_err(err)?;
        Ok(out)
    })
}

pub(crate) fn ssd_costs(
    eng: &Engine,
    fixed: &GpuBuf,
    moving: &GpuBuf,
    radius: usize,
) -> Result<(GpuBuf, GpuBuf)> {
    let pd = check_ssd_costs(fixed.dims, moving.dims, radius)?;
    let side = 2 * radius + 1;
    let nk = side * side * side;
    let qd = [pd[0], pd[1], pd[2] * nk];
    let bd = [pd[0], pd[1], pd[2] * 2];
    if fixed.nvox() == 0 {
        return Ok((
            eng.alloc(qd, ElemKind::Mask).map_err(err)?,
            eng.alloc(bd, ElemKind::F32).map_err(err)?,
        ));
    }
    let iarg = [arg(radius, "search radius")?, side as i32, nk as i32, 0];
    eng.batch("ssd_costs", || -> Result<(GpuBuf, GpuBuf)> {
        let bounds = eng.alloc_uninit(bd, ElemKind::F32).map_err(err)?;
        let extras = [(10, whole(eng, fixed)?), (11, whole(eng, moving)?)];
        let mut l = Launch::new("ssd_costs", "ssd_bounds", &bounds);
        l.extras = &extras;
        l.iarg = iarg;
        l.aux = grid_aux(pd, 0);
        eng.run("ssd_costs", &[l]).map_err(err)?;
        let q = eng.alloc_uninit(qd, ElemKind::Mask).map_err(err)?;
        let extras = [
            (10, whole(eng, fixed)?),
            (11, whole(eng, moving)?),
            (12, whole(eng, &bounds)?),
        ];
        let mut l = Launch::new("ssd_costs", "ssd_quantise", &q);
        l.extras = &extras;
        l.iarg = iarg;
        l.aux = grid_aux(pd, 0);
        eng.run("ssd_costs", &[l]).map_err(err)?;
        Ok((q, bounds))
    })
}

pub(crate) fn convex_choose(
    eng: &Engine,
    costs: &GpuBuf,
    bounds: &GpuBuf,
    target: Option<&GpuBuf>,
    lambda: f32,
    radius: usize,
) -> Result<GpuBuf> {
    let g = check_convex_choose(
        costs.dims,
        bounds.dims,
        target.map(|t| t.dims),
        lambda,
        radius,
    )?;
    let od = [3 * g[0], g[1], g[2]];
    if bounds.nvox() == 0 {
        return eng.alloc(od, ElemKind::F32).map_err(err);
    }
    let side = 2 * radius + 1;
    let out = eng.alloc_uninit(od, ElemKind::F32).map_err(err)?;
    let (pages, shift) = eng.pages(costs).map_err(err)?;
    let [p0, p1, p2, p3] = pages;
    // Without a target the kernel never reads binding 11; the bounds stand in for it.
    let extras = [
        (5, p0),
        (6, p1),
        (7, p2),
        (8, p3),
        (10, whole(eng, bounds)?),
        (11, whole(eng, target.unwrap_or(bounds))?),
    ];
    let mut l = Launch::new("convex_choose", "convex_choose", &out);
    l.extras = &extras;
    l.page_shift = shift;
    l.iarg = [
        arg(radius, "search radius")?,
        side as i32,
        (side * side * side) as i32,
        i32::from(target.is_some()),
    ];
    l.farg = [lambda, 0.0, 0.0, 0.0];
    l.aux = grid_aux(g, 0);
    eng.run("convex_choose", &[l]).map_err(err)?;
    Ok(out)
}
