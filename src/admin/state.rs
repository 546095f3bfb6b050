//! What the admin handlers read: the config cell, reload outcomes, the delivery engine.
//! Shared handles only: the admin API never owns or replaces any of them.

use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::events::DeliveryEngine;
use crate::learn::Learner;
use crate::reload::ReloadStats;
use crate::snapshot::Snapshot;

/// What the admin handlers read.
#[derive(Clone)]
pub struct AdminState {
    /// The current config snapshot.
    pub runtime: Arc<ArcSwap<Snapshot>>,
    /// Reload outcomes.
    pub reloads: Arc<ReloadStats>,
    /// Delivery records for `/deliveries`.
    pub deliveries: DeliveryEngine,
    /// The address the admin listener is bound to: whether a token is required depends on
    /// it, not on a reloaded `admin.listen` (which needs a restart to move the listener).
    pub bound: SocketAddr,
    /// Learn mode's learner (`GET /learn`); `None` when learn mode is off.
    pub learner: Option<Arc<Learner>>,
}
