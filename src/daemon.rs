//! Wiring: prepares the state directory, binds the listeners, builds the endpoint and the call layer from the
//! configuration, and runs the SIP driver and the HTTP API until a drain ends or a stop comes. Two entry points:
//! [`serve`], the library's, on listeners the caller bound (port 0 in tests: many servers in one process) until
//! a shutdown future completes; and [`run`], the binary's, which binds what the configuration names (or takes
//! systemd's sockets) and answers the process's signals: drain, stop, and reload on SIGHUP. It never parses the
//! command line and never sets up logging: `main` does.

use std::collections::HashMap;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::net::{IpAddr, Ipv4Addr, UdpSocket as StdUdpSocket};
use std::sync::Arc;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::mpsc;

use crate::admin::AppState;
use crate::call::{CallConfig, Calls};
use crate::config::{AgentConfig, Config, DefaultAgent, LogFormat};
use crate::io::media::TokioMedia;
use crate::io::sip::{Control, Listeners, TcpLimits};
use crate::routing::{Directory, NumberTable};
use crate::sip::endpoint::{Endpoint, IdGen};
use crate::store::Store;
use crate::store::catalog::{Catalog, Recorder};
use crate::twilio::{Origination, Provisioner, TerminationAuth, Twilio};

mod state;

pub use state::{admin_token, prepare_state, token_path};
use state::{open_store, secret_key};

/// Binds the SIP listeners the configuration names (an empty address turns one off). Sockets handed over by
/// systemd (socket activation, `LISTEN_FDS`: `systemd/vocals.socket` binds 5060 so the service needs no
/// capability) are used instead: a datagram socket is SIP over UDP, a stream socket on the admin port the HTTP
/// API, any other stream socket SIP over TCP.
pub async fn bind(config: &Config) -> std::io::Result<Listeners> {
    let mut handed = Listeners { udp: None, tcp: None, tls: None, admin: None };
    if let Ok(fds) = sd_notify::listen_fds() {
        for fd in fds {
            take_socket(fd, config, &mut handed)?;
        }
    }
    let udp = match (handed.udp, config.sip.listen_udp) {
        (Some(s), _) => Some(s),
        (None, Some(addr)) => Some(tokio::net::UdpSocket::bind(addr).await?),
        (None, None) => None,
    };
    if let Some(udp) = &udp {
        sip_receive_buffer(udp);
    }
    let tcp = match (handed.tcp, config.sip.listen_tcp) {
        (Some(s), _) => Some(s),
        (None, Some(addr)) => Some(tokio::net::TcpListener::bind(addr).await?),
        (None, None) => None,
    };
    let admin = match (handed.admin, config.admin_listen) {
        (Some(s), _) => Some(s),
        (None, Some(addr)) => Some(tokio::net::TcpListener::bind(addr).await?),
        (None, None) => None,
    };
    let tls = match (config.sip.listen_tls, &config.sip.tls) {
        (Some(addr), Some((cert, key))) => {
            let tls = crate::io::tls::server_config(cert, key)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?;
            Some((tokio::net::TcpListener::bind(addr).await?, tls))
        }
        _ => None,
    };
    Ok(Listeners { udp, tcp, tls, admin })
}

/// What the SIP UDP socket asks of the kernel for its receive buffer: a burst of INVITEs (a trunk failing
/// over to this node, a load test) must queue, not be dropped, while the driver is busy.
const SIP_RECEIVE_BUFFER: usize = 4 << 20;

/// Raises the SIP socket's receive buffer to [`SIP_RECEIVE_BUFFER`] (the kernel caps it at
/// `net.core.rmem_max`; the size it granted is logged).
fn sip_receive_buffer(udp: &tokio::net::UdpSocket) {
    let sock = socket2::SockRef::from(udp);
    if let Err(e) = sock.set_recv_buffer_size(SIP_RECEIVE_BUFFER) {
        tracing::warn!(error = %e, "cannot raise the SIP socket's receive buffer");
    }
    let granted = sock.recv_buffer_size().unwrap_or(0);
    if granted < SIP_RECEIVE_BUFFER {
        tracing::info!(
            granted,
            wanted = SIP_RECEIVE_BUFFER,
            "the SIP socket's receive buffer is capped by net.core.rmem_max; raise it for bursts of calls"
        );
    }
}

/// One socket from systemd, sorted into `into`.
fn take_socket(fd: std::os::fd::RawFd, config: &Config, into: &mut Listeners) -> std::io::Result<()> {
    use std::os::fd::FromRawFd;
    // SAFETY: systemd passes these descriptors to this process, open, from SD_LISTEN_FDS_START on, once
    // (listen_fds unsets LISTEN_FDS); nothing else in the process owns them.
    let socket = unsafe { socket2::Socket::from_raw_fd(fd) };
    socket.set_nonblocking(true)?;
    let local = socket.local_addr()?.as_socket();
    let admin_port = config.admin_listen.map(|a| a.port());
    match socket.r#type()? {
        socket2::Type::DGRAM => {
            tracing::info!(?local, "SIP over UDP on a socket from systemd");
            into.udp = Some(tokio::net::UdpSocket::from_std(socket.into())?);
        }
        socket2::Type::STREAM if local.map(|a| a.port()) == admin_port => {
            into.admin = Some(tokio::net::TcpListener::from_std(socket.into())?);
        }
        socket2::Type::STREAM => {
            tracing::info!(?local, "SIP over TCP on a socket from systemd");
            into.tcp = Some(tokio::net::TcpListener::from_std(socket.into())?);
        }
        other => tracing::warn!(?other, ?local, "a socket from systemd of an unknown kind: ignored"),
    }
    Ok(())
}

/// Where the configuration comes from, read at start and again on SIGHUP: the file, then the `VOCALS_*`
/// environment, then the flags (`--log-format`).
#[derive(Clone, Debug)]
pub struct ConfigSource {
    file: Option<PathBuf>,
    log_format: Option<LogFormat>,
}

impl ConfigSource {
    /// Reads the configuration the first time, `log_format` (the flag) parsed here, once; the source to read
    /// again on SIGHUP with it. The error says what is wrong: the key, or the flag.
    pub fn open(file: Option<PathBuf>, log_format: Option<&str>) -> Result<(ConfigSource, Config), String> {
        let mut source = ConfigSource { file, log_format: None };
        let mut config = source.load()?;
        if let Some(flag) = log_format {
            let format: LogFormat = flag
                .parse()
                .map_err(|_| format!("--log-format: {flag:?} is not valid: expected auto, pretty, plain or json"))?;
            source.log_format = Some(format);
            config.log.format = format;
        }
        Ok((source, config))
    }

    /// Reads the configuration again (SIGHUP).
    pub fn load(&self) -> Result<Config, String> {
        let mut config = Config::load(self.file.as_deref(), std::env::vars()).map_err(|e| e.to_string())?;
        if let Some(format) = self.log_format {
            config.log.format = format;
        }
        Ok(config)
    }
}

/// The server as `vocals serve` runs it: binds the listeners `config` names (or takes systemd's), then serves
/// until the process's signals end it. SIGTERM or SIGINT drains (a second one stops at once); SIGHUP reads
/// `source` again and applies its allowlist, TLS certificate, numbers and log level (through `log_level`)
/// without touching calls. The state directory is ready ([`prepare_state`]) and logging is set up.
pub async fn run(source: ConfigSource, config: Config, log_level: LogReload) -> std::io::Result<()> {
    let listeners = bind(&config).await?;
    let (tx, rx) = mpsc::channel(8);
    tokio::spawn(signals(tx, source));
    // On a worker, like every call's media task: the SIP driver and the tasks it talks to then share the
    // runtime's threads, instead of every message between them waking a thread of its own (block_on's).
    let server = tokio::spawn(serve_with(config, listeners, rx, Some(log_level)));
    server.await.map_err(|e| std::io::Error::other(format!("the server task failed: {e}")))?
}

/// The server on listeners the caller bound: SIP on `listeners`' UDP, TCP and TLS sockets and the HTTP API on
/// its admin listener (each optional), until `shutdown` completes; then it drains (new calls 503, calls in
/// progress go on until `sip.drain_timeout`, then BYE) and returns. The state directory is ready
/// ([`prepare_state`]); `/metrics` is served from the process's recorder, installed by the first server
/// ([`crate::metrics::handle`]). It reads no signal and no configuration of its own; the sd_notify messages go
/// out only under a service manager (`NOTIFY_SOCKET`).
pub async fn serve(listeners: Listeners, config: Config, shutdown: impl Future) -> std::io::Result<()> {
    let (tx, rx) = mpsc::channel(1);
    let server = serve_with(config, listeners, rx, None);
    tokio::pin!(server);
    tokio::select! {
        result = &mut server => return result,
        _ = shutdown => {}
    }
    let _ = tx.send(Signal::Drain).await;
    server.await
}

/// What the process's signals ask of the server.
#[derive(Debug)]
pub enum Signal {
    /// SIGTERM/SIGINT: drain (new calls 503, calls in progress go on until `sip.drain_timeout`), then exit.
    Drain,
    /// A second SIGTERM/SIGINT: exit now.
    Stop,
    /// SIGHUP: the configuration read again; its allowlist, log level and numbers apply without touching calls.
    Reload(Box<Config>),
}

/// Sets the log filter (from `log.level`) while running.
pub type LogReload = Box<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

/// Serves SIP on `listeners` until a drain is over or `Signal::Stop`; `log_level` sets the log filter on a
/// reload.
async fn serve_with(
    config: Config,
    listeners: Listeners,
    mut signals: mpsc::Receiver<Signal>,
    log_level: Option<LogReload>,
) -> std::io::Result<()> {
    let metrics = crate::metrics::handle();
    let media_ip = config.media.public_ip.unwrap_or_else(detect_public_ip);
    crate::io::sip::SIP_TRACE.store(config.log.sip_trace, Ordering::Relaxed);
    let base = config_numbers(&config);
    tracing::info!("calls to numbers not added: {}", fallback_rule(&config.default_agent));
    let directory = Arc::new(Directory::new(base.clone()));
    let store = Arc::new(open_store(&config.store_url).await?.with_secret(secret_key(&config)?));
    match store.close_unfinished_calls(&config.node).await {
        Ok(0) => {}
        Ok(n) => tracing::warn!(calls = n, node = %config.node, "calls left unfinished by the last run marked ended"),
        Err(e) => tracing::warn!(error = %e, "could not close the last run's unfinished call records"),
    }
    let catalog = Catalog::new(store.clone(), base, directory.clone());
    match catalog.reload().await {
        Ok(n) => {
            tracing::info!(numbers = n, store = %crate::config::redact_url(&config.store_url), "routing table loaded")
        }
        Err(e) => tracing::warn!(error = %e, "routing table not loaded from the store yet; retrying"),
    }
    warn_plain_agents(&config, &store).await;
    let watch = catalog.clone().spawn_watch();
    let (records, writer) = Recorder::spawn(store.clone(), 10_000);
    let (recordings, uploads) = start_recordings(&config, &records)?;
    let token = admin_token(&config)?;
    let sip_port = listeners.udp.as_ref().map(|s| s.local_addr()).transpose()?.map(|a| a.port());
    let tls_port = listeners.tls.as_ref().and_then(|t| t.0.local_addr().ok()).map(|a| a.port());
    // The one HTTP client of the process: Twilio's APIs, status callbacks, TwiML fetches.
    let client = crate::io::agent::tls_config()
        .map_err(crate::twilio::TwilioError::Transport)
        .and_then(|tls| Twilio::new(config.twilio.endpoints.clone(), config.twilio.timeout, &tls));
    let client = match client {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::error!(error = %e, "no HTTP client: Twilio linking, status callbacks and TwiML fetches are off");
            None
        }
    };
    let twilio = client.clone().and_then(|c| provisioner(c, &config, store.clone(), media_ip, sip_port, tls_port));
    let reconcile = match (&twilio, config.twilio.reconcile_interval) {
        (Some(p), Some(every)) => Some(spawn_reconcile(p.clone(), every)),
        _ => None,
    };
    let ep_config = config.sip.endpoint();
    let (media_tx, media_rx) = tokio::sync::mpsc::channel(1024);
    let (command_tx, command_rx) = tokio::sync::mpsc::channel(256);
    let media = TokioMedia::new(config.media.settings.clone(), media_tx, Some(records.clone()), random_seed())
        .with_recordings(recordings);
    let calls = Calls::new(CallConfig {
        numbers: directory,
        media_ip,
        rtp_ports: config.media.rtp_ports,
        max_call_duration: config.sip.max_call_duration,
        srtp: config.media.srtp,
        srtp_keys: crate::media::srtp::fresh_key,
        wall_clock: jiff::Timestamp::now,
        default_account_sid: format!("AC{}", "0".repeat(32)),
        seed: random_seed(),
        node: config.node.clone(),
        record: config.recording.record,
        records: Some(records.clone()),
        transfer: config.transfer.clone(),
        outbound: config.outbound.clone(),
        sip_local: crate::call::outbound::Listening {
            udp: listeners.udp.as_ref().and_then(|s| s.local_addr().ok()),
            tcp: listeners.tcp.as_ref().and_then(|s| s.local_addr().ok()),
            tls: listeners.tls.as_ref().and_then(|s| s.0.local_addr().ok()),
        },
    });
    let callbacks = client.as_ref().map(|c| crate::io::callbacks::spawn(c.http().clone()));
    let outbound = client.as_ref().map(|c| {
        Arc::new(crate::admin::placing::Outbound {
            settings: config.outbound.clone(),
            trunks: Arc::new(config.trunks.clone()),
            http: c.http().clone(),
        })
    });
    let udp = listeners.udp.as_ref().map(|s| s.local_addr()).transpose()?;
    let tcp = listeners.tcp.as_ref().map(|s| s.local_addr()).transpose()?;
    let tls = listeners.tls.as_ref().map(|s| s.0.local_addr()).transpose()?;
    tracing::info!(?udp, ?tcp, ?tls, %media_ip, "SIP listening");
    let endpoint = Endpoint::new(ep_config, IdGen::new(random_seed()));
    let tcp_limits = TcpLimits {
        max_connections: config.sip.tcp_max_connections,
        max_per_source: config.sip.tcp_max_per_source,
        reserved_for_exempt: config.sip.tcp_reserved_for_exempt,
        exempt: config.sip.rate.exempt.clone(),
        idle_timeout: config.sip.tcp_idle_timeout,
        message_timeout: config.sip.tcp_message_timeout,
    };
    let Listeners { udp, tcp, tls, admin } = listeners;
    let draining = Arc::new(AtomicBool::new(false));
    let (control_tx, control_rx) = mpsc::channel(8);
    let signal_task = {
        let (catalog, draining, drain_timeout) = (catalog.clone(), draining.clone(), config.sip.drain_timeout);
        tokio::spawn(async move {
            while let Some(signal) = signals.recv().await {
                let control = match signal {
                    Signal::Drain => {
                        draining.store(true, Ordering::Relaxed);
                        Control::Drain { timeout: drain_timeout }
                    }
                    Signal::Stop => Control::Stop,
                    Signal::Reload(new) => {
                        reload(&catalog, &new, log_level.as_ref()).await;
                        if let Some(tls) = reload_tls(&new) {
                            let _ = control_tx.send(Control::SetTls(tls)).await;
                        }
                        Control::SetAllow { allow: new.sip.allow.clone(), reject_disallowed: new.sip.reject_disallowed }
                    }
                };
                let _ = control_tx.send(control).await;
            }
        })
    };
    let http = match admin {
        Some(listener) => {
            tracing::info!(addr = ?listener.local_addr().ok(), "HTTP API listening");
            let state = AppState {
                calls: Some(command_tx),
                metrics,
                catalog: Some(catalog.clone()),
                token: Some(token),
                twilio,
                outbound,
                draining: draining.clone(),
                recordings: Some(config.state_dir.join("recordings")),
                remote: uploads.as_ref().map(|u| u.remote().clone()),
                node: config.node.clone(),
                ..AppState::default()
            };
            let app = crate::admin::app(state);
            let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
            Some(tokio::spawn(async move { axum::serve(listener, app).await }))
        }
        None => None,
    };
    let sip = Listeners { udp, tcp, tls, admin: None };
    let admin_addr = http.as_ref().and(config.admin_listen);
    tracing::info!("{}", ready_block(&config, &sip, media_ip, admin_addr));
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready, sd_notify::NotifyState::Status("0 calls")]);
    let hep = match &config.log.hep {
        Some(target) => match crate::io::tap::Hep::start(&target.host, target.port, config.log.hep_id).await {
            Ok(hep) => Some(hep),
            Err(e) => {
                tracing::error!(collector = %target.host, error = %e, "HEP is off: the collector cannot be reached");
                None
            }
        },
        None => None,
    };
    // One trace per call in progress, and room for the refusals that linger a moment.
    let traces = config.log.call_trace.then_some(config.sip.max_calls + 1024);
    let tap = crate::io::tap::Tap::new(traces, hep, Some(records), config.node.clone(), random_seed());
    let driver = crate::io::sip::Driver {
        endpoint,
        calls,
        media: Box::new(media),
        callbacks,
        listeners: sip,
        tcp_limits,
        media_events: media_rx,
        commands: command_rx,
        control: control_rx,
        tap,
    };
    let result = driver.run().await;
    signal_task.abort();
    if let Some(http) = http {
        http.abort();
    }
    watch.abort();
    if let Some(r) = reconcile {
        r.abort();
    }
    // The call layer is gone: the writer drains what is queued (5 s at most), then stops.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), writer).await;
    result
}

/// The process's signals as the server's: SIGTERM or SIGINT drains (a second one stops at once), SIGHUP
/// reloads the configuration from `source` (a bad file is logged and ignored).
async fn signals(tx: mpsc::Sender<Signal>, source: ConfigSource) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) =
        (signal(SignalKind::terminate()), signal(SignalKind::interrupt()), signal(SignalKind::hangup()))
    else {
        tracing::error!("cannot listen for signals");
        return;
    };
    let mut stopping = false;
    loop {
        let stop = tokio::select! {
            _ = term.recv() => true,
            _ = int.recv() => true,
            _ = hup.recv() => false,
        };
        let signal = match (stop, stopping) {
            (true, false) => {
                stopping = true;
                tracing::info!("SIGTERM: draining (a second signal stops at once)");
                Signal::Drain
            }
            (true, true) => {
                tracing::warn!("second signal: stopping now");
                Signal::Stop
            }
            (false, _) => match source.load() {
                Ok(config) => Signal::Reload(Box::new(config)),
                Err(e) => {
                    tracing::error!(error = %e, "SIGHUP: the configuration has an error; nothing reloaded");
                    continue;
                }
            },
        };
        if tx.send(signal).await.is_err() {
            return;
        }
    }
}

/// What a person starting the server needs to know, once it is ready: where SIP and media are, the
/// dashboard, where the admin token is kept (never the token), what happens to unknown numbers, what to run
/// next.
fn ready_block(config: &Config, sip: &Listeners, media_ip: IpAddr, admin: Option<std::net::SocketAddr>) -> String {
    let addr = |a: std::io::Result<std::net::SocketAddr>| a.map_or_else(|_| "?".to_string(), |a| a.to_string());
    let mut listening = Vec::new();
    if let Some(udp) = &sip.udp {
        listening.push(format!("udp {}", addr(udp.local_addr())));
    }
    if let Some(tcp) = &sip.tcp {
        listening.push(format!("tcp {}", addr(tcp.local_addr())));
    }
    if let Some((tls, _)) = &sip.tls {
        listening.push(format!("tls {}", addr(tls.local_addr())));
    }
    let sip_line = if listening.is_empty() { "no listener".to_string() } else { listening.join(", ") };
    let ports = config.media.rtp_ports;
    let dashboard = match admin {
        Some(a) => {
            let host = match a.ip() {
                ip if ip.is_unspecified() => "127.0.0.1".to_string(),
                IpAddr::V6(v6) => format!("[{v6}]"),
                IpAddr::V4(v4) => v4.to_string(),
            };
            format!("http://{host}:{}/ui/", a.port())
        }
        None => "off (admin.listen is empty)".to_string(),
    };
    let token = match &config.admin_token {
        Some(_) => "set in the configuration (admin.token)".to_string(),
        None => format!("in {} (send it as Authorization: Bearer)", token_path(config).display()),
    };
    let lines = [
        ("SIP:", sip_line),
        ("Media:", format!("RTP on {media_ip}, ports {}-{}", ports.first, ports.last)),
        ("Dashboard:", dashboard),
        ("Admin token:", token),
        ("Other numbers:", fallback_rule(&config.default_agent)),
        ("Next:", "vocals numbers add +14155550123 --agent echo   (then call that number through your trunk)".into()),
    ];
    let mut block = String::from("vocals is ready");
    for (label, value) in lines {
        block.push_str(&format!("\n  {label:<15} {value}"));
    }
    block
}

/// Warns, once at start, about agents reached over `ws://` (unencrypted) that carry secrets or provider keys:
/// their handshake signature, the prompt and providers in `start`, and the audio cross the network in clear.
async fn warn_plain_agents(config: &Config, store: &Store) {
    let mut agents: Vec<AgentConfig> = config.agents.clone();
    match store.agents().await {
        Ok(stored) => agents.extend(stored.iter().map(|a| a.to_config())),
        Err(e) => tracing::debug!(error = %e, "agents not read for the ws:// check"),
    }
    for a in agents.iter().filter(|a| a.url.starts_with("ws://")) {
        let mut carries = Vec::new();
        if a.secret.is_some() || a.auth_token.is_some() {
            carries.push("a signing secret");
        }
        if a.parameters.contains_key("providers") {
            carries.push("provider settings");
        }
        if !carries.is_empty() {
            tracing::warn!(
                agent = %a.name,
                url = %crate::config::redact_url(&a.url),
                "the agent is reached over ws://, unencrypted, and its stream carries {}: use wss://",
                carries.join(" and ")
            );
        }
    }
}

/// SIGHUP: the TLS certificate and key read again; on an error the one in use stays (and it is logged).
fn reload_tls(config: &Config) -> Option<Arc<rustls::ServerConfig>> {
    let (cert, key) = config.sip.tls.as_ref()?;
    match crate::io::tls::server_config(cert, key) {
        Ok(tls) => Some(tls),
        Err(e) => {
            tracing::warn!(error = %e, "reload: TLS certificate not changed");
            None
        }
    }
}

/// SIGHUP: the config file's numbers and the store's read again, the log level set; calls are not touched.
async fn reload(catalog: &Catalog, config: &Config, log_level: Option<&LogReload>) {
    let monotonic = sd_notify::NotifyState::monotonic_usec_now();
    let mut states = vec![sd_notify::NotifyState::Reloading];
    if let Ok(m) = monotonic {
        states.push(m);
    }
    let _ = sd_notify::notify(false, &states);
    catalog.set_base(config_numbers(config));
    crate::io::sip::SIP_TRACE.store(config.log.sip_trace, Ordering::Relaxed);
    match catalog.reload().await {
        Ok(n) => tracing::info!(numbers = n, "reloaded: routing table"),
        Err(e) => tracing::warn!(error = %e, "reload: the store did not answer; routing keeps the previous table"),
    }
    if let Some(set) = log_level
        && let Err(e) = set(&config.log.level)
    {
        tracing::warn!(level = %config.log.level, error = %e, "reload: log level not changed");
    }
    tracing::info!(level = %config.log.level, "reloaded: allowlist, log level and numbers");
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
}

/// The config file's numbers and agents as a routing table, with the default agent for numbers not in it.
/// The store's numbers go over these.
fn config_numbers(config: &Config) -> NumberTable {
    let mut agents: HashMap<&str, Arc<AgentConfig>> =
        config.agents.iter().map(|a| (a.name.as_str(), Arc::new(a.clone()))).collect();
    agents.insert("echo", Arc::new(AgentConfig::echo()));
    let mut table = NumberTable::new();
    for n in &config.numbers {
        let agent = n.agent.as_deref().and_then(|name| agents.get(name).cloned());
        table.insert(n.number.clone(), agent, n.account_sid.clone());
        table.set_srtp(&n.number, n.srtp);
        table.set_record(&n.number, n.record);
        // Checked when the file was read (Config::validate): every rule names a known agent.
        match crate::routing::NumberRules::new(&n.rules, |name| agents.get(name).cloned()) {
            Ok(rules) => table.set_rules(&n.number, Some(rules)),
            Err(e) => tracing::warn!(number = %n.number, error = %e, "routing rules not applied"),
        }
    }
    table.set_account_policy(config.sip.accounts.clone());
    match &config.default_agent {
        DefaultAgent::Demo => table.set_demo_fallback(agents["echo"].clone()),
        DefaultAgent::Agent(name) => table.set_fallback(agents.get(name.as_str()).cloned()),
        DefaultAgent::Refuse => table.set_fallback(None),
    }
    table
}

/// What happens to calls to numbers not added, in words (logged at start, shown in the ready block).
/// The recording writer over `STATE_DIR/recordings`, after repairing what a crash left there (each repaired
/// recording's record says so); with `recording.url`, the uploads (those a stop left pending queued again);
/// and, with `recording.retention_days`, an hourly sweep of the old ones, here and in the bucket.
fn start_recordings(
    config: &Config,
    records: &Recorder,
) -> std::io::Result<(crate::io::recording::Recordings, Option<crate::io::upload::Uploads>)> {
    use crate::io::{recording, upload};
    use crate::store::catalog::CallWrite;
    let dir = config.state_dir.join("recordings");
    std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700).create(&dir)?;
    let remote = match config.recording.url.as_deref().map(upload::Remote::from_url).transpose() {
        Ok(remote) => remote.map(Arc::new),
        Err(e) => return Err(std::io::Error::other(format!("recording.url: {e}"))),
    };
    for (id, mut recording) in recording::recover(&dir) {
        if remote.is_some()
            && let Some(file) = recording["file"].as_str().map(PathBuf::from)
        {
            recording["upload"] = serde_json::json!("pending");
            if let Err(e) = upload::mark(&dir, &file, &recording) {
                tracing::warn!(call = %id, error = %e, "a recovered recording not queued for upload");
            }
        }
        records.send(CallWrite::Recording { id, recording });
    }
    let uploads = remote.map(|r| upload::Uploads::spawn(r, dir.clone(), Some(records.clone())));
    let (format, queue) = (config.recording.format, recording::QUEUE);
    let recordings = match &uploads {
        Some(u) => {
            recording::Recordings::start_uploading(dir.clone(), format, Some(records.clone()), queue, u.clone())?
        }
        None => recording::Recordings::start(dir.clone(), format, Some(records.clone()), queue)?,
    };
    let days = config.recording.retention_days;
    if days > 0 {
        let (records, remote) = (records.clone(), uploads.as_ref().map(|u| u.remote().clone()));
        tokio::spawn(async move {
            let mut every = tokio::time::interval(std::time::Duration::from_secs(3600));
            loop {
                every.tick().await;
                let dir = dir.clone();
                let now = std::time::SystemTime::now();
                let swept = tokio::task::spawn_blocking(move || recording::sweep(&dir, days, now)).await;
                for (id, file) in swept.unwrap_or_default() {
                    if let Some(remote) = &remote
                        && let Err(e) = remote.delete(&file).await
                    {
                        tracing::warn!(call = %id, error = %e, "an expired recording could not be deleted from the bucket");
                    }
                    let recording = serde_json::json!({"status": "expired"});
                    records.send(CallWrite::Recording { id, recording });
                }
            }
        });
    }
    Ok((recordings, uploads))
}

pub fn fallback_rule(default: &DefaultAgent) -> String {
    match default {
        DefaultAgent::Demo => "answered by the built-in echo agent while no number is added (the demo); \
                               refused 404 once any number exists (set default_agent to choose)"
            .into(),
        DefaultAgent::Agent(name) => format!("answered by the agent {name:?} (default_agent)"),
        DefaultAgent::Refuse => "refused 404 (default_agent = \"\")".into(),
    }
}

/// The Twilio linking flows over one shared client; `None` (logged) when the client cannot be built.
fn provisioner(
    client: Twilio,
    config: &Config,
    store: Arc<Store>,
    media_ip: IpAddr,
    sip_port: Option<u16>,
    tls_port: Option<u16>,
) -> Option<Arc<Provisioner>> {
    let mut sip_urls = config.twilio.origination_uris.clone();
    if sip_urls.is_empty() {
        let host = config.sip.public_host.clone().unwrap_or_else(|| match media_ip {
            IpAddr::V6(v6) => format!("[{v6}]"),
            IpAddr::V4(v4) => v4.to_string(),
        });
        // With TLS on, Twilio is sent to the TLS listener (Secure Trunking); else to the UDP port.
        sip_urls.push(match tls_port {
            Some(port) => format!("sip:{host}:{port};transport=tls"),
            None => format!("sip:{host}:{}", sip_port.unwrap_or(5060)),
        });
    }
    tracing::info!(uris = ?sip_urls, "Twilio numbers added here are pointed at these origination URIs");
    let (priority, weight, secure) = (config.twilio.priority, config.twilio.weight, tls_port.is_some());
    let origination = Origination { sip_urls, priority, weight, secure };
    if let TerminationAuth::Ip(blocks) = &config.termination {
        let ips: Vec<String> = blocks.iter().map(ToString::to_string).collect();
        tracing::info!(?ips, "the trunks of linked accounts take the calls placed here from these addresses");
    }
    Some(Arc::new(Provisioner::new(client, store, origination, config.termination.clone())))
}

/// Compares Twilio with the store every `every`.
fn spawn_reconcile(provisioner: Arc<Provisioner>, every: std::time::Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            match provisioner.reconcile().await {
                Ok(drift) if drift.is_empty() => tracing::debug!("Twilio matches the store"),
                Ok(drift) => tracing::warn!(numbers = drift.len(), "Twilio drifted from the store"),
                Err(e) => tracing::warn!(error = %e, "reconcile failed"),
            }
        }
    })
}

/// The host's primary address, as the routing table picks it (a UDP "connect" sends no packet); loopback
/// when there is no route.
fn detect_public_ip() -> IpAddr {
    let probe = || -> std::io::Result<IpAddr> {
        let s = StdUdpSocket::bind("0.0.0.0:0")?;
        s.connect("192.0.2.1:9")?;
        Ok(s.local_addr()?.ip())
    };
    match probe() {
        Ok(ip) if !ip.is_unspecified() => ip,
        _ => {
            tracing::warn!("could not detect the public address; set media.public_ip. Using 127.0.0.1");
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        }
    }
}

/// 64 random bits from the OS (through std's hasher seeding), for tags and branches.
fn random_seed() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(std::process::id().into());
    h.finish()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream, UdpSocket};

    use super::*;

    /// A whole server on sockets the caller bound to port 0: the HTTP API and SIP answer, and `serve` returns
    /// once its shutdown future completes (no call in progress: the drain is over at once).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_server_on_port_0_answers_and_returns_once_shut_down() {
        let dir = std::env::temp_dir().join(format!("vocals-daemon-serve-{}", std::process::id()));
        let env = [("VOCALS_STATE_DIR", dir.display().to_string()), ("VOCALS_MEDIA_PUBLIC_IP", "127.0.0.1".into())];
        let config = Config::load(None, env.map(|(k, v)| (k.to_string(), v))).unwrap();
        prepare_state(&config).unwrap();
        let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let admin = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (sip, http) = (udp.local_addr().unwrap(), admin.local_addr().unwrap());
        let listeners = Listeners { udp: Some(udp), tcp: None, tls: None, admin: Some(admin) };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listeners, config, stopped));

        let mut conn = TcpStream::connect(http).await.unwrap();
        conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: vocals\r\nConnection: close\r\n\r\n").await.unwrap();
        let mut response = String::new();
        conn.read_to_string(&mut response).await.unwrap();
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");

        let caller = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let me = caller.local_addr().unwrap();
        let options = format!(
            "OPTIONS sip:{sip} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-serve-1\r\nFrom: <sip:t@{me}>;tag=1\r\n\
             To: <sip:{sip}>\r\nCall-ID: serve-1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        );
        caller.send_to(options.as_bytes(), sip).await.unwrap();
        let mut buf = [0u8; 2048];
        let (n, _) = tokio::time::timeout(Duration::from_secs(5), caller.recv_from(&mut buf)).await.unwrap().unwrap();
        let answer = String::from_utf8_lossy(&buf[..n]);
        assert!(answer.starts_with("SIP/2.0 200"), "{answer}");

        stop.send(()).unwrap();
        let result = tokio::time::timeout(Duration::from_secs(10), server).await.expect("serve returned");
        assert!(matches!(result, Ok(Ok(()))), "{result:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
