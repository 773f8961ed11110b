//! The builtin `pipe` handler: each atom is the output of `backup_command`,
//! streamed into restic, and is restored by streaming it back into
//! `restore_command`.

use crate::atom::{self, AtomSpec};
use crate::handler::{check_template, Context, Input, Params, Plan};
use crate::model::Atom;
use crate::{hook, shell};

#[derive(Clone, Debug)]
pub struct Pipe {
    pub backup_command: String,
    pub restore_command: Option<String>,
}

impl Pipe {
    pub fn new(params: Params) -> Result<Pipe, String> {
        if !crate::handler::exclude::Excludes::new(&params)?.is_empty() {
            return Err("the pipe handler takes no exclude options (a stream has no files)".into());
        }
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

    pub fn plan(&self, source: &str, atom: &AtomSpec, ctx: &Context) -> Result<Plan, String> {
        let full_name = atom::full_name(source, &atom.name);
        let atoms = [Atom {
            name: full_name.clone(),
            path: None,
        }];
        let name = full_name.clone();
        let scope = hook::Scope {
            backup_id: ctx.backup_id,
            host: ctx.host,
            source,
            dataset: &name,
            atoms: &atoms,
            restore_target: None,
        };
        let configured = Atom {
            name: full_name.clone(),
            path: atom.path.clone(),
        };
        let command =
            shell::substitute(&self.backup_command, &hook::variables(&scope, &configured))?;
        Ok(Plan {
            name: name.clone(),
            atoms: atoms.to_vec(),
            input: Input::Command {
                command,
                env: hook::environment(&scope, Some(&configured)),
                filename: full_name,
            },
        })
    }

    pub fn describe(&self) -> String {
        format!("pipe: {}", self.backup_command)
    }
}
