//! Agents: the Twilio Media Streams wire protocol, each call's agent stream, and the policy an agent's
//! transfers must follow, sans-IO. The WebSocket itself lives in `io::agent`, driven by each call's task in
//! `io::media`.

pub mod config;
pub mod protocol;
pub mod session;
pub mod transfer;
