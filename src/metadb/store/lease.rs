//! Leases in the store: which host maintains (prunes, checks) a
//! repository until when. A lease is taken if it is free, expired or the
//! taker's own, in one write, so two hosts asking at once never both get
//! it. Times are whole seconds, and a lease holds through the second it
//! expires in, so that it lasts at least its ttl (and at most a second
//! more). Who may ask for whom is the server's business.

use crate::metadb::store::record;
use crate::metadb::store::{format_time, Error, Store};
use crate::wire::api::{Lease, LeaseRequest, ReleaseRequest};
use rusqlite::{params, OptionalExtension};

/// Longest lease a host may take, in seconds: a day. A dead host's lease
/// ends at most this long after its last renewal.
pub const MAX_LEASE_SECS: u64 = 86_400;

impl Store {
    /// Gives `req.holder` the lease `req.name` until `now + req.ttl` if it
    /// is free, expired or already its own; answers who holds it now.
    pub fn take_lease(&mut self, req: &LeaseRequest, now: i64) -> Result<Lease, Error> {
        check(&req.name, &req.holder)?;
        if !(1..=MAX_LEASE_SECS).contains(&req.ttl) {
            return Err(Error::InvalidRequest(format!(
                "lease ttl {} is not between 1 and {MAX_LEASE_SECS} seconds",
                req.ttl
            )));
        }
        let expires = now.saturating_add_unsigned(req.ttl);
        let tx = self.begin()?;
        tx.execute(
            "INSERT INTO leases (name, holder, expires) VALUES (?1, ?2, ?3)
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires = excluded.expires
             WHERE leases.holder = excluded.holder OR leases.expires < ?4",
            params![req.name, req.holder, expires, now],
        )?;
        let (holder, expires): (String, i64) = tx.query_row(
            "SELECT holder, expires FROM leases WHERE name = ?1",
            [&req.name],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )?;
        tx.commit()?;
        Ok(Lease {
            granted: holder == req.holder,
            holder,
            expires: format_time(expires)?,
        })
    }

    /// Ends `req.holder`'s lease `req.name`; another holder's stays.
    pub fn release_lease(&mut self, req: &ReleaseRequest) -> Result<(), Error> {
        check(&req.name, &req.holder)?;
        let tx = self.begin()?;
        tx.execute(
            "DELETE FROM leases WHERE name = ?1 AND holder = ?2",
            params![req.name, req.holder],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Whether `holder` holds lease `name` at `now`.
    pub fn holds_lease(&self, name: &str, holder: &str, now: i64) -> Result<bool, Error> {
        let held: Option<i64> = self
            .conn
            .query_row(
                "SELECT 1 FROM leases WHERE name = ?1 AND holder = ?2 AND expires >= ?3",
                params![name, holder, now],
                |row| row.get(0),
            )
            .optional()?;
        Ok(held.is_some())
    }
}

fn check(name: &str, holder: &str) -> Result<(), Error> {
    record::id("lease name", name).map_err(Error::InvalidRequest)?;
    record::host(holder).map_err(Error::InvalidRequest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(holder: &str, ttl: u64) -> LeaseRequest {
        LeaseRequest {
            name: "repo1".into(),
            holder: holder.into(),
            ttl,
        }
    }

    #[test]
    fn one_holder_at_a_time_until_it_expires_or_is_released() -> Result<(), Error> {
        let mut store = Store::open_in_memory()?;
        assert!(store.take_lease(&ask("web1", 60), 1000)?.granted);
        let refused = store.take_lease(&ask("web2", 60), 1010)?;
        assert_eq!((refused.granted, refused.holder.as_str()), (false, "web1"));
        assert!(store.holds_lease("repo1", "web1", 1010)?);
        // Renewed by its holder; expired, anyone's.
        let renewed = store.take_lease(&ask("web1", 60), 1050)?;
        assert_eq!(renewed.expires, format_time(1110)?);
        assert!(!store.take_lease(&ask("web2", 60), 1110)?.granted);
        assert!(store.holds_lease("repo1", "web1", 1110)?);
        assert!(store.take_lease(&ask("web2", 60), 1111)?.granted);
        assert!(!store.holds_lease("repo1", "web1", 1111)?);
        // Released by another: stays; by its holder: free.
        let release = |holder: &str| ReleaseRequest {
            name: "repo1".into(),
            holder: holder.into(),
        };
        store.release_lease(&release("web1"))?;
        assert!(!store.take_lease(&ask("web1", 60), 1112)?.granted);
        store.release_lease(&release("web2"))?;
        assert!(store.take_lease(&ask("web1", 60), 1112)?.granted);
        assert!(matches!(
            store.take_lease(&ask("web1", 0), 1112),
            Err(Error::InvalidRequest(_))
        ));
        Ok(())
    }
}
