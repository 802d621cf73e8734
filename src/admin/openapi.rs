//! `GET /v1/openapi.json`: the OpenAPI 3.1 description of the admin API, built from [`OPERATIONS`] and the
//! schemas below. A test sends a request to every operation listed here and fails if the router does not
//! know it, so the document cannot drift from the routes.

use serde_json::{Value, json};

/// One operation: method, path, summary, whether it needs the bearer token, the request body's schema (a
/// component name), the success status and the success body's schema.
pub struct Operation {
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    pub auth: bool,
    pub request: Option<&'static str>,
    pub status: u16,
    pub response: Option<&'static str>,
}

const fn op(
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    request: Option<&'static str>,
    status: u16,
    response: Option<&'static str>,
) -> Operation {
    Operation { method, path, summary, auth: true, request, status, response }
}

/// An operation anyone may call (no token): a GET answering 200.
const fn open_get(path: &'static str, summary: &'static str) -> Operation {
    Operation { method: "get", path, summary, auth: false, request: None, status: 200, response: None }
}

pub const OPERATIONS: &[Operation] = &[
    op("post", "/v1/agents", "Create an agent", Some("NewAgent"), 201, Some("Agent")),
    op("get", "/v1/agents", "List agents", None, 200, Some("AgentList")),
    op("get", "/v1/agents/{id}", "Get an agent", None, 200, Some("Agent")),
    op(
        "patch",
        "/v1/agents/{id}",
        "Change an agent (calls in progress keep the old one)",
        Some("AgentPatch"),
        200,
        Some("Agent"),
    ),
    op("delete", "/v1/agents/{id}", "Delete an agent no number uses (409 names the numbers)", None, 204, None),
    op(
        "post",
        "/v1/agents/{id}/check",
        "Check the agent's stream URL now (a WebSocket handshake, 5 s at most); saving an agent also checks it",
        None,
        200,
        Some("Agent"),
    ),
    op(
        "post",
        "/v1/numbers",
        "Add a phone number, active with an agent, inactive without",
        Some("NewNumber"),
        201,
        Some("Number"),
    ),
    op("get", "/v1/numbers", "List numbers (filters: agent_id, status)", None, 200, Some("NumberList")),
    op("get", "/v1/numbers/{number}", "Get a number", None, 200, Some("Number")),
    op(
        "patch",
        "/v1/numbers/{number}",
        "Assign (agent_id) or unassign (null), set the SRTP policy (srtp), recording (record) or the routing rules \
         (rules, replaced whole); takes effect on the next call",
        Some("NumberPatch"),
        200,
        Some("Number"),
    ),
    op(
        "get",
        "/v1/numbers/{number}/route",
        "Dry run: which agent would take a call to the number at `at` from `caller` (its routing rules applied)",
        None,
        200,
        Some("RouteDecision"),
    ),
    op(
        "delete",
        "/v1/numbers/{number}",
        "Remove a number; a Twilio one gets its settings from before vocals back (?twilio=restore, the default) \
         or is left as Twilio has it now (?twilio=leave)",
        None,
        204,
        None,
    ),
    op(
        "get",
        "/v1/calls",
        "List calls, newest first (filters: active, agent, to; cursor, limit)",
        None,
        200,
        Some("CallList"),
    ),
    op(
        "post",
        "/v1/calls",
        "Place a call from a number of a trunk's account; the agent answers once the callee picks up",
        Some("Dial"),
        201,
        Some("Placed"),
    ),
    op("get", "/v1/calls/{id}", "Get a call with its stats (vocals id or CallSid)", None, 200, Some("Call")),
    op("post", "/v1/calls/{id}/hangup", "End a call in progress on this node", None, 202, None),
    op(
        "get",
        "/v1/calls/{id}/recording",
        "The call's recording (audio/wav; Range requests answered 206)",
        None,
        200,
        None,
    ),
    op("delete", "/v1/calls/{id}/recording", "Delete the call's recording", None, 204, None),
    op(
        "get",
        "/v1/calls/{id}/sip",
        "The call's SIP messages in and out, with times and addresses (stored when it ends)",
        None,
        200,
        Some("SipTrace"),
    ),
    op(
        "get",
        "/v1/calls/{id}/timeline",
        "The call's quality timeline: one sample a second (RTP, loss, jitter, queue, agent latency, RTT)",
        None,
        200,
        Some("Timeline"),
    ),
    op(
        "post",
        "/v1/twilio/accounts",
        "Link a Twilio account (credentials checked with Twilio)",
        Some("TwilioLink"),
        201,
        Some("TwilioAccount"),
    ),
    op(
        "get",
        "/v1/twilio/accounts",
        "List linked accounts (tokens never returned)",
        None,
        200,
        Some("TwilioAccountList"),
    ),
    op("delete", "/v1/twilio/accounts/{sid}", "Unlink an account no number uses", None, 204, None),
    op(
        "get",
        "/v1/twilio/accounts/{sid}/numbers",
        "The account's numbers, with what answers each now",
        None,
        200,
        Some("TwilioNumberList"),
    ),
    op(
        "post",
        "/v1/twilio/reconcile",
        "Compare Twilio with the store now; drifted numbers go to error",
        None,
        200,
        Some("Drift"),
    ),
    op(
        "post",
        "/v1/numbers/{number}/twilio/retry",
        "Configure Twilio again for a number in error",
        None,
        200,
        Some("Number"),
    ),
    op(
        "get",
        "/v1/numbers/{number}/twilio",
        "Read from Twilio now where the number's calls go, what Repair would replace and what Remove would restore",
        None,
        200,
        Some("TwilioPreview"),
    ),
    op("post", "/v1/numbers/{number}/twilio/repair", "Set Twilio right again after drift", None, 200, Some("Number")),
    open_get("/healthz", "Alive"),
    open_get("/readyz", "Ready: listeners bound, routing loaded, not draining (503 otherwise)"),
    open_get("/v1/openapi.json", "This document"),
];

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn components() -> Value {
    let string = json!({"type": "string"});
    let nullable_string = json!({"type": ["string", "null"]});
    let object = json!({"type": "object"});
    let nullable_object = json!({"type": ["object", "null"]});
    let name = json!({"type": "string", "minLength": 1, "maxLength": 100, "pattern": "\\S"});
    // The call record's session timer summary (its own value: the schema is past json!'s recursion limit).
    let record = json!({"enum": ["off", "dual", null],
        "description": "the number's own word on recording (off wins over its agent's dual); null: its agent's, then [recording] record"});
    let session = json!({
        "type": ["object", "null"],
        "description": "the RFC 4028 session timer and glare: null when the call had neither",
        "properties": {
            "interval": {"type": ["integer", "null"], "description": "seconds"},
            "refresher": {"enum": ["vocals", "peer", null]},
            "refreshes": {"type": "integer"},
            "glare": {"type": "integer", "description": "offers that crossed (491 either way)"}
        }
    });
    // Routing rules (issue 26), apart: the document is too deep for one json! call.
    let rule = json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["agent_id"],
        "description": "the first rule that matches a call picks its agent; when and caller both must match when \
                        both are given, and a rule has at least one",
        "properties": {
            "when": {"type": "object", "additionalProperties": false, "required": ["zone"], "properties": {
                "zone": {"type": "string", "example": "America/New_York", "description": "an IANA time zone"},
                "days": {"type": "array", "minItems": 1,
                    "items": {"enum": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]}},
                "from": {"type": "string", "pattern": "^[0-2][0-9]:[0-5][0-9]$",
                    "description": "local time; with to (a window may cross midnight)"},
                "to": {"type": "string", "pattern": "^[0-2][0-9]:[0-5][0-9]$"},
                "dates": {"type": "array", "minItems": 1, "items": {"type": "string",
                    "description": "YYYY-MM-DD, or a range YYYY-MM-DD/YYYY-MM-DD"}}}},
            "caller": {"oneOf": [
                {"type": "string", "description": "an E.164 prefix (+44) or anonymous"},
                {"type": "array", "minItems": 1, "items": {"type": "string", "pattern": "^\\+[0-9]{1,15}$"}}]},
            "agent_id": {"type": ["string", "null"], "description": "null: the call is not answered (480)"}
        }
    });
    let rules = json!({"type": ["array", "null"], "items": schema_ref("Rule"), "maxItems": 32,
        "description": "in order; null or []: none (on PATCH, replaced whole)"});
    let schedule = json!({"type": ["object", "null"],
            "description": "the week ahead (null without rules): from each segment's start, which route and \
                            agent take a call from a caller no caller rule names",
            "properties": {"from": string, "until": string, "segments": {"type": "array", "items": {
                "type": "object", "properties": {"from": string, "route": string,
                    "agent_id": nullable_string, "agent": nullable_string}}}}});
    let route_decision = json!({
        "type": "object",
        "properties": {
            "phone_number": string, "at": string, "local": string, "caller": nullable_string,
            "route": {"type": "string", "description": "default, or rules[i]: the first rule that matched"},
            "agent_id": nullable_string, "agent": nullable_string, "answered": {"type": "boolean"},
            "outcome": string
        }
    });
    let mut schemas = json!({
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {"error": {"type": "object", "required": ["code", "message"],
                "properties": {"code": string, "message": string,
                    "field": {"type": "string", "description": "the request field the error is about"}}}}
        },
        "AgentCheck": {"type": ["object", "null"], "description": "the last check of the stream URL",
            "properties": {"ok": {"type": "boolean"}, "detail": string, "checked_at": string}},
        "Health": {
            "type": "object",
            "description": "whether calls to the number will succeed; each problem says what fixes it",
            "properties": {"ok": {"type": "boolean"}, "problems": {"type": "array", "items": {"type": "object",
                "properties": {"code": {"enum": ["no_agent", "origination_unreachable", "origination_elsewhere",
                    "agent_unreachable", "twilio_drift", "twilio_error"]}, "message": string, "fix": string}}}}
        },
        "TwilioPreview": {"type": "object", "properties": {"now": string, "on_vocals": {"type": "boolean"},
            "repair_replaces": nullable_string, "remove_restores": string}},
        "Agent": {
            "type": "object",
            "properties": {
                "id": string, "name": string, "kind": {"enum": ["websocket", "echo"]},
                "stream_url": nullable_string, "system_prompt": string, "providers": object, "settings": object,
                "signed": {"type": "boolean"},
                "builtin": {"type": "boolean", "description": "The built-in echo agent: assignable, read-only"},
                "check": schema_ref("AgentCheck"),
                "created_at": string, "updated_at": string
            }
        },
        "NewAgent": {
            "type": "object",
            "additionalProperties": false,
            "required": ["name"],
            "properties": {
                "name": name, "kind": {"enum": ["websocket", "echo"], "default": "websocket"},
                "stream_url": {"type": ["string", "null"], "pattern": "^wss?://.+",
                    "description": "ws:// or wss://, required for websocket agents"},
                "system_prompt": string, "providers": nullable_object, "settings": nullable_object,
                "signing_secret": {"type": ["string", "null"], "description": "signs the handshake; write-only"}
            },
            "if": {"properties": {"kind": {"const": "echo"}}, "required": ["kind"]},
            "else": {"required": ["stream_url"], "properties": {"stream_url": {"type": "string"}}}
        },
        "AgentPatch": {
            "type": "object",
            "additionalProperties": false,
            "description": "null leaves a field as it is, except stream_url and signing_secret, which it clears",
            "properties": {
                "name": {"anyOf": [name, {"type": "null"}]}, "kind": {"enum": ["websocket", "echo", null]},
                "stream_url": {"type": ["string", "null"], "pattern": "^wss?://.+"},
                "system_prompt": nullable_string, "providers": nullable_object, "settings": nullable_object,
                "signing_secret": nullable_string
            }
        },
        "AgentList": {"type": "object", "properties": {"agents": {"type": "array", "items": schema_ref("Agent")}}},
    });
    let more = json!({
        "Number": {
            "type": "object",
            "properties": {
                "phone_number": {"type": "string", "pattern": "^\\+[1-9][0-9]{6,14}$"},
                "agent_id": nullable_string, "status": {"enum": ["active", "inactive", "error"]},
                "status_detail": string, "twilio_account_sid": nullable_string,
                "twilio_number_sid": nullable_string, "twilio_snapshot": object,
                "srtp": {"enum": ["off", "allowed", "required", null],
                    "description": "the number's SRTP policy; null: the server's media.srtp"},
                "record": record.clone(),
                "twilio_now": {"type": "object", "description": "what Twilio had for it when last read"},
                "rules": rules.clone(),
                "schedule": schedule,
                "health": schema_ref("Health"),
                "routing": {"type": ["object", "null"], "description": "a Twilio number's trunk as last read",
                    "properties": {"trunk_sid": nullable_string, "trunk_domain": nullable_string,
                        "origination": {"type": "array", "items": {"type": "object", "properties": {
                            "sip_url": string, "priority": {"type": "integer"}, "weight": {"type": "integer"},
                            "enabled": {"type": "boolean"}}}},
                        "read_at": nullable_string}},
                "created_at": string, "updated_at": string
            }
        },
        "NewNumber": {
            "type": "object",
            "additionalProperties": false,
            "required": ["phone_number"],
            "properties": {
                "phone_number": {"type": "string", "example": "+14155550123",
                    "description": "E.164, or a national form of the country of the numbers already added, e.g. \
                                    (415) 555-0123"},
                "agent_id": nullable_string,
                "twilio_account_sid": {"type": ["string", "null"], "pattern": "^AC[0-9a-f]{32}$",
                    "description": "a linked account: vocals configures Twilio"},
                "srtp": {"enum": ["off", "allowed", "required", null],
                    "description": "SRTP policy for the number's calls; null or absent: the server's media.srtp"},
                "record": record.clone(),
                "rules": rules.clone()
            }
        },
        "Dial": {
            "type": "object",
            "required": ["agent_id", "to", "from"],
            "properties": {
                "agent_id": string,
                "to": {"type": "string", "pattern": "^\\+[1-9][0-9]{1,14}$"},
                "from": {"type": "string", "pattern": "^\\+[1-9][0-9]{1,14}$"}
            }
        },
        "Placed": {
            "type": "object",
            "properties": {"sid": string, "to": string, "from": string, "status": string, "direction": string}
        },
        "SipTrace": {
            "type": "object",
            "description": "At most 64 messages or 64 KiB: the first 4 always, then the latest; `elided` says how many were left out of `total`.",
            "properties": {
                "total": {"type": "integer"}, "elided": {"type": "integer"},
                "messages": {"type": "array", "items": {"type": "object", "properties": {
                    "at": string, "dir": {"type": "string", "enum": ["in", "out"]},
                    "transport": {"type": "string", "enum": ["udp", "tcp", "tls"]},
                    "peer": string, "local": string, "bytes": {"type": "integer"}, "text": string
                }}}
            }
        },
        "Timeline": {
            "type": "object",
            "description": "One sample a second from the answer, at most 4 h; each sample is an array in the order of `fields`, null when unknown.",
            "properties": {
                "interval_ms": {"type": "integer"},
                "fields": {"type": "array", "items": string},
                "samples": {"type": "array", "items": {"type": "array", "items": {"type": ["number", "null"]}}}
            }
        },
        "TwilioLink": {
            "type": "object",
            "additionalProperties": false,
            "required": ["account_sid", "auth_token"],
            "properties": {
                "account_sid": {"type": "string", "pattern": "^AC[0-9a-f]{32}$"},
                "auth_token": {"type": "string", "minLength": 1, "pattern": "\\S"}, "friendly_name": string
            }
        },
        "TwilioAccount": {
            "type": "object",
            "properties": {"account_sid": string, "friendly_name": string, "trunk_sid": nullable_string,
                "trunk_domain": nullable_string, "origination": {"type": "array"}, "trunk_read_at": nullable_string,
                "created_at": string, "updated_at": string}
        },
        "TwilioAccountList": {"type": "object",
            "properties": {"accounts": {"type": "array", "items": schema_ref("TwilioAccount")}}},
        "TwilioNumberList": {"type": "object", "properties": {"numbers": {"type": "array", "items": {
            "type": "object",
            "properties": {"sid": string, "phone_number": string, "friendly_name": string,
                "voice": {"type": "boolean"}, "in_use": {"type": "boolean"}, "in_use_by": nullable_string,
                "added": {"type": "boolean"}}}}}},
        "Drift": {"type": "object", "properties": {"drift": {"type": "array", "items": {"type": "object",
            "properties": {"phone_number": string, "detail": string}}}}},
        "NumberPatch": {
            "type": "object",
            "additionalProperties": false,
            "minProperties": 1,
            "properties": {"agent_id": nullable_string,
                "srtp": {"enum": ["off", "allowed", "required", null],
                    "description": "SRTP policy; null: the server's media.srtp"},
                "record": record,
                "rules": rules}
        },
        "NumberList": {"type": "object", "properties": {"numbers": {"type": "array", "items": schema_ref("Number")},
            "other_numbers": {"type": "object", "description": "who answers numbers not added",
                "properties": {"answered_by": nullable_string, "rule": string}}}},
        "Call": {
            "type": "object",
            "properties": {
                "id": string, "call_sid": nullable_string, "sip_call_id": string, "from": string, "to": string,
                "agent": nullable_string, "node": string, "invite_at": string, "answer_at": nullable_string,
                "end_at": nullable_string, "end_reason": nullable_string, "sip_status": {"type": ["integer", "null"]},
                "codec": nullable_string, "stats": object,
                "route": {"type": ["string", "null"],
                    "description": "default (the number's agent_id) or rules[i] (the routing rule that matched)"},
                "session": session
            }
        },
        "CallList": {
            "type": "object",
            "properties": {"calls": {"type": "array", "items": schema_ref("Call")}, "next_cursor": nullable_string}
        }
    });
    if let (Some(all), Value::Object(more)) = (schemas.as_object_mut(), more) {
        all.extend(more);
    }
    schemas["Rule"] = rule;
    schemas["RouteDecision"] = route_decision;
    schemas
}

/// The OpenAPI document.
pub fn document() -> Value {
    let mut paths = serde_json::Map::new();
    for o in OPERATIONS {
        let mut operation = json!({
            "summary": o.summary,
            "responses": {
                o.status.to_string(): match o.response {
                    Some(schema) => json!({"description": "OK",
                        "content": {"application/json": {"schema": schema_ref(schema)}}}),
                    None => json!({"description": "OK"}),
                },
                "default": {"description": "An error",
                    "content": {"application/json": {"schema": schema_ref("Error")}}}
            }
        });
        if let Some(schema) = o.request {
            operation["requestBody"] =
                json!({"required": true, "content": {"application/json": {"schema": schema_ref(schema)}}});
        }
        if !o.auth {
            operation["security"] = json!([]);
        }
        let params: Vec<Value> = o
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
            .map(|name| {
                let schema = match name {
                    "number" => json!({"type": "string", "pattern": "^\\+?[1-9][0-9]{6,14}$"}),
                    "sid" => json!({"type": "string", "pattern": "^AC[0-9a-f]{32}$"}),
                    _ => json!({"type": "string", "minLength": 1}),
                };
                json!({"name": name, "in": "path", "required": true, "schema": schema})
            })
            .collect();
        let mut params = params;
        if o.path.ends_with("/route") {
            params.push(json!({"name": "at", "in": "query", "required": false, "schema": {"type": "string"},
                "description": "RFC 3339 (2026-12-25T14:00:00Z), or local (2026-12-25T09:00) in the zone of the \
                                number's first scheduled rule (UTC without one); absent: now"}));
            params.push(json!({"name": "caller", "in": "query", "required": false, "schema": {"type": "string"},
                "description": "an E.164 number or anonymous; absent: a caller no caller rule names"}));
        }
        if !params.is_empty() {
            operation["parameters"] = Value::Array(params);
        }
        let entry = paths.entry(o.path.to_string()).or_insert_with(|| json!({}));
        entry[o.method] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "vocals admin API", "version": env!("CARGO_PKG_VERSION")},
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": components()
        }
    })
}
