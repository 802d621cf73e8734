//! Matching messages to transactions: RFC 3261 §17.2.3 for requests (branch with the magic cookie, sent-by,
//! method; ACK matches its INVITE), the RFC 2543 fallback for branches without the cookie, and §17.1.3 for
//! responses to our own requests (branch and CSeq method).

use bytes::Bytes;

use crate::sip::message::typed::Transport;
use crate::sip::message::{Method, ParseError, Request, Response};

/// What identifies a transaction.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TransactionKey {
    /// A server transaction (RFC 3261 §17.2.3): the top Via's branch and sent-by, and the method (an ACK
    /// carries INVITE here, so it finds the INVITE's transaction).
    Server { branch: Bytes, sent_by: String, method: Method },
    /// A server transaction with an RFC 2543 peer (no magic cookie): Request-URI, From tag, Call-ID, CSeq
    /// number, top Via and method. The To tag is left out: the INVITE had none and its ACK carries ours.
    Rfc2543 { request_uri: Bytes, from_tag: Option<Bytes>, call_id: Bytes, cseq: u32, top_via: Bytes, method: Method },
    /// A client transaction (§17.1.3): the branch vocals put in its Via, and the CSeq method.
    Client { branch: Bytes, method: Method },
}

impl TransactionKey {
    /// The server transaction `req` belongs to.
    pub fn for_request(req: &Request) -> Result<TransactionKey, ParseError> {
        let via = req.headers.top_via()?;
        let method = if req.method == Method::Ack { Method::Invite } else { req.method.clone() };
        if via.has_rfc3261_branch()
            && let Some(branch) = via.branch()
        {
            let default_port = if matches!(via.transport, Transport::Tls | Transport::Wss) { 5061 } else { 5060 };
            let sent_by = format!("{}:{}", via.host, via.port.unwrap_or(default_port)).to_ascii_lowercase();
            return Ok(TransactionKey::Server { branch: branch.clone(), sent_by, method });
        }
        let from_tag = req.headers.from()?.tag().cloned();
        Ok(TransactionKey::Rfc2543 {
            request_uri: req.uri.to_bytes(),
            from_tag,
            call_id: req.headers.call_id()?.0,
            cseq: req.headers.cseq()?.seq,
            top_via: via.to_bytes(),
            method,
        })
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
        match &mut key {
            TransactionKey::Server { method, .. } | TransactionKey::Rfc2543 { method, .. }
                if *method == Method::Cancel =>
            {
                *method = Method::Invite;
                Some(key)
            }
            _ => None,
        }
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
        assert!(matches!(invite, TransactionKey::Rfc2543 { .. }));
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
