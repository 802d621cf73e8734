//! The SIP endpoint, sans-IO: a UAS that turns received bytes into transactions, dialogs and call events, and the
//! call layer's decisions (ring, answer, reject, hang up, transfer) into messages on the wire (`uas.rs`); and a UAC
//! that places outbound calls (`dial`, `cancel`: RFC 3261 §8.1, §9.1, §13.2, §22; `uac.rs`). It owns every
//! transaction and dialog table (bounded, sizes observable); it never touches sockets, clocks or randomness: the driver
//! feeds `handle(now, ...)`, drains `poll_output()` and sleeps until `poll_timeout()`.
//!
//! The UAS core of RFC 3261: §8.2 (every request's checks), §9.2 (CANCEL), §12 (through [`crate::sip::dialog`]), §13.3
//! (INVITE), §14 (re-INVITE), §15 (BYE), with RFC 3515 (the REFER vocals sends, the NOTIFYs it receives), and INFO
//! DTMF. Sources are checked against [`crate::sip::allow`] and [`crate::sip::ratelimit`] before a transaction is made.
//! Not here: routing, SDP and media decisions are the call layer's ([`crate::call`]); the bytes are the transport
//! layer's to route and the driver's to move ([`crate::io::sip`]).

mod ids;
mod session;
mod shards;
mod uac;
mod uas;

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;

use crate::sip::allow::AllowList;
use crate::sip::dialog::{Dialog, DialogId};
use crate::sip::message::typed::Reason;
use crate::sip::message::{Limits, Request, StatusCode};
use crate::sip::ratelimit::{RateConfig, RateLimiter};
use crate::sip::transaction::{ClientNonInvite, Machine, ServerInvite, ServerNonInvite, Timers, TransactionKey};
use crate::sip::transport;

pub use crate::sip::auth::Credentials;
pub use crate::sip::transport::{Peer, Transport};
pub use ids::IdGen;
pub use session::RefreshOutcome;
use shards::ShardedMap;
pub use uac::Dial;
use uac::{InviteClientTx, Outbound};

/// The endpoint's settings, parsed and valid: the configuration's `[sip]` makes them (`config::SipConfig::endpoint`,
/// with the limits below), so their defaults are its.
#[derive(Clone, Debug)]
pub struct EndpointConfig {
    pub timers: Timers,
    pub limits: Limits,
    pub allow: AllowList,
    /// Answer a source outside the allowlist with 403 instead of dropping it silently.
    pub reject_disallowed: bool,
    /// Host put in our Contact; the local listener's address when `None`.
    pub public_host: Option<String>,
    /// Most server and client transactions held at once; beyond it new requests get 503.
    pub max_transactions: usize,
    /// Most calls (dialogs and ringing INVITEs) at once; beyond it INVITEs get 503 + Retry-After.
    pub max_calls: usize,
    pub user_agent: String,
    /// The per-source limit on new INVITEs.
    pub rate: RateConfig,
    /// The per-source limit on every new request (INVITE included, ACK not); its exempt sources are the
    /// INVITE limit's.
    pub request_rate: RateConfig,
    /// Most bytes the server transactions may keep for retransmission (their last responses); beyond it new
    /// requests get a stateless 503.
    pub max_transaction_bytes: usize,
    /// Longest Call-ID, From/To tag and Via a request may carry (400 past them, saying which).
    pub max_call_id: usize,
    pub max_tag: usize,
    pub max_via: usize,
    /// RFC 4028: the smallest session interval taken (seconds; a shorter one gets 422 with this Min-SE).
    pub min_se: u32,
    /// RFC 4028: the session interval asked for in the INVITEs vocals sends (seconds).
    pub session_expires: u32,
}

/// Longest Call-ID, From/To tag and Via a request may carry: past RFC 4475 §3.1.1.4's long values (a 501-byte
/// Call-ID, a 735-byte tag, 40 Vias in 3,660 bytes), which a UAS must take.
pub const MAX_CALL_ID: usize = 1024;
pub const MAX_TAG: usize = 1024;
pub const MAX_VIA: usize = 8192;

/// Our User-Agent (and Server) header.
pub const USER_AGENT: &str = concat!("vocals/", env!("CARGO_PKG_VERSION"));

/// A call as the endpoint and the call layer name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallRef(pub u64);

/// What the endpoint asks of its driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    Transmit { peer: Peer, bytes: Bytes },
    Event(Event),
}

/// What the endpoint tells the call layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A new INVITE, already answered with 100 Trying. The call layer routes it and calls `ringing`,
    /// `answer` or `reject`.
    IncomingCall { call: CallRef, invite: Box<Request>, peer: Peer },
    /// The ACK for our 2xx arrived: media may flow both ways. `answer` is the SDP the ACK carried: the answer to
    /// our offer when the INVITE had none (RFC 3261 §13.2.1).
    CallConfirmed { call: CallRef, answer: Option<Bytes> },
    /// The call is over and its state is gone.
    CallEnded { call: CallRef, why: EndReason },
    /// A re-INVITE in the call; the call layer answers it with `answer_reinvite` (or `reject`).
    ReInvite { call: CallRef, offer: Option<Bytes> },
    /// The final response to our REFER (202: the transfer is under way).
    ReferAnswered { call: CallRef, status: StatusCode },
    /// A NOTIFY about our REFER: the status line of its `message/sipfrag` body, and whether the subscription
    /// is over (`Subscription-State: terminated`).
    ReferNotify { call: CallRef, status: u16, done: bool },
    /// Our outbound INVITE got a provisional response other than 100 (180, 183 ...); `sdp` is its body when it
    /// has one (early media).
    Progress { call: CallRef, status: StatusCode, sdp: Option<Bytes> },
    /// Our outbound INVITE got its first 2xx: the dialog is made and the ACK sent; `sdp` is the answer.
    Answered { call: CallRef, sdp: Option<Bytes> },
    /// DTMF signalled by SIP INFO (`application/dtmf-relay`).
    Dtmf { call: CallRef, digit: char, duration_ms: Option<u32> },
    /// A datagram or request that was not processed, and why (for counters and logs).
    Dropped { why: DropReason, from: SocketAddr },
    /// A transaction of the dialog (the call's INVITE and its 2xx, a refresh either way) put this session timer
    /// in force (RFC 4028), or none: the call layer's clock for it starts again now.
    Session { call: CallRef, timer: Option<crate::sip::session_timer::SessionTimer> },
    /// Offers crossed (glare): one of the peer's got our 491, or ours got theirs.
    Glare { call: CallRef },
    /// Our refresh was not taken: try again later (glare), or the session is over.
    RefreshFailed { call: CallRef, outcome: RefreshOutcome },
}

/// Why a call ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EndReason {
    /// The caller cancelled before the answer (CANCEL, then 487); for an outbound call, our `cancel` (or
    /// `hangup`) before the answer.
    Cancelled,
    /// The caller hung up (BYE), with its Reason header if any.
    RemoteBye { reason: Option<String> },
    /// We hung up (BYE sent and answered, or not answered in time).
    LocalBye,
    /// We refused the INVITE with this status.
    Rejected(StatusCode),
    /// Our 2xx was never ACKed (64·T1): we sent a BYE.
    AckTimeout,
    /// A final response to the INVITE could not be delivered (Timer H).
    ResponseTimeout,
    /// Our outbound INVITE got this 300–699 final response (after the one retry with credentials for a
    /// 401/407), with its reason phrase.
    Failed { status: StatusCode, phrase: String },
    /// Our outbound INVITE got no response in time (Timer B).
    NoResponse,
    /// Our outbound INVITE could not be sent: the connection toward the next hop (a TCP or TLS trunk, or the
    /// outbound proxy) could not be opened, and why (refused, timed out, the TLS handshake failed).
    Unreachable { why: String },
    /// The outbound call was never sent: why (draining, too many calls, a Dial that cannot be written).
    NotDialed { why: &'static str },
}

/// Why something was not processed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// Source outside the allowlist.
    NotAllowed,
    /// Unparseable and unanswerable.
    Malformed,
    /// A response that matches no transaction of ours.
    StrayResponse,
    /// An ACK that matches nothing.
    StrayAck,
    /// A new INVITE from a source over its rate, already answered 503 (see [`crate::sip::ratelimit`]).
    RateLimited,
    /// A new request answered 503 without a transaction: the retained-transaction byte budget is spent.
    OverBudget,
}

impl DropReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::NotAllowed => "not_allowed",
            DropReason::Malformed => "malformed",
            DropReason::StrayResponse => "stray_response",
            DropReason::StrayAck => "stray_ack",
            DropReason::RateLimited => "rate_limited",
            DropReason::OverBudget => "over_budget",
        }
    }
}

/// Table sizes, for metrics and readiness.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sizes {
    pub server_transactions: usize,
    /// Bytes the server transactions keep for retransmission.
    pub retained_bytes: usize,
    pub client_transactions: usize,
    pub dialogs: usize,
    pub calls: usize,
}

/// The UAS endpoint.
pub struct Endpoint {
    config: EndpointConfig,
    ids: IdGen,
    /// The server transaction tables, sharded: they grow to hundreds of thousands of entries (see
    /// [`ShardedMap`]).
    invites: ShardedMap<TransactionKey, InviteTx>,
    non_invites: ShardedMap<TransactionKey, NonInviteTx>,
    clients: HashMap<TransactionKey, ClientTx>,
    /// Our INVITEs' client transactions.
    client_invites: HashMap<TransactionKey, InviteClientTx>,
    dialogs: HashMap<DialogId, CallRef>,
    calls: HashMap<CallRef, Call>,
    draining: bool,
    limiter: RateLimiter,
    requests: RateLimiter,
    /// Bytes the server transactions keep (see [`EndpointConfig::max_transaction_bytes`]).
    retained: usize,
    out: VecDeque<Output>,
    /// Every transaction's deadline, earliest first, so neither `poll_timeout` nor `handle_timeout` walks the
    /// tables (at thousands of calls a second, Timer J and Timer L keep tens of thousands of finished
    /// transactions for 32 s). Entries are pushed whenever a transaction may have changed its deadline and are
    /// checked against it when they come due, so an outdated one costs a look-up, never a wrong firing.
    timers: BinaryHeap<Reverse<Timer>>,
    timer_seq: u64,
}

/// Which table a [`Timer`] names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Table {
    Invite,
    NonInvite,
    Client,
    ClientInvite,
}

/// A transaction's deadline as the timer heap holds it.
#[derive(Debug)]
struct Timer {
    at: Instant,
    /// Insertion order: ties in `at` fire first in, first out.
    seq: u64,
    table: Table,
    key: TransactionKey,
}

impl PartialEq for Timer {
    fn eq(&self, other: &Timer) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl Eq for Timer {}

impl PartialOrd for Timer {
    fn partial_cmp(&self, other: &Timer) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Timer {
    fn cmp(&self, other: &Timer) -> Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// An INVITE server transaction and the call it belongs to; `bytes`: what it keeps, as last counted.
struct InviteTx {
    tx: ServerInvite,
    peer: Peer,
    call: CallRef,
    bytes: usize,
}

/// A non-INVITE server transaction; `bytes`: what it keeps, as last counted.
struct NonInviteTx {
    tx: ServerNonInvite,
    peer: Peer,
    bytes: usize,
}

/// A non-INVITE client transaction (our BYE, REFER, CANCEL) and the call it belongs to.
struct ClientTx {
    tx: ClientNonInvite,
    peer: Peer,
    call: Option<CallRef>,
    method: crate::sip::message::Method,
    /// What answering a 401/407 to it takes, for a BYE or REFER of an outbound call whose trunk has
    /// credentials: the retry is built from it, once.
    retry: Option<Box<uac::Retry>>,
}

/// One call's signalling state.
struct Call {
    invite: Request,
    invite_key: TransactionKey,
    peer: Peer,
    to_tag: String,
    phase: Phase,
    /// Present once answered (or while a re-INVITE is answered).
    dialog: Option<Dialog>,
    /// The pending re-INVITE's transaction key, while the call layer prepares its answer.
    reinvite: Option<(TransactionKey, Request)>,
    /// An outbound call's UAC state: `invite` is then ours, `invite_key` its client transaction, `peer` the
    /// dial's next hop and `to_tag` our From tag.
    outbound: Option<Box<Outbound>>,
    /// The session timer and our offers in the dialog.
    session: session::SessionState,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// 100 sent, maybe 18x; no final response yet.
    Early,
    /// 2xx sent, waiting for the ACK.
    Answered,
    Confirmed,
    /// Our BYE is out.
    Ending,
}

impl Endpoint {
    pub fn new(config: EndpointConfig, ids: IdGen) -> Endpoint {
        Endpoint {
            ids,
            invites: ShardedMap::new(),
            non_invites: ShardedMap::new(),
            clients: HashMap::new(),
            client_invites: HashMap::new(),
            dialogs: HashMap::new(),
            calls: HashMap::new(),
            draining: false,
            limiter: RateLimiter::new(config.rate.clone()),
            requests: RateLimiter::new(config.request_rate.clone()),
            retained: 0,
            out: VecDeque::new(),
            timers: BinaryHeap::new(),
            timer_seq: 0,
            config,
        }
    }

    /// The SIP Call-ID of a call in progress.
    pub fn call_id(&self, call: CallRef) -> Option<String> {
        let c = self.calls.get(&call)?;
        c.invite.headers.get(&crate::sip::message::HeaderName::CallId).map(|v| String::from_utf8_lossy(v).into_owned())
    }

    pub fn config(&self) -> &EndpointConfig {
        &self.config
    }

    /// A new allowlist (SIGHUP): it applies to the next request.
    pub fn set_allow(&mut self, allow: AllowList, reject_disallowed: bool) {
        self.config.allow = allow;
        self.config.reject_disallowed = reject_disallowed;
    }

    /// Stop taking calls: new INVITEs get 503 + Retry-After, calls in progress continue.
    pub fn set_draining(&mut self, draining: bool) {
        self.draining = draining;
    }

    pub fn sizes(&self) -> Sizes {
        Sizes {
            server_transactions: self.invites.len() + self.non_invites.len(),
            retained_bytes: self.retained,
            client_transactions: self.clients.len() + self.client_invites.len(),
            dialogs: self.dialogs.len(),
            calls: self.calls.len(),
        }
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// The earliest deadline of any transaction (an outdated one at worst: the wake-up then finds nothing due).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse(t)| t.at)
    }

    /// Runs every transaction whose deadline has come (once each: a deadline its run leaves due waits for the
    /// next call).
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut due = Vec::new();
        while self.timers.peek().is_some_and(|Reverse(t)| t.at <= now) {
            if let Some(Reverse(t)) = self.timers.pop() {
                due.push(t);
            }
        }
        let ripe = |t: Option<Instant>| t.is_some_and(|t| t <= now);
        for Timer { table, key, .. } in due {
            match table {
                Table::Invite => {
                    let Some(t) = self.invites.get_mut(&key).filter(|t| ripe(t.tx.poll_timeout())) else { continue };
                    t.tx.handle_timeout(now);
                    self.drain_invite(now, &key);
                }
                Table::NonInvite => {
                    let Some(NonInviteTx { tx: t, .. }) =
                        self.non_invites.get_mut(&key).filter(|e| ripe(e.tx.poll_timeout()))
                    else {
                        continue;
                    };
                    t.handle_timeout(now);
                    self.drain_non_invite(&key);
                }
                Table::Client => {
                    let Some(t) = self.clients.get_mut(&key).filter(|t| ripe(t.tx.poll_timeout())) else { continue };
                    t.tx.handle_timeout(now);
                    self.drain_client(&key);
                }
                Table::ClientInvite => {
                    let Some(t) = self.client_invites.get_mut(&key).filter(|t| ripe(t.tx.poll_timeout())) else {
                        continue;
                    };
                    t.tx.handle_timeout(now);
                    self.drain_client_invite(&key);
                }
            }
        }
    }

    /// Puts a transaction's current deadline on the timer heap.
    fn schedule(&mut self, table: Table, key: &TransactionKey, at: Option<Instant>) {
        if let Some(at) = at {
            self.timer_seq += 1;
            self.timers.push(Reverse(Timer { at, seq: self.timer_seq, table, key: key.clone() }));
        }
    }

    fn event(&mut self, e: Event) {
        self.out.push_back(Output::Event(e));
    }

    fn transmit(&mut self, peer: Peer, bytes: Bytes) {
        self.out.push_back(Output::Transmit { peer, bytes });
    }

    /// Ends a call: forgets its dialog and tells the call layer once.
    fn end_call(&mut self, call: CallRef, why: EndReason) {
        if let Some(c) = self.calls.remove(&call) {
            if let Some(d) = c.dialog {
                self.dialogs.remove(&d.id);
            }
            self.event(Event::CallEnded { call, why });
        }
    }

    /// Hands the INVITE transaction's outputs to the driver and reacts to its events.
    fn drain_invite(&mut self, now: Instant, key: &TransactionKey) {
        use crate::sip::transaction::{Output as TxOut, TransactionEvent as E};
        let Some(entry) = self.invites.get_mut(key) else { return };
        let (peer, call, outs) = (entry.peer, entry.call, entry.tx.take_outputs());
        for o in outs {
            match o {
                TxOut::Transmit(bytes) => self.transmit(peer, bytes),
                TxOut::Event(E::AckTimeout) => self.ack_timeout(now, call),
                TxOut::Event(E::Timeout) => self.end_call(call, EndReason::ResponseTimeout),
                TxOut::Event(E::Terminated) => {
                    if let Some(gone) = self.invites.remove(key) {
                        self.retained -= gone.bytes;
                    }
                }
            }
        }
        if let Some(e) = self.invites.get_mut(key) {
            let bytes = e.tx.retained();
            self.retained = self.retained + bytes - e.bytes;
            e.bytes = bytes;
        }
        let at = self.invites.get(key).and_then(|e| e.tx.poll_timeout());
        self.schedule(Table::Invite, key, at);
    }

    fn drain_non_invite(&mut self, key: &TransactionKey) {
        use crate::sip::transaction::{Output as TxOut, TransactionEvent as E};
        let Some(entry) = self.non_invites.get_mut(key) else { return };
        let (peer, outs) = (entry.peer, entry.tx.take_outputs());
        for o in outs {
            match o {
                TxOut::Transmit(bytes) => self.transmit(peer, bytes),
                TxOut::Event(E::Terminated) => {
                    if let Some(gone) = self.non_invites.remove(key) {
                        self.retained -= gone.bytes;
                    }
                }
                TxOut::Event(_) => {}
            }
        }
        if let Some(e) = self.non_invites.get_mut(key) {
            let bytes = e.tx.retained();
            self.retained = self.retained + bytes - e.bytes;
            e.bytes = bytes;
        }
        let at = self.non_invites.get(key).and_then(|e| e.tx.poll_timeout());
        self.schedule(Table::NonInvite, key, at);
    }

    fn drain_client(&mut self, key: &TransactionKey) {
        use crate::sip::transaction::{Output as TxOut, TransactionEvent as E};
        let Some(entry) = self.clients.get_mut(key) else { return };
        let (peer, call, method, outs) = (entry.peer, entry.call, entry.method.clone(), entry.tx.take_outputs());
        for o in outs {
            match o {
                TxOut::Transmit(bytes) => self.transmit(peer, bytes),
                TxOut::Event(E::Timeout) if method == crate::sip::message::Method::Update => {
                    if let Some(call) = call {
                        let outcome = RefreshOutcome::Failed(StatusCode::REQUEST_TIMEOUT);
                        self.event(Event::RefreshFailed { call, outcome });
                    }
                }
                TxOut::Event(E::Timeout) if method == crate::sip::message::Method::Refer => {
                    if let Some(call) = call {
                        self.event(Event::ReferAnswered { call, status: StatusCode::REQUEST_TIMEOUT });
                    }
                }
                TxOut::Event(E::Timeout) => {
                    // Our BYE got no answer in 64·T1: the call is over regardless.
                    if let Some(call) = call {
                        self.end_call(call, EndReason::LocalBye);
                    }
                }
                TxOut::Event(E::Terminated) => {
                    self.clients.remove(key);
                }
                TxOut::Event(E::AckTimeout) => {}
            }
        }
        let at = self.clients.get(key).and_then(|e| e.tx.poll_timeout());
        self.schedule(Table::Client, key, at);
    }

    /// Our 2xx was never ACKed: end the session with a BYE (RFC 3261 §13.3.1.4).
    fn ack_timeout(&mut self, now: Instant, call: CallRef) {
        if self.calls.get(&call).is_some_and(|c| c.phase == Phase::Answered) {
            self.send_bye(now, call, Some(Reason::new("SIP", 408, "ACK not received")), &[]);
        }
        self.end_call(call, EndReason::AckTimeout);
    }

    /// Ends a call from our side with a BYE through the dialog's route set, to the dialog's next hop.
    fn send_bye(
        &mut self,
        now: Instant,
        call: CallRef,
        reason: Option<Reason>,
        headers: &[(crate::sip::message::HeaderName, String)],
    ) {
        let branch = self.ids.branch();
        let Some(c) = self.calls.get_mut(&call) else { return };
        let Some(dialog) = c.dialog.as_mut() else { return };
        let via = transport::our_via(self.config.public_host.as_deref(), &c.peer, &branch);
        let mut bye = dialog.request(crate::sip::message::Method::Bye, &via);
        if let Some(r) = reason {
            bye.headers.push(crate::sip::message::HeaderName::Reason, r.to_bytes());
        }
        for (name, value) in headers {
            bye.headers.push(name.clone(), value.clone());
        }
        c.phase = Phase::Ending;
        let peer = dialog_destination(dialog, c.outbound.is_some(), c.peer);
        let key = TransactionKey::Client { branch: Bytes::from(branch), method: crate::sip::message::Method::Bye };
        let tx = ClientNonInvite::new(now, bye.to_bytes(), peer.transport.is_reliable(), self.config.timers);
        let method = crate::sip::message::Method::Bye;
        let retry = c.retry(&bye);
        self.clients.insert(key.clone(), ClientTx { tx, peer, call: Some(call), method, retry });
        self.drain_client(&key);
    }

    /// A blind transfer (RFC 3515): REFER in the dialog with `Refer-To: <target>`. Its final response comes
    /// back as [`Event::ReferAnswered`], the transfer's progress as [`Event::ReferNotify`]. A target that is not
    /// a URI (the call layer's transfer policy never gives one) is refused here, as a 400 would be.
    pub fn refer(&mut self, now: Instant, call: CallRef, target: &str) {
        self.refer_with(now, call, target, &[]);
    }

    /// [`Endpoint::refer`], the REFER carrying `headers` too (the agent's).
    pub fn refer_with(
        &mut self,
        now: Instant,
        call: CallRef,
        target: &str,
        headers: &[(crate::sip::message::HeaderName, String)],
    ) {
        use crate::sip::message::typed::ReferTo;
        use crate::sip::message::{HeaderName, Method, Uri};
        let branch = self.ids.branch();
        let Some(c) = self.calls.get_mut(&call) else { return };
        if c.phase != Phase::Confirmed {
            return;
        }
        let Some(dialog) = c.dialog.as_mut() else { return };
        let Ok(uri) = Uri::parse(&Bytes::copy_from_slice(target.as_bytes())) else {
            return self.event(Event::ReferAnswered { call, status: StatusCode::BAD_REQUEST });
        };
        let via = transport::our_via(self.config.public_host.as_deref(), &c.peer, &branch);
        let mut refer = dialog.request(Method::Refer, &via);
        refer.headers.push(HeaderName::ReferTo, ReferTo::new(uri).to_bytes());
        refer.headers.push(HeaderName::Contact, transport::our_contact(self.config.public_host.as_deref(), &c.peer));
        for (name, value) in headers {
            refer.headers.push(name.clone(), value.clone());
        }
        let peer = dialog_destination(dialog, c.outbound.is_some(), c.peer);
        let key = TransactionKey::Client { branch: Bytes::from(branch), method: Method::Refer };
        let tx = ClientNonInvite::new(now, refer.to_bytes(), peer.transport.is_reliable(), self.config.timers);
        let retry = c.retry(&refer);
        self.clients.insert(key.clone(), ClientTx { tx, peer, call: Some(call), method: Method::Refer, retry });
        self.drain_client(&key);
    }
}

/// Where a request in a call's dialog goes, given the call's `peer`: for an outbound call that peer, the dial's
/// next hop (the proxy or trunk the INVITE went to); for an inbound one the dialog's next hop as the transport
/// layer resolves it.
fn dialog_destination(dialog: &Dialog, outbound: bool, peer: Peer) -> Peer {
    if outbound { peer } else { transport::request_destination(&dialog.next_hop(), peer) }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod uac_tests;

#[cfg(test)]
mod session_tests;
