//! The Phone Numbers dashboard end to end, in headless Chromium (Debian's `chromium` driven through
//! `chromedriver`) against a whole vocals run in-process (`common::inprocess::InProcess`, on ports bound to 0)
//! and the local Twilio stand-in: sign in with the admin token, create agents, link an account (a wrong token
//! first: the error sits under its field), add a number and see it Active, take a real call and hang it up from
//! the Calls page, reassign the number, see an Error state when Twilio fails and repair it with Retry, remove a
//! number with its confirmation; place a call with Dial, the test's UDP socket being the trunk; keyboard use,
//! labels and the phone layout checked on the way; a screenshot of each page (`VOCALS_UI_SCREENSHOTS=dir` keeps
//! them, default `target/ui-screenshots`).

mod browser;
mod common;
mod standin;

use std::net::UdpSocket;
use std::path::PathBuf;
use std::time::Duration;

use axum::http::Method;

use browser::{Browser, ENTER, ESCAPE};
use common::inprocess::InProcess;
use common::{Caller, header};
use standin::Twilio;

/// The account the test caller's INVITEs name (X-Twilio-AccountSid).
const AC: &str = "ACbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const TOKEN: &str = "ui-auth-token";
const FIRST: &str = "+14155550140";
const SECOND: &str = "+14155550141";

fn shots() -> PathBuf {
    std::env::var_os("VOCALS_UI_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/ui-screenshots"))
}

fn row(number: &str) -> String {
    format!("tr[data-number=\"{number}\"]")
}

/// Picks a number in the add dialog's searchable list: its last four digits typed, then its option clicked.
fn pick(b: &Browser, number: &str) {
    b.fill("#account-number", &number[number.len() - 4..]);
    let option = format!("#pick-{}", number.trim_start_matches('+'));
    b.click(&option);
    b.wait(&format!("return document.querySelector('{option}').getAttribute('aria-selected') === 'true'"), number);
}

/// Signs in to the dashboard of `server` with its token: the numbers page.
fn sign_in(b: &Browser, server: &common::Vocals) {
    b.goto(&format!("http://127.0.0.1:{}/", server.admin));
    b.fill("#token", &server.token());
    b.keys(ENTER);
    b.wait("return !document.querySelector('#numbers-view').hidden", "the numbers page");
}

/// The docs' screenshots (docs/img/) are taken from this run; `VOCALS_DOCS_SCREENSHOTS=dir` writes them there.
fn doc_shot(b: &Browser, name: &str) {
    b.screenshot(&shots().join(name));
    if let Some(dir) = std::env::var_os("VOCALS_DOCS_SCREENSHOTS") {
        b.screenshot(&PathBuf::from(dir).join(name));
    }
}

#[test]
fn the_dashboard_adds_assigns_shows_errors_and_removes_numbers_in_a_real_browser() {
    let twilio = Twilio::start();
    twilio.account(AC, TOKEN);
    let first_sid = twilio.number(AC, FIRST);
    twilio.number(AC, SECOND);
    let before = twilio.get(&first_sid);
    let server = InProcess::start(
        "ui",
        &[
            ("VOCALS_TWILIO_API_URL", &twilio.base),
            ("VOCALS_TWILIO_TRUNKING_URL", &twilio.base),
            ("VOCALS_TWILIO_ORIGINATION_URIS", "sip:vocals.example.com:5060"),
            ("VOCALS_TWILIO_RECONCILE_INTERVAL", "0"),
            ("VOCALS_TWILIO_TIMEOUT_MS", "3000"),
        ],
    );
    let base = format!("http://127.0.0.1:{}", server.admin);
    let b = Browser::start();

    // Sign in: a wrong token is refused on the form, the right one opens Phone Numbers.
    b.goto(&format!("{base}/"));
    b.fill("#token", "not-the-token-at-all");
    b.keys(ENTER);
    b.wait_text("#token-error", "Sign in again");
    b.fill("#token", &server.token());
    b.keys(ENTER);
    b.wait("return !document.querySelector('#numbers-view').hidden", "the numbers page");
    b.wait_text("#numbers-table", "No numbers yet");

    // Agents: a WebSocket agent without a valid URL is refused next to the URL field; then two agents.
    b.click("a[href=\"#/agents\"]");
    b.click("#new-agent");
    b.fill("#agent-name", "sales");
    b.fill("#agent-stream-url", "http://not-a-websocket");
    b.click("#agent-save");
    b.wait("return document.querySelector('#agent-stream-url-error').textContent.length > 0", "the URL's error");
    assert_eq!(b.js("return document.querySelector('#agent-stream-url').getAttribute('aria-invalid')"), "true");
    b.fill("#agent-stream-url", "ws://127.0.0.1:9/stream");
    b.fill("#agent-system-prompt", "You sell things, kindly.");
    b.fill("#agent-settings", "{\"voice\": \"alloy\"}");
    b.click("#agent-save");
    b.wait_text("#agents-table", "sales");
    b.click("#new-agent");
    b.fill("#agent-name", "support");
    b.select("#agent-kind", "echo");
    b.click("#agent-save");
    b.wait_text("#agents-table", "support");
    let (_, agents) = server.api("GET", "/v1/agents", None);
    let id = |name: &str| {
        agents["agents"].as_array().unwrap().iter().find(|a| a["name"] == name).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (support, sales) = (id("support"), id("sales"));
    assert_eq!(
        agents["agents"].as_array().unwrap().iter().find(|a| a["name"] == "sales").unwrap()["settings"]["voice"],
        "alloy"
    );
    b.screenshot(&shots().join("agents.png"));

    // Add a number: the account is not linked yet, so its SID and token come first (a wrong token: the error
    // is under the token field).
    b.click("a[href=\"#/numbers\"]");
    b.click("#add-number");
    b.fill("#account-sid", AC);
    b.fill("#auth-token", "wrong-token");
    b.click("#link-account");
    b.wait("return document.querySelector('#auth-token-error').textContent.length > 0", "the token's error");
    b.fill("#auth-token", TOKEN);
    b.click("#link-account");
    pick(&b, FIRST);
    b.select("#number-agent", &support);
    b.screenshot(&shots().join("add-number.png"));
    b.click("#save-number");
    b.wait_text(&format!("{} td.status", row(FIRST)), "Active");
    assert!(b.text(&row(FIRST)).contains("support"));
    assert!(twilio.get(&first_sid).trunk_sid.is_some(), "attached to the vocals trunk");

    // A real call to it, seen on the Calls page with its duration, hung up from there.
    let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (caller, _) = Caller::invite_to(&server, &rtp, "ui-call", FIRST);
    b.click("a[href=\"#/calls\"]");
    b.wait("return document.querySelectorAll('#active-calls tr[data-call-id]').length == 1", "the call in progress");
    b.wait("return /[1-9]/.test(document.querySelector('#active-calls td.duration').textContent)", "its duration");
    b.screenshot(&shots().join("calls.png"));
    b.click("#active-calls button.hangup");
    // Hang up asks first, naming the call; Cancel leaves it up.
    b.wait_text("#hangup-text", "End the call from");
    b.click("#hangup-dialog button.cancel");
    b.wait("return !document.querySelector('#hangup-dialog').open", "the dialog closed");
    assert!(caller.sip.set_read_timeout(Some(Duration::from_millis(300))).is_ok());
    let mut buf = [0u8; 2048];
    assert!(caller.sip.recv(&mut buf).is_err(), "Cancel hung up the call");
    caller.sip.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    b.click("#active-calls button.hangup");
    b.click("#hangup-confirm");
    let bye = caller.recv();
    assert!(bye.starts_with("BYE "), "{bye}");
    assert!(header(&bye, "Call-ID").contains("ui-call"));
    caller.respond_ok(&bye);
    b.wait("return document.querySelectorAll('#active-calls tr[data-call-id]').length == 0", "the call gone");
    b.wait_text("#recent-calls", FIRST);
    // That caller sent no RTP: the finished call is flagged as one-way audio, with the usual fix.
    b.wait_text("#recent-calls", "One-way audio: nothing came from the caller");
    b.wait_text("#recent-calls", "media.public_ip");

    // Reassign: the next call goes to the new agent.
    b.click("a[href=\"#/numbers\"]");
    b.click(&format!("{} button.change-agent", row(FIRST)));
    b.select("#change-agent-select", &sales);
    b.click("#change-agent-save");
    b.wait_text(&row(FIRST), "sales");
    let (_, n) = server.api("GET", &format!("/v1/numbers/{FIRST}"), None);
    assert_eq!(n["agent_id"], sales.as_str(), "{n}");

    // Twilio fails while the second number is added: Error with the reason, then Retry mends it.
    twilio.fail(Method::POST, "/PhoneNumbers", 500, 20500, 4);
    b.click("#add-number");
    pick(&b, SECOND);
    b.select("#number-agent", &support);
    b.click("#save-number");
    b.wait_text(&format!("{} td.status", row(SECOND)), "Error");
    assert!(b.text(&format!("{} td.status", row(SECOND))).contains("20500"));
    b.screenshot(&shots().join("numbers.png"));
    b.click(&format!("{} button.retry", row(SECOND)));
    b.wait_text(&format!("{} td.status", row(SECOND)), "Active");

    // Keyboard: the dialog opens with Enter, closes with Escape, and the focus goes back to its button.
    b.js("document.querySelector('#add-number').focus()");
    b.keys(ENTER);
    b.wait("return document.querySelector('#add-number-dialog').open", "the dialog open");
    b.keys(ESCAPE);
    b.wait("return !document.querySelector('#add-number-dialog').open", "the dialog closed");
    assert_eq!(b.js("return document.activeElement.id"), "add-number");
    // Every field has a label, every button a name.
    let unlabelled = b.js("return [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
           .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')).map(e => e.id)");
    assert_eq!(unlabelled, serde_json::json!([]), "fields without a label");
    let nameless = b.js("return [...document.querySelectorAll('button')]
           .filter(e => !(e.getAttribute('aria-label') || e.textContent.trim())).map(e => e.outerHTML)");
    assert_eq!(nameless, serde_json::json!([]), "buttons without a name");

    // Remove, confirmed: gone here, and the number in Twilio put back as it was.
    b.click(&format!("{} button.remove", row(FIRST)));
    b.wait_text("#remove-text", FIRST);
    b.click("#remove-confirm");
    b.wait(&format!("return !document.querySelector('{}')", row(FIRST).replace('\'', "\\'")), "the row gone");
    let (status, _) = server.api("GET", &format!("/v1/numbers/{FIRST}"), None);
    assert_eq!(status, 404);
    let after = twilio.get(&first_sid);
    assert_eq!((after.trunk_sid, after.voice_url), (before.trunk_sid, before.voice_url), "Twilio as it was");

    // A phone's width: nothing wider than the screen.
    b.resize(375, 812);
    b.wait("return window.innerWidth <= 400", "the narrow window");
    let overflow = b.js("return document.documentElement.scrollWidth - window.innerWidth");
    assert!(overflow.as_i64().unwrap() <= 0, "the page is wider than a phone by {overflow} px");
    b.screenshot(&shots().join("numbers-phone.png"));
}

/// Issue 27: the page tells the truth. An account of 1,050 numbers; this node's origination URI is loopback (as
/// a first try on a laptop leaves it) and the agent's URL answers nothing: the number reads Active but says why
/// no call will get through, and what fixes each. The picker finds a number by its last digits and refuses to
/// save without a choice; the detail shows the trunk and its origination URI; a change made in Twilio's console
/// is described in words, and Repair names what it replaces and asks first; Remove says what it restores, and
/// can leave Twilio as it is; the echo kind's form hides what does not apply; errors use the form's labels.
#[test]
fn the_dashboard_shows_number_health_finds_numbers_among_a_thousand_and_repairs_only_when_asked() {
    let twilio = Twilio::start();
    twilio.account(AC, TOKEN);
    let mut sids = Vec::new();
    for i in 0..1050 {
        sids.push(twilio.number(AC, &format!("+1415555{:04}", 1000 + i)));
    }
    let target = "+14155551037";
    let target_sid = sids[37].clone();
    let server = InProcess::start(
        "ui-health",
        &[
            ("VOCALS_TWILIO_API_URL", &twilio.base),
            ("VOCALS_TWILIO_TRUNKING_URL", &twilio.base),
            ("VOCALS_TWILIO_ORIGINATION_URIS", "sip:127.0.0.1:5190"),
            ("VOCALS_TWILIO_RECONCILE_INTERVAL", "0"),
            ("VOCALS_TWILIO_TIMEOUT_MS", "3000"),
        ],
    );
    let (status, body) =
        server.api("POST", "/v1/twilio/accounts", Some(serde_json::json!({"account_sid": AC, "auth_token": TOKEN})));
    assert_eq!(status, 201, "{body}");
    let base = format!("http://127.0.0.1:{}", server.admin);
    let b = Browser::start();
    b.resize(1280, 800);
    b.goto(&format!("{base}/"));
    b.fill("#token", &server.token());
    b.keys(ENTER);
    b.wait_text("#numbers-table", "No numbers yet");
    // Who answers numbers not on the page, said plainly.
    b.wait_text("#fallback-banner", "Other numbers");

    // An agent whose URL answers nothing: refused by nobody, but the save says so.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    b.click("a[href=\"#/agents\"]");
    b.click("#new-agent");
    // The echo kind hides the fields that do not apply to it.
    b.select("#agent-kind", "echo");
    b.wait("return document.querySelector('#agent-stream-url').offsetParent === null", "the URL field hidden");
    b.select("#agent-kind", "websocket");
    b.fill("#agent-name", "sales");
    b.fill("#agent-stream-url", "http://not-a-websocket");
    b.click("#agent-save");
    // The error names the field as it is labelled, not as the API calls it.
    b.wait_text("#agent-stream-url-error", "Stream URL must be");
    assert!(!b.text("#agent-stream-url-error").contains("stream_url"));
    b.fill("#agent-stream-url", &format!("ws://127.0.0.1:{dead}/media"));
    b.click("#agent-save");
    b.wait_text("#notice", "does not answer");
    b.wait_text("#agents-table", "Does not answer");

    // The picker: 1,050 numbers, fetched once, found by the last digits; nothing is chosen for the user.
    b.click("a[href=\"#/numbers\"]");
    b.click("#add-number");
    b.wait_text("#account-number-count", "1,050 of 1,050 numbers match");
    let fetched =
        twilio.requests().iter().filter(|(m, p)| m == "GET" && p.contains("IncomingPhoneNumbers.json")).count();
    assert_eq!(b.js("return document.querySelector('#number-agent').value"), "", "no agent preselected");
    assert_eq!(b.js("return document.querySelectorAll('#account-number-list [aria-selected=true]').length"), 0);
    // Save is in view at 1280x800, and without a choice it is refused, saying what is missing.
    let visible = b.js("const r = document.querySelector('#save-number').getBoundingClientRect(); \
         return r.bottom <= window.innerHeight && r.top >= 0");
    assert_eq!(visible, true, "Save is below the fold");
    b.click("#save-number");
    b.wait_text("#account-number-error", "Choose a number");
    b.wait_text("#number-agent-error", "Choose an agent");
    b.fill("#account-number", "1037");
    b.wait_text("#account-number-count", "1 of 1,050 numbers match");
    b.fill("#account-number", "(415) 555-1037");
    b.wait_text("#account-number-count", "1 of 1,050 numbers match");
    // The filter: every stand-in number answers a voice URL, so it is in use, not free.
    b.click("input[name=number-filter][value=free]");
    b.wait_text("#account-number-count", "0 of 1,050");
    b.click("input[name=number-filter][value=in-use]");
    b.wait_text("#account-number-count", "1 of 1,050");
    b.wait_text("#account-number-list", "in use: voice URL");
    pick(&b, target);
    let (_, agents) = server.api("GET", "/v1/agents", None);
    let sales = agents["agents"].as_array().unwrap().iter().find(|a| a["name"] == "sales").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    b.select("#number-agent", &sales);
    doc_shot(&b, "picker.png");
    b.click("#save-number");

    // Active, but not healthy: both reasons on the row, each with its fix.
    let status = format!("{} td.status", row(target));
    b.wait_text(&status, "Active");
    b.wait_text(&status, "— but");
    b.wait_text(&status, "Twilio sends calls to sip:127.0.0.1:5190, which Twilio cannot reach (a loopback address)");
    b.wait_text(&status, "sip.public_host");
    b.wait_text(&status, "does not answer");
    b.wait_text(&status, &format!("ws://127.0.0.1:{dead}/media"));
    let after = twilio.requests().iter().filter(|(m, p)| m == "GET" && p.contains("IncomingPhoneNumbers.json")).count();
    assert_eq!(after, fetched + 2, "the list was fetched once (two pages of 1,000) and adding read it once more");
    // The banner now says numbers not added are refused.
    b.wait_text("#fallback-banner", "refused 404");
    doc_shot(&b, "health.png");

    // The detail (click the number): the trunk and where it sends calls, with priority and weight.
    b.click(&format!("{} button.open-number", row(target)));
    b.wait_text("#number-routing-list", "sip:127.0.0.1:5190 (priority 10, weight 10)");
    b.wait_text("#number-routing-list", ".pstn.twilio.com");
    b.wait_text("#number-health", "cannot reach");
    doc_shot(&b, "number-detail.png");
    b.click("#change-agent-dialog button.cancel");

    // A deliberate change in Twilio's console: the number now goes to a TwiML Bin.
    let bin = "https://handler.twilio.com/twiml/EH1230000000000000000000000000000";
    twilio.update(&target_sid, |n| {
        n.trunk_sid = None;
        n.voice_url = Some(bin.into());
    });
    b.click("#reconcile");
    b.wait_text(&status, "Error");
    b.wait_text(&status, &format!("Twilio now sends this number to the voice URL {bin}, not to vocals"));
    assert!(!b.text(&status).contains("TK"), "no raw trunk SID on the row");
    // Repair names what it will replace and asks first; Cancel changes nothing.
    b.click(&format!("{} button.repair", row(target)));
    b.wait_text("#repair-text", bin);
    b.wait_text("#repair-text", "will be lost");
    doc_shot(&b, "repair.png");
    b.click("#repair-dialog button.cancel");
    assert_eq!(twilio.get(&target_sid).voice_url.as_deref(), Some(bin));
    assert_eq!(twilio.get(&target_sid).trunk_sid, None, "Cancel repaired it anyway");
    b.click(&format!("{} button.repair", row(target)));
    b.wait_text("#repair-text", "will be lost");
    b.click("#repair-confirm");
    b.wait(
        &format!("return !document.querySelector('{} button.repair')", row(target).replace('\'', "\\'")),
        "repaired",
    );
    assert!(twilio.get(&target_sid).trunk_sid.is_some(), "back on the vocals trunk");

    // Remove says what it restores, and can leave Twilio as it is.
    b.click(&format!("{} button.remove", row(target)));
    b.wait_text(
        "#remove-text",
        "restores the settings it had before vocals: the voice URL https://demo.twilio.com/welcome/voice/",
    );
    let before = twilio.get(&target_sid);
    b.click("#remove-leave");
    b.wait(&format!("return !document.querySelector('{}')", row(target).replace('\'', "\\'")), "the row gone");
    assert_eq!(twilio.get(&target_sid), before, "Twilio left as it was");

    // A number typed by hand in national form takes the country of the numbers added, and says its E.164.
    let other = "+14155552049";
    let _ = twilio.number(AC, other);
    b.click("#add-number");
    b.wait_text("#account-number-count", "of 1,051 numbers match");
    pick(&b, other);
    b.select("#number-agent", "__none__");
    b.click("#save-number");
    b.wait_text(&format!("{} td.status", row(other)), "Inactive");
    b.click("#add-number");
    b.wait("return !document.querySelector('#account-select-group').hidden", "the account step");
    b.select("#account-select", "__manual__");
    b.fill("#manual-number", "(415) 555-0199");
    b.select("#number-agent", "__none__");
    b.click("#save-number");
    b.wait_text("#notice", "is written +14155550199 in E.164");
    b.wait_text("#numbers-table", "+14155550199");
}

/// Issue 22: Dial on the Calls page places a call through the trunk. The trunk's termination is a UDP socket of
/// this test. Dial opens by keyboard with nothing chosen, Call is refused until an agent, a number and a caller
/// ID are given (each missing one said under its field), an invalid number's error sits under "Number to call"
/// in those words, and Escape closes the dialog and gives the focus back to Dial. Then the echo agent calls
/// (415) 555-0100 (read as +14155550100 with a North American caller ID) from +14155550123: the status line says
/// "Calling …", the call is listed as ringing, and the INVITE for that number reaches the socket. A server with
/// no trunk says outbound calls are not set up, and where that is explained.
#[test]
fn the_dashboard_dials_out_through_the_trunk_and_says_what_is_missing() {
    const CALLER_ID: &str = "+14155550123";
    const INACTIVE: &str = "+14155550124";
    const CALLEE: &str = "+14155550100";
    let trunk = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = trunk.local_addr().unwrap().port();
    let extra = format!(
        "[[trunks]]\naccount_sid = \"{AC}\"\nauth_token = \"ui-dial-auth-token-0123\"\n\
         termination_uri = \"sip:127.0.0.1:{port}\"\n"
    );
    let server = InProcess::start_with("ui-dial", &extra, &[]);
    for (number, agent) in [(CALLER_ID, serde_json::json!("echo")), (INACTIVE, serde_json::Value::Null)] {
        let body = serde_json::json!({"phone_number": number, "agent_id": agent});
        let (status, added) = server.api("POST", "/v1/numbers", Some(body));
        assert_eq!(status, 201, "{added}");
    }
    let b = Browser::start();
    b.resize(1280, 800);
    let open_calls = |server: &InProcess| {
        sign_in(&b, server);
        b.click("a[href=\"#/calls\"]");
        b.wait("return !document.querySelector('#calls-view').hidden", "the calls page");
    };
    open_calls(&server);

    // Dial by keyboard: the dialog opens on its first field with nothing chosen; every caller ID is offered.
    b.js("document.querySelector('#dial').focus()");
    b.keys(ENTER);
    b.wait("return document.querySelector('#dial-dialog').open", "the dial dialog open");
    b.wait("return document.activeElement.id === 'dial-agent'", "the focus on the agent");
    assert_eq!(b.js("return document.querySelector('#dial-agent').value"), "", "no agent chosen for the user");
    assert_eq!(b.js("return document.querySelector('#dial-from').value"), "", "no caller ID chosen for the user");
    b.wait_text("#dial-from", CALLER_ID);
    b.wait_text("#dial-from", &format!("{INACTIVE} (inactive)"));
    b.wait_text("#dial-agent", "echo (built in, echo)");
    let unlabelled = b.js("return [...document.querySelectorAll('#dial-dialog input, #dial-dialog select')]
           .filter(e => !(e.labels && e.labels.length)).map(e => e.id)");
    assert_eq!(unlabelled, serde_json::json!([]), "fields without a label");

    // Call with nothing chosen: refused, each missing thing said under its field.
    b.click("#dial-call");
    b.wait_text("#dial-agent-error", "Choose the agent");
    b.wait_text("#dial-to-error", "Enter the number to call");
    b.wait_text("#dial-from-error", "Choose the caller ID");
    assert_eq!(b.js("return document.activeElement.id"), "dial-agent");
    assert_eq!(b.js("return document.querySelector('#dial-dialog').open"), true);

    // An invalid number: the API's error under the field, named as it is labelled.
    b.select("#dial-agent", "echo");
    b.fill("#dial-to", "555 01");
    b.select("#dial-from", CALLER_ID);
    b.click("#dial-call");
    b.wait_text("#dial-to-error", "Number to call: ");
    assert!(b.text("#dial-to-error").contains("E.164"), "{}", b.text("#dial-to-error"));
    assert!(!b.text("#dial-to-error").contains("to:"), "the API's field name shown: {}", b.text("#dial-to-error"));
    assert_eq!(b.js("return document.querySelector('#dial-to').getAttribute('aria-invalid')"), "true");
    assert_eq!(b.js("return document.querySelector('#dial-agent-error').textContent"), "", "old errors kept");
    assert_eq!(b.js("return document.querySelector('#dial-dialog').open"), true);
    trunk.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    let mut buf = [0u8; 4096];
    assert!(trunk.recv(&mut buf).is_err(), "an invalid number was dialled");

    // Escape closes it and the focus goes back to Dial; opened again, it starts afresh.
    b.keys(ESCAPE);
    b.wait("return !document.querySelector('#dial-dialog').open", "the dialog closed");
    assert_eq!(b.js("return document.activeElement.id"), "dial");
    b.click("#dial");
    b.wait("return document.querySelector('#dial-dialog').open", "the dial dialog open");
    assert_eq!(b.js("return document.querySelector('#dial-to').value"), "");
    assert_eq!(b.js("return document.querySelector('#dial-to-error').textContent"), "");

    // The call: national form with a North American caller ID, placed, said, listed; the trunk gets the INVITE.
    b.select("#dial-agent", "echo");
    b.fill("#dial-to", "(415) 555-0100");
    b.select("#dial-from", CALLER_ID);
    doc_shot(&b, "dial.png");
    b.click("#dial-call");
    b.wait_text("#notice", &format!("Calling {CALLEE} from {CALLER_ID} (queued)"));
    b.wait("return !document.querySelector('#dial-dialog').open", "the dialog closed");
    assert_eq!(b.js("return document.activeElement.id"), "dial", "the focus back on Dial");
    trunk.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let (n, from) = trunk.recv_from(&mut buf).expect("the trunk got no INVITE within 10 s");
    let invite = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(invite.starts_with(&format!("INVITE sip:{CALLEE}@127.0.0.1:{port}")), "{invite}");
    assert!(header(&invite, "From").contains(CALLER_ID), "{invite}");
    b.wait_text("#active-calls", CALLEE);
    b.wait_text("#active-calls", "Ringing");

    // The callee is busy: the call ends, and the page moves it to the recent ones.
    let mut busy = String::from("SIP/2.0 486 Busy Here\r\n");
    for name in ["Via", "From", "Call-ID", "CSeq"] {
        for line in invite.lines().filter(|l| l.starts_with(&format!("{name}: "))) {
            busy.push_str(line);
            busy.push_str("\r\n");
        }
    }
    busy.push_str(&format!("To: {};tag=ui-busy\r\nContent-Length: 0\r\n\r\n", header(&invite, "To")));
    trunk.send_to(busy.as_bytes(), from).unwrap();
    b.wait("return document.querySelectorAll('#active-calls tr[data-call-id]').length == 0", "the call gone");
    b.wait_text("#recent-calls", CALLEE);

    // A server with no trunk: the dialog says outbound calls are not set up, and where that is explained.
    let bare = InProcess::start("ui-dial-bare", &[]);
    let (status, added) =
        bare.api("POST", "/v1/numbers", Some(serde_json::json!({"phone_number": CALLER_ID, "agent_id": "echo"})));
    assert_eq!(status, 201, "{added}");
    open_calls(&bare);
    b.click("#dial");
    b.select("#dial-agent", "echo");
    b.fill("#dial-to", CALLEE);
    b.select("#dial-from", CALLER_ID);
    b.click("#dial-call");
    b.wait_text("#dial-form-error", "Outbound calls are not set up");
    b.wait("return !document.querySelector('#dial-setup').hidden", "the set-up note");
    b.wait_text("#dial-setup", "docs/admin.md#placing-a-call");
    b.wait_text("#dial-from-error", &format!("Caller ID: {CALLER_ID} belongs to no account with a trunk"));
    assert_eq!(b.js("return document.querySelector('#dial-dialog').open"), true);
}

/// The `seq`th 20 ms frame of a 440 Hz tone, μ-law.
fn tone_frame(seq: u16) -> Vec<u8> {
    (0..160)
        .map(|i| {
            let t = f64::from(seq) * 0.02 + f64::from(i) / 8000.0;
            vocals::media::g711::ulaw_encode((6000.0 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()) as i16)
        })
        .collect()
}

#[test]
fn a_recorded_call_plays_in_the_browser_and_downloads_through_the_api() {
    let server = InProcess::start("ui-recording", &[("VOCALS_RECORDING_RECORD", "dual")]);
    // A recorded echo call of a second of tone.
    let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (caller, to) = Caller::invite(&server, &rtp, "ui-rec");
    for seq in 0..50u16 {
        rtp.send_to(&common::rtp_packet(seq, 7, &tone_frame(seq)), to).unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    caller.request("BYE", 2);
    assert!(caller.recv().starts_with("SIP/2.0 200"));
    let b = Browser::start();
    b.resize(1280, 800);
    sign_in(&b, &server);
    b.click("a[href=\"#/calls\"]");
    b.wait("return document.querySelector('#recent-calls button.play-recording') !== null", "a Play button");
    // Play: the recording comes through the API (the token in a header) into an <audio> element that plays it.
    b.click("#recent-calls button.play-recording");
    b.wait(
        "const a = document.querySelector('#recent-calls audio.recording-player'); \
         return a !== null && a.readyState >= 1 && a.duration > 0.9 && a.duration < 2",
        "the recording loaded in the player, a second or so long",
    );
    b.screenshot(&shots().join("recording.png"));
    // The player survives the page's refresh of the table.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(b.js("return document.querySelectorAll('#recent-calls audio.recording-player').length"), 1);
    assert!(b.text("#recent-calls").contains("Download"));
}

#[test]
fn a_calls_page_shows_its_sip_ladder_quality_charts_and_events_from_a_real_call() {
    let server = InProcess::start("ui-call-page", &[]);
    // A real call: 4 s of tone to the echo agent, a digit by SIP INFO, then the caller hangs up.
    let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (caller, to) = Caller::invite(&server, &rtp, "ui-call-page");
    for seq in 0..200u16 {
        rtp.send_to(&common::rtp_packet(seq, 7, &tone_frame(seq)), to).unwrap();
        if seq == 60 {
            caller.request_with_body("INFO", 2, Some("application/dtmf-relay"), "Signal=5\r\nDuration=160\r\n");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    caller.request("BYE", 3);
    let mut answer = caller.recv();
    while !header(&answer, "CSeq").ends_with("BYE") {
        answer = caller.recv();
    }
    assert!(answer.starts_with("SIP/2.0 200"), "{answer}");
    let record = server.call_stats("ui-call-page");
    let id = record["id"].as_str().unwrap().to_string();
    // The trace is stored a few seconds after the call.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let messages = loop {
        let (status, trace) = server.api("GET", &format!("/v1/calls/{id}/sip"), None);
        if status == 200 {
            break trace["messages"].as_array().unwrap().len();
        }
        assert!(std::time::Instant::now() < deadline, "no trace: {trace}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let b = Browser::start();
    b.resize(1280, 1700);
    sign_in(&b, &server);
    // Reached from the Calls list.
    b.click("a[href=\"#/calls\"]");
    let link = format!("#recent-calls tr[data-call-id=\"{id}\"] a.call-link");
    b.wait(&format!("return document.querySelector('{link}') !== null"), "the call's link in Recent calls");
    b.click(&link);
    b.wait("return !document.querySelector('#call-view').hidden", "the call page");
    b.wait_text("#call-title", "Call from +12125550100");
    let facts = b.text("#call-facts");
    assert!(facts.contains("the number’s own agent (no routing rule matched)"), "the route: {facts}");
    // The ladder: an arrow a message, the INVITE first (in from the peer), the 200 to the BYE last (out).
    b.wait(&format!("return document.querySelectorAll('#call-ladder g.msg').length === {messages}"), "every message");
    assert_eq!(b.js("return document.querySelector('#call-ladder g.msg').classList.contains('msg-in')"), true);
    assert_eq!(b.js("return document.querySelector('#call-ladder g.msg .msg-label').textContent"), "INVITE");
    assert_eq!(
        b.js(
            "const m = document.querySelectorAll('#call-ladder g.msg .msg-label'); return m[m.length - 1].textContent"
        ),
        "200 OK (BYE)"
    );
    b.wait("return document.querySelectorAll('#call-charts figure.chart').length === 6", "the charts");
    doc_shot(&b, "call-page.png");
    // Choosing an arrow (by keyboard too) shows the whole message.
    b.js("document.querySelectorAll('#call-ladder g.msg')[0].focus()");
    b.keys(ENTER);
    b.wait("return !document.querySelector('#call-message').hidden", "the message");
    let shown = b.text("#call-message");
    assert!(shown.contains("Call-ID: ui-call-page") && shown.contains("m=audio"), "{shown}");
    // The charts: six, drawn from the samples (RTP in reaches its 50 a second).
    assert_eq!(b.js("return document.querySelectorAll('#call-charts figure.chart').length"), 6);
    let label = b.js("return document.querySelector('#call-charts svg').getAttribute('aria-label')");
    let label = label.as_str().unwrap();
    let peak: f64 = label.split("in max ").nth(1).and_then(|r| r.split(',').next()).unwrap().parse().unwrap();
    assert!((45.0..=60.0).contains(&peak), "{label}");
    assert!(
        b.js("return document.querySelector('#call-charts path.series-0').getAttribute('d').length").as_u64().unwrap()
            > 20
    );
    // The events: the digit and the end, and the end reason.
    let events = b.text("#call-events");
    assert!(events.contains("DTMF: 5 (SIP INFO)") && events.contains("End reason: the caller hung up"), "{events}");
    // A call that does not exist says so.
    b.goto(&format!("http://127.0.0.1:{}/ui/#/calls/vc_missing", server.admin));
    b.wait_text("#notice", "Could not load the call");
}

/// Issue 26 in the browser: a number's routing rules edited on the dashboard (a mistake shown next to its
/// field, a fix saved), the week strip drawn from the API's schedule, the status saying who answers now, a
/// rule moved up; what the API then holds is what the editor showed.
#[test]
fn the_dashboard_edits_routing_rules_and_draws_the_week_ahead() {
    const RULED: &str = "+14155550166";
    let server = InProcess::start("ui-rules", &[]);
    let (status, agent) =
        server.api("POST", "/v1/agents", Some(serde_json::json!({"name": "after-hours", "kind": "echo"})));
    assert_eq!(status, 201, "{agent}");
    let after_hours = agent["id"].as_str().unwrap().to_string();
    let (status, n) =
        server.api("POST", "/v1/numbers", Some(serde_json::json!({"phone_number": RULED, "agent_id": "echo"})));
    assert_eq!(status, 201, "{n}");
    let b = Browser::start();
    b.resize(1280, 1500);
    sign_in(&b, &server);
    let rules_button = format!("#numbers-table tr[data-number=\"{RULED}\"] button.rules");
    b.click(&rules_button);
    b.wait("return document.querySelector('#rules-dialog').open", "the rules dialog");
    b.wait_text("#rules-week", "No rules");

    // A first rule: weekday nights by default; a zone that does not exist is refused next to its field.
    b.click("#rules-add");
    b.wait("return document.querySelector('#rule-0-zone') !== null", "the new rule");
    assert_eq!(b.js("return document.querySelector('#rule-0-from').value"), "18:00");
    b.fill("#rule-0-zone", "Mars/Olympus");
    b.select("#rule-0-agent", &after_hours);
    b.click("#rules-save");
    b.wait("return document.querySelector('#rule-0-zone-error').textContent.length > 0", "the zone's error");
    assert!(b.text("#rule-0-zone-error").contains("Mars/Olympus is not an IANA time zone"));
    assert_eq!(b.js("return document.querySelector('#rule-0-zone').getAttribute('aria-invalid')"), "true");
    b.fill("#rule-0-zone", "America/New_York");
    b.click("#rules-save");
    b.wait_text("#rules-status", "Saved 1 rule");
    // The strip: a band a stretch (the week's nights and days), the after-hours agent in the legend.
    let bands = b.wait("return document.querySelectorAll('#rules-week svg rect.band').length", "the week's bands");
    assert!(bands.as_u64().unwrap() >= 10, "{bands}");
    assert_eq!(
        b.js("return document.querySelectorAll('#rules-week svg rect.band[data-agent=\"after-hours\"]').length > 4"),
        true
    );
    assert!(b.text("#rules-week-legend").contains("after-hours"));

    // A second rule: withheld caller IDs not answered; then moved first.
    b.click("#rules-add");
    b.click("#rule-1-timed");
    b.click("#rule-1-callers");
    b.fill("#rule-1-caller", "anonymous");
    b.select("#rule-1-agent", "");
    b.js("document.querySelector('#rules-list li[data-index=\"1\"] button.rule-up').click()");
    b.wait("return document.querySelector('#rule-0-caller').value === 'anonymous'", "the moved rule");
    b.click("#rules-save");
    b.wait_text("#rules-status", "Saved 2 rules");
    b.js("document.querySelector('#rules-dialog').scrollTop = 0");
    doc_shot(&b, "routing-rules.png");
    let (_, n) = server.api("GET", &format!("/v1/numbers/{RULED}"), None);
    assert_eq!(n["rules"][0], serde_json::json!({"caller": "anonymous", "agent_id": null}), "{n}");
    assert_eq!(n["rules"][1]["when"]["zone"], "America/New_York", "{n}");
    assert_eq!(n["rules"][1]["when"]["days"], serde_json::json!(["mon", "tue", "wed", "thu", "fri"]), "{n}");
    assert_eq!(n["rules"][1]["agent_id"], after_hours.as_str(), "{n}");

    // The numbers page says who answers now, and the next change.
    b.keys(ESCAPE);
    b.wait("return !document.querySelector('#rules-dialog').open", "the dialog closed");
    let status = b.text(&format!("#numbers-table tr[data-number=\"{RULED}\"] td.status"));
    assert!(status.contains("agent now") && status.contains(" from "), "{status}");
    assert!(b.text(&rules_button).contains("Rules (2)"));
    b.screenshot(&shots().join("rules-numbers.png"));
}
