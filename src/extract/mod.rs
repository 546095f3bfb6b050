//! Extraction: from a matched exchange to a user event (STUB, replaced by the detection work).

use crate::event::UserEvent;
use crate::exchange::Exchange;

/// Turns exchanges into events; lives across config reloads (it owns the user cache).
#[derive(Debug)]
pub struct Extractor {}

impl Extractor {
    /// An extractor whose user cache holds `capacity` users.
    pub fn new(_capacity: usize) -> Self {
        Extractor {}
    }

    /// The event this exchange means, if its outcome matches a rule.
    pub fn process(&self, _exchange: &Exchange) -> Option<UserEvent> {
        None
    }
}

impl Extractor {
    /// Stub.
    pub fn set_capacity(&self, _n: usize) {}
}
