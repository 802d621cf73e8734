//! vocals: a SIP user agent and RTP media server that puts voice-AI agents on the phone network.
//!
//! The library is the whole server; the `vocals` binary (`src/main.rs`) is a thin command line over it.
//! [`daemon::serve`] runs a whole server on listeners the caller bound, until a shutdown future completes.
//!
//! # The map
//!
//! The RFC layer of a line can be read off its path. Bottom up, first the protocol core, sans-IO: bytes and
//! `now` in; what to send, events and the next deadline out. It never touches a socket, a clock or a task, and
//! names nothing above it.
//!
//! - [`sip`]: SIP (RFC 3261), one sub-layer per directory. [`sip::message`]: syntax, parsing and printing
//!   (§7, §19, §20, §25), with typed headers and bodies in `message/typed/` (RFC 3326 Reason, RFC 3420
//!   sipfrag, RFC 3515 Refer-To, RFC 6665 Event and Subscription-State; RFC 3581 and RFC 5118 in Via).
//!   [`sip::transport`]: §18 with RFC 3581: the Via stamp, where responses and in-dialog requests go, the
//!   connection table. [`sip::transaction`]: §17 with RFC 6026. [`sip::dialog`]: §12. [`sip::endpoint`]: the
//!   UAS core that drives them (§8.2, §9.2, §13.3, §14, §15; REFER out and its NOTIFYs in, RFC 3515; INFO DTMF).
//!   [`sip::allow`] and [`sip::ratelimit`]: who may send. Names nothing else of the crate.
//! - [`sdp`]: RFC 4566 read, RFC 3264 offer/answer for one audio stream, RFC 4568 SDES keys. Names nothing
//!   else of the crate.
//! - [`media`]: RTP and RTCP (RFC 3550), SRTP (RFC 3711), DTMF (RFC 4733), G.711, the jitter buffer, the
//!   playout queue, the RTP port pool, and each call's [`media::session`] tying them together. Names `sdp`
//!   (the negotiated stream and its keys) and `sip` (the CIDR blocks RTP latching admits).
//! - [`agent`]: the Twilio Media Streams wire protocol (JSON frames; no RFC), each call's agent stream, the
//!   transfer policy. Names `media` (the playout queue), `sip` (URIs) and `e164`.
//! - [`e164`] (ITU-T E.164 numbers) and [`routing`] (the dialed number to its agent). They name `sip`, and
//!   `routing` names `sdp`, `agent` and `e164`.
//!
//! Then the rest, which names the core freely:
//!
//! - [`call`]: the call: one owner per call, a sans-IO state machine taking typed inputs (SIP events, media,
//!   agent, admin, timer) and giving typed commands to the endpoint and the media plane. Application logic:
//!   the protocol rules are the core's. Names `routing`, `store` (call records) and `metrics`.
//! - [`io`]: the tokio shell, which decides nothing the core or `call` decides. [`io::sip`]: the SIP driver:
//!   moves bytes between sockets and the endpoint, applies the call layer's commands. [`io::media`]: one task
//!   per call owning its RTP and RTCP sockets, its session and its agent stream. [`io::agent`]: the agent's
//!   WebSocket (RFC 6455, through tungstenite). [`io::tls`]: SIP over TLS (RFC 3261 §26.2). Names `call`, `store`,
//!   `metrics` and `admin` (the commands the HTTP API sends the driver).
//! - [`admin`]: the HTTP API (axum): `/v1`, the dashboard, `/metrics`, the Twilio-compatible hang-up. Names
//!   `call`, `config`, `io` (to probe an agent), `store` and `twilio`.
//! - [`store`]: every SQL string (sqlx, SQLite or PostgreSQL): the routing catalog, call records, sealed
//!   secrets. Names `routing` and `metrics`.
//! - [`twilio`]: the Twilio REST client and account linking. Names `store` and `io` (the TLS client setup).
//! - [`config`]: defaults < file < environment < flags, into the settings types of the modules it configures
//!   (which it names, `io` and `twilio` included).
//! - [`daemon`]: the wiring; names the modules it wires (not `cli`). [`cli`]: the command line and the admin client;
//!   names `config` and `daemon`. [`metrics`]: every metric's name; names nothing. [`clock`]: times as RFC 3339
//!   text; names nothing.
//!
//! `sip-tests/layers.rs` fails on an import cycle among `config`, `call`, `io`, `store`, `routing` and
//! `twilio`, and prints their graph (`cargo test --test layers -- --nocapture`).

pub mod admin;
pub mod agent;
pub mod call;
pub mod cli;
pub mod clock;
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
