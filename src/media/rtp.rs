//! RTP packets on the wire (RFC 3550 §5.1), through `rtc-rtp`'s header codec: parse borrows the payload from
//! the datagram and build writes into a caller's buffer, so neither allocates for the packets a call carries
//! (no CSRC list, no header extension). Never touches a socket.

use bytes::Buf;
use rtc_rtp::header::Header;
use rtc_shared::marshal::{Marshal, Unmarshal};

/// The fixed RTP header length.
pub const HEADER_BYTES: usize = 12;

/// One parsed RTP packet, borrowing its payload from the datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    pub marker: bool,
    pub payload_type: u8,
    pub seq: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    pub payload: &'a [u8],
}

/// Why a datagram is not an RTP packet we accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RtpError {
    #[error("shorter than an RTP header")]
    Short,
    #[error("RTP version is not 2")]
    Version,
    #[error("malformed RTP header (CSRC list or extension)")]
    Header,
    #[error("padding longer than the payload")]
    Padding,
    #[error("an RTCP packet on the RTP port")]
    Rtcp,
}

impl RtpError {
    pub fn as_str(self) -> &'static str {
        match self {
            RtpError::Short => "short",
            RtpError::Version => "version",
            RtpError::Header => "header",
            RtpError::Padding => "padding",
            RtpError::Rtcp => "rtcp",
        }
    }
}

/// Parses one datagram (RFC 3550 §5.1, padding per §5.1 P bit). RTCP multiplexed on the RTP port (RFC 5761:
/// payload types 72–76 with the marker bit set, i.e. packet types 200–204) is told apart and refused.
pub fn parse(datagram: &[u8]) -> Result<RtpPacket<'_>, RtpError> {
    if datagram.len() < HEADER_BYTES {
        return Err(RtpError::Short);
    }
    if datagram[0] >> 6 != 2 {
        return Err(RtpError::Version);
    }
    if (200..=204).contains(&datagram[1]) {
        return Err(RtpError::Rtcp);
    }
    let mut rest = datagram;
    let header = Header::unmarshal(&mut rest).map_err(|_| RtpError::Header)?;
    let mut payload = &rest[..rest.remaining()];
    if header.padding {
        let pad = payload.last().copied().ok_or(RtpError::Padding)? as usize;
        if pad == 0 || pad > payload.len() {
            return Err(RtpError::Padding);
        }
        payload = &payload[..payload.len() - pad];
    }
    Ok(RtpPacket {
        marker: header.marker,
        payload_type: header.payload_type,
        seq: header.sequence_number,
        timestamp: header.timestamp,
        ssrc: header.ssrc,
        payload,
    })
}

/// Writes a packet (no CSRC, no extension, no padding) into `out`; returns its length, or `None` when `out` is
/// too small.
pub fn build(p: &RtpPacket<'_>, out: &mut [u8]) -> Option<usize> {
    let total = HEADER_BYTES + p.payload.len();
    if out.len() < total || p.payload_type > 127 {
        return None;
    }
    let header = Header {
        version: 2,
        marker: p.marker,
        payload_type: p.payload_type,
        sequence_number: p.seq,
        timestamp: p.timestamp,
        ssrc: p.ssrc,
        ..Header::default()
    };
    let n = header.marshal_to(out).ok()?;
    out[n..n + p.payload.len()].copy_from_slice(p.payload);
    Some(n + p.payload.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> RtpPacket<'static> {
        RtpPacket {
            marker: true,
            payload_type: 0,
            seq: 65535,
            timestamp: 0xDEAD_BEEF,
            ssrc: 0x1234_5678,
            payload: &[1, 2, 3, 4],
        }
    }

    #[test]
    fn a_built_packet_parses_back_unchanged() {
        let mut buf = [0u8; 64];
        let n = build(&sample(), &mut buf).unwrap();
        assert_eq!(n, 16);
        assert_eq!(&buf[..4], &[0x80, 0x80, 0xFF, 0xFF]);
        assert_eq!(parse(&buf[..n]), Ok(sample()));
    }

    #[test]
    fn padding_csrcs_and_extensions_are_skipped_to_the_payload() {
        // V=2 P=1 X=1 CC=1, PT 8, one CSRC, a 1-word RFC 3550 extension, payload 0xAA 0xBB, 2 bytes of padding.
        let mut d = vec![0xB1, 8, 0, 7, 0, 0, 0, 160, 0, 0, 0, 9];
        d.extend_from_slice(&[0, 0, 0, 42]);
        d.extend_from_slice(&[0x12, 0x34, 0, 1, 9, 9, 9, 9]);
        d.extend_from_slice(&[0xAA, 0xBB, 0, 2]);
        let p = parse(&d).unwrap();
        assert_eq!((p.payload_type, p.seq, p.timestamp, p.ssrc), (8, 7, 160, 9));
        assert_eq!(p.payload, &[0xAA, 0xBB]);
    }

    #[test]
    fn malformed_datagrams_are_refused_with_a_reason() {
        assert_eq!(parse(&[0x80; 11]), Err(RtpError::Short));
        assert_eq!(parse(&[0x40; 12]), Err(RtpError::Version));
        // CC = 15 but no CSRCs follow.
        assert_eq!(parse(&[0x8F, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1]), Err(RtpError::Header));
        // Extension bit set, no extension header.
        assert_eq!(parse(&[0x90, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1]), Err(RtpError::Header));
        // Padding count larger than the payload, and zero.
        assert_eq!(parse(&[0xA0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 9, 5]), Err(RtpError::Padding));
        assert_eq!(parse(&[0xA0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 9, 0]), Err(RtpError::Padding));
        // An RTCP receiver report sent to the RTP port.
        assert_eq!(parse(&[0x81, 201, 0, 7, 0, 0, 0, 1, 0, 0, 0, 0]), Err(RtpError::Rtcp));
    }

    #[test]
    fn build_refuses_a_buffer_too_small() {
        assert_eq!(build(&sample(), &mut [0u8; 15]), None);
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(d in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let _ = parse(&d);
        }
    }
}
