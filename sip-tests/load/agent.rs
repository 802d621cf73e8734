//! The load runs' agent simulator: a Twilio Media Streams WebSocket server that echoes every `media` frame it
//! is sent back on the same stream (as a real agent's reply audio would come), and measures what it sees from
//! vocals: the gap between successive media frames of one stream (vocals should send one every 20 ms), frames
//! and streams. It runs until SIGINT or SIGTERM, then prints one JSON summary line on stdout and exits.
//!
//! `load_agent <listen address> [spurts]`, e.g. `load_agent 127.0.0.1:18080`; vocals' agent URL is then
//! `ws://127.0.0.1:18080/stream`. Built by `sip-tests/load/run` (`cargo build --release --example load_agent`).
//!
//! With `spurts` it replies as a voice agent does instead: once a second (every 50th frame heard, at an offset
//! of its own per stream), a 400 ms reply of 20 frames sent back to back, then silence: each reply is a talk
//! spurt after silence, what vocals' downlink latency (agent audio to its first RTP packet) is measured on.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

/// Gaps in 0.1 ms buckets up to 1 s; longer ones land in the last bucket.
const BUCKETS: usize = 10_001;

struct Totals {
    gaps: Vec<AtomicU64>,
    streams_started: AtomicU64,
    streams_stopped: AtomicU64,
    media_in: AtomicU64,
    media_out: AtomicU64,
    /// Echoes the socket refused (vocals had closed the connection): reading goes on, so a `stop` already
    /// received is still counted.
    echoes_failed: AtomicU64,
    bad_frames: AtomicU64,
    connections: AtomicU64,
}

impl Totals {
    fn record_gap(&self, gap_us: u64) {
        let bucket = ((gap_us / 100) as usize).min(BUCKETS - 1);
        self.gaps[bucket].fetch_add(1, Ordering::Relaxed);
    }

    /// The `q` quantile of the gaps, in ms (the upper edge of its bucket).
    fn quantile(&self, counts: &[u64], q: f64) -> f64 {
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return 0.0;
        }
        let rank = ((total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return (i + 1) as f64 / 10.0;
            }
        }
        BUCKETS as f64 / 10.0
    }

    fn summary(&self) -> Value {
        let counts: Vec<u64> = self.gaps.iter().map(|g| g.load(Ordering::Relaxed)).collect();
        let total: u64 = counts.iter().sum();
        let max = counts.iter().rposition(|&c| c > 0).map_or(0.0, |i| (i + 1) as f64 / 10.0);
        json!({
            "connections": self.connections.load(Ordering::Relaxed),
            "streams_started": self.streams_started.load(Ordering::Relaxed),
            "streams_stopped": self.streams_stopped.load(Ordering::Relaxed),
            "media_in": self.media_in.load(Ordering::Relaxed),
            "media_out": self.media_out.load(Ordering::Relaxed),
            "echoes_failed": self.echoes_failed.load(Ordering::Relaxed),
            "bad_frames": self.bad_frames.load(Ordering::Relaxed),
            "gaps": total,
            "gap_p50_ms": self.quantile(&counts, 0.50),
            "gap_p99_ms": self.quantile(&counts, 0.99),
            "gap_p999_ms": self.quantile(&counts, 0.999),
            "gap_max_ms": max,
        })
    }
}

/// In `spurts` mode: frames heard between replies, and the frames of one reply.
const SPURT_EVERY: u64 = 50;
const SPURT_FRAMES: usize = 20;

async fn serve(tcp: tokio::net::TcpStream, totals: Arc<Totals>, spurts: bool) {
    let _ = tcp.set_nodelay(true);
    let Ok(ws) = tokio_tungstenite::accept_async(tcp).await else { return };
    totals.connections.fetch_add(1, Ordering::Relaxed);
    let (mut tx, mut rx) = ws.split();
    let mut stream_sid = String::new();
    let mut last: Option<Instant> = None;
    // Cleared when an echo fails: the frames vocals sent before it closed (its `stop` among them) may still be
    // waiting to be read, so the loop reads on, echoing nothing more.
    let mut echo = true;
    let mut heard: u64 = 0;
    while let Some(Ok(message)) = rx.next().await {
        let text = match message {
            Message::Text(text) => text,
            Message::Close(_) => break,
            _ => continue,
        };
        let Ok(frame) = serde_json::from_str::<Value>(&text) else {
            totals.bad_frames.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        match frame["event"].as_str() {
            Some("start") => {
                stream_sid = frame["streamSid"].as_str().unwrap_or_default().to_string();
                totals.streams_started.fetch_add(1, Ordering::Relaxed);
            }
            Some("media") => {
                let now = Instant::now();
                if let Some(before) = last.replace(now) {
                    totals.record_gap(now.duration_since(before).as_micros() as u64);
                }
                totals.media_in.fetch_add(1, Ordering::Relaxed);
                let Some(payload) = frame["media"]["payload"].as_str() else {
                    totals.bad_frames.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                if !echo {
                    continue;
                }
                heard += 1;
                // Each stream replies at its own point of the second (its sid's last digits), not all at once.
                let offset = stream_sid.bytes().fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
                let frames = match spurts {
                    false => 1,
                    true if heard.wrapping_add(offset).is_multiple_of(SPURT_EVERY) => SPURT_FRAMES,
                    true => 0,
                };
                let reply = json!({"event": "media", "streamSid": stream_sid, "media": {"payload": payload}});
                for _ in 0..frames {
                    if tx.feed(Message::text(reply.to_string())).await.is_err() {
                        echo = false;
                        break;
                    }
                    totals.media_out.fetch_add(1, Ordering::Relaxed);
                }
                if frames > 0 && (!echo || tx.flush().await.is_err()) {
                    echo = false;
                    totals.echoes_failed.fetch_add(1, Ordering::Relaxed);
                }
            }
            Some("stop") => {
                totals.streams_stopped.fetch_add(1, Ordering::Relaxed);
                break;
            }
            Some(_) => {}
            None => {
                totals.bad_frames.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

fn main() {
    let spurts = std::env::args().nth(2).as_deref() == Some("spurts");
    let addr: SocketAddr = match std::env::args().nth(1).map(|a| a.parse()) {
        Some(Ok(addr)) => addr,
        _ => {
            eprintln!("usage: load_agent <listen address, e.g. 127.0.0.1:18080> [spurts]");
            std::process::exit(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime");
    runtime.block_on(async move {
        let listener = match TcpListener::bind(addr).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("load_agent: cannot listen on {addr}: {e}");
                std::process::exit(1);
            }
        };
        let totals = Arc::new(Totals {
            gaps: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            streams_started: AtomicU64::new(0),
            streams_stopped: AtomicU64::new(0),
            media_in: AtomicU64::new(0),
            media_out: AtomicU64::new(0),
            echoes_failed: AtomicU64::new(0),
            bad_frames: AtomicU64::new(0),
            connections: AtomicU64::new(0),
        });
        let accept = {
            let totals = totals.clone();
            async move {
                loop {
                    if let Ok((tcp, _)) = listener.accept().await {
                        tokio::spawn(serve(tcp, totals.clone(), spurts));
                    }
                }
            }
        };
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM");
        tokio::select! {
            _ = accept => {}
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        println!("{}", totals.summary());
    });
}
