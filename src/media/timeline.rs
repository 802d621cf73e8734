//! A call's quality timeline, sans-IO: one sample a second from the answer, for at most [`MAX_SAMPLES`]
//! seconds (4 h, the longest call vocals allows), kept compact: [`SAMPLE_BYTES`] bytes a second in memory
//! (86 KB an hour), about 45 bytes a second as the stored JSON (650 KB for 4 h).
//!
//! A sample holds, for its second: RTP packets in and out, packets lost (RFC 3550 A.3), late and concealed
//! frames, the interarrival jitter (RFC 3550 §6.4.1) at its end, the agent audio queued to play, the uplink
//! (RTP arrival to the agent's socket) and downlink (agent audio to its first RTP packet) latency median and
//! maximum, and the RTCP round-trip time when the peer's reports give one. A second the task did not wake
//! for (it was stalled) is kept as an empty sample, so sample `i` is always second `i`.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::session::MediaStats;

/// The sampling interval.
pub const INTERVAL: Duration = Duration::from_secs(1);
/// At most 4 h of samples.
pub const MAX_SAMPLES: usize = 4 * 3600;
/// Bytes one sample takes in memory.
pub const SAMPLE_BYTES: usize = std::mem::size_of::<Sample>();
/// Unknown (no reply started this second, no RTT, a second not sampled).
const NONE: u16 = u16::MAX;

/// The fields of a sample, in the order the stored and served JSON gives them, with their units.
pub const FIELDS: [&str; 12] = [
    "rtp_in",
    "rtp_out",
    "lost",
    "late",
    "concealed",
    "jitter_ms",
    "queue_ms",
    "uplink_p50_ms",
    "uplink_max_ms",
    "downlink_p50_ms",
    "downlink_max_ms",
    "rtt_ms",
];

/// One second. Latencies are in units of 10 µs (to 655 ms), the jitter in 0.1 ms; [`NONE`] when unknown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Sample {
    rtp_in: u16,
    rtp_out: u16,
    lost: u16,
    late: u16,
    concealed: u16,
    jitter_100us: u16,
    queue_ms: u16,
    up_p50: u16,
    up_max: u16,
    down_p50: u16,
    down_max: u16,
    rtt_ms: u16,
}

impl Sample {
    const EMPTY: Sample = Sample {
        rtp_in: NONE,
        rtp_out: NONE,
        lost: NONE,
        late: NONE,
        concealed: NONE,
        jitter_100us: NONE,
        queue_ms: NONE,
        up_p50: NONE,
        up_max: NONE,
        down_p50: NONE,
        down_max: NONE,
        rtt_ms: NONE,
    };

    fn values(&self) -> [u16; 12] {
        [
            self.rtp_in,
            self.rtp_out,
            self.lost,
            self.late,
            self.concealed,
            self.jitter_100us,
            self.queue_ms,
            self.up_p50,
            self.up_max,
            self.down_p50,
            self.down_max,
            self.rtt_ms,
        ]
    }
}

/// Latencies seen in one second: the median of up to [`WINDOW`] of them (the first ones), the maximum of all.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    values: [u16; WINDOW],
    len: usize,
    max: u16,
}

/// Latencies a window keeps for its median: one a frame is 50 a second.
pub const WINDOW: usize = 64;

impl Default for Window {
    fn default() -> Window {
        Window { values: [0; WINDOW], len: 0, max: 0 }
    }
}

impl Window {
    pub fn record(&mut self, d: Duration) {
        let v = ten_us(d);
        if self.len < WINDOW {
            self.values[self.len] = v;
            self.len += 1;
        } else {
            // Past the window, keep the median current: replace one slot in turn.
            self.values[(self.max as usize ^ v as usize) % WINDOW] = v;
        }
        self.max = self.max.max(v);
    }

    /// Median and maximum, in 10 µs units; [`NONE`] when nothing was recorded. Empties the window.
    fn take(&mut self) -> (u16, u16) {
        if self.len == 0 {
            return (NONE, NONE);
        }
        let v = &mut self.values[..self.len];
        v.sort_unstable();
        let p50 = v[(v.len() - 1) / 2];
        let max = self.max;
        *self = Window::default();
        (p50, max)
    }
}

fn ten_us(d: Duration) -> u16 {
    (d.as_micros() / 10).min(u128::from(NONE - 1)) as u16
}

fn small(n: u64) -> u16 {
    n.min(u64::from(NONE - 1)) as u16
}

/// Agent events kept per call (the first ones; the rest are counted).
pub const MAX_EVENTS: usize = 256;

/// One call's timeline.
#[derive(Debug)]
pub struct Timeline {
    start: Instant,
    next: Instant,
    samples: Vec<Sample>,
    /// The counters at the last sample.
    last: MediaStats,
    pub downlink: Window,
    /// What the agent did, and what the call did to it: connected, start, mark, clear, DTMF, transfer, the end.
    events: Vec<(Instant, &'static str, String)>,
    events_elided: u32,
}

impl Timeline {
    /// A timeline whose first second starts at `start` (the answer).
    pub fn new(start: Instant) -> Timeline {
        Timeline {
            start,
            next: start + INTERVAL,
            samples: Vec::new(),
            last: MediaStats::default(),
            downlink: Window::default(),
            events: Vec::new(),
            events_elided: 0,
        }
    }

    /// An agent event at `at` (before the answer too: its time is then negative). `detail` is cut to 200
    /// characters.
    pub fn event(&mut self, at: Instant, kind: &'static str, detail: &str) {
        if self.events.len() >= MAX_EVENTS {
            self.events_elided += 1;
            return;
        }
        self.events.push((at, kind, detail.chars().take(200).collect()));
    }

    /// When the next sample is due.
    pub fn due(&self) -> Instant {
        self.next
    }

    /// Samples taken.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Takes the second that ended, when `now` is past it: `stats` are the session's counters now, `queue_ms`
    /// the agent audio queued, `uplink` the second's uplink latencies (emptied).
    pub fn sample(&mut self, now: Instant, stats: &MediaStats, queue_ms: u32, uplink: &mut Window) {
        if now < self.next {
            return;
        }
        // The seconds the task did not wake for (stalled) are kept as empty samples.
        let second = (now.saturating_duration_since(self.start).as_millis() / INTERVAL.as_millis()) as usize;
        while self.samples.len() + 1 < second && self.samples.len() < MAX_SAMPLES {
            self.samples.push(Sample::EMPTY);
        }
        let (up_p50, up_max) = uplink.take();
        let (down_p50, down_max) = self.downlink.take();
        let last = &self.last;
        let sample = Sample {
            rtp_in: small(stats.rtp_received.saturating_sub(last.rtp_received)),
            rtp_out: small(stats.sent_packets.saturating_sub(last.sent_packets)),
            lost: small(stats.lost.saturating_sub(last.lost).max(0) as u64),
            late: small(stats.jitter.late.saturating_sub(last.jitter.late)),
            concealed: small(stats.jitter.concealed.saturating_sub(last.jitter.concealed)),
            jitter_100us: small((stats.interarrival_jitter_ms * 10.0).round() as u64),
            queue_ms: small(u64::from(queue_ms)),
            up_p50,
            up_max,
            down_p50,
            down_max,
            rtt_ms: stats.peer.rtt.map_or(NONE, |d| small(d.as_millis() as u64)),
        };
        if self.samples.len() < MAX_SAMPLES {
            if self.samples.len() == self.samples.capacity() {
                // Grow by a minute at a time: no doubling past what the call needs.
                self.samples.reserve_exact(60);
            }
            self.samples.push(sample);
        }
        self.last = *stats;
        self.next = self.start + INTERVAL * (second as u32 + 1);
    }

    /// The timeline as stored and served: `interval_ms`, `fields` (with units in their names) and `samples`,
    /// one array of numbers a second (`null`: unknown).
    pub fn to_json(&self) -> Value {
        let samples: Vec<Value> = self
            .samples
            .iter()
            .map(|s| {
                let v = s.values();
                let ms = |x: u16, per_ms: f64| if x == NONE { Value::Null } else { json!(f64::from(x) / per_ms) };
                let n = |x: u16| if x == NONE { Value::Null } else { json!(x) };
                Value::Array(vec![
                    n(v[0]),
                    n(v[1]),
                    n(v[2]),
                    n(v[3]),
                    n(v[4]),
                    ms(v[5], 10.0),
                    n(v[6]),
                    ms(v[7], 100.0),
                    ms(v[8], 100.0),
                    ms(v[9], 100.0),
                    ms(v[10], 100.0),
                    n(v[11]),
                ])
            })
            .collect();
        let events: Vec<Value> = self
            .events
            .iter()
            .map(|(at, kind, detail)| {
                let ms = if *at >= self.start {
                    at.duration_since(self.start).as_millis() as i64
                } else {
                    -(self.start.duration_since(*at).as_millis() as i64)
                };
                json!({ "at_ms": ms, "kind": kind, "detail": detail })
            })
            .collect();
        json!({
            "interval_ms": INTERVAL.as_millis() as u64,
            "fields": FIELDS,
            "samples": samples,
            "events": events,
            "events_elided": self.events_elided,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(rtp_in: u64, rtp_out: u64, lost: i64, concealed: u64, jitter_ms: f64) -> MediaStats {
        let mut s = MediaStats {
            rtp_received: rtp_in,
            sent_packets: rtp_out,
            lost,
            interarrival_jitter_ms: jitter_ms,
            ..MediaStats::default()
        };
        s.jitter.concealed = concealed;
        s
    }

    #[test]
    fn a_sample_a_second_with_the_seconds_deltas_latencies_and_gaps_kept_as_empty_seconds() {
        let t0 = Instant::now();
        let mut t = Timeline::new(t0);
        let mut up = Window::default();
        for ms in [200, 300, 400, 900, 500] {
            up.record(Duration::from_micros(ms));
        }
        t.downlink.record(Duration::from_micros(1_250));
        // Not yet a second.
        t.sample(t0 + Duration::from_millis(999), &stats(49, 50, 0, 0, 1.0), 0, &mut up);
        assert!(t.is_empty());
        t.sample(t0 + Duration::from_millis(1_003), &stats(50, 50, 0, 0, 1.24), 120, &mut up);
        // The task stalled for two seconds: second 2 is empty, second 3 has what happened since.
        t.sample(t0 + Duration::from_millis(3_010), &stats(140, 150, 10, 10, 2.0), 0, &mut up);
        let j = t.to_json();
        assert_eq!(j["fields"][7], "uplink_p50_ms");
        assert_eq!(
            j["samples"],
            json!([
                [50, 50, 0, 0, 0, 1.2, 120, 0.4, 0.9, 1.25, 1.25, null],
                [null, null, null, null, null, null, null, null, null, null, null, null],
                [90, 100, 10, 0, 10, 2.0, 0, null, null, null, null, null],
            ])
        );
        // The next sample is due at the next whole second from the answer.
        assert_eq!(t.due(), t0 + Duration::from_secs(4));
        // Events keep their time from the answer, before it too, and stay bounded.
        t.event(t0 - Duration::from_millis(250), "connected", "wss://agent.example.com/stream");
        t.event(t0 + Duration::from_millis(1_500), "dtmf", "5");
        for _ in 0..MAX_EVENTS {
            t.event(t0 + Duration::from_secs(2), "mark", "");
        }
        let j = t.to_json();
        assert_eq!(
            j["events"][0],
            json!({"at_ms": -250, "kind": "connected", "detail": "wss://agent.example.com/stream"})
        );
        assert_eq!(j["events"][1], json!({"at_ms": 1500, "kind": "dtmf", "detail": "5"}));
        assert_eq!((j["events"].as_array().unwrap().len(), j["events_elided"].as_u64()), (MAX_EVENTS, Some(2)));
    }

    #[test]
    fn four_hours_at_most_in_24_bytes_a_second() {
        assert_eq!(SAMPLE_BYTES, 24);
        let t0 = Instant::now();
        let mut t = Timeline::new(t0);
        let mut up = Window::default();
        for s in 1..=(MAX_SAMPLES as u64 + 100) {
            t.sample(t0 + Duration::from_secs(s), &stats(50 * s, 50 * s, 0, 0, 0.5), 0, &mut up);
        }
        assert_eq!(t.len(), MAX_SAMPLES);
        assert!(t.samples.capacity() <= MAX_SAMPLES + 60, "{}", t.samples.capacity());
        let stored = t.to_json().to_string().len();
        println!("4 h timeline: {} bytes in memory, {stored} bytes stored", t.samples.capacity() * SAMPLE_BYTES);
        assert!(stored < 14_400 * 48, "{stored} bytes stored for 4 h");
    }

    #[test]
    fn a_window_keeps_the_median_and_the_max_past_its_size() {
        let mut w = Window::default();
        for i in 0..1000u64 {
            w.record(Duration::from_micros(100 + (i % 10) * 10));
        }
        w.record(Duration::from_millis(30));
        let (p50, max) = w.take();
        assert!((10..=20).contains(&p50), "{p50}");
        assert_eq!(max, 3000);
        assert_eq!(w.take(), (NONE, NONE), "taking empties it");
    }
}
