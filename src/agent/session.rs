//! One call's agent stream, sans-IO: numbers every frame vocals sends (`sequenceNumber` over all frames after
//! `connected`, `chunk` per media frame), stamps uplink frames with media time (20 ms per frame from the first
//! frame's real time, so time keeps advancing through loss and silence), and applies the agent's frames to the
//! call's playout queue (`media` queued, `mark` placed after the audio queued so far, `clear` at once). Counts
//! what it ignored, and refuses what breaks the stream's limits (a mark name past [`MAX_MARK_NAME`], more marks
//! pending than the queue holds) as a [`Violation`]. No socket, no clock: `now` is an input.

use std::time::Instant;

use super::protocol::{self, Ignored, Inbound, MAX_MARK_NAME, StartInfo, Violation};
use crate::media::playout::PlayoutQueue;

/// Counters for the call record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AgentStats {
    pub frames_sent: u64,
    pub media_received: u64,
    pub audio_bytes_received: u64,
    pub marks_received: u64,
    pub marks_echoed: u64,
    pub clears: u64,
    pub ignored: u64,
    /// Uplink frames dropped because the agent's socket could not keep up.
    pub uplink_dropped: u64,
}

/// Why a frame from the agent was not applied.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Logged and counted; the stream goes on.
    #[error(transparent)]
    Ignored(#[from] Ignored),
    /// A limit broken: the stream is closed and the call ended.
    #[error(transparent)]
    Violation(#[from] Violation),
}

/// What an agent asks of its call, beyond its audio.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Blind-transfer the caller (SIP REFER), with headers for the REFER.
    Transfer { to: String, headers: Vec<(String, String)> },
    /// Hang up (SIP BYE), with headers for the BYE.
    Hangup { headers: Vec<(String, String)> },
}

pub struct AgentSession {
    info: StartInfo,
    seq: u64,
    chunk: u64,
    /// When the stream started (`start` sent), and the media time of the first uplink frame.
    started: Option<Instant>,
    first_frame_ms: Option<u64>,
    stats: AgentStats,
}

impl AgentSession {
    pub fn new(info: StartInfo) -> AgentSession {
        AgentSession { info, seq: 0, chunk: 0, started: None, first_frame_ms: None, stats: AgentStats::default() }
    }

    pub fn stream_sid(&self) -> &str {
        &self.info.stream_sid
    }

    /// `connected` then `start`: the first two frames.
    pub fn opening(&mut self, now: Instant) -> [String; 2] {
        self.started = Some(now);
        let seq = self.next_seq();
        [protocol::connected(), protocol::start(seq, &self.info)]
    }

    /// One 20 ms μ-law uplink frame.
    pub fn frame(&mut self, now: Instant, mulaw: &[u8]) -> String {
        let started = *self.started.get_or_insert(now);
        let first = *self.first_frame_ms.get_or_insert(now.saturating_duration_since(started).as_millis() as u64);
        let timestamp = first + 20 * self.chunk;
        self.chunk += 1;
        self.stats.frames_sent += 1;
        let seq = self.next_seq();
        protocol::media(seq, &self.info.stream_sid, self.chunk, timestamp, mulaw)
    }

    pub fn digit(&mut self, digit: char) -> String {
        let seq = self.next_seq();
        protocol::dtmf(seq, &self.info.stream_sid, digit)
    }

    /// The echo of a mark whose audio has been sent.
    pub fn mark_played(&mut self, name: &str) -> String {
        self.stats.marks_echoed += 1;
        let seq = self.next_seq();
        protocol::mark(seq, &self.info.stream_sid, name)
    }

    pub fn stop(&mut self) -> String {
        let seq = self.next_seq();
        protocol::stop(seq, &self.info)
    }

    /// Tells the agent how its transfer is going (a vocals extension).
    pub fn transfer_status(&mut self, status: &str, sip_status: u16) -> String {
        let seq = self.next_seq();
        protocol::transfer_status(seq, &self.info.stream_sid, status, sip_status)
    }

    /// Tells the agent one of its events was refused (and not carried out), and why.
    pub fn error(&mut self, event: &str, message: &str) -> String {
        let seq = self.next_seq();
        protocol::error(seq, &self.info.stream_sid, event, message)
    }

    /// Tells the agent its transfer was refused before any REFER, and why.
    pub fn transfer_refused(&mut self, reason: &str) -> String {
        let seq = self.next_seq();
        protocol::transfer_refused(seq, &self.info.stream_sid, reason)
    }

    /// Applies one text frame from the agent to the playout queue; a transfer or hang-up is returned for the
    /// call layer to carry out.
    pub fn on_text(&mut self, text: &str, playout: &mut PlayoutQueue) -> Result<Option<Action>, Refused> {
        match protocol::parse(text, &self.info.stream_sid) {
            Ok(Inbound::Media(audio)) => {
                self.stats.media_received += 1;
                self.stats.audio_bytes_received += audio.len() as u64;
                playout.push(&audio);
            }
            Ok(Inbound::Mark(name)) => {
                self.stats.marks_received += 1;
                if name.len() > MAX_MARK_NAME {
                    return Err(Violation::MarkName.into());
                }
                if !playout.mark(name) {
                    return Err(Violation::TooManyMarks.into());
                }
            }
            Ok(Inbound::Clear) => {
                self.stats.clears += 1;
                playout.clear();
            }
            Ok(Inbound::Transfer { to, headers }) => return Ok(Some(Action::Transfer { to, headers })),
            Ok(Inbound::Hangup { headers }) => return Ok(Some(Action::Hangup { headers })),
            Err(e) => {
                self.stats.ignored += 1;
                return Err(e.into());
            }
        }
        Ok(None)
    }

    /// Counts a binary (or otherwise unusable) frame.
    pub fn ignored(&mut self) {
        self.stats.ignored += 1;
    }

    pub fn uplink_dropped(&mut self, n: u64) {
        self.stats.uplink_dropped += n;
    }

    pub fn stats(&self) -> AgentStats {
        self.stats
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use base64::Engine;
    use serde_json::Value;

    use super::*;

    fn session() -> AgentSession {
        AgentSession::new(StartInfo { stream_sid: "MZ1".into(), ..StartInfo::default() })
    }

    fn json(s: &str) -> Value {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn sequence_numbers_run_over_every_frame_and_chunks_over_media_only() {
        let mut s = session();
        let t0 = Instant::now();
        let [connected, start] = s.opening(t0);
        assert!(json(&connected).get("sequenceNumber").is_none());
        assert_eq!(json(&start)["sequenceNumber"], "1");
        let m1 = json(&s.frame(t0 + Duration::from_millis(130), &[0xFF; 160]));
        let d = json(&s.digit('5'));
        let m2 = json(&s.frame(t0 + Duration::from_millis(131), &[0xFF; 160]));
        assert_eq!((m1["sequenceNumber"].as_str(), m1["media"]["chunk"].as_str()), (Some("2"), Some("1")));
        assert_eq!(d["sequenceNumber"], "3");
        assert_eq!((m2["sequenceNumber"].as_str(), m2["media"]["chunk"].as_str()), (Some("4"), Some("2")));
        // Media time: the first frame at its real offset, then 20 ms per frame, whenever frames are handed over.
        assert_eq!((m1["media"]["timestamp"].as_str(), m2["media"]["timestamp"].as_str()), (Some("130"), Some("150")));
        assert_eq!(json(&s.stop())["sequenceNumber"], "5");
    }

    #[test]
    fn agent_frames_drive_the_playout_queue_and_marks_wait_for_their_audio() {
        let mut s = session();
        let mut q = PlayoutQueue::new(10_000, 0xFF);
        let payload = base64::engine::general_purpose::STANDARD.encode([0u8; 240]);
        let media = &format!(r#"{{"event":"media","streamSid":"MZ1","media":{{"payload":"{payload}"}}}}"#);
        s.on_text(media, &mut q).unwrap();
        s.on_text(r#"{"event":"mark","streamSid":"MZ1","mark":{"name":"m1"}}"#, &mut q).unwrap();
        assert_eq!(q.queued_ms(), 30);
        let mut f = [0u8; 160];
        q.next_frame(&mut f);
        assert_eq!(q.poll_mark(), None, "10 ms of the audio before the mark is still queued");
        q.next_frame(&mut f);
        assert_eq!(q.poll_mark().as_deref(), Some("m1"));
        s.on_text(media, &mut q).unwrap();
        s.on_text(r#"{"event":"mark","mark":{"name":"m2"}}"#, &mut q).unwrap();
        s.on_text(r#"{"event":"clear","streamSid":"MZ1"}"#, &mut q).unwrap();
        assert_eq!((q.queued_ms(), q.poll_mark().as_deref()), (0, Some("m2")), "clear empties and releases marks");
        assert!(s.on_text(r#"{"event":"clear","streamSid":"MZ9"}"#, &mut q).is_err());
        let st = s.stats();
        assert_eq!(
            (st.media_received, st.audio_bytes_received, st.marks_received, st.clears, st.ignored),
            (2, 480, 2, 1, 1)
        );
    }

    #[test]
    fn a_long_mark_name_or_too_many_pending_marks_is_a_violation() {
        let mut s = session();
        let mut q = PlayoutQueue::new(10_000, 0xFF);
        let mark = |name: &str| format!(r#"{{"event":"mark","streamSid":"MZ1","mark":{{"name":"{name}"}}}}"#);
        assert_eq!(s.on_text(&mark(&"n".repeat(MAX_MARK_NAME)), &mut q), Ok(None), "256 bytes is allowed");
        let long = s.on_text(&mark(&"n".repeat(MAX_MARK_NAME + 1)), &mut q);
        assert_eq!(long, Err(Refused::Violation(Violation::MarkName)));
        assert_eq!(q.pending_marks(), 1, "the long name was not kept");
        q.push(&[0u8; 800]);
        for i in 1..crate::media::playout::MAX_PENDING_MARKS {
            assert_eq!(s.on_text(&mark(&format!("m{i}")), &mut q), Ok(None));
        }
        let flood = s.on_text(&mark("one-more"), &mut q);
        assert_eq!(flood, Err(Refused::Violation(Violation::TooManyMarks)));
        assert_eq!(flood.unwrap_err().to_string(), "more than 1024 marks pending");
        let bad = s.on_text("{not json", &mut q);
        assert!(matches!(bad, Err(Refused::Ignored(Ignored::BadJson(_)))), "ignored frames stay ignored: {bad:?}");
    }
}
