//! The newcomer's path, walked as the README writes it: the built binary started as `vocals serve` in an empty
//! directory with an empty environment (`env -i PATH=…`), on its default ports (SIP 5060, the dashboard on
//! 8080), then the README's SIPp call, an echoed call, the next command the server suggests, and the state it
//! left in `./vocals-data`. A second case: a state directory that cannot be made is a one-line error and exit
//! code 2 at once.
//!
//! These tests need 5060 (UDP and TCP) and 8080 free: where one is taken they fail and say which, rather than
//! moving to another port, since the README's commands would meet the same port. They run the built binary,
//! never an in-process server: the binary, as a newcomer starts it, is what they check.

mod common;

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Caller, Server, Vocals, receive_all, rtp_packet};

/// The README's SIPp call, word for word.
const README_SIPP: &str = "sipp -sn uac -s +14155550123 127.0.0.1:5060 -m 1";

/// A fresh, empty directory of the test's own.
fn empty_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vocals-firstrun-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("home")).unwrap();
    dir
}

/// The README's `vocals serve` (the binary `cargo run --release -- serve` builds and runs), in `cwd`, with
/// nothing in the environment but `PATH`.
fn serve(cwd: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_vocals"));
    command.env_clear().env("PATH", std::env::var("PATH").unwrap_or_default()).current_dir(cwd).args(args);
    command
}

/// Fails, naming the port, when one of the README's default ports is taken on this machine.
fn default_ports_are_free() {
    let taken = |what: &str, e: std::io::Error| -> ! {
        panic!(
            "{what} is taken on this machine ({e}): the first-run test runs vocals on the README's default ports; \
             stop whatever holds {what} and run it again"
        )
    };
    drop(UdpSocket::bind("0.0.0.0:5060").unwrap_or_else(|e| taken("port 5060/udp (SIP)", e)));
    drop(TcpListener::bind("0.0.0.0:5060").unwrap_or_else(|e| taken("port 5060/tcp (SIP)", e)));
    drop(TcpListener::bind("127.0.0.1:8080").unwrap_or_else(|e| taken("port 8080/tcp (the dashboard)", e)));
}

/// Starts `command` with its stderr copied to `log`; returns once a line containing `ready` is logged.
fn start(mut command: Command, log: &Path, ready: &str) -> Child {
    let mut child = command.stderr(Stdio::piped()).stdout(Stdio::null()).spawn().expect("start vocals");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let (path, ready) = (log.to_path_buf(), ready.to_string());
    std::thread::spawn(move || {
        let mut file = std::fs::File::create(path).unwrap();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            use std::io::Write;
            let _ = writeln!(file, "{line}");
            if line.contains(&ready) {
                let _ = tx.send(());
            }
        }
    });
    if rx.recv_timeout(Duration::from_secs(30)).is_err() {
        let _ = child.kill();
        let _ = child.wait();
        panic!("vocals did not say it was ready within 30 s:\n{}", std::fs::read_to_string(log).unwrap_or_default());
    }
    child
}

fn log_path(cwd: &Path) -> PathBuf {
    cwd.parent().unwrap().join("server.log")
}

/// Runs a shell command line as written (a README command), with a deadline; its exit status and output.
fn run_line(line: &str, cwd: &Path, deadline: Duration) -> (Option<i32>, String) {
    let mut child = Command::new("sh")
        .args(["-c", line])
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {line:?}: {e}"));
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            return (status.code(), text);
        }
        if started.elapsed() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            return (None, format!("timed out after {deadline:?}\n{}", String::from_utf8_lossy(&out.stdout)));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

#[test]
fn the_readmes_run_command_answers_a_call_in_an_empty_directory_on_the_default_ports() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    assert!(readme.contains("cargo run --release -- serve"), "the README's run command changed: update this test");
    assert!(readme.contains(README_SIPP), "the README's SIPp call changed: update this test");
    default_ports_are_free();
    let root = empty_dir("readme");
    let home = root.join("home");
    let log = log_path(&home);
    let child = start(serve(&home, &["serve"]), &log, "  Next: ");
    // The helpers of the other black-box tests, pointed at the default ports.
    let vocals = Vocals { udp: 5060, tcp: 5060, admin: 8080, dir: home.join("vocals-data"), host: "127.0.0.1".into() };
    let server = Server { child, vocals };
    let said = std::fs::read_to_string(&log).unwrap();

    // The ready block says where things are, never the token itself.
    for expected in [
        "SIP:            udp 0.0.0.0:5060, tcp 0.0.0.0:5060",
        "Dashboard:      http://127.0.0.1:8080/ui/",
        "Admin token:    in ./vocals-data/admin-token",
        "vocals numbers add +14155550123 --agent echo",
        "answered by the built-in echo agent while no number is added",
    ] {
        assert!(said.contains(expected), "the ready block has no {expected:?}:\n{said}");
    }
    assert!(said.contains("generated the admin API token"), "the first run says it made a token:\n{said}");
    assert!(!said.contains(&server.token()), "the admin token was logged");

    // The README's SIPp call, as written, is answered.
    let (status, out) = run_line(README_SIPP, &home, Duration::from_secs(40));
    assert_eq!(
        status,
        Some(0),
        "{README_SIPP} failed:\n{out}\n--- server ---\n{}",
        std::fs::read_to_string(&log).unwrap()
    );

    // A call with audio: the built-in echo plays every frame back.
    let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (caller, remote) = Caller::invite_to(&server, &rtp, "firstrun-echo", "+14155550123");
    let back = receive_all(&rtp);
    let frames: Vec<[u8; 160]> = (0..50u8).map(|k| [k.wrapping_mul(5) | 0x10; 160]).collect();
    let start = Instant::now();
    for (i, f) in frames.iter().enumerate() {
        std::thread::sleep((start + Duration::from_millis(20 * i as u64)).saturating_duration_since(Instant::now()));
        rtp.send_to(&rtp_packet(i as u16, 0xF1257, f), remote).unwrap();
    }
    std::thread::sleep(Duration::from_millis(300));
    caller.request("BYE", 2);
    let echoed: Vec<Vec<u8>> = back
        .join()
        .unwrap()
        .iter()
        .filter_map(|d| vocals::media::rtp::parse(d).ok().map(|p| p.payload.to_vec()))
        .filter(|p| p.iter().any(|&b| b != 0xFF))
        .collect();
    assert_eq!(echoed.len(), frames.len(), "every frame echoed once");
    assert!(echoed.iter().zip(&frames).all(|(e, f)| e.as_slice() == f.as_slice()), "the echo changed the audio");

    // The dashboard answers at the URL the server gave.
    let page = server.http_get("/ui/");
    assert!(page.contains("<html") || page.contains("<!doctype html") || page.contains("<!DOCTYPE html"), "{page}");

    // State: the directory private, every file in it private.
    let state = home.join("vocals-data");
    assert_eq!(mode(&state), 0o700, "{}", state.display());
    for file in ["admin-token", "secret-key", "vocals.db"] {
        assert_eq!(mode(&state.join(file)), 0o600, "{file}");
    }
    for entry in std::fs::read_dir(&state).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        assert_eq!(mode(&entry.path()) & 0o077, 0, "{name} is readable by others");
    }

    // The next command the server suggested works as written, with the empty environment; the built-in echo
    // is listed as built in.
    let vocals = env!("CARGO_BIN_EXE_vocals");
    let (status, out) = run_line(
        &format!("env -i PATH=\"$PATH\" {vocals} numbers add +14155550123 --agent echo"),
        &home,
        Duration::from_secs(20),
    );
    assert_eq!(status, Some(0), "{out}");
    assert!(out.contains("\"status\": \"active\"") && out.contains("\"agent_id\": \"echo\""), "{out}");
    let (status, out) =
        run_line(&format!("env -i PATH=\"$PATH\" {vocals} agents list"), &home, Duration::from_secs(20));
    assert_eq!(status, Some(0), "{out}");
    let echo_row = out.lines().find(|l| l.starts_with("echo ")).unwrap_or_else(|| panic!("{out}"));
    assert!(echo_row.trim_end().ends_with("true"), "the echo agent is listed as built in: {out}");

    // With a number added, the demo is over: that number is answered, any other gets 404.
    let (status, out) = run_line(README_SIPP, &home, Duration::from_secs(40));
    assert_eq!(status, Some(0), "the added number:\n{out}");
    let (_, answer) = Caller::send_invite_to(&server, &rtp, "firstrun-unknown", "+14155550199");
    assert!(answer.starts_with("SIP/2.0 404"), "an unknown number once a number exists: {answer}");
    drop(server);
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn a_state_directory_that_cannot_be_made_is_one_line_and_exit_2_at_once() {
    let root = empty_dir("unwritable");
    let home = root.join("home");
    // ./vocals-data is taken by a file: the directory cannot be created (root cannot either).
    std::fs::write(home.join("vocals-data"), b"not a directory").unwrap();
    // And one under a file system that refuses new directories, named through the environment.
    let cases: [(&[(&str, &str)], &str); 2] = [
        (&[], "state directory ./vocals-data: exists and is not a directory"),
        (&[("VOCALS_STATE_DIR", "/proc/vocals-state")], "state directory /proc/vocals-state: cannot create it:"),
    ];
    for (env, expected) in cases {
        let started = Instant::now();
        let mut command = serve(&home, &["serve"]);
        command.envs(env.iter().copied()).stdin(Stdio::null());
        let out = command.output().unwrap();
        let took = started.elapsed();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(took < Duration::from_secs(2), "took {took:?}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(stderr.starts_with("vocals: ") && stderr.contains(expected), "{stderr}");
    }
    // A directory it may not write in: only when not root, since root writes anywhere.
    if is_root() {
        println!("running as root: the read-only directory case is covered by the two above");
        let _ = std::fs::remove_dir_all(&root);
        return;
    }
    std::fs::remove_file(home.join("vocals-data")).unwrap();
    std::fs::create_dir(home.join("vocals-data")).unwrap();
    std::fs::set_permissions(home.join("vocals-data"), std::fs::Permissions::from_mode(0o500)).unwrap();
    let out = serve(&home, &["serve"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot write in it"));
    let _ = std::fs::remove_dir_all(&root);
}

/// Whether the test runs as root (which may write anywhere): read from /proc, no libc needed.
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(1) == Some("0")))
        .unwrap_or(true)
}
