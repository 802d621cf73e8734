//! The media session's tests, on a virtual clock: latching, pacing, holds, DTMF, RTCP, SRTP, hand-off.

use super::*;

const PEER: &str = "192.0.2.10:30000";

fn peer() -> SocketAddr {
    PEER.parse().unwrap()
}

fn stream(codec: Codec, direction: Direction) -> Stream {
    Stream { direction, ..Stream::sendrecv(codec, peer()) }
}

fn config() -> SessionConfig {
    SessionConfig { ssrc: 0xABCD, seq: 65534, timestamp: 1000, ..SessionConfig::default() }
}

struct Run {
    s: Session,
    t0: Instant,
    buf: Vec<u8>,
}

impl Run {
    fn new(config: SessionConfig, stream: Stream) -> Run {
        let t0 = Instant::now();
        Run { s: Session::new(t0, SystemTime::now(), config, stream), t0, buf: vec![0; 1500] }
    }

    fn at(&self, ms: u64) -> Instant {
        self.t0 + Duration::from_millis(ms)
    }

    /// The caller's first packet (silence, at 0 ms): the stream latches onto its source.
    fn latch(&mut self) {
        self.rtp(0, peer(), 0, 0, &[0xFF; FRAME_BYTES]);
    }

    fn rtp(&mut self, ms: u64, from: SocketAddr, pt: u8, seq: u16, payload: &[u8]) {
        let mut d = [0u8; 200];
        let p = RtpPacket { marker: false, payload_type: pt, seq, timestamp: u32::from(seq) * 160, ssrc: 77, payload };
        let n = rtp::build(&p, &mut d).unwrap();
        self.s.handle_rtp(self.at(ms), from, &d[..n]);
    }

    fn frames(&mut self, ms: u64) -> Vec<[u8; FRAME_BYTES]> {
        let mut out = Vec::new();
        let mut f = [0u8; FRAME_BYTES];
        while self.s.poll_frame(self.at(ms), &mut f).is_some() {
            out.push(f);
        }
        out
    }

    /// Every RTP packet sent up to `ms`, parsed: (marker, seq, timestamp, first payload byte).
    fn sent(&mut self, ms: u64) -> Vec<(bool, u16, u32, u8, SocketAddr)> {
        let mut out = Vec::new();
        let now = self.at(ms);
        while let Some(t) = self.s.poll_transmit(now, &mut self.buf) {
            if !t.rtcp {
                let p = rtp::parse(&self.buf[..t.len]).unwrap();
                out.push((p.marker, p.seq, p.timestamp, p.payload[0], t.to));
            }
        }
        out
    }
}

#[test]
fn only_the_sdp_address_may_latch_and_other_sources_are_refused_and_counted() {
    let mut r = Run::new(config(), stream(Codec::Pcmu, Direction::SendRecv));
    // Another host sending to the port first (a hijack): refused, counted, never latched.
    let attacker: SocketAddr = "198.51.100.1:4000".parse().unwrap();
    r.rtp(0, attacker, 0, 1, &[0x99; 160]);
    r.rtp(0, attacker, 0, 2, &[0x99; 160]);
    // From the SDP address's IP, a payload type that was not negotiated does not latch ...
    let caller: SocketAddr = "192.0.2.10:40000".parse().unwrap();
    r.rtp(0, caller, 18, 1, &[0; 20]);
    // ... PCMU does, from another port of that IP (a NAT moved it: RFC 4961).
    r.rtp(0, caller, 0, 1, &[0x11; 160]);
    r.rtp(20, peer(), 0, 2, &[0x22; 160]);
    r.rtp(20, caller, 0, 2, &[0x33; 160]);
    let frames = r.frames(20);
    assert_eq!(frames.iter().map(|f| f[0]).collect::<Vec<_>>(), vec![0x11, 0x33]);
    let st = r.s.stats();
    assert_eq!((st.refused_source, st.foreign, st.wrong_payload_type, st.rtp_received), (2, 1, 1, 2));
    r.s.handle_rtp(r.at(40), caller, b"not rtp");
    assert_eq!(r.s.stats().malformed, 1);
    // media.latch = "any": the first source wins, wherever it is.
    let mut r = Run::new(SessionConfig { latch: Latch::Any, ..config() }, stream(Codec::Pcmu, Direction::SendRecv));
    r.rtp(0, attacker, 0, 1, &[0x99; 160]);
    assert_eq!((r.s.stats().refused_source, r.s.stats().rtp_received), (0, 1));
    // media.allow: a block whose media may be latched besides the SDP address (Twilio's media range).
    let allow = crate::sip::allow::AllowList::parse("168.86.128.0/18").unwrap();
    let mut r = Run::new(SessionConfig { latch_allow: allow, ..config() }, stream(Codec::Pcmu, Direction::SendRecv));
    r.rtp(0, attacker, 0, 1, &[0x99; 160]);
    r.rtp(0, "168.86.130.7:10000".parse().unwrap(), 0, 1, &[0x11; 160]);
    assert_eq!((r.s.stats().refused_source, r.s.stats().rtp_received), (1, 1));
}

#[test]
fn before_the_callers_first_packet_a_few_go_to_the_sdp_address_then_it_waits() {
    let mut r = Run::new(config(), stream(Codec::Pcmu, Direction::SendRecv));
    let before: Vec<_> = (0..=150).flat_map(|k| r.sent(k * 20)).collect();
    assert_eq!(before.len(), PRE_LATCH_PACKETS as usize, "3 s with no RTP from the caller");
    assert!(before.iter().all(|p| p.4 == peer()));
    let natted: SocketAddr = "192.0.2.10:61000".parse().unwrap();
    r.rtp(3_000, natted, 0, 1, &[0x11; 160]);
    let after = r.sent(3_100);
    assert!(!after.is_empty() && after.iter().all(|p| p.4 == natted), "sending resumes to the latched source");
    // A new SDP address (re-INVITE) starts over: a few packets to it, then wait for its RTP.
    let moved: SocketAddr = "192.0.2.20:30000".parse().unwrap();
    r.s.update(r.at(3_100), Stream::sendrecv(Codec::Pcmu, moved));
    let next: Vec<_> = (156..=300).flat_map(|k| r.sent(k * 20)).collect();
    assert_eq!(next.len(), PRE_LATCH_PACKETS as usize);
    assert!(next.iter().all(|p| p.4 == moved));
}

#[test]
fn an_srtp_stream_is_decrypted_in_and_protected_out_and_forgeries_neither_play_nor_latch() {
    use crate::media::srtp::Srtp;
    use crate::sdp::sdes::{KEY_SALT_LEN, KeySalt, Suite};
    let (theirs, ours) = (KeySalt([4; KEY_SALT_LEN]), KeySalt([5; KEY_SALT_LEN]));
    let keys = SrtpKeys { suite: Suite::AesCm128HmacSha1_80, tag: 1, remote: theirs, local: ours };
    let mut r = Run::new(config(), Stream { srtp: Some(keys), ..stream(Codec::Pcmu, Direction::SendRecv) });
    // The peer: protects with its key, unprotects with ours.
    let mut phone = Srtp::new(SrtpKeys { remote: ours, local: theirs, ..keys });
    let protect = |phone: &mut Srtp, seq: u16, fill: u8| {
        let mut d = [0u8; 300];
        let payload = [fill; 160];
        let p = RtpPacket {
            marker: false,
            payload_type: 0,
            seq,
            timestamp: u32::from(seq) * 160,
            ssrc: 77,
            payload: &payload,
        };
        let n = rtp::build(&p, &mut d).unwrap();
        let n = phone.protect_rtp(&mut d, n).unwrap();
        d[..n].to_vec()
    };
    // A forgery (plain RTP, or SRTP under another key) from the peer's own IP (an attacker who can spoof it,
    // or sits behind the same NAT): dropped, counted, and not latched.
    let intruder: SocketAddr = "192.0.2.10:4000".parse().unwrap();
    r.rtp(0, intruder, 0, 1, &[0x99; 160]);
    let mut forger = Srtp::new(SrtpKeys { local: KeySalt([6; KEY_SALT_LEN]), ..keys });
    let forged = protect(&mut forger, 1, 0x98);
    r.s.handle_rtp(r.at(0), intruder, &forged);
    assert_eq!(r.s.stats().srtp_rejected, 2);
    for seq in 1..=3u16 {
        let packet = protect(&mut phone, seq, 0x10 + seq as u8);
        r.s.handle_rtp(r.at(u64::from(seq) * 20), peer(), &packet);
        if seq == 2 {
            r.s.handle_rtp(r.at(40), peer(), &packet);
        }
    }
    let frames = r.frames(60);
    assert_eq!(frames.iter().map(|f| f[0]).collect::<Vec<_>>(), vec![0x11, 0x12, 0x13]);
    let st = r.s.stats();
    assert_eq!((st.rtp_received, st.srtp_replayed, st.srtp_rejected, st.foreign), (3, 1, 2, 0));
    // Now latched: the intruder is foreign, not even decrypted.
    r.s.handle_rtp(r.at(60), intruder, &forged);
    assert_eq!(r.s.stats().foreign, 1);
    // What we send, the phone can read: SRTP (10-byte tag), and SRTCP.
    r.s.playout().push(&[0x44; FRAME_BYTES]);
    let now = r.at(5_100);
    let (mut rtp_seen, mut rtcp_seen) = (0, 0);
    while let Some(t) = r.s.poll_transmit(now, &mut r.buf) {
        let mut out = [0u8; 1500];
        if t.rtcp {
            let n = phone.unprotect_rtcp(&r.buf[..t.len], &mut out).expect("our SRTCP authenticates");
            assert!(n >= 8);
            rtcp_seen += 1;
        } else {
            assert_eq!(t.len, 12 + 160 + 10);
            let n = phone.unprotect_rtp(&r.buf[..t.len], &mut out).expect("our SRTP authenticates");
            assert_eq!(n, 12 + 160);
            rtp_seen += 1;
        }
    }
    assert!(rtp_seen > 0 && rtcp_seen == 1, "{rtp_seen} RTP, {rtcp_seen} RTCP");
}

#[test]
fn symmetric_rtp_answers_the_latched_source_not_the_sdp_address() {
    let natted: SocketAddr = "192.0.2.10:61000".parse().unwrap();
    let mut r = Run::new(config(), stream(Codec::Pcmu, Direction::SendRecv));
    assert_eq!(r.sent(0)[0].4, peer(), "before any RTP: the SDP address");
    r.rtp(10, natted, 0, 1, &[0x11; 160]);
    assert_eq!(r.sent(20)[0].4, natted);
    let mut r = Run::new(SessionConfig { symmetric: false, ..config() }, stream(Codec::Pcmu, Direction::SendRecv));
    r.rtp(10, natted, 0, 1, &[0x11; 160]);
    assert_eq!(r.sent(20)[0].4, peer(), "symmetric RTP off: always the SDP address");
}

#[test]
fn packets_go_out_every_20_ms_on_a_clock_that_does_not_drift_with_late_polls() {
    let mut r = Run::new(config(), stream(Codec::Pcmu, Direction::SendRecv));
    r.latch();
    let mut all = Vec::new();
    let mut deadlines = Vec::new();
    for k in 0..50u64 {
        // The driver wakes up to 7 ms late each time; ticks stay at k * 20 ms.
        deadlines.push(r.s.poll_timeout().min(r.at(k * 20 + 100)));
        all.extend(r.sent(k * 20 + k % 8));
    }
    assert_eq!(all.len(), 50);
    for (k, p) in all.iter().enumerate() {
        assert_eq!(p.1, 65534u16.wrapping_add(k as u16), "seq + 1 (wrapping)");
        assert_eq!(p.2, 1000 + 160 * k as u32, "timestamp + 160");
    }
    assert!(deadlines.iter().enumerate().skip(1).all(|(k, d)| *d <= r.at(k as u64 * 20)));
    assert_eq!(r.s.stats().sent_packets, 50);
}

#[test]
fn a_stalled_task_skips_ticks_instead_of_bursting() {
    let mut r = Run::new(config(), stream(Codec::Pcmu, Direction::SendRecv));
    r.latch();
    assert_eq!(r.sent(0).len(), 1);
    let after = r.sent(1000);
    assert!(after.len() <= 6, "{} packets burst", after.len());
    assert_eq!(after.last().unwrap().2, 1000 + 160 * 50, "the timestamp follows the real time");
    assert!(r.s.stats().skipped_ticks >= 40);
}

#[test]
fn a_send_tick_that_finds_the_reply_late_is_an_underrun_in_the_stats() {
    let mut r = Run::new(config(), stream(Codec::Pcmu, Direction::SendRecv));
    r.latch();
    // An echo in real time: each frame queued just before its tick.
    for k in 0..10u64 {
        r.s.playout().push(&[0x42; FRAME_BYTES]);
        assert_eq!(r.sent(k * 20).iter().map(|p| p.3).collect::<Vec<_>>(), [0x42], "tick {k}");
    }
    // One frame comes after its tick (a loaded CPU): the caller hears 20 ms of silence inside the spurt.
    assert_eq!(r.sent(200).iter().map(|p| p.3).collect::<Vec<_>>(), [0xFF]);
    r.s.playout().push(&[0x42; 2 * FRAME_BYTES]);
    assert_eq!(r.sent(240).len(), 2);
    let stats = r.s.stats();
    assert_eq!((stats.playout_underruns, stats.playout_underrun_ticks, stats.jitter.concealed), (1, 1, 0));
}

#[test]
fn agent_audio_is_sent_with_a_marker_on_each_talk_spurt_and_silence_between() {
    let mut r = Run::new(SessionConfig { send_silence: false, ..config() }, stream(Codec::Pcmu, Direction::SendRecv));
    assert!(r.sent(0).is_empty(), "nothing to say, no silence frames: the stream pauses");
    r.s.playout().push(&[0x42; 320]);
    let spurt = r.sent(40);
    assert_eq!(spurt.iter().map(|p| (p.0, p.3)).collect::<Vec<_>>(), vec![(true, 0x42), (false, 0x42)]);
    assert_eq!(spurt[1].2 - spurt[0].2, 160);
    let mut r = Run::new(config(), stream(Codec::Pcmu, Direction::SendRecv));
    assert_eq!(r.sent(0)[0].3, 0xFF, "silence frames keep the stream continuous");
}

#[test]
fn a_pcma_call_is_transcoded_to_and_from_the_agents_mulaw() {
    let mut r = Run::new(config(), stream(Codec::Pcma, Direction::SendRecv));
    let alaw = g711::alaw_encode(1000);
    r.rtp(0, peer(), 8, 1, &[alaw; 160]);
    let frame = r.frames(0)[0];
    assert_eq!(frame[0], g711::ulaw_encode(g711::alaw_decode(alaw)));
    r.s.playout().push(&[g711::ulaw_encode(-2000); 160]);
    let sent = r.sent(20);
    assert_eq!(sent[0].3, g711::alaw_encode(g711::ulaw_decode(g711::ulaw_encode(-2000))));
}

#[test]
fn on_hold_nothing_is_sent_and_silence_does_not_time_the_call_out() {
    let mut r = Run::new(config(), stream(Codec::Pcmu, Direction::RecvOnly));
    r.s.playout().push(&[0x42; 1600]);
    assert!(r.sent(200).is_empty());
    r.s.handle_timeout(r.at(60_000));
    assert_eq!(r.s.poll_end(), None);
    // Resumed: the media timeout runs from the resume.
    r.s.update(r.at(60_000), stream(Codec::Pcmu, Direction::SendRecv));
    r.s.handle_timeout(r.at(89_000));
    assert_eq!(r.s.poll_end(), None);
    assert!(r.s.poll_timeout() <= r.at(90_000));
    r.s.handle_timeout(r.at(90_000));
    assert_eq!(r.s.poll_end(), Some(MediaEnd::Timeout(Duration::from_secs(30))));
    r.s.handle_timeout(r.at(200_000));
    assert_eq!(r.s.poll_end(), None, "asked once");
}

#[test]
fn rtp_keeps_the_media_timeout_away() {
    let mut r = Run::new(config(), stream(Codec::Pcmu, Direction::SendRecv));
    r.rtp(25_000, peer(), 0, 1, &[0; 160]);
    r.s.handle_timeout(r.at(50_000));
    assert_eq!(r.s.poll_end(), None);
    r.s.handle_timeout(r.at(55_000));
    assert!(r.s.poll_end().is_some());
}

#[test]
fn dtmf_between_audio_gives_one_digit_and_no_wait_or_concealment() {
    let mut r = Run::new(config(), stream(Codec::Pcmu, Direction::SendRecv));
    let mut frames = Vec::new();
    // 10 audio packets, a digit (3 updates and the end packet three times, on the same SSRC and sequence
    // numbers), 10 audio packets; each frame is handed off the moment its packet arrives.
    for seq in 1..=26u16 {
        let ms = u64::from(seq) * 20;
        if (11..=16).contains(&seq) {
            let end = if seq >= 14 { 0x80 } else { 0 };
            let duration = 160 * (seq - 10).min(4);
            let payload = [7, end, (duration >> 8) as u8, duration as u8];
            let mut d = [0u8; 64];
            let p =
                RtpPacket { marker: seq == 11, payload_type: 101, seq, timestamp: 1760, ssrc: 77, payload: &payload };
            let n = rtp::build(&p, &mut d).unwrap();
            r.s.handle_rtp(r.at(ms), peer(), &d[..n]);
        } else {
            r.rtp(ms, peer(), 0, seq, &[0x10; 160]);
        }
        frames.extend(r.frames(ms));
    }
    assert_eq!(frames.len(), 26);
    assert_eq!(frames.iter().filter(|f| f[0] == 0xFF).count(), 6, "the digit's frames are silence");
    assert_eq!(r.s.stats().jitter.concealed, 0);
    assert_eq!(r.s.poll_digit().map(|d| d.digit), Some('7'));
    assert_eq!(r.s.poll_digit(), None);
}

#[test]
fn reports_go_to_the_rtcp_port_as_sr_once_we_send() {
    let mut r = Run::new(config(), stream(Codec::Pcmu, Direction::SendRecv));
    let mut rtcp = Vec::new();
    let mut t = 0;
    while t <= 10_000 {
        while let Some(x) = r.s.poll_transmit(r.at(t), &mut r.buf) {
            if x.rtcp {
                rtcp.push((t, x.to, r.buf[1]));
            }
        }
        t += 20;
    }
    assert_eq!(rtcp.len(), 2, "{rtcp:?}");
    assert_eq!(rtcp[0].0, 5000);
    assert_eq!(rtcp[0].1, "192.0.2.10:30001".parse().unwrap());
    assert_eq!(rtcp[0].2, 200, "a sender report");
}

#[test]
fn in_order_frames_are_handed_off_the_moment_they_arrive() {
    let mut r = Run::new(config(), stream(Codec::Pcmu, Direction::SendRecv));
    for seq in 1..=100u16 {
        r.rtp(u64::from(seq) * 20, peer(), 0, seq, &[1; 160]);
        assert_eq!(r.frames(u64::from(seq) * 20).len(), 1);
    }
    let st = r.s.stats();
    assert_eq!(st.handoff_p99, Duration::from_micros(100), "the first bin");
}

#[test]
fn one_way_and_no_audio_are_told_apart_with_their_fix() {
    // Two-way: the caller's RTP within 2 s of the answer, and ours going out.
    let mut r = Run::new(config(), stream(Codec::Pcmu, Direction::SendRecv));
    r.s.answered(r.at(1_000));
    r.rtp(2_500, peer(), 0, 1, &[0x11; 160]);
    r.sent(2_520);
    let st = r.s.stats();
    assert_eq!(st.first_rtp_after, Some(Duration::from_millis(1_500)));
    assert_eq!(AudioPath::of(&st), AudioPath::TwoWay);
    assert_eq!(AudioPath::TwoWay.fix(), None);
    // The caller's RTP never came (a firewall, a wrong media.public_ip): we sent, it did not.
    let mut r = Run::new(config(), stream(Codec::Pcmu, Direction::SendRecv));
    r.sent(0);
    let path = AudioPath::of(&r.s.stats());
    assert_eq!((path, path.as_str()), (AudioPath::NoneFromCaller, "no_audio_from_caller"));
    assert!(path.fix().unwrap().contains("media.public_ip"));
    // ... or came only after 2 s: the first seconds were one-way.
    r.rtp(3_000, peer(), 0, 1, &[0x11; 160]);
    assert_eq!(AudioPath::of(&r.s.stats()), AudioPath::NoneFromCaller);
    // On hold throughout: nothing sent; with nothing received either, no audio at all.
    let r = Run::new(config(), stream(Codec::Pcmu, Direction::RecvOnly));
    assert_eq!(AudioPath::of(&r.s.stats()), AudioPath::NoAudio);
    let mut r = Run::new(config(), stream(Codec::Pcmu, Direction::RecvOnly));
    r.rtp(100, peer(), 0, 1, &[0x11; 160]);
    assert_eq!(AudioPath::of(&r.s.stats()), AudioPath::NoneToCaller);
}

/// Every recorded stereo frame so far: (left's first byte, right's first byte).
fn recorded(r: &mut Run) -> Vec<(u8, u8)> {
    let mut out = Vec::new();
    let mut f = StereoFrame::default();
    while r.s.poll_recorded(&mut f) {
        assert!(f.left.iter().all(|b| *b == f.left[0]) && f.right.iter().all(|b| *b == f.right[0]), "whole frames");
        out.push((f.left[0], f.right[0]));
    }
    out
}

#[test]
fn a_recording_pairs_both_parties_on_the_send_clock_and_records_hold_and_clear_as_heard() {
    let mut r = Run::new(config(), stream(Codec::Pcmu, Direction::SendRecv));
    r.s.record();
    r.latch();
    r.sent(0);
    // The caller says 0x11 then 0x22; the agent answers 0x33 for the next three ticks (20, 40, 60 ms).
    r.rtp(20, peer(), 0, 1, &[0x11; 160]);
    r.rtp(40, peer(), 0, 2, &[0x22; 160]);
    r.frames(40);
    r.s.playout().push(&[0x33; 480]);
    r.sent(60);
    let got = recorded(&mut r);
    // One stereo frame a tick (0, 20, 40, 60 ms), from the first tick; the caller's frames in order beside
    // what was sent at the same tick: within one frame of each other.
    assert_eq!(got.len(), 4, "{got:x?}");
    let lefts: Vec<u8> = got.iter().map(|g| g.0).filter(|b| *b != crate::media::recording::SILENCE).collect();
    assert_eq!(lefts, [0x11, 0x22]);
    assert_eq!(got.iter().map(|g| g.1).collect::<Vec<_>>(), [crate::media::recording::SILENCE, 0x33, 0x33, 0x33]);
    // `clear` mid-utterance: what was never sent is never recorded.
    r.s.playout().clear();
    r.sent(120);
    let after = recorded(&mut r);
    assert_eq!(after.len(), 3);
    assert!(
        after.iter().all(|g| g.1 == crate::media::recording::SILENCE),
        "the right channel stops where playout stopped: {after:x?}"
    );
    // On hold (we do not send): the agent's audio is not heard, so silence is recorded, and the clock runs on.
    r.s.playout().push(&[0x44; 320]);
    r.s.update(r.at(120), stream(Codec::Pcmu, Direction::RecvOnly));
    r.sent(200);
    let held = recorded(&mut r);
    assert_eq!(held.len(), 4);
    assert!(held.iter().all(|g| g.1 == crate::media::recording::SILENCE), "{held:x?}");
    assert_eq!(r.s.recorded(), Some((11, 0)));
}

#[test]
fn a_call_not_recorded_makes_no_tape() {
    let mut r = Run::new(config(), stream(Codec::Pcmu, Direction::SendRecv));
    r.latch();
    r.s.playout().push(&[0x33; 320]);
    r.sent(40);
    assert!(recorded(&mut r).is_empty());
    assert_eq!(r.s.recorded(), None);
}

#[test]
fn a_talk_spurt_after_silence_goes_out_at_once_on_a_rephased_clock_and_then_every_20_ms() {
    let mut r = Run::new(config(), stream(Codec::Pcmu, Direction::SendRecv));
    r.latch();
    // 100 ms of silence sent (ticks at 0..=100).
    let silence = r.sent(100);
    let (last_seq, last_ts) = (silence.last().unwrap().1, silence.last().unwrap().2);
    // The agent's reply lands 7 ms after the last tick: it goes out now, not 13 ms later, with the marker and
    // the timestamp 7 ms (56 samples) on.
    r.s.playout().push(&[0x33; 480]);
    let now = r.sent(107);
    assert_eq!(now.len(), 1, "{now:?}");
    let (marker, seq, ts, byte, _) = now[0];
    assert_eq!((marker, seq, ts, byte), (true, last_seq.wrapping_add(1), last_ts.wrapping_add(56), 0x33));
    assert_eq!(r.s.stats().rephased, 1);
    // Then exactly every 20 ms from there, 160 samples apart, and nothing early.
    assert!(r.sent(126).is_empty());
    let next = r.sent(127);
    assert_eq!(next.iter().map(|p| (p.0, p.2)).collect::<Vec<_>>(), [(false, ts.wrapping_add(160))]);
    // More audio inside the spurt does not move the clock.
    r.s.playout().push(&[0x34; 480]);
    assert!(r.sent(140).is_empty(), "within a spurt, pacing stays 20 ms");
    assert_eq!(r.sent(147).len(), 1);
    assert_eq!(r.s.stats().rephased, 1);
}

#[test]
fn a_recording_keeps_wall_clock_time_when_the_send_clock_rephases() {
    use crate::media::recording::SILENCE;
    let mut r = Run::new(config(), stream(Codec::Pcmu, Direction::SendRecv));
    r.s.record();
    r.latch();
    let mut lefts = Vec::new();
    let mut rights = Vec::new();
    let mut take = |r: &mut Run| {
        for (l, rt) in recorded(r) {
            lefts.push(l);
            rights.push(rt);
        }
    };
    // 20 s: the caller speaks every 20 ms (a byte per frame that counts up), and every 500 ms the agent starts
    // a 100 ms reply somewhere between two ticks, so each reply re-phases the send clock.
    let mut spurts = 0;
    for ms in 0..=20_000u64 {
        if ms % 20 == 3 {
            let seq = (ms / 20) as u16 + 1;
            r.rtp(ms, peer(), 0, seq, &[(seq % 100) as u8 + 1; 160]);
        }
        r.frames(ms);
        if ms % 500 == 250 + (ms / 500 * 7) % 19 && ms < 19_500 {
            r.s.playout().push(&[0xA0 + (spurts % 16) as u8; 800]);
            spurts += 1;
        }
        r.sent(ms);
        take(&mut r);
    }
    let st = r.s.stats();
    assert_eq!(st.rephased, spurts, "each reply re-phased the clock");
    // The tape kept wall-clock time: one frame per 20 ms from the first tick, whatever the send clock did (the
    // slot at 20,000 ms opens with the first tick from then, which the re-phases may have put just after).
    let (frames, overruns) = r.s.recorded().unwrap();
    assert!((1000..=1001).contains(&frames) && overruns == 0, "{frames} frames, {overruns} overruns");
    assert_eq!(lefts.len() as u64, frames);
    // The caller's channel never slipped: once speech starts, every frame is the next one, no silence between.
    let first = lefts.iter().position(|b| *b != SILENCE).unwrap();
    let speech: Vec<u8> = lefts[first..].to_vec();
    for (i, w) in speech.windows(2).enumerate() {
        assert_eq!(w[1], w[0] % 100 + 1, "the caller's frame {i} was followed by {:x} ({speech:x?})", w[1]);
    }
    // Every reply is on the tape whole (five frames in a row), at most a frame from where it went out.
    let mut at = 0;
    for k in 0..spurts {
        let byte = 0xA0 + (k % 16) as u8;
        let start = rights[at..].iter().position(|b| *b == byte).unwrap() + at;
        assert_eq!(&rights[start..start + 5], &[byte; 5], "reply {k}");
        let sent_ms = 500 * k + 250 + (k * 7) % 19;
        assert!((start as u64 * 20).abs_diff(sent_ms) <= 20, "reply {k} sent at {sent_ms} ms, taped at slot {start}");
        at = start + 5;
    }
}
