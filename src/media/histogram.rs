//! A fixed-size histogram of short delays: 100 µs bins up to 100 ms, the last bin holding everything longer.
//! Recording never allocates; percentiles are reported as the bin's upper edge (a conservative figure).

use std::time::Duration;

const BINS: usize = 1001;
const BIN: Duration = Duration::from_micros(100);

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
        let bin = (delay.as_micros() / BIN.as_micros()) as usize;
        self.bins[bin.min(BINS - 1)] = self.bins[bin.min(BINS - 1)].saturating_add(1);
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
                return BIN * (bin as u32 + 1);
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
        assert_eq!(h.percentile(100), Duration::from_micros(100_100), "longer delays share the last bin");
    }
}
