//! Running as a daemon: SIGTERM drains (new INVITEs 503 at once, calls in progress go on, BYE after the drain
//! timeout, exit 0; a second signal stops at once), sd_notify against a socket standing in for systemd's
//! NOTIFY_SOCKET (READY, STATUS, WATCHDOG from the driver loop, STOPPING), SIGHUP reloading the allowlist,
//! the log level and the numbers without touching calls, a metrics scrape, and check-config.
//!
//! These run the real binary (`common::Server`), not an in-process server: what they check is the process
//! itself (its signals, its exit status, its sd_notify messages, its log, its command line).

mod common;

use std::net::UdpSocket;
use std::os::unix::net::UnixDatagram;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use common::{Caller, NUMBER, Server, header};

fn signal(server: &Server, sig: &str) {
    let status = std::process::Command::new("kill").args([sig, &server.child.id().to_string()]).status().unwrap();
    assert!(status.success());
}

/// Waits up to `limit` for the process to exit.
fn exited(server: &mut Server, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(status) = server.child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

fn http_status(server: &Server, path: &str) -> String {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", server.admin)).unwrap();
    write!(conn, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    conn.read_to_string(&mut response).unwrap();
    response
}

#[test]
fn sigterm_drains_new_calls_get_503_and_calls_in_progress_finish_before_exit_0() {
    let mut server = Server::start("drain", &[("VOCALS_SIP_DRAIN_TIMEOUT", "30")]);
    let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (caller, _) = Caller::invite(&server, &rtp, "drain-1");
    signal(&server, "-TERM");
    std::thread::sleep(Duration::from_millis(200));
    let (_, answer) = Caller::send_invite(&server, &rtp, "drain-2");
    assert!(answer.starts_with("SIP/2.0 503"), "a new call during the drain: {answer}");
    assert!(!header(&answer, "Retry-After").is_empty(), "{answer}");
    assert!(http_status(&server, "/readyz").starts_with("HTTP/1.1 503"), "not ready while draining");
    assert!(exited(&mut server, Duration::from_millis(500)).is_none(), "the call in progress keeps vocals up");
    caller.request("BYE", 2);
    assert!(caller.recv().starts_with("SIP/2.0 200"));
    let status = exited(&mut server, Duration::from_secs(5)).expect("vocals exits once the last call ends");
    assert!(status.success(), "{status:?}");
    assert!(server.log().contains("drained: no calls left"), "{}", server.log());
}

#[test]
fn calls_left_after_the_drain_timeout_get_bye_and_a_second_signal_stops_at_once() {
    let mut server = Server::start("drain-timeout", &[("VOCALS_SIP_DRAIN_TIMEOUT", "1")]);
    let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (caller, _) = Caller::invite(&server, &rtp, "drain-timeout-1");
    let signalled = Instant::now();
    signal(&server, "-TERM");
    let bye = loop {
        let msg = caller.recv();
        if msg.starts_with("BYE ") {
            break msg;
        }
    };
    assert!(signalled.elapsed() >= Duration::from_millis(900), "BYE after the timeout, not before");
    assert!(header(&bye, "Reason").contains("shutting down"), "{bye}");
    caller.respond_ok(&bye);
    assert!(exited(&mut server, Duration::from_secs(5)).expect("exits").success());

    let mut server = Server::start("stop-now", &[("VOCALS_SIP_DRAIN_TIMEOUT", "300")]);
    let (_caller, _) = Caller::invite(&server, &rtp, "stop-now-1");
    signal(&server, "-TERM");
    std::thread::sleep(Duration::from_millis(200));
    assert!(exited(&mut server, Duration::from_millis(300)).is_none(), "draining");
    signal(&server, "-INT");
    let status = exited(&mut server, Duration::from_secs(2)).expect("a second signal stops at once");
    assert!(status.success(), "{status:?}");
}

#[test]
fn the_service_manager_hears_ready_status_watchdog_pings_and_stopping() {
    let dir = std::env::temp_dir().join(format!("vocals-notify-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("notify.sock");
    let _ = std::fs::remove_file(&path);
    let socket = UnixDatagram::bind(&path).unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let path = path.to_str().unwrap().to_string();
    let mut server = Server::start("notify", &[("NOTIFY_SOCKET", &path), ("WATCHDOG_USEC", "200000")]);
    let mut heard: Vec<String> = Vec::new();
    let mut buf = [0u8; 512];
    let deadline = Instant::now() + Duration::from_secs(5);
    while heard.iter().filter(|m| m.contains("WATCHDOG=1")).count() < 3 && Instant::now() < deadline {
        let n = socket.recv(&mut buf).unwrap();
        heard.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    let ready = heard.iter().position(|m| m.contains("READY=1")).expect("READY=1");
    assert!(heard.iter().any(|m| m.contains("STATUS=0 calls")), "{heard:?}");
    let pings = heard.iter().skip(ready).filter(|m| m.contains("WATCHDOG=1")).count();
    assert!(pings >= 3, "watchdog pings every 100 ms: {heard:?}");
    signal(&server, "-TERM");
    let stopping = loop {
        let n = socket.recv(&mut buf).expect("STOPPING=1 before exit");
        let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
        if msg.contains("STOPPING=1") {
            break msg;
        }
    };
    assert!(stopping.contains("STOPPING=1"));
    assert!(exited(&mut server, Duration::from_secs(5)).expect("exits with no calls").success());
}

/// An OPTIONS from this host; its answer, if any within 1 s.
fn options(server: &Server) -> Option<String> {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let me = s.local_addr().unwrap();
    let msg = format!(
        "OPTIONS sip:{NUMBER}@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-opt-{}\r\nFrom: <sip:x@{me}>;tag=1\r\n\
         To: <sip:{NUMBER}@127.0.0.1>\r\nCall-ID: opt-{}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        me.port(),
        me.port()
    );
    s.send_to(msg.as_bytes(), ("127.0.0.1", server.udp)).unwrap();
    let mut buf = [0u8; 2048];
    s.recv(&mut buf).ok().map(|n| String::from_utf8_lossy(&buf[..n]).into_owned())
}

#[test]
fn sighup_reloads_the_allowlist_numbers_and_log_level_without_touching_calls() {
    let server = Server::start("reload", &[]);
    let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (caller, _) = Caller::invite(&server, &rtp, "reload-1");
    assert!(options(&server).is_some_and(|a| a.starts_with("SIP/2.0 200")));
    let (_, answer) = Caller::send_invite_to(&server, &rtp, "reload-2", "+14155550177");
    assert!(answer.starts_with("SIP/2.0 404"), "{answer}");

    let file = server.dir.join("vocals.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    let text =
        text.replacen("[sip]\n", "[sip]\nallow = \"10.0.0.0/8\"\n", 1).replace("level = \"info\"", "level = \"debug\"")
            + "\n[[numbers]]\nnumber = \"+14155550177\"\nagent = \"echo\"\n";
    std::fs::write(&file, text).unwrap();
    signal(&server, "-HUP");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !server.log().contains("reloaded: allowlist") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(server.log().contains("reloaded: allowlist"), "{}", server.log());
    assert_eq!(options(&server), None, "127.0.0.1 is no longer allowed: dropped");
    assert!(server.log().contains("DEBUG"), "the log level is debug now");
    // Loopback allowed again: the call in progress lived through the reloads, and the new number routes.
    std::fs::write(&file, std::fs::read_to_string(&file).unwrap().replace("allow = \"10.0.0.0/8\"\n", "")).unwrap();
    signal(&server, "-HUP");
    std::thread::sleep(Duration::from_millis(500));
    let (other, answer) = Caller::send_invite_to(&server, &rtp, "reload-3", "+14155550177");
    assert!(answer.starts_with("SIP/2.0 200"), "the number from the reloaded file routes: {answer}");
    caller.request("BYE", 2);
    assert!(caller.recv().starts_with("SIP/2.0 200"), "the first call lived through both reloads");
    drop(other);
}

#[test]
fn metrics_are_scraped_with_their_names_and_labels_and_logs_say_which_call() {
    let server = Server::start("metrics", &[("VOCALS_LOG_SIP_TRACE", "true")]);
    let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (caller, _) = Caller::invite(&server, &rtp, "metrics-1");
    let (_, refused) = Caller::send_invite_to(&server, &rtp, "metrics-2", common::NO_AGENT);
    assert!(refused.starts_with("SIP/2.0 480"));
    // Garbage on the SIP port: dropped and counted.
    rtp.send_to(b"HELLO\r\n\r\n", ("127.0.0.1", server.udp)).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let text = server.http_get("/metrics");
    for line in [
        "vocals_invites_total{result=\"answered\"} 1",
        "vocals_invites_total{result=\"480\"} 1",
        "vocals_calls_active 1",
        "vocals_rtp_ports_in_use 1",
        "vocals_call_setup_seconds_count 1",
        "vocals_sip_dropped_total{reason=\"malformed\"} 1",
    ] {
        assert!(text.contains(line), "{line} missing:\n{text}");
    }
    for name in [
        "vocals_sip_transactions{kind=\"server\"}",
        "vocals_sip_dialogs",
        "vocals_sip_tcp_connections",
        "vocals_rtp_ports ",
    ] {
        assert!(text.contains(name), "{name} missing:\n{text}");
    }
    caller.request("BYE", 2);
    assert!(caller.recv().starts_with("SIP/2.0 200"));
    let deadline = Instant::now() + Duration::from_secs(5);
    while !server.log().contains("call media record") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = server.log();
    let record = log.lines().find(|l| l.contains("call media record")).unwrap_or_else(|| panic!("{log}"));
    assert!(record.contains("call{id=vc_") && record.contains("number=+14155550123 agent=echo"), "{record}");
    assert!(log.contains("vocals::sip_trace") && log.contains("Call-ID: metrics-1"), "the SIP trace is on:\n{log}");
    let text = server.http_get("/metrics");
    assert!(text.contains("vocals_call_duration_seconds_count 1"), "{text}");
}

fn check_config(file: &std::path::Path) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vocals"))
        .args(["check-config", "--config"])
        .arg(file)
        .env_remove("VOCALS_CONFIG")
        .output()
        .unwrap();
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    (out.status.code().unwrap_or(-1), text(out.stdout), text(out.stderr))
}

#[test]
fn check_config_prints_the_effective_values_with_secrets_hidden_or_says_what_is_wrong() {
    let dir = std::env::temp_dir().join(format!("vocals-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.toml");
    std::fs::write(
        &good,
        "[admin]\ntoken = \"a-very-secret-token-123\"\n[store]\nurl = \"postgres://vocals:hunter2@db/vocals\"\n\
         [[agents]]\nname = \"bot\"\nurl = \"wss://a.example/s\"\nsecret = \"shh-signing-secret\"\n",
    )
    .unwrap();
    let (code, out, err) = check_config(&good);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("configuration OK") && out.contains("postgres://vocals:***@db/vocals"), "{out}");
    for secret in ["a-very-secret-token-123", "hunter2", "shh-signing-secret"] {
        assert!(!out.contains(secret), "{secret} printed:\n{out}");
    }
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "[sip]\ndrain_timeout = \"soon\"\n").unwrap();
    let (code, _, err) = check_config(&bad);
    assert_eq!(code, 2);
    assert!(err.contains("sip.drain_timeout") && err.contains("a whole number"), "{err}");
    let unknown = dir.join("unknown.toml");
    std::fs::write(&unknown, "[sip]\ndrain_timeot = 5\n").unwrap();
    let (code, _, err) = check_config(&unknown);
    assert_eq!(code, 2);
    assert!(err.contains("sip.drain_timeot") && err.contains("unknown key"), "{err}");
    // TLS files are read as the server would: a missing certificate is an error naming it.
    let tls = dir.join("tls.toml");
    let missing = dir.join("no-such-cert.pem");
    std::fs::write(&tls, format!("[sip]\ntls_cert = \"{}\"\ntls_key = \"{}\"\n", missing.display(), missing.display()))
        .unwrap();
    let (code, _, err) = check_config(&tls);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("sip.tls_cert") && err.contains("no-such-cert.pem"), "{err}");
}

#[test]
fn the_systemd_units_verify_and_hold_the_service_to_no_privilege() {
    let tool = "systemd-analyze";
    assert!(
        std::process::Command::new(tool).arg("--version").output().is_ok(),
        "{tool} is missing: install Debian's systemd package (bash sip-tests/run does)"
    );
    let dir = std::env::temp_dir().join(format!("vocals-units-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let root = env!("CARGO_MANIFEST_DIR");
    let service = std::fs::read_to_string(format!("{root}/systemd/vocals.service")).unwrap();
    let socket = std::fs::read_to_string(format!("{root}/systemd/vocals.socket")).unwrap();
    for line in [
        "Type=notify",
        "WatchdogSec=",
        "Restart=on-failure",
        "User=vocals",
        "StateDirectory=vocals",
        "ConfigurationDirectory=vocals",
        "LimitNOFILE=",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "\nCapabilityBoundingSet=\n",
        "SystemCallFilter=@system-service",
        "MemoryDenyWriteExecute=yes",
        "ExecReload=/bin/kill -HUP $MAINPID",
    ] {
        assert!(service.contains(line), "vocals.service lacks {line:?}");
    }
    // Verify with ExecStart pointing at the binary just built (the tool checks that it exists).
    let exe = env!("CARGO_BIN_EXE_vocals");
    std::fs::write(dir.join("vocals.service"), service.replace("/usr/bin/vocals", exe)).unwrap();
    std::fs::write(dir.join("vocals.socket"), socket).unwrap();
    let out = std::process::Command::new(tool)
        .arg("verify")
        .arg(dir.join("vocals.service"))
        .arg(dir.join("vocals.socket"))
        .output()
        .unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && said.trim().is_empty(), "systemd-analyze verify:\n{said}");
    let sysusers = std::fs::read_to_string(format!("{root}/systemd/vocals.sysusers")).unwrap();
    assert!(sysusers.lines().any(|l| l.starts_with("u vocals ")), "{sysusers}");
}

#[test]
fn a_socket_handed_over_by_systemd_is_used_for_sip() {
    let tool = "systemd-socket-activate";
    assert!(
        std::process::Command::new(tool).arg("--version").output().is_ok(),
        "{tool} is missing: install Debian's systemd package (bash sip-tests/run does)"
    );
    let dir = std::env::temp_dir().join(format!("vocals-activate-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (handed, configured) = (common::free_udp_port(), common::free_udp_port());
    let config = format!(
        "[sip]\nlisten_udp = \"127.0.0.1:{configured}\"\nlisten_tcp = \"\"\n[media]\npublic_ip = \"127.0.0.1\"\n\
         [admin]\nlisten = \"\"\n"
    );
    std::fs::write(dir.join("vocals.toml"), config).unwrap();
    let log = std::fs::File::create(dir.join("server.log")).unwrap();
    let mut child = std::process::Command::new(tool)
        .args(["--datagram", "-l", &format!("127.0.0.1:{handed}")])
        .arg(format!("--setenv=VOCALS_STATE_DIR={}", dir.display()))
        .arg("--setenv=VOCALS_LOG_FORMAT=plain")
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_vocals"))
        .args(["serve", "--config"])
        .arg(dir.join("vocals.toml"))
        .stderr(log)
        .spawn()
        .unwrap();
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let me = s.local_addr().unwrap();
    let options = format!(
        "OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-act\r\nFrom: <sip:x@{me}>;tag=1\r\n\
         To: <sip:127.0.0.1>\r\nCall-ID: act-1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    );
    let mut answer = None;
    let mut buf = [0u8; 2048];
    for _ in 0..20 {
        s.send_to(options.as_bytes(), ("127.0.0.1", handed)).unwrap();
        if let Ok(n) = s.recv(&mut buf) {
            answer = Some(String::from_utf8_lossy(&buf[..n]).into_owned());
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
    let answer = answer.unwrap_or_else(|| panic!("no answer on the handed-over socket:\n{log}"));
    assert!(answer.starts_with("SIP/2.0 200"), "{answer}");
    assert!(log.contains("SIP over UDP on a socket from systemd"), "{log}");
}
