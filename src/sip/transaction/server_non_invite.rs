//! The non-INVITE server transaction (RFC 3261 §17.2.2, figure 8): BYE, OPTIONS, INFO, UPDATE, CANCEL,
//! NOTIFY received. Retransmitted requests get the last response again; Timer J keeps the final response
//! around for 64·T1 on unreliable transports.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{Machine, Output, Timers, TransactionEvent};
use crate::sip::message::StatusCode;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerNonInviteState {
    Trying,
    Proceeding,
    Completed,
    Terminated,
}

#[derive(Debug)]
pub struct ServerNonInvite {
    state: ServerNonInviteState,
    reliable: bool,
    timers: Timers,
    last: Option<Bytes>,
    /// Timer J.
    deadline: Option<Instant>,
    out: VecDeque<Output>,
}

impl ServerNonInvite {
    pub fn new(reliable: bool, timers: Timers) -> ServerNonInvite {
        ServerNonInvite {
            state: ServerNonInviteState::Trying,
            reliable,
            timers,
            last: None,
            deadline: None,
            out: VecDeque::new(),
        }
    }

    pub fn state(&self) -> ServerNonInviteState {
        self.state
    }

    /// Sends the user's response: a 1xx moves Trying to Proceeding, a final response moves to Completed and
    /// starts Timer J (64·T1 unreliable, zero reliable). Responses after the final one are ignored.
    pub fn respond(&mut self, now: Instant, status: StatusCode, response: Bytes) {
        if !matches!(self.state, ServerNonInviteState::Trying | ServerNonInviteState::Proceeding) {
            return;
        }
        self.out.push_back(Output::Transmit(response.clone()));
        self.last = Some(response);
        if status.is_provisional() {
            self.state = ServerNonInviteState::Proceeding;
            return;
        }
        self.state = ServerNonInviteState::Completed;
        let j = if self.reliable { Duration::ZERO } else { self.timers.t1_x64() };
        self.deadline = Some(now + j);
        self.handle_timeout(now);
    }

    /// A retransmission of the request: absorbed while Trying, answered with the last response after.
    pub fn on_retransmission(&mut self) {
        let answers = matches!(self.state, ServerNonInviteState::Proceeding | ServerNonInviteState::Completed);
        if let (true, Some(last)) = (answers, &self.last) {
            self.out.push_back(Output::Transmit(last.clone()));
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if self.deadline.is_some_and(|d| now >= d) {
            self.state = ServerNonInviteState::Terminated;
            self.deadline = None;
            self.out.push_back(Output::Event(TransactionEvent::Terminated));
        }
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }
}

impl Machine for ServerNonInvite {
    fn poll_timeout(&self) -> Option<Instant> {
        ServerNonInvite::poll_timeout(self)
    }

    fn handle_timeout(&mut self, now: Instant) {
        ServerNonInvite::handle_timeout(self, now)
    }

    fn poll_output(&mut self) -> Option<Output> {
        ServerNonInvite::poll_output(self)
    }
}

impl ServerNonInvite {
    /// Bytes this transaction keeps for retransmission (its last response), for the endpoint's byte budget.
    pub fn retained(&self) -> usize {
        self.last.as_ref().map_or(0, |b| b.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::transaction::test_clock::Clock;

    #[test]
    fn retransmissions_are_absorbed_while_trying_then_answered() {
        let clock = Clock::new();
        let mut tx = ServerNonInvite::new(false, Timers::default());
        tx.on_retransmission();
        assert!(tx.take_outputs().is_empty());
        tx.respond(clock.now(), StatusCode::OK, Bytes::from_static(b"200"));
        assert_eq!(tx.state(), ServerNonInviteState::Completed);
        tx.on_retransmission();
        assert_eq!(tx.take_outputs(), vec![Output::Transmit(Bytes::from_static(b"200")); 2]);
    }

    #[test]
    fn timer_j_is_64_t1_on_unreliable_transports() {
        let clock = Clock::new();
        let mut tx = ServerNonInvite::new(false, Timers::default());
        tx.respond(clock.now(), StatusCode::TRYING, Bytes::from_static(b"100"));
        assert_eq!(tx.state(), ServerNonInviteState::Proceeding);
        assert_eq!(tx.poll_timeout(), None);
        tx.respond(clock.at(10), StatusCode::OK, Bytes::from_static(b"200"));
        assert_eq!(tx.poll_timeout(), Some(clock.at(32_010)));
        tx.handle_timeout(clock.at(32_009));
        assert_eq!(tx.state(), ServerNonInviteState::Completed);
        tx.handle_timeout(clock.at(32_010));
        assert_eq!(tx.state(), ServerNonInviteState::Terminated);
        assert_eq!(tx.take_outputs().last(), Some(&Output::Event(TransactionEvent::Terminated)));
    }

    #[test]
    fn timer_j_is_zero_on_reliable_transports() {
        let clock = Clock::new();
        let mut tx = ServerNonInvite::new(true, Timers::default());
        tx.respond(clock.now(), StatusCode::OK, Bytes::from_static(b"200"));
        assert_eq!(tx.state(), ServerNonInviteState::Terminated);
        assert_eq!(
            tx.take_outputs(),
            vec![Output::Transmit(Bytes::from_static(b"200")), Output::Event(TransactionEvent::Terminated)]
        );
    }
}
