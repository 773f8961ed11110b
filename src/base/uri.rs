//! URIs as tabacco prints them: the credentials in their user info masked.
//! Every message, log line and output that shows a repository URI or the
//! metadb URL goes through [`mask`]; every line a child process prints
//! (restic quotes some repository URIs as given) through [`mask_text`].
//! A notification URL carries its secret in its path or query (a
//! healthchecks.io check's UUID or ping key, an ntfy topic, a Slack or
//! Mattermost hook), so it is shown through [`mask_path`]. Where a
//! repository is, whatever credentials each host reaches it with, is
//! [`location`].

/// `uri` with its user info masked: a password becomes `***` (`user:***@`,
/// as restic prints it); a user name alone, which may be a token, becomes
/// `***`. Covers `scheme://user:pw@host/...` URLs, restic's
/// `backend:scheme://...` and `sftp:user@host:/path` forms, and leaves
/// local paths alone.
pub fn mask(uri: &str) -> String {
    match user_info(uri) {
        Some((start, end)) => format!(
            "{}{}{}",
            &uri[..start],
            mask_user_info(&uri[start..end]),
            &uri[end..]
        ),
        None => uri.to_string(),
    }
}

/// Where `uri`'s user info is (its bytes before the `@`), if it has any; a
/// local path has none.
fn user_info(uri: &str) -> Option<(usize, usize)> {
    if uri.starts_with('/') {
        return None;
    }
    let start = match (uri.find("://"), uri.find(':')) {
        (Some(i), _) => i + 3,
        (None, Some(i)) => i + 1,
        (None, None) => return None,
    };
    let rest = &uri[start..];
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    authority.rfind('@').map(|at| (start, start + at))
}

/// Where repository `uri` is, the same for every host that spells it the
/// same apart from its credentials: without user info (which differs
/// between hosts, and is secret), runs of `/` in a local path made one,
/// and without a trailing `/`.
pub fn location(uri: &str) -> String {
    let plain = if uri.starts_with('/') {
        let mut path = String::with_capacity(uri.len());
        for c in uri.chars() {
            if !(c == '/' && path.ends_with('/')) {
                path.push(c);
            }
        }
        path
    } else {
        match user_info(uri) {
            Some((start, end)) => format!("{}{}", &uri[..start], &uri[end + 1..]),
            None => uri.to_string(),
        }
    };
    match plain.trim_end_matches('/') {
        "" => plain,
        trimmed => trimmed.to_string(),
    }
}

/// `url` as [`mask`] shows it, and everything after its host (path, query,
/// fragment) shown as `/***` where there is any: enough to tell which
/// service a target is, nothing that lets anyone else post to it.
pub fn mask_path(url: &str) -> String {
    let masked = mask(url);
    let Some(scheme_end) = masked.find("://").map(|i| i + 3) else {
        return masked;
    };
    let authority_end = masked[scheme_end..]
        .find(['/', '?', '#'])
        .map_or(masked.len(), |i| scheme_end + i);
    match &masked[authority_end..] {
        "" | "/" => masked,
        _ => format!("{}/***", &masked[..authority_end]),
    }
}

/// `text` with the user info of every `scheme://user:password@host` in it
/// masked as [`mask`] does. Addresses like `alice@example.org`, without
/// `://`, are left alone.
pub fn mask_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c == '/' || c.is_whitespace() || "\"'<>".contains(c))
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => {
                out.push_str(&mask_user_info(&authority[..at]));
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// `user:***` for `user:password`; `***` for a user name alone.
fn mask_user_info(user_info: &str) -> String {
    match user_info.split_once(':') {
        Some((user, _)) => format!("{user}:***"),
        None => "***".to_string(),
    }
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

    #[test]
    fn a_location_is_the_same_for_every_host_that_spells_it_alike() {
        for (uri, expected) in [
            (
                "rest:http://hosta:SECRET@127.0.0.1:8000/repo/",
                "rest:http://127.0.0.1:8000/repo",
            ),
            (
                "rest:http://hostb:OTHER@127.0.0.1:8000/repo",
                "rest:http://127.0.0.1:8000/repo",
            ),
            ("sftp:backup@host:/srv/repo", "sftp:host:/srv/repo"),
            ("s3:https://s3.example.org/b", "s3:https://s3.example.org/b"),
            ("/srv//backup/repo/", "/srv/backup/repo"),
            ("/", "/"),
        ] {
            assert_eq!(location(uri), expected, "{uri}");
        }
    }

    #[test]
    fn notification_paths_are_masked() {
        for (url, shown) in [
            (
                "https://hc-ping.com/PINGKEY/${host}-${source}",
                "https://hc-ping.com/***",
            ),
            ("https://ntfy.sh/SECRET-TOPIC", "https://ntfy.sh/***"),
            (
                "http://u:pw@127.0.0.1:8080?token=SECRET",
                "http://u:***@127.0.0.1:8080/***",
            ),
            ("https://hooks.example.org/", "https://hooks.example.org/"),
            ("https://hooks.example.org", "https://hooks.example.org"),
            ("not a url", "not a url"),
        ] {
            assert_eq!(mask_path(url), shown, "{url}");
        }
    }

    #[test]
    fn credentials_in_text_are_masked() {
        for (text, shown) in [
            (
                "s3:http://u:SECRET@127.0.0.1:1/bucket",
                "s3:http://u:***@127.0.0.1:1/bucket",
            ),
            (
                "Get \"https://TOKEN@h/x\": no; at rest:http://u:***@h/r/",
                "Get \"https://***@h/x\": no; at rest:http://u:***@h/r/",
            ),
            (
                "atom users/alice@example.org saved",
                "atom users/alice@example.org saved",
            ),
            ("ends with ://", "ends with ://"),
            (
                "http://h/a@b and ftp://x:y@z",
                "http://h/a@b and ftp://x:***@z",
            ),
        ] {
            assert_eq!(mask_text(text), shown, "{text}");
        }
    }
}
