//! Session timers (RFC 4028) and offers in the dialog (RFC 3261 §14, RFC 3311) on the endpoint's virtual
//! network: what an INVITE asking for a timer is answered, our refreshes by UPDATE and by re-INVITE and their
//! answers (422, 491, 481), glare both ways, UPDATE with SDP, and a re-INVITE without SDP.

use std::time::Duration;

use bytes::Bytes;

use super::tests::*;
use super::*;
use crate::sip::message::{HeaderName, Message, Method, Request, Response};
use crate::sip::session_timer::SessionTimer;

/// Twilio's INVITE with these header lines added (after its Allow line; `allow` replaces that line if given).
fn invite_with(lines: &str, allow: Option<&str>) -> String {
    let invite = match allow {
        Some(a) => INVITE.replace("Allow: ACK,BYE,CANCEL,INVITE,OPTIONS,REFER,NOTIFY", a),
        None => INVITE.to_string(),
    };
    let (head, body) = invite.split_once("\r\n\r\n").unwrap();
    format!("{head}\r\n{lines}\r\n\r\n{body}").replace("\r\n\r\n\r\n", "\r\n\r\n")
}

/// Answers the INVITE (`lines` added to it) and takes the 200 and the events.
fn answer(net: &mut Net, lines: &str, allow: Option<&str>) -> (CallRef, Response, Vec<Event>) {
    net.deliver(invite_with(lines, allow));
    let call = net.incoming_call();
    net.ep.answer(net.now, call, Bytes::from_static(SDP));
    net.drain();
    let ok = net.take_responses().into_iter().find(|r| r.status.as_u16() == 200).expect("a 200");
    net.deliver(ack_for(&ok));
    (call, ok, net.take_events())
}

/// A request of the caller's in the dialog `ok` made.
fn theirs(ok: &Response, method: &str, cseq: u32, lines: &str, sdp: &[u8]) -> String {
    let ct = if sdp.is_empty() { String::new() } else { "Content-Type: application/sdp\r\n".to_string() };
    format!(
        "{method} sip:203.0.113.10:5060;transport=udp SIP/2.0\r\nVia: SIP/2.0/UDP 54.244.51.1:5060;branch=z9hG4bK{method}{cseq}\r\n\
         Max-Forwards: 70\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {cseq} {method}\r\n{lines}{ct}Content-Length: {}\r\n\r\n{}",
        header(ok, "From"),
        header(ok, "To"),
        header(ok, "Call-ID"),
        sdp.len(),
        String::from_utf8_lossy(sdp)
    )
}

/// Every request vocals sent since the last look.
fn ours(net: &mut Net) -> Vec<Request> {
    net.take_sent().into_iter().filter_map(|(_, m)| if let Message::Request(r) = m { Some(r) } else { None }).collect()
}

/// The caller's response to our request, with header lines.
fn reply(req: &Request, code: u16, lines: &[(&str, &str)], sdp: &[u8]) -> String {
    let mut res = Response::to_request(req, StatusCode::new(code).unwrap(), None);
    for (name, value) in lines {
        res.headers.push(HeaderName::new(name), value.to_string());
    }
    if !sdp.is_empty() {
        res.headers.push(HeaderName::ContentType, "application/sdp");
        res.body = Bytes::copy_from_slice(sdp);
    }
    String::from_utf8(res.to_bytes().to_vec()).unwrap()
}

fn session(events: &[Event]) -> Option<Option<SessionTimer>> {
    events.iter().rev().find_map(|e| match e {
        Event::Session { timer, .. } => Some(*timer),
        _ => None,
    })
}

fn value(h: &crate::sip::message::Headers, name: &str) -> String {
    h.get(&HeaderName::new(name)).map(|v| String::from_utf8_lossy(v).into_owned()).unwrap_or_default()
}

#[test]
fn an_invite_asking_for_a_timer_gets_it_in_the_2xx_with_its_refresher() {
    // No refresher named, the caller supports timers: it refreshes (uac), and must (Require: timer).
    let mut net = Net::new(default_config());
    let (_, ok, events) = answer(&mut net, "Session-Expires: 1800\r\nSupported: timer", None);
    assert_eq!(header(&ok, "Session-Expires"), "1800;refresher=uac");
    assert_eq!(header(&ok, "Require"), "timer");
    assert!(header(&ok, "Supported").contains("timer"));
    assert_eq!(session(&events), Some(Some(SessionTimer { interval: 1800, we_refresh: false })));
    // The caller names us: Require: timer all the same, since it supports timers (RFC 4028 §9's SHOULD).
    let mut net = Net::new(default_config());
    let (_, ok, events) = answer(&mut net, "x: 90;refresher=uas\r\nk: timer\r\nRequire: timer", None);
    assert_eq!((header(&ok, "Session-Expires"), header(&ok, "Require")), ("90;refresher=uas".into(), "timer".into()));
    assert_eq!(session(&events), Some(Some(SessionTimer { interval: 90, we_refresh: true })));
    // A proxy asked for a timer the caller does not support: we refresh.
    let mut net = Net::new(default_config());
    let (_, ok, _) = answer(&mut net, "Session-Expires: 600;refresher=uac", None);
    assert_eq!(header(&ok, "Session-Expires"), "600;refresher=uas");
    // … and too short a one: the caller could not act on a 422, so it is raised to our Min-SE, not refused.
    let mut net = Net::new(default_config());
    let (_, ok, _) = answer(&mut net, "Session-Expires: 60", None);
    assert_eq!((ok.status.as_u16(), header(&ok, "Session-Expires")), (200, "90;refresher=uas".to_string()));
    // No Session-Expires: no timer, and we still say we support it.
    let mut net = Net::new(default_config());
    let (_, ok, events) = answer(&mut net, "Supported: timer", None);
    assert_eq!(header(&ok, "Session-Expires"), "");
    assert!(header(&ok, "Supported").contains("timer"));
    assert_eq!(session(&events), None, "no timer before, none now: nothing to say");
    // Below our Min-SE: 422 with it, and no call.
    let mut net = Net::new(default_config());
    net.deliver(invite_with("Session-Expires: 60\r\nSupported: timer", None));
    let responses = net.take_responses();
    assert_eq!(codes(&responses), [422]);
    assert_eq!(header(&responses[0], "Min-SE"), "90");
    assert!(!net.take_events().iter().any(|e| matches!(e, Event::IncomingCall { .. })));
    // Require of something else is still refused.
    let mut net = Net::new(default_config());
    net.deliver(invite_with("Require: timer, 100rel", None));
    let responses = net.take_responses();
    assert_eq!((codes(&responses), header(&responses[0], "Unsupported")), (vec![420], "100rel".to_string()));
}

#[test]
fn we_refresh_by_update_where_the_peer_allows_it_else_by_reinvite_with_our_sdp_unchanged() {
    // Twilio's Allow has no UPDATE: a re-INVITE, our SDP as it was, acked on its 200.
    let mut net = Net::new(default_config());
    let (call, ok, _) = answer(&mut net, "Session-Expires: 90;refresher=uas\r\nSupported: timer", None);
    net.ep.refresh(net.now, call);
    net.drain();
    let sent = ours(&mut net);
    assert_eq!(sent.len(), 1);
    let reinvite = &sent[0];
    assert_eq!(reinvite.method, Method::Invite);
    assert_eq!(&reinvite.body[..], SDP, "the same SDP, the same o= version");
    assert_eq!(value(&reinvite.headers, "Session-Expires"), "90;refresher=uac");
    assert!(value(&reinvite.headers, "Supported").contains("timer"));
    assert!(reinvite.headers.contains(&HeaderName::Contact));
    assert_eq!(value(&reinvite.headers, "To"), header(&ok, "From"), "in the dialog: the caller is the remote party");
    net.deliver(reply(
        reinvite,
        200,
        &[("Session-Expires", "90;refresher=uac"), ("Contact", "<sip:54.244.51.1>")],
        SDP,
    ));
    let sent = ours(&mut net);
    assert_eq!(sent.iter().map(|r| r.method.clone()).collect::<Vec<_>>(), [Method::Ack]);
    assert_eq!(sent[0].headers.cseq().unwrap().seq, reinvite.headers.cseq().unwrap().seq);
    assert_eq!(session(&net.take_events()), Some(Some(SessionTimer { interval: 90, we_refresh: true })));

    // A peer that allows UPDATE: an UPDATE without SDP; its 422 is answered once with its Min-SE.
    let mut net = Net::new(default_config());
    let allow = Some("Allow: ACK,BYE,CANCEL,INVITE,OPTIONS,UPDATE");
    let (call, _, _) = answer(&mut net, "Session-Expires: 90;refresher=uas\r\nSupported: timer", allow);
    net.ep.refresh(net.now, call);
    net.drain();
    let update = ours(&mut net).pop().unwrap();
    assert_eq!((update.method.clone(), update.body.len()), (Method::Update, 0));
    net.deliver(reply(&update, 422, &[("Min-SE", "120")], b""));
    let again = ours(&mut net).pop().expect("the UPDATE again");
    assert_eq!(value(&again.headers, "Session-Expires"), "120;refresher=uac");
    assert!(again.headers.cseq().unwrap().seq > update.headers.cseq().unwrap().seq);
    net.deliver(reply(&again, 200, &[("Session-Expires", "120;refresher=uac")], b""));
    assert_eq!(session(&net.take_events()), Some(Some(SessionTimer { interval: 120, we_refresh: true })));
    // A 481: the session is gone.
    net.ep.refresh(net.now, call);
    net.drain();
    let update = ours(&mut net).pop().unwrap();
    net.deliver(reply(&update, 481, &[], b""));
    let outcome = net.take_events().into_iter().find_map(|e| match e {
        Event::RefreshFailed { outcome, .. } => Some(outcome),
        _ => None,
    });
    assert_eq!(outcome, Some(RefreshOutcome::Failed(StatusCode::CALL_DOES_NOT_EXIST)));
    // 405 to an UPDATE: the next try is a re-INVITE, at once.
    net.ep.refresh(net.now, call);
    net.drain();
    let update = ours(&mut net).pop().unwrap();
    net.deliver(reply(&update, 405, &[], b""));
    assert!(net.take_events().contains(&Event::RefreshFailed { call, outcome: RefreshOutcome::Again(Duration::ZERO) }));
    net.ep.refresh(net.now, call);
    net.drain();
    assert_eq!(ours(&mut net).pop().unwrap().method, Method::Invite);
}

#[test]
fn offers_that_cross_ours_get_491_and_ours_crossed_waits_before_trying_again() {
    let mut net = Net::new(default_config());
    let (call, ok, _) = answer(&mut net, "Session-Expires: 90;refresher=uas\r\nSupported: timer", None);
    net.ep.refresh(net.now, call);
    net.drain();
    let reinvite = ours(&mut net).pop().unwrap();
    // Their re-INVITE and their UPDATE with SDP cross ours: 491.
    net.deliver(theirs(&ok, "INVITE", 48070, "", SDP));
    let responses = net.take_responses();
    assert_eq!(codes(&responses), [491], "{responses:?}");
    net.deliver(theirs(&ok, "UPDATE", 48071, "", SDP));
    assert_eq!(codes(&net.take_responses()), [491]);
    assert_eq!(net.take_events().iter().filter(|e| matches!(e, Event::Glare { .. })).count(), 2);
    // Ours gets their 491: the call layer tries again within 0–2 s (the caller owns the Call-ID).
    net.deliver(reply(&reinvite, 491, &[], b""));
    let events = net.take_events();
    assert!(events.contains(&Event::Glare { call }));
    let wait = events.iter().find_map(|e| match e {
        Event::RefreshFailed { outcome: RefreshOutcome::Again(d), .. } => Some(*d),
        _ => None,
    });
    assert!(wait.is_some_and(|d| d <= Duration::from_secs(2)), "{events:?}");
    // With ours settled, their offer is taken again.
    net.deliver(theirs(&ok, "INVITE", 48072, "", SDP));
    assert!(net.take_events().iter().any(|e| matches!(e, Event::ReInvite { .. })));
}

#[test]
fn update_with_sdp_is_an_offer_and_without_it_a_refresh_answered_with_the_timer() {
    let mut net = Net::new(default_config());
    let (call, ok, _) = answer(&mut net, "Session-Expires: 90\r\nSupported: timer", None);
    let hold = String::from_utf8_lossy(SDP).replace("a=sendrecv", "a=sendonly");
    net.deliver(theirs(&ok, "UPDATE", 48080, "", hold.as_bytes()));
    let events = net.take_events();
    assert_eq!(events, vec![Event::ReInvite { call, offer: Some(Bytes::from(hold.clone())) }]);
    let answer_sdp = Bytes::from(String::from_utf8_lossy(SDP).replace("a=sendrecv", "a=recvonly"));
    net.ep.answer_reinvite(net.now, call, answer_sdp.clone());
    net.drain();
    let res = net.take_responses().pop().unwrap();
    assert_eq!(res.status.as_u16(), 200);
    assert_eq!(header(&res, "CSeq"), "48080 UPDATE");
    assert_eq!(res.body, answer_sdp);
    assert!(res.headers.contains(&HeaderName::Contact));
    // The caller refreshes with an UPDATE without SDP: 200 with the timer; its clock starts again.
    net.deliver(theirs(&ok, "UPDATE", 48081, "Session-Expires: 90;refresher=uac\r\nSupported: timer\r\n", b""));
    let res = net.take_responses().pop().unwrap();
    assert_eq!((res.status.as_u16(), header(&res, "Session-Expires")), (200, "90;refresher=uac".to_string()));
    assert_eq!(session(&net.take_events()), Some(Some(SessionTimer { interval: 90, we_refresh: false })));
    // Too short a refresh: 422.
    net.deliver(theirs(&ok, "UPDATE", 48082, "Session-Expires: 30\r\nSupported: timer\r\n", b""));
    let res = net.take_responses().pop().unwrap();
    assert_eq!((res.status.as_u16(), header(&res, "Min-SE")), (422, "90".to_string()));
}

#[test]
fn a_reinvite_without_sdp_gets_our_offer_and_its_ack_brings_the_answer() {
    let mut net = Net::new(default_config());
    let (call, ok, _) = answer(&mut net, "", None);
    net.deliver(theirs(&ok, "INVITE", 48090, "", b""));
    assert_eq!(net.take_events(), vec![Event::ReInvite { call, offer: None }]);
    net.ep.answer_reinvite(net.now, call, Bytes::from_static(SDP));
    net.drain();
    let res = net.take_responses().into_iter().find(|r| r.status.as_u16() == 200).unwrap();
    let ack = ack_for(&res).replace("CSeq: 48063 ACK", "CSeq: 48090 ACK").replace("Content-Length: 0\r\n\r\n", "");
    let answer = String::from_utf8_lossy(SDP).into_owned();
    net.deliver(format!("{ack}Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{answer}", answer.len()));
    assert_eq!(net.take_events(), vec![Event::CallConfirmed { call, answer: Some(Bytes::from(answer)) }]);
}
