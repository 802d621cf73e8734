//! The UAS rules: what each received request gets (RFC 3261 §8.2, §9.2, §12.2.2, §13.3, §15.1.2), and the
//! call layer's commands (ring, answer, reject, hang up) turned into responses and requests.

use std::time::Instant;

use bytes::Bytes;

use super::{Call, CallRef, DropReason, EndReason, Endpoint, Event, InviteTx, NonInviteTx, Peer, Phase};
use crate::sip::dialog::{Dialog, DialogId};
use crate::sip::message::typed::{Dtmf, DtmfRelay, Reason, Sipfrag};
use crate::sip::message::{
    Framing, HeaderName, Message, Method, ParseError, Request, Response, StatusCode, Uri, error_response,
};
use crate::sip::ratelimit::Verdict;
use crate::sip::session_timer::{self, UasTimer};
use crate::sip::transaction::{ServerInvite, ServerNonInvite, TransactionKey};
use crate::sip::transport;

/// Methods vocals answers (Allow).
pub(crate) const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, NOTIFY";
/// Bodies vocals understands (Accept).
pub(crate) const ACCEPT: &str = "application/sdp, application/dtmf-relay, application/dtmf";
/// Seconds a 503 asks the peer to wait (Twilio fails over to the next origination URI meanwhile).
const RETRY_AFTER: &str = "5";

impl Endpoint {
    /// Bytes received from `peer`: one datagram, or one message framed on a stream.
    pub fn handle(&mut self, now: Instant, peer: Peer, bytes: Bytes) {
        if !self.config.allow.allows(peer.addr.ip()) {
            self.not_allowed(now, peer, bytes);
            return;
        }
        let parsed = match peer.transport.framing() {
            Framing::Datagram => Message::parse_datagram(bytes.clone(), &self.config.limits),
            Framing::Stream => Message::parse_stream(bytes.clone(), &self.config.limits),
        };
        match parsed {
            Ok(Message::Request(req)) => self.on_request(now, peer, req),
            Ok(Message::Response(res)) => self.on_response(now, peer, res),
            Err(e) => self.malformed(peer, &bytes, &e),
        }
    }

    /// A stream whose next message cannot be framed (a bad or missing Content-Length, a message too large):
    /// the connection will be closed, but a request that can still be answered gets its 400 or 513 first.
    pub fn framing_error(&mut self, peer: Peer, bytes: &[u8], e: &ParseError) {
        if !self.config.allow.allows(peer.addr.ip()) {
            return self.event(Event::Dropped { why: DropReason::NotAllowed, from: peer.addr });
        }
        self.malformed(peer, bytes, e);
    }

    /// A source outside the allowlist: dropped silently, or refused with 403 when configured.
    fn not_allowed(&mut self, now: Instant, peer: Peer, bytes: Bytes) {
        self.event(Event::Dropped { why: DropReason::NotAllowed, from: peer.addr });
        if !self.config.reject_disallowed {
            return;
        }
        if let Ok(Message::Request(req)) = Message::parse_datagram(bytes, &self.config.limits)
            && req.method != Method::Ack
        {
            let res = self.response(&req, &peer, StatusCode::FORBIDDEN, None);
            let _ = now;
            self.transmit(peer, res.to_bytes());
        }
    }

    /// A message that does not parse: answered 400/505/513 when it is a request whose Via, From, To,
    /// Call-ID and CSeq can still be read, else dropped and counted.
    fn malformed(&mut self, peer: Peer, bytes: &[u8], e: &ParseError) {
        match error_response(bytes, e) {
            Some(res) => self.transmit(peer, res),
            None => self.event(Event::Dropped { why: DropReason::Malformed, from: peer.addr }),
        }
    }

    fn on_request(&mut self, now: Instant, peer: Peer, mut req: Request) {
        let peer = transport::receive_request(&mut req, peer);
        let key = match TransactionKey::for_request(&req) {
            Ok(k) => k,
            Err(e) => return self.malformed(peer, &req.to_bytes(), &e),
        };
        if req.method == Method::Ack {
            return self.on_ack(now, peer, &key, &req);
        }
        if let Some(t) = self.invites.get_mut(&key) {
            t.tx.on_invite_retransmission();
            return self.drain_invite(now, &key);
        }
        if let Some(t) = self.non_invites.get_mut(&key) {
            t.tx.on_retransmission();
            return self.drain_non_invite(&key);
        }
        // Bounds every new request meets, Twilio's edges included (they are exempt from the rates only):
        // lengths first, then the source's rate, then what the transactions may keep. Each answer here is
        // stateless: a flood of them leaves nothing behind.
        if let Some(problem) = self.oversized(&req) {
            return self.stateless(peer, &req, StatusCode::BAD_REQUEST, &problem);
        }
        match self.requests.check(now, peer.addr.ip()) {
            Verdict::Allow => {}
            Verdict::Refuse => {
                return self.stateless(
                    peer,
                    &req,
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Too Many Requests From This Source",
                );
            }
            Verdict::Drop => return self.event(Event::Dropped { why: DropReason::RateLimited, from: peer.addr }),
        }
        let options = req.method == Method::Options && !has_to_tag(&req);
        if !options && self.retained >= self.config.max_transaction_bytes {
            self.event(Event::Dropped { why: DropReason::OverBudget, from: peer.addr });
            return self.stateless(peer, &req, StatusCode::SERVICE_UNAVAILABLE, "Server Busy");
        }
        if self.invites.len() + self.non_invites.len() >= self.config.max_transactions {
            return self.refuse(now, peer, key, &req, StatusCode::SERVICE_UNAVAILABLE, "Too Many Transactions");
        }
        if let Some((status, phrase)) = self.precheck(&req) {
            return self.refuse(now, peer, key, &req, status, phrase);
        }
        match (&req.method, has_to_tag(&req)) {
            (Method::Cancel, _) => self.on_cancel(now, peer, key, &req),
            (Method::Invite, false) => self.new_call(now, peer, key, req),
            (_, true) => self.in_dialog(now, peer, key, req),
            // Out of a dialog, OPTIONS is answered statelessly (RFC 3261 §8.2.7 allows it): its 200 holds no
            // state worth keeping, and a retransmission is simply answered again.
            (Method::Options, false) => {
                let tag = self.ids.tag();
                let mut res = self.response(&req, &peer, StatusCode::OK, Some(&tag));
                capabilities(&mut res);
                self.transmit(peer, res.to_bytes());
            }
            (Method::Bye | Method::Info | Method::Update | Method::Notify | Method::Prack, false) => {
                self.respond_non_invite(now, peer, key, &req, StatusCode::CALL_DOES_NOT_EXIST, None, |_| {})
            }
            (_, false) => self.respond_non_invite(now, peer, key, &req, StatusCode::METHOD_NOT_ALLOWED, None, allow),
        }
    }

    /// Checks that refuse a request before anything else (§8.2.1–§8.2.3): URI scheme (416), Require (420),
    /// body type (415), and for an INVITE every header the dialog will need (400).
    fn precheck(&self, req: &Request) -> Option<(StatusCode, &'static str)> {
        if matches!(req.uri, Uri::Other(_)) {
            return Some((StatusCode::UNSUPPORTED_URI_SCHEME, "Unsupported URI Scheme"));
        }
        if req.method != Method::Cancel && unsupported(req).next().is_some() {
            return Some((StatusCode::BAD_EXTENSION, "Bad Extension"));
        }
        if !req.body.is_empty() {
            let accepted = match req.headers.content_type() {
                Ok(Some(ct)) => {
                    ct.is("application", "sdp")
                        || (req.method == Method::Info
                            && (ct.is("application", "dtmf-relay") || ct.is("application", "dtmf")))
                        || (req.method == Method::Notify && ct.is("message", "sipfrag"))
                }
                Ok(None) => false,
                Err(_) => return Some((StatusCode::BAD_REQUEST, "Bad Content-Type")),
            };
            if !accepted {
                return Some((StatusCode::UNSUPPORTED_MEDIA_TYPE, "Unsupported Media Type"));
            }
        }
        if req.method == Method::Invite && req.validate().is_err() {
            return Some((StatusCode::BAD_REQUEST, "Bad Request"));
        }
        None
    }

    /// A final refusal, in the right kind of transaction so retransmissions and the ACK are handled.
    fn refuse(
        &mut self,
        now: Instant,
        peer: Peer,
        key: TransactionKey,
        req: &Request,
        status: StatusCode,
        phrase: &str,
    ) {
        let detail = match status {
            StatusCode::BAD_REQUEST => req.validate().err().map(|e| e.to_string()),
            _ => None,
        };
        let phrase = detail.as_deref().unwrap_or(phrase).to_string();
        let tag = self.ids.tag();
        let mut res = self.response(req, &peer, status, Some(&tag)).with_reason(&phrase);
        match status {
            StatusCode::BAD_EXTENSION => {
                let unsupported: Vec<String> =
                    unsupported(req).map(|t| String::from_utf8_lossy(t).into_owned()).collect();
                res.headers.push(HeaderName::Unsupported, unsupported.join(", "));
            }
            // RFC 4028 §6: our smallest interval.
            StatusCode::SESSION_INTERVAL_TOO_SMALL => {
                res.headers.push(HeaderName::MinSe, self.config.min_se.to_string())
            }
            StatusCode::REQUEST_PENDING => res.headers.push(HeaderName::RetryAfter, "2"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => res.headers.push(HeaderName::Accept, ACCEPT),
            StatusCode::SERVICE_UNAVAILABLE => res.headers.push(HeaderName::RetryAfter, RETRY_AFTER),
            _ => {}
        }
        if req.method == Method::Invite {
            let mut tx = ServerInvite::new(peer.transport.is_reliable(), self.config.timers);
            tx.respond(now, status, res.to_bytes());
            let call = self.ids.call();
            self.invites.insert(key.clone(), InviteTx { tx, peer, call, bytes: 0 });
            self.drain_invite(now, &key);
        } else {
            let mut tx = ServerNonInvite::new(peer.transport.is_reliable(), self.config.timers);
            tx.respond(now, status, res.to_bytes());
            self.non_invites.insert(key.clone(), NonInviteTx { tx, peer, bytes: 0 });
            self.drain_non_invite(&key);
        }
    }

    /// A final response sent without a transaction (nothing kept: the answers to floods).
    fn stateless(&mut self, peer: Peer, req: &Request, status: StatusCode, phrase: &str) {
        if req.method == Method::Ack {
            return;
        }
        let tag = self.ids.tag();
        let mut res = self.response(req, &peer, status, Some(&tag)).with_reason(phrase);
        if status == StatusCode::SERVICE_UNAVAILABLE {
            res.headers.push(HeaderName::RetryAfter, RETRY_AFTER);
        }
        self.transmit(peer, res.to_bytes());
    }

    /// What of a request is longer than vocals takes (Call-ID, a From or To tag, the Via headers together),
    /// as a reason phrase that says which.
    fn oversized(&self, req: &Request) -> Option<String> {
        let c = &self.config;
        let call_id = req.headers.get(&HeaderName::CallId).map_or(0, <[u8]>::len);
        if call_id > c.max_call_id {
            return Some(format!("Call-ID Too Long ({call_id} bytes, at most {})", c.max_call_id));
        }
        for (name, header) in [("From", req.headers.from()), ("To", req.headers.to())] {
            let tag = header.ok().and_then(|h| h.tag().map(|t| t.len())).unwrap_or(0);
            if tag > c.max_tag {
                return Some(format!("{name} Tag Too Long ({tag} bytes, at most {})", c.max_tag));
            }
        }
        let via: usize = req.headers.get_all(&HeaderName::Via).map(<[u8]>::len).sum();
        if via > c.max_via {
            return Some(format!("Via Too Long ({via} bytes, at most {})", c.max_via));
        }
        None
    }

    /// A new INVITE: 100 Trying at once, then the call layer decides.
    fn new_call(&mut self, now: Instant, peer: Peer, key: TransactionKey, invite: Request) {
        if self.draining || self.calls.len() >= self.config.max_calls {
            let phrase = if self.draining { "Draining" } else { "Over Capacity" };
            return self.refuse(now, peer, key, &invite, StatusCode::SERVICE_UNAVAILABLE, phrase);
        }
        match self.limiter.check(now, peer.addr.ip()) {
            Verdict::Allow => {}
            Verdict::Refuse => {
                let phrase = "Too Many Calls From This Source";
                return self.refuse(now, peer, key, &invite, StatusCode::SERVICE_UNAVAILABLE, phrase);
            }
            Verdict::Drop => return self.event(Event::Dropped { why: DropReason::RateLimited, from: peer.addr }),
        }
        if let UasTimer::TooSmall(_) = session_timer::as_uas(&invite.headers, self.config.min_se) {
            return self.refuse(now, peer, key, &invite, too_small(), "Session Interval Too Small");
        }
        let mut tx = ServerInvite::new(peer.transport.is_reliable(), self.config.timers);
        let trying = self.response(&invite, &peer, StatusCode::TRYING, None);
        tx.respond(now, StatusCode::TRYING, trying.to_bytes());
        let call = self.ids.call();
        let to_tag = self.ids.tag();
        self.invites.insert(key.clone(), InviteTx { tx, peer, call, bytes: 0 });
        self.calls.insert(
            call,
            Call {
                invite: invite.clone(),
                invite_key: key.clone(),
                peer,
                to_tag,
                phase: Phase::Early,
                dialog: None,
                reinvite: None,
                outbound: None,
                session: Default::default(),
            },
        );
        let _ = self.timer_asked(call, &invite.headers);
        self.drain_invite(now, &key);
        self.event(Event::IncomingCall { call, invite: Box::new(invite), peer });
    }

    /// CANCEL (§9.2): 200 to the CANCEL; 487 to the INVITE if it has no final response yet.
    fn on_cancel(&mut self, now: Instant, peer: Peer, key: TransactionKey, cancel: &Request) {
        let Some(invite_key) = key.cancelled_invite().filter(|k| self.invites.contains_key(k)) else {
            return self.respond_non_invite(now, peer, key, cancel, StatusCode::CALL_DOES_NOT_EXIST, None, |_| {});
        };
        let call = self.invites[&invite_key].call;
        let to_tag = self.calls.get(&call).map(|c| c.to_tag.clone());
        self.respond_non_invite(now, peer, key, cancel, StatusCode::OK, to_tag.as_deref(), |_| {});
        let early = self.calls.get(&call).is_some_and(|c| c.phase == Phase::Early);
        if early {
            let c = &self.calls[&call];
            let res = self.response(&c.invite, &c.peer, StatusCode::REQUEST_TERMINATED, Some(&c.to_tag));
            if let Some(t) = self.invites.get_mut(&invite_key) {
                t.tx.respond(now, StatusCode::REQUEST_TERMINATED, res.to_bytes());
            }
            self.drain_invite(now, &invite_key);
            self.end_call(call, EndReason::Cancelled);
        }
    }

    /// ACK: for a non-2xx it belongs to the INVITE transaction (same branch); for our 2xx it is its own
    /// request, matched to the dialog (§13.3.1.4, §17.1.1.3).
    fn on_ack(&mut self, now: Instant, peer: Peer, key: &TransactionKey, ack: &Request) {
        if let Some(t) = self.invites.get_mut(key) {
            t.tx.on_ack(now);
            return self.drain_invite(now, key);
        }
        let call = DialogId::of_request(ack).ok().flatten().and_then(|id| self.dialogs.get(&id).copied());
        let Some(call) = call else {
            return self.event(Event::Dropped { why: DropReason::StrayAck, from: peer.addr });
        };
        let Some(c) = self.calls.get_mut(&call) else { return };
        let reinvite = c.reinvite.take().filter(|(_, r)| r.method == Method::Invite);
        let awaited = reinvite.as_ref().map_or_else(|| c.invite_key.clone(), |(k, _)| k.clone());
        let first = c.phase == Phase::Answered;
        if first {
            c.phase = Phase::Confirmed;
        }
        if let Some(t) = self.invites.get_mut(&awaited) {
            t.tx.on_ack(now);
            self.drain_invite(now, &awaited);
        }
        let answer = (!ack.body.is_empty()).then(|| ack.body.clone());
        // The ACK of a re-INVITE that had no offer carries the answer to ours (RFC 3261 §14.2, §13.2.1).
        if first || (reinvite.is_some() && answer.is_some()) {
            self.event(Event::CallConfirmed { call, answer });
        }
    }

    /// A request inside a dialog (To tag present).
    fn in_dialog(&mut self, now: Instant, peer: Peer, key: TransactionKey, req: Request) {
        let call = DialogId::of_request(&req).ok().flatten().and_then(|id| self.dialogs.get(&id).copied());
        let Some(call) = call else {
            let status = StatusCode::CALL_DOES_NOT_EXIST;
            return self.refuse(now, peer, key, &req, status, "Call/Transaction Does Not Exist");
        };
        let checked = self.calls.get_mut(&call).and_then(|c| c.dialog.as_mut()).map(|d| d.on_request(&req));
        if let Some(Err(e)) = checked {
            let phrase = e.to_string();
            return self.refuse(now, peer, key, &req, StatusCode::SERVER_INTERNAL_ERROR, &phrase);
        }
        match req.method {
            Method::Bye => {
                let reason = req.headers.get(&HeaderName::Reason).map(|r| String::from_utf8_lossy(r).into_owned());
                self.respond_non_invite(now, peer, key, &req, StatusCode::OK, None, |_| {});
                self.end_call(call, EndReason::RemoteBye { reason });
            }
            Method::Invite => self.reinvite(now, peer, key, call, req),
            Method::Info => {
                let dtmf = info_dtmf(&req);
                self.respond_non_invite(now, peer, key, &req, StatusCode::OK, None, |_| {});
                if let Some((digit, duration_ms)) = dtmf {
                    self.event(Event::Dtmf { call, digit, duration_ms });
                }
            }
            Method::Update => self.update(now, peer, key, call, req),
            Method::Options => self.respond_non_invite(now, peer, key, &req, StatusCode::OK, None, capabilities),
            Method::Notify => {
                let progress = refer_progress(&req);
                self.respond_non_invite(now, peer, key, &req, StatusCode::OK, None, |_| {});
                if let Some((status, done)) = progress {
                    self.event(Event::ReferNotify { call, status, done });
                }
            }
            _ => self.respond_non_invite(now, peer, key, &req, StatusCode::METHOD_NOT_ALLOWED, None, allow),
        }
    }

    /// A re-INVITE (hold, resume, new offer): 100 Trying, then the call layer answers with
    /// [`Endpoint::answer_reinvite`].
    fn reinvite(&mut self, now: Instant, peer: Peer, key: TransactionKey, call: CallRef, req: Request) {
        if self.glare(call) {
            return self.refuse(now, peer, key, &req, StatusCode::REQUEST_PENDING, "Request Pending");
        }
        if self.timer_asked(call, &req.headers).is_err() {
            return self.refuse(now, peer, key, &req, too_small(), "Session Interval Too Small");
        }
        let mut tx = ServerInvite::new(peer.transport.is_reliable(), self.config.timers);
        tx.respond(now, StatusCode::TRYING, self.response(&req, &peer, StatusCode::TRYING, None).to_bytes());
        self.invites.insert(key.clone(), InviteTx { tx, peer, call, bytes: 0 });
        self.drain_invite(now, &key);
        let offer = (!req.body.is_empty()).then(|| req.body.clone());
        if let Some(c) = self.calls.get_mut(&call) {
            c.reinvite = Some((key, req));
        }
        self.event(Event::ReInvite { call, offer });
    }

    /// UPDATE (RFC 3311): with SDP, an offer the call layer answers as it does a re-INVITE's (491 while ours
    /// is out); without, a session refresh (RFC 4028) or a target refresh, answered 200 at once. Either way
    /// its session timer is negotiated as an INVITE's (422 below our Min-SE).
    fn update(&mut self, now: Instant, peer: Peer, key: TransactionKey, call: CallRef, req: Request) {
        let offer = !req.body.is_empty();
        if offer && self.glare(call) {
            let pending = StatusCode::REQUEST_PENDING;
            return self.respond_non_invite(now, peer, key, &req, pending, None, |r| {
                r.headers.push(HeaderName::RetryAfter, "2");
            });
        }
        if self.timer_asked(call, &req.headers).is_err() {
            let min_se = self.config.min_se.to_string();
            return self.respond_non_invite(now, peer, key, &req, too_small(), None, |r| {
                r.headers.push(HeaderName::MinSe, min_se);
            });
        }
        if !offer {
            return self.answer_update(now, call, (peer, key), &req, (StatusCode::OK, ""), None);
        }
        let sdp = req.body.clone();
        if let Some(c) = self.calls.get_mut(&call) {
            c.reinvite = Some((key, req));
        }
        self.event(Event::ReInvite { call, offer: Some(sdp) });
    }

    /// Our answer to an UPDATE: a 2xx carries our Contact, the session timer and our SDP answer if it had an
    /// offer.
    fn answer_update(
        &mut self,
        now: Instant,
        call: CallRef,
        (peer, key): (Peer, TransactionKey),
        req: &Request,
        (status, phrase): (StatusCode, &str),
        sdp: Option<Bytes>,
    ) {
        let mut res = self.response(req, &peer, status, None);
        if !phrase.is_empty() {
            res = res.with_reason(phrase);
        }
        if status.is_success() {
            res.headers.push(HeaderName::Contact, transport::our_contact(self.config.public_host.as_deref(), &peer));
            self.timer_answered(call, &mut res, sdp.as_ref());
        }
        if let Some(sdp) = sdp {
            res.headers.push(HeaderName::ContentType, "application/sdp");
            res.body = sdp;
        }
        let mut tx = ServerNonInvite::new(peer.transport.is_reliable(), self.config.timers);
        tx.respond(now, status, res.to_bytes());
        self.non_invites.insert(key.clone(), NonInviteTx { tx, peer, bytes: 0 });
        self.drain_non_invite(&key);
    }

    fn on_response(&mut self, now: Instant, peer: Peer, res: Response) {
        let Ok(key) = TransactionKey::for_response(&res) else {
            return self.event(Event::Dropped { why: DropReason::StrayResponse, from: peer.addr });
        };
        if self.client_invites.contains_key(&key) {
            return self.on_invite_response(now, key, res);
        }
        let Some(t) = self.clients.get_mut(&key) else {
            return self.event(Event::Dropped { why: DropReason::StrayResponse, from: peer.addr });
        };
        let pass = t.tx.on_response(now, res.status);
        let (call, refer, to, method) = (t.call, t.method == Method::Refer, t.peer, t.method.clone());
        let retry = if pass && matches!(res.status.as_u16(), 401 | 407) { t.retry.take() } else { None };
        if let Some(retry) = retry
            && self.retry_in_dialog(now, (call, to), *retry, &res)
        {
            // The retried request's answer is the one that counts.
            return self.drain_client(&key);
        }
        if let (true, true, Some(call)) = (pass && res.status.is_final(), refer, call) {
            self.event(Event::ReferAnswered { call, status: res.status });
        }
        if let (true, Method::Update, Some(call)) = (pass && res.status.is_final(), &method, call) {
            self.drain_client(&key);
            return self.refresh_answered(now, call, &Method::Update, &res);
        }
        self.drain_client(&key);
    }

    // ---- commands from the call layer ----

    /// 180 Ringing with our To tag.
    pub fn ringing(&mut self, now: Instant, call: CallRef) {
        self.respond_invite(now, call, StatusCode::RINGING, None, "");
    }

    /// 200 OK with our SDP (answer, or offer for an INVITE that had none): the dialog starts here.
    pub fn answer(&mut self, now: Instant, call: CallRef, sdp: Bytes) {
        let first_cseq = self.ids.cseq();
        let Some(c) = self.calls.get_mut(&call) else { return };
        if c.phase != Phase::Early || c.outbound.is_some() {
            return;
        }
        let Ok(dialog) = Dialog::uas(&c.invite, &c.to_tag, first_cseq) else { return };
        self.dialogs.insert(dialog.id.clone(), call);
        c.dialog = Some(dialog);
        c.phase = Phase::Answered;
        self.respond_invite(now, call, StatusCode::OK, Some(sdp), "");
    }

    /// Refuses the INVITE (404, 480, 486, 488, 503 ...) with a reason phrase and optional extra headers.
    pub fn reject(
        &mut self,
        now: Instant,
        call: CallRef,
        status: StatusCode,
        phrase: &str,
        extra: &[(HeaderName, String)],
    ) {
        let reinvite = self.calls.get(&call).is_some_and(|c| c.reinvite.is_some());
        if reinvite {
            self.respond_reinvite(now, call, status, None, phrase);
            return;
        }
        if !self.calls.get(&call).is_some_and(|c| c.phase == Phase::Early && c.outbound.is_none()) {
            return;
        }
        let extra: Vec<(HeaderName, String)> = extra.to_vec();
        self.respond_invite_with(now, call, status, None, phrase, &extra);
        self.end_call(call, EndReason::Rejected(status));
    }

    /// Answers the pending re-INVITE with our SDP (direction per RFC 3264 §6.1, chosen by the call layer).
    pub fn answer_reinvite(&mut self, now: Instant, call: CallRef, sdp: Bytes) {
        self.respond_reinvite(now, call, StatusCode::OK, Some(sdp), "");
    }

    /// Ends the call from our side: BYE once answered (with a Reason, RFC 3326), 480 before (for an outbound
    /// call, [`Endpoint::cancel`] before).
    pub fn hangup(&mut self, now: Instant, call: CallRef, reason: Option<Reason>) {
        self.hangup_with(now, call, reason, &[]);
    }

    /// [`Endpoint::hangup`], the BYE carrying `headers` too (the agent's, checked by the call layer's side).
    pub fn hangup_with(
        &mut self,
        now: Instant,
        call: CallRef,
        reason: Option<Reason>,
        headers: &[(HeaderName, String)],
    ) {
        let Some((phase, outbound)) = self.calls.get(&call).map(|c| (c.phase, c.outbound.is_some())) else { return };
        match phase {
            Phase::Early if outbound => self.cancel(now, call),
            Phase::Early => self.reject(now, call, StatusCode::TEMPORARILY_UNAVAILABLE, "Agent Hung Up", &[]),
            Phase::Answered | Phase::Confirmed => {
                self.send_bye(now, call, reason, headers);
                self.end_call(call, EndReason::LocalBye);
            }
            Phase::Ending => {}
        }
    }

    fn respond_invite(&mut self, now: Instant, call: CallRef, status: StatusCode, sdp: Option<Bytes>, phrase: &str) {
        self.respond_invite_with(now, call, status, sdp, phrase, &[]);
    }

    fn respond_invite_with(
        &mut self,
        now: Instant,
        call: CallRef,
        status: StatusCode,
        sdp: Option<Bytes>,
        phrase: &str,
        extra: &[(HeaderName, String)],
    ) {
        let Some(c) = self.calls.get(&call) else { return };
        let key = c.invite_key.clone();
        let mut res = self.response(&c.invite, &c.peer, status, Some(&c.to_tag));
        if status.as_u16() > 100 && status.as_u16() < 300 {
            res.headers.push(HeaderName::Contact, transport::our_contact(self.config.public_host.as_deref(), &c.peer));
            res.headers.push(HeaderName::Allow, ALLOW);
        }
        for (name, value) in extra {
            res.headers.push(name.clone(), value.clone());
        }
        if status.is_success() {
            self.timer_answered(call, &mut res, sdp.as_ref());
        }
        self.send_invite_response(now, &key, res, phrase, sdp);
    }

    fn respond_reinvite(&mut self, now: Instant, call: CallRef, status: StatusCode, sdp: Option<Bytes>, phrase: &str) {
        let Some(c) = self.calls.get_mut(&call) else { return };
        let Some((key, req)) = c.reinvite.clone() else { return };
        if !status.is_success() {
            c.reinvite = None;
        }
        let peer = c.peer;
        if req.method == Method::Update {
            c.reinvite = None;
            return self.answer_update(now, call, (peer, key), &req, (status, phrase), sdp);
        }
        let mut res = self.response(&req, &peer, status, None);
        if status.is_success() {
            res.headers.push(HeaderName::Contact, transport::our_contact(self.config.public_host.as_deref(), &peer));
            self.timer_answered(call, &mut res, sdp.as_ref());
        }
        self.send_invite_response(now, &key, res, phrase, sdp);
    }

    /// The common tail of every INVITE response: reason phrase, SDP body, then through the transaction.
    fn send_invite_response(
        &mut self,
        now: Instant,
        key: &TransactionKey,
        mut res: Response,
        phrase: &str,
        sdp: Option<Bytes>,
    ) {
        if !phrase.is_empty() {
            res = res.with_reason(phrase);
        }
        if let Some(sdp) = sdp {
            res.headers.push(HeaderName::ContentType, "application/sdp");
            res.body = sdp;
        }
        let status = res.status;
        if let Some(t) = self.invites.get_mut(key) {
            t.tx.respond(now, status, res.to_bytes());
        }
        self.drain_invite(now, key);
    }

    /// Answers a non-INVITE request in its own transaction; `shape` adds headers.
    #[allow(clippy::too_many_arguments)]
    fn respond_non_invite(
        &mut self,
        now: Instant,
        peer: Peer,
        key: TransactionKey,
        req: &Request,
        status: StatusCode,
        to_tag: Option<&str>,
        shape: impl FnOnce(&mut Response),
    ) {
        let generated;
        let tag = match to_tag {
            Some(t) => Some(t),
            None if !has_to_tag(req) => {
                generated = self.ids.tag();
                Some(generated.as_str())
            }
            None => None,
        };
        let mut res = self.response(req, &peer, status, tag);
        shape(&mut res);
        let mut tx = ServerNonInvite::new(peer.transport.is_reliable(), self.config.timers);
        tx.respond(now, status, res.to_bytes());
        self.non_invites.insert(key.clone(), NonInviteTx { tx, peer, bytes: 0 });
        self.drain_non_invite(&key);
    }

    /// A response to `req` (§8.2.6) with our Server header, sent back per §18.2.2 by the driver.
    fn response(&self, req: &Request, _peer: &Peer, status: StatusCode, to_tag: Option<&str>) -> Response {
        let mut res = Response::to_request(req, status, to_tag);
        res.headers.push(HeaderName::Server, self.config.user_agent.clone());
        res
    }
}

/// The Require tokens of a request vocals does not support (it supports `timer`, RFC 4028).
fn unsupported(req: &Request) -> impl Iterator<Item = &[u8]> {
    req.headers.tokens(&HeaderName::Require).filter(|t| !t.eq_ignore_ascii_case(b"timer"))
}

/// 422 Session Interval Too Small (RFC 4028 §6).
fn too_small() -> StatusCode {
    StatusCode::SESSION_INTERVAL_TOO_SMALL
}

fn has_to_tag(req: &Request) -> bool {
    req.headers.to().is_ok_and(|to| to.tag().is_some())
}

/// A NOTIFY for a REFER subscription (RFC 3515 §2.4.5): the status code of its `message/sipfrag` body
/// (`SIP/2.0 200 OK`, RFC 3420) and whether `Subscription-State` is `terminated` (RFC 6665 §8.2.3). A NOTIFY
/// of another event, or whose Event or sipfrag does not parse, is none; a Subscription-State that is missing
/// or does not parse leaves the subscription running.
fn refer_progress(req: &Request) -> Option<(u16, bool)> {
    let event = req.headers.event().ok()??;
    if !event.is("refer") {
        return None;
    }
    let status = Sipfrag::parse(&req.body).ok()?.status()?;
    let done = req.headers.subscription_state().ok().flatten().is_some_and(|s| s.is_terminated());
    Some((status.as_u16(), done))
}

/// Allow, Accept and Supported, for OPTIONS (§11.2).
fn capabilities(res: &mut Response) {
    res.headers.push(HeaderName::Allow, ALLOW);
    res.headers.push(HeaderName::Accept, ACCEPT);
    res.headers.push(HeaderName::Supported, "timer");
}

/// Allow, for 405 (§8.2.1).
fn allow(res: &mut Response) {
    res.headers.push(HeaderName::Allow, ALLOW);
}

/// The digit (and its duration in ms) of a DTMF INFO: an `application/dtmf-relay` body (`Signal=5`,
/// `Duration=160`), or an `application/dtmf` body: the digit alone, or (as some gateways write it)
/// dtmf-relay lines.
fn info_dtmf(req: &Request) -> Option<(char, Option<u32>)> {
    let ct = req.headers.content_type().ok()??;
    let relay = |body: &[u8]| DtmfRelay::parse(body).ok().map(|r| (r.signal, r.duration_ms));
    if ct.is("application", "dtmf-relay") {
        return relay(&req.body);
    }
    if !ct.is("application", "dtmf") {
        return None;
    }
    Dtmf::parse(&req.body).ok().map(|d| (d.digit, None)).or_else(|| relay(&req.body))
}
