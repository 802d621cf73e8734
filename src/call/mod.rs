//! The call layer: routes each incoming call to its agent (404, 480, 403 otherwise), negotiates SDP (488 with
//! a Warning when nothing fits), leases an RTP port and opens the call's media on it (503 when no port can be
//! had), rings and answers, follows re-INVITEs and the ACK's answer into the media, and ends calls that outlive
//! `max_call_duration` or that the media gave up on with our BYE and a Reason. Synchronous, and no sockets:
//! the driver calls it with each endpoint event and its `now`, and runs its deadline; the media runs behind
//! [`MediaPlane`]. It is not wholly sans-IO: call records are stamped with the wall clock (`now_rfc3339`) and
//! sent to the store's writer, and counters go to the metrics recorder.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::agent::config::AgentConfig;
use crate::agent::protocol::Violation;
use crate::agent::transfer::{TransferPolicy, TransferStatus};
use crate::e164::E164;
use crate::media::ports::PortPool;
pub use crate::media::ports::PortRange;
use crate::media::session::{MediaEnd, Stream};
use crate::routing::{NumberLookup, dialed_number, route};
use crate::sdp::sdes::KeySalt;
use crate::sdp::{self, Codec, Direction, Local, Offer, SrtpPolicy};
use crate::sip::endpoint::{CallRef, EndReason, Endpoint, Event};
use crate::sip::message::typed::Reason;
use crate::sip::message::{HeaderName, Request, StatusCode};
use crate::store::catalog::{CallWrite, Recorder};
use crate::store::{CallRecord, now_rfc3339};

#[cfg(test)]
mod tests;

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
    /// The account id calls not from Twilio are given.
    pub default_account_sid: String,
    /// Random bits for the call ids vocals makes up (calls without `X-Twilio-CallSid`).
    pub seed: u64,
    /// This node's name, in call records.
    pub node: String,
    /// Where call records go (`None`: not kept).
    pub records: Option<Recorder>,
    /// `[transfer]`: the transfers agents may make, unless their own settings say otherwise.
    pub transfer: TransferPolicy,
}

/// A Twilio-style REST request to end a call (`POST .../Accounts/{AC}/Calls/{CA}.json`, `Status=completed`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HangupRequest {
    pub account_sid: String,
    pub call_sid: String,
    /// HTTP Basic credentials.
    pub user: String,
    pub password: String,
}

/// What the REST layer answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HangupOutcome {
    /// The call is being ended; its description for the response body.
    Done(CallSummary),
    UnknownCall,
    /// The credentials do not match this call's account and agent.
    Unauthorized,
}

/// A call as the Twilio-compatible REST API describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallSummary {
    pub call_sid: String,
    pub account_sid: String,
    pub from: String,
    pub to: String,
    /// `completed` (it was answered) or `canceled` (it was ringing).
    pub status: &'static str,
}

/// Where each call's media runs: the tokio shell binds sockets and spawns a task per call; tests record.
pub trait MediaPlane: Send {
    /// Opens the call's RTP and RTCP sockets on `port` and `port + 1` and starts its media towards its agent.
    /// An error (the port is taken by another program) makes the caller try another port. `Later` means the
    /// agent is being reached (its WebSocket opened while the call rings): the call is answered when the media
    /// reports ready, and refused with 503 when it reports failure.
    fn open(&mut self, call: CallRef, port: u16, info: &CallInfo, stream: Stream) -> io::Result<Readiness>;
    /// A new SDP exchange in the call (re-INVITE, the answer in the ACK).
    fn update(&mut self, call: CallRef, stream: Stream);
    /// How the agent's transfer is going.
    fn transfer_status(&mut self, call: CallRef, status: TransferStatus, sip_status: u16);
    /// The agent's transfer was refused by the transfer policy (no REFER sent), and why.
    fn transfer_refused(&mut self, call: CallRef, reason: String);
    /// A DTMF digit the caller signalled in SIP (INFO), for the agent as if it came in RTP (RFC 4733).
    fn dtmf(&mut self, call: CallRef, digit: char);
    /// The call is over: stop its media and write its record.
    fn close(&mut self, call: CallRef);
}

/// Why the media side asks for a call to end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ending {
    /// The RTP session gave up (no RTP for the media timeout).
    Media(MediaEnd),
    /// The agent closed its stream.
    AgentHungUp,
    /// The agent's stream failed mid-call.
    AgentFailed(String),
    /// The agent took no audio for this long (its socket accepted nothing).
    AgentStalled(std::time::Duration),
    /// The agent broke a limit of its stream (its stream was closed with 1008).
    AgentViolation(Violation),
}

impl Ending {
    /// What happened, for the call record and the log (the agent's own error text included).
    pub fn text(&self) -> String {
        match self {
            Ending::Media(MediaEnd::Timeout(after)) => format!("no RTP received for {} s", after.as_secs()),
            Ending::AgentHungUp => "the agent hung up".to_string(),
            Ending::AgentFailed(e) => format!("the agent's stream failed: {e}"),
            Ending::AgentStalled(after) => stalled(*after),
            Ending::AgentViolation(v) => violated(v),
        }
    }

    /// The BYE's Reason: its cause and a text that names what happened, never the agent's internal error
    /// (which the record keeps).
    fn reason(&self) -> Reason {
        match self {
            Ending::Media(_) => Reason::new("SIP", 408, &self.text()),
            Ending::AgentHungUp => Reason::new("SIP", 200, &self.text()),
            Ending::AgentFailed(_) => Reason::new("SIP", 500, "the agent's stream failed"),
            Ending::AgentStalled(_) | Ending::AgentViolation(_) => Reason::new("SIP", 500, &self.text()),
        }
    }
}

/// Why vocals ends a call: each way a call is ended on our side, with what the caller's side is told (a BYE's
/// Reason once answered, a final response while it rings) and what the call record says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hangup {
    /// The agent's framework asked through the Twilio-compatible REST API.
    Rest,
    /// An admin, through the admin API or the dashboard.
    Admin,
    /// The server is shutting down (the drain timeout passed).
    Shutdown(String),
    /// `max_call_duration` passed.
    MaxDuration,
    /// The transfer target answered: our part of the call is over (RFC 5589 §6).
    Transferred,
    /// We offered in the 200 and the ACK brought no usable answer.
    NoAnswer(String),
    /// The agent could not be reached while the call rang.
    AgentUnavailable(String),
    /// The media or the agent asked.
    Media(Ending),
}

impl Hangup {
    /// The call record's ending.
    pub fn text(&self) -> String {
        match self {
            Hangup::Rest => "the agent ended the call (REST)".into(),
            Hangup::Admin => "an admin ended the call".into(),
            Hangup::Shutdown(why) | Hangup::NoAnswer(why) => why.clone(),
            Hangup::MaxDuration => "maximum call duration reached".into(),
            Hangup::Transferred => "call transferred".into(),
            Hangup::AgentUnavailable(why) => format!("agent unavailable: {why}"),
            Hangup::Media(e) => e.text(),
        }
    }

    /// The record's ending for a call ended while it rang.
    fn text_ringing(&self) -> String {
        match self {
            Hangup::Rest => "the agent ended the call (REST) while it rang".into(),
            other => other.text(),
        }
    }

    /// The BYE's Reason once the call is answered.
    fn reason(&self) -> Reason {
        match self {
            Hangup::Rest | Hangup::Admin | Hangup::MaxDuration | Hangup::Transferred => {
                Reason::new("SIP", 200, &self.text())
            }
            Hangup::Shutdown(why) => Reason::new("SIP", 503, why),
            Hangup::NoAnswer(why) => Reason::new("SIP", 488, why),
            Hangup::AgentUnavailable(_) => Reason::new("SIP", 503, "the agent is unavailable"),
            Hangup::Media(e) => e.reason(),
        }
    }

    /// The final response while the call rings: status, phrase and headers.
    fn refusal(&self) -> (StatusCode, &'static str, Vec<(HeaderName, String)>) {
        let retry = || (HeaderName::RetryAfter, "5".to_string());
        match self {
            Hangup::Rest => (StatusCode::TEMPORARILY_UNAVAILABLE, "Call Ended By Agent", vec![]),
            Hangup::Admin => (StatusCode::TEMPORARILY_UNAVAILABLE, "Call Ended By Admin", vec![]),
            Hangup::Shutdown(_) => (StatusCode::SERVICE_UNAVAILABLE, "Shutting Down", vec![retry()]),
            // The caller's side (any Twilio customer's trunk can send here) learns that the agent is
            // unavailable, not why: the error stays in the log and the call record. Twilio tries the next
            // origination URI on 503.
            Hangup::AgentUnavailable(_) => {
                let reason = String::from_utf8_lossy(&self.reason().to_bytes()).into_owned();
                (StatusCode::SERVICE_UNAVAILABLE, "Agent Unavailable", vec![retry(), (HeaderName::Reason, reason)])
            }
            Hangup::MaxDuration | Hangup::Transferred | Hangup::NoAnswer(_) | Hangup::Media(_) => {
                (StatusCode::TEMPORARILY_UNAVAILABLE, "Agent Hung Up", vec![])
            }
        }
    }
}

/// Where a call is, as the call layer sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Phase {
    /// Ringing while its agent is reached; our SDP waits for the 200.
    Ringing { answer: Bytes },
    /// Answered (when: `Active::answered`, kept after the phase moves on, for the call's duration).
    Answered,
    /// vocals ended it (a BYE or a final response went out); the endpoint reports when it is over.
    Ending,
}

/// Whether a call's media can be answered at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Readiness {
    Now,
    Later,
}

/// What the agent is told about the call (`start.customParameters`, the call and account ids).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallInfo {
    /// vocals' id for the call (`vc_…`), the key of its record.
    pub id: String,
    /// The agent the call was routed to, as it was then (later changes reach the next call).
    pub agent: Arc<AgentConfig>,
    /// The caller: an E.164 number when the From user is one, else the From URI.
    pub from: String,
    /// The dialed number, E.164.
    pub to: String,
    /// `X-Twilio-CallSid` and `X-Twilio-AccountSid` when the call came from Twilio.
    pub call_sid: Option<String>,
    pub account_sid: Option<String>,
    /// Headers passed on to the agent (TWILIO.md §1): `X-*`, `P-Asserted-Identity`, `Diversion`.
    pub headers: Vec<(String, String)>,
}

impl CallInfo {
    fn from_invite(invite: &Request, agent: Arc<AgentConfig>, dialed: String) -> CallInfo {
        let h = &invite.headers;
        let from = caller(invite);
        let text = |v: &[u8]| String::from_utf8_lossy(v).into_owned();
        let header = |name: &str| h.get(&HeaderName::new(name)).map(text);
        let headers = h
            .iter()
            .filter(|x| {
                let name = x.name.as_str();
                name.starts_with("X-") || name.starts_with("x-") || name == "P-Asserted-Identity" || name == "Diversion"
            })
            .map(|x| (x.name.as_str().into_owned(), text(x.value)))
            .collect();
        CallInfo {
            id: String::new(),
            agent,
            from,
            to: dialed,
            call_sid: header("X-Twilio-CallSid"),
            account_sid: header("X-Twilio-AccountSid"),
            headers,
        }
    }
}

/// The caller: an E.164 number when the From user is one, else the From URI.
fn caller(invite: &Request) -> String {
    let from = invite.headers.from();
    from.map(|f| E164::from_uri(&f.uri).map(|n| n.to_string()).unwrap_or_else(|_| f.uri.to_string()))
        .unwrap_or_default()
}

/// Ports tried for one call before it is refused with 503 (others may be bound by other programs).
const BIND_ATTEMPTS: usize = 8;

struct Active {
    port: u16,
    info: CallInfo,
    phase: Phase,
    deadline: Instant,
    /// We made the offer (the INVITE had none): the answer must come in the ACK.
    offered: bool,
    /// Our SRTP key for this call (used only when the stream is SRTP), kept across re-INVITEs, and the
    /// number's SRTP policy as it was when the call came.
    key: KeySalt,
    srtp: SrtpPolicy,
    codec: &'static str,
    /// Why vocals ended the call, once it did (for the record), and whether it was ringing then.
    ending: Option<(Hangup, bool)>,
    /// When the INVITE came, and whether it was ever answered.
    invited: Instant,
    answered: Option<Instant>,
    /// REFERs sent for the agent's transfers.
    transfers: u32,
}

/// The calls in progress, as signalling sees them.
pub struct Calls {
    config: CallConfig,
    media: Box<dyn MediaPlane>,
    ports: PortPool,
    active: HashMap<CallRef, Active>,
    /// The live calls by CallSid (the REST hang-up finds calls by it, and one is never live twice).
    by_call_sid: HashMap<String, CallRef>,
    session_ids: u64,
    call_ids: u64,
}

impl Calls {
    pub fn new(config: CallConfig, media: Box<dyn MediaPlane>) -> Calls {
        // A port rests 2 s after its call, past any late packet of that call.
        let ports = PortPool::new(config.rtp_ports, Duration::from_secs(2));
        Calls { config, media, ports, active: HashMap::new(), by_call_sid: HashMap::new(), session_ids: 0, call_ids: 0 }
    }

    pub fn active(&self) -> usize {
        self.active.len()
    }

    /// Reacts to one endpoint event.
    pub fn on_event(&mut self, now: Instant, ep: &mut Endpoint, event: &Event) {
        match event {
            Event::IncomingCall { call, invite, .. } => self.incoming(now, ep, *call, invite),
            Event::CallEnded { call, why } => {
                if let Some(a) = self.active.remove(call) {
                    if let Some(sid) = &a.info.call_sid {
                        self.by_call_sid.remove(sid);
                    }
                    self.ended(&a, why);
                    self.media.close(*call);
                    self.ports.release(now, a.port);
                    self.gauge();
                }
            }
            Event::ReInvite { call, offer } => self.reinvite(ep, now, *call, offer.as_ref()),
            Event::CallConfirmed { call, answer } => self.confirmed(ep, now, *call, answer.as_ref()),
            Event::ReferAnswered { call, status } => {
                let verdict = if status.is_success() { TransferStatus::Accepted } else { TransferStatus::Refused };
                self.media.transfer_status(*call, verdict, status.as_u16());
            }
            Event::ReferNotify { call, status, done } => self.transfer_progress(now, ep, *call, *status, *done),
            Event::Dtmf { call, digit, duration_ms } => {
                if let Some(a) = self.active.get(call) {
                    tracing::info!(call = %a.info.id, %digit, ?duration_ms, "DTMF (SIP INFO)");
                    self.media.dtmf(*call, *digit);
                }
            }
            _ => {}
        }
    }

    fn incoming(&mut self, now: Instant, ep: &mut Endpoint, call: CallRef, invite: &Request) {
        let routed = match route(invite, self.config.numbers.as_ref()) {
            Ok(r) => r,
            Err(reject) => {
                count_invite(reject.status().as_u16());
                let to = dialed_number(invite).map_or_else(|| invite.uri.to_string(), |n| n.to_string());
                let mut record = self.new_record(invite, None, to);
                self.refused(&mut record, reject.status(), &reject.to_string());
                return ep.reject(now, call, reject.status(), &reject.to_string(), &[]);
            }
        };
        // A CallSid names one live call (the REST hang-up finds calls by it): a second INVITE carrying one in
        // use is refused, not taken as another call.
        let sid = invite.headers.get(&HeaderName::new("X-Twilio-CallSid")).map(<[u8]>::trim_ascii);
        if let Some(sid) = sid.and_then(|s| std::str::from_utf8(s).ok())
            && self.by_call_sid.contains_key(sid)
        {
            let status = StatusCode::new(482).unwrap_or(StatusCode::FORBIDDEN);
            count_invite(status.as_u16());
            let to = routed.dialed.to_string();
            let mut record = self.new_record(invite, None, to);
            record.call_sid = None;
            self.refused(&mut record, status, "the CallSid is already in use by a call in progress");
            return ep.reject(now, call, status, "CallSid Already In Use", &[]);
        }
        let srtp = routed.srtp.unwrap_or(self.config.srtp);
        let mut info = CallInfo::from_invite(invite, routed.agent, routed.dialed.to_string());
        let mut record = self.new_record(invite, Some(&info), info.to.clone());
        info.id = record.id.clone();
        info.call_sid = record.call_sid.clone();
        info.account_sid.get_or_insert_with(|| self.config.default_account_sid.clone());
        let offered = invite.body.is_empty();
        let key = (self.config.srtp_keys)();
        let negotiated = if offered {
            None
        } else {
            match Offer::parse(&invite.body).and_then(|o| sdp::negotiate(&o, srtp, key)) {
                Ok(neg) => Some(neg),
                Err(e) => {
                    let warning = [(HeaderName::Warning, e.warning("vocals"))];
                    let status = StatusCode::new(e.status()).unwrap_or(StatusCode::NOT_ACCEPTABLE_HERE);
                    count_invite(status.as_u16());
                    self.refused(&mut record, status, &e.to_string());
                    return ep.reject(now, call, status, &e.to_string(), &warning);
                }
            }
        };
        // No offer: ours goes in the 200 and the answer comes in the ACK (RFC 3261 §13.2.1); until then the
        // stream is what we offered, with no remote address.
        let stream = negotiated.as_ref().map_or_else(our_offer, Stream::from);
        let codec = negotiated.as_ref().map_or(Codec::Pcmu, |n| n.codec).name();
        let Some((port, readiness)) = self.open_media(now, call, &info, stream) else {
            count_invite(503);
            self.refused(&mut record, StatusCode::SERVICE_UNAVAILABLE, "no RTP port available");
            let retry = [(HeaderName::RetryAfter, "5".to_string())];
            return ep.reject(now, call, StatusCode::SERVICE_UNAVAILABLE, "No RTP Port Available", &retry);
        };
        self.write(CallWrite::Start(Box::new(record)));
        let local = self.local(port);
        let sdp = match &negotiated {
            Some(neg) => sdp::answer(neg, &local),
            None => sdp::offer(&local, offer_key(srtp, key)),
        };
        let deadline = now + self.config.max_call_duration;
        let active = Active {
            port,
            info,
            phase: Phase::Ringing { answer: sdp.clone() },
            deadline,
            offered,
            key,
            srtp,
            codec,
            ending: None,
            invited: now,
            answered: None,
            transfers: 0,
        };
        if let Some(sid) = &active.info.call_sid {
            self.by_call_sid.insert(sid.clone(), call);
        }
        self.active.insert(call, active);
        self.gauge();
        ep.ringing(now, call);
        if readiness == Readiness::Now {
            self.media_ready(now, ep, call);
        }
    }

    /// Answers a ringing call and records it.
    fn answer(&mut self, now: Instant, ep: &mut Endpoint, call: CallRef, sdp: Bytes) {
        count_invite(200);
        ep.answer(now, call, sdp);
        let Some(a) = self.active.get_mut(&call) else { return };
        a.phase = Phase::Answered;
        a.answered = Some(now);
        metrics::histogram!(crate::metrics::CALL_SETUP).record(now.duration_since(a.invited).as_secs_f64());
        tracing::info!(call = %a.info.id, agent = %a.info.agent.name, to = %a.info.to, "call answered");
        let write = CallWrite::Answered { id: a.info.id.clone(), at: now_rfc3339(), codec: a.codec.to_string() };
        self.write(write);
    }

    /// A call record as the INVITE describes it (with a CallSid made up for calls not from Twilio).
    fn new_record(&mut self, invite: &Request, info: Option<&CallInfo>, to: String) -> CallRecord {
        let text = |v: &[u8]| String::from_utf8_lossy(v).into_owned();
        let mut call_sid = invite.headers.get(&HeaderName::new("X-Twilio-CallSid")).map(text);
        self.call_ids += 1;
        if call_sid.is_none() {
            // Random (the OS CSPRNG), not a counter: a CallSid names a call to the REST hang-up.
            let (a, b) = (crate::media::srtp::os_random_u64(), crate::media::srtp::os_random_u64());
            call_sid = Some(format!("CA{a:016x}{b:016x}"));
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

    /// Records a call refused before it started.
    fn refused(&self, record: &mut CallRecord, status: StatusCode, why: &str) {
        record.end_at = Some(now_rfc3339());
        record.end_reason = Some(why.to_string());
        record.sip_status = Some(status.as_u16());
        self.write(CallWrite::Start(Box::new(std::mem::take(record))));
    }

    fn write(&self, write: CallWrite) {
        if let Some(records) = &self.config.records {
            records.send(write);
        }
    }

    /// Ends a call on our side, the one way every cause takes: while it rings, the final response the cause
    /// calls for; once answered, our BYE with the cause's Reason. The first cause is the one recorded; a call
    /// already ending is left to end.
    fn end(&mut self, now: Instant, ep: &mut Endpoint, call: CallRef, why: Hangup) {
        let Some(a) = self.active.get_mut(&call) else { return };
        let phase = std::mem::replace(&mut a.phase, Phase::Ending);
        match phase {
            Phase::Ending => {}
            Phase::Ringing { .. } => {
                let (status, phrase, headers) = why.refusal();
                if matches!(why, Hangup::AgentUnavailable(_)) {
                    count_invite(status.as_u16());
                }
                a.ending = Some((why, true));
                ep.reject(now, call, status, phrase, &headers);
            }
            Phase::Answered => {
                let reason = why.reason();
                a.ending = Some((why, false));
                ep.hangup(now, call, Some(reason));
            }
        }
    }

    /// Whether the call rings (its agent is being reached).
    pub fn is_ringing(&self, call: CallRef) -> bool {
        self.active.get(&call).is_some_and(|a| matches!(a.phase, Phase::Ringing { .. }))
    }

    /// The call is over: its record says when and why.
    fn ended(&mut self, a: &Active, why: &EndReason) {
        if let Some(answered) = a.answered {
            metrics::histogram!(crate::metrics::CALL_DURATION).record(answered.elapsed().as_secs_f64());
        }
        let ending = a.ending.as_ref().map(|(why, ringing)| if *ringing { why.text_ringing() } else { why.text() });
        let (reason, status) = match why {
            EndReason::Cancelled => ("the caller cancelled".to_string(), 487),
            EndReason::RemoteBye { reason: None } => ("the caller hung up".to_string(), 200),
            EndReason::RemoteBye { reason: Some(r) } => (format!("the caller hung up ({r})"), 200),
            EndReason::LocalBye => (ending.unwrap_or_else(|| "vocals hung up".into()), 200),
            EndReason::Rejected(s) => (ending.unwrap_or_else(|| "refused".into()), s.as_u16()),
            EndReason::AckTimeout => ("no ACK came for the 200 OK: vocals hung up".to_string(), 200),
            EndReason::ResponseTimeout => ("the final response could not be delivered".to_string(), 408),
        };
        self.write(CallWrite::Ended { id: a.info.id.clone(), at: now_rfc3339(), reason, sip_status: status });
    }

    /// The agent is reached: the ringing call is answered.
    pub fn media_ready(&mut self, now: Instant, ep: &mut Endpoint, call: CallRef) {
        let Some(a) = self.active.get(&call) else { return };
        if let Phase::Ringing { answer } = &a.phase {
            let sdp = answer.clone();
            self.answer(now, ep, call, sdp);
        }
    }

    /// The agent could not be reached: the ringing call is refused with 503 (Twilio tries the next
    /// origination URI), never answered into silence.
    pub fn media_failed(&mut self, now: Instant, ep: &mut Endpoint, call: CallRef, why: &str) {
        let Some(a) = self.active.get(&call).filter(|a| matches!(a.phase, Phase::Ringing { .. })) else { return };
        tracing::warn!(call = %a.info.id, agent = %a.info.agent.name, %why, "refusing the call: agent unavailable");
        self.end(now, ep, call, Hangup::AgentUnavailable(why.to_string()));
    }

    /// Leases a port and opens the call's media on it, trying further ports while they are taken.
    fn open_media(&mut self, now: Instant, call: CallRef, info: &CallInfo, stream: Stream) -> Option<(u16, Readiness)> {
        for _ in 0..BIND_ATTEMPTS {
            let port = self.ports.lease(now, crate::media::srtp::os_random_u64())?;
            match self.media.open(call, port, info, stream) {
                Ok(readiness) => return Some((port, readiness)),
                Err(e) => {
                    tracing::warn!(port, error = %e, "RTP port unusable; trying another");
                    self.ports.release(now, port);
                }
            }
        }
        None
    }

    /// The Twilio-compatible REST hang-up: checks the account in the path and the Basic credentials (the
    /// account id and the auth token configured for the call's agent), then ends the call: BYE when it was
    /// answered, 487-style refusal while it rings.
    pub fn hangup_request(&mut self, now: Instant, ep: &mut Endpoint, req: &HangupRequest) -> HangupOutcome {
        let found = self.by_call_sid.get(&req.call_sid).and_then(|call| Some((*call, self.active.get(call)?)));
        let Some((call, active)) = found else { return HangupOutcome::UnknownCall };
        let account = active.info.account_sid.clone().unwrap_or_default();
        if account != req.account_sid {
            return HangupOutcome::UnknownCall;
        }
        let token = active.info.agent.auth_token.as_ref();
        if req.user != account || token.is_none_or(|t| !constant_time_eq(t.as_bytes(), req.password.as_bytes())) {
            return HangupOutcome::Unauthorized;
        }
        let ringing = matches!(active.phase, Phase::Ringing { .. });
        let summary = CallSummary {
            call_sid: req.call_sid.clone(),
            account_sid: account,
            from: active.info.from.clone(),
            to: active.info.to.clone(),
            status: if ringing { "canceled" } else { "completed" },
        };
        self.end(now, ep, call, Hangup::Rest);
        HangupOutcome::Done(summary)
    }

    /// The agent asks for a blind transfer (RFC 3515): REFER to `target`, a `+E.164` number (sent as
    /// `tel:+E164`, as Twilio requires) or a `sip:`/`tel:` URI, if the transfer policy (the agent's own, over
    /// the server's) allows it; otherwise no REFER, and the agent hears why.
    pub fn transfer(&mut self, now: Instant, ep: &mut Endpoint, call: CallRef, target: &str) {
        let Some(a) = self.active.get_mut(&call) else { return };
        let policy = a.info.agent.transfer.over(&self.config.transfer);
        let caller = E164::parse(&a.info.from).ok();
        match policy.check(target, caller.as_ref(), a.transfers) {
            Ok(uri) => {
                a.transfers += 1;
                metrics::counter!(crate::metrics::TRANSFERS, "result" => "refer").increment(1);
                tracing::info!(call = %a.info.id, %uri, "blind transfer (REFER)");
                ep.refer(now, call, &uri);
            }
            Err(refusal) => {
                let kind = refusal.kind();
                metrics::counter!(crate::metrics::TRANSFERS, "result" => "refused", "reason" => kind).increment(1);
                let shown: String = target.chars().take(256).collect();
                let (id, agent) = (&a.info.id, &a.info.agent.name);
                tracing::warn!(call = %id, %agent, target = ?shown, kind, reason = %refusal, "transfer refused");
                self.media.transfer_refused(call, refusal.to_string());
            }
        }
    }

    /// Ends every call (the drain timeout passed): BYE with `why`, or a refusal while ringing.
    pub fn hangup_all(&mut self, now: Instant, ep: &mut Endpoint, why: &str) {
        let all: Vec<CallRef> = self.active.keys().copied().collect();
        for call in all {
            self.end(now, ep, call, Hangup::Shutdown(why.to_string()));
        }
    }

    /// The admin API's hang-up: the call whose vocals id or CallSid is `id` is ended (BYE when answered, 480
    /// while it rings). `false`: no such call here.
    pub fn end_call(&mut self, now: Instant, ep: &mut Endpoint, id: &str) -> bool {
        let found = self
            .by_call_sid
            .get(id)
            .copied()
            .or_else(|| self.active.iter().find(|(_, a)| a.info.id == id).map(|(call, _)| *call));
        let Some(call) = found else { return false };
        self.end(now, ep, call, Hangup::Admin);
        true
    }

    /// A NOTIFY about our REFER: progress for the agent; once the transfer target answered, our part of the
    /// call is over (RFC 5589 §6): BYE.
    fn transfer_progress(&mut self, now: Instant, ep: &mut Endpoint, call: CallRef, status: u16, done: bool) {
        let verdict = TransferStatus::of_notify(status);
        self.media.transfer_status(call, verdict, status);
        if done && verdict == TransferStatus::Completed {
            self.end(now, ep, call, Hangup::Transferred);
        }
    }

    /// The media asks for the call to end: our BYE, with a Reason that says why.
    pub fn media_ended(&mut self, now: Instant, ep: &mut Endpoint, call: CallRef, why: Ending) {
        self.end(now, ep, call, Hangup::Media(why));
    }

    /// When we made the offer, the ACK must carry a usable answer; otherwise the session cannot start and the
    /// call is ended with a BYE saying why.
    fn confirmed(&mut self, ep: &mut Endpoint, now: Instant, call: CallRef, answer: Option<&Bytes>) {
        let Some((key, srtp)) = self.active.get(&call).filter(|a| a.offered).map(|a| (a.key, a.srtp)) else { return };
        let outcome = match answer {
            None => Err("the ACK carried no SDP answer to our offer".to_string()),
            Some(body) => Offer::parse(body).and_then(|a| sdp::negotiate(&a, srtp, key)).map_err(|e| e.to_string()),
        };
        match outcome {
            Ok(neg) => self.media.update(call, Stream::from(&neg)),
            Err(why) => {
                tracing::info!(call = call.0, %why, "ending the call: no usable answer");
                self.end(now, ep, call, Hangup::NoAnswer(why));
            }
        }
    }

    /// Hold, resume or a new offer: answered on the same port with the RFC 3264 direction.
    fn reinvite(&mut self, ep: &mut Endpoint, now: Instant, call: CallRef, offer: Option<&Bytes>) {
        let Some((port, key, srtp)) = self.active.get(&call).map(|a| (a.port, a.key, a.srtp)) else { return };
        let local = self.local(port);
        let sdp = match offer {
            None => sdp::offer(&local, offer_key(srtp, key)),
            Some(body) => match Offer::parse(body).and_then(|o| sdp::negotiate(&o, srtp, key)) {
                Ok(neg) => {
                    self.media.update(call, Stream::from(&neg));
                    sdp::answer(&neg, &local)
                }
                Err(e) => {
                    let status = StatusCode::new(e.status()).unwrap_or(StatusCode::NOT_ACCEPTABLE_HERE);
                    return ep.reject(now, call, status, &e.to_string(), &[]);
                }
            },
        };
        ep.answer_reinvite(now, call, sdp);
    }

    fn local(&mut self, port: u16) -> Local {
        self.session_ids += 1;
        Local { address: self.config.media_ip, port, session_id: self.session_ids, session_version: 1 }
    }

    fn gauge(&self) {
        metrics::gauge!(crate::metrics::CALLS_ACTIVE).set(self.active.len() as f64);
        metrics::gauge!(crate::metrics::RTP_PORTS_IN_USE).set(self.ports.in_use() as f64);
        metrics::gauge!(crate::metrics::RTP_PORTS).set(self.ports.size() as f64);
    }

    /// When the next call reaches its maximum duration.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.active.values().map(|a| a.deadline).min()
    }

    /// Hangs up calls past their maximum duration (the first way vocals ends a call itself).
    pub fn handle_timeout(&mut self, now: Instant, ep: &mut Endpoint) {
        let due: Vec<CallRef> = self.active.iter().filter(|(_, a)| a.deadline <= now).map(|(c, _)| *c).collect();
        for call in due {
            if let Some(a) = self.active.get_mut(&call) {
                // Not again, whatever the endpoint does with the hang-up.
                a.deadline = now + Duration::from_secs(3600 * 24 * 365);
            }
            self.end(now, ep, call, Hangup::MaxDuration);
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

/// Equal bytes, compared in time that does not depend on where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The Reason text, and the call record's ending, of a call whose agent broke a limit.
pub fn violated(v: &Violation) -> String {
    format!("the agent broke a limit: {v}")
}

/// The Reason text, and the call record's ending, of a call whose agent stalled.
pub fn stalled(after: std::time::Duration) -> String {
    format!("the agent stalled: it took no audio for {} s", after.as_secs())
}
