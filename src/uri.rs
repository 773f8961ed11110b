//! URIs as tabacco prints them: the credentials in their user info masked.
//! Every message, log line and output that shows a repository URI or the
//! metadb URL goes through [`mask`]; what restic prints of its repository
//! is restic's to mask (it prints `rest:http://user:***@host/`).

/// `uri` with its user info masked: a password becomes `***` (`user:***@`,
/// as restic prints it); a user name alone, which may be a token, becomes
/// `***`. Covers `scheme://user:pw@host/...` URLs, restic's
/// `backend:scheme://...` and `sftp:user@host:/path` forms, and leaves
/// local paths alone.
pub fn mask(uri: &str) -> String {
    if uri.starts_with('/') {
        return uri.to_string();
    }
    let start = match (uri.find("://"), uri.find(':')) {
        (Some(i), _) => i + 3,
        (None, Some(i)) => i + 1,
        (None, None) => return uri.to_string(),
    };
    let rest = &uri[start..];
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    let Some(at) = authority.rfind('@') else {
        return uri.to_string();
    };
    let user_info = match authority[..at].split_once(':') {
        Some((user, _)) => format!("{user}:***"),
        None => "***".to_string(),
    };
    format!("{}{user_info}{}", &uri[..start], &rest[at..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_masked() {
        for (uri, shown) in [
            (
                "rest:http://u:SECRET@127.0.0.1:8000/repo",
                "rest:http://u:***@127.0.0.1:8000/repo",
            ),
            ("rest:https://TOKEN@host/", "rest:https://***@host/"),
            ("https://u:p:w@metadb:5332/x", "https://u:***@metadb:5332/x"),
            ("http://u:a@b@metadb/x@y", "http://u:***@metadb/x@y"),
            (
                "sftp:user:SECRET@host:/srv/repo",
                "sftp:user:***@host:/srv/repo",
            ),
            (
                "sftp://backup@host:22//srv/repo",
                "sftp://***@host:22//srv/repo",
            ),
            (
                "s3:https://s3.example.org/bucket",
                "s3:https://s3.example.org/bucket",
            ),
            ("b2:bucket:path", "b2:bucket:path"),
            ("/srv/a@b:c", "/srv/a@b:c"),
            ("http://metadb:5332", "http://metadb:5332"),
            ("http://metadb/a@b", "http://metadb/a@b"),
            ("", ""),
        ] {
            assert_eq!(mask(uri), shown, "{uri}");
        }
    }
}
