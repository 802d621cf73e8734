//! The tokio shell of each call's media: binds the call's RTP and RTCP sockets (dual-stack, on the leased port
//! and the next), and runs one task per call that owns its sockets, its [`Session`] and its agent. The task
//! follows the driver loop shape: apply one input, drain every output, await a datagram, a command or the next
//! deadline. Nothing is shared with other tasks: the per-packet path takes no lock.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant, SystemTime};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use crate::call::MediaPlane;
use crate::media::playout::FRAME_BYTES;
use crate::media::session::{MediaEnd, MediaStats, Session, SessionConfig, Stream};
use crate::sip::endpoint::CallRef;

/// `[media]` settings the call tasks use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaSettings {
    pub symmetric_rtp: bool,
    /// `None`: calls never time out for lack of RTP.
    pub timeout: Option<Duration>,
    pub send_silence: bool,
    pub rtcp_interval: Duration,
    pub jitter_max_wait: Duration,
}

impl Default for MediaSettings {
    fn default() -> Self {
        MediaSettings {
            symmetric_rtp: true,
            timeout: Some(Duration::from_secs(30)),
            send_silence: true,
            rtcp_interval: Duration::from_secs(5),
            jitter_max_wait: Duration::from_millis(60),
        }
    }
}

/// What a call task tells the SIP driver.
#[derive(Debug)]
pub enum MediaEvent {
    /// The media wants the call ended (the driver hangs up with a Reason).
    End { call: CallRef, why: MediaEnd },
}

enum Control {
    Update(Stream),
}

/// The agents a call's audio can go to, as far as this layer knows them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Agent {
    /// Plays the caller's audio back after the jitter buffer.
    Echo,
    /// No pipeline attached yet: the caller hears silence.
    Silent,
}

/// Starts and stops the call tasks; owned by the SIP driver's call layer.
pub struct TokioMedia {
    settings: MediaSettings,
    events: mpsc::Sender<MediaEvent>,
    calls: HashMap<CallRef, mpsc::Sender<Control>>,
    /// State of the generator for SSRCs and initial sequence numbers and timestamps.
    rng: u64,
}

impl TokioMedia {
    /// `events` is where call tasks report; `seed` randomises SSRCs and initial sequence numbers.
    pub fn new(settings: MediaSettings, events: mpsc::Sender<MediaEvent>, seed: u64) -> TokioMedia {
        TokioMedia { settings, events, calls: HashMap::new(), rng: seed | 1 }
    }

    /// xorshift64*: not for secrets, only so SSRCs and starting points differ (RFC 3550 §5.1).
    fn random(&mut self) -> u64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

impl MediaPlane for TokioMedia {
    fn open(&mut self, call: CallRef, port: u16, agent: &str, stream: Stream) -> io::Result<()> {
        let rtp = bind(port)?;
        let rtcp = bind(port + 1)?;
        let r = self.random();
        let config = SessionConfig {
            symmetric: self.settings.symmetric_rtp,
            media_timeout: self.settings.timeout,
            send_silence: self.settings.send_silence,
            rtcp_interval: self.settings.rtcp_interval,
            max_wait: self.settings.jitter_max_wait,
            playout_max_ms: 60_000,
            ssrc: r as u32,
            seq: (r >> 32) as u16,
            timestamp: (r >> 16) as u32,
            cname: format!("vocals-{:x}@{}", r >> 48, call.0),
        };
        let session = Session::new(Instant::now(), SystemTime::now(), config, stream);
        let kind = if agent == "echo" { Agent::Echo } else { Agent::Silent };
        if kind == Agent::Silent {
            tracing::warn!(call = call.0, agent, "no pipeline for this agent yet: the caller hears silence");
        }
        let agent = kind;
        let (tx, rx) = mpsc::channel(8);
        self.calls.insert(call, tx);
        let v6 = rtp.local_addr()?.is_ipv6();
        let task = CallMedia { call, rtp, rtcp, session, agent, v6, control: rx, events: self.events.clone() };
        tokio::spawn(task.run());
        Ok(())
    }

    fn update(&mut self, call: CallRef, stream: Stream) {
        if let Some(tx) = self.calls.get(&call)
            && tx.try_send(Control::Update(stream)).is_err()
        {
            tracing::warn!(call = call.0, "media update dropped: the call task is gone or busy");
        }
    }

    fn close(&mut self, call: CallRef) {
        // Dropping the sender ends the task, which writes the call's media record.
        self.calls.remove(&call);
    }
}

/// Binds one UDP port on every address, IPv6 and IPv4 alike (IPv4-only where the host has no IPv6).
fn bind(port: u16) -> io::Result<UdpSocket> {
    let dual = || -> io::Result<Socket> {
        let s = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP))?;
        s.set_only_v6(false)?;
        s.bind(&SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port).into())?;
        Ok(s)
    };
    let socket = match dual() {
        Ok(s) => s,
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => return Err(e),
        Err(_) => {
            let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
            s.bind(&SocketAddr::from(([0, 0, 0, 0], port)).into())?;
            s
        }
    };
    socket.set_nonblocking(true)?;
    UdpSocket::from_std(socket.into())
}

struct CallMedia {
    call: CallRef,
    rtp: UdpSocket,
    rtcp: UdpSocket,
    session: Session,
    agent: Agent,
    /// The sockets are IPv6 (dual-stack): IPv4 destinations are sent as mapped addresses.
    v6: bool,
    control: mpsc::Receiver<Control>,
    events: mpsc::Sender<MediaEvent>,
}

impl CallMedia {
    async fn run(mut self) {
        let mut rtp_buf = [0u8; 2048];
        let mut rtcp_buf = [0u8; 2048];
        let mut out = [0u8; 1500];
        loop {
            self.drain(&mut out);
            let deadline = tokio::time::Instant::from_std(self.session.poll_timeout());
            tokio::select! {
                r = self.rtp.recv_from(&mut rtp_buf) => match r {
                    Ok((n, from)) => self.session.handle_rtp(Instant::now(), canonical(from), &rtp_buf[..n]),
                    Err(e) => tracing::debug!(call = self.call.0, error = %e, "rtp receive error"),
                },
                r = self.rtcp.recv_from(&mut rtcp_buf) => match r {
                    Ok((n, from)) => self.session.handle_rtcp(Instant::now(), canonical(from), &rtcp_buf[..n]),
                    Err(e) => tracing::debug!(call = self.call.0, error = %e, "rtcp receive error"),
                },
                c = self.control.recv() => match c {
                    Some(Control::Update(stream)) => self.session.update(Instant::now(), stream),
                    None => break,
                },
                _ = tokio::time::sleep_until(deadline) => self.session.handle_timeout(Instant::now()),
            }
        }
        record(self.call, &self.session.stats());
    }

    /// Uplink frames to the agent, DTMF, then every datagram due, then the end request if any.
    fn drain(&mut self, out: &mut [u8; 1500]) {
        let now = Instant::now();
        let mut frame = [0u8; FRAME_BYTES];
        while self.session.poll_frame(now, &mut frame).is_some() {
            if self.agent == Agent::Echo {
                self.session.playout().push(&frame);
            }
        }
        while let Some(d) = self.session.poll_digit() {
            tracing::info!(call = self.call.0, digit = %d.digit, duration_ms = d.duration_ms, "DTMF (RFC 4733)");
        }
        while let Some(t) = self.session.poll_transmit(now, out) {
            let socket = if t.rtcp { &self.rtcp } else { &self.rtp };
            if let Err(e) = socket.try_send_to(&out[..t.len], mapped(self.v6, t.to)) {
                tracing::debug!(call = self.call.0, to = %t.to, error = %e, "media send failed");
            }
        }
        if let Some(why) = self.session.poll_end() {
            tracing::info!(call = self.call.0, ?why, "media ended the call");
            if self.events.try_send(MediaEvent::End { call: self.call, why }).is_err() {
                tracing::warn!(call = self.call.0, "media end not delivered: the SIP driver is gone or busy");
            }
        }
    }
}

/// The call's media record (the store's call record takes these when it lands).
fn record(call: CallRef, s: &MediaStats) {
    tracing::info!(
        call = call.0,
        rtp_received = s.rtp_received,
        rtp_sent = s.sent_packets,
        lost_concealed = s.jitter.concealed,
        late = s.jitter.late,
        duplicate = s.jitter.duplicate,
        reordered = s.jitter.reordered,
        foreign = s.foreign,
        malformed = s.malformed,
        wrong_payload_type = s.wrong_payload_type,
        ssrc_changes = s.ssrc_changes,
        jitter_ms = s.interarrival_jitter_ms,
        handoff_p50_us = s.handoff_p50.as_micros() as u64,
        handoff_p99_us = s.handoff_p99.as_micros() as u64,
        skipped_ticks = s.skipped_ticks,
        rtt_ms = s.peer.rtt.map(|d| d.as_secs_f64() * 1000.0),
        peer_fraction_lost = s.peer.fraction_lost,
        "call media record"
    );
}

/// An IPv4-mapped IPv6 source (from a dual-stack socket) as the IPv4 address it is.
fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

/// An IPv4 destination as a mapped IPv6 address when the socket is IPv6 (dual-stack).
fn mapped(v6: bool, to: SocketAddr) -> SocketAddr {
    match (v6, to.ip()) {
        (true, IpAddr::V4(v4)) => SocketAddr::new(IpAddr::V6(v4.to_ipv6_mapped()), to.port()),
        _ => to,
    }
}
