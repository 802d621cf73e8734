//! The admin API against a whole vocals run in-process (`common::InProcess`, on ports bound to 0): numbers and
//! agents managed over HTTP route real SIP calls; a reassignment reaches the next call and leaves the call in
//! progress alone; an unassigned number answers 480; call records tell what happened; two nodes sharing one
//! PostgreSQL see each other's changes within a second; and the `vocals` CLI, the real binary, drives the API.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{Value, json};

use common::inprocess::InProcess;
use common::{Caller, Vocals, cli};

const DIALED: &str = "+14155550150";

/// What the test agent hears: each stream's `start` parameters, then its `media` frames.
#[derive(Debug)]
enum Heard {
    Start(Value),
    Media,
    Closed,
}

/// A WebSocket agent that reports what it hears and keeps the stream open until vocals closes it.
struct Agent {
    url: String,
    heard: std_mpsc::Receiver<Heard>,
    _rt: tokio::runtime::Runtime,
}

impl Agent {
    fn start() -> Agent {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let url = format!("ws://{}/stream", listener.local_addr().unwrap());
        let (tx, heard) = std_mpsc::channel();
        rt.spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let tx = tx.clone();
                tokio::spawn(async move {
                    let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else { return };
                    while let Some(Ok(msg)) = ws.next().await {
                        let Ok(text) = msg.to_text() else { continue };
                        let Ok(frame) = serde_json::from_str::<Value>(text) else { continue };
                        let heard = match frame["event"].as_str() {
                            Some("start") => Heard::Start(frame["start"]["customParameters"].clone()),
                            Some("media") => Heard::Media,
                            _ => continue,
                        };
                        let _ = tx.send(heard);
                    }
                    let _ = tx.send(Heard::Closed);
                });
            }
        });
        Agent { url, heard, _rt: rt }
    }

    /// The next stream's `start.customParameters`.
    fn next_start(&self) -> Value {
        let deadline = Instant::now() + Duration::from_secs(5);
        while let Ok(h) = self.heard.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            if let Heard::Start(params) = h {
                return params;
            }
        }
        panic!("no stream started at the agent within 5 s");
    }

    /// Whether media frames arrive within `wait` (anything already heard is discarded first).
    fn hears_media(&self, wait: Duration) -> bool {
        while self.heard.try_recv().is_ok() {}
        let deadline = Instant::now() + wait;
        while let Ok(h) = self.heard.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            if let Heard::Media = h {
                return true;
            }
        }
        false
    }
}

/// An RTP packet of μ-law silence.
fn rtp(seq: u16) -> Vec<u8> {
    let mut p = vec![0x80, 0, (seq >> 8) as u8, seq as u8];
    p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend_from_slice(&0x1234_5678u32.to_be_bytes());
    p.extend_from_slice(&[0xFF; 160]);
    p
}

/// Sends a second of RTP to `to` (50 packets, 20 ms apart).
fn talk(rtp_socket: &UdpSocket, to: SocketAddr, first_seq: u16) {
    for i in 0..50 {
        rtp_socket.send_to(&rtp(first_seq + i), to).unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether anything comes back on `socket` within a second (the echo agent plays the caller back).
fn echoed(socket: &UdpSocket) -> bool {
    socket.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let mut buf = [0u8; 1500];
    let deadline = Instant::now() + Duration::from_secs(1);
    while Instant::now() < deadline {
        if socket.recv_from(&mut buf).is_ok_and(|(n, _)| n > 12) {
            return true;
        }
    }
    false
}

fn hang_up(caller: &Caller) {
    caller.request("BYE", 2);
    let answer = caller.recv();
    assert!(answer.starts_with("SIP/2.0 200"), "BYE: {answer}");
}

fn created(server: &Vocals, path: &str, body: Value) -> Value {
    let (status, resp) = server.api("POST", path, Some(body));
    assert_eq!(status, 201, "POST {path}: {resp}");
    resp
}

#[test]
fn a_reassignment_reaches_the_next_call_and_leaves_the_call_in_progress_alone() {
    let server = InProcess::start("admin-next-call", &[]);
    let token_file = server.dir.join("admin-token");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the generated token is private");
    }
    assert!(server.http_get("/readyz").contains("ready"));

    let agent = Agent::start();
    let stream = created(&server, "/v1/agents", json!({"name": "front-desk", "stream_url": agent.url}));
    let echo = created(&server, "/v1/agents", json!({"name": "parrot", "kind": "echo"}));
    let number = created(&server, "/v1/numbers", json!({"phone_number": DIALED, "agent_id": stream["id"]}));
    assert_eq!(number["status"], "active");

    // Call 1 reaches the WebSocket agent.
    let rtp1 = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (call1, media1) = Caller::invite_to(&server, &rtp1, "admin-call-1", DIALED);
    let start = agent.next_start();
    assert_eq!((start["agentName"].as_str(), start["agentId"].as_str()), (Some("front-desk"), stream["id"].as_str()));

    // Reassigned while call 1 goes on: call 2 is answered by the echo agent.
    let (status, n) = server.api("PATCH", &format!("/v1/numbers/{DIALED}"), Some(json!({"agent_id": echo["id"]})));
    assert_eq!((status, n["agent_id"].as_str()), (200, echo["id"].as_str()), "{n}");
    let rtp2 = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (call2, media2) = Caller::invite_to(&server, &rtp2, "admin-call-2", DIALED);
    talk(&rtp2, media2, 1);
    assert!(echoed(&rtp2), "call 2 reaches the new (echo) agent");
    // Call 1 still talks to the agent it was answered by.
    let sender = std::thread::spawn(move || {
        talk(&rtp1, media1, 100);
        rtp1
    });
    assert!(agent.hears_media(Duration::from_secs(2)), "the call in progress keeps its agent");
    let _rtp1 = sender.join().unwrap();
    hang_up(&call1);
    hang_up(&call2);

    // Unassigned: the next call is refused with 480 (Twilio fails over).
    let (status, n) = server.api("PATCH", &format!("/v1/numbers/{DIALED}"), Some(json!({"agent_id": null})));
    assert_eq!((status, n["status"].as_str()), (200, Some("inactive")));
    let rtp3 = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (_call3, answer) = Caller::send_invite_to(&server, &rtp3, "admin-call-3", DIALED);
    assert!(answer.starts_with("SIP/2.0 480"), "{answer}");
    // Counted on /metrics (the process's recorder, shared by the servers of this test binary: at least one).
    let metrics = server.http_get("/metrics");
    assert!(metrics.lines().any(|l| l.starts_with("vocals_invites_total{result=\"480\"}")), "{metrics}");

    // The call records say what happened, newest first.
    let deadline = Instant::now() + Duration::from_secs(5);
    let calls = loop {
        let (status, body) = server.api("GET", &format!("/v1/calls?to=%2B{}", &DIALED[1..]), None);
        assert_eq!(status, 200, "{body}");
        let calls = body["calls"].as_array().cloned().unwrap_or_default();
        let done = calls.len() == 3
            && calls.iter().all(|c| {
                (!c["end_at"].is_null() && !c["stats"].as_object().unwrap().is_empty()) || c["sip_status"] == 480
            });
        if done || Instant::now() > deadline {
            break calls;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let summary: Vec<(Option<&str>, Option<u64>)> =
        calls.iter().map(|c| (c["agent"].as_str(), c["sip_status"].as_u64())).collect();
    assert_eq!(
        summary,
        [(None, Some(480)), (Some("parrot"), Some(200)), (Some("front-desk"), Some(200))],
        "{calls:#?}"
    );
    assert_eq!(calls[1]["end_reason"], "the caller hung up", "{:#}", calls[1]);
    assert_eq!(calls[2]["codec"], "PCMU");
    assert!(calls[2]["stats"]["rtp"]["received"].as_u64().unwrap() >= 40, "{:#}", calls[2]["stats"]);
    assert!(calls[2]["stats"]["agent"]["frames_sent"].as_u64().unwrap() > 0, "{:#}", calls[2]["stats"]);
    let (status, one) = server.api("GET", &format!("/v1/calls/{}", calls[1]["id"].as_str().unwrap()), None);
    assert_eq!((status, &one["id"]), (200, &calls[1]["id"]));

    // An agent in use cannot be deleted; the CLI-visible error names the number.
    server.api("PATCH", &format!("/v1/numbers/{DIALED}"), Some(json!({"agent_id": echo["id"]})));
    let (status, err) = server.api("DELETE", &format!("/v1/agents/{}", echo["id"].as_str().unwrap()), None);
    assert_eq!(status, 409, "{err}");
    assert!(err["error"]["message"].as_str().unwrap().contains(DIALED), "{err}");
}

#[test]
fn an_admin_hangs_up_a_call_in_progress() {
    let server = InProcess::start("admin-hangup", &[]);
    let echo = created(&server, "/v1/agents", json!({"name": "parrot", "kind": "echo"}));
    created(&server, "/v1/numbers", json!({"phone_number": DIALED, "agent_id": echo["id"]}));
    let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (caller, _) = Caller::invite_to(&server, &rtp, "admin-hangup-1", DIALED);
    let deadline = Instant::now() + Duration::from_secs(5);
    let id = loop {
        let (_, body) = server.api("GET", "/v1/calls?active=true", None);
        if let Some(id) = body["calls"][0]["id"].as_str() {
            break id.to_string();
        }
        assert!(Instant::now() < deadline, "the call never showed as active: {body}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let (status, body) = server.api("POST", &format!("/v1/calls/{id}/hangup"), None);
    assert_eq!(status, 202, "{body}");
    let bye = caller.recv();
    assert!(bye.starts_with("BYE "), "{bye}");
    assert!(bye.contains("an admin ended the call"), "the BYE says why: {bye}");
    caller.respond_ok(&bye);
    let (status, body) = server.api("POST", &format!("/v1/calls/{id}/hangup"), None);
    assert_eq!(status, 404, "{body}");
}

/// `POSTGRES_TEST_URL` (set by `sip-tests/run`): a role that may create databases.
fn postgres_base() -> String {
    std::env::var("POSTGRES_TEST_URL")
        .expect("POSTGRES_TEST_URL is not set: run `bash sip-tests/run` (it starts the local PostgreSQL and sets it)")
}

/// Runs one statement on the server's maintenance database.
fn postgres_admin(sql: &str) {
    let base = postgres_base();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        sqlx::any::install_default_drivers();
        let admin = sqlx::AnyPool::connect(&base).await.unwrap_or_else(|e| panic!("PostgreSQL at {base}: {e}"));
        sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
            .execute(&admin)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    });
}

/// A fresh PostgreSQL database for one test: its name and URL.
fn postgres_database(tag: &str) -> (String, String) {
    let name = format!("vocals_t_{}_{tag}", std::process::id());
    postgres_admin(&format!("CREATE DATABASE {name}"));
    let base = postgres_base();
    let (server, _) = base.rsplit_once('/').expect("POSTGRES_TEST_URL names a database");
    (name.clone(), format!("{server}/{name}"))
}

#[test]
fn two_nodes_on_one_postgresql_route_a_change_made_on_either_within_a_second() {
    let (_, url) = postgres_database("two_nodes");
    let a = InProcess::start("admin-node-a", &[("VOCALS_STORE_URL", &url), ("VOCALS_NODE", "node-a")]);
    let b = InProcess::start("admin-node-b", &[("VOCALS_STORE_URL", &url), ("VOCALS_NODE", "node-b")]);
    let agent = Agent::start();
    let echo = created(&a, "/v1/agents", json!({"name": "parrot", "kind": "echo"}));
    let stream = created(&a, "/v1/agents", json!({"name": "front-desk", "stream_url": agent.url}));
    created(&a, "/v1/numbers", json!({"phone_number": DIALED, "agent_id": echo["id"]}));

    // Node A's change, seen by node B: the first call after it reaches the new agent.
    let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let until_routed = |node: &Vocals, expect: &str| -> Duration {
        let changed = Instant::now();
        for attempt in 0.. {
            let (mut caller, answer) =
                Caller::send_invite_to(node, &rtp, &format!("two-nodes-{expect}-{attempt}"), DIALED);
            let status = &answer[8..11];
            if answer.starts_with("SIP/2.0 200") {
                caller.to = common::header(&answer, "To").to_string();
                caller.request("ACK", 1);
                hang_up(&caller);
            }
            if status == expect {
                return changed.elapsed();
            }
            assert!(changed.elapsed() < Duration::from_secs(3), "node still answers {status}, not {expect}");
            std::thread::sleep(Duration::from_millis(20));
        }
        unreachable!()
    };
    let took = until_routed(&b, "200");
    assert!(took < Duration::from_secs(1), "node B saw the number node A added after {took:?}");
    let (status, _) = a.api("PATCH", &format!("/v1/numbers/{DIALED}"), Some(json!({"agent_id": null})));
    assert_eq!(status, 200);
    let took = until_routed(&b, "480");
    assert!(took < Duration::from_secs(1), "node B saw node A's unassignment after {took:?}");
    let (status, _) = b.api("PATCH", &format!("/v1/numbers/{DIALED}"), Some(json!({"agent_id": stream["id"]})));
    assert_eq!(status, 200);
    let took = until_routed(&a, "200");
    assert!(took < Duration::from_secs(1), "node A saw node B's reassignment after {took:?}");
    assert_eq!(agent.next_start()["agentName"], "front-desk", "A's next call reached the new agent");
    // Both nodes' call records are in the shared store, each with its node (written a moment after the call).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, body) = a.api("GET", "/v1/calls?limit=500", None);
        let nodes: std::collections::BTreeSet<String> =
            body["calls"].as_array().unwrap().iter().filter_map(|c| c["node"].as_str().map(str::to_string)).collect();
        if nodes.into_iter().collect::<Vec<_>>() == ["node-a", "node-b"] {
            break;
        }
        assert!(Instant::now() < deadline, "the records of both nodes: {body:#}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn calls_keep_routing_while_the_database_is_down_and_their_records_arrive_when_it_is_back() {
    let (name, url) = postgres_database("down");
    let server = InProcess::start("admin-db-down", &[("VOCALS_STORE_URL", &url)]);
    let echo = created(&server, "/v1/agents", json!({"name": "parrot", "kind": "echo"}));
    created(&server, "/v1/numbers", json!({"phone_number": DIALED, "agent_id": echo["id"]}));

    // The database goes away: no new connections, and the open ones are cut.
    postgres_admin(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false"));
    postgres_admin(&format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"));
    let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let started = Instant::now();
    let (caller, _) = Caller::invite_to(&server, &rtp, "db-down-1", DIALED);
    assert!(started.elapsed() < Duration::from_secs(1), "routing waited on the database: {:?}", started.elapsed());
    hang_up(&caller);
    let (status, body) = server.api("GET", "/v1/numbers", None);
    assert_eq!((status, body["error"]["code"].as_str()), (503, Some("unavailable")), "{body}");
    assert!(!body.to_string().contains("pg_"), "internals stay in the log: {body}");

    // It comes back: the call's record, queued meanwhile, is written.
    postgres_admin(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = server.api("GET", "/v1/calls", None);
        let call = &body["calls"][0];
        if status == 200 && call["sip_call_id"] == "db-down-1" && !call["end_at"].is_null() {
            assert_eq!((call["agent"].as_str(), call["sip_status"].as_u64()), (Some("parrot"), Some(200)), "{call}");
            break;
        }
        assert!(Instant::now() < deadline, "the call record never arrived: {status} {body}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn the_cli_manages_agents_and_numbers_with_tables_json_and_clear_errors() {
    let server = InProcess::start("admin-cli", &[]);
    let (code, out, err) = cli(&server, &["agents", "create", "--name", "cli-bot", "--kind", "echo"], &[]);
    assert_eq!(code, 0, "{out}{err}");
    let agent: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(agent["name"], "cli-bot");
    let (code, out, err) = cli(&server, &["numbers", "add", "+14155550160", "--agent", "cli-bot"], &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("\"status\": \"active\""), "{out}");
    let (code, out, _) = cli(&server, &["numbers", "list"], &[]);
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("NUMBER") && lines[0].contains("STATUS"), "{out}");
    assert!(lines[1].starts_with("+14155550160  active"), "{out}");
    let (code, out, _) = cli(&server, &["numbers", "list", "--json", "--status", "active"], &[]);
    assert_eq!(code, 0);
    let list: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list[0]["agent_id"], agent["id"], "{out}");
    let (code, _, err) = cli(&server, &["agents", "delete", "cli-bot"], &[]);
    assert_eq!(code, 1);
    assert!(err.contains("409 agent_in_use") && err.contains("+14155550160"), "{err}");
    // A national number takes the country of the numbers added (+1 here); one that is no number is refused.
    let (code, out, err) = cli(&server, &["numbers", "add", "(415) 555-0161"], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("+14155550161"), "{out}");
    let (code, _, err) = cli(&server, &["numbers", "add", "555-0161"], &[]);
    assert_eq!(code, 1);
    assert!(err.contains("422 invalid: phone_number must be E.164 or a national number of country code +1"), "{err}");
    let (code, out, _) = cli(&server, &["numbers", "unassign", "+14155550160"], &[]);
    assert_eq!(code, 0);
    assert!(out.contains("\"status\": \"inactive\""), "{out}");
    let (code, out, _) = cli(&server, &["calls", "list"], &[]);
    assert_eq!((code, out.lines().next().unwrap_or("").split_whitespace().next()), (0, Some("ID")), "{out}");
    let (code, out, _) = cli(&server, &["agents", "delete", "cli-bot"], &[]);
    assert_eq!((code, out.trim()), (0, format!("deleted agent {}", agent["id"].as_str().unwrap()).as_str()));
    let (code, _, err) = cli(&server, &["agents", "list"], &[("VOCALS_ADMIN_TOKEN", "not-the-right-token")]);
    assert_eq!(code, 1);
    assert!(err.contains("401 unauthorized"), "{err}");
    let port = common::free_tcp_port().to_string();
    let listen = format!("127.0.0.1:{port}");
    let (code, _, err) = cli(&server, &["agents", "list"], &[("VOCALS_ADMIN_LISTEN", &listen)]);
    assert_eq!(code, 2);
    assert!(err.contains("cannot reach the admin API"), "{err}");
}

/// The README's routing-rules example as a user runs it: its commands, in order, with its rules.json, against
/// a running server; the dry runs answer what the README says they do.
#[test]
fn the_readmes_routing_rules_example_runs_as_written() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = readme.split("## One number, different agents").nth(1).expect("the README's section");
    let section = section.split("\n## ").next().unwrap();
    let blocks: Vec<(&str, String)> = section
        .split("```")
        .skip(1)
        .step_by(2)
        .map(|b| {
            let (lang, body) = b.split_once('\n').unwrap_or((b, ""));
            (lang.trim(), body.lines().map(str::trim).collect::<Vec<_>>().join("\n"))
        })
        .collect();
    let rules = &blocks.iter().find(|(lang, _)| *lang == "json").expect("the rules.json block").1;
    let server = InProcess::start("admin-readme-rules", &[]);
    let file = server.dir.join("rules.json");
    std::fs::write(&file, rules).unwrap();
    let mut outputs = Vec::new();
    for command in blocks.iter().filter(|(lang, _)| *lang == "sh").flat_map(|(_, b)| b.lines()) {
        let args: Vec<String> = command
            .split_whitespace()
            .skip(1)
            .map(|a| if a == "rules.json" { file.display().to_string() } else { a.to_string() })
            .collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, out, err) = cli(&server, &args, &[]);
        assert_eq!(code, 0, "{command}: {out}{err}");
        outputs.push((command.to_string(), out));
    }
    assert_eq!(outputs.len(), 6, "{outputs:#?}");
    let holiday: Value = serde_json::from_str(&outputs[4].1).unwrap();
    assert_eq!(
        (holiday["route"].as_str(), holiday["answered"].as_bool()),
        (Some("rules[0]"), Some(false)),
        "{holiday}"
    );
    let night: Value = serde_json::from_str(&outputs[5].1).unwrap();
    assert_eq!((night["route"].as_str(), night["agent"].as_str()), (Some("rules[3]"), Some("after-hours")), "{night}");
    // What the number holds: the README's rules, the agents by id.
    let (_, n) = server.api("GET", "/v1/numbers/+14155550123", None);
    let after_hours = n["rules"][3]["agent_id"].as_str().unwrap();
    assert!(after_hours.starts_with("ag_"), "{n}");
    let (_, list) = server.api("GET", "/v1/agents", None);
    let named = list["agents"].as_array().unwrap().iter().find(|a| a["id"] == after_hours).unwrap();
    assert_eq!(named["name"], "after-hours");
    // `rules show` prints them, `clear` removes them.
    let (code, out, _) = cli(&server, &["numbers", "rules", "show", "+14155550123"], &[]);
    assert_eq!((code, serde_json::from_str::<Value>(&out).unwrap()), (0, n["rules"].clone()));
    let (code, out, _) = cli(&server, &["numbers", "rules", "clear", "+14155550123"], &[]);
    assert_eq!(code, 0);
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["rules"], json!([]));
}
