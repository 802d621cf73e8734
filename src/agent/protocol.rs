//! The agent wire protocol: Twilio Media Streams (bidirectional), vocals as the WebSocket client. Builds the
//! JSON text frames vocals sends (`connected`, `start`, `media`, `dtmf`, `mark`, `stop`) and reads the ones
//! agents send (`media`, `mark`, `clear`). Numbers inside the JSON are strings, as Twilio sends them. Sets the
//! limits an agent's stream must keep ([`Violation`]). Pure functions over strings and bytes: no socket, no clock.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::headers;

/// The largest message (and frame) vocals reads from an agent: 256 KiB, some 24 s of μ-law in one `media`
/// frame. Larger ones close the stream ([`Violation::TooLarge`]) before they are read.
pub const MAX_MESSAGE: usize = 256 * 1024;

/// The longest mark name an agent may send, in bytes.
pub const MAX_MARK_NAME: usize = 256;

/// What the `start` frame tells the agent about the call.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StartInfo {
    pub stream_sid: String,
    pub account_sid: String,
    pub call_sid: String,
    /// `from`, `to`, the agent's id and name, its prompt and settings, passed-on SIP headers: all strings.
    pub custom_parameters: BTreeMap<String, String>,
}

/// The first frame, without a sequence number.
pub fn connected() -> String {
    r#"{"event":"connected","protocol":"Call","version":"1.0.0"}"#.to_string()
}

pub fn start(seq: u64, info: &StartInfo) -> String {
    json!({
        "event": "start",
        "sequenceNumber": seq.to_string(),
        "streamSid": info.stream_sid,
        "start": {
            "streamSid": info.stream_sid,
            "accountSid": info.account_sid,
            "callSid": info.call_sid,
            "tracks": ["inbound"],
            "customParameters": info.custom_parameters,
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        },
    })
    .to_string()
}

/// One 20 ms uplink frame. Written by hand into one pre-sized string: this runs 50 times a second per call.
pub fn media(seq: u64, stream_sid: &str, chunk: u64, timestamp_ms: u64, mulaw: &[u8]) -> String {
    let mut s = String::with_capacity(160 + stream_sid.len() + mulaw.len().div_ceil(3) * 4);
    s.push_str(r#"{"event":"media","sequenceNumber":""#);
    push_u64(&mut s, seq);
    s.push_str(r#"","streamSid":""#);
    push_escaped(&mut s, stream_sid);
    s.push_str(r#"","media":{"track":"inbound","chunk":""#);
    push_u64(&mut s, chunk);
    s.push_str(r#"","timestamp":""#);
    push_u64(&mut s, timestamp_ms);
    s.push_str(r#"","payload":""#);
    STANDARD.encode_string(mulaw, &mut s);
    s.push_str(r#""}}"#);
    s
}

pub fn dtmf(seq: u64, stream_sid: &str, digit: char) -> String {
    json!({
        "event": "dtmf",
        "sequenceNumber": seq.to_string(),
        "streamSid": stream_sid,
        "dtmf": {"track": "inbound_track", "digit": digit.to_string()},
    })
    .to_string()
}

/// The echo of an agent's mark, once its audio has been sent.
pub fn mark(seq: u64, stream_sid: &str, name: &str) -> String {
    json!({"event": "mark", "sequenceNumber": seq.to_string(), "streamSid": stream_sid, "mark": {"name": name}})
        .to_string()
}

/// A vocals extension (not Twilio): how the agent's `transfer` is going. `status` is `accepted`, `refused`
/// (the REFER was answered with an error), `progress`, `completed` or `failed`; `sip_status` the SIP status
/// behind it.
pub fn transfer_status(seq: u64, stream_sid: &str, status: &str, sip_status: u16) -> String {
    json!({
        "event": "transfer",
        "sequenceNumber": seq.to_string(),
        "streamSid": stream_sid,
        "transfer": {"status": status, "sipStatus": sip_status.to_string()},
    })
    .to_string()
}

/// A vocals extension: one of the agent's events was refused (its headers cannot be sent), naming the event
/// and why; nothing was done.
pub fn error(seq: u64, stream_sid: &str, event: &str, message: &str) -> String {
    json!({
        "event": "error",
        "sequenceNumber": seq.to_string(),
        "streamSid": stream_sid,
        "error": {"event": event, "message": message},
    })
    .to_string()
}

/// A vocals extension: the agent's `transfer` refused by the transfer policy before any REFER was sent, and
/// why (`status` `refused`, a `reason` and no `sipStatus`).
pub fn transfer_refused(seq: u64, stream_sid: &str, reason: &str) -> String {
    json!({
        "event": "transfer",
        "sequenceNumber": seq.to_string(),
        "streamSid": stream_sid,
        "transfer": {"status": "refused", "reason": reason},
    })
    .to_string()
}

/// The last frame before vocals closes the socket.
pub fn stop(seq: u64, info: &StartInfo) -> String {
    json!({
        "event": "stop",
        "sequenceNumber": seq.to_string(),
        "streamSid": info.stream_sid,
        "stop": {"accountSid": info.account_sid, "callSid": info.call_sid},
    })
    .to_string()
}

fn push_u64(s: &mut String, n: u64) {
    use std::fmt::Write;
    let _ = write!(s, "{n}");
}

fn push_escaped(s: &mut String, text: &str) {
    // Serialising a str cannot fail; the quotes are trimmed off.
    if let Ok(quoted) = serde_json::to_string(text) {
        s.push_str(&quoted[1..quoted.len() - 1]);
    }
}

/// A frame from the agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Inbound {
    /// μ-law audio to play (any length).
    Media(Vec<u8>),
    Mark(String),
    Clear,
    /// A vocals extension: blind-transfer the caller to this number or URI (SIP REFER), with headers for the
    /// REFER (checked: [`crate::agent::headers`]).
    Transfer {
        to: String,
        headers: Vec<(String, String)>,
    },
    /// A vocals extension: hang up now (SIP BYE), with headers for the BYE.
    Hangup {
        headers: Vec<(String, String)>,
    },
}

/// A limit the agent broke: vocals closes the stream with 1008 (policy violation) and this as the reason, and
/// ends the call as the agent's fault. Without the limits one agent could take the server's memory.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    #[error("more than {} marks pending", crate::media::playout::MAX_PENDING_MARKS)]
    TooManyMarks,
    #[error("a mark name longer than {} bytes", MAX_MARK_NAME)]
    MarkName,
    /// A message or frame of `size` bytes, past [`MAX_MESSAGE`].
    #[error("a message of {size} bytes, over the {}-byte limit", MAX_MESSAGE)]
    TooLarge { size: usize },
}

impl Violation {
    /// A stable name for counters.
    pub fn kind(&self) -> &'static str {
        match self {
            Violation::TooManyMarks => "marks_pending",
            Violation::MarkName => "mark_name",
            Violation::TooLarge { .. } => "message_size",
        }
    }
}

/// Why a frame from the agent was ignored (logged and counted, never fatal).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Ignored {
    #[error("not JSON: {0}")]
    BadJson(String),
    #[error("unknown event {0:?}")]
    UnknownEvent(String),
    #[error("streamSid {0:?} is not this call's")]
    WrongStream(String),
    #[error("{0} event without its {0} object")]
    Incomplete(&'static str),
    #[error("media payload is not base64")]
    BadPayload,
    #[error("a binary frame")]
    Binary,
    /// A `hangup` or `transfer` whose headers cannot be sent: the agent gets an `error` event saying why, and
    /// the event is not carried out.
    #[error("{event}: {why}")]
    Headers { event: &'static str, why: String },
}

impl Ignored {
    /// A stable name for counters.
    pub fn kind(&self) -> &'static str {
        match self {
            Ignored::BadJson(_) => "bad_json",
            Ignored::UnknownEvent(_) => "unknown_event",
            Ignored::WrongStream(_) => "wrong_stream",
            Ignored::Incomplete(_) => "incomplete",
            Ignored::BadPayload => "bad_payload",
            Ignored::Binary => "binary",
            Ignored::Headers { .. } => "headers",
        }
    }
}

#[derive(Deserialize)]
struct Frame {
    event: String,
    #[serde(rename = "streamSid")]
    stream_sid: Option<String>,
    media: Option<MediaBody>,
    mark: Option<MarkBody>,
    transfer: Option<TransferBody>,
    hangup: Option<HangupBody>,
}

#[derive(Deserialize)]
struct TransferBody {
    to: String,
    #[serde(default)]
    headers: Map<String, Value>,
}

#[derive(Deserialize, Default)]
struct HangupBody {
    #[serde(default)]
    headers: Map<String, Value>,
}

#[derive(Deserialize)]
struct MediaBody {
    payload: String,
}

#[derive(Deserialize)]
struct MarkBody {
    name: Value,
}

/// Reads one text frame from the agent. A frame naming another stream is refused; one naming none is accepted
/// (some agents leave it out).
pub fn parse(text: &str, stream_sid: &str) -> Result<Inbound, Ignored> {
    let frame: Frame = serde_json::from_str(text).map_err(|e| Ignored::BadJson(e.to_string()))?;
    if let Some(sid) = frame.stream_sid.filter(|s| s != stream_sid) {
        return Err(Ignored::WrongStream(sid));
    }
    match frame.event.as_str() {
        "media" => {
            let media = frame.media.ok_or(Ignored::Incomplete("media"))?;
            STANDARD.decode(media.payload.as_bytes()).map(Inbound::Media).map_err(|_| Ignored::BadPayload)
        }
        "mark" => {
            let name = frame.mark.ok_or(Ignored::Incomplete("mark"))?.name;
            Ok(Inbound::Mark(match name {
                Value::String(s) => s,
                other => other.to_string(),
            }))
        }
        "clear" => Ok(Inbound::Clear),
        "transfer" => {
            let body = frame.transfer.ok_or(Ignored::Incomplete("transfer"))?;
            let headers = headers::check(&body.headers).map_err(|why| Ignored::Headers { event: "transfer", why })?;
            Ok(Inbound::Transfer { to: body.to, headers })
        }
        "hangup" => {
            let body = frame.hangup.unwrap_or_default();
            let headers = headers::check(&body.headers).map_err(|why| Ignored::Headers { event: "hangup", why })?;
            Ok(Inbound::Hangup { headers })
        }
        other => Err(Ignored::UnknownEvent(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> StartInfo {
        let mut custom_parameters = BTreeMap::new();
        custom_parameters.insert("from".to_string(), "+12125550100".to_string());
        StartInfo { stream_sid: "MZ0123".into(), account_sid: "AC1".into(), call_sid: "CA1".into(), custom_parameters }
    }

    #[test]
    fn outbound_frames_have_twilios_shape_with_numbers_as_strings() {
        let v: Value = serde_json::from_str(&connected()).unwrap();
        assert_eq!(v, json!({"event":"connected","protocol":"Call","version":"1.0.0"}));
        let v: Value = serde_json::from_str(&start(1, &info())).unwrap();
        assert_eq!(v["sequenceNumber"], "1");
        assert_eq!(v["start"]["streamSid"], "MZ0123");
        assert_eq!(v["start"]["tracks"], json!(["inbound"]));
        assert_eq!(v["start"]["customParameters"]["from"], "+12125550100");
        assert_eq!(v["start"]["mediaFormat"], json!({"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}));
        let v: Value = serde_json::from_str(&media(3, "MZ0123", 2, 40, &[0xFF; 160])).unwrap();
        assert_eq!(v["event"], "media");
        assert_eq!(v["sequenceNumber"], "3");
        assert_eq!(v["streamSid"], "MZ0123");
        assert_eq!(v["media"]["track"], "inbound");
        assert_eq!((v["media"]["chunk"].as_str(), v["media"]["timestamp"].as_str()), (Some("2"), Some("40")));
        let payload = STANDARD.decode(v["media"]["payload"].as_str().unwrap()).unwrap();
        assert_eq!(payload, vec![0xFF; 160]);
        let v: Value = serde_json::from_str(&dtmf(5, "MZ0123", '#')).unwrap();
        assert_eq!(v["dtmf"], json!({"track":"inbound_track","digit":"#"}));
        let v: Value = serde_json::from_str(&mark(4, "MZ0123", "x")).unwrap();
        assert_eq!(v["mark"]["name"], "x");
        let v: Value = serde_json::from_str(&stop(9, &info())).unwrap();
        assert_eq!(v["stop"], json!({"accountSid":"AC1","callSid":"CA1"}));
    }

    #[test]
    fn agent_frames_are_read_as_twilio_agents_send_them() {
        let audio = STANDARD.encode([1u8, 2, 3]);
        let m = format!(r#"{{"event":"media","streamSid":"MZ0123","media":{{"payload":"{audio}"}}}}"#);
        assert_eq!(parse(&m, "MZ0123"), Ok(Inbound::Media(vec![1, 2, 3])));
        let mark = r#"{"event":"mark","streamSid":"MZ0123","mark":{"name":"reply-1"}}"#;
        assert_eq!(parse(mark, "MZ0123"), Ok(Inbound::Mark("reply-1".into())));
        assert_eq!(parse(r#"{"event":"clear","streamSid":"MZ0123"}"#, "MZ0123"), Ok(Inbound::Clear));
        assert_eq!(parse(r#"{"event":"clear"}"#, "MZ0123"), Ok(Inbound::Clear), "streamSid may be left out");
        let transfer = r#"{"event":"transfer","streamSid":"MZ0123","transfer":{"to":"+14155550100"}}"#;
        assert_eq!(parse(transfer, "MZ0123"), Ok(Inbound::Transfer { to: "+14155550100".into(), headers: vec![] }));
        let with = r#"{"event":"transfer","transfer":{"to":"+14155550100","headers":{"X-Ticket":"4711"}}}"#;
        let headers = vec![("X-Ticket".to_string(), "4711".to_string())];
        assert_eq!(
            parse(with, "MZ0123"),
            Ok(Inbound::Transfer { to: "+14155550100".into(), headers: headers.clone() })
        );
        assert_eq!(parse(r#"{"event":"hangup"}"#, "MZ0123"), Ok(Inbound::Hangup { headers: vec![] }));
        let hangup = r#"{"event":"hangup","hangup":{"headers":{"X-Ticket":"4711"}}}"#;
        assert_eq!(parse(hangup, "MZ0123"), Ok(Inbound::Hangup { headers }));
        let via = r#"{"event":"hangup","hangup":{"headers":{"Via":"SIP/2.0/UDP x"}}}"#;
        assert!(
            matches!(parse(via, "MZ0123"), Err(Ignored::Headers { event: "hangup", why }) if why.contains("\"Via\""))
        );
        let v: Value = serde_json::from_str(&transfer_status(7, "MZ0123", "accepted", 202)).unwrap();
        assert_eq!(v["transfer"], json!({"status": "accepted", "sipStatus": "202"}));
        let v: Value = serde_json::from_str(&transfer_refused(8, "MZ0123", "at most 3 transfers per call")).unwrap();
        assert_eq!((v["event"].as_str(), v["sequenceNumber"].as_str()), (Some("transfer"), Some("8")));
        assert_eq!(v["transfer"], json!({"status": "refused", "reason": "at most 3 transfers per call"}));
    }

    #[test]
    fn bad_frames_are_refused_with_a_reason() {
        assert!(matches!(parse("{not json", "MZ1"), Err(Ignored::BadJson(_))));
        assert_eq!(parse(r#"{"event":"dance"}"#, "MZ1"), Err(Ignored::UnknownEvent("dance".into())));
        assert_eq!(parse(r#"{"event":"clear","streamSid":"MZ2"}"#, "MZ1"), Err(Ignored::WrongStream("MZ2".into())));
        assert_eq!(parse(r#"{"event":"media"}"#, "MZ1"), Err(Ignored::Incomplete("media")));
        assert_eq!(parse(r#"{"event":"media","media":{"payload":"!!"}}"#, "MZ1"), Err(Ignored::BadPayload));
    }

    #[test]
    fn violations_say_which_limit_in_a_close_reason_that_fits() {
        assert_eq!(Violation::TooManyMarks.to_string(), "more than 1024 marks pending");
        assert_eq!(Violation::MarkName.to_string(), "a mark name longer than 256 bytes");
        let large = Violation::TooLarge { size: 300_000 };
        assert_eq!(large.to_string(), "a message of 300000 bytes, over the 262144-byte limit");
        // A close frame's reason is at most 123 bytes (RFC 6455 §5.5).
        for v in [Violation::TooManyMarks, Violation::MarkName, Violation::TooLarge { size: usize::MAX }] {
            assert!(v.to_string().len() <= 123, "{v}");
        }
    }
}
