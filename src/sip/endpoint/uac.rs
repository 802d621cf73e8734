//! The UAC rules: outbound calls. The INVITE (RFC 3261 §8.1.1, §13.2.1) through its client transaction;
//! its responses (§8.1.3, §13.2.2): 1xx reported as progress, a 401/407 answered once with digest credentials
//! (§22.2–§22.4, see [`crate::sip::auth`]), 300–699 ending the call (the transaction ACKs them), the first 2xx
//! making the dialog (§12.1.2) and ACKed here (§13.2.2.4), every retransmitted 2xx ACKed again, a 2xx from
//! another fork ACKed and ended with a BYE at once. CANCEL (§9.1) once a provisional response came; a 2xx that
//! crosses it is ACKed and BYE'd. Once answered the call is a dialog like an inbound one (BYE, REFER,
//! re-INVITE, INFO); its requests go to the dial's next hop, with the route set as Route headers (loose
//! routing, §12.2.1.1; a strict-routing first hop is still used as the next hop, not as the Request-URI's
//! destination).

use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;

use super::uas::ALLOW;
use super::{Call, CallRef, ClientTx, EndReason, Endpoint, Event, Peer, Phase, Table};
use crate::sip::auth::{Challenge, Credentials};
use crate::sip::dialog::Dialog;
use crate::sip::message::typed::CSeq;
use crate::sip::message::{HeaderName, Headers, Method, Request, Response, StatusCode, Uri};
use crate::sip::transaction::{ClientInvite, ClientInviteState, ClientNonInvite, TransactionKey};
use crate::sip::transport;

/// Most 2xx To tags (forks) one INVITE transaction remembers the ACK of; later forks are still ACKed and
/// ended, only their retransmissions are not ACKed again.
const MAX_FORKS: usize = 8;
/// Most challenges answered for one call (a second one only when the first was `stale`).
const MAX_AUTH_RETRIES: u8 = 3;

/// An outbound call the call layer asks for.
#[derive(Clone, Debug)]
pub struct Dial {
    /// The Request-URI and the To URI, e.g. `sip:+14155550123@example.pstn.twilio.com`.
    pub target: Uri,
    /// Where the INVITE and every request of the call go: the outbound proxy or the trunk's resolved address,
    /// and the transport. `next_hop.local` is the listener the INVITE leaves from: our Via, Contact and From
    /// name it (or `public_host`).
    pub next_hop: Peer,
    /// The From user (our caller ID, an E.164 number); From is `<sip:{from_user}@{our host}>;tag=…`.
    pub from_user: String,
    /// Our SDP offer.
    pub sdp: Bytes,
    /// Digest credentials for 401/407 (one retry per challenge; a second challenge to the retried request
    /// with stale=false ends the call).
    pub credentials: Option<Credentials>,
    /// Extra headers (e.g. X- headers).
    pub headers: Vec<(HeaderName, String)>,
}

/// An outbound call's UAC state, beside its [`Call`].
pub(super) struct Outbound {
    credentials: Option<Credentials>,
    /// Challenges answered so far.
    auth_retries: u8,
    /// The credentials the current INVITE carries: header, realm, value.
    auth: Vec<(HeaderName, String, String)>,
    /// The last nonce answered and how many times.
    nonce: Option<(String, u32)>,
}

impl Outbound {
    /// The nonce count for one more request answering `nonce` (RFC 7616 §3.4: `nc` counts the requests sent
    /// with a nonce, from 1; a new nonce starts again).
    fn nonce_count(&mut self, nonce: &str) -> u32 {
        match &mut self.nonce {
            Some((last, n)) if last == nonce => {
                *n += 1;
                *n
            }
            other => {
                *other = Some((nonce.to_string(), 1));
                1
            }
        }
    }
}

/// A request of an outbound call's dialog as sent, with what answering a challenge to it takes: the call
/// may be over by then (a BYE ends it at once).
pub(super) struct Retry {
    request: Request,
    credentials: Credentials,
    /// The call's nonce and count when the request left (a call gone keeps counting from here).
    nonce: Option<(String, u32)>,
}

impl Call {
    /// What a 401/407 to `request`, in this call's dialog, can be answered with: an outbound call whose trunk
    /// gave credentials.
    pub(super) fn retry(&self, request: &Request) -> Option<Box<Retry>> {
        let out = self.outbound.as_ref()?;
        let credentials = out.credentials.clone()?;
        Some(Box::new(Retry { request: request.clone(), credentials, nonce: out.nonce.clone() }))
    }
}

/// What a pending INVITE transaction does about a CANCEL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Cancel {
    No,
    /// Asked for before any provisional response: sent when one comes (§9.1).
    Wanted,
    Sent,
}

/// Our INVITE's client transaction and what its responses need.
pub(super) struct InviteClientTx {
    pub(super) tx: ClientInvite,
    pub(super) peer: Peer,
    pub(super) call: CallRef,
    /// The INVITE as sent: the CANCEL and the dialogs of its 2xx are made from it.
    invite: Request,
    cancel: Cancel,
    /// The ACK sent for each 2xx To tag, for its retransmissions.
    acks: Vec<(Bytes, Bytes)>,
    /// A re-INVITE refreshing the session (RFC 4028), not a call's first INVITE.
    pub(super) refresh: bool,
}

impl InviteClientTx {
    /// Our re-INVITE refreshing `call`'s session.
    pub(super) fn refresh(tx: ClientInvite, peer: Peer, call: CallRef, invite: Request) -> InviteClientTx {
        InviteClientTx { tx, peer, call, invite, cancel: Cancel::No, acks: Vec::new(), refresh: true }
    }

    pub(super) fn invite(&self) -> &Request {
        &self.invite
    }
}

/// Characters a From user may hold: RFC 3261's `user` (unreserved, escaped and user-unreserved), as the call
/// layer's E.164 numbers and names are.
fn valid_user(user: &str) -> bool {
    !user.is_empty()
        && user.len() <= 256
        && user.bytes().all(|c| c.is_ascii_alphanumeric() || b"-_.!~*'()&=+$,;?/%".contains(&c))
}

impl Endpoint {
    /// Sends the INVITE (Call-ID, From tag, branch from the IdGen; our Contact, Max-Forwards 70, Allow,
    /// Supported, User-Agent) and returns the call's ref. The call counts toward `max_calls`. When it cannot be
    /// sent (draining, full, a From user or header value that cannot be written) the ref is returned all the
    /// same and [`Event::CallEnded`] with [`EndReason::NotDialed`] is reported at once.
    pub fn dial(&mut self, now: Instant, dial: Dial) -> CallRef {
        let call = self.ids.call();
        let refused = if self.draining {
            Some("draining")
        } else if self.calls.len() >= self.config.max_calls {
            Some("too many calls")
        } else if self.clients.len() + self.client_invites.len() >= self.config.max_transactions {
            Some("too many transactions")
        } else if !valid_user(&dial.from_user) {
            Some("the From user is not a SIP user part")
        } else if dial.headers.iter().any(|(_, v)| v.bytes().any(|c| matches!(c, b'\r' | b'\n' | 0))) {
            Some("a header value holds a line break")
        } else {
            None
        };
        if let Some(why) = refused {
            self.event(Event::CallEnded { call, why: EndReason::NotDialed { why } });
            return call;
        }
        let peer = dial.next_hop;
        let public = self.config.public_host.as_deref();
        let host = transport::our_host(public, &peer);
        let (tag, branch) = (self.ids.tag(), self.ids.branch());
        let call_id = format!("{}@{host}", self.ids.call_id());
        let seq = self.ids.cseq();
        let mut h = Headers::new();
        h.push(HeaderName::Via, transport::our_via(public, &peer, &branch).to_bytes());
        h.push(HeaderName::MaxForwards, Bytes::from_static(b"70"));
        h.push(HeaderName::From, format!("<sip:{}@{host}>;tag={tag}", dial.from_user));
        h.push(HeaderName::To, format!("<{}>", dial.target));
        h.push(HeaderName::CallId, call_id);
        h.push(HeaderName::CSeq, CSeq { seq, method: Method::Invite }.to_bytes());
        h.push(HeaderName::Contact, transport::our_contact(public, &peer));
        h.push(HeaderName::Allow, ALLOW);
        h.push(HeaderName::Supported, "timer");
        h.push(HeaderName::SessionExpires, self.config.session_expires.to_string());
        h.push(HeaderName::UserAgent, self.config.user_agent.clone());
        for (name, value) in dial.headers {
            h.push(name, value);
        }
        if !dial.sdp.is_empty() {
            h.push(HeaderName::ContentType, "application/sdp");
        }
        let invite = Request { method: Method::Invite, uri: dial.target, headers: h, body: dial.sdp };
        let key = TransactionKey::Client { branch: Bytes::from(branch), method: Method::Invite };
        let outbound = Outbound { credentials: dial.credentials, auth_retries: 0, auth: Vec::new(), nonce: None };
        let session = super::session::SessionState { local_sdp: invite.body.clone(), ..Default::default() };
        self.calls.insert(
            call,
            Call {
                invite: invite.clone(),
                invite_key: key.clone(),
                peer,
                to_tag: tag,
                phase: Phase::Early,
                dialog: None,
                reinvite: None,
                outbound: Some(Box::new(outbound)),
                session,
            },
        );
        self.send_invite(now, call, key, invite);
        call
    }

    /// Withdraws an outbound call not answered yet: [`Event::CallEnded`] with [`EndReason::Cancelled`] at once,
    /// then, in the background, a CANCEL (§9.1) once a provisional response came (until then it waits for
    /// one; if a final response comes first nothing is sent). A 2xx that crosses the CANCEL is ACKed and
    /// ended with a BYE. An answered call is ended with `hangup`; an inbound call is not touched.
    pub fn cancel(&mut self, now: Instant, call: CallRef) {
        let Some(c) = self.calls.get(&call) else { return };
        if c.outbound.is_none() || c.phase != Phase::Early {
            return;
        }
        let key = c.invite_key.clone();
        self.end_call(call, EndReason::Cancelled);
        let Some(t) = self.client_invites.get_mut(&key) else { return };
        if t.cancel != Cancel::No {
            return;
        }
        match t.tx.state() {
            ClientInviteState::Calling => t.cancel = Cancel::Wanted,
            ClientInviteState::Proceeding => self.send_cancel(now, &key),
            _ => {}
        }
    }

    /// The driver could not open (or lost before it wrote anything) the connection toward `to` over
    /// `transport` that our requests were queued for (§8.1.3.1, §17.1.4): an outbound INVITE still waiting on it
    /// ends the call with [`EndReason::Unreachable`] (Twilio's `failed`, as a 503 would), and every other client
    /// transaction toward it ends as timed out (a BYE's call is over all the same).
    pub fn transport_failed(&mut self, to: SocketAddr, transport: transport::Transport, why: &str) {
        let toward = |p: &Peer| p.addr == to && p.transport == transport && p.conn.is_none();
        let invites: Vec<TransactionKey> =
            self.client_invites.iter().filter(|(_, t)| toward(&t.peer)).map(|(k, _)| k.clone()).collect();
        for key in invites {
            let call = self.client_invites[&key].call;
            if self.is_current(call, &key) {
                self.end_call(call, EndReason::Unreachable { why: why.to_string() });
            }
            if let Some(t) = self.client_invites.get_mut(&key) {
                t.tx.on_transport_error();
            }
            self.drain_client_invite(&key);
        }
        let others: Vec<TransactionKey> =
            self.clients.iter().filter(|(_, t)| toward(&t.peer)).map(|(k, _)| k.clone()).collect();
        for key in others {
            if let Some(t) = self.clients.get_mut(&key) {
                t.tx.on_transport_error();
            }
            self.drain_client(&key);
        }
    }

    /// Starts an INVITE client transaction for `call`.
    fn send_invite(&mut self, now: Instant, call: CallRef, key: TransactionKey, invite: Request) {
        let peer = self.calls[&call].peer;
        let tx = ClientInvite::new(now, &invite, peer.transport.is_reliable(), self.config.timers);
        let entry = InviteClientTx { tx, peer, call, invite, cancel: Cancel::No, acks: Vec::new(), refresh: false };
        self.client_invites.insert(key.clone(), entry);
        self.drain_client_invite(&key);
    }

    /// The CANCEL for a pending INVITE (§9.1): its Request-URI, Call-ID, From, To, top Via (same branch) and
    /// Route headers, CSeq with its number and method CANCEL, in a transaction of its own.
    fn send_cancel(&mut self, now: Instant, key: &TransactionKey) {
        let Some(t) = self.client_invites.get_mut(key) else { return };
        let q = &t.invite.headers;
        let mut h = Headers::new();
        let Ok(via) = q.top_via() else { return };
        h.push(HeaderName::Via, via.to_bytes());
        h.push(HeaderName::MaxForwards, Bytes::from_static(b"70"));
        for name in [HeaderName::From, HeaderName::To, HeaderName::CallId] {
            if let Some(v) = q.get_bytes(&name) {
                h.push(name, v);
            }
        }
        let seq = q.cseq().map_or(1, |c| c.seq);
        h.push(HeaderName::CSeq, CSeq { seq, method: Method::Cancel }.to_bytes());
        for route in q.get_all(&HeaderName::Route) {
            h.push(HeaderName::Route, Bytes::copy_from_slice(route));
        }
        let cancel = Request { method: Method::Cancel, uri: t.invite.uri.clone(), headers: h, body: Bytes::new() };
        t.cancel = Cancel::Sent;
        t.tx.on_cancel_sent(now);
        let peer = t.peer;
        let branch = via.branch().cloned().unwrap_or_default();
        self.drain_client_invite(key);
        let ckey = TransactionKey::Client { branch, method: Method::Cancel };
        let tx = ClientNonInvite::new(now, cancel.to_bytes(), peer.transport.is_reliable(), self.config.timers);
        self.clients.insert(ckey.clone(), ClientTx { tx, peer, call: None, method: Method::Cancel, retry: None });
        self.drain_client(&ckey);
    }

    /// Hands the INVITE client transaction's outputs to the driver and reacts to its events.
    pub(super) fn drain_client_invite(&mut self, key: &TransactionKey) {
        use crate::sip::transaction::{Machine, Output as TxOut, TransactionEvent as E};
        let Some(entry) = self.client_invites.get_mut(key) else { return };
        let (peer, call, outs) = (entry.peer, entry.call, entry.tx.take_outputs());
        for o in outs {
            match o {
                TxOut::Transmit(bytes) => self.transmit(peer, bytes),
                TxOut::Event(E::Timeout) => {
                    if self.is_current(call, key) {
                        self.end_call(call, EndReason::NoResponse);
                    } else if self.calls.get(&call).is_some_and(|c| c.session.reinviting.as_ref() == Some(key)) {
                        if let Some(c) = self.calls.get_mut(&call) {
                            c.session.reinviting = None;
                        }
                        let outcome = super::RefreshOutcome::Failed(StatusCode::REQUEST_TIMEOUT);
                        self.event(Event::RefreshFailed { call, outcome });
                    }
                }
                TxOut::Event(E::Terminated) => {
                    self.client_invites.remove(key);
                }
                TxOut::Event(E::AckTimeout) => {}
            }
        }
        let at = self.client_invites.get(key).and_then(|e| e.tx.poll_timeout());
        self.schedule(Table::ClientInvite, key, at);
    }

    /// Whether `key` is the INVITE `call` is waiting on (not one replaced by an authenticated retry, nor one of
    /// a call already over).
    fn is_current(&self, call: CallRef, key: &TransactionKey) -> bool {
        self.calls.get(&call).is_some_and(|c| c.invite_key == *key && c.phase == Phase::Early)
    }

    /// A response to one of our INVITEs.
    pub(super) fn on_invite_response(&mut self, now: Instant, key: TransactionKey, res: Response) {
        let Some(t) = self.client_invites.get_mut(&key) else { return };
        if t.refresh {
            return self.on_refresh_invite_response(now, &key, &res);
        }
        let pass = t.tx.on_response(now, &res);
        let (call, cancel) = (t.call, t.cancel);
        self.drain_client_invite(&key);
        if !pass {
            // A retransmitted 300-699 (the transaction ACKed it again), or a 1xx or non-2xx after a final.
            return;
        }
        let status = res.status;
        if status.is_provisional() {
            if cancel == Cancel::Wanted {
                self.send_cancel(now, &key);
            } else if status != StatusCode::TRYING && self.is_current(call, &key) {
                let sdp = (!res.body.is_empty()).then(|| res.body.clone());
                self.event(Event::Progress { call, status, sdp });
            }
        } else if status.is_success() {
            self.invite_2xx(now, &key, &res);
        } else if self.is_current(call, &key) {
            let challenged = matches!(status.as_u16(), 401 | 407);
            let too_short = status.as_u16() == 422;
            let retried = (challenged && self.retry_with_credentials(now, call, &res))
                || (too_short && self.retry_with_longer_interval(now, call, &res));
            if !retried {
                let phrase = String::from_utf8_lossy(&res.reason).into_owned();
                self.end_call(call, EndReason::Failed { status, phrase });
            }
        }
    }

    /// A 2xx to our INVITE: ACKed (again, for a retransmission); the first makes the call's dialog, any other
    /// (a fork, or one that crossed our CANCEL) is ended with a BYE at once.
    fn invite_2xx(&mut self, now: Instant, key: &TransactionKey, res: &Response) {
        let tag = res.headers.to().ok().and_then(|to| to.tag().cloned()).unwrap_or_default();
        let Some(t) = self.client_invites.get(key) else { return };
        let (peer, call) = (t.peer, t.call);
        if let Some((_, ack)) = t.acks.iter().find(|(tg, _)| *tg == tag) {
            let ack = ack.clone();
            return self.transmit(peer, ack);
        }
        let Ok(mut dialog) = Dialog::uac(&t.invite, res) else { return };
        let seq = t.invite.headers.cseq().map_or(1, |c| c.seq);
        let branch = self.ids.branch();
        let via = transport::our_via(self.config.public_host.as_deref(), &peer, &branch);
        let ack = dialog.ack(seq, &via).to_bytes();
        if let Some(t) = self.client_invites.get_mut(key)
            && t.acks.len() < MAX_FORKS
        {
            t.acks.push((Bytes::copy_from_slice(&tag), ack.clone()));
        }
        if self.is_current(call, key) {
            let Some(c) = self.calls.get_mut(&call) else { return self.transmit(peer, ack) };
            self.dialogs.insert(dialog.id.clone(), call);
            c.dialog = Some(dialog);
            c.phase = Phase::Confirmed;
            let sdp = (!res.body.is_empty()).then(|| res.body.clone());
            // The answer first, then the ACK: the driver carries out what the call layer does with the answer
            // (its media socket bound and keyed) before the ACK leaves, so a far end that starts its media on
            // our ACK never sends into a port not yet open.
            self.event(Event::Answered { call, sdp });
            self.transmit(peer, ack);
            self.timer_confirmed(call, res);
        } else {
            self.transmit(peer, ack);
            let branch = self.ids.branch();
            let via = transport::our_via(self.config.public_host.as_deref(), &peer, &branch);
            let bye = dialog.request(Method::Bye, &via);
            let bkey = TransactionKey::Client { branch: Bytes::from(branch), method: Method::Bye };
            let tx = ClientNonInvite::new(now, bye.to_bytes(), peer.transport.is_reliable(), self.config.timers);
            self.clients.insert(bkey.clone(), ClientTx { tx, peer, call: None, method: Method::Bye, retry: None });
            self.drain_client(&bkey);
        }
    }

    /// A 401/407 to a request of an outbound call's dialog (our BYE or REFER, §22.2 applies to every request),
    /// which went to `peer`: sent again there once, with credentials for the challenge, a new branch and the
    /// next CSeq (the dialog's, or one up for a call already over), everything else as it was. False when the
    /// challenge is not usable.
    pub(super) fn retry_in_dialog(
        &mut self,
        now: Instant,
        to: (Option<CallRef>, Peer),
        retry: Retry,
        res: &Response,
    ) -> bool {
        let (call, peer) = to;
        let (challenge_header, answer_header) = if res.status.as_u16() == 401 {
            (HeaderName::WwwAuthenticate, HeaderName::Authorization)
        } else {
            (HeaderName::ProxyAuthenticate, HeaderName::ProxyAuthorization)
        };
        let Ok(challenge) = Challenge::pick(res.headers.get_all(&challenge_header)) else { return false };
        let Ok(sent) = retry.request.headers.cseq() else { return false };
        let (cnonce, branch) = (self.ids.cnonce(), self.ids.branch());
        let Retry { mut request, credentials, nonce } = retry;
        let (nc, seq) = match call.and_then(|call| self.calls.get_mut(&call)) {
            Some(c) => {
                let nc = c.outbound.as_mut().map_or(1, |out| out.nonce_count(&challenge.nonce));
                (nc, c.dialog.as_mut().map_or(sent.seq + 1, |d| d.next_cseq()))
            }
            None => {
                let mut gone = Outbound { credentials: None, auth_retries: 0, auth: Vec::new(), nonce };
                (gone.nonce_count(&challenge.nonce), sent.seq + 1)
            }
        };
        let method = request.method.clone();
        let value = challenge.respond(&credentials, &method.to_string(), &request.uri.to_string(), &cnonce, nc);
        let h = &mut request.headers;
        h.set(HeaderName::Via, transport::our_via(self.config.public_host.as_deref(), &peer, &branch).to_bytes());
        h.set(HeaderName::CSeq, CSeq { seq, method: method.clone() }.to_bytes());
        h.remove(&HeaderName::Authorization);
        h.remove(&HeaderName::ProxyAuthorization);
        h.push(answer_header, value);
        let key = TransactionKey::Client { branch: Bytes::from(branch), method: method.clone() };
        let tx = ClientNonInvite::new(now, request.to_bytes(), peer.transport.is_reliable(), self.config.timers);
        self.clients.insert(key.clone(), ClientTx { tx, peer, call, method, retry: None });
        self.drain_client(&key);
        true
    }

    /// A 422 to the call's INVITE (RFC 4028 §7.4): the INVITE again, once, asking for the peer's Min-SE (and
    /// saying it in our Min-SE), CSeq one up, a new branch.
    fn retry_with_longer_interval(&mut self, now: Instant, call: CallRef, res: &Response) -> bool {
        let Some(min_se) = crate::sip::session_timer::min_se_of(&res.headers) else { return false };
        let branch = self.ids.branch();
        let public = self.config.public_host.as_deref();
        let Some(c) = self.calls.get_mut(&call).filter(|c| !c.session.raised) else { return false };
        c.session.raised = true;
        let mut invite = c.invite.clone();
        let h = &mut invite.headers;
        h.set(HeaderName::Via, transport::our_via(public, &c.peer, &branch).to_bytes());
        let seq = h.cseq().map_or(1, |s| s.seq) + 1;
        h.set(HeaderName::CSeq, CSeq { seq, method: Method::Invite }.to_bytes());
        h.set(HeaderName::SessionExpires, min_se.to_string());
        h.set(HeaderName::MinSe, min_se.to_string());
        let key = TransactionKey::Client { branch: Bytes::from(branch), method: Method::Invite };
        c.invite = invite.clone();
        c.invite_key = key.clone();
        self.send_invite(now, call, key, invite);
        true
    }

    /// A 401/407 to the call's INVITE: the INVITE again with credentials (§22.2), CSeq one up, a new branch,
    /// same Call-ID and From tag. False when it cannot be answered: no credentials, no usable challenge, or a
    /// second challenge that is not `stale`.
    fn retry_with_credentials(&mut self, now: Instant, call: CallRef, res: &Response) -> bool {
        let (challenge_header, answer_header) = if res.status.as_u16() == 401 {
            (HeaderName::WwwAuthenticate, HeaderName::Authorization)
        } else {
            (HeaderName::ProxyAuthenticate, HeaderName::ProxyAuthorization)
        };
        let Ok(challenge) = Challenge::pick(res.headers.get_all(&challenge_header)) else { return false };
        let cnonce = self.ids.cnonce();
        let branch = self.ids.branch();
        let public = self.config.public_host.as_deref();
        let Some(c) = self.calls.get_mut(&call) else { return false };
        let Some(out) = c.outbound.as_mut() else { return false };
        if out.credentials.is_none()
            || out.auth_retries >= MAX_AUTH_RETRIES
            || (out.auth_retries > 0 && !challenge.stale)
        {
            return false;
        }
        out.auth_retries += 1;
        let nc = out.nonce_count(&challenge.nonce);
        let Some(creds) = out.credentials.as_ref() else { return false };
        let value = challenge.respond(creds, "INVITE", &c.invite.uri.to_string(), &cnonce, nc);
        out.auth.retain(|(h, realm, _)| !(*h == answer_header && *realm == challenge.realm));
        out.auth.push((answer_header, challenge.realm.clone(), value));
        let mut invite = c.invite.clone();
        let h = &mut invite.headers;
        h.set(HeaderName::Via, transport::our_via(public, &c.peer, &branch).to_bytes());
        let seq = h.cseq().map_or(1, |s| s.seq) + 1;
        h.set(HeaderName::CSeq, CSeq { seq, method: Method::Invite }.to_bytes());
        h.remove(&HeaderName::Authorization);
        h.remove(&HeaderName::ProxyAuthorization);
        for (name, _, value) in &out.auth {
            h.push(name.clone(), value.clone());
        }
        let key = TransactionKey::Client { branch: Bytes::from(branch), method: Method::Invite };
        c.invite = invite.clone();
        c.invite_key = key.clone();
        self.send_invite(now, call, key, invite);
        true
    }
}
