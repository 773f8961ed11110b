//! The metadb server's configuration, `metadb.yml`: where the database lives,
//! where to listen, and the policy (tokens, read scope, body limit) that a
//! SIGHUP may reload. Parsing rejects unknown keys and reports errors with
//! the file and line; what the server does with a policy is `server`'s
//! business.

use crate::base::yaml::{self, Error, Origin};
use crate::metadb::server::auth::{Digest, Identity, Tokens};
use crate::metadb::store::{DEFAULT_ATTEMPT_RETENTION, DEFAULT_OVERDUE_GRACE};
use crate::report::notify::Target;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the server listens unless configured otherwise.
pub const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:5333";
/// Where the database lives unless configured otherwise.
pub const DEFAULT_DB_PATH: &str = "/var/lib/tabacco/metadb.sqlite";
/// The largest request body accepted unless configured otherwise.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1 << 20;
/// No configuration may raise the body limit past this: bodies are held in
/// memory, once per connection sending one.
const MAX_MAX_BODY_BYTES: u64 = 256 << 20;
/// How long a host may send nothing before it is silent, unless
/// configured otherwise.
pub const DEFAULT_SILENT_AFTER: Duration = Duration::from_secs(86_400);
/// How long a repository may go without being read back whole before the
/// console shows it as a problem, unless configured otherwise.
pub const DEFAULT_READ_BACK_WITHIN: Duration = Duration::from_secs(90 * 86_400);
/// How often the status is looked at for notifications unless configured
/// otherwise.
pub const DEFAULT_WATCH_INTERVAL: Duration = Duration::from_secs(60);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    db_path: Option<String>,
    http_addr: Option<String>,
    #[serde(default)]
    tokens: Vec<RawToken>,
    host_read: Option<HostRead>,
    max_body_bytes: Option<u64>,
    overdue_grace: Option<String>,
    attempt_retention: Option<String>,
    notify: Option<Vec<crate::report::notify::Entry>>,
    silent_after: Option<String>,
    watch_interval: Option<String>,
    page: Option<PageAccess>,
    read_back_within: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawToken {
    token_file: Option<String>,
    token_sha256: Option<String>,
    host: Option<String>,
    role: Option<Role>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Role {
    Admin,
}

/// Which records a host token may read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HostRead {
    /// Every host's: a service moved to a new host is restored there from
    /// its predecessor's backups.
    #[default]
    All,
    /// Only its own host's.
    Own,
}

/// Who may read the console's pages (`page:`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PageAccess {
    /// A known token, sent as a bearer token or through a browser's
    /// session (default).
    #[default]
    Token,
    /// Anyone who reaches the port, as `/metrics`: every host's pages.
    Open,
}

/// The validated `metadb.yml`.
#[derive(Clone, Debug)]
pub struct Config {
    pub db_path: PathBuf,
    pub http_addr: String,
    pub policy: Policy,
}

/// What a SIGHUP reloads: who may do what, and how much they may send.
#[derive(Clone, Debug)]
pub struct Policy {
    pub tokens: Tokens,
    pub host_read: HostRead,
    pub max_body_bytes: usize,
    /// How long after its due time a source not attempted is `overdue`.
    pub overdue_grace: Duration,
    /// How long attempts are kept.
    pub attempt_retention: Duration,
    /// Told when a source is overdue, a host silent, or either recovers.
    pub notify: Vec<Target>,
    /// How long a host may send nothing before it is silent.
    pub silent_after: Duration,
    /// How often the status is looked at for notifications.
    pub watch_interval: Duration,
    /// Who may read the console's pages.
    pub page: PageAccess,
    /// A repository not read back whole within this long is a problem on
    /// the console.
    pub read_back_within: Duration,
}

impl Config {
    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<Config, Error> {
        let (raw, origin) = yaml::read_one::<Raw>(path)?;
        resolve(raw, &origin)
    }
}

fn resolve(raw: Raw, origin: &Origin) -> Result<Config, Error> {
    let err = |key: &str, msg: String| Error::new(origin.at(key), msg);
    let db_path = PathBuf::from(raw.db_path.as_deref().unwrap_or(DEFAULT_DB_PATH));
    if !db_path.is_absolute() {
        return Err(err(
            "db_path",
            format!("db_path must be an absolute path, not {:?}", db_path),
        ));
    }
    let http_addr = raw
        .http_addr
        .unwrap_or_else(|| DEFAULT_HTTP_ADDR.to_string());
    if http_addr.trim().is_empty() {
        return Err(err("http_addr", "http_addr is empty".into()));
    }
    let max_body_bytes = match raw.max_body_bytes {
        None => DEFAULT_MAX_BODY_BYTES,
        Some(n) if (1024..=MAX_MAX_BODY_BYTES).contains(&n) => usize::try_from(n)
            .map_err(|_| err("max_body_bytes", format!("max_body_bytes {n} is too large")))?,
        Some(n) => {
            return Err(err(
                "max_body_bytes",
                format!("max_body_bytes {n} is outside 1024..{MAX_MAX_BODY_BYTES}"),
            ))
        }
    };
    let duration = |key: &str, value: Option<String>, default: Duration| {
        value.map_or(Ok(default), |v| {
            crate::base::time::parse_duration(&v).map_err(|e| err(key, format!("{key}: {e}")))
        })
    };
    let overdue_grace = duration("overdue_grace", raw.overdue_grace, DEFAULT_OVERDUE_GRACE)?;
    let attempt_retention = duration(
        "attempt_retention",
        raw.attempt_retention,
        DEFAULT_ATTEMPT_RETENTION,
    )?;
    let silent_after = duration("silent_after", raw.silent_after, DEFAULT_SILENT_AFTER)?;
    let watch_interval = duration("watch_interval", raw.watch_interval, DEFAULT_WATCH_INTERVAL)?;
    let read_back_within = duration(
        "read_back_within",
        raw.read_back_within,
        DEFAULT_READ_BACK_WITHIN,
    )?;
    if watch_interval.is_zero() {
        return Err(err(
            "watch_interval",
            "watch_interval must be more than 0s".into(),
        ));
    }
    let notify = raw
        .notify
        .unwrap_or_default()
        .iter()
        .map(Target::resolve_central)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err("notify", e))?;
    let mut entries = Vec::new();
    for (i, token) in raw.tokens.into_iter().enumerate() {
        let entry = resolve_token(token)
            .map_err(|e| err("tokens", format!("tokens entry {}: {e}", i + 1)))?;
        entries.push(entry);
    }
    let tokens = Tokens::new(entries).map_err(|e| err("tokens", e))?;
    Ok(Config {
        db_path,
        http_addr,
        policy: Policy {
            tokens,
            host_read: raw.host_read.unwrap_or_default(),
            max_body_bytes,
            overdue_grace,
            attempt_retention,
            notify,
            silent_after,
            watch_interval,
            page: raw.page.unwrap_or_default(),
            read_back_within,
        },
    })
}

fn resolve_token(raw: RawToken) -> Result<(Digest, Identity), String> {
    let digest = match (raw.token_file, raw.token_sha256) {
        (Some(path), None) => {
            if !Path::new(&path).is_absolute() {
                return Err(format!("token_file must be an absolute path, not {path:?}"));
            }
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("cannot read token_file {path}: {e}"))?;
            let token = text.trim();
            if token.is_empty() {
                return Err(format!("token_file {path} is empty"));
            }
            Digest::of(token)
        }
        (None, Some(hex)) => Digest::parse_hex(&hex)?,
        (Some(_), Some(_)) => return Err("set either token_file or token_sha256, not both".into()),
        (None, None) => return Err("needs token_file or token_sha256".into()),
    };
    let identity = match (raw.host, raw.role) {
        (Some(host), None) if host.trim().is_empty() => return Err("host is empty".into()),
        (Some(host), None) => Identity::Host(host),
        (None, Some(Role::Admin)) => Identity::Admin,
        (Some(_), Some(_)) => return Err("set either host or role, not both".into()),
        (None, None) => return Err("needs host: NAME or role: admin".into()),
    };
    Ok((digest, identity))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, String> {
        let path = Path::new("/etc/tabacco/metadb.yml");
        let raw: Raw = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
        resolve(raw, &Origin::file(path)).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults() {
        let c = parse("{}").unwrap();
        assert_eq!(c.db_path, PathBuf::from(DEFAULT_DB_PATH));
        assert_eq!(c.http_addr, DEFAULT_HTTP_ADDR);
        assert!(c.policy.tokens.is_empty());
        assert_eq!(c.policy.host_read, HostRead::All);
        assert_eq!(c.policy.max_body_bytes, DEFAULT_MAX_BODY_BYTES);
        assert_eq!(c.policy.overdue_grace, DEFAULT_OVERDUE_GRACE);
        assert_eq!(c.policy.attempt_retention, DEFAULT_ATTEMPT_RETENTION);
        assert_eq!(c.policy.page, PageAccess::Token);
        assert_eq!(c.policy.read_back_within, DEFAULT_READ_BACK_WITHIN);
        let c = parse("{page: open, read_back_within: 30d}").unwrap();
        assert_eq!(c.policy.page, PageAccess::Open);
        assert_eq!(c.policy.read_back_within, Duration::from_secs(30 * 86_400));
        let c = parse("{overdue_grace: 90m, attempt_retention: 30d}").unwrap();
        assert_eq!(c.policy.overdue_grace, Duration::from_secs(5400));
        assert_eq!(c.policy.attempt_retention, Duration::from_secs(30 * 86_400));
    }

    #[test]
    fn full_configuration() {
        let dir =
            std::env::temp_dir().join(format!("tabacco-metadb-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let token_file = dir.join("web3.token");
        std::fs::write(&token_file, "agent-secret\n").unwrap();
        let c = parse(&format!(
            "db_path: /var/lib/m.db\nhttp_addr: 0.0.0.0:5332\nhost_read: own\nmax_body_bytes: 4096\ntokens:\n  - {{token_file: {}, host: web3}}\n  - {{token_sha256: {}, role: admin}}\n",
            token_file.display(),
            "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b"
        ))
        .unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(c.http_addr, "0.0.0.0:5332");
        assert_eq!(c.policy.host_read, HostRead::Own);
        assert_eq!(c.policy.max_body_bytes, 4096);
        assert_eq!(c.policy.tokens.len(), 2);
        assert_eq!(
            c.policy.tokens.identify(Some("Bearer agent-secret")),
            Some(Identity::Host("web3".into()))
        );
        assert_eq!(
            c.policy.tokens.identify(Some("Bearer secret")),
            Some(Identity::Admin)
        );
    }

    #[test]
    fn errors() {
        let cases = [
            ("bogus: 1", "unknown field `bogus`"),
            ("db_path: relative.db", "db_path must be an absolute path"),
            ("host_read: some", "unknown variant `some`"),
            ("page: public", "unknown variant `public`"),
            ("max_body_bytes: 10", "max_body_bytes 10 is outside"),
            ("overdue_grace: soon", "overdue_grace: invalid duration"),
            ("tokens: [{host: a}]", "tokens entry 1: needs token_file or token_sha256"),
            ("tokens: [{token_sha256: abc, host: a}]", "64 hex digits"),
            (
                "tokens: [{token_file: /nonexistent/t, host: a}]",
                "tokens entry 1: cannot read token_file /nonexistent/t",
            ),
            ("tokens: [{token_file: t, host: a}]", "token_file must be an absolute path"),
            (
                "tokens: [{token_sha256: 2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b}]",
                "needs host: NAME or role: admin",
            ),
            (
                "tokens: [{token_sha256: 2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b, role: root}]",
                "unknown variant `root`",
            ),
            (
                "tokens: [{token_sha256: 2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b, host: a, role: admin}]",
                "either host or role",
            ),
            ("tokens: [{token_sha256: 2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b, host: a}, {token_sha256: 2BB80D537B1DA3E38BD30361AA855686BDE0EACD7162FEF6A25FE97BF527A25B, host: b}]", "same token"),
        ];
        for (text, want) in cases {
            let err = parse(text).unwrap_err();
            assert!(err.contains(want), "{text}: {err}");
            assert!(!err.contains('\n'), "{err}");
        }
    }
}
