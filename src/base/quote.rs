//! Quoting for `/bin/sh`: values substituted into the commands of a
//! configuration, and the command lines the console shows to copy.

/// Quotes `value` for `/bin/sh`: single quotes, with `'` spelled `'\''`.
pub fn sh(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}
