//! `X-Twilio-Signature`, as Twilio documents it in "Validating signatures from Twilio": the base64 of the
//! HMAC-SHA1, keyed with the account's auth token, of the full URL (with its query string) followed by the POST
//! parameters sorted by name, each name then its value, with nothing between them. Parameters that repeat are
//! sorted by value too and an exact duplicate counted once, as Twilio's helper libraries validate them.
//!
//! vocals signs the status callbacks it sends, so an agent's unchanged Twilio validator accepts them.

use base64::Engine;
use ring::hmac;

/// The string that is signed: `url`, then each `name` + `value` sorted.
fn payload(url: &str, params: &[(String, String)]) -> Vec<u8> {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    sorted.dedup();
    let mut data = Vec::with_capacity(url.len() + sorted.iter().map(|(n, v)| n.len() + v.len()).sum::<usize>());
    data.extend_from_slice(url.as_bytes());
    for (name, value) in sorted {
        data.extend_from_slice(name.as_bytes());
        data.extend_from_slice(value.as_bytes());
    }
    data
}

fn key(auth_token: &str) -> hmac::Key {
    hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, auth_token.as_bytes())
}

/// The `X-Twilio-Signature` of a POST of `params` to `url`.
pub fn sign(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let tag = hmac::sign(&key(auth_token), &payload(url, params));
    base64::engine::general_purpose::STANDARD.encode(tag.as_ref())
}

/// Whether `signature` is the `X-Twilio-Signature` of a POST of `params` to `url`; the comparison takes the same
/// time whatever it finds (ring's constant-time HMAC verification).
pub fn verify(auth_token: &str, url: &str, params: &[(String, String)], signature: &str) -> bool {
    let Ok(tag) = base64::engine::general_purpose::STANDARD.decode(signature.trim()) else {
        return false;
    };
    hmac::verify(&key(auth_token), &payload(url, params), &tag).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
    }

    const URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";

    /// The example of Twilio's "Validating signatures from Twilio" (auth token 12345).
    fn documented() -> Vec<(String, String)> {
        pairs(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ])
    }

    #[test]
    fn twilios_documented_example() {
        assert_eq!(sign("12345", URL, &documented()), "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
        assert!(verify("12345", URL, &documented(), "0/KCTR6DLpKmkAf8muzZqo1nDgQ="));
    }

    #[test]
    fn the_order_params_arrive_in_does_not_matter() {
        let mut shuffled = documented();
        shuffled.reverse();
        assert_eq!(sign("12345", URL, &shuffled), "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
    }

    #[test]
    fn twilio_pythons_test_vectors() {
        // twilio-python tests/unit/test_request_validator.py.
        let params = pairs(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
            ("Caller", "+14158675309"),
        ]);
        assert_eq!(sign("12345", URL, &params), "RSOYDt4T1cUTdK1PDd93/VVr8B8=");
        // Repeated names: sorted by value, exact duplicates once.
        let repeated = pairs(&[
            ("Sid", "CA123"),
            ("SidAccount", "AC123"),
            ("Digits", "5678"),
            ("Digits", "1234"),
            ("Digits", "1234"),
        ]);
        assert_eq!(sign("12345", URL, &repeated), "IK+Dwps556ElfBT0I3Rgjkr1wJU=");
    }

    #[test]
    fn no_params_signs_the_url_alone() {
        let tag = hmac::sign(&key("12345"), URL.as_bytes());
        assert_eq!(sign("12345", URL, &[]), base64::engine::general_purpose::STANDARD.encode(tag.as_ref()));
    }

    #[test]
    fn anything_changed_fails_verification() {
        let good = sign("12345", URL, &documented());
        assert!(!verify("12346", URL, &documented(), &good), "another token");
        assert!(!verify("12345", "https://mycompany.com/myapp.php?foo=1&bar=3", &documented(), &good), "another url");
        let mut tampered = documented();
        tampered[2].1 = "1235".into();
        assert!(!verify("12345", URL, &tampered, &good), "a changed value");
        let mut extra = documented();
        extra.push(("Extra".into(), String::new()));
        assert!(!verify("12345", URL, &extra, &good), "an added parameter");
        assert!(!verify("12345", URL, &documented(), ""));
        assert!(!verify("12345", URL, &documented(), "not base64!"));
        assert!(!verify("12345", URL, &documented(), "0/KCTR6DLpKmkAf8muzZqo1nDgQ"));
        assert!(!verify("12345", URL, &documented(), &"A".repeat(10_000)));
    }

    #[test]
    fn a_signature_with_surrounding_white_space_verifies() {
        assert!(verify("12345", URL, &documented(), " 0/KCTR6DLpKmkAf8muzZqo1nDgQ=\r\n"));
    }
}
