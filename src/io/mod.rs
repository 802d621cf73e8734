//! The tokio shell around the sans-IO core: sockets, tasks and the clock. It moves bytes and time in and out of
//! the core and carries out what the core and the call layer decide:
//!
//! - [`sip`]: the SIP driver: moves bytes between sockets and the endpoint, applies the call layer's commands.
//! - [`media`]: one task per call, owning its RTP and RTCP sockets, its [`crate::media::session::Session`] and
//!   its agent stream.
//! - [`agent`]: the WebSocket to one call's agent (Twilio Media Streams over RFC 6455, vocals as the client).
//! - [`tap`]: what watches the SIP messages besides the endpoint: each call's trace, HEPv3 to Homer.
//! - [`tls`]: SIP over TLS's server configuration (RFC 3261 §26.2).
//!
//! Not here: where a SIP message goes and over which connection ([`crate::sip::transport`]), what a packet
//! means ([`crate::media`]), what the agent is sent ([`crate::agent`]).

pub mod agent;
pub mod callbacks;
pub mod media;
pub mod recording;
pub mod sip;
pub mod tap;
pub mod tls;
pub mod upload;
