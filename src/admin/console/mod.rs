//! The web console: `GET /` and its two assets under `/console/`, plain HTML, JS and CSS
//! compiled into the binary (`include_str!`: no build step, no CDN, no external font).
//!
//! The files carry no data, so they are served without the token (a browser's navigation
//! cannot send one): the page asks for the token, keeps it in the tab's sessionStorage (or
//! takes it from the URL fragment `#token=…`, which never reaches a server) and reads every
//! piece of data from the admin API with `fetch` and `Authorization: Bearer`, through the same
//! access checks as `curl` (its replays are same-origin JSON POSTs). A strict
//! Content-Security-Policy allows this origin's script, style and fetches only: no inline
//! script, no framing, no form posts, no other site.

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::Full;

use super::respond::error;

const INDEX: &str = include_str!("index.html");
const SCRIPT: &str = include_str!("console.js");
const STYLE: &str = include_str!("console.css");

/// The policy every console response carries.
pub(crate) const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// True for the paths the console serves (`/`, `/console/…`).
pub(crate) fn is_console(path: &str) -> bool {
    path == "/" || path.starts_with("/console/")
}

/// The file at `path`, or 404.
pub(crate) fn asset(path: &str) -> Response<Full<Bytes>> {
    let (body, content_type) = match path {
        "/" | "/console/" | "/console/index.html" => (INDEX, "text/html; charset=utf-8"),
        "/console/console.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        "/console/console.css" => (STYLE, "text/css; charset=utf-8"),
        _ => return error(StatusCode::NOT_FOUND, "no such console file"),
    };
    let mut resp = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // Always the running binary's files: no stale script after an upgrade.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_and_headers() {
        for (path, ct, needle) in [
            (
                "/",
                "text/html; charset=utf-8",
                "<title>userhook console</title>",
            ),
            (
                "/console/console.js",
                "text/javascript; charset=utf-8",
                "Last-Event-ID",
            ),
            ("/console/console.css", "text/css; charset=utf-8", "--bg"),
        ] {
            let r = asset(path);
            assert_eq!(r.status(), StatusCode::OK, "{path}");
            assert_eq!(r.headers()[header::CONTENT_TYPE], ct);
            assert_eq!(r.headers()[header::CONTENT_SECURITY_POLICY], CSP);
            assert_eq!(r.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
            let body = match path {
                "/" => INDEX,
                "/console/console.js" => SCRIPT,
                _ => STYLE,
            };
            assert!(body.contains(needle), "{path}");
        }
        assert_eq!(asset("/console/../secret").status(), StatusCode::NOT_FOUND);
        assert!(is_console("/") && is_console("/console/x") && !is_console("/consolex"));
    }

    #[test]
    fn the_page_loads_nothing_from_elsewhere_and_writes_no_html() {
        for (name, text) in [("html", INDEX), ("js", SCRIPT), ("css", STYLE)] {
            for banned in ["http://", "https://", "//cdn", "@import", "url("] {
                assert!(!text.contains(banned), "{name} has {banned}");
            }
        }
        // Inline script or style would need 'unsafe-inline'; values go in as text only.
        assert!(!INDEX.contains("<script>") && !INDEX.contains("style="));
        for banned in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
        ] {
            assert!(!SCRIPT.contains(banned), "console.js uses {banned}");
        }
    }
}
