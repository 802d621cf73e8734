//! vocals: a SIP user agent and RTP media server that puts voice-AI agents on the phone network.
//!
//! The library is the whole server; the `vocals` binary is a thin CLI over it. Layers, bottom up: `sip`
//! (sans-IO message syntax, transactions, dialogs, allowlist), `sdp` (offer/answer), `routing` (dialed number
//! to agent), `config`.

pub mod call;
pub mod config;
pub mod daemon;
pub mod e164;
pub mod io;
pub mod media;
pub mod routing;
pub mod sdp;
pub mod sip;
