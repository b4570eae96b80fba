//! DICOM and NIfTI input for ildtrack: whatever a PACS export, a CD or a researcher hands over
//! becomes one HU volume with true geometry, the scan facts later stages need, and warnings.
//!
//! - [`scan`] reads headers only (never pixel data) of a folder (recursive, any file names,
//!   non-DICOM files ignored with a note), a DICOMDIR, a single (multi-frame) file or a NIfTI or
//!   NRRD file,
//!   groups files into series and stacks (by SeriesInstanceUID, then orientation, matrix, pixel
//!   spacing and, where it separates repeated positions, AcquisitionNumber), and chooses the
//!   stack to analyse with human-readable reasons.
//! - [`load`] = scan + choose (or `--series UID`) + assemble + decode in parallel (rayon) into a
//!   [`LoadedSeries`]: `Volume<i16>` in HU, [`ScanMeta`], [`Identity`] (never logged) and
//!   [`Warning`]s for everything that was not straightforward.
//! - [`nifti`] reads `.nii`/`.nii.gz` and writes masks and HU volumes; [`nrrd`] reads
//!   `.nrrd`/`.nhdr` and writes label maps and 3D Slicer segmentations (`.seg.nrrd`).
//!
//! ```no_run
//! use ildtrack_dicom::{load, LoadOptions};
//! let series = load(std::path::Path::new("study/"), &LoadOptions::default())?;
//! println!("{:?} voxels at {:?} mm", series.volume.dims_zyx(), series.volume.geometry.spacing_mm);
//! for w in &series.warnings { println!("{w}"); }
//! # Ok::<(), ildtrack_dicom::LoadError>(())
//! ```
//!
//! Decisions:
//! - slices are sorted by ImagePositionPatient projected on the slice normal, never by file
//!   name or InstanceNumber; the volume's z axis always runs along +normal;
//! - duplicates are dropped, gaps and irregular spacing are resampled onto a regular grid by
//!   linear interpolation, gantry tilt is removed by shifting slices in-plane (see [`assemble`]);
//! - HU = stored × RescaleSlope + RescaleIntercept per slice (per frame for enhanced CT);
//!   PixelPaddingValue (and range) and HU below −1500 (outside the reconstruction circle)
//!   become [`ildtrack_volume::OUTSIDE_FOV_HU`]; HU above 32767 saturate with a warning;
//! - sizes claimed by a header are checked against the bytes present before allocating: every
//!   file is first walked at byte level (`layout`), so dicom-rs never sees a length longer
//!   than the file; native pixel data is converted straight from the file bytes;
//! - JPEG 2000 whose codestream says signed while PixelRepresentation says unsigned is read as
//!   signed (warning `pixel-representation-mismatch`); the reverse is accepted only at 16 bits
//!   (same bit pattern), otherwise refused as ambiguous;
//! - decoders: native (LE/BE/deflate), RLE, JPEG baseline/lossless (jpeg-decoder), JPEG-LS
//!   (CharLS, needs cmake to build), JPEG 2000 (OpenJPEG); 12-bit lossy JPEG (…4.51, and the retired
//!   …4.53 / …4.55 read as …4.51) by `ildtrack-jpeg12`, registered with dicom-rs' transfer
//!   syntax registry.
//!
//! Architecture Invariant: no pixel data is read by [`scan`]; [`load`] keeps one `i16` volume
//! plus headers in memory (twice that only when resampling is needed), never all decoded objects.
//! Architecture Invariant: patient name and ID are never logged or put in an error message.

pub mod assemble;
mod decode;
mod dicomdir;
mod error;
mod geometry;
mod header;
mod hu;
#[cfg(test)]
mod jpeg12_tests;
mod kernel;
mod layout;
pub mod nifti;
pub mod nrrd;
mod scan;
pub mod seg;
mod series;
pub mod shared_data;
pub mod sr;
mod ts;

use std::collections::BTreeMap;
use std::path::Path;

use ildtrack_volume::{Volume, Warning};
use ndarray::Array3;
use rayon::prelude::*;

pub use error::LoadError;
pub use kernel::{KernelClass, classify_kernel};
pub use series::{LoadOptions, LoadedSeries, Scan, SeriesEntry};

use assemble::OutSlice;
use decode::Stats;

/// Largest volume we assemble, in bytes of `i16` (8 GiB).
const MAX_VOLUME_BYTES: u64 = 8 << 30;

/// Share of voxels outside the field of view above which `outside-fov` is reported: the
/// reconstruction circle alone leaves ≈ 21.5 % of a square slice outside.
const OUTSIDE_FOV_WARN_PCT: f64 = 30.0;

/// Read headers only and build the series table with the automatic choice.
pub fn scan(input: &Path) -> Result<Scan, LoadError> {
    scan::scan_input(input)
}

/// Scan, choose (honouring `opts.series_uid`), assemble and decode.
pub fn load(input: &Path, opts: &LoadOptions) -> Result<LoadedSeries, LoadError> {
    if input.is_file() && nifti::is_nifti_path(input) {
        return nifti::read(input);
    }
    if input.is_file() && nrrd::is_nrrd_path(input) {
        return nrrd::read(input);
    }
    let scan = scan(input)?;
    load_scan(scan, opts)
}

/// Load from a [`Scan`] already made (saves reading the headers twice).
pub fn load_scan(mut scan: Scan, opts: &LoadOptions) -> Result<LoadedSeries, LoadError> {
    if scan.source_format == "nifti" {
        return nifti::read(&scan.input);
    }
    if scan.source_format == "nrrd" {
        return nrrd::read(&scan.input);
    }
    if opts.series_uid.is_some() {
        scan::choose(&mut scan, opts);
    }
    let Some(idx) = scan.chosen else {
        if let Some(uid) = &opts.series_uid
            && !scan.series.iter().any(|e| &e.uid == uid)
        {
            return Err(LoadError::SeriesNotFound {
                path: scan.input.clone(),
                uid: uid.clone(),
                detail: format!("{} series present", scan.series.len()),
            });
        }
        return Err(LoadError::NoUsableSeries {
            path: scan.input.clone(),
            detail: rejection_summary(&scan),
        });
    };
    assemble_series(&scan, idx)
}

fn rejection_summary(scan: &Scan) -> String {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for e in &scan.series {
        *counts
            .entry(
                e.rejected_because
                    .clone()
                    .unwrap_or_else(|| "not chosen".into()),
            )
            .or_default() += 1;
    }
    let parts: Vec<String> = counts
        .into_iter()
        .map(|(k, n)| if n > 1 { format!("{k} (×{n})") } else { k })
        .collect();
    format!(
        "{} stack(s) found, none usable: {}",
        scan.series.len(),
        parts.join("; ")
    )
}

fn assemble_series(scan: &Scan, idx: usize) -> Result<LoadedSeries, LoadError> {
    let e = &scan.series[idx];
    let files = &scan.files;
    let first_path = e
        .slices
        .first()
        .map(|s| files[s.file].path.clone())
        .unwrap_or_else(|| scan.input.clone());
    let geoms = scan::slice_geoms(e, files).ok_or_else(|| LoadError::Assembly {
        path: scan.input.clone(),
        detail: "slices lack ImagePositionPatient, ImageOrientationPatient or PixelSpacing".into(),
    })?;
    let plan = assemble::plan(&geoms).map_err(|detail| LoadError::Assembly {
        path: scan.input.clone(),
        detail,
    })?;
    let (rows, cols) = (e.rows as usize, e.cols as usize);
    let px = rows * cols;
    let n_src = plan.order.len();
    let n_out = plan.out.len();
    let bytes = (n_src.max(n_out) as u64) * (px as u64) * 2 * if plan.is_direct() { 1 } else { 2 };
    if bytes > MAX_VOLUME_BYTES || px == 0 {
        return Err(LoadError::TooLarge {
            path: first_path,
            detail: format!(
                "{n_out} slices of {rows}×{cols} need {} MiB (limit {} MiB)",
                bytes >> 20,
                MAX_VOLUME_BYTES >> 20
            ),
        });
    }
    tracing::debug!(slices = n_src, rows, cols, "decoding series");

    // Decode the source slices (sorted, de-duplicated) into `src`.
    let mut src = Array3::<i16>::zeros((n_src, rows, cols));
    let stats = {
        let flat = src.as_slice_mut().ok_or_else(|| LoadError::Internal {
            path: first_path.clone(),
            detail: "volume not contiguous".into(),
        })?;
        let mut slots: Vec<Option<&mut [i16]>> = flat.chunks_mut(px).map(Some).collect();
        // Per source file: (frame, slope, intercept) of each slice and its output plane.
        type FileSlices<'a> = (Vec<(u32, f64, f64)>, Vec<&'a mut [i16]>);
        let mut groups: BTreeMap<usize, FileSlices> = BTreeMap::new();
        for (k, &oi) in plan.order.iter().enumerate() {
            let r = e.slices[oi];
            let fr = &files[r.file].frames[r.frame as usize];
            let slot = slots[k].take().ok_or_else(|| LoadError::Internal {
                path: first_path.clone(),
                detail: "slice used twice".into(),
            })?;
            let g = groups.entry(r.file).or_default();
            g.0.push((r.frame, fr.slope, fr.intercept));
            g.1.push(slot);
        }
        let results: Vec<Result<Stats, LoadError>> = groups
            .into_par_iter()
            .map(|(fi, (jobs, mut outs))| decode::decode_file(&files[fi], &jobs, &mut outs))
            .collect();
        let mut total = Stats::default();
        for r in results {
            total.add(&r?);
        }
        total
    };

    let volume_data = if plan.is_direct() {
        src
    } else {
        let mut out = Array3::<i16>::zeros((n_out, rows, cols));
        let src_flat = src.as_slice().ok_or_else(|| LoadError::Internal {
            path: first_path.clone(),
            detail: "volume not contiguous".into(),
        })?;
        let src_slice = |k: usize| &src_flat[k * px..(k + 1) * px];
        let out_flat = out.as_slice_mut().ok_or_else(|| LoadError::Internal {
            path: first_path.clone(),
            detail: "volume not contiguous".into(),
        })?;
        out_flat
            .par_chunks_mut(px)
            .enumerate()
            .for_each(|(j, dst)| {
                let mut tmp;
                let plane: &[i16] = match plan.out[j] {
                    OutSlice::Copy(k) => src_slice(k),
                    OutSlice::Interp { lo, hi, w } => {
                        tmp = vec![0i16; px];
                        assemble::interp_slice(src_slice(lo), src_slice(hi), w, &mut tmp);
                        &tmp
                    }
                };
                match &plan.shift_px {
                    Some(sh) => assemble::shift_slice(plane, dst, rows, cols, sh[j]),
                    None => dst.copy_from_slice(plane),
                }
            });
        out
    };

    let mut warnings: Vec<Warning> = scan.notes.clone();
    warnings.extend(
        e.warnings
            .iter()
            .filter(|w| !plan.warnings.contains(w))
            .cloned(),
    );
    warnings.extend(plan.warnings.iter().cloned());
    // Padding outside the reconstruction circle is normal (1 − π/4 ≈ 21.5 % of a square slice)
    // and is handled (marked OUTSIDE_FOV_HU): no warning for that. Only a larger share, which
    // the circle cannot explain (a small or cut field of view), is worth a reader's attention.
    let outside = stats.padding + stats.below_fov;
    if stats.voxels > 0 {
        let outside_pct = 100.0 * outside as f64 / stats.voxels as f64;
        tracing::debug!(
            outside_pct,
            "voxels outside the reconstructed field of view"
        );
        if outside_pct > OUTSIDE_FOV_WARN_PCT {
            warnings.push(Warning::new(
                "outside-fov",
                format!(
                    "{outside_pct:.1} % of voxels lie outside the reconstructed field of view (PixelPaddingValue or below −1500 HU), more than a reconstruction circle explains: check that the field of view covers the whole chest"
                ),
            ));
        }
    }
    if stats.sign_fixed {
        warnings.push(Warning::new(
            "pixel-representation-mismatch",
            "PixelRepresentation says unsigned but the JPEG 2000 codestream holds signed samples; read as signed",
        ));
    }
    if stats.saturated > 0 {
        warnings.push(Warning::new(
            "hu-saturated",
            format!(
                "{} voxel(s) above {} HU were clipped to it",
                stats.saturated,
                i16::MAX
            ),
        ));
    }
    let mut meta = e.meta.clone();
    meta.source_format = Some(scan.source_format.clone());
    meta.transfer_syntax = Some(e.transfer_syntax.clone());
    if meta.slice_thickness_mm.is_none() {
        meta.slice_thickness_mm = e.thickness_mm;
    }
    Ok(LoadedSeries {
        volume: Volume::new(volume_data, plan.geometry),
        meta,
        identity: e.identity.clone(),
        warnings,
    })
}

/// Entry points for the fuzz targets in `fuzz/` (not a stable API).
#[doc(hidden)]
pub mod fuzzing {
    use std::path::Path;

    use dicom_dictionary_std::tags;
    use dicom_object::OpenFileOptions;

    /// What [`header_and_assembly`] decoded.
    #[derive(Debug)]
    pub struct Decoded {
        pub voxels: Vec<i16>,
        pub expected_len: usize,
    }

    impl Decoded {
        pub fn len(&self) -> usize {
            self.voxels.len()
        }

        pub fn is_empty(&self) -> bool {
            self.voxels.is_empty()
        }
    }

    /// Bytes as a DICOM file → layout walk → header → a synthetic 3-file series (two shifted
    /// copies and a duplicate) → grouping, choice and assembly plan → decode of frame 0.
    /// Returns the decoded frame when everything succeeded.
    pub fn header_and_assembly(data: &[u8]) -> Option<Decoded> {
        let path = Path::new("fuzz-input.dcm");
        let layout = crate::layout::walk(data, data.len()).ok()?;
        let until = layout.pixel.map(|p| p.header_start).unwrap_or(data.len());
        let stream = layout.stream(data, until);
        let obj = OpenFileOptions::new()
            .read_preamble(dicom_object::file::ReadPreamble::Never)
            .read_until(tags::PIXEL_DATA)
            .from_reader(&stream[..])
            .ok()?;
        let h = crate::header::parse_header(path, data.len() as u64, &obj).ok()?;
        let mut files = vec![h.clone(), h.clone(), h.clone(), h.clone()];
        for (k, f) in files.iter_mut().enumerate().take(3) {
            for fr in &mut f.frames {
                if let (Some(p), Some(o)) = (fr.position.as_mut(), fr.orientation) {
                    let n = crate::geometry::cross([o[0], o[1], o[2]], [o[3], o[4], o[5]]);
                    for c in 0..3 {
                        p[c] += n[c] * 2.5 * k as f64;
                    }
                }
            }
        }
        let mut scan = crate::scan::group(path, files, Vec::new(), "fuzz".into());
        crate::scan::choose(&mut scan, &crate::LoadOptions::default());
        for e in &scan.series {
            if let Some(g) = crate::scan::slice_geoms(e, &scan.files) {
                let _ = crate::assemble::plan(&g);
            }
        }
        let p = h.pixel.as_ref()?;
        let n = (p.rows as usize).checked_mul(p.cols as usize)?;
        if n == 0 || n > 1 << 22 {
            return None;
        }
        let fr = h.frames.first()?;
        let mut buf = vec![0i16; n];
        crate::decode::decode_bytes(
            path,
            data,
            &h,
            &[(0, fr.slope, fr.intercept)],
            &mut [&mut buf[..]],
        )
        .ok()?;
        Some(Decoded {
            voxels: buf,
            expected_len: n,
        })
    }
}
