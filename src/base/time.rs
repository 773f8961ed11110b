//! Durations and points in time as operators write them: `90s`, `2h`,
//! `1h30m`, `7d`, Go's `1.5h` and `500ms`, and RFC 3339 or a relative age
//! (`36h` ago) for `--older-than`.

use chrono::{DateTime, SecondsFormat, Utc};
use std::time::Duration;

/// Seconds since the Unix epoch, now (the store's clock).
pub fn unix_now() -> i64 {
    Utc::now().timestamp()
}

/// `duration` as an operator writes it, largest units first: `4h`,
/// `1h30m`, `7d`, `90s` as `1m30s`; under a second, `500ms`. Parts of a
/// second are dropped from longer ones.
pub fn format_duration(duration: Duration) -> String {
    let mut rest = duration.as_secs();
    if rest == 0 {
        return format!("{}ms", duration.as_millis());
    }
    let mut out = String::new();
    for (unit, seconds) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if rest >= seconds {
            out.push_str(&format!("{}{unit}", rest / seconds));
            rest %= seconds;
        }
    }
    out
}

/// Parses a duration as tabacco and Go write them: a sequence of numbers,
/// each with a unit (`ns`, `us` or `µs`, `ms`, `s`, `m`, `h`, and `d` for
/// days), e.g. `90s`, `1h30m`, `1.5h`, `500ms`, `7d`. It must be positive.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad =
        || format!("invalid duration {text:?} (expected e.g. 90s, 15m, 1.5h, 1d, 1h30m, 500ms)");
    // Longer units first, so that `ms` is not read as `m`.
    const UNITS: [(&str, u128); 9] = [
        ("ns", 1),
        ("us", 1_000),
        ("µs", 1_000),
        ("μs", 1_000),
        ("ms", 1_000_000),
        ("s", 1_000_000_000),
        ("m", 60_000_000_000),
        ("h", 3_600_000_000_000),
        ("d", 86_400_000_000_000),
    ];
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    let mut nanos: u128 = 0;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_end);
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if whole.is_empty() && fraction.is_empty() {
            return Err(bad());
        }
        let Some((unit, scale)) = UNITS.iter().find(|(unit, _)| after.starts_with(unit)) else {
            return Err(bad());
        };
        // Digits beyond nanoseconds cannot change the result.
        let fraction = &fraction[..fraction.len().min(18)];
        let parse = |digits: &str| -> Result<u128, String> {
            if digits.is_empty() {
                Ok(0)
            } else {
                digits.parse().map_err(|_| bad())
            }
        };
        // At most 18 digits times at most 8.64e13: no overflow.
        let part = parse(fraction)? * scale / 10u128.pow(fraction.len() as u32);
        let term = parse(whole)?
            .checked_mul(*scale)
            .and_then(|w| w.checked_add(part))
            .ok_or_else(bad)?;
        nanos = nanos.checked_add(term).ok_or_else(bad)?;
        rest = &after[unit.len()..];
    }
    let secs = u64::try_from(nanos / 1_000_000_000).map_err(|_| bad())?;
    // Less than a second: the remainder fits in u32.
    let subsec = (nanos % 1_000_000_000) as u32;
    let duration = Duration::new(secs, subsec);
    if duration.is_zero() {
        return Err(bad());
    }
    Ok(duration)
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
    fn durations_are_formatted_as_written() {
        for (seconds, millis, text) in [
            (14_400, 0, "4h"),
            (5_400, 0, "1h30m"),
            (90, 0, "1m30s"),
            (7 * 86_400, 0, "7d"),
            (90_061, 0, "1d1h1m1s"),
            (0, 500, "500ms"),
        ] {
            let d = Duration::from_secs(seconds) + Duration::from_millis(millis);
            assert_eq!(format_duration(d), text);
            assert_eq!(parse_duration(text), Ok(d));
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86400)));
        // As Go writes them.
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(
            parse_duration("2h45m30.5s"),
            Ok(Duration::from_millis(9_930_500))
        );
        assert_eq!(parse_duration("1µs"), Ok(Duration::from_micros(1)));
        assert_eq!(parse_duration(".5m"), Ok(Duration::from_secs(30)));
        assert_eq!(
            parse_duration("1.000000000001s"),
            Ok(Duration::from_secs(1))
        );
        for bad in [
            "",
            "5",
            "h",
            "2x",
            "0s",
            "0.0h",
            "-1h",
            ".h",
            "1..5h",
            "1.5",
            "1hh",
            "99999999999999999999d",
            "1e3s",
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
