//! Content-Type (RFC 3261 §20.15): `type/subtype *(;param)`.

use bytes::{BufMut, Bytes, BytesMut};

use super::HeaderError;
use crate::sip::message::params::{ParamStyle, Params, header_params, parse_params};
use crate::sip::message::scan::{is_token, skip_wsp, trim_wsp};

/// Type, subtype and the raw (checked) parameters of a media type.
type MediaTypeParts<'a> = (&'a [u8], &'a [u8], &'a [u8]);

/// A media type such as `application/sdp`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MediaType {
    pub ty: Bytes,
    pub subtype: Bytes,
    pub params: Params,
}

impl MediaType {
    pub fn parse(src: &Bytes) -> Result<MediaType, HeaderError> {
        Self::parse_in(src, src)
    }

    /// Parses `s`, a subslice of `src`.
    pub fn parse_in(src: &Bytes, s: &[u8]) -> Result<MediaType, HeaderError> {
        let (ty, subtype, params) = Self::check(s)?;
        let (params, _) = parse_params(src, params, ParamStyle::Header).map_err(HeaderError)?;
        Ok(MediaType { ty: src.slice_ref(ty), subtype: src.slice_ref(subtype), params })
    }

    /// Checks a media type without allocating; returns type, subtype and the (checked) parameters.
    pub(crate) fn check(s: &[u8]) -> Result<MediaTypeParts<'_>, HeaderError> {
        let s = trim_wsp(s);
        let ty_len = s.iter().take_while(|&&b| is_token(b)).count();
        let rest = skip_wsp(&s[ty_len..]);
        let rest = rest.strip_prefix(b"/").ok_or(HeaderError("must be type/subtype"))?;
        let rest = skip_wsp(rest);
        let sub_len = rest.iter().take_while(|&&b| is_token(b)).count();
        if ty_len == 0 || sub_len == 0 {
            return Err(HeaderError("must be type/subtype"));
        }
        let params = header_params(&rest[sub_len..]).map_err(HeaderError)?;
        Ok((&s[..ty_len], &rest[..sub_len], params))
    }

    /// Case-insensitive match on type and subtype.
    pub fn is(&self, ty: &str, subtype: &str) -> bool {
        self.ty.eq_ignore_ascii_case(ty.as_bytes()) && self.subtype.eq_ignore_ascii_case(subtype.as_bytes())
    }

    pub fn encode(&self, out: &mut BytesMut) {
        out.put_slice(&self.ty);
        out.put_u8(b'/');
        out.put_slice(&self.subtype);
        self.params.encode(out);
    }

    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(32);
        self.encode(&mut out);
        out.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_parse_with_params() {
        let m = MediaType::parse(&Bytes::from_static(b" multipart/mixed ; boundary=unique-boundary-1")).unwrap();
        assert!(m.is("Multipart", "MIXED"));
        assert_eq!(m.params.value("boundary").unwrap(), "unique-boundary-1");
        assert_eq!(MediaType::parse(&m.to_bytes()).unwrap(), m);
        assert!(MediaType::parse(&Bytes::from_static(b"application / sdp")).unwrap().is("application", "sdp"));
    }

    #[test]
    fn malformed_media_types_are_refused() {
        for bad in ["application", "/sdp", "application/", "application/sdp junk", "a/b;"] {
            assert!(MediaType::parse(&Bytes::copy_from_slice(bad.as_bytes())).is_err(), "{bad}");
        }
    }
}
