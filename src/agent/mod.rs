//! Agents, sans-IO: the Twilio Media Streams wire protocol ([`protocol`]: JSON text frames; no RFC), each call's
//! agent stream ([`session`]: frame numbering, media time, the agent's frames applied to the playout queue), the
//! policy an agent's transfers must follow ([`transfer`]), and the agent as calls use it ([`config`]).
//!
//! Not here: the WebSocket itself (RFC 6455) is [`crate::io::agent`]'s, driven by each call's task in
//! [`crate::io::media`]; the REFER a transfer becomes (RFC 3515) is the SIP endpoint's, sent when the call layer
//! asks.

pub mod config;
pub mod headers;
pub mod protocol;
pub mod session;
pub mod transfer;
