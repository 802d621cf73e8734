//! The tokio shell of each call's media, the call layer's [`MediaPlane`]: binds the call's RTP and RTCP sockets
//! (dual-stack, on the leased port and the next), and runs one task per call that owns its sockets, its
//! [`Session`] (RFC 3550 RTP/RTCP, RFC 3711 SRTP, RFC 4733 DTMF, the jitter buffer and G.711, all sans-IO in
//! [`crate::media`]) and its agent (the built-in echo, or a WebSocket opened while the call rings, speaking Twilio
//! Media Streams through [`crate::agent`]). The task follows the driver loop shape: apply one input, drain every
//! output, await a datagram, an agent frame, a command or the next deadline. What happens to the call (answer,
//! end, transfer) is reported back as a [`MediaEvent`] and decided by the call layer. Nothing is shared with
//! other tasks: the per-packet path takes no lock.
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::recording::{Recording, Recordings};
use crate::agent::config::{AgentConfig, AgentKind};
use crate::agent::protocol::{Ignored, StartInfo, Violation};
use crate::agent::session::{Action, AgentStats, Refused};
use crate::agent::transfer::TransferStatus;
use crate::call::{CallInfo, Ending, MediaPlane, Readiness};
use crate::io::agent::{AgentLink, FromAgent};
use crate::media::histogram::DelayHistogram;
use crate::media::playout::FRAME_BYTES;
use crate::media::recording::{RecordMode, StereoFrame};
use crate::media::session::{MediaStats, Session, SessionConfig, Stream};
use crate::media::timeline::{Timeline, Window};
use crate::sip::endpoint::CallRef;
use crate::store::catalog::{CallWrite, Recorder};

/// `[media]` settings the call tasks use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaSettings {
    pub symmetric_rtp: bool,
    /// `None`: calls never time out for lack of RTP.
    pub timeout: Option<Duration>,
    pub send_silence: bool,
    pub rtcp_interval: Duration,
    pub jitter_max_wait: Duration,
    /// An agent whose socket takes nothing for this long is hung up on; `None`: never.
    pub agent_stall: Option<Duration>,
    /// Which RTP sources a call may latch onto (`media.latch`), and the blocks allowed besides the SDP
    /// address (`media.allow`).
    pub latch: crate::media::session::Latch,
    pub latch_allow: crate::sip::allow::AllowList,
}

/// What a call task tells the SIP driver.
#[derive(Debug)]
pub enum MediaEvent {
    /// The agent is reached: answer the ringing call.
    Ready { call: CallRef },
    /// The agent could not be reached: refuse the ringing call.
    Failed { call: CallRef, why: String },
    /// The media or the agent wants the call ended (the driver hangs up with a Reason).
    End { call: CallRef, why: Ending },
    /// The agent asks for a blind transfer of the caller to `target` (SIP REFER), with headers for the REFER.
    Transfer { call: CallRef, target: String, headers: Vec<(String, String)> },
}

enum Control {
    Update(Stream),
    /// Tell the agent how its transfer is going.
    TransferStatus(TransferStatus, u16),
    /// Tell the agent its transfer was refused by the policy, and why.
    TransferRefused(String),
    /// A digit signalled in SIP (INFO): the agent gets its `dtmf` event.
    Dtmf(char),
    /// The call is over; how its agent link ended, as the call layer has it (for the media record).
    Close(String),
}

/// Where a call's audio goes.
enum Agent {
    /// Plays the caller's audio back after the jitter buffer.
    Echo,
    /// A WebSocket agent; `open` until the agent hangs up or its socket fails. `reply_at`: when a reply's first
    /// audio arrived (a talk spurt starts: see [`SPURT_GAP`]), until its first RTP packet goes out.
    Socket { link: Box<AgentLink>, open: bool, reply_at: Option<Instant>, downlink: Box<DelayHistogram> },
    /// Not reached (yet, or at all).
    None,
}

/// Agent audio after this long without any sent starts a reply (a talk spurt): its first packet is what the
/// downlink latency times. Within a spurt, audio that finds the queue empty (the agent streaming in real time)
/// is not a new reply. The session re-phases its send clock on the same rule (3 ticks without agent audio).
const SPURT_GAP: Duration = Duration::from_millis(60);

/// Starts and stops the call tasks; owned by the SIP driver's call layer.
pub struct TokioMedia {
    settings: MediaSettings,
    /// The TLS client configuration all `wss://` agents share (built once, when the first one is called;
    /// `Some(None)`: it could not be built).
    tls: Option<Option<Arc<rustls::ClientConfig>>>,
    /// Where each call's media figures go when it ends (its call record's `stats`).
    records: Option<Recorder>,
    events: mpsc::Sender<MediaEvent>,
    calls: HashMap<CallRef, mpsc::Sender<Control>>,
    /// State of the generator for SSRCs, initial sequence numbers and timestamps, and stream ids.
    rng: u64,
    /// Where recorded calls are written (`None`: no call is recorded).
    recordings: Option<Recordings>,
}

impl TokioMedia {
    /// `events` is where call tasks report; `seed` randomises SSRCs, initial sequence numbers and stream ids.
    /// Each call brings its agent (routing resolved it).
    pub fn new(
        settings: MediaSettings,
        events: mpsc::Sender<MediaEvent>,
        records: Option<Recorder>,
        seed: u64,
    ) -> TokioMedia {
        TokioMedia { settings, tls: None, records, events, calls: HashMap::new(), rng: seed | 1, recordings: None }
    }

    /// Records the calls that ask for it ([`CallInfo::record`]) into `recordings`.
    pub fn with_recordings(mut self, recordings: Recordings) -> TokioMedia {
        self.recordings = Some(recordings);
        self
    }

    /// The TLS client configuration for `wss://` agents, built at the first one.
    fn tls(&mut self) -> Option<Arc<rustls::ClientConfig>> {
        self.tls
            .get_or_insert_with(|| {
                crate::io::agent::tls_config()
                    .inspect_err(
                        |e| tracing::error!(error = %e, "wss:// agents cannot be reached: no TLS configuration"),
                    )
                    .ok()
            })
            .clone()
    }

    /// xorshift64*: not for secrets, only so SSRCs, starting points and ids differ (RFC 3550 §5.1).
    fn random(&mut self) -> u64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A Twilio-style id: two letters and 32 hex digits.
    fn sid(&mut self, prefix: &str) -> String {
        format!("{prefix}{:016x}{:016x}", self.random(), self.random())
    }

    /// What the agent's `start` frame carries.
    fn start_info(&mut self, agent: &AgentConfig, info: &CallInfo) -> StartInfo {
        let mut custom = agent.parameters.clone();
        for (name, value) in &info.headers {
            custom.insert(name.clone(), value.clone());
        }
        // The agent's id and name (config agents: their name twice).
        custom.insert("agent".into(), agent.name.clone());
        custom.insert("agentId".into(), agent.id.clone());
        custom.insert("agentName".into(), agent.name.clone());
        custom.insert("from".into(), info.from.clone());
        custom.insert("to".into(), info.to.clone());
        StartInfo {
            stream_sid: self.sid("MZ"),
            account_sid: info.account_sid.clone().unwrap_or_else(|| format!("AC{}", "0".repeat(32))),
            call_sid: info.call_sid.clone().unwrap_or_else(|| self.sid("CA")),
            custom_parameters: custom,
        }
    }
}

impl MediaPlane for TokioMedia {
    fn open(&mut self, call: CallRef, port: u16, info: &CallInfo, stream: Stream) -> io::Result<Readiness> {
        let rtp = bind(port)?;
        let rtcp = bind(port + 1)?;
        let r = self.random();
        let config = SessionConfig {
            symmetric: self.settings.symmetric_rtp,
            media_timeout: self.settings.timeout,
            send_silence: self.settings.send_silence,
            rtcp_interval: self.settings.rtcp_interval,
            max_wait: self.settings.jitter_max_wait,
            ssrc: r as u32,
            seq: (r >> 32) as u16,
            timestamp: (r >> 16) as u32,
            cname: format!("vocals-{:x}@{}", r >> 48, call.0),
            latch: self.settings.latch.clone(),
            latch_allow: self.settings.latch_allow.clone(),
            ..SessionConfig::default()
        };
        let session = Session::new(Instant::now(), SystemTime::now(), config, stream);
        let (agent, connect, readiness) = match info.agent.kind {
            AgentKind::Echo => (Agent::Echo, Connect::No, Readiness::Now),
            AgentKind::WebSocket => {
                let agent = info.agent.clone();
                let start = self.start_info(&agent, info);
                let tls = if agent.url.starts_with("wss://") { self.tls() } else { None };
                (Agent::None, Connect::To(agent, start, tls), Readiness::Later)
            }
        };
        let (tx, rx) = mpsc::channel(8);
        self.calls.insert(call, tx);
        let v6 = rtp.local_addr()?.is_ipv6();
        let task = CallMedia {
            call,
            record_id: info.id.clone(),
            records: self.records.clone(),
            handoff_metric: metrics::histogram!(crate::metrics::JITTER_HANDOFF),
            downlink_metric: metrics::histogram!(crate::metrics::AGENT_DOWNLINK_LATENCY),
            rtp,
            rtcp,
            session,
            agent,
            agent_stall: self.settings.agent_stall,
            v6,
            control: rx,
            events: self.events.clone(),
            recordings: if info.record == RecordMode::Dual { self.recordings.clone() } else { None },
            recording: None,
            timeline: None,
            early: Vec::new(),
            audio_out_at: None,
        };
        // Every line the call's task logs says which call it is.
        let span = tracing::info_span!("call", id = %info.id, number = %info.to, agent = %info.agent.name);
        tokio::spawn(tracing::Instrument::instrument(task.run(connect), span));
        Ok(readiness)
    }

    fn update(&mut self, call: CallRef, stream: Stream) {
        if let Some(tx) = self.calls.get(&call)
            && tx.try_send(Control::Update(stream)).is_err()
        {
            tracing::warn!(call = call.0, "media update dropped: the call task is gone or busy");
        }
    }

    fn transfer_status(&mut self, call: CallRef, status: TransferStatus, sip_status: u16) {
        if let Some(tx) = self.calls.get(&call)
            && tx.try_send(Control::TransferStatus(status, sip_status)).is_err()
        {
            tracing::warn!(call = call.0, "transfer status dropped: the call task is gone or busy");
        }
    }

    fn transfer_refused(&mut self, call: CallRef, reason: String) {
        if let Some(tx) = self.calls.get(&call)
            && tx.try_send(Control::TransferRefused(reason)).is_err()
        {
            tracing::warn!(call = call.0, "transfer refusal dropped: the call task is gone or busy");
        }
    }

    fn dtmf(&mut self, call: CallRef, digit: char) {
        if let Some(tx) = self.calls.get(&call)
            && tx.try_send(Control::Dtmf(digit)).is_err()
        {
            tracing::warn!(call = call.0, "DTMF dropped: the call task is gone or busy");
        }
    }

    fn close(&mut self, call: CallRef, agent: &str) {
        // The task writes the call's media record with how its agent link ended; dropping the sender ends it
        // even if that message found no room.
        if let Some(tx) = self.calls.remove(&call) {
            let _ = tx.try_send(Control::Close(agent.to_string()));
        }
    }
}

/// Binds one UDP port on every address, IPv6 and IPv4 alike (IPv4-only where the host has no IPv6).
fn bind(port: u16) -> io::Result<UdpSocket> {
    let dual = || -> io::Result<Socket> {
        let s = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP))?;
        s.set_only_v6(false)?;
        s.bind(&SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port).into())?;
        Ok(s)
    };
    let socket = match dual() {
        Ok(s) => s,
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => return Err(e),
        Err(_) => {
            let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
            s.bind(&SocketAddr::from(([0, 0, 0, 0], port)).into())?;
            s
        }
    };
    socket.set_nonblocking(true)?;
    UdpSocket::from_std(socket.into())
}

struct CallMedia {
    call: CallRef,
    record_id: String,
    records: Option<Recorder>,
    /// Exported histograms, resolved once per call (recording through a handle takes no lock).
    handoff_metric: metrics::Histogram,
    downlink_metric: metrics::Histogram,
    rtp: UdpSocket,
    rtcp: UdpSocket,
    session: Session,
    agent: Agent,
    agent_stall: Option<Duration>,
    /// The sockets are IPv6 (dual-stack): IPv4 destinations are sent as mapped addresses.
    v6: bool,
    control: mpsc::Receiver<Control>,
    events: mpsc::Sender<MediaEvent>,
    /// Where to record the call once answered, when it is recorded; then its recording.
    recordings: Option<Recordings>,
    recording: Option<Recording>,
    /// One quality sample a second from the answer, and the agent's events.
    timeline: Option<Timeline>,
    /// Agent events before the answer (connected, start), moved into the timeline at the answer.
    early: Vec<(Instant, &'static str, String)>,
    /// When the last RTP packet carrying agent audio went out.
    audio_out_at: Option<Instant>,
}

/// How the call task reaches its agent before the call is answered.
enum Connect {
    No,
    To(Arc<AgentConfig>, StartInfo, Option<Arc<rustls::ClientConfig>>),
}

impl CallMedia {
    async fn run(mut self, connect: Connect) {
        if !self.reach_agent(connect).await {
            return;
        }
        // Answered (the agent is reached): the caller's audio is expected from here, and recorded from here.
        self.session.answered(Instant::now());
        let mut timeline = Timeline::new(Instant::now());
        for (at, kind, detail) in self.early.drain(..) {
            timeline.event(at, kind, &detail);
        }
        self.timeline = Some(timeline);
        if let Some(recording) = self.recordings.take().and_then(|r| r.open(&self.record_id)) {
            self.session.record();
            self.recording = Some(recording);
        }
        let mut ending = "the call ended first".to_string();
        let mut rtp_buf = [0u8; 2048];
        let mut rtcp_buf = [0u8; 2048];
        let mut out = [0u8; 1500];
        // One timer for the call's life, moved only when the session's next deadline moves (most packets do
        // not move it): not a timer-wheel registration and removal per packet.
        let timer = tokio::time::sleep_until(tokio::time::Instant::from_std(self.session.poll_timeout()));
        tokio::pin!(timer);
        loop {
            self.drain(&mut out);
            let deadline = tokio::time::Instant::from_std(self.session.poll_timeout());
            if timer.deadline() != deadline {
                timer.as_mut().reset(deadline);
            }
            tokio::select! {
                r = self.rtp.recv_from(&mut rtp_buf) => match r {
                    Ok((n, from)) => self.session.handle_rtp(Instant::now(), canonical(from), &rtp_buf[..n]),
                    Err(e) => tracing::debug!(call = self.call.0, error = %e, "rtp receive error"),
                },
                r = self.rtcp.recv_from(&mut rtcp_buf) => match r {
                    Ok((n, from)) => self.session.handle_rtcp(Instant::now(), canonical(from), &rtcp_buf[..n]),
                    Err(e) => tracing::debug!(call = self.call.0, error = %e, "rtcp receive error"),
                },
                msg = from_agent(&mut self.agent) => self.on_agent(msg),
                c = self.control.recv() => match c {
                    Some(Control::Update(stream)) => self.session.update(Instant::now(), stream),
                    Some(Control::TransferStatus(status, code)) => {
                        self.note("transfer status", &format!("{} ({code})", status.as_str()));
                        if let Agent::Socket { link, open: true, .. } = &mut self.agent {
                            let text = link.session.transfer_status(status.as_str(), code);
                            link.send(text, None);
                        }
                    }
                    Some(Control::TransferRefused(reason)) => {
                        self.note("transfer refused", &reason);
                        if let Agent::Socket { link, open: true, .. } = &mut self.agent {
                            let text = link.session.transfer_refused(&reason);
                            link.send(text, None);
                        }
                    }
                    Some(Control::Dtmf(digit)) => {
                        self.note("dtmf", &format!("{digit} (SIP INFO)"));
                        if let Agent::Socket { link, open: true, .. } = &mut self.agent {
                            let text = link.session.digit(digit);
                            link.send(text, None);
                        }
                    }
                    Some(Control::Close(why)) => {
                        if matches!(self.agent, Agent::Socket { .. }) {
                            self.note("end", &format!("the agent's stream: {why}"));
                        }
                        ending = why;
                        break;
                    }
                    None => break,
                },
                _ = &mut timer => self.session.handle_timeout(Instant::now()),
            }
        }
        if let Some(mut recording) = self.recording.take() {
            let mut stereo = StereoFrame::default();
            while self.session.poll_recorded(&mut stereo) {
                recording.frame(&stereo);
            }
            recording.close();
        }
        let (agent_stats, latency) = match std::mem::replace(&mut self.agent, Agent::None) {
            Agent::Socket { link, open, downlink, .. } => {
                let stats = link.session.stats();
                (Some(stats), Some((link.finish(open).await, *downlink)))
            }
            _ => (None, None),
        };
        let srtp = self.session.stream().srtp.is_some();
        let stats = record(self.call, &self.session.stats(), agent_stats.as_ref(), latency.as_ref(), &ending, srtp);
        if let Some(records) = &self.records {
            records.send(CallWrite::Stats { id: self.record_id.clone(), stats });
            if let Some(timeline) = self.timeline.take().filter(|t| !t.is_empty()) {
                records.send(CallWrite::Timeline { id: self.record_id.clone(), timeline: timeline.to_json() });
            }
        }
    }

    /// Opens the agent's WebSocket while the call rings and tells the driver whether to answer. Returns false
    /// when the call will not be answered (its task then only waits to be closed).
    async fn reach_agent(&mut self, connect: Connect) -> bool {
        let outcome = match connect {
            Connect::No => return true,
            Connect::To(agent, start, tls) => {
                let stream_sid = start.stream_sid.clone();
                let began = Instant::now();
                tokio::select! {
                    r = AgentLink::connect(&agent, start, tls) => r.map_err(|e| e.to_string()).inspect(|_| {
                        metrics::histogram!(crate::metrics::AGENT_CONNECT).record(began.elapsed().as_secs_f64());
                        tracing::info!(call = self.call.0, agent = %agent.name, stream_sid, "agent stream started");
                self.early.push((Instant::now(), "connected", agent.name.clone()));
                self.early.push((Instant::now(), "start", stream_sid.clone()));
                    }),
                    // The call ended (CANCEL) while the agent was being reached.
                    _ = self.control.recv() => return false,
                }
            }
        };
        match outcome {
            Ok(link) => {
                self.agent =
                    Agent::Socket { link: Box::new(link), open: true, reply_at: None, downlink: Box::default() };
                self.report(MediaEvent::Ready { call: self.call });
                true
            }
            Err(why) => {
                metrics::counter!(crate::metrics::AGENT_CONNECT_FAILURES).increment(1);
                tracing::warn!(call = self.call.0, %why, "agent not reached: refusing the call");
                self.report(MediaEvent::Failed { call: self.call, why });
                while self.control.recv().await.is_some() {}
                false
            }
        }
    }

    fn on_agent(&mut self, msg: FromAgent) {
        let Agent::Socket { link, open, reply_at, .. } = &mut self.agent else { return };
        // A reply starts when audio comes to an empty queue after [`SPURT_GAP`] without agent audio sent (not with
        // a mark, nor with more audio of a spurt already playing: its first packet is timed once).
        let idle = !self.session.playout().has_audio() && self.audio_out_at.is_none_or(|t| t.elapsed() >= SPURT_GAP);
        let before = link.session.stats();
        match msg {
            FromAgent::Text(text) => match link.session.on_text(&text, self.session.playout()) {
                Ok(None) if idle && reply_at.is_none() && self.session.playout().has_audio() => {
                    *reply_at = Some(Instant::now());
                }
                Ok(None) => {}
                Ok(Some(Action::Transfer { to: target, headers })) => {
                    let shown: String = target.chars().take(256).collect();
                    tracing::info!(call = self.call.0, target = ?shown, "the agent asks for a transfer");
                    self.note("transfer", &shown);
                    self.report(MediaEvent::Transfer { call: self.call, target, headers });
                }
                Ok(Some(Action::Hangup { headers })) => {
                    tracing::info!(call = self.call.0, "the agent hangs up (hangup event)");
                    self.note("hangup", "the agent's hangup event");
                    self.end(Ending::AgentHangup(headers));
                }
                Err(Refused::Ignored(Ignored::Headers { event, why })) => {
                    metrics::counter!(crate::metrics::AGENT_FRAMES_IGNORED).increment(1);
                    tracing::info!(call = self.call.0, event, %why, "agent event refused: its headers");
                    let text = link.session.error(event, &why);
                    link.send(text, None);
                }
                Err(Refused::Ignored(e)) => {
                    metrics::counter!(crate::metrics::AGENT_FRAMES_IGNORED).increment(1);
                    tracing::debug!(call = self.call.0, kind = e.kind(), error = %e, "agent frame ignored");
                }
                Err(Refused::Violation(v)) => self.violated(v),
            },
            FromAgent::Violation(v) => self.violated(v),
            FromAgent::Binary => {
                metrics::counter!(crate::metrics::AGENT_FRAMES_IGNORED).increment(1);
                link.session.ignored();
                tracing::debug!(call = self.call.0, "agent binary frame ignored");
            }
            FromAgent::Closed => {
                *open = false;
                tracing::info!(call = self.call.0, "the agent closed its stream: hanging up");
                self.note("hangup", "the agent closed its stream");
                self.end(Ending::AgentHungUp);
            }
            FromAgent::Failed(e) => {
                *open = false;
                tracing::warn!(call = self.call.0, error = %e, "the agent's stream failed: hanging up");
                self.note("failed", &e);
                self.end(Ending::AgentFailed(e));
            }
        }
        if let Agent::Socket { link, .. } = &self.agent {
            let after = link.session.stats();
            if after.marks_received > before.marks_received {
                self.note("mark", "sent by the agent");
            }
            if after.clears > before.clears {
                self.note("clear", "the agent cleared its queued audio");
            }
        }
    }

    /// An agent event for the call's timeline (before the answer, kept until it is made).
    fn note(&mut self, kind: &'static str, detail: &str) {
        match self.timeline.as_mut() {
            Some(t) => t.event(Instant::now(), kind, detail),
            None if self.early.len() < 16 => self.early.push((Instant::now(), kind, detail.to_string())),
            None => {}
        }
    }

    /// The agent broke a limit of its stream: the stream is closed (1008, the limit as the reason) and the call
    /// ended as the agent's fault.
    fn violated(&mut self, v: Violation) {
        let Agent::Socket { link, open, .. } = &mut self.agent else { return };
        link.close_for(&v);
        *open = false;
        metrics::counter!(crate::metrics::AGENT_VIOLATIONS, "reason" => v.kind()).increment(1);
        tracing::warn!(call = self.call.0, kind = v.kind(), violation = %v, "the agent broke a limit: hanging up");
        self.note("violation", &v.to_string());
        self.end(Ending::AgentViolation(v));
    }

    /// The agent side asks the call layer to end the call (which keeps why).
    fn end(&mut self, why: Ending) {
        self.report(MediaEvent::End { call: self.call, why });
    }

    fn report(&self, event: MediaEvent) {
        if self.events.try_send(event).is_err() {
            tracing::warn!(call = self.call.0, "media event not delivered: the SIP driver is gone or busy");
        }
    }

    /// Uplink frames to the agent, DTMF, then every datagram due, marks whose audio went out, then the end
    /// request if any.
    fn drain(&mut self, out: &mut [u8; 1500]) {
        let now = Instant::now();
        let mut frame = [0u8; FRAME_BYTES];
        while let Some(popped) = self.session.poll_frame(now, &mut frame) {
            if let Some(arrival) = popped.arrival {
                self.handoff_metric.record(now.saturating_duration_since(arrival).as_secs_f64());
            }
            match &mut self.agent {
                Agent::Echo => {
                    self.session.playout().push(&frame);
                }
                Agent::Socket { link, open: true, .. } => {
                    let text = link.session.frame(now, &frame);
                    link.send(text, popped.arrival);
                }
                _ => {}
            }
        }
        while let Some(d) = self.session.poll_digit() {
            tracing::info!(call = self.call.0, digit = %d.digit, duration_ms = d.duration_ms, "DTMF (RFC 4733)");
            self.note("dtmf", &format!("{} (RFC 4733, {} ms)", d.digit, d.duration_ms));
            if let Agent::Socket { link, open: true, .. } = &mut self.agent {
                let text = link.session.digit(d.digit);
                link.send(text, None);
            }
        }
        while let Some(t) = self.session.poll_transmit(now, out) {
            let socket = if t.rtcp { &self.rtcp } else { &self.rtp };
            if let Err(e) = socket.try_send_to(&out[..t.len], mapped(self.v6, t.to)) {
                tracing::debug!(call = self.call.0, to = %t.to, error = %e, "media send failed");
            }
            if t.audio {
                self.audio_out_at = Some(now);
            }
            if let Agent::Socket { reply_at, downlink, .. } = &mut self.agent
                && t.audio
                && let Some(at) = reply_at.take()
            {
                let delay = Instant::now().saturating_duration_since(at);
                downlink.record(delay);
                self.downlink_metric.record(delay.as_secs_f64());
                if let Some(timeline) = self.timeline.as_mut() {
                    timeline.downlink.record(delay);
                }
            }
        }
        if let Some(timeline) = self.timeline.as_mut().filter(|t| now >= t.due()) {
            let stats = self.session.stats();
            let queued = self.session.playout().queued_ms();
            let mut none = Window::default();
            let uplink = match &mut self.agent {
                Agent::Socket { link, .. } => &mut link.uplink_window,
                _ => &mut none,
            };
            timeline.sample(now, &stats, queued, uplink);
        }
        if let Some(recording) = self.recording.as_mut() {
            let mut stereo = StereoFrame::default();
            while self.session.poll_recorded(&mut stereo) {
                recording.frame(&stereo);
            }
        }
        if let Agent::Socket { link, open, .. } = &mut self.agent {
            while let Some(name) = self.session.playout().poll_mark() {
                if let Some(t) = self.timeline.as_mut() {
                    t.event(now, "mark played", &name);
                }
                if *open {
                    let text = link.session.mark_played(&name);
                    link.send(text, None);
                }
            }
            link.flush();
            let stalled = link.stalled_for(now);
            if *open && self.agent_stall.is_some_and(|limit| stalled >= limit) {
                *open = false;
                tracing::warn!(
                    call = self.call.0,
                    stalled_ms = stalled.as_millis() as u64,
                    "the agent stalled: hanging up"
                );
                self.end(Ending::AgentStalled(stalled));
            }
        }
        if let Some(why) = self.session.poll_end() {
            tracing::info!(call = self.call.0, ?why, "media ended the call");
            self.report(MediaEvent::End { call: self.call, why: Ending::Media(why) });
        }
    }
}

/// The next frame from the agent; never, without an open agent stream.
async fn from_agent(agent: &mut Agent) -> FromAgent {
    match agent {
        Agent::Socket { link, open: true, .. } => link.recv().await,
        _ => std::future::pending().await,
    }
}

/// The call's media record (the store's call record takes these when it lands).
/// `latency`: RTP arrival -> WebSocket frame written (uplink), and agent audio received -> its first RTP packet
/// sent (downlink: includes the wait for the next 20 ms tick).
fn record(
    call: CallRef,
    s: &MediaStats,
    agent: Option<&AgentStats>,
    latency: Option<&(DelayHistogram, DelayHistogram)>,
    agent_ending: &str,
    srtp: bool,
) -> serde_json::Value {
    let uplink = latency.map(|l| &l.0);
    let downlink = latency.map(|l| &l.1);
    metrics::counter!(crate::metrics::RTP_PACKETS, "direction" => "in").increment(s.rtp_received);
    metrics::counter!(crate::metrics::RTP_PACKETS, "direction" => "out").increment(s.sent_packets);
    metrics::counter!(crate::metrics::RTP_CONCEALED).increment(s.jitter.concealed);
    metrics::counter!(crate::metrics::RTP_LATE).increment(s.jitter.late);
    metrics::counter!(crate::metrics::PLAYOUT_UNDERRUNS).increment(s.playout_underruns);
    let path = crate::media::session::AudioPath::of(s);
    if path != crate::media::session::AudioPath::TwoWay {
        metrics::counter!(crate::metrics::CALLS_AUDIO_PROBLEMS, "problem" => path.as_str()).increment(1);
        tracing::warn!(
            call = call.0,
            audio = path.as_str(),
            fix = path.fix().unwrap_or_default(),
            "one-way or no audio"
        );
    }
    metrics::counter!(crate::metrics::RTP_FOREIGN).increment(s.foreign);
    metrics::counter!(crate::metrics::RTP_REFUSED_SOURCE).increment(s.refused_source);
    metrics::counter!(crate::metrics::SRTP_DROPPED, "reason" => "auth").increment(s.srtp_rejected);
    metrics::counter!(crate::metrics::SRTP_DROPPED, "reason" => "replay").increment(s.srtp_replayed);
    if let Some(a) = agent {
        metrics::counter!(crate::metrics::AGENT_UPLINK_DROPPED).increment(a.uplink_dropped);
    }
    if let Some(a) = agent {
        tracing::info!(
            call = call.0,
            frames_sent = a.frames_sent,
            media_received = a.media_received,
            audio_ms_received = a.audio_bytes_received / 8,
            marks_received = a.marks_received,
            marks_echoed = a.marks_echoed,
            clears = a.clears,
            ignored = a.ignored,
            uplink_dropped = a.uplink_dropped,
            uplink_p50_us = uplink.map(|h| h.percentile(50).as_micros() as u64),
            uplink_p99_us = uplink.map(|h| h.percentile(99).as_micros() as u64),
            replies = downlink.map(|h| h.count()),
            downlink_p50_us = downlink.map(|h| h.percentile(50).as_micros() as u64),
            downlink_p99_us = downlink.map(|h| h.percentile(99).as_micros() as u64),
            ending = agent_ending,
            "call agent record"
        );
    }
    tracing::info!(
        call = call.0,
        rtp_received = s.rtp_received,
        rtp_sent = s.sent_packets,
        lost_concealed = s.jitter.concealed,
        late = s.jitter.late,
        duplicate = s.jitter.duplicate,
        reordered = s.jitter.reordered,
        foreign = s.foreign,
        malformed = s.malformed,
        wrong_payload_type = s.wrong_payload_type,
        srtp = srtp,
        srtp_rejected = s.srtp_rejected,
        srtp_replayed = s.srtp_replayed,
        ssrc_changes = s.ssrc_changes,
        jitter_ms = s.interarrival_jitter_ms,
        handoff_p50_us = s.handoff_p50.as_micros() as u64,
        handoff_p99_us = s.handoff_p99.as_micros() as u64,
        skipped_ticks = s.skipped_ticks,
        refused_source = s.refused_source,
        audio_path = path.as_str(),
        underruns = s.playout_underruns,
        underrun_ticks = s.playout_underrun_ticks,
        rtt_ms = s.peer.rtt.map(|d| d.as_secs_f64() * 1000.0),
        peer_fraction_lost = s.peer.fraction_lost,
        "call media record"
    );
    let us = |d: Duration| d.as_micros() as u64;
    let agent_json = agent.map(|a| {
        serde_json::json!({
            "frames_sent": a.frames_sent,
            "media_received": a.media_received,
            "audio_ms_received": a.audio_bytes_received / 8,
            "marks_received": a.marks_received,
            "clears": a.clears,
            "uplink_dropped": a.uplink_dropped,
            "uplink_p50_us": uplink.map(|h| us(h.percentile(50))),
            "uplink_p99_us": uplink.map(|h| us(h.percentile(99))),
            "downlink_p50_us": downlink.map(|h| us(h.percentile(50))),
            "downlink_p99_us": downlink.map(|h| us(h.percentile(99))),
            "ending": agent_ending,
        })
    });
    serde_json::json!({
        "audio": {"path": path.as_str(), "fix": path.fix()},
        "rtp": {
            "received": s.rtp_received,
            "sent": s.sent_packets,
            "lost_concealed": s.jitter.concealed,
            "late": s.jitter.late,
            "duplicate": s.jitter.duplicate,
            "reordered": s.jitter.reordered,
            "foreign": s.foreign,
            "refused_source": s.refused_source,
            "malformed": s.malformed,
            "wrong_payload_type": s.wrong_payload_type,
            "srtp": srtp,
            "srtp_rejected": s.srtp_rejected,
            "srtp_replayed": s.srtp_replayed,
            "jitter_ms": s.interarrival_jitter_ms,
            "handoff_p50_us": us(s.handoff_p50),
            "handoff_p99_us": us(s.handoff_p99),
            "skipped_ticks": s.skipped_ticks,
            "rephased": s.rephased,
            "underruns": s.playout_underruns,
            "underrun_ticks": s.playout_underrun_ticks,
            "rtt_ms": s.peer.rtt.map(|d| d.as_secs_f64() * 1000.0),
            "peer_fraction_lost": s.peer.fraction_lost,
        },
        "agent": agent_json,
    })
}

/// An IPv4-mapped IPv6 source (from a dual-stack socket) as the IPv4 address it is.
fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

/// An IPv4 destination as a mapped IPv6 address when the socket is IPv6 (dual-stack).
fn mapped(v6: bool, to: SocketAddr) -> SocketAddr {
    match (v6, to.ip()) {
        (true, IpAddr::V4(v4)) => SocketAddr::new(IpAddr::V6(v4.to_ipv6_mapped()), to.port()),
        _ => to,
    }
}
