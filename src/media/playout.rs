//! The downlink playout queue, sans-IO: agent audio of any length in (agents send faster than real time),
//! exact 20 ms frames out on the caller's steady clock. A frame that begins a talk spurt carries the RTP marker;
//! an empty queue gives silence so the stream stays continuous; a mark is released once every byte queued
//! before it has gone out in a frame; `clear` drops the queue at once and releases its marks. Bounded by
//! duration; what does not fit is counted, never stored. Marks are bounded too: at most [`MAX_PENDING_MARKS`]
//! wait at once, and a mark past that is refused (the caller decides what that means). A send tick that finds the queue empty in the middle
//! of a talk spurt (audio resumes within [`UNDERRUN_MAX_TICKS`]) is an underrun: the caller heard a hole of
//! silence. It is counted, with the ticks it cost.

use std::collections::VecDeque;

/// Samples in one 20 ms frame at 8000 Hz, one byte each in G.711.
pub const FRAME_BYTES: usize = 160;

/// Bytes the queue keeps allocated however long the call (512 ms of audio). It grows past this only while an
/// agent runs ahead of real time, and gives the rest back once that audio has played out: a queue allocated
/// at its full bound (a minute, 480 KB) would, as a ring, touch every page of it over a long call.
const RESERVE: usize = 4096;

/// The longest run of empty send ticks, between two stretches of audio, counted as an underrun (60 ms);
/// a longer one is a pause between two talk spurts.
pub const UNDERRUN_MAX_TICKS: u32 = 3;

/// The most marks held at once, waiting for their audio or to be polled. 1,024 marks one per 20 ms chunk are
/// 20 s of audio queued ahead; without a bound, an agent could hold any number (and any size) in the queue.
pub const MAX_PENDING_MARKS: usize = 1024;

/// One frame handed to the packetizer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame {
    /// Set on the first frame of a talk spurt (RFC 3551 §4.1: the marker bit).
    pub marker: bool,
    /// False when the frame is pure silence (the queue was empty).
    pub audio: bool,
}

#[derive(Debug)]
pub struct PlayoutQueue {
    audio: VecDeque<u8>,
    capacity: usize,
    /// Bytes ever accepted, and bytes ever framed: positions for marks.
    queued: u64,
    framed: u64,
    marks: VecDeque<(u64, String)>,
    due: VecDeque<String>,
    talking: bool,
    silence: u8,
    overflow: u64,
    /// Empty ticks since the last audio frame while a spurt may go on; `None` outside a spurt.
    gap: Option<u32>,
    underruns: u64,
    underrun_ticks: u64,
}

impl PlayoutQueue {
    /// A queue holding at most `max_ms` of audio; `silence` is the codec's silent byte (0xFF μ-law, 0xD5 A-law).
    pub fn new(max_ms: u32, silence: u8) -> PlayoutQueue {
        let capacity = (max_ms as usize * 8).max(FRAME_BYTES);
        PlayoutQueue {
            audio: VecDeque::with_capacity(RESERVE.min(capacity)),
            capacity,
            queued: 0,
            framed: 0,
            marks: VecDeque::new(),
            due: VecDeque::new(),
            talking: false,
            silence,
            overflow: 0,
            gap: None,
            underruns: 0,
            underrun_ticks: 0,
        }
    }

    /// Queues audio; returns how many bytes were accepted (the rest is counted as overflow).
    pub fn push(&mut self, audio: &[u8]) -> usize {
        let room = self.capacity - self.audio.len();
        let take = audio.len().min(room);
        self.audio.extend(&audio[..take]);
        self.queued += take as u64;
        self.overflow += (audio.len() - take) as u64;
        take
    }

    /// Places a mark after the audio queued so far; it is released by [`PlayoutQueue::poll_mark`] once that
    /// audio has been framed (at once when nothing is queued). False, and nothing is kept, when
    /// [`MAX_PENDING_MARKS`] are pending already.
    #[must_use]
    pub fn mark(&mut self, name: String) -> bool {
        if self.pending_marks() >= MAX_PENDING_MARKS {
            return false;
        }
        if self.queued == self.framed {
            self.due.push_back(name);
        } else {
            self.marks.push_back((self.queued, name));
        }
        true
    }

    /// Marks placed and not yet polled: waiting for their audio, or released and due.
    pub fn pending_marks(&self) -> usize {
        self.marks.len() + self.due.len()
    }

    /// Drops every queued byte at once (barge-in) and releases every pending mark.
    pub fn clear(&mut self) {
        self.audio.clear();
        self.give_back();
        self.framed = self.queued;
        self.due.extend(self.marks.drain(..).map(|(_, name)| name));
        self.talking = false;
        // Silence after a barge-in is wanted, not an underrun.
        self.gap = None;
    }

    /// Fills `out` with the next 20 ms: queued audio (padded with silence when less than a frame is left), or
    /// silence. Call it once per 20 ms tick.
    pub fn next_frame(&mut self, out: &mut [u8; FRAME_BYTES]) -> Frame {
        let n = self.audio.len().min(FRAME_BYTES);
        for (slot, byte) in out.iter_mut().zip(self.audio.drain(..n)) {
            *slot = byte;
        }
        out[n..].fill(self.silence);
        self.framed += n as u64;
        if n > 0 && self.audio.is_empty() {
            self.give_back();
        }
        while self.marks.front().is_some_and(|(pos, _)| *pos <= self.framed) {
            if let Some((_, name)) = self.marks.pop_front() {
                self.due.push_back(name);
            }
        }
        let audio = n > 0;
        self.gap = match (audio, self.gap) {
            (true, Some(gap)) if gap > 0 => {
                self.underruns += 1;
                self.underrun_ticks += u64::from(gap);
                Some(0)
            }
            (true, _) => Some(0),
            (false, Some(gap)) if gap < UNDERRUN_MAX_TICKS => Some(gap + 1),
            (false, _) => None,
        };
        let marker = audio && !self.talking;
        self.talking = audio;
        Frame { marker, audio }
    }

    /// An empty queue grown past [`RESERVE`] by a burst shrinks back to it (once per burst, never per frame).
    fn give_back(&mut self) {
        if self.audio.capacity() > 2 * RESERVE {
            self.audio.shrink_to(RESERVE);
        }
    }

    /// Bytes allocated for queued audio.
    #[cfg(test)]
    fn allocated(&self) -> usize {
        self.audio.capacity()
    }

    /// The next mark whose audio has gone out.
    pub fn poll_mark(&mut self) -> Option<String> {
        self.due.pop_front()
    }

    /// Whether any agent audio is queued.
    pub fn has_audio(&self) -> bool {
        !self.audio.is_empty()
    }

    /// Queued audio in milliseconds.
    pub fn queued_ms(&self) -> u32 {
        (self.audio.len() / 8) as u32
    }

    /// Bytes refused because the queue was full.
    pub fn overflow(&self) -> u64 {
        self.overflow
    }

    /// Underruns (holes of silence inside a talk spurt), and the send ticks they took.
    pub fn underruns(&self) -> (u64, u64) {
        (self.underruns, self.underrun_ticks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SILENCE: u8 = 0xFF;

    fn frame(q: &mut PlayoutQueue) -> ([u8; FRAME_BYTES], Frame) {
        let mut out = [0u8; FRAME_BYTES];
        let f = q.next_frame(&mut out);
        (out, f)
    }

    #[test]
    fn memory_follows_what_is_queued_not_the_bound() {
        // A minute's bound, but a call that is not being spoken to holds only the reserve.
        let mut q = PlayoutQueue::new(60_000, SILENCE);
        assert!(q.allocated() <= 2 * RESERVE, "{} bytes allocated up front", q.allocated());
        // Real-time audio (a frame in, a frame out) never grows it.
        for _ in 0..1_000 {
            q.push(&[0x11; FRAME_BYTES]);
            frame(&mut q);
        }
        assert!(q.allocated() <= 2 * RESERVE, "{} bytes after real-time audio", q.allocated());
        // A 30 s reply sent at once is taken whole ...
        assert_eq!(q.push(&[0x22; 240_000]), 240_000);
        assert!(q.allocated() >= 240_000);
        // ... and once it has played out, the memory is given back.
        while q.queued_ms() > 0 {
            frame(&mut q);
        }
        assert!(q.allocated() <= 2 * RESERVE, "{} bytes kept after the burst", q.allocated());
        // Barge-in gives it back too; the bound still holds.
        assert_eq!(q.push(&[0x33; 560_000]), 480_000);
        assert_eq!(q.overflow(), 80_000);
        q.clear();
        assert!(q.allocated() <= 2 * RESERVE, "{} bytes kept after clear", q.allocated());
    }

    #[test]
    fn bursts_come_out_as_exact_frames_with_the_marker_on_each_talk_spurt() {
        let mut q = PlayoutQueue::new(10_000, SILENCE);
        let audio: Vec<u8> = (0..400).map(|i| i as u8).collect();
        q.push(&audio);
        let (a, fa) = frame(&mut q);
        let (b, fb) = frame(&mut q);
        let (c, fc) = frame(&mut q);
        assert_eq!((fa, fb), (Frame { marker: true, audio: true }, Frame { marker: false, audio: true }));
        assert_eq!(&a[..], &audio[..160]);
        assert_eq!(&b[..], &audio[160..320]);
        assert_eq!(&c[..80], &audio[320..], "the last 10 ms ...");
        assert!(c[80..].iter().all(|&x| x == SILENCE), "... padded with silence");
        assert_eq!(fc, Frame { marker: false, audio: true });
        let (d, fd) = frame(&mut q);
        assert_eq!(fd, Frame { marker: false, audio: false });
        assert!(d.iter().all(|&x| x == SILENCE), "an empty queue keeps the stream going with silence");
        q.push(&[1; 160]);
        assert!(frame(&mut q).1.marker, "a new talk spurt after silence");
    }

    #[test]
    fn an_empty_tick_inside_a_spurt_is_an_underrun_and_a_pause_is_not() {
        let mut q = PlayoutQueue::new(10_000, SILENCE);
        let talk = |q: &mut PlayoutQueue, frames: usize| {
            for _ in 0..frames {
                q.push(&[0x11; FRAME_BYTES]);
                assert!(frame(q).1.audio);
            }
        };
        let quiet = |q: &mut PlayoutQueue, ticks: usize| {
            for _ in 0..ticks {
                assert!(!frame(q).1.audio);
            }
        };
        quiet(&mut q, 10);
        talk(&mut q, 5);
        assert_eq!(q.underruns(), (0, 0), "silence before the first audio is no underrun");
        // One frame came a tick late: a 20 ms hole, then the spurt goes on (with a marker: RFC 3551).
        quiet(&mut q, 1);
        q.push(&[0x11; FRAME_BYTES]);
        assert_eq!(frame(&mut q).1, Frame { marker: true, audio: true });
        assert_eq!(q.underruns(), (1, 1));
        // A 60 ms hole is still one; the ticks add up.
        quiet(&mut q, 3);
        talk(&mut q, 2);
        assert_eq!(q.underruns(), (2, 4));
        // A pause longer than that ends the spurt: the next reply is a new one.
        quiet(&mut q, 4);
        talk(&mut q, 2);
        assert_eq!(q.underruns(), (2, 4));
        // Silence after a barge-in (clear) is wanted.
        q.push(&[0x11; 800]);
        frame(&mut q);
        q.clear();
        quiet(&mut q, 1);
        talk(&mut q, 1);
        assert_eq!(q.underruns(), (2, 4));
        // Audio ending in a partial frame is padded, not an underrun.
        q.push(&[0x11; 240]);
        frame(&mut q);
        frame(&mut q);
        quiet(&mut q, 10);
        assert_eq!(q.underruns(), (2, 4));
    }

    #[test]
    fn a_mark_waits_for_the_audio_queued_before_it() {
        let mut q = PlayoutQueue::new(10_000, SILENCE);
        assert!(q.mark("nothing-before".into()));
        assert_eq!(q.poll_mark().as_deref(), Some("nothing-before"), "due at once");
        q.push(&[7; 300]);
        assert!(q.mark("after-300".into()));
        q.push(&[8; 160]);
        assert!(q.mark("after-460".into()));
        frame(&mut q);
        assert_eq!(q.poll_mark(), None, "160 of 300 bytes out");
        frame(&mut q);
        assert_eq!(q.poll_mark().as_deref(), Some("after-300"));
        assert_eq!(q.poll_mark(), None);
        frame(&mut q);
        assert_eq!(q.poll_mark().as_deref(), Some("after-460"));
    }

    #[test]
    fn clear_drops_the_queue_at_once_and_releases_every_mark() {
        let mut q = PlayoutQueue::new(10_000, SILENCE);
        q.push(&[5; 8000]);
        assert!(q.mark("a".into()));
        q.push(&[6; 800]);
        assert!(q.mark("b".into()));
        frame(&mut q);
        q.clear();
        assert_eq!((q.poll_mark().as_deref(), q.poll_mark().as_deref()), (Some("a"), Some("b")));
        assert_eq!(q.queued_ms(), 0);
        let (out, f) = frame(&mut q);
        assert!(!f.audio && out.iter().all(|&x| x == SILENCE), "the very next frame is silence");
        assert!(q.mark("c".into()));
        assert_eq!(q.poll_mark().as_deref(), Some("c"), "positions stay consistent after clear");
    }

    #[test]
    fn pending_marks_are_bounded_and_polling_them_makes_room() {
        let mut q = PlayoutQueue::new(10_000, SILENCE);
        q.push(&[1; 800]);
        for i in 0..MAX_PENDING_MARKS {
            assert!(q.mark(format!("m{i}")), "mark {i} fits");
        }
        assert_eq!(q.pending_marks(), MAX_PENDING_MARKS);
        assert!(!q.mark("one-too-many".into()), "the 1,025th pending mark is refused");
        assert_eq!(q.pending_marks(), MAX_PENDING_MARKS, "and not kept");
        // Released but not yet polled still counts: the bound holds whoever is slow.
        q.clear();
        assert!(!q.mark("still-too-many".into()));
        assert_eq!(q.poll_mark().as_deref(), Some("m0"));
        assert!(q.mark("room-again".into()), "polling one makes room for one");
    }

    #[test]
    fn the_queue_is_bounded_by_duration_and_counts_what_it_refuses() {
        let mut q = PlayoutQueue::new(100, SILENCE);
        assert_eq!(q.push(&[1; 1000]), 800);
        assert_eq!((q.queued_ms(), q.overflow()), (100, 200));
        frame(&mut q);
        assert_eq!(q.push(&[1; 200]), 160);
    }
}
