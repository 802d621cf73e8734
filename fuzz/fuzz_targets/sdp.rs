//! Fuzz SDP offers (what any peer may put in an INVITE or re-INVITE): parse, negotiate under each SRTP policy,
//! and print our answer. Nothing may panic; an answer is only made from a negotiated offer.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vocals::sdp::sdes::{Crypto, KEY_SALT_LEN, KeySalt};
use vocals::sdp::{self, Local, Offer, SrtpPolicy};

fuzz_target!(|data: &[u8]| {
    let Ok(offer) = Offer::parse(data) else { return };
    let key = KeySalt([0x5A; KEY_SALT_LEN]);
    for policy in [SrtpPolicy::Off, SrtpPolicy::Allowed, SrtpPolicy::Required] {
        if let Ok(negotiated) = sdp::negotiate(&offer, policy, key) {
            let local = Local { address: [127, 0, 0, 1].into(), port: 20_000, session_id: 1, session_version: 1 };
            let answer = sdp::answer(&negotiated, &local);
            let back = Offer::parse(&answer).expect("our answer must parse");
            // An SRTP answer carries exactly our key, under the offer's tag and suite.
            if let Some(k) = negotiated.srtp {
                let ours = Crypto::choose(&back.crypto).expect("our a=crypto parses");
                assert_eq!((ours.tag, ours.suite, ours.key), (k.tag, k.suite, key));
            }
        }
    }
});
