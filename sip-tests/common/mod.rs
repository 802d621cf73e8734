//! What the black-box tests share: a `vocals` binary running with its own configuration on free loopback ports
//! ([`Server`], for what needs a process: signals, sd_notify, first run), a whole vocals inside the test's
//! process on sockets bound to port 0 ([`inprocess::InProcess`]), and the clients that talk to either.
#![allow(dead_code)]

pub mod inprocess;
pub mod outbound;
pub mod sipplog;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const NUMBER: &str = "+14155550123";
pub const NO_AGENT: &str = "+14155550124";
pub const UNKNOWN: &str = "+14155550199";

/// Where a running vocals is, however it runs: its SIP and HTTP ports, its state directory (with its
/// `vocals.toml` and the admin token it generated) and its listen host. [`Server`] and [`inprocess::InProcess`]
/// deref to it, so every helper taking `&Vocals` takes either.
pub struct Vocals {
    pub udp: u16,
    pub tcp: u16,
    /// The HTTP API's port.
    pub admin: u16,
    pub dir: PathBuf,
    /// The listen host: `127.0.0.1` or `[::1]`.
    pub host: String,
}

impl Vocals {
    /// Removes the state directory once its server has stopped, so test runs leave nothing in the temporary
    /// directory; kept when the test is failing, for its server log and SIPp's.
    fn remove_dir(&self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A running vocals process with its own config, killed (and its state directory removed) on drop.
pub struct Server {
    pub child: Child,
    pub vocals: Vocals,
}

impl std::ops::Deref for Server {
    type Target = Vocals;

    fn deref(&self) -> &Vocals {
        &self.vocals
    }
}

static RTP_RANGES: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// The configuration the test servers share: SIP on `host`'s `udp` and `tcp` ports, the HTTP API on loopback's
/// `admin`, RTP on 400 ports from `rtp`, no rate limits, [`NUMBER`] answered by the echo agent and [`NO_AGENT`]
/// with none, and `extra` appended (e.g. `[[agents]]` tables).
pub fn config_text(host: &str, udp: u16, tcp: u16, admin: u16, rtp: u16, extra: &str) -> String {
    format!(
        "default_agent = \"\"\n[sip]\ninvite_rate = 0\nrequest_rate = 0\nlisten_udp = \"{host}:{udp}\"\nlisten_tcp = \"{host}:{tcp}\"\nmax_call_duration = 60\n\
         [media]\npublic_ip = \"127.0.0.1\"\nrtp_ports = \"{rtp}-{}\"\n\
         [admin]\nlisten = \"127.0.0.1:{admin}\"\n[log]\nlevel = \"info\"\n\
         [[numbers]]\nnumber = \"{NUMBER}\"\nagent = \"echo\"\naccount_sid = \"ACbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\"\n\
         [[numbers]]\nnumber = \"{NO_AGENT}\"\n{extra}",
        rtp + 399
    )
}

impl Server {
    /// Starts vocals; `env` overrides settings the way a sysadmin would (`VOCALS_<SECTION>_<KEY>`).
    pub fn start(name: &str, env: &[(&str, &str)]) -> Server {
        Server::start_on(name, "127.0.0.1", env)
    }

    /// Starts vocals listening on `host` (an IPv4 or bracketed IPv6 loopback address).
    pub fn start_on(name: &str, host: &str, env: &[(&str, &str)]) -> Server {
        Server::start_full(name, host, "", env)
    }

    /// Starts vocals with `extra` appended to its configuration file (e.g. `[[agents]]` tables).
    pub fn start_with(name: &str, extra: &str, env: &[(&str, &str)]) -> Server {
        Server::start_full(name, "127.0.0.1", extra, env)
    }

    /// Free ports are picked, released, then bound by vocals: another test can take one in between. Then the
    /// server says so and exits, and it is started again on new ports. ([`inprocess::InProcess`] binds its own.)
    fn start_full(name: &str, host: &str, extra: &str, env: &[(&str, &str)]) -> Server {
        for _ in 0..4 {
            if let Some(server) = Server::try_start(name, host, extra, env) {
                return server;
            }
        }
        panic!("vocals could not bind free ports in 4 tries")
    }

    fn try_start(name: &str, host: &str, extra: &str, env: &[(&str, &str)]) -> Option<Server> {
        let dir = std::env::temp_dir().join(format!("vocals-sipp-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let (udp, tcp, admin) = (free_udp_port(), free_tcp_port(), free_tcp_port());
        let host = host.to_string();
        // Each server its own RTP range, so servers running side by side do not contend for ports.
        let rtp = 20_000 + 400 * RTP_RANGES.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 40_000;
        let config = config_text(&host, udp, tcp, admin, rtp as u16, extra);
        std::fs::write(dir.join("vocals.toml"), config).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_vocals"))
            .args(["serve", "--config"])
            .arg(dir.join("vocals.toml"))
            .env("VOCALS_STATE_DIR", &dir)
            .env("VOCALS_LOG_FORMAT", "plain")
            .envs(env.iter().copied())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start vocals");
        // Ready when it says it is listening.
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let log = dir.join("server.log");
        std::thread::spawn(move || {
            let mut file = std::fs::File::create(log).unwrap();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                use std::io::Write;
                let _ = writeln!(file, "{line}");
                if line.contains("SIP listening") {
                    let _ = tx.send(());
                }
            }
        });
        let server = Server { child, vocals: Vocals { udp, tcp, admin, dir, host } };
        if rx.recv_timeout(Duration::from_secs(20)).is_err() {
            // Dropping the server stops the process.
            let log = server.log();
            assert!(log.contains("Address already in use"), "vocals did not start listening within 20 s:\n{log}");
            return None;
        }
        Some(server)
    }
}

impl Vocals {
    /// A `key=value` figure from the first log line containing `record` (e.g. "call media record"), waiting up
    /// to 5 s for the line to be written.
    pub fn figure(&self, record: &str, key: &str) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.log().contains(record) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let log = self.log();
        let line = log.lines().find(|l| l.contains(record)).unwrap_or_else(|| panic!("no {record}:\n{log}"));
        let value = line.split(&format!(" {key}=")).nth(1).unwrap_or_else(|| panic!("no {key} in {line}"));
        value.split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap()
    }

    /// `GET path` on the HTTP API; the response body.
    pub fn http_get(&self, path: &str) -> String {
        use std::io::{Read, Write};
        let mut conn = std::net::TcpStream::connect(("127.0.0.1", self.admin)).unwrap();
        write!(conn, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").unwrap();
        let mut response = String::new();
        conn.read_to_string(&mut response).unwrap();
        assert!(response.starts_with("HTTP/1.1 200"), "GET {path}: {response}");
        response.split_once("\r\n\r\n").map(|(_, body)| body.to_string()).unwrap_or_default()
    }

    /// The admin token vocals generated in its state directory.
    pub fn token(&self) -> String {
        let path = self.dir.join("admin-token");
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).trim().to_string()
    }

    /// A request to the admin API with the generated token; the status and the JSON body (`null` if none).
    pub fn api(&self, method: &str, path: &str, body: Option<serde_json::Value>) -> (u16, serde_json::Value) {
        use std::io::{Read, Write};
        let mut conn = std::net::TcpStream::connect(("127.0.0.1", self.admin)).unwrap();
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        write!(
            conn,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.token(),
            body.len()
        )
        .unwrap();
        let mut response = String::new();
        conn.read_to_string(&mut response).unwrap();
        let status = response.get(9..12).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("{response}"));
        let json = response.split_once("\r\n\r\n").and_then(|(_, b)| serde_json::from_str(b).ok());
        (status, json.unwrap_or(serde_json::Value::Null))
    }

    /// `/metrics` now, parsed: every series with its value.
    pub fn metrics(&self) -> Metrics {
        Metrics::parse(&self.http_get("/metrics"))
    }

    /// Every call record this server has (up to 500, newest first).
    pub fn calls(&self) -> Vec<serde_json::Value> {
        let (status, body) = self.api("GET", "/v1/calls?limit=500", None);
        assert_eq!(status, 200, "GET /v1/calls: {body}");
        body["calls"].as_array().cloned().unwrap_or_default()
    }

    /// The record of the call with this SIP Call-ID once its media has ended (its `stats` written: `{}` until
    /// then), waiting up to 5 s for it.
    pub fn call_stats(&self, call_id: &str) -> serde_json::Value {
        self.call_when(call_id, "stats", |c| !c["stats"]["rtp"].is_null())
    }

    /// The record of the call with this SIP Call-ID as soon as it is written (the call may be in progress).
    pub fn call_record(&self, call_id: &str) -> serde_json::Value {
        self.call_when(call_id, "a record", |_| true)
    }

    /// The record of the call with this SIP Call-ID once it has ended, waiting up to 5 s for it.
    pub fn ended_call(&self, call_id: &str) -> serde_json::Value {
        self.call_when(call_id, "an end", |c| !c["end_at"].is_null())
    }

    /// As [`Vocals::ended_call`], waiting up to `wait`.
    pub fn ended_call_within(&self, call_id: &str, wait: Duration) -> serde_json::Value {
        self.call_until(call_id, "an end", wait, |c| !c["end_at"].is_null())
    }

    fn call_when(&self, call_id: &str, what: &str, ready: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        self.call_until(call_id, what, Duration::from_secs(5), ready)
    }

    fn call_until(
        &self,
        call_id: &str,
        what: &str,
        wait: Duration,
        ready: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + wait;
        loop {
            let calls = self.calls();
            match calls.iter().find(|c| c["sip_call_id"] == call_id && ready(c)) {
                Some(call) => return call.clone(),
                None if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
                None => panic!("no call record with {what} for Call-ID {call_id}: {calls:#?}"),
            }
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.vocals.remove_dir();
    }
}

pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A `/metrics` scrape: each series (`name{labels}`) with its value. In-process servers share the test
/// process's recorder, so a test that counts compares two scrapes ([`Metrics::delta`]) taken while nothing else
/// in its test binary runs (its tests take turns).
#[derive(Clone, Debug, Default)]
pub struct Metrics(pub std::collections::BTreeMap<String, f64>);

impl Metrics {
    pub fn parse(text: &str) -> Metrics {
        let series = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.rsplit_once(' '))
            .filter_map(|(series, value)| Some((series.to_string(), value.parse().ok()?)))
            .collect();
        Metrics(series)
    }

    /// A series' value; 0 when it is not there (not recorded yet).
    pub fn get(&self, series: &str) -> f64 {
        self.0.get(series).copied().unwrap_or(0.0)
    }

    /// How much a series grew since `before`.
    pub fn delta(&self, before: &Metrics, series: &str) -> f64 {
        self.get(series) - before.get(series)
    }
}

/// A minimal SIP UAC over UDP: enough to place, confirm and end one call.
pub struct Caller {
    pub sip: UdpSocket,
    pub server: SocketAddr,
    pub call_id: String,
    pub to: String,
}

impl Caller {
    pub fn invite(server: &Vocals, rtp: &UdpSocket, call_id: &str) -> (Caller, SocketAddr) {
        Caller::invite_to(server, rtp, call_id, NUMBER)
    }

    /// Places a call to `number`, answered; sends the ACK; returns vocals' RTP address.
    pub fn invite_to(server: &Vocals, rtp: &UdpSocket, call_id: &str, number: &str) -> (Caller, SocketAddr) {
        let (mut caller, answer) = Caller::send_invite_to(server, rtp, call_id, number);
        assert!(answer.starts_with("SIP/2.0 200"), "unexpected answer to the INVITE:\n{answer}");
        caller.to = header(&answer, "To").to_string();
        let port: u16 = answer.split("m=audio ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
        caller.request("ACK", 1);
        (caller, format!("127.0.0.1:{port}").parse().unwrap())
    }

    /// Sends the INVITE and returns its final answer.
    pub fn send_invite(server: &Vocals, rtp: &UdpSocket, call_id: &str) -> (Caller, String) {
        Caller::send_invite_to(server, rtp, call_id, NUMBER)
    }

    pub fn send_invite_to(server: &Vocals, rtp: &UdpSocket, call_id: &str, number: &str) -> (Caller, String) {
        Caller::send_invite_from(server, rtp, call_id, number, "127.0.0.1")
    }

    /// Sends the INVITE from a socket bound to `source` (another loopback address, say).
    pub fn send_invite_from(
        server: &Vocals,
        rtp: &UdpSocket,
        call_id: &str,
        number: &str,
        source: &str,
    ) -> (Caller, String) {
        Caller::send_invite_sdp(server, call_id, number, source, &offer(rtp))
    }

    /// Sends an INVITE with `sdp` as its offer from a socket bound to `source`; returns its final answer.
    pub fn send_invite_sdp(server: &Vocals, call_id: &str, number: &str, source: &str, sdp: &str) -> (Caller, String) {
        Caller::send_invite_account(server, call_id, number, source, sdp, Some("ACbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"))
    }

    /// Sends an INVITE naming `account` in X-Twilio-AccountSid (none: no such header); its final answer.
    pub fn send_invite_account(
        server: &Vocals,
        call_id: &str,
        number: &str,
        source: &str,
        sdp: &str,
        account: Option<&str>,
    ) -> (Caller, String) {
        let from = "<sip:+12125550100@127.0.0.1>;tag=caller";
        Caller::send_invite_full(server, call_id, number, source, sdp, account, from)
    }

    /// Sends the INVITE with `from` as its From header's value (`"Anonymous" <sip:anonymous@anonymous.invalid>;
    /// tag=a`, say); its final answer.
    pub fn send_invite_as(
        server: &Vocals,
        rtp: &UdpSocket,
        call_id: &str,
        number: &str,
        from: &str,
    ) -> (Caller, String) {
        let account = Some("ACbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb");
        Caller::send_invite_full(server, call_id, number, "127.0.0.1", &offer(rtp), account, from)
    }

    fn send_invite_full(
        server: &Vocals,
        call_id: &str,
        number: &str,
        source: &str,
        sdp: &str,
        account: Option<&str>,
        from: &str,
    ) -> (Caller, String) {
        let sip = UdpSocket::bind((source, 0)).unwrap();
        sip.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let to_server: SocketAddr = format!("127.0.0.1:{}", server.udp).parse().unwrap();
        let me = sip.local_addr().unwrap();
        let invite = format!(
            "INVITE sip:{number}@{to_server} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-{call_id}-1;rport\r\n\
             From: {from}\r\nTo: <sip:{number}@127.0.0.1>\r\nCall-ID: {call_id}\r\n\
             CSeq: 1 INVITE\r\nContact: <sip:caller@{me}>\r\nMax-Forwards: 70\r\n{}\
             X-Twilio-CallSid: {}\r\nContent-Type: application/sdp\r\n\
             Content-Length: {}\r\n\r\n{sdp}",
            account.map(|a| format!("X-Twilio-AccountSid: {a}\r\n")).unwrap_or_default(),
            call_sid(call_id),
            sdp.len()
        );
        sip.send_to(invite.as_bytes(), to_server).unwrap();
        let caller = Caller { sip, server: to_server, call_id: call_id.to_string(), to: String::new() };
        loop {
            let msg = caller.recv();
            if !msg.starts_with("SIP/2.0 1") {
                return (caller, msg);
            }
        }
    }

    pub fn recv(&self) -> String {
        let mut buf = [0u8; 4096];
        let (n, _) = self.sip.recv_from(&mut buf).expect("a SIP message from vocals");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    /// Answers a request from vocals (its BYE) with 200 OK.
    pub fn respond_ok(&self, request: &str) {
        self.sip.send_to(ok_to(request).as_bytes(), self.server).unwrap();
    }

    pub fn request(&self, method: &str, cseq: u32) {
        self.request_with_body(method, cseq, None, "");
    }

    /// An in-dialog request carrying `body` of `content_type` (an INFO with a DTMF digit, say).
    pub fn request_with_body(&self, method: &str, cseq: u32, content_type: Option<&str>, body: &str) {
        let me = self.sip.local_addr().unwrap();
        let content_type = content_type.map(|t| format!("Content-Type: {t}\r\n")).unwrap_or_default();
        let msg = format!(
            "{method} sip:{NUMBER}@{} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-{}-{method}-{cseq}\r\n\
             From: <sip:+12125550100@127.0.0.1>;tag=caller\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {cseq} {method}\r\n\
             Max-Forwards: 70\r\n{content_type}Content-Length: {}\r\n\r\n{body}",
            self.server,
            self.call_id,
            self.to,
            self.call_id,
            body.len()
        );
        self.sip.send_to(msg.as_bytes(), self.server).unwrap();
    }
}

/// A test caller's offer: PCMU and telephone-event, its media on `rtp`.
fn offer(rtp: &UdpSocket) -> String {
    format!(
        "v=0\r\no=test 1 1 IN IP4 127.0.0.1\r\ns=test\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n\
         a=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n",
        rtp.local_addr().unwrap().port()
    )
}

/// The CallSid a test call with this Call-ID carries (one per call, as Twilio's are: vocals refuses a second
/// live call with a CallSid in use): `CA` and 32 hex digits of the Call-ID, padded with `c`.
pub fn call_sid(call_id: &str) -> String {
    let hex: String = call_id.bytes().map(|b| format!("{b:02x}")).collect();
    format!("CA{:c<32.32}", hex)
}

pub fn header<'a>(msg: &'a str, name: &str) -> &'a str {
    msg.lines().find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(": "))).unwrap_or("")
}

/// 3 s of a 440 Hz tone, raw μ-law, as `tone.ulaw` in SIPp's working directory for `file` over UDP (where
/// `rtp_echo.xml`'s rtp_stream reads it).
pub fn write_tone(server: &Vocals, file: &str) {
    let work = server.dir.join(format!("{file}-Udp"));
    std::fs::create_dir_all(&work).unwrap();
    let tone: Vec<u8> = (0..24_000)
        .map(|i| {
            let s = 8000.0 * (2.0 * std::f64::consts::PI * 440.0 * f64::from(i) / 8000.0).sin();
            vocals::media::g711::ulaw_encode(s as i16)
        })
        .collect();
    std::fs::write(work.join("tone.ulaw"), tone).unwrap();
}

pub fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("sip-tests/scenarios").join(name)
}

#[derive(Clone, Copy, Debug)]
pub enum Via {
    Udp,
    Tcp,
}

/// Runs one SIPp scenario against the server and returns its output; panics with SIPp's error log when it
/// does not exit 0.
pub fn sipp(server: &Vocals, via: Via, file: &str, service: &str, calls: u32, extra: &[&str]) -> String {
    let (transport, port) = match via {
        Via::Udp => ("u1", server.udp),
        Via::Tcp => ("t1", server.tcp),
    };
    let work = server.dir.join(format!("{file}-{via:?}"));
    std::fs::create_dir_all(&work).unwrap();
    let started = Instant::now();
    let output = Command::new("sipp")
        .current_dir(&work)
        .args(["-sf"])
        .arg(scenario(file))
        .args(["-s", service, "-t", transport, "-i", server.host.trim_matches(['[', ']']), "-m", &calls.to_string()])
        // No -p: SIPp binds a port the system picks, so concurrent runs never hear each other.
        .args(["-timeout", "60", "-timeout_error", "-nostdin", "-trace_err", "-trace_stat", "-fd", "1"])
        .args(extra)
        .arg(format!("{}:{port}", server.host))
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run sipp ({e}): install it with `apt-get install -y sip-tester`"));
    let errors: String = std::fs::read_dir(&work)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("errors"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect();
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{file} over {via:?} failed (sipp exit {:?}, {:?}):\n{}\n--- sipp errors ---\n{errors}\n--- server log ---\n{}",
        output.status.code(),
        started.elapsed(),
        text.lines().rev().take(30).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n"),
        server.log()
    );
    text
}

/// Runs the `vocals` CLI against `server`; exit code, stdout, stderr.
pub fn cli(server: &Vocals, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vocals"))
        .args(args)
        .arg("--config")
        .arg(server.dir.join("vocals.toml"))
        .env("VOCALS_STATE_DIR", &server.dir)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    (out.status.code().unwrap_or(-1), text(out.stdout), text(out.stderr))
}

/// A 200 OK answering `request` (vocals' BYE, say): its Via, From, To, Call-ID and CSeq copied.
pub fn ok_to(request: &str) -> String {
    let mut msg = String::from("SIP/2.0 200 OK\r\n");
    for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
        for line in request.lines().filter(|l| l.starts_with(&format!("{name}: "))) {
            msg.push_str(line);
            msg.push_str("\r\n");
        }
    }
    msg.push_str("Content-Length: 0\r\n\r\n");
    msg
}

/// An RTP packet of payload type 0 (PCMU), marker on the first, timestamps 160 apart.
pub fn rtp_packet(seq: u16, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; 12 + payload.len()];
    let p = vocals::media::rtp::RtpPacket {
        marker: seq == 0,
        payload_type: 0,
        seq,
        timestamp: u32::from(seq) * 160,
        ssrc,
        payload,
    };
    let n = vocals::media::rtp::build(&p, &mut out).unwrap();
    out.truncate(n);
    out
}

/// Every datagram `socket` receives until 1.5 s pass without one, collected on a thread of its own.
pub fn receive_all(socket: &UdpSocket) -> std::thread::JoinHandle<Vec<Vec<u8>>> {
    let rx = socket.try_clone().unwrap();
    rx.set_read_timeout(Some(Duration::from_millis(1500))).unwrap();
    std::thread::spawn(move || {
        let mut got = Vec::new();
        let mut buf = [0u8; 1500];
        while let Ok(n) = rx.recv(&mut buf) {
            got.push(buf[..n].to_vec());
        }
        got
    })
}

/// The next SIP message on a stream (TCP or TLS), framed by its Content-Length (or compact `l`). `pending`
/// keeps what was read past it, so messages that share one read are none of them lost. `Err("closed")` when
/// the server closes the stream first, `Err("silence")` when nothing comes within the read timeout.
pub fn read_stream_message(stream: &mut impl std::io::Read, pending: &mut Vec<u8>) -> Result<String, &'static str> {
    let mut buf = [0u8; 8192];
    loop {
        if let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&pending[..end]).into_owned();
            let body_len: usize = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    let name = name.trim();
                    (name.eq_ignore_ascii_case("content-length") || name == "l").then(|| value.trim().parse().ok())?
                })
                .unwrap_or(0);
            if pending.len() >= end + 4 + body_len {
                let msg: Vec<u8> = pending.drain(..end + 4 + body_len).collect();
                return Ok(String::from_utf8_lossy(&msg).into_owned());
            }
        }
        match stream.read(&mut buf) {
            Ok(0) => return Err("closed"),
            Ok(n) => pending.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return Err("silence");
            }
            Err(_) => return Err("closed"),
        }
    }
}
