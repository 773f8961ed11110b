//! Who a metadb request comes from: bearer tokens, known only by their
//! SHA-256 digests, mapped to a host or to the admin role.
//!
//! The server never keeps a token itself, only its digest, and compares
//! digests in constant time against every configured entry, so neither the
//! configuration nor the timing of a refusal tells anything about a token.
//! What an identity may do is decided by the server; this module only says
//! who is asking.

use sha2::{Digest as _, Sha256};
use std::fmt;

/// A SHA-256 digest of a token.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Digest([u8; 32]);

// Digests are not secret, but they are no one's business in a log either.
impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("Digest(..)")
    }
}

impl Digest {
    /// The digest of `token`.
    pub fn of(token: &str) -> Digest {
        Digest(Sha256::digest(token.as_bytes()).into())
    }

    /// Parses 64 hex digits (either case), as `sha256sum` prints them.
    pub fn parse_hex(text: &str) -> Result<Digest, String> {
        let text = text.trim();
        if text.len() != 64 || !text.is_ascii() {
            return Err(format!(
                "token_sha256 must be 64 hex digits, not {} characters",
                text.chars().count()
            ));
        }
        let mut out = [0u8; 32];
        for (i, pair) in text.as_bytes().chunks(2).enumerate() {
            let hex = std::str::from_utf8(pair).unwrap_or("");
            out[i] = u8::from_str_radix(hex, 16)
                .map_err(|_| "token_sha256 must be 64 hex digits".to_string())?;
        }
        Ok(Digest(out))
    }

    /// Equality that takes the same time whatever the contents.
    fn ct_eq(&self, other: &Digest) -> bool {
        let mut diff = 0u8;
        for (a, b) in self.0.iter().zip(other.0.iter()) {
            diff |= a ^ b;
        }
        std::hint::black_box(diff) == 0
    }
}

/// Who a token belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Identity {
    /// An agent: writes only its own host's records.
    Host(String),
    /// An operator: may do everything.
    Admin,
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Identity::Host(host) => write!(f, "host {host}"),
            Identity::Admin => f.write_str("admin"),
        }
    }
}

/// The configured tokens.
#[derive(Clone, Debug, Default)]
pub struct Tokens {
    entries: Vec<(Digest, Identity)>,
}

impl Tokens {
    /// Tokens from `(digest, identity)` pairs; a digest listed twice is an
    /// error, since it could not say who is asking.
    pub fn new(entries: Vec<(Digest, Identity)>) -> Result<Tokens, String> {
        for (i, (digest, _)) in entries.iter().enumerate() {
            if let Some(j) = entries[..i].iter().position(|(d, _)| d == digest) {
                return Err(format!(
                    "tokens entries {} and {} have the same token",
                    j + 1,
                    i + 1
                ));
            }
        }
        Ok(Tokens { entries })
    }

    /// Whether no token is configured (then every request is trusted).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The identity of the `Authorization` header value `header`, if it
    /// carries a known bearer token. Every entry is compared, match or not.
    pub fn identify(&self, header: Option<&str>) -> Option<Identity> {
        self.identify_digest(&Digest::of(bearer(header?)?))
    }

    /// The identity of the token whose digest is `digest`, if it is still
    /// configured (a console session keeps the digest of the token it was
    /// opened with). Every entry is compared, match or not.
    pub fn identify_digest(&self, digest: &Digest) -> Option<Identity> {
        let mut found = None;
        for (d, identity) in &self.entries {
            if d.ct_eq(digest) && found.is_none() {
                found = Some(identity.clone());
            }
        }
        found
    }
}

/// The token of a `Bearer` authorization value (the scheme is
/// case-insensitive, RFC 7235).
fn bearer(value: &str) -> Option<&str> {
    let value = value.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    // `printf %s secret | sha256sum`
    const SECRET_SHA256: &str = "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b";

    #[test]
    fn digest_of_a_token_matches_sha256sum() {
        assert_eq!(
            Digest::of("secret"),
            Digest::parse_hex(SECRET_SHA256).unwrap()
        );
        let upper = SECRET_SHA256.to_uppercase();
        assert_eq!(Digest::of("secret"), Digest::parse_hex(&upper).unwrap());
    }

    #[test]
    fn malformed_hex_digests_are_refused() {
        for bad in ["", "abc", &SECRET_SHA256[1..], &format!("{SECRET_SHA256}0")] {
            assert!(Digest::parse_hex(bad).is_err(), "{bad:?}");
        }
        let not_hex = format!("zz{}", &SECRET_SHA256[2..]);
        assert!(Digest::parse_hex(&not_hex).is_err());
        let multibyte = format!("é{}", &SECRET_SHA256[2..]);
        assert!(Digest::parse_hex(&multibyte).is_err());
    }

    #[test]
    fn bearer_tokens_identify_their_owner() {
        let tokens = Tokens::new(vec![
            (Digest::of("agent-token"), Identity::Host("web3".into())),
            (Digest::parse_hex(SECRET_SHA256).unwrap(), Identity::Admin),
        ])
        .unwrap();
        assert_eq!(
            tokens.identify(Some("Bearer agent-token")),
            Some(Identity::Host("web3".into()))
        );
        assert_eq!(
            tokens.identify(Some("bearer  secret ")),
            Some(Identity::Admin)
        );
        for bad in [
            None,
            Some(""),
            Some("Bearer"),
            Some("Bearer "),
            Some("Basic secret"),
        ] {
            assert_eq!(tokens.identify(bad), None, "{bad:?}");
        }
        assert_eq!(tokens.identify(Some("Bearer secret2")), None);
    }

    #[test]
    fn a_token_listed_twice_is_refused() {
        let err = Tokens::new(vec![
            (Digest::of("t"), Identity::Admin),
            (Digest::of("t"), Identity::Host("a".into())),
        ])
        .unwrap_err();
        assert_eq!(err, "tokens entries 1 and 2 have the same token");
    }
}
