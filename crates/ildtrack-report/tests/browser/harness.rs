//! Headless-browser checks of a page (Debian `chromium`): the page loads with no failed
//! requests and no console errors, every image decodes, DICOM strings stay text, a screenshot
//! is taken. Fails when chromium is missing under `CI=true`; skips with a message otherwise.
//! Shared by the report's tests and `ildtrack-app`'s (included there by path); the including
//! test crate provides `crate::common::out_dir`.
// Each test crate that includes this file uses a different part of it.
#![allow(dead_code)]

use crate::common::out_dir;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub fn chromium() -> Option<PathBuf> {
    let candidates = [
        "/usr/bin/chromium",
        "/usr/bin/chromium-browser",
        "/usr/bin/google-chrome",
    ];
    if let Some(p) = candidates.iter().map(PathBuf::from).find(|p| p.exists()) {
        return Some(p);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("chromium not found (looked in {candidates:?}); CI must install it (.ci/run)");
    }
    eprintln!("skipped: chromium not found; install Debian `chromium` to run the browser checks");
    None
}

/// Run chromium headless with `args` + `url`; returns (stdout, stderr). Killed after 90 s.
fn run_chromium(bin: &Path, profile: &Path, args: &[String], url: &str) -> (String, String) {
    let mut cmd = Command::new(bin);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
        "--enable-logging=stderr",
        "--v=0",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .args(args)
    .arg(url)
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let out_path = profile.join("stdout.txt");
    let err_path = profile.join("stderr.txt");
    cmd.stdout(std::fs::File::create(&out_path).expect("stdout file"));
    cmd.stderr(std::fs::File::create(&err_path).expect("stderr file"));
    let mut child = cmd.spawn().expect("start chromium");
    let start = Instant::now();
    loop {
        match child.try_wait().expect("wait chromium") {
            Some(_) => break,
            None if start.elapsed() > Duration::from_secs(90) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("chromium did not finish in 90 s");
            }
            None => std::thread::sleep(Duration::from_millis(100)),
        }
    }
    (
        std::fs::read_to_string(&out_path).unwrap_or_default(),
        std::fs::read_to_string(&err_path).unwrap_or_default(),
    )
}

const PROBE: &str = r#"<script>
window.__errs=[];
addEventListener('error',function(e){var t=e.target;__errs.push(t&&t.tagName?('failed '+t.tagName):('js '+e.message));},true);
addEventListener('securitypolicyviolation',function(e){__errs.push('csp '+e.blockedURI+' '+e.violatedDirective);});
(function(){var o=console.error;console.error=function(){__errs.push('console '+Array.prototype.join.call(arguments,' '));o.apply(console,arguments);};})();
addEventListener('load',function(){
 var imgs=Array.prototype.slice.call(document.images);
 var ok=imgs.filter(function(i){return i.complete&&i.naturalWidth>0&&i.naturalHeight>0;}).length;
 var d=document.createElement('div');d.id='probe';
 d.setAttribute('data-images',imgs.length);d.setAttribute('data-decoded',ok);
 d.setAttribute('data-svgs',document.querySelectorAll('svg').length);
 d.setAttribute('data-errors',__errs.join(' | ')||'none');
 d.setAttribute('data-title',document.title);
 document.body.appendChild(d);
});
</script>"#;

fn attr(dom: &str, name: &str) -> Option<String> {
    let i = dom.find("id=\"probe\"")?;
    let tag_start = dom[..i].rfind('<')?;
    let tag_end = i + dom[i..].find('>')?;
    let tag = &dom[tag_start..tag_end];
    let key = format!("{name}=\"");
    let s = tag.find(&key)? + key.len();
    let e = s + tag[s..].find('"')?;
    Some(tag[s..e].to_string())
}

/// Load `html` (plus a probe script; the page's CSP is relaxed only to let the probe run)
/// and check it; then screenshot the unmodified page.
pub fn check_page(bin: &Path, dir: &Path, name: &str, html: &str, expect_images: usize) {
    check_page_inner(bin, dir, name, html, expect_images, true)
}

fn check_page_inner(
    bin: &Path,
    dir: &Path,
    name: &str,
    html: &str,
    expect_images: usize,
    has_xss_fixture: bool,
) {
    let page = dir.join(format!("{name}.html"));
    ildtrack_fs::write_atomic(&page, html.as_bytes()).expect("write page");
    let probed = html
        .replacen(
            "default-src 'none';",
            "default-src 'none'; script-src 'unsafe-inline';",
            1,
        )
        .replacen("<head>", &format!("<head>{PROBE}"), 1);
    assert_ne!(probed, html, "the probe could not be injected");
    let probe_page = dir.join(format!("{name}.probe.html"));
    ildtrack_fs::write_atomic(&probe_page, probed.as_bytes()).expect("write probe page");
    let profile = dir.join(format!("profile-{name}"));
    std::fs::create_dir_all(&profile).expect("profile dir");
    // A loaded 2-core machine can make chromium dump the DOM before the load event: retry.
    let mut attempt = 0;
    let (dom, stderr) = loop {
        attempt += 1;
        let (dom, stderr) = run_chromium(
            bin,
            &profile,
            &["--virtual-time-budget=10000".into(), "--dump-dom".into()],
            &format!("file://{}", probe_page.display()),
        );
        if dom.contains("id=\"probe\"") || attempt == 3 {
            break (dom, stderr);
        }
        eprintln!("{name}: probe did not report (attempt {attempt}), retrying");
    };
    let errors = attr(&dom, "data-errors").unwrap_or_else(|| {
        panic!(
            "probe did not report; dom {} bytes; stderr:\n{stderr}",
            dom.len()
        )
    });
    assert_eq!(errors, "none", "{name}: errors in the page");
    let images: usize = attr(&dom, "data-images")
        .and_then(|s| s.parse().ok())
        .expect("images");
    let decoded: usize = attr(&dom, "data-decoded")
        .and_then(|s| s.parse().ok())
        .expect("decoded");
    assert_eq!(images, expect_images, "{name}: image count");
    assert_eq!(decoded, images, "{name}: images that failed to decode");
    assert!(
        attr(&dom, "data-svgs")
            .and_then(|s| s.parse::<usize>().ok())
            .unwrap_or(0)
            >= 2,
        "{name}: charts missing"
    );
    let title = attr(&dom, "data-title").unwrap_or_default();
    assert!(
        !title.contains("PWNED"),
        "{name}: a DICOM string ran as script"
    );
    // DICOM strings are shown as text.
    if has_xss_fixture {
        assert!(
            dom.contains("&lt;script&gt;document.title='PWNED'&lt;/script&gt;"),
            "{name}: escaped DICOM string not shown as text"
        );
    }
    for line in stderr.lines() {
        let l = line.to_ascii_lowercase();
        assert!(
            !(l.contains("console") && (l.contains("error") || l.contains("uncaught")))
                && !l.contains("failed to load resource")
                && !l.contains("refused to"),
            "{name}: browser log: {line}"
        );
    }
    // Screenshot of the page as written.
    let shot = dir.join(format!("{name}.png"));
    let (_, stderr) = run_chromium(
        bin,
        &profile,
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1280,2000".into(),
            "--hide-scrollbars".into(),
        ],
        &format!("file://{}", page.display()),
    );
    let len = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
    assert!(
        len > 20_000,
        "{name}: screenshot missing or blank ({len} bytes); stderr:\n{stderr}"
    );
    eprintln!("{name}: screenshot {}", shot.display());
}

/// Check an HTML file written by the pipeline (real QC PNGs) in the browser.
pub fn check_file(path: &Path, name: &str, expect_images: usize) {
    let Some(bin) = chromium() else { return };
    let html = std::fs::read_to_string(path).expect("read html");
    let dir = out_dir(&format!("browser-{name}"));
    check_page_inner(&bin, &dir, name, &html, expect_images, false);
}
