//! When a source runs: crontab(5) expressions and @-macros with crontab's
//! meaning, and tabacco's `@every D` and `@random_every D`.
//!
//! The `cron` crate wants a seconds field, numbers weekdays Quartz-style
//! (1 = Sunday) and ANDs day-of-month with day-of-week where crontab ORs
//! them. Expressions are therefore translated: weekdays become names, and a
//! restriction on both day fields becomes two schedules whose earliest next
//! time wins.

use chrono::{DateTime, TimeZone};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A parsed `schedule:` value, displayed as written.
#[derive(Clone, Debug)]
pub struct Schedule {
    text: String,
    kind: Kind,
}

#[derive(Clone, Debug)]
enum Kind {
    /// crontab(5); `alternative` is set when both day fields are restricted.
    Cron {
        primary: Box<cron::Schedule>,
        alternative: Option<Box<cron::Schedule>>,
    },
    /// Every interval, aligned to the Unix epoch.
    Every(Duration),
    /// Once per interval, at an offset inside it that is stable per host.
    RandomEvery(Duration),
}

const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

impl Schedule {
    /// Parses crontab syntax, `@hourly`-style macros, `@every D`, `@random_every D`.
    pub fn parse(text: &str) -> Result<Schedule, String> {
        let text = text.trim();
        let kind = Schedule::parse_kind(text)?;
        Ok(Schedule {
            text: text.to_string(),
            kind,
        })
    }

    fn parse_kind(text: &str) -> Result<Kind, String> {
        let crontab = match text {
            "@hourly" => "0 * * * *",
            "@daily" | "@midnight" => "0 0 * * *",
            "@weekly" => "0 0 * * 0",
            "@monthly" => "0 0 1 * *",
            "@yearly" | "@annually" => "0 0 1 1 *",
            _ => text,
        };
        if let Some(interval) = text.strip_prefix("@every ") {
            return Ok(Kind::Every(parse_interval(interval)?));
        }
        if let Some(interval) = text.strip_prefix("@random_every ") {
            return Ok(Kind::RandomEvery(parse_interval(interval)?));
        }
        parse_crontab(crontab).map_err(|e| format!("invalid schedule {text:?}: {e}"))
    }

    /// The first time strictly after `t`. `host_offset` places
    /// `@random_every` runs inside their interval (any stable per-host number).
    pub fn next_after<Tz: TimeZone>(
        &self,
        t: &DateTime<Tz>,
        host_offset: u64,
    ) -> Option<DateTime<Tz>> {
        let aligned = |interval: &Duration, offset: u64| {
            let period = i64::try_from(interval.as_secs()).ok()?;
            let offset = i64::try_from(offset % interval.as_secs()).ok()?;
            let next = ((t.timestamp() - offset).div_euclid(period) + 1) * period + offset;
            t.timezone().timestamp_opt(next, 0).single()
        };
        match &self.kind {
            Kind::Every(interval) => aligned(interval, 0),
            Kind::RandomEvery(interval) => aligned(interval, host_offset),
            Kind::Cron {
                primary,
                alternative,
            } => {
                let first = primary.after(t).next();
                let second = alternative.as_ref().and_then(|s| s.after(t).next());
                match (first, second) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            }
        }
    }

    /// The latest the first run strictly after `t` may be on any host:
    /// `@random_every` runs at an offset only their host knows, so a whole
    /// interval after `t`.
    pub fn latest_after<Tz: TimeZone>(&self, t: &DateTime<Tz>) -> Option<DateTime<Tz>> {
        match &self.kind {
            Kind::RandomEvery(interval) => t
                .clone()
                .checked_add_signed(chrono::Duration::from_std(*interval).ok()?),
            _ => self.next_after(t, 0),
        }
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Runs are whole seconds apart: an interval is at least `1s` and has no
/// fraction of a second.
fn parse_interval(text: &str) -> Result<Duration, String> {
    let interval = crate::base::time::parse_duration(text)?;
    if interval.subsec_nanos() != 0 {
        return Err(format!(
            "invalid interval {text:?}: not a whole number of seconds"
        ));
    }
    Ok(interval)
}

/// The five fields of a crontab(5) expression, as errors name them.
const FIELDS: &str = "minute hour day-of-month month day-of-week";

/// Each field's name, bounds and the names it takes for numbers.
const BOUNDS: [(&str, u32, u32, &[&str]); 5] = [
    ("minute", 0, 59, &[]),
    ("hour", 0, 23, &[]),
    ("day-of-month", 1, 31, &[]),
    ("month", 1, 12, &MONTHS),
    ("day-of-week", 0, 7, &WEEKDAYS),
];

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];

fn parse_crontab(text: &str) -> Result<Kind, String> {
    let fields: Vec<&str> = text.split_whitespace().collect();
    let [minute, hour, dom, month, dow] = fields[..] else {
        return Err(format!("expected 5 fields ({FIELDS}) or a macro"));
    };
    for (field, bounds) in fields.iter().zip(BOUNDS) {
        check_field(field, bounds).map_err(|e| format!("{e} ({FIELDS})"))?;
    }
    let weekdays = translate_weekdays(dow)?;
    // Every field was checked above: the cron crate's own words (about
    // its six-field form) are only for what it still refuses.
    let build = |dom: &str, dow: &str| {
        cron::Schedule::from_str(&format!("0 {minute} {hour} {dom} {month} {dow}"))
            .map(Box::new)
            .map_err(|_| format!("not a crontab(5) expression ({FIELDS})"))
    };
    // crontab(5): when both day fields are restricted, either may match.
    let (primary, alternative) = if !dom.starts_with('*') && !dow.starts_with('*') {
        (build(dom, "*")?, Some(build("*", &weekdays)?))
    } else {
        (build(dom, &weekdays)?, None)
    };
    Ok(Kind::Cron {
        primary,
        alternative,
    })
}

/// Checks one crontab field (`*`, numbers, `names`, ranges, lists and
/// `/steps`) against its bounds, in crontab's terms.
fn check_field(
    field: &str,
    (what, min, max, names): (&str, u32, u32, &[&str]),
) -> Result<(), String> {
    let value = |s: &str| -> Result<u32, String> {
        if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
            // Weekday names count from 0 (Sunday), month names from 1.
            return Ok(i as u32 + min);
        }
        match s.parse::<u32>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            Ok(n) => Err(format!("{what} {n} is out of range {min}-{max}")),
            Err(_) => Err(format!("{what} field {field:?}: {s:?} is not a number")),
        }
    };
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => (range, Some(step)),
            None => (item, None),
        };
        if let Some(step) = step {
            if !step.parse::<u32>().is_ok_and(|s| s > 0) {
                return Err(format!(
                    "{what} field {field:?}: step {step:?} is not a positive number"
                ));
            }
        }
        match range {
            "*" => {}
            _ => match range.split_once('-') {
                Some((a, b)) if value(a)? > value(b)? => {
                    return Err(format!(
                        "{what} field {field:?}: range {range:?} runs backwards"
                    ))
                }
                Some(_) => {}
                None => {
                    value(range)?;
                }
            },
        }
    }
    Ok(())
}

/// Rewrites a crontab weekday field (0 or 7 = Sunday, names, ranges, steps)
/// as a list of names, which mean the same in every cron dialect.
fn translate_weekdays(field: &str) -> Result<String, String> {
    let day = |s: &str| -> Result<usize, String> {
        if let Some(i) = WEEKDAYS.iter().position(|d| d.eq_ignore_ascii_case(s)) {
            return Ok(i);
        }
        match s.parse::<usize>() {
            Ok(n) if n <= 7 => Ok(n % 7),
            _ => Err(format!("invalid day of week {s:?}")),
        }
    };
    let mut days = [false; 7];
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => match step.parse::<usize>() {
                Ok(step) if step > 0 => (range, step),
                _ => return Err(format!("invalid step in {item:?}")),
            },
            None => (item, 1),
        };
        let (first, last) = match range {
            "*" => (0, 6),
            _ => match range.split_once('-') {
                // `5-7` ends on Sunday: keep 7 as the upper bound, then wrap.
                Some((a, b)) => (day(a)?, if b == "7" { 7 } else { day(b)? }),
                None if step > 1 => (day(range)?, 7),
                None => (day(range)?, day(range)?),
            },
        };
        if first > last {
            return Err(format!("invalid day-of-week range {range:?}"));
        }
        for d in (first..=last).step_by(step) {
            days[d % 7] = true;
        }
    }
    if days.iter().all(|&d| d) {
        return Ok("*".into());
    }
    let names: Vec<&str> = (0..7).filter(|&d| days[d]).map(|d| WEEKDAYS[d]).collect();
    Ok(names.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn next(schedule: &str, after: &str) -> String {
        let t = DateTime::parse_from_rfc3339(after)
            .unwrap()
            .with_timezone(&Utc);
        let s = Schedule::parse(schedule).unwrap();
        crate::base::time::format(s.next_after(&t, 0).unwrap())
    }

    #[test]
    fn crontab_weekday_one_is_monday() {
        // 2026-11-22 is a Sunday.
        assert_eq!(
            next("0 3 * * 1", "2026-11-22T12:00:00Z"),
            "2026-11-23T03:00:00Z"
        );
        assert_eq!(
            next("0 3 * * 0", "2026-11-23T12:00:00Z"),
            "2026-11-29T03:00:00Z"
        );
        assert_eq!(
            next("0 3 * * 7", "2026-11-23T12:00:00Z"),
            "2026-11-29T03:00:00Z"
        );
        assert_eq!(
            next("0 3 * * sat", "2026-11-23T12:00:00Z"),
            "2026-11-28T03:00:00Z"
        );
        assert_eq!(
            next("0 3 * * 5-7", "2026-11-23T12:00:00Z"),
            "2026-11-27T03:00:00Z"
        );
        assert_eq!(
            next("0 3 * * 1-5/2", "2026-11-23T12:00:00Z"),
            "2026-11-25T03:00:00Z"
        );
    }

    #[test]
    fn both_day_fields_restricted_means_either() {
        // The 1st of December 2026 is a Tuesday; Friday the 27th comes first.
        assert_eq!(
            next("0 0 1 * 5", "2026-11-23T12:00:00Z"),
            "2026-11-27T00:00:00Z"
        );
        assert_eq!(
            next("0 0 1 * 5", "2026-11-28T12:00:00Z"),
            "2026-12-01T00:00:00Z"
        );
    }

    #[test]
    fn macros_and_intervals() {
        assert_eq!(
            next("@daily", "2026-11-23T12:00:00Z"),
            "2026-11-24T00:00:00Z"
        );
        assert_eq!(
            next("@weekly", "2026-11-23T12:00:00Z"),
            "2026-11-29T00:00:00Z"
        );
        assert_eq!(
            next("@every 6h", "2026-11-23T13:00:00Z"),
            "2026-11-23T18:00:00Z"
        );
        assert_eq!(
            next("@every 1.5h", "2026-11-23T13:00:00Z"),
            "2026-11-23T13:30:00Z"
        );
        let t = DateTime::parse_from_rfc3339("2026-11-23T13:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let s = Schedule::parse("@random_every 1d").unwrap();
        let a = s.next_after(&t, 12345).unwrap();
        assert_eq!(s.next_after(&t, 12345), Some(a), "stable for one host");
        assert!(a > t && (a - t).num_seconds() <= 86400);
        assert_eq!(
            s.next_after(&a, 12345).map(|b| (b - a).num_seconds()),
            Some(86400)
        );
    }

    /// Issue 28, item 9: "0 25 * * *" was refused in the cron crate's
    /// six-field form ("0 0 25 * * *"), over three lines, with its own
    /// wrong bound ("Hours must be less than 23").
    #[test]
    fn a_bad_field_is_named_with_its_bounds() {
        let refused = |text: &str| Schedule::parse(text).unwrap_err();
        let fields = "(minute hour day-of-month month day-of-week)";
        assert_eq!(
            refused("0 25 * * *"),
            format!("invalid schedule \"0 25 * * *\": hour 25 is out of range 0-23 {fields}")
        );
        assert_eq!(
            refused("0 3 32 * *"),
            format!(
                "invalid schedule \"0 3 32 * *\": day-of-month 32 is out of range 1-31 {fields}"
            )
        );
        assert_eq!(
            refused("x 3 * * *"),
            format!("invalid schedule \"x 3 * * *\": minute field \"x\": \"x\" is not a number {fields}")
        );
        assert_eq!(
            refused("0 3 * 13 *"),
            format!("invalid schedule \"0 3 * 13 *\": month 13 is out of range 1-12 {fields}")
        );
        assert_eq!(
            refused("0 3 * * 8"),
            format!("invalid schedule \"0 3 * * 8\": day-of-week 8 is out of range 0-7 {fields}")
        );
        assert_eq!(
            refused("0 5-3 * * *"),
            format!("invalid schedule \"0 5-3 * * *\": hour field \"5-3\": range \"5-3\" runs backwards {fields}")
        );
        for good in [
            "59 23 31 12 7",
            "0 0 1 jan sun",
            "*/15 1-5/2 1,15 FEB-MAR mon-fri",
        ] {
            assert!(Schedule::parse(good).is_ok(), "{good}");
        }
        assert!(!refused("0 25 * * *").contains('\n'));
    }

    #[test]
    fn bad_schedules_are_rejected() {
        for bad in [
            "",
            "* * * *",
            "61 * * * *",
            "0 3 * * 8",
            "0 3 * * mon-foo",
            "@every",
            "@every 0s",
            "@every 500ms",
            "@random_every 1.5s",
            "@reboot",
            "0 3 * * */0",
        ] {
            assert!(Schedule::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
