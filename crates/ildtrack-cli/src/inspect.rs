//! `ildtrack inspect`: the series table and which series would be analysed, with the reasons.

use anyhow::Result;
use ildtrack_dicom::Scan;

fn opt<T: std::fmt::Display>(v: &Option<T>) -> String {
    v.as_ref()
        .map(|x| x.to_string())
        .unwrap_or_else(|| "-".into())
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// Prints the human table.
pub fn print_table(scan: &Scan) {
    println!("input: {} ({})", scan.input.display(), scan.source_format);
    println!(
        "{:<3} {:<28} {:<24} {:<4} {:<10} {:>6} {:>6} {:<17} {:<9} {:<8} {:<22}",
        "#",
        "series UID",
        "description",
        "mod",
        "kernel",
        "slices",
        "thick",
        "spacing z,y,x mm",
        "size",
        "orient",
        "transfer syntax"
    );
    for (i, s) in scan.series.iter().enumerate() {
        let mark = if scan.chosen == Some(i) { "*" } else { " " };
        let spacing = s
            .spacing_mm
            .map(|v| format!("{:.2},{:.3},{:.3}", v[0], v[1], v[2]))
            .unwrap_or_else(|| "-".into());
        let uid = if s.stack > 0 {
            format!("{}#{}", s.uid, s.stack)
        } else {
            s.uid.clone()
        };
        println!(
            "{mark}{:<2} {:<28} {:<24} {:<4} {:<10} {:>6} {:>6} {:<17} {:<9} {:<8} {:<22}",
            i,
            truncate(&uid, 28),
            truncate(&opt(&s.description), 24),
            opt(&s.modality),
            truncate(&opt(&s.kernel), 10),
            s.n_slices,
            s.thickness_mm
                .map(|t| format!("{t:.2}"))
                .unwrap_or_else(|| "-".into()),
            spacing,
            format!("{}x{}", s.cols, s.rows),
            s.orientation,
            truncate(&s.transfer_syntax_name, 22),
        );
        if let Some(r) = &s.rejected_because {
            println!("     not analysable: {r}");
        }
        for w in &s.warnings {
            println!("     warning {w}");
        }
    }
    match scan.chosen {
        Some(i) => {
            println!();
            println!("would analyse #{i} ({}):", scan.series[i].uid);
            for r in &scan.choice_reasons {
                println!("  - {r}");
            }
        }
        None => {
            println!();
            println!("no series can be analysed");
            for r in &scan.choice_reasons {
                println!("  - {r}");
            }
        }
    }
    if !scan.notes.is_empty() {
        println!();
        println!("notes:");
        for n in &scan.notes {
            println!("  {n}");
        }
    }
}

pub fn run(scan: &Scan, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(scan)?);
    } else {
        print_table(scan);
    }
    Ok(())
}
