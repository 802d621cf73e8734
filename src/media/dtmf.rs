//! RFC 4733 telephone-events for DTMF: the 4-byte payload, a receiver that turns a stream of event packets into
//! one digit per event (whatever the retransmitted end packets and a lost marker bit), and a sender that
//! produces the packets for a digit. Sans-IO: it sees payloads and RTP timestamps, never sockets.

/// The digits events 0–15 stand for (RFC 4733 §3.2): 0–9, *, #, A–D.
const DIGITS: [char; 16] = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '#', 'A', 'B', 'C', 'D'];

/// One telephone-event payload (RFC 4733 §2.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventPayload {
    pub event: u8,
    /// The E bit: this packet ends the event.
    pub end: bool,
    /// Power level, 0 to -63 dBm0, as a positive number.
    pub volume: u8,
    /// Duration so far, in timestamp units (8000 Hz: 160 = 20 ms).
    pub duration: u16,
}

impl EventPayload {
    /// Reads the first four bytes; `None` when shorter.
    pub fn parse(payload: &[u8]) -> Option<EventPayload> {
        let [event, flags, hi, lo, ..] = *payload else { return None };
        Some(EventPayload {
            event,
            end: flags & 0x80 != 0,
            volume: flags & 0x3F,
            duration: u16::from_be_bytes([hi, lo]),
        })
    }

    pub fn to_bytes(self) -> [u8; 4] {
        let [hi, lo] = self.duration.to_be_bytes();
        [self.event, (u8::from(self.end) << 7) | (self.volume & 0x3F), hi, lo]
    }

    /// The DTMF digit, for events 0–15.
    pub fn digit(self) -> Option<char> {
        DIGITS.get(self.event as usize).copied()
    }
}

/// A digit received, once per event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Digit {
    pub digit: char,
    /// Duration in milliseconds (from the end packet, or the longest seen).
    pub duration_ms: u32,
}

/// Turns telephone-event packets into digits. An event is identified by its RTP timestamp (RFC 4733 §2.5.1:
/// every packet of one event carries the event's start timestamp), so the three end packets and any
/// retransmission of the start report one digit, and a lost marker bit changes nothing. A digit whose end
/// packets are all lost is reported when the next event starts, with the longest duration seen.
#[derive(Debug, Default)]
pub struct DtmfReceiver {
    /// The event in progress or last ended: its RTP timestamp, and whether it was reported.
    current: Option<(u32, bool)>,
    /// The event in progress, not reported yet.
    unfinished: Option<Digit>,
    ready: std::collections::VecDeque<Digit>,
}

impl DtmfReceiver {
    pub fn new() -> DtmfReceiver {
        DtmfReceiver::default()
    }

    /// One telephone-event packet: its RTP timestamp and payload. Digits come out of [`DtmfReceiver::poll_digit`].
    pub fn on_packet(&mut self, timestamp: u32, payload: &[u8]) {
        let Some(p) = EventPayload::parse(payload) else { return };
        let Some(digit) = p.digit() else { return };
        if self.current.is_none_or(|(ts, _)| ts != timestamp) {
            // A new event; one that never ended is reported as it stood.
            if let Some(last) = self.unfinished.take() {
                self.ready.push_back(last);
            }
            self.current = Some((timestamp, false));
        }
        let Some((_, reported)) = self.current else { return };
        if reported {
            return;
        }
        let longest = self.unfinished.map_or(0, |d| d.duration_ms).max(u32::from(p.duration) / 8);
        let now = Digit { digit, duration_ms: longest };
        if p.end {
            self.current = Some((timestamp, true));
            self.unfinished = None;
            self.ready.push_back(now);
        } else {
            self.unfinished = Some(now);
        }
    }

    pub fn poll_digit(&mut self) -> Option<Digit> {
        self.ready.pop_front()
    }
}

/// The packets that send one digit (RFC 4733 §2.5.1): a start packet with the marker bit, updates every
/// 20 ms, and the end packet three times, as (marker bit, payload). The caller sends them 20 ms apart with
/// consecutive sequence numbers and, for all of them, the RTP timestamp of the event's start.
pub fn send_digit(digit: char, duration_ms: u32, volume: u8) -> Option<Vec<(bool, [u8; 4])>> {
    let event = DIGITS.iter().position(|&d| d == digit.to_ascii_uppercase())? as u8;
    let total = (duration_ms.clamp(40, 8000) * 8) as u16;
    let mut packets = Vec::new();
    let mut duration = 160u16;
    while duration < total {
        let p = EventPayload { event, end: false, volume, duration };
        packets.push((packets.is_empty(), p.to_bytes()));
        duration += 160;
    }
    let end = EventPayload { event, end: true, volume, duration: total };
    for _ in 0..3 {
        packets.push((packets.is_empty(), end.to_bytes()));
    }
    Some(packets)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(event: u8, end: bool, duration: u16) -> [u8; 4] {
        EventPayload { event, end, volume: 10, duration }.to_bytes()
    }

    #[test]
    fn payloads_round_trip_and_name_their_digit() {
        let p = EventPayload { event: 11, end: true, volume: 10, duration: 800 };
        assert_eq!(EventPayload::parse(&p.to_bytes()), Some(p));
        assert_eq!(p.digit(), Some('#'));
        assert_eq!(EventPayload { event: 16, ..p }.digit(), None, "events above 15 are not DTMF");
        assert_eq!(EventPayload::parse(&[1, 2, 3]), None);
    }

    fn feed(rx: &mut DtmfReceiver, ts: u32, payload: [u8; 4]) -> Option<Digit> {
        rx.on_packet(ts, &payload);
        rx.poll_digit()
    }

    #[test]
    fn one_digit_per_event_despite_three_end_packets() {
        let mut rx = DtmfReceiver::new();
        let ts = 16_000;
        assert_eq!(feed(&mut rx, ts, packet(5, false, 160)), None);
        assert_eq!(feed(&mut rx, ts, packet(5, false, 320)), None);
        assert_eq!(feed(&mut rx, ts, packet(5, true, 800)), Some(Digit { digit: '5', duration_ms: 100 }));
        assert_eq!(feed(&mut rx, ts, packet(5, true, 800)), None);
        assert_eq!(feed(&mut rx, ts, packet(5, true, 800)), None);
        // The same digit again is a new event (new timestamp).
        assert_eq!(feed(&mut rx, ts + 1600, packet(5, true, 400)).map(|d| d.digit), Some('5'));
    }

    #[test]
    fn a_lost_start_or_marker_changes_nothing_and_lost_ends_are_reported_later() {
        let mut rx = DtmfReceiver::new();
        // Start packet (with the marker) lost: the first packet seen is an update.
        assert_eq!(feed(&mut rx, 100, packet(1, false, 480)), None);
        assert_eq!(feed(&mut rx, 100, packet(1, true, 640)).map(|d| d.digit), Some('1'));
        // All end packets of '2' lost: it is reported when '3' starts.
        assert_eq!(feed(&mut rx, 5000, packet(2, false, 160)), None);
        assert_eq!(feed(&mut rx, 5000, packet(2, false, 320)), None);
        assert_eq!(feed(&mut rx, 9000, packet(3, false, 160)), Some(Digit { digit: '2', duration_ms: 40 }));
        assert_eq!(feed(&mut rx, 9000, packet(3, true, 320)).map(|d| d.digit), Some('3'));
    }

    #[test]
    fn a_digit_is_sent_as_updates_and_three_end_packets() {
        let packets = send_digit('9', 100, 10).unwrap();
        let parsed: Vec<_> = packets.iter().map(|(m, p)| (*m, EventPayload::parse(p).unwrap())).collect();
        assert!(parsed[0].0, "marker on the first packet only");
        assert!(parsed[1..].iter().all(|(m, _)| !m));
        let ends: Vec<_> = parsed.iter().filter(|(_, p)| p.end).collect();
        assert_eq!(ends.len(), 3);
        assert!(ends.iter().all(|(_, p)| p.duration == 800 && p.event == 9));
        // What we send, our receiver reads as one digit.
        let mut rx = DtmfReceiver::new();
        let digits: Vec<_> = packets.iter().filter_map(|(_, p)| feed(&mut rx, 7, *p)).collect();
        assert_eq!(digits, [Digit { digit: '9', duration_ms: 100 }]);
        assert!(send_digit('x', 100, 10).is_none());
        assert!(send_digit('a', 100, 10).is_some(), "A-D in either case");
    }
}
