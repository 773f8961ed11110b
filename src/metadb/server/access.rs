//! Who reads the console's pages, and signing a browser in and out.
//!
//! Unless `page: open` (or no token is configured, on loopback), a page
//! needs a token: a bearer token as the API takes it (curl, scripts), or a
//! browser session. A browser signs in by posting a token through the
//! sign-in form; the server answers with a cookie holding a random session
//! id (HttpOnly, SameSite=Strict, and Secure behind a proxy that says the
//! request came over https), never the token (`session`). A page asked for
//! without either sends the browser to the sign-in form, and back after.
//! Forms are only taken from the server's own pages (`Origin`), so that
//! no other site can sign a browser in. What each identity may read is
//! `console`'s, as the API's endpoints decide it.

use crate::base::form;
use crate::http::{self, Response};
use crate::metadb::server::auth::{Digest, Identity};
use crate::metadb::server::body::Answer;
use crate::metadb::server::config::{PageAccess, Policy};
use crate::metadb::server::endpoint::{Call, Reply};
use crate::metadb::server::page::layout::Frame;
use crate::metadb::server::page::signin;
use crate::metadb::server::session::SESSION_TTL;
use crate::metadb::server::Shared;

/// The session cookie's name.
const COOKIE: &str = "tabacco_session";

/// Headers of every page: nothing runs but the page itself (no script at
/// all), nothing is loaded from elsewhere, no other site frames it, its
/// URLs (which name hosts) are not sent to other sites, and nothing is
/// cached. (`no-referrer` would make a browser send its forms with
/// `Origin: null`, which [`same_origin`] must refuse.)
const HEADERS: [(&str, &str); 5] = [
    (
        "Content-Security-Policy",
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "same-origin"),
    ("Cache-Control", "no-store"),
];

/// A page's answer: `html` with `status` and the page headers.
pub fn html(status: u16, html: String) -> Response<'static> {
    with(status, html, Vec::new())
}

fn with(status: u16, html: String, mut headers: Vec<(&'static str, String)>) -> Response<'static> {
    headers.extend(HEADERS.iter().map(|(n, v)| (*n, (*v).to_string())));
    Answer::text(status, html, "text/html; charset=utf-8").with_headers(headers)
}

/// Whether anyone may read the pages.
pub fn is_open(policy: &Policy) -> bool {
    policy.page == PageAccess::Open || policy.tokens.is_empty()
}

/// Who asks for a page: anyone (as the admin) if the pages are open, else
/// the owner of the bearer token or of the browser's session; otherwise
/// the answer that refuses (401 for an unknown bearer token) or sends the
/// browser to sign in.
pub fn identify(
    shared: &Shared,
    policy: &Policy,
    request: &http::Request,
) -> Result<Identity, Response<'static>> {
    if is_open(policy) {
        return Ok(Identity::Admin);
    }
    // Only a bearer token is ours: a proxy's own Basic authentication
    // leaves the session to say who it is.
    let bearer = request.header("Authorization").filter(|h| {
        h.trim_start()
            .get(..7)
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case("bearer "))
    });
    if let Some(header) = bearer {
        return policy.tokens.identify(Some(header)).ok_or_else(|| {
            let page = refusal(401, "The bearer token is not known.");
            let mut response = html(401, page);
            response.headers.push(("WWW-Authenticate", "Bearer".into()));
            response
        });
    }
    let session = session_id(request.header("Cookie"));
    if let Some(identity) = session
        .and_then(|id| shared.sessions.digest(id))
        .and_then(|digest| policy.tokens.identify_digest(&digest))
    {
        return Ok(identity);
    }
    let location = format!("/signin?next={}", form::encode(&request.target));
    let mut headers = vec![("Location", location)];
    if session.is_some() {
        // Expired, closed, or its token is no longer configured.
        headers.push(("Set-Cookie", clear_cookie()));
    }
    Err(with(
        303,
        refusal(303, "Sign in to see this page."),
        headers,
    ))
}

/// The bar of a page for `call`'s caller.
pub fn frame(call: &Call) -> Frame {
    let open = is_open(&call.policy);
    Frame {
        who: if open {
            "open to all".to_string()
        } else {
            call.identity.to_string()
        },
        signed_in: !open && session_id(call.request.header("Cookie")).is_some(),
        now: crate::base::time::format(chrono::Utc::now()),
    }
}

/// `GET /signin`: the form.
pub fn signin_form<'a>(_: &'a Shared, call: Call) -> Reply<'a> {
    let next = next(call.request.target.split_once('?').map_or("", |(_, q)| q));
    Ok(html(200, page(&call, &next, None)))
}

/// `POST /signin`: a token from the form, for a session; back to `next`.
pub fn sign_in<'a>(shared: &'a Shared, call: Call) -> Reply<'a> {
    if !same_origin(call.request.header("Origin"), call.request.header("Host")) {
        return Ok(html(
            403,
            refusal(403, "Sign in from this server's own form."),
        ));
    }
    let body = String::from_utf8_lossy(&call.request.body);
    let next = next(&body);
    if call.policy.tokens.is_empty() {
        return Ok(redirect(&next, Vec::new()));
    }
    let token = form::value(&body, "token").unwrap_or_default();
    let digest = Digest::of(token.trim());
    let Some(identity) = call.policy.tokens.identify_digest(&digest) else {
        log::info!("metadb: console: a sign-in with an unknown token was refused");
        return Ok(html(
            401,
            page(&call, &next, Some("That token is not known.")),
        ));
    };
    let id = shared.sessions.open(digest).map_err(|e| {
        log::error!("metadb: console: cannot open a session: {e}");
        Answer::error(500, "cannot open a session")
    })?;
    log::info!("metadb: console: {identity} signed in");
    let secure = call
        .request
        .header("X-Forwarded-Proto")
        .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"));
    let cookie = format!(
        "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        SESSION_TTL.as_secs(),
        if secure { "; Secure" } else { "" }
    );
    Ok(redirect(&next, vec![("Set-Cookie", cookie)]))
}

/// `POST /signout`: ends the browser's session.
pub fn sign_out<'a>(shared: &'a Shared, call: Call) -> Reply<'a> {
    if !same_origin(call.request.header("Origin"), call.request.header("Host")) {
        return Ok(html(
            403,
            refusal(403, "Sign out from this server's own pages."),
        ));
    }
    if let Some(id) = session_id(call.request.header("Cookie")) {
        shared.sessions.close(id);
    }
    Ok(redirect("/signin", vec![("Set-Cookie", clear_cookie())]))
}

/// The sign-in page for `call`, going to `next` after.
fn page(call: &Call, next: &str, problem: Option<&str>) -> String {
    let mut frame = frame(call);
    frame.signed_in = false;
    signin::render(&frame, next, problem)
}

/// A short page saying why a page is not shown.
pub fn refusal(status: u16, why: &str) -> String {
    let frame = Frame {
        who: String::new(),
        signed_in: false,
        now: crate::base::time::format(chrono::Utc::now()),
    };
    let body = format!(
        "<h1>{status}</h1>\n<p>{}</p>\n<p><a href=\"/signin\">Sign in</a> · <a href=\"/\">Fleet</a></p>\n",
        crate::metadb::server::page::layout::text(why)
    );
    crate::metadb::server::page::layout::document(&frame, &status.to_string(), None, &body)
}

/// A 303 to `location` (a path of this server).
fn redirect(location: &str, mut headers: Vec<(&'static str, String)>) -> Response<'static> {
    headers.push(("Location", location.to_string()));
    with(303, refusal(303, "Moved on."), headers)
}

/// Where to go after signing in, from the `next` of `query` (a query or
/// form body): a path of this server, else the fleet. Anything that could
/// lead elsewhere (`//host`, `/\host`, a scheme) or break the header is
/// refused.
fn next(query: &str) -> String {
    form::value(query, "next")
        .filter(|n| {
            n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains('\\')
                && n.bytes().all(|b| b.is_ascii_graphic())
                && !n.starts_with("/signin")
        })
        .unwrap_or_else(|| "/".to_string())
}

/// The session id in a request's `Cookie` header, if it sends one.
fn session_id(cookie: Option<&str>) -> Option<&str> {
    cookie?
        .split(';')
        .find_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='))
        .filter(|id| !id.is_empty())
}

fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// Whether a form comes from this server's own page: its `origin`, if
/// the browser sends one, names the `host` the request was sent to (ports
/// left aside: a proxy may pass the host without its port).
fn same_origin(origin: Option<&str>, host: Option<&str>) -> bool {
    let Some(origin) = origin else {
        return true;
    };
    let host_of = |authority: &str| {
        let authority = authority.trim().trim_end_matches('/');
        match authority.rsplit_once(':') {
            Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
            _ => authority,
        }
        .to_ascii_lowercase()
    };
    match (origin.split_once("://"), host) {
        (Some((_, origin)), Some(host)) => host_of(origin) == host_of(host),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_this_server() {
        assert_eq!(next("next=%2Fhost%3Fname%3Dweb1"), "/host?name=web1");
        for bad in [
            "next=https%3A%2F%2Fevil.example",
            "next=%2F%2Fevil.example",
            "next=%2F%5Cevil.example",
            "next=%2Fa%0d%0aSet-Cookie%3A+x",
            "next=%2Fsignin",
            "next=",
            "",
        ] {
            assert_eq!(next(bad), "/", "{bad}");
        }
    }

    #[test]
    fn the_session_cookie_among_others() {
        assert_eq!(
            session_id(Some("a=1; tabacco_session=abc; b=2")),
            Some("abc")
        );
        assert_eq!(session_id(Some("tabacco_session=")), None);
        assert_eq!(session_id(Some("x_tabacco_session=1")), None);
        assert_eq!(session_id(None), None);
    }

    #[test]
    fn forms_from_other_sites_are_refused() {
        assert!(same_origin(None, Some("127.0.0.1:5333")));
        let local = Some("127.0.0.1:5333");
        assert!(same_origin(Some("http://127.0.0.1:5333"), local));
        let proxied = Some("metadb.example");
        assert!(same_origin(Some("https://Metadb.example:5332"), proxied));
        assert!(!same_origin(Some("https://evil.example"), proxied));
        assert!(!same_origin(Some("null"), Some("a")));
        assert!(!same_origin(Some("http://a"), None));
    }
}
