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
use super::rtcp::{PeerView, Rtcp, Sending, ntp};
use super::rtp::{self, RtpPacket};
use super::srtp::{Srtp, SrtpError};
use crate::sdp::{Codec, Direction, Negotiated, SrtpKeys};

const TICK: Duration = Duration::from_millis(20);
/// The largest datagram the media sockets read (their receive buffers' size).
pub const MAX_DATAGRAM: usize = 2048;
/// Behind the send clock by more than this (a stalled task), the missed ticks are skipped, not burst out.
const MAX_CATCH_UP: Duration = Duration::from_millis(100);

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
    /// Median and 99th percentile of the delay between a packet's arrival and its frame's hand-off.
    pub handoff_p50: Duration,
    pub handoff_p99: Duration,
    pub peer: PeerView,
    pub playout_overflow: u64,
    /// SRTP/SRTCP packets that failed authentication (or came from an SSRC refused unread): dropped.
    pub srtp_rejected: u64,
    /// SRTP/SRTCP packets replayed: dropped.
    pub srtp_replayed: u64,
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
            config,
            stream,
        }
    }

    /// A new SDP exchange (re-INVITE, or the answer in the ACK): new remote address, direction or payload
    /// types. A new remote address drops the latch, so the new source is learned again.
    pub fn update(&mut self, now: Instant, stream: Stream) {
        if stream.remote_rtp != self.stream.remote_rtp {
            self.latched = None;
            self.latched_rtcp = None;
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

    /// Where RTP is sent: the latched source under symmetric RTP, else the SDP's address.
    pub fn rtp_destination(&self) -> Option<SocketAddr> {
        match (self.config.symmetric, self.latched) {
            (true, Some(src)) => Some(src),
            _ => self.stream.remote_rtp,
        }
    }

    /// One datagram from the RTP socket.
    pub fn handle_rtp(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        let Some(srtp) = self.srtp.as_mut() else { return self.handle_plain_rtp(now, from, datagram) };
        // Only the latched source is worth a decryption; authentication comes before latching.
        if self.latched.is_some_and(|src| src != from) {
            self.stats.foreign += 1;
            return;
        }
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
            None => {
                // Latch onto the first source that sends a negotiated payload type (symmetric RTP).
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

    /// One send tick: frames the next 20 ms of agent audio and packetizes it when we send.
    fn tick(&mut self, buf: &mut [u8]) -> Option<Transmit> {
        let mut frame = [0u8; FRAME_BYTES];
        let f = self.playout.next_frame(&mut frame);
        let ts = self.tick_ts;
        self.next_tick += TICK;
        self.tick_ts = self.tick_ts.wrapping_add(FRAME_BYTES as u32);
        let to = self.rtp_destination()?;
        if !self.stream.direction.we_send() || (!f.audio && !self.config.send_silence) {
            return None;
        }
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
            interarrival_jitter_ms: f64::from(self.jitter.jitter()) / 8.0,
            handoff_p50: p50,
            handoff_p99: p99,
            peer: self.rtcp.peer(),
            playout_overflow: self.playout.overflow(),
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
mod tests {
    use super::*;

    const PEER: &str = "192.0.2.10:30000";

    fn peer() -> SocketAddr {
        PEER.parse().unwrap()
    }

    fn stream(codec: Codec, direction: Direction) -> Stream {
        Stream { direction, ..Stream::sendrecv(codec, peer()) }
    }

    fn config() -> SessionConfig {
        SessionConfig { ssrc: 0xABCD, seq: 65534, timestamp: 1000, ..SessionConfig::default() }
    }

    struct Run {
        s: Session,
        t0: Instant,
        buf: Vec<u8>,
    }

    impl Run {
        fn new(config: SessionConfig, stream: Stream) -> Run {
            let t0 = Instant::now();
            Run { s: Session::new(t0, SystemTime::now(), config, stream), t0, buf: vec![0; 1500] }
        }

        fn at(&self, ms: u64) -> Instant {
            self.t0 + Duration::from_millis(ms)
        }

        fn rtp(&mut self, ms: u64, from: SocketAddr, pt: u8, seq: u16, payload: &[u8]) {
            let mut d = [0u8; 200];
            let p =
                RtpPacket { marker: false, payload_type: pt, seq, timestamp: u32::from(seq) * 160, ssrc: 77, payload };
            let n = rtp::build(&p, &mut d).unwrap();
            self.s.handle_rtp(self.at(ms), from, &d[..n]);
        }

        fn frames(&mut self, ms: u64) -> Vec<[u8; FRAME_BYTES]> {
            let mut out = Vec::new();
            let mut f = [0u8; FRAME_BYTES];
            while self.s.poll_frame(self.at(ms), &mut f).is_some() {
                out.push(f);
            }
            out
        }

        /// Every RTP packet sent up to `ms`, parsed: (marker, seq, timestamp, first payload byte).
        fn sent(&mut self, ms: u64) -> Vec<(bool, u16, u32, u8, SocketAddr)> {
            let mut out = Vec::new();
            let now = self.at(ms);
            while let Some(t) = self.s.poll_transmit(now, &mut self.buf) {
                if !t.rtcp {
                    let p = rtp::parse(&self.buf[..t.len]).unwrap();
                    out.push((p.marker, p.seq, p.timestamp, p.payload[0], t.to));
                }
            }
            out
        }
    }

    #[test]
    fn the_first_good_source_is_latched_and_others_are_dropped_and_counted() {
        let mut r = Run::new(config(), stream(Codec::Pcmu, Direction::SendRecv));
        let intruder: SocketAddr = "198.51.100.1:4000".parse().unwrap();
        // A payload type that was not negotiated does not latch.
        r.rtp(0, intruder, 18, 1, &[0; 20]);
        r.rtp(0, peer(), 0, 1, &[0x11; 160]);
        r.rtp(20, intruder, 0, 2, &[0x22; 160]);
        r.rtp(20, peer(), 0, 2, &[0x33; 160]);
        let frames = r.frames(20);
        assert_eq!(frames.iter().map(|f| f[0]).collect::<Vec<_>>(), vec![0x11, 0x33]);
        let st = r.s.stats();
        assert_eq!((st.foreign, st.wrong_payload_type, st.rtp_received), (1, 1, 2));
        r.s.handle_rtp(r.at(40), peer(), b"not rtp");
        assert_eq!(r.s.stats().malformed, 1);
    }

    #[test]
    fn an_srtp_stream_is_decrypted_in_and_protected_out_and_forgeries_neither_play_nor_latch() {
        use crate::media::srtp::Srtp;
        use crate::sdp::sdes::{KEY_SALT_LEN, KeySalt, Suite};
        let (theirs, ours) = (KeySalt([4; KEY_SALT_LEN]), KeySalt([5; KEY_SALT_LEN]));
        let keys = SrtpKeys { suite: Suite::AesCm128HmacSha1_80, tag: 1, remote: theirs, local: ours };
        let mut r = Run::new(config(), Stream { srtp: Some(keys), ..stream(Codec::Pcmu, Direction::SendRecv) });
        // The peer: protects with its key, unprotects with ours.
        let mut phone = Srtp::new(SrtpKeys { remote: ours, local: theirs, ..keys });
        let protect = |phone: &mut Srtp, seq: u16, fill: u8| {
            let mut d = [0u8; 300];
            let payload = [fill; 160];
            let p = RtpPacket {
                marker: false,
                payload_type: 0,
                seq,
                timestamp: u32::from(seq) * 160,
                ssrc: 77,
                payload: &payload,
            };
            let n = rtp::build(&p, &mut d).unwrap();
            let n = phone.protect_rtp(&mut d, n).unwrap();
            d[..n].to_vec()
        };
        // A forgery (plain RTP, or SRTP under another key) from anywhere: dropped, counted, and not latched.
        let intruder: SocketAddr = "198.51.100.1:4000".parse().unwrap();
        r.rtp(0, intruder, 0, 1, &[0x99; 160]);
        let mut forger = Srtp::new(SrtpKeys { local: KeySalt([6; KEY_SALT_LEN]), ..keys });
        let forged = protect(&mut forger, 1, 0x98);
        r.s.handle_rtp(r.at(0), intruder, &forged);
        assert_eq!(r.s.stats().srtp_rejected, 2);
        for seq in 1..=3u16 {
            let packet = protect(&mut phone, seq, 0x10 + seq as u8);
            r.s.handle_rtp(r.at(u64::from(seq) * 20), peer(), &packet);
            if seq == 2 {
                r.s.handle_rtp(r.at(40), peer(), &packet);
            }
        }
        let frames = r.frames(60);
        assert_eq!(frames.iter().map(|f| f[0]).collect::<Vec<_>>(), vec![0x11, 0x12, 0x13]);
        let st = r.s.stats();
        assert_eq!((st.rtp_received, st.srtp_replayed, st.srtp_rejected, st.foreign), (3, 1, 2, 0));
        // Now latched: the intruder is foreign, not even decrypted.
        r.s.handle_rtp(r.at(60), intruder, &forged);
        assert_eq!(r.s.stats().foreign, 1);
        // What we send, the phone can read: SRTP (10-byte tag), and SRTCP.
        r.s.playout().push(&[0x44; FRAME_BYTES]);
        let now = r.at(5_100);
        let (mut rtp_seen, mut rtcp_seen) = (0, 0);
        while let Some(t) = r.s.poll_transmit(now, &mut r.buf) {
            let mut out = [0u8; 1500];
            if t.rtcp {
                let n = phone.unprotect_rtcp(&r.buf[..t.len], &mut out).expect("our SRTCP authenticates");
                assert!(n >= 8);
                rtcp_seen += 1;
            } else {
                assert_eq!(t.len, 12 + 160 + 10);
                let n = phone.unprotect_rtp(&r.buf[..t.len], &mut out).expect("our SRTP authenticates");
                assert_eq!(n, 12 + 160);
                rtp_seen += 1;
            }
        }
        assert!(rtp_seen > 0 && rtcp_seen == 1, "{rtp_seen} RTP, {rtcp_seen} RTCP");
    }

    #[test]
    fn symmetric_rtp_answers_the_latched_source_not_the_sdp_address() {
        let natted: SocketAddr = "203.0.113.5:61000".parse().unwrap();
        let mut r = Run::new(config(), stream(Codec::Pcmu, Direction::SendRecv));
        assert_eq!(r.sent(0)[0].4, peer(), "before any RTP: the SDP address");
        r.rtp(10, natted, 0, 1, &[0x11; 160]);
        assert_eq!(r.sent(20)[0].4, natted);
        let mut r = Run::new(SessionConfig { symmetric: false, ..config() }, stream(Codec::Pcmu, Direction::SendRecv));
        r.rtp(10, natted, 0, 1, &[0x11; 160]);
        assert_eq!(r.sent(20)[0].4, peer(), "symmetric RTP off: always the SDP address");
    }

    #[test]
    fn packets_go_out_every_20_ms_on_a_clock_that_does_not_drift_with_late_polls() {
        let mut r = Run::new(config(), stream(Codec::Pcmu, Direction::SendRecv));
        let mut all = Vec::new();
        let mut deadlines = Vec::new();
        for k in 0..50u64 {
            // The driver wakes up to 7 ms late each time; ticks stay at k * 20 ms.
            deadlines.push(r.s.poll_timeout().min(r.at(k * 20 + 100)));
            all.extend(r.sent(k * 20 + k % 8));
        }
        assert_eq!(all.len(), 50);
        for (k, p) in all.iter().enumerate() {
            assert_eq!(p.1, 65534u16.wrapping_add(k as u16), "seq + 1 (wrapping)");
            assert_eq!(p.2, 1000 + 160 * k as u32, "timestamp + 160");
        }
        assert!(deadlines.iter().enumerate().skip(1).all(|(k, d)| *d <= r.at(k as u64 * 20)));
        assert_eq!(r.s.stats().sent_packets, 50);
    }

    #[test]
    fn a_stalled_task_skips_ticks_instead_of_bursting() {
        let mut r = Run::new(config(), stream(Codec::Pcmu, Direction::SendRecv));
        assert_eq!(r.sent(0).len(), 1);
        let after = r.sent(1000);
        assert!(after.len() <= 6, "{} packets burst", after.len());
        assert_eq!(after.last().unwrap().2, 1000 + 160 * 50, "the timestamp follows the real time");
        assert!(r.s.stats().skipped_ticks >= 40);
    }

    #[test]
    fn agent_audio_is_sent_with_a_marker_on_each_talk_spurt_and_silence_between() {
        let mut r =
            Run::new(SessionConfig { send_silence: false, ..config() }, stream(Codec::Pcmu, Direction::SendRecv));
        assert!(r.sent(0).is_empty(), "nothing to say, no silence frames: the stream pauses");
        r.s.playout().push(&[0x42; 320]);
        let spurt = r.sent(40);
        assert_eq!(spurt.iter().map(|p| (p.0, p.3)).collect::<Vec<_>>(), vec![(true, 0x42), (false, 0x42)]);
        assert_eq!(spurt[1].2 - spurt[0].2, 160);
        let mut r = Run::new(config(), stream(Codec::Pcmu, Direction::SendRecv));
        assert_eq!(r.sent(0)[0].3, 0xFF, "silence frames keep the stream continuous");
    }

    #[test]
    fn a_pcma_call_is_transcoded_to_and_from_the_agents_mulaw() {
        let mut r = Run::new(config(), stream(Codec::Pcma, Direction::SendRecv));
        let alaw = g711::alaw_encode(1000);
        r.rtp(0, peer(), 8, 1, &[alaw; 160]);
        let frame = r.frames(0)[0];
        assert_eq!(frame[0], g711::ulaw_encode(g711::alaw_decode(alaw)));
        r.s.playout().push(&[g711::ulaw_encode(-2000); 160]);
        let sent = r.sent(20);
        assert_eq!(sent[0].3, g711::alaw_encode(g711::ulaw_decode(g711::ulaw_encode(-2000))));
    }

    #[test]
    fn on_hold_nothing_is_sent_and_silence_does_not_time_the_call_out() {
        let mut r = Run::new(config(), stream(Codec::Pcmu, Direction::RecvOnly));
        r.s.playout().push(&[0x42; 1600]);
        assert!(r.sent(200).is_empty());
        r.s.handle_timeout(r.at(60_000));
        assert_eq!(r.s.poll_end(), None);
        // Resumed: the media timeout runs from the resume.
        r.s.update(r.at(60_000), stream(Codec::Pcmu, Direction::SendRecv));
        r.s.handle_timeout(r.at(89_000));
        assert_eq!(r.s.poll_end(), None);
        assert!(r.s.poll_timeout() <= r.at(90_000));
        r.s.handle_timeout(r.at(90_000));
        assert_eq!(r.s.poll_end(), Some(MediaEnd::Timeout(Duration::from_secs(30))));
        r.s.handle_timeout(r.at(200_000));
        assert_eq!(r.s.poll_end(), None, "asked once");
    }

    #[test]
    fn rtp_keeps_the_media_timeout_away() {
        let mut r = Run::new(config(), stream(Codec::Pcmu, Direction::SendRecv));
        r.rtp(25_000, peer(), 0, 1, &[0; 160]);
        r.s.handle_timeout(r.at(50_000));
        assert_eq!(r.s.poll_end(), None);
        r.s.handle_timeout(r.at(55_000));
        assert!(r.s.poll_end().is_some());
    }

    #[test]
    fn dtmf_between_audio_gives_one_digit_and_no_wait_or_concealment() {
        let mut r = Run::new(config(), stream(Codec::Pcmu, Direction::SendRecv));
        let mut frames = Vec::new();
        // 10 audio packets, a digit (3 updates and the end packet three times, on the same SSRC and sequence
        // numbers), 10 audio packets; each frame is handed off the moment its packet arrives.
        for seq in 1..=26u16 {
            let ms = u64::from(seq) * 20;
            if (11..=16).contains(&seq) {
                let end = if seq >= 14 { 0x80 } else { 0 };
                let duration = 160 * (seq - 10).min(4);
                let payload = [7, end, (duration >> 8) as u8, duration as u8];
                let mut d = [0u8; 64];
                let p = RtpPacket {
                    marker: seq == 11,
                    payload_type: 101,
                    seq,
                    timestamp: 1760,
                    ssrc: 77,
                    payload: &payload,
                };
                let n = rtp::build(&p, &mut d).unwrap();
                r.s.handle_rtp(r.at(ms), peer(), &d[..n]);
            } else {
                r.rtp(ms, peer(), 0, seq, &[0x10; 160]);
            }
            frames.extend(r.frames(ms));
        }
        assert_eq!(frames.len(), 26);
        assert_eq!(frames.iter().filter(|f| f[0] == 0xFF).count(), 6, "the digit's frames are silence");
        assert_eq!(r.s.stats().jitter.concealed, 0);
        assert_eq!(r.s.poll_digit().map(|d| d.digit), Some('7'));
        assert_eq!(r.s.poll_digit(), None);
    }

    #[test]
    fn reports_go_to_the_rtcp_port_as_sr_once_we_send() {
        let mut r = Run::new(config(), stream(Codec::Pcmu, Direction::SendRecv));
        let mut rtcp = Vec::new();
        let mut t = 0;
        while t <= 10_000 {
            while let Some(x) = r.s.poll_transmit(r.at(t), &mut r.buf) {
                if x.rtcp {
                    rtcp.push((t, x.to, r.buf[1]));
                }
            }
            t += 20;
        }
        assert_eq!(rtcp.len(), 2, "{rtcp:?}");
        assert_eq!(rtcp[0].0, 5000);
        assert_eq!(rtcp[0].1, "192.0.2.10:30001".parse().unwrap());
        assert_eq!(rtcp[0].2, 200, "a sender report");
    }

    #[test]
    fn in_order_frames_are_handed_off_the_moment_they_arrive() {
        let mut r = Run::new(config(), stream(Codec::Pcmu, Direction::SendRecv));
        for seq in 1..=100u16 {
            r.rtp(u64::from(seq) * 20, peer(), 0, seq, &[1; 160]);
            assert_eq!(r.frames(u64::from(seq) * 20).len(), 1);
        }
        let st = r.s.stats();
        assert_eq!(st.handoff_p99, Duration::from_micros(100), "the first bin");
    }
}
