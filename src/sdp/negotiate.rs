//! RFC 3264 offer/answer for one audio stream, and the SDP vocals prints (answers, and its own offer when an
//! INVITE arrives without one, RFC 3261 §13.2.1).

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;

use super::sdes::{Crypto, KeySalt, Suite};
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
    /// The SRTP keys, for an `RTP/SAVP` stream.
    pub srtp: Option<SrtpKeys>,
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

/// Whether a call's media is SRTP (per number, else `media.srtp`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SrtpPolicy {
    /// `RTP/SAVP` offers are refused with 488.
    Off,
    /// Either: SRTP when the offer is `RTP/SAVP`, plain RTP when it is `RTP/AVP`.
    #[default]
    Allowed,
    /// `RTP/AVP` offers are refused with 488.
    Required,
}

impl SrtpPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            SrtpPolicy::Off => "off",
            SrtpPolicy::Allowed => "allowed",
            SrtpPolicy::Required => "required",
        }
    }

    pub fn parse(s: &str) -> Option<SrtpPolicy> {
        [SrtpPolicy::Off, SrtpPolicy::Allowed, SrtpPolicy::Required].into_iter().find(|p| p.as_str() == s)
    }
}

/// The keys of an SRTP stream (SDES, RFC 4568): the peer's, to decrypt what it sends, and ours, to encrypt
/// what we send, under one suite; `tag` is the offer's line our answer echoes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SrtpKeys {
    pub suite: Suite,
    pub tag: u32,
    pub remote: KeySalt,
    pub local: KeySalt,
}

const PTIME_MS: u32 = 20;
/// The telephone-event payload type vocals offers when it makes the offer.
pub const OFFER_TELEPHONE_EVENT: u8 = 101;

/// Chooses PCMU, else PCMA, plus telephone-event, from an offer (or from the answer to our own offer), under
/// the call's SRTP policy. `local_key` is the fresh key our answer gives an `RTP/SAVP` stream.
pub fn negotiate(offer: &Offer, policy: SrtpPolicy, local_key: KeySalt) -> Result<Negotiated, SdpError> {
    let srtp = match (offer.profile, policy) {
        (Profile::Savp, SrtpPolicy::Off) => return Err(SdpError::SrtpNotEnabled),
        (Profile::Avp, SrtpPolicy::Required) => return Err(SdpError::SrtpRequired),
        (Profile::Avp, _) => None,
        (Profile::Savp, _) => {
            let c = Crypto::choose(&offer.crypto).map_err(|e| SdpError::Crypto(e.to_string()))?;
            Some(SrtpKeys { suite: c.suite, tag: c.tag, remote: c.key, local: local_key })
        }
    };
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
        srtp,
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
        if let Some(k) = &neg.srtp {
            let line = Crypto { tag: k.tag, suite: k.suite, key: k.remote }.answer_line(&k.local);
            let _ = write!(sdp, "a=crypto:{line}\r\n");
        }
    }
    Bytes::from(sdp)
}

/// Our offer, for an INVITE that came without one: PCMU, PCMA and telephone-event, 20 ms, sendrecv; SRTP
/// (`RTP/SAVP`, one `AES_CM_128_HMAC_SHA1_80` line with `srtp_key`) when a key is given.
pub fn offer(local: &Local, srtp_key: Option<KeySalt>) -> Bytes {
    let mut sdp = session_header(local);
    let te = OFFER_TELEPHONE_EVENT;
    let proto = if srtp_key.is_some() { "RTP/SAVP" } else { "RTP/AVP" };
    let _ = write!(
        sdp,
        "m=audio {} {proto} 0 8 {te}\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n\
         a=rtpmap:{te} telephone-event/8000\r\na=fmtp:{te} 0-16\r\na=ptime:{PTIME_MS}\r\na=sendrecv\r\n",
        local.port
    );
    if let Some(key) = srtp_key {
        let ours = Crypto { tag: 1, suite: Suite::AesCm128HmacSha1_80, key };
        let _ = write!(sdp, "a=crypto:{}\r\n", ours.answer_line(&key));
    }
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
