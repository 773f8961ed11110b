//! Text as shown to a person, in a terminal or a browser: control
//! characters, and the bidirectional formatting ones that reorder what is
//! shown after them (a name with U+202E reads backwards), made visible as
//! escapes. Names and messages come from records any host may have
//! written; showing them must not hide or rearrange anything.

/// `text` with control characters escaped as Rust writes them (`\n`,
/// `\u{1b}`) and bidirectional formatting characters as `\u{202e}`.
pub fn visible(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_debug());
        } else if is_bidi_control(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

/// The Unicode bidirectional formatting characters (UAX #9): embeddings,
/// overrides, isolates and marks.
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_bidi_formatting_are_escaped() {
        assert_eq!(
            visible("x\u{1b}[2J\ny\u{202e}z\u{2067}é"),
            "x\\u{1b}[2J\\ny\\u{202e}z\\u{2067}é"
        );
        assert_eq!(
            visible("users/alice@example.org"),
            "users/alice@example.org"
        );
    }
}
