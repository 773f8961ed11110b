//! The builtin `pipe` handler: each atom is the output of `backup_command`,
//! streamed into restic, and is restored by streaming it back into
//! `restore_command`.

use crate::config::raw::Params;
use crate::handler::{check_template, Context, Input, Plan};
use crate::model::Atom;
use crate::shell;
use crate::source::{AtomSpec, Source};

#[derive(Clone, Debug)]
pub struct Pipe {
    pub backup_command: String,
    pub restore_command: Option<String>,
}

impl Pipe {
    pub fn new(params: Params) -> Result<Pipe, String> {
        let backup_command = params
            .backup_command
            .ok_or("the pipe handler needs params.backup_command")?;
        check_template(&backup_command).map_err(|e| format!("backup_command: {e}"))?;
        if let Some(restore) = &params.restore_command {
            check_template(restore).map_err(|e| format!("restore_command: {e}"))?;
        }
        if params.path.is_some() {
            return Err("the pipe handler takes no params.path".into());
        }
        Ok(Pipe {
            backup_command,
            restore_command: params.restore_command,
        })
    }

    pub fn plan(&self, source: &Source, atom: &AtomSpec, ctx: &Context) -> Result<Plan, String> {
        let full_name = source.atom_full_name(&atom.name);
        let short_name = if atom.name.is_empty() {
            &source.name
        } else {
            &atom.name
        };
        let vars = [
            ("atom.name", short_name.as_str()),
            ("atom.full_name", full_name.as_str()),
            ("atom.path", atom.path.as_deref().unwrap_or("")),
            ("dataset.name", full_name.as_str()),
            ("backup.id", ctx.backup_id),
            ("host", ctx.host),
        ];
        let command = shell::substitute(&self.backup_command, &vars)?;
        Ok(Plan {
            name: full_name.clone(),
            atoms: vec![Atom {
                name: full_name.clone(),
                path: None,
            }],
            input: Input::Command {
                command,
                filename: full_name,
            },
        })
    }

    pub fn describe(&self) -> String {
        format!("pipe: {}", self.backup_command)
    }
}
