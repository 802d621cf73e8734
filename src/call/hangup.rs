//! Hang-ups asked from outside the call: the Twilio-compatible REST one (`POST …/Calls/{CA}.json` with
//! `Status=completed` or `canceled`, Basic auth of the call's account and agent token), which also withdraws a
//! placed call still queued, and the admin API's, by vocals id or CallSid.

use std::time::Instant;

use super::{Calls, Hangup, Phase};

/// A Twilio-style REST request to end a call (`POST .../Accounts/{AC}/Calls/{CA}.json`, `Status=completed`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HangupRequest {
    pub account_sid: String,
    pub call_sid: String,
    /// HTTP Basic credentials.
    pub user: String,
    pub password: String,
}

/// What the REST layer answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HangupOutcome {
    /// The call is being ended; its description for the response body.
    Done(CallSummary),
    UnknownCall,
    /// The credentials do not match this call's account and agent.
    Unauthorized,
}

/// A call as the Twilio-compatible REST API describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallSummary {
    pub call_sid: String,
    pub account_sid: String,
    pub from: String,
    pub to: String,
    /// `completed` (it was answered) or `canceled` (it was ringing).
    pub status: &'static str,
    /// Twilio's `direction`: `inbound`, or `outbound-api` for a call vocals placed.
    pub direction: &'static str,
}

impl Calls {
    /// The Twilio-compatible REST hang-up: checks the account in the path and the Basic credentials (the
    /// account id and the auth token configured for the call's agent), then ends the call: BYE when it was
    /// answered, 487-style refusal while it rings.
    pub(super) fn hangup_request(&mut self, now: Instant, req: &HangupRequest) -> HangupOutcome {
        let found = self.by_call_sid.get(&req.call_sid).and_then(|call| Some((*call, self.calls.get(call)?)));
        let Some((call, c)) = found else { return self.withdraw_request(req) };
        let account = c.info.account_sid.clone().unwrap_or_default();
        if account != req.account_sid {
            return HangupOutcome::UnknownCall;
        }
        let token = c.info.agent.auth_token.as_ref();
        if req.user != account || token.is_none_or(|t| !constant_time_eq(t.as_bytes(), req.password.as_bytes())) {
            return HangupOutcome::Unauthorized;
        }
        let ringing = matches!(c.phase, Phase::Ringing { .. } | Phase::Dialing);
        let summary = CallSummary {
            call_sid: req.call_sid.clone(),
            account_sid: account,
            from: c.info.from.clone(),
            to: c.info.to.clone(),
            status: if ringing { "canceled" } else { "completed" },
            direction: if c.placed.is_some() { "outbound-api" } else { "inbound" },
        };
        self.end(now, call, Hangup::Rest);
        HangupOutcome::Done(summary)
    }

    /// The REST hang-up of an outbound call still queued: withdrawn, with the same checks.
    fn withdraw_request(&mut self, req: &HangupRequest) -> HangupOutcome {
        let Some((account, token)) = self.queued_token(&req.call_sid) else { return HangupOutcome::UnknownCall };
        if account != req.account_sid {
            return HangupOutcome::UnknownCall;
        }
        if req.user != account || !constant_time_eq(token.as_bytes(), req.password.as_bytes()) {
            return HangupOutcome::Unauthorized;
        }
        match self.withdraw(&req.call_sid) {
            Some(view) => HangupOutcome::Done(CallSummary {
                call_sid: view.sid,
                account_sid: view.account_sid,
                from: view.from,
                to: view.to,
                status: "canceled",
                direction: view.direction,
            }),
            None => HangupOutcome::UnknownCall,
        }
    }

    /// The admin API's hang-up: the call whose vocals id or CallSid is `id` is ended (BYE when answered, 480
    /// while it rings). `false`: no such call here.
    pub(super) fn end_call(&mut self, now: Instant, id: &str) -> bool {
        let found = self
            .by_call_sid
            .get(id)
            .copied()
            .or_else(|| self.calls.iter().find(|(_, c)| c.info.id == id).map(|(call, _)| *call));
        let Some(call) = found else { return false };
        self.end(now, call, Hangup::Admin);
        true
    }
}

/// Equal bytes, compared in time that does not depend on where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
