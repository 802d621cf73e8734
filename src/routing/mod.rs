//! Which agent answers a call. The dialed number is the Request-URI user when it is a phone number, else the To user,
//! else the Diversion user (a trunk's origination URI may carry a fixed user part: `docs/telecom.md`, Which number was
//! dialed), normalised to E.164. Numbers are looked up through [`NumberLookup`]: a [`NumberTable`] is built from the
//! config file's `[[numbers]]` and the store's numbers, and the [`Directory`] holds the current one, replaced whole
//! after every change. A lookup never waits on a database, and a call keeps the agent it was routed to (its `Arc`)
//! whatever later changes say: a reassignment takes effect on the next call.

pub mod rules;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

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

/// The number -> agent table, as routing sees it.
pub trait NumberLookup: Send + Sync {
    fn lookup(&self, number: &E164) -> Lookup;
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
    #[error("the call is for another Twilio account")]
    WrongAccount,
    #[error("the call names no Twilio account (X-Twilio-AccountSid), and this number takes only its own")]
    NoAccount,
}

impl Reject {
    /// 404 for a number that is not ours (Twilio does not fail over on it), 480 for one without an agent
    /// (Twilio fails over), 403 for another account's call.
    pub fn status(&self) -> StatusCode {
        match self {
            Reject::NoNumber | Reject::UnknownNumber(_) => StatusCode::NOT_FOUND,
            Reject::NoAgent(_) => StatusCode::TEMPORARILY_UNAVAILABLE,
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

/// Routes an INVITE: finds the dialed number, looks it up, and checks the Twilio account the call names
/// (every Twilio customer shares the signalling edges and can point a trunk at us), failing
/// closed: a number bound to an account takes only calls naming that account (a call naming none is refused
/// too), and any other number, the fallback included, only calls the account policy allows.
pub fn route(invite: &Request, numbers: &dyn NumberLookup) -> Result<Routed, Reject> {
    let dialed = dialed_number(invite).ok_or(Reject::NoNumber)?;
    match numbers.lookup(&dialed) {
        Lookup::Unknown => Err(Reject::UnknownNumber(dialed)),
        Lookup::Unassigned => Err(Reject::NoAgent(dialed)),
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
            Ok(Routed { dialed, agent, srtp, record })
        }
    }
}

/// A number table: numbers with their agents, and the agent for numbers not in it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NumberTable {
    numbers: HashMap<E164, Lookup>,
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
        let entry = match agent {
            Some(agent) => Lookup::Agent { agent, account_sid, srtp: None, record: None },
            None => Lookup::Unassigned,
        };
        self.numbers.insert(number, entry);
    }

    /// Gives a number in the table its own SRTP policy (over the server's `media.srtp`).
    pub fn set_srtp(&mut self, number: &E164, policy: Option<SrtpPolicy>) {
        if let Some(Lookup::Agent { srtp, .. }) = self.numbers.get_mut(number) {
            *srtp = policy;
        }
    }

    /// Gives a number in the table its own word on recording (over its agent's and `[recording] record`).
    pub fn set_record(&mut self, number: &E164, mode: Option<RecordMode>) {
        if let Some(Lookup::Agent { record, .. }) = self.numbers.get_mut(number) {
            *record = mode;
        }
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
        self.numbers.get(number).cloned()
    }

    pub fn is_empty(&self) -> bool {
        self.numbers.is_empty()
    }
}

impl NumberLookup for NumberTable {
    fn lookup(&self, number: &E164) -> Lookup {
        match (self.numbers.get(number), self.fallback()) {
            (Some(entry), _) => entry.clone(),
            (None, Some(agent)) => Lookup::Agent { agent: agent.clone(), account_sid: None, srtp: None, record: None },
            (None, None) => Lookup::Unknown,
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

    fn account_allowed(&self, account: Option<&[u8]>) -> bool {
        match self.current.read() {
            Ok(current) => current.account_allowed(account),
            Err(poisoned) => poisoned.into_inner().account_allowed(account),
        }
    }
}

#[cfg(test)]
mod tests {
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
        let routed = route(&request(UDP), &table()).unwrap();
        assert_eq!(routed, Routed { dialed: number("+14155550123"), agent: echo(), srtp: None, record: None });
    }

    #[test]
    fn a_fixed_user_part_falls_back_to_diversion() {
        assert_eq!(dialed_number(&request(FIXED_USER)), Some(number("+14155550123")));
        assert_eq!(route(&request(FIXED_USER), &table()).unwrap().agent.name, "echo");
    }

    #[test]
    fn unknown_unassigned_and_foreign_calls_get_their_statuses() {
        let text = String::from_utf8(UDP.to_vec()).unwrap();
        let unknown = text.replace("+14155550123", "+14155550199");
        let err = route(&request(unknown.as_bytes()), &table()).unwrap_err();
        assert_eq!((err.status().as_u16(), err.to_string().as_str()), (404, "number +14155550199 is not served here"));
        let unassigned = text.replace("+14155550123", "+14155550124");
        assert_eq!(route(&request(unassigned.as_bytes()), &table()).unwrap_err().status().as_u16(), 480);
        let foreign = text.replace("ACbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "ACcccccccccccccccccccccccccccccccc");
        assert_eq!(route(&request(foreign.as_bytes()), &table()), Err(Reject::WrongAccount));
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
        let err = route(&request(without.as_bytes()), &table()).unwrap_err();
        assert_eq!((err, err_status(&without)), (Reject::NoAccount, 403));
        // 2. ... and one naming another account, as before.
        assert_eq!(route(&request(foreign(&text).as_bytes()), &table()), Err(Reject::WrongAccount));
        // 3. A number added without an account: only the accounts vocals knows (the other number's here).
        let mut numbers = table();
        numbers.insert(number("+14155550125"), Some(echo()), None);
        let unbound = to(&text, "+14155550125");
        assert!(route(&request(unbound.as_bytes()), &numbers).is_ok(), "a known account");
        assert_eq!(route(&request(foreign(&unbound).as_bytes()), &numbers), Err(Reject::WrongAccount));
        assert_eq!(route(&request(to(&without, "+14155550125").as_bytes()), &numbers), Err(Reject::NoAccount));
        // 4. The fallback agent: the same.
        numbers.set_fallback(Some(echo()));
        let fallback = to(&text, "+14155550199");
        assert!(route(&request(fallback.as_bytes()), &numbers).is_ok());
        assert_eq!(route(&request(foreign(&fallback).as_bytes()), &numbers), Err(Reject::WrongAccount));
        // A linked account is known even with no number of its own.
        numbers.know_account("ACcccccccccccccccccccccccccccccccc".into());
        assert!(route(&request(foreign(&fallback).as_bytes()), &numbers).is_ok());
        // sip.accounts: "any" takes every call to an unbound number; a list takes only its accounts.
        numbers.set_account_policy(AccountPolicy::Any);
        let stranger = fallback.replace("ACbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "ACdddddddddddddddddddddddddddddddd");
        assert!(route(&request(stranger.as_bytes()), &numbers).is_ok());
        numbers.set_account_policy(AccountPolicy::Only(["ACdddddddddddddddddddddddddddddddd".to_string()].into()));
        assert!(route(&request(stranger.as_bytes()), &numbers).is_ok());
        assert_eq!(route(&request(fallback.as_bytes()), &numbers), Err(Reject::WrongAccount));
        // A server that knows no account (the demo) takes calls naming none.
        let mut demo = NumberTable::new();
        demo.set_demo_fallback(echo());
        assert!(route(&request(to(&without, "+14155550199").as_bytes()), &demo).is_ok());
    }

    fn err_status(text: &str) -> u16 {
        route(&request(text.as_bytes()), &table()).unwrap_err().status().as_u16()
    }

    #[test]
    fn numbers_match_with_or_without_the_plus() {
        let text = String::from_utf8(UDP.to_vec()).unwrap().replace("sip:+14155550123@", "sip:14155550123@");
        assert_eq!(route(&request(text.as_bytes()), &table()).unwrap().agent.name, "echo");
    }

    #[test]
    fn a_call_without_any_phone_number_is_not_found() {
        let text = String::from_utf8(FIXED_USER.to_vec())
            .unwrap()
            .replace("Diversion: <sip:+14155550123@twilio.com>;reason=unconditional\r\n", "");
        assert_eq!(route(&request(text.as_bytes()), &table()), Err(Reject::NoNumber));
    }

    #[test]
    fn a_fallback_agent_takes_numbers_not_in_the_table_but_not_unassigned_ones() {
        let mut numbers = NumberTable::new();
        let known: E164 = "+14155550100".parse().unwrap();
        let other: E164 = "+14155550199".parse().unwrap();
        numbers.insert(known.clone(), None, None);
        assert_eq!(numbers.lookup(&other), Lookup::Unknown);
        numbers.set_fallback(Some(echo()));
        assert_eq!(
            numbers.lookup(&other),
            Lookup::Agent { agent: echo(), account_sid: None, srtp: None, record: None }
        );
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
}
