//! Outbound calls' further cases (issue 22's tests), each against an in-process vocals whose `[[trunks]]`
//! termination is a test peer on loopback: SIPp playing Twilio's termination side, or, for the pace, a UDP
//! socket that notes when each INVITE arrives.
//!
//! - a busy callee (486), a call nobody answers (cancelled at the request's `Timeout`: no-answer), a ringing call
//!   the agent withdraws over REST (`Status=canceled`): each with its signed status callback and `GET`;
//! - the pace: five requests at once leave about 1 s apart (`outbound.cps = 1`), and a request beyond
//!   `outbound.queue` gets 429 with Twilio's JSON;
//! - the 487 race: a 2xx crossing our CANCEL is ACKed and ended with a BYE;
//! - a forked 2xx: both ACKed, the second ended with a BYE at once, the first kept;
//! - the unmodified `twilio` Python library places a call (`sip-tests/twilio_client/place_call.py`);
//! - the admin API's `POST /v1/calls` and `vocals calls dial`;
//! - a trunk over TCP: the connection vocals opens carries the whole call (the TLS one, with SRTP, is in
//!   `secure.rs`, which runs the binary for its trust store);
//! - early media (`outbound.early_media`): a 183 with SDP reaches the agent before a busy end.
//!
//! SIPp and python3 with the `twilio` library must be installed (`bash sip-tests/run` installs them).

mod common;

use std::net::UdpSocket;
use std::process::Command;
use std::sync::{Arc, Barrier, mpsc};
use std::time::{Duration, Instant};

use common::inprocess::InProcess;
use common::outbound::*;
use common::{NUMBER, cli, free_udp_port};

/// TwiML for calls that are never answered: its stream is never opened.
const NEVER_STREAMED: &str = "<Response><Connect><Stream url=\"ws://127.0.0.1:9/never\"/></Connect></Response>";
/// The version of the `twilio` Python library `sip-tests/run` installs.
const TWILIO_PYTHON: &str = "9.13.0";

/// `POST …/Calls.json` to [`CALLEE`] from [`NUMBER`] with `extra` parameters; the call's sid once answered 201
/// `queued`.
fn place(server: &InProcess, extra: &[(&str, &str)]) -> String {
    let path = format!("/2010-04-01/Accounts/{ACCOUNT}/Calls.json");
    let mut form = vec![("To", CALLEE), ("From", NUMBER)];
    form.extend_from_slice(extra);
    let (status, call) = twilio_api(server, "POST", &path, &form);
    assert_eq!((status, call["status"].as_str()), (201, Some("queued")), "{call}");
    let sid = call["sid"].as_str().unwrap().to_string();
    assert!(sid.starts_with("CA") && sid.len() == 34, "{sid}");
    sid
}

/// `GET …/Calls/{CA}.json`: the call's status.
fn status_of(server: &InProcess, sid: &str) -> String {
    let (status, view) = twilio_api(server, "GET", &format!("/2010-04-01/Accounts/{ACCOUNT}/Calls/{sid}.json"), &[]);
    assert_eq!((status, view["sid"].as_str()), (200, Some(sid)), "{view}");
    view["status"].as_str().unwrap_or_default().to_string()
}

/// The agent's framework withdraws the call: `POST …/Calls/{CA}.json` with `Status=canceled`.
fn cancel_over_rest(server: &InProcess, sid: &str) {
    let path = format!("/2010-04-01/Accounts/{ACCOUNT}/Calls/{sid}.json");
    let (status, body) = twilio_api(server, "POST", &path, &[("Status", "canceled")]);
    assert_eq!((status, body["status"].as_str(), body["sid"].as_str()), (200, Some("canceled"), Some(sid)), "{body}");
    // Twilio's Call resource of this call: one vocals placed.
    assert_eq!((body["direction"].as_str(), body["account_sid"].as_str()), (Some("outbound-api"), Some(ACCOUNT)));
}

/// The call record of the call with this CallSid once it has ended, waiting up to 5 s for it.
fn ended_record(server: &InProcess, sid: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let calls = server.calls();
        let mine: Vec<_> = calls.iter().filter(|c| c["call_sid"] == sid).collect();
        assert!(mine.len() <= 1, "one record per call: {mine:#?}");
        if let Some(c) = mine.first().filter(|c| !c["end_at"].is_null()) {
            return (*c).clone();
        }
        assert!(Instant::now() < deadline, "no ended record for {sid}: {calls:#?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// An in-process vocals whose trunk's termination is SIPp running `file`, with a callback server; what each
/// case starts from.
struct Case {
    server: InProcess,
    far_end: Option<std::thread::JoinHandle<(bool, String)>>,
    callback_url: String,
    posted: mpsc::Receiver<Posted>,
}

impl Case {
    fn start(name: &str, file: &str, calls: u32, env: &[(&str, &str)]) -> Case {
        let port = free_udp_port();
        let server = InProcess::start_with(name, &trunk(port), env);
        let far_end = termination(file, port, &server.dir.join("termination"), calls);
        let (callback_url, posted) = callback_server();
        Case { server, far_end: Some(far_end), callback_url, posted }
    }

    /// SIPp's verdict: it must have run its scenario through.
    fn termination_passed(&mut self) -> String {
        let (ok, out) = self.far_end.take().unwrap().join().unwrap();
        assert!(ok, "the termination side's scenario failed:\n{out}\ncalls: {:#?}", self.server.calls());
        out
    }
}

#[test]
fn a_busy_callee_ends_the_call_busy_and_the_completed_callback_says_486() {
    let mut case = Case::start("cases-busy", "termination_busy.xml", 1, &[]);
    let sid = place(&case.server, &[("Twiml", NEVER_STREAMED), ("StatusCallback", &case.callback_url)]);
    case.termination_passed();
    // No StatusCallbackEvent: Twilio's default is the completed callback alone.
    let forms = callbacks(&case.posted, &case.callback_url, &sid, 0, 1, Duration::from_secs(10));
    assert_eq!(statuses(&forms), ["busy"], "{forms:?}");
    let done = &forms[0];
    assert_eq!((get(done, "SipResponseCode"), get(done, "CallDuration")), ("486".into(), "0".into()), "{done:?}");
    assert_eq!((get(done, "To"), get(done, "From")), (CALLEE.to_string(), NUMBER.to_string()), "{done:?}");
    assert_eq!(status_of(&case.server, &sid), "busy");
    let record = ended_record(&case.server, &sid);
    assert_eq!(record["sip_status"], 486, "{record}");
    assert!(record["answer_at"].is_null(), "{record}");
}

/// `outbound.early_media`: the far end's 183 with SDP opens the agent's stream while the call rings; what the
/// agent says is echoed back by the far end and reaches it before any answer; the call is then refused (486),
/// so the stream closes with `stop`, the status is `busy` and was never `in-progress`.
#[test]
fn early_media_reaches_the_agent_before_the_answer() {
    let mut case =
        Case::start("cases-early", "termination_early_media.xml", 1, &[("VOCALS_OUTBOUND_EARLY_MEDIA", "true")]);
    let (agent_url, seen, _agent_rt) = agent();
    let twiml = format!("<Response><Connect><Stream url=\"{agent_url}\"/></Connect></Response>");
    let url = case.callback_url.clone();
    let events =
        [("StatusCallbackEvent", "ringing"), ("StatusCallbackEvent", "answered"), ("StatusCallbackEvent", "completed")];
    let mut form = vec![("Twiml", twiml.as_str()), ("StatusCallback", url.as_str())];
    form.extend_from_slice(&events);
    let sid = place(&case.server, &form);
    case.termination_passed();
    let seen = seen.recv_timeout(Duration::from_secs(10)).expect("the agent's stream opened and ended");
    assert!(seen.events.contains(&"start".to_string()) && seen.events.contains(&"stop".to_string()), "{seen:?}");
    assert_eq!(seen.start["start"]["callSid"], sid.as_str(), "{seen:?}");
    assert!(seen.echoed >= 25, "the agent heard the far end's early media (its own audio echoed): {seen:?}");
    let forms = callbacks(&case.posted, &url, &sid, 0, 2, Duration::from_secs(10));
    assert_eq!(statuses(&forms), ["ringing", "busy"], "never in-progress: {forms:?}");
    let record = ended_record(&case.server, &sid);
    assert_eq!(record["sip_status"], 486, "{record}");
    assert!(record["answer_at"].is_null(), "{record}");
}

/// A trunk reached over TCP (`;transport=tcp`): vocals opens the connection, and everything of the call goes
/// over it both ways — the 407 and its ACK, the retried INVITE with the digest, the 200 and its ACK, the
/// callee's BYE and our 200 — with our TCP listener in Via and Contact.
#[test]
fn a_call_placed_on_a_tcp_trunk_goes_over_the_connection_vocals_opens() {
    let sipp_port = common::free_tcp_port();
    let tcp_trunk = trunk(sipp_port).replace(&format!(":{sipp_port}\""), &format!(":{sipp_port};transport=tcp\""));
    let server = InProcess::start_with("outbound-tcp", &tcp_trunk, &[]);
    let far_end = termination_over("termination_auth.xml", sipp_port, &server.dir.join("termination"), 1, true);
    let (_, agents) = server.api("GET", "/v1/agents", None);
    let echo = agents["agents"].as_array().and_then(|a| a.iter().find(|a| a["kind"] == "echo")).cloned().unwrap();
    let body = serde_json::json!({"agent_id": echo["id"], "to": CALLEE, "from": NUMBER});
    let (status, placed) = server.api("POST", "/v1/calls", Some(body));
    assert_eq!(status, 201, "{placed}");
    let sid = placed["sid"].as_str().unwrap().to_string();
    let (ok, out) = far_end.join().unwrap();
    assert!(ok, "the termination side's scenario failed over TCP:\n{out}\n{:#?}", server.calls());
    digest_is_right(&out, "vocals-trunk", "termination-secret-1");
    let invite = out.split("INVITE sip:").nth(1).expect("SIPp's message log holds the INVITE");
    let uri = invite.lines().next().unwrap_or_default();
    assert!(uri.contains(";transport=tcp SIP/2.0"), "the Request-URI keeps the trunk's transport: {uri}");
    let via = invite.lines().find(|l| l.starts_with("Via: ")).unwrap_or_default();
    assert!(via.starts_with(&format!("Via: SIP/2.0/TCP 127.0.0.1:{};", server.tcp)), "{via}");
    let contact = invite.lines().find(|l| l.starts_with("Contact: ")).unwrap_or_default();
    assert!(contact.ends_with(&format!(":{};transport=tcp>", server.tcp)), "{contact}");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let record = loop {
        let found = server.calls().into_iter().find(|c| c["call_sid"] == sid.as_str() && !c["end_at"].is_null());
        if let Some(r) = found {
            break r;
        }
        assert!(std::time::Instant::now() < deadline, "the call never ended: {:#?}", server.calls());
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(record["sip_status"], 200, "{record}");
    assert!(!record["answer_at"].is_null(), "{record}");
}

#[test]
fn a_call_nobody_answers_is_cancelled_at_its_timeout_as_no_answer() {
    let mut case = Case::start("cases-no-answer", "termination_ring_cancel.xml", 1, &[]);
    let started = Instant::now();
    let sid = place(
        &case.server,
        &[
            ("Twiml", NEVER_STREAMED),
            ("Timeout", "5"),
            ("StatusCallback", &case.callback_url),
            ("StatusCallbackEvent", "ringing"),
            ("StatusCallbackEvent", "completed"),
        ],
    );
    let ringing = callbacks(&case.posted, &case.callback_url, &sid, 0, 1, Duration::from_secs(5));
    assert_eq!(statuses(&ringing), ["ringing"], "{ringing:?}");
    assert_eq!(status_of(&case.server, &sid), "ringing");
    // The completed callback goes when the CANCEL does.
    let done = callbacks(&case.posted, &case.callback_url, &sid, 1, 1, Duration::from_secs(10)).remove(0);
    let after = started.elapsed();
    assert!(
        after >= Duration::from_millis(4500) && after < Duration::from_secs(8),
        "cancelled {after:?} after the request, asked for Timeout=5"
    );
    // SIPp checks the CANCEL came (within 9 s of the 180), answers it 200 and the INVITE 487, and gets the ACK.
    case.termination_passed();
    assert_eq!(get(&done, "CallStatus"), "no-answer", "{done:?}");
    assert_eq!((get(&done, "SipResponseCode"), get(&done, "CallDuration")), ("487".into(), "0".into()), "{done:?}");
    assert_eq!(status_of(&case.server, &sid), "no-answer");
    let record = ended_record(&case.server, &sid);
    assert_eq!(record["sip_status"], 487, "{record}");
    assert!(record["end_reason"].as_str().unwrap_or_default().contains("no answer"), "{record}");
}

#[test]
fn the_agent_withdraws_a_ringing_call_over_rest_and_it_is_canceled() {
    let mut case = Case::start("cases-cancel", "termination_ring_cancel.xml", 1, &[]);
    let started = Instant::now();
    let sid = place(
        &case.server,
        &[
            ("Twiml", NEVER_STREAMED),
            ("StatusCallback", &case.callback_url),
            ("StatusCallbackEvent", "initiated"),
            ("StatusCallbackEvent", "ringing"),
            ("StatusCallbackEvent", "completed"),
        ],
    );
    let early = callbacks(&case.posted, &case.callback_url, &sid, 0, 2, Duration::from_secs(5));
    assert_eq!(statuses(&early), ["initiated", "ringing"], "{early:?}");
    cancel_over_rest(&case.server, &sid);
    case.termination_passed();
    let done = callbacks(&case.posted, &case.callback_url, &sid, 2, 1, Duration::from_secs(10)).remove(0);
    assert_eq!(get(&done, "CallStatus"), "canceled", "{done:?}");
    assert_eq!((get(&done, "SipResponseCode"), get(&done, "CallDuration")), ("487".into(), "0".into()), "{done:?}");
    // Long before the default Timeout (60 s): the REST request cancelled it.
    assert!(started.elapsed() < Duration::from_secs(15), "{:?}", started.elapsed());
    assert_eq!(status_of(&case.server, &sid), "canceled");
    let record = ended_record(&case.server, &sid);
    assert_eq!(record["sip_status"], 487, "{record}");
    assert!(record["end_reason"].as_str().unwrap_or_default().contains("cancelled"), "{record}");
}

/// A trunk played by a UDP socket: each new INVITE's arrival time is sent on, and the INVITE answered 486 at
/// once (its ACK and any retransmission are absorbed).
fn busy_trunk(socket: UdpSocket) -> mpsc::Receiver<(Instant, String)> {
    let (tx, rx) = mpsc::channel();
    socket.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut buf = [0u8; 8192];
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let Ok((n, from)) = socket.recv_from(&mut buf) else { continue };
            let at = Instant::now();
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            if !msg.starts_with("INVITE ") {
                continue;
            }
            let call_id = common::header(&msg, "Call-ID").to_string();
            let mut busy = String::from("SIP/2.0 486 Busy Here\r\n");
            for line in msg.lines() {
                if ["Via: ", "From: ", "Call-ID: ", "CSeq: "].iter().any(|h| line.starts_with(h)) {
                    busy.push_str(line);
                    busy.push_str("\r\n");
                } else if line.starts_with("To: ") {
                    busy.push_str(&format!("{line};tag=busy\r\n"));
                }
            }
            busy.push_str("Content-Length: 0\r\n\r\n");
            let _ = socket.send_to(busy.as_bytes(), from);
            if !seen.contains(&call_id) {
                seen.push(call_id.clone());
                if tx.send((at, call_id)).is_err() {
                    return;
                }
            }
        }
    });
    rx
}

#[test]
fn five_requests_at_once_leave_a_second_apart_and_one_beyond_the_queue_gets_429() {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = socket.local_addr().unwrap().port();
    // The default pace (outbound.cps = 1); a queue of 4 behind the call being dialled.
    let server = Arc::new(InProcess::start_with("cases-pace", &trunk(port), &[("VOCALS_OUTBOUND_QUEUE", "4")]));
    let invites = busy_trunk(socket);
    let barrier = Arc::new(Barrier::new(5));
    let requests: Vec<_> = (0..5)
        .map(|_| {
            let (server, barrier) = (server.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let path = format!("/2010-04-01/Accounts/{ACCOUNT}/Calls.json");
                twilio_api(&server, "POST", &path, &[("To", CALLEE), ("From", NUMBER), ("Twiml", NEVER_STREAMED)])
            })
        })
        .collect();
    let mut sids = Vec::new();
    for r in requests {
        let (status, call) = r.join().unwrap();
        assert_eq!((status, call["status"].as_str()), (201, Some("queued")), "{call}");
        sids.push(call["sid"].as_str().unwrap().to_string());
    }
    // The first is dialled at once; the other four wait their turns, which fills the queue: a sixth request
    // (sent before the second's turn, a second after the first) is refused.
    let mut arrivals = vec![invites.recv_timeout(Duration::from_secs(3)).expect("the first INVITE").0];
    let path = format!("/2010-04-01/Accounts/{ACCOUNT}/Calls.json");
    let (status, body) =
        twilio_api(&server, "POST", &path, &[("To", CALLEE), ("From", NUMBER), ("Twiml", NEVER_STREAMED)]);
    assert!(arrivals[0].elapsed() < Duration::from_millis(900), "too slow to test the queue's bound");
    assert_eq!(status, 429, "{body}");
    assert_eq!((body["status"].as_u64(), body["code"].as_u64()), (Some(429), Some(20429)), "{body}");
    assert!(!body["message"].as_str().unwrap_or_default().is_empty(), "{body}");
    assert_eq!(body["more_info"], "https://www.twilio.com/docs/errors/20429", "{body}");
    while arrivals.len() < 5 {
        let (at, _) = invites.recv_timeout(Duration::from_secs(5)).expect("every request's INVITE");
        arrivals.push(at);
    }
    let gaps: Vec<Duration> = arrivals.windows(2).map(|w| w[1].duration_since(w[0])).collect();
    let total = arrivals[4].duration_since(arrivals[0]);
    assert!(
        gaps.iter().all(|g| *g >= Duration::from_millis(900) && *g < Duration::from_millis(2000)),
        "INVITEs about 1 s apart: {gaps:?}"
    );
    assert!(total >= Duration::from_millis(3900), "{total:?}: {gaps:?}");
    assert!(invites.recv_timeout(Duration::from_millis(1500)).is_err(), "no INVITE for the refused request");
    // Each one placed, answered 486: busy.
    for sid in &sids {
        let deadline = Instant::now() + Duration::from_secs(5);
        while status_of(&server, sid) != "busy" && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(status_of(&server, sid), "busy", "{sid}");
    }
}

#[test]
fn a_2xx_crossing_our_cancel_is_acked_and_ended_with_a_bye() {
    let mut case = Case::start("cases-race", "termination_cancel_race.xml", 1, &[]);
    let sid = place(
        &case.server,
        &[
            ("Twiml", NEVER_STREAMED),
            ("StatusCallback", &case.callback_url),
            ("StatusCallbackEvent", "ringing"),
            ("StatusCallbackEvent", "completed"),
        ],
    );
    let ringing = callbacks(&case.posted, &case.callback_url, &sid, 0, 1, Duration::from_secs(5));
    assert_eq!(statuses(&ringing), ["ringing"], "{ringing:?}");
    cancel_over_rest(&case.server, &sid);
    // SIPp answers the INVITE 200 after the CANCEL came, then the CANCEL 200; it checks vocals' ACK of that 2xx
    // and its BYE, each within 2 s.
    let out = case.termination_passed();
    assert!(out.contains("CANCEL sip:"), "{out}");
    let done = callbacks(&case.posted, &case.callback_url, &sid, 1, 1, Duration::from_secs(10)).remove(0);
    assert_eq!((get(&done, "CallStatus"), get(&done, "CallDuration")), ("canceled".into(), "0".into()), "{done:?}");
    assert_eq!(status_of(&case.server, &sid), "canceled");
    let record = ended_record(&case.server, &sid);
    assert!(record["answer_at"].is_null(), "the call layer never took the crossing 2xx as an answer: {record}");
}

#[test]
fn a_forked_2xx_is_acked_and_ended_while_the_first_dialog_stays_up() {
    let mut case = Case::start("cases-fork", "termination_fork.xml", 1, &[]);
    let (agent_url, seen, _agent_rt) = agent();
    let twiml = format!("<Response><Connect><Stream url=\"{agent_url}\"/></Connect></Response>");
    let sid = place(
        &case.server,
        &[
            ("Twiml", &twiml),
            ("StatusCallback", &case.callback_url),
            ("StatusCallbackEvent", "answered"),
            ("StatusCallbackEvent", "completed"),
        ],
    );
    // SIPp checks both ACKs (A's first), the BYE to B within 2 s, 2 s with nothing for A, then its own BYE on
    // A answered 200.
    case.termination_passed();
    let forms = callbacks(&case.posted, &case.callback_url, &sid, 0, 2, Duration::from_secs(10));
    assert_eq!(statuses(&forms), ["in-progress", "completed"], "{forms:?}");
    let duration: u64 = get(&forms[1], "CallDuration").parse().unwrap();
    assert!(duration >= 2, "the first dialog stayed up until its callee hung up: {forms:?}");
    assert_eq!(status_of(&case.server, &sid), "completed");
    let seen = seen.recv_timeout(Duration::from_secs(10)).expect("the agent's stream ended");
    let starts = seen.events.iter().filter(|e| *e == "start").count();
    assert_eq!(starts, 1, "one stream for the one call kept: {seen:?}");
    assert_eq!(seen.events.last().map(String::as_str), Some("stop"), "{seen:?}");
    assert_eq!(seen.start["start"]["callSid"], sid.as_str(), "{seen:?}");
    assert!(seen.media >= 25, "the kept dialog's audio (our tone, echoed) reached the agent: {} frames", seen.media);
    let record = ended_record(&case.server, &sid);
    assert_eq!(record["sip_status"], 200, "{record}");
    assert!(!record["answer_at"].is_null(), "{record}");
}

#[test]
fn the_unmodified_twilio_python_library_places_a_call() {
    let mut case = Case::start("cases-python", "termination_auth.xml", 1, &[]);
    let (agent_url, seen, _agent_rt) = agent();
    let twiml = format!("<Response><Connect><Stream url=\"{agent_url}\"/></Connect></Response>");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sip-tests/twilio_client/place_call.py");
    let out = Command::new("python3")
        .arg(&script)
        .env("VOCALS_BASE_URL", format!("http://127.0.0.1:{}", case.server.admin))
        .env("ACCOUNT_SID", ACCOUNT)
        .env("AUTH_TOKEN", TOKEN)
        .env("CALL_TO", CALLEE)
        .env("CALL_FROM", NUMBER)
        .env("CALL_TWIML", &twiml)
        .env("STATUS_CALLBACK", &case.callback_url)
        // Nothing of the environment between the library and vocals: no edge or region rewriting the host, no
        // proxy for loopback.
        .env_remove("TWILIO_EDGE")
        .env_remove("TWILIO_REGION")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .output()
        .unwrap_or_else(|e| panic!("python3 is required ({e}): install it, and `bash sip-tests/run` adds the library"));
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "place_call.py failed ({:?}); the twilio library {TWILIO_PYTHON} is installed by `bash sip-tests/run`:\n\
         {stdout}\n{stderr}\ncalls: {:#?}",
        out.status.code(),
        case.server.calls()
    );
    let result: serde_json::Value = serde_json::from_str(stdout.trim().lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("place_call.py printed no JSON ({e}):\n{stdout}\n{stderr}"));
    assert!(result["library"].as_str().unwrap_or_default().starts_with("9."), "{result}");
    let created = &result["created"];
    let sid = created["sid"].as_str().unwrap_or_default().to_string();
    assert!(sid.starts_with("CA") && sid.len() == 34, "{result}");
    assert_eq!(created["status"], "queued", "{result}");
    assert_eq!((created["to"].as_str(), created["from"].as_str()), (Some(CALLEE), Some(NUMBER)), "{result}");
    assert_eq!((created["account_sid"].as_str(), created["direction"].as_str()), (Some(ACCOUNT), Some("outbound-api")));
    assert_eq!(result["final"]["sid"], sid.as_str(), "{result}");
    assert_eq!(result["final"]["status"], "completed", "{result}");
    let statuses_seen: Vec<&str> = result["statuses"].as_array().unwrap().iter().filter_map(|s| s.as_str()).collect();
    assert!(statuses_seen.contains(&"in-progress"), "the library saw the call answered: {result}");
    case.termination_passed();
    let forms = callbacks(&case.posted, &case.callback_url, &sid, 0, 4, Duration::from_secs(10));
    assert_eq!(statuses(&forms), ["initiated", "ringing", "in-progress", "completed"], "{forms:?}");
    let seen = seen.recv_timeout(Duration::from_secs(10)).expect("the agent's stream ended");
    assert_eq!(seen.start["start"]["callSid"], sid.as_str(), "{seen:?}");
    assert!(seen.media >= 25, "the callee's audio (our tone, echoed) reached the agent: {} frames", seen.media);
}

#[test]
fn the_admin_api_and_the_cli_place_calls_that_the_echo_agent_answers() {
    // Two calls, each challenged (407), answered and hung up by the callee after 3 s.
    let mut case = Case::start("cases-admin", "termination_auth.xml", 2, &[]);
    let server = &case.server;
    let (status, agents) = server.api("GET", "/v1/agents", None);
    assert_eq!(status, 200, "{agents}");
    let echo = agents["agents"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["kind"] == "echo" && a["builtin"] == true))
        .unwrap_or_else(|| panic!("the built-in echo agent: {agents}"));
    let echo_id = echo["id"].as_str().unwrap().to_string();
    let body = serde_json::json!({"agent_id": echo_id, "to": CALLEE, "from": NUMBER});
    let (status, placed) = server.api("POST", "/v1/calls", Some(body));
    assert_eq!((status, placed["status"].as_str()), (201, Some("queued")), "{placed}");
    let first = placed["sid"].as_str().unwrap().to_string();
    assert_eq!((placed["to"].as_str(), placed["from"].as_str()), (Some(CALLEE), Some(NUMBER)), "{placed}");
    // An agent that does not exist is the request's mistake.
    let body = serde_json::json!({"agent_id": "ag_nobody", "to": CALLEE, "from": NUMBER});
    let (status, refused) = server.api("POST", "/v1/calls", Some(body));
    assert_eq!(status, 422, "{refused}");

    let other = "+14155550101";
    let (code, out, err) = cli(server, &["calls", "dial", "--agent", &echo_id, "--to", other, "--from", NUMBER], &[]);
    assert_eq!(code, 0, "{out}{err}");
    let line = out.trim();
    assert!(line.starts_with(&format!("calling {other} from {NUMBER}: CA")) && line.ends_with(" (queued)"), "{out}");
    let second = line.split(": ").nth(1).unwrap().trim_end_matches(" (queued)").to_string();
    assert_eq!(second.len(), 34, "{out}");

    case.termination_passed();
    for (sid, to) in [(&first, CALLEE), (&second, other)] {
        let record = ended_record(&case.server, sid);
        assert_eq!((record["to"].as_str(), record["from"].as_str()), (Some(to), Some(NUMBER)), "{record}");
        assert_eq!((record["agent"].as_str(), record["sip_status"].as_u64()), (Some("echo"), Some(200)), "{record}");
        assert!(!record["answer_at"].is_null(), "{record}");
        assert_eq!(status_of(&case.server, sid), "completed");
    }
}
