//! Restore requests in the store: an operator's request for a host's
//! agent to restore (`restore --remote`), filed as `pending`, taken by that
//! agent one at a time as `running`, then finished with its outcome; the
//! request itself is kept as JSON, its state beside it.

use crate::metadb::store::record;
use crate::metadb::store::{format_time, Error, Store};
use crate::wire::model::{RestoreRequest, RestoreState};
use rusqlite::{params, OptionalExtension};

impl Store {
    /// Files a restore request for its host's agent, as `pending`. Posting
    /// the same id again changes nothing.
    pub fn add_restore_request(&mut self, request: &RestoreRequest, now: i64) -> Result<(), Error> {
        record::check_restore_request(request).map_err(Error::InvalidRequest)?;
        let json =
            serde_json::to_string(request).map_err(|e| Error::InvalidRequest(e.to_string()))?;
        self.conn.execute(
            "INSERT INTO restore_requests (id, host, created, updated, state, message, request)
             VALUES (?1, ?2, ?3, ?3, ?5, '', ?4) ON CONFLICT (id) DO NOTHING",
            params![
                request.id,
                request.host,
                now,
                json,
                RestoreState::Pending.name()
            ],
        )?;
        Ok(())
    }

    /// The oldest pending restore request of `host`, now marked `running`.
    pub fn next_restore_request(
        &mut self,
        host: &str,
        now: i64,
    ) -> Result<Option<RestoreRequest>, Error> {
        let tx = self.begin()?;
        let id: Option<String> = tx
            .query_row(
                "SELECT id FROM restore_requests WHERE host = ?1 AND state = ?2
                 ORDER BY created, id LIMIT 1",
                [host, RestoreState::Pending.name()],
                |row| row.get(0),
            )
            .optional()?;
        let Some(id) = id else { return Ok(None) };
        tx.execute(
            "UPDATE restore_requests SET state = ?3, updated = ?2 WHERE id = ?1",
            params![id, now, RestoreState::Running.name()],
        )?;
        tx.commit()?;
        self.restore_request(&id)
    }

    /// Fails `host`'s restore requests still marked `running`: called by its
    /// agent when it starts, since a request it was carrying out when it
    /// died would otherwise stay `running` for ever. Returns how many.
    pub fn abandon_restore_requests(&mut self, host: &str, now: i64) -> Result<usize, Error> {
        Ok(self.conn.execute(
            "UPDATE restore_requests SET state = ?3, updated = ?2,
                 message = 'abandoned: the agent stopped while carrying it out'
             WHERE host = ?1 AND state = ?4",
            params![
                host,
                now,
                RestoreState::Failed.name(),
                RestoreState::Running.name()
            ],
        )?)
    }

    /// Records the progress or outcome of `host`'s restore request `id`.
    /// Returns false if `host` has no such request.
    pub fn update_restore_request(
        &mut self,
        host: &str,
        id: &str,
        state: RestoreState,
        message: &str,
        now: i64,
    ) -> Result<bool, Error> {
        if state == RestoreState::Pending {
            return Err(Error::InvalidRequest(format!(
                "a restore request cannot be set back to {state}"
            )));
        }
        record::message(message).map_err(Error::InvalidRequest)?;
        let updated = self.conn.execute(
            "UPDATE restore_requests SET state = ?3, message = ?4, updated = ?5
             WHERE id = ?1 AND host = ?2",
            params![id, host, state.name(), message, now],
        )?;
        Ok(updated == 1)
    }

    /// Restore request `id` with its current state.
    pub fn restore_request(&self, id: &str) -> Result<Option<RestoreRequest>, Error> {
        let row: Option<(String, String, String, i64, i64)> = self
            .conn
            .query_row(
                "SELECT request, state, message, created, updated FROM restore_requests WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .optional()?;
        let Some((json, state, message, created, updated)) = row else {
            return Ok(None);
        };
        let mut request: RestoreRequest = serde_json::from_str(&json)
            .map_err(|e| Error::InvalidRequest(format!("stored request {id}: {e}")))?;
        request.state = RestoreState::parse(&state).ok_or_else(|| {
            Error::InvalidRequest(format!("stored request {id}: unknown state {state:?}"))
        })?;
        request.message = message;
        request.created = format_time(created)?;
        request.updated = format_time(updated)?;
        Ok(Some(request))
    }
}
