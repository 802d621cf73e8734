//! The grammar of a challenge or credentials header value (RFC 3261 §25.1 `challenge` / `credentials`, RFC 7616
//! §3.3): `scheme auth-param *(COMMA auth-param)`, several challenges possibly in one value (RFC 7235 §4.1),
//! values as tokens or quoted strings with `\` escapes. Bounded: a value past [`MAX_VALUE`] bytes, or with
//! more than [`MAX_PARAMS`] parameters or [`MAX_CHALLENGES`] challenges, is refused.

use super::AuthError;

/// Longest header value read (the message layer's default header line cap).
pub const MAX_VALUE: usize = 16_384;
/// Most parameters in one challenge (a Digest challenge has about ten).
pub const MAX_PARAMS: usize = 32;
/// Most challenges in one value.
pub const MAX_CHALLENGES: usize = 16;

/// One challenge or credentials: its scheme and its parameters in order, names as written, values unquoted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scheme {
    pub scheme: String,
    pub params: Vec<(String, String)>,
}

impl Scheme {
    /// The first value of `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

fn malformed(what: &'static str) -> AuthError {
    AuthError::Malformed(what)
}

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn skip_ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\r' | b'\n') {
            self.i += 1;
        }
    }

    /// Skips white space and commas; whether any comma was seen.
    fn skip_separators(&mut self) -> bool {
        let mut comma = false;
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\r' | b'\n' | b',') {
            comma |= self.s[self.i] == b',';
            self.i += 1;
        }
        comma
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn token(&mut self) -> Option<&str> {
        let start = self.i;
        while self.i < self.s.len() && is_tchar(self.s[self.i]) {
            self.i += 1;
        }
        // tchar is ASCII, so the slice is UTF-8.
        (self.i > start).then(|| std::str::from_utf8(&self.s[start..self.i]).unwrap_or_default())
    }

    /// A quoted string from its opening quote: the value with escapes removed.
    fn quoted(&mut self) -> Result<String, AuthError> {
        debug_assert_eq!(self.peek(), Some(b'"'));
        self.i += 1;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return Err(malformed("unterminated quoted string")),
                Some(b'"') => {
                    self.i += 1;
                    break;
                }
                Some(b'\\') => {
                    let Some(&c) = self.s.get(self.i + 1) else { return Err(malformed("unterminated quoted string")) };
                    out.push(c);
                    self.i += 2;
                }
                Some(c) => {
                    out.push(c);
                    self.i += 1;
                }
            }
        }
        String::from_utf8(out).map_err(|_| malformed("a quoted value is not UTF-8"))
    }
}

/// Every challenge (or credentials) in a header value, in order.
pub fn parse_schemes(value: &[u8]) -> Result<Vec<Scheme>, AuthError> {
    if value.len() > MAX_VALUE {
        return Err(AuthError::Malformed("header value too long"));
    }
    let mut c = Cursor { s: value, i: 0 };
    let mut out: Vec<Scheme> = Vec::new();
    c.skip_separators();
    while c.peek().is_some() {
        let scheme = c.token().ok_or(malformed("expected an authentication scheme"))?.to_string();
        if out.len() == MAX_CHALLENGES {
            return Err(malformed("too many challenges"));
        }
        let mut params: Vec<(String, String)> = Vec::new();
        c.skip_ws();
        loop {
            let save = c.i;
            let Some(name) = c.token().map(str::to_string) else { break };
            c.skip_ws();
            if c.peek() != Some(b'=') {
                // A token not followed by '=' starts the next challenge.
                c.i = save;
                break;
            }
            c.i += 1;
            c.skip_ws();
            let value = match c.peek() {
                Some(b'"') => c.quoted()?,
                _ => c.token().ok_or(malformed("a parameter has no value"))?.to_string(),
            };
            if params.len() == MAX_PARAMS {
                return Err(malformed("too many parameters"));
            }
            params.push((name, value));
            let comma = c.skip_separators();
            if c.peek().is_some() && !comma {
                return Err(malformed("parameters must be separated by commas"));
            }
        }
        if params.is_empty() && c.peek().is_some() && c.token().is_none() {
            return Err(malformed("expected a parameter"));
        }
        out.push(Scheme { scheme, params });
        c.skip_separators();
    }
    if out.is_empty() {
        return Err(malformed("empty header value"));
    }
    Ok(out)
}

/// `s` as a quoted string: `"` and `\` escaped.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        if ch == '"' || ch == '\\' {
            out.push('\\');
        }
        out.push(ch);
    }
    out.push('"');
    out
}
