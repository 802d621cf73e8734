//! The call layer: routes each incoming call to its agent (404, 480, 403 otherwise), negotiates SDP (488 with
//! a Warning when nothing fits), leases an RTP port and opens the call's media on it (503 when no port can be
//! had), rings and answers, follows re-INVITEs and the ACK's answer into the media, and ends calls that outlive
//! `max_call_duration` or that the media gave up on with our BYE and a Reason. Synchronous and sans-IO: the
//! driver calls it with each endpoint event and runs its deadline; the media runs behind [`MediaPlane`].

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::media::ports::PortPool;
pub use crate::media::ports::PortRange;
use crate::media::session::{MediaEnd, Stream};
use crate::routing::{NumberLookup, route};
use crate::sdp::{self, Codec, Direction, Local, Offer};
use crate::sip::endpoint::{CallRef, Endpoint, Event};
use crate::sip::message::typed::Reason;
use crate::sip::message::{HeaderName, StatusCode};

/// What the call layer needs to decide.
#[derive(Clone)]
pub struct CallConfig {
    pub numbers: Arc<dyn NumberLookup>,
    /// The address put in our SDP: never 0.0.0.0.
    pub media_ip: IpAddr,
    pub rtp_ports: PortRange,
    pub max_call_duration: Duration,
    pub srtp: bool,
}

/// Where each call's media runs: the tokio shell binds sockets and spawns a task per call; tests record.
pub trait MediaPlane: Send {
    /// Opens the call's RTP and RTCP sockets on `port` and `port + 1` and starts its media towards `agent`.
    /// An error (the port is taken by another program) makes the caller try another port.
    fn open(&mut self, call: CallRef, port: u16, agent: &str, stream: Stream) -> io::Result<()>;
    /// A new SDP exchange in the call (re-INVITE, the answer in the ACK).
    fn update(&mut self, call: CallRef, stream: Stream);
    /// The call is over: stop its media and write its record.
    fn close(&mut self, call: CallRef);
}

/// Ports tried for one call before it is refused with 503 (others may be bound by other programs).
const BIND_ATTEMPTS: usize = 8;

struct Active {
    port: u16,
    deadline: Instant,
    agent: String,
    /// We made the offer (the INVITE had none): the answer must come in the ACK.
    offered: bool,
}

/// The calls in progress, as signalling sees them.
pub struct Calls {
    config: CallConfig,
    media: Box<dyn MediaPlane>,
    ports: PortPool,
    active: HashMap<CallRef, Active>,
    session_ids: u64,
}

impl Calls {
    pub fn new(config: CallConfig, media: Box<dyn MediaPlane>) -> Calls {
        // A port rests 2 s after its call, past any late packet of that call.
        let ports = PortPool::new(config.rtp_ports, Duration::from_secs(2));
        Calls { config, media, ports, active: HashMap::new(), session_ids: 0 }
    }

    pub fn active(&self) -> usize {
        self.active.len()
    }

    /// The agent answering `call`, while it lasts.
    pub fn agent(&self, call: CallRef) -> Option<&str> {
        self.active.get(&call).map(|a| a.agent.as_str())
    }

    /// Reacts to one endpoint event.
    pub fn on_event(&mut self, now: Instant, ep: &mut Endpoint, event: &Event) {
        match event {
            Event::IncomingCall { call, invite, .. } => self.incoming(now, ep, *call, invite),
            Event::CallEnded { call, .. } => {
                if let Some(a) = self.active.remove(call) {
                    self.media.close(*call);
                    self.ports.release(now, a.port);
                }
            }
            Event::ReInvite { call, offer } => self.reinvite(ep, now, *call, offer.as_ref()),
            Event::CallConfirmed { call, answer } => self.confirmed(ep, now, *call, answer.as_ref()),
            _ => {}
        }
    }

    fn incoming(&mut self, now: Instant, ep: &mut Endpoint, call: CallRef, invite: &crate::sip::message::Request) {
        let routed = match route(invite, self.config.numbers.as_ref()) {
            Ok(r) => r,
            Err(reject) => return ep.reject(now, call, reject.status(), &reject.to_string(), &[]),
        };
        let offered = invite.body.is_empty();
        let negotiated = if offered {
            None
        } else {
            match Offer::parse(&invite.body).and_then(|o| sdp::negotiate(&o, self.config.srtp)) {
                Ok(neg) => Some(neg),
                Err(e) => {
                    let warning = [(HeaderName::Warning, e.warning("vocals"))];
                    let status = StatusCode::new(e.status()).unwrap_or(StatusCode::NOT_ACCEPTABLE_HERE);
                    return ep.reject(now, call, status, &e.to_string(), &warning);
                }
            }
        };
        // No offer: ours goes in the 200 and the answer comes in the ACK (RFC 3261 §13.2.1); until then the
        // stream is what we offered, with no remote address.
        let stream = negotiated.as_ref().map_or_else(our_offer, Stream::from);
        let Some(port) = self.open_media(now, call, &routed.agent, stream) else {
            let retry = [(HeaderName::RetryAfter, "5".to_string())];
            return ep.reject(now, call, StatusCode::SERVICE_UNAVAILABLE, "No RTP Port Available", &retry);
        };
        let local = self.local(port);
        let sdp = match &negotiated {
            Some(neg) => sdp::answer(neg, &local),
            None => sdp::offer(&local),
        };
        let deadline = now + self.config.max_call_duration;
        self.active.insert(call, Active { port, deadline, agent: routed.agent, offered });
        ep.ringing(now, call);
        ep.answer(now, call, sdp);
    }

    /// Leases a port and opens the call's media on it, trying further ports while they are taken.
    fn open_media(&mut self, now: Instant, call: CallRef, agent: &str, stream: Stream) -> Option<u16> {
        for _ in 0..BIND_ATTEMPTS {
            let port = self.ports.lease(now)?;
            match self.media.open(call, port, agent, stream) {
                Ok(()) => return Some(port),
                Err(e) => {
                    tracing::warn!(port, error = %e, "RTP port unusable; trying another");
                    self.ports.release(now, port);
                }
            }
        }
        None
    }

    /// The media asks for the call to end: our BYE, with a Reason that says why.
    pub fn media_ended(&mut self, now: Instant, ep: &mut Endpoint, call: CallRef, why: MediaEnd) {
        if !self.active.contains_key(&call) {
            return;
        }
        let MediaEnd::Timeout(after) = why;
        let text = format!("no RTP received for {} s", after.as_secs());
        ep.hangup(now, call, Some(Reason::new("SIP", 408, &text)));
    }

    /// When we made the offer, the ACK must carry a usable answer; otherwise the session cannot start and the
    /// call is ended with a BYE saying why.
    fn confirmed(&mut self, ep: &mut Endpoint, now: Instant, call: CallRef, answer: Option<&Bytes>) {
        if !self.active.get(&call).is_some_and(|a| a.offered) {
            return;
        }
        let outcome = match answer {
            None => Err("the ACK carried no SDP answer to our offer".to_string()),
            Some(body) => {
                Offer::parse(body).and_then(|a| sdp::negotiate(&a, self.config.srtp)).map_err(|e| e.to_string())
            }
        };
        match outcome {
            Ok(neg) => self.media.update(call, Stream::from(&neg)),
            Err(why) => {
                tracing::info!(call = call.0, %why, "ending the call: no usable answer");
                ep.hangup(now, call, Some(Reason::new("SIP", 488, &why)));
            }
        }
    }

    /// Hold, resume or a new offer: answered on the same port with the RFC 3264 direction.
    fn reinvite(&mut self, ep: &mut Endpoint, now: Instant, call: CallRef, offer: Option<&Bytes>) {
        let Some(port) = self.active.get(&call).map(|a| a.port) else { return };
        let local = self.local(port);
        let sdp = match offer {
            None => sdp::offer(&local),
            Some(body) => match Offer::parse(body).and_then(|o| sdp::negotiate(&o, self.config.srtp)) {
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
            ep.hangup(now, call, Some(Reason::new("SIP", 200, "maximum call duration reached")));
        }
    }
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
    }
}
