//! SIP (RFC 3261), sans-IO, one sub-layer per module, bottom up:
//!
//! - [`message`]: syntax (§7, §19, §20, §25): parsing and printing requests, responses, headers and URIs, and
//!   the typed headers and bodies vocals acts on (RFC 3326, 3420, 3515, 3581, 3966, 5118, 6665).
//! - [`transport`]: the transport layer (§18, RFC 3581): the Via stamp of what is received, where responses
//!   and in-dialog requests go, how vocals names itself, the table of TCP and TLS connections.
//! - [`transaction`]: the transaction layer (§17, with RFC 6026): INVITE and non-INVITE, client and server.
//! - [`dialog`]: dialogs, UAS and UAC side (§12).
//! - [`auth`]: digest authentication for the calls vocals places (§22, RFC 7616, RFC 8760).
//! - [`endpoint`]: the UAS core (§8.2, §9.2, §13.3, §14, §15; REFER out and NOTIFY in, RFC 3515) and the UAC
//!   core (§8.1, §9.1, §13.2) over them: received bytes to call events, and the call layer's decisions to
//!   messages. It owns every table.
//! - [`session_timer`]: RFC 4028's rules (who refreshes, how often, 422), applied by the endpoint.
//! - [`allow`] and [`ratelimit`]: which sources may send, and how fast, decided before a transaction is made.
//!
//! Not here: SDP bodies are [`crate::sdp`]'s; what to do with a call (route it, answer it, place it, end it)
//! is [`crate::call`]'s; sockets, connection tasks and the clock are the SIP driver's ([`crate::io::sip`]).
//! vocals is no proxy or registrar.

pub mod allow;
pub mod auth;
pub mod dialog;
pub mod endpoint;
pub mod hep;
pub mod message;
pub mod ratelimit;
pub mod session_timer;
pub mod trace;
pub mod transaction;
pub mod transport;
