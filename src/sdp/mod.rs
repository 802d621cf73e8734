//! SDP for one audio stream: RFC 4566 offers read with `rtc-sdp` (syntax only), RFC 3264 offer/answer here. vocals
//! chooses PCMU, else PCMA, at 20 ms, plus telephone-event (RFC 4733) with the payload type the offer used; answers the
//! direction table of RFC 3264 §6.1; rejects what it cannot do with a reason for 488. Never puts an unspecified or
//! private address in what it prints: the caller gives the public one. SDES keys for SRTP (RFC 4568) are [`sdes`]'s.
//!
//! Not here: the SIP message that carries the SDP and when an offer is made ([`crate::sip::endpoint`] and the call
//! layer); the RTP the answer describes ([`crate::media`]).

mod negotiate;
pub mod sdes;

use std::io::Cursor;
use std::net::IpAddr;

pub use negotiate::{Codec, Local, Negotiated, OFFER_TELEPHONE_EVENT, SrtpKeys, SrtpPolicy, answer, negotiate, offer};

/// Why an offer could not be used. `status()` is the SIP status that answers it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    #[error("malformed SDP: {0}")]
    Malformed(String),
    #[error("no audio stream offered")]
    NoAudio,
    #[error("no common codec: vocals speaks PCMU and PCMA at 8000 Hz")]
    NoCommonCodec,
    #[error("RTP/SAVP (SRTP) offered but SRTP is not enabled")]
    SrtpNotEnabled,
    #[error("RTP/AVP offered but this number requires SRTP (RTP/SAVP)")]
    SrtpRequired,
    #[error("no usable SRTP key: {0}")]
    Crypto(String),
    #[error("unsupported media transport {0}")]
    UnsupportedTransport(String),
    #[error("SDP body of {0} bytes is larger than the {MAX_SDP} vocals reads")]
    TooLarge(usize),
}

/// The largest SDP body read, in bytes. Offers for one audio stream are a few hundred bytes (Twilio's are
/// under 400); a bigger body is refused before it is parsed, so no offer costs more than this to read.
pub const MAX_SDP: usize = 16_384;

impl SdpError {
    /// 400 for SDP that does not parse, 413 for one too large to read, 488 Not Acceptable Here for an offer
    /// vocals cannot accept.
    pub fn status(&self) -> u16 {
        match self {
            SdpError::Malformed(_) => 400,
            SdpError::TooLarge(_) => 413,
            _ => 488,
        }
    }

    /// A Warning header value for the 488 (RFC 3261 §20.43: 304 media type, 305 media format unavailable).
    pub fn warning(&self, host: &str) -> String {
        let code = match self {
            SdpError::NoCommonCodec => 305,
            SdpError::NoAudio => 304,
            _ => 399,
        };
        format!("{code} {host} \"{}\"", self.to_string().replace('"', "'"))
    }
}

/// Stream direction (RFC 3264 §5.1, §6.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    /// The direction an answer gives to an offered one (RFC 3264 §6.1): hold (`sendonly`) is answered
    /// `recvonly`, `inactive` with `inactive`, resume (`sendrecv`) with `sendrecv`.
    pub fn answer(self) -> Direction {
        match self {
            Direction::SendRecv => Direction::SendRecv,
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            Direction::Inactive => Direction::Inactive,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    fn from_attr(key: &str) -> Option<Direction> {
        Some(match key {
            "sendrecv" => Direction::SendRecv,
            "sendonly" => Direction::SendOnly,
            "recvonly" => Direction::RecvOnly,
            "inactive" => Direction::Inactive,
            _ => return None,
        })
    }

    /// Whether we may send media in this (our) direction.
    pub fn we_send(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }
}

/// RTP profile of the offered stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    /// `RTP/AVP`.
    Avp,
    /// `RTP/SAVP` (SDES-keyed SRTP, Twilio Secure Trunking).
    Savp,
}

/// One payload format of the offer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Format {
    pub payload_type: u8,
    /// Encoding name from `a=rtpmap`, or the static name for payload types 0 and 8 without one.
    pub name: String,
    pub clock_rate: u32,
    pub fmtp: String,
}

/// What vocals needs from a remote offer: the first audio stream, and the number of m= lines (an answer has
/// as many, in order, RFC 3264 §6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Offer {
    /// Where to send RTP. `None` for `c=... 0.0.0.0` (RFC 2543 hold).
    pub address: Option<IpAddr>,
    pub port: u16,
    /// `a=rtcp:` port, when given (RFC 3605).
    pub rtcp_port: Option<u16>,
    pub profile: Profile,
    /// Formats in offer order.
    pub formats: Vec<Format>,
    pub direction: Direction,
    /// `a=crypto` lines (SDES), for SRTP.
    pub crypto: Vec<String>,
    /// Index of the audio stream among the m= lines, and every m= line as (media, proto, first format), for
    /// rejecting the others with port 0.
    pub audio_index: usize,
    pub media_lines: Vec<(String, String, String)>,
}

impl Offer {
    /// Parses an SDP body and picks its first audio stream with a non-zero port.
    pub fn parse(body: &[u8]) -> Result<Offer, SdpError> {
        if body.len() > MAX_SDP {
            return Err(SdpError::TooLarge(body.len()));
        }
        let text = std::str::from_utf8(body).map_err(|_| SdpError::Malformed("not UTF-8".into()))?;
        let sd = rtc_sdp::SessionDescription::unmarshal(&mut Cursor::new(text))
            .map_err(|e| SdpError::Malformed(e.to_string()))?;
        let media_lines: Vec<(String, String, String)> = sd
            .media_descriptions
            .iter()
            .map(|m| {
                let first = m.media_name.formats.first().cloned().unwrap_or_default();
                (m.media_name.media.clone(), m.media_name.protos.join("/"), first)
            })
            .collect();
        let (audio_index, m) = sd
            .media_descriptions
            .iter()
            .enumerate()
            .find(|(_, m)| m.media_name.media == "audio" && m.media_name.port.value != 0)
            .ok_or(SdpError::NoAudio)?;
        let profile = match m.media_name.protos.join("/").as_str() {
            "RTP/AVP" => Profile::Avp,
            "RTP/SAVP" => Profile::Savp,
            other => return Err(SdpError::UnsupportedTransport(other.to_string())),
        };
        let conn = m.connection_information.as_ref().or(sd.connection_information.as_ref());
        let address = match conn.and_then(|c| c.address.as_ref()) {
            Some(a) => {
                let ip: IpAddr =
                    a.address.parse().map_err(|_| SdpError::Malformed(format!("c= address {}", a.address)))?;
                (!ip.is_unspecified()).then_some(ip)
            }
            None => return Err(SdpError::Malformed("no c= line for the audio stream".into())),
        };
        let port = u16::try_from(m.media_name.port.value).map_err(|_| SdpError::Malformed("bad m= port".into()))?;
        let direction = media_direction(m, &sd);
        let rtcp_port = m.attribute("rtcp").flatten().and_then(|v| v.split_whitespace().next()?.parse().ok());
        let crypto = m.attributes.iter().filter(|a| a.key == "crypto").filter_map(|a| a.value.clone()).collect();
        Ok(Offer {
            address,
            port,
            rtcp_port,
            profile,
            formats: formats(m),
            direction,
            crypto,
            audio_index,
            media_lines,
        })
    }
}

/// The stream's direction attribute, else the session's, else sendrecv (RFC 3264 §5.1).
fn media_direction(m: &rtc_sdp::MediaDescription, sd: &rtc_sdp::SessionDescription) -> Direction {
    let media = m.attributes.iter().find_map(|a| Direction::from_attr(&a.key));
    let session = sd.attributes.iter().find_map(|a| Direction::from_attr(&a.key));
    media.or(session).unwrap_or(Direction::SendRecv)
}

/// The offered formats in order, named from `a=rtpmap` or, for static payload types, from RFC 3551.
fn formats(m: &rtc_sdp::MediaDescription) -> Vec<Format> {
    let codecs = m.codecs();
    m.media_name
        .formats
        .iter()
        .filter_map(|f| f.parse::<u8>().ok())
        .map(|pt| match codecs.get(&pt).filter(|c| !c.name.is_empty()) {
            Some(c) => {
                Format { payload_type: pt, name: c.name.clone(), clock_rate: c.clock_rate, fmtp: c.fmtp.clone() }
            }
            None => {
                let name = match pt {
                    0 => "PCMU",
                    8 => "PCMA",
                    _ => "",
                };
                Format { payload_type: pt, name: name.to_string(), clock_rate: 8000, fmtp: String::new() }
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
