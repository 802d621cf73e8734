//! Twilio account linking end to end: a whole vocals run in-process (`common::InProcess`) against the local
//! Twilio stand-in (`standin/`): credentials checked, numbers listed with what answers them, the add flow
//! (trunk, origination URLs, attachment, read-back), removal putting Twilio back as it was (never releasing a
//! number), failures half-way leaving a consistent, retryable state, and drift found by reconcile and repaired;
//! and (`twilio/termination.rs`) the trunk's termination side.

mod common;
mod standin;
#[path = "twilio/termination.rs"]
mod termination;

use axum::http::Method;
use serde_json::{Value, json};

use common::inprocess::InProcess;
use common::{Vocals, cli};
use standin::Twilio;

const AC: &str = "AC11111111111111111111111111111111";
const TOKEN: &str = "secret-auth-token";
const NODE_A: &str = "sip:vocals-a.example.com:5060";
const NODE_B: &str = "sip:vocals-b.example.com:5060";

/// A vocals pointed at the stand-in, with one linked account, and the stand-in.
fn setup(name: &str) -> (InProcess, Twilio) {
    setup_with(name, &[])
}

/// [`setup`] with more environment.
fn setup_with(name: &str, extra: &[(&str, &str)]) -> (InProcess, Twilio) {
    let twilio = Twilio::start();
    twilio.account(AC, TOKEN);
    let origination = format!("{NODE_A}, {NODE_B}");
    let mut env = vec![
        ("VOCALS_TWILIO_API_URL", twilio.base.as_str()),
        ("VOCALS_TWILIO_TRUNKING_URL", twilio.base.as_str()),
        ("VOCALS_TWILIO_ORIGINATION_URIS", origination.as_str()),
        ("VOCALS_TWILIO_RECONCILE_INTERVAL", "0"),
        ("VOCALS_TWILIO_TIMEOUT_MS", "3000"),
    ];
    env.extend_from_slice(extra);
    let server = InProcess::start(name, &env);
    (server, twilio)
}

fn link(server: &Vocals) {
    let (status, body) =
        server.api("POST", "/v1/twilio/accounts", Some(json!({"account_sid": AC, "auth_token": TOKEN})));
    assert_eq!(status, 201, "{body}");
}

fn agent(server: &Vocals) -> String {
    let (status, body) = server.api("POST", "/v1/agents", Some(json!({"name": "parrot", "kind": "echo"})));
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().unwrap().to_string()
}

fn add(server: &Vocals, phone: &str, agent: Option<&str>) -> (u16, Value) {
    server.api("POST", "/v1/numbers", Some(json!({"phone_number": phone, "agent_id": agent, "twilio_account_sid": AC})))
}

fn number(server: &Vocals, phone: &str) -> Value {
    let (status, body) = server.api("GET", &format!("/v1/numbers/{phone}"), None);
    assert_eq!(status, 200, "{body}");
    body
}

/// Nothing vocals sent released a number from the account.
fn assert_never_released(twilio: &Twilio) {
    let releases: Vec<_> =
        twilio.requests().into_iter().filter(|(m, p)| m == "DELETE" && p.contains("IncomingPhoneNumbers")).collect();
    assert!(releases.is_empty(), "vocals released numbers: {releases:?}");
}

#[test]
fn linking_checks_the_credentials_and_lists_every_number_with_what_answers_it() {
    let (server, twilio) = setup("twilio-link");
    let (status, body) =
        server.api("POST", "/v1/twilio/accounts", Some(json!({"account_sid": AC, "auth_token": "wrong"})));
    assert_eq!((status, body["error"]["code"].as_str()), (422, Some("invalid")), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("20003"), "Twilio's code and message: {body}");
    // Twilio busy once: retried.
    twilio.fail(Method::GET, "IncomingPhoneNumbers.json", 429, 20429, 1);
    link(&server);
    let (_, accounts) = server.api("GET", "/v1/twilio/accounts", None);
    assert_eq!(accounts["accounts"][0]["account_sid"], AC);
    assert!(!accounts.to_string().contains(TOKEN), "tokens are never returned: {accounts}");

    // 1,001 numbers: two pages of Twilio's 1,000.
    let on_url = twilio.number(AC, "+14155550100");
    let on_app = twilio.number(AC, "+14155550101");
    twilio.update(&on_app, |n| {
        n.voice_url = None;
        n.voice_application_sid = Some("AP00000000000000000000000000000001".into());
    });
    let free = twilio.number(AC, "+14155550102");
    twilio.update(&free, |n| n.voice_url = None);
    let no_voice = twilio.number(AC, "+14155550103");
    twilio.update(&no_voice, |n| {
        n.voice = false;
        n.voice_url = None;
    });
    for i in 0..997 {
        let sid = twilio.number(AC, &format!("+1212555{i:04}"));
        twilio.update(&sid, |n| n.voice_url = None);
    }
    let (status, body) = server.api("GET", &format!("/v1/twilio/accounts/{AC}/numbers"), None);
    assert_eq!(status, 200, "{body}");
    let numbers = body["numbers"].as_array().unwrap();
    assert_eq!(numbers.len(), 1001);
    let find = |sid: &str| numbers.iter().find(|n| n["sid"] == sid).unwrap().clone();
    assert_eq!(
        (find(&on_url)["in_use"].as_bool(), find(&on_url)["in_use_by"].as_str()),
        (Some(true), Some("voice URL https://demo.twilio.com/welcome/voice/"))
    );
    assert!(find(&on_app)["in_use_by"].as_str().unwrap().starts_with("application AP"));
    assert_eq!((find(&free)["in_use"].as_bool(), find(&free)["voice"].as_bool()), (Some(false), Some(true)));
    assert_eq!(find(&no_voice)["voice"], false);
    let (status, body) = add(&server, "+14155550103", None);
    assert_eq!(status, 422, "a number without voice cannot be added: {body}");
    let (status, body) = add(&server, "+14155550199", None);
    assert_eq!(status, 422, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("is not a number of Twilio account"), "{body}");
}

#[test]
fn adding_configures_twilio_and_removing_puts_it_back_as_it_was() {
    let (server, twilio) = setup("twilio-add-remove");
    link(&server);
    let agent = agent(&server);
    let on_url = twilio.number(AC, "+14155550110");
    let on_app = twilio.number(AC, "+14155550111");
    twilio.update(&on_app, |n| {
        n.voice_url = None;
        n.voice_application_sid = Some("AP00000000000000000000000000000002".into());
    });
    let before_url = twilio.get(&on_url);
    let before_app = twilio.get(&on_app);

    let (status, n) = add(&server, "+14155550110", Some(&agent));
    assert_eq!((status, n["status"].as_str()), (201, Some("active")), "{n}");
    assert_eq!(n["twilio_snapshot"]["voice_url"], "https://demo.twilio.com/welcome/voice/");
    let trunks: Vec<_> = twilio.state.lock().unwrap().trunks.values().cloned().collect();
    assert_eq!(trunks.len(), 1, "one vocals trunk per account");
    assert!(trunks[0].domain_name.starts_with("vocals-") && trunks[0].domain_name.ends_with(".pstn.twilio.com"));
    let urls: Vec<String> = twilio
        .state
        .lock()
        .unwrap()
        .origination_urls
        .values()
        .map(|o| format!("{} {} {}", o.sip_url, o.priority, o.weight))
        .collect();
    assert_eq!(urls, [format!("{NODE_A} 10 10"), format!("{NODE_B} 10 10")], "every node's URI");
    assert_eq!(twilio.get(&on_url).trunk_sid.as_deref(), Some(trunks[0].sid.as_str()));
    let (_, accounts) = server.api("GET", "/v1/twilio/accounts", None);
    assert_eq!(accounts["accounts"][0]["trunk_sid"].as_str(), Some(trunks[0].sid.as_str()));
    // Where its calls go, as the numbers list shows it: the trunk, its domain, every origination URI with its
    // priority and weight; both nodes are public names, the agent is the echo kind: healthy.
    let n = number(&server, "+14155550110");
    assert_eq!(n["routing"]["trunk_sid"].as_str(), Some(trunks[0].sid.as_str()), "{n}");
    assert_eq!(n["routing"]["trunk_domain"].as_str(), Some(trunks[0].domain_name.as_str()), "{n}");
    let shown: Vec<String> = n["routing"]["origination"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| format!("{} {} {}", o["sip_url"].as_str().unwrap(), o["priority"], o["weight"]))
        .collect();
    assert_eq!(shown, urls, "{n}");
    assert_eq!(n["health"], json!({"ok": true, "problems": []}), "{n}");

    // The second number reuses the trunk and its URLs; attaching drops the application (Twilio does).
    let (status, n) = add(&server, "+14155550111", None);
    assert_eq!((status, n["status"].as_str()), (201, Some("inactive")), "{n}");
    assert_eq!(twilio.state.lock().unwrap().trunks.len(), 1);
    assert_eq!(twilio.state.lock().unwrap().origination_urls.len(), 2);
    assert_eq!(twilio.get(&on_app).voice_application_sid, None);
    let (status, _) = add(&server, "+14155550111", None);
    assert_eq!(status, 409, "added once");

    // Unlinking an account in use is refused, naming the numbers.
    let (status, body) = server.api("DELETE", &format!("/v1/twilio/accounts/{AC}"), None);
    assert_eq!(status, 409, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("+14155550110"), "{body}");

    // Removal: off the trunk, settings restored, the number still in the account.
    for (phone, sid, before) in [("+14155550110", &on_url, &before_url), ("+14155550111", &on_app, &before_app)] {
        let (status, body) = server.api("DELETE", &format!("/v1/numbers/{phone}"), None);
        assert_eq!(status, 204, "{body}");
        assert_eq!(&twilio.get(sid), before, "{phone} is back as it was");
        let (status, _) = server.api("GET", &format!("/v1/numbers/{phone}"), None);
        assert_eq!(status, 404);
    }
    assert_never_released(&twilio);
    let (status, body) = server.api("DELETE", &format!("/v1/twilio/accounts/{AC}"), None);
    assert_eq!(status, 204, "{body}");
}

#[test]
fn a_number_taken_from_another_trunk_goes_back_to_it() {
    let (server, twilio) = setup("twilio-other-trunk");
    link(&server);
    let sid = twilio.number(AC, "+14155550120");
    let other = {
        let mut s = twilio.state.lock().unwrap();
        let tk = s.sid("TK");
        let trunk = standin::Trunk {
            account_sid: AC.into(),
            sid: tk.clone(),
            friendly_name: "pbx".into(),
            domain_name: "pbx.pstn.twilio.com".into(),
            transfer_mode: "disable-all".into(),
            secure: false,
        };
        s.trunks.insert(tk.clone(), trunk);
        tk
    };
    twilio.update(&sid, |n| n.trunk_sid = Some(other.clone()));
    let before = twilio.get(&sid);
    let (_, listed) = server.api("GET", &format!("/v1/twilio/accounts/{AC}/numbers"), None);
    assert_eq!(listed["numbers"][0]["in_use_by"].as_str(), Some(format!("trunk {other}").as_str()));
    let (status, n) = add(&server, "+14155550120", None);
    assert_eq!((status, n["status"].as_str()), (201, Some("inactive")), "{n}");
    assert_ne!(twilio.get(&sid).trunk_sid, Some(other.clone()), "moved to the vocals trunk");
    let (status, _) = server.api("DELETE", "/v1/numbers/+14155550120", None);
    assert_eq!(status, 204);
    assert_eq!(twilio.get(&sid), before, "back on trunk {other}");
    assert_never_released(&twilio);
}

#[test]
fn failures_half_way_leave_a_consistent_retryable_state() {
    let (server, twilio) = setup("twilio-failures");
    link(&server);
    let sid = twilio.number(AC, "+14155550130");
    let before = twilio.get(&sid);
    // The trunk's domain name is taken once (regenerated), then attaching fails for good.
    twilio.fail(Method::POST, "/v1/Trunks", 409, 21248, 1);
    twilio.state.lock().unwrap().faults[0].message = "DomainName is already in use".into();
    twilio.fail(Method::POST, "/PhoneNumbers", 500, 20500, 4);
    let (status, n) = add(&server, "+14155550130", None);
    assert_eq!((status, n["status"].as_str()), (201, Some("error")), "{n}");
    assert!(n["status_detail"].as_str().unwrap().contains("20500"), "Twilio's code and message: {n}");
    assert_eq!(twilio.state.lock().unwrap().trunks.len(), 1, "the trunk was created");
    assert_eq!(twilio.get(&sid).trunk_sid, None, "not attached");
    // Retry: the same trunk, the number attached.
    let (status, n) = server.api("POST", "/v1/numbers/+14155550130/twilio/retry", None);
    assert_eq!((status, n["status"].as_str(), n["status_detail"].as_str()), (200, Some("inactive"), Some("")), "{n}");
    assert_eq!(twilio.state.lock().unwrap().trunks.len(), 1, "no second trunk");
    assert!(twilio.get(&sid).trunk_sid.is_some());
    assert_eq!(n["twilio_snapshot"]["voice_url"], "https://demo.twilio.com/welcome/voice/", "the first snapshot kept");

    // Restoring fails after the detach: the number stays, in error, with its snapshot; removing again works.
    twilio.fail(Method::POST, &format!("IncomingPhoneNumbers/{sid}.json"), 400, 21999, 1);
    let (status, body) = server.api("DELETE", "/v1/numbers/+14155550130", None);
    assert_eq!((status, body["error"]["code"].as_str()), (502, Some("twilio_error")), "{body}");
    let n = number(&server, "+14155550130");
    assert_eq!(n["status"], "error");
    assert!(n["status_detail"].as_str().unwrap().starts_with("removing: Twilio 21999"), "{n}");
    assert_eq!(n["twilio_snapshot"]["voice_url"], "https://demo.twilio.com/welcome/voice/");
    let (status, body) = server.api("DELETE", "/v1/numbers/+14155550130", None);
    assert_eq!(status, 204, "{body}");
    assert_eq!(twilio.get(&sid), before);
    // Twilio down: adding answers an error state, nothing half-stored is lost.
    twilio.fail(Method::GET, "IncomingPhoneNumbers.json", 503, 20503, 8);
    let (status, body) = add(&server, "+14155550130", None);
    assert_eq!((status, body["error"]["code"].as_str()), (502, Some("twilio_error")), "{body}");
    assert_never_released(&twilio);
}

#[test]
fn reconcile_flags_drift_and_repair_sets_twilio_right_again() {
    let (server, twilio) = setup("twilio-drift");
    link(&server);
    let sid = twilio.number(AC, "+14155550140");
    let (status, n) = add(&server, "+14155550140", None);
    assert_eq!((status, n["status"].as_str()), (201, Some("inactive")), "{n}");
    let (_, r) = server.api("POST", "/v1/twilio/reconcile", None);
    assert_eq!(r["drift"].as_array().map(Vec::len), Some(0), "{r}");

    // Someone moves the number to a voice URL in the console.
    twilio.update(&sid, |n| n.trunk_sid = None);
    let (_, r) = server.api("POST", "/v1/twilio/reconcile", None);
    assert_eq!(r["drift"][0]["phone_number"], "+14155550140", "{r}");
    let n = number(&server, "+14155550140");
    assert_eq!(n["status"], "error");
    // In words, with the SIDs only in the details (twilio_now).
    let detail = n["status_detail"].as_str().unwrap();
    assert_eq!(
        detail,
        "drift: Twilio now sends this number to the voice URL https://demo.twilio.com/welcome/voice/, not to vocals"
    );
    assert!(!detail.contains("TK"), "{detail}");
    assert!(n["twilio_now"]["trunk_sid"].is_null(), "{n}");
    assert_eq!(n["health"]["problems"][0]["code"], "twilio_drift", "{n}");
    let (status, n) = server.api("POST", "/v1/numbers/+14155550140/twilio/repair", None);
    assert_eq!((status, n["status"].as_str()), (200, Some("inactive")), "{n}");
    assert!(twilio.get(&sid).trunk_sid.is_some());

    // An origination URL deleted.
    let ou = twilio.state.lock().unwrap().origination_urls.keys().next().cloned().unwrap();
    twilio.state.lock().unwrap().origination_urls.remove(&ou);
    let (_, r) = server.api("POST", "/v1/twilio/reconcile", None);
    assert!(r["drift"][0]["detail"].as_str().unwrap().contains("origination URL"), "{r}");
    let (status, _) = server.api("POST", "/v1/numbers/+14155550140/twilio/repair", None);
    assert_eq!(status, 200);
    assert_eq!(twilio.state.lock().unwrap().origination_urls.len(), 2);

    // The whole trunk deleted (which detaches its numbers): repair makes a new one.
    let tk = twilio.state.lock().unwrap().trunks.keys().next().cloned().unwrap();
    twilio.state.lock().unwrap().trunks.remove(&tk);
    twilio.update(&sid, |n| n.trunk_sid = None);
    let (_, r) = server.api("POST", "/v1/twilio/reconcile", None);
    assert_eq!(r["drift"].as_array().map(Vec::len), Some(1), "{r}");
    let (status, n) = server.api("POST", "/v1/numbers/+14155550140/twilio/repair", None);
    assert_eq!((status, n["status"].as_str()), (200, Some("inactive")), "{n}");
    let now = twilio.get(&sid).trunk_sid.unwrap();
    assert_ne!(now, tk);
    assert!(twilio.state.lock().unwrap().trunks.contains_key(&now));
    assert_never_released(&twilio);
}

#[test]
fn repair_and_remove_say_first_what_they_replace_and_restore_and_remove_can_leave_twilio_as_it_is() {
    let (server, twilio) = setup("twilio-preview");
    link(&server);
    let sid = twilio.number(AC, "+14155550160");
    assert_eq!(add(&server, "+14155550160", None).0, 201);
    let (status, p) = server.api("GET", "/v1/numbers/+14155550160/twilio", None);
    assert_eq!(status, 200, "{p}");
    assert_eq!(p["now"], "the vocals trunk");
    assert_eq!(p["on_vocals"], true);
    assert!(p["repair_replaces"].is_null(), "{p}");
    assert_eq!(p["remove_restores"], "the voice URL https://demo.twilio.com/welcome/voice/");

    // A deliberate change in the console: a TwiML Bin's voice URL instead of the trunk.
    let bin = "https://handler.twilio.com/twiml/EH1230000000000000000000000000000";
    twilio.update(&sid, |n| {
        n.trunk_sid = None;
        n.voice_url = Some(bin.into());
    });
    let (_, p) = server.api("GET", "/v1/numbers/+14155550160/twilio", None);
    assert_eq!(p["now"], format!("the voice URL {bin}"));
    assert_eq!(p["on_vocals"], false);
    assert_eq!(p["repair_replaces"], format!("the voice URL {bin}"));
    assert_eq!(p["remove_restores"], "the voice URL https://demo.twilio.com/welcome/voice/");

    // "Remove from vocals and leave Twilio as it is now": the Bin stays; the number is gone from vocals.
    let before = twilio.get(&sid);
    let (status, body) = server.api("DELETE", "/v1/numbers/+14155550160?twilio=leave", None);
    assert_eq!(status, 204, "{body}");
    assert_eq!(twilio.get(&sid), before, "Twilio untouched");
    assert_eq!(server.api("GET", "/v1/numbers/+14155550160", None).0, 404);
    assert_never_released(&twilio);
}

#[test]
fn a_loopback_origination_uri_makes_an_active_number_unhealthy() {
    let twilio = Twilio::start();
    twilio.account(AC, TOKEN);
    let server = InProcess::start(
        "twilio-loopback",
        &[
            ("VOCALS_TWILIO_API_URL", &twilio.base),
            ("VOCALS_TWILIO_TRUNKING_URL", &twilio.base),
            ("VOCALS_TWILIO_ORIGINATION_URIS", "sip:127.0.0.1:5190"),
            ("VOCALS_TWILIO_RECONCILE_INTERVAL", "0"),
        ],
    );
    link(&server);
    let agent = agent(&server);
    twilio.number(AC, "+14155550170");
    let (status, n) = add(&server, "+14155550170", Some(&agent));
    assert_eq!(status, 201, "{n}");
    let n = number(&server, "+14155550170");
    assert_eq!(n["status"], "active", "{n}");
    assert_eq!(n["health"]["ok"], false, "{n}");
    assert_eq!(n["health"]["problems"][0]["code"], "origination_unreachable", "{n}");
    assert_eq!(
        n["health"]["problems"][0]["message"],
        "Twilio sends calls to sip:127.0.0.1:5190, which Twilio cannot reach (a loopback address)"
    );
}

#[test]
fn the_cli_links_an_account_and_adds_its_number() {
    let (server, twilio) = setup("twilio-cli");
    let sid = twilio.number(AC, "+14155550150");
    let (code, _, err) = cli(&server, &["twilio", "link", AC], &[("TWILIO_AUTH_TOKEN", "wrong")]);
    assert_eq!(code, 1);
    assert!(err.contains("422 invalid: Twilio refused these credentials"), "{err}");
    let (code, out, err) = cli(&server, &["twilio", "link", AC, "--name", "Main"], &[("TWILIO_AUTH_TOKEN", TOKEN)]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!out.contains(TOKEN), "{out}");
    let (code, out, _) = cli(&server, &["twilio", "numbers", AC], &[]);
    assert_eq!(code, 0);
    assert!(out.lines().nth(1).unwrap().starts_with(&format!("+14155550150  {sid}  true   false  voice URL")), "{out}");
    let (code, out, err) = cli(&server, &["numbers", "add", "+14155550150", "--twilio-account", AC], &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("\"status\": \"inactive\""), "{out}");
    assert!(twilio.get(&sid).trunk_sid.is_some());
    let (code, out, _) = cli(&server, &["twilio", "reconcile"], &[]);
    assert_eq!((code, out.trim()), (0, "NUMBER  DETAIL"));
    let (code, out, _) = cli(&server, &["twilio", "accounts"], &[]);
    assert_eq!(code, 0);
    assert!(out.lines().nth(1).unwrap().starts_with(&format!("{AC}  Main  TK")), "{out}");
    let (code, _, err) = cli(&server, &["numbers", "remove", "+14155550150"], &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(twilio.get(&sid).trunk_sid, None);
}

#[test]
fn a_vocals_serving_tls_gets_a_secure_trunk_pointed_at_its_tls_listener() {
    let twilio = Twilio::start();
    twilio.account(AC, TOKEN);
    let dir = std::env::temp_dir().join(format!("vocals-twilio-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pair = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, pair.cert.pem()).unwrap();
    std::fs::write(&key, pair.signing_key.serialize_pem()).unwrap();
    let (cert, key) = (cert.display().to_string(), key.display().to_string());
    // No origination URIs configured: this node's own, the TLS listener's.
    let server = InProcess::start(
        "twilio-tls",
        &[
            ("VOCALS_TWILIO_API_URL", &twilio.base),
            ("VOCALS_TWILIO_TRUNKING_URL", &twilio.base),
            ("VOCALS_TWILIO_RECONCILE_INTERVAL", "0"),
            ("VOCALS_SIP_LISTEN_TLS", "127.0.0.1:0"),
            ("VOCALS_SIP_TLS_CERT", &cert),
            ("VOCALS_SIP_TLS_KEY", &key),
        ],
    );
    link(&server);
    twilio.number(AC, "+14155550120");
    let (status, n) = add(&server, "+14155550120", Some(&agent(&server)));
    assert_eq!((status, n["status"].as_str()), (201, Some("active")), "{n}");
    let state = twilio.state.lock().unwrap();
    let trunk = state.trunks.values().next().expect("a trunk");
    assert!(trunk.secure, "Secure Trunking on: {trunk:?}");
    let urls: Vec<&str> = state.origination_urls.values().map(|o| o.sip_url.as_str()).collect();
    let tls_port = server.tls.expect("the TLS listener");
    assert_eq!(urls, [format!("sip:127.0.0.1:{tls_port};transport=tls")]);
    let _ = std::fs::remove_dir_all(&dir);
}
