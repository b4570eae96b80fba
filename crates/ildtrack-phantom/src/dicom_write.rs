//! Writing a phantom as a real DICOM CT series (CT Image Storage) through dicom-object, with the
//! conventions real folders vary in: signed/unsigned storage, pixel padding, feet-first order,
//! random file names, a scout (localizer) and a thick reconstruction in the same folder.

use crate::PhantomError;
use crate::generate::Phantom;
use crate::meta::{study_key, synthetic_uid};
use crate::rng::mix64;
use dicom_core::smallvec::SmallVec;
use dicom_core::value::PrimitiveValue;
use dicom_core::{DataElement, Tag, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::InMemDicomObject;
use dicom_object::meta::FileMetaTableBuilder;
use ildtrack_volume::{OUTSIDE_FOV_HU, Volume};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Transfer syntaxes the writer can produce (uncompressed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum TransferSyntax {
    #[default]
    ExplicitVrLittleEndian,
    ImplicitVrLittleEndian,
}

impl TransferSyntax {
    pub fn uid(self) -> &'static str {
        match self {
            TransferSyntax::ExplicitVrLittleEndian => uids::EXPLICIT_VR_LITTLE_ENDIAN,
            TransferSyntax::ImplicitVrLittleEndian => uids::IMPLICIT_VR_LITTLE_ENDIAN,
        }
    }
}

/// How to write the series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WriteOptions {
    /// Unsigned storage (PixelRepresentation 0) with RescaleIntercept −1024; otherwise signed
    /// with intercept 0.
    pub unsigned: bool,
    /// Stored value written outside the reconstruction circle and declared as
    /// PixelPaddingValue (must be ≥ 0 when `unsigned`). A real voxel whose stored value equals
    /// it is written one higher (unsigned padding 0 collides with −1024 HU air: those voxels
    /// read back as −1023). `None`: no padding tag; outside voxels
    /// are written as the lowest storable value (signed −3024 HU; unsigned stored 0 = −1024 HU,
    /// which looks like air — the hard case for a loader).
    pub padding_value: Option<i16>,
    /// Random-looking file names without extension instead of `IM0002_00001.dcm`.
    pub shuffle_names: bool,
    /// PatientPosition FFS and InstanceNumber 1 at the feet (head-first: 1 at the head).
    pub feet_first: bool,
    /// Also write a coronal localizer (ImageType ORIGINAL\PRIMARY\LOCALIZER), series 1.
    pub with_scout: bool,
    /// Also write a 5 mm reconstruction of the same data (series 3, thicker slices).
    pub with_thick_series: bool,
    pub transfer_syntax: TransferSyntax,
    /// Also write a soft-kernel reconstruction (series 4, kernel `B30f`, in-plane smoothed) on
    /// the same grid, so a loader has to choose between a lung and a soft kernel.
    #[serde(default)]
    pub with_soft_kernel_series: bool,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            unsigned: false,
            padding_value: Some(-2000),
            shuffle_names: false,
            feet_first: false,
            with_scout: false,
            with_thick_series: false,
            transfer_syntax: TransferSyntax::ExplicitVrLittleEndian,
            with_soft_kernel_series: false,
        }
    }
}

impl WriteOptions {
    /// A messy PACS-like export: unsigned, padding 0 (= −1024 HU air, the trap), random names, feet first, scout and thick
    /// series in the same folder, implicit VR.
    pub fn messy() -> Self {
        WriteOptions {
            unsigned: true,
            padding_value: Some(0),
            shuffle_names: true,
            feet_first: true,
            with_scout: true,
            with_thick_series: true,
            transfer_syntax: TransferSyntax::ImplicitVrLittleEndian,
            with_soft_kernel_series: false,
        }
    }
}

/// What [`write_dicom_series_detailed`] wrote.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WrittenSeries {
    /// The thin axial series (the one to analyse), in z-index order (feet to head).
    pub thin: Vec<PathBuf>,
    pub thin_series_uid: String,
    /// The thick reconstruction, if asked for.
    pub thick: Vec<PathBuf>,
    pub thick_series_uid: Option<String>,
    pub scout: Option<PathBuf>,
    pub scout_series_uid: Option<String>,
    /// The soft-kernel reconstruction, if asked for.
    pub soft: Vec<PathBuf>,
    pub soft_series_uid: Option<String>,
}

impl WrittenSeries {
    pub fn all(&self) -> Vec<PathBuf> {
        let mut v = self.thin.clone();
        v.extend(self.thick.iter().cloned());
        v.extend(self.scout.iter().cloned());
        v.extend(self.soft.iter().cloned());
        v
    }
}

/// Write `ph` into `dir` (created if missing) and return every file written (thin series
/// first, then thick, then scout, then soft-kernel). Each file is written to a temporary name and renamed.
pub fn write_dicom_series(
    ph: &Phantom,
    dir: &Path,
    opts: &WriteOptions,
) -> Result<Vec<PathBuf>, PhantomError> {
    Ok(write_dicom_series_detailed(ph, dir, opts)?.all())
}

/// A DS string of at most 16 characters.
fn ds(v: f64) -> String {
    for prec in (0..=6).rev() {
        let mut s = format!("{v:.prec$}");
        if s.contains('.') {
            while s.ends_with('0') {
                s.pop();
            }
            if s.ends_with('.') {
                s.pop();
            }
        }
        if s == "-0" {
            s = "0".into();
        }
        if s.len() <= 16 {
            return s;
        }
    }
    format!("{v:.3e}")
}

fn strs(v: &[String]) -> PrimitiveValue {
    PrimitiveValue::Strs(v.iter().cloned().collect())
}

fn put_str(obj: &mut InMemDicomObject, tag: Tag, vr: VR, v: impl Into<String>) {
    obj.put(DataElement::new(tag, vr, PrimitiveValue::from(v.into())));
}

fn dicom_date(iso: &str) -> String {
    iso.chars().filter(|c| c.is_ascii_digit()).collect()
}

fn age_string(years: f64) -> String {
    if years >= 2.0 {
        format!("{:03}Y", years.floor().clamp(0.0, 999.0) as u32)
    } else {
        format!("{:03}M", (years * 12.0).floor().clamp(0.0, 999.0) as u32)
    }
}

/// One image to write.
struct Image<'a> {
    rows: usize,
    cols: usize,
    /// HU values (OUTSIDE_FOV_HU = padding), row-major.
    hu: &'a [i16],
    ipp: [f64; 3],
    iop: [f64; 6],
    pixel_spacing: [f64; 2],
    thickness: f64,
    series_uid: &'a str,
    series_number: u32,
    instance: u32,
    image_type: &'a [&'a str],
    description: String,
    /// ConvolutionKernel override (else the phantom's).
    kernel: Option<&'a str>,
    slice_location: Option<f64>,
}

struct Writer<'a> {
    ph: &'a Phantom,
    opts: &'a WriteOptions,
    dir: &'a Path,
    study_uid: String,
    frame_uid: String,
}

impl Writer<'_> {
    fn file_name(&self, series: u32, instance: u32) -> String {
        if self.opts.shuffle_names {
            let h = mix64(
                self.ph.spec.seed
                    ^ ((series as u64) << 32)
                    ^ instance as u64
                    ^ 0x5EED_F11E_5EED_F11E,
            );
            format!("{h:016x}")
        } else {
            format!("IM{series:04}_{instance:05}.dcm")
        }
    }

    fn stored(&self, hu: &[i16]) -> Result<Vec<u16>, PhantomError> {
        let o = self.opts;
        let pad_signed = o.padding_value.unwrap_or(-3024);
        if o.unsigned {
            let pad = match o.padding_value {
                Some(p) if p < 0 => {
                    return Err(PhantomError::InvalidOption(format!(
                        "padding_value {p} is negative but storage is unsigned"
                    )));
                }
                Some(p) => p as u16,
                None => 0,
            };
            // A real voxel whose stored value equals the padding value is written one higher
            // (1 HU off) so that padding stays unambiguous.
            let has_pad = o.padding_value.is_some();
            Ok(hu
                .iter()
                .map(|&v| {
                    if v == OUTSIDE_FOV_HU {
                        return pad;
                    }
                    let s = (v as i32 + 1024).clamp(0, 65535) as u16;
                    if has_pad && s == pad {
                        s.saturating_add(1)
                    } else {
                        s
                    }
                })
                .collect())
        } else {
            let has_pad = o.padding_value.is_some();
            Ok(hu
                .iter()
                .map(|&v| {
                    if v == OUTSIDE_FOV_HU {
                        pad_signed
                    } else if has_pad && v == pad_signed {
                        v.saturating_add(1)
                    } else {
                        v
                    }
                } as u16)
                .collect())
        }
    }

    fn write(&self, img: &Image) -> Result<PathBuf, PhantomError> {
        let ph = self.ph;
        let m = &ph.meta;
        let o = self.opts;
        let sop_uid = synthetic_uid(
            &format!(
                "{}|sop|{}|{}",
                img.series_uid, img.series_number, img.instance
            ),
            ph.spec.seed,
        );
        let mut obj = InMemDicomObject::new_empty();
        put_str(&mut obj, tags::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 100");
        obj.put(DataElement::new(
            tags::IMAGE_TYPE,
            VR::CS,
            strs(
                &img.image_type
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>(),
            ),
        ));
        put_str(
            &mut obj,
            tags::SOP_CLASS_UID,
            VR::UI,
            uids::CT_IMAGE_STORAGE,
        );
        put_str(&mut obj, tags::SOP_INSTANCE_UID, VR::UI, sop_uid.clone());
        let date = dicom_date(m.study_date.as_deref().unwrap_or("2025-01-15"));
        let time: String = m
            .series_time
            .as_deref()
            .unwrap_or("10:00:00")
            .chars()
            .filter(|c| c.is_ascii_digit())
            .collect();
        for t in [
            tags::STUDY_DATE,
            tags::SERIES_DATE,
            tags::ACQUISITION_DATE,
            tags::CONTENT_DATE,
        ] {
            put_str(&mut obj, t, VR::DA, date.clone());
        }
        for t in [
            tags::STUDY_TIME,
            tags::SERIES_TIME,
            tags::ACQUISITION_TIME,
            tags::CONTENT_TIME,
        ] {
            put_str(&mut obj, t, VR::TM, time.clone());
        }
        put_str(&mut obj, tags::ACCESSION_NUMBER, VR::SH, "");
        put_str(&mut obj, tags::MODALITY, VR::CS, "CT");
        put_str(
            &mut obj,
            tags::MANUFACTURER,
            VR::LO,
            m.manufacturer.clone().unwrap_or_default(),
        );
        put_str(&mut obj, tags::INSTITUTION_NAME, VR::LO, "Synthetic");
        put_str(&mut obj, tags::REFERRING_PHYSICIAN_NAME, VR::PN, "");
        put_str(
            &mut obj,
            tags::STUDY_DESCRIPTION,
            VR::LO,
            "CHEST (synthetic)",
        );
        put_str(
            &mut obj,
            tags::SERIES_DESCRIPTION,
            VR::LO,
            img.description.clone(),
        );
        put_str(
            &mut obj,
            tags::MANUFACTURER_MODEL_NAME,
            VR::LO,
            m.manufacturer_model.clone().unwrap_or_default(),
        );
        put_str(
            &mut obj,
            tags::PATIENT_NAME,
            VR::PN,
            ph.identity
                .patient_name
                .clone()
                .unwrap_or_else(|| "PHANTOM^SYNTHETIC".into()),
        );
        put_str(
            &mut obj,
            tags::PATIENT_ID,
            VR::LO,
            ph.identity
                .patient_id
                .clone()
                .unwrap_or_else(|| "PHANTOM".into()),
        );
        put_str(&mut obj, tags::PATIENT_BIRTH_DATE, VR::DA, "");
        put_str(
            &mut obj,
            tags::PATIENT_SEX,
            VR::CS,
            m.patient_sex.clone().unwrap_or_default(),
        );
        if let Some(age) = m.patient_age_years {
            put_str(&mut obj, tags::PATIENT_AGE, VR::AS, age_string(age));
        }
        put_str(&mut obj, tags::BODY_PART_EXAMINED, VR::CS, "CHEST");
        if let Some(agent) = &m.contrast_agent {
            put_str(&mut obj, tags::CONTRAST_BOLUS_AGENT, VR::LO, agent.clone());
        }
        put_str(&mut obj, tags::SLICE_THICKNESS, VR::DS, ds(img.thickness));
        if let Some(kvp) = m.kvp {
            put_str(&mut obj, tags::KVP, VR::DS, ds(kvp));
        }
        let is_axial = img.image_type.contains(&"AXIAL");
        if is_axial {
            put_str(
                &mut obj,
                tags::SPACING_BETWEEN_SLICES,
                VR::DS,
                ds(img.thickness),
            );
        }
        put_str(
            &mut obj,
            tags::RECONSTRUCTION_DIAMETER,
            VR::DS,
            ds((img.cols as f64 * img.pixel_spacing[1])
                .min(img.rows as f64 * img.pixel_spacing[0])),
        );
        if let Some(mas) = m.exposure_mas {
            put_str(
                &mut obj,
                tags::EXPOSURE,
                VR::IS,
                format!("{}", mas.round() as i64),
            );
        }
        if let Some(k) = img.kernel.map(str::to_string).or_else(|| m.kernel.clone()) {
            put_str(&mut obj, tags::CONVOLUTION_KERNEL, VR::SH, k);
        }
        put_str(
            &mut obj,
            tags::PATIENT_POSITION,
            VR::CS,
            if o.feet_first { "FFS" } else { "HFS" },
        );
        put_str(
            &mut obj,
            tags::STUDY_INSTANCE_UID,
            VR::UI,
            self.study_uid.clone(),
        );
        put_str(&mut obj, tags::SERIES_INSTANCE_UID, VR::UI, img.series_uid);
        put_str(&mut obj, tags::STUDY_ID, VR::SH, "1");
        put_str(
            &mut obj,
            tags::SERIES_NUMBER,
            VR::IS,
            img.series_number.to_string(),
        );
        put_str(&mut obj, tags::ACQUISITION_NUMBER, VR::IS, "1");
        put_str(
            &mut obj,
            tags::INSTANCE_NUMBER,
            VR::IS,
            img.instance.to_string(),
        );
        obj.put(DataElement::new(
            tags::IMAGE_POSITION_PATIENT,
            VR::DS,
            strs(&img.ipp.iter().map(|v| ds(*v)).collect::<Vec<_>>()),
        ));
        obj.put(DataElement::new(
            tags::IMAGE_ORIENTATION_PATIENT,
            VR::DS,
            strs(&img.iop.iter().map(|v| ds(*v)).collect::<Vec<_>>()),
        ));
        put_str(
            &mut obj,
            tags::FRAME_OF_REFERENCE_UID,
            VR::UI,
            self.frame_uid.clone(),
        );
        put_str(&mut obj, tags::POSITION_REFERENCE_INDICATOR, VR::LO, "");
        if let Some(sl) = img.slice_location {
            put_str(&mut obj, tags::SLICE_LOCATION, VR::DS, ds(sl));
        }
        obj.put(DataElement::new(
            tags::SAMPLES_PER_PIXEL,
            VR::US,
            PrimitiveValue::from(1u16),
        ));
        put_str(
            &mut obj,
            tags::PHOTOMETRIC_INTERPRETATION,
            VR::CS,
            "MONOCHROME2",
        );
        let rows = u16::try_from(img.rows).map_err(|_| {
            PhantomError::InvalidOption(format!("{} rows do not fit DICOM", img.rows))
        })?;
        let cols = u16::try_from(img.cols).map_err(|_| {
            PhantomError::InvalidOption(format!("{} columns do not fit DICOM", img.cols))
        })?;
        obj.put(DataElement::new(
            tags::ROWS,
            VR::US,
            PrimitiveValue::from(rows),
        ));
        obj.put(DataElement::new(
            tags::COLUMNS,
            VR::US,
            PrimitiveValue::from(cols),
        ));
        obj.put(DataElement::new(
            tags::PIXEL_SPACING,
            VR::DS,
            strs(&[ds(img.pixel_spacing[0]), ds(img.pixel_spacing[1])]),
        ));
        obj.put(DataElement::new(
            tags::BITS_ALLOCATED,
            VR::US,
            PrimitiveValue::from(16u16),
        ));
        obj.put(DataElement::new(
            tags::BITS_STORED,
            VR::US,
            PrimitiveValue::from(16u16),
        ));
        obj.put(DataElement::new(
            tags::HIGH_BIT,
            VR::US,
            PrimitiveValue::from(15u16),
        ));
        obj.put(DataElement::new(
            tags::PIXEL_REPRESENTATION,
            VR::US,
            PrimitiveValue::from(if o.unsigned { 0u16 } else { 1u16 }),
        ));
        if let Some(p) = o.padding_value {
            let v = if o.unsigned {
                DataElement::new(
                    tags::PIXEL_PADDING_VALUE,
                    VR::US,
                    PrimitiveValue::from(p.max(0) as u16),
                )
            } else {
                DataElement::new(tags::PIXEL_PADDING_VALUE, VR::SS, PrimitiveValue::from(p))
            };
            obj.put(v);
        }
        put_str(&mut obj, tags::WINDOW_CENTER, VR::DS, "-600");
        put_str(&mut obj, tags::WINDOW_WIDTH, VR::DS, "1500");
        put_str(
            &mut obj,
            tags::RESCALE_INTERCEPT,
            VR::DS,
            if o.unsigned { "-1024" } else { "0" },
        );
        put_str(&mut obj, tags::RESCALE_SLOPE, VR::DS, "1");
        put_str(&mut obj, tags::RESCALE_TYPE, VR::LO, "HU");
        let px = self.stored(img.hu)?;
        obj.put(DataElement::new(
            tags::PIXEL_DATA,
            VR::OW,
            PrimitiveValue::U16(SmallVec::from_vec(px)),
        ));

        let file = obj
            .with_meta(
                FileMetaTableBuilder::new()
                    .transfer_syntax(o.transfer_syntax.uid())
                    .media_storage_sop_class_uid(uids::CT_IMAGE_STORAGE)
                    .media_storage_sop_instance_uid(sop_uid),
            )
            .map_err(|e| PhantomError::Dicom {
                message: e.to_string(),
                path: self.dir.to_path_buf(),
            })?;
        let name = self.file_name(img.series_number, img.instance);
        let path = self.dir.join(&name);
        let mut bytes = Vec::new();
        file.write_all(&mut bytes)
            .map_err(|e| PhantomError::Dicom {
                message: e.to_string(),
                path: path.clone(),
            })?;
        ildtrack_fs::write_atomic_with(&path, |f| f.write_all(&bytes)).map_err(|source| {
            PhantomError::Io {
                source,
                path: path.clone(),
            }
        })?;
        Ok(path)
    }
}

/// Write the series and say which file belongs to which series.
pub fn write_dicom_series_detailed(
    ph: &Phantom,
    dir: &Path,
    opts: &WriteOptions,
) -> Result<WrittenSeries, PhantomError> {
    if opts.unsigned && opts.padding_value.is_some_and(|p| p < 0) {
        return Err(PhantomError::InvalidOption(format!(
            "padding_value {:?} is negative but storage is unsigned",
            opts.padding_value
        )));
    }
    std::fs::create_dir_all(dir).map_err(|source| PhantomError::Io {
        source,
        path: dir.to_path_buf(),
    })?;
    let spec = &ph.spec;
    let study_uid = ph
        .meta
        .study_instance_uid
        .clone()
        .unwrap_or_else(|| synthetic_uid(&study_key(spec), spec.anatomy_seed()));
    let thin_uid = ph.meta.series_instance_uid.clone().unwrap_or_else(|| {
        synthetic_uid(&format!("{}|series2", study_key(spec)), spec.anatomy_seed())
    });
    let w = Writer {
        ph,
        opts,
        dir,
        study_uid: study_uid.clone(),
        frame_uid: synthetic_uid(&format!("{}|frame", study_key(spec)), spec.anatomy_seed()),
    };
    let geo = ph.volume.geometry;
    let [nz, ny, nx] = ph.volume.dims_zyx();
    let plane = ny * nx;
    let data = ph
        .volume
        .data
        .as_slice()
        .ok_or_else(|| PhantomError::Internal("volume is not contiguous".into()))?;
    let kernel = ph.meta.kernel.clone().unwrap_or_default();
    let desc = ph
        .meta
        .series_description
        .clone()
        .unwrap_or_else(|| "CHEST".into());
    let instance_of = |iz: usize, n: usize| -> u32 {
        if opts.feet_first {
            iz as u32 + 1
        } else {
            (n - iz) as u32
        }
    };
    let thick_mm = ph.meta.slice_thickness_mm.unwrap_or(geo.spacing_mm[0]);

    let thin: Vec<PathBuf> = (0..nz)
        .into_par_iter()
        .map(|iz| {
            let p = geo.index_to_lps([iz as f64, 0.0, 0.0]);
            w.write(&Image {
                rows: ny,
                cols: nx,
                hu: &data[iz * plane..(iz + 1) * plane],
                ipp: p,
                iop: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0],
                pixel_spacing: [geo.spacing_mm[1], geo.spacing_mm[2]],
                thickness: thick_mm,
                series_uid: &thin_uid,
                series_number: 2,
                instance: instance_of(iz, nz),
                image_type: &["ORIGINAL", "PRIMARY", "AXIAL"],
                description: format!("{desc} {} mm {kernel}", ds(thick_mm)),
                slice_location: Some(p[2]),
                kernel: None,
            })
        })
        .collect::<Result<_, _>>()?;

    let mut out = WrittenSeries {
        thin,
        thin_series_uid: thin_uid,
        ..Default::default()
    };

    if opts.with_thick_series && nz >= 2 {
        let k = ((5.0 / geo.spacing_mm[0]).round() as usize).max(2).min(nz);
        let n_thick = nz / k;
        let uid = synthetic_uid(&format!("{}|series3", study_key(spec)), spec.anatomy_seed());
        let slabs: Vec<Vec<i16>> = (0..n_thick)
            .into_par_iter()
            .map(|t| {
                (0..plane)
                    .map(|i| {
                        let mut sum = 0i32;
                        for dz in 0..k {
                            let v = data[(t * k + dz) * plane + i];
                            if v == OUTSIDE_FOV_HU {
                                return OUTSIDE_FOV_HU;
                            }
                            sum += v as i32;
                        }
                        (sum as f64 / k as f64).round() as i16
                    })
                    .collect()
            })
            .collect();
        let thick_files: Vec<PathBuf> = slabs
            .par_iter()
            .enumerate()
            .map(|(t, slab)| {
                let p = geo.index_to_lps([t as f64 * k as f64 + (k as f64 - 1.0) / 2.0, 0.0, 0.0]);
                w.write(&Image {
                    rows: ny,
                    cols: nx,
                    hu: slab,
                    ipp: p,
                    iop: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0],
                    pixel_spacing: [geo.spacing_mm[1], geo.spacing_mm[2]],
                    thickness: k as f64 * geo.spacing_mm[0],
                    series_uid: &uid,
                    series_number: 3,
                    instance: instance_of(t, n_thick),
                    image_type: &["ORIGINAL", "PRIMARY", "AXIAL"],
                    description: format!(
                        "{desc} {} mm {kernel} thick",
                        ds(k as f64 * geo.spacing_mm[0])
                    ),
                    slice_location: Some(p[2]),
                    kernel: None,
                })
            })
            .collect::<Result<_, _>>()?;
        out.thick = thick_files;
        out.thick_series_uid = Some(uid);
    }

    if opts.with_scout {
        // Coronal projection: rows = z from the head down, columns = x.
        let mut img = vec![0i16; nz * nx];
        for (r, iz) in (0..nz).rev().enumerate() {
            for ix in 0..nx {
                let mut sum = 0f64;
                for iy in 0..ny {
                    let v = data[iz * plane + iy * nx + ix];
                    sum += if v == OUTSIDE_FOV_HU {
                        0.0
                    } else {
                        (v as f64 + 1000.0).max(0.0)
                    };
                }
                // Mean attenuation relative to water along the ray, scaled into a display range.
                img[r * nx + ix] = (sum / ny as f64 * 2.0 - 1000.0).clamp(-1024.0, 3071.0) as i16;
            }
        }
        let uid = synthetic_uid(&format!("{}|series1", study_key(spec)), spec.anatomy_seed());
        let top = geo.index_to_lps([nz as f64 - 1.0, 0.0, 0.0]);
        let scout_opts = WriteOptions {
            padding_value: None,
            ..opts.clone()
        };
        let sw = Writer {
            opts: &scout_opts,
            study_uid: w.study_uid.clone(),
            frame_uid: w.frame_uid.clone(),
            ..w
        };
        let path = sw.write(&Image {
            rows: nz,
            cols: nx,
            hu: &img,
            ipp: [top[0], 0.0, top[2]],
            iop: [1.0, 0.0, 0.0, 0.0, 0.0, -1.0],
            pixel_spacing: [geo.spacing_mm[0], geo.spacing_mm[2]],
            thickness: 1.0,
            series_uid: &uid,
            series_number: 1,
            instance: 1,
            image_type: &["ORIGINAL", "PRIMARY", "LOCALIZER"],
            description: "Topogram".into(),
            slice_location: None,
            kernel: None,
        })?;
        out.scout = Some(path);
        out.scout_series_uid = Some(uid);
    }
    if opts.with_soft_kernel_series {
        let uid = synthetic_uid(&format!("{}|series4", study_key(spec)), spec.anatomy_seed());
        let soft: Vec<PathBuf> = (0..nz)
            .into_par_iter()
            .map(|iz| {
                let slice = smooth_slice(&data[iz * plane..(iz + 1) * plane], ny, nx);
                let p = geo.index_to_lps([iz as f64, 0.0, 0.0]);
                w.write(&Image {
                    rows: ny,
                    cols: nx,
                    hu: &slice,
                    ipp: p,
                    iop: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0],
                    pixel_spacing: [geo.spacing_mm[1], geo.spacing_mm[2]],
                    thickness: thick_mm,
                    series_uid: &uid,
                    series_number: 4,
                    instance: instance_of(iz, nz),
                    image_type: &["ORIGINAL", "PRIMARY", "AXIAL"],
                    description: format!("{desc} {} mm B30f", ds(thick_mm)),
                    slice_location: Some(p[2]),
                    kernel: Some("B30f"),
                })
            })
            .collect::<Result<_, _>>()?;
        out.soft = soft;
        out.soft_series_uid = Some(uid);
    }
    tracing::debug!(files = out.thin.len() + out.thick.len() + out.scout.iter().count(), dir = %dir.display(), "phantom series written");
    Ok(out)
}

/// The soft-kernel twin of a phantom volume: every slice through the same in-plane smoothing
/// as the `B30f` series of [`WriteOptions::with_soft_kernel_series`] (same anatomy, same
/// noise realisation, a softer kernel's look) — for kernel-harmonization checks in memory.
pub fn soft_kernel_twin(volume: &Volume<i16>) -> Volume<i16> {
    let [nz, ny, nx] = volume.dims_zyx();
    let mut data = volume.data.clone();
    data.axis_iter_mut(ndarray::Axis(0))
        .into_par_iter()
        .zip(volume.data.axis_iter(ndarray::Axis(0)).into_par_iter())
        .for_each(|(mut out, sl)| {
            let flat: Vec<i16> = sl.iter().copied().collect();
            for (o, v) in out.iter_mut().zip(smooth_slice(&flat, ny, nx)) {
                *o = v;
            }
        });
    debug_assert_eq!(data.dim().0, nz);
    volume.with_data(data)
}

/// In-plane [1 2 1]⊗[1 2 1]/16 smoothing (a soft kernel look); padding stays padding and is
/// not mixed in.
fn smooth_slice(hu: &[i16], ny: usize, nx: usize) -> Vec<i16> {
    let mut out = hu.to_vec();
    for y in 0..ny {
        for x in 0..nx {
            let c = hu[y * nx + x];
            if c == OUTSIDE_FOV_HU {
                continue;
            }
            let (mut s, mut wsum) = (0i32, 0i32);
            for dy in -1i32..=1 {
                for dx in -1i32..=1 {
                    let (yy, xx) = (y as i32 + dy, x as i32 + dx);
                    if yy < 0 || xx < 0 || yy >= ny as i32 || xx >= nx as i32 {
                        continue;
                    }
                    let v = hu[yy as usize * nx + xx as usize];
                    if v == OUTSIDE_FOV_HU {
                        continue;
                    }
                    let w = (2 - dy.abs()) * (2 - dx.abs());
                    s += w * v as i32;
                    wsum += w;
                }
            }
            out[y * nx + x] = ((s as f64) / (wsum.max(1) as f64)).round() as i16;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ds_fits_16_chars() {
        for v in [
            0.0,
            -0.0,
            1.0,
            -189.609375,
            1234567.891234,
            -0.000012345,
            0.78125,
            1e20,
        ] {
            let s = ds(v);
            assert!(s.len() <= 16, "{s}");
            let back: f64 = s.parse().unwrap_or(f64::NAN);
            assert!((back - v).abs() <= 1e-3 * v.abs().max(1.0), "{v} -> {s}");
        }
        assert_eq!(ds(-0.0), "0");
        assert_eq!(ds(0.78125), "0.78125");
    }

    #[test]
    fn age_strings() {
        assert_eq!(age_string(11.4), "011Y");
        assert_eq!(age_string(45.0), "045Y");
        assert_eq!(age_string(0.5), "006M");
    }
}
