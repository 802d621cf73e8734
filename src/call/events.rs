//! What goes into the call layer and what comes out of it. Inputs are typed events from each side of a call:
//! the endpoint (SIP), the media plane, the agent, an admin, a timer. Outputs are typed commands: to the
//! endpoint (ring, answer, refuse, BYE, REFER) and to the media plane (open, update, tell the agent, close).
//! The shell that owns the sockets applies the commands in order ([`run_commands`]); nothing here does I/O.

use std::io;

use bytes::Bytes;

use super::outbound::Refusal;
use super::{CallInfo, Callback, Calls, DialRequest, Ending, HangupOutcome, HangupRequest, Readiness};
use crate::agent::transfer::TransferStatus;
use crate::media::session::Stream;
use crate::sip::endpoint::{CallRef, Dial, Endpoint, Event};
use crate::sip::message::typed::Reason;
use crate::sip::message::{HeaderName, StatusCode};
use crate::twilio::calls::CallView;

/// An event for the call layer.
#[derive(Debug)]
pub enum Input<'a> {
    /// The endpoint reported something about a call: a new INVITE, its ACK, a re-INVITE, a REFER's progress,
    /// DTMF in an INFO, the call's end.
    Sip(&'a Event),
    /// The media plane, about one call.
    Media(CallRef, MediaInput),
    /// The call's agent, through its stream.
    Agent(CallRef, AgentInput),
    /// An admin, the agent's framework through the REST API, or the drain.
    Admin(AdminInput),
    /// A deadline the call layer asked for ([`Calls::poll_timeout`]) came.
    Timer,
    /// The endpoint took the call layer's last [`SipCommand::Dial`] under this call, with this SIP Call-ID.
    Dialed(CallRef, Option<String>),
}

/// What the media plane reports about a call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MediaInput {
    /// The call's sockets are bound on the port asked for; `Later`: its agent is being reached.
    Opened(Readiness),
    /// The port asked for could not be bound (another program holds it), and why.
    OpenFailed(String),
    /// The agent is reached: a ringing call is answered.
    Ready,
    /// The agent could not be reached: a ringing call is refused.
    Failed(String),
    /// The media or the agent asks for the call to end.
    Ended(Ending),
}

/// What an agent asks of its call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AgentInput {
    /// A blind transfer of the caller to this target (`+E.164`, `sip:` or `tel:`), with headers for the REFER.
    Transfer(String, Vec<(String, String)>),
}

/// What an admin, the REST API or the drain asks.
#[derive(Clone, Debug)]
pub enum AdminInput {
    /// The Twilio-compatible REST hang-up.
    Rest(HangupRequest),
    /// The admin API's hang-up of the call with this vocals id or CallSid.
    End(String),
    /// Every call, for this reason (the drain timeout passed).
    EndAll(String),
    /// Place a call (the Twilio-compatible `Calls.json` or the admin API).
    Dial(Box<DialRequest>),
    /// An outbound call's status, by CallSid.
    View(String),
}

/// The call layer's answer to an input: only admin inputs have one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    None,
    Rest(HangupOutcome),
    /// Whether the call asked for was found.
    Ended(bool),
    /// The call placed (queued), or why not.
    Dial(Result<CallView, Refusal>),
    View(Option<CallView>),
}

/// What the call layer asks of the endpoint or the media plane.
#[derive(Clone, Debug)]
pub enum Command {
    Sip(SipCommand),
    Media(MediaCommand),
    /// A status callback to post (a call vocals placed).
    Callback(Callback),
}

/// What the call layer asks of the SIP endpoint.
#[derive(Clone, Debug)]
pub enum SipCommand {
    /// Send an INVITE (a call vocals places); the endpoint's name for it comes back as [`Input::Dialed`].
    Dial(Box<Dial>),
    /// Withdraw a call not answered yet (CANCEL).
    Cancel(CallRef),
    /// 180 Ringing.
    Ring(CallRef),
    /// 200 OK with our SDP.
    Answer(CallRef, Bytes),
    /// A final response refusing the INVITE (or the pending re-INVITE).
    Refuse { call: CallRef, status: StatusCode, phrase: String, headers: Vec<(HeaderName, String)> },
    /// Our BYE with a Reason (RFC 3326), and headers the agent asked for.
    Bye(CallRef, Reason, Vec<(HeaderName, String)>),
    /// A REFER to this URI (RFC 3515), with headers the agent asked for.
    Refer(CallRef, String, Vec<(HeaderName, String)>),
    /// 200 OK to the pending re-INVITE (or UPDATE) with our SDP.
    AnswerReinvite(CallRef, Bytes),
    /// Refresh the session (RFC 4028): UPDATE, or a re-INVITE with our SDP unchanged.
    Refresh(CallRef),
}

impl SipCommand {
    /// Carries the command out; a dial's call is what it gives back.
    pub fn apply(self, now: std::time::Instant, ep: &mut Endpoint) -> Option<CallRef> {
        match self {
            SipCommand::Dial(dial) => return Some(ep.dial(now, *dial)),
            SipCommand::Cancel(call) => ep.cancel(now, call),
            SipCommand::Ring(call) => ep.ringing(now, call),
            SipCommand::Answer(call, sdp) => ep.answer(now, call, sdp),
            SipCommand::Refuse { call, status, phrase, headers } => ep.reject(now, call, status, &phrase, &headers),
            SipCommand::Bye(call, reason, headers) => ep.hangup_with(now, call, Some(reason), &headers),
            SipCommand::Refer(call, uri, headers) => ep.refer_with(now, call, &uri, &headers),
            SipCommand::AnswerReinvite(call, sdp) => ep.answer_reinvite(now, call, sdp),
            SipCommand::Refresh(call) => ep.refresh(now, call),
        }
        None
    }
}

/// What the call layer asks of the media plane.
#[derive(Clone, Debug)]
pub enum MediaCommand {
    /// Bind the call's RTP and RTCP sockets on `port` and `port + 1` and start its media towards its agent.
    /// Answered with [`MediaInput::Opened`] or [`MediaInput::OpenFailed`].
    Open { call: CallRef, port: u16, info: Box<CallInfo>, stream: Stream },
    /// A new SDP exchange in the call (re-INVITE, the answer in the ACK).
    Update(CallRef, Stream),
    /// Tell the agent how its transfer is going (and the SIP status that says so).
    TransferStatus(CallRef, TransferStatus, u16),
    /// Tell the agent its transfer was refused by the transfer policy (no REFER sent), and why.
    TransferRefused(CallRef, String),
    /// A DTMF digit the caller signalled in SIP (INFO), for the agent as if it came in RTP (RFC 4733).
    Dtmf(CallRef, char),
    /// The call is over: stop its media and write its media record, which says how its agent link ended.
    Close(CallRef, String),
}

/// Where each call's media runs: the tokio shell binds sockets and spawns a task per call; tests record.
pub trait MediaPlane: Send {
    /// Opens the call's RTP and RTCP sockets on `port` and `port + 1` and starts its media towards its agent.
    /// An error (the port is taken by another program) makes the call layer try another port. `Later` means
    /// the agent is being reached (its WebSocket opened while the call rings): the plane reports
    /// [`MediaInput::Ready`] or [`MediaInput::Failed`] when it knows.
    fn open(&mut self, call: CallRef, port: u16, info: &CallInfo, stream: Stream) -> io::Result<Readiness>;
    fn update(&mut self, call: CallRef, stream: Stream);
    fn transfer_status(&mut self, call: CallRef, status: TransferStatus, sip_status: u16);
    fn transfer_refused(&mut self, call: CallRef, reason: String);
    fn dtmf(&mut self, call: CallRef, digit: char);
    /// The call is over: `agent` says how its agent link ended, for the media record.
    fn close(&mut self, call: CallRef, agent: &str);
}

impl MediaCommand {
    /// Carries the command out; an open's outcome is the input it gives back.
    pub fn apply(self, plane: &mut dyn MediaPlane) -> Option<(CallRef, MediaInput)> {
        match self {
            MediaCommand::Open { call, port, info, stream } => {
                let outcome = match plane.open(call, port, &info, stream) {
                    Ok(readiness) => MediaInput::Opened(readiness),
                    Err(e) => MediaInput::OpenFailed(e.to_string()),
                };
                return Some((call, outcome));
            }
            MediaCommand::Update(call, stream) => plane.update(call, stream),
            MediaCommand::TransferStatus(call, status, sip) => plane.transfer_status(call, status, sip),
            MediaCommand::TransferRefused(call, reason) => plane.transfer_refused(call, reason),
            MediaCommand::Dtmf(call, digit) => plane.dtmf(call, digit),
            MediaCommand::Close(call, agent) => plane.close(call, &agent),
        }
        None
    }
}

/// Applies the call layer's commands in order until none is left: SIP ones to the endpoint (whose outputs the
/// caller then hands on), media ones to the plane, whose answers go back in as inputs; status callbacks go to
/// `callbacks`.
pub fn run_commands(
    calls: &mut Calls,
    now: std::time::Instant,
    ep: &mut Endpoint,
    plane: &mut dyn MediaPlane,
    callbacks: &mut dyn FnMut(Callback),
) {
    while let Some(command) = calls.poll_command() {
        match command {
            Command::Callback(cb) => callbacks(cb),
            Command::Sip(c) => {
                if let Some(call) = c.apply(now, ep) {
                    let call_id = ep.call_id(call);
                    calls.handle(now, Input::Dialed(call, call_id));
                }
            }
            Command::Media(c) => {
                if let Some((call, back)) = c.apply(plane) {
                    calls.handle(now, Input::Media(call, back));
                }
            }
        }
    }
}
