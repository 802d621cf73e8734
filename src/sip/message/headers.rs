//! The ordered header list of a message, with typed accessors for the headers vocals acts on. Entries keep
//! the received order, one per header line; a list header's line (RFC 3261 §7.3.1) may hold several
//! comma-separated elements, which `get_all` and the typed accessors yield one by one, splitting on demand.
//! Content-Length is not an entry: it is framing, derived from the body when printing.

use bytes::Bytes;

use super::error::ParseError;
use super::header_name::HeaderName;
use super::scan::elements;
use super::typed::{
    CSeq, CallId, Contact, Event, HeaderError, MaxForwards, MediaType, NameAddr, Reason, ReferTo, SubscriptionState,
    Via,
};

/// One header line as received (for a list header, possibly several comma-separated elements), as
/// [`Headers::iter`] shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header<'a> {
    pub name: &'a HeaderName,
    pub value: &'a [u8],
}

/// The header fields of a message, in order. Received values are ranges of the received buffer (one
/// reference count per message, however many headers); values added later are owned.
#[derive(Clone, Debug, Default)]
pub struct Headers {
    buf: Bytes,
    entries: Vec<Entry>,
}

#[derive(Clone, Debug)]
struct Entry {
    name: HeaderName,
    value: Value,
}

#[derive(Clone, Debug)]
enum Value {
    /// `buf[start..end]`.
    Buf(u32, u32),
    /// A value not in the buffer (added, or unfolded); boxed so an entry is four words.
    Owned(Box<Bytes>),
}

/// A typed parser: the buffer a value lives in (for zero-copy slices) and the value.
type TypedParse<T> = fn(&Bytes, &[u8]) -> Result<T, HeaderError>;

impl Headers {
    pub fn new() -> Headers {
        Headers::default()
    }

    /// An empty list whose received values will be ranges of `buf`.
    pub(crate) fn over(buf: Bytes, capacity: usize) -> Headers {
        Headers { buf, entries: Vec::with_capacity(capacity) }
    }

    /// An empty list sharing `other`'s buffer, so [`Headers::copy_from`] copies ranges, not bytes.
    pub fn sharing(other: &Headers) -> Headers {
        Headers { buf: other.buf.clone(), entries: Vec::with_capacity(other.entries.len() + 4) }
    }

    /// Appends a value that is `range` of the buffer this list was made [`over`](Headers::over).
    pub(crate) fn push_range(&mut self, name: HeaderName, range: std::ops::Range<usize>) {
        debug_assert!(range.end <= self.buf.len());
        // Ranges fit u32: messages are capped far below 4 GiB (Limits::max_message).
        self.entries.push(Entry { name, value: Value::Buf(range.start as u32, range.end as u32) });
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = Header<'_>> + '_ {
        self.entries.iter().map(|e| Header { name: &e.name, value: self.slice(e) })
    }

    /// Appends a header.
    pub fn push(&mut self, name: HeaderName, value: impl Into<Bytes>) {
        self.entries.push(Entry { name, value: Value::Owned(Box::new(value.into())) });
    }

    /// Inserts a header before all others (a Via we add, a Route we prepend).
    pub fn push_front(&mut self, name: HeaderName, value: impl Into<Bytes>) {
        self.entries.insert(0, Entry { name, value: Value::Owned(Box::new(value.into())) });
    }

    /// The first value of `name`: for a list header, its first element.
    pub fn get(&self, name: &HeaderName) -> Option<&[u8]> {
        self.entries.iter().filter(|e| &e.name == name).find_map(|e| {
            let value = self.slice(e);
            if e.name.is_list() { elements(value).next() } else { Some(value) }
        })
    }

    /// The first value of `name` as shared bytes (for a list header, its first element).
    pub fn get_bytes(&self, name: &HeaderName) -> Option<Bytes> {
        let e = self.entries.iter().find(|e| &e.name == name)?;
        let first = self.get(name)?;
        Some(self.source(e).slice_ref(first))
    }

    /// Every value of `name`, in order; list headers one element at a time.
    pub fn get_all<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.values_of(name)
    }

    /// The values of `name`: list headers split into elements.
    fn values_of<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.entries_of(name).flat_map(move |e| {
            let value = self.slice(e);
            let (whole, list) = if e.name.is_list() { (None, Some(elements(value))) } else { (Some(value), None) };
            whole.into_iter().chain(list.into_iter().flatten())
        })
    }

    fn entries_of<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a Entry> + 'a {
        self.entries.iter().filter(move |e| &e.name == name)
    }

    pub fn contains(&self, name: &HeaderName) -> bool {
        self.entries.iter().any(|e| &e.name == name)
    }

    /// Removes every `name` header.
    pub fn remove(&mut self, name: &HeaderName) {
        self.entries.retain(|e| &e.name != name);
    }

    /// Replaces every `name` header with one value, kept at the position of the first.
    pub fn set(&mut self, name: HeaderName, value: impl Into<Bytes>) {
        let value = Value::Owned(Box::new(value.into()));
        match self.entries.iter().position(|e| e.name == name) {
            Some(i) => {
                self.entries[i].value = value;
                let mut seen = false;
                self.entries.retain(|e| {
                    let dup = e.name == name && seen;
                    seen |= e.name == name;
                    !dup
                });
            }
            None => self.entries.push(Entry { name, value }),
        }
    }

    /// Replaces the first value of `name` (for a list header, its first element; the line's other elements stay
    /// after it, in order).
    pub fn replace_first(&mut self, name: &HeaderName, value: impl Into<Bytes>) {
        let Some(i) = self.entries.iter().position(|e| &e.name == name) else { return };
        let rest: Vec<Bytes> = if name.is_list() {
            let src = self.source(&self.entries[i]).clone();
            elements(self.slice(&self.entries[i])).skip(1).map(|e| src.slice_ref(e)).collect()
        } else {
            Vec::new()
        };
        self.entries[i].value = Value::Owned(Box::new(value.into()));
        for (n, element) in rest.into_iter().enumerate() {
            self.entries.insert(i + 1 + n, Entry { name: name.clone(), value: Value::Owned(Box::new(element)) });
        }
    }

    /// Copies every `name` header of `other`, in order, to the end of this list; ranges when both lists share
    /// one buffer (see [`Headers::sharing`]), shared slices otherwise.
    pub fn copy_from(&mut self, other: &Headers, name: &HeaderName) {
        let same_buf = self.buf.as_ptr() == other.buf.as_ptr() && self.buf.len() == other.buf.len();
        for e in other.entries.iter().filter(|e| &e.name == name) {
            let value = match &e.value {
                Value::Buf(..) if same_buf => e.value.clone(),
                _ => Value::Owned(Box::new(other.bytes(e))),
            };
            self.entries.push(Entry { name: e.name.clone(), value });
        }
    }

    fn slice<'a>(&'a self, e: &'a Entry) -> &'a [u8] {
        match &e.value {
            Value::Buf(start, end) => &self.buf[*start as usize..*end as usize],
            Value::Owned(b) => &b[..],
        }
    }

    fn bytes(&self, e: &Entry) -> Bytes {
        match &e.value {
            Value::Buf(start, end) => self.buf.slice(*start as usize..*end as usize),
            Value::Owned(b) => (**b).clone(),
        }
    }

    /// The buffer a value lives in, for parsers that keep zero-copy slices of it.
    fn source<'a>(&'a self, e: &'a Entry) -> &'a Bytes {
        match &e.value {
            Value::Buf(..) => &self.buf,
            Value::Owned(b) => b,
        }
    }

    /// Every Via, top first.
    pub fn vias(&self) -> impl Iterator<Item = Result<Via, ParseError>> + '_ {
        self.typed_all(HeaderName::Via, "Via", Via::parse_in)
    }

    /// The topmost Via: the one naming the previous hop (§18.2.2).
    pub fn top_via(&self) -> Result<Via, ParseError> {
        self.typed(HeaderName::Via, "Via", Via::parse_in)
    }

    pub fn from(&self) -> Result<NameAddr, ParseError> {
        self.typed(HeaderName::From, "From", NameAddr::parse_in)
    }

    pub fn to(&self) -> Result<NameAddr, ParseError> {
        self.typed(HeaderName::To, "To", NameAddr::parse_in)
    }

    pub fn call_id(&self) -> Result<CallId, ParseError> {
        self.typed(HeaderName::CallId, "Call-ID", CallId::parse_in)
    }

    pub fn cseq(&self) -> Result<CSeq, ParseError> {
        self.typed(HeaderName::CSeq, "CSeq", CSeq::parse_in)
    }

    pub fn max_forwards(&self) -> Result<Option<MaxForwards>, ParseError> {
        self.typed_opt(HeaderName::MaxForwards, "Max-Forwards", |_, v| MaxForwards::parse(v))
    }

    pub fn content_type(&self) -> Result<Option<MediaType>, ParseError> {
        self.typed_opt(HeaderName::ContentType, "Content-Type", MediaType::parse_in)
    }

    pub fn contacts(&self) -> impl Iterator<Item = Result<Contact, ParseError>> + '_ {
        self.typed_all(HeaderName::Contact, "Contact", Contact::parse_in)
    }

    /// Record-Route entries in received order (§12.1.1: the UAS route set is this order).
    pub fn record_routes(&self) -> impl Iterator<Item = Result<NameAddr, ParseError>> + '_ {
        self.typed_all(HeaderName::RecordRoute, "Record-Route", NameAddr::parse_in)
    }

    pub fn routes(&self) -> impl Iterator<Item = Result<NameAddr, ParseError>> + '_ {
        self.typed_all(HeaderName::Route, "Route", NameAddr::parse_in)
    }

    pub fn diversions(&self) -> impl Iterator<Item = Result<NameAddr, ParseError>> + '_ {
        self.typed_all(HeaderName::Diversion, "Diversion", NameAddr::parse_in)
    }

    pub fn p_asserted_identities(&self) -> impl Iterator<Item = Result<NameAddr, ParseError>> + '_ {
        self.typed_all(HeaderName::PAssertedIdentity, "P-Asserted-Identity", NameAddr::parse_in)
    }

    pub fn reasons(&self) -> impl Iterator<Item = Result<Reason, ParseError>> + '_ {
        self.typed_all(HeaderName::Reason, "Reason", Reason::parse_in)
    }

    /// Event (RFC 6665 §8.2.1): what a NOTIFY is about.
    pub fn event(&self) -> Result<Option<Event>, ParseError> {
        self.typed_opt(HeaderName::Event, "Event", Event::parse_in)
    }

    /// Subscription-State (RFC 6665 §8.2.3): where the subscription a NOTIFY reports on stands.
    pub fn subscription_state(&self) -> Result<Option<SubscriptionState>, ParseError> {
        self.typed_opt(HeaderName::SubscriptionState, "Subscription-State", SubscriptionState::parse_in)
    }

    /// Refer-To (RFC 3515 §2.1): the target of a REFER.
    pub fn refer_to(&self) -> Result<Option<ReferTo>, ParseError> {
        self.typed_opt(HeaderName::ReferTo, "Refer-To", ReferTo::parse_in)
    }

    /// The elements of a token-list header (Allow, Supported, Require, Proxy-Require, Unsupported ...).
    pub fn tokens<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.get_all(name)
    }

    /// Whether a token-list header holds `token` (case-insensitive).
    pub fn has_token(&self, name: &HeaderName, token: &str) -> bool {
        self.get_all(name).any(|v| v.eq_ignore_ascii_case(token.as_bytes()))
    }

    /// `X-*` extension headers, in order (passed on to agents: `docs/telecom.md`, What the agent is told).
    pub fn x_headers(&self) -> impl Iterator<Item = Header<'_>> + '_ {
        self.iter().filter(|h| h.name.is_x_header())
    }

    fn typed<T>(&self, name: HeaderName, label: &'static str, parse: TypedParse<T>) -> Result<T, ParseError> {
        let e = self.entries.iter().find(|e| e.name == name).ok_or(ParseError::MissingHeader(label))?;
        let value = self.slice(e);
        let first = if name.is_list() { elements(value).next().unwrap_or_default() } else { value };
        parse(self.source(e), first).map_err(|err| ParseError::HeaderValue { name: label, reason: err.0 })
    }

    fn typed_opt<T>(
        &self,
        name: HeaderName,
        label: &'static str,
        parse: TypedParse<T>,
    ) -> Result<Option<T>, ParseError> {
        match self.typed(name, label, parse) {
            Err(ParseError::MissingHeader(_)) => Ok(None),
            other => other.map(Some),
        }
    }

    fn typed_all<'a, T: 'a>(
        &'a self,
        name: HeaderName,
        label: &'static str,
        parse: TypedParse<T>,
    ) -> impl Iterator<Item = Result<T, ParseError>> + 'a {
        self.entries.iter().filter(move |e| e.name == name).flat_map(move |e| {
            let src = self.source(e);
            elements(self.slice(e))
                .map(move |v| parse(src, v).map_err(|err| ParseError::HeaderValue { name: label, reason: err.0 }))
        })
    }
}

/// Equal when the same names carry the same values in the same order, wherever the bytes live.
impl PartialEq for Headers {
    fn eq(&self, other: &Headers) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for Headers {}

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
        assert_eq!(h.iter().next().unwrap().value, b"SIP/2.0/TCP c");
        h.remove(&HeaderName::Allow);
        assert_eq!(h.len(), 2);
        h.push_front(HeaderName::Route, "<sip:p;lr>");
        assert_eq!(h.iter().next().unwrap().name, &HeaderName::Route);
    }

    #[test]
    fn an_entry_is_four_words_so_a_message_s_table_fits_the_allocator_s_fast_path() {
        assert!(std::mem::size_of::<Entry>() <= 32, "{}", std::mem::size_of::<Entry>());
        assert!(std::mem::size_of::<HeaderName>() <= 16);
    }

    #[test]
    fn replacing_the_first_element_keeps_the_rest_of_its_line() {
        let mut h = Headers::new();
        h.push(HeaderName::Via, "SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/UDP b;branch=z9hG4bK2");
        h.push(HeaderName::Via, "SIP/2.0/UDP c;branch=z9hG4bK3");
        h.replace_first(&HeaderName::Via, "SIP/2.0/UDP a;branch=z9hG4bK1;received=192.0.2.1");
        let vias: Vec<_> = h.get_all(&HeaderName::Via).map(|v| String::from_utf8_lossy(v).into_owned()).collect();
        assert_eq!(
            vias,
            [
                "SIP/2.0/UDP a;branch=z9hG4bK1;received=192.0.2.1",
                "SIP/2.0/UDP b;branch=z9hG4bK2",
                "SIP/2.0/UDP c;branch=z9hG4bK3"
            ]
        );
    }

    #[test]
    fn bad_values_surface_as_header_value_errors() {
        let mut h = Headers::new();
        h.push(HeaderName::CSeq, "x INVITE");
        assert!(matches!(h.cseq(), Err(ParseError::HeaderValue { name: "CSeq", .. })));
    }
}
