//! Lexical building blocks of RFC 3261 §25.1: character classes, linear white space, tokens, quoted strings
//! and comma-list splitting. Pure functions over byte slices; never allocates, never panics on any input.

/// RFC 3261 §25.1 `token` characters: alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~".
static TOKEN: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~');
        c += 1;
    }
    t
};

/// Whether `b` is an RFC 3261 `token` character.
#[inline]
pub(crate) fn is_token(b: u8) -> bool {
    TOKEN[b as usize]
}

/// Whether every byte of a non-empty `s` is a token character.
#[inline]
pub(crate) fn is_token_str(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_token(b))
}

/// Space or horizontal tab (`WSP`).
#[inline]
pub(crate) fn is_wsp(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Strips leading and trailing `WSP`.
#[inline]
pub(crate) fn trim_wsp(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|&b| !is_wsp(b)).unwrap_or(s.len());
    let end = s.iter().rposition(|&b| !is_wsp(b)).map_or(start, |e| e + 1);
    &s[start..end]
}

/// Strips leading `WSP`.
#[inline]
pub(crate) fn skip_wsp(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|&b| !is_wsp(b)).unwrap_or(s.len());
    &s[start..]
}

/// Whether `s` holds a control character that may not appear in a header value: anything below 0x20 except
/// HTAB, and DEL. Bytes 0x80 and above (UTF-8 or not) are allowed and kept as bytes. Checks eight bytes a step.
pub(crate) fn has_forbidden_ctl(s: &[u8]) -> bool {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let mut chunks = s.chunks_exact(8);
    for chunk in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        let x = u64::from_le_bytes(w);
        // A byte below 0x20 turns its high bit on in `x - 0x20..`, unless it already had it; DEL adds one to 0x80.
        let below = x.wrapping_sub(LO * 0x20) & !x & HI;
        let del = (x ^ (LO * 0x7f)).wrapping_sub(LO) & !(x ^ (LO * 0x7f)) & HI;
        if (below | del) != 0 && chunk.iter().any(|&b| is_forbidden_ctl(b)) {
            return true;
        }
    }
    chunks.remainder().iter().any(|&b| is_forbidden_ctl(b))
}

#[inline]
fn is_forbidden_ctl(b: u8) -> bool {
    (b < 0x20 && b != b'\t') || b == 0x7f
}

/// Reads an RFC 3261 `quoted-string` starting at `s[0] == '"'`. Returns the raw inner bytes (escapes kept) and
/// the rest after the closing quote, or `None` when the quote is never closed.
pub(crate) fn quoted_string(s: &[u8]) -> Option<(&[u8], &[u8])> {
    debug_assert_eq!(s.first(), Some(&b'"'));
    let mut i = 1;
    while i < s.len() {
        match s[i] {
            b'\\' => i += 2,
            b'"' => return Some((&s[1..i], &s[i + 1..])),
            _ => i += 1,
        }
    }
    None
}

/// Removes `quoted-pair` escapes (`\x` -> `x`) from the inner bytes of a quoted string.
pub(crate) fn unescape_quoted(inner: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if memchr::memchr(b'\\', inner).is_none() {
        return std::borrow::Cow::Borrowed(inner);
    }
    let mut out = Vec::with_capacity(inner.len());
    let mut it = inner.iter();
    while let Some(&b) = it.next() {
        if b == b'\\' {
            if let Some(&n) = it.next() {
                out.push(n);
            }
        } else {
            out.push(b);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Splits a header value at its top-level commas: commas inside quoted strings and inside `<...>` do not split.
/// Each yielded element is trimmed of `WSP`; empty elements are skipped. Yields `Err` once, at an unterminated
/// quoted string or angle bracket.
pub(crate) fn split_commas(s: &[u8]) -> CommaSplit<'_> {
    CommaSplit { rest: s, failed: false }
}

pub(crate) struct CommaSplit<'a> {
    rest: &'a [u8],
    failed: bool,
}

impl<'a> Iterator for CommaSplit<'a> {
    type Item = Result<&'a [u8], &'static str>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.failed || self.rest.is_empty() {
                return None;
            }
            let s = self.rest;
            let mut i = 0;
            let end = loop {
                match memchr::memchr3(b',', b'"', b'<', &s[i..]) {
                    None => break s.len(),
                    Some(off) => {
                        let at = i + off;
                        match s[at] {
                            b',' => break at,
                            b'"' => match quoted_string(&s[at..]) {
                                Some((inner, _)) => i = at + inner.len() + 2,
                                None => return self.fail("unterminated quoted string"),
                            },
                            _ => match memchr::memchr(b'>', &s[at..]) {
                                Some(close) => i = at + close + 1,
                                None => return self.fail("'<' without a closing '>'"),
                            },
                        }
                    }
                }
            };
            let item = trim_wsp(&s[..end]);
            self.rest = if end < s.len() { &s[end + 1..] } else { &[] };
            if !item.is_empty() {
                return Some(Ok(item));
            }
        }
    }
}

impl CommaSplit<'_> {
    fn fail(&mut self, why: &'static str) -> Option<Result<&'static [u8], &'static str>> {
        self.failed = true;
        Some(Err(why))
    }
}

/// Parses a run of ASCII digits into a `u64`, refusing empty input, non-digits and overflow.
pub(crate) fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 {
        return None;
    }
    let mut v: u64 = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u64::from(b - b'0');
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(s: &str) -> Vec<String> {
        split_commas(s.as_bytes()).map(|r| String::from_utf8(r.unwrap().to_vec()).unwrap()).collect()
    }

    #[test]
    fn commas_inside_quotes_and_angle_brackets_do_not_split() {
        assert_eq!(
            split(r#""Watson, Thomas" <sip:a@b>;tag=1 , <sip:c@d;x=a,b>, sip:e@f"#),
            vec![r#""Watson, Thomas" <sip:a@b>;tag=1"#, "<sip:c@d;x=a,b>", "sip:e@f"]
        );
    }

    #[test]
    fn empty_list_elements_are_skipped() {
        assert_eq!(split("INVITE, ,ACK,,BYE "), vec!["INVITE", "ACK", "BYE"]);
    }

    #[test]
    fn escaped_quote_does_not_end_a_quoted_string() {
        assert_eq!(split(r#""a\", b" <sip:x@y>, z"#), vec![r#""a\", b" <sip:x@y>"#, "z"]);
    }

    #[test]
    fn unterminated_quote_is_an_error() {
        let items: Vec<_> = split_commas(br#"a, "b, c"#).collect();
        assert_eq!(items, vec![Ok(&b"a"[..]), Err("unterminated quoted string")]);
    }

    #[test]
    fn control_characters_are_found_anywhere() {
        assert!(!has_forbidden_ctl(b"plain value with\ttab and \xc3\xa9 bytes, long enough"));
        for pos in 0..20 {
            for bad in [0u8, 1, 0x0b, 0x1f, 0x7f, b'\r', b'\n'] {
                let mut v = vec![b'a'; 20];
                v[pos] = bad;
                assert!(has_forbidden_ctl(&v), "byte {bad:#x} at {pos}");
            }
        }
    }

    #[test]
    fn unescape_removes_quoted_pairs() {
        assert_eq!(&*unescape_quoted(br#"a\"b\\c"#), br#"a"b\c"#);
    }

    #[test]
    fn digits_parse_without_overflow() {
        assert_eq!(parse_u64(b"4294967296"), Some(4_294_967_296));
        assert_eq!(parse_u64(b"99999999999999999999"), None);
        assert_eq!(parse_u64(b"-1"), None);
        assert_eq!(parse_u64(b""), None);
    }
}
