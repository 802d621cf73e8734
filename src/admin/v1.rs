//! The admin API under `/v1`: agents, phone numbers and calls, JSON in and out, behind a bearer token. Every
//! error is one [`ApiError`] shape, `{"error": {"code", "message"}}`, whose message says what was wrong; unknown
//! fields are refused; bodies are capped. Writes go to the store, then the routing table is reloaded (and the
//! other nodes told), so the next call sees them and calls in progress keep what they had.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};
use tokio::sync::oneshot;

use super::{AppState, CallCommand};
use crate::e164::E164;
use crate::sdp::SrtpPolicy;
use crate::store::catalog::Catalog;
use crate::store::{AgentPatch, CallQuery, NewAgent, StoreError};

/// Largest request body the admin API reads.
pub const MAX_BODY: usize = 64 * 1024;

/// An error answer: the HTTP status, a stable code and a message for people.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into() }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code, "message": self.message}});
        (self.status, Json(body)).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::NotFound(what) => ApiError::not_found(format!("{what} not found")),
            StoreError::Conflict(message) => ApiError::new(StatusCode::CONFLICT, "conflict", message),
            StoreError::InUse { what, numbers } => ApiError::new(
                StatusCode::CONFLICT,
                if what.starts_with("agent") { "agent_in_use" } else { "in_use" },
                format!("{what} still serves {}: move or remove those numbers first", numbers.join(", ")),
            ),
            StoreError::Invalid(message) => ApiError::invalid(message),
            StoreError::ReadOnly(message) => ApiError::new(StatusCode::FORBIDDEN, "read_only", message),
            // Internals stay in the log.
            e @ (StoreError::Database(_) | StoreError::Migrate(_) | StoreError::Secret(_)) => {
                tracing::error!(error = %e, "store error in the admin API");
                ApiError::unavailable("the database is unavailable; try again")
            }
        }
    }
}

/// `Json<T>` whose rejections are [`ApiError`]s that say what was wrong with the body.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(Body(value)),
            Err(JsonRejection::JsonDataError(e)) => {
                let text = e.body_text();
                let detail = text.split_once("target type: ").map_or(text.as_str(), |(_, d)| d);
                Err(ApiError::invalid(format!("the body does not fit: {detail}")))
            }
            Err(JsonRejection::JsonSyntaxError(e)) => {
                Err(ApiError::bad_request(format!("the body is not valid JSON: {}", e.body_text())))
            }
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send Content-Type: application/json",
            )),
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("the body is larger than {MAX_BODY} bytes"),
            )),
            Err(e) => Err(ApiError::bad_request(e.body_text())),
        }
    }
}

fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(v)| v).map_err(|e| ApiError::bad_request(format!("query string: {}", e.body_text())))
}

pub fn path<T>(p: Result<Path<T>, PathRejection>) -> Result<T, ApiError> {
    p.map(|Path(v)| v).map_err(|e| ApiError::bad_request(e.body_text()))
}

/// `Some(None)` for an explicit `null`, `None` for an absent field.
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Ok(Some(Option::deserialize(d)?))
}

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v1/agents", post(create_agent).get(list_agents))
        .route("/v1/agents/{id}", get(get_agent).patch(update_agent).delete(delete_agent))
        .route("/v1/numbers", post(add_number).get(list_numbers))
        .route("/v1/numbers/{number}", get(get_number).patch(update_number).delete(delete_number))
        .route("/v1/calls", get(list_calls))
        .route("/v1/calls/{id}", get(get_call))
        .route("/v1/calls/{id}/hangup", post(hangup_call))
}

/// Checks `Authorization: Bearer <token>` (constant time) on every `/v1` route but the OpenAPI document.
pub async fn require_token(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let Some(expected) = state.token.as_deref() else {
        return ApiError::unavailable("the admin API has no token configured").into_response();
    };
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    match given {
        Some(token) if crate::call::constant_time_eq(token.as_bytes(), expected.as_bytes()) => next.run(req).await,
        Some(_) => ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "the bearer token is wrong").into_response(),
        None => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "send Authorization: Bearer <token> (admin.token, VOCALS_ADMIN_TOKEN, or STATE_DIR/admin-token)",
        )
        .into_response(),
    }
}

pub fn catalog(state: &AppState) -> Result<&Arc<Catalog>, ApiError> {
    state.catalog.as_ref().ok_or_else(|| ApiError::unavailable("this vocals runs without a store"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateAgent {
    name: String,
    #[serde(default = "websocket")]
    kind: String,
    stream_url: Option<String>,
    #[serde(default)]
    system_prompt: String,
    providers: Option<Value>,
    settings: Option<Value>,
    signing_secret: Option<String>,
}

fn websocket() -> String {
    "websocket".into()
}

async fn create_agent(State(state): State<Arc<AppState>>, Body(a): Body<CreateAgent>) -> Result<Response, ApiError> {
    let catalog = catalog(&state)?;
    let new = NewAgent {
        name: a.name,
        kind: a.kind,
        stream_url: a.stream_url,
        system_prompt: a.system_prompt,
        providers: a.providers,
        settings: a.settings,
        signing_secret: a.signing_secret,
    };
    let agent = catalog.store().create_agent(&new).await?;
    let location = format!("/v1/agents/{}", agent.id);
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(agent)).into_response())
}

async fn list_agents(State(state): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    let agents = catalog(&state)?.store().agents().await?;
    Ok(Json(json!({ "agents": agents })))
}

async fn get_agent(
    State(state): State<Arc<AppState>>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = path(id)?;
    let agent = catalog(&state)?.store().agent(&id).await?;
    agent.map(|a| Json(a).into_response()).ok_or_else(|| ApiError::not_found(format!("agent {id} not found")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchAgent {
    name: Option<String>,
    kind: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    stream_url: Option<Option<String>>,
    system_prompt: Option<String>,
    providers: Option<Value>,
    settings: Option<Value>,
    #[serde(default, deserialize_with = "nullable")]
    signing_secret: Option<Option<String>>,
}

async fn update_agent(
    State(state): State<Arc<AppState>>,
    id: Result<Path<String>, PathRejection>,
    Body(p): Body<PatchAgent>,
) -> Result<Response, ApiError> {
    let id = path(id)?;
    let catalog = catalog(&state)?;
    let patch = AgentPatch {
        name: p.name,
        kind: p.kind,
        stream_url: p.stream_url,
        system_prompt: p.system_prompt,
        providers: p.providers,
        settings: p.settings,
        signing_secret: p.signing_secret,
    };
    let agent = catalog.store().update_agent(&id, &patch).await?;
    catalog.changed().await;
    Ok(Json(agent).into_response())
}

async fn delete_agent(
    State(state): State<Arc<AppState>>,
    id: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let id = path(id)?;
    let catalog = catalog(&state)?;
    catalog.store().delete_agent(&id).await?;
    catalog.changed().await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddNumber {
    phone_number: String,
    agent_id: Option<String>,
    /// A linked Twilio account the number belongs to: vocals configures Twilio for it.
    twilio_account_sid: Option<String>,
    /// The number's SRTP policy; absent or null: the server's `media.srtp`.
    srtp: Option<String>,
}

/// `srtp` in a request: `off`, `allowed`, `required`, or null for the server's `media.srtp`.
fn srtp_field(s: Option<&str>) -> Result<Option<SrtpPolicy>, ApiError> {
    match s {
        None => Ok(None),
        Some(v) => SrtpPolicy::parse(v).map(Some).ok_or_else(|| {
            ApiError::invalid(format!(
                "srtp must be off, allowed or required (or null for the server's media.srtp), not {v:?}"
            ))
        }),
    }
}

fn e164_field(s: &str) -> Result<E164, ApiError> {
    E164::parse(s.trim())
        .map_err(|_| ApiError::invalid(format!("phone_number must be E.164, e.g. +14155550123, not {s:?}")))
}

/// A number in a path: `+14155550123`, `%2B14155550123` or `14155550123`.
pub fn e164_path(s: &str) -> Result<E164, ApiError> {
    let s = s.trim();
    let with_plus = if s.starts_with('+') { s.to_string() } else { format!("+{s}") };
    E164::parse(&with_plus)
        .map_err(|_| ApiError::bad_request(format!("{s:?} is not a phone number in E.164, e.g. +14155550123")))
}

async fn add_number(State(state): State<Arc<AppState>>, Body(n): Body<AddNumber>) -> Result<Response, ApiError> {
    let catalog = catalog(&state)?;
    let number = e164_field(&n.phone_number)?;
    let srtp = srtp_field(n.srtp.as_deref())?;
    let added = match &n.twilio_account_sid {
        Some(account) => {
            if let Some(agent) = &n.agent_id {
                catalog
                    .store()
                    .agent(agent)
                    .await?
                    .ok_or_else(|| agent_ref(StoreError::NotFound(format!("agent {agent}"))))?;
            }
            if catalog.store().number(&number).await?.is_some() {
                return Err(StoreError::Conflict(format!("{number} is already added")).into());
            }
            let provisioner = super::twilio::provisioner(&state)?;
            provisioner.add(account, &number, n.agent_id.as_deref()).await?
        }
        None => catalog.store().add_number(&number, n.agent_id.as_deref()).await.map_err(agent_ref)?,
    };
    let added = match srtp {
        Some(_) => catalog.store().set_number_srtp(&number, srtp).await?,
        None => added,
    };
    catalog.changed().await;
    let location = format!("/v1/numbers/{}", added.e164);
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(added)).into_response())
}

/// An `agent_id` naming no agent is a mistake in the request (422), not a missing resource.
fn agent_ref(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound(what) if what.starts_with("agent ") => {
            ApiError::invalid(format!("agent_id: {what} does not exist"))
        }
        other => other.into(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NumberFilter {
    agent_id: Option<String>,
    status: Option<String>,
}

async fn list_numbers(
    State(state): State<Arc<AppState>>,
    q: Result<Query<NumberFilter>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let q = query(q)?;
    if let Some(status) = q.status.as_deref().filter(|s| !matches!(*s, "active" | "inactive" | "error")) {
        return Err(ApiError::bad_request(format!("status must be active, inactive or error, not {status:?}")));
    }
    let numbers: Vec<_> = catalog(&state)?
        .store()
        .numbers()
        .await?
        .into_iter()
        .filter(|n| q.agent_id.as_ref().is_none_or(|a| n.agent_id.as_ref() == Some(a)))
        .filter(|n| q.status.as_ref().is_none_or(|s| &n.status == s))
        .collect();
    Ok(Json(json!({ "numbers": numbers })))
}

async fn get_number(
    State(state): State<Arc<AppState>>,
    number: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let number = e164_path(&path(number)?)?;
    let found = catalog(&state)?.store().number(&number).await?;
    found.map(|n| Json(n).into_response()).ok_or_else(|| ApiError::not_found(format!("number {number} not found")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchNumber {
    #[serde(default, deserialize_with = "nullable")]
    agent_id: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    srtp: Option<Option<String>>,
}

async fn update_number(
    State(state): State<Arc<AppState>>,
    number: Result<Path<String>, PathRejection>,
    Body(p): Body<PatchNumber>,
) -> Result<Response, ApiError> {
    let number = e164_path(&path(number)?)?;
    if p.agent_id.is_none() && p.srtp.is_none() {
        return Err(ApiError::invalid(
            "agent_id or srtp is required: an agent's id to assign (null to unassign), or an SRTP policy",
        ));
    }
    let srtp = p.srtp.as_ref().map(|s| srtp_field(s.as_deref())).transpose()?;
    let catalog = catalog(&state)?;
    let mut updated = None;
    if let Some(agent_id) = &p.agent_id {
        updated = Some(catalog.store().assign_number(&number, agent_id.as_deref()).await.map_err(agent_ref)?);
    }
    if let Some(srtp) = srtp {
        updated = Some(catalog.store().set_number_srtp(&number, srtp).await?);
    }
    catalog.changed().await;
    Ok(Json(updated).into_response())
}

async fn delete_number(
    State(state): State<Arc<AppState>>,
    number: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let number = e164_path(&path(number)?)?;
    let catalog = catalog(&state)?;
    let linked = catalog.store().number(&number).await?.is_some_and(|n| n.twilio_number_sid.is_some());
    let removed = if linked {
        // Twilio is put back as it was first; if that fails the number stays, in error.
        super::twilio::provisioner(&state)?.remove(&number).await.map_err(ApiError::from)
    } else {
        catalog.store().delete_number(&number).await.map_err(ApiError::from)
    };
    catalog.changed().await;
    removed.map(|()| StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CallFilter {
    active: Option<bool>,
    agent: Option<String>,
    to: Option<String>,
    cursor: Option<String>,
    limit: Option<u32>,
}

async fn list_calls(
    State(state): State<Arc<AppState>>,
    q: Result<Query<CallFilter>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let q = query(q)?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_request(format!("limit must be 1 to 500, not {limit}")));
    }
    let to = match q.to.as_deref() {
        Some(to) => Some(e164_path(to)?.to_string()),
        None => None,
    };
    let query = CallQuery { active: q.active, agent: q.agent, to, cursor: q.cursor, limit };
    let (calls, next) = catalog(&state)?.store().calls(&query).await.map_err(|e| match e {
        StoreError::Invalid(m) => ApiError::bad_request(m),
        other => other.into(),
    })?;
    Ok(Json(json!({ "calls": calls, "next_cursor": next })))
}

async fn get_call(
    State(state): State<Arc<AppState>>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = path(id)?;
    let call = catalog(&state)?.store().call(&id).await?;
    call.map(|c| Json(c).into_response()).ok_or_else(|| ApiError::not_found(format!("call {id} not found")))
}

/// Ends a call in progress on this node: BYE when answered, a refusal while it rings.
async fn hangup_call(
    State(state): State<Arc<AppState>>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = path(id)?;
    let (reply, answer) = oneshot::channel();
    if !state.send(CallCommand::End { id: id.clone(), reply }) {
        return Err(ApiError::unavailable("the call layer is busy; try again"));
    }
    match tokio::time::timeout(Duration::from_secs(5), answer).await {
        Ok(Ok(true)) => Ok((StatusCode::ACCEPTED, Json(json!({"id": id, "status": "ending"}))).into_response()),
        Ok(Ok(false)) => Err(ApiError::not_found(format!("call {id} is not in progress on this node"))),
        _ => Err(ApiError::unavailable("the call layer did not answer; try again")),
    }
}
