//! The call layer on a virtual clock, without sockets: a real endpoint fed Twilio-shaped messages, a media plane
//! that records what it is asked, and the call records as written. Every way a call ends (each origin, ringing
//! and answered) and every transfer outcome, checked on the wire and in the record.

use std::collections::HashSet;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use super::*;
use crate::agent::protocol::Violation;
use crate::agent::transfer::TransferOverrides;
use crate::call::outbound::{Hop, OutboundSettings, Trunk};
use crate::config::{AgentConfig, AgentKind};
use crate::media::session::MediaEnd;
use crate::routing::{AccountPolicy, NumberTable};
use crate::sip::endpoint::{Endpoint, EndpointConfig, IdGen, Output, Peer, Transport};
use crate::sip::message::{Message, Method, Response};
use crate::twilio::calls::{CallStatus, CallView, StatusEvent};

const INVITE: &str = include_str!("../../../sip-tests/vectors/twilio/twilio-invite-udp.sip");
const BYE: &str = include_str!("../../../sip-tests/vectors/twilio/twilio-bye-udp.sip");
const EDGE: &str = "54.244.51.1:5060";
const LOCAL: &str = "203.0.113.10:5060";
const NUMBER: &str = "+14155550123";
const CALL_SID: &str = "CAbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const ACCOUNT: &str = "ACbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const TOKEN: &str = "agent-rest-token-0123456789";

/// What the media plane was asked, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Asked {
    Open(u16),
    Update,
    Transfer(TransferStatus, u16),
    TransferRefused,
    Dtmf(char),
    Close,
}

#[derive(Clone, Default)]
struct Recording {
    asked: Arc<Mutex<Vec<Asked>>>,
    readiness: Option<Readiness>,
    /// How the last call's agent link ended, as the close said.
    agent_ending: Arc<Mutex<Option<String>>>,
    /// Ports whose bind fails (another program has them).
    taken: Arc<Mutex<HashSet<u16>>>,
}

impl MediaPlane for Recording {
    fn open(&mut self, _: CallRef, port: u16, _: &CallInfo, _: Stream) -> io::Result<Readiness> {
        if self.taken.lock().unwrap().contains(&port) {
            return Err(io::Error::new(io::ErrorKind::AddrInUse, "taken"));
        }
        self.asked.lock().unwrap().push(Asked::Open(port));
        Ok(self.readiness.unwrap_or(Readiness::Now))
    }
    fn update(&mut self, _: CallRef, _: Stream) {
        self.asked.lock().unwrap().push(Asked::Update);
    }
    fn transfer_status(&mut self, _: CallRef, status: TransferStatus, sip_status: u16) {
        self.asked.lock().unwrap().push(Asked::Transfer(status, sip_status));
    }
    fn transfer_refused(&mut self, _: CallRef, _: String) {
        self.asked.lock().unwrap().push(Asked::TransferRefused);
    }
    fn dtmf(&mut self, _: CallRef, digit: char) {
        self.asked.lock().unwrap().push(Asked::Dtmf(digit));
    }
    fn close(&mut self, _: CallRef, agent: &str) {
        self.asked.lock().unwrap().push(Asked::Close);
        *self.agent_ending.lock().unwrap() = Some(agent.to_string());
    }
}

struct Rig {
    ep: Endpoint,
    calls: Calls,
    media: Recording,
    records: mpsc::Receiver<CallWrite>,
    start: Instant,
    now: Instant,
    sent: Vec<Message>,
    /// Status callbacks the call layer asked to post.
    callbacks: Vec<Callback>,
}

fn agent(kind: AgentKind) -> Arc<AgentConfig> {
    Arc::new(AgentConfig {
        id: "ag_1".into(),
        name: "sales".into(),
        kind,
        url: "ws://127.0.0.1:9/media".into(),
        auth_token: Some(TOKEN.into()),
        transfer: TransferOverrides::default(),
        ..AgentConfig::default()
    })
}

impl Rig {
    fn new(readiness: Readiness) -> Rig {
        let mut table = NumberTable::new();
        table.insert(E164::parse(NUMBER).unwrap(), Some(agent(AgentKind::WebSocket)), None);
        table.set_account_policy(AccountPolicy::Any);
        let (recorder, records) = Recorder::channel(256);
        let config = CallConfig {
            numbers: Arc::new(table),
            media_ip: "203.0.113.10".parse().unwrap(),
            rtp_ports: PortRange { first: 20000, last: 20009 },
            max_call_duration: Duration::from_secs(3600),
            srtp: SrtpPolicy::Off,
            srtp_keys: || KeySalt([7; crate::sdp::sdes::KEY_SALT_LEN]),
            wall_clock: jiff::Timestamp::now,
            default_account_sid: "AC00000000000000000000000000000000".into(),
            seed: 1,
            node: "test".into(),
            record: crate::media::recording::RecordMode::Off,
            records: Some(recorder),
            transfer: TransferPolicy::default(),
            outbound: OutboundSettings {
                ring_timeout: Duration::from_secs(30),
                queue: 2,
                ..OutboundSettings::default()
            },
            sip_local: crate::call::outbound::Listening {
                udp: Some(LOCAL.parse().unwrap()),
                tcp: Some(LOCAL.parse().unwrap()),
                tls: None,
            },
        };
        let media = Recording { readiness: Some(readiness), ..Recording::default() };
        let calls = Calls::new(config);
        let start = Instant::now();
        // `[sip]`'s defaults without the per-source rate limits.
        let unlimited = crate::sip::ratelimit::RateConfig::default();
        let ep_config = EndpointConfig {
            rate: unlimited.clone(),
            request_rate: unlimited,
            ..crate::config::SipConfig::default().endpoint()
        };
        let ep = Endpoint::new(ep_config, IdGen::new(7));
        Rig { ep, calls, media, records, start, now: start, sent: Vec::new(), callbacks: Vec::new() }
    }

    /// Delivers a message from Twilio's edge and lets the call layer react to what the endpoint reports.
    fn deliver(&mut self, bytes: impl Into<Bytes>) {
        let peer = Peer {
            addr: EDGE.parse::<SocketAddr>().unwrap(),
            local: LOCAL.parse().unwrap(),
            transport: Transport::Udp,
            conn: None,
        };
        self.ep.handle(self.now, peer, bytes.into());
        self.pump();
    }

    /// Endpoint outputs: transmissions kept, events handed to the call layer (which may cause more).
    fn pump(&mut self) {
        loop {
            let callbacks = &mut self.callbacks;
            run_commands(&mut self.calls, self.now, &mut self.ep, &mut self.media, &mut |cb| callbacks.push(cb));
            let Some(o) = self.ep.poll_output() else { break };
            match o {
                Output::Transmit { bytes, .. } => self.sent.push(Message::parse(bytes).unwrap()),
                Output::Event(e) => {
                    self.calls.handle(self.now, Input::Sip(&e));
                }
            }
        }
    }

    /// One input to the call layer, then what follows from it.
    fn input(&mut self, input: Input<'_>) -> Reply {
        let reply = self.calls.handle(self.now, input);
        self.pump();
        reply
    }

    /// Runs both machines' deadlines up to `ms` after the start.
    fn advance_to(&mut self, ms: u64) {
        let end = self.start + Duration::from_millis(ms);
        loop {
            let next = [self.ep.poll_timeout(), self.calls.poll_timeout()].into_iter().flatten().min();
            let Some(t) = next.filter(|&t| t <= end) else { break };
            self.now = self.now.max(t);
            self.ep.handle_timeout(self.now);
            self.pump();
            self.input(Input::Timer);
        }
        self.now = end;
    }

    fn responses(&mut self) -> Vec<Response> {
        self.sent.iter().filter_map(|m| m.as_response().cloned()).collect()
    }

    fn codes(&mut self) -> Vec<u16> {
        self.responses().iter().map(|r| r.status.as_u16()).collect()
    }

    fn requests(&self, method: Method) -> Vec<Request> {
        self.sent.iter().filter_map(|m| m.as_request().filter(|r| r.method == method).cloned()).collect()
    }

    fn ok(&mut self) -> Response {
        self.responses().into_iter().find(|r| r.status.as_u16() == 200).expect("a 200")
    }

    fn our_tag(&mut self) -> String {
        let ok = self.responses().into_iter().rfind(|r| r.status.as_u16() >= 180).expect("a response with a tag");
        String::from_utf8_lossy(ok.headers.to().unwrap().tag().unwrap()).into_owned()
    }

    /// The call's one CallRef (the rig carries one call at a time).
    fn call(&self) -> CallRef {
        *self.calls.calls.keys().next().expect("a call in progress")
    }

    fn asked(&self) -> Vec<Asked> {
        self.media.asked.lock().unwrap().clone()
    }

    /// The record's ending: (reason, SIP status).
    fn ended(&mut self) -> (String, u16) {
        let mut found = None;
        while let Ok(w) = self.records.try_recv() {
            match w {
                CallWrite::Ended { reason, sip_status, .. } => found = Some((reason, sip_status)),
                CallWrite::Start(r) if r.end_reason.is_some() => {
                    found = Some((r.end_reason.unwrap(), r.sip_status.unwrap_or(0)));
                }
                _ => {}
            }
        }
        found.expect("the call's ending recorded")
    }

    /// An answered, confirmed call.
    fn answered(readiness: Readiness) -> Rig {
        let mut rig = Rig::new(readiness);
        rig.deliver(INVITE);
        if readiness == Readiness::Later {
            let call = rig.call();
            rig.input(Input::Media(call, MediaInput::Ready));
            rig.pump();
        }
        let ok = rig.ok();
        rig.deliver(ack_for(&ok));
        rig
    }

    /// The agent's REST hang-up of the call, with the agent's token or another password.
    fn rest_hangup(&mut self, password: &str) -> HangupOutcome {
        let req = HangupRequest {
            account_sid: ACCOUNT.into(),
            call_sid: CALL_SID.into(),
            user: ACCOUNT.into(),
            password: password.into(),
        };
        match self.input(Input::Admin(AdminInput::Rest(req))) {
            Reply::Rest(outcome) => outcome,
            other => panic!("not a REST reply: {other:?}"),
        }
    }

    fn bye(&mut self) -> Request {
        let byes = self.requests(Method::Bye);
        assert_eq!(byes.len(), 1, "one BYE: {byes:?}");
        byes[0].clone()
    }

    /// Answers our BYE with 200, as Twilio does.
    fn answer_bye(&mut self) {
        let bye = self.bye();
        self.deliver(Response::to_request(&bye, StatusCode::OK, None).to_bytes());
    }
}

fn header(headers: &crate::sip::message::Headers, name: &str) -> String {
    headers.get(&HeaderName::new(name)).map(|v| String::from_utf8_lossy(v).into_owned()).unwrap_or_default()
}

fn ack_for(ok: &Response) -> String {
    let h = &ok.headers;
    format!(
        "ACK sip:+14155550123@203.0.113.10:5060;transport=udp SIP/2.0\r\nVia: SIP/2.0/UDP 54.244.51.1:5060;branch=z9hG4bKack1\r\n\
         Max-Forwards: 69\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: 48063 ACK\r\nContent-Length: 0\r\n\r\n",
        header(h, "From"),
        header(h, "To"),
        header(h, "Call-ID")
    )
}

fn twilio_bye(to_tag: &str) -> String {
    BYE.replace("<YOUR-CONTACT>", "+14155550123@203.0.113.10:5060").replace("<YOUR-TO-TAG>", to_tag)
}

fn cancel() -> String {
    // CANCEL matches the INVITE's branch, From, Call-ID and CSeq number (RFC 3261 §9.1).
    let invite = match Message::parse(Bytes::from_static(INVITE.as_bytes())).unwrap() {
        Message::Request(r) => r,
        Message::Response(_) => unreachable!(),
    };
    let h = &invite.headers;
    let via = header(h, "Via");
    let cseq = header(h, "CSeq").split_whitespace().next().unwrap().to_string();
    format!(
        "CANCEL {} SIP/2.0\r\nVia: {via}\r\nMax-Forwards: 70\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {cseq} CANCEL\r\n\
         Content-Length: 0\r\n\r\n",
        invite.uri,
        header(h, "From"),
        header(h, "To"),
        header(h, "Call-ID")
    )
}

fn reason(req: &Request) -> String {
    header(&req.headers, "Reason")
}

#[test]
fn a_call_rings_while_its_agent_is_reached_then_is_answered_and_the_caller_hangs_up() {
    let mut rig = Rig::new(Readiness::Later);
    rig.deliver(INVITE);
    assert_eq!(rig.codes(), [100, 180], "ringing, not answered, while the agent is reached");
    let call = rig.call();
    assert!(rig.calls.is_ringing(call));
    assert_eq!(rig.calls.agent_link(call), Some(&AgentLink::Connecting));
    rig.input(Input::Media(call, MediaInput::Ready));
    rig.pump();
    assert_eq!(rig.codes(), [100, 180, 200]);
    assert!(!rig.calls.is_ringing(call));
    assert_eq!(rig.calls.agent_link(call), Some(&AgentLink::Connected));
    // A second "ready" answers nothing twice.
    rig.input(Input::Media(call, MediaInput::Ready));
    rig.pump();
    assert_eq!(rig.codes(), [100, 180, 200]);
    let ok = rig.ok();
    rig.deliver(ack_for(&ok));
    let tag = rig.our_tag();
    rig.deliver(twilio_bye(&tag));
    assert_eq!(rig.calls.active(), 0);
    assert!(matches!(rig.asked()[..], [Asked::Open(_), Asked::Close]), "{:?}", rig.asked());
    let (why, status) = rig.ended();
    assert!(why.starts_with("the caller hung up"), "{why}");
    assert_eq!(status, 200);
    // The port rests 2 s, then comes back (the ports-in-use gauge falls with it, not at the next call).
    assert_eq!(rig.calls.ports.in_use(), 1);
    let back = rig.calls.poll_timeout().expect("the port's return is a deadline");
    assert_eq!(back, rig.now + Duration::from_secs(2));
    let at = (rig.now - rig.start + Duration::from_secs(2)).as_millis() as u64;
    rig.advance_to(at);
    assert_eq!((rig.calls.ports.in_use(), rig.calls.poll_timeout()), (0, None));
}

#[test]
fn the_caller_cancelling_while_it_rings_is_recorded_as_cancelled() {
    let mut rig = Rig::new(Readiness::Later);
    rig.deliver(INVITE);
    rig.deliver(cancel());
    assert!(rig.codes().contains(&487), "{:?}", rig.codes());
    assert_eq!(rig.calls.active(), 0);
    assert_eq!(rig.ended(), ("the caller cancelled".to_string(), 487));
}

#[test]
fn an_agent_that_cannot_be_reached_gets_the_call_refused_with_503_and_a_generic_reason() {
    let mut rig = Rig::new(Readiness::Later);
    rig.deliver(INVITE);
    let call = rig.call();
    rig.input(Input::Media(call, MediaInput::Failed("connection refused (os error 111)".into())));
    rig.pump();
    let last = rig.responses().pop().unwrap();
    assert_eq!((last.status.as_u16(), &last.reason[..]), (503, &b"Agent Unavailable"[..]));
    assert_eq!(header(&last.headers, "Retry-After"), "5");
    let why = header(&last.headers, "Reason");
    assert!(why.contains("the agent is unavailable") && !why.contains("refused"), "{why}");
    // A failure reported twice (or after the call ended) changes nothing.
    rig.input(Input::Media(call, MediaInput::Failed("again".into())));
    rig.advance_to(40_000);
    assert_eq!(rig.calls.active(), 0);
    assert_eq!(rig.ended(), ("agent unavailable: connection refused (os error 111)".to_string(), 503));
}

/// Each way vocals ends an answered call: the BYE's Reason and the record's ending.
#[test]
fn every_hang_up_of_an_answered_call_sends_one_bye_with_its_reason_and_records_why() {
    type Trigger = fn(&mut Rig, CallRef);
    let cases: [(&str, Trigger, &str, &str); 9] = [
        (
            "REST",
            |rig, _| {
                let out = rig.rest_hangup(TOKEN);
                assert!(
                    matches!(out, HangupOutcome::Done(CallSummary { status: "completed", direction: "inbound", .. })),
                    "{out:?}"
                );
            },
            "cause=200;text=\"the agent ended the call (REST)\"",
            "the agent ended the call (REST)",
        ),
        (
            "admin",
            |rig, _| assert_eq!(rig.input(Input::Admin(AdminInput::End(CALL_SID.into()))), Reply::Ended(true)),
            "cause=200;text=\"an admin ended the call\"",
            "an admin ended the call",
        ),
        (
            "shutdown",
            |rig, _| {
                rig.input(Input::Admin(AdminInput::EndAll("the server is shutting down".into())));
            },
            "cause=503;text=\"the server is shutting down\"",
            "the server is shutting down",
        ),
        (
            "media timeout",
            |rig, call| {
                let why = Ending::Media(MediaEnd::Timeout(Duration::from_secs(30)));
                rig.input(Input::Media(call, MediaInput::Ended(why)));
            },
            "cause=408;text=\"no RTP received for 30 s\"",
            "no RTP received for 30 s",
        ),
        (
            "agent hung up",
            |rig, call| {
                rig.input(Input::Media(call, MediaInput::Ended(Ending::AgentHungUp)));
            },
            "cause=200;text=\"the agent hung up\"",
            "the agent hung up",
        ),
        (
            "agent failed",
            |rig, call| {
                let why = Ending::AgentFailed("IO error: Connection reset by peer".into());
                rig.input(Input::Media(call, MediaInput::Ended(why)));
            },
            "cause=500;text=\"the agent's stream failed\"",
            "the agent's stream failed: IO error: Connection reset by peer",
        ),
        (
            "agent stalled",
            |rig, call| {
                let why = Ending::AgentStalled(Duration::from_secs(3));
                rig.input(Input::Media(call, MediaInput::Ended(why)));
            },
            "cause=500;text=\"the agent stalled: it took no audio for 3 s\"",
            "the agent stalled: it took no audio for 3 s",
        ),
        (
            "agent violation",
            |rig, call| {
                let why = Ending::AgentViolation(Violation::MarkName);
                rig.input(Input::Media(call, MediaInput::Ended(why)));
            },
            "cause=500;text=\"the agent broke a limit",
            "the agent broke a limit",
        ),
        (
            "transferred",
            |rig, call| {
                let e = Event::ReferNotify { call, status: 200, done: true };
                rig.input(Input::Sip(&e));
            },
            "cause=200;text=\"call transferred\"",
            "call transferred",
        ),
    ];
    for (name, trigger, bye_reason, record) in cases {
        let mut rig = Rig::answered(Readiness::Later);
        let call = rig.call();
        trigger(&mut rig, call);
        rig.pump();
        let bye = rig.bye();
        assert!(reason(&bye).contains(bye_reason), "{name}: {}", reason(&bye));
        // A second cause while the first BYE is out neither sends another nor changes the record.
        rig.input(Input::Media(call, MediaInput::Ended(Ending::AgentHungUp)));
        rig.pump();
        rig.answer_bye();
        assert_eq!(rig.calls.active(), 0, "{name}");
        let (why, status) = rig.ended();
        assert!(why.starts_with(record), "{name}: {why}");
        assert_eq!(status, 200, "{name}");
        assert_eq!(rig.asked().last(), Some(&Asked::Close), "{name}");
        // The media record's agent ending is the call's: the media's or the agent's own cause when it was one.
        let link = rig.media.agent_ending.lock().unwrap().clone().unwrap();
        if name.starts_with("agent") || name == "media timeout" {
            assert_eq!(link, why, "{name}");
        } else {
            assert_eq!(link, "the call ended first", "{name}");
        }
    }
}

#[test]
fn the_maximum_duration_ends_an_answered_call_once() {
    let mut rig = Rig::answered(Readiness::Now);
    rig.advance_to(3_600_000);
    let bye = rig.bye();
    assert!(reason(&bye).contains("maximum call duration reached"), "{}", reason(&bye));
    rig.answer_bye();
    assert_eq!(rig.ended(), ("maximum call duration reached".to_string(), 200));
}

/// Each way vocals ends a call that still rings: the final response, and the record.
#[test]
fn every_hang_up_of_a_ringing_call_is_a_final_response_saying_who() {
    type Trigger = fn(&mut Rig, CallRef);
    let cases: [(&str, Trigger, (u16, &str), &str); 4] = [
        (
            "REST",
            |rig, _| {
                let out = rig.rest_hangup(TOKEN);
                assert!(
                    matches!(out, HangupOutcome::Done(CallSummary { status: "canceled", direction: "inbound", .. })),
                    "{out:?}"
                );
            },
            (480, "Call Ended By Agent"),
            "the agent ended the call (REST) while it rang",
        ),
        (
            "admin",
            |rig, _| assert_eq!(rig.input(Input::Admin(AdminInput::End(CALL_SID.into()))), Reply::Ended(true)),
            (480, "Call Ended By Admin"),
            "an admin ended the call",
        ),
        (
            "shutdown",
            |rig, _| {
                rig.input(Input::Admin(AdminInput::EndAll("the server is shutting down".into())));
            },
            (503, "Shutting Down"),
            "the server is shutting down",
        ),
        (
            "agent hung up before the answer",
            |rig, call| {
                rig.input(Input::Media(call, MediaInput::Ended(Ending::AgentHungUp)));
            },
            (480, "Agent Hung Up"),
            "the agent hung up",
        ),
    ];
    for (name, trigger, (code, phrase), record) in cases {
        let mut rig = Rig::new(Readiness::Later);
        rig.deliver(INVITE);
        let call = rig.call();
        trigger(&mut rig, call);
        rig.pump();
        let last = rig.responses().pop().unwrap();
        assert_eq!((last.status.as_u16(), &last.reason[..]), (code, phrase.as_bytes()), "{name}");
        assert!(rig.requests(Method::Bye).is_empty(), "{name}: no BYE before an answer");
        // The agent being reached afterwards does not answer a refused call.
        rig.input(Input::Media(call, MediaInput::Ready));
        rig.pump();
        assert!(!rig.codes().contains(&200), "{name}: answered after its refusal");
        rig.advance_to(40_000);
        assert_eq!(rig.calls.active(), 0, "{name}");
        assert_eq!(rig.ended(), (record.to_string(), code), "{name}");
    }
}

#[test]
fn the_rest_hang_up_refuses_a_wrong_password_and_an_unknown_call() {
    let mut rig = Rig::answered(Readiness::Now);
    let mut req = HangupRequest {
        account_sid: ACCOUNT.into(),
        call_sid: CALL_SID.into(),
        user: ACCOUNT.into(),
        password: "x".into(),
    };
    assert_eq!(rig.input(Input::Admin(AdminInput::Rest(req.clone()))), Reply::Rest(HangupOutcome::Unauthorized));
    req.call_sid = "CA0".into();
    assert_eq!(rig.input(Input::Admin(AdminInput::Rest(req.clone()))), Reply::Rest(HangupOutcome::UnknownCall));
    req.call_sid = CALL_SID.into();
    req.account_sid = "AC0".into();
    assert_eq!(rig.input(Input::Admin(AdminInput::Rest(req.clone()))), Reply::Rest(HangupOutcome::UnknownCall));
    assert!(rig.requests(Method::Bye).is_empty());
    assert_eq!(rig.input(Input::Admin(AdminInput::End("vc_none".into()))), Reply::Ended(false));
}

#[test]
fn transfers_refer_when_the_policy_allows_and_report_every_outcome_to_the_agent() {
    let mut rig = Rig::answered(Readiness::Now);
    let call = rig.call();
    // Refused by the policy (premium rate): no REFER, the agent told why.
    rig.input(Input::Agent(call, AgentInput::Transfer("+19005550100".into(), vec![])));
    rig.pump();
    assert!(rig.requests(Method::Refer).is_empty());
    assert_eq!(rig.asked().last(), Some(&Asked::TransferRefused));
    // Allowed: REFER to tel:+E164; the peer refuses it.
    rig.input(Input::Agent(call, AgentInput::Transfer("+14155550100".into(), vec![])));
    rig.pump();
    let refers = rig.requests(Method::Refer);
    assert_eq!(refers.len(), 1);
    assert_eq!(header(&refers[0].headers, "Refer-To"), "<tel:+14155550100>");
    rig.deliver(Response::to_request(&refers[0], StatusCode::new(603).unwrap(), None).to_bytes());
    assert_eq!(rig.asked().last(), Some(&Asked::Transfer(TransferStatus::Refused, 603)));
    // Accepted, then progress, then the target fails: the call stays up.
    for (event, expect) in [
        (Event::ReferAnswered { call, status: StatusCode::new(202).unwrap() }, TransferStatus::Accepted),
        (Event::ReferNotify { call, status: 180, done: false }, TransferStatus::Progress),
        (Event::ReferNotify { call, status: 486, done: true }, TransferStatus::Failed),
    ] {
        rig.input(Input::Sip(&event));
        rig.pump();
        assert!(matches!(rig.asked().last(), Some(Asked::Transfer(s, _)) if *s == expect), "{:?}", rig.asked());
    }
    assert!(rig.requests(Method::Bye).is_empty(), "a failed transfer leaves the call up");
    // A completed one ends our part with a BYE (covered with its Reason above).
    rig.input(Input::Sip(&Event::ReferNotify { call, status: 200, done: true }));
    rig.pump();
    let asked = rig.asked();
    assert_eq!(asked[asked.len() - 2..], [Asked::Transfer(TransferStatus::Completed, 200), Asked::Close]);
    assert!(reason(&rig.bye()).contains("call transferred"));
}

#[test]
fn the_transfer_limit_refuses_the_next_one() {
    let mut rig = Rig::answered(Readiness::Now);
    let call = rig.call();
    for _ in 0..3 {
        rig.input(Input::Agent(call, AgentInput::Transfer("+14155550100".into(), vec![])));
    }
    rig.input(Input::Agent(call, AgentInput::Transfer("+14155550100".into(), vec![])));
    rig.pump();
    assert_eq!(rig.requests(Method::Refer).len(), 3, "3 a call by default");
    assert_eq!(rig.asked().last(), Some(&Asked::TransferRefused));
}

#[test]
fn hold_and_resume_reinvites_update_the_media_and_are_answered_on_the_same_port() {
    let mut rig = Rig::answered(Readiness::Now);
    let port = match rig.asked()[0] {
        Asked::Open(p) => p,
        ref other => panic!("{other:?}"),
    };
    let tag = rig.our_tag();
    let sdp = "v=0\r\no=- 1 2 IN IP4 54.172.60.1\r\ns=-\r\nc=IN IP4 54.172.60.1\r\nt=0 0\r\nm=audio 12000 RTP/AVP 0\r\na=sendonly\r\n";
    let reinvite = twilio_bye(&tag)
        .replace("BYE sip:", "INVITE sip:")
        .replace("CSeq: 48064 BYE", "CSeq: 48070 INVITE")
        .replace(";branch=z9hG4bK", ";branch=z9hG4bKhold")
        .replace(
            "Content-Length: 0\r\n\r\n",
            &format!("Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}", sdp.len()),
        );
    rig.sent.clear();
    rig.deliver(reinvite);
    assert_eq!(rig.asked().last(), Some(&Asked::Update));
    let ok = rig.ok();
    let body = String::from_utf8_lossy(&ok.body).into_owned();
    assert!(body.contains(&format!("m=audio {port} ")), "{body}");
    assert!(body.contains("a=recvonly"), "hold answered recvonly (RFC 3264 §6.1): {body}");
    assert_eq!(rig.calls.active(), 1);
    // The call holds its media as it now stands.
    let call = rig.call();
    assert_eq!(rig.calls.calls[&call].stream.direction, Direction::RecvOnly);
}

#[test]
fn a_lost_ack_ends_the_call_and_records_it() {
    let mut rig = Rig::new(Readiness::Now);
    rig.deliver(INVITE);
    rig.advance_to(33_000);
    assert_eq!(rig.calls.active(), 0);
    assert_eq!(rig.ended(), ("no ACK came for the 200 OK: vocals hung up".to_string(), 200));
}

#[test]
fn an_offerless_invite_whose_ack_brings_no_answer_is_ended_with_488() {
    let mut rig = Rig::new(Readiness::Now);
    let offerless = INVITE.split("\r\n\r\n").next().unwrap().replace("Content-Type: application/sdp\r\n", "");
    let offerless = regex_content_length(&offerless);
    rig.deliver(offerless);
    let ok = rig.ok();
    assert!(String::from_utf8_lossy(&ok.body).contains("m=audio"), "our offer in the 200");
    rig.deliver(ack_for(&ok));
    let bye = rig.bye();
    assert!(reason(&bye).contains("cause=488"), "{}", reason(&bye));
    rig.answer_bye();
    let (why, _) = rig.ended();
    assert_eq!(why, "the ACK carried no SDP answer to our offer");
}

/// The INVITE's headers with `Content-Length: 0` and no body.
fn regex_content_length(head: &str) -> String {
    let lines: Vec<&str> = head.lines().filter(|l| !l.to_ascii_lowercase().starts_with("content-length")).collect();
    format!("{}\r\nContent-Length: 0\r\n\r\n", lines.join("\r\n"))
}

#[test]
fn dtmf_in_sip_info_reaches_the_media_of_a_live_call_only() {
    let mut rig = Rig::answered(Readiness::Now);
    let call = rig.call();
    rig.input(Input::Sip(&Event::Dtmf { call, digit: '5', duration_ms: Some(160) }));
    assert_eq!(rig.asked().last(), Some(&Asked::Dtmf('5')));
    rig.input(Input::Sip(&Event::Dtmf { call: CallRef(999), digit: '6', duration_ms: None }));
    assert_eq!(rig.asked().last(), Some(&Asked::Dtmf('5')));
}

#[test]
fn a_port_taken_by_another_program_is_skipped_and_no_port_at_all_is_503() {
    let mut rig = Rig::new(Readiness::Now);
    rig.media.taken.lock().unwrap().extend(20000..=20009);
    rig.deliver(INVITE);
    let last = rig.responses().pop().unwrap();
    assert_eq!((last.status.as_u16(), &last.reason[..]), (503, &b"No RTP Port Available"[..]));
    assert_eq!(rig.ended(), ("no RTP port available".to_string(), 503));
}

#[test]
fn a_second_invite_with_a_live_callsid_is_refused_482() {
    let mut rig = Rig::answered(Readiness::Now);
    let again = INVITE.replace("Call-ID: ", "Call-ID: again-").replace(";branch=z9hG4bK", ";branch=z9hG4bKagain");
    rig.sent.clear();
    rig.deliver(again);
    let last = rig.responses().pop().unwrap();
    assert_eq!((last.status.as_u16(), &last.reason[..]), (482, &b"CallSid Already In Use"[..]));
    assert_eq!(rig.calls.active(), 1, "the live call is untouched");
}

mod placing;
mod session;
