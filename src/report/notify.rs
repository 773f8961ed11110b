//! Telling people: notification targets (`notify:` in agent.yml and in a
//! source), the notices a backup produces, and the thread that sends them.
//! A notice never delays or fails a backup: it is queued (bounded), sent
//! from the [`Notifier`]'s own thread with a bounded timeout and a few
//! retries, and what cannot be sent is logged and counted. Whether a
//! success is a recovery is remembered in `work_dir` (see [`Memory`]).
//!
//! The shape of a `notify:` entry ([`Entry`]) is this module's, as agent.yml
//! and metadb.yml share it; `config` and `metadb::config` resolve entries
//! into [`Target`]s. Callers hand in plain values and an [`Outcome`].

use crate::base::count::count;
use crate::base::time;
use crate::base::token::Token;
use crate::report::outcome::Outcome;
use chrono::{DateTime, Utc};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// How long one request may take unless `timeout:` says otherwise.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Notices waiting to be sent; more are dropped (and counted).
const QUEUE: usize = 64;
/// Sends of one notice, the first included.
const TRIES: u32 = 3;
/// How long a dropped notifier waits for its queue.
const DROP_BOUND: Duration = Duration::from_secs(5);
/// Failures listed in a notice's message; the rest are in the logs.
const MAX_FAILURE_LINES: usize = 10;
/// The wait before the first retry; it doubles after each.
const BACKOFF: Duration = Duration::from_millis(500);

/// What a notification is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    Start,
    Success,
    Failure,
    /// The first success after a failure.
    Recovery,
    /// From the metadb: a source passed its due time and grace.
    Overdue,
    /// From the metadb: a host sent nothing for `silent_after`.
    Silent,
    /// From the metadb: an overdue source or a silent host is back.
    Recovered,
}

/// The events an agent's targets may be told of.
const AGENT_EVENTS: [Event; 4] = [
    Event::Start,
    Event::Success,
    Event::Failure,
    Event::Recovery,
];
/// The events the metadb's targets may be told of, and their default.
pub const CENTRAL_EVENTS: [Event; 3] = [Event::Overdue, Event::Silent, Event::Recovered];

impl Event {
    /// The name used in `on:` and in a webhook's `state`.
    pub fn name(self) -> &'static str {
        match self {
            Event::Start => "start",
            Event::Success => "success",
            Event::Failure => "failure",
            Event::Recovery => "recovery",
            Event::Overdue => "overdue",
            Event::Silent => "silent",
            Event::Recovered => "recovered",
        }
    }

    /// The event of `allowed` called `text`.
    fn parse(text: &str, allowed: &[Event]) -> Result<Event, String> {
        allowed
            .iter()
            .copied()
            .find(|e| e.name() == text)
            .ok_or_else(|| {
                let names: Vec<&str> = allowed.iter().map(|e| e.name()).collect();
                format!("unknown notify event {text:?} ({})", names.join(", "))
            })
    }
}

/// How a target is spoken to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Healthchecks,
    Webhook,
    Ntfy,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Healthchecks => "healthchecks",
            Kind::Webhook => "webhook",
            Kind::Ntfy => "ntfy",
        }
    }
}

/// One entry of a `notify:` list as written, in agent.yml, a source or
/// metadb.yml.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub kind: String,
    pub url: String,
    pub token_file: Option<String>,
    pub timeout: Option<String>,
    pub on: Option<Vec<String>>,
}

/// One validated `notify:` entry.
#[derive(Clone, Debug)]
pub struct Target {
    pub kind: Kind,
    /// As configured: `${host}` and `${source}` not yet substituted.
    pub url: String,
    pub token: Option<Token>,
    pub timeout: Duration,
    pub on: Vec<Event>,
}

impl Target {
    /// Validates an agent's entry: an http(s) URL, a known kind and
    /// events, a readable token file.
    pub fn resolve(entry: &Entry) -> Result<Target, String> {
        let default: &[Event] = match entry.kind.as_str() {
            "healthchecks" => &AGENT_EVENTS,
            _ => &[Event::Failure, Event::Recovery],
        };
        Target::resolve_for(entry, &AGENT_EVENTS, default)
    }

    /// Validates a metadb's entry, told of [`CENTRAL_EVENTS`].
    pub fn resolve_central(entry: &Entry) -> Result<Target, String> {
        Target::resolve_for(entry, &CENTRAL_EVENTS, &CENTRAL_EVENTS)
    }

    fn resolve_for(entry: &Entry, allowed: &[Event], default: &[Event]) -> Result<Target, String> {
        let kind = [Kind::Healthchecks, Kind::Webhook, Kind::Ntfy]
            .into_iter()
            .find(|k| k.name() == entry.kind)
            .ok_or_else(|| {
                format!(
                    "unknown notify kind {:?} (healthchecks, webhook or ntfy)",
                    entry.kind
                )
            })?;
        if !(entry.url.starts_with("http://") || entry.url.starts_with("https://")) {
            return Err(format!(
                "notify url {} must start with http:// or https://",
                crate::base::uri::mask_path(&entry.url)
            ));
        }
        let token = match &entry.token_file {
            Some(path) if !Path::new(path).is_absolute() => {
                return Err(format!(
                    "notify token_file must be an absolute path, not {path:?}"
                ))
            }
            Some(path) => Some(Token::read("notify token_file", Path::new(path))?),
            None => None,
        };
        let timeout = match &entry.timeout {
            Some(t) => time::parse_duration(t).map_err(|e| format!("notify timeout: {e}"))?,
            None => DEFAULT_TIMEOUT,
        };
        let on = match &entry.on {
            Some(on) => on
                .iter()
                .map(|e| Event::parse(e, allowed))
                .collect::<Result<_, _>>()?,
            None => default.to_vec(),
        };
        Ok(Target {
            kind,
            url: entry.url.clone(),
            token,
            timeout,
            on,
        })
    }

    /// The event of `events` (most specific first) this target is told of.
    fn pick(&self, events: &[Event]) -> Option<Event> {
        events.iter().copied().find(|e| self.on.contains(e))
    }
}

impl fmt::Display for Target {
    /// `kind url on events`, the URL shown as [`crate::base::uri::mask_path`] does.
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let on: Vec<&str> = self.on.iter().map(|e| e.name()).collect();
        write!(
            f,
            "{} {} on {}",
            self.kind.name(),
            crate::base::uri::mask_path(&self.url),
            on.join(",")
        )?;
        if self.token.is_some() {
            f.write_str(" (bearer token)")?;
        }
        Ok(())
    }
}

/// What happened to a source's backup, told to every target that wants it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Notice {
    pub host: String,
    pub source: String,
    pub backup_id: String,
    /// Filled in per target: the event it is told of.
    pub state: &'static str,
    /// A short plain-text summary: what was backed up, or the failures.
    pub message: String,
    pub started: String,
    /// Empty for `start`.
    pub ended: String,
    pub datasets: u32,
}

/// Counts of notifications sent and given up, for `/metrics`.
#[derive(Debug, Default)]
pub struct Counts {
    pub sent: AtomicU64,
    pub failed: AtomicU64,
}

/// The sending thread and its queue.
pub struct Notifier {
    queue: Option<SyncSender<(Target, Notice)>>,
    /// Told when the thread has sent everything (a `Mutex` to be `Sync`).
    done: Mutex<Receiver<()>>,
    thread: Option<JoinHandle<()>>,
    counts: Arc<Counts>,
}

impl Notifier {
    /// Starts the sending thread; its results are counted in `counts`.
    pub fn spawn(counts: Arc<Counts>) -> Result<Notifier, String> {
        let (queue, incoming) = mpsc::sync_channel::<(Target, Notice)>(QUEUE);
        let (finished, done) = mpsc::channel();
        let thread_counts = Arc::clone(&counts);
        let thread = thread::Builder::new()
            .name("notify".into())
            .spawn(move || {
                for (target, notice) in incoming {
                    let counter = match deliver(&target, &notice) {
                        Ok(()) => &thread_counts.sent,
                        Err(e) => {
                            log::error!(
                                "source {} (backup {}): {} notification to {} not sent: {e}",
                                notice.source,
                                notice.backup_id,
                                notice.state,
                                crate::base::uri::mask_path(&target.url)
                            );
                            &thread_counts.failed
                        }
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                }
                let _ = finished.send(());
            })
            .map_err(|e| format!("cannot start the notification thread: {e}"))?;
        Ok(Notifier {
            queue: Some(queue),
            done: Mutex::new(done),
            thread: Some(thread),
            counts,
        })
    }

    /// Queues `notice` for every target of `targets` that wants one of
    /// `events` (most specific first), once per target.
    pub fn tell(&self, targets: &[Target], events: &[Event], notice: &Notice) {
        let Some(queue) = &self.queue else { return };
        for target in targets {
            let Some(event) = target.pick(events) else {
                continue;
            };
            let mut notice = notice.clone();
            notice.state = event.name();
            if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
                queue.try_send((target.clone(), notice))
            {
                log::error!(
                    "{} notification to {} dropped: too many waiting",
                    event.name(),
                    crate::base::uri::mask_path(&target.url)
                );
                self.counts.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Tells `targets` that `source`'s backup `backup_id` on `host` started
    /// at `start`.
    pub fn started(
        &self,
        targets: &[Target],
        host: &str,
        source: &str,
        backup_id: &str,
        start: DateTime<Utc>,
    ) {
        let notice = Notice {
            host: host.to_string(),
            source: source.to_string(),
            backup_id: backup_id.to_string(),
            state: "",
            message: format!("source {source} (backup {backup_id}) started"),
            started: time::format(start),
            ended: String::new(),
            datasets: 0,
        };
        self.tell(targets, &[Event::Start], &notice);
    }

    /// Tells `targets` how `outcome`'s backup on `host`, started at
    /// `start`, ended, a failure including an incomplete snapshot;
    /// remembers it in `work_dir` for the next.
    pub fn ended(
        &self,
        targets: &[Target],
        host: &str,
        work_dir: &Path,
        outcome: &Outcome,
        start: DateTime<Utc>,
    ) {
        let failed = !outcome.errors.is_empty();
        let was_failed = Memory::new(work_dir).swap(&outcome.source, failed);
        let end = Utc::now().max(start);
        let seconds = (end - start).num_milliseconds() as f64 / 1000.0;
        let mut message = format!(
            "source {} (backup {}): {}, {} bytes added, {seconds:.1}s",
            outcome.source,
            outcome.backup_id,
            count(outcome.recorded.len(), "dataset"),
            outcome.recorded.iter().map(|d| d.bytes_added).sum::<i64>()
        );
        for e in outcome.errors.iter().take(MAX_FAILURE_LINES) {
            let line = e.message.lines().next().unwrap_or_default();
            message.push_str(&format!("\n{}: {line}", e.kind.name()));
        }
        let notice = Notice {
            host: host.to_string(),
            source: outcome.source.clone(),
            backup_id: outcome.backup_id.clone(),
            state: "",
            message,
            started: time::format(start),
            ended: time::format(end),
            datasets: u32::try_from(outcome.recorded.len()).unwrap_or(u32::MAX),
        };
        self.tell(targets, &events(failed, was_failed), &notice);
    }

    /// Sends what is queued, waiting at most `bound`; what is still
    /// unsent then is given up (the thread is left to the process's exit).
    pub fn finish(mut self, bound: Duration) {
        self.wait(bound);
    }

    fn wait(&mut self, bound: Duration) {
        if self.queue.take().is_none() {
            return;
        }
        let done = self.done.lock().unwrap_or_else(PoisonError::into_inner);
        match done.recv_timeout(bound) {
            Ok(()) => {
                if let Some(thread) = self.thread.take() {
                    let _ = thread.join();
                }
            }
            Err(_) => log::warn!(
                "notifications not all sent within {}s: given up",
                bound.as_secs()
            ),
        }
    }
}

impl Drop for Notifier {
    /// A notifier dropped without [`Notifier::finish`] (the agent's, at
    /// shutdown) waits for its queue as long as `tabacco run` does.
    fn drop(&mut self) {
        self.wait(DROP_BOUND);
    }
}

/// The events of a finished backup: failure, or success (and recovery
/// if the last one failed), most specific first.
pub fn events(failed: bool, was_failed: bool) -> Vec<Event> {
    match (failed, was_failed) {
        (true, _) => vec![Event::Failure],
        (false, true) => vec![Event::Recovery, Event::Success],
        (false, false) => vec![Event::Success],
    }
}

/// Whether each source's last backup failed, kept in `work_dir/notify/`
/// so that a recovery is known across agent restarts and `run`s.
pub struct Memory(PathBuf);

impl Memory {
    pub fn new(work_dir: &Path) -> Memory {
        Memory(work_dir.join("notify"))
    }

    /// Records that `source`'s backup failed or not; returns whether the
    /// one before failed.
    pub fn swap(&self, source: &str, failed: bool) -> bool {
        // Source names are `/`-joined segments without `%` or `..`.
        let path = self.0.join(source.replace('/', "%2F"));
        let was = std::fs::read_to_string(&path).is_ok_and(|s| s.trim() == "failed");
        let state = if failed { "failed\n" } else { "ok\n" };
        if let Err(e) = std::fs::create_dir_all(&self.0).and_then(|()| std::fs::write(&path, state))
        {
            log::warn!(
                "cannot remember the state of source {source} in {}: {e}",
                path.display()
            );
        }
        was
    }
}

/// Sends one notice, retrying with backoff.
fn deliver(target: &Target, notice: &Notice) -> Result<(), String> {
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(target.timeout))
        .user_agent(format!("tabacco/{}", env!("CARGO_PKG_VERSION")))
        // A redirect would resend the token elsewhere.
        .max_redirects(0)
        .build()
        .new_agent();
    let mut delay = BACKOFF;
    let mut last = String::new();
    for attempt in 1..=TRIES {
        match send(&agent, target, notice) {
            Ok(()) => return Ok(()),
            Err(e) => last = e,
        }
        if attempt < TRIES {
            thread::sleep(delay);
            delay *= 2;
        }
    }
    Err(format!("{last} (tried {TRIES} times)"))
}

fn send(agent: &ureq::Agent, target: &Target, notice: &Notice) -> Result<(), String> {
    let url = substitute(&target.url, &notice.host, &notice.source);
    let url = match (target.kind, notice.state) {
        (Kind::Healthchecks, "start") => format!("{}/start", url.trim_end_matches('/')),
        (Kind::Healthchecks, "failure" | "overdue" | "silent") => {
            format!("{}/fail", url.trim_end_matches('/'))
        }
        _ => url,
    };
    let mut request = agent.post(&url);
    if let Some(token) = &target.token {
        request = request.header("Authorization", token.bearer());
    }
    let result = match target.kind {
        Kind::Healthchecks => request
            .content_type("text/plain; charset=utf-8")
            .send(notice.message.as_bytes()),
        Kind::Webhook => {
            let body = serde_json::to_vec(notice).map_err(|e| e.to_string())?;
            request.content_type("application/json").send(&body[..])
        }
        Kind::Ntfy => {
            let (verb, priority, tags) = match notice.state {
                "failure" => ("failed", "high", "rotating_light"),
                "overdue" => ("overdue", "high", "hourglass"),
                "silent" => ("silent", "high", "mute"),
                "recovery" | "recovered" => ("recovered", "default", "white_check_mark"),
                "start" => ("started", "low", "hourglass"),
                _ => ("succeeded", "low", "white_check_mark"),
            };
            request
                .header(
                    "Title",
                    format!("tabacco: {} {} {verb}", notice.host, notice.source),
                )
                .header("Priority", priority)
                .header("Tags", tags)
                .send(notice.message.as_bytes())
        }
    };
    match result {
        Ok(response) if response.status().is_success() => Ok(()),
        Ok(response) => Err(format!("answered {}", response.status())),
        // Errors may quote the URL, whose path is the target's secret.
        // A URL quoted otherwise still has its credentials masked.
        Err(e) => Err(crate::base::uri::mask_text(
            &e.to_string()
                .replace(&url, &crate::base::uri::mask_path(&url))
                .replace(&target.url, &crate::base::uri::mask_path(&target.url)),
        )),
    }
}

/// `url` with `${host}` and `${source}` replaced, percent-encoded.
fn substitute(url: &str, host: &str, source: &str) -> String {
    use crate::base::form::encode;
    url.replace("${host}", &encode(host))
        .replace("${source}", &encode(source))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substituted_names_are_percent_encoded() {
        assert_eq!(
            substitute("http://h/ping/${host}-${source}", "a b", "x/y"),
            "http://h/ping/a%20b-x%2Fy"
        );
    }

    #[test]
    fn a_failed_send_names_neither_the_password_nor_the_secret_path() {
        let entry = Entry {
            kind: "healthchecks".into(),
            url: "http://user:pw-secret@127.0.0.1:1/PATH-SECRET/${host}".into(),
            token_file: None,
            timeout: Some("2s".into()),
            on: None,
        };
        let target = Target::resolve(&entry).unwrap();
        let notice = Notice {
            host: "web3".into(),
            source: "sql".into(),
            backup_id: "b1".into(),
            state: "failure",
            message: "failed".into(),
            started: String::new(),
            ended: String::new(),
            datasets: 0,
        };
        let err = send(&ureq::Agent::new_with_defaults(), &target, &notice).unwrap_err();
        assert!(
            !err.contains("pw-secret") && !err.contains("PATH-SECRET"),
            "{err}"
        );
    }

    #[test]
    fn a_recovery_is_told_once_as_the_most_specific_event() {
        let entry = Entry {
            kind: "webhook".into(),
            url: "http://127.0.0.1:1/".into(),
            token_file: None,
            timeout: None,
            on: Some(vec!["success".into(), "recovery".into()]),
        };
        let target = Target::resolve(&entry).unwrap();
        assert_eq!(target.pick(&events(false, true)), Some(Event::Recovery));
        assert_eq!(target.pick(&events(false, false)), Some(Event::Success));
        assert_eq!(target.pick(&events(true, false)), None);
    }
}
