//! Header field names: the ones vocals knows (with their RFC 3261 §7.3.3 compact forms) as an enum, every
//! other name kept verbatim. Lookup is case-insensitive and allocation-free.

use std::fmt;

use bytes::Bytes;

macro_rules! header_names {
    ($( $variant:ident => $canonical:literal $(, compact $compact:literal)? $(, list $list:tt)? ; )*) => {
        /// A header field name. Names compare case-insensitively, unknown ones included.
        #[derive(Clone, Debug)]
        pub enum HeaderName {
            $( $variant, )*
            /// Any other header, spelled as received.
            Other(Bytes),
        }

        impl HeaderName {
            /// The canonical full name (RFC spelling), or the received spelling for `Other`.
            pub fn as_bytes(&self) -> &[u8] {
                match self {
                    $( HeaderName::$variant => $canonical.as_bytes(), )*
                    HeaderName::Other(b) => b,
                }
            }

            /// Full or compact name, any case; `None` for an unknown name.
            fn lookup(name: &[u8]) -> Option<HeaderName> {
                if name.len() == 1 {
                    let c = name[0].to_ascii_lowercase();
                    $( $( if c == $compact { return Some(HeaderName::$variant); } )? )*
                    return None;
                }
                $( if name.len() == $canonical.len() && name.eq_ignore_ascii_case($canonical.as_bytes()) {
                    return Some(HeaderName::$variant);
                } )*
                None
            }

            /// Whether a value of this header is a comma-separated list whose elements vocals splits into
            /// separate entries (RFC 3261 §7.3.1).
            pub fn is_list(&self) -> bool {
                match self {
                    $( $( HeaderName::$variant => { let _ = stringify!($list); true } )? )*
                    _ => false,
                }
            }
        }
    };
}

header_names! {
    Accept => "Accept", list y;
    AcceptContact => "Accept-Contact", compact b'a', list y;
    AcceptEncoding => "Accept-Encoding", list y;
    AcceptLanguage => "Accept-Language", list y;
    AlertInfo => "Alert-Info", list y;
    Allow => "Allow", list y;
    AllowEvents => "Allow-Events", compact b'u', list y;
    AuthenticationInfo => "Authentication-Info";
    Authorization => "Authorization";
    CallId => "Call-ID", compact b'i';
    CallInfo => "Call-Info", list y;
    Contact => "Contact", compact b'm', list y;
    ContentDisposition => "Content-Disposition";
    ContentEncoding => "Content-Encoding", compact b'e', list y;
    ContentLanguage => "Content-Language", list y;
    ContentLength => "Content-Length", compact b'l';
    ContentType => "Content-Type", compact b'c';
    CSeq => "CSeq";
    Date => "Date";
    Diversion => "Diversion", list y;
    ErrorInfo => "Error-Info", list y;
    Event => "Event", compact b'o';
    Expires => "Expires";
    From => "From", compact b'f';
    Identity => "Identity", compact b'y';
    IdentityInfo => "Identity-Info", compact b'n';
    InReplyTo => "In-Reply-To", list y;
    MaxForwards => "Max-Forwards";
    MimeVersion => "MIME-Version";
    MinExpires => "Min-Expires";
    MinSe => "Min-SE";
    Organization => "Organization";
    PAssertedIdentity => "P-Asserted-Identity", list y;
    PEarlyMedia => "P-Early-Media", list y;
    PPreferredIdentity => "P-Preferred-Identity", list y;
    Priority => "Priority";
    Privacy => "Privacy";
    ProxyAuthenticate => "Proxy-Authenticate";
    ProxyAuthorization => "Proxy-Authorization";
    ProxyRequire => "Proxy-Require", list y;
    RAck => "RAck";
    Reason => "Reason", list y;
    RecordRoute => "Record-Route", list y;
    ReferTo => "Refer-To", compact b'r';
    ReferredBy => "Referred-By", compact b'b';
    RejectContact => "Reject-Contact", compact b'j', list y;
    ReplyTo => "Reply-To";
    RequestDisposition => "Request-Disposition", compact b'd', list y;
    Require => "Require", list y;
    RetryAfter => "Retry-After";
    Route => "Route", list y;
    RSeq => "RSeq";
    Server => "Server";
    SessionExpires => "Session-Expires", compact b'x';
    Subject => "Subject", compact b's';
    SubscriptionState => "Subscription-State";
    Supported => "Supported", compact b'k', list y;
    Timestamp => "Timestamp";
    To => "To", compact b't';
    Unsupported => "Unsupported", list y;
    UserAgent => "User-Agent";
    Via => "Via", compact b'v', list y;
    Warning => "Warning", list y;
    WwwAuthenticate => "WWW-Authenticate";
}

impl HeaderName {
    /// Resolves a received name. `src` is the buffer `name` was sliced from, so an unknown name costs no copy.
    pub(crate) fn from_received(src: &Bytes, name: &[u8]) -> HeaderName {
        Self::lookup(name).unwrap_or_else(|| HeaderName::Other(src.slice_ref(name)))
    }

    /// Resolves a name given as text (full or compact form, any case).
    pub fn new(name: &str) -> HeaderName {
        Self::lookup(name.as_bytes()).unwrap_or_else(|| HeaderName::Other(Bytes::copy_from_slice(name.as_bytes())))
    }

    /// Whether this is an extension header `X-...` that vocals passes on to agents.
    pub fn is_x_header(&self) -> bool {
        matches!(self, HeaderName::Other(b) if b.len() > 2 && b[..2].eq_ignore_ascii_case(b"x-"))
    }

    /// Case-insensitive comparison with a name given as text.
    pub fn is(&self, name: &str) -> bool {
        self.as_bytes().eq_ignore_ascii_case(name.as_bytes())
    }

    /// The name as text, lossy for non-UTF-8 names of unknown headers.
    pub fn as_str(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(self.as_bytes())
    }
}

impl PartialEq for HeaderName {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (HeaderName::Other(a), HeaderName::Other(b)) => a.eq_ignore_ascii_case(b),
            (a, b) => std::mem::discriminant(a) == std::mem::discriminant(b),
        }
    }
}

impl Eq for HeaderName {}

impl std::hash::Hash for HeaderName {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        std::mem::discriminant(self).hash(state);
        if let HeaderName::Other(b) = self {
            for c in b.iter() {
                state.write_u8(c.to_ascii_lowercase());
            }
        }
    }
}

impl fmt::Display for HeaderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_compact_form_resolves() {
        let expect = [
            ("i", HeaderName::CallId),
            ("m", HeaderName::Contact),
            ("f", HeaderName::From),
            ("t", HeaderName::To),
            ("v", HeaderName::Via),
            ("l", HeaderName::ContentLength),
            ("c", HeaderName::ContentType),
            ("k", HeaderName::Supported),
            ("s", HeaderName::Subject),
            ("e", HeaderName::ContentEncoding),
            ("o", HeaderName::Event),
            ("u", HeaderName::AllowEvents),
            ("r", HeaderName::ReferTo),
            ("b", HeaderName::ReferredBy),
            ("x", HeaderName::SessionExpires),
            ("y", HeaderName::Identity),
            ("a", HeaderName::AcceptContact),
            ("j", HeaderName::RejectContact),
            ("d", HeaderName::RequestDisposition),
            ("n", HeaderName::IdentityInfo),
        ];
        for (short, name) in expect {
            assert_eq!(HeaderName::new(short), name, "{short}");
            assert_eq!(HeaderName::new(&short.to_uppercase()), name, "{short}");
        }
        assert_eq!(HeaderName::new("q"), HeaderName::Other(Bytes::from_static(b"q")));
    }

    #[test]
    fn names_are_case_insensitive_and_print_canonically() {
        assert_eq!(HeaderName::new("call-id"), HeaderName::CallId);
        assert_eq!(HeaderName::new("CSEQ").as_bytes(), b"CSeq");
        assert_eq!(HeaderName::new("www-authenticate").as_bytes(), b"WWW-Authenticate");
    }

    #[test]
    fn unknown_names_keep_their_spelling() {
        let n = HeaderName::new("X-Twilio-CallSid");
        assert_eq!(n.as_bytes(), b"X-Twilio-CallSid");
        assert!(n.is_x_header());
        assert!(n.is("x-twilio-callsid"));
        assert_eq!(n, HeaderName::new("x-twilio-callsid"), "unknown names compare case-insensitively");
        assert_ne!(n, HeaderName::new("X-Twilio-AccountSid"));
        assert!(!HeaderName::Via.is_x_header());
    }

    #[test]
    fn list_headers_are_marked() {
        assert!(HeaderName::Via.is_list() && HeaderName::RecordRoute.is_list() && HeaderName::Allow.is_list());
        assert!(!HeaderName::Identity.is_list() && !HeaderName::Date.is_list());
        assert!(!HeaderName::new("X-Custom").is_list());
    }
}
