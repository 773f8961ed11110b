//! The console's browser sessions: a browser that signed in with a token
//! holds a random session id in a cookie, never the token; the server
//! keeps, in memory, the id with the digest of the token it was opened
//! with. A session lasts [`SESSION_TTL`] at most and ends at sign-out; at
//! most [`MAX_SESSIONS`] are kept (the oldest goes first), and none
//! survives a restart. Who the digest is, and so whether the session still
//! opens anything, is asked of the tokens in force at each request
//! (`auth`): a token removed by a reload ends its sessions.

use crate::base::seed;
use crate::metadb::server::auth::Digest;
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long a session lasts after sign-in.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

/// Most sessions kept at once.
pub const MAX_SESSIONS: usize = 1000;

/// Random bytes in a session id.
const ID_BYTES: usize = 32;

/// The sessions open.
#[derive(Default)]
pub struct Sessions {
    open: Mutex<HashMap<String, Session>>,
}

struct Session {
    digest: Digest,
    opened: Instant,
}

impl Sessions {
    /// Opens a session for the token whose digest is `digest`; its id.
    /// Expired sessions go, and the oldest one if [`MAX_SESSIONS`] are
    /// still open.
    pub fn open(&self, digest: Digest) -> Result<String, String> {
        self.open_at(digest, Instant::now())
    }

    fn open_at(&self, digest: Digest, now: Instant) -> Result<String, String> {
        let id = seed::random_hex(ID_BYTES)?;
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.retain(|_, s| !expired(s, now));
        if open.len() >= MAX_SESSIONS {
            let oldest = open
                .iter()
                .min_by_key(|(_, s)| s.opened)
                .map(|(id, _)| id.clone());
            if let Some(oldest) = oldest {
                open.remove(&oldest);
            }
        }
        open.insert(
            id.clone(),
            Session {
                digest,
                opened: now,
            },
        );
        Ok(id)
    }

    /// The digest of session `id`'s token, if it is open.
    pub fn digest(&self, id: &str) -> Option<Digest> {
        self.digest_at(id, Instant::now())
    }

    fn digest_at(&self, id: &str, now: Instant) -> Option<Digest> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        match open.get(id) {
            Some(session) if !expired(session, now) => Some(session.digest),
            Some(_) => {
                open.remove(id);
                None
            }
            None => None,
        }
    }

    /// Ends session `id` (sign-out).
    pub fn close(&self, id: &str) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.remove(id);
    }

    /// How many sessions are held.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

fn expired(session: &Session, now: Instant) -> bool {
    now.saturating_duration_since(session.opened) >= SESSION_TTL
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_opens_expires_and_closes() {
        let sessions = Sessions::default();
        let start = Instant::now();
        let a = sessions.open_at(Digest::of("a"), start).unwrap();
        let b = sessions.open_at(Digest::of("b"), start).unwrap();
        assert_eq!(a.len(), 2 * ID_BYTES);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        assert_eq!(sessions.digest_at(&a, start), Some(Digest::of("a")));
        assert_eq!(sessions.digest("unknown"), None);
        sessions.close(&b);
        assert_eq!(sessions.digest_at(&b, start), None);
        let later = start + SESSION_TTL;
        assert_eq!(sessions.digest_at(&a, later), None, "expired");
        assert_eq!(sessions.len(), 0, "an expired session is forgotten");
    }

    #[test]
    fn the_oldest_session_goes_when_full() {
        let sessions = Sessions::default();
        let start = Instant::now();
        let first = sessions.open_at(Digest::of("t"), start).unwrap();
        for i in 1..MAX_SESSIONS {
            let at = start + Duration::from_millis(i as u64);
            sessions.open_at(Digest::of("t"), at).unwrap();
        }
        assert_eq!(sessions.len(), MAX_SESSIONS);
        let at = start + Duration::from_secs(10);
        let newest = sessions.open_at(Digest::of("t"), at).unwrap();
        assert_eq!(sessions.len(), MAX_SESSIONS);
        assert_eq!(sessions.digest_at(&first, at), None);
        assert!(sessions.digest_at(&newest, at).is_some());
    }
}
