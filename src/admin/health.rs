//! Number health: whether calls to a number will succeed, and if not why and what fixes it. A number's status
//! (active, inactive, error) says what vocals was told; its health says what will happen to the next call:
//! Twilio may send it to an address Twilio cannot reach, or to another node, or its agent may be down. Computed
//! from what the store holds (the trunk and the number as Twilio last showed them, the last check of each
//! agent's URL and the last calls' outcomes), so listing 1,000 numbers asks nothing of Twilio.

use std::collections::HashMap;
use std::net::IpAddr;

use serde::Serialize;
use serde_json::Value;

use crate::store::{Agent, AgentCheck, CallRecord, PhoneNumber, TwilioAccount};

/// One reason calls to a number will not succeed: a stable code, what is wrong, and what fixes it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Problem {
    pub code: &'static str,
    pub message: String,
    pub fix: String,
}

/// `{ok, problems}`: `ok` when nothing stands between a caller and the agent that vocals can see.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Health {
    pub ok: bool,
    pub problems: Vec<Problem>,
}

/// The latest evidence of whether an agent's stream URL answers: a check when it was saved, or a call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reach {
    pub ok: bool,
    pub detail: String,
    /// RFC 3339 (the store's format, so times compare as text).
    pub at: String,
}

/// The newer of the agent's last check and its last decisive call (answered, or refused "agent unavailable").
pub fn reach(check: Option<&AgentCheck>, calls: &[CallRecord]) -> Option<Reach> {
    let from_check = check.map(|c| Reach { ok: c.ok, detail: c.detail.clone(), at: c.checked_at.clone() });
    let from_call = calls.iter().find_map(|c| {
        let reason = c.end_reason.as_deref().unwrap_or_default();
        if let Some(why) = reason.strip_prefix("agent unavailable") {
            let why = why.trim_start_matches(':').trim();
            Some(Reach {
                ok: false,
                detail: format!("the call at {} got 503: {why}", c.invite_at),
                at: c.invite_at.clone(),
            })
        } else {
            c.answer_at.as_ref().map(|_| Reach { ok: true, detail: String::new(), at: c.invite_at.clone() })
        }
    });
    match (from_check, from_call) {
        (Some(a), Some(b)) => Some(if b.at >= a.at { b } else { a }),
        (a, b) => a.or(b),
    }
}

/// Why Twilio cannot reach an address, if it cannot: `loopback`, `private`, ….
pub fn unreachable_kind(host: &str) -> Option<&'static str> {
    let host = host.trim_matches(['[', ']']);
    if host.eq_ignore_ascii_case("localhost") || host.to_ascii_lowercase().ends_with(".localhost") {
        return Some("a loopback name");
    }
    match host.parse::<IpAddr>().ok()? {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            if v4.is_loopback() {
                Some("a loopback address")
            } else if v4.is_unspecified() {
                Some("the unspecified address")
            } else if v4.is_private() {
                Some("a private address")
            } else if v4.is_link_local() {
                Some("a link-local address")
            } else if a == 100 && (64..128).contains(&b) {
                Some("a carrier-grade NAT address")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            if v6.is_loopback() {
                Some("a loopback address")
            } else if v6.is_unspecified() {
                Some("the unspecified address")
            } else if first & 0xfe00 == 0xfc00 {
                Some("a private (unique local) address")
            } else if first & 0xffc0 == 0xfe80 {
                Some("a link-local address")
            } else if let Some(v4) = v6.to_ipv4_mapped() {
                unreachable_kind(&v4.to_string())
            } else {
                None
            }
        }
    }
}

/// The host and port a SIP URI sends to: `sip:host:port;params` → (`host`, port), the port defaulting to 5061
/// for `sips:` or `transport=tls`, else 5060. Hosts are lowercased; IPv6 keeps its brackets.
pub fn sip_target(uri: &str) -> Option<(String, u16)> {
    let uri = uri.trim();
    let lower = uri.to_ascii_lowercase();
    let (rest, secure) =
        if let Some(r) = lower.strip_prefix("sips:") { (r, true) } else { (lower.strip_prefix("sip:")?, false) };
    let secure = secure || lower.contains(";transport=tls");
    let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    let hostport = rest.split([';', '?']).next()?;
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (inner, after) = v6.split_once(']')?;
        (format!("[{inner}]"), after.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (hostport.to_string(), None),
        }
    };
    if host.is_empty() || host == "[]" {
        return None;
    }
    let port = match port {
        Some(p) => p.parse().ok()?,
        None if secure => 5061,
        None => 5060,
    };
    Some((host, port))
}

/// What a number's health is computed from.
pub struct Inputs<'a> {
    pub number: &'a PhoneNumber,
    /// Its Twilio account, with the trunk as last read (`None` for a number added by hand).
    pub account: Option<&'a TwilioAccount>,
    /// This node's origination URIs (what Repair points the trunk at); empty when Twilio linking is off.
    pub ours: &'a [String],
    pub agent: Option<&'a Agent>,
    /// The latest evidence about the agent's URL.
    pub reach: Option<&'a Reach>,
}

const FIX_PUBLIC: &str = "Set sip.public_host (or twilio.origination_uris) to this node's public name or address \
                          and restart; Repair then adds that URI to the trunk. Delete the unreachable one in \
                          Twilio's console (Elastic SIP Trunking → the trunk → Origination).";

/// The number's health.
pub fn number_health(i: &Inputs) -> Health {
    let mut problems = Vec::new();
    let n = i.number;
    if n.status == "error" {
        let detail = n.status_detail.trim();
        if let Some(drift) = detail.strip_prefix("drift:") {
            problems.push(Problem {
                code: "twilio_drift",
                message: format!("Changed in Twilio: {}", drift.trim()),
                fix: "Repair points it back to vocals (it says first what that replaces), or Remove it from vocals \
                      and leave Twilio as it is."
                    .into(),
            });
        } else {
            problems.push(Problem {
                code: "twilio_error",
                message: if detail.is_empty() { "Twilio is not configured for it".into() } else { detail.into() },
                fix: "Retry configures Twilio again; if Twilio refuses again, its message says why.".into(),
            });
        }
    }
    if n.agent_id.is_none() && !crate::store::a_rule_answers(&n.rules) {
        problems.push(Problem {
            code: "no_agent",
            message: "No agent: calls to it are not answered (480)".into(),
            fix: "Choose an agent for it (click the number).".into(),
        });
    }
    if let Some(account) = i.account.filter(|a| a.trunk_read_at.is_some()) {
        origination(account, i.ours, &mut problems);
    }
    if let (Some(agent), Some(reach)) = (i.agent, i.reach)
        && agent.kind != "echo"
        && !reach.ok
    {
        let url = agent.stream_url.as_deref().unwrap_or("(none)");
        problems.push(Problem {
            code: "agent_unreachable",
            message: format!("Its agent {:?} does not answer at {url}: {}", agent.name, reach.detail),
            fix: "Start the agent's pipeline, or correct its Stream URL; saving the agent checks it again.".into(),
        });
    }
    Health { ok: problems.is_empty(), problems }
}

/// Problems with where the trunk sends calls.
fn origination(account: &TwilioAccount, ours: &[String], problems: &mut Vec<Problem>) {
    let urls: Vec<(&str, &Value)> = account
        .origination
        .as_array()
        .map(|a| a.iter().filter(|o| o["enabled"].as_bool() != Some(false)).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|o| o["sip_url"].as_str().map(|u| (u, o)))
        .collect();
    if urls.is_empty() {
        problems.push(Problem {
            code: "origination_elsewhere",
            message: "The trunk has no origination URI: Twilio has nowhere to send calls".into(),
            fix: "Repair adds this node's origination URI to the trunk.".into(),
        });
        return;
    }
    for (url, _) in &urls {
        if let Some(kind) = sip_target(url).and_then(|(host, _)| unreachable_kind(&host)) {
            problems.push(Problem {
                code: "origination_unreachable",
                message: format!("Twilio sends calls to {url}, which Twilio cannot reach ({kind})"),
                fix: FIX_PUBLIC.into(),
            });
        }
    }
    let mine: Vec<(String, u16)> = ours.iter().filter_map(|u| sip_target(u)).collect();
    if !mine.is_empty() && !urls.iter().any(|(u, _)| sip_target(u).is_some_and(|t| mine.contains(&t))) {
        let listed: Vec<&str> = urls.iter().map(|(u, _)| *u).collect();
        problems.push(Problem {
            code: "origination_elsewhere",
            message: format!("Twilio sends calls to {}, not to this node ({})", listed.join(", "), ours.join(", ")),
            fix: "Repair adds this node's origination URI to the trunk; or, if another node serves these calls, \
                  check it there."
                .into(),
        });
    }
}

/// The latest evidence per agent id, from the stored checks and each agent's recent calls (by name).
pub fn reaches(
    agents: &[Agent],
    checks: &HashMap<String, AgentCheck>,
    calls: &HashMap<String, Vec<CallRecord>>,
) -> HashMap<String, Reach> {
    agents
        .iter()
        .filter_map(|a| {
            let recent = calls.get(&a.name).map(Vec::as_slice).unwrap_or_default();
            reach(checks.get(&a.id), recent).map(|r| (a.id.clone(), r))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::e164::E164;
    use serde_json::json;

    fn number(status: &str, detail: &str, agent: Option<&str>) -> PhoneNumber {
        PhoneNumber {
            e164: E164::parse("+14155550123").unwrap(),
            agent_id: agent.map(str::to_string),
            status: status.into(),
            status_detail: detail.into(),
            twilio_account_sid: Some("AC".into()),
            twilio_number_sid: Some("PN".into()),
            twilio_snapshot: json!({}),
            srtp: None,
            record: None,
            twilio_now: json!({}),
            rules: json!([]),
            created_at: String::new(),
            updated_at: String::new(),
        }
    }

    fn account(urls: Value) -> TwilioAccount {
        TwilioAccount {
            account_sid: "AC".into(),
            friendly_name: String::new(),
            trunk_sid: Some("TK".into()),
            trunk_domain: Some("vocals-x.pstn.twilio.com".into()),
            origination: urls,
            trunk_read_at: Some("2026-12-07T00:00:00.000Z".into()),
            created_at: String::new(),
            updated_at: String::new(),
        }
    }

    fn agent(kind: &str) -> Agent {
        Agent {
            id: "ag_1".into(),
            name: "sales".into(),
            kind: kind.into(),
            stream_url: Some("ws://agent.example:9000/media".into()),
            system_prompt: String::new(),
            providers: json!({}),
            settings: json!({}),
            signing_secret: None,
            signed: false,
            builtin: false,
            created_at: String::new(),
            updated_at: String::new(),
        }
    }

    fn codes(h: &Health) -> Vec<&str> {
        h.problems.iter().map(|p| p.code).collect()
    }

    const OURS: &[&str] = &["sip:vocals.example.com:5060"];

    fn ours() -> Vec<String> {
        OURS.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_number_on_a_public_origination_uri_with_a_reachable_agent_is_healthy() {
        let n = number("active", "", Some("ag_1"));
        let acc =
            account(json!([{"sip_url": "sip:vocals.example.com", "priority": 10, "weight": 10, "enabled": true}]));
        let a = agent("websocket");
        let r = Reach { ok: true, detail: String::new(), at: "t".into() };
        let ours = ours();
        let h =
            number_health(&Inputs { number: &n, account: Some(&acc), ours: &ours, agent: Some(&a), reach: Some(&r) });
        assert_eq!(h, Health { ok: true, problems: vec![] });
    }

    #[test]
    fn a_loopback_origination_uri_is_named_with_why_twilio_cannot_reach_it() {
        let n = number("active", "", Some("ag_1"));
        let acc = account(json!([{"sip_url": "sip:127.0.0.1:5190", "priority": 10, "weight": 10, "enabled": true}]));
        let ours = vec!["sip:127.0.0.1:5190".to_string()];
        let h = number_health(&Inputs { number: &n, account: Some(&acc), ours: &ours, agent: None, reach: None });
        assert_eq!(codes(&h), ["origination_unreachable"]);
        assert!(!h.ok);
        assert_eq!(
            h.problems[0].message,
            "Twilio sends calls to sip:127.0.0.1:5190, which Twilio cannot reach (a loopback address)"
        );
        assert!(h.problems[0].fix.contains("sip.public_host"));
    }

    #[test]
    fn private_and_other_unreachable_addresses_are_told_apart_from_public_ones() {
        for (host, kind) in [
            ("10.0.0.5", Some("a private address")),
            ("192.168.1.10", Some("a private address")),
            ("172.20.0.1", Some("a private address")),
            ("100.64.0.1", Some("a carrier-grade NAT address")),
            ("169.254.1.1", Some("a link-local address")),
            ("[::1]", Some("a loopback address")),
            ("[fd00::1]", Some("a private (unique local) address")),
            ("[fe80::1]", Some("a link-local address")),
            ("localhost", Some("a loopback name")),
            ("0.0.0.0", Some("the unspecified address")),
            ("203.0.113.7", None),
            ("172.32.0.1", None),
            ("[2001:db8::1]", None),
            ("vocals.example.com", None),
        ] {
            assert_eq!(unreachable_kind(host), kind, "{host}");
        }
    }

    #[test]
    fn sip_targets_default_their_port_by_transport() {
        assert_eq!(sip_target("sip:Vocals.Example.com"), Some(("vocals.example.com".into(), 5060)));
        assert_eq!(sip_target("sip:h:5070;transport=udp"), Some(("h".into(), 5070)));
        assert_eq!(sip_target("sip:h;transport=tls"), Some(("h".into(), 5061)));
        assert_eq!(sip_target("sips:h"), Some(("h".into(), 5061)));
        assert_eq!(sip_target("sip:[2001:db8::1]:5080"), Some(("[2001:db8::1]".into(), 5080)));
        assert_eq!(sip_target("sip:[2001:db8::1]"), Some(("[2001:db8::1]".into(), 5060)));
        assert_eq!(sip_target("sip:user@h:5062?x=1"), Some(("h".into(), 5062)));
        assert_eq!(sip_target("http://h"), None);
        assert_eq!(sip_target("sip:h:port"), None);
    }

    #[test]
    fn a_trunk_that_sends_calls_to_another_node_only_is_flagged_and_one_among_several_is_not() {
        let n = number("active", "", Some("ag_1"));
        let ours = ours();
        let other = account(json!([{"sip_url": "sip:other.example.com", "enabled": true}]));
        let h = number_health(&Inputs { number: &n, account: Some(&other), ours: &ours, agent: None, reach: None });
        assert_eq!(codes(&h), ["origination_elsewhere"]);
        assert!(h.problems[0].message.contains("sip:other.example.com"), "{h:?}");
        let both = account(json!([
            {"sip_url": "sip:other.example.com", "enabled": true},
            {"sip_url": "sip:vocals.example.com:5060;transport=udp", "enabled": true}
        ]));
        let h = number_health(&Inputs { number: &n, account: Some(&both), ours: &ours, agent: None, reach: None });
        assert!(h.ok, "{h:?}");
        // A disabled URL does not count, and no URL at all is said plainly.
        let disabled = account(json!([{"sip_url": "sip:vocals.example.com", "enabled": false}]));
        let h = number_health(&Inputs { number: &n, account: Some(&disabled), ours: &ours, agent: None, reach: None });
        assert_eq!(codes(&h), ["origination_elsewhere"]);
        assert!(h.problems[0].message.contains("no origination URI"), "{h:?}");
    }

    #[test]
    fn a_trunk_never_read_says_nothing_about_origination() {
        let n = number("active", "", Some("ag_1"));
        let mut acc = account(json!([]));
        acc.trunk_read_at = None;
        let ours = ours();
        let h = number_health(&Inputs { number: &n, account: Some(&acc), ours: &ours, agent: None, reach: None });
        assert!(h.ok);
    }

    #[test]
    fn drift_and_configuration_errors_and_a_missing_agent_each_name_their_fix() {
        let ours = ours();
        let drifted = number(
            "error",
            "drift: Twilio now sends this number to the voice URL https://h/EH123, not to vocals",
            Some("ag_1"),
        );
        let h = number_health(&Inputs { number: &drifted, account: None, ours: &ours, agent: None, reach: None });
        assert_eq!(codes(&h), ["twilio_drift"]);
        assert_eq!(
            h.problems[0].message,
            "Changed in Twilio: Twilio now sends this number to the voice URL https://h/EH123, not to vocals"
        );
        assert!(h.problems[0].fix.contains("Repair"));
        let failed = number("error", "configuring Twilio: 20003 Authenticate", Some("ag_1"));
        let h = number_health(&Inputs { number: &failed, account: None, ours: &ours, agent: None, reach: None });
        assert_eq!(codes(&h), ["twilio_error"]);
        assert!(h.problems[0].fix.contains("Retry"));
        let inactive = number("inactive", "", None);
        let h = number_health(&Inputs { number: &inactive, account: None, ours: &ours, agent: None, reach: None });
        assert_eq!(codes(&h), ["no_agent"]);
    }

    #[test]
    fn an_unreachable_agent_is_flagged_but_never_the_echo_agent() {
        let n = number("active", "", Some("ag_1"));
        let ours = ours();
        let down = Reach { ok: false, detail: "connection refused".into(), at: "t".into() };
        let a = agent("websocket");
        let h = number_health(&Inputs { number: &n, account: None, ours: &ours, agent: Some(&a), reach: Some(&down) });
        assert_eq!(codes(&h), ["agent_unreachable"]);
        assert!(h.problems[0].message.contains("ws://agent.example:9000/media"), "{h:?}");
        assert!(h.problems[0].message.contains("connection refused"), "{h:?}");
        let echo = agent("echo");
        let h =
            number_health(&Inputs { number: &n, account: None, ours: &ours, agent: Some(&echo), reach: Some(&down) });
        assert!(h.ok);
    }

    fn call(at: &str, answered: bool, reason: &str) -> CallRecord {
        CallRecord {
            invite_at: at.into(),
            answer_at: answered.then(|| at.to_string()),
            end_reason: Some(reason.into()),
            ..CallRecord::default()
        }
    }

    #[test]
    fn the_newest_evidence_wins_between_the_check_at_save_and_the_last_calls() {
        let check = AgentCheck { ok: true, detail: String::new(), checked_at: "2026-12-07T10:00:00.000Z".into() };
        // Newest first, as the store lists calls: a refused call after the check says the agent is down now.
        let calls = [
            call("2026-12-07T11:00:00.000Z", false, "agent unavailable: connection refused (os error 111)"),
            call("2026-12-07T09:00:00.000Z", true, "the caller hung up"),
        ];
        let r = reach(Some(&check), &calls).unwrap();
        assert!(!r.ok);
        assert!(r.detail.contains("got 503: connection refused"), "{r:?}");
        // A check after that call (the agent was restarted and saved) wins.
        let later = AgentCheck { checked_at: "2026-12-07T12:00:00.000Z".into(), ..check.clone() };
        assert!(reach(Some(&later), &calls).unwrap().ok);
        // A cancelled call proves nothing either way: the answered one before it counts.
        let calls = [call("2026-12-07T11:00:00.000Z", false, "the caller cancelled"), calls[1].clone()];
        let r = reach(None, &calls).unwrap();
        assert!(r.ok);
        assert_eq!(reach(None, &[]), None);
    }
}
