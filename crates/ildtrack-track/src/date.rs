//! Calendar dates as `YYYY-MM-DD` without a date-time dependency.

/// Days since 1970-01-01 of a `YYYY-MM-DD` (or DICOM `YYYYMMDD`) date; `None` if it is not a
/// valid proleptic Gregorian date.
pub fn days_from_iso(date: &str) -> Option<i64> {
    let d = date.trim();
    let (y, m, day) = if d.len() == 10 && d.as_bytes()[4] == b'-' && d.as_bytes()[7] == b'-' {
        (d.get(0..4)?, d.get(5..7)?, d.get(8..10)?)
    } else if d.len() == 8 && d.bytes().all(|b| b.is_ascii_digit()) {
        (d.get(0..4)?, d.get(4..6)?, d.get(6..8)?)
    } else {
        return None;
    };
    if ![y, m, day]
        .iter()
        .all(|s| s.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let y: i64 = y.parse().ok()?;
    let m: u32 = m.parse().ok()?;
    let day: u32 = day.parse().ok()?;
    if !(1..=12).contains(&m) || day < 1 || day > days_in_month(y, m) {
        return None;
    }
    Some(days_from_civil(y, m, day))
}

/// Normalise `YYYYMMDD` or `YYYY-MM-DD` to `YYYY-MM-DD`; `None` when invalid.
pub fn normalise_iso(date: &str) -> Option<String> {
    let days = days_from_iso(date)?;
    let (y, m, d) = civil_from_days(days);
    Some(format!("{y:04}-{m:02}-{d:02}"))
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(y) => 29,
        _ => 28,
    }
}

/// Howard Hinnant's `days_from_civil`.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = m as i64;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Inverse of [`days_from_civil`].
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_and_known_dates() {
        assert_eq!(days_from_iso("1970-01-01"), Some(0));
        assert_eq!(days_from_iso("1970-01-02"), Some(1));
        assert_eq!(days_from_iso("2000-03-01"), Some(11_017));
        assert_eq!(days_from_iso("20000301"), Some(11_017));
        // 2024 is a leap year.
        assert_eq!(
            days_from_iso("2024-03-01")
                .zip(days_from_iso("2024-02-28"))
                .map(|(a, b)| a - b),
            Some(2)
        );
    }

    #[test]
    fn invalid_dates_are_refused() {
        for bad in [
            "",
            "2023-02-29",
            "2023-13-01",
            "2023-00-10",
            "2023-1-1",
            "abcd-ef-gh",
            "2023/01/01",
            "20231301",
        ] {
            assert_eq!(days_from_iso(bad), None, "{bad}");
        }
    }

    #[test]
    fn round_trip() {
        for z in [-1i64, 0, 59, 60, 11_016, 19_999, 2_000_000] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(
                days_from_iso(&format!("{y:04}-{m:02}-{d:02}")),
                Some(z),
                "{z}"
            );
        }
        assert_eq!(normalise_iso("20240131").as_deref(), Some("2024-01-31"));
    }
}
