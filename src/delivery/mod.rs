//! Webhook delivery (STUB, replaced by the delivery work).
