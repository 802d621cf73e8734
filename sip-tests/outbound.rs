//! Outbound calls, the way an agent written for Twilio places them: `POST …/Calls.json` with Basic auth and
//! `<Connect><Stream>` TwiML against an in-process vocals whose `[[trunks]]` termination is SIPp playing
//! Twilio's termination side (407 and a digest it checks, 180, 200, RTP echoed, its own BYE); a WebSocket
//! agent that must get `connected`, `start` with the TwiML's parameters and the callee's audio; a status
//! callback server that checks every callback's `X-Twilio-Signature`. SIPp must be installed.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use base64::Engine;
use common::inprocess::InProcess;
use common::{NUMBER, scenario};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

const ACCOUNT: &str = "ACbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const TOKEN: &str = "outbound-auth-token-0123456789";
const CALLEE: &str = "+14155550100";

/// A port no one listens on now (SIPp is told to take it).
fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// SIPp as Twilio's termination side on `port`, running `file` once; its output when it exits.
fn termination(file: &str, port: u16, dir: &std::path::Path) -> std::thread::JoinHandle<(bool, String)> {
    let (file, dir) = (file.to_string(), dir.to_path_buf());
    std::thread::spawn(move || {
        let out = Command::new("sipp")
            .current_dir(&dir)
            .arg("-sf")
            .arg(scenario(&file))
            .args(["-p", &port.to_string(), "-i", "127.0.0.1", "-m", "1", "-rtp_echo", "-mi", "127.0.0.1"])
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
    })
}

/// What the test agent saw of its stream: every event name, the `start` message, the media frames received.
#[derive(Debug, Default)]
struct Seen {
    events: Vec<String>,
    start: serde_json::Value,
    media: usize,
}

/// A Media Streams agent on loopback that takes one stream, sends a second of audio, and reports what it saw.
fn agent() -> (String, mpsc::Receiver<Seen>, tokio::runtime::Runtime) {
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
                    // 50 frames of 20 ms of a tone: SIPp echoes them back, and vocals sends them on to us.
                    let payload = base64::engine::general_purpose::STANDARD.encode([0x55u8; 160]);
                    for _ in 0..50 {
                        let frame =
                            serde_json::json!({"event": "media", "streamSid": sid, "media": {"payload": payload}});
                        let _ = sink.send(Message::Text(frame.to_string().into())).await;
                    }
                }
                "media" => seen.media += 1,
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

/// One HTTP request as the callback server read it: its request line, headers and body.
#[derive(Debug)]
struct Posted {
    line: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Posted {
    fn header(&self, name: &str) -> &str {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map_or("", |(_, v)| v.as_str())
    }

    fn form(&self) -> Vec<(String, String)> {
        serde_urlencoded::from_str(&self.body).unwrap()
    }
}

/// A status callback server: answers 204 to every request and hands each on.
fn callback_server() -> (String, mpsc::Receiver<Posted>) {
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

/// A request to vocals' HTTP listener with Basic auth; the status and the JSON body.
fn twilio_api(server: &InProcess, method: &str, path: &str, form: &[(&str, &str)]) -> (u16, serde_json::Value) {
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

/// The retried INVITE's `Proxy-Authorization` (from SIPp's message log) answers the 407's challenge with the
/// trunk's credentials: RFC 2617 §3.2.2 computed here, independently of vocals' own digest code.
fn digest_is_right(log: &str, username: &str, password: &str) {
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

fn trunk(port: u16) -> String {
    format!(
        "[[trunks]]\naccount_sid = \"{ACCOUNT}\"\nauth_token = \"{TOKEN}\"\n\
         termination_uri = \"sip:127.0.0.1:{port}\"\nusername = \"vocals-trunk\"\npassword = \"termination-secret-1\"\n"
    )
}

#[test]
fn an_agent_written_for_twilio_places_a_call_through_the_trunk_and_hears_the_callee() {
    let sipp_port = free_udp_port();
    let server = InProcess::start_with("outbound", &trunk(sipp_port), &[]);
    let work = server.dir.join("termination");
    std::fs::create_dir_all(&work).unwrap();
    let far_end = termination("termination_auth.xml", sipp_port, &work);
    std::thread::sleep(Duration::from_millis(300));
    let (agent_url, seen, _agent_rt) = agent();
    let (callback_url, posted) = callback_server();
    let twiml = format!(
        "<Response><Connect><Stream url=\"{agent_url}\" name=\"reminder\">\
         <Parameter name=\"campaign\" value=\"spring\"/></Stream></Connect></Response>"
    );
    let path = format!("/2010-04-01/Accounts/{ACCOUNT}/Calls.json");
    let before = server.metrics();
    let (status, call) = twilio_api(
        &server,
        "POST",
        &path,
        &[
            ("To", CALLEE),
            ("From", NUMBER),
            ("Twiml", &twiml),
            ("StatusCallback", &callback_url),
            ("StatusCallbackEvent", "initiated"),
            ("StatusCallbackEvent", "ringing"),
            ("StatusCallbackEvent", "answered"),
            ("StatusCallbackEvent", "completed"),
        ],
    );
    assert_eq!(status, 201, "{call}");
    assert_eq!(call["status"], "queued", "{call}");
    let sid = call["sid"].as_str().unwrap().to_string();
    assert!(sid.starts_with("CA") && sid.len() == 34, "{sid}");
    assert_eq!((call["to"].as_str(), call["from"].as_str()), (Some(CALLEE), Some(NUMBER)));

    let (ok, out) = far_end.join().unwrap();
    assert!(
        ok,
        "the termination side's scenario failed (the digest, the ACK or the BYE):\n{out}\n{:#?}",
        server.calls()
    );
    digest_is_right(&out, "vocals-trunk", "termination-secret-1");
    let seen = seen
        .recv_timeout(Duration::from_secs(10))
        .unwrap_or_else(|_| panic!("the agent's stream never ended; calls: {:#?}", server.calls()));
    assert_eq!(seen.events.first().map(String::as_str), Some("connected"), "{seen:?}");
    assert!(seen.events.contains(&"start".to_string()) && seen.events.contains(&"stop".to_string()), "{seen:?}");
    let start = &seen.start["start"];
    assert_eq!(start["callSid"], sid.as_str(), "{start}");
    assert_eq!(start["accountSid"], ACCOUNT, "{start}");
    assert_eq!(start["customParameters"]["campaign"], "spring", "{start}");
    assert!(seen.media >= 25, "the callee's audio (our tone, echoed) reached the agent: {} frames", seen.media);

    // Every callback asked for, numbered, signed with the account's auth token. Each is its own HTTP request,
    // so they may arrive out of order: SequenceNumber orders them, as Twilio's do.
    let mut numbered = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while numbered.len() < 4 && Instant::now() < deadline {
        let Ok(p) = posted.recv_timeout(Duration::from_secs(5)) else { break };
        assert!(p.line.starts_with("POST /status?call=1 "), "{p:?}");
        let form = p.form();
        let signature = vocals::twilio::signature::sign(TOKEN, &callback_url, &form);
        assert_eq!(p.header("X-Twilio-Signature"), signature, "{p:?}");
        let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default();
        assert_eq!((get("CallSid"), get("AccountSid")), (sid.clone(), ACCOUNT.to_string()));
        let sequence: u32 = get("SequenceNumber").parse().unwrap_or_else(|_| panic!("{form:?}"));
        numbered.push((sequence, get("CallStatus")));
    }
    numbered.sort();
    let sequence: Vec<u32> = numbered.iter().map(|(n, _)| *n).collect();
    assert_eq!(sequence, [0, 1, 2, 3], "numbered from 0 without a gap");
    let statuses: Vec<&str> = numbered.iter().map(|(_, s)| s.as_str()).collect();
    assert_eq!(statuses, ["initiated", "ringing", "in-progress", "completed"]);

    let (status, view) = twilio_api(&server, "GET", &format!("/2010-04-01/Accounts/{ACCOUNT}/Calls/{sid}.json"), &[]);
    assert_eq!((status, view["status"].as_str()), (200, Some("completed")), "{view}");
    let completed = r#"vocals_outbound_calls_total{status="completed"}"#;
    assert_eq!(server.metrics().delta(&before, completed), 1.0, "{completed}");
    let record = server.calls().into_iter().find(|c| c["call_sid"] == sid.as_str()).expect("a call record");
    assert_eq!(record["sip_status"], 200, "{record}");
    assert!(record["sip_call_id"].as_str().is_some_and(|id| id.starts_with("vc") && id.contains('@')), "{record}");
    assert!(!record["answer_at"].is_null(), "{record}");
}

#[test]
fn requests_that_cannot_be_placed_get_twilios_errors() {
    let server = InProcess::start_with("outbound-refusals", &trunk(free_udp_port()), &[]);
    let path = format!("/2010-04-01/Accounts/{ACCOUNT}/Calls.json");
    let twiml = "<Response><Connect><Stream url=\"ws://127.0.0.1:9/s\"/></Connect></Response>";
    // A From number that is not the account's.
    let (status, body) =
        twilio_api(&server, "POST", &path, &[("To", CALLEE), ("From", "+14155550999"), ("Twiml", twiml)]);
    assert_eq!((status, body["code"].as_u64()), (400, Some(21210)), "{body}");
    // TwiML vocals cannot run names the element.
    let say = "<Response><Say>Hello</Say></Response>";
    let (status, body) = twilio_api(&server, "POST", &path, &[("To", CALLEE), ("From", NUMBER), ("Twiml", say)]);
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap_or_default().contains("Say"), "{body}");
    // Wrong credentials.
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", server.admin)).unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{ACCOUNT}:wrong-token-wrong-token"));
    write!(conn, "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Basic {auth}\r\nContent-Length: 0\r\n\r\n").unwrap();
    let mut response = String::new();
    conn.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 401"), "{response}");
    // Another account's path with this account's token.
    let other = "/2010-04-01/Accounts/ACcccccccccccccccccccccccccccccccc/Calls.json";
    let (status, _) = twilio_api(&server, "POST", other, &[("To", CALLEE), ("From", NUMBER), ("Twiml", twiml)]);
    assert_eq!(status, 401);
}
