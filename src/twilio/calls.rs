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
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm), as store::now_rfc3339.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
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
mod tests {
    use super::*;
    use crate::twilio::twiml::StreamTwiml;

    const TWIML: &str = r#"<Response><Connect><Stream url="wss://agent.example.com/media"/></Connect></Response>"#;

    fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
    }

    fn minimal() -> Vec<(String, String)> {
        form(&[("To", "+14155550123"), ("From", "+12125550100"), ("Twiml", TWIML)])
    }

    fn with(extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut f = minimal();
        f.extend(form(extra));
        f
    }

    fn without(name: &str) -> Vec<(String, String)> {
        minimal().into_iter().filter(|(n, _)| n != name).collect()
    }

    fn refused(f: &[(String, String)]) -> ApiError {
        parse_create(f).expect_err("refused")
    }

    #[test]
    fn a_minimal_request_takes_twilios_defaults() {
        let c = parse_create(&minimal()).unwrap();
        assert_eq!(c.to.as_str(), "+14155550123");
        assert_eq!(c.from.as_str(), "+12125550100");
        let stream = StreamTwiml { url: "wss://agent.example.com/media".into(), name: None, parameters: vec![] };
        assert_eq!(c.twiml, Some(Twiml::Connect(stream)));
        assert_eq!((c.url, c.method), (None, HttpMethod::Post));
        assert_eq!(c.timeout, Duration::from_secs(60));
        assert_eq!((c.status_callback, c.status_method), (None, HttpMethod::Post));
        assert_eq!(c.status_events, vec![StatusEvent::Completed]);
    }

    /// The form twilio-python's `client.calls.create(to=, from_=, twiml=, status_callback=,
    /// status_callback_event=[…], timeout=)` sends: a list as a repeated field.
    #[test]
    fn twilio_pythons_request_shape() {
        let f = with(&[
            ("StatusCallback", "https://agent.example.com/status?call=1"),
            ("StatusCallbackEvent", "initiated"),
            ("StatusCallbackEvent", "ringing"),
            ("StatusCallbackEvent", "answered"),
            ("StatusCallbackEvent", "completed"),
            ("StatusCallbackMethod", "POST"),
            ("Timeout", "25"),
            ("Record", "false"),
        ]);
        let c = parse_create(&f).unwrap();
        assert_eq!(c.status_callback.as_deref(), Some("https://agent.example.com/status?call=1"));
        use StatusEvent::*;
        assert_eq!(c.status_events, vec![Initiated, Ringing, Answered, Completed]);
        assert_eq!(c.timeout, Duration::from_secs(25));
    }

    #[test]
    fn status_events_space_separated_in_any_order_and_case_once_each() {
        let f = with(&[("StatusCallbackEvent", "completed  Ringing"), ("StatusCallbackEvent", "ringing,answered")]);
        use StatusEvent::*;
        assert_eq!(parse_create(&f).unwrap().status_events, vec![Ringing, Answered, Completed]);
    }

    #[test]
    fn url_with_method_and_twiml_ignored_beside_it() {
        let f = with(&[("Url", "https://crm.example.com/twiml"), ("Method", "get")]);
        let c = parse_create(&f).unwrap();
        assert_eq!(c.url.as_deref(), Some("https://crm.example.com/twiml"));
        assert_eq!((c.method, c.twiml), (HttpMethod::Get, None));
        // Even a Twiml that would be refused, as Twilio ignores it.
        let mut f = without("Twiml");
        f.extend(form(&[("Url", "http://10.0.0.5:8000/twiml"), ("Twiml", "<Say>")]));
        assert!(parse_create(&f).is_ok());
    }

    #[test]
    fn to_and_from_missing_or_invalid() {
        assert_eq!(refused(&without("To")).code, 21201);
        assert_eq!(refused(&without("From")).code, 21213);
        let blank: Vec<_> =
            minimal().into_iter().map(|(n, v)| if n == "To" { (n, " ".into()) } else { (n, v) }).collect();
        assert_eq!(refused(&blank).code, 21201);
        for bad in ["4155550123", "+141555", "sip:alice@example.com", "client:alice", "+0123456789", "+1415555012x"] {
            let mut f = without("To");
            f.push(("To".into(), bad.into()));
            let e = refused(&f);
            assert_eq!((e.status, e.code), (400, 21211), "{bad}");
            assert!(e.message.contains("'To'") && e.message.contains(bad), "{}", e.message);
            let mut f = without("From");
            f.push(("From".into(), bad.into()));
            assert_eq!(refused(&f).code, 21212, "{bad}");
        }
        let e = refused(&with(&[("To", "+14155550199")]));
        assert_eq!(e.code, 21211);
        assert!(e.message.contains("more than once"));
    }

    #[test]
    fn instructions_are_required() {
        let e = refused(&without("Twiml"));
        assert_eq!((e.status, e.code), (400, 21200));
        assert!(e.message.contains("Twiml or Url"));
        let mut f = without("Twiml");
        f.push(("ApplicationSid".into(), "AP123".into()));
        assert!(refused(&f).message.contains("ApplicationSid"));
        let mut f = without("Twiml");
        f.push(("Twiml".into(), String::new()));
        assert_eq!(refused(&f).code, 21200);
    }

    #[test]
    fn url_must_be_absolute_http() {
        for bad in [
            "/twiml",
            "twiml.xml",
            "ftp://example.com/x",
            "wss://agent.example.com/",
            "https://",
            "https://my_host.example.com/",
            "https:///path",
        ] {
            let mut f = without("Twiml");
            f.push(("Url".into(), bad.into()));
            let e = refused(&f);
            assert_eq!(e.code, 21205, "{bad}");
            assert!(e.message.starts_with("Url is not a valid URL"), "{}", e.message);
        }
        let mut f = without("Twiml");
        f.push(("Url".into(), format!("https://example.com/{}", "a".repeat(MAX_URL_CHARS))));
        assert_eq!(refused(&f).code, 21205);
    }

    #[test]
    fn methods_are_get_or_post() {
        let e = refused(&with(&[("Method", "PUT")]));
        assert_eq!(e.code, 21209);
        assert!(e.message.contains("Method \"PUT\""));
        let e = refused(&with(&[("StatusCallbackMethod", "DELETE")]));
        assert_eq!(e.code, 21209);
        assert!(e.message.contains("StatusCallbackMethod"));
        assert_eq!(parse_create(&with(&[("StatusCallbackMethod", "GET")])).unwrap().status_method, HttpMethod::Get);
    }

    #[test]
    fn timeout_is_1_to_600_whole_seconds() {
        for ok in ["1", "600", " 30 "] {
            assert!(parse_create(&with(&[("Timeout", ok)])).is_ok(), "{ok}");
        }
        for bad in ["0", "601", "-5", "1.5", "ten", "99999999999999999999999"] {
            let e = refused(&with(&[("Timeout", bad)]));
            assert_eq!(e.code, 21208, "{bad}");
            assert!(e.message.contains("Timeout"));
        }
    }

    #[test]
    fn status_callback_and_events_are_checked() {
        let e = refused(&with(&[("StatusCallback", "not a url")]));
        assert_eq!(e.code, 21609);
        assert!(e.message.starts_with("StatusCallback is not a valid URL"));
        let e = refused(&with(&[("StatusCallback", "https://a.example/"), ("StatusCallbackEvent", "hangup")]));
        assert_eq!(e.code, 21626);
        assert!(e.message.contains("\"hangup\""));
        // Events without a callback URL are kept (nothing is sent); an empty callback is none.
        let c = parse_create(&with(&[("StatusCallback", ""), ("StatusCallbackEvent", "ringing")])).unwrap();
        assert_eq!((c.status_callback, c.status_events), (None, vec![StatusEvent::Ringing]));
    }

    #[test]
    fn twiml_is_parsed_and_bounded() {
        let mut f = without("Twiml");
        f.push(("Twiml".into(), "<Response><Say>Hi</Say></Response>".into()));
        let e = refused(&f);
        assert_eq!((e.status, e.code), (400, 12200));
        assert!(e.message.contains("<Say>"), "{}", e.message);
        let mut f = without("Twiml");
        f.push(("Twiml".into(), "<Response>".into()));
        assert_eq!(refused(&f).code, 12100);
        let mut f = without("Twiml");
        f.push(("Twiml".into(), format!("<Response>{}<Hangup/></Response>", " ".repeat(MAX_TWIML_CHARS))));
        assert_eq!(refused(&f).code, 32018);
        let mut f = without("Twiml");
        f.push(("Twiml".into(), "<Response><Hangup/></Response>".into()));
        assert_eq!(parse_create(&f).unwrap().twiml, Some(Twiml::Hangup));
    }

    #[test]
    fn hostile_forms_are_refused_without_panicking() {
        let big = "9".repeat(1 << 20);
        let mut f = without("To");
        f.push(("To".into(), big.clone()));
        assert_eq!(refused(&f).code, 21211);
        assert_eq!(refused(&with(&[("Timeout", &big)])).code, 21208);
        let events: Vec<(String, String)> =
            (0..10_000).map(|_| ("StatusCallbackEvent".to_string(), "ringing completed".to_string())).collect();
        let mut f = minimal();
        f.extend(events);
        assert_eq!(parse_create(&f).unwrap().status_events.len(), 2);
        let e = refused(&with(&[("StatusCallbackEvent", &"x".repeat(100_000))]));
        assert!(e.message.len() < 200, "the message does not echo the whole value");
        for weird in ["\u{0}", "+1415\u{202e}5550123", "％", "\r\n"] {
            let mut f = without("From");
            f.push(("From".into(), weird.into()));
            let _ = parse_create(&f);
        }
        assert_eq!(parse_create(&[]).unwrap_err().code, 21201);
    }

    #[test]
    fn errors_are_twilios_json() {
        let e = refused(&without("To"));
        assert_eq!(
            e.json(),
            json!({
                "code": 21201,
                "message": "Required parameter To is missing",
                "more_info": "https://www.twilio.com/docs/errors/21201",
                "status": 400,
            })
        );
        assert!(e.to_string().contains("21201"));
    }

    #[test]
    fn sip_responses_map_to_twilios_statuses() {
        use CallStatus::*;
        for (sip, status) in [
            (100, Initiated),
            (180, Ringing),
            (183, Ringing),
            (200, InProgress),
            (486, Busy),
            (600, Busy),
            (480, NoAnswer),
            (408, NoAnswer),
            (487, Canceled),
            (302, Failed),
            (403, Failed),
            (404, Failed),
            (503, Failed),
            (603, Failed),
            (0, Failed),
            (999, Failed),
        ] {
            assert_eq!(CallStatus::from_sip(sip), status, "{sip}");
        }
        let words: Vec<_> = [Queued, Initiated, Ringing, InProgress, Completed, Busy, NoAnswer, Failed, Canceled]
            .map(CallStatus::as_str)
            .into();
        assert_eq!(
            words,
            ["queued", "initiated", "ringing", "in-progress", "completed", "busy", "no-answer", "failed", "canceled"]
        );
    }

    #[test]
    fn dates_as_twilio_writes_them() {
        // Twilio's own example.
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_281_427_337);
        assert_eq!(rfc2822(t), "Tue, 10 Aug 2010 08:02:17 +0000");
        assert_eq!(rfc2822(SystemTime::UNIX_EPOCH), "Thu, 01 Jan 1970 00:00:00 +0000");
        // A leap day.
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_709_164_800);
        assert_eq!(rfc2822(t), "Thu, 29 Feb 2024 00:00:00 +0000");
        assert_eq!(rfc2822(SystemTime::UNIX_EPOCH - Duration::from_secs(5)), "Thu, 01 Jan 1970 00:00:00 +0000");
    }

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_281_427_337 + secs)
    }

    fn view(status: CallStatus) -> CallView {
        CallView {
            sid: "CA0123456789abcdef0123456789abcdef".into(),
            account_sid: "AC0123456789abcdef0123456789abcdef".into(),
            to: "+14155550123".into(),
            from: "+442071234567".into(),
            status,
            direction: "outbound-api",
            created: at(0),
            started: None,
            ended: None,
            sip_response_code: None,
        }
    }

    #[test]
    fn a_queued_calls_resource() {
        let r = call_resource(&view(CallStatus::Queued));
        let base = "/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Calls/CA0123456789abcdef0123456789abcdef";
        assert_eq!(r["sid"], "CA0123456789abcdef0123456789abcdef");
        assert_eq!(r["status"], "queued");
        assert_eq!(r["direction"], "outbound-api");
        assert_eq!(r["api_version"], "2010-04-01");
        assert_eq!(r["date_created"], "Tue, 10 Aug 2010 08:02:17 +0000");
        assert_eq!(r["date_updated"], r["date_created"]);
        assert_eq!(
            (r["to_formatted"].as_str(), r["from_formatted"].as_str()),
            (Some("(415) 555-0123"), Some("+442071234567"))
        );
        for key in ["start_time", "end_time", "duration", "price", "answered_by", "parent_call_sid", "caller_name"] {
            assert!(r[key].is_null(), "{key}");
        }
        assert_eq!(r["uri"], format!("{base}.json"));
        assert_eq!(r["subresource_uris"]["streams"], format!("{base}/Streams.json"));
        assert_eq!(r["subresource_uris"].as_object().unwrap().len(), SUBRESOURCES.len());
        // Every field twilio-python's CallInstance reads.
        for key in [
            "sid",
            "date_created",
            "date_updated",
            "parent_call_sid",
            "account_sid",
            "to",
            "to_formatted",
            "from",
            "from_formatted",
            "phone_number_sid",
            "status",
            "start_time",
            "end_time",
            "duration",
            "price",
            "price_unit",
            "direction",
            "answered_by",
            "api_version",
            "forwarded_from",
            "group_sid",
            "caller_name",
            "queue_time",
            "trunk_sid",
            "uri",
            "subresource_uris",
        ] {
            assert!(r.get(key).is_some(), "{key}");
        }
        assert_eq!(r.as_object().unwrap().len(), 26);
        // Initiated is not a resource status.
        assert_eq!(call_resource(&view(CallStatus::Initiated))["status"], "queued");
    }

    #[test]
    fn a_completed_calls_resource_has_its_times_and_duration() {
        let v = CallView {
            started: Some(at(7)),
            ended: Some(at(70)),
            sip_response_code: Some(200),
            ..view(CallStatus::Completed)
        };
        let r = call_resource(&v);
        assert_eq!(r["status"], "completed");
        assert_eq!(r["start_time"], "Tue, 10 Aug 2010 08:02:24 +0000");
        assert_eq!(r["end_time"], "Tue, 10 Aug 2010 08:03:27 +0000");
        assert_eq!(r["date_updated"], r["end_time"]);
        assert_eq!(r["duration"], "63");
        // Busy: never answered, no duration.
        let busy = CallView { ended: Some(at(3)), sip_response_code: Some(486), ..view(CallStatus::Busy) };
        let r = call_resource(&busy);
        assert_eq!((r["status"].as_str(), r["duration"].is_null()), (Some("busy"), true));
    }

    fn get<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
        params.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    #[test]
    fn callbacks_carry_twilios_parameters() {
        let ringing = callback_params(&view(CallStatus::Ringing), 1, StatusEvent::Ringing);
        let names: Vec<_> = ringing.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "CallSid",
                "AccountSid",
                "From",
                "To",
                "CallStatus",
                "ApiVersion",
                "Direction",
                "CallbackSource",
                "SequenceNumber",
                "Timestamp"
            ]
        );
        assert_eq!(get(&ringing, "CallStatus"), Some("ringing"));
        assert_eq!(get(&ringing, "CallbackSource"), Some("call-progress-events"));
        assert_eq!(get(&ringing, "SequenceNumber"), Some("1"));
        assert_eq!(get(&ringing, "Timestamp"), Some("Tue, 10 Aug 2010 08:02:17 +0000"));
        assert_eq!(get(&ringing, "Direction"), Some("outbound-api"));

        let answered = CallView { started: Some(at(5)), ..view(CallStatus::InProgress) };
        let p = callback_params(&answered, 2, StatusEvent::Answered);
        assert_eq!(
            (get(&p, "CallStatus"), get(&p, "Timestamp")),
            (Some("in-progress"), Some("Tue, 10 Aug 2010 08:02:22 +0000"))
        );
        assert_eq!(get(&p, "CallDuration"), None);

        let done = CallView { ended: Some(at(65)), sip_response_code: Some(200), ..answered };
        let p = callback_params(&done, 3, StatusEvent::Completed);
        assert_eq!(get(&p, "CallStatus"), Some("completed"), "a view not final yet completes as completed");
        assert_eq!(get(&p, "CallDuration"), Some("60"));
        assert_eq!(get(&p, "SipResponseCode"), Some("200"));
        assert_eq!(get(&p, "Timestamp"), Some("Tue, 10 Aug 2010 08:03:22 +0000"));
        let initiated = callback_params(&view(CallStatus::Initiated), 0, StatusEvent::Initiated);
        assert_eq!(get(&initiated, "CallStatus"), Some("initiated"));
    }

    #[test]
    fn the_completed_callback_says_how_the_call_ended() {
        for (status, sip) in [
            (CallStatus::Busy, 486),
            (CallStatus::NoAnswer, 487),
            (CallStatus::Failed, 503),
            (CallStatus::Canceled, 487),
        ] {
            let v = CallView { ended: Some(at(30)), sip_response_code: Some(sip), ..view(status) };
            let p = callback_params(&v, 4, StatusEvent::Completed);
            assert_eq!(get(&p, "CallStatus"), Some(status.as_str()));
            assert_eq!(get(&p, "CallDuration"), Some("0"));
            assert_eq!(get(&p, "SipResponseCode"), Some(sip.to_string().as_str()));
        }
    }

    #[test]
    fn callbacks_sign_and_verify_as_twilio_validators_expect() {
        let p = callback_params(&view(CallStatus::Ringing), 1, StatusEvent::Ringing);
        let url = "https://agent.example.com/status?call=1";
        let signature = crate::twilio::signature::sign("token", url, &p);
        assert!(crate::twilio::signature::verify("token", url, &p, &signature));
    }
}
