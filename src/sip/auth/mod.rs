//! Digest authentication for a UAC, sans-IO (RFC 3261 §22.2–§22.4, RFC 7616, RFC 8760): reading the
//! `WWW-Authenticate` / `Proxy-Authenticate` challenges of a 401 / 407 and writing the `Authorization` /
//! `Proxy-Authorization` credentials of the retried request. Algorithms MD5, SHA-256 and SHA-512-256 and
//! their `-sess` variants; `qop=auth` (with `cnonce` and `nc`) or, without qop, the RFC 2069 form. The
//! cnonce is the caller's (nothing here is random), and so is the nonce count. Hostile values are an
//! [`AuthError`] saying what was wrong, never a panic.

mod params;

use std::fmt;

pub use params::{MAX_CHALLENGES, MAX_PARAMS, MAX_VALUE};
use params::{Scheme, parse_schemes, quote};

/// A user name and password for digest authentication. Its `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials").field("username", &self.username).field("password", &"<hidden>").finish()
    }
}

/// Why a challenge cannot be answered.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No challenge uses the Digest scheme (e.g. only `Basic`), or no challenge header at all.
    #[error("no Digest challenge")]
    NoDigest,
    /// The Digest challenge names an algorithm vocals does not compute.
    #[error("unsupported digest algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    /// The challenge offers only `qop=auth-int` (integrity of the body), which vocals does not compute.
    #[error("the challenge offers only qop=auth-int")]
    QopAuthIntOnly,
    /// The value does not parse or lacks what a Digest challenge must have.
    #[error("malformed challenge: {0}")]
    Malformed(&'static str),
}

/// A digest algorithm (RFC 7616 §3.2, RFC 8760 §2.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Algorithm {
    Md5,
    Md5Sess,
    Sha256,
    Sha256Sess,
    Sha512_256,
    Sha512_256Sess,
}

impl Algorithm {
    fn parse(s: &str) -> Option<Algorithm> {
        [
            Algorithm::Md5,
            Algorithm::Md5Sess,
            Algorithm::Sha256,
            Algorithm::Sha256Sess,
            Algorithm::Sha512_256,
            Algorithm::Sha512_256Sess,
        ]
        .into_iter()
        .find(|a| a.as_str().eq_ignore_ascii_case(s))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
            Algorithm::Sha512_256 => "SHA-512-256",
            Algorithm::Sha512_256Sess => "SHA-512-256-sess",
        }
    }

    fn is_sess(self) -> bool {
        matches!(self, Algorithm::Md5Sess | Algorithm::Sha256Sess | Algorithm::Sha512_256Sess)
    }

    /// Preference when several challenges are offered (RFC 7616 §3.7: the strongest the client supports).
    fn strength(self) -> u8 {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => 0,
            Algorithm::Sha256 | Algorithm::Sha256Sess => 1,
            Algorithm::Sha512_256 | Algorithm::Sha512_256Sess => 2,
        }
    }

    /// The lower-case hex digest of `data`.
    fn hex(self, data: &[u8]) -> String {
        use md5::Digest;
        let bytes: Vec<u8> = match self {
            Algorithm::Md5 | Algorithm::Md5Sess => md5::Md5::digest(data).to_vec(),
            Algorithm::Sha256 | Algorithm::Sha256Sess => {
                ring::digest::digest(&ring::digest::SHA256, data).as_ref().to_vec()
            }
            Algorithm::Sha512_256 | Algorithm::Sha512_256Sess => {
                ring::digest::digest(&ring::digest::SHA512_256, data).as_ref().to_vec()
            }
        };
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// What `qop` the challenge allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Qop {
    /// No `qop` parameter: the RFC 2069 form.
    None,
    /// `auth` is among the offered values (`auth-int` may be too).
    Auth,
}

/// A Digest challenge (RFC 7616 §3.3), ready to be answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    pub realm: String,
    pub nonce: String,
    pub opaque: Option<String>,
    pub algorithm: Algorithm,
    /// Whether the challenge named its algorithm (the credentials then echo it).
    pub algorithm_given: bool,
    pub qop: Qop,
    /// The previous nonce was only stale: the same credentials are good, retry with the new nonce.
    pub stale: bool,
}

impl Challenge {
    /// The Digest challenge to answer among every value of the challenge headers of one response (each may
    /// hold several challenges): the strongest algorithm wins (SHA-512-256, SHA-256, then MD5). When none can
    /// be answered, the error of the first Digest challenge says why; a value that does not parse is an
    /// error even when another would do.
    pub fn pick<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> Result<Challenge, AuthError> {
        let mut best: Option<Challenge> = None;
        let mut first_error: Option<AuthError> = None;
        for value in values {
            for scheme in parse_schemes(value)? {
                if !scheme.scheme.eq_ignore_ascii_case("Digest") {
                    continue;
                }
                match Challenge::from_scheme(&scheme) {
                    Ok(c) => {
                        if best.as_ref().is_none_or(|b| c.algorithm.strength() > b.algorithm.strength()) {
                            best = Some(c);
                        }
                    }
                    Err(e) => {
                        first_error.get_or_insert(e);
                    }
                }
            }
        }
        best.ok_or(first_error.unwrap_or(AuthError::NoDigest))
    }

    /// The one Digest challenge of a header value (see [`Challenge::pick`]).
    pub fn parse(value: &[u8]) -> Result<Challenge, AuthError> {
        Challenge::pick([value])
    }

    fn from_scheme(s: &Scheme) -> Result<Challenge, AuthError> {
        let realm = s.get("realm").ok_or(AuthError::Malformed("no realm"))?.to_string();
        let nonce = s.get("nonce").ok_or(AuthError::Malformed("no nonce"))?.to_string();
        let (algorithm, algorithm_given) = match s.get("algorithm") {
            Some(a) => (Algorithm::parse(a).ok_or_else(|| AuthError::UnsupportedAlgorithm(a.to_string()))?, true),
            None => (Algorithm::Md5, false),
        };
        let qop = match s.get("qop") {
            None => Qop::None,
            Some(list) => {
                let mut values = list.split(',').map(str::trim).filter(|v| !v.is_empty());
                if values.clone().any(|v| v.eq_ignore_ascii_case("auth")) {
                    Qop::Auth
                } else if values.any(|v| v.eq_ignore_ascii_case("auth-int")) {
                    return Err(AuthError::QopAuthIntOnly);
                } else {
                    return Err(AuthError::Malformed("qop offers neither auth nor auth-int"));
                }
            }
        };
        let stale = s.get("stale").is_some_and(|v| v.eq_ignore_ascii_case("true"));
        Ok(Challenge {
            realm,
            nonce,
            opaque: s.get("opaque").map(str::to_string),
            algorithm,
            algorithm_given,
            qop,
            stale,
        })
    }

    /// The credentials answering this challenge for a request (RFC 7616 §3.4): `uri` is the Request-URI as
    /// sent, `cnonce` the caller's fresh client nonce, `nc` how many times this nonce has been used, this use
    /// included (1 the first time). Without qop, the RFC 2069 form (no cnonce, no nc).
    pub fn respond(&self, creds: &Credentials, method: &str, uri: &str, cnonce: &str, nc: u32) -> String {
        let a = self.algorithm;
        let mut ha1 = a.hex(format!("{}:{}:{}", creds.username, self.realm, creds.password).as_bytes());
        if a.is_sess() {
            ha1 = a.hex(format!("{ha1}:{}:{cnonce}", self.nonce).as_bytes());
        }
        let ha2 = a.hex(format!("{method}:{uri}").as_bytes());
        let nc = format!("{nc:08x}");
        let response = match self.qop {
            Qop::Auth => a.hex(format!("{ha1}:{}:{nc}:{cnonce}:auth:{ha2}", self.nonce).as_bytes()),
            Qop::None => a.hex(format!("{ha1}:{}:{ha2}", self.nonce).as_bytes()),
        };
        let mut out = format!(
            "Digest username={}, realm={}, nonce={}, uri={}, response=\"{response}\"",
            quote(&creds.username),
            quote(&self.realm),
            quote(&self.nonce),
            quote(uri)
        );
        if self.algorithm_given || a != Algorithm::Md5 {
            out.push_str(", algorithm=");
            out.push_str(a.as_str());
        }
        if self.qop == Qop::Auth {
            out.push_str(&format!(", cnonce={}, qop=auth, nc={nc}", quote(cnonce)));
        }
        if let Some(opaque) = &self.opaque {
            out.push_str(", opaque=");
            out.push_str(&quote(opaque));
        }
        out
    }
}

impl fmt::Display for Challenge {
    /// The challenge as a header value (`Digest realm="…", nonce="…", …`): it parses back to itself.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest realm={}, nonce={}", quote(&self.realm), quote(&self.nonce))?;
        if let Some(o) = &self.opaque {
            write!(f, ", opaque={}", quote(o))?;
        }
        if self.algorithm_given {
            write!(f, ", algorithm={}", self.algorithm.as_str())?;
        }
        if self.qop == Qop::Auth {
            write!(f, ", qop=\"auth\"")?;
        }
        if self.stale {
            write!(f, ", stale=true")?;
        }
        Ok(())
    }
}

/// Digest credentials as read back from an `Authorization` / `Proxy-Authorization` value (for checks and
/// tests): every parameter, unquoted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DigestCredentials {
    pub params: Vec<(String, String)>,
}

impl DigestCredentials {
    pub fn parse(value: &[u8]) -> Result<DigestCredentials, AuthError> {
        let mut schemes = parse_schemes(value)?;
        if schemes.len() != 1 || !schemes[0].scheme.eq_ignore_ascii_case("Digest") {
            return Err(AuthError::NoDigest);
        }
        Ok(DigestCredentials { params: schemes.remove(0).params })
    }

    /// The first value of `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests;
