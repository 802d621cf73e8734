//! Configuration: built-in defaults < TOML file < environment (`VOCALS_<SECTION>_<KEY>`) < CLI flags, parsed
//! once into typed sub-configs. A bad value is reported with its key path and what is allowed. Nothing else
//! reads the environment or the file.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use std::net::IpAddr;
use std::time::Duration;

pub use crate::agent::config::{AgentConfig, AgentKind};
use crate::agent::transfer::{self, TransferOverrides, TransferPolicy};
use crate::e164::E164;
use crate::io::media::MediaSettings;
use crate::media::ports::PortRange;
use crate::sdp::SrtpPolicy;
use crate::sip::allow::AllowList;
use crate::sip::message::Limits;
use crate::sip::ratelimit::RateConfig;
use crate::sip::transaction::Timers;

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
    /// This node's name in call records (several nodes may share one PostgreSQL); default the host name.
    pub node: String,
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
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Pretty on a terminal, plain otherwise (journald).
    Auto,
    Pretty,
    Plain,
    Json,
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

/// Every key, with its default, in file order. The single source for defaults, unknown-key checks and
/// `config/vocals.toml` (a test checks that file against this list).
pub const KEYS: &[(&str, &str, &str)] = &[
    ("", "state_dir", ""),
    ("", "default_agent", "echo"),
    ("", "node", ""),
    ("sip", "listen_udp", "0.0.0.0:5060"),
    ("sip", "listen_tcp", "0.0.0.0:5060"),
    ("sip", "listen_tls", "0.0.0.0:5061"),
    ("sip", "tls_cert", ""),
    ("sip", "tls_key", ""),
    ("sip", "public_host", ""),
    ("sip", "max_message_size", "65536"),
    ("sip", "max_headers", "256"),
    ("sip", "max_header_line", "16384"),
    (
        "sip",
        "allow",
        "54.172.60.0/30, 54.244.51.0/30, 54.171.127.192/30, 35.156.191.128/30, 54.65.63.192/30, \
         54.169.127.128/30, 54.252.254.64/30, 177.71.206.192/30, 127.0.0.0/8, ::1",
    ),
    ("sip", "reject_disallowed", "false"),
    ("sip", "accounts", ""),
    ("sip", "max_calls", "1000"),
    ("sip", "max_transactions", "400000"),
    ("sip", "max_transaction_memory_mb", "64"),
    ("sip", "max_call_duration", "14400"),
    ("sip", "t1_ms", "500"),
    ("sip", "tcp_max_connections", "1024"),
    ("sip", "tcp_max_per_source", "32"),
    ("sip", "tcp_reserved_for_exempt", "64"),
    ("sip", "tcp_idle_timeout", "600"),
    ("sip", "tcp_message_timeout", "10"),
    ("sip", "drain_timeout", "300"),
    ("sip", "invite_rate", "10"),
    ("sip", "invite_burst", "20"),
    ("sip", "request_rate", "100"),
    ("sip", "request_burst", "200"),
    (
        "sip",
        "rate_exempt",
        "54.172.60.0/30, 54.244.51.0/30, 54.171.127.192/30, 35.156.191.128/30, 54.65.63.192/30, \
         54.169.127.128/30, 54.252.254.64/30, 177.71.206.192/30",
    ),
    ("media", "public_ip", ""),
    ("media", "rtp_ports", "10000-20000"),
    ("media", "srtp", "allowed"),
    ("media", "symmetric_rtp", "true"),
    ("media", "timeout", "30"),
    ("media", "send_silence", "true"),
    ("media", "rtcp_interval", "5"),
    ("media", "jitter_max_ms", "60"),
    ("media", "agent_stall_timeout", "5"),
    ("media", "latch", "sdp-ip"),
    ("media", "allow", ""),
    ("admin", "listen", "127.0.0.1:8080"),
    ("admin", "token", ""),
    ("store", "url", ""),
    ("store", "secret_key", ""),
    ("twilio", "api_url", "https://api.twilio.com"),
    ("twilio", "trunking_url", "https://trunking.twilio.com"),
    ("twilio", "origination_uris", ""),
    ("twilio", "priority", "10"),
    ("twilio", "weight", "10"),
    ("twilio", "reconcile_interval", "300"),
    ("twilio", "timeout_ms", "10000"),
    ("transfer", "allow_prefixes", ""),
    // NANP premium rate (900, 976), and the NANP countries outside the US and Canada, whose numbers are
    // +1 but cost international rates: the classic toll-fraud destinations.
    ("transfer", "deny_prefixes", transfer::DEFAULT_DENY_PREFIXES),
    ("transfer", "allow_domains", ""),
    ("transfer", "max_per_call", "3"),
    ("log", "level", "info"),
    ("log", "format", "auto"),
    ("log", "sip_trace", "false"),
];

impl Config {
    /// Loads defaults, then `file` (if given), then the `VOCALS_*` variables in `env`.
    pub fn load(file: Option<&Path>, env: impl IntoIterator<Item = (String, String)>) -> Result<Config, ConfigError> {
        let mut values: BTreeMap<String, String> =
            KEYS.iter().map(|(section, key, default)| (path(section, key), (*default).to_string())).collect();
        let mut numbers = Vec::new();
        let mut agents = Vec::new();
        let mut explicit = std::collections::BTreeSet::new();
        if let Some(file) = file {
            file::read_file(file, &mut values, &mut explicit, &mut numbers, &mut agents)?;
        }
        let env: Vec<(String, String)> = env.into_iter().collect();
        for (name, value) in &env {
            if let Some(key) = env_key(name) {
                if !values.contains_key(&key) {
                    return Err(unknown(&key, name));
                }
                explicit.insert(key.clone());
                values.insert(key, value.clone());
            }
        }
        let systemd = env.iter().any(|(k, _)| k == "STATE_DIRECTORY");
        let mut config = Self::from_values(&values, systemd)?;
        if !explicit.contains("default_agent") {
            config.default_agent = DefaultAgent::Demo;
        }
        config.numbers = numbers;
        config.agents = agents;
        config.check_agents()?;
        Ok(config)
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
        }
        if let Some(agent) = self.default_agent.name().filter(|a| !known(a)) {
            return Err(bad("default_agent", agent, "echo, the name of an [[agents]] entry, or \"\""));
        }
        Ok(())
    }

    fn from_values(v: &BTreeMap<String, String>, systemd: bool) -> Result<Config, ConfigError> {
        let state_dir = match v["state_dir"].as_str() {
            "" if systemd => PathBuf::from("/var/lib/vocals"),
            "" => PathBuf::from("./vocals-data"),
            dir => PathBuf::from(dir),
        };
        let limits = Limits {
            max_message: number(v, "sip.max_message_size", 1500, 1 << 20)?,
            max_headers: number(v, "sip.max_headers", 16, 4096)?,
            max_header_line: number(v, "sip.max_header_line", 256, 1 << 20)?,
        };
        let allow = AllowList::parse(&v["sip.allow"]).map_err(|e| bad("sip.allow", &v["sip.allow"], &e.to_string()))?;
        let t1 = Duration::from_millis(number(v, "sip.t1_ms", 10, 10_000)? as u64);
        let sip = SipConfig {
            listen_udp: listen(v, "sip.listen_udp")?,
            listen_tcp: listen(v, "sip.listen_tcp")?,
            listen_tls: listen(v, "sip.listen_tls")?,
            tls: match (v["sip.tls_cert"].trim(), v["sip.tls_key"].trim()) {
                ("", "") => None,
                ("", _) => return Err(bad("sip.tls_cert", "", "a certificate file, since sip.tls_key is set")),
                (_, "") => return Err(bad("sip.tls_key", "", "a key file, since sip.tls_cert is set")),
                (cert, key) => Some((PathBuf::from(cert), PathBuf::from(key))),
            },
            public_host: Some(v["sip.public_host"].clone()).filter(|h| !h.is_empty()),
            limits,
            allow,
            reject_disallowed: boolean(v, "sip.reject_disallowed")?,
            max_calls: number(v, "sip.max_calls", 1, 1_000_000)?,
            max_transactions: number(v, "sip.max_transactions", 1024, 16_777_216)?,
            max_call_duration: Duration::from_secs(number(v, "sip.max_call_duration", 1, 7 * 86_400)? as u64),
            timers: Timers { t1, t2: t1 * 8, t4: t1 * 10 },
            tcp_max_connections: number(v, "sip.tcp_max_connections", 1, 1_000_000)?,
            tcp_max_per_source: number(v, "sip.tcp_max_per_source", 1, 1_000_000)?,
            tcp_reserved_for_exempt: tcp_reserve(v)?,
            tcp_idle_timeout: Duration::from_secs(number(v, "sip.tcp_idle_timeout", 1, 86_400)? as u64),
            tcp_message_timeout: Duration::from_secs(number(v, "sip.tcp_message_timeout", 1, 600)? as u64),
            drain_timeout: Duration::from_secs(number(v, "sip.drain_timeout", 0, 86_400)? as u64),
            rate: rate_config(v, "sip.invite_rate", "sip.invite_burst")?,
            request_rate: rate_config(v, "sip.request_rate", "sip.request_burst")?,
            max_transaction_bytes: number(v, "sip.max_transaction_memory_mb", 1, 65_536)? << 20,
            accounts: account_policy(v["sip.accounts"].trim())?,
        };
        let public_ip = match v["media.public_ip"].trim() {
            "" => None,
            s => {
                let ip: IpAddr =
                    s.parse().map_err(|_| bad("media.public_ip", s, "an IP address, or \"\" to detect it"))?;
                if ip.is_unspecified() {
                    return Err(bad("media.public_ip", s, "an address peers can reach, not 0.0.0.0 or ::"));
                }
                Some(ip)
            }
        };
        let rtp_ports =
            v["media.rtp_ports"].parse().map_err(|e: String| bad("media.rtp_ports", &v["media.rtp_ports"], &e))?;
        let timeout = number(v, "media.timeout", 0, 86_400)? as u64;
        let settings = MediaSettings {
            symmetric_rtp: boolean(v, "media.symmetric_rtp")?,
            timeout: (timeout > 0).then(|| Duration::from_secs(timeout)),
            send_silence: boolean(v, "media.send_silence")?,
            rtcp_interval: Duration::from_secs(number(v, "media.rtcp_interval", 1, 60)? as u64),
            jitter_max_wait: Duration::from_millis(number(v, "media.jitter_max_ms", 10, 1000)? as u64),
            agent_stall: Some(number(v, "media.agent_stall_timeout", 0, 3600)? as u64)
                .filter(|s| *s > 0)
                .map(Duration::from_secs),
            latch: match v["media.latch"].trim() {
                "sdp-ip" => crate::media::session::Latch::SdpIp,
                "any" => crate::media::session::Latch::Any,
                other => return Err(bad("media.latch", other, "sdp-ip or any")),
            },
            latch_allow: AllowList::parse(&v["media.allow"])
                .map_err(|e| bad("media.allow", &v["media.allow"], &e.to_string()))?,
        };
        let srtp = srtp_policy("media.srtp", v["media.srtp"].trim())?;
        let media = MediaConfig { public_ip, rtp_ports, settings, srtp };
        let default_agent = match v["default_agent"].trim() {
            "" => DefaultAgent::Refuse,
            name => DefaultAgent::Agent(name.to_string()),
        };
        let format = v["log.format"]
            .parse()
            .map_err(|_| bad("log.format", &v["log.format"], "one of auto, pretty, plain, json"))?;
        let log = LogConfig { level: v["log.level"].clone(), format, sip_trace: boolean(v, "log.sip_trace")? };
        let admin_listen = listen(v, "admin.listen")?;
        let admin_token = Some(v["admin.token"].trim().to_string()).filter(|t| !t.is_empty());
        if let Some(t) = admin_token.as_deref().filter(|t| t.len() < 16) {
            return Err(bad("admin.token", &"*".repeat(t.len()), "at least 16 characters"));
        }
        let store_url = match v["store.url"].trim() {
            "" => format!("sqlite://{}", state_dir.join("vocals.db").display()),
            url if url.starts_with("sqlite://")
                || url.starts_with("postgres://")
                || url.starts_with("postgresql://") =>
            {
                url.to_string()
            }
            url => return Err(bad("store.url", url, "sqlite://PATH or postgres://USER:PASSWORD@HOST/DATABASE")),
        };
        let url = |key: &str| -> Result<String, ConfigError> {
            let u = v[key].trim();
            if u.starts_with("https://") || u.starts_with("http://") {
                Ok(u.trim_end_matches('/').to_string())
            } else {
                Err(bad(key, u, "an http:// or https:// base URL"))
            }
        };
        let mut origination_uris = Vec::new();
        for uri in v["twilio.origination_uris"].split(',').map(str::trim).filter(|u| !u.is_empty()) {
            if !uri.starts_with("sip:") {
                return Err(bad(
                    "twilio.origination_uris",
                    uri,
                    "sip: URIs separated by commas, e.g. sip:vocals.example.com:5060",
                ));
            }
            origination_uris.push(uri.to_string());
        }
        let reconcile = number(v, "twilio.reconcile_interval", 0, 86_400)? as u64;
        let twilio = TwilioConfig {
            endpoints: crate::twilio::Endpoints { api: url("twilio.api_url")?, trunking: url("twilio.trunking_url")? },
            origination_uris,
            priority: number(v, "twilio.priority", 0, 65_535)? as u32,
            weight: number(v, "twilio.weight", 0, 65_535)? as u32,
            reconcile_interval: (reconcile > 0).then(|| Duration::from_secs(reconcile)),
            timeout: Duration::from_millis(number(v, "twilio.timeout_ms", 100, 120_000)? as u64),
        };
        let prefixes = |key: &str| transfer::parse_prefixes(&v[key]).map_err(|e| bad_list(key, &e));
        let transfer = TransferPolicy {
            allow_prefixes: prefixes("transfer.allow_prefixes")?,
            deny_prefixes: prefixes("transfer.deny_prefixes")?,
            allow_domains: transfer::parse_domains(&v["transfer.allow_domains"])
                .map_err(|e| bad_list("transfer.allow_domains", &e))?,
            max_per_call: number(v, "transfer.max_per_call", 0, transfer::MAX_PER_CALL as usize)? as u32,
        };
        let store_secret_key = Some(v["store.secret_key"].trim().to_string()).filter(|k| !k.is_empty());
        if let Some(k) = &store_secret_key {
            crate::store::secret::SecretKey::from_base64(k)
                .map_err(|e| bad("store.secret_key", "(hidden)", &e.to_string()))?;
        }
        let node = match v["node"].trim() {
            "" => host_name(),
            name => name.to_string(),
        };
        Ok(Config {
            state_dir,
            sip,
            media,
            log,
            default_agent,
            numbers: Vec::new(),
            agents: Vec::new(),
            admin_listen,
            admin_token,
            store_url,
            store_secret_key,
            twilio,
            transfer,
            node,
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

/// `VOCALS_SIP_LISTEN_UDP` -> `sip.listen_udp`; `VOCALS_STATE_DIR` -> `state_dir`. `VOCALS_CONFIG` (the file
/// path, read by the CLI) is not a key.
fn env_key(name: &str) -> Option<String> {
    let rest = name.strip_prefix("VOCALS_")?.to_ascii_lowercase();
    if rest == "config" {
        return None;
    }
    if KEYS.iter().any(|(s, k, _)| s.is_empty() && *k == rest) {
        return Some(rest);
    }
    let (section, key) = rest.split_once('_')?;
    Some(format!("{section}.{key}"))
}

/// A per-source token bucket from its rate and burst keys; its exempt sources are `sip.rate_exempt`.
fn rate_config(v: &BTreeMap<String, String>, rate: &str, burst: &str) -> Result<RateConfig, ConfigError> {
    Ok(RateConfig {
        per_second: number(v, rate, 0, 1_000_000)? as u32,
        burst: number(v, burst, 1, 1_000_000)? as u32,
        exempt: AllowList::parse(&v["sip.rate_exempt"])
            .map_err(|e| bad("sip.rate_exempt", &v["sip.rate_exempt"], &e.to_string()))?,
        max_sources: 65_536,
    })
}

/// `sip.accounts`: "" (the accounts vocals knows), "any", or Twilio account SIDs separated by commas.
fn account_policy(value: &str) -> Result<crate::routing::AccountPolicy, ConfigError> {
    use crate::routing::AccountPolicy;
    match value {
        "" => Ok(AccountPolicy::Known),
        "any" => Ok(AccountPolicy::Any),
        list => {
            let mut set = std::collections::HashSet::new();
            for sid in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                let valid = sid.len() == 34 && sid.starts_with("AC") && sid[2..].bytes().all(|b| b.is_ascii_hexdigit());
                if !valid {
                    return Err(bad(
                        "sip.accounts",
                        sid,
                        "\"\", \"any\", or account SIDs (AC and 32 hex digits) separated by commas",
                    ));
                }
                set.insert(sid.to_string());
            }
            Ok(AccountPolicy::Only(set))
        }
    }
}

/// An SRTP policy value (`media.srtp`, a number's `srtp`).
fn srtp_policy(key: &str, value: &str) -> Result<SrtpPolicy, ConfigError> {
    SrtpPolicy::parse(value).ok_or_else(|| bad(key, value, "one of off, allowed, required"))
}

fn listen(v: &BTreeMap<String, String>, key: &str) -> Result<Option<SocketAddr>, ConfigError> {
    match v[key].trim() {
        "" => Ok(None),
        s => s
            .parse()
            .map(Some)
            .map_err(|_| bad(key, s, "an address like 0.0.0.0:5060 or [::]:5060, or \"\" to turn it off")),
    }
}

/// `sip.tcp_reserved_for_exempt`: less than `sip.tcp_max_connections`, so other allowed sources keep a slot.
fn tcp_reserve(v: &BTreeMap<String, String>) -> Result<usize, ConfigError> {
    let max = number(v, "sip.tcp_max_connections", 1, 1_000_000)?;
    let key = "sip.tcp_reserved_for_exempt";
    let reserve = number(v, key, 0, 1_000_000)?;
    if reserve >= max {
        let allowed = format!("a whole number from 0 to {} (less than sip.tcp_max_connections, {max})", max - 1);
        return Err(bad(key, v[key].trim(), &allowed));
    }
    Ok(reserve)
}

fn boolean(v: &BTreeMap<String, String>, key: &str) -> Result<bool, ConfigError> {
    match v[key].trim() {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(bad(key, other, "true or false")),
    }
}

fn number(v: &BTreeMap<String, String>, key: &str, min: usize, max: usize) -> Result<usize, ConfigError> {
    let s = v[key].trim();
    s.parse::<usize>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| bad(key, s, &format!("a whole number from {min} to {max}")))
}

/// A list key whose item `message` says what is wrong.
fn bad_list(key: &str, message: &str) -> ConfigError {
    ConfigError::Value { key: key.to_string(), message: message.to_string() }
}

fn bad(key: &str, value: &str, allowed: &str) -> ConfigError {
    ConfigError::Value { key: key.to_string(), message: format!("{value:?} is not valid: expected {allowed}") }
}

fn unknown(key: &str, source: &str) -> ConfigError {
    let known: Vec<String> = KEYS.iter().map(|(s, k, _)| path(s, k)).collect();
    ConfigError::Value {
        key: key.to_string(),
        message: format!("unknown key (from {source}); known keys: {}", known.join(", ")),
    }
}

mod file;

#[cfg(test)]
mod tests;
