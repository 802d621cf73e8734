//! The trunk's termination side of linked accounts, against the stand-in: its domain, and vocals' credential
//! list and credential or (`outbound.termination_auth = "ip"`) its IP access control list of the nodes'
//! addresses, made once per account, repaired, and removed at unlink; and a linked account placing calls with its
//! own auth token (and vocals' credential, or none).

use axum::http::Method;
use serde_json::Value;

use super::common::inprocess::InProcess;
use super::standin::{self, Twilio};
use super::{AC, NODE_A, NODE_B, TOKEN, add, assert_never_released, link, setup, setup_with};

/// An HTTP request with Basic `user:password` and a form body, to vocals or the stand-in; the status and JSON.
fn basic(port: u16, method: &str, path: &str, user: &str, password: &str, form: &[(&str, &str)]) -> (u16, Value) {
    use base64::Engine;
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let body = serde_urlencoded::to_string(form).unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    write!(
        conn,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nAuthorization: Basic {auth}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    conn.read_to_string(&mut response).unwrap();
    let status = response.get(9..12).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("{response}"));
    let json = response.split_once("\r\n\r\n").and_then(|(_, b)| serde_json::from_str(b).ok());
    (status, json.unwrap_or(Value::Null))
}

fn port_of(base: &str) -> u16 {
    base.rsplit(':').next().unwrap().parse().unwrap()
}

/// How many requests vocals sent to the stand-in with this method and a path ending so (query left out).
fn sent(twilio: &Twilio, method: &str, ending: &str) -> usize {
    twilio
        .requests()
        .iter()
        .filter(|(m, p)| m == method && p.split('?').next().unwrap_or_default().ends_with(ending))
        .count()
}

#[test]
fn adding_numbers_sets_up_the_trunks_termination_once_and_unlinking_removes_it() {
    let (server, twilio) = setup("twilio-termination");
    link(&server);
    twilio.number(AC, "+14155550180");
    twilio.number(AC, "+14155550181");
    let (status, n) = add(&server, "+14155550180", None);
    assert_eq!((status, n["status"].as_str()), (201, Some("inactive")), "{n}");
    let (trunk, list, credential) = {
        let s = twilio.state.lock().unwrap();
        assert_eq!(s.trunks.len(), 1);
        let trunk = s.trunks.values().next().unwrap().clone();
        assert_eq!(s.credential_lists.len(), 1, "one credential list: {:?}", s.credential_lists);
        let list = s.credential_lists.values().next().unwrap().clone();
        assert_eq!((list.account_sid.as_str(), list.friendly_name.as_str()), (AC, "vocals"));
        assert_eq!(s.sip_credentials.len(), 1, "{:?}", s.sip_credentials);
        let c = s.sip_credentials.values().next().unwrap().clone();
        assert_eq!(c.credential_list_sid, list.sid);
        assert!(c.username.starts_with("vocals-") && c.username.len() <= 32, "{c:?}");
        assert!(standin::credentials::meets_password_rules(&c.password) && c.password.len() >= 24, "{c:?}");
        let associated: Vec<_> = s.trunk_credential_lists.iter().cloned().collect();
        assert_eq!(associated, [(trunk.sid.clone(), list.sid.clone())], "the list is the trunk's");
        (trunk, list, c)
    };
    assert!(trunk.domain_name.starts_with("vocals-") && trunk.domain_name.ends_with(".pstn.twilio.com"));

    // The second number reuses all of it: nothing more is created, the domain is kept.
    let (status, n) = add(&server, "+14155550181", None);
    assert_eq!((status, n["status"].as_str()), (201, Some("inactive")), "{n}");
    {
        let s = twilio.state.lock().unwrap();
        assert_eq!(s.trunks.values().collect::<Vec<_>>(), [&trunk], "the same trunk and domain");
        assert_eq!(s.credential_lists.values().collect::<Vec<_>>(), [&list]);
        assert_eq!(s.sip_credentials.values().collect::<Vec<_>>(), [&credential]);
        assert_eq!(s.trunk_credential_lists.len(), 1);
    }
    assert_eq!(sent(&twilio, "POST", "/SIP/CredentialLists.json"), 1, "one list created");
    assert_eq!(sent(&twilio, "POST", "/Credentials.json"), 1, "one credential created");
    assert_eq!(sent(&twilio, "POST", &format!("/v1/Trunks/{}/CredentialLists", trunk.sid)), 1, "associated once");
    assert_eq!(sent(&twilio, "POST", &format!("/v1/Trunks/{}", trunk.sid)), 0, "the trunk's domain was kept");
    let (_, accounts) = server.api("GET", "/v1/twilio/accounts", None);
    assert!(!accounts.to_string().contains(&credential.password), "the password never leaves: {accounts}");

    // Unlinking is refused while numbers use the account, and then removes nothing.
    let (status, body) = server.api("DELETE", &format!("/v1/twilio/accounts/{AC}"), None);
    assert_eq!(status, 409, "{body}");
    assert_eq!(twilio.state.lock().unwrap().credential_lists.len(), 1);
    for phone in ["+14155550180", "+14155550181"] {
        let (status, body) = server.api("DELETE", &format!("/v1/numbers/{phone}"), None);
        assert_eq!(status, 204, "{body}");
    }
    // Twilio busy once while removing: retried, as every request is.
    twilio.fail(Method::DELETE, &format!("/SIP/CredentialLists/{}.json", list.sid), 503, 20503, 1);
    let (status, body) = server.api("DELETE", &format!("/v1/twilio/accounts/{AC}"), None);
    assert_eq!(status, 204, "{body}");
    {
        let s = twilio.state.lock().unwrap();
        assert!(s.credential_lists.is_empty(), "{:?}", s.credential_lists);
        assert!(s.sip_credentials.is_empty(), "{:?}", s.sip_credentials);
        assert!(s.trunk_credential_lists.is_empty(), "{:?}", s.trunk_credential_lists);
        assert_eq!(s.trunks.len(), 1, "the trunk itself stays in the account");
    }
    assert_eq!(sent(&twilio, "DELETE", &format!("/v1/Trunks/{}/CredentialLists/{}", trunk.sid, list.sid)), 1);
    let (_, accounts) = server.api("GET", "/v1/twilio/accounts", None);
    assert_eq!(accounts["accounts"].as_array().map(Vec::len), Some(0), "{accounts}");
    assert_never_released(&twilio);
}

#[test]
fn repair_gives_a_trunk_without_a_domain_one_and_makes_a_lost_credential_list_again() {
    let (server, twilio) = setup("twilio-termination-repair");
    link(&server);
    twilio.number(AC, "+14155550182");
    assert_eq!(add(&server, "+14155550182", None).0, 201);
    let (old_domain, old_list) = {
        let mut s = twilio.state.lock().unwrap();
        let trunk = s.trunks.values_mut().next().unwrap();
        let domain = std::mem::take(&mut trunk.domain_name);
        let list = s.credential_lists.keys().next().unwrap().clone();
        // Deleted in the console: with its credential, off the trunk.
        s.credential_lists.clear();
        s.sip_credentials.clear();
        s.trunk_credential_lists.clear();
        (domain, list)
    };
    let (status, n) = server.api("POST", "/v1/numbers/+14155550182/twilio/repair", None);
    assert_eq!((status, n["status"].as_str()), (200, Some("inactive")), "{n}");
    let s = twilio.state.lock().unwrap();
    let trunk = s.trunks.values().next().unwrap();
    assert!(trunk.domain_name.starts_with("vocals-") && trunk.domain_name.ends_with(".pstn.twilio.com"), "{trunk:?}");
    assert_ne!(trunk.domain_name, old_domain, "a fresh domain");
    assert_eq!(s.credential_lists.len(), 1);
    let list = s.credential_lists.keys().next().unwrap();
    assert_ne!(*list, old_list);
    assert_eq!(s.sip_credentials.len(), 1);
    assert_eq!(s.trunk_credential_lists.iter().cloned().collect::<Vec<_>>(), [(trunk.sid.clone(), list.clone())]);
    drop(s);
    let (_, accounts) = server.api("GET", "/v1/twilio/accounts", None);
    let domain = twilio.state.lock().unwrap().trunks.values().next().unwrap().domain_name.clone();
    assert_eq!(accounts["accounts"][0]["trunk_domain"].as_str(), Some(domain.as_str()), "{accounts}");
}

#[test]
fn the_stand_in_refuses_a_credential_password_twilio_would_refuse() {
    let twilio = Twilio::start();
    twilio.account(AC, TOKEN);
    let port = port_of(&twilio.base);
    let (status, list) = basic(
        port,
        "POST",
        &format!("/2010-04-01/Accounts/{AC}/SIP/CredentialLists.json"),
        AC,
        TOKEN,
        &[("FriendlyName", "vocals")],
    );
    assert_eq!(status, 201, "{list}");
    assert!(list["sid"].as_str().unwrap().starts_with("CL"), "{list}");
    let path = list["subresource_uris"]["credentials"].as_str().unwrap().to_string();
    for weak in ["Short1a", "alllowercase123", "ALLUPPERCASE123", "NoDigitsAtAllHere"] {
        let (status, body) = basic(port, "POST", &path, AC, TOKEN, &[("Username", "u1"), ("Password", weak)]);
        assert_eq!((status, body["code"].as_u64()), (400, Some(20001)), "{weak}: {body}");
        assert!(body["message"].as_str().unwrap().contains("at least 12 characters"), "{body}");
    }
    let (status, c) = basic(port, "POST", &path, AC, TOKEN, &[("Username", "u1"), ("Password", "IWasAtSignal2018")]);
    assert_eq!(status, 201, "{c}");
    assert!(c["sid"].as_str().unwrap().starts_with("CR") && c.get("password").is_none(), "{c}");
    let (status, page) = basic(port, "GET", &path, AC, TOKEN, &[]);
    assert_eq!((status, page["credentials"][0]["username"].as_str()), (200, Some("u1")), "{page}");
}

#[test]
fn a_linked_account_places_calls_with_its_own_auth_token_and_vocals_credential() {
    use std::net::UdpSocket;
    // Every outbound INVITE goes through this socket (the outbound proxy), where the test plays Twilio's
    // termination side: the Request-URI names the trunk's domain, and the digest is vocals' credential's.
    let sip = UdpSocket::bind("127.0.0.1:0").unwrap();
    sip.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    let proxy = sip.local_addr().unwrap().to_string();
    let (server, twilio) = setup_with("twilio-linked-calls", &[("VOCALS_OUTBOUND_PROXY", &proxy)]);
    link(&server);
    twilio.number(AC, "+14155550190");
    let calls = format!("/2010-04-01/Accounts/{AC}/Calls.json");
    let form = [("To", "+14155550100"), ("From", "+14155550190"), ("Twiml", "<Response><Hangup/></Response>")];

    // Linked, with no number added yet: the right token, but no trunk to place calls on.
    let (status, body) = basic(server.admin, "POST", &calls, AC, TOKEN, &form);
    assert_eq!(status, 403, "{body}");
    assert!(body["message"].as_str().unwrap().contains("no trunk"), "{body}");

    assert_eq!(add(&server, "+14155550190", None).0, 201);
    let (domain, credential) = {
        let s = twilio.state.lock().unwrap();
        (s.trunks.values().next().unwrap().domain_name.clone(), s.sip_credentials.values().next().unwrap().clone())
    };
    let (status, body) = basic(server.admin, "POST", &calls, AC, "wrong-token", &form);
    assert_eq!((status, body["code"].as_u64()), (401, Some(20003)), "{body}");
    let other = "AC22222222222222222222222222222222";
    let (status, _) =
        basic(server.admin, "POST", &format!("/2010-04-01/Accounts/{other}/Calls.json"), other, TOKEN, &form);
    assert_eq!(status, 401, "an account that is not linked");
    let (status, call) = basic(server.admin, "POST", &calls, AC, TOKEN, &form);
    assert_eq!((status, call["status"].as_str()), (201, Some("queued")), "{call}");
    let sid = call["sid"].as_str().unwrap().to_string();

    let mut buf = [0u8; 8192];
    let (n, from) = sip.recv_from(&mut buf).expect("the INVITE");
    let invite = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(invite.starts_with(&format!("INVITE sip:+14155550100@{domain} SIP/2.0")), "{invite}");
    let header = |msg: &str, name: &str| {
        msg.lines()
            .find(|l| l.to_ascii_lowercase().starts_with(&format!("{}:", name.to_ascii_lowercase())))
            .map(str::to_string)
    };
    let reply = |msg: &str, status: &str, extra: &str| {
        let mut out = format!("SIP/2.0 {status}\r\n");
        for name in ["Via", "From", "Call-ID", "CSeq"] {
            for l in
                msg.lines().filter(|l| l.to_ascii_lowercase().starts_with(&format!("{}:", name.to_ascii_lowercase())))
            {
                out.push_str(&format!("{l}\r\n"));
            }
        }
        out.push_str(&format!("{};tag=twilio1\r\n{extra}Content-Length: 0\r\n\r\n", header(msg, "To").unwrap()));
        out
    };
    let challenge = "Proxy-Authenticate: Digest realm=\"sip.twilio.com\", nonce=\"4e6f6e63650a\", qop=\"auth\", \
                     algorithm=MD5\r\n";
    sip.send_to(reply(&invite, "407 Proxy Authentication Required", challenge).as_bytes(), from).unwrap();
    let again = loop {
        let (n, _) = sip.recv_from(&mut buf).expect("the INVITE again, with credentials");
        let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
        if msg.starts_with("INVITE ") && header(&msg, "Proxy-Authorization").is_some() {
            break msg;
        }
    };
    let auth = header(&again, "Proxy-Authorization").unwrap();
    digest_is_right(&auth, &credential.username, &credential.password);
    sip.send_to(reply(&again, "486 Busy Here", "").as_bytes(), from).unwrap();

    // The call's status, read with the same token.
    let path = format!("/2010-04-01/Accounts/{AC}/Calls/{sid}.json");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (status, view) = basic(server.admin, "GET", &path, AC, TOKEN, &[]);
        assert_eq!(status, 200, "{view}");
        if view["status"] == "busy" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never busy: {view}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(basic(server.admin, "GET", &path, AC, "wrong-token", &[]).0, 401);
}

/// A `Proxy-Authorization` answers the challenge with `username` and `password`: RFC 2617 §3.2.2 computed here,
/// independently of vocals' own digest code.
fn digest_is_right(line: &str, username: &str, password: &str) {
    use md5::{Digest, Md5};
    let param = |name: &str| {
        let rest = line.split(&format!(" {name}=")).nth(1).or_else(|| line.split(&format!(",{name}=")).nth(1));
        let rest = rest.unwrap_or_else(|| panic!("no {name} in {line}"));
        let value = rest
            .strip_prefix('"')
            .map_or_else(|| rest.split([',', ' ']).next().unwrap(), |q| q.split('"').next().unwrap());
        value.to_string()
    };
    assert_eq!(param("username"), username, "{line}");
    let hex = |s: String| Md5::digest(s.as_bytes()).iter().map(|b| format!("{b:02x}")).collect::<String>();
    let ha1 = hex(format!("{username}:{}:{password}", param("realm")));
    let ha2 = hex(format!("INVITE:{}", param("uri")));
    let (nonce, nc, cnonce, qop) = (param("nonce"), param("nc"), param("cnonce"), param("qop"));
    assert_eq!(qop, "auth", "{line}");
    assert_eq!(param("response"), hex(format!("{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")), "{line}");
}

/// The IP addresses the nodes place calls from, as `outbound.termination_ips` gives them.
const NODE_IPS: &str = "203.0.113.10, 198.51.100.0/30";

/// `termination_auth = "ip"` with [`NODE_IPS`], and `extra`.
fn by_address(name: &str, extra: &[(&str, &str)]) -> (InProcess, Twilio) {
    let mut env = vec![("VOCALS_OUTBOUND_TERMINATION_AUTH", "ip"), ("VOCALS_OUTBOUND_TERMINATION_IPS", NODE_IPS)];
    env.extend_from_slice(extra);
    setup_with(name, &env)
}

/// The stand-in's IP addresses in `acl`, as (address, prefix), sorted.
fn addresses(s: &standin::TwilioState, acl: &str) -> Vec<(String, u8)> {
    let mut all: Vec<(String, u8)> = s
        .ip_addresses
        .values()
        .filter(|a| a.ip_access_control_list_sid == acl)
        .map(|a| (a.ip_address.clone(), a.cidr_prefix_length))
        .collect();
    all.sort();
    all
}

fn configured() -> Vec<(String, u8)> {
    vec![("198.51.100.0".to_string(), 30), ("203.0.113.10".to_string(), 32)]
}

#[test]
fn with_termination_auth_ip_adding_numbers_sets_up_one_ip_acl_of_the_nodes_and_unlinking_removes_it() {
    let (server, twilio) = by_address("twilio-termination-ip", &[]);
    link(&server);
    twilio.number(AC, "+14155550183");
    twilio.number(AC, "+14155550184");
    let (status, n) = add(&server, "+14155550183", None);
    assert_eq!((status, n["status"].as_str()), (201, Some("inactive")), "{n}");
    let (trunk, acl, entries) = {
        let s = twilio.state.lock().unwrap();
        assert_eq!(s.trunks.len(), 1);
        let trunk = s.trunks.values().next().unwrap().clone();
        assert!(trunk.domain_name.starts_with("vocals-") && trunk.domain_name.ends_with(".pstn.twilio.com"));
        assert_eq!(s.ip_acls.len(), 1, "one IP access control list: {:?}", s.ip_acls);
        let acl = s.ip_acls.values().next().unwrap().clone();
        assert_eq!((acl.account_sid.as_str(), acl.friendly_name.as_str()), (AC, "vocals"));
        assert_eq!(addresses(&s, &acl.sid), configured(), "exactly the configured addresses");
        let associated: Vec<_> = s.trunk_ip_acls.iter().cloned().collect();
        assert_eq!(associated, [(trunk.sid.clone(), acl.sid.clone())], "the list is the trunk's");
        assert!(s.credential_lists.is_empty(), "no credential list: {:?}", s.credential_lists);
        assert!(s.sip_credentials.is_empty() && s.trunk_credential_lists.is_empty());
        (trunk, acl, s.ip_addresses.clone())
    };

    // The second number reuses all of it: nothing more is created.
    let (status, n) = add(&server, "+14155550184", None);
    assert_eq!((status, n["status"].as_str()), (201, Some("inactive")), "{n}");
    {
        let s = twilio.state.lock().unwrap();
        assert_eq!(s.trunks.values().collect::<Vec<_>>(), [&trunk], "the same trunk and domain");
        assert_eq!(s.ip_acls.values().collect::<Vec<_>>(), [&acl]);
        assert_eq!(s.ip_addresses, entries, "the same addresses, kept");
        assert_eq!(s.trunk_ip_acls.len(), 1);
        assert!(s.credential_lists.is_empty());
    }
    assert_eq!(sent(&twilio, "POST", "/SIP/IpAccessControlLists.json"), 1, "one list created");
    assert_eq!(sent(&twilio, "POST", "/IpAddresses.json"), 2, "each address added once");
    assert_eq!(sent(&twilio, "POST", &format!("/v1/Trunks/{}/IpAccessControlLists", trunk.sid)), 1, "associated once");
    assert_eq!(sent(&twilio, "POST", "/SIP/CredentialLists.json"), 0, "no credential list");

    // Unlinking is refused while numbers use the account, and then removes nothing.
    let (status, body) = server.api("DELETE", &format!("/v1/twilio/accounts/{AC}"), None);
    assert_eq!(status, 409, "{body}");
    assert_eq!(twilio.state.lock().unwrap().ip_acls.len(), 1);
    for phone in ["+14155550183", "+14155550184"] {
        let (status, body) = server.api("DELETE", &format!("/v1/numbers/{phone}"), None);
        assert_eq!(status, 204, "{body}");
    }
    // Twilio busy once while removing: retried, as every request is.
    twilio.fail(Method::DELETE, &format!("/SIP/IpAccessControlLists/{}.json", acl.sid), 503, 20503, 1);
    let (status, body) = server.api("DELETE", &format!("/v1/twilio/accounts/{AC}"), None);
    assert_eq!(status, 204, "{body}");
    {
        let s = twilio.state.lock().unwrap();
        assert!(s.ip_acls.is_empty(), "{:?}", s.ip_acls);
        assert!(s.ip_addresses.is_empty(), "{:?}", s.ip_addresses);
        assert!(s.trunk_ip_acls.is_empty(), "{:?}", s.trunk_ip_acls);
        assert_eq!(s.trunks.len(), 1, "the trunk itself stays in the account");
    }
    assert_eq!(sent(&twilio, "DELETE", &format!("/v1/Trunks/{}/IpAccessControlLists/{}", trunk.sid, acl.sid)), 1);
    assert_eq!(sent(&twilio, "DELETE", &format!("/SIP/IpAccessControlLists/{}.json", acl.sid)), 2, "once busy");
    let (_, accounts) = server.api("GET", "/v1/twilio/accounts", None);
    assert_eq!(accounts["accounts"].as_array().map(Vec::len), Some(0), "{accounts}");
    assert_never_released(&twilio);
}

#[test]
fn repair_puts_the_ip_acl_back_to_the_configured_addresses_and_makes_a_lost_one_again() {
    let (server, twilio) = by_address("twilio-termination-ip-repair", &[]);
    link(&server);
    twilio.number(AC, "+14155550185");
    assert_eq!(add(&server, "+14155550185", None).0, 201);
    let repair = || {
        let (status, n) = server.api("POST", "/v1/numbers/+14155550185/twilio/repair", None);
        assert_eq!((status, n["status"].as_str()), (200, Some("inactive")), "{n}");
    };
    // In the console: an address of the list deleted, another added, and the list taken off the trunk.
    let (acl, kept) = {
        let mut s = twilio.state.lock().unwrap();
        let acl = s.ip_acls.keys().next().unwrap().clone();
        let gone = s.ip_addresses.iter().find(|(_, a)| a.ip_address == "203.0.113.10").map(|(k, _)| k.clone());
        s.ip_addresses.remove(&gone.unwrap());
        let kept = s.ip_addresses.clone();
        let stray = standin::IpAddress {
            ip_access_control_list_sid: acl.clone(),
            sid: "IPffffffffffffffffffffffffffffffff".into(),
            friendly_name: "by hand".into(),
            ip_address: "192.0.2.99".into(),
            cidr_prefix_length: 32,
        };
        s.ip_addresses.insert(stray.sid.clone(), stray);
        s.trunk_ip_acls.clear();
        (acl, kept)
    };
    repair();
    {
        let s = twilio.state.lock().unwrap();
        assert_eq!(s.ip_acls.keys().collect::<Vec<_>>(), [&acl], "the same list");
        assert_eq!(addresses(&s, &acl), configured(), "the missing address back, the stray one gone");
        let (sid, entry) = kept.iter().next().unwrap();
        assert_eq!(s.ip_addresses.get(sid), Some(entry), "the address still there is kept as it was");
        let trunk = s.trunks.keys().next().unwrap().clone();
        assert_eq!(s.trunk_ip_acls.iter().cloned().collect::<Vec<_>>(), [(trunk, acl.clone())]);
    }
    // The whole list deleted in the console: another is made, and kept for the unlink.
    {
        let mut s = twilio.state.lock().unwrap();
        s.ip_acls.clear();
        s.ip_addresses.clear();
        s.trunk_ip_acls.clear();
    }
    repair();
    let again = {
        let s = twilio.state.lock().unwrap();
        assert_eq!(s.ip_acls.len(), 1);
        let again = s.ip_acls.keys().next().unwrap().clone();
        assert_ne!(again, acl, "a new list");
        assert_eq!(addresses(&s, &again), configured());
        assert_eq!(s.trunk_ip_acls.len(), 1);
        again
    };
    assert_eq!(server.api("DELETE", "/v1/numbers/+14155550185", None).0, 204);
    assert_eq!(server.api("DELETE", &format!("/v1/twilio/accounts/{AC}"), None).0, 204);
    assert!(twilio.state.lock().unwrap().ip_acls.is_empty(), "the new list, removed at unlink");
    assert_eq!(sent(&twilio, "DELETE", &format!("/SIP/IpAccessControlLists/{again}.json")), 1);
}

#[test]
fn a_linked_account_whose_trunk_takes_the_nodes_addresses_places_calls_without_credentials() {
    use std::net::UdpSocket;
    // As in the credentials test, the test plays Twilio's termination side behind the outbound proxy; here the
    // trunk challenges anyway, and vocals has no credentials to answer with: the call fails.
    let sip = UdpSocket::bind("127.0.0.1:0").unwrap();
    sip.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    let proxy = sip.local_addr().unwrap().to_string();
    let (server, twilio) = by_address("twilio-linked-calls-ip", &[("VOCALS_OUTBOUND_PROXY", &proxy)]);
    link(&server);
    twilio.number(AC, "+14155550191");
    let calls = format!("/2010-04-01/Accounts/{AC}/Calls.json");
    let form = [("To", "+14155550100"), ("From", "+14155550191"), ("Twiml", "<Response><Hangup/></Response>")];
    let (status, body) = basic(server.admin, "POST", &calls, AC, TOKEN, &form);
    assert_eq!(status, 403, "no trunk before a number is added: {body}");
    assert_eq!(add(&server, "+14155550191", None).0, 201);
    let domain = twilio.state.lock().unwrap().trunks.values().next().unwrap().domain_name.clone();
    let (status, call) = basic(server.admin, "POST", &calls, AC, TOKEN, &form);
    assert_eq!((status, call["status"].as_str()), (201, Some("queued")), "{call}");
    let sid = call["sid"].as_str().unwrap().to_string();

    let mut buf = [0u8; 8192];
    let (n, from) = sip.recv_from(&mut buf).expect("the INVITE");
    let invite = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(invite.starts_with(&format!("INVITE sip:+14155550100@{domain} SIP/2.0")), "{invite}");
    let lines = |msg: &str, name: &str| -> Vec<String> {
        let prefix = format!("{}:", name.to_ascii_lowercase());
        msg.lines().filter(|l| l.to_ascii_lowercase().starts_with(&prefix)).map(str::to_string).collect()
    };
    assert!(lines(&invite, "Proxy-Authorization").is_empty() && lines(&invite, "Authorization").is_empty());
    let mut challenge = String::from("SIP/2.0 407 Proxy Authentication Required\r\n");
    for name in ["Via", "From", "Call-ID", "CSeq"] {
        for l in lines(&invite, name) {
            challenge.push_str(&format!("{l}\r\n"));
        }
    }
    challenge.push_str(&format!(
        "{};tag=twilio1\r\nProxy-Authenticate: Digest realm=\"sip.twilio.com\", nonce=\"4e6f6e63650a\", \
         qop=\"auth\", algorithm=MD5\r\nContent-Length: 0\r\n\r\n",
        lines(&invite, "To")[0]
    ));
    sip.send_to(challenge.as_bytes(), from).unwrap();

    // The call fails on the 407; whatever else arrives meanwhile (the 407's ACK) carries no credentials.
    sip.set_read_timeout(Some(std::time::Duration::from_millis(100))).unwrap();
    let path = format!("/2010-04-01/Accounts/{AC}/Calls/{sid}.json");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if let Ok((n, _)) = sip.recv_from(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            assert!(!msg.starts_with("INVITE "), "no INVITE again, with or without credentials: {msg}");
            assert!(lines(&msg, "Proxy-Authorization").is_empty(), "{msg}");
        }
        let (status, view) = basic(server.admin, "GET", &path, AC, TOKEN, &[]);
        assert_eq!(status, 200, "{view}");
        if view["status"] == "failed" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never failed: {view}");
    }
}

#[test]
fn switching_termination_auth_makes_the_new_way_and_removes_what_vocals_made_for_the_old() {
    // Two nodes on one store, one configured each way: a repair on either sets the trunk up its own way.
    let dir = std::env::temp_dir().join(format!("vocals-termination-switch-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("shared.db").display());
    let store = [
        ("VOCALS_STORE_URL", url.as_str()),
        ("VOCALS_STORE_SECRET_KEY", "dm9jYWxzLXRlc3Qta2V5LTAxMjM0NTY3ODlhYmNkZWY="),
    ];
    let (credentials, twilio) = setup_with("twilio-termination-switch-a", &store);
    link(&credentials);
    twilio.number(AC, "+14155550186");
    assert_eq!(add(&credentials, "+14155550186", None).0, 201);
    let origination = format!("{NODE_A}, {NODE_B}");
    let mut env = vec![
        ("VOCALS_TWILIO_API_URL", twilio.base.as_str()),
        ("VOCALS_TWILIO_TRUNKING_URL", twilio.base.as_str()),
        ("VOCALS_TWILIO_ORIGINATION_URIS", origination.as_str()),
        ("VOCALS_TWILIO_RECONCILE_INTERVAL", "0"),
        ("VOCALS_TWILIO_TIMEOUT_MS", "3000"),
        ("VOCALS_OUTBOUND_TERMINATION_AUTH", "ip"),
        ("VOCALS_OUTBOUND_TERMINATION_IPS", NODE_IPS),
    ];
    env.extend_from_slice(&store);
    let by_ip = InProcess::start("twilio-termination-switch-b", &env);
    let repair = |server: &InProcess| {
        let (status, n) = server.api("POST", "/v1/numbers/+14155550186/twilio/repair", None);
        assert_eq!((status, n["status"].as_str()), (200, Some("inactive")), "{n}");
    };
    let trunk = twilio.state.lock().unwrap().trunks.keys().next().unwrap().clone();
    repair(&by_ip);
    let acl = {
        let s = twilio.state.lock().unwrap();
        assert!(s.credential_lists.is_empty() && s.sip_credentials.is_empty(), "the credential list removed");
        assert!(s.trunk_credential_lists.is_empty());
        assert_eq!(s.ip_acls.len(), 1);
        let acl = s.ip_acls.keys().next().unwrap().clone();
        assert_eq!(addresses(&s, &acl), configured());
        assert_eq!(s.trunk_ip_acls.iter().cloned().collect::<Vec<_>>(), [(trunk.clone(), acl.clone())]);
        acl
    };
    repair(&credentials);
    {
        let s = twilio.state.lock().unwrap();
        assert!(s.ip_acls.is_empty() && s.ip_addresses.is_empty() && s.trunk_ip_acls.is_empty(), "the list removed");
        assert_eq!((s.credential_lists.len(), s.sip_credentials.len()), (1, 1), "a credential list again");
        let list = s.credential_lists.keys().next().unwrap().clone();
        assert_eq!(s.trunk_credential_lists.iter().cloned().collect::<Vec<_>>(), [(trunk.clone(), list)]);
    }
    assert_eq!(sent(&twilio, "DELETE", &format!("/SIP/IpAccessControlLists/{acl}.json")), 1);
    drop((credentials, by_ip));
    let _ = std::fs::remove_dir_all(&dir);
}
