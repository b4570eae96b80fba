//! `ildtrack analyze`: one visit into a folder, through the cache where one is given.

use crate::cache::{analyse_cached, copy_analysis_files};
use crate::error::AppError;
use crate::files::{create_dir, write_atomic};
use crate::options::{
    AnalyzeOptions, DICOM_SEG_FILE, DICOM_SR_FILE, LabelFormat, Progress, SEGMENTATION_FILE,
};
use crate::visit::{QC_FILES, VisitOutputs, analyse_into, visit_summary};
use ildtrack_compute::Backend;
use ildtrack_report::{ReportOptions, VisitPage, render_visit_html};
use std::path::Path;

/// `ildtrack analyze`: one visit into `out`.
pub fn analyze_to_dir<B: Backend>(
    backend: &B,
    input: &Path,
    out: &Path,
    opts: &AnalyzeOptions,
    progress: Progress<'_>,
) -> Result<VisitOutputs, AppError> {
    let a = match &opts.cache_dir {
        // Through the cache: a visit already analysed with these settings and these input
        // bytes (by an earlier `analyze` or `track` given the same cache) is copied, not redone.
        Some(cache) => {
            let v = crate::manifest::VisitInput {
                path: input.to_path_buf(),
                series_uid: opts.series_uid.clone(),
                ..Default::default()
            };
            let (a, entry, _) = analyse_cached(backend, &v, cache, opts, progress)?;
            create_dir(out)?;
            copy_analysis_files(&entry, out, opts)?;
            a
        }
        None => analyse_into(backend, input, out, opts, opts.series_uid.clone(), progress)?,
    };
    let html = render_visit_html(
        &VisitPage {
            result: &a.result,
            images: &a.images,
            label: None,
            day: None,
            tracked: None,
            previous: None,
            identity: a.identity.as_ref(),
            index_href: None,
            change: None,
        },
        &ReportOptions {
            identify: opts.identify,
        },
    );
    let report_html = out.join("report.html");
    write_atomic(&report_html, html.as_bytes())?;
    progress("done", 1.0);
    Ok(VisitOutputs {
        dir: out.to_path_buf(),
        visit_json: out.join("visit.json"),
        lungs_map: out.join(opts.label_format.files()[0]),
        classes_map: out.join(opts.label_format.files()[1]),
        segmentation: (opts.label_format == LabelFormat::Nrrd).then(|| out.join(SEGMENTATION_FILE)),
        dicom_seg: Some(out.join(DICOM_SEG_FILE)).filter(|p| opts.dicom_out && p.is_file()),
        dicom_sr: Some(out.join(DICOM_SR_FILE)).filter(|p| opts.dicom_out && p.is_file()),
        qc_pngs: QC_FILES
            .iter()
            .map(|(n, _)| out.join(n))
            .filter(|p| p.exists())
            .collect(),
        report_html,
        summary: visit_summary(&a.result),
        result: a.result,
    })
}
