//! The shipped database handlers: `postgresql`, `mariadb` (and `mysql`,
//! the same under MySQL's program names), `sqlite` and `ldap`. Each is a
//! pipe handler whose commands are written here from typed params (where
//! the server is, as whom, which databases), so that an operator gets
//! consistent dumps, one atom per database, restores by name and a proof
//! that a dump loads without writing a command; `tabacco check` shows
//! the commands. A source's own `backup_command`, `restore_command` or
//! `proof_command` replaces the one written here, and a handler template
//! of the same name (`handlers/*.yml`) replaces the whole handler.
//!
//! What each server's commands do is its module's; this one checks the
//! params they share ([`Connection`]), and keeps which of the databases
//! that discovery finds a source backs up ([`Selection`]).

mod ldap;
mod mariadb;
mod postgresql;
mod sqlite;

use crate::base::glob;
use crate::handler::{Error, Params};
use std::path::Path;

/// The names of the shipped handlers.
pub const SHIPPED: [&str; 5] = ["postgresql", "mariadb", "mysql", "sqlite", "ldap"];

/// A server a shipped handler backs up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Server {
    Postgresql,
    /// MariaDB, or MySQL (`mysql`: the programs `mysql` and `mysqldump`).
    Mariadb {
        mysql: bool,
    },
    Sqlite,
    Ldap,
}

impl Server {
    /// The server of shipped handler `name`.
    pub fn named(name: &str) -> Option<Server> {
        match name {
            "postgresql" => Some(Server::Postgresql),
            "mariadb" => Some(Server::Mariadb { mysql: false }),
            "mysql" => Some(Server::Mariadb { mysql: true }),
            "sqlite" => Some(Server::Sqlite),
            "ldap" => Some(Server::Ldap),
            _ => None,
        }
    }

    /// The handler's name.
    pub fn name(self) -> &'static str {
        match self {
            Server::Postgresql => "postgresql",
            Server::Mariadb { mysql: false } => "mariadb",
            Server::Mariadb { mysql: true } => "mysql",
            Server::Sqlite => "sqlite",
            Server::Ldap => "ldap",
        }
    }
}

/// What a shipped handler's commands are, as written from its params.
pub struct Commands {
    pub backup: String,
    pub restore: String,
    pub proof: String,
    /// Lists the server's databases, one a line; none for a handler whose
    /// atoms are listed (`sqlite`).
    pub atoms: Option<String>,
}

/// The commands of `server` from `params`, checked.
pub fn commands(server: Server, params: &Params) -> Result<Commands, Error> {
    let connection = Connection::new(server, params)?;
    Ok(match server {
        Server::Postgresql => postgresql::commands(&connection),
        Server::Mariadb { mysql } => mariadb::commands(&connection, mysql),
        Server::Sqlite => sqlite::commands(),
        Server::Ldap => ldap::commands(&connection, params.schema.as_deref())?,
    })
}

/// The params a handler that is not a shipped database handler takes
/// none of; an error names the first given.
pub fn refuse_params(params: &Params, handler: &str) -> Result<(), Error> {
    let given = [
        ("host", params.host.is_some()),
        ("port", params.port.is_some()),
        ("socket", params.socket.is_some()),
        ("user", params.user.is_some()),
        ("credentials_file", params.credentials_file.is_some()),
        ("run_as", params.run_as.is_some()),
        ("include", params.include.is_some()),
        ("schema", params.schema.is_some()),
    ];
    match given.iter().find(|(_, given)| *given) {
        Some((key, _)) => Err(Error::Invalid(format!(
            "the {handler} handler takes no params.{key} (the database handlers do)"
        ))),
        None => Ok(()),
    }
}

/// Where a server is and as whom tabacco connects, checked; each value as
/// written (the server's module quotes it).
#[derive(Debug, Default)]
pub struct Connection {
    pub host: Option<String>,
    pub port: Option<u16>,
    /// An absolute path: PostgreSQL's socket directory, MariaDB's socket
    /// file, slapd's `ldapi` socket.
    pub socket: Option<String>,
    /// PostgreSQL and MariaDB: the user; LDAP: the DN bound as.
    pub user: Option<String>,
    /// An absolute path: PostgreSQL's passfile, MariaDB's option file,
    /// LDAP's password file.
    pub credentials_file: Option<String>,
    /// A local account the server's programs run as (`runuser -u`).
    pub run_as: Option<String>,
}

impl Connection {
    fn new(server: Server, params: &Params) -> Result<Connection, Error> {
        let invalid = |message: String| Err(Error::Invalid(message));
        if params.path.is_some() {
            return invalid(format!(
                "the {} handler takes no params.path (an atom's path is its own)",
                server.name()
            ));
        }
        if !crate::handler::exclude::Excludes::new(&Params {
            exclude: None,
            ..params.clone()
        })?
        .is_empty()
        {
            return invalid(format!(
                "the {} handler takes no file exclusion options",
                server.name()
            ));
        }
        let connection = Connection {
            host: params.host.clone(),
            port: params.port,
            socket: params.socket.clone(),
            user: params.user.clone(),
            credentials_file: params.credentials_file.clone(),
            run_as: params.run_as.clone(),
        };
        if server == Server::Sqlite {
            refuse_params(params, "sqlite")?;
            return Ok(connection);
        }
        if params.schema.is_some() && server != Server::Ldap {
            return invalid(format!(
                "the {} handler takes no params.schema (the ldap handler does)",
                server.name()
            ));
        }
        if connection.host.is_some() && connection.socket.is_some() {
            return invalid("give params.host or params.socket, not both".into());
        }
        for (key, value) in [
            ("host", &connection.host),
            ("user", &connection.user),
            ("run_as", &connection.run_as),
        ] {
            if let Some(value) = value.as_deref() {
                if value.is_empty() || value.chars().any(char::is_control) {
                    return invalid(format!(
                        "params.{key}: {value:?} is empty or holds control characters"
                    ));
                }
            }
        }
        for (key, path) in [
            ("socket", &connection.socket),
            ("credentials_file", &connection.credentials_file),
        ] {
            if let Some(path) = path.as_deref() {
                if !Path::new(path).is_absolute() || path.chars().any(char::is_control) {
                    return invalid(format!(
                        "params.{key} must be an absolute path, not {path:?}"
                    ));
                }
            }
        }
        Ok(connection)
    }

    /// `runuser -u USER -- ` when the programs run as another account.
    pub fn run_as(&self) -> String {
        match &self.run_as {
            Some(user) => format!("runuser -u {} -- ", crate::base::quote::sh(user)),
            None => String::new(),
        }
    }
}

/// Which of the atoms that discovery finds a source backs up: those
/// matching one of `include` (all if none), and none of `exclude`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Selection {
    include: Vec<String>,
    exclude: Vec<String>,
}

impl Selection {
    /// The selection of `params` (`include`, `exclude`), checked; a
    /// server's system databases are excluded unless `exclude` is given.
    pub fn new(server: Server, params: &Params) -> Result<Selection, Error> {
        let system: &[&str] = match server {
            Server::Mariadb { .. } => &["mysql", "sys"],
            _ => &[],
        };
        let include = params.include.clone().unwrap_or_default();
        let exclude = match &params.exclude {
            Some(exclude) => exclude.clone(),
            None => system.iter().map(|s| s.to_string()).collect(),
        };
        for (key, patterns) in [("include", &include), ("exclude", &exclude)] {
            for pattern in patterns {
                glob::check_pattern(pattern)
                    .map_err(|e| Error::Invalid(format!("params.{key}: {e}")))?;
            }
        }
        Ok(Selection { include, exclude })
    }

    /// Whether the atom called `name` is backed up.
    pub fn keeps(&self, name: &str) -> bool {
        let any = |patterns: &[String]| patterns.iter().any(|p| glob::matches(p, name));
        (self.include.is_empty() || any(&self.include)) && !any(&self.exclude)
    }
}

/// `KEY=VALUE` with the value quoted for `/bin/sh`.
fn assign(key: &str, value: &str) -> String {
    format!("{key}={}", crate::base::quote::sh(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(yaml: &str) -> Params {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn system_databases_are_left_out_unless_exclude_says_otherwise() {
        let mariadb = Server::Mariadb { mysql: false };
        let default = Selection::new(mariadb, &params("{}")).unwrap();
        assert!(default.keeps("shop") && !default.keeps("mysql") && !default.keeps("sys"));
        let all = Selection::new(mariadb, &params("{exclude: []}")).unwrap();
        assert!(all.keeps("mysql"));
        let some = Selection::new(
            Server::Postgresql,
            &params("{include: [app_*], exclude: [app_tmp]}"),
        )
        .unwrap();
        assert!(some.keeps("app_1") && !some.keeps("app_tmp") && !some.keeps("other"));
        assert!(Selection::new(Server::Postgresql, &params("{include: ['[']}")).is_err());
    }

    #[test]
    fn connection_params_are_checked() {
        let refused = |server, yaml| match commands(server, &params(yaml)) {
            Err(e) => e.to_string(),
            Ok(_) => String::from("accepted"),
        };
        assert_eq!(
            refused(Server::Postgresql, "{host: db, socket: /run/postgresql}"),
            "give params.host or params.socket, not both"
        );
        assert_eq!(
            refused(Server::Postgresql, "{credentials_file: pgpass}"),
            "params.credentials_file must be an absolute path, not \"pgpass\""
        );
        assert_eq!(
            refused(Server::Sqlite, "{host: db}"),
            "the sqlite handler takes no params.host (the database handlers do)"
        );
        assert_eq!(
            refused(Server::Postgresql, "{exclude_caches: true}"),
            "the postgresql handler takes no file exclusion options"
        );
        assert_eq!(
            refused(Server::Postgresql, "{user: \"a\\nb\"}"),
            "params.user: \"a\\nb\" is empty or holds control characters"
        );
    }
}
