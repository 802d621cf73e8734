//! Per-call SIP traces, sans-IO: every message of a call, in and out, with its time and both addresses, kept in
//! a bounded buffer until the call is over, then handed on to be stored with the call's record.
//!
//! - A trace starts with an INVITE that opens a dialog (no To tag), received or sent, and takes every later
//!   message with the same Call-ID.
//! - At most [`MAX_MESSAGES`] messages and [`MAX_BYTES`] per call: the first [`PINNED`] (the INVITE and its
//!   answers, what an engineer reads first) are always kept; past the limits the oldest of the others are
//!   elided, and the trace says how many. One message keeps at most [`MAX_MESSAGE`] bytes.
//! - It ends at the final response to a BYE, and is handed on at once (so the store writes it with the rest
//!   of the call's record, in one statement for a short call), or at a final non-2xx to the INVITE (a refusal
//!   or a cancel), handed on [`LINGER`] later with the ACK that came in the meantime. A trace that has heard
//!   nothing for long ([`IDLE_UNANSWERED`] before the INVITE's 2xx, [`IDLE_ANSWERED`] after) is handed on as
//!   it is.
//! - Refusals are sampled: at most [`REFUSALS_PER_SECOND`] a second for each status (a burst of as many), so a
//!   flood of INVITEs cannot fill the store; the others are dropped at once and counted.
//! - The table holds at most `capacity` traces; an INVITE past it is not traced (counted).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;

use super::transport::Transport;

/// Messages kept per call.
pub const MAX_MESSAGES: usize = 64;
/// Bytes kept per call.
pub const MAX_BYTES: usize = 64 * 1024;
/// Bytes kept of one message (the rest is cut, and the trace says so).
pub const MAX_MESSAGE: usize = 8 * 1024;
/// The first messages of a call, never elided.
pub const PINNED: usize = 4;
/// How long an ended trace waits for the ACK and retransmissions before it is handed on.
pub const LINGER: Duration = Duration::from_secs(2);
/// A trace without its INVITE's 2xx that heard nothing this long is handed on (a call that rang out).
pub const IDLE_UNANSWERED: Duration = Duration::from_secs(5 * 60);
/// An answered call that heard nothing this long: past the longest call vocals allows (4 h).
pub const IDLE_ANSWERED: Duration = Duration::from_secs(4 * 3600 + 5 * 60);
/// Refused INVITEs kept a second, per status.
pub const REFUSALS_PER_SECOND: u32 = 5;

/// Which way a message went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    In,
    Out,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
        }
    }
}

/// What the trace reads of a message: its Call-ID, what it is, and whether it opens a dialog.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Summary<'a> {
    pub call_id: &'a [u8],
    /// The request's method, or `None` for a response.
    pub method: Option<&'a [u8]>,
    /// The response's status, or `None` for a request.
    pub status: Option<u16>,
    /// The CSeq's method.
    pub cseq_method: &'a [u8],
    /// The To header has a tag.
    pub to_tag: bool,
}

/// Reads the start line and the Call-ID, CSeq and To headers (long or compact names, any case) of a SIP
/// message, without parsing the rest. `None` when it has no Call-ID or CSeq (not a message a call keeps).
pub fn summarize(bytes: &[u8]) -> Option<Summary<'_>> {
    let mut lines = bytes.split(|b| *b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let start = lines.next()?;
    let (method, status) = if let Some(rest) = start.strip_prefix(b"SIP/2.0 ") {
        let code = rest.get(..3)?;
        (None, Some(std::str::from_utf8(code).ok()?.parse::<u16>().ok()?))
    } else {
        let sp = memchr::memchr(b' ', start)?;
        (Some(&start[..sp]), None)
    };
    let (mut call_id, mut cseq_method, mut to_tag) = (None, None, false);
    for line in lines {
        if line.is_empty() {
            break;
        }
        let Some(colon) = memchr::memchr(b':', line) else { continue };
        let name = trim(&line[..colon]);
        let value = trim(&line[colon + 1..]);
        if name.eq_ignore_ascii_case(b"call-id") || name.eq_ignore_ascii_case(b"i") {
            call_id = Some(value);
        } else if name.eq_ignore_ascii_case(b"cseq") {
            cseq_method = value.rsplit(|b| *b == b' ' || *b == b'\t').next().map(trim);
        } else if name.eq_ignore_ascii_case(b"to") || name.eq_ignore_ascii_case(b"t") {
            to_tag = has_tag(value);
        }
    }
    Some(Summary { call_id: call_id.filter(|c| !c.is_empty())?, method, status, cseq_method: cseq_method?, to_tag })
}

fn trim(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|c| !c.is_ascii_whitespace()).unwrap_or(b.len());
    let end = b.iter().rposition(|c| !c.is_ascii_whitespace()).map_or(start, |e| e + 1);
    &b[start..end.max(start)]
}

/// Whether a To value has a `tag` parameter (after the URI's closing `>` when there is one).
fn has_tag(value: &[u8]) -> bool {
    let params = match memchr::memrchr(b'>', value) {
        Some(gt) => &value[gt + 1..],
        None => value,
    };
    params.split(|b| *b == b';').skip(1).any(|p| {
        let p = trim(p);
        p.len() >= 3 && p[..3].eq_ignore_ascii_case(b"tag") && trim(&p[3..]).first().is_none_or(|c| *c == b'=')
    })
}

/// The user parts of a request's From and To URIs (`+15550001`), at most 64 characters each; empty when
/// absent.
pub fn parties(bytes: &[u8]) -> (String, String) {
    let (mut from, mut to) = (String::new(), String::new());
    for line in bytes.split(|b| *b == b'\n').skip(1).map(|l| l.strip_suffix(b"\r").unwrap_or(l)) {
        if line.is_empty() {
            break;
        }
        let Some(colon) = memchr::memchr(b':', line) else { continue };
        let name = trim(&line[..colon]);
        let slot = if name.eq_ignore_ascii_case(b"from") || name.eq_ignore_ascii_case(b"f") {
            &mut from
        } else if name.eq_ignore_ascii_case(b"to") || name.eq_ignore_ascii_case(b"t") {
            &mut to
        } else {
            continue;
        };
        *slot = user_part(&line[colon + 1..]);
    }
    (from, to)
}

fn user_part(value: &[u8]) -> String {
    let lower = value.to_ascii_lowercase();
    let Some(at) =
        [&b"sips:"[..], b"sip:", b"tel:"].iter().find_map(|s| memchr::memmem::find(&lower, s).map(|i| i + s.len()))
    else {
        return String::new();
    };
    let rest = &value[at..];
    let end = rest.iter().position(|b| matches!(b, b'@' | b';' | b'>' | b' ' | b',')).unwrap_or(rest.len());
    String::from_utf8_lossy(&rest[..end.min(64)]).chars().filter(|c| !c.is_control()).collect()
}

/// One message kept.
#[derive(Clone, Debug)]
struct Kept {
    at: SystemTime,
    dir: Direction,
    /// The other side, and our side.
    peer: SocketAddr,
    local: SocketAddr,
    transport: Transport,
    /// The message's bytes, up to [`MAX_MESSAGE`] (shares the received or sent buffer).
    bytes: Bytes,
    /// Its whole length.
    len: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// The INVITE has no 2xx yet.
    Unanswered,
    Answered,
    /// Over (BYE answered, INVITE refused or cancelled): handed on at `at` + [`LINGER`].
    Ended {
        at: Instant,
        refused: Option<u16>,
    },
}

/// One call's trace.
#[derive(Debug)]
struct Trace {
    kept: VecDeque<Kept>,
    bytes: usize,
    /// Messages elided to stay in bounds.
    elided: u32,
    /// Messages seen.
    total: u32,
    state: State,
    last: Instant,
    /// When the INVITE came or went.
    invite_at: SystemTime,
    /// The refusal's reason phrase.
    phrase: String,
}

impl Trace {
    fn push(&mut self, kept: Kept) {
        self.total += 1;
        let size = kept.bytes.len();
        while self.kept.len() > PINNED && (self.kept.len() >= MAX_MESSAGES || self.bytes + size > MAX_BYTES) {
            if let Some(old) = self.kept.remove(PINNED) {
                self.bytes -= old.bytes.len();
                self.elided += 1;
            }
        }
        if self.kept.len() >= MAX_MESSAGES || self.bytes + size > MAX_BYTES {
            // Only pinned messages are left and still no room (cannot happen with the limits above).
            self.elided += 1;
            return;
        }
        self.bytes += size;
        self.kept.push_back(kept);
    }

    /// The trace as JSON text (`messages`, `total`, `elided`), written straight out: no tree of values, and one
    /// buffer for the whole trace (at thousands of calls a second, allocation is what a trace costs).
    fn to_json(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::with_capacity(self.bytes + self.kept.len() * 160 + 64);
        out.push_str("{\"messages\":[");
        for (i, k) in self.kept.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str("{\"at\":\"");
            crate::clock::write_rfc3339_millis(&mut out, k.at);
            let _ = write!(
                out,
                "\",\"dir\":\"{}\",\"transport\":\"{}\",\"peer\":\"{}\",\"local\":\"{}\",\"bytes\":{},\"text\":",
                k.dir.as_str(),
                k.transport.as_str(),
                k.peer,
                k.local,
                k.len
            );
            let cut = match k.len > k.bytes.len() {
                true => format!("\n[... {} more bytes not kept]", k.len - k.bytes.len()),
                false => String::new(),
            };
            match plain(&k.bytes) {
                Some(text) => json_string(&mut out, &[text, &cut]),
                None => json_string(&mut out, &[&printable(&k.bytes), &cut]),
            }
            out.push('}');
        }
        let _ = write!(out, "],\"total\":{},\"elided\":{}}}", self.total, self.elided);
        out
    }
}

/// `parts`, one after the other, as one JSON string (quoted and escaped, RFC 8259 §7).
fn json_string(out: &mut String, parts: &[&str]) {
    out.push('"');
    for text in parts {
        json_escaped(out, text);
    }
    out.push('"');
}

fn json_escaped(out: &mut String, text: &str) {
    use std::fmt::Write as _;
    let mut start = 0;
    for (i, b) in text.bytes().enumerate() {
        let escaped = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&text[start..i]);
        if escaped.is_empty() {
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.push_str(escaped);
        }
        start = i + 1;
    }
    out.push_str(&text[start..]);
}

/// A message that is plain text without SDES keys, as it is (most are): [`printable`] would change nothing.
fn plain(bytes: &[u8]) -> Option<&str> {
    let is_plain = |b: &u8| (0x20..0x7f).contains(b) || matches!(b, b'\r' | b'\n' | b'\t');
    if !bytes.iter().all(is_plain) || memchr::memmem::find(bytes, b"inline:").is_some() {
        return None;
    }
    std::str::from_utf8(bytes).ok()
}

/// A trace handed on: the call's SIP Call-ID, its messages as JSON (`messages`, `total`, `elided`), and the
/// INVITE's refusal status when it was refused.
#[derive(Clone, Debug, PartialEq)]
pub struct Finished {
    pub call_id: String,
    pub refused: Option<u16>,
    /// JSON text.
    pub trace: String,
    /// When the INVITE came or went, its From and To users, and the refusal's reason phrase.
    pub invite_at: SystemTime,
    pub from: String,
    pub to: String,
    pub phrase: String,
}

impl Finished {
    fn of(call_id: &[u8], t: Trace) -> Finished {
        let refused = match t.state {
            State::Ended { refused, .. } => refused,
            _ => None,
        };
        let trace = t.to_json();
        // The parties are read for a refusal only (its record is made from them).
        let (from, to) = match (refused, t.kept.front()) {
            (Some(_), Some(first)) => parties(&first.bytes),
            _ => (String::new(), String::new()),
        };
        Finished {
            call_id: String::from_utf8_lossy(call_id).into_owned(),
            refused,
            trace,
            invite_at: t.invite_at,
            from,
            to,
            phrase: t.phrase,
        }
    }
}

/// Token buckets, one per refusal status.
#[derive(Debug, Default)]
struct Sampler {
    buckets: HashMap<u16, (f64, Instant)>,
}

impl Sampler {
    fn take(&mut self, now: Instant, status: u16) -> bool {
        let rate = f64::from(REFUSALS_PER_SECOND);
        if self.buckets.len() > 700 {
            self.buckets.clear();
        }
        let (tokens, at) = self.buckets.entry(status).or_insert((rate, now));
        *tokens = (*tokens + now.saturating_duration_since(*at).as_secs_f64() * rate).min(rate);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// What the trace table did with what it saw, for the metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TraceCounts {
    /// Refusals dropped by the sampler.
    pub refusals_dropped: u64,
    /// INVITEs not traced because the table was full.
    pub full: u64,
}

/// The traces of the calls in progress, keyed by Call-ID.
#[derive(Debug)]
pub struct CallTraces {
    traces: HashMap<Box<[u8]>, Trace>,
    capacity: usize,
    sampler: Sampler,
    pub counts: TraceCounts,
    /// Traces over and handed on at once (a BYE answered), until [`CallTraces::take_ready`].
    ready: Vec<Finished>,
}

impl CallTraces {
    pub fn new(capacity: usize) -> CallTraces {
        CallTraces {
            traces: HashMap::new(),
            capacity,
            sampler: Sampler::default(),
            counts: TraceCounts::default(),
            ready: Vec::new(),
        }
    }

    /// Traces being kept.
    pub fn len(&self) -> usize {
        self.traces.len()
    }

    pub fn is_empty(&self) -> bool {
        self.traces.is_empty()
    }

    /// A message in or out. `peer` is the other side, `local` ours.
    #[allow(clippy::too_many_arguments)]
    pub fn observe(
        &mut self,
        now: Instant,
        at: SystemTime,
        dir: Direction,
        peer: SocketAddr,
        local: SocketAddr,
        transport: Transport,
        bytes: &Bytes,
    ) {
        if let Some(s) = summarize(bytes) {
            self.observe_summarized(now, at, dir, peer, local, transport, bytes, &s);
        }
    }

    /// [`CallTraces::observe`] with the message's [`summarize`] already read (the tap reads it once for the
    /// trace and HEP both).
    #[allow(clippy::too_many_arguments)]
    pub fn observe_summarized(
        &mut self,
        now: Instant,
        at: SystemTime,
        dir: Direction,
        peer: SocketAddr,
        local: SocketAddr,
        transport: Transport,
        bytes: &Bytes,
        s: &Summary<'_>,
    ) {
        let trace = match self.traces.get_mut(s.call_id) {
            Some(t) => t,
            None if s.method == Some(b"INVITE") && !s.to_tag => {
                if self.traces.len() >= self.capacity {
                    self.counts.full += 1;
                    return;
                }
                let trace = Trace {
                    kept: VecDeque::new(),
                    bytes: 0,
                    elided: 0,
                    total: 0,
                    state: State::Unanswered,
                    last: now,
                    invite_at: at,
                    phrase: String::new(),
                };
                self.traces.entry(s.call_id.into()).or_insert(trace)
            }
            None => return,
        };
        trace.last = now;
        let len = bytes.len();
        // A datagram's or our own message's bytes are its own allocation: kept by reference. A message read
        // from a TCP or TLS stream may share the connection's read buffer, which it would keep alive: copied.
        let kept = match (dir, transport) {
            (Direction::In, Transport::Tcp | Transport::Tls) => Bytes::copy_from_slice(&bytes[..len.min(MAX_MESSAGE)]),
            _ => bytes.slice(..len.min(MAX_MESSAGE)),
        };
        trace.push(Kept { at, dir, peer, local, transport, bytes: kept, len });
        let Some(status) = s.status.filter(|s| *s >= 200) else { return };
        match (trace.state, s.cseq_method) {
            (State::Unanswered, b"INVITE") if status < 300 => trace.state = State::Answered,
            (State::Unanswered, b"INVITE") => {
                if !self.sampler.take(now, status) {
                    self.counts.refusals_dropped += 1;
                    self.traces.remove(s.call_id);
                    return;
                }
                trace.state = State::Ended { at: now, refused: Some(status) };
                let start = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
                let phrase = start.get(12..).unwrap_or_default();
                trace.phrase = String::from_utf8_lossy(&phrase[..phrase.len().min(128)]).trim().to_string();
            }
            (State::Answered, b"BYE") => {
                if let Some((call_id, t)) = self.traces.remove_entry(s.call_id) {
                    self.ready.push(Finished::of(&call_id, t));
                }
            }
            _ => {}
        }
    }

    /// The traces handed on at once since the last call (calls whose BYE was just answered).
    pub fn take_ready(&mut self, out: &mut Vec<Finished>) {
        out.append(&mut self.ready);
    }

    /// The traces that are over (ended and lingered, or idle too long), handed on.
    pub fn sweep(&mut self, now: Instant, out: &mut Vec<Finished>) {
        let done = |t: &Trace| match t.state {
            State::Ended { at, .. } => now.saturating_duration_since(at) >= LINGER,
            State::Unanswered => now.saturating_duration_since(t.last) >= IDLE_UNANSWERED,
            State::Answered => now.saturating_duration_since(t.last) >= IDLE_ANSWERED,
        };
        let over: Vec<Box<[u8]>> = self.traces.iter().filter(|(_, t)| done(t)).map(|(k, _)| k.clone()).collect();
        for call_id in over {
            if let Some(t) = self.traces.remove(&call_id) {
                out.push(Finished::of(&call_id, t));
            }
        }
    }

    /// Every trace, over or not (at shutdown).
    pub fn flush(&mut self, out: &mut Vec<Finished>) {
        for (call_id, t) in self.traces.drain() {
            out.push(Finished::of(&call_id, t));
        }
    }
}

/// A SIP message as a log or a trace may show it: control bytes other than CR, LF and HTAB escaped (`\x07`: a
/// quoted-pair may carry NUL, BEL or DEL, RFC 3261 §25.1, and none of them may reach a terminal raw), bytes that
/// are not UTF-8 replaced, and SDES keys (`a=crypto:… inline:KEY`) masked.
pub fn printable(bytes: &[u8]) -> String {
    if let Some(text) = plain(bytes) {
        return text.to_string();
    }
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let line = match line.find("inline:") {
            Some(at) if line.starts_with("a=crypto:") => {
                let key_end = line[at..].find(['|', ' ', ';', '\r', '\n']).map_or(line.len(), |e| at + e);
                format!("{}inline:***{}", &line[..at], &line[key_end..])
            }
            _ => line.to_string(),
        };
        for c in line.chars() {
            match c {
                '\r' | '\n' | '\t' => out.push(c),
                c if c.is_ascii_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
                c => out.push(c),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
