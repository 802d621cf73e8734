//! Long calls and offers inside the dialog, against SIPp playing the carrier: RFC 4028 session timers (vocals
//! refreshing with UPDATE, or with a re-INVITE when the carrier does not allow UPDATE; the carrier refreshing
//! then stopping; 422 with Min-SE), glare both ways (RFC 3261 §14), UPDATE with SDP (RFC 3311: hold, resume,
//! a moved address, a new codec) and a re-INVITE without SDP. The timers run on the real clock at RFC 4028's
//! smallest interval, 90 s: the four long scenarios run side by side, so the file takes about 65 s. Each
//! scenario checks the wire itself (SIPp's regular expressions); the tests check the timing on SIPp's message
//! log, the RTP on sockets of their own, and what the call records and `/v1/calls/{id}` say.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

mod common;

use common::inprocess::InProcess;
use common::sipplog::{Logged, run, run_to};
use common::{Vocals, header, rtp_packet};

/// A number not in the table: its calls go to `default_agent`.
const TALKER: &str = "+14155550177";

/// The server the scenarios call: calls may last (no `max_call_duration` cut at 60 s), the session timer as
/// vocals ships it (Min-SE 90 s). SIPp sends no RTP, so the RTP timeout is off: the session timer is what
/// ends a silent call here.
fn server(name: &str) -> InProcess {
    InProcess::start(name, &[("VOCALS_SIP_MAX_CALL_DURATION", "600"), ("VOCALS_MEDIA_TIMEOUT", "0")])
}

/// The first message of `log` that SIPp `sent` (or received) and that [`Logged::is`] `what`, from `from` on.
fn find<'a>(log: &'a [Logged], from: usize, sent: bool, what: &str) -> (usize, &'a Logged) {
    log.iter()
        .enumerate()
        .skip(from)
        .find(|(_, l)| l.sent == sent && l.is(what))
        .unwrap_or_else(|| panic!("no {what} {} in the log: {log:#?}", if sent { "sent" } else { "received" }))
}

/// The SDP `o=` line of a message.
fn origin(msg: &str) -> &str {
    msg.lines().find(|l| l.starts_with("o=")).unwrap_or_else(|| panic!("no o= line in:\n{msg}"))
}

/// The record of the call with this SIP Call-ID once it has ended and its session summary is written (up to 5
/// s), and the same record read through `/v1/calls/{id}`.
fn record(server: &Vocals, call_id: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    let call = loop {
        let calls = server.calls();
        let found = calls.iter().find(|c| c["sip_call_id"] == call_id && !c["end_at"].is_null());
        match found {
            Some(c) if !c["session"].is_null() => break c.clone(),
            _ if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            _ => panic!("no ended call {call_id} with a session summary: {calls:#?}"),
        }
    };
    let (status, one) = server.api("GET", &format!("/v1/calls/{}", call["id"].as_str().unwrap()), None);
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["session"], call["session"], "/v1/calls/{{id}} shows the session");
    call
}

fn call_id(log: &[Logged]) -> String {
    header(&log[0].text, "Call-ID").to_string()
}

#[test]
fn session_timers_refresh_expire_and_survive_glare_on_the_real_clock() {
    let server = server("timers");
    let [update, reinvite, stops, glare] = std::thread::scope(|s| {
        let runs = [
            "session_refresh_update.xml",
            "session_refresh_reinvite.xml",
            "session_peer_stops.xml",
            "session_glare.xml",
        ]
        .map(|file| s.spawn(|| run(&server, file, &[])));
        runs.map(|r| r.join().unwrap())
    });

    // vocals refreshes at half the interval: an UPDATE where the carrier allows it, 45 s after the 200.
    let (_, ok) = find(&update, 0, false, "200 INVITE");
    let (_, refresh) = find(&update, 0, false, "UPDATE");
    let after = refresh.at - ok.at;
    println!("UPDATE refresh {after:.2} s after the 200");
    assert!((44.0..47.0).contains(&after), "the UPDATE refresh came {after:.1} s after the 200");
    let call = record(&server, &call_id(&update));
    assert_eq!(call["session"], serde_json::json!({"interval": 90, "refresher": "vocals", "refreshes": 1, "glare": 0}));

    // Else a re-INVITE offering the SDP of the 200 unchanged (same o= version, RFC 3264 §8).
    let (_, ok) = find(&reinvite, 0, false, "200 INVITE");
    let (_, refresh) = find(&reinvite, 0, false, "INVITE");
    let after = refresh.at - ok.at;
    println!("re-INVITE refresh {after:.2} s after the 200");
    assert!((44.0..47.0).contains(&after), "the re-INVITE refresh came {after:.1} s after the 200");
    assert_eq!(origin(&refresh.text), origin(&ok.text), "the refresh offers the same SDP version");
    let call = record(&server, &call_id(&reinvite));
    assert_eq!(call["session"], serde_json::json!({"interval": 90, "refresher": "vocals", "refreshes": 1, "glare": 0}));

    // The carrier refreshed once, then stopped: vocals hangs up 90 − min(32, 30) = 60 s after that refresh.
    let (i, _) = find(&stops, 0, true, "UPDATE");
    let (_, refreshed) = find(&stops, i, false, "200 UPDATE");
    let (_, bye) = find(&stops, 0, false, "BYE");
    let after = bye.at - refreshed.at;
    println!("BYE {after:.2} s after the peer's last refresh");
    assert!((59.0..62.0).contains(&after), "vocals' BYE came {after:.1} s after the last refresh, not 60");
    let call = record(&server, &call_id(&stops));
    assert_eq!(call["session"], serde_json::json!({"interval": 90, "refresher": "peer", "refreshes": 1, "glare": 0}));
    assert_eq!(call["end_reason"], "session timer expired: the peer stopped refreshing the session", "{call:#}");

    // Glare: vocals' refresh got 491 and came again within 2 s (it does not own the Call-ID); ours, sent while
    // its second try was out, got 491. Both are counted; the second try was the refresh.
    let (i, _) = find(&glare, 0, true, "491 INVITE");
    let (_, again) = find(&glare, i, false, "INVITE");
    let (_, first) = find(&glare, 0, true, "491 INVITE");
    let wait = again.at - first.at;
    println!("re-INVITE tried again {wait:.2} s after the 491");
    assert!(wait < 2.3, "vocals tried again {wait:.2} s after the 491");
    let call = record(&server, &call_id(&glare));
    assert_eq!(call["session"], serde_json::json!({"interval": 90, "refresher": "vocals", "refreshes": 1, "glare": 2}));
}

#[test]
fn intervals_below_min_se_get_422_and_the_retry_is_answered() {
    let server = server("422");
    let log = run(&server, "session_422.xml", &[]);
    let (_, refused) = find(&log, 0, false, "422 INVITE");
    assert_eq!(header(&refused.text, "Min-SE"), "90");
    let (_, refused) = find(&log, 0, false, "422 UPDATE");
    assert_eq!(header(&refused.text, "Min-SE"), "90");
    let call = record(&server, &call_id(&log));
    assert_eq!(call["session"]["interval"], 120, "the UPDATE's interval is in force: {call:#}");
    assert_eq!(call["session"]["refresher"], "peer");
}

#[test]
fn a_reinvite_without_sdp_gets_an_offer_answered_in_the_ack() {
    let server = server("no-sdp");
    let log = run(&server, "reinvite_no_sdp.xml", &[]);
    // The offer in the 200 to the re-INVITE is the session as it stands: the o= of the first 200.
    let (i, first) = find(&log, 0, false, "200 INVITE");
    let (_, offer) = find(&log, i + 1, false, "200 INVITE");
    // The same session id; a new version, since the offer is not the answer sent before (RFC 3264 §8).
    let fields = |o: &str| o.split(' ').map(str::to_string).collect::<Vec<_>>();
    let (a, b) = (fields(origin(&first.text)), fields(origin(&offer.text)));
    assert_eq!(a[1], b[1], "the same session id: {a:?} / {b:?}");
    assert_eq!(a[2].parse::<u64>().unwrap() + 1, b[2].parse::<u64>().unwrap(), "the next version: {a:?} / {b:?}");
    let call = server.ended_call(&call_id(&log));
    let reason = call["end_reason"].as_str().unwrap_or_default();
    assert!(reason.starts_with("the caller hung up"), "{call:#}");
}

/// An agent that talks all through the call (a 20 ms frame every 20 ms, as a TTS stream does), so vocals
/// sends RTP whether or not the caller speaks; it reports how many frames of the caller's it heard from the
/// moved address (all 0x33).
fn talking_agent() -> (String, std::sync::mpsc::Receiver<usize>, tokio::runtime::Runtime) {
    use base64::Engine;
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let url = format!("ws://127.0.0.1:{}/stream", listener.local_addr().unwrap().port());
    let (tx, rx) = std::sync::mpsc::channel();
    rt.spawn(async move {
        let Ok((tcp, _)) = listener.accept().await else { return };
        let Ok(ws) = tokio_tungstenite::accept_async(tcp).await else { return };
        let (mut sink, mut stream) = ws.split();
        let payload = base64::engine::general_purpose::STANDARD.encode([0x55u8; 160]);
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        let (mut sid, mut heard) = (None::<String>, 0);
        loop {
            tokio::select! {
                _ = tick.tick(), if sid.is_some() => {
                    let frame = serde_json::json!({"event": "media", "streamSid": sid, "media": {"payload": payload}});
                    let _ = sink.send(Message::Text(frame.to_string().into())).await;
                }
                msg = stream.next() => {
                    let Some(Ok(Message::Text(text))) = msg else { break };
                    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
                    match v["event"].as_str().unwrap_or_default() {
                        "start" => sid = v["streamSid"].as_str().map(str::to_string),
                        "media" => {
                            let payload = v["media"]["payload"].as_str().unwrap_or_default();
                            let audio = base64::engine::general_purpose::STANDARD.decode(payload).unwrap_or_default();
                            if !audio.is_empty() && audio.iter().all(|&b| b == 0x33) {
                                heard += 1;
                            }
                        }
                        "stop" => break,
                        _ => {}
                    }
                }
            }
        }
        let _ = tx.send(heard);
    });
    (url, rx, rt)
}

/// Every RTP packet a socket gets (when, its payload type), until 4 s pass without one; and, as soon as the
/// first comes, where it came from.
type Collected = (std::thread::JoinHandle<Vec<(Instant, u8)>>, std::sync::mpsc::Receiver<std::net::SocketAddr>);

fn collect(socket: &UdpSocket) -> Collected {
    let rx = socket.try_clone().unwrap();
    rx.set_read_timeout(Some(Duration::from_secs(4))).unwrap();
    let (tx, first) = std::sync::mpsc::channel();
    let handle = std::thread::spawn(move || {
        let mut got = Vec::new();
        let mut buf = [0u8; 1500];
        while let Ok((n, from)) = rx.recv_from(&mut buf) {
            if n >= 12 {
                if got.is_empty() {
                    let _ = tx.send(from);
                }
                got.push((Instant::now(), buf[1] & 0x7f));
            }
        }
        got
    });
    (handle, first)
}

/// The caller's side of the media: it speaks from `first` (so vocals latches onto it: before that it sends
/// only a few packets, RTP is no reflector) until vocals' RTP reaches the moved address, then 25 packets from
/// `moved`, whose payload (0x33) the agent counts. How many it sent from each.
fn caller(
    first: &UdpSocket,
    moved: &UdpSocket,
    reached_first: std::sync::mpsc::Receiver<std::net::SocketAddr>,
    reached_moved: std::sync::mpsc::Receiver<std::net::SocketAddr>,
) -> std::thread::JoinHandle<(u16, u16)> {
    let (first, moved) = (first.try_clone().unwrap(), moved.try_clone().unwrap());
    std::thread::spawn(move || {
        let Ok(vocals) = reached_first.recv_timeout(Duration::from_secs(10)) else { return (0, 0) };
        let mut seq = 0u16;
        let vocals_moved = loop {
            match reached_moved.recv_timeout(Duration::from_millis(20)) {
                Ok(from) => break from,
                Err(_) if seq < 750 => {
                    let _ = first.send_to(&rtp_packet(seq, 0x5eed, &[0x55; 160]), vocals);
                    seq += 1;
                }
                Err(_) => return (seq, 0),
            }
        };
        for k in 0..25u16 {
            let _ = moved.send_to(&rtp_packet(seq + k, 0x5eed, &[0x33; 160]), vocals_moved);
            std::thread::sleep(Duration::from_millis(20));
        }
        (seq, 25)
    })
}

#[test]
fn update_with_sdp_holds_resumes_moves_the_media_and_changes_the_codec() {
    let (url, heard, _agent) = talking_agent();
    let agent = format!("[[agents]]\nname = \"talker\"\nurl = \"{url}\"\n");
    let env = [("VOCALS_MEDIA_TIMEOUT", "0"), ("VOCALS_DEFAULT_AGENT", "talker")];
    let server = InProcess::start_with("update", &agent, &env);
    // The media moves to another address altogether (127.0.0.2), as when a carrier's media server changes.
    let first = UdpSocket::bind("127.0.0.1:0").unwrap();
    let moved = UdpSocket::bind("127.0.0.2:0").unwrap();
    let port = |s: &UdpSocket| s.local_addr().unwrap().port().to_string();
    let (first_port, moved_port) = (port(&first), port(&moved));
    let ((on_first, reached_first), (on_moved, reached_moved)) = (collect(&first), collect(&moved));
    let speaking = caller(&first, &moved, reached_first, reached_moved);
    let keys = ["-key", "first_port", &first_port, "-key", "moved_port", &moved_port, "-key", "moved_ip", "127.0.0.2"];
    let log = run_to(&server, "update_offers.xml", TALKER, &keys);
    let (first_got, moved_got) = (on_first.join().unwrap(), on_moved.join().unwrap());
    let (from_first, from_moved) = speaking.join().unwrap();
    assert!(from_first > 20 && from_moved == 25, "vocals' RTP never reached the moved address");
    assert!(first_got.len() >= 40, "RTP reached the first address before the move: {}", first_got.len());
    assert!(moved_got.len() >= 40, "RTP reached the moved address after it: {}", moved_got.len());
    // On hold (sendonly, answered recvonly) vocals stopped sending for the 500 ms the hold lasted.
    let gap = first_got.windows(2).map(|w| w[1].0 - w[0].0).max().unwrap();
    assert!(gap >= Duration::from_millis(300), "no pause in the RTP while on hold (longest gap {gap:?})");
    // After the move, nothing more to the old address (a packet may cross).
    let moved_at = moved_got[0].0;
    let late = first_got.iter().filter(|(t, _)| *t > moved_at + Duration::from_millis(50)).count();
    assert_eq!(late, 0, "RTP went on to the old address after the move");
    // The last offer kept only PCMA: the media switched to payload type 8.
    assert_eq!(moved_got.first().unwrap().1, 0, "PCMU before");
    assert_eq!(moved_got.last().unwrap().1, 8, "PCMA after the codec change");
    // The caller's packets from the new address were latched onto again and reached the agent.
    let heard = heard.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(heard >= 20, "the agent heard {heard} frames from the moved address");
    let call = server.call_stats(&call_id(&log));
    assert!(call["stats"]["rtp"]["received"].as_u64().unwrap() >= 60, "{call:#}");
    let (_, held) = find(&log, 0, false, "200 UPDATE");
    assert!(held.text.contains("a=recvonly"), "{}", held.text);
}
