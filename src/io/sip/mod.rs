//! The SIP driver: one task owns the [`Endpoint`], the call layer ([`crate::call`]) and the media plane, and
//! follows one loop shape: apply one input, drain every output (the endpoint's datagrams and events, the call
//! layer's commands to the endpoint and the media plane), then await a datagram, a TCP message, an accept, a
//! call task's report, an HTTP API command or the next deadline. Each TCP connection has a task that frames
//! messages by Content-Length (RFC 3261 §18.3), answers double-CRLF keepalives (RFC 5626 §3.5.1), and closes
//! when idle. It only moves bytes and applies decisions: where a message goes, over which connection, and which
//! connections are admitted is the transport layer's ([`crate::sip::transport`]); what a call does is the call
//! layer's. A connection from outside `sip.allow` is closed at accept, before any TLS handshake or read.
//! Outbound calls toward a TCP or TLS trunk leave over a connection the driver opens when the transport layer
//! asks for one ([`Route::Connect`]): the first message is queued on it while it connects (and, for TLS,
//! verifies the trunk's certificate against the system's trust store and the trunk's host name); one that
//! cannot be opened fails the requests waiting on it ([`Endpoint::transport_failed`]).
use std::io;
use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio::time::Instant;

mod connection;

use crate::admin::CallCommand;
use crate::call::{AdminInput, AgentInput, Callback, Calls, Input, MediaInput, MediaPlane, Reply, run_commands};
use crate::io::media::MediaEvent;
use crate::io::tap::Tap;
use crate::sip::allow::AllowList;
use crate::sip::endpoint::{Endpoint, Event, Output};
use crate::sip::message::Limits;
use crate::sip::trace::{Direction, printable};
use crate::sip::transport::{ConnectionLimits, Connections, Peer, Route, Transport};
use connection::{Inbound, Link, connection, outbound_connection, tls_connection};

/// The sockets the driver serves, bound by the caller (tests bind port 0).
pub struct Listeners {
    pub udp: Option<UdpSocket>,
    pub tcp: Option<TcpListener>,
    /// SIP over TLS, with the configuration its connections are accepted with (replaced on SIGHUP).
    pub tls: Option<(TcpListener, Arc<rustls::ServerConfig>)>,
    /// The HTTP API's listener (served beside the driver, not by it).
    pub admin: Option<TcpListener>,
}

/// Limits of the TCP side: the connection table's admission limits (see [`ConnectionLimits`]) and how long a
/// connection may idle or take over a message.
#[derive(Clone, Debug)]
pub struct TcpLimits {
    /// Connections held at once; further ones are closed at accept.
    pub max_connections: usize,
    /// Connections held at once from one source (except `exempt`); further ones are closed at accept. An IPv6
    /// source is its /64 (one host is given a whole /64).
    pub max_per_source: usize,
    /// Of `max_connections`, how many only `exempt` sources may take: the others together hold at most
    /// `max_connections - reserved_for_exempt`, so a flood from allowed sources cannot lock Twilio out.
    pub reserved_for_exempt: usize,
    /// Sources without a per-source cap (Twilio's signalling edges carry every customer's calls).
    pub exempt: AllowList,
    /// A connection with no complete message for this long is closed (slow or idle peers).
    pub idle_timeout: Duration,
    /// A message begun must be complete within this (slowloris: a peer trickling a message byte by byte).
    pub message_timeout: Duration,
}

impl TcpLimits {
    /// What the transport layer's connection table admits by.
    fn connection_limits(&self) -> ConnectionLimits {
        ConnectionLimits {
            max_connections: self.max_connections,
            max_per_source: self.max_per_source,
            reserved_for_exempt: self.reserved_for_exempt,
            exempt: self.exempt.clone(),
        }
    }
}

/// What the daemon asks of the driver.
#[derive(Debug)]
pub enum Control {
    /// Stop taking calls (503 + Retry-After), let the calls in progress end, BYE whatever is left after
    /// `timeout`, then return.
    Drain { timeout: Duration },
    /// Return now.
    Stop,
    /// A new allowlist (SIGHUP): open TCP and TLS connections from sources it leaves out are closed.
    SetAllow { allow: AllowList, reject_disallowed: bool },
    /// A new TLS certificate and key (SIGHUP): for connections accepted from now on.
    SetTls(Arc<rustls::ServerConfig>),
}

/// Log every SIP message in and out (`log.sip_trace`, for debugging a trunk; SIGHUP turns it on or off).
pub static SIP_TRACE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn trace(direction: &'static str, peer: SocketAddr, bytes: &[u8]) {
    if SIP_TRACE.load(std::sync::atomic::Ordering::Relaxed) {
        tracing::info!(target: "vocals::sip_trace", %direction, %peer, "\n{}", printable(bytes));
    }
}

/// A message in, traced only when its source is inside `sip.allow`: what the allowlist drops unread is not
/// written to the log either (a scanner's or a flood's bytes would otherwise fill it).
fn trace_in(allow: &AllowList, peer: SocketAddr, bytes: &[u8]) {
    // The flag first: with tracing off (the usual case) no datagram pays for a second allowlist check.
    if SIP_TRACE.load(std::sync::atomic::Ordering::Relaxed) && allow.allows(peer.ip()) {
        trace("in", peer, bytes);
    }
}

/// How long the driver waits for the last BYEs to be answered after the drain timeout.
const DRAIN_GRACE: Duration = Duration::from_secs(5);

/// Tells the service manager (systemd, `NOTIFY_SOCKET`) how the driver is: WATCHDOG pings come from this loop
/// itself, so a wedged loop is restarted; STATUS says how many calls are up. No-ops without a manager.
struct Manager {
    watchdog: Option<Duration>,
    last_status: Option<usize>,
}

impl Manager {
    fn new() -> Manager {
        // WATCHDOG_USEC, for this process when WATCHDOG_PID says which (systemd sets both).
        let usec = std::env::var("WATCHDOG_USEC").ok().and_then(|v| v.parse::<u64>().ok()).filter(|u| *u > 0);
        let pid = std::env::var("WATCHDOG_PID").ok().and_then(|v| v.parse::<u32>().ok());
        let ours = pid.is_none_or(|p| p == std::process::id());
        let watchdog = usec.filter(|_| ours).map(Duration::from_micros);
        Manager { watchdog, last_status: None }
    }

    /// How often the loop checks in: half the watchdog interval, else every 5 s (status and gauges).
    fn interval(&self) -> Duration {
        self.watchdog.map_or(Duration::from_secs(5), |w| (w / 2).max(Duration::from_millis(10)))
    }

    fn tick(&mut self, calls: usize, draining: bool) {
        if self.watchdog.is_some() {
            let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Watchdog]);
        }
        if self.last_status != Some(calls) {
            self.last_status = Some(calls);
            let status = if draining { format!("draining: {calls} calls") } else { format!("{calls} calls") };
            let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Status(&status)]);
        }
    }
}

/// Table sizes as gauges.
fn gauges(ep: &Endpoint, tcp: usize) {
    let sizes = ep.sizes();
    let t =
        |kind: &'static str, n: usize| metrics::gauge!(crate::metrics::SIP_TRANSACTIONS, "kind" => kind).set(n as f64);
    t("server", sizes.server_transactions);
    t("client", sizes.client_transactions);
    metrics::gauge!(crate::metrics::SIP_DIALOGS).set(sizes.dialogs as f64);
    metrics::gauge!(crate::metrics::TCP_CONNECTIONS).set(tcp as f64);
}

/// What the driver runs: the endpoint and call layer it owns, the sockets it serves and the channels it
/// hears from.
pub struct Driver {
    pub endpoint: Endpoint,
    pub calls: Calls,
    /// Where the calls' media runs: the call layer's media commands go here.
    pub media: Box<dyn MediaPlane>,
    /// Where status callbacks of calls vocals placed go (`None`: dropped).
    pub callbacks: Option<mpsc::Sender<Callback>>,
    pub listeners: Listeners,
    pub tcp_limits: TcpLimits,
    /// From the call tasks: media ready, failed or ended, a transfer asked for.
    pub media_events: mpsc::Receiver<MediaEvent>,
    /// From the HTTP API: hang up a call.
    pub commands: mpsc::Receiver<CallCommand>,
    /// From the daemon: drain, stop, a reload.
    pub control: mpsc::Receiver<Control>,
    /// Each call's SIP trace, and HEP (off: [`Tap::off`]).
    pub tap: Tap,
}

impl Driver {
    /// Runs until told to stop, or until a drain is over. One loop shape: hand every output on, check the
    /// drain, move the one timer if the earliest deadline moved, then await one input and apply it.
    pub async fn run(self) -> io::Result<()> {
        let Driver {
            endpoint,
            calls,
            media,
            callbacks,
            listeners,
            tcp_limits,
            mut media_events,
            mut commands,
            mut control,
            tap,
        } = self;
        // The HTTP API's listener is served beside the driver, not by it; it is held as long as before.
        let Listeners { udp, tcp, tls, admin: _admin } = listeners;
        let (tls_listener, tls_config) = tls.map(|(l, c)| (Some(l), Some(c))).unwrap_or_default();
        let (to_driver, mut inbound) = mpsc::channel::<Inbound>(1024);
        let mut shell = Shell::new(endpoint, calls, media, udp, tls_config, tcp_limits, to_driver)?;
        shell.callbacks = callbacks;
        shell.tap = tap;
        // Call traces that are over go to the store every second.
        let mut sweep = tokio::time::interval(Duration::from_secs(1));
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut check_in = tokio::time::interval(shell.manager.interval());
        check_in.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // One timer for the loop's life, moved only when the earliest deadline changes (a new one per turn would
        // cost a timer-wheel insert and removal per datagram).
        let sleep = tokio::time::sleep_until(far_future());
        tokio::pin!(sleep);
        let mut armed: Option<Option<std::time::Instant>> = None;
        loop {
            shell.drain();
            match shell.drain_step() {
                DrainStep::Over => {
                    shell.tap.flush();
                    return Ok(());
                }
                DrainStep::HungUp => continue,
                DrainStep::Waiting => {}
            }
            let deadline = shell.deadline();
            if armed != Some(deadline) {
                sleep.as_mut().reset(deadline.map(Instant::from_std).unwrap_or_else(far_future));
                armed = Some(deadline);
            }
            let flow = tokio::select! {
                Some(c) = control.recv() => shell.on_control(c),
                _ = check_in.tick() => shell.check_in(),
                _ = sweep.tick() => {
                    shell.tap.sweep(std::time::Instant::now());
                    ControlFlow::Continue(())
                }
                r = recv(shell.udp.as_ref(), &mut shell.buf) => shell.on_datagrams(r),
                r = accept(tcp.as_ref()) => shell.on_accept(r),
                r = accept(tls_listener.as_ref()) => shell.on_tls_accept(r),
                Some(msg) = inbound.recv() => shell.on_inbound(msg),
                Some(event) = media_events.recv() => shell.on_media(event),
                Some(command) = commands.recv() => shell.on_command(command),
                _ = &mut sleep => {
                    armed = None;
                    shell.on_timeout()
                }
            };
            if flow.is_break() {
                shell.tap.flush();
                return Ok(());
            }
        }
    }
}

/// What the loop does after a drain check.
enum DrainStep {
    /// Not draining, or waiting for the calls left to end.
    Waiting,
    /// The calls left were just hung up: hand their BYEs on before waiting.
    HungUp,
    /// The drain is over: return.
    Over,
}

/// The driver's state between inputs, and what each input does to it. Every method applies one input; none
/// awaits.
struct Shell {
    ep: Endpoint,
    calls: Calls,
    media: Box<dyn MediaPlane>,
    callbacks: Option<mpsc::Sender<Callback>>,
    udp: Option<UdpSocket>,
    udp_local: Option<SocketAddr>,
    /// What TLS connections are accepted with (replaced on SIGHUP).
    tls_config: Option<Arc<rustls::ServerConfig>>,
    /// What TLS connections vocals opens are made with: the system's trust store, read at the first one.
    tls_client: Option<Result<Arc<rustls::ClientConfig>, String>>,
    /// The host names TLS connections to these addresses verify (the trunk's or the proxy's, as the calls
    /// placed toward them named them).
    tls_names: std::collections::HashMap<SocketAddr, String>,
    conns: Connections<mpsc::Sender<Bytes>>,
    limits: Limits,
    tcp_limits: TcpLimits,
    /// Given to each connection task, for what it reads.
    to_driver: mpsc::Sender<Inbound>,
    /// One datagram's worth.
    buf: Vec<u8>,
    manager: Manager,
    /// Draining: when the calls left get BYE, and (after that) when the driver gives up waiting.
    drain_until: Option<(std::time::Instant, bool)>,
    tap: Tap,
}

impl Shell {
    fn new(
        ep: Endpoint,
        calls: Calls,
        media: Box<dyn MediaPlane>,
        udp: Option<UdpSocket>,
        tls_config: Option<Arc<rustls::ServerConfig>>,
        tcp_limits: TcpLimits,
        to_driver: mpsc::Sender<Inbound>,
    ) -> io::Result<Shell> {
        Ok(Shell {
            limits: ep.config().limits,
            udp_local: udp.as_ref().map(UdpSocket::local_addr).transpose()?,
            conns: Connections::new(tcp_limits.connection_limits()),
            ep,
            calls,
            media,
            callbacks: None,
            udp,
            tls_config,
            tls_client: None,
            tls_names: std::collections::HashMap::new(),
            tcp_limits,
            to_driver,
            buf: vec![0u8; 65_536],
            manager: Manager::new(),
            drain_until: None,
            tap: Tap::off(),
        })
    }

    /// Hands every pending output to the sockets (never waiting: a full socket or queue drops and logs) and
    /// every event to the call layer, until nothing is left.
    fn drain(&mut self) {
        loop {
            let callbacks = &self.callbacks;
            let mut post = |cb: Callback| match callbacks {
                Some(tx) if tx.try_send(cb).is_ok() => {}
                _ => {
                    metrics::counter!(crate::metrics::CALLBACKS, "result" => "dropped").increment(1);
                    tracing::warn!("status callback dropped: the sender is gone or its queue is full");
                }
            };
            run_commands(&mut self.calls, std::time::Instant::now(), &mut self.ep, self.media.as_mut(), &mut post);
            let Some(out) = self.ep.poll_output() else { break };
            match out {
                Output::Transmit { peer, bytes } => self.send(peer, bytes),
                Output::Event(event) => {
                    log_event(&event);
                    self.calls.handle(std::time::Instant::now(), Input::Sip(&event));
                }
            }
        }
    }

    /// While draining: whether the calls are all gone, the drain timeout has come (the calls left are hung up)
    /// or the grace after it is over too.
    fn drain_step(&mut self) -> DrainStep {
        let Some((until, hung_up)) = self.drain_until else { return DrainStep::Waiting };
        // Our last BYEs' transactions may linger (Timer K) after their 200: not worth waiting for.
        if self.calls.active() == 0 && self.ep.sizes().calls == 0 {
            tracing::info!("drained: no calls left");
            return DrainStep::Over;
        }
        let now = std::time::Instant::now();
        if now >= until && hung_up {
            tracing::warn!(calls = self.calls.active(), "calls still up after the drain timeout and grace: stopping");
            return DrainStep::Over;
        }
        if now >= until {
            tracing::warn!(calls = self.calls.active(), "drain timeout: hanging up the calls left");
            self.calls.handle(now, Input::Admin(AdminInput::EndAll("vocals is shutting down".into())));
            self.drain_until = Some((now + DRAIN_GRACE, true));
            return DrainStep::HungUp;
        }
        DrainStep::Waiting
    }

    /// The earliest deadline of the endpoint, the call layer and the drain.
    fn deadline(&self) -> Option<std::time::Instant> {
        [self.ep.poll_timeout(), self.calls.poll_timeout(), self.drain_until.map(|d| d.0)].into_iter().flatten().min()
    }

    fn on_control(&mut self, control: Control) -> ControlFlow<()> {
        match control {
            Control::Stop => return ControlFlow::Break(()),
            Control::Drain { timeout } => {
                if self.drain_until.is_none() {
                    let calls = self.calls.active();
                    tracing::info!(calls, timeout_s = timeout.as_secs(), "draining: new calls get 503");
                    self.ep.set_draining(true);
                    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
                    self.manager.last_status = None;
                    self.drain_until = Some((std::time::Instant::now() + timeout, false));
                }
            }
            Control::SetAllow { allow, reject_disallowed } => {
                // Connections from sources the new list leaves out are closed now, sending or not.
                for ip in self.conns.close_disallowed(&allow) {
                    refused(SocketAddr::new(ip, 0), NO_LONGER_ALLOWED);
                }
                self.ep.set_allow(allow, reject_disallowed);
            }
            Control::SetTls(config) => {
                tracing::info!("TLS certificate reloaded: new connections use it");
                self.tls_config = Some(config);
            }
        }
        ControlFlow::Continue(())
    }

    fn check_in(&mut self) -> ControlFlow<()> {
        self.manager.tick(self.calls.active(), self.drain_until.is_some());
        gauges(&self.ep, self.conns.len());
        ControlFlow::Continue(())
    }

    /// The datagram that woke us, then those already queued behind it (up to UDP_BATCH), before the loop turns
    /// again: under load a turn per datagram is most of the cost. A datagram is read only when there is room in
    /// the batch for it: one read past the end would be lost.
    fn on_datagrams(&mut self, first: io::Result<(usize, SocketAddr)>) -> ControlFlow<()> {
        let mut r = first;
        for taken in 1..=UDP_BATCH {
            let (n, from) = match r {
                Ok(v) => v,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                // ICMP port unreachable and the like surface here on some systems: not fatal.
                Err(e) => {
                    tracing::debug!(error = %e, "udp receive error");
                    break;
                }
            };
            if let (Some(local), true) = (self.udp_local, n > 0) {
                let peer = Peer { addr: from, local, transport: Transport::Udp, conn: None };
                trace_in(&self.ep.config().allow, from, &self.buf[..n]);
                let bytes = Bytes::copy_from_slice(&self.buf[..n]);
                self.tap_in(&peer, &bytes);
                self.ep.handle(std::time::Instant::now(), peer, bytes);
            }
            let (Some(udp), true) = (self.udp.as_ref(), taken < UDP_BATCH) else { break };
            r = udp.try_recv_from(&mut self.buf);
        }
        ControlFlow::Continue(())
    }

    /// A datagram in, to the tap when its source is inside `sip.allow` (what the allowlist drops unread is not
    /// kept either).
    fn tap_in(&mut self, peer: &Peer, bytes: &Bytes) {
        if self.tap.is_on() && self.ep.config().allow.allows(peer.addr.ip()) {
            self.tap.message(Direction::In, peer.addr, peer.local, peer.transport, bytes);
        }
    }

    /// A TCP connection: closed at once from a source outside the allowlist in force, before a byte is read;
    /// else admitted (or refused by the table's limits) and given its task.
    fn on_accept(&mut self, accepted: io::Result<(TcpStream, SocketAddr)>) -> ControlFlow<()> {
        let Ok((stream, from)) = accepted else { return ControlFlow::Continue(()) };
        let Some((link, rx)) = self.admit(from, Transport::Tcp) else { return ControlFlow::Continue(()) };
        tokio::spawn(async move {
            let Ok(local) = stream.local_addr() else { return link.closed().await };
            connection(link, stream, local, rx).await
        });
        ControlFlow::Continue(())
    }

    /// A TLS connection: as a TCP one, checked before the handshake, so a source outside the allowlist costs
    /// no TLS work and holds no slot.
    fn on_tls_accept(&mut self, accepted: io::Result<(TcpStream, SocketAddr)>) -> ControlFlow<()> {
        let (Ok((stream, from)), Some(config)) = (accepted, self.tls_config.clone()) else {
            return ControlFlow::Continue(());
        };
        let Some((link, rx)) = self.admit(from, Transport::Tls) else { return ControlFlow::Continue(()) };
        tokio::spawn(tls_connection(link, stream, config, rx));
        ControlFlow::Continue(())
    }

    /// Takes a connection from `from` into the table, or refuses it (allowlist, then the table's limits).
    fn admit(&mut self, from: SocketAddr, transport: Transport) -> Option<(Link, mpsc::Receiver<Bytes>)> {
        if !self.ep.config().allow.allows(from.ip()) {
            refused(from, NOT_ALLOWED);
            return None;
        }
        let (tx, rx) = mpsc::channel(256);
        match self.conns.admit(from.ip(), transport, tx) {
            Ok(conn) => {
                let to_driver = self.to_driver.clone();
                Some((Link { conn, peer: from, limits: self.limits, tcp: self.tcp_limits.clone(), to_driver }, rx))
            }
            Err(why) => {
                refused(from, why);
                None
            }
        }
    }

    /// What a connection task read: a message, what was left of a stream that cannot be framed, or its end.
    fn on_inbound(&mut self, msg: Inbound) -> ControlFlow<()> {
        match msg {
            Inbound::Message { conn, peer: from, local, bytes } => {
                trace_in(&self.ep.config().allow, from, &bytes);
                let allowed = self.ep.config().allow.allows(from.ip());
                let peer = self.conns.peer(conn, from, local);
                if allowed {
                    self.tap.message(Direction::In, peer.addr, peer.local, peer.transport, &bytes);
                }
                self.ep.handle(std::time::Instant::now(), peer, bytes);
                // A message from outside the allowlist (it shrank since the accept): the endpoint dropped it
                // (or answered 403, sent before the close), and the connection goes.
                if !allowed {
                    self.drain();
                    if self.conns.close(conn) {
                        refused(from, NO_LONGER_ALLOWED);
                    }
                }
            }
            Inbound::Broken { conn, peer: from, local, bytes, error } => {
                trace_in(&self.ep.config().allow, from, &bytes);
                let peer = self.conns.peer(conn, from, local);
                self.ep.framing_error(peer, &bytes, &error);
            }
            Inbound::Closed { conn } => self.conns.remove(conn),
            Inbound::Unreachable { conn, to, transport, why } => {
                self.conns.remove(conn);
                metrics::counter!(crate::metrics::TCP_REFUSED, "reason" => "outbound connection failed").increment(1);
                tracing::warn!(%to, transport = transport.as_str(), %why, "cannot open a connection to the next hop");
                self.ep.transport_failed(to, transport, &why);
            }
        }
        ControlFlow::Continue(())
    }

    fn on_media(&mut self, event: MediaEvent) -> ControlFlow<()> {
        let input = match event {
            MediaEvent::Ready { call } => Input::Media(call, MediaInput::Ready),
            MediaEvent::Failed { call, why } => Input::Media(call, MediaInput::Failed(why)),
            MediaEvent::End { call, why } => Input::Media(call, MediaInput::Ended(why)),
            MediaEvent::Transfer { call, target, headers } => Input::Agent(call, AgentInput::Transfer(target, headers)),
        };
        self.calls.handle(std::time::Instant::now(), input);
        ControlFlow::Continue(())
    }

    fn on_command(&mut self, command: CallCommand) -> ControlFlow<()> {
        let now = std::time::Instant::now();
        match command {
            CallCommand::Hangup { request, reply } => {
                if let Reply::Rest(outcome) = self.calls.handle(now, Input::Admin(AdminInput::Rest(request))) {
                    let _ = reply.send(outcome);
                }
            }
            CallCommand::End { id, reply } => {
                let found = self.calls.handle(now, Input::Admin(AdminInput::End(id)));
                let _ = reply.send(matches!(found, Reply::Ended(true)));
            }
            CallCommand::Dial { request, reply } => {
                let hop = self.calls.outbound().next_hop(&request.trunk);
                if hop.transport == Transport::Tls {
                    if self.tls_names.len() >= MAX_TLS_NAMES {
                        self.tls_names.clear();
                    }
                    self.tls_names.insert(request.next_hop, hop.host);
                }
                if let Reply::Dial(outcome) = self.calls.handle(now, Input::Admin(AdminInput::Dial(request))) {
                    let _ = reply.send(outcome);
                }
            }
            CallCommand::View { sid, reply } => {
                if let Reply::View(view) = self.calls.handle(now, Input::Admin(AdminInput::View(sid))) {
                    let _ = reply.send(view);
                }
            }
        }
        ControlFlow::Continue(())
    }

    fn on_timeout(&mut self) -> ControlFlow<()> {
        let now = std::time::Instant::now();
        self.ep.handle_timeout(now);
        self.calls.handle(now, Input::Timer);
        ControlFlow::Continue(())
    }
}

impl Shell {
    /// Sends what the endpoint routed to `peer` the way the transport layer says (a datagram, the connection
    /// the peer is on, or a new connection of ours); never waits.
    fn send(&mut self, peer: Peer, bytes: Bytes) {
        trace("out", peer.addr, &bytes);
        self.tap.message(Direction::Out, peer.addr, peer.local, peer.transport, &bytes);
        match self.conns.route(&peer) {
            Route::Datagram(to) => {
                if let Some(Err(e)) = self.udp.as_ref().map(|s| s.try_send_to(&bytes, to)) {
                    tracing::warn!(%to, error = %e, "udp send failed");
                }
            }
            Route::Connection(tx) => {
                if tx.try_send(bytes).is_err() {
                    tracing::warn!(to = %peer.addr, conn = peer.conn, "tcp send dropped: connection gone or its queue full");
                }
            }
            Route::Gone(conn) => {
                tracing::warn!(to = %peer.addr, conn, "tcp send dropped: connection gone or its queue full")
            }
            Route::Connect => self.connect(peer, bytes),
        }
    }

    /// Opens a connection to `peer` (TCP, or TLS verified against the name the call gave the address) with
    /// `first` queued on it; a connection that cannot be taken fails the requests toward it at once.
    fn connect(&mut self, peer: Peer, first: Bytes) {
        let (tx, rx) = mpsc::channel(256);
        let _ = tx.try_send(first);
        let tls = match peer.transport {
            Transport::Tls => {
                let config = self.tls_client.get_or_insert_with(crate::io::agent::tls_config).clone();
                let name = self.tls_names.get(&peer.addr).cloned().unwrap_or_else(|| peer.addr.ip().to_string());
                Some((config, name))
            }
            _ => None,
        };
        let conn = match self.conns.open(peer.addr, peer.transport, tx) {
            Ok(conn) => conn,
            Err(why) => {
                tracing::warn!(to = %peer.addr, why, "cannot open a connection to the next hop");
                return self.ep.transport_failed(peer.addr, peer.transport, why);
            }
        };
        let link = Link {
            conn,
            peer: peer.addr,
            limits: self.limits,
            tcp: self.tcp_limits.clone(),
            to_driver: self.to_driver.clone(),
        };
        tokio::spawn(outbound_connection(link, peer, tls, rx));
    }
}

/// Most host names remembered for TLS connections to open (one per trunk or proxy address in use).
const MAX_TLS_NAMES: usize = 1024;

fn log_event(event: &Event) {
    match event {
        Event::IncomingCall { call, invite, peer } => {
            tracing::info!(call = call.0, from = %peer.addr, uri = %invite.uri, "incoming call")
        }
        Event::CallEnded { call, why } => tracing::info!(call = call.0, ?why, "call ended"),
        Event::Dropped { why, from } => {
            metrics::counter!(crate::metrics::SIP_DROPPED, "reason" => why.as_str()).increment(1);
            tracing::debug!(%from, why = why.as_str(), "dropped")
        }
        other => tracing::debug!(?other, "event"),
    }
}

async fn recv(udp: Option<&UdpSocket>, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
    match udp {
        Some(s) => s.recv_from(buf).await,
        None => std::future::pending().await,
    }
}

async fn accept(tcp: Option<&TcpListener>) -> io::Result<(TcpStream, SocketAddr)> {
    match tcp {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

/// Most datagrams taken from the UDP socket in one turn of the driver's loop.
const UDP_BATCH: usize = 64;

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400)
}

/// Why a connection from a source outside `sip.allow` was closed at accept.
const NOT_ALLOWED: &str = "source not allowed";
/// Why an open connection was closed: its source left `sip.allow` (a reload).
const NO_LONGER_ALLOWED: &str = "source no longer allowed";

fn refused(from: SocketAddr, why: &'static str) {
    metrics::counter!(crate::metrics::TCP_REFUSED, "reason" => why).increment(1);
    match why {
        // Dropped as quietly as its UDP datagrams are (a scan or a flood would fill the log).
        NOT_ALLOWED => tracing::debug!(%from, why, "TCP connection refused"),
        NO_LONGER_ALLOWED => tracing::info!(from = %from.ip(), why, "TCP connection closed"),
        _ => tracing::warn!(%from, why, "TCP connection refused"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traced_messages_escape_control_bytes_and_mask_sdes_keys() {
        let msg = b"To: \"BEL:\\\x07 NUL:\\\x00 DEL:\\\x7f\" <sip:a@b>\r\n\r\nv=0\r\n\
                    a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:32\r\n";
        let shown = printable(msg);
        assert!(shown.contains(r#"BEL:\\x07 NUL:\\x00 DEL:\\x7f""#), "{shown}");
        assert!(shown.contains("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:***|2^20|1:32\r\n"), "{shown}");
        assert!(!shown.contains("WVNfX19"), "the key never reaches the log");
        assert!(shown.contains("\r\n\r\nv=0"), "line ends stay");
    }
}
