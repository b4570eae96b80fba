//! Writes an image, its lung masks and our first-order metrics for `scripts/pyradiomics_check.py`.
//! `cargo run --release -p ildtrack-analysis --example analysis_radiomics_dump -- OUT_DIR [DICOM_INPUT]`
//! Without an input, the small ILD phantom is used.

use ildtrack_analysis::{AnalysisConfig, analyze};
use ildtrack_compute::CpuBackend;
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let out = PathBuf::from(
        args.next()
            .ok_or("usage: analysis_radiomics_dump OUT_DIR [INPUT]")?,
    );
    std::fs::create_dir_all(&out)?;
    let (vol, meta) = match args.next() {
        Some(p) => {
            let s = ildtrack_dicom::load(
                std::path::Path::new(&p),
                &ildtrack_dicom::LoadOptions::default(),
            )?;
            (s.volume, s.meta)
        }
        None => {
            let ph = ildtrack_phantom::try_generate(
                &ildtrack_phantom::PhantomSpec::preset("ild")
                    .ok_or("preset")?
                    .with_grid([100, 160, 160], [3.0, 2.5, 2.5]),
            )?;
            (ph.volume, ph.meta)
        }
    };
    let a = analyze(
        &CpuBackend::new(),
        &vol,
        &meta,
        &[],
        &AnalysisConfig::default(),
        &|_, _| {},
    )?;
    ildtrack_dicom::nifti::write_i16(&out.join("image.nii.gz"), &vol)?;
    ildtrack_dicom::nifti::write_u8(&out.join("lungs.nii.gz"), &a.lungs)?;
    let l = &a.result.lungs;
    let json = serde_json::json!({ "whole": l.whole, "right": l.right, "left": l.left });
    std::fs::write(
        out.join("ildtrack_metrics.json"),
        serde_json::to_string_pretty(&json)?,
    )?;
    println!("wrote {}", out.display());
    Ok(())
}
