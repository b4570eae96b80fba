//! NRRD in and out against software outside ildtrack, on the real series of `../shared/data`:
//! SimpleITK and pynrrd (the test venv, `scripts/setup.sh`) write each series as NRRD five ways
//! (`scripts/nrrd_interop.py write`); ildtrack must load every one to the very voxels and
//! geometry of the DICOM original and analyse it to the same lungs. Then ildtrack's own NRRD
//! label maps and Slicer segmentation are read back by SimpleITK and pynrrd
//! (`scripts/nrrd_interop.py compare`) and must equal the NIfTI label maps voxel for voxel.

use crate::common::out_dir;
use ildtrack_app::{AnalyzeOptions, LabelFormat, SEGMENTATION_FILE};
use ildtrack_compute::CpuBackend;
use ildtrack_volume::Geometry;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn python(py: &Path, args: &[&Path]) -> serde_json::Value {
    let out = Command::new(py)
        .arg(root().join("scripts/nrrd_interop.py"))
        .args(args)
        .output()
        .expect("run nrrd_interop.py");
    assert!(
        out.status.success(),
        "nrrd_interop.py {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("nrrd_interop.py prints JSON")
}

fn assert_same_geometry(what: &str, a: &Geometry, b: &Geometry) {
    let close = |x: &[f64], y: &[f64]| x.iter().zip(y).all(|(p, q)| (p - q).abs() < 1e-6);
    assert!(
        close(&a.spacing_mm, &b.spacing_mm),
        "{what}: spacing {a:?} vs {b:?}"
    );
    assert!(
        close(&a.origin_mm, &b.origin_mm),
        "{what}: origin {a:?} vs {b:?}"
    );
    for k in 0..3 {
        assert!(
            close(&a.direction[k], &b.direction[k]),
            "{what}: direction {a:?} vs {b:?}"
        );
    }
}

#[test]
fn nrrd_from_simpleitk_and_pynrrd_loads_and_analyses_like_its_dicom_series() {
    let Some(data) = ildtrack_dicom::shared_data::for_test(Path::new(env!("CARGO_MANIFEST_DIR")))
    else {
        return;
    };
    let Some(py) = ildtrack_dicom::shared_data::tools_python_for_test(
        Path::new(env!("CARGO_MANIFEST_DIR")),
        &["SimpleITK", "nrrd", "numpy"],
    ) else {
        return;
    };
    // An 8 mm series in ascending z and a 5 mm one (A0001's files run apex to base), analysed
    // too; and two slightly oblique single slices (a sagittal and a coronal reformat), loaded
    // only: their row, column and normal directions are all off the axes.
    let covid = data.join("covid-ny-sbu/A002304");
    let cases = [
        (
            "A0002-kernel-B70f",
            data.join("lung-pet-ct-dx/A0002-kernel-B70f"),
            true,
        ),
        (
            "A0001-kernel-L",
            data.join("lung-pet-ct-dx/A0001-kernel-L"),
            true,
        ),
        (
            "A002304-sagittal",
            covid.join("sagittal/19001231-080.dcm"),
            false,
        ),
        (
            "A002304-coronal",
            covid.join("coronal/19010112-124.dcm"),
            false,
        ),
    ];
    for (name, dicom, analyse) in cases {
        let dir = out_dir(&format!("nrrd-{name}"));
        let written = dir.join("written");
        let w = python(&py, &[Path::new("write"), &dicom, &written]);

        let reference = ildtrack_dicom::load(&dicom, &Default::default()).expect("load DICOM");
        let g = &reference.volume.geometry;
        // SimpleITK's own reading of the DICOM (GDCM): size x, y, z; direction row-major with
        // columns = axes x, y, z; our axes are (z, y, x).
        let sg = &w["geometry"];
        let f = |v: &serde_json::Value| -> Vec<f64> {
            v.as_array()
                .expect("array")
                .iter()
                .map(|x| x.as_f64().expect("number"))
                .collect()
        };
        let (sp, or, di) = (f(&sg["spacing"]), f(&sg["origin"]), f(&sg["direction"]));
        let sitk = Geometry {
            spacing_mm: [sp[2], sp[1], sp[0]],
            origin_mm: [or[0], or[1], or[2]],
            direction: [
                [di[2], di[5], di[8]],
                [di[1], di[4], di[7]],
                [di[0], di[3], di[6]],
            ],
        };
        // One slice: SimpleITK gives it 1 mm depth, ildtrack its SliceThickness; every NRRD
        // written from SimpleITK's image then carries 1 mm. Compare the rest.
        let single = reference.volume.dims_zyx()[0] == 1;
        let mut g = *g;
        let mut sitk = sitk;
        if single {
            sitk.spacing_mm[0] = g.spacing_mm[0];
        }
        assert_same_geometry(
            &format!("{name}: ildtrack vs SimpleITK on DICOM"),
            &g,
            &sitk,
        );
        if single {
            g.spacing_mm[0] = 1.0;
        }

        let files: Vec<PathBuf> = w["files"]
            .as_array()
            .expect("files")
            .iter()
            .filter_map(|f| f.as_str())
            .filter(|f| f.ends_with(".nrrd") || f.ends_with(".nhdr"))
            .map(|f| written.join(f))
            .collect();
        assert_eq!(files.len(), 5, "{files:?}");
        for file in &files {
            let what = format!("{name}: {}", file.display());
            let v = ildtrack_dicom::load(file, &Default::default()).expect(&what);
            assert_eq!(v.volume.dims_zyx(), reference.volume.dims_zyx(), "{what}");
            assert_same_geometry(&what, &v.volume.geometry, &g);
            assert!(
                v.volume.data == reference.volume.data,
                "{what}: voxels differ from the DICOM series"
            );
            assert_eq!(v.meta.source_format.as_deref(), Some("nrrd"), "{what}");
        }

        if !analyse {
            let _ = std::fs::remove_dir_all(&dir);
            continue;
        }
        // Analyse the DICOM (NIfTI maps) and two NRRD inputs (NRRD maps and a segmentation).
        let run = |input: &Path, out: &Path, label_format| {
            let opts = AnalyzeOptions {
                label_format,
                ..Default::default()
            };
            ildtrack_app::analyze_to_dir(&CpuBackend::new(), input, out, &opts, &|_, _| {})
                .expect("analyze")
        };
        let from_dicom = run(&dicom, &dir.join("out-dicom"), LabelFormat::Nifti);
        let lungs_dicom = &from_dicom.result.lungs;
        for (input, out) in [
            ("sitk-gzip.nrrd", "out-sitk"),
            ("pynrrd-ras.nrrd", "out-ras"),
        ] {
            let v = run(&written.join(input), &dir.join(out), LabelFormat::Nrrd);
            let l = &v.result.lungs;
            eprintln!(
                "{name}: lungs {:.3} mL from DICOM, {:.3} mL from {input} (right {:.3} / {:.3}, left {:.3} / {:.3})",
                lungs_dicom.whole.volume_ml,
                l.whole.volume_ml,
                lungs_dicom.right.volume_ml,
                l.right.volume_ml,
                lungs_dicom.left.volume_ml,
                l.left.volume_ml
            );
            // Same voxels and geometry in: the same lungs out. Only the header facts a NRRD
            // lacks (date, kernel name, age) could move anything, and none of them is used
            // by the segmentation; the lung volume must agree to the voxel.
            assert_eq!(
                l.whole.volume_ml, lungs_dicom.whole.volume_ml,
                "{name} {input}"
            );
            assert_eq!(
                l.right.volume_ml, lungs_dicom.right.volume_ml,
                "{name} {input}"
            );
            assert_eq!(l.whole.ggo_pct, lungs_dicom.whole.ggo_pct, "{name} {input}");
            assert!(v.segmentation.as_deref().is_some_and(Path::is_file));
            assert!(v.lungs_map.ends_with("lungs.nrrd") && v.lungs_map.is_file());
        }

        // ildtrack's NRRD, read by SimpleITK and pynrrd, equals its NIfTI.
        let c = python(
            &py,
            &[
                Path::new("compare"),
                &dir.join("out-sitk"),
                &dir.join("out-dicom"),
            ],
        );
        for map in ["lungs", "classes"] {
            for key in ["sitk_voxels_equal", "pynrrd_voxels_equal", "geometry_equal"] {
                assert_eq!(c[map][key], true, "{name} {map}: {key}: {}", c[map]);
            }
            assert!(
                c[map]["nonzero"].as_u64().unwrap_or(0) > 100_000,
                "{name} {map}: no lungs?"
            );
        }
        let s = &c["segmentation"];
        assert_eq!(
            s["layers_equal"], true,
            "{name}: {SEGMENTATION_FILE} layers"
        );
        assert_eq!(s["space"], "left-posterior-superior");
        let names: Vec<&str> = s["segments"]
            .as_array()
            .expect("segments")
            .iter()
            .map(|g| g["Name"].as_str().unwrap_or(""))
            .collect();
        assert_eq!(
            names,
            [
                "right lung",
                "left lung",
                "low attenuation (LAA)",
                "normal lung density",
                "ground-glass opacity",
                "consolidation",
                "vessels and dense structures"
            ]
        );
        assert_eq!(s["segment_voxels"], s["reference_voxels"], "{name}");
        assert!(s["segment_voxels"]["right_lung"].as_u64().unwrap_or(0) > 50_000);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// `track --format nrrd`: every visit folder gets the NRRD maps and the Slicer segmentation,
/// not the NIfTI ones; NRRD and NIfTI runs keep separate cache entries, each reused.
#[test]
fn track_in_nrrd_writes_nrrd_maps_per_visit_and_caches_them_apart_from_nifti() {
    let root = out_dir("track-nrrd");
    let inputs = crate::pipeline::write_small_visits(&root.join("dicom"), 2);
    let out = root.join("out");
    let b = CpuBackend::new();
    let m = ildtrack_app::Manifest {
        visits: inputs,
        ..Default::default()
    };
    let nrrd = AnalyzeOptions {
        label_format: LabelFormat::Nrrd,
        ..Default::default()
    };
    let first = ildtrack_app::track_detailed(&b, &m, &out, &nrrd, &|_, _| {}).expect("track");
    assert_eq!(first.analysed.len(), 2);
    for v in &first.result.visits {
        let dir = out.join(v.dir.as_deref().expect("dir"));
        for f in LabelFormat::Nrrd.files() {
            let p = dir.join(f);
            assert!(p.is_file(), "{} missing", p.display());
        }
        assert!(
            !dir.join("lungs.nii.gz").exists(),
            "NIfTI written with --format nrrd"
        );
        let lungs = ildtrack_dicom::load(&dir.join("lungs.nrrd"), &Default::default())
            .expect("read lungs.nrrd");
        assert!(
            lungs.volume.data.iter().any(|&v| v == 2),
            "left lung in the map"
        );
    }
    let nifti = ildtrack_app::track_detailed(&b, &m, &out, &AnalyzeOptions::default(), &|_, _| {})
        .expect("track nifti");
    assert_eq!(
        nifti.analysed.len(),
        2,
        "a NRRD cache entry is not a NIfTI one"
    );
    let again = ildtrack_app::track_detailed(&b, &m, &out, &nrrd, &|_, _| {}).expect("again");
    assert_eq!(again.from_cache.len(), 2, "NRRD entries reused");
    assert_eq!(
        again.result.visits[0].metrics,
        first.result.visits[0].metrics
    );
}

/// The cache key of a detached NRRD header covers its data file: new voxels, new analysis.
#[test]
fn cache_key_of_an_nhdr_follows_its_data_file() {
    let root = out_dir("nhdr-key");
    let h = root.join("ct.nhdr");
    std::fs::write(
        &h,
        "NRRD0004\ntype: uint8\ndimension: 3\nsizes: 2 2 2\nencoding: raw\ndata file: ct.raw\n",
    )
    .expect("write");
    std::fs::write(root.join("ct.raw"), [0u8; 8]).expect("write");
    let cfg = ildtrack_analysis::AnalysisConfig::default();
    let k1 = ildtrack_app::cache_key(&h, &cfg, None).expect("key");
    std::fs::write(root.join("ct.raw"), [1u8; 8]).expect("write");
    assert_ne!(k1, ildtrack_app::cache_key(&h, &cfg, None).expect("key"));
}
