//! The table of every WGSL kernel in `shaders/`, each prefixed with `shaders/common.wgsl`
//! and the preludes it names (`counters.wgsl` for counting kernels, `pages.wgsl` for paged reads).
//!
//! Shader names match the trait method they implement (`threshold` ↔ `Backend::threshold`).
//! The table is the single list the naga validation test and the pipeline cache read.

macro_rules! shader {
    // `shader!("name", "prelude", ...)`: common.wgsl, then each prelude, then the kernel.
    ($name:literal $(, $prelude:literal)*) => {
        (
            $name,
            concat!(
                include_str!("../../../shaders/common.wgsl"),
                "\n",
                $(include_str!(concat!("../../../shaders/", $prelude, ".wgsl")), "\n",)*
                include_str!(concat!("../../../shaders/", $name, ".wgsl"))
            ),
        )
    };
}

/// `(name, full WGSL source)` of every kernel.
pub const SHADERS: &[(&str, &str)] = &[
    shader!("classify"),
    shader!("combine_u8"),
    shader!("convex_choose", "pages"),
    shader!("copy_u32"),
    shader!("counts", "counters"),
    shader!("crop", "pages"),
    shader!("descriptor_grad", "pages"),
    shader!("downsample_mean", "pages"),
    shader!("edt", "pages"),
    shader!("fill_holes_2d"),
    shader!("fill_u8"),
    shader!("gaussian", "pages"),
    shader!("gaussian_mix"),
    shader!("histogram", "counters"),
    shader!("label_components"),
    shader!("less_equal_f32"),
    shader!("map_labels"),
    shader!("map_u8"),
    shader!("map_u8_per_slice"),
    shader!("mask_op"),
    shader!("mind_ssc", "pages"),
    shader!("pad_u8", "pages"),
    shader!("select"),
    shader!("ssd_costs"),
    shader!("threshold"),
    shader!("threshold_f32"),
    shader!("upsample_nearest", "pages"),
];

/// The full source of one kernel file, or `None`.
pub fn shader_source(name: &str) -> Option<&'static str> {
    SHADERS.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
}

/// `(shader, entry point)` of every compute entry point in [`SHADERS`].
pub fn entry_points() -> Vec<(&'static str, &'static str)> {
    let mut out = Vec::new();
    for (name, src) in SHADERS {
        let mut rest: &'static str = src;
        while let Some(i) = rest.find("@compute") {
            rest = &rest[i..];
            if let Some(j) = rest.find("fn ") {
                let after = &rest[j + 3..];
                let end = after
                    .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                out.push((*name, &after[..end]));
                rest = after;
            } else {
                break;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn entry_points_are_found() {
        let e = super::entry_points();
        assert!(e.contains(&("threshold", "threshold")));
        assert!(e.contains(&("label_components", "ccl_link")));
        assert!(e.contains(&("gaussian", "gauss_pass_paged")));
        assert!(e.len() >= 30, "{e:?}");
    }
}
