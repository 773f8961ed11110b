//! Opening a repository before a process uses it, proving that this
//! host's key opens it, and creating one: whether it is there, answers
//! within `repository_timeout` (restic 0.17 and newer retry an unreachable
//! backend for a quarter of an hour; the probe is stopped with SIGINT at
//! the bound), opens, and is the repository this host used at that
//! location before (`known`). Its failures name the repository and the
//! fix. Who may create a repository, and when, is the `init` module's.
//!
//! Opening costs no restic process for a local repository (its files say
//! whether it is there and whether its config is the one this host saw)
//! and one `restic cat config` for a remote one, once per process until
//! the repository fails.

use super::known::{self, Known};
use super::layout::{self, Layout};
use super::output::parse_json;
use super::{is_local, Error, Password, Repo, Repository};
use crate::base::{time, uri};
use crate::process::shell::{Stop, Supervisor};
use serde::Deserialize;
use std::path::Path;
use std::process::Stdio;
use std::sync::PoisonError;

/// Most keys `check` tries one by one on a repository whose config a key
/// does not open.
const MAX_KEYS_TRIED: usize = 16;

/// What opening a repository with this host's key found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    /// The restic id, the same for every host however it spells the
    /// location.
    pub id: String,
    /// The repository format version (2 since restic 0.14).
    pub version: u32,
}

impl Found {
    /// The id as restic shows it, 8 hex digits.
    pub fn short_id(&self) -> &str {
        &self.id[..self.id.len().min(8)]
    }
}

/// Which keys of a local repository open it with this host's password.
#[derive(Debug, Default)]
struct Keys {
    opening: Vec<String>,
    other: Vec<String>,
    /// Keys left untried beyond [`MAX_KEYS_TRIED`].
    untried: usize,
}

impl Repo {
    /// Makes sure the repository is there, answers, and is the one this
    /// host used at its location, once per process until it fails. Never
    /// creates it: a missing repository is [`Error::Missing`].
    pub fn open(&self, sup: &Supervisor) -> Result<(), Error> {
        self.version()?;
        let mut opened = self.opened.lock().unwrap_or_else(PoisonError::into_inner);
        if *opened {
            return Ok(());
        }
        if is_local(&self.config.uri) {
            self.open_local(sup)?;
        } else {
            self.prove(sup)?;
        }
        *opened = true;
        Ok(())
    }

    /// A local repository, by its files: restic runs only when its config
    /// is not the one this host saw at that location.
    fn open_local(&self, sup: &Supervisor) -> Result<(), Error> {
        let config = self.local_config()?;
        let fingerprint = known::fingerprint(&config);
        let location = uri::location(&self.config.uri);
        match known::find(&self.config.known_ids, &location) {
            Some(known) if known.fingerprint.as_deref() == Some(&fingerprint) => {
                if let Some(id) = known.id {
                    *self.id.lock().unwrap_or_else(PoisonError::into_inner) = Some(id);
                }
                Ok(())
            }
            Some(_) => self.prove(sup).map(drop),
            None => {
                let seen = Known {
                    id: None,
                    fingerprint: Some(fingerprint),
                };
                known::remember(&self.config.known_ids, &location, Some(&seen));
                Ok(())
            }
        }
    }

    /// A local repository's config file; what is wrong with its files
    /// otherwise.
    fn local_config(&self) -> Result<Vec<u8>, Error> {
        let dir = Path::new(&self.config.uri);
        let shown = uri::mask(&self.config.uri);
        let layout = Layout::read(dir)
            .map_err(|e| Error::Unavailable(format!("repository {shown} cannot be read: {e}")))?;
        layout::config(&shown, dir, layout)
    }

    /// Opens the repository with this host's key (`restic cat config`,
    /// within the bound), for a local one too, and checks that it is the
    /// repository this host used at that location: what `check` and
    /// `init` prove. Its id is learnt and remembered.
    pub fn prove(&self, sup: &Supervisor) -> Result<Found, Error> {
        self.version()?;
        let fingerprint = match is_local(&self.config.uri) {
            true => Some(known::fingerprint(&self.local_config()?)),
            false => None,
        };
        let found = self.cat_config(sup)?;
        let location = uri::location(&self.config.uri);
        let known = known::find(&self.config.known_ids, &location);
        if let Some(Known { id: Some(id), .. }) = &known {
            if *id != found.id {
                return Err(self.foreign(id, &found.id, &location));
            }
        }
        let seen = Known {
            id: Some(found.id.clone()),
            fingerprint,
        };
        if known.as_ref() != Some(&seen) {
            known::remember(&self.config.known_ids, &location, Some(&seen));
        }
        *self.id.lock().unwrap_or_else(PoisonError::into_inner) = Some(found.id.clone());
        Ok(found)
    }

    /// The repository's id, which names it the same for every host however
    /// each spells its location: known once opened or proved, else learnt
    /// with [`Repo::prove`].
    pub fn id(&self, sup: &Supervisor) -> Result<String, Error> {
        let known = self
            .id
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        match known {
            Some(id) => Ok(id),
            None => Ok(self.prove(sup)?.id),
        }
    }

    /// The repository's id if this process learnt it, or this host did
    /// before (`known`), without running restic.
    pub fn known_id(&self) -> Option<String> {
        let learnt = self
            .id
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        learnt.or_else(|| {
            let location = uri::location(&self.config.uri);
            known::find(&self.config.known_ids, &location)?.id
        })
    }

    /// `restic cat config` within the bound.
    fn cat_config(&self, sup: &Supervisor) -> Result<Found, Error> {
        self.cat_config_with(sup, &[])
    }

    fn cat_config_with(&self, sup: &Supervisor, options: &[&str]) -> Result<Found, Error> {
        #[derive(Deserialize)]
        struct Config {
            id: String,
            version: u32,
        }
        // No lock: a probe needs none, and must not fail while another
        // process holds the repository to itself (restic 0.14's `cat` locks).
        let all = options
            .iter()
            .copied()
            .chain(["--no-lock", "cat", "config"]);
        let args: Vec<&str> = all.collect();
        let mut cmd = self.command(&args);
        cmd.stdout(Stdio::piped());
        let mut running = sup.spawn(&mut cmd, "restic cat config", Stop::Interrupt)?;
        let deadline = running.deadline(self.config.timeout);
        let parsed = running.child().stdout.take().map(parse_json::<Config>);
        let waited = running.wait();
        if deadline.expired() {
            return Err(self.unanswered());
        }
        waited.map_err(|e| self.located(e.into()))?;
        match parsed {
            Some(Ok(Config { id, version })) => Ok(Found { id, version }),
            Some(Err(e)) => Err(Error::Output(format!("restic cat config: {e}"))),
            None => Err(Error::Output("restic cat config: no output".into())),
        }
    }

    /// Creates the repository with `restic init` (with `from`'s chunker
    /// parameters, `init --copy-chunker-params`, for a copy of `from`),
    /// within the bound. The caller makes sure nobody else creates it at
    /// the same time. This host forgets any repository it used there
    /// before: the new one is the one it uses from now on.
    pub fn create(&self, sup: &Supervisor, from: Option<&Repository>) -> Result<(), Error> {
        self.version()?;
        let mut cmd = match from {
            Some(from) => self.reading(from, &["init", "--copy-chunker-params"]),
            None => self.command(&["init"]),
        };
        let running = sup.spawn(&mut cmd, "restic init", Stop::Interrupt)?;
        let deadline = running.deadline(self.config.timeout);
        let waited = running.wait();
        if deadline.expired() {
            return Err(self.unanswered());
        }
        waited.map_err(|e| self.located(e.into()))?;
        let location = uri::location(&self.config.uri);
        known::remember(&self.config.known_ids, &location, None);
        *self.id.lock().unwrap_or_else(PoisonError::into_inner) = None;
        *self.opened.lock().unwrap_or_else(PoisonError::into_inner) = true;
        log::info!("created restic repository {}", uri::mask(&self.config.uri));
        Ok(())
    }

    /// Whether this host opened a repository at this location before: a
    /// missing one may then be on a disk not mounted now, rather than
    /// never created.
    pub fn used_before(&self) -> bool {
        let location = uri::location(&self.config.uri);
        known::find(&self.config.known_ids, &location).is_some()
    }

    /// `e`, [`Error::Damaged`] with a local repository's keys tried one by
    /// one (see [`Repo::sort_keys`]): which key opens it, and which keys
    /// to remove. A restic process per key: for `check` and `init`.
    pub fn diagnose(&self, sup: &Supervisor, e: Error) -> Error {
        let Error::Damaged(said) = e else { return e };
        let Some(dir) =
            is_local(&self.config.uri).then(|| Path::new(&self.config.uri).join("keys"))
        else {
            return Error::Damaged(said);
        };
        let keys = match self.sort_keys(sup) {
            Ok(keys) if !keys.other.is_empty() => keys,
            _ => return Error::Damaged(said),
        };
        let opening = match keys.opening.as_slice() {
            [] => "no key opens it with this host's password".to_string(),
            opening => format!(
                "{} opens it with this host's password",
                layout::list(opening)
            ),
        };
        let others: Vec<String> = keys
            .other
            .iter()
            .map(|k| dir.join(k).display().to_string())
            .collect();
        let untried = match keys.untried {
            0 => String::new(),
            n => format!(" ({n} more keys not tried)"),
        };
        Error::Damaged(format!(
            "{said}. Tried one by one: {opening}; {} do not (they open nothing): remove them ({}){untried}",
            layout::list(&keys.other),
            others.join(" ")
        ))
    }

    /// For a local repository whose config some key does not open: which
    /// of its keys open it with this host's password, tried one by one
    /// (`restic --key-hint KEY cat config`).
    fn sort_keys(&self, sup: &Supervisor) -> Result<Keys, Error> {
        let dir = Path::new(&self.config.uri).join("keys");
        let all = layout::names(&dir).map_err(|e| {
            Error::Unavailable(format!("cannot list the keys in {}: {e}", dir.display()))
        })?;
        let mut keys = Keys {
            untried: all.len().saturating_sub(MAX_KEYS_TRIED),
            ..Keys::default()
        };
        for key in all.into_iter().take(MAX_KEYS_TRIED) {
            match self.cat_config_with(sup, &["--key-hint", &key]) {
                Ok(_) => keys.opening.push(key),
                Err(Error::Damaged(_)) => keys.other.push(key),
                Err(e) => return Err(e),
            }
        }
        Ok(keys)
    }

    /// restic's error `e`, where it is about the repository, made into a
    /// sentence that names the repository (its credentials masked) and
    /// the fix.
    pub(super) fn located(&self, e: Error) -> Error {
        let shown = uri::mask(&self.config.uri);
        match e {
            Error::Unavailable(words) => Error::Unavailable(format!(
                "repository {shown} cannot be reached: {}",
                gist(&words)
            )),
            Error::Missing(words) => Error::Missing(format!(
                "no repository at {shown} ({}): run 'tabacco init' to create it",
                gist(&words)
            )),
            Error::WrongPassword(_) => Error::WrongPassword(format!(
                "repository {shown}: wrong password: no key of the repository opens with this host's {} (it must be the password the repository was created with, or one added with 'restic key add')",
                match &self.config.password {
                    Password::File(path) => format!("password_file {}", path.display()),
                    Password::Literal(_) => "password".to_string(),
                }
            )),
            Error::Damaged(words) => {
                let keys = is_local(&self.config.uri)
                    .then(|| layout::names(&Path::new(&self.config.uri).join("keys")).ok())
                    .flatten();
                Error::Damaged(layout::mismatch(&shown, gist(&words), keys.as_deref()))
            }
            e => e,
        }
    }

    fn unanswered(&self) -> Error {
        Error::Unavailable(format!(
            "repository {} did not answer within {}",
            uri::mask(&self.config.uri),
            time::format_duration(self.config.timeout)
        ))
    }

    fn foreign(&self, known: &str, found: &str, location: &str) -> Error {
        let short = |id: &str| id[..id.len().min(8)].to_string();
        Error::Foreign(format!(
            "repository {} is not the one this host used there: it has restic id {}, this host used {} ({}): the location was initialised again, or another repository is mounted there, and nothing is written to it; if it is the one to use from now on, delete the line of {location} from {}",
            uri::mask(&self.config.uri),
            short(found),
            short(known),
            self.config.known_ids.display(),
            self.config.known_ids.display()
        ))
    }
}

/// The gist of restic's words: their first part, without `Fatal: `.
fn gist(words: &str) -> &str {
    let first = words.split(" / ").next().unwrap_or(words);
    first.strip_prefix("Fatal: ").unwrap_or(first)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::time::Duration;

    fn repo(uri: &str, password: Password) -> Repo {
        Repo::new(Repository {
            uri: uri.into(),
            password,
            cache_dir: PathBuf::from("/c"),
            env: Default::default(),
            binary: PathBuf::from("restic"),
            retry_lock: Duration::from_secs(1),
            options: Vec::new(),
            timeout: Duration::from_secs(120),
            known_ids: PathBuf::from("/w/repository-ids"),
        })
    }

    #[test]
    fn a_failure_names_the_repository_masked_and_the_fix() {
        let remote = repo(
            "rest:http://u:SECRET@h/r",
            Password::File("/etc/tabacco/restic.pw".into()),
        );
        let missing = Error::Missing(
            "Fatal: unable to open config file: <config/> does not exist / Is there a repository at the following location?".into(),
        );
        assert_eq!(
            remote.located(missing).to_string(),
            "no repository at rest:http://u:***@h/r (unable to open config file: <config/> does not exist): run 'tabacco init' to create it"
        );
        let password = remote
            .located(Error::WrongPassword(String::new()))
            .to_string();
        assert!(
            password.starts_with("repository rest:http://u:***@h/r: wrong password: no key of the repository opens with this host's password_file /etc/tabacco/restic.pw"),
            "{password}"
        );
        assert_eq!(
            remote.unanswered().to_string(),
            "repository rest:http://u:***@h/r did not answer within 2m"
        );
        let other = remote.foreign(&"a".repeat(64), &"b".repeat(64), "rest:http://h/r");
        assert!(matches!(other, Error::Foreign(_)));
        assert!(other
            .to_string()
            .contains("it has restic id bbbbbbbb, this host used aaaaaaaa"));
        assert!(!other.to_string().contains("SECRET"));
        // Other failures are left as they are.
        let locked = remote.located(Error::Locked("x".into()));
        assert!(matches!(locked, Error::Locked(_)));
    }

    #[test]
    fn the_gist_of_restic_words_is_their_first_part() {
        assert_eq!(
            gist("Fatal: unable to open config file: <config/> does not exist / Is there a repository at the following location? / rest:http://h/r/"),
            "unable to open config file: <config/> does not exist"
        );
        assert_eq!(gist("plain"), "plain");
    }
}
