//! Framing and parsing of whole messages (RFC 3261 §7, §18.3): strict on framing (CRLF lines, an empty line,
//! then exactly Content-Length bytes of body), lenient on values (compact names, folding, white space around
//! the colon). One pass over the header section; values are zero-copy slices unless a line was folded.

use bytes::Bytes;

use super::error::ParseError;
use super::header_name::HeaderName;
use super::headers::Headers;
use super::method::{Method, StatusCode};
use super::scan::{find_any, find_ctl, has_forbidden_ctl, is_token_str, is_wsp, parse_u64, split_commas, trim_wsp};
use super::typed::{CSeq, CallId, HeaderError, MaxForwards, MediaType, NameAddrView, ViaView, check_contact};
use super::uri::{Uri, UriContext};
use super::{Limits, Message, Request, Response};

/// How the bytes arrived: a datagram holds exactly one message; a stream message needs Content-Length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    Datagram,
    Stream,
}

/// What the front of a stream buffer holds (see [`frame_stream`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamFrame {
    /// Not enough bytes yet.
    Incomplete,
    /// A double-CRLF keepalive ping (RFC 5626 §3.5.1): consume 4 bytes and answer with CRLF.
    Ping,
    /// A single CRLF (a keepalive pong or a stray empty line, §7.5): consume 2 bytes.
    Pong,
    /// A complete message of this many bytes: hand exactly those to [`Message::parse_stream`].
    Message(usize),
}

/// Finds the first message in a stream buffer by its header section and Content-Length, which is mandatory
/// on streams (§18.3). Never reads past `limits.max_message` bytes of headers.
pub fn frame_stream(buf: &[u8], limits: &Limits) -> Result<StreamFrame, ParseError> {
    if buf.starts_with(b"\r\n\r\n") {
        return Ok(StreamFrame::Ping);
    }
    if buf.starts_with(b"\r\n") {
        return Ok(if buf.len() < 4 && b"\r\n\r\n".starts_with(buf) {
            StreamFrame::Incomplete
        } else {
            StreamFrame::Pong
        });
    }
    if buf.is_empty() || buf == b"\r" {
        return Ok(StreamFrame::Incomplete);
    }
    let window = &buf[..buf.len().min(limits.max_message)];
    let Some(head_end) = memchr::memmem::find(window, b"\r\n\r\n") else {
        return if buf.len() >= limits.max_message {
            Err(ParseError::TooLarge { what: "message size in bytes", limit: limits.max_message })
        } else {
            Ok(StreamFrame::Incomplete)
        };
    };
    let content_length = stream_content_length(&buf[..head_end + 2])?;
    let total = head_end + 4 + content_length;
    if total > limits.max_message {
        return Err(ParseError::TooLarge { what: "message size in bytes", limit: limits.max_message });
    }
    Ok(if buf.len() < total { StreamFrame::Incomplete } else { StreamFrame::Message(total) })
}

/// The Content-Length of a stream message's header section (lines ending in CRLF). Two Content-Length
/// headers leave the message's end unknowable, so the stream cannot be framed (RFC 4475 §3.1.2.11).
fn stream_content_length(head: &[u8]) -> Result<usize, ParseError> {
    let mut found = None;
    for line in head.split(|&b| b == b'\n').skip(1) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = memchr::memchr(b':', line) else {
            continue;
        };
        let name = trim_wsp(&line[..colon]);
        if name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l") {
            if found.is_some() {
                return Err(ParseError::ContentLength("given twice"));
            }
            found = Some(parse_content_length(&line[colon + 1..])?);
        }
    }
    found.ok_or(ParseError::ContentLength("missing (it is required on stream transports)"))
}

fn parse_content_length(value: &[u8]) -> Result<usize, ParseError> {
    parse_u64(trim_wsp(value))
        .and_then(|n| usize::try_from(n).ok())
        .ok_or(ParseError::ContentLength("must be a non-negative decimal number"))
}

/// Parses one message. For `Framing::Stream`, `buf` holds exactly what [`frame_stream`] measured.
pub(crate) fn parse(buf: Bytes, framing: Framing, limits: &Limits) -> Result<Message, ParseError> {
    if buf.len() > limits.max_message {
        return Err(ParseError::TooLarge { what: "message size in bytes", limit: limits.max_message });
    }
    // §7.5: empty lines before the start line are ignored.
    let mut pos = 0;
    while buf[pos..].starts_with(b"\r\n") {
        pos += 2;
    }
    let (line, next) = match next_line(&buf, pos) {
        Ok(Some(l)) => l,
        Ok(None) if framing == Framing::Stream => return Err(ParseError::Incomplete),
        Ok(None) if pos == buf.len() => return Err(ParseError::StartLine("empty message")),
        Ok(None) => return Err(ParseError::StartLine("start line is not terminated by CRLF")),
        Err(e) => return Err(e),
    };
    let start = parse_start_line(&buf, &buf[line.0..line.1])?;
    let head = parse_header_section(&buf, next, framing, limits, &start)?;
    require_mandatory(&head.seen)?;
    let body = body(&buf, head.body_start, head.content_length, framing, limits)?;
    let headers = head.headers;
    Ok(match start {
        StartLine::Request { method, uri } => Message::Request(Request { method, uri, headers, body }),
        StartLine::Response { status, reason } => Message::Response(Response { status, reason, headers, body }),
    })
}

enum StartLine {
    Request { method: Method, uri: Uri },
    Response { status: StatusCode, reason: Bytes },
}

/// `Method SP Request-URI SP SIP-Version` or `SIP-Version SP Status-Code SP Reason-Phrase` (§7.1, §7.2):
/// single spaces, nothing trailing.
fn parse_start_line(src: &Bytes, line: &[u8]) -> Result<StartLine, ParseError> {
    if line.len() >= 4 && line[..4].eq_ignore_ascii_case(b"SIP/") {
        return parse_status_line(src, line);
    }
    let sp1 = memchr::memchr(b' ', line).ok_or(ParseError::StartLine("request line must be Method URI SIP/2.0"))?;
    let sp2 = memchr::memchr(b' ', &line[sp1 + 1..])
        .map(|i| sp1 + 1 + i)
        .ok_or(ParseError::StartLine("request line must be Method URI SIP/2.0"))?;
    let method = Method::from_received(src, &line[..sp1]).ok_or(ParseError::StartLine("method is not a token"))?;
    let uri = &line[sp1 + 1..sp2];
    let version = &line[sp2 + 1..];
    if uri.is_empty() || memchr::memchr(b' ', version).is_some() {
        return Err(ParseError::StartLine("request line elements must be separated by single spaces"));
    }
    if uri.first() == Some(&b'<') {
        return Err(ParseError::StartLine("Request-URI must not be enclosed in <>"));
    }
    check_version(version)?;
    let uri = Uri::parse_in(src, uri, UriContext::RequestLine).map_err(|e| ParseError::RequestUri(e.0))?;
    Ok(StartLine::Request { method, uri })
}

fn parse_status_line(src: &Bytes, line: &[u8]) -> Result<StartLine, ParseError> {
    let sp = memchr::memchr(b' ', line).ok_or(ParseError::StartLine("status line must be SIP/2.0 code reason"))?;
    check_version(&line[..sp])?;
    let rest = &line[sp + 1..];
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits != 3 || rest.get(3).is_some_and(|&b| b != b' ') {
        return Err(ParseError::StartLine("status code must be three digits"));
    }
    let code = parse_u64(&rest[..3]).and_then(|c| StatusCode::new(c as u16));
    let status = code.ok_or(ParseError::StartLine("status code must be from 100 to 699"))?;
    let reason = rest.get(4..).unwrap_or_default();
    if has_forbidden_ctl(reason) {
        return Err(ParseError::StartLine("reason phrase holds a control character"));
    }
    Ok(StartLine::Response { status, reason: src.slice_ref(reason) })
}

/// `SIP/2.0` (case-insensitive). Another well-formed version is `Version` (505); anything else is malformed.
fn check_version(v: &[u8]) -> Result<(), ParseError> {
    if v.eq_ignore_ascii_case(b"SIP/2.0") {
        return Ok(());
    }
    let well_formed = v.len() > 4
        && v[..4].eq_ignore_ascii_case(b"SIP/")
        && v[4..].split(|&b| b == b'.').count() == 2
        && v[4..].split(|&b| b == b'.').all(|p| !p.is_empty() && p.iter().all(u8::is_ascii_digit));
    Err(if well_formed { ParseError::Version } else { ParseError::StartLine("bad SIP version") })
}

/// `((start, end), next)`: a line's content range and where the next line starts.
type Line = ((usize, usize), usize);

/// The line starting at `pos`: `((start, end), next)` where `end` excludes the CRLF; `None` when no CRLF
/// follows yet. Finding the line end and refusing control bytes is one pass: a bare CR or LF is a framing
/// error, HTAB is allowed, any other control byte or DEL is refused.
fn next_line(buf: &[u8], pos: usize) -> Result<Option<Line>, ParseError> {
    let mut from = pos;
    loop {
        let Some(i) = find_ctl(&buf[from..]) else { return Ok(None) };
        let at = from + i;
        match (buf[at], buf.get(at + 1)) {
            (b'\r', Some(b'\n')) => return Ok(Some(((pos, at), at + 2))),
            (b'\r', None) => return Ok(None),
            (b'\t', _) => from = at + 1,
            (b'\r' | b'\n', _) => {
                return Err(ParseError::HeaderSyntax("line ends with a bare CR or LF instead of CRLF"));
            }
            // Rare: read the line again byte by byte, for a control byte escaped inside a quoted string.
            _ => return line_with_quoted_pairs(buf, pos),
        }
    }
}

/// [`next_line`] for a line holding a control byte: RFC 3261 §25.1 lets a `quoted-pair` inside a
/// `quoted-string` escape any byte but CR and LF (`\` then NUL, BEL or DEL: RFC 4475 §3.1.1.2), so such a
/// byte is accepted there and refused anywhere else. One pass over the line.
fn line_with_quoted_pairs(buf: &[u8], pos: usize) -> Result<Option<Line>, ParseError> {
    let mut quoted = false;
    let mut i = pos;
    while let Some(&b) = buf.get(i) {
        match b {
            b'\r' => {
                return match buf.get(i + 1) {
                    Some(b'\n') => Ok(Some(((pos, i), i + 2))),
                    None => Ok(None),
                    Some(_) => Err(ParseError::HeaderSyntax("line ends with a bare CR or LF instead of CRLF")),
                };
            }
            b'\n' => return Err(ParseError::HeaderSyntax("line ends with a bare CR or LF instead of CRLF")),
            b'"' => quoted = !quoted,
            b'\\' if quoted => match buf.get(i + 1) {
                None => return Ok(None),
                // A backslash before the line end escapes nothing: the CR is read as the line's end.
                Some(b'\r' | b'\n') => {}
                Some(_) => i += 1,
            },
            b'\t' => {}
            b if b < 0x20 || b == 0x7f => {
                return Err(ParseError::HeaderSyntax("header section holds a control character"));
            }
            _ => {}
        }
        i += 1;
    }
    Ok(None)
}

/// Where the mandatory and single-valued headers were seen, for validation and duplicate detection.
#[derive(Default)]
struct Seen {
    from: bool,
    to: bool,
    call_id: bool,
    cseq: bool,
    max_forwards: bool,
    content_type: bool,
    via: bool,
}

struct HeaderSection {
    headers: Headers,
    content_length: Option<usize>,
    body_start: usize,
    seen: Seen,
}

fn parse_header_section(
    buf: &Bytes,
    mut pos: usize,
    framing: Framing,
    limits: &Limits,
    start: &StartLine,
) -> Result<HeaderSection, ParseError> {
    let headers = Headers::over(buf.clone(), 32);
    let mut head = HeaderSection { headers, content_length: None, body_start: 0, seen: Seen::default() };
    let mut lines = 0usize;
    loop {
        let Some(((line_start, mut end), mut next)) = next_line(buf, pos)? else {
            return Err(match framing {
                Framing::Stream => ParseError::Incomplete,
                Framing::Datagram => ParseError::HeaderSyntax("header section is not terminated by an empty line"),
            });
        };
        if line_start == end {
            head.body_start = next;
            return Ok(head);
        }
        if is_wsp(buf[line_start]) {
            return Err(ParseError::HeaderSyntax("continuation line with no header before it"));
        }
        // §7.3.1: a line starting with white space continues the previous one.
        let mut folded = false;
        while next < buf.len() && is_wsp(buf[next]) {
            let Some(((_, e), n)) = next_line(buf, next)? else { break };
            end = e;
            next = n;
            folded = true;
        }
        lines += 1;
        if lines > limits.max_headers {
            return Err(ParseError::TooLarge { what: "number of header lines", limit: limits.max_headers });
        }
        if end - line_start > limits.max_header_line {
            return Err(ParseError::TooLarge { what: "header line length in bytes", limit: limits.max_header_line });
        }
        add_header(buf, &mut head, (line_start, end), folded, start)?;
        pos = next;
    }
}

fn add_header(
    buf: &Bytes,
    head: &mut HeaderSection,
    (start, end): (usize, usize),
    folded: bool,
    start_line: &StartLine,
) -> Result<(), ParseError> {
    let line = &buf[start..end];
    let colon = find_any(line, [b':']).ok_or(ParseError::HeaderSyntax("header line has no colon"))?;
    let name_raw = line[..colon].trim_ascii_end();
    // A known name is a token by construction; only an unknown one needs its characters checked.
    let name = HeaderName::from_received(buf, name_raw);
    if matches!(name, HeaderName::Other(_)) && !is_token_str(name_raw) {
        return Err(ParseError::HeaderSyntax("header name is not a token"));
    }
    // A folded value is rebuilt without its line breaks; any other value stays a range of `buf`.
    let unfolded = folded.then(|| Bytes::from(unfold(&line[colon + 1..])));
    let value: &[u8] = match &unfolded {
        Some(v) => v,
        None => trim_wsp(&line[colon + 1..]),
    };
    let once = |flag: &mut bool, label: &'static str| {
        if std::mem::replace(flag, true) { Err(ParseError::DuplicateHeader(label)) } else { Ok(()) }
    };
    // Single-valued headers appear once; the ones every message is matched and answered by are checked here,
    // the rest where they are used (`validate_all`).
    let checked = match name {
        HeaderName::ContentLength => {
            if head.content_length.is_some() {
                return Err(ParseError::DuplicateHeader("Content-Length"));
            }
            head.content_length = Some(parse_content_length(value)?);
            return Ok(());
        }
        HeaderName::From => once(&mut head.seen.from, "From").map(|_| NameAddrView::parse(value).map(drop))?,
        HeaderName::To => once(&mut head.seen.to, "To").map(|_| NameAddrView::parse(value).map(drop))?,
        HeaderName::CallId => once(&mut head.seen.call_id, "Call-ID").map(|_| CallId::check(value).map(drop))?,
        HeaderName::CSeq => {
            once(&mut head.seen.cseq, "CSeq")?;
            match (CSeq::check(value), start_line) {
                (Ok((_, method)), StartLine::Request { method: m, .. }) if method != m.as_bytes() => {
                    return Err(ParseError::CSeqMismatch);
                }
                (checked, _) => checked.map(drop),
            }
        }
        HeaderName::MaxForwards => {
            once(&mut head.seen.max_forwards, "Max-Forwards").map(|_| MaxForwards::parse(value).map(drop))?
        }
        HeaderName::ContentType => once(&mut head.seen.content_type, "Content-Type").map(|_| Ok(()))?,
        // The top Via names the previous hop; lower ones are only echoed back.
        HeaderName::Via if !std::mem::replace(&mut head.seen.via, true) => {
            if value.is_empty() || value[0] == b',' {
                Err(HeaderError("empty value"))
            } else {
                ViaView::parse_first(value).map(drop)
            }
        }
        _ => Ok(()),
    };
    checked.map_err(|e| ParseError::HeaderValue { name: label_of(&name), reason: e.0 })?;
    match unfolded {
        Some(v) => head.headers.push(name, v),
        None => {
            let at = value.as_ptr() as usize - buf.as_ptr() as usize;
            head.headers.push_range(name, at..at + value.len());
        }
    }
    Ok(())
}

/// Replaces each CRLF and the white space around it with one space (§7.3.1), trimming the ends.
fn unfold(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'\r' && raw.get(i + 1) == Some(&b'\n') {
            while out.last().is_some_and(|&b| is_wsp(b)) {
                out.pop();
            }
            i += 2;
            while i < raw.len() && is_wsp(raw[i]) {
                i += 1;
            }
            out.push(b' ');
        } else {
            out.push(raw[i]);
            i += 1;
        }
    }
    trim_wsp(&out).to_vec()
}

fn list_label(name: &HeaderName) -> &'static str {
    match name {
        HeaderName::Via => "Via",
        HeaderName::Contact => "Contact",
        HeaderName::Route => "Route",
        HeaderName::RecordRoute => "Record-Route",
        _ => "list",
    }
}

/// Mandatory headers present (§8.1.1).
fn require_mandatory(seen: &Seen) -> Result<(), ParseError> {
    for (present, label) in
        [(seen.via, "Via"), (seen.from, "From"), (seen.to, "To"), (seen.call_id, "Call-ID"), (seen.cseq, "CSeq")]
    {
        if !present {
            return Err(ParseError::MissingHeader(label));
        }
    }
    Ok(())
}

/// Checks every header vocals has a type for: each Via, Contact, Route and Record-Route, Content-Type, and
/// the ones parsing already checked. A UAS calls it before creating a dialog from a request.
pub(crate) fn validate_all(headers: &Headers) -> Result<(), ParseError> {
    for h in headers.iter() {
        let label = label_of(h.name);
        let bad = |reason| ParseError::HeaderValue { name: label, reason };
        if !h.name.is_list() {
            check_value(h.name, h.value).map_err(|e| bad(e.0))?;
            continue;
        }
        let mut count = 0;
        for element in split_commas(h.value) {
            check_value(h.name, element.map_err(bad)?).map_err(|e| bad(e.0))?;
            count += 1;
        }
        // Supported, Allow and the like may be empty; these grammars need at least one element.
        let needs_one =
            matches!(h.name, HeaderName::Via | HeaderName::Contact | HeaderName::Route | HeaderName::RecordRoute);
        if needs_one && count == 0 {
            return Err(bad("empty value"));
        }
    }
    Ok(())
}

/// One value (one element of a list header) checked against its header's grammar, if vocals has a type for it.
fn check_value(name: &HeaderName, value: &[u8]) -> Result<(), HeaderError> {
    match name {
        HeaderName::Via => ViaView::parse(value).map(drop),
        HeaderName::From | HeaderName::To | HeaderName::Route | HeaderName::RecordRoute => {
            NameAddrView::parse(value).map(drop)
        }
        HeaderName::Contact => check_contact(value),
        HeaderName::CallId => CallId::check(value).map(drop),
        HeaderName::MaxForwards => MaxForwards::parse(value).map(drop),
        HeaderName::ContentType => MediaType::check(value).map(drop),
        HeaderName::CSeq => CSeq::check(value).map(drop),
        _ => Ok(()),
    }
}

fn label_of(name: &HeaderName) -> &'static str {
    match name {
        HeaderName::From => "From",
        HeaderName::To => "To",
        HeaderName::CallId => "Call-ID",
        HeaderName::CSeq => "CSeq",
        HeaderName::MaxForwards => "Max-Forwards",
        HeaderName::ContentType => "Content-Type",
        other => list_label(other),
    }
}

/// The body: exactly Content-Length bytes. A datagram without Content-Length carries the rest (§18.3); a
/// datagram with fewer bytes than declared is refused; extra bytes after the body are ignored.
fn body(
    buf: &Bytes,
    start: usize,
    content_length: Option<usize>,
    framing: Framing,
    limits: &Limits,
) -> Result<Bytes, ParseError> {
    let available = buf.len() - start;
    match (content_length, framing) {
        (Some(n), _) if n > limits.max_message => {
            Err(ParseError::ContentLength("larger than the maximum message size"))
        }
        (Some(n), _) if n <= available => Ok(buf.slice(start..start + n)),
        (Some(_), Framing::Stream) => Err(ParseError::Incomplete),
        (Some(n), Framing::Datagram) => Err(ParseError::TruncatedBody { declared: n, available }),
        (None, Framing::Datagram) => Ok(buf.slice(start..)),
        (None, Framing::Stream) => Err(ParseError::ContentLength("missing (it is required on stream transports)")),
    }
}
