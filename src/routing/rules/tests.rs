use super::*;
use serde_json::json;

fn at(utc: &str) -> Timestamp {
    utc.parse().unwrap_or_else(|e| panic!("{utc}: {e}"))
}

fn agents(id: &str) -> bool {
    id.starts_with("ag_")
}

/// The example: weekends, weekday nights, holidays closed, UK callers, withheld numbers refused.
fn example() -> Rules {
    Rules::parse(
        &json!([
            {"when": {"zone": "America/New_York", "days": ["sat", "sun"]}, "agent_id": "ag_weekend"},
            {"when": {"zone": "America/New_York", "days": ["mon","tue","wed","thu","fri"], "from": "18:00", "to": "08:00"},
             "agent_id": "ag_night"},
            {"when": {"zone": "America/New_York", "dates": ["2026-12-25", "2027-01-01"]}, "agent_id": null},
            {"caller": ["+44", "+353"], "agent_id": "ag_uk"},
            {"caller": "anonymous", "agent_id": null}
        ]),
        agents,
    )
    .unwrap()
}

fn agent(d: Decision<'_>) -> Option<&str> {
    match d {
        Decision::Rule { agent_id, .. } => agent_id,
        Decision::Default => Some("default"),
    }
}

#[test]
fn the_first_matching_rule_wins_and_the_default_answers_otherwise() {
    let r = example();
    let us = Caller::Number("+12125550100");
    // Wednesday 2026-12-09, 10:00 in New York (15:00Z): nothing matches a US caller: the default.
    assert_eq!(agent(r.decide(at("2026-12-09T15:00:00Z"), us)), Some("default"));
    // The same hour for a UK caller and a withheld one.
    assert_eq!(agent(r.decide(at("2026-12-09T15:00:00Z"), Caller::Number("+442071234567"))), Some("ag_uk"));
    assert_eq!(agent(r.decide(at("2026-12-09T15:00:00Z"), Caller::Number("+35312345678"))), Some("ag_uk"));
    assert_eq!(r.decide(at("2026-12-09T15:00:00Z"), Caller::Anonymous), Decision::Rule { index: 4, agent_id: None });
    // Wednesday 19:00 and Thursday 02:00 local: the night agent (a window across midnight covers the date's
    // early hours), Thursday 08:00 local: the default again.
    assert_eq!(agent(r.decide(at("2026-12-10T00:00:00Z"), us)), Some("ag_night"));
    assert_eq!(agent(r.decide(at("2026-12-10T07:00:00Z"), us)), Some("ag_night"));
    assert_eq!(agent(r.decide(at("2026-12-10T13:00:00Z"), us)), Some("default"));
    // Monday 02:00 local is a weekday's early hours: night, not the weekend.
    assert_eq!(agent(r.decide(at("2026-12-14T07:00:00Z"), us)), Some("ag_night"));
    // Saturday noon, and Saturday 02:00 (Friday's night, but the weekend rule comes first).
    assert_eq!(agent(r.decide(at("2026-12-12T17:00:00Z"), us)), Some("ag_weekend"));
    assert_eq!(agent(r.decide(at("2026-12-12T07:00:00Z"), us)), Some("ag_weekend"));
    // Christmas, a Friday, 10:00 local: closed (not answered), whoever calls; 20:00 local: the night rule first.
    assert_eq!(r.decide(at("2026-12-25T15:00:00Z"), us), Decision::Rule { index: 2, agent_id: None });
    assert_eq!(agent(r.decide(at("2026-12-26T01:00:00Z"), us)), Some("ag_night"));
    // The zone decides the date: 2026-12-25T03:00Z is still the 24th, 22:00, in New York.
    assert_eq!(agent(r.decide(at("2026-12-25T03:00:00Z"), us)), Some("ag_night"));
}

#[test]
fn a_rule_with_when_and_caller_matches_when_both_do_and_dates_take_ranges() {
    let r = Rules::parse(
        &json!([{"when": {"zone": "Europe/London", "dates": ["2027-04-02/2027-04-05"], "from": "09:00", "to": "12:00"},
                 "caller": "+44", "agent_id": "ag_easter"}]),
        agents,
    )
    .unwrap();
    let uk = Caller::Number("+447700900123");
    assert_eq!(agent(r.decide(at("2027-04-03T09:30:00Z"), uk)), Some("ag_easter"), "BST: 10:30 local");
    assert_eq!(agent(r.decide(at("2027-04-03T11:30:00Z"), uk)), Some("default"), "12:30 local");
    assert_eq!(agent(r.decide(at("2027-04-03T09:30:00Z"), Caller::Number("+33123456789"))), Some("default"));
    assert_eq!(agent(r.decide(at("2027-04-06T09:30:00Z"), uk)), Some("default"), "after the range");
}

/// A window every day in `zone`.
fn window(zone: &str, from: &str, to: &str) -> Rules {
    Rules::parse(&json!([{"when": {"zone": zone, "from": from, "to": to}, "agent_id": "ag_w"}]), agents).unwrap()
}

fn inside(r: &Rules, utc: &str) -> bool {
    r.decide(at(utc), Caller::Anonymous) != Decision::Default
}

#[test]
fn us_2027_a_skipped_hour_is_skipped_and_a_repeated_one_matches_once() {
    // 2027-03-14, New York: 02:00 EST becomes 03:00 EDT (07:00Z). 02:30-04:00 starts when the clock passes the
    // gap, at 03:00 EDT.
    let r = window("America/New_York", "02:30", "04:00");
    assert!(!inside(&r, "2027-03-14T06:59:00Z"), "01:59 EST");
    assert!(inside(&r, "2027-03-14T07:00:00Z"), "03:00 EDT: the window began in the skipped hour");
    assert!(inside(&r, "2027-03-14T07:59:00Z"), "03:59 EDT");
    assert!(!inside(&r, "2027-03-14T08:00:00Z"), "04:00 EDT");
    // A window entirely inside the skipped hour never opens that day (and opens the day after).
    let gone = window("America/New_York", "02:10", "02:50");
    for m in 0..180 {
        let t = at("2027-03-14T05:00:00Z").checked_add(jiff::SignedDuration::from_mins(m)).unwrap();
        assert!(gone.decide(t, Caller::Anonymous) == Decision::Default, "{t}");
    }
    assert!(inside(&gone, "2027-03-15T06:20:00Z"), "02:20 EDT the next day");
    // 2027-11-07: 02:00 EDT becomes 01:00 EST (06:00Z): 01:00-01:59 happens twice. A window ending at 01:30
    // ends at the first 01:30; the second pass is outside it.
    let r = window("America/New_York", "00:30", "01:30");
    assert!(inside(&r, "2027-11-07T05:15:00Z"), "01:15 EDT, the first pass");
    assert!(!inside(&r, "2027-11-07T05:45:00Z"), "01:45 EDT");
    assert!(!inside(&r, "2027-11-07T06:15:00Z"), "01:15 EST, the second pass: matched once");
    // A night window holds the whole repeated hour, both passes.
    let night = window("America/New_York", "18:00", "08:00");
    for utc in ["2027-11-07T05:15:00Z", "2027-11-07T06:15:00Z", "2027-11-07T12:59:00Z"] {
        assert!(inside(&night, utc), "{utc}");
    }
    assert!(!inside(&night, "2027-11-07T13:00:00Z"), "08:00 EST");
}

#[test]
fn eu_2027_a_skipped_hour_is_skipped_and_a_repeated_one_matches_once() {
    // 2027-03-28, Berlin: 02:00 CET becomes 03:00 CEST at 01:00Z: 02:00-03:00 never happens.
    let r = window("Europe/Berlin", "02:00", "03:00");
    for utc in ["2027-03-28T00:59:00Z", "2027-03-28T01:00:00Z", "2027-03-28T01:30:00Z"] {
        assert!(!inside(&r, utc), "{utc}");
    }
    assert!(inside(&r, "2027-03-29T00:30:00Z"), "02:30 CEST the next day");
    // 2027-10-31: 03:00 CEST becomes 02:00 CET at 01:00Z: 02:00-02:59 twice; 02:00-02:30 matches the first.
    let r = window("Europe/Berlin", "02:00", "02:30");
    assert!(inside(&r, "2027-10-31T00:15:00Z"), "02:15 CEST");
    assert!(!inside(&r, "2027-10-31T01:15:00Z"), "02:15 CET, the second pass");
    assert!(inside(&r, "2027-11-01T01:15:00Z"), "02:15 CET the next day");
}

#[test]
fn invalid_rules_name_their_field() {
    let e = |v: Value| Rules::parse(&v, agents).unwrap_err();
    let w = |when: Value| json!([{"when": when, "agent_id": "ag_a"}]);
    assert_eq!(e(w(json!({"zone": "Mars/Olympus"}))).field, "rules[0].when.zone");
    assert_eq!(e(w(json!({"zone": "+05:00"}))).field, "rules[0].when.zone", "fixed offsets are not zones");
    assert_eq!(e(w(json!({"zone": "UTC", "from": "09:00", "to": "09:00"}))).field, "rules[0].when.to");
    assert_eq!(e(w(json!({"zone": "UTC", "from": "9:00", "to": "17:00"}))).field, "rules[0].when.from");
    assert_eq!(e(w(json!({"zone": "UTC", "from": "09:00"}))).field, "rules[0].when.to");
    assert_eq!(e(w(json!({"zone": "UTC", "days": ["mon", "funday"]}))).field, "rules[0].when.days[1]");
    assert_eq!(e(w(json!({"zone": "UTC", "dates": ["2027-01-05/2027-01-01"]}))).field, "rules[0].when.dates[0]");
    assert_eq!(e(w(json!({"zone": "UTC", "hours": 3}))).field, "rules[0].when.hours");
    assert_eq!(e(json!([{"caller": "+44", "agent_id": "nope"}])).field, "rules[0].agent_id");
    assert!(e(json!([{"caller": "+44", "agent_id": "nope"}])).message.contains("no agent nope"));
    assert_eq!(e(json!([{"caller": "+44"}])).field, "rules[0].agent_id");
    assert_eq!(e(json!([{"caller": ["+44", "44x"], "agent_id": null}])).field, "rules[0].caller[1]");
    assert_eq!(e(json!([{"agent_id": "ag_a"}])).field, "rules[0]");
    let many: Vec<Value> = (0..33).map(|_| json!({"caller": "+1", "agent_id": null})).collect();
    let too_many = e(Value::Array(many));
    assert_eq!(too_many.field, "rules");
    assert!(too_many.message.contains("at most 32"), "{too_many}");
    assert_eq!(Rules::parse(&Value::Null, agents).unwrap().0.len(), 0);
    // What one INVITE checks stays bounded, whatever a request holds: dates and prefixes are capped.
    let dates: Vec<String> = (1..=65).map(|d| format!("2027-01-01/2027-03-{:02}", 1 + d % 28)).collect();
    let flood = e(w(json!({"zone": "UTC", "dates": dates})));
    assert_eq!((flood.field.as_str(), flood.message.contains("at most 64")), ("rules[0].when.dates", true));
    let prefixes: Vec<String> = (0..65).map(|i| format!("+{i}1")).collect();
    assert_eq!(e(json!([{"caller": prefixes, "agent_id": null}])).field, "rules[0].caller");
    assert_eq!(e(json!([{"caller": "+1234567890123456", "agent_id": null}])).field, "rules[0].caller[0]");
}

#[test]
fn changes_are_found_at_the_edges_dst_included() {
    let r = example();
    // Friday 2026-12-11, 15:00 in New York (20:00 UTC): the default until 18:00 local, then the night agent
    // until Saturday 00:00, when the weekend rule takes over until Monday 00:00, then the night agent until
    // Monday 08:00.
    let caller = Caller::Number("+12125550100");
    let changes = r.changes(at("2026-12-11T20:00:00Z"), at("2026-12-14T20:00:00Z"), caller);
    let seen: Vec<(String, Option<&str>)> = changes.iter().map(|(t, d)| (t.to_string(), agent(*d))).collect();
    assert_eq!(
        seen,
        [
            ("2026-12-11T20:00:00Z".to_string(), Some("default")),
            ("2026-12-11T23:00:00Z".to_string(), Some("ag_night")),
            ("2026-12-12T05:00:00Z".to_string(), Some("ag_weekend")),
            ("2026-12-14T05:00:00Z".to_string(), Some("ag_night")),
            ("2026-12-14T13:00:00Z".to_string(), Some("default")),
        ]
    );
    // Across the 2027 US spring-forward (Sunday 14 March, 02:00 -> 03:00): a 02:30 start is at 03:00 EDT.
    let w = window("America/New_York", "02:30", "04:00");
    let changes = w.changes(at("2027-03-14T05:00:00Z"), at("2027-03-14T12:00:00Z"), Caller::Anonymous);
    let times: Vec<String> = changes.iter().skip(1).map(|(t, _)| t.to_string()).collect();
    assert_eq!(times, ["2027-03-14T07:00:00Z", "2027-03-14T08:00:00Z"], "03:00 EDT to 04:00 EDT");
    // Every decision found by the edges is the decision at each minute in between.
    let (start, end) = (at("2027-03-13T00:00:00Z"), at("2027-03-16T00:00:00Z"));
    let changes = r.changes(start, end, caller);
    let mut t = start;
    while t < end {
        let expected = changes.iter().rev().find(|(c, _)| *c <= t).map(|(_, d)| *d);
        assert_eq!(Some(r.decide(t, caller)), expected, "{t}");
        t = t.checked_add(jiff::SignedDuration::from_mins(1)).unwrap();
    }
}
