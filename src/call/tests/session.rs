//! Session timers (RFC 4028) on the call layer's virtual clock with the real endpoint: the peer refreshes and
//! then stops (BYE at the interval less a third, its Reason and the record saying so), vocals refreshes at half
//! the interval, glare and a refused refresh.

use super::*;

/// Twilio's INVITE asking for a session timer with these header lines.
fn asking(lines: &str) -> String {
    let (head, body) = INVITE.split_once("\r\n\r\n").unwrap();
    format!("{head}\r\n{lines}\r\n\r\n{body}")
}

impl Rig {
    fn answered_with(lines: &str) -> Rig {
        let mut rig = Rig::new(Readiness::Now);
        rig.deliver(asking(lines));
        let ok = rig.ok();
        rig.deliver(ack_for(&ok));
        rig
    }

    /// The caller's request in the dialog.
    fn theirs(&mut self, method: &str, cseq: u32, lines: &str) {
        let ok = self.ok();
        let h = |n: &str| String::from_utf8_lossy(ok.headers.get(&HeaderName::new(n)).unwrap()).into_owned();
        let req = format!(
            "{method} sip:203.0.113.10:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 54.244.51.1:5060;branch=z9hG4bKs{cseq}\r\n\
             Max-Forwards: 70\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {cseq} {method}\r\n{lines}Content-Length: 0\r\n\r\n",
            h("From"),
            h("To"),
            h("Call-ID")
        );
        self.deliver(req);
    }
}

#[test]
fn the_peer_refreshes_then_stops_and_vocals_ends_the_call_when_the_session_expires() {
    let mut rig = Rig::answered_with("Session-Expires: 90\r\nSupported: timer");
    assert_eq!(header(&rig.ok().headers, "Session-Expires"), "90;refresher=uac");
    // A refresh at 40 s starts the clock again: 90 − min(32, 30) = 60 s from there.
    rig.advance_to(40_000);
    rig.theirs("UPDATE", 48064, "Session-Expires: 90;refresher=uac\r\nSupported: timer\r\n");
    rig.advance_to(99_000);
    assert!(rig.requests(Method::Bye).is_empty(), "not before 100 s");
    rig.advance_to(100_001);
    let bye = rig.requests(Method::Bye).pop().expect("our BYE once the session expired");
    assert_eq!(header(&bye.headers, "Reason"), "SIP;cause=408;text=\"session timer expired\"");
    let writes: Vec<CallWrite> = std::iter::from_fn(|| rig.records.try_recv().ok()).collect();
    let why =
        writes.iter().find_map(|w| if let CallWrite::Ended { reason, .. } = w { Some(reason.clone()) } else { None });
    assert!(why.as_deref().is_some_and(|w| w.starts_with("session timer expired")), "{why:?}");
    let session = writes
        .iter()
        .find_map(|w| if let CallWrite::Session { session, .. } = w { Some(session.clone()) } else { None });
    assert_eq!(session, Some(serde_json::json!({"interval": 90, "refresher": "peer", "refreshes": 1, "glare": 0})));
}

#[test]
fn vocals_refreshes_at_half_the_interval_and_the_record_counts_the_refreshes() {
    let mut rig = Rig::answered_with("Session-Expires: 90;refresher=uas\r\nSupported: timer");
    rig.advance_to(44_000);
    assert!(rig.requests(Method::Invite).is_empty(), "no refresh before 45 s");
    rig.advance_to(45_001);
    let refresh = rig.requests(Method::Invite).pop().expect("our refresh (Twilio allows no UPDATE: a re-INVITE)");
    assert_eq!(header(&refresh.headers, "Session-Expires"), "90;refresher=uac");
    let mut ok = Response::to_request(&refresh, StatusCode::OK, None);
    ok.headers.push(HeaderName::SessionExpires, "90;refresher=uac");
    ok.headers.push(HeaderName::ContentType, "application/sdp");
    ok.body = refresh.body.clone();
    rig.deliver(ok.to_bytes());
    assert_eq!(rig.requests(Method::Ack).len(), 1, "our ACK for the refresh's 200");
    // The next one 45 s after that answer.
    rig.advance_to(89_000);
    assert_eq!(rig.requests(Method::Invite).len(), 1);
    rig.advance_to(90_002);
    assert_eq!(rig.requests(Method::Invite).len(), 2);
    // Glare on that one: tried again within 2 s, then refused for good: the call ends.
    let second = rig.requests(Method::Invite).pop().unwrap();
    rig.deliver(Response::to_request(&second, StatusCode::new(491).unwrap(), None).to_bytes());
    rig.advance_to(92_100);
    let third = rig.requests(Method::Invite).pop().unwrap();
    assert_ne!(header(&third.headers, "CSeq"), header(&second.headers, "CSeq"), "tried again after the glare");
    rig.deliver(Response::to_request(&third, StatusCode::CALL_DOES_NOT_EXIST, None).to_bytes());
    let bye = rig.requests(Method::Bye).pop().expect("a BYE: the session could not be refreshed");
    assert!(header(&bye.headers, "Reason").contains("408"), "{bye:?}");
    let writes: Vec<CallWrite> = std::iter::from_fn(|| rig.records.try_recv().ok()).collect();
    let why =
        writes.iter().find_map(|w| if let CallWrite::Ended { reason, .. } = w { Some(reason.clone()) } else { None });
    assert_eq!(why.as_deref(), Some("the session refresh failed (481)"));
    let session = writes
        .iter()
        .find_map(|w| if let CallWrite::Session { session, .. } = w { Some(session.clone()) } else { None });
    let session = session.expect("the record's session summary");
    assert_eq!(session, serde_json::json!({"interval": 90, "refresher": "vocals", "refreshes": 1, "glare": 1}));
}

#[test]
fn no_session_expires_means_no_timer() {
    let mut rig = Rig::answered(Readiness::Now);
    rig.advance_to(3599 * 1000);
    assert!(rig.requests(Method::Bye).is_empty() && rig.requests(Method::Invite).is_empty());
}

/// What `start.customParameters` carries of the carrier's INVITE (docs/telecom.md names them): every `X-`
/// header (Twilio's CallSid, AccountSid and STIR/SHAKEN verstat, and any added to the origination URI),
/// `P-Asserted-Identity` and `Diversion`, under their own names; nothing else (no Identity, no Via).
#[test]
fn the_agent_is_given_the_carriers_identity_and_x_headers_under_their_own_names() {
    let bytes = include_bytes!("../../../sip-tests/vectors/twilio/twilio-invite-cnam-shaken.sip");
    let Ok(crate::sip::message::Message::Request(invite)) =
        crate::sip::message::Message::parse(Bytes::from_static(bytes))
    else {
        panic!("the vector parses")
    };
    let info = super::super::CallInfo::from_invite(&invite, Arc::new(AgentConfig::echo()), "+14155550123".into());
    let names: Vec<&str> = info.headers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["P-Asserted-Identity", "Diversion", "X-Twilio-AccountSid", "X-Twilio-CallSid", "X-Twilio-VerStat"],
        "{:?}",
        info.headers
    );
    let get = |n: &str| info.headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
    assert_eq!(get("X-Twilio-VerStat"), Some("TN-Validation-Passed-A"));
    assert_eq!(get("P-Asserted-Identity"), Some("<sip:+12125550100@206.147.76.45:5060>"));
    assert_eq!(get("Diversion"), Some("<sip:+14155550123@twilio.com>;reason=unconditional"));
}
