//! What the outbound-call tests share: SIPp as Twilio's termination side, a Media Streams agent, a status
//! callback server that checks signatures, the account's Basic-auth requests and its `[[trunks]]` table.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use super::inprocess::InProcess;
use super::scenario;

pub const ACCOUNT: &str = "ACbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
pub const TOKEN: &str = "outbound-auth-token-0123456789";
pub const CALLEE: &str = "+14155550100";

/// A free port for SIPp's RTP echo: SIPp takes it and the port 2 above (for video), so each SIPp of this binary's
/// tests, running side by side, gets ports of its own rather than the default 6000.
pub fn free_media_port() -> u16 {
    loop {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = a.local_addr().unwrap().port();
        if port < 65_000 && UdpSocket::bind(("127.0.0.1", port + 2)).is_ok() {
            return port;
        }
    }
}

/// Waits until something has bound UDP `port` on 127.0.0.1 (SIPp, started on a thread), reading
/// `/proc/net/udp`: binding the port to find out would take it from SIPp.
pub fn wait_bound(port: u16) {
    wait_bound_in("/proc/net/udp", port)
}

/// Waits until a socket of the kernel's `table` (`/proc/net/udp`, `/proc/net/tcp`) has `port` as its local port.
fn wait_bound_in(table: &str, port: u16) {
    let suffix = format!(":{port:04X}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let table = std::fs::read_to_string(table).unwrap_or_default();
        // Each socket's line: `sl local_address rem_address …`, addresses as hex `IP:PORT`.
        if table.lines().skip(1).any(|l| l.split_whitespace().nth(1).is_some_and(|local| local.ends_with(&suffix))) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("SIPp did not bind port {port} ({table}) within 10 s");
}

/// SIPp as Twilio's termination side on `port`, running `file` for `calls` calls; whether it passed, and its
/// output with its error and message logs.
pub fn termination(
    file: &str,
    port: u16,
    dir: &std::path::Path,
    calls: u32,
) -> std::thread::JoinHandle<(bool, String)> {
    termination_over(file, port, dir, calls, false)
}

/// [`termination`] over UDP, or over TCP (`tcp`: SIPp's `-t t1`, a server taking the connection vocals opens).
pub fn termination_over(
    file: &str,
    port: u16,
    dir: &std::path::Path,
    calls: u32,
    tcp: bool,
) -> std::thread::JoinHandle<(bool, String)> {
    std::fs::create_dir_all(dir).unwrap();
    let (file, dir) = (file.to_string(), dir.to_path_buf());
    let handle = std::thread::spawn(move || {
        let out = Command::new("sipp")
            .current_dir(&dir)
            .arg("-sf")
            .arg(scenario(&file))
            .args(["-p", &port.to_string(), "-i", "127.0.0.1", "-m", &calls.to_string(), "-rtp_echo"])
            .args(if tcp { &["-t", "t1"][..] } else { &[][..] })
            .args(["-mi", "127.0.0.1", "-mp", &free_media_port().to_string()])
            .args(["-timeout", "40", "-timeout_error", "-nostdin", "-trace_err", "-trace_msg"])
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run sipp ({e}): install it with `apt-get install -y sip-tester`"));
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with("errors.log") || name.ends_with("messages.log") {
                text.push_str(&format!(
                    "\n--- {name} ---\n{}",
                    std::fs::read_to_string(entry.path()).unwrap_or_default()
                ));
            }
        }
        (out.status.success(), text)
    });
    wait_bound_in(if tcp { "/proc/net/tcp" } else { "/proc/net/udp" }, port);
    handle
}

/// What the test agent saw of its stream: every event name but media, the `start` message, the media frames.
#[derive(Debug, Default)]
pub struct Seen {
    pub events: Vec<String>,
    pub start: serde_json::Value,
    pub media: usize,
    /// Media frames that are the agent's own audio come back (all 0x55: the far end echoed it).
    pub echoed: usize,
}

/// A Media Streams agent on loopback that takes one stream, sends a second of audio, and reports what it saw.
pub fn agent() -> (String, mpsc::Receiver<Seen>, tokio::runtime::Runtime) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let url = format!("ws://127.0.0.1:{}/stream", listener.local_addr().unwrap().port());
    let (tx, rx) = mpsc::channel();
    rt.spawn(async move {
        let Ok((tcp, _)) = listener.accept().await else { return };
        let Ok(ws) = tokio_tungstenite::accept_async(tcp).await else { return };
        let (mut sink, mut stream) = ws.split();
        let mut seen = Seen::default();
        while let Some(Ok(msg)) = stream.next().await {
            let Message::Text(text) = msg else { continue };
            let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
            let event = v["event"].as_str().unwrap_or_default().to_string();
            match event.as_str() {
                "start" => {
                    seen.start = v.clone();
                    let sid = v["streamSid"].as_str().unwrap_or_default().to_string();
                    let payload = base64::engine::general_purpose::STANDARD.encode([0x55u8; 160]);
                    for _ in 0..50 {
                        let frame =
                            serde_json::json!({"event": "media", "streamSid": sid, "media": {"payload": payload}});
                        let _ = sink.send(Message::Text(frame.to_string().into())).await;
                    }
                }
                "media" => {
                    seen.media += 1;
                    let payload = v["media"]["payload"].as_str().unwrap_or_default();
                    let decoded = base64::engine::general_purpose::STANDARD.decode(payload).unwrap_or_default();
                    if !decoded.is_empty() && decoded.iter().all(|&b| b == 0x55) {
                        seen.echoed += 1;
                    }
                }
                _ => {}
            }
            if event != "media" {
                seen.events.push(event.clone());
            }
            if event == "stop" {
                break;
            }
        }
        let _ = tx.send(seen);
    });
    (url, rx, rt)
}

/// One HTTP request as the callback server read it.
#[derive(Debug)]
pub struct Posted {
    pub line: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Posted {
    pub fn header(&self, name: &str) -> &str {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map_or("", |(_, v)| v.as_str())
    }

    pub fn form(&self) -> Vec<(String, String)> {
        serde_urlencoded::from_str(&self.body).unwrap()
    }
}

/// A status callback server: answers 204 to every request and hands each on.
pub fn callback_server() -> (String, mpsc::Receiver<Posted>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://127.0.0.1:{}/status?call=1", listener.local_addr().unwrap().port());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let mut headers = Vec::new();
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
                    break;
                }
                if let Some((n, v)) = h.trim().split_once(':') {
                    headers.push((n.trim().to_string(), v.trim().to_string()));
                }
            }
            let len = headers.iter().find(|(n, _)| n.eq_ignore_ascii_case("content-length"));
            let len: usize = len.and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
            let mut body = vec![0u8; len];
            let _ = reader.read_exact(&mut body);
            let mut conn = conn;
            let _ = conn.write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            let posted = Posted { line: line.trim().to_string(), headers, body: String::from_utf8_lossy(&body).into() };
            if tx.send(posted).is_err() {
                return;
            }
        }
    });
    (url, rx)
}

/// A form parameter's value ("" when absent).
pub fn get(form: &[(String, String)], key: &str) -> String {
    form.iter().find(|(n, _)| n == key).map(|(_, v)| v.clone()).unwrap_or_default()
}

/// The next status callback of call `sid`, checked: a POST to the callback URL, signed with the account's auth
/// token (`X-Twilio-Signature`, computed here with `vocals::twilio::signature::sign` over the URL and the form);
/// its form.
pub fn next_callback(posted: &mpsc::Receiver<Posted>, url: &str, sid: &str, within: Duration) -> Vec<(String, String)> {
    let p = posted.recv_timeout(within).unwrap_or_else(|_| panic!("no status callback within {within:?}"));
    assert!(p.line.starts_with("POST /status?call=1 "), "{p:?}");
    let form = p.form();
    let signature = vocals::twilio::signature::sign(TOKEN, url, &form);
    assert!(!p.header("X-Twilio-Signature").is_empty(), "an unsigned callback: {p:?}");
    assert_eq!(p.header("X-Twilio-Signature"), signature, "{p:?}");
    assert_eq!((get(&form, "CallSid"), get(&form, "AccountSid")), (sid.to_string(), ACCOUNT.to_string()), "{form:?}");
    form
}

/// The next `n` status callbacks of call `sid`, each checked as [`next_callback`] does, in their
/// `SequenceNumber` order (as Twilio's, they may arrive out of order: each is a request of its own), which must
/// run from `first` without a gap.
pub fn callbacks(
    posted: &mpsc::Receiver<Posted>,
    url: &str,
    sid: &str,
    first: usize,
    n: usize,
    within: Duration,
) -> Vec<Vec<(String, String)>> {
    let deadline = Instant::now() + within;
    let mut forms: Vec<_> =
        (0..n).map(|_| next_callback(posted, url, sid, deadline.saturating_duration_since(Instant::now()))).collect();
    forms.sort_by_key(|f| get(f, "SequenceNumber").parse::<usize>().unwrap_or(usize::MAX));
    let numbers: Vec<String> = forms.iter().map(|f| get(f, "SequenceNumber")).collect();
    let expected: Vec<String> = (first..first + n).map(|i| i.to_string()).collect();
    assert_eq!(numbers, expected, "{forms:?}");
    forms
}

pub fn statuses(forms: &[Vec<(String, String)>]) -> Vec<String> {
    forms.iter().map(|f| get(f, "CallStatus")).collect()
}

/// A request to vocals' HTTP listener with the account's Basic auth; the status and the JSON body.
pub fn twilio_api(server: &InProcess, method: &str, path: &str, form: &[(&str, &str)]) -> (u16, serde_json::Value) {
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", server.admin)).unwrap();
    let body = serde_urlencoded::to_string(form).unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{ACCOUNT}:{TOKEN}"));
    write!(
        conn,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nAuthorization: Basic {auth}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    conn.read_to_string(&mut response).unwrap();
    let status = response.get(9..12).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("{response}"));
    let json = response.split_once("\r\n\r\n").and_then(|(_, b)| serde_json::from_str(b).ok());
    (status, json.unwrap_or(serde_json::Value::Null))
}

/// The test account's `[[trunks]]` table, its termination SIPp (or a test socket) on `port`.
pub fn trunk(port: u16) -> String {
    format!(
        "[[trunks]]\naccount_sid = \"{ACCOUNT}\"\nauth_token = \"{TOKEN}\"\n\
         termination_uri = \"sip:127.0.0.1:{port}\"\nusername = \"vocals-trunk\"\npassword = \"termination-secret-1\"\n"
    )
}

/// The retried INVITE's `Proxy-Authorization` (from SIPp's message log) answers the 407's challenge with the
/// trunk's credentials: RFC 2617 §3.2.2 computed here, independently of vocals' own digest code.
pub fn digest_is_right(log: &str, username: &str, password: &str) {
    use md5::{Digest, Md5};
    let line = log.lines().find(|l| l.starts_with("Proxy-Authorization: Digest ")).expect("a Proxy-Authorization");
    let param = |name: &str| {
        let rest = line.split(&format!("{name}=")).nth(1).unwrap_or_else(|| panic!("no {name} in {line}"));
        let value = rest
            .strip_prefix('"')
            .map_or_else(|| rest.split([',', ' ']).next().unwrap(), |q| q.split('"').next().unwrap());
        value.to_string()
    };
    let hex = |s: String| Md5::digest(s.as_bytes()).iter().map(|b| format!("{b:02x}")).collect::<String>();
    let ha1 = hex(format!("{username}:{}:{password}", param("realm")));
    let ha2 = hex(format!("INVITE:{}", param("uri")));
    let (nonce, nc, cnonce, qop) = (param("nonce"), param("nc"), param("cnonce"), param("qop"));
    assert_eq!(qop, "auth", "{line}");
    let expected = hex(format!("{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}"));
    assert_eq!(param("response"), expected, "{line}");
}
