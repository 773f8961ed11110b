//! The sign-in page (`GET /signin`): a form that posts a token, which the
//! server exchanges for a session (`console`). The token goes in the
//! body of a POST to this same server, never in a URL; the page returns
//! the browser to where it was sent from (`next`, a path of this server).

use crate::metadb::server::page::layout::{document, text, Frame};
use std::fmt::Write;

/// The page, with `problem` said above the form if there is one.
pub fn render(frame: &Frame, next: &str, problem: Option<&str>) -> String {
    let mut body = String::from("<h1>Sign in</h1>\n");
    if let Some(problem) = problem {
        let _ = writeln!(body, "<p class=\"failed\">{}</p>", text(problem));
    }
    let _ = writeln!(
        body,
        "<form method=\"post\" action=\"/signin\">\
         <label>Token <input type=\"password\" name=\"token\" autocomplete=\"off\" \
         autofocus required size=\"48\"></label>\
         <input type=\"hidden\" name=\"next\" value=\"{}\"> <button>Sign in</button></form>\n\
         <p class=\"note\">A token of metadb.yml: an admin's sees the whole fleet, a host's \
         what <code>host_read</code> lets it read. The browser keeps a session cookie, not the \
         token; a session ends at sign-out, after 12 hours, or when the server restarts.</p>",
        text(next)
    );
    document(frame, "Sign in", None, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_posting_the_token_with_where_to_go_next() {
        let frame = Frame {
            who: "".into(),
            signed_in: false,
            now: "2026-01-01T00:00:00Z".into(),
        };
        let page = render(&frame, "/host?name=\"x\"", Some("unknown token"));
        assert!(page.contains("<form method=\"post\" action=\"/signin\">"));
        assert!(page.contains("type=\"password\" name=\"token\""));
        assert!(
            page.contains("name=\"next\" value=\"/host?name=&quot;x&quot;\""),
            "{page}"
        );
        assert!(page.contains("<p class=\"failed\">unknown token</p>"));
    }
}
