//! The admin API under `/v1`: agents, phone numbers and calls, JSON in and out, behind a bearer token. Every
//! error is one [`ApiError`] shape, `{"error": {"code", "message"}}`, whose message says what was wrong; unknown
//! fields are refused; bodies are capped. Writes go to the store, then the routing table is reloaded (and the
//! other nodes told), so the next call sees them and calls in progress keep what they had.

use std::collections::HashMap;
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

use super::{AppState, CallCommand, health};
use crate::e164::E164;
use crate::media::recording::RecordMode;
use crate::sdp::SrtpPolicy;
use crate::store::catalog::Catalog;
use crate::store::{Agent, AgentCheck, AgentPatch, CallQuery, NewAgent, PhoneNumber, StoreError, TwilioAccount};

/// Largest request body the admin API reads.
pub const MAX_BODY: usize = 64 * 1024;

/// An error answer: the HTTP status, a stable code and a message for people.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// The request field the error is about, for a form to mark it (`rules[2].when.zone`).
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into(), field: None }
    }

    /// Names the request field the error is about.
    pub fn field(mut self, field: impl Into<String>) -> ApiError {
        self.field = Some(field.into());
        self
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

    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({"error": {"code": self.code, "message": self.message}});
        if let Some(field) = self.field {
            body["error"]["field"] = json!(field);
        }
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
            StoreError::Invalid(message) => {
                let field = FIELDS
                    .iter()
                    .find(|f| message.strip_prefix(**f).is_some_and(|r| r.starts_with([' ', '.'])))
                    .map(|f| f.to_string())
                    .or_else(|| rule_field(&message));
                let e = ApiError::invalid(message.clone());
                match field {
                    Some(f) => e.field(f),
                    None => e,
                }
            }
            StoreError::ReadOnly(message) => ApiError::new(StatusCode::FORBIDDEN, "read_only", message),
            // Internals stay in the log.
            e @ (StoreError::Database(_) | StoreError::Migrate(_) | StoreError::Secret(_)) => {
                tracing::error!(error = %e, "store error in the admin API");
                ApiError::unavailable("the database is unavailable; try again")
            }
        }
    }
}

/// The request fields a store message can start with: an error about one names it in `field`.
const FIELDS: &[&str] = &[
    "name",
    "kind",
    "stream_url",
    "system_prompt",
    "providers",
    "settings",
    "signing_secret",
    "phone_number",
    "agent_id",
    "srtp",
    "record",
];

/// The field a routing rules message names, as the rules' check writes it: `rules[2].when.zone: why` or
/// `rules: why`.
fn rule_field(message: &str) -> Option<String> {
    let (field, _) = message.split_once(": ")?;
    let rest = field.strip_prefix("rules")?;
    (rest.is_empty() || rest.starts_with('[')).then(|| field.to_string())
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
        .route("/v1/agents/{id}/check", post(recheck_agent))
        .route("/v1/numbers", post(add_number).get(list_numbers))
        .route("/v1/numbers/{number}", get(get_number).patch(update_number).delete(delete_number))
        .route("/v1/numbers/{number}/route", get(super::rules::dry_run))
        .route("/v1/calls", get(list_calls).post(super::placing::dial))
        .route("/v1/calls/{id}", get(get_call))
        .route("/v1/calls/{id}/hangup", post(hangup_call))
        .route("/v1/calls/{id}/sip", get(get_call_sip))
        .route("/v1/calls/{id}/timeline", get(get_call_timeline))
        .route("/v1/calls/{id}/recording", get(super::recording::get).delete(super::recording::delete))
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
    let check = check_agent(&state, &agent).await?;
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(agent_view(&agent, check.as_ref()))).into_response())
}

/// How long an agent check waits for the WebSocket handshake.
pub const AGENT_CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// Checks a WebSocket agent's stream URL with a handshake (at most [`AGENT_CHECK_TIMEOUT`]) and keeps the
/// outcome, which number health reads; `None` for an agent with nothing to check (echo).
async fn check_agent(state: &AppState, agent: &Agent) -> Result<Option<AgentCheck>, ApiError> {
    let config = agent.to_config();
    if agent.kind == "echo" || config.url.is_empty() {
        return Ok(None);
    }
    let tls = state
        .agent_tls
        .get_or_init(|| {
            crate::io::agent::tls_config()
                .inspect_err(|e| tracing::error!(error = %e, "wss:// agents cannot be checked: no TLS configuration"))
                .ok()
        })
        .clone();
    let outcome = crate::io::agent::probe(&config, tls, AGENT_CHECK_TIMEOUT).await;
    let check = AgentCheck {
        ok: outcome.is_ok(),
        detail: match &outcome {
            Ok(()) => String::new(),
            Err(crate::io::agent::AgentError::Timeout { timeout, .. }) => {
                format!("no WebSocket handshake within {} s", timeout.as_secs())
            }
            Err(crate::io::agent::AgentError::Connect { message, .. }) => message.clone(),
        },
        checked_at: crate::store::now_rfc3339(),
    };
    if !check.ok {
        tracing::warn!(agent = %agent.name, url = %crate::config::redact_url(&config.url), detail = %check.detail, "agent check: the stream URL does not answer");
    }
    catalog(state)?.store().set_agent_check(&agent.id, &check).await?;
    Ok(Some(check))
}

/// An agent as the API shows it, with its last check.
fn agent_view(agent: &Agent, check: Option<&AgentCheck>) -> Value {
    let mut v = serde_json::to_value(agent).unwrap_or_default();
    v["check"] = json!(check);
    v
}

async fn list_agents(State(state): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    let store = catalog(&state)?.store();
    let checks = store.agent_checks().await?;
    let agents: Vec<Value> = store.agents().await?.iter().map(|a| agent_view(a, checks.get(&a.id))).collect();
    Ok(Json(json!({ "agents": agents })))
}

/// `POST /v1/agents/{id}/check`: checks the agent's stream URL again now.
async fn recheck_agent(
    State(state): State<Arc<AppState>>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = path(id)?;
    let agent = catalog(&state)?.store().agent(&id).await?;
    let agent = agent.ok_or_else(|| ApiError::not_found(format!("agent {id} not found")))?;
    let check = check_agent(&state, &agent).await?;
    Ok(Json(agent_view(&agent, check.as_ref())).into_response())
}

async fn get_agent(
    State(state): State<Arc<AppState>>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = path(id)?;
    let store = catalog(&state)?.store();
    let agent = store.agent(&id).await?.ok_or_else(|| ApiError::not_found(format!("agent {id} not found")))?;
    let checks = store.agent_checks().await?;
    Ok(Json(agent_view(&agent, checks.get(&agent.id))).into_response())
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
    let check = check_agent(&state, &agent).await?;
    Ok(Json(agent_view(&agent, check.as_ref())).into_response())
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
    /// The number's own word on recording (`off`, `dual`); absent or null: its agent's, then the server's.
    record: Option<String>,
    /// Routing rules: the first that matches a call picks its agent; absent, null or `[]`: none.
    rules: Option<Value>,
}

/// `record` in a request: `off`, `dual`, or null for its agent's word, then `[recording] record`.
fn record_field(s: Option<&str>) -> Result<Option<RecordMode>, ApiError> {
    match s {
        None => Ok(None),
        Some(v) => RecordMode::parse(v).map(Some).ok_or_else(|| {
            ApiError::invalid(format!("record must be off or dual (or null for its agent's word), not {v:?}"))
                .field("record")
        }),
    }
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

/// A number in a path: `+14155550123`, `%2B14155550123` or `14155550123`.
pub fn e164_path(s: &str) -> Result<E164, ApiError> {
    let s = s.trim();
    let with_plus = if s.starts_with('+') { s.to_string() } else { format!("+{s}") };
    E164::parse(&with_plus)
        .map_err(|_| ApiError::bad_request(format!("{s:?} is not a phone number in E.164, e.g. +14155550123")))
}

/// The country a number typed in national form belongs to: the one most of the account's numbers (or, with no
/// account, of all the numbers) are in; the account's numbers in Twilio when vocals has none of them yet.
async fn country_for(state: &AppState, account: Option<&str>) -> Result<Option<String>, ApiError> {
    let mut codes: Vec<String> = catalog(state)?
        .store()
        .numbers()
        .await?
        .into_iter()
        .filter(|n| account.is_none() || n.twilio_account_sid.as_deref() == account)
        .filter_map(|n| n.e164.country_code().map(str::to_string))
        .collect();
    if let (true, Some(account), Some(p)) = (codes.is_empty(), account, state.twilio.as_ref()) {
        codes = p
            .account_numbers(account)
            .await?
            .iter()
            .filter_map(|n| E164::parse(&n.phone_number).ok()?.country_code().map(str::to_string))
            .collect();
    }
    let mut counts: HashMap<String, usize> = HashMap::new();
    for c in codes {
        *counts.entry(c).or_default() += 1;
    }
    Ok(counts.into_iter().max_by_key(|(c, n)| (*n, std::cmp::Reverse(c.clone()))).map(|(c, _)| c))
}

/// The number as typed: E.164, or a national form of the account's country (see [`country_for`]).
async fn typed_number(state: &AppState, typed: &str, account: Option<&str>) -> Result<E164, ApiError> {
    let typed = typed.trim();
    if let Ok(n) = E164::parse(typed) {
        return Ok(n);
    }
    let international = typed.starts_with('+') || typed.starts_with("00");
    let country = if international { None } else { country_for(state, account).await? };
    E164::parse_national(typed, country.as_deref().unwrap_or_default()).map_err(|e| {
        let message = match (&country, international) {
            (Some(cc), false) => {
                format!("phone_number must be E.164 or a national number of country code +{cc}: {typed:?} is not ({e})")
            }
            (None, false) => format!(
                "phone_number must be E.164, e.g. +14155550123 (a national number needs a country, and no number \
                 is added yet to tell it): not {typed:?}"
            ),
            (_, true) => format!("phone_number must be E.164, e.g. +14155550123: {typed:?} is not ({e})"),
        };
        ApiError::invalid(message).field("phone_number")
    })
}

async fn add_number(State(state): State<Arc<AppState>>, Body(n): Body<AddNumber>) -> Result<Response, ApiError> {
    let catalog = catalog(&state)?;
    let number = typed_number(&state, &n.phone_number, n.twilio_account_sid.as_deref()).await?;
    let srtp = srtp_field(n.srtp.as_deref())?;
    let record = record_field(n.record.as_deref())?;
    let rules = n.rules.filter(|r| r.as_array().is_none_or(|l| !l.is_empty()));
    if let Some(rules) = &rules {
        catalog.store().check_rules(rules).await?;
    }
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
    let added = match record {
        Some(_) => catalog.store().set_number_record(&number, record).await?,
        None => added,
    };
    let added = match &rules {
        Some(rules) => catalog.store().set_number_rules(&number, rules).await?,
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
            ApiError::invalid(format!("agent_id: {what} does not exist")).field("agent_id")
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
    let catalog = catalog(&state)?;
    let numbers: Vec<_> = catalog
        .store()
        .numbers()
        .await?
        .into_iter()
        .filter(|n| q.agent_id.as_ref().is_none_or(|a| n.agent_id.as_ref() == Some(a)))
        .filter(|n| q.status.as_ref().is_none_or(|s| &n.status == s))
        .collect();
    let numbers = numbers_view(&state, numbers).await?;
    let (answered_by, rule) = catalog.directory().fallback_rule();
    Ok(Json(json!({ "numbers": numbers, "other_numbers": {"answered_by": answered_by, "rule": rule} })))
}

/// Numbers as the API shows them: each with its `health` and, for a Twilio number, `routing` (the trunk, its
/// domain and origination URIs as last read from Twilio).
async fn numbers_view(state: &AppState, numbers: Vec<PhoneNumber>) -> Result<Vec<Value>, ApiError> {
    let store = catalog(state)?.store();
    let accounts: HashMap<String, TwilioAccount> =
        store.twilio_accounts().await?.into_iter().map(|a| (a.account_sid.clone(), a)).collect();
    let agents = store.agents().await?;
    let checks = store.agent_checks().await?;
    // Only the agents these numbers use, and only their last few calls: the newest decisive one counts.
    let mut recent = HashMap::new();
    for agent in
        agents.iter().filter(|a| a.kind != "echo" && numbers.iter().any(|n| n.agent_id.as_ref() == Some(&a.id)))
    {
        let query =
            CallQuery { active: Some(false), agent: Some(agent.name.clone()), limit: 10, ..CallQuery::default() };
        recent.insert(agent.name.clone(), store.calls(&query).await?.0);
    }
    let reaches = health::reaches(&agents, &checks, &recent);
    let ours: &[String] = state.twilio.as_ref().map_or(&[], |p| p.origination().sip_urls.as_slice());
    let table = catalog(state)?.directory().current();
    let now = jiff::Timestamp::now();
    let agents: HashMap<&str, &Agent> = agents.iter().map(|a| (a.id.as_str(), a)).collect();
    Ok(numbers
        .iter()
        .map(|n| {
            let account = n.twilio_account_sid.as_ref().and_then(|a| accounts.get(a));
            let agent = n.agent_id.as_deref().and_then(|id| agents.get(id).copied());
            let reach = n.agent_id.as_ref().and_then(|id| reaches.get(id));
            let health = health::number_health(&health::Inputs { number: n, account, ours, agent, reach });
            let routing = account.filter(|_| n.twilio_number_sid.is_some()).map(|a| {
                json!({
                    "trunk_sid": a.trunk_sid,
                    "trunk_domain": a.trunk_domain,
                    "origination": a.origination,
                    "read_at": a.trunk_read_at,
                })
            });
            let mut v = serde_json::to_value(n).unwrap_or_default();
            v["health"] = json!(health);
            v["routing"] = json!(routing);
            v["schedule"] = super::rules::schedule(&table, &n.e164, now);
            v
        })
        .collect())
}

async fn get_number(
    State(state): State<Arc<AppState>>,
    number: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let number = e164_path(&path(number)?)?;
    let found = catalog(&state)?.store().number(&number).await?;
    let found = found.ok_or_else(|| ApiError::not_found(format!("number {number} not found")))?;
    let mut view = numbers_view(&state, vec![found]).await?;
    Ok(Json(view.remove(0)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchNumber {
    #[serde(default, deserialize_with = "nullable")]
    agent_id: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    srtp: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    record: Option<Option<String>>,
    /// The number's routing rules, replaced whole (null or `[]`: none).
    #[serde(default, deserialize_with = "nullable")]
    rules: Option<Option<Value>>,
}

async fn update_number(
    State(state): State<Arc<AppState>>,
    number: Result<Path<String>, PathRejection>,
    Body(p): Body<PatchNumber>,
) -> Result<Response, ApiError> {
    let number = e164_path(&path(number)?)?;
    if p.agent_id.is_none() && p.srtp.is_none() && p.record.is_none() && p.rules.is_none() {
        return Err(ApiError::invalid(
            "agent_id, srtp, record or rules is required: an agent's id to assign (null to unassign), an SRTP \
             policy, whether its calls are recorded, or its routing rules",
        ));
    }
    let srtp = p.srtp.as_ref().map(|s| srtp_field(s.as_deref())).transpose()?;
    let record = p.record.as_ref().map(|r| record_field(r.as_deref())).transpose()?;
    let catalog = catalog(&state)?;
    let rules = p.rules.map(|r| r.unwrap_or_else(|| json!([])));
    if let Some(rules) = &rules {
        catalog.store().check_rules(rules).await?;
    }
    let mut updated = None;
    if let Some(agent_id) = &p.agent_id {
        updated = Some(catalog.store().assign_number(&number, agent_id.as_deref()).await.map_err(agent_ref)?);
    }
    if let Some(srtp) = srtp {
        updated = Some(catalog.store().set_number_srtp(&number, srtp).await?);
    }
    if let Some(record) = record {
        updated = Some(catalog.store().set_number_record(&number, record).await?);
    }
    if let Some(rules) = &rules {
        updated = Some(catalog.store().set_number_rules(&number, rules).await?);
    }
    catalog.changed().await;
    Ok(Json(updated).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RemoveQuery {
    /// `restore` (the default): Twilio gets the number's settings from before vocals back; `leave`: Twilio is
    /// left as it is now.
    twilio: Option<String>,
}

async fn delete_number(
    State(state): State<Arc<AppState>>,
    number: Result<Path<String>, PathRejection>,
    q: Result<Query<RemoveQuery>, QueryRejection>,
) -> Result<StatusCode, ApiError> {
    let number = e164_path(&path(number)?)?;
    let leave = match query(q)?.twilio.as_deref() {
        None | Some("restore") => false,
        Some("leave") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!("twilio must be restore or leave, not {other:?}")));
        }
    };
    let catalog = catalog(&state)?;
    let linked = catalog.store().number(&number).await?.is_some_and(|n| n.twilio_number_sid.is_some());
    let removed = if linked && !leave {
        // Twilio is put back as it was first; if that fails the number stays, in error.
        super::twilio::provisioner(&state)?.remove(&number).await.map_err(ApiError::from)
    } else {
        if linked {
            tracing::info!(%number, "removed from vocals; Twilio left as it is");
        }
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

/// The call's SIP messages, in and out (`messages`, `total`, `elided`), stored when the call is over.
async fn get_call_sip(
    State(state): State<Arc<AppState>>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    insight(&state, path(id)?, crate::store::Insight::Sip).await
}

/// The call's quality timeline (`interval_ms`, `fields`, `samples`: one a second), stored when its media ends.
async fn get_call_timeline(
    State(state): State<Arc<AppState>>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    insight(&state, path(id)?, crate::store::Insight::Timeline).await
}

async fn insight(state: &AppState, id: String, what: crate::store::Insight) -> Result<Response, ApiError> {
    let found = catalog(state)?.store().call_insight(&id, what).await?;
    let Some(value) = found else { return Err(ApiError::not_found(format!("call {id} not found"))) };
    if value.is_null() {
        let why = match what {
            crate::store::Insight::Sip => {
                "has no SIP trace (yet): a trace is stored when its call ends (a refusal's 2 s later), when log.call_trace is on"
            }
            crate::store::Insight::Timeline => {
                "has no quality timeline (yet): it is stored when the call's media ends, for answered calls"
            }
        };
        return Err(ApiError::not_found(format!("call {id} {why}")));
    }
    Ok(Json(value).into_response())
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
