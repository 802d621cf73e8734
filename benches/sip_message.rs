//! SIP message layer benches: parse the Twilio INVITE fixture (UDP, ~1.3 KB) and print a 200 OK answering it.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use vocals::sip::message::{HeaderName, Limits, Message, Response, StatusCode};

const INVITE: &[u8] = include_bytes!("../sip-tests/vectors/twilio/twilio-invite-udp.sip");
const INVITE_SHAKEN: &[u8] = include_bytes!("../sip-tests/vectors/twilio/twilio-invite-cnam-shaken.sip");

fn parse(c: &mut Criterion) {
    let limits = Limits::default();
    let mut group = c.benchmark_group("parse");
    for (name, bytes) in [("twilio_invite_udp", INVITE), ("twilio_invite_cnam_shaken", INVITE_SHAKEN)] {
        // A refcounted buffer, as a datagram copied out of the socket's receive buffer is: every slice the
        // parser keeps costs what it costs in the server (a static buffer would make slices free).
        let buf = Bytes::copy_from_slice(bytes);
        drop(buf.clone());
        group.throughput(criterion::Throughput::Bytes(bytes.len() as u64));
        group.bench_function(name, |b| b.iter(|| Message::parse_datagram(black_box(buf.clone()), &limits).unwrap()));
        // What a UAS spends on an INVITE before creating its dialog: parse, then check every typed header.
        group.bench_function(format!("{name}+validate"), |b| {
            b.iter(|| {
                let msg = Message::parse_datagram(black_box(buf.clone()), &limits).unwrap();
                msg.validate().unwrap();
                msg
            })
        });
    }
    group.finish();
}

fn print(c: &mut Criterion) {
    let Message::Request(invite) = Message::parse(Bytes::from_static(INVITE)).unwrap() else { unreachable!() };
    let sdp = Bytes::from_static(
        b"v=0\r\no=vocals 1 1 IN IP4 203.0.113.10\r\ns=vocals\r\nc=IN IP4 203.0.113.10\r\nt=0 0\r\n\
          m=audio 10000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n\
          a=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n",
    );
    let mut ok = Response::to_request(&invite, StatusCode::OK, Some("vc1f3a9b2"));
    ok.headers.push(HeaderName::Contact, Bytes::from_static(b"<sip:+14155550123@203.0.113.10:5060;transport=udp>"));
    ok.headers.push(HeaderName::ContentType, Bytes::from_static(b"application/sdp"));
    ok.body = sdp;
    let mut out = bytes::BytesMut::with_capacity(2048);
    c.bench_function("print/200_ok", |b| {
        b.iter(|| {
            out.clear();
            black_box(&ok).encode(&mut out);
            black_box(out.len())
        })
    });
    c.bench_function("build_and_print/200_ok", |b| {
        b.iter(|| {
            let mut r = Response::to_request(black_box(&invite), StatusCode::OK, Some("vc1f3a9b2"));
            r.headers.push(HeaderName::ContentType, Bytes::from_static(b"application/sdp"));
            r.to_bytes()
        })
    });
}

criterion_group!(benches, parse, print);
criterion_main!(benches);
