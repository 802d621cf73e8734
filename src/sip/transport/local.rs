//! How vocals names itself in what it sends: the sent-by of our Via (RFC 3261 §18.1.1, with `rport` asked for
//! per RFC 3581 §3) and our Contact (§8.1.1.8, §12.1.1), from the configured public host or the listener the
//! peer reached.

use std::net::IpAddr;

use bytes::Bytes;

use super::{Peer, Transport};
use crate::sip::message::Host;
use crate::sip::message::typed::{Transport as ViaTransport, Via};

/// `<sip:host:port;transport=udp|tcp|tls>`: where the peer sends in-dialog requests (§12.1.1); for TLS the
/// port is our TLS listener's (the connection's local port). `public_host` (the configured one) names us,
/// else the address of the listener `peer` reached.
pub fn our_contact(public_host: Option<&str>, peer: &Peer) -> String {
    format!("<sip:{}:{};transport={}>", our_host(public_host, peer), peer.local.port(), peer.transport.as_str())
}

/// Our Via for a request we send to `peer` (§18.1.1: the transport and our sent-by, the listener's port),
/// with an empty `rport` (RFC 3581 §3) so the answer comes back to the port it left from.
pub fn our_via(public_host: Option<&str>, peer: &Peer, branch: &str) -> Via {
    let transport = match peer.transport {
        Transport::Udp => ViaTransport::Udp,
        Transport::Tcp => ViaTransport::Tcp,
        Transport::Tls => ViaTransport::Tls,
    };
    // An IPv6 address is named in brackets (a URI's way); the Via's host is the address itself, which prints
    // in brackets again. A name stays a name.
    let name = our_host(public_host, peer);
    let bare = name.trim_matches(['[', ']']);
    let host = match bare.parse::<IpAddr>() {
        Ok(ip) => Host::from(ip),
        Err(_) => Host::Name(Bytes::from(bare.to_string())),
    };
    let mut via = Via::new(transport, host, Some(peer.local.port()), branch);
    via.params.set("rport", None);
    via
}

/// The host vocals names itself by: the configured public host, else the listener's address (an IPv6 one in
/// brackets, as a URI writes it).
pub fn our_host(public_host: Option<&str>, peer: &Peer) -> String {
    match public_host {
        Some(h) => h.to_string(),
        None => match peer.local.ip() {
            IpAddr::V6(v6) => format!("[{v6}]"),
            v4 => v4.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::transport::test_support::peer;

    #[test]
    fn our_contact_names_the_listener_the_peer_reached_unless_a_public_host_is_set() {
        let udp = peer("54.244.51.1:5060", Transport::Udp, None);
        assert_eq!(our_contact(None, &udp), "<sip:203.0.113.10:5060;transport=udp>");
        assert_eq!(our_contact(Some("sip.example.com"), &udp), "<sip:sip.example.com:5060;transport=udp>");
        let tls = peer("54.244.51.1:40000", Transport::Tls, Some(3));
        assert_eq!(our_contact(None, &tls), "<sip:203.0.113.10:5061;transport=tls>", "the TLS listener's port");
        let v6 = Peer { local: "[2001:db8::10]:5060".parse().unwrap(), ..udp };
        assert_eq!(our_contact(None, &v6), "<sip:[2001:db8::10]:5060;transport=udp>");
    }

    #[test]
    fn our_via_names_our_transport_and_sent_by_and_asks_for_rport() {
        let tcp = peer("54.244.51.1:40000", Transport::Tcp, Some(3));
        let via = our_via(None, &tcp, "z9hG4bKvc1");
        assert_eq!(&via.to_bytes()[..], b"SIP/2.0/TCP 203.0.113.10:5060;branch=z9hG4bKvc1;rport");
        let named = our_via(Some("sip.example.com"), &tcp, "z9hG4bKvc1");
        assert_eq!(named.host, Host::Name(Bytes::from_static(b"sip.example.com")));
    }

    #[test]
    fn our_via_from_an_ipv6_listener_or_public_host_names_an_ipv6_address_in_brackets() {
        let udp = peer("[2001:db8::1]:5060", Transport::Udp, None);
        let v6 = Peer { local: "[2001:db8::10]:5060".parse().unwrap(), ..udp };
        let via = our_via(None, &v6, "z9hG4bKvc1");
        assert_eq!(via.host, Host::V6("2001:db8::10".parse().unwrap()));
        assert_eq!(&via.to_bytes()[..], b"SIP/2.0/UDP [2001:db8::10]:5060;branch=z9hG4bKvc1;rport");
        assert_eq!(Via::parse(&via.to_bytes()).unwrap(), via, "a Via a peer can read");
        assert_eq!(our_via(Some("[2001:db8::20]"), &udp, "b").host, Host::V6("2001:db8::20".parse().unwrap()));
        assert_eq!(our_via(Some("2001:db8::20"), &udp, "b").host, Host::V6("2001:db8::20".parse().unwrap()));
    }
}
