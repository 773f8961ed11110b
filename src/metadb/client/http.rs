//! The HTTP client of a remote metadb: the requests of the metadb API over
//! ureq, with the configured timeout, bearer token and TLS (a private CA,
//! and a client certificate for mTLS fronts).
//!
//! Failures are sorted by what the caller can do about them: an
//! unavailable metadb (no connection, a timeout, 5xx, 408, 429) may answer
//! later, so records are spooled; a refusal (other 4xx) will not change.
//! The token is read once, sent only in the `Authorization` header, and
//! never appears in `Debug` output, logs or error messages.
//!
//! A find's answer is read as it arrives, one backup at a time; it may take
//! longer than `request_max_timeout` in all, as long as no read waits that
//! long.

use crate::base::token::Token;
use crate::metadb::client::connection as config;
use crate::wire::api::{
    AbandonRequest, Attempt, CopiesAnswer, CopiesRequest, Due, DueRequest, HistoryRequest,
    KnownRepository, Lag, Lease, LeaseRequest, Plan, Proof, Proofs, ReleaseRequest,
    RemoveDatasetsAnswer, RemoveDatasetsRequest, RestoreStatus, RetireRequest, SliceRead,
    SourcePolicy, StatusRequest, StatusRow,
};
use crate::wire::model::{
    AddDatasetRequest, Backup, FindRequest, RestoreRequest, UpdateActiveJobStatusRequest,
    Verification,
};
use crate::wire::path;
use serde::de::{self, DeserializeOwned, SeqAccess, Visitor};
use serde::Serialize;
use std::fmt;
use std::io::BufReader;
use std::time::Duration;
use ureq::tls::{Certificate, ClientCert, PemItem, RootCerts, TlsConfig};

/// Most bytes of an answer read whole (a find's is read as it arrives).
const ANSWER_LIMIT: u64 = 512 << 20;
/// Most bytes of an error answer read.
const ERROR_LIMIT: u64 = 64 << 10;
/// Connecting takes at most this long (or `request_max_timeout` if shorter).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a metadb request failed.
#[derive(Debug)]
pub enum Error {
    /// No answer, or an answer saying "later" (5xx, 408, 429).
    Unavailable(String),
    /// The metadb refused the request; sending it again will not help.
    Rejected { status: u16, message: String },
    /// The answer was not what the API promises.
    Protocol(String),
    /// The client configuration cannot work (token file, certificates, URL).
    Setup(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Error::Unavailable(msg) => write!(f, "unavailable: {msg}"),
            Error::Rejected { status, message } => write!(f, "refused ({status}): {message}"),
            Error::Protocol(msg) => write!(f, "unexpected answer: {msg}"),
            Error::Setup(msg) => f.write_str(msg),
        }
    }
}

impl std::error::Error for Error {}

/// A connection to one metadb server.
pub struct Client {
    agent: ureq::Agent,
    /// The URL without a trailing slash.
    base: String,
    token: Option<Token>,
    /// `request_max_timeout`.
    timeout: Duration,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("token", &self.token)
            .finish()
    }
}

impl Client {
    /// A client for `config`: reads the token and certificates now, so that
    /// a mistake shows at once rather than at the first backup.
    pub fn new(config: &config::Connection) -> Result<Client, Error> {
        let base = config.url.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(Error::Setup(format!(
                "metadb url {} must start with http:// or https://",
                crate::base::uri::mask(&base)
            )));
        }
        let token = config.token.clone();
        let timeout = config.request_max_timeout;
        let agent = ureq::Agent::config_builder()
            // Error answers carry a reason worth showing.
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .timeout_connect(Some(timeout.min(CONNECT_TIMEOUT)))
            .user_agent(format!("tabacco/{}", env!("CARGO_PKG_VERSION")))
            // A redirect would resend the token elsewhere.
            .max_redirects(0)
            .tls_config(tls(&config.tls)?)
            .build()
            .new_agent();
        Ok(Client {
            agent,
            base,
            token,
            timeout,
        })
    }

    /// `POST /api/add_dataset`.
    pub fn add_dataset(&self, request: &AddDatasetRequest) -> Result<(), Error> {
        self.post::<_, serde_json::Value>(path::ADD_DATASET.path, request)
            .map(drop)
    }

    /// `POST /api/remove_datasets`; returns how many were recorded.
    pub fn remove_datasets(&self, request: &RemoveDatasetsRequest) -> Result<usize, Error> {
        self.post::<_, RemoveDatasetsAnswer>(path::REMOVE_DATASETS.path, request)
            .map(|answer| answer.removed)
    }

    /// `POST /api/copies`; returns how many are recorded as held.
    pub fn add_copies(&self, request: &CopiesRequest) -> Result<usize, Error> {
        self.post::<_, CopiesAnswer>(path::ADD_COPIES.path, request)
            .map(|answer| answer.recorded)
    }

    /// `POST /api/copies/due`.
    pub fn due_copies(&self, request: &DueRequest) -> Result<Vec<Due>, Error> {
        self.post(path::DUE_COPIES.path, request)
    }

    /// `GET /api/copies/lag`.
    pub fn copy_lag(&self) -> Result<Vec<Lag>, Error> {
        self.get(path::COPY_LAG.path, None)
    }

    /// `POST /api/find_atoms`, handing each backup to `f` as it arrives. An
    /// error of `f` stops reading.
    pub fn for_each_found<E: From<Error>>(
        &self,
        request: &FindRequest,
        f: impl FnMut(Backup) -> Result<(), E>,
    ) -> Result<(), E> {
        self.for_each(path::FIND_ATOMS.path, request, f)
    }

    /// `POST /api/status`: the fleet's status, handing each row to `f` as
    /// it arrives. An error of `f` stops reading.
    pub fn for_each_status<E: From<Error>>(
        &self,
        request: &StatusRequest,
        f: impl FnMut(StatusRow) -> Result<(), E>,
    ) -> Result<(), E> {
        self.for_each(path::STATUS.path, request, f)
    }

    /// POSTs `request` to `path`, whose answer is a JSON array of any size
    /// (streamed by the server), and hands each item to `f` as it arrives:
    /// the request's timeout is for the answer to start and then for each
    /// read, not for the whole.
    fn for_each<T: DeserializeOwned, E: From<Error>>(
        &self,
        path: &str,
        request: &impl Serialize,
        mut f: impl FnMut(T) -> Result<(), E>,
    ) -> Result<(), E> {
        let body = serde_json::to_vec(request)
            .map_err(|e| Error::Protocol(format!("cannot encode the request: {e}")))?;
        let timeout = self.timeout;
        let mut post = self
            .agent
            .post(format!("{}{path}", self.base))
            .config()
            .timeout_global(None)
            .timeout_recv_response(Some(timeout))
            .timeout_per_read(Some(timeout))
            .build()
            .content_type("application/json");
        if let Some(token) = &self.token {
            post = post.header("Authorization", token.bearer());
        }
        let url = format!("{}{path}", crate::base::uri::mask(&self.base));
        let response = checked(post.send(&body[..]), &url)?;
        let reader = response
            .into_body()
            .into_with_config()
            .limit(u64::MAX)
            .reader();
        let mut stopped = None;
        let mut each = |item| match f(item) {
            Ok(()) => true,
            Err(e) => {
                stopped = Some(e);
                false
            }
        };
        let mut json = serde_json::Deserializer::from_reader(BufReader::new(reader));
        let read =
            de::Deserializer::deserialize_seq(&mut json, Each(&mut each)).and_then(|()| json.end());
        if let Some(e) = stopped {
            return Err(e);
        }
        read.map_err(|e| {
            // A connection cut, or an answer cut short by the server.
            if e.is_io() || e.is_eof() {
                Error::Unavailable(format!("{url}: answer cut short: {e}"))
            } else {
                Error::Protocol(format!("{url}: {e}"))
            }
            .into()
        })
    }

    /// `POST /api/update_active_job_status`.
    pub fn update_active_job_status(
        &self,
        request: &UpdateActiveJobStatusRequest,
    ) -> Result<(), Error> {
        self.post::<_, serde_json::Value>(path::UPDATE_ACTIVE_JOB_STATUS.path, request)
            .map(drop)
    }

    /// `POST /api/verifications`: the outcome of a restore drill.
    pub fn add_verification(&self, verification: &Verification) -> Result<(), Error> {
        self.post::<_, serde_json::Value>(path::ADD_VERIFICATION.path, verification)
            .map(drop)
    }

    /// `POST /api/attempts`: how an attempt ended.
    pub fn add_attempt(&self, attempt: &Attempt) -> Result<(), Error> {
        self.post::<_, serde_json::Value>(path::ADD_ATTEMPT.path, attempt)
            .map(drop)
    }

    /// `POST /api/plans`: what this host runs, and when next.
    pub fn publish_plan(&self, plan: &Plan) -> Result<(), Error> {
        self.post::<_, serde_json::Value>(path::PUBLISH_PLAN.path, plan)
            .map(drop)
    }

    /// `POST /api/history`: attempts, newest first.
    pub fn history(&self, request: &HistoryRequest) -> Result<Vec<Attempt>, Error> {
        self.post(path::HISTORY.path, request)
    }

    /// `POST /api/retire_host` (admin): stop watching `host`.
    pub fn retire_host(&self, host: &str) -> Result<(), Error> {
        let request = RetireRequest {
            host: host.to_string(),
        };
        self.post::<_, serde_json::Value>(path::RETIRE_HOST.path, &request)
            .map(drop)
    }

    /// `POST /api/leases`: takes or renews a maintenance lease.
    pub fn take_lease(&self, request: &LeaseRequest) -> Result<Lease, Error> {
        self.post(path::TAKE_LEASE.path, request)
    }

    /// `GET /api/policies`: every published retention policy.
    pub fn policies(&self) -> Result<Vec<SourcePolicy>, Error> {
        self.get(path::POLICIES.path, None)
    }

    /// `GET /api/repositories`: every published repository with the hosts
    /// that use it.
    pub fn repositories(&self) -> Result<Vec<KnownRepository>, Error> {
        self.get(path::REPOSITORIES.path, None)
    }

    /// `GET /api/proofs`: where each repository's rotated check stands,
    /// and when atoms were last restored by a drill.
    pub fn proofs(&self) -> Result<Proofs, Error> {
        self.get(path::PROOFS.path, None)
    }

    /// `POST /api/proofs/read`: a slice of a repository was read back.
    pub fn record_slice(&self, read: &SliceRead) -> Result<Proof, Error> {
        self.post(path::RECORD_SLICE.path, read)
    }

    /// `POST /api/leases/release`: ends this host's lease.
    pub fn release_lease(&self, request: &ReleaseRequest) -> Result<(), Error> {
        self.post::<_, serde_json::Value>(path::RELEASE_LEASE.path, request)
            .map(drop)
    }

    /// `POST /api/restore_requests` (admin): files `request`; returns it
    /// as stored, with its state.
    pub fn add_restore_request(&self, request: &RestoreRequest) -> Result<RestoreRequest, Error> {
        self.post(path::ADD_RESTORE_REQUEST.path, request)
    }

    /// `GET /api/restore_requests/next`: `host`'s oldest pending restore
    /// request, now marked running.
    pub fn next_restore_request(&self, host: &str) -> Result<Option<RestoreRequest>, Error> {
        self.get(path::NEXT_RESTORE_REQUEST.path, Some(("host", host)))
    }

    /// `POST /api/restore_requests/abandon`: fails `host`'s requests left
    /// `running`; returns how many.
    pub fn abandon_restore_requests(&self, host: &str) -> Result<usize, Error> {
        #[derive(serde::Deserialize)]
        struct Answer {
            failed: usize,
        }
        let request = AbandonRequest {
            host: Some(host.to_string()),
        };
        let answer: Answer = self.post(path::ABANDON_RESTORE_REQUESTS.path, &request)?;
        Ok(answer.failed)
    }

    /// `POST /api/restore_requests/{id}/status`.
    pub fn update_restore_request(&self, id: &str, status: &RestoreStatus) -> Result<(), Error> {
        self.post::<_, serde_json::Value>(&path::RESTORE_REQUEST_STATUS.path_with(id), status)
            .map(drop)
    }

    /// `GET /api/restore_requests/{id}`; `None` if there is no such request.
    pub fn restore_request(&self, id: &str) -> Result<Option<RestoreRequest>, Error> {
        match self.get(&path::RESTORE_REQUEST.path_with(id), None) {
            Err(Error::Rejected { status: 404, .. }) => Ok(None),
            other => other,
        }
    }

    fn get<R: DeserializeOwned>(
        &self,
        path: &str,
        query: Option<(&str, &str)>,
    ) -> Result<R, Error> {
        let mut request = self.agent.get(format!("{}{path}", self.base));
        if let Some((name, value)) = query {
            request = request.query(name, value);
        }
        if let Some(token) = &self.token {
            request = request.header("Authorization", token.bearer());
        }
        answer(
            request.call(),
            &format!("{}{path}", crate::base::uri::mask(&self.base)),
        )
    }

    fn post<T: Serialize, R: DeserializeOwned>(&self, path: &str, body: &T) -> Result<R, Error> {
        let body = serde_json::to_vec(body)
            .map_err(|e| Error::Protocol(format!("cannot encode the request: {e}")))?;
        let mut request = self
            .agent
            .post(format!("{}{path}", self.base))
            .content_type("application/json");
        if let Some(token) = &self.token {
            request = request.header("Authorization", token.bearer());
        }
        answer(
            request.send(&body[..]),
            &format!("{}{path}", crate::base::uri::mask(&self.base)),
        )
    }
}

/// Hands each element of a JSON array to a function until it says stop.
struct Each<'f, T>(&'f mut dyn FnMut(T) -> bool);

impl<'de, T: DeserializeOwned> Visitor<'de> for Each<'_, T> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(item) = seq.next_element()? {
            if !(self.0)(item) {
                return Err(de::Error::custom("stopped"));
            }
        }
        Ok(())
    }
}

/// Sorts out what came back from `path` (the URL, for messages).
fn answer<R: DeserializeOwned>(
    result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    path: &str,
) -> Result<R, Error> {
    let mut response = checked(result, path)?;
    // No content: `null`, which only an `Option` takes.
    if response.status().as_u16() == 204 {
        return serde_json::from_str("null").map_err(|e| Error::Protocol(format!("{path}: {e}")));
    }
    response
        .body_mut()
        .with_config()
        .limit(ANSWER_LIMIT)
        .read_json()
        .map_err(|e| match e {
            // Cut short on its way: a transport error like any other.
            ureq::Error::Json(e) if e.is_eof() || e.is_io() => {
                Error::Unavailable(format!("{path}: answer cut short: {e}"))
            }
            ureq::Error::Json(e) => Error::Protocol(format!("{path}: {e}")),
            e => Error::Unavailable(format!("{path}: {e}")),
        })
}

/// The answer from `path` if it is a success (2xx), else why not.
fn checked(
    result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    path: &str,
) -> Result<ureq::http::Response<ureq::Body>, Error> {
    let mut response = result.map_err(|e| Error::Unavailable(format!("{path}: {e}")))?;
    let status = response.status().as_u16();
    if (200..300).contains(&status) {
        return Ok(response);
    }
    let text = response
        .body_mut()
        .with_config()
        .limit(ERROR_LIMIT)
        .lossy_utf8(true)
        .read_to_string()
        .unwrap_or_default();
    let message = reason(&text, status);
    if status >= 500 || status == 408 || status == 429 {
        Err(Error::Unavailable(format!(
            "{path}: answered {status}: {message}"
        )))
    } else {
        Err(Error::Rejected {
            status,
            message: format!("{path}: {message}"),
        })
    }
}

/// The one-line reason in an error answer: its `error` field, or the start of
/// its text (a proxy's HTML page, say).
fn reason(text: &str, status: u16) -> String {
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_str(text) {
        if let Some(serde_json::Value::String(msg)) = map.get("error") {
            return msg.clone();
        }
    }
    // A proxy's HTML error page says it best in its title.
    let text = match (text.find("<title>"), text.find("</title>")) {
        (Some(start), Some(end)) if start + 7 <= end => &text[start + 7..end],
        _ => text,
    };
    let line: String = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(200)
        .collect();
    if line.is_empty() {
        format!("HTTP status {status}")
    } else {
        line
    }
}

/// The TLS settings of `config`: the system's roots unless a CA is given,
/// and a client certificate when both `cert` and `key` are.
fn tls(config: &config::Tls) -> Result<TlsConfig, Error> {
    let mut builder = TlsConfig::builder();
    if let Some(ca) = &config.ca {
        let certs = read_certs(ca)?;
        if certs.is_empty() {
            return Err(Error::Setup(format!("tls.ca {ca} holds no certificate")));
        }
        builder = builder.root_certs(RootCerts::new_with_certs(&certs));
    }
    match (&config.cert, &config.key) {
        (Some(cert), Some(key)) => {
            let chain = read_certs(cert)?;
            if chain.is_empty() {
                return Err(Error::Setup(format!(
                    "tls.cert {cert} holds no certificate"
                )));
            }
            let pem = std::fs::read(key)
                .map_err(|e| Error::Setup(format!("cannot read tls.key {key}: {e}")))?;
            let key = ureq::tls::PrivateKey::from_pem(&pem)
                .map_err(|e| Error::Setup(format!("tls.key {key}: {e}")))?;
            builder = builder.client_cert(Some(ClientCert::new_with_certs(&chain, key)));
        }
        (None, None) => {}
        _ => {
            return Err(Error::Setup(
                "metadb.tls needs both cert and key for a client certificate".into(),
            ))
        }
    }
    Ok(builder.build())
}

fn read_certs(path: &str) -> Result<Vec<Certificate<'static>>, Error> {
    let pem = std::fs::read(path).map_err(|e| Error::Setup(format!("cannot read {path}: {e}")))?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(PemItem::Certificate(cert)) => certs.push(cert),
            Ok(_) => {}
            Err(e) => return Err(Error::Setup(format!("{path}: {e}"))),
        }
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str) -> config::Connection {
        config::Connection {
            url: url.into(),
            token: None,
            tls: config::Tls::default(),
            request_max_timeout: Duration::from_secs(5),
        }
    }

    #[test]
    fn urls_in_messages_carry_no_credentials() {
        assert_eq!(
            crate::base::uri::mask("https://u:pw@metadb:5332/x"),
            "https://u:***@metadb:5332/x"
        );
        assert_eq!(
            crate::base::uri::mask("http://metadb:5332"),
            "http://metadb:5332"
        );
        assert_eq!(
            crate::base::uri::mask("http://metadb/a@b"),
            "http://metadb/a@b"
        );
    }

    #[test]
    fn reasons_come_from_the_error_field_or_the_text() {
        assert_eq!(reason(r#"{"error":"bad token"}"#, 401), "bad token");
        assert_eq!(
            reason(
                "<html>\n<head><title>502 Bad Gateway</title></head></html>",
                502
            ),
            "502 Bad Gateway"
        );
        assert_eq!(reason("plain\ntext  here", 500), "plain text here");
        assert_eq!(reason("", 503), "HTTP status 503");
    }

    #[test]
    fn setup_errors() {
        assert!(matches!(
            Client::new(&config("ftp://x")),
            Err(Error::Setup(_))
        ));
        let mut c = config("https://127.0.0.1:1");
        c.tls.cert = Some("/nonexistent/cert.pem".into());
        assert!(matches!(Client::new(&c), Err(Error::Setup(_))));
    }

    #[test]
    fn the_token_never_shows() {
        let dir = std::env::temp_dir().join(format!("tabacco-client-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("token");
        std::fs::write(&path, "very-secret-token\n").unwrap();
        // Nothing listens there once the listener is dropped.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut c = config(&format!("http://127.0.0.1:{port}"));
        c.token = Some(Token::read("metadb.token_file", &path).unwrap());
        let client = Client::new(&c).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(!format!("{client:?}").contains("very-secret"));
        let err = client
            .for_each_found(&FindRequest::default(), |_| Ok::<(), Error>(()))
            .unwrap_err();
        assert!(matches!(err, Error::Unavailable(_)), "{err:?}");
        assert!(!err.to_string().contains("very-secret"), "{err}");
    }
}
