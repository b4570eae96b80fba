//! Raw scalar voxels → HU `i16`, shared by the volume-file readers (NIfTI, NRRD), so that both
//! treat out-of-range and non-finite values the same way and say so with the same warnings.

use ildtrack_volume::{OUTSIDE_FOV_HU, Warning};

use crate::decode::OUTSIDE_BELOW_HU;

/// The scalar types a volume file may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scalar {
    I8,
    U8,
    I16,
    U16,
    I32,
    U32,
    I64,
    U64,
    F32,
    F64,
}

impl Scalar {
    /// Bytes per voxel.
    pub(crate) fn bytes(self) -> usize {
        match self {
            Scalar::I8 | Scalar::U8 => 1,
            Scalar::I16 | Scalar::U16 => 2,
            Scalar::I32 | Scalar::U32 | Scalar::F32 => 4,
            Scalar::I64 | Scalar::U64 | Scalar::F64 => 8,
        }
    }
}

/// Voxels that [`to_hu`] could not keep as they were.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Converted {
    /// Below [`OUTSIDE_BELOW_HU`] or not finite: set to [`OUTSIDE_FOV_HU`].
    pub(crate) outside: u64,
    /// Above `i16::MAX`: clipped.
    pub(crate) saturated: u64,
}

/// Convert `data` (voxels of type `ty`, `out.len()` of them) to HU = value × slope + inter,
/// rounded. `data` must hold at least `out.len() * ty.bytes()` bytes (the callers check the
/// length against the header before calling; a short buffer leaves the tail of `out` as it was).
pub(crate) fn to_hu(
    data: &[u8],
    ty: Scalar,
    little_endian: bool,
    slope: f64,
    inter: f64,
    out: &mut [i16],
) -> Converted {
    let mut c = Converted::default();
    let mut put = |o: &mut i16, v: f64| {
        if !v.is_finite() {
            c.outside += 1;
            *o = OUTSIDE_FOV_HU;
            return;
        }
        let hu = v * slope + inter;
        *o = if hu < OUTSIDE_BELOW_HU {
            c.outside += 1;
            OUTSIDE_FOV_HU
        } else if hu > f64::from(i16::MAX) {
            c.saturated += 1;
            i16::MAX
        } else {
            hu.round() as i16
        };
    };
    macro_rules! conv {
        ($t:ty, $w:expr) => {
            for (o, b) in out.iter_mut().zip(data.chunks_exact($w)) {
                let b: [u8; $w] = b.try_into().unwrap_or([0; $w]);
                let v = if little_endian {
                    <$t>::from_le_bytes(b)
                } else {
                    <$t>::from_be_bytes(b)
                };
                put(o, v as f64);
            }
        };
    }
    match ty {
        Scalar::U8 => conv!(u8, 1),
        Scalar::I8 => conv!(i8, 1),
        Scalar::I16 => conv!(i16, 2),
        Scalar::U16 => conv!(u16, 2),
        Scalar::I32 => conv!(i32, 4),
        Scalar::U32 => conv!(u32, 4),
        Scalar::F32 => conv!(f32, 4),
        Scalar::F64 => conv!(f64, 8),
        Scalar::I64 => conv!(i64, 8),
        Scalar::U64 => conv!(u64, 8),
    }
    c
}

/// The warnings a conversion earns (none when every voxel was kept as it was).
pub(crate) fn warnings(c: Converted) -> Vec<Warning> {
    let mut w = Vec::new();
    if c.outside > 0 {
        w.push(Warning::new(
            "outside-fov",
            format!(
                "{} voxel(s) below {OUTSIDE_BELOW_HU} HU or not finite marked as outside the field of view",
                c.outside
            ),
        ));
    }
    if c.saturated > 0 {
        w.push(Warning::new(
            "hu-saturated",
            format!("{} voxel(s) above {} HU clipped", c.saturated, i16::MAX),
        ));
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_and_both_byte_orders_convert() {
        let mut out = [0i16; 2];
        let c = to_hu(
            &[0xfc, 0x18, 0x00, 0x64],
            Scalar::I16,
            false,
            1.0,
            0.0,
            &mut out,
        );
        assert_eq!(out, [-1000, 100]);
        assert_eq!((c.outside, c.saturated), (0, 0));
        let f: Vec<u8> = [-2000.0f32, f32::NAN]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let c = to_hu(&f, Scalar::F32, true, 1.0, 0.0, &mut out);
        assert_eq!(out, [OUTSIDE_FOV_HU, OUTSIDE_FOV_HU]);
        assert_eq!(c.outside, 2);
        let u: Vec<u8> = [40000u32, 24]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let c = to_hu(&u, Scalar::U32, true, 1.0, -1024.0, &mut out);
        assert_eq!(out, [i16::MAX, -1000]);
        assert_eq!(c.saturated, 1);
        assert_eq!(warnings(c).len(), 1);
    }
}
