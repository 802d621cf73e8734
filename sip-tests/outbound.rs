//! Outbound calls, the way an agent written for Twilio places them: `POST …/Calls.json` with Basic auth and
//! `<Connect><Stream>` TwiML against an in-process vocals whose `[[trunks]]` termination is SIPp playing
//! Twilio's termination side (407 and a digest it checks, 180, 200, RTP echoed, its own BYE); a WebSocket
//! agent that must get `connected`, `start` with the TwiML's parameters and the callee's audio; a status
//! callback server that checks every callback's `X-Twilio-Signature`. SIPp must be installed.

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use base64::Engine;
use common::inprocess::InProcess;
use common::outbound::*;
use common::{NUMBER, free_udp_port};

#[test]
fn an_agent_written_for_twilio_places_a_call_through_the_trunk_and_hears_the_callee() {
    let sipp_port = free_udp_port();
    let server = InProcess::start_with("outbound", &trunk(sipp_port), &[]);
    let work = server.dir.join("termination");
    std::fs::create_dir_all(&work).unwrap();
    let far_end = termination("termination_auth.xml", sipp_port, &work, 1);
    let (agent_url, seen, _agent_rt) = agent();
    let (callback_url, posted) = callback_server();
    let twiml = format!(
        "<Response><Connect><Stream url=\"{agent_url}\" name=\"reminder\">\
         <Parameter name=\"campaign\" value=\"spring\"/></Stream></Connect></Response>"
    );
    let path = format!("/2010-04-01/Accounts/{ACCOUNT}/Calls.json");
    let before = server.metrics();
    let (status, call) = twilio_api(
        &server,
        "POST",
        &path,
        &[
            ("To", CALLEE),
            ("From", NUMBER),
            ("Twiml", &twiml),
            ("StatusCallback", &callback_url),
            ("StatusCallbackEvent", "initiated"),
            ("StatusCallbackEvent", "ringing"),
            ("StatusCallbackEvent", "answered"),
            ("StatusCallbackEvent", "completed"),
        ],
    );
    assert_eq!(status, 201, "{call}");
    assert_eq!(call["status"], "queued", "{call}");
    let sid = call["sid"].as_str().unwrap().to_string();
    assert!(sid.starts_with("CA") && sid.len() == 34, "{sid}");
    assert_eq!((call["to"].as_str(), call["from"].as_str()), (Some(CALLEE), Some(NUMBER)));

    let (ok, out) = far_end.join().unwrap();
    assert!(
        ok,
        "the termination side's scenario failed (the digest, the ACK or the BYE):\n{out}\n{:#?}",
        server.calls()
    );
    digest_is_right(&out, "vocals-trunk", "termination-secret-1");
    let seen = seen
        .recv_timeout(Duration::from_secs(10))
        .unwrap_or_else(|_| panic!("the agent's stream never ended; calls: {:#?}", server.calls()));
    assert_eq!(seen.events.first().map(String::as_str), Some("connected"), "{seen:?}");
    assert!(seen.events.contains(&"start".to_string()) && seen.events.contains(&"stop".to_string()), "{seen:?}");
    let start = &seen.start["start"];
    assert_eq!(start["callSid"], sid.as_str(), "{start}");
    assert_eq!(start["accountSid"], ACCOUNT, "{start}");
    assert_eq!(start["customParameters"]["campaign"], "spring", "{start}");
    assert!(seen.media >= 25, "the callee's audio (our tone, echoed) reached the agent: {} frames", seen.media);

    // Every callback asked for, signed with the account's auth token, numbered from 0 without a gap (each is
    // its own HTTP request, so they may arrive out of order: SequenceNumber orders them, as Twilio's do).
    let forms = callbacks(&posted, &callback_url, &sid, 0, 4, Duration::from_secs(10));
    assert_eq!(statuses(&forms), ["initiated", "ringing", "in-progress", "completed"]);

    let (status, view) = twilio_api(&server, "GET", &format!("/2010-04-01/Accounts/{ACCOUNT}/Calls/{sid}.json"), &[]);
    assert_eq!((status, view["status"].as_str()), (200, Some("completed")), "{view}");
    let completed = r#"vocals_outbound_calls_total{status="completed"}"#;
    assert_eq!(server.metrics().delta(&before, completed), 1.0, "{completed}");
    let record = server.calls().into_iter().find(|c| c["call_sid"] == sid.as_str()).expect("a call record");
    assert_eq!(record["sip_status"], 200, "{record}");
    assert!(record["sip_call_id"].as_str().is_some_and(|id| id.starts_with("vc") && id.contains('@')), "{record}");
    assert!(!record["answer_at"].is_null(), "{record}");
}

#[test]
fn requests_that_cannot_be_placed_get_twilios_errors() {
    let server = InProcess::start_with("outbound-refusals", &trunk(free_udp_port()), &[]);
    let path = format!("/2010-04-01/Accounts/{ACCOUNT}/Calls.json");
    let twiml = "<Response><Connect><Stream url=\"ws://127.0.0.1:9/s\"/></Connect></Response>";
    // A From number that is not the account's.
    let (status, body) =
        twilio_api(&server, "POST", &path, &[("To", CALLEE), ("From", "+14155550999"), ("Twiml", twiml)]);
    assert_eq!((status, body["code"].as_u64()), (400, Some(21210)), "{body}");
    // TwiML vocals cannot run names the element.
    let say = "<Response><Say>Hello</Say></Response>";
    let (status, body) = twilio_api(&server, "POST", &path, &[("To", CALLEE), ("From", NUMBER), ("Twiml", say)]);
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap_or_default().contains("Say"), "{body}");
    // Wrong credentials.
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", server.admin)).unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{ACCOUNT}:wrong-token-wrong-token"));
    write!(conn, "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Basic {auth}\r\nContent-Length: 0\r\n\r\n").unwrap();
    let mut response = String::new();
    conn.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 401"), "{response}");
    // Another account's path with this account's token.
    let other = "/2010-04-01/Accounts/ACcccccccccccccccccccccccccccccccc/Calls.json";
    let (status, _) = twilio_api(&server, "POST", other, &[("To", CALLEE), ("From", NUMBER), ("Twiml", twiml)]);
    assert_eq!(status, 401);
}

#[test]
fn the_admin_api_says_why_a_call_could_not_be_placed() {
    let trunk = format!(
        "[[trunks]]\naccount_sid = \"{ACCOUNT}\"\nauth_token = \"{TOKEN}\"\ntermination_uri = \"sip:vocals-test.invalid\"\n"
    );
    let server = InProcess::start_with("outbound-unresolved", &trunk, &[]);
    let body = serde_json::json!({"agent_id": "echo", "to": CALLEE, "from": NUMBER});
    let (status, answer) = server.api("POST", "/v1/calls", Some(body));
    assert_eq!(status, 503, "{answer}");
    assert_eq!(answer["error"]["code"], "not_placed", "{answer}");
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("vocals-test.invalid") && message.contains("could not be resolved"), "{answer}");
}
