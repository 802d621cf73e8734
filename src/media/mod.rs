//! Media, sans-IO: G.711, RTP and RTCP packets, the jitter buffer, RFC 4733 DTMF, the playout queue, SRTP
//! and each call's [`session::Session`] that ties them together. Nothing here touches a socket or reads a
//! clock: time comes in as arguments; the tokio shell is `io::media`.

pub mod dtmf;
pub mod g711;
pub mod histogram;
pub mod jitter;
pub mod playout;
pub mod ports;
pub mod rtcp;
pub mod rtp;
pub mod rtp_source;
pub mod session;
pub mod srtp;
