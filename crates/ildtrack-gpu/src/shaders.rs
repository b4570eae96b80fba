//! The table of every WGSL kernel in `shaders/`, each prefixed with `shaders/common.wgsl`.
//!
//! Shader names match the trait method they implement (`threshold` ↔ `Backend::threshold`).
//! The table is the single list the naga validation test and the pipeline cache read.

macro_rules! shader {
    ($name:literal) => {
        (
            $name,
            concat!(
                include_str!("../../../shaders/common.wgsl"),
                "\n",
                include_str!(concat!("../../../shaders/", $name, ".wgsl"))
            ),
        )
    };
}

/// `(name, full WGSL source)` of every kernel.
pub const SHADERS: &[(&str, &str)] = &[
    shader!("classify"),
    shader!("combine_u8"),
    shader!("counts"),
    shader!("crop"),
    shader!("downsample_mean"),
    shader!("edt"),
    shader!("fill_holes_2d"),
    shader!("fill_u8"),
    shader!("gaussian"),
    shader!("histogram"),
    shader!("label_components"),
    shader!("less_equal_f32"),
    shader!("map_labels"),
    shader!("map_u8"),
    shader!("map_u8_per_slice"),
    shader!("mask_op"),
    shader!("pad_u8"),
    shader!("select"),
    shader!("threshold"),
    shader!("threshold_f32"),
    shader!("upsample_nearest"),
];

/// The full source of one kernel file, or `None`.
pub fn shader_source(name: &str) -> Option<&'static str> {
    SHADERS.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
}
