//! SIPp's message log (`-trace_msg`): a scenario run with it, and its messages parsed, in order.

use super::{NUMBER, Via, Vocals, header, sipp};

/// One message in SIPp's log (`-trace_msg`): when SIPp sent or received it (seconds since its first), and its
/// text.
#[derive(Debug)]
pub struct Logged {
    pub at: f64,
    pub sent: bool,
    pub text: String,
}

impl Logged {
    pub fn start(&self) -> &str {
        self.text.lines().next().unwrap_or("")
    }

    /// `INVITE`, or `200 INVITE` for a response (its status and CSeq method).
    pub fn is(&self, what: &str) -> bool {
        match what.split_once(' ') {
            Some((status, method)) => {
                self.start().starts_with(&format!("SIP/2.0 {status} ")) && header(&self.text, "CSeq").ends_with(method)
            }
            None => self.start().starts_with(&format!("{what} ")),
        }
    }
}

/// Runs `file` over UDP, calling [`NUMBER`] (the echo agent), with its messages logged; the log, in order.
pub fn run(server: &Vocals, file: &str, extra: &[&str]) -> Vec<Logged> {
    run_to(server, file, NUMBER, extra)
}

pub fn run_to(server: &Vocals, file: &str, number: &str, extra: &[&str]) -> Vec<Logged> {
    let mut args = vec!["-trace_msg", "-timeout", "150"];
    args.extend_from_slice(extra);
    sipp(server, Via::Udp, file, number, 1, &args);
    let work = server.dir.join(format!("{file}-Udp"));
    let log = std::fs::read_dir(&work)
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().ends_with("_messages.log"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .unwrap_or_else(|| panic!("no message log in {}", work.display()));
    parse_log(&log)
}

/// SIPp's message log: each message after a line of dashes and its time (`2026-12-07 12:12:03.856910`), then
/// `UDP message sent (503 bytes):` or `… received …`, a blank line and the message.
pub fn parse_log(log: &str) -> Vec<Logged> {
    let mut out: Vec<Logged> = Vec::new();
    let (mut first, mut last, mut day) = (None, 0.0, 0.0);
    for chunk in log.split("-----------------------------------------------").skip(1) {
        let mut lines = chunk.lines();
        let stamp = lines.next().unwrap_or("").trim();
        let Some((_, time)) = stamp.split_once(' ') else { continue };
        let secs: Vec<f64> = time.split(':').filter_map(|p| p.parse().ok()).collect();
        let [h, m, s] = secs[..] else { continue };
        let of_day = h * 3600.0 + m * 60.0 + s;
        if of_day + 43_200.0 < last {
            day += 86_400.0; // past midnight
        }
        last = of_day;
        let at = of_day + day;
        let first = *first.get_or_insert(at);
        let what = lines.next().unwrap_or("");
        let text: String = lines.skip(1).map(|l| format!("{l}\r\n")).collect();
        out.push(Logged { at: at - first, sent: what.contains(" sent "), text });
    }
    assert!(!out.is_empty(), "an empty message log:\n{log}");
    out
}
