//! Fuzz what agents send: any text frame is parsed against a stream id and applied to a playout queue and an
//! agent session. Nothing may panic, and the queue never holds more than its bound.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vocals::agent::protocol::StartInfo;
use vocals::agent::session::AgentSession;
use vocals::media::playout::PlayoutQueue;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut session = AgentSession::new(StartInfo { stream_sid: "MZ1".into(), ..StartInfo::default() });
    let mut queue = PlayoutQueue::new(1000, 0xFF);
    for frame in text.split('\u{1}') {
        let _ = session.on_text(frame, &mut queue);
        assert!(queue.queued_ms() <= 1000);
        let mut out = [0u8; 160];
        queue.next_frame(&mut out);
        while queue.poll_mark().is_some() {}
    }
});
