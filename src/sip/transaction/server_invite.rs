//! The INVITE server transaction: RFC 3261 §17.2.1 with RFC 6026's Accepted state. The 2xx is retransmitted
//! from T1, doubling up to T2, until the ACK arrives (§13.3.1.4; also over reliable transports, since a hop
//! behind may be unreliable); without an ACK by 64·T1 the user is told to end the session. Never sends on
//! its own except retransmissions of what the user gave it.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{Machine, Output, Timers, TransactionEvent, backoff, earliest};
use crate::sip::message::StatusCode;

/// States of figure 7 (RFC 3261) with RFC 6026's Accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerInviteState {
    Proceeding,
    /// A 2xx was sent; it is retransmitted until the ACK, and INVITE retransmissions are answered with it.
    Accepted,
    /// A 3xx–6xx was sent; waiting for the ACK (Timers G and H).
    Completed,
    /// The ACK for a 3xx–6xx arrived; absorbing retransmitted ACKs (Timer I).
    Confirmed,
    Terminated,
}

#[derive(Debug)]
pub struct ServerInvite {
    state: ServerInviteState,
    reliable: bool,
    timers: Timers,
    /// The last response sent, for retransmission.
    last: Option<Bytes>,
    /// Next retransmission (Timer G, or the 2xx back-off) and its current interval.
    retransmit: Option<(Instant, Duration)>,
    /// Timer H (Completed), L (Accepted) or I (Confirmed).
    deadline: Option<Instant>,
    acked: bool,
    out: VecDeque<Output>,
}

impl ServerInvite {
    /// A transaction for an INVITE just received (state Proceeding). The caller sends `100 Trying` through
    /// [`ServerInvite::respond`] at once.
    pub fn new(reliable: bool, timers: Timers) -> ServerInvite {
        ServerInvite {
            state: ServerInviteState::Proceeding,
            reliable,
            timers,
            last: None,
            retransmit: None,
            deadline: None,
            acked: false,
            out: VecDeque::new(),
        }
    }

    pub fn state(&self) -> ServerInviteState {
        self.state
    }

    /// Sends the user's response. 1xx keeps the transaction Proceeding; 2xx moves it to Accepted; 3xx–6xx to
    /// Completed. Responses after a final one are ignored (the user is told the transaction's state).
    pub fn respond(&mut self, now: Instant, status: StatusCode, response: Bytes) {
        if self.state != ServerInviteState::Proceeding {
            return;
        }
        self.out.push_back(Output::Transmit(response.clone()));
        self.last = Some(response);
        let t = self.timers;
        if status.is_provisional() {
            return;
        }
        if status.is_success() {
            // §13.3.1.4: 2xx retransmitted end to end, whatever the transport; Timer L = 64·T1 (RFC 6026).
            self.state = ServerInviteState::Accepted;
            self.retransmit = Some((now + t.t1, t.t1));
            self.deadline = Some(now + t.t1_x64());
        } else {
            // §17.2.1: Timer G (unreliable only) and Timer H.
            self.state = ServerInviteState::Completed;
            self.retransmit = (!self.reliable).then_some((now + t.t1, t.t1));
            self.deadline = Some(now + t.t1_x64());
        }
    }

    /// A retransmission of the INVITE: the last response goes out again. Before any response, and once the
    /// ACK for a 2xx came, it is absorbed.
    pub fn on_invite_retransmission(&mut self) {
        let answers = matches!(
            self.state,
            ServerInviteState::Proceeding | ServerInviteState::Accepted | ServerInviteState::Completed
        );
        if let (true, Some(last)) = (answers, &self.last) {
            self.out.push_back(Output::Transmit(last.clone()));
        }
    }

    /// An ACK for this INVITE: for a 3xx–6xx it matched the transaction (§17.2.3); for a 2xx the dialog
    /// matched it and hands it here so the retransmissions stop.
    pub fn on_ack(&mut self, now: Instant) {
        match self.state {
            ServerInviteState::Completed => {
                // Timer I: T4 on unreliable transports, zero on reliable ones.
                self.state = ServerInviteState::Confirmed;
                self.retransmit = None;
                self.deadline = Some(now + if self.reliable { Duration::ZERO } else { self.timers.t4 });
                self.handle_timeout(now);
            }
            ServerInviteState::Accepted => {
                // Stop the 2xx retransmissions, and absorb INVITE retransmissions until Timer L (RFC 6026
                // §8.7): the ACK says the 2xx arrived, so one still in the network is a stale duplicate. The
                // 2xx goes: at thousands of calls a second, 32 s of them would be most of vocals' memory.
                self.acked = true;
                self.retransmit = None;
                self.last = None;
            }
            _ => {}
        }
    }

    /// When [`ServerInvite::handle_timeout`] wants to run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        earliest(self.retransmit.map(|(at, _)| at), self.deadline)
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if self.deadline.is_some_and(|d| now >= d) {
            self.expire();
            return;
        }
        if let Some((at, interval)) = self.retransmit
            && now >= at
        {
            if let Some(last) = &self.last {
                self.out.push_back(Output::Transmit(last.clone()));
            }
            let next = backoff(interval, self.timers.t2);
            self.retransmit = Some((now + next, next));
        }
    }

    /// Timer H, L or I fired.
    fn expire(&mut self) {
        let event = match self.state {
            ServerInviteState::Completed => Some(TransactionEvent::Timeout),
            ServerInviteState::Accepted if !self.acked => Some(TransactionEvent::AckTimeout),
            _ => None,
        };
        if let Some(e) = event {
            self.out.push_back(Output::Event(e));
        }
        self.terminate();
    }

    fn terminate(&mut self) {
        self.state = ServerInviteState::Terminated;
        self.retransmit = None;
        self.deadline = None;
        self.out.push_back(Output::Event(TransactionEvent::Terminated));
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }
}

impl Machine for ServerInvite {
    fn poll_timeout(&self) -> Option<Instant> {
        ServerInvite::poll_timeout(self)
    }

    fn handle_timeout(&mut self, now: Instant) {
        ServerInvite::handle_timeout(self, now)
    }

    fn poll_output(&mut self) -> Option<Output> {
        ServerInvite::poll_output(self)
    }
}

impl ServerInvite {
    /// Bytes this transaction keeps for retransmission (its last response), for the endpoint's byte budget.
    pub fn retained(&self) -> usize {
        self.last.as_ref().map_or(0, |b| b.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::transaction::test_clock::{Clock, run, transmits};

    const OK: &[u8] = b"SIP/2.0 200 OK\r\n...";
    const BUSY: &[u8] = b"SIP/2.0 486 Busy Here\r\n...";

    #[test]
    fn provisional_responses_go_out_and_answer_retransmissions() {
        let clock = Clock::new();
        let mut tx = ServerInvite::new(false, Timers::default());
        tx.on_invite_retransmission();
        assert!(tx.take_outputs().is_empty(), "nothing to answer with yet");
        tx.respond(clock.now(), StatusCode::TRYING, Bytes::from_static(b"100"));
        tx.respond(clock.now(), StatusCode::RINGING, Bytes::from_static(b"180"));
        assert_eq!(tx.take_outputs().len(), 2);
        tx.on_invite_retransmission();
        assert_eq!(tx.take_outputs(), vec![Output::Transmit(Bytes::from_static(b"180"))]);
        assert_eq!(tx.poll_timeout(), None, "no timer runs in Proceeding");
    }

    #[test]
    fn a_2xx_is_retransmitted_at_t1_doubling_to_t2_until_64_t1_then_ack_timeout() {
        let mut clock = Clock::new();
        let mut tx = ServerInvite::new(false, Timers::default());
        tx.respond(clock.now(), StatusCode::OK, Bytes::from_static(OK));
        assert_eq!(tx.state(), ServerInviteState::Accepted);
        tx.take_outputs();
        let seen = run(&mut tx, &mut clock, 40_000);
        // 500, 1500, 3500, 7500, then every 4 s up to 32 s (64·T1).
        assert_eq!(transmits(&seen), vec![500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]);
        let events: Vec<_> =
            seen.iter().filter_map(|(t, o)| matches!(o, Output::Event(_)).then_some((*t, o))).collect();
        assert_eq!(
            events,
            vec![
                (32_000, &Output::Event(TransactionEvent::AckTimeout)),
                (32_000, &Output::Event(TransactionEvent::Terminated))
            ]
        );
    }

    #[test]
    fn the_ack_stops_2xx_retransmissions_and_late_invites_get_the_2xx_only_before_it() {
        let mut clock = Clock::new();
        let mut tx = ServerInvite::new(false, Timers::default());
        tx.respond(clock.now(), StatusCode::OK, Bytes::from_static(OK));
        tx.take_outputs();
        let seen = run(&mut tx, &mut clock, 1600);
        assert_eq!(transmits(&seen), vec![500, 1500]);
        tx.on_invite_retransmission();
        assert_eq!(tx.take_outputs(), vec![Output::Transmit(Bytes::from_static(OK))], "no ACK yet: the 2xx again");
        tx.on_ack(clock.at(1600));
        tx.on_invite_retransmission();
        assert!(tx.take_outputs().is_empty(), "after the ACK a retransmitted INVITE is absorbed (RFC 6026 §8.7)");
        assert_eq!(tx.state(), ServerInviteState::Accepted);
        let seen = run(&mut tx, &mut clock, 40_000);
        assert!(transmits(&seen).is_empty());
        assert_eq!(seen, vec![(32_000, Output::Event(TransactionEvent::Terminated))], "Timer L, no AckTimeout");
    }

    #[test]
    fn a_2xx_is_retransmitted_over_reliable_transports_too() {
        let mut clock = Clock::new();
        let mut tx = ServerInvite::new(true, Timers::default());
        tx.respond(clock.now(), StatusCode::OK, Bytes::from_static(OK));
        tx.take_outputs();
        assert_eq!(transmits(&run(&mut tx, &mut clock, 4000)), vec![500, 1500, 3500]);
    }

    #[test]
    fn a_non_2xx_final_is_retransmitted_on_timer_g_until_timer_h() {
        let mut clock = Clock::new();
        let mut tx = ServerInvite::new(false, Timers::default());
        tx.respond(clock.now(), StatusCode::new(486).unwrap(), Bytes::from_static(BUSY));
        assert_eq!(tx.state(), ServerInviteState::Completed);
        tx.take_outputs();
        let seen = run(&mut tx, &mut clock, 40_000);
        assert_eq!(transmits(&seen), vec![500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]);
        assert_eq!(
            seen.iter().filter(|(_, o)| matches!(o, Output::Event(_))).collect::<Vec<_>>(),
            vec![
                &(32_000, Output::Event(TransactionEvent::Timeout)),
                &(32_000, Output::Event(TransactionEvent::Terminated))
            ]
        );
    }

    #[test]
    fn the_ack_for_a_non_2xx_confirms_and_timer_i_ends_it() {
        let mut clock = Clock::new();
        let mut tx = ServerInvite::new(false, Timers::default());
        tx.respond(clock.now(), StatusCode::new(486).unwrap(), Bytes::from_static(BUSY));
        tx.take_outputs();
        tx.on_invite_retransmission();
        assert_eq!(tx.take_outputs(), vec![Output::Transmit(Bytes::from_static(BUSY))], "Completed answers INVITEs");
        clock.set(clock.at(100));
        tx.on_ack(clock.now());
        assert_eq!(tx.state(), ServerInviteState::Confirmed);
        tx.on_invite_retransmission();
        assert!(tx.take_outputs().is_empty(), "Confirmed absorbs");
        let seen = run(&mut tx, &mut clock, 10_000);
        assert_eq!(seen, vec![(5100, Output::Event(TransactionEvent::Terminated))], "Timer I = T4");
    }

    #[test]
    fn over_reliable_transports_a_non_2xx_is_not_retransmitted_and_timer_i_is_zero() {
        let mut clock = Clock::new();
        let mut tx = ServerInvite::new(true, Timers::default());
        tx.respond(clock.now(), StatusCode::new(486).unwrap(), Bytes::from_static(BUSY));
        tx.take_outputs();
        assert_eq!(tx.poll_timeout(), Some(clock.at(32_000)), "only Timer H");
        tx.on_ack(clock.at(10));
        assert_eq!(tx.state(), ServerInviteState::Terminated);
        assert_eq!(tx.take_outputs(), vec![Output::Event(TransactionEvent::Terminated)]);
        let _ = run(&mut tx, &mut clock, 40_000);
    }

    #[test]
    fn shortened_timers_scale_every_interval() {
        let mut clock = Clock::new();
        let t =
            Timers { t1: Duration::from_millis(50), t2: Duration::from_millis(400), t4: Duration::from_millis(500) };
        let mut tx = ServerInvite::new(false, t);
        tx.respond(clock.now(), StatusCode::OK, Bytes::from_static(OK));
        tx.take_outputs();
        let seen = run(&mut tx, &mut clock, 4000);
        assert_eq!(transmits(&seen), vec![50, 150, 350, 750, 1150, 1550, 1950, 2350, 2750, 3150]);
        assert_eq!(seen.last(), Some(&(3200, Output::Event(TransactionEvent::Terminated))));
    }

    #[test]
    fn responses_after_the_final_one_are_ignored() {
        let clock = Clock::new();
        let mut tx = ServerInvite::new(false, Timers::default());
        tx.respond(clock.now(), StatusCode::new(487).unwrap(), Bytes::from_static(b"487"));
        tx.respond(clock.now(), StatusCode::OK, Bytes::from_static(OK));
        assert_eq!(tx.take_outputs(), vec![Output::Transmit(Bytes::from_static(b"487"))]);
        assert_eq!(tx.state(), ServerInviteState::Completed);
    }
}
