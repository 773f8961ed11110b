//! A source as the rest of tabacco sees it once configuration is validated:
//! its handler resolved, its schedule parsed, its atoms described, and the
//! resolution of `sources/*.yml` entries into it. Turning atom descriptions
//! into concrete datasets happens at backup time (see `backup::job`),
//! because `atoms_command` and `datasets_command` run then; handler
//! templates are `template`'s, datasets as written are `datasets`'s.

use super::error::{Entry, Error, Errors, Problem};
use super::template::Templates;
use super::{datasets, raw, value};
use crate::base::name;
use crate::base::retention::Retention;
use crate::base::schedule::Schedule;
use crate::base::yaml::Origin;
use crate::handler::atom::{self, DatasetSpec};
use crate::handler::Handler;
use std::collections::HashMap;
use std::time::Duration;

/// When a source without `schedule` is backed up.
const DEFAULT_SCHEDULE: &str = "@random_every 1d";

/// A validated source.
#[derive(Clone, Debug)]
pub struct Source {
    pub name: String,
    /// The `handler:` value as written (`file`, `pipe` or a template name).
    pub handler_name: String,
    pub handler: Handler,
    pub schedule: Schedule,
    pub datasets: Datasets,
    pub hooks: Hooks,
    /// Limit for the whole backup of this source.
    pub timeout: Option<Duration>,
    /// How long after its due time the metadb may wait for an attempt
    /// before the source is overdue (the metadb's `overdue_grace` if none).
    pub overdue_grace: Option<Duration>,
    pub retention: Option<Retention>,
    /// The copies (agent.yml's `copies:` names) its snapshots go to.
    pub copies: Vec<String>,
    pub min_bytes: Option<u64>,
    /// Its own bound on a batch's staging area, over agent.yml's
    /// `batch_bytes` (see `backup::batch`).
    pub batch_bytes: Option<u64>,
    /// Its own `batch_from`, over agent.yml's.
    pub batch_from: Option<usize>,
    /// Its own notification targets, replacing agent.yml's; `Some(empty)`
    /// silences it.
    pub notify: Option<Vec<crate::report::notify::Target>>,
    /// Whether a run missed while the agent was down is made up; agent.yml's
    /// `catch_up` if unset.
    pub catch_up: Option<bool>,
    pub origin: Origin,
}

/// How a source's datasets are known.
#[derive(Clone, Debug)]
pub enum Datasets {
    /// Written in the configuration (`atoms`/`atoms_command`, or `datasets:`).
    Listed(Vec<DatasetSpec>),
    /// Printed as YAML or JSON by a command at each backup.
    Command(String),
}

/// The dataset-level commands of a source, each run through `/bin/sh -c`.
#[derive(Clone, Debug, Default)]
pub struct Hooks {
    pub pre_backup: Option<String>,
    pub post_backup: Option<String>,
    pub pre_restore: Option<String>,
    pub post_restore: Option<String>,
}

impl Source {
    /// The full name of atom `short` of this source; the source's own name
    /// for its anonymous atom.
    pub fn atom_full_name(&self, short: &str) -> String {
        atom::full_name(&self.name, short)
    }
}

/// The sources of `raw`, by handler templates `templates`, copying to
/// agent.yml's `copies` (unknown if it failed); each source refused, or
/// named twice, is an error in `errors`.
pub(super) fn resolve_all(
    raw: Vec<(raw::Source, Origin)>,
    templates: &Templates,
    copies: Option<&[String]>,
    errors: &mut Vec<Error>,
) -> Vec<Source> {
    let mut seen: HashMap<String, Origin> = HashMap::new();
    let mut resolved = Vec::new();
    for (raw, origin) in raw {
        if let Some(first) = seen.get(&raw.name) {
            let duplicate = Problem::Duplicate {
                what: "source",
                name: raw.name.clone(),
                first: first.clone(),
            };
            errors.push(Entry::new(&origin).error("name", duplicate));
            continue;
        }
        seen.insert(raw.name.clone(), origin.clone());
        match resolve(raw, origin, templates, copies) {
            Ok(source) => resolved.push(source),
            Err(e) => errors.extend(e.0),
        }
    }
    resolved
}

/// The source of `raw`, written at `origin`; every value it refuses is an
/// error of its own.
fn resolve(
    raw: raw::Source,
    origin: Origin,
    templates: &Templates,
    copies: Option<&[String]>,
) -> Result<Source, Errors> {
    let entry = Entry::new(&origin);
    let mut errors = Errors(Vec::new());
    let name = name::validate_source(&raw.name).map_err(entry.bad_name("name", "source"));
    errors.ok(name);
    let handler = errors.ok(templates.handler(&raw, &entry));
    let schedule = raw.schedule.as_deref().unwrap_or(DEFAULT_SCHEDULE);
    let schedule = errors.ok(Schedule::parse(schedule).map_err(entry.refused("schedule")));
    let timeout = value::duration(&entry, "timeout", raw.timeout.as_deref());
    let timeout = errors.or(timeout, None);
    let overdue_grace = value::duration(&entry, "overdue_grace", raw.overdue_grace.as_deref());
    let overdue_grace = errors.or(overdue_grace, None);
    let retention = errors.or(value::retention(&entry, "retention", raw.retention), None);
    let copies = errors.or(copies_of(raw.copies, copies, &entry), Vec::new());
    let datasets = datasets::resolve(
        &raw.name,
        raw.atoms,
        raw.atoms_command,
        raw.datasets,
        raw.datasets_command,
        &entry,
    );
    let mut datasets = errors.ok(datasets);
    // A shipped database handler finds the databases of a source that
    // lists none.
    if let (Some(Datasets::Listed(specs)), Some(command)) = (
        &mut datasets,
        handler.as_ref().and_then(|h| h.atoms_command()),
    ) {
        if let [spec] = &mut specs[..] {
            if spec.atoms.is_empty() && spec.atoms_command.is_none() {
                spec.atoms_command = Some(command.to_string());
            }
        }
    }
    if let (Some(handler), Some(datasets)) = (&handler, &datasets) {
        let named = entry.about(format!("source {:?}", raw.name));
        errors.ok(check_atoms(handler, datasets, &named));
    }
    let not_pipe = handler
        .as_ref()
        .is_some_and(|h| !matches!(h, Handler::Pipe(_)));
    if raw.min_bytes.is_some() && not_pipe {
        let refused = entry.invalid("min_bytes", "min_bytes applies to pipe sources only");
        errors.0.push(refused);
    }
    for (key, set) in [
        ("batch_bytes", raw.batch_bytes.is_some()),
        ("batch_from", raw.batch_from.is_some()),
    ] {
        if set && not_pipe {
            let refused = entry.invalid(key, format!("{key} applies to pipe sources only"));
            errors.0.push(refused);
        }
    }
    let notify = match &raw.notify {
        Some(list) => errors.ok(value::notify(&entry, list)),
        None => None,
    };
    // Said in the order they are written.
    errors.0.sort_by_key(|e| e.origin.as_ref().map(|o| o.line));
    let (Some(handler), Some(schedule), Some(datasets)) = (handler, schedule, datasets) else {
        return Err(errors);
    };
    errors.and(Source {
        name: raw.name,
        handler_name: raw.handler,
        handler,
        schedule,
        datasets,
        hooks: Hooks {
            pre_backup: raw.pre_backup_command,
            post_backup: raw.post_backup_command,
            pre_restore: raw.pre_restore_command,
            post_restore: raw.post_restore_command,
        },
        timeout,
        overdue_grace,
        retention,
        copies,
        min_bytes: raw.min_bytes,
        batch_bytes: raw.batch_bytes,
        batch_from: raw.batch_from,
        notify,
        catch_up: raw.catch_up,
        origin,
    })
}

/// The copies a source's snapshots go to: those it names, which agent.yml
/// must have (`known`), else all of agent.yml's; none when agent.yml's are
/// not known.
fn copies_of(
    names: Option<Vec<String>>,
    known: Option<&[String]>,
    entry: &Entry,
) -> Result<Vec<String>, Error> {
    let Some(known) = known else {
        return Ok(Vec::new());
    };
    let Some(names) = names else {
        return Ok(known.to_vec());
    };
    match names.iter().find(|name| !known.contains(name)) {
        Some(name) if known.is_empty() => Err(entry.invalid(
            "copies",
            format!("unknown copy {name:?}: agent.yml has no copies"),
        )),
        Some(name) => Err(entry.invalid(
            "copies",
            format!("unknown copy {name:?}; agent.yml has: {}", known.join(" ")),
        )),
        None => Ok(names),
    }
}

/// Checks the atoms written in the configuration against the handler (a
/// file handler needs its `path` or absolute atom paths).
fn check_atoms(handler: &Handler, datasets: &Datasets, named: &Entry) -> Result<(), Error> {
    match datasets {
        Datasets::Listed(specs) => specs
            .iter()
            .try_for_each(|spec| handler.check_atoms(spec).map_err(named.refused("atoms"))),
        Datasets::Command(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    //! Sources resolved from their text: defaults, template params, copies,
    //! and the message each bad value gets.

    use super::*;
    use crate::base::yaml;
    use std::path::Path;

    /// The source in `text`, resolved with the handler templates in
    /// `handlers`.
    fn source(handlers: &str, text: &str) -> Result<Source, Errors> {
        let mut errors = Vec::new();
        let (entries, refused) = yaml::parse_entries(Path::new("handlers.yml"), handlers);
        assert!(refused.is_empty(), "{refused:?}");
        let templates = Templates::new(entries, &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        let (mut entries, refused) = yaml::parse_entries::<raw::Source>(Path::new("s.yml"), text);
        if let Some(e) = refused.into_iter().next() {
            return Err(Error::from(e).into());
        }
        let (raw, origin) = entries.remove(0);
        let copies = ["offsite".to_string(), "usb".to_string()];
        resolve(raw, origin, &templates, Some(&copies))
    }

    #[test]
    fn source_defaults() {
        let s = source("", "name: www\nhandler: file\nparams: {path: /srv/www}\n").unwrap();
        assert_eq!(s.name, "www");
        assert_eq!(s.handler_name, "file");
        assert!(
            matches!(&s.handler, Handler::File(f) if f.path.as_deref() == Some(Path::new("/srv/www")))
        );
        assert_eq!(s.schedule.to_string(), "@random_every 1d");
        let Datasets::Listed(specs) = &s.datasets else {
            panic!("{:?}", s.datasets)
        };
        assert_eq!(specs.len(), 1);
        assert!(specs[0].atoms.is_empty() && specs[0].atoms_command.is_none());
        assert!(s.timeout.is_none() && s.retention.is_none() && s.notify.is_none());
        assert_eq!(s.origin.to_string(), "s.yml:1");
    }

    #[test]
    fn source_params_override_its_templates_key_by_key() {
        let handlers = "name: pg\nparams:\n  backup_command: pg_dump ${atom.name}\n  restore_command: psql ${atom.name}\n";
        let s = source(
            handlers,
            "name: sql\nhandler: pg\nparams: {restore_command: \"psql -1 ${atom.name}\"}\n\
             atoms: [{name: db1}, {name: db2}]\nretention: {keep_within: 1h30m}\ntimeout: 2h\n",
        )
        .unwrap();
        assert_eq!(s.handler_name, "pg");
        let Handler::Pipe(pipe) = &s.handler else {
            panic!("{:?}", s.handler)
        };
        assert_eq!(
            pipe.backup_command, "pg_dump ${atom.name}",
            "the template's"
        );
        assert_eq!(
            pipe.restore_command.as_deref(),
            Some("psql -1 ${atom.name}"),
            "the source's"
        );
        let Datasets::Listed(specs) = &s.datasets else {
            panic!("{:?}", s.datasets)
        };
        let names: Vec<&str> = specs[0].atoms.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["db1", "db2"]);
        let retention = s.retention.unwrap();
        assert_eq!(retention.to_string(), "{keep_within: 1h30m}");
        assert_eq!(
            retention.keep_within.map(|w| w.duration),
            Some(Duration::from_secs(5400))
        );
        assert_eq!(s.timeout, Some(Duration::from_secs(7200)));
    }

    #[test]
    fn bad_sources_are_refused_with_their_line() {
        let refused = |text: &str| {
            source("name: t\ntype: file\n", text)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            refused("name: a\nhandler: nfs\n"),
            "s.yml:2: unknown handler \"nfs\" (builtin: file, pipe; shipped: postgresql, mariadb, mysql, sqlite, ldap; or a handlers/*.yml name)"
        );
        assert_eq!(
            refused("name: a\nhandler: pipe\nparams: {path: /x}\n"),
            "s.yml:2: source \"a\": the pipe handler needs params.backup_command"
        );
        assert_eq!(
            refused("name: a\nhandler: t\nparams: {path: /x}\nmin_bytes: 1\n"),
            "s.yml:4: min_bytes applies to pipe sources only"
        );
        assert_eq!(
            refused("name: a\nhandler: file\nparams: {path: /x}\natoms: [{name: b}, {name: b}]\n"),
            "s.yml:4: duplicate atom \"b\""
        );
        assert_eq!(
            refused(
                "name: a\nhandler: file\nparams: {path: /x}\natoms: [{name: b}]\ndatasets: []\n"
            ),
            "s.yml:5: use either atoms/atoms_command or datasets/datasets_command"
        );
        assert_eq!(
            refused("name: a\nhandler: file\nparams: {path: /x}\nretention: {keep_within: soon}\n"),
            "s.yml:4: invalid duration \"soon\" (expected e.g. 90s, 15m, 1.5h, 1d, 1h30m, 500ms)"
        );
        assert_eq!(
            source("name: t\nparams: {}\n", "name: a\nhandler: t\n")
                .unwrap_err()
                .to_string(),
            "s.yml:2: handler \"t\" has no type"
        );
    }

    /// Issue 28, item 9: a source with two mistakes showed only the first.
    #[test]
    fn every_refused_value_of_a_source_is_an_error() {
        let refused = source(
            "",
            "name: a\nhandler: file\nparams: {path: /x}\nschedule: \"0 3 * * 8\"\ntimeout: soon\nmin_bytes: 3\n",
        )
        .unwrap_err()
        .to_string();
        let lines: Vec<&str> = refused.lines().collect();
        assert_eq!(lines.len(), 3, "{refused}");
        assert!(
            lines[0].starts_with("s.yml:4: invalid schedule"),
            "{refused}"
        );
        assert!(
            lines[1].starts_with("s.yml:5: invalid duration"),
            "{refused}"
        );
        assert_eq!(lines[2], "s.yml:6: min_bytes applies to pipe sources only");
    }

    #[test]
    fn a_source_copies_to_all_copies_or_those_it_names() {
        let text = "name: www\nhandler: file\nparams: {path: /srv/www}\n";
        assert_eq!(source("", text).unwrap().copies, ["offsite", "usb"]);
        let some = format!("{text}copies: [usb]\n");
        assert_eq!(source("", &some).unwrap().copies, ["usb"]);
        let none = format!("{text}copies: []\n");
        assert!(source("", &none).unwrap().copies.is_empty());
        let unknown = format!("{text}copies: [tape]\n");
        assert_eq!(
            source("", &unknown).unwrap_err().to_string(),
            "s.yml:4: unknown copy \"tape\"; agent.yml has: offsite usb"
        );
    }
}
