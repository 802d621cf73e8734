//! Call recording, sans-IO: what is recorded and when ([`RecordMode`], decided per number, agent and server),
//! each call's [`Tape`] (both parties, frame by frame on its own 20 ms grid), and the WAV files'
//! headers ([`wav`]: μ-law written here, 16-bit PCM by `hound`, and either patched after a crash).
//!
//! The left channel is the caller as vocals received it: the jitter buffer's output, concealed frames as they
//! were played to the agent, so its timeline has no hole. The right channel is the agent as played out to the
//! caller: what each RTP packet carried (after `clear`, only what was actually sent), and silence when nothing
//! was sent (hold, no audio). Each send tick writes one stereo frame, the caller's latest frame beside it, so
//! the channels stay aligned on the 20 ms clock from the answer to the end, hold and silence included.
//! Nothing here allocates after the tape is made.

use super::playout::FRAME_BYTES;

/// Whether a call is recorded: `[recording] record`, an agent's `record`, a number's `record` (the number's
/// word is final: a number can forbid recording whatever its agent asks).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RecordMode {
    #[default]
    Off,
    /// Both parties, each on its own channel: the caller left, the agent right.
    Dual,
}

impl RecordMode {
    pub fn parse(text: &str) -> Option<RecordMode> {
        match text {
            "off" => Some(RecordMode::Off),
            "dual" => Some(RecordMode::Dual),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RecordMode::Off => "off",
            RecordMode::Dual => "dual",
        }
    }

    /// The mode of a call: the number's when it has one, else the agent's, else the server's.
    pub fn of_call(server: RecordMode, agent: Option<RecordMode>, number: Option<RecordMode>) -> RecordMode {
        number.or(agent).unwrap_or(server)
    }
}

/// How recordings are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RecordFormat {
    /// WAV, 16-bit linear PCM (`hound`): plays everywhere.
    #[default]
    Pcm16,
    /// WAV, G.711 μ-law (format 7): half the size, as it came off the wire.
    Mulaw,
}

impl RecordFormat {
    pub fn parse(text: &str) -> Option<RecordFormat> {
        match text {
            "pcm16" => Some(RecordFormat::Pcm16),
            "mulaw" => Some(RecordFormat::Mulaw),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RecordFormat::Pcm16 => "pcm16",
            RecordFormat::Mulaw => "mulaw",
        }
    }

    /// Bytes one second of a recording takes: 8000 stereo samples.
    pub fn bytes_per_second(self) -> u64 {
        match self {
            RecordFormat::Pcm16 => 8000 * 2 * 2,
            RecordFormat::Mulaw => 8000 * 2,
        }
    }
}

/// The μ-law code of silence (what the playout queue pads with).
pub const SILENCE: u8 = 0xFF;

/// One 20 ms stereo frame, μ-law: the caller (left) and what was played to the caller (right).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StereoFrame {
    pub left: [u8; FRAME_BYTES],
    pub right: [u8; FRAME_BYTES],
}

impl Default for StereoFrame {
    fn default() -> StereoFrame {
        StereoFrame { left: [SILENCE; FRAME_BYTES], right: [SILENCE; FRAME_BYTES] }
    }
}

/// Caller frames waiting for their slot: the jitter buffer pops on its own schedule, one a slot in the steady
/// state; a few more absorb its catching up.
const UPLINK_SLOTS: usize = 4;
/// Sent frames waiting for their slot: one when a talk spurt's re-phased first packet went out before its slot
/// opened (the send clock moved, the tape's did not), a few for safety.
const DOWNLINK_SLOTS: usize = 4;
/// Stereo frames waiting for the call's task to take them: a tick's worth and the catch-up of a late wake.
const OUT_SLOTS: usize = 16;

/// One frame sent to the caller, waiting for its slot on the tape.
#[derive(Clone, Copy, Debug)]
struct Sent {
    frame: [u8; FRAME_BYTES],
    /// Nothing went out this tick (hold, silence not sent): silence on the tape.
    none: bool,
    /// Agent audio, not padding: never dropped to realign.
    audio: bool,
}

/// One call's recording tap, inside its media session: fixed rings, so the media path allocates nothing.
///
/// The tape runs on its own 20 ms grid from the call's first send tick, slot `k` covering `[k·20, (k+1)·20)`
/// ms, and the session tells it how many slots have opened ([`Tape::advance`]). Each slot takes the caller's
/// oldest waiting frame and the oldest frame sent: the send clock may re-phase at a talk spurt's start (its
/// first packet goes out at once), which adds a send tick but no slot, so the tape keeps wall-clock time and
/// the caller's channel never slips. The extra frame waits one slot (its place off by under 20 ms), and the
/// next silence that finds a frame already waiting is dropped, which takes the wait out again.
#[derive(Debug)]
pub struct Tape {
    uplink: [[u8; FRAME_BYTES]; UPLINK_SLOTS],
    up_head: usize,
    up_len: usize,
    downlink: [Sent; DOWNLINK_SLOTS],
    down_head: usize,
    down_len: usize,
    out: [StereoFrame; OUT_SLOTS],
    out_head: usize,
    out_len: usize,
    /// Stereo frames made (20 ms each): the slots filled.
    pub frames: u64,
    /// Caller frames that found the uplink ring full (the oldest was overwritten), agent audio that found the
    /// downlink ring full, or stereo frames the task did not take in time: each a 20 ms misalignment or gap,
    /// counted.
    pub overruns: u64,
}

impl Default for Tape {
    fn default() -> Tape {
        Tape {
            uplink: [[SILENCE; FRAME_BYTES]; UPLINK_SLOTS],
            up_head: 0,
            up_len: 0,
            downlink: [Sent { frame: [SILENCE; FRAME_BYTES], none: true, audio: false }; DOWNLINK_SLOTS],
            down_head: 0,
            down_len: 0,
            out: [StereoFrame::default(); OUT_SLOTS],
            out_head: 0,
            out_len: 0,
            frames: 0,
            overruns: 0,
        }
    }
}

impl Tape {
    pub fn new() -> Box<Tape> {
        Box::default()
    }

    /// The caller's next 20 ms (μ-law), as the agent got it.
    pub fn uplink(&mut self, frame: &[u8; FRAME_BYTES]) {
        if self.up_len == UPLINK_SLOTS {
            self.up_head = (self.up_head + 1) % UPLINK_SLOTS;
            self.up_len -= 1;
            self.overruns += 1;
        }
        let tail = (self.up_head + self.up_len) % UPLINK_SLOTS;
        self.uplink[tail] = *frame;
        self.up_len += 1;
    }

    /// One send tick: `sent` is the frame the caller was sent (μ-law), `None` when nothing was sent; `audio`
    /// says it carried the agent's audio (not padding). It waits for its slot ([`Tape::advance`]).
    pub fn sent(&mut self, sent: Option<&[u8; FRAME_BYTES]>, audio: bool) {
        if self.down_len > 0 && !audio {
            let last = self.downlink[(self.down_head + self.down_len - 1) % DOWNLINK_SLOTS];
            if !last.audio {
                // A frame is already waiting and this one is silence after silence: dropping it realigns.
                return;
            }
        }
        if self.down_len == DOWNLINK_SLOTS {
            self.down_head = (self.down_head + 1) % DOWNLINK_SLOTS;
            self.down_len -= 1;
            self.overruns += 1;
        }
        let tail = (self.down_head + self.down_len) % DOWNLINK_SLOTS;
        self.downlink[tail] = match sent {
            Some(frame) => Sent { frame: *frame, none: false, audio },
            None => Sent { frame: [SILENCE; FRAME_BYTES], none: true, audio: false },
        };
        self.down_len += 1;
    }

    /// The slots opened so far (the tape's grid): fills each new one with the caller's oldest waiting frame
    /// and the oldest frame sent, silence where there is none (a stalled task's skipped ticks, the start).
    pub fn advance(&mut self, slots: u64) {
        while self.frames < slots {
            self.fill();
        }
    }

    /// A send tick on an unmoved clock: the frame sent, then its slot (what the tests drive).
    pub fn tick(&mut self, sent: Option<&[u8; FRAME_BYTES]>) {
        self.sent(sent, sent.is_some());
        self.advance(self.frames + 1);
    }

    fn fill(&mut self) {
        if self.out_len == OUT_SLOTS {
            self.out_head = (self.out_head + 1) % OUT_SLOTS;
            self.out_len -= 1;
            self.overruns += 1;
        }
        let tail = (self.out_head + self.out_len) % OUT_SLOTS;
        let slot = &mut self.out[tail];
        if self.up_len > 0 {
            slot.left = self.uplink[self.up_head];
            self.up_head = (self.up_head + 1) % UPLINK_SLOTS;
            self.up_len -= 1;
        } else {
            slot.left = [SILENCE; FRAME_BYTES];
        }
        if self.down_len > 0 {
            let sent = &self.downlink[self.down_head];
            slot.right = if sent.none { [SILENCE; FRAME_BYTES] } else { sent.frame };
            self.down_head = (self.down_head + 1) % DOWNLINK_SLOTS;
            self.down_len -= 1;
        } else {
            slot.right = [SILENCE; FRAME_BYTES];
        }
        self.out_len += 1;
        self.frames += 1;
    }

    /// The next stereo frame for the writer.
    pub fn poll(&mut self, out: &mut StereoFrame) -> bool {
        if self.out_len == 0 {
            return false;
        }
        *out = self.out[self.out_head];
        self.out_head = (self.out_head + 1) % OUT_SLOTS;
        self.out_len -= 1;
        true
    }
}

/// WAV files: the μ-law header vocals writes itself (`hound` writes only PCM and float), and the repair of a
/// file whose writer stopped mid-call (a crash): its sizes set from what is on disk.
///
/// No recording nears WAV's 4 GiB limit (32-bit sizes): at 8 kHz, 2 channels and 16 bits a second takes
/// 32,000 bytes, so the longest call vocals allows (`sip.max_call_duration`, at most 4 h = 14,400 s) takes
/// 460,800,000 bytes, under a ninth of 4,294,967,295.
pub mod wav {
    /// The μ-law header: RIFF, an 18-byte `fmt ` (format 7, 2 channels, 8000 Hz, 8 bits), a `fact` chunk (the
    /// sample frames, required for non-PCM data) and the `data` chunk's header.
    pub const MULAW_HEADER: usize = 58;

    /// A μ-law stereo header for `data_bytes` of samples.
    pub fn mulaw_header(data_bytes: u32) -> [u8; MULAW_HEADER] {
        let mut h = [0u8; MULAW_HEADER];
        h[0..4].copy_from_slice(b"RIFF");
        h[4..8].copy_from_slice(&(MULAW_HEADER as u32 - 8 + data_bytes).to_le_bytes());
        h[8..12].copy_from_slice(b"WAVE");
        h[12..16].copy_from_slice(b"fmt ");
        h[16..20].copy_from_slice(&18u32.to_le_bytes());
        h[20..22].copy_from_slice(&7u16.to_le_bytes()); // WAVE_FORMAT_MULAW
        h[22..24].copy_from_slice(&2u16.to_le_bytes()); // channels
        h[24..28].copy_from_slice(&8000u32.to_le_bytes()); // sample rate
        h[28..32].copy_from_slice(&16000u32.to_le_bytes()); // bytes a second
        h[32..34].copy_from_slice(&2u16.to_le_bytes()); // block align
        h[34..36].copy_from_slice(&8u16.to_le_bytes()); // bits a sample
        h[36..38].copy_from_slice(&0u16.to_le_bytes()); // no extension
        h[38..42].copy_from_slice(b"fact");
        h[42..46].copy_from_slice(&4u32.to_le_bytes());
        h[46..50].copy_from_slice(&(data_bytes / 2).to_le_bytes());
        h[50..54].copy_from_slice(b"data");
        h[54..58].copy_from_slice(&data_bytes.to_le_bytes());
        h
    }

    /// Where a WAV file's sizes are, and its block size: read from its header.
    #[derive(Debug, PartialEq, Eq)]
    pub struct Layout {
        /// The `data` chunk's first byte.
        pub data_start: u64,
        /// The `data` size field's offset, and the `fact` sample count's (if any).
        pub data_size_at: u64,
        pub fact_at: Option<u64>,
        pub block_align: u16,
    }

    /// Reads a WAV header (the first bytes of the file, at least up to the `data` chunk's header).
    pub fn layout(head: &[u8]) -> Option<Layout> {
        if head.len() < 12 || &head[0..4] != b"RIFF" || &head[8..12] != b"WAVE" {
            return None;
        }
        let (mut at, mut block_align, mut fact_at) = (12usize, None, None);
        while at + 8 <= head.len() {
            let id = &head[at..at + 4];
            let size = u32::from_le_bytes(head[at + 4..at + 8].try_into().ok()?) as usize;
            match id {
                b"fmt " if at + 8 + 14 <= head.len() => {
                    block_align = Some(u16::from_le_bytes(head[at + 20..at + 22].try_into().ok()?));
                }
                b"fact" => fact_at = Some(at as u64 + 8),
                b"data" => {
                    return Some(Layout {
                        data_start: at as u64 + 8,
                        data_size_at: at as u64 + 4,
                        fact_at,
                        block_align: block_align.filter(|b| *b > 0)?,
                    });
                }
                _ => {}
            }
            at += 8 + size + (size & 1);
        }
        None
    }

    /// The patches that make a file of `file_len` bytes with this layout whole: (offset, little-endian u32)
    /// for RIFF's size, `data`'s and `fact`'s; and the length to cut the file to (whole sample frames).
    pub fn repair(layout: &Layout, file_len: u64) -> (Vec<(u64, u32)>, u64) {
        let data = file_len.saturating_sub(layout.data_start);
        let data = (data - data % u64::from(layout.block_align)).min(u64::from(u32::MAX) - layout.data_start);
        let len = layout.data_start + data;
        let mut patches = vec![(4, (len - 8) as u32), (layout.data_size_at, data as u32)];
        if let Some(at) = layout.fact_at {
            patches.push((at, (data / u64::from(layout.block_align)) as u32));
        }
        (patches, len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(b: u8) -> [u8; FRAME_BYTES] {
        [b; FRAME_BYTES]
    }

    #[test]
    fn the_number_decides_then_the_agent_then_the_server() {
        use RecordMode::*;
        assert_eq!(RecordMode::of_call(Off, None, None), Off);
        assert_eq!(RecordMode::of_call(Dual, None, None), Dual);
        assert_eq!(RecordMode::of_call(Off, Some(Dual), None), Dual);
        assert_eq!(RecordMode::of_call(Dual, Some(Dual), Some(Off)), Off, "a number can forbid recording");
        assert_eq!(RecordMode::of_call(Off, Some(Off), Some(Dual)), Dual);
        assert_eq!(RecordMode::parse("dual"), Some(Dual));
        assert_eq!(RecordMode::parse("stereo"), None);
    }

    #[test]
    fn each_tick_pairs_the_callers_oldest_frame_with_what_was_sent_and_silence_fills_the_gaps() {
        let mut tape = Tape::new();
        let mut out = StereoFrame::default();
        // Nothing from the caller yet, nothing sent: silence both sides, and the clock still runs.
        tape.tick(None);
        assert!(tape.poll(&mut out));
        assert_eq!(out, StereoFrame::default());
        // The caller speaks (1, 2), the agent plays 9 then nothing (hold): one frame a tick, in order.
        tape.uplink(&frame(1));
        tape.uplink(&frame(2));
        tape.tick(Some(&frame(9)));
        tape.tick(None);
        tape.tick(None);
        let mut got = Vec::new();
        while tape.poll(&mut out) {
            got.push((out.left[0], out.right[0]));
        }
        assert_eq!(got, [(1, 9), (2, SILENCE), (SILENCE, SILENCE)]);
        assert_eq!((tape.frames, tape.overruns), (4, 0));
        // A burst from the jitter buffer past the ring: the oldest gives way, counted.
        for b in 10..16 {
            tape.uplink(&frame(b));
        }
        tape.tick(None);
        assert!(tape.poll(&mut out));
        assert_eq!((out.left[0], tape.overruns), (12, 2));
    }

    #[test]
    fn a_mulaw_header_reads_back_and_a_cut_file_is_repaired_to_whole_frames() {
        let head = wav::mulaw_header(0);
        let layout = wav::layout(&head).unwrap();
        assert_eq!(layout, wav::Layout { data_start: 58, data_size_at: 54, fact_at: Some(46), block_align: 2 });
        // A crash left 1001 bytes of samples (half a stereo frame at the end) under a header saying 0.
        let (patches, len) = wav::repair(&layout, 58 + 1001);
        assert_eq!(len, 58 + 1000);
        assert_eq!(patches, [(4, 1050), (54, 1000), (46, 500)]);
        assert!(wav::layout(b"RIFF\0\0\0\0WAVEjunk").is_none());
        // hound's PCM header: 44 bytes, block align 4.
        let mut bytes = std::io::Cursor::new(Vec::new());
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        hound::WavWriter::new(&mut bytes, spec).unwrap().finalize().unwrap();
        let layout = wav::layout(bytes.get_ref()).unwrap();
        assert_eq!((layout.data_start, layout.block_align, layout.fact_at), (44, 4, None));
    }
}
