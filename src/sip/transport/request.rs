//! Where a request vocals sends inside a dialog (BYE, REFER) goes, and over which connection (RFC 3261 §18.1.1 with
//! §12.2.1.1's next hop; connection reuse: back over the connection the peer opened, as Twilio's edges expect).

use std::net::SocketAddr;

use super::Peer;
use crate::sip::message::Uri;

/// The peer a request in a dialog goes to, given the dialog's next hop (its first route, else the remote
/// target) and `flow`, the peer the dialog's INVITE came from:
///
/// - over TCP or TLS, over the connection the INVITE came on (vocals opens no connections; Twilio opens
///   them and expects its requests' answers and the dialog's requests on them);
/// - over UDP, to the next hop when it names an IP address (Twilio's edge; its port, else 5060), else back
///   to where the INVITE came from (a name would need RFC 3263 resolution, which vocals does not do).
///
/// `maddr` in the next hop is not followed, as in responses.
pub fn request_destination(next_hop: &Uri, flow: Peer) -> Peer {
    if flow.transport.is_reliable() {
        return flow;
    }
    let addr = match next_hop {
        Uri::Sip(u) => u.host.ip().map(|ip| SocketAddr::new(ip, u.port.unwrap_or(5060))),
        _ => None,
    };
    Peer { addr: addr.unwrap_or(flow.addr), ..flow }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::sip::transport::Transport;
    use crate::sip::transport::test_support::peer;

    fn uri(s: &'static str) -> Uri {
        Uri::parse(&Bytes::from_static(s.as_bytes())).unwrap()
    }

    #[test]
    fn over_udp_a_request_goes_to_the_next_hop_when_it_is_an_address() {
        let flow = peer("172.25.90.229:5060", Transport::Udp, None);
        let to = request_destination(&uri("sip:54.244.51.1;lr"), flow);
        assert_eq!(to.addr, "54.244.51.1:5060".parse().unwrap(), "Twilio's edge, port 5060 when none is given");
        assert_eq!((to.local, to.transport, to.conn), (flow.local, Transport::Udp, None));
        let to = request_destination(&uri("sip:54.244.51.1:5070;lr"), flow);
        assert_eq!(to.addr.port(), 5070);
        let to = request_destination(&uri("sip:[2001:db8::1]:5062"), flow);
        assert_eq!(to.addr, "[2001:db8::1]:5062".parse().unwrap());
    }

    #[test]
    fn over_udp_a_next_hop_that_is_a_name_or_not_sip_falls_back_to_where_the_invite_came_from() {
        let flow = peer("192.0.2.7:40000", Transport::Udp, None);
        assert_eq!(request_destination(&uri("sip:edge.example.com;lr"), flow), flow);
        assert_eq!(request_destination(&uri("tel:+14155550100"), flow), flow);
    }

    #[test]
    fn over_tcp_or_tls_a_request_reuses_the_connection_the_dialog_came_on() {
        for transport in [Transport::Tcp, Transport::Tls] {
            let flow = peer("192.0.2.7:40000", transport, Some(9));
            let to = request_destination(&uri("sip:54.244.51.1:5060;lr;transport=tcp"), flow);
            assert_eq!(to, flow, "{transport:?}: connection 9, not a new one to the next hop");
        }
    }

    #[test]
    fn maddr_in_the_next_hop_is_not_followed() {
        let flow = peer("192.0.2.7:40000", Transport::Udp, None);
        let to = request_destination(&uri("sip:54.244.51.1;maddr=198.51.100.1;lr"), flow);
        assert_eq!(to.addr, "54.244.51.1:5060".parse().unwrap());
    }
}
