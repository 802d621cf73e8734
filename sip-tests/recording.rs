//! Call recording end to end: a caller streams a known sweep to the echo agent on a recorded call, and the
//! recording the API serves has the caller on the left channel and what came back on the right, within one
//! 20 ms frame of each other; byte ranges, DELETE and the CLI; a number that forbids recording; and a server
//! killed (SIGKILL) mid-call whose recording is playable, with the right duration, after the restart.

use std::io::{Read, Write};
use std::net::UdpSocket;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::inprocess::InProcess;
use common::{Caller, NUMBER, Server, Vocals, cli, rtp_packet};

/// A number whose calls go to the echo agent but are never recorded, whatever the server says.
const PRIVATE: &str = "+14155550125";

/// 3 s of the caller: 0.5 s of silence, a 2 s sweep from 300 Hz to 3 kHz, 0.5 s of silence; μ-law.
fn caller_audio() -> Vec<u8> {
    (0..24_000)
        .map(|i| {
            let t = f64::from(i) / 8000.0 - 0.5;
            let s = if (0.0..2.0).contains(&t) {
                // Instantaneous frequency 300 + 1350 t Hz.
                8000.0 * (2.0 * std::f64::consts::PI * (300.0 * t + 675.0 * t * t)).sin()
            } else {
                0.0
            };
            vocals::media::g711::ulaw_encode(s as i16)
        })
        .collect()
}

/// Streams `audio` to vocals as RTP, a packet every 20 ms, from `rtp`.
fn stream(rtp: &UdpSocket, to: std::net::SocketAddr, audio: &[u8]) {
    let start = Instant::now();
    for (seq, chunk) in audio.chunks(160).enumerate() {
        let due = start + Duration::from_millis(20 * seq as u64);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        rtp.send_to(&rtp_packet(seq as u16, 0x5eed, chunk), to).unwrap();
    }
}

/// Where `reference` best matches in `signal` (normalised cross-correlation): its lag in samples, and the
/// correlation there (1.0: the same waveform).
fn best_lag(signal: &[f64], reference: &[f64]) -> (usize, f64) {
    let norm = |s: &[f64]| s.iter().map(|x| x * x).sum::<f64>().sqrt();
    let rn = norm(reference);
    let score = |lag: usize| {
        let window = &signal[lag..lag + reference.len()];
        let dot: f64 = window.iter().zip(reference).map(|(a, b)| a * b).sum();
        dot / (norm(window) * rn).max(1e-9)
    };
    let lags = 0..signal.len().saturating_sub(reference.len());
    // Coarse, then the best's neighbourhood.
    let coarse = lags.clone().step_by(8).max_by(|a, b| score(*a).total_cmp(&score(*b))).unwrap();
    let fine = coarse.saturating_sub(8)..(coarse + 8).min(lags.end);
    let lag = fine.max_by(|a, b| score(*a).total_cmp(&score(*b))).unwrap();
    (lag, score(lag))
}

/// A raw request to the admin API: status, headers (lower-case names) and body bytes.
fn request(server: &Vocals, method: &str, path: &str, extra: &str, token: bool) -> (u16, String, Vec<u8>) {
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", server.admin)).unwrap();
    let auth = if token { format!("Authorization: Bearer {}\r\n", server.token()) } else { String::new() };
    write!(conn, "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{auth}{extra}\r\n").unwrap();
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).unwrap();
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
    let status = head[9..12].parse().unwrap();
    let mut body = raw[end + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        let mut out = Vec::new();
        let mut rest = &body[..];
        while let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") {
            let n = usize::from_str_radix(String::from_utf8_lossy(&rest[..eol]).trim(), 16).unwrap_or(0);
            if n == 0 {
                break;
            }
            out.extend_from_slice(&rest[eol + 2..eol + 2 + n]);
            rest = &rest[eol + 4 + n..];
        }
        body = out;
    }
    (status, head, body)
}

/// The call's record once its recording is no longer being written (up to 10 s).
fn recorded(server: &Vocals, call_id: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let calls = server.calls();
        let call = calls.iter().find(|c| c["sip_call_id"] == call_id);
        match call {
            Some(c) if !c["recording"].is_null() && c["recording"]["status"] != "recording" => return c.clone(),
            _ if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            _ => panic!("no finished recording for {call_id}: {calls:#?}"),
        }
    }
}

/// Places a call, streams the caller's audio and hangs up; vocals' record of it.
fn call(server: &Vocals, call_id: &str, number: &str) {
    let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (caller, vocals_rtp) = Caller::invite_to(server, &rtp, call_id, number);
    stream(&rtp, vocals_rtp, &caller_audio());
    std::thread::sleep(Duration::from_millis(200));
    caller.request("BYE", 2);
    let answer = caller.recv();
    assert!(answer.starts_with("SIP/2.0 200"), "{answer}");
}

#[test]
fn a_recorded_echo_call_has_the_caller_left_and_what_came_back_right_within_one_frame() {
    let extra = format!("[[numbers]]\nnumber = \"{PRIVATE}\"\nagent = \"echo\"\nrecord = \"off\"\n");
    let server = InProcess::start_with("recording", &extra, &[("VOCALS_RECORDING_RECORD", "dual")]);
    call(&server, "rec-echo", NUMBER);
    let record = recorded(&server, "rec-echo");
    let recording = &record["recording"];
    assert_eq!(recording["status"], "complete", "{record:#}");
    assert_eq!((recording["channels"].as_u64(), recording["format"].as_str()), (Some(2), Some("pcm16")));
    let duration = recording["duration"].as_f64().unwrap();
    assert!((3.0..4.5).contains(&duration), "the call lasted about 3.2 s: {duration}");
    let id = record["id"].as_str().unwrap();
    assert_eq!(recording["url"], format!("/v1/calls/{id}/recording"));

    // The file, through the API.
    let url = format!("/v1/calls/{id}/recording");
    let (status, head, wav) = request(&server, "GET", &url, "", true);
    assert_eq!(status, 200, "{head}");
    assert!(head.contains("content-type: audio/wav") && head.contains("accept-ranges: bytes"), "{head}");
    assert_eq!(wav.len() as u64, recording["bytes"].as_u64().unwrap());
    let mut reader = hound::WavReader::new(std::io::Cursor::new(&wav)).unwrap();
    let spec = reader.spec();
    assert_eq!((spec.channels, spec.sample_rate, spec.bits_per_sample), (2, 8000, 16));
    let samples: Vec<f64> = reader.samples::<i16>().map(|s| f64::from(s.unwrap())).collect();
    assert!((samples.len() as f64 / 16_000.0 - duration).abs() < 0.021, "the record's duration is the file's");
    let left: Vec<f64> = samples.iter().step_by(2).copied().collect();
    let right: Vec<f64> = samples.iter().skip(1).step_by(2).copied().collect();
    // The sweep the caller sent, as vocals would decode it.
    let sweep: Vec<f64> =
        caller_audio()[4000..20_000].iter().map(|b| f64::from(vocals::media::g711::ulaw_decode(*b))).collect();
    let (left_at, left_match) = best_lag(&left, &sweep);
    let (right_at, right_match) = best_lag(&right, &sweep);
    println!("sweep: left at {left_at} (r = {left_match:.3}), right at {right_at} (r = {right_match:.3})");
    assert!(left_match > 0.95, "the left channel is the caller: r = {left_match:.3}");
    assert!(right_match > 0.95, "the right channel is the echo played back: r = {right_match:.3}");
    assert!(right_at >= left_at && right_at - left_at <= 160, "aligned within one frame: {left_at} / {right_at}");

    // Byte ranges, as an <audio> element seeks.
    let (status, head, part) = request(&server, "GET", &url, "Range: bytes=0-43\r\n", true);
    assert_eq!((status, part.len()), (206, 44), "{head}");
    assert!(head.contains(&format!("content-range: bytes 0-43/{}", wav.len())), "{head}");
    assert_eq!(&part[..], &wav[..44]);
    let (status, _, tail) = request(&server, "GET", &url, "Range: bytes=-100\r\n", true);
    assert_eq!((status, &tail[..]), (206, &wav[wav.len() - 100..]));
    let (status, head, _) = request(&server, "GET", &url, &format!("Range: bytes={}-\r\n", wav.len()), true);
    assert_eq!(status, 416, "{head}");
    assert!(head.contains(&format!("content-range: bytes */{}", wav.len())), "{head}");
    // Never without the token.
    let (status, _, body) = request(&server, "GET", &url, "", false);
    assert_eq!(status, 401, "{}", String::from_utf8_lossy(&body));

    // The CLI saves the same bytes, privately.
    let out = server.dir.join("saved.wav");
    let (code, stdout, stderr) = cli(&server, &["calls", "recording", id, "-o", out.to_str().unwrap()], &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(std::fs::read(&out).unwrap(), wav);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&out).unwrap().permissions().mode() & 0o777, 0o600);

    // DELETE: gone, and the record says so.
    let (status, _, _) = request(&server, "DELETE", &url, "", true);
    assert_eq!(status, 204);
    let (status, _, body) = request(&server, "GET", &url, "", true);
    assert_eq!(status, 404);
    assert!(String::from_utf8_lossy(&body).contains("was deleted"), "{}", String::from_utf8_lossy(&body));
    let (_, call) = server.api("GET", &format!("/v1/calls/{id}"), None);
    assert_eq!(call["recording"]["status"], "deleted");

    // A number that says off is never recorded, though the server records every call.
    call_and_hang_up_unrecorded(&server);
}

fn call_and_hang_up_unrecorded(server: &Vocals) {
    call(server, "rec-private", PRIVATE);
    let record = server.ended_call("rec-private");
    std::thread::sleep(Duration::from_millis(300));
    let (_, call) = server.api("GET", &format!("/v1/calls/{}", record["id"].as_str().unwrap()), None);
    assert!(call["recording"].is_null(), "{call:#}");
    let (status, _, body) =
        request(server, "GET", &format!("/v1/calls/{}/recording", call["id"].as_str().unwrap()), "", true);
    assert_eq!(status, 404);
    assert!(String::from_utf8_lossy(&body).contains("has no recording"));
}

/// Starts the binary again on a killed server's state directory and ports (the same `vocals.toml`).
fn restart(dir: &std::path::Path) -> std::process::Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_vocals"));
    command.args(["serve", "--config"]).arg(dir.join("vocals.toml")).env("VOCALS_RECORDING_RECORD", "dual");
    restart_with(dir, command)
}

/// Runs `command` (a `vocals serve`) on `dir`, ready once it says SIP is listening.
fn restart_with(dir: &std::path::Path, mut command: Command) -> std::process::Child {
    let mut child =
        command.env("VOCALS_STATE_DIR", dir).env("VOCALS_LOG_FORMAT", "plain").stderr(Stdio::piped()).spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("SIP listening") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(20)).expect("vocals restarted");
    child
}

#[test]
fn a_server_killed_mid_call_leaves_a_recording_that_plays_with_its_length_after_the_restart() {
    let mut server = Server::start("recording-crash", &[("VOCALS_RECORDING_RECORD", "dual")]);
    let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (_caller, vocals_rtp) = Caller::invite(&server, &rtp, "rec-crash");
    stream(&rtp, vocals_rtp, &caller_audio());
    // 3 s of the call streamed (and more than one flush done): SIGKILL, no chance to finish anything.
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let part = walk(&server.dir.join("recordings"));
    assert!(part.iter().any(|p| p.ends_with(".wav.part")), "the recording was being written: {part:?}");
    server.child = restart(&server.dir);
    let record = recorded(&server, "rec-crash");
    let recording = &record["recording"];
    assert_eq!(recording["status"], "incomplete", "{record:#}");
    assert!(recording["error"].as_str().unwrap().contains("recovered"), "{record:#}");
    let duration = recording["duration"].as_f64().unwrap();
    assert!((1.5..=3.5).contains(&duration), "what was written before the kill (flushed every second): {duration}");
    let url = format!("/v1/calls/{}/recording", record["id"].as_str().unwrap());
    let (status, _, wav) = request(&server, "GET", &url, "", true);
    assert_eq!(status, 200);
    let reader = hound::WavReader::new(std::io::Cursor::new(&wav)).unwrap();
    assert!((f64::from(reader.duration()) / 8000.0 - duration).abs() < 0.021, "the header says what is there");
    assert!(!walk(&server.dir.join("recordings")).iter().any(|p| p.ends_with(".part")), "nothing left half-written");
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path.to_string_lossy().into_owned());
        }
    }
    out
}

/// A local S3-compatible server: moto in server mode (`pip install 'moto[server]'`; the README's test command
/// installs it), killed on drop.
struct Moto(std::process::Child);

impl Moto {
    fn start(port: u16) -> Moto {
        let child = Command::new("python3")
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 -m moto.server: install it with `python3 -m pip install 'moto[server]'`");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto did not listen on {port} within 20 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        Moto(child)
    }

    /// `method path` on it, unsigned (moto does not check signatures): the status and body.
    fn http(port: u16, method: &str, path: &str) -> (u16, Vec<u8>) {
        let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        write!(
            conn,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
        )
        .unwrap();
        let mut raw = Vec::new();
        conn.read_to_end(&mut raw).unwrap();
        let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let status = String::from_utf8_lossy(&raw[9..12]).parse().unwrap();
        (status, raw[end + 4..].to_vec())
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The record of the call once its recording's upload says `upload` (up to 30 s).
fn upload_says(server: &Vocals, call_id: &str, upload: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let calls = server.calls();
        match calls.iter().find(|c| c["sip_call_id"] == call_id) {
            Some(c) if c["recording"]["upload"] == upload => return c.clone(),
            _ if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(200)),
            _ => panic!("the upload of {call_id} never said {upload}: {calls:#?}"),
        }
    }
}

#[test]
fn recordings_reach_the_bucket_once_it_answers_even_across_a_restart_and_leave_it_when_deleted() {
    let port = common::free_tcp_port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let env = [
        ("VOCALS_RECORDING_RECORD", "dual"),
        ("VOCALS_RECORDING_URL", "s3://calls/vocals"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("AWS_ALLOW_HTTP", "true"),
    ];
    let mut server = Server::start("recording-s3", &env);
    // The bucket's server is down: the upload fails, is retried, and the file stays on disk.
    call(&server, "s3-first", NUMBER);
    let record = upload_says(&server, "s3-first", "retrying");
    assert!(!record["recording"]["upload_error"].as_str().unwrap_or("").is_empty(), "{record:#}");
    let file = record["recording"]["file"].as_str().unwrap().to_string();
    assert!(server.dir.join("recordings").join(&file).exists());
    // It comes up: the next try succeeds; the object is the file.
    let moto = Moto::start(port);
    assert_eq!(Moto::http(port, "PUT", "/calls").0, 200, "the bucket made");
    let record = upload_says(&server, "s3-first", "done");
    assert_eq!(record["recording"]["remote"], format!("s3://calls/vocals/{file}"));
    let local = std::fs::read(server.dir.join("recordings").join(&file)).unwrap();
    let (status, object) = Moto::http(port, "GET", &format!("/calls/vocals/{file}"));
    assert_eq!((status, object.len()), (200, local.len()));
    assert!(object == local, "the object is the recording");
    assert!(!walk(&server.dir.join("recordings")).iter().any(|p| p.ends_with(".upload")), "no upload left pending");
    // DELETE removes it from the bucket too.
    let url = format!("/v1/calls/{}/recording", record["id"].as_str().unwrap());
    assert_eq!(request(&server, "DELETE", &url, "", true).0, 204);
    assert_eq!(Moto::http(port, "GET", &format!("/calls/vocals/{file}")).0, 404);

    // Down again; a call; vocals killed before it could upload: the restart picks the upload up.
    drop(moto);
    call(&server, "s3-second", NUMBER);
    upload_says(&server, "s3-second", "retrying");
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let _moto = Moto::start(port);
    assert_eq!(Moto::http(port, "PUT", "/calls").0, 200);
    let mut restarted = Command::new(env!("CARGO_BIN_EXE_vocals"));
    restarted.args(["serve", "--config"]).arg(server.dir.join("vocals.toml")).envs(env.iter().copied());
    server.child = restart_with(&server.dir, restarted);
    let record = upload_says(&server, "s3-second", "done");
    let file = record["recording"]["file"].as_str().unwrap();
    assert_eq!(Moto::http(port, "GET", &format!("/calls/vocals/{file}")).0, 200);
}
