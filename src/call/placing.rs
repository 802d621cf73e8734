//! Calls vocals places (issue 22's outbound direction), in the same call layer as the calls it answers: a
//! request is checked and queued behind its trunk's pace, dialled when its turn comes (an SDP offer on a leased
//! port, digest credentials for the trunk), followed through ringing to the answer (the agent's stream opens
//! then, as Twilio opens a `<Connect><Stream>`), cancelled when it rings too long or is withdrawn, and ended
//! like any call. Each step is a Twilio call status (queued, initiated, ringing, in-progress, then completed,
//! busy, no-answer, failed or canceled), kept for `GET …/Calls/{CA}.json` and sent to the status callback.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;

use super::outbound::{Refusal, Trunk};
use super::{AgentLink, Call, CallInfo, Calls, Command, Hangup, MediaCommand, Phase, SipCommand, offer_key, our_offer};
use crate::agent::config::AgentConfig;
use crate::e164::E164;
use crate::media::session::Stream;
use crate::sdp::{self, Offer, SrtpPolicy};
use crate::sip::auth::Credentials;
use crate::sip::endpoint::{CallRef, Dial, EndReason, Peer, Transport};
use crate::sip::message::{HeaderName, StatusCode, Uri};
use crate::store::catalog::CallWrite;
use crate::store::{CallRecord, now_rfc3339};
use crate::twilio::calls::{CallStatus, CallView, HttpMethod, StatusEvent, callback_params};

/// Outbound calls whose status stays readable after they end (the oldest go first).
const KEPT: usize = 10_000;

/// A call to place, checked by the API that took it.
#[derive(Clone, Debug)]
pub struct DialRequest {
    /// The trunk the call leaves on (the account's: `[[trunks]]`, or the one vocals made for a linked account).
    pub trunk: Arc<Trunk>,
    /// The call's CallSid, made by the API (a `Url` is fetched with it before the call is queued).
    pub sid: String,
    pub account_sid: String,
    pub to: E164,
    pub from: E164,
    /// Who the call's audio goes to once answered (a `<Stream>`'s URL, or an agent of the admin API);
    /// `None`: the TwiML was `<Hangup/>`, and the call is hung up once answered.
    pub agent: Option<Arc<AgentConfig>>,
    /// The stream's `<Parameter>`s: the agent's `start.customParameters`.
    pub parameters: Vec<(String, String)>,
    /// How long it may ring (`Timeout`); `None`: `outbound.ring_timeout`.
    pub ring_timeout: Option<Duration>,
    pub callback: Option<StatusCallback>,
    /// Where the INVITE goes: the trunk's host (or the outbound proxy), resolved by the API.
    pub next_hop: SocketAddr,
}

/// Where a call's status changes are posted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusCallback {
    pub url: String,
    pub method: HttpMethod,
    /// The events asked for; Twilio's default is `completed` alone.
    pub events: Vec<StatusEvent>,
}

/// A status change to post: the request the shell sends (signed with the account's auth token).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Callback {
    pub url: String,
    pub method: HttpMethod,
    pub auth_token: String,
    pub params: Vec<(String, String)>,
}

/// An outbound call's Twilio side: its status as Twilio words it, and what its request asked.
#[derive(Clone, Debug)]
pub(super) struct Placed {
    pub(super) view: CallView,
    auth_token: String,
    callback: Option<StatusCallback>,
    sequence: u32,
    pub(super) ring_deadline: Instant,
    /// The TwiML was `<Hangup/>`: hung up once answered.
    hang_up: bool,
    /// Why we cancelled it, if we did before the answer: `no-answer` (it rang too long) or `canceled`.
    cancelled: Option<CallStatus>,
}

/// A request waiting for its turn.
#[derive(Clone, Debug)]
pub(super) struct Pending {
    request: DialRequest,
    placed: Placed,
    record_id: String,
}

impl Calls {
    /// Takes a call request: it is queued (status `queued`) behind its trunk's pace, or refused.
    pub(super) fn dial(&mut self, now: Instant, req: DialRequest) -> Result<CallView, Refusal> {
        if req.trunk.account_sid != req.account_sid {
            return Err(Refusal::NoTrunk);
        }
        let auth_token = req.trunk.auth_token.clone();
        let limit = self.config.outbound.max_per_account;
        if limit > 0 {
            let live = self
                .calls
                .values()
                .filter(|c| c.placed.as_ref().is_some_and(|p| p.view.account_sid == req.account_sid))
                .count();
            let queued = self.queued_for(&req.account_sid);
            if live + queued >= limit {
                return Err(Refusal::AccountLimit(limit));
            }
        }
        let sid = req.sid.clone();
        self.call_ids += 1;
        let record_id = format!("vc_{:016x}{:08x}", self.config.seed, self.call_ids);
        let view = CallView {
            sid: sid.clone(),
            account_sid: req.account_sid.clone(),
            to: req.to.to_string(),
            from: req.from.to_string(),
            status: CallStatus::Queued,
            direction: "outbound-api",
            created: SystemTime::now(),
            started: None,
            ended: None,
            sip_response_code: None,
        };
        let ring = req.ring_timeout.unwrap_or(self.config.outbound.ring_timeout);
        let placed = Placed {
            view: view.clone(),
            auth_token,
            callback: req.callback.clone(),
            sequence: 0,
            ring_deadline: now + ring,
            hang_up: req.agent.is_none(),
            cancelled: None,
        };
        let record = CallRecord {
            id: record_id.clone(),
            call_sid: Some(sid.clone()),
            from: req.from.to_string(),
            to: req.to.to_string(),
            agent: req.agent.as_ref().map(|a| a.name.clone()),
            node: self.config.node.clone(),
            invite_at: now_rfc3339(),
            ..CallRecord::default()
        };
        let account = req.account_sid.clone();
        let hop = req.next_hop;
        let pending = Pending { request: req, placed, record_id };
        self.pacer.push(&account, hop, pending).map_err(|(why, _)| why)?;
        self.write(CallWrite::Start(Box::new(record)));
        self.keep(view.clone());
        tracing::info!(sid = %view.sid, to = %view.to, from = %view.from, "outbound call queued");
        // A request whose turn has come leaves the queue now, not at the next timer: requests arriving
        // together count against the queue only for as long as they really wait.
        self.dial_due(now);
        Ok(view)
    }

    fn queued_for(&self, account: &str) -> usize {
        let mut n = 0;
        self.pacer.for_each(|p: &Pending| n += usize::from(p.placed.view.account_sid == account));
        n
    }

    /// Dials every request whose turn has come.
    pub(super) fn dial_due(&mut self, now: Instant) {
        while let Some((hop, pending)) = self.pacer.next(now) {
            self.place(now, hop, pending);
        }
    }

    /// The INVITE for one request: a leased port in our offer, the trunk's credentials.
    fn place(&mut self, now: Instant, hop: SocketAddr, p: Pending) {
        let Pending { request, mut placed, record_id } = p;
        let trunk = request.trunk.clone();
        let Some(port) = self.ports.lease(now, crate::media::srtp::os_random_u64()) else {
            return self.not_placed(placed, &record_id, 503, "no RTP port available");
        };
        let srtp = if trunk.termination.transport == Transport::Tls { SrtpPolicy::Required } else { self.config.srtp };
        let key = (self.config.srtp_keys)();
        let description = self.local(port);
        let offer = sdp::offer(&description, offer_key(srtp, key));
        let origin = super::SdpOrigin { id: description.session_id, version: 1, last: Some(offer.clone()) };
        let mut host = self.config.outbound.trunk_host(&trunk.termination);
        if host.contains(':') {
            host = format!("[{host}]");
        }
        if let Some(port) = trunk.termination.port {
            host = format!("{host}:{port}");
        }
        // The trunk's transport, when not UDP, is part of its URI (RFC 3261 §19.1.1): a proxy in between sends
        // it on the same way.
        let transport_param = match trunk.termination.transport {
            Transport::Udp => "",
            Transport::Tcp => ";transport=tcp",
            Transport::Tls => ";transport=tls",
        };
        let target = format!("sip:{}@{host}{transport_param}", request.to);
        let Ok(target) = Uri::parse(&Bytes::from(target)) else {
            self.ports.release(now, port);
            return self.not_placed(placed, &record_id, 0, "the trunk's termination URI makes no Request-URI");
        };
        let transport = self.config.outbound.next_hop(&trunk).transport;
        let Some(local) = self.config.sip_local.of(transport) else {
            self.ports.release(now, port);
            let why = format!("vocals has no {} listener to name in the INVITE's Via and Contact", transport.as_str());
            return self.not_placed(placed, &record_id, 503, &why);
        };
        // A listener on every address (0.0.0.0, ::) is named by the address our SDP names, unless
        // `sip.public_host` names us.
        let local =
            if local.ip().is_unspecified() { SocketAddr::new(self.config.media_ip, local.port()) } else { local };
        let next_hop = Peer { addr: hop, local, transport, conn: None };
        let credentials = match (&trunk.username, &trunk.password) {
            (Some(username), Some(password)) => {
                Some(Credentials { username: username.clone(), password: password.clone() })
            }
            _ => None,
        };
        let dial = Dial {
            target,
            next_hop,
            from_user: request.from.to_string(),
            sdp: offer,
            credentials,
            headers: vec![(HeaderName::new("X-Vocals-CallSid"), placed.view.sid.clone())],
        };
        placed.view.status = CallStatus::Initiated;
        let agent = request.agent.clone().unwrap_or_default();
        let record = crate::media::recording::RecordMode::of_call(self.config.record, agent.record, None);
        let info = CallInfo {
            id: record_id,
            agent,
            from: request.from.to_string(),
            to: request.to.to_string(),
            call_sid: Some(placed.view.sid.clone()),
            account_sid: Some(request.account_sid.clone()),
            headers: request.parameters.clone(),
            record,
        };
        let call = Call {
            port,
            info,
            phase: Phase::Dialing,
            deadline: now + self.config.max_call_duration,
            negotiated: None,
            stream: our_offer(),
            key,
            srtp,
            agent: AgentLink::Connecting,
            ending: None,
            invited: now,
            answered: None,
            transfers: 0,
            placed: Some(Box::new(placed)),
            session: Default::default(),
            origin,
        };
        self.dialing.push_back(Box::new(call));
        self.sip(SipCommand::Dial(Box::new(dial)));
    }

    /// The endpoint took our INVITE under `call` (INVITEs are dialled and named in order).
    pub(super) fn dialed(&mut self, call: CallRef, sip_call_id: Option<String>) {
        let Some(mut c) = self.dialing.pop_front() else { return };
        if let Some(sip_call_id) = sip_call_id {
            self.write(CallWrite::Dialed { id: c.info.id.clone(), sip_call_id });
        }
        if let Some(sid) = &c.info.call_sid {
            self.by_call_sid.insert(sid.clone(), call);
        }
        tracing::info!(call = %c.info.id, to = %c.info.to, "outbound call: INVITE sent");
        let notes = c.placed.as_mut().map(|p| note(p, StatusEvent::Initiated));
        self.calls.insert(call, *c);
        self.gauge();
        self.status_changed(call, notes.flatten());
    }

    /// A request never dialled: its status is `failed` and its record says why.
    fn not_placed(&mut self, mut placed: Placed, record_id: &str, sip: u16, why: &str) {
        tracing::warn!(sid = %placed.view.sid, %why, "outbound call not placed");
        placed.view.status = CallStatus::Failed;
        placed.view.ended = Some(SystemTime::now());
        let status = if sip == 0 { 500 } else { sip };
        placed.view.sip_response_code = Some(status);
        let write =
            CallWrite::Ended { id: record_id.to_string(), at: now_rfc3339(), reason: why.into(), sip_status: status };
        self.write(write);
        let note = note(&mut placed, StatusEvent::Completed);
        finished(&placed.view);
        self.keep(placed.view.clone());
        if let Some(cb) = note {
            self.commands.push_back(Command::Callback(cb));
        }
    }

    /// A provisional response to our INVITE: the first 180 or 183 makes the call `ringing`.
    pub(super) fn progress(&mut self, call: CallRef, status: StatusCode, sdp: Option<&Bytes>) {
        if let Some(body) = sdp.filter(|_| self.config.outbound.early_media) {
            self.early_media(call, body);
        }
        let Some(p) = self.calls.get_mut(&call).and_then(|c| c.placed.as_mut()) else { return };
        if p.view.status != CallStatus::Initiated || !matches!(status.as_u16(), 180 | 183) {
            return;
        }
        p.view.status = CallStatus::Ringing;
        let cb = note(p, StatusEvent::Ringing);
        self.status_changed(call, cb);
    }

    /// A provisional response with SDP (`outbound.early_media`): the first one that fits our offer opens the
    /// call's media and its agent's stream now, so the agent hears the far end before the answer (ringback, an
    /// announcement). Later ones change nothing (the answer in the 200 does, RFC 3261 §13.2.1); one that does
    /// not fit is ignored, as the call may still be answered with one that does.
    fn early_media(&mut self, call: CallRef, body: &Bytes) {
        let Some(c) = self.calls.get_mut(&call) else { return };
        if c.phase != Phase::Dialing || c.negotiated.is_some() || c.placed.as_ref().is_some_and(|p| p.hang_up) {
            return;
        }
        match Offer::parse(body).and_then(|a| sdp::negotiate(&a, c.srtp, c.key)) {
            Ok(neg) => {
                c.stream = Stream::from(&neg);
                c.negotiated = Some(neg);
                tracing::info!(call = %c.info.id, to = %c.info.to, "outbound call: early media reaches the agent");
                let open = MediaCommand::Open { call, port: c.port, info: Box::new(c.info.clone()), stream: c.stream };
                self.media(open);
            }
            Err(e) => {
                tracing::info!(call = %c.info.id, error = %e, "early media ignored: its SDP does not fit our offer")
            }
        }
    }

    /// The far end answered: the answer must fit our offer (a 200 without SDP keeps the early media's); the call
    /// is `in-progress` and its agent's stream opens now, or, opened for early media, follows the answer.
    pub(super) fn answered(&mut self, now: Instant, call: CallRef, sdp: Option<&Bytes>) {
        let Some(c) = self.calls.get_mut(&call) else { return };
        if c.phase != Phase::Dialing {
            return;
        }
        let early = c.negotiated.take();
        let outcome = match (sdp, early.as_ref()) {
            (None, Some(neg)) => Ok(neg.clone()),
            (None, None) => Err("the 200 OK carried no SDP answer to our offer".to_string()),
            (Some(body), _) => {
                Offer::parse(body).and_then(|a| sdp::negotiate(&a, c.srtp, c.key)).map_err(|e| e.to_string())
            }
        };
        c.phase = Phase::Answered;
        c.answered = Some(now);
        let neg = match outcome {
            Ok(neg) => neg,
            Err(why) => {
                c.negotiated = early;
                tracing::info!(call = %c.info.id, %why, "ending the outbound call: no usable answer");
                return self.end(now, call, Hangup::NoAnswer(why));
            }
        };
        if c.placed.as_ref().is_some_and(|p| p.hang_up) {
            return self.end(now, call, Hangup::Twiml);
        }
        let stream = Stream::from(&neg);
        let moved = stream != c.stream;
        c.stream = stream;
        let codec = neg.codec.name().to_string();
        c.negotiated = Some(neg);
        let media = match early {
            None => Some(MediaCommand::Open { call, port: c.port, info: Box::new(c.info.clone()), stream }),
            Some(_) if moved => Some(MediaCommand::Update(call, stream)),
            Some(_) => None,
        };
        let write = CallWrite::Answered { id: c.info.id.clone(), at: now_rfc3339(), codec };
        metrics::histogram!(crate::metrics::CALL_SETUP).record(now.duration_since(c.invited).as_secs_f64());
        tracing::info!(call = %c.info.id, to = %c.info.to, "outbound call answered");
        let cb = c.placed.as_mut().and_then(|p| {
            p.view.status = CallStatus::InProgress;
            p.view.started = Some(SystemTime::now());
            note(p, StatusEvent::Answered)
        });
        self.write(write);
        if let Some(media) = media {
            self.media(media);
        }
        self.status_changed(call, cb);
    }

    /// An outbound call is over: its final status (`completed` once answered; otherwise what the far end
    /// answered, or why we cancelled), kept and posted.
    pub(super) fn placed_ended(&mut self, c: &mut Call, why: &EndReason) {
        let answered = c.answered.is_some();
        let Some(p) = c.placed.as_mut() else { return };
        let (status, code) = match why {
            _ if answered => (CallStatus::Completed, 200),
            EndReason::Failed { status, .. } => match p.cancelled {
                Some(ours) if status.as_u16() == 487 => (ours, 487),
                _ => (CallStatus::from_sip(status.as_u16()), status.as_u16()),
            },
            EndReason::NoResponse => (CallStatus::Failed, 408),
            EndReason::NotDialed { .. } | EndReason::Unreachable { .. } => (CallStatus::Failed, 503),
            _ => (p.cancelled.unwrap_or(CallStatus::Failed), 487),
        };
        p.view.status = status;
        p.view.sip_response_code = Some(code);
        p.view.ended = Some(SystemTime::now());
        let cb = note(p, StatusEvent::Completed);
        finished(&p.view);
        let view = p.view.clone();
        self.keep(view);
        if let Some(cb) = cb {
            self.commands.push_back(Command::Callback(cb));
        }
    }

    /// The record's ending of an outbound call that was never answered.
    pub(super) fn placed_reason(c: &Call, why: &EndReason) -> Option<(String, u16)> {
        let p = c.placed.as_ref()?;
        if c.answered.is_some() {
            return None;
        }
        Some(match (why, p.cancelled) {
            (_, Some(CallStatus::NoAnswer)) => ("no answer: the call rang until its timeout".into(), 487),
            (_, Some(_)) => ("cancelled before the answer".into(), 487),
            (EndReason::Failed { status, phrase }, None) => {
                (format!("the far end answered {} {phrase}", status.as_u16()), status.as_u16())
            }
            (EndReason::NoResponse, None) => ("no response from the trunk".into(), 408),
            (EndReason::NotDialed { why }, None) => (format!("not dialled: {why}"), 503),
            (EndReason::Unreachable { why }, None) => (format!("the trunk is unreachable: {why}"), 503),
            (other, None) => (format!("ended before the answer ({other:?})"), 500),
        })
    }

    /// Cancels calls that rang past their timeout (`no-answer`).
    pub(super) fn ring_timeouts(&mut self, now: Instant) {
        let due: Vec<CallRef> = self
            .calls
            .iter()
            .filter(|(_, c)| c.phase == Phase::Dialing && c.placed.as_ref().is_some_and(|p| p.ring_deadline <= now))
            .map(|(call, _)| *call)
            .collect();
        for call in due {
            if let Some(p) = self.calls.get_mut(&call).and_then(|c| c.placed.as_mut()) {
                p.cancelled = Some(CallStatus::NoAnswer);
            }
            self.cancel(call);
        }
    }

    /// Withdraws a call not answered yet: CANCEL (the endpoint sends it once a provisional came).
    pub(super) fn cancel(&mut self, call: CallRef) {
        let Some(c) = self.calls.get_mut(&call) else { return };
        if c.phase != Phase::Dialing {
            return;
        }
        c.phase = Phase::Ending;
        if let Some(p) = c.placed.as_mut() {
            p.cancelled.get_or_insert(CallStatus::Canceled);
        }
        self.sip(SipCommand::Cancel(call));
    }

    /// Withdraws a request still queued (the REST `Status=canceled`); whether it was there.
    pub(super) fn withdraw(&mut self, sid: &str) -> Option<CallView> {
        let mut found = None;
        self.pacer.retain(|p: &Pending| {
            if p.placed.view.sid == sid {
                found = Some((p.placed.clone(), p.record_id.clone()));
                return false;
            }
            true
        });
        let (mut placed, record_id) = found?;
        placed.view.status = CallStatus::Canceled;
        placed.view.ended = Some(SystemTime::now());
        let write = CallWrite::Ended {
            id: record_id,
            at: now_rfc3339(),
            reason: "cancelled while queued".into(),
            sip_status: 487,
        };
        self.write(write);
        let cb = note(&mut placed, StatusEvent::Completed);
        finished(&placed.view);
        self.keep(placed.view.clone());
        if let Some(cb) = cb {
            self.commands.push_back(Command::Callback(cb));
        }
        Some(placed.view)
    }

    /// Withdraws every request still queued (the server is shutting down).
    pub(super) fn withdraw_all(&mut self) {
        let mut sids = Vec::new();
        self.pacer.for_each(|p: &Pending| sids.push(p.placed.view.sid.clone()));
        for sid in sids {
            self.withdraw(&sid);
        }
    }

    /// A queued request's auth token, for the REST API's check.
    pub(super) fn queued_token(&self, sid: &str) -> Option<(String, String)> {
        let mut found = None;
        self.pacer.for_each(|p: &Pending| {
            if p.placed.view.sid == sid {
                found = Some((p.placed.view.account_sid.clone(), p.placed.auth_token.clone()));
            }
        });
        found
    }

    /// An outbound call's status as Twilio words it: live, queued or recently ended.
    pub fn view(&self, sid: &str) -> Option<CallView> {
        let live = self.by_call_sid.get(sid).and_then(|call| self.calls.get(call)).and_then(|c| c.placed.as_ref());
        live.map(|p| p.view.clone()).or_else(|| self.kept.iter().rev().find(|v| v.sid == sid).cloned())
    }

    /// Keeps an outbound call's latest view (bounded: the oldest go first).
    fn keep(&mut self, view: CallView) {
        self.kept.retain(|v| v.sid != view.sid);
        if self.kept.len() >= KEPT {
            self.kept.pop_front();
        }
        self.kept.push_back(view);
    }

    fn status_changed(&mut self, call: CallRef, callback: Option<Callback>) {
        if let Some(view) = self.calls.get(&call).and_then(|c| c.placed.as_ref()).map(|p| p.view.clone()) {
            self.keep(view);
        }
        if let Some(cb) = callback {
            self.commands.push_back(Command::Callback(cb));
        }
    }
}

/// Counts an outbound call by its final status (`vocals_outbound_calls_total{status}`).
fn finished(view: &CallView) {
    metrics::counter!(crate::metrics::OUTBOUND_CALLS, "status" => view.status.as_str()).increment(1);
    tracing::info!(sid = %view.sid, status = view.status.as_str(), sip = ?view.sip_response_code, "outbound call over");
}

/// The status callback for `event`, if the request asked for it; each call's callbacks are numbered from 0.
fn note(p: &mut Placed, event: StatusEvent) -> Option<Callback> {
    let cb = p.callback.as_ref()?;
    let wanted = if cb.events.is_empty() { event == StatusEvent::Completed } else { cb.events.contains(&event) };
    if !wanted {
        return None;
    }
    let params = callback_params(&p.view, p.sequence, event);
    p.sequence += 1;
    Some(Callback { url: cb.url.clone(), method: cb.method, auth_token: p.auth_token.clone(), params })
}

/// A bounded FIFO of recently ended outbound calls' views.
pub(super) type Kept = VecDeque<CallView>;
