//! Tags, branches and call references: unique and hard to guess, derived from a seed the driver supplies
//! (from the OS), so the endpoint itself stays deterministic and tests are reproducible.

use super::CallRef;

/// A counter mixed through SplitMix64 under a random seed.
#[derive(Clone, Debug)]
pub struct IdGen {
    seed: u64,
    counter: u64,
}

impl IdGen {
    pub fn new(seed: u64) -> IdGen {
        IdGen { seed, counter: 0 }
    }

    fn next(&mut self) -> u64 {
        self.counter += 1;
        let mut z = self.seed.wrapping_add(self.counter.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A From/To tag (RFC 3261 §19.3: at least 32 bits of randomness).
    pub fn tag(&mut self) -> String {
        format!("vc{:016x}", self.next())
    }

    /// A Via branch with the RFC 3261 magic cookie.
    pub fn branch(&mut self) -> String {
        format!("z9hG4bKvc{:016x}", self.next())
    }

    /// A first CSeq for our requests in a dialog: below 2^31 (§8.1.1.5), leaving room to count up.
    pub fn cseq(&mut self) -> u32 {
        (self.next() % (1 << 30)) as u32 + 1
    }

    /// The local part of a Call-ID (§8.1.1.4): 128 bits.
    pub fn call_id(&mut self) -> String {
        format!("vc{:016x}{:016x}", self.next(), self.next())
    }

    /// A number below 2^16, for random waits (RFC 3261 §14.1's after a 491).
    pub fn small(&mut self) -> u16 {
        (self.next() >> 48) as u16
    }

    /// A client nonce for digest authentication (RFC 7616 §3.4): 64 bits.
    pub fn cnonce(&mut self) -> String {
        format!("{:016x}", self.next())
    }

    pub fn call(&mut self) -> CallRef {
        self.counter += 1;
        CallRef(self.counter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_shaped_as_the_rfc_wants() {
        let mut ids = IdGen::new(0x1234);
        let tags: std::collections::HashSet<_> = (0..1000).map(|_| ids.tag()).collect();
        assert_eq!(tags.len(), 1000);
        assert!(ids.branch().starts_with("z9hG4bK"));
        assert!((1..1 << 31).contains(&ids.cseq()));
        assert_ne!(IdGen::new(1).tag(), IdGen::new(2).tag(), "the seed matters");
    }
}
