//! The endpoint on a virtual network and clock: Twilio-shaped call flows and the UAS refusal rules.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::*;
use crate::sip::message::{HeaderName, Message, Method, Response};

pub(super) const INVITE: &str = include_str!("../../../sip-tests/vectors/twilio/twilio-invite-udp.sip");
const BYE: &str = include_str!("../../../sip-tests/vectors/twilio/twilio-bye-udp.sip");
pub(super) const SDP: &[u8] = b"v=0\r\no=vocals 1 1 IN IP4 203.0.113.10\r\ns=vocals\r\nc=IN IP4 203.0.113.10\r\nt=0 0\r\nm=audio 10000 RTP/AVP 0 101\r\na=sendrecv\r\n";

/// Twilio's internal hop sends from its edge; the test plays that edge.
pub(super) const EDGE: &str = "54.244.51.1:5060";
const LOCAL: &str = "203.0.113.10:5060";

/// `[sip]`'s defaults without the per-source rate limits (the tests of those set them).
pub(super) fn default_config() -> EndpointConfig {
    let unlimited = RateConfig::default();
    EndpointConfig {
        rate: unlimited.clone(),
        request_rate: unlimited,
        ..crate::config::SipConfig::default().endpoint()
    }
}

pub(super) struct Net {
    pub(super) ep: Endpoint,
    start: Instant,
    pub(super) now: Instant,
    pub(super) sent: Vec<(Peer, Bytes)>,
    events: Vec<Event>,
}

impl Net {
    pub(super) fn new(config: EndpointConfig) -> Net {
        let start = Instant::now();
        Net { ep: Endpoint::new(config, IdGen::new(7)), start, now: start, sent: Vec::new(), events: Vec::new() }
    }

    fn peer(from: &str) -> Peer {
        Peer { addr: from.parse().unwrap(), local: LOCAL.parse().unwrap(), transport: Transport::Udp, conn: None }
    }

    fn deliver_from(&mut self, from: &str, bytes: impl Into<Bytes>) {
        self.ep.handle(self.now, Net::peer(from), bytes.into());
        self.drain();
    }

    pub(super) fn deliver(&mut self, bytes: impl Into<Bytes>) {
        self.deliver_from(EDGE, bytes);
    }

    pub(super) fn drain(&mut self) {
        while let Some(o) = self.ep.poll_output() {
            match o {
                Output::Transmit { peer, bytes } => self.sent.push((peer, bytes)),
                Output::Event(e) => self.events.push(e),
            }
        }
    }

    /// Advances the clock to `ms` after the start, running every deadline on the way.
    pub(super) fn advance_to(&mut self, ms: u64) {
        let end = self.start + Duration::from_millis(ms);
        while let Some(t) = self.ep.poll_timeout().filter(|&t| t <= end) {
            self.now = self.now.max(t);
            self.ep.handle_timeout(self.now);
            self.drain();
        }
        self.now = end;
    }

    pub(super) fn take_sent(&mut self) -> Vec<(Peer, Message)> {
        self.sent.drain(..).map(|(p, b)| (p, Message::parse(b).expect("vocals sends parseable messages"))).collect()
    }

    pub(super) fn take_responses(&mut self) -> Vec<Response> {
        self.take_sent().into_iter().filter_map(|(_, m)| m.as_response().cloned()).collect()
    }

    pub(super) fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    pub(super) fn incoming_call(&mut self) -> CallRef {
        self.take_events()
            .into_iter()
            .find_map(|e| match e {
                Event::IncomingCall { call, .. } => Some(call),
                _ => None,
            })
            .expect("an IncomingCall event")
    }
}

pub(super) fn codes(responses: &[Response]) -> Vec<u16> {
    responses.iter().map(|r| r.status.as_u16()).collect()
}

/// A header's value; for a list header, its elements joined with ", ".
pub(super) fn header(res: &Response, name: &str) -> String {
    let name = HeaderName::new(name);
    let values: Vec<_> = res.headers.get_all(&name).map(String::from_utf8_lossy).collect();
    values.join(", ")
}

/// The ACK Twilio sends for our 2xx: a new transaction, To with our tag.
pub(super) fn ack_for(ok: &Response) -> String {
    let to = header(ok, "To");
    format!(
        "ACK sip:+14155550123@203.0.113.10:5060;transport=udp SIP/2.0\r\nVia: SIP/2.0/UDP 54.244.51.1:5060;branch=z9hG4bKack1\r\n\
         Max-Forwards: 69\r\nFrom: {}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: 48063 ACK\r\nContent-Length: 0\r\n\r\n",
        header(ok, "From"),
        header(ok, "Call-ID")
    )
}

fn twilio_bye(to_tag: &str) -> String {
    BYE.replace("<YOUR-CONTACT>", "+14155550123@203.0.113.10:5060").replace("<YOUR-TO-TAG>", to_tag)
}

fn answered_call(net: &mut Net) -> (CallRef, Response) {
    net.deliver(INVITE);
    let call = net.incoming_call();
    net.ep.ringing(net.now, call);
    net.ep.answer(net.now, call, Bytes::from_static(SDP));
    net.drain();
    let responses = net.take_responses();
    assert_eq!(codes(&responses), [100, 180, 200]);
    (call, responses[2].clone())
}

#[test]
fn a_twilio_call_is_answered_confirmed_and_hung_up_by_the_caller() {
    let mut net = Net::new(default_config());
    net.deliver(INVITE);
    let sent = net.take_sent();
    assert_eq!(sent.len(), 1, "100 Trying at once");
    assert_eq!(sent[0].0.addr, EDGE.parse::<SocketAddr>().unwrap(), "answered to the top Via's sender");
    let call = net.incoming_call();

    net.ep.ringing(net.now, call);
    net.ep.answer(net.now, call, Bytes::from_static(SDP));
    net.drain();
    let responses = net.take_responses();
    let (ringing, ok) = (&responses[0], &responses[1]);
    assert_eq!(ringing.status.as_u16(), 180);
    let to_tag = ok.headers.to().unwrap().tag().unwrap().clone();
    assert_eq!(ringing.headers.to().unwrap().tag(), Some(&to_tag), "18x and 200 carry the same To tag");
    assert_eq!(header(ok, "Record-Route"), "<sip:54.244.51.1;lr>", "Record-Route echoed");
    assert_eq!(header(ok, "Contact"), "<sip:203.0.113.10:5060;transport=udp>");
    assert_eq!(header(ok, "Content-Type"), "application/sdp");
    assert_eq!(ok.body, SDP);
    assert_eq!(net.ep.sizes().dialogs, 1);

    net.deliver(ack_for(ok));
    assert_eq!(net.take_events(), vec![Event::CallConfirmed { call, answer: None }]);
    net.advance_to(2000);
    assert!(net.take_sent().is_empty(), "the ACK stopped the 200's retransmissions");

    net.deliver(twilio_bye(&String::from_utf8_lossy(&to_tag)));
    let responses = net.take_responses();
    assert_eq!(codes(&responses), [200]);
    assert_eq!(
        net.take_events(),
        vec![Event::CallEnded {
            call,
            why: EndReason::RemoteBye { reason: Some("Q.850;cause=16;text=\"Normal call clearing\"".into()) }
        }]
    );
    assert_eq!(net.ep.sizes().dialogs, 0);
}

#[test]
fn invite_retransmissions_get_the_last_response_again() {
    let mut net = Net::new(default_config());
    net.deliver(INVITE);
    let call = net.incoming_call();
    net.deliver(INVITE);
    assert_eq!(codes(&net.take_responses()), [100, 100]);
    assert!(net.take_events().is_empty(), "a retransmission is not a new call");
    net.ep.ringing(net.now, call);
    net.drain();
    net.deliver(INVITE);
    assert_eq!(codes(&net.take_responses()), [180, 180]);
}

#[test]
fn a_lost_ack_means_200_retransmissions_then_our_bye_through_the_route_set() {
    let mut net = Net::new(default_config());
    let (call, _) = answered_call(&mut net);
    net.advance_to(31_999);
    let retransmits = net.take_responses();
    assert_eq!(codes(&retransmits), vec![200; 10], "at 0.5, 1.5, 3.5, 7.5 ... 31.5 s");
    net.advance_to(32_000);
    let sent = net.take_sent();
    let (peer, bye) = sent.iter().find(|(_, m)| m.as_request().is_some()).expect("a BYE");
    let bye = bye.as_request().unwrap();
    assert_eq!(bye.method, Method::Bye);
    assert_eq!(peer.addr, EDGE.parse::<SocketAddr>().unwrap(), "to the first route hop");
    assert_eq!(bye.uri.to_string(), "sip:+12125550100@172.25.90.229:5060;transport=udp", "Request-URI = Contact");
    assert_eq!(String::from_utf8_lossy(bye.headers.get(&HeaderName::Route).unwrap()), "<sip:54.244.51.1;lr>");
    assert!(bye.headers.get(&HeaderName::Reason).is_some());
    assert_eq!(net.take_events(), vec![Event::CallEnded { call, why: EndReason::AckTimeout }]);
}

#[test]
fn our_hangup_sends_a_bye_that_is_retransmitted_until_answered() {
    let mut net = Net::new(default_config());
    let (call, ok) = answered_call(&mut net);
    net.deliver(ack_for(&ok));
    net.take_events();
    net.ep.hangup(net.now, call, None);
    net.drain();
    assert_eq!(net.take_events(), vec![Event::CallEnded { call, why: EndReason::LocalBye }]);
    let sent = net.take_sent();
    let bye = sent[0].1.as_request().unwrap().clone();
    assert_eq!(bye.method, Method::Bye);
    assert!(bye.headers.top_via().unwrap().rport().is_some(), "our Via asks for rport");
    net.advance_to(600);
    assert_eq!(net.take_sent().len(), 1, "Timer E retransmitted the BYE");
    // Twilio's 200 to the BYE ends the client transaction.
    let ok = Response::to_request(&bye, crate::sip::message::StatusCode::OK, None);
    net.deliver(ok.to_bytes());
    net.advance_to(40_000);
    assert!(net.take_sent().is_empty());
    assert_eq!(net.ep.sizes(), Sizes::default(), "every table reaped");
}

#[test]
fn cancel_before_the_answer_gets_200_and_the_invite_487() {
    let mut net = Net::new(default_config());
    net.deliver(INVITE);
    let call = net.incoming_call();
    net.take_sent();
    let cancel = INVITE
        .replace("INVITE sip:", "CANCEL sip:")
        .replace("CSeq: 48063 INVITE", "CSeq: 48063 CANCEL")
        .split("\r\n\r\n")
        .next()
        .unwrap()
        .replace("Content-Type: application/sdp\r\n", "")
        .replace("Content-Length: 289", "Content-Length: 0")
        + "\r\n\r\n";
    net.deliver(cancel);
    let responses = net.take_responses();
    assert_eq!(codes(&responses), [200, 487]);
    assert_eq!(responses[0].headers.cseq().unwrap().method, Method::Cancel);
    assert_eq!(net.take_events(), vec![Event::CallEnded { call, why: EndReason::Cancelled }]);
    // The ACK for the 487 is absorbed by the INVITE transaction.
    let ack = INVITE
        .replace("INVITE sip:", "ACK sip:")
        .replace("CSeq: 48063 INVITE", "CSeq: 48063 ACK")
        .replace("To: <sip:+14155550123@sip.vocals.example>", &format!("To: {}", header(&responses[1], "To")));
    net.deliver(ack);
    assert!(net.take_sent().is_empty() && net.take_events().is_empty());
    net.advance_to(10_000);
    assert_eq!(net.ep.sizes().server_transactions, 1, "the INVITE's Timer I is over; the CANCEL's Timer J is not");
    net.advance_to(40_000);
    assert_eq!(net.ep.sizes(), Sizes::default());
}

#[test]
fn options_in_or_out_of_a_dialog_get_200_with_capabilities() {
    let mut net = Net::new(default_config());
    let options = "OPTIONS sip:203.0.113.10 SIP/2.0\r\nVia: SIP/2.0/UDP 54.244.51.1:5060;branch=z9hG4bKo1\r\n\
                   From: <sip:ping@twilio.com>;tag=p1\r\nTo: <sip:203.0.113.10>\r\nCall-ID: opt1\r\nCSeq: 1 OPTIONS\r\n\
                   Max-Forwards: 0\r\nContent-Length: 0\r\n\r\n";
    net.deliver(options);
    let res = &net.take_responses()[0];
    assert_eq!(res.status.as_u16(), 200, "Max-Forwards 0 is fine for an endpoint (RFC 4475 3.3.11)");
    assert!(header(res, "Allow").contains("INVITE") && header(res, "Accept").contains("application/sdp"));
    assert!(res.headers.contains(&HeaderName::Supported));
    assert!(res.headers.to().unwrap().tag().is_some());
}

#[test]
fn requests_for_unknown_dialogs_get_481() {
    let mut net = Net::new(default_config());
    net.deliver(twilio_bye("no-such-tag"));
    let res = net.take_responses();
    assert_eq!(codes(&res), [481]);
}

#[test]
fn unsupported_things_are_refused_with_the_headers_that_say_why() {
    let mut net = Net::new(default_config());
    let register = "REGISTER sip:203.0.113.10 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKr1\r\n\
                    From: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: r1\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n";
    net.deliver_from("127.0.0.1:5070", register);
    let res = &net.take_responses()[0];
    assert_eq!((res.status.as_u16(), header(res, "Allow").contains("BYE")), (405, true));

    // `timer` is supported (RFC 4028); what else is required is named.
    let require = INVITE.replace("Allow: ACK", "Require: 100rel, timer, gruu\r\nAllow: ACK");
    net.deliver(require);
    let res = &net.take_responses()[0];
    assert_eq!((res.status.as_u16(), header(res, "Unsupported")), (420, "100rel, gruu".to_string()));

    let html = INVITE
        .replace("Content-Type: application/sdp", "Content-Type: text/html")
        .replace("branch=z9hG4bKaa5f", "branch=z9hG4bKh1");
    net.deliver(html);
    let res = &net.take_responses()[0];
    assert_eq!((res.status.as_u16(), header(res, "Accept").contains("application/sdp")), (415, true));

    let scheme = INVITE
        .replace("INVITE sip:+14155550123@sip.vocals.example", "INVITE im:+14155550123@sip.vocals.example")
        .replace("branch=z9hG4bKaa5f", "branch=z9hG4bKs1");
    net.deliver(scheme);
    assert_eq!(codes(&net.take_responses()), [416]);
    assert!(net.take_events().is_empty(), "no call was offered to the call layer");
}

#[test]
fn malformed_requests_get_400_with_the_reason_and_garbage_is_dropped() {
    let mut net = Net::new(default_config());
    let bad = INVITE.replace("CSeq: 48063 INVITE", "CSeq: 48063 BYE");
    net.deliver(bad);
    let res = &net.take_responses()[0];
    assert_eq!(res.status.as_u16(), 400);
    assert_eq!(String::from_utf8_lossy(&res.reason), "CSeq method does not match the request method");
    net.deliver(&b"\x00\x01garbage"[..]);
    assert!(net.take_sent().is_empty());
    assert_eq!(net.take_events(), vec![Event::Dropped { why: DropReason::Malformed, from: EDGE.parse().unwrap() }]);
    let v7 = INVITE.replace(
        "INVITE sip:+14155550123@sip.vocals.example SIP/2.0",
        "INVITE sip:+14155550123@sip.vocals.example SIP/7.0",
    );
    net.deliver(v7);
    assert_eq!(codes(&net.take_responses()), [505]);
}

#[test]
fn sources_outside_the_allowlist_are_dropped_or_refused() {
    let mut net = Net::new(default_config());
    net.deliver_from("198.51.100.7:5060", INVITE);
    assert!(net.take_sent().is_empty(), "silently dropped by default");
    assert_eq!(
        net.take_events(),
        vec![Event::Dropped { why: DropReason::NotAllowed, from: "198.51.100.7:5060".parse().unwrap() }]
    );
    let mut net = Net::new(EndpointConfig { reject_disallowed: true, ..default_config() });
    net.deliver_from("198.51.100.7:5060", INVITE);
    assert_eq!(codes(&net.take_responses()), [403]);
}

#[test]
fn a_draining_or_full_endpoint_answers_503_with_retry_after() {
    let mut net = Net::new(default_config());
    net.ep.set_draining(true);
    net.deliver(INVITE);
    let res = &net.take_responses()[0];
    assert_eq!((res.status.as_u16(), header(res, "Retry-After")), (503, "5".to_string()));
    let mut net = Net::new(EndpointConfig { max_calls: 1, ..default_config() });
    net.deliver(INVITE);
    net.deliver(INVITE.replace("branch=z9hG4bKaa5f", "branch=z9hG4bKsecond").replace("Call-ID: 4fcf", "Call-ID: 5fcf"));
    assert_eq!(codes(&net.take_responses()), [100, 503]);
}

#[test]
fn a_rejected_call_ends_at_once_and_its_final_response_waits_for_the_ack() {
    let mut net = Net::new(default_config());
    net.deliver(INVITE);
    let call = net.incoming_call();
    net.ep.reject(net.now, call, crate::sip::message::StatusCode::NOT_FOUND, "Number Not Assigned", &[]);
    net.drain();
    let responses = net.take_responses();
    assert_eq!(codes(&responses), [100, 404]);
    assert_eq!(String::from_utf8_lossy(&responses[1].reason), "Number Not Assigned");
    assert_eq!(
        net.take_events(),
        vec![Event::CallEnded { call, why: EndReason::Rejected(crate::sip::message::StatusCode::NOT_FOUND) }]
    );
    net.advance_to(600);
    assert_eq!(codes(&net.take_responses()), [404], "Timer G retransmits the 404 until the ACK");
}

#[test]
fn a_hold_re_invite_is_offered_to_the_call_layer_and_answered() {
    let mut net = Net::new(default_config());
    let (call, ok) = answered_call(&mut net);
    net.deliver(ack_for(&ok));
    net.take_events();
    let to = header(&ok, "To");
    let hold = INVITE
        .replace("branch=z9hG4bKaa5f", "branch=z9hG4bKhold")
        .replace("CSeq: 48063 INVITE", "CSeq: 48064 INVITE")
        .replace("To: <sip:+14155550123@sip.vocals.example>", &format!("To: {to}"))
        .replace("a=sendrecv", "a=sendonly");
    net.deliver(hold);
    assert_eq!(codes(&net.take_responses()), [100]);
    let offer = match net.take_events().pop() {
        Some(Event::ReInvite { call: c, offer: Some(o) }) if c == call => o,
        other => panic!("expected a re-INVITE event, got {other:?}"),
    };
    assert!(String::from_utf8_lossy(&offer).contains("a=sendonly"));
    net.ep.answer_reinvite(net.now, call, Bytes::from_static(b"v=0\r\n...a=recvonly\r\n"));
    net.drain();
    let res = net.take_responses();
    assert_eq!(codes(&res), [200]);
    assert!(String::from_utf8_lossy(&res[0].body).contains("a=recvonly"));
}

#[test]
fn info_with_dtmf_relay_or_dtmf_is_a_digit() {
    let mut net = Net::new(default_config());
    let (call, ok) = answered_call(&mut net);
    net.deliver(ack_for(&ok));
    net.take_events();
    let info = |cseq: u32, content_type: &str, body: &str| {
        format!(
            "INFO sip:+14155550123@203.0.113.10:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 54.244.51.1:5060;branch=z9hG4bKinfo{cseq}\r\n\
             From: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {cseq} INFO\r\nContent-Type: {content_type}\r\n\
             Content-Length: {}\r\n\r\n{body}",
            header(&ok, "From"),
            header(&ok, "To"),
            header(&ok, "Call-ID"),
            body.len()
        )
    };
    net.deliver(info(48070, "application/dtmf-relay", "Signal=5\r\nDuration=160\r\n"));
    assert_eq!(codes(&net.take_responses()), [200]);
    assert_eq!(net.take_events(), vec![Event::Dtmf { call, digit: '5', duration_ms: Some(160) }]);
    net.deliver(info(48071, "application/dtmf", "#"));
    assert_eq!(codes(&net.take_responses()), [200]);
    assert_eq!(net.take_events(), vec![Event::Dtmf { call, digit: '#', duration_ms: None }]);
    net.deliver(info(48072, "application/dtmf", "x"));
    assert_eq!(codes(&net.take_responses()), [200], "answered, but not a digit");
    assert_eq!(net.take_events(), vec![]);
    // Some gateways write dtmf-relay lines under application/dtmf.
    net.deliver(info(48073, "application/dtmf", "Signal=*\r\nDuration=250\r\n"));
    assert_eq!(codes(&net.take_responses()), [200]);
    assert_eq!(net.take_events(), vec![Event::Dtmf { call, digit: '*', duration_ms: Some(250) }]);
    for (cseq, body) in [
        (48074, "Duration=160\r\n"),
        (48075, "Signal=10\r\n"),
        (48076, "Signal=5\r\nSignal=6\r\n"),
        (48077, "Signal=5\r\nDuration=fast\r\n"),
    ] {
        net.deliver(info(cseq, "application/dtmf-relay", body));
        assert_eq!(codes(&net.take_responses()), [200], "{body:?} is answered");
        assert_eq!(net.take_events(), vec![], "{body:?} is no digit");
    }
}

#[test]
fn tables_are_reaped_after_their_terminal_timers() {
    let mut net = Net::new(default_config());
    let (_, ok) = answered_call(&mut net);
    net.deliver(ack_for(&ok));
    let tag = ok.headers.to().unwrap().tag().unwrap().clone();
    net.deliver(twilio_bye(&String::from_utf8_lossy(&tag)));
    net.advance_to(60_000);
    assert_eq!(net.ep.sizes(), Sizes::default());
    assert_eq!(net.ep.poll_timeout(), None);
}

#[test]
fn the_top_via_is_stamped_with_received_and_rport_and_replies_follow_rfc_3581() {
    let mut net = Net::new(default_config());
    // The INVITE's top Via names 54.244.51.1:5060, but it arrives from 127.0.0.9:40000 (a NAT, say).
    net.deliver_from("127.0.0.9:40000", INVITE);
    let (peer, trying) = net.take_sent().remove(0);
    let via = trying.headers().top_via().unwrap();
    assert_eq!(via.received(), Some("127.0.0.9".parse().unwrap()), "received names the source address");
    assert_eq!(via.rport(), None, "rport was not asked for");
    assert_eq!(peer.addr, "127.0.0.9:5060".parse::<SocketAddr>().unwrap(), "without rport: the sent-by port");

    let with_rport = INVITE
        .replace(
            "Via: SIP/2.0/UDP 54.244.51.1:5060;branch=z9hG4bKaa5f",
            "Via: SIP/2.0/UDP 54.244.51.1:5060;rport;branch=z9hG4bKbb6f",
        )
        .replace("Call-ID: 4fcf", "Call-ID: 6fcf");
    net.deliver_from("127.0.0.9:40000", with_rport);
    let (peer, trying) = net.take_sent().remove(0);
    let via = trying.headers().top_via().unwrap();
    assert_eq!(via.rport(), Some(Some(40000)), "rport carries the source port");
    assert_eq!(via.received(), Some("127.0.0.9".parse().unwrap()));
    assert_eq!(peer.addr, "127.0.0.9:40000".parse::<SocketAddr>().unwrap(), "with rport: back to the source port");
    // The lower Via is untouched and still there.
    assert_eq!(trying.headers().vias().count(), 2);
}

#[test]
fn update_without_sdp_gets_200_and_with_sdp_is_an_offer() {
    let mut net = Net::new(default_config());
    let (_, ok) = answered_call(&mut net);
    net.deliver(ack_for(&ok));
    let update = |cseq: u32, body: &str, ct: &str| {
        format!(
            "UPDATE sip:+14155550123@203.0.113.10:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 54.244.51.1:5060;branch=z9hG4bKu{cseq}\r\n\
             From: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {cseq} UPDATE\r\n{ct}Content-Length: {}\r\n\r\n{body}",
            header(&ok, "From"),
            header(&ok, "To"),
            header(&ok, "Call-ID"),
            body.len()
        )
    };
    net.deliver(update(48070, "", ""));
    assert_eq!(codes(&net.take_responses()), [200]);
    // With SDP, an offer for the call layer (RFC 3311), answered as a re-INVITE is: see session_tests.
    net.deliver(update(48071, "v=0\r\n", "Content-Type: application/sdp\r\n"));
    assert!(net.take_responses().is_empty());
    assert!(net.take_events().iter().any(|e| matches!(e, Event::ReInvite { offer: Some(_), .. })));
}

#[test]
fn a_blind_transfer_sends_refer_and_reports_its_answer_and_notifies() {
    let mut net = Net::new(default_config());
    let (call, ok) = answered_call(&mut net);
    net.deliver(ack_for(&ok));
    net.take_events();
    net.ep.refer(net.now, call, "sip:+14155550100@vocals-acme.pstn.twilio.com");
    net.drain();
    let sent = net.take_sent();
    let refer = sent[0].1.as_request().unwrap().clone();
    assert_eq!(refer.method, Method::Refer);
    assert_eq!(
        refer.headers.get(&crate::sip::message::HeaderName::ReferTo),
        Some(&b"<sip:+14155550100@vocals-acme.pstn.twilio.com>"[..])
    );
    assert!(refer.headers.get(&crate::sip::message::HeaderName::Route).is_some(), "through the route set");
    let accepted = Response::to_request(&refer, crate::sip::message::StatusCode::new(202).unwrap(), None);
    net.deliver(accepted.to_bytes());
    assert_eq!(
        net.take_events(),
        vec![Event::ReferAnswered { call, status: crate::sip::message::StatusCode::new(202).unwrap() }]
    );
    // Twilio's NOTIFYs: a sipfrag with the transfer target's status; the last one ends the subscription.
    let to_tag = header(&ok, "To").split("tag=").nth(1).unwrap().to_string();
    let notify = |cseq: u32, frag: &str, state: &str| {
        twilio_bye(&to_tag)
            .replace("BYE sip:", "NOTIFY sip:")
            .replace("CSeq: 48064 BYE", &format!("CSeq: {cseq} NOTIFY"))
            .replace(";branch=z9hG4bK", &format!(";branch=z9hG4bKn{cseq}"))
            .replace(
                "Content-Length: 0\r\n\r\n",
                &format!(
                    "Event: refer\r\nSubscription-State: {state}\r\nContent-Type: message/sipfrag\r\nContent-Length: {}\r\n\r\n{frag}",
                    frag.len()
                ),
            )
    };
    net.deliver(notify(48065, "SIP/2.0 100 Trying\r\n", "active;expires=60"));
    net.deliver(notify(48066, "SIP/2.0 200 OK\r\n", "terminated;reason=noresource"));
    assert_eq!(
        net.take_events(),
        vec![
            Event::ReferNotify { call, status: 100, done: false },
            Event::ReferNotify { call, status: 200, done: true }
        ]
    );
    assert_eq!(codes(&net.take_responses()), vec![200, 200], "each NOTIFY is answered 200");
}

#[test]
fn notifies_that_are_not_about_a_refer_or_do_not_parse_are_answered_but_report_nothing() {
    let mut net = Net::new(default_config());
    let (call, ok) = answered_call(&mut net);
    net.deliver(ack_for(&ok));
    net.take_events();
    let to_tag = header(&ok, "To").split("tag=").nth(1).unwrap().to_string();
    let notify = |cseq: u32, event: &str, state: &str, frag: &str| {
        twilio_bye(&to_tag)
            .replace("BYE sip:", "NOTIFY sip:")
            .replace("CSeq: 48064 BYE", &format!("CSeq: {cseq} NOTIFY"))
            .replace(";branch=z9hG4bK", &format!(";branch=z9hG4bKx{cseq}"))
            .replace(
                "Content-Length: 0\r\n\r\n",
                &format!("{event}{state}Content-Type: message/sipfrag\r\nContent-Length: {}\r\n\r\n{frag}", frag.len()),
            )
    };
    let (refer, terminated) = ("Event: refer;id=48064\r\n", "Subscription-State: terminated;reason=noresource\r\n");
    net.deliver(notify(48065, "Event: presence\r\n", terminated, "SIP/2.0 200 OK\r\n"));
    net.deliver(notify(48066, "Event: refer junk\r\n", terminated, "SIP/2.0 200 OK\r\n"));
    net.deliver(notify(48067, refer, terminated, "SIP/2.0 2000 OK\r\n"));
    net.deliver(notify(48068, refer, terminated, "garbage"));
    assert_eq!(net.take_events(), vec![], "another event, a bad Event, a bad sipfrag: nothing reported");
    // A bare LF and a missing reason phrase are taken; a Subscription-State missing or garbled leaves it running.
    net.deliver(notify(48069, refer, "", "SIP/2.0 180\n"));
    net.deliver(notify(48070, refer, "Subscription-State: ;;\r\n", "SIP/2.0 183 Session Progress"));
    net.deliver(notify(48071, refer, "Subscription-State: terminated;;\r\n", "SIP/2.0 200 OK\r\n"));
    net.deliver(notify(48072, "o: REFER\r\n", terminated, "SIP/2.0 200 OK\r\n"));
    assert_eq!(
        net.take_events(),
        vec![
            Event::ReferNotify { call, status: 180, done: false },
            Event::ReferNotify { call, status: 183, done: false },
            Event::ReferNotify { call, status: 200, done: false },
            Event::ReferNotify { call, status: 200, done: true },
        ]
    );
    assert_eq!(codes(&net.take_responses()), [200; 8], "each NOTIFY is answered 200");
}

#[test]
fn a_refer_to_a_target_that_is_not_a_uri_is_refused_without_sending() {
    let mut net = Net::new(default_config());
    let (call, ok) = answered_call(&mut net);
    net.deliver(ack_for(&ok));
    net.take_events();
    net.ep.refer(net.now, call, "not a uri");
    net.drain();
    assert!(net.take_sent().is_empty());
    assert_eq!(
        net.take_events(),
        vec![Event::ReferAnswered { call, status: crate::sip::message::StatusCode::BAD_REQUEST }]
    );
}

/// An out-of-dialog request from `from` with a branch and Call-ID of its own and `pad` bytes in its From
/// display name (echoed by every response).
fn padded(method: &str, n: usize, pad: usize) -> String {
    format!(
        "{method} sip:+14155550123@203.0.113.10:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 198.51.100.9:5060;branch=z9hG4bKpad{n}\r\n\
         From: \"{}\" <sip:flood@198.51.100.9>;tag=f{n}\r\nTo: <sip:+14155550123@203.0.113.10>\r\nCall-ID: pad-{n}\r\n\
         CSeq: 1 {method}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        "x".repeat(pad)
    )
}

#[test]
fn options_out_of_a_dialog_is_answered_statelessly_and_keeps_nothing() {
    let mut net = Net::new(default_config());
    for n in 0..100 {
        net.deliver_from("127.0.0.9:5060", padded("OPTIONS", n, 8_000));
    }
    let res = net.take_responses();
    assert_eq!(res.len(), 100);
    assert!(res.iter().all(|r| r.status.as_u16() == 200 && header(r, "Allow").contains("INVITE")));
    let sizes = net.ep.sizes();
    assert_eq!((sizes.server_transactions, sizes.retained_bytes), (0, 0), "nothing kept for 32 s");
}

#[test]
fn retained_transactions_have_a_byte_budget_past_which_requests_get_a_stateless_503() {
    let mut net = Net::new(EndpointConfig { max_transaction_bytes: 100_000, ..default_config() });
    // An unknown method keeps its 405 (which echoes the padded From) for Timer J.
    for n in 0..40 {
        net.deliver_from("127.0.0.9:5060", padded("PUBLISH", n, 8_000));
    }
    let res = net.take_responses();
    let refused = res.iter().filter(|r| r.status.as_u16() == 503).count();
    assert!(refused > 20, "{refused} refused");
    assert!(res.iter().filter(|r| r.status.as_u16() == 503).all(|r| header(r, "Retry-After") == "5"));
    let sizes = net.ep.sizes();
    assert!(sizes.retained_bytes < 100_000 + 9_000, "{} bytes kept", sizes.retained_bytes);
    assert_eq!(sizes.server_transactions, 40 - refused, "a refusal keeps no transaction");
    let over =
        net.take_events().iter().filter(|e| matches!(e, Event::Dropped { why: DropReason::OverBudget, .. })).count();
    assert_eq!(over, refused);
    // Once Timer J has let them go, the budget is back, and so is service.
    net.advance_to(40_000);
    assert_eq!(net.ep.sizes().retained_bytes, 0);
    net.deliver_from("127.0.0.9:5060", padded("PUBLISH", 99, 10));
    assert_eq!(codes(&net.take_responses()), [405]);
}

#[test]
fn an_oversized_call_id_tag_or_via_gets_a_stateless_400_saying_which() {
    let mut net = Net::new(default_config());
    let base = padded("OPTIONS", 1, 0);
    let cases = [
        (
            base.replace("Call-ID: pad-1", &format!("Call-ID: {}", "c".repeat(1100))),
            "Call-ID Too Long (1100 bytes, at most 1024)",
        ),
        (base.replace("tag=f1", &format!("tag={}", "t".repeat(1100))), "From Tag Too Long (1100 bytes, at most 1024)"),
        (base.replace("branch=z9hG4bKpad1", &format!("branch=z9hG4bKpad1;x={}", "v".repeat(9000))), "Via Too Long"),
    ];
    for (request, reason) in cases {
        net.deliver_from("127.0.0.9:5060", request);
        let res = net.take_responses();
        assert_eq!(codes(&res), [400]);
        assert!(res[0].reason.starts_with(reason.as_bytes()), "{:?}", String::from_utf8_lossy(&res[0].reason));
    }
    assert_eq!(net.ep.sizes().server_transactions, 0);
}

#[test]
fn every_method_is_rate_limited_per_source_but_twilios_edges_are_not() {
    let exempt = crate::sip::allow::AllowList::parse("54.244.51.0/30").unwrap();
    let rate = RateConfig { per_second: 10, burst: 5, exempt, max_sources: 100 };
    let mut net = Net::new(EndpointConfig { request_rate: rate, ..default_config() });
    for n in 0..20 {
        net.deliver_from("127.0.0.9:5060", padded("OPTIONS", n, 0));
    }
    assert_eq!(
        codes(&net.take_responses()),
        [[200; 5].as_slice(), &[503; 3]].concat(),
        "burst, three 503s, then silence"
    );
    let dropped =
        net.take_events().iter().filter(|e| matches!(e, Event::Dropped { why: DropReason::RateLimited, .. })).count();
    assert_eq!(dropped, 12);
    for n in 0..20 {
        net.deliver_from(EDGE, padded("OPTIONS", 100 + n, 0));
    }
    assert_eq!(net.take_responses().len(), 20, "an edge is never limited");
}

/// Security finding (BYE toward a Record-Route host nobody answers): one BYE transaction, retransmitted on
/// Timer E's schedule (T1 doubling to T2 over UDP) until Timer F (64·T1) gives up, then never again, however
/// often the call layer asks to hang up.
#[test]
fn a_bye_nobody_answers_follows_timer_e_stops_at_timer_f_and_is_not_repeated() {
    let mut net = Net::new(default_config());
    let (call, ok) = answered_call(&mut net);
    net.deliver(ack_for(&ok));
    net.take_events();
    let start = net.now - net.start;
    net.ep.hangup(net.now, call, None);
    net.ep.hangup(net.now, call, None);
    net.drain();
    let mut at = Vec::new();
    let mut branches = std::collections::HashSet::new();
    let mut t = start.as_millis() as u64;
    while t < start.as_millis() as u64 + 40_000 {
        for (_, m) in net.take_sent() {
            let req = m.as_request().expect("only the BYE goes out").clone();
            assert_eq!(req.method, Method::Bye);
            branches.insert(req.headers.top_via().unwrap().branch().unwrap().to_vec());
            at.push((net.now - net.start).as_millis() as u64 - start.as_millis() as u64);
        }
        t += 10;
        net.advance_to(t);
        net.ep.hangup(net.now, call, None);
        net.drain();
    }
    assert_eq!(branches.len(), 1, "one transaction: {at:?}");
    // 0, 0.5, 1.5, 3.5, 7.5, then every 4 s (T2) until 32 s: 11 sends in all (RFC 3261 §17.1.2.2).
    let expected = [0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500];
    assert_eq!(at.len(), expected.len(), "{at:?}");
    for (sent, want) in at.iter().zip(expected) {
        assert!(sent.abs_diff(want) <= 10, "{at:?}");
    }
    assert_eq!(net.ep.sizes().client_transactions, 0, "Timer F let it go");
}
