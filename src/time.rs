//! Durations and points in time as operators write them: `90s`, `2h`,
//! `1h30m`, `7d`, and RFC 3339 or a relative age (`36h` ago) for `--older-than`.

use chrono::{DateTime, SecondsFormat, Utc};
use std::time::Duration;

/// Parses `N<unit>` terms (units `s`, `m`, `h`, `d`), e.g. `2h` or `1h30m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration {text:?} (expected e.g. 90s, 15m, 2h, 1d, 1h30m)");
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in text.trim().chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86400,
            _ => return Err(bad()),
        };
        let n: u64 = digits.parse().map_err(|_| bad())?;
        digits.clear();
        total = n
            .checked_mul(unit)
            .and_then(|s| total.checked_add(s))
            .ok_or_else(bad)?;
    }
    if !digits.is_empty() || total == 0 {
        return Err(bad());
    }
    Ok(Duration::from_secs(total))
}

/// Parses RFC 3339, or a relative age meaning that long before `now`.
pub fn parse_time(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    let age = parse_duration(text)
        .map_err(|_| format!("invalid time {text:?} (expected RFC 3339 or an age like 36h, 7d)"))?;
    chrono::Duration::from_std(age)
        .ok()
        .and_then(|age| now.checked_sub_signed(age))
        .ok_or_else(|| format!("time {text:?} is out of range"))
}

/// RFC 3339 in UTC with seconds precision, the form every record uses.
pub fn format(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86400)));
        for bad in [
            "",
            "5",
            "h",
            "2x",
            "0s",
            "-1h",
            "1.5h",
            "99999999999999999999d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn times() {
        let now = DateTime::parse_from_rfc3339("2026-11-23T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            format(parse_time("36h", now).unwrap()),
            "2026-11-22T00:00:00Z"
        );
        assert_eq!(
            format(parse_time("2026-01-02T03:04:05+01:00", now).unwrap()),
            "2026-01-02T02:04:05Z"
        );
        assert!(parse_time("yesterday", now).is_err());
    }
}
