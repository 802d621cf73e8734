//! The configuration file: its keys (top-level and `[section]` ones) into the keys given, its `[[numbers]]`,
//! `[[agents]]` (with `[agents.parameters]` and `[agents.transfer]`) and `[[trunks]]` entries, each checked
//! with the key path it came from.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use super::de::{Keys, Raw};
use super::{AgentConfig, AgentKind, ConfigError, NumberConfig, bad, srtp_policy};
use crate::agent::transfer::TransferOverrides;
use crate::call::outbound::{Hop, Trunk};
use crate::e164::E164;
use crate::media::recording::RecordMode;

/// Reads the file's keys into `given`, its `[[numbers]]` and `[[agents]]`.
pub(super) fn read_file(
    file: &Path,
    given: &mut Keys,
    numbers: &mut Vec<NumberConfig>,
    agents: &mut Vec<AgentConfig>,
    trunks: &mut Vec<Trunk>,
) -> Result<(), ConfigError> {
    let text = std::fs::read_to_string(file).map_err(|source| ConfigError::Read { path: file.into(), source })?;
    let table: toml::Table =
        text.parse().map_err(|e: toml::de::Error| ConfigError::Syntax { path: file.into(), message: e.to_string() })?;
    for (name, item) in table {
        match item {
            toml::Value::Array(entries) if name == "numbers" => {
                for (i, entry) in entries.into_iter().enumerate() {
                    numbers.push(number_entry(i, entry)?);
                }
            }
            toml::Value::Array(entries) if name == "agents" => {
                for (i, entry) in entries.into_iter().enumerate() {
                    agents.push(agent_entry(i, entry)?);
                }
            }
            toml::Value::Array(entries) if name == "trunks" => {
                for (i, entry) in entries.into_iter().enumerate() {
                    let trunk = trunk_entry(i, entry)?;
                    if trunks.iter().any(|t: &Trunk| t.account_sid == trunk.account_sid) {
                        return Err(bad(
                            &format!("trunks[{i}].account_sid"),
                            &trunk.account_sid,
                            "an account not given a trunk before",
                        ));
                    }
                    trunks.push(trunk);
                }
            }
            toml::Value::Table(section) => {
                for (key, value) in section {
                    given.set(&name, &key, raw(value), format!("{name}.{key}"));
                }
            }
            value => given.set("", &name, raw(value), name.clone()),
        }
    }
    Ok(())
}

/// One `[[numbers]]` table: `number` (E.164), optional `agent`, `account_sid`, `srtp`, `record` and `rules`
/// (`[[numbers.rules]]`: `when`, `caller`, and `agent`, an agent's name, or `""` for not answered).
fn number_entry(i: usize, entry: toml::Value) -> Result<NumberConfig, ConfigError> {
    let key = |k: &str| format!("numbers[{i}].{k}");
    let toml::Value::Table(mut t) = entry else {
        return Err(ConfigError::Value { key: format!("numbers[{i}]"), message: "must be a table".into() });
    };
    let mut text = |k: &str| -> Result<Option<String>, ConfigError> {
        match t.remove(k) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(bad(&key(k), other.type_str(), "a string")),
        }
    };
    let raw = text("number")?.ok_or_else(|| bad(&key("number"), "missing", "a phone number, e.g. \"+14155550123\""))?;
    let number = E164::parse(&raw).map_err(|e| bad(&key("number"), &raw, &e.to_string()))?;
    let agent = text("agent")?;
    let account_sid = text("account_sid")?;
    let srtp = match text("srtp")? {
        None => None,
        Some(s) => Some(srtp_policy(&key("srtp"), &s)?),
    };
    let record = match text("record")? {
        None => None,
        Some(r) => Some(RecordMode::parse(r.trim()).ok_or_else(|| bad(&key("record"), &r, "off or dual"))?),
    };
    let rules = match t.remove("rules") {
        None => serde_json::Value::Null,
        Some(toml::Value::Array(list)) => rules_json(list),
        Some(other) => return Err(bad(&key("rules"), other.type_str(), "a list of [[numbers.rules]] tables")),
    };
    if let Some(unknown) = t.keys().next() {
        return Err(unknown_key(&key(unknown), "number", "agent, account_sid, srtp, record, rules"));
    }
    Ok(NumberConfig { number, agent, account_sid, srtp, record, rules })
}

/// `[[numbers.rules]]` as the API's JSON: a rule's `agent` (a name, as `[[numbers]] agent`; `""`: not
/// answered) becomes its `agent_id`. The rules are checked with the agents (`Config::validate`).
fn rules_json(list: Vec<toml::Value>) -> serde_json::Value {
    let mut rules = Vec::with_capacity(list.len());
    for rule in list {
        let mut rule = toml_json(rule);
        if let Some(o) = rule.as_object_mut()
            && let Some(agent) = o.remove("agent")
        {
            let agent = match agent {
                serde_json::Value::String(s) if s.is_empty() => serde_json::Value::Null,
                other => other,
            };
            o.insert("agent_id".into(), agent);
        }
        rules.push(rule);
    }
    serde_json::Value::Array(rules)
}

/// A TOML value as JSON; a TOML time or date (`from = 18:00`, `dates = [2026-12-25]`, unquoted) is the text
/// the API takes (`"18:00"`, `"2026-12-25"`).
fn toml_json(v: toml::Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        toml::Value::String(s) => J::String(s),
        toml::Value::Integer(i) => J::from(i),
        toml::Value::Float(f) => J::from(f),
        toml::Value::Boolean(b) => J::Bool(b),
        toml::Value::Datetime(d) => match (d.date, d.time) {
            (None, Some(t)) if t.second.unwrap_or(0) == 0 && t.nanosecond.unwrap_or(0) == 0 => {
                J::String(format!("{:02}:{:02}", t.hour, t.minute))
            }
            _ => J::String(d.to_string()),
        },
        toml::Value::Array(a) => J::Array(a.into_iter().map(toml_json).collect()),
        toml::Value::Table(t) => J::Object(t.into_iter().map(|(k, v)| (k, toml_json(v))).collect()),
    }
}

/// One `[[agents]]` table: `name`, `url` (ws:// or wss://), optional `secret`, `connect_timeout_ms`
/// (100 to 30000, default 3000), `[agents.parameters]` (strings) and `[agents.transfer]` (the `[transfer]`
/// keys, for this agent).
fn agent_entry(i: usize, entry: toml::Value) -> Result<AgentConfig, ConfigError> {
    let key = |k: &str| format!("agents[{i}].{k}");
    let toml::Value::Table(mut t) = entry else {
        return Err(ConfigError::Value { key: format!("agents[{i}]"), message: "must be a table".into() });
    };
    let mut text = |k: &str| -> Result<Option<String>, ConfigError> {
        match t.remove(k) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(bad(&key(k), other.type_str(), "a string")),
        }
    };
    let name = text("name")?.filter(|n| !n.trim().is_empty());
    let name = name.ok_or_else(|| bad(&key("name"), "missing", "the agent's name, e.g. \"support\""))?;
    let url = text("url")?.ok_or_else(|| bad(&key("url"), "missing", "a ws:// or wss:// URL"))?;
    if !(url.starts_with("ws://") || url.starts_with("wss://")) || url.len() < 8 {
        return Err(bad(&key("url"), &url, "a ws:// or wss:// URL"));
    }
    let secret = text("secret")?.filter(|s| !s.is_empty());
    let auth_token = text("auth_token")?.filter(|s| !s.is_empty());
    // Each may be the password of the agent's REST hang-up.
    for (name, value) in [("secret", &secret), ("auth_token", &auth_token)] {
        if let Some(s) = value.as_deref().filter(|s| s.chars().count() < crate::store::MIN_SIGNING_SECRET) {
            let message = format!(
                "{} characters is too short: at least {} (it is the password of the agent's REST hang-up)",
                s.chars().count(),
                crate::store::MIN_SIGNING_SECRET
            );
            return Err(ConfigError::Value { key: key(name), message });
        }
    }
    let connect_timeout = match t.remove("connect_timeout_ms") {
        None => Duration::from_millis(3000),
        Some(toml::Value::Integer(ms)) if (100..=30_000).contains(&ms) => Duration::from_millis(ms as u64),
        Some(toml::Value::Integer(ms)) => return Err(bad(&key("connect_timeout_ms"), &ms.to_string(), "100 to 30000")),
        Some(other) => return Err(bad(&key("connect_timeout_ms"), other.type_str(), "a number from 100 to 30000")),
    };
    let mut parameters = BTreeMap::new();
    match t.remove("parameters") {
        None => {}
        Some(toml::Value::Table(p)) => {
            for (k, v) in p {
                let value = match v {
                    toml::Value::String(s) => s,
                    toml::Value::Integer(i) => i.to_string(),
                    toml::Value::Float(f) => f.to_string(),
                    toml::Value::Boolean(b) => b.to_string(),
                    other => return Err(bad(&key(&format!("parameters.{k}")), other.type_str(), "a string")),
                };
                parameters.insert(k, value);
            }
        }
        Some(other) => return Err(bad(&key("parameters"), other.type_str(), "a table of strings")),
    }
    let transfer = match t.remove("transfer") {
        None => TransferOverrides::default(),
        Some(table @ toml::Value::Table(_)) => {
            let json = serde_json::to_value(table).map_err(|e| bad(&key("transfer"), &e.to_string(), "a table"))?;
            TransferOverrides::from_json(&json).map_err(|e| {
                let field = if e.field.is_empty() { key("transfer") } else { key(&format!("transfer.{}", e.field)) };
                ConfigError::Value { key: field, message: e.message }
            })?
        }
        Some(other) => return Err(bad(&key("transfer"), other.type_str(), "a table of the [transfer] keys")),
    };
    let record = match t.remove("record") {
        None => None,
        Some(toml::Value::String(r)) => {
            Some(RecordMode::parse(r.trim()).ok_or_else(|| bad(&key("record"), &r, "off or dual"))?)
        }
        Some(other) => return Err(bad(&key("record"), other.type_str(), "off or dual")),
    };
    if let Some(unknown) = t.keys().next() {
        return Err(unknown_key(
            &key(unknown),
            "name, url, secret, auth_token",
            "connect_timeout_ms, parameters, transfer, record",
        ));
    }
    Ok(AgentConfig {
        id: name.clone(),
        name,
        kind: AgentKind::WebSocket,
        url,
        secret,
        connect_timeout,
        parameters,
        auth_token,
        transfer,
        record,
    })
}

/// One `[[trunks]]` table: `account_sid` (AC…), `auth_token` (what that account's `Calls.json` requests
/// carry), `termination_uri` (`sip:{domain}.pstn.twilio.com`, `;transport=tls` for Secure Trunking), and the
/// digest `username` and `password` of the trunk's credential list (both or neither).
fn trunk_entry(i: usize, entry: toml::Value) -> Result<Trunk, ConfigError> {
    let key = |k: &str| format!("trunks[{i}].{k}");
    let toml::Value::Table(mut t) = entry else {
        return Err(ConfigError::Value { key: format!("trunks[{i}]"), message: "must be a table".into() });
    };
    let mut text = |k: &str| -> Result<Option<String>, ConfigError> {
        match t.remove(k) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s.trim().to_string()).filter(|s| !s.is_empty())),
            Some(other) => Err(bad(&key(k), other.type_str(), "a string")),
        }
    };
    let account_sid = text("account_sid")?.unwrap_or_default();
    if !(account_sid.len() == 34
        && account_sid.starts_with("AC")
        && account_sid[2..].bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Err(bad(&key("account_sid"), &account_sid, "a Twilio account SID: AC and 32 hex digits"));
    }
    let auth_token = text("auth_token")?.unwrap_or_default();
    if auth_token.chars().count() < crate::store::MIN_SIGNING_SECRET {
        let message = format!(
            "{} characters is too short: at least {} (it is the password of the account's Calls.json requests)",
            auth_token.chars().count(),
            crate::store::MIN_SIGNING_SECRET
        );
        return Err(ConfigError::Value { key: key("auth_token"), message });
    }
    let uri = text("termination_uri")?
        .ok_or_else(|| bad(&key("termination_uri"), "missing", "e.g. \"sip:example.pstn.twilio.com\""))?;
    let termination = Hop::parse(&uri).map_err(|e| ConfigError::Value { key: key("termination_uri"), message: e })?;
    let (username, password) = (text("username")?, text("password")?);
    if username.is_some() != password.is_some() {
        let missing = if username.is_none() { "username" } else { "password" };
        return Err(bad(&key(missing), "missing", "both username and password, or neither"));
    }
    if let Some(unknown) = t.keys().next() {
        return Err(unknown_key(&key(unknown), "account_sid, auth_token, termination_uri", "username, password"));
    }
    Ok(Trunk { account_sid, auth_token, termination, username, password })
}

fn unknown_key(key: &str, a: &str, b: &str) -> ConfigError {
    ConfigError::Value { key: key.to_string(), message: format!("unknown key; known keys: {a}, {b}") }
}

/// A value as text: a string, a number or a boolean; anything else by its type.
fn raw(value: toml::Value) -> Raw {
    match value {
        toml::Value::String(s) => Raw::Text(s),
        toml::Value::Integer(i) => Raw::Text(i.to_string()),
        toml::Value::Boolean(b) => Raw::Text(b.to_string()),
        other => Raw::Other(other.type_str()),
    }
}
