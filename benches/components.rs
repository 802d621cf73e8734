//! The pieces of a call's hot paths, one by one: an INVITE through the endpoint (parse, transaction, 100
//! Trying, the call event, the 404 the call layer answers an unknown number with), G.711 for one 20 ms frame,
//! the jitter buffer's push and pop per packet, the agent frames either way (JSON + base64), and SRTP
//! protecting and unprotecting one packet, and a number's routing rules deciding a call's agent.

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use vocals::agent::protocol::StartInfo;
use vocals::agent::session::AgentSession;
use vocals::media::g711;
use vocals::media::jitter::{JitterBuffer, JitterConfig, Packet};
use vocals::media::playout::{FRAME_BYTES, PlayoutQueue};
use vocals::media::rtp::{self, RtpPacket};
use vocals::media::srtp::Srtp;
use vocals::sdp::SrtpKeys;
use vocals::sdp::sdes::{KEY_SALT_LEN, KeySalt, Suite};
use vocals::sip::endpoint::{Endpoint, EndpointConfig, Event, IdGen, Output, Peer, Transport};
use vocals::sip::message::StatusCode;
use vocals::sip::ratelimit::RateConfig;

const INVITE: &[u8] = include_bytes!("../sip-tests/vectors/twilio/twilio-invite-udp.sip");

fn endpoint(c: &mut Criterion) {
    let peer = Peer {
        addr: "54.244.51.1:5060".parse::<SocketAddr>().unwrap(),
        local: "127.0.0.1:5060".parse().unwrap(),
        transport: Transport::Udp,
        conn: None,
    };
    let now = Instant::now();
    let bytes = Bytes::copy_from_slice(INVITE);
    // What one iteration does: the INVITE in, 100 Trying and 404 out.
    let run = |mut ep: Endpoint| {
        ep.handle(now, peer, black_box(bytes.clone()));
        let mut sent = Vec::new();
        while let Some(out) = ep.poll_output() {
            match out {
                Output::Transmit { bytes, .. } => sent.push(bytes),
                Output::Event(Event::IncomingCall { call, .. }) => {
                    ep.reject(now, call, StatusCode::NOT_FOUND, "Not Found", &[]);
                }
                Output::Event(_) => {}
            }
        }
        (ep, sent)
    };
    // `[sip]`'s defaults without the per-source rate limits.
    let unlimited = RateConfig::default();
    let config = EndpointConfig {
        rate: unlimited.clone(),
        request_rate: unlimited,
        ..vocals::config::SipConfig::default().endpoint()
    };
    let fresh = || Endpoint::new(config.clone(), IdGen::new(7));
    let (_, sent) = run(fresh());
    let statuses: Vec<&[u8]> = sent.iter().map(|b| &b[..11]).collect();
    assert_eq!(statuses, [&b"SIP/2.0 100"[..], b"SIP/2.0 404"], "the benched path answers");
    c.bench_function("endpoint/invite_to_100_trying_and_404", |b| b.iter_batched(fresh, run, BatchSize::SmallInput));
}

fn g711(c: &mut Criterion) {
    let pcm: Vec<i16> = (0..FRAME_BYTES as i16).map(|i| (i - 80) * 300).collect();
    let mut out = [0u8; FRAME_BYTES];
    c.bench_function("g711/ulaw_encode_frame", |b| {
        b.iter(|| {
            for (o, s) in out.iter_mut().zip(black_box(&pcm)) {
                *o = g711::ulaw_encode(*s);
            }
            black_box(out[0])
        })
    });
    let codes: Vec<u8> = (0..FRAME_BYTES).map(|i| i as u8).collect();
    let mut samples = [0i16; FRAME_BYTES];
    c.bench_function("g711/alaw_decode_frame", |b| {
        b.iter(|| {
            for (s, code) in samples.iter_mut().zip(black_box(&codes)) {
                *s = g711::alaw_decode(*code);
            }
            black_box(samples[0])
        })
    });
}

fn jitter(c: &mut Criterion) {
    let config = JitterConfig {
        audio_pt: 0,
        event_pt: Some(101),
        silence: 0xFF,
        min_wait: Duration::from_millis(10),
        max_wait: Duration::from_millis(60),
    };
    let mut jb = JitterBuffer::new(config);
    let start = Instant::now();
    let payload = [0x55u8; FRAME_BYTES];
    let mut out = [0u8; FRAME_BYTES];
    let mut k: u64 = 0;
    c.bench_function("jitter/push_and_pop_in_order", |b| {
        b.iter(|| {
            k += 1;
            let now = start + Duration::from_millis(20 * k);
            let p = Packet { ssrc: 1, seq: k as u16, timestamp: (k * 160) as u32, payload_type: 0, payload: &payload };
            jb.push(now, black_box(&p));
            black_box(jb.pop(now, &mut out))
        })
    });
}

fn agent_frames(c: &mut Criterion) {
    let mut session = AgentSession::new(StartInfo { stream_sid: "MZ1".into(), ..StartInfo::default() });
    let start = Instant::now();
    let audio = [0x7Fu8; FRAME_BYTES];
    c.bench_function("agent/encode_media_frame", |b| b.iter(|| black_box(session.frame(start, black_box(&audio)))));
    let text = session.frame(start, &audio);
    let mut queue = PlayoutQueue::new(1000, 0xFF);
    assert_eq!(session.on_text(&text, &mut queue), Ok(None), "the benched frame is accepted");
    assert_eq!(queue.queued_ms(), 20);
    let mut frame = [0u8; FRAME_BYTES];
    c.bench_function("agent/decode_media_frame", |b| {
        b.iter(|| {
            let r = session.on_text(black_box(&text), &mut queue);
            queue.next_frame(&mut frame);
            black_box(r.is_ok())
        })
    });
}

fn srtp(c: &mut Criterion) {
    let keys = SrtpKeys {
        suite: Suite::AesCm128HmacSha1_80,
        tag: 1,
        remote: KeySalt([1; KEY_SALT_LEN]),
        local: KeySalt([2; KEY_SALT_LEN]),
    };
    let mut us = Srtp::new(keys);
    let mut them = Srtp::new(SrtpKeys { remote: keys.local, local: keys.remote, ..keys });
    let payload = [0x55u8; FRAME_BYTES];
    let mut buf = [0u8; 1500];
    let mut plain = [0u8; 1500];
    let mut k: u16 = 0;
    c.bench_function("srtp/protect_and_unprotect_packet", |b| {
        b.iter(|| {
            k = k.wrapping_add(1);
            let p = RtpPacket {
                marker: false,
                payload_type: 0,
                seq: k,
                timestamp: u32::from(k) * 160,
                ssrc: 3,
                payload: &payload,
            };
            let n = rtp::build(&p, &mut buf).unwrap();
            let n = us.protect_rtp(&mut buf, n).unwrap();
            black_box(them.unprotect_rtp(&buf[..n], &mut plain).unwrap())
        })
    });
}

/// A number's routing decision at INVITE time (issue 26): no rules (the number's agent, as today) against 32
/// rules none of which matches (every schedule and caller checked: the worst case).
fn routing_rules(c: &mut Criterion) {
    use vocals::routing::rules::{Caller, Rules};
    let rules: Vec<serde_json::Value> = (0..32)
        .map(|i| match i % 3 {
            0 => {
                serde_json::json!({"when": {"zone": "America/New_York", "days": ["sat"], "from": "18:00", "to": "08:00",
                                    "dates": ["2027-12-24/2027-12-26"]}, "agent_id": "a"})
            }
            1 => serde_json::json!({"when": {"zone": "Europe/Berlin", "days": ["sun"], "from": "02:00", "to": "02:30"},
                                    "agent_id": "a"}),
            _ => serde_json::json!({"caller": ["+44", "+353", "+61"], "agent_id": null}),
        })
        .collect();
    let rules = Rules::parse(&serde_json::Value::Array(rules), |_| true).unwrap();
    let none = Rules::default();
    let at: jiff::Timestamp = "2027-03-10T15:00:00Z".parse().unwrap();
    let caller = Caller::Number("+12125550100");
    let mut g = c.benchmark_group("routing_rules");
    g.bench_function("none", |b| b.iter(|| black_box(none.decide(black_box(at), caller))));
    g.bench_function("32_rules_none_matching", |b| b.iter(|| black_box(rules.decide(black_box(at), caller))));
    g.finish();
    // The whole routing of a Twilio INVITE (dialed number, caller, table decision, account check): a number
    // without rules, as before issue 26, against the same number with the 32 rules.
    use std::sync::Arc;
    use vocals::routing::{NumberRules, NumberTable, route};
    use vocals::sip::message::Message;
    let invite = match Message::parse(include_bytes!("../sip-tests/vectors/twilio/twilio-invite-udp.sip").to_vec()) {
        Ok(Message::Request(r)) => r,
        _ => unreachable!("the fixture is an INVITE"),
    };
    let number = vocals::e164::E164::parse("+14155550123").unwrap();
    let agent = Arc::new(vocals::agent::config::AgentConfig { id: "a".into(), ..Default::default() });
    let mut plain = NumberTable::new();
    plain.insert(number.clone(), Some(agent.clone()), Some("ACbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb".into()));
    let mut ruled = plain.clone();
    let list: Vec<serde_json::Value> = (0..32)
        .map(|i| match i % 3 {
            0 => serde_json::json!({"when": {"zone": "America/New_York", "days": ["sat"], "from": "18:00",
                                    "to": "08:00", "dates": ["2027-12-24/2027-12-26"]}, "agent_id": "a"}),
            1 => serde_json::json!({"when": {"zone": "Europe/Berlin", "days": ["sun"], "from": "02:00",
                                    "to": "02:30"}, "agent_id": "a"}),
            _ => serde_json::json!({"caller": ["+44", "+353", "+61"], "agent_id": null}),
        })
        .collect();
    ruled.set_rules(&number, Some(NumberRules::new(&serde_json::Value::Array(list), |_| Some(agent.clone())).unwrap()));
    let mut g = c.benchmark_group("route_invite");
    g.bench_function("no_rules", |b| b.iter(|| black_box(route(black_box(&invite), &plain, at).is_ok())));
    g.bench_function("32_rules_none_matching", |b| b.iter(|| black_box(route(black_box(&invite), &ruled, at).is_ok())));
    g.finish();
}

criterion_group!(benches, endpoint, g711, jitter, agent_frames, srtp, routing_rules);
criterion_main!(benches);
