//! Fuzz SDP offers (what any peer may put in an INVITE or re-INVITE): parse, negotiate with and without SRTP,
//! and print our answer. Nothing may panic; an answer is only made from a negotiated offer.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vocals::sdp::{self, Local, Offer};

fuzz_target!(|data: &[u8]| {
    let Ok(offer) = Offer::parse(data) else { return };
    for srtp in [false, true] {
        if let Ok(negotiated) = sdp::negotiate(&offer, srtp) {
            let local = Local { address: [127, 0, 0, 1].into(), port: 20_000, session_id: 1, session_version: 1 };
            let answer = sdp::answer(&negotiated, &local);
            assert!(Offer::parse(&answer).is_ok(), "our answer must parse");
        }
    }
});
