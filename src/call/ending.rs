//! How a call ends on vocals' side: what the media or the agent asked ([`Ending`]) and every cause vocals has
//! ([`Hangup`]), each with what the caller's side is told (the BYE's Reason, RFC 3326, once answered; the final
//! response while it rings, RFC 3261 §13.3.1.3) and what the call record says.

use crate::agent::protocol::Violation;
use crate::media::session::MediaEnd;
use crate::sip::message::typed::Reason;
use crate::sip::message::{HeaderName, StatusCode};

/// Why the media side asks for a call to end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ending {
    /// The RTP session gave up (no RTP for the media timeout).
    Media(MediaEnd),
    /// The agent closed its stream.
    AgentHungUp,
    /// The agent asked to hang up (its `hangup` event), with headers for the BYE.
    AgentHangup(Vec<(String, String)>),
    /// The agent's stream failed mid-call.
    AgentFailed(String),
    /// The agent took no audio for this long (its socket accepted nothing).
    AgentStalled(std::time::Duration),
    /// The agent broke a limit of its stream (its stream was closed with 1008).
    AgentViolation(Violation),
}

impl Ending {
    /// What happened, for the call record and the log (the agent's own error text included).
    pub fn text(&self) -> String {
        match self {
            Ending::Media(MediaEnd::Timeout(after)) => format!("no RTP received for {} s", after.as_secs()),
            Ending::AgentHungUp | Ending::AgentHangup(_) => "the agent hung up".to_string(),
            Ending::AgentFailed(e) => format!("the agent's stream failed: {e}"),
            Ending::AgentStalled(after) => stalled(*after),
            Ending::AgentViolation(v) => violated(v),
        }
    }

    /// The BYE's Reason: its cause and a text that names what happened, never the agent's internal error
    /// (which the record keeps).
    pub(super) fn reason(&self) -> Reason {
        match self {
            Ending::Media(_) => Reason::new("SIP", 408, &self.text()),
            Ending::AgentHungUp | Ending::AgentHangup(_) => Reason::new("SIP", 200, &self.text()),
            Ending::AgentFailed(_) => Reason::new("SIP", 500, "the agent's stream failed"),
            Ending::AgentStalled(_) | Ending::AgentViolation(_) => Reason::new("SIP", 500, &self.text()),
        }
    }
}

/// Why vocals ends a call: each way a call is ended on our side, with what the caller's side is told (a BYE's
/// Reason once answered, a final response while it rings) and what the call record says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hangup {
    /// The agent's framework asked through the Twilio-compatible REST API.
    Rest,
    /// An admin, through the admin API or the dashboard.
    Admin,
    /// The server is shutting down (the drain timeout passed).
    Shutdown(String),
    /// `max_call_duration` passed.
    MaxDuration,
    /// The transfer target answered: our part of the call is over (RFC 5589 §6).
    Transferred,
    /// We offered in the 200 and the ACK brought no usable answer.
    NoAnswer(String),
    /// The agent could not be reached while the call rang (or, for a call vocals placed, once answered).
    AgentUnavailable(String),
    /// A call vocals placed whose TwiML was `<Hangup/>`, hung up once answered.
    Twiml,
    /// The call's media could not be set up (its RTP port could not be bound), and why.
    NoMedia(String),
    /// The media or the agent asked.
    Media(Ending),
    /// The peer refreshes the session (RFC 4028) and stopped: no refresh within the interval.
    SessionExpired,
    /// Our session refresh was refused with this status (or had no answer: 408).
    RefreshFailed(u16),
}

impl Hangup {
    /// The call record's ending.
    pub fn text(&self) -> String {
        match self {
            Hangup::Rest => "the agent ended the call (REST)".into(),
            Hangup::Admin => "an admin ended the call".into(),
            Hangup::Shutdown(why) | Hangup::NoAnswer(why) | Hangup::NoMedia(why) => why.clone(),
            Hangup::MaxDuration => "maximum call duration reached".into(),
            Hangup::Transferred => "call transferred".into(),
            Hangup::Twiml => "hung up by its TwiML (<Hangup/>)".into(),
            Hangup::AgentUnavailable(why) => format!("agent unavailable: {why}"),
            Hangup::Media(e) => e.text(),
            Hangup::SessionExpired => "session timer expired: the peer stopped refreshing the session".into(),
            Hangup::RefreshFailed(status) => format!("the session refresh failed ({status})"),
        }
    }

    /// The record's ending for a call ended while it rang.
    pub(super) fn text_ringing(&self) -> String {
        match self {
            Hangup::Rest => "the agent ended the call (REST) while it rang".into(),
            other => other.text(),
        }
    }

    /// Headers the agent asked the BYE to carry.
    pub(super) fn headers(&self) -> Vec<(HeaderName, String)> {
        match self {
            Hangup::Media(Ending::AgentHangup(headers)) => {
                headers.iter().map(|(n, v)| (HeaderName::new(n), v.clone())).collect()
            }
            _ => Vec::new(),
        }
    }

    /// The BYE's Reason once the call is answered.
    pub(super) fn reason(&self) -> Reason {
        match self {
            Hangup::Rest | Hangup::Admin | Hangup::MaxDuration | Hangup::Transferred | Hangup::Twiml => {
                Reason::new("SIP", 200, &self.text())
            }
            Hangup::Shutdown(why) => Reason::new("SIP", 503, why),
            Hangup::NoMedia(_) => Reason::new("SIP", 503, "no RTP port available"),
            Hangup::NoAnswer(why) => Reason::new("SIP", 488, why),
            Hangup::AgentUnavailable(_) => Reason::new("SIP", 503, "the agent is unavailable"),
            Hangup::Media(e) => e.reason(),
            Hangup::SessionExpired => Reason::new("SIP", 408, "session timer expired"),
            Hangup::RefreshFailed(_) => Reason::new("SIP", 408, "session refresh failed"),
        }
    }

    /// The final response while the call rings: status, phrase and headers.
    pub(super) fn refusal(&self) -> (StatusCode, &'static str, Vec<(HeaderName, String)>) {
        let retry = || (HeaderName::RetryAfter, "5".to_string());
        match self {
            Hangup::Rest => (StatusCode::TEMPORARILY_UNAVAILABLE, "Call Ended By Agent", vec![]),
            Hangup::Admin => (StatusCode::TEMPORARILY_UNAVAILABLE, "Call Ended By Admin", vec![]),
            Hangup::Shutdown(_) => (StatusCode::SERVICE_UNAVAILABLE, "Shutting Down", vec![retry()]),
            // The caller's side (any Twilio customer's trunk can send here) learns that the agent is
            // unavailable, not why: the error stays in the log and the call record. Twilio tries the next
            // origination URI on 503.
            Hangup::AgentUnavailable(_) => {
                let reason = String::from_utf8_lossy(&self.reason().to_bytes()).into_owned();
                (StatusCode::SERVICE_UNAVAILABLE, "Agent Unavailable", vec![retry(), (HeaderName::Reason, reason)])
            }
            Hangup::MaxDuration
            | Hangup::Transferred
            | Hangup::NoAnswer(_)
            | Hangup::NoMedia(_)
            | Hangup::Twiml
            | Hangup::Media(_)
            | Hangup::SessionExpired
            | Hangup::RefreshFailed(_) => (StatusCode::TEMPORARILY_UNAVAILABLE, "Agent Hung Up", vec![]),
        }
    }
}

/// The Reason text, and the call record's ending, of a call whose agent broke a limit.
pub fn violated(v: &Violation) -> String {
    format!("the agent broke a limit: {v}")
}

/// The Reason text, and the call record's ending, of a call whose agent stalled.
pub fn stalled(after: std::time::Duration) -> String {
    format!("the agent stalled: it took no audio for {} s", after.as_secs())
}
