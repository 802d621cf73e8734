//! The store's live side: the routing table kept in memory ([`Catalog`]) and the one task that writes call
//! records ([`Recorder`]). Routing never waits on the database: the catalog reloads the whole table after each
//! write made here, when another node announces one (PostgreSQL `LISTEN`/`NOTIFY`), and every
//! `RELOAD_EVERY` in case an announcement was missed; when the database is down, calls keep routing from the
//! last table.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc;

use super::{CallRecord, ROUTING_CHANNEL, Store, StoreError};
use crate::routing::{Directory, NumberTable};

/// How often the table is reloaded even without a change announced.
const RELOAD_EVERY: Duration = Duration::from_secs(30);

/// The routing table, kept in step with the store.
pub struct Catalog {
    store: Arc<Store>,
    /// The config file's `[[numbers]]` and default agent; the store's numbers go over them.
    base: std::sync::RwLock<NumberTable>,
    directory: Arc<Directory>,
    loaded: AtomicBool,
}

impl Catalog {
    pub fn new(store: Arc<Store>, base: NumberTable, directory: Arc<Directory>) -> Arc<Catalog> {
        Arc::new(Catalog { store, base: std::sync::RwLock::new(base), directory, loaded: AtomicBool::new(false) })
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The routing table calls are routed with now.
    pub fn directory(&self) -> &Arc<Directory> {
        &self.directory
    }

    /// Whether a table from the store has been loaded (readiness).
    pub fn loaded(&self) -> bool {
        self.loaded.load(Ordering::Relaxed)
    }

    /// Reads the store's numbers and makes them the table the next call is routed with.
    pub async fn reload(&self) -> Result<usize, StoreError> {
        let mut table = match self.base.read() {
            Ok(base) => base.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        table.overlay(self.store.routing_table().await?);
        let numbers = table.len();
        self.directory.replace(table);
        self.loaded.store(true, Ordering::Relaxed);
        Ok(numbers)
    }

    /// New config-file numbers (SIGHUP); call [`Catalog::reload`] after.
    pub fn set_base(&self, base: NumberTable) {
        match self.base.write() {
            Ok(mut b) => *b = base,
            Err(poisoned) => *poisoned.into_inner() = base,
        }
    }

    /// After a write made through this node: reload, and tell the other nodes.
    pub async fn changed(&self) {
        if let Err(e) = self.reload().await {
            tracing::warn!(error = %e, "routing table not reloaded after a change; calls use the previous one");
        }
        if let Err(e) = self.store.announce().await {
            tracing::warn!(error = %e, "other nodes were not told of the change; they reload within 30 s");
        }
    }

    /// Keeps the table in step with changes other nodes make: on PostgreSQL, `LISTEN` (with a reload after every
    /// reconnection, as notifications may have been missed); everywhere, a reload every 30 s.
    pub fn spawn_watch(self: Arc<Self>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut listener = None;
            let mut tick = tokio::time::interval(RELOAD_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                if self.store.is_postgres() && listener.is_none() {
                    listener = self.listen().await;
                }
                let notified = async {
                    match listener.as_mut() {
                        Some(l) => l.try_recv().await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    n = notified => match n {
                        Ok(Some(_)) => tracing::debug!("another node changed the numbers"),
                        // The connection was lost (and is being re-established): something may have been missed.
                        Ok(None) => tracing::info!("routing notifications reconnected"),
                        Err(e) => {
                            tracing::warn!(error = %e, "routing notifications lost; retrying");
                            listener = None;
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                    },
                    _ = tick.tick() => {}
                }
                if let Err(e) = self.reload().await {
                    tracing::warn!(error = %e, "routing table not reloaded; calls use the previous one");
                }
            }
        })
    }

    async fn listen(&self) -> Option<sqlx::postgres::PgListener> {
        let connect = async {
            let mut l = sqlx::postgres::PgListener::connect(self.store.url()).await?;
            l.listen(ROUTING_CHANNEL).await?;
            Ok::<_, sqlx::Error>(l)
        };
        match connect.await {
            Ok(l) => {
                // Whatever changed before the LISTEN took effect.
                let _ = self.reload().await;
                Some(l)
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot LISTEN for routing changes; reloading every 30 s");
                None
            }
        }
    }
}

/// One change to a call record.
#[derive(Clone, Debug, PartialEq)]
pub enum CallWrite {
    /// The call arrived (or was refused: the record then has its end).
    Start(Box<CallRecord>),
    /// A call vocals placed has its INVITE: its SIP Call-ID.
    Dialed {
        id: String,
        sip_call_id: String,
    },
    Answered {
        id: String,
        at: String,
        codec: String,
    },
    Ended {
        id: String,
        at: String,
        reason: String,
        sip_status: u16,
    },
    Stats {
        id: String,
        stats: Value,
    },
    /// The call's session timer (RFC 4028): interval, refresher, refreshes, glare.
    Session {
        id: String,
        session: Value,
    },
    /// The call's recording: started, completed, recovered after a crash, deleted or expired.
    Recording {
        id: String,
        recording: Value,
    },
    /// The call's quality timeline, when its media ends.
    Timeline {
        id: String,
        timeline: Value,
    },
    /// A call's SIP trace, found by its SIP Call-ID; `refused`: the record to make for a refused INVITE that
    /// has none (the SIP layer refused it before a call began).
    Sip {
        sip_call_id: String,
        /// JSON text, as the trace wrote it.
        trace: String,
        refused: Option<Box<CallRecord>>,
    },
}

/// Where the call layer and the media tasks send call records: a bounded queue in front of the one writer
/// task. Sending never waits; when the queue is full (the database has been down long), the write is dropped,
/// counted and logged.
#[derive(Clone, Debug)]
pub struct Recorder {
    tx: mpsc::Sender<CallWrite>,
}

impl Recorder {
    /// A recorder and the receiving end, for tests that look at what is written.
    pub fn channel(capacity: usize) -> (Recorder, mpsc::Receiver<CallWrite>) {
        let (tx, rx) = mpsc::channel(capacity);
        (Recorder { tx }, rx)
    }

    /// Starts the writer task on `store`.
    pub fn spawn(store: Arc<Store>, capacity: usize) -> (Recorder, tokio::task::JoinHandle<()>) {
        let (recorder, rx) = Recorder::channel(capacity);
        (recorder, tokio::spawn(write_calls(store, rx)))
    }

    pub fn send(&self, write: CallWrite) {
        if let Err(e) = self.tx.try_send(write) {
            metrics::counter!(crate::metrics::CALL_RECORDS_DROPPED).increment(1);
            tracing::warn!(error = %e, "call record write dropped: the writer is behind (is the database down?)");
        }
    }
}

/// Most writes committed in one transaction. At thousands of calls a second (four writes each), a commit per
/// write is what would limit the call rate; the writer takes what is queued, up to this, and commits it once.
const BATCH: usize = 1024;

/// How long the writer waits, after a write wakes it, for more to join the batch.
const LINGER: Duration = Duration::from_millis(10);

/// Applies the writes in order, those queued together in one transaction. When a batch fails it is applied
/// one write at a time: a write the database refuses for good is skipped (logged), one refused for being
/// unavailable is retried (100 ms doubling to 5 s) until it goes through, so nothing queued is lost while the
/// database is down.
async fn write_calls(store: Arc<Store>, mut rx: mpsc::Receiver<CallWrite>) {
    let mut batch = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        if batch.len() < BATCH {
            // Let a short call's later writes join its first: one statement instead of four, and one commit
            // for everything that arrived meanwhile. A record lands at most LINGER late.
            tokio::time::sleep(LINGER).await;
            while batch.len() < BATCH {
                match rx.try_recv() {
                    Ok(write) => batch.push(write),
                    Err(_) => break,
                }
            }
        }
        fold(&mut batch);
        if batch.len() > 1 && apply_batch(&store, &batch).await.is_ok() {
            batch.clear();
            continue;
        }
        for write in batch.drain(..) {
            let mut backoff = Duration::from_millis(100);
            loop {
                match apply(&store, &write).await {
                    Ok(()) => break,
                    Err(StoreError::Database(sqlx::Error::Database(e))) if refused_for_good(e.as_ref()) => {
                        tracing::error!(error = %e, ?write, "call record refused by the database; skipped");
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "call record not written yet");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                    }
                }
            }
        }
    }
}

/// Folds the later writes of a call whose `Start` is in the same batch into the record it inserts, so a short
/// call costs one statement, not four. The writes left keep their order.
pub(crate) fn fold(batch: &mut Vec<CallWrite>) {
    let mut started: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    // A SIP trace names its call by Call-ID (the driver that keeps it does not know the record's id).
    let mut by_call_id: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut kept = Vec::with_capacity(batch.len());
    for write in batch.drain(..) {
        let write = match write {
            CallWrite::Sip { sip_call_id, trace, refused } => match by_call_id.get(&sip_call_id) {
                Some(&i) => {
                    if let CallWrite::Start(record) = &mut kept[i] {
                        record.sip = trace;
                    }
                    continue;
                }
                None => CallWrite::Sip { sip_call_id, trace, refused },
            },
            write => write,
        };
        let id = match &write {
            CallWrite::Start(record) => {
                started.insert(record.id.clone(), kept.len());
                by_call_id.insert(record.sip_call_id.clone(), kept.len());
                kept.push(write);
                continue;
            }
            CallWrite::Dialed { id, .. }
            | CallWrite::Answered { id, .. }
            | CallWrite::Ended { id, .. }
            | CallWrite::Stats { id, .. }
            | CallWrite::Session { id, .. }
            | CallWrite::Recording { id, .. } => id,
            CallWrite::Timeline { id, .. } => id,
            // A trace whose call started in an earlier batch: an update of its own.
            CallWrite::Sip { .. } => {
                kept.push(write);
                continue;
            }
        };
        let Some(CallWrite::Start(record)) = started.get(id).map(|&i| &mut kept[i]) else {
            kept.push(write);
            continue;
        };
        match write {
            CallWrite::Dialed { sip_call_id, .. } => record.sip_call_id = sip_call_id,
            CallWrite::Answered { at, codec, .. } => {
                record.answer_at = Some(at);
                record.sip_status = Some(200);
                record.codec = Some(codec);
            }
            CallWrite::Ended { at, reason, sip_status, .. } => {
                record.end_at = Some(at);
                record.end_reason = Some(reason);
                record.sip_status = record.sip_status.or(Some(sip_status));
            }
            CallWrite::Stats { stats, .. } => record.stats = stats,
            CallWrite::Session { session, .. } => record.session = session,
            CallWrite::Recording { recording, .. } => record.recording = recording,
            CallWrite::Timeline { timeline, .. } => record.timeline = timeline,
            CallWrite::Start(_) | CallWrite::Sip { .. } => {} // kept above
        }
    }
    *batch = kept;
}

/// Applies a folded batch in one transaction: its new records first, many to a statement, then the
/// updates of calls that started in earlier batches, in order. Moving the inserts first changes nothing:
/// after [`fold`], no update in the batch concerns a record the batch inserts.
async fn apply_batch(store: &Store, writes: &[CallWrite]) -> Result<(), StoreError> {
    use crate::store::calls::on;
    let mut tx = store.pool().begin().await?;
    let records: Vec<&CallRecord> =
        writes.iter().filter_map(|w| if let CallWrite::Start(r) = w { Some(&**r) } else { None }).collect();
    for chunk in records.chunks(on::INSERT_ROWS) {
        on::insert_calls(&mut *tx, chunk, store.is_postgres()).await?;
    }
    for write in writes.iter().filter(|w| !matches!(w, CallWrite::Start(_))) {
        match write {
            CallWrite::Sip { sip_call_id, trace, refused } => {
                on::call_sip(&mut tx, sip_call_id, trace, refused.as_deref()).await?
            }
            write => apply_on(&mut *tx, write).await?,
        }
    }
    tx.commit().await?;
    Ok(())
}

/// Whether the database refuses this write whatever happens (a constraint, bad data, bad SQL), as opposed to
/// being unavailable for now (no connections accepted, shutting down, busy, out of resources).
fn refused_for_good(e: &dyn sqlx::error::DatabaseError) -> bool {
    let code = e.code().unwrap_or_default();
    !matches!(e.kind(), sqlx::error::ErrorKind::Other) || code.starts_with("22") || code.starts_with("42")
}

async fn apply(store: &Store, write: &CallWrite) -> Result<(), StoreError> {
    match write {
        CallWrite::Sip { sip_call_id, trace, refused } => {
            let mut conn = store.pool().acquire().await?;
            crate::store::calls::on::call_sip(&mut conn, sip_call_id, trace, refused.as_deref()).await
        }
        write => apply_on(store.pool(), write).await,
    }
}

/// One write on the pool or inside a batch's transaction.
async fn apply_on<'e>(e: impl sqlx::Executor<'e, Database = sqlx::Any>, write: &CallWrite) -> Result<(), StoreError> {
    use crate::store::calls::on;
    match write {
        CallWrite::Start(record) => on::insert_call(e, record).await,
        CallWrite::Dialed { id, sip_call_id } => on::call_dialed(e, id, sip_call_id).await,
        CallWrite::Answered { id, at, codec } => on::call_answered(e, id, at, codec).await,
        CallWrite::Ended { id, at, reason, sip_status } => on::call_ended(e, id, at, reason, *sip_status).await,
        CallWrite::Stats { id, stats } => on::call_stats(e, id, stats).await,
        CallWrite::Session { id, session } => on::call_session(e, id, session).await,
        CallWrite::Recording { id, recording } => on::call_recording(e, id, recording).await,
        CallWrite::Timeline { id, timeline } => on::call_timeline(e, id, timeline).await,
        CallWrite::Sip { .. } => Ok(()), // needs a connection: see apply and apply_batch
    }
}
