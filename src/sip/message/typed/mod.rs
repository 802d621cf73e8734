//! Typed views of the header fields vocals acts on. Each type parses from a header value (zero-copy slices of
//! the received bytes), prints back to canonical bytes, and round-trips: `parse(print(parse(v))) ==
//! parse(v)`. Values are parsed on demand from `Headers`; the mandatory ones are also checked when a message
//! is parsed, so a parsed message's typed accessors do not fail.

mod cseq;
mod media_type;
mod name_addr;
mod reason;
mod via;

pub use cseq::{CSeq, CallId, MaxForwards};
pub use media_type::MediaType;
pub use name_addr::{Contact, DisplayName, NameAddr};
pub(crate) use name_addr::{NameAddrView, check_contact};
pub use reason::Reason;
pub(crate) use via::ViaView;
pub use via::{Transport, Via};

/// Why a header value did not parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct HeaderError(pub &'static str);

impl From<super::uri::UriError> for HeaderError {
    fn from(e: super::uri::UriError) -> Self {
        HeaderError(e.0)
    }
}
