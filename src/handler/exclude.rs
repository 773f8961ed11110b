//! What a `file` source leaves out of its snapshot: `exclude`,
//! `exclude_file`, `exclude_caches`, `exclude_if_present`,
//! `one_file_system` and `exclude_larger_than` from its params, checked at
//! load as restic would check them and turned into restic's own options,
//! one argument each (never through a shell).

use crate::base::glob::check_pattern;
use crate::handler::{Error, Params};
use std::path::Path;

/// The exclusion options of a file source, as restic arguments.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Excludes(Vec<String>);

impl Excludes {
    /// Checks the params' exclusion keys; an error names the key.
    pub fn new(params: &Params) -> Result<Excludes, Error> {
        let mut args = Vec::new();
        for pattern in params.exclude.iter().flatten() {
            check_pattern(pattern).map_err(|e| Error::Invalid(format!("exclude: {e}")))?;
            args.extend(["--exclude".to_string(), pattern.clone()]);
        }
        for file in params.exclude_file.iter().flatten() {
            check_exclude_file(Path::new(file))?;
            args.extend(["--exclude-file".to_string(), file.clone()]);
        }
        if params.exclude_caches == Some(true) {
            args.push("--exclude-caches".into());
        }
        for name in params.exclude_if_present.iter().flatten() {
            if name.is_empty() || name.contains('/') {
                return Err(Error::Invalid(format!(
                    "exclude_if_present: {name:?} is not a file name (not empty, no '/')"
                )));
            }
            args.extend(["--exclude-if-present".to_string(), name.clone()]);
        }
        if params.one_file_system == Some(true) {
            args.push("--one-file-system".into());
        }
        if let Some(size) = &params.exclude_larger_than {
            parse_size(size)?;
            args.extend(["--exclude-larger-than".to_string(), size.clone()]);
        }
        Ok(Excludes(args))
    }

    /// Whether any exclusion key was given.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// restic's options, one argument each.
    pub fn args(&self) -> &[String] {
        &self.0
    }
}

/// A size as restic's `--exclude-larger-than` reads it: digits, then
/// optionally one of `b`, `k`, `m`, `g`, `t` (either case; powers of 1024),
/// within a signed 64-bit number of bytes. A sign, which restic would take,
/// is refused: a negative size excludes everything.
fn parse_size(size: &str) -> Result<u64, Error> {
    let (digits, unit) = match size.chars().last().map(|c| c.to_ascii_lowercase()) {
        Some('b') => (&size[..size.len() - 1], 1u64),
        Some('k') => (&size[..size.len() - 1], 1 << 10),
        Some('m') => (&size[..size.len() - 1], 1 << 20),
        Some('g') => (&size[..size.len() - 1], 1 << 30),
        Some('t') => (&size[..size.len() - 1], 1 << 40),
        _ => (size, 1),
    };
    let bad = || {
        Error::Invalid(format!(
            "exclude_larger_than: {size:?} is not a size (a number of bytes, or with k, m, g or t: 500k, 2g)"
        ))
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .filter(|&n| n <= i64::MAX as u64)
        .ok_or_else(bad)
}

/// `file` must be an absolute path to a readable file of valid patterns.
fn check_exclude_file(file: &Path) -> Result<(), Error> {
    if !file.is_absolute() {
        return Err(Error::Invalid(format!(
            "exclude_file: {} is not an absolute path",
            file.display()
        )));
    }
    let text = std::fs::read_to_string(file).map_err(|source| Error::ExcludeFile {
        path: file.to_path_buf(),
        source,
    })?;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        check_pattern(line).map_err(|e| {
            Error::Invalid(format!("exclude_file: {}:{}: {e}", file.display(), n + 1))
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_as_restic_reads_them() {
        assert_eq!(parse_size("500").ok(), Some(500));
        assert_eq!(parse_size("2k").ok(), Some(2048));
        assert_eq!(parse_size("3M").ok(), Some(3 << 20));
        assert_eq!(parse_size("1t").ok(), Some(1 << 40));
        assert_eq!(parse_size("7b").ok(), Some(7));
        for bad in ["", "k", "1.5g", "-1", "+2", "10x", "1 g", "9999999999T"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
