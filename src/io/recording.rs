//! Call recordings on disk: one writer thread for the whole server, fed by every recorded call's media task
//! through one bounded queue. A task never waits on the disk: a frame that finds the queue full is dropped and
//! counted, and the recording is marked incomplete; the call goes on untouched. The queue is allocated once
//! (`std`'s bounded channel is a fixed ring), and a frame travels inside its message, so the media path
//! allocates nothing per packet.
//!
//! Files: `STATE_DIR/recordings/YYYY/MM/DD/{call_id}.wav` (the UTC day the call was answered), directories 0700
//! and files 0600, written as `{call_id}.wav.part` and renamed once complete. The writer flushes every second
//! (hound rewrites the header's sizes as it does), so a crash loses at most a second; at the next start
//! [`recover`] sets the sizes of what a crash left from the file's length and gives it its final name.
//! [`sweep`] deletes recordings older than `recording.retention_days`.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError, sync_channel};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::upload::{Job, Uploads};
use crate::media::g711;
use crate::media::recording::{RecordFormat, StereoFrame, wav};
use crate::store::catalog::{CallWrite, Recorder};

/// Messages the queue holds: 8,192 of about 330 bytes (2.7 MB, allocated once): 160 ms of every call's frames
/// at 1,000 recorded calls, 33 s of one call's, for the writer to fall behind before a frame is dropped.
pub const QUEUE: usize = 8192;

/// How often an open recording is flushed (its header's sizes made right): what a crash can lose.
const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// How often the writer takes what is queued: at 1,000 recorded calls, 500 frames a pass, well inside the queue.
const POLL: Duration = Duration::from_millis(10);

/// The extension of a recording being written.
const PART: &str = "part";

// Frames travel by value on purpose: the queue's ring holds them, so sending one allocates nothing.
#[allow(clippy::large_enum_variant)]
enum Msg {
    Open { key: u32, id: String, day: (i64, i64, i64) },
    Frame { key: u32, frame: StereoFrame },
    Close { key: u32, dropped: u64 },
}

/// The recordings of this server: where they go, in what format, and the writer thread's queue.
#[derive(Clone)]
pub struct Recordings {
    inner: Arc<Inner>,
}

struct Inner {
    tx: SyncSender<Msg>,
    dir: PathBuf,
    format: RecordFormat,
    next: AtomicU32,
}

/// One call's recording, held by its media task.
pub struct Recording {
    key: u32,
    tx: SyncSender<Msg>,
    /// Frames the queue had no room for.
    dropped: u64,
}

impl Recordings {
    /// Starts the writer thread, writing under `dir` (created 0700) in `format`, telling `records` what each
    /// recording came to; a queue of `capacity` messages.
    pub fn start(
        dir: PathBuf,
        format: RecordFormat,
        records: Option<Recorder>,
        capacity: usize,
    ) -> io::Result<Recordings> {
        Recordings::spawn(dir, format, records, capacity, None, None)
    }

    /// [`Recordings::start`], each finished recording then queued for upload to `uploads`.
    pub fn start_uploading(
        dir: PathBuf,
        format: RecordFormat,
        records: Option<Recorder>,
        capacity: usize,
        uploads: Uploads,
    ) -> io::Result<Recordings> {
        Recordings::spawn(dir, format, records, capacity, None, Some(uploads))
    }

    /// [`Recordings::start`], its writer waiting for `gate` before it takes anything (a disk that stalls).
    #[cfg(test)]
    fn start_gated(
        dir: PathBuf,
        format: RecordFormat,
        records: Option<Recorder>,
        capacity: usize,
        gate: Receiver<()>,
    ) -> io::Result<Recordings> {
        Recordings::spawn(dir, format, records, capacity, Some(gate), None)
    }

    fn spawn(
        dir: PathBuf,
        format: RecordFormat,
        records: Option<Recorder>,
        capacity: usize,
        gate: Option<Receiver<()>>,
        uploads: Option<Uploads>,
    ) -> io::Result<Recordings> {
        fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir)?;
        let (tx, rx) = sync_channel(capacity);
        let writer = Writer { dir: dir.clone(), format, records, open: HashMap::new(), uploads };
        std::thread::Builder::new().name("vocals-recorder".into()).spawn(move || {
            if let Some(gate) = gate {
                let _ = gate.recv();
            }
            writer.run(rx)
        })?;
        Ok(Recordings { inner: Arc::new(Inner { tx, dir, format, next: AtomicU32::new(1) }) })
    }

    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    pub fn format(&self) -> RecordFormat {
        self.inner.format
    }

    /// Starts recording call `id` (its record id), answered now; `None` when the writer's queue is full (the
    /// call goes unrecorded, and says so in the log).
    pub fn open(&self, id: &str) -> Option<Recording> {
        let key = self.inner.next.fetch_add(1, Ordering::Relaxed);
        let days = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() / 86_400;
        let day = crate::store::civil_date(days as i64);
        match self.inner.tx.try_send(Msg::Open { key, id: id.to_string(), day }) {
            Ok(()) => Some(Recording { key, tx: self.inner.tx.clone(), dropped: 0 }),
            Err(_) => {
                metrics::counter!(crate::metrics::RECORDING_FRAMES_DROPPED).increment(1);
                tracing::warn!(call = id, "not recorded: the recording writer is behind");
                None
            }
        }
    }
}

impl Recording {
    /// Queues one stereo frame for the writer (by value, into the queue's ring: no allocation); drops it,
    /// counted, when the queue is full.
    pub fn frame(&mut self, frame: &StereoFrame) {
        if self.tx.try_send(Msg::Frame { key: self.key, frame: *frame }).is_err() {
            self.dropped += 1;
            metrics::counter!(crate::metrics::RECORDING_FRAMES_DROPPED).increment(1);
        }
    }

    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The call ended: the writer completes the file. Never lost to a full queue: then a thread of its own
    /// waits for room.
    pub fn close(self) {
        let msg = Msg::Close { key: self.key, dropped: self.dropped };
        if let Err(TrySendError::Full(msg)) = self.tx.try_send(msg) {
            let tx = self.tx.clone();
            let _ = std::thread::Builder::new().name("vocals-recorder-close".into()).spawn(move || {
                let _ = tx.send(msg);
            });
        }
    }
}

/// The writer thread's state: the recordings open.
struct Writer {
    dir: PathBuf,
    format: RecordFormat,
    records: Option<Recorder>,
    open: HashMap<u32, Open>,
    /// Where finished recordings are queued for upload (`[recording] url`).
    uploads: Option<Uploads>,
}

struct Open {
    id: String,
    /// Relative to the recordings directory: `YYYY/MM/DD/{id}.wav`.
    file: PathBuf,
    out: Option<Out>,
    frames: u64,
    /// Why writing stopped, when it did (a full disk): the recording is then incomplete.
    failed: Option<String>,
    flushed: Instant,
}

enum Out {
    Pcm(hound::WavWriter<BufWriter<File>>),
    Mulaw { file: BufWriter<File>, data: u64 },
}

impl Writer {
    fn run(mut self, rx: Receiver<Msg>) {
        // The writer wakes on its own clock and takes everything queued, instead of sleeping in `recv`: a
        // sleeping receiver makes every frame sent a wake-up (a futex call and a context switch, 25,000 a
        // second at 500 calls, measured as a tenth of the server's time), a polling one none.
        let mut swept = Instant::now();
        loop {
            let mut stopped = false;
            loop {
                match rx.try_recv() {
                    Ok(msg) => self.handle(msg),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        stopped = true;
                        break;
                    }
                }
            }
            if stopped {
                break;
            }
            let now = Instant::now();
            if now.duration_since(swept) >= FLUSH_EVERY / 4 {
                swept = now;
                for o in self.open.values_mut().filter(|o| now.duration_since(o.flushed) >= FLUSH_EVERY) {
                    o.flushed = now;
                    if let Err(e) = o.flush() {
                        o.fail(e);
                    }
                }
            }
            std::thread::sleep(POLL);
        }
        // The server is stopping: what is open is completed as it stands.
        for (_, o) in std::mem::take(&mut self.open) {
            self.finish(o, 0);
        }
    }

    fn handle(&mut self, msg: Msg) {
        match msg {
            Msg::Open { key, id, day } => {
                let (y, m, d) = day;
                let file = PathBuf::from(format!("{y:04}/{m:02}/{d:02}/{id}.wav"));
                let mut open = Open { id, file, out: None, frames: 0, failed: None, flushed: Instant::now() };
                match self.create(&open.file) {
                    Ok(out) => open.out = Some(out),
                    Err(e) => open.fail(e),
                }
                self.report(&open, "recording", 0);
                self.open.insert(key, open);
            }
            Msg::Frame { key, frame } => {
                if let Some(o) = self.open.get_mut(&key)
                    && o.failed.is_none()
                {
                    match o.write(&frame) {
                        Ok(()) => o.frames += 1,
                        Err(e) => o.fail(e),
                    }
                }
            }
            Msg::Close { key, dropped } => {
                if let Some(o) = self.open.remove(&key) {
                    self.finish(o, dropped);
                }
            }
        }
    }

    fn create(&self, file: &Path) -> io::Result<Out> {
        let path = self.dir.join(file);
        if let Some(parent) = path.parent() {
            fs::DirBuilder::new().recursive(true).mode(0o700).create(parent)?;
        }
        let part = path.with_extension(format!("wav.{PART}"));
        let f = OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(part)?;
        // 8 KiB: a quarter second of 16-bit stereo, written in one call; the buffer is most of a recording's
        // memory (RSS per call).
        let mut w = BufWriter::with_capacity(8 * 1024, f);
        Ok(match self.format {
            RecordFormat::Pcm16 => Out::Pcm(hound::WavWriter::new(w, pcm_spec()).map_err(io::Error::other)?),
            RecordFormat::Mulaw => {
                w.write_all(&wav::mulaw_header(0))?;
                Out::Mulaw { file: w, data: 0 }
            }
        })
    }

    /// Completes a recording: its header made final, renamed from `.part`, and its record told.
    fn finish(&self, mut o: Open, dropped: u64) {
        let path = self.dir.join(&o.file);
        let part = path.with_extension(format!("wav.{PART}"));
        let done = match o.out.take() {
            Some(Out::Pcm(w)) => w.finalize().map_err(io::Error::other),
            Some(Out::Mulaw { file, data }) => finish_mulaw(file, data),
            None => Ok(()),
        };
        if let Err(e) = done {
            o.fail(e);
        }
        if part.exists()
            && let Err(e) = fs::rename(&part, &path)
        {
            o.fail(e);
        }
        let status = if o.failed.is_none() && dropped == 0 { "complete" } else { "incomplete" };
        let recording = self.report(&o, status, dropped);
        if let Some(uploads) = &self.uploads
            && path.exists()
        {
            match super::upload::mark(&self.dir, &o.file, &recording) {
                Ok(()) => uploads.queue(Job { id: o.id.clone(), file: o.file.clone() }),
                Err(e) => tracing::warn!(call = %o.id, error = %e, "recording not queued for upload"),
            }
        }
    }

    /// Tells the call's record what its recording is now; what it said.
    fn report(&self, o: &Open, status: &str, dropped: u64) -> Value {
        let bytes = fs::metadata(self.dir.join(&o.file)).map(|m| m.len()).unwrap_or(0);
        let mut recording = summary(&o.id, status, o.frames, bytes, self.format, &o.file);
        if dropped > 0 {
            recording["dropped_frames"] = json!(dropped);
        }
        if let Some(why) = &o.failed {
            recording["error"] = json!(why);
        }
        if self.uploads.is_some() && status != "recording" {
            recording["upload"] = json!("pending");
        }
        if status != "recording" {
            tracing::info!(call = %o.id, status, seconds = o.frames / 50, dropped, "recording done");
        }
        if let Some(records) = &self.records {
            records.send(CallWrite::Recording { id: o.id.clone(), recording: recording.clone() });
        }
        recording
    }
}

impl Open {
    fn write(&mut self, f: &StereoFrame) -> io::Result<()> {
        match self.out.as_mut() {
            Some(Out::Pcm(w)) => {
                let mut samples = w.get_i16_writer(2 * f.left.len() as u32);
                for (l, r) in f.left.iter().zip(&f.right) {
                    samples.write_sample(g711::ulaw_decode(*l));
                    samples.write_sample(g711::ulaw_decode(*r));
                }
                samples.flush().map_err(io::Error::other)
            }
            Some(Out::Mulaw { file, data }) => {
                let mut interleaved = [0u8; 2 * crate::media::playout::FRAME_BYTES];
                for (i, (l, r)) in f.left.iter().zip(&f.right).enumerate() {
                    interleaved[2 * i] = *l;
                    interleaved[2 * i + 1] = *r;
                }
                file.write_all(&interleaved)?;
                *data += interleaved.len() as u64;
                Ok(())
            }
            None => Ok(()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.out.as_mut() {
            Some(Out::Pcm(w)) => w.flush().map_err(io::Error::other),
            Some(Out::Mulaw { file, .. }) => file.flush(),
            None => Ok(()),
        }
    }

    fn fail(&mut self, e: io::Error) {
        if self.failed.is_none() {
            tracing::warn!(call = %self.id, error = %e, "recording stopped: it will be incomplete");
            metrics::counter!(crate::metrics::RECORDING_FAILURES).increment(1);
            self.failed = Some(e.to_string());
        }
    }
}

fn pcm_spec() -> hound::WavSpec {
    hound::WavSpec { channels: 2, sample_rate: 8000, bits_per_sample: 16, sample_format: hound::SampleFormat::Int }
}

fn finish_mulaw(mut file: BufWriter<File>, data: u64) -> io::Result<()> {
    file.flush()?;
    let mut f = file.into_inner().map_err(|e| e.into_error())?;
    f.seek(SeekFrom::Start(0))?;
    f.write_all(&wav::mulaw_header(data as u32))?;
    f.sync_data()
}

/// What a call record says of its recording.
fn summary(id: &str, status: &str, frames: u64, bytes: u64, format: RecordFormat, file: &Path) -> Value {
    json!({
        "status": status,
        "duration": frames as f64 / 50.0,
        "bytes": bytes,
        "channels": 2,
        "format": format.as_str(),
        "url": format!("/v1/calls/{id}/recording"),
        "file": file.to_string_lossy(),
    })
}

/// Every `.wav.part` a crash left under `dir`, made whole: its sizes set from its length (cut to whole sample
/// frames) and its final name given. Returns each call id with what its record should now say.
pub fn recover(dir: &Path) -> Vec<(String, Value)> {
    let mut parts = Vec::new();
    walk(dir, &mut |p| {
        if p.extension().is_some_and(|e| e == PART) {
            parts.push(p.to_path_buf());
        }
    });
    let mut out = Vec::new();
    for part in parts {
        match repair(&part) {
            Ok((format, data_bytes)) => {
                let path = part.with_extension("");
                if let Err(e) = fs::rename(&part, &path) {
                    tracing::warn!(error = %e, "a recording left by a crash could not be renamed");
                    continue;
                }
                let id = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
                let file = path.strip_prefix(dir).unwrap_or(&path).to_path_buf();
                let bytes = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                let frames = data_bytes / (format.bytes_per_second() / 50);
                let mut recording = summary(&id, "incomplete", frames, bytes, format, &file);
                recording["error"] = json!("vocals stopped during the call: recovered what was written");
                tracing::info!(call = %id, seconds = frames / 50, "recovered a recording cut short by a stop");
                out.push((id, recording));
            }
            Err(e) => tracing::warn!(error = %e, "a recording left by a crash could not be repaired"),
        }
    }
    out
}

/// Sets a cut WAV file's sizes from its length; its format and the samples' bytes.
fn repair(path: &Path) -> io::Result<(RecordFormat, u64)> {
    let mut f = OpenOptions::new().read(true).write(true).open(path)?;
    let mut head = [0u8; 128];
    let n = f.read(&mut head)?;
    let layout = wav::layout(&head[..n]).ok_or_else(|| io::Error::other("not a WAV header"))?;
    let len = f.metadata()?.len();
    let (patches, keep) = wav::repair(&layout, len);
    for (at, value) in patches {
        f.seek(SeekFrom::Start(at))?;
        f.write_all(&value.to_le_bytes())?;
    }
    f.set_len(keep)?;
    f.sync_data()?;
    let format = if layout.fact_at.is_some() { RecordFormat::Mulaw } else { RecordFormat::Pcm16 };
    Ok((format, keep - layout.data_start))
}

/// Deletes recordings under `dir` last written more than `days` days before `now` (and a pending upload's
/// marker beside one); each call id deleted with its file's path under `dir`. Empty day directories go too.
pub fn sweep(dir: &Path, days: u32, now: SystemTime) -> Vec<(String, PathBuf)> {
    let Some(cutoff) = now.checked_sub(Duration::from_secs(u64::from(days) * 86_400)) else { return Vec::new() };
    let mut old = Vec::new();
    walk(dir, &mut |p| {
        let modified = fs::metadata(p).and_then(|m| m.modified());
        if p.extension().is_some_and(|e| e == "wav") && modified.is_ok_and(|m| m < cutoff) {
            old.push(p.to_path_buf());
        }
    });
    let mut deleted = Vec::new();
    for path in old {
        if fs::remove_file(&path).is_ok() {
            let _ = fs::remove_file(path.with_extension(format!("wav.{}", super::upload::MARKER)));
            let id = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            deleted.push((id, path.strip_prefix(dir).unwrap_or(&path).to_path_buf()));
            let mut parent = path.parent();
            while let Some(p) = parent.filter(|p| *p != dir) {
                if fs::remove_dir(p).is_err() {
                    break;
                }
                parent = p.parent();
            }
        }
    }
    deleted
}

fn walk(dir: &Path, f: &mut dyn FnMut(&Path)) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            walk(&path, f);
        } else {
            f(&path);
        }
    }
}

#[cfg(test)]
#[path = "recording_tests.rs"]
mod tests;
