//! Twilio's Calls API as vocals answers it, sans IO: the Create Call request (`POST
//! /2010-04-01/Accounts/{AC}/Calls.json`, [`parse_create`]), the Call resource it answers with and `GET
//! …/Calls/{CA}.json` returns ([`call_resource`]), and the form parameters of the status callbacks
//! ([`callback_params`], signed with [`super::signature::sign`]).
//!
//! Every refusal is an [`ApiError`]: HTTP 400 and the code Twilio documents for the parameter:
//!
//! | Problem | Code |
//! |---|---|
//! | `To` missing / not an E.164 number | 21201 / 21211 |
//! | `From` missing / not an E.164 number | 21213 / 21212 |
//! | neither `Twiml` nor `Url` | 21200 (Twilio's Calls resource error, whose page names this cause) |
//! | `Url` not an absolute http(s) URL | 21205 |
//! | `Method` or `StatusCallbackMethod` not GET or POST | 21209 |
//! | `Timeout` not a whole number of seconds from 1 to 600 | 21208 |
//! | `StatusCallback` not an absolute http(s) URL | 21609 |
//! | a `StatusCallbackEvent` that is not initiated, ringing, answered or completed | 21626 |
//! | `Twiml` over 4000 characters | 32018 |
//! | `Twiml` that is not TwiML vocals runs | 12100 / 12200 (see [`super::twiml`]) |
//!
//! A parameter that should appear once and appears twice is refused with that parameter's code: two `To`s
//! could be read differently by a proxy and by vocals.

use std::fmt;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use super::twiml::{self, Twiml};
use crate::e164::E164;

/// The version in every path and in `api_version` / `ApiVersion`.
pub const API_VERSION: &str = "2010-04-01";
/// Twilio's default `Timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// Twilio's largest `Timeout`.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(600);
/// Longest `Twiml` Twilio takes, in characters.
pub const MAX_TWIML_CHARS: usize = 4000;
/// Longest URL taken for `Url` and `StatusCallback`, Twilio's limit.
pub const MAX_URL_CHARS: usize = 4000;

/// `GET` or `POST`, for `Method` and `StatusCallbackMethod`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HttpMethod {
    Get,
    #[default]
    Post,
}

impl HttpMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Post => "POST",
        }
    }

    /// `GET` or `POST`, in any case.
    pub fn parse(s: &str) -> Option<HttpMethod> {
        if s.eq_ignore_ascii_case("GET") {
            Some(HttpMethod::Get)
        } else if s.eq_ignore_ascii_case("POST") {
            Some(HttpMethod::Post)
        } else {
            None
        }
    }
}

/// A call progress event a status callback can be sent for (`StatusCallbackEvent`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StatusEvent {
    /// The INVITE is sent.
    Initiated,
    /// The callee is alerted (180/183).
    Ringing,
    /// The callee answered (2xx).
    Answered,
    /// The call is over, whatever its outcome (completed, busy, no-answer, failed, canceled).
    Completed,
}

impl StatusEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            StatusEvent::Initiated => "initiated",
            StatusEvent::Ringing => "ringing",
            StatusEvent::Answered => "answered",
            StatusEvent::Completed => "completed",
        }
    }

    pub fn parse(s: &str) -> Option<StatusEvent> {
        [StatusEvent::Initiated, StatusEvent::Ringing, StatusEvent::Answered, StatusEvent::Completed]
            .into_iter()
            .find(|e| s.eq_ignore_ascii_case(e.as_str()))
    }
}

/// A Create Call request, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateCall {
    pub to: E164,
    pub from: E164,
    /// The `Twiml` parameter, parsed. `None` when `Url` is given: Twilio ignores `Twiml` then.
    pub twiml: Option<Twiml>,
    /// Where to fetch the TwiML from (absolute http or https), with `method`.
    pub url: Option<String>,
    pub method: HttpMethod,
    /// How long to ring before giving up (`Timeout`): 60 s unless given, 1 to 600 s.
    pub timeout: Duration,
    pub status_callback: Option<String>,
    /// The events to send to `status_callback`, in the order they happen, each once: `[Completed]` when none
    /// is given, as Twilio does.
    pub status_events: Vec<StatusEvent>,
    pub status_method: HttpMethod,
}

/// A refusal, answered as Twilio's error JSON (see [`ApiError::json`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: u16,
    /// Twilio's error code.
    pub code: u32,
    pub message: String,
}

impl ApiError {
    /// A 400 with `code`.
    pub fn bad_request(code: u32, message: impl Into<String>) -> ApiError {
        ApiError { status: 400, code, message: message.into() }
    }

    /// `{"code", "message", "more_info", "status"}`, as Twilio answers errors.
    pub fn json(&self) -> Value {
        json!({
            "code": self.code,
            "message": self.message,
            "more_info": format!("https://www.twilio.com/docs/errors/{}", self.code),
            "status": self.status,
        })
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (Twilio error {}, HTTP {})", self.message, self.code, self.status)
    }
}

impl std::error::Error for ApiError {}

/// The one value of `name` (`None` when absent or empty); twice is refused with `code`.
fn one<'a>(form: &'a [(String, String)], name: &str, code: u32) -> Result<Option<&'a str>, ApiError> {
    let mut values = form.iter().filter(|(n, _)| n == name).map(|(_, v)| v.as_str());
    let first = values.next();
    if values.next().is_some() {
        return Err(ApiError::bad_request(code, format!("{name} was given more than once")));
    }
    Ok(first.filter(|v| !v.trim().is_empty()))
}

/// An absolute http or https URL with a host name (no underscore: Twilio refuses those), at most
/// [`MAX_URL_CHARS`] long.
fn check_http_url(name: &str, url: &str, code: u32) -> Result<String, ApiError> {
    let bad = |why: String| Err(ApiError::bad_request(code, format!("{name} is not a valid URL: {why}")));
    if url.chars().count() > MAX_URL_CHARS {
        return bad(format!("it is longer than {MAX_URL_CHARS} characters"));
    }
    // `https:///x` would parse with `x` as its host.
    let authority = url.split_once("://").map(|(_, rest)| rest).unwrap_or_default();
    if authority.starts_with(['/', '?', '#']) {
        return bad(format!("{url:?} has no host"));
    }
    let parsed = match reqwest::Url::parse(url) {
        Ok(u) => u,
        Err(e) => return bad(format!("{url:?} ({e}); it must be absolute, e.g. https://example.com/twiml")),
    };
    if !matches!(parsed.scheme(), "http" | "https") {
        return bad(format!("{url:?} is not http:// or https://"));
    }
    match parsed.host_str() {
        None | Some("") => bad(format!("{url:?} has no host")),
        Some(host) if host.contains('_') => bad(format!("{url:?}: the host name has an underscore")),
        Some(_) => Ok(url.to_string()),
    }
}

fn http_method(form: &[(String, String)], name: &str) -> Result<HttpMethod, ApiError> {
    match one(form, name, 21209)? {
        None => Ok(HttpMethod::Post),
        Some(m) => HttpMethod::parse(m.trim())
            .ok_or_else(|| ApiError::bad_request(21209, format!("{name} {m:?} is not valid: use GET or POST"))),
    }
}

fn number(form: &[(String, String)], name: &str, missing: u32, invalid: u32) -> Result<E164, ApiError> {
    let value = one(form, name, invalid)?
        .ok_or_else(|| ApiError::bad_request(missing, format!("Required parameter {name} is missing")))?;
    E164::parse(value.trim()).map_err(|e| {
        ApiError::bad_request(
            invalid,
            format!("The '{name}' number {value} is not a valid phone number: {e} (vocals calls phone numbers only)"),
        )
    })
}

/// Checks a Create Call request: the form as decoded name/value pairs, in the order sent. Parameters vocals
/// does not act on (`Record`, `SendDigits`, `MachineDetection`, …) are ignored, as Twilio ignores unknown
/// ones; `StatusCallbackEvent` may repeat (twilio-python sends a list so) and each value may hold several
/// events separated by spaces or commas.
pub fn parse_create(form: &[(String, String)]) -> Result<CreateCall, ApiError> {
    let to = number(form, "To", 21201, 21211)?;
    let from = number(form, "From", 21213, 21212)?;
    let url = one(form, "Url", 21205)?.map(|u| check_http_url("Url", u.trim(), 21205)).transpose()?;
    let method = http_method(form, "Method")?;
    let twiml = match (one(form, "Twiml", twiml::PARSE_FAILURE)?, &url) {
        // "If both twiml and url are provided then twiml parameter will be ignored."
        (_, Some(_)) | (None, None) => None,
        (Some(doc), None) => {
            let chars = doc.chars().count();
            if chars > MAX_TWIML_CHARS {
                let message = format!("Twiml is {chars} characters; the maximum is {MAX_TWIML_CHARS}");
                return Err(ApiError::bad_request(32018, message));
            }
            Some(
                twiml::parse(doc)
                    .map_err(|e| ApiError::bad_request(e.code, format!("Invalid Twiml: {}", e.message)))?,
            )
        }
    };
    if twiml.is_none() && url.is_none() {
        let message = match one(form, "ApplicationSid", 21200)? {
            Some(_) => "ApplicationSid is not supported by vocals: give the call's instructions as Twiml or Url",
            None => "Either Twiml or Url is required: the TwiML to run when the call is answered",
        };
        return Err(ApiError::bad_request(21200, message));
    }
    let timeout = match one(form, "Timeout", 21208)? {
        None => DEFAULT_TIMEOUT,
        Some(t) => {
            let secs = t.trim().parse::<u64>().ok().filter(|s| (1..=MAX_TIMEOUT.as_secs()).contains(s));
            let secs = secs.ok_or_else(|| {
                let max = MAX_TIMEOUT.as_secs();
                ApiError::bad_request(
                    21208,
                    format!("Timeout {t:?} is not valid: a whole number of seconds, 1 to {max}"),
                )
            })?;
            Duration::from_secs(secs)
        }
    };
    let status_callback =
        one(form, "StatusCallback", 21609)?.map(|u| check_http_url("StatusCallback", u.trim(), 21609)).transpose()?;
    let status_method = http_method(form, "StatusCallbackMethod")?;
    let mut status_events = Vec::new();
    for value in form.iter().filter(|(n, _)| n == "StatusCallbackEvent").map(|(_, v)| v) {
        for word in value.split(|c: char| c.is_whitespace() || c == ',').filter(|w| !w.is_empty()) {
            let event = StatusEvent::parse(word).ok_or_else(|| {
                let shown: String = word.chars().take(40).collect();
                ApiError::bad_request(
                    21626,
                    format!(
                        "StatusCallbackEvent {shown:?} is not valid: use initiated, ringing, answered or completed"
                    ),
                )
            })?;
            status_events.push(event);
        }
    }
    status_events.sort();
    status_events.dedup();
    if status_events.is_empty() {
        status_events.push(StatusEvent::Completed);
    }
    Ok(CreateCall { to, from, twiml, url, method, timeout, status_callback, status_events, status_method })
}

/// A call's status, in Twilio's words ([`CallStatus::as_str`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CallStatus {
    /// Accepted, waiting for its turn (the trunk's pace).
    Queued,
    /// The INVITE is sent. The Call resource has no such status and says `queued` (see [`call_resource`]);
    /// status callbacks say `initiated`.
    Initiated,
    Ringing,
    InProgress,
    Completed,
    Busy,
    NoAnswer,
    Failed,
    Canceled,
}

impl CallStatus {
    /// `queued`, `initiated`, `ringing`, `in-progress`, `completed`, `busy`, `no-answer`, `failed`, `canceled`.
    pub fn as_str(self) -> &'static str {
        match self {
            CallStatus::Queued => "queued",
            CallStatus::Initiated => "initiated",
            CallStatus::Ringing => "ringing",
            CallStatus::InProgress => "in-progress",
            CallStatus::Completed => "completed",
            CallStatus::Busy => "busy",
            CallStatus::NoAnswer => "no-answer",
            CallStatus::Failed => "failed",
            CallStatus::Canceled => "canceled",
        }
    }

    /// Whether the call is over.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            CallStatus::Completed | CallStatus::Busy | CallStatus::NoAnswer | CallStatus::Failed | CallStatus::Canceled
        )
    }

    /// The status a response to our INVITE puts the call in:
    ///
    /// | SIP | Status |
    /// |---|---|
    /// | 100 | `initiated` |
    /// | 101–199 (180, 183 …) | `ringing` |
    /// | 2xx | `in-progress` |
    /// | 486 Busy Here, 600 Busy Everywhere | `busy` |
    /// | 408 Request Timeout, 480 Temporarily Unavailable | `no-answer` |
    /// | 487 Request Terminated | `canceled`: the answer to our CANCEL. When vocals sent that CANCEL because the ring timeout passed, the call is `no-answer` instead: the caller knows which it was and decides |
    /// | every other 3xx (redirects are not followed), 4xx, 5xx, 6xx, and anything out of range | `failed` |
    pub fn from_sip(status: u16) -> CallStatus {
        match status {
            100 => CallStatus::Initiated,
            101..=199 => CallStatus::Ringing,
            200..=299 => CallStatus::InProgress,
            486 | 600 => CallStatus::Busy,
            408 | 480 => CallStatus::NoAnswer,
            487 => CallStatus::Canceled,
            _ => CallStatus::Failed,
        }
    }
}

/// What [`call_resource`] and [`callback_params`] need to know of a call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallView {
    /// `CA` and 32 hex digits.
    pub sid: String,
    pub account_sid: String,
    pub to: String,
    pub from: String,
    pub status: CallStatus,
    /// `outbound-api` (placed through Calls.json) or `inbound`.
    pub direction: &'static str,
    /// When the request was accepted.
    pub created: SystemTime,
    /// When the call was answered (`None` until then, and for a call never answered).
    pub started: Option<SystemTime>,
    /// When the call ended.
    pub ended: Option<SystemTime>,
    /// The final SIP response to the INVITE, or the status the call ended with, when there is one.
    pub sip_response_code: Option<u16>,
}

impl CallView {
    /// Whole seconds from the answer to the end; `None` for a call not answered or not over.
    fn duration(&self) -> Option<u64> {
        let (started, ended) = (self.started?, self.ended?);
        Some(ended.duration_since(started).unwrap_or_default().as_secs())
    }

    /// The latest time the view knows of.
    fn updated(&self) -> SystemTime {
        [Some(self.created), self.started, self.ended].into_iter().flatten().max().unwrap_or(self.created)
    }
}

const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// A time as Twilio writes it (RFC 2822, UTC): `Tue, 10 Aug 2010 08:02:17 +0000`. Times before 1970 are
/// written as 1970's first second.
pub fn rfc2822(t: SystemTime) -> String {
    let secs = t.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = crate::store::civil_date(days);
    let weekday = DAYS[days.rem_euclid(7) as usize];
    let month = MONTHS[(month - 1) as usize];
    format!("{weekday}, {day:02} {month} {year:04} {:02}:{:02}:{:02} +0000", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// A number for display as Twilio formats `to_formatted` / `from_formatted`: North American numbers as
/// `(415) 555-0123`, others in E.164 as they are.
fn formatted(number: &str) -> String {
    match number.strip_prefix("+1") {
        Some(n) if n.len() == 10 && n.bytes().all(|b| b.is_ascii_digit()) => {
            format!("({}) {}-{}", &n[..3], &n[3..6], &n[6..])
        }
        _ => number.to_string(),
    }
}

/// The subresources Twilio lists for a call. vocals serves none of them; they are listed so that the resource
/// has Twilio's shape.
const SUBRESOURCES: [(&str, &str); 9] = [
    ("events", "Events"),
    ("notifications", "Notifications"),
    ("payments", "Payments"),
    ("recordings", "Recordings"),
    ("siprec", "Siprec"),
    ("streams", "Streams"),
    ("transcriptions", "Transcriptions"),
    ("user_defined_message_subscriptions", "UserDefinedMessageSubscriptions"),
    ("user_defined_messages", "UserDefinedMessages"),
];

/// Twilio's Call resource for a call: every field Twilio documents, `null` where vocals has nothing to say
/// (price, answered_by, caller_name, parent_call_sid, phone_number_sid, trunk_sid, group_sid, forwarded_from,
/// queue_time). Dates are RFC 2822; `start_time` is the answer; `duration` is whole seconds as a string, `null`
/// until a call that was answered ends (Twilio: "empty for busy, failed, unanswered, or ongoing calls").
pub fn call_resource(view: &CallView) -> Value {
    let base = format!("/{API_VERSION}/Accounts/{}/Calls/{}", view.account_sid, view.sid);
    let subresource_uris: serde_json::Map<String, Value> =
        SUBRESOURCES.iter().map(|(key, path)| (key.to_string(), json!(format!("{base}/{path}.json")))).collect();
    let status = match view.status {
        CallStatus::Initiated => CallStatus::Queued,
        other => other,
    };
    json!({
        "sid": view.sid,
        "date_created": rfc2822(view.created),
        "date_updated": rfc2822(view.updated()),
        "parent_call_sid": null,
        "account_sid": view.account_sid,
        "to": view.to,
        "to_formatted": formatted(&view.to),
        "from": view.from,
        "from_formatted": formatted(&view.from),
        "phone_number_sid": null,
        "status": status.as_str(),
        "start_time": view.started.map(rfc2822),
        "end_time": view.ended.map(rfc2822),
        "duration": view.duration().map(|d| d.to_string()),
        "price": null,
        "price_unit": "USD",
        "direction": view.direction,
        "answered_by": null,
        "api_version": API_VERSION,
        "forwarded_from": null,
        "group_sid": null,
        "caller_name": null,
        "queue_time": null,
        "trunk_sid": null,
        "uri": format!("{base}.json"),
        "subresource_uris": subresource_uris,
    })
}

/// The form parameters of the status callback for `event`, the `sequence`th sent for the call (from 0):
/// `CallSid`, `AccountSid`, `From`, `To`, `CallStatus`, `ApiVersion`, `Direction`, `CallbackSource`
/// (`call-progress-events`), `SequenceNumber`, `Timestamp`, and `CallDuration` (completed only: whole seconds
/// answered, 0 for a call never answered) and `SipResponseCode` where known.
///
/// `CallStatus` is the event's: `initiated`, `ringing`, `in-progress` for answered, and for completed the
/// call's final status (`completed`, `busy`, `no-answer`, `failed`, `canceled`; `completed` if the view is not
/// final yet). `Timestamp` is the event's time as far as the view knows it: the end for completed, the answer
/// for answered, otherwise the latest time in the view; a caller that knows the exact time replaces it before
/// signing.
pub fn callback_params(view: &CallView, sequence: u32, event: StatusEvent) -> Vec<(String, String)> {
    let status = match event {
        StatusEvent::Initiated => CallStatus::Initiated,
        StatusEvent::Ringing => CallStatus::Ringing,
        StatusEvent::Answered => CallStatus::InProgress,
        StatusEvent::Completed if view.status.is_final() => view.status,
        StatusEvent::Completed => CallStatus::Completed,
    };
    let at = match event {
        StatusEvent::Completed => view.ended,
        StatusEvent::Answered => view.started,
        _ => None,
    }
    .unwrap_or_else(|| view.updated());
    let mut params = vec![
        ("CallSid", view.sid.clone()),
        ("AccountSid", view.account_sid.clone()),
        ("From", view.from.clone()),
        ("To", view.to.clone()),
        ("CallStatus", status.as_str().to_string()),
        ("ApiVersion", API_VERSION.to_string()),
        ("Direction", view.direction.to_string()),
        ("CallbackSource", "call-progress-events".to_string()),
        ("SequenceNumber", sequence.to_string()),
        ("Timestamp", rfc2822(at)),
    ];
    if event == StatusEvent::Completed {
        params.push(("CallDuration", view.duration().unwrap_or(0).to_string()));
    }
    if let Some(code) = view.sip_response_code {
        params.push(("SipResponseCode", code.to_string()));
    }
    params.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

#[cfg(test)]
mod tests;
