//! Query strings and form bodies (`application/x-www-form-urlencoded`):
//! values percent-encoded for the links the console writes and the URLs
//! notifications call, and pairs decoded from what a browser sends. Names
//! any host wrote travel in them, so everything but the unreserved
//! characters of RFC 3986 is encoded.

/// `text` percent-encoded: every byte but `A-Z a-z 0-9 - . _ ~`.
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The `name=value` pairs of a query string or form body, decoded (`+` is
/// a space); a pair without `=` has an empty value. Bytes that do not
/// decode to UTF-8 are replaced, as a malformed escape is kept as written.
pub fn pairs(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(name), decode(value))
        })
        .collect()
}

/// The value of the first pair called `name` in `text`, if not empty.
pub fn value(text: &str, name: &str) -> Option<String> {
    pairs(text)
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok());
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_encoded_decodes_back() {
        for text in [
            "users/alice*",
            "a b&c=d+e%",
            "x\"'<script>",
            "\u{202e}é😀",
            "",
        ] {
            let query = format!("v={}&other=1", encode(text));
            assert_eq!(value(&query, "v").unwrap_or_default(), text, "{query}");
        }
        assert_eq!(encode("a b/c"), "a%20b%2Fc");
    }

    #[test]
    fn browsers_forms_and_malformed_escapes() {
        assert_eq!(
            pairs("token=a+b%21&next=%2Fhost%3Fname%3Dweb1&flag"),
            [
                ("token".to_string(), "a b!".to_string()),
                ("next".to_string(), "/host?name=web1".to_string()),
                ("flag".to_string(), String::new()),
            ]
        );
        assert_eq!(value("a=%zz%4", "a").as_deref(), Some("%zz%4"));
        assert_eq!(value("a=%ff", "a").as_deref(), Some("\u{fffd}"));
        assert_eq!(value("a=&b=1", "a"), None);
        assert_eq!(value("", "a"), None);
    }
}
