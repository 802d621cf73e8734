//! Wiring: binds the listeners, builds the endpoint and the call layer from the configuration, and runs the
//! SIP driver until the shutdown future resolves. Tests call [`bind`] with port 0 and [`serve`] in-process.

use std::collections::HashMap;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::net::{IpAddr, Ipv4Addr, UdpSocket as StdUdpSocket};
use std::sync::Arc;

use crate::call::{CallConfig, Calls};
use crate::config::Config;
use crate::io::media::TokioMedia;
use crate::io::sip::{Listeners, TcpLimits};
use crate::routing::StaticNumbers;
use crate::sip::endpoint::{Endpoint, EndpointConfig, IdGen};

/// Binds the SIP listeners the configuration names (an empty address turns one off).
pub async fn bind(config: &Config) -> std::io::Result<Listeners> {
    let udp = match config.sip.listen_udp {
        Some(addr) => Some(tokio::net::UdpSocket::bind(addr).await?),
        None => None,
    };
    let tcp = match config.sip.listen_tcp {
        Some(addr) => Some(tokio::net::TcpListener::bind(addr).await?),
        None => None,
    };
    let admin = match config.admin_listen {
        Some(addr) => Some(tokio::net::TcpListener::bind(addr).await?),
        None => None,
    };
    Ok(Listeners { udp, tcp, admin })
}

/// Serves SIP on `listeners` until `shutdown` resolves.
/// `metrics` renders `/metrics` on the HTTP API (the recorder is installed once per process, by `main`).
pub async fn serve(
    config: Config,
    listeners: Listeners,
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let media_ip = config.media.public_ip.unwrap_or_else(detect_public_ip);
    let mut numbers = StaticNumbers::new();
    for n in &config.numbers {
        numbers.insert(n.number.clone(), n.agent.clone(), n.account_sid.clone());
    }
    numbers.set_fallback(config.default_agent.clone());
    match (&config.default_agent, config.numbers.is_empty()) {
        (Some(agent), _) => tracing::info!(agent, "calls to numbers not configured go to the default agent"),
        (None, true) => tracing::warn!("no [[numbers]] and no default_agent: every call will be answered 404"),
        (None, false) => {}
    }
    let ep_config = EndpointConfig {
        timers: config.sip.timers,
        limits: config.sip.limits,
        allow: config.sip.allow.clone(),
        reject_disallowed: config.sip.reject_disallowed,
        public_host: config.sip.public_host.clone(),
        max_calls: config.sip.max_calls,
        ..EndpointConfig::default()
    };
    let (media_tx, media_rx) = tokio::sync::mpsc::channel(1024);
    let (command_tx, command_rx) = tokio::sync::mpsc::channel(256);
    let agent_tokens: HashMap<String, String> =
        config.agents.iter().filter_map(|a| Some((a.name.clone(), a.auth_token.clone()?))).collect();
    let media = TokioMedia::new(config.media.settings.clone(), config.agents.clone(), media_tx, random_seed());
    let calls = Calls::new(
        CallConfig {
            numbers: Arc::new(numbers),
            media_ip,
            rtp_ports: config.media.rtp_ports,
            max_call_duration: config.sip.max_call_duration,
            srtp: false,
            agent_tokens: Arc::new(agent_tokens),
            default_account_sid: format!("AC{}", "0".repeat(32)),
            seed: random_seed(),
        },
        Box::new(media),
    );
    let udp = listeners.udp.as_ref().map(|s| s.local_addr()).transpose()?;
    let tcp = listeners.tcp.as_ref().map(|s| s.local_addr()).transpose()?;
    tracing::info!(?udp, ?tcp, %media_ip, "SIP listening");
    let endpoint = Endpoint::new(ep_config, IdGen::new(random_seed()));
    let tcp_limits =
        TcpLimits { max_connections: config.sip.tcp_max_connections, idle_timeout: config.sip.tcp_idle_timeout };
    let Listeners { udp, tcp, admin } = listeners;
    let http = match admin {
        Some(listener) => {
            tracing::info!(addr = ?listener.local_addr().ok(), "HTTP API listening");
            let app = crate::admin::app(crate::admin::AppState { calls: command_tx, metrics });
            Some(tokio::spawn(async move { axum::serve(listener, app).await }))
        }
        None => None,
    };
    let sip = Listeners { udp, tcp, admin: None };
    let result = crate::io::sip::run(endpoint, calls, sip, tcp_limits, media_rx, command_rx, shutdown).await;
    if let Some(http) = http {
        http.abort();
    }
    result
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
