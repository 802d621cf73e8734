//! Secure trunking against a whole vocals run in-process (`common::inprocess::InProcess`, on ports bound to 0): an `RTP/SAVP` offer shaped like Twilio's (one SDES
//! `AES_CM_128_HMAC_SHA1_80` line) is answered with SRTP and vocals' own key; a test client protecting its audio
//! with webrtc-rs's SRTP contexts (not vocals' wrapper) hears every frame back from the echo agent exactly;
//! tampered and replayed packets are dropped and counted; the SRTP policy refuses what it must with 488.
//!
//! The TLS test runs the real binary (`Server`): it reloads the certificate with SIGHUP, a signal only the
//! process's own handler (`vocals serve`) answers; `daemon::serve` in a test's process has none.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::inprocess::InProcess;
use common::{Caller, NUMBER, Server, header};
use rtc_srtp::context::Context;
use rtc_srtp::crypto::providers::RingCrypto;
use rtc_srtp::option::srtp_replay_protection;
use rtc_srtp::protection_profile::ProtectionProfile;

/// The test phone's master key and salt.
const PHONE_KEY: [u8; 30] = *b"0123456789abcdef-salt-14bytes!";

fn offer(rtp: &UdpSocket, profile: &str, crypto: Option<&str>) -> String {
    let mut sdp = format!(
        "v=0\r\no=root 1 1 IN IP4 127.0.0.1\r\ns=Twilio Media Gateway\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {} {profile} 0 8 101\r\n",
        rtp.local_addr().unwrap().port()
    );
    if let Some(c) = crypto {
        sdp.push_str(&format!("a=crypto:{c}\r\n"));
    }
    sdp.push_str(
        "a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n\
         a=ptime:20\r\na=maxptime:20\r\na=sendrecv\r\n",
    );
    sdp
}

fn twilio_crypto() -> String {
    format!("1 AES_CM_128_HMAC_SHA1_80 inline:{}", STANDARD.encode(PHONE_KEY))
}

fn context(key: &[u8], inbound: bool) -> Context {
    let replay = inbound.then(|| srtp_replay_protection(128));
    Context::new(&key[..16], &key[16..], ProtectionProfile::Aes128CmHmacSha1_80, replay, None, &RingCrypto).unwrap()
}

fn frame(k: usize) -> Vec<u8> {
    (0..160).map(|i| ((k * 7 + i * 3) % 120) as u8 + 1).collect()
}

fn rtp(seq: u16, payload: &[u8]) -> Vec<u8> {
    common::rtp_packet(seq, 0x5EC0_0001, payload)
}

#[test]
fn an_srtp_call_is_answered_with_our_own_key_and_the_echo_comes_back_exact_and_encrypted() {
    let server = InProcess::start("srtp", &[]);
    let rtp_socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let sdp = offer(&rtp_socket, "RTP/SAVP", Some(&twilio_crypto()));
    let (mut caller, answer) = Caller::send_invite_sdp(&server, "srtp-call", NUMBER, "127.0.0.1", &sdp);
    assert!(answer.starts_with("SIP/2.0 200"), "{answer}");
    caller.to = header(&answer, "To").to_string();
    caller.request("ACK", 1);
    let m_line = answer.lines().find(|l| l.starts_with("m=audio ")).unwrap();
    assert!(m_line.contains(" RTP/SAVP 0 101"), "{m_line}");
    let port: u16 = m_line.split(' ').nth(1).unwrap().parse().unwrap();
    let remote: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let crypto = answer.lines().find_map(|l| l.strip_prefix("a=crypto:")).expect("a=crypto in the answer");
    let inline = crypto.strip_prefix("1 AES_CM_128_HMAC_SHA1_80 inline:").expect("our tag and suite echoed");
    let their_key = STANDARD.decode(inline.trim()).unwrap();
    assert_eq!(their_key.len(), 30);
    assert_ne!(their_key, PHONE_KEY, "vocals answers with a key of its own");

    let mut outbound = context(&PHONE_KEY, false);
    let mut inbound = context(&their_key, true);
    let receiver = common::receive_all(&rtp_socket);
    let frames = 100usize;
    let start = Instant::now();
    let mut replay = Vec::new();
    for k in 0..frames {
        let due = start + Duration::from_millis(20 * k as u64);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        let protected = outbound.encrypt_rtp(&rtp(k as u16, &frame(k))).unwrap().to_vec();
        rtp_socket.send_to(&protected, remote).unwrap();
        if k == 10 {
            replay = protected.clone();
        }
        if k == 20 {
            // A replay, and a packet with its payload tampered with: both dropped, neither played.
            rtp_socket.send_to(&replay, remote).unwrap();
            let mut tampered = outbound.encrypt_rtp(&rtp(500, &frame(500))).unwrap().to_vec();
            tampered[30] ^= 0x20;
            rtp_socket.send_to(&tampered, remote).unwrap();
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    caller.request("BYE", 2);
    let got = receiver.join().unwrap();
    let mut audio = Vec::new();
    for packet in &got {
        assert!(packet.len() == 12 + 160 + 10, "an SRTP packet with an 80-bit tag, not {} bytes", packet.len());
        let plain = inbound.decrypt_rtp(packet).expect("vocals' SRTP authenticates under its answered key");
        let payload = plain[12..].to_vec();
        if payload.iter().any(|&b| b != 0xFF) {
            audio.push(payload);
        }
    }
    assert_eq!(audio.len(), frames, "echoed frames");
    for (k, p) in audio.iter().enumerate() {
        assert_eq!(p, &frame(k), "frame {k} came back changed");
    }
    let record = server.call_stats("srtp-call");
    let rtp = &record["stats"]["rtp"];
    assert_eq!(rtp["received"].as_u64(), Some(frames as u64), "{rtp:#}");
    assert_eq!(rtp["srtp_replayed"].as_u64(), Some(1), "{rtp:#}");
    assert_eq!(rtp["srtp_rejected"].as_u64(), Some(1), "{rtp:#}");
    assert_eq!(rtp["srtp"], true, "{rtp:#}");
}

#[test]
fn the_srtp_policy_refuses_what_it_must_with_488() {
    let rtp_socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let required = InProcess::start("srtp-required", &[("VOCALS_MEDIA_SRTP", "required")]);
    let plain = offer(&rtp_socket, "RTP/AVP", None);
    let (_, answer) = Caller::send_invite_sdp(&required, "srtp-required", NUMBER, "127.0.0.1", &plain);
    assert!(answer.starts_with("SIP/2.0 488 "), "{answer}");
    assert!(header(&answer, "Warning").contains("requires SRTP"), "{answer}");
    drop(required);

    let off = InProcess::start("srtp-off", &[("VOCALS_MEDIA_SRTP", "off")]);
    let secure = offer(&rtp_socket, "RTP/SAVP", Some(&twilio_crypto()));
    let (_, answer) = Caller::send_invite_sdp(&off, "srtp-off", NUMBER, "127.0.0.1", &secure);
    assert!(answer.starts_with("SIP/2.0 488 "), "{answer}");

    // Allowed (the default): an SRTP offer with no usable key is refused too, saying why.
    let strict = "[[numbers]]\nnumber = \"+14155550130\"\nagent = \"echo\"\nsrtp = \"required\"\n";
    let allowed = InProcess::start_with("srtp-allowed", strict, &[]);
    let bad = offer(&rtp_socket, "RTP/SAVP", Some("1 AES_CM_128_HMAC_SHA1_80 inline:c2hvcnQ="));
    let (_, answer) = Caller::send_invite_sdp(&allowed, "srtp-bad-key", NUMBER, "127.0.0.1", &bad);
    assert!(answer.starts_with("SIP/2.0 488 "), "{answer}");
    assert!(header(&answer, "Warning").contains("no usable SRTP key"), "{answer}");

    // Per number, over the server's policy: a number of the config file that requires SRTP...
    let (_, answer) = Caller::send_invite_sdp(&allowed, "srtp-strict", "+14155550130", "127.0.0.1", &plain);
    assert!(answer.starts_with("SIP/2.0 488 "), "{answer}");
    let (caller, answer) = Caller::send_invite_sdp(&allowed, "srtp-lax", NUMBER, "127.0.0.1", &plain);
    assert!(answer.starts_with("SIP/2.0 200 "), "the server's own policy still allows RTP: {answer}");
    let mut caller = caller;
    caller.to = header(&answer, "To").to_string();
    caller.request("ACK", 1);
    caller.request("BYE", 2);
    // ...and one added through the API that turns it off.
    let (status, bot) = allowed.api("POST", "/v1/agents", Some(serde_json::json!({"name": "bot", "kind": "echo"})));
    assert_eq!(status, 201, "{bot}");
    let number = serde_json::json!({"phone_number": "+14155550131", "agent_id": bot["id"], "srtp": "off"});
    let (status, added) = allowed.api("POST", "/v1/numbers", Some(number));
    assert_eq!((status, added["srtp"].as_str()), (201, Some("off")), "{added}");
    let (_, answer) = Caller::send_invite_sdp(&allowed, "srtp-api-off", "+14155550131", "127.0.0.1", &secure);
    assert!(answer.starts_with("SIP/2.0 488 "), "{answer}");
    let (status, _) = allowed.api("PATCH", "/v1/numbers/+14155550131", Some(serde_json::json!({"srtp": null})));
    assert_eq!(status, 200);
    let (_, answer) = Caller::send_invite_sdp(&allowed, "srtp-api-default", "+14155550131", "127.0.0.1", &secure);
    assert!(answer.starts_with("SIP/2.0 200 "), "back to the server's policy, the next call: {answer}");
}

/// A self-signed certificate for localhost and 127.0.0.1, written as PEM files into `dir`; its DER.
fn certificate(dir: &std::path::Path) -> Vec<u8> {
    let pair = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    std::fs::write(dir.join("cert.pem"), pair.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), pair.signing_key.serialize_pem()).unwrap();
    pair.cert.der().to_vec()
}

type Tls = rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>;

/// A TLS connection to vocals trusting only `trusted`, restricted to one protocol version.
fn tls_connect(port: u16, trusted: &[u8], version: &'static rustls::SupportedProtocolVersion) -> std::io::Result<Tls> {
    use std::io::Write;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(rustls::pki_types::CertificateDer::from(trusted.to_vec())).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[version])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(std::sync::Arc::new(config), name).unwrap();
    let tcp = std::net::TcpStream::connect(("127.0.0.1", port))?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    // Complete the handshake now, so a refused certificate shows here.
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock)?;
    }
    tls.flush()?;
    Ok(tls)
}

/// The next SIP message over TLS.
fn read_message(tls: &mut Tls, pending: &mut Vec<u8>) -> String {
    common::read_stream_message(tls, pending).unwrap_or_else(|why| panic!("no SIP message over TLS: {why}"))
}

fn send(tls: &mut Tls, msg: &str) {
    use std::io::Write;
    tls.write_all(msg.as_bytes()).unwrap();
    tls.flush().unwrap();
}

/// Twilio's Secure Trunking INVITE (`twilio-invite-tls-srtp.sip`), pointed at this test's number, sockets and
/// key: two Record-Routes, a TLS Via on top, `;transport=tls` on the Request-URI.
fn twilio_tls_invite(me: SocketAddr, vocals_tls: u16, rtp: &UdpSocket, call_id: &str) -> String {
    let fixture = include_str!("vectors/twilio/twilio-invite-tls-srtp.sip");
    let (head, _) = fixture.split_once("\r\n\r\n").unwrap();
    let sdp = offer(rtp, "RTP/SAVP", Some(&twilio_crypto()));
    let head = head
        .replace("+11234567890", NUMBER)
        .replace("sip.vocals.example", &format!("127.0.0.1:{vocals_tls}"))
        .replace("54.172.60.0:5061", &me.to_string())
        .replace("fb3e6e86a53e3094ed17b4776a69af59@0.0.0.0", call_id)
        .replace("ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "ACbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb");
    let head = head.lines().filter(|l| !l.starts_with("Content-Length")).collect::<Vec<_>>().join("\r\n");
    format!("{head}\r\nContent-Length: {}\r\n\r\n{sdp}", sdp.len())
}

#[test]
fn twilios_secure_trunking_call_over_tls_with_srtp_end_to_end_and_a_certificate_reload() {
    let dir = std::env::temp_dir().join(format!("vocals-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let first = certificate(&dir);
    let tls_port = common::free_tcp_port();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let env = [
        ("VOCALS_SIP_LISTEN_TLS", format!("127.0.0.1:{tls_port}")),
        ("VOCALS_SIP_TLS_CERT", cert.display().to_string()),
        ("VOCALS_SIP_TLS_KEY", key.display().to_string()),
        ("VOCALS_SIP_MAX_CALL_DURATION", "5".to_string()),
        ("VOCALS_MEDIA_SRTP", "required".to_string()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = Server::start("tls", &env);

    // TLS 1.3: the INVITE, 100/180/200 back over the same connection.
    let mut tls = tls_connect(tls_port, &first, &rustls::version::TLS13).expect("TLS 1.3 handshake");
    let me = tls.sock.local_addr().unwrap();
    let rtp_socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    send(&mut tls, &twilio_tls_invite(me, tls_port, &rtp_socket, "tls-call"));
    let mut pending = Vec::new();
    let answer = loop {
        let msg = read_message(&mut tls, &mut pending);
        if !msg.starts_with("SIP/2.0 1") {
            break msg;
        }
    };
    assert!(answer.starts_with("SIP/2.0 200"), "{answer}");
    let contact = header(&answer, "Contact");
    assert!(contact.contains(&format!(":{tls_port};transport=tls>")), "Contact: {contact}");
    let routes: Vec<&str> = answer.lines().filter(|l| l.starts_with("Record-Route: ")).collect();
    assert_eq!(routes.len(), 2, "both Record-Routes echoed:\n{answer}");
    let to = header(&answer, "To").to_string();
    let ack = format!(
        "ACK sip:{NUMBER}@127.0.0.1:{tls_port};transport=tls SIP/2.0\r\nVia: SIP/2.0/TLS {me};branch=z9hG4bK-tls-ack\r\n\
         From: <sip:+10987654321@vocals-acme.pstn.twilio.com:5060>;tag=08601002_c3356d0b_658bbbdc-370e-4c02-862b-9f5807568f80\r\n\
         To: {to}\r\nCall-ID: tls-call\r\nCSeq: 29044 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    );
    send(&mut tls, &ack);

    // SRTP both ways.
    let m_line = answer.lines().find(|l| l.starts_with("m=audio ")).unwrap();
    let port: u16 = m_line.split(' ').nth(1).unwrap().parse().unwrap();
    let remote: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let crypto = answer.lines().find_map(|l| l.strip_prefix("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:")).unwrap();
    let mut outbound = context(&PHONE_KEY, false);
    let mut inbound = context(&STANDARD.decode(crypto.trim()).unwrap(), true);
    rtp_socket.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let mut echoed = Vec::new();
    let start = Instant::now();
    for k in 0..50usize {
        let due = start + Duration::from_millis(20 * k as u64);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        rtp_socket.send_to(&outbound.encrypt_rtp(&rtp(k as u16, &frame(k))).unwrap(), remote).unwrap();
    }
    let mut buf = [0u8; 1500];
    while let Ok(n) = rtp_socket.recv(&mut buf) {
        let plain = inbound.decrypt_rtp(&buf[..n]).expect("SRTP from vocals authenticates");
        if plain[12..].iter().any(|&b| b != 0xFF) {
            echoed.push(plain[12..].to_vec());
        }
    }
    assert_eq!(echoed.len(), 50, "echoed frames");
    assert!(echoed.iter().enumerate().all(|(k, p)| p == &frame(k)), "the echo came back changed");

    // SIGHUP with a new certificate: new connections get it (TLS 1.2 too); the call above is untouched.
    let second = certificate(&dir);
    let status = std::process::Command::new("kill").args(["-HUP", &server.child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut fresh = loop {
        match tls_connect(tls_port, &second, &rustls::version::TLS12) {
            Ok(t) => break t,
            Err(e) => assert!(Instant::now() < deadline, "the new certificate was not served: {e}"),
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(fresh.conn.protocol_version(), Some(rustls::ProtocolVersion::TLSv1_2));
    let me2 = fresh.sock.local_addr().unwrap();
    send(
        &mut fresh,
        &format!(
            "OPTIONS sip:127.0.0.1:{tls_port};transport=tls SIP/2.0\r\nVia: SIP/2.0/TLS {me2};branch=z9hG4bK-tls-opt\r\n\
             From: <sip:t@{me2}>;tag=o\r\nTo: <sip:127.0.0.1>\r\nCall-ID: tls-options\r\nCSeq: 1 OPTIONS\r\n\
             Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        ),
    );
    assert!(read_message(&mut fresh, &mut Vec::new()).starts_with("SIP/2.0 200"));
    assert!(tls_connect(tls_port, &first, &rustls::version::TLS13).is_err(), "the old certificate is gone");

    // vocals hangs up (maximum call duration): its BYE comes down the connection the call came on, through
    // Twilio's route set.
    let bye = loop {
        let msg = read_message(&mut tls, &mut pending);
        if msg.starts_with("BYE ") {
            break msg;
        }
    };
    assert!(header(&bye, "Via").starts_with("SIP/2.0/TLS "), "{bye}");
    assert!(header(&bye, "Route").contains("transport=tls"), "{bye}");
    send(&mut tls, &common::ok_to(&bye));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The stand-in trunk's master key and salt.
const TRUNK_KEY: [u8; 30] = *b"fedcba9876543210-trunk-salt-14";

type TrunkTls = rustls::StreamOwned<rustls::ServerConnection, std::net::TcpStream>;

/// A TLS server configuration presenting a fresh self-signed certificate for localhost; the certificate's PEM.
fn trunk_tls() -> (std::sync::Arc<rustls::ServerConfig>, String) {
    let pair = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::try_from(pair.signing_key.serialize_der()).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![pair.cert.der().clone()], key)
        .unwrap();
    (std::sync::Arc::new(config), pair.cert.pem())
}

fn trunk_send(tls: &mut TrunkTls, msg: &str) {
    use std::io::Write;
    tls.write_all(msg.as_bytes()).unwrap();
    tls.flush().unwrap();
}

/// Our response to `req` with `code`, To tag `tag` (if the request had none), Contact and an optional SDP body.
fn trunk_response(req: &str, code: &str, tag: &str, contact: &str, sdp: &str) -> String {
    let mut out = format!("SIP/2.0 {code}\r\n");
    for name in ["Via", "From", "Call-ID", "CSeq"] {
        for line in req.lines().filter(|l| l.len() > name.len() && l[..name.len()].eq_ignore_ascii_case(name)) {
            if line.as_bytes()[name.len()] == b':' {
                out.push_str(&format!("{line}\r\n"));
            }
        }
    }
    let to = header(req, "To");
    let to = if to.contains(";tag=") { to.to_string() } else { format!("{to};tag={tag}") };
    out.push_str(&format!("To: {to}\r\nContact: {contact}\r\n"));
    if sdp.is_empty() {
        out.push_str("Content-Length: 0\r\n\r\n");
    } else {
        out.push_str(&format!("Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}", sdp.len()));
    }
    out
}

/// Twilio's termination side over TLS (Secure Trunking), played by this test: it takes vocals' INVITE on the
/// connection vocals opens, checks the TLS Via and Contact and the `RTP/SAVP` offer, answers with its own key,
/// echoes what it hears with SRTP both ways, then hangs up with a BYE down the same connection.
#[test]
fn a_call_placed_on_a_tls_trunk_goes_over_a_verified_connection_with_srtp_both_ways() {
    let dir = std::env::temp_dir().join(format!("vocals-tls-out-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    certificate(&dir);
    let (trusted, trusted_pem) = trunk_tls();
    let (untrusted, _) = trunk_tls();
    // The system's trust store, as a sysadmin points OpenSSL-style tools at one: the trunk's certificate only.
    std::fs::write(dir.join("trust.pem"), &trusted_pem).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let trunk_port = listener.local_addr().unwrap().port();
    let tls_port = common::free_tcp_port();
    let extra = format!(
        "[[trunks]]\naccount_sid = \"ACbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\"\nauth_token = \"outbound-auth-token-0123456789\"\n\
         termination_uri = \"sip:localhost:{trunk_port};transport=tls\"\n"
    );
    let env = [
        ("VOCALS_SIP_LISTEN_TLS", format!("127.0.0.1:{tls_port}")),
        ("VOCALS_SIP_TLS_CERT", dir.join("cert.pem").display().to_string()),
        ("VOCALS_SIP_TLS_KEY", dir.join("key.pem").display().to_string()),
        ("SSL_CERT_FILE", dir.join("trust.pem").display().to_string()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = Server::start_with("tls-out", &extra, &env);

    let far_end = std::thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut tls = rustls::StreamOwned::new(rustls::ServerConnection::new(trusted).unwrap(), tcp);
        let mut pending = Vec::new();
        let invite = common::read_stream_message(&mut tls, &mut pending).expect("vocals' INVITE over TLS");
        let first_line = invite.lines().next().unwrap().to_string();
        assert_eq!(first_line, format!("INVITE sip:+14155550100@localhost:{trunk_port};transport=tls SIP/2.0"));
        assert!(header(&invite, "Via").starts_with(&format!("SIP/2.0/TLS 127.0.0.1:{tls_port};")), "{invite}");
        assert_eq!(header(&invite, "Contact"), format!("<sip:127.0.0.1:{tls_port};transport=tls>"), "{invite}");
        let (_, offer) = invite.split_once("\r\n\r\n").unwrap();
        let m = offer.lines().find(|l| l.starts_with("m=audio ")).expect("an audio offer");
        assert!(m.contains(" RTP/SAVP "), "SRTP is offered toward a TLS trunk: {offer}");
        let their_key = offer
            .lines()
            .find_map(|l| l.strip_prefix("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"))
            .map(|k| STANDARD.decode(k.split('|').next().unwrap().trim()).unwrap())
            .expect("an SDES key in the offer");
        let vocals_rtp: SocketAddr = format!("127.0.0.1:{}", m.split(' ').nth(1).unwrap()).parse().unwrap();

        let rtp_socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let answer = format!(
            "v=0\r\no=trunk 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio {} RTP/SAVP 0 101\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{}\r\n\
             a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n",
            rtp_socket.local_addr().unwrap().port(),
            STANDARD.encode(TRUNK_KEY)
        );
        let contact = format!("<sip:+14155550100@127.0.0.1:{trunk_port};transport=tls>");
        trunk_send(&mut tls, &trunk_response(&invite, "100 Trying", "", &contact, ""));
        trunk_send(&mut tls, &trunk_response(&invite, "180 Ringing", "callee", &contact, ""));
        let ok = trunk_response(&invite, "200 OK", "callee", &contact, &answer);
        trunk_send(&mut tls, &ok);
        let ack = common::read_stream_message(&mut tls, &mut pending).expect("the ACK, down the same connection");
        assert!(ack.starts_with("ACK sip:+14155550100@127.0.0.1:"), "{ack}");

        // SRTP both ways: ours with our key; vocals' (the echo agent's) with the key of its offer.
        let mut outbound = context(&TRUNK_KEY, false);
        let mut inbound = context(&their_key, true);
        rtp_socket.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
        let start = Instant::now();
        for k in 0..50usize {
            let due = start + Duration::from_millis(20 * k as u64);
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            rtp_socket.send_to(&outbound.encrypt_rtp(&rtp(k as u16, &frame(k))).unwrap(), vocals_rtp).unwrap();
        }
        let (mut echoed, mut buf) = (Vec::new(), [0u8; 1500]);
        let until = Instant::now() + Duration::from_secs(3);
        // vocals keeps sending (silence once the echo is over): read for a while, not until it stops.
        while let Some(Ok(n)) = (Instant::now() < until).then(|| rtp_socket.recv(&mut buf)) {
            let plain = inbound.decrypt_rtp(&buf[..n]).expect("SRTP from vocals authenticates with its offer's key");
            if plain[12..].iter().any(|&b| b != 0xFF) {
                echoed.push(plain[12..].to_vec());
            }
        }
        assert_eq!(echoed.len(), 50, "echoed frames");
        assert!(echoed.iter().enumerate().all(|(k, p)| p == &frame(k)), "the echo came back changed");

        // The callee hangs up, down the connection vocals opened.
        let bye = format!(
            "BYE sip:127.0.0.1:{tls_port};transport=tls SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:{trunk_port};branch=z9hG4bK-trunk-bye\r\n\
             Max-Forwards: 70\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n",
            header(&ok, "To"),
            header(&invite, "From"),
            header(&invite, "Call-ID")
        );
        trunk_send(&mut tls, &bye);
        let answered = common::read_stream_message(&mut tls, &mut pending).expect("the BYE answered");
        assert!(answered.starts_with("SIP/2.0 200"), "{answered}");
        drop(tls);

        // The next connection presents a certificate the trust store does not hold: vocals ends the handshake.
        let (tcp, _) = listener.accept().unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut tls = rustls::StreamOwned::new(rustls::ServerConnection::new(untrusted).unwrap(), tcp);
        let refused = common::read_stream_message(&mut tls, &mut Vec::new());
        assert!(refused.is_err(), "no message crosses an unverified connection: {refused:?}");
    });

    let (_, agents) = server.api("GET", "/v1/agents", None);
    let echo = agents["agents"].as_array().and_then(|a| a.iter().find(|a| a["kind"] == "echo")).cloned();
    let echo = echo.unwrap_or_else(|| panic!("the built-in echo agent: {agents}"));
    let body = serde_json::json!({"agent_id": echo["id"], "to": "+14155550100", "from": NUMBER});
    let (status, placed) = server.api("POST", "/v1/calls", Some(body.clone()));
    assert_eq!(status, 201, "{placed}");
    let sid = placed["sid"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(20);
    let ended = |sid: &str| server.calls().into_iter().find(|c| c["call_sid"] == sid && !c["end_at"].is_null());
    let record = loop {
        if let Some(r) = ended(&sid) {
            break r;
        }
        if far_end.is_finished() {
            // The trunk's side gave up: its panic says why.
            far_end.join().unwrap();
            panic!("the trunk's side ended before the call did: {:#?}", server.calls());
        }
        assert!(Instant::now() < deadline, "the TLS call never ended: {:#?}\n{}", server.calls(), server.log());
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(record["sip_status"], 200, "{record}");
    assert!(!record["answer_at"].is_null(), "{record}");

    // The second call: the trunk's certificate is not trusted. It fails at once (no 32 s Timer B), saying why.
    let (status, placed) = server.api("POST", "/v1/calls", Some(body));
    assert_eq!(status, 201, "{placed}");
    let sid = placed["sid"].as_str().unwrap().to_string();
    let record = loop {
        if let Some(r) = ended(&sid) {
            break r;
        }
        assert!(Instant::now() < deadline, "the untrusted call never ended: {:#?}", server.calls());
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(record["sip_status"], 503, "{record}");
    let reason = record["end_reason"].as_str().unwrap_or_default();
    assert!(reason.contains("unreachable") && reason.contains("TLS handshake"), "{record}");
    far_end.join().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
