//! The Create Call request, the Call resource and the status callbacks' parameters, checked against
//! Twilio's shapes, with hostile inputs.

use super::*;
use crate::twilio::twiml::StreamTwiml;

const TWIML: &str = r#"<Response><Connect><Stream url="wss://agent.example.com/media"/></Connect></Response>"#;

fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
}

fn minimal() -> Vec<(String, String)> {
    form(&[("To", "+14155550123"), ("From", "+12125550100"), ("Twiml", TWIML)])
}

fn with(extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut f = minimal();
    f.extend(form(extra));
    f
}

fn without(name: &str) -> Vec<(String, String)> {
    minimal().into_iter().filter(|(n, _)| n != name).collect()
}

fn refused(f: &[(String, String)]) -> ApiError {
    parse_create(f).expect_err("refused")
}

#[test]
fn a_minimal_request_takes_twilios_defaults() {
    let c = parse_create(&minimal()).unwrap();
    assert_eq!(c.to.as_str(), "+14155550123");
    assert_eq!(c.from.as_str(), "+12125550100");
    let stream = StreamTwiml { url: "wss://agent.example.com/media".into(), name: None, parameters: vec![] };
    assert_eq!(c.twiml, Some(Twiml::Connect(stream)));
    assert_eq!((c.url, c.method), (None, HttpMethod::Post));
    assert_eq!(c.timeout, Duration::from_secs(60));
    assert_eq!((c.status_callback, c.status_method), (None, HttpMethod::Post));
    assert_eq!(c.status_events, vec![StatusEvent::Completed]);
}

/// The form twilio-python's `client.calls.create(to=, from_=, twiml=, status_callback=,
/// status_callback_event=[…], timeout=)` sends: a list as a repeated field.
#[test]
fn twilio_pythons_request_shape() {
    let f = with(&[
        ("StatusCallback", "https://agent.example.com/status?call=1"),
        ("StatusCallbackEvent", "initiated"),
        ("StatusCallbackEvent", "ringing"),
        ("StatusCallbackEvent", "answered"),
        ("StatusCallbackEvent", "completed"),
        ("StatusCallbackMethod", "POST"),
        ("Timeout", "25"),
        ("Record", "false"),
    ]);
    let c = parse_create(&f).unwrap();
    assert_eq!(c.status_callback.as_deref(), Some("https://agent.example.com/status?call=1"));
    use StatusEvent::*;
    assert_eq!(c.status_events, vec![Initiated, Ringing, Answered, Completed]);
    assert_eq!(c.timeout, Duration::from_secs(25));
}

#[test]
fn status_events_space_separated_in_any_order_and_case_once_each() {
    let f = with(&[("StatusCallbackEvent", "completed  Ringing"), ("StatusCallbackEvent", "ringing,answered")]);
    use StatusEvent::*;
    assert_eq!(parse_create(&f).unwrap().status_events, vec![Ringing, Answered, Completed]);
}

#[test]
fn url_with_method_and_twiml_ignored_beside_it() {
    let f = with(&[("Url", "https://crm.example.com/twiml"), ("Method", "get")]);
    let c = parse_create(&f).unwrap();
    assert_eq!(c.url.as_deref(), Some("https://crm.example.com/twiml"));
    assert_eq!((c.method, c.twiml), (HttpMethod::Get, None));
    // Even a Twiml that would be refused, as Twilio ignores it.
    let mut f = without("Twiml");
    f.extend(form(&[("Url", "http://10.0.0.5:8000/twiml"), ("Twiml", "<Say>")]));
    assert!(parse_create(&f).is_ok());
}

#[test]
fn to_and_from_missing_or_invalid() {
    assert_eq!(refused(&without("To")).code, 21201);
    assert_eq!(refused(&without("From")).code, 21213);
    let blank: Vec<_> = minimal().into_iter().map(|(n, v)| if n == "To" { (n, " ".into()) } else { (n, v) }).collect();
    assert_eq!(refused(&blank).code, 21201);
    for bad in ["4155550123", "+141555", "sip:alice@example.com", "client:alice", "+0123456789", "+1415555012x"] {
        let mut f = without("To");
        f.push(("To".into(), bad.into()));
        let e = refused(&f);
        assert_eq!((e.status, e.code), (400, 21211), "{bad}");
        assert!(e.message.contains("'To'") && e.message.contains(bad), "{}", e.message);
        let mut f = without("From");
        f.push(("From".into(), bad.into()));
        assert_eq!(refused(&f).code, 21212, "{bad}");
    }
    let e = refused(&with(&[("To", "+14155550199")]));
    assert_eq!(e.code, 21211);
    assert!(e.message.contains("more than once"));
}

#[test]
fn instructions_are_required() {
    let e = refused(&without("Twiml"));
    assert_eq!((e.status, e.code), (400, 21200));
    assert!(e.message.contains("Twiml or Url"));
    let mut f = without("Twiml");
    f.push(("ApplicationSid".into(), "AP123".into()));
    assert!(refused(&f).message.contains("ApplicationSid"));
    let mut f = without("Twiml");
    f.push(("Twiml".into(), String::new()));
    assert_eq!(refused(&f).code, 21200);
}

#[test]
fn url_must_be_absolute_http() {
    for bad in [
        "/twiml",
        "twiml.xml",
        "ftp://example.com/x",
        "wss://agent.example.com/",
        "https://",
        "https://my_host.example.com/",
        "https:///path",
    ] {
        let mut f = without("Twiml");
        f.push(("Url".into(), bad.into()));
        let e = refused(&f);
        assert_eq!(e.code, 21205, "{bad}");
        assert!(e.message.starts_with("Url is not a valid URL"), "{}", e.message);
    }
    let mut f = without("Twiml");
    f.push(("Url".into(), format!("https://example.com/{}", "a".repeat(MAX_URL_CHARS))));
    assert_eq!(refused(&f).code, 21205);
}

#[test]
fn methods_are_get_or_post() {
    let e = refused(&with(&[("Method", "PUT")]));
    assert_eq!(e.code, 21209);
    assert!(e.message.contains("Method \"PUT\""));
    let e = refused(&with(&[("StatusCallbackMethod", "DELETE")]));
    assert_eq!(e.code, 21209);
    assert!(e.message.contains("StatusCallbackMethod"));
    assert_eq!(parse_create(&with(&[("StatusCallbackMethod", "GET")])).unwrap().status_method, HttpMethod::Get);
}

#[test]
fn timeout_is_1_to_600_whole_seconds() {
    for ok in ["1", "600", " 30 "] {
        assert!(parse_create(&with(&[("Timeout", ok)])).is_ok(), "{ok}");
    }
    for bad in ["0", "601", "-5", "1.5", "ten", "99999999999999999999999"] {
        let e = refused(&with(&[("Timeout", bad)]));
        assert_eq!(e.code, 21208, "{bad}");
        assert!(e.message.contains("Timeout"));
    }
}

#[test]
fn status_callback_and_events_are_checked() {
    let e = refused(&with(&[("StatusCallback", "not a url")]));
    assert_eq!(e.code, 21609);
    assert!(e.message.starts_with("StatusCallback is not a valid URL"));
    let e = refused(&with(&[("StatusCallback", "https://a.example/"), ("StatusCallbackEvent", "hangup")]));
    assert_eq!(e.code, 21626);
    assert!(e.message.contains("\"hangup\""));
    // Events without a callback URL are kept (nothing is sent); an empty callback is none.
    let c = parse_create(&with(&[("StatusCallback", ""), ("StatusCallbackEvent", "ringing")])).unwrap();
    assert_eq!((c.status_callback, c.status_events), (None, vec![StatusEvent::Ringing]));
}

#[test]
fn twiml_is_parsed_and_bounded() {
    let mut f = without("Twiml");
    f.push(("Twiml".into(), "<Response><Say>Hi</Say></Response>".into()));
    let e = refused(&f);
    assert_eq!((e.status, e.code), (400, 12200));
    assert!(e.message.contains("<Say>"), "{}", e.message);
    let mut f = without("Twiml");
    f.push(("Twiml".into(), "<Response>".into()));
    assert_eq!(refused(&f).code, 12100);
    let mut f = without("Twiml");
    f.push(("Twiml".into(), format!("<Response>{}<Hangup/></Response>", " ".repeat(MAX_TWIML_CHARS))));
    assert_eq!(refused(&f).code, 32018);
    let mut f = without("Twiml");
    f.push(("Twiml".into(), "<Response><Hangup/></Response>".into()));
    assert_eq!(parse_create(&f).unwrap().twiml, Some(Twiml::Hangup));
}

#[test]
fn hostile_forms_are_refused_without_panicking() {
    let big = "9".repeat(1 << 20);
    let mut f = without("To");
    f.push(("To".into(), big.clone()));
    assert_eq!(refused(&f).code, 21211);
    assert_eq!(refused(&with(&[("Timeout", &big)])).code, 21208);
    let events: Vec<(String, String)> =
        (0..10_000).map(|_| ("StatusCallbackEvent".to_string(), "ringing completed".to_string())).collect();
    let mut f = minimal();
    f.extend(events);
    assert_eq!(parse_create(&f).unwrap().status_events.len(), 2);
    let e = refused(&with(&[("StatusCallbackEvent", &"x".repeat(100_000))]));
    assert!(e.message.len() < 200, "the message does not echo the whole value");
    for weird in ["\u{0}", "+1415\u{202e}5550123", "％", "\r\n"] {
        let mut f = without("From");
        f.push(("From".into(), weird.into()));
        let _ = parse_create(&f);
    }
    assert_eq!(parse_create(&[]).unwrap_err().code, 21201);
}

#[test]
fn errors_are_twilios_json() {
    let e = refused(&without("To"));
    assert_eq!(
        e.json(),
        json!({
            "code": 21201,
            "message": "Required parameter To is missing",
            "more_info": "https://www.twilio.com/docs/errors/21201",
            "status": 400,
        })
    );
    assert!(e.to_string().contains("21201"));
}

#[test]
fn sip_responses_map_to_twilios_statuses() {
    use CallStatus::*;
    for (sip, status) in [
        (100, Initiated),
        (180, Ringing),
        (183, Ringing),
        (200, InProgress),
        (486, Busy),
        (600, Busy),
        (480, NoAnswer),
        (408, NoAnswer),
        (487, Canceled),
        (302, Failed),
        (403, Failed),
        (404, Failed),
        (503, Failed),
        (603, Failed),
        (0, Failed),
        (999, Failed),
    ] {
        assert_eq!(CallStatus::from_sip(sip), status, "{sip}");
    }
    let words: Vec<_> = [Queued, Initiated, Ringing, InProgress, Completed, Busy, NoAnswer, Failed, Canceled]
        .map(CallStatus::as_str)
        .into();
    assert_eq!(
        words,
        ["queued", "initiated", "ringing", "in-progress", "completed", "busy", "no-answer", "failed", "canceled"]
    );
}

#[test]
fn dates_as_twilio_writes_them() {
    // Twilio's own example.
    let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_281_427_337);
    assert_eq!(rfc2822(t), "Tue, 10 Aug 2010 08:02:17 +0000");
    assert_eq!(rfc2822(SystemTime::UNIX_EPOCH), "Thu, 01 Jan 1970 00:00:00 +0000");
    // A leap day.
    let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_709_164_800);
    assert_eq!(rfc2822(t), "Thu, 29 Feb 2024 00:00:00 +0000");
    assert_eq!(rfc2822(SystemTime::UNIX_EPOCH - Duration::from_secs(5)), "Thu, 01 Jan 1970 00:00:00 +0000");
}

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_281_427_337 + secs)
}

fn view(status: CallStatus) -> CallView {
    CallView {
        sid: "CA0123456789abcdef0123456789abcdef".into(),
        account_sid: "AC0123456789abcdef0123456789abcdef".into(),
        to: "+14155550123".into(),
        from: "+442071234567".into(),
        status,
        direction: "outbound-api",
        created: at(0),
        started: None,
        ended: None,
        sip_response_code: None,
    }
}

#[test]
fn a_queued_calls_resource() {
    let r = call_resource(&view(CallStatus::Queued));
    let base = "/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Calls/CA0123456789abcdef0123456789abcdef";
    assert_eq!(r["sid"], "CA0123456789abcdef0123456789abcdef");
    assert_eq!(r["status"], "queued");
    assert_eq!(r["direction"], "outbound-api");
    assert_eq!(r["api_version"], "2010-04-01");
    assert_eq!(r["date_created"], "Tue, 10 Aug 2010 08:02:17 +0000");
    assert_eq!(r["date_updated"], r["date_created"]);
    assert_eq!(
        (r["to_formatted"].as_str(), r["from_formatted"].as_str()),
        (Some("(415) 555-0123"), Some("+442071234567"))
    );
    for key in ["start_time", "end_time", "duration", "price", "answered_by", "parent_call_sid", "caller_name"] {
        assert!(r[key].is_null(), "{key}");
    }
    assert_eq!(r["uri"], format!("{base}.json"));
    assert_eq!(r["subresource_uris"]["streams"], format!("{base}/Streams.json"));
    assert_eq!(r["subresource_uris"].as_object().unwrap().len(), SUBRESOURCES.len());
    // Every field twilio-python's CallInstance reads.
    for key in [
        "sid",
        "date_created",
        "date_updated",
        "parent_call_sid",
        "account_sid",
        "to",
        "to_formatted",
        "from",
        "from_formatted",
        "phone_number_sid",
        "status",
        "start_time",
        "end_time",
        "duration",
        "price",
        "price_unit",
        "direction",
        "answered_by",
        "api_version",
        "forwarded_from",
        "group_sid",
        "caller_name",
        "queue_time",
        "trunk_sid",
        "uri",
        "subresource_uris",
    ] {
        assert!(r.get(key).is_some(), "{key}");
    }
    assert_eq!(r.as_object().unwrap().len(), 26);
    // Initiated is not a resource status.
    assert_eq!(call_resource(&view(CallStatus::Initiated))["status"], "queued");
}

#[test]
fn a_completed_calls_resource_has_its_times_and_duration() {
    let v = CallView {
        started: Some(at(7)),
        ended: Some(at(70)),
        sip_response_code: Some(200),
        ..view(CallStatus::Completed)
    };
    let r = call_resource(&v);
    assert_eq!(r["status"], "completed");
    assert_eq!(r["start_time"], "Tue, 10 Aug 2010 08:02:24 +0000");
    assert_eq!(r["end_time"], "Tue, 10 Aug 2010 08:03:27 +0000");
    assert_eq!(r["date_updated"], r["end_time"]);
    assert_eq!(r["duration"], "63");
    // Busy: never answered, no duration.
    let busy = CallView { ended: Some(at(3)), sip_response_code: Some(486), ..view(CallStatus::Busy) };
    let r = call_resource(&busy);
    assert_eq!((r["status"].as_str(), r["duration"].is_null()), (Some("busy"), true));
}

fn get<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

#[test]
fn callbacks_carry_twilios_parameters() {
    let ringing = callback_params(&view(CallStatus::Ringing), 1, StatusEvent::Ringing);
    let names: Vec<_> = ringing.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "CallSid",
            "AccountSid",
            "From",
            "To",
            "CallStatus",
            "ApiVersion",
            "Direction",
            "CallbackSource",
            "SequenceNumber",
            "Timestamp"
        ]
    );
    assert_eq!(get(&ringing, "CallStatus"), Some("ringing"));
    assert_eq!(get(&ringing, "CallbackSource"), Some("call-progress-events"));
    assert_eq!(get(&ringing, "SequenceNumber"), Some("1"));
    assert_eq!(get(&ringing, "Timestamp"), Some("Tue, 10 Aug 2010 08:02:17 +0000"));
    assert_eq!(get(&ringing, "Direction"), Some("outbound-api"));

    let answered = CallView { started: Some(at(5)), ..view(CallStatus::InProgress) };
    let p = callback_params(&answered, 2, StatusEvent::Answered);
    assert_eq!(
        (get(&p, "CallStatus"), get(&p, "Timestamp")),
        (Some("in-progress"), Some("Tue, 10 Aug 2010 08:02:22 +0000"))
    );
    assert_eq!(get(&p, "CallDuration"), None);

    let done = CallView { ended: Some(at(65)), sip_response_code: Some(200), ..answered };
    let p = callback_params(&done, 3, StatusEvent::Completed);
    assert_eq!(get(&p, "CallStatus"), Some("completed"), "a view not final yet completes as completed");
    assert_eq!(get(&p, "CallDuration"), Some("60"));
    assert_eq!(get(&p, "SipResponseCode"), Some("200"));
    assert_eq!(get(&p, "Timestamp"), Some("Tue, 10 Aug 2010 08:03:22 +0000"));
    let initiated = callback_params(&view(CallStatus::Initiated), 0, StatusEvent::Initiated);
    assert_eq!(get(&initiated, "CallStatus"), Some("initiated"));
}

#[test]
fn the_completed_callback_says_how_the_call_ended() {
    for (status, sip) in
        [(CallStatus::Busy, 486), (CallStatus::NoAnswer, 487), (CallStatus::Failed, 503), (CallStatus::Canceled, 487)]
    {
        let v = CallView { ended: Some(at(30)), sip_response_code: Some(sip), ..view(status) };
        let p = callback_params(&v, 4, StatusEvent::Completed);
        assert_eq!(get(&p, "CallStatus"), Some(status.as_str()));
        assert_eq!(get(&p, "CallDuration"), Some("0"));
        assert_eq!(get(&p, "SipResponseCode"), Some(sip.to_string().as_str()));
    }
}

#[test]
fn callbacks_sign_and_verify_as_twilio_validators_expect() {
    let p = callback_params(&view(CallStatus::Ringing), 1, StatusEvent::Ringing);
    let url = "https://agent.example.com/status?call=1";
    let signature = crate::twilio::signature::sign("token", url, &p);
    assert!(crate::twilio::signature::verify("token", url, &p, &signature));
}
