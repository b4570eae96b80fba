//! Bytes moved and operations per voxel of each kernel: the roofline floor for `ildtrack bench`.
//!
//! Figures are per voxel of the output for one pass over the volume, counting device-memory
//! traffic of the ideal kernel (each input read once, each output written once; halos and
//! cache misses not counted). `ops` counts arithmetic/compare operations per voxel.
//! Time floor on a device with copy bandwidth `B` bytes/s: `voxels × bytes_per_voxel / B`.

/// One row of [`kernel_costs`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KernelCost {
    /// Trait method name (and shader file name).
    pub kernel: &'static str,
    /// Device-memory bytes read + written per voxel (ideal).
    pub bytes_per_voxel: f64,
    /// Arithmetic / compare operations per voxel (order of magnitude).
    pub ops_per_voxel: f64,
    /// What dominates; parameters the numbers assume.
    pub note: &'static str,
}

const fn k(
    kernel: &'static str,
    bytes_per_voxel: f64,
    ops_per_voxel: f64,
    note: &'static str,
) -> KernelCost {
    KernelCost {
        kernel,
        bytes_per_voxel,
        ops_per_voxel,
        note,
    }
}

/// The cost model of every kernel (see the module docs).
pub fn kernel_costs() -> &'static [KernelCost] {
    const COSTS: &[KernelCost] = &[
        k(
            "upload_i16",
            2.0,
            0.0,
            "host -> device copy over PCIe, 2 B/voxel",
        ),
        k("download_u8", 1.0, 0.0, "device -> host copy, 1 B/voxel"),
        k("threshold", 3.0, 2.0, "read i16 (2 B), write u8 (1 B)"),
        k("classify", 4.0, 6.0, "read i16 + u8, write u8; ~4 edges"),
        k("mask_op", 3.0, 2.0, "read 2 u8, write u8"),
        k("select", 4.0, 1.0, "read 3 u8, write u8"),
        k(
            "map_u8",
            2.0,
            1.0,
            "read u8, write u8, 1 KiB table in cache",
        ),
        k("combine_u8", 3.0, 3.0, "read 2 u8, write u8"),
        k("map_u8_per_slice", 2.0, 2.0, "read u8, write u8"),
        k("map_labels", 5.0, 1.0, "read u32, write u8"),
        k("threshold_f32", 5.0, 2.0, "read f32, write u8"),
        k("fill_u8", 1.0, 0.0, "write u8"),
        k("value_counts", 1.0, 1.0, "read u8; shared-memory atomics"),
        k(
            "joint_counts",
            2.0,
            3.0,
            "read 2 u8; shared or global atomics",
        ),
        k("slice_counts", 1.0, 2.0, "read u8; global atomics"),
        k(
            "histogram",
            3.0,
            4.0,
            "read i16 + u8; runs merged; global atomics (tables > 4096 cells)",
        ),
        k(
            "dilate",
            29.0,
            40.0,
            "init (1+4 B) + 3 EDT passes (4+4 B) + threshold (4+1 B); ops ~ 2 r/s per axis",
        ),
        k("erode", 29.0, 40.0, "as dilate"),
        k("close", 58.0, 80.0, "dilate + erode"),
        k(
            "fill_holes_2d",
            30.0,
            40.0,
            "map + slice-4 labelling of the background + 2 passes",
        ),
        k(
            "label_components",
            24.0,
            60.0,
            "init + one link pass (unite; one neighbour per row inside runs) + compress + rank + finalize + infos",
        ),
        k(
            "gaussian",
            36.0,
            25.0,
            "to f32 (2+4) + 3 passes (4+4) + round (4+2+2); ops ~ 2(6 sigma/s + 1)",
        ),
        k(
            "gaussian_mix",
            36.0,
            40.0,
            "to f32 (2+4) + per stage 2 in-plane passes (4+4) and one accumulate (4+4+4) + round (4+2+2); 2 stages",
        ),
        k(
            "distance_mm",
            29.0,
            60.0,
            "init + 3 exact EDT passes; ops grow with the distance in voxels",
        ),
        k(
            "downsample_mean",
            2.0,
            1.0,
            "read i16 once, write 2 B per output voxel",
        ),
        k(
            "upsample_nearest",
            1.0,
            1.0,
            "write u8, read the small input from cache",
        ),
    ];
    COSTS
}
