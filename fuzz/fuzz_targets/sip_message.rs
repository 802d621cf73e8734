//! Fuzz the SIP message layer: datagram parsing, stream framing, and the typed accessors and bodies of whatever
//! parses. Anything that parses must print to bytes that parse back to the same message (or body); anything
//! that does not parse gets, when answerable, an error response that parses.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use vocals::sip::message::typed::{Dtmf, DtmfRelay, Sipfrag};
use vocals::sip::message::{Limits, Message, StreamFrame, frame_stream};

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    if let Ok(StreamFrame::Message(n)) = frame_stream(data, &limits) {
        let _ = Message::parse_stream(Bytes::copy_from_slice(&data[..n]), &limits);
    }
    let msg = match Message::parse_datagram(Bytes::copy_from_slice(data), &limits) {
        Ok(msg) => msg,
        Err(e) => {
            // What the endpoint answers a malformed request with must itself be a well-framed response, and
            // parse whole when it echoes all five headers a response needs.
            if let Some(answer) = vocals::sip::message::error_response(data, &e) {
                vocals::sip::message::check_error_response(&answer);
            }
            return;
        }
    };
    let _ = msg.validate();
    let h = msg.headers();
    let _ = h.vias().count();
    let _ = (h.from(), h.to(), h.call_id(), h.cseq(), h.max_forwards(), h.content_type());
    let _ = (h.contacts().count(), h.record_routes().count(), h.diversions().count(), h.reasons().count());
    let _ = (h.event(), h.subscription_state(), h.refer_to());
    let body = msg.body();
    if let Ok(frag) = Sipfrag::parse(body) {
        assert_eq!(Sipfrag::parse(&frag.to_bytes()).as_ref(), Ok(&frag), "sipfrag round trip");
    }
    if let Ok(relay) = DtmfRelay::parse(body) {
        assert_eq!(DtmfRelay::parse(&relay.to_bytes()), Ok(relay), "dtmf-relay round trip");
    }
    if let Ok(dtmf) = Dtmf::parse(body) {
        assert_eq!(Dtmf::parse(&dtmf.to_bytes()), Ok(dtmf), "dtmf round trip");
    }
    if let Some(req) = msg.as_request() {
        let _ = vocals::e164::E164::from_uri(&req.uri);
        let _ = vocals::sip::message::Response::to_request(req, vocals::sip::message::StatusCode::OK, Some("t"));
    }
    let printed = msg.to_bytes();
    let again = Message::parse_stream(printed, &Limits::unlimited())
        .expect("a printed message parses");
    assert_eq!(again, msg, "print/parse round trip changed the message");
});
