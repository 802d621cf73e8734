//! The SIP driver's wire tap: what watches every SIP message in and out besides the endpoint. Each call's
//! trace ([`CallTraces`], stored with its record when the call is over) and HEPv3 to a Homer collector (a
//! bounded queue in front of one sending task: the driver never waits on it, a full queue drops and counts).

use std::net::SocketAddr;
use std::time::{Instant, SystemTime};

use bytes::{Bytes, BytesMut};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use crate::sip::hep;
use crate::sip::trace::{CallTraces, Direction, Finished, summarize};
use crate::sip::transport::Transport;
use crate::store::CallRecord;
use crate::store::catalog::{CallWrite, Recorder};

/// HEP packets waiting for the sending task: about a second of a busy server's signalling.
const HEP_QUEUE: usize = 8192;

/// Where HEP packets go: the queue of the task that sends them.
#[derive(Debug)]
pub struct Hep {
    tx: mpsc::Sender<Bytes>,
    capture_id: u32,
    buf: BytesMut,
}

impl Hep {
    /// Resolves the collector (`host`, a name or an address, and `port`), binds a socket toward it and starts
    /// the sending task.
    pub async fn start(host: &str, port: u16, capture_id: u32) -> std::io::Result<Hep> {
        let to = tokio::net::lookup_host((host, port))
            .await?
            .next()
            .ok_or_else(|| std::io::Error::other(format!("{host} has no address")))?;
        let local: SocketAddr =
            if to.is_ipv4() { "0.0.0.0:0".parse() } else { "[::]:0".parse() }.expect("a literal address");
        let socket = UdpSocket::bind(local).await?;
        socket.connect(to).await?;
        let (tx, mut rx) = mpsc::channel::<Bytes>(HEP_QUEUE);
        tokio::spawn(async move {
            while let Some(packet) = rx.recv().await {
                if let Err(e) = socket.send(&packet).await {
                    metrics::counter!(crate::metrics::HEP_DROPPED).increment(1);
                    tracing::debug!(%to, error = %e, "HEP packet not sent");
                }
            }
        });
        tracing::info!(collector = %to, capture_id, "SIP messages go to the HEP collector");
        Ok(Hep { tx, capture_id, buf: BytesMut::with_capacity(64 * 1024) })
    }

    #[allow(clippy::too_many_arguments)]
    fn send(
        &mut self,
        at: SystemTime,
        dir: Direction,
        peer: SocketAddr,
        local: SocketAddr,
        transport: Transport,
        call_id: &[u8],
        bytes: &[u8],
    ) {
        self.buf.reserve(bytes.len() + 128);
        hep::encode(&mut self.buf, self.capture_id, at, dir, peer, local, transport, call_id, bytes);
        let packet = self.buf.split().freeze();
        if self.tx.try_send(packet).is_err() {
            metrics::counter!(crate::metrics::HEP_DROPPED).increment(1);
        }
    }
}

/// The tap: off (no trace, no HEP) costs a branch per message.
#[derive(Debug)]
pub struct Tap {
    traces: Option<CallTraces>,
    hep: Option<Hep>,
    records: Option<Recorder>,
    /// The node name and id seed, for the records of INVITEs the SIP layer refused.
    node: String,
    seed: u64,
    refusals: u32,
    finished: Vec<Finished>,
    counted: (u64, u64),
}

impl Tap {
    /// `traces`: keep each call's messages (up to `capacity` calls at once), handed to `records`.
    pub fn new(traces: Option<usize>, hep: Option<Hep>, records: Option<Recorder>, node: String, seed: u64) -> Tap {
        Tap {
            traces: traces.map(CallTraces::new),
            hep,
            records,
            node,
            seed,
            refusals: 0,
            finished: Vec::new(),
            counted: (0, 0),
        }
    }

    pub fn off() -> Tap {
        Tap::new(None, None, None, String::new(), 0)
    }

    /// Whether anything watches the messages.
    pub fn is_on(&self) -> bool {
        self.traces.is_some() || self.hep.is_some()
    }

    /// One message in or out.
    pub fn message(
        &mut self,
        dir: Direction,
        peer: SocketAddr,
        local: SocketAddr,
        transport: Transport,
        bytes: &Bytes,
    ) {
        if self.traces.is_none() && self.hep.is_none() {
            return;
        }
        let at = SystemTime::now();
        // Read once, for the trace and HEP both.
        let summary = summarize(bytes);
        if let (Some(traces), Some(s)) = (self.traces.as_mut(), summary.as_ref()) {
            traces.observe_summarized(Instant::now(), at, dir, peer, local, transport, bytes, s);
            traces.take_ready(&mut self.finished);
            if !self.finished.is_empty() {
                self.store();
            }
        }
        if let Some(hep) = self.hep.as_mut() {
            let call_id = summary.map(|s| s.call_id).unwrap_or_default();
            hep.send(at, dir, peer, local, transport, call_id, bytes);
        }
    }

    /// Hands the traces that are over to the store.
    pub fn sweep(&mut self, now: Instant) {
        let Some(traces) = self.traces.as_mut() else { return };
        traces.sweep(now, &mut self.finished);
        self.count();
        self.store();
    }

    /// Hands every trace to the store (the driver stops).
    pub fn flush(&mut self) {
        let Some(traces) = self.traces.as_mut() else { return };
        traces.flush(&mut self.finished);
        self.store();
    }

    fn count(&mut self) {
        let Some(traces) = self.traces.as_ref() else { return };
        let c = traces.counts;
        if c.refusals_dropped > self.counted.0 {
            let n = c.refusals_dropped - self.counted.0;
            metrics::counter!(crate::metrics::CALL_TRACES_DROPPED, "reason" => "refusal sampled out").increment(n);
        }
        if c.full > self.counted.1 {
            let n = c.full - self.counted.1;
            metrics::counter!(crate::metrics::CALL_TRACES_DROPPED, "reason" => "table full").increment(n);
            tracing::warn!(calls = n, "SIP traces not kept: the trace table is full");
        }
        self.counted = (c.refusals_dropped, c.full);
    }

    fn store(&mut self) {
        for f in self.finished.drain(..) {
            let Some(records) = &self.records else { continue };
            let refused = f.refused.map(|status| {
                self.refusals = self.refusals.wrapping_add(1);
                let at = crate::store::rfc3339_millis(f.invite_at);
                let why = if f.phrase.is_empty() { status.to_string() } else { format!("{status} {}", f.phrase) };
                Box::new(CallRecord {
                    id: format!("vc_{:016x}r{:07x}", self.seed, self.refusals),
                    sip_call_id: f.call_id.clone(),
                    from: f.from,
                    to: f.to,
                    node: self.node.clone(),
                    invite_at: at.clone(),
                    end_at: Some(at),
                    end_reason: Some(format!("refused by the SIP layer: {why}")),
                    sip_status: Some(status),
                    ..CallRecord::default()
                })
            });
            records.send(CallWrite::Sip { sip_call_id: f.call_id, trace: f.trace, refused });
        }
    }
}
