//! Webhook delivery (STUB, replaced by the delivery work).

pub mod sign;
