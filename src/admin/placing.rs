//! Placing calls over HTTP: Twilio's own `POST /2010-04-01/Accounts/{AC}/Calls.json` (Basic auth
//! `{AC}:{auth_token}` of the account's trunk — a `[[trunks]]` entry, or a linked account's, whose auth token is
//! its Twilio one; `To`, `From`, `Twiml` or `Url`, `Timeout`, `StatusCallback…`),
//! answered 201 with Twilio's Call resource, `GET …/Calls/{CA}.json` for its status, and the admin API's
//! `POST /v1/calls {agent_id, to, from}`. The request is checked here (the From number must be one of the
//! account's, the TwiML must be the supported subset), the trunk's host resolved, and the call layer queues it
//! behind the trunk's pace.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tokio::sync::oneshot;

use super::v1::ApiError;
use super::{AppState, CallCommand, basic_auth, twilio_error};
use crate::agent::config::{AgentConfig, AgentKind};
use crate::call::outbound::{Hop, OutboundSettings, Refusal, Trunk};
use crate::call::{DialRequest, StatusCallback, constant_time_eq};
use crate::e164::E164;
use crate::routing::Lookup;
use crate::twilio::calls::{CallView, CreateCall, HttpMethod, call_resource, parse_create};
use crate::twilio::twiml::{self, Twiml};

/// What placing calls needs besides the call layer.
pub struct Outbound {
    pub settings: OutboundSettings,
    pub trunks: Arc<Vec<Trunk>>,
    /// The one HTTP client of the process (a `Url`'s TwiML is fetched with it).
    pub http: reqwest::Client,
}

/// How long a `<Stream>`'s WebSocket may take to open once the call is answered (the callee hears silence
/// meanwhile); past it the call is hung up.
const STREAM_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Largest TwiML document fetched from a `Url`.
const MAX_TWIML: usize = 64 * 1024;

/// `POST /2010-04-01/Accounts/{AC}/Calls.json`.
pub async fn create_call(
    State(state): State<Arc<AppState>>,
    Path(account): Path<String>,
    headers: HeaderMap,
    form: Result<Form<Vec<(String, String)>>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Some(out) = state.outbound.clone() else {
        return twilio_error(StatusCode::SERVICE_UNAVAILABLE, 20503, "Outbound calls are not configured");
    };
    let trunk = match authorised(&state, &out, &account, &headers).await {
        Ok(t) => t,
        Err(r) => return r.into_response(),
    };
    let form = match form {
        Ok(Form(form)) => form,
        Err(e) => return twilio_error(StatusCode::BAD_REQUEST, 20001, &format!("Invalid form body: {e}")),
    };
    let create = match parse_create(&form) {
        Ok(c) => c,
        Err(e) => return (status(e.status), Json(e.json())).into_response(),
    };
    if let Err(r) = from_is_the_accounts(&state, &account, &create.from) {
        return r.into_response();
    }
    let sid = fresh_sid();
    let twiml = match (&create.twiml, &create.url) {
        (Some(t), _) => t.clone(),
        (None, Some(url)) => match fetch_twiml(&out.http, url, create.method, &sid, &account, &create).await {
            Ok(t) => t,
            Err(message) => return twilio_error(StatusCode::BAD_REQUEST, 21205, &message),
        },
        (None, None) => return twilio_error(StatusCode::BAD_REQUEST, 21205, "Either Url or Twiml is required"),
    };
    let (agent, parameters) = match twiml {
        Twiml::Connect(stream) => {
            let agent = AgentConfig {
                id: format!("twiml:{sid}"),
                name: stream.name.clone().unwrap_or_else(|| "stream".into()),
                kind: AgentKind::WebSocket,
                url: stream.url.clone(),
                // The account's token: the agent's REST hang-up of this call carries it.
                auth_token: Some(trunk.auth_token.clone()),
                connect_timeout: STREAM_CONNECT_TIMEOUT,
                ..AgentConfig::default()
            };
            (Some(Arc::new(agent)), stream.parameters.clone())
        }
        Twiml::Hangup => (None, Vec::new()),
    };
    let callback = create.status_callback.clone().map(|url| StatusCallback {
        url,
        method: create.status_method,
        events: create.status_events.clone(),
    });
    let trunk = Arc::new(trunk);
    let request = |next_hop| DialRequest {
        trunk: trunk.clone(),
        sid: sid.clone(),
        account_sid: account.clone(),
        to: create.to.clone(),
        from: create.from.clone(),
        agent: agent.clone(),
        parameters: parameters.clone(),
        ring_timeout: Some(create.timeout),
        callback: callback.clone(),
        next_hop,
    };
    match place(&state, &out, &trunk, request).await {
        Ok(view) => (StatusCode::CREATED, Json(call_resource(&view))).into_response(),
        Err(r) => r.into_response(),
    }
}

/// `GET /2010-04-01/Accounts/{AC}/Calls/{CA}.json`: an outbound call's status.
pub async fn get_call(
    State(state): State<Arc<AppState>>,
    Path((account, call)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let resource = format!("/2010-04-01/Accounts/{account}/Calls/{call}");
    let not_found =
        || twilio_error(StatusCode::NOT_FOUND, 20404, &format!("The requested resource {resource} was not found"));
    let Some(out) = state.outbound.clone() else { return not_found() };
    if let Err(r) = authorised(&state, &out, &account, &headers).await {
        return r.into_response();
    }
    let Some(sid) = call.strip_suffix(".json") else { return not_found() };
    let (reply, answer) = oneshot::channel();
    if !state.send(CallCommand::View { sid: sid.to_string(), reply }) {
        return twilio_error(StatusCode::SERVICE_UNAVAILABLE, 20503, "The call layer is busy; try again");
    }
    match tokio::time::timeout(Duration::from_secs(5), answer).await {
        Ok(Ok(Some(view))) if view.account_sid == account => Json(call_resource(&view)).into_response(),
        Ok(Ok(_)) => not_found(),
        _ => twilio_error(StatusCode::SERVICE_UNAVAILABLE, 20503, "The call layer did not answer; try again"),
    }
}

/// `POST /v1/calls {agent_id, to, from}`: the admin API places a call to `to` from `from` (a number of a
/// trunk's account), answered by the agent once picked up.
pub async fn dial(State(state): State<Arc<AppState>>, Json(body): Json<serde_json::Value>) -> Response {
    match dial_inner(&state, &body).await {
        Ok(view) => (StatusCode::CREATED, Json(native(&view))).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn dial_inner(state: &Arc<AppState>, body: &serde_json::Value) -> Result<CallView, ApiError> {
    let invalid = |field: &'static str, message: String| ApiError::invalid(message).field(field);
    let out = state.outbound.clone().ok_or_else(|| ApiError::unavailable("outbound calls are not configured"))?;
    let text = |k: &str| body.get(k).and_then(|v| v.as_str()).map(str::trim).unwrap_or_default().to_string();
    let (agent_id, to, from) = (text("agent_id"), text("to"), text("from"));
    let to = E164::parse(&to).map_err(|e| invalid("to", format!("to: {e}")))?;
    let from = E164::parse(&from).map_err(|e| invalid("from", format!("from: {e}")))?;
    let catalog = state.catalog.clone().ok_or_else(|| ApiError::unavailable("the store is not available"))?;
    let agent = catalog.store().agent(&agent_id).await.map_err(|e| ApiError::unavailable(e.to_string()))?;
    let agent = agent.ok_or_else(|| invalid("agent_id", format!("agent {agent_id:?} not found")))?;
    // Only the server's own numbers: the default agent's fallback for unknown numbers does not make one.
    let account = match catalog.directory().entry(&from) {
        Some(Lookup::Agent { account_sid: Some(a), .. }) => Some(a),
        None | Some(Lookup::Unknown) => {
            return Err(invalid("from", format!("{from} is not a number of this server")));
        }
        Some(_) => None,
    };
    let trunk = match account {
        Some(a) => match out.trunks.iter().find(|t| t.account_sid == a) {
            Some(t) => Some(t.clone()),
            None => match linked(state, &a).await {
                Ok(Some((_, Ok(t)))) => Some(t),
                Ok(_) => None,
                Err(Refused(_, _, message)) => return Err(ApiError::unavailable(message)),
            },
        },
        None if out.trunks.len() == 1 => out.trunks.first().cloned(),
        None => None,
    };
    let trunk = trunk.ok_or_else(|| {
        invalid(
            "from",
            format!(
                "{from} belongs to no account with a trunk for outbound calls ([[trunks]], or a linked account \
                 once one of its numbers is added)"
            ),
        )
    })?;
    let mut config = agent.to_config();
    config.auth_token = Some(trunk.auth_token.clone());
    let sid = fresh_sid();
    let shared = Arc::new(trunk.clone());
    let request = |next_hop| DialRequest {
        trunk: shared.clone(),
        sid: sid.clone(),
        account_sid: trunk.account_sid.clone(),
        to: to.clone(),
        from: from.clone(),
        agent: Some(Arc::new(config.clone())),
        parameters: Vec::new(),
        ring_timeout: None,
        callback: None,
        next_hop,
    };
    place(state, &out, &trunk, request)
        .await
        // The call layer's reason, as the Twilio-compatible answer gives it (queue full, account limit, …).
        .map_err(|Refused(status, _, message)| ApiError::new(status, "not_placed", message))
}

/// The admin API's view of a placed call.
fn native(v: &CallView) -> serde_json::Value {
    json!({"sid": v.sid, "to": v.to, "from": v.from, "status": v.status.as_str(), "direction": v.direction})
}

/// Resolves where the INVITE goes and hands the request to the call layer.
async fn place(
    state: &AppState,
    out: &Outbound,
    trunk: &Trunk,
    request: impl Fn(SocketAddr) -> DialRequest,
) -> Result<CallView, Refused> {
    let hop = out.settings.next_hop(trunk);
    let resolved = tokio::time::timeout(Duration::from_secs(5), tokio::net::lookup_host(hop.authority())).await;
    let Some(next_hop) = resolved.ok().and_then(Result::ok).and_then(|mut a| a.next()) else {
        tracing::warn!(host = %hop.authority(), "outbound call: the trunk's host does not resolve");
        let message = format!("The trunk's host {} could not be resolved", hop.host);
        return Err(Refused(StatusCode::SERVICE_UNAVAILABLE, 20503, message));
    };
    let (reply, answer) = oneshot::channel();
    if !state.send(CallCommand::Dial { request: Box::new(request(next_hop)), reply }) {
        return Err(Refused(StatusCode::SERVICE_UNAVAILABLE, 20503, "The call layer is busy; try again".into()));
    }
    match tokio::time::timeout(Duration::from_secs(5), answer).await {
        Ok(Ok(Ok(view))) => Ok(view),
        Ok(Ok(Err(why))) => {
            tracing::warn!(reason = %why, "outbound call refused");
            let (status, code) = match why {
                Refusal::NoTrunk => (StatusCode::FORBIDDEN, 20003),
                Refusal::QueueFull | Refusal::AccountLimit(_) => (StatusCode::TOO_MANY_REQUESTS, 20429),
                Refusal::Busy => (StatusCode::SERVICE_UNAVAILABLE, 20503),
            };
            Err(Refused(status, code, why.to_string()))
        }
        _ => Err(Refused(StatusCode::SERVICE_UNAVAILABLE, 20503, "The call layer did not answer; try again".into())),
    }
}

/// A Twilio error answer not yet rendered.
struct Refused(StatusCode, u32, String);

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        twilio_error(self.0, self.1, &self.2)
    }
}

/// The trunk of `account` — its `[[trunks]]` entry, else the linked account's — if the request's Basic auth is
/// `{account}:{its auth token}` (a linked account's: its Twilio auth token).
async fn authorised(state: &AppState, out: &Outbound, account: &str, headers: &HeaderMap) -> Result<Trunk, Refused> {
    let unauthorised = || Refused(StatusCode::UNAUTHORIZED, 20003, "Authenticate: wrong or missing credentials".into());
    let (user, password) = basic_auth(headers).ok_or_else(unauthorised)?;
    let (token, trunk) = match out.trunks.iter().find(|t| t.account_sid == account) {
        Some(t) => (t.auth_token.clone(), Ok(t.clone())),
        None => linked(state, account).await?.ok_or_else(unauthorised)?,
    };
    if user != account || !constant_time_eq(token.as_bytes(), password.as_bytes()) {
        return Err(unauthorised());
    }
    trunk
}

/// A linked account's auth token, and its trunk or why it has none yet.
type Linked = (String, Result<Trunk, Refused>);

/// A linked account as an outbound trunk, from the store: its auth token, and the trunk (termination
/// `sip:{domain}`, `;transport=tls` when vocals makes its trunks secure, and the credential vocals created, or none
/// with `termination_auth = "ip"`) or why it has none yet. `None`: not a linked account.
async fn linked(state: &AppState, account: &str) -> Result<Option<Linked>, Refused> {
    let Some(catalog) = &state.catalog else { return Ok(None) };
    let found = catalog.store().twilio_termination(account).await.map_err(|e| {
        tracing::warn!(%account, error = %e, "reading the linked account's trunk");
        Refused(StatusCode::SERVICE_UNAVAILABLE, 20503, "The account's trunk could not be read; try again".into())
    })?;
    let Some(t) = found else { return Ok(None) };
    let secure = state.twilio.as_ref().is_some_and(|p| p.origination().secure);
    let by_address = state.twilio.as_ref().is_some_and(|p| p.termination().is_ip());
    let none_yet = || {
        let message = "The account has no trunk for outbound calls yet: add one of its numbers to vocals (or \
                       retry one in error)";
        Refused(StatusCode::FORBIDDEN, 20003, message.into())
    };
    // Only a trunk vocals finished setting up: its domain, and the credential it signs in with or, when the trunk
    // knows the nodes by their addresses, the IP access control list (and then no credentials).
    let credentials = match (by_address, &t.ip_acl_sid, &t.username, &t.password) {
        (true, Some(_), _, _) => Some((None, None)),
        (false, _, Some(username), Some(password)) => Some((Some(username.clone()), Some(password.clone()))),
        _ => None,
    };
    let trunk = match (&t.domain, credentials) {
        (Some(domain), Some((username, password))) => {
            let uri = format!("sip:{domain}{}", if secure { ";transport=tls" } else { "" });
            Hop::parse(&uri)
                .map(|termination| Trunk {
                    account_sid: t.account_sid.clone(),
                    auth_token: t.auth_token.clone(),
                    termination,
                    username,
                    password,
                })
                .map_err(|e| {
                    tracing::warn!(%account, error = %e, "the linked account's trunk domain is not a SIP host");
                    none_yet()
                })
        }
        _ => Err(none_yet()),
    };
    Ok(Some((t.auth_token, trunk)))
}

/// The From number must be one of the account's (Twilio requires a number or verified caller ID it has).
fn from_is_the_accounts(state: &AppState, account: &str, from: &E164) -> Result<(), Refused> {
    let Some(catalog) = &state.catalog else { return Ok(()) };
    // Only the server's own numbers: the default agent's fallback for unknown numbers does not make one.
    let ok = match catalog.directory().entry(from) {
        Some(Lookup::Agent { account_sid, .. }) => account_sid.as_deref().is_none_or(|a| a == account),
        Some(Lookup::Unassigned) => true,
        None | Some(Lookup::Unknown) => false,
    };
    if ok {
        return Ok(());
    }
    let message = format!("The source phone number provided, {from}, is not yet verified for your account");
    Err(Refused(StatusCode::BAD_REQUEST, 21210, message))
}

/// Fetches a `Url`'s TwiML with the call's parameters, as Twilio does (here before the call is placed).
async fn fetch_twiml(
    http: &reqwest::Client,
    url: &str,
    method: HttpMethod,
    sid: &str,
    account: &str,
    create: &CreateCall,
) -> Result<Twiml, String> {
    let params = [
        ("CallSid", sid.to_string()),
        ("AccountSid", account.to_string()),
        ("From", create.from.to_string()),
        ("To", create.to.to_string()),
        ("CallStatus", "queued".to_string()),
        ("ApiVersion", "2010-04-01".to_string()),
        ("Direction", "outbound-api".to_string()),
    ];
    let request = match method {
        HttpMethod::Get => {
            let mut u = reqwest::Url::parse(url).map_err(|e| format!("Url {url} is not a URL: {e}"))?;
            u.query_pairs_mut().extend_pairs(params.iter().map(|(k, v)| (*k, v.as_str())));
            http.get(u)
        }
        HttpMethod::Post => http.post(url).form(&params),
    };
    let response = request.send().await.map_err(|e| format!("Url {url} could not be fetched: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("Url {url} answered {}", response.status()));
    }
    if response.content_length().is_some_and(|n| n as usize > MAX_TWIML) {
        return Err(format!("Url {url} answered more than {MAX_TWIML} bytes"));
    }
    let body = response.bytes().await.map_err(|e| format!("Url {url} could not be read: {e}"))?;
    if body.len() > MAX_TWIML {
        return Err(format!("Url {url} answered more than {MAX_TWIML} bytes"));
    }
    let text = std::str::from_utf8(&body).map_err(|_| format!("Url {url} answered text that is not UTF-8"))?;
    twiml::parse(text).map_err(|e| format!("Url {url} answered TwiML vocals cannot run: {e}"))
}

/// A CallSid: random (the OS CSPRNG).
fn fresh_sid() -> String {
    let (a, b) = (crate::media::srtp::os_random_u64(), crate::media::srtp::os_random_u64());
    format!("CA{a:016x}{b:016x}")
}

fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST)
}
