//! Lexical building blocks of RFC 3261 §25.1: character classes, linear white space, tokens, quoted strings
//! and comma-list splitting. Pure functions over byte slices; never allocates, never panics on any input.

/// Character classes of RFC 3261 §25.1, one bit each, looked up in one table: a class test is a load and an
/// AND, whatever the class.
pub(crate) mod class {
    /// `token`: alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~".
    pub const TOKEN: u16 = 1;
    /// URI user part: `unreserved / escaped / user-unreserved`, plus `#`, which real trunks send unescaped.
    pub const USER: u16 = 1 << 1;
    /// URI password: `unreserved / escaped / "&" / "=" / "+" / "$" / ","`.
    pub const PASSWORD: u16 = 1 << 2;
    /// Host name: alphanum / "-" / "." (plus `_`, which real deployments use).
    pub const HOST: u16 = 1 << 3;
    /// URI `paramchar`: `param-unreserved / unreserved / escaped`.
    pub const URI_PARAM: u16 = 1 << 4;
    /// Header parameter value outside quotes: `token / host` (an IPv6 host brings `:` `[` `]`).
    pub const PARAM_VALUE: u16 = 1 << 5;
    /// Call-ID `word`.
    pub const WORD: u16 = 1 << 6;
    /// URI scheme after its first letter: ALPHA / DIGIT / "+" / "-" / ".".
    pub const SCHEME: u16 = 1 << 7;
    /// Bytes no URI may hold unescaped: CTLs, space, DEL, `<` `>` `"`.
    pub const NOT_IN_URI: u16 = 1 << 8;
}

static CLASSES: [u16; 256] = {
    let mut t = [0u16; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        let alnum = b.is_ascii_alphanumeric();
        let mark = matches!(b, b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')');
        let unreserved_or_escape = alnum || mark || b == b'%';
        let token = alnum || matches!(b, b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~');
        let mut v = 0;
        if token {
            v |= class::TOKEN | class::PARAM_VALUE | class::WORD;
        }
        if unreserved_or_escape || matches!(b, b'&' | b'=' | b'+' | b'$' | b',' | b';' | b'?' | b'/' | b'#') {
            v |= class::USER;
        }
        if unreserved_or_escape || matches!(b, b'&' | b'=' | b'+' | b'$' | b',') {
            v |= class::PASSWORD;
        }
        if alnum || matches!(b, b'-' | b'.' | b'_') {
            v |= class::HOST;
        }
        if unreserved_or_escape || matches!(b, b'[' | b']' | b'/' | b':' | b'&' | b'+' | b'$') {
            v |= class::URI_PARAM;
        }
        if matches!(b, b':' | b'[' | b']') {
            v |= class::PARAM_VALUE;
        }
        if matches!(b, b'(' | b')' | b'<' | b'>' | b':' | b'\\' | b'"' | b'/' | b'[' | b']' | b'?' | b'{' | b'}') {
            v |= class::WORD;
        }
        if alnum || matches!(b, b'+' | b'-' | b'.') {
            v |= class::SCHEME;
        }
        if b <= b' ' || b == 0x7f || matches!(b, b'<' | b'>' | b'"') {
            v |= class::NOT_IN_URI;
        }
        t[c] = v;
        c += 1;
    }
    t
};

/// Whether `b` belongs to `class` (one of the [`class`] bits).
#[inline(always)]
pub(crate) fn is(b: u8, class: u16) -> bool {
    CLASSES[b as usize] & class != 0
}

/// The length of the run of `class` bytes at the start of `s`.
#[inline]
pub(crate) fn run(s: &[u8], class: u16) -> usize {
    s.iter().position(|&b| !is(b, class)).unwrap_or(s.len())
}

/// Whether `b` is an RFC 3261 `token` character.
#[inline(always)]
pub(crate) fn is_token(b: u8) -> bool {
    is(b, class::TOKEN)
}

/// Whether every byte of a non-empty `s` is a token character.
#[inline]
pub(crate) fn is_token_str(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_token(b))
}

/// The first position in `s` of a control byte (below 0x20, or DEL): where a header line ends (CRLF) or what
/// makes it malformed. Sixteen bytes a step with SSE2 (x86_64 baseline), plain bytes elsewhere. (A scanner
/// that carries its mask from line to line was measured: its bookkeeping costs more than the re-scan.)
#[inline]
pub(crate) fn find_ctl(s: &[u8]) -> Option<usize> {
    let mut at = 0;
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::*;
        while at + 16 <= s.len() {
            // SAFETY: SSE2 is part of the x86_64 baseline; the unaligned load reads s[at..at + 16], in bounds.
            let mask = unsafe {
                let v = _mm_loadu_si128(s.as_ptr().add(at).cast::<__m128i>());
                let low = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1f)), v);
                let del = _mm_cmpeq_epi8(v, _mm_set1_epi8(0x7f));
                _mm_movemask_epi8(_mm_or_si128(low, del))
            };
            if mask != 0 {
                return Some(at + mask.trailing_zeros() as usize);
            }
            at += 16;
        }
    }
    s[at..].iter().position(|&b| b < 0x20 || b == 0x7f).map(|i| at + i)
}

/// The length of the run of `token` bytes at the start of `s` (with `HOST` also `:` `[` `]`, the bytes a
/// header parameter value may add for an IPv6 host). Sixteen bytes a step with SSE2 (x86_64 baseline).
#[inline]
pub(crate) fn token_run<const HOST: bool>(s: &[u8]) -> usize {
    let mut at = 0;
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::*;
        while at + 16 <= s.len() {
            // SAFETY: SSE2 is part of the x86_64 baseline; the unaligned load reads s[at..at + 16], in bounds.
            let mask = unsafe {
                let v = _mm_loadu_si128(s.as_ptr().add(at).cast::<__m128i>());
                let in_range = |lo: u8, hi: u8, x: __m128i| {
                    _mm_and_si128(
                        _mm_cmpgt_epi8(x, _mm_set1_epi8(lo as i8 - 1)),
                        _mm_cmplt_epi8(x, _mm_set1_epi8(hi as i8 + 1)),
                    )
                };
                let eq = |c: u8| _mm_cmpeq_epi8(v, _mm_set1_epi8(c as i8));
                // alphanum, then "-." "*+" "!" "%" "'" "_" "`" "~" (RFC 3261 token).
                let mut ok =
                    _mm_or_si128(in_range(b'0', b'9', v), in_range(b'a', b'z', _mm_or_si128(v, _mm_set1_epi8(0x20))));
                ok = _mm_or_si128(ok, _mm_or_si128(in_range(b'-', b'.', v), in_range(b'*', b'+', v)));
                ok =
                    _mm_or_si128(ok, _mm_or_si128(_mm_or_si128(eq(b'!'), eq(b'%')), _mm_or_si128(eq(b'\''), eq(b'_'))));
                ok = _mm_or_si128(ok, _mm_or_si128(eq(b'`'), eq(b'~')));
                if HOST {
                    ok = _mm_or_si128(ok, _mm_or_si128(eq(b':'), _mm_or_si128(eq(b'['), eq(b']'))));
                }
                _mm_movemask_epi8(ok) as u32
            };
            if mask != 0xffff {
                return at + (!mask).trailing_zeros() as usize;
            }
            at += 16;
        }
    }
    let class = if HOST { class::PARAM_VALUE } else { class::TOKEN };
    at + s[at..].iter().position(|&b| !is(b, class)).unwrap_or(s.len() - at)
}

/// The length of the run of host-name bytes (`alphanum / "-" / "." / "_"`) at the start of `s`, and whether
/// that run holds two dots in a row (an empty label). Sixteen bytes a step with SSE2 (x86_64 baseline).
#[inline]
pub(crate) fn host_run(s: &[u8]) -> (usize, bool) {
    let mut at = 0;
    let mut empty_label = false;
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::*;
        let mut prev_dot = false;
        while at + 16 <= s.len() {
            // SAFETY: SSE2 is part of the x86_64 baseline; the unaligned load reads s[at..at + 16], in bounds.
            let (host, dots) = unsafe {
                let v = _mm_loadu_si128(s.as_ptr().add(at).cast::<__m128i>());
                let in_range = |lo: u8, hi: u8, x: __m128i| {
                    _mm_and_si128(
                        _mm_cmpgt_epi8(x, _mm_set1_epi8(lo as i8 - 1)),
                        _mm_cmplt_epi8(x, _mm_set1_epi8(hi as i8 + 1)),
                    )
                };
                let digit = in_range(b'0', b'9', v);
                let letter = in_range(b'a', b'z', _mm_or_si128(v, _mm_set1_epi8(0x20)));
                let dash_dot = in_range(b'-', b'.', v);
                let underscore = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'_' as i8));
                let host = _mm_or_si128(_mm_or_si128(digit, letter), _mm_or_si128(dash_dot, underscore));
                let dots = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'.' as i8));
                (_mm_movemask_epi8(host) as u32, _mm_movemask_epi8(dots) as u32)
            };
            let run = (!host).trailing_zeros().min(16) as usize;
            let in_run = if run == 16 { 0xffff } else { (1u32 << run) - 1 };
            let dots = dots & in_run;
            empty_label |= (dots & (dots >> 1)) != 0 || (prev_dot && dots & 1 != 0);
            if run < 16 {
                return (at + run, empty_label);
            }
            prev_dot = dots & 0x8000 != 0;
            at += 16;
        }
    }
    let tail = &s[at..];
    let run = tail.iter().position(|&b| !is(b, class::HOST)).unwrap_or(tail.len());
    let before = if at > 0 { &s[at - 1..at + run] } else { &tail[..run] };
    empty_label |= before.windows(2).any(|w| w == b"..");
    (at + run, empty_label)
}

/// The first position in `s` holding any of `needles` (one to three bytes). For the short haystacks of SIP
/// lines this beats a general memchr, whose dispatch and set-up cost more than the scan: sixteen bytes a step
/// with SSE2 (x86_64 baseline), plain bytes elsewhere.
#[inline]
pub(crate) fn find_any<const N: usize>(s: &[u8], needles: [u8; N]) -> Option<usize> {
    let mut at = 0;
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::*;
        while at + 16 <= s.len() {
            // SAFETY: SSE2 is part of the x86_64 baseline; the unaligned load reads s[at..at + 16], in bounds.
            let mask = unsafe {
                let v = _mm_loadu_si128(s.as_ptr().add(at).cast::<__m128i>());
                let mut hit = _mm_setzero_si128();
                for n in needles {
                    hit = _mm_or_si128(hit, _mm_cmpeq_epi8(v, _mm_set1_epi8(n as i8)));
                }
                _mm_movemask_epi8(hit)
            };
            if mask != 0 {
                return Some(at + mask.trailing_zeros() as usize);
            }
            at += 16;
        }
    }
    s[at..].iter().position(|b| needles.contains(b)).map(|i| at + i)
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
/// HTAB, and DEL. Bytes 0x80 and above (UTF-8 or not) are allowed and kept as bytes.
pub(crate) fn has_forbidden_ctl(s: &[u8]) -> bool {
    s.iter().any(|&b| is_forbidden_ctl(b))
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
                match find_any(&s[i..], [b',', b'"', b'<']) {
                    None => break s.len(),
                    Some(off) => {
                        let at = i + off;
                        match s[at] {
                            b',' => break at,
                            b'"' => match quoted_string(&s[at..]) {
                                Some((inner, _)) => i = at + inner.len() + 2,
                                None => return self.fail("unterminated quoted string"),
                            },
                            _ => match find_any(&s[at..], [b'>']) {
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

/// The elements of a list header value, as [`split_commas`] finds them; where the value cannot be split (an
/// unterminated quoted string or `<`), the rest is yielded as one element, so that parsing it as a typed value
/// reports the error rather than the element being lost.
pub(crate) fn elements(s: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut split = split_commas(s);
    std::iter::from_fn(move || {
        let rest = split.rest;
        match split.next()? {
            Ok(item) => Some(item),
            Err(_) => Some(trim_wsp(rest)),
        }
    })
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
        for len in [1, 15, 16, 17, 40] {
            for pos in 0..len {
                for b in 0..=255u8 {
                    let mut v = vec![b'a'; len];
                    v[pos] = b;
                    let ctl = (b < 0x20 && b != b'\t') || b == 0x7f;
                    assert_eq!(has_forbidden_ctl(&v), ctl, "byte {b:#x} at {pos} of {len}");
                    let first_ctl = (b < 0x20 || b == 0x7f).then_some(pos);
                    assert_eq!(find_ctl(&v), first_ctl, "find_ctl: byte {b:#x} at {pos} of {len}");
                }
            }
        }
    }

    #[test]
    fn class_table_matches_the_rfc_3261_grammar() {
        for b in 0..=255u8 {
            let c = b as char;
            let token = c.is_ascii_alphanumeric() || "-.!%*_+`'~".contains(c);
            assert_eq!(is(b, class::TOKEN), token, "token {b:#x}");
            let host = c.is_ascii_alphanumeric() || "-._".contains(c);
            assert_eq!(is(b, class::HOST), host, "host {b:#x}");
            let unreserved = c.is_ascii_alphanumeric() || "-_.!~*'()%".contains(c);
            assert_eq!(is(b, class::USER), unreserved || "&=+$,;?/#".contains(c), "user {b:#x}");
            assert_eq!(is(b, class::URI_PARAM), unreserved || "[]/:&+$".contains(c), "paramchar {b:#x}");
            let not_in_uri = b <= b' ' || b == 0x7f || "<>\"".contains(c);
            assert_eq!(is(b, class::NOT_IN_URI), not_in_uri, "not-in-uri {b:#x}");
        }
    }

    #[test]
    fn token_runs_match_the_class_table() {
        for b in 0..=255u8 {
            for len in [5usize, 20, 40] {
                let mut v = vec![b'a'; len];
                v[len / 2] = b;
                let expect_token = if is(b, class::TOKEN) { len } else { len / 2 };
                let expect_value = if is(b, class::PARAM_VALUE) { len } else { len / 2 };
                assert_eq!(token_run::<false>(&v), expect_token, "token byte {b:#x} in {len}");
                assert_eq!(token_run::<true>(&v), expect_value, "value byte {b:#x} in {len}");
            }
        }
        assert_eq!(token_run::<false>(b""), 0);
    }

    #[test]
    fn host_run_matches_the_byte_by_byte_definition() {
        let samples: &[&[u8]] = &[
            b"vocals-acme.pstn.twilio.com:5060>;tag=1",
            b"54.244.51.1;lr",
            b"a..b",
            b"sip.vocals.example",
            b"0123456789abcdef.",
            b"0123456789abcdef..x",
            b"0123456789abcde..x",
            b"host_with_underscore-and-dash.example.org.",
            b"UPPER.CASE.EXAMPLE.COM.AND.MORE.LABELS]",
            b"\xc3\xa9t\xc3\xa9.example",
            b"",
        ];
        for s in samples {
            for start in 0..s.len().max(1) {
                let s = &s[start.min(s.len())..];
                let run = s.iter().position(|&b| !is(b, class::HOST)).unwrap_or(s.len());
                let empty = s[..run].windows(2).any(|w| w == b"..");
                assert_eq!(host_run(s), (run, empty), "{}", String::from_utf8_lossy(s));
            }
        }
        for b in 0..=255u8 {
            let mut v = vec![b'a'; 40];
            v[20] = b;
            let expect = if is(b, class::HOST) { 40 } else { 20 };
            assert_eq!(host_run(&v).0, expect, "byte {b:#x}");
        }
    }

    #[test]
    fn find_any_finds_the_first_needle_at_every_offset() {
        for len in [0, 1, 15, 16, 17, 31, 32, 33, 70] {
            for pos in 0..len {
                for needle in [b',', b'"', b'<'] {
                    let mut v = vec![b'a'; len];
                    v[pos] = needle;
                    if pos + 1 < len {
                        v[len - 1] = b'"';
                    }
                    assert_eq!(find_any(&v, [b',', b'"', b'<']), Some(pos), "{needle} at {pos} of {len}");
                    assert_eq!(find_any(&v, [needle]), Some(pos));
                }
            }
            assert_eq!(find_any(&vec![b'a'; len], [b',', b'"']), None);
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
