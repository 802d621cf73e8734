//! vocals: a SIP user agent and RTP media server that puts voice-AI agents on the phone network.
//!
//! The library is the whole server; the `vocals` binary is a thin CLI over it. Layers, bottom up, sans-IO
//! first: `sip` (message syntax, transactions, dialogs, allowlist), `sdp` (offer/answer), `media` (RTP, jitter
//! buffer, G.711, DTMF, playout, RTCP), `agent` (the Twilio Media Streams protocol), `routing` (dialed number to
//! agent), `call` (the call layer); then `io` (the tokio shell: SIP driver, call tasks, agent WebSockets),
//! `config` and `daemon` (wiring), and `cli` (the command line and its admin API client).
//!
//! [`daemon::serve`] runs a whole server on listeners the caller bound, until a shutdown future completes.

pub mod admin;
pub mod agent;
pub mod call;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod e164;
pub mod io;
pub mod media;
pub mod metrics;
pub mod routing;
pub mod sdp;
pub mod sip;
pub mod store;
pub mod twilio;
