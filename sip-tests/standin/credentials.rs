//! The stand-in's SIP CredentialLists (2010-04-01) with their Credentials, and the trunking v1 trunk
//! CredentialLists: a credential's password checked against Twilio's rules (at least 12 characters, a digit, an
//! upper- and a lower-case letter), deleting a list deleting its credentials and taking it off every trunk.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde_json::{Value, json};

use super::{
    Shared, TwilioState, error, form, me, not_found, number_sid, own_trunk, page, page_v2010, path_account, rfc2822,
};

pub(super) fn routes() -> Router<Shared> {
    Router::new()
        .route("/2010-04-01/Accounts/{account}/SIP/CredentialLists.json", get(list_cls).post(create_cl))
        .route("/2010-04-01/Accounts/{account}/SIP/CredentialLists/{list}", get(get_cl).delete(delete_cl))
        .route(
            "/2010-04-01/Accounts/{account}/SIP/CredentialLists/{list}/Credentials.json",
            get(list_credentials).post(create_credential),
        )
        .route(
            "/2010-04-01/Accounts/{account}/SIP/CredentialLists/{list}/Credentials/{file}",
            delete(delete_credential),
        )
        .route("/v1/Trunks/{trunk}/CredentialLists", get(list_trunk_cls).post(associate_cl))
        .route("/v1/Trunks/{trunk}/CredentialLists/{list}", get(get_trunk_cl).delete(disassociate_cl))
}

/// A SIP CredentialList (2010-04-01).
#[derive(Clone, Debug, PartialEq)]
pub struct CredentialList {
    pub account_sid: String,
    pub sid: String,
    pub friendly_name: String,
}

/// A credential of a list; the password is kept so tests can check what vocals signs in with (Twilio never
/// answers it).
#[derive(Clone, Debug, PartialEq)]
pub struct SipCredential {
    pub credential_list_sid: String,
    pub sid: String,
    pub username: String,
    pub password: String,
}

fn cl_json(l: &CredentialList) -> Value {
    let uri = format!("/2010-04-01/Accounts/{}/SIP/CredentialLists/{}", l.account_sid, l.sid);
    json!({
        "sid": l.sid,
        "account_sid": l.account_sid,
        "friendly_name": l.friendly_name,
        "date_created": rfc2822(),
        "date_updated": rfc2822(),
        "subresource_uris": {"credentials": format!("{uri}/Credentials.json")},
        "uri": format!("{uri}.json"),
    })
}

fn credential_json(account: &str, c: &SipCredential) -> Value {
    json!({
        "sid": c.sid,
        "account_sid": account,
        "credential_list_sid": c.credential_list_sid,
        "username": c.username,
        "date_created": rfc2822(),
        "date_updated": rfc2822(),
        "uri": format!(
            "/2010-04-01/Accounts/{account}/SIP/CredentialLists/{}/Credentials/{}.json",
            c.credential_list_sid, c.sid
        ),
    })
}

/// Twilio's rules for a SIP credential's password.
pub fn meets_password_rules(p: &str) -> bool {
    p.chars().count() >= 12
        && p.chars().any(|c| c.is_ascii_digit())
        && p.chars().any(|c| c.is_ascii_uppercase())
        && p.chars().any(|c| c.is_ascii_lowercase())
}

async fn list_cls(
    State(shared): State<Shared>,
    Path(account): Path<String>,
    Query(q): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let s = shared.state.lock().unwrap();
    if let Err(r) = path_account(&headers, &s, &account) {
        return r;
    }
    let items = s.credential_lists.values().filter(|l| l.account_sid == account).map(cl_json).collect();
    page_v2010(&format!("/2010-04-01/Accounts/{account}/SIP/CredentialLists.json"), "credential_lists", items, &q)
}

async fn create_cl(
    State(shared): State<Shared>,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut s = shared.state.lock().unwrap();
    if let Err(r) = path_account(&headers, &s, &account) {
        return r;
    }
    let f = form(&body);
    let Some(name) = f.get("FriendlyName").filter(|n| !n.is_empty()) else {
        return error(400, 20001, "Missing required parameter FriendlyName in the post body");
    };
    if name.chars().count() > 64 {
        return error(400, 20001, "FriendlyName must be at most 64 characters");
    }
    let sid = s.sid("CL");
    let list = CredentialList { account_sid: account, sid: sid.clone(), friendly_name: name.clone() };
    let json = cl_json(&list);
    s.credential_lists.insert(sid, list);
    (StatusCode::CREATED, Json(json)).into_response()
}

fn own_cl<'a>(s: &'a TwilioState, account: &str, list: &str) -> Option<&'a CredentialList> {
    s.credential_lists.get(list).filter(|l| l.account_sid == account)
}

async fn get_cl(
    State(shared): State<Shared>,
    Path((account, file)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let s = shared.state.lock().unwrap();
    if let Err(r) = path_account(&headers, &s, &account) {
        return r;
    }
    match number_sid(&file).and_then(|sid| own_cl(&s, &account, sid)) {
        Some(l) => Json(cl_json(l)).into_response(),
        None => not_found(uri.path()),
    }
}

/// Deleting a list deletes its credentials and takes it off every trunk.
async fn delete_cl(
    State(shared): State<Shared>,
    Path((account, file)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let mut s = shared.state.lock().unwrap();
    if let Err(r) = path_account(&headers, &s, &account) {
        return r;
    }
    let Some(sid) = number_sid(&file).filter(|sid| own_cl(&s, &account, sid).is_some()).map(str::to_string) else {
        return not_found(uri.path());
    };
    s.credential_lists.remove(&sid);
    s.sip_credentials.retain(|_, c| c.credential_list_sid != sid);
    s.trunk_credential_lists.retain(|(_, l)| *l != sid);
    StatusCode::NO_CONTENT.into_response()
}

async fn list_credentials(
    State(shared): State<Shared>,
    Path((account, list)): Path<(String, String)>,
    Query(q): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let s = shared.state.lock().unwrap();
    if let Err(r) = path_account(&headers, &s, &account) {
        return r;
    }
    if own_cl(&s, &account, &list).is_none() {
        return not_found(uri.path());
    }
    let items = s
        .sip_credentials
        .values()
        .filter(|c| c.credential_list_sid == list)
        .map(|c| credential_json(&account, c))
        .collect();
    page_v2010(uri.path(), "credentials", items, &q)
}

/// `Username` (up to 32 characters, unique in the list) and `Password` (Twilio's rules: 400 otherwise). The
/// codes are inferences: Twilio documents the rules, not the code it answers when they are not met.
async fn create_credential(
    State(shared): State<Shared>,
    Path((account, list)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    let mut s = shared.state.lock().unwrap();
    if let Err(r) = path_account(&headers, &s, &account) {
        return r;
    }
    if own_cl(&s, &account, &list).is_none() {
        return not_found(uri.path());
    }
    let f = form(&body);
    for required in ["Username", "Password"] {
        if f.get(required).is_none_or(|v| v.is_empty()) {
            return error(400, 20001, &format!("Missing required parameter {required} in the post body"));
        }
    }
    let (username, password) = (&f["Username"], &f["Password"]);
    if username.chars().count() > 32 {
        return error(400, 20001, "Invalid Username. Must be at most 32 characters");
    }
    if !meets_password_rules(password) {
        return error(
            400,
            20001,
            "Password must be at least 12 characters long, contain at least one digit, and have mixed case",
        );
    }
    if s.sip_credentials.values().any(|c| c.credential_list_sid == list && c.username == *username) {
        return error(409, 20001, &format!("Username {username} already exists in this credential list"));
    }
    let sid = s.sid("CR");
    let c = SipCredential {
        credential_list_sid: list,
        sid: sid.clone(),
        username: username.clone(),
        password: password.clone(),
    };
    let json = credential_json(&account, &c);
    s.sip_credentials.insert(sid, c);
    (StatusCode::CREATED, Json(json)).into_response()
}

async fn delete_credential(
    State(shared): State<Shared>,
    Path((account, list, file)): Path<(String, String, String)>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let mut s = shared.state.lock().unwrap();
    if let Err(r) = path_account(&headers, &s, &account) {
        return r;
    }
    let found = number_sid(&file)
        .filter(|sid| s.sip_credentials.get(*sid).is_some_and(|c| c.credential_list_sid == list))
        .map(str::to_string);
    match found.filter(|_| own_cl(&s, &account, &list).is_some()) {
        Some(sid) => {
            s.sip_credentials.remove(&sid);
            StatusCode::NO_CONTENT.into_response()
        }
        None => not_found(uri.path()),
    }
}

fn trunk_cl_json(base: &str, account: &str, trunk: &str, l: &CredentialList) -> Value {
    json!({
        "sid": l.sid,
        "account_sid": account,
        "trunk_sid": trunk,
        "friendly_name": l.friendly_name,
        "date_created": "2026-11-25T10:00:00Z",
        "date_updated": "2026-11-25T10:00:00Z",
        "url": format!("{base}/v1/Trunks/{trunk}/CredentialLists/{}", l.sid),
    })
}

async fn list_trunk_cls(
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
    let items = s
        .trunk_credential_lists
        .iter()
        .filter(|(t, _)| *t == trunk)
        .filter_map(|(_, l)| s.credential_lists.get(l))
        .map(|l| trunk_cl_json(&shared.base, &me, &trunk, l))
        .collect();
    page(&shared.base, &format!("/v1/Trunks/{trunk}/CredentialLists"), "credential_lists", items, &q)
}

/// Associating a list of the account with its trunk; twice is refused (the code is an inference).
async fn associate_cl(
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
    let Some(list) = f.get("CredentialListSid") else {
        return error(400, 20001, "Missing required parameter CredentialListSid in the post body");
    };
    let Some(l) = own_cl(&s, &me, list).cloned() else {
        return error(400, 20001, &format!("CredentialListSid {list} is not valid"));
    };
    if !s.trunk_credential_lists.insert((trunk.clone(), l.sid.clone())) {
        return error(409, 20001, &format!("CredentialList {list} is already associated with trunk {trunk}"));
    }
    (StatusCode::CREATED, Json(trunk_cl_json(&shared.base, &me, &trunk, &l))).into_response()
}

async fn get_trunk_cl(
    State(shared): State<Shared>,
    Path((trunk, list)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let s = shared.state.lock().unwrap();
    let me = me(&headers, &s);
    if own_trunk(&s, &me, &trunk).is_none() || !s.trunk_credential_lists.contains(&(trunk.clone(), list.clone())) {
        return not_found(uri.path());
    }
    match s.credential_lists.get(&list) {
        Some(l) => Json(trunk_cl_json(&shared.base, &me, &trunk, l)).into_response(),
        None => not_found(uri.path()),
    }
}

/// Taking a list off a trunk (the list stays in the account).
async fn disassociate_cl(
    State(shared): State<Shared>,
    Path((trunk, list)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let mut s = shared.state.lock().unwrap();
    if own_trunk(&s, &me(&headers, &s), &trunk).is_none() || !s.trunk_credential_lists.remove(&(trunk, list)) {
        return not_found(uri.path());
    }
    StatusCode::NO_CONTENT.into_response()
}
