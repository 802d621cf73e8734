//! Whole-message tests: the Twilio INVITE field by field, framing rules, lenient values, printing, response
//! construction, and property tests (print/parse round trip; arbitrary bytes never panic).

use bytes::Bytes;
use proptest::prelude::*;

use super::*;
use crate::sip::message::typed::{Contact, Transport};

const INVITE: &[u8] = include_bytes!("../../../sip-tests/vectors/twilio/twilio-invite-udp.sip");
const SHAKEN: &[u8] = include_bytes!("../../../sip-tests/vectors/twilio/twilio-invite-cnam-shaken.sip");

fn request(bytes: &[u8]) -> Request {
    match Message::parse(Bytes::copy_from_slice(bytes)) {
        Ok(Message::Request(r)) => r,
        other => panic!("not a request: {other:?}"),
    }
}

fn msg(lines: &[&str], body: &str) -> Vec<u8> {
    let mut s = lines.join("\r\n");
    s.push_str("\r\n\r\n");
    s.push_str(body);
    s.into_bytes()
}

fn minimal(extra: &[&str]) -> Vec<u8> {
    let mut lines = vec![
        "OPTIONS sip:vocals.example SIP/2.0",
        "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKx",
        "From: <sip:a@example.com>;tag=1",
        "To: <sip:vocals.example>",
        "Call-ID: c1@example.com",
        "CSeq: 1 OPTIONS",
    ];
    lines.extend_from_slice(extra);
    msg(&lines, "")
}

#[test]
fn twilio_invite_parses_field_by_field() {
    let req = request(INVITE);
    assert_eq!(req.method, Method::Invite);
    assert_eq!(req.uri.user().unwrap(), "+14155550123");
    let h = &req.headers;
    let vias: Vec<_> = h.vias().map(Result::unwrap).collect();
    assert_eq!(vias.len(), 2);
    assert_eq!(vias[0].host, Host::V4("54.244.51.1".parse().unwrap()));
    assert_eq!(vias[0].branch().unwrap(), "z9hG4bKaa5f.4cc3d89527cfee61055932ce9988c0ae.0");
    assert_eq!(vias[1].rport(), Some(Some(5060)));
    assert_eq!(h.from().unwrap().tag().unwrap(), "58670300_c3356d0b_4bb137d8-5577-4f00-b025-0ca8b34a106d");
    assert!(h.to().unwrap().tag().is_none());
    assert_eq!(h.call_id().unwrap().0, "4fcfeac91be99541077a4961772ffc0f@0.0.0.0");
    assert_eq!(h.cseq().unwrap().seq, 48063);
    assert_eq!(h.max_forwards().unwrap().unwrap().0, 60);
    let rr: Vec<_> = h.record_routes().map(Result::unwrap).collect();
    assert_eq!(rr.len(), 1);
    assert_eq!(rr[0].uri.to_string(), "sip:54.244.51.1;lr");
    let Contact::Addr(contact) = h.contacts().next().unwrap().unwrap() else { panic!() };
    assert_eq!(contact.uri.params().unwrap().value("transport").unwrap(), "udp");
    assert!(h.has_token(&HeaderName::Allow, "REFER"));
    assert_eq!(h.tokens(&HeaderName::Allow).count(), 7);
    assert!(h.content_type().unwrap().unwrap().is("application", "sdp"));
    let diversion = h.diversions().next().unwrap().unwrap();
    assert_eq!(diversion.params.value("reason").unwrap(), "unconditional");
    assert_eq!(h.p_asserted_identities().next().unwrap().unwrap().uri.user().unwrap(), "+12125550100");
    let x: Vec<_> = h.x_headers().map(|x| x.name.to_string()).collect();
    assert_eq!(x, ["X-Twilio-AccountSid", "X-Twilio-CallSid"]);
    assert_eq!(req.body.len(), 289);
    assert!(req.body.starts_with(b"v=0\r\n") && req.body.ends_with(b"a=ptime:20\r\n"));
}

#[test]
fn shaken_invite_keeps_the_identity_header_whole_and_the_cnam() {
    let req = request(SHAKEN);
    let identity = req.headers.get(&HeaderName::Identity).unwrap();
    assert!(identity.starts_with(b"eyJhbGciOiJFUzI1NiIs") && identity.ends_with(b";ppt=shaken"));
    assert_eq!(&*req.headers.from().unwrap().display_name().unwrap(), b"WIRELESS CALLER");
    assert_eq!(req.headers.get(&HeaderName::new("x-twilio-verstat")).unwrap(), b"TN-Validation-Passed-A");
}

#[test]
fn compact_names_space_before_colon_and_folding_are_read() {
    let bytes = msg(
        &[
            "INVITE sip:+14155550123@vocals.example SIP/2.0",
            "v: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1",
            "f  :  <sip:a@example.com>;tag=1",
            "t:<sip:+14155550123@vocals.example>",
            "i:c1",
            "CSeq: 1",
            "  INVITE",
            "Subject: I know you're there,",
            "\t pick up!",
            "l: 0",
        ],
        "",
    );
    let req = request(&bytes);
    assert_eq!(req.headers.cseq().unwrap().method, Method::Invite);
    assert_eq!(req.headers.get(&HeaderName::Subject).unwrap(), b"I know you're there, pick up!");
    assert_eq!(req.headers.from().unwrap().tag().unwrap(), "1");
    assert_eq!(req.headers.call_id().unwrap().0, "c1");
}

#[test]
fn comma_joined_values_split_outside_quotes_and_brackets() {
    let bytes = minimal(&[
        r#"Record-Route: <sip:p2.example.com;lr>, "Proxy, Two" <sip:a,b@p1.example.com;lr>"#,
        "Via: SIP/2.0/TCP [2001:db8::5]:5061;branch=z9hG4bK2,SIP/2.0/UDP h;branch=z9hG4bK3",
    ]);
    let req = request(&bytes);
    let rr: Vec<_> = req.headers.record_routes().map(Result::unwrap).collect();
    assert_eq!(rr.len(), 2);
    assert_eq!(&*rr[1].display_name().unwrap(), b"Proxy, Two");
    assert_eq!(rr[1].uri.user().unwrap(), "a,b");
    let vias: Vec<_> = req.headers.vias().map(Result::unwrap).collect();
    assert_eq!(vias.len(), 3);
    assert_eq!(vias[1].transport, Transport::Tcp);
}

#[test]
fn non_utf8_values_are_kept_as_bytes() {
    let mut bytes = minimal(&["Subject: cafXY"]);
    let at = bytes.windows(5).position(|w| w == b"cafXY").unwrap() + 3;
    bytes.splice(at..at + 2, [0xe9, 0xff]);
    let req = request(&bytes);
    assert_eq!(req.headers.get(&HeaderName::Subject).unwrap(), &b"caf\xe9\xff"[..]);
}

#[test]
fn datagram_body_follows_content_length_and_ignores_trailing_bytes() {
    let mut bytes = minimal(&["Content-Length: 4"]);
    bytes.extend_from_slice(b"bodyEXTRA");
    assert_eq!(request(&bytes).body, "body");
    let short = [minimal(&["Content-Length: 10"]), b"body".to_vec()].concat();
    assert_eq!(Message::parse(short).unwrap_err(), ParseError::TruncatedBody { declared: 10, available: 4 });
    let no_length = [minimal(&[]), b"rest of datagram".to_vec()].concat();
    assert_eq!(request(&no_length).body, "rest of datagram");
}

#[test]
fn leading_empty_lines_are_ignored() {
    let bytes = [b"\r\n\r\n".to_vec(), minimal(&[])].concat();
    assert_eq!(request(&bytes).method, Method::Options);
}

#[test]
fn stream_framing_finds_each_message_in_a_buffer() {
    let limits = Limits::default();
    let one = [minimal(&["Content-Length: 3"]), b"abc".to_vec()].concat();
    let mut buf = b"\r\n\r\n".to_vec();
    buf.extend_from_slice(&one);
    buf.extend_from_slice(b"\r\n");
    buf.extend_from_slice(&one);
    assert_eq!(frame_stream(&buf, &limits), Ok(StreamFrame::Ping));
    let rest = &buf[4..];
    assert_eq!(frame_stream(rest, &limits), Ok(StreamFrame::Message(one.len())));
    let msg = Message::parse_stream(Bytes::copy_from_slice(&rest[..one.len()]), &limits).unwrap();
    assert_eq!(msg.body(), "abc");
    let rest = &rest[one.len()..];
    assert_eq!(frame_stream(rest, &limits), Ok(StreamFrame::Pong));
    assert_eq!(frame_stream(&rest[2..], &limits), Ok(StreamFrame::Message(one.len())));
}

#[test]
fn stream_framing_says_incomplete_at_every_split_point() {
    let limits = Limits::default();
    let whole = [minimal(&["Content-Length: 3"]), b"abc".to_vec()].concat();
    for cut in 0..whole.len() {
        assert_eq!(frame_stream(&whole[..cut], &limits), Ok(StreamFrame::Incomplete), "cut at {cut}");
    }
    assert_eq!(frame_stream(&whole, &limits), Ok(StreamFrame::Message(whole.len())));
}

#[test]
fn stream_framing_requires_content_length_and_bounds_the_header_section() {
    let limits = Limits { max_message: 2000, ..Limits::default() };
    assert_eq!(frame_stream(&minimal(&[]), &limits).unwrap_err().kind(), "content-length");
    assert_eq!(frame_stream(&minimal(&["l: -1"]), &limits).unwrap_err().kind(), "content-length");
    let endless = vec![b'a'; 2000];
    assert_eq!(frame_stream(&endless, &limits).unwrap_err().kind(), "too-large");
    assert_eq!(frame_stream(&endless[..1999], &limits), Ok(StreamFrame::Incomplete));
    let huge_body = minimal(&["Content-Length: 5000"]);
    assert_eq!(frame_stream(&huge_body, &limits).unwrap_err().kind(), "too-large");
}

#[test]
fn limits_are_configurable() {
    let bytes = minimal(&["Subject: 0123456789012345678901234567890123456789"]);
    let tight = Limits { max_header_line: 40, ..Limits::default() };
    assert_eq!(Message::parse_datagram(Bytes::from(bytes.clone()), &tight).unwrap_err().kind(), "too-large");
    let few = Limits { max_headers: 5, ..Limits::default() };
    assert_eq!(Message::parse_datagram(Bytes::from(bytes.clone()), &few).unwrap_err().kind(), "too-large");
    assert!(Message::parse_datagram(Bytes::from(bytes), &Limits::default()).is_ok());
}

#[test]
fn bad_input_gets_a_specific_error() {
    #[rustfmt::skip]
    let cases: &[(&[u8], &str)] = &[
        (b"", "start-line"),
        (b"garbage", "start-line"),
        (b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n\r\n", "missing-header"),
        (b"INVITE sip:a@b SIP/2.0\nVia: x\n\n", "header-syntax"),
        (b"SIP/2.0 200 OK\r\n\r\n", "missing-header"),
        (b"SIP/2.0 2000 OK\r\n\r\n", "start-line"),
        (b"SIP/3.0 200 OK\r\n\r\n", "version"),
        // Found by fuzzing: an empty Via line counted as a Via, and the printed message lost it.
        (b"OPTIONS sip:h SIP/2.0\r\nVia: \r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:h>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n", "header-value"),
        (b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nBad Name: x\r\n\r\n", "header-syntax"),
    ];
    for (bytes, kind) in cases {
        let got = Message::parse(Bytes::copy_from_slice(bytes)).unwrap_err();
        assert_eq!(got.kind(), *kind, "{:?}: {got}", String::from_utf8_lossy(bytes));
    }
}

#[test]
fn parsing_checks_what_every_message_needs_and_validate_checks_the_rest() {
    // A bad Contact or a bad lower Via does not stop a BYE or an ACK from being matched and answered ...
    let bad_contact = minimal(&["Contact: <sip:a@2001:db8::1>", "Via: SIP/2.0/UDP 2001:db8::1"]);
    let msg = Message::parse(bad_contact).expect("top Via, From, To, Call-ID and CSeq are fine");
    // ... but whoever needs them, e.g. a UAS creating a dialog, gets the specific error.
    assert_eq!(msg.validate().unwrap_err().kind(), "header-value");
    assert!(msg.headers().contacts().next().unwrap().is_err());
    // The headers every message relies on are checked at parse time.
    let bad_top_via = minimal(&[]);
    let text = String::from_utf8(bad_top_via).unwrap().replace("SIP/2.0/UDP 192.0.2.1:5060", "SIP/2.0/UDP 2001:db8::1");
    assert_eq!(Message::parse(text).unwrap_err().kind(), "header-value");
    assert!(request(INVITE).headers.iter().count() > 0 && Message::parse(INVITE).unwrap().validate().is_ok());
    // A Contact line with no element at all is refused by validate (its grammar needs one).
    let empty_contact = Message::parse(minimal(&["Contact: ,"])).unwrap();
    assert_eq!(empty_contact.validate().unwrap_err().to_string(), "bad Contact header: empty value");
}

#[test]
fn printing_is_canonical_and_content_length_always_matches() {
    let bytes = msg(
        &[
            "MESSAGE sip:vocals.example SIP/2.0",
            "v: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1, SIP/2.0/UDP 192.0.2.2;branch=z9hG4bK2",
            "f: <sip:a@example.com>;tag=1",
            "t: <sip:vocals.example>",
            "i: c1",
            "CSeq: 7 MESSAGE",
            "X-Custom:   kept  ",
        ],
        "hello",
    );
    let printed = Message::parse(bytes).unwrap().to_bytes();
    // Full names, values trimmed, list lines as received (their elements are split when read).
    let expected = "MESSAGE sip:vocals.example SIP/2.0\r\n\
        Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1, SIP/2.0/UDP 192.0.2.2;branch=z9hG4bK2\r\n\
        From: <sip:a@example.com>;tag=1\r\n\
        To: <sip:vocals.example>\r\n\
        Call-ID: c1\r\n\
        CSeq: 7 MESSAGE\r\n\
        X-Custom: kept\r\n\
        Content-Length: 5\r\n\r\nhello";
    assert_eq!(String::from_utf8_lossy(&printed), expected);
}

#[test]
fn a_response_copies_what_rfc_3261_8_2_6_says() {
    let req = request(INVITE);
    let ok = Response::to_request(&req, StatusCode::OK, Some("vc9"));
    let names: Vec<_> = ok.headers.iter().map(|h| h.name.to_string()).collect();
    assert_eq!(names, ["Via", "Via", "From", "To", "Call-ID", "CSeq", "Record-Route"]);
    assert_eq!(ok.headers.to().unwrap().tag().unwrap(), "vc9");
    assert_eq!(ok.headers.get(&HeaderName::Via), req.headers.get(&HeaderName::Via));
    assert_eq!(ok.reason, "OK");
    let printed = ok.to_bytes();
    assert!(printed.starts_with(b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 54.244.51.1:5060;branch="));
    let again = Message::parse(printed).unwrap();
    assert_eq!(again.as_response().unwrap(), &ok);

    let trying = Response::to_request(&req, StatusCode::TRYING, Some("vc9"));
    assert!(trying.headers.to().unwrap().tag().is_none(), "100 Trying carries no To tag");
    assert!(!trying.headers.contains(&HeaderName::RecordRoute));

    let busy = Response::to_request(&req, StatusCode::NOT_FOUND, Some("vc9")).with_reason("Number\r\nNot Assigned");
    assert!(!busy.headers.contains(&HeaderName::RecordRoute), "only dialog-creating responses copy Record-Route");
    assert_eq!(busy.reason, "Number  Not Assigned");
}

#[test]
fn an_existing_to_tag_is_kept() {
    let bytes = minimal(&[]);
    let text =
        String::from_utf8(bytes).unwrap().replace("To: <sip:vocals.example>", "To: <sip:vocals.example>;tag=theirs");
    let req = request(text.as_bytes());
    let ok = Response::to_request(&req, StatusCode::OK, Some("ours"));
    assert_eq!(ok.headers.to().unwrap().tag().unwrap(), "theirs");
}

#[test]
fn a_request_missing_mandatory_headers_still_gets_a_400_echoing_what_it_has() {
    let bytes = msg(
        &["INVITE sip:bob@example.com SIP/2.0", "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1", "CSeq: 1 INVITE"],
        "",
    );
    let e = Message::parse(Bytes::copy_from_slice(&bytes)).unwrap_err();
    let answer = error_response(&bytes, &e).expect("answered");
    let text = std::str::from_utf8(&answer).unwrap();
    assert!(text.starts_with("SIP/2.0 400 missing "), "{text}");
    assert!(text.contains("\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n"), "{text}");
    assert!(text.contains("\r\nCSeq: 1 INVITE\r\n") && !text.contains("From:") && !text.contains("Call-ID:"));
    assert_eq!(frame_stream(&answer, &Limits::default()), Ok(StreamFrame::Message(answer.len())));
}

#[test]
fn malformed_values_are_left_out_of_the_400_rather_than_reflected() {
    let bytes = minimal(&[]);
    let text =
        String::from_utf8(bytes).unwrap().replace("192.0.2.1:5060", "2001:db8::9:1").replace("c1@", "two words@");
    let e = Message::parse(Bytes::copy_from_slice(text.as_bytes())).unwrap_err();
    let answer = String::from_utf8(error_response(text.as_bytes(), &e).expect("answered").to_vec()).unwrap();
    assert!(answer.starts_with("SIP/2.0 400 "), "{answer}");
    assert!(!answer.contains("Via:") && !answer.contains("Call-ID:"), "{answer}");
    assert!(answer.contains("From: <sip:a@example.com>;tag=1\r\n") && answer.contains("CSeq: 1 OPTIONS\r\n"));
}

#[test]
fn noise_responses_and_acks_get_no_error_response() {
    let e = ParseError::MissingHeader("Via");
    for bytes in [
        &b"hello there\r\n\r\n"[..],
        b"SIP/2.0 200 OK\r\n\r\n",
        b"ACK sip:a@b SIP/2.0\r\n\r\n",
        b"GET / HTTP/1.1\r\n\r\n",
    ] {
        assert_eq!(error_response(bytes, &e), None, "{}", String::from_utf8_lossy(bytes));
    }
    assert!(error_response(b"\r\nINV@TE sip:a@b SIP/2.0\r\n\r\n", &e).is_some());
}

#[test]
fn two_content_lengths_cannot_frame_a_stream() {
    let bytes = minimal(&["Content-Length: 12", "Content-Length: 0"]);
    assert_eq!(frame_stream(&bytes, &Limits::default()), Err(ParseError::ContentLength("given twice")));
    let one = minimal(&["Content-Length: 0"]);
    assert_eq!(frame_stream(&one, &Limits::default()), Ok(StreamFrame::Message(one.len())));
}

/// Header values that survive as typed or raw values: a mix of tokens, URIs, quoted strings and parameters.
fn header_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9][A-Za-z0-9 ._!%*+`'~-]{0,30}",
        "\"[ -!#-\\[\\]-~]{0,20}\" <sip:[a-z0-9]{1,8}@[a-z]{1,8}\\.example>;tag=[a-z0-9]{1,8}",
        "<sip:\\+[0-9]{11}@[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}:[0-9]{4};lr>",
    ]
}

fn message_strategy() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(vec!["INVITE", "OPTIONS", "BYE", "INFO", "X-CUSTOM"]),
        "[a-z]{1,8}",
        0u32..(1 << 31),
        prop::collection::vec(("X-[A-Za-z]{1,10}", header_value()), 0..8),
        prop::collection::vec(any::<u8>(), 0..64),
        any::<bool>(),
    )
        .prop_map(|(method, user, seq, extra, body, compact)| {
            let mut lines = vec![
                format!("{method} sip:{user}@vocals.example SIP/2.0"),
                format!(
                    "{}: SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bK{user};rport",
                    if compact { "v" } else { "Via" }
                ),
                format!("{}: \"A, B\" <sip:{user}@example.com>;tag={seq}", if compact { "f" } else { "From" }),
                "To: sip:+14155550123@vocals.example".to_string(),
                format!("Call-ID: {user}@h"),
                format!("CSeq: {seq} {method}"),
            ];
            lines.extend(extra.into_iter().map(|(n, v)| format!("{n}: {v}")));
            lines.push(format!("Content-Length: {}", body.len()));
            let mut bytes = lines.join("\r\n").into_bytes();
            bytes.extend_from_slice(b"\r\n\r\n");
            bytes.extend_from_slice(&body);
            bytes
        })
}

proptest! {
    #[test]
    fn printing_what_was_parsed_parses_to_the_same_message(bytes in message_strategy()) {
        let first = Message::parse(bytes).expect("generated messages are valid");
        let printed = first.to_bytes();
        let second = Message::parse(printed.clone()).expect("printed message parses");
        prop_assert_eq!(&second, &first);
        prop_assert_eq!(second.to_bytes(), printed);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = Message::parse(bytes.clone());
        let _ = frame_stream(&bytes, &Limits::default());
    }

    #[test]
    fn mutated_twilio_invites_never_panic(
        edits in prop::collection::vec((0usize..1300, any::<u8>()), 1..12),
        cut in 0usize..1400,
    ) {
        let mut bytes = INVITE.to_vec();
        for (at, b) in edits {
            let at = at % bytes.len();
            bytes[at] = b;
        }
        bytes.truncate(cut.max(1));
        if let Ok(msg) = Message::parse(bytes.clone()) {
            // Whatever parses must print and parse back to itself.
            let again = Message::parse_stream(msg.to_bytes(), &Limits::unlimited());
            prop_assert_eq!(again.as_ref().ok(), Some(&msg));
        }
        let _ = frame_stream(&bytes, &Limits::default());
    }
}
