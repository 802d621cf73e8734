//! A local Twilio stand-in for the subset vocals uses (TWILIO.md §4): the 2010-04-01 API's
//! IncomingPhoneNumbers, SIP CredentialLists with their Credentials and SIP IpAccessControlLists with their
//! IpAddresses, and the trunking v1 API's Trunks (created and updated), OriginationUrls, trunk PhoneNumbers, trunk
//! CredentialLists and trunk IpAccessControlLists, with each dialect's paths, envelopes, paging and errors (the
//! lists' own in `credentials` and `ip_acl`); HTTP Basic auth (401/20003); 404/20404; `trunk_sid` and
//! `voice_application_sid` clearing each other; deleting a trunk detaching its numbers; a number attached to a
//! second trunk moving silently; and injectable failures (429, 500, any status) and latency. It runs on its own
//! runtime on a loopback port; tests read and change its state directly.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use serde_json::{Value, json};

pub mod credentials;
pub mod ip_acl;

pub use credentials::{CredentialList, SipCredential};
pub use ip_acl::{IpAccessControlList, IpAddress};

/// An IncomingPhoneNumber.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Number {
    pub account_sid: String,
    pub sid: String,
    pub phone_number: String,
    pub friendly_name: String,
    pub voice_url: Option<String>,
    pub voice_method: String,
    pub voice_fallback_url: Option<String>,
    pub voice_fallback_method: String,
    pub voice_application_sid: Option<String>,
    pub trunk_sid: Option<String>,
    pub status_callback: Option<String>,
    pub status_callback_method: String,
    pub voice: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Trunk {
    pub account_sid: String,
    pub sid: String,
    pub friendly_name: String,
    pub domain_name: String,
    pub transfer_mode: String,
    /// Secure Trunking: TLS signalling and SRTP media required.
    pub secure: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct OriginationUrl {
    pub trunk_sid: String,
    pub sid: String,
    pub sip_url: String,
    pub priority: u32,
    pub weight: u32,
    pub enabled: bool,
    pub friendly_name: String,
}

/// A failure to answer instead of the real thing: the next `times` requests whose method matches and whose
/// path contains `path`.
#[derive(Clone, Debug)]
pub struct Fault {
    pub method: Method,
    pub path: String,
    pub status: u16,
    pub code: u32,
    pub message: String,
    pub times: u32,
}

#[derive(Debug, Default)]
pub struct TwilioState {
    /// Account SID -> auth token.
    pub accounts: BTreeMap<String, String>,
    pub numbers: BTreeMap<String, Number>,
    pub trunks: BTreeMap<String, Trunk>,
    pub origination_urls: BTreeMap<String, OriginationUrl>,
    pub credential_lists: BTreeMap<String, CredentialList>,
    pub sip_credentials: BTreeMap<String, SipCredential>,
    /// (trunk SID, credential list SID): the lists each trunk authenticates termination against.
    pub trunk_credential_lists: BTreeSet<(String, String)>,
    pub ip_acls: BTreeMap<String, IpAccessControlList>,
    pub ip_addresses: BTreeMap<String, IpAddress>,
    /// (trunk SID, IP access control list SID): the lists whose addresses each trunk takes termination from.
    pub trunk_ip_acls: BTreeSet<(String, String)>,
    pub faults: Vec<Fault>,
    pub latency: Duration,
    /// Every request: method and path with query.
    pub requests: Vec<(String, String)>,
    next_sid: u64,
}

impl TwilioState {
    pub fn sid(&mut self, prefix: &str) -> String {
        self.next_sid += 1;
        format!("{prefix}{:032x}", 0xabc0_0000_u64 + self.next_sid)
    }
}

/// The running stand-in.
pub struct Twilio {
    pub state: Arc<Mutex<TwilioState>>,
    pub base: String,
    _rt: tokio::runtime::Runtime,
}

impl Twilio {
    pub fn start() -> Twilio {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(TwilioState::default()));
        let app = router(Shared { state: state.clone(), base: base.clone() });
        rt.spawn(async move { axum::serve(listener, app).await });
        Twilio { state, base, _rt: rt }
    }

    /// Adds an account.
    pub fn account(&self, sid: &str, token: &str) {
        self.state.lock().unwrap().accounts.insert(sid.into(), token.into());
    }

    /// Adds a voice-capable number to an account, with a voice URL (as a number bought for TwiML would have);
    /// returns its SID.
    pub fn number(&self, account: &str, phone: &str) -> String {
        let mut s = self.state.lock().unwrap();
        let sid = s.sid("PN");
        let number = Number {
            account_sid: account.into(),
            sid: sid.clone(),
            phone_number: phone.into(),
            friendly_name: phone.into(),
            voice_url: Some("https://demo.twilio.com/welcome/voice/".into()),
            voice_method: "POST".into(),
            voice_fallback_method: "POST".into(),
            status_callback_method: "POST".into(),
            voice: true,
            ..Number::default()
        };
        s.numbers.insert(sid.clone(), number);
        sid
    }

    pub fn get(&self, sid: &str) -> Number {
        self.state.lock().unwrap().numbers.get(sid).cloned().expect("no such number")
    }

    pub fn update(&self, sid: &str, change: impl FnOnce(&mut Number)) {
        change(self.state.lock().unwrap().numbers.get_mut(sid).expect("no such number"));
    }

    /// Fails the next `times` matching requests with `status` and Twilio error `code`.
    pub fn fail(&self, method: Method, path: &str, status: u16, code: u32, times: u32) {
        let message = format!("Injected failure {code}");
        self.state.lock().unwrap().faults.push(Fault { method, path: path.into(), status, code, message, times });
    }

    pub fn set_latency(&self, latency: Duration) {
        self.state.lock().unwrap().latency = latency;
    }

    pub fn requests(&self) -> Vec<(String, String)> {
        self.state.lock().unwrap().requests.clone()
    }
}

#[derive(Clone)]
struct Shared {
    state: Arc<Mutex<TwilioState>>,
    base: String,
}

fn router(shared: Shared) -> Router {
    Router::new()
        .route("/2010-04-01/Accounts/{account}/IncomingPhoneNumbers.json", get(list_numbers))
        .route(
            "/2010-04-01/Accounts/{account}/IncomingPhoneNumbers/{file}",
            get(get_number).post(update_number).delete(release_number),
        )
        .route("/v1/Trunks", get(list_trunks).post(create_trunk))
        .route("/v1/Trunks/{trunk}", get(get_trunk).post(update_trunk).delete(delete_trunk))
        .route("/v1/Trunks/{trunk}/OriginationUrls", get(list_urls).post(create_url))
        .route("/v1/Trunks/{trunk}/OriginationUrls/{url}", axum::routing::delete(delete_url))
        .route("/v1/Trunks/{trunk}/PhoneNumbers", get(list_trunk_numbers).post(attach))
        .route("/v1/Trunks/{trunk}/PhoneNumbers/{number}", axum::routing::delete(detach))
        .merge(credentials::routes())
        .merge(ip_acl::routes())
        .layer(axum::middleware::from_fn_with_state(shared.clone(), gate))
        .with_state(shared)
}

fn error(status: u16, code: u32, message: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status.as_u16(),
    });
    (status, Json(body)).into_response()
}

fn not_found(path: &str) -> Response {
    error(404, 20404, &format!("The requested resource {path} was not found"))
}

/// The authenticated account, from HTTP Basic.
fn account_of(headers: &HeaderMap, state: &TwilioState) -> Option<String> {
    let value = headers.get("authorization")?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    (state.accounts.get(user)? == password).then(|| user.to_string())
}

/// Records the request, applies latency and injected faults, and checks the credentials.
async fn gate(State(shared): State<Shared>, req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let (latency, fault) = {
        let mut s = shared.state.lock().unwrap();
        let path = req.uri().path_and_query().map(|p| p.to_string()).unwrap_or_default();
        s.requests.push((req.method().to_string(), path.clone()));
        let fault = s.faults.iter_mut().find(|f| f.times > 0 && f.method == req.method() && path.contains(&f.path));
        let fault = fault.map(|f| {
            f.times -= 1;
            f.clone()
        });
        (s.latency, fault)
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if let Some(f) = fault {
        return error(f.status, f.code, &f.message);
    }
    let authorised = account_of(req.headers(), &shared.state.lock().unwrap()).is_some();
    if !authorised {
        return error(401, 20003, "Authenticate");
    }
    next.run(req).await
}

fn form(body: &Bytes) -> BTreeMap<String, String> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body).unwrap_or_default().into_iter().collect()
}

fn rfc2822() -> &'static str {
    "Wed, 25 Nov 2026 10:00:00 +0000"
}

fn number_json(n: &Number) -> Value {
    json!({
        "sid": n.sid,
        "account_sid": n.account_sid,
        "phone_number": n.phone_number,
        "friendly_name": n.friendly_name,
        "voice_url": n.voice_url,
        "voice_method": n.voice_method,
        "voice_fallback_url": n.voice_fallback_url,
        "voice_fallback_method": n.voice_fallback_method,
        "voice_application_sid": n.voice_application_sid,
        "trunk_sid": n.trunk_sid,
        "status_callback": n.status_callback,
        "status_callback_method": n.status_callback_method,
        "capabilities": {"voice": n.voice, "sms": true, "mms": false, "fax": false},
        "date_created": rfc2822(),
        "date_updated": rfc2822(),
        "api_version": "2010-04-01",
        "uri": format!("/2010-04-01/Accounts/{}/IncomingPhoneNumbers/{}.json", n.account_sid, n.sid),
    })
}

/// The caller's account, which must be the one in the path (Twilio answers 20404 for another's).
#[allow(clippy::result_large_err)]
fn path_account(headers: &HeaderMap, s: &TwilioState, account: &str) -> Result<String, Response> {
    let me = account_of(headers, s).ok_or_else(|| error(401, 20003, "Authenticate"))?;
    if me != account {
        return Err(not_found(&format!("/2010-04-01/Accounts/{account}")));
    }
    Ok(me)
}

async fn list_numbers(
    State(shared): State<Shared>,
    Path(account): Path<String>,
    Query(q): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let s = shared.state.lock().unwrap();
    if let Err(r) = path_account(&headers, &s, &account) {
        return r;
    }
    let page_size: usize = q.get("PageSize").and_then(|p| p.parse().ok()).unwrap_or(50).clamp(1, 1000);
    let page: usize = q.get("Page").and_then(|p| p.parse().ok()).unwrap_or(0);
    let filter = q.get("PhoneNumber");
    let all: Vec<&Number> = s
        .numbers
        .values()
        .filter(|n| n.account_sid == account && filter.is_none_or(|f| &n.phone_number == f))
        .collect();
    let items: Vec<Value> = all.iter().skip(page * page_size).take(page_size).map(|n| number_json(n)).collect();
    let uri =
        |p: usize| format!("/2010-04-01/Accounts/{account}/IncomingPhoneNumbers.json?PageSize={page_size}&Page={p}");
    let more = (page + 1) * page_size < all.len();
    let start = page * page_size;
    Json(json!({
        "first_page_uri": uri(0),
        "next_page_uri": if more { Value::String(uri(page + 1)) } else { Value::Null },
        "previous_page_uri": if page > 0 { Value::String(uri(page - 1)) } else { Value::Null },
        "uri": uri(page),
        "page": page,
        "page_size": page_size,
        "start": start,
        "end": start + items.len().saturating_sub(1),
        "incoming_phone_numbers": items,
    }))
    .into_response()
}

fn number_sid(file: &str) -> Option<&str> {
    file.strip_suffix(".json")
}

async fn get_number(
    State(shared): State<Shared>,
    Path((account, file)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let s = shared.state.lock().unwrap();
    if let Err(r) = path_account(&headers, &s, &account) {
        return r;
    }
    match number_sid(&file).and_then(|sid| s.numbers.get(sid)).filter(|n| n.account_sid == account) {
        Some(n) => Json(number_json(n)).into_response(),
        None => not_found(uri.path()),
    }
}

async fn update_number(
    State(shared): State<Shared>,
    Path((account, file)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    let mut s = shared.state.lock().unwrap();
    if let Err(r) = path_account(&headers, &s, &account) {
        return r;
    }
    let Some(sid) = number_sid(&file).map(str::to_string) else { return not_found(uri.path()) };
    let f = form(&body);
    if let Some(trunk) = f.get("TrunkSid").filter(|t| !t.is_empty())
        && s.trunks.get(trunk).is_none_or(|t| t.account_sid != account)
    {
        return error(400, 21248, &format!("TrunkSid {trunk} is not valid"));
    }
    let Some(n) = s.numbers.get_mut(&sid).filter(|n| n.account_sid == account) else { return not_found(uri.path()) };
    let opt = |v: &String| if v.is_empty() { None } else { Some(v.clone()) };
    for (key, value) in &f {
        match key.as_str() {
            "VoiceUrl" => n.voice_url = opt(value),
            "VoiceMethod" => n.voice_method = value.clone(),
            "VoiceFallbackUrl" => n.voice_fallback_url = opt(value),
            "VoiceFallbackMethod" => n.voice_fallback_method = value.clone(),
            "StatusCallback" => n.status_callback = opt(value),
            "StatusCallbackMethod" => n.status_callback_method = value.clone(),
            "FriendlyName" => n.friendly_name = value.clone(),
            "VoiceApplicationSid" => {
                n.voice_application_sid = opt(value);
                if n.voice_application_sid.is_some() {
                    n.trunk_sid = None;
                }
            }
            "TrunkSid" => {
                n.trunk_sid = opt(value);
                if n.trunk_sid.is_some() {
                    n.voice_application_sid = None;
                }
            }
            other => return error(400, 20001, &format!("Unknown parameter {other}")),
        }
    }
    Json(number_json(n)).into_response()
}

/// Releasing a number gives it up for good: vocals must never do this. Recorded (the request log) and done.
async fn release_number(
    State(shared): State<Shared>,
    Path((account, file)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let mut s = shared.state.lock().unwrap();
    if let Err(r) = path_account(&headers, &s, &account) {
        return r;
    }
    match number_sid(&file).and_then(|sid| s.numbers.remove(sid)) {
        Some(_) => StatusCode::NO_CONTENT.into_response(),
        None => not_found(uri.path()),
    }
}

fn trunk_json(base: &str, t: &Trunk) -> Value {
    json!({
        "sid": t.sid,
        "account_sid": t.account_sid,
        "friendly_name": t.friendly_name,
        "domain_name": t.domain_name,
        "transfer_mode": t.transfer_mode,
        "secure": t.secure,
        "date_created": "2026-11-25T10:00:00Z",
        "date_updated": "2026-11-25T10:00:00Z",
        "url": format!("{base}/v1/Trunks/{}", t.sid),
    })
}

fn url_json(base: &str, account: &str, o: &OriginationUrl) -> Value {
    json!({
        "sid": o.sid,
        "account_sid": account,
        "trunk_sid": o.trunk_sid,
        "sip_url": o.sip_url,
        "priority": o.priority,
        "weight": o.weight,
        "enabled": o.enabled,
        "friendly_name": o.friendly_name,
        "date_created": "2026-11-25T10:00:00Z",
        "url": format!("{base}/v1/Trunks/{}/OriginationUrls/{}", o.trunk_sid, o.sid),
    })
}

/// A trunking v1 page: `{"<key>": [...], "meta": {...}}` with absolute URLs.
fn page(base: &str, path: &str, key: &str, items: Vec<Value>, q: &BTreeMap<String, String>) -> Response {
    let page_size: usize = q.get("PageSize").and_then(|p| p.parse().ok()).unwrap_or(50).clamp(1, 1000);
    let page: usize = q.get("Page").and_then(|p| p.parse().ok()).unwrap_or(0);
    let url = |p: usize| format!("{base}{path}?PageSize={page_size}&Page={p}");
    let more = (page + 1) * page_size < items.len();
    let shown: Vec<Value> = items.into_iter().skip(page * page_size).take(page_size).collect();
    Json(json!({
        key: shown,
        "meta": {
            "page": page,
            "page_size": page_size,
            "first_page_url": url(0),
            "previous_page_url": if page > 0 { Value::String(url(page - 1)) } else { Value::Null },
            "url": url(page),
            "next_page_url": if more { Value::String(url(page + 1)) } else { Value::Null },
            "key": key,
        }
    }))
    .into_response()
}

fn me(headers: &HeaderMap, s: &TwilioState) -> String {
    account_of(headers, s).unwrap_or_default()
}

async fn list_trunks(
    State(shared): State<Shared>,
    Query(q): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let s = shared.state.lock().unwrap();
    let me = me(&headers, &s);
    let items = s.trunks.values().filter(|t| t.account_sid == me).map(|t| trunk_json(&shared.base, t)).collect();
    page(&shared.base, "/v1/Trunks", "trunks", items, &q)
}

async fn create_trunk(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let mut s = shared.state.lock().unwrap();
    let me = me(&headers, &s);
    let f = form(&body);
    let domain = f.get("DomainName").cloned().unwrap_or_default();
    if !domain.is_empty() {
        if !domain.ends_with(".pstn.twilio.com") {
            return error(400, 21245, "DomainName must end with .pstn.twilio.com");
        }
        // Domain names are unique across all of Twilio (the code is an inference).
        if s.trunks.values().any(|t| t.domain_name == domain) {
            return error(409, 21248, &format!("DomainName {domain} is already in use"));
        }
    }
    let sid = s.sid("TK");
    let trunk = Trunk {
        account_sid: me,
        sid: sid.clone(),
        friendly_name: f.get("FriendlyName").cloned().unwrap_or_default(),
        domain_name: domain,
        transfer_mode: f.get("TransferMode").cloned().unwrap_or_else(|| "disable-all".into()),
        secure: f.get("Secure").is_some_and(|v| v == "true"),
    };
    let json = trunk_json(&shared.base, &trunk);
    s.trunks.insert(sid, trunk);
    (StatusCode::CREATED, Json(json)).into_response()
}

fn own_trunk<'a>(s: &'a TwilioState, me: &str, trunk: &str) -> Option<&'a Trunk> {
    s.trunks.get(trunk).filter(|t| t.account_sid == me)
}

async fn get_trunk(State(shared): State<Shared>, Path(trunk): Path<String>, headers: HeaderMap, uri: Uri) -> Response {
    let s = shared.state.lock().unwrap();
    match own_trunk(&s, &me(&headers, &s), &trunk) {
        Some(t) => Json(trunk_json(&shared.base, t)).into_response(),
        None => not_found(uri.path()),
    }
}

/// Deleting a trunk detaches its numbers and removes its origination URLs.
async fn delete_trunk(
    State(shared): State<Shared>,
    Path(trunk): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let mut s = shared.state.lock().unwrap();
    if own_trunk(&s, &me(&headers, &s), &trunk).is_none() {
        return not_found(uri.path());
    }
    s.trunks.remove(&trunk);
    s.origination_urls.retain(|_, o| o.trunk_sid != trunk);
    s.trunk_credential_lists.retain(|(t, _)| *t != trunk);
    s.trunk_ip_acls.retain(|(t, _)| *t != trunk);
    for n in s.numbers.values_mut().filter(|n| n.trunk_sid.as_deref() == Some(trunk.as_str())) {
        n.trunk_sid = None;
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn list_urls(
    State(shared): State<Shared>,
    Path(trunk): Path<String>,
    Query(q): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let s = shared.state.lock().unwrap();
    let me = me(&headers, &s);
    if own_trunk(&s, &me, &trunk).is_none() {
        return not_found(uri.path());
    }
    let items =
        s.origination_urls.values().filter(|o| o.trunk_sid == trunk).map(|o| url_json(&shared.base, &me, o)).collect();
    page(&shared.base, &format!("/v1/Trunks/{trunk}/OriginationUrls"), "origination_urls", items, &q)
}

async fn create_url(
    State(shared): State<Shared>,
    Path(trunk): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    let mut s = shared.state.lock().unwrap();
    let me = me(&headers, &s);
    if own_trunk(&s, &me, &trunk).is_none() {
        return not_found(uri.path());
    }
    let f = form(&body);
    for required in ["FriendlyName", "SipUrl", "Priority", "Weight", "Enabled"] {
        if !f.contains_key(required) {
            return error(400, 20001, &format!("Missing required parameter {required} in the post body"));
        }
    }
    let number = |k: &str| f[k].parse::<u32>().ok().filter(|n| *n <= 65535);
    let (Some(priority), Some(weight)) = (number("Priority"), number("Weight")) else {
        return error(400, 20001, "Priority and Weight must be numbers from 0 to 65535");
    };
    if !f["SipUrl"].starts_with("sip:") {
        return error(400, 21201, "SipUrl must be a sip: URI");
    }
    let sid = s.sid("OU");
    let o = OriginationUrl {
        trunk_sid: trunk,
        sid: sid.clone(),
        sip_url: f["SipUrl"].clone(),
        priority,
        weight,
        enabled: f["Enabled"].eq_ignore_ascii_case("true"),
        friendly_name: f["FriendlyName"].clone(),
    };
    let json = url_json(&shared.base, &me, &o);
    s.origination_urls.insert(sid, o);
    (StatusCode::CREATED, Json(json)).into_response()
}

async fn delete_url(
    State(shared): State<Shared>,
    Path((trunk, url)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let mut s = shared.state.lock().unwrap();
    if own_trunk(&s, &me(&headers, &s), &trunk).is_none() || s.origination_urls.remove(&url).is_none() {
        return not_found(uri.path());
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn list_trunk_numbers(
    State(shared): State<Shared>,
    Path(trunk): Path<String>,
    Query(q): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let s = shared.state.lock().unwrap();
    if own_trunk(&s, &me(&headers, &s), &trunk).is_none() {
        return not_found(uri.path());
    }
    let items =
        s.numbers.values().filter(|n| n.trunk_sid.as_deref() == Some(trunk.as_str())).map(number_json).collect();
    page(&shared.base, &format!("/v1/Trunks/{trunk}/PhoneNumbers"), "phone_numbers", items, &q)
}

/// Attaching moves a number from whatever trunk or application it was on, silently.
async fn attach(
    State(shared): State<Shared>,
    Path(trunk): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    let mut s = shared.state.lock().unwrap();
    let me = me(&headers, &s);
    if own_trunk(&s, &me, &trunk).is_none() {
        return not_found(uri.path());
    }
    let f = form(&body);
    let Some(pn) = f.get("PhoneNumberSid") else {
        return error(400, 20001, "Missing required parameter PhoneNumberSid in the post body");
    };
    let Some(n) = s.numbers.get_mut(pn).filter(|n| n.account_sid == me) else {
        return error(400, 21421, &format!("PhoneNumberSid {pn} is not valid"));
    };
    n.trunk_sid = Some(trunk);
    n.voice_application_sid = None;
    (StatusCode::CREATED, Json(number_json(n))).into_response()
}

async fn detach(
    State(shared): State<Shared>,
    Path((trunk, number)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let mut s = shared.state.lock().unwrap();
    let me = me(&headers, &s);
    if own_trunk(&s, &me, &trunk).is_none() {
        return not_found(uri.path());
    }
    match s.numbers.get_mut(&number).filter(|n| n.trunk_sid.as_deref() == Some(trunk.as_str())) {
        Some(n) => {
            n.trunk_sid = None;
            StatusCode::NO_CONTENT.into_response()
        }
        None => not_found(uri.path()),
    }
}

/// Updating a trunk: `FriendlyName`, `DomainName` (checked as when created), `TransferMode`, `Secure`.
async fn update_trunk(
    State(shared): State<Shared>,
    Path(trunk): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    let mut s = shared.state.lock().unwrap();
    if own_trunk(&s, &me(&headers, &s), &trunk).is_none() {
        return not_found(uri.path());
    }
    let f = form(&body);
    if let Some(domain) = f.get("DomainName").filter(|d| !d.is_empty()) {
        if !domain.ends_with(".pstn.twilio.com") {
            return error(400, 21245, "DomainName must end with .pstn.twilio.com");
        }
        if s.trunks.values().any(|t| t.domain_name == *domain && t.sid != trunk) {
            return error(409, 21248, &format!("DomainName {domain} is already in use"));
        }
    }
    let t = s.trunks.get_mut(&trunk).expect("checked above");
    for (key, value) in &f {
        match key.as_str() {
            "FriendlyName" => t.friendly_name = value.clone(),
            "DomainName" => t.domain_name = value.clone(),
            "TransferMode" => t.transfer_mode = value.clone(),
            "Secure" => t.secure = value == "true",
            other => return error(400, 20001, &format!("Unknown parameter {other}")),
        }
    }
    Json(trunk_json(&shared.base, t)).into_response()
}

/// A 2010-04-01 page: `{"<key>": [...], "next_page_uri": …, …}` with relative URIs.
fn page_v2010(path: &str, key: &str, items: Vec<Value>, q: &BTreeMap<String, String>) -> Response {
    let page_size: usize = q.get("PageSize").and_then(|p| p.parse().ok()).unwrap_or(50).clamp(1, 1000);
    let page: usize = q.get("Page").and_then(|p| p.parse().ok()).unwrap_or(0);
    let uri = |p: usize| format!("{path}?PageSize={page_size}&Page={p}");
    let more = (page + 1) * page_size < items.len();
    let start = page * page_size;
    let shown: Vec<Value> = items.into_iter().skip(start).take(page_size).collect();
    Json(json!({
        "first_page_uri": uri(0),
        "next_page_uri": if more { Value::String(uri(page + 1)) } else { Value::Null },
        "previous_page_uri": if page > 0 { Value::String(uri(page - 1)) } else { Value::Null },
        "uri": uri(page),
        "page": page,
        "page_size": page_size,
        "start": start,
        "end": start + shown.len().saturating_sub(1),
        key: shown,
    }))
    .into_response()
}
