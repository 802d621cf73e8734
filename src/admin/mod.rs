//! The HTTP API: the admin API under `/v1` ([`v1`], bearer token), the dashboard under `/ui/` ([`ui`]: static
//! files, open; the page itself uses `/v1` with the token), `/healthz` and `/readyz` (open),
//! `/metrics`, and the Twilio-compatible call control agents' frameworks use to hang up
//! (`POST /2010-04-01/Accounts/{AC}/Calls/{CA}.json` with `Status=completed`, HTTP Basic auth), answered with
//! Twilio's JSON shapes, errors included. Handlers never touch call state: they send a command to the SIP
//! driver and await its answer.

pub mod health;
pub mod openapi;
pub mod placing;
pub mod recording;
pub mod rules;
pub mod twilio;
pub mod ui;
pub mod v1;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;
use tokio::sync::{mpsc, oneshot};

use crate::call::{CallSummary, HangupOutcome, HangupRequest};

/// What the HTTP API asks of the SIP driver.
#[derive(Debug)]
pub enum CallCommand {
    /// The Twilio-compatible hang-up.
    Hangup { request: HangupRequest, reply: oneshot::Sender<HangupOutcome> },
    /// The admin API's hang-up, by vocals call id or CallSid; `false`: no such call in progress here.
    End { id: String, reply: oneshot::Sender<bool> },
    /// Place a call: queued behind its trunk's pace, or refused.
    Dial {
        request: Box<crate::call::DialRequest>,
        reply: oneshot::Sender<Result<crate::twilio::calls::CallView, crate::call::outbound::Refusal>>,
    },
    /// An outbound call's status (live, queued or recently ended).
    View { sid: String, reply: oneshot::Sender<Option<crate::twilio::calls::CallView>> },
}

/// What every handler shares.
#[derive(Clone, Default)]
pub struct AppState {
    pub calls: Option<mpsc::Sender<CallCommand>>,
    /// Renders the Prometheus text for `/metrics` (absent when no recorder is installed).
    pub metrics: Option<PrometheusHandle>,
    /// The store and the routing table it feeds (`None`: the admin resources answer 503).
    pub catalog: Option<Arc<crate::store::catalog::Catalog>>,
    /// The admin API's bearer token.
    pub token: Option<String>,
    /// Twilio account linking (`None`: `/v1/twilio` answers 503).
    pub twilio: Option<Arc<crate::twilio::Provisioner>>,
    /// Set when the server stops taking calls (`/readyz` then answers 503).
    pub draining: Arc<AtomicBool>,
    /// Failed REST hang-ups per source address in the current minute (guessing a CallSid and its
    /// credentials is slowed down to [`HANGUP_FAILURES`] tries a minute).
    pub hangup_failures: Arc<std::sync::Mutex<HashMap<std::net::IpAddr, (u32, std::time::Instant)>>>,
    /// Placing calls (`None`: the Calls.json create answers 503).
    pub outbound: Option<Arc<placing::Outbound>>,
    /// The TLS client configuration agent checks use for `wss://` URLs, built at the first.
    pub agent_tls: Arc<std::sync::OnceLock<Option<Arc<rustls::ClientConfig>>>>,
    /// Where this node's recordings are (`STATE_DIR/recordings`; `None`: none are served).
    pub recordings: Option<std::path::PathBuf>,
    /// This node's name (a recording is on the node that recorded its call).
    pub node: String,
    /// The bucket recordings are uploaded to (`[recording] url`): DELETE removes them there too.
    pub remote: Option<Arc<crate::io::upload::Remote>>,
}

/// Failed REST hang-ups a source may make in a minute; past it, 429 until the minute is over.
pub const HANGUP_FAILURES: u32 = 10;

impl AppState {
    fn send(&self, command: CallCommand) -> bool {
        self.calls.as_ref().is_some_and(|c| c.try_send(command).is_ok())
    }
}

pub fn app(state: AppState) -> Router {
    let state = Arc::new(state);
    let admin = v1::routes()
        .merge(twilio::routes())
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), v1::require_token))
        .route("/v1/openapi.json", get(|| async { Json(openapi::document()) }));
    Router::new()
        .route("/2010-04-01/Accounts/{account}/Calls.json", post(placing::create_call))
        .route("/2010-04-01/Accounts/{account}/Calls/{call}", post(update_call).get(placing::get_call))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
        .merge(ui::routes())
        .merge(admin)
        .fallback(|uri: axum::http::Uri| async move {
            v1::ApiError::new(StatusCode::NOT_FOUND, "no_such_route", format!("no route {}", uri.path()))
        })
        .method_not_allowed_fallback(|| async {
            v1::ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this path does not take that method",
            )
        })
        .layer(axum::extract::DefaultBodyLimit::max(v1::MAX_BODY))
        .with_state(state)
}

/// `GET /readyz`: 200 when the routing table is loaded and the server takes calls; 503 says what is missing.
async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    let mut missing = Vec::new();
    if state.catalog.as_ref().is_some_and(|c| !c.loaded()) {
        missing.push("the routing table is not loaded from the store yet");
    }
    if state.draining.load(Ordering::Relaxed) {
        missing.push("draining: new calls are refused");
    }
    if missing.is_empty() {
        Json(json!({"status": "ready"})).into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "not ready", "reasons": missing}))).into_response()
    }
}

/// `GET /metrics`: Prometheus text exposition.
async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    match &state.metrics {
        Some(handle) => ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], handle.render()).into_response(),
        None => {
            let body = json!({"error": "metrics are not enabled in this process"});
            (StatusCode::NOT_FOUND, Json(body)).into_response()
        }
    }
}

/// A Twilio REST error: `{"code", "message", "more_info", "status"}` with the matching HTTP status.
fn twilio_error(status: StatusCode, code: u32, message: &str) -> Response {
    let body = json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status.as_u16(),
    });
    (status, Json(body)).into_response()
}

/// `POST /2010-04-01/Accounts/{AC}/Calls/{CA}.json`: `Status=completed` (or `canceled`) ends the call.
async fn update_call(
    State(state): State<Arc<AppState>>,
    Path((account, call)): Path<(String, String)>,
    source: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    headers: HeaderMap,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Response {
    let source = source.map(|c| c.0.0.ip());
    if let Some(ip) = source
        && failures(&state, ip, false) >= HANGUP_FAILURES
    {
        return twilio_error(StatusCode::TOO_MANY_REQUESTS, 20429, "Too many failed requests; try again in a minute");
    }
    let resource = format!("/2010-04-01/Accounts/{account}/Calls/{call}");
    let Some(call_sid) = call.strip_suffix(".json") else {
        return twilio_error(StatusCode::NOT_FOUND, 20404, &format!("The requested resource {resource} was not found"));
    };
    let Some((user, password)) = basic_auth(&headers) else {
        return twilio_error(StatusCode::UNAUTHORIZED, 20003, "Authenticate: HTTP Basic credentials are required");
    };
    let form = match form {
        Ok(Form(form)) => form,
        Err(e) => return twilio_error(StatusCode::BAD_REQUEST, 20001, &format!("Invalid form body: {e}")),
    };
    match form.get("Status").map(String::as_str) {
        Some("completed" | "canceled") => {}
        Some(other) => {
            let message = format!("Status {other:?} is not supported: use completed or canceled");
            return twilio_error(StatusCode::BAD_REQUEST, 20001, &message);
        }
        None => return twilio_error(StatusCode::BAD_REQUEST, 20001, "Missing parameter Status (completed)"),
    }
    let request = HangupRequest { account_sid: account, call_sid: call_sid.to_string(), user, password };
    let (reply, answer) = oneshot::channel();
    if !state.send(CallCommand::Hangup { request, reply }) {
        return twilio_error(StatusCode::SERVICE_UNAVAILABLE, 20503, "The call layer is busy; try again");
    }
    match tokio::time::timeout(Duration::from_secs(5), answer).await {
        Ok(Ok(HangupOutcome::Done(summary))) => (StatusCode::OK, Json(call_resource(&summary))).into_response(),
        // No call, or a call and the wrong credentials: the same answer, so the endpoint tells no one which
        // CallSids are live (the log says which it was).
        Ok(Ok(outcome @ (HangupOutcome::UnknownCall | HangupOutcome::Unauthorized))) => {
            let why = if outcome == HangupOutcome::Unauthorized { "wrong credentials" } else { "no such call" };
            tracing::warn!(?source, %call_sid, why, "REST hang-up refused");
            if let Some(ip) = source {
                failures(&state, ip, true);
            }
            twilio_error(StatusCode::NOT_FOUND, 20404, &format!("The requested resource {resource} was not found"))
        }
        _ => twilio_error(StatusCode::SERVICE_UNAVAILABLE, 20503, "The call layer did not answer; try again"),
    }
}

/// Failed hang-ups from `ip` this minute, after counting one more when `failed`.
fn failures(state: &AppState, ip: std::net::IpAddr, failed: bool) -> u32 {
    let now = std::time::Instant::now();
    let mut table = match state.hangup_failures.lock() {
        Ok(t) => t,
        Err(poisoned) => poisoned.into_inner(),
    };
    if table.len() > 10_000 {
        table.retain(|_, (_, since)| now.duration_since(*since) < Duration::from_secs(60));
    }
    let entry = table.entry(ip).or_insert((0, now));
    if now.duration_since(entry.1) >= Duration::from_secs(60) {
        *entry = (0, now);
    }
    if failed {
        entry.0 += 1;
    }
    entry.0
}

/// The Call resource Twilio returns from an update (the fields clients read).
fn call_resource(c: &CallSummary) -> serde_json::Value {
    json!({
        "sid": c.call_sid,
        "account_sid": c.account_sid,
        "from": c.from,
        "to": c.to,
        "status": c.status,
        "direction": c.direction,
        "api_version": "2010-04-01",
        "uri": format!("/2010-04-01/Accounts/{}/Calls/{}.json", c.account_sid, c.call_sid),
    })
}

/// `Authorization: Basic base64(user:password)`.
fn basic_auth(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;

    /// A stand-in for the SIP driver that knows one call.
    fn app_with_one_call() -> Router {
        let (tx, mut rx) = mpsc::channel::<CallCommand>(4);
        tokio::spawn(async move {
            while let Some(CallCommand::Hangup { request, reply }) = rx.recv().await {
                let outcome = if request.call_sid != "CA1" || request.account_sid != "AC1" {
                    HangupOutcome::UnknownCall
                } else if (request.user.as_str(), request.password.as_str()) != ("AC1", "token") {
                    HangupOutcome::Unauthorized
                } else {
                    HangupOutcome::Done(CallSummary {
                        call_sid: "CA1".into(),
                        account_sid: "AC1".into(),
                        from: "+12125550100".into(),
                        to: "+14155550123".into(),
                        status: "completed",
                        direction: "inbound",
                    })
                };
                let _ = reply.send(outcome);
            }
        });
        app(AppState { calls: Some(tx), ..AppState::default() })
    }

    async fn post(app: Router, uri: &str, auth: Option<&str>, body: &str) -> (StatusCode, serde_json::Value) {
        let from: std::net::SocketAddr = "198.51.100.7:40000".parse().unwrap();
        let mut req = Request::post(uri)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .extension(axum::extract::ConnectInfo(from));
        if let Some(auth) = auth {
            let encoded = base64::engine::general_purpose::STANDARD.encode(auth);
            req = req.header(header::AUTHORIZATION, format!("Basic {encoded}"));
        }
        let resp = app.oneshot(req.body(Body::from(body.to_string())).unwrap()).await.unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
    }

    #[tokio::test]
    async fn status_completed_ends_the_call_and_returns_the_call_resource() {
        let (status, body) =
            post(app_with_one_call(), "/2010-04-01/Accounts/AC1/Calls/CA1.json", Some("AC1:token"), "Status=completed")
                .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!((body["sid"].as_str(), body["status"].as_str()), (Some("CA1"), Some("completed")));
        assert_eq!(body["account_sid"], "AC1");
    }

    #[tokio::test]
    async fn errors_are_twilio_json_that_says_what_was_wrong() {
        let app = app_with_one_call();
        let (status, body) =
            post(app.clone(), "/2010-04-01/Accounts/AC1/Calls/CA9.json", Some("AC1:token"), "Status=completed").await;
        assert_eq!(
            (status, body["code"].as_u64(), body["status"].as_u64()),
            (StatusCode::NOT_FOUND, Some(20404), Some(404))
        );
        assert!(body["message"].as_str().unwrap().contains("CA9.json"));
        // Wrong credentials for a live call get the answer an unknown call gets: no oracle for live CallSids.
        let (status, body) =
            post(app.clone(), "/2010-04-01/Accounts/AC1/Calls/CA1.json", Some("AC1:nope"), "Status=completed").await;
        assert_eq!((status, body["code"].as_u64()), (StatusCode::NOT_FOUND, Some(20404)));
        assert!(body["message"].as_str().unwrap().contains("CA1.json was not found"), "{body}");
        let (status, _) = post(app.clone(), "/2010-04-01/Accounts/AC1/Calls/CA1.json", None, "Status=completed").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, body) =
            post(app.clone(), "/2010-04-01/Accounts/AC1/Calls/CA1.json", Some("AC1:token"), "Status=ringing").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body["message"].as_str().unwrap().contains("ringing"), "{body}");
        let (status, body) =
            post(app.clone(), "/2010-04-01/Accounts/AC1/Calls/CA1.json", Some("AC1:token"), "Twiml=<Hangup/>").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body["message"].as_str().unwrap().contains("Status"), "{body}");
        let (status, _) = post(app, "/2010-04-01/Accounts/AC1/Calls/CA1", Some("AC1:token"), "Status=completed").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    /// Security finding: the hang-up endpoint was an oracle (401 for a live CallSid with wrong credentials,
    /// 404 otherwise) with no bound on guesses. Now both get 404, and a source's failures are limited.
    #[tokio::test]
    async fn hang_up_guesses_are_no_oracle_and_are_limited_per_source() {
        let app = app_with_one_call();
        let unknown =
            post(app.clone(), "/2010-04-01/Accounts/AC1/Calls/CA2.json", Some("AC1:x"), "Status=completed").await;
        let live =
            post(app.clone(), "/2010-04-01/Accounts/AC1/Calls/CA1.json", Some("AC1:x"), "Status=completed").await;
        assert_eq!((unknown.0, unknown.1["code"].clone()), (live.0, live.1["code"].clone()));
        for n in 3..=HANGUP_FAILURES {
            let (status, _) = post(
                app.clone(),
                &format!("/2010-04-01/Accounts/AC1/Calls/CA{n}.json"),
                Some("AC1:x"),
                "Status=completed",
            )
            .await;
            assert_eq!(status, StatusCode::NOT_FOUND, "guess {n}");
        }
        // The limit reached, even the right credentials wait (the source is the guesser's).
        let (status, body) =
            post(app, "/2010-04-01/Accounts/AC1/Calls/CA1.json", Some("AC1:token"), "Status=completed").await;
        assert_eq!((status, body["code"].as_u64()), (StatusCode::TOO_MANY_REQUESTS, Some(20429)));
    }
}

#[cfg(test)]
mod v1_tests;
