//! The ordered header list of a message, with typed accessors for the headers vocals acts on. Entries keep
//! the received order; list headers (RFC 3261 §7.3.1) hold one element per entry. Content-Length is not an
//! entry: it is framing, derived from the body when printing.

use bytes::Bytes;

use super::error::ParseError;
use super::header_name::HeaderName;
use super::typed::{CSeq, CallId, Contact, HeaderError, MaxForwards, MediaType, NameAddr, Reason, Via};

/// One header field (one element of a list header).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Header {
    pub name: HeaderName,
    pub value: Bytes,
}

/// The header fields of a message, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Headers(Vec<Header>);

impl Headers {
    pub fn new() -> Headers {
        Headers(Vec::new())
    }

    pub(crate) fn from_vec(v: Vec<Header>) -> Headers {
        Headers(v)
    }

    pub fn with_capacity(n: usize) -> Headers {
        Headers(Vec::with_capacity(n))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Header> {
        self.0.iter()
    }

    /// Appends a header.
    pub fn push(&mut self, name: HeaderName, value: impl Into<Bytes>) {
        self.0.push(Header { name, value: value.into() });
    }

    /// Inserts a header before all others (a Via we add, a Route we prepend).
    pub fn push_front(&mut self, name: HeaderName, value: impl Into<Bytes>) {
        self.0.insert(0, Header { name, value: value.into() });
    }

    /// The first value of `name`.
    pub fn get(&self, name: &HeaderName) -> Option<&Bytes> {
        self.0.iter().find(|h| &h.name == name).map(|h| &h.value)
    }

    /// Every value of `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a Bytes> + 'a {
        self.0.iter().filter(move |h| &h.name == name).map(|h| &h.value)
    }

    pub fn contains(&self, name: &HeaderName) -> bool {
        self.0.iter().any(|h| &h.name == name)
    }

    /// Removes every `name` header.
    pub fn remove(&mut self, name: &HeaderName) {
        self.0.retain(|h| &h.name != name);
    }

    /// Replaces every `name` header with one value, kept at the position of the first.
    pub fn set(&mut self, name: HeaderName, value: impl Into<Bytes>) {
        let value = value.into();
        match self.0.iter().position(|h| h.name == name) {
            Some(i) => {
                self.0[i].value = value;
                let mut seen = false;
                self.0.retain(|h| {
                    let dup = h.name == name && seen;
                    seen |= h.name == name;
                    !dup
                });
            }
            None => self.push(name, value),
        }
    }

    /// Copies every `name` header of `other`, in order, to the end of this list.
    pub fn copy_from(&mut self, other: &Headers, name: &HeaderName) {
        self.0.extend(other.0.iter().filter(|h| &h.name == name).cloned());
    }

    /// Every Via, top first.
    pub fn vias(&self) -> impl Iterator<Item = Result<Via, ParseError>> + '_ {
        self.typed_all(HeaderName::Via, "Via", Via::parse)
    }

    /// The topmost Via: the one naming the previous hop (§18.2.2).
    pub fn top_via(&self) -> Result<Via, ParseError> {
        self.typed(HeaderName::Via, "Via", Via::parse)
    }

    pub fn from(&self) -> Result<NameAddr, ParseError> {
        self.typed(HeaderName::From, "From", NameAddr::parse)
    }

    pub fn to(&self) -> Result<NameAddr, ParseError> {
        self.typed(HeaderName::To, "To", NameAddr::parse)
    }

    pub fn call_id(&self) -> Result<CallId, ParseError> {
        self.typed(HeaderName::CallId, "Call-ID", CallId::parse)
    }

    pub fn cseq(&self) -> Result<CSeq, ParseError> {
        self.typed(HeaderName::CSeq, "CSeq", CSeq::parse)
    }

    pub fn max_forwards(&self) -> Result<Option<MaxForwards>, ParseError> {
        self.typed_opt(HeaderName::MaxForwards, "Max-Forwards", |v| MaxForwards::parse(v))
    }

    pub fn content_type(&self) -> Result<Option<MediaType>, ParseError> {
        self.typed_opt(HeaderName::ContentType, "Content-Type", MediaType::parse)
    }

    pub fn contacts(&self) -> impl Iterator<Item = Result<Contact, ParseError>> + '_ {
        self.typed_all(HeaderName::Contact, "Contact", Contact::parse)
    }

    /// Record-Route entries in received order (§12.1.1: the UAS route set is this order).
    pub fn record_routes(&self) -> impl Iterator<Item = Result<NameAddr, ParseError>> + '_ {
        self.typed_all(HeaderName::RecordRoute, "Record-Route", NameAddr::parse)
    }

    pub fn routes(&self) -> impl Iterator<Item = Result<NameAddr, ParseError>> + '_ {
        self.typed_all(HeaderName::Route, "Route", NameAddr::parse)
    }

    pub fn diversions(&self) -> impl Iterator<Item = Result<NameAddr, ParseError>> + '_ {
        self.typed_all(HeaderName::Diversion, "Diversion", NameAddr::parse)
    }

    pub fn p_asserted_identities(&self) -> impl Iterator<Item = Result<NameAddr, ParseError>> + '_ {
        self.typed_all(HeaderName::PAssertedIdentity, "P-Asserted-Identity", NameAddr::parse)
    }

    pub fn reasons(&self) -> impl Iterator<Item = Result<Reason, ParseError>> + '_ {
        self.typed_all(HeaderName::Reason, "Reason", Reason::parse)
    }

    /// The elements of a token-list header (Allow, Supported, Require, Proxy-Require, Unsupported ...).
    pub fn tokens<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a Bytes> + 'a {
        self.get_all(name)
    }

    /// Whether a token-list header holds `token` (case-insensitive).
    pub fn has_token(&self, name: &HeaderName, token: &str) -> bool {
        self.get_all(name).any(|v| v.eq_ignore_ascii_case(token.as_bytes()))
    }

    /// `X-*` extension headers, in order (passed on to agents, TWILIO.md §1).
    pub fn x_headers(&self) -> impl Iterator<Item = &Header> {
        self.0.iter().filter(|h| h.name.is_x_header())
    }

    fn typed<T>(
        &self,
        name: HeaderName,
        label: &'static str,
        parse: fn(&Bytes) -> Result<T, HeaderError>,
    ) -> Result<T, ParseError> {
        let v = self.get(&name).ok_or(ParseError::MissingHeader(label))?;
        parse(v).map_err(|e| ParseError::HeaderValue { name: label, reason: e.0 })
    }

    fn typed_opt<T>(
        &self,
        name: HeaderName,
        label: &'static str,
        parse: fn(&Bytes) -> Result<T, HeaderError>,
    ) -> Result<Option<T>, ParseError> {
        self.get(&name).map(|v| parse(v).map_err(|e| ParseError::HeaderValue { name: label, reason: e.0 })).transpose()
    }

    fn typed_all<'a, T: 'a>(
        &'a self,
        name: HeaderName,
        label: &'static str,
        parse: fn(&Bytes) -> Result<T, HeaderError>,
    ) -> impl Iterator<Item = Result<T, ParseError>> + 'a {
        self.0
            .iter()
            .filter(move |h| h.name == name)
            .map(move |h| parse(&h.value).map_err(|e| ParseError::HeaderValue { name: label, reason: e.0 }))
    }
}

impl<'a> IntoIterator for &'a Headers {
    type Item = &'a Header;
    type IntoIter = std::slice::Iter<'a, Header>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers() -> Headers {
        let mut h = Headers::new();
        h.push(HeaderName::Via, "SIP/2.0/UDP a;branch=z9hG4bK1");
        h.push(HeaderName::Via, "SIP/2.0/UDP b;branch=z9hG4bK2");
        h.push(HeaderName::new("X-Twilio-CallSid"), "CA1");
        h.push(HeaderName::Allow, "INVITE");
        h.push(HeaderName::Allow, "ACK");
        h
    }

    #[test]
    fn typed_accessors_read_in_order() {
        let h = headers();
        assert_eq!(h.top_via().unwrap().branch().unwrap(), "z9hG4bK1");
        assert_eq!(h.vias().count(), 2);
        assert!(h.has_token(&HeaderName::Allow, "ack"));
        assert_eq!(h.x_headers().count(), 1);
        assert_eq!(h.from(), Err(ParseError::MissingHeader("From")));
        assert_eq!(h.max_forwards(), Ok(None));
    }

    #[test]
    fn set_keeps_the_first_position_and_drops_the_rest() {
        let mut h = headers();
        h.set(HeaderName::Via, "SIP/2.0/TCP c");
        assert_eq!(h.len(), 4);
        assert_eq!(h.iter().next().unwrap().value, "SIP/2.0/TCP c");
        h.remove(&HeaderName::Allow);
        assert_eq!(h.len(), 2);
        h.push_front(HeaderName::Route, "<sip:p;lr>");
        assert_eq!(h.iter().next().unwrap().name, HeaderName::Route);
    }

    #[test]
    fn bad_values_surface_as_header_value_errors() {
        let mut h = Headers::new();
        h.push(HeaderName::CSeq, "x INVITE");
        assert!(matches!(h.cseq(), Err(ParseError::HeaderValue { name: "CSeq", .. })));
    }
}
