//! RFC 3261 §17 transactions, as updated by RFC 6026: the INVITE server, non-INVITE server and non-INVITE
//! client state machines, and the key that matches requests to them (§17.2.3). Sans-IO: every method takes
//! `now`, output is drained with `poll_output`, and `poll_timeout` says when to call `handle_timeout` next.
//! Never touches sockets or clocks.

mod client_non_invite;
mod key;
mod server_invite;
mod server_non_invite;

use std::time::Duration;

use bytes::Bytes;

pub use client_non_invite::{ClientNonInvite, ClientNonInviteState};
pub use key::TransactionKey;
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
    /// No answer in time: Timer F (our request got no final response) or Timer H (our non-2xx final response got
    /// no ACK).
    Timeout,
    /// Our 2xx to an INVITE was retransmitted for 64·T1 without an ACK (RFC 3261 §13.3.1.4): the session
    /// should be ended with a BYE.
    AckTimeout,
    /// The transaction has ended; its table entry can go.
    Terminated,
}

/// Exponential back-off of §17.1.1.2 and §17.2.1: starts at T1, doubles, never exceeds T2.
fn backoff(current: Duration, t2: Duration) -> Duration {
    (current * 2).min(t2)
}

#[cfg(test)]
mod test_clock {
    use std::time::{Duration, Instant};

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
