//! The call layer as signalling needs it: routes each incoming call to its agent (404, 480, 403 otherwise),
//! negotiates SDP (488 with a Warning when nothing fits), leases an RTP port, rings and answers, and ends
//! calls that outlive `max_call_duration` with our BYE. Synchronous and sans-IO: the driver calls it with each
//! endpoint event and runs its deadline. Media and the agent stream join the call here in later layers.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::media::ports::PortPool;
pub use crate::media::ports::PortRange;
use crate::routing::{NumberLookup, route};
use crate::sdp::{self, Local, Offer};
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
    ports: PortPool,
    active: HashMap<CallRef, Active>,
    session_ids: u64,
}

impl Calls {
    pub fn new(config: CallConfig) -> Calls {
        // A port rests 2 s after its call, past any late packet of that call.
        let ports = PortPool::new(config.rtp_ports, Duration::from_secs(2));
        Calls { config, ports, active: HashMap::new(), session_ids: 0 }
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
        let Some(port) = self.ports.lease(now) else {
            let retry = [(HeaderName::RetryAfter, "5".to_string())];
            return ep.reject(now, call, StatusCode::SERVICE_UNAVAILABLE, "No RTP Port Available", &retry);
        };
        let local = self.local(port);
        let sdp = if invite.body.is_empty() {
            // No offer: ours goes in the 200, the answer comes in the ACK (RFC 3261 §13.2.1).
            sdp::offer(&local)
        } else {
            match Offer::parse(&invite.body).and_then(|o| sdp::negotiate(&o, self.config.srtp)) {
                Ok(neg) => sdp::answer(&neg, &local),
                Err(e) => {
                    self.ports.release(now, port);
                    let warning = [(HeaderName::Warning, e.warning("vocals"))];
                    let status = StatusCode::new(e.status()).unwrap_or(StatusCode::NOT_ACCEPTABLE_HERE);
                    return ep.reject(now, call, status, &e.to_string(), &warning);
                }
            }
        };
        let deadline = now + self.config.max_call_duration;
        let offered = invite.body.is_empty();
        self.active.insert(call, Active { port, deadline, agent: routed.agent, offered });
        ep.ringing(now, call);
        ep.answer(now, call, sdp);
    }

    /// When we made the offer, the ACK must carry a usable answer; otherwise the session cannot start and the
    /// call is ended with a BYE saying why.
    fn confirmed(&mut self, ep: &mut Endpoint, now: Instant, call: CallRef, answer: Option<&Bytes>) {
        if !self.active.get(&call).is_some_and(|a| a.offered) {
            return;
        }
        let outcome = match answer {
            None => Err("the ACK carried no SDP answer to our offer".to_string()),
            Some(body) => Offer::parse(body)
                .and_then(|a| sdp::negotiate(&a, self.config.srtp))
                .map(drop)
                .map_err(|e| e.to_string()),
        };
        if let Err(why) = outcome {
            tracing::info!(call = call.0, %why, "ending the call: no usable answer");
            ep.hangup(now, call, Some(Reason::new("SIP", 488, &why)));
        }
    }

    /// Hold, resume or a new offer: answered on the same port with the RFC 3264 direction.
    fn reinvite(&mut self, ep: &mut Endpoint, now: Instant, call: CallRef, offer: Option<&Bytes>) {
        let Some(port) = self.active.get(&call).map(|a| a.port) else { return };
        let local = self.local(port);
        let sdp = match offer {
            None => sdp::offer(&local),
            Some(body) => match Offer::parse(body).and_then(|o| sdp::negotiate(&o, self.config.srtp)) {
                Ok(neg) => sdp::answer(&neg, &local),
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
