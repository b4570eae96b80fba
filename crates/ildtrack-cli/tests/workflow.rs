//! `workflow/Snakefile` run by Snakemake (the venv `scripts/setup.sh` makes, `.venv/`) on three
//! synthetic patients with three visits each, `--cores 2`: every output is made; a second run
//! does nothing; removing one visit's outputs redoes that visit, its patient's track and the
//! cohort summary, nothing else; malformed rows fail with their reason and every other row
//! completes. Fails when Snakemake is missing under `CI=true`; skips with a message otherwise.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::SystemTime;

const BIN: &str = env!("CARGO_BIN_EXE_ildtrack");

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn snakemake() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("ILDTRACK_SNAKEMAKE").map(PathBuf::from),
        Some(repo_root().join(".venv/bin/snakemake")),
    ];
    let found = candidates.into_iter().flatten().find(|p| p.is_file());
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but Snakemake is missing: `bash scripts/setup.sh` makes .venv with it"
        );
        eprintln!("skipping: no Snakemake (run `bash scripts/setup.sh` to make .venv)");
    }
    found
}

fn phantom(out: &Path, size: &str, preset: &str) {
    let st = Command::new(BIN)
        .args(["phantom", "--size", size, "--preset", preset, "--out"])
        .arg(out)
        .output()
        .expect("run ildtrack phantom");
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
}

fn run_workflow(dir: &Path, snakemake: &Path, extra: &[&str]) -> Output {
    Command::new(snakemake)
        .current_dir(dir)
        .args(["-s"])
        .arg(repo_root().join("workflow/Snakefile"))
        .args([
            "--cores",
            "2",
            "--keep-going",
            "--config",
            "cohort=cohort.csv",
        ])
        .arg(format!("ildtrack={BIN}"))
        .args(extra)
        .output()
        .expect("run snakemake")
}

fn text(o: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Jobs per rule that a run executed (its "Job stats" table).
fn job_counts(o: &Output) -> std::collections::BTreeMap<String, usize> {
    let t = text(o);
    let mut counts = std::collections::BTreeMap::new();
    let mut in_table = false;
    for line in t.lines() {
        if line.starts_with("Job stats:") {
            in_table = true;
            continue;
        }
        if in_table {
            let parts: Vec<&str> = line.split_whitespace().collect();
            match parts.as_slice() {
                ["job", "count"] => {}
                [rule, n] if rule.chars().all(|c| c == '-') => {
                    let _ = n;
                }
                ["total", _] => in_table = false,
                [rule, n] => {
                    if let Ok(n) = n.parse() {
                        counts.insert(rule.to_string(), n);
                    }
                }
                _ => {}
            }
        }
    }
    counts
}

fn mtime(p: &Path) -> SystemTime {
    std::fs::metadata(p)
        .and_then(|m| m.modified())
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

const VISIT_FILES: [&str; 4] = [
    "visit.json",
    "lungs.nii.gz",
    "classes.nii.gz",
    "report.html",
];

#[test]
fn snakemake_workflow_runs_a_cohort_reruns_only_what_changed_and_isolates_bad_rows() {
    let Some(snakemake) = snakemake() else { return };
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();

    // Three patients, three visits each: healthy, then ILD, then large consolidation; each
    // patient's scans a different number of slices so no two inputs are the same bytes.
    let presets = ["healthy", "ild", "large-consolidation"];
    let dates = [
        ["2024-01-10", "2024-03-10", "2024-06-10"],
        ["2023-11-02", "2024-02-14", "2024-05-20"],
        ["2024-02-01", "2024-02-29", "2024-08-01"],
    ];
    let mut rows = vec!["patient,input,date,fvc_pct_pred,dlco_pct_pred,day0".to_string()];
    for (i, p) in ["P1", "P2", "P3"].iter().enumerate() {
        for (j, preset) in presets.iter().enumerate() {
            let name = format!("scans/{p}-{preset}");
            phantom(&dir.join(&name), &format!("64x64x{}", 30 + 2 * i), preset);
            let fvc = if j == 0 { "82" } else { "" };
            let day0 = if i == 0 { "2024-02-01" } else { "" };
            rows.push(format!("{p},{name},{},{fvc},,{day0}", dates[i][j]));
        }
    }
    std::fs::write(dir.join("cohort.csv"), rows.join("\n") + "\n").expect("write cohort");

    // 0. The Slurm profile loads (executor plugin installed, profile valid) and a GPU backend
    // asks the scheduler for one GPU per analysis; a dry run submits nothing.
    let profile = repo_root().join("workflow/profiles/slurm");
    let dry = run_workflow(
        dir,
        &snakemake,
        &[
            "--profile",
            &profile.to_string_lossy(),
            "-n",
            "--config",
            "backend=gpu",
        ],
    );
    let t = text(&dry);
    assert!(dry.status.success(), "slurm dry run:\n{t}");
    assert!(t.contains("--backend gpu"), "{t}");
    assert_eq!(
        t.matches("gpu=1").count(),
        9,
        "one GPU per analysis, none for the rest:\n{t}"
    );
    assert!(!dir.join("results").exists(), "a dry run wrote results");

    // 1. The whole cohort.
    let first = run_workflow(dir, &snakemake, &[]);
    assert!(
        first.status.success(),
        "first run failed:\n{}",
        text(&first)
    );
    let res = dir.join("results");
    for (i, p) in ["P1", "P2", "P3"].iter().enumerate() {
        for d in &dates[i] {
            for f in VISIT_FILES {
                let path = res.join(p).join("visits").join(d).join(f);
                assert!(path.is_file(), "missing {}", path.display());
            }
        }
        for f in ["track.json", "track.csv", "index.html"] {
            assert!(res.join(p).join("track").join(f).is_file(), "{p}: no {f}");
        }
        let track = std::fs::read_to_string(res.join(p).join("track/track.csv")).expect("track");
        assert_eq!(track.lines().count(), 4, "{p}: header + 3 visits:\n{track}");
    }
    let cohort = std::fs::read_to_string(res.join("cohort/cohort.csv")).expect("cohort.csv");
    let lines: Vec<&str> = cohort.lines().collect();
    assert_eq!(lines.len(), 10, "header + 9 patient-visits:\n{cohort}");
    assert!(lines[0].starts_with("patient,index,label,study_date,day,status"));
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("P2,")).count(),
        3,
        "{cohort}"
    );
    let html = std::fs::read_to_string(res.join("cohort/cohort.html")).expect("cohort.html");
    for p in ["P1", "P2", "P3"] {
        assert!(
            html.contains(&format!("href=\"../{p}/track/index.html\"")),
            "cohort.html links {p}"
        );
    }
    assert!(html.contains("Cohort · 3 patients, 9 visits"));
    assert!(!html.contains("Not in this summary"));

    // 2. A second run does nothing.
    let second = run_workflow(dir, &snakemake, &[]);
    assert!(second.status.success(), "{}", text(&second));
    assert!(
        text(&second).contains("Nothing to be done"),
        "second run did something:\n{}",
        text(&second)
    );

    // 3. One visit's outputs removed: that visit, its patient's track and the cohort redone.
    let gone = res.join("P2/visits").join(dates[1][1]);
    std::fs::remove_dir_all(&gone).expect("remove a visit");
    let untouched = [
        res.join("P1/track/track.json"),
        res.join("P3/track/track.json"),
        res.join("P2/visits").join(dates[1][0]).join("visit.json"),
        res.join("P1/visits").join(dates[0][1]).join("visit.json"),
    ];
    let before: Vec<SystemTime> = untouched.iter().map(|p| mtime(p)).collect();
    let p2_track = mtime(&res.join("P2/track/track.json"));
    let third = run_workflow(dir, &snakemake, &[]);
    assert!(third.status.success(), "{}", text(&third));
    let jobs = job_counts(&third);
    let expected: std::collections::BTreeMap<String, usize> =
        [("analyze", 1), ("track", 1), ("cohort", 1), ("all", 1)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
    assert_eq!(jobs, expected, "jobs of the rerun:\n{}", text(&third));
    assert!(gone.join("visit.json").is_file());
    for (p, t) in untouched.iter().zip(&before) {
        assert_eq!(mtime(p), *t, "{} was rewritten", p.display());
    }
    assert!(mtime(&res.join("P2/track/track.json")) > p2_track);

    // 4. Malformed rows: a missing folder and an impossible date. Each fails with its reason;
    // the rest is complete, and the cohort page names the rows it lacks.
    let mut bad = rows.clone();
    bad.push("P3,scans/P3-nowhere,2024-09-01,,,".into());
    bad.push("P1,scans/P1-ild,2024-02-30,,,2024-02-01".into());
    std::fs::write(dir.join("cohort.csv"), bad.join("\n") + "\n").expect("write cohort");
    let fourth = run_workflow(dir, &snakemake, &[]);
    let t = text(&fourth);
    assert!(
        !fourth.status.success(),
        "malformed rows must fail the run:\n{t}"
    );
    assert!(
        t.contains("cohort row 11 (patient P3): input 'scans/P3-nowhere' does not exist"),
        "{t}"
    );
    assert!(
        t.contains("cohort row 12 (patient P1): date '2024-02-30' is not a date (YYYY-MM-DD)"),
        "{t}"
    );
    let jobs = job_counts(&fourth);
    assert_eq!(
        jobs.get("analyze"),
        None,
        "no visit is analysed again: {jobs:?}"
    );
    assert_eq!(jobs.get("track"), None, "no track changes: {jobs:?}");
    assert_eq!(jobs.get("reject_row"), Some(&2), "{jobs:?}");
    let html = std::fs::read_to_string(res.join("cohort/cohort.html")).expect("cohort.html");
    assert!(
        html.contains("Not in this summary"),
        "cohort.html lists the bad rows"
    );
    assert!(html.contains("cohort row 11 (patient P3)"));
    let cohort = std::fs::read_to_string(res.join("cohort/cohort.csv")).expect("cohort.csv");
    assert_eq!(cohort.lines().count(), 10, "the 9 good visits:\n{cohort}");
}
