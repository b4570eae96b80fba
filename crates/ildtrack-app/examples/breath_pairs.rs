//! Breath-only and new-disease follow-ups made from every multi-slice real series in
//! ../shared/data, tracked with and without registration (issue 18, item 4):
//! `cargo run --release -p ildtrack-app --example breath_pairs -- --out docs/REGISTRATION-breath.md`
//!
//! For each series and each direction (expiration: diaphragm 22 mm up, chest wall 7 mm in;
//! inspiration: the opposite), a follow-up is made by `ildtrack_register::synthetic::deform`
//! (density scaled by mass conservation, no random bumps), and a second follow-up that also
//! gained two 35 mm ground-glass balls (one per lung). Each pair is tracked (NIfTI inputs) with
//! the registered comparison and without it; the table gives the lung volume change, affected %
//! of both visits both ways, the verdicts, and new GGO with and without the breath correction.

use ildtrack_app::{AnalyzeOptions, Manifest, VisitInput};
use ildtrack_compute::CpuBackend;
use ildtrack_register::Frame;
use ildtrack_register::synthetic::{Deformation, deform, lung_box};
use std::fmt::Write as _;
use std::path::PathBuf;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let out_md = args
        .iter()
        .position(|a| a == "--out")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let Some(data) = ildtrack_dicom::shared_data::dir(&root) else {
        eprintln!("../shared/data not found");
        std::process::exit(2);
    };
    let work = std::env::temp_dir().join(format!("ildtrack-breath-pairs-{}", std::process::id()));
    let b = CpuBackend::new();
    let opts = AnalyzeOptions::default();
    let mut plain = opts.clone();
    plain.track.register = false;
    let mut md = String::from(
        "| series | breath | lungs | own affected % (verdict) | registered affected % (verdict) | new GGO mL corrected / uncorrected | with new GGO: own / registered verdict | time s |\n|---|---|---|---|---|---|---|---|\n",
    );
    for (name, path) in ildtrack_dicom::shared_data::ct_series(&data) {
        let Ok(s) = ildtrack_dicom::load(&path, &Default::default()) else {
            continue;
        };
        if s.volume.dims_zyx()[0] < 20 {
            continue;
        }
        let lungs =
            ildtrack_analysis::analyze(&b, &s.volume, &s.meta, &[], &opts.config, &|_, _| {})
                .expect("analyse")
                .lungs;
        let f = Frame::of(s.volume.dims_zyx(), &s.volume.geometry).expect("frame");
        let (lo, hi) = lung_box(&lungs.data, &f);
        let centre = |side: u8| {
            // The centroid of one lung (`affine::moments` of its mask).
            let one = lungs.data.mapv(|v| u8::from(v == side));
            ildtrack_register::affine::moments(&one, &f).map_or([0.0; 3], |(c, _)| c)
        };
        for (dir, sign) in [("expiration", 1.0), ("inspiration", -1.0)] {
            let t0 = std::time::Instant::now();
            let d = Deformation::breathing(lo, hi, -22.0 * sign, 7.0 * sign);
            let breath = deform(&s.volume, &f, &d, None);
            let sick = deform(&s.volume, &f, &d, Some((d.inverse(centre(1)), 35.0)));
            let sick = deform(
                &sick,
                &f,
                &Deformation::none(),
                Some((d.inverse(centre(2)), 35.0)),
            );
            let dir_out = work.join(format!("{name}-{dir}"));
            std::fs::create_dir_all(&dir_out).expect("mkdir");
            let write = |n: &str, v: &ildtrack_volume::Volume<i16>| {
                let p = dir_out.join(format!("{n}.nii.gz"));
                ildtrack_dicom::nifti::write_i16(&p, v).expect("write");
                p
            };
            let visit = |p: PathBuf, date: &str| VisitInput {
                date: Some(date.into()),
                ..VisitInput::from_path(p)
            };
            let m = Manifest {
                day0: None,
                visits: vec![
                    visit(write("baseline", &s.volume), "2024-01-10"),
                    visit(write("breath", &breath), "2024-02-10"),
                ],
                rule: None,
            };
            let m_sick = Manifest {
                visits: vec![
                    m.visits[0].clone(),
                    visit(write("sick", &sick), "2024-02-10"),
                ],
                ..m.clone()
            };
            let track = |m: &Manifest, o: &AnalyzeOptions, sub: &str| {
                ildtrack_app::track(&b, m, &dir_out.join(sub), o, &|_, _| {}).expect("track")
            };
            let reg = track(&m, &opts, "reg");
            let own = track(&m, &plain, "own");
            let reg_sick = track(&m_sick, &opts, "reg-sick");
            let own_sick = track(&m_sick, &plain, "own-sick");
            let (v0, v1) = (&reg.visits[0], &reg.visits[1]);
            let r = v1.registration.as_ref().expect("registration");
            let line = format!(
                "| {name} | {dir} | {:.0} → {:.0} mL ({:+.1} %) | {:.1} → {:.1} ({}) | {} | {:.0} / {:.0} ({:.0} %) | {} / {} | {:.0} |",
                v0.metrics.volume_ml,
                v1.metrics.volume_ml,
                100.0 * (v1.metrics.volume_ml / v0.metrics.volume_ml - 1.0),
                v0.metrics.affected_pct,
                own.visits[1].metrics.affected_pct,
                own.visits[1].status,
                if r.quality.accepted {
                    format!(
                        "{:.1} → {:.1} ({})",
                        r.baseline_metrics.affected_pct, r.followup_metrics.affected_pct, v1.status
                    )
                } else {
                    format!("rejected: {}", r.quality.reason)
                },
                r.whole.new_ggo_ml,
                r.new_ggo_uncorrected_ml,
                100.0 * r.whole.new_ggo_ml / r.new_ggo_uncorrected_ml.max(1e-9),
                own_sick.visits[1].status,
                reg_sick.visits[1].status,
                t0.elapsed().as_secs_f64()
            );
            println!("{line}");
            let _ = writeln!(md, "{line}");
        }
    }
    let _ = std::fs::remove_dir_all(&work);
    if let Some(p) = out_md {
        let text = format!(
            "# Breath-only follow-ups, registered and not\n\nGenerated by `cargo run --release -p ildtrack-app --example breath_pairs -- --out {}` (see the example's header for how each pair is made).\n\n{md}",
            p.display()
        );
        ildtrack_fs::write_atomic(&p, text.as_bytes()).expect("write");
    }
}
