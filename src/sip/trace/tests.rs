use super::*;
use serde_json::Value;

/// A trace's JSON text, parsed (it must parse).
fn parsed(f: &Finished) -> Value {
    serde_json::from_str(&f.trace).unwrap_or_else(|e| panic!("{e}: {}", f.trace))
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn msg(start: &str, call_id: &str, cseq: &str, to: &str, body: usize) -> Bytes {
    let mut m = format!(
        "{start}\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1\r\nFrom: <sip:+15550001@192.0.2.1>;tag=a\r\n\
         To: {to}\r\nCall-ID: {call_id}\r\nCSeq: {cseq}\r\nContent-Length: {body}\r\n\r\n"
    );
    m.push_str(&"x".repeat(body));
    Bytes::from(m)
}

struct T {
    traces: CallTraces,
    t0: Instant,
}

impl T {
    fn new(capacity: usize) -> T {
        T { traces: CallTraces::new(capacity), t0: Instant::now() }
    }

    fn see(&mut self, ms: u64, dir: Direction, bytes: Bytes) {
        let now = self.t0 + Duration::from_millis(ms);
        let at = SystemTime::UNIX_EPOCH + Duration::from_millis(1_800_000_000_000 + ms);
        self.traces.observe(now, at, dir, addr("192.0.2.1:5060"), addr("127.0.0.1:5060"), Transport::Udp, &bytes);
    }

    fn sweep(&mut self, ms: u64) -> Vec<Finished> {
        let mut out = Vec::new();
        self.traces.sweep(self.t0 + Duration::from_millis(ms), &mut out);
        out
    }
}

const TO: &str = "<sip:+15550002@127.0.0.1>";
const TO_TAGGED: &str = "<sip:+15550002@127.0.0.1>;tag=v1";

#[test]
fn a_summary_reads_long_and_compact_headers_in_any_case_and_the_to_tag_outside_the_uri() {
    let m = b"INVITE sip:+1555@h SIP/2.0\r\ni:  abc@h \r\ncseq: 1 INVITE\r\nt: <sip:x@h;tag=no>\r\n\r\nv=0\r\n";
    let s = summarize(m).unwrap();
    assert_eq!(
        (s.call_id, s.method, s.status, s.cseq_method, s.to_tag),
        (&b"abc@h"[..], Some(&b"INVITE"[..]), None, &b"INVITE"[..], false)
    );
    let m = b"SIP/2.0 486 Busy Here\r\nCALL-ID: abc@h\r\nCSeq: 1 INVITE\r\nTo: sip:x@h ; TAG = 9\r\n\r\n";
    let s = summarize(m).unwrap();
    assert_eq!((s.method, s.status, s.to_tag), (None, Some(486), true));
    // Headers after the blank line are the body's, not the message's.
    assert_eq!(summarize(b"OPTIONS sip:h SIP/2.0\r\nCSeq: 1 OPTIONS\r\n\r\nCall-ID: x\r\n"), None);
    assert_eq!(summarize(b"SIP/2.0 2x0 OK\r\nCall-ID: x\r\nCSeq: 1 BYE\r\n\r\n"), None);
}

#[test]
fn a_call_is_kept_from_its_invite_to_the_answer_to_its_bye_and_handed_on_after_the_linger() {
    let mut t = T::new(16);
    let (i, o) = (Direction::In, Direction::Out);
    t.see(0, i, msg("INVITE sip:+15550002@127.0.0.1 SIP/2.0", "c1", "1 INVITE", TO, 200));
    t.see(1, o, msg("SIP/2.0 100 Trying", "c1", "1 INVITE", TO, 0));
    // Not part of any call: an OPTIONS ping and a BYE for a dialog nobody knows.
    t.see(2, i, msg("OPTIONS sip:127.0.0.1 SIP/2.0", "ping", "1 OPTIONS", TO, 0));
    t.see(2, i, msg("BYE sip:127.0.0.1 SIP/2.0", "gone", "2 BYE", TO_TAGGED, 0));
    t.see(5, o, msg("SIP/2.0 200 OK", "c1", "1 INVITE", TO_TAGGED, 150));
    t.see(9, i, msg("ACK sip:127.0.0.1 SIP/2.0", "c1", "1 ACK", TO_TAGGED, 0));
    assert_eq!(t.traces.len(), 1);
    assert!(t.sweep(60_000).is_empty(), "an answered call stays");
    t.see(60_000, i, msg("BYE sip:127.0.0.1 SIP/2.0", "c1", "2 BYE", TO_TAGGED, 0));
    assert!(t.sweep(60_000).is_empty());
    t.see(60_001, o, msg("SIP/2.0 200 OK", "c1", "2 BYE", TO_TAGGED, 0));
    // Handed on at once, so the store can write it with the rest of the call's record.
    let mut done = Vec::new();
    t.traces.take_ready(&mut done);
    assert_eq!(done.len(), 1);
    assert!(t.traces.is_empty());
    // A retransmitted BYE after that starts nothing.
    t.see(60_500, i, msg("BYE sip:127.0.0.1 SIP/2.0", "c1", "2 BYE", TO_TAGGED, 0));
    assert!(t.traces.is_empty());
    let f = &done[0];
    assert_eq!((f.call_id.as_str(), f.refused), ("c1", None));
    let trace = parsed(f);
    let m = trace["messages"].as_array().unwrap();
    let lines: Vec<(&str, &str)> =
        m.iter().map(|m| (m["dir"].as_str().unwrap(), m["text"].as_str().unwrap().lines().next().unwrap())).collect();
    assert_eq!(
        lines,
        [
            ("in", "INVITE sip:+15550002@127.0.0.1 SIP/2.0"),
            ("out", "SIP/2.0 100 Trying"),
            ("out", "SIP/2.0 200 OK"),
            ("in", "ACK sip:127.0.0.1 SIP/2.0"),
            ("in", "BYE sip:127.0.0.1 SIP/2.0"),
            ("out", "SIP/2.0 200 OK"),
        ]
    );
    assert_eq!(m[0]["at"], "2027-01-15T08:00:00.000Z");
    assert_eq!(m[2]["at"], "2027-01-15T08:00:00.005Z");
    assert_eq!(
        (m[0]["peer"].as_str(), m[0]["local"].as_str(), m[0]["transport"].as_str()),
        (Some("192.0.2.1:5060"), Some("127.0.0.1:5060"), Some("udp"))
    );
    assert_eq!((trace["total"].as_u64(), trace["elided"].as_u64()), (Some(6), Some(0)));
}

#[test]
fn a_long_call_keeps_its_first_messages_and_the_latest_within_64_messages_and_64_kib() {
    let mut t = T::new(16);
    t.see(0, Direction::In, msg("INVITE sip:x@h SIP/2.0", "c", "1 INVITE", TO, 300));
    t.see(1, Direction::Out, msg("SIP/2.0 200 OK", "c", "1 INVITE", TO_TAGGED, 300));
    // 300 refreshes (UPDATE and its 200), some large, one past the per-message limit.
    for n in 0..300u64 {
        let body = if n == 299 { 20_000 } else { (n as usize % 7) * 400 };
        t.see(
            10 + 2 * n,
            Direction::Out,
            msg("UPDATE sip:x@h SIP/2.0", "c", &format!("{} UPDATE", n + 2), TO_TAGGED, body),
        );
        t.see(11 + 2 * n, Direction::In, msg("SIP/2.0 200 OK", "c", &format!("{} UPDATE", n + 2), TO_TAGGED, 0));
    }
    t.see(5_000, Direction::In, msg("BYE sip:x@h SIP/2.0", "c", "900 BYE", TO_TAGGED, 0));
    t.see(5_001, Direction::Out, msg("SIP/2.0 200 OK", "c", "900 BYE", TO_TAGGED, 0));
    let mut done = Vec::new();
    t.traces.take_ready(&mut done);
    let trace = parsed(&done[0]);
    let m = trace["messages"].as_array().unwrap();
    assert!(m.len() <= MAX_MESSAGES, "{}", m.len());
    let kept: usize = m.iter().map(|m| m["bytes"].as_u64().unwrap() as usize).map(|b| b.min(MAX_MESSAGE)).sum();
    assert!(kept <= MAX_BYTES, "{kept} bytes kept");
    assert_eq!(trace["total"].as_u64(), Some(604));
    assert_eq!(trace["elided"].as_u64().unwrap() as usize + m.len(), 604, "every message kept or counted");
    // The INVITE and its answer stay; the BYE and its 200 are the last.
    assert!(m[0]["text"].as_str().unwrap().starts_with("INVITE "));
    assert!(m[1]["text"].as_str().unwrap().starts_with("SIP/2.0 200 OK"));
    assert!(m[m.len() - 2]["text"].as_str().unwrap().starts_with("BYE "));
    // The oversized message is cut, and says so.
    let big = m.iter().find(|m| m["bytes"].as_u64().unwrap() > 20_000).expect("the large UPDATE is among the latest");
    assert!(
        big["text"].as_str().unwrap().ends_with("more bytes not kept]"),
        "{}",
        &big["text"].as_str().unwrap()[8000..]
    );
}

#[test]
fn refusals_are_sampled_per_status_so_a_flood_cannot_fill_the_store() {
    let mut t = T::new(10_000);
    // 1,000 INVITEs refused with 403 at once, one 486 among them, and one more 403 a second later.
    for n in 0..1001u64 {
        let (id, ms) = (format!("flood-{n}"), if n == 1000 { 1000 } else { 0 });
        t.see(ms, Direction::In, msg("INVITE sip:x@h SIP/2.0", &id, "1 INVITE", TO, 0));
        t.see(ms, Direction::Out, msg("SIP/2.0 403 Forbidden", &id, "1 INVITE", TO_TAGGED, 0));
    }
    t.see(0, Direction::In, msg("INVITE sip:x@h SIP/2.0", "busy", "1 INVITE", TO, 0));
    t.see(0, Direction::Out, msg("SIP/2.0 486 Busy Here", "busy", "1 INVITE", TO_TAGGED, 0));
    assert_eq!(t.traces.counts.refusals_dropped, 995, "5 in the burst, one more after a second");
    assert!(t.traces.len() <= 7, "the dropped ones are gone at once: {}", t.traces.len());
    let done = t.sweep(5_000);
    let refused: Vec<_> = done.iter().map(|f| f.refused.unwrap()).collect();
    assert_eq!(refused.iter().filter(|s| **s == 403).count(), 6);
    assert_eq!(refused.iter().filter(|s| **s == 486).count(), 1);
    // Each kept refusal has its request and its answer.
    let f = done.iter().find(|f| f.call_id == "busy").unwrap();
    assert_eq!(parsed(f)["messages"].as_array().unwrap().len(), 2);
    assert_eq!((f.from.as_str(), f.to.as_str(), f.phrase.as_str()), ("+15550001", "+15550002", "Busy Here"));
}

#[test]
fn the_table_is_bounded_and_a_call_that_rang_out_is_handed_on_when_idle() {
    let mut t = T::new(2);
    for id in ["a", "b", "c"] {
        t.see(0, Direction::In, msg("INVITE sip:x@h SIP/2.0", id, "1 INVITE", TO, 0));
    }
    assert_eq!((t.traces.len(), t.traces.counts.full), (2, 1));
    // A re-INVITE (To tag) of a call not traced does not start a trace.
    t.see(0, Direction::In, msg("INVITE sip:x@h SIP/2.0", "d", "2 INVITE", TO_TAGGED, 0));
    assert_eq!(t.traces.len(), 2);
    assert!(t.sweep(IDLE_UNANSWERED.as_millis() as u64 - 1).is_empty());
    let done = t.sweep(IDLE_UNANSWERED.as_millis() as u64);
    assert_eq!(done.len(), 2);
    assert!(done.iter().all(|f| f.refused.is_none()));
}
