//! The extractor: from a matched exchange to a user event.
//!
//! Runs on the extractor task, off the request path, after the response completed. It asks
//! detection which rule fired (`detect`), reads the rule's fields with the trust each source
//! deserves, names the user from what identity knows (the session index for a presented
//! credential, the cache's secondary keys for a bare name or email), fills the gaps from the
//! user cache, learns what the call taught (issued credentials, user attributes) and stamps
//! the event with its sequence number and attribution. A call the IAM confirmed is always an
//! event, even when nobody can be named (`attribution: none`). It must never panic on any
//! exchange, and never put a credential into an event unless an operator's rule names it
//! explicitly: session credentials are only ever hashed.

pub mod changes;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::dispatch::Dispatcher;
use super::handoff::{Handoff, HandoffReceiver};
pub use super::identity::users as user_cache;
use super::identity::{jwks, unix_now, Identity};
use crate::detect::outcome::read_trusted;
use crate::detect::{Rule, RuleKind};
use crate::event::{Action, Actor, Attribution, RequestInfo, UserEvent, UserFields};
use crate::exchange::{Durability, Exchange, Unconfirmed};
use crate::extract::source::FieldSource;
use crate::extract::view::View;
use crate::extract::{actor, decode};
use crate::snapshot::Snapshot;
use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::sync::broadcast;
use user_cache::UserCache;

/// The fields that name a user: the attribution is the trust of the one that named them.
const IDENTIFYING: [&str; 3] = ["ID", "Email", "Name"];

/// How far claims of a token the client presents are trusted (`identity.client_tokens`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientTokens {
    Verify,
    Unverified,
    Ignore,
}

impl ClientTokens {
    fn of(snapshot: &Snapshot) -> ClientTokens {
        match snapshot.file.identity.client_tokens.as_str() {
            "unverified" => ClientTokens::Unverified,
            "ignore" => ClientTokens::Ignore,
            _ => ClientTokens::Verify,
        }
    }
}

/// What one call says beyond the user's fields, shared by each of its events.
#[derive(Debug, Clone)]
struct Call {
    details: UserFields,
    attribution: Attribution,
    trusted: bool,
    request: RequestInfo,
    truncated: bool,
    actor: Actor,
}

/// Client-presented tokens whose signature verified against the IAM's keys, for one exchange.
#[derive(Debug, Default)]
pub struct VerifiedTokens(HashSet<String>);

/// Turns exchanges into events; lives across config reloads (it owns identity).
#[derive(Debug)]
pub struct Extractor {
    /// Next event sequence number; starts at 1 and grows by one per event.
    seq: AtomicU64,
    identity: Arc<Identity>,
}

impl Extractor {
    /// An extractor whose identity lives in memory, holding `capacity` users (0 disables the
    /// cache) and the default number of sessions.
    pub fn new(capacity: usize) -> Self {
        Extractor::with_identity(Arc::new(Identity::in_memory(capacity, 100_000)))
    }

    /// An extractor using `identity` (e.g. opened from the identity file).
    pub fn with_identity(identity: Arc<Identity>) -> Self {
        Extractor {
            seq: AtomicU64::new(1),
            identity,
        }
    }

    /// Applies a reloaded user limit, keeping the most recent users.
    pub fn set_capacity(&self, capacity: usize) {
        self.identity.users.set_capacity(capacity);
    }

    /// Applies the reloaded `identity:` limits.
    pub fn apply_limits(&self, snapshot: &Snapshot) {
        self.identity.set_limits(
            super::identity::max_users(&snapshot.file),
            snapshot.file.identity.max_sessions,
        );
    }

    /// The user cache, for metrics and tests.
    pub fn cache(&self) -> &UserCache {
        &self.identity.users
    }

    /// Identity: cache, session index, key sets.
    pub fn identity(&self) -> &Arc<Identity> {
        &self.identity
    }

    fn view<'a>(snapshot: &Snapshot, ex: &'a Exchange) -> View<'a> {
        View::new(
            ex,
            snapshot
                .capture_limit
                .saturating_mul(decode::EXPANSION_FACTOR),
        )
    }

    /// Verifies the client-presented tokens the firing rule would read claims from, against
    /// the IAM's keys fetched through the upstream (`identity.client_tokens: verify`). Only
    /// matched calls whose rule reads such a token pay for this; the keys are cached.
    ///
    /// The actor's bearer JWT is checked too when some webhook reads the actor's claims (a
    /// `when:` on `Actor.Sub`, a template with `{{$$.ActorVerified$$}}`), so `Actor.Verified`
    /// says whether the IAM's keys vouch for it.
    pub async fn verify_tokens(&self, snapshot: &Snapshot, ex: &Exchange) -> VerifiedTokens {
        let Some(route) = &ex.route else {
            return VerifiedTokens::default();
        };
        let actor_token = snapshot
            .webhooks
            .reads_actor_claims()
            .then(|| actor::bearer_jwt(&ex.request_headers))
            .flatten();
        if ClientTokens::of(snapshot) != ClientTokens::Verify
            || (!snapshot.routes.reads_client_tokens(route) && actor_token.is_none())
        {
            return VerifiedTokens::default();
        }
        let (tokens, url) = {
            let view = Self::view(snapshot, ex);
            let Some(rule) = snapshot.routes.resolve(route, &view) else {
                return VerifiedTokens::default();
            };
            // A token the session index knows was issued by the IAM: no key needed.
            let now = unix_now();
            let tokens: Vec<String> = sources(rule)
                .filter_map(|s| s.client_token(&view))
                .chain(actor_token.map(str::to_owned))
                .filter(|t| {
                    let known = self.identity.sessions.owner(&self.identity.hash(t), now);
                    known.is_none()
                })
                .collect();
            let template = snapshot
                .file
                .identity
                .jwks
                .as_deref()
                .or(rule.jwks.as_deref());
            let url =
                template.and_then(|t| jwks::url_for(t, &snapshot.file.upstream, &route.params));
            (tokens, url)
        };
        let mut verified = VerifiedTokens::default();
        let Some(url) = url else { return verified };
        let ca_file = snapshot.file.upstream_tls.ca_file.as_deref();
        for token in tokens {
            if !verified.0.contains(&token)
                && self.identity.jwks.verify(&url, ca_file, &token).await
            {
                verified.0.insert(token);
            }
        }
        verified
    }

    /// The events this exchange means (one per action of the rule that fired, in order),
    /// trusting no client-presented token's signature (see [`Extractor::process_verified`]).
    pub fn process(&self, snapshot: &Snapshot, ex: &Exchange) -> Vec<UserEvent> {
        let mut events = Vec::new();
        self.process_into(snapshot, ex, &mut events);
        events
    }

    /// [`Extractor::process`] appending to `out`, so the extractor loop reuses one buffer.
    pub fn process_into(&self, snapshot: &Snapshot, ex: &Exchange, out: &mut Vec<UserEvent>) {
        self.process_verified(snapshot, ex, &VerifiedTokens::default(), out);
    }

    /// The events this exchange means, if its outcome matches a rule of `snapshot` (the
    /// config that served the request), appended to `out`; `verified` are the client tokens
    /// whose signatures checked out ([`Extractor::verify_tokens`]).
    pub fn process_verified(
        &self,
        snapshot: &Snapshot,
        ex: &Exchange,
        verified: &VerifiedTokens,
        out: &mut Vec<UserEvent>,
    ) {
        // An unmatched call copied for learn mode is never an event.
        let Some(route) = &ex.route else { return };
        let view = Self::view(snapshot, ex);
        let Some(rule) = snapshot.routes.resolve(route, &view) else {
            return;
        };
        let now = unix_now();
        let trust_of = |s: &FieldSource| -> Option<Attribution> {
            if !s.reads_client_token() {
                return Some(Attribution::Exchange);
            }
            match ClientTokens::of(snapshot) {
                ClientTokens::Ignore => None,
                ClientTokens::Unverified => Some(Attribution::UnverifiedToken),
                ClientTokens::Verify => {
                    let token = s.client_token(&view)?;
                    if verified.0.contains(&token) {
                        Some(Attribution::VerifiedToken)
                    } else if self
                        .identity
                        .sessions
                        .owner(&self.identity.hash(&token), now)
                        .is_some()
                    {
                        // The IAM issued this token in a response userhook saw.
                        Some(Attribution::Session)
                    } else {
                        None
                    }
                }
            }
        };
        // The trust of each source, and whether the IAM's answer gave it (not the client).
        let trust = |s: &FieldSource| -> Option<(Attribution, bool)> {
            Some((trust_of(s)?, s.reads_response()))
        };
        let (mut fields, named_by) = read_trusted(&rule.fields, &view, &trust, &IDENTIFYING);
        let (details, _) = read_trusted(&rule.details, &view, &trust, &[]);
        let mut attribution = named_by.map_or(Attribution::None, |(a, _)| a);
        // The IAM's answer named the user: only then is the caller's credential theirs (an
        // admin's token acting on `path.id`, a new name in the request body, are not).
        let named_by_iam = named_by.is_some_and(|(_, from_response)| from_response);

        // The caller's credential names the user when the fields do not.
        let presented: Vec<_> = rule
            .session
            .as_ref()
            .map(|s| {
                s.presented(&view)
                    .iter()
                    .map(|c| self.identity.hash(c))
                    .collect()
            })
            .unwrap_or_default();
        if !fields.contains_key("ID") {
            if let Some(owner) = presented
                .iter()
                .find_map(|h| self.identity.sessions.owner(h, now))
            {
                fields.insert("ID".to_owned(), owner);
                attribution = Attribution::Session;
            }
        }
        let actions: &[Action] = match &rule.kind {
            RuleKind::Events(actions) => actions,
            RuleKind::Remember => &[],
        };
        // What an update changes is judged against the user as known before this call (a
        // copy only when the call is an update).
        let known = if actions.contains(&Action::Updated) {
            fields.get("ID").and_then(|id| self.identity.users.get(id))
        } else {
            None
        };
        // Everything known about the user, the event's own values first; a bare Name or
        // Email finds the ID, unless the rule names its user by the caller's credential (it
        // presents one and issues none) and only the client said the name: `update-user
        // {"name": "ann"}` is not ann calling. (A login's name is the one the IAM signed in.)
        let caller_named = rule
            .session
            .as_ref()
            .is_some_and(|s| !s.presents.is_empty() && s.issues.is_empty());
        if fields.contains_key("ID") || named_by_iam || !caller_named {
            self.identity.users.fill(&mut fields);
        }
        if !IDENTIFYING.iter().any(|k| fields.contains_key(*k)) {
            attribution = Attribution::None;
        }
        let trusted = matches!(
            attribution,
            Attribution::Exchange | Attribution::Session | Attribution::VerifiedToken
        );
        if trusted && !actions.contains(&Action::LoginFailed) {
            let default_ttl = snapshot.file.identity.session_ttl.0;
            self.learn_sessions(
                rule,
                &view,
                &fields,
                &presented,
                attribution == Attribution::Session || !named_by_iam,
                now,
                default_ttl,
            );
        }
        if let Some(session) = &rule.session {
            if session.ends {
                for h in &presented {
                    self.identity.sessions.forget(h);
                }
            }
        }
        if actions.is_empty() {
            // `remember`: no event, the cache learns.
            if trusted {
                self.identity.users.remember(&fields);
            }
            return;
        }
        let call = Call {
            details,
            attribution,
            trusted,
            request: request_info(ex),
            truncated: view.truncated(),
            actor: self.actor(snapshot, ex, verified, now),
        };
        match actions.split_last() {
            // The usual single action: fields and call move into the event.
            Some((last, [])) => out.push(self.event(last, fields, known.as_ref(), call)),
            Some((last, first)) => {
                for action in first {
                    out.push(self.event(action, fields.clone(), known.as_ref(), call.clone()));
                }
                out.push(self.event(last, fields, known.as_ref(), call));
            }
            None => {}
        }
    }

    /// Who made the call, with `verified` set when its bearer JWT verified against the IAM's
    /// keys or is one the IAM issued (the session index knows its hash). The claims of a
    /// token nothing vouches for are kept only under `identity.client_tokens: unverified`:
    /// otherwise a forged token could name anyone as the actor.
    fn actor(
        &self,
        snapshot: &Snapshot,
        ex: &Exchange,
        verified: &VerifiedTokens,
        now: u64,
    ) -> Actor {
        let (mut actor, token) = actor::read(&ex.request_headers);
        if let Some(token) = token {
            if actor.verified.is_some() {
                let genuine = verified.0.contains(token)
                    || self
                        .identity
                        .sessions
                        .owner(&self.identity.hash(token), now)
                        .is_some();
                actor.verified = Some(genuine);
                if !genuine && ClientTokens::of(snapshot) != ClientTokens::Unverified {
                    actor.sub.clear();
                    actor.azp.clear();
                    actor.client_id.clear();
                }
            }
        }
        actor
    }

    /// One action's event: the cache learns from it as the action means (only from a user
    /// named on trust).
    fn event(
        &self,
        action: &Action,
        fields: UserFields,
        known: Option<&UserFields>,
        call: Call,
    ) -> UserEvent {
        let changes = match action {
            Action::Updated => changes::diff(known, &fields),
            _ => changes::Changes::default(),
        };
        match action {
            Action::Created | Action::Updated | Action::Login | Action::Custom(_)
                if call.trusted =>
            {
                self.identity.users.remember(&fields)
            }
            Action::Deleted if call.trusted => {
                if let Some(id) = fields.get("ID") {
                    self.identity.forget_user(id);
                }
            }
            _ => {}
        }
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let mut event = UserEvent::new(seq, action.clone(), fields, call.request, call.truncated);
        event.changed = changes.changed;
        event.previous = changes.previous;
        event.attribution = call.attribution;
        event.details = call.details;
        event.actor = call.actor;
        event
    }

    /// The index learns who holds the credentials this call issued (and the one it presented,
    /// unless `keep_presented`: it named the user, or only the client named them; and the call
    /// does not end it).
    #[allow(clippy::too_many_arguments)]
    fn learn_sessions(
        &self,
        rule: &Rule,
        view: &View<'_>,
        fields: &UserFields,
        presented: &[super::identity::session::CredentialHash],
        keep_presented: bool,
        now: u64,
        default_ttl: Duration,
    ) {
        let (Some(session), Some(id)) = (&rule.session, fields.get("ID")) else {
            return;
        };
        let default_ttl = session.ttl.unwrap_or(default_ttl);
        let expiry = |lifetime: Option<Duration>| {
            now.saturating_add(lifetime.unwrap_or(default_ttl).as_secs())
        };
        for issued in session.issued(view, std::time::SystemTime::now()) {
            self.identity.sessions.learn(
                self.identity.hash(&issued.value),
                id,
                expiry(issued.lifetime),
            );
        }
        if !session.ends && !keep_presented {
            for h in presented {
                if self.identity.sessions.owner(h, now).is_none() {
                    self.identity.sessions.learn(*h, id, expiry(session.ttl));
                }
            }
        }
    }
}

/// Every field and detail source of a rule.
fn sources(rule: &Rule) -> impl Iterator<Item = &FieldSource> {
    rule.fields
        .iter()
        .chain(&rule.details)
        .flat_map(|f| f.sources.iter())
}

/// Turns finished exchanges into events and hands each to the dispatcher, off the request
/// path. Dispatching only queues (a short lock, no I/O), so this loop never waits on a target;
/// it waits only for the IAM's signing keys, when a client token needs checking and the keys
/// are not cached (bounded by the fetch timeout and rate limit).
///
/// The exchange is judged by the rules of the snapshot that served it; its deliveries go to
/// the webhooks of the `current` config, so a webhook removed by a reload gets no new ones.
///
/// In learn mode every exchange (matched or not) is shown to `learner` first; an unmatched
/// one goes no further.
pub async fn run(
    mut exchanges: HandoffReceiver,
    extractor: Arc<Extractor>,
    events: broadcast::Sender<UserEvent>,
    dispatcher: Dispatcher,
    current: Arc<ArcSwap<Snapshot>>,
    learner: Option<Arc<crate::learn::Learner>>,
) {
    let mut batch = Vec::new();
    while let Some(Handoff {
        snapshot,
        mut exchange,
    }) = exchanges.recv().await
    {
        if let Some(learner) = &learner {
            learner.observe(&exchange);
        }
        let mut durable = exchange.durable.take();
        if exchange.route.is_none() {
            continue;
        }
        let verified = extractor.verify_tokens(&snapshot, &exchange).await;
        extractor.process_verified(&snapshot, &exchange, &verified, &mut batch);
        if batch.is_empty() {
            // No event: nothing to make durable, so nothing a strict response waits for.
            if let Some(ack) = durable.take() {
                let _ = ack.send(Durability::Committed);
            }
            continue;
        }
        let last = batch.len();
        let mut refused = 0;
        for (i, event) in batch.drain(..).enumerate() {
            tracing::info!(
                event = event.event_type.as_ref(),
                id = %event.id,
                seq = event.seq,
                user_id = event.user.get("ID").map(String::as_str).unwrap_or(""),
                attribution = event.attribution.as_str(),
                status = event.request.status,
                request_id = %event.request.request_id,
                "user event"
            );
            if event.attribution == Attribution::None {
                tracing::debug!(
                    event = event.event_type.as_ref(),
                    method = %event.request.method,
                    path = %crate::redact::redact_url(&event.request.path),
                    request_id = %event.request.request_id,
                    "the IAM confirmed the call but nobody could be named: unattributed event"
                );
                crate::metrics::event_unattributed(&event.action);
            }
            crate::metrics::event_detected(&event.action);
            // In-process subscribers (tests, the demo) get their own copy; the live feed keeps
            // the event itself.
            let for_subscribers = (events.receiver_count() > 0).then(|| event.clone());
            refused += dispatcher.dispatch_owned(&current.load(), event).refused;
            // Subscribers hear of the event before a strict-mode client sees its response.
            if let Some(event) = for_subscribers {
                let _ = events.send(event);
            }
            // A strict-mode response waits for all of its events: told after the last one.
            if i + 1 == last {
                if let Some(ack) = durable.take() {
                    if refused > 0 {
                        // A refused delivery is not on disk: the response must not say it is.
                        let _ = ack.send(Durability::Unconfirmed(Unconfirmed::Refused));
                    } else {
                        dispatcher.notify_when_durable(ack);
                    }
                }
            }
        }
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
        // Visible ASCII (userhook's own ids always are) without the lossy decoder's cost.
        request_id: ex.request_id.to_str().map_or_else(
            |_| String::from_utf8_lossy(ex.request_id.as_bytes()).into_owned(),
            str::to_owned,
        ),
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
