//! Media, sans-IO: codecs and (to come) RTP, jitter buffer, DTMF, playout and RTCP. Nothing here touches a
//! socket or a clock.

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
