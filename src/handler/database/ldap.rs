//! The `ldap` handler's commands: one atom per suffix the server names in
//! its root DSE (`namingContexts`), read with `ldapsearch` in LDIF (user
//! attributes: the operational ones are made again at load), ending with
//! its count of entries. Bound as `user` (a DN) with the password in
//! `credentials_file` (`ldapsearch -y`: the whole file is the password,
//! so no final newline), or by SASL EXTERNAL over `ldapi` without one.
//!
//! Restoring a suffix deletes its tree and adds the dump's entries
//! (`ldapdelete -r`, `ldapadd`); a suffix is the server's configuration,
//! so it restores under its own name only. The proof loads the dump with
//! `slapadd` into a scratch server (a `slapd.conf` with the `schema`
//! files, by default those of Debian's slapd), checks that it holds as
//! many entries as the dump says, and removes it.

use super::{Commands, Connection};
use crate::base::quote::sh;
use crate::handler::Error;

/// The schema files a scratch server loads unless `params.schema` says.
const SCHEMA: [&str; 4] = [
    "/etc/ldap/schema/core.schema",
    "/etc/ldap/schema/cosine.schema",
    "/etc/ldap/schema/nis.schema",
    "/etc/ldap/schema/inetorgperson.schema",
];

/// The URI of `connection`: `ldapi` through its socket (or the default
/// one), else `ldap://host:port`.
fn uri(connection: &Connection) -> String {
    match (&connection.host, &connection.socket) {
        (Some(host), _) => match connection.port {
            Some(port) => format!("ldap://{host}:{port}"),
            None => format!("ldap://{host}"),
        },
        (None, Some(socket)) => {
            let encoded: String = socket
                .bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect();
            format!("ldapi://{encoded}")
        }
        (None, None) => "ldapi:///".into(),
    }
}

pub fn commands(connection: &Connection, schema: Option<&[String]>) -> Result<Commands, Error> {
    let schema: Vec<String> = match schema {
        Some(files) => files.to_vec(),
        None => SCHEMA.iter().map(|f| f.to_string()).collect(),
    };
    if let Some(file) = schema.iter().find(|f| !f.starts_with('/')) {
        return Err(Error::Invalid(format!(
            "params.schema: {file:?} is not an absolute path"
        )));
    }
    let run = connection.run_as();
    let auth = match (&connection.user, &connection.credentials_file) {
        (Some(dn), Some(file)) => format!("-x -D {} -y {}", sh(dn), sh(file)),
        (Some(_), None) => {
            return Err(Error::Invalid(
                "the ldap handler binds as params.user with the password in params.credentials_file: give both".into(),
            ))
        }
        (None, _) => "-Q -Y EXTERNAL".into(),
    };
    let at = format!("-H {} {auth}", sh(&uri(connection)));
    let backup =
        format!("{run}ldapsearch -L -o ldif-wrap=no {at} -b ${{atom.name}} '(objectClass=*)' '*'");
    let restore = format!(
        "if [ ${{restore.name}} != ${{atom.name}} ]; then \
         echo 'tabacco: an LDAP suffix restores under its own name only' >&2; exit 2; fi; \
         {run}ldapdelete {at} -r ${{atom.name}}; s=$?; \
         if [ $s != 0 ] && [ $s != 32 ]; then exit $s; fi; {run}ldapadd {at}"
    );
    let includes: Vec<String> = schema.iter().map(|f| format!("include {f}")).collect();
    let proof = format!(
        "d=${{proof.dir}}; mkdir \"$d/db\" || exit; \
         {{ printf '%s\\n' {} 'modulepath /usr/lib/ldap' 'moduleload back_mdb' 'database mdb' 'maxsize 1099511627776'; \
         printf 'suffix \"%s\"\\n' \"$(printf '%s' ${{atom.name}} | sed 's/[\\\\\"]/\\\\&/g')\"; \
         printf 'directory %s\\n' \"$d/db\"; }} > \"$d/slapd.conf\" || exit; \
         awk -v count=\"$d/count\" '/^version: / {{ next }} /^# numEntries: / {{ print $3 > count }} {{ print }}' \
         | slapadd -f \"$d/slapd.conf\" -b ${{atom.name}} || exit; \
         if [ ! -e \"$d/count\" ]; then echo 'the dump is cut short: it does not end with its number of entries' >&2; exit 1; fi; \
         n=$(slapcat -f \"$d/slapd.conf\" -b ${{atom.name}} | grep -c '^dn:'); \
         if [ \"$n\" != \"$(cat \"$d/count\")\" ]; then echo \"slapadd loaded $n entries, the dump has $(cat \"$d/count\")\" >&2; exit 1; fi; \
         echo \"entries $n\"",
        includes.iter().map(|i| sh(i)).collect::<Vec<_>>().join(" ")
    );
    let atoms = format!(
        "out=$({run}ldapsearch -LLL -o ldif-wrap=no {at} -s base -b '' namingContexts) || exit; \
         printf '%s\\n' \"$out\" | sed -n 's/^namingContexts: //p'"
    );
    Ok(Commands {
        backup,
        restore,
        proof,
        atoms: Some(atoms),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_socket_is_percent_encoded_into_an_ldapi_uri() {
        let socket = Connection {
            socket: Some("/run/slapd/ldapi".into()),
            ..Connection::default()
        };
        assert_eq!(uri(&socket), "ldapi://%2Frun%2Fslapd%2Fldapi");
        let host = Connection {
            host: Some("ldap1".into()),
            port: Some(389),
            ..Connection::default()
        };
        assert_eq!(uri(&host), "ldap://ldap1:389");
        assert_eq!(uri(&Connection::default()), "ldapi:///");
    }
}
