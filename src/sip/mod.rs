//! SIP, sans-IO: the message layer (syntax), transactions (RFC 3261 §17 state machines) and dialogs (§12).
//! Transports and the endpoint that drives them build on these.

pub mod allow;
pub mod dialog;
pub mod endpoint;
pub mod message;
pub mod ratelimit;
pub mod transaction;
