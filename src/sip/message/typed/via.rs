//! Via (RFC 3261 §20.42, §18.2.1; RFC 3581 rport; RFC 5118 IPv6 sent-by and received).

use std::net::IpAddr;

use bytes::{BufMut, Bytes, BytesMut};
use nom::Parser;
use nom::bytes::complete::{tag, take_while, take_while1};
use nom::sequence::delimited;

use super::HeaderError;
use crate::sip::message::params::{ParamStyle, Params, parse_params, split_params};
use crate::sip::message::scan::{is_token, is_wsp, trim_wsp};
use crate::sip::message::uri::{Host, HostView, itoa_buf, parse_hostport};

/// One Via entry: `SIP/2.0/UDP host:port;branch=...`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Via {
    pub transport: Transport,
    pub host: Host,
    pub port: Option<u16>,
    pub params: Params,
}

/// The transport named in a Via.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
    Sctp,
    Ws,
    Wss,
    Other(Bytes),
}

impl Via {
    pub fn parse(src: &Bytes) -> Result<Via, HeaderError> {
        Self::parse_in(src, src)
    }

    /// Parses `s`, a subslice of `src`.
    pub fn parse_in(src: &Bytes, s: &[u8]) -> Result<Via, HeaderError> {
        ViaView::parse(s)?.to_owned(src)
    }

    /// A Via for a request vocals sends.
    pub fn new(transport: Transport, host: Host, port: Option<u16>, branch: &str) -> Via {
        let mut params = Params::new();
        params.set("branch", Some(Bytes::copy_from_slice(branch.as_bytes())));
        Via { transport, host, port, params }
    }

    pub fn branch(&self) -> Option<&Bytes> {
        self.params.value("branch")
    }

    /// `received=`, when it holds an IP address (bracketed or not, RFC 5118 §4.5).
    pub fn received(&self) -> Option<IpAddr> {
        let v = self.params.value("received")?;
        let v = v.strip_prefix(b"[").and_then(|v| v.strip_suffix(b"]")).unwrap_or(v);
        std::str::from_utf8(v).ok()?.parse().ok()
    }

    /// `rport` (RFC 3581): `None` when absent, `Some(None)` when present without a value.
    pub fn rport(&self) -> Option<Option<u16>> {
        let p = self.params.find("rport")?;
        Some(p.value.as_ref().and_then(|v| std::str::from_utf8(v).ok()?.parse().ok()))
    }

    /// Whether the branch carries the RFC 3261 magic cookie (`z9hG4bK`, §8.1.1.7).
    pub fn has_rfc3261_branch(&self) -> bool {
        self.branch().is_some_and(|b| b.starts_with(b"z9hG4bK"))
    }

    pub fn encode(&self, out: &mut BytesMut) {
        out.put_slice(b"SIP/2.0/");
        out.put_slice(self.transport.as_bytes());
        out.put_u8(b' ');
        self.host.encode(out);
        if let Some(port) = self.port {
            out.put_u8(b':');
            out.put_slice(itoa_buf::Buf::new(u64::from(port)).as_bytes());
        }
        self.params.encode(out);
    }

    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(96);
        self.encode(&mut out);
        out.freeze()
    }
}

/// A Via checked against the grammar, borrowed from the input; allocates nothing.
pub(crate) struct ViaView<'a> {
    transport: &'a [u8],
    host: HostView<'a>,
    port: Option<u16>,
    params: &'a [u8],
}

impl<'a> ViaView<'a> {
    pub(crate) fn parse(s: &'a [u8]) -> Result<ViaView<'a>, HeaderError> {
        match Self::parse_first(s)? {
            (via, []) => Ok(via),
            _ => Err(HeaderError("unexpected character after the parameters")),
        }
    }

    /// Parses the first element of a Via line; returns it and the rest (empty, or `,` and more elements).
    pub(crate) fn parse_first(s: &'a [u8]) -> Result<(ViaView<'a>, &'a [u8]), HeaderError> {
        let s = trim_wsp(s);
        let (rest, (name, version, transport)) =
            sent_protocol(s).map_err(|_| HeaderError("sent-protocol must be SIP/2.0/transport"))?;
        if !name.eq_ignore_ascii_case(b"SIP") || version != b"2.0" {
            return Err(HeaderError("sent-protocol must be SIP/2.0/transport"));
        }
        let gap = rest.iter().take_while(|&&b| is_wsp(b)).count();
        if gap == 0 {
            return Err(HeaderError("sent-protocol must be followed by white space and sent-by"));
        }
        let (host, port, rest) = parse_hostport(&rest[gap..])?;
        let (params, rest) = split_params(rest, ParamStyle::Header).map_err(HeaderError)?;
        Ok((ViaView { transport, host, port, params }, rest))
    }

    fn to_owned(&self, src: &Bytes) -> Result<Via, HeaderError> {
        let (params, _) = parse_params(src, self.params, ParamStyle::Header).map_err(HeaderError)?;
        let transport = Transport::from_received(src, self.transport);
        Ok(Via { transport, host: self.host.to_owned(src), port: self.port, params })
    }
}

type SentProtocol<'a> = (&'a [u8], &'a [u8], &'a [u8]);

/// `protocol-name SLASH protocol-version SLASH transport`, where `SLASH = SWS "/" SWS`.
fn sent_protocol(s: &[u8]) -> nom::IResult<&[u8], SentProtocol<'_>> {
    let slash = || delimited(take_while(is_wsp), tag(&b"/"[..]), take_while(is_wsp));
    (take_while1(is_token), slash(), take_while1(is_token), slash(), take_while1(is_token))
        .map(|(name, _, version, _, transport)| (name, version, transport))
        .parse(s)
}

impl Transport {
    fn from_received(src: &Bytes, s: &[u8]) -> Transport {
        const KNOWN: [(&[u8], Transport); 6] = [
            (b"UDP", Transport::Udp),
            (b"TCP", Transport::Tcp),
            (b"TLS", Transport::Tls),
            (b"SCTP", Transport::Sctp),
            (b"WS", Transport::Ws),
            (b"WSS", Transport::Wss),
        ];
        KNOWN
            .into_iter()
            .find(|(name, _)| s.eq_ignore_ascii_case(name))
            .map_or_else(|| Transport::Other(src.slice_ref(s)), |(_, t)| t)
    }

    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Transport::Udp => b"UDP",
            Transport::Tcp => b"TCP",
            Transport::Tls => b"TLS",
            Transport::Sctp => b"SCTP",
            Transport::Ws => b"WS",
            Transport::Wss => b"WSS",
            Transport::Other(b) => b,
        }
    }

    /// Reliable transports carry no retransmissions (RFC 3261 §17).
    pub fn is_reliable(&self) -> bool {
        !matches!(self, Transport::Udp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Via, HeaderError> {
        Via::parse(&Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn twilio_via_parses() {
        let v = parse("SIP/2.0/UDP 172.25.90.229:5060;rport=5060;branch=z9hG4bK4bb137d8-5577_c3356d0b_561-1").unwrap();
        assert_eq!(v.transport, Transport::Udp);
        assert_eq!(v.host, Host::V4("172.25.90.229".parse().unwrap()));
        assert_eq!(v.port, Some(5060));
        assert_eq!(v.rport(), Some(Some(5060)));
        assert!(v.has_rfc3261_branch());
    }

    #[test]
    fn white_space_around_slashes_and_params_is_allowed() {
        let v = parse("SIP / 2.0 / tcp  [2001:db8::9:1]:5061 ; received=2001:db8::9:255 ; rport ; branch=x").unwrap();
        assert_eq!(v.transport, Transport::Tcp);
        assert_eq!(v.host, Host::V6("2001:db8::9:1".parse().unwrap()));
        assert_eq!(v.received(), Some("2001:db8::9:255".parse().unwrap()));
        assert_eq!(v.rport(), Some(None));
        assert!(!v.has_rfc3261_branch());
    }

    #[test]
    fn bad_vias_are_refused() {
        for bad in [
            "SIP/2.0/UDP",
            "SIP/3.0/UDP host",
            "HTTP/2.0/UDP host",
            "SIP/2.0 host",
            "SIP/2.0/UDPhost",
            "SIP/2.0/UDP 2001:db8::1",
            "SIP/2.0/UDP host;",
            "SIP/2.0/UDP host junk",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_first_element_of_a_via_line_stops_at_the_comma() {
        let line = b"SIP/2.0/UDP a:5060;branch=z9hG4bK1 , SIP/2.0/TCP b;branch=z9hG4bK2";
        let (top, rest) = ViaView::parse_first(line).unwrap();
        assert_eq!(top.port, Some(5060));
        assert_eq!(rest, b", SIP/2.0/TCP b;branch=z9hG4bK2");
        assert!(ViaView::parse(line).is_err(), "a whole value must be one Via");
        assert!(parse("SIP/2.0/UDP a;branch=1, junk").is_err());
    }

    #[test]
    fn via_round_trips() {
        for s in ["SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;rport", "SIP/2.0/TLS [::1];received=::1", "SIP/2.0/WSS h"]
        {
            let v = parse(s).unwrap();
            assert_eq!(&v.to_bytes()[..], s.as_bytes());
            assert_eq!(Via::parse(&v.to_bytes()).unwrap(), v);
        }
    }

    #[test]
    fn a_new_via_carries_its_branch() {
        let v = Via::new(Transport::Tcp, Host::Name(Bytes::from_static(b"vocals.example")), Some(5060), "z9hG4bKabc");
        assert_eq!(&v.to_bytes()[..], b"SIP/2.0/TCP vocals.example:5060;branch=z9hG4bKabc");
        assert!(v.transport.is_reliable());
    }
}
