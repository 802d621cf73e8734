//! Fuzz the digest challenge parser (what any proxy or trunk may put in a 401's WWW-Authenticate or a 407's
//! Proxy-Authenticate): nothing may panic; a challenge that parses answers without panicking, prints back to
//! itself, and its credentials read back with the values we wrote.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vocals::sip::auth::{Challenge, Credentials, DigestCredentials};

fuzz_target!(|data: &[u8]| {
    let _ = DigestCredentials::parse(data);
    let Ok(challenge) = Challenge::parse(data) else { return };
    assert_eq!(Challenge::parse(challenge.to_string().as_bytes()).as_ref(), Ok(&challenge), "print and parse back");
    let creds = Credentials { username: "alice".into(), password: "secret".into() };
    let value = challenge.respond(&creds, "INVITE", "sip:+14155550123@example.com", "0a4f113b", 1);
    let back = DigestCredentials::parse(value.as_bytes()).expect("our credentials parse");
    assert_eq!(back.get("realm"), Some(challenge.realm.as_str()));
    assert_eq!(back.get("nonce"), Some(challenge.nonce.as_str()));
});
