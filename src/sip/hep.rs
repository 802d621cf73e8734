//! HEPv3 (the Homer Encapsulation Protocol, version 3, <https://github.com/sipcapture/HEP>), sans-IO: each SIP
//! message in or out wrapped for a Homer (or any HEP) collector, with its addresses, ports, time, the capture
//! agent's id and the Call-ID as the correlation id.
//!
//! No crate on crates.io encodes HEPv3 and is kept up (the `hep` crate only parses, and has not changed since
//! 2020), so the encoder is here: a header (`HEP3`, the total length) and type-length-value chunks, each
//! `vendor (0 = generic) · type · length (with its 6-byte head)`, all big-endian.

use std::net::{IpAddr, SocketAddr};
use std::time::SystemTime;

use bytes::{BufMut, Bytes, BytesMut};

use super::trace::Direction;
use super::transport::Transport;

/// Chunk types of the generic vendor (HEPv3 §"Chunk types").
pub mod chunk {
    pub const IP_FAMILY: u16 = 0x0001;
    pub const IP_PROTOCOL: u16 = 0x0002;
    pub const IPV4_SRC: u16 = 0x0003;
    pub const IPV4_DST: u16 = 0x0004;
    pub const IPV6_SRC: u16 = 0x0005;
    pub const IPV6_DST: u16 = 0x0006;
    pub const SRC_PORT: u16 = 0x0007;
    pub const DST_PORT: u16 = 0x0008;
    pub const TIME_SECONDS: u16 = 0x0009;
    pub const TIME_MICROS: u16 = 0x000a;
    pub const PROTOCOL_TYPE: u16 = 0x000b;
    pub const CAPTURE_ID: u16 = 0x000c;
    pub const PAYLOAD: u16 = 0x000f;
    pub const CORRELATION_ID: u16 = 0x0011;
}

/// Protocol type 1: SIP.
pub const SIP: u8 = 1;
/// The longest packet HEPv3 can frame (its length is 16 bits).
pub const MAX_PACKET: usize = u16::MAX as usize;

/// One SIP message as a HEPv3 packet. `peer` is the other side and `local` ours (the source and destination
/// follow `dir`); `call_id` is the correlation id (empty: none). A payload that would not fit in a HEP packet is
/// cut to fit.
#[allow(clippy::too_many_arguments)]
pub fn encode(
    out: &mut BytesMut,
    capture_id: u32,
    at: SystemTime,
    dir: Direction,
    peer: SocketAddr,
    local: SocketAddr,
    transport: Transport,
    call_id: &[u8],
    payload: &[u8],
) {
    let (src, dst) = match dir {
        Direction::In => (peer, local),
        Direction::Out => (local, peer),
    };
    let (src_ip, dst_ip) = (canonical(src.ip()), canonical(dst.ip()));
    let since = at.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let start = out.len();
    out.put_slice(b"HEP3");
    out.put_u16(0); // the total length, set at the end
    let put = |out: &mut BytesMut, kind: u16, value: &[u8]| {
        out.put_u16(0);
        out.put_u16(kind);
        out.put_u16((6 + value.len()) as u16);
        out.put_slice(value);
    };
    match (src_ip, dst_ip) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            put(out, chunk::IP_FAMILY, &[2]);
            put(out, chunk::IP_PROTOCOL, &[protocol(transport)]);
            put(out, chunk::IPV4_SRC, &s.octets());
            put(out, chunk::IPV4_DST, &d.octets());
        }
        (s, d) => {
            put(out, chunk::IP_FAMILY, &[10]);
            put(out, chunk::IP_PROTOCOL, &[protocol(transport)]);
            put(out, chunk::IPV6_SRC, &v6(s).octets());
            put(out, chunk::IPV6_DST, &v6(d).octets());
        }
    }
    put(out, chunk::SRC_PORT, &src.port().to_be_bytes());
    put(out, chunk::DST_PORT, &dst.port().to_be_bytes());
    put(out, chunk::TIME_SECONDS, &(since.as_secs() as u32).to_be_bytes());
    put(out, chunk::TIME_MICROS, &since.subsec_micros().to_be_bytes());
    put(out, chunk::PROTOCOL_TYPE, &[SIP]);
    put(out, chunk::CAPTURE_ID, &capture_id.to_be_bytes());
    let call_id = &call_id[..call_id.len().min(256)];
    if !call_id.is_empty() {
        put(out, chunk::CORRELATION_ID, call_id);
    }
    let room = MAX_PACKET - (out.len() - start) - 6;
    put(out, chunk::PAYLOAD, &payload[..payload.len().min(room)]);
    let total = (out.len() - start) as u16;
    out[start + 4..start + 6].copy_from_slice(&total.to_be_bytes());
}

fn protocol(transport: Transport) -> u8 {
    match transport {
        Transport::Udp => 17,
        Transport::Tcp | Transport::Tls => 6,
    }
}

/// An IPv4-mapped IPv6 address (a dual-stack socket's view of an IPv4 peer) as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn v6(ip: IpAddr) -> std::net::Ipv6Addr {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

/// The chunks of a HEPv3 packet, `(vendor, type, value)`: what a collector reads (for tests, and to check what
/// vocals sends). `None` when the packet is not well-formed HEPv3.
pub fn decode(packet: &[u8]) -> Option<Vec<(u16, u16, Bytes)>> {
    if packet.len() < 6 || &packet[..4] != b"HEP3" {
        return None;
    }
    let total = usize::from(u16::from_be_bytes([packet[4], packet[5]]));
    if total != packet.len() {
        return None;
    }
    let mut chunks = Vec::new();
    let mut at = 6;
    while at < total {
        let head = packet.get(at..at + 6)?;
        let vendor = u16::from_be_bytes([head[0], head[1]]);
        let kind = u16::from_be_bytes([head[2], head[3]]);
        let len = usize::from(u16::from_be_bytes([head[4], head[5]]));
        let value = packet.get(at + 6..at + len.checked_sub(6).map(|l| l + 6)?)?;
        chunks.push((vendor, kind, Bytes::copy_from_slice(value)));
        at += len;
    }
    Some(chunks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn find(chunks: &[(u16, u16, Bytes)], kind: u16) -> &[u8] {
        &chunks.iter().find(|c| c.0 == 0 && c.1 == kind).unwrap().2
    }

    #[test]
    fn a_message_in_over_ipv4_is_framed_with_its_addresses_time_capture_id_and_call_id() {
        let mut out = BytesMut::new();
        let at = SystemTime::UNIX_EPOCH + Duration::from_micros(1_800_000_000_123_456);
        let msg = b"INVITE sip:+15550002@127.0.0.1 SIP/2.0\r\nCall-ID: abc\r\n\r\n";
        let peer: SocketAddr = "[::ffff:192.0.2.7]:5080".parse().unwrap();
        let local: SocketAddr = "127.0.0.1:5060".parse().unwrap();
        encode(&mut out, 2001, at, Direction::In, peer, local, Transport::Udp, b"abc", msg);
        let c = decode(&out).unwrap();
        assert_eq!(&out[..4], b"HEP3");
        assert_eq!(find(&c, chunk::IP_FAMILY), [2]);
        assert_eq!(find(&c, chunk::IP_PROTOCOL), [17]);
        assert_eq!(find(&c, chunk::IPV4_SRC), [192, 0, 2, 7], "the mapped address as the IPv4 it is");
        assert_eq!(find(&c, chunk::IPV4_DST), [127, 0, 0, 1]);
        assert_eq!(find(&c, chunk::SRC_PORT), 5080u16.to_be_bytes());
        assert_eq!(find(&c, chunk::DST_PORT), 5060u16.to_be_bytes());
        assert_eq!(find(&c, chunk::TIME_SECONDS), 1_800_000_000u32.to_be_bytes());
        assert_eq!(find(&c, chunk::TIME_MICROS), 123_456u32.to_be_bytes());
        assert_eq!(find(&c, chunk::PROTOCOL_TYPE), [SIP]);
        assert_eq!(find(&c, chunk::CAPTURE_ID), 2001u32.to_be_bytes());
        assert_eq!(find(&c, chunk::CORRELATION_ID), b"abc");
        assert_eq!(find(&c, chunk::PAYLOAD), msg);
    }

    #[test]
    fn a_message_out_over_ipv6_tcp_swaps_source_and_destination_and_an_oversized_one_is_cut_to_fit() {
        let mut out = BytesMut::new();
        let peer: SocketAddr = "[2001:db8::1]:5061".parse().unwrap();
        let local: SocketAddr = "[::1]:5060".parse().unwrap();
        let big = vec![b'x'; 70_000];
        encode(&mut out, 7, SystemTime::now(), Direction::Out, peer, local, Transport::Tls, b"", &big);
        assert_eq!(out.len(), MAX_PACKET);
        let c = decode(&out).unwrap();
        assert_eq!(find(&c, chunk::IP_FAMILY), [10]);
        assert_eq!(find(&c, chunk::IP_PROTOCOL), [6]);
        assert_eq!(find(&c, chunk::IPV6_SRC), "::1".parse::<std::net::Ipv6Addr>().unwrap().octets());
        assert_eq!(find(&c, chunk::IPV6_DST), "2001:db8::1".parse::<std::net::Ipv6Addr>().unwrap().octets());
        assert_eq!(find(&c, chunk::SRC_PORT), 5060u16.to_be_bytes());
        assert!(c.iter().all(|c| c.1 != chunk::CORRELATION_ID), "no Call-ID, no correlation chunk");
        assert!(find(&c, chunk::PAYLOAD).len() < 65_535);
        assert_eq!(decode(&out[..out.len() - 1]), None);
        assert_eq!(decode(b"HEP2\x00\x06"), None);
    }
}
