//! Black-box signalling tests: a whole vocals run in-process (`common::inprocess::InProcess`, on ports bound to
//! 0), driven by SIPp scenarios (`sip-tests/scenarios/*.xml`) over UDP and over TCP. A scenario passes when SIPp exits 0 (every call
//! successful, every regular-expression check matched). SIPp must be installed (`apt-get install sip-tester`;
//! the README's test command does it); a missing SIPp fails these tests, it never skips them. The tests assert on
//! the wire, the call records (`/v1/calls`) and `/metrics`.

use std::time::{Duration, Instant};

mod common;

use common::inprocess::InProcess;
use common::{NO_AGENT, NUMBER, UNKNOWN, Via, Vocals, free_udp_port, sipp};

fn both(server: &Vocals, file: &str, service: &str) {
    for via in [Via::Udp, Via::Tcp] {
        sipp(server, via, file, service, 1, &[]);
    }
}

#[test]
fn calls_are_answered_refused_and_negotiated_as_twilio_expects() {
    let server = InProcess::start("default", &[]);
    both(&server, "twilio_call.xml", NUMBER);
    both(&server, "options.xml", NUMBER);
    both(&server, "unknown_number.xml", UNKNOWN);
    both(&server, "no_agent.xml", NO_AGENT);
    both(&server, "pcma_only.xml", NUMBER);
    both(&server, "g729_only.xml", NUMBER);
    let out = sipp(&server, Via::Udp, "invite_retransmission.xml", NUMBER, 1, &[]);
    assert!(retransmissions_of_200(&out) >= 1, "the repeated INVITE got the 200 again:\n{out}");
    sipp(&server, Via::Tcp, "invite_retransmission_tcp.xml", NUMBER, 1, &[]);
    // Every call offered has ended, and the retransmission made no second call: one record per Call-ID (the
    // records may lag a moment).
    let balanced = || {
        let calls = server.calls();
        let ended = calls.iter().all(|c| !c["end_at"].is_null());
        let mut ids: Vec<&str> = calls.iter().filter_map(|c| c["sip_call_id"].as_str()).collect();
        let all = ids.len();
        ids.sort();
        ids.dedup();
        (ended && ids.len() == all && calls.iter().any(|c| c["sip_status"] == 200), calls)
    };
    let deadline = Instant::now() + Duration::from_secs(3);
    while !balanced().0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let (ok, calls) = balanced();
    assert!(ok, "{calls:#?}");
    both(&server, "hold_resume.xml", NUMBER);
    both(&server, "no_sdp_offer.xml", NUMBER);
    both(&server, "no_sdp_no_answer.xml", NUMBER);
}

#[test]
fn vocals_hangs_up_calls_that_reach_max_call_duration() {
    let server = InProcess::start("duration", &[("VOCALS_SIP_MAX_CALL_DURATION", "1")]);
    both(&server, "vocals_hangs_up.xml", NUMBER);
}

#[test]
fn a_lost_ack_gets_200_retransmissions_then_a_bye() {
    // T1 = 50 ms: retransmissions at 50, 150, 350, 750 ms then every T2 = 400 ms until 64*T1 = 3.2 s.
    let server = InProcess::start("lost-ack", &[("VOCALS_SIP_T1_MS", "50")]);
    let out = sipp(&server, Via::Udp, "lost_ack.xml", NUMBER, 1, &[]);
    let retransmitted = retransmissions_of_200(&out);
    assert!((8..=11).contains(&retransmitted), "{retransmitted} retransmissions of the 200 over UDP:\n{out}");
    // Over TCP too (RFC 3261 13.3.1.4: the 2xx is retransmitted end to end whatever the transport).
    sipp(&server, Via::Tcp, "lost_ack_tcp.xml", NUMBER, 1, &[]);
}

/// The Retrans column of the 200 row on SIPp's final screen.
fn retransmissions_of_200(out: &str) -> u32 {
    out.lines()
        .filter(|l| l.trim_start().starts_with("200 <-"))
        .filter_map(|l| l.split_whitespace().rev().nth(2)?.parse().ok())
        .max()
        .unwrap_or(0)
}

#[test]
fn sources_outside_the_allowlist_get_no_answer() {
    use std::io::{Read, Write};
    let server = InProcess::start("allowlist", &[("VOCALS_SIP_ALLOW", "127.0.0.2/32")]);
    sipp(&server, Via::Udp, "no_answer.xml", NUMBER, 1, &[]);
    // Over TCP the connection is closed at accept, before the INVITE is read (SIPp reports it as a broken pipe).
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", server.tcp)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let _ = conn.write_all(b"INVITE sip:+14155550123@127.0.0.1 SIP/2.0\r\n");
    let mut buf = [0u8; 512];
    match conn.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("the TCP connection was not closed at once: {other:?}"),
    }
    let calls = server.calls();
    assert!(calls.is_empty(), "no call was offered: {calls:#?}");
}

#[test]
fn a_smoke_load_of_100_concurrent_calls_at_10_per_second_has_no_failure() {
    let server = InProcess::start("load", &[]);
    for via in [Via::Udp, Via::Tcp] {
        let out = sipp(&server, via, "twilio_call.xml", NUMBER, 100, &["-r", "10", "-l", "100"]);
        assert!(out.contains("Successful call"), "{out}");
    }
}

#[test]
fn calls_over_ipv6_are_answered_on_udp_and_tcp() {
    let server = InProcess::start_on("ipv6", "[::1]", &[]);
    both(&server, "twilio_call.xml", NUMBER);
    both(&server, "options.xml", NUMBER);
}

#[test]
fn a_double_crlf_keepalive_on_tcp_gets_a_crlf_pong() {
    use std::io::{Read, Write};
    let server = InProcess::start("keepalive", &[]);
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", server.tcp)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    conn.write_all(b"\r\n\r\n").unwrap();
    let mut pong = [0u8; 2];
    conn.read_exact(&mut pong).unwrap();
    assert_eq!(&pong, b"\r\n", "RFC 5626 3.5.1");
    // The connection is still usable for SIP afterwards.
    let options = format!(
        "OPTIONS sip:127.0.0.1:{} SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5999;branch=z9hG4bKka1\r\nFrom: <sip:k@a>;tag=1\r\n\
         To: <sip:127.0.0.1>\r\nCall-ID: ka1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
        server.tcp
    );
    conn.write_all(options.as_bytes()).unwrap();
    let mut answer = vec![0u8; 2048];
    let n = conn.read(&mut answer).unwrap();
    assert!(answer[..n].starts_with(b"SIP/2.0 200 OK\r\n"), "{}", String::from_utf8_lossy(&answer[..n]));
}

#[test]
fn idle_and_misbehaving_tcp_connections_are_closed() {
    use std::io::{Read, Write};
    let server = InProcess::start("tcp-limits", &[("VOCALS_SIP_TCP_IDLE_TIMEOUT", "1")]);
    // Idle: nothing complete arrives (half a message, slowloris style), so the connection is closed.
    let mut idle = std::net::TcpStream::connect(("127.0.0.1", server.tcp)).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    idle.write_all(b"OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/TCP h;bra").unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 16];
    assert_eq!(idle.read(&mut buf).unwrap_or(0), 0, "closed");
    assert!(started.elapsed() < Duration::from_secs(4), "within the idle timeout, not the read timeout");
    // Misbehaving: a message without Content-Length cannot be framed on a stream; it gets its 400 (echoing the
    // Via and Call-ID it has, RFC 4475 §3.1.2), then the connection is closed.
    let mut bad = std::net::TcpStream::connect(("127.0.0.1", server.tcp)).unwrap();
    bad.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    bad.write_all(b"OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nCall-ID: c\r\n\r\n").unwrap();
    let mut answer = Vec::new();
    let closed = bad.read_to_end(&mut answer).is_ok();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("SIP/2.0 400 ") && answer.contains("\r\nCall-ID: c\r\n"), "{answer}");
    assert!(closed, "closed after the 400");
}

#[test]
fn a_sipp_call_streaming_rtp_reaches_the_echo_agent_and_gets_audio_back() {
    let server = InProcess::start("rtp", &[]);
    common::write_tone(&server, "rtp_echo.xml");
    let media_port = (free_udp_port() & !1).to_string();
    sipp(&server, Via::Udp, "rtp_echo.xml", NUMBER, 1, &["-mp", &media_port]);
    // The call's record, once its media has ended and written its figures.
    let deadline = Instant::now() + Duration::from_secs(5);
    let rtp = loop {
        let calls = server.calls();
        match calls.first().map(|c| c["stats"]["rtp"].clone()).filter(|r| !r.is_null()) {
            Some(rtp) => break rtp,
            None if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            None => panic!("no call record with media figures: {calls:#?}"),
        }
    };
    let count = |key: &str| rtp[key].as_u64().unwrap_or_else(|| panic!("no {key} in {rtp}"));
    // SIPp streamed 150 packets; vocals echoed them (and kept sending for the rest of the call).
    assert!(count("received") >= 140, "{rtp}");
    assert!(count("sent") >= 150, "{rtp}");
    assert_eq!(count("foreign") + count("malformed") + count("wrong_payload_type"), 0, "{rtp}");
}

#[test]
fn a_cancel_while_the_agent_is_being_reached_gets_200_and_487() {
    // An agent that accepts the TCP connection and never completes the WebSocket handshake: the call rings.
    let slow = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/stream", slow.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in slow.incoming().flatten() {
            held.push(conn);
        }
    });
    let agent = format!("[[agents]]\nname = \"slow\"\nurl = \"{url}\"\nconnect_timeout_ms = 5000\n");
    let server = InProcess::start_with("cancel", &agent, &[("VOCALS_DEFAULT_AGENT", "slow")]);
    both(&server, "cancel_while_ringing.xml", UNKNOWN);
    // Both calls ended as cancelled, and nothing was answered: no agent stream, no media.
    let calls = server.calls();
    assert_eq!(calls.len(), 2, "{calls:#?}");
    for call in &calls {
        assert_eq!(
            (call["end_reason"].as_str(), call["sip_status"].as_u64()),
            (Some("the caller cancelled"), Some(487))
        );
        assert!(call["answer_at"].is_null() && call["stats"]["agent"].is_null(), "{call:#}");
    }
}
