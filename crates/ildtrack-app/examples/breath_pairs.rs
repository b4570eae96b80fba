//! Breath-only and new-disease follow-ups made from every multi-slice real series in
//! ../shared/data, tracked with and without registration (issue 18, item 4):
//! `cargo run --release -p ildtrack-app --example breath_pairs -- --out docs/REGISTRATION-breath.md`
//!
//! For each series and each direction (expiration: diaphragm 22 mm up, chest wall 7 mm in;
//! inspiration: the opposite), a follow-up is made by `ildtrack_register::synthetic::deform`
//! (density scaled by mass conservation, no random bumps), and a second follow-up that also
//! gained two 35 mm ground-glass balls (one per lung). Each pair is tracked (NIfTI inputs) with
//! the registered comparison and without it; the table gives the lung volume change, affected %
//! of both visits both ways, the verdicts, and new and resolved GGO with and without the breath
//! correction.
//!
//! Control: a third follow-up with the same motion and the same resampling but no density change
//! (`Density::Unchanged`), tracked registered. It holds no breath, so its new and resolved GGO
//! without the correction are the floor that the synthesis's resampling blur and the
//! registration's mismatch give on their own. The breath-attributable share of what the
//! correction leaves is (corrected − floor) / (uncorrected − floor): new GGO at expiration (a
//! shallower breath makes the lung denser), resolved GGO at inspiration (a deeper one makes it
//! less dense); "n/a" when uncorrected − floor < 5 mL.

use ildtrack_app::{AnalyzeOptions, Manifest, VisitInput};
use ildtrack_compute::CpuBackend;
use ildtrack_register::Frame;
use ildtrack_register::synthetic::{Deformation, Density, Resample, deform_with, lung_box};
use std::fmt::Write as _;
use std::path::PathBuf;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let out_md = args
        .iter()
        .position(|a| a == "--out")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from);
    // `--resample cubic`: the follow-ups resampled Catmull-Rom in-plane, linear across slices.
    let resample = match args
        .iter()
        .position(|a| a == "--resample")
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
    {
        None | Some("trilinear") => Resample::Trilinear,
        Some("cubic") => Resample::CubicInPlane,
        Some(other) => {
            eprintln!("--resample: trilinear or cubic, not {other}");
            std::process::exit(2);
        }
    };
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
        "| series | breath | lungs | own affected % (verdict) | registered affected % (verdict) | new GGO mL corrected / uncorrected | resolved GGO mL corrected / uncorrected | control: new / resolved GGO mL uncorrected (floor); corrected | control registered affected % (verdict) | breath share of new GGO (corr − floor) / (uncorr − floor) | breath share of resolved GGO (corr − floor) / (uncorr − floor) | with new GGO: own / registered verdict | time s |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
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
            let breath = deform_with(&s.volume, &f, &d, None, Density::Preserved, resample);
            let control = deform_with(&s.volume, &f, &d, None, Density::Unchanged, resample);
            let sick = deform_with(
                &s.volume,
                &f,
                &d,
                Some((d.inverse(centre(1)), 35.0)),
                Density::Preserved,
                resample,
            );
            let sick = deform_with(
                &sick,
                &f,
                &Deformation::none(),
                Some((d.inverse(centre(2)), 35.0)),
                Density::Preserved,
                resample,
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
            let m_control = Manifest {
                visits: vec![
                    m.visits[0].clone(),
                    visit(write("control", &control), "2024-02-10"),
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
            let reg_control = track(&m_control, &opts, "reg-control");
            let (v0, v1) = (&reg.visits[0], &reg.visits[1]);
            let r = v1.registration.as_ref().expect("registration");
            let c1 = &reg_control.visits[1];
            let rc = c1.registration.as_ref().expect("control registration");
            let registered = |r: &ildtrack_model::change::RegistrationSummary, status: &str| {
                if r.quality.accepted {
                    format!(
                        "{:.1} → {:.1} ({status})",
                        r.baseline_metrics.affected_pct, r.followup_metrics.affected_pct
                    )
                } else {
                    format!("rejected: {}", r.quality.reason)
                }
            };
            let pct = |a: f64, b: f64| {
                if b < 0.5 {
                    "n/a".to_string()
                } else {
                    format!("{:.0} %", 100.0 * a / b)
                }
            };
            // Breath-attributable share: what the correction leaves above the control's floor, per
            // what the uncorrected comparison counts above it.
            let share = |corr: f64, uncorr: f64, floor: f64| {
                if !rc.quality.accepted || uncorr - floor < 5.0 {
                    "n/a".to_string()
                } else {
                    format!(
                        "({corr:.0} − {floor:.0}) / ({uncorr:.0} − {floor:.0}) = {:.0} %",
                        100.0 * (corr - floor) / (uncorr - floor)
                    )
                }
            };
            let line = format!(
                "| {name} | {dir} | {:.0} → {:.0} mL ({:+.1} %) | {:.1} → {:.1} ({}) | {} | {:.0} / {:.0} ({}) | {:.0} / {:.0} ({}) | {:.0} / {:.0}; {:.0} / {:.0} | {} | {} | {} | {} / {} | {:.0} |",
                v0.metrics.volume_ml,
                v1.metrics.volume_ml,
                100.0 * (v1.metrics.volume_ml / v0.metrics.volume_ml - 1.0),
                v0.metrics.affected_pct,
                own.visits[1].metrics.affected_pct,
                own.visits[1].status,
                registered(r, &v1.status.to_string()),
                r.whole.new_ggo_ml,
                r.new_ggo_uncorrected_ml,
                pct(r.whole.new_ggo_ml, r.new_ggo_uncorrected_ml),
                r.whole.resolved_ggo_ml,
                r.resolved_ggo_uncorrected_ml,
                pct(r.whole.resolved_ggo_ml, r.resolved_ggo_uncorrected_ml),
                rc.new_ggo_uncorrected_ml,
                rc.resolved_ggo_uncorrected_ml,
                rc.whole.new_ggo_ml,
                rc.whole.resolved_ggo_ml,
                registered(rc, &c1.status.to_string()),
                share(
                    r.whole.new_ggo_ml,
                    r.new_ggo_uncorrected_ml,
                    rc.new_ggo_uncorrected_ml
                ),
                share(
                    r.whole.resolved_ggo_ml,
                    r.resolved_ggo_uncorrected_ml,
                    rc.resolved_ggo_uncorrected_ml
                ),
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
            "# Breath-only follow-ups, registered and not\n\nGenerated by `cargo run --release -p ildtrack-app --example breath_pairs -- --out {}{}` (see the example's header for how each pair is made).\n\n{md}",
            p.display(),
            if resample == Resample::CubicInPlane {
                " --resample cubic"
            } else {
                ""
            }
        );
        ildtrack_fs::write_atomic(&p, text.as_bytes()).expect("write");
    }
}
