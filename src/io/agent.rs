//! The WebSocket to one call's agent (Twilio Media Streams, vocals as the client). Connecting sends
//! `connected` and `start`. Afterwards the call task owns the socket whole (no split halves, no lock): it
//! awaits the agent's frames in its select loop, and writes without ever waiting, polling the socket once per
//! frame. A slow agent therefore never stalls the RTP path: frames the socket cannot take yet wait in a short
//! backlog, retried on every pass of the loop (at least every 20 ms tick), and past one second of audio the
//! oldest are dropped and counted. Messages and frames past [`MAX_MESSAGE`] are refused before they are read; an
//! agent that breaks a limit has its stream closed with 1008 (policy violation) and the limit as the reason.
//! A call that ends on vocals' side sends `stop` and the close frame, then keeps the connection open, reading
//! and dropping, until the agent closes it (RFC 6455 §7.1.1), 2 s at most, on a task of its own.
//!
//! The frames' contents, their numbering and the stream's limits are `agent::protocol` and `agent::session`'s
//! (sans-IO); the call task that drives this link is `io::media`'s.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use base64::Engine;
use futures_util::{Sink, SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::error::CapacityError;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use crate::agent::config::AgentConfig;
use crate::agent::protocol::{MAX_MESSAGE, StartInfo, Violation};
use crate::agent::session::AgentSession;
use crate::media::histogram::DelayHistogram;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Frames held back while the socket cannot take them: one second of uplink audio.
const BACKLOG: usize = 50;
/// The agent socket's kernel send buffer (Linux doubles it): about two seconds of uplink frames.
const SEND_BUFFER: usize = 16 * 1024;
/// tungstenite's read buffer per agent connection.
const READ_CHUNK: usize = 4 * 1024;

/// Why the agent could not be reached.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("agent {agent} not reached within {timeout:?}")]
    Timeout { agent: String, timeout: Duration },
    #[error("agent {agent} refused the WebSocket: {message}")]
    Connect { agent: String, message: String },
}

/// What the agent sent, as the call task sees it.
pub enum FromAgent {
    Text(String),
    /// A binary frame: ignored and counted.
    Binary,
    /// The agent closed the stream (hang-up).
    Closed,
    Failed(String),
    /// A message past [`MAX_MESSAGE`]: refused unread.
    Violation(Violation),
}

/// An open stream to the agent, as the call task holds it.
pub struct AgentLink {
    pub session: AgentSession,
    ws: Ws,
    /// Frames not yet handed to the socket, with the RTP arrival behind each uplink frame.
    backlog: VecDeque<(Message, Option<Instant>)>,
    /// Handed to the socket but not yet flushed: the arrivals to time once the flush completes.
    unflushed: Vec<Instant>,
    /// RTP arrival -> frame written to the socket: for the call record, and the exported histogram.
    uplink: DelayHistogram,
    uplink_metric: metrics::Histogram,
    /// The same delays for the current second of the call's quality timeline.
    pub uplink_window: crate::media::timeline::Window,
    failed: Option<String>,
    /// Since when the socket has not taken everything handed to it (`None`: all written and flushed).
    stalled_since: Option<Instant>,
    /// vocals sent its close frame (a violation): nothing more is sent, and the socket is drained at the end.
    closing: bool,
}

impl AgentLink {
    /// Opens the WebSocket (within the agent's connect timeout) and sends `connected` and `start`. `tls` is
    /// the one client configuration every `wss://` agent shares.
    pub async fn connect(
        agent: &AgentConfig,
        info: StartInfo,
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> Result<AgentLink, AgentError> {
        let ws = open(agent, tls, agent.connect_timeout).await?;
        let mut link = AgentLink {
            session: AgentSession::new(info),
            ws,
            backlog: VecDeque::new(),
            unflushed: Vec::new(),
            uplink: DelayHistogram::default(),
            uplink_metric: metrics::histogram!(crate::metrics::AGENT_UPLINK_LATENCY),
            uplink_window: Default::default(),
            failed: None,
            stalled_since: None,
            closing: false,
        };
        let opening = link.session.opening(Instant::now());
        for frame in opening {
            link.send(frame, None);
        }
        Ok(link)
    }

    /// Queues a frame and writes what the socket takes now. `arrival`: when the RTP behind an uplink frame
    /// arrived.
    pub fn send(&mut self, text: String, arrival: Option<Instant>) {
        self.backlog.push_back((Message::text(text), arrival));
        self.flush();
        if self.backlog.len() > BACKLOG {
            let excess = self.backlog.len() - BACKLOG;
            self.backlog.drain(..excess);
            self.session.uplink_dropped(excess as u64);
        }
    }

    /// Hands backlogged frames to the socket while it takes them, then flushes; never waits.
    pub fn flush(&mut self) {
        if self.failed.is_some() {
            self.backlog.clear();
            return;
        }
        let mut cx = Context::from_waker(Waker::noop());
        while !self.backlog.is_empty() {
            match Pin::new(&mut self.ws).poll_ready(&mut cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return self.fail(e.to_string()),
                Poll::Pending => break,
            }
            let Some((msg, arrival)) = self.backlog.pop_front() else { break };
            if let Err(e) = Pin::new(&mut self.ws).start_send(msg) {
                return self.fail(e.to_string());
            }
            self.unflushed.extend(arrival);
        }
        let now = Instant::now();
        match Pin::new(&mut self.ws).poll_flush(&mut cx) {
            Poll::Ready(Ok(())) => {
                for arrival in self.unflushed.drain(..) {
                    let delay = now.saturating_duration_since(arrival);
                    self.uplink.record(delay);
                    self.uplink_window.record(delay);
                    self.uplink_metric.record(delay.as_secs_f64());
                }
                if self.backlog.is_empty() {
                    self.stalled_since = None;
                }
            }
            Poll::Ready(Err(e)) => self.fail(e.to_string()),
            Poll::Pending => {}
        }
        if !self.backlog.is_empty() || !self.unflushed.is_empty() {
            self.stalled_since.get_or_insert(now);
        }
    }

    /// How long the socket has been taking nothing of what is handed to it (zero while it keeps up).
    pub fn stalled_for(&self, now: Instant) -> Duration {
        self.stalled_since.map_or(Duration::ZERO, |since| now.saturating_duration_since(since))
    }

    fn fail(&mut self, why: String) {
        self.backlog.clear();
        self.failed.get_or_insert(why);
    }

    /// The next frame from the agent (cancel-safe: the socket buffers partial frames).
    pub async fn recv(&mut self) -> FromAgent {
        if let Some(why) = self.failed.clone() {
            return FromAgent::Failed(why);
        }
        loop {
            return match self.ws.next().await {
                Some(Ok(Message::Text(t))) => FromAgent::Text(t.as_str().to_owned()),
                Some(Ok(Message::Binary(_))) => FromAgent::Binary,
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                Some(Ok(Message::Close(_))) | None => FromAgent::Closed,
                Some(Err(WsError::Capacity(CapacityError::MessageTooLong { size, .. }))) => {
                    FromAgent::Violation(Violation::TooLarge { size })
                }
                Some(Err(e)) => FromAgent::Failed(e.to_string()),
            };
        }
    }

    /// Closes the stream for a broken limit: what waits in the backlog is dropped, the close frame (1008,
    /// policy violation, with the limit as its reason) goes out as the socket takes it, and nothing is sent
    /// after it. Never waits.
    pub fn close_for(&mut self, violation: &Violation) {
        if self.closing || self.failed.is_some() {
            return;
        }
        self.closing = true;
        self.backlog.clear();
        let frame = CloseFrame { code: CloseCode::Policy, reason: violation.to_string().into() };
        self.backlog.push_back((Message::Close(Some(frame)), None));
        self.flush();
    }

    /// Sends `stop` (when the call ends on our side) and the close frame, and returns the uplink delays. After
    /// [`AgentLink::close_for`] no `stop` is sent: the close frame (1008) is flushed. Either way the socket is
    /// then handed to `linger`, which keeps it open until the agent closes it: the client does not close the
    /// connection first (RFC 6455 §7.1.1). When the agent closed or failed first, or a write failed, the socket
    /// is simply dropped. Waits `CLOSE_WAIT` (2 s) at most for the socket to take the last frames.
    pub async fn finish(mut self, send_stop: bool) -> DelayHistogram {
        if self.failed.is_some() || !(send_stop || self.closing) {
            return self.uplink;
        }
        if !self.closing {
            let stop = self.session.stop();
            self.backlog.push_back((Message::text(stop), None));
        }
        let AgentLink { mut ws, backlog, uplink, .. } = self;
        let last = async {
            for (msg, _) in backlog {
                ws.feed(msg).await?;
            }
            // Sends the close frame (or, after `close_for`, flushes it) without waiting for the agent's.
            ws.close(None).await
        };
        match tokio::time::timeout(CLOSE_WAIT, last).await {
            Ok(Ok(())) => {
                tokio::spawn(linger(ws));
            }
            Ok(Err(e)) => tracing::debug!(error = %e, "agent stream did not close cleanly"),
            Err(_) => tracing::debug!("agent stream did not take its last frames in time"),
        }
        uplink
    }
}

/// How long the end of an agent stream may take: the last frames (`stop`, the close frame) taken by the socket,
/// then, in [`linger`], the agent closing the connection.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// After vocals' close frame: reads and drops what the agent still sends until it closes the connection
/// ([`CLOSE_WAIT`] at most), on a task of its own so the call's task ends at once. RFC 6455 §7.1.1: the server
/// closes the TCP connection first. Closing it right after the close frame resets it under the agent's
/// replies to audio sent before `stop` (an agent reading a little behind writes them after vocals closed):
/// the agent's write fails, and an agent that gives up on a failed write never reads the `stop` waiting in
/// its buffer. Reading raw bytes rather than frames: nothing the agent sends now can be refused or kept.
async fn linger(mut ws: Ws) {
    let drain = async {
        let mut sink = [0u8; 4096];
        while tokio::io::AsyncReadExt::read(ws.get_mut(), &mut sink).await? > 0 {}
        Ok::<(), std::io::Error>(())
    };
    if let Ok(Err(e)) = tokio::time::timeout(CLOSE_WAIT, drain).await {
        tracing::debug!(error = %e, "agent stream did not close cleanly");
    }
}

/// Opens the agent's WebSocket (TCP, TLS for `wss://`, the handshake signed when the agent has a secret) within
/// `timeout`.
async fn open(
    agent: &AgentConfig,
    tls: Option<Arc<rustls::ClientConfig>>,
    timeout: Duration,
) -> Result<Ws, AgentError> {
    let refused = |e: &dyn std::fmt::Display| AgentError::Connect { agent: agent.name.clone(), message: e.to_string() };
    let connect = async {
        let mut request = agent.url.as_str().into_client_request().map_err(|e| refused(&e))?;
        if let Some(secret) = &agent.secret {
            let signature = sign(secret, &agent.url).parse().map_err(|e| refused(&e))?;
            request.headers_mut().insert("X-Twilio-Signature", signature);
        }
        let uri = request.uri();
        let secure = uri.scheme_str() == Some("wss");
        let host = uri.host().unwrap_or_default().trim_matches(['[', ']']).to_string();
        let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
        let tcp = TcpStream::connect((host.as_str(), port)).await.map_err(|e| refused(&e))?;
        // Nagle off: a 20 ms frame must not wait for the previous one's ACK. A modest send buffer bounds
        // what a stalled agent can hold of ours (a second of uplink is about 17 KB of frames).
        tcp.set_nodelay(true).map_err(|e| refused(&e))?;
        let _ = socket2::SockRef::from(&tcp).set_send_buffer_size(SEND_BUFFER);
        let connector = match (secure, tls) {
            (true, Some(config)) => Some(Connector::Rustls(config)),
            (true, None) => return Err(refused(&"no TLS configuration for wss://")),
            (false, _) => Some(Connector::Plain),
        };
        // Every frame goes straight to the socket: tungstenite then holds at most the one frame the socket
        // would not take, and back-pressure reaches the backlog below instead of an unbounded buffer.
        // Reads in 4 KiB chunks rather than tungstenite's 128 KiB: the buffer lives as long as the call, and
        // a media frame is a few hundred bytes (larger ones are read in several chunks). A message or frame
        // past MAX_MESSAGE is refused from its header, before its payload is buffered (tungstenite's
        // defaults, 64 MiB and 16 MiB, would let one agent take that much of the server per call).
        let config = WebSocketConfig::default()
            .write_buffer_size(0)
            .read_buffer_size(READ_CHUNK)
            .max_message_size(Some(MAX_MESSAGE))
            .max_frame_size(Some(MAX_MESSAGE));
        tokio_tungstenite::client_async_tls_with_config(request, tcp, Some(config), connector)
            .await
            .map_err(|e| refused(&e))
    };
    let (ws, _) = tokio::time::timeout(timeout, connect)
        .await
        .map_err(|_| AgentError::Timeout { agent: agent.name.clone(), timeout })??;
    Ok(ws)
}

/// Checks that the agent's stream URL takes a WebSocket handshake within `timeout`, then closes it at once
/// (a normal close, before any `connected` or `start`): what the admin API does when an agent is saved.
pub async fn probe(
    agent: &AgentConfig,
    tls: Option<Arc<rustls::ClientConfig>>,
    timeout: Duration,
) -> Result<(), AgentError> {
    let mut ws = open(agent, tls, timeout).await?;
    let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
    Ok(())
}

/// The `X-Twilio-Signature` of a WebSocket handshake: base64 of HMAC-SHA1 over the URL, keyed with the agent's
/// secret (what Twilio sends its own stream endpoints; there are no POST parameters to append).
pub fn sign(secret: &str, url: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(ring::hmac::sign(&key, url.as_bytes()).as_ref())
}

/// The TLS client configuration for `wss://` agents: the system's trust store (`/etc/ssl/certs`, or
/// `SSL_CERT_FILE`), ring as the provider. Built once.
pub fn tls_config() -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for cert in found.certs {
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        return Err(format!("no trusted CA certificates found ({:?})", found.errors));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An agent reading a little behind (as the load runs' simulator does, beside SIPp on one core) still reads
    /// every frame through `stop`, and can answer the audio it reads until then: vocals leaves the closing of
    /// the connection to the agent. Closing it right after the close frame made the agent's next write fail
    /// (a reset), and the simulator, which gives up on a failed write, missed 31 `stop`s in 5,400 streams.
    #[tokio::test]
    async fn an_agent_reading_behind_reads_every_frame_through_stop_and_can_answer_them() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/stream", listener.local_addr().unwrap());
        let (ended, call_ended) = tokio::sync::oneshot::channel::<()>();
        let agent = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
            // Behind: nothing is read before the call has ended on vocals' side.
            call_ended.await.unwrap();
            let mut events = Vec::new();
            while let Some(message) = ws.next().await {
                let Message::Text(text) = message.map_err(|e| format!("read after {events:?}: {e}"))? else {
                    continue;
                };
                let frame: serde_json::Value = serde_json::from_str(text.as_str()).unwrap();
                let event = frame["event"].as_str().unwrap().to_string();
                if event == "media" {
                    // The reply a real agent writes to audio it has read.
                    let reply = serde_json::json!({"event": "media", "streamSid": "MZ1", "media": {"payload": "/w=="}});
                    ws.send(Message::text(reply.to_string()))
                        .await
                        .map_err(|e| format!("reply after {} frames: {e}", events.len()))?;
                    // Time for a reset, if vocals' side is gone, to come back before the next write.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                let stop = event == "stop";
                events.push(event);
                if stop {
                    break;
                }
            }
            Ok::<_, String>(events)
        });
        let config =
            AgentConfig { name: "behind".into(), url, connect_timeout: Duration::from_secs(5), ..Default::default() };
        let info = StartInfo { stream_sid: "MZ1".into(), ..Default::default() };
        let mut link = AgentLink::connect(&config, info, None).await.unwrap();
        for _ in 0..5 {
            let text = link.session.frame(Instant::now(), &[0xff; 160]);
            link.send(text, None);
        }
        link.finish(true).await;
        ended.send(()).unwrap();
        let events = agent.await.unwrap().unwrap();
        assert_eq!(events, ["connected", "start", "media", "media", "media", "media", "media", "stop"]);
    }

    #[test]
    fn the_handshake_signature_is_hmac_sha1_of_the_url_in_base64() {
        // Computed independently with Python's hmac module.
        assert_eq!(sign("12345", "wss://agents.example.com/stream?agent=support"), "8yDqy9onvunzn8sVPg0EsjL7T/U=");
    }
}
