//! The rules for names and what carries them safely. An atom's name is
//! path-like, as in the original program: any UTF-8 text without control
//! characters, `/` separating segments, none of them empty, `.` or `..`
//! (a tenant's `alice@example.org` or `Maria Rossi` is a fine name). Source
//! and handler names keep the stricter `[A-Za-z0-9._-]` segments: they
//! label metrics and configuration files. Names reach restic tags through
//! [`encode_tag`], shell commands quoted (see `shell`), and the metadb's
//! `GLOB` through [`sqlite_glob`].

/// Most bytes in a full atom name.
pub const MAX_LEN: usize = 1024;

/// Most bytes in one segment of a name: a file name's limit, since a file
/// atom's default path is its name.
pub const MAX_SEGMENT_LEN: usize = 255;

/// Checks a full atom name.
pub fn validate(name: &str) -> Result<(), String> {
    check(
        name,
        |c| !c.is_control(),
        "control characters are not allowed",
    )
}

/// Checks a source or handler name.
pub fn validate_source(name: &str) -> Result<(), String> {
    check(
        name,
        |c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'),
        "use A-Z a-z 0-9 . _ - and /",
    )
}

fn check(name: &str, allowed: impl Fn(char) -> bool, rule: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("invalid name {name:?}: {why}"));
    if name.is_empty() {
        return bad("empty");
    }
    if name.len() > MAX_LEN {
        return bad(&format!("longer than {MAX_LEN} bytes"));
    }
    if name.starts_with('/') {
        return bad("leading '/'");
    }
    for segment in name.split('/') {
        if segment.is_empty() {
            return bad("empty segment");
        }
        if segment == "." || segment == ".." {
            return bad("'.' and '..' segments are not allowed");
        }
        if segment.len() > MAX_SEGMENT_LEN {
            return bad(&format!("a segment longer than {MAX_SEGMENT_LEN} bytes"));
        }
        if let Some(c) = segment.chars().find(|&c| !allowed(c)) {
            return bad(&format!("character {c:?} is not allowed ({rule})"));
        }
    }
    Ok(())
}

/// A name or path as part of a restic tag: restic splits `--tag` values at
/// commas and trims spaces, and tabacco's tags use `:` as a separator, so
/// `%`, `,`, `:` and white space are percent-encoded. [`decode_tag`] undoes
/// it exactly.
pub fn encode_tag(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | ',' | ':') || c.is_whitespace() || c.is_control() {
            let mut buf = [0; 4];
            for byte in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{byte:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// What [`encode_tag`] encoded, decoded; `None` if it is not valid UTF-8
/// once decoded.
pub fn decode_tag(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// A `query` pattern (a shell glob, where `\` makes the next character
/// literal, so that `sql/db\*` matches the name `sql/db*` only) in SQLite's
/// `GLOB` syntax, which has no escape character but brackets: `[*]`.
pub fn sqlite_glob(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(c @ ('*' | '?' | '[')) => {
                    out.push('[');
                    out.push(c);
                    out.push(']');
                }
                Some(c) => out.push(c),
                None => out.push('\\'),
            },
            // A bracket expression is copied whole: `\` has no meaning in it.
            '[' => {
                out.push('[');
                let mut first = true;
                for c in chars.by_ref() {
                    out.push(c);
                    if c == ']' && !first {
                        break;
                    }
                    first = c == '^' && first;
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// A `query` pattern that matches the name `name` only: `\`, `*`, `?` and
/// `[` made literal with a `\`.
pub fn literal_pattern(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if matches!(c, '\\' | '*' | '?' | '[') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_literal_pattern_matches_its_name_only() {
        let name = r"sql/db*?[x]\y";
        assert_eq!(literal_pattern(name), r"sql/db\*\?\[x]\\y");
        assert_eq!(sqlite_glob(&literal_pattern(name)), r"sql/db[*][?][[]x]\y");
        assert_eq!(literal_pattern("users/alice"), "users/alice");
    }

    #[test]
    fn atom_names() {
        for good in [
            "users",
            "users/account1",
            "myservice/data",
            "a.b_c-d/E9",
            "mail/alice@example.org",
            "mail/bob+list@example.org",
            "people/Maria Rossi",
            "é/ünïcødé 名前",
            "a,b:c%d*e?f[g]h\\i'j\"k$(l)`m`",
        ] {
            assert_eq!(validate(good), Ok(()), "{good}");
        }
        let long_segment = "x".repeat(MAX_SEGMENT_LEN + 1);
        let long = vec!["x"; MAX_LEN / 2 + 1].join("/");
        for bad in [
            "",
            "/abs",
            "a//b",
            "a/",
            "..",
            "a/../b",
            "./a",
            "a\nb",
            "a\tb",
            "a\u{7f}b",
            "a\u{85}b",
            long_segment.as_str(),
            long.as_str(),
        ] {
            assert!(validate(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn source_names() {
        assert_eq!(validate_source("myservice/data"), Ok(()));
        for bad in ["a b", "a;b", "é", "$(touch x)", "a@b", "/a", "a/.."] {
            assert!(validate_source(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn tags_round_trip() {
        for name in [
            "mail/alice@example.org",
            "people/Maria Rossi",
            " lead and trail ",
            "a,b:c%2C%d",
            "nbsp\u{a0}and\u{2003}em",
            "%",
            "%zz",
        ] {
            let tag = encode_tag(name);
            assert!(
                !tag.contains([',', ':', ' ']) && !tag.chars().any(char::is_whitespace),
                "{tag:?}"
            );
            assert_eq!(decode_tag(&tag).as_deref(), Some(name));
        }
        assert_eq!(encode_tag("users/bob-1.x"), "users/bob-1.x", "unchanged");
        assert_eq!(decode_tag("%FF"), None);
        assert_eq!(decode_tag("%+1%4"), Some("%+1%4".to_string()));
    }

    #[test]
    fn globs() {
        assert_eq!(sqlite_glob("users/*"), "users/*");
        assert_eq!(sqlite_glob(r"sql/db\*"), "sql/db[*]");
        assert_eq!(sqlite_glob(r"a\?b\[c\\d\e"), r"a[?]b[[]c\de");
        assert_eq!(sqlite_glob(r"x\"), r"x\");
        assert_eq!(sqlite_glob(r"[\]]x"), r"[\]]x");
        assert_eq!(sqlite_glob("[]a]*"), "[]a]*");
        assert_eq!(sqlite_glob("[^]a]"), "[^]a]");
        let literal = crate::base::glob::literal(r"a*b?[c]\d");
        assert_eq!(sqlite_glob(&literal), r"a[*]b[?][[]c]\d");
    }
}
