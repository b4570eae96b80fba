//! Integration tests of the loader against the real data in `<repo>/../shared/data` (skipped
//! with a message when absent) and against small folders built in temporary directories.

use std::path::{Path, PathBuf};

use dicom_dictionary_std::tags;
use ildtrack_dicom::{LoadError, LoadOptions, load, scan};
use ildtrack_volume::OUTSIDE_FOV_HU;

fn data_dir() -> Option<PathBuf> {
    ildtrack_dicom::shared_data::for_test(Path::new(env!("CARGO_MANIFEST_DIR")))
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|r| {
            r.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Percentile of the voxels that are not outside the field of view.
fn percentile(data: &[i16], q: f64) -> i16 {
    let mut v: Vec<i16> = data
        .iter()
        .copied()
        .filter(|&x| x != OUTSIDE_FOV_HU)
        .collect();
    assert!(!v.is_empty(), "no voxel inside the field of view");
    v.sort_unstable();
    v[((v.len() - 1) as f64 * q) as usize]
}

fn header(path: &Path) -> dicom_object::DefaultDicomObject {
    dicom_object::OpenFileOptions::new()
        .read_until(tags::PIXEL_DATA)
        .open_file(path)
        .unwrap_or_else(|e| panic!("reference read of {}: {e}", path.display()))
}

fn f64s(obj: &dicom_object::DefaultDicomObject, tag: dicom_core::Tag) -> Vec<f64> {
    obj.element(tag)
        .ok()
        .and_then(|e| e.to_multi_float64().ok())
        .unwrap_or_default()
}

#[test]
fn lung_pet_ct_dx_series_match_their_tags() {
    let Some(d) = data_dir() else { return };
    for (folder, n, ps, thick, kernel) in [
        ("A0001-kernel-L", 64, 0.841796875, 5.0, "L"),
        ("A0001-kernel-B", 64, 0.841796875, 5.0, "B"),
        ("A0002-kernel-B70f", 30, 0.646484375, 8.0, "B70f"),
        ("A0002-kernel-B40f", 30, 0.646484375, 8.0, "B40f"),
    ] {
        let dir = d.join("lung-pet-ct-dx").join(folder);
        let s = load(&dir, &LoadOptions::default()).unwrap_or_else(|e| panic!("{folder}: {e}"));
        let g = s.volume.geometry;
        assert_eq!(s.volume.dims_zyx(), [n, 512, 512], "{folder}");
        // Reference values straight from the tags, read independently of the loader.
        let files = files_in(&dir);
        let mut pos: Vec<[f64; 3]> = files
            .iter()
            .map(|f| {
                let p = f64s(&header(f), tags::IMAGE_POSITION_PATIENT);
                [p[0], p[1], p[2]]
            })
            .collect();
        pos.sort_by(|a, b| a[2].total_cmp(&b[2]));
        let h0 = header(&files[0]);
        let tag_ps = f64s(&h0, tags::PIXEL_SPACING);
        assert!(
            (tag_ps[0] - ps).abs() < 1e-9 && (g.spacing_mm[1] - tag_ps[0]).abs() < 1e-9,
            "{folder} row spacing"
        );
        assert!(
            (g.spacing_mm[2] - tag_ps[1]).abs() < 1e-9,
            "{folder} column spacing"
        );
        let dz = (pos[n - 1][2] - pos[0][2]) / (n - 1) as f64;
        assert!(
            (g.spacing_mm[0] - dz).abs() < 1e-3,
            "{folder} slice spacing {} vs {dz}",
            g.spacing_mm[0]
        );
        for k in 0..3 {
            assert!(
                (g.origin_mm[k] - pos[0][k]).abs() < 1e-6,
                "{folder} origin {:?} vs {:?}",
                g.origin_mm,
                pos[0]
            );
        }
        assert_eq!(s.meta.slice_thickness_mm, Some(thick), "{folder}");
        assert_eq!(s.meta.kernel.as_deref(), Some(kernel), "{folder}");
        assert_eq!(s.meta.modality.as_deref(), Some("CT"));
        assert!(
            s.meta
                .study_date
                .as_deref()
                .is_some_and(|d| d.len() == 10 && &d[4..5] == "-")
        );
        // Last slice centre = origin + (n-1) * spacing along the normal.
        let last = g.index_to_lps([(n - 1) as f64, 0.0, 0.0]);
        assert!(
            (last[2] - pos[n - 1][2]).abs() < 0.01,
            "{folder} last slice at {last:?} vs {:?}",
            pos[n - 1]
        );
        // Voxel (z, y, x) = decoded pixel value from the tags' rescale, at one probe voxel.
        let data = s.volume.data.as_slice().unwrap_or(&[]);
        let air = percentile(data, 0.01);
        assert!(
            (-1100..=-900).contains(&air),
            "{folder}: 1st percentile {air} HU is not air"
        );
        let dense = percentile(data, 0.999);
        assert!(
            dense > 100,
            "{folder}: no bone/contrast (99.9th percentile {dense})"
        );
        assert!(
            s.warnings
                .iter()
                .all(|w| w.code != "missing-slices" && w.code != "gantry-tilt"),
            "{folder}: {:?}",
            s.warnings
        );
    }
}

#[test]
fn folder_of_kernel_pairs_prefers_the_lung_kernel_and_says_why() {
    let Some(d) = data_dir() else { return };
    let sc = scan(&d.join("lung-pet-ct-dx")).expect("scan");
    assert_eq!(sc.series.len(), 4);
    assert!(
        sc.notes.iter().any(|n| n.code == "non-dicom-files"),
        "LICENSE is noted: {:?}",
        sc.notes
    );
    let chosen = &sc.series[sc.chosen.expect("a choice")];
    assert_eq!(chosen.kernel.as_deref(), Some("L"));
    assert!(
        sc.choice_reasons
            .iter()
            .any(|r| r.contains("lung kernel is preferred")),
        "{:?}",
        sc.choice_reasons
    );
    // --series override picks the soft kernel of the pair.
    let soft = sc
        .series
        .iter()
        .find(|e| e.kernel.as_deref() == Some("B"))
        .expect("kernel B");
    let s = load(
        &d.join("lung-pet-ct-dx"),
        &LoadOptions {
            series_uid: Some(soft.uid.clone()),
        },
    )
    .expect("override");
    assert_eq!(s.meta.kernel.as_deref(), Some("B"));
    let bad = load(
        &d.join("lung-pet-ct-dx"),
        &LoadOptions {
            series_uid: Some("1.2.3.4".into()),
        },
    );
    assert!(
        matches!(bad, Err(LoadError::SeriesNotFound { .. })),
        "{bad:?}"
    );
}

#[test]
fn covid_and_lidc_slices_load_with_sane_hu() {
    let Some(d) = data_dir() else { return };
    let mut n = 0;
    for subject in files_in(&d.join("covid-ny-sbu")).into_iter().chain(
        std::fs::read_dir(d.join("covid-ny-sbu"))
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok().map(|e| e.path())),
    ) {
        for view in ["axial", "coronal", "sagittal"] {
            for f in files_in(&subject.join(view)) {
                let s = load(&f, &LoadOptions::default()).unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(s.volume.dims_zyx()[0], 1);
                assert!(s.warnings.iter().any(|w| w.code == "single-slice"));
                let data = s.volume.data.as_slice().unwrap_or(&[]);
                let p1 = percentile(data, 0.01);
                assert!(
                    (-1100..=-850).contains(&p1),
                    "{}: 1st percentile {p1}",
                    f.display()
                );
                assert!(
                    s.meta.study_date.is_some() && s.meta.manufacturer.is_some(),
                    "{}",
                    f.display()
                );
                n += 1;
            }
        }
    }
    assert!(n >= 20, "only {n} COVID-19-NY-SBU slices found");
    let s = load(
        &d.join("lungmask-slice/lidc-slice.dcm"),
        &LoadOptions::default(),
    )
    .expect("lidc");
    assert_eq!(s.volume.dims_zyx(), [1, 512, 512]);
    let p1 = percentile(s.volume.data.as_slice().unwrap_or(&[]), 0.01);
    assert!((-1100..=-900).contains(&p1), "LIDC 1st percentile {p1}");
    assert!(s.warnings.iter().any(|w| w.code == "modality-missing"));
}

fn load_any(path: &Path) -> Result<ildtrack_dicom::LoadedSeries, LoadError> {
    // Decode a file whatever the series choice thinks of it (e.g. a localizer).
    let sc = scan(path)?;
    let uid = sc.series.first().map(|e| e.uid.clone());
    load(path, &LoadOptions { series_uid: uid })
}

/// Transfer syntaxes whose decoder is not available in this build (none since the 12-bit lossy
/// JPEG decoder, `crates/ildtrack-jpeg12`; the check stays for the next one).
const KNOWN_UNSUPPORTED: [&str; 0] = [];

#[test]
fn transfer_syntaxes_decode_and_lossless_ones_are_bit_identical() {
    let Some(d) = data_dir() else { return };
    let ts = d.join("transfer-syntaxes");
    let reference = load_any(&ts.join("ctimage/CTImage.dcm")).expect("reference CTImage.dcm");
    let ref_data = reference.volume.data.clone();
    let mut failures = Vec::new();
    for f in files_in(&ts.join("ctimage")) {
        let name = f
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .to_string();
        let got = load_any(&f);
        if KNOWN_UNSUPPORTED.contains(&name.as_str()) {
            match got {
                Err(e) => assert!(e.to_string().contains(&name), "{e}"),
                Ok(_) => failures.push(format!(
                    "{name}: now decodes; remove it from KNOWN_UNSUPPORTED"
                )),
            }
            continue;
        }
        let s = match got {
            Ok(s) => s,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        let lossy = ["4.50.", "4.51.", "4.53.", "4.55.", "4.81.", "4.91."]
            .iter()
            .any(|t| name.contains(t));
        let max_diff = s
            .volume
            .data
            .iter()
            .zip(ref_data.iter())
            .map(|(a, b)| (i32::from(*a) - i32::from(*b)).abs())
            .max()
            .unwrap_or(0);
        if !lossy && s.volume.data != ref_data {
            failures.push(format!(
                "{name}: lossless decode differs from CTImage.dcm by up to {max_diff}"
            ));
        }
        if lossy && max_diff > 400 {
            failures.push(format!("{name}: lossy decode differs by {max_diff}"));
        }
    }
    // NEMA CT1 from different encoders: lossless ones agree exactly.
    let nema = ts.join("nema-ct1");
    let base = load_any(&nema.join("CT1_implicit-undefined-length.dcm"))
        .expect("CT1 implicit")
        .volume
        .data;
    for name in [
        "CT1_J2KR.dcm",
        "CT1_jpeg-lossless.dcm",
        "CT1_rle-frags.dcm",
        "CT1_J2KI-lossy.dcm",
    ] {
        match load_any(&nema.join(name)) {
            Ok(s) => {
                let max_diff = s
                    .volume
                    .data
                    .iter()
                    .zip(base.iter())
                    .map(|(a, b)| (i32::from(*a) - i32::from(*b)).abs())
                    .max()
                    .unwrap_or(0);
                let limit = if name.contains("lossy") { 400 } else { 0 };
                if max_diff > limit {
                    failures.push(format!(
                        "{name}: differs from the implicit-VR reference by {max_diff}"
                    ));
                }
            }
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    for f in files_in(&ts.join("vendor-j2k"))
        .into_iter()
        .chain([ts.join("CT_small.dcm")])
    {
        match load_any(&f) {
            Ok(s) => {
                let p1 = percentile(s.volume.data.as_slice().unwrap_or(&[]), 0.001);
                let p99 = percentile(s.volume.data.as_slice().unwrap_or(&[]), 0.999);
                if !(-1500..=0).contains(&p1) || !(0..=5000).contains(&p99) {
                    failures.push(format!("{}: implausible HU range {p1}..{p99}", f.display()));
                }
            }
            Err(e) => failures.push(format!("{}: {e}", f.display())),
        }
    }
    let e = load(
        &ts.join("enhanced-ct/eCT_Supplemental.dcm"),
        &LoadOptions::default(),
    )
    .expect("enhanced CT");
    assert_eq!(e.volume.dims_zyx(), [2, 512, 512]);
    assert_eq!(e.meta.source_format.as_deref(), Some("enhanced-multiframe"));
    assert!(e.volume.geometry.spacing_mm[0] > 0.0);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_malformed_file_is_refused_with_its_name() {
    let Some(d) = data_dir() else { return };
    let mut problems = Vec::new();
    let files = files_in(&d.join("malformed"));
    assert!(files.len() >= 14);
    for f in files {
        let name = f
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .to_string();
        match load(&f, &LoadOptions::default()) {
            Err(e) => {
                let msg = e.to_string();
                if !msg.contains(&name) {
                    problems.push(format!("{name}: message does not name the file: {msg}"));
                }
                if !e.is_unusable_input() {
                    problems.push(format!("{name}: classed as an internal error: {msg}"));
                }
            }
            // Only non-conformant UIDs found in it: loads, but never silently.
            Ok(s) if name == "bad_sequence.dcm" => {
                if !s.warnings.iter().any(|w| w.code == "invalid-uid") {
                    problems.push(format!("{name}: loaded without an invalid-uid warning"));
                }
            }
            Ok(_) => problems.push(format!("{name}: loaded although malformed")),
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn dicomdir_variants_resolve_to_the_same_series() {
    let Some(d) = data_dir() else { return };
    let dd = d.join("dicomdir");
    let reference = scan(&dd.join("DICOMDIR")).expect("DICOMDIR");
    assert_eq!(reference.source_format, "dicomdir");
    let uids = |s: &ildtrack_dicom::Scan| {
        let mut v: Vec<String> = s
            .series
            .iter()
            .map(|e| format!("{}#{}:{}", e.uid, e.stack, e.n_slices))
            .collect();
        v.sort();
        v
    };
    let chosen = reference.chosen.map(|i| reference.series[i].uid.clone());
    assert!(chosen.is_some(), "{:?}", reference.choice_reasons);
    for variant in [
        "DICOMDIR-bigEnd",
        "DICOMDIR-implicit",
        "DICOMDIR-nooffset",
        "DICOMDIR-reordered",
        "DICOMDIR-nopatient",
    ] {
        let s = scan(&dd.join(variant)).unwrap_or_else(|e| panic!("{variant}: {e}"));
        assert_eq!(uids(&s), uids(&reference), "{variant}");
        assert_eq!(
            s.chosen.map(|i| s.series[i].uid.clone()),
            chosen,
            "{variant}"
        );
    }
    let e = scan(&dd.join("DICOMDIR-empty.dcm")).expect_err("empty DICOMDIR");
    assert!(
        matches!(e, LoadError::DicomDir { .. }) && e.to_string().contains("DICOMDIR-empty.dcm"),
        "{e}"
    );
    // The folder itself: scanned directly, the index files noted.
    let s = scan(&dd).expect("folder");
    assert!(
        s.notes.iter().any(|n| n.code == "dicomdir-index"),
        "{:?}",
        s.notes
    );
    let loaded = load(&dd.join("DICOMDIR"), &LoadOptions::default()).expect("load via DICOMDIR");
    assert_eq!(loaded.meta.source_format.as_deref(), Some("dicomdir"));
}

// ---- folders built in temporary directories ----

fn copy_series(src: &Path, dst: &Path) -> Vec<PathBuf> {
    std::fs::create_dir_all(dst).expect("mkdir");
    files_in(src)
        .into_iter()
        .map(|f| {
            let to = dst.join(f.file_name().unwrap_or_default());
            std::fs::copy(&f, &to).expect("copy");
            to
        })
        .collect()
}

#[test]
fn empty_zero_byte_and_non_dicom_folders_have_specific_messages() {
    let t = tempfile::tempdir().expect("tempdir");
    let e = load(t.path(), &LoadOptions::default()).expect_err("empty");
    assert!(e.to_string().contains("the folder is empty"), "{e}");
    std::fs::write(t.path().join("a.dcm"), b"").expect("write");
    std::fs::write(t.path().join("b.dcm"), b"").expect("write");
    let e = load(t.path(), &LoadOptions::default()).expect_err("zero-byte");
    assert!(e.to_string().contains("2 zero-byte"), "{e}");
    assert!(matches!(
        load(&t.path().join("a.dcm"), &LoadOptions::default()),
        Err(LoadError::EmptyFile { .. })
    ));
    std::fs::write(t.path().join("notes.txt"), b"hello, not DICOM at all; long enough to sniff .......................................................................................................").expect("write");
    let e = load(t.path(), &LoadOptions::default()).expect_err("non-dicom");
    assert!(e.to_string().contains("not DICOM"), "{e}");
    let e = load(&t.path().join("notes.txt"), &LoadOptions::default()).expect_err("non-dicom file");
    assert!(
        e.to_string().contains("not a DICOM Part 10 file") && e.to_string().contains("notes.txt"),
        "{e}"
    );
    let e = load(&t.path().join("missing"), &LoadOptions::default()).expect_err("missing");
    assert!(matches!(e, LoadError::NotFound { .. }));
}

#[test]
fn mr_only_and_one_slice_and_mixed_orientations() {
    let Some(d) = data_dir() else { return };
    let t = tempfile::tempdir().expect("tempdir");
    let mr = t.path().join("mr");
    copy_series(&d.join("dicomdir/98892003/MR700"), &mr);
    let e = load(&mr, &LoadOptions::default()).expect_err("MR only");
    assert!(
        matches!(e, LoadError::NoUsableSeries { .. })
            && e.to_string().contains("modality MR, not CT"),
        "{e}"
    );

    let one = t.path().join("one");
    std::fs::create_dir_all(&one).expect("mkdir");
    std::fs::copy(
        d.join("lung-pet-ct-dx/A0002-kernel-B70f/1-10.dcm"),
        one.join("x"),
    )
    .expect("copy");
    let s = load(&one, &LoadOptions::default()).expect("one slice");
    assert_eq!(s.volume.dims_zyx(), [1, 512, 512]);
    assert!(s.warnings.iter().any(|w| w.code == "single-slice"));

    // Axial, coronal and sagittal slices of one patient in one folder: the axial one is chosen.
    let mixed = t.path().join("mixed");
    for view in ["axial", "coronal", "sagittal"] {
        copy_series(
            &d.join("covid-ny-sbu/A046441").join(view),
            &mixed.join(view),
        );
    }
    let sc = scan(&mixed).expect("scan mixed");
    let orients: std::collections::BTreeSet<&str> =
        sc.series.iter().map(|e| e.orientation.as_str()).collect();
    assert!(
        orients.contains("axial") && orients.contains("coronal") && orients.contains("sagittal"),
        "{orients:?}"
    );
    let c = &sc.series[sc.chosen.expect("choice")];
    assert_eq!(c.orientation, "axial");
    assert!(
        sc.choice_reasons
            .iter()
            .any(|r| r.contains("not axial") || r.contains("not ORIGINAL")),
        "{:?}",
        sc.choice_reasons
    );
}

#[test]
fn missing_duplicate_and_truncated_slices_are_handled_and_announced() {
    let Some(d) = data_dir() else { return };
    let src = d.join("lung-pet-ct-dx/A0002-kernel-B70f");
    let full = load(&src, &LoadOptions::default()).expect("full");
    let t = tempfile::tempdir().expect("tempdir");

    // Missing slice: the one at sorted index 10 removed → interpolated from its neighbours.
    let gap = t.path().join("gap");
    let files = copy_series(&src, &gap);
    let z10 = full.volume.geometry.index_to_lps([10.0, 0.0, 0.0])[2];
    let victim = files
        .iter()
        .find(|f| (f64s(&header(f), tags::IMAGE_POSITION_PATIENT)[2] - z10).abs() < 0.01)
        .expect("slice 10");
    std::fs::remove_file(victim).expect("rm");
    let s = load(&gap, &LoadOptions::default()).expect("gap");
    assert_eq!(s.volume.dims_zyx(), full.volume.dims_zyx());
    assert!(
        s.warnings.iter().any(|w| w.code == "missing-slices"),
        "{:?}",
        s.warnings
    );
    for z in [9usize, 11] {
        assert_eq!(
            s.volume.data.index_axis(ndarray::Axis(0), z),
            full.volume.data.index_axis(ndarray::Axis(0), z)
        );
    }
    let (a, b, m) = (
        full.volume.data.index_axis(ndarray::Axis(0), 9),
        full.volume.data.index_axis(ndarray::Axis(0), 11),
        s.volume.data.index_axis(ndarray::Axis(0), 10),
    );
    let mut worst = 0;
    for ((x, y), v) in a.iter().zip(b.iter()).zip(m.iter()) {
        if *x != OUTSIDE_FOV_HU && *y != OUTSIDE_FOV_HU {
            let mean = (i32::from(*x) + i32::from(*y)) as f64 / 2.0;
            worst = worst.max((f64::from(*v) - mean).abs().ceil() as i32);
        }
    }
    assert!(
        worst <= 1,
        "interpolated slice differs from the neighbours' mean by {worst}"
    );

    // Duplicate: one file copied under another name.
    let dup = t.path().join("dup");
    let files = copy_series(&src, &dup);
    std::fs::copy(&files[3], dup.join("zz-copy.dcm")).expect("copy");
    let s = load(&dup, &LoadOptions::default()).expect("dup");
    assert_eq!(s.volume.data, full.volume.data);
    assert!(
        s.warnings.iter().any(|w| w.code == "duplicate-slices"),
        "{:?}",
        s.warnings
    );

    // Truncated file in a folder: left out, its slice interpolated; alone: an error naming it.
    let tr = t.path().join("trunc");
    let files = copy_series(&src, &tr);
    let bytes = std::fs::read(&files[5]).expect("read");
    std::fs::write(&files[5], &bytes[..bytes.len() / 2]).expect("truncate");
    let s = load(&tr, &LoadOptions::default()).expect("truncated member");
    assert_eq!(s.volume.dims_zyx()[0], 30);
    assert!(
        s.warnings.iter().any(|w| w.code == "truncated-files"),
        "{:?}",
        s.warnings
    );
    let e = load(&files[5], &LoadOptions::default()).expect_err("truncated alone");
    assert!(
        matches!(e, LoadError::Truncated { .. })
            && e.to_string()
                .contains(files[5].file_name().and_then(|n| n.to_str()).unwrap_or("?")),
        "{e}"
    );
    // A zero-byte file next to a good series is only a note.
    std::fs::write(tr.join("empty.dcm"), b"").expect("write");
    let s = load(&tr, &LoadOptions::default()).expect("with empty");
    assert!(s.warnings.iter().any(|w| w.code == "empty-files"));
}

#[test]
fn nifti_round_trip_keeps_voxels_and_geometry() {
    let Some(d) = data_dir() else { return };
    let s = load(
        &d.join("lung-pet-ct-dx/A0002-kernel-B70f"),
        &LoadOptions::default(),
    )
    .expect("load");
    let t = tempfile::tempdir().expect("tempdir");
    for name in ["ct.nii.gz", "ct.nii"] {
        let p = t.path().join(name);
        ildtrack_dicom::nifti::write_i16(&p, &s.volume).expect("write");
        let r = ildtrack_dicom::nifti::read(&p).expect("read back");
        assert_eq!(r.volume.data, s.volume.data, "{name}");
        let (a, b) = (r.volume.geometry, s.volume.geometry);
        for k in 0..3 {
            assert!(
                (a.spacing_mm[k] - b.spacing_mm[k]).abs() < 1e-4,
                "{name} spacing {a:?} {b:?}"
            );
            assert!(
                (a.origin_mm[k] - b.origin_mm[k]).abs() < 1e-3,
                "{name} origin"
            );
            for c in 0..3 {
                assert!(
                    (a.direction[k][c] - b.direction[k][c]).abs() < 1e-5,
                    "{name} direction"
                );
            }
        }
        assert_eq!(r.meta.source_format.as_deref(), Some("nifti"));
        let sc = scan(&p).expect("scan nifti");
        assert_eq!(sc.series[0].n_slices, 30);
    }
    let mask = s
        .volume
        .with_data(s.volume.data.mapv(|v| u8::from(v > -500)));
    let p = t.path().join("mask.nii.gz");
    ildtrack_dicom::nifti::write_u8(&p, &mask).expect("write mask");
    let r = ildtrack_dicom::nifti::read(&p).expect("read mask");
    assert!(
        r.volume
            .data
            .iter()
            .zip(mask.data.iter())
            .all(|(a, b)| *a == i16::from(*b))
    );
    // No temporary files left behind.
    assert_eq!(files_in(t.path()).len(), 3);
}

#[test]
fn nifti_with_lying_header_is_refused() {
    let t = tempfile::tempdir().expect("tempdir");
    let mut vol = ildtrack_volume::Volume::new(
        ndarray::Array3::<i16>::zeros((4, 5, 6)),
        ildtrack_volume::Geometry::axial([2.0, 1.0, 1.0]),
    );
    vol.data[[1, 2, 3]] = 40;
    let p = t.path().join("x.nii");
    ildtrack_dicom::nifti::write_i16(&p, &vol).expect("write");
    let mut b = std::fs::read(&p).expect("read");
    // Claim 30000 slices.
    b[46..48].copy_from_slice(&30000i16.to_le_bytes());
    std::fs::write(&p, &b).expect("write");
    let e = ildtrack_dicom::nifti::read(&p).expect_err("lying dims");
    assert!(
        matches!(e, LoadError::Truncated { .. }) && e.to_string().contains("x.nii"),
        "{e}"
    );
}

// ---- properties of the slice assembly ----

mod assembly_properties {
    use ildtrack_dicom::assemble::{OutSlice, SliceGeom, plan};
    use proptest::prelude::*;

    fn rotate(v: [f64; 3], a: f64, b: f64) -> [f64; 3] {
        // Rotation about z by a, then about x by b.
        let (s, c) = a.sin_cos();
        let v = [c * v[0] - s * v[1], s * v[0] + c * v[1], v[2]];
        let (s, c) = b.sin_cos();
        [v[0], c * v[1] - s * v[2], s * v[1] + c * v[2]]
    }

    fn stack(n: usize, spacing: f64, a: f64, b: f64, origin: [f64; 3]) -> Vec<SliceGeom> {
        let r = rotate([1.0, 0.0, 0.0], a, b);
        let c = rotate([0.0, 1.0, 0.0], a, b);
        let nrm = rotate([0.0, 0.0, 1.0], a, b);
        (0..n)
            .map(|k| SliceGeom {
                position_mm: [0, 1, 2].map(|i| origin[i] + nrm[i] * spacing * k as f64),
                orientation: [r[0], r[1], r[2], c[0], c[1], c[2]],
                pixel_spacing_mm: [0.7, 0.7],
                thickness_mm: Some(spacing),
            })
            .collect()
    }

    proptest! {
        #[test]
        fn any_slice_order_gives_the_same_sorted_regular_volume(
            n in 2usize..40,
            spacing in 0.3f64..10.0,
            a in -3.1f64..3.1,
            b in -0.5f64..0.5,
            origin in proptest::array::uniform3(-300.0f64..300.0),
            seed in any::<u64>(),
        ) {
            let sorted = stack(n, spacing, a, b, origin);
            let mut shuffled: Vec<usize> = (0..n).collect();
            let mut s = seed;
            for i in (1..n).rev() {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                shuffled.swap(i, (s >> 33) as usize % (i + 1));
            }
            let input: Vec<SliceGeom> = shuffled.iter().map(|&i| sorted[i]).collect();
            let p = plan(&input).map_err(TestCaseError::fail)?;
            prop_assert_eq!(p.out.len(), n);
            prop_assert!(p.is_direct(), "{:?}", p.warnings);
            prop_assert!(p.warnings.is_empty(), "{:?}", p.warnings);
            prop_assert!((p.geometry.spacing_mm[0] - spacing).abs() < 1e-6 * spacing.max(1.0));
            // Output order is the true order along the normal.
            for (k, &i) in p.order.iter().enumerate() {
                prop_assert_eq!(shuffled[i], k);
            }
            for (got, want) in p.geometry.origin_mm.iter().zip(&origin) {
                prop_assert!((got - want).abs() < 1e-9);
            }
        }

        #[test]
        fn a_missing_slice_is_interpolated_and_announced(
            n in 4usize..40,
            spacing in 0.5f64..10.0,
            a in -3.1f64..3.1,
            drop in 1usize..1000,
        ) {
            let full = stack(n, spacing, a, 0.0, [10.0, -20.0, 30.0]);
            let drop = 1 + drop % (n - 2); // never the first or last
            let input: Vec<SliceGeom> = full.iter().enumerate().filter(|(i, _)| *i != drop).map(|(_, g)| *g).collect();
            let p = plan(&input).map_err(TestCaseError::fail)?;
            prop_assert_eq!(p.out.len(), n);
            prop_assert!(matches!(p.out[drop], OutSlice::Interp { w, .. } if (w - 0.5).abs() < 1e-6), "{:?}", p.out[drop]);
            prop_assert!(p.warnings.iter().any(|w| w.code == "missing-slices"));
            // Duplicating a slice is detected and does not change the plan's size.
            let mut dup = input.clone();
            dup.push(input[0]);
            let q = plan(&dup).map_err(TestCaseError::fail)?;
            prop_assert_eq!(q.out.len(), n);
            prop_assert!(q.warnings.iter().any(|w| w.code == "duplicate-slices"));
        }

        #[test]
        fn gantry_tilt_is_detected(n in 3usize..30, tilt_deg in 5.0f64..30.0) {
            let mut g = stack(n, 2.0, 0.0, 0.0, [0.0, 0.0, 0.0]);
            let shift = tilt_deg.to_radians().tan() * 2.0;
            for (k, s) in g.iter_mut().enumerate() {
                s.position_mm[1] += shift * k as f64;
            }
            let p = plan(&g).map_err(TestCaseError::fail)?;
            let w = p.warnings.iter().find(|w| w.code == "gantry-tilt");
            prop_assert!(w.is_some(), "{:?}", p.warnings);
            prop_assert!(p.shift_px.is_some());
            prop_assert_eq!(p.out.len(), n);
        }
    }
}

/// The fuzz target's entry point over truncations and byte flips of every real test file:
/// a deterministic mini-fuzz that runs in every `cargo test` (cargo fuzz explores further).
#[test]
fn fuzz_entry_survives_truncations_and_flips_of_real_files() {
    let Some(d) = data_dir() else { return };
    let mut files: Vec<PathBuf> = files_in(&d.join("malformed"));
    files.extend(files_in(&d.join("transfer-syntaxes")));
    files.extend(files_in(&d.join("transfer-syntaxes/nema-ct1")));
    files.push(d.join("lung-pet-ct-dx/A0002-kernel-B70f/1-01.dcm"));
    let mut runs = 0;
    for f in files {
        let Ok(bytes) = std::fs::read(&f) else {
            continue;
        };
        let n = bytes.len();
        // Whole, then truncated at 16 places.
        let _ = ildtrack_dicom::fuzzing::header_and_assembly(&bytes);
        for k in 1..16 {
            let _ = ildtrack_dicom::fuzzing::header_and_assembly(&bytes[..n * k / 16]);
            runs += 1;
        }
        // Byte flips in the first 4 KiB (the header), 32 places, deterministic.
        let mut s: u64 = n as u64;
        for _ in 0..32 {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let mut m = bytes.clone();
            let at = (s >> 33) as usize % n.min(4096);
            m[at] ^= (s >> 17) as u8 | 1;
            if let Some(dec) = ildtrack_dicom::fuzzing::header_and_assembly(&m) {
                assert_eq!(dec.len(), dec.expected_len);
            }
            runs += 1;
        }
    }
    assert!(runs > 800, "{runs}");
}

// ---- fixtures in <repo>/testdata (always present) ----

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/dicom")
        .join(name)
}

#[test]
fn fixtures_small_ct_loads_and_bad_files_are_refused() {
    let s = load(&fixture("CT_small.dcm"), &LoadOptions::default()).expect("CT_small");
    assert_eq!(s.volume.dims_zyx(), [1, 128, 128]);
    let data = s.volume.data.as_slice().unwrap_or(&[]);
    let (lo, hi) = (percentile(data, 0.0), percentile(data, 1.0));
    assert!(lo >= -1100 && hi <= 3000 && hi > lo, "HU range {lo}..{hi}");
    assert_eq!(s.meta.modality.as_deref(), Some("CT"));
    assert!(s.meta.pixel_spacing_mm.is_some());
    let sc = scan(&fixture("CT_small.dcm")).expect("scan");
    let json = serde_json::to_string(&sc).expect("json");
    assert!(
        json.contains("\"transfer_syntax\"") && json.contains("\"choice_reasons\""),
        "{json}"
    );
    for (name, want) in [
        ("no_meta.dcm", "not a DICOM Part 10 file"),
        ("rtplan_truncated.dcm", "truncated"),
    ] {
        let e = load(&fixture(name), &LoadOptions::default()).expect_err(name);
        let msg = e.to_string();
        assert!(
            msg.contains(want) && msg.contains(name) && e.is_unusable_input(),
            "{msg}"
        );
    }
    // Identity is read but Debug never shows it.
    assert!(
        !format!("{:?}", s.identity)
            .contains(s.identity.patient_name.as_deref().unwrap_or("\u{0}"))
    );
}
