//! Fuzz Session-Expires and Min-SE (RFC 4028), which any peer puts in its INVITE, UPDATE or 422, and the
//! session timer rules over them: nothing may panic; a Session-Expires that parses prints back to itself; the
//! UAS rules never grant an interval below our Min-SE, and the timer's deadlines stay within its interval.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use vocals::sip::message::typed::{SessionExpires, parse_min_se};
use vocals::sip::message::{HeaderName, Headers};
use vocals::sip::session_timer::{UasTimer, as_uac, as_uas, min_se_of};

fuzz_target!(|data: &[u8]| {
    let value = Bytes::copy_from_slice(data);
    let _ = parse_min_se(&value);
    if let Ok(se) = SessionExpires::parse(&value) {
        assert_eq!(SessionExpires::parse(&se.to_bytes()).as_ref(), Ok(&se), "print and parse back");
    }
    let mut h = Headers::new();
    h.push(HeaderName::SessionExpires, value.clone());
    h.push(HeaderName::Supported, "timer");
    h.push(HeaderName::MinSe, value);
    match as_uas(&h, 90) {
        UasTimer::Timer { timer, .. } => {
            assert!(timer.interval >= 90);
            assert!(timer.refresh_after() < timer.expires_after() || timer.interval < 3);
        }
        UasTimer::TooSmall(m) => assert_eq!(m, 90),
        UasTimer::None => {}
    }
    if let Some(t) = as_uac(&h) {
        assert!(t.expires_after().as_secs() <= u64::from(t.interval));
    }
    if let Some(m) = min_se_of(&h) {
        assert!(m >= 90);
    }
});
