//! The admin API's client, for the `vocals agents|numbers|twilio|calls` commands: a small blocking HTTP/1.1 client
//! (the admin listener is plain HTTP, on loopback by default) and the table output a sysadmin reads. The
//! address and token come from the same configuration the server reads.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde_json::{Value, json};

use crate::config::Config;

/// Why a command failed: the API's answer, or no answer at all.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{status} {code}: {message}")]
    Api { status: u16, code: String, message: String },
    #[error("cannot reach the admin API at {addr}: {source} (is vocals running? is [admin] listen right?)")]
    Connect { addr: SocketAddr, source: std::io::Error },
    #[error("{0}")]
    Usage(String),
    #[error("the admin API answered something that is not HTTP/JSON: {0}")]
    Protocol(String),
}

/// Where the API is and the token it wants.
pub struct Client {
    addr: SocketAddr,
    token: String,
}

impl Client {
    /// From the configuration: `[admin] listen` (a wildcard address is reached on loopback) and `[admin] token`,
    /// else the token the server generated in the state directory.
    pub fn from_config(config: &Config) -> Result<Client, ClientError> {
        let mut addr = config.admin_listen.ok_or_else(|| ClientError::Usage("[admin] listen is off".into()))?;
        if addr.ip().is_unspecified() {
            addr.set_ip(if addr.is_ipv4() { [127, 0, 0, 1].into() } else { std::net::Ipv6Addr::LOCALHOST.into() });
        }
        let token = match &config.admin_token {
            Some(t) => t.clone(),
            None => {
                let path = crate::daemon::token_path(config);
                std::fs::read_to_string(&path).map(|t| t.trim().to_string()).map_err(|e| {
                    ClientError::Usage(format!(
                        "no admin token: set VOCALS_ADMIN_TOKEN, or run as a user who can read {} ({e})",
                        path.display()
                    ))
                })?
            }
        };
        Ok(Client { addr, token })
    }

    pub fn new(addr: SocketAddr, token: String) -> Client {
        Client { addr, token }
    }

    /// One request; the JSON body of a 2xx answer (`null` when empty), an [`ClientError::Api`] otherwise.
    pub fn request(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, ClientError> {
        let connect = |source| ClientError::Connect { addr: self.addr, source };
        let mut conn = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5)).map_err(connect)?;
        conn.set_read_timeout(Some(Duration::from_secs(30))).map_err(connect)?;
        let body = body.map(Value::to_string).unwrap_or_default();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nUser-Agent: vocals-cli\r\n\r\n{body}",
            self.addr,
            self.token,
            body.len()
        );
        conn.write_all(request.as_bytes()).map_err(connect)?;
        let mut raw = Vec::new();
        conn.read_to_end(&mut raw).map_err(connect)?;
        let text = String::from_utf8_lossy(&raw);
        let (head, payload) = text.split_once("\r\n\r\n").ok_or_else(|| ClientError::Protocol(text.to_string()))?;
        let status: u16 = head
            .strip_prefix("HTTP/1.1 ")
            .and_then(|s| s.get(..3))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| ClientError::Protocol(head.to_string()))?;
        let chunked = head.lines().any(|l| {
            l.to_ascii_lowercase().starts_with("transfer-encoding:") && l.to_ascii_lowercase().contains("chunked")
        });
        let payload = if chunked { dechunk(payload) } else { payload.to_string() };
        let json: Value = if payload.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&payload).map_err(|_| ClientError::Protocol(payload.clone()))?
        };
        if (200..300).contains(&status) {
            return Ok(json);
        }
        let code = json["error"]["code"].as_str().unwrap_or("error").to_string();
        let message = json["error"]["message"].as_str().map_or_else(|| payload.clone(), str::to_string);
        Err(ClientError::Api { status, code, message })
    }

    /// A GET whose answer is a file (a recording): its bytes, or the API's error.
    pub fn download(&self, path: &str) -> Result<Vec<u8>, ClientError> {
        let connect = |source| ClientError::Connect { addr: self.addr, source };
        let mut conn = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5)).map_err(connect)?;
        conn.set_read_timeout(Some(Duration::from_secs(60))).map_err(connect)?;
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nAuthorization: Bearer {}\r\n\
             User-Agent: vocals-cli\r\n\r\n",
            self.addr, self.token
        );
        conn.write_all(request.as_bytes()).map_err(connect)?;
        let mut raw = Vec::new();
        conn.read_to_end(&mut raw).map_err(connect)?;
        let end = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or_else(|| ClientError::Protocol(String::from_utf8_lossy(&raw[..raw.len().min(200)]).into_owned()))?;
        let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
        let mut body = raw[end + 4..].to_vec();
        if head.lines().any(|l| l.starts_with("transfer-encoding:") && l.contains("chunked")) {
            body = dechunk_bytes(&body);
        }
        let status: u16 = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
        if (200..300).contains(&status) {
            return Ok(body);
        }
        let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let code = json["error"]["code"].as_str().unwrap_or("error").to_string();
        let message = json["error"]["message"].as_str().unwrap_or("no message").to_string();
        Err(ClientError::Api { status, code, message })
    }

    /// An agent's id from its id or its name.
    pub fn agent_id(&self, id_or_name: &str) -> Result<String, ClientError> {
        if id_or_name.starts_with("ag_") {
            return Ok(id_or_name.to_string());
        }
        let agents = self.request("GET", "/v1/agents", None)?;
        agents["agents"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["name"] == id_or_name)
            .and_then(|a| a["id"].as_str().map(str::to_string))
            .ok_or_else(|| ClientError::Usage(format!("no agent has the id or name {id_or_name:?}")))
    }
}

fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else { break };
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

fn dechunk_bytes(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = body;
    while let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") {
        let size = String::from_utf8_lossy(&rest[..eol]);
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else { break };
        let after = &rest[eol + 2..];
        if n == 0 || after.len() < n {
            break;
        }
        out.extend_from_slice(&after[..n]);
        rest = after[n..].strip_prefix(b"\r\n").unwrap_or(&after[n..]);
    }
    out
}

/// Percent-encodes a path segment (a `+` in a phone number included).
pub fn segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A table: a header row and aligned columns, `-` for absent values.
pub fn table(rows: &[Value], columns: &[(&str, &str)]) -> String {
    let cell = |row: &Value, key: &str| -> String {
        match row.pointer(key).unwrap_or(&Value::Null) {
            Value::Null => "-".into(),
            Value::String(s) if s.is_empty() => "-".into(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    };
    let cells: Vec<Vec<String>> = rows.iter().map(|r| columns.iter().map(|(_, k)| cell(r, k)).collect()).collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, (title, _))| cells.iter().map(|r| r[i].chars().count()).max().unwrap_or(0).max(title.len()))
        .collect();
    let line = |values: Vec<String>| -> String {
        let padded: Vec<String> = values.iter().zip(&widths).map(|(v, w)| format!("{v:<w$}")).collect();
        padded.join("  ").trim_end().to_string() + "\n"
    };
    let mut out = line(columns.iter().map(|(t, _)| t.to_string()).collect());
    for row in cells {
        out.push_str(&line(row));
    }
    out
}

pub const AGENT_COLUMNS: &[(&str, &str)] = &[
    ("ID", "/id"),
    ("NAME", "/name"),
    ("KIND", "/kind"),
    ("STREAM URL", "/stream_url"),
    ("SIGNED", "/signed"),
    ("BUILT IN", "/builtin"),
];
pub const NUMBER_COLUMNS: &[(&str, &str)] = &[
    ("NUMBER", "/phone_number"),
    ("STATUS", "/status"),
    ("HEALTHY", "/health/ok"),
    ("AGENT", "/agent_id"),
    ("DETAIL", "/status_detail"),
    ("UPDATED", "/updated_at"),
];
pub const ACCOUNT_COLUMNS: &[(&str, &str)] =
    &[("ACCOUNT", "/account_sid"), ("NAME", "/friendly_name"), ("TRUNK", "/trunk_sid"), ("LINKED", "/created_at")];
pub const TWILIO_NUMBER_COLUMNS: &[(&str, &str)] = &[
    ("NUMBER", "/phone_number"),
    ("SID", "/sid"),
    ("VOICE", "/voice"),
    ("ADDED", "/added"),
    ("ANSWERED BY", "/in_use_by"),
];
pub const DRIFT_COLUMNS: &[(&str, &str)] = &[("NUMBER", "/phone_number"), ("DETAIL", "/detail")];
pub const CALL_COLUMNS: &[(&str, &str)] = &[
    ("ID", "/id"),
    ("FROM", "/from"),
    ("TO", "/to"),
    ("AGENT", "/agent"),
    ("STARTED", "/invite_at"),
    ("ENDED", "/end_at"),
    ("SIP", "/sip_status"),
    ("REASON", "/end_reason"),
];

/// A JSON object of the given fields, leaving out the ones not given.
pub fn fields(pairs: &[(&str, Option<Value>)]) -> Value {
    let mut object = serde_json::Map::new();
    for (k, v) in pairs {
        if let Some(v) = v {
            object.insert(k.to_string(), v.clone());
        }
    }
    Value::Object(object)
}

/// A string flag's value as JSON; `""` clears it (`null`) where `clearable`.
pub fn text(value: Option<String>, clearable: bool) -> Option<Value> {
    value.map(|v| if clearable && v.is_empty() { Value::Null } else { json!(v) })
}

/// A flag that must hold a JSON object.
pub fn object(flag: &str, value: Option<String>) -> Result<Option<Value>, ClientError> {
    match value {
        None => Ok(None),
        Some(text) => match serde_json::from_str::<Value>(&text) {
            Ok(v) if v.is_object() => Ok(Some(v)),
            _ => Err(ClientError::Usage(format!("--{flag} must be a JSON object, e.g. '{{\"llm\": \"gpt-4o\"}}'"))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_and_mark_absent_values() {
        let rows = [
            json!({"id": "echo", "name": "echo", "kind": "echo", "stream_url": null, "signed": false, "builtin": true}),
            json!({"id": "ag_1", "name": "support", "kind": "websocket", "stream_url": null, "signed": true}),
        ];
        let t = table(&rows, AGENT_COLUMNS);
        assert_eq!(
            t,
            "ID    NAME     KIND       STREAM URL  SIGNED  BUILT IN\n\
             echo  echo     echo       -           false   true\n\
             ag_1  support  websocket  -           true    -\n"
        );
    }

    #[test]
    fn numbers_are_escaped_in_paths_and_chunked_bodies_joined() {
        assert_eq!(segment("+14155550123"), "%2B14155550123");
        assert_eq!(dechunk("4\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\n\r\n"), "{\"a\":1}");
        assert!(matches!(object("settings", Some("[1]".into())), Err(ClientError::Usage(_))));
        assert_eq!(fields(&[("a", Some(json!(1))), ("b", None)]), json!({"a": 1}));
        assert_eq!(text(Some(String::new()), true), Some(Value::Null));
    }
}
