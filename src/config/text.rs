//! How a key's value is written: the text it is read from (a string, number or boolean in the file, or a
//! `VOCALS_*` variable) and shown as (`KEYS`' defaults). Each type says what it allows when a text is not
//! one of it; the section reader puts the key path in front.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serializer};

use super::sections::TerminationKind;
use super::{DefaultAgent, LogFormat};
use crate::agent::transfer::{self, Domain, Prefix};
use crate::media::ports::PortRange;
use crate::media::recording::{RecordFormat, RecordMode};
use crate::media::session::Latch;
use crate::routing::AccountPolicy;
use crate::sdp::SrtpPolicy;
use crate::sip::allow::AllowList;
use crate::twilio::ip_acl::{Ipv4Block, MAX_ADDRESSES};

/// A value a key holds, read from and written as text.
pub(super) trait Text: Sized {
    /// The value of `text`, or the message saying what is allowed.
    fn parse(text: &str) -> Result<Self, String>;
    /// The text that reads back as this value.
    fn text(&self) -> String;
}

/// `#[serde(with = "text")]`: a field read from its text.
pub(super) fn deserialize<'de, D: Deserializer<'de>, T: Text>(d: D) -> Result<T, D::Error> {
    T::parse(&String::deserialize(d)?).map_err(D::Error::custom)
}

/// `#[serde(with = "text")]`: a field written as its text.
pub(super) fn serialize<S: Serializer, T: Text>(value: &T, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&value.text())
}

/// `#[serde(deserialize_with = "text::whole::<MIN, MAX, _>")]`: a whole number from `MIN` to `MAX`.
pub(super) fn whole<'de, const MIN: usize, const MAX: usize, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    let text = String::deserialize(d)?;
    let s = text.trim();
    s.parse::<usize>()
        .ok()
        .filter(|n| (MIN..=MAX).contains(n))
        .ok_or_else(|| D::Error::custom(invalid(s, &format!("a whole number from {MIN} to {MAX}"))))
}

/// The message for a value that is not one of those allowed.
pub(super) fn invalid(value: &str, allowed: &str) -> String {
    format!("{value:?} is not valid: expected {allowed}")
}

impl Text for usize {
    fn parse(text: &str) -> Result<usize, String> {
        text.trim().parse().map_err(|_| invalid(text.trim(), "a whole number"))
    }

    fn text(&self) -> String {
        self.to_string()
    }
}

impl Text for bool {
    fn parse(text: &str) -> Result<bool, String> {
        match text.trim() {
            "true" => Ok(true),
            "false" => Ok(false),
            other => Err(invalid(other, "true or false")),
        }
    }

    fn text(&self) -> String {
        self.to_string()
    }
}

/// A text as it was given; empty is `None`.
impl Text for Option<String> {
    fn parse(text: &str) -> Result<Option<String>, String> {
        Ok(Some(text.to_string()).filter(|t| !t.is_empty()))
    }

    fn text(&self) -> String {
        self.clone().unwrap_or_default()
    }
}

impl Text for String {
    fn parse(text: &str) -> Result<String, String> {
        Ok(text.to_string())
    }

    fn text(&self) -> String {
        self.clone()
    }
}

/// A path as it was given; empty is `None`.
impl Text for Option<PathBuf> {
    fn parse(text: &str) -> Result<Option<PathBuf>, String> {
        Ok(Some(text).filter(|t| !t.is_empty()).map(PathBuf::from))
    }

    fn text(&self) -> String {
        self.as_ref().map(|p| p.display().to_string()).unwrap_or_default()
    }
}

/// A listener's address; `""` turns it off.
impl Text for Option<SocketAddr> {
    fn parse(text: &str) -> Result<Option<SocketAddr>, String> {
        match text.trim() {
            "" => Ok(None),
            s => s
                .parse()
                .map(Some)
                .map_err(|_| invalid(s, "an address like 0.0.0.0:5060 or [::]:5060, or \"\" to turn it off")),
        }
    }

    fn text(&self) -> String {
        self.map(|a| a.to_string()).unwrap_or_default()
    }
}

/// `media.public_ip`: an address peers can reach; `""` detects it.
impl Text for Option<IpAddr> {
    fn parse(text: &str) -> Result<Option<IpAddr>, String> {
        match text.trim() {
            "" => Ok(None),
            s => {
                let ip: IpAddr = s.parse().map_err(|_| invalid(s, "an IP address, or \"\" to detect it"))?;
                if ip.is_unspecified() {
                    return Err(invalid(s, "an address peers can reach, not 0.0.0.0 or ::"));
                }
                Ok(Some(ip))
            }
        }
    }

    fn text(&self) -> String {
        self.map(|a| a.to_string()).unwrap_or_default()
    }
}

/// Address blocks, separated by commas or spaces.
impl Text for AllowList {
    fn parse(text: &str) -> Result<AllowList, String> {
        AllowList::parse(text).map_err(|e| invalid(text, &e.to_string()))
    }

    fn text(&self) -> String {
        self.blocks().iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
    }
}

impl Text for PortRange {
    fn parse(text: &str) -> Result<PortRange, String> {
        text.parse().map_err(|e: String| invalid(text, &e))
    }

    fn text(&self) -> String {
        format!("{}-{}", self.first, self.last)
    }
}

impl Text for SrtpPolicy {
    fn parse(text: &str) -> Result<SrtpPolicy, String> {
        let s = text.trim();
        SrtpPolicy::parse(s).ok_or_else(|| invalid(s, "one of off, allowed, required"))
    }

    fn text(&self) -> String {
        self.as_str().to_string()
    }
}

impl Text for Latch {
    fn parse(text: &str) -> Result<Latch, String> {
        match text.trim() {
            "sdp-ip" => Ok(Latch::SdpIp),
            "any" => Ok(Latch::Any),
            other => Err(invalid(other, "sdp-ip or any")),
        }
    }

    fn text(&self) -> String {
        match self {
            Latch::SdpIp => "sdp-ip",
            Latch::Any => "any",
        }
        .to_string()
    }
}

impl Text for LogFormat {
    fn parse(text: &str) -> Result<LogFormat, String> {
        text.parse().map_err(|_| invalid(text, "one of auto, pretty, plain, json"))
    }

    fn text(&self) -> String {
        self.as_str().to_string()
    }
}

/// `default_agent`: the demo when not set (shown as `echo`, which answers then), `""` refuses.
impl Text for DefaultAgent {
    fn parse(text: &str) -> Result<DefaultAgent, String> {
        match text.trim() {
            "" => Ok(DefaultAgent::Refuse),
            name => Ok(DefaultAgent::Agent(name.to_string())),
        }
    }

    fn text(&self) -> String {
        match self {
            DefaultAgent::Demo => "echo".to_string(),
            DefaultAgent::Agent(name) => name.clone(),
            DefaultAgent::Refuse => String::new(),
        }
    }
}

/// `sip.accounts`: "" (the accounts vocals knows), "any", or Twilio account SIDs separated by commas.
impl Text for AccountPolicy {
    fn parse(text: &str) -> Result<AccountPolicy, String> {
        match text.trim() {
            "" => Ok(AccountPolicy::Known),
            "any" => Ok(AccountPolicy::Any),
            list => {
                let mut set = std::collections::HashSet::new();
                for sid in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    let valid =
                        sid.len() == 34 && sid.starts_with("AC") && sid[2..].bytes().all(|b| b.is_ascii_hexdigit());
                    if !valid {
                        let allowed = "\"\", \"any\", or account SIDs (AC and 32 hex digits) separated by commas";
                        return Err(invalid(sid, allowed));
                    }
                    set.insert(sid.to_string());
                }
                Ok(AccountPolicy::Only(set))
            }
        }
    }

    fn text(&self) -> String {
        match self {
            AccountPolicy::Known => String::new(),
            AccountPolicy::Any => "any".to_string(),
            AccountPolicy::Only(set) => {
                let mut sids: Vec<&str> = set.iter().map(String::as_str).collect();
                sids.sort_unstable();
                sids.join(", ")
            }
        }
    }
}

/// `twilio.origination_uris`: `sip:` URIs separated by commas.
impl Text for Vec<String> {
    fn parse(text: &str) -> Result<Vec<String>, String> {
        let mut uris = Vec::new();
        for uri in text.split(',').map(str::trim).filter(|u| !u.is_empty()) {
            if !uri.starts_with("sip:") {
                return Err(invalid(uri, "sip: URIs separated by commas, e.g. sip:vocals.example.com:5060"));
            }
            uris.push(uri.to_string());
        }
        Ok(uris)
    }

    fn text(&self) -> String {
        self.join(", ")
    }
}

/// E.164 prefixes separated by commas (each error says which item is wrong).
impl Text for Vec<Prefix> {
    fn parse(text: &str) -> Result<Vec<Prefix>, String> {
        transfer::parse_prefixes(text)
    }

    fn text(&self) -> String {
        self.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
    }
}

/// Host names separated by commas (each error says which item is wrong).
impl Text for Vec<Domain> {
    fn parse(text: &str) -> Result<Vec<Domain>, String> {
        transfer::parse_domains(text)
    }

    fn text(&self) -> String {
        self.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
    }
}

impl Text for TerminationKind {
    fn parse(text: &str) -> Result<TerminationKind, String> {
        match text.trim() {
            "credentials" => Ok(TerminationKind::Credentials),
            "ip" => Ok(TerminationKind::Ip),
            other => Err(invalid(other, "credentials or ip")),
        }
    }

    fn text(&self) -> String {
        match self {
            TerminationKind::Credentials => "credentials",
            TerminationKind::Ip => "ip",
        }
        .to_string()
    }
}

/// `outbound.termination_ips`: IPv4 addresses or blocks separated by commas, each once, at most Twilio's
/// limit for one IP access control list.
impl Text for Vec<Ipv4Block> {
    fn parse(text: &str) -> Result<Vec<Ipv4Block>, String> {
        let mut blocks: Vec<Ipv4Block> = Vec::new();
        for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let block = Ipv4Block::parse(item).map_err(|expected| invalid(item, &expected))?;
            if blocks.contains(&block) {
                return Err(invalid(item, "each address once"));
            }
            blocks.push(block);
        }
        if blocks.len() > MAX_ADDRESSES {
            let count = blocks.len();
            return Err(format!(
                "{count} addresses: at most {MAX_ADDRESSES} (Twilio's limit for one IP access control list)"
            ));
        }
        Ok(blocks)
    }

    fn text(&self) -> String {
        self.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
    }
}

impl Text for RecordMode {
    fn parse(text: &str) -> Result<RecordMode, String> {
        RecordMode::parse(text.trim()).ok_or_else(|| invalid(text.trim(), "off or dual"))
    }

    fn text(&self) -> String {
        self.as_str().to_string()
    }
}

impl Text for RecordFormat {
    fn parse(text: &str) -> Result<RecordFormat, String> {
        RecordFormat::parse(text.trim()).ok_or_else(|| invalid(text.trim(), "pcm16 or mulaw"))
    }

    fn text(&self) -> String {
        self.as_str().to_string()
    }
}
