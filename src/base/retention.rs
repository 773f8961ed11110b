//! A retention policy (`retention:` in agent.yml or a source) as tabacco
//! means it: which snapshots `restic forget` keeps, and the `forget`
//! options that say so. `config` builds one from what was written; `restic`
//! and `prune` apply it.

use crate::base::time;
use std::fmt;
use std::time::Duration;

/// A validated retention policy: it keeps something.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Retention {
    pub keep_last: Option<u32>,
    pub keep_hourly: Option<u32>,
    pub keep_daily: Option<u32>,
    pub keep_weekly: Option<u32>,
    pub keep_monthly: Option<u32>,
    pub keep_yearly: Option<u32>,
    pub keep_within: Option<Within>,
}

/// `keep_within`: snapshots this much younger than the newest are kept.
#[derive(Clone, Debug, PartialEq)]
pub struct Within {
    pub duration: Duration,
    /// As written, as `check` shows it.
    text: String,
}

impl Within {
    /// Parses a duration as [`time::parse_duration`] reads it.
    pub fn parse(text: &str) -> Result<Within, String> {
        Ok(Within {
            duration: time::parse_duration(text)?,
            text: text.to_string(),
        })
    }

    /// As written.
    pub fn as_written(&self) -> &str {
        &self.text
    }
}

impl Retention {
    /// `self`, unless it keeps nothing.
    pub fn validate(self) -> Result<Retention, String> {
        if self.counts().iter().all(|(_, n)| n.is_none()) && self.keep_within.is_none() {
            return Err("retention keeps nothing: set at least one keep_* policy".into());
        }
        Ok(self)
    }

    /// restic's `forget` options for this policy. restic reads `m` in
    /// `--keep-within` as months, so the duration is given in days and hours.
    pub fn forget_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        for (key, count) in self.counts() {
            if let Some(n) = count {
                args.extend([format!("--{}", key.replace('_', "-")), n.to_string()]);
            }
        }
        if let Some(within) = &self.keep_within {
            let hours = within.duration.as_secs().div_ceil(3600);
            args.extend([
                "--keep-within".to_string(),
                format!("{}d{}h", hours / 24, hours % 24),
            ]);
        }
        args
    }

    /// The count policies by their configuration key.
    fn counts(&self) -> [(&'static str, Option<u32>); 6] {
        [
            ("keep_last", self.keep_last),
            ("keep_hourly", self.keep_hourly),
            ("keep_daily", self.keep_daily),
            ("keep_weekly", self.keep_weekly),
            ("keep_monthly", self.keep_monthly),
            ("keep_yearly", self.keep_yearly),
        ]
    }
}

impl fmt::Display for Retention {
    /// The policy as written in YAML flow style, e.g. `{keep_daily: 7, keep_weekly: 4}`.
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let mut parts: Vec<String> = self
            .counts()
            .iter()
            .filter_map(|(k, v)| v.map(|v| format!("{k}: {v}")))
            .collect();
        if let Some(within) = &self.keep_within {
            parts.push(format!("keep_within: {}", within.text));
        }
        write!(f, "{{{}}}", parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_becomes_forget_options() {
        let policy = Retention {
            keep_last: Some(3),
            keep_weekly: Some(4),
            keep_within: Some(Within::parse("36h30m").unwrap()),
            ..Retention::default()
        };
        assert_eq!(
            policy.forget_args(),
            [
                "--keep-last",
                "3",
                "--keep-weekly",
                "4",
                "--keep-within",
                "1d13h"
            ]
        );
        assert_eq!(
            policy.to_string(),
            "{keep_last: 3, keep_weekly: 4, keep_within: 36h30m}"
        );
    }

    #[test]
    fn a_policy_keeps_something() {
        assert_eq!(
            Retention::default().validate(),
            Err("retention keeps nothing: set at least one keep_* policy".into())
        );
        let within = Retention {
            keep_within: Some(Within::parse("2d").unwrap()),
            ..Retention::default()
        };
        assert_eq!(within.clone().validate(), Ok(within));
        assert!(Within::parse("2 days").is_err());
    }
}
