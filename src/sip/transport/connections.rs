//! The connections the transport holds (TCP and TLS, RFC 3261 §18 and §26.2): which are taken and by whom
//! (admission limits per source, a reserve for exempt sources), which connection a message leaves on, and
//! connection reuse (§18.1.1, §18.2.2): what vocals answers over a stream goes back over the connection the
//! request came on, and what it sends on its own (an outbound call's requests, toward a TCP or TLS trunk)
//! goes over the connection vocals opened to that address, opened once and shared by every call toward it.
//! Each connection is known by its id and a handle (`H`) the driver writes through; the table never does I/O
//! itself.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use super::{Peer, Transport};
use crate::sip::allow::AllowList;

/// The admission limits of the connection table.
#[derive(Clone, Debug)]
pub struct ConnectionLimits {
    /// Connections held at once; further ones are refused.
    pub max_connections: usize,
    /// Connections held at once from one source (except `exempt`). An IPv6 source is its /64.
    pub max_per_source: usize,
    /// Of `max_connections`, how many only `exempt` sources may take: the others together hold at most
    /// `max_connections - reserved_for_exempt`, so a flood from allowed sources cannot lock Twilio out.
    pub reserved_for_exempt: usize,
    /// Sources without a per-source cap (Twilio's signalling edges carry every customer's calls).
    pub exempt: AllowList,
}

/// How a message to a peer leaves, as [`Connections::route`] finds it.
#[derive(Debug, PartialEq, Eq)]
pub enum Route<'a, H> {
    /// UDP: one datagram to this address.
    Datagram(SocketAddr),
    /// Over this open connection (the one the peer's message came on).
    Connection(&'a H),
    /// The connection the message belongs to has closed (or is closing). RFC 3261 §18.2.2 would have a
    /// response sent over a new connection to the `received` address and sent-by port; vocals opens no
    /// connections to answer (Twilio opens them, and retransmits over a new one), so the message is dropped.
    Gone(u64),
    /// A request of ours toward an address vocals holds no connection to: the driver opens one
    /// ([`Connections::open`]) and sends the message over it.
    Connect,
}

/// One held connection: its handle (`None` once the driver asked it to close), its peer address, whether that
/// is an exempt source, TCP or TLS, and (for one vocals opened) the address it was opened to.
#[derive(Debug)]
struct Conn<H> {
    handle: Option<H>,
    ip: IpAddr,
    exempt: bool,
    transport: Transport,
    opened_to: Option<SocketAddr>,
}

/// The connections held, how many each source has, how many are not exempt, and the ones vocals opened by the
/// address and transport they go to.
#[derive(Debug)]
pub struct Connections<H> {
    limits: ConnectionLimits,
    conns: HashMap<u64, Conn<H>>,
    per_source: HashMap<IpAddr, usize>,
    not_exempt: usize,
    opened: HashMap<(SocketAddr, Transport), u64>,
    next: u64,
}

impl<H> Connections<H> {
    pub fn new(limits: ConnectionLimits) -> Connections<H> {
        Connections {
            limits,
            conns: HashMap::new(),
            per_source: HashMap::new(),
            not_exempt: 0,
            opened: HashMap::new(),
            next: 0,
        }
    }

    /// Takes a slot for a connection vocals opens to `to` (a trunk or an outbound proxy), written through
    /// `handle`, and names it; refused only when the table is full (a destination of ours has no per-source
    /// cap: every call toward it shares this one connection). Messages routed to `to` over `transport` go
    /// over it from now on, while it is open.
    pub fn open(&mut self, to: SocketAddr, transport: Transport, handle: H) -> Result<u64, &'static str> {
        if self.conns.len() >= self.limits.max_connections {
            return Err("connection table full");
        }
        self.next += 1;
        let conn = Conn { handle: Some(handle), ip: to.ip(), exempt: true, transport, opened_to: Some(to) };
        self.conns.insert(self.next, conn);
        *self.per_source.entry(source_of(to.ip())).or_default() += 1;
        self.opened.insert((to, transport), self.next);
        Ok(self.next)
    }

    /// Takes a new connection from `ip`, written through `handle`, and names it; or says which limit refuses
    /// it.
    pub fn admit(&mut self, ip: IpAddr, transport: Transport, handle: H) -> Result<u64, &'static str> {
        let limits = &self.limits;
        if self.conns.len() >= limits.max_connections {
            return Err("connection table full");
        }
        let exempt = limits.exempt.allows(ip);
        let source = source_of(ip);
        if !exempt {
            if self.per_source.get(&source).copied().unwrap_or(0) >= limits.max_per_source {
                return Err("too many connections from this source");
            }
            if self.not_exempt >= limits.max_connections.saturating_sub(limits.reserved_for_exempt) {
                return Err("reserved for exempt sources");
            }
            self.not_exempt += 1;
        }
        self.next += 1;
        self.conns.insert(self.next, Conn { handle: Some(handle), ip, exempt, transport, opened_to: None });
        *self.per_source.entry(source).or_default() += 1;
        Ok(self.next)
    }

    /// The connection has ended (its task is gone): its slot is free.
    pub fn remove(&mut self, conn: u64) {
        let Some(c) = self.conns.remove(&conn) else { return };
        if let Some(to) = c.opened_to
            && self.opened.get(&(to, c.transport)) == Some(&conn)
        {
            self.opened.remove(&(to, c.transport));
        }
        if !c.exempt {
            self.not_exempt -= 1;
        }
        let source = source_of(c.ip);
        if let Some(n) = self.per_source.get_mut(&source) {
            *n -= 1;
            if *n == 0 {
                self.per_source.remove(&source);
            }
        }
    }

    /// Asks the connection to close once it has written what is queued: its handle is dropped. The slot stays
    /// taken until [`Connections::remove`]. Whether the connection was open.
    pub fn close(&mut self, conn: u64) -> bool {
        self.conns.get_mut(&conn).and_then(|c| c.handle.take()).is_some()
    }

    /// Closes every open connection whose peer `allow` does not admit; their peers.
    pub fn close_disallowed(&mut self, allow: &AllowList) -> Vec<IpAddr> {
        let mut closed = Vec::new();
        for c in self.conns.values_mut().filter(|c| c.handle.is_some() && !allow.allows(c.ip)) {
            c.handle = None;
            closed.push(c.ip);
        }
        closed
    }

    /// The peer a message that came on `conn`, from `addr` to our `local` address, came from.
    pub fn peer(&self, conn: u64, addr: SocketAddr, local: SocketAddr) -> Peer {
        Peer { addr, local, transport: self.transport(conn), conn: Some(conn) }
    }

    /// How a message to `peer` leaves: a datagram for UDP; for TCP and TLS, the connection the peer is on
    /// (see [`Route`] for one that has gone), or, for a request of ours (no connection named), the one vocals
    /// opened to the peer's address, or a new one ([`Route::Connect`]).
    pub fn route(&self, peer: &Peer) -> Route<'_, H> {
        match (peer.transport, peer.conn) {
            (Transport::Udp, _) => Route::Datagram(peer.addr),
            (Transport::Tcp | Transport::Tls, Some(conn)) => match self.handle(conn) {
                Some(handle) => Route::Connection(handle),
                None => Route::Gone(conn),
            },
            (transport @ (Transport::Tcp | Transport::Tls), None) => {
                match self.opened.get(&(peer.addr, transport)).and_then(|&conn| self.handle(conn)) {
                    Some(handle) => Route::Connection(handle),
                    None => Route::Connect,
                }
            }
        }
    }

    /// The address a connection vocals opened goes to (`None` for one a peer opened, or one gone).
    pub fn opened_to(&self, conn: u64) -> Option<SocketAddr> {
        self.conns.get(&conn).and_then(|c| c.opened_to)
    }

    /// How many connections are held (closing ones included).
    pub fn len(&self) -> usize {
        self.conns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }

    fn handle(&self, conn: u64) -> Option<&H> {
        self.conns.get(&conn).and_then(|c| c.handle.as_ref())
    }

    /// TCP or TLS (a connection already gone reads as TCP: what is answered over it goes nowhere anyway).
    fn transport(&self, conn: u64) -> Transport {
        self.conns.get(&conn).map_or(Transport::Tcp, |c| c.transport)
    }
}

/// What the per-source cap counts a peer address as: an IPv4 address (an IPv4-mapped IPv6 one as its IPv4
/// address), or an IPv6 address's /64, the smallest block a host is given (its interface identifier is the low
/// 64 bits, RFC 4291 §2.5.1, and it picks them itself), so a host cannot take more connections by using more of
/// its addresses.
fn source_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
        },
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::transport::test_support::peer;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn table(max_connections: usize, max_per_source: usize, reserved_for_exempt: usize) -> Connections<()> {
        Connections::new(ConnectionLimits {
            max_connections,
            max_per_source,
            reserved_for_exempt,
            exempt: AllowList::parse("54.172.60.0/30, 2001:db8:7::/48").unwrap(),
        })
    }

    fn admit(table: &mut Connections<()>, from: &str) -> Result<u64, &'static str> {
        table.admit(ip(from), Transport::Tcp, ())
    }

    #[test]
    fn an_ipv6_source_is_its_64_and_an_ipv4_mapped_one_its_ipv4_address() {
        assert_eq!(source_of(ip("2001:db8:1:2:aaaa:bbbb:cccc:dddd")), ip("2001:db8:1:2::"));
        assert_eq!(source_of(ip("2001:db8:1:2::1")), source_of(ip("2001:db8:1:2:ffff:ffff:ffff:ffff")));
        assert_ne!(source_of(ip("2001:db8:1:2::1")), source_of(ip("2001:db8:1:3::1")));
        assert_eq!(source_of(ip("::1")), ip("::"));
        // A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d, all inside ::/64: each stays its own source.
        assert_eq!(source_of(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
        assert_ne!(source_of(ip("::ffff:192.0.2.7")), source_of(ip("::ffff:192.0.2.8")));
        assert_eq!(source_of(ip("192.0.2.7")), ip("192.0.2.7"));
    }

    #[test]
    fn ipv6_connections_are_capped_per_64_not_per_address() {
        let mut table = table(100, 4, 0);
        // One host walking through the addresses of its /64: four connections, then none.
        for n in 1..=4 {
            assert!(admit(&mut table, &format!("2001:db8:1:2::{n:x}")).is_ok(), "connection {n}");
        }
        assert_eq!(admit(&mut table, "2001:db8:1:2::5"), Err("too many connections from this source"));
        assert_eq!(admit(&mut table, "2001:db8:1:2:dead:beef:0:1"), Err("too many connections from this source"));
        // The next /64 is another source; IPv4-mapped sources (all inside ::/64) are per address.
        assert!(admit(&mut table, "2001:db8:1:3::1").is_ok());
        for n in 1..=6 {
            assert!(admit(&mut table, &format!("::ffff:192.0.2.{n}")).is_ok());
        }
        // An exempt /48 has no per-source cap.
        for n in 1..=10 {
            assert!(admit(&mut table, &format!("2001:db8:7::{n:x}")).is_ok());
        }
        // A connection given back frees its /64.
        let first = *table.conns.iter().find(|(_, c)| c.ip == ip("2001:db8:1:2::1")).unwrap().0;
        table.remove(first);
        assert!(admit(&mut table, "2001:db8:1:2::99").is_ok());
    }

    #[test]
    fn non_exempt_sources_leave_the_reserved_slots_to_exempt_ones() {
        let mut table = table(10, 2, 4);
        let mut taken = Vec::new();
        for n in 1..=6 {
            taken.push(admit(&mut table, &format!("192.0.2.{n}")).unwrap());
        }
        assert_eq!(admit(&mut table, "192.0.2.7"), Err("reserved for exempt sources"));
        // Exempt sources take the rest, then the table is full for everyone.
        for _ in 0..4 {
            assert!(admit(&mut table, "54.172.60.1").is_ok());
        }
        assert_eq!(admit(&mut table, "54.172.60.2"), Err("connection table full"));
        // A non-exempt connection closed (its task gone) gives its place to another non-exempt source...
        assert!(table.close(taken[0]));
        assert!(!table.close(taken[0]), "closed once");
        assert_eq!(table.len(), 10, "a closing connection keeps its slot until its task has ended");
        table.remove(taken[0]);
        assert_eq!(admit(&mut table, "192.0.2.8").map(|_| ()), Ok(()));
        // ...but not an exempt connection's place.
        let exempt = *table.conns.iter().find(|(_, c)| c.exempt).unwrap().0;
        table.remove(exempt);
        assert_eq!(admit(&mut table, "192.0.2.9"), Err("reserved for exempt sources"));
        assert!(admit(&mut table, "54.172.60.3").is_ok());
    }

    #[test]
    fn a_shrunk_allowlist_closes_the_connections_it_leaves_out() {
        let mut table = table(10, 5, 0);
        let kept = admit(&mut table, "192.0.2.1").unwrap();
        let gone = admit(&mut table, "192.0.2.2").unwrap();
        let closed = table.close_disallowed(&AllowList::parse("192.0.2.1").unwrap());
        assert_eq!(closed, vec![ip("192.0.2.2")]);
        assert!(table.handle(kept).is_some() && table.handle(gone).is_none());
        assert!(table.close_disallowed(&AllowList::parse("192.0.2.1").unwrap()).is_empty(), "closed once");
    }

    #[test]
    fn a_message_on_a_connection_names_its_peer_with_the_connections_transport() {
        let mut table = table(10, 5, 0);
        let tls = table.admit(ip("192.0.2.1"), Transport::Tls, ()).unwrap();
        let (from, local) = ("192.0.2.1:40000".parse().unwrap(), "203.0.113.10:5061".parse().unwrap());
        assert_eq!(
            table.peer(tls, from, local),
            Peer { addr: from, local, transport: Transport::Tls, conn: Some(tls) }
        );
        table.remove(tls);
        assert_eq!(table.peer(tls, from, local).transport, Transport::Tcp, "a connection gone reads as TCP");
    }

    #[test]
    fn udp_leaves_as_a_datagram_to_the_peer_address() {
        let table = table(10, 5, 0);
        let to = peer("192.0.2.7:5060", Transport::Udp, None);
        assert_eq!(table.route(&to), Route::Datagram(to.addr));
    }

    #[test]
    fn tcp_and_tls_reuse_the_connection_the_peer_is_on() {
        let mut table: Connections<&'static str> = Connections::new(table(10, 5, 0).limits);
        let tcp = table.admit(ip("192.0.2.7"), Transport::Tcp, "tcp handle").unwrap();
        let tls = table.admit(ip("192.0.2.7"), Transport::Tls, "tls handle").unwrap();
        assert_eq!(table.route(&peer("192.0.2.7:40000", Transport::Tcp, Some(tcp))), Route::Connection(&"tcp handle"));
        assert_eq!(table.route(&peer("192.0.2.7:40001", Transport::Tls, Some(tls))), Route::Connection(&"tls handle"));
    }

    #[test]
    fn our_requests_share_the_connection_vocals_opened_to_their_address_and_transport() {
        let mut table: Connections<&'static str> = Connections::new(table(2, 1, 1).limits);
        let trunk = peer("192.0.2.9:5061", Transport::Tls, None);
        assert_eq!(table.route(&trunk), Route::Connect, "nothing open yet: the driver opens one");
        let conn = table.open(trunk.addr, Transport::Tls, "to the trunk").unwrap();
        assert_eq!(table.route(&trunk), Route::Connection(&"to the trunk"));
        assert_eq!(table.opened_to(conn), Some(trunk.addr));
        // The same address over TCP, or another address, is another connection.
        assert_eq!(table.route(&peer("192.0.2.9:5061", Transport::Tcp, None)), Route::Connect);
        assert_eq!(table.route(&peer("192.0.2.10:5061", Transport::Tls, None)), Route::Connect);
        // Not capped per source, nor kept from the exempt reserve: only the table's size bounds it.
        assert!(table.open("192.0.2.9:5062".parse().unwrap(), Transport::Tls, "second").is_ok());
        assert_eq!(
            table.open("192.0.2.9:5063".parse().unwrap(), Transport::Tls, "third"),
            Err("connection table full")
        );
        // Closing, then gone: the next request opens a new one.
        table.close(conn);
        assert_eq!(table.route(&trunk), Route::Connect);
        table.remove(conn);
        assert_eq!(table.route(&trunk), Route::Connect);
        assert_eq!(table.opened_to(conn), None);
        let again = table.open(trunk.addr, Transport::Tls, "again").unwrap();
        assert_eq!(table.route(&trunk), Route::Connection(&"again"));
        // A connection the trunk opened to us is not one of ours.
        let theirs = table.admit(ip("192.0.2.9"), Transport::Tls, "theirs");
        assert!(theirs.is_err() || table.opened_to(theirs.unwrap()).is_none());
        assert_ne!(again, conn);
    }

    #[test]
    fn a_response_whose_connection_is_gone_is_not_sent_elsewhere() {
        let mut table = table(10, 5, 0);
        let closing = admit(&mut table, "192.0.2.7").unwrap();
        let ended = admit(&mut table, "192.0.2.7").unwrap();
        table.close(closing);
        table.close(ended);
        table.remove(ended);
        // Today's behaviour: no new connection to the sent-by (RFC 3261 §18.2.2's SHOULD); the driver drops it.
        assert_eq!(table.route(&peer("192.0.2.7:40000", Transport::Tcp, Some(closing))), Route::Gone(closing));
        assert_eq!(table.route(&peer("192.0.2.7:40000", Transport::Tcp, Some(ended))), Route::Gone(ended));
        assert_eq!(table.route(&peer("192.0.2.7:40000", Transport::Tls, None)), Route::Connect);
    }
}
