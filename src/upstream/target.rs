//! Where the IAM is: its base URL, checked once at config load and split so that each
//! request only swaps in a path.
//!
//! Never: resolve, dial or otherwise touch the network (that is the connector's).

use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderValue, Uri};

/// Why `upstream:` in the config is not a usable IAM address; the text is the operator's.
#[derive(Debug, thiserror::Error)]
pub enum InvalidUpstream {
    /// Not a URI at all.
    #[error("`{url}` is not a URL ({reason}); expected e.g. http://127.0.0.1:8081")]
    NotAUrl {
        /// The configured value.
        url: String,
        /// What the URI parser said.
        reason: http::uri::InvalidUri,
    },
    /// Neither `http://` nor `https://`.
    #[error("`{url}` must start with http:// or https://")]
    Scheme {
        /// The configured value.
        url: String,
    },
    /// No host to connect to.
    #[error("`{url}` has no host")]
    NoHost {
        /// The configured value.
        url: String,
    },
    /// A query string, which no request target could keep.
    #[error("`{url}` must not have a query string")]
    Query {
        /// The configured value.
        url: String,
    },
    /// A host that cannot be sent as `Host`.
    #[error("`{url}` has a host that is not a valid Host header")]
    Host {
        /// The configured value.
        url: String,
    },
}

/// The IAM's base URL, split once at load so each request only swaps scheme and authority.
#[derive(Debug, Clone)]
pub struct Upstream {
    scheme: Scheme,
    authority: Authority,
    /// Path prefix without a trailing slash; empty when the IAM is at the root.
    base_path: String,
    /// `Host` for the upstream when the client's is not preserved.
    host_header: HeaderValue,
}

impl Upstream {
    /// Parses `http://host:port[/prefix]` or `https://...`, so a bad `upstream:` fails the
    /// config load instead of every request.
    pub fn parse(url: &str) -> Result<Self, InvalidUpstream> {
        let uri: Uri = url.parse().map_err(|reason| InvalidUpstream::NotAUrl {
            url: url.to_owned(),
            reason,
        })?;
        let scheme = match uri.scheme_str() {
            Some("http") => Scheme::HTTP,
            Some("https") => Scheme::HTTPS,
            _ => {
                return Err(InvalidUpstream::Scheme {
                    url: url.to_owned(),
                })
            }
        };
        let authority = uri
            .authority()
            .cloned()
            .ok_or_else(|| InvalidUpstream::NoHost {
                url: url.to_owned(),
            })?;
        if uri.query().is_some() {
            return Err(InvalidUpstream::Query {
                url: url.to_owned(),
            });
        }
        let base_path = uri.path().trim_end_matches('/').to_string();
        let host_header =
            HeaderValue::from_str(authority.as_str()).map_err(|_| InvalidUpstream::Host {
                url: url.to_owned(),
            })?;
        Ok(Upstream {
            scheme,
            authority,
            base_path,
            host_header,
        })
    }

    /// `host:port`, for readiness probes and messages.
    pub fn authority(&self) -> &Authority {
        &self.authority
    }

    /// The scheme, for readiness probes (which port to assume).
    pub fn is_https(&self) -> bool {
        self.scheme == Scheme::HTTPS
    }

    /// The `Host` header naming the upstream itself, for requests whose client's `Host` is
    /// not preserved.
    pub fn host_header(&self) -> &HeaderValue {
        &self.host_header
    }

    /// `scheme://authority/`: what hyper's connector dials.
    pub(super) fn origin(&self) -> Result<Uri, http::Error> {
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query("/")
            .build()
    }

    /// Host and port for the inline client; `None` for a TLS upstream, which it cannot take.
    pub(super) fn plain_host_port(&self) -> Option<(String, u16)> {
        (!self.is_https()).then(|| {
            let host = self.authority.host();
            // `[::1]` in a URL is `::1` to the resolver.
            let host = host.trim_start_matches('[').trim_end_matches(']');
            (host.to_owned(), self.authority.port_u16().unwrap_or(80))
        })
    }

    /// The origin-form request target for a client request's path and query. Without a
    /// base path this reuses the client's path bytes (no copy).
    pub fn uri_for(&self, pq: Option<&PathAndQuery>) -> Result<Uri, http::Error> {
        let pq = match (self.base_path.is_empty(), pq) {
            (true, Some(pq)) => pq.clone(),
            (true, None) => PathAndQuery::from_static("/"),
            (false, pq) => {
                let rest = pq.map(|p| p.as_str()).unwrap_or("/");
                let mut joined = String::with_capacity(self.base_path.len() + rest.len());
                joined.push_str(&self.base_path);
                joined.push_str(rest);
                PathAndQuery::try_from(joined)?
            }
        };
        Ok(Uri::from(pq))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_without_base_reuses_path() {
        let up = Upstream::parse("http://127.0.0.1:8081").expect("parse");
        let pq = PathAndQuery::from_static("/users/1?x=1");
        assert_eq!(
            up.uri_for(Some(&pq)).expect("uri").to_string(),
            "/users/1?x=1"
        );
    }

    #[test]
    fn uri_with_base_prefixes() {
        let up = Upstream::parse("https://iam.internal/base/").expect("parse");
        let pq = PathAndQuery::from_static("/users?x=1");
        assert_eq!(
            up.uri_for(Some(&pq)).expect("uri").to_string(),
            "/base/users?x=1"
        );
        assert_eq!(up.host_header().as_bytes(), b"iam.internal");
    }

    #[test]
    fn rejects_bad_upstreams() {
        let scheme = Upstream::parse("ftp://x").unwrap_err();
        assert!(matches!(scheme, InvalidUpstream::Scheme { .. }), "{scheme}");
        assert!(scheme.to_string().contains("http://"));
        assert!(Upstream::parse("not a url").is_err());
        let query = Upstream::parse("http://x/?q=1").unwrap_err();
        assert!(matches!(query, InvalidUpstream::Query { .. }), "{query}");
        assert!(query.to_string().contains("query"));
    }
}
