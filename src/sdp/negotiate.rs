//! RFC 3264 offer/answer for one audio stream, and the SDP vocals prints (answers, and its own offer when an
//! INVITE arrives without one, RFC 3261 §13.2.1).

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;

use super::{Direction, Offer, Profile, SdpError};

/// The G.711 law vocals sends and receives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    /// μ-law, payload type 0.
    Pcmu,
    /// A-law, payload type 8.
    Pcma,
}

impl Codec {
    pub fn name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
        }
    }
}

/// The outcome of negotiation: what both sides will use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Negotiated {
    pub codec: Codec,
    /// The payload type the codec goes by in this session (the offer's).
    pub payload_type: u8,
    /// RFC 4733 telephone-event payload type, when offered.
    pub telephone_event: Option<u8>,
    /// Packetization, always 20 ms.
    pub ptime_ms: u32,
    /// Our direction, as the answer states it.
    pub direction: Direction,
    /// Where the peer wants RTP and RTCP; `None` while it is on hold with `c=0.0.0.0`.
    pub remote_rtp: Option<SocketAddr>,
    pub remote_rtcp: Option<SocketAddr>,
    pub profile: Profile,
    audio_index: usize,
    media_lines: Vec<(String, String, String)>,
}

/// Our side of the session for printing SDP: the public address (never 0.0.0.0 or a private `o=`), the
/// leased RTP port, and the o= session id and version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Local {
    pub address: IpAddr,
    pub port: u16,
    pub session_id: u64,
    pub session_version: u64,
}

const PTIME_MS: u32 = 20;
/// The telephone-event payload type vocals offers when it makes the offer.
pub const OFFER_TELEPHONE_EVENT: u8 = 101;

/// Chooses PCMU, else PCMA, plus telephone-event, from an offer (or from the answer to our own offer).
pub fn negotiate(offer: &Offer, srtp_enabled: bool) -> Result<Negotiated, SdpError> {
    if offer.profile == Profile::Savp && !srtp_enabled {
        return Err(SdpError::SrtpNotEnabled);
    }
    let find = |name: &str| {
        offer.formats.iter().find(|f| f.name.eq_ignore_ascii_case(name) && f.clock_rate == 8000).map(|f| f.payload_type)
    };
    let (codec, payload_type) = match (find("PCMU"), find("PCMA")) {
        (Some(pt), _) => (Codec::Pcmu, pt),
        (None, Some(pt)) => (Codec::Pcma, pt),
        (None, None) => return Err(SdpError::NoCommonCodec),
    };
    let hold = offer.address.is_none();
    let direction = if hold && offer.direction == Direction::SendRecv {
        // RFC 2543 hold (c=0.0.0.0): the peer will not receive.
        Direction::RecvOnly
    } else {
        offer.direction.answer()
    };
    let remote_rtp = offer.address.map(|ip| SocketAddr::new(ip, offer.port));
    let rtcp_port = offer.rtcp_port.unwrap_or(offer.port.saturating_add(1));
    Ok(Negotiated {
        codec,
        payload_type,
        telephone_event: find("telephone-event"),
        ptime_ms: PTIME_MS,
        direction,
        remote_rtp,
        remote_rtcp: offer.address.map(|ip| SocketAddr::new(ip, rtcp_port)),
        profile: offer.profile,
        audio_index: offer.audio_index,
        media_lines: offer.media_lines.clone(),
    })
}

/// Our answer (RFC 3264 §6): one m= line per offered one, in order; the audio stream with the chosen codec
/// and telephone-event, the others refused with port 0.
pub fn answer(neg: &Negotiated, local: &Local) -> Bytes {
    let mut sdp = session_header(local);
    for (i, (media, proto, first)) in neg.media_lines.iter().enumerate() {
        if i != neg.audio_index {
            let _ = write!(sdp, "m={media} 0 {proto} {first}\r\n");
            continue;
        }
        let proto = if neg.profile == Profile::Savp { "RTP/SAVP" } else { "RTP/AVP" };
        let _ = write!(sdp, "m=audio {} {proto} {}", local.port, neg.payload_type);
        if let Some(te) = neg.telephone_event {
            let _ = write!(sdp, " {te}");
        }
        let _ = write!(sdp, "\r\na=rtpmap:{} {}/8000\r\n", neg.payload_type, neg.codec.name());
        if let Some(te) = neg.telephone_event {
            let _ = write!(sdp, "a=rtpmap:{te} telephone-event/8000\r\na=fmtp:{te} 0-16\r\n");
        }
        let _ = write!(sdp, "a=ptime:{}\r\na={}\r\n", neg.ptime_ms, neg.direction.as_str());
    }
    Bytes::from(sdp)
}

/// Our offer, for an INVITE that came without one: PCMU, PCMA and telephone-event, 20 ms, sendrecv.
pub fn offer(local: &Local) -> Bytes {
    let mut sdp = session_header(local);
    let te = OFFER_TELEPHONE_EVENT;
    let _ = write!(
        sdp,
        "m=audio {} RTP/AVP 0 8 {te}\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n\
         a=rtpmap:{te} telephone-event/8000\r\na=fmtp:{te} 0-16\r\na=ptime:{PTIME_MS}\r\na=sendrecv\r\n",
        local.port
    );
    Bytes::from(sdp)
}

fn session_header(local: &Local) -> String {
    let family = if local.address.is_ipv6() { "IP6" } else { "IP4" };
    let addr = local.address;
    format!(
        "v=0\r\no=vocals {} {} IN {family} {addr}\r\ns=vocals\r\nc=IN {family} {addr}\r\nt=0 0\r\n",
        local.session_id, local.session_version
    )
}
