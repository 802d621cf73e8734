//! Recordings uploaded to S3-compatible storage, after their calls: `[recording] url = "s3://bucket/prefix"`,
//! with the usual AWS environment variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`,
//! `AWS_ENDPOINT_URL` for a server other than AWS, `AWS_ALLOW_HTTP=true` for one without TLS). Each finished
//! recording is uploaded in parts (multipart upload) to `prefix/YYYY/MM/DD/{call_id}.wav`; a failed upload is
//! tried again (1 s, doubling to 5 min), and the file stays on local disk meanwhile. A marker beside it
//! (`{call_id}.wav.upload`, holding what the call record says) keeps the upload pending across a restart: at
//! the next start every marker is queued again. Uploaded, the record gains `remote` (the object's URL) and the
//! local file stays too (served by the API, deleted with `retention_days`, which deletes the object as well).

use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{ObjectStoreExt, WriteMultipart};
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

use crate::store::catalog::{CallWrite, Recorder};

/// The extension of a pending upload's marker, beside the recording.
pub const MARKER: &str = "upload";

/// Parts of a multipart upload (S3's smallest is 5 MiB, but for the last).
const PART: usize = 8 * 1024 * 1024;

/// The first wait after a failed upload, doubled each time up to [`MAX_WAIT`].
const FIRST_WAIT: Duration = Duration::from_secs(1);
const MAX_WAIT: Duration = Duration::from_secs(300);

/// The bucket and prefix recordings go to.
#[derive(Debug)]
pub struct Remote {
    store: AmazonS3,
    bucket: String,
    prefix: String,
}

impl Remote {
    /// `s3://bucket` or `s3://bucket/prefix`, the rest from the AWS environment variables.
    pub fn from_url(url: &str) -> Result<Remote, String> {
        let rest =
            url.strip_prefix("s3://").ok_or_else(|| format!("{url:?}: expected s3://BUCKET or s3://BUCKET/PREFIX"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(format!("{url:?}: no bucket"));
        }
        // The HTTP client takes the process's TLS provider (ring, installed once in main): without one it
        // would panic, so say so instead.
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            return Err("no TLS provider is installed in this process (the binary installs ring at start)".into());
        }
        let store = AmazonS3Builder::from_env()
            .with_url(format!("s3://{bucket}"))
            .build()
            .map_err(|e| format!("{url:?}: {e}"))?;
        Ok(Remote { store, bucket: bucket.to_string(), prefix: prefix.trim_matches('/').to_string() })
    }

    /// The object a recording (its path under the recordings directory) goes to.
    pub fn key(&self, file: &FsPath) -> Path {
        let file = file.to_string_lossy();
        if self.prefix.is_empty() { Path::from(file.as_ref()) } else { Path::from(format!("{}/{file}", self.prefix)) }
    }

    /// The object's URL, for the call record.
    pub fn url(&self, file: &FsPath) -> String {
        format!("s3://{}/{}", self.bucket, self.key(file))
    }

    /// Uploads `local` to the object of `file`, in parts.
    pub async fn upload(&self, local: &FsPath, file: &FsPath) -> Result<(), String> {
        let mut f = tokio::fs::File::open(local).await.map_err(|e| e.to_string())?;
        let upload = self.store.put_multipart(&self.key(file)).await.map_err(|e| e.to_string())?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART);
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = match f.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => {
                    let _ = writer.abort().await;
                    return Err(e.to_string());
                }
            };
            writer.wait_for_capacity(2).await.map_err(|e| e.to_string())?;
            writer.write(&buf[..n]);
        }
        writer.finish().await.map(|_| ()).map_err(|e| e.to_string())
    }

    /// Deletes the object of `file` (retention, the API's DELETE); an absent object is no error.
    pub async fn delete(&self, file: &FsPath) -> Result<(), String> {
        match self.store.delete(&self.key(file)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// One recording to upload: its call id, and its path under the recordings directory.
#[derive(Debug)]
pub struct Job {
    pub id: String,
    pub file: PathBuf,
}

/// Where finished recordings are queued for upload.
#[derive(Clone)]
pub struct Uploads {
    tx: mpsc::UnboundedSender<Job>,
    remote: Arc<Remote>,
}

impl Uploads {
    /// Starts the upload task for recordings under `dir`, and queues the uploads a stop left pending.
    pub fn spawn(remote: Arc<Remote>, dir: PathBuf, records: Option<Recorder>) -> Uploads {
        let (tx, rx) = mpsc::unbounded_channel();
        let uploads = Uploads { tx, remote: remote.clone() };
        for file in pending(&dir) {
            let id = file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            uploads.queue(Job { id, file });
        }
        tokio::spawn(run(remote, dir, records, rx));
        uploads
    }

    pub fn remote(&self) -> &Arc<Remote> {
        &self.remote
    }

    /// Queues a finished recording (its marker already written).
    pub fn queue(&self, job: Job) {
        let _ = self.tx.send(job);
    }
}

/// Writes the marker that keeps `file`'s upload pending across a restart, holding its record's summary.
pub fn mark(dir: &FsPath, file: &FsPath, recording: &Value) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let marker = dir.join(file).with_extension(format!("wav.{MARKER}"));
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(marker)?;
    f.write_all(recording.to_string().as_bytes())
}

/// The recordings under `dir` whose upload is pending (a marker beside them), relative to `dir`.
fn pending(dir: &FsPath) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == MARKER) {
                let wav = path.with_extension("");
                if let Ok(rel) = wav.strip_prefix(dir) {
                    out.push(rel.to_path_buf());
                }
            }
        }
    }
    out.sort();
    out
}

/// Uploads the queued recordings one after the other, each until it succeeds.
async fn run(remote: Arc<Remote>, dir: PathBuf, records: Option<Recorder>, mut rx: mpsc::UnboundedReceiver<Job>) {
    while let Some(job) = rx.recv().await {
        let local = dir.join(&job.file);
        let marker = local.with_extension(format!("wav.{MARKER}"));
        let mut wait = FIRST_WAIT;
        let mut failures = 0u32;
        loop {
            if !local.exists() {
                // Deleted meanwhile (the API, retention): nothing to upload.
                let _ = tokio::fs::remove_file(&marker).await;
                break;
            }
            match remote.upload(&local, &job.file).await {
                Ok(()) => {
                    let mut recording = read_marker(&marker).await;
                    recording["remote"] = json!(remote.url(&job.file));
                    recording["upload"] = json!("done");
                    if let Some(records) = &records {
                        records.send(CallWrite::Recording { id: job.id.clone(), recording });
                    }
                    let _ = tokio::fs::remove_file(&marker).await;
                    metrics::counter!(crate::metrics::RECORDING_UPLOADS, "result" => "done").increment(1);
                    tracing::info!(call = %job.id, retries = failures, "recording uploaded");
                    break;
                }
                Err(why) => {
                    failures += 1;
                    metrics::counter!(crate::metrics::RECORDING_UPLOADS, "result" => "retried").increment(1);
                    tracing::warn!(call = %job.id, error = %why, retry_in_s = wait.as_secs(), "recording upload failed: kept on disk, trying again");
                    if failures == 1
                        && let Some(records) = &records
                    {
                        let mut recording = read_marker(&marker).await;
                        recording["upload"] = json!("retrying");
                        recording["upload_error"] = json!(why);
                        records.send(CallWrite::Recording { id: job.id.clone(), recording });
                    }
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(MAX_WAIT);
                }
            }
        }
    }
}

async fn read_marker(marker: &FsPath) -> Value {
    let text = tokio::fs::read_to_string(marker).await.unwrap_or_default();
    serde_json::from_str(&text).unwrap_or_else(|_| json!({}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_s3_url_names_a_bucket_and_a_prefix_and_objects_go_under_it() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let r = Remote::from_url("s3://calls/recordings/eu/").unwrap();
        let file = FsPath::new("2026/12/07/vc_1.wav");
        assert_eq!(r.key(file).as_ref(), "recordings/eu/2026/12/07/vc_1.wav");
        assert_eq!(r.url(file), "s3://calls/recordings/eu/2026/12/07/vc_1.wav");
        let r = Remote::from_url("s3://calls").unwrap();
        assert_eq!(r.key(file).as_ref(), "2026/12/07/vc_1.wav");
        assert!(Remote::from_url("https://calls.s3.amazonaws.com").unwrap_err().contains("s3://BUCKET"));
        assert!(Remote::from_url("s3:///x").unwrap_err().contains("no bucket"));
    }

    #[test]
    fn markers_left_by_a_stop_are_found_again() {
        let dir = std::env::temp_dir().join(format!("vocals-upload-{}", std::process::id()));
        let day = dir.join("2026/12/07");
        std::fs::create_dir_all(&day).unwrap();
        std::fs::write(day.join("vc_a.wav"), b"RIFF").unwrap();
        mark(&dir, FsPath::new("2026/12/07/vc_a.wav"), &json!({"status": "complete"})).unwrap();
        std::fs::write(day.join("vc_b.wav"), b"RIFF").unwrap();
        assert_eq!(pending(&dir), [PathBuf::from("2026/12/07/vc_a.wav")]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
