//! Configuration: built-in defaults < TOML file < environment (`VOCALS_<SECTION>_<KEY>`) < CLI flags. The file's
//! keys and the environment's are read into one serde struct per section ([`sections`], each with its
//! `Default`), each value into its type; then the keys that depend on one another are put together into the
//! typed sub-configs the components take. A bad value is reported with its key path and what is allowed, an
//! unknown key with the keys there are. Nothing else reads the environment or the file.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use crate::agent::config::{AgentConfig, AgentKind};
use crate::agent::transfer::TransferPolicy;
use crate::call::outbound::{Hop, OutboundSettings, Trunk};
use crate::e164::E164;
use crate::io::media::MediaSettings;
use crate::media::ports::PortRange;
use crate::media::recording::{RecordFormat, RecordMode};
use crate::sdp::SrtpPolicy;
use crate::sip::allow::AllowList;
use crate::sip::endpoint::Transport;
use crate::sip::endpoint::{self, EndpointConfig};
use crate::sip::message::Limits;
use crate::sip::ratelimit::RateConfig;
use crate::sip::transaction::Timers;
use crate::twilio::TerminationAuth;

/// The whole configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Where state lives (database, generated token). `VOCALS_STATE_DIR`; default `/var/lib/vocals` under
    /// systemd (`STATE_DIRECTORY` set), else `./vocals-data`.
    pub state_dir: PathBuf,
    pub sip: SipConfig,
    pub media: MediaConfig,
    pub log: LogConfig,
    /// Who answers calls to numbers that are neither in `[[numbers]]` nor in the store.
    pub default_agent: DefaultAgent,
    /// `[[numbers]]`: the numbers served and their agents, until the store holds them.
    pub numbers: Vec<NumberConfig>,
    /// `[[agents]]`: the WebSocket agents, until the store holds them (`echo` is built in).
    pub agents: Vec<AgentConfig>,
    /// `[admin] listen`: the HTTP API (and the Twilio-compatible call control); `None` turns it off.
    pub admin_listen: Option<SocketAddr>,
    /// `[admin] token` (`VOCALS_ADMIN_TOKEN`): the bearer token the admin API wants; `None`: the one generated
    /// in the state directory.
    pub admin_token: Option<String>,
    /// `[store] url` (`VOCALS_STORE_URL`): `sqlite://…` or `postgres://…`; default `vocals.db` in the state
    /// directory.
    pub store_url: String,
    /// `[store] secret_key` (`VOCALS_STORE_SECRET_KEY`): 32 bytes in base64 sealing Twilio auth tokens; `None`:
    /// the one generated in the state directory (nodes sharing a PostgreSQL need the same key).
    pub store_secret_key: Option<String>,
    pub twilio: TwilioConfig,
    /// `[transfer]`: where agents may transfer callers (each agent's own settings win, field by field).
    pub transfer: TransferPolicy,
    /// `[recording]`: whether calls are recorded (each agent's and number's `record` win), how, how long kept.
    pub recording: RecordingConfig,
    /// `[outbound]`: how calls vocals places are paced and routed.
    pub outbound: OutboundSettings,
    /// `[[trunks]]`: the trunks outbound calls leave on, by account, until linked accounts hold them.
    pub trunks: Vec<Trunk>,
    /// `[outbound] termination_auth` and `termination_ips`: how the trunks of linked accounts know the calls vocals
    /// places on them.
    pub termination: TerminationAuth,
    /// This node's name in call records (several nodes may share one PostgreSQL); default the host name.
    pub node: String,
}

/// `[recording]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecordingConfig {
    /// The server's default: calls are recorded (`dual`) unless their agent or number says `off`.
    pub record: RecordMode,
    pub format: RecordFormat,
    /// Recordings are deleted after this many days; 0 keeps them.
    pub retention_days: u32,
    /// `s3://bucket/prefix`: where recordings are uploaded (`None`: local disk only).
    pub url: Option<String>,
}

/// Who answers a call to a number vocals does not know.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DefaultAgent {
    /// `default_agent` not set: the built-in echo answers unknown numbers while no number exists anywhere (the
    /// zero-configuration demo); once any number exists, in the store or the file, they get 404.
    Demo,
    /// `default_agent = "NAME"`: this agent answers every unknown number.
    Agent(String),
    /// `default_agent = ""`: unknown numbers get 404.
    Refuse,
}

impl DefaultAgent {
    /// The agent named, if one is.
    pub fn name(&self) -> Option<&str> {
        match self {
            DefaultAgent::Agent(name) => Some(name),
            DefaultAgent::Demo | DefaultAgent::Refuse => None,
        }
    }
}

/// `[twilio]`: account linking.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TwilioConfig {
    pub endpoints: crate::twilio::Endpoints,
    /// The SIP URIs Twilio sends calls to (every node's); empty = this node's, from `sip.public_host` or the
    /// media address and the UDP port.
    pub origination_uris: Vec<String>,
    pub priority: u32,
    pub weight: u32,
    /// How often Twilio is compared with the store; `None`: only on demand.
    pub reconcile_interval: Option<Duration>,
    pub timeout: Duration,
}

/// `[media]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaConfig {
    /// The address put in SDP; `None` = detect the host's primary address at start.
    pub public_ip: Option<IpAddr>,
    pub rtp_ports: PortRange,
    pub settings: MediaSettings,
    /// SRTP for calls' media: off, allowed (as offered) or required.
    pub srtp: SrtpPolicy,
}

/// One `[[numbers]]` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NumberConfig {
    pub number: E164,
    /// `None`: known but unassigned (calls get 480).
    pub agent: Option<String>,
    /// The Twilio account that owns the number: calls naming another account get 403.
    pub account_sid: Option<String>,
    /// The number's own SRTP policy (over `media.srtp`).
    pub srtp: Option<SrtpPolicy>,
    /// The number's own word on recording (`off` wins over its agent's `dual`); `None`: its agent's, or
    /// `[recording] record`.
    pub record: Option<RecordMode>,
    /// `[[numbers.rules]]` as the API's JSON (each rule's `agent_id` an agent's name); `null`: none.
    pub rules: serde_json::Value,
}

/// `[sip]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SipConfig {
    /// UDP listener; `None` when configured as an empty string.
    pub listen_udp: Option<SocketAddr>,
    /// TCP listener; `None` when configured as an empty string.
    pub listen_tcp: Option<SocketAddr>,
    /// TLS listener (`None`: configured empty); it runs when a certificate and key are given.
    pub listen_tls: Option<SocketAddr>,
    /// The TLS certificate chain and private key (PEM files), both or neither.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Host or IP put in Contact; `None` = the address the request arrived on.
    pub public_host: Option<String>,
    /// Message size caps.
    pub limits: Limits,
    /// Sources SIP is accepted from.
    pub allow: AllowList,
    /// Answer other sources with 403 instead of dropping them silently (UDP: TCP and TLS connections from them are
    /// closed at accept).
    pub reject_disallowed: bool,
    /// Calls at once; further INVITEs get 503 + Retry-After.
    pub max_calls: usize,
    /// Server transactions held at once (finished ones included, for 64·T1 over UDP); beyond it, 503.
    pub max_transactions: usize,
    /// Calls longer than this are ended with our BYE.
    pub max_call_duration: Duration,
    /// RFC 4028: the smallest session interval taken, seconds.
    pub min_se: u32,
    /// RFC 4028: the session interval asked for in our INVITEs, seconds (not below `min_se`).
    pub session_expires: u32,
    /// Transaction timers (T1 shortened only in labs and tests).
    pub timers: Timers,
    /// TCP connections held at once.
    pub tcp_max_connections: usize,
    /// TCP connections held at once from one source, an IPv6 source counted by its /64 (the rate-exempt sources
    /// excepted).
    pub tcp_max_per_source: usize,
    /// Of `tcp_max_connections`, the connections only the rate-exempt sources may take (less than it).
    pub tcp_reserved_for_exempt: usize,
    /// A TCP connection with no complete message for this long is closed.
    pub tcp_idle_timeout: Duration,
    /// A TCP message begun and not complete after this long closes its connection (slowloris).
    pub tcp_message_timeout: Duration,
    /// On SIGTERM: how long calls in progress may go on (new ones get 503) before they get BYE.
    pub drain_timeout: Duration,
    /// The per-source limit on new INVITEs.
    pub rate: RateConfig,
    /// The per-source limit on every new request (same exempt sources).
    pub request_rate: RateConfig,
    /// Most bytes the server transactions may keep for retransmission.
    pub max_transaction_bytes: usize,
    /// The Twilio accounts whose calls are taken (`sip.accounts`).
    pub accounts: crate::routing::AccountPolicy,
}

/// `[log]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogConfig {
    /// A tracing filter directive, e.g. `info` or `vocals=debug,info`.
    pub level: String,
    pub format: LogFormat,
    /// Every SIP message in and out, logged whole (target `vocals::sip_trace`).
    pub sip_trace: bool,
    /// Each call keeps its SIP messages with its record (`GET /v1/calls/{id}/sip`).
    pub call_trace: bool,
    /// Where every SIP message is sent as HEPv3 (a Homer collector), and the capture agent id it carries.
    pub hep: Option<HepTarget>,
    pub hep_id: u32,
}

/// `[log] hep = "udp:HOST:PORT"`: a HEP collector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HepTarget {
    /// A name or an address (IPv6 without its brackets), resolved when vocals starts.
    pub host: String,
    pub port: u16,
}

impl HepTarget {
    pub fn parse(text: &str) -> Result<Option<HepTarget>, String> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(None);
        }
        let rest = text.strip_prefix("udp:").ok_or("udp:HOST:PORT (HEP goes over UDP)")?;
        let (host, port) = rest.rsplit_once(':').ok_or("udp:HOST:PORT (the port is missing)")?;
        let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
        let port: u16 = port.parse().ok().filter(|p| *p > 0).ok_or("udp:HOST:PORT (the port is 1-65535)")?;
        if host.is_empty() || host.contains(['/', ' ', '[', ']']) {
            return Err("udp:HOST:PORT (the host is a name or an address)".into());
        }
        Ok(Some(HepTarget { host: host.to_string(), port }))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Pretty on a terminal, plain otherwise (journald).
    Auto,
    Pretty,
    Plain,
    Json,
}

impl LogFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Auto => "auto",
            LogFormat::Pretty => "pretty",
            LogFormat::Plain => "plain",
            LogFormat::Json => "json",
        }
    }
}

impl std::str::FromStr for LogFormat {
    type Err = ();

    /// `log.format` and `--log-format` alike: auto, pretty, plain or json.
    fn from_str(s: &str) -> Result<LogFormat, ()> {
        match s {
            "auto" => Ok(LogFormat::Auto),
            "pretty" => Ok(LogFormat::Pretty),
            "plain" => Ok(LogFormat::Plain),
            "json" => Ok(LogFormat::Json),
            _ => Err(()),
        }
    }
}

/// A configuration error, naming the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path} is not valid TOML: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("{key}: {message}")]
    Value { key: String, message: String },
}

/// Every key, with its default as text, in file order: `(section, key, default)`, the section `""` for the
/// keys outside any. Read off the section structs (their fields and their `Default`), for unknown-key
/// messages, the environment's names and `config/vocals.toml` (a test checks that file against this list).
pub static KEYS: LazyLock<Vec<(&'static str, &'static str, String)>> = LazyLock::new(|| {
    let mut keys = Vec::new();
    section_keys::<sections::Top>("", &mut keys);
    section_keys::<sections::Sip>("sip", &mut keys);
    section_keys::<sections::Media>("media", &mut keys);
    section_keys::<sections::Admin>("admin", &mut keys);
    section_keys::<sections::Store>("store", &mut keys);
    section_keys::<sections::Twilio>("twilio", &mut keys);
    section_keys::<sections::Outbound>("outbound", &mut keys);
    section_keys::<sections::Transfer>("transfer", &mut keys);
    section_keys::<sections::Recording>("recording", &mut keys);
    section_keys::<sections::Log>("log", &mut keys);
    keys
});

/// The sections as given: every key read into its type, before the keys that depend on one another are put
/// together into [`Config`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sections {
    pub top: sections::Top,
    pub sip: sections::Sip,
    pub media: sections::Media,
    pub admin: sections::Admin,
    pub store: sections::Store,
    pub twilio: sections::Twilio,
    pub outbound: sections::Outbound,
    pub transfer: sections::Transfer,
    pub recording: sections::Recording,
    pub log: sections::Log,
}

impl Sections {
    /// Each section from the keys given to it (the defaults for the others); a key of no section is unknown.
    fn read(mut given: de::Keys) -> Result<Sections, ConfigError> {
        let sections = Sections {
            top: given.section("")?,
            sip: given.section("sip")?,
            media: given.section("media")?,
            admin: given.section("admin")?,
            store: given.section("store")?,
            twilio: given.section("twilio")?,
            outbound: given.section("outbound")?,
            transfer: given.section("transfer")?,
            recording: given.section("recording")?,
            log: given.section("log")?,
        };
        match given.unknown() {
            Some(e) => Err(e),
            None => Ok(sections),
        }
    }
}

impl Config {
    /// Loads defaults, then `file` (if given), then the `VOCALS_*` variables in `env`.
    pub fn load(file: Option<&Path>, env: impl IntoIterator<Item = (String, String)>) -> Result<Config, ConfigError> {
        let mut given = de::Keys::default();
        let mut numbers = Vec::new();
        let mut agents = Vec::new();
        let mut trunks = Vec::new();
        if let Some(file) = file {
            file::read_file(file, &mut given, &mut numbers, &mut agents, &mut trunks)?;
        }
        let env: Vec<(String, String)> = env.into_iter().collect();
        for (name, value) in &env {
            if let Some((section, key)) = env_key(name) {
                given.set(&section, &key, de::Raw::Text(value.clone()), name.clone());
            }
        }
        let systemd = env.iter().any(|(k, _)| k == "STATE_DIRECTORY");
        let mut config = Self::from_sections(Sections::read(given)?, systemd)?;
        config.numbers = numbers;
        config.agents = agents;
        config.trunks = trunks;
        config.check_agents()?;
        config.check_outbound_listeners()?;
        Ok(config)
    }

    /// A trunk or outbound proxy reached over TCP or TLS has a listener of ours of that transport: an outbound
    /// call's Via and Contact name it, and the trunk sends its requests in the call (a BYE) there.
    fn check_outbound_listeners(&self) -> Result<(), ConfigError> {
        let hops = self.outbound.proxy.iter().map(|p| ("outbound.proxy".to_string(), p));
        let trunks =
            self.trunks.iter().enumerate().map(|(i, t)| (format!("trunks[{i}].termination_uri"), &t.termination));
        for (key, hop) in hops.chain(trunks) {
            let missing = match hop.transport {
                Transport::Udp if self.sip.listen_udp.is_none() => "a UDP listener (sip.listen_udp)",
                Transport::Tcp if self.sip.listen_tcp.is_none() => "a TCP listener (sip.listen_tcp)",
                Transport::Tls if self.sip.tls.is_none() || self.sip.listen_tls.is_none() => {
                    "the TLS listener (sip.listen_tls with sip.tls_cert and sip.tls_key)"
                }
                _ => continue,
            };
            let message = format!(
                "calls over {} need {missing}: the INVITE names it in Via and Contact, and the trunk sends its \
                 requests in the call there",
                hop.transport.as_str().to_uppercase()
            );
            return Err(ConfigError::Value { key, message });
        }
        Ok(())
    }

    /// Every agent a number or `default_agent` names exists (or is the built-in `echo`), once.
    fn check_agents(&self) -> Result<(), ConfigError> {
        let mut names = std::collections::BTreeSet::new();
        for (i, a) in self.agents.iter().enumerate() {
            if a.name == "echo" || !names.insert(a.name.as_str()) {
                return Err(bad(&format!("agents[{i}].name"), &a.name, "a name not used before (echo is built in)"));
            }
        }
        let known = |name: &str| name == "echo" || names.contains(name);
        for (i, n) in self.numbers.iter().enumerate() {
            if let Some(agent) = n.agent.as_deref().filter(|a| !known(a)) {
                return Err(bad(&format!("numbers[{i}].agent"), agent, "echo or the name of an [[agents]] entry"));
            }
            if let Err(e) = crate::routing::Rules::parse(&n.rules, known) {
                // The file names a rule's agent `agent` (a name; "" for not answered), as `[[numbers]]` does.
                let key = format!("numbers[{i}].{}", e.field.replace(".agent_id", ".agent"));
                let message = e.message.replace("an agent id, or null", "an agent's name, or \"\"");
                return Err(ConfigError::Value { key, message });
            }
        }
        if let Some(agent) = self.default_agent.name().filter(|a| !known(a)) {
            return Err(bad("default_agent", agent, "echo, the name of an [[agents]] entry, or \"\""));
        }
        Ok(())
    }

    /// The configuration the sections make, the keys that depend on one another put together and checked.
    fn from_sections(s: Sections, systemd: bool) -> Result<Config, ConfigError> {
        let sip = SipConfig::from_section(s.sip)?;
        let state_dir = match s.top.state_dir {
            None if systemd => PathBuf::from("/var/lib/vocals"),
            None => PathBuf::from("./vocals-data"),
            Some(dir) => dir,
        };
        let admin_token = s.admin.token.as_deref().map(str::trim).filter(|t| !t.is_empty()).map(str::to_string);
        if let Some(t) = admin_token.as_deref().filter(|t| t.len() < 16) {
            return Err(bad("admin.token", &"*".repeat(t.len()), "at least 16 characters"));
        }
        let store_url = match s.store.url.as_deref().map(str::trim).unwrap_or_default() {
            "" => format!("sqlite://{}", state_dir.join("vocals.db").display()),
            url if url.starts_with("sqlite://")
                || url.starts_with("postgres://")
                || url.starts_with("postgresql://") =>
            {
                url.to_string()
            }
            url => return Err(bad("store.url", url, "sqlite://PATH or postgres://USER:PASSWORD@HOST/DATABASE")),
        };
        let store_secret_key = s.store.secret_key.as_deref().map(str::trim).filter(|k| !k.is_empty());
        if let Some(k) = store_secret_key {
            crate::store::secret::SecretKey::from_base64(k)
                .map_err(|e| bad("store.secret_key", "(hidden)", &e.to_string()))?;
        }
        let node = match s.top.node.as_deref().map(str::trim).unwrap_or_default() {
            "" => host_name(),
            name => name.to_string(),
        };
        Ok(Config {
            state_dir,
            sip,
            media: MediaConfig::from(s.media),
            log: LogConfig {
                call_trace: s.log.call_trace,
                hep: HepTarget::parse(&s.log.hep)
                    .map_err(|message| ConfigError::Value { key: "log.hep".into(), message })?,
                hep_id: s.log.hep_id as u32,
                level: s.log.level,
                format: s.log.format,
                sip_trace: s.log.sip_trace,
            },
            default_agent: s.top.default_agent,
            numbers: Vec::new(),
            agents: Vec::new(),
            admin_listen: s.admin.listen,
            admin_token,
            store_url,
            store_secret_key: store_secret_key.map(str::to_string),
            twilio: TwilioConfig::from_section(s.twilio)?,
            transfer: s.transfer.into(),
            recording: RecordingConfig {
                record: s.recording.record,
                format: s.recording.format,
                retention_days: s.recording.retention_days as u32,
                url: recording_url(&s.recording.url)?,
            },
            termination: termination(&s.outbound)?,
            outbound: outbound(s.outbound)?,
            trunks: Vec::new(),
            node,
        })
    }
}

/// `[recording] url`: empty, or `s3://bucket[/prefix]`.
fn recording_url(url: &str) -> Result<Option<String>, ConfigError> {
    let url = url.trim();
    match url.strip_prefix("s3://") {
        _ if url.is_empty() => Ok(None),
        Some(rest) if !rest.is_empty() && !rest.starts_with('/') => Ok(Some(url.to_string())),
        _ => Err(bad("recording.url", url, "s3://BUCKET or s3://BUCKET/PREFIX (empty: local disk only)")),
    }
}

/// `[outbound] termination_auth` with `termination_ips`: an IP access control list needs addresses, and
/// addresses are for one only.
fn termination(o: &sections::Outbound) -> Result<TerminationAuth, ConfigError> {
    let message = match (o.termination_auth, o.termination_ips.is_empty()) {
        (sections::TerminationKind::Credentials, true) => return Ok(TerminationAuth::Credentials),
        (sections::TerminationKind::Ip, false) => return Ok(TerminationAuth::Ip(o.termination_ips.clone())),
        (sections::TerminationKind::Ip, true) => {
            "empty, but outbound.termination_auth is \"ip\": list the public IPv4 addresses (or blocks) the vocals \
             nodes place calls from, e.g. \"203.0.113.10, 198.51.100.0/30\""
        }
        (sections::TerminationKind::Credentials, false) => {
            "set, but outbound.termination_auth is \"credentials\" (the default): set termination_auth = \"ip\" for \
             the trunks to take calls from these addresses, or leave termination_ips empty"
        }
    };
    Err(ConfigError::Value { key: "outbound.termination_ips".into(), message: message.into() })
}

/// `[outbound]`: its proxy parsed, its times as durations.
fn outbound(o: sections::Outbound) -> Result<OutboundSettings, ConfigError> {
    let text = |v: Option<String>| v.map(|t| t.trim().to_string()).filter(|t| !t.is_empty());
    let proxy = match text(o.proxy) {
        None => None,
        Some(p) => Some(Hop::parse(&p).map_err(|e| ConfigError::Value { key: "outbound.proxy".into(), message: e })?),
    };
    let edge = text(o.edge);
    if let Some(e) = edge.as_deref().filter(|e| !e.chars().all(|c| c.is_ascii_lowercase() || c == '-')) {
        return Err(bad("outbound.edge", e, "a Twilio edge location, e.g. ashburn, dublin, sydney"));
    }
    Ok(OutboundSettings {
        proxy,
        edge,
        cps: o.cps as u32,
        ring_timeout: Duration::from_secs(o.ring_timeout as u64),
        queue: o.queue,
        max_per_account: o.max_per_account,
        early_media: o.early_media,
    })
}

impl SipConfig {
    /// `[sip]` with its TLS files paired, its timers and rate limits put together, and the TCP reserve checked
    /// against the connections.
    fn from_section(s: sections::Sip) -> Result<SipConfig, ConfigError> {
        let (cert, key) = (s.tls_cert.as_deref().unwrap_or_default(), s.tls_key.as_deref().unwrap_or_default());
        let tls = match (cert.trim(), key.trim()) {
            ("", "") => None,
            ("", _) => return Err(bad("sip.tls_cert", "", "a certificate file, since sip.tls_key is set")),
            (_, "") => return Err(bad("sip.tls_key", "", "a key file, since sip.tls_cert is set")),
            (cert, key) => Some((PathBuf::from(cert), PathBuf::from(key))),
        };
        // The other allowed sources keep a slot: the reserve is less than the connections.
        if s.tcp_reserved_for_exempt >= s.tcp_max_connections {
            let max = s.tcp_max_connections;
            let allowed = format!("a whole number from 0 to {} (less than sip.tcp_max_connections, {max})", max - 1);
            return Err(bad("sip.tcp_reserved_for_exempt", &s.tcp_reserved_for_exempt.to_string(), &allowed));
        }
        let t1 = Duration::from_millis(s.t1_ms as u64);
        let rate = |per_second: usize, burst: usize| RateConfig {
            per_second: per_second as u32,
            burst: burst as u32,
            exempt: s.rate_exempt.clone(),
            ..RateConfig::default()
        };
        Ok(SipConfig {
            listen_udp: s.listen_udp,
            listen_tcp: s.listen_tcp,
            listen_tls: s.listen_tls,
            tls,
            public_host: s.public_host,
            limits: Limits {
                max_message: s.max_message_size,
                max_headers: s.max_headers,
                max_header_line: s.max_header_line,
            },
            allow: s.allow,
            reject_disallowed: s.reject_disallowed,
            max_calls: s.max_calls,
            max_transactions: s.max_transactions,
            max_call_duration: Duration::from_secs(s.max_call_duration as u64),
            min_se: s.min_se as u32,
            session_expires: s.session_expires.max(s.min_se) as u32,
            timers: Timers { t1, t2: t1 * 8, t4: t1 * 10 },
            tcp_max_connections: s.tcp_max_connections,
            tcp_max_per_source: s.tcp_max_per_source,
            tcp_reserved_for_exempt: s.tcp_reserved_for_exempt,
            tcp_idle_timeout: Duration::from_secs(s.tcp_idle_timeout as u64),
            tcp_message_timeout: Duration::from_secs(s.tcp_message_timeout as u64),
            drain_timeout: Duration::from_secs(s.drain_timeout as u64),
            rate: rate(s.invite_rate, s.invite_burst),
            request_rate: rate(s.request_rate, s.request_burst),
            max_transaction_bytes: s.max_transaction_memory_mb << 20,
            accounts: s.accounts,
        })
    }

    /// The SIP endpoint's settings: these, and the endpoint's own limits on a request's Call-ID, tags and Vias.
    pub fn endpoint(&self) -> EndpointConfig {
        EndpointConfig {
            timers: self.timers,
            limits: self.limits,
            allow: self.allow.clone(),
            reject_disallowed: self.reject_disallowed,
            public_host: self.public_host.clone(),
            max_transactions: self.max_transactions,
            max_calls: self.max_calls,
            user_agent: endpoint::USER_AGENT.to_string(),
            rate: self.rate.clone(),
            request_rate: self.request_rate.clone(),
            max_transaction_bytes: self.max_transaction_bytes,
            max_call_id: endpoint::MAX_CALL_ID,
            max_tag: endpoint::MAX_TAG,
            max_via: endpoint::MAX_VIA,
            min_se: self.min_se,
            session_expires: self.session_expires,
        }
    }
}

impl Default for SipConfig {
    /// `[sip]`'s defaults.
    fn default() -> SipConfig {
        // The defaults are valid: `the_components_take_the_sections_defaults` checks them.
        SipConfig::from_section(sections::Sip::default()).expect("[sip]'s defaults are valid")
    }
}

impl From<sections::Media> for MediaConfig {
    fn from(s: sections::Media) -> MediaConfig {
        let seconds = |s: usize| Some(Duration::from_secs(s as u64)).filter(|d| !d.is_zero());
        MediaConfig {
            public_ip: s.public_ip,
            rtp_ports: s.rtp_ports,
            settings: MediaSettings {
                symmetric_rtp: s.symmetric_rtp,
                timeout: seconds(s.timeout),
                send_silence: s.send_silence,
                rtcp_interval: Duration::from_secs(s.rtcp_interval as u64),
                jitter_max_wait: Duration::from_millis(s.jitter_max_ms as u64),
                agent_stall: seconds(s.agent_stall_timeout),
                latch: s.latch,
                latch_allow: s.allow,
            },
            srtp: s.srtp,
        }
    }
}

impl TwilioConfig {
    /// `[twilio]` with its base URLs checked (and their trailing `/` cut).
    fn from_section(s: sections::Twilio) -> Result<TwilioConfig, ConfigError> {
        let url = |key: &str, u: &str| -> Result<String, ConfigError> {
            let u = u.trim();
            if u.starts_with("https://") || u.starts_with("http://") {
                Ok(u.trim_end_matches('/').to_string())
            } else {
                Err(bad(key, u, "an http:// or https:// base URL"))
            }
        };
        Ok(TwilioConfig {
            endpoints: crate::twilio::Endpoints {
                api: url("twilio.api_url", &s.api_url)?,
                trunking: url("twilio.trunking_url", &s.trunking_url)?,
            },
            origination_uris: s.origination_uris,
            // At most 65535 (the keys' range).
            priority: s.priority as u32,
            weight: s.weight as u32,
            reconcile_interval: Some(Duration::from_secs(s.reconcile_interval as u64)).filter(|d| !d.is_zero()),
            timeout: Duration::from_millis(s.timeout_ms as u64),
        })
    }
}

/// The host's name (Linux), or `vocals`.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "vocals".into())
}

impl Config {
    /// The configuration with its secrets hidden, for printing.
    pub fn redacted(&self) -> Config {
        let hide = |s: &Option<String>| s.as_ref().map(|_| "(set)".to_string());
        let mut c = self.clone();
        c.admin_token = hide(&c.admin_token);
        c.store_secret_key = hide(&c.store_secret_key);
        c.store_url = redact_url(&c.store_url);
        for a in &mut c.agents {
            a.secret = hide(&a.secret);
            a.auth_token = hide(&a.auth_token);
            a.url = redact_url(&a.url);
        }
        c
    }
}

/// A URL as logs and `check-config` may show it: a password in the userinfo hidden
/// (`postgres://user:***@host/db`), a userinfo with no password hidden whole unless it is a database's user
/// name (`wss://***@host`: a token there is a credential), and the value of every query parameter whose name
/// says it is a secret (`?password=***&token=***`).
pub fn redact_url(url: &str) -> String {
    let (head, query) = match url.split_once('?') {
        Some((head, query)) => (head, Some(query)),
        None => (url, None),
    };
    let database = head.starts_with("postgres");
    let mut out = match (head.find("://"), head.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme && !head[scheme + 3..at].contains('/') => {
            match head[scheme + 3..at].split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &head[..scheme + 3], &head[at..]),
                None if database => head.to_string(),
                None => format!("{}***{}", &head[..scheme + 3], &head[at..]),
            }
        }
        _ => head.to_string(),
    };
    if let Some(query) = query {
        let secret = |name: &str| {
            let name = name.to_ascii_lowercase();
            ["pass", "pwd", "token", "secret", "key", "auth", "sig", "credential", "session"]
                .iter()
                .any(|word| name.contains(word))
        };
        let params: Vec<String> = query
            .split('&')
            .map(|param| match param.split_once('=') {
                Some((name, value)) if secret(name) && !value.is_empty() => format!("{name}=***"),
                _ => param.to_string(),
            })
            .collect();
        out.push('?');
        out.push_str(&params.join("&"));
    }
    out
}

fn path(section: &str, key: &str) -> String {
    if section.is_empty() { key.to_string() } else { format!("{section}.{key}") }
}

/// A section's keys and their defaults' text, in order, onto `keys`.
fn section_keys<T: DeserializeOwned + Serialize + Default>(
    section: &'static str,
    keys: &mut Vec<(&'static str, &'static str, String)>,
) {
    // Every field is written as text (`text::serialize`), so the defaults are a table of strings.
    let defaults = match toml::Value::try_from(T::default()) {
        Ok(toml::Value::Table(table)) => table,
        _ => toml::Table::new(),
    };
    for key in de::fields::<T>() {
        let default = match defaults.get(*key) {
            Some(toml::Value::String(s)) => s.clone(),
            _ => String::new(),
        };
        keys.push((section, *key, default));
    }
}

/// `VOCALS_SIP_LISTEN_UDP` -> (`sip`, `listen_udp`); `VOCALS_STATE_DIR` -> ("", `state_dir`). `VOCALS_CONFIG`
/// (the file path, read by the CLI) is not a key.
fn env_key(name: &str) -> Option<(String, String)> {
    let rest = name.strip_prefix("VOCALS_")?.to_ascii_lowercase();
    if rest == "config" {
        return None;
    }
    if KEYS.iter().any(|(s, k, _)| s.is_empty() && *k == rest) {
        return Some((String::new(), rest));
    }
    let (section, key) = rest.split_once('_')?;
    Some((section.to_string(), key.to_string()))
}

/// An SRTP policy value (`media.srtp`, a number's `srtp`).
fn srtp_policy(key: &str, value: &str) -> Result<SrtpPolicy, ConfigError> {
    <SrtpPolicy as text::Text>::parse(value).map_err(|message| ConfigError::Value { key: key.to_string(), message })
}

fn bad(key: &str, value: &str, allowed: &str) -> ConfigError {
    ConfigError::Value { key: key.to_string(), message: text::invalid(value, allowed) }
}

fn unknown(key: &str, source: &str) -> ConfigError {
    let known: Vec<String> = KEYS.iter().map(|(s, k, _)| path(s, k)).collect();
    ConfigError::Value {
        key: key.to_string(),
        message: format!("unknown key (from {source}); known keys: {}", known.join(", ")),
    }
}

mod de;
mod file;
pub mod sections;
mod text;

#[cfg(test)]
mod tests;
