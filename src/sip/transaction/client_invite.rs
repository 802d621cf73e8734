//! The INVITE client transaction (RFC 3261 §17.1.1, figure 5, as updated by RFC 6026 §7.2), for the INVITEs
//! vocals sends. Timer A retransmits the INVITE over unreliable transports (T1, doubling, no cap); Timer B
//! gives up after 64·T1 without a response. A 1xx moves it to Proceeding (no timer: the TU cancels). A 300–699
//! is ACKed here (§17.1.1.3) and Timer D absorbs its retransmissions, each answered with that ACK again. A 2xx
//! moves it to Accepted (RFC 6026): for Timer M (64·T1) every 2xx, retransmitted or from another fork, is
//! passed up; their ACKs are the TU's (§13.2.2.4), never the transaction's.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{Machine, Output, Timers, TransactionEvent, earliest};
use crate::sip::message::typed::CSeq;
use crate::sip::message::{HeaderName, Headers, Method, Request, Response};

/// States of figure 5 with RFC 6026's Accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientInviteState {
    /// The INVITE is out; no response yet (Timers A and B).
    Calling,
    /// A provisional response came.
    Proceeding,
    /// A 300–699 came and was ACKed; absorbing its retransmissions (Timer D).
    Completed,
    /// A 2xx came; further 2xx are passed up until Timer M.
    Accepted,
    Terminated,
}

/// Timer D over unreliable transports (§17.1.1.2: at least 32 s).
const TIMER_D: Duration = Duration::from_secs(32);

#[derive(Debug)]
pub struct ClientInvite {
    state: ClientInviteState,
    reliable: bool,
    timers: Timers,
    /// The INVITE as sent, for Timer A.
    request: Bytes,
    /// What the ACK for a non-2xx copies from the INVITE (§17.1.1.3).
    ack_base: Request,
    /// The ACK for the 300–699, once built.
    ack: Option<Bytes>,
    /// Timer A: next retransmission and its interval.
    retransmit: Option<(Instant, Duration)>,
    /// Timer B (Calling), D (Completed), M (Accepted), or the give-up after a CANCEL (Proceeding).
    deadline: Option<Instant>,
    /// A CANCEL went out: its give-up deadline survives provisional responses.
    cancelled: bool,
    out: VecDeque<Output>,
}

impl ClientInvite {
    /// Starts the transaction: `invite` goes out at once, Timers A (unreliable only) and B start.
    pub fn new(now: Instant, invite: &Request, reliable: bool, timers: Timers) -> ClientInvite {
        let request = invite.to_bytes();
        let mut out = VecDeque::new();
        out.push_back(Output::Transmit(request.clone()));
        ClientInvite {
            state: ClientInviteState::Calling,
            reliable,
            timers,
            request,
            ack_base: ack_base(invite),
            ack: None,
            retransmit: (!reliable).then_some((now + timers.t1, timers.t1)),
            deadline: Some(now + timers.t1_x64()),
            cancelled: false,
            out,
        }
    }

    pub fn state(&self) -> ClientInviteState {
        self.state
    }

    /// A response matched to this transaction. Returns whether to pass it to the user: every 1xx before a
    /// final, the first 300–699 (the ACK is sent here), and every 2xx while Calling, Proceeding or Accepted.
    /// Retransmitted 300–699 are absorbed (the ACK is sent again).
    pub fn on_response(&mut self, now: Instant, res: &Response) -> bool {
        use ClientInviteState::*;
        let status = res.status;
        match self.state {
            Calling | Proceeding if status.is_provisional() => {
                self.state = Proceeding;
                self.retransmit = None;
                // Timer B no longer applies once a response came; a CANCEL's give-up stays.
                if !self.cancelled {
                    self.deadline = None;
                }
                true
            }
            Calling | Proceeding | Accepted if status.is_success() => {
                if self.state != Accepted {
                    self.state = Accepted;
                    self.retransmit = None;
                    self.deadline = Some(now + self.timers.t1_x64());
                }
                true
            }
            Calling | Proceeding if status.is_final() => {
                let ack = self.build_ack(res);
                self.out.push_back(Output::Transmit(ack.clone()));
                self.ack = Some(ack);
                self.state = Completed;
                self.retransmit = None;
                self.deadline = Some(now + if self.reliable { Duration::ZERO } else { TIMER_D });
                self.handle_timeout(now);
                true
            }
            Completed if status.is_final() && !status.is_success() => {
                if let Some(ack) = &self.ack {
                    self.out.push_back(Output::Transmit(ack.clone()));
                }
                false
            }
            _ => false,
        }
    }

    /// A CANCEL for this INVITE went out (§9.1): without a final response within 64·T1 the transaction ends with
    /// a timeout. Before any response, Timer B already bounds it.
    pub fn on_cancel_sent(&mut self, now: Instant) {
        if self.state == ClientInviteState::Proceeding && !self.cancelled {
            self.deadline = Some(now + self.timers.t1_x64());
            self.cancelled = true;
        }
    }

    /// The transport could not send the INVITE (§17.1.1.2): before a final response the transaction ends with
    /// a timeout for the user. Once a final response came the user has its answer: a failed ACK in Completed
    /// ends the transaction quietly, and Accepted sends nothing that could fail.
    pub fn on_transport_error(&mut self) {
        match self.state {
            ClientInviteState::Calling | ClientInviteState::Proceeding => {
                self.out.push_back(Output::Event(TransactionEvent::Timeout));
                self.terminate();
            }
            ClientInviteState::Completed => self.terminate(),
            ClientInviteState::Accepted | ClientInviteState::Terminated => {}
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        earliest(self.retransmit.map(|(at, _)| at), self.deadline)
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if self.deadline.is_some_and(|d| now >= d) {
            if matches!(self.state, ClientInviteState::Calling | ClientInviteState::Proceeding) {
                self.out.push_back(Output::Event(TransactionEvent::Timeout));
            }
            self.terminate();
            return;
        }
        if let Some((at, interval)) = self.retransmit
            && now >= at
        {
            self.out.push_back(Output::Transmit(self.request.clone()));
            // Timer A doubles without a cap (§17.1.1.2); Timer B ends it first.
            let next = interval * 2;
            self.retransmit = Some((now + next, next));
        }
    }

    fn terminate(&mut self) {
        self.state = ClientInviteState::Terminated;
        self.retransmit = None;
        self.deadline = None;
        self.out.push_back(Output::Event(TransactionEvent::Terminated));
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// The ACK for a 300–699 (§17.1.1.3): the INVITE's Request-URI, Call-ID, From, top Via and Route headers,
    /// CSeq with the INVITE's number and method ACK, and the To of the response (with its tag).
    fn build_ack(&self, res: &Response) -> Bytes {
        let mut ack = self.ack_base.clone();
        if let Some(to) = res.headers.get_bytes(&HeaderName::To) {
            ack.headers.set(HeaderName::To, to);
        }
        ack.to_bytes()
    }
}

/// The ACK a non-2xx will get, but for its To (§17.1.1.3).
fn ack_base(invite: &Request) -> Request {
    let h = &invite.headers;
    let mut headers = Headers::new();
    if let Ok(via) = h.top_via() {
        headers.push(HeaderName::Via, via.to_bytes());
    }
    headers.push(HeaderName::MaxForwards, Bytes::from_static(b"70"));
    for name in [HeaderName::From, HeaderName::To, HeaderName::CallId] {
        if let Some(v) = h.get_bytes(&name) {
            headers.push(name, v);
        }
    }
    let seq = h.cseq().map(|c| c.seq).unwrap_or(1);
    headers.push(HeaderName::CSeq, CSeq { seq, method: Method::Ack }.to_bytes());
    for route in h.get_all(&HeaderName::Route) {
        headers.push(HeaderName::Route, Bytes::copy_from_slice(route));
    }
    Request { method: Method::Ack, uri: invite.uri.clone(), headers, body: Bytes::new() }
}

impl Machine for ClientInvite {
    fn poll_timeout(&self) -> Option<Instant> {
        ClientInvite::poll_timeout(self)
    }

    fn handle_timeout(&mut self, now: Instant) {
        ClientInvite::handle_timeout(self, now)
    }

    fn poll_output(&mut self) -> Option<Output> {
        ClientInvite::poll_output(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message::{Message, StatusCode};
    use crate::sip::transaction::test_clock::{Clock, run, transmits};

    const INVITE: &str = "INVITE sip:+14155550123@example.pstn.twilio.com SIP/2.0\r\n\
        Via: SIP/2.0/UDP 203.0.113.10:5060;branch=z9hG4bKvc1;rport\r\nMax-Forwards: 70\r\n\
        From: <sip:+12125550100@203.0.113.10>;tag=vcf1\r\nTo: <sip:+14155550123@example.pstn.twilio.com>\r\n\
        Call-ID: call1@203.0.113.10\r\nCSeq: 7 INVITE\r\nRoute: <sip:54.172.60.0;lr>\r\nRoute: <sip:p2.example;lr>\r\n\
        Contact: <sip:203.0.113.10:5060;transport=udp>\r\nContent-Type: application/sdp\r\nContent-Length: 4\r\n\r\nv=0\n";

    fn invite() -> Request {
        Message::parse(INVITE.as_bytes().to_vec()).unwrap().as_request().unwrap().clone()
    }

    fn response(code: u16, to_tag: &str) -> Response {
        let mut res = Response::to_request(&invite(), StatusCode::new(code).unwrap(), Some(to_tag));
        res.headers.push(HeaderName::Contact, "<sip:far@198.51.100.1>");
        res
    }

    fn new(clock: &Clock, reliable: bool) -> ClientInvite {
        let mut tx = ClientInvite::new(clock.now(), &invite(), reliable, Timers::default());
        assert_eq!(tx.take_outputs(), vec![Output::Transmit(invite().to_bytes())], "the INVITE goes out at once");
        tx
    }

    fn events(seen: &[(u64, Output)]) -> Vec<(u64, TransactionEvent)> {
        seen.iter()
            .filter_map(|(t, o)| match o {
                Output::Event(e) => Some((*t, *e)),
                Output::Transmit(_) => None,
            })
            .collect()
    }

    #[test]
    fn timer_a_doubles_without_a_cap_and_timer_b_gives_up_at_64_t1() {
        let mut clock = Clock::new();
        let mut tx = new(&clock, false);
        let seen = run(&mut tx, &mut clock, 40_000);
        // 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s: the interval goes 0.5, 1, 2, 4, 8, 16 (never capped at T2).
        assert_eq!(transmits(&seen), vec![500, 1500, 3500, 7500, 15_500, 31_500]);
        assert_eq!(events(&seen), vec![(32_000, TransactionEvent::Timeout), (32_000, TransactionEvent::Terminated)]);
        assert_eq!(tx.state(), ClientInviteState::Terminated);
    }

    #[test]
    fn reliable_transports_do_not_retransmit() {
        let mut clock = Clock::new();
        let mut tx = new(&clock, true);
        assert_eq!(tx.poll_timeout(), Some(clock.at(32_000)), "only Timer B");
        let seen = run(&mut tx, &mut clock, 40_000);
        assert!(transmits(&seen).is_empty());
        assert_eq!(events(&seen)[0], (32_000, TransactionEvent::Timeout));
    }

    #[test]
    fn a_provisional_response_stops_timer_a_and_timer_b() {
        let mut clock = Clock::new();
        let mut tx = new(&clock, false);
        assert_eq!(transmits(&run(&mut tx, &mut clock, 600)), vec![500]);
        assert!(tx.on_response(clock.at(600), &response(100, "t")));
        assert!(tx.on_response(clock.at(700), &response(180, "t")), "every 1xx is passed up");
        assert_eq!(tx.state(), ClientInviteState::Proceeding);
        assert_eq!(tx.poll_timeout(), None, "Proceeding waits for the final (or the TU's CANCEL)");
    }

    #[test]
    fn a_cancel_in_proceeding_gives_up_64_t1_later_without_a_final() {
        let mut clock = Clock::new();
        let mut tx = new(&clock, false);
        assert!(tx.on_response(clock.at(100), &response(180, "t")));
        tx.on_cancel_sent(clock.at(1000));
        assert!(tx.on_response(clock.at(1100), &response(183, "t")), "a later 1xx keeps the give-up");
        let seen = run(&mut tx, &mut clock, 40_000);
        assert_eq!(events(&seen), vec![(33_000, TransactionEvent::Timeout), (33_000, TransactionEvent::Terminated)]);
    }

    #[test]
    fn a_non_2xx_final_is_acked_by_the_transaction_per_17_1_1_3() {
        let mut clock = Clock::new();
        let mut tx = new(&clock, false);
        let busy = response(486, "far1");
        assert!(tx.on_response(clock.at(50), &busy));
        assert_eq!(tx.state(), ClientInviteState::Completed);
        let out = tx.take_outputs();
        let [Output::Transmit(ack)] = &out[..] else { panic!("{out:?}") };
        let ack = Message::parse(ack.clone()).unwrap().as_request().unwrap().clone();
        let inv = invite();
        assert_eq!(ack.method, Method::Ack);
        assert_eq!(ack.uri, inv.uri, "same Request-URI");
        assert_eq!(ack.headers.call_id().unwrap(), inv.headers.call_id().unwrap());
        assert_eq!(ack.headers.get(&HeaderName::From), inv.headers.get(&HeaderName::From));
        assert_eq!(ack.headers.cseq().unwrap(), CSeq { seq: 7, method: Method::Ack });
        assert_eq!(ack.headers.to().unwrap().tag().unwrap(), "far1", "the To of the response");
        let vias: Vec<_> = ack.headers.get_all(&HeaderName::Via).collect();
        assert_eq!(vias, [&b"SIP/2.0/UDP 203.0.113.10:5060;branch=z9hG4bKvc1;rport"[..]], "the INVITE's top Via");
        let routes: Vec<_> = ack.headers.get_all(&HeaderName::Route).collect();
        assert_eq!(routes, [&b"<sip:54.172.60.0;lr>"[..], b"<sip:p2.example;lr>"]);
        assert!(ack.body.is_empty());
        assert!(Message::Request(ack.clone()).validate().is_ok());
        // A retransmitted 486 is absorbed and ACKed again; Timer D (32 s over UDP) ends it quietly.
        assert!(!tx.on_response(clock.at(600), &busy));
        assert_eq!(tx.take_outputs(), vec![Output::Transmit(ack.to_bytes())]);
        let seen = run(&mut tx, &mut clock, 40_000);
        assert!(transmits(&seen).is_empty(), "Timer A stopped");
        assert_eq!(events(&seen), vec![(32_050, TransactionEvent::Terminated)]);
    }

    #[test]
    fn over_reliable_transports_timer_d_is_zero() {
        let clock = Clock::new();
        let mut tx = new(&clock, true);
        assert!(tx.on_response(clock.at(10), &response(603, "x")));
        assert_eq!(tx.state(), ClientInviteState::Terminated);
        let out = tx.take_outputs();
        assert!(matches!(out[..], [Output::Transmit(_), Output::Event(TransactionEvent::Terminated)]), "{out:?}");
    }

    #[test]
    fn every_2xx_is_passed_up_while_accepted_and_timer_m_ends_it() {
        let mut clock = Clock::new();
        let mut tx = new(&clock, false);
        assert!(tx.on_response(clock.at(100), &response(180, "a")));
        assert!(tx.on_response(clock.at(200), &response(200, "a")));
        assert_eq!(tx.state(), ClientInviteState::Accepted);
        assert!(tx.take_outputs().is_empty(), "the ACK for a 2xx is the TU's");
        assert!(tx.on_response(clock.at(700), &response(200, "a")), "a retransmission is passed up");
        assert!(tx.on_response(clock.at(800), &response(200, "b")), "so is a forked 2xx");
        assert!(!tx.on_response(clock.at(900), &response(180, "c")), "a late 1xx is not");
        assert!(!tx.on_response(clock.at(900), &response(486, "c")), "nor a late non-2xx");
        assert!(tx.take_outputs().is_empty());
        let seen = run(&mut tx, &mut clock, 40_000);
        assert_eq!(seen, vec![(32_200, Output::Event(TransactionEvent::Terminated))], "Timer M from the first 2xx");
    }

    #[test]
    fn a_2xx_straight_from_calling_stops_timer_a() {
        let mut clock = Clock::new();
        let mut tx = new(&clock, false);
        assert!(tx.on_response(clock.at(100), &response(200, "a")));
        let seen = run(&mut tx, &mut clock, 40_000);
        assert!(transmits(&seen).is_empty());
        assert_eq!(events(&seen), vec![(32_100, TransactionEvent::Terminated)]);
    }

    #[test]
    fn a_transport_error_before_a_final_is_a_timeout_after_it_is_not() {
        let clock = Clock::new();
        let mut tx = new(&clock, true);
        tx.on_transport_error();
        assert_eq!(
            tx.take_outputs(),
            vec![Output::Event(TransactionEvent::Timeout), Output::Event(TransactionEvent::Terminated)]
        );
        let mut tx = new(&clock, false);
        assert!(tx.on_response(clock.at(1), &response(200, "a")));
        tx.on_transport_error();
        assert!(tx.take_outputs().is_empty(), "Accepted is untouched");
        assert_eq!(tx.state(), ClientInviteState::Accepted);
    }
}
