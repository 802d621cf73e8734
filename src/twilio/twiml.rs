//! The TwiML that vocals runs for a call it places: `<Connect><Stream>` (a bidirectional Media Stream to an
//! agent, with its `<Parameter>`s) or `<Hangup/>`. Read with quick-xml; anything outside that subset is an
//! error that names the element or attribute, with Twilio's code:
//!
//! - 12100 (Document parse failure): not well-formed XML, a DOCTYPE, an entity other than the five predefined
//!   ones (so no entity expansion), a root other than `<Response>`;
//! - 12200 (Schema validation): a verb or noun vocals does not run (`<Say>`, `<Dial>`, `<Stream>` outside
//!   `<Connect>` ...), several verbs, an attribute that is unknown or that vocals cannot honour, a missing or
//!   non-WebSocket `url`, more than [`MAX_PARAMETERS`] parameters;
//! - 11750 (TwiML response body too large): a document over [`MAX_DOCUMENT`] bytes, Twilio's 64 kB.
//!
//! An empty `<Response/>` is [`Twiml::Hangup`]: Twilio ends a call when its TwiML runs out. A `<Hangup/>` after
//! the `<Connect>` is accepted for the same reason (the call ends when the stream does either way).

use std::fmt;

use quick_xml::XmlVersion;
use quick_xml::events::{BytesStart, Event};
use quick_xml::{Reader, events::attributes::Attribute};

/// Largest document read, in bytes (Twilio refuses TwiML over 64 kB with 11750).
pub const MAX_DOCUMENT: usize = 64 * 1024;
/// Most `<Parameter>`s in a `<Stream>` (Twilio's Stream resource takes `Parameter1` to `Parameter99`).
pub const MAX_PARAMETERS: usize = 99;

/// Twilio's "Document parse failure".
pub const PARSE_FAILURE: u32 = 12100;
/// Twilio's "Schema validation warning": valid XML that is not TwiML vocals runs.
pub const SCHEMA_VALIDATION: u32 = 12200;
/// Twilio's "TwiML response body too large".
pub const TOO_LARGE: u32 = 11750;

/// What a call does once answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Twiml {
    /// `<Connect><Stream url=…>`: bridge the call to the agent's WebSocket.
    Connect(StreamTwiml),
    /// `<Hangup/>` (or an empty `<Response/>`): end the call.
    Hangup,
}

/// `<Stream url="wss://…" name="…">` with its `<Parameter name value/>`s, in document order (they become the
/// `start` message's `customParameters`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamTwiml {
    pub url: String,
    pub name: Option<String>,
    pub parameters: Vec<(String, String)>,
}

/// Why a document is not TwiML vocals runs: Twilio's code and a message naming the element or problem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TwimlError {
    pub code: u32,
    pub message: String,
}

impl fmt::Display for TwimlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (TwiML error {})", self.message, self.code)
    }
}

impl std::error::Error for TwimlError {}

fn parse_failure(message: impl Into<String>) -> TwimlError {
    TwimlError { code: PARSE_FAILURE, message: message.into() }
}

fn schema(message: impl Into<String>) -> TwimlError {
    TwimlError { code: SCHEMA_VALIDATION, message: message.into() }
}

/// Reads a TwiML document (see the module docs for what is accepted).
pub fn parse(xml: &str) -> Result<Twiml, TwimlError> {
    if xml.len() > MAX_DOCUMENT {
        return Err(TwimlError {
            code: TOO_LARGE,
            message: format!("TwiML is {} bytes; the limit is {MAX_DOCUMENT}", xml.len()),
        });
    }
    let mut p = Parser { reader: Reader::from_str(xml) };
    p.reader.config_mut().check_comments = true;
    p.document()
}

/// One element's start, as read: its name and whether it was `<X/>` (nothing more to read).
struct Open<'a> {
    start: BytesStart<'a>,
    empty: bool,
}

impl Open<'_> {
    fn name(&self) -> String {
        self.start.name().as_ref().to_string()
    }
}

/// What came next inside an element.
enum Item<'a> {
    Child(Open<'a>),
    /// The element's own end tag.
    End,
}

struct Parser<'a> {
    reader: Reader<&'a [u8]>,
}

impl<'a> Parser<'a> {
    fn event(&mut self) -> Result<Event<'a>, TwimlError> {
        self.reader.read_event().map_err(|e| {
            parse_failure(format!("TwiML is not well-formed XML at byte {}: {e}", self.reader.error_position()))
        })
    }

    /// The prolog and `<Response>`, then nothing but comments and white space.
    fn document(&mut self) -> Result<Twiml, TwimlError> {
        let mut first = true;
        let root = loop {
            let event = self.event()?;
            match event {
                Event::Decl(_) if first => {}
                Event::Decl(_) => return Err(parse_failure("the XML declaration must come first in the document")),
                Event::Start(start) => break Open { start, empty: false },
                Event::Empty(start) => break Open { start, empty: true },
                Event::Eof => return Err(parse_failure("TwiML is empty: expected a <Response> element")),
                other => self.misc(other, "before <Response>")?,
            }
            first = false;
        };
        if root.start.name().as_ref() != "Response" {
            return Err(parse_failure(format!("the root element is <{}>; TwiML's root is <Response>", root.name())));
        }
        no_attributes(&root.start, "Response", |key| key == "xmlns" || key.starts_with("xmlns:"))?;
        let twiml = if root.empty { Twiml::Hangup } else { self.response()? };
        loop {
            match self.event()? {
                Event::Eof => return Ok(twiml),
                Event::Start(s) | Event::Empty(s) => {
                    let name = s.name().as_ref().to_string();
                    return Err(parse_failure(format!("<{name}> after </Response>: a document has one root")));
                }
                other => self.misc(other, "after </Response>")?,
            }
        }
    }

    /// What may stand between elements: comments and white space. Anything else is named in the error.
    fn misc(&self, event: Event<'a>, place: &str) -> Result<(), TwimlError> {
        match event {
            Event::Comment(_) => Ok(()),
            Event::Text(t) if t.bytes().all(|b| b.is_ascii_whitespace()) => Ok(()),
            Event::Text(t) => {
                let shown: String = t.trim().chars().take(40).collect();
                Err(schema(format!("unexpected text {shown:?} {place}")))
            }
            Event::CData(_) => Err(schema(format!("unexpected CDATA {place}"))),
            Event::GeneralRef(r) => Err(schema(format!("unexpected text &{}; {place}", &*r))),
            Event::DocType(_) => Err(parse_failure("a DOCTYPE is not allowed in TwiML")),
            Event::PI(_) => Err(parse_failure(format!("unexpected processing instruction {place}"))),
            Event::Decl(_) => Err(parse_failure("the XML declaration must come first in the document")),
            Event::Start(_) | Event::Empty(_) | Event::End(_) | Event::Eof => {
                Err(parse_failure(format!("unexpected markup {place}")))
            }
        }
    }

    /// The next child element of `parent`, or its end.
    fn item(&mut self, parent: &str) -> Result<Item<'a>, TwimlError> {
        loop {
            match self.event()? {
                Event::Start(start) => return Ok(Item::Child(Open { start, empty: false })),
                Event::Empty(start) => return Ok(Item::Child(Open { start, empty: true })),
                // check_end_names: quick-xml has checked that this end tag closes `parent`.
                Event::End(_) => return Ok(Item::End),
                Event::Eof => return Err(parse_failure(format!("<{parent}> is not closed"))),
                other => self.misc(other, &format!("in <{parent}>"))?,
            }
        }
    }

    /// Reads to the end of an element that may hold nothing but comments and white space.
    fn close(&mut self, open: &Open<'a>, name: &str) -> Result<(), TwimlError> {
        if open.empty {
            return Ok(());
        }
        match self.item(name)? {
            Item::End => Ok(()),
            Item::Child(child) => Err(schema(format!("<{}> is not allowed in <{name}>", child.name()))),
        }
    }

    /// `<Response>`'s verbs: one `<Connect>` (optionally followed by `<Hangup/>`), or one `<Hangup/>`.
    fn response(&mut self) -> Result<Twiml, TwimlError> {
        let mut twiml = None;
        loop {
            let child = match self.item("Response")? {
                Item::End => return Ok(twiml.unwrap_or(Twiml::Hangup)),
                Item::Child(child) => child,
            };
            let verb = child.name();
            let next = match verb.as_str() {
                "Connect" => self.connect(&child)?,
                "Hangup" => {
                    no_attributes(&child.start, "Hangup", |_| false)?;
                    self.close(&child, "Hangup")?;
                    Twiml::Hangup
                }
                "Stream" => return Err(schema("<Stream> must be inside <Connect> (vocals runs <Connect><Stream>)")),
                _ => {
                    return Err(schema(format!(
                        "<{verb}> is not supported: vocals runs <Connect><Stream> and <Hangup/> only"
                    )));
                }
            };
            twiml = match (twiml, next) {
                (None, next) => Some(next),
                (Some(connect @ Twiml::Connect(_)), Twiml::Hangup) => Some(connect),
                (Some(_), _) => {
                    return Err(schema(format!(
                        "<{verb}> after another verb: vocals runs one verb (<Connect><Stream> or <Hangup/>)"
                    )));
                }
            };
        }
    }

    /// `<Connect>` holding exactly one `<Stream>`.
    fn connect(&mut self, open: &Open<'a>) -> Result<Twiml, TwimlError> {
        for attr in attributes(&open.start, "Connect")? {
            let (key, value) = attr;
            match key.as_str() {
                // The method of `action`; harmless alone.
                "method" if value == "GET" || value == "POST" => {}
                "method" => return Err(schema(format!("<Connect method={value:?}>: method is GET or POST"))),
                "action" => {
                    return Err(schema(
                        "<Connect action> is not supported: the call ends when the stream does".to_string(),
                    ));
                }
                _ => return Err(schema(format!("<Connect> has an unknown attribute {key:?}"))),
            }
        }
        if open.empty {
            return Err(schema("<Connect> is empty: it needs a <Stream url=\"wss://…\"/>"));
        }
        let mut stream = None;
        loop {
            let child = match self.item("Connect")? {
                Item::End => break,
                Item::Child(child) => child,
            };
            let noun = child.name();
            if noun != "Stream" {
                return Err(schema(format!("<Connect><{noun}> is not supported: vocals connects to a <Stream> only")));
            }
            if stream.is_some() {
                return Err(schema("<Connect> holds more than one <Stream>"));
            }
            stream = Some(self.stream(&child)?);
        }
        stream.map(Twiml::Connect).ok_or_else(|| schema("<Connect> has no <Stream url=\"wss://…\"/>"))
    }

    /// `<Stream url name track>` and its `<Parameter>`s.
    fn stream(&mut self, open: &Open<'a>) -> Result<StreamTwiml, TwimlError> {
        let (mut url, mut name) = (None, None);
        for (key, value) in attributes(&open.start, "Stream")? {
            match key.as_str() {
                "url" => url = Some(value),
                "name" => name = Some(value),
                // The only track a bidirectional stream has.
                "track" if value == "inbound_track" => {}
                "track" => {
                    return Err(schema(format!(
                        "<Stream track={value:?}>: <Connect><Stream> streams inbound_track only"
                    )));
                }
                "statusCallback" | "statusCallbackMethod" => {
                    return Err(schema(format!("<Stream {key}> is not supported by vocals")));
                }
                _ => return Err(schema(format!("<Stream> has an unknown attribute {key:?}"))),
            }
        }
        let url = url.ok_or_else(|| schema("<Stream> has no url attribute"))?;
        check_ws_url(&url)?;
        let mut parameters = Vec::new();
        if !open.empty {
            loop {
                let child = match self.item("Stream")? {
                    Item::End => break,
                    Item::Child(child) => child,
                };
                let noun = child.name();
                if noun != "Parameter" {
                    return Err(schema(format!("<{noun}> is not allowed in <Stream>: only <Parameter>")));
                }
                if parameters.len() == MAX_PARAMETERS {
                    return Err(schema(format!("<Stream> has more than {MAX_PARAMETERS} <Parameter>s")));
                }
                parameters.push(self.parameter(&child)?);
            }
        }
        Ok(StreamTwiml { url, name, parameters })
    }

    /// `<Parameter name="…" value="…"/>`.
    fn parameter(&mut self, open: &Open<'a>) -> Result<(String, String), TwimlError> {
        let (mut name, mut value) = (None, None);
        for (key, v) in attributes(&open.start, "Parameter")? {
            match key.as_str() {
                "name" => name = Some(v),
                "value" => value = Some(v),
                _ => return Err(schema(format!("<Parameter> has an unknown attribute {key:?}"))),
            }
        }
        self.close(open, "Parameter")?;
        let name = name.filter(|n| !n.is_empty()).ok_or_else(|| schema("<Parameter> has no name attribute"))?;
        let value = value.ok_or_else(|| schema(format!("<Parameter name={name:?}> has no value attribute")))?;
        Ok((name, value))
    }
}

/// An element's attributes, names and values unescaped (the five predefined entities and character
/// references only; any other entity is an error, never expanded). Duplicates and malformed ones are errors.
fn attributes(start: &BytesStart<'_>, element: &str) -> Result<Vec<(String, String)>, TwimlError> {
    let mut out = Vec::new();
    for attr in start.attributes() {
        let attr: Attribute<'_> =
            attr.map_err(|e| parse_failure(format!("<{element}> has a malformed attribute: {e}")))?;
        let key = attr.key.as_ref().to_string();
        let value = attr
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(|e| parse_failure(format!("<{element} {key}> has an invalid value: {e}")))?;
        out.push((key, value.into_owned()));
    }
    Ok(out)
}

/// Refuses any attribute but those `allowed` says may be there (and ignored).
fn no_attributes(start: &BytesStart<'_>, element: &str, allowed: impl Fn(&str) -> bool) -> Result<(), TwimlError> {
    match attributes(start, element)?.into_iter().find(|(key, _)| !allowed(key)) {
        Some((key, _)) => Err(schema(format!("<{element}> has an unknown attribute {key:?}"))),
        None => Ok(()),
    }
}

/// An absolute `ws://` or `wss://` URL with a host.
fn check_ws_url(url: &str) -> Result<(), TwimlError> {
    let bad = |why: &str| Err(schema(format!("<Stream url={url:?}>: {why}")));
    let lower = url.get(..6).map(str::to_ascii_lowercase).unwrap_or_default();
    if !(lower.starts_with("ws://") || lower.starts_with("wss://")) {
        return bad("the url must be a WebSocket URL, ws:// or wss://");
    }
    // `wss:///x` would parse with `x` as its host.
    let authority = url.split_once("://").map(|(_, rest)| rest).unwrap_or_default();
    if authority.is_empty() || authority.starts_with(['/', '?', '#']) {
        return bad("the url has no host");
    }
    match reqwest::Url::parse(url) {
        Ok(u) if u.host_str().is_some_and(|h| !h.is_empty()) => Ok(()),
        Ok(_) => bad("the url has no host"),
        Err(e) => bad(&format!("not a valid URL ({e})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(url: &str) -> Twiml {
        Twiml::Connect(StreamTwiml { url: url.into(), name: None, parameters: vec![] })
    }

    fn code(xml: &str) -> u32 {
        match parse(xml) {
            Err(e) => e.code,
            Ok(t) => panic!("{xml} parsed as {t:?}"),
        }
    }

    fn message(xml: &str) -> String {
        parse(xml).expect_err(xml).message
    }

    #[test]
    fn connect_stream_as_agents_write_it() {
        let xml = r#"<Response><Connect><Stream url="wss://agent.example.com/media"/></Connect></Response>"#;
        assert_eq!(parse(xml).unwrap(), stream("wss://agent.example.com/media"));
    }

    #[test]
    fn the_helper_librarys_output_with_declaration_parameters_and_name() {
        // As twilio-python's VoiceResponse prints it.
        let xml = concat!(
            r#"<?xml version="1.0" encoding="UTF-8"?>"#,
            r#"<Response><Connect><Stream name="agent" url="wss://a.example/s?x=1&amp;y=2">"#,
            r#"<Parameter name="customer" value="C&#233;line &lt;42&gt;"/>"#,
            r#"<Parameter name="empty" value=""/>"#,
            r#"</Stream></Connect></Response>"#
        );
        let Twiml::Connect(s) = parse(xml).unwrap() else { panic!() };
        assert_eq!(s.url, "wss://a.example/s?x=1&y=2");
        assert_eq!(s.name.as_deref(), Some("agent"));
        assert_eq!(s.parameters, vec![("customer".into(), "Céline <42>".into()), ("empty".into(), String::new())]);
    }

    #[test]
    fn white_space_and_comments_anywhere_between_elements() {
        let xml = "<?xml version=\"1.0\"?>\n<!-- placed by the CRM -->\n<Response>\n  <!-- bridge -->\n  <Connect>\n    \
                   <Stream url=\"ws://10.0.0.1:8080/\" track=\"inbound_track\">\n      <Parameter name=\"a\" value=\"1\">\
                   </Parameter>\n    </Stream>\n  </Connect>\n</Response>\n<!-- end -->\n";
        let Twiml::Connect(s) = parse(xml).unwrap() else { panic!() };
        assert_eq!((s.url.as_str(), s.parameters.len()), ("ws://10.0.0.1:8080/", 1));
    }

    #[test]
    fn hangup_and_an_empty_response_end_the_call() {
        assert_eq!(parse("<Response><Hangup/></Response>").unwrap(), Twiml::Hangup);
        assert_eq!(parse("<Response><Hangup></Hangup></Response>").unwrap(), Twiml::Hangup);
        assert_eq!(parse("<Response/>").unwrap(), Twiml::Hangup);
        assert_eq!(parse("<Response> </Response>").unwrap(), Twiml::Hangup);
    }

    #[test]
    fn a_hangup_after_the_stream_changes_nothing() {
        let xml = r#"<Response><Connect><Stream url="wss://a.example/"/></Connect><Hangup/></Response>"#;
        assert_eq!(parse(xml).unwrap(), stream("wss://a.example/"));
    }

    #[test]
    fn other_verbs_are_refused_by_name() {
        for (xml, verb) in [
            ("<Response><Say>Hello</Say></Response>", "<Say>"),
            ("<Response><Dial>+14155550123</Dial></Response>", "<Dial>"),
            ("<Response><Play>https://a.example/x.mp3</Play></Response>", "<Play>"),
            (r#"<Response><Start><Stream url="wss://a.example/"/></Start></Response>"#, "<Start>"),
            ("<Response><Redirect>https://a.example/</Redirect></Response>", "<Redirect>"),
            ("<Response><hangup/></Response>", "<hangup>"),
        ] {
            assert_eq!(code(xml), SCHEMA_VALIDATION, "{xml}");
            assert!(message(xml).contains(verb), "{xml}: {}", message(xml));
        }
    }

    #[test]
    fn a_stream_outside_connect_and_other_connect_nouns_are_refused() {
        let m = message(r#"<Response><Stream url="wss://a.example/"/></Response>"#);
        assert!(m.contains("<Stream> must be inside <Connect>"), "{m}");
        let m = message(r#"<Response><Connect><Room>r</Room></Connect></Response>"#);
        assert!(m.contains("<Connect><Room>"), "{m}");
        let m = message(r#"<Response><Connect><ConversationRelay url="wss://a.example/"/></Connect></Response>"#);
        assert!(m.contains("ConversationRelay"), "{m}");
    }

    #[test]
    fn several_verbs_or_streams_are_refused() {
        let two = r#"<Response><Hangup/><Connect><Stream url="wss://a.example/"/></Connect></Response>"#;
        assert!(message(two).contains("<Connect> after another verb"), "{}", message(two));
        assert_eq!(code("<Response><Hangup/><Hangup/></Response>"), SCHEMA_VALIDATION);
        let c = r#"<Response><Connect><Stream url="wss://a/"/></Connect><Connect><Stream url="wss://b/"/></Connect></Response>"#;
        assert_eq!(code(c), SCHEMA_VALIDATION);
        let s = r#"<Response><Connect><Stream url="wss://a/"/><Stream url="wss://b/"/></Connect></Response>"#;
        assert!(message(s).contains("more than one <Stream>"));
    }

    #[test]
    fn the_stream_url_is_required_and_a_websocket_url() {
        assert!(message("<Response><Connect><Stream/></Connect></Response>").contains("no url"));
        assert!(message("<Response><Connect></Connect></Response>").contains("no <Stream"));
        assert!(message("<Response><Connect/></Response>").contains("<Connect> is empty"));
        for url in ["https://a.example/", "http://a.example/", "/relative", "", "wss://", "wss:///path", "wss://a b/"] {
            let xml = format!(r#"<Response><Connect><Stream url="{url}"/></Connect></Response>"#);
            assert_eq!(code(&xml), SCHEMA_VALIDATION, "{url}");
            assert!(message(&xml).contains("<Stream url="), "{url}");
        }
        let upper = r#"<Response><Connect><Stream url="WSS://A.example/"/></Connect></Response>"#;
        assert!(parse(upper).is_ok());
    }

    #[test]
    fn attributes_vocals_cannot_honour_or_does_not_know_are_refused() {
        for (xml, what) in [
            (
                r#"<Response><Connect action="https://a.example/next"><Stream url="wss://a/"/></Connect></Response>"#,
                "action",
            ),
            (r#"<Response><Connect method="PUT"><Stream url="wss://a/"/></Connect></Response>"#, "method"),
            (r#"<Response><Connect><Stream url="wss://a/" track="both_tracks"/></Connect></Response>"#, "track"),
            (
                r#"<Response><Connect><Stream url="wss://a/" statusCallback="https://a/"/></Connect></Response>"#,
                "statusCallback",
            ),
            (r#"<Response><Connect><Stream url="wss://a/" urll="x"/></Connect></Response>"#, "urll"),
            (
                r#"<Response><Connect><Stream url="wss://a/"><Parameter name="a" value="b" x="y"/></Stream></Connect></Response>"#,
                "\"x\"",
            ),
            (r#"<Response><Hangup reason="busy"/></Response>"#, "reason"),
            (r#"<Response voice="alice"><Hangup/></Response>"#, "voice"),
        ] {
            assert_eq!(code(xml), SCHEMA_VALIDATION, "{xml}");
            assert!(message(xml).contains(what), "{xml}: {}", message(xml));
        }
        let fine = r#"<Response xmlns="urn:x"><Connect method="POST"><Stream url="wss://a/"/></Connect></Response>"#;
        assert!(parse(fine).is_ok());
    }

    #[test]
    fn parameters_need_a_name_and_a_value_and_are_bounded() {
        let p =
            |inner: &str| format!(r#"<Response><Connect><Stream url="wss://a/">{inner}</Stream></Connect></Response>"#);
        assert!(message(&p(r#"<Parameter value="1"/>"#)).contains("no name"));
        assert!(message(&p(r#"<Parameter name="" value="1"/>"#)).contains("no name"));
        assert!(message(&p(r#"<Parameter name="a"/>"#)).contains("no value"));
        assert!(message(&p(r#"<Parameter name="a" value="1">text</Parameter>"#)).contains("text"));
        assert!(message(&p("<Say>x</Say>")).contains("<Say> is not allowed in <Stream>"));
        let ok: String = (0..MAX_PARAMETERS).map(|i| format!(r#"<Parameter name="p{i}" value="{i}"/>"#)).collect();
        let Twiml::Connect(s) = parse(&p(&ok)).unwrap() else { panic!() };
        assert_eq!(s.parameters.len(), MAX_PARAMETERS);
        let too_many = format!(r#"{ok}<Parameter name="last" value="x"/>"#);
        assert!(message(&p(&too_many)).contains("more than 99"));
    }

    #[test]
    fn not_well_formed_xml_is_a_parse_failure() {
        for xml in [
            "",
            "   ",
            "not xml",
            "<Response>",
            "<Response><Connect></Response>",
            "<Response><Hangup/></Respons>",
            "<Response><Hangup/></Response><Response/>",
            "<Response><Hangup/></Response>trailing",
            r#"<Response><Connect><Stream url=wss://a/ /></Connect></Response>"#,
            r#"<Response><Connect><Stream url="wss://a/" url="wss://b/"/></Connect></Response>"#,
            r#"<Response><Connect><Stream url="wss://a/?x=1&y=2"/></Connect></Response>"#,
            "<Answer/>",
            "<response/>",
            " <?xml version=\"1.0\"?><Response/>",
            "<Response><!-- a -- b --></Response>",
            "<Response>\u{0}</Response>",
        ] {
            let err = parse(xml).expect_err(xml);
            assert!(matches!(err.code, PARSE_FAILURE | SCHEMA_VALIDATION), "{xml}: {err}");
        }
        assert!(message("<Answer/>").contains("<Answer>"));
        assert_eq!(code("<Response><Connect></Response>"), PARSE_FAILURE);
        assert_eq!(code("<Response>"), PARSE_FAILURE);
    }

    #[test]
    fn doctype_and_entities_are_refused_so_nothing_expands() {
        let billion = concat!(
            r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>"#,
            r#"<Response><Connect><Stream url="wss://a/"><Parameter name="x" value="&lol2;"/></Stream></Connect></Response>"#
        );
        assert_eq!(code(billion), PARSE_FAILURE);
        assert!(message(billion).contains("DOCTYPE"));
        let external = r#"<!DOCTYPE r SYSTEM "file:///etc/passwd"><Response/>"#;
        assert_eq!(code(external), PARSE_FAILURE);
        // Without a DOCTYPE, an undeclared entity in a value is an error, never looked up.
        let undeclared = r#"<Response><Connect><Stream url="wss://a/"><Parameter name="x" value="&xxe;"/></Stream></Connect></Response>"#;
        assert_eq!(code(undeclared), PARSE_FAILURE);
        assert!(message(undeclared).contains("<Parameter value>"), "{}", message(undeclared));
        assert_eq!(code("<Response>&amp;</Response>"), SCHEMA_VALIDATION);
        assert_eq!(code("<Response><![CDATA[x]]></Response>"), SCHEMA_VALIDATION);
        assert_eq!(code("<Response><?php echo 1 ?></Response>"), PARSE_FAILURE);
    }

    #[test]
    fn hostile_documents_error_without_panicking() {
        // Over the size limit.
        let huge = format!("<Response>{}</Response>", " ".repeat(MAX_DOCUMENT));
        assert_eq!(code(&huge), TOO_LARGE);
        // Deeply nested: refused at the first unknown element, whatever follows.
        let deep = format!("<Response>{}{}</Response>", "<Connect>".repeat(10_000), "</Connect>".repeat(10_000));
        assert_eq!(code(&deep[..deep.len().min(MAX_DOCUMENT)]), SCHEMA_VALIDATION);
        let deep_unknown = "<a>".repeat(20_000);
        assert_eq!(code(&deep_unknown), PARSE_FAILURE);
        let deep_verbs = format!("<Response>{}", "<Say>".repeat(10_000));
        assert_eq!(code(&deep_verbs), SCHEMA_VALIDATION);
        // Long attribute values within the limit are fine, and kept whole.
        let long = "v".repeat(60_000);
        let xml = format!(
            r#"<Response><Connect><Stream url="wss://a/"><Parameter name="x" value="{long}"/></Stream></Connect></Response>"#
        );
        let Twiml::Connect(s) = parse(&xml).unwrap() else { panic!() };
        assert_eq!(s.parameters[0].1.len(), 60_000);
        // Truncations of a valid document at every byte: each errors or parses, none panics.
        let full = concat!(
            r#"<?xml version="1.0" encoding="UTF-8"?><Response><Connect>"#,
            r#"<Stream url="wss://a.example/s" name="n"><Parameter name="k" value="v&amp;w"/></Stream>"#,
            r#"</Connect></Response>"#
        );
        for end in 0..full.len() {
            let _ = parse(&full[..end]);
        }
        assert!(parse(full).is_ok());
    }

    #[test]
    fn errors_display_their_code() {
        let e = parse("<Response><Say/></Response>").unwrap_err();
        assert_eq!(e.to_string(), format!("{} (TwiML error 12200)", e.message));
    }
}
