//! Fuzz what agents send: any text frame is parsed against a stream id and applied to a playout queue and an
//! agent session. Nothing may panic, the queue never holds more than its bound, and the headers a `hangup` or
//! `transfer` carries into vocals' BYE or REFER are only X- headers and User-to-User, token-named, with no
//! line break or control character, and within their bounds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vocals::agent::protocol::StartInfo;
use vocals::agent::headers::{MAX_HEADERS, MAX_TOTAL};
use vocals::agent::session::{Action, AgentSession};
use vocals::media::playout::PlayoutQueue;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut session = AgentSession::new(StartInfo { stream_sid: "MZ1".into(), ..StartInfo::default() });
    let mut queue = PlayoutQueue::new(1000, 0xFF);
    for frame in text.split('\u{1}') {
        if let Ok(Some(Action::Transfer { headers, .. } | Action::Hangup { headers })) =
            session.on_text(frame, &mut queue)
        {
            assert!(headers.len() <= MAX_HEADERS);
            assert!(headers.iter().map(|(n, v)| n.len() + v.len()).sum::<usize>() <= MAX_TOTAL);
            for (name, value) in &headers {
                let lower = name.to_ascii_lowercase();
                assert!(lower.starts_with("x-") || lower == "user-to-user", "{name}");
                assert!(name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)), "{name}");
                assert!(!value.chars().any(|c| c.is_control() && c != '\t'), "{value:?}");
            }
        }
        assert!(queue.queued_ms() <= 1000);
        let mut out = [0u8; 160];
        queue.next_frame(&mut out);
        while queue.poll_mark().is_some() {}
    }
});
