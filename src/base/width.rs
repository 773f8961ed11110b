//! How many terminal columns a text takes: tables align names that any
//! host may have written, and a tenant called `ユーザー` takes eight
//! columns for its four characters. East Asian wide and fullwidth
//! characters (and emoji) take two, combining marks and zero-width
//! characters none, the rest one: the blocks that matter for names, not
//! all of Unicode's width tables.

/// The columns `text` takes on a terminal.
pub fn columns(text: &str) -> usize {
    text.chars().map(char_columns).sum()
}

/// The columns one character takes.
pub fn char_columns(c: char) -> usize {
    match c {
        // Combining marks, zero-width spaces and joiners, variation selectors.
        '\u{0300}'..='\u{036f}'
        | '\u{1ab0}'..='\u{1aff}'
        | '\u{1dc0}'..='\u{1dff}'
        | '\u{200b}'..='\u{200d}'
        | '\u{20d0}'..='\u{20ff}'
        | '\u{fe00}'..='\u{fe0f}'
        | '\u{fe20}'..='\u{fe2f}' => 0,
        // Hangul Jamo, CJK (radicals to compatibility), Yi, Hangul
        // syllables, CJK compatibility ideographs, vertical and small forms,
        // fullwidth forms, emoji and pictographs, the supplementary
        // ideographic planes.
        '\u{1100}'..='\u{115f}'
        | '\u{2e80}'..='\u{303e}'
        | '\u{3041}'..='\u{33ff}'
        | '\u{3400}'..='\u{4dbf}'
        | '\u{4e00}'..='\u{9fff}'
        | '\u{a000}'..='\u{a4cf}'
        | '\u{ac00}'..='\u{d7a3}'
        | '\u{f900}'..='\u{faff}'
        | '\u{fe30}'..='\u{fe4f}'
        | '\u{ff00}'..='\u{ff60}'
        | '\u{ffe0}'..='\u{ffe6}'
        | '\u{1f300}'..='\u{1f64f}'
        | '\u{1f900}'..='\u{1f9ff}'
        | '\u{20000}'..='\u{2fffd}'
        | '\u{30000}'..='\u{3fffd}' => 2,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wide_characters_take_two_columns_and_marks_none() {
        assert_eq!(columns("alice@example.org"), 17);
        assert_eq!(columns("ユーザー"), 8);
        assert_eq!(columns("사용자"), 6);
        assert_eq!(columns("用户/数据"), 9);
        assert_eq!(columns("ＡＢ"), 4);
        assert_eq!(columns("😀"), 2);
        assert_eq!(columns("e\u{301}"), 1, "e and a combining acute");
        assert_eq!(columns("ünïcödé"), 7);
        assert_eq!(columns(""), 0);
    }
}
