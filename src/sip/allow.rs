//! The source allowlist for SIP: CIDR blocks parsed once at the edge. The default admits Twilio's signalling edges
//! (eight /30s, all regions: `docs/telecom.md`, Twilio's address ranges) and loopback; anything else is dropped (or
//! refused, by configuration) before a transaction is made.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// An address block, `192.0.2.0/24` or `2001:db8::/32`; a bare address is a /32 or /128.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

/// Why a CIDR did not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an address block: expected e.g. 54.172.60.0/30, 10.0.0.1 or 2001:db8::/32")]
pub struct CidrError(String);

impl Cidr {
    /// Whether `ip` is inside the block. IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`, as a dual-stack socket
    /// reports IPv4 peers) match IPv4 blocks.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(s: &str) -> Result<Cidr, CidrError> {
        let err = || CidrError(s.to_string());
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.trim(), None),
        };
        let network: IpAddr = addr.parse().map_err(|_| err())?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().ok().filter(|&p| p <= max).ok_or_else(err)?,
            None => max,
        };
        Ok(Cidr { network, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// Twilio's signalling IP blocks, every edge (the one copy of the list: `sip.rate_exempt`'s default, and with
/// [`LOOPBACK`] `sip.allow`'s).
pub const TWILIO_SIGNALLING: &[&str] = &[
    "54.172.60.0/30",
    "54.244.51.0/30",
    "54.171.127.192/30",
    "35.156.191.128/30",
    "54.65.63.192/30",
    "54.169.127.128/30",
    "54.252.254.64/30",
    "177.71.206.192/30",
];

/// Loopback, IPv4 and IPv6.
pub const LOOPBACK: &[&str] = &["127.0.0.0/8", "::1/128"];

/// A list of blocks; a source is allowed when any block contains it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllowList(Vec<Cidr>);

impl AllowList {
    pub fn new(blocks: Vec<Cidr>) -> AllowList {
        AllowList(blocks)
    }

    /// Parses a comma- or space-separated list.
    pub fn parse(list: &str) -> Result<AllowList, CidrError> {
        list.split([',', ' ']).filter(|s| !s.is_empty()).map(str::parse).collect::<Result<_, _>>().map(AllowList)
    }

    pub fn allows(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|c| c.contains(ip))
    }

    pub fn blocks(&self) -> &[Cidr] {
        &self.0
    }

    /// Twilio's signalling edges.
    pub fn twilio() -> AllowList {
        AllowList::of(TWILIO_SIGNALLING)
    }

    /// Blocks written as literals (checked by a test).
    fn of(blocks: &[&str]) -> AllowList {
        AllowList(blocks.iter().filter_map(|s| s.parse().ok()).collect())
    }
}

impl Default for AllowList {
    /// Twilio's signalling edges and loopback: the default allowlist.
    fn default() -> Self {
        AllowList::of(&[TWILIO_SIGNALLING, LOOPBACK].concat())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_default_admits_every_twilio_edge_and_loopback_only() {
        let allow = AllowList::default();
        assert_eq!(allow.blocks().len(), TWILIO_SIGNALLING.len() + LOOPBACK.len(), "every default parses");
        assert_eq!(AllowList::twilio().blocks(), &allow.blocks()[..TWILIO_SIGNALLING.len()]);
        for edge in ["54.172.60.0", "54.172.60.3", "54.244.51.1", "177.71.206.195", "127.0.0.2", "::1"] {
            assert!(allow.allows(ip(edge)), "{edge}");
        }
        for other in ["54.172.60.4", "54.244.51.4", "10.0.0.1", "192.168.1.1", "8.8.8.8", "2001:db8::1"] {
            assert!(!allow.allows(ip(other)), "{other}");
        }
    }

    #[test]
    fn ipv4_mapped_sources_match_ipv4_blocks() {
        assert!(AllowList::default().allows(ip("::ffff:54.244.51.2")));
        assert!(!AllowList::default().allows(ip("::ffff:54.244.51.9")));
    }

    #[test]
    fn blocks_parse_with_and_without_prefix_and_bad_ones_say_so() {
        let list = AllowList::parse("10.0.0.0/8, 192.0.2.7 2001:db8::/32").unwrap();
        assert!(list.allows(ip("10.200.0.1")) && list.allows(ip("192.0.2.7")) && list.allows(ip("2001:db8:1::5")));
        assert!(!list.allows(ip("192.0.2.8")));
        assert!("0.0.0.0/0".parse::<Cidr>().unwrap().contains(ip("203.0.113.1")));
        for bad in ["10.0.0.0/33", "::/129", "example.com", "10.0.0.0/", "10.0.0/8"] {
            let e = bad.parse::<Cidr>().unwrap_err().to_string();
            assert!(e.contains("not an address block"), "{bad}: {e}");
        }
        assert_eq!("54.172.60.0/30".parse::<Cidr>().unwrap().to_string(), "54.172.60.0/30");
    }
}
