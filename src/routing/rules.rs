//! A number's routing rules (issue 26), sans-IO: which agent answers a call given when it comes and who calls,
//! decided once, when the INVITE arrives, from the rules read when the number was loaded. The first rule that
//! matches wins; when none does, the number's default agent answers.
//!
//! - `when`: an IANA time zone (jiff, with the system's tzdata and a bundled copy behind it), weekdays,
//!   `from`–`to` local times (a window may cross midnight), holiday dates or ranges. The local date of the
//!   call decides the day: a window crossing midnight covers that date's early hours up to `to` and its
//!   evening from `from` (so "Monday to Friday, 18:00 to 08:00" covers Monday 02:00).
//! - Daylight saving: window edges are instants, each local time taken at its first occurrence. A skipped hour
//!   never happens (a window starting at 02:30 on the spring-forward day starts at 03:00, when the clock
//!   arrives there), and a repeated hour is matched once: a window ending at 01:30 on the fall-back day ends at
//!   the first 01:30, so the second pass through 01:00–01:30 is outside it; a window holding the whole
//!   repeated hour (a night) holds both passes.
//! - `caller`: E.164 prefixes (`+44`) or `anonymous` (a withheld caller ID).
//! - `agent_id`: the agent, or `null`: the call is not answered (480, as an inactive number).
//!
//! Deciding allocates nothing: time zones are shared, the rules read-only.

use jiff::Timestamp;
use jiff::civil::{Date, DateTime, Time, Weekday};
use jiff::tz::{AmbiguousOffset, TimeZone};
use serde_json::Value;

/// Rules a number may have.
pub const MAX_RULES: usize = 32;
/// Dates (or ranges) a rule may list, and caller prefixes: what an INVITE checks stays small whatever a
/// request sends (a year of holidays fits; longer spans are ranges).
pub const MAX_DATES: usize = 64;
pub const MAX_PREFIXES: usize = 64;

/// A rule's schedule.
#[derive(Clone, Debug)]
pub struct Schedule {
    zone: TimeZone,
    /// Weekdays as bits (Monday = bit 0); all seven when `days` is not given.
    days: u8,
    /// `from`–`to`, local; `None`: all day.
    window: Option<(Time, Time)>,
    /// Inclusive date ranges; empty: any date.
    dates: Vec<(Date, Date)>,
}

/// Who a rule is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallerMatch {
    /// E.164 prefixes, `+` included.
    Prefixes(Vec<String>),
    /// A withheld caller ID.
    Anonymous,
}

/// The caller of a call, as rules see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caller<'a> {
    /// An E.164 number.
    Number(&'a str),
    /// Withheld (`anonymous` in From, or `Privacy: id`).
    Anonymous,
    /// Neither: a From that is not a phone number (`sip:alice@example.com`). No caller rule matches it.
    Other,
}

/// One rule.
#[derive(Clone, Debug)]
pub struct Rule {
    pub when: Option<Schedule>,
    pub caller: Option<CallerMatch>,
    /// `None`: the call is not answered.
    pub agent_id: Option<String>,
}

/// A number's rules, in order.
#[derive(Clone, Debug, Default)]
pub struct Rules(pub Vec<Rule>);

/// What the rules decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Decision<'a> {
    /// Rule `index` matched: its agent, or `None` (not answered).
    Rule { index: usize, agent_id: Option<&'a str> },
    /// No rule matched: the number's default agent.
    Default,
}

/// A rule the API or the file refuses, naming the field (`rules[2].when.zone`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleError {
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for RuleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

fn err(field: impl Into<String>, message: impl Into<String>) -> RuleError {
    RuleError { field: field.into(), message: message.into() }
}

impl Schedule {
    /// Whether the instant `at` is inside the schedule.
    pub fn contains(&self, at: Timestamp) -> bool {
        let local = self.zone.to_datetime(at);
        let date = local.date();
        if self.days & day_bit(date.weekday()) == 0 {
            return false;
        }
        if !self.dates.is_empty() && !self.dates.iter().any(|(a, b)| *a <= date && date <= *b) {
            return false;
        }
        let Some((from, to)) = self.window else { return true };
        let edge = |d: Date, t: Time| self.instant(d.to_datetime(t));
        let (midnight, next) = (edge(date, Time::midnight()), date.tomorrow().ok().map(|d| edge(d, Time::midnight())));
        let next = next.flatten();
        let inside = |start: Option<Timestamp>, end: Option<Timestamp>| {
            start.is_some_and(|s| s <= at) && end.is_none_or(|e| at < e)
        };
        if from < to {
            inside(edge(date, from), edge(date, to))
        } else {
            // Across midnight: this date's early hours up to `to`, and its evening from `from`.
            inside(midnight, edge(date, to)) || inside(edge(date, from), next)
        }
    }

    /// The instants in `[start, end]` where this schedule may start or stop holding: each local date's
    /// midnight, `from` and `to` (what [`Schedule::contains`] changes at, and nothing else).
    fn edges(&self, start: Timestamp, end: Timestamp, out: &mut Vec<Timestamp>) {
        let (Ok(first), Ok(last)) =
            (self.zone.to_datetime(start).date().yesterday(), self.zone.to_datetime(end).date().tomorrow())
        else {
            return;
        };
        let mut date = first;
        while date <= last {
            let (from, to) = self.window.unzip();
            for t in [Some(Time::midnight()), from, to].into_iter().flatten() {
                if let Some(i) = self.instant(date.to_datetime(t)).filter(|i| start < *i && *i <= end) {
                    out.push(i);
                }
            }
            let Ok(next) = date.tomorrow() else { break };
            date = next;
        }
    }

    /// The instant of a local time: a skipped one is when the clock gets past the gap (the transition), a
    /// repeated one its first occurrence.
    fn instant(&self, dt: DateTime) -> Option<Timestamp> {
        let ambiguous = self.zone.to_ambiguous_timestamp(dt);
        match ambiguous.offset() {
            AmbiguousOffset::Gap { .. } => {
                let before = ambiguous.earlier().ok()?;
                self.zone.following(before).next().map(|t| t.timestamp())
            }
            _ => ambiguous.earlier().ok(),
        }
    }
}

fn day_bit(d: Weekday) -> u8 {
    1 << (d.to_monday_zero_offset() as u8)
}

impl CallerMatch {
    pub fn matches(&self, caller: Caller<'_>) -> bool {
        match (self, caller) {
            (CallerMatch::Anonymous, Caller::Anonymous) => true,
            (CallerMatch::Prefixes(p), Caller::Number(n)) => p.iter().any(|p| n.starts_with(p.as_str())),
            _ => false,
        }
    }
}

impl Rules {
    /// The agent for a call at `at` from `caller`.
    pub fn decide(&self, at: Timestamp, caller: Caller<'_>) -> Decision<'_> {
        for (index, rule) in self.0.iter().enumerate() {
            let when = rule.when.as_ref().is_none_or(|s| s.contains(at));
            let who = rule.caller.as_ref().is_none_or(|c| c.matches(caller));
            if when && who {
                return Decision::Rule { index, agent_id: rule.agent_id.as_deref() };
            }
        }
        Decision::Default
    }

    /// What the rules decide at `start` for `caller`, then every change up to `end`, in order: the instants
    /// where another rule (or the default) takes over. Found from the schedules' edges (local midnights,
    /// `from` and `to`, daylight saving taken into account), not by stepping through time.
    pub fn changes(&self, start: Timestamp, end: Timestamp, caller: Caller<'_>) -> Vec<(Timestamp, Decision<'_>)> {
        let mut edges = Vec::new();
        for schedule in self.0.iter().filter_map(|r| r.when.as_ref()) {
            schedule.edges(start, end, &mut edges);
        }
        edges.sort_unstable();
        edges.dedup();
        let mut out = vec![(start, self.decide(start, caller))];
        for t in edges {
            let d = self.decide(t, caller);
            if out.last().is_some_and(|(_, last)| *last != d) {
                out.push((t, d));
            }
        }
        out
    }

    /// Whether some rule names `agent_id`.
    pub fn names(&self, agent_id: &str) -> bool {
        self.0.iter().any(|r| r.agent_id.as_deref() == Some(agent_id))
    }

    /// Whether some rule answers calls (names an agent).
    pub fn answers(&self) -> bool {
        self.0.iter().any(|r| r.agent_id.is_some())
    }

    /// The time zone of the first rule that has a schedule: a local time given without one (the dry run's
    /// `at`) is read in it.
    pub fn zone(&self) -> Option<&TimeZone> {
        self.0.iter().find_map(|r| r.when.as_ref().map(|w| &w.zone))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Rules from their JSON (the API's and the file's shape); `known` says whether an agent id exists.
    pub fn parse(value: &Value, known: impl Fn(&str) -> bool) -> Result<Rules, RuleError> {
        let list = match value {
            Value::Null => return Ok(Rules::default()),
            Value::Array(list) => list,
            _ => return Err(err("rules", "a list of rules")),
        };
        if list.len() > MAX_RULES {
            return Err(err("rules", format!("{} rules: at most {MAX_RULES}", list.len())));
        }
        let mut rules = Vec::with_capacity(list.len());
        for (i, v) in list.iter().enumerate() {
            rules.push(rule(&format!("rules[{i}]"), v, &known)?);
        }
        Ok(Rules(rules))
    }
}

fn rule(at: &str, v: &Value, known: &impl Fn(&str) -> bool) -> Result<Rule, RuleError> {
    let Value::Object(o) = v else { return Err(err(at, "a rule is an object")) };
    if let Some(k) = o.keys().find(|k| !matches!(k.as_str(), "when" | "caller" | "agent_id")) {
        return Err(err(format!("{at}.{k}"), "not a rule field (when, caller, agent_id)"));
    }
    let agent_id = match o.get("agent_id") {
        Some(Value::Null) => None,
        Some(Value::String(id)) if known(id) => Some(id.clone()),
        Some(Value::String(id)) => return Err(err(format!("{at}.agent_id"), format!("no agent {id}"))),
        Some(_) => return Err(err(format!("{at}.agent_id"), "an agent id, or null (not answered)")),
        None => return Err(err(format!("{at}.agent_id"), "required: an agent id, or null (not answered)")),
    };
    let when = o.get("when").map(|w| schedule(&format!("{at}.when"), w)).transpose()?;
    let caller = o.get("caller").map(|c| caller(&format!("{at}.caller"), c)).transpose()?;
    if when.is_none() && caller.is_none() {
        return Err(err(at, "a rule needs when, caller or both (without either it would always match)"));
    }
    Ok(Rule { when, caller, agent_id })
}

fn schedule(at: &str, v: &Value) -> Result<Schedule, RuleError> {
    let Value::Object(o) = v else { return Err(err(at, "an object: zone, days, from, to, dates")) };
    if let Some(k) = o.keys().find(|k| !matches!(k.as_str(), "zone" | "days" | "from" | "to" | "dates")) {
        return Err(err(format!("{at}.{k}"), "not a schedule field (zone, days, from, to, dates)"));
    }
    let zone = match o.get("zone") {
        Some(Value::String(name)) => TimeZone::get(name).map_err(|_| {
            err(format!("{at}.zone"), format!("{name} is not an IANA time zone (e.g. America/New_York)"))
        })?,
        _ => return Err(err(format!("{at}.zone"), "required: an IANA time zone, e.g. America/New_York")),
    };
    let days = match o.get("days") {
        None => 0x7f,
        Some(Value::Array(list)) if !list.is_empty() => {
            let mut bits = 0u8;
            for (i, d) in list.iter().enumerate() {
                let bit = match d.as_str() {
                    Some("mon") => 0,
                    Some("tue") => 1,
                    Some("wed") => 2,
                    Some("thu") => 3,
                    Some("fri") => 4,
                    Some("sat") => 5,
                    Some("sun") => 6,
                    _ => return Err(err(format!("{at}.days[{i}]"), "mon, tue, wed, thu, fri, sat or sun")),
                };
                bits |= 1 << bit;
            }
            bits
        }
        Some(_) => return Err(err(format!("{at}.days"), "a list of days: mon … sun")),
    };
    let time = |key: &str| -> Result<Option<Time>, RuleError> {
        match o.get(key) {
            None => Ok(None),
            Some(Value::String(t)) => {
                clock_time(t).map(Some).ok_or_else(|| err(format!("{at}.{key}"), "HH:MM, 00:00 to 23:59"))
            }
            Some(_) => Err(err(format!("{at}.{key}"), "HH:MM")),
        }
    };
    let window = match (time("from")?, time("to")?) {
        (None, None) => None,
        (Some(f), Some(t)) if f == t => return Err(err(format!("{at}.to"), "the same as from: an empty window")),
        (Some(f), Some(t)) => Some((f, t)),
        (Some(_), None) => return Err(err(format!("{at}.to"), "required with from")),
        (None, Some(_)) => return Err(err(format!("{at}.from"), "required with to")),
    };
    let mut dates = Vec::new();
    match o.get("dates") {
        None => {}
        Some(Value::Array(list)) if list.len() > MAX_DATES => {
            return Err(err(
                format!("{at}.dates"),
                format!("{} dates: at most {MAX_DATES} (a range counts once)", list.len()),
            ));
        }
        Some(Value::Array(list)) if !list.is_empty() => {
            for (i, d) in list.iter().enumerate() {
                let field = || format!("{at}.dates[{i}]");
                let text = d.as_str().ok_or_else(|| err(field(), "YYYY-MM-DD or YYYY-MM-DD/YYYY-MM-DD"))?;
                let (a, b) = text.split_once('/').unwrap_or((text, text));
                let parse = |s: &str| s.parse::<Date>().ok();
                match (parse(a), parse(b)) {
                    (Some(a), Some(b)) if a <= b => dates.push((a, b)),
                    (Some(_), Some(_)) => return Err(err(field(), "a range ends before it starts")),
                    _ => return Err(err(field(), "YYYY-MM-DD or YYYY-MM-DD/YYYY-MM-DD")),
                }
            }
        }
        Some(_) => return Err(err(format!("{at}.dates"), "a list of dates")),
    }
    Ok(Schedule { zone, days, window, dates })
}

/// `HH:MM` (24 h).
fn clock_time(t: &str) -> Option<Time> {
    let (h, m) = t.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (i8, i8) = (h.parse().ok()?, m.parse().ok()?);
    Time::new(h, m, 0, 0).ok()
}

fn caller(at: &str, v: &Value) -> Result<CallerMatch, RuleError> {
    let list: Vec<&Value> = match v {
        Value::String(_) => vec![v],
        Value::Array(l) if !l.is_empty() => l.iter().collect(),
        _ => return Err(err(at, "a prefix such as +44, a list of them, or anonymous")),
    };
    if list.len() == 1 && list[0].as_str() == Some("anonymous") {
        return Ok(CallerMatch::Anonymous);
    }
    if list.len() > MAX_PREFIXES {
        return Err(err(at, format!("{} prefixes: at most {MAX_PREFIXES}", list.len())));
    }
    let mut prefixes = Vec::with_capacity(list.len());
    for (i, p) in list.iter().enumerate() {
        match p.as_str() {
            Some(p)
                if p.len() >= 2
                    && p.len() <= 16
                    && p.starts_with('+')
                    && p[1..].bytes().all(|b| b.is_ascii_digit()) =>
            {
                prefixes.push(p.to_string())
            }
            Some("anonymous") => {
                return Err(err(format!("{at}[{i}]"), "anonymous is a rule of its own, not in a list"));
            }
            _ => return Err(err(format!("{at}[{i}]"), "an E.164 prefix: + and 1 to 15 digits")),
        }
    }
    Ok(CallerMatch::Prefixes(prefixes))
}

#[cfg(test)]
mod tests;
