//! Shared fixtures: synthetic visits, a follow-up and QC-like PNGs.

use ildtrack_model::visit::VisitResult;
use ildtrack_report::QcImage;
use ildtrack_track::synthetic::{SyntheticVisit, visit_result};
use ildtrack_track::{TrackConfig, TrackResult, TrackVisit, track};
use std::path::PathBuf;

pub const XSS: &str = r#"<script>document.title='PWNED'</script> "dq" 'sq' &amp"#;

/// A CT-like RGB picture: body, two dark lungs, yellow GGO and red consolidation in the lower
/// lungs, cyan contour. `severity` 0–1 scales the disease blobs.
pub fn qc_png(w: u32, h: u32, severity: f64, coronal: bool) -> Vec<u8> {
    let mut rgb = vec![0u8; (w * h * 3) as usize];
    let (cx, cy) = (w as f64 / 2.0, h as f64 / 2.0);
    for y in 0..h {
        for x in 0..w {
            let (fx, fy) = (
                (x as f64 - cx) / (w as f64 * 0.45),
                (y as f64 - cy) / (h as f64 * if coronal { 0.47 } else { 0.36 }),
            );
            let body = fx * fx + fy * fy < 1.0;
            let v = if body { 150u8 } else { 5 };
            let mut col = [v, v, v];
            for side in [-1.0, 1.0] {
                let lx = (x as f64 - (cx + side * w as f64 * 0.2)) / (w as f64 * 0.15);
                let ly = (y as f64 - cy) / (h as f64 * if coronal { 0.38 } else { 0.26 });
                let r = lx * lx + ly * ly;
                if r < 1.0 {
                    col = [30, 30, 30];
                    let lower = if coronal { ly > 0.2 } else { ly > 0.1 };
                    if lower && r > 1.0 - 0.6 * severity {
                        col = if r > 1.0 - 0.25 * severity {
                            [230, 40, 60]
                        } else {
                            [240, 210, 40]
                        };
                    }
                    if r > 0.93 {
                        col = [0, 229, 255];
                    }
                }
            }
            let i = ((y * w + x) * 3) as usize;
            rgb[i..i + 3].copy_from_slice(&col);
        }
    }
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut wr = enc.write_header().expect("png header");
        wr.write_image_data(&rgb).expect("png data");
    }
    out
}

pub fn qc_images(severity: f64) -> Vec<QcImage> {
    let mut v: Vec<QcImage> = [
        "axial, upper zone",
        "axial, middle zone",
        "axial, lower zone",
    ]
    .iter()
    .map(|c| QcImage {
        caption: (*c).into(),
        png: qc_png(256, 256, severity, false),
    })
    .collect();
    v.push(QcImage {
        caption: "coronal".into(),
        png: qc_png(256, 256, severity, true),
    });
    v
}

/// The demo-like follow-up: (date, affected %, label, FVC).
pub const FOLLOW_UP: [(&str, f64, &str, Option<f64>); 6] = [
    ("2024-01-27", 14.0, "pre-infusion 1", Some(62.0)),
    ("2024-02-23", 24.0, "pre-infusion 2", Some(55.0)),
    ("2024-03-31", 17.0, "+30 days", Some(60.0)),
    ("2024-05-30", 11.0, "+3 months", Some(68.0)),
    ("2024-08-28", 8.0, "+6 months", None),
    ("2025-01-15", 6.5, "+325 days", Some(81.0)),
];

pub fn follow_up_results() -> Vec<VisitResult> {
    FOLLOW_UP
        .iter()
        .enumerate()
        .map(|(i, (d, a, _, _))| {
            let mut s = SyntheticVisit {
                patient_age_years: Some(11.0),
                consolidation_share: 0.35,
                ..SyntheticVisit::new(d, *a)
            };
            if i == 3 {
                s.kernel = Some("L".into());
                s.volume_ml = 2500.0;
            }
            let mut r = visit_result(&s);
            r.series.series_description = Some(XSS.into());
            r.series.manufacturer = Some(r#"ACME "Scan" <b>"#.into());
            r
        })
        .collect()
}

pub fn follow_up() -> (TrackResult, Vec<VisitResult>) {
    let results = follow_up_results();
    let visits = results
        .iter()
        .zip(FOLLOW_UP.iter())
        .map(|(r, (d, _, l, fvc))| {
            let mut v = TrackVisit::new(r.clone());
            v.label = Some((*l).into());
            v.fvc_pct_pred = *fvc;
            v.dlco_pct_pred = fvc.map(|x| x - 12.0);
            v.dir = Some(format!("visits/{d}"));
            v
        })
        .collect();
    (
        track(visits, Some("2024-03-01"), &TrackConfig::default()).expect("track"),
        results,
    )
}

/// A fresh folder under the cargo target tmp dir for this test's outputs.
pub fn out_dir(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("ildtrack-report")
        .join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("mkdir");
    d
}
