//! Refer-To (RFC 3515 §2.1): the URI a REFER asks its recipient to contact, `<sip:+14155550100@example.com>`
//! (name-addr or addr-spec, with header parameters). Printed always as a name-addr.

use bytes::{Bytes, BytesMut};

use super::{HeaderError, NameAddr};
use crate::sip::message::uri::Uri;

/// A Refer-To value.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ReferTo(pub NameAddr);

impl ReferTo {
    /// Refer to `uri`, with no display name or parameters.
    pub fn new(uri: Uri) -> ReferTo {
        ReferTo(NameAddr::new(uri))
    }

    pub fn parse(src: &Bytes) -> Result<ReferTo, HeaderError> {
        Self::parse_in(src, src)
    }

    /// Parses `s`, a subslice of `src`.
    pub fn parse_in(src: &Bytes, s: &[u8]) -> Result<ReferTo, HeaderError> {
        NameAddr::parse_in(src, s).map(ReferTo)
    }

    /// The URI referred to.
    pub fn uri(&self) -> &Uri {
        &self.0.uri
    }

    pub fn encode(&self, out: &mut BytesMut) {
        self.0.encode(out);
    }

    pub fn to_bytes(&self) -> Bytes {
        self.0.to_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<ReferTo, HeaderError> {
        ReferTo::parse(&Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn a_sip_or_tel_target_prints_in_angle_brackets_and_round_trips() {
        for (uri, printed) in [
            ("sip:+14155550100@vocals-acme.pstn.twilio.com", "<sip:+14155550100@vocals-acme.pstn.twilio.com>"),
            ("tel:+14155550100", "<tel:+14155550100>"),
        ] {
            let r = ReferTo::new(Uri::parse(&Bytes::from_static(uri.as_bytes())).unwrap());
            assert_eq!(&r.to_bytes()[..], printed.as_bytes());
            assert_eq!(ReferTo::parse(&r.to_bytes()).unwrap(), r);
        }
    }

    #[test]
    fn received_forms_parse_name_addr_addr_spec_and_parameters() {
        let r = parse("\"Sales\" <sip:sales@example.com;transport=tcp>;x=1").unwrap();
        assert_eq!(r.uri().user().unwrap(), "sales");
        assert_eq!(r.0.params.value("x").unwrap(), "1");
        assert_eq!(ReferTo::parse(&r.to_bytes()).unwrap(), r);
        let bare = parse("sip:sales@example.com").unwrap();
        assert_eq!(&bare.to_bytes()[..], b"<sip:sales@example.com>");
        // A Replaces in the URI's headers (attended transfer, RFC 3891) needs the brackets.
        let replaces = parse("<sip:b@example.com?Replaces=abc%40x%3Bto-tag%3D1>").unwrap();
        assert!(replaces.uri().as_sip().unwrap().headers.is_some());
    }

    #[test]
    fn malformed_targets_are_refused() {
        for bad in ["", "<>", "<sip:a@b", "sip:a@b?Replaces=x", "not a uri", "<sip:a b@c>", "\"open <sip:a@b>"] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
