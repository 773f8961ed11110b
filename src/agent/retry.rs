//! When a backup that failed on a locked or unreachable repository is tried
//! again: after exponentially growing delays, and only while the retry still
//! starts before the source's next scheduled run (which then takes over).

use std::time::Duration;

/// The longest first delay (the first delay is shorter for sources whose
/// schedule leaves less time, so that they too get several tries).
const FIRST_MAX: Duration = Duration::from_secs(30);
const FIRST_MIN: Duration = Duration::from_secs(1);
/// The longest delay between two tries.
const CAP: Duration = Duration::from_secs(3600);

/// Delays between tries of one scheduled run.
#[derive(Debug)]
pub struct Backoff {
    next: Duration,
}

impl Backoff {
    /// Delays for a run with `window` left until the source's next run.
    pub fn new(window: Duration) -> Backoff {
        Backoff {
            next: (window / 8).clamp(FIRST_MIN, FIRST_MAX),
        }
    }

    /// The delay before the next try, if that try would start within
    /// `remaining` (the time left until the source's next run).
    pub fn next_delay(&mut self, remaining: Duration) -> Option<Duration> {
        let delay = self.next;
        self.next = (self.next * 2).min(CAP);
        (delay < remaining).then_some(delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delays(window: Duration) -> Vec<u64> {
        let mut backoff = Backoff::new(window);
        let mut elapsed = Duration::ZERO;
        let mut out = Vec::new();
        while let Some(d) = backoff.next_delay(window.saturating_sub(elapsed)) {
            elapsed += d;
            out.push(d.as_secs());
        }
        out
    }

    #[test]
    fn daily_source_retries_from_30s_doubling_up_to_an_hour() {
        let day = delays(Duration::from_secs(86400));
        assert_eq!(&day[..8], [30, 60, 120, 240, 480, 960, 1920, 3600]);
        assert!(day[8..].iter().all(|&d| d == 3600));
        assert!(day.iter().sum::<u64>() < 86400);
    }

    #[test]
    fn short_schedules_get_short_delays_and_none_past_the_next_run() {
        assert_eq!(delays(Duration::from_secs(40)), [5, 10, 20]);
        assert_eq!(delays(Duration::from_secs(2)), [1]);
        assert_eq!(delays(Duration::from_millis(900)), Vec::<u64>::new());
    }
}
