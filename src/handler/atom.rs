//! Atoms as configured, before anything has run: a dataset's atom names
//! (and file paths) or the command that lists them, and the rule that
//! names an atom within its source.

/// The full name of atom `short` of `source`; the source's own name for
/// its anonymous atom (an empty `short`).
pub fn full_name(source: &str, short: &str) -> String {
    if short.is_empty() {
        source.to_string()
    } else {
        format!("{source}/{short}")
    }
}

/// An atom's own name: its full name without the source's prefix, or the
/// source's name for the source's anonymous atom.
pub fn own_name<'a>(source: &str, full_name: &'a str) -> &'a str {
    full_name
        .strip_prefix(source)
        .and_then(|rest| rest.strip_prefix('/'))
        .unwrap_or(full_name)
}

/// One dataset's atoms, before `atoms_command` has run.
#[derive(Clone, Debug, Default)]
pub struct DatasetSpec {
    pub atoms: Vec<AtomSpec>,
    pub atoms_command: Option<String>,
}

/// An atom as configured: its name relative to the source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AtomSpec {
    pub name: String,
    /// File handler: relative to `params.path`, or absolute.
    pub path: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_names() {
        assert_eq!(full_name("sql", "db1"), "sql/db1");
        assert_eq!(full_name("sql", ""), "sql", "the anonymous atom");
    }

    #[test]
    fn own_names() {
        assert_eq!(own_name("sql", "sql/db1"), "db1");
        assert_eq!(own_name("myservice/db", "myservice/db/alpha"), "alpha");
        assert_eq!(own_name("sql", "sql"), "sql", "the anonymous atom");
        assert_eq!(own_name("sq", "sql/db1"), "sql/db1");
    }
}
