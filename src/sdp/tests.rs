//! Offers from the Twilio fixtures and hand-made ones through negotiation and back out as answers.

use std::net::IpAddr;

use super::*;
use crate::sip::message::Message;

fn body(fixture: &[u8]) -> Vec<u8> {
    Message::parse(fixture.to_vec()).unwrap().body().to_vec()
}

const UDP: &[u8] = include_bytes!("../../sip-tests/vectors/twilio/twilio-invite-udp.sip");
const PCMU_ONLY: &[u8] = include_bytes!("../../sip-tests/vectors/twilio/twilio-invite-pcmu-only.sip");
const SRTP: &[u8] = include_bytes!("../../sip-tests/vectors/twilio/twilio-invite-tls-srtp.sip");

/// Our SRTP key in these tests.
const KEY: sdes::KeySalt = sdes::KeySalt([9; sdes::KEY_SALT_LEN]);

fn local() -> Local {
    Local { address: "203.0.113.10".parse().unwrap(), port: 10_000, session_id: 42, session_version: 1 }
}

fn sdp(media: &str) -> Vec<u8> {
    format!("v=0\r\no=- 1 1 IN IP4 10.1.2.3\r\ns=-\r\nc=IN IP4 192.0.2.7\r\nt=0 0\r\n{media}").into_bytes()
}

#[test]
fn twilios_offer_is_read_in_full() {
    let offer = Offer::parse(&body(UDP)).unwrap();
    assert_eq!(offer.address, Some("168.86.138.121".parse::<IpAddr>().unwrap()), "c=, never the private o=");
    assert_eq!(offer.port, 40150);
    assert_eq!(offer.rtcp_port, Some(40151));
    assert_eq!(offer.profile, Profile::Avp);
    assert_eq!(offer.direction, Direction::SendRecv);
    let names: Vec<_> = offer.formats.iter().map(|f| (f.payload_type, f.name.as_str())).collect();
    assert_eq!(names, [(0, "PCMU"), (8, "PCMA"), (101, "telephone-event")]);
}

#[test]
fn pcmu_and_telephone_event_are_chosen_and_answered_with_our_public_address() {
    let neg = negotiate(&Offer::parse(&body(UDP)).unwrap(), SrtpPolicy::Off, KEY).unwrap();
    assert_eq!((neg.codec, neg.payload_type, neg.telephone_event), (Codec::Pcmu, 0, Some(101)));
    assert_eq!(neg.remote_rtp, Some("168.86.138.121:40150".parse().unwrap()));
    assert_eq!(neg.remote_rtcp, Some("168.86.138.121:40151".parse().unwrap()));
    let text = String::from_utf8(answer(&neg, &local()).to_vec()).unwrap();
    assert_eq!(
        text,
        "v=0\r\no=vocals 42 1 IN IP4 203.0.113.10\r\ns=vocals\r\nc=IN IP4 203.0.113.10\r\nt=0 0\r\n\
         m=audio 10000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n\
         a=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
    );
    // Our answer is itself valid SDP that negotiates to the same thing.
    let again = negotiate(&Offer::parse(text.as_bytes()).unwrap(), SrtpPolicy::Off, KEY).unwrap();
    assert_eq!((again.codec, again.telephone_event), (Codec::Pcmu, Some(101)));
}

#[test]
fn the_older_pcmu_only_offer_negotiates() {
    let neg = negotiate(&Offer::parse(&body(PCMU_ONLY)).unwrap(), SrtpPolicy::Off, KEY).unwrap();
    assert_eq!((neg.codec, neg.telephone_event), (Codec::Pcmu, Some(101)));
}

#[test]
fn pcma_only_offers_get_pcma_and_the_offered_event_payload_type_is_mirrored() {
    let offer = Offer::parse(&sdp("m=audio 4000 RTP/AVP 8 96\r\na=rtpmap:96 telephone-event/8000\r\n")).unwrap();
    let neg = negotiate(&offer, SrtpPolicy::Off, KEY).unwrap();
    assert_eq!((neg.codec, neg.payload_type, neg.telephone_event), (Codec::Pcma, 8, Some(96)));
    assert!(String::from_utf8(answer(&neg, &local()).to_vec()).unwrap().contains("m=audio 10000 RTP/AVP 8 96\r\n"));
}

#[test]
fn static_payload_types_need_no_rtpmap_and_pcmu_is_preferred_whatever_the_order() {
    let neg = negotiate(&Offer::parse(&sdp("m=audio 4000 RTP/AVP 8 0\r\n")).unwrap(), SrtpPolicy::Off, KEY).unwrap();
    assert_eq!((neg.codec, neg.telephone_event), (Codec::Pcmu, None));
}

#[test]
fn g729_only_is_refused_with_488_and_a_warning() {
    let err = negotiate(
        &Offer::parse(&sdp("m=audio 4000 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n")).unwrap(),
        SrtpPolicy::Off,
        KEY,
    )
    .unwrap_err();
    assert_eq!(err, SdpError::NoCommonCodec);
    assert_eq!(err.status(), 488);
    assert!(err.warning("vocals.example").starts_with("305 vocals.example \"no common codec"));
}

#[test]
fn twilios_srtp_offer_is_answered_with_its_tag_and_suite_and_our_own_key() {
    let offer = Offer::parse(&body(SRTP)).unwrap();
    for policy in [SrtpPolicy::Allowed, SrtpPolicy::Required] {
        let neg = negotiate(&offer, policy, KEY).unwrap();
        let keys = neg.srtp.expect("SRTP");
        assert_eq!((keys.tag, keys.suite), (1, sdes::Suite::AesCm128HmacSha1_80));
        assert_eq!(keys.remote, sdes::Crypto::parse(&offer.crypto[0]).unwrap().key);
        assert_eq!(keys.local, KEY);
        let text = String::from_utf8(answer(&neg, &local()).to_vec()).unwrap();
        assert!(text.contains("m=audio 10000 RTP/SAVP 0 101\r\n"), "{text}");
        let line = text.lines().find_map(|l| l.strip_prefix("a=crypto:")).expect("a=crypto in the answer");
        let ours = sdes::Crypto::parse(line).unwrap();
        assert_eq!((ours.tag, ours.suite, ours.key), (1, keys.suite, KEY), "our key, never the offer's echoed");
    }
}

#[test]
fn policy_decides_between_rtp_and_srtp() {
    let plain = Offer::parse(&body(UDP)).unwrap();
    assert_eq!(negotiate(&plain, SrtpPolicy::Allowed, KEY).unwrap().srtp, None);
    assert_eq!(negotiate(&plain, SrtpPolicy::Required, KEY), Err(SdpError::SrtpRequired));
    assert_eq!(SdpError::SrtpRequired.status(), 488);
    let no_key = Offer::parse(&sdp("m=audio 4000 RTP/SAVP 0\r\n")).unwrap();
    let err = negotiate(&no_key, SrtpPolicy::Allowed, KEY).unwrap_err();
    assert_eq!(err, SdpError::Crypto("malformed a=crypto: no a=crypto line".into()));
    assert_eq!(err.status(), 488);
    let f8 = Offer::parse(&sdp("m=audio 4000 RTP/SAVP 0\r\na=crypto:1 F8_128_HMAC_SHA1_80 inline:AAAA\r\n")).unwrap();
    assert!(matches!(negotiate(&f8, SrtpPolicy::Required, KEY), Err(SdpError::Crypto(_))));
}

#[test]
fn srtp_offers_are_refused_while_srtp_is_off() {
    let offer = Offer::parse(&body(SRTP)).unwrap();
    assert_eq!(offer.profile, Profile::Savp);
    assert_eq!(offer.crypto.len(), 1);
    assert_eq!(negotiate(&offer, SrtpPolicy::Off, KEY), Err(SdpError::SrtpNotEnabled));
    assert_eq!(SdpError::SrtpNotEnabled.status(), 488);
}

#[test]
fn the_direction_table_of_rfc_3264_6_1() {
    for (offered, answered) in
        [("sendrecv", "sendrecv"), ("sendonly", "recvonly"), ("recvonly", "sendonly"), ("inactive", "inactive")]
    {
        let offer = Offer::parse(&sdp(&format!("m=audio 4000 RTP/AVP 0\r\na={offered}\r\n"))).unwrap();
        let neg = negotiate(&offer, SrtpPolicy::Off, KEY).unwrap();
        assert_eq!(neg.direction.as_str(), answered, "{offered}");
        assert!(String::from_utf8(answer(&neg, &local()).to_vec()).unwrap().ends_with(&format!("a={answered}\r\n")));
    }
    // A session-level attribute applies when the stream has none.
    let session_hold = b"v=0\r\no=- 1 1 IN IP4 10.1.2.3\r\ns=-\r\nc=IN IP4 192.0.2.7\r\nt=0 0\r\na=sendonly\r\nm=audio 4000 RTP/AVP 0\r\n";
    assert_eq!(
        negotiate(&Offer::parse(session_hold).unwrap(), SrtpPolicy::Off, KEY).unwrap().direction,
        Direction::RecvOnly
    );
    // RFC 2543 hold: c=0.0.0.0.
    let old_hold = b"v=0\r\no=- 1 1 IN IP4 10.1.2.3\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
    let neg = negotiate(&Offer::parse(old_hold).unwrap(), SrtpPolicy::Off, KEY).unwrap();
    assert_eq!((neg.direction, neg.remote_rtp), (Direction::RecvOnly, None));
}

#[test]
fn other_streams_are_refused_with_port_zero_in_order() {
    let offer =
        Offer::parse(&sdp("m=video 5000 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\nm=audio 4000 RTP/AVP 0\r\n")).unwrap();
    let text = String::from_utf8(answer(&negotiate(&offer, SrtpPolicy::Off, KEY).unwrap(), &local()).to_vec()).unwrap();
    let m_lines: Vec<_> = text.lines().filter(|l| l.starts_with("m=")).collect();
    assert_eq!(m_lines, ["m=video 0 RTP/AVP 96", "m=audio 10000 RTP/AVP 0"]);
}

#[test]
fn offers_without_usable_audio_or_that_do_not_parse_are_refused() {
    assert_eq!(Offer::parse(&sdp("m=video 5000 RTP/AVP 96\r\n")), Err(SdpError::NoAudio));
    assert_eq!(Offer::parse(&sdp("m=audio 0 RTP/AVP 0\r\n")), Err(SdpError::NoAudio), "port 0 is a refused stream");
    assert!(matches!(Offer::parse(b"not sdp at all"), Err(SdpError::Malformed(_))));
    assert!(matches!(
        Offer::parse(&sdp("m=audio 4000 UDP/TLS/RTP/SAVPF 0\r\n")),
        Err(SdpError::UnsupportedTransport(_))
    ));
    assert_eq!(SdpError::Malformed(String::new()).status(), 400);
}

#[test]
fn our_own_offer_lists_both_laws_and_events_and_reads_back() {
    let ipv6 = Local { address: "2001:db8::10".parse().unwrap(), ..local() };
    let text = String::from_utf8(offer(&ipv6, None).to_vec()).unwrap();
    assert!(text.contains("c=IN IP6 2001:db8::10\r\n") && text.contains("m=audio 10000 RTP/AVP 0 8 101\r\n"));
    let back = Offer::parse(text.as_bytes()).unwrap();
    assert_eq!(back.formats.len(), 3);
    assert_eq!(negotiate(&back, SrtpPolicy::Off, KEY).unwrap().codec, Codec::Pcmu);
}

#[test]
fn our_srtp_offer_carries_our_key_and_the_answer_gives_us_theirs() {
    let text = String::from_utf8(offer(&local(), Some(KEY)).to_vec()).unwrap();
    assert!(text.contains("m=audio 10000 RTP/SAVP 0 8 101\r\n"), "{text}");
    let back = Offer::parse(text.as_bytes()).unwrap();
    let line = sdes::Crypto::choose(&back.crypto).unwrap();
    assert_eq!((line.tag, line.key), (1, KEY));
    // The peer answers with its own key under our tag: negotiating the answer gives both.
    let theirs = sdes::KeySalt([3; sdes::KEY_SALT_LEN]);
    let answer = text.replace(&line.answer_line(&KEY), &line.answer_line(&theirs));
    let neg = negotiate(&Offer::parse(answer.as_bytes()).unwrap(), SrtpPolicy::Required, KEY).unwrap();
    let keys = neg.srtp.unwrap();
    assert_eq!((keys.remote, keys.local), (theirs, KEY));
}

#[test]
fn an_offer_larger_than_max_sdp_is_refused_unread_with_413() {
    let mut media = String::from("m=audio 4000 RTP/AVP 0\r\n");
    while media.len() <= MAX_SDP {
        media.push_str("a=x-padding:0123456789abcdef0123456789abcdef\r\n");
    }
    let big = sdp(&media);
    let err = Offer::parse(&big).unwrap_err();
    assert_eq!(err, SdpError::TooLarge(big.len()));
    assert_eq!(err.status(), 413);
    let just_fits = sdp("m=audio 4000 RTP/AVP 0\r\n");
    assert!(Offer::parse(&just_fits).is_ok());
}
