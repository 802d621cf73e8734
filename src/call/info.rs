//! What a call is, as the agent is told it: [`CallInfo`], read from the INVITE (the caller, the dialed number,
//! Twilio's ids, the headers passed on) or made for a call vocals places.

use std::sync::Arc;

use crate::agent::config::AgentConfig;
use crate::e164::E164;
use crate::media::recording::RecordMode;
use crate::sip::message::{HeaderName, Request};

/// What the agent is told about the call (`start.customParameters`, the call and account ids).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallInfo {
    /// vocals' id for the call (`vc_…`), the key of its record.
    pub id: String,
    /// The agent the call was routed to, as it was then (later changes reach the next call).
    pub agent: Arc<AgentConfig>,
    /// The caller: an E.164 number when the From user is one, else the From URI.
    pub from: String,
    /// The dialed number, E.164.
    pub to: String,
    /// `X-Twilio-CallSid` and `X-Twilio-AccountSid` when the call came from Twilio.
    pub call_sid: Option<String>,
    pub account_sid: Option<String>,
    /// Headers passed on to the agent (as Twilio passes them to a `<Stream>`): `X-*`, `P-Asserted-Identity`,
    /// `Diversion`; for a call vocals placed, its TwiML `<Parameter>`s.
    pub headers: Vec<(String, String)>,
    /// Whether the call is recorded (the number's word, else its agent's, else `[recording] record`).
    pub record: RecordMode,
}

impl CallInfo {
    pub(super) fn from_invite(invite: &Request, agent: Arc<AgentConfig>, dialed: String) -> CallInfo {
        let h = &invite.headers;
        let from = caller(invite);
        let text = |v: &[u8]| String::from_utf8_lossy(v).into_owned();
        let header = |name: &str| h.get(&HeaderName::new(name)).map(text);
        let headers = h
            .iter()
            .filter(|x| {
                let name = x.name.as_str();
                name.starts_with("X-") || name.starts_with("x-") || name == "P-Asserted-Identity" || name == "Diversion"
            })
            .map(|x| (x.name.as_str().into_owned(), text(x.value)))
            .collect();
        CallInfo {
            id: String::new(),
            agent,
            from,
            to: dialed,
            call_sid: header("X-Twilio-CallSid"),
            account_sid: header("X-Twilio-AccountSid"),
            headers,
            record: RecordMode::Off,
        }
    }
}

/// The caller: an E.164 number when the From user is one, else the From URI.
pub(super) fn caller(invite: &Request) -> String {
    let from = invite.headers.from();
    from.map(|f| E164::from_uri(&f.uri).map(|n| n.to_string()).unwrap_or_else(|_| f.uri.to_string()))
        .unwrap_or_default()
}
