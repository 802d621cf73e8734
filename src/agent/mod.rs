//! Agents: the Twilio Media Streams wire protocol and each call's agent stream, sans-IO. The WebSocket itself
//! lives in `io::agent`, driven by each call's task in `io::media`.

pub mod protocol;
pub mod session;
