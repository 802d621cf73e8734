//! The SIP driver's TCP and TLS connection tasks: one per connection, accepted or opened by vocals. Each frames
//! what it reads into messages for the driver, answers keepalives, writes what the driver sends, and closes on
//! its idle and message timeouts (RFC 3261 §18.3, RFC 5626 §3.5.1 keepalives).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{TcpLimits, far_future};
use crate::sip::message::{Limits, ParseError, StreamFrame, frame_stream};
use crate::sip::transport::{Peer, Transport};

/// What a connection task hands the driver.
pub(super) enum Inbound {
    Message {
        conn: u64,
        peer: SocketAddr,
        local: SocketAddr,
        bytes: Bytes,
    },
    /// The stream cannot be framed any more: what was buffered, and why.
    Broken {
        conn: u64,
        peer: SocketAddr,
        local: SocketAddr,
        bytes: Bytes,
        error: ParseError,
    },
    Closed {
        conn: u64,
    },
    /// A connection vocals opened could not be: the TCP connect or the TLS handshake failed, or timed out.
    Unreachable {
        conn: u64,
        to: SocketAddr,
        transport: Transport,
        why: String,
    },
}

/// What a connection task needs of the driver: its id, peer, limits and the way back.
pub(super) struct Link {
    pub(super) conn: u64,
    pub(super) peer: SocketAddr,
    pub(super) limits: Limits,
    pub(super) tcp: TcpLimits,
    pub(super) to_driver: mpsc::Sender<Inbound>,
}

impl Link {
    pub(super) async fn closed(self) {
        let _ = self.to_driver.send(Inbound::Closed { conn: self.conn }).await;
    }
}

/// One TLS connection: the handshake (within the message timeout: a peer that never finishes it is closed),
/// then the connection as any other. TLS 1.2 and 1.3; no client certificate asked.
pub(super) async fn tls_connection(
    link: Link,
    stream: TcpStream,
    config: Arc<rustls::ServerConfig>,
    from_driver: mpsc::Receiver<Bytes>,
) {
    let Ok(local) = stream.local_addr() else { return link.closed().await };
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    match tokio::time::timeout(link.tcp.message_timeout, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => {
            let version = tls.get_ref().1.protocol_version().map(|v| format!("{v:?}")).unwrap_or_default();
            tracing::debug!(peer = %link.peer, %version, "TLS connection");
            connection(link, tls, local, from_driver).await
        }
        Ok(Err(e)) => {
            metrics::counter!(crate::metrics::TCP_REFUSED, "reason" => "TLS handshake failed").increment(1);
            tracing::info!(peer = %link.peer, error = %e, "TLS handshake failed");
            link.closed().await
        }
        Err(_) => {
            metrics::counter!(crate::metrics::TCP_REFUSED, "reason" => "TLS handshake timeout").increment(1);
            tracing::info!(peer = %link.peer, "TLS handshake not finished in time: closed");
            link.closed().await
        }
    }
}

/// A connection vocals opens to `peer` (a trunk or the outbound proxy): TCP connect, then for TLS the handshake
/// verifying the certificate against the system's trust store and `name`, both within the message timeout;
/// then the connection as any other, named by the listener `peer.local` our Via and Contact give (where the
/// trunk's requests in the dialog are sent when this connection is gone).
pub(super) async fn outbound_connection(
    link: Link,
    peer: Peer,
    tls: Option<(Result<Arc<rustls::ClientConfig>, String>, String)>,
    from_driver: mpsc::Receiver<Bytes>,
) {
    let deadline = link.tcp.message_timeout;
    let fail = |link: Link, why: String| async move {
        let Link { conn, to_driver, .. } = link;
        let _ = to_driver.send(Inbound::Unreachable { conn, to: peer.addr, transport: peer.transport, why }).await;
    };
    let stream = match tokio::time::timeout(deadline, TcpStream::connect(peer.addr)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => return fail(link, format!("TCP connect to {}: {e}", peer.addr)).await,
        Err(_) => return fail(link, format!("TCP connect to {}: no answer within {deadline:?}", peer.addr)).await,
    };
    let _ = stream.set_nodelay(true);
    let Some((config, name)) = tls else { return connection(link, stream, peer.local, from_driver).await };
    let config = match config {
        Ok(config) => config,
        Err(why) => return fail(link, format!("no TLS client configuration: {why}")).await,
    };
    let server_name = match rustls::pki_types::ServerName::try_from(name.clone()) {
        Ok(n) => n,
        Err(e) => return fail(link, format!("{name:?} is not a name TLS can verify: {e}")).await,
    };
    let connector = tokio_rustls::TlsConnector::from(config);
    match tokio::time::timeout(deadline, connector.connect(server_name, stream)).await {
        Ok(Ok(tls)) => {
            let version = tls.get_ref().1.protocol_version().map(|v| format!("{v:?}")).unwrap_or_default();
            tracing::debug!(to = %peer.addr, %name, %version, "TLS connection opened");
            connection(link, tls, peer.local, from_driver).await
        }
        Ok(Err(e)) => fail(link, format!("TLS handshake with {name} ({}): {e}", peer.addr)).await,
        Err(_) => {
            fail(link, format!("TLS handshake with {name} ({}): not finished within {deadline:?}", peer.addr)).await
        }
    }
}

/// One TCP or TLS connection: frames inbound messages, answers keepalives, writes what the driver sends. It
/// closes after `idle_timeout` without a complete message, and when a message begun is still incomplete after
/// `message_timeout` (a slow or stalled sender holding the connection).
pub(super) async fn connection<S>(link: Link, stream: S, local: SocketAddr, mut from_driver: mpsc::Receiver<Bytes>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let Link { conn, peer, limits, tcp, to_driver } = link;
    let (idle_timeout, message_timeout) = (tcp.idle_timeout, tcp.message_timeout);
    let (mut rd, mut wr) = tokio::io::split(stream);
    let mut buf = BytesMut::with_capacity(8192);
    let idle = tokio::time::sleep(idle_timeout);
    tokio::pin!(idle);
    // Whether part of a message is buffered, and (`unfinished`) when it must be complete by.
    let mut pending = false;
    let unfinished = tokio::time::sleep(far_future() - Instant::now());
    tokio::pin!(unfinished);
    'conn: loop {
        tokio::select! {
            r = rd.read_buf(&mut buf) => {
                if !matches!(r, Ok(n) if n > 0) {
                    break;
                }
                loop {
                    match frame_stream(&buf, &limits) {
                        Ok(StreamFrame::Incomplete) => break,
                        Ok(StreamFrame::Ping) => {
                            buf.advance(4);
                            if wr.write_all(b"\r\n").await.is_err() { break 'conn; }
                        }
                        Ok(StreamFrame::Pong) => buf.advance(2),
                        Ok(StreamFrame::Message(n)) => {
                            let bytes = buf.split_to(n).freeze();
                            idle.as_mut().reset(Instant::now() + idle_timeout);
                            pending = false;
                            if to_driver.send(Inbound::Message { conn, peer, local, bytes }).await.is_err() {
                                break 'conn;
                            }
                        }
                        Err(error) => {
                            // The stream cannot be re-synchronised after a framing error (RFC 3261 §18.3):
                            // the driver answers the request if it can (400, 513), then the connection closes.
                            tracing::info!(%peer, %error, "closing TCP connection after a framing error");
                            let bytes = buf.split().freeze();
                            if to_driver.send(Inbound::Broken { conn, peer, local, bytes, error }).await.is_ok()
                                && let Ok(Some(out)) =
                                    tokio::time::timeout(Duration::from_millis(500), from_driver.recv()).await
                            {
                                let _ = wr.write_all(&out).await;
                            }
                            break 'conn;
                        }
                    }
                }
                if buf.is_empty() {
                    pending = false;
                } else if !pending {
                    pending = true;
                    unfinished.as_mut().reset(Instant::now() + message_timeout);
                }
            }
            out = from_driver.recv() => match out {
                Some(out) => if wr.write_all(&out).await.is_err() { break },
                // The driver closed the connection (after what it had queued, received first).
                None => break,
            },
            _ = &mut idle => {
                tracing::debug!(%peer, "closing idle TCP connection");
                break;
            }
            _ = &mut unfinished, if pending => {
                metrics::counter!(crate::metrics::TCP_REFUSED, "reason" => "message timeout").increment(1);
                tracing::info!(%peer, buffered = buf.len(), "closing TCP connection: a message left incomplete too long");
                break;
            }
        }
    }
    let _ = to_driver.send(Inbound::Closed { conn }).await;
}
