//! Media, sans-IO: RTP ([`rtp`], RFC 3550 §5; [`rtp_source`], its Appendix A receive statistics) and RTCP
//! ([`rtcp`], RFC 3550 §6), SRTP and SRTCP ([`srtp`], RFC 3711), DTMF telephone-events ([`dtmf`], RFC 4733),
//! G.711 ([`g711`]), the uplink jitter buffer ([`jitter`]), the downlink playout queue ([`playout`]), the RTP
//! port pool ([`ports`]), and each call's [`session::Session`] that ties them together. Nothing here touches a
//! socket or reads a clock: time comes in as arguments.
//!
//! Not here: the codec, payload types, addresses and keys are negotiated in SDP ([`crate::sdp`]); the sockets
//! and each call's task are [`crate::io::media`]'s; the frames the agent gets are [`crate::agent`]'s.

pub mod dtmf;
pub mod g711;
pub mod histogram;
pub mod jitter;
pub mod playout;
pub mod ports;
pub mod recording;
pub mod rtcp;
pub mod rtp;
pub mod rtp_source;
pub mod session;
pub mod srtp;
pub mod timeline;
