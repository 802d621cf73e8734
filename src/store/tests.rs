//! Every store test runs against SQLite and against PostgreSQL. PostgreSQL comes from
//! `POSTGRES_TEST_URL` (a role allowed to create databases; `sip-tests/run` starts the local cluster and
//! sets it); each test gets a database of its own. Without it these tests fail, saying how to get one.

use super::*;
use crate::routing::{Lookup, NumberLookup};

const NUMBER: &str = "+14155550123";

/// A store on a fresh SQLite file, and one on a fresh PostgreSQL database.
async fn stores() -> Vec<(&'static str, Store)> {
    let dir = std::env::temp_dir().join(new_id("vocals-store-"));
    std::fs::create_dir_all(&dir).unwrap();
    let key = || secret::SecretKey::from_base64(&secret::SecretKey::generate().unwrap()).unwrap();
    let sqlite =
        Store::open(&format!("sqlite://{}", dir.join("vocals.db").display())).await.unwrap().with_secret(key());
    let base = std::env::var("POSTGRES_TEST_URL").unwrap_or_else(|_| {
        panic!(
            "POSTGRES_TEST_URL is not set: run `bash sip-tests/run` (it starts the local PostgreSQL and sets \
             it), or point it at a role that may create databases, e.g. postgres://vocals:vocals@127.0.0.1/postgres"
        )
    });
    sqlx::any::install_default_drivers();
    let name = new_id("vocals_t_");
    let admin = AnyPool::connect(&base).await.unwrap_or_else(|e| panic!("PostgreSQL at {base}: {e}"));
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&admin).await.unwrap();
    let url = match base.rsplit_once('/') {
        Some((server, _)) => format!("{server}/{name}"),
        None => panic!("POSTGRES_TEST_URL must name a database: {base}"),
    };
    let postgres = Store::open(&url).await.unwrap().with_secret(key());
    vec![("sqlite", sqlite), ("postgres", postgres)]
}

fn websocket(name: &str) -> NewAgent {
    NewAgent {
        name: name.into(),
        kind: "websocket".into(),
        stream_url: Some("wss://agents.example.com/stream".into()),
        system_prompt: "Be brief.".into(),
        ..NewAgent::default()
    }
}

#[tokio::test]
async fn the_built_in_echo_agent_is_assignable_and_read_only() {
    for (db, store) in stores().await {
        let echo = store.agent(BUILTIN_ECHO).await.unwrap().expect("the built-in echo row exists");
        assert!(echo.builtin && echo.kind == "echo" && echo.name == "echo", "{db}: {echo:?}");
        let n = E164::parse("+14155550123").unwrap();
        let added = store.add_number(&n, Some(BUILTIN_ECHO)).await.unwrap();
        assert_eq!((added.agent_id.as_deref(), added.status.as_str()), (Some("echo"), "active"), "{db}");
        let table = store.routing_table().await.unwrap();
        assert!(matches!(table.lookup(&n), Lookup::Agent { agent, .. } if agent.kind == AgentKind::Echo), "{db}");
        let rename = AgentPatch { name: Some("mine".into()), ..AgentPatch::default() };
        assert!(matches!(store.update_agent(BUILTIN_ECHO, &rename).await, Err(StoreError::ReadOnly(_))), "{db}");
        store.delete_number(&n).await.unwrap();
        assert!(matches!(store.delete_agent(BUILTIN_ECHO).await, Err(StoreError::ReadOnly(_))), "{db}");
        let again = NewAgent { name: "echo".into(), kind: "echo".into(), ..NewAgent::default() };
        assert!(matches!(store.create_agent(&again).await, Err(StoreError::Conflict(_))), "{db}");
    }
}

#[tokio::test]
async fn agents_are_created_listed_and_refused_when_invalid_or_taken() {
    for (db, store) in stores().await {
        let a = store.create_agent(&websocket("support")).await.unwrap();
        assert!(a.id.starts_with("ag_"), "{db}");
        assert_eq!(store.agent(&a.id).await.unwrap(), Some(a.clone()), "{db}");
        let echo = NewAgent { name: "echo-test".into(), kind: "echo".into(), ..NewAgent::default() };
        store.create_agent(&echo).await.unwrap();
        let names: Vec<String> = store.agents().await.unwrap().into_iter().map(|a| a.name).collect();
        assert_eq!(names, ["echo", "echo-test", "support"], "{db}: the built-in echo is listed");
        assert!(matches!(store.create_agent(&websocket("support")).await, Err(StoreError::Conflict(_))), "{db}");
        let bad = NewAgent { stream_url: Some("http://x".into()), ..websocket("other") };
        assert!(matches!(store.create_agent(&bad).await, Err(StoreError::Invalid(_))), "{db}");
        assert!(a.created_at.ends_with('Z') && a.created_at.len() == 24, "{db}: {}", a.created_at);
    }
}

#[tokio::test]
async fn numbers_are_active_with_an_agent_inactive_without_and_reassigned_for_the_next_call() {
    for (db, store) in stores().await {
        let support = store.create_agent(&websocket("support")).await.unwrap();
        let sales = store.create_agent(&websocket("sales")).await.unwrap();
        let number: E164 = NUMBER.parse().unwrap();
        let n = store.add_number(&number, Some(&support.id)).await.unwrap();
        assert_eq!((n.status.as_str(), n.agent_id.as_deref()), ("active", Some(support.id.as_str())), "{db}");
        assert!(matches!(store.add_number(&number, None).await, Err(StoreError::Conflict(_))), "{db}");
        // Routing reads a snapshot: it names the agent, and a reassignment shows in the next snapshot only.
        let before = store.routing_table().await.unwrap();
        store.assign_number(&number, Some(&sales.id)).await.unwrap();
        let after = store.routing_table().await.unwrap();
        let agent = |l: Lookup| match l {
            Lookup::Agent { agent, .. } => agent.name.clone(),
            other => format!("{other:?}"),
        };
        assert_eq!(agent(before.lookup(&number)), "support", "{db}: the call in progress keeps its agent");
        assert_eq!(agent(after.lookup(&number)), "sales", "{db}: the next call reaches the new agent");
        let n = store.assign_number(&number, None).await.unwrap();
        assert_eq!(n.status, "inactive", "{db}");
        assert_eq!(store.routing_table().await.unwrap().lookup(&number), Lookup::Unassigned, "{db}: 480");
        let other: E164 = "+14155550124".parse().unwrap();
        assert_eq!(after.lookup(&other), Lookup::Unknown, "{db}: 404");
        assert!(matches!(store.add_number(&other, Some("ag_missing")).await, Err(StoreError::NotFound(_))), "{db}");
        store.delete_number(&number).await.unwrap();
        assert!(matches!(store.delete_number(&number).await, Err(StoreError::NotFound(_))), "{db}");
    }
}

#[tokio::test]
async fn an_agent_that_numbers_use_cannot_be_deleted() {
    for (db, store) in stores().await {
        let support = store.create_agent(&websocket("support")).await.unwrap();
        let number: E164 = NUMBER.parse().unwrap();
        store.add_number(&number, Some(&support.id)).await.unwrap();
        match store.delete_agent(&support.id).await {
            Err(StoreError::InUse { numbers, .. }) => assert_eq!(numbers, [NUMBER], "{db}"),
            other => panic!("{db}: {other:?}"),
        }
        store.assign_number(&number, None).await.unwrap();
        store.delete_agent(&support.id).await.unwrap();
        assert_eq!(store.agent(&support.id).await.unwrap(), None, "{db}");
    }
}

#[test]
fn timestamps_are_rfc3339_utc() {
    let now = now_rfc3339();
    assert_eq!(now.len(), 24, "{now}");
    assert_eq!((&now[4..5], &now[10..11], &now[23..]), ("-", "T", "Z"));
    assert!(now.as_str() > "2025-01-01T00:00:00.000Z");
}

#[tokio::test]
async fn agents_change_with_a_patch_and_keep_their_secret_out_of_json() {
    for (db, store) in stores().await {
        let new = NewAgent {
            providers: Some(serde_json::json!({"llm": "gpt"})),
            signing_secret: Some("s3cret-s3cret-s3cret".into()),
            ..websocket("support")
        };
        let a = store.create_agent(&new).await.unwrap();
        assert!(a.signed, "{db}");
        // Sealed at rest: the column holds no trace of the secret.
        let stored: String = sqlx::query("SELECT signing_secret FROM agents WHERE id = $1")
            .bind(&a.id)
            .fetch_one(store.pool())
            .await
            .unwrap()
            .try_get(0)
            .unwrap();
        assert!(stored.starts_with("v1:") && !stored.contains("s3cret"), "{db}: {stored}");
        // Too short to be a password: refused, saying so.
        let short = NewAgent { signing_secret: Some("x".into()), ..websocket("short") };
        let e = store.create_agent(&short).await.unwrap_err().to_string();
        assert!(e.contains("at least 16 characters"), "{db}: {e}");
        let text = serde_json::to_string(&a).unwrap();
        assert!(!text.contains("s3cret-s3cret-s3cret") && text.contains("\"llm\":\"gpt\""), "{db}: {text}");
        let config = a.to_config();
        assert_eq!(
            (config.secret.as_deref(), config.auth_token.as_deref()),
            (Some("s3cret-s3cret-s3cret"), Some("s3cret-s3cret-s3cret")),
            "{db}"
        );
        assert_eq!(config.parameters.get("systemPrompt").map(String::as_str), Some("Be brief."), "{db}");
        let patch = AgentPatch {
            name: Some("front-desk".into()),
            stream_url: Some(Some("ws://127.0.0.1:9/x".into())),
            signing_secret: Some(None),
            ..AgentPatch::default()
        };
        let b = store.update_agent(&a.id, &patch).await.unwrap();
        assert_eq!(
            (b.name.as_str(), b.stream_url.as_deref(), b.signed),
            ("front-desk", Some("ws://127.0.0.1:9/x"), false),
            "{db}"
        );
        assert_eq!(b.providers, serde_json::json!({"llm": "gpt"}), "{db}: untouched fields stay");
        let bad = AgentPatch { stream_url: Some(None), ..AgentPatch::default() };
        assert!(matches!(store.update_agent(&a.id, &bad).await, Err(StoreError::Invalid(_))), "{db}");
        let bad = AgentPatch { settings: Some(serde_json::json!([1])), ..AgentPatch::default() };
        assert!(matches!(store.update_agent(&a.id, &bad).await, Err(StoreError::Invalid(_))), "{db}");
        store.create_agent(&websocket("sales")).await.unwrap();
        let clash = AgentPatch { name: Some("sales".into()), ..AgentPatch::default() };
        assert!(matches!(store.update_agent(&a.id, &clash).await, Err(StoreError::Conflict(_))), "{db}");
        assert!(matches!(store.update_agent("ag_nope", &clash).await, Err(StoreError::NotFound(_))), "{db}");
    }
}

fn call(id: &str, at: &str, agent: &str) -> CallRecord {
    CallRecord {
        id: id.into(),
        call_sid: Some(format!("CA{id}")),
        sip_call_id: format!("{id}@twilio"),
        from: "+12125550100".into(),
        to: NUMBER.into(),
        agent: Some(agent.into()),
        node: "node-a".into(),
        invite_at: at.into(),
        ..CallRecord::default()
    }
}

#[tokio::test]
async fn call_records_are_written_completed_and_paged_newest_first() {
    for (db, store) in stores().await {
        for i in 0..5 {
            store
                .insert_call(&call(&format!("vc_{i}"), &format!("2026-11-25T10:00:0{i}.000Z"), "support"))
                .await
                .unwrap();
        }
        store.call_answered("vc_4", "2026-11-25T10:00:05.000Z", "PCMU").await.unwrap();
        store.call_stats("vc_4", &serde_json::json!({"rtp": {"received": 50}})).await.unwrap();
        store.call_ended("vc_3", "2026-11-25T10:00:09.000Z", "the caller cancelled", 487).await.unwrap();
        let c = store.call("vc_4").await.unwrap().unwrap();
        assert_eq!((c.sip_status, c.codec.as_deref(), c.end_at.as_deref()), (Some(200), Some("PCMU"), None), "{db}");
        assert_eq!(c.stats["rtp"]["received"], 50, "{db}");
        assert_eq!(store.call("CAvc_3").await.unwrap().unwrap().sip_status, Some(487), "{db}: by CallSid");
        let page = |cursor: Option<String>, active: Option<bool>| CallQuery {
            active,
            cursor,
            limit: 2,
            ..CallQuery::default()
        };
        let (first, next) = store.calls(&page(None, None)).await.unwrap();
        let ids: Vec<_> = first.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["vc_4", "vc_3"], "{db}");
        let (second, next) = store.calls(&page(next, None)).await.unwrap();
        assert_eq!(second.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), ["vc_2", "vc_1"], "{db}");
        let (third, next) = store.calls(&page(next, None)).await.unwrap();
        assert_eq!((third.len(), next), (1, None), "{db}");
        let (ended, _) = store.calls(&page(None, Some(false))).await.unwrap();
        assert_eq!(ended.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), ["vc_3"], "{db}");
        assert!(matches!(store.calls(&page(Some("garbage!".into()), None)).await, Err(StoreError::Invalid(_))), "{db}");
        assert_eq!(store.close_unfinished_calls("node-a").await.unwrap(), 4, "{db}");
        let (active, _) = store.calls(&page(None, Some(true))).await.unwrap();
        assert!(active.is_empty(), "{db}");
        assert!(
            matches!(
                store.insert_call(&call("vc_0", "2026-11-25T10:00:00.000Z", "x")).await,
                Err(StoreError::Database(_))
            ),
            "{db}: ids are unique"
        );
    }
}

#[tokio::test]
async fn twilio_tokens_are_sealed_at_rest_and_an_account_numbers_use_stays() {
    const SID: &str = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    for (db, store) in stores().await {
        let account = store.put_twilio_account(SID, "tok-1", "Main").await.unwrap();
        assert_eq!((account.account_sid.as_str(), account.friendly_name.as_str()), (SID, "Main"), "{db}");
        let raw: String =
            sqlx::query("SELECT sealed_token FROM twilio_accounts").fetch_one(&store.pool).await.unwrap().get(0);
        assert!(raw.starts_with("v1:") && !raw.contains("tok-1"), "{db}: stored sealed: {raw}");
        assert_eq!(store.twilio_token(SID).await.unwrap().as_deref(), Some("tok-1"), "{db}");
        store.put_twilio_account(SID, "tok-2", "Main").await.unwrap();
        assert_eq!(store.twilio_token(SID).await.unwrap().as_deref(), Some("tok-2"), "{db}: re-linked");
        assert_eq!(store.twilio_accounts().await.unwrap().len(), 1, "{db}");
        assert!(!serde_json::to_string(&store.twilio_accounts().await.unwrap()).unwrap().contains("tok"), "{db}");
        assert!(matches!(store.put_twilio_account("AC123", "t", "").await, Err(StoreError::Invalid(_))), "{db}");
        let number: E164 = NUMBER.parse().unwrap();
        store.add_number(&number, None).await.unwrap();
        sqlx::query("UPDATE phone_numbers SET twilio_account_sid = $1").bind(SID).execute(&store.pool).await.unwrap();
        match store.delete_twilio_account(SID).await {
            Err(StoreError::InUse { numbers, .. }) => assert_eq!(numbers, [NUMBER], "{db}"),
            other => panic!("{db}: {other:?}"),
        }
        store.delete_number(&number).await.unwrap();
        store.delete_twilio_account(SID).await.unwrap();
        assert_eq!(store.twilio_token(SID).await.unwrap(), None, "{db}");
    }
}

#[tokio::test]
async fn an_accounts_termination_credential_is_kept_sealed_and_opens_only_for_its_account() {
    const SID: &str = "ACcccccccccccccccccccccccccccccccc";
    const OTHER: &str = "ACdddddddddddddddddddddddddddddddd";
    for (db, store) in stores().await {
        assert_eq!(store.twilio_termination(SID).await.unwrap(), None, "{db}: not linked");
        store.put_twilio_account(SID, "tok-1", "").await.unwrap();
        let t = store.twilio_termination(SID).await.unwrap().unwrap();
        assert_eq!((t.auth_token.as_str(), t.domain, t.credential_list_sid, t.password), ("tok-1", None, None, None));
        store.set_account_trunk(SID, Some("TK1")).await.unwrap();
        store.set_trunk_view(SID, Some("vocals-1.pstn.twilio.com"), &serde_json::json!([])).await.unwrap();
        store.set_account_credential(SID, Some(("CL1", "vocals-user", "Secret-Passw0rd"))).await.unwrap();
        let t = store.twilio_termination(SID).await.unwrap().unwrap();
        assert_eq!(t.trunk_sid.as_deref(), Some("TK1"), "{db}");
        assert_eq!(t.domain.as_deref(), Some("vocals-1.pstn.twilio.com"), "{db}");
        assert_eq!(t.credential_list_sid.as_deref(), Some("CL1"), "{db}");
        assert_eq!(t.username.as_deref(), Some("vocals-user"), "{db}");
        assert_eq!(t.password.as_deref(), Some("Secret-Passw0rd"), "{db}");
        assert!(!format!("{t:?}").contains("Secret-Passw0rd") && !format!("{t:?}").contains("tok-1"), "{db}: {t:?}");
        let raw: String =
            sqlx::query("SELECT sealed_sip_password FROM twilio_accounts").fetch_one(&store.pool).await.unwrap().get(0);
        assert!(raw.starts_with("v1:") && !raw.contains("Secret"), "{db}: stored sealed: {raw}");
        // Moved to another account's row, it does not open.
        store.put_twilio_account(OTHER, "tok-2", "").await.unwrap();
        sqlx::query("UPDATE twilio_accounts SET sealed_sip_password = $1 WHERE account_sid = $2")
            .bind(&raw)
            .bind(OTHER)
            .execute(&store.pool)
            .await
            .unwrap();
        assert!(matches!(store.twilio_termination(OTHER).await, Err(StoreError::Secret(_))), "{db}");
        // Re-linking with a new token keeps the credential; forgetting it clears all three.
        store.put_twilio_account(SID, "tok-3", "").await.unwrap();
        let t = store.twilio_termination(SID).await.unwrap().unwrap();
        assert_eq!((t.auth_token.as_str(), t.password.as_deref()), ("tok-3", Some("Secret-Passw0rd")), "{db}");
        store.set_account_credential(SID, None).await.unwrap();
        let t = store.twilio_termination(SID).await.unwrap().unwrap();
        assert_eq!((t.credential_list_sid, t.username, t.password), (None, None, None), "{db}");
        assert!(matches!(store.set_account_credential("ACnone", None).await, Err(StoreError::NotFound(_))), "{db}");
        // The IP access control list made instead of a credential list: kept, and forgotten, on its own.
        assert_eq!(t.ip_acl_sid, None, "{db}");
        store.set_account_ip_acl(SID, Some("AL1")).await.unwrap();
        let t = store.twilio_termination(SID).await.unwrap().unwrap();
        assert_eq!((t.ip_acl_sid.as_deref(), t.trunk_sid.as_deref()), (Some("AL1"), Some("TK1")), "{db}");
        store.set_account_ip_acl(SID, None).await.unwrap();
        assert_eq!(store.twilio_termination(SID).await.unwrap().unwrap().ip_acl_sid, None, "{db}");
        assert!(matches!(store.set_account_ip_acl("ACnone", None).await, Err(StoreError::NotFound(_))), "{db}");
    }
}

#[tokio::test]
async fn a_twilio_number_starts_in_error_until_configured_and_keeps_its_snapshot() {
    const SID: &str = "ACbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    for (db, store) in stores().await {
        store.put_twilio_account(SID, "tok", "").await.unwrap();
        store.set_account_trunk(SID, Some("TK1")).await.unwrap();
        assert_eq!(store.twilio_account(SID).await.unwrap().unwrap().trunk_sid.as_deref(), Some("TK1"), "{db}");
        let agent = store.create_agent(&websocket("support")).await.unwrap();
        let number: E164 = NUMBER.parse().unwrap();
        let snapshot = serde_json::json!({"voice_url": "https://example.com/voice"});
        let n = store.add_twilio_number(&number, Some(&agent.id), SID, "PN1", &snapshot).await.unwrap();
        assert_eq!((n.status.as_str(), n.twilio_number_sid.as_deref()), ("error", Some("PN1")), "{db}");
        assert_eq!(n.twilio_snapshot, snapshot, "{db}");
        assert!(matches!(
            store.add_twilio_number(&number, None, SID, "PN1", &snapshot).await,
            Err(StoreError::Conflict(_))
        ));
        // Reassigning a number in error keeps it in error: its Twilio side is what is wrong.
        let sales = store.create_agent(&websocket("sales")).await.unwrap();
        assert_eq!(store.assign_number(&number, Some(&sales.id)).await.unwrap().status, "error", "{db}");
        let n = store.set_number_status(&number, None).await.unwrap();
        assert_eq!((n.status.as_str(), n.status_detail.as_str()), ("active", ""), "{db}");
        let n = store.set_number_status(&number, Some("drift: moved")).await.unwrap();
        assert_eq!((n.status.as_str(), n.status_detail.as_str()), ("error", "drift: moved"), "{db}");
        // Routing checks the owning account on Twilio calls.
        match store.routing_table().await.unwrap().lookup(&number) {
            Lookup::Agent { account_sid, .. } => assert_eq!(account_sid.as_deref(), Some(SID), "{db}"),
            other => panic!("{db}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_numbers_srtp_policy_is_stored_and_routed_and_can_be_cleared() {
    for (db, store) in stores().await {
        let support = store.create_agent(&websocket("support")).await.unwrap();
        let number: E164 = NUMBER.parse().unwrap();
        let added = store.add_number(&number, Some(&support.id)).await.unwrap();
        assert_eq!(added.srtp, None, "{db}: a new number follows media.srtp");
        let srtp = |table: &NumberTable| match table.lookup(&number) {
            Lookup::Agent { srtp, .. } => srtp,
            other => panic!("{other:?}"),
        };
        let set = store.set_number_srtp(&number, Some(SrtpPolicy::Required)).await.unwrap();
        assert_eq!(set.srtp.as_deref(), Some("required"), "{db}");
        assert_eq!(srtp(&store.routing_table().await.unwrap()), Some(SrtpPolicy::Required), "{db}");
        assert_eq!(serde_json::to_value(&set).unwrap()["srtp"], "required", "{db}");
        let cleared = store.set_number_srtp(&number, None).await.unwrap();
        assert_eq!(cleared.srtp, None, "{db}");
        assert_eq!(srtp(&store.routing_table().await.unwrap()), None, "{db}");
        let unknown: E164 = "+14155550100".parse().unwrap();
        assert!(matches!(store.set_number_srtp(&unknown, None).await, Err(StoreError::NotFound(_))), "{db}");
    }
}

#[tokio::test]
async fn the_recorder_commits_queued_writes_together_and_a_refused_one_costs_only_itself() {
    use crate::store::catalog::{CallWrite, Recorder};
    for (db, store) in stores().await {
        store.insert_call(&call("vc_old", "2026-11-25T09:00:00.000Z", "support")).await.unwrap();
        let store = std::sync::Arc::new(store);
        let (recorder, writer) = Recorder::spawn(store.clone(), 64);
        let at = |s: u32| format!("2026-11-25T10:00:{s:02}.000Z");
        let ended = |id: &str, s, status| CallWrite::Ended {
            id: id.into(),
            at: at(s),
            reason: "the caller hung up".into(),
            sip_status: status,
        };
        // All queued before the writer first runs (this runtime has one thread), so they arrive as one batch.
        recorder.send(CallWrite::Start(Box::new(call("vc_a", &at(0), "support"))));
        recorder.send(CallWrite::Answered { id: "vc_a".into(), at: at(1), codec: "PCMU".into() });
        recorder.send(CallWrite::Start(Box::new(call("vc_b", &at(2), "support"))));
        recorder.send(CallWrite::Stats { id: "vc_a".into(), stats: serde_json::json!({"rtp": {"received": 7}}) });
        recorder.send(ended("vc_a", 9, 200));
        recorder.send(ended("vc_b", 3, 486));
        recorder.send(CallWrite::Answered { id: "vc_old".into(), at: at(4), codec: "PCMA".into() });
        drop(recorder);
        writer.await.unwrap();
        let a = store.call("vc_a").await.unwrap().unwrap();
        assert_eq!(
            (a.answer_at.as_deref(), a.end_at.as_deref(), a.sip_status, a.codec.as_deref()),
            (Some(at(1).as_str()), Some(at(9).as_str()), Some(200), Some("PCMU")),
            "{db}"
        );
        assert_eq!(a.stats["rtp"]["received"], 7, "{db}");
        let b = store.call("vc_b").await.unwrap().unwrap();
        assert_eq!((b.answer_at, b.sip_status, b.end_reason.as_deref()), (None, Some(486), Some("the caller hung up")));
        assert_eq!(store.call("vc_old").await.unwrap().unwrap().codec.as_deref(), Some("PCMA"), "{db}");

        // A batch with a write the database refuses (a second record with vc_a's id): the batch is applied one
        // write at a time, and every other write lands.
        let (recorder, writer) = Recorder::spawn(store.clone(), 64);
        recorder.send(CallWrite::Start(Box::new(call("vc_c", &at(10), "support"))));
        recorder.send(CallWrite::Start(Box::new(call("vc_a", &at(11), "other"))));
        recorder.send(ended("vc_c", 12, 200));
        drop(recorder);
        writer.await.unwrap();
        assert_eq!(store.call("vc_c").await.unwrap().unwrap().end_at.as_deref(), Some(at(12).as_str()), "{db}");
        assert_eq!(store.call("vc_a").await.unwrap().unwrap().agent.as_deref(), Some("support"), "{db}: kept");
    }
}

#[tokio::test]
async fn a_busy_batch_inserts_its_records_many_to_a_statement_each_with_its_own_values() {
    use crate::store::catalog::{CallWrite, Recorder};
    for (db, store) in stores().await {
        store.insert_call(&call("vc_earlier", "2026-11-25T09:00:00.000Z", "support")).await.unwrap();
        // The statement itself, with this store's placeholders, at its largest (the writer falls back to one
        // write at a time when a batch fails, which would hide a broken one).
        let rows: Vec<CallRecord> = (0..crate::store::calls::on::INSERT_ROWS)
            .map(|i| call(&format!("vc_direct_{i}"), "2026-11-25T08:00:00.000Z", &format!("a{i}")))
            .collect();
        let refs: Vec<&CallRecord> = rows.iter().collect();
        crate::store::calls::on::insert_calls(store.pool(), &refs, store.is_postgres()).await.unwrap();
        assert_eq!(store.call("vc_direct_127").await.unwrap().unwrap().agent.as_deref(), Some("a127"), "{db}");
        let store = std::sync::Arc::new(store);
        let (recorder, writer) = Recorder::spawn(store.clone(), 2048);
        // 300 calls: more than two statements' worth of rows, each row's values different, some with every
        // column set and some refused (no agent, no answer); and an update of a record from an earlier batch
        // in the middle.
        let at = |i: usize| format!("2026-11-25T10:{:02}:{:02}.000Z", i / 60, i % 60);
        for i in 0..300 {
            let id = format!("vc_{i:03}");
            let mut record = call(&id, &at(i), &format!("agent-{}", i % 7));
            if i % 3 == 0 {
                record.agent = None;
                record.sip_status = Some(404);
                record.end_reason = Some(format!("no agent for number {i}"));
            }
            recorder.send(CallWrite::Start(Box::new(record)));
            if i % 3 != 0 {
                recorder.send(CallWrite::Answered { id: id.clone(), at: at(i + 1), codec: "PCMU".into() });
                let stats = serde_json::json!({"rtp": {"received": i}});
                recorder.send(CallWrite::Stats { id: id.clone(), stats });
            }
            if i == 150 {
                recorder.send(CallWrite::Answered { id: "vc_earlier".into(), at: at(0), codec: "PCMA".into() });
            }
        }
        drop(recorder);
        writer.await.unwrap();
        for i in 0..300 {
            let c = store.call(&format!("vc_{i:03}")).await.unwrap().unwrap_or_else(|| panic!("{db}: vc_{i:03}"));
            assert_eq!(c.invite_at, at(i), "{db}");
            assert_eq!(c.call_sid, Some(format!("CAvc_{i:03}")), "{db}");
            if i % 3 == 0 {
                assert_eq!((c.agent, c.sip_status, c.answer_at), (None, Some(404), None), "{db}: {i}");
                assert_eq!(c.end_reason, Some(format!("no agent for number {i}")), "{db}");
            } else {
                assert_eq!(c.agent, Some(format!("agent-{}", i % 7)), "{db}");
                assert_eq!((c.sip_status, c.answer_at, c.codec.as_deref()), (Some(200), Some(at(i + 1)), Some("PCMU")));
                assert_eq!(c.stats["rtp"]["received"], i, "{db}");
            }
        }
        assert_eq!(store.call("vc_earlier").await.unwrap().unwrap().codec.as_deref(), Some("PCMA"), "{db}");
    }
}

#[tokio::test]
async fn a_calls_sip_trace_and_timeline_are_stored_by_call_id_and_a_refusal_without_a_record_gets_one() {
    use crate::store::calls::on;
    for (db, store) in stores().await {
        let mut first = call("vc_a", "2026-11-25T10:00:00.000Z", "support");
        first.sip_call_id = "same@host".into();
        let mut later = call("vc_b", "2026-11-25T10:05:00.000Z", "support");
        later.sip_call_id = "same@host".into();
        store.insert_call(&first).await.unwrap();
        store.insert_call(&later).await.unwrap();
        assert_eq!(store.call_insight("vc_b", Insight::Sip).await.unwrap(), Some(Value::Null), "{db}: none yet");
        assert_eq!(store.call_insight("vc_zz", Insight::Sip).await.unwrap(), None, "{db}: unknown call");
        // A trace goes to the latest call with its Call-ID.
        let trace = serde_json::json!({"messages": [{"dir": "in", "text": "INVITE sip:x SIP/2.0\r\n"}], "total": 1});
        // (SQLite's pool is one connection: each write takes it and gives it back.)
        let sip = |id: &'static str, refused: Option<CallRecord>| {
            let (store, trace) = (&store, trace.clone());
            async move {
                let mut conn = store.pool().acquire().await.unwrap();
                on::call_sip(&mut conn, id, &trace.to_string(), refused.as_ref()).await.unwrap();
            }
        };
        sip("same@host", None).await;
        assert_eq!(store.call_insight("vc_b", Insight::Sip).await.unwrap(), Some(trace.clone()), "{db}");
        assert_eq!(store.call_insight("vc_a", Insight::Sip).await.unwrap(), Some(Value::Null), "{db}");
        // A refusal the SIP layer made has no record: it gets one, with its trace.
        let mut refused = call("vc_r", "2026-11-25T10:06:00.000Z", "support");
        refused.sip_call_id = "refused@host".into();
        refused.end_reason = Some("refused by the SIP layer: 420 Bad Extension".into());
        refused.sip_status = Some(420);
        sip("refused@host", Some(refused.clone())).await;
        let r = store.call("vc_r").await.unwrap().unwrap();
        assert_eq!((r.sip_status, r.end_reason.as_deref()), (Some(420), refused.end_reason.as_deref()), "{db}");
        assert_eq!(store.call_insight("vc_r", Insight::Sip).await.unwrap(), Some(trace.clone()), "{db}");
        // A trace whose call is gone and that is no refusal is dropped quietly.
        sip("nobody@host", None).await;
        // A short call's writes in one batch fold into one insert, its trace (found by Call-ID) and timeline too.
        use crate::store::catalog::{CallWrite, fold};
        let mut short = call("vc_s", "2026-11-25T10:07:00.000Z", "support");
        short.sip_call_id = "short@host".into();
        let mut batch = vec![
            CallWrite::Start(Box::new(short)),
            CallWrite::Ended {
                id: "vc_s".into(),
                at: "2026-11-25T10:07:01.000Z".into(),
                reason: "bye".into(),
                sip_status: 200,
            },
            CallWrite::Timeline { id: "vc_s".into(), timeline: serde_json::json!({"samples": [[1]]}) },
            CallWrite::Sip { sip_call_id: "short@host".into(), trace: trace.to_string(), refused: None },
            CallWrite::Sip { sip_call_id: "other@host".into(), trace: trace.to_string(), refused: None },
        ];
        fold(&mut batch);
        assert_eq!(batch.len(), 2, "{db}: one insert, and the other call's trace as an update");
        let CallWrite::Start(folded) = &batch[0] else { panic!("{batch:?}") };
        assert_eq!(
            (folded.sip.clone(), folded.timeline["samples"][0][0].as_u64()),
            (trace.to_string(), Some(1)),
            "{db}"
        );
        on::insert_calls(store.pool(), &[&**folded], store.is_postgres()).await.unwrap();
        assert_eq!(store.call_insight("vc_s", Insight::Sip).await.unwrap(), Some(trace.clone()), "{db}");
        assert!(store.call("vc_s").await.unwrap().unwrap().sip.is_empty(), "{db}: the record never carries it");
        let timeline = serde_json::json!({"interval_ms": 1000, "fields": ["rtp_in"], "samples": [[50], [null]]});
        on::call_timeline(store.pool(), "vc_b", &timeline).await.unwrap();
        assert_eq!(store.call_insight("CAvc_b", Insight::Timeline).await.unwrap(), Some(timeline), "{db}: by CallSid");
    }
}

/// Issue 26: a number's rules are kept (SQLite and PostgreSQL), routed from the table, counted in its status,
/// and keep the agents they name; a call record keeps the route that took the call.
#[tokio::test]
async fn routing_rules_are_kept_routed_and_keep_their_agents() {
    for (db, store) in stores().await {
        let night = NewAgent { name: "night".into(), kind: "echo".into(), ..NewAgent::default() };
        let night = store.create_agent(&night).await.unwrap().id;
        let n = E164::parse(NUMBER).unwrap();
        assert_eq!(store.add_number(&n, None).await.unwrap().status, "inactive", "{db}");
        let rules = serde_json::json!([{"when": {"zone": "UTC", "from": "18:00", "to": "08:00"}, "agent_id": night}]);
        let set = store.set_number_rules(&n, &rules).await.unwrap();
        assert_eq!((set.status.as_str(), &set.rules), ("active", &rules), "{db}: a rule answers");
        let table = store.routing_table().await.unwrap();
        let at = |t: &str| t.parse::<jiff::Timestamp>().unwrap();
        let caller = crate::routing::Caller::Other;
        let (night_call, chosen) = table.decide(&n, at("2026-12-09T22:00:00Z"), caller);
        assert!(matches!(night_call, Lookup::Agent { agent, .. } if agent.name == "night"), "{db}");
        assert_eq!(chosen, crate::routing::Chosen::Rule(0));
        assert_eq!(table.decide(&n, at("2026-12-09T12:00:00Z"), caller).0, Lookup::Unassigned, "{db}");
        match store.delete_agent(&night).await {
            Err(StoreError::InUse { numbers, .. }) => assert_eq!(numbers, [format!("{NUMBER} (rules[0])")], "{db}"),
            other => panic!("{db}: {other:?}"),
        }
        let bad = serde_json::json!([{"caller": "+44", "agent_id": "ag_gone"}]);
        assert!(
            matches!(store.set_number_rules(&n, &bad).await, Err(StoreError::Invalid(m)) if m.starts_with("rules[0].agent_id"))
        );
        let cleared = store.set_number_rules(&n, &Value::Null).await.unwrap();
        assert_eq!((cleared.status.as_str(), &cleared.rules), ("inactive", &serde_json::json!([])), "{db}");
        store.delete_agent(&night).await.unwrap();
        let mut record = call("vc_route", "2026-12-09T22:00:00.000Z", "night");
        record.route = Some("rules[0]".into());
        store.insert_call(&record).await.unwrap();
        assert_eq!(store.call("vc_route").await.unwrap().unwrap().route.as_deref(), Some("rules[0]"), "{db}");
    }
}
