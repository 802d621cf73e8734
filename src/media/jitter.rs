//! The uplink jitter buffer, sans-IO (`push(now, packet)`, `pop(now)`, `next_deadline()`). The agent is not a
//! loudspeaker: a packet that is next in order goes out at once; a gap is held only until an adaptive deadline
//! (three times the measured RFC 3550 jitter, clamped), then concealed, so the frame clock never skips.
//! Duplicates and late packets are dropped and counted; an SSRC change or a jump RFC 3550 A.1 calls a restart
//! resets it; telephone-event and comfort noise never enter the audio path. One fixed ring of slots, allocated
//! once: no allocation per packet.

use std::time::{Duration, Instant};

use super::playout::FRAME_BYTES;
use super::rtcp::Reception;
use super::rtp_source::{SeqStatus, SourceState};

const SLOTS: usize = 16;

/// What the buffer is set up for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JitterConfig {
    /// The audio payload type (0 PCMU, 8 PCMA).
    pub audio_pt: u8,
    /// The telephone-event payload type, if negotiated.
    pub event_pt: Option<u8>,
    /// The codec's silence byte, for concealment.
    pub silence: u8,
    /// The shortest and longest time a gap is waited for.
    pub min_wait: Duration,
    pub max_wait: Duration,
}

/// One received RTP packet, as the buffer needs it.
#[derive(Clone, Copy, Debug)]
pub struct Packet<'a> {
    pub ssrc: u32,
    pub seq: u16,
    pub timestamp: u32,
    pub payload_type: u8,
    pub payload: &'a [u8],
}

/// What became of a pushed packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pushed {
    Buffered,
    /// Already buffered or already played.
    Duplicate,
    /// Its frame was already concealed.
    Late,
    /// A telephone-event packet: the caller hands it to the DTMF receiver.
    TelephoneEvent,
    /// Comfort noise (payload type 13), kept out of the audio path.
    ComfortNoise,
    /// Neither the audio nor the event payload type.
    WrongPayloadType,
    /// A jump RFC 3550 A.1 does not accept (yet).
    Rejected,
}

/// One frame handed to the agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Popped {
    /// True when the frame was lost and replaced by silence.
    pub concealed: bool,
    /// When the frame's packet arrived (`None` for a concealed frame): hand-off delay is `now - arrival`.
    pub arrival: Option<Instant>,
}

/// Counters for the call record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JitterStats {
    pub received: u64,
    pub duplicate: u64,
    pub late: u64,
    pub reordered: u64,
    pub concealed: u64,
    pub resets: u64,
}

#[derive(Clone, Copy)]
struct Slot {
    ext: u64,
    filled: bool,
    /// The frame `ext` was concealed rather than played.
    concealed: bool,
    len: u16,
    arrival: Option<Instant>,
    data: [u8; FRAME_BYTES],
}

pub struct JitterBuffer {
    config: JitterConfig,
    source: Option<(u32, SourceState)>,
    slots: Box<[Slot; SLOTS]>,
    /// The next extended sequence number to hand out, and the highest buffered.
    next: Option<u64>,
    highest: Option<u64>,
    /// Since when the next frame has been missing while later ones wait.
    gap_since: Option<Instant>,
    /// Arrival-time origin, for jitter in timestamp units.
    epoch: Option<Instant>,
    stats: JitterStats,
}

impl JitterBuffer {
    pub fn new(config: JitterConfig) -> JitterBuffer {
        let empty =
            Slot { ext: u64::MAX, filled: false, concealed: false, len: 0, arrival: None, data: [0; FRAME_BYTES] };
        JitterBuffer {
            config,
            source: None,
            slots: Box::new([empty; SLOTS]),
            next: None,
            highest: None,
            gap_since: None,
            epoch: None,
            stats: JitterStats::default(),
        }
    }

    pub fn stats(&self) -> JitterStats {
        self.stats
    }

    /// RFC 3550 interarrival jitter, in timestamp units.
    pub fn jitter(&self) -> u32 {
        self.source.as_ref().map_or(0, |(_, s)| s.jitter())
    }

    /// Packets of the current source lost so far (RFC 3550 A.3: expected less received).
    pub fn lost(&self) -> i64 {
        self.source.as_ref().map_or(0, |(_, s)| s.lost())
    }

    /// Frames buffered and not yet handed out.
    pub fn depth(&self) -> usize {
        self.slots.iter().filter(|s| s.filled).count()
    }

    pub fn push(&mut self, now: Instant, p: &Packet<'_>) -> Pushed {
        let outcome = if Some(p.payload_type) == self.config.event_pt {
            Pushed::TelephoneEvent
        } else if p.payload_type == 13 {
            Pushed::ComfortNoise
        } else if p.payload_type != self.config.audio_pt {
            return Pushed::WrongPayloadType;
        } else {
            Pushed::Buffered
        };
        if outcome != Pushed::Buffered {
            // Events and comfort noise share the audio's sequence numbers (same SSRC): their frames are
            // silence placeholders, so the audio after them is not held as if they were lost.
            if self.source.as_ref().is_some_and(|(ssrc, _)| *ssrc == p.ssrc)
                && let Some((_, source)) = self.source.as_mut()
                && let SeqStatus::Valid { extended } = source.update_seq(p.seq)
            {
                self.place(now, extended, &[]);
            }
            return outcome;
        }
        if self.source.as_ref().is_none_or(|(ssrc, _)| *ssrc != p.ssrc) {
            self.reset(p.ssrc, p.seq);
        }
        let epoch = *self.epoch.get_or_insert(now);
        let Some((_, source)) = self.source.as_mut() else { return Pushed::Rejected };
        let status = source.update_seq(p.seq);
        let arrival = ((now - epoch).as_micros() * 8 / 1000) as u32;
        source.update_jitter(p.timestamp, arrival);
        let SeqStatus::Valid { extended } = status else { return Pushed::Rejected };
        self.place(now, extended, p.payload)
    }

    /// The RFC 3550 reception statistics of the current source, for an RTCP report block (starts a new
    /// fraction-lost interval).
    pub fn reception(&mut self) -> Option<Reception> {
        let (ssrc, source) = self.source.as_mut()?;
        let jitter = source.jitter();
        let loss = source.loss();
        Some(Reception {
            ssrc: *ssrc,
            fraction_lost: loss.fraction,
            cumulative_lost: loss.cumulative,
            extended_max: loss.extended_max,
            jitter,
        })
    }

    fn place(&mut self, now: Instant, ext: u64, payload: &[u8]) -> Pushed {
        let next = *self.next.get_or_insert(ext);
        if ext < next {
            // Played (a duplicate) or concealed or too old (late).
            let slot = &self.slots[(ext % SLOTS as u64) as usize];
            if slot.ext == ext && !slot.concealed {
                self.stats.duplicate += 1;
                return Pushed::Duplicate;
            }
            self.stats.late += 1;
            return Pushed::Late;
        }
        if ext >= next + SLOTS as u64 {
            // Too far ahead to hold the frames in between: skip to it (they count as concealed losses).
            self.stats.concealed += ext - next;
            self.clear_slots();
            self.next = Some(ext);
        }
        let slot = &mut self.slots[(ext % SLOTS as u64) as usize];
        if slot.filled && slot.ext == ext {
            self.stats.duplicate += 1;
            return Pushed::Duplicate;
        }
        let n = payload.len().min(FRAME_BYTES);
        slot.data[..n].copy_from_slice(&payload[..n]);
        *slot = Slot { ext, filled: true, concealed: false, len: n as u16, arrival: Some(now), data: slot.data };
        self.stats.received += 1;
        if self.highest.is_some_and(|h| ext < h) {
            self.stats.reordered += 1;
        }
        self.highest = Some(self.highest.map_or(ext, |h| h.max(ext)));
        Pushed::Buffered
    }

    /// The next frame, into `out`: the next packet when it is here; silence for it once its wait is over and a
    /// later packet is waiting; `None` while waiting (or with nothing buffered).
    pub fn pop(&mut self, now: Instant, out: &mut [u8; FRAME_BYTES]) -> Option<Popped> {
        let next = self.next?;
        let wait = self.wait();
        let idx = (next % SLOTS as u64) as usize;
        let slot = &mut self.slots[idx];
        if slot.filled && slot.ext == next {
            let n = slot.len as usize;
            out[..n].copy_from_slice(&slot.data[..n]);
            out[n..].fill(self.config.silence);
            slot.filled = false;
            self.next = Some(next + 1);
            self.gap_since = None;
            return Some(Popped { concealed: false, arrival: slot.arrival });
        }
        if self.highest.is_none_or(|h| h <= next) {
            // Nothing later is waiting: no gap to time (and no stale deadline for the driver to spin on).
            self.gap_since = None;
            return None;
        }
        let since = *self.gap_since.get_or_insert(now);
        if now < since + wait {
            return None;
        }
        // The wait is over: conceal this frame and move on (the clock never skips). The rest of the same gap
        // is older than the packet that revealed it: concealed without a second wait.
        out.fill(self.config.silence);
        slot.ext = next;
        slot.filled = false;
        slot.concealed = true;
        self.next = Some(next + 1);
        self.stats.concealed += 1;
        Some(Popped { concealed: true, arrival: None })
    }

    /// When a waiting gap will be concealed.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.gap_since.map(|since| since + self.wait())
    }

    /// How long a gap is waited for: three times the measured jitter, within the configured bounds.
    fn wait(&self) -> Duration {
        let jitter = Duration::from_micros(u64::from(self.jitter()) * 1000 / 8);
        (jitter * 3).clamp(self.config.min_wait, self.config.max_wait)
    }

    fn reset(&mut self, ssrc: u32, seq: u16) {
        if self.source.is_some() {
            self.stats.resets += 1;
        }
        self.source = Some((ssrc, SourceState::new(seq, 0)));
        self.clear_slots();
        self.next = None;
        self.highest = None;
        self.gap_since = None;
    }

    fn clear_slots(&mut self) {
        for s in self.slots.iter_mut() {
            s.filled = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> JitterConfig {
        JitterConfig {
            audio_pt: 0,
            event_pt: Some(101),
            silence: 0xFF,
            min_wait: Duration::from_millis(10),
            max_wait: Duration::from_millis(100),
        }
    }

    struct Run {
        jb: JitterBuffer,
        start: Instant,
        out: Vec<(u8, bool)>,
    }

    impl Run {
        fn new() -> Run {
            Run { jb: JitterBuffer::new(config()), start: Instant::now(), out: Vec::new() }
        }

        fn at(&self, ms: u64) -> Instant {
            self.start + Duration::from_millis(ms)
        }

        /// Pushes packet `seq` (payload = its sequence number's low byte) at `ms`, then pops what is ready.
        fn arrive(&mut self, ms: u64, ssrc: u32, seq: u16) -> Pushed {
            let payload = [seq as u8; FRAME_BYTES];
            let p = Packet { ssrc, seq, timestamp: u32::from(seq) * 160, payload_type: 0, payload: &payload };
            let r = self.jb.push(self.at(ms), &p);
            self.drain(ms);
            r
        }

        fn drain(&mut self, ms: u64) {
            let mut buf = [0u8; FRAME_BYTES];
            while let Some(p) = self.jb.pop(self.at(ms), &mut buf) {
                self.out.push((buf[0], p.concealed));
            }
        }
    }

    #[test]
    fn in_order_packets_go_out_at_once() {
        let mut r = Run::new();
        for (i, seq) in (10u16..15).enumerate() {
            r.arrive(i as u64 * 20, 7, seq);
            assert_eq!(r.out.len(), i + 1, "no added delay for packet {seq}");
        }
        assert_eq!(r.jb.next_deadline(), None);
        assert_eq!(r.out.iter().map(|o| o.0).collect::<Vec<_>>(), [10, 11, 12, 13, 14]);
    }

    #[test]
    fn a_reordered_packet_is_waited_for_and_put_back_in_order() {
        let mut r = Run::new();
        r.arrive(0, 7, 1);
        r.arrive(20, 7, 3);
        assert_eq!(r.out.len(), 1, "2 is missing: 3 waits");
        assert_eq!(r.jb.next_deadline(), Some(r.at(30)), "min wait 10 ms on a clean network");
        r.arrive(25, 7, 2);
        assert_eq!(r.out, [(1, false), (2, false), (3, false)]);
        assert_eq!(r.jb.stats().reordered, 1);
    }

    #[test]
    fn a_lost_packet_is_concealed_after_the_wait_and_a_late_one_dropped() {
        let mut r = Run::new();
        r.arrive(0, 7, 1);
        r.arrive(40, 7, 3);
        r.drain(49);
        assert_eq!(r.out.len(), 1);
        r.drain(50);
        assert_eq!(r.out, [(1, false), (0xFF, true), (3, false)], "silence for 2, then 3: no skipped frame");
        assert_eq!(r.arrive(60, 7, 2), Pushed::Late);
        assert_eq!(r.jb.stats().concealed, 1);
        assert_eq!(r.jb.stats().late, 1);
    }

    #[test]
    fn a_burst_of_losses_is_concealed_frame_by_frame() {
        let mut r = Run::new();
        r.arrive(0, 7, 100);
        r.arrive(100, 7, 105);
        for ms in [110, 111, 112, 113] {
            r.drain(ms);
        }
        r.drain(200);
        let concealed = r.out.iter().filter(|o| o.1).count();
        assert_eq!(concealed, 4, "101..=104");
        assert_eq!(r.out.last(), Some(&(105, false)));
    }

    #[test]
    fn no_deadline_is_left_behind_once_a_gap_is_concealed() {
        let mut r = Run::new();
        r.arrive(0, 7, 1);
        r.arrive(20, 7, 3);
        r.drain(40);
        assert_eq!(r.out.len(), 3);
        assert_eq!(r.jb.next_deadline(), None, "nothing waits: the driver must not wake for nothing");
    }

    #[test]
    fn duplicates_are_dropped_whether_waiting_or_played() {
        let mut r = Run::new();
        r.arrive(0, 7, 1);
        assert_eq!(r.arrive(1, 7, 1), Pushed::Duplicate);
        r.arrive(20, 7, 3);
        assert_eq!(r.arrive(21, 7, 3), Pushed::Duplicate);
        assert_eq!(r.jb.stats().duplicate, 2);
    }

    #[test]
    fn sequence_numbers_wrap_without_a_hiccup() {
        let mut r = Run::new();
        for (i, seq) in [65_533u16, 65_534, 65_535, 0, 1, 2].iter().enumerate() {
            r.arrive(i as u64 * 20, 7, *seq);
        }
        assert_eq!(r.out.len(), 6);
        assert!(r.out.iter().all(|o| !o.1));
    }

    #[test]
    fn a_new_ssrc_resets_the_buffer() {
        let mut r = Run::new();
        r.arrive(0, 7, 1);
        r.arrive(20, 7, 2);
        r.arrive(40, 9, 5000);
        r.arrive(60, 9, 5001);
        assert_eq!(r.out.iter().map(|o| o.0).collect::<Vec<_>>(), [1, 2, 5000u16 as u8, 5001u16 as u8]);
        assert_eq!(r.jb.stats().resets, 1);
    }

    #[test]
    fn events_and_comfort_noise_stay_out_of_the_audio_path() {
        let mut jb = JitterBuffer::new(config());
        let now = Instant::now();
        let ev = Packet { ssrc: 1, seq: 1, timestamp: 0, payload_type: 101, payload: &[5, 0x80, 0, 160] };
        assert_eq!(jb.push(now, &ev), Pushed::TelephoneEvent);
        assert_eq!(jb.push(now, &Packet { payload_type: 13, ..ev }), Pushed::ComfortNoise);
        assert_eq!(jb.push(now, &Packet { payload_type: 18, ..ev }), Pushed::WrongPayloadType);
        assert_eq!(jb.depth(), 0);
    }

    #[test]
    fn plus_or_minus_100_ppm_of_clock_drift_over_an_hour_neither_grows_the_buffer_nor_loses_frames() {
        // The sender's clock runs 100 ppm fast or slow against ours: packets every 20 ms of its time.
        for ppm in [-100i64, 100] {
            let mut r = Run::new();
            let frames = 3600 * 50; // one hour
            let mut max_depth = 0;
            for i in 0..frames {
                let sent_us = i as i64 * 20_000;
                let arrival_us = sent_us + sent_us * ppm / 1_000_000 + 5_000;
                let ms = (arrival_us / 1000) as u64;
                r.arrive(ms, 7, i as u16);
                max_depth = max_depth.max(r.jb.depth());
            }
            let stats = r.jb.stats();
            assert_eq!(r.out.len(), frames, "{ppm} ppm: every frame out");
            assert_eq!((stats.concealed, stats.late, stats.duplicate), (0, 0, 0), "{ppm} ppm");
            assert_eq!(max_depth, 0, "{ppm} ppm: forwarded on arrival, no depth to drift");
        }
    }

    #[test]
    fn the_wait_grows_with_measured_jitter_and_is_capped() {
        let mut r = Run::new();
        // Arrivals alternate 0 and 40 ms late: jitter ~ 40 ms -> wait capped at 100 ms.
        for seq in 0u16..200 {
            let late = if seq % 2 == 0 { 0 } else { 40 };
            r.arrive(u64::from(seq) * 20 + late, 7, seq);
        }
        let jitter_ms = r.jb.jitter() / 8;
        assert!((30..=45).contains(&jitter_ms), "{jitter_ms}");
        assert_eq!(r.jb.wait(), Duration::from_millis(100));
    }
}
