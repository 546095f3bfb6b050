//! Every response the admin API writes, in one place: JSON with a stable `{"error": …}`
//! shape for refusals. Messages are the handlers' own sentences; nothing here may add
//! internals (paths, addresses, stack traces) to what a caller sees.

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::Full;

/// A JSON response with `status` and a body already serialised.
pub(crate) fn json(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// 200 with `value` as JSON (500 in the unlikely case it cannot be serialised).
pub(crate) fn ok<T: serde::Serialize>(value: &T) -> Response<Full<Bytes>> {
    match serde_json::to_string(value) {
        Ok(body) => json(StatusCode::OK, body),
        Err(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "cannot serialise the answer",
        ),
    }
}

/// 200 with YAML text (`GET /learn`).
pub(crate) fn yaml(body: String) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/yaml; charset=utf-8"),
    );
    resp
}

/// `status` with `{"error": message}`.
pub(crate) fn error(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    json(status, serde_json::json!({ "error": message }).to_string())
}
