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
            /// Any other header, spelled as received. (Boxed so a name is two words: headers are stored by the
            /// dozen per message.)
            Other(Box<Bytes>),
        }

        impl HeaderName {
            /// The canonical full name (RFC spelling), or the received spelling for `Other`.
            pub fn as_bytes(&self) -> &[u8] {
                match self {
                    $( HeaderName::$variant => $canonical.as_bytes(), )*
                    HeaderName::Other(b) => &b[..],
                }
            }

            /// Full or compact name, any case; `None` for an unknown name. A const-built open-addressing
            /// table keyed by a hash of the case-folded words gives the candidate; names are compared eight
            /// bytes at a time against their pre-folded spelling.
            fn lookup(name: &[u8]) -> Option<HeaderName> {
                static ALL: &[(&str, HeaderName)] = &[ $( ($canonical, HeaderName::$variant), )* ];
                const NAMES: &[&str] = &[ $( $canonical, )* ];
                static TABLE: [u8; TABLE_SIZE] = build_table(NAMES);
                static FOLDED: [[u64; 3]; NAMES.len()] = fold_all(NAMES);
                if name.len() == 1 {
                    let c = name[0].to_ascii_lowercase();
                    $( $( if c == $compact { return Some(HeaderName::$variant); } )? )*
                    return None;
                }
                if name.len() > 24 {
                    return None;
                }
                let words = fold_words_runtime(name);
                let mut slot = slot_of(&words, name.len());
                loop {
                    let i = usize::from(TABLE[slot]);
                    if i == 0 {
                        return None;
                    }
                    if FOLDED[i - 1] == words && ALL[i - 1].0.len() == name.len() {
                        return Some(ALL[i - 1].1.clone());
                    }
                    slot = (slot + 1) % TABLE_SIZE;
                }
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

const TABLE_SIZE: usize = 256;

/// The table slot for a name's folded words: a multiplicative hash of the words and the length.
#[inline(always)]
const fn slot_of(words: &[u64; 3], len: usize) -> usize {
    let mixed = (words[0] ^ words[1].rotate_left(21) ^ words[2].rotate_left(42) ^ len as u64)
        .wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (mixed >> 56) as usize % TABLE_SIZE
}

/// A name of at most 24 bytes folded with `| 0x20`, zero-padded, as three little-endian words. On token
/// characters (received names are checked to be tokens) that folding is exact: it lower-cases letters and maps
/// no other token character onto a letter.
const fn fold_words(name: &[u8]) -> [u64; 3] {
    let mut words = [0u64; 3];
    let mut i = 0;
    while i < name.len() && i < 24 {
        words[i / 8] |= ((name[i] | 0x20) as u64) << ((i % 8) * 8);
        i += 1;
    }
    words
}

/// [`fold_words`] for a received name of at most 24 bytes. Full words are loaded whole; a partial last word is
/// loaded as the name's last eight bytes and shifted, so no byte is handled alone (names under eight bytes
/// excepted).
#[inline]
fn fold_words_runtime(name: &[u8]) -> [u64; 3] {
    const FOLD: u64 = 0x2020_2020_2020_2020;
    let len = name.len();
    let load = |at: usize| u64::from_le_bytes(name[at..at + 8].try_into().unwrap_or_default());
    if len < 8 {
        let w = name.iter().rev().fold(0u64, |w, &b| (w << 8) | u64::from(b));
        let valid = if len == 0 { 0 } else { u64::MAX >> (64 - 8 * len) };
        return [w | (FOLD & valid), 0, 0];
    }
    let mut words = [0u64; 3];
    let full = len / 8;
    for (i, word) in words.iter_mut().enumerate().take(full) {
        *word = load(i * 8) | FOLD;
    }
    let rest = len % 8;
    if rest != 0 {
        // The last `rest` bytes are the top bytes of the word ending at `len`.
        words[full] = (load(len - 8) >> (8 * (8 - rest))) | (FOLD >> (8 * (8 - rest)));
    }
    words
}

const fn fold_all<const N: usize>(names: &[&str]) -> [[u64; 3]; N] {
    let mut out = [[0u64; 3]; N];
    let mut i = 0;
    while i < N {
        out[i] = fold_words(names[i].as_bytes());
        i += 1;
    }
    out
}

/// Open addressing: slot -> 1 + index into the name list, 0 = empty. Built at compile time.
const fn build_table(names: &[&str]) -> [u8; TABLE_SIZE] {
    assert!(names.len() < TABLE_SIZE / 2 && names.len() < 255);
    let mut table = [0u8; TABLE_SIZE];
    let mut i = 0;
    while i < names.len() {
        let mut slot = slot_of(&fold_words(names[i].as_bytes()), names[i].len());
        while table[slot] != 0 {
            slot = (slot + 1) % TABLE_SIZE;
        }
        table[slot] = (i + 1) as u8;
        i += 1;
    }
    table
}

impl HeaderName {
    /// Resolves a received name, already checked to be a token. `src` is the buffer `name` was sliced from, so
    /// an unknown name costs no copy.
    pub(crate) fn from_received(src: &Bytes, name: &[u8]) -> HeaderName {
        Self::lookup(name).unwrap_or_else(|| HeaderName::Other(Box::new(src.slice_ref(name))))
    }

    /// Resolves a name given as text (full or compact form, any case).
    pub fn new(name: &str) -> HeaderName {
        let b = name.as_bytes();
        let token = b.iter().all(|&c| crate::sip::message::scan::is_token(c));
        let known = if token { Self::lookup(b) } else { None };
        known.unwrap_or_else(|| HeaderName::Other(Box::new(Bytes::copy_from_slice(b))))
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
        assert_eq!(HeaderName::new("q"), HeaderName::Other(Box::new(Bytes::from_static(b"q"))));
    }

    #[test]
    fn every_known_name_resolves_in_any_case() {
        for name in
            ["Accept", "Call-ID", "CSeq", "Max-Forwards", "P-Asserted-Identity", "Request-Disposition", "RSeq", "RAck"]
        {
            let h = HeaderName::new(name);
            assert!(!matches!(h, HeaderName::Other(_)), "{name}");
            assert_eq!(h.as_bytes(), name.as_bytes());
            assert_eq!(HeaderName::new(&name.to_lowercase()), h);
            assert_eq!(HeaderName::new(&name.to_uppercase()), h);
        }
        assert!(matches!(HeaderName::new("X-A-Name-Longer-Than-Thirty-Two-Bytes"), HeaderName::Other(_)));
        for name in ["a-b", "Call-IDx", "Content-Lengt", "P-Asserted-Identity-Extra-Long"] {
            assert_eq!(
                fold_words_runtime(&name.as_bytes()[..name.len().min(24)]),
                fold_words(name.as_bytes()),
                "{name}"
            );
        }
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
