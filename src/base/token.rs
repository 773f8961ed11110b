//! Bearer tokens kept in files (`token_file` of a remote metadb and of a
//! notification target): one line, read when the configuration is loaded,
//! and never shown.

use std::fmt;
use std::path::Path;

/// A bearer token: kept out of logs and `Debug` output.
#[derive(Clone)]
pub struct Token(String);

impl Token {
    /// The token in `path`, the file of configuration key `key`: one line,
    /// not empty. Read when the configuration is loaded, so that a bad
    /// token file is a configuration error rather than a failure at the
    /// first request.
    pub fn read(key: &str, path: &Path) -> Result<Token, String> {
        read(key, path).map(Token)
    }

    /// The value of an `Authorization` header that presents it.
    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.0)
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

fn read(key: &str, path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {key} {}: {e}", path.display()))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(format!("{key} {} is empty", path.display()));
    }
    if token.lines().count() > 1 {
        return Err(format!(
            "{key} {} holds more than one line: a token is one line",
            path.display()
        ));
    }
    Ok(token.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_one_line() {
        let dir = std::env::temp_dir().join(format!("tabacco-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("token");
        let read = |text: &str| {
            std::fs::write(&path, text).unwrap();
            read("metadb.token_file", &path)
        };
        assert_eq!(read("abc\n"), Ok("abc".to_string()));
        assert_eq!(read("  abc\r\n"), Ok("abc".to_string()));
        let shown = path.display();
        assert_eq!(
            read("\n \n"),
            Err(format!("metadb.token_file {shown} is empty"))
        );
        assert_eq!(
            read("abc\ndef\n"),
            Err(format!(
                "metadb.token_file {shown} holds more than one line: a token is one line"
            ))
        );
        std::fs::write(&path, "abc\n").unwrap();
        let token = Token::read("metadb.token_file", &path).unwrap();
        assert_eq!(token.bearer(), "Bearer abc");
        assert_eq!(format!("{token:?}"), "Token(<redacted>)");
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(super::read("metadb.token_file", &path)
            .unwrap_err()
            .starts_with("cannot read metadb.token_file"));
    }
}
