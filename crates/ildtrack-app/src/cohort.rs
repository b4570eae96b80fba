//! `ildtrack cohort`: many patients' `track` outputs summarised in `cohort.csv` and
//! `cohort.html` (what a workflow engine runs after every patient's `track`).

use crate::error::AppError;
use crate::files::{create_dir, io_err, write_atomic};
use ildtrack_model::track::TrackResult;
use ildtrack_report::{CohortPage, CohortPatient, render_cohort_html};
use std::path::{Path, PathBuf};

/// One patient of a cohort: its key and the folder `track` wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct CohortEntry {
    pub key: String,
    pub track_dir: PathBuf,
}

/// Read every patient's `track.json`, write `cohort.csv` and `cohort.html` into `out`.
/// `excluded` lists cohort rows that were not analysed, with their reasons.
pub fn cohort(entries: &[CohortEntry], excluded: &[String], out: &Path) -> Result<(), AppError> {
    let mut seen = std::collections::BTreeSet::new();
    for e in entries {
        if !seen.insert(e.key.as_str()) {
            return Err(AppError::Other(format!(
                "patient {:?} is given twice (each patient's track folder once)",
                e.key
            )));
        }
    }
    let mut tracks = Vec::with_capacity(entries.len());
    for e in entries {
        let path = e.track_dir.join("track.json");
        let bytes = std::fs::read(&path).map_err(io_err("reading", &path))?;
        let t: TrackResult = serde_json::from_slice(&bytes).map_err(|err| {
            AppError::Other(format!(
                "{} is not a track.json this ildtrack can read ({err}); run `ildtrack track` again",
                path.display()
            ))
        })?;
        tracks.push(t);
    }
    create_dir(out)?;
    let pairs: Vec<(&str, &TrackResult)> = entries
        .iter()
        .zip(&tracks)
        .map(|(e, t)| (e.key.as_str(), t))
        .collect();
    write_atomic(
        &out.join("cohort.csv"),
        ildtrack_model::cohort_csv(&pairs).as_bytes(),
    )?;
    let patients: Vec<CohortPatient<'_>> = entries
        .iter()
        .zip(&tracks)
        .map(|(e, t)| CohortPatient {
            key: &e.key,
            track: t,
            index_href: relative_href(out, &e.track_dir.join("index.html")),
        })
        .collect();
    let html = render_cohort_html(&CohortPage {
        patients: &patients,
        excluded,
    });
    write_atomic(&out.join("cohort.html"), html.as_bytes())
}

/// `to` as a link from a page in `from_dir` (both made absolute; `/` separators, each part
/// percent-encoded where it must be).
fn relative_href(from_dir: &Path, to: &Path) -> String {
    let abs = |p: &Path| {
        std::path::absolute(p)
            .unwrap_or_else(|_| p.to_path_buf())
            .components()
            .filter(|c| !matches!(c, std::path::Component::CurDir))
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
    };
    let (a, b) = (abs(from_dir), abs(to));
    let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut parts: Vec<String> = std::iter::repeat_n("..".to_string(), a.len() - common).collect();
    parts.extend(b[common..].iter().map(|s| encode_part(s)));
    parts.join("/")
}

fn encode_part(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::relative_href;
    use std::path::Path;

    #[test]
    fn links_are_relative_to_the_cohort_page() {
        assert_eq!(
            relative_href(Path::new("/r/cohort"), Path::new("/r/P1/track/index.html")),
            "../P1/track/index.html"
        );
        assert_eq!(
            relative_href(Path::new("/r"), Path::new("/r/p 1/index.html")),
            "p%201/index.html"
        );
    }
}
