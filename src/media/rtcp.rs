//! RTCP for one call (RFC 3550 §6), through `rtc-rtcp`: the compound report we send about every 5 s (SR when we
//! have sent RTP since the last report, else RR, each followed by SDES CNAME), and what incoming SR/RR tell us:
//! round-trip time (§6.4.1) and the loss and jitter the peer sees. Time is an input: `now` plus the NTP time
//! that corresponds to it.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use rtc_rtcp::packet::Packet;
use rtc_rtcp::receiver_report::ReceiverReport;
use rtc_rtcp::reception_report::ReceptionReport;
use rtc_rtcp::sender_report::SenderReport;
use rtc_rtcp::source_description::{SdesType, SourceDescription, SourceDescriptionChunk, SourceDescriptionItem};

/// Seconds from the NTP epoch (1900) to the Unix epoch (1970).
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// A 64-bit NTP timestamp for a wall-clock time.
pub fn ntp(time: SystemTime) -> u64 {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs() + NTP_UNIX_OFFSET;
    let frac = (u64::from(since.subsec_nanos()) << 32) / 1_000_000_000;
    (secs << 32) | frac
}

/// The middle 32 bits of an NTP timestamp (the unit of LSR and DLSR: 1/65536 s).
fn mid(ntp: u64) -> u32 {
    (ntp >> 16) as u32
}

/// What we report about the stream we receive.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reception {
    pub ssrc: u32,
    pub fraction_lost: u8,
    pub cumulative_lost: i32,
    pub extended_max: u32,
    pub jitter: u32,
}

/// What we say about the stream we send.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sending {
    pub packets: u32,
    pub octets: u32,
    /// The RTP timestamp that corresponds to the report's NTP time.
    pub rtp_time: u32,
}

/// What the peer's reports told us.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerView {
    /// RFC 3550 §6.4.1 round-trip time, from the last report block about our stream that named an SR of ours.
    pub rtt: Option<Duration>,
    /// The loss and jitter the peer reports for our stream.
    pub fraction_lost: u8,
    pub cumulative_lost: u32,
    pub jitter: u32,
    pub reports: u64,
    /// RTCP datagrams that did not parse.
    pub malformed: u64,
}

/// RTCP state of one call.
#[derive(Debug)]
pub struct Rtcp {
    ssrc: u32,
    cname: Bytes,
    /// The last SR received: its NTP middle bits and when it arrived (for LSR/DLSR in our report).
    last_sr: Option<(u32, Instant)>,
    peer: PeerView,
}

impl Rtcp {
    pub fn new(ssrc: u32, cname: &str) -> Rtcp {
        Rtcp { ssrc, cname: Bytes::copy_from_slice(cname.as_bytes()), last_sr: None, peer: PeerView::default() }
    }

    pub fn peer(&self) -> PeerView {
        self.peer
    }

    /// Our compound report: SR when `sending` is given (we sent RTP since the last report), else RR; then SDES
    /// with our CNAME (RFC 3550 §6.1).
    pub fn report(&self, now: Instant, now_ntp: u64, sending: Option<Sending>, reception: Option<Reception>) -> Bytes {
        let reports: Vec<ReceptionReport> = reception.map(|r| self.block(now, r)).into_iter().collect();
        let first: Box<dyn Packet> = match sending {
            Some(s) => Box::new(SenderReport {
                ssrc: self.ssrc,
                ntp_time: now_ntp,
                rtp_time: s.rtp_time,
                packet_count: s.packets,
                octet_count: s.octets,
                reports,
                ..SenderReport::default()
            }),
            None => Box::new(ReceiverReport { ssrc: self.ssrc, reports, ..ReceiverReport::default() }),
        };
        let sdes = SourceDescription {
            chunks: vec![SourceDescriptionChunk {
                source: self.ssrc,
                items: vec![SourceDescriptionItem { sdes_type: SdesType::SdesCname, text: self.cname.clone() }],
            }],
        };
        // Our own packets always marshal: their fields are in range by construction.
        rtc_rtcp::packet::marshal(&[first, Box::new(sdes)]).map(|b| b.freeze()).unwrap_or_default()
    }

    fn block(&self, now: Instant, r: Reception) -> ReceptionReport {
        let (lsr, dlsr) = match self.last_sr {
            Some((lsr, at)) => (lsr, (now.saturating_duration_since(at).as_micros() * 65_536 / 1_000_000) as u32),
            None => (0, 0),
        };
        ReceptionReport {
            ssrc: r.ssrc,
            fraction_lost: r.fraction_lost,
            // 24-bit signed field (RFC 3550 §6.4.1): clamp, then keep the low 24 bits.
            total_lost: (r.cumulative_lost.clamp(-0x80_0000, 0x7F_FFFF) as u32) & 0xFF_FFFF,
            last_sequence_number: r.extended_max,
            jitter: r.jitter,
            last_sender_report: lsr,
            delay: dlsr,
        }
    }

    /// Takes one RTCP datagram from the peer.
    pub fn on_packet(&mut self, now: Instant, now_ntp: u64, datagram: &[u8]) {
        let mut buf = Bytes::copy_from_slice(datagram);
        let Ok(packets) = rtc_rtcp::packet::unmarshal(&mut buf) else {
            self.peer.malformed += 1;
            return;
        };
        self.peer.reports += 1;
        for p in &packets {
            let any = p.as_any();
            if let Some(sr) = any.downcast_ref::<SenderReport>() {
                self.last_sr = Some((mid(sr.ntp_time), now));
                self.blocks(now_ntp, &sr.reports);
            } else if let Some(rr) = any.downcast_ref::<ReceiverReport>() {
                self.blocks(now_ntp, &rr.reports);
            }
        }
    }

    fn blocks(&mut self, now_ntp: u64, reports: &[ReceptionReport]) {
        for r in reports.iter().filter(|r| r.ssrc == self.ssrc) {
            self.peer.fraction_lost = r.fraction_lost;
            self.peer.cumulative_lost = r.total_lost;
            self.peer.jitter = r.jitter;
            if r.last_sender_report != 0 {
                // RFC 3550 §6.4.1: RTT = A - LSR - DLSR, in 1/65536 s, modulo 2^32.
                let rtt = mid(now_ntp).wrapping_sub(r.last_sender_report).wrapping_sub(r.delay);
                if rtt < 65_536 * 60 {
                    self.peer.rtt = Some(Duration::from_micros(u64::from(rtt) * 1_000_000 / 65_536));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ntp_time_counts_from_1900() {
        assert_eq!(ntp(UNIX_EPOCH), NTP_UNIX_OFFSET << 32);
        assert_eq!(ntp(UNIX_EPOCH + Duration::from_millis(500)), (NTP_UNIX_OFFSET << 32) | 0x8000_0000);
    }

    #[test]
    fn a_receiver_report_names_the_last_sender_report_and_the_delay_since() {
        let t0 = Instant::now();
        let mut us = Rtcp::new(1, "vocals@test");
        let peer = Rtcp::new(2, "peer");
        let base = ntp(SystemTime::now());
        let sr = peer.report(t0, base, Some(Sending { packets: 50, octets: 8000, rtp_time: 160 }), None);
        us.on_packet(t0, base, &sr);
        let later = t0 + Duration::from_millis(250);
        let rx = Reception { ssrc: 2, fraction_lost: 25, cumulative_lost: 3, extended_max: 70_000, jitter: 40 };
        let rr = us.report(later, base + (1 << 30), None, Some(rx));
        let parsed = rtc_rtcp::packet::unmarshal(&mut rr.clone()).unwrap();
        let rr = parsed[0].as_any().downcast_ref::<ReceiverReport>().unwrap();
        let block = &rr.reports[0];
        assert_eq!((block.ssrc, block.fraction_lost, block.total_lost, block.jitter), (2, 25, 3, 40));
        assert_eq!(block.last_sender_report, mid(base));
        assert_eq!(block.delay, 65_536 / 4, "250 ms in 1/65536 s");
        assert!(parsed[1].as_any().downcast_ref::<SourceDescription>().is_some(), "SDES CNAME follows");
    }

    #[test]
    fn round_trip_time_comes_from_a_report_about_our_stream() {
        let t0 = Instant::now();
        let mut us = Rtcp::new(7, "vocals");
        let mut peer = Rtcp::new(9, "peer");
        let base = ntp(SystemTime::now());
        // We send an SR at base; the peer holds it 100 ms and answers; it reaches us 40 ms after it left.
        let sr = us.report(t0, base, Some(Sending { packets: 1, octets: 160, rtp_time: 0 }), None);
        peer.on_packet(t0 + Duration::from_millis(20), base, &sr);
        let rx = Reception { ssrc: 7, fraction_lost: 0, cumulative_lost: 0, extended_max: 1, jitter: 2 };
        let rr = peer.report(t0 + Duration::from_millis(120), 0, None, Some(rx));
        let arrival = base + ((140u64 << 32) / 1000);
        us.on_packet(t0 + Duration::from_millis(140), arrival, &rr);
        let rtt = us.peer().rtt.unwrap();
        assert!(rtt.abs_diff(Duration::from_millis(40)) < Duration::from_millis(1), "{rtt:?}");
        assert_eq!(us.peer().jitter, 2);
    }

    #[test]
    fn garbage_is_counted_not_trusted() {
        let mut us = Rtcp::new(7, "vocals");
        us.on_packet(Instant::now(), 0, &[0x80, 200, 0, 50, 1, 2]);
        us.on_packet(Instant::now(), 0, &[]);
        assert_eq!(us.peer().malformed, 2);
        assert_eq!(us.peer().rtt, None);
    }
}
