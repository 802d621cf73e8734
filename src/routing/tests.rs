//! Routing's tests: the dialed number, the table, the account binding, and (issue 26) rules at INVITE time.

use super::*;
use crate::sip::message::Message;

const UDP: &[u8] = include_bytes!("../../sip-tests/vectors/twilio/twilio-invite-udp.sip");
const FIXED_USER: &[u8] = include_bytes!("../../sip-tests/vectors/twilio/twilio-invite-fixed-user.sip");

fn request(bytes: &[u8]) -> Request {
    match Message::parse(bytes.to_vec()).unwrap() {
        Message::Request(r) => r,
        Message::Response(_) => unreachable!(),
    }
}

fn number(s: &str) -> E164 {
    E164::parse(s).unwrap()
}

fn echo() -> Arc<AgentConfig> {
    Arc::new(AgentConfig::echo())
}

fn table() -> NumberTable {
    let mut t = NumberTable::new();
    t.insert(number("+14155550123"), Some(echo()), Some("ACbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb".into()));
    t.insert(number("+14155550124"), None, None);
    t
}

#[test]
fn the_request_uri_user_is_the_dialed_number() {
    let routed = route_now(&request(UDP), &table()).unwrap();
    assert_eq!(
        routed,
        Routed { dialed: number("+14155550123"), agent: echo(), chosen: Chosen::Default, srtp: None, record: None }
    );
}

#[test]
fn a_fixed_user_part_falls_back_to_diversion() {
    assert_eq!(dialed_number(&request(FIXED_USER)), Some(number("+14155550123")));
    assert_eq!(route_now(&request(FIXED_USER), &table()).unwrap().agent.name, "echo");
}

#[test]
fn unknown_unassigned_and_foreign_calls_get_their_statuses() {
    let text = String::from_utf8(UDP.to_vec()).unwrap();
    let unknown = text.replace("+14155550123", "+14155550199");
    let err = route_now(&request(unknown.as_bytes()), &table()).unwrap_err();
    assert_eq!((err.status().as_u16(), err.to_string().as_str()), (404, "number +14155550199 is not served here"));
    let unassigned = text.replace("+14155550123", "+14155550124");
    assert_eq!(route_now(&request(unassigned.as_bytes()), &table()).unwrap_err().status().as_u16(), 480);
    let foreign = text.replace("ACbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "ACcccccccccccccccccccccccccccccccc");
    assert_eq!(route_now(&request(foreign.as_bytes()), &table()), Err(Reject::WrongAccount));
    assert_eq!(Reject::WrongAccount.status().as_u16(), 403);
}

/// Security finding "the account binding fails open": the four cases of the review.
#[test]
fn account_binding_fails_closed() {
    let text = String::from_utf8(UDP.to_vec()).unwrap();
    let without = text.replace("X-Twilio-AccountSid: ACbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\r\n", "");
    assert!(without.len() < text.len(), "the fixture names its account");
    let foreign = |t: &str| t.replace("ACbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "ACcccccccccccccccccccccccccccccccc");
    let to = |t: &str, n: &str| t.replace("+14155550123", n);
    // 1. A number bound to an account: a call naming no account is refused (it was answered).
    let err = route_now(&request(without.as_bytes()), &table()).unwrap_err();
    assert_eq!((err, err_status(&without)), (Reject::NoAccount, 403));
    // 2. ... and one naming another account, as before.
    assert_eq!(route_now(&request(foreign(&text).as_bytes()), &table()), Err(Reject::WrongAccount));
    // 3. A number added without an account: only the accounts vocals knows (the other number's here).
    let mut numbers = table();
    numbers.insert(number("+14155550125"), Some(echo()), None);
    let unbound = to(&text, "+14155550125");
    assert!(route_now(&request(unbound.as_bytes()), &numbers).is_ok(), "a known account");
    assert_eq!(route_now(&request(foreign(&unbound).as_bytes()), &numbers), Err(Reject::WrongAccount));
    assert_eq!(route_now(&request(to(&without, "+14155550125").as_bytes()), &numbers), Err(Reject::NoAccount));
    // 4. The fallback agent: the same.
    numbers.set_fallback(Some(echo()));
    let fallback = to(&text, "+14155550199");
    assert!(route_now(&request(fallback.as_bytes()), &numbers).is_ok());
    assert_eq!(route_now(&request(foreign(&fallback).as_bytes()), &numbers), Err(Reject::WrongAccount));
    // A linked account is known even with no number of its own.
    numbers.know_account("ACcccccccccccccccccccccccccccccccc".into());
    assert!(route_now(&request(foreign(&fallback).as_bytes()), &numbers).is_ok());
    // sip.accounts: "any" takes every call to an unbound number; a list takes only its accounts.
    numbers.set_account_policy(AccountPolicy::Any);
    let stranger = fallback.replace("ACbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "ACdddddddddddddddddddddddddddddddd");
    assert!(route_now(&request(stranger.as_bytes()), &numbers).is_ok());
    numbers.set_account_policy(AccountPolicy::Only(["ACdddddddddddddddddddddddddddddddd".to_string()].into()));
    assert!(route_now(&request(stranger.as_bytes()), &numbers).is_ok());
    assert_eq!(route_now(&request(fallback.as_bytes()), &numbers), Err(Reject::WrongAccount));
    // A server that knows no account (the demo) takes calls naming none.
    let mut demo = NumberTable::new();
    demo.set_demo_fallback(echo());
    assert!(route_now(&request(to(&without, "+14155550199").as_bytes()), &demo).is_ok());
}

fn route_now(invite: &Request, numbers: &dyn NumberLookup) -> Result<Routed, Reject> {
    route(invite, numbers, Timestamp::now())
}

fn err_status(text: &str) -> u16 {
    route_now(&request(text.as_bytes()), &table()).unwrap_err().status().as_u16()
}

#[test]
fn numbers_match_with_or_without_the_plus() {
    let text = String::from_utf8(UDP.to_vec()).unwrap().replace("sip:+14155550123@", "sip:14155550123@");
    assert_eq!(route_now(&request(text.as_bytes()), &table()).unwrap().agent.name, "echo");
}

#[test]
fn a_call_without_any_phone_number_is_not_found() {
    let text = String::from_utf8(FIXED_USER.to_vec())
        .unwrap()
        .replace("Diversion: <sip:+14155550123@twilio.com>;reason=unconditional\r\n", "");
    assert_eq!(route_now(&request(text.as_bytes()), &table()), Err(Reject::NoNumber));
}

#[test]
fn a_fallback_agent_takes_numbers_not_in_the_table_but_not_unassigned_ones() {
    let mut numbers = NumberTable::new();
    let known: E164 = "+14155550100".parse().unwrap();
    let other: E164 = "+14155550199".parse().unwrap();
    numbers.insert(known.clone(), None, None);
    assert_eq!(numbers.lookup(&other), Lookup::Unknown);
    numbers.set_fallback(Some(echo()));
    assert_eq!(numbers.lookup(&other), Lookup::Agent { agent: echo(), account_sid: None, srtp: None, record: None });
    assert_eq!(numbers.lookup(&known), Lookup::Unassigned);
}

#[test]
fn the_demo_fallback_answers_only_while_no_number_exists() {
    let other: E164 = "+14155550199".parse().unwrap();
    let mut base = NumberTable::new();
    base.set_demo_fallback(echo());
    assert_eq!(base.lookup(&other), Lookup::Agent { agent: echo(), account_sid: None, srtp: None, record: None });
    // The store's numbers overlaid on the config file's: one number, even unassigned, ends the demo.
    let mut store = NumberTable::new();
    store.insert("+14155550100".parse().unwrap(), None, None);
    base.overlay(store);
    assert_eq!(base.lookup(&other), Lookup::Unknown, "a server with numbers answers unknown ones 404");
    assert!(base.fallback().is_none());
    let mut explicit = table();
    explicit.set_fallback(Some(echo()));
    assert!(matches!(explicit.lookup(&other), Lookup::Agent { .. }), "a configured default_agent stays");
}

#[test]
fn a_replaced_table_routes_the_next_lookup_and_leaves_taken_agents_alone() {
    let n = number("+14155550123");
    let directory = Directory::new(table());
    let Lookup::Agent { agent: before, .. } = directory.lookup(&n) else { panic!("routed") };
    let support = Arc::new(AgentConfig { id: "ag_1".into(), name: "support".into(), ..AgentConfig::default() });
    let mut next = NumberTable::new();
    next.insert(n.clone(), Some(support.clone()), None);
    directory.replace(next);
    assert_eq!(directory.lookup(&n), Lookup::Agent { agent: support, account_sid: None, srtp: None, record: None });
    assert_eq!(before.name, "echo", "a call in progress keeps the agent it was routed to");
    let mut overlaid = table();
    let mut store = NumberTable::new();
    store.insert(n.clone(), None, None);
    overlaid.overlay(store);
    assert_eq!(overlaid.lookup(&n), Lookup::Unassigned);
}

/// Routing rules at INVITE time (issue 26).
mod rules_at_invite {
    use super::*;
    use crate::sip::message::Message;
    use serde_json::json;

    const UDP: &str = include_str!("../../sip-tests/vectors/twilio/twilio-invite-udp.sip");
    const FROM: &str = "From: <sip:+12125550100@vocals-acme.pstn.twilio.com:5060>";

    fn invite(text: &str) -> Request {
        match Message::parse(text.as_bytes().to_vec()).unwrap() {
            Message::Request(r) => r,
            Message::Response(_) => unreachable!(),
        }
    }

    fn caller(from: &str) -> String {
        let mut buf = [0u8; 16];
        format!("{:?}", caller_of(&invite(&UDP.replace(FROM, from)), &mut buf))
    }

    #[test]
    fn the_caller_is_the_from_number_unless_withheld() {
        assert_eq!(caller(FROM), r#"Number("+12125550100")"#);
        assert_eq!(caller("From: <sip:12125550100@x>"), r#"Number("+12125550100")"#);
        assert_eq!(caller("From: <sip:0044-20-7123-4567@x>"), r#"Number("+442071234567")"#);
        assert_eq!(caller("From: <sip:%2B442071234567;npdi@x>"), r#"Number("+442071234567")"#);
        assert_eq!(caller("From: <tel:+1-212-555-0100>"), r#"Number("+12125550100")"#);
        assert_eq!(caller(r#"From: "Anonymous" <sip:anonymous@anonymous.invalid>"#), "Anonymous");
        assert_eq!(caller("From: <sip:Anonymous@twilio.com>"), "Anonymous");
        assert_eq!(caller("From: <sip:+12125550100@anonymous.invalid>"), "Anonymous");
        assert_eq!(caller("From: <sip:alice@example.com>"), "Other");
        assert_eq!(caller("From: <sip:1234567890123456@x>"), "Other", "16 digits");
        assert_eq!(caller("From: <sip:+0123456789@x>"), "Other");
        let private = UDP.replace("P-Asserted-Identity:", "Privacy: id\r\nP-Asserted-Identity:");
        let mut buf = [0u8; 16];
        assert_eq!(caller_of(&invite(&private), &mut buf), Caller::Anonymous, "Privacy: id");
    }

    fn agent(id: &str) -> Arc<AgentConfig> {
        Arc::new(AgentConfig { id: id.into(), name: id.into(), ..AgentConfig::default() })
    }

    fn ruled(default: Option<&str>, rules: serde_json::Value) -> NumberTable {
        let mut t = NumberTable::new();
        let n: E164 = "+14155550123".parse().unwrap();
        t.insert(n.clone(), default.map(agent), Some("ACbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb".into()));
        t.set_rules(&n, Some(NumberRules::new(&rules, |id| id.starts_with("ag_").then(|| agent(id))).unwrap()));
        t
    }

    #[test]
    fn rules_choose_the_agent_and_a_null_rule_refuses_480() {
        let table = ruled(
            Some("ag_day"),
            json!([
                {"when": {"zone": "UTC", "from": "18:00", "to": "08:00"}, "agent_id": "ag_night"},
                {"caller": "+44", "agent_id": "ag_uk"},
                {"caller": "anonymous", "agent_id": null}
            ]),
        );
        let at = |t: &str| t.parse::<Timestamp>().unwrap();
        let routed = route(&invite(UDP), &table, at("2026-12-09T12:00:00Z")).unwrap();
        assert_eq!((routed.agent.id.as_str(), routed.chosen), ("ag_day", Chosen::Default));
        let routed = route(&invite(UDP), &table, at("2026-12-09T21:00:00Z")).unwrap();
        assert_eq!((routed.agent.id.as_str(), routed.chosen), ("ag_night", Chosen::Rule(0)));
        assert_eq!(routed.chosen.label(), "rules[0]");
        let uk = UDP.replace(FROM, "From: <sip:+447700900123@x>");
        let routed = route(&invite(&uk), &table, at("2026-12-09T12:00:00Z")).unwrap();
        assert_eq!((routed.agent.id.as_str(), routed.chosen), ("ag_uk", Chosen::Rule(1)));
        let withheld = UDP.replace(FROM, r#"From: "Anonymous" <sip:anonymous@anonymous.invalid>"#);
        let err = route(&invite(&withheld), &table, at("2026-12-09T12:00:00Z")).unwrap_err();
        assert_eq!(err, Reject::NotAnswered("+14155550123".parse().unwrap(), 2));
        assert_eq!(
            (err.status().as_u16(), err.to_string().as_str()),
            (480, "number +14155550123 is not answered now (rules[2])")
        );
        // The account binding holds whichever agent a rule picks.
        let foreign = uk.replace("ACbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "ACcccccccccccccccccccccccccccccccc");
        assert_eq!(route(&invite(&foreign), &table, at("2026-12-09T12:00:00Z")), Err(Reject::WrongAccount));
        // A number without a default agent answers when a rule names one, and 480 otherwise.
        let nights =
            ruled(None, json!([{"when": {"zone": "UTC", "from": "18:00", "to": "08:00"}, "agent_id": "ag_night"}]));
        assert_eq!(route(&invite(UDP), &nights, at("2026-12-09T21:00:00Z")).unwrap().agent.id, "ag_night");
        let err = route(&invite(UDP), &nights, at("2026-12-09T12:00:00Z")).unwrap_err();
        assert_eq!(err, Reject::NoAgent("+14155550123".parse().unwrap()));
        // The default lookup (no rules applied) is the default agent.
        assert_eq!(nights.lookup(&"+14155550123".parse().unwrap()), Lookup::Unassigned);
    }

    #[test]
    fn a_rule_naming_an_unknown_agent_is_refused_with_its_field() {
        let e = NumberRules::new(&json!([{"caller": "+44", "agent_id": "nobody"}]), |_| None).unwrap_err();
        assert_eq!(e.to_string(), "rules[0].agent_id: no agent nobody");
    }
}
