//! `GET /v1/calls/{id}/recording` and `DELETE`: a call's recording, behind the bearer token like the rest of
//! `/v1`. GET streams the WAV file (`audio/wav`), in full or the one byte range asked (`Range: bytes=a-b`,
//! `a-`, `-n`: 206 with `Content-Range`; a range past the end: 416), so a browser's `<audio>` element can seek.
//! DELETE removes the file and the record says `deleted`. A recording is on the node that recorded the call:
//! asked on another node sharing the PostgreSQL, the answer says which one has it. File paths are never in an
//! answer or in the log.

use std::path::{Component, Path as FsPath, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::AppState;
use super::v1::{ApiError, catalog, path};
use crate::store::CallRecord;

/// A byte range outside the file: answered 416 with the file's length.
#[derive(Debug, PartialEq, Eq)]
pub struct Unsatisfiable;

/// Reads of the file sent as one body chunk each.
const CHUNK: usize = 64 * 1024;

/// The bytes a `Range` header asks for in a file of `len` bytes: `Ok(None)` for the whole file (no header, or
/// one this does not serve: several ranges, another unit, which RFC 9110 §14.2 lets a server ignore),
/// `Err(Unsatisfiable)` when the range is past the end (416).
pub fn range(header: Option<&str>, len: u64) -> Result<Option<(u64, u64)>, Unsatisfiable> {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else { return Ok(None) };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((first, last)) = spec.split_once('-') else { return Ok(None) };
    let (first, last) = (first.trim(), last.trim());
    let parse = |t: &str| t.parse::<u64>().map_err(|_| Unsatisfiable);
    let (start, end) = match (first.is_empty(), last.is_empty()) {
        // The last n bytes.
        (true, false) => {
            let Ok(n) = parse(last) else { return Ok(None) };
            if n == 0 || len == 0 {
                return Err(Unsatisfiable);
            }
            (len.saturating_sub(n), len - 1)
        }
        (false, _) => {
            let Ok(start) = parse(first) else { return Ok(None) };
            let end = if last.is_empty() { len.saturating_sub(1) } else { parse(last)? };
            if start >= len || end < start {
                return Err(Unsatisfiable);
            }
            (start, end.min(len - 1))
        }
        (true, true) => return Ok(None),
    };
    Ok(Some((start, end)))
}

/// The recording's file on this node, from its record; or why it cannot be served.
fn file_of(state: &AppState, call: &CallRecord) -> Result<PathBuf, ApiError> {
    let id = &call.id;
    let status = call.recording["status"].as_str().unwrap_or("");
    let Some(relative) = call.recording["file"].as_str().filter(|_| !status.is_empty()) else {
        return Err(ApiError::not_found(format!("call {id} has no recording")));
    };
    if matches!(status, "deleted" | "expired") {
        return Err(ApiError::not_found(format!("the recording of call {id} was {status}")));
    }
    // Only a path below the recordings directory (the record is ours, but a shared database is trusted no
    // further than that).
    let relative = FsPath::new(relative);
    if !relative.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(ApiError::not_found(format!("call {id} has no recording")));
    }
    let Some(dir) = &state.recordings else {
        return Err(ApiError::unavailable("recordings are not served by this server"));
    };
    let file = dir.join(relative);
    if file.exists() {
        return Ok(file);
    }
    if call.node != state.node {
        return Err(ApiError::not_found(format!("the recording of call {id} is on node {}: ask that node", call.node)));
    }
    if status == "recording" {
        return Err(ApiError::not_found(format!("call {id} is still being recorded: its file is ready once it ends")));
    }
    Err(ApiError::not_found(format!("the recording of call {id} is no longer on disk")))
}

pub async fn get(
    State(state): State<Arc<AppState>>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = path(id)?;
    let store = catalog(&state)?.store();
    let call = store.call(&id).await?.ok_or_else(|| ApiError::not_found(format!("call {id} not found")))?;
    let file = file_of(&state, &call)?;
    let mut f = tokio::fs::File::open(&file).await.map_err(|e| {
        tracing::warn!(call = %call.id, error = %e, "a recording could not be opened");
        ApiError::not_found(format!("the recording of call {} cannot be read", call.id))
    })?;
    let len = f.metadata().await.map(|m| m.len()).unwrap_or(0);
    let asked = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let (status, start, end) = match range(asked, len) {
        Ok(None) => (StatusCode::OK, 0, len.saturating_sub(1)),
        Ok(Some((start, end))) => (StatusCode::PARTIAL_CONTENT, start, end),
        Err(Unsatisfiable) => {
            let mut r = ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "range_not_satisfiable",
                format!("the range {:?} is outside the recording's {len} bytes", asked.unwrap_or("")),
            )
            .into_response();
            r.headers_mut().insert(header::CONTENT_RANGE, value(&format!("bytes */{len}")));
            return Ok(r);
        }
    };
    let count = if len == 0 { 0 } else { end - start + 1 };
    f.seek(std::io::SeekFrom::Start(start)).await.map_err(|_| ApiError::unavailable("the recording cannot be read"))?;
    let stream = futures_util::stream::unfold((f, count), |(mut f, left)| async move {
        if left == 0 {
            return None;
        }
        let mut buf = vec![0u8; CHUNK.min(left as usize)];
        match f.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(buf), (f, left - n as u64)))
            }
            Err(e) => Some((Err(e), (f, 0))),
        }
    });
    let mut response = Response::new(Body::from_stream(stream));
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("audio/wav"));
    h.insert(header::CONTENT_LENGTH, value(&count.to_string()));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    h.insert(header::CONTENT_DISPOSITION, value(&format!("inline; filename=\"{}.wav\"", call.id)));
    if status == StatusCode::PARTIAL_CONTENT {
        h.insert(header::CONTENT_RANGE, value(&format!("bytes {start}-{end}/{len}")));
    }
    Ok(response)
}

pub async fn delete(
    State(state): State<Arc<AppState>>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = path(id)?;
    let store = catalog(&state)?.store();
    let call = store.call(&id).await?.ok_or_else(|| ApiError::not_found(format!("call {id} not found")))?;
    if call.recording["status"] == "recording" {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!("call {} is still being recorded: delete its recording once it ends", call.id),
        ));
    }
    let file = file_of(&state, &call)?;
    std::fs::remove_file(&file).map_err(|e| {
        tracing::warn!(call = %call.id, error = %e, "a recording could not be deleted");
        ApiError::unavailable("the recording could not be deleted")
    })?;
    let _ = std::fs::remove_file(file.with_extension(format!("wav.{}", crate::io::upload::MARKER)));
    if let (Some(remote), Some(relative)) = (&state.remote, call.recording["file"].as_str()) {
        remote.delete(std::path::Path::new(relative)).await.map_err(|e| {
            tracing::warn!(call = %call.id, error = %e, "a recording could not be deleted from the bucket");
            ApiError::unavailable(format!("the local copy is deleted, but the bucket's could not be: {e}"))
        })?;
    }
    let mut recording = call.recording.clone();
    recording["status"] = json!("deleted");
    store.set_call_recording(&call.id, &recording).await?;
    tracing::info!(call = %call.id, "recording deleted through the API");
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[cfg(test)]
mod tests {
    use super::{Unsatisfiable, range};

    #[test]
    fn byte_ranges_are_read_as_rfc_9110_has_them() {
        assert_eq!(range(None, 100), Ok(None));
        assert_eq!(range(Some("bytes=0-9"), 100), Ok(Some((0, 9))));
        assert_eq!(range(Some("bytes=90-"), 100), Ok(Some((90, 99))));
        assert_eq!(range(Some("bytes=-10"), 100), Ok(Some((90, 99))));
        assert_eq!(range(Some("bytes=50-500"), 100), Ok(Some((50, 99))), "the end is cut to the file");
        assert_eq!(range(Some("bytes=-500"), 100), Ok(Some((0, 99))));
        assert_eq!(range(Some("bytes=100-"), 100), Err(Unsatisfiable), "past the end: 416");
        assert_eq!(range(Some("bytes=9-3"), 100), Err(Unsatisfiable));
        assert_eq!(range(Some("bytes=0-1,5-6"), 100), Ok(None), "several ranges: the whole file");
        assert_eq!(range(Some("items=0-1"), 100), Ok(None));
        assert_eq!(range(Some("bytes=x-"), 100), Ok(None));
    }
}
