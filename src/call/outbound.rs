//! Calls vocals places: the trunks they leave on, the pace of new INVITEs per trunk (Twilio's CPS: 1 a second
//! by default) with a bounded queue behind it, and never more than 30 new INVITEs a second toward one address.
//! Sans-IO: the call layer asks [`Pacer::next`] at its deadlines and dials what comes out.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use crate::sip::endpoint::Transport;

/// Most new INVITEs a second toward one address, whatever the trunks' paces add up to.
pub const MAX_CPS_PER_ADDRESS: usize = 30;

/// Where a request leaves for: `host[:port]`, with a transport.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hop {
    pub host: String,
    pub port: Option<u16>,
    pub transport: Transport,
}

impl Hop {
    /// `host`, `host:port`, `[v6]:port`, or a `sip:`/`sips:` URI (`;transport=tcp|tls|udp` honoured, a user part
    /// and other parameters ignored).
    pub fn parse(text: &str) -> Result<Hop, String> {
        let bad = || format!("{text:?} is not a SIP host: expected e.g. sip:example.pstn.twilio.com or 10.0.0.5:5060");
        let t = text.trim();
        let (secure, rest) = match t.get(..5).map(str::to_ascii_lowercase).as_deref() {
            Some("sips:") => (true, &t[5..]),
            _ => match t.get(..4).map(str::to_ascii_lowercase).as_deref() {
                Some("sip:") => (false, &t[4..]),
                _ => (false, t),
            },
        };
        let mut parts = rest.split(';');
        let hostport = parts.next().unwrap_or_default();
        let hostport = hostport.rsplit_once('@').map_or(hostport, |(_, h)| h);
        let mut transport = if secure { Transport::Tls } else { Transport::Udp };
        for p in parts {
            if let Some(v) = p.strip_prefix("transport=") {
                transport = match v.to_ascii_lowercase().as_str() {
                    "udp" => Transport::Udp,
                    "tcp" => Transport::Tcp,
                    "tls" => Transport::Tls,
                    _ => return Err(format!("{text:?}: transport={v} is not udp, tcp or tls")),
                };
            }
        }
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or_else(bad)?;
            let port = after.strip_prefix(':').map(|p| p.parse::<u16>().map_err(|_| bad())).transpose()?;
            (h.to_string(), port)
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p.parse::<u16>().map_err(|_| bad())?)),
                None => (hostport.to_string(), None),
            }
        };
        let ok = !host.is_empty()
            && host.len() <= 253
            && host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '_'));
        if !ok || port == Some(0) {
            return Err(bad());
        }
        Ok(Hop { host, port, transport })
    }

    /// The port: given, or the transport's default (5060, 5061 for TLS).
    pub fn port_or_default(&self) -> u16 {
        self.port.unwrap_or(if self.transport == Transport::Tls { 5061 } else { 5060 })
    }

    /// As `host:port` for a resolver (IPv6 in brackets).
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port_or_default())
        } else {
            format!("{}:{}", self.host, self.port_or_default())
        }
    }
}

/// The addresses of our SIP listeners, by transport: an outbound call names the one of its transport in its
/// Via and Contact (RFC 3261 §18.1.1, §8.1.1.8), so the trunk's requests in the dialog reach a listener that
/// speaks it, whatever local port the connection carrying the INVITE was opened from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Listening {
    pub udp: Option<SocketAddr>,
    pub tcp: Option<SocketAddr>,
    pub tls: Option<SocketAddr>,
}

impl Listening {
    /// The listener of `transport`, if vocals has one.
    pub fn of(&self, transport: Transport) -> Option<SocketAddr> {
        match transport {
            Transport::Udp => self.udp,
            Transport::Tcp => self.tcp,
            Transport::Tls => self.tls,
        }
    }
}

/// A trunk's termination side: who may place calls on it and how vocals signs in.
#[derive(Clone, PartialEq, Eq)]
pub struct Trunk {
    /// The Twilio account whose `Calls.json` requests use this trunk.
    pub account_sid: String,
    /// What those requests' Basic auth must carry (and what signs their status callbacks).
    pub auth_token: String,
    /// `sip:{domain}.pstn.twilio.com`: the Request-URI's host, and the transport (`;transport=tls`: Twilio's
    /// Secure Trunking, with SRTP).
    pub termination: Hop,
    /// Digest credentials of the trunk's credential list.
    pub username: Option<String>,
    pub password: Option<String>,
}

impl std::fmt::Debug for Trunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trunk")
            .field("account_sid", &self.account_sid)
            .field("termination", &self.termination)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// `[outbound]`, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboundSettings {
    /// Every outbound INVITE goes through this proxy (RFC 3261 §8.1.2); the Request-URI stays the trunk's.
    pub proxy: Option<Hop>,
    /// Twilio's edge for termination hosts given as `{domain}.pstn.twilio.com`.
    pub edge: Option<String>,
    /// New INVITEs per second per trunk.
    pub cps: u32,
    /// Unanswered calls are cancelled after this long, unless the request says.
    pub ring_timeout: Duration,
    /// Requests waiting for their turn, per trunk.
    pub queue: usize,
    /// Outbound calls at once per account; 0: no limit of its own.
    pub max_per_account: usize,
    /// The far end's early media (a 183 with SDP) reaches the agent: its stream opens then, not at the answer.
    pub early_media: bool,
}

impl Default for OutboundSettings {
    fn default() -> OutboundSettings {
        OutboundSettings {
            proxy: None,
            edge: None,
            cps: 1,
            ring_timeout: Duration::from_secs(60),
            queue: 100,
            max_per_account: 0,
            early_media: false,
        }
    }
}

impl OutboundSettings {
    /// Where a call on `trunk` is sent: the outbound proxy if there is one, else the trunk's termination host
    /// (on its edge, see [`OutboundSettings::trunk_host`]). Its host is what a TLS connection to it verifies.
    pub fn next_hop(&self, trunk: &Trunk) -> Hop {
        self.proxy.clone().unwrap_or_else(|| {
            let mut h = trunk.termination.clone();
            h.host = self.trunk_host(&trunk.termination);
            h
        })
    }

    /// The Request-URI host for a trunk: `{domain}.pstn.{edge}.twilio.com` when an edge is set and the trunk is
    /// Twilio's global `{domain}.pstn.twilio.com`.
    pub fn trunk_host(&self, trunk: &Hop) -> String {
        match (&self.edge, trunk.host.strip_suffix(".pstn.twilio.com")) {
            (Some(edge), Some(domain)) if !domain.contains(".pstn.") => format!("{domain}.pstn.{edge}.twilio.com"),
            _ => trunk.host.clone(),
        }
    }
}

/// Why a call request is not taken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The account has no trunk to place calls on.
    NoTrunk,
    /// The trunk's queue is full (HTTP 429).
    QueueFull,
    /// The account has as many calls as it may (HTTP 429).
    AccountLimit(usize),
    /// The server has as many calls as it may (HTTP 503).
    Busy,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::NoTrunk => {
                write!(f, "the account has no trunk for outbound calls ([[trunks]] or a linked account)")
            }
            Refusal::QueueFull => write!(f, "too many calls are waiting to be placed on this trunk; try again later"),
            Refusal::AccountLimit(n) => write!(f, "the account already has {n} outbound calls, its most"),
            Refusal::Busy => write!(f, "the server is at its call limit"),
        }
    }
}

/// New INVITEs paced per trunk (`cps` a second, in the order asked) and per address (at most
/// [`MAX_CPS_PER_ADDRESS`] a second toward one, whichever trunks they are for).
#[derive(Debug)]
pub struct Pacer<T> {
    cps: u32,
    bound: usize,
    trunks: HashMap<String, Lane<T>>,
    /// The last second's sends, per address.
    sent: HashMap<IpAddr, VecDeque<Instant>>,
}

#[derive(Debug)]
struct Lane<T> {
    next_at: Option<Instant>,
    waiting: VecDeque<(SocketAddr, T)>,
}

impl<T> Pacer<T> {
    pub fn new(cps: u32, bound: usize) -> Pacer<T> {
        Pacer { cps: cps.max(1), bound, trunks: HashMap::new(), sent: HashMap::new() }
    }

    /// Queues a call for `trunk` toward `to`; refused when the trunk's queue is full.
    pub fn push(&mut self, trunk: &str, to: SocketAddr, item: T) -> Result<(), (Refusal, T)> {
        let lane = self.trunks.entry(trunk.to_string()).or_insert(Lane { next_at: None, waiting: VecDeque::new() });
        if lane.waiting.len() >= self.bound {
            return Err((Refusal::QueueFull, item));
        }
        lane.waiting.push_back((to, item));
        Ok(())
    }

    /// Calls waiting, all trunks.
    pub fn waiting(&self) -> usize {
        self.trunks.values().map(|l| l.waiting.len()).sum()
    }

    /// Looks at every queued call.
    pub fn for_each(&self, mut f: impl FnMut(&T)) {
        for lane in self.trunks.values() {
            lane.waiting.iter().for_each(|(_, item)| f(item));
        }
    }

    /// Takes out every queued call whose `keep` is false (withdrawn before its turn).
    pub fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) {
        for lane in self.trunks.values_mut() {
            lane.waiting.retain(|(_, item)| keep(item));
        }
        self.trunks.retain(|_, l| !l.waiting.is_empty() || l.next_at.is_some());
    }

    /// The next call whose turn has come, if any.
    pub fn next(&mut self, now: Instant) -> Option<(SocketAddr, T)> {
        let gap = Duration::from_secs(1) / self.cps;
        for sends in self.sent.values_mut() {
            while sends.front().is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1)) {
                sends.pop_front();
            }
        }
        self.sent.retain(|_, s| !s.is_empty());
        for lane in self.trunks.values_mut() {
            if lane.next_at.is_some_and(|t| now < t) {
                continue;
            }
            let Some((to, _)) = lane.waiting.front() else {
                lane.next_at = None;
                continue;
            };
            if self.sent.get(&to.ip()).is_some_and(|s| s.len() >= MAX_CPS_PER_ADDRESS) {
                continue;
            }
            let (to, item) = lane.waiting.pop_front()?;
            self.sent.entry(to.ip()).or_default().push_back(now);
            lane.next_at = Some(now + gap);
            return Some((to, item));
        }
        self.trunks.retain(|_, l| !l.waiting.is_empty() || l.next_at.is_some_and(|t| t > now));
        None
    }

    /// When a queued call's turn comes next (`None`: nothing waits).
    pub fn poll_timeout(&self) -> Option<Instant> {
        let per_address = |to: &SocketAddr| {
            self.sent
                .get(&to.ip())
                .filter(|s| s.len() >= MAX_CPS_PER_ADDRESS)
                .and_then(|s| s.front().map(|t| *t + Duration::from_secs(1)))
        };
        self.trunks
            .values()
            .filter_map(|l| {
                let (to, _) = l.waiting.front()?;
                let turn = l.next_at;
                Some([turn, per_address(to)].into_iter().flatten().max().unwrap_or_else(far_past))
            })
            .min()
    }
}

/// A time already come, for a turn with no wait.
fn far_past() -> Instant {
    Instant::now() - Duration::from_secs(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(start: Instant, ms: u64) -> Instant {
        start + Duration::from_millis(ms)
    }

    #[test]
    fn hops_parse_as_operators_write_them() {
        let h = Hop::parse("sip:example.pstn.twilio.com").unwrap();
        assert_eq!(
            (h.host.as_str(), h.port, h.transport, h.port_or_default()),
            ("example.pstn.twilio.com", None, Transport::Udp, 5060)
        );
        let h = Hop::parse("sip:example.pstn.twilio.com;transport=tls").unwrap();
        assert_eq!((h.transport, h.port_or_default()), (Transport::Tls, 5061));
        let h = Hop::parse("127.0.0.1:5080").unwrap();
        assert_eq!((h.host.as_str(), h.port, h.authority()), ("127.0.0.1", Some(5080), "127.0.0.1:5080".to_string()));
        let h = Hop::parse("[::1]:5080").unwrap();
        assert_eq!((h.host.as_str(), h.authority()), ("::1", "[::1]:5080".to_string()));
        for bad in ["", "sip:", "host:0", "host:99999", "a b", "sip:x;transport=sctp", "[::1"] {
            assert!(Hop::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn an_edge_localises_twilio_termination_hosts_only() {
        let s = OutboundSettings { edge: Some("ashburn".into()), ..OutboundSettings::default() };
        let twilio = Hop::parse("sip:acme.pstn.twilio.com").unwrap();
        assert_eq!(s.trunk_host(&twilio), "acme.pstn.ashburn.twilio.com");
        let other = Hop::parse("sip:sbc.example.com").unwrap();
        assert_eq!(s.trunk_host(&other), "sbc.example.com");
        assert_eq!(OutboundSettings::default().trunk_host(&twilio), "acme.pstn.twilio.com");
    }

    #[test]
    fn one_call_a_second_per_trunk_in_order_with_a_bounded_queue() {
        let start = Instant::now();
        let to: SocketAddr = "54.172.60.0:5060".parse().unwrap();
        let mut p = Pacer::new(1, 3);
        for i in 0..3 {
            p.push("AC1", to, i).unwrap();
        }
        assert_eq!(p.push("AC1", to, 3), Err((Refusal::QueueFull, 3)));
        assert_eq!(p.next(start).map(|x| x.1), Some(0));
        assert_eq!(p.next(start), None, "the next waits its turn");
        assert_eq!(p.poll_timeout(), Some(at(start, 1000)));
        assert_eq!(p.next(at(start, 999)), None);
        assert_eq!(p.next(at(start, 1000)).map(|x| x.1), Some(1));
        // Another trunk has its own pace.
        p.push("AC2", to, 10).unwrap();
        assert_eq!(p.next(at(start, 1001)).map(|x| x.1), Some(10));
        assert_eq!(p.next(at(start, 2000)).map(|x| x.1), Some(2));
        assert_eq!((p.next(at(start, 3000)), p.poll_timeout(), p.waiting()), (None, None, 0));
    }

    #[test]
    fn never_more_than_30_a_second_toward_one_address() {
        let start = Instant::now();
        let to: SocketAddr = "54.172.60.0:5060".parse().unwrap();
        let mut p = Pacer::new(30, 1000);
        // 40 trunks at 30 CPS each, all toward one address.
        for t in 0..40 {
            p.push(&format!("AC{t}"), to, t).unwrap();
            p.push(&format!("AC{t}"), to, 100 + t).unwrap();
        }
        let mut sent = 0;
        while p.next(start).is_some() {
            sent += 1;
        }
        assert_eq!(sent, MAX_CPS_PER_ADDRESS);
        assert_eq!(p.poll_timeout(), Some(at(start, 1000)));
        let mut more = 0;
        while p.next(at(start, 1000)).is_some() {
            more += 1;
        }
        assert_eq!(more, MAX_CPS_PER_ADDRESS);
    }

    #[test]
    fn a_withdrawn_request_leaves_the_queue() {
        let start = Instant::now();
        let to: SocketAddr = "54.172.60.0:5060".parse().unwrap();
        let mut p = Pacer::new(1, 10);
        for i in 0..3 {
            p.push("AC1", to, i).unwrap();
        }
        p.retain(|i| *i != 1);
        assert_eq!(p.next(start).map(|x| x.1), Some(0));
        assert_eq!(p.next(at(start, 1000)).map(|x| x.1), Some(2));
    }
}
