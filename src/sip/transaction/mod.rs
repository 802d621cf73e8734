//! RFC 3261 §17 transactions, as updated by RFC 6026: the INVITE client (§17.1.1, RFC 6026 §7.2), non-INVITE
//! client (§17.1.2), INVITE server and non-INVITE server state machines, and the key that matches requests to
//! them (§17.2.3). Sans-IO: every method takes `now`, output is drained with `poll_output`, and `poll_timeout`
//! says when to call `handle_timeout` next. Never touches sockets or clocks.
//!
//! Not here: what a request is answered with ([`crate::sip::endpoint`]'s UAS rules), where the bytes go
//! ([`crate::sip::transport`]).

mod client_invite;
mod client_non_invite;
mod key;
mod server_invite;
mod server_non_invite;

use std::time::Duration;

use bytes::Bytes;

pub use client_invite::{ClientInvite, ClientInviteState};
pub use client_non_invite::{ClientNonInvite, ClientNonInviteState};
pub use key::{Rfc2543Key, TransactionKey};
pub use server_invite::{ServerInvite, ServerInviteState};
pub use server_non_invite::{ServerNonInvite, ServerNonInviteState};

/// The timer base values of RFC 3261 §17.1.1.1 and table 4. Tests and lab set-ups may shorten them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timers {
    /// RTT estimate (default 500 ms).
    pub t1: Duration,
    /// Maximum retransmit interval for non-INVITE requests and INVITE responses (default 4 s).
    pub t2: Duration,
    /// Maximum duration a message remains in the network (default 5 s).
    pub t4: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Timers { t1: Duration::from_millis(500), t2: Duration::from_secs(4), t4: Duration::from_secs(5) }
    }
}

impl Timers {
    /// 64·T1: Timers B, F, H, J and L.
    pub fn t1_x64(&self) -> Duration {
        self.t1 * 64
    }
}

/// What a transaction asks of its driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Send these bytes to the transaction's peer over its transport.
    Transmit(Bytes),
    /// Tell the transaction user.
    Event(TransactionEvent),
}

/// What a transaction tells its user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransactionEvent {
    /// No answer in time: Timer B or F (our request got no final response), the give-up after our CANCEL
    /// (RFC 3261 §9.1), or Timer H (our non-2xx final response got no ACK).
    Timeout,
    /// Our 2xx to an INVITE was retransmitted for 64·T1 without an ACK (RFC 3261 §13.3.1.4): the session
    /// should be ended with a BYE.
    AckTimeout,
    /// The transaction has ended; its table entry can go.
    Terminated,
}

/// What every transaction state machine offers its driver.
pub trait Machine {
    /// When [`Machine::handle_timeout`] wants to run next.
    fn poll_timeout(&self) -> Option<std::time::Instant>;
    fn handle_timeout(&mut self, now: std::time::Instant);
    fn poll_output(&mut self) -> Option<Output>;

    /// Every pending output, in order.
    fn take_outputs(&mut self) -> Vec<Output> {
        std::iter::from_fn(|| self.poll_output()).collect()
    }
}

/// The earlier of two optional deadlines.
fn earliest(a: Option<std::time::Instant>, b: Option<std::time::Instant>) -> Option<std::time::Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Exponential back-off of §17.1.1.2 and §17.2.1: starts at T1, doubles, never exceeds T2.
fn backoff(current: Duration, t2: Duration) -> Duration {
    (current * 2).min(t2)
}

#[cfg(test)]
mod test_clock {
    use std::time::{Duration, Instant};

    use super::{Machine, Output};

    /// Runs `m` on the virtual clock until `until_ms`, returning each output with the time it happened.
    pub(crate) fn run(m: &mut impl Machine, clock: &mut Clock, until_ms: u64) -> Vec<(u64, Output)> {
        let mut seen = Vec::new();
        while let Some(t) = m.poll_timeout() {
            if clock.ms(t) > until_ms {
                break;
            }
            clock.set(t);
            m.handle_timeout(t);
            seen.extend(m.take_outputs().into_iter().map(|o| (clock.ms(t), o)));
        }
        seen
    }

    /// The times at which something was transmitted.
    pub(crate) fn transmits(seen: &[(u64, Output)]) -> Vec<u64> {
        seen.iter().filter(|(_, o)| matches!(o, Output::Transmit(_))).map(|(t, _)| *t).collect()
    }

    /// A virtual clock: an arbitrary start and offsets from it, so timer tests never sleep.
    pub(crate) struct Clock {
        start: Instant,
        offset: Duration,
    }

    impl Clock {
        pub(crate) fn new() -> Clock {
            Clock { start: Instant::now(), offset: Duration::ZERO }
        }

        pub(crate) fn now(&self) -> Instant {
            self.start + self.offset
        }

        pub(crate) fn at(&self, ms: u64) -> Instant {
            self.start + Duration::from_millis(ms)
        }

        pub(crate) fn set(&mut self, t: Instant) {
            self.offset = t - self.start;
        }

        pub(crate) fn ms(&self, t: Instant) -> u64 {
            (t - self.start).as_millis() as u64
        }
    }
}
