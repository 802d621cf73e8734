//! The RTP port pool, sans-IO: even ports from a range (RTCP on port+1), lowest free first. A released port
//! rests in quarantine before it is leased again, so stray packets of the call that used it (late RTP, a
//! peer's retransmitted RTCP) never reach the next call.

use std::collections::{BTreeSet, VecDeque};
use std::time::{Duration, Instant};

/// An even-port range for RTP (RTCP on port+1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

impl std::str::FromStr for PortRange {
    type Err = String;

    fn from_str(s: &str) -> Result<PortRange, String> {
        let bad = || format!("{s:?} is not a port range: expected e.g. 10000-20000 (at least two ports)");
        let (a, b) = s.trim().split_once('-').ok_or_else(bad)?;
        let (first, last): (u16, u16) = (a.trim().parse().map_err(|_| bad())?, b.trim().parse().map_err(|_| bad())?);
        if first == 0 || last <= first {
            return Err(bad());
        }
        Ok(PortRange { first, last })
    }
}

/// Leases RTP ports (even, with port+1 inside the range), each from a random point of the range: the next
/// call's port cannot be guessed from the last one's (a guessed port is one an attacker can send to before the
/// caller does).
#[derive(Debug)]
pub struct PortPool {
    free: BTreeSet<u16>,
    first: u16,
    resting: VecDeque<(Instant, u16)>,
    quarantine: Duration,
    size: usize,
}

impl PortPool {
    pub fn new(range: PortRange, quarantine: Duration) -> PortPool {
        let first = range.first + range.first % 2;
        let free: BTreeSet<u16> = (first..range.last).step_by(2).collect();
        PortPool { size: free.len(), free, first, resting: VecDeque::new(), quarantine }
    }

    /// A free port: the first at or after the point `pick` (a random number) chooses in the range, wrapping
    /// round; every port whose quarantine is over is returned first. `None` when exhausted (the INVITE then gets
    /// 503).
    pub fn lease(&mut self, now: Instant, pick: u64) -> Option<u16> {
        self.settle(now);
        let slots = self.size.max(1) as u64;
        let from = self.first.saturating_add(2 * (pick % slots) as u16);
        let port = self.free.range(from..).next().or_else(|| self.free.first()).copied()?;
        self.free.remove(&port);
        Some(port)
    }

    /// Takes back the ports whose quarantine is over; whether there were any.
    pub fn settle(&mut self, now: Instant) -> bool {
        let before = self.free.len();
        while self.resting.front().is_some_and(|(since, _)| now >= *since + self.quarantine) {
            if let Some((_, port)) = self.resting.pop_front() {
                self.free.insert(port);
            }
        }
        self.free.len() != before
    }

    /// When the next resting port's quarantine is over.
    pub fn next_return(&self) -> Option<Instant> {
        self.resting.front().map(|(since, _)| *since + self.quarantine)
    }

    /// Gives a port back; it rests in quarantine first.
    pub fn release(&mut self, now: Instant, port: u16) {
        self.resting.push_back((now, port));
    }

    /// Ports leased now (quarantined ones count as in use).
    pub fn in_use(&self) -> usize {
        self.size - self.free.len()
    }

    pub fn size(&self) -> usize {
        self.size
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_ranges_parse_and_say_what_is_wrong() {
        assert_eq!("10000-20000".parse::<PortRange>(), Ok(PortRange { first: 10000, last: 20000 }));
        for bad in ["10000", "20000-10000", "0-10", "a-b"] {
            assert!(bad.parse::<PortRange>().unwrap_err().contains("not a port range"), "{bad}");
        }
    }

    #[test]
    fn even_ports_with_rtcp_room_from_a_random_point_and_exhaustion() {
        let now = Instant::now();
        let mut pool = PortPool::new("10001-10006".parse().unwrap(), Duration::from_secs(2));
        assert_eq!(pool.size(), 2, "10002 and 10004 (10006 would put RTCP outside the range)");
        assert_eq!((pool.lease(now, 1), pool.lease(now, 1), pool.lease(now, 1)), (Some(10004), Some(10002), None));
        assert_eq!(pool.in_use(), 2);
    }

    #[test]
    fn a_released_port_comes_back_when_its_quarantine_is_over() {
        let now = Instant::now();
        let mut pool = PortPool::new("10000-10004".parse().unwrap(), Duration::from_secs(2));
        let port = pool.lease(now, 0).unwrap();
        assert_eq!(pool.next_return(), None);
        pool.release(now, port);
        assert_eq!((pool.in_use(), pool.next_return()), (1, Some(now + Duration::from_secs(2))));
        assert!(!pool.settle(now + Duration::from_millis(1999)), "still resting");
        assert!(pool.settle(now + Duration::from_secs(2)));
        assert_eq!((pool.in_use(), pool.next_return()), (0, None));
    }

    #[test]
    fn the_next_port_follows_the_pick_not_the_last_lease() {
        let now = Instant::now();
        let mut pool = PortPool::new("10000-20000".parse().unwrap(), Duration::from_secs(2));
        let picks = [7u64, 4_321, 123_456_789, 2, 4_999];
        let ports: Vec<u16> = picks.iter().map(|&p| pool.lease(now, p).unwrap()).collect();
        assert_eq!(ports, [10014, 18642, 13578, 10004, 19998]);
        // A taken port is skipped to the next free one.
        assert_eq!(pool.lease(now, 7), Some(10016));
        let mut seen = std::collections::HashSet::new();
        let mut pool = PortPool::new("10000-10010".parse().unwrap(), Duration::from_secs(2));
        while let Some(p) = pool.lease(now, 3) {
            assert!(seen.insert(p) && p % 2 == 0 && (10000..10010).contains(&p), "{p}");
        }
        assert_eq!(seen.len(), 5, "every port leased once, wrapping round");
    }

    #[test]
    fn a_released_port_rests_before_it_is_leased_again() {
        let t0 = Instant::now();
        let mut pool = PortPool::new("20000-20004".parse().unwrap(), Duration::from_secs(2));
        let a = pool.lease(t0, 0).unwrap();
        let b = pool.lease(t0, 0).unwrap();
        pool.release(t0, a);
        assert_eq!(pool.lease(t0 + Duration::from_millis(1999), 0), None, "still in quarantine");
        assert_eq!(pool.lease(t0 + Duration::from_secs(2), 0), Some(a));
        pool.release(t0 + Duration::from_secs(3), b);
        assert_eq!(pool.in_use(), 2, "a quarantined port is not free");
    }
}
