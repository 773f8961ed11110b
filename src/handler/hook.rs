//! What configured commands are told about the dataset they work on: the
//! `${...}` substitutions of handler commands and the environment of hooks
//! and handler commands. Both are built here, once, for backup and restore
//! alike, so that a command sees the same names in both directions. Which
//! dataset a name belongs to is the handler's business (its
//! `dataset_name`).

use crate::handler::atom::own_name;
use crate::wire::model::Atom;
use crate::wire::target::Target;

/// The dataset a command works on, as commands see it.
pub struct Scope<'a> {
    pub backup_id: &'a str,
    /// The host that made the backup.
    pub host: &'a str,
    pub source: &'a str,
    /// `${dataset.name}` and `DATASET_NAME`.
    pub dataset: String,
    /// The dataset's atoms by full name: at restore, those being restored.
    pub atoms: &'a [Atom],
    /// Restore only: where file atoms are restored (`RESTORE_TARGET`, the
    /// directory, `/` in place).
    pub restore_target: Option<&'a Target>,
    /// Restore only: the name the atom is restored as (`restore --as`),
    /// when not its own.
    pub restore_as: Option<&'a str>,
}

/// The environment variables of a command: a name and its value.
pub type Environment = Vec<(&'static str, String)>;

/// The `${...}` substitutions of a handler command working on `atom` (whose
/// `path` is the configured one at backup, the recorded one at restore);
/// at restore `${restore.name}` too: the name the atom is restored as, its
/// own unless `restore --as` says.
pub fn variables<'a>(scope: &'a Scope, atom: &'a Atom) -> Vec<(&'static str, &'a str)> {
    let name = own_name(scope.source, &atom.name);
    let mut vars = vec![
        ("atom.name", name),
        ("atom.full_name", &atom.name),
        ("atom.path", atom.path.as_deref().unwrap_or("")),
        ("dataset.name", &scope.dataset),
        ("backup.id", scope.backup_id),
        ("host", scope.host),
    ];
    if scope.restore_target.is_some() {
        vars.push(("restore.name", scope.restore_as.unwrap_or(name)));
    }
    vars
}

/// The environment of a dataset's hooks (`atom` absent) or of a handler
/// command working on `atom`. `post_backup_command` gets `BACKUP_STATUS`
/// besides, from its caller.
pub fn environment(scope: &Scope, atom: Option<&Atom>) -> Environment {
    let names = |name: fn(&str, &str) -> String| {
        let names: Vec<String> = scope
            .atoms
            .iter()
            .map(|a| name(scope.source, &a.name))
            .collect();
        names.join(" ")
    };
    let mut env = vec![
        ("BACKUP_ID", scope.backup_id.to_string()),
        ("SOURCE_NAME", scope.source.to_string()),
        ("DATASET_NAME", scope.dataset.clone()),
        (
            "ATOM_NAMES",
            names(|source, full| own_name(source, full).to_string()),
        ),
        ("ATOM_FULL_NAMES", names(|_, full| full.to_string())),
    ];
    if let Some(atom) = atom {
        env.push(("ATOM_NAME", own_name(scope.source, &atom.name).to_string()));
        env.push(("ATOM_FULL_NAME", atom.name.clone()));
    }
    if let Some(target) = scope.restore_target {
        let dir = target.dir().to_string_lossy().into_owned();
        env.push(("RESTORE_TARGET", dir));
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    fn atom(name: &str) -> Atom {
        Atom {
            name: name.to_string(),
            path: None,
        }
    }

    #[test]
    fn environment_of_a_hook_and_of_a_command() {
        let atoms = [atom("sql/db1"), atom("sql/Maria Rossi")];
        let target = Target::Dir("/r".into());
        let scope = Scope {
            backup_id: "b1",
            host: "h",
            source: "sql",
            dataset: "sql".into(),
            atoms: &atoms,
            restore_target: Some(&target),
            restore_as: None,
        };
        let env = |atom| {
            environment(&scope, atom)
                .into_iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            env(None),
            [
                "BACKUP_ID=b1",
                "SOURCE_NAME=sql",
                "DATASET_NAME=sql",
                "ATOM_NAMES=db1 Maria Rossi",
                "ATOM_FULL_NAMES=sql/db1 sql/Maria Rossi",
                "RESTORE_TARGET=/r",
            ]
        );
        assert_eq!(
            env(Some(&atoms[1]))[5..7],
            ["ATOM_NAME=Maria Rossi", "ATOM_FULL_NAME=sql/Maria Rossi"]
        );
    }
}
