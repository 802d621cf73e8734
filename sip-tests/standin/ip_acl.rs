//! The stand-in's SIP IpAccessControlLists (2010-04-01) with their IpAddresses, and the trunking v1 trunk
//! IpAccessControlLists: an address checked as Twilio documents it (IPv4 in dotted decimal, "IPv4 only supported
//! today"; `CidrPrefixLength` or an `a.b.c.d/n` address; up to 100 a list), the same address and prefix twice in
//! a list refused, deleting a list deleting its addresses and taking it off every trunk. The codes of refusals
//! Twilio does not document are inferences.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

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

/// Twilio's limit of addresses in one list.
const MAX_ADDRESSES: usize = 100;

/// A SIP IpAccessControlList (2010-04-01).
#[derive(Clone, Debug, PartialEq)]
pub struct IpAccessControlList {
    pub account_sid: String,
    pub sid: String,
    pub friendly_name: String,
}

/// An IpAddress of a list.
#[derive(Clone, Debug, PartialEq)]
pub struct IpAddress {
    pub ip_access_control_list_sid: String,
    pub sid: String,
    pub friendly_name: String,
    pub ip_address: String,
    pub cidr_prefix_length: u8,
}

pub(super) fn routes() -> Router<Shared> {
    let acls = "/2010-04-01/Accounts/{account}/SIP/IpAccessControlLists";
    Router::new()
        .route(&format!("{acls}.json"), get(list_acls).post(create_acl))
        .route(&format!("{acls}/{{acl}}"), get(get_acl).delete(delete_acl))
        .route(&format!("{acls}/{{acl}}/IpAddresses.json"), get(list_addresses).post(create_address))
        .route(&format!("{acls}/{{acl}}/IpAddresses/{{file}}"), delete(delete_address))
        .route("/v1/Trunks/{trunk}/IpAccessControlLists", get(list_trunk_acls).post(associate_acl))
        .route("/v1/Trunks/{trunk}/IpAccessControlLists/{acl}", get(get_trunk_acl).delete(disassociate_acl))
}

fn acl_json(l: &IpAccessControlList) -> Value {
    let uri = format!("/2010-04-01/Accounts/{}/SIP/IpAccessControlLists/{}", l.account_sid, l.sid);
    json!({
        "sid": l.sid,
        "account_sid": l.account_sid,
        "friendly_name": l.friendly_name,
        "date_created": rfc2822(),
        "date_updated": rfc2822(),
        "subresource_uris": {"ip_addresses": format!("{uri}/IpAddresses.json")},
        "uri": format!("{uri}.json"),
    })
}

fn address_json(account: &str, a: &IpAddress) -> Value {
    json!({
        "sid": a.sid,
        "account_sid": account,
        "friendly_name": a.friendly_name,
        "ip_address": a.ip_address,
        "cidr_prefix_length": a.cidr_prefix_length,
        "ip_access_control_list_sid": a.ip_access_control_list_sid,
        "date_created": rfc2822(),
        "date_updated": rfc2822(),
        "uri": format!(
            "/2010-04-01/Accounts/{account}/SIP/IpAccessControlLists/{}/IpAddresses/{}.json",
            a.ip_access_control_list_sid, a.sid
        ),
    })
}

fn own_acl<'a>(s: &'a TwilioState, account: &str, acl: &str) -> Option<&'a IpAccessControlList> {
    s.ip_acls.get(acl).filter(|l| l.account_sid == account)
}

async fn list_acls(
    State(shared): State<Shared>,
    Path(account): Path<String>,
    Query(q): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let s = shared.state.lock().unwrap();
    if let Err(r) = path_account(&headers, &s, &account) {
        return r;
    }
    let items = s.ip_acls.values().filter(|l| l.account_sid == account).map(acl_json).collect();
    let path = format!("/2010-04-01/Accounts/{account}/SIP/IpAccessControlLists.json");
    page_v2010(&path, "ip_access_control_lists", items, &q)
}

async fn create_acl(
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
    if name.chars().count() > 255 {
        return error(400, 20001, "FriendlyName must be at most 255 characters");
    }
    let sid = s.sid("AL");
    let acl = IpAccessControlList { account_sid: account, sid: sid.clone(), friendly_name: name.clone() };
    let json = acl_json(&acl);
    s.ip_acls.insert(sid, acl);
    (StatusCode::CREATED, Json(json)).into_response()
}

async fn get_acl(
    State(shared): State<Shared>,
    Path((account, file)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let s = shared.state.lock().unwrap();
    if let Err(r) = path_account(&headers, &s, &account) {
        return r;
    }
    match number_sid(&file).and_then(|sid| own_acl(&s, &account, sid)) {
        Some(l) => Json(acl_json(l)).into_response(),
        None => not_found(uri.path()),
    }
}

/// Deleting a list deletes its addresses and takes it off every trunk.
async fn delete_acl(
    State(shared): State<Shared>,
    Path((account, file)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let mut s = shared.state.lock().unwrap();
    if let Err(r) = path_account(&headers, &s, &account) {
        return r;
    }
    let Some(sid) = number_sid(&file).filter(|sid| own_acl(&s, &account, sid).is_some()).map(str::to_string) else {
        return not_found(uri.path());
    };
    s.ip_acls.remove(&sid);
    s.ip_addresses.retain(|_, a| a.ip_access_control_list_sid != sid);
    s.trunk_ip_acls.retain(|(_, l)| *l != sid);
    StatusCode::NO_CONTENT.into_response()
}

async fn list_addresses(
    State(shared): State<Shared>,
    Path((account, acl)): Path<(String, String)>,
    Query(q): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let s = shared.state.lock().unwrap();
    if let Err(r) = path_account(&headers, &s, &account) {
        return r;
    }
    if own_acl(&s, &account, &acl).is_none() {
        return not_found(uri.path());
    }
    let items = s
        .ip_addresses
        .values()
        .filter(|a| a.ip_access_control_list_sid == acl)
        .map(|a| address_json(&account, a))
        .collect();
    page_v2010(uri.path(), "ip_addresses", items, &q)
}

/// `FriendlyName` and `IpAddress` (IPv4, dotted, optionally `/n`) required, `CidrPrefixLength` (1 to 32) optional:
/// the whole address when neither gives one.
async fn create_address(
    State(shared): State<Shared>,
    Path((account, acl)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    let mut s = shared.state.lock().unwrap();
    if let Err(r) = path_account(&headers, &s, &account) {
        return r;
    }
    if own_acl(&s, &account, &acl).is_none() {
        return not_found(uri.path());
    }
    let f = form(&body);
    for required in ["FriendlyName", "IpAddress"] {
        if f.get(required).is_none_or(|v| v.is_empty()) {
            return error(400, 20001, &format!("Missing required parameter {required} in the post body"));
        }
    }
    let (address, slash) = match f["IpAddress"].split_once('/') {
        Some((a, p)) => (a.to_string(), Some(p.to_string())),
        None => (f["IpAddress"].clone(), None),
    };
    if address.parse::<Ipv4Addr>().is_err() {
        return error(400, 21201, &format!("IpAddress {} is not a valid IPv4 address", f["IpAddress"]));
    }
    let prefix = match f.get("CidrPrefixLength").or(slash.as_ref()) {
        None => Some(32),
        Some(p) => p.parse::<u8>().ok().filter(|p| (1..=32).contains(p)),
    };
    let Some(prefix) = prefix else {
        return error(400, 20001, "CidrPrefixLength must be a number from 1 to 32");
    };
    let in_list: Vec<&IpAddress> = s.ip_addresses.values().filter(|a| a.ip_access_control_list_sid == acl).collect();
    if in_list.len() >= MAX_ADDRESSES {
        return error(400, 20001, "An IpAccessControlList holds at most 100 IpAddresses");
    }
    if in_list.iter().any(|a| a.ip_address == address && a.cidr_prefix_length == prefix) {
        return error(409, 20001, &format!("IpAddress {address}/{prefix} is already in this list"));
    }
    let sid = s.sid("IP");
    let a = IpAddress {
        ip_access_control_list_sid: acl,
        sid: sid.clone(),
        friendly_name: f["FriendlyName"].clone(),
        ip_address: address,
        cidr_prefix_length: prefix,
    };
    let json = address_json(&account, &a);
    s.ip_addresses.insert(sid, a);
    (StatusCode::CREATED, Json(json)).into_response()
}

async fn delete_address(
    State(shared): State<Shared>,
    Path((account, acl, file)): Path<(String, String, String)>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let mut s = shared.state.lock().unwrap();
    if let Err(r) = path_account(&headers, &s, &account) {
        return r;
    }
    let found = number_sid(&file)
        .filter(|sid| s.ip_addresses.get(*sid).is_some_and(|a| a.ip_access_control_list_sid == acl))
        .map(str::to_string);
    match found.filter(|_| own_acl(&s, &account, &acl).is_some()) {
        Some(sid) => {
            s.ip_addresses.remove(&sid);
            StatusCode::NO_CONTENT.into_response()
        }
        None => not_found(uri.path()),
    }
}

fn trunk_acl_json(base: &str, account: &str, trunk: &str, l: &IpAccessControlList) -> Value {
    json!({
        "account_sid": account,
        "sid": l.sid,
        "trunk_sid": trunk,
        "friendly_name": l.friendly_name,
        "date_created": "2026-11-25T10:00:00Z",
        "date_updated": "2026-11-25T10:00:00Z",
        "url": format!("{base}/v1/Trunks/{trunk}/IpAccessControlLists/{}", l.sid),
    })
}

async fn list_trunk_acls(
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
        .trunk_ip_acls
        .iter()
        .filter(|(t, _)| *t == trunk)
        .filter_map(|(_, l)| s.ip_acls.get(l))
        .map(|l| trunk_acl_json(&shared.base, &me, &trunk, l))
        .collect();
    page(&shared.base, &format!("/v1/Trunks/{trunk}/IpAccessControlLists"), "ip_access_control_lists", items, &q)
}

/// Associating a list of the account with its trunk; twice is refused.
async fn associate_acl(
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
    let Some(acl) = f.get("IpAccessControlListSid") else {
        return error(400, 20001, "Missing required parameter IpAccessControlListSid in the post body");
    };
    let Some(l) = own_acl(&s, &me, acl).cloned() else {
        return error(400, 20001, &format!("IpAccessControlListSid {acl} is not valid"));
    };
    if !s.trunk_ip_acls.insert((trunk.clone(), l.sid.clone())) {
        return error(409, 20001, &format!("IpAccessControlList {acl} is already associated with trunk {trunk}"));
    }
    (StatusCode::CREATED, Json(trunk_acl_json(&shared.base, &me, &trunk, &l))).into_response()
}

async fn get_trunk_acl(
    State(shared): State<Shared>,
    Path((trunk, acl)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let s = shared.state.lock().unwrap();
    let me = me(&headers, &s);
    if own_trunk(&s, &me, &trunk).is_none() || !s.trunk_ip_acls.contains(&(trunk.clone(), acl.clone())) {
        return not_found(uri.path());
    }
    match s.ip_acls.get(&acl) {
        Some(l) => Json(trunk_acl_json(&shared.base, &me, &trunk, l)).into_response(),
        None => not_found(uri.path()),
    }
}

/// Taking a list off a trunk (the list stays in the account).
async fn disassociate_acl(
    State(shared): State<Shared>,
    Path((trunk, acl)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let mut s = shared.state.lock().unwrap();
    if own_trunk(&s, &me(&headers, &s), &trunk).is_none() || !s.trunk_ip_acls.remove(&(trunk, acl)) {
        return not_found(uri.path());
    }
    StatusCode::NO_CONTENT.into_response()
}
