//! Patterns as restic takes them (`--exclude`, `ls` and `dump` paths): Go's
//! `filepath.Match` syntax, checked before restic sees a pattern so that a
//! mistake is a configuration or usage error, not a failed backup; and the
//! same syntax matched against a name here ([`matches`]: which databases a
//! database handler keeps).

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

/// Whether `name` matches `pattern` (checked by [`check_pattern`]) as a
/// whole: `*` is any run of characters, `/` included (a name is not a
/// path), `?` one character, `[...]` one of a class, `\` the next
/// character itself.
pub fn matches(pattern: &str, name: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let name: Vec<char> = name.chars().collect();
    match_from(&pattern, &name)
}

fn match_from(pattern: &[char], name: &[char]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some(('*', rest)) => (0..=name.len()).any(|skip| match_from(rest, &name[skip..])),
        Some((&first, rest)) => {
            let Some((&c, name_rest)) = name.split_first() else {
                return false;
            };
            let (hit, rest) = match first {
                '?' => (true, rest),
                '\\' => match rest.split_first() {
                    Some((&escaped, rest)) => (escaped == c, rest),
                    None => (false, rest),
                },
                '[' => class(rest, c),
                literal => (literal == c, rest),
            };
            hit && match_from(rest, name_rest)
        }
    }
}

/// Whether `c` is in the class that `pattern` opens (after its `[`), and
/// the pattern after the class.
fn class(pattern: &[char], c: char) -> (bool, &[char]) {
    let (negated, mut at) = match pattern.first() {
        Some('^') => (true, 1),
        _ => (false, 0),
    };
    let mut found = false;
    let take = |at: &mut usize| -> Option<char> {
        let mut ch = *pattern.get(*at)?;
        if ch == '\\' {
            *at += 1;
            ch = *pattern.get(*at)?;
        }
        *at += 1;
        Some(ch)
    };
    let mut first = true;
    while pattern.get(at).is_some_and(|&ch| ch != ']' || first) {
        first = false;
        let Some(lo) = take(&mut at) else { break };
        let hi = if pattern.get(at) == Some(&'-') && pattern.get(at + 1) != Some(&']') {
            at += 1;
            take(&mut at).unwrap_or(lo)
        } else {
            lo
        };
        found |= (lo..=hi).contains(&c);
    }
    (found != negated, pattern.get(at + 1..).unwrap_or(&[]))
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
    fn names_match_as_restic_would_match_them() {
        assert!(matches("*", "we ird/\"$(x)é"));
        assert!(matches("app_*", "app_prod") && !matches("app_*", "xapp_prod"));
        assert!(matches("db?", "db1") && !matches("db?", "db12"));
        assert!(matches("[a-c]x", "bx") && !matches("[a-c]x", "dx"));
        assert!(matches("[^a-c]x", "dx") && !matches("[^a-c]x", "ax"));
        assert!(matches("a\\*", "a*") && !matches("a\\*", "ab"));
        assert!(matches(&literal("x[1]*"), "x[1]*") && !matches(&literal("x*"), "xy"));
        assert!(!matches("", "a") && matches("", ""));
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
