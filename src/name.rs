//! The one rule for source and atom names, which become restic tags, paths
//! inside snapshots and shell arguments: `[A-Za-z0-9._-]` segments joined by
//! `/`, never empty, never `.` or `..`.

/// Checks a source name or a full atom name.
pub fn validate(name: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("invalid name {name:?}: {why}"));
    if name.is_empty() {
        return bad("empty");
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
        if let Some(c) = segment
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        {
            return bad(&format!(
                "character {c:?} is not allowed (use A-Z a-z 0-9 . _ - and /)"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::validate;

    #[test]
    fn names() {
        for good in ["users", "users/account1", "myservice/data", "a.b_c-d/E9"] {
            assert_eq!(validate(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "/abs",
            "a//b",
            "a/",
            "..",
            "a/../b",
            "./a",
            "$(touch x)",
            "a b",
            "a;b",
            "é",
            "a\nb",
            "`id`",
        ] {
            assert!(validate(bad).is_err(), "{bad:?} accepted");
        }
    }
}
