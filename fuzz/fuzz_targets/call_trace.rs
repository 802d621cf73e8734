//! Fuzz what watches every SIP message before the parser does: the call trace's summary (Call-ID, method,
//! status, CSeq method, To tag) and the parties it reads, the trace table fed the bytes in and out, and the HEP
//! packet made of them. Nothing may panic; a trace stays within its bounds; a HEP packet decodes back to its
//! chunks with the message (cut to fit) as its payload.
#![no_main]

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use vocals::sip::hep;
use vocals::sip::trace::{CallTraces, Direction, MAX_BYTES, MAX_MESSAGES, parties, summarize};
use vocals::sip::transport::Transport;

fuzz_target!(|data: &[u8]| {
    let _ = summarize(data);
    let _ = parties(data);
    let peer: SocketAddr = "192.0.2.1:5060".parse().unwrap();
    let local: SocketAddr = "[::1]:5060".parse().unwrap();
    let bytes = Bytes::copy_from_slice(data);
    let mut traces = CallTraces::new(4);
    let t0 = Instant::now();
    // The same bytes as an INVITE's whole dialog: in, out, in again, then everything swept.
    let invite = Bytes::from(format!(
        "INVITE sip:x@h SIP/2.0\r\nCall-ID: {}\r\nCSeq: 1 INVITE\r\nTo: <sip:x@h>\r\n\r\n",
        summarize(data).map(|s| String::from_utf8_lossy(s.call_id).into_owned()).unwrap_or_else(|| "c".into())
    ));
    for (i, (dir, b)) in [(Direction::In, &invite), (Direction::Out, &bytes), (Direction::In, &bytes)].into_iter().enumerate() {
        traces.observe(t0 + Duration::from_millis(i as u64), SystemTime::now(), dir, peer, local, Transport::Udp, b);
    }
    let mut out = Vec::new();
    traces.sweep(t0 + Duration::from_secs(24 * 3600), &mut out);
    for f in &out {
        let trace: serde_json::Value = serde_json::from_str(&f.trace).expect("the trace is JSON");
        let messages = trace["messages"].as_array().unwrap();
        assert!(messages.len() <= MAX_MESSAGES);
        let kept: u64 = messages.iter().map(|m| m["bytes"].as_u64().unwrap().min(8192)).sum();
        assert!(kept as usize <= MAX_BYTES);
    }
    let mut packet = BytesMut::new();
    let call_id = summarize(data).map(|s| s.call_id).unwrap_or_default();
    hep::encode(&mut packet, 1, SystemTime::now(), Direction::Out, peer, local, Transport::Tcp, call_id, data);
    let chunks = hep::decode(&packet).expect("our HEP packet decodes");
    let payload = &chunks.iter().find(|c| c.1 == hep::chunk::PAYLOAD).expect("a payload chunk").2;
    assert!(data.starts_with(payload), "the payload is the message, cut to fit");
});
