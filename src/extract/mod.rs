//! Extraction: from a matched exchange to a user event.
//!
//! Runs off the request path, after the response completed. It picks the rule whose outcome
//! matches, reads the user's fields through the view (bodies decoded and parsed at most once),
//! fills gaps from the user cache and stamps the event. It must never panic on any body, and
//! never put a credential into an event unless an operator's rule names it explicitly.

pub mod cache;
pub mod decode;
pub mod json_index;
pub mod jwt;
pub mod partial_json;
pub mod source;
pub mod view;

use std::sync::atomic::{AtomicU64, Ordering};

use crate::detect::RuleKind;
use crate::event::{Action, RequestInfo, UserEvent};
use crate::exchange::Exchange;
use cache::UserCache;
use view::View;

/// Turns exchanges into events; lives across config reloads (it owns the user cache).
#[derive(Debug)]
pub struct Extractor {
    /// Next event sequence number; starts at 1 and grows by one per event.
    seq: AtomicU64,
    cache: UserCache,
}

impl Extractor {
    /// An extractor whose user cache holds `capacity` users (0 disables the cache).
    pub fn new(capacity: usize) -> Self {
        Extractor {
            seq: AtomicU64::new(1),
            cache: UserCache::new(capacity),
        }
    }

    /// Applies a reloaded `user_cache.capacity`, keeping the most recent users.
    pub fn set_capacity(&self, capacity: usize) {
        self.cache.set_capacity(capacity);
    }

    /// The user cache, for metrics and tests.
    pub fn cache(&self) -> &UserCache {
        &self.cache
    }

    /// The event this exchange means, if its outcome matches a rule.
    pub fn process(&self, ex: &Exchange) -> Option<UserEvent> {
        let capture_limit = usize::try_from(ex.runtime.file.capture_limit.0).unwrap_or(usize::MAX);
        let view = View::new(ex, capture_limit.saturating_mul(decode::EXPANSION_FACTOR));
        let rule = ex.runtime.routes.resolve(&ex.route, &view)?;
        let mut fields = rule.extract(&view);
        let action = match rule.kind {
            RuleKind::Remember => {
                self.cache.remember(&fields);
                return None;
            }
            RuleKind::Event(action) => action,
        };
        // A login or logout of nobody (e.g. Keycloak's logout confirmation page) is no event.
        if matches!(action, Action::Login | Action::Logout) && fields.is_empty() {
            return None;
        }
        if matches!(action, Action::Updated | Action::Deleted | Action::Logout) {
            self.cache.fill(&mut fields);
        }
        match action {
            Action::Created | Action::Updated | Action::Login => self.cache.remember(&fields),
            Action::Deleted => self.cache.forget(&fields),
            Action::Logout | Action::LoginFailed => {}
        }
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        Some(UserEvent::new(
            seq,
            action,
            fields,
            request_info(ex),
            view.truncated(),
        ))
    }
}

/// Where the event came from: method, path without query, status, client and request ids.
fn request_info(ex: &Exchange) -> RequestInfo {
    RequestInfo {
        method: ex.method.as_str().to_owned(),
        path: ex.uri.path().to_owned(),
        status: ex.status.as_u16(),
        remote_addr: ex
            .remote_ip
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
        request_id: String::from_utf8_lossy(ex.request_id.as_bytes()).into_owned(),
        user_agent: ex
            .request_headers
            .get(http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
    }
}

#[cfg(test)]
mod tests;
