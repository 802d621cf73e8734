//! The configuration's sections as the file and the environment write them: one struct per section, its keys
//! in file order, each read from text into its type (a range, an address, a list of blocks). Each `Default` is
//! the one place a key's built-in default is written (or, for a protocol value, names the protocol core's);
//! `KEYS` and `config/vocals.toml` show them. Keys that depend on one another are put together by `super`.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::text;
use super::{DefaultAgent, LogFormat};
use crate::agent::transfer::{self, Domain, Prefix, TransferPolicy};
use crate::media::ports::PortRange;
use crate::media::recording::{RecordFormat, RecordMode};
use crate::media::session::Latch;
use crate::routing::AccountPolicy;
use crate::sdp::SrtpPolicy;
use crate::sip::allow::AllowList;
use crate::sip::message::Limits;
use crate::sip::transaction::Timers;
use crate::twilio::Ipv4Block;

/// The keys outside any section.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Top {
    /// `None`: `/var/lib/vocals` under systemd, else `./vocals-data`.
    #[serde(with = "text")]
    pub state_dir: Option<PathBuf>,
    #[serde(with = "text")]
    pub default_agent: DefaultAgent,
    /// `None`: the host name.
    #[serde(with = "text")]
    pub node: Option<String>,
}

impl Default for Top {
    fn default() -> Top {
        Top { state_dir: None, default_agent: DefaultAgent::Demo, node: None }
    }
}

/// `[sip]`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Sip {
    #[serde(with = "text")]
    pub listen_udp: Option<SocketAddr>,
    #[serde(with = "text")]
    pub listen_tcp: Option<SocketAddr>,
    #[serde(with = "text")]
    pub listen_tls: Option<SocketAddr>,
    #[serde(with = "text")]
    pub tls_cert: Option<String>,
    #[serde(with = "text")]
    pub tls_key: Option<String>,
    #[serde(with = "text")]
    pub public_host: Option<String>,
    #[serde(deserialize_with = "text::whole::<1500, 1_048_576, _>", serialize_with = "text::serialize")]
    pub max_message_size: usize,
    #[serde(deserialize_with = "text::whole::<16, 4096, _>", serialize_with = "text::serialize")]
    pub max_headers: usize,
    #[serde(deserialize_with = "text::whole::<256, 1_048_576, _>", serialize_with = "text::serialize")]
    pub max_header_line: usize,
    #[serde(with = "text")]
    pub allow: AllowList,
    #[serde(with = "text")]
    pub reject_disallowed: bool,
    #[serde(with = "text")]
    pub accounts: AccountPolicy,
    #[serde(deserialize_with = "text::whole::<1, 1_000_000, _>", serialize_with = "text::serialize")]
    pub max_calls: usize,
    #[serde(deserialize_with = "text::whole::<1024, 16_777_216, _>", serialize_with = "text::serialize")]
    pub max_transactions: usize,
    #[serde(deserialize_with = "text::whole::<1, 65_536, _>", serialize_with = "text::serialize")]
    pub max_transaction_memory_mb: usize,
    /// Seconds (a week at most).
    #[serde(deserialize_with = "text::whole::<1, 604_800, _>", serialize_with = "text::serialize")]
    pub max_call_duration: usize,
    /// RFC 4028: the smallest session interval taken, seconds (90 is the RFC's floor).
    #[serde(deserialize_with = "text::whole::<90, 86_400, _>", serialize_with = "text::serialize")]
    pub min_se: usize,
    /// RFC 4028: the session interval asked for in the INVITEs vocals sends, seconds.
    #[serde(deserialize_with = "text::whole::<90, 86_400, _>", serialize_with = "text::serialize")]
    pub session_expires: usize,
    #[serde(deserialize_with = "text::whole::<10, 10_000, _>", serialize_with = "text::serialize")]
    pub t1_ms: usize,
    #[serde(deserialize_with = "text::whole::<1, 1_000_000, _>", serialize_with = "text::serialize")]
    pub tcp_max_connections: usize,
    #[serde(deserialize_with = "text::whole::<1, 1_000_000, _>", serialize_with = "text::serialize")]
    pub tcp_max_per_source: usize,
    /// Less than `tcp_max_connections` (checked with it).
    #[serde(deserialize_with = "text::whole::<0, 1_000_000, _>", serialize_with = "text::serialize")]
    pub tcp_reserved_for_exempt: usize,
    /// Seconds.
    #[serde(deserialize_with = "text::whole::<1, 86_400, _>", serialize_with = "text::serialize")]
    pub tcp_idle_timeout: usize,
    /// Seconds.
    #[serde(deserialize_with = "text::whole::<1, 600, _>", serialize_with = "text::serialize")]
    pub tcp_message_timeout: usize,
    /// Seconds.
    #[serde(deserialize_with = "text::whole::<0, 86_400, _>", serialize_with = "text::serialize")]
    pub drain_timeout: usize,
    #[serde(deserialize_with = "text::whole::<0, 1_000_000, _>", serialize_with = "text::serialize")]
    pub invite_rate: usize,
    #[serde(deserialize_with = "text::whole::<1, 1_000_000, _>", serialize_with = "text::serialize")]
    pub invite_burst: usize,
    #[serde(deserialize_with = "text::whole::<0, 1_000_000, _>", serialize_with = "text::serialize")]
    pub request_rate: usize,
    #[serde(deserialize_with = "text::whole::<1, 1_000_000, _>", serialize_with = "text::serialize")]
    pub request_burst: usize,
    #[serde(with = "text")]
    pub rate_exempt: AllowList,
}

impl Default for Sip {
    fn default() -> Sip {
        let limits = Limits::default();
        Sip {
            listen_udp: Some(SocketAddr::from(([0, 0, 0, 0], 5060))),
            listen_tcp: Some(SocketAddr::from(([0, 0, 0, 0], 5060))),
            listen_tls: Some(SocketAddr::from(([0, 0, 0, 0], 5061))),
            tls_cert: None,
            tls_key: None,
            public_host: None,
            max_message_size: limits.max_message,
            max_headers: limits.max_headers,
            max_header_line: limits.max_header_line,
            // Twilio's signalling edges and loopback.
            allow: AllowList::default(),
            reject_disallowed: false,
            accounts: AccountPolicy::Known,
            max_calls: 1000,
            max_transactions: 400_000,
            max_transaction_memory_mb: 64,
            max_call_duration: 4 * 3600,
            min_se: 90,
            session_expires: 1800,
            t1_ms: Timers::default().t1.as_millis() as usize,
            tcp_max_connections: 1024,
            tcp_max_per_source: 32,
            tcp_reserved_for_exempt: 64,
            tcp_idle_timeout: 600,
            tcp_message_timeout: 10,
            drain_timeout: 300,
            invite_rate: 10,
            invite_burst: 20,
            request_rate: 100,
            request_burst: 200,
            rate_exempt: AllowList::twilio(),
        }
    }
}

/// `[media]`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Media {
    /// `None`: detect the host's primary address at start.
    #[serde(with = "text")]
    pub public_ip: Option<IpAddr>,
    #[serde(with = "text")]
    pub rtp_ports: PortRange,
    #[serde(with = "text")]
    pub srtp: SrtpPolicy,
    #[serde(with = "text")]
    pub symmetric_rtp: bool,
    /// Seconds; 0: never.
    #[serde(deserialize_with = "text::whole::<0, 86_400, _>", serialize_with = "text::serialize")]
    pub timeout: usize,
    #[serde(with = "text")]
    pub send_silence: bool,
    /// Seconds.
    #[serde(deserialize_with = "text::whole::<1, 60, _>", serialize_with = "text::serialize")]
    pub rtcp_interval: usize,
    #[serde(deserialize_with = "text::whole::<10, 1000, _>", serialize_with = "text::serialize")]
    pub jitter_max_ms: usize,
    /// Seconds; 0: never.
    #[serde(deserialize_with = "text::whole::<0, 3600, _>", serialize_with = "text::serialize")]
    pub agent_stall_timeout: usize,
    #[serde(with = "text")]
    pub latch: Latch,
    #[serde(with = "text")]
    pub allow: AllowList,
}

impl Default for Media {
    fn default() -> Media {
        Media {
            public_ip: None,
            rtp_ports: PortRange { first: 10_000, last: 20_000 },
            srtp: SrtpPolicy::Allowed,
            symmetric_rtp: true,
            timeout: 30,
            send_silence: true,
            rtcp_interval: 5,
            jitter_max_ms: 60,
            agent_stall_timeout: 5,
            latch: Latch::default(),
            allow: AllowList::new(Vec::new()),
        }
    }
}

/// `[admin]`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Admin {
    #[serde(with = "text")]
    pub listen: Option<SocketAddr>,
    /// `None`: the one generated in the state directory.
    #[serde(with = "text")]
    pub token: Option<String>,
}

impl Default for Admin {
    fn default() -> Admin {
        Admin { listen: Some(SocketAddr::from(([127, 0, 0, 1], 8080))), token: None }
    }
}

/// `[store]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Store {
    /// `None`: `vocals.db` in the state directory.
    #[serde(with = "text")]
    pub url: Option<String>,
    /// `None`: the one generated in the state directory.
    #[serde(with = "text")]
    pub secret_key: Option<String>,
}

/// `[twilio]`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Twilio {
    #[serde(with = "text")]
    pub api_url: String,
    #[serde(with = "text")]
    pub trunking_url: String,
    #[serde(with = "text")]
    pub origination_uris: Vec<String>,
    #[serde(deserialize_with = "text::whole::<0, 65_535, _>", serialize_with = "text::serialize")]
    pub priority: usize,
    #[serde(deserialize_with = "text::whole::<0, 65_535, _>", serialize_with = "text::serialize")]
    pub weight: usize,
    /// Seconds; 0: only on demand.
    #[serde(deserialize_with = "text::whole::<0, 86_400, _>", serialize_with = "text::serialize")]
    pub reconcile_interval: usize,
    #[serde(deserialize_with = "text::whole::<100, 120_000, _>", serialize_with = "text::serialize")]
    pub timeout_ms: usize,
}

impl Default for Twilio {
    fn default() -> Twilio {
        Twilio {
            api_url: "https://api.twilio.com".into(),
            trunking_url: "https://trunking.twilio.com".into(),
            origination_uris: Vec::new(),
            priority: 10,
            weight: 10,
            reconcile_interval: 300,
            timeout_ms: 10_000,
        }
    }
}

/// `[outbound]`: calls vocals places through a trunk's termination.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Outbound {
    /// An outbound proxy every outbound INVITE goes through (RFC 3261 §8.1.2), `host[:port]`; empty: none.
    #[serde(with = "text")]
    pub proxy: Option<String>,
    /// Twilio's edge location for termination (`{domain}.pstn.{edge}.twilio.com`); empty: the global one.
    #[serde(with = "text")]
    pub edge: Option<String>,
    /// New INVITEs per second per trunk.
    #[serde(deserialize_with = "text::whole::<1, 30, _>", serialize_with = "text::serialize")]
    pub cps: usize,
    /// Seconds before an unanswered call is cancelled, unless the request says (Twilio's `Timeout`).
    #[serde(deserialize_with = "text::whole::<5, 600, _>", serialize_with = "text::serialize")]
    pub ring_timeout: usize,
    /// Call requests waiting for their turn (the pace), per trunk; beyond it 429.
    #[serde(deserialize_with = "text::whole::<1, 100_000, _>", serialize_with = "text::serialize")]
    pub queue: usize,
    /// Outbound calls at once per account; 0: no limit but `sip.max_calls`.
    #[serde(deserialize_with = "text::whole::<0, 1_000_000, _>", serialize_with = "text::serialize")]
    pub max_per_account: usize,
    /// Open the agent's stream at a 183 with SDP, so it hears the far end's early media.
    #[serde(with = "text")]
    pub early_media: bool,
    /// How the trunks of linked accounts know the calls vocals places: a credential list, or the nodes' addresses.
    #[serde(with = "text")]
    pub termination_auth: TerminationKind,
    /// With `termination_auth = "ip"`: the public IPv4 addresses or blocks the nodes place calls from.
    #[serde(with = "text")]
    pub termination_ips: Vec<Ipv4Block>,
}

impl Default for Outbound {
    fn default() -> Outbound {
        Outbound {
            proxy: None,
            edge: None,
            cps: 1,
            ring_timeout: 60,
            queue: 100,
            max_per_account: 0,
            early_media: false,
            termination_auth: TerminationKind::Credentials,
            termination_ips: Vec::new(),
        }
    }
}

/// `outbound.termination_auth`: what vocals makes so a linked account's trunk knows the calls vocals places on it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TerminationKind {
    /// A credential list with one generated credential (`credentials`).
    #[default]
    Credentials,
    /// An IP access control list of `outbound.termination_ips` (`ip`).
    Ip,
}

/// `[transfer]`: the server's transfer policy, whose defaults are the policy's own.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Transfer {
    #[serde(with = "text")]
    pub allow_prefixes: Vec<Prefix>,
    #[serde(with = "text")]
    pub deny_prefixes: Vec<Prefix>,
    #[serde(with = "text")]
    pub allow_domains: Vec<Domain>,
    #[serde(deserialize_with = "text::whole::<0, MAX_TRANSFERS, _>", serialize_with = "text::serialize")]
    pub max_per_call: usize,
}

/// `transfer.max_per_call`'s most.
const MAX_TRANSFERS: usize = transfer::MAX_PER_CALL as usize;

impl Default for Transfer {
    fn default() -> Transfer {
        let TransferPolicy { allow_prefixes, deny_prefixes, allow_domains, max_per_call } = TransferPolicy::default();
        Transfer { allow_prefixes, deny_prefixes, allow_domains, max_per_call: max_per_call as usize }
    }
}

impl From<Transfer> for TransferPolicy {
    fn from(t: Transfer) -> TransferPolicy {
        TransferPolicy {
            allow_prefixes: t.allow_prefixes,
            deny_prefixes: t.deny_prefixes,
            allow_domains: t.allow_domains,
            // At most MAX_PER_CALL (the key's range).
            max_per_call: t.max_per_call as u32,
        }
    }
}

/// `[recording]`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Recording {
    /// Whether calls are recorded unless their agent or number says otherwise: `off` or `dual`.
    #[serde(with = "text")]
    pub record: RecordMode,
    /// `pcm16` (16-bit WAV) or `mulaw` (μ-law WAV, half the size).
    #[serde(with = "text")]
    pub format: RecordFormat,
    /// Recordings older than this many days are deleted (0 keeps them).
    #[serde(deserialize_with = "text::whole::<0, 36500, _>", serialize_with = "text::serialize")]
    pub retention_days: usize,
    /// `s3://bucket/prefix`: recordings are uploaded there after their calls (empty: local disk only).
    #[serde(with = "text")]
    pub url: String,
}

impl Default for Recording {
    fn default() -> Recording {
        Recording { record: RecordMode::Off, format: RecordFormat::Pcm16, retention_days: 0, url: String::new() }
    }
}

/// `[log]`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Log {
    /// A tracing filter directive.
    #[serde(with = "text")]
    pub level: String,
    #[serde(with = "text")]
    pub format: LogFormat,
    #[serde(with = "text")]
    pub sip_trace: bool,
    #[serde(with = "text")]
    pub call_trace: bool,
    /// `udp:HOST:PORT`, or empty.
    #[serde(with = "text")]
    pub hep: String,
    #[serde(deserialize_with = "text::whole::<0, 4294967295, _>", serialize_with = "text::serialize")]
    pub hep_id: usize,
}

impl Default for Log {
    fn default() -> Log {
        Log {
            level: "info".into(),
            format: LogFormat::Auto,
            sip_trace: false,
            call_trace: true,
            hep: String::new(),
            hep_id: 2001,
        }
    }
}
