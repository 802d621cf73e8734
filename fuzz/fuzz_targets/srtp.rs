//! Fuzz SRTP and SRTCP as they arrive on a Secure Trunking call: hostile datagrams into a call's inbound
//! context (vocals' wrapper over rtc-srtp), and an SRTP media session fed them. Nothing may panic; anything
//! that authenticates must have been protected under the peer's key (so with random bytes: nothing does), and
//! what we protect always unprotects on the other side.
#![no_main]

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use libfuzzer_sys::fuzz_target;
use vocals::media::playout::FRAME_BYTES;
use vocals::media::session::{Session, SessionConfig, Stream};
use vocals::media::srtp::Srtp;
use vocals::sdp::sdes::{KEY_SALT_LEN, KeySalt, Suite};
use vocals::sdp::{Codec, SrtpKeys};

fuzz_target!(|data: &[u8]| {
    let keys = SrtpKeys {
        suite: Suite::AesCm128HmacSha1_80,
        tag: 1,
        remote: KeySalt([1; KEY_SALT_LEN]),
        local: KeySalt([2; KEY_SALT_LEN]),
    };
    let mut ours = Srtp::new(keys);
    let mut out = [0u8; 2048];
    for d in data.split(|&b| b == 0xFE) {
        let _ = ours.unprotect_rtp(d, &mut out);
        let _ = ours.unprotect_rtcp(d, &mut out);
    }
    // Round trip: what the peer protects with its key, we unprotect to the same bytes.
    let mut peer = Srtp::new(SrtpKeys { remote: keys.local, local: keys.remote, ..keys });
    let mut buf = [0u8; 2048];
    if data.len() >= 12 && data.len() <= 1400 && data[0] >> 6 == 2 {
        buf[..data.len()].copy_from_slice(data);
        if let Ok(n) = peer.protect_rtp(&mut buf, data.len()) {
            let mut plain = [0u8; 2048];
            let m = ours.unprotect_rtp(&buf[..n], &mut plain);
            if let Ok(m) = m {
                assert_eq!(&plain[..m], data, "SRTP round trip changed the packet");
            }
        }
    }
    // A whole SRTP session takes the same datagrams without panicking.
    let from: SocketAddr = "192.0.2.10:30000".parse().unwrap();
    let stream = Stream { srtp: Some(keys), ..Stream::sendrecv(Codec::Pcmu, from) };
    let start = Instant::now();
    let mut s = Session::new(start, SystemTime::now(), SessionConfig::default(), stream);
    let mut frame = [0u8; FRAME_BYTES];
    for (i, d) in data.split(|&b| b == 0xFE).enumerate() {
        let now = start + Duration::from_millis(i as u64 * 20);
        s.handle_rtp(now, from, d);
        s.handle_rtcp(now, from, d);
        while s.poll_frame(now, &mut frame).is_some() {}
        while s.poll_transmit(now, &mut buf).is_some() {}
    }
});
