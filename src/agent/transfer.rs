//! The transfer policy, sans-IO: which targets an agent's `transfer` may send the caller to, decided before
//! any REFER leaves (the trunk carries the transfer out, at the account's cost). The agent may be a
//! prompt-injected LLM, so nothing it names is trusted: a number must start with an allowed E.164 prefix (by
//! default the caller's own country code) and with no denied one (by default +1900 and +1976, NANP premium
//! rate); a `sip:` URI must name an allowed domain (by default none), and carry no headers (`?Replaces=...`)
//! and no parameter but `transport` and `user`; a call makes at most `max_per_call` transfers. The server's
//! policy is `[transfer]`; an agent's own settings replace it field by field.

use std::fmt;

use bytes::Bytes;
use serde_json::Value;

use crate::e164::E164;
use crate::sip::message::{Host, Uri};

/// How an agent's transfer is going, as its stream is told (`transfer` events' `status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransferStatus {
    /// The peer took our REFER (2xx).
    Accepted,
    /// The peer refused our REFER.
    Refused,
    /// A NOTIFY with a provisional status of the transfer target.
    Progress,
    /// The transfer target answered.
    Completed,
    /// The transfer target did not answer (a final non-2xx).
    Failed,
}

impl TransferStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TransferStatus::Accepted => "accepted",
            TransferStatus::Refused => "refused",
            TransferStatus::Progress => "progress",
            TransferStatus::Completed => "completed",
            TransferStatus::Failed => "failed",
        }
    }

    /// What a NOTIFY's sipfrag status says of the transfer (RFC 3515 §2.4.5).
    pub fn of_notify(sip_status: u16) -> TransferStatus {
        match sip_status {
            ..200 => TransferStatus::Progress,
            200..300 => TransferStatus::Completed,
            _ => TransferStatus::Failed,
        }
    }
}

/// The most transfers `max_per_call` may allow.
pub const MAX_PER_CALL: u32 = 100;

/// The keys of a transfer policy, in the config file and in an agent's `settings.transfer`.
pub const KEYS: [&str; 4] = ["allow_prefixes", "deny_prefixes", "allow_domains", "max_per_call"];

/// The start of E.164 numbers: `+` and 1 to 15 digits, the first not 0 (`+1`, `+44`, `+1900`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prefix(String);

impl Prefix {
    pub fn parse(s: &str) -> Result<Prefix, String> {
        let s = s.trim();
        let digits = s.strip_prefix('+').unwrap_or_default();
        let valid =
            (1..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0');
        if valid { Ok(Prefix(s.to_string())) } else { Err(format!("{s:?} is not an E.164 prefix like +1 or +44")) }
    }

    pub fn matches(&self, number: &E164) -> bool {
        number.as_str().starts_with(&self.0)
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A host `sip:` targets may name, lowercase: a DNS name or an IPv4 address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Domain(String);

impl Domain {
    pub fn parse(s: &str) -> Result<Domain, String> {
        let d = s.trim().to_ascii_lowercase();
        let valid = !d.is_empty()
            && d.len() <= 253
            && d.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
            && !d.starts_with(['.', '-'])
            && !d.ends_with(['.', '-']);
        if valid { Ok(Domain(d)) } else { Err(format!("{s:?} is not a host name like pbx.example.com")) }
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `transfer.deny_prefixes`' default: NANP premium rate (900, 976), and the NANP countries outside the US and
/// Canada, whose numbers are +1 but cost international rates: the classic toll-fraud destinations.
pub const DEFAULT_DENY_PREFIXES: &str = "+1900,+1976,+1242,+1246,+1264,+1268,+1284,+1345,+1441,+1473,+1649,+1658,\
                                         +1664,+1721,+1758,+1767,+1784,+1809,+1829,+1849,+1868,+1869,+1876";

/// Which transfers a call's agent may make.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransferPolicy {
    /// A number must start with one of these; empty: with the caller's own country code.
    pub allow_prefixes: Vec<Prefix>,
    /// A number starting with one of these is refused, allowed or not.
    pub deny_prefixes: Vec<Prefix>,
    /// The hosts `sip:` targets may name; empty: no `sip:` target.
    pub allow_domains: Vec<Domain>,
    /// REFERs one call may send (0: none).
    pub max_per_call: u32,
}

impl Default for TransferPolicy {
    /// The server's default: numbers in the caller's country but NANP premium rate and the NANP countries
    /// outside the US and Canada (`transfer.deny_prefixes`' default), no SIP domain, 3 a call.
    fn default() -> TransferPolicy {
        TransferPolicy {
            allow_prefixes: Vec::new(),
            deny_prefixes: DEFAULT_DENY_PREFIXES.split(',').map(|p| Prefix(p.trim().to_string())).collect(),
            allow_domains: Vec::new(),
            max_per_call: 3,
        }
    }
}

/// An agent's own transfer settings (`settings.transfer` in the store, `[agents.transfer]` in the file):
/// each field set replaces the server's.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TransferOverrides {
    pub allow_prefixes: Option<Vec<Prefix>>,
    pub deny_prefixes: Option<Vec<Prefix>>,
    pub allow_domains: Option<Vec<Domain>>,
    pub max_per_call: Option<u32>,
}

/// A bad transfer setting: its key, and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    /// The error with its key under `prefix`: `settings.transfer.max_per_call: ...`.
    pub fn under(&self, prefix: &str) -> String {
        match self.field.as_str() {
            "" => format!("{prefix}: {}", self.message),
            field => format!("{prefix}.{field}: {}", self.message),
        }
    }
}

impl TransferOverrides {
    /// The policy a call of this agent follows.
    pub fn over(&self, server: &TransferPolicy) -> TransferPolicy {
        TransferPolicy {
            allow_prefixes: self.allow_prefixes.clone().unwrap_or_else(|| server.allow_prefixes.clone()),
            deny_prefixes: self.deny_prefixes.clone().unwrap_or_else(|| server.deny_prefixes.clone()),
            allow_domains: self.allow_domains.clone().unwrap_or_else(|| server.allow_domains.clone()),
            max_per_call: self.max_per_call.unwrap_or(server.max_per_call),
        }
    }

    /// Reads `{"allow_prefixes": "+1,+44", "allow_domains": ["pbx.example.com"], "max_per_call": 1}`: lists as
    /// comma-separated strings or arrays of strings. Unknown keys are refused; the error names the key.
    pub fn from_json(value: &Value) -> Result<TransferOverrides, FieldError> {
        let Some(object) = value.as_object() else {
            return Err(FieldError { field: String::new(), message: "must be a JSON object".into() });
        };
        let mut o = TransferOverrides::default();
        for (key, v) in object {
            let field = |message: String| FieldError { field: key.clone(), message };
            match key.as_str() {
                "allow_prefixes" => o.allow_prefixes = Some(parse_prefixes(&list(v).map_err(field)?).map_err(field)?),
                "deny_prefixes" => o.deny_prefixes = Some(parse_prefixes(&list(v).map_err(field)?).map_err(field)?),
                "allow_domains" => o.allow_domains = Some(parse_domains(&list(v).map_err(field)?).map_err(field)?),
                "max_per_call" => {
                    let n = v.as_u64().filter(|n| *n <= u64::from(MAX_PER_CALL));
                    let n = n.ok_or_else(|| field(format!("{v} is not valid: expected 0 to {MAX_PER_CALL}")))?;
                    o.max_per_call = Some(n as u32);
                }
                _ => return Err(field(format!("unknown key; known keys: {}", KEYS.join(", ")))),
            }
        }
        Ok(o)
    }
}

/// A list setting as one comma-separated string (an array of strings is joined).
fn list(v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map(str::to_string).ok_or_else(|| format!("{i} is not a string")))
            .collect::<Result<Vec<_>, _>>()
            .map(|items| items.join(",")),
        other => Err(format!("{other} is not valid: expected a comma-separated string or an array of strings")),
    }
}

/// `"+1, +44"` -> the prefixes; `""` -> none.
pub fn parse_prefixes(s: &str) -> Result<Vec<Prefix>, String> {
    s.split(',').filter(|p| !p.trim().is_empty()).map(Prefix::parse).collect()
}

/// `"pbx.example.com, sip.example.net"` -> the domains; `""` -> none.
pub fn parse_domains(s: &str) -> Result<Vec<Domain>, String> {
    s.split(',').filter(|d| !d.trim().is_empty()).map(Domain::parse).collect()
}

/// Why a transfer was refused: the agent's `reason`, the log's, and (by [`Refusal::kind`]) the counter's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("at most {0} transfers per call")]
    TooMany(u32),
    #[error("not a phone number (+E.164), tel: URI or sip: URI")]
    NotATarget,
    #[error("URI headers (?...) are not allowed")]
    UriHeaders,
    #[error("the URI parameter {0:?} is not allowed (only transport and user)")]
    UriParameter(String),
    #[error("{number} is in a denied range ({prefix})")]
    Denied { number: E164, prefix: Prefix },
    #[error("{0} is outside the allowed prefixes")]
    NotAllowed(E164),
    #[error("{number} is outside the caller's country code +{country}")]
    OtherCountry { number: E164, country: String },
    #[error("{0}: the caller's country code is not known, and no allowed prefixes are set")]
    CallerUnknown(E164),
    #[error("the SIP domain {0} is not allowed")]
    Domain(String),
}

impl Refusal {
    /// A stable name for counters.
    pub fn kind(&self) -> &'static str {
        match self {
            Refusal::TooMany(_) => "too_many",
            Refusal::NotATarget => "not_a_target",
            Refusal::UriHeaders => "uri_headers",
            Refusal::UriParameter(_) => "uri_parameter",
            Refusal::Denied { .. } => "prefix_denied",
            Refusal::NotAllowed(_) => "prefix_not_allowed",
            Refusal::OtherCountry { .. } => "other_country",
            Refusal::CallerUnknown(_) => "caller_unknown",
            Refusal::Domain(_) => "domain_not_allowed",
        }
    }
}

impl TransferPolicy {
    /// The Refer-To URI for the agent's `target` (`+E.164` and `tel:` numbers as `tel:+E164`, as Twilio wants
    /// them; a `sip:` URI as checked), or why it is refused. `caller`: the call's From number; `done`: the
    /// transfers the call has made.
    pub fn check(&self, target: &str, caller: Option<&E164>, done: u32) -> Result<String, Refusal> {
        if done >= self.max_per_call {
            return Err(Refusal::TooMany(self.max_per_call));
        }
        let target = target.trim();
        if target.is_empty() || target.bytes().any(|b| b.is_ascii_control() || b" <>\"".contains(&b)) {
            return Err(Refusal::NotATarget);
        }
        let scheme = target.split_once(':').map(|(s, _)| s.to_ascii_lowercase());
        match scheme.as_deref() {
            Some("sip" | "sips") => self.sip(target, caller),
            Some("tel") => self.tel(&target[4..], caller),
            _ => {
                let number = E164::parse(target).map_err(|_| Refusal::NotATarget)?;
                self.number(&number, caller)?;
                Ok(format!("tel:{number}"))
            }
        }
    }

    fn sip(&self, target: &str, caller: Option<&E164>) -> Result<String, Refusal> {
        if target.contains('?') {
            return Err(Refusal::UriHeaders);
        }
        let uri = Uri::parse(&Bytes::copy_from_slice(target.as_bytes())).map_err(|_| Refusal::NotATarget)?;
        let Uri::Sip(sip) = &uri else { return Err(Refusal::NotATarget) };
        if sip.headers.is_some() {
            return Err(Refusal::UriHeaders);
        }
        if let Some(p) = sip.params.iter().find(|p| !matches!(&p.name.to_ascii_lowercase()[..], b"transport" | b"user"))
        {
            return Err(Refusal::UriParameter(shorten(&String::from_utf8_lossy(&p.name), 64)));
        }
        let host = match &sip.host {
            Host::Name(name) => String::from_utf8_lossy(name).to_ascii_lowercase(),
            other => other.to_string(),
        };
        if !self.allow_domains.iter().any(|d| d.0 == host) {
            return Err(Refusal::Domain(shorten(&host, 253)));
        }
        // A telephone number (RFC 3261 §19.1.6: `+...` or user=phone) follows the number rules too: the domain
        // may be a gateway to the phone network.
        let phone = sip.params.value("user").is_some_and(|u| u.eq_ignore_ascii_case(b"phone"));
        if phone || sip.user.as_ref().is_some_and(|u| u.starts_with(b"+")) {
            let number = E164::from_uri(&uri).map_err(|_| Refusal::NotATarget)?;
            self.number(&number, caller)?;
        }
        Ok(uri.to_string())
    }

    /// `tel:` with a global number (RFC 3966: `+`, visual separators allowed) and no parameters.
    fn tel(&self, rest: &str, caller: Option<&E164>) -> Result<String, Refusal> {
        if rest.contains('?') {
            return Err(Refusal::UriHeaders);
        }
        if let Some((_, params)) = rest.split_once(';') {
            let name = params.split(['=', ';']).next().unwrap_or_default();
            return Err(Refusal::UriParameter(shorten(name, 64)));
        }
        if !rest.starts_with('+') {
            return Err(Refusal::NotATarget);
        }
        let number = E164::normalize(rest).map_err(|_| Refusal::NotATarget)?;
        self.number(&number, caller)?;
        Ok(format!("tel:{number}"))
    }

    /// Denied prefixes first, then the allowed ones, or the caller's country code when none are set.
    fn number(&self, number: &E164, caller: Option<&E164>) -> Result<(), Refusal> {
        if let Some(prefix) = self.deny_prefixes.iter().find(|p| p.matches(number)) {
            return Err(Refusal::Denied { number: number.clone(), prefix: prefix.clone() });
        }
        if !self.allow_prefixes.is_empty() {
            if self.allow_prefixes.iter().any(|p| p.matches(number)) {
                return Ok(());
            }
            return Err(Refusal::NotAllowed(number.clone()));
        }
        let country = caller.and_then(E164::country_code).ok_or_else(|| Refusal::CallerUnknown(number.clone()))?;
        if number.country_code() == Some(country) {
            Ok(())
        } else {
            Err(Refusal::OtherCountry { number: number.clone(), country: country.to_string() })
        }
    }
}

/// At most `max` bytes of `s`, cut at a character boundary: what the agent named, kept short in the reason.
fn shorten(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn caller(n: &str) -> Option<E164> {
        Some(E164::parse(n).unwrap())
    }

    fn refusal(policy: &TransferPolicy, target: &str) -> String {
        let e = policy.check(target, caller("+12125550100").as_ref(), 0).unwrap_err();
        format!("{}: {e}", e.kind())
    }

    #[test]
    fn by_default_numbers_stay_in_the_callers_country_and_out_of_nanp_premium_rate() {
        let p = TransferPolicy::default();
        let us = caller("+12125550100");
        assert_eq!(p.check("+14155550100", us.as_ref(), 0).as_deref(), Ok("tel:+14155550100"));
        assert_eq!(p.check("tel:+1-415-555-0100", us.as_ref(), 0).as_deref(), Ok("tel:+14155550100"));
        assert_eq!(refusal(&p, "+19005550100"), "prefix_denied: +19005550100 is in a denied range (+1900)");
        assert_eq!(refusal(&p, "tel:+19765550100"), "prefix_denied: +19765550100 is in a denied range (+1976)");
        assert_eq!(refusal(&p, "+2305551234"), "other_country: +2305551234 is outside the caller's country code +1");
        assert_eq!(
            refusal(&p, "+442071234567"),
            "other_country: +442071234567 is outside the caller's country code +1"
        );
        // A UK caller may be sent within +44, not to the US.
        let uk = caller("+442071234567");
        assert_eq!(p.check("+447700900123", uk.as_ref(), 0).as_deref(), Ok("tel:+447700900123"));
        assert!(matches!(p.check("+14155550100", uk.as_ref(), 0), Err(Refusal::OtherCountry { .. })));
        // An anonymous caller has no country: no number is allowed without allow_prefixes.
        assert!(matches!(p.check("+14155550100", None, 0), Err(Refusal::CallerUnknown(_))));
    }

    #[test]
    fn allowed_prefixes_replace_the_callers_country_and_denied_ones_still_win() {
        let p = TransferPolicy { allow_prefixes: parse_prefixes("+1, +44").unwrap(), ..TransferPolicy::default() };
        assert!(p.check("+447700900123", caller("+12125550100").as_ref(), 0).is_ok());
        assert!(p.check("+14155550100", None, 0).is_ok(), "no caller country needed");
        assert_eq!(refusal(&p, "+33123456789"), "prefix_not_allowed: +33123456789 is outside the allowed prefixes");
        assert!(refusal(&p, "+19005550100").starts_with("prefix_denied"));
    }

    #[test]
    fn sip_targets_need_an_allowed_domain_and_no_headers_or_method() {
        let p = TransferPolicy::default();
        assert_eq!(
            refusal(&p, "sip:+14155550100@evil.example.com"),
            "domain_not_allowed: the SIP domain evil.example.com is not allowed"
        );
        let replaces = "sip:alice@evil.example.com?Replaces=abc%40evil.example.com%3Bto-tag%3D1%3Bfrom-tag%3D2";
        assert_eq!(refusal(&p, replaces), "uri_headers: URI headers (?...) are not allowed");
        let p =
            TransferPolicy { allow_domains: parse_domains("PBX.example.com").unwrap(), ..TransferPolicy::default() };
        let us = caller("+12125550100");
        assert_eq!(p.check("sip:alice@pbx.example.com", us.as_ref(), 0).as_deref(), Ok("sip:alice@pbx.example.com"));
        assert!(p.check("sips:alice@PBX.Example.com;transport=tls", us.as_ref(), 0).is_ok(), "case-insensitive host");
        assert!(refusal(&p, "sip:alice@pbx.example.com?Replaces=x").starts_with("uri_headers"));
        assert_eq!(
            refusal(&p, "sip:alice@pbx.example.com;method=INVITE"),
            "uri_parameter: the URI parameter \"method\" is not allowed (only transport and user)"
        );
        assert!(refusal(&p, "sip:alice@pbx.example.com;maddr=evil.example.com").starts_with("uri_parameter"));
        assert!(refusal(&p, "sip:alice@pbx.example.com.evil.net").starts_with("domain_not_allowed"));
        // A telephone number at an allowed gateway follows the number rules too.
        assert!(p.check("sip:+14155550100@pbx.example.com", us.as_ref(), 0).is_ok());
        assert!(refusal(&p, "sip:+19005550100@pbx.example.com").starts_with("prefix_denied"));
        assert!(refusal(&p, "sip:2305551234@pbx.example.com;user=phone").starts_with("other_country"));
    }

    #[test]
    fn what_is_not_a_target_is_refused_and_a_call_makes_at_most_max_per_call() {
        let p = TransferPolicy::default();
        for target in
            ["", "4155550100", "+1 415 555 0100", "<sip:x@y>", "sip:x@y\r\nX: 1", "http://x", "tel:4155550100"]
        {
            assert!(refusal(&p, target).starts_with("not_a_target"), "{target:?}");
        }
        assert!(refusal(&p, "tel:+14155550100;phone-context=x").starts_with("uri_parameter"));
        let us = caller("+12125550100");
        assert!(p.check("+14155550100", us.as_ref(), 2).is_ok());
        assert_eq!(p.check("+14155550100", us.as_ref(), 3), Err(Refusal::TooMany(3)));
        let off = TransferPolicy { max_per_call: 0, ..TransferPolicy::default() };
        assert_eq!(off.check("+14155550100", us.as_ref(), 0), Err(Refusal::TooMany(0)), "0 turns transfers off");
    }

    #[test]
    fn an_agents_settings_replace_the_servers_field_by_field_and_bad_ones_name_their_key() {
        let o =
            TransferOverrides::from_json(&json!({"allow_domains": ["pbx.example.com"], "max_per_call": 1})).unwrap();
        let p = o.over(&TransferPolicy::default());
        assert_eq!(p.allow_domains, vec![Domain("pbx.example.com".into())]);
        assert_eq!((p.max_per_call, p.deny_prefixes.len()), (1, 23), "the server's deny list stays");
        let o = TransferOverrides::from_json(&json!({"allow_prefixes": "+1,+44", "deny_prefixes": []})).unwrap();
        let p = o.over(&TransferPolicy::default());
        assert_eq!((p.allow_prefixes.len(), p.deny_prefixes.len()), (2, 0));
        let err = |v: Value| TransferOverrides::from_json(&v).unwrap_err().to_string();
        assert!(err(json!({"allow_prefixes": "+1,44"})).starts_with("allow_prefixes: \"44\" is not an E.164 prefix"));
        assert!(err(json!({"allow_domains": "evil.example.com/x"})).starts_with("allow_domains:"));
        assert!(err(json!({"max_per_call": 1000})).starts_with("max_per_call: 1000 is not valid"));
        assert!(err(json!({"max_per_call": "3"})).starts_with("max_per_call:"));
        assert!(
            err(json!({"allow_prefix": "+1"})).starts_with("allow_prefix: unknown key; known keys: allow_prefixes")
        );
        assert!(err(json!({"deny_prefixes": [1900]})).starts_with("deny_prefixes: 1900 is not a string"));
        let not_object = TransferOverrides::from_json(&json!("+1")).unwrap_err();
        assert_eq!(not_object.under("settings.transfer"), "settings.transfer: must be a JSON object");
        let bad = TransferOverrides::from_json(&json!({"max_per_call": -1})).unwrap_err();
        assert!(bad.under("settings.transfer").starts_with("settings.transfer.max_per_call: -1 is not valid"));
    }
}
