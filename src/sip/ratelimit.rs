//! A token bucket per source address on new INVITEs, so one flooding source cannot take the calls of others.
//! A source within its rate is let through; past it, it is answered 503 + Retry-After a few times, then its
//! INVITEs are dropped silently until its bucket refills. Exempt blocks (Twilio's edges by default: they carry
//! every customer's calls) are never limited. The table of sources is bounded: idle sources are forgotten, and
//! when it is full, new sources are limited as one shared "overflow" source. Sans-IO: the caller passes `now`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::sip::allow::AllowList;

/// What to do with a new INVITE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Over its rate: answer 503 + Retry-After.
    Refuse,
    /// Over its rate and already told: drop without an answer.
    Drop,
}

/// The limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateConfig {
    /// New INVITEs per second per source; 0 turns limiting off.
    pub per_second: u32,
    /// How many may come at once.
    pub burst: u32,
    /// Sources never limited.
    pub exempt: AllowList,
    /// Sources tracked at once.
    pub max_sources: usize,
}

impl Default for RateConfig {
    fn default() -> Self {
        RateConfig { per_second: 0, burst: 1, exempt: AllowList::default(), max_sources: 65_536 }
    }
}

/// 503s a limited source gets before it is dropped silently (until a token frees it).
const REFUSALS: u32 = 3;
/// A source idle this long is forgotten (its bucket is full again by then).
const IDLE: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
    refused: u32,
}

#[derive(Debug)]
pub struct RateLimiter {
    config: RateConfig,
    sources: HashMap<IpAddr, Bucket>,
    /// The one bucket every source shares while the table is full.
    overflow: Option<Bucket>,
    last_sweep: Option<Instant>,
}

impl RateLimiter {
    pub fn new(config: RateConfig) -> RateLimiter {
        RateLimiter { config, sources: HashMap::new(), overflow: None, last_sweep: None }
    }

    pub fn tracked(&self) -> usize {
        self.sources.len()
    }

    /// Decides for one new INVITE from `ip`.
    pub fn check(&mut self, now: Instant, ip: IpAddr) -> Verdict {
        if self.config.per_second == 0 || self.config.exempt.allows(ip) {
            return Verdict::Allow;
        }
        self.sweep(now);
        let (rate, burst) = (f64::from(self.config.per_second), f64::from(self.config.burst.max(1)));
        let full = Bucket { tokens: burst, last: now, refused: 0 };
        let bucket = if self.sources.contains_key(&ip) || self.sources.len() < self.config.max_sources {
            self.sources.entry(ip).or_insert(full)
        } else {
            self.overflow.get_or_insert(full)
        };
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            bucket.refused = 0;
            Verdict::Allow
        } else if bucket.refused < REFUSALS {
            bucket.refused += 1;
            Verdict::Refuse
        } else {
            Verdict::Drop
        }
    }

    /// Forgets sources idle for a minute (at most once a second).
    fn sweep(&mut self, now: Instant) {
        if self.last_sweep.is_some_and(|t| now.saturating_duration_since(t) < Duration::from_secs(1)) {
            return;
        }
        self.last_sweep = Some(now);
        self.sources.retain(|_, b| now.saturating_duration_since(b.last) < IDLE);
        if self.overflow.is_some_and(|b| now.saturating_duration_since(b.last) >= IDLE) {
            self.overflow = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(per_second: u32, burst: u32) -> RateLimiter {
        let exempt = AllowList::parse("54.172.60.0/30").unwrap();
        RateLimiter::new(RateConfig { per_second, burst, exempt, max_sources: 2 })
    }

    #[test]
    fn a_source_gets_its_burst_then_its_rate_then_503s_then_silence() {
        let mut l = limiter(5, 2);
        let (t0, ip) = (Instant::now(), "198.51.100.7".parse().unwrap());
        let verdicts: Vec<Verdict> = (0..7).map(|_| l.check(t0, ip)).collect();
        use Verdict::*;
        assert_eq!(verdicts, [Allow, Allow, Refuse, Refuse, Refuse, Drop, Drop]);
        // 200 ms later one token is back (5/s), and the source may be told again.
        assert_eq!(l.check(t0 + Duration::from_millis(200), ip), Allow);
        assert_eq!(l.check(t0 + Duration::from_millis(200), ip), Refuse);
        // Another source is not affected; Twilio's edges never are.
        assert_eq!(l.check(t0, "198.51.100.8".parse().unwrap()), Allow);
        let edge = "54.172.60.1".parse().unwrap();
        assert!((0..100).all(|_| l.check(t0, edge) == Allow));
    }

    #[test]
    fn the_table_is_bounded_and_idle_sources_are_forgotten() {
        let mut l = limiter(1, 1);
        let t0 = Instant::now();
        let ip = |n: u8| IpAddr::from([198, 51, 100, n]);
        assert_eq!((l.check(t0, ip(1)), l.check(t0, ip(2))), (Verdict::Allow, Verdict::Allow));
        // The table is full: new sources share one bucket.
        assert_eq!((l.check(t0, ip(3)), l.check(t0, ip(4))), (Verdict::Allow, Verdict::Refuse));
        assert_eq!(l.tracked(), 2);
        assert_eq!(l.check(t0 + Duration::from_secs(61), ip(5)), Verdict::Allow);
        assert_eq!(l.tracked(), 1, "the idle ones were forgotten");
        let off = &mut RateLimiter::new(RateConfig::default());
        assert!((0..1000).all(|_| off.check(t0, ip(9)) == Verdict::Allow), "0 turns it off");
    }
}
