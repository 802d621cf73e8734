//! Why a message was refused, with the status a UAS answers it with (RFC 3261 §8.2, §16.3, §18.3) and a
//! stable kind string that tests and counters use.

use super::method::StatusCode;

/// A message that could not be parsed. Every variant says what was wrong in words a SIP trace reader
/// understands; `Display` is suitable as a 400 reason phrase.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Stream framing: more bytes are needed.
    #[error("message is incomplete")]
    Incomplete,
    #[error("malformed start line: {0}")]
    StartLine(&'static str),
    /// A well-formed SIP version other than 2.0: answered 505.
    #[error("SIP version not supported")]
    Version,
    #[error("bad Request-URI: {0}")]
    RequestUri(&'static str),
    #[error("malformed header line: {0}")]
    HeaderSyntax(&'static str),
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    #[error("more than one {0} header")]
    DuplicateHeader(&'static str),
    #[error("bad {name} header: {reason}")]
    HeaderValue { name: &'static str, reason: &'static str },
    #[error("bad Content-Length: {0}")]
    ContentLength(&'static str),
    /// Datagram whose body is shorter than Content-Length says (§18.3: answered 400).
    #[error("body shorter than Content-Length ({available} of {declared} bytes)")]
    TruncatedBody { declared: usize, available: usize },
    #[error("CSeq method does not match the request method")]
    CSeqMismatch,
    /// A configured size limit was exceeded: answered 513 where an answer is possible.
    #[error("{what} exceeds the limit of {limit}")]
    TooLarge { what: &'static str, limit: usize },
}

impl ParseError {
    /// A stable, short name for the kind of error (used by test vectors and metrics labels).
    pub fn kind(&self) -> &'static str {
        match self {
            ParseError::Incomplete => "incomplete",
            ParseError::StartLine(_) => "start-line",
            ParseError::Version => "version",
            ParseError::RequestUri(_) => "request-uri",
            ParseError::HeaderSyntax(_) => "header-syntax",
            ParseError::MissingHeader(_) => "missing-header",
            ParseError::DuplicateHeader(_) => "duplicate-header",
            ParseError::HeaderValue { .. } => "header-value",
            ParseError::ContentLength(_) => "content-length",
            ParseError::TruncatedBody { .. } => "truncated-body",
            ParseError::CSeqMismatch => "cseq-mismatch",
            ParseError::TooLarge { .. } => "too-large",
        }
    }

    /// The response a UAS owes a request that failed this way.
    pub fn status(&self) -> StatusCode {
        match self {
            ParseError::Version => StatusCode::VERSION_NOT_SUPPORTED,
            ParseError::TooLarge { .. } => StatusCode::MESSAGE_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_say_what_was_wrong_and_map_to_statuses() {
        let e = ParseError::HeaderValue { name: "CSeq", reason: "sequence number must be a decimal below 2^31" };
        assert_eq!(e.to_string(), "bad CSeq header: sequence number must be a decimal below 2^31");
        assert_eq!(e.status().as_u16(), 400);
        assert_eq!(ParseError::Version.status().as_u16(), 505);
        assert_eq!(ParseError::TooLarge { what: "message size in bytes", limit: 65536 }.status().as_u16(), 513);
        assert_eq!(ParseError::MissingHeader("Call-ID").to_string(), "missing Call-ID header");
    }
}
