//! Text as shown to a person, in a terminal, a log or a browser: `\`
//! itself, control characters, the line and paragraph separators and the
//! bidirectional formatting characters that reorder what is shown after
//! them (a name with U+202E reads backwards), made visible as escapes.
//! Names, messages and the output of commands come from records any host
//! may have written, and from child processes; showing them must not hide,
//! forge or rearrange anything. This is the one such function: the logger,
//! `main`'s error line, tables, status lines and pages all use it.

/// `text` on one line, as written: `\` as `\\`, control characters
/// escaped as Rust writes them (`\n`, `\u{1b}`), the line and paragraph
/// separators and bidirectional formatting characters as `\u{202e}`. So a
/// literal `\u{202e}` (shown `\\u{202e}`) and the character differ.
pub fn visible(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c == '\\' {
            out.push_str("\\\\");
        } else if c.is_control() {
            out.extend(c.escape_debug());
        } else if is_layout_control(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

/// The characters that are not control characters but change where what
/// follows them is shown: the bidirectional formatting characters and the
/// line and paragraph separators.
pub fn is_layout_control(c: char) -> bool {
    is_bidi_control(c) || matches!(c, '\u{2028}' | '\u{2029}')
}

/// The Unicode bidirectional formatting characters (UAX #9): embeddings,
/// overrides, isolates and marks.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_bidi_formatting_are_escaped() {
        assert_eq!(
            visible("x\u{1b}[2J\ny\u{202e}z\u{2067}é\u{2028}"),
            "x\\u{1b}[2J\\ny\\u{202e}z\\u{2067}é\\u{2028}"
        );
        assert_eq!(
            visible("users/alice@example.org"),
            "users/alice@example.org"
        );
    }

    // Issue 26.10: tables did not escape `\` itself, so a literal
    // `\u{202e}` and a real U+202E looked the same.
    #[test]
    fn a_literal_escape_and_the_character_differ() {
        let (literal, real) = (visible("a\\u{202e}b"), visible("a\u{202e}b"));
        assert_eq!(literal, "a\\\\u{202e}b");
        assert_eq!(real, "a\\u{202e}b");
        assert_ne!(literal, real);
    }
}
