//! What goes in and out of an endpoint: a request's JSON body decoded (or
//! the 400 saying why not), and the answers: a JSON value, an error
//! (`{"error": "one line"}` with its status, also for a store's failure),
//! or a JSON array streamed as its items are read.
//!
//! A body reaches here whole and within the policy's `max_body_bytes`: the
//! transport (`http`) reads it, enforces the limit (413) and takes no
//! content encoding but identity; what a request means is `endpoint`'s.

use crate::http::{Body, Response};
use crate::metadb::store;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::io::{self, Write};

/// Decodes a JSON body, or the 400 answer saying why not.
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, Answer> {
    serde_json::from_slice(body).map_err(|e| Answer::error(400, format!("malformed JSON: {e}")))
}

/// An answer held whole: status, body and content type.
pub struct Answer {
    status: u16,
    body: String,
    content_type: &'static str,
}

impl Answer {
    /// `value` as JSON, or a 500 if it cannot be encoded.
    pub fn json(status: u16, value: &impl Serialize) -> Answer {
        match serde_json::to_string(value) {
            Ok(body) => Answer {
                status,
                body,
                content_type: "application/json",
            },
            Err(e) => Answer::error(500, format!("cannot encode the answer: {e}")),
        }
    }

    /// A 200 with the empty JSON object: done, nothing to tell.
    pub fn done() -> Answer {
        Answer::json(200, &serde_json::json!({}))
    }

    /// What a store call returned: a 200 with it as JSON, or its failure's
    /// status.
    pub fn stored<T: Serialize>(result: Result<T, store::Error>) -> Answer {
        match result {
            Ok(value) => Answer::json(200, &value),
            Err(e) => Answer::store_error(&e),
        }
    }

    /// What a store call that returns nothing returned: [`Answer::done`],
    /// or its failure's status.
    pub fn recorded(result: Result<(), store::Error>) -> Answer {
        match result {
            Ok(()) => Answer::done(),
            Err(e) => Answer::store_error(&e),
        }
    }

    /// An error: `{"error": "one line"}`.
    pub fn error(status: u16, message: impl Into<String>) -> Answer {
        let message: String = message.into();
        let body = serde_json::json!({ "error": message.replace('\n', " ") }).to_string();
        Answer {
            status,
            body,
            content_type: "application/json",
        }
    }

    /// A store's failure: 400 for a request it refuses, 409 for a
    /// conflict, 503 while the database is busy, 500 (logged) otherwise.
    pub fn store_error(e: &store::Error) -> Answer {
        match e {
            store::Error::InvalidRequest(_) => Answer::error(400, e.to_string()),
            store::Error::Conflict(_) => Answer::error(409, e.to_string()),
            store::Error::Sqlite(rusqlite::Error::SqliteFailure(f, _))
                if matches!(
                    f.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                ) =>
            {
                Answer::error(503, e.to_string())
            }
            store::Error::Sqlite(_) => {
                log::error!("metadb: {e}");
                Answer::error(500, e.to_string())
            }
        }
    }

    /// Any other text.
    pub fn text(status: u16, body: String, content_type: &'static str) -> Answer {
        Answer {
            status,
            body,
            content_type,
        }
    }

    /// The answer with further `headers`.
    pub fn with_headers(self, headers: Vec<(&'static str, String)>) -> Response<'static> {
        Response {
            status: self.status,
            content_type: self.content_type,
            body: self.body.into(),
            headers,
        }
    }
}

impl From<Answer> for Response<'_> {
    fn from(answer: Answer) -> Self {
        answer.with_headers(Vec::new())
    }
}

/// A JSON array whose items `walk` hands, one at a time, to the function
/// it is given: each written as it comes, by `encode` (`serialized`, or an
/// item's own faster writer). A failure of the database halfway (logged
/// with `what`) cuts the answer short.
pub fn json_array<'a, T: 'a>(
    what: String,
    encode: fn(&T, &mut Vec<u8>) -> serde_json::Result<()>,
    walk: impl FnOnce(&mut dyn FnMut(&T) -> Result<(), Cut>) -> Result<(), Cut> + 'a,
) -> Response<'a> {
    let stream = move |out: &mut dyn Write| -> io::Result<()> {
        out.write_all(b"[")?;
        // Each item is made here and written whole: serde_json's many small
        // writes straight to `out` took a fifth of a fleet's status.
        let mut json = Vec::new();
        let mut each = |item: &T| -> Result<(), Cut> {
            if !json.is_empty() {
                json.clear();
                json.push(b',');
            }
            encode(item, &mut json).map_err(io::Error::from)?;
            out.write_all(&json)?;
            Ok(())
        };
        match walk(&mut each) {
            Ok(()) => out.write_all(b"]"),
            Err(Cut::Io(e)) => Err(e),
            Err(Cut::Store(e)) => {
                log::error!("metadb: {what}: {e}; answer cut short");
                Err(io::Error::other(e.to_string()))
            }
        }
    };
    Response {
        status: 200,
        content_type: "application/json",
        body: Body::Stream(Box::new(stream)),
        headers: Vec::new(),
    }
}

/// An item of [`json_array`] as serde_json writes it.
pub fn serialized<T: Serialize>(item: &T, out: &mut Vec<u8>) -> serde_json::Result<()> {
    serde_json::to_writer(out, item)
}

/// Why a streamed answer stopped early.
pub enum Cut {
    /// The client went away or stopped reading.
    Io(io::Error),
    /// The database failed halfway.
    Store(store::Error),
}

impl From<io::Error> for Cut {
    fn from(e: io::Error) -> Cut {
        Cut::Io(e)
    }
}

impl From<store::Error> for Cut {
    fn from(e: store::Error) -> Cut {
        Cut::Store(e)
    }
}
