//! Session timers (RFC 4028) and offers in the dialog (RFC 3261 §14, RFC 3311) in the endpoint: the timer each
//! INVITE, re-INVITE and UPDATE answered or sent negotiates (see [`crate::sip::session_timer`]), our refreshes
//! (UPDATE without SDP where the peer allows UPDATE, else a re-INVITE offering our SDP unchanged), their
//! answers (422: again with the peer's Min-SE; 491: the call layer tries again after §14.1's interval; 408 or
//! 481: the session is over), and glare: a re-INVITE or an UPDATE with SDP arriving while our re-INVITE is
//! out gets 491. The clock is the call layer's: it learns each timer from [`Event::Session`] and asks for a
//! refresh with [`Endpoint::refresh`].

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::uac::InviteClientTx;
use super::{CallRef, ClientTx, Endpoint, Event, Phase};
use crate::sip::message::typed::{Refresher, SessionExpires};
use crate::sip::message::{HeaderName, Headers, Method, Response, StatusCode};
use crate::sip::session_timer::{self, SessionTimer, UasTimer};
use crate::sip::transaction::{ClientInvite, ClientNonInvite, TransactionKey};
use crate::sip::transport;

/// One call's session-timer state, and what its refreshes need.
#[derive(Debug, Default)]
pub(super) struct SessionState {
    /// What the 2xx to the request being answered carries, decided when the request came: the header, whether
    /// `Require: timer` goes with it, and the timer it puts in force.
    pub(super) pending: Option<(SessionExpires, bool, SessionTimer)>,
    /// The timer in force.
    pub(super) current: Option<SessionTimer>,
    /// The peer's Allow lists UPDATE (a refresh then needs no SDP).
    pub(super) peer_update: bool,
    /// Our SDP as it stands in the dialog: a re-INVITE refresh offers it unchanged (same o= version, RFC 3264
    /// §8: nothing changed).
    pub(super) local_sdp: Bytes,
    /// Our re-INVITE in flight: an offer of the peer's meanwhile is glare (491).
    pub(super) reinviting: Option<TransactionKey>,
    /// A 422 to our refresh was answered once already (a second is the end of trying).
    pub(super) raised: bool,
}

/// What a refresh of ours came to, for the call layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// Glare (491): try again after this long (RFC 3261 §14.1: 2.1–4 s when we own the Call-ID, else 0–2 s).
    Again(Duration),
    /// Refused otherwise, or no answer: the session cannot be kept (408 stands for no answer).
    Failed(StatusCode),
}

impl Endpoint {
    /// The session timer `headers` (an INVITE, re-INVITE or UPDATE of the peer's) asks for, kept for the 2xx;
    /// `Err(min_se)` when the interval is below ours (the request gets 422).
    pub(super) fn timer_asked(&mut self, call: CallRef, headers: &Headers) -> Result<(), u32> {
        let decided = session_timer::as_uas(headers, self.config.min_se);
        let Some(c) = self.calls.get_mut(&call) else { return Ok(()) };
        c.session.peer_update |= headers.has_token(&HeaderName::Allow, "UPDATE");
        match decided {
            UasTimer::TooSmall(min_se) => Err(min_se),
            UasTimer::None => {
                c.session.pending = None;
                Ok(())
            }
            UasTimer::Timer { header, require, timer } => {
                c.session.pending = Some((header, require, timer));
                Ok(())
            }
        }
    }

    /// Our 2xx to the peer's INVITE, re-INVITE or UPDATE: `Supported: timer`, and the timer decided when it
    /// came (`Session-Expires`, with `Require: timer` when the peer refreshes), which is in force from now (no
    /// timer if it asked for none). `sdp`, if any, is our SDP from now on.
    pub(super) fn timer_answered(&mut self, call: CallRef, res: &mut Response, sdp: Option<&Bytes>) {
        res.headers.push(HeaderName::Supported, "timer");
        let Some(c) = self.calls.get_mut(&call) else { return };
        if let Some(sdp) = sdp {
            c.session.local_sdp = sdp.clone();
        }
        let timer = c.session.pending.take().map(|(header, require, timer)| {
            res.headers.push(HeaderName::SessionExpires, header.to_bytes());
            if require {
                res.headers.push(HeaderName::Require, "timer");
            }
            timer
        });
        let before = std::mem::replace(&mut c.session.current, timer);
        if timer.is_some() || before.is_some() {
            self.event(Event::Session { call, timer });
        }
    }

    /// The 2xx to a request of ours (the INVITE placing a call, a refresh): the timer it puts in force.
    pub(super) fn timer_confirmed(&mut self, call: CallRef, res: &Response) {
        let timer = session_timer::as_uac(&res.headers);
        let Some(c) = self.calls.get_mut(&call) else { return };
        c.session.peer_update |= res.headers.has_token(&HeaderName::Allow, "UPDATE");
        let before = std::mem::replace(&mut c.session.current, timer);
        c.session.raised = false;
        if timer.is_some() || before.is_some() {
            self.event(Event::Session { call, timer });
        }
    }

    /// Whether an offer of the peer's now would cross one of ours (glare): the request then gets 491.
    pub(super) fn glare(&mut self, call: CallRef) -> bool {
        let ours = self.calls.get(&call).and_then(|c| c.session.reinviting.as_ref());
        let glare = ours.is_some_and(|k| self.client_invites.contains_key(k));
        if glare {
            self.event(Event::Glare { call });
        }
        glare
    }

    /// Refreshes the session (RFC 4028 §7.4, §9): an UPDATE without SDP when the peer allows UPDATE, else a
    /// re-INVITE offering our SDP unchanged; either asks for the interval in force with us as refresher. Its
    /// answer comes back as [`Event::Session`] or [`Event::RefreshFailed`].
    pub fn refresh(&mut self, now: Instant, call: CallRef) {
        let branch = self.ids.branch();
        let public = self.config.public_host.as_deref();
        let min_se = self.config.min_se;
        let Some(c) = self.calls.get_mut(&call) else { return };
        if c.phase != Phase::Confirmed || c.session.reinviting.is_some() {
            return;
        }
        let outbound = c.outbound.is_some();
        let Some(dialog) = c.dialog.as_mut() else { return };
        let interval = c.session.current.map_or(min_se, |t| t.interval.max(min_se));
        let method = if c.session.peer_update { Method::Update } else { Method::Invite };
        let via = transport::our_via(public, &c.peer, &branch);
        let mut req = dialog.request(method.clone(), &via);
        let h = &mut req.headers;
        h.push(HeaderName::Contact, transport::our_contact(public, &c.peer));
        h.push(HeaderName::Supported, "timer");
        h.push(HeaderName::SessionExpires, SessionExpires::new(interval, Some(Refresher::Uac)).to_bytes());
        h.push(HeaderName::MinSe, min_se.to_string());
        let peer = super::dialog_destination(dialog, outbound, c.peer);
        let key = TransactionKey::Client { branch: Bytes::from(branch), method: method.clone() };
        if method == Method::Invite {
            h.push(HeaderName::Allow, super::uas::ALLOW);
            h.push(HeaderName::ContentType, "application/sdp");
            req.body = c.session.local_sdp.clone();
            c.session.reinviting = Some(key.clone());
            let tx = ClientInvite::new(now, &req, peer.transport.is_reliable(), self.config.timers);
            self.client_invites.insert(key.clone(), InviteClientTx::refresh(tx, peer, call, req));
            self.drain_client_invite(&key);
        } else {
            let tx = ClientNonInvite::new(now, req.to_bytes(), peer.transport.is_reliable(), self.config.timers);
            self.clients.insert(key.clone(), ClientTx { tx, peer, call: Some(call), method, retry: None });
            self.drain_client(&key);
        }
    }

    /// The final answer to a refresh of ours (`status`, with its headers): 2xx puts its timer in force; 422
    /// asks once more with the peer's Min-SE; anything else is for the call layer. A 405 or 501 to an UPDATE
    /// means the peer does not take UPDATE after all: the call layer's next try is a re-INVITE.
    pub(super) fn refresh_answered(&mut self, now: Instant, call: CallRef, method: &Method, res: &Response) {
        if let Some(c) = self.calls.get_mut(&call)
            && *method == Method::Invite
        {
            c.session.reinviting = None;
        }
        let status = res.status;
        if status.is_success() {
            return self.timer_confirmed(call, res);
        }
        if status.as_u16() == 422
            && let Some(min_se) = session_timer::min_se_of(&res.headers)
            && let Some(c) = self.calls.get_mut(&call).filter(|c| !c.session.raised)
        {
            c.session.raised = true;
            let we_refresh = c.session.current.is_none_or(|t| t.we_refresh);
            c.session.current = Some(SessionTimer { interval: min_se, we_refresh });
            return self.refresh(now, call);
        }
        if matches!(status.as_u16(), 405 | 501)
            && *method == Method::Update
            && let Some(c) = self.calls.get_mut(&call)
        {
            c.session.peer_update = false;
            let outcome = RefreshOutcome::Again(Duration::ZERO);
            return self.event(Event::RefreshFailed { call, outcome });
        }
        let outcome = if status.as_u16() == 491 {
            self.event(Event::Glare { call });
            RefreshOutcome::Again(self.glare_wait(call))
        } else {
            RefreshOutcome::Failed(status)
        };
        self.event(Event::RefreshFailed { call, outcome });
    }

    /// RFC 3261 §14.1: after a 491, the owner of the Call-ID (the one who sent the dialog's INVITE) waits 2.1–4 s
    /// before trying again, the other 0–2 s, in steps of 10 ms.
    fn glare_wait(&mut self, call: CallRef) -> Duration {
        let owner = self.calls.get(&call).is_some_and(|c| c.outbound.is_some());
        let steps = u64::from(self.ids.small() % 200);
        Duration::from_millis(if owner { 2_100 + steps * 19 / 2 } else { steps * 10 })
    }

    /// A response to our re-INVITE refresh: a 2xx is ACKed (again for a retransmission) through the dialog;
    /// a final answer settles the refresh.
    pub(super) fn on_refresh_invite_response(&mut self, now: Instant, key: &TransactionKey, res: &Response) {
        let Some(t) = self.client_invites.get_mut(key) else { return };
        let pass = t.tx.on_response(now, res);
        let (call, peer) = (t.call, t.peer);
        let seq = t.invite().headers.cseq().map_or(1, |c| c.seq);
        self.drain_client_invite(key);
        if res.status.is_success() {
            let branch = self.ids.branch();
            let via = transport::our_via(self.config.public_host.as_deref(), &peer, &branch);
            let Some(dialog) = self.calls.get(&call).and_then(|c| c.dialog.as_ref()) else { return };
            let ack = dialog.ack(seq, &via).to_bytes();
            self.transmit(peer, ack);
        }
        if pass && res.status.is_final() {
            self.refresh_answered(now, call, &Method::Invite, res);
        }
    }
}
