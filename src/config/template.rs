//! Handler templates (`handlers/*.yml`): a name for a handler type with
//! params that the sources naming it inherit, each key of a source's own
//! params replacing the template's. A shipped database handler
//! (`postgresql`, ...) needs no template; a template of the same name
//! replaces it. What a handler makes of its params is `handler`'s
//! (`Handler::new`).

use super::error::{Entry, Error, Problem};
use super::raw;
use crate::base::name;
use crate::base::yaml::Origin;
use crate::handler::{self, database, Handler};
use std::collections::HashMap;

/// The handler templates, by name.
pub(super) struct Templates(HashMap<String, (raw::Handler, Origin)>);

impl Templates {
    /// The templates of `raw`; each one refused is an error in `errors`.
    pub fn new(raw: Vec<(raw::Handler, Origin)>, errors: &mut Vec<Error>) -> Templates {
        let mut templates: HashMap<String, (raw::Handler, Origin)> = HashMap::new();
        for (h, origin) in raw {
            let entry = Entry::new(&origin);
            if let Err(e) = name::validate_source(&h.name) {
                errors.push(entry.bad_name("name", "handler")(e));
            } else if handler::BUILTIN.contains(&h.name.as_str()) {
                errors.push(entry.invalid("name", format!("handler name {:?} is builtin", h.name)));
            } else if let Some((_, first)) = templates.get(&h.name) {
                let first = first.clone();
                let name = h.name.clone();
                errors.push(entry.error(
                    "name",
                    Problem::Duplicate {
                        what: "handler",
                        name,
                        first,
                    },
                ));
            } else {
                templates.insert(h.name.clone(), (h, origin));
            }
        }
        Templates(templates)
    }

    /// The handler of `source` (at `entry`): a builtin type with the
    /// source's params, or a template's type with the template's params
    /// under the source's.
    pub fn handler(&self, source: &raw::Source, entry: &Entry) -> Result<Handler, Error> {
        let (kind, params) = match source.handler.as_str() {
            "file" | "pipe" => (source.handler.clone(), source.params.clone()),
            name if database::SHIPPED.contains(&name) && !self.0.contains_key(name) => {
                (source.handler.clone(), source.params.clone())
            }
            name => {
                let (template, _) = self.0.get(name).ok_or_else(|| {
                    entry.invalid(
                        "handler",
                        format!(
                            "unknown handler {name:?} (builtin: file, pipe; shipped: {}; or a handlers/*.yml name)",
                            database::SHIPPED.join(", ")
                        ),
                    )
                })?;
                let kind = match template.kind.as_deref() {
                    Some(kind) => kind.to_string(),
                    None if template.params.backup_command.is_some() => "pipe".into(),
                    None => {
                        return Err(
                            entry.invalid("handler", format!("handler {name:?} has no type"))
                        )
                    }
                };
                (kind, source.params.over(&template.params))
            }
        };
        let named = entry.about(format!("source {:?}", source.name));
        Handler::new(&kind, params).map_err(named.refused("handler"))
    }
}
