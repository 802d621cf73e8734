//! Headers an agent adds to what vocals sends for its call: the BYE of its `hangup` event and the REFER of its
//! `transfer` (both vocals extensions of Media Streams, `{"headers": {"X-Ticket": "4711"}}`). Only `X-`
//! headers and `User-to-User` (RFC 7433) are taken: a header that routes, authenticates or frames the message
//! (Via, Route, Contact, Content-Length …) would let an agent rewrite vocals' SIP. Each is checked as SIP
//! writes it (a token name, a value with no line break or control character) and bounded, and the first one
//! refused is named in the `error` event the agent gets (the event itself is not carried out).

use serde_json::{Map, Value};

/// Most headers one event may add.
pub const MAX_HEADERS: usize = 16;
/// Longest header name.
pub const MAX_NAME: usize = 64;
/// Longest value: a User-to-User of RFC 7433's 128 octets hex-encoded is 256 characters, with its parameters.
pub const MAX_VALUE: usize = 512;
/// Most bytes the names and values of one event add up to.
pub const MAX_TOTAL: usize = 2048;

/// The checked headers, in name order; or why one is refused, naming it.
pub fn check(headers: &Map<String, Value>) -> Result<Vec<(String, String)>, String> {
    if headers.len() > MAX_HEADERS {
        return Err(format!("{} headers: at most {MAX_HEADERS}", headers.len()));
    }
    let mut total = 0;
    let mut out = Vec::with_capacity(headers.len());
    for (name, value) in headers {
        let shown: String = name.chars().take(MAX_NAME).collect();
        // Bytes, not a str slice: a name may start with a multi-byte character (the fuzzer found that one).
        let allowed = name.len() > 2 && name.as_bytes()[..2].eq_ignore_ascii_case(b"X-")
            || name.eq_ignore_ascii_case("User-to-User");
        if !allowed {
            return Err(format!("header {shown:?} is not allowed: only X- headers and User-to-User"));
        }
        if name.len() > MAX_NAME || !name.bytes().all(is_token) {
            return Err(format!("header {shown:?}: a name is a SIP token of at most {MAX_NAME} characters"));
        }
        let Value::String(value) = value else {
            return Err(format!("header {shown:?}: its value must be a string"));
        };
        if value.len() > MAX_VALUE {
            return Err(format!("header {shown:?}: a value of {} bytes, over {MAX_VALUE}", value.len()));
        }
        if value.chars().any(|c| c.is_control() && c != '\t') {
            return Err(format!("header {shown:?}: its value holds a line break or a control character"));
        }
        total += name.len() + value.len();
        if total > MAX_TOTAL {
            return Err(format!("the headers add up to over {MAX_TOTAL} bytes"));
        }
        out.push((name.clone(), value.trim().to_string()));
    }
    Ok(out)
}

/// RFC 3261's `token` characters.
fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn a_name_starting_with_a_multibyte_character_is_refused_not_a_panic() {
        // Found by the agent_frame fuzz target: slicing the name as a str at byte 2 panicked.
        let e = check(&map(json!({"X\u{4dd}bOutcome": "1"}))).unwrap_err();
        assert!(e.contains("is not allowed"), "{e}");
        let e = check(&map(json!({"\u{4dd}": "1"}))).unwrap_err();
        assert!(e.contains("is not allowed"), "{e}");
    }

    #[test]
    fn x_headers_and_user_to_user_pass_and_everything_else_is_named() {
        let ok = check(&map(json!({"X-Ticket": "4711", "User-to-User": "56a390f3d2b7310023a2;encoding=hex"})));
        assert_eq!(ok.unwrap().len(), 2);
        for (headers, says) in [
            (json!({"Via": "SIP/2.0/UDP evil"}), "\"Via\" is not allowed"),
            (json!({"Contact": "<sip:x>"}), "\"Contact\" is not allowed"),
            (json!({"X-": "a"}), "\"X-\" is not allowed"),
            (json!({"X-Bad Name": "a"}), "\"X-Bad Name\": a name is a SIP token"),
            (json!({"X-Inject": "a\r\nVia: x"}), "line break"),
            (json!({"X-Nul": "a\u{0}"}), "control"),
            (json!({"X-Number": 5}), "must be a string"),
            (json!({"X-Long": "a".repeat(MAX_VALUE + 1)}), "over 512"),
        ] {
            let e = check(&map(headers.clone())).unwrap_err();
            assert!(e.contains(says), "{headers}: {e}");
        }
        let many: Map<String, Value> = (0..=MAX_HEADERS).map(|i| (format!("X-H{i}"), json!("v"))).collect();
        assert!(check(&many).unwrap_err().contains("at most 16"));
        let big: Map<String, Value> = (0..5).map(|i| (format!("X-H{i}"), json!("v".repeat(500)))).collect();
        assert!(check(&big).unwrap_err().contains("over 2048"));
    }
}
