use super::*;

fn mufasa() -> Credentials {
    Credentials { username: "Mufasa".into(), password: "Circle of Life".into() }
}

/// RFC 7616 §3.9.1: the server offers SHA-256 and MD5 in two headers.
const SHA256_CHALLENGE: &str = "Digest\r\n    realm=\"http-auth@example.org\",\r\n    qop=\"auth, auth-int\",\r\n    \
    algorithm=SHA-256,\r\n    nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\",\r\n    \
    opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\"";
const MD5_CHALLENGE: &str = "Digest realm=\"http-auth@example.org\", qop=\"auth, auth-int\", algorithm=MD5, \
    nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\"";
const CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";

fn creds(value: &str) -> DigestCredentials {
    DigestCredentials::parse(value.as_bytes()).unwrap()
}

#[test]
fn rfc_7616_sha_256_example() {
    let c = Challenge::pick([MD5_CHALLENGE.as_bytes(), SHA256_CHALLENGE.as_bytes()]).unwrap();
    assert_eq!(c.algorithm, Algorithm::Sha256, "SHA-256 is preferred over MD5 whatever the order");
    assert_eq!((c.qop, c.stale), (Qop::Auth, false));
    let value = c.respond(&mufasa(), "GET", "/dir/index.html", CNONCE, 1);
    let r = creds(&value);
    assert_eq!(r.get("response"), Some("753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"));
    assert_eq!(r.get("username"), Some("Mufasa"));
    assert_eq!(r.get("realm"), Some("http-auth@example.org"));
    assert_eq!(r.get("uri"), Some("/dir/index.html"));
    assert_eq!(r.get("algorithm"), Some("SHA-256"));
    assert_eq!(r.get("qop"), Some("auth"));
    assert_eq!(r.get("nc"), Some("00000001"));
    assert_eq!(r.get("cnonce"), Some(CNONCE));
    assert_eq!(r.get("opaque"), Some("FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"));
    assert!(value.contains("qop=auth, nc=00000001"), "qop and nc are tokens, not quoted: {value}");
}

#[test]
fn rfc_7616_md5_example() {
    let c = Challenge::parse(MD5_CHALLENGE.as_bytes()).unwrap();
    assert_eq!(c.algorithm, Algorithm::Md5);
    let r = creds(&c.respond(&mufasa(), "GET", "/dir/index.html", CNONCE, 1));
    assert_eq!(r.get("response"), Some("8ca523f5e9506fed4657c9700eebdbec"));
    assert_eq!(r.get("algorithm"), Some("MD5"), "echoed as given");
}

#[test]
fn rfc_2617_example_and_the_rfc_2069_form() {
    let value = b"Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", \
        nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"";
    let c = Challenge::parse(value).unwrap();
    assert!(!c.algorithm_given);
    let creds2617 = Credentials { username: "Mufasa".into(), password: "Circle Of Life".into() };
    let value = c.respond(&creds2617, "GET", "/dir/index.html", "0a4f113b", 1);
    let r = creds(&value);
    assert_eq!(r.get("response"), Some("6629fae49393a05397450978507c4ef1"));
    assert_eq!(r.get("algorithm"), None, "not named by the challenge, not named in the answer");
    // No qop: response = H(HA1:nonce:HA2), no cnonce or nc (value computed independently with Python's hashlib).
    let no_qop = Challenge { qop: Qop::None, ..c };
    let r = creds(&no_qop.respond(&creds2617, "GET", "/dir/index.html", "0a4f113b", 1));
    assert_eq!(r.get("response"), Some("670fd8c2df070c60b045671b8b24ff02"));
    assert_eq!((r.get("cnonce"), r.get("nc"), r.get("qop")), (None, None, None));
}

#[test]
fn md5_sess_and_the_nonce_count() {
    let c = Challenge::parse(b"Digest realm=\"sip.example\",nonce=\"abc\",algorithm=md5-sess,qop=auth").unwrap();
    assert_eq!((c.algorithm, c.qop), (Algorithm::Md5Sess, Qop::Auth), "case-insensitive, qop as a token");
    let alice = Credentials { username: "alice".into(), password: "secret".into() };
    let r = creds(&c.respond(&alice, "INVITE", "sip:bob@example.com", "c1", 2));
    assert_eq!(r.get("nc"), Some("00000002"));
    // Computed independently with Python's hashlib.
    assert_eq!(r.get("response"), Some("ef3d04bb0c62bd1c203643fadc9f4441"));
    assert_eq!(r.get("algorithm"), Some("MD5-sess"));
}

#[test]
fn sha_512_256_is_preferred_when_offered() {
    let values: [&[u8]; 1] = [b"Digest realm=\"r\", nonce=\"n\", algorithm=SHA-256, Digest realm=\"r\", nonce=\"n\", algorithm=SHA-512-256, Digest realm=\"r\", nonce=\"n\""];
    let c = Challenge::pick(values).unwrap();
    assert_eq!(c.algorithm, Algorithm::Sha512_256, "several challenges in one value");
    let r = creds(&c.respond(&mufasa(), "INVITE", "sip:x@y", "c", 1));
    assert_eq!(r.get("response").unwrap().len(), 64);
}

#[test]
fn params_in_any_order_with_escapes_and_unknown_ones() {
    let c = Challenge::parse(
        b"digest  stale=TRUE ,domain=\"sip:a sip:b\",nonce=\"n\\\"q\\\\\" , userhash=false, realm = \"r e\", x-new=1",
    )
    .unwrap();
    assert_eq!((c.realm.as_str(), c.nonce.as_str(), c.stale), ("r e", "n\"q\\", true));
    assert_eq!((c.algorithm, c.qop, c.opaque), (Algorithm::Md5, Qop::None, None));
}

#[test]
fn a_challenge_prints_and_parses_back() {
    for text in [SHA256_CHALLENGE, MD5_CHALLENGE, "Digest realm=\"a\\\"b\", nonce=\"x\", stale=true"] {
        let c = Challenge::parse(text.as_bytes()).unwrap();
        assert_eq!(Challenge::parse(c.to_string().as_bytes()).unwrap(), c, "{c}");
    }
    // The credentials we write read back with every value intact, escapes included.
    let c = Challenge::parse(b"Digest realm=\"we\\\"ird\", nonce=\"n\", opaque=\"o\\\\\"").unwrap();
    let tricky = Credentials { username: "a\"b\\c".into(), password: "p".into() };
    let r = creds(&c.respond(&tricky, "BYE", "sip:x@y", "c", 1));
    assert_eq!((r.get("username"), r.get("realm"), r.get("opaque")), (Some("a\"b\\c"), Some("we\"ird"), Some("o\\")));
}

#[test]
fn what_cannot_be_answered_says_why() {
    let err = |v: &str| Challenge::parse(v.as_bytes()).unwrap_err();
    assert_eq!(
        err("Digest realm=\"r\", nonce=\"n\", algorithm=SHA-1"),
        AuthError::UnsupportedAlgorithm("SHA-1".into())
    );
    assert_eq!(err("Digest realm=\"r\", nonce=\"n\", qop=\"auth-int\""), AuthError::QopAuthIntOnly);
    assert_eq!(err("Basic realm=\"r\""), AuthError::NoDigest);
    assert_eq!(err("Digest nonce=\"n\""), AuthError::Malformed("no realm"));
    assert_eq!(err("Digest realm=\"r\""), AuthError::Malformed("no nonce"));
    assert_eq!(err("Digest realm=\"r, nonce=n"), AuthError::Malformed("unterminated quoted string"));
    assert_eq!(err("Digest realm=\"r, nonce=\"n\""), AuthError::Malformed("parameters must be separated by commas"));
    assert_eq!(err("Digest realm=\"r\\"), AuthError::Malformed("unterminated quoted string"));
    assert_eq!(err("Digest realm=\"r\" nonce=\"n\""), AuthError::Malformed("parameters must be separated by commas"));
    assert_eq!(err(""), AuthError::Malformed("empty header value"));
    assert_eq!(err("Digest realm="), AuthError::Malformed("a parameter has no value"));
    assert_eq!(err("@@@"), AuthError::Malformed("expected an authentication scheme"));
    assert!(err("Digest realm=\"r\", nonce=\"n\", algorithm=SHA-1").to_string().contains("SHA-1"));
    // An unusable SHA-1 challenge beside a usable MD5 one: the MD5 one is answered.
    let both: [&[u8]; 2] = [b"Digest realm=\"r\", nonce=\"n\", algorithm=SHA-1", b"Digest realm=\"r\", nonce=\"n\""];
    assert_eq!(Challenge::pick(both).unwrap().algorithm, Algorithm::Md5);
    assert_eq!(Challenge::pick(std::iter::empty::<&[u8]>()), Err(AuthError::NoDigest));
}

#[test]
fn hostile_values_are_errors_not_panics() {
    let huge = format!("Digest realm=\"{}\", nonce=\"n\"", "a".repeat(MAX_VALUE));
    assert_eq!(Challenge::parse(huge.as_bytes()), Err(AuthError::Malformed("header value too long")));
    let many = format!("Digest realm=\"r\", nonce=\"n\"{}", ", x=1".repeat(10_000));
    assert!(Challenge::parse(many.as_bytes()).is_err());
    let mut params = String::from("Digest ");
    for i in 0..10_000 {
        params.push_str(&format!("p{i}=v,"));
    }
    assert!(Challenge::parse(params.as_bytes()).is_err(), "10,000 params");
    let schemes = "Digest realm=\"r\", nonce=\"n\", ".repeat(100);
    assert_eq!(Challenge::parse(schemes.as_bytes()), Err(AuthError::Malformed("too many challenges")));
    for junk in [
        &b"\"\"\"\"\""[..],
        b"Digest ,,,,",
        b"Digest =",
        b"Digest a=\"\xff\"",
        b"\xff\xfe",
        b"Digest\\",
        b"Digest a==b",
    ] {
        let _ = Challenge::parse(junk);
        let _ = DigestCredentials::parse(junk);
    }
    assert_eq!(Challenge::parse(b"Digest a=\"\xff\""), Err(AuthError::Malformed("a quoted value is not UTF-8")));
}

#[test]
fn the_password_never_shows_in_debug() {
    let c = Credentials { username: "alice".into(), password: "hunter2".into() };
    let shown = format!("{c:?} {c:#?}");
    assert!(shown.contains("alice") && !shown.contains("hunter2"), "{shown}");
}

mod prop {
    use proptest::prelude::*;

    use super::*;

    /// What the fuzz target checks: never a panic; a challenge prints back to itself and its credentials read
    /// back with the realm and nonce we were given.
    fn check(data: &[u8]) {
        let _ = DigestCredentials::parse(data);
        let Ok(c) = Challenge::parse(data) else { return };
        assert_eq!(Challenge::parse(c.to_string().as_bytes()).as_ref(), Ok(&c));
        let r = DigestCredentials::parse(c.respond(&mufasa(), "INVITE", "sip:x@y", "c", 1).as_bytes()).unwrap();
        assert_eq!((r.get("realm"), r.get("nonce")), (Some(c.realm.as_str()), Some(c.nonce.as_str())));
    }

    proptest! {
        #[test]
        fn any_bytes(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            check(&data);
        }

        #[test]
        fn challenge_shaped_values(
            s in "(Digest|Basic|digest)( (realm|nonce|opaque|qop|algorithm|stale|x)=(\"([ -!#-\\[\\]-~]|\\\\[\"\\\\])*\"|[A-Za-z0-9-]{1,12}),?){0,8}( Digest realm=\"r\", nonce=\"n\")?"
        ) {
            check(s.as_bytes());
        }
    }
}
