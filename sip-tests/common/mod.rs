//! What the black-box tests share: a running `vocals` binary with its own configuration on free loopback
//! ports, its log, and free ports for the test's own sockets.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const NUMBER: &str = "+14155550123";
pub const NO_AGENT: &str = "+14155550124";
pub const UNKNOWN: &str = "+14155550199";

/// A running vocals with its own config, killed on drop.
pub struct Server {
    pub child: Child,
    pub udp: u16,
    pub tcp: u16,
    pub dir: PathBuf,
    /// The listen host: `127.0.0.1` or `[::1]`.
    pub host: String,
}

static RTP_RANGES: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

impl Server {
    /// Starts vocals; `env` overrides settings the way a sysadmin would (`VOCALS_<SECTION>_<KEY>`).
    pub fn start(name: &str, env: &[(&str, &str)]) -> Server {
        Server::start_on(name, "127.0.0.1", env)
    }

    /// Starts vocals listening on `host` (an IPv4 or bracketed IPv6 loopback address).
    pub fn start_on(name: &str, host: &str, env: &[(&str, &str)]) -> Server {
        let dir = std::env::temp_dir().join(format!("vocals-sipp-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let (udp, tcp) = (free_udp_port(), free_tcp_port());
        let host = host.to_string();
        // Each server its own RTP range, so servers running side by side do not contend for ports.
        let rtp = 20_000 + 400 * RTP_RANGES.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 40_000;
        let config = format!(
            "default_agent = \"\"\n[sip]\nlisten_udp = \"{host}:{udp}\"\nlisten_tcp = \"{host}:{tcp}\"\nmax_call_duration = 60\n\
             [media]\npublic_ip = \"127.0.0.1\"\nrtp_ports = \"{rtp}-{}\"\n\
             [[numbers]]\nnumber = \"{NUMBER}\"\nagent = \"echo\"\naccount_sid = \"ACbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\"\n\
             [[numbers]]\nnumber = \"{NO_AGENT}\"\n",
            rtp + 399
        );
        std::fs::write(dir.join("vocals.toml"), config).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_vocals"))
            .args(["serve", "--config"])
            .arg(dir.join("vocals.toml"))
            .env("VOCALS_STATE_DIR", &dir)
            .env("VOCALS_LOG_FORMAT", "plain")
            .env("VOCALS_LOG_LEVEL", "info")
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
        rx.recv_timeout(Duration::from_secs(20)).expect("vocals did not start listening within 20 s");
        Server { child, udp, tcp, dir, host }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}
