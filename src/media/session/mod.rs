//! One call's media, sans-IO. Uplink: datagram -> RTP parse -> source latch and payload-type filter -> jitter
//! buffer (telephone-event to the DTMF receiver) -> 20 ms μ-law frames for the agent. Downlink: the agent's
//! μ-law audio -> playout queue -> one RTP packet per 20 ms tick of a steady clock (ticks are `start + k·20 ms`,
//! so processing time never makes the stream drift). RTCP every `rtcp_interval`; no RTP for `media_timeout`
//! while the call is not on hold ends the call. The agent side always speaks μ-law (Twilio Media Streams'
//! `audio/x-mulaw`): a PCMA call is transcoded through linear PCM both ways. Owned by one call task: no locks,
//! and nothing on the per-packet path allocates.

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use super::dtmf::{Digit, DtmfReceiver};
use super::g711;
use super::histogram::DelayHistogram;
use super::jitter::{JitterBuffer, JitterConfig, JitterStats, Packet, Popped, Pushed};
use super::playout::{FRAME_BYTES, PlayoutQueue};
use super::recording::{StereoFrame, Tape};
use super::rtcp::{PeerView, Rtcp, Sending, ntp};
use super::rtp::{self, RtpPacket};
use super::srtp::{Srtp, SrtpError};
use crate::sdp::{Codec, Direction, Negotiated, SrtpKeys};

const TICK: Duration = Duration::from_millis(20);
/// The largest datagram the media sockets read (their receive buffers' size).
pub const MAX_DATAGRAM: usize = 2048;
/// Behind the send clock by more than this (a stalled task), the missed ticks are skipped, not burst out.
const MAX_CATCH_UP: Duration = Duration::from_millis(100);
/// Send ticks without agent audio after which the next audio starts a talk spurt on a re-phased clock: 60 ms.
const QUIET_TICKS: u32 = 3;
/// RTP packets sent to the SDP address before any RTP came back (symmetric RTP): a few, then we wait for the
/// caller's first packet rather than keep sending toward an address that may not answer.
pub const PRE_LATCH_PACKETS: u32 = 5;

/// Which sources the stream may latch onto (`media.latch`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Latch {
    /// Only a source whose IP is the SDP `c=` address (any port: NAT, RFC 4961), or one inside `allow`.
    #[default]
    SdpIp,
    /// The first source sending a negotiated payload type, from anywhere (the old behaviour: open to a
    /// hijack by whoever guesses the port first).
    Any,
}

/// What the SDP exchange settled for the stream (from [`Negotiated`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stream {
    pub codec: Codec,
    pub payload_type: u8,
    pub telephone_event: Option<u8>,
    /// Where the peer asked for RTP and RTCP (`None` while unknown or on hold with `c=0.0.0.0`).
    pub remote_rtp: Option<SocketAddr>,
    pub remote_rtcp: Option<SocketAddr>,
    /// Our direction, as our SDP states it.
    pub direction: Direction,
    /// The SDES keys when the stream is SRTP (`RTP/SAVP`).
    pub srtp: Option<SrtpKeys>,
}

impl Stream {
    /// A two-way stream of `codec` (PCMU 0 / PCMA 8) with telephone-event 101, to `remote_rtp` (RTCP at the next
    /// port), as most peers offer it.
    pub fn sendrecv(codec: Codec, remote_rtp: SocketAddr) -> Stream {
        let payload_type = if codec == Codec::Pcmu { 0 } else { 8 };
        let mut rtcp = remote_rtp;
        rtcp.set_port(remote_rtp.port().wrapping_add(1));
        Stream {
            codec,
            payload_type,
            telephone_event: Some(101),
            remote_rtp: Some(remote_rtp),
            remote_rtcp: Some(rtcp),
            direction: Direction::SendRecv,
            srtp: None,
        }
    }
}

impl From<&Negotiated> for Stream {
    fn from(n: &Negotiated) -> Stream {
        Stream {
            codec: n.codec,
            payload_type: n.payload_type,
            telephone_event: n.telephone_event,
            remote_rtp: n.remote_rtp,
            remote_rtcp: n.remote_rtcp,
            direction: n.direction,
            srtp: n.srtp,
        }
    }
}

/// Settings of the media path (from `[media]`), plus this stream's random starting values.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// Send to the address RTP comes from (symmetric RTP, RFC 4961) rather than the SDP's.
    pub symmetric: bool,
    /// No RTP for this long while not on hold ends the call; `None` never.
    pub media_timeout: Option<Duration>,
    /// Send silence frames when the agent has nothing to say (else pause the stream, marker on resume).
    pub send_silence: bool,
    pub rtcp_interval: Duration,
    /// The longest a reordering gap is waited for.
    pub max_wait: Duration,
    /// The most downlink audio queued, in ms.
    pub playout_max_ms: u32,
    /// Our SSRC, first sequence number and first timestamp (random, RFC 3550 §5.1).
    pub ssrc: u32,
    pub seq: u16,
    pub timestamp: u32,
    pub cname: String,
    /// Which sources may be latched onto, and the blocks that may be besides the SDP address (`media.allow`).
    pub latch: Latch,
    pub latch_allow: crate::sip::allow::AllowList,
}

impl Default for SessionConfig {
    /// The `[media]` defaults, with zero starting values (real calls draw them at random).
    fn default() -> Self {
        SessionConfig {
            symmetric: true,
            media_timeout: Some(Duration::from_secs(30)),
            send_silence: true,
            rtcp_interval: Duration::from_secs(5),
            max_wait: Duration::from_millis(60),
            playout_max_ms: 60_000,
            ssrc: 0,
            seq: 0,
            timestamp: 0,
            cname: "vocals".into(),
            latch: Latch::SdpIp,
            latch_allow: crate::sip::allow::AllowList::new(Vec::new()),
        }
    }
}

/// One datagram to send; its bytes were written to the caller's buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transmit {
    pub to: SocketAddr,
    pub len: usize,
    /// True for RTCP (the port after RTP's), false for RTP.
    pub rtcp: bool,
    /// An RTP packet carrying the agent's audio (not silence).
    pub audio: bool,
}

/// Why the session asks for the call to end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaEnd {
    /// No RTP for the configured time (the caller hung up without a BYE, or the path broke).
    Timeout(Duration),
}

/// Counters for the call record.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MediaStats {
    pub jitter: JitterStats,
    /// Packets of the current source lost so far (RFC 3550 A.3).
    pub lost: i64,
    /// RFC 3550 interarrival jitter, in ms.
    pub interarrival_jitter_ms: f64,
    pub rtp_received: u64,
    /// RTP from a source other than the latched one: dropped.
    pub foreign: u64,
    /// Datagrams that were not RTP: dropped.
    pub malformed: u64,
    /// Payload types not negotiated: dropped.
    pub wrong_payload_type: u64,
    pub comfort_noise: u64,
    pub telephone_events: u64,
    pub ssrc_changes: u64,
    pub sent_packets: u64,
    pub sent_octets: u64,
    /// Send ticks skipped because the task was stalled past the catch-up limit.
    pub skipped_ticks: u64,
    /// Talk spurts whose first packet went out at once, the send clock re-phased to their arrival.
    pub rephased: u64,
    /// Median and 99th percentile of the delay between a packet's arrival and its frame's hand-off.
    pub handoff_p50: Duration,
    pub handoff_p99: Duration,
    pub peer: PeerView,
    pub playout_overflow: u64,
    /// Send ticks that found the playout queue empty inside a talk spurt (a hole the caller heard), and the
    /// ticks those holes took.
    pub playout_underruns: u64,
    pub playout_underrun_ticks: u64,
    /// SRTP/SRTCP packets that failed authentication (or came from an SSRC refused unread): dropped.
    pub srtp_rejected: u64,
    /// SRTP/SRTCP packets replayed: dropped.
    pub srtp_replayed: u64,
    /// RTP from an address that may not be latched onto (not the SDP's, nor in `media.allow`), before the
    /// latch: refused, counted (a hijack attempt, or a caller behind a NAT that rewrites the address).
    pub refused_source: u64,
    /// When the caller's first RTP packet came, after the call was answered (`None`: never).
    pub first_rtp_after: Option<Duration>,
}

/// Whether audio flowed both ways, judged when the call ends: the classic NAT, firewall and `public_ip`
/// mistakes show as one-way or no audio.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AudioPath {
    TwoWay,
    /// No RTP from the caller within [`CALLER_AUDIO_WITHIN`] of the answer.
    NoneFromCaller,
    /// No RTP sent to the caller.
    NoneToCaller,
    NoAudio,
}

/// How soon after the answer the caller's first RTP packet must come for its audio to count as flowing.
pub const CALLER_AUDIO_WITHIN: Duration = Duration::from_secs(2);

impl AudioPath {
    /// The verdict on a call's media counters.
    pub fn of(stats: &MediaStats) -> AudioPath {
        let from_caller = stats.first_rtp_after.is_some_and(|d| d <= CALLER_AUDIO_WITHIN);
        match (from_caller, stats.sent_packets > 0) {
            (true, true) => AudioPath::TwoWay,
            (false, true) => AudioPath::NoneFromCaller,
            (true, false) => AudioPath::NoneToCaller,
            (false, false) => AudioPath::NoAudio,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AudioPath::TwoWay => "two_way",
            AudioPath::NoneFromCaller => "no_audio_from_caller",
            AudioPath::NoneToCaller => "no_audio_to_caller",
            AudioPath::NoAudio => "no_audio",
        }
    }

    /// The usual fix, in words (`None` when audio flowed).
    pub fn fix(self) -> Option<&'static str> {
        match self {
            AudioPath::TwoWay => None,
            AudioPath::NoneFromCaller | AudioPath::NoAudio => Some(
                "no RTP reached vocals from the caller: open the RTP ports (media.rtp_ports, UDP) to the trunk's media \
                 range in the firewall, and check that media.public_ip is the address the trunk can reach (a NAT \
                 in front of vocals needs it set, and the ports forwarded)",
            ),
            AudioPath::NoneToCaller => Some(
                "vocals sent the caller no RTP: the caller's SDP named no address vocals could send to, or the \
                 call was on hold throughout",
            ),
        }
    }
}

/// One call's media.
pub struct Session {
    config: SessionConfig,
    stream: Stream,
    jitter: JitterBuffer,
    dtmf: DtmfReceiver,
    playout: PlayoutQueue,
    rtcp: Rtcp,
    /// The RTP source we accept, once the first good packet came.
    latched: Option<SocketAddr>,
    /// RTP packets sent before the latch (at most [`PRE_LATCH_PACKETS`]).
    pre_latch_sent: u32,
    /// When the call was answered (its media started), for [`MediaStats::first_rtp_after`].
    answered_at: Instant,
    latched_rtcp: Option<SocketAddr>,
    last_ssrc: Option<u32>,
    last_rx: Instant,
    /// The send clock: the next tick, and the RTP timestamp and sequence number it carries.
    next_tick: Instant,
    tick_ts: u32,
    seq: u16,
    /// Where the clock started and the RTP timestamp then (for the SR's RTP time).
    clock_origin: (Instant, u32),
    next_rtcp: Instant,
    sent_since_report: bool,
    /// `now` and wall-clock time at start, for NTP timestamps.
    wall: (Instant, SystemTime),
    /// The end the session asked for, until taken; and whether it ever asked (it asks once).
    end: Option<MediaEnd>,
    ended: bool,
    /// Arrival-to-hand-off delay of every frame.
    delays: DelayHistogram,
    stats: MediaStats,
    /// SRTP state, when the stream is SRTP.
    srtp: Option<Srtp>,
    /// The recording tap, when the call is recorded (from the answer).
    tape: Option<Box<Tape>>,
    /// The tape's grid: its first send tick (slot 0 starts there).
    tape_start: Option<Instant>,
    /// Send ticks in a row without agent audio (a talk spurt's start after [`QUIET_TICKS`] re-phases the clock).
    quiet_ticks: u32,
}

impl Session {
    pub fn new(now: Instant, wall: SystemTime, config: SessionConfig, stream: Stream) -> Session {
        let silence = silence(stream.codec);
        let jitter = JitterBuffer::new(JitterConfig {
            audio_pt: stream.payload_type,
            event_pt: stream.telephone_event,
            silence,
            min_wait: Duration::from_millis(10),
            max_wait: config.max_wait,
        });
        Session {
            jitter,
            dtmf: DtmfReceiver::new(),
            // The queue holds μ-law (the agent's format); a PCMA frame is transcoded as it is sent.
            playout: PlayoutQueue::new(config.playout_max_ms, 0xFF),
            rtcp: Rtcp::new(config.ssrc, &config.cname),
            latched: None,
            pre_latch_sent: 0,
            answered_at: now,
            latched_rtcp: None,
            last_ssrc: None,
            last_rx: now,
            next_tick: now,
            tick_ts: config.timestamp,
            seq: config.seq,
            clock_origin: (now, config.timestamp),
            next_rtcp: now + config.rtcp_interval,
            sent_since_report: false,
            wall: (now, wall),
            end: None,
            ended: false,
            delays: DelayHistogram::default(),
            stats: MediaStats::default(),
            srtp: stream.srtp.map(Srtp::new),
            tape: None,
            tape_start: None,
            quiet_ticks: QUIET_TICKS,
            config,
            stream,
        }
    }

    /// Records the call from now on (both parties, on its own 20 ms grid from the next send tick):
    /// [`Session::poll_recorded`] gives the stereo frames.
    pub fn record(&mut self) {
        if self.tape.is_none() {
            self.tape = Some(Tape::new());
        }
    }

    /// The next recorded stereo frame, when the call is recorded.
    pub fn poll_recorded(&mut self, out: &mut StereoFrame) -> bool {
        self.tape.as_mut().is_some_and(|t| t.poll(out))
    }

    /// The recording's frames made and overruns (misalignments), when the call is recorded.
    pub fn recorded(&self) -> Option<(u64, u64)> {
        self.tape.as_ref().map(|t| (t.frames, t.overruns))
    }

    /// A new SDP exchange (re-INVITE, or the answer in the ACK): new remote address, direction or payload
    /// types. A new remote address drops the latch, so the new source is learned again.
    pub fn update(&mut self, now: Instant, stream: Stream) {
        if stream.remote_rtp != self.stream.remote_rtp {
            self.latched = None;
            self.latched_rtcp = None;
            self.pre_latch_sent = 0;
        }
        if (stream.payload_type, stream.telephone_event) != (self.stream.payload_type, self.stream.telephone_event)
            || stream.codec != self.stream.codec
        {
            self.jitter = JitterBuffer::new(JitterConfig {
                audio_pt: stream.payload_type,
                event_pt: stream.telephone_event,
                silence: silence(stream.codec),
                min_wait: Duration::from_millis(10),
                max_wait: self.config.max_wait,
            });
        }
        // New keys (a re-keying re-INVITE, the answer to our SRTP offer) start new contexts for the directions
        // they change; the same keys keep theirs, rollover counters and replay windows included.
        match (self.srtp.as_mut(), stream.srtp) {
            (Some(srtp), Some(keys)) => srtp.rekey(keys),
            (_, keys) => self.srtp = keys.map(Srtp::new),
        }
        self.stream = stream;
        self.last_rx = now;
    }

    pub fn stream(&self) -> Stream {
        self.stream
    }

    /// The call is answered now (its agent reached): the caller's audio is expected from here.
    pub fn answered(&mut self, now: Instant) {
        self.answered_at = now;
    }

    /// Where RTP is sent: the latched source under symmetric RTP, else the SDP's address.
    pub fn rtp_destination(&self) -> Option<SocketAddr> {
        match (self.config.symmetric, self.latched) {
            (true, Some(src)) => Some(src),
            _ => self.stream.remote_rtp,
        }
    }

    /// Whether RTP from `from` may become the stream's source: under `sdp-ip`, its IP must be the SDP
    /// address's (the port may differ: a NAT) or inside `media.allow`.
    fn may_latch(&self, from: SocketAddr) -> bool {
        let canonical = |ip: std::net::IpAddr| match ip {
            std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, std::net::IpAddr::V4),
            v4 => v4,
        };
        match self.config.latch {
            Latch::Any => true,
            Latch::SdpIp => {
                self.stream.remote_rtp.is_some_and(|sdp| canonical(sdp.ip()) == canonical(from.ip()))
                    || self.config.latch_allow.allows(from.ip())
            }
        }
    }

    /// One datagram from the RTP socket.
    pub fn handle_rtp(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        if self.srtp.is_none() {
            return self.handle_plain_rtp(now, from, datagram);
        }
        // Only the latched source is worth a decryption; authentication comes before latching.
        if self.latched.is_some_and(|src| src != from) {
            self.stats.foreign += 1;
            return;
        }
        if self.latched.is_none() && !self.may_latch(from) {
            self.stats.refused_source += 1;
            return;
        }
        let Some(srtp) = self.srtp.as_mut() else { return };
        let mut plain = [0u8; MAX_DATAGRAM];
        match srtp.unprotect_rtp(datagram, &mut plain) {
            Ok(n) => self.handle_plain_rtp(now, from, &plain[..n]),
            Err(e) => self.srtp_refused(e),
        }
    }

    fn handle_plain_rtp(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        let Ok(p) = rtp::parse(datagram) else {
            self.stats.malformed += 1;
            return;
        };
        match self.latched {
            Some(src) if src != from => {
                self.stats.foreign += 1;
                return;
            }
            Some(_) => {}
            None if !self.may_latch(from) => {
                self.stats.refused_source += 1;
                return;
            }
            None => {
                // Latch onto the first allowed source that sends a negotiated payload type (symmetric RTP).
                let pt = p.payload_type;
                if pt != self.stream.payload_type && Some(pt) != self.stream.telephone_event && pt != 13 {
                    self.stats.wrong_payload_type += 1;
                    return;
                }
                tracing::debug!(%from, ssrc = p.ssrc, "RTP source latched");
                self.latched = Some(from);
            }
        }
        if self.last_ssrc.is_some_and(|s| s != p.ssrc) {
            self.stats.ssrc_changes += 1;
        }
        self.last_ssrc = Some(p.ssrc);
        self.last_rx = now;
        self.stats.rtp_received += 1;
        if self.stats.first_rtp_after.is_none() {
            self.stats.first_rtp_after = Some(now.saturating_duration_since(self.answered_at));
        }
        let packet = Packet {
            ssrc: p.ssrc,
            seq: p.seq,
            timestamp: p.timestamp,
            payload_type: p.payload_type,
            payload: p.payload,
        };
        match self.jitter.push(now, &packet) {
            Pushed::TelephoneEvent => {
                self.stats.telephone_events += 1;
                self.dtmf.on_packet(p.timestamp, p.payload);
            }
            Pushed::ComfortNoise => self.stats.comfort_noise += 1,
            Pushed::WrongPayloadType => self.stats.wrong_payload_type += 1,
            Pushed::Buffered | Pushed::Duplicate | Pushed::Late | Pushed::Rejected => {}
        }
    }

    /// One datagram from the RTCP socket: accepted from the peer's address only.
    pub fn handle_rtcp(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        let peer_ip = self.latched.or(self.stream.remote_rtp).map(|a| a.ip());
        if peer_ip.is_some_and(|ip| ip != from.ip()) {
            self.stats.foreign += 1;
            return;
        }
        let Some(srtp) = self.srtp.as_mut() else {
            self.latched_rtcp = Some(from);
            return self.rtcp.on_packet(now, self.ntp(now), datagram);
        };
        let mut plain = [0u8; MAX_DATAGRAM];
        match srtp.unprotect_rtcp(datagram, &mut plain) {
            Ok(n) => {
                self.latched_rtcp = Some(from);
                self.rtcp.on_packet(now, self.ntp(now), &plain[..n]);
            }
            Err(e) => self.srtp_refused(e),
        }
    }

    fn srtp_refused(&mut self, e: SrtpError) {
        match e {
            SrtpError::Replay => self.stats.srtp_replayed += 1,
            SrtpError::Auth | SrtpError::Stranger | SrtpError::Malformed => self.stats.srtp_rejected += 1,
        }
    }

    /// The next 20 ms uplink frame for the agent (μ-law), when one is due.
    pub fn poll_frame(&mut self, now: Instant, out: &mut [u8; FRAME_BYTES]) -> Option<Popped> {
        let popped = self.jitter.pop(now, out)?;
        if let Some(arrival) = popped.arrival {
            self.delays.record(now.saturating_duration_since(arrival));
        }
        if self.stream.codec == Codec::Pcma {
            for b in out.iter_mut() {
                *b = g711::ulaw_encode(g711::alaw_decode(*b));
            }
        }
        if let Some(tape) = self.tape.as_mut() {
            tape.uplink(out);
        }
        Some(popped)
    }

    /// The next DTMF digit the caller pressed (RFC 4733).
    pub fn poll_digit(&mut self) -> Option<Digit> {
        self.dtmf.poll_digit()
    }

    /// The downlink queue: the agent's μ-law audio, marks and `clear`.
    pub fn playout(&mut self) -> &mut PlayoutQueue {
        &mut self.playout
    }

    /// The next datagram due at `now`, written into `buf` (at least 1500 bytes): an RTP packet per send tick,
    /// RTCP every interval. Call until it returns `None`.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        self.rephase(now);
        while now >= self.next_tick {
            if now - self.next_tick > MAX_CATCH_UP {
                let behind = ((now - self.next_tick).as_micros() / TICK.as_micros()) as u32;
                self.stats.skipped_ticks += u64::from(behind);
                self.next_tick += TICK * behind;
                self.tick_ts = self.tick_ts.wrapping_add(160 * behind);
            }
            if let Some(t) = self.tick(buf) {
                return Some(t);
            }
        }
        if now >= self.next_rtcp {
            self.next_rtcp = now + self.config.rtcp_interval;
            return self.report(now, buf);
        }
        None
    }

    /// A talk spurt's start goes out now, not at the next tick of the send clock (0–20 ms later): when agent
    /// audio is queued after at least [`QUIET_TICKS`] ticks without any, the clock moves to `now`. The packet
    /// carries the marker (its spurt's first) and a timestamp advanced by the time elapsed since the last tick
    /// (RFC 3550 §5.1, RFC 3551 §4.1): timestamps stay monotonic and follow the wall clock, and within the
    /// spurt the pacing is 20 ms from there.
    fn rephase(&mut self, now: Instant) {
        let last = self.next_tick.checked_sub(TICK);
        if self.quiet_ticks < QUIET_TICKS || !self.playout.has_audio() || now >= self.next_tick {
            return;
        }
        let Some(last) = last.filter(|l| now >= *l) else { return };
        let elapsed = (now - last).as_micros() as u32 * 8 / 1000;
        self.tick_ts = self.tick_ts.wrapping_sub(FRAME_BYTES as u32).wrapping_add(elapsed);
        self.next_tick = now;
        self.stats.rephased += 1;
    }

    /// One send tick: frames the next 20 ms of agent audio and packetizes it when we send.
    fn tick(&mut self, buf: &mut [u8]) -> Option<Transmit> {
        let mut frame = [0u8; FRAME_BYTES];
        let f = self.playout.next_frame(&mut frame);
        self.quiet_ticks = if f.audio { 0 } else { self.quiet_ticks.saturating_add(1) };
        let ts = self.tick_ts;
        let at = self.next_tick;
        self.next_tick += TICK;
        self.tick_ts = self.tick_ts.wrapping_add(FRAME_BYTES as u32);
        let to = self.sends(f.audio);
        // What the caller hears this tick: the frame if it goes out, else silence.
        if let Some(tape) = self.tape.as_mut() {
            tape.sent(to.is_some().then_some(&frame), f.audio);
            // The slots opened by this tick's time: one a tick on an unmoved clock; none for a re-phased
            // spurt's early first packet (it waits its slot); several after skipped ticks (silence fills).
            let start = *self.tape_start.get_or_insert(at);
            tape.advance(((at - start).as_nanos() / TICK.as_nanos()) as u64 + 1);
        }
        let to = to?;
        if self.stream.codec == Codec::Pcma {
            for b in frame.iter_mut() {
                *b = g711::alaw_encode(g711::ulaw_decode(*b));
            }
        }
        let packet = RtpPacket {
            marker: f.marker,
            payload_type: self.stream.payload_type,
            seq: self.seq,
            timestamp: ts,
            ssrc: self.config.ssrc,
            payload: &frame,
        };
        let mut len = rtp::build(&packet, buf)?;
        if let Some(srtp) = self.srtp.as_mut() {
            len = srtp.protect_rtp(buf, len).ok()?;
        }
        self.seq = self.seq.wrapping_add(1);
        self.stats.sent_packets += 1;
        self.stats.sent_octets += FRAME_BYTES as u64;
        self.sent_since_report = true;
        Some(Transmit { to, len, rtcp: false, audio: f.audio })
    }

    /// Where this tick's frame goes, if it is sent: not on hold, not silence unless `send_silence`, and before
    /// the latch only a few packets (symmetric RTP: to the SDP address, then wait for the caller's first).
    fn sends(&mut self, audio: bool) -> Option<SocketAddr> {
        let to = self.rtp_destination()?;
        if !self.stream.direction.we_send() || (!audio && !self.config.send_silence) {
            return None;
        }
        if self.config.symmetric && self.latched.is_none() {
            if self.pre_latch_sent >= PRE_LATCH_PACKETS {
                return None;
            }
            self.pre_latch_sent += 1;
        }
        Some(to)
    }

    fn report(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        let to = self.latched_rtcp.or_else(|| self.rtcp_destination())?;
        let sending = self.sent_since_report.then(|| Sending {
            packets: self.stats.sent_packets as u32,
            octets: self.stats.sent_octets as u32,
            rtp_time: self.rtp_time(now),
        });
        self.sent_since_report = false;
        let reception = self.jitter.reception();
        let bytes = self.rtcp.report(now, self.ntp(now), sending, reception);
        let mut len = bytes.len();
        buf.get_mut(..len)?.copy_from_slice(&bytes);
        if let Some(srtp) = self.srtp.as_mut() {
            len = srtp.protect_rtcp(buf, len).ok()?;
        }
        Some(Transmit { to, len, rtcp: true, audio: false })
    }

    /// The SDP's RTCP address (`a=rtcp`, else the RTP port + 1), or next to the latched RTP source.
    fn rtcp_destination(&self) -> Option<SocketAddr> {
        if self.config.symmetric
            && let Some(mut src) = self.latched
        {
            src.set_port(src.port().wrapping_add(1));
            return Some(src);
        }
        self.stream.remote_rtcp
    }

    fn rtp_time(&self, now: Instant) -> u32 {
        let (origin, ts) = self.clock_origin;
        ts.wrapping_add((now.saturating_duration_since(origin).as_micros() * 8 / 1000) as u32)
    }

    fn ntp(&self, now: Instant) -> u64 {
        ntp(self.wall.1 + now.saturating_duration_since(self.wall.0))
    }

    /// The earliest time the session needs [`Session::handle_timeout`] or [`Session::poll_transmit`].
    pub fn poll_timeout(&self) -> Instant {
        let mut t = self.next_tick.min(self.next_rtcp);
        if let Some(d) = self.jitter.next_deadline() {
            t = t.min(d);
        }
        if let Some(d) = self.media_deadline() {
            t = t.min(d);
        }
        t
    }

    /// No RTP is expected while the peer does not send to us (hold, `inactive`) or before it is known.
    fn media_deadline(&self) -> Option<Instant> {
        let timeout = self.config.media_timeout?;
        (!self.ended && self.stream.direction == Direction::SendRecv).then(|| self.last_rx + timeout)
    }

    /// Checks the media timeout.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let (Some(deadline), Some(timeout)) = (self.media_deadline(), self.config.media_timeout)
            && now >= deadline
        {
            self.ended = true;
            self.end = Some(MediaEnd::Timeout(timeout));
        }
    }

    /// Set once the session wants the call ended.
    pub fn poll_end(&mut self) -> Option<MediaEnd> {
        self.end.take()
    }

    pub fn stats(&self) -> MediaStats {
        let (p50, p99) = (self.delays.percentile(50), self.delays.percentile(99));
        MediaStats {
            jitter: self.jitter.stats(),
            lost: self.jitter.lost(),
            interarrival_jitter_ms: f64::from(self.jitter.jitter()) / 8.0,
            handoff_p50: p50,
            handoff_p99: p99,
            peer: self.rtcp.peer(),
            playout_overflow: self.playout.overflow(),
            playout_underruns: self.playout.underruns().0,
            playout_underrun_ticks: self.playout.underruns().1,
            ..self.stats
        }
    }
}

/// The codec's silent byte.
fn silence(codec: Codec) -> u8 {
    match codec {
        Codec::Pcmu => 0xFF,
        Codec::Pcma => 0xD5,
    }
}

#[cfg(test)]
mod tests;
