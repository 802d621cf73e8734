//! Call insight as an engineer uses it: a SIPp call, then its SIP ladder (`GET /v1/calls/{id}/sip`) and its
//! quality timeline (`GET /v1/calls/{id}/timeline`) read back and checked against what SIPp logged on the
//! wire; HEPv3 packets caught by a UDP listener standing in for Homer, decoded and checked against the same
//! messages; INVITEs the SIP layer refuses kept with their answer, and a flood of them sampled so it cannot
//! fill the store; `log.call_trace = false` keeping nothing.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

mod common;

use common::inprocess::InProcess;
use common::sipplog::{Logged, run};
use common::{NUMBER, Vocals, free_udp_port, header};
use vocals::sip::hep::{self, chunk};

/// `GET path` once it answers 200 (a trace is stored a few seconds after the call), up to 10 s.
fn get_when_ready(server: &Vocals, path: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = server.api("GET", path, None);
        match status {
            200 => return body,
            404 if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            _ => panic!("GET {path}: {status} {body}"),
        }
    }
}

#[test]
fn a_calls_sip_ladder_and_hep_packets_are_the_messages_sipp_saw_and_its_timeline_has_a_sample_a_second() {
    // Homer's stand-in.
    let homer = UdpSocket::bind("127.0.0.1:0").unwrap();
    let hep_to = format!("udp:127.0.0.1:{}", homer.local_addr().unwrap().port());
    let server = InProcess::start("insight", &[("VOCALS_LOG_HEP", hep_to.as_str()), ("VOCALS_LOG_HEP_ID", "4242")]);
    common::write_tone(&server, "rtp_echo.xml");
    let media_port = (free_udp_port() & !1).to_string();
    let log = run(&server, "rtp_echo.xml", &["-mp", &media_port]);
    let call_id = header(&log[0].text, "Call-ID").to_string();
    let record = server.call_stats(&call_id);
    let id = record["id"].as_str().unwrap();

    // The ladder: every message SIPp sent or received, in order, mirrored (what SIPp sent came in).
    let trace = get_when_ready(&server, &format!("/v1/calls/{id}/sip"));
    let messages = trace["messages"].as_array().unwrap();
    let ours: Vec<(bool, String, String)> = messages
        .iter()
        .map(|m| {
            let text = m["text"].as_str().unwrap();
            (m["dir"] == "in", text.lines().next().unwrap().to_string(), header(text, "CSeq").to_string())
        })
        .collect();
    let sipps: Vec<(bool, String, String)> =
        log.iter().map(|l: &Logged| (l.sent, l.start().to_string(), header(&l.text, "CSeq").to_string())).collect();
    assert_eq!(ours, sipps, "the trace is the wire as SIPp saw it");
    assert_eq!((trace["total"].as_u64(), trace["elided"].as_u64()), (Some(messages.len() as u64), Some(0)));
    let sipp_port = {
        let first = &messages[0];
        assert_eq!(first["local"], format!("127.0.0.1:{}", server.udp));
        assert_eq!(first["transport"], "udp");
        first["peer"].as_str().unwrap().rsplit(':').next().unwrap().parse::<u16>().unwrap()
    };
    // Times are in order, and the whole call (3 s of RTP) lies between the INVITE and the BYE.
    let times: Vec<&str> = messages.iter().map(|m| m["at"].as_str().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");

    // HEP: one packet per message, the message as sent, with the addresses, capture id and Call-ID.
    homer.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    let mut packets = Vec::new();
    let mut buf = vec![0u8; 70_000];
    while let Ok(n) = homer.recv(&mut buf) {
        packets.push(hep::decode(&buf[..n]).unwrap_or_else(|| panic!("not HEPv3: {:?}", &buf[..n.min(64)])));
    }
    let value = |p: &[(u16, u16, bytes::Bytes)], kind: u16| p.iter().find(|c| c.1 == kind).map(|c| c.2.to_vec());
    let ours: Vec<_> =
        packets.iter().filter(|p| value(p, chunk::CORRELATION_ID) == Some(call_id.clone().into_bytes())).collect();
    assert_eq!(ours.len(), messages.len(), "one HEP packet per message of the call");
    for (p, m) in ours.iter().zip(messages) {
        let text = m["text"].as_str().unwrap();
        assert_eq!(value(p, chunk::PAYLOAD).unwrap(), text.as_bytes(), "HEP carries the message as it went");
        assert_eq!(value(p, chunk::CAPTURE_ID).unwrap(), 4242u32.to_be_bytes());
        assert_eq!(value(p, chunk::PROTOCOL_TYPE).unwrap(), [hep::SIP]);
        assert_eq!(value(p, chunk::IP_PROTOCOL).unwrap(), [17]);
        assert_eq!(value(p, chunk::IPV4_SRC).unwrap(), [127, 0, 0, 1]);
        let (src, dst) = if m["dir"] == "in" { (sipp_port, server.udp) } else { (server.udp, sipp_port) };
        assert_eq!(value(p, chunk::SRC_PORT).unwrap(), src.to_be_bytes(), "{}", m["dir"]);
        assert_eq!(value(p, chunk::DST_PORT).unwrap(), dst.to_be_bytes());
    }
    assert_eq!(server.metrics().get("vocals_hep_dropped_total"), 0.0);

    // The timeline: a sample a second of the answered call, with SIPp's 50 packets a second in and the echo out.
    let timeline = get_when_ready(&server, &format!("/v1/calls/{id}/timeline"));
    let fields: Vec<&str> = timeline["fields"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
    assert_eq!(&fields[..3], ["rtp_in", "rtp_out", "lost"]);
    let samples = timeline["samples"].as_array().unwrap();
    assert!((3..=8).contains(&samples.len()), "{timeline}");
    let col = |name: &str| fields.iter().position(|f| *f == name).unwrap();
    let full: Vec<_> = samples.iter().filter(|s| s[col("rtp_in")].as_u64().is_some_and(|n| n >= 45)).collect();
    assert!(full.len() >= 2, "two whole seconds of RTP in: {timeline}");
    for s in full {
        assert!(s[col("rtp_out")].as_u64().unwrap() >= 45, "{s}");
        assert!(s[col("jitter_ms")].as_f64().unwrap() < 20.0, "{s}");
        assert_eq!(s[col("lost")].as_u64(), Some(0), "{s}");
    }
    // Unknown calls say so.
    let (status, body) = server.api("GET", "/v1/calls/vc_nope/timeline", None);
    assert_eq!((status, body["error"]["message"].as_str().is_some()), (404, true), "{body}");
}

/// An INVITE the SIP layer refuses before any call begins (an extension it does not support: 420).
fn bad_extension(to: &str, call_id: &str) -> String {
    format!(
        "INVITE sip:{NUMBER}@{to} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;rport;branch=z9hG4bK-{call_id}\r\n\
         From: <sip:+12125550100@127.0.0.1>;tag=f-{call_id}\r\nTo: <sip:{NUMBER}@{to}>\r\nCall-ID: {call_id}\r\n\
         CSeq: 1 INVITE\r\nContact: <sip:+12125550100@127.0.0.1:5999>\r\nMax-Forwards: 70\r\n\
         Require: vocals-does-not-know-this\r\nContent-Length: 0\r\n\r\n"
    )
}

#[test]
fn invites_the_sip_layer_refuses_keep_their_trace_sampled_so_a_flood_cannot_fill_the_store() {
    let server = InProcess::start("refusals", &[]);
    let to = format!("127.0.0.1:{}", server.udp);
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    // One refusal: its record says what refused it and why, and its trace has the INVITE and the answer.
    peer.send_to(bad_extension(&to, "one-bad").as_bytes(), &to).unwrap();
    let mut buf = [0u8; 4096];
    let n = peer.recv(&mut buf).unwrap();
    assert!(buf[..n].starts_with(b"SIP/2.0 420 "), "{}", String::from_utf8_lossy(&buf[..n]));
    let record = server.ended_call_within("one-bad", Duration::from_secs(10));
    assert_eq!(record["sip_status"], 420);
    assert!(
        record["end_reason"].as_str().unwrap().starts_with("refused by the SIP layer: 420 Bad Extension"),
        "{record}"
    );
    assert_eq!((record["from"].as_str(), record["to"].as_str()), (Some("+12125550100"), Some(NUMBER)));
    let trace = get_when_ready(&server, &format!("/v1/calls/{}/sip", record["id"].as_str().unwrap()));
    let lines: Vec<&str> = trace["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap().lines().next().unwrap())
        .collect();
    assert_eq!(lines[0], format!("INVITE sip:{NUMBER}@{to} SIP/2.0"));
    assert!(lines[1].starts_with("SIP/2.0 420 Bad Extension"), "{lines:?}");

    // A flood: 2,000 refused INVITEs at about 5,000 a second. A few a second are kept, the rest counted.
    let before = server.metrics();
    let started = Instant::now();
    let reader = peer.try_clone().unwrap();
    // The distinct calls answered 420 (the server retransmits each 420 until an ACK that never comes, and the
    // kernel may drop INVITEs past the socket's buffer: what counts is each call answered once).
    let answers = std::thread::spawn(move || {
        let mut refused = std::collections::HashSet::new();
        let mut buf = [0u8; 4096];
        reader.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        let until = Instant::now() + Duration::from_secs(4);
        while Instant::now() < until {
            let Ok(n) = reader.recv(&mut buf) else { continue };
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            if text.starts_with("SIP/2.0 420 ") && header(&text, "Call-ID").starts_with("flood-") {
                refused.insert(header(&text, "Call-ID").to_string());
            }
        }
        refused.len()
    });
    for i in 0..2000 {
        peer.send_to(bad_extension(&to, &format!("flood-{i}")).as_bytes(), &to).unwrap();
        if i % 50 == 49 {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let flood_secs = started.elapsed().as_secs_f64().ceil();
    let refused = answers.join().unwrap();
    assert!(refused >= 1000, "{refused} of 2000 answered 420");
    std::thread::sleep(Duration::from_secs(3));
    let kept =
        server.calls().iter().filter(|c| c["sip_call_id"].as_str().is_some_and(|s| s.starts_with("flood-"))).count();
    let bound = 5 + 5 * flood_secs as usize;
    assert!((1..=bound).contains(&kept), "{kept} refusals kept in {flood_secs} s (at most {bound})");
    let dropped = server.metrics().delta(&before, "vocals_call_traces_dropped_total{reason=\"refusal sampled out\"}");
    assert_eq!(dropped as usize + kept, refused, "every refusal kept or counted");
}

#[test]
fn with_call_traces_off_a_call_keeps_none_and_the_api_says_why() {
    let server = InProcess::start("notrace", &[("VOCALS_LOG_CALL_TRACE", "false")]);
    common::write_tone(&server, "rtp_echo.xml");
    let media_port = (free_udp_port() & !1).to_string();
    let log = run(&server, "rtp_echo.xml", &["-mp", &media_port]);
    let record = server.call_stats(header(&log[0].text, "Call-ID"));
    std::thread::sleep(Duration::from_secs(3));
    let (status, body) = server.api("GET", &format!("/v1/calls/{}/sip", record["id"].as_str().unwrap()), None);
    assert_eq!(status, 404, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("log.call_trace"), "{body}");
    // The timeline does not depend on it.
    get_when_ready(&server, &format!("/v1/calls/{}/timeline", record["id"].as_str().unwrap()));
}
