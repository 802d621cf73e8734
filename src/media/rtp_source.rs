//! Per-source RTP receive state, as RFC 3550 Appendix A specifies it: sequence-number validation with
//! extended (cycle-counted) numbers (A.1), cumulative and interval loss (A.3) and interarrival jitter (A.8).
//! Sans-IO: it sees sequence numbers, RTP timestamps and arrival times in timestamp units.

/// RFC 3550 A.1 constants.
const RTP_SEQ_MOD: u32 = 1 << 16;
const MAX_DROPOUT: u32 = 3000;
const MAX_MISORDER: u32 = 100;
/// Sequential packets before a new source (or one after a large jump) counts as valid.
pub const MIN_SEQUENTIAL: u32 = 2;

/// What one packet's sequence number means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeqStatus {
    /// Valid; its extended sequence number (cycles counted), for ordering across the 16-bit wrap.
    Valid { extended: u64 },
    /// Still proving the source (A.1 probation): not played.
    Probation,
    /// A jump too large to be the same stream; if the next packet follows it, the source restarts there.
    BadJump,
}

/// RFC 3550 A.1's `source` state and its statistics.
#[derive(Clone, Debug)]
pub struct SourceState {
    max_seq: u16,
    cycles: u32,
    base_seq: u32,
    bad_seq: u32,
    probation: u32,
    received: u32,
    expected_prior: u32,
    received_prior: u32,
    transit: Option<i64>,
    /// Jitter × 16, as A.8 keeps it for integer arithmetic.
    jitter16: u64,
}

/// The loss figures of a receiver report (RFC 3550 §6.4.1, A.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Loss {
    /// Packets lost since the start (24-bit signed in RTCP; duplicates can make it negative).
    pub cumulative: i32,
    /// Fraction lost since the previous report, in 1/256.
    pub fraction: u8,
    /// The extended highest sequence number received.
    pub extended_max: u32,
}

impl SourceState {
    /// A source whose first packet has `seq`. With `probation` 0 the source is trusted at once (the peer that
    /// SDP named and vocals latched onto); otherwise it needs `probation` sequential packets first.
    pub fn new(seq: u16, probation: u32) -> SourceState {
        let mut s = SourceState {
            max_seq: seq.wrapping_sub(1),
            cycles: 0,
            base_seq: 0,
            bad_seq: RTP_SEQ_MOD + 1,
            probation,
            received: 0,
            expected_prior: 0,
            received_prior: 0,
            transit: None,
            jitter16: 0,
        };
        if probation == 0 {
            // The first packet then comes through `update_seq` as a delta of 0: counted, and not taken for a
            // wrap (with `max_seq` one before it, a stream starting at 0 looked like one: 65,536 packets lost).
            s.init_seq(seq);
        }
        s
    }

    fn init_seq(&mut self, seq: u16) {
        self.base_seq = u32::from(seq);
        self.max_seq = seq;
        self.bad_seq = RTP_SEQ_MOD + 1;
        self.cycles = 0;
        self.received = 0;
        self.received_prior = 0;
        self.expected_prior = 0;
    }

    /// RFC 3550 A.1 `update_seq`, returning what the packet is.
    pub fn update_seq(&mut self, seq: u16) -> SeqStatus {
        let udelta = u32::from(seq.wrapping_sub(self.max_seq));
        if self.probation > 0 {
            if seq == self.max_seq.wrapping_add(1) {
                self.probation -= 1;
                self.max_seq = seq;
                if self.probation == 0 {
                    self.init_seq(seq);
                    self.received += 1;
                    return self.valid(seq);
                }
            } else {
                self.probation = MIN_SEQUENTIAL - 1;
                self.max_seq = seq;
            }
            return SeqStatus::Probation;
        }
        if udelta < MAX_DROPOUT {
            // In order, with a permissible gap.
            if seq < self.max_seq {
                self.cycles += RTP_SEQ_MOD;
            }
            self.max_seq = seq;
        } else if udelta <= RTP_SEQ_MOD - MAX_MISORDER {
            // A very large jump: restart there if the next packet follows it (the peer restarted).
            if u32::from(seq) == self.bad_seq {
                self.init_seq(seq);
            } else {
                self.bad_seq = (u32::from(seq) + 1) & (RTP_SEQ_MOD - 1);
                return SeqStatus::BadJump;
            }
        }
        // Otherwise a duplicate or reordered packet (counted as received, as A.1 does).
        self.received += 1;
        self.valid(seq)
    }

    /// The extended number of `seq`, relative to the highest seen: a packet from before the last wrap belongs
    /// to the previous cycle.
    fn valid(&self, seq: u16) -> SeqStatus {
        let cycles = if seq > self.max_seq && u32::from(seq - self.max_seq) > RTP_SEQ_MOD / 2 {
            u64::from(self.cycles).saturating_sub(u64::from(RTP_SEQ_MOD))
        } else {
            u64::from(self.cycles)
        };
        SeqStatus::Valid { extended: cycles + u64::from(seq) }
    }

    /// RFC 3550 A.8: one packet's RTP timestamp and its arrival time, both in timestamp units.
    pub fn update_jitter(&mut self, rtp_timestamp: u32, arrival: u32) {
        let transit = i64::from(arrival.wrapping_sub(rtp_timestamp) as i32);
        if let Some(prev) = self.transit {
            let d = (transit - prev).unsigned_abs();
            // J += (|D| - J) / 16, kept multiplied by 16: J16 += |D| - ((J16 + 8) >> 4).
            self.jitter16 = (self.jitter16 + d).saturating_sub((self.jitter16 + 8) >> 4);
        }
        self.transit = Some(transit);
    }

    /// Interarrival jitter in timestamp units (what RTCP reports).
    pub fn jitter(&self) -> u32 {
        (self.jitter16 >> 4) as u32
    }

    pub fn received(&self) -> u32 {
        self.received
    }

    /// Packets lost since the start (expected less received, A.3), without starting a new interval.
    pub fn lost(&self) -> i64 {
        if self.received == 0 {
            return 0;
        }
        let extended_max = self.cycles.wrapping_add(u32::from(self.max_seq));
        let expected = extended_max.wrapping_sub(self.base_seq).wrapping_add(1);
        i64::from(expected) - i64::from(self.received)
    }

    /// Cumulative loss and the fraction lost since the previous call (A.3); starts a new interval.
    pub fn loss(&mut self) -> Loss {
        let extended_max = self.cycles.wrapping_add(u32::from(self.max_seq));
        let expected = extended_max.wrapping_sub(self.base_seq).wrapping_add(1);
        let cumulative = (i64::from(expected) - i64::from(self.received)).clamp(-0x80_0000, 0x7F_FFFF) as i32;
        let expected_interval = expected.wrapping_sub(self.expected_prior);
        self.expected_prior = expected;
        let received_interval = self.received.wrapping_sub(self.received_prior);
        self.received_prior = self.received;
        let lost_interval = i64::from(expected_interval) - i64::from(received_interval);
        let fraction = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / i64::from(expected_interval)).min(255) as u8
        };
        Loss { cumulative, fraction, extended_max }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ext(s: SeqStatus) -> u64 {
        match s {
            SeqStatus::Valid { extended } => extended,
            other => panic!("not valid: {other:?}"),
        }
    }

    #[test]
    fn a_trusted_stream_starting_at_sequence_zero_or_just_before_the_wrap_loses_nothing() {
        for first in [0u16, 1, 65_535, 65_500] {
            let mut s = SourceState::new(first, 0);
            assert_eq!(s.lost(), 0);
            for i in 0..200u16 {
                ext(s.update_seq(first.wrapping_add(i)));
            }
            assert_eq!((s.received(), s.lost()), (200, 0), "first {first}");
            let loss = s.loss();
            assert_eq!((loss.cumulative, loss.fraction), (0, 0), "first {first}");
            assert_eq!(loss.extended_max, u32::from(first) + 199, "first {first}");
        }
    }

    #[test]
    fn sequence_numbers_extend_across_the_wrap() {
        let mut s = SourceState::new(65_533, 0);
        let got: Vec<u64> = [65_533u16, 65_534, 65_535, 0, 1].iter().map(|&q| ext(s.update_seq(q))).collect();
        assert_eq!(got, [65_533, 65_534, 65_535, 65_536, 65_537]);
        assert_eq!(s.loss(), Loss { cumulative: 0, fraction: 0, extended_max: 65_537 });
    }

    #[test]
    fn reordered_and_duplicate_packets_keep_their_place_even_across_the_wrap() {
        let mut s = SourceState::new(65_534, 0);
        assert_eq!(ext(s.update_seq(65_534)), 65_534);
        assert_eq!(ext(s.update_seq(0)), 65_536, "65535 is late");
        assert_eq!(ext(s.update_seq(65_535)), 65_535, "the late one belongs to the previous cycle");
        assert_eq!(ext(s.update_seq(0)), 65_536, "a duplicate keeps its number");
    }

    #[test]
    fn loss_is_counted_cumulatively_and_per_interval() {
        let mut s = SourceState::new(100, 0);
        for q in (100u16..200).filter(|q| q % 10 != 0) {
            s.update_seq(q);
        }
        // 100..=199 expected: 100; every tenth lost: 10 (including 100 itself, never received).
        let loss = s.loss();
        assert_eq!((loss.cumulative, loss.extended_max), (10, 199));
        assert_eq!(loss.fraction, (10 * 256 / 100) as u8);
        for q in 200u16..300 {
            s.update_seq(q);
        }
        assert_eq!(s.loss().fraction, 0, "a clean interval after a lossy one");
    }

    #[test]
    fn a_huge_jump_is_refused_once_and_taken_when_the_stream_continues_from_it() {
        let mut s = SourceState::new(1000, 0);
        s.update_seq(1000);
        s.update_seq(1001);
        assert_eq!(s.update_seq(40_000), SeqStatus::BadJump);
        assert_eq!(ext(s.update_seq(40_001)), 40_001, "restarted at the new sequence");
        assert_eq!(ext(s.update_seq(40_002)), 40_002);
        // A lone stray far away is refused and forgotten.
        assert_eq!(s.update_seq(10), SeqStatus::BadJump);
        assert_eq!(ext(s.update_seq(40_003)), 40_003);
    }

    #[test]
    fn a_new_untrusted_source_needs_two_sequential_packets() {
        let mut s = SourceState::new(500, MIN_SEQUENTIAL);
        assert_eq!(s.update_seq(500), SeqStatus::Probation);
        assert_eq!(ext(s.update_seq(501)), 501);
        let mut t = SourceState::new(500, MIN_SEQUENTIAL);
        assert_eq!(t.update_seq(500), SeqStatus::Probation);
        assert_eq!(t.update_seq(700), SeqStatus::Probation, "not sequential: probation starts over");
        assert_eq!(ext(t.update_seq(701)), 701);
    }

    #[test]
    fn jitter_follows_rfc_3550_a8() {
        // Packets every 160 units arriving with transit alternating by 80 units: |D| = 80 each time.
        let mut s = SourceState::new(0, 0);
        let mut expected = 0f64;
        for i in 0..200u32 {
            let ts = i * 160;
            let arrival = ts + if i % 2 == 0 { 1000 } else { 1080 };
            s.update_jitter(ts, arrival);
            if i > 0 {
                expected += (80.0 - expected) / 16.0;
            }
        }
        assert!((f64::from(s.jitter()) - expected).abs() <= 1.0, "{} vs {expected}", s.jitter());
        assert!((75..=80).contains(&s.jitter()));
        // A steady stream has no jitter.
        let mut steady = SourceState::new(0, 0);
        for i in 0..100u32 {
            steady.update_jitter(i * 160, i * 160 + 500);
        }
        assert_eq!(steady.jitter(), 0);
    }
}
