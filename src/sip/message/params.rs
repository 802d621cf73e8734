//! `;name[=value]` parameter lists as found in URIs (RFC 3261 §19.1.1) and header fields (§25.1
//! `generic-param`). Names compare case-insensitively; values are kept as received (quoted strings with
//! their quotes) so printing gives back what was parsed.

use bytes::{BufMut, Bytes, BytesMut};

use super::scan::{is_token, quoted_string, skip_wsp};

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

/// Parses `*( ";" param )` from `s`, a subslice of `src`. Returns the parameters and the unparsed rest (empty
/// for header style, the `?...` part for URI style).
pub(crate) fn parse_params<'s>(
    src: &Bytes,
    mut s: &'s [u8],
    style: ParamStyle,
) -> Result<(Params, &'s [u8]), &'static str> {
    let mut params = Params::new();
    loop {
        if style == ParamStyle::Header {
            s = skip_wsp(s);
        }
        match s.first() {
            None => return Ok((params, s)),
            Some(b'?') if style == ParamStyle::Uri => return Ok((params, s)),
            Some(b';') => s = &s[1..],
            Some(_) => return Err("unexpected character before a parameter"),
        }
        if style == ParamStyle::Header {
            s = skip_wsp(s);
        }
        let name_len = s.iter().position(|&b| !is_param_char(b, style)).unwrap_or(s.len());
        if name_len == 0 {
            return Err("empty parameter name");
        }
        let name = src.slice_ref(&s[..name_len]);
        s = &s[name_len..];
        let mut after_ws = s;
        if style == ParamStyle::Header {
            after_ws = skip_wsp(s);
        }
        if after_ws.first() != Some(&b'=') {
            params.push(Param { name, value: None });
            continue;
        }
        s = &after_ws[1..];
        if style == ParamStyle::Header {
            s = skip_wsp(s);
        }
        let value_len = if style == ParamStyle::Header && s.first() == Some(&b'"') {
            let (inner, _) = quoted_string(s).ok_or("unterminated quoted string in a parameter")?;
            inner.len() + 2
        } else {
            s.iter().position(|&b| !is_value_char(b, style)).unwrap_or(s.len())
        };
        let value = src.slice_ref(&s[..value_len]);
        s = &s[value_len..];
        params.push(Param { name, value: Some(value) });
    }
}

/// Parameter-name characters: URI `paramchar` (unreserved, escaped, `[]/:&+$`) or header `token`.
#[inline]
fn is_param_char(b: u8, style: ParamStyle) -> bool {
    match style {
        ParamStyle::Uri => is_uri_param_char(b),
        ParamStyle::Header => is_token(b),
    }
}

/// Parameter-value characters. Header values are `token / host / quoted-string`: a host may be a bracketed
/// or (in `received`, RFC 5118 §4.5) unbracketed IPv6 address, so `:` `[` `]` are accepted too.
#[inline]
fn is_value_char(b: u8, style: ParamStyle) -> bool {
    match style {
        ParamStyle::Uri => is_uri_param_char(b),
        ParamStyle::Header => is_token(b) || matches!(b, b':' | b'[' | b']'),
    }
}

/// RFC 3261 §25.1 `paramchar`: `param-unreserved / unreserved / escaped`.
#[inline]
pub(crate) fn is_uri_param_char(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'[' | b']'
                | b'/'
                | b':'
                | b'&'
                | b'+'
                | b'$'
                | b'-'
                | b'_'
                | b'.'
                | b'!'
                | b'~'
                | b'*'
                | b'\''
                | b'('
                | b')'
                | b'%'
        )
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
