//! A number's routing rules as the API shows them: the week ahead (`schedule` on `/v1/numbers`: which agent
//! answers when, for the dashboard's strip and its "after-hours agent now, until 08:00") and the dry run
//! (`GET /v1/numbers/{number}/route?at=…&caller=…`: who would take a call then). Both read the routing table
//! calls are routed with, the config file's numbers included, so they say what a call would get.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::v1::{ApiError, catalog, e164_path, path};
use crate::e164::E164;
use crate::routing::{Caller, Chosen, Lookup, NumberLookup, NumberTable};

/// How far ahead `schedule` looks.
const WEEK: SignedDuration = SignedDuration::from_hours(24 * 7);

/// The agent a decision gives: its id and name (`None`: the call is not answered).
fn agent_of(lookup: &Lookup) -> (Value, Value) {
    match lookup {
        Lookup::Agent { agent, .. } => (json!(agent.id), json!(agent.name)),
        _ => (Value::Null, Value::Null),
    }
}

/// The week ahead from `now` for a number with rules (`null` without): each stretch of time with the route
/// that takes calls then and its agent, for a caller no caller rule names.
pub fn schedule(table: &NumberTable, number: &E164, now: Timestamp) -> Value {
    let Some(rules) = table.rules(number) else { return Value::Null };
    let Some(end) = now.checked_add(WEEK).ok() else { return Value::Null };
    // Each stretch starts where the rules change; who takes it is what a call then would get.
    let segments: Vec<Value> = rules
        .rules
        .changes(now, end, Caller::Other)
        .into_iter()
        .map(|(from, _)| {
            let (lookup, route) = table.decide(number, from, Caller::Other);
            let (agent_id, agent) = agent_of(&lookup);
            json!({"from": from.to_string(), "route": route.label(), "agent_id": agent_id, "agent": agent})
        })
        .collect();
    json!({"from": now.to_string(), "until": end.to_string(), "segments": segments})
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteQuery {
    /// RFC 3339 (`2026-12-25T14:00:00Z`), or a local time (`2026-12-25T09:00`) read in the zone of the
    /// number's first scheduled rule (UTC when it has none); absent: now.
    at: Option<String>,
    /// `+44…`, or `anonymous`; absent: a caller no caller rule names.
    caller: Option<String>,
}

/// `GET /v1/numbers/{number}/route`: which agent would take a call to the number at `at` from `caller`, by
/// the same decision an INVITE gets.
pub async fn dry_run(
    State(state): State<Arc<AppState>>,
    number: Result<Path<String>, PathRejection>,
    q: Result<Query<RouteQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let number = e164_path(&path(number)?)?;
    let q = q.map_err(|e| ApiError::bad_request(e.body_text()))?.0;
    let table = catalog(&state)?.directory().current();
    if table.entry(&number).is_none() {
        return Err(ApiError::not_found(format!("number {number} not found")));
    }
    let zone = table.rules(&number).and_then(|r| r.rules.zone().cloned()).unwrap_or(TimeZone::UTC);
    let at = match q.at.as_deref().map(str::trim) {
        None | Some("") => Timestamp::now(),
        Some(text) => parse_at(text, &zone)?,
    };
    let caller_number;
    let caller = match q.caller.as_deref().map(str::trim) {
        None | Some("") => Caller::Other,
        Some(c) if c.eq_ignore_ascii_case("anonymous") => Caller::Anonymous,
        Some(c) => {
            caller_number = E164::parse(c).map_err(|e| {
                ApiError::bad_request(format!(
                    "caller must be an E.164 number (+442071234567) or anonymous: {c:?} is not ({e})"
                ))
                .field("caller")
            })?;
            Caller::Number(caller_number.as_str())
        }
    };
    let (lookup, chosen) = table.decide(&number, at, caller);
    let (agent_id, agent) = agent_of(&lookup);
    let answered = !agent_id.is_null();
    let outcome = match (&lookup, chosen) {
        (Lookup::Agent { .. }, _) => "answered".to_string(),
        (_, Chosen::Rule(i)) => format!("480: not answered now (rules[{i}] names no agent)"),
        (_, Chosen::Default) => "480: the number has no agent".to_string(),
    };
    Ok(Json(json!({
        "phone_number": number,
        "at": at.to_string(),
        "local": zone.to_datetime(at).to_string(),
        "zone": zone.iana_name(),
        "caller": match caller {
            Caller::Number(n) => json!(n),
            Caller::Anonymous => json!("anonymous"),
            Caller::Other => Value::Null,
        },
        "route": chosen.label(),
        "agent_id": agent_id,
        "agent": agent,
        "answered": answered,
        "outcome": outcome,
    })))
}

/// `at`: an instant with its offset, or a local date and time read in `zone` (a skipped local time moves
/// forward, a repeated one is its first occurrence, as the rules read them).
fn parse_at(text: &str, zone: &TimeZone) -> Result<Timestamp, ApiError> {
    if let Ok(t) = text.parse::<Timestamp>() {
        return Ok(t);
    }
    text.parse::<jiff::civil::DateTime>()
        .ok()
        .and_then(|dt| zone.to_ambiguous_timestamp(dt).compatible().ok())
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "at must be an RFC 3339 time (2026-12-25T14:00:00Z) or a local one (2026-12-25T09:00, read in the \
                 number's time zone): not {text:?}"
            ))
            .field("at")
        })
}
