//! SRTP and SRTCP for one call (RFC 3711), keyed by SDES (RFC 4568): the peer's key decrypts and checks what
//! arrives, ours protects what we send. Replay protection on both (a 128-packet window). Authentication
//! failures and replays are refused, never passed on; the caller counts them. Hostile traffic cannot grow
//! the state: SSRCs that never authenticated are tried a bounded number of times, then refused unread.
//! Sans-IO: the key comes from the caller ([`fresh_key`] is the one place keys are made, from the OS).

use rtc_rtp::header::Header;
use rtc_shared::marshal::{MarshalSize, Unmarshal};
use rtc_srtp::context::Context;
use rtc_srtp::crypto::providers::RingCrypto;
use rtc_srtp::option::{srtcp_replay_protection, srtp_replay_protection};
use rtc_srtp::protection_profile::ProtectionProfile;

use crate::sdp::SrtpKeys;
use crate::sdp::sdes::{KEY_SALT_LEN, KeySalt, Suite};

/// Packets of the replay window (RFC 3711 §3.3.2 asks at least 64).
const REPLAY_WINDOW: usize = 128;
/// SSRCs that may authenticate in one call (a peer changing streams now and then).
const MAX_SOURCES: usize = 8;
/// SSRCs tried without ever authenticating before unknown SSRCs are refused unread.
const MAX_STRANGERS: usize = 32;

/// Why a packet was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SrtpError {
    #[error("SRTP authentication failed")]
    Auth,
    #[error("SRTP replay")]
    Replay,
    #[error("SRTP packet from an unknown source refused unread")]
    Stranger,
    #[error("too short or malformed for SRTP")]
    Malformed,
}

/// One call's SRTP state, both directions.
pub struct Srtp {
    keys: SrtpKeys,
    inbound: Context,
    outbound: Context,
    known: Vec<u32>,
    strangers: Vec<u32>,
}

impl Srtp {
    pub fn new(keys: SrtpKeys) -> Srtp {
        Srtp {
            keys,
            inbound: context(keys.suite, &keys.remote, true),
            outbound: context(keys.suite, &keys.local, false),
            known: Vec::with_capacity(MAX_SOURCES),
            strangers: Vec::new(),
        }
    }

    pub fn keys(&self) -> &SrtpKeys {
        &self.keys
    }

    /// New keys from a new offer or answer. Each direction whose key (or the suite) changed starts a new
    /// context; the other keeps its own, rollover counter and replay window included (our sequence numbers
    /// run on across a re-INVITE, so our rollover counter must too).
    pub fn rekey(&mut self, keys: SrtpKeys) {
        let suite_changed = keys.suite != self.keys.suite;
        if suite_changed || keys.remote != self.keys.remote {
            self.inbound = context(keys.suite, &keys.remote, true);
            self.known.clear();
            self.strangers.clear();
        }
        if suite_changed || keys.local != self.keys.local {
            self.outbound = context(keys.suite, &keys.local, false);
        }
        self.keys = keys;
    }

    /// Decrypts and authenticates an SRTP packet into `out`; returns the plain RTP packet's length.
    pub fn unprotect_rtp(&mut self, packet: &[u8], out: &mut [u8]) -> Result<usize, SrtpError> {
        self.unprotect(packet, 8, Context::decrypt_rtp, out)
    }

    /// Decrypts and authenticates an SRTCP packet into `out`; returns the plain RTCP packet's length.
    pub fn unprotect_rtcp(&mut self, packet: &[u8], out: &mut [u8]) -> Result<usize, SrtpError> {
        self.unprotect(packet, 4, Context::decrypt_rtcp, out)
    }

    /// Admits the packet's SSRC (read at `ssrc_offset`), decrypts it with the inbound context, and keeps
    /// count of which SSRCs authenticate.
    fn unprotect(
        &mut self,
        packet: &[u8],
        ssrc_offset: usize,
        decrypt: fn(&mut Context, &[u8]) -> rtc_shared::error::Result<bytes::BytesMut>,
        out: &mut [u8],
    ) -> Result<usize, SrtpError> {
        let ssrc = ssrc_at(packet, ssrc_offset)?;
        self.admit(ssrc)?;
        match decrypt(&mut self.inbound, packet) {
            Ok(plain) => self.accepted(ssrc, &plain, out),
            Err(e) => Err(self.refused(ssrc, &e)),
        }
    }

    /// Protects the plain RTP packet in `buf[..len]` in place; returns the SRTP packet's length. A header
    /// whose own size (CSRCs, extension) overruns the packet is refused, not handed to the cipher (which
    /// would index past it: found by the `srtp` fuzz target).
    pub fn protect_rtp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        let plain = buf.get(..len).ok_or(SrtpError::Malformed)?;
        let header = Header::unmarshal(&mut &plain[..]).map_err(|_| SrtpError::Malformed)?;
        if header.marshal_size() > len {
            return Err(SrtpError::Malformed);
        }
        let protected = self.outbound.encrypt_rtp_with_header(plain, &header).map_err(|_| SrtpError::Malformed)?;
        copy_into(&protected, buf)
    }

    /// Protects the plain RTCP packet in `buf[..len]` in place; returns the SRTCP packet's length.
    pub fn protect_rtcp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        let protected = self.outbound.encrypt_rtcp(&buf[..len]).map_err(|_| SrtpError::Malformed)?;
        copy_into(&protected, buf)
    }

    fn admit(&self, ssrc: u32) -> Result<(), SrtpError> {
        let known = self.known.contains(&ssrc) || self.strangers.contains(&ssrc);
        if !known && (self.strangers.len() >= MAX_STRANGERS || self.known.len() >= MAX_SOURCES) {
            return Err(SrtpError::Stranger);
        }
        Ok(())
    }

    fn accepted(&mut self, ssrc: u32, plain: &[u8], out: &mut [u8]) -> Result<usize, SrtpError> {
        if !self.known.contains(&ssrc) {
            self.strangers.retain(|s| *s != ssrc);
            self.known.push(ssrc);
        }
        copy_into(plain, out)
    }

    fn refused(&mut self, ssrc: u32, e: &rtc_shared::error::Error) -> SrtpError {
        use rtc_shared::error::Error as E;
        if !self.known.contains(&ssrc) && !self.strangers.contains(&ssrc) {
            self.strangers.push(ssrc);
        }
        match e {
            E::SrtpSsrcDuplicated(..) | E::SrtcpSsrcDuplicated(..) | E::ErrDuplicated => SrtpError::Replay,
            E::ErrFailedToVerifyAuthTag | E::RtpFailedToVerifyAuthTag | E::RtcpFailedToVerifyAuthTag => SrtpError::Auth,
            _ => SrtpError::Malformed,
        }
    }
}

/// A fresh master key and salt from the operating system's CSPRNG, for our side of an SRTP stream.
/// 64 bits from the OS CSPRNG (for what must not be guessed: the next call's RTP port).
pub fn os_random_u64() -> u64 {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 8];
    ring::rand::SystemRandom::new().fill(&mut bytes).expect("the OS random number generator");
    u64::from_le_bytes(bytes)
}

pub fn fresh_key() -> KeySalt {
    use ring::rand::SecureRandom;
    let mut key = [0u8; KEY_SALT_LEN];
    // The OS CSPRNG (getrandom) does not fail on any supported system; a failure is unrecoverable.
    ring::rand::SystemRandom::new().fill(&mut key).expect("the OS random number generator");
    KeySalt(key)
}

fn context(suite: Suite, key: &KeySalt, inbound: bool) -> Context {
    let profile = match suite {
        Suite::AesCm128HmacSha1_80 => ProtectionProfile::Aes128CmHmacSha1_80,
        Suite::AesCm128HmacSha1_32 => ProtectionProfile::Aes128CmHmacSha1_32,
    };
    let (rtp, rtcp) = if inbound {
        (Some(srtp_replay_protection(REPLAY_WINDOW)), Some(srtcp_replay_protection(REPLAY_WINDOW)))
    } else {
        (None, None)
    };
    // Key and salt lengths are fixed by the type (16 + 14, what both suites take) and ring provides AES-CM
    // and HMAC-SHA1: construction cannot fail.
    Context::new(key.key(), key.salt(), profile, rtp, rtcp, &RingCrypto).expect("an AES_CM_128 SRTP context")
}

fn ssrc_at(packet: &[u8], at: usize) -> Result<u32, SrtpError> {
    let b = packet.get(at..at + 4).ok_or(SrtpError::Malformed)?;
    Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

fn copy_into(src: &[u8], out: &mut [u8]) -> Result<usize, SrtpError> {
    let dst = out.get_mut(..src.len()).ok_or(SrtpError::Malformed)?;
    dst.copy_from_slice(src);
    Ok(src.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::rtp::{RtpPacket, build};

    fn keys(suite: Suite) -> (SrtpKeys, SrtpKeys) {
        let (a, b) = (KeySalt([1; KEY_SALT_LEN]), KeySalt([2; KEY_SALT_LEN]));
        // Each side's remote key is the other's local one.
        (SrtpKeys { suite, tag: 1, remote: b, local: a }, SrtpKeys { suite, tag: 1, remote: a, local: b })
    }

    fn packet(seq: u16, ssrc: u32, buf: &mut [u8]) -> usize {
        let payload = [seq as u8; 160];
        let p =
            RtpPacket { marker: false, payload_type: 0, seq, timestamp: u32::from(seq) * 160, ssrc, payload: &payload };
        build(&p, buf).unwrap()
    }

    #[test]
    fn what_one_side_protects_the_other_unprotects_exactly_for_both_suites() {
        for (suite, tag) in [(Suite::AesCm128HmacSha1_80, 10), (Suite::AesCm128HmacSha1_32, 4)] {
            let (ours, theirs) = keys(suite);
            let (mut us, mut them) = (Srtp::new(ours), Srtp::new(theirs));
            for seq in 0..100u16 {
                let mut buf = [0u8; 1500];
                let plain_len = packet(seq, 0xAB, &mut buf);
                let plain = buf[..plain_len].to_vec();
                let n = us.protect_rtp(&mut buf, plain_len).unwrap();
                assert_eq!(n, plain_len + tag, "{suite:?}");
                assert_ne!(&buf[12..plain_len], &plain[12..], "the payload is encrypted");
                let mut out = [0u8; 1500];
                let m = them.unprotect_rtp(&buf[..n], &mut out).unwrap();
                assert_eq!(&out[..m], plain.as_slice());
            }
        }
    }

    #[test]
    fn tampered_replayed_and_wrongly_keyed_packets_are_refused() {
        let (ours, theirs) = keys(Suite::AesCm128HmacSha1_80);
        let (mut us, mut them) = (Srtp::new(ours), Srtp::new(theirs));
        let mut out = [0u8; 1500];
        let mut buf = [0u8; 1500];
        let len = packet(1, 7, &mut buf);
        let n = us.protect_rtp(&mut buf, len).unwrap();
        let good = buf[..n].to_vec();
        let mut tampered = good.clone();
        tampered[20] ^= 1;
        assert_eq!(them.unprotect_rtp(&tampered, &mut out), Err(SrtpError::Auth));
        assert!(them.unprotect_rtp(&good, &mut out).is_ok());
        assert_eq!(them.unprotect_rtp(&good, &mut out), Err(SrtpError::Replay));
        // Our own key is not theirs: a packet we protected does not pass our own inbound check.
        let mut ours_again = Srtp::new(ours);
        let len = packet(2, 7, &mut buf);
        let n = ours_again.protect_rtp(&mut buf, len).unwrap();
        assert_eq!(us.unprotect_rtp(&buf[..n], &mut out), Err(SrtpError::Auth));
        assert_eq!(them.unprotect_rtp(&[0x80, 0, 0], &mut out), Err(SrtpError::Malformed));
    }

    #[test]
    fn srtcp_round_trips_and_is_authenticated() {
        let (ours, theirs) = keys(Suite::AesCm128HmacSha1_80);
        let (mut us, mut them) = (Srtp::new(ours), Srtp::new(theirs));
        // An RTCP receiver report with no report blocks: V=2, PT=201, length 1, SSRC.
        let rr = [0x80, 201, 0, 1, 0, 0, 0, 0xAB];
        let mut buf = [0u8; 1500];
        buf[..rr.len()].copy_from_slice(&rr);
        let n = us.protect_rtcp(&mut buf, rr.len()).unwrap();
        assert_eq!(n, rr.len() + 4 + 10, "E-flag and index, then the 80-bit tag");
        let mut out = [0u8; 1500];
        let mut tampered = buf[..n].to_vec();
        tampered[n - 1] ^= 0x40;
        assert_eq!(them.unprotect_rtcp(&tampered, &mut out), Err(SrtpError::Auth));
        let m = them.unprotect_rtcp(&buf[..n], &mut out).unwrap();
        assert_eq!(&out[..m], &rr);
    }

    #[test]
    fn a_flood_of_random_ssrcs_is_refused_unread_once_the_bound_is_reached() {
        let (_, theirs) = keys(Suite::AesCm128HmacSha1_80);
        let mut them = Srtp::new(theirs);
        let mut out = [0u8; 1500];
        let mut buf = [0u8; 1500];
        let mut refusals = Vec::new();
        for ssrc in 0..1000u32 {
            let len = packet(1, ssrc, &mut buf);
            refusals.push(them.unprotect_rtp(&buf[..len + 10], &mut out).unwrap_err());
        }
        assert!(refusals[..MAX_STRANGERS].iter().all(|e| *e == SrtpError::Auth));
        assert!(refusals[MAX_STRANGERS..].iter().all(|e| *e == SrtpError::Stranger));
        assert_eq!(them.strangers.len(), MAX_STRANGERS);
    }

    #[test]
    fn a_header_overrunning_its_packet_is_refused_not_encrypted() {
        // The srtp fuzz target's first crash: V=2, X=1, CC=2, an extension whose length runs past the end.
        let input: [u8; 151] = [
            146, 139, 255, 44, 24, 0, 0, 0, 0, 0, 0, 0, 0, 254, 255, 255, 43, 255, 0, 0, 16, 0, 0, 19, 19, 19, 19, 19,
            19, 19, 19, 19, 19, 19, 19, 19, 19, 19, 19, 246, 255, 255, 2, 19, 19, 19, 102, 19, 19, 19, 19, 19, 19, 19,
            19, 19, 19, 19, 19, 19, 19, 19, 19, 19, 19, 19, 19, 19, 19, 19, 19, 19, 19, 19, 19, 19, 19, 19, 19, 19, 19,
            19, 19, 19, 19, 19, 19, 19, 19, 19, 19, 19, 19, 19, 19, 19, 19, 19, 4, 246, 0, 172, 172, 0, 254, 128, 0, 0,
            0, 26, 0, 0, 0, 172, 172, 172, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 172, 172, 8, 0, 0, 0, 253, 19, 19, 19, 19,
            19, 19, 19, 19, 19, 19, 19, 19, 19, 19, 19, 19, 19, 183,
        ];
        let (ours, _) = keys(Suite::AesCm128HmacSha1_80);
        let mut us = Srtp::new(ours);
        let mut buf = [0u8; 2048];
        buf[..input.len()].copy_from_slice(&input);
        assert_eq!(us.protect_rtp(&mut buf, input.len()), Err(SrtpError::Malformed));
        assert_eq!(us.protect_rtp(&mut buf, 4), Err(SrtpError::Malformed));
        assert_eq!(us.protect_rtp(&mut buf, 4096), Err(SrtpError::Malformed));
    }

    #[test]
    fn a_new_remote_key_leaves_our_outbound_context_and_its_rollover_counter_alone() {
        let (ours, theirs) = keys(Suite::AesCm128HmacSha1_80);
        let (mut us, mut them) = (Srtp::new(ours), Srtp::new(theirs));
        let mut buf = [0u8; 1500];
        let mut out = [0u8; 1500];
        // Our sequence numbers wrap (the rollover counter becomes 1) before the peer re-keys its side.
        for seq in [65534u16, 65535, 0, 1] {
            let n = packet(seq, 9, &mut buf);
            let n = us.protect_rtp(&mut buf, n).unwrap();
            them.unprotect_rtp(&buf[..n], &mut out).unwrap();
        }
        let fresh = KeySalt([8; KEY_SALT_LEN]);
        us.rekey(SrtpKeys { remote: fresh, ..ours });
        let n = packet(2, 9, &mut buf);
        let n = us.protect_rtp(&mut buf, n).unwrap();
        assert!(them.unprotect_rtp(&buf[..n], &mut out).is_ok(), "the peer still reads us: same key, same counter");
        // Their new key is what we now read them with.
        let mut them_rekeyed = Srtp::new(SrtpKeys { local: fresh, ..theirs });
        let n = packet(7, 11, &mut buf);
        let n = them_rekeyed.protect_rtp(&mut buf, n).unwrap();
        assert!(us.unprotect_rtp(&buf[..n], &mut out).is_ok());
    }

    #[test]
    fn fresh_keys_differ() {
        assert_ne!(fresh_key(), fresh_key());
    }
}
