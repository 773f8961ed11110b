//! Patterns as restic takes them (`--exclude`, `ls` and `dump` paths): Go's
//! `filepath.Match` syntax, checked before restic sees a pattern so that a
//! mistake is a configuration or usage error, not a failed backup.

/// The pattern that matches `text` alone: a `\` before each of `*`, `?`,
/// `[` and `\`. Go's `filepath.Match` (restic's `--include`) and `query`
/// patterns escape alike.
pub fn literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A pattern restic's `--exclude` accepts: not empty, and each `/`-separated
/// part a valid Go `filepath.Match` pattern (restic checks each part so).
pub fn check_pattern(pattern: &str) -> Result<(), String> {
    if pattern.is_empty() {
        return Err("an empty pattern".into());
    }
    for part in pattern.split('/') {
        check_glob(part).map_err(|e| format!("pattern {pattern:?}: {e}"))?;
    }
    Ok(())
}

/// Go's `filepath.Match` syntax: `\` escapes the next character; `[...]`
/// is closed, not empty, its ranges ordered.
fn check_glob(part: &str) -> Result<(), String> {
    let mut chars = part.chars().peekable();
    // One character of a class: an escape, or anything but `-` and `]`.
    let class_char = |chars: &mut std::iter::Peekable<std::str::Chars>| -> Result<char, String> {
        match chars.next() {
            None => Err("'[' is not closed".to_string()),
            Some('-' | ']') => Err("a bad character class".to_string()),
            Some('\\') => chars.next().ok_or_else(|| "ends in '\\'".to_string()),
            Some(c) => Ok(c),
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next().ok_or("ends in '\\'")?;
            }
            '[' => {
                if chars.peek() == Some(&'^') {
                    chars.next();
                }
                let mut ranges = 0;
                loop {
                    if ranges > 0 && chars.peek() == Some(&']') {
                        chars.next();
                        break;
                    }
                    let lo = class_char(&mut chars)?;
                    if chars.peek() == Some(&'-') {
                        chars.next();
                        let hi = class_char(&mut chars)?;
                        if hi < lo {
                            return Err(format!("range {lo}-{hi} is reversed"));
                        }
                    }
                    ranges += 1;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_literal_matches_itself_only() {
        assert_eq!(literal("/srv/a*b?[c]\\d"), "/srv/a\\*b\\?\\[c]\\\\d");
        assert!(check_pattern(&literal("[x*")).is_ok());
    }

    #[test]
    fn patterns_as_go_matches_them() {
        for good in ["*.tmp", "/srv/*/cache", "[a-z]*", "[^x]", "a\\*b", "[\\]]"] {
            assert!(check_pattern(good).is_ok(), "{good}");
        }
        // Go refuses a class opening with `]` or `-` too.
        for bad in ["", "[", "a[b", "x\\", "[z-a]", "[-a]", "[]", "[]a]"] {
            assert!(check_pattern(bad).is_err(), "{bad}");
        }
    }
}
