//! SIP, sans-IO: the message layer (syntax), the transport layer (RFC 3261 §18, RFC 3581), transactions
//! (§17 state machines) and dialogs (§12). The endpoint builds on these.

pub mod allow;
pub mod dialog;
pub mod endpoint;
pub mod message;
pub mod ratelimit;
pub mod transaction;
pub mod transport;
