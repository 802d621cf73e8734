//! vocals: a SIP user agent and RTP media server that puts voice-AI agents on the phone network.
//!
//! The library is the whole server; the `vocals` binary is a thin CLI over it. See `ARCHITECTURE.md` in the
//! repository for the layers.

pub mod config;
pub mod e164;
pub mod sdp;
pub mod sip;
