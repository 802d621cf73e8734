//! Agent streams end to end: a SIP caller (the Rust RTP client) -> vocals -> an in-test WebSocket
//! agent (tokio-tungstenite server) that checks every frame against the Twilio Media Streams shapes
//! (MEDIA-STREAMS.md: field names, numbers as strings, one sequence counter, chunks, 20 ms timestamps) and
//! answers the way Twilio agents do: `media` back, `mark` per chunk, `clear` on barge-in, closing to hang up.
//!
//! vocals runs in-process (`common::inprocess::InProcess`, on ports bound to 0), and the tests assert on the
//! wire, the call records (`/v1/calls`) and `/metrics` (counted as the change over a test: the servers of this
//! binary share the process's recorder, and the tests take turns). Two tests run the real binary (`Server`):
//! the wss:// one hands vocals its trust store through the process environment (`SSL_CERT_FILE`, read when the
//! agent client is built), and the malicious-agent one measures the server process's resident memory.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};

use common::inprocess::InProcess;
use common::{Caller, Server, Via, header, sipp};

/// The tests take turns: latency and pacing are measured while nothing else runs.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn turn() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The number the tests dial: not in the table, so it goes to `default_agent` (the test agent).
const DIALED: &str = "+14155550177";

/// Marks a flooding agent sends at most (60 KB names: 240 MB).
const FLOOD_MARKS: usize = 4_000;

/// How the test agent behaves.
#[derive(Clone, Copy, Debug)]
enum Mode {
    /// Sends every caller frame back as `media`, a `mark` after every 10th.
    Echo,
    /// Sends 5 s of audio at once with a mark after it, then `clear` after 500 ms.
    Barge,
    /// Closes the socket 300 ms after `start` (hangs up).
    HangUp,
    /// Drops the TCP connection 300 ms after `start`, without a WebSocket close: a failed stream.
    Abort,
    /// Stops reading after `start`, with a tiny receive buffer: a stalled agent.
    Stall,
    /// Asks for a blind transfer to this target 300 ms after `start` (the vocals `transfer` extension).
    Transfer(&'static str),
    /// Asks for a blind transfer to this target with an `X-Ticket: 4711` header for the REFER.
    TransferWith(&'static str),
    /// Hangs up with the `hangup` event 300 ms after `start`: first with a `Via` header (refused with an
    /// `error` event), then with an X- header and User-to-User for the BYE.
    HangUpWith,
    /// Asks for a transfer to each target in turn, 100 ms apart, from 300 ms after `start`.
    TransferEach(&'static [&'static str]),
    /// Queues 20 s of audio, then floods marks with names of this many bytes (a malicious agent), until vocals
    /// closes the stream.
    MarkFlood(usize),
    /// Sends one 300 KiB message (a `media` frame of 28 s of audio).
    Oversized,
    /// Hangs up 300 ms after `start` through the Twilio-compatible REST endpoint on the port this holds (set
    /// once the server is up), as Pipecat does with `base_url` (Basic auth: the account id and the agent's auth
    /// token).
    RestHangUp(&'static std::sync::atomic::AtomicU16),
}

/// What the agent saw on one connection.
#[derive(Debug, Default)]
struct Seen {
    frames: Vec<Value>,
    /// Marks vocals echoed, with when they came.
    marks: Vec<(String, Instant)>,
    clear_sent: Option<Instant>,
    /// The REST hang-up's HTTP status line.
    rest_status: Option<String>,
    /// vocals' close frame: its code and reason.
    close: Option<(u16, String)>,
}

struct Agent {
    url: String,
    seen: std_mpsc::Receiver<Seen>,
    /// The `X-Twilio-Signature` of each handshake.
    signatures: std_mpsc::Receiver<Option<String>>,
    _rt: tokio::runtime::Runtime,
}

impl Agent {
    fn start(mode: Mode) -> Agent {
        Agent::start_tls(mode, None)
    }

    /// An agent behind TLS (`wss://localhost`) when `tls` is given.
    fn start_tls(mode: Mode, tls: Option<tokio_rustls::TlsAcceptor>) -> Agent {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let listener = {
            let _guard = rt.enter();
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            if let Mode::Stall = mode {
                socket.set_recv_buffer_size(2048).unwrap();
            }
            socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
            socket.listen(16).unwrap()
        };
        let port = listener.local_addr().unwrap().port();
        let url = if tls.is_some() {
            format!("wss://localhost:{port}/stream")
        } else {
            format!("ws://127.0.0.1:{port}/stream")
        };
        let (tx, seen) = std_mpsc::channel();
        let (sig_tx, signatures) = std_mpsc::channel();
        rt.spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (tx, sig_tx, tls) = (tx.clone(), sig_tx.clone(), tls.clone());
                tokio::spawn(async move {
                    // The signature tungstenite's handshake callback must have.
                    #[allow(clippy::result_large_err)]
                    let record = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
                        let sig = req.headers().get("X-Twilio-Signature").map(|v| v.to_str().unwrap_or("").to_string());
                        let _ = sig_tx.send(sig);
                        Ok(resp)
                    };
                    match tls {
                        Some(acceptor) => {
                            let Ok(stream) = acceptor.accept(tcp).await else { return };
                            let Ok(ws) = tokio_tungstenite::accept_hdr_async(stream, record).await else { return };
                            let _ = tx.send(serve(ws, mode).await);
                        }
                        None => {
                            let Ok(ws) = tokio_tungstenite::accept_hdr_async(tcp, record).await else { return };
                            let _ = tx.send(serve(ws, mode).await);
                        }
                    }
                });
            }
        });
        Agent { url, seen, signatures, _rt: rt }
    }

    fn config(&self) -> String {
        format!(
            "[[agents]]\nname = \"bot\"\nurl = \"{}\"\nconnect_timeout_ms = 2000\n\
             [agents.parameters]\nsystem_prompt = \"Be brief.\"\n",
            self.url
        )
    }

    fn seen(&self) -> Seen {
        self.seen.recv_timeout(Duration::from_secs(10)).expect("the agent's connection ended")
    }
}

async fn serve<S>(ws: tokio_tungstenite::WebSocketStream<S>, mode: Mode) -> Seen
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (mut tx, mut rx) = ws.split();
    let mut seen = Seen::default();
    let mut media = 0u32;
    let mut stream_sid = String::new();
    let hang_up = tokio::time::sleep(Duration::from_secs(3600));
    tokio::pin!(hang_up);
    let clear_at = tokio::time::sleep(Duration::from_secs(3600));
    tokio::pin!(clear_at);
    loop {
        let msg = tokio::select! {
            m = rx.next() => m,
            _ = &mut hang_up => { let _ = tx.close().await; return seen; }
            _ = &mut clear_at => {
                let clear = json!({"event": "clear", "streamSid": stream_sid});
                seen.clear_sent = Some(Instant::now());
                let _ = tx.send(Message::text(clear.to_string())).await;
                clear_at.as_mut().reset(tokio::time::Instant::now() + Duration::from_secs(3600));
                continue;
            }
        };
        let text = match msg {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(frame))) => {
                // Read on: the reply to vocals' close goes out, then the stream ends.
                seen.close = frame.map(|f| (u16::from(f.code), f.reason.as_str().to_string()));
                continue;
            }
            _ => return seen,
        };
        let v: Value = serde_json::from_str(text.as_str()).expect("vocals sends JSON");
        seen.frames.push(v.clone());
        match v["event"].as_str().unwrap_or("") {
            "start" => {
                stream_sid = v["streamSid"].as_str().unwrap_or("").to_string();
                match mode {
                    Mode::Abort => {
                        tokio::time::sleep(Duration::from_millis(300)).await;
                        // Dropping both halves closes the TCP connection with no closing handshake.
                        return seen;
                    }
                    Mode::Transfer(to) => {
                        tokio::time::sleep(Duration::from_millis(300)).await;
                        let t = json!({"event": "transfer", "streamSid": stream_sid, "transfer": {"to": to}});
                        let _ = tx.send(Message::text(t.to_string())).await;
                    }
                    Mode::TransferWith(to) => {
                        tokio::time::sleep(Duration::from_millis(300)).await;
                        let headers = json!({"X-Ticket": "4711"});
                        let t = json!({"event": "transfer", "streamSid": stream_sid, "transfer": {"to": to, "headers": headers}});
                        let _ = tx.send(Message::text(t.to_string())).await;
                    }
                    Mode::HangUpWith => {
                        tokio::time::sleep(Duration::from_millis(300)).await;
                        let refused = json!({"Via": "SIP/2.0/UDP evil.example;branch=z9hG4bKevil"});
                        let h = json!({"event": "hangup", "streamSid": stream_sid, "hangup": {"headers": refused}});
                        let _ = tx.send(Message::text(h.to_string())).await;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        let headers =
                            json!({"X-Outcome": "booked", "User-to-User": "56a390f3d2b7310023a2;encoding=hex"});
                        let h = json!({"event": "hangup", "streamSid": stream_sid, "hangup": {"headers": headers}});
                        let _ = tx.send(Message::text(h.to_string())).await;
                    }
                    Mode::TransferEach(targets) => {
                        tokio::time::sleep(Duration::from_millis(300)).await;
                        for to in targets {
                            let t = json!({"event": "transfer", "streamSid": stream_sid, "transfer": {"to": to}});
                            let _ = tx.send(Message::text(t.to_string())).await;
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                    Mode::MarkFlood(name_len) => {
                        // 20 s of audio queued first, so the marks wait for it instead of being echoed at once.
                        for _ in 0..2 {
                            let audio = STANDARD.encode(vec![0x42u8; 80_000]);
                            let m = json!({"event": "media", "streamSid": stream_sid, "media": {"payload": audio}});
                            let _ = tx.send(Message::text(m.to_string())).await;
                        }
                        let name = "n".repeat(name_len);
                        let mark =
                            json!({"event": "mark", "streamSid": stream_sid, "mark": {"name": name}}).to_string();
                        for _ in 0..FLOOD_MARKS {
                            tokio::select! {
                                biased;
                                m = rx.next() => match m {
                                    Some(Ok(Message::Close(frame))) => {
                                        seen.close = frame.map(|f| (u16::from(f.code), f.reason.as_str().to_string()));
                                        break;
                                    }
                                    Some(Ok(Message::Text(t))) => {
                                        seen.frames.push(serde_json::from_str(t.as_str()).expect("vocals sends JSON"));
                                    }
                                    _ => return seen,
                                },
                                r = tx.send(Message::text(mark.clone())) => if r.is_err() { break },
                            }
                        }
                    }
                    Mode::Oversized => {
                        let audio = STANDARD.encode(vec![0x42u8; 230_000]);
                        let m = json!({"event": "media", "streamSid": stream_sid, "media": {"payload": audio}});
                        let _ = tx.send(Message::text(m.to_string())).await;
                    }
                    Mode::RestHangUp(port) => {
                        let start = &v["start"];
                        let (ac, ca) =
                            (start["accountSid"].as_str().unwrap_or(""), start["callSid"].as_str().unwrap_or(""));
                        tokio::time::sleep(Duration::from_millis(300)).await;
                        let port = port.load(std::sync::atomic::Ordering::Relaxed);
                        let status = rest_hangup(port, ac, ca, "t0ken-t0ken-t0ken").await;
                        seen.rest_status = Some(status);
                    }
                    Mode::Stall => {
                        tokio::time::sleep(Duration::from_secs(15)).await;
                        return seen;
                    }
                    Mode::HangUp => hang_up.as_mut().reset(tokio::time::Instant::now() + Duration::from_millis(300)),
                    Mode::Barge => {
                        let reply = STANDARD.encode(vec![0x42u8; 8000 * 5]);
                        let m = json!({"event": "media", "streamSid": stream_sid, "media": {"payload": reply}});
                        let _ = tx.send(Message::text(m.to_string())).await;
                        let mark = json!({"event": "mark", "streamSid": stream_sid, "mark": {"name": "reply"}});
                        let _ = tx.send(Message::text(mark.to_string())).await;
                        clear_at.as_mut().reset(tokio::time::Instant::now() + Duration::from_millis(500));
                    }
                    _ => {}
                }
            }
            "media" if matches!(mode, Mode::Echo) => {
                media += 1;
                let payload = &v["media"]["payload"];
                let m = json!({"event": "media", "streamSid": stream_sid, "media": {"payload": payload}});
                let _ = tx.send(Message::text(m.to_string())).await;
                if media.is_multiple_of(10) {
                    let mark = json!({"event": "mark", "streamSid": stream_sid, "mark": {"name": format!("m{media}")}});
                    let _ = tx.send(Message::text(mark.to_string())).await;
                }
            }
            "mark" => seen.marks.push((v["mark"]["name"].as_str().unwrap_or("").to_string(), Instant::now())),
            "stop" => return seen,
            _ => {}
        }
    }
}

/// `POST /2010-04-01/Accounts/{AC}/Calls/{CA}.json` with `Status=completed`, over a raw HTTP/1.1
/// connection; returns the status line.
async fn rest_hangup(port: u16, account: &str, call: &str, token: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = "Status=completed";
    let auth = STANDARD.encode(format!("{account}:{token}"));
    let request = format!(
        "POST /2010-04-01/Accounts/{account}/Calls/{call}.json HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
         Authorization: Basic {auth}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response).await;
    response.lines().next().unwrap_or("").to_string()
}

/// Checks a connection's frames against MEDIA-STREAMS.md; returns the media payloads.
fn check_frames(frames: &[Value]) -> Vec<Vec<u8>> {
    assert_eq!(frames[0], json!({"event": "connected", "protocol": "Call", "version": "1.0.0"}));
    let start = &frames[1];
    assert_eq!(start["event"], "start");
    assert_eq!(start["sequenceNumber"], "1");
    let sid = start["streamSid"].as_str().unwrap();
    assert!(sid.len() == 34 && sid.starts_with("MZ") && sid[2..].chars().all(|c| c.is_ascii_hexdigit()), "{sid}");
    let s = &start["start"];
    assert_eq!(s["streamSid"], sid);
    assert_eq!(s["accountSid"], "ACbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb");
    let call_sid = s["callSid"].as_str().unwrap();
    assert!(call_sid.len() == 34 && call_sid.starts_with("CA"), "the caller's X-Twilio-CallSid: {call_sid}");
    assert_eq!(s["tracks"], json!(["inbound"]));
    assert_eq!(s["mediaFormat"], json!({"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}));
    let custom = &s["customParameters"];
    assert_eq!((custom["from"].as_str(), custom["to"].as_str()), (Some("+12125550100"), Some(DIALED)));
    assert_eq!((custom["agent"].as_str(), custom["system_prompt"].as_str()), (Some("bot"), Some("Be brief.")));
    assert_eq!((custom["agentId"].as_str(), custom["agentName"].as_str()), (Some("bot"), Some("bot")));
    assert_eq!(custom["X-Twilio-CallSid"], call_sid, "SIP headers passed on");
    let mut payloads = Vec::new();
    let mut last_ts: Option<u64> = None;
    for (i, f) in frames.iter().enumerate().skip(1) {
        assert_eq!(f["sequenceNumber"], (i).to_string(), "one counter over every frame after connected: {f}");
        assert_eq!(f["streamSid"], sid);
        if f["event"] == "media" {
            let m = &f["media"];
            assert_eq!(m["track"], "inbound");
            assert_eq!(m["chunk"], (payloads.len() + 1).to_string(), "chunks count media frames from 1");
            let ts: u64 = m["timestamp"].as_str().expect("timestamp is a string").parse().unwrap();
            if let Some(last) = last_ts {
                assert_eq!(ts, last + 20, "timestamps advance 20 ms per frame");
            }
            last_ts = Some(ts);
            let payload = STANDARD.decode(m["payload"].as_str().unwrap()).unwrap();
            assert_eq!(payload.len(), 160, "20 ms of μ-law");
            payloads.push(payload);
        }
    }
    payloads
}

/// Frame `k` of the caller's signal: a tone whose level changes every frame, so no two frames are alike.
fn frame(k: usize) -> [u8; 160] {
    let mut f = [0u8; 160];
    for (i, b) in f.iter_mut().enumerate() {
        let t = (k * 160 + i) as f64 / 8000.0;
        let level = 3000.0 + 40.0 * k as f64;
        *b = vocals::media::g711::ulaw_encode((level * (2.0 * std::f64::consts::PI * 523.0 * t).sin()) as i16);
    }
    f
}

fn rtp(seq: u16, marker: bool, pt: u8, ts: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; 12 + payload.len()];
    let p = vocals::media::rtp::RtpPacket { marker, payload_type: pt, seq, timestamp: ts, ssrc: 0xCA11, payload };
    vocals::media::rtp::build(&p, &mut out).unwrap();
    out
}

/// Receives what vocals sends the caller until 1.5 s of quiet: (arrival, payload).
fn receive(socket: &UdpSocket) -> std::thread::JoinHandle<Vec<(Instant, Vec<u8>)>> {
    let heard = receive_rtp(socket);
    std::thread::spawn(move || heard.join().unwrap().into_iter().map(|h| (h.0, h.4)).collect())
}

/// Every RTP packet until the socket is quiet for 1.5 s, with its header: (arrival, marker, seq, timestamp,
/// payload).
type Heard = (Instant, bool, u16, u32, Vec<u8>);

fn receive_rtp(socket: &UdpSocket) -> std::thread::JoinHandle<Vec<Heard>> {
    let rx = socket.try_clone().unwrap();
    rx.set_read_timeout(Some(Duration::from_millis(1500))).unwrap();
    std::thread::spawn(move || {
        let mut got = Vec::new();
        let mut buf = [0u8; 1500];
        while let Ok(n) = rx.recv(&mut buf) {
            if let Ok(p) = vocals::media::rtp::parse(&buf[..n]) {
                got.push((Instant::now(), p.marker, p.seq, p.timestamp, p.payload.to_vec()));
            }
        }
        got
    })
}

fn is_audio(p: &[u8]) -> bool {
    p.iter().any(|&b| b != 0xFF)
}

#[test]
fn a_websocket_agent_hears_the_caller_speaks_back_gets_dtmf_and_marks_at_playout_time() {
    let _turn = turn();
    let agent = Agent::start(Mode::Echo);
    let server = InProcess::start_with("agent-echo", &agent.config(), &[("VOCALS_DEFAULT_AGENT", "bot")]);
    let before = server.metrics();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (caller, remote) = Caller::invite_to(&server, &socket, "agent-echo", DIALED);
    let got = receive(&socket);
    // 100 frames of audio, then the digit 5 (three event packets on the next sequence numbers), then 20 more.
    let start = Instant::now();
    let mut sent = Vec::new();
    for slot in 0..123usize {
        let seq = slot as u16;
        let due = start + Duration::from_millis(20 * slot as u64);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        let packet = if (100..103).contains(&slot) {
            let end = if slot == 102 { 0x80 } else { 0 };
            let duration = 160 * (slot as u16 - 99);
            rtp(seq, slot == 100, 101, 100 * 160, &[5, end, (duration >> 8) as u8, duration as u8])
        } else {
            let k = sent.len();
            sent.push(frame(k));
            rtp(seq, slot == 0, 0, slot as u32 * 160, &frame(k))
        };
        socket.send_to(&packet, remote).unwrap();
    }
    std::thread::sleep(Duration::from_millis(400));
    caller.request("BYE", 2);
    let seen = agent.seen();
    let got = got.join().unwrap();

    // The agent heard every frame, in order, in Twilio's frame shapes, then the stop.
    let payloads = check_frames(&seen.frames);
    let heard: Vec<&Vec<u8>> = payloads.iter().filter(|p| is_audio(p)).collect();
    assert_eq!(heard.len(), sent.len());
    assert!(heard.iter().zip(&sent).all(|(h, s)| h.as_slice() == s.as_slice()), "uplink audio changed");
    let dtmf: Vec<&Value> = seen.frames.iter().filter(|f| f["event"] == "dtmf").collect();
    assert_eq!(dtmf.len(), 1, "one digit per key press");
    assert_eq!(dtmf[0]["dtmf"], json!({"track": "inbound_track", "digit": "5"}));
    let last = seen.frames.last().unwrap();
    assert_eq!(last["event"], "stop");
    assert_eq!(
        last["stop"],
        json!({"accountSid": "ACbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "callSid": common::call_sid("agent-echo")})
    );
    // The caller heard the agent: its own audio, exactly, in order.
    let back: Vec<&Vec<u8>> = got.iter().map(|g| &g.1).filter(|p| is_audio(p)).collect();
    assert_eq!(back.len(), sent.len());
    assert!(back.iter().zip(&sent).all(|(b, s)| b.as_slice() == s.as_slice()), "downlink audio changed");
    // Every mark came back in order, each once the audio before it had been sent as RTP.
    let names: Vec<&str> = seen.marks.iter().map(|(n, _)| n.as_str()).collect();
    let expected: Vec<String> = (1..=payloads.len() as u32 / 10).map(|i| format!("m{}", i * 10)).collect();
    assert_eq!(names, expected.iter().map(String::as_str).collect::<Vec<_>>());
    let arrival_of_frame = |k: usize| got.iter().filter(|g| is_audio(&g.1)).nth(k).map(|g| g.0);
    let m10 = seen.marks[0].1;
    let played = arrival_of_frame(9).unwrap();
    assert!(m10 + Duration::from_millis(5) >= played, "mark m10 came before its audio was sent");
    // RTP arrival -> WebSocket frame written, from the call's record.
    let record = server.call_stats("agent-echo");
    let figure = |key: &str| record["stats"]["agent"][key].as_u64().unwrap_or_else(|| panic!("{key}: {record:#}"));
    let (p50, p99) = (figure("uplink_p50_us"), figure("uplink_p99_us"));
    println!("uplink latency, RTP arrival to WebSocket frame written: median {p50} us, p99 {p99} us (100 us bins)");
    assert!(p50 <= 1_000, "median {p50} us");
    // The same figures, exported for Prometheus: this call's share of them.
    let metrics = server.http_get("/metrics");
    let after = common::Metrics::parse(&metrics);
    for (series, n) in [
        ("vocals_invites_total{result=\"answered\"}", 1.0),
        ("vocals_agent_connect_seconds_count", 1.0),
        ("vocals_rtp_packets_total{direction=\"in\"}", 123.0),
    ] {
        assert_eq!(after.delta(&before, series), n, "{series} in\n{metrics}");
    }
    assert_eq!(after.get("vocals_calls_active"), 0.0, "{metrics}");
    let underruns = metrics.lines().find(|l| l.starts_with("vocals_playout_underruns_total ")).expect(&metrics);
    println!("{underruns} (holes of silence inside the agent's replies, every call of this test binary)");
    let frames_timed = after.delta(&before, "vocals_agent_uplink_latency_seconds_count");
    assert_eq!(frames_timed, 123.0, "every uplink frame timed");
    assert!(metrics.contains("vocals_agent_uplink_latency_seconds_bucket{le=\"0.001\"}"), "{metrics}");
    // The call's timeline has what the agent did, in order: reached before the answer, its marks sent and
    // played, the digit, the end; and its latency each second.
    let (status, timeline) = server.api("GET", &format!("/v1/calls/{}/timeline", record["id"].as_str().unwrap()), None);
    assert_eq!(status, 200, "{timeline}");
    let events = timeline["events"].as_array().unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(&kinds[..2], ["connected", "start"], "{kinds:?}");
    assert!(events[0]["at_ms"].as_i64().unwrap() <= 0, "reached before the answer: {}", events[0]);
    let count = |k: &str| kinds.iter().filter(|x| **x == k).count();
    assert_eq!((count("mark"), count("mark played"), count("dtmf")), (names.len(), names.len(), 1), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"end"), "{kinds:?}");
    let played: Vec<&str> =
        events.iter().filter(|e| e["kind"] == "mark played").map(|e| e["detail"].as_str().unwrap()).collect();
    assert_eq!(played, names);
    let up = timeline["fields"].as_array().unwrap().iter().position(|f| f == "uplink_p50_ms").unwrap();
    assert!(
        timeline["samples"].as_array().unwrap().iter().any(|s| s[up].as_f64().is_some_and(|v| v < 1.0)),
        "{timeline}"
    );
}

#[test]
fn dtmf_sent_by_sip_info_reaches_the_agent_as_its_dtmf_event() {
    let _turn = turn();
    let agent = Agent::start(Mode::Echo);
    let server = InProcess::start_with("agent-info-dtmf", &agent.config(), &[("VOCALS_DEFAULT_AGENT", "bot")]);
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (caller, remote) = Caller::invite_to(&server, &socket, "agent-info-dtmf", DIALED);
    let got = receive(&socket);
    for slot in 0..25u16 {
        socket.send_to(&rtp(slot, slot == 0, 0, u32::from(slot) * 160, &frame(slot.into())), remote).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        match slot {
            5 => caller.request_with_body("INFO", 2, Some("application/dtmf-relay"), "Signal=7\r\nDuration=250\r\n"),
            10 => caller.request_with_body("INFO", 3, Some("application/dtmf"), "#"),
            _ => {}
        }
    }
    // Each INFO is answered 200 (the receive thread has the RTP socket; SIP answers come on the caller's).
    let answers: Vec<String> = (0..2).map(|_| caller.recv()).collect();
    assert!(answers.iter().all(|a| a.starts_with("SIP/2.0 200")), "{answers:?}");
    caller.request("BYE", 4);
    let seen = agent.seen();
    drop(got.join());
    let digits: Vec<&Value> = seen.frames.iter().filter(|f| f["event"] == "dtmf").map(|f| &f["dtmf"]).collect();
    assert_eq!(
        digits,
        [&json!({"track": "inbound_track", "digit": "7"}), &json!({"track": "inbound_track", "digit": "#"})],
        "one dtmf event per INFO, in order (the caller's RTP carried no telephone-event: they came by INFO)"
    );
}

#[test]
fn clear_stops_a_long_reply_within_a_frame_and_releases_its_mark() {
    let _turn = turn();
    let agent = Agent::start(Mode::Barge);
    let server = InProcess::start_with("agent-clear", &agent.config(), &[("VOCALS_DEFAULT_AGENT", "bot")]);
    let before = server.metrics();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (caller, remote) = Caller::invite_to(&server, &socket, "agent-clear", DIALED);
    let heard = receive_rtp(&socket);
    for k in 0..60u16 {
        socket.send_to(&rtp(k, k == 0, 0, u32::from(k) * 160, &[0xFF; 160]), remote).unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    caller.request("BYE", 2);
    let seen = agent.seen();
    let heard = heard.join().unwrap();
    // What a receiver sees of the re-phased send clock: consecutive sequence numbers, timestamps that only go
    // forward and follow the wall clock (each step, in samples, matches the time between the packets), and the
    // marker on the reply's first packet.
    for w in heard.windows(2) {
        let ((a_at, _, a_seq, a_ts, _), (b_at, _, b_seq, b_ts, _)) = (&w[0], &w[1]);
        assert_eq!(*b_seq, a_seq.wrapping_add(1), "sequence numbers are consecutive");
        let step = b_ts.wrapping_sub(*a_ts) as i32;
        assert!(step > 0, "the timestamp went back or stood still: {a_ts} then {b_ts}");
        let (clock_ms, wall_ms) = (f64::from(step) / 8.0, (*b_at - *a_at).as_secs_f64() * 1000.0);
        assert!((clock_ms - wall_ms).abs() <= 10.0, "a {clock_ms} ms timestamp step over {wall_ms:.1} ms");
    }
    let first = heard.iter().position(|h| h.4.iter().all(|&b| b == 0x42)).expect("the reply was heard");
    assert!(heard[first].1, "the reply's first packet carries the marker");
    let got: Vec<(Instant, Vec<u8>)> = heard.into_iter().map(|h| (h.0, h.4)).collect();
    let clear = seen.clear_sent.expect("the agent sent clear");
    let reply: Vec<Instant> = got.iter().filter(|g| g.1.iter().all(|&b| b == 0x42)).map(|g| g.0).collect();
    assert!(reply.len() >= 15 && reply.len() <= 35, "{} frames of the reply played before the clear", reply.len());
    let last = *reply.last().unwrap();
    assert!(last <= clear + Duration::from_millis(30), "reply audio {:?} after the clear", last - clear);
    let record = server.call_stats("agent-clear");
    let downlink = record["stats"]["agent"]["downlink_p50_us"].as_u64().unwrap_or_else(|| panic!("{record:#}"));
    // Each reply's first packet is timed once: the downlink histogram counts the replies.
    let replies = server.metrics().delta(&before, "vocals_agent_downlink_latency_seconds_count");
    println!("downlink: agent audio received -> first RTP packet out: {downlink} us");
    assert_eq!(replies, 1.0, "one reply started");
    // The reply starts a talk spurt after silence: the send clock re-phases to it instead of making it wait
    // for the next 20 ms tick (0-20 ms, 10 ms on average).
    assert!(downlink <= 5_000, "the reply's first packet waited {downlink} us");
    let (name, at) = seen.marks.first().expect("the reply's mark was released by clear");
    assert_eq!(name, "reply");
    assert!(*at < clear + Duration::from_millis(100), "the mark came {:?} after the clear", *at - clear);
}

#[test]
fn the_agent_closing_its_socket_hangs_up_and_an_unreachable_agent_gets_503() {
    let _turn = turn();
    let agent = Agent::start(Mode::HangUp);
    let server = InProcess::start_with("agent-hangup", &agent.config(), &[("VOCALS_DEFAULT_AGENT", "bot")]);
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (caller, _) = Caller::invite_to(&server, &socket, "agent-hangup", DIALED);
    let bye = loop {
        let msg = caller.recv();
        if msg.starts_with("BYE ") {
            break msg;
        }
    };
    assert!(header(&bye, "Reason").contains("agent hung up"), "{bye}");
    drop(server);

    // The agent's connection breaks mid-call: BYE with a Reason, and the call record says why.
    let agent = Agent::start(Mode::Abort);
    let server = InProcess::start_with("agent-abort", &agent.config(), &[("VOCALS_DEFAULT_AGENT", "bot")]);
    let (caller, _) = Caller::invite_to(&server, &socket, "agent-abort", DIALED);
    let bye = loop {
        let msg = caller.recv();
        if msg.starts_with("BYE ") {
            break msg;
        }
    };
    assert!(header(&bye, "Reason").contains("stream failed"), "{bye}");
    assert!(
        !header(&bye, "Reason").contains("stream failed:"),
        "the Reason keeps the agent's error to the record: {bye}"
    );
    caller.respond_ok(&bye);
    let record = server.call_stats("agent-abort");
    let ending = record["stats"]["agent"]["ending"].as_str().unwrap_or_default();
    assert!(ending.starts_with("the agent's stream failed"), "{record:#}");
    drop(server);

    // The agent hangs up through the Twilio-compatible REST endpoint instead.
    static SERVER_ADMIN: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
    let agent = Agent::start(Mode::RestHangUp(&SERVER_ADMIN));
    let config = format!(
        "{}auth_token = \"t0ken-t0ken-t0ken\"\n",
        agent.config().replace("[agents.parameters]\nsystem_prompt = \"Be brief.\"\n", "")
    );
    let server = InProcess::start_with("agent-rest", &config, &[("VOCALS_DEFAULT_AGENT", "bot")]);
    SERVER_ADMIN.store(server.admin, std::sync::atomic::Ordering::Relaxed);
    let (caller, _) = Caller::invite_to(&server, &socket, "agent-rest", DIALED);
    let bye = loop {
        let msg = caller.recv();
        if msg.starts_with("BYE ") {
            break msg;
        }
    };
    assert!(header(&bye, "Reason").contains("REST"), "{bye}");
    caller.respond_ok(&bye);
    let seen = agent.seen();
    assert_eq!(seen.rest_status.as_deref(), Some("HTTP/1.1 200 OK"));
    assert_eq!(seen.frames.last().unwrap()["event"], "stop", "vocals ended the stream after the hang-up");

    // Nothing listens at the agent's address: the ringing call is refused, never answered into silence.
    let closed: SocketAddr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let config = format!("[[agents]]\nname = \"bot\"\nurl = \"ws://{closed}/stream\"\n");
    let server = InProcess::start_with("agent-down", &config, &[("VOCALS_DEFAULT_AGENT", "bot")]);
    let (_, answer) = Caller::send_invite_to(&server, &socket, "agent-down", DIALED);
    assert!(answer.starts_with("SIP/2.0 503"), "{answer}");
    assert!(header(&answer, "Reason").contains("the agent is unavailable"), "the 503 says why:\n{answer}");
    // ... but not the agent's internal error, which stays in the log and the record.
    assert!(!header(&answer, "Reason").contains("refused") && !answer.contains("os error"), "{answer}");
    let record = server.ended_call("agent-down");
    let why = record["end_reason"].as_str().unwrap_or_default();
    assert!(why.starts_with("agent unavailable: ") && why.contains("refused"), "{record:#}");
    assert_eq!(record["sip_status"], 503, "{record:#}");
    assert!(!header(&answer, "Retry-After").is_empty(), "{answer}");
}

#[test]
fn a_wss_agent_is_reached_over_tls_and_can_check_the_handshake_signature() {
    let _turn = turn();
    // A self-signed certificate for localhost, trusted by vocals through SSL_CERT_FILE (the system trust store
    // otherwise).
    let key = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert_der = key.cert.der().clone();
    let key_der = rustls::pki_types::PrivateKeyDer::try_from(key.signing_key.serialize_der()).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert_der], key_der)
        .unwrap();
    let agent = Agent::start_tls(Mode::Echo, Some(tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config))));
    let ca = std::env::temp_dir().join(format!("vocals-agent-ca-{}.pem", std::process::id()));
    std::fs::write(&ca, key.cert.pem()).unwrap();
    let extra = format!(
        "[[agents]]\nname = \"bot\"\nurl = \"{}\"\nsecret = \"s3cret-s3cret-s3cret\"\n[agents.parameters]\nsystem_prompt = \"Be brief.\"\n",
        agent.url
    );
    let ca_path = ca.to_string_lossy().into_owned();
    let server = Server::start_with(
        "agent-wss",
        &extra,
        &[("VOCALS_DEFAULT_AGENT", "bot"), ("SSL_CERT_FILE", ca_path.as_str())],
    );
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (caller, remote) = Caller::invite_to(&server, &socket, "agent-wss", DIALED);
    let got = receive(&socket);
    for k in 0..25usize {
        socket.send_to(&rtp(k as u16, k == 0, 0, k as u32 * 160, &frame(k)), remote).unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    caller.request("BYE", 2);
    let seen = agent.seen();
    let got = got.join().unwrap();
    let _ = std::fs::remove_file(&ca);
    assert_eq!(check_frames(&seen.frames).iter().filter(|p| is_audio(p)).count(), 25);
    assert_eq!(got.iter().filter(|g| is_audio(&g.1)).count(), 25, "the agent's audio came back over TLS");
    let signature = agent.signatures.recv_timeout(Duration::from_secs(1)).unwrap();
    assert_eq!(signature.as_deref(), Some(vocals::io::agent::sign("s3cret-s3cret-s3cret", &agent.url).as_str()));
}

#[test]
fn a_stalled_agent_never_stalls_the_caller_loses_the_oldest_frames_counted_and_is_hung_up_on() {
    let _turn = turn();
    let agent = Agent::start(Mode::Stall);
    let env = [("VOCALS_DEFAULT_AGENT", "bot"), ("VOCALS_MEDIA_AGENT_STALL_TIMEOUT", "3")];
    let server = InProcess::start_with("agent-stall", &agent.config(), &env);
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (caller, remote) = Caller::invite_to(&server, &socket, "agent-stall", DIALED);
    let got = receive(&socket);
    let start = Instant::now();
    // The caller talks for 12 s at most; vocals hangs up once the agent has taken nothing for 3 s (after the
    // kernel's buffers filled, a second or two in).
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let talking = done.clone();
    let talker = std::thread::spawn(move || {
        for k in 0..600usize {
            if talking.load(std::sync::atomic::Ordering::Relaxed) {
                break;
            }
            let due = start + Duration::from_millis(20 * k as u64);
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            if socket.send_to(&rtp(k as u16, k == 0, 0, k as u32 * 160, &frame(k)), remote).is_err() {
                break;
            }
        }
    });
    caller.sip.set_read_timeout(Some(Duration::from_secs(12))).unwrap();
    let bye = loop {
        let msg = caller.recv();
        if msg.starts_with("BYE ") {
            break msg;
        }
    };
    let hung_up = start.elapsed();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    caller.respond_ok(&bye);
    assert!(header(&bye, "Reason").contains("the agent stalled"), "{bye}");
    assert!(hung_up >= Duration::from_secs(3) && hung_up < Duration::from_secs(9), "BYE after {hung_up:?}");
    let got = got.join().unwrap();
    talker.join().unwrap();
    // The caller's side kept its 20 ms clock the whole time the agent was not reading (from the caller's first
    // packet on: before it, vocals sends only a few packets to the SDP address and waits).
    let latched = start + Duration::from_millis(100);
    let during: Vec<Instant> = got.iter().map(|g| g.0).filter(|t| *t >= latched && *t < start + hung_up).collect();
    assert!(during.len() as u128 >= hung_up.as_millis() / 20 - 15, "{} packets in {hung_up:?}", during.len());
    let worst = during.windows(2).map(|w| w[1] - w[0]).max().unwrap();
    assert!(worst < Duration::from_millis(60), "a {worst:?} gap in the caller's stream");
    let record = server.call_stats("agent-stall");
    let dropped = record["stats"]["agent"]["uplink_dropped"].as_u64().unwrap_or_else(|| panic!("{record:#}"));
    println!("stalled agent: hung up after {hung_up:?}, {dropped} uplink frames dropped oldest-first");
    assert!(dropped > 0, "the backlog is bounded");
    assert_eq!(record["stats"]["agent"]["ending"], "the agent stalled: it took no audio for 3 s", "{record:#}");
}

#[test]
fn an_agent_transfer_becomes_a_refer_whose_progress_the_agent_hears() {
    let _turn = turn();
    let agent = Agent::start(Mode::Transfer("+14155550100"));
    let server = InProcess::start_with("agent-transfer", &agent.config(), &[("VOCALS_DEFAULT_AGENT", "bot")]);
    // SIPp plays Twilio: answers the REFER 202, NOTIFYs 100 then 200, and takes vocals' BYE.
    for via in [Via::Udp, Via::Tcp] {
        sipp(&server, via, "transfer.xml", DIALED, 1, &[]);
        let seen = agent.seen();
        let statuses: Vec<(String, String)> = seen
            .frames
            .iter()
            .filter(|f| f["event"] == "transfer")
            .map(|f| {
                (f["transfer"]["status"].as_str().unwrap().into(), f["transfer"]["sipStatus"].as_str().unwrap().into())
            })
            .collect();
        let expected = [("accepted", "202"), ("progress", "100"), ("completed", "200")];
        assert_eq!(statuses, expected.map(|(a, b)| (a.to_string(), b.to_string())), "{via:?}");
        assert_eq!(seen.frames.last().unwrap()["event"], "stop");
    }
}

#[test]
fn the_agent_sets_x_headers_on_its_bye_and_refer_and_is_told_when_a_header_is_refused() {
    let _turn = turn();
    // The hang-up: the Via it tried is refused with an error event naming it, and nothing was done; the next
    // hang-up's X- header and User-to-User are on the BYE (hangup_headers.xml checks the wire, the Via absent).
    let agent = Agent::start(Mode::HangUpWith);
    let server = InProcess::start_with("agent-headers", &agent.config(), &[("VOCALS_DEFAULT_AGENT", "bot")]);
    sipp(&server, Via::Udp, "hangup_headers.xml", DIALED, 1, &[]);
    let seen = agent.seen();
    let errors: Vec<&Value> = seen.frames.iter().filter(|f| f["event"] == "error").collect();
    assert_eq!(errors.len(), 1, "{:#?}", seen.frames);
    assert_eq!(errors[0]["error"]["event"], "hangup");
    let message = errors[0]["error"]["message"].as_str().unwrap();
    assert!(message.contains("\"Via\"") && message.contains("only X- headers and User-to-User"), "{message}");
    assert_eq!(seen.frames.last().unwrap()["event"], "stop");
    let call_id = server.calls()[0]["sip_call_id"].as_str().unwrap().to_string();
    let call = server.ended_call(&call_id);
    assert_eq!(call["end_reason"], "the agent hung up", "{call:#}");

    // The transfer: the REFER carries the agent's X-Ticket (transfer_headers.xml checks it).
    let agent = Agent::start(Mode::TransferWith("+14155550100"));
    let server = InProcess::start_with("agent-refer-headers", &agent.config(), &[("VOCALS_DEFAULT_AGENT", "bot")]);
    sipp(&server, Via::Udp, "transfer_headers.xml", DIALED, 1, &[]);
    let seen = agent.seen();
    assert_eq!(transfer_statuses(&seen), ["accepted", "progress", "completed"], "{:#?}", seen.frames);
}

/// The `status` of every `transfer` event the agent heard, in order.
fn transfer_statuses(seen: &Seen) -> Vec<&str> {
    seen.frames.iter().filter(|f| f["event"] == "transfer").filter_map(|f| f["transfer"]["status"].as_str()).collect()
}

/// The resident memory of a process, in KiB (`VmRSS` in /proc).
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap_or_else(|| panic!("no VmRSS:\n{status}"));
    line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).unwrap()
}

/// Vocals' BYE to the caller, if one comes within `within` (other requests are skipped).
fn bye_within(caller: &Caller, within: Duration) -> Option<String> {
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 4096];
    while let Some(left) = deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()) {
        caller.sip.set_read_timeout(Some(left)).unwrap();
        let Ok((n, _)) = caller.sip.recv_from(&mut buf) else { break };
        let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
        if msg.starts_with("BYE ") {
            return Some(msg);
        }
    }
    None
}

/// The security review's finding: "A malicious agent can exhaust memory" (24,805 marks with 60 KB names took
/// the server to 1,435 MiB in 6 s). Each flood is now stopped at its first broken limit: the stream is closed
/// with 1008 and the limit as the reason, the caller gets a BYE saying why, and the server's memory stays put.
#[test]
fn a_malicious_agent_cannot_exhaust_memory() {
    let _turn = turn();
    let floods = [
        (Mode::MarkFlood(60_000), "a mark name longer than 256 bytes", "mark_name"),
        (Mode::MarkFlood(256), "more than 1024 marks pending", "marks_pending"),
        (Mode::Oversized, "over the 262144-byte limit", "message_size"),
    ];
    for (mode, reason, kind) in floods {
        let agent = Agent::start(mode);
        let server = Server::start_with("agent-flood", &agent.config(), &[("VOCALS_DEFAULT_AGENT", "bot")]);
        let pid = server.child.id();
        let before = rss_kib(pid);
        // The peak, sampled every 10 ms while the agent floods.
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let sampling = done.clone();
        let sampler = std::thread::spawn(move || {
            let mut peak = 0;
            while !sampling.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(rss_kib(pid));
                std::thread::sleep(Duration::from_millis(10));
            }
            peak
        });
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let (caller, _) = Caller::invite_to(&server, &socket, "agent-flood", DIALED);
        let bye = bye_within(&caller, Duration::from_secs(10));
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        let peak = sampler.join().unwrap().max(rss_kib(pid));
        println!("{mode:?}: server RSS {} MiB before, {} MiB at the peak", before / 1024, peak / 1024);
        assert!(peak < before + 64 * 1024, "{mode:?}: RSS grew from {before} KiB to {peak} KiB");
        let bye = bye.unwrap_or_else(|| panic!("{mode:?}: no BYE within 10 s:\n{}", server.log()));
        caller.respond_ok(&bye);
        let why = header(&bye, "Reason");
        assert!(why.starts_with("SIP;cause=500;text=\"the agent broke a limit: ") && why.contains(reason), "{bye}");
        let seen = agent.seen();
        let (code, close_reason) = seen.close.unwrap_or_else(|| panic!("{mode:?}: no close frame from vocals"));
        assert_eq!(code, 1008, "policy violation");
        assert!(close_reason.contains(reason), "{close_reason}");
        let record = server.call_stats("agent-flood");
        let ending =
            record["stats"]["agent"]["ending"].as_str().unwrap_or_else(|| panic!("no agent ending: {record:#}"));
        assert!(ending.starts_with("the agent broke a limit: ") && ending.contains(reason), "{ending}");
        let metrics = server.http_get("/metrics");
        let line = format!("vocals_agent_violations_total{{reason=\"{kind}\"}} 1");
        assert!(metrics.lines().any(|l| l == line), "no {line:?} in\n{metrics}");
    }
}

/// The security review's finding: "Transfer is a toll-fraud path" (an agent, maybe a prompt-injected LLM, had
/// the caller REFERred to a premium-rate number, abroad, and to a foreign SIP domain with an embedded Replaces,
/// and vocals accepted every one). Each is now refused before any REFER: the agent hears why, the caller's side
/// sees nothing. A number in the caller's own country still goes through as before.
#[test]
fn transfer_is_not_a_toll_fraud_path() {
    let _turn = turn();
    const TARGETS: &[&str] = &[
        "+19005550100",
        "+2305551234",
        "sip:alice@evil.example.com?Replaces=abc%40evil.example.com%3Bto-tag%3D1%3Bfrom-tag%3D2",
        "sip:+14155550100@evil.example.com",
    ];
    let reasons = ["+1900", "country code +1", "URI headers", "evil.example.com"];
    let agent = Agent::start(Mode::TransferEach(TARGETS));
    let server = InProcess::start_with("agent-toll", &agent.config(), &[("VOCALS_DEFAULT_AGENT", "bot")]);
    let before = server.metrics();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (caller, _) = Caller::invite_to(&server, &socket, "agent-toll", DIALED);
    // Everything vocals sends the caller's side while the agent asks (the caller is +12125550100).
    let mut refers = Vec::new();
    let until = Instant::now() + Duration::from_secs(2);
    caller.sip.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let mut buf = [0u8; 4096];
    while Instant::now() < until {
        if let Ok((n, _)) = caller.sip.recv_from(&mut buf) {
            refers.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
    caller.request("BYE", 2);
    let seen = agent.seen();
    assert!(refers.iter().all(|m| !m.starts_with("REFER ")), "a REFER reached the caller's side:\n{refers:?}");
    let transfers: Vec<&Value> = seen.frames.iter().filter(|f| f["event"] == "transfer").collect();
    assert_eq!(transfers.len(), TARGETS.len(), "one answer per request: {transfers:?}");
    for (frame, (target, reason)) in transfers.iter().zip(TARGETS.iter().zip(reasons)) {
        assert_eq!(frame["streamSid"], seen.frames[1]["streamSid"]);
        assert!(frame["sequenceNumber"].as_str().is_some_and(|n| n.parse::<u64>().is_ok()), "{frame}");
        let t = &frame["transfer"];
        assert_eq!(t["status"], "refused", "{target}: {frame}");
        assert!(t["reason"].as_str().is_some_and(|r| r.contains(reason)), "{target}: {frame}");
    }
    // Each refusal counted once, by its reason, and nothing else.
    let after = server.metrics();
    let refusals = |m: &common::Metrics| -> Vec<(String, f64)> {
        let refused =
            m.0.iter().filter(|(k, _)| k.starts_with("vocals_transfers_total{") && k.contains("result=\"refused\""));
        refused.map(|(k, v)| (k.clone(), v - before.get(k))).filter(|(_, n)| *n != 0.0).collect()
    };
    let counted = refusals(&after);
    assert_eq!(counted.iter().map(|(_, n)| n).sum::<f64>(), TARGETS.len() as f64, "{counted:?}");
    for kind in ["prefix_denied", "other_country", "uri_headers", "domain_not_allowed"] {
        let reason = format!("reason=\"{kind}\"");
        let n: f64 = counted.iter().filter(|(k, _)| k.contains(&reason)).map(|(_, n)| n).sum();
        assert_eq!(n, 1.0, "{kind}: {counted:?}");
    }
    drop(server);

    // A number in the caller's country (+1415... from +1212...) goes through as before: SIPp plays Twilio.
    let agent = Agent::start(Mode::Transfer("+14155550100"));
    let server = InProcess::start_with("agent-toll-ok", &agent.config(), &[("VOCALS_DEFAULT_AGENT", "bot")]);
    let before = server.metrics();
    sipp(&server, Via::Udp, "transfer.xml", DIALED, 1, &[]);
    let seen = agent.seen();
    let statuses = transfer_statuses(&seen);
    assert_eq!(statuses, ["accepted", "progress", "completed"]);
    let refers = server.metrics().delta(&before, "vocals_transfers_total{result=\"refer\"}");
    assert_eq!(refers, 1.0, "one REFER counted");
}

/// A local time `minutes` from now in UTC, as a rule's `from`/`to` takes it (`HH:MM`).
fn utc_clock(minutes: i64) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let m = (now / 60 + minutes).rem_euclid(24 * 60);
    format!("{:02}:{:02}", m / 60, m % 60)
}

/// Issue 26 end to end: a number's routing rules pick its agent when the INVITE comes. A rule matching now
/// sends the call to the WebSocket agent; a PATCH that makes it not match sends the next call to the default
/// (echo) while the call in progress keeps its agent; a caller-prefix rule; an `anonymous` rule refusing a
/// withheld caller ID with 480; the dry run; deleting an agent a rule names refused with 409.
#[test]
fn routing_rules_pick_the_agent_per_call_and_calls_in_progress_keep_theirs() {
    let _turn = turn();
    const RULED: &str = "+14155550166";
    let agent = Agent::start(Mode::Echo);
    let server = InProcess::start("rules", &[]);
    let (status, created) = server.api(
        "POST",
        "/v1/agents",
        Some(json!({"name": "after-hours", "kind": "websocket", "stream_url": agent.url})),
    );
    assert_eq!(status, 201, "{created}");
    let bot = created["id"].as_str().unwrap().to_string();
    // The agent check's own connection, if the API made one.
    let _ = agent.seen.recv_timeout(Duration::from_secs(2));
    let now_window = json!([{"when": {"zone": "UTC", "from": utc_clock(-60), "to": utc_clock(60)}, "agent_id": bot}]);
    let (status, number) = server.api(
        "POST",
        "/v1/numbers",
        Some(json!({"phone_number": RULED, "agent_id": "echo", "rules": now_window})),
    );
    assert_eq!(status, 201, "{number}");
    assert_eq!(number["rules"], now_window);
    assert_eq!(number["status"], "active");

    // 1. The rule matches now: the WebSocket agent takes the call, and the record says which rule.
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (first, remote) = Caller::invite_to(&server, &socket, "rules-1", RULED);
    let record = server.call_record("rules-1");
    assert_eq!(
        (record["agent"].as_str(), record["route"].as_str()),
        (Some("after-hours"), Some("rules[0]")),
        "{record:#}"
    );

    // 2. A PATCH moves the window away: the next call goes to the default, echo.
    let later = json!([{"when": {"zone": "UTC", "from": utc_clock(120), "to": utc_clock(180)}, "agent_id": bot}]);
    let (status, patched) = server.api("PATCH", &format!("/v1/numbers/{RULED}"), Some(json!({"rules": later})));
    assert_eq!(status, 200, "{patched}");
    let (dry_status, dry) = server.api("GET", &format!("/v1/numbers/{RULED}/route"), None);
    assert_eq!(
        (dry_status, dry["route"].as_str(), dry["agent"].as_str()),
        (200, Some("default"), Some("echo")),
        "{dry}"
    );
    let socket2 = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (second, _) = Caller::invite_to(&server, &socket2, "rules-2", RULED);
    let record = server.call_record("rules-2");
    assert_eq!((record["agent"].as_str(), record["route"].as_str()), (Some("echo"), Some("default")), "{record:#}");
    // ... while the first call keeps its agent: the audio sent now reaches the WebSocket agent.
    for seq in 0..25u16 {
        socket.send_to(&rtp(seq, seq == 0, 0, u32::from(seq) * 160, &frame(seq as usize)), remote).unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    first.request("BYE", 2);
    second.request("BYE", 2);
    let seen = agent.seen();
    let media = seen.frames.iter().filter(|f| f["event"] == "media").count();
    assert!(media >= 20, "the call in progress kept its agent: {media} media frames reached it");

    // 3. A caller-prefix rule: +44 callers to the WebSocket agent, others to the default.
    let uk = json!([{"caller": ["+44", "+353"], "agent_id": bot}]);
    assert_eq!(server.api("PATCH", &format!("/v1/numbers/{RULED}"), Some(json!({"rules": uk}))).0, 200);
    let socket3 = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (mut caller, answer) =
        Caller::send_invite_as(&server, &socket3, "rules-uk", RULED, "<sip:+447700900123@127.0.0.1>;tag=caller");
    assert!(answer.starts_with("SIP/2.0 200"), "{answer}");
    let record = server.call_record("rules-uk");
    assert_eq!(
        (record["agent"].as_str(), record["route"].as_str()),
        (Some("after-hours"), Some("rules[0]")),
        "{record:#}"
    );
    caller.to = header(&answer, "To").to_string();
    caller.request("ACK", 1);
    caller.request("BYE", 2);
    let _ = agent.seen();
    let (mut caller, answer) =
        Caller::send_invite_as(&server, &socket3, "rules-us", RULED, "<sip:+12125550100@127.0.0.1>;tag=caller");
    assert!(answer.starts_with("SIP/2.0 200"), "{answer}");
    assert_eq!(server.call_record("rules-us")["agent"].as_str(), Some("echo"));
    caller.to = header(&answer, "To").to_string();
    caller.request("ACK", 1);
    caller.request("BYE", 2);
    // The agent a rule names cannot be deleted: 409, naming the number and the rule.
    let (status, refused) = server.api("DELETE", &format!("/v1/agents/{bot}"), None);
    assert_eq!(status, 409, "{refused}");
    let message = refused["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(&format!("{RULED} (rules[0])")), "{refused}");

    // 4. Withheld caller IDs are not answered: 480, and the record says which rule refused it.
    let anonymous = json!([{"caller": "anonymous", "agent_id": null}]);
    assert_eq!(server.api("PATCH", &format!("/v1/numbers/{RULED}"), Some(json!({"rules": anonymous}))).0, 200);
    let from = "\"Anonymous\" <sip:anonymous@anonymous.invalid>;tag=caller";
    let (caller, answer) = Caller::send_invite_as(&server, &socket3, "rules-anon", RULED, from);
    assert!(answer.starts_with("SIP/2.0 480"), "{answer}");
    caller.request("ACK", 1);
    let record = server.ended_call("rules-anon");
    assert_eq!((record["sip_status"].as_u64(), record["route"].as_str()), (Some(480), Some("rules[0]")), "{record:#}");
    let (_, dry) = server.api("GET", &format!("/v1/numbers/{RULED}/route?caller=anonymous"), None);
    assert_eq!((dry["answered"].as_bool(), dry["route"].as_str()), (Some(false), Some("rules[0]")), "{dry}");
    // Now that no rule names it, the agent can go.
    assert_eq!(server.api("DELETE", &format!("/v1/agents/{bot}"), None).0, 204);
}
