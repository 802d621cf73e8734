//! `;name[=value]` parameter lists as found in URIs (RFC 3261 §19.1.1) and header fields (§25.1
//! `generic-param`). Names compare case-insensitively; values are kept as received (quoted strings with
//! their quotes) so printing gives back what was parsed.

use bytes::{BufMut, Bytes, BytesMut};

use super::scan::{class, is, quoted_string, skip_wsp, token_run};

/// One parameter. `value` is `None` for a flag such as `;lr`, `Some("")` for `;x=`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Param {
    pub name: Bytes,
    pub value: Option<Bytes>,
}

/// An ordered list of parameters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Params(Vec<Param>);

impl Params {
    pub fn new() -> Self {
        Self(Vec::new())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Param> {
        self.0.iter()
    }

    /// The first parameter called `name` (case-insensitive).
    pub fn find(&self, name: &str) -> Option<&Param> {
        self.0.iter().find(|p| p.name.eq_ignore_ascii_case(name.as_bytes()))
    }

    /// Whether a parameter called `name` is present, with or without a value.
    pub fn contains(&self, name: &str) -> bool {
        self.find(name).is_some()
    }

    /// The value of `name`, if present with a value.
    pub fn value(&self, name: &str) -> Option<&Bytes> {
        self.find(name).and_then(|p| p.value.as_ref())
    }

    /// Sets `name` to `value`, replacing an existing parameter of that name in place or appending.
    pub fn set(&mut self, name: &str, value: Option<Bytes>) {
        match self.0.iter_mut().find(|p| p.name.eq_ignore_ascii_case(name.as_bytes())) {
            Some(p) => p.value = value,
            None => self.0.push(Param { name: Bytes::copy_from_slice(name.as_bytes()), value }),
        }
    }

    /// Removes every parameter called `name`.
    pub fn remove(&mut self, name: &str) {
        self.0.retain(|p| !p.name.eq_ignore_ascii_case(name.as_bytes()));
    }

    pub fn push(&mut self, param: Param) {
        self.0.push(param);
    }

    /// Writes `;name=value` for each parameter.
    pub fn encode(&self, out: &mut BytesMut) {
        for p in &self.0 {
            out.put_u8(b';');
            out.put_slice(&p.name);
            if let Some(v) = &p.value {
                out.put_u8(b'=');
                out.put_slice(v);
            }
        }
    }
}

impl<'a> IntoIterator for &'a Params {
    type Item = &'a Param;
    type IntoIter = std::slice::Iter<'a, Param>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// Which grammar the parameters follow.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum ParamStyle {
    /// URI parameters: no white space anywhere, the list ends at `?` (headers) or the end of the input.
    Uri,
    /// Header parameters: white space allowed around `;` and `=`, values may be quoted strings; the list ends
    /// at the end of the input.
    Header,
}

/// One parameter as borrowed slices: name, and value if `=` was present.
pub(crate) type RawParam<'a> = (&'a [u8], Option<&'a [u8]>);

/// Walks `*( ";" param )` without allocating. Yields each parameter, or one error and then stops. After the
/// last parameter, [`ParamIter::rest`] is the unparsed rest: empty for header style, `?...` for URI style.
pub(crate) struct ParamIter<'a> {
    s: &'a [u8],
    style: ParamStyle,
    failed: bool,
}

impl<'a> ParamIter<'a> {
    pub(crate) fn new(s: &'a [u8], style: ParamStyle) -> Self {
        ParamIter { s, style, failed: false }
    }

    pub(crate) fn rest(&self) -> &'a [u8] {
        self.s
    }

    fn fail(&mut self, why: &'static str) -> Option<Result<RawParam<'a>, &'static str>> {
        self.failed = true;
        Some(Err(why))
    }

    fn ws(&self, s: &'a [u8]) -> &'a [u8] {
        if self.style == ParamStyle::Header { skip_wsp(s) } else { s }
    }
}

impl<'a> Iterator for ParamIter<'a> {
    type Item = Result<RawParam<'a>, &'static str>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let s = self.ws(self.s);
        match s.first() {
            None => {
                self.s = s;
                return None;
            }
            Some(b'?') if self.style == ParamStyle::Uri => return None,
            // The next element of a list header.
            Some(b',') if self.style == ParamStyle::Header => {
                self.s = s;
                return None;
            }
            Some(b';') => {}
            Some(_) => return self.fail("unexpected character before a parameter"),
        }
        let s = self.ws(&s[1..]);
        let name_len = match self.style {
            ParamStyle::Header => token_run::<false>(s),
            ParamStyle::Uri => s.iter().position(|&b| !is_param_char(b, self.style)).unwrap_or(s.len()),
        };
        if name_len == 0 {
            return self.fail("empty parameter name");
        }
        let (name, s) = s.split_at(name_len);
        let after = self.ws(s);
        if after.first() != Some(&b'=') {
            self.s = s;
            return Some(Ok((name, None)));
        }
        let s = self.ws(&after[1..]);
        let value_len = if self.style == ParamStyle::Header && s.first() == Some(&b'"') {
            match quoted_string(s) {
                Some((inner, _)) => inner.len() + 2,
                None => return self.fail("unterminated quoted string in a parameter"),
            }
        } else if self.style == ParamStyle::Header {
            token_run::<true>(s)
        } else {
            s.iter().position(|&b| !is_value_char(b, self.style)).unwrap_or(s.len())
        };
        let (value, s) = s.split_at(value_len);
        self.s = s;
        Some(Ok((name, Some(value))))
    }
}

/// Checks `*( ";" param )` at the start of `s` without allocating; returns `(params, rest)` as slices.
pub(crate) fn split_params(s: &[u8], style: ParamStyle) -> Result<(&[u8], &[u8]), &'static str> {
    let mut it = ParamIter::new(s, style);
    for p in &mut it {
        p?;
    }
    let rest = it.rest();
    Ok((&s[..s.len() - rest.len()], rest))
}

/// Checks header parameters that must run to the end of `s`; returns them as a slice.
pub(crate) fn header_params(s: &[u8]) -> Result<&[u8], &'static str> {
    match split_params(s, ParamStyle::Header)? {
        (params, []) => Ok(params),
        _ => Err("unexpected character after the parameters"),
    }
}

/// Parses `*( ";" param )` from `s`, a subslice of `src`, into owned parameters; returns them and the rest.
pub(crate) fn parse_params<'s>(
    src: &Bytes,
    s: &'s [u8],
    style: ParamStyle,
) -> Result<(Params, &'s [u8]), &'static str> {
    let mut params = Params::new();
    let mut it = ParamIter::new(s, style);
    for p in &mut it {
        let (name, value) = p?;
        params.push(Param { name: src.slice_ref(name), value: value.map(|v| src.slice_ref(v)) });
    }
    Ok((params, it.rest()))
}

/// Parameter-name characters: URI `paramchar` or header `token`.
#[inline(always)]
fn is_param_char(b: u8, style: ParamStyle) -> bool {
    is(b, if style == ParamStyle::Uri { class::URI_PARAM } else { class::TOKEN })
}

/// Parameter-value characters. Header values are `token / host / quoted-string`: a host may be a bracketed
/// or (in `received`, RFC 5118 §4.5) unbracketed IPv6 address, so `:` `[` `]` are accepted too.
#[inline(always)]
fn is_value_char(b: u8, style: ParamStyle) -> bool {
    is(b, if style == ParamStyle::Uri { class::URI_PARAM } else { class::PARAM_VALUE })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(s: &str) -> Params {
        let src = Bytes::copy_from_slice(s.as_bytes());
        let (p, rest) = parse_params(&src, &src, ParamStyle::Header).unwrap();
        assert!(rest.is_empty());
        p
    }

    #[test]
    fn header_params_allow_white_space_and_quoted_values() {
        let p = header(r#" ; tag = abc ;lr; text="a;b \"c\"" ;x="#);
        assert_eq!(p.value("TAG").unwrap(), "abc");
        assert!(p.contains("lr") && p.value("lr").is_none());
        assert_eq!(p.value("text").unwrap(), r#""a;b \"c\"""#);
        assert_eq!(p.value("x").unwrap(), "");
    }

    #[test]
    fn received_may_hold_an_unbracketed_ipv6_address() {
        let p = header(";received=2001:db8::9:255;branch=z9hG4bK");
        assert_eq!(p.value("received").unwrap(), "2001:db8::9:255");
    }

    #[test]
    fn uri_params_stop_at_headers() {
        let src = Bytes::from_static(b";transport=tcp;lr?Subject=x");
        let (p, rest) = parse_params(&src, &src, ParamStyle::Uri).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(rest, b"?Subject=x");
    }

    #[test]
    fn set_replaces_in_place_and_encode_prints_in_order() {
        let mut p = header(";a=1;b;c=3");
        p.set("B", Some(Bytes::from_static(b"2")));
        p.set("d", None);
        p.remove("a");
        let mut out = BytesMut::new();
        p.encode(&mut out);
        assert_eq!(&out[..], b";b=2;c=3;d");
    }

    #[test]
    fn garbage_between_params_is_refused() {
        let src = Bytes::from_static(b";a=1 junk");
        assert!(parse_params(&src, &src, ParamStyle::Header).is_err());
        let src = Bytes::from_static(b";=1");
        assert!(parse_params(&src, &src, ParamStyle::Header).is_err());
    }
}
