//! Which agent answers a call. The dialed number is the Request-URI user when it is a phone number, else the To user,
//! else the Diversion user (a trunk's origination URI may carry a fixed user part: `docs/telecom.md`, Which number was
//! dialed), normalised to E.164. Numbers are looked up through [`NumberLookup`]: a [`NumberTable`] is built from the
//! config file's `[[numbers]]` and the store's numbers, and the [`Directory`] holds the current one, replaced whole
//! after every change. A lookup never waits on a database, and a call keeps the agent it was routed to (its `Arc`)
//! whatever later changes say: a reassignment takes effect on the next call.

pub mod rules;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use jiff::Timestamp;
pub use rules::{Caller, Decision, Rules};

use crate::agent::config::AgentConfig;
use crate::e164::E164;
use crate::media::recording::RecordMode;
use crate::sdp::SrtpPolicy;
use crate::sip::message::{HeaderName, Request, StatusCode};

/// What the number table says about a number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// Active: answered by this agent. `account_sid` is the Twilio account that owns the number, if linked.
    Agent {
        agent: Arc<AgentConfig>,
        account_sid: Option<String>,
        /// The number's own SRTP policy (`None`: the server's `media.srtp`).
        srtp: Option<SrtpPolicy>,
        /// The number's own word on recording (`None`: its agent's, else the server's).
        record: Option<RecordMode>,
    },
    /// Known, but no agent is assigned: calls are not answered.
    Unassigned,
    Unknown,
}

/// Which of a number's routes took a call: its default agent, or one of its rules.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Chosen {
    #[default]
    Default,
    /// `rules[i]`.
    Rule(usize),
}

impl Chosen {
    /// `default` or `rules[i]`, as the call record and the API say it.
    pub fn label(self) -> std::borrow::Cow<'static, str> {
        match self {
            Chosen::Default => "default".into(),
            Chosen::Rule(i) => format!("rules[{i}]").into(),
        }
    }
}

/// The number -> agent table, as routing sees it.
pub trait NumberLookup: Send + Sync {
    /// The number's default agent (its rules not applied).
    fn lookup(&self, number: &E164) -> Lookup;
    /// Who takes a call to `number` at `at` from `caller`: the first of the number's rules that matches, else
    /// its default.
    fn decide(&self, number: &E164, at: Timestamp, caller: Caller<'_>) -> (Lookup, Chosen) {
        let _ = (at, caller);
        (self.lookup(number), Chosen::Default)
    }
    /// Whether a call naming `account` (its `X-Twilio-AccountSid`, if it has one) may be taken at all
    /// (`sip.accounts`), for numbers that are not bound to an account of their own.
    fn account_allowed(&self, account: Option<&[u8]>) -> bool {
        let _ = account;
        true
    }
}

/// Which Twilio accounts' calls are taken (`sip.accounts`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum AccountPolicy {
    /// The accounts vocals knows: linked ones and those of configured or added numbers. While it knows none
    /// (a fresh server), any call; once it knows one, a call must name one of them.
    #[default]
    Known,
    /// Any call, whatever account it names or none (`sip.accounts = "any"`).
    Any,
    /// Only these accounts.
    Only(HashSet<String>),
}

/// A call routed to its agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Routed {
    pub dialed: E164,
    pub agent: Arc<AgentConfig>,
    /// The rule that chose the agent, or the number's default.
    pub chosen: Chosen,
    /// The number's own SRTP policy, if it has one.
    pub srtp: Option<SrtpPolicy>,
    /// The number's own word on recording, if it has one.
    pub record: Option<RecordMode>,
}

/// Why a call is not routed: the SIP status and a reason phrase for it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Reject {
    #[error("no phone number in the Request-URI, To or Diversion")]
    NoNumber,
    #[error("number {0} is not served here")]
    UnknownNumber(E164),
    #[error("number {0} has no agent")]
    NoAgent(E164),
    /// A rule of the number says the call is not answered (its `agent_id` is null).
    #[error("number {0} is not answered now (rules[{1}])")]
    NotAnswered(E164, usize),
    #[error("the call is for another Twilio account")]
    WrongAccount,
    #[error("the call names no Twilio account (X-Twilio-AccountSid), and this number takes only its own")]
    NoAccount,
}

impl Reject {
    /// 404 for a number that is not ours (Twilio does not fail over on it), 480 for one without an agent or
    /// whose rule says not now (Twilio fails over), 403 for another account's call.
    pub fn status(&self) -> StatusCode {
        match self {
            Reject::NoNumber | Reject::UnknownNumber(_) => StatusCode::NOT_FOUND,
            Reject::NoAgent(_) | Reject::NotAnswered(..) => StatusCode::TEMPORARILY_UNAVAILABLE,
            Reject::WrongAccount | Reject::NoAccount => StatusCode::FORBIDDEN,
        }
    }
}

/// The dialed number of an INVITE: Request-URI user if it is a phone number, else To, else Diversion.
pub fn dialed_number(invite: &Request) -> Option<E164> {
    let h = &invite.headers;
    E164::from_uri(&invite.uri)
        .ok()
        .or_else(|| h.to().ok().and_then(|to| E164::from_uri(&to.uri).ok()))
        .or_else(|| h.diversions().filter_map(Result::ok).find_map(|d| E164::from_uri(&d.uri).ok()))
}

/// The caller of an INVITE as rules see it: withheld when the From user is `anonymous` (or its host
/// `anonymous.invalid`, RFC 3323) or the call carries `Privacy: id` (RFC 3325); else the From user as an E.164
/// number (`+` or `00` or neither, visual separators dropped), written into `buf`: no allocation.
pub fn caller_of<'b>(invite: &Request, buf: &'b mut [u8; 16]) -> Caller<'b> {
    let h = &invite.headers;
    if let Some(privacy) = h.get(&HeaderName::new("Privacy"))
        && privacy.split(|b| *b == b';').any(|p| p.trim_ascii().eq_ignore_ascii_case(b"id"))
    {
        return Caller::Anonymous;
    }
    let Ok(from) = h.from() else { return Caller::Other };
    if let Some(sip) = from.uri.as_sip()
        && let crate::sip::message::Host::Name(host) = &sip.host
        && host.eq_ignore_ascii_case(b"anonymous.invalid")
    {
        return Caller::Anonymous;
    }
    let Some(user) = from.uri.user() else { return Caller::Other };
    let user = user.split(|b| *b == b';').next().unwrap_or_default();
    if user.eq_ignore_ascii_case(b"anonymous") {
        return Caller::Anonymous;
    }
    // The user part, unescaped, without separators, into buf after a `+`.
    buf[0] = b'+';
    let (mut n, mut i, mut plus) = (1, 0, false);
    while i < user.len() {
        let mut b = user[i];
        if b == b'%' && i + 2 < user.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(user[i + 1]), hex(user[i + 2])) {
                b = (h * 16 + l) as u8;
                i += 2;
            }
        }
        i += 1;
        match b {
            b'-' | b'.' | b'(' | b')' | b' ' => {}
            b'+' if n == 1 && !plus => plus = true,
            b'0'..=b'9' if n < buf.len() => {
                buf[n] = b;
                n += 1;
            }
            _ => return Caller::Other,
        }
    }
    // `00` is the international prefix when there is no `+`.
    let skip = if !plus && buf[1..n].starts_with(b"00") { 2 } else { 0 };
    buf.copy_within(1 + skip..n, 1);
    n -= skip;
    if !(8..=16).contains(&n) || buf[1] == b'0' {
        return Caller::Other;
    }
    match std::str::from_utf8(&buf[..n]) {
        Ok(number) => Caller::Number(number),
        Err(_) => Caller::Other,
    }
}

/// Routes an INVITE: finds the dialed number, decides its agent at `at` (the number's rules, else its
/// default), and checks the Twilio account the call names
/// (every Twilio customer shares the signalling edges and can point a trunk at us), failing
/// closed: a number bound to an account takes only calls naming that account (a call naming none is refused
/// too), and any other number, the fallback included, only calls the account policy allows.
pub fn route(invite: &Request, numbers: &dyn NumberLookup, at: Timestamp) -> Result<Routed, Reject> {
    let dialed = dialed_number(invite).ok_or(Reject::NoNumber)?;
    let mut buf = [0u8; 16];
    let (lookup, chosen) = numbers.decide(&dialed, at, caller_of(invite, &mut buf));
    match lookup {
        Lookup::Unknown => Err(Reject::UnknownNumber(dialed)),
        Lookup::Unassigned => match chosen {
            Chosen::Rule(i) => Err(Reject::NotAnswered(dialed, i)),
            Chosen::Default => Err(Reject::NoAgent(dialed)),
        },
        Lookup::Agent { agent, account_sid, srtp, record } => {
            let sent = invite.headers.get(&HeaderName::new("X-Twilio-AccountSid")).map(<[u8]>::trim_ascii);
            match (&account_sid, sent) {
                (Some(owner), Some(sent)) if sent != owner.as_bytes() => return Err(Reject::WrongAccount),
                (Some(_), None) => return Err(Reject::NoAccount),
                (Some(_), Some(_)) => {}
                (None, sent) if !numbers.account_allowed(sent) => {
                    return Err(if sent.is_some() { Reject::WrongAccount } else { Reject::NoAccount });
                }
                (None, _) => {}
            }
            Ok(Routed { dialed, agent, chosen, srtp, record })
        }
    }
}

/// A number's rules as routing keeps them: parsed, with each rule's agent resolved (`None`: not answered).
#[derive(Debug)]
pub struct NumberRules {
    pub rules: Rules,
    agents: Vec<Option<Arc<AgentConfig>>>,
    /// The rules' JSON, as stored (what two tables are compared by).
    json: serde_json::Value,
}

impl PartialEq for NumberRules {
    fn eq(&self, other: &NumberRules) -> bool {
        self.json == other.json && self.agents == other.agents
    }
}

impl Eq for NumberRules {}

impl NumberRules {
    /// Rules from their JSON, each naming an agent `agent` finds (by id in the store, by name in the file);
    /// a rule naming one it does not find is refused, with the field.
    pub fn new(
        json: &serde_json::Value,
        agent: impl Fn(&str) -> Option<Arc<AgentConfig>>,
    ) -> Result<NumberRules, rules::RuleError> {
        let rules = Rules::parse(json, |id| agent(id).is_some())?;
        let agents = rules.0.iter().map(|r| r.agent_id.as_deref().and_then(&agent)).collect();
        Ok(NumberRules { rules, agents, json: json.clone() })
    }

    /// The agent of rule `index` (`None`: not answered, or no such rule).
    pub fn agent(&self, index: usize) -> Option<&Arc<AgentConfig>> {
        self.agents.get(index).and_then(Option::as_ref)
    }
}

/// A number in the table.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    default: Option<Arc<AgentConfig>>,
    account_sid: Option<String>,
    srtp: Option<SrtpPolicy>,
    record: Option<RecordMode>,
    rules: Option<Arc<NumberRules>>,
}

impl Entry {
    fn lookup(&self, agent: Option<&Arc<AgentConfig>>) -> Lookup {
        match agent {
            Some(agent) => Lookup::Agent {
                agent: agent.clone(),
                account_sid: self.account_sid.clone(),
                srtp: self.srtp,
                record: self.record,
            },
            None => Lookup::Unassigned,
        }
    }

    fn decide(&self, at: Timestamp, caller: Caller<'_>) -> (Lookup, Chosen) {
        match self.rules.as_ref().map(|r| (r, r.rules.decide(at, caller))) {
            Some((rules, Decision::Rule { index, .. })) => (self.lookup(rules.agent(index)), Chosen::Rule(index)),
            _ => (self.lookup(self.default.as_ref()), Chosen::Default),
        }
    }
}

/// A number table: numbers with their agents, and the agent for numbers not in it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NumberTable {
    numbers: HashMap<E164, Entry>,
    /// The agent for numbers not in the table (`None`: they get 404).
    fallback: Option<Arc<AgentConfig>>,
    /// The fallback answers only while the table holds no number at all (the zero-configuration demo).
    fallback_while_empty: bool,
    /// The Twilio accounts vocals knows (linked, or owning a number), and whose calls it takes.
    known_accounts: HashSet<String>,
    accounts: AccountPolicy,
}

impl NumberTable {
    pub fn new() -> NumberTable {
        NumberTable::default()
    }

    /// Adds (or replaces) a number; `agent: None` makes it known but unassigned.
    pub fn insert(&mut self, number: E164, agent: Option<Arc<AgentConfig>>, account_sid: Option<String>) {
        if let Some(account) = &account_sid {
            self.known_accounts.insert(account.clone());
        }
        let entry = Entry { default: agent, account_sid, srtp: None, record: None, rules: None };
        self.numbers.insert(number, entry);
    }

    /// Gives a number in the table its own SRTP policy (over the server's `media.srtp`).
    pub fn set_srtp(&mut self, number: &E164, policy: Option<SrtpPolicy>) {
        if let Some(entry) = self.numbers.get_mut(number) {
            entry.srtp = policy;
        }
    }

    /// Gives a number in the table its own word on recording (over its agent's and `[recording] record`).
    pub fn set_record(&mut self, number: &E164, mode: Option<RecordMode>) {
        if let Some(entry) = self.numbers.get_mut(number) {
            entry.record = mode;
        }
    }

    /// Gives a number in the table its routing rules (none: its default agent takes every call).
    pub fn set_rules(&mut self, number: &E164, rules: Option<NumberRules>) {
        if let Some(entry) = self.numbers.get_mut(number) {
            entry.rules = rules.filter(|r| !r.rules.is_empty()).map(Arc::new);
        }
    }

    /// A number's rules, if it has some.
    pub fn rules(&self, number: &E164) -> Option<&Arc<NumberRules>> {
        self.numbers.get(number).and_then(|e| e.rules.as_ref())
    }

    /// Sends calls to numbers not in the table to `agent`.
    pub fn set_fallback(&mut self, agent: Option<Arc<AgentConfig>>) {
        self.fallback = agent;
        self.fallback_while_empty = false;
    }

    /// Sends calls to numbers not in the table to `agent` only while the table holds no number (the demo: the
    /// echo agent answers a fresh server, and stops once a real number is added).
    pub fn set_demo_fallback(&mut self, agent: Arc<AgentConfig>) {
        self.fallback = Some(agent);
        self.fallback_while_empty = true;
    }

    /// The agent that answers numbers not in the table now, if any.
    pub fn fallback(&self) -> Option<&Arc<AgentConfig>> {
        self.fallback.as_ref().filter(|_| !self.fallback_while_empty || self.numbers.is_empty())
    }

    /// Who answers numbers not in the table, in words for the dashboard's banner, and that agent's name (if
    /// one answers now).
    pub fn fallback_rule(&self) -> (Option<String>, String) {
        match (&self.fallback, self.fallback_while_empty) {
            (Some(agent), true) if self.numbers.is_empty() => (
                Some(agent.name.clone()),
                format!(
                    "answered by {} while no number is added (default_agent unset: the demo); refused 404 once one is",
                    agent.name
                ),
            ),
            (Some(_), true) => {
                (None, "refused 404 (default_agent unset: the demo answers only while no number is added)".into())
            }
            (Some(agent), false) => (Some(agent.name.clone()), format!("answered by {} (default_agent)", agent.name)),
            (None, _) => (None, "refused 404 (no default_agent answers them)".into()),
        }
    }

    /// `other`'s numbers replace this table's (the store's entries over the config file's); the accounts
    /// either knows are known.
    pub fn overlay(&mut self, other: NumberTable) {
        self.numbers.extend(other.numbers);
        self.known_accounts.extend(other.known_accounts);
    }

    /// A Twilio account vocals knows (a linked one).
    pub fn know_account(&mut self, account: String) {
        self.known_accounts.insert(account);
    }

    /// Which accounts' calls are taken (`sip.accounts`).
    pub fn set_account_policy(&mut self, policy: AccountPolicy) {
        self.accounts = policy;
    }

    /// The accounts a call must name one of; `None`: any call is taken.
    pub fn allowed_accounts(&self) -> Option<&HashSet<String>> {
        match &self.accounts {
            AccountPolicy::Any => None,
            AccountPolicy::Only(set) => Some(set),
            AccountPolicy::Known if self.known_accounts.is_empty() => None,
            AccountPolicy::Known => Some(&self.known_accounts),
        }
    }

    pub fn len(&self) -> usize {
        self.numbers.len()
    }

    /// The number's own entry, without the fallback for numbers not in the table: whether the server has it
    /// (a caller ID for the calls it places must be one of them).
    pub fn entry(&self, number: &E164) -> Option<Lookup> {
        self.numbers.get(number).map(|e| e.lookup(e.default.as_ref()))
    }

    pub fn is_empty(&self) -> bool {
        self.numbers.is_empty()
    }
}

impl NumberLookup for NumberTable {
    fn lookup(&self, number: &E164) -> Lookup {
        match (self.numbers.get(number), self.fallback()) {
            (Some(entry), _) => entry.lookup(entry.default.as_ref()),
            (None, Some(agent)) => Lookup::Agent { agent: agent.clone(), account_sid: None, srtp: None, record: None },
            (None, None) => Lookup::Unknown,
        }
    }

    fn decide(&self, number: &E164, at: Timestamp, caller: Caller<'_>) -> (Lookup, Chosen) {
        match self.numbers.get(number) {
            Some(entry) => entry.decide(at, caller),
            None => (self.lookup(number), Chosen::Default),
        }
    }

    fn account_allowed(&self, account: Option<&[u8]>) -> bool {
        match self.allowed_accounts() {
            None => true,
            Some(set) => account.and_then(|a| std::str::from_utf8(a).ok()).is_some_and(|a| set.contains(a)),
        }
    }
}

/// The current number table, shared by the SIP driver (which reads it once per INVITE: a read lock and a hash
/// lookup, no I/O) and whoever changes the numbers (which builds a whole new table and swaps it in).
#[derive(Debug, Default)]
pub struct Directory {
    current: RwLock<Arc<NumberTable>>,
}

impl Directory {
    pub fn new(table: NumberTable) -> Directory {
        Directory { current: RwLock::new(Arc::new(table)) }
    }

    /// Who answers numbers not in the current table (see [`NumberTable::fallback_rule`]).
    pub fn fallback_rule(&self) -> (Option<String>, String) {
        match self.current.read() {
            Ok(current) => current.fallback_rule(),
            Err(poisoned) => poisoned.into_inner().fallback_rule(),
        }
    }

    /// The number's own entry, without the fallback ([`NumberTable::entry`]).
    pub fn entry(&self, number: &E164) -> Option<Lookup> {
        match self.current.read() {
            Ok(current) => current.entry(number),
            Err(poisoned) => poisoned.into_inner().entry(number),
        }
    }

    /// The table calls are routed with now.
    pub fn current(&self) -> Arc<NumberTable> {
        match self.current.read() {
            Ok(current) => current.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The table calls are routed with from now on.
    pub fn replace(&self, table: NumberTable) {
        let table = Arc::new(table);
        match self.current.write() {
            Ok(mut current) => *current = table,
            Err(poisoned) => *poisoned.into_inner() = table,
        }
    }
}

impl NumberLookup for Directory {
    fn lookup(&self, number: &E164) -> Lookup {
        match self.current.read() {
            Ok(current) => current.lookup(number),
            Err(poisoned) => poisoned.into_inner().lookup(number),
        }
    }

    fn decide(&self, number: &E164, at: Timestamp, caller: Caller<'_>) -> (Lookup, Chosen) {
        match self.current.read() {
            Ok(current) => current.decide(number, at, caller),
            Err(poisoned) => poisoned.into_inner().decide(number, at, caller),
        }
    }

    fn account_allowed(&self, account: Option<&[u8]>) -> bool {
        match self.current.read() {
            Ok(current) => current.account_allowed(account),
            Err(poisoned) => poisoned.into_inner().account_allowed(account),
        }
    }
}

#[cfg(test)]
mod tests;
