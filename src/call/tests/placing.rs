//! Calls vocals places, on the same rig: queued, paced, dialled with the trunk's credentials, rung, answered,
//! ended each way Twilio words it, withdrawn, and their status callbacks.

use super::*;

const CALLEE: &str = "+14155550100";
const TRUNK: &str = "54.172.60.0:5060";

impl Rig {
    /// Asks the call layer to place a call to `to` (answered by the test agent, or hung up at once when
    /// `agent` is false), with every status callback.
    fn dial(&mut self, to: &str, agent_too: bool) -> Result<CallView, outbound::Refusal> {
        let request = DialRequest {
            trunk: Arc::new(Trunk {
                account_sid: ACCOUNT.into(),
                auth_token: TOKEN.into(),
                termination: Hop::parse("sip:acme.pstn.twilio.com").unwrap(),
                username: Some("vocals".into()),
                password: Some("trunk-secret".into()),
            }),
            sid: format!("CA{:032x}", {
                static SIDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
                SIDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            }),
            account_sid: ACCOUNT.into(),
            to: E164::parse(to).unwrap(),
            from: E164::parse(NUMBER).unwrap(),
            agent: agent_too.then(|| agent(AgentKind::WebSocket)),
            parameters: vec![("campaign".into(), "spring".into())],
            ring_timeout: None,
            callback: Some(StatusCallback {
                url: "https://example.com/status".into(),
                method: crate::twilio::calls::HttpMethod::Post,
                events: vec![
                    StatusEvent::Initiated,
                    StatusEvent::Ringing,
                    StatusEvent::Answered,
                    StatusEvent::Completed,
                ],
            }),
            next_hop: TRUNK.parse().unwrap(),
        };
        match self.input(Input::Admin(AdminInput::Dial(Box::new(request)))) {
            Reply::Dial(r) => r,
            other => panic!("{other:?}"),
        }
    }

    /// A response from the trunk to one of our requests.
    fn trunk_answers(&mut self, req: &Request, status: u16, extra: &[(HeaderName, &str)], sdp: Option<&str>) {
        let mut res = Response::to_request(req, StatusCode::new(status).unwrap(), Some("trunk-tag"));
        for (name, value) in extra {
            res.headers.push(name.clone(), value.to_string());
        }
        if let Some(sdp) = sdp {
            res.headers.push(HeaderName::ContentType, "application/sdp");
            res.body = Bytes::from(sdp.to_string());
        }
        let peer =
            Peer { addr: TRUNK.parse().unwrap(), local: LOCAL.parse().unwrap(), transport: Transport::Udp, conn: None };
        self.ep.handle(self.now, peer, res.to_bytes());
        self.pump();
    }

    /// The statuses the callbacks said, in order.
    fn statuses(&self) -> Vec<String> {
        self.callbacks
            .iter()
            .map(|cb| cb.params.iter().find(|(k, _)| k == "CallStatus").map(|(_, v)| v.clone()).unwrap_or_default())
            .collect()
    }

    fn view(&mut self, sid: &str) -> CallView {
        match self.input(Input::Admin(AdminInput::View(sid.into()))) {
            Reply::View(Some(v)) => v,
            other => panic!("no view of {sid}: {other:?}"),
        }
    }
}

const TRUNK_SDP: &str = "v=0\r\no=- 1 1 IN IP4 54.172.60.9\r\ns=-\r\nc=IN IP4 54.172.60.9\r\nt=0 0\r\n\
                         m=audio 14000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n";

#[test]
fn a_placed_call_is_queued_dialled_with_the_trunks_credentials_rung_answered_and_completed() {
    let mut rig = Rig::new(Readiness::Later);
    let view = rig.dial(CALLEE, true).unwrap();
    assert_eq!(view.status, CallStatus::Queued);
    let invite = rig.requests(Method::Invite).pop().expect("the INVITE, at once: the trunk's first turn");
    assert_eq!(invite.uri.to_string(), format!("sip:{CALLEE}@acme.pstn.twilio.com"));
    let body = String::from_utf8_lossy(&invite.body).into_owned();
    assert!(body.contains("m=audio 2000") && body.contains("RTP/AVP 0 8 101"), "our offer on a leased port: {body}");
    assert!(header(&invite.headers, "From").contains(NUMBER), "{invite:?}");
    let dialed = std::iter::from_fn(|| rig.records.try_recv().ok()).find_map(|w| match w {
        CallWrite::Dialed { sip_call_id, .. } => Some(sip_call_id),
        _ => None,
    });
    assert_eq!(dialed, Some(header(&invite.headers, "Call-ID")), "the record learns the INVITE's Call-ID");
    rig.trunk_answers(
        &invite,
        407,
        &[(HeaderName::ProxyAuthenticate, "Digest realm=\"sip.twilio.com\", nonce=\"abc\", qop=\"auth\"")],
        None,
    );
    let retried = rig.requests(Method::Invite).pop().unwrap();
    let auth = header(&retried.headers, "Proxy-Authorization");
    assert!(
        auth.starts_with("Digest ") && auth.contains("username=\"vocals\"") && auth.contains("nc=00000001"),
        "{auth}"
    );
    rig.trunk_answers(&retried, 180, &[], None);
    let call = rig.call();
    assert!(rig.asked().is_empty(), "the agent's stream opens at the answer, not before");
    rig.trunk_answers(&retried, 200, &[(HeaderName::Contact, "<sip:54.172.60.0:5060>")], Some(TRUNK_SDP));
    let acks = rig.requests(Method::Ack);
    assert_eq!(acks.len(), 2, "the 407's ACK (the transaction's) and ours for the 200");
    assert_eq!(header(&acks[1].headers, "CSeq"), header(&retried.headers, "CSeq").replace("INVITE", "ACK"));
    assert!(header(&acks[1].headers, "To").contains("tag=trunk-tag"));
    assert!(matches!(rig.asked()[..], [Asked::Open(p)] if p % 2 == 0), "{:?}", rig.asked());
    assert_eq!(rig.calls.calls[&call].stream.remote_rtp, Some("54.172.60.9:14000".parse().unwrap()));
    assert_eq!(rig.view(&view.sid).status, CallStatus::InProgress);
    // The callee hangs up.
    let (from, to, call_id) =
        (header(&retried.headers, "From"), header(&retried.headers, "To"), header(&retried.headers, "Call-ID"));
    let contact = header(&retried.headers, "Contact");
    let uri = contact.trim_start_matches('<').split('>').next().unwrap().to_string();
    let bye = format!(
        "BYE {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {TRUNK};branch=z9hG4bKtrunkbye\r\nFrom: {to};tag=trunk-tag\r\n\
         To: {from}\r\nCall-ID: {call_id}\r\nCSeq: 1 BYE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    );
    let peer =
        Peer { addr: TRUNK.parse().unwrap(), local: LOCAL.parse().unwrap(), transport: Transport::Udp, conn: None };
    rig.ep.handle(rig.now, peer, Bytes::from(bye));
    rig.pump();
    assert_eq!(rig.calls.active(), 0, "the callee's BYE ended the call");
    assert!(rig.asked().contains(&Asked::Close));
    assert_eq!(rig.statuses(), ["initiated", "ringing", "in-progress", "completed"]);
    let done = rig.view(&view.sid);
    assert_eq!((done.status, done.sip_response_code), (CallStatus::Completed, Some(200)));
    let seq: Vec<String> = rig
        .callbacks
        .iter()
        .map(|cb| cb.params.iter().find(|(k, _)| k == "SequenceNumber").unwrap().1.clone())
        .collect();
    assert_eq!(seq, ["0", "1", "2", "3"]);
    assert!(rig.callbacks.iter().all(|cb| cb.auth_token == TOKEN && cb.url == "https://example.com/status"));
}

#[test]
fn busy_failed_and_unanswered_calls_end_with_twilios_statuses_and_records_that_say_why() {
    for (status, expect, record) in [
        (486, CallStatus::Busy, "the far end answered 486"),
        (404, CallStatus::Failed, "the far end answered 404"),
        (480, CallStatus::NoAnswer, "the far end answered 480"),
    ] {
        let mut rig = Rig::new(Readiness::Later);
        let view = rig.dial(CALLEE, true).unwrap();
        rig.advance_to(0);
        let invite = rig.requests(Method::Invite).pop().unwrap();
        rig.trunk_answers(&invite, status, &[], None);
        assert_eq!(rig.view(&view.sid).status, expect, "{status}");
        assert_eq!(rig.statuses().last().map(String::as_str), Some(expect.as_str()), "{status}");
        let (why, code) = rig.ended();
        assert!(why.starts_with(record) && code == status, "{status}: {why} {code}");
        assert_eq!(rig.calls.active(), 0);
    }
    // Ringing past its timeout: CANCEL, and no-answer.
    let mut rig = Rig::new(Readiness::Later);
    let view = rig.dial(CALLEE, true).unwrap();
    rig.advance_to(0);
    let invite = rig.requests(Method::Invite).pop().unwrap();
    rig.trunk_answers(&invite, 180, &[], None);
    rig.advance_to(29_000);
    assert!(rig.requests(Method::Cancel).is_empty());
    rig.advance_to(30_001);
    let cancel = rig.requests(Method::Cancel).pop().expect("a CANCEL at the ring timeout");
    assert_eq!(header(&cancel.headers, "Via"), header(&invite.headers, "Via"), "the INVITE's branch (§9.1)");
    assert_eq!(rig.view(&view.sid).status, CallStatus::NoAnswer);
    assert_eq!(rig.ended().0, "no answer: the call rang until its timeout");
}

#[test]
fn requests_wait_their_turn_and_can_be_withdrawn_and_a_full_queue_refuses() {
    let mut rig = Rig::new(Readiness::Later);
    // The first is dialled at once (its turn has come); two more wait (outbound.queue = 2); a fourth is refused.
    let first = rig.dial(CALLEE, true).unwrap();
    let second = rig.dial("+14155550101", true).unwrap();
    let _waiting = rig.dial("+14155550104", true).unwrap();
    assert_eq!(rig.dial("+14155550102", true).unwrap_err(), outbound::Refusal::QueueFull);
    rig.advance_to(0);
    let dialled = |rig: &Rig| {
        let ids: HashSet<String> = rig.requests(Method::Invite).iter().map(|r| header(&r.headers, "Call-ID")).collect();
        ids.len()
    };
    assert_eq!(dialled(&rig), 1, "one a second (cps = 1)");
    // The REST API withdraws the second while it waits.
    let req = HangupRequest {
        account_sid: ACCOUNT.into(),
        call_sid: second.sid.clone(),
        user: ACCOUNT.into(),
        password: TOKEN.into(),
    };
    let out = rig.input(Input::Admin(AdminInput::Rest(req)));
    let done = Reply::Rest(HangupOutcome::Done(CallSummary {
        call_sid: second.sid.clone(),
        account_sid: ACCOUNT.into(),
        from: NUMBER.into(),
        to: "+14155550101".into(),
        status: "canceled",
        direction: "outbound-api",
    }));
    assert_eq!(out, done, "Twilio's Call resource of a call vocals placed says outbound-api");
    assert_eq!(rig.view(&second.sid).status, CallStatus::Canceled);
    rig.advance_to(2_000);
    assert_eq!(dialled(&rig), 2, "the first, then the one behind the withdrawn request, a second later");
    let to = |rig: &Rig, n: &str| rig.requests(Method::Invite).iter().filter(|r| r.uri.to_string().contains(n)).count();
    assert_eq!(to(&rig, "+14155550101"), 0, "the withdrawn request is never dialled");
    // The first, ringing, is cancelled by the admin API.
    let invite = rig.requests(Method::Invite).into_iter().find(|r| r.uri.to_string().contains(CALLEE)).unwrap();
    rig.trunk_answers(&invite, 180, &[], None);
    assert_eq!(rig.input(Input::Admin(AdminInput::End(first.sid.clone()))), Reply::Ended(true));
    assert_eq!(rig.requests(Method::Cancel).len(), 1);
    assert_eq!(rig.view(&first.sid).status, CallStatus::Canceled);
    // Shutting down withdraws what still waits: it is never dialled.
    let before = dialled(&rig);
    let _ = rig.dial("+14155550105", true).unwrap();
    let third = rig.dial("+14155550103", true).unwrap();
    rig.input(Input::Admin(AdminInput::EndAll("vocals is shutting down".into())));
    assert_eq!(rig.view(&third.sid).status, CallStatus::Canceled);
    rig.advance_to(10_000);
    assert_eq!(to(&rig, "+14155550103"), 0, "nothing that waited is dialled after the shutdown");
    assert!(dialled(&rig) <= before + 1, "only the one whose turn had come before the shutdown");
    // A call the endpoint refuses to send (here: it is draining) fails with 503, and the record says why.
    let mut rig = Rig::new(Readiness::Later);
    rig.ep.set_draining(true);
    let refused = rig.dial(CALLEE, true).unwrap();
    rig.advance_to(0);
    let view = rig.view(&refused.sid);
    assert_eq!((view.status, view.sip_response_code), (CallStatus::Failed, Some(503)));
    assert!(rig.ended().0.starts_with("not dialled: "));
}

#[test]
fn hangup_twiml_hangs_up_at_the_answer_and_an_unreachable_agent_ends_the_call() {
    let mut rig = Rig::new(Readiness::Later);
    rig.dial(CALLEE, false).unwrap();
    rig.advance_to(0);
    let invite = rig.requests(Method::Invite).pop().unwrap();
    rig.trunk_answers(&invite, 200, &[(HeaderName::Contact, "<sip:54.172.60.0:5060>")], Some(TRUNK_SDP));
    let bye = rig.requests(Method::Bye).pop().expect("BYE at once: the TwiML was <Hangup/>");
    assert!(reason(&bye).contains("TwiML"), "{}", reason(&bye));
    assert!(!rig.asked().iter().any(|a| matches!(a, Asked::Open(_))), "no stream opened: {:?}", rig.asked());

    let mut rig = Rig::new(Readiness::Later);
    let view = rig.dial(CALLEE, true).unwrap();
    rig.advance_to(0);
    let invite = rig.requests(Method::Invite).pop().unwrap();
    rig.trunk_answers(&invite, 200, &[(HeaderName::Contact, "<sip:54.172.60.0:5060>")], Some(TRUNK_SDP));
    let call = rig.call();
    rig.input(Input::Media(call, MediaInput::Failed("connection refused".into())));
    let bye = rig.requests(Method::Bye).pop().expect("BYE: no agent to talk to");
    assert!(reason(&bye).contains("cause=503"), "{}", reason(&bye));
    assert_eq!(rig.view(&view.sid).status, CallStatus::Completed, "answered, then ended: completed, as Twilio says");
}

/// `outbound.early_media`: a 183 with SDP opens the media and the agent's stream while the call still rings;
/// the answer then follows it (nothing more when it is the same, an update when it moved); a call that fails
/// after its early media closes the stream. Off (the default), a 183's SDP opens nothing.
#[test]
fn early_media_opens_the_agents_stream_at_a_183_and_the_answer_follows_it() {
    let moved = TRUNK_SDP.replace("m=audio 14000", "m=audio 14002");
    for (answer, expect) in [(None, vec![]), (Some(TRUNK_SDP), vec![]), (Some(moved.as_str()), vec![Asked::Update])] {
        let mut rig = Rig::new(Readiness::Later);
        rig.calls.config.outbound.early_media = true;
        let view = rig.dial(CALLEE, true).unwrap();
        rig.advance_to(0);
        let invite = rig.requests(Method::Invite).pop().unwrap();
        rig.trunk_answers(&invite, 183, &[], Some(TRUNK_SDP));
        let call = rig.call();
        let port = match rig.asked()[..] {
            [Asked::Open(p)] => p,
            ref other => panic!("the stream opens at the 183: {other:?}"),
        };
        assert_eq!(rig.view(&view.sid).status, CallStatus::Ringing, "early media is not the answer");
        assert_eq!(rig.calls.calls[&call].stream.remote_rtp, Some("54.172.60.9:14000".parse().unwrap()));
        // A second 183 (its SDP again) opens nothing more.
        rig.trunk_answers(&invite, 183, &[], Some(TRUNK_SDP));
        assert_eq!(rig.asked().len(), 1);
        rig.trunk_answers(&invite, 200, &[(HeaderName::Contact, "<sip:54.172.60.0:5060>")], answer);
        let mut asked = vec![Asked::Open(port)];
        asked.extend(expect.clone());
        assert_eq!(rig.asked(), asked, "answer {answer:?}");
        assert_eq!(rig.view(&view.sid).status, CallStatus::InProgress);
        let remote = if expect.is_empty() { "54.172.60.9:14000" } else { "54.172.60.9:14002" };
        assert_eq!(rig.calls.calls[&call].stream.remote_rtp, Some(remote.parse().unwrap()));
    }

    // Early media, then busy: the stream closes with the call.
    let mut rig = Rig::new(Readiness::Later);
    rig.calls.config.outbound.early_media = true;
    let view = rig.dial(CALLEE, true).unwrap();
    rig.advance_to(0);
    let invite = rig.requests(Method::Invite).pop().unwrap();
    rig.trunk_answers(&invite, 183, &[], Some(TRUNK_SDP));
    rig.trunk_answers(&invite, 486, &[], None);
    assert!(matches!(rig.asked()[..], [Asked::Open(_), Asked::Close]), "{:?}", rig.asked());
    assert_eq!(rig.view(&view.sid).status, CallStatus::Busy);

    // SDP that does not fit our offer is no early media; the answer may still fit.
    let mut rig = Rig::new(Readiness::Later);
    rig.calls.config.outbound.early_media = true;
    rig.dial(CALLEE, true).unwrap();
    rig.advance_to(0);
    let invite = rig.requests(Method::Invite).pop().unwrap();
    rig.trunk_answers(&invite, 183, &[], Some(&TRUNK_SDP.replace("RTP/AVP 0 101", "RTP/AVP 18")));
    assert!(rig.asked().is_empty(), "{:?}", rig.asked());

    // Off, the default: the 183's SDP opens nothing until the answer.
    let mut rig = Rig::new(Readiness::Later);
    rig.dial(CALLEE, true).unwrap();
    rig.advance_to(0);
    let invite = rig.requests(Method::Invite).pop().unwrap();
    rig.trunk_answers(&invite, 183, &[], Some(TRUNK_SDP));
    assert!(rig.asked().is_empty(), "{:?}", rig.asked());
    rig.trunk_answers(&invite, 200, &[(HeaderName::Contact, "<sip:54.172.60.0:5060>")], Some(TRUNK_SDP));
    assert!(matches!(rig.asked()[..], [Asked::Open(_)]), "{:?}", rig.asked());
}
