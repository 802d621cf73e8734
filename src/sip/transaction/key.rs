//! Matching messages to transactions: RFC 3261 §17.2.3 for requests (branch with the magic cookie, sent-by,
//! method; ACK matches its INVITE), the RFC 2543 fallback for branches without the cookie, and §17.1.3 for
//! responses to our own requests (branch and CSeq method).

use bytes::Bytes;

use crate::sip::message::typed::Transport;
use crate::sip::message::{Method, ParseError, Request, Response};

/// What identifies a transaction. Keys are kept for as long as their transactions (32 s for a finished one
/// over UDP, hundreds of thousands at a few thousand calls a second), and cloned onto the timer heap: so they
/// are small (the rare RFC 2543 form is boxed), own their bytes rather than pin the whole datagram they came
/// in, and clone without allocating.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TransactionKey {
    /// A server transaction (RFC 3261 §17.2.3): the top Via's branch and sent-by (lower case), and the method
    /// (an ACK carries INVITE here, so it finds the INVITE's transaction).
    Server { branch: Bytes, sent_by: Bytes, method: Method },
    /// A server transaction with an RFC 2543 peer (no magic cookie).
    Rfc2543(Box<Rfc2543Key>),
    /// A client transaction (§17.1.3): the branch vocals put in its Via, and the CSeq method.
    Client { branch: Bytes, method: Method },
}

/// An RFC 2543 peer's transaction: Request-URI, From tag, Call-ID, CSeq number, top Via and method. The To
/// tag is left out: the INVITE had none and its ACK carries ours.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Rfc2543Key {
    pub request_uri: Bytes,
    pub from_tag: Option<Bytes>,
    pub call_id: Bytes,
    pub cseq: u32,
    pub top_via: Bytes,
    pub method: Method,
}

/// A copy of `b` that owns its bytes: a slice of a received message would keep all of the message alive.
fn own(b: &Bytes) -> Bytes {
    Bytes::copy_from_slice(b)
}

/// `m`, owning its bytes when it is an extension method.
fn own_method(m: &Method) -> Method {
    match m {
        Method::Other(token) => Method::Other(own(token)),
        m => m.clone(),
    }
}

impl TransactionKey {
    /// The server transaction `req` belongs to.
    pub fn for_request(req: &Request) -> Result<TransactionKey, ParseError> {
        let via = req.headers.top_via()?;
        let method = if req.method == Method::Ack { Method::Invite } else { own_method(&req.method) };
        if via.has_rfc3261_branch()
            && let Some(branch) = via.branch()
        {
            let default_port = if matches!(via.transport, Transport::Tls | Transport::Wss) { 5061 } else { 5060 };
            let sent_by = format!("{}:{}", via.host, via.port.unwrap_or(default_port)).to_ascii_lowercase();
            return Ok(TransactionKey::Server { branch: own(branch), sent_by: sent_by.into(), method });
        }
        let from_tag = req.headers.from()?.tag().map(own);
        Ok(TransactionKey::Rfc2543(Box::new(Rfc2543Key {
            request_uri: req.uri.to_bytes(),
            from_tag,
            call_id: own(&req.headers.call_id()?.0),
            cseq: req.headers.cseq()?.seq,
            top_via: via.to_bytes(),
            method,
        })))
    }

    /// The client transaction a response to one of our requests belongs to.
    pub fn for_response(res: &Response) -> Result<TransactionKey, ParseError> {
        let via = res.headers.top_via()?;
        let branch = via.branch().cloned().ok_or(ParseError::HeaderValue { name: "Via", reason: "no branch" })?;
        Ok(TransactionKey::Client { branch, method: res.headers.cseq()?.method })
    }

    /// For a CANCEL's key, the key of the INVITE it cancels (§9.2: same branch and sent-by, method INVITE).
    pub fn cancelled_invite(&self) -> Option<TransactionKey> {
        let mut key = self.clone();
        let method = match &mut key {
            TransactionKey::Server { method, .. } => method,
            TransactionKey::Rfc2543(k) => &mut k.method,
            TransactionKey::Client { .. } => return None,
        };
        if *method != Method::Cancel {
            return None;
        }
        *method = Method::Invite;
        Some(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message::Message;

    fn request(method: &str, via: &str) -> Request {
        let text = format!(
            "{method} sip:+14155550123@vocals.example SIP/2.0\r\nVia: {via}\r\nFrom: <sip:a@b>;tag=f1\r\n\
             To: <sip:+14155550123@vocals.example>\r\nCall-ID: c1@h\r\nCSeq: 7 {method}\r\n\r\n"
        );
        match Message::parse(text.into_bytes()).unwrap() {
            Message::Request(r) => r,
            Message::Response(_) => unreachable!(),
        }
    }

    #[test]
    fn ack_and_retransmissions_match_the_invite() {
        let via = "SIP/2.0/UDP 54.244.51.1:5060;branch=z9hG4bKaa5f.4cc3";
        let invite = TransactionKey::for_request(&request("INVITE", via)).unwrap();
        assert_eq!(TransactionKey::for_request(&request("INVITE", via)).unwrap(), invite);
        assert_eq!(TransactionKey::for_request(&request("ACK", via)).unwrap(), invite);
    }

    #[test]
    fn sent_by_and_branch_both_count_and_the_default_port_is_filled_in() {
        let a = TransactionKey::for_request(&request("BYE", "SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1")).unwrap();
        let b = TransactionKey::for_request(&request("BYE", "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1")).unwrap();
        let c = TransactionKey::for_request(&request("BYE", "SIP/2.0/UDP 10.0.0.2;branch=z9hG4bK1")).unwrap();
        let d = TransactionKey::for_request(&request("BYE", "SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK2")).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
        let host = TransactionKey::for_request(&request("BYE", "SIP/2.0/TCP Edge.Example;branch=z9hG4bK1")).unwrap();
        let lower = TransactionKey::for_request(&request("BYE", "SIP/2.0/TCP edge.example;branch=z9hG4bK1")).unwrap();
        assert_eq!(host, lower, "host names compare without case");
    }

    #[test]
    fn a_key_is_small_and_does_not_keep_its_message_alive() {
        let req = request("BYE", "SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1");
        let TransactionKey::Server { branch, .. } = TransactionKey::for_request(&req).unwrap() else { panic!() };
        let via = req.headers.top_via().unwrap();
        let in_message = via.branch().unwrap();
        assert_eq!(branch, in_message);
        assert_ne!(branch.as_ptr(), in_message.as_ptr(), "the key's branch is a copy, not a slice of the request");
        assert!(std::mem::size_of::<TransactionKey>() <= 104, "{} bytes", std::mem::size_of::<TransactionKey>());
    }

    #[test]
    fn cancel_is_its_own_transaction_and_finds_its_invite() {
        let via = "SIP/2.0/UDP 54.244.51.1:5060;branch=z9hG4bKaa5f";
        let invite = TransactionKey::for_request(&request("INVITE", via)).unwrap();
        let cancel = TransactionKey::for_request(&request("CANCEL", via)).unwrap();
        assert_ne!(cancel, invite);
        assert_eq!(cancel.cancelled_invite(), Some(invite.clone()));
        assert_eq!(invite.cancelled_invite(), None);
    }

    #[test]
    fn rfc_2543_peers_are_matched_on_the_request_identifiers() {
        let via = "SIP/2.0/UDP 192.0.2.9;branch=old-style-1";
        let invite = TransactionKey::for_request(&request("INVITE", via)).unwrap();
        assert!(matches!(invite, TransactionKey::Rfc2543(_)));
        assert_eq!(TransactionKey::for_request(&request("ACK", via)).unwrap(), invite);
        let no_branch = TransactionKey::for_request(&request("INVITE", "SIP/2.0/UDP 192.0.2.9")).unwrap();
        assert_ne!(no_branch, invite, "the top Via is part of the key");
    }

    #[test]
    fn responses_match_on_branch_and_cseq_method() {
        let text = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 203.0.113.10:5060;branch=z9hG4bKvc1\r\nFrom: <sip:a@b>;tag=1\r\n\
                    To: <sip:c@d>;tag=2\r\nCall-ID: x\r\nCSeq: 2 BYE\r\n\r\n";
        let Message::Response(res) = Message::parse(text.as_bytes().to_vec()).unwrap() else { unreachable!() };
        assert_eq!(
            TransactionKey::for_response(&res).unwrap(),
            TransactionKey::Client { branch: Bytes::from_static(b"z9hG4bKvc1"), method: Method::Bye }
        );
    }
}
