//! Secure trunking against the real `vocals`: an `RTP/SAVP` offer shaped like Twilio's (one SDES
//! `AES_CM_128_HMAC_SHA1_80` line) is answered with SRTP and vocals' own key; a test client protecting its audio
//! with webrtc-rs's SRTP contexts (not vocals' wrapper) hears every frame back from the echo agent exactly;
//! tampered and replayed packets are dropped and counted; the SRTP policy refuses what it must with 488.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
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
    let mut out = vec![0u8; 12 + payload.len()];
    let p = vocals::media::rtp::RtpPacket {
        marker: seq == 0,
        payload_type: 0,
        seq,
        timestamp: u32::from(seq) * 160,
        ssrc: 0x5EC0_0001,
        payload,
    };
    let n = vocals::media::rtp::build(&p, &mut out).unwrap();
    out.truncate(n);
    out
}

#[test]
fn an_srtp_call_is_answered_with_our_own_key_and_the_echo_comes_back_exact_and_encrypted() {
    let server = Server::start("srtp", &[]);
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
    let rx = rtp_socket.try_clone().unwrap();
    rx.set_read_timeout(Some(Duration::from_millis(1500))).unwrap();
    let receiver = std::thread::spawn(move || {
        let mut got = Vec::new();
        let mut buf = [0u8; 1500];
        while let Ok(n) = rx.recv(&mut buf) {
            got.push(buf[..n].to_vec());
        }
        got
    });
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
    let record = "call media record";
    assert_eq!(server.figure(record, "rtp_received"), frames as u64);
    assert_eq!(server.figure(record, "srtp_replayed"), 1);
    assert_eq!(server.figure(record, "srtp_rejected"), 1);
    assert!(server.log().contains("srtp=true"), "{}", server.log());
}

#[test]
fn the_srtp_policy_refuses_what_it_must_with_488() {
    let rtp_socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let required = Server::start("srtp-required", &[("VOCALS_MEDIA_SRTP", "required")]);
    let plain = offer(&rtp_socket, "RTP/AVP", None);
    let (_, answer) = Caller::send_invite_sdp(&required, "srtp-required", NUMBER, "127.0.0.1", &plain);
    assert!(answer.starts_with("SIP/2.0 488 "), "{answer}");
    assert!(header(&answer, "Warning").contains("requires SRTP"), "{answer}");
    drop(required);

    let off = Server::start("srtp-off", &[("VOCALS_MEDIA_SRTP", "off")]);
    let secure = offer(&rtp_socket, "RTP/SAVP", Some(&twilio_crypto()));
    let (_, answer) = Caller::send_invite_sdp(&off, "srtp-off", NUMBER, "127.0.0.1", &secure);
    assert!(answer.starts_with("SIP/2.0 488 "), "{answer}");

    // Allowed (the default): an SRTP offer with no usable key is refused too, saying why.
    let allowed = Server::start("srtp-allowed", &[]);
    let bad = offer(&rtp_socket, "RTP/SAVP", Some("1 AES_CM_128_HMAC_SHA1_80 inline:c2hvcnQ="));
    let (_, answer) = Caller::send_invite_sdp(&allowed, "srtp-bad-key", NUMBER, "127.0.0.1", &bad);
    assert!(answer.starts_with("SIP/2.0 488 "), "{answer}");
    assert!(header(&answer, "Warning").contains("no usable SRTP key"), "{answer}");
}
