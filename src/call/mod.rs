//! The call: one owner per call. Each call's phase, negotiated media, agent link, ending and record live in
//! one `Call` here, for calls in either direction, and one function ends a call (`Calls::end`). The layer is
//! a state machine driven by `now`, like the endpoint: typed [`Input`]s go in (SIP events, media, the agent, an
//! admin, its timer) and typed [`Command`]s come out (to the endpoint and the media plane), which the shell
//! applies ([`run_commands`]). What it decides: the route to an agent (404, 480, 403 otherwise), the SDP
//! (RFC 3264; 488 with a Warning when nothing fits), an RTP port (503 when none can be had), ringing and the
//! answer once the agent is reached, re-INVITEs and the ACK's answer (RFC 3261 §13.2.1), blind transfers by
//! REFER (RFC 3515, RFC 5589 §6) within the transfer policy, and the end of calls that outlive
//! `max_call_duration`, that the media or agent gave up on, or that an admin, the REST API or the drain ends.
//!
//! No sockets, no tasks, no clock reads for timing; only two side effects: call records (stamped with the wall
//! clock, `now_rfc3339`) go to the store's writer, and counters to the metrics recorder.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::agent::transfer::{TransferPolicy, TransferStatus};
use crate::e164::E164;
use crate::media::ports::PortPool;
pub use crate::media::ports::PortRange;
use crate::media::recording::RecordMode;
use crate::media::session::Stream;
use crate::routing::{Chosen, NumberLookup, Reject, dialed_number, route};
use crate::sdp::sdes::KeySalt;
use crate::sdp::{self, Codec, Direction, Local, Offer, SrtpPolicy};
use crate::sip::endpoint::{CallRef, EndReason, Event};
use crate::sip::message::{HeaderName, Request, StatusCode};
use crate::store::catalog::{CallWrite, Recorder};
use crate::store::{CallRecord, now_rfc3339};

mod ending;
mod events;
mod hangup;
mod info;
pub mod outbound;
mod placing;
mod session;
#[cfg(test)]
mod tests;

pub use ending::{Ending, Hangup, stalled, violated};
pub use events::{
    AdminInput, AgentInput, Command, Input, MediaCommand, MediaInput, MediaPlane, Reply, SipCommand, run_commands,
};
pub use hangup::{CallSummary, HangupOutcome, HangupRequest, constant_time_eq};
pub use info::CallInfo;
use info::caller;
pub use placing::{Callback, DialRequest, StatusCallback};

/// What the call layer needs to decide.
#[derive(Clone)]
pub struct CallConfig {
    pub numbers: Arc<dyn NumberLookup>,
    /// The address put in our SDP: never 0.0.0.0.
    pub media_ip: IpAddr,
    pub rtp_ports: PortRange,
    pub max_call_duration: Duration,
    /// Whether calls' media is SRTP (`media.srtp`).
    pub srtp: SrtpPolicy,
    /// Makes the SRTP key each call gives its peer ([`crate::media::srtp::fresh_key`]; tests inject their own).
    pub srtp_keys: fn() -> KeySalt,
    /// The wall clock numbers' routing rules decide by (`jiff::Timestamp::now`; tests give their own).
    pub wall_clock: fn() -> jiff::Timestamp,
    /// The account id calls not from Twilio are given.
    pub default_account_sid: String,
    /// Random bits for the call ids vocals makes up (calls without `X-Twilio-CallSid`).
    pub seed: u64,
    /// This node's name, in call records.
    pub node: String,
    /// `[recording] record`: calls are recorded unless their agent or number says otherwise.
    pub record: RecordMode,
    /// Where call records go (`None`: not kept).
    pub records: Option<Recorder>,
    /// `[transfer]`: the transfers agents may make, unless their own settings say otherwise.
    pub transfer: TransferPolicy,
    /// `[outbound]`: the pace of calls vocals places, their ring timeout, their edge.
    pub outbound: outbound::OutboundSettings,
    /// Our SIP listeners' addresses: what an outbound call's Via and Contact name, for the transport it
    /// leaves on.
    pub sip_local: outbound::Listening,
}

/// Where a call is, as the call layer sees it.
#[derive(Clone, Debug, PartialEq)]
enum Phase {
    /// Its media is being opened on `port` (attempt `tries` of [`BIND_ATTEMPTS`]); its record waits.
    Opening { tries: usize, record: Box<CallRecord> },
    /// Ringing while its agent is reached; our SDP waits for the 200.
    Ringing { answer: Bytes },
    /// Our INVITE is out (an outbound call): no final answer yet.
    Dialing,
    /// Answered (when: `Call::answered`, kept after the phase moves on, for the call's duration).
    Answered,
    /// vocals ended it (a BYE or a final response went out); the endpoint reports when it is over.
    Ending,
}

/// How the call's agent link stands, as the media plane reported it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AgentLink {
    /// Being reached (its WebSocket opens while the call rings).
    Connecting,
    /// Reached: audio flows to it.
    Connected,
    /// Could not be reached, and why.
    Failed(String),
    /// The media or the agent ended the call.
    Ended(Ending),
}

impl AgentLink {
    /// How the link ended, for the media record.
    pub fn text(&self) -> String {
        match self {
            AgentLink::Connecting => "the call ended before the agent was reached".into(),
            AgentLink::Connected => "the call ended first".into(),
            AgentLink::Failed(why) => format!("the agent could not be reached: {why}"),
            AgentLink::Ended(e) => e.text(),
        }
    }
}

/// Whether a call's media can be answered at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Readiness {
    Now,
    Later,
}

/// Ports tried for one call before it is refused with 503 (others may be bound by other programs).
const BIND_ATTEMPTS: usize = 8;

/// One call, and everything vocals keeps about it.
struct Call {
    port: u16,
    info: CallInfo,
    phase: Phase,
    deadline: Instant,
    /// The SDP exchange that set the call's media up (`None`: we offered in the 200 and the ACK's answer is
    /// awaited), and the stream as it stands now (updated by each re-INVITE and by the ACK's answer).
    negotiated: Option<sdp::Negotiated>,
    stream: Stream,
    /// Our SRTP key for this call (used only when the stream is SRTP), kept across re-INVITEs, and the
    /// number's SRTP policy as it was when the call came.
    key: KeySalt,
    srtp: SrtpPolicy,
    agent: AgentLink,
    /// Why vocals ended the call, once it did (for the record), and whether it was ringing then.
    ending: Option<(Hangup, bool)>,
    /// When the INVITE came, and whether it was ever answered.
    invited: Instant,
    answered: Option<Instant>,
    /// REFERs sent for the agent's transfers.
    transfers: u32,
    /// A call vocals placed: its Twilio status and request (`None`: a call it answered).
    placed: Option<Box<placing::Placed>>,
    /// Its session timer (RFC 4028) and what the record says of it.
    session: session::SessionClock,
    /// The o= line of our SDP, and the last SDP we sent (RFC 3264 §8).
    origin: SdpOrigin,
}

/// Our SDP's origin in one call (RFC 3264 §8): one session id for the whole call; the version goes up by one
/// each time the description changes, and stays when it does not (a refresh re-offers it unchanged).
#[derive(Debug)]
struct SdpOrigin {
    id: u64,
    version: u64,
    last: Option<Bytes>,
}

impl Call {
    /// We made the offer (the INVITE had none): the answer must come in the ACK.
    fn offered(&self) -> bool {
        self.negotiated.is_none()
    }
}

/// The calls in progress.
pub struct Calls {
    config: CallConfig,
    ports: PortPool,
    calls: HashMap<CallRef, Call>,
    /// The live calls by CallSid (the REST hang-up finds calls by it, and one is never live twice).
    by_call_sid: HashMap<String, CallRef>,
    /// Commands not yet taken by the shell.
    commands: VecDeque<Command>,
    /// Outbound requests waiting for their turn, and those dialled whose CallRef the endpoint has yet to give.
    pacer: outbound::Pacer<placing::Pending>,
    dialing: VecDeque<Box<Call>>,
    /// Recently ended outbound calls, for their status.
    kept: placing::Kept,
    session_ids: u64,
    call_ids: u64,
}

impl Calls {
    pub fn new(config: CallConfig) -> Calls {
        // A port rests 2 s after its call, past any late packet of that call.
        let ports = PortPool::new(config.rtp_ports, Duration::from_secs(2));
        let pacer = outbound::Pacer::new(config.outbound.cps, config.outbound.queue);
        Calls {
            pacer,
            dialing: VecDeque::new(),
            kept: VecDeque::new(),
            config,
            ports,
            calls: HashMap::new(),
            by_call_sid: HashMap::new(),
            commands: VecDeque::new(),
            session_ids: 0,
            call_ids: 0,
        }
    }

    /// `[outbound]` as the call layer places calls by it (the driver opens TLS connections to the same next
    /// hop, verified against its host).
    pub fn outbound(&self) -> &outbound::OutboundSettings {
        &self.config.outbound
    }

    pub fn active(&self) -> usize {
        self.calls.len()
    }

    /// The next command for the endpoint or the media plane, in the order they were decided.
    pub fn poll_command(&mut self) -> Option<Command> {
        self.commands.pop_front()
    }

    fn sip(&mut self, command: SipCommand) {
        self.commands.push_back(Command::Sip(command));
    }

    fn media(&mut self, command: MediaCommand) {
        self.commands.push_back(Command::Media(command));
    }

    /// Reacts to one input; the commands it gives wait in [`Calls::poll_command`].
    pub fn handle(&mut self, now: Instant, input: Input<'_>) -> Reply {
        match input {
            Input::Sip(event) => self.on_sip(now, event),
            Input::Media(call, event) => self.on_media(now, call, event),
            Input::Agent(call, AgentInput::Transfer(target, headers)) => self.transfer(now, call, &target, headers),
            Input::Admin(AdminInput::Rest(req)) => return Reply::Rest(self.hangup_request(now, &req)),
            Input::Admin(AdminInput::End(id)) => return Reply::Ended(self.end_call(now, &id)),
            Input::Admin(AdminInput::Dial(req)) => return Reply::Dial(self.dial(now, *req)),
            Input::Admin(AdminInput::View(sid)) => return Reply::View(self.view(&sid)),
            Input::Dialed(call, call_id) => self.dialed(call, call_id),
            Input::Admin(AdminInput::EndAll(why)) => {
                self.withdraw_all();
                let all: Vec<CallRef> = self.calls.keys().copied().collect();
                for call in all {
                    self.end(now, call, Hangup::Shutdown(why.clone()));
                }
            }
            Input::Timer => self.handle_timeout(now),
        }
        Reply::None
    }

    fn on_sip(&mut self, now: Instant, event: &Event) {
        match event {
            Event::IncomingCall { call, invite, .. } => self.incoming(now, *call, invite),
            Event::CallEnded { call, why } => {
                if let Some(mut c) = self.calls.remove(call) {
                    if let Some(sid) = &c.info.call_sid {
                        self.by_call_sid.remove(sid);
                    }
                    self.ended(&c, why);
                    self.session_record(&c.info.id, &c.session);
                    self.placed_ended(&mut c, why);
                    self.media(MediaCommand::Close(*call, c.agent.text()));
                    self.ports.release(now, c.port);
                    self.gauge();
                }
            }
            Event::ReInvite { call, offer } => self.reinvite(now, *call, offer.as_ref()),
            Event::Progress { call, status, sdp } => self.progress(*call, *status, sdp.as_ref()),
            Event::Answered { call, sdp } => self.answered(now, *call, sdp.as_ref()),
            Event::CallConfirmed { call, answer } => self.confirmed(now, *call, answer.as_ref()),
            Event::ReferAnswered { call, status } => {
                let verdict = if status.is_success() { TransferStatus::Accepted } else { TransferStatus::Refused };
                self.media(MediaCommand::TransferStatus(*call, verdict, status.as_u16()));
            }
            Event::ReferNotify { call, status, done } => self.transfer_progress(now, *call, *status, *done),
            Event::Session { call, timer } => self.session(now, *call, *timer),
            Event::Glare { call } => self.glare(*call),
            Event::RefreshFailed { call, outcome } => self.refresh_failed(now, *call, outcome),
            Event::Dtmf { call, digit, duration_ms } => {
                if let Some(c) = self.calls.get(call) {
                    tracing::info!(call = %c.info.id, %digit, ?duration_ms, "DTMF (SIP INFO)");
                    self.media(MediaCommand::Dtmf(*call, *digit));
                }
            }
            _ => {}
        }
    }

    fn on_media(&mut self, now: Instant, call: CallRef, event: MediaInput) {
        match event {
            MediaInput::Opened(readiness) => self.opened(now, call, readiness),
            MediaInput::OpenFailed(why) => self.open_failed(now, call, &why),
            MediaInput::Ready => {
                let Some(c) = self.calls.get_mut(&call) else { return };
                c.agent = AgentLink::Connected;
                if let Phase::Ringing { answer } = &c.phase {
                    let sdp = answer.clone();
                    self.answer(now, call, sdp);
                }
            }
            MediaInput::Failed(why) => {
                let Some(c) = self.calls.get_mut(&call) else { return };
                c.agent = AgentLink::Failed(why.clone());
                // A call we placed has no one else to talk to: its agent unreachable (at the answer, or while
                // early media plays), it is hung up or cancelled.
                let placed = c.placed.is_some() && matches!(c.phase, Phase::Answered | Phase::Dialing);
                if matches!(c.phase, Phase::Ringing { .. }) || placed {
                    tracing::warn!(call = %c.info.id, agent = %c.info.agent.name, %why, "refusing the call: agent unavailable");
                    self.end(now, call, Hangup::AgentUnavailable(why));
                }
            }
            MediaInput::Ended(why) => {
                // The first ending is the link's (a second one comes while the first BYE is out).
                if let Some(c) = self.calls.get_mut(&call).filter(|c| !matches!(c.agent, AgentLink::Ended(_))) {
                    c.agent = AgentLink::Ended(why.clone());
                }
                self.end(now, call, Hangup::Media(why));
            }
        }
    }

    fn incoming(&mut self, now: Instant, call: CallRef, invite: &Request) {
        let routed = match route(invite, self.config.numbers.as_ref(), (self.config.wall_clock)()) {
            Ok(r) => r,
            Err(reject) => {
                let to = dialed_number(invite).map_or_else(|| invite.uri.to_string(), |n| n.to_string());
                let mut record = self.new_record(invite, None, to);
                record.route = match &reject {
                    Reject::NotAnswered(_, i) => Some(Chosen::Rule(*i).label()),
                    Reject::NoAgent(_) => Some(Chosen::Default.label()),
                    _ => None,
                };
                return self.refuse(call, record, reject.status(), &reject.to_string(), reject.to_string(), vec![]);
            }
        };
        // A CallSid names one live call (the REST hang-up finds calls by it): a second INVITE carrying one in
        // use is refused, not taken as another call.
        let sid = invite.headers.get(&HeaderName::new("X-Twilio-CallSid")).map(<[u8]>::trim_ascii);
        if let Some(sid) = sid.and_then(|s| std::str::from_utf8(s).ok())
            && self.by_call_sid.contains_key(sid)
        {
            let status = StatusCode::new(482).unwrap_or(StatusCode::FORBIDDEN);
            let mut record = self.new_record(invite, None, routed.dialed.to_string());
            record.call_sid = None;
            let why = "the CallSid is already in use by a call in progress";
            return self.refuse(call, record, status, why, "CallSid Already In Use".into(), vec![]);
        }
        let srtp = routed.srtp.unwrap_or(self.config.srtp);
        let mut info = CallInfo::from_invite(invite, routed.agent, routed.dialed.to_string());
        info.record = RecordMode::of_call(self.config.record, info.agent.record, routed.record);
        let mut record = self.new_record(invite, Some(&info), info.to.clone());
        record.route = Some(routed.chosen.label());
        info.id = record.id.clone();
        info.call_sid = record.call_sid.clone();
        info.account_sid.get_or_insert_with(|| self.config.default_account_sid.clone());
        let key = (self.config.srtp_keys)();
        let negotiated = if invite.body.is_empty() {
            None
        } else {
            match Offer::parse(&invite.body).and_then(|o| sdp::negotiate(&o, srtp, key)) {
                Ok(neg) => Some(neg),
                Err(e) => {
                    let warning = vec![(HeaderName::Warning, e.warning("vocals"))];
                    let status = StatusCode::new(e.status()).unwrap_or(StatusCode::NOT_ACCEPTABLE_HERE);
                    return self.refuse(call, record, status, &e.to_string(), e.to_string(), warning);
                }
            }
        };
        // No offer: ours goes in the 200 and the answer comes in the ACK (RFC 3261 §13.2.1); until then the
        // stream is what we offered, with no remote address.
        let stream = negotiated.as_ref().map_or_else(our_offer, Stream::from);
        let Some(port) = self.ports.lease(now, crate::media::srtp::os_random_u64()) else {
            return self.no_port(call, record);
        };
        let c = Call {
            port,
            info,
            phase: Phase::Opening { tries: 1, record: Box::new(record) },
            deadline: now + self.config.max_call_duration,
            negotiated,
            stream,
            key,
            srtp,
            agent: AgentLink::Connecting,
            ending: None,
            invited: now,
            answered: None,
            transfers: 0,
            placed: None,
            session: Default::default(),
            origin: SdpOrigin { id: self.next_session_id(), version: 1, last: None },
        };
        if let Some(sid) = &c.info.call_sid {
            self.by_call_sid.insert(sid.clone(), call);
        }
        let open = MediaCommand::Open { call, port, info: Box::new(c.info.clone()), stream: c.stream };
        self.calls.insert(call, c);
        self.media(open);
        self.gauge();
    }

    /// The call's media is open: its record starts, it rings, and it is answered now when its agent is.
    fn opened(&mut self, now: Instant, call: CallRef, readiness: Readiness) {
        if let Some(c) = self.calls.get_mut(&call).filter(|c| c.placed.is_some() && readiness == Readiness::Now) {
            c.agent = AgentLink::Connected;
        }
        let Some(c) = self.calls.get(&call) else { return };
        let Phase::Opening { record, .. } = &c.phase else { return };
        let record = record.clone();
        let (srtp, key, negotiated) = (c.srtp, c.key, c.negotiated.clone());
        let Some(sdp) = self.describe(call, |local| match &negotiated {
            Some(neg) => sdp::answer(neg, local),
            None => sdp::offer(local, offer_key(srtp, key)),
        }) else {
            return;
        };
        let Some(c) = self.calls.get_mut(&call) else { return };
        c.phase = Phase::Ringing { answer: sdp.clone() };
        if readiness == Readiness::Now {
            c.agent = AgentLink::Connected;
        }
        self.write(CallWrite::Start(record));
        self.sip(SipCommand::Ring(call));
        if readiness == Readiness::Now {
            self.answer(now, call, sdp);
        }
    }

    /// The port could not be bound: another is tried, up to [`BIND_ATTEMPTS`], then the call gets 503.
    fn open_failed(&mut self, now: Instant, call: CallRef, why: &str) {
        if self.calls.get(&call).is_some_and(|c| c.placed.is_some()) {
            // Our offer named this port: no other can be tried.
            return self.end(now, call, Hangup::NoMedia(format!("the RTP port could not be bound: {why}")));
        }
        let Some(c) = self.calls.get_mut(&call) else { return };
        let Phase::Opening { tries, .. } = &mut c.phase else { return };
        tracing::warn!(port = c.port, error = %why, "RTP port unusable; trying another");
        self.ports.release(now, c.port);
        *tries += 1;
        let next =
            if *tries <= BIND_ATTEMPTS { self.ports.lease(now, crate::media::srtp::os_random_u64()) } else { None };
        let Some(port) = next else {
            let Some(c) = self.calls.remove(&call) else { return };
            if let Some(sid) = &c.info.call_sid {
                self.by_call_sid.remove(sid);
            }
            self.gauge();
            let Phase::Opening { record, .. } = c.phase else { return };
            return self.no_port(call, *record);
        };
        c.port = port;
        let open = MediaCommand::Open { call, port, info: Box::new(c.info.clone()), stream: c.stream };
        self.media(open);
    }

    /// No RTP port could be had: 503, which Twilio takes as "try the next origination URI".
    fn no_port(&mut self, call: CallRef, record: CallRecord) {
        let retry = vec![(HeaderName::RetryAfter, "5".to_string())];
        let why = "no RTP port available";
        self.refuse(call, record, StatusCode::SERVICE_UNAVAILABLE, why, "No RTP Port Available".into(), retry);
    }

    /// Refuses an INVITE before its call started, and records it.
    fn refuse(
        &mut self,
        call: CallRef,
        mut record: CallRecord,
        status: StatusCode,
        why: &str,
        phrase: String,
        headers: Vec<(HeaderName, String)>,
    ) {
        count_invite(status.as_u16());
        record.end_at = Some(now_rfc3339());
        record.end_reason = Some(why.to_string());
        record.sip_status = Some(status.as_u16());
        self.write(CallWrite::Start(Box::new(record)));
        self.sip(SipCommand::Refuse { call, status, phrase, headers });
    }

    /// Answers a ringing call and records it.
    fn answer(&mut self, now: Instant, call: CallRef, sdp: Bytes) {
        count_invite(200);
        self.sip(SipCommand::Answer(call, sdp));
        let Some(c) = self.calls.get_mut(&call) else { return };
        c.phase = Phase::Answered;
        c.answered = Some(now);
        metrics::histogram!(crate::metrics::CALL_SETUP).record(now.duration_since(c.invited).as_secs_f64());
        tracing::info!(call = %c.info.id, agent = %c.info.agent.name, to = %c.info.to, "call answered");
        let codec = c.negotiated.as_ref().map_or(Codec::Pcmu, |n| n.codec).name().to_string();
        let write = CallWrite::Answered { id: c.info.id.clone(), at: now_rfc3339(), codec };
        self.write(write);
    }

    /// A call record as the INVITE describes it (with a CallSid made up for calls not from Twilio).
    fn new_record(&mut self, invite: &Request, info: Option<&CallInfo>, to: String) -> CallRecord {
        let text = |v: &[u8]| String::from_utf8_lossy(v).into_owned();
        let mut call_sid = invite.headers.get(&HeaderName::new("X-Twilio-CallSid")).map(text);
        self.call_ids += 1;
        if call_sid.is_none() {
            call_sid = Some(self.fresh_call_sid());
        }
        CallRecord {
            id: format!("vc_{:016x}{:08x}", self.config.seed, self.call_ids),
            call_sid,
            sip_call_id: invite.headers.get(&HeaderName::CallId).map(text).unwrap_or_default(),
            from: info.map_or_else(|| caller(invite), |i| i.from.clone()),
            to,
            agent: info.map(|i| i.agent.name.clone()),
            node: self.config.node.clone(),
            invite_at: now_rfc3339(),
            ..CallRecord::default()
        }
    }

    /// A CallSid for a call vocals names: random (the OS CSPRNG), not a counter, since a CallSid names a call
    /// to the REST hang-up.
    fn fresh_call_sid(&self) -> String {
        let (a, b) = (crate::media::srtp::os_random_u64(), crate::media::srtp::os_random_u64());
        format!("CA{a:016x}{b:016x}")
    }

    fn write(&self, write: CallWrite) {
        if let Some(records) = &self.config.records {
            records.send(write);
        }
    }

    /// Ends a call on our side, the one way every cause takes: while it rings, the final response the cause
    /// calls for; once answered, our BYE with the cause's Reason. The first cause is the one recorded; a call
    /// already ending is left to end.
    fn end(&mut self, now: Instant, call: CallRef, why: Hangup) {
        let _ = now;
        let Some(c) = self.calls.get_mut(&call) else { return };
        let phase = std::mem::replace(&mut c.phase, Phase::Ending);
        match phase {
            // Opening is decided within the same turn (the plane answers at once); never seen here.
            Phase::Ending | Phase::Opening { .. } => c.phase = phase,
            Phase::Dialing => {
                c.phase = Phase::Dialing;
                c.ending = Some((why, true));
                self.cancel(call);
            }
            Phase::Ringing { .. } => {
                let (status, phrase, headers) = why.refusal();
                if matches!(why, Hangup::AgentUnavailable(_)) {
                    count_invite(status.as_u16());
                }
                c.ending = Some((why, true));
                self.sip(SipCommand::Refuse { call, status, phrase: phrase.to_string(), headers });
            }
            Phase::Answered => {
                let (reason, headers) = (why.reason(), why.headers());
                c.ending = Some((why, false));
                self.sip(SipCommand::Bye(call, reason, headers));
            }
        }
    }

    /// Whether the call rings (its agent is being reached).
    pub fn is_ringing(&self, call: CallRef) -> bool {
        self.calls.get(&call).is_some_and(|c| matches!(c.phase, Phase::Ringing { .. }))
    }

    /// How the call's agent link stands.
    pub fn agent_link(&self, call: CallRef) -> Option<&AgentLink> {
        self.calls.get(&call).map(|c| &c.agent)
    }

    /// The call is over: its record says when and why.
    fn ended(&mut self, c: &Call, why: &EndReason) {
        if let Some(answered) = c.answered {
            metrics::histogram!(crate::metrics::CALL_DURATION).record(answered.elapsed().as_secs_f64());
        }
        let ending = c.ending.as_ref().map(|(why, ringing)| if *ringing { why.text_ringing() } else { why.text() });
        let (reason, status) = match Calls::placed_reason(c, why) {
            Some(placed) => placed,
            None => match why {
                EndReason::Cancelled => ("the caller cancelled".to_string(), 487),
                EndReason::RemoteBye { reason: None } => ("the caller hung up".to_string(), 200),
                EndReason::RemoteBye { reason: Some(r) } => (format!("the caller hung up ({r})"), 200),
                EndReason::LocalBye => (ending.unwrap_or_else(|| "vocals hung up".into()), 200),
                EndReason::Rejected(s) => (ending.unwrap_or_else(|| "refused".into()), s.as_u16()),
                EndReason::AckTimeout => ("no ACK came for the 200 OK: vocals hung up".to_string(), 200),
                EndReason::ResponseTimeout => ("the final response could not be delivered".to_string(), 408),
                EndReason::Failed { status, phrase } => (format!("{} {phrase}", status.as_u16()), status.as_u16()),
                EndReason::NoResponse => ("no response".to_string(), 408),
                EndReason::NotDialed { why } => (format!("not dialed: {why}"), 503),
                EndReason::Unreachable { why } => (format!("unreachable: {why}"), 503),
            },
        };
        self.write(CallWrite::Ended { id: c.info.id.clone(), at: now_rfc3339(), reason, sip_status: status });
    }

    /// The agent asks for a blind transfer (RFC 3515): REFER to `target`, a `+E.164` number (sent as
    /// `tel:+E164`, as Twilio requires) or a `sip:`/`tel:` URI, if the transfer policy (the agent's own, over
    /// the server's) allows it; otherwise no REFER, and the agent hears why.
    fn transfer(&mut self, _now: Instant, call: CallRef, target: &str, headers: Vec<(String, String)>) {
        let Some(c) = self.calls.get_mut(&call) else { return };
        let policy = c.info.agent.transfer.over(&self.config.transfer);
        let caller = E164::parse(&c.info.from).ok();
        match policy.check(target, caller.as_ref(), c.transfers) {
            Ok(uri) => {
                c.transfers += 1;
                metrics::counter!(crate::metrics::TRANSFERS, "result" => "refer").increment(1);
                tracing::info!(call = %c.info.id, %uri, "blind transfer (REFER)");
                let headers = headers.into_iter().map(|(n, v)| (HeaderName::new(&n), v)).collect();
                self.sip(SipCommand::Refer(call, uri, headers));
            }
            Err(refusal) => {
                let kind = refusal.kind();
                metrics::counter!(crate::metrics::TRANSFERS, "result" => "refused", "reason" => kind).increment(1);
                let shown: String = target.chars().take(256).collect();
                let (id, agent) = (&c.info.id, &c.info.agent.name);
                tracing::warn!(call = %id, %agent, target = ?shown, kind, reason = %refusal, "transfer refused");
                self.media(MediaCommand::TransferRefused(call, refusal.to_string()));
            }
        }
    }

    /// A NOTIFY about our REFER: progress for the agent; once the transfer target answered, our part of the
    /// call is over (RFC 5589 §6): BYE.
    fn transfer_progress(&mut self, now: Instant, call: CallRef, status: u16, done: bool) {
        let verdict = TransferStatus::of_notify(status);
        self.media(MediaCommand::TransferStatus(call, verdict, status));
        if done && verdict == TransferStatus::Completed {
            self.end(now, call, Hangup::Transferred);
        }
    }

    /// When we made the offer, the ACK must carry a usable answer; otherwise the session cannot start and the
    /// call is ended with a BYE saying why.
    fn confirmed(&mut self, now: Instant, call: CallRef, answer: Option<&Bytes>) {
        let Some(c) = self.calls.get_mut(&call).filter(|c| c.offered()) else { return };
        let outcome = match answer {
            None => Err("the ACK carried no SDP answer to our offer".to_string()),
            Some(body) => Offer::parse(body).and_then(|a| sdp::negotiate(&a, c.srtp, c.key)).map_err(|e| e.to_string()),
        };
        match outcome {
            Ok(neg) => {
                c.stream = Stream::from(&neg);
                c.negotiated = Some(neg);
                let stream = c.stream;
                self.media(MediaCommand::Update(call, stream));
            }
            Err(why) => {
                tracing::info!(call = call.0, %why, "ending the call: no usable answer");
                self.end(now, call, Hangup::NoAnswer(why));
            }
        }
    }

    /// Hold, resume or a new offer: answered on the same port with the RFC 3264 direction.
    fn reinvite(&mut self, _now: Instant, call: CallRef, offer: Option<&Bytes>) {
        let Some((key, srtp)) = self.calls.get(&call).map(|c| (c.key, c.srtp)) else { return };
        let sdp = match offer {
            // Our offer in the 200; the answer comes in the ACK (RFC 3261 §14.2), taken as the first call's is.
            None => {
                if let Some(c) = self.calls.get_mut(&call) {
                    c.negotiated = None;
                }
                let Some(sdp) = self.describe(call, |local| sdp::offer(local, offer_key(srtp, key))) else { return };
                sdp
            }
            Some(body) => match Offer::parse(body).and_then(|o| sdp::negotiate(&o, srtp, key)) {
                Ok(neg) => {
                    let stream = Stream::from(&neg);
                    let Some(answer) = self.describe(call, |local| sdp::answer(&neg, local)) else { return };
                    if let Some(c) = self.calls.get_mut(&call) {
                        c.stream = stream;
                    }
                    self.media(MediaCommand::Update(call, stream));
                    answer
                }
                Err(e) => {
                    let status = StatusCode::new(e.status()).unwrap_or(StatusCode::NOT_ACCEPTABLE_HERE);
                    let phrase = e.to_string();
                    return self.sip(SipCommand::Refuse { call, status, phrase, headers: vec![] });
                }
            },
        };
        self.sip(SipCommand::AnswerReinvite(call, sdp));
    }

    fn next_session_id(&mut self) -> u64 {
        self.session_ids += 1;
        self.session_ids
    }

    /// A new call's first description: a new session id, version 1.
    fn local(&mut self, port: u16) -> Local {
        let session_id = self.next_session_id();
        Local { address: self.config.media_ip, port, session_id, session_version: 1 }
    }

    /// Our SDP for `call`, built by `build` on its origin (RFC 3264 §8): the same session id all along, and the
    /// version one up from the last SDP sent when this one differs from it (the same when it does not).
    fn describe(&mut self, call: CallRef, build: impl Fn(&Local) -> Bytes) -> Option<Bytes> {
        let address = self.config.media_ip;
        let c = self.calls.get_mut(&call)?;
        let o = &mut c.origin;
        let mut local = Local { address, port: c.port, session_id: o.id, session_version: o.version };
        let mut sdp = build(&local);
        if o.last.as_ref().is_some_and(|last| *last != sdp) {
            o.version += 1;
            local.session_version = o.version;
            sdp = build(&local);
        }
        o.last = Some(sdp.clone());
        Some(sdp)
    }

    fn gauge(&self) {
        metrics::gauge!(crate::metrics::CALLS_ACTIVE).set(self.calls.len() as f64);
        metrics::gauge!(crate::metrics::RTP_PORTS_IN_USE).set(self.ports.in_use() as f64);
        metrics::gauge!(crate::metrics::RTP_PORTS).set(self.ports.size() as f64);
    }

    /// The next deadline: a call reaching its maximum duration, or a resting port coming back to the pool (the
    /// ports-in-use gauge then falls).
    pub fn poll_timeout(&self) -> Option<Instant> {
        // One pass over the calls: each one's maximum duration, and its ring timeout while it is dialled.
        let calls = self
            .calls
            .values()
            .map(|c| {
                let at = c
                    .placed
                    .as_ref()
                    .filter(|_| c.phase == Phase::Dialing)
                    .map_or(c.deadline, |p| c.deadline.min(p.ring_deadline));
                match c.session.next().filter(|_| c.phase == Phase::Answered) {
                    Some(session) => at.min(session),
                    None => at,
                }
            })
            .min();
        [calls, self.ports.next_return(), self.pacer.poll_timeout()].into_iter().flatten().min()
    }

    /// Hangs up calls past their maximum duration (the first way vocals ends a call itself), and takes rested
    /// ports back.
    fn handle_timeout(&mut self, now: Instant) {
        if self.ports.settle(now) {
            self.gauge();
        }
        self.ring_timeouts(now);
        self.dial_due(now);
        self.session_timeouts(now);
        let due: Vec<CallRef> = self.calls.iter().filter(|(_, c)| c.deadline <= now).map(|(c, _)| *c).collect();
        for call in due {
            if let Some(c) = self.calls.get_mut(&call) {
                // Not again, whatever the endpoint does with the hang-up.
                c.deadline = now + Duration::from_secs(3600 * 24 * 365);
            }
            self.end(now, call, Hangup::MaxDuration);
        }
    }
}

/// The key our own offer carries: SRTP is offered only where it is required (an `RTP/AVP` offer is what every
/// peer can answer).
fn offer_key(policy: SrtpPolicy, key: KeySalt) -> Option<KeySalt> {
    (policy == SrtpPolicy::Required).then_some(key)
}

/// The stream our offer (in a 200 to an INVITE without SDP) proposes, until the ACK's answer settles it.
fn our_offer() -> Stream {
    Stream {
        codec: Codec::Pcmu,
        payload_type: 0,
        telephone_event: Some(sdp::OFFER_TELEPHONE_EVENT),
        remote_rtp: None,
        remote_rtcp: None,
        direction: Direction::SendRecv,
        srtp: None,
    }
}

/// Counts an incoming call by its outcome: `answered`, or the status it was refused with.
fn count_invite(status: u16) {
    let result = if status == 200 { "answered".to_string() } else { status.to_string() };
    metrics::counter!(crate::metrics::INVITES, "result" => result).increment(1);
}
