//! Subscription-State (RFC 6665 §8.2.3, grammar §8.4): where a subscription stands, in every NOTIFY:
//! `active;expires=60`, `terminated;reason=noresource`.

use bytes::{BufMut, Bytes, BytesMut};

use super::HeaderError;
use crate::sip::message::params::{ParamStyle, Params, parse_params};
use crate::sip::message::scan::{is_token, trim_wsp};

/// A Subscription-State value.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SubscriptionState {
    pub state: SubState,
    /// `reason`, `expires`, `retry-after` and any other parameter, as received.
    pub params: Params,
}

/// `substate-value`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SubState {
    Active,
    Pending,
    Terminated,
    /// `extension-substate`: a token RFC 6665 does not name (treated as `pending` would be, §4.1.3, by whoever
    /// acts on it).
    Other(Bytes),
}

impl SubscriptionState {
    pub fn parse(src: &Bytes) -> Result<SubscriptionState, HeaderError> {
        Self::parse_in(src, src)
    }

    /// Parses `s`, a subslice of `src`.
    pub fn parse_in(src: &Bytes, s: &[u8]) -> Result<SubscriptionState, HeaderError> {
        let s = trim_wsp(s);
        let len = s.iter().take_while(|&&b| is_token(b)).count();
        if len == 0 {
            return Err(HeaderError("must start with a state (active, pending, terminated)"));
        }
        let value = &s[..len];
        let state = if value.eq_ignore_ascii_case(b"active") {
            SubState::Active
        } else if value.eq_ignore_ascii_case(b"pending") {
            SubState::Pending
        } else if value.eq_ignore_ascii_case(b"terminated") {
            SubState::Terminated
        } else {
            SubState::Other(src.slice_ref(value))
        };
        let (params, rest) = parse_params(src, &s[len..], ParamStyle::Header).map_err(HeaderError)?;
        if !rest.is_empty() {
            return Err(HeaderError("unexpected character after the parameters"));
        }
        Ok(SubscriptionState { state, params })
    }

    pub fn new(state: SubState) -> SubscriptionState {
        SubscriptionState { state, params: Params::new() }
    }

    /// The subscription is over: no NOTIFY follows this one (RFC 6665 §4.1.3).
    pub fn is_terminated(&self) -> bool {
        self.state == SubState::Terminated
    }

    /// `reason` (`noresource`, `timeout`, `rejected` ...), for a terminated subscription.
    pub fn reason(&self) -> Option<&Bytes> {
        self.params.value("reason")
    }

    /// `expires`, in seconds: how long the subscription has left.
    pub fn expires(&self) -> Option<u32> {
        self.seconds("expires")
    }

    /// `retry-after`, in seconds: when the subscriber may try again.
    pub fn retry_after(&self) -> Option<u32> {
        self.seconds("retry-after")
    }

    pub fn encode(&self, out: &mut BytesMut) {
        out.put_slice(match &self.state {
            SubState::Active => b"active",
            SubState::Pending => b"pending",
            SubState::Terminated => b"terminated",
            SubState::Other(token) => token,
        });
        self.params.encode(out);
    }

    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(32);
        self.encode(&mut out);
        out.freeze()
    }

    /// A `delta-seconds` parameter.
    fn seconds(&self, name: &str) -> Option<u32> {
        std::str::from_utf8(self.params.value(name)?).ok()?.parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<SubscriptionState, HeaderError> {
        SubscriptionState::parse(&Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn twilios_states_parse_and_round_trip() {
        let active = parse("active;expires=60").unwrap();
        assert_eq!((&active.state, active.expires(), active.is_terminated()), (&SubState::Active, Some(60), false));
        let done = parse(" Terminated ; reason=noresource ").unwrap();
        assert!(done.is_terminated());
        assert_eq!(done.reason().unwrap(), "noresource");
        assert_eq!(&done.to_bytes()[..], b"terminated;reason=noresource");
        for s in [active, done] {
            assert_eq!(SubscriptionState::parse(&s.to_bytes()).unwrap(), s);
        }
    }

    #[test]
    fn other_states_and_parameters_are_kept() {
        let s = parse("waiting;retry-after=30;x=\"y z\"").unwrap();
        assert_eq!(s.state, SubState::Other(Bytes::from_static(b"waiting")));
        assert_eq!(s.retry_after(), Some(30));
        assert!(!s.is_terminated());
        assert_eq!(SubscriptionState::parse(&s.to_bytes()).unwrap(), s);
        assert_eq!(&SubscriptionState::new(SubState::Pending).to_bytes()[..], b"pending");
    }

    #[test]
    fn malformed_states_are_refused() {
        for bad in ["", ";reason=timeout", "terminated junk", "terminated;", "terminated;reason=\"x", "terminatedé"] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse("active;expires=99999999999").unwrap().expires(), None, "out of range: no value");
        assert_eq!(parse("active;expires=soon").unwrap().expires(), None);
    }
}
