//! Each call's session timer (RFC 4028) on the call layer's clock: the endpoint negotiates the timer with
//! every INVITE, re-INVITE and UPDATE and reports it ([`Event::Session`]); here its clock runs. When vocals
//! refreshes it asks the endpoint for a refresh at half the interval (again after §14.1's wait when the refresh
//! met glare); when the peer refreshes and stops, the call is ended at the interval less min(32 s, a third)
//! with a BYE whose Reason says the session timer expired. The record keeps the interval, who refreshed, how
//! many refreshes there were and any glare.

use std::time::Instant;

use serde_json::json;

use super::{Calls, Hangup, Phase, SipCommand};
use crate::sip::endpoint::{CallRef, RefreshOutcome};
use crate::sip::session_timer::SessionTimer;
use crate::store::catalog::CallWrite;

/// A call's session timer as the call layer keeps it.
#[derive(Clone, Debug, Default)]
pub(super) struct SessionClock {
    /// The timer in force, and since when (its last refresh).
    timer: Option<(SessionTimer, Instant)>,
    /// Our refresh is out, waiting for its answer.
    asked: bool,
    /// Try the refresh again then (after glare).
    retry_at: Option<Instant>,
    /// Refreshes that kept the session (ours and the peer's).
    refreshes: u32,
    /// Offers that crossed (491 either way).
    glare: u32,
    /// The interval and refresher of the last timer in force, for the record once it is gone.
    last: Option<SessionTimer>,
}

impl SessionClock {
    /// When this call's timer next needs the clock: our refresh (or its retry), or the peer's deadline.
    pub(super) fn next(&self) -> Option<Instant> {
        let (timer, since) = self.timer?;
        if !timer.we_refresh {
            return Some(since + timer.expires_after());
        }
        match (self.retry_at, self.asked) {
            (Some(at), _) => Some(at),
            (None, false) => Some(since + timer.refresh_after()),
            (None, true) => None,
        }
    }

    /// What the record says of it: `null` when no timer was ever in force.
    pub(super) fn summary(&self) -> serde_json::Value {
        match self.last {
            None if self.glare == 0 => serde_json::Value::Null,
            None => json!({"interval": null, "refresher": null, "refreshes": self.refreshes, "glare": self.glare}),
            Some(t) => json!({
                "interval": t.interval,
                "refresher": if t.we_refresh { "vocals" } else { "peer" },
                "refreshes": self.refreshes,
                "glare": self.glare,
            }),
        }
    }
}

impl Calls {
    /// A transaction put `timer` in force (or none): its clock starts again now; a timer following one is a
    /// refresh.
    pub(super) fn session(&mut self, now: Instant, call: CallRef, timer: Option<SessionTimer>) {
        let Some(c) = self.calls.get_mut(&call) else { return };
        let s = &mut c.session;
        if s.timer.is_some() && timer.is_some() {
            s.refreshes += 1;
        }
        if let Some(t) = timer {
            tracing::debug!(call = %c.info.id, interval = t.interval, we_refresh = t.we_refresh, "session timer");
            s.last = Some(t);
        }
        s.timer = timer.map(|t| (t, now));
        s.asked = false;
        s.retry_at = None;
    }

    pub(super) fn glare(&mut self, call: CallRef) {
        if let Some(c) = self.calls.get_mut(&call) {
            c.session.glare += 1;
            tracing::info!(call = %c.info.id, "glare: offers crossed (491)");
        }
    }

    /// Our refresh was not taken: again after the wait (glare), or the session is over (RFC 4028 §10: no
    /// answer, 408 or 481; and any other refusal, since the peer will not keep the session without one).
    pub(super) fn refresh_failed(&mut self, now: Instant, call: CallRef, outcome: &RefreshOutcome) {
        let Some(c) = self.calls.get_mut(&call) else { return };
        match outcome {
            RefreshOutcome::Again(wait) => {
                c.session.asked = false;
                c.session.retry_at = Some(now + *wait);
            }
            RefreshOutcome::Failed(status) => {
                tracing::warn!(call = %c.info.id, status = status.as_u16(), "session refresh refused: ending the call");
                self.end(now, call, Hangup::RefreshFailed(status.as_u16()));
            }
        }
    }

    /// Calls whose session timer is due: ours refreshed, the peer's expired.
    pub(super) fn session_timeouts(&mut self, now: Instant) {
        let due: Vec<(CallRef, bool)> = self
            .calls
            .iter()
            .filter(|(_, c)| c.phase == Phase::Answered && c.session.next().is_some_and(|t| t <= now))
            .filter_map(|(call, c)| c.session.timer.map(|(t, _)| (*call, t.we_refresh)))
            .collect();
        for (call, we_refresh) in due {
            if we_refresh {
                if let Some(c) = self.calls.get_mut(&call) {
                    c.session.asked = true;
                    c.session.retry_at = None;
                }
                self.sip(SipCommand::Refresh(call));
            } else {
                if let Some(c) = self.calls.get_mut(&call) {
                    tracing::warn!(call = %c.info.id, "session timer expired: the peer stopped refreshing");
                    c.session.timer = None;
                }
                self.end(now, call, Hangup::SessionExpired);
            }
        }
    }

    /// The record's session summary, written as the call ends.
    pub(super) fn session_record(&self, id: &str, clock: &SessionClock) {
        let session = clock.summary();
        if !session.is_null() {
            self.write(CallWrite::Session { id: id.to_string(), session });
        }
    }
}
