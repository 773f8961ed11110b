//! How an agent or a command reaches a remote metadb server: its address,
//! token, TLS files and timeout, as the agent's `config` builds them from
//! `metadb:` in agent.yml.

use crate::base::token::Token;
use std::time::Duration;

/// How an agent reaches a remote metadb server (`metadb:` in agent.yml,
/// built by `config`).
#[derive(Clone, Debug)]
pub struct Connection {
    pub url: String,
    /// Read from `token_file` when the configuration is loaded.
    pub token: Option<Token>,
    pub tls: Tls,
    pub request_max_timeout: Duration,
}

/// The TLS files of a [`Connection`], read when its client is made.
#[derive(Clone, Debug, Default)]
pub struct Tls {
    /// A private CA's certificates, trusted besides the system's.
    pub ca: Option<String>,
    /// A client certificate chain and its key, for mTLS fronts.
    pub cert: Option<String>,
    pub key: Option<String>,
}
