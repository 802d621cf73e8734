//! SIP, sans-IO: the message layer (syntax), the transport layer (RFC 3261 §18, RFC 3581), transactions
//! (§17 state machines), dialogs (§12) and digest authentication (§22, RFC 7616, `auth`). The endpoint builds
//! on these.

pub mod allow;
pub mod auth;
pub mod dialog;
pub mod endpoint;
pub mod message;
pub mod ratelimit;
pub mod transaction;
pub mod transport;
