//! The wire torture runner: every request in `sip-tests/vectors/MANIFEST` (RFC 4475 and RFC 5118 shapes, the
//! Twilio fixtures, our own) is sent as raw bytes to a whole vocals run in-process (`common::inprocess::InProcess`,
//! on ports bound to 0), over UDP and over TCP, and the answer is classified — the final status code, `1xx` when
//! only provisional answers came, or `drop` when nothing came — against `sip-tests/torture/EXPECTED`. After every vector the server must still answer OPTIONS.
//!
//! Over UDP, answers go to the source address at the top Via's port (RFC 3261 §18.2.2), so each vector is sent
//! from a loopback address of its own (127.0.1.x) on that port. Set `TORTURE_PRINT=1` to print the table of answers.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use common::Vocals;
use common::inprocess::InProcess;

/// The source address of the n-th UDP vector: answers go to the source address at the Via's port, so each
/// vector has an address of its own (and the retransmitted answers of earlier ones cannot be mistaken).
fn source(n: usize) -> String {
    format!("127.0.{}.{}", 1 + n / 250, 1 + n % 250)
}

/// The vector with its top branch, its Call-ID and its X-Twilio-CallSid made unique (a suffix; nothing else
/// changes), so that vectors sharing them (the Twilio fixtures do) are not taken for retransmissions of each
/// other, nor for a second live call with a CallSid in use (482).
fn unique(bytes: &[u8], n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 32);
    let (mut branch_done, mut callid_done, mut in_headers) = (false, false, true);
    let mut callsid_done = false;
    let mut first = true;
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        let body = line.strip_suffix(b"\r\n").or_else(|| line.strip_suffix(b"\n"));
        let (content, ending) = match body {
            Some(c) => (c, &line[c.len()..]),
            None => (line, &b""[..]),
        };
        if first {
            first = false;
        } else if in_headers && content.is_empty() {
            in_headers = false;
        } else if in_headers {
            let lower = content.to_ascii_lowercase();
            let suffix = format!("t{n}");
            let call_id = lower.starts_with(b"call-id") || lower.starts_with(b"i:") || lower.starts_with(b"i ");
            let call_sid = lower.starts_with(b"x-twilio-callsid");
            if (!callid_done && call_id) || (!callsid_done && call_sid) {
                callid_done |= call_id;
                callsid_done |= call_sid;
                out.extend_from_slice(content);
                out.extend_from_slice(suffix.as_bytes());
                out.extend_from_slice(ending);
                continue;
            }
            if let Some(at) = (!branch_done).then(|| find(&lower, b"branch=")).flatten() {
                branch_done = true;
                let start = at + 7;
                let len = content[start..].iter().position(|b| b";, \t".contains(b)).unwrap_or(content.len() - start);
                out.extend_from_slice(&content[..start + len]);
                out.extend_from_slice(suffix.as_bytes());
                out.extend_from_slice(&content[start + len..]);
                out.extend_from_slice(ending);
                continue;
            }
        }
        out.extend_from_slice(line);
    }
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn requests() -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("sip-tests/vectors");
    let manifest = std::fs::read_to_string(dir.join("MANIFEST")).unwrap();
    manifest
        .lines()
        .map(|l| l.split('#').next().unwrap_or_default().trim())
        .filter(|l| !l.is_empty())
        .filter_map(|l| {
            let path = l.split_whitespace().next()?.to_string();
            let bytes = std::fs::read(dir.join(&path)).ok()?;
            (!bytes.starts_with(b"SIP/")).then_some((path, bytes))
        })
        .collect()
}

/// The port of the first Via's sent-by (5060 when it has none, or when there is no readable Via).
fn via_port(bytes: &[u8]) -> u16 {
    let text = String::from_utf8_lossy(bytes);
    let via = text.lines().find(|l| {
        let lower = l.to_ascii_lowercase();
        lower.starts_with("via:") || lower.starts_with("v:") || lower.starts_with("via ")
    });
    let Some(via) = via else { return 5060 };
    // `Via: SIP/2.0/UDP host:port;params`: the token after the protocol.
    let mut tokens = via.split_whitespace().skip_while(|t| !t.to_ascii_uppercase().contains("SIP/2.0/"));
    let sent_by = tokens.nth(1).unwrap_or_default().split([';', ',']).next().unwrap_or_default();
    let tls = via.to_ascii_uppercase().contains("/TLS");
    let port = if sent_by.starts_with('[') {
        sent_by.rsplit_once("]:").map(|(_, p)| p)
    } else {
        sent_by.rsplit_once(':').map(|(_, p)| p)
    };
    port.and_then(|p| p.parse().ok()).filter(|p: &u16| *p != 0).unwrap_or(if tls { 5061 } else { 5060 })
}

/// The class of what came back: the first final status, `1xx`, or `drop`.
fn classify(answers: &[String]) -> String {
    let statuses: Vec<&str> = answers.iter().filter_map(|a| a.strip_prefix("SIP/2.0 ")?.get(..3)).collect();
    match statuses.iter().find(|s| !s.starts_with('1')) {
        Some(status) => status.to_string(),
        None if !statuses.is_empty() => "1xx".into(),
        None => "drop".into(),
    }
}

fn over_udp(server: &Vocals, bytes: &[u8], n: usize) -> String {
    let source = source(n);
    let socket = UdpSocket::bind((source.as_str(), via_port(bytes)))
        .unwrap_or_else(|e| panic!("bind {source}:{}: {e} (is something on that port?)", via_port(bytes)));
    socket.set_read_timeout(Some(Duration::from_millis(400))).unwrap();
    if let Err(e) = socket.send_to(bytes, ("127.0.0.1", server.udp)) {
        // Larger than any datagram: only TCP can carry it.
        assert_eq!(e.raw_os_error(), Some(90), "sending: {e}");
        return "n/a".into();
    }
    let mut answers = Vec::new();
    let mut buf = [0u8; 65_536];
    while let Ok(n) = socket.recv(&mut buf) {
        answers.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        if !classify(&answers).starts_with(['1', 'd']) {
            break;
        }
    }
    classify(&answers)
}

fn over_tcp(server: &Vocals, bytes: &[u8]) -> String {
    let mut conn = TcpStream::connect(("127.0.0.1", server.tcp)).unwrap();
    conn.set_read_timeout(Some(Duration::from_millis(400))).unwrap();
    conn.write_all(bytes).unwrap();
    let mut text = String::new();
    let mut buf = [0u8; 65_536];
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => text.push_str(&String::from_utf8_lossy(&buf[..n])),
        }
        let answers: Vec<String> = text.split("SIP/2.0 ").skip(1).map(|a| format!("SIP/2.0 {a}")).collect();
        if !classify(&answers).starts_with(['1', 'd']) {
            break;
        }
    }
    let answers: Vec<String> = text.split("SIP/2.0 ").skip(1).map(|a| format!("SIP/2.0 {a}")).collect();
    classify(&answers)
}

/// The server still answers OPTIONS from an ordinary client.
fn alive(server: &Vocals) -> bool {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let me = s.local_addr().unwrap();
    let msg = format!(
        "OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-alive;rport\r\nFrom: <sip:t@{me}>;tag=a\r\n\
         To: <sip:127.0.0.1>\r\nCall-ID: alive-{}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        me.port()
    );
    s.send_to(msg.as_bytes(), ("127.0.0.1", server.udp)).unwrap();
    let mut buf = [0u8; 4096];
    s.recv(&mut buf).is_ok_and(|n| buf[..n].starts_with(b"SIP/2.0 200"))
}

fn expected() -> BTreeMap<String, (String, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("sip-tests/torture/EXPECTED");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    text.lines()
        .map(|l| l.split('#').next().unwrap_or_default().trim())
        .filter(|l| !l.is_empty())
        .map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(cols.len(), 3, "bad EXPECTED line: {l}");
            (cols[0].to_string(), (cols[1].to_string(), cols[2].to_string()))
        })
        .collect()
}

#[test]
fn every_torture_vector_gets_the_answer_a_uas_owes_over_udp_and_tcp_and_the_server_lives() {
    // Two servers: the same bytes over TCP after UDP would be a retransmission of the UDP request.
    let server = InProcess::start("torture-udp", &[]);
    let tcp_server = InProcess::start("torture-tcp", &[]);
    let expected = expected();
    let mut wrong = Vec::new();
    let mut table = String::new();
    for (n, (path, bytes)) in requests().into_iter().enumerate() {
        let bytes = unique(&bytes, n);
        let udp = over_udp(&server, &bytes, n);
        let tcp = over_tcp(&tcp_server, &bytes);
        table.push_str(&format!("{path:<56} {udp:<5} {tcp}\n"));
        match expected.get(&path) {
            Some((u, t)) if *u == udp && *t == tcp => {}
            Some((u, t)) => wrong.push(format!("{path}: expected udp {u} tcp {t}, got udp {udp} tcp {tcp}")),
            None => wrong.push(format!("{path}: not in EXPECTED (got udp {udp} tcp {tcp})")),
        }
        assert!(alive(&server), "the server stopped answering after {path} (UDP)");
        assert!(alive(&tcp_server), "the server stopped answering after {path} (TCP)");
    }
    if std::env::var_os("TORTURE_PRINT").is_some() {
        print!("{table}");
    }
    assert!(wrong.is_empty(), "{} vectors answered wrongly:\n{}", wrong.len(), wrong.join("\n"));
}
