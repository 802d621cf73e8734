//! A whole vocals inside the test's process: `vocals::daemon::serve` on sockets bound here to port 0, on a
//! runtime of its own. No child process, no free port picked in advance (so no retry when another test took it
//! first), and many servers side by side in one test binary. The sockets are bound before the server starts,
//! so it takes calls and requests at once: the kernel queues them until it reads. Tests assert on what it
//! answers (SIP, the API, `/metrics`), not on its log: it has none of its own.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use vocals::config::Config;
use vocals::io::sip::Listeners;

use super::{Vocals, config_text};

/// A vocals served in-process; it stops (its runtime shut down) on drop.
pub struct InProcess {
    vocals: Vocals,
    /// The SIP over TLS listener's port, when the configuration turns TLS on (`sip.listen_tls`, port 0 meant).
    pub tls: Option<u16>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl std::ops::Deref for InProcess {
    type Target = Vocals;

    fn deref(&self) -> &Vocals {
        &self.vocals
    }
}

/// In-process servers' RTP ranges: 400 ports each, the first picked from the process id, the next ones after it.
static RTP_RANGES: AtomicU32 = AtomicU32::new(0);

impl InProcess {
    /// Serves the shared test configuration ([`config_text`]); `env` overrides settings the way a sysadmin
    /// would (`VOCALS_<SECTION>_<KEY>`), without touching the test process's environment.
    pub fn start(name: &str, env: &[(&str, &str)]) -> InProcess {
        InProcess::start_with(name, "", env)
    }

    /// Serves the shared test configuration with `extra` appended (e.g. `[[agents]]` tables).
    pub fn start_with(name: &str, extra: &str, env: &[(&str, &str)]) -> InProcess {
        InProcess::start_full(name, "127.0.0.1", extra, env)
    }

    /// Serves SIP on `host` (an IPv4 or bracketed IPv6 loopback address; the API stays on 127.0.0.1).
    pub fn start_on(name: &str, host: &str, env: &[(&str, &str)]) -> InProcess {
        InProcess::start_full(name, host, "", env)
    }

    /// Serves the shared test configuration with SIP on `host` and `extra` appended.
    pub fn start_full(name: &str, host: &str, extra: &str, env: &[(&str, &str)]) -> InProcess {
        // What the binary does first: one TLS provider for the process (ring).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = std::env::temp_dir().join(format!("vocals-inproc-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let (udp, tcp, admin) = runtime.block_on(async {
            let udp = tokio::net::UdpSocket::bind(format!("{host}:0")).await.unwrap();
            let tcp = tokio::net::TcpListener::bind(format!("{host}:0")).await.unwrap();
            let admin = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            (udp, tcp, admin)
        });
        let port = |a: std::io::Result<std::net::SocketAddr>| a.unwrap().port();
        let ports = (port(udp.local_addr()), port(tcp.local_addr()), port(admin.local_addr()));
        // The file names the ports bound, so the `vocals` CLI pointed at it (`common::cli`) finds the API.
        let file = dir.join("vocals.toml");
        std::fs::write(&file, config_text(host, ports.0, ports.1, ports.2, rtp_range(), extra)).unwrap();
        let mut config = load(&file, &dir, env);
        vocals::daemon::prepare_state(&config).unwrap();
        let tls = match (config.sip.listen_tls, &config.sip.tls) {
            (Some(addr), Some((cert, key))) => {
                let tls = vocals::io::tls::server_config(cert, key).unwrap();
                Some((runtime.block_on(tokio::net::TcpListener::bind(addr)).unwrap(), tls))
            }
            _ => None,
        };
        // The port bound, for what vocals says of itself (its Contact over TLS), when port 0 was asked for.
        if let Some((listener, _)) = &tls {
            config.sip.listen_tls = Some(listener.local_addr().unwrap());
        }
        let tls_port = tls.as_ref().map(|(l, _)| port(l.local_addr()));
        let listeners = Listeners { udp: Some(udp), tcp: Some(tcp), tls, admin: Some(admin) };
        runtime.spawn(async move {
            if let Err(e) = vocals::daemon::serve(listeners, config, std::future::pending::<()>()).await {
                eprintln!("the in-process vocals stopped: {e}");
            }
        });
        let vocals = Vocals { udp: ports.0, tcp: ports.1, admin: ports.2, dir, host: host.into() };
        let server = InProcess { vocals, tls: tls_port, runtime: Some(runtime) };
        // Served once the API answers (the store opened, the admin token written); a request sent earlier
        // waits in the listener's queue, so this is one request, not a poll.
        server.http_get("/healthz");
        server
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_secs(2));
        }
        self.vocals.remove_dir();
    }
}

/// The configuration as `vocals serve --config file` reads it, with the state in `dir` and `env` over it.
fn load(file: &std::path::Path, dir: &std::path::Path, env: &[(&str, &str)]) -> Config {
    let mut vars = vec![("VOCALS_STATE_DIR".to_string(), dir.display().to_string())];
    vars.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Config::load(Some(file), vars).unwrap_or_else(|e| panic!("the test configuration: {e}"))
}

/// 400 RTP ports for one server: a range of its own within this process, and a different first range in each
/// test process. A port another process holds is no failure: the call layer leases another one.
fn rtp_range() -> u16 {
    let slot = std::process::id().wrapping_mul(7).wrapping_add(RTP_RANGES.fetch_add(1, Ordering::Relaxed)) % 100;
    20_000 + 400 * slot as u16
}
