//! The kinds of value that agent.yml, its copies and the sources share:
//! absolute paths, durations, schedules, retention policies and `notify:`
//! lists. Each becomes the type of the module that owns its meaning, and a
//! refusal becomes an [`Error`] located at its key.

use super::error::{Entry, Error};
use super::raw;
use crate::base::retention::{Retention, Within};
use crate::base::schedule::Schedule;
use crate::base::time;
use crate::report::notify;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `value` of `key` as a path, if absolute.
pub fn absolute(entry: &Entry, key: &'static str, value: &str) -> Result<PathBuf, Error> {
    match Path::new(value).is_absolute() {
        true => Ok(PathBuf::from(value)),
        false => Err(entry.invalid(
            key,
            format!("{key} must be an absolute path, not {value:?}"),
        )),
    }
}

/// `text` of `key` as a duration, if any.
pub fn duration(
    entry: &Entry,
    key: &'static str,
    text: Option<&str>,
) -> Result<Option<Duration>, Error> {
    text.map(time::parse_duration)
        .transpose()
        .map_err(entry.refused(key))
}

/// `text` of `key` as a schedule, if any.
pub fn schedule(
    entry: &Entry,
    key: &'static str,
    text: Option<&str>,
) -> Result<Option<Schedule>, Error> {
    text.map(Schedule::parse)
        .transpose()
        .map_err(entry.refused(key))
}

/// The retention policy of `key`, if any, validated.
pub fn retention(
    entry: &Entry,
    key: &'static str,
    raw: Option<raw::Retention>,
) -> Result<Option<Retention>, Error> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    let refused = entry.refused(key);
    let keep_within = raw.keep_within.as_deref().map(Within::parse);
    Retention {
        keep_last: raw.keep_last,
        keep_hourly: raw.keep_hourly,
        keep_daily: raw.keep_daily,
        keep_weekly: raw.keep_weekly,
        keep_monthly: raw.keep_monthly,
        keep_yearly: raw.keep_yearly,
        keep_within: keep_within.transpose().map_err(&refused)?,
    }
    .validate()
    .map(Some)
    .map_err(refused)
}

/// Every entry of the `notify:` list, validated.
pub fn notify(entry: &Entry, list: &[notify::Entry]) -> Result<Vec<notify::Target>, Error> {
    list.iter()
        .map(notify::Target::resolve)
        .collect::<Result<_, _>>()
        .map_err(entry.refused("notify"))
}
