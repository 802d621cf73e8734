//! Where a response goes (RFC 3261 §18.2.2, RFC 3581 §4), decided from the stamped top Via of its request
//! and the peer the request came from.

use std::net::SocketAddr;

use super::Peer;
use super::received::StampedVia;
use crate::sip::message::typed::Transport as ViaTransport;

/// The peer a response to a request received from `from`, whose top Via is `stamped` (by
/// [`super::stamp_received`]), is sent to:
///
/// - over a reliable transport (TCP, TLS), back over the connection the request came on (§18.2.2; a
///   connection that has closed since is the driver's to find: see [`super::Route::Gone`]);
/// - over UDP with `rport` asked for, to the source address and port (RFC 3581 §4);
/// - over UDP without it, to the source address (`received`, §18.2.2) and the sent-by port: 5060 when absent,
///   5061 for a `TLS` sent-by (§19.1.2).
///
/// `maddr` in the Via is never followed: a response goes where its request came from, so a request cannot
/// aim vocals's responses at a third party (the multicast and `maddr` rules of §18.2.2 are not implemented).
pub fn response_destination(stamped: &StampedVia, from: Peer) -> Peer {
    if from.transport.is_reliable() || stamped.rport {
        return from;
    }
    let via = &stamped.via;
    let default_port = if matches!(via.transport, ViaTransport::Tls) { 5061 } else { 5060 };
    Peer { addr: SocketAddr::new(from.addr.ip(), via.port.unwrap_or(default_port)), ..from }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::transport::Transport;
    use crate::sip::transport::stamp_received;
    use crate::sip::transport::test_support::{peer, request_with_via};

    /// Where the response to a request with top Via `via`, received from `from`, goes.
    fn destination(via: &str, from: Peer) -> Peer {
        let mut req = request_with_via(via);
        let stamped = stamp_received(&mut req, &from).unwrap();
        response_destination(&stamped, from)
    }

    #[test]
    fn udp_with_rport_goes_back_to_the_source_port() {
        let from = peer("192.0.2.7:40000", Transport::Udp, None);
        let to = destination("SIP/2.0/UDP 54.244.51.1:5060;rport;branch=z9hG4bKa", from);
        assert_eq!(to, from);
    }

    #[test]
    fn udp_without_rport_goes_to_the_source_address_and_the_sent_by_port() {
        let from = peer("192.0.2.7:40000", Transport::Udp, None);
        let to = destination("SIP/2.0/UDP 54.244.51.1:5070;branch=z9hG4bKa", from);
        assert_eq!(to.addr, "192.0.2.7:5070".parse().unwrap(), "received address, sent-by port");
        assert_eq!((to.local, to.transport, to.conn), (from.local, Transport::Udp, None));
    }

    #[test]
    fn udp_without_a_sent_by_port_uses_the_default_port_of_the_via_transport() {
        let from = peer("192.0.2.7:40000", Transport::Udp, None);
        assert_eq!(destination("SIP/2.0/UDP 54.244.51.1;branch=z9hG4bKa", from).addr.port(), 5060);
        assert_eq!(destination("SIP/2.0/TLS 54.244.51.1;branch=z9hG4bKa", from).addr.port(), 5061);
    }

    #[test]
    fn an_rport_the_client_filled_in_itself_is_not_followed() {
        let from = peer("192.0.2.7:40000", Transport::Udp, None);
        let to = destination("SIP/2.0/UDP 54.244.51.1:5060;rport=7;branch=z9hG4bKa", from);
        assert_eq!(to.addr, "192.0.2.7:5060".parse().unwrap(), "only an empty rport asks (RFC 3581 §3)");
    }

    #[test]
    fn tcp_and_tls_responses_go_back_over_the_connection_the_request_came_on() {
        for transport in [Transport::Tcp, Transport::Tls] {
            let from = peer("192.0.2.7:40000", transport, Some(17));
            let to = destination("SIP/2.0/TCP 54.244.51.1:5060;branch=z9hG4bKa", from);
            assert_eq!(to, from, "{transport:?}: the same connection, whatever the sent-by port");
            assert_eq!(to.conn, Some(17));
        }
    }

    #[test]
    fn an_ipv6_source_without_rport_gets_its_response_at_its_address_and_the_sent_by_port() {
        let from = peer("[2001:db8::9]:40000", Transport::Udp, None);
        let to = destination("SIP/2.0/UDP [2001:db8::1]:5062;branch=z9hG4bKa", from);
        assert_eq!(to.addr, "[2001:db8::9]:5062".parse().unwrap());
    }

    #[test]
    fn maddr_is_never_followed() {
        let from = peer("192.0.2.7:40000", Transport::Udp, None);
        let to = destination("SIP/2.0/UDP 54.244.51.1:5060;maddr=198.51.100.1;branch=z9hG4bKa", from);
        assert_eq!(to.addr, "192.0.2.7:5060".parse().unwrap(), "the source address, not maddr's");
        let to = destination("SIP/2.0/UDP 54.244.51.1:5060;maddr=198.51.100.1;rport;branch=z9hG4bKa", from);
        assert_eq!(to.addr, from.addr);
    }
}
