//! The endpoint as UAC on a virtual network and clock: outbound calls to a trunk or proxy (RFC 3261 §8.1,
//! §9.1, §12.1.2, §13.2, §17.1.1, §22).

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::*;
use crate::sip::auth::{Challenge, DigestCredentials};
use crate::sip::message::{HeaderName, Message, Method, Response, Uri};

/// The trunk's edge (in the default allowlist): the next hop of every outbound call here.
const PROXY: &str = "54.244.51.1:5060";
const LOCAL: &str = "203.0.113.10:5060";
const TARGET: &str = "sip:+14155550123@example.pstn.twilio.com";
const OFFER: &[u8] = b"v=0\r\no=vocals 1 1 IN IP4 203.0.113.10\r\ns=vocals\r\nc=IN IP4 203.0.113.10\r\nt=0 0\r\nm=audio 10000 RTP/AVP 0 101\r\n";
const ANSWER: &[u8] =
    b"v=0\r\no=far 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\nm=audio 20000 RTP/AVP 0\r\n";
const FAR_CONTACT: &str = "<sip:+14155550123@198.51.100.7:5080;transport=udp>";

fn config() -> EndpointConfig {
    let unlimited = RateConfig::default();
    EndpointConfig {
        rate: unlimited.clone(),
        request_rate: unlimited,
        ..crate::config::SipConfig::default().endpoint()
    }
}

struct Net {
    ep: Endpoint,
    start: Instant,
    now: Instant,
    sent: Vec<(Peer, Bytes)>,
    events: Vec<Event>,
}

fn proxy() -> Peer {
    Peer { addr: PROXY.parse().unwrap(), local: LOCAL.parse().unwrap(), transport: Transport::Udp, conn: None }
}

fn dial_of(credentials: Option<Credentials>) -> Dial {
    Dial {
        target: Uri::parse(&Bytes::from_static(TARGET.as_bytes())).unwrap(),
        next_hop: proxy(),
        from_user: "+12125550100".into(),
        sdp: Bytes::from_static(OFFER),
        credentials,
        headers: vec![(HeaderName::new("X-Vocals-Agent"), "support".into())],
    }
}

fn creds() -> Credentials {
    Credentials { username: "vocals".into(), password: "s3cret".into() }
}

impl Net {
    fn new(config: EndpointConfig) -> Net {
        let start = Instant::now();
        Net { ep: Endpoint::new(config, IdGen::new(11)), start, now: start, sent: Vec::new(), events: Vec::new() }
    }

    fn drain(&mut self) {
        while let Some(o) = self.ep.poll_output() {
            match o {
                Output::Transmit { peer, bytes } => self.sent.push((peer, bytes)),
                Output::Event(e) => self.events.push(e),
            }
        }
    }

    fn deliver(&mut self, bytes: impl Into<Bytes>) {
        self.ep.handle(self.now, proxy(), bytes.into());
        self.drain();
    }

    fn respond(&mut self, res: &Response) {
        self.deliver(res.to_bytes());
    }

    fn advance_to(&mut self, ms: u64) {
        let end = self.start + Duration::from_millis(ms);
        while let Some(t) = self.ep.poll_timeout().filter(|&t| t <= end) {
            self.now = self.now.max(t);
            self.ep.handle_timeout(self.now);
            self.drain();
        }
        self.now = end;
    }

    /// Every request sent since the last call, each checked to go to the proxy.
    fn requests(&mut self) -> Vec<Request> {
        self.sent
            .drain(..)
            .map(|(peer, b)| {
                assert_eq!(peer, proxy(), "every request of an outbound call goes to the dial's next hop");
                match Message::parse(b).expect("vocals sends parseable messages") {
                    Message::Request(r) => r,
                    Message::Response(r) => panic!("a response was sent: {r:?}"),
                }
            })
            .collect()
    }

    fn responses(&mut self) -> Vec<Response> {
        self.sent.drain(..).filter_map(|(_, b)| Message::parse(b).unwrap().as_response().cloned()).collect()
    }

    fn events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    fn dial(&mut self, credentials: Option<Credentials>) -> (CallRef, Request) {
        let call = self.ep.dial(self.now, dial_of(credentials));
        self.drain();
        let sent = self.requests();
        assert_eq!(sent.len(), 1, "the INVITE goes out at once");
        assert!(self.events().is_empty());
        (call, sent[0].clone())
    }
}

/// The far end's response to `invite` with To tag `tag`, its Contact, and extra header lines.
fn answer(invite: &Request, code: u16, tag: &str, extra: &[(&str, &str)], body: &[u8]) -> Response {
    let mut res = Response::to_request(invite, StatusCode::new(code).unwrap(), Some(tag));
    if code > 100 && code < 300 {
        res.headers.push(HeaderName::Contact, FAR_CONTACT);
    }
    for (name, value) in extra {
        res.headers.push(HeaderName::new(name), value.to_string());
    }
    if !body.is_empty() {
        res.headers.push(HeaderName::ContentType, "application/sdp");
        res.body = Bytes::copy_from_slice(body);
    }
    res
}

fn text(h: Option<&[u8]>) -> String {
    String::from_utf8_lossy(h.expect("header present")).into_owned()
}

fn branch(req: &Request) -> Bytes {
    req.headers.top_via().unwrap().branch().unwrap().clone()
}

/// A request from the far end in the dialog `ok` made.
fn far_request(ok: &Response, method: &str, cseq: u32, extra: &str, body: &str) -> String {
    let ct = if body.is_empty() { "" } else { "Content-Type: application/sdp\r\n" };
    format!(
        "{method} sip:{LOCAL};transport=udp SIP/2.0\r\nVia: SIP/2.0/UDP 54.244.51.1:5060;branch=z9hG4bKfar{method}{cseq}\r\n\
         Max-Forwards: 70\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {cseq} {method}\r\n{extra}{ct}Content-Length: {}\r\n\r\n{body}",
        text(ok.headers.get(&HeaderName::To)),
        text(ok.headers.get(&HeaderName::From)),
        text(ok.headers.get(&HeaderName::CallId)),
        body.len()
    )
}

/// An answered call: INVITE, 180, 200 with two Record-Routes; the ACK taken off the wire.
fn answered(net: &mut Net) -> (CallRef, Request, Response) {
    let (call, invite) = net.dial(None);
    net.respond(&answer(&invite, 180, "far1", &[], b""));
    let rr = [("Record-Route", "<sip:54.172.60.2;lr>, <sip:54.172.60.1;lr>")];
    let ok = answer(&invite, 200, "far1", &rr, ANSWER);
    net.respond(&ok);
    let sent = net.requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].method, Method::Ack);
    net.events();
    (call, invite, ok)
}

#[test]
fn an_outbound_call_is_invited_rung_answered_acked_and_hung_up() {
    let mut net = Net::new(config());
    let (call, invite) = net.dial(None);
    // The INVITE (§8.1.1).
    assert_eq!(invite.uri.to_string(), TARGET);
    let h = &invite.headers;
    assert_eq!(text(h.get(&HeaderName::To)), format!("<{TARGET}>"));
    let from = h.from().unwrap();
    assert_eq!(from.uri.to_string(), "sip:+12125550100@203.0.113.10");
    assert!(from.tag().is_some_and(|t| t.len() >= 8));
    let via = h.top_via().unwrap();
    assert!(via.has_rfc3261_branch() && via.rport() == Some(None), "our Via carries a branch and ;rport");
    assert_eq!(h.vias().count(), 1);
    assert_eq!(text(h.get(&HeaderName::MaxForwards)), "70");
    assert_eq!(text(h.get(&HeaderName::Contact)), "<sip:203.0.113.10:5060;transport=udp>");
    assert!(text(h.get(&HeaderName::Allow)).contains("INVITE"));
    assert!(h.contains(&HeaderName::Supported) && h.contains(&HeaderName::UserAgent));
    assert_eq!(text(h.get(&HeaderName::new("X-Vocals-Agent"))), "support");
    assert_eq!(h.cseq().unwrap().method, Method::Invite);
    assert!(!h.call_id().unwrap().0.is_empty());
    assert_eq!((text(h.get(&HeaderName::ContentType)), &invite.body[..]), ("application/sdp".into(), OFFER));
    assert!(invite.validate().is_ok());
    assert_eq!(net.ep.sizes().calls, 1);
    assert_eq!(net.ep.sizes().client_transactions, 1);

    net.respond(&answer(&invite, 100, "", &[], b""));
    assert!(net.events().is_empty(), "100 Trying is not reported");
    net.advance_to(5_000);
    assert!(net.requests().is_empty(), "a response stopped Timer A");
    net.respond(&answer(&invite, 180, "far1", &[], b""));
    net.respond(&answer(&invite, 183, "far1", &[], ANSWER));
    assert_eq!(
        net.events(),
        vec![
            Event::Progress { call, status: StatusCode::RINGING, sdp: None },
            Event::Progress { call, status: StatusCode::SESSION_PROGRESS, sdp: Some(Bytes::from_static(ANSWER)) },
        ]
    );

    let rr = [("Record-Route", "<sip:54.172.60.2;lr>, <sip:54.172.60.1;lr>")];
    let ok = answer(&invite, 200, "far1", &rr, ANSWER);
    net.respond(&ok);
    assert_eq!(net.events(), vec![Event::Answered { call, sdp: Some(Bytes::from_static(ANSWER)) }]);
    let sent = net.requests();
    let [ack] = &sent[..] else { panic!("one ACK: {sent:?}") };
    // §13.2.2.4: the dialog's request, CSeq of the INVITE, Request-URI the 2xx's Contact, the Record-Route reversed.
    assert_eq!(ack.method, Method::Ack);
    assert_eq!(ack.uri.to_string(), "sip:+14155550123@198.51.100.7:5080;transport=udp");
    let routes: Vec<_> = ack.headers.get_all(&HeaderName::Route).collect();
    assert_eq!(routes, [&b"<sip:54.172.60.1;lr>"[..], b"<sip:54.172.60.2;lr>"]);
    assert_eq!(ack.headers.cseq().unwrap().seq, h.cseq().unwrap().seq);
    assert_eq!(ack.headers.cseq().unwrap().method, Method::Ack);
    assert_ne!(branch(ack), branch(&invite), "the ACK for a 2xx is a transaction of its own");
    assert_eq!(ack.headers.to().unwrap().tag().unwrap(), "far1");
    assert_eq!(ack.headers.from().unwrap().tag(), from.tag());
    assert_eq!(ack.headers.call_id().unwrap(), h.call_id().unwrap());
    assert_eq!(net.ep.sizes().dialogs, 1);

    // A retransmitted 200 gets the same ACK again, and no second event.
    net.respond(&ok);
    assert_eq!(net.requests(), vec![ack.clone()]);
    assert!(net.events().is_empty());

    net.ep.hangup(net.now, call, None);
    net.drain();
    assert_eq!(net.events(), vec![Event::CallEnded { call, why: EndReason::LocalBye }]);
    let sent = net.requests();
    let [bye] = &sent[..] else { panic!("{sent:?}") };
    assert_eq!(bye.method, Method::Bye);
    assert_eq!(bye.uri, ack.uri);
    assert_eq!(bye.headers.get_all(&HeaderName::Route).count(), 2);
    assert_eq!(bye.headers.cseq().unwrap().seq, h.cseq().unwrap().seq + 1, "CSeq continues from the INVITE's");
    net.respond(&Response::to_request(bye, StatusCode::OK, None));
    net.advance_to(60_000);
    assert!(net.requests().is_empty());
    assert_eq!(net.ep.sizes(), Sizes::default(), "every table reaped");
    assert_eq!(net.ep.poll_timeout(), None);
}

#[test]
fn a_407_is_answered_once_with_proxy_authorization_then_200() {
    let mut net = Net::new(config());
    let (call, invite) = net.dial(Some(creds()));
    let challenge = "Digest realm=\"sip.twilio.com\", nonce=\"n0nce\", qop=\"auth\", algorithm=MD5, opaque=\"op\"";
    net.respond(&answer(&invite, 407, "px1", &[("Proxy-Authenticate", challenge)], b""));
    assert!(net.events().is_empty(), "the challenge is answered, not reported");
    let sent = net.requests();
    let [ack, retry] = &sent[..] else { panic!("{sent:?}") };
    assert_eq!((ack.method.clone(), branch(ack)), (Method::Ack, branch(&invite)), "the 407's ACK, by the transaction");
    assert_eq!(retry.method, Method::Invite);
    assert_ne!(branch(retry), branch(&invite), "a new transaction");
    assert_eq!(retry.headers.cseq().unwrap().seq, invite.headers.cseq().unwrap().seq + 1);
    assert_eq!(retry.headers.call_id().unwrap(), invite.headers.call_id().unwrap());
    assert_eq!(retry.headers.get(&HeaderName::From), invite.headers.get(&HeaderName::From), "same From tag");
    assert_eq!(retry.headers.get(&HeaderName::To), invite.headers.get(&HeaderName::To), "no To tag");
    assert_eq!(retry.body, invite.body);
    let value = text(retry.headers.get(&HeaderName::ProxyAuthorization));
    let got = DigestCredentials::parse(value.as_bytes()).unwrap();
    let (cnonce, nc) = (got.get("cnonce").unwrap(), got.get("nc").unwrap());
    assert_eq!(nc, "00000001");
    let expected = Challenge::parse(challenge.as_bytes()).unwrap().respond(&creds(), "INVITE", TARGET, cnonce, 1);
    assert_eq!(value, expected, "computed by the digest module over the Request-URI");
    assert_eq!(got.get("uri"), Some(TARGET));
    assert!(!retry.headers.contains(&HeaderName::Authorization));

    net.respond(&answer(retry, 200, "far1", &[], ANSWER));
    assert_eq!(net.events(), vec![Event::Answered { call, sdp: Some(Bytes::from_static(ANSWER)) }]);
    let sent = net.requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].headers.cseq().unwrap().seq, retry.headers.cseq().unwrap().seq, "ACK with the retry's CSeq");
}

#[test]
fn a_second_401_ends_the_call_unless_it_says_stale() {
    let www = [("WWW-Authenticate", "Digest realm=\"r\", nonce=\"a\", qop=\"auth\"")];
    let mut net = Net::new(config());
    let (call, invite) = net.dial(Some(creds()));
    net.respond(&answer(&invite, 401, "u1", &www, b""));
    let retry = net.requests().pop().unwrap();
    assert!(retry.headers.contains(&HeaderName::Authorization));
    net.respond(&answer(&retry, 401, "u2", &www, b""));
    let status = StatusCode::new(401).unwrap();
    assert_eq!(
        net.events(),
        vec![Event::CallEnded { call, why: EndReason::Failed { status, phrase: "Unauthorized".into() } }]
    );
    assert_eq!(net.requests().iter().map(|r| r.method.clone()).collect::<Vec<_>>(), [Method::Ack], "no third INVITE");

    // stale=true: the same credentials with the new nonce, once more.
    let mut net = Net::new(config());
    let (_, invite) = net.dial(Some(creds()));
    net.respond(&answer(&invite, 401, "u1", &www, b""));
    let retry = net.requests().pop().unwrap();
    let stale = [("WWW-Authenticate", "Digest realm=\"r\", nonce=\"b\", qop=\"auth\", stale=true")];
    net.respond(&answer(&retry, 401, "u2", &stale, b""));
    let third = net.requests().pop().unwrap();
    assert_eq!(third.method, Method::Invite);
    let got = DigestCredentials::parse(third.headers.get(&HeaderName::Authorization).unwrap()).unwrap();
    assert_eq!((got.get("nonce"), got.get("nc")), (Some("b"), Some("00000001")));
    assert!(net.events().is_empty());

    // Without credentials a 407 is the end.
    let mut net = Net::new(config());
    let (call, invite) = net.dial(None);
    net.respond(&answer(&invite, 407, "u1", &[("Proxy-Authenticate", "Digest realm=\"r\", nonce=\"a\"")], b""));
    let status = StatusCode::new(407).unwrap();
    let phrase = "Proxy Authentication Required".to_string();
    assert_eq!(net.events(), vec![Event::CallEnded { call, why: EndReason::Failed { status, phrase } }]);
}

#[test]
fn a_486_ends_the_call_and_the_transaction_acks_it() {
    let mut net = Net::new(config());
    let (call, invite) = net.dial(None);
    net.respond(&answer(&invite, 180, "far1", &[], b""));
    let busy = answer(&invite, 486, "far1", &[], b"");
    net.respond(&busy);
    let status = StatusCode::new(486).unwrap();
    assert_eq!(
        net.events(),
        vec![
            Event::Progress { call, status: StatusCode::RINGING, sdp: None },
            Event::CallEnded { call, why: EndReason::Failed { status, phrase: "Busy Here".into() } }
        ]
    );
    let sent = net.requests();
    let [ack] = &sent[..] else { panic!("{sent:?}") };
    assert_eq!((ack.method.clone(), branch(ack), ack.uri.clone()), (Method::Ack, branch(&invite), invite.uri.clone()));
    assert_eq!(ack.headers.to().unwrap().tag().unwrap(), "far1");
    net.respond(&busy);
    assert_eq!(net.requests(), vec![ack.clone()], "a retransmitted 486 is ACKed again");
    assert!(net.events().is_empty());
    net.advance_to(40_000);
    assert_eq!(net.ep.sizes(), Sizes::default());
}

#[test]
fn no_response_at_all_is_timer_b() {
    let mut net = Net::new(config());
    let (call, _) = net.dial(None);
    net.advance_to(31_999);
    assert_eq!(net.requests().len(), 6, "Timer A: 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s");
    assert!(net.events().is_empty());
    net.advance_to(32_000);
    assert_eq!(net.events(), vec![Event::CallEnded { call, why: EndReason::NoResponse }]);
    assert_eq!(net.ep.sizes(), Sizes::default());
}

#[test]
fn a_cancel_before_any_provisional_waits_for_one() {
    let mut net = Net::new(config());
    let (call, invite) = net.dial(None);
    net.ep.cancel(net.now, call);
    net.drain();
    assert_eq!(net.events(), vec![Event::CallEnded { call, why: EndReason::Cancelled }], "ended at once");
    assert!(net.requests().is_empty(), "no CANCEL before a provisional response (§9.1)");
    assert_eq!(net.ep.sizes().calls, 0, "the call's slot is free");
    net.respond(&answer(&invite, 100, "", &[], b""));
    let sent = net.requests();
    let [cancel] = &sent[..] else { panic!("{sent:?}") };
    assert_eq!(cancel.method, Method::Cancel);
    assert_eq!(branch(cancel), branch(&invite), "the INVITE's branch");
    assert_eq!(cancel.uri, invite.uri);
    assert_eq!(cancel.headers.cseq().unwrap().seq, invite.headers.cseq().unwrap().seq);
    assert_eq!(cancel.headers.cseq().unwrap().method, Method::Cancel);
    for name in [HeaderName::From, HeaderName::To, HeaderName::CallId] {
        assert_eq!(cancel.headers.get(&name), invite.headers.get(&name));
    }
    net.respond(&Response::to_request(cancel, StatusCode::OK, Some("far1")));
    net.respond(&answer(&invite, 487, "far1", &[], b""));
    let sent = net.requests();
    assert_eq!(sent.iter().map(|r| r.method.clone()).collect::<Vec<_>>(), [Method::Ack]);
    assert!(net.events().is_empty(), "nothing more about a call already ended");
    net.advance_to(40_000);
    assert_eq!(net.ep.sizes(), Sizes::default());

    // A final response before any provisional: nothing is sent but its ACK.
    let mut net = Net::new(config());
    let (call, invite) = net.dial(None);
    net.ep.cancel(net.now, call);
    net.drain();
    net.events();
    net.respond(&answer(&invite, 486, "far1", &[], b""));
    assert_eq!(net.requests().iter().map(|r| r.method.clone()).collect::<Vec<_>>(), [Method::Ack]);
    assert!(net.events().is_empty());
}

#[test]
fn a_cancel_after_180_goes_out_at_once_and_the_487_is_acked() {
    let mut net = Net::new(config());
    let (call, invite) = net.dial(None);
    net.respond(&answer(&invite, 180, "far1", &[], b""));
    net.events();
    net.ep.hangup(net.now, call, None);
    net.drain();
    assert_eq!(net.events(), vec![Event::CallEnded { call, why: EndReason::Cancelled }], "hangup cancels too");
    let sent = net.requests();
    let [cancel] = &sent[..] else { panic!("{sent:?}") };
    assert_eq!((cancel.method.clone(), branch(cancel)), (Method::Cancel, branch(&invite)));
    net.ep.cancel(net.now, call);
    net.drain();
    assert!(net.requests().is_empty(), "one CANCEL");
    net.advance_to(600);
    assert_eq!(net.requests().len(), 1, "the CANCEL is retransmitted (Timer E) until answered");
    net.respond(&Response::to_request(cancel, StatusCode::OK, Some("far1")));
    net.respond(&answer(&invite, 487, "far1", &[], b""));
    let sent = net.requests();
    let [ack] = &sent[..] else { panic!("{sent:?}") };
    assert_eq!((ack.method.clone(), branch(ack)), (Method::Ack, branch(&invite)));
    assert!(net.events().is_empty());
}

#[test]
fn a_200_that_crosses_the_cancel_is_acked_and_byed() {
    let mut net = Net::new(config());
    let (call, invite) = net.dial(None);
    net.respond(&answer(&invite, 180, "far1", &[], b""));
    net.ep.cancel(net.now, call);
    net.drain();
    net.requests();
    net.events();
    let ok = answer(&invite, 200, "far1", &[], ANSWER);
    net.respond(&ok);
    let sent = net.requests();
    let methods: Vec<_> = sent.iter().map(|r| r.method.clone()).collect();
    assert_eq!(methods, [Method::Ack, Method::Bye]);
    assert_eq!(sent[1].headers.to().unwrap().tag().unwrap(), "far1");
    assert_eq!(sent[1].uri.to_string(), "sip:+14155550123@198.51.100.7:5080;transport=udp");
    assert!(net.events().is_empty(), "the call already ended as cancelled");
    net.respond(&ok);
    assert_eq!(net.requests().iter().map(|r| r.method.clone()).collect::<Vec<_>>(), [Method::Ack]);
    net.respond(&Response::to_request(&sent[1], StatusCode::OK, None));
    net.advance_to(60_000);
    assert_eq!(net.ep.sizes(), Sizes::default());
}

#[test]
fn a_forked_2xx_is_acked_and_byed_and_the_call_keeps_the_first() {
    let mut net = Net::new(config());
    let (call, invite, ok) = answered(&mut net);
    let fork = answer(&invite, 200, "far2", &[], ANSWER);
    net.respond(&fork);
    let sent = net.requests();
    let methods: Vec<_> = sent.iter().map(|r| r.method.clone()).collect();
    assert_eq!(methods, [Method::Ack, Method::Bye]);
    assert!(sent.iter().all(|r| r.headers.to().unwrap().tag().unwrap() == "far2"));
    assert!(net.events().is_empty(), "no event for a fork");
    net.respond(&fork);
    assert_eq!(net.requests().iter().map(|r| r.method.clone()).collect::<Vec<_>>(), [Method::Ack]);
    net.respond(&ok);
    let again = net.requests();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].headers.to().unwrap().tag().unwrap(), "far1", "the first dialog's ACK again");
    assert_eq!(net.ep.sizes().dialogs, 1);
    assert_eq!(net.ep.sizes().calls, 1);
    let _ = call;
}

#[test]
fn the_far_end_hangs_up_with_bye() {
    let mut net = Net::new(config());
    let (call, _, ok) = answered(&mut net);
    net.deliver(far_request(&ok, "BYE", 1, "Reason: Q.850;cause=16\r\n", ""));
    let res = net.responses();
    assert_eq!(res.iter().map(|r| r.status.as_u16()).collect::<Vec<_>>(), [200]);
    assert_eq!(
        net.events(),
        vec![Event::CallEnded { call, why: EndReason::RemoteBye { reason: Some("Q.850;cause=16".into()) } }]
    );
    assert_eq!(net.ep.sizes().dialogs, 0);
}

#[test]
fn the_far_end_re_invites_and_sends_dtmf() {
    let mut net = Net::new(config());
    let (call, _, ok) = answered(&mut net);
    let contact = "Contact: <sip:+14155550123@198.51.100.8:5080>\r\n";
    net.deliver(far_request(&ok, "INVITE", 2, contact, "v=0\r\na=sendonly\r\n"));
    assert_eq!(net.responses().iter().map(|r| r.status.as_u16()).collect::<Vec<_>>(), [100]);
    assert_eq!(net.events(), vec![Event::ReInvite { call, offer: Some(Bytes::from_static(b"v=0\r\na=sendonly\r\n")) }]);
    net.ep.answer_reinvite(net.now, call, Bytes::from_static(b"v=0\r\na=recvonly\r\n"));
    net.drain();
    let res = net.responses();
    assert_eq!(res.iter().map(|r| r.status.as_u16()).collect::<Vec<_>>(), [200]);
    assert_eq!(&res[0].body[..], b"v=0\r\na=recvonly\r\n");
    assert_eq!(text(res[0].headers.get(&HeaderName::Contact)), "<sip:203.0.113.10:5060;transport=udp>");
    let dtmf = "Content-Type: application/dtmf-relay\r\n";
    let info = far_request(&ok, "INFO", 3, "", "").replace("Content-Length: 0\r\n\r\n", "");
    net.deliver(format!("{info}{dtmf}Content-Length: 24\r\n\r\nSignal=5\r\nDuration=160\r\n"));
    assert_eq!(net.events(), vec![Event::Dtmf { call, digit: '5', duration_ms: Some(160) }]);
    assert_eq!(net.responses().iter().map(|r| r.status.as_u16()).collect::<Vec<_>>(), [200]);
    // The re-INVITE moved the remote target: our BYE goes there, still through the proxy.
    net.ep.hangup(net.now, call, None);
    net.drain();
    let bye = net.requests().into_iter().find(|r| r.method == Method::Bye).expect("a BYE");
    assert_eq!(bye.uri.to_string(), "sip:+14155550123@198.51.100.8:5080");
}

#[test]
fn dialing_when_full_or_draining_or_with_a_bad_from_user_ends_at_once() {
    let mut net = Net::new(EndpointConfig { max_calls: 1, ..config() });
    let (_first, _) = net.dial(None);
    let second = net.ep.dial(net.now, dial_of(None));
    net.drain();
    assert!(net.requests().is_empty());
    assert_eq!(
        net.events(),
        vec![Event::CallEnded { call: second, why: EndReason::NotDialed { why: "too many calls" } }]
    );
    assert_eq!(net.ep.sizes().calls, 1);

    let mut net = Net::new(config());
    net.ep.set_draining(true);
    let call = net.ep.dial(net.now, dial_of(None));
    net.drain();
    assert_eq!(net.events(), vec![Event::CallEnded { call, why: EndReason::NotDialed { why: "draining" } }]);

    let mut net = Net::new(config());
    for bad in ["", "a b", "x@y", "<sip:evil>"] {
        let call = net.ep.dial(net.now, Dial { from_user: bad.into(), ..dial_of(None) });
        net.drain();
        assert!(
            matches!(net.events()[..], [Event::CallEnded { call: c, why: EndReason::NotDialed { .. } }] if c == call)
        );
    }
    let injected = Dial { headers: vec![(HeaderName::new("X-A"), "1\r\nBYE".into())], ..dial_of(None) };
    net.ep.dial(net.now, injected);
    net.drain();
    assert!(net.requests().is_empty(), "nothing with a header injection is sent");
    assert_eq!(net.ep.sizes(), Sizes::default());
}

#[test]
fn an_answered_outbound_call_can_be_transferred_with_refer() {
    let mut net = Net::new(config());
    let (call, _, _) = answered(&mut net);
    net.ep.refer(net.now, call, "sip:+14155550100@example.pstn.twilio.com");
    net.drain();
    let sent = net.requests();
    let [refer] = &sent[..] else { panic!("{sent:?}") };
    assert_eq!(refer.method, Method::Refer);
    assert_eq!(refer.uri.to_string(), "sip:+14155550123@198.51.100.7:5080;transport=udp", "to the remote target");
    assert_eq!(refer.headers.get_all(&HeaderName::Route).count(), 2, "through the route set");
    net.respond(&Response::to_request(refer, StatusCode::ACCEPTED, None));
    assert_eq!(net.events(), vec![Event::ReferAnswered { call, status: StatusCode::ACCEPTED }]);
}

#[test]
fn the_answer_and_reject_of_an_inbound_call_do_nothing_to_an_outbound_one() {
    let mut net = Net::new(config());
    let (call, _) = net.dial(None);
    net.ep.ringing(net.now, call);
    net.ep.answer(net.now, call, Bytes::from_static(OFFER));
    net.ep.reject(net.now, call, StatusCode::NOT_FOUND, "x", &[]);
    net.drain();
    assert!(net.sent.is_empty() && net.events().is_empty());
    assert_eq!(net.ep.sizes().calls, 1);
}

/// A TLS trunk the driver could not connect to: the INVITE queued for it fails the call at once, as a 503 would
/// (§8.1.3.1), rather than after Timer B; a BYE waiting on a lost connection ends its transaction; calls
/// toward other destinations are untouched.
#[test]
fn a_connection_that_cannot_be_opened_fails_the_requests_waiting_on_it() {
    let mut net = Net::new(config());
    let tls = Peer { transport: Transport::Tls, addr: "54.244.51.3:5061".parse().unwrap(), ..proxy() };
    let call = net.ep.dial(net.now, Dial { next_hop: tls, ..dial_of(None) });
    net.drain();
    let (to, bytes) = net.sent.pop().expect("the INVITE is handed to the driver");
    assert_eq!(to, tls, "toward the trunk over TLS, no connection named: the driver opens one");
    let invite = match Message::parse(bytes).unwrap() {
        Message::Request(r) => r,
        Message::Response(_) => unreachable!(),
    };
    assert!(text(invite.headers.get(&HeaderName::Via)).starts_with("SIP/2.0/TLS "));
    assert_eq!(text(invite.headers.get(&HeaderName::Contact)), "<sip:203.0.113.10:5060;transport=tls>");
    let (other, _) = net.dial(None);
    // The driver reports the UDP address over TCP failed: nothing of ours waits on that.
    net.ep.transport_failed(tls.addr, Transport::Tcp, "refused");
    net.drain();
    assert!(net.events().is_empty());
    net.ep.transport_failed(tls.addr, Transport::Tls, "TLS handshake: invalid peer certificate");
    net.drain();
    assert_eq!(
        net.events(),
        vec![Event::CallEnded {
            call,
            why: EndReason::Unreachable { why: "TLS handshake: invalid peer certificate".into() }
        }]
    );
    assert_eq!(net.ep.sizes().client_transactions, 1, "the failed INVITE's transaction is gone; the other stays");
    // Nothing is retransmitted toward the trunk afterwards, and Timer B never ends the call a second time.
    net.advance_to(40_000);
    assert!(net.sent.iter().all(|(p, _)| p.addr != tls.addr));
    assert!(!net.events().iter().any(|e| matches!(e, Event::CallEnded { call: c, .. } if *c == call)));
    let _ = other;
}

/// A trunk that challenges our requests in the dialog too (§22.2 applies to every request): a BYE or REFER
/// answered 407 is sent again once with credentials, the dialog's next CSeq and a new branch; the REFER's
/// outcome is the retried one's; a second challenge is not answered again.
#[test]
fn a_challenged_bye_or_refer_of_an_outbound_call_is_sent_again_with_credentials() {
    let challenge = [("Proxy-Authenticate", "Digest realm=\"sip.twilio.com\", nonce=\"n2\", qop=\"auth\"")];
    let mut net = Net::new(config());
    let (call, invite) = net.dial(Some(creds()));
    let ok = answer(&invite, 200, "far1", &[], ANSWER);
    net.respond(&ok);
    assert_eq!(net.requests()[0].method, Method::Ack);
    net.events();

    net.ep.refer(net.now, call, "tel:+14155550111");
    net.drain();
    let refer = net.requests().pop().expect("a REFER");
    net.respond(&answer(&refer, 407, "far1", &challenge, b""));
    let sent = net.requests();
    assert_eq!(sent.len(), 1, "the REFER once more: {sent:?}");
    let again = &sent[0];
    assert_eq!(again.method, Method::Refer);
    assert!(net.events().is_empty(), "the first REFER's 407 is not the transfer's outcome");
    let h = &again.headers;
    assert_eq!(h.cseq().unwrap().seq, refer.headers.cseq().unwrap().seq + 1);
    assert_ne!(branch(again), branch(&refer));
    let auth = text(h.get(&HeaderName::ProxyAuthorization));
    assert!(auth.contains("username=\"vocals\"") && auth.contains("nc=00000001"), "{auth}");
    assert_eq!(text(h.get(&HeaderName::ReferTo)), text(refer.headers.get(&HeaderName::ReferTo)));
    let expected = Challenge::pick([challenge[0].1.as_bytes()]).unwrap().respond(
        &creds(),
        "REFER",
        &refer.uri.to_string(),
        auth.split("cnonce=\"").nth(1).unwrap().split('"').next().unwrap(),
        1,
    );
    assert_eq!(auth, expected, "the digest is the REFER's");
    net.respond(&answer(again, 202, "far1", &[], b""));
    assert_eq!(net.events(), vec![Event::ReferAnswered { call, status: StatusCode::ACCEPTED }]);

    net.ep.hangup(net.now, call, None);
    net.drain();
    let bye = net.requests().pop().expect("a BYE");
    net.respond(&answer(&bye, 407, "far1", &challenge, b""));
    let again = net.requests().pop().expect("the BYE once more, with credentials");
    assert_eq!(again.method, Method::Bye);
    assert_eq!(again.headers.cseq().unwrap().seq, bye.headers.cseq().unwrap().seq + 1);
    let auth = text(again.headers.get(&HeaderName::ProxyAuthorization));
    assert!(auth.contains("nc=00000002"), "the same nonce again counts on: {auth}");
    // Challenged again: not answered a third time.
    net.respond(&answer(&again, 407, "far1", &challenge, b""));
    assert!(net.requests().is_empty());

    // Without credentials there is nothing to answer with.
    let mut net = Net::new(config());
    let (call, _, _) = answered(&mut net);
    net.ep.hangup(net.now, call, None);
    net.drain();
    let bye = net.requests().pop().unwrap();
    net.respond(&answer(&bye, 407, "far1", &challenge, b""));
    assert!(net.requests().is_empty());
}

/// The answer reaches the call layer before the ACK leaves: the driver carries out what the call layer does
/// with it (the media socket bound and keyed) first, so a far end that starts its media on our ACK never sends
/// into a port not open yet (this raced in `sip-tests/secure.rs`: 49 of 50 frames echoed, now and then).
#[test]
fn the_answer_is_reported_before_its_ack_is_sent() {
    let mut net = Net::new(config());
    let (call, invite) = net.dial(None);
    net.ep.handle(net.now, proxy(), answer(&invite, 200, "far1", &[], ANSWER).to_bytes());
    let first = net.ep.poll_output();
    assert!(matches!(first, Some(Output::Event(Event::Answered { call: c, .. })) if c == call), "{first:?}");
    match net.ep.poll_output() {
        Some(Output::Transmit { bytes, .. }) => assert!(bytes.starts_with(b"ACK "), "{bytes:?}"),
        other => panic!("the ACK next: {other:?}"),
    }
}
