//! The non-INVITE client transaction (RFC 3261 §17.1.2, figure 6), for the BYE and REFER vocals sends. Timer E
//! retransmits (unreliable transports only), Timer F gives up after 64·T1, Timer K absorbs response retransmissions.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{Machine, Output, Timers, TransactionEvent, backoff, earliest};
use crate::sip::message::StatusCode;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientNonInviteState {
    Trying,
    Proceeding,
    Completed,
    Terminated,
}

#[derive(Debug)]
pub struct ClientNonInvite {
    state: ClientNonInviteState,
    reliable: bool,
    timers: Timers,
    request: Bytes,
    /// Timer E: next retransmission and its interval.
    retransmit: Option<(Instant, Duration)>,
    /// Timer F (Trying, Proceeding) or K (Completed).
    deadline: Option<Instant>,
    out: VecDeque<Output>,
}

impl ClientNonInvite {
    /// Starts the transaction: the request goes out at once, Timers E (unreliable) and F start.
    pub fn new(now: Instant, request: Bytes, reliable: bool, timers: Timers) -> ClientNonInvite {
        let mut out = VecDeque::new();
        out.push_back(Output::Transmit(request.clone()));
        ClientNonInvite {
            state: ClientNonInviteState::Trying,
            reliable,
            timers,
            request,
            retransmit: (!reliable).then_some((now + timers.t1, timers.t1)),
            deadline: Some(now + timers.t1_x64()),
            out,
        }
    }

    pub fn state(&self) -> ClientNonInviteState {
        self.state
    }

    /// A response matched to this transaction. Returns whether to pass it to the user: provisional and the
    /// first final response are; retransmitted finals are absorbed.
    pub fn on_response(&mut self, now: Instant, status: StatusCode) -> bool {
        match self.state {
            ClientNonInviteState::Trying | ClientNonInviteState::Proceeding if status.is_provisional() => {
                self.state = ClientNonInviteState::Proceeding;
                true
            }
            ClientNonInviteState::Trying | ClientNonInviteState::Proceeding => {
                // Timer K: T4 unreliable, zero reliable.
                self.state = ClientNonInviteState::Completed;
                self.retransmit = None;
                self.deadline = Some(now + if self.reliable { Duration::ZERO } else { self.timers.t4 });
                self.handle_timeout(now);
                true
            }
            _ => false,
        }
    }

    /// The transport could not send the request (§17.1.4): the transaction ends with a timeout for the user.
    pub fn on_transport_error(&mut self) {
        if self.state != ClientNonInviteState::Terminated {
            self.out.push_back(Output::Event(TransactionEvent::Timeout));
            self.terminate();
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        earliest(self.retransmit.map(|(at, _)| at), self.deadline)
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if self.deadline.is_some_and(|d| now >= d) {
            if self.state != ClientNonInviteState::Completed {
                self.out.push_back(Output::Event(TransactionEvent::Timeout));
            }
            self.terminate();
            return;
        }
        if let Some((at, interval)) = self.retransmit
            && now >= at
        {
            self.out.push_back(Output::Transmit(self.request.clone()));
            // In Proceeding the interval is T2 at once (§17.1.2.2).
            let next = if self.state == ClientNonInviteState::Proceeding {
                self.timers.t2
            } else {
                backoff(interval, self.timers.t2)
            };
            self.retransmit = Some((now + next, next));
        }
    }

    fn terminate(&mut self) {
        self.state = ClientNonInviteState::Terminated;
        self.retransmit = None;
        self.deadline = None;
        self.out.push_back(Output::Event(TransactionEvent::Terminated));
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }
}

impl Machine for ClientNonInvite {
    fn poll_timeout(&self) -> Option<Instant> {
        ClientNonInvite::poll_timeout(self)
    }

    fn handle_timeout(&mut self, now: Instant) {
        ClientNonInvite::handle_timeout(self, now)
    }

    fn poll_output(&mut self) -> Option<Output> {
        ClientNonInvite::poll_output(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::transaction::test_clock::{Clock, run, transmits};

    const BYE: &[u8] = b"BYE sip:x SIP/2.0\r\n...";

    #[test]
    fn timer_e_backs_off_to_t2_and_timer_f_gives_up_at_64_t1() {
        let mut clock = Clock::new();
        let mut tx = ClientNonInvite::new(clock.now(), Bytes::from_static(BYE), false, Timers::default());
        assert_eq!(tx.take_outputs(), vec![Output::Transmit(Bytes::from_static(BYE))]);
        let seen = run(&mut tx, &mut clock, 40_000);
        assert_eq!(transmits(&seen), vec![500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]);
        let events: Vec<_> = seen.iter().filter(|(_, o)| matches!(o, Output::Event(_))).cloned().collect();
        assert_eq!(
            events,
            vec![
                (32_000, Output::Event(TransactionEvent::Timeout)),
                (32_000, Output::Event(TransactionEvent::Terminated))
            ]
        );
    }

    #[test]
    fn a_provisional_response_switches_timer_e_to_t2() {
        let mut clock = Clock::new();
        let mut tx = ClientNonInvite::new(clock.now(), Bytes::from_static(BYE), false, Timers::default());
        tx.take_outputs();
        assert_eq!(transmits(&run(&mut tx, &mut clock, 600)), vec![500]);
        assert!(tx.on_response(clock.at(600), StatusCode::TRYING));
        assert_eq!(tx.state(), ClientNonInviteState::Proceeding);
        // The retransmission already scheduled for 1500 stands; after it, every T2.
        assert_eq!(transmits(&run(&mut tx, &mut clock, 10_000)), vec![1500, 5500, 9500]);
    }

    #[test]
    fn the_final_response_is_passed_up_once_and_timer_k_absorbs_the_rest() {
        let mut clock = Clock::new();
        let mut tx = ClientNonInvite::new(clock.now(), Bytes::from_static(BYE), false, Timers::default());
        tx.take_outputs();
        assert!(tx.on_response(clock.at(50), StatusCode::OK));
        assert_eq!(tx.state(), ClientNonInviteState::Completed);
        assert!(!tx.on_response(clock.at(60), StatusCode::OK), "a retransmitted 200 is absorbed");
        let seen = run(&mut tx, &mut clock, 10_000);
        assert_eq!(seen, vec![(5050, Output::Event(TransactionEvent::Terminated))], "Timer K = T4, no Timeout");
    }

    #[test]
    fn reliable_transports_do_not_retransmit_and_timer_k_is_zero() {
        let mut clock = Clock::new();
        let mut tx = ClientNonInvite::new(clock.now(), Bytes::from_static(BYE), true, Timers::default());
        tx.take_outputs();
        assert_eq!(tx.poll_timeout(), Some(clock.at(32_000)), "only Timer F");
        assert!(tx.on_response(clock.at(20), StatusCode::new(481).unwrap()));
        assert_eq!(tx.state(), ClientNonInviteState::Terminated);
        assert!(run(&mut tx, &mut clock, 40_000).is_empty());
    }

    #[test]
    fn a_transport_error_ends_the_transaction_with_a_timeout() {
        let clock = Clock::new();
        let mut tx = ClientNonInvite::new(clock.now(), Bytes::from_static(BYE), true, Timers::default());
        tx.take_outputs();
        tx.on_transport_error();
        assert_eq!(
            tx.take_outputs(),
            vec![Output::Event(TransactionEvent::Timeout), Output::Event(TransactionEvent::Terminated)]
        );
    }
}
