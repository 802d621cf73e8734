//! A fixed-size histogram of short delays: 100 µs bins up to 10 ms, 1 ms bins from there to 100 ms, the last
//! bin holding everything longer. Recording never allocates; percentiles are reported as the bin's upper edge
//! (a conservative figure). Each call keeps several, so it is small: 764 bytes.

use std::time::Duration;

/// Bins of 100 µs below 10 ms.
const FINE: usize = 100;
/// Bins of 1 ms from 10 ms to 100 ms.
const COARSE: usize = 90;
const BINS: usize = FINE + COARSE + 1;

fn bin(delay: Duration) -> usize {
    let us = delay.as_micros();
    if us < 10_000 { (us / 100) as usize } else { (FINE + ((us - 10_000) / 1_000) as usize).min(BINS - 1) }
}

/// The upper edge of `bin` (the overflow bin: 101 ms).
fn upper_edge(bin: usize) -> Duration {
    if bin < FINE {
        Duration::from_micros(100 * (bin as u64 + 1))
    } else {
        Duration::from_micros(10_000 + 1_000 * (bin - FINE + 1) as u64)
    }
}

#[derive(Clone)]
pub struct DelayHistogram {
    bins: Box<[u32; BINS]>,
    count: u64,
}

impl Default for DelayHistogram {
    fn default() -> Self {
        DelayHistogram { bins: Box::new([0; BINS]), count: 0 }
    }
}

impl std::fmt::Debug for DelayHistogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DelayHistogram(n={}, p50={:?}, p99={:?})", self.count, self.percentile(50), self.percentile(99))
    }
}

impl DelayHistogram {
    pub fn record(&mut self, delay: Duration) {
        let bin = bin(delay);
        self.bins[bin] = self.bins[bin].saturating_add(1);
        self.count += 1;
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// The delay `q` percent of the samples are at or under (zero with no samples).
    pub fn percentile(&self, q: u64) -> Duration {
        let rank = (self.count * q).div_ceil(100).max(1);
        let mut seen = 0u64;
        for (bin, &n) in self.bins.iter().enumerate() {
            seen += u64::from(n);
            if seen >= rank {
                return upper_edge(bin);
            }
        }
        Duration::ZERO
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_the_upper_edge_of_their_bin() {
        let mut h = DelayHistogram::default();
        assert_eq!(h.percentile(50), Duration::ZERO);
        for us in 0..100u64 {
            h.record(Duration::from_micros(us * 10));
        }
        h.record(Duration::from_secs(5));
        assert_eq!(h.count(), 101);
        assert_eq!(h.percentile(50), Duration::from_micros(600));
        assert_eq!(h.percentile(100), Duration::from_millis(101), "longer delays share the last bin");
    }

    #[test]
    fn bins_are_100_us_below_10_ms_and_1_ms_to_100_ms() {
        let edge = |us: u64| {
            let mut h = DelayHistogram::default();
            h.record(Duration::from_micros(us));
            h.percentile(100).as_micros()
        };
        assert_eq!([edge(0), edge(99), edge(100), edge(9_999)], [100, 100, 200, 10_000]);
        assert_eq!([edge(10_000), edge(10_999), edge(11_000), edge(99_999)], [11_000, 11_000, 12_000, 100_000]);
        assert_eq!([edge(100_000), edge(5_000_000)], [101_000, 101_000]);
        assert!(std::mem::size_of::<[u32; BINS]>() <= 1024);
    }
}
