//! A patient's follow-up: every visit analysed or taken from the cache, judged, and written
//! with its pages.

use crate::cache::{analyse_cached, cache_root, copy_analysis_files};
use crate::error::AppError;
use crate::files::{create_dir, write_atomic};
use crate::followup::{
    FollowupChange, Footing, REGISTRATION_DIR, baseline_reference_classes, load_visit,
    register_followup,
};
use crate::manifest::Manifest;
use crate::options::{AnalyzeOptions, Progress};
use crate::visit::Analysed;
use ildtrack_compute::Backend;
use ildtrack_report::{
    ChangeView, IndexPage, PreviousVisit, ReportOptions, VisitPage, render_index_html,
    render_visit_html,
};
use ildtrack_track::{TrackResult, TrackVisit};
use ndarray::Array3;
use std::path::{Path, PathBuf};

/// How a [`track`] run went.
#[derive(Debug, Clone)]
pub struct TrackOutcome {
    pub result: TrackResult,
    /// Inputs analysed in this run (cache misses).
    pub analysed: Vec<PathBuf>,
    /// Inputs whose analysis came from the cache.
    pub from_cache: Vec<PathBuf>,
}

/// `ildtrack track`: analyse (or reuse) every visit, judge them, write every output into `out`.
pub fn track<B: Backend>(
    backend: &B,
    manifest: &Manifest,
    out: &Path,
    opts: &AnalyzeOptions,
    progress: Progress<'_>,
) -> Result<TrackResult, AppError> {
    Ok(track_detailed(backend, manifest, out, opts, progress)?.result)
}

/// [`track`], also saying which visits were analysed and which came from the cache.
pub fn track_detailed<B: Backend>(
    backend: &B,
    manifest: &Manifest,
    out: &Path,
    opts: &AnalyzeOptions,
    progress: Progress<'_>,
) -> Result<TrackOutcome, AppError> {
    if manifest.visits.is_empty() {
        return Err(AppError::Track(ildtrack_track::TrackError::NoVisits));
    }
    create_dir(out)?;
    let cache = cache_root(opts, out);
    let n = manifest.visits.len();
    let mut analysed_all = Vec::with_capacity(n);
    let (mut analysed, mut from_cache) = (Vec::new(), Vec::new());
    for (i, v) in manifest.visits.iter().enumerate() {
        let stage_progress = |s: &str, f: f32| {
            progress(
                &format!("visit {}/{n}: {s}", i + 1),
                0.9 * (i as f32 + f) / n as f32,
            )
        };
        let (a, cache_dir, hit) = analyse_cached(backend, v, &cache, opts, &stage_progress)?;
        if hit {
            from_cache.push(v.path.clone());
        } else {
            analysed.push(v.path.clone());
        }
        analysed_all.push((a, cache_dir));
    }
    progress("compare visits", 0.8);

    // Output folder per visit: visits/<date>, unique.
    let mut visit_inputs = Vec::with_capacity(n);
    for (v, (a, _)) in manifest.visits.iter().zip(&analysed_all) {
        let mut tv = TrackVisit::new(a.result.clone());
        tv.label = v.label.clone();
        tv.study_date = v.date.clone();
        tv.fvc_pct_pred = v.fvc_pct_pred;
        tv.dlco_pct_pred = v.dlco_pct_pred;
        visit_inputs.push(tv);
    }
    let cfg = manifest.rule.clone().unwrap_or_else(|| opts.track.clone());
    // First pass gives the date order; directory names follow it.
    let mut result = ildtrack_track::track(visit_inputs.clone(), manifest.day0.as_deref(), &cfg)?;
    let mut used = std::collections::BTreeSet::new();
    for tvis in &result.visits {
        let base = tvis
            .study_date
            .clone()
            .unwrap_or_else(|| format!("visit-{}", tvis.index + 1));
        let mut name = base.clone();
        let mut k = 2;
        while !used.insert(name.clone()) {
            name = format!("{base}-{k}");
            k += 1;
        }
        visit_inputs[tvis.input_index].dir = Some(format!("visits/{name}"));
    }
    let mut changes: Vec<Option<FollowupChange>> = (0..n).map(|_| None).collect();
    if cfg.register && result.visits.len() > 1 {
        changes = register_followups(
            backend,
            manifest,
            &analysed_all,
            &result,
            &mut visit_inputs,
            out,
            opts,
            progress,
        )?;
    }
    result = ildtrack_track::track(visit_inputs, manifest.day0.as_deref(), &cfg)?;

    let ropts = ReportOptions {
        identify: opts.identify,
    };
    for (k, tvis) in result.visits.iter().enumerate() {
        let (a, cache_dir) = &analysed_all[tvis.input_index];
        let rel = tvis
            .dir
            .clone()
            .unwrap_or_else(|| format!("visits/visit-{}", k + 1));
        let vdir = out.join(&rel);
        create_dir(&vdir)?;
        copy_analysis_files(cache_dir, &vdir, opts)?;
        let previous = k.checked_sub(1).map(|p| {
            let pv = &result.visits[p];
            let (pa, _) = &analysed_all[pv.input_index];
            PreviousVisit {
                result: &pa.result,
                images: &pa.images,
                label: pv.label.as_deref(),
                day: pv.day,
            }
        });
        let html = render_visit_html(
            &VisitPage {
                result: &a.result,
                images: &a.images,
                label: tvis.label.as_deref(),
                day: tvis.day,
                tracked: Some(tvis),
                previous,
                identity: a.identity.as_ref(),
                index_href: Some("../../index.html"),
                change: changes[tvis.input_index].as_ref().and_then(|c| {
                    c.change.as_ref().map(|change| ChangeView {
                        change,
                        baseline_images: &c.baseline_images,
                        followup_images: &c.followup_images,
                    })
                }),
            },
            &ropts,
        );
        write_atomic(&vdir.join("report.html"), html.as_bytes())?;
    }
    progress("write reports", 0.97);
    write_atomic(
        &out.join("track.json"),
        result
            .to_json()
            .map_err(ildtrack_track::TrackError::from)?
            .as_bytes(),
    )?;
    write_atomic(&out.join("track.csv"), result.to_csv().as_bytes())?;
    let latest = result.visits.last().map(|l| &analysed_all[l.input_index]);
    let index = render_index_html(
        &IndexPage {
            track: &result,
            identity: latest.and_then(|(a, _)| a.identity.as_ref()),
            latest_images: latest.map(|(a, _)| a.images.as_slice()).unwrap_or(&[]),
        },
        &ropts,
    );
    write_atomic(&out.join("index.html"), index.as_bytes())?;
    progress("done", 1.0);
    tracing::info!(
        analysed = analysed.len(),
        cached = from_cache.len(),
        "track finished"
    );
    Ok(TrackOutcome {
        result,
        analysed,
        from_cache,
    })
}

/// Register every follow-up (date order) onto the baseline; each gets its
/// `visits/<date>/registration/` outputs and the summary the verdict uses.
#[allow(clippy::too_many_arguments)]
fn register_followups<B: Backend>(
    backend: &B,
    manifest: &Manifest,
    analysed_all: &[(Analysed, PathBuf)],
    order: &TrackResult,
    visit_inputs: &mut [TrackVisit],
    out: &Path,
    opts: &AnalyzeOptions,
    progress: Progress<'_>,
) -> Result<Vec<Option<FollowupChange>>, AppError> {
    let mut changes: Vec<Option<FollowupChange>> = (0..visit_inputs.len()).map(|_| None).collect();
    let name = |t: &ildtrack_track::TrackedVisit| {
        t.study_date
            .clone()
            .or_else(|| t.label.clone())
            .unwrap_or_else(|| format!("visit {}", t.index + 1))
    };
    let b = &order.visits[0];
    let (ba, bdir) = &analysed_all[b.input_index];
    let base = load_visit(&manifest.visits[b.input_index], &ba.result, bdir, opts)?;
    // The baseline's classes on the reference kernel's footing, made once when a follow-up
    // reconstructed with another kernel needs them.
    let mut base_reference: Option<Result<Option<Array3<u8>>, String>> = None;
    let n = order.visits.len() - 1;
    for (k, t) in order.visits.iter().enumerate().skip(1) {
        progress(
            &format!("register visit {}/{} onto the baseline", k + 1, n + 1),
            0.8 + 0.12 * (k - 1) as f32 / n as f32,
        );
        let (fa, fdir) = &analysed_all[t.input_index];
        let fu = load_visit(&manifest.visits[t.input_index], &fa.result, fdir, opts)?;
        let rel = visit_inputs[t.input_index]
            .dir
            .clone()
            .unwrap_or_else(|| format!("visits/visit-{}", k + 1));
        let rel = format!("{rel}/{REGISTRATION_DIR}");
        let footing = if ildtrack_track::kernel_names_differ(&ba.result, &fa.result) {
            let base_ref = match base_reference {
                Some(ref r) => r,
                None => base_reference.insert(baseline_reference_classes(
                    backend,
                    &base,
                    &ba.result,
                    &opts.config,
                )?),
            };
            match (base_ref, fa.result.reference_lungs()) {
                (Err(why), _) => Footing::NotComparable(format!("the baseline's: {why}")),
                (_, Err(why)) => Footing::NotComparable(format!("the follow-up's: {why}")),
                (Ok(c), Ok(_)) => Footing::Reference {
                    baseline: c.as_ref(),
                    followup_harmonized: fa.result.harmonization_applied(),
                },
            }
        } else {
            Footing::Own
        };
        let mut change = register_followup(
            backend,
            &base,
            &opts.config,
            &fa.result.thresholds,
            &fu,
            &footing,
            &name(b),
            &name(t),
            &out.join(&rel),
        )?;
        if change.summary.quality.accepted {
            change.summary.dir = Some(rel);
        } else {
            tracing::warn!(visit = k + 1, reason = %change.summary.quality.reason, "registration rejected");
            // Maps of an earlier run must not stand beside a rejection.
            let stale = out.join(&rel);
            if stale.is_dir() {
                std::fs::remove_dir_all(&stale)
                    .map_err(crate::files::io_err("removing", &stale))?;
            }
        }
        visit_inputs[t.input_index].registered = Some(change.summary.clone());
        visit_inputs[t.input_index].zones_on_baseline = change.zones.clone();
        changes[t.input_index] = Some(change);
    }
    Ok(changes)
}
