//! Zero heap allocations per packet in steady state, under a counting global allocator: the media pieces on
//! their own (jitter buffer push/pop, G.711 decode and encode, playout framing, DTMF receiver), and a call's
//! whole per-packet path through its session (RTP parse -> latch/PT check -> jitter -> A-law/μ-law transcode
//! -> echo -> 20 ms tick -> RTP build). RTCP, every few seconds, is not per packet and is left out. The
//! tests take turns, and only the measuring thread's allocations are counted.

use std::alloc::{GlobalAlloc, Layout, System};
use std::time::{Duration, Instant};

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::SystemTime;
use vocals::media::dtmf::DtmfReceiver;
use vocals::media::g711;
use vocals::media::jitter::{JitterBuffer, JitterConfig, Packet};
use vocals::media::playout::{FRAME_BYTES, PlayoutQueue};
use vocals::media::rtp::{self, RtpPacket};
use vocals::media::session::{Session, SessionConfig, Stream};
use vocals::sdp::Codec;

/// The tests take turns (each counts on its own thread; one at a time keeps the figures quiet).
static SERIAL: Mutex<()> = Mutex::new(());

struct Counting;

thread_local! {
    /// Only the measuring test's own thread counts, into a counter of its own: the test harness allocates on
    /// its threads meanwhile (to report the other test, or finishing it on that test's thread after its
    /// turn), which is not the media path.
    static COUNTED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    static ALLOCATIONS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

fn count() {
    if COUNTED.try_with(|c| c.get()).unwrap_or(false) {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
    }
}

/// This thread's allocations since it started counting.
fn allocations() -> u64 {
    ALLOCATIONS.with(|n| n.get())
}

/// Counts this thread's allocations from now on.
fn count_this_thread() {
    COUNTED.with(|c| c.set(true));
}

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn the_per_packet_media_path_allocates_nothing_in_steady_state() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let config = JitterConfig {
        audio_pt: 0,
        event_pt: Some(101),
        silence: 0xFF,
        min_wait: Duration::from_millis(10),
        max_wait: Duration::from_millis(100),
    };
    let mut jitter = JitterBuffer::new(config);
    let mut playout = PlayoutQueue::new(2_000, 0xFF);
    // Agent audio queued ahead (the downlink frames it every 20 ms below).
    playout.push(&[0x55; 16_000]);
    let mut dtmf = DtmfReceiver::new();
    let start = Instant::now();
    let mut frame = [0u8; FRAME_BYTES];
    let mut linear = [0i16; FRAME_BYTES];
    let mut packet = [0u8; FRAME_BYTES];
    let mut run = |from: u32, to: u32| {
        for seq in from..to {
            let now = start + Duration::from_millis(u64::from(seq) * 20);
            // Uplink: packet in, frame out, decoded for the agent (every 97th packet lost).
            let seq16 = seq as u16;
            if seq % 97 == 0 {
                continue;
            }
            for (i, b) in packet.iter_mut().enumerate() {
                *b = g711::ulaw_encode((i as i16 - 80) * 100);
            }
            let p = Packet { ssrc: 9, seq: seq16, timestamp: seq * 160, payload_type: 0, payload: &packet };
            jitter.push(now, &p);
            while jitter.pop(now + Duration::from_millis(15), &mut frame).is_some() {
                for (l, &c) in linear.iter_mut().zip(frame.iter()) {
                    *l = g711::ulaw_decode(c);
                }
            }
            // Telephone-event packets go to the DTMF receiver.
            dtmf.on_packet(seq * 160, &[5, if seq % 3 == 0 { 0x80 } else { 0 }, 0, 160]);
            while dtmf.poll_digit().is_some() {}
            // Downlink: agent audio (already queued) framed every 20 ms.
            playout.next_frame(&mut frame);
        }
    };
    // Warm up: every buffer reaches its steady size.
    run(0, 1_000);
    count_this_thread();
    let before = allocations();
    run(1_000, 6_000);
    let allocated = allocations() - before;
    assert_eq!(allocated, 0, "{allocated} allocations in 5,000 packets of steady state");
    // The counter does count: one deliberate allocation shows.
    let probe = std::hint::black_box(Vec::<u8>::with_capacity(64));
    assert!(allocations() > before, "the counting allocator is not in use");
    drop(probe);
}

#[test]
fn a_calls_session_allocates_nothing_per_packet_in_steady_state() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let peer: SocketAddr = "192.0.2.10:30000".parse().unwrap();
    let stream = Stream::sendrecv(Codec::Pcma, peer);
    // RTCP (every few seconds, not per packet) is kept out of the count.
    let config = SessionConfig { rtcp_interval: Duration::from_secs(86_400), ..SessionConfig::default() };
    let start = Instant::now();
    let mut s = Session::new(start, SystemTime::now(), config, stream);
    let payload: Vec<u8> = (0..FRAME_BYTES).map(|i| g711::alaw_encode((i as i16 - 80) * 90)).collect();
    let (mut datagram, mut out, mut frame) = ([0u8; 200], [0u8; 1500], [0u8; FRAME_BYTES]);
    let mut run = |from: u64, to: u64| {
        for k in from..to {
            let now = start + Duration::from_millis(20 * k);
            // Every 50th packet lost, every 30th a DTMF event packet on the same sequence numbers.
            if k % 50 != 7 {
                let (pt, body): (u8, &[u8]) = if k % 30 == 0 { (101, &[5, 0x80, 0, 160]) } else { (8, &payload) };
                let p = RtpPacket {
                    marker: false,
                    payload_type: pt,
                    seq: k as u16,
                    timestamp: (k * 160) as u32,
                    ssrc: 7,
                    payload: body,
                };
                let n = rtp::build(&p, &mut datagram).unwrap();
                s.handle_rtp(now, peer, &datagram[..n]);
            }
            for t in [now, now + Duration::from_millis(15)] {
                while s.poll_frame(t, &mut frame).is_some() {
                    s.playout().push(&frame);
                }
            }
            while s.poll_digit().is_some() {}
            while s.poll_transmit(now, &mut out).is_some() {}
        }
    };
    run(0, 1_000);
    count_this_thread();
    let before = allocations();
    run(1_000, 6_000);
    let allocated = allocations() - before;
    assert_eq!(allocated, 0, "{allocated} allocations in 5,000 packets through a call's session");
    assert!(s.stats().sent_packets >= 5_900 && s.stats().jitter.concealed >= 100, "{:?}", s.stats());
}

#[test]
fn a_recorded_calls_session_and_its_recording_allocate_nothing_per_packet() {
    use vocals::io::recording::{QUEUE, Recordings};
    use vocals::media::recording::{RecordFormat, StereoFrame};
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = std::env::temp_dir().join(format!("vocals-alloc-rec-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    // The writer thread (its own allocations are not counted: it is not the media path) and one recording.
    let recordings = Recordings::start(dir.clone(), RecordFormat::Pcm16, None, QUEUE).unwrap();
    let mut recording = recordings.open("vc_alloc").unwrap();
    let peer: SocketAddr = "192.0.2.10:30000".parse().unwrap();
    let config = SessionConfig { rtcp_interval: Duration::from_secs(86_400), ..SessionConfig::default() };
    let start = Instant::now();
    let mut s = Session::new(start, SystemTime::now(), config, Stream::sendrecv(Codec::Pcmu, peer));
    s.record();
    let payload: Vec<u8> = (0..FRAME_BYTES).map(|i| g711::ulaw_encode((i as i16 - 80) * 90)).collect();
    let (mut datagram, mut out, mut frame) = ([0u8; 200], [0u8; 1500], [0u8; FRAME_BYTES]);
    let mut stereo = StereoFrame::default();
    let mut run = |from: u64, to: u64| {
        for k in from..to {
            let now = start + Duration::from_millis(20 * k);
            let p = RtpPacket {
                marker: false,
                payload_type: 0,
                seq: k as u16,
                timestamp: (k * 160) as u32,
                ssrc: 7,
                payload: &payload,
            };
            let n = rtp::build(&p, &mut datagram).unwrap();
            s.handle_rtp(now, peer, &datagram[..n]);
            for t in [now, now + Duration::from_millis(15)] {
                while s.poll_frame(t, &mut frame).is_some() {
                    s.playout().push(&frame);
                }
            }
            while s.poll_transmit(now, &mut out).is_some() {}
            while s.poll_recorded(&mut stereo) {
                recording.frame(&stereo);
            }
        }
    };
    run(0, 1_000);
    count_this_thread();
    let before = allocations();
    run(1_000, 6_000);
    let allocated = allocations() - before;
    assert_eq!(allocated, 0, "{allocated} allocations in 5,000 packets of a recorded call");
    assert_eq!(s.recorded().map(|(frames, _)| frames >= 5_900), Some(true), "{:?}", s.recorded());
    recording.close();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Routing rules (issue 26): deciding a call's agent among 32 rules, none matching (the worst case: every
/// schedule and caller checked), allocates nothing.
#[test]
fn deciding_among_32_routing_rules_allocates_nothing() {
    use vocals::routing::rules::{Caller, Decision, Rules};
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let rules: Vec<serde_json::Value> = (0..32)
        .map(|i| match i % 3 {
            0 => {
                serde_json::json!({"when": {"zone": "America/New_York", "days": ["sat"], "from": "18:00", "to": "08:00",
                                    "dates": ["2027-12-24/2027-12-26"]}, "agent_id": "a"})
            }
            1 => {
                serde_json::json!({"when": {"zone": "Europe/Berlin", "from": "02:00", "to": "02:30"}, "agent_id": "a"})
            }
            _ => serde_json::json!({"caller": ["+44", "+353", "+61"], "agent_id": null}),
        })
        .collect();
    let rules = Rules::parse(&serde_json::Value::Array(rules), |_| true).unwrap();
    let start: jiff::Timestamp = "2027-03-10T15:00:00Z".parse().unwrap();
    let caller = Caller::Number("+12125550100");
    assert_eq!(rules.decide(start, caller), Decision::Default);
    count_this_thread();
    let before = allocations();
    let mut t = start;
    for _ in 0..10_000 {
        let _ = std::hint::black_box(rules.decide(t, caller));
        t = t.checked_add(jiff::SignedDuration::from_secs(7)).unwrap();
    }
    assert_eq!(allocations() - before, 0, "a routing decision allocated");
}

/// Routing a whole INVITE (issue 26): the dialed number, the caller read from From, the table's decision
/// with 32 rules and the account check allocate exactly what routing the same INVITE to a number without
/// rules does.
#[test]
fn routing_an_invite_with_32_rules_allocates_no_more_than_without() {
    use std::sync::Arc;
    use vocals::agent::config::AgentConfig;
    use vocals::e164::E164;
    use vocals::routing::{NumberRules, NumberTable, route};
    use vocals::sip::message::{Message, Request};
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let invite: Request = match Message::parse(include_bytes!("vectors/twilio/twilio-invite-udp.sip").to_vec()) {
        Ok(Message::Request(r)) => r,
        _ => panic!("the fixture is an INVITE"),
    };
    let number = E164::parse("+14155550123").unwrap();
    let agent = Arc::new(AgentConfig { id: "a".into(), name: "a".into(), ..AgentConfig::default() });
    let table = |rules: bool| {
        let mut t = NumberTable::new();
        t.insert(number.clone(), Some(agent.clone()), Some("ACbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb".into()));
        if rules {
            let list: Vec<serde_json::Value> = (0..32)
                .map(|i| match i % 2 {
                    0 => serde_json::json!({"when": {"zone": "Europe/Berlin", "from": "02:00", "to": "02:30"},
                                            "agent_id": "a"}),
                    _ => serde_json::json!({"caller": ["+44", "+353"], "agent_id": null}),
                })
                .collect();
            let rules = NumberRules::new(&serde_json::Value::Array(list), |_| Some(agent.clone())).unwrap();
            t.set_rules(&number, Some(rules));
        }
        t
    };
    let (plain, ruled) = (table(false), table(true));
    let at: jiff::Timestamp = "2027-03-10T15:00:00Z".parse().unwrap();
    let measure = |t: &NumberTable| {
        let _ = route(&invite, t, at).unwrap();
        count_this_thread();
        let before = allocations();
        for _ in 0..1_000 {
            let _ = std::hint::black_box(route(&invite, t, at).unwrap());
        }
        allocations() - before
    };
    let (without, with) = (measure(&plain), measure(&ruled));
    assert_eq!(with, without, "32 rules: {with} allocations in 1,000 INVITEs routed, {without} without rules");
}
