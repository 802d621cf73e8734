//! The per-packet media path of one call, as its task runs it: RTP parse -> source/PT check -> jitter buffer
//! -> frame hand-off (A-law decoded and re-encoded to the agent's μ-law) -> the echo agent's audio queued ->
//! the 20 ms tick frames it (μ-law decoded and encoded to A-law) -> RTP build. One iteration is one packet in
//! and one packet out, on a virtual clock advancing 20 ms per packet. A PCMU call skips the transcoding.

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use criterion::{Criterion, criterion_group, criterion_main};
use vocals::media::g711;
use vocals::media::playout::FRAME_BYTES;
use vocals::media::rtp::{self, RtpPacket};
use vocals::media::session::{Session, SessionConfig, Stream};
use vocals::sdp::Codec;

fn session(codec: Codec, now: Instant) -> (Session, SocketAddr) {
    let peer: SocketAddr = "192.0.2.10:30000".parse().unwrap();
    (Session::new(now, SystemTime::now(), SessionConfig::default(), Stream::sendrecv(codec, peer)), peer)
}

fn media_path(c: &mut Criterion) {
    let mut group = c.benchmark_group("media_path");
    for codec in [Codec::Pcma, Codec::Pcmu] {
        let start = Instant::now();
        let (mut s, peer) = session(codec, start);
        let pt = if codec == Codec::Pcmu { 0 } else { 8 };
        let payload: Vec<u8> = (0..FRAME_BYTES).map(|i| g711::alaw_encode((i as i16 - 80) * 90)).collect();
        let mut datagram = [0u8; 172];
        let mut out = [0u8; 1500];
        let mut frame = [0u8; FRAME_BYTES];
        let mut k: u64 = 0;
        group.bench_function(format!("packet_in_packet_out_{}", codec.name()), |b| {
            b.iter(|| {
                k += 1;
                let now = start + Duration::from_millis(20 * k);
                let p = RtpPacket {
                    marker: false,
                    payload_type: pt,
                    seq: k as u16,
                    timestamp: (k * 160) as u32,
                    ssrc: 7,
                    payload: &payload,
                };
                let n = rtp::build(&p, &mut datagram).unwrap();
                s.handle_rtp(now, peer, black_box(&datagram[..n]));
                while s.poll_frame(now, &mut frame).is_some() {
                    s.playout().push(&frame);
                }
                let mut sent = 0;
                while let Some(t) = s.poll_transmit(now, &mut out) {
                    sent += t.len;
                }
                black_box(sent)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, media_path);
criterion_main!(benches);
