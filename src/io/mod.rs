//! The tokio shell around the sans-IO core: sockets, connection tasks and the clock. Nothing here decides
//! anything about SIP; it moves bytes and time in and out of the endpoint.

pub mod agent;
pub mod media;
pub mod sip;
pub mod tls;
