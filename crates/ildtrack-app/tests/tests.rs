//! Integration tests of `ildtrack-app` (one binary): the jobs end to end on phantom DICOM.

mod common {
    use std::path::PathBuf;

    /// A fresh folder under the cargo target tmp dir for this test's outputs.
    pub fn out_dir(name: &str) -> PathBuf {
        let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join("ildtrack-app")
            .join(name);
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("mkdir");
        d
    }
}
mod dicom_out;
#[path = "../../ildtrack-report/tests/browser/harness.rs"]
mod harness;
mod kernel_change;
mod nrrd;
mod pipeline;
mod registration;
