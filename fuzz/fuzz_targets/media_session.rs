//! Fuzz a call's media session with hostile datagrams on its RTP and RTCP ports: RTP parse (rtc-rtp's header
//! codec), latching, the jitter buffer, DTMF, RTCP parse (rtc-rtcp) and the reports built from what arrived.
//! Nothing may panic; whatever parses as RTP must build back to the same packet.
#![no_main]

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use libfuzzer_sys::fuzz_target;
use vocals::media::playout::FRAME_BYTES;
use vocals::media::rtp;
use vocals::media::session::{Session, SessionConfig, Stream};
use vocals::sdp::Codec;

fuzz_target!(|data: &[u8]| {
    let peer: SocketAddr = "192.0.2.10:30000".parse().unwrap();
    let stream = Stream::sendrecv(Codec::Pcma, peer);
    let config = SessionConfig { rtcp_interval: Duration::from_millis(100), ..SessionConfig::default() };
    let start = Instant::now();
    let mut s = Session::new(start, SystemTime::now(), config, stream);
    let (mut out, mut frame) = ([0u8; 1500], [0u8; FRAME_BYTES]);
    // Datagrams separated by 0xFE 0xFE; the first byte of each picks the port and the time step.
    for (i, d) in data.split(|&b| b == 0xFE).enumerate() {
        let Some((&ctl, body)) = d.split_first() else { continue };
        let now = start + Duration::from_millis(u64::from(ctl & 0x3F) * 7 + i as u64 * 20);
        if let Ok(p) = rtp::parse(body) {
            let mut buf = [0u8; 1500];
            if let Some(n) = rtp::build(&p, &mut buf) {
                let back = rtp::parse(&buf[..n]).expect("a built packet parses");
                assert_eq!((back.seq, back.timestamp, back.ssrc, back.payload), (p.seq, p.timestamp, p.ssrc, p.payload));
            }
        }
        if ctl & 0x80 == 0 {
            s.handle_rtp(now, peer, body);
        } else {
            s.handle_rtcp(now, peer, body);
        }
        while s.poll_frame(now, &mut frame).is_some() {
            s.playout().push(&frame);
        }
        while s.poll_digit().is_some() {}
        while s.poll_transmit(now, &mut out).is_some() {}
        s.handle_timeout(now);
    }
    let _ = s.stats();
});
