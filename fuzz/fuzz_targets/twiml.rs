//! Fuzz the TwiML of a Create Call request or a `Url`'s answer (what any API client or web server may send):
//! parse it, and, as the Calls API does, read it as a `Twiml` form parameter. Nothing may panic; an accepted
//! stream has a WebSocket URL and at most `MAX_PARAMETERS` parameters, and an error carries one of the codes
//! the module documents.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vocals::twilio::calls;
use vocals::twilio::twiml::{self, Twiml};

fuzz_target!(|data: &[u8]| {
    let xml = String::from_utf8_lossy(data);
    match twiml::parse(&xml) {
        Ok(Twiml::Connect(stream)) => {
            let url = stream.url.to_ascii_lowercase();
            assert!(url.starts_with("ws://") || url.starts_with("wss://"));
            assert!(stream.parameters.len() <= twiml::MAX_PARAMETERS);
        }
        Ok(Twiml::Hangup) => {}
        Err(e) => assert!(
            [twiml::PARSE_FAILURE, twiml::SCHEMA_VALIDATION, twiml::TOO_LARGE].contains(&e.code),
            "{e}"
        ),
    }
    let form: Vec<(String, String)> = [("To", "+14155550123"), ("From", "+12125550100"), ("Twiml", &*xml)]
        .into_iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    if let Err(e) = calls::parse_create(&form) {
        assert_eq!(e.status, 400);
    }
});
