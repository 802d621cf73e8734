//! Fuzz a number's routing rules as the API and the file take them: the first 8 bytes pick an instant
//! (2020–2036), the rest is the rules' JSON. Nothing may panic; rules that parse hold to their bounds, and
//! what `changes` finds over the next 3 days (the week strip's and the dashboard's "until") agrees with
//! `decide` at every change and at the middle of every stretch between them: no edge is missed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vocals::routing::rules::{Caller, MAX_RULES, Rules};

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let (seed, json) = data.split_at(8);
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(json) else { return };
    let Ok(rules) = Rules::parse(&value, |id| id.starts_with("ag_")) else { return };
    assert!(rules.0.len() <= MAX_RULES);
    // 2020-01-01 plus up to ~16 years, to the second.
    let offset = u64::from_le_bytes(seed.try_into().unwrap()) % (16 * 365 * 86_400);
    let Ok(start) = jiff::Timestamp::from_second(1_577_836_800 + offset as i64) else { return };
    let end = start.checked_add(jiff::SignedDuration::from_hours(72)).unwrap();
    for caller in [Caller::Number("+442071234567"), Caller::Number("+12125550100"), Caller::Anonymous, Caller::Other] {
        let changes = rules.changes(start, end, caller);
        assert_eq!(changes[0], (start, rules.decide(start, caller)));
        for (i, (at, decision)) in changes.iter().enumerate() {
            assert_eq!(rules.decide(*at, caller), *decision, "at {at}");
            let next = changes.get(i + 1).map_or(end, |(t, _)| *t);
            assert!(*at < next || (i + 1 == changes.len() && *at <= next), "changes in order");
            let middle = at.checked_add(next.duration_since(*at) / 2).unwrap();
            assert_eq!(rules.decide(middle, caller), *decision, "between {at} and {next}");
        }
    }
});
