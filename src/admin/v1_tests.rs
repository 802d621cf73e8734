//! The admin API through `oneshot`, on a real SQLite store: auth, every resource, the error shapes, the
//! OpenAPI document against the router, and the routing table following each write.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use super::*;
use crate::e164::E164;
use crate::routing::{Directory, Lookup, NumberLookup, NumberTable};
use crate::store::Store;
use crate::store::catalog::Catalog;

const TOKEN: &str = "test-token-0123456789";

struct Api {
    app: Router,
    directory: Arc<Directory>,
    store: Arc<Store>,
}

async fn api() -> Api {
    let dir = std::env::temp_dir().join(crate::store::new_id("vocals-api-"));
    std::fs::create_dir_all(&dir).unwrap();
    let key =
        crate::store::secret::SecretKey::from_base64(&crate::store::secret::SecretKey::generate().unwrap()).unwrap();
    let store =
        Arc::new(Store::open(&format!("sqlite://{}", dir.join("v.db").display())).await.unwrap().with_secret(key));
    let directory = Arc::new(Directory::default());
    let catalog = Catalog::new(store.clone(), NumberTable::new(), directory.clone());
    catalog.reload().await.unwrap();
    let (tx, mut rx) = mpsc::channel::<CallCommand>(4);
    tokio::spawn(async move {
        while let Some(command) = rx.recv().await {
            if let CallCommand::End { id, reply } = command {
                let _ = reply.send(id == "vc_live");
            }
        }
    });
    let state = AppState { calls: Some(tx), catalog: Some(catalog), token: Some(TOKEN.into()), ..AppState::default() };
    Api { app: app(state), directory, store }
}

impl Api {
    async fn call(&self, method: &str, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.raw(method, uri, Some(TOKEN), body.map(|b| b.to_string())).await
    }

    async fn raw(&self, method: &str, uri: &str, token: Option<&str>, body: Option<String>) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(token) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let req = match body {
            Some(b) => req.header(header::CONTENT_TYPE, "application/json").body(Body::from(b)),
            None => req.body(Body::empty()),
        };
        let resp = self.app.clone().oneshot(req.unwrap()).await.unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    fn agent_of(&self, number: &str) -> Option<String> {
        match self.directory.lookup(&E164::parse(number).unwrap()) {
            Lookup::Agent { agent, .. } => Some(agent.name.clone()),
            Lookup::Unassigned => Some("(unassigned)".into()),
            Lookup::Unknown => None,
        }
    }
}

fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_else(|| panic!("not an ApiError: {body}"))
}

#[tokio::test]
async fn the_token_is_required_and_health_is_open() {
    let api = api().await;
    let (status, body) = api.raw("GET", "/v1/agents", None, None).await;
    assert_eq!((status, error_code(&body)), (StatusCode::UNAUTHORIZED, "unauthorized"));
    assert!(body["error"]["message"].as_str().unwrap().contains("Bearer"), "{body}");
    let (status, _) = api.raw("GET", "/v1/agents", Some("test-token-0123456788"), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = api.raw("GET", "/v1/agents", Some(TOKEN), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(api.raw("GET", "/healthz", None, None).await.0, StatusCode::OK);
    let (status, body) = api.raw("GET", "/readyz", None, None).await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("ready")));
}

#[tokio::test]
async fn agents_and_numbers_follow_the_product_rules_and_routing_follows_each_write() {
    let api = api().await;
    let (status, support) = api
        .call(
            "POST",
            "/v1/agents",
            Some(json!({"name": "support", "stream_url": "wss://a.example/s", "signing_secret": "0123456789abcdef-x"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{support}");
    assert_eq!((support["kind"].as_str(), support["signed"].as_bool()), (Some("websocket"), Some(true)));
    assert!(support.get("signing_secret").is_none(), "secrets are never returned: {support}");
    let (_, sales) = api.call("POST", "/v1/agents", Some(json!({"name": "sales", "kind": "echo"}))).await;
    let (support_id, sales_id) = (support["id"].as_str().unwrap(), sales["id"].as_str().unwrap());

    let (status, n) =
        api.call("POST", "/v1/numbers", Some(json!({"phone_number": "+14155550123", "agent_id": support_id}))).await;
    assert_eq!((status, n["status"].as_str()), (StatusCode::CREATED, Some("active")), "{n}");
    assert_eq!(api.agent_of("+14155550123").as_deref(), Some("support"), "the next call is routed at once");
    let (status, n) = api.call("POST", "/v1/numbers", Some(json!({"phone_number": "+14155550124"}))).await;
    assert_eq!((status, n["status"].as_str()), (StatusCode::CREATED, Some("inactive")));
    assert_eq!(api.agent_of("+14155550124").as_deref(), Some("(unassigned)"));

    let (status, n) = api.call("PATCH", "/v1/numbers/+14155550123", Some(json!({"agent_id": sales_id}))).await;
    assert_eq!((status, n["agent_id"].as_str()), (StatusCode::OK, Some(sales_id)));
    assert_eq!(api.agent_of("+14155550123").as_deref(), Some("sales"));
    let (_, list) = api.call("GET", &format!("/v1/numbers?agent_id={sales_id}"), None).await;
    assert_eq!(list["numbers"].as_array().unwrap().len(), 1, "{list}");
    let (_, list) = api.call("GET", "/v1/numbers?status=inactive", None).await;
    assert_eq!(list["numbers"][0]["phone_number"], "+14155550124", "{list}");

    let (status, body) = api.call("DELETE", &format!("/v1/agents/{sales_id}"), None).await;
    assert_eq!((status, error_code(&body)), (StatusCode::CONFLICT, "agent_in_use"));
    assert!(body["error"]["message"].as_str().unwrap().contains("+14155550123"), "409 names the numbers: {body}");
    let (status, n) = api.call("PATCH", "/v1/numbers/%2B14155550123", Some(json!({"agent_id": null}))).await;
    assert_eq!((status, n["status"].as_str()), (StatusCode::OK, Some("inactive")));
    assert_eq!(api.agent_of("+14155550123").as_deref(), Some("(unassigned)"), "480 from the next call");
    assert_eq!(api.call("DELETE", &format!("/v1/agents/{sales_id}"), None).await.0, StatusCode::NO_CONTENT);
    assert_eq!(api.call("DELETE", "/v1/numbers/14155550123", None).await.0, StatusCode::NO_CONTENT);
    assert_eq!(api.agent_of("+14155550123"), None, "404 from the next call");
    let (status, body) = api.call("GET", "/v1/numbers/+14155550123", None).await;
    assert_eq!((status, error_code(&body)), (StatusCode::NOT_FOUND, "not_found"));

    let (status, a) =
        api.call("PATCH", &format!("/v1/agents/{support_id}"), Some(json!({"system_prompt": "Hi"}))).await;
    assert_eq!(
        (status, a["system_prompt"].as_str(), a["name"].as_str()),
        (StatusCode::OK, Some("Hi"), Some("support"))
    );
    let (status, list) = api.call("GET", "/v1/agents", None).await;
    let names: Vec<(&str, bool)> = list["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["name"].as_str().unwrap(), a["builtin"].as_bool().unwrap()))
        .collect();
    assert_eq!((status, names), (StatusCode::OK, vec![("echo", true), ("support", false)]));
    // The built-in echo: listed, assignable by its id, never changed or deleted.
    let (status, body) = api.call("PATCH", "/v1/agents/echo", Some(json!({"name": "mine"}))).await;
    assert_eq!((status, error_code(&body)), (StatusCode::FORBIDDEN, "read_only"));
    assert!(body["error"]["message"].as_str().unwrap().contains("built-in"), "{body}");
    let (status, body) = api.call("DELETE", "/v1/agents/echo", None).await;
    assert_eq!((status, error_code(&body)), (StatusCode::FORBIDDEN, "read_only"));
    let (status, n) =
        api.call("POST", "/v1/numbers", Some(json!({"phone_number": "+14155550130", "agent_id": "echo"}))).await;
    assert_eq!((status, n["status"].as_str()), (StatusCode::CREATED, Some("active")), "{n}");
    assert_eq!(api.agent_of("+14155550130").as_deref(), Some("echo"));
}

#[tokio::test]
async fn an_agents_transfer_settings_are_checked_when_written_and_reach_its_calls() {
    let api = api().await;
    let agent = |settings: Value| json!({"name": "sales", "stream_url": "wss://a.example.com/s", "settings": settings});
    let (status, body) =
        api.call("POST", "/v1/agents", Some(agent(json!({"transfer": {"allow_prefixes": "+1,44"}})))).await;
    assert_eq!((status, error_code(&body)), (StatusCode::UNPROCESSABLE_ENTITY, "invalid"), "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("settings.transfer.allow_prefixes: \"44\" is not an E.164 prefix"), "{message}");
    let (status, body) = api.call("POST", "/v1/agents", Some(agent(json!({"transfer": {"max_per_call": 101}})))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["error"]["message"].as_str().unwrap().starts_with("settings.transfer.max_per_call:"), "{body}");
    let policy = json!({"transfer": {"allow_domains": ["pbx.example.com"], "max_per_call": 1}, "voice": "alloy"});
    let (status, created) = api.call("POST", "/v1/agents", Some(agent(policy))).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap();
    let patch = json!({"settings": {"transfer": {"allow_domain": "pbx.example.com"}}});
    let (status, body) = api.call("PATCH", &format!("/v1/agents/{id}"), Some(patch)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["error"]["message"].as_str().unwrap().starts_with("settings.transfer.allow_domain: unknown key"));
    api.call("POST", "/v1/numbers", Some(json!({"phone_number": "+14155550140", "agent_id": id}))).await;
    let Lookup::Agent { agent, .. } = api.directory.lookup(&E164::parse("+14155550140").unwrap()) else {
        panic!("the number routes to the agent")
    };
    let policy = agent.transfer.over(&crate::agent::transfer::TransferPolicy::default());
    assert_eq!((policy.allow_domains.len(), policy.max_per_call, policy.deny_prefixes.len()), (1, 1, 23));
}

#[tokio::test]
async fn bad_requests_get_json_errors_that_say_what_was_wrong() {
    let api = api().await;
    let (status, body) = api.call("POST", "/v1/numbers", Some(json!({"phone_number": "4155550123"}))).await;
    assert_eq!((status, error_code(&body)), (StatusCode::UNPROCESSABLE_ENTITY, "invalid"));
    assert!(body["error"]["message"].as_str().unwrap().starts_with("phone_number must be E.164, e.g. +14155550123"));
    assert_eq!(body["error"]["field"], "phone_number", "{body}");
    let (status, body) =
        api.call("POST", "/v1/numbers", Some(json!({"phone_number": "+14155550123", "color": 1}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["error"]["message"].as_str().unwrap().contains("unknown field `color`"), "{body}");
    let (status, body) =
        api.call("POST", "/v1/numbers", Some(json!({"phone_number": "+14155550123", "agent_id": "ag_no"}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["error"]["message"].as_str().unwrap().contains("agent_id"), "{body}");
    api.call("POST", "/v1/numbers", Some(json!({"phone_number": "+14155550123"}))).await;
    let (status, body) = api.call("POST", "/v1/numbers", Some(json!({"phone_number": "+14155550123"}))).await;
    assert_eq!((status, error_code(&body)), (StatusCode::CONFLICT, "conflict"));
    let (status, body) = api.raw("POST", "/v1/agents", Some(TOKEN), Some("{not json".into())).await;
    assert_eq!((status, error_code(&body)), (StatusCode::BAD_REQUEST, "bad_request"));
    let (status, body) = api.call("POST", "/v1/agents", Some(json!({"name": "x", "stream_url": "http://x"}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["error"]["message"].as_str().unwrap().contains("ws://"), "{body}");
    let (status, body) = api.call("PATCH", "/v1/numbers/+14155550123", Some(json!({}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["error"]["message"].as_str().unwrap().contains("agent_id, srtp, record or rules is required"),
        "{body}"
    );
    let (status, _) = api.call("GET", "/v1/numbers/abc", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, body) = api.call("GET", "/v1/numbers?status=gone", None).await;
    assert_eq!((status, error_code(&body)), (StatusCode::BAD_REQUEST, "bad_request"));
    let (status, _) = api.call("GET", "/v1/calls?limit=0", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = api.call("GET", "/v1/calls?cursor=%21%21", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let big = json!({"name": "x".repeat(v1::MAX_BODY)});
    let (status, body) = api.call("POST", "/v1/agents", Some(big)).await;
    assert_eq!((status, error_code(&body)), (StatusCode::PAYLOAD_TOO_LARGE, "too_large"));
    let (status, body) = api.call("GET", "/v1/nothing", None).await;
    assert_eq!((status, error_code(&body)), (StatusCode::NOT_FOUND, "no_such_route"));
}

#[tokio::test]
async fn calls_are_listed_from_the_store_and_hung_up_through_the_driver() {
    let api = api().await;
    let (status, body) = api.call("GET", "/v1/calls?active=true", None).await;
    assert_eq!((status, body["calls"].as_array().map(Vec::len)), (StatusCode::OK, Some(0)));
    assert!(body["next_cursor"].is_null());
    let (status, body) = api.call("POST", "/v1/calls/vc_live/hangup", None).await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::ACCEPTED, Some("ending")));
    let (status, body) = api.call("POST", "/v1/calls/vc_gone/hangup", None).await;
    assert_eq!((status, error_code(&body)), (StatusCode::NOT_FOUND, "not_found"));
    let (status, _) = api.call("GET", "/v1/calls/vc_gone", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn every_operation_in_the_openapi_document_is_routed() {
    let api = api().await;
    let (status, doc) = api.raw("GET", "/v1/openapi.json", None, None).await;
    assert_eq!((status, doc["openapi"].as_str()), (StatusCode::OK, Some("3.1.0")));
    let paths = doc["paths"].as_object().unwrap();
    assert_eq!(paths.values().map(|p| p.as_object().unwrap().len()).sum::<usize>(), openapi::OPERATIONS.len());
    for (path, ops) in paths {
        for (method, op) in ops.as_object().unwrap() {
            let uri = path.replace("{id}", "ag_x").replace("{number}", "+14155550199").replace("{sid}", "AC0");
            let body = op.get("requestBody").map(|_| "{}".to_string());
            let (status, body) = api.raw(&method.to_uppercase(), &uri, Some(TOKEN), body).await;
            assert!(status != StatusCode::METHOD_NOT_ALLOWED, "{method} {path} is not routed");
            if status == StatusCode::NOT_FOUND {
                assert_ne!(body["error"]["code"], "no_such_route", "{method} {path} is not routed");
            }
            for r in op["responses"].as_object().unwrap().values() {
                if let Some(schema) = r.pointer("/content/application~1json/schema/$ref").and_then(Value::as_str) {
                    let name = schema.rsplit('/').next().unwrap();
                    assert!(doc["components"]["schemas"].get(name).is_some(), "{schema} is not defined");
                }
            }
        }
    }
}

#[tokio::test]
async fn a_numbers_srtp_policy_is_set_cleared_and_routed_and_bad_values_say_what_is_allowed() {
    let api = api().await;
    let (_, echo) = api.call("POST", "/v1/agents", Some(json!({"name": "bot", "kind": "echo"}))).await;
    let agent = echo["id"].as_str().unwrap();
    let body = json!({"phone_number": "+14155550123", "agent_id": agent, "srtp": "required"});
    let (status, n) = api.call("POST", "/v1/numbers", Some(body)).await;
    assert_eq!((status, n["srtp"].as_str()), (StatusCode::CREATED, Some("required")), "{n}");
    let srtp = |api: &Api| match api.directory.lookup(&E164::parse("+14155550123").unwrap()) {
        Lookup::Agent { srtp, .. } => srtp,
        other => panic!("{other:?}"),
    };
    assert_eq!(srtp(&api), Some(crate::sdp::SrtpPolicy::Required), "the next call is held to it");
    let (status, n) = api.call("PATCH", "/v1/numbers/+14155550123", Some(json!({"srtp": null}))).await;
    assert_eq!((status, n["srtp"].clone(), n["agent_id"].as_str()), (StatusCode::OK, Value::Null, Some(agent)));
    assert_eq!(srtp(&api), None, "back to media.srtp");
    let (status, n) = api.call("PATCH", "/v1/numbers/+14155550123", Some(json!({"srtp": "off"}))).await;
    assert_eq!((status, n["srtp"].as_str()), (StatusCode::OK, Some("off")));
    let (status, body) = api.call("PATCH", "/v1/numbers/+14155550123", Some(json!({"srtp": "maybe"}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("off, allowed or required"), "{body}");
    let (status, body) = api.call("PATCH", "/v1/numbers/+14155550123", Some(json!({}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let body = json!({"phone_number": "+14155550124", "srtp": "sometimes"});
    assert_eq!(api.call("POST", "/v1/numbers", Some(body)).await.0, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(api.call("GET", "/v1/numbers/+14155550124", None).await.0, StatusCode::NOT_FOUND, "nothing half-added");
}

#[tokio::test]
async fn a_number_can_forbid_recording_whatever_its_agent_asks_and_bad_values_say_what_is_allowed() {
    use crate::media::recording::RecordMode;
    let api = api().await;
    let body = json!({"name": "bot", "kind": "echo", "settings": {"record": "dual"}});
    let (status, bot) = api.call("POST", "/v1/agents", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{bot}");
    let agent = bot["id"].as_str().unwrap();
    let body = json!({"phone_number": "+14155550123", "agent_id": agent, "record": "off"});
    let (status, n) = api.call("POST", "/v1/numbers", Some(body)).await;
    assert_eq!((status, n["record"].as_str()), (StatusCode::CREATED, Some("off")), "{n}");
    let lookup = |api: &Api| match api.directory.lookup(&E164::parse("+14155550123").unwrap()) {
        Lookup::Agent { record, agent, .. } => (record, agent.record),
        other => panic!("{other:?}"),
    };
    assert_eq!(lookup(&api), (Some(RecordMode::Off), Some(RecordMode::Dual)), "the number's off, the agent's dual");
    assert_eq!(RecordMode::of_call(RecordMode::Dual, Some(RecordMode::Dual), lookup(&api).0), RecordMode::Off);
    let (status, n) = api.call("PATCH", "/v1/numbers/+14155550123", Some(json!({"record": null}))).await;
    assert_eq!((status, n["record"].clone()), (StatusCode::OK, Value::Null));
    assert_eq!(lookup(&api).0, None, "back to its agent's word");
    let (status, body) = api.call("PATCH", "/v1/numbers/+14155550123", Some(json!({"record": "stereo"}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], "record", "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("off or dual"), "{body}");
    let body = json!({"name": "bad", "kind": "echo", "settings": {"record": "always"}});
    let (status, body) = api.call("POST", "/v1/agents", Some(body)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("settings.record"), "{body}");
}

#[tokio::test]
async fn a_number_typed_in_national_form_takes_the_country_of_the_numbers_already_added() {
    let api = api().await;
    let (status, _) = api.call("POST", "/v1/numbers", Some(json!({"phone_number": "+14155550123"}))).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = api.call("POST", "/v1/numbers", Some(json!({"phone_number": "(415) 555-0124"}))).await;
    assert_eq!((status, body["phone_number"].as_str()), (StatusCode::CREATED, Some("+14155550124")), "{body}");
    let (status, body) = api.call("POST", "/v1/numbers", Some(json!({"phone_number": "555-0125"}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["field"], "phone_number");
    assert!(body["error"]["message"].as_str().unwrap().contains("country code +1"), "{body}");
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A WebSocket server that takes any number of handshakes (and closes each).
async fn ws_server() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                if let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await {
                    use futures_util::StreamExt;
                    while let Some(Ok(_)) = ws.next().await {}
                }
            });
        }
    });
    port
}

fn problems(number: &Value) -> Vec<String> {
    number["health"]["problems"].as_array().unwrap().iter().map(|p| p["code"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn an_agent_is_checked_when_saved_and_its_numbers_health_says_when_it_does_not_answer() {
    let api = api().await;
    let down = format!("ws://127.0.0.1:{}/media", closed_port());
    let (status, agent) = api.call("POST", "/v1/agents", Some(json!({"name": "sales", "stream_url": down}))).await;
    assert_eq!(status, StatusCode::CREATED, "{agent}");
    assert_eq!(agent["check"]["ok"], false, "{agent}");
    assert!(!agent["check"]["detail"].as_str().unwrap().is_empty(), "{agent}");
    let id = agent["id"].as_str().unwrap().to_string();
    let number = json!({"phone_number": "+14155550123", "agent_id": id});
    assert_eq!(api.call("POST", "/v1/numbers", Some(number)).await.0, StatusCode::CREATED);
    let (_, list) = api.call("GET", "/v1/numbers", None).await;
    let n = &list["numbers"][0];
    assert_eq!((n["status"].as_str(), n["health"]["ok"].as_bool()), (Some("active"), Some(false)), "{n}");
    assert_eq!(problems(n), ["agent_unreachable"]);
    let message = n["health"]["problems"][0]["message"].as_str().unwrap();
    assert!(message.contains(&down), "{message}");
    assert!(n["routing"].is_null(), "a number added by hand has no trunk to show: {n}");

    // The agent is started and saved again: the check passes, and the number is healthy.
    let up = format!("ws://127.0.0.1:{}/media", ws_server().await);
    let (status, agent) = api.call("PATCH", &format!("/v1/agents/{id}"), Some(json!({"stream_url": up}))).await;
    assert_eq!((status, agent["check"]["ok"].as_bool()), (StatusCode::OK, Some(true)), "{agent}");
    let (_, n) = api.call("GET", "/v1/numbers/+14155550123", None).await;
    assert_eq!(n["health"], json!({"ok": true, "problems": []}));

    // Then calls start failing with "agent unavailable": the newest evidence wins over the check.
    let later = "2999-01-01T00:00:00.000Z";
    let call = crate::store::CallRecord {
        id: "vc_1".into(),
        to: "+14155550123".into(),
        agent: Some("sales".into()),
        invite_at: later.into(),
        end_at: Some(later.into()),
        end_reason: Some("agent unavailable: connection refused (os error 111)".into()),
        sip_status: Some(503),
        ..Default::default()
    };
    api.store.insert_call(&call).await.unwrap();
    let (_, n) = api.call("GET", "/v1/numbers/+14155550123", None).await;
    assert_eq!(problems(&n), ["agent_unreachable"]);
    assert!(n["health"]["problems"][0]["message"].as_str().unwrap().contains("got 503"), "{n}");

    // The check on demand.
    let (status, agent) = api.call("POST", &format!("/v1/agents/{id}/check"), None).await;
    assert_eq!((status, agent["check"]["ok"].as_bool()), (StatusCode::OK, Some(true)), "{agent}");
    let (_, agents) = api.call("GET", "/v1/agents", None).await;
    let sales = agents["agents"].as_array().unwrap().iter().find(|a| a["name"] == "sales").unwrap();
    assert_eq!(sales["check"]["ok"], true);
}

#[tokio::test]
async fn a_number_without_an_agent_says_so_and_the_list_says_who_answers_other_numbers() {
    let api = api().await;
    assert_eq!(
        api.call("POST", "/v1/numbers", Some(json!({"phone_number": "+14155550123"}))).await.0,
        StatusCode::CREATED
    );
    let (_, list) = api.call("GET", "/v1/numbers", None).await;
    assert_eq!(problems(&list["numbers"][0]), ["no_agent"]);
    assert!(list["other_numbers"]["answered_by"].is_null(), "{list}");
    assert!(list["other_numbers"]["rule"].as_str().unwrap().starts_with("refused 404"), "{list}");
}

#[tokio::test]
async fn removing_a_number_takes_restore_or_leave_for_twilio_and_nothing_else() {
    let api = api().await;
    assert_eq!(
        api.call("POST", "/v1/numbers", Some(json!({"phone_number": "+14155550123"}))).await.0,
        StatusCode::CREATED
    );
    let (status, body) = api.call("DELETE", "/v1/numbers/+14155550123?twilio=keep", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"]["message"].as_str().unwrap().contains("restore or leave"), "{body}");
    let (status, _) = api.call("DELETE", "/v1/numbers/+14155550123?twilio=leave", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(api.agent_of("+14155550123"), None);
}

/// Issue 26: `rules` on POST/PATCH/GET /v1/numbers, checked with the field named; the dry run; the week
/// ahead; the status while only a rule answers; an agent a rule names kept from deletion.
#[tokio::test]
async fn routing_rules_are_checked_stored_routed_and_dry_run() {
    let api = api().await;
    let (_, night) = api.call("POST", "/v1/agents", Some(json!({"name": "night", "kind": "echo"}))).await;
    let night = night["id"].as_str().unwrap().to_string();
    let bad = |rules: Value| json!({"phone_number": "+14155550130", "agent_id": "echo", "rules": rules});
    let cases = [
        (json!([{"when": {"zone": "Mars/Olympus", "days": ["mon"]}, "agent_id": night}]), "rules[0].when.zone"),
        (json!([{"when": {"zone": "UTC", "from": "09:00", "to": "09:00"}, "agent_id": night}]), "rules[0].when.to"),
        (json!([{"caller": "+44", "agent_id": "ag_nobody"}]), "rules[0].agent_id"),
        (json!([{"caller": "+44", "agent_id": night}, {"caller": "44x", "agent_id": night}]), "rules[1].caller[0]"),
        (json!([{"agent_id": night}]), "rules[0]"),
        (json!([{"caller": "+44", "agent_id": night, "priority": 1}]), "rules[0].priority"),
        (json!((0..33).map(|_| json!({"caller": "+44", "agent_id": night})).collect::<Vec<_>>()), "rules"),
    ];
    for (rules, field) in cases {
        let (status, body) = api.call("POST", "/v1/numbers", Some(bad(rules.clone()))).await;
        assert_eq!(
            (status, body["error"]["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(field)),
            "{rules}"
        );
        assert!(body["error"]["message"].as_str().unwrap().starts_with(field), "{body}");
    }
    let (status, _) = api.call("GET", "/v1/numbers/+14155550130", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a refused POST adds nothing");

    // A number answered only at night: active, with the night agent from 18:00 to 08:00 New York time.
    let rules = json!([{"when": {"zone": "America/New_York", "from": "18:00", "to": "08:00"}, "agent_id": night}]);
    let (status, n) =
        api.call("POST", "/v1/numbers", Some(json!({"phone_number": "+14155550130", "rules": rules}))).await;
    assert_eq!((status, n["status"].as_str(), &n["rules"]), (StatusCode::CREATED, Some("active"), &rules), "{n}");
    let (_, n) = api.call("GET", "/v1/numbers/+14155550130", None).await;
    assert!(n["health"]["ok"].as_bool().unwrap(), "a rule answers: no no_agent problem: {n}");
    let segments = n["schedule"]["segments"].as_array().unwrap();
    assert!((14..=16).contains(&segments.len()), "a change at each 08:00 and 18:00 of the week: {n:#}");
    assert!(segments.iter().all(|s| s["route"] == "default" || s["agent"] == "night"), "{segments:?}");

    // The dry run, at a local time read in the rules' zone, and at an instant.
    let route = |q: &'static str| {
        let api = &api;
        async move { api.call("GET", &format!("/v1/numbers/+14155550130/route?{q}"), None).await }
    };
    let (status, d) = route("at=2026-12-24T19:00").await;
    assert_eq!((status, d["route"].as_str(), d["agent"].as_str()), (StatusCode::OK, Some("rules[0]"), Some("night")));
    assert_eq!(d["at"], "2026-12-25T00:00:00Z", "19:00 in New York: {d}");
    let (_, d) = route("at=2026-12-24T15:00:00Z").await;
    assert_eq!((d["route"].as_str(), d["answered"].as_bool()), (Some("default"), Some(false)), "{d}");
    assert!(d["outcome"].as_str().unwrap().starts_with("480"), "{d}");
    let (status, d) = route("at=tomorrow").await;
    assert_eq!((status, d["error"]["field"].as_str()), (StatusCode::BAD_REQUEST, Some("at")));
    let (status, d) = route("caller=12").await;
    assert_eq!((status, d["error"]["field"].as_str()), (StatusCode::BAD_REQUEST, Some("caller")));
    let (status, _) = api.call("GET", "/v1/numbers/+14155550199/route", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The agent a rule names cannot be deleted; clearing the rules frees it, and the number is inactive.
    let (status, body) = api.call("DELETE", &format!("/v1/agents/{night}"), None).await;
    assert_eq!((status, error_code(&body)), (StatusCode::CONFLICT, "agent_in_use"));
    assert!(body["error"]["message"].as_str().unwrap().contains("+14155550130 (rules[0])"), "{body}");
    let (status, n) = api.call("PATCH", "/v1/numbers/+14155550130", Some(json!({"rules": null}))).await;
    assert_eq!((status, n["status"].as_str(), &n["rules"]), (StatusCode::OK, Some("inactive"), &json!([])));
    assert_eq!(api.call("DELETE", &format!("/v1/agents/{night}"), None).await.0, StatusCode::NO_CONTENT);
}
