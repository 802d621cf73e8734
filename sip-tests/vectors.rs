//! Wire vectors: every message in `sip-tests/vectors/MANIFEST` is parsed as the manifest says (datagram by
//! default, `stream` for TCP framing) and fully validated (`Message::validate`, as a UAS does before creating a
//! dialog), and must give the expected result: `ok`, or the named error kind.
//! Every message that parses must also print to bytes that parse back to the same message.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use vocals::sip::message::{Limits, Message, ParseError, StreamFrame, frame_stream};

struct Vector {
    path: String,
    expect: String,
    stream: bool,
}

fn manifest() -> (PathBuf, Vec<Vector>) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("sip-tests/vectors");
    let text = std::fs::read_to_string(dir.join("MANIFEST")).expect("sip-tests/vectors/MANIFEST");
    let vectors = text
        .lines()
        .map(|l| l.split('#').next().unwrap_or_default().trim())
        .filter(|l| !l.is_empty())
        .map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            assert!((2..=3).contains(&cols.len()), "bad MANIFEST line: {l}");
            assert!(cols.len() == 2 || cols[2] == "stream", "bad MANIFEST framing: {l}");
            Vector { path: cols[0].to_string(), expect: cols[1].to_string(), stream: cols.len() == 3 }
        })
        .collect();
    (dir, vectors)
}

fn parse(bytes: Bytes, stream: bool, limits: &Limits) -> Result<Message, ParseError> {
    if !stream {
        let msg = Message::parse_datagram(bytes, limits)?;
        msg.validate()?;
        return Ok(msg);
    }
    let msg = match frame_stream(&bytes, limits)? {
        StreamFrame::Message(n) => Message::parse_stream(bytes.slice(..n), limits),
        StreamFrame::Incomplete => Err(ParseError::Incomplete),
        other => panic!("vector framed as a keepalive: {other:?}"),
    }?;
    msg.validate()?;
    Ok(msg)
}

#[test]
fn every_vector_gives_its_expected_result() {
    let (dir, vectors) = manifest();
    let limits = Limits::default();
    let mut failures = Vec::new();
    for v in &vectors {
        let bytes = Bytes::from(std::fs::read(dir.join(&v.path)).unwrap_or_else(|e| panic!("{}: {e}", v.path)));
        let got = parse(bytes, v.stream, &limits);
        let kind = match &got {
            Ok(_) => "ok".to_string(),
            Err(e) => e.kind().to_string(),
        };
        if kind != v.expect {
            failures.push(format!("{}: expected {}, got {} ({:?})", v.path, v.expect, kind, got.as_ref().err()));
            continue;
        }
        if let Ok(msg) = got {
            let printed = msg.to_bytes();
            match Message::parse_stream(printed.clone(), &Limits::unlimited()) {
                Ok(again) if again == msg => {}
                other => failures.push(format!(
                    "{}: printed form does not parse back to the same message: {:?}\n{}",
                    v.path,
                    other.err(),
                    String::from_utf8_lossy(&printed)
                )),
            }
        }
    }
    assert!(failures.is_empty(), "{} of {} vectors failed:\n{}", failures.len(), vectors.len(), failures.join("\n"));
}

#[test]
fn the_vector_set_covers_every_error_kind_and_both_framings() {
    let (_, vectors) = manifest();
    let own = vectors.iter().filter(|v| !v.path.starts_with("twilio/")).count();
    assert!(own >= 40, "only {own} vectors of our own");
    for kind in [
        "ok",
        "start-line",
        "version",
        "request-uri",
        "header-syntax",
        "missing-header",
        "duplicate-header",
        "header-value",
        "content-length",
        "truncated-body",
        "cseq-mismatch",
        "too-large",
        "incomplete",
    ] {
        assert!(vectors.iter().any(|v| v.expect == kind), "no vector expects {kind}");
    }
    assert!(vectors.iter().any(|v| v.stream && v.expect == "ok"));
}

#[test]
fn every_twilio_invite_routes_on_a_phone_number() {
    let (dir, vectors) = manifest();
    for v in vectors.iter().filter(|v| v.path.starts_with("twilio/twilio-invite")) {
        let bytes = Bytes::from(std::fs::read(dir.join(&v.path)).unwrap());
        let Ok(Message::Request(req)) = Message::parse(bytes) else { panic!("{} did not parse", v.path) };
        let dialed = vocals::e164::E164::from_uri(&req.uri)
            .or_else(|_| vocals::e164::E164::from_uri(&req.headers.to().unwrap().uri))
            .or_else(|_| vocals::e164::E164::from_uri(&req.headers.diversions().next().unwrap().unwrap().uri));
        assert!(dialed.is_ok(), "{}: no phone number to route on", v.path);
    }
}

/// Inputs the fuzzer once crashed on (`fuzz/regressions/`), replayed with the fuzz target's own checks: no
/// panic, and whatever parses prints to bytes that parse back to the same message.
#[test]
fn fuzz_regressions_stay_fixed() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions");
    let limits = Limits::default();
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("fuzz/regressions") {
        let path = entry.unwrap().path();
        let bytes = Bytes::from(std::fs::read(&path).unwrap());
        seen += 1;
        if let Ok(StreamFrame::Message(n)) = frame_stream(&bytes, &limits) {
            let _ = Message::parse_stream(bytes.slice(..n), &limits);
        }
        match Message::parse_datagram(bytes.clone(), &limits) {
            Ok(msg) => {
                let again = Message::parse_stream(msg.to_bytes(), &Limits::unlimited());
                assert_eq!(again.as_ref().ok(), Some(&msg), "{}", path.display());
            }
            Err(e) => {
                if let Some(answer) = vocals::sip::message::error_response(&bytes, &e) {
                    vocals::sip::message::check_error_response(&answer);
                }
            }
        }
    }
    assert!(seen > 0, "no regression inputs found in {}", dir.display());
}
