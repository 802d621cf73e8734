//! RFC 3261 §12 dialogs: as UAS created from an INVITE and our 2xx (§12.1.1), as UAC from our INVITE and its
//! 2xx (§12.1.2); identified by Call-ID and both tags, carrying the route set from Record-Route and the remote
//! target from Contact. Builds the ACK for a 2xx (§13.2.2.4). Builds our
//! in-dialog requests (§12.2.1.1, loose and strict routing) and checks the peer's (§12.2.2). Sans-IO: tags,
//! branches and the first CSeq come from the caller; nothing here is random or touches a socket.

use bytes::{BufMut, Bytes, BytesMut};

use crate::sip::message::typed::{CSeq, Contact, NameAddr, Via};
use crate::sip::message::{HeaderName, Headers, Method, ParseError, Request, Response, Uri};

/// Call-ID, local tag, remote tag (§12).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DialogId {
    pub call_id: Bytes,
    pub local_tag: Bytes,
    pub remote_tag: Bytes,
}

impl DialogId {
    /// The dialog an incoming request claims to belong to: our tag is its To tag, the peer's its From tag.
    /// `None` for a request outside any dialog (no To tag).
    pub fn of_request(req: &Request) -> Result<Option<DialogId>, ParseError> {
        let to = req.headers.to()?;
        let Some(local_tag) = to.tag().cloned() else { return Ok(None) };
        let remote_tag = req.headers.from()?.tag().cloned().unwrap_or_default();
        Ok(Some(DialogId { call_id: req.headers.call_id()?.0, local_tag, remote_tag }))
    }
}

/// Why an in-dialog request was refused (§12.2.2).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DialogError {
    /// A CSeq lower than the last one seen: answered 500 (§12.2.2).
    #[error("CSeq {got} is lower than the last one seen in this dialog ({last})")]
    CSeqOutOfOrder { got: u32, last: u32 },
    #[error(transparent)]
    Parse(#[from] ParseError),
}

/// A confirmed or early dialog, as the UAS or the UAC of an INVITE.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dialog {
    pub id: DialogId,
    /// Our address, the INVITE's To value with our tag: the From of our requests.
    local: Bytes,
    /// The peer's address, the INVITE's From value with its tag: the To of our requests.
    remote: Bytes,
    /// Where our requests go: the peer's Contact URI, refreshed by re-INVITE and UPDATE.
    remote_target: Uri,
    /// Record-Route values of the INVITE in received order (§12.1.1).
    route_set: Vec<Bytes>,
    local_cseq: u32,
    remote_cseq: u32,
}

impl Dialog {
    /// The dialog an INVITE creates when we answer it with `local_tag` in To (§12.1.1). `first_cseq` is the
    /// CSeq our first request in the dialog will use.
    pub fn uas(invite: &Request, local_tag: &str, first_cseq: u32) -> Result<Dialog, ParseError> {
        let h = &invite.headers;
        let from = h.from()?;
        let remote_tag = from.tag().cloned().unwrap_or_default();
        let call_id = h.call_id()?.0;
        let remote_target = match h.contacts().next() {
            Some(Ok(Contact::Addr(addr))) => addr.uri,
            Some(Ok(Contact::Star)) => return Err(bad("Contact", "'*' is not a target")),
            Some(Err(e)) => return Err(e),
            None => return Err(ParseError::MissingHeader("Contact")),
        };
        for rr in h.record_routes() {
            rr?;
        }
        let route_set = h.get_all(&HeaderName::RecordRoute).map(Bytes::copy_from_slice).collect();
        let to = h.get(&HeaderName::To).ok_or(ParseError::MissingHeader("To"))?;
        let local = if h.to()?.tag().is_some() { Bytes::copy_from_slice(to) } else { with_tag(to, local_tag) };
        Ok(Dialog {
            id: DialogId { call_id, local_tag: Bytes::copy_from_slice(local_tag.as_bytes()), remote_tag },
            local,
            remote: Bytes::copy_from_slice(h.get(&HeaderName::From).ok_or(ParseError::MissingHeader("From"))?),
            remote_target,
            route_set,
            local_cseq: first_cseq.saturating_sub(1),
            remote_cseq: h.cseq()?.seq,
        })
    }

    /// The dialog our INVITE and its 2xx create (§12.1.2): the route set is the 2xx's Record-Route in reverse,
    /// the remote target its Contact (the INVITE's Request-URI when it has none: lenient, a 2xx must carry one),
    /// our tag the From tag, the peer's the To tag; our CSeq continues from the INVITE's. No remote CSeq yet:
    /// the peer's first request sets it.
    pub fn uac(invite: &Request, response: &Response) -> Result<Dialog, ParseError> {
        let (q, r) = (&invite.headers, &response.headers);
        let local_tag = q.from()?.tag().cloned().unwrap_or_default();
        let remote_tag = r.to()?.tag().cloned().unwrap_or_default();
        let remote_target = match r.contacts().next() {
            Some(Ok(Contact::Addr(addr))) => addr.uri,
            Some(Ok(Contact::Star)) => return Err(bad("Contact", "'*' is not a target")),
            Some(Err(e)) => return Err(e),
            None => invite.uri.clone(),
        };
        for rr in r.record_routes() {
            rr?;
        }
        let mut route_set: Vec<Bytes> = r.get_all(&HeaderName::RecordRoute).map(Bytes::copy_from_slice).collect();
        route_set.reverse();
        Ok(Dialog {
            id: DialogId { call_id: Bytes::copy_from_slice(&q.call_id()?.0), local_tag, remote_tag },
            local: Bytes::copy_from_slice(q.get(&HeaderName::From).ok_or(ParseError::MissingHeader("From"))?),
            remote: Bytes::copy_from_slice(r.get(&HeaderName::To).ok_or(ParseError::MissingHeader("To"))?),
            remote_target,
            route_set,
            local_cseq: q.cseq()?.seq,
            remote_cseq: 0,
        })
    }

    /// The ACK for the 2xx to our INVITE whose CSeq number was `invite_cseq` (§13.2.2.4): a request of the
    /// dialog with that CSeq number (not a new one), routed like any other; `via` carries a new branch.
    pub fn ack(&self, invite_cseq: u32, via: &Via) -> Request {
        let (uri, routes) = self.routing();
        let mut headers = Headers::new();
        headers.push(HeaderName::Via, via.to_bytes());
        headers.push(HeaderName::MaxForwards, Bytes::from_static(b"70"));
        headers.push(HeaderName::From, self.local.clone());
        headers.push(HeaderName::To, self.remote.clone());
        headers.push(HeaderName::CallId, self.id.call_id.clone());
        headers.push(HeaderName::CSeq, CSeq { seq: invite_cseq, method: Method::Ack }.to_bytes());
        for route in routes {
            headers.push(HeaderName::Route, route);
        }
        Request { method: Method::Ack, uri, headers, body: Bytes::new() }
    }

    pub fn remote_target(&self) -> &Uri {
        &self.remote_target
    }

    pub fn route_set(&self) -> &[Bytes] {
        &self.route_set
    }

    /// Checks an in-dialog request from the peer (§12.2.2): its CSeq must not go backwards (ACK and CANCEL
    /// reuse the INVITE's); a re-INVITE or UPDATE with a Contact refreshes the remote target.
    pub fn on_request(&mut self, req: &Request) -> Result<(), DialogError> {
        let cseq = req.headers.cseq()?.seq;
        if !matches!(req.method, Method::Ack | Method::Cancel) {
            if cseq < self.remote_cseq {
                return Err(DialogError::CSeqOutOfOrder { got: cseq, last: self.remote_cseq });
            }
            self.remote_cseq = cseq;
        }
        if matches!(req.method, Method::Invite | Method::Update)
            && let Some(Ok(Contact::Addr(addr))) = req.headers.contacts().next()
        {
            self.remote_target = addr.uri;
        }
        Ok(())
    }

    /// Builds our next request in the dialog (§12.2.1.1): the next CSeq, From = us, To = the peer, and the
    /// Request-URI and Route set by loose routing (first route has `lr`) or strict routing. `via` carries the
    /// new branch. The caller adds what the method needs (Reason on a BYE, Refer-To on a REFER).
    pub fn request(&mut self, method: Method, via: &Via) -> Request {
        self.local_cseq += 1;
        let (uri, routes) = self.routing();
        let mut headers = Headers::new();
        headers.push(HeaderName::Via, via.to_bytes());
        headers.push(HeaderName::MaxForwards, Bytes::from_static(b"70"));
        headers.push(HeaderName::From, self.local.clone());
        headers.push(HeaderName::To, self.remote.clone());
        headers.push(HeaderName::CallId, self.id.call_id.clone());
        headers.push(HeaderName::CSeq, CSeq { seq: self.local_cseq, method: method.clone() }.to_bytes());
        for route in routes {
            headers.push(HeaderName::Route, route);
        }
        Request { method, uri, headers, body: Bytes::new() }
    }

    /// Takes our next CSeq in the dialog, for a request built again (one retried with credentials, §22.2).
    pub fn next_cseq(&mut self) -> u32 {
        self.local_cseq += 1;
        self.local_cseq
    }

    /// The Request-URI and Route values of our next request.
    fn routing(&self) -> (Uri, Vec<Bytes>) {
        let Some(first) = self.route_set.first() else { return (self.remote_target.clone(), Vec::new()) };
        let loose = NameAddr::parse(first).is_ok_and(|r| r.uri.params().is_some_and(|p| p.contains("lr")));
        if loose {
            return (self.remote_target.clone(), self.route_set.clone());
        }
        // Strict routing: the first route becomes the Request-URI, the remote target the last Route.
        match NameAddr::parse(first) {
            Ok(first) => {
                let mut routes: Vec<Bytes> = self.route_set[1..].to_vec();
                routes.push(NameAddr::new(self.remote_target.clone()).to_bytes());
                (first.uri, routes)
            }
            Err(_) => (self.remote_target.clone(), self.route_set.clone()),
        }
    }

    /// Where our next request goes first: the first route (loose routing) or the Request-URI.
    pub fn next_hop(&self) -> Uri {
        match self.route_set.first().map(NameAddr::parse) {
            Some(Ok(first)) => first.uri,
            _ => self.remote_target.clone(),
        }
    }
}

fn bad(name: &'static str, reason: &'static str) -> ParseError {
    ParseError::HeaderValue { name, reason }
}

fn with_tag(value: &[u8], tag: &str) -> Bytes {
    let mut out = BytesMut::with_capacity(value.len() + 5 + tag.len());
    out.put_slice(value);
    out.put_slice(b";tag=");
    out.put_slice(tag.as_bytes());
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message::typed::Transport;
    use crate::sip::message::{Host, Message};

    const INVITE: &[u8] = include_bytes!("../../sip-tests/vectors/twilio/twilio-invite-udp.sip");
    const TLS_INVITE: &[u8] = include_bytes!("../../sip-tests/vectors/twilio/twilio-invite-tls-srtp.sip");
    const BYE: &str = include_str!("../../sip-tests/vectors/twilio/twilio-bye-udp.sip");

    fn request(bytes: &[u8]) -> Request {
        match Message::parse(bytes.to_vec()).unwrap() {
            Message::Request(r) => r,
            Message::Response(_) => unreachable!(),
        }
    }

    fn our_via() -> Via {
        Via::new(Transport::Udp, Host::V4("203.0.113.10".parse().unwrap()), Some(5060), "z9hG4bKvc-bye-1")
    }

    #[test]
    fn a_uas_dialog_takes_its_route_set_and_target_from_the_invite() {
        let d = Dialog::uas(&request(INVITE), "vc9f2", 1).unwrap();
        assert_eq!(d.id.call_id, "4fcfeac91be99541077a4961772ffc0f@0.0.0.0");
        assert_eq!(d.id.local_tag, "vc9f2");
        assert_eq!(d.id.remote_tag, "58670300_c3356d0b_4bb137d8-5577-4f00-b025-0ca8b34a106d");
        assert_eq!(d.remote_target().to_string(), "sip:+12125550100@172.25.90.229:5060;transport=udp");
        assert_eq!(d.route_set(), [Bytes::from_static(b"<sip:54.244.51.1;lr>")]);
        assert_eq!(d.next_hop().to_string(), "sip:54.244.51.1;lr", "the BYE goes to Twilio's edge, not 172.x");
    }

    #[test]
    fn our_bye_follows_the_route_set_with_the_tags_swapped() {
        let mut d = Dialog::uas(&request(INVITE), "vc9f2", 1).unwrap();
        let bye = d.request(Method::Bye, &our_via());
        let text = String::from_utf8(bye.to_bytes().to_vec()).unwrap();
        assert!(text.starts_with("BYE sip:+12125550100@172.25.90.229:5060;transport=udp SIP/2.0\r\n"), "{text}");
        assert!(text.contains("\r\nRoute: <sip:54.244.51.1;lr>\r\n"), "{text}");
        assert!(text.contains("\r\nFrom: <sip:+14155550123@sip.vocals.example>;tag=vc9f2\r\n"), "{text}");
        assert!(text.contains("\r\nTo: <sip:+12125550100@vocals-acme.pstn.twilio.com:5060>;tag=58670300_"), "{text}");
        assert!(text.contains("\r\nCSeq: 1 BYE\r\n"), "{text}");
        let again = d.request(Method::Bye, &our_via());
        assert_eq!(again.headers.cseq().unwrap().seq, 2, "CSeq increases");
        // What we print parses and is a valid in-dialog request.
        assert!(Message::parse(bye.to_bytes()).unwrap().validate().is_ok());
    }

    #[test]
    fn two_record_routes_become_two_routes_in_order() {
        let mut d = Dialog::uas(&request(TLS_INVITE), "t", 1).unwrap();
        let bye = d.request(Method::Bye, &our_via());
        let routes: Vec<_> = bye.headers.get_all(&HeaderName::Route).collect();
        assert_eq!(routes, [&b"<sip:54.172.60.0:5061;transport=tls;r2=on;lr>"[..], b"<sip:54.172.60.0;r2=on;lr>"]);
    }

    #[test]
    fn twilios_bye_belongs_to_the_dialog_and_cseq_must_not_go_back() {
        let mut d = Dialog::uas(&request(INVITE), "vc9f2", 1).unwrap();
        let bye = BYE.replace("<YOUR-CONTACT>", "+14155550123@203.0.113.10:5060").replace("<YOUR-TO-TAG>", "vc9f2");
        let bye = request(bye.as_bytes());
        assert_eq!(DialogId::of_request(&bye).unwrap(), Some(d.id.clone()));
        assert_eq!(d.on_request(&bye), Ok(()));
        let stale = String::from_utf8(bye.to_bytes().to_vec()).unwrap().replace("CSeq: 48064 BYE", "CSeq: 3 BYE");
        assert_eq!(d.on_request(&request(stale.as_bytes())), Err(DialogError::CSeqOutOfOrder { got: 3, last: 48064 }));
        assert_eq!(DialogId::of_request(&request(INVITE)).unwrap(), None, "an initial INVITE has no To tag");
    }

    #[test]
    fn a_re_invite_refreshes_the_remote_target() {
        let mut d = Dialog::uas(&request(INVITE), "vc9f2", 1).unwrap();
        let reinvite = String::from_utf8(INVITE.to_vec())
            .unwrap()
            .replace("CSeq: 48063 INVITE", "CSeq: 48065 INVITE")
            .replace("172.25.90.229:5060;transport=udp>", "172.25.90.230:5070;transport=udp>");
        d.on_request(&request(reinvite.as_bytes())).unwrap();
        assert_eq!(d.remote_target().to_string(), "sip:+12125550100@172.25.90.230:5070;transport=udp");
    }

    #[test]
    fn strict_routing_puts_the_first_route_in_the_request_uri() {
        let strict = String::from_utf8(INVITE.to_vec()).unwrap().replace(
            "Record-Route: <sip:54.244.51.1;lr>",
            "Record-Route: <sip:p1.example.com>, <sip:p2.example.com;lr>",
        );
        let mut d = Dialog::uas(&request(strict.as_bytes()), "t", 1).unwrap();
        let bye = d.request(Method::Bye, &our_via());
        assert_eq!(bye.uri.to_string(), "sip:p1.example.com");
        let routes: Vec<_> = bye.headers.get_all(&HeaderName::Route).collect();
        assert_eq!(routes, [&b"<sip:p2.example.com;lr>"[..], b"<sip:+12125550100@172.25.90.229:5060;transport=udp>"]);
    }

    #[test]
    fn an_invite_without_a_usable_contact_cannot_make_a_dialog() {
        let text = String::from_utf8(INVITE.to_vec()).unwrap();
        let no_contact = text.replace("Contact: <sip:+12125550100@172.25.90.229:5060;transport=udp>\r\n", "");
        assert_eq!(Dialog::uas(&request(no_contact.as_bytes()), "t", 1), Err(ParseError::MissingHeader("Contact")));
        let star = text.replace("Contact: <sip:+12125550100@172.25.90.229:5060;transport=udp>", "Contact: *");
        assert!(Dialog::uas(&request(star.as_bytes()), "t", 1).is_err());
    }

    const OUR_INVITE: &str = "INVITE sip:+14155550123@example.pstn.twilio.com SIP/2.0\r\n\
        Via: SIP/2.0/UDP 203.0.113.10:5060;branch=z9hG4bKvc1;rport\r\nMax-Forwards: 70\r\n\
        From: <sip:+12125550100@203.0.113.10>;tag=vcf1\r\nTo: <sip:+14155550123@example.pstn.twilio.com>\r\n\
        Call-ID: out1@203.0.113.10\r\nCSeq: 20 INVITE\r\nContact: <sip:203.0.113.10:5060;transport=udp>\r\n\
        Content-Length: 0\r\n\r\n";

    fn ok_for(invite: &Request, extra: &str) -> Response {
        let mut res = Response::to_request(invite, crate::sip::message::StatusCode::OK, Some("far9"));
        for line in extra.split("\r\n").filter(|l| !l.is_empty()) {
            let (name, value) = line.split_once(": ").unwrap();
            res.headers.push(HeaderName::new(name), value.to_string());
        }
        Message::parse(res.to_bytes()).unwrap().as_response().unwrap().clone()
    }

    #[test]
    fn a_uac_dialog_reverses_the_record_route_and_targets_the_2xx_contact() {
        let invite = request(OUR_INVITE.as_bytes());
        let ok = ok_for(
            &invite,
            "Record-Route: <sip:54.172.60.2;lr>, <sip:54.172.60.1;lr>\r\nContact: <sip:+14155550123@198.51.100.7:5080>",
        );
        let mut d = Dialog::uac(&invite, &ok).unwrap();
        assert_eq!(d.id.call_id, "out1@203.0.113.10");
        assert_eq!((d.id.local_tag.as_ref(), d.id.remote_tag.as_ref()), (&b"vcf1"[..], &b"far9"[..]));
        assert_eq!(
            d.route_set(),
            [Bytes::from_static(b"<sip:54.172.60.1;lr>"), Bytes::from_static(b"<sip:54.172.60.2;lr>")]
        );
        assert_eq!(d.remote_target().to_string(), "sip:+14155550123@198.51.100.7:5080");
        let ack = d.ack(20, &our_via());
        assert_eq!(ack.uri.to_string(), "sip:+14155550123@198.51.100.7:5080");
        assert_eq!(ack.headers.cseq().unwrap(), CSeq { seq: 20, method: Method::Ack }, "the INVITE's number");
        let routes: Vec<_> = ack.headers.get_all(&HeaderName::Route).collect();
        assert_eq!(routes, [&b"<sip:54.172.60.1;lr>"[..], b"<sip:54.172.60.2;lr>"]);
        assert_eq!(ack.headers.to().unwrap().tag().unwrap(), "far9");
        assert_eq!(ack.headers.from().unwrap().tag().unwrap(), "vcf1");
        let bye = d.request(Method::Bye, &our_via());
        assert_eq!(bye.headers.cseq().unwrap().seq, 21, "our CSeq continues from the INVITE's");
        // The peer's requests: any CSeq to start with, then never backwards.
        let theirs = |cseq: u32| {
            request(
                format!(
                    "BYE sip:x@203.0.113.10 SIP/2.0\r\nVia: SIP/2.0/UDP 54.172.60.1;branch=z9hG4bKb{cseq}\r\n\
                     From: <sip:a@b>;tag=far9\r\nTo: <sip:c@d>;tag=vcf1\r\nCall-ID: out1@203.0.113.10\r\n\
                     CSeq: {cseq} BYE\r\nContent-Length: 0\r\n\r\n"
                )
                .as_bytes(),
            )
        };
        assert_eq!(DialogId::of_request(&theirs(5)).unwrap(), Some(d.id.clone()));
        assert_eq!(d.on_request(&theirs(5)), Ok(()));
        assert!(d.on_request(&theirs(4)).is_err());
    }

    #[test]
    fn a_uac_dialog_without_a_contact_targets_the_request_uri() {
        let invite = request(OUR_INVITE.as_bytes());
        let d = Dialog::uac(&invite, &ok_for(&invite, "")).unwrap();
        assert_eq!(d.remote_target(), &invite.uri);
        assert!(d.route_set().is_empty());
        assert_eq!(d.next_hop(), invite.uri);
    }
}
