//! A source's datasets as written: `atoms`/`atoms_command` (one dataset),
//! a `datasets:` list, or a `datasets_command` whose output, read at each
//! backup, [`parse`] validates the same way. Every atom's full name must
//! be a valid name, once per dataset.

use super::error::{Entry, Error, Problem};
use super::raw;
use super::source::Datasets;
use crate::base::name;
use crate::handler::atom::{AtomSpec, DatasetSpec};

/// The datasets of source `source`'s keys, at `entry`.
pub(super) fn resolve(
    source: &str,
    atoms: Option<Vec<raw::Atom>>,
    atoms_command: Option<String>,
    datasets: Option<Vec<raw::Dataset>>,
    datasets_command: Option<String>,
    entry: &Entry,
) -> Result<Datasets, Error> {
    let plain_form = atoms.is_some() || atoms_command.is_some();
    let long_form = datasets.is_some() || datasets_command.is_some();
    if plain_form && long_form {
        return Err(entry.invalid(
            "datasets",
            "use either atoms/atoms_command or datasets/datasets_command",
        ));
    }
    let at_atoms = |problem| entry.error("atoms", problem);
    match (datasets, datasets_command) {
        (Some(_), Some(_)) => Err(entry.invalid(
            "datasets_command",
            "use either datasets or datasets_command",
        )),
        (None, Some(command)) => Ok(Datasets::Command(command)),
        (Some(list), None) => list
            .into_iter()
            .map(|d| spec(source, d.atoms, d.atoms_command))
            .collect::<Result<_, _>>()
            .map(Datasets::Listed)
            .map_err(at_atoms),
        (None, None) => spec(source, atoms, atoms_command)
            .map(|spec| Datasets::Listed(vec![spec]))
            .map_err(at_atoms),
    }
}

/// The datasets `source`'s `datasets_command` printed (YAML or JSON, as
/// `datasets:` is written), validated: an atom whose full name is invalid,
/// or that a dataset names twice, is left out and said in the list of
/// skipped atoms beside, so that one bad name costs only its atom.
pub fn parse(source: &str, text: &str) -> Result<(Vec<DatasetSpec>, Vec<String>), Error> {
    let raw: Vec<raw::Dataset> =
        serde_yaml::from_str(text).map_err(|e| Error::new(Problem::Printed(e)))?;
    let mut skipped = Vec::new();
    let mut specs = Vec::new();
    for dataset in raw {
        let mut atoms: Vec<raw::Atom> = Vec::new();
        for atom in dataset.atoms.unwrap_or_default() {
            let full = format!("{source}/{}", atom.name);
            if let Err(e) = name::validate(&full) {
                skipped.push(format!("an {e}"));
            } else if atoms.iter().any(|a| a.name == atom.name) {
                skipped.push(format!("atom {full:?} twice"));
            } else {
                atoms.push(atom);
            }
        }
        specs.push(spec(source, Some(atoms), dataset.atoms_command).map_err(Error::new)?);
    }
    Ok((specs, skipped))
}

/// One dataset: its atoms (`source/atom` must be a valid name, given once)
/// and its `atoms_command`.
fn spec(
    source: &str,
    atoms: Option<Vec<raw::Atom>>,
    atoms_command: Option<String>,
) -> Result<DatasetSpec, Problem> {
    let mut spec = DatasetSpec {
        atoms: Vec::new(),
        atoms_command,
    };
    for atom in atoms.unwrap_or_default() {
        name::validate(&format!("{source}/{}", atom.name)).map_err(|e| Problem::Name {
            what: "atom",
            cause: e.into(),
        })?;
        if spec.atoms.iter().any(|a| a.name == atom.name) {
            return Err(Problem::Invalid(format!("duplicate atom {:?}", atom.name)));
        }
        spec.atoms.push(AtomSpec {
            name: atom.name,
            path: atom.path,
        });
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datasets_printed_by_a_command_are_validated() {
        let (specs, skipped) =
            parse("sql", "- atoms: [{name: db1}]\n- atoms_command: ls\n").unwrap();
        assert_eq!(specs.len(), 2);
        assert_eq!(specs[0].atoms[0].name, "db1");
        assert_eq!(specs[1].atoms_command.as_deref(), Some("ls"));
        assert!(skipped.is_empty());
        // Issue 26, item 9: one bad name costs only its atom.
        let long = "x".repeat(256);
        let printed = format!(
            r#"[{{"atoms": [{{"name": "a"}}, {{"name": "a"}}, {{"name": "b\nc"}}, {{"name": "d\u0001"}}, {{"name": "e/../f"}}, {{"name": "{long}"}}, {{"name": "ok"}}]}}]"#
        );
        let (specs, skipped) = parse("sql", &printed).unwrap();
        let names: Vec<&str> = specs[0].atoms.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["a", "ok"]);
        assert_eq!(skipped.len(), 5, "{skipped:?}");
        assert_eq!(skipped[0], "atom \"sql/a\" twice");
    }
}
