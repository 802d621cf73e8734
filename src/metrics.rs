//! Metrics: the names vocals exports and the Prometheus recorder behind them. Hot paths take a handle once (per
//! call task) and record through it: recording is lock-free; only name lookup would not be.

use metrics_exporter_prometheus::{BuildError, PrometheusBuilder, PrometheusHandle};

/// RTP arrival -> the uplink frame written to the agent's WebSocket.
pub const AGENT_UPLINK_LATENCY: &str = "vocals_agent_uplink_latency_seconds";
/// Agent audio received (a reply starting) -> its first RTP packet sent.
pub const AGENT_DOWNLINK_LATENCY: &str = "vocals_agent_downlink_latency_seconds";
/// Time to open an agent's WebSocket and send `start` (while the call rings).
pub const AGENT_CONNECT: &str = "vocals_agent_connect_seconds";
/// Agents not reached (the call got 503).
pub const AGENT_CONNECT_FAILURES: &str = "vocals_agent_connect_failures_total";
/// Agent frames ignored (bad JSON, unknown events, wrong streamSid, binary).
pub const AGENT_FRAMES_IGNORED: &str = "vocals_agent_frames_ignored_total";
/// Agents whose stream was closed for breaking a limit, by `reason`: marks_pending, mark_name, message_size.
pub const AGENT_VIOLATIONS: &str = "vocals_agent_violations_total";
/// Uplink frames dropped because an agent's socket could not keep up.
pub const AGENT_UPLINK_DROPPED: &str = "vocals_agent_uplink_dropped_total";
/// Agents' transfer requests: `result` = refer (a REFER was sent), or refused (by the transfer policy, before
/// any REFER) with its `reason`.
pub const TRANSFERS: &str = "vocals_transfers_total";
/// Status callbacks of outbound calls, by result (`sent`, `failed`, `dropped`).
pub const CALLBACKS: &str = "vocals_status_callbacks_total";
/// Outbound calls, by final Twilio status.
pub const OUTBOUND_CALLS: &str = "vocals_outbound_calls_total";
/// RTP arrival -> frame handed to the agent (the jitter buffer's hold).
pub const JITTER_HANDOFF: &str = "vocals_jitter_handoff_seconds";
/// RTP packets, `direction` = in | out.
pub const RTP_PACKETS: &str = "vocals_rtp_packets_total";
/// RTP frames concealed (lost or too late).
pub const RTP_CONCEALED: &str = "vocals_rtp_concealed_total";
/// Send ticks that found a call's playout queue empty inside a talk spurt (a hole of silence the caller heard).
pub const PLAYOUT_UNDERRUNS: &str = "vocals_playout_underruns_total";
/// Calls whose audio did not flow both ways, by `problem`: no_audio_from_caller, no_audio_to_caller, no_audio.
pub const CALLS_AUDIO_PROBLEMS: &str = "vocals_calls_audio_problems_total";
/// Incoming calls by `result`: answered, or the status they were refused with.
pub const INVITES: &str = "vocals_invites_total";
/// Calls in progress.
pub const CALLS_ACTIVE: &str = "vocals_calls_active";
/// INVITE -> 200 OK, seconds.
pub const CALL_SETUP: &str = "vocals_call_setup_seconds";
/// Answered calls' length, seconds.
pub const CALL_DURATION: &str = "vocals_call_duration_seconds";
/// RTP ports leased (two per call) and in the pool.
pub const RTP_PORTS_IN_USE: &str = "vocals_rtp_ports_in_use";
pub const RTP_PORTS: &str = "vocals_rtp_ports";
/// RTP frames that came too late to play, and duplicates.
pub const RTP_LATE: &str = "vocals_rtp_late_total";
/// RTP from sources other than the call's peer, dropped.
pub const RTP_FOREIGN: &str = "vocals_rtp_foreign_total";
/// RTP refused before a call latched its source: from an address other than the SDP's (or `media.allow`).
pub const RTP_REFUSED_SOURCE: &str = "vocals_rtp_refused_source_total";
/// SRTP/SRTCP packets dropped: `auth` (failed authentication, or refused unread), `replay`.
pub const SRTP_DROPPED: &str = "vocals_srtp_dropped_total";
/// SIP messages dropped, by `reason` (not_allowed, malformed, stray_response, stray_ack).
pub const SIP_DROPPED: &str = "vocals_sip_dropped_total";
/// SIP transactions in progress, by `kind` = server | client.
pub const SIP_TRANSACTIONS: &str = "vocals_sip_transactions";
/// SIP dialogs.
pub const SIP_DIALOGS: &str = "vocals_sip_dialogs";
/// Open SIP TCP connections.
pub const TCP_CONNECTIONS: &str = "vocals_sip_tcp_connections";
/// TCP connections refused at accept (a source outside `sip.allow`, before any TLS; a full table, per-source cap or the
/// slots reserved for exempt sources) or closed later (a message left incomplete, a failed TLS handshake, a source a
/// reload took out of `sip.allow`), by reason.
pub const TCP_REFUSED: &str = "vocals_sip_tcp_refused_total";
/// Call-record writes dropped because the writer's queue was full.
pub const CALL_RECORDS_DROPPED: &str = "vocals_call_records_dropped_total";
/// Calls whose SIP trace was not kept, by reason (`refusal sampled out`, `table full`).
pub const CALL_TRACES_DROPPED: &str = "vocals_call_traces_dropped_total";
/// HEP packets dropped: the queue to the collector was full, or the send failed.
pub const HEP_DROPPED: &str = "vocals_hep_dropped_total";
/// Recording frames dropped because the recording writer's queue was full (those recordings are incomplete).
pub const RECORDING_FRAMES_DROPPED: &str = "vocals_recording_frames_dropped_total";
/// Recording uploads to S3-compatible storage, by result (`done`, `retried`).
pub const RECORDING_UPLOADS: &str = "vocals_recording_uploads_total";
/// Recordings whose file could not be written (a full disk, a permission): each incomplete.
pub const RECORDING_FAILURES: &str = "vocals_recording_failures_total";

/// Latency buckets, in seconds: 100 µs to 5 s.
const BUCKETS: &[f64] =
    &[0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// How often histogram samples are folded into their buckets when nothing scrapes `/metrics`.
pub const UPKEEP: std::time::Duration = std::time::Duration::from_secs(1);

/// Installs the process-wide Prometheus recorder; the handle renders `/metrics`. A thread folds histogram
/// samples into their buckets every [`UPKEEP`]: the recorder keeps each sample until then (a scrape folds them
/// too), and two histograms take one per RTP packet, so an unscraped daemon would otherwise grow without bound
/// (about 16 bytes a sample: some 10 MB a minute at 100 calls).
pub fn install() -> Result<PrometheusHandle, BuildError> {
    let handle = recorder()?;
    let upkeep = handle.clone();
    let spawned = std::thread::Builder::new().name("metrics-upkeep".into()).spawn(move || {
        loop {
            std::thread::sleep(UPKEEP);
            upkeep.run_upkeep();
        }
    });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "no metrics upkeep thread: histograms are folded only when /metrics is scraped");
    }
    Ok(handle)
}

/// The process's recorder, installed by the first caller ([`install`]): every server in the process renders
/// `/metrics` from it. `None` (logged once) when it could not be installed, another recorder being first.
pub fn handle() -> Option<PrometheusHandle> {
    static HANDLE: std::sync::OnceLock<Option<PrometheusHandle>> = std::sync::OnceLock::new();
    let handle = HANDLE.get_or_init(|| match install() {
        Ok(handle) => Some(handle),
        Err(e) => {
            tracing::warn!(error = %e, "metrics disabled: the recorder could not be installed");
            None
        }
    });
    handle.clone()
}

fn recorder() -> Result<PrometheusHandle, BuildError> {
    PrometheusBuilder::new()
        .set_buckets(BUCKETS)?
        .set_buckets_for_metric(
            metrics_exporter_prometheus::Matcher::Full(CALL_DURATION.into()),
            &[1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 14_400.0],
        )?
        .install_recorder()
}
