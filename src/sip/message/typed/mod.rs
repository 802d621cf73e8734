//! Typed views of the header fields and bodies vocals acts on, one per file. Each type parses from a header
//! value or a body (zero-copy slices of the received bytes where it can), prints back to canonical bytes, and
//! round-trips: `parse(print(parse(v))) == parse(v)`. Hostile input is an error value, never a panic. Header
//! values are parsed on demand from `Headers`; the mandatory ones are also checked when a message is parsed,
//! so a parsed message's typed accessors do not fail.
//!
//! Headers: CSeq, Call-ID, Max-Forwards, Content-Type, name-addr headers, Reason, Via, Event and
//! Subscription-State (RFC 6665), Refer-To (RFC 3515), Session-Expires and Min-SE (RFC 4028).
//! Bodies: `message/sipfrag` (RFC 3420), `application/dtmf-relay` and `application/dtmf` (SIP INFO
//! DTMF).

mod cseq;
mod dtmf;
mod dtmf_relay;
mod event;
mod media_type;
mod name_addr;
mod reason;
mod refer_to;
mod session_expires;
mod sipfrag;
mod subscription_state;
mod via;

pub use cseq::{CSeq, CallId, MaxForwards};
pub use dtmf::Dtmf;
pub use dtmf_relay::{DtmfRelay, MAX_DTMF_RELAY};
pub use event::Event;
pub use media_type::MediaType;
pub use name_addr::{Contact, DisplayName, NameAddr};
pub(crate) use name_addr::{NameAddrView, check_contact};
pub use reason::Reason;
pub use refer_to::ReferTo;
pub use session_expires::{Refresher, SessionExpires, parse_min_se};
pub use sipfrag::{MAX_SIPFRAG, MAX_SIPFRAG_HEADERS, Sipfrag, StartLine as SipfragStart};
pub use subscription_state::{SubState, SubscriptionState};
pub(crate) use via::ViaView;
pub use via::{Transport, Via};

/// Why a header value did not parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct HeaderError(pub &'static str);

/// Why a body did not parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BodyError(pub &'static str);

impl From<super::uri::UriError> for HeaderError {
    fn from(e: super::uri::UriError) -> Self {
        HeaderError(e.0)
    }
}
