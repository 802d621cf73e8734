//! The recording writer against real files in a temporary directory: formats, a writer that falls behind, what
//! a crash leaves, retention.

use std::time::{Duration, SystemTime};

use super::*;
use crate::media::playout::FRAME_BYTES;

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vocals-rec-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    d
}

/// A stereo frame: the caller a ramp of μ-law codes starting at `k`, the agent its complement.
fn frame(k: u8) -> StereoFrame {
    let mut f = StereoFrame::default();
    for i in 0..FRAME_BYTES {
        f.left[i] = k.wrapping_add(i as u8);
        f.right[i] = !f.left[i];
    }
    f
}

/// The call record writes the writer sent, waiting for the one that is not `recording`.
fn final_record(rx: &mut tokio::sync::mpsc::Receiver<CallWrite>) -> Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match rx.try_recv() {
            Ok(CallWrite::Recording { recording, .. }) if recording["status"] != "recording" => return recording,
            Ok(_) => {}
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Err(_) => panic!("no final recording record"),
        }
    }
}

#[test]
fn a_pcm_recording_has_both_parties_on_their_channels_and_its_record_says_so() {
    let d = dir("pcm");
    let (records, mut rx) = Recorder::channel(64);
    let recordings = Recordings::start(d.clone(), RecordFormat::Pcm16, Some(records), QUEUE).unwrap();
    let mut rec = recordings.open("vc_pcm").unwrap();
    for k in 0..100u8 {
        rec.frame(&frame(k));
    }
    rec.close();
    let record = final_record(&mut rx);
    assert_eq!(record["status"], "complete", "{record}");
    assert_eq!(record["duration"], 2.0);
    assert_eq!((record["channels"].as_u64(), record["format"].as_str()), (Some(2), Some("pcm16")));
    assert_eq!(record["url"], "/v1/calls/vc_pcm/recording");
    let file = d.join(record["file"].as_str().unwrap());
    assert!(file.to_string_lossy().ends_with("/vc_pcm.wav"), "{}", file.display());
    assert_eq!(record["bytes"].as_u64(), Some(fs::metadata(&file).unwrap().len()));
    // Private: the file 0600, its directories 0700.
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(fs::metadata(file.parent().unwrap()).unwrap().permissions().mode() & 0o777, 0o700);
    // The samples: left the caller, right the agent, decoded from μ-law, in order.
    let mut reader = hound::WavReader::open(&file).unwrap();
    let spec = reader.spec();
    assert_eq!((spec.channels, spec.sample_rate, spec.bits_per_sample), (2, 8000, 16));
    assert_eq!(reader.duration(), 100 * 160);
    let samples: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).collect();
    let f = frame(37);
    for i in 0..FRAME_BYTES {
        assert_eq!(samples[2 * (37 * 160 + i)], g711::ulaw_decode(f.left[i]));
        assert_eq!(samples[2 * (37 * 160 + i) + 1], g711::ulaw_decode(f.right[i]));
    }
    let _ = fs::remove_dir_all(&d);
}

#[test]
fn a_mulaw_recording_is_half_the_size_and_plays_as_format_7() {
    let d = dir("mulaw");
    let (records, mut rx) = Recorder::channel(64);
    let recordings = Recordings::start(d.clone(), RecordFormat::Mulaw, Some(records), QUEUE).unwrap();
    let mut rec = recordings.open("vc_mu").unwrap();
    for k in 0..50u8 {
        rec.frame(&frame(k));
    }
    rec.close();
    let record = final_record(&mut rx);
    assert_eq!((record["status"].as_str(), record["duration"].as_f64()), (Some("complete"), Some(1.0)));
    let bytes = fs::read(d.join(record["file"].as_str().unwrap())).unwrap();
    assert_eq!(bytes.len(), wav::MULAW_HEADER + 50 * 320);
    let layout = wav::layout(&bytes).unwrap();
    assert_eq!(u16::from_le_bytes([bytes[20], bytes[21]]), 7, "WAVE_FORMAT_MULAW");
    assert_eq!(u32::from_le_bytes(bytes[54..58].try_into().unwrap()), 50 * 320);
    // Interleaved: caller, agent, caller, agent …
    let f = frame(0);
    assert_eq!(&bytes[layout.data_start as usize..][..4], &[f.left[0], f.right[0], f.left[1], f.right[1]]);
    let _ = fs::remove_dir_all(&d);
}

#[test]
fn a_writer_that_falls_behind_drops_frames_counted_and_the_recording_says_incomplete() {
    let d = dir("slow");
    let (records, mut rx) = Recorder::channel(64);
    // A queue of 8 messages and a writer that has not yet run: the call's task must not wait for it.
    let (gate, wait) = std::sync::mpsc::channel();
    let recordings = Recordings::start_gated(d.clone(), RecordFormat::Pcm16, Some(records), 8, wait).unwrap();
    let mut rec = recordings.open("vc_slow").unwrap();
    let began = Instant::now();
    for k in 0..50u8 {
        rec.frame(&frame(k));
    }
    assert!(began.elapsed() < Duration::from_millis(100), "frames never wait for the writer");
    assert_eq!(rec.dropped(), 43, "7 frames fit beside the open");
    gate.send(()).unwrap();
    rec.close();
    let record = final_record(&mut rx);
    assert_eq!(record["status"], "incomplete", "{record}");
    assert_eq!((record["dropped_frames"].as_u64(), record["duration"].as_f64()), (Some(43), Some(0.14)));
    let _ = fs::remove_dir_all(&d);
}

#[test]
fn what_a_crash_leaves_is_repaired_at_the_next_start_to_a_playable_file() {
    let d = dir("crash");
    let day = d.join("2026/12/07");
    fs::create_dir_all(&day).unwrap();
    // A PCM recording cut mid-write: hound's header still says 0 bytes (as before its first flush), 1.5 s of
    // samples and half a sample frame after it.
    let mut bytes = std::io::Cursor::new(Vec::new());
    hound::WavWriter::new(&mut bytes, pcm_spec()).unwrap().finalize().unwrap();
    let mut pcm = bytes.into_inner();
    pcm.extend(std::iter::repeat_n(0x11u8, 75 * 640 + 2));
    fs::write(day.join("vc_cut.wav.part"), &pcm).unwrap();
    // And a μ-law one.
    let mut mu = wav::mulaw_header(0).to_vec();
    mu.extend(std::iter::repeat_n(0xFFu8, 25 * 320));
    fs::write(day.join("vc_mu.wav.part"), &mu).unwrap();
    let mut recovered = recover(&d);
    recovered.sort_by(|a, b| a.0.cmp(&b.0));
    let ids: Vec<&str> = recovered.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, ["vc_cut", "vc_mu"]);
    assert_eq!(recovered[0].1["duration"], 1.5);
    assert_eq!(recovered[0].1["status"], "incomplete");
    assert_eq!(recovered[0].1["file"], "2026/12/07/vc_cut.wav");
    assert_eq!(recovered[1].1["duration"], 0.5);
    let reader = hound::WavReader::open(day.join("vc_cut.wav")).unwrap();
    assert_eq!(reader.duration(), 75 * 160, "the right duration, the half frame cut");
    assert!(!day.join("vc_cut.wav.part").exists());
    assert!(recover(&d).is_empty(), "nothing left to repair");
    let _ = fs::remove_dir_all(&d);
}

#[test]
fn retention_deletes_recordings_older_than_its_days_and_their_empty_directories() {
    let d = dir("retention");
    for (day, id) in [("2026/10/01", "vc_old"), ("2026/12/06", "vc_new")] {
        fs::create_dir_all(d.join(day)).unwrap();
        fs::write(d.join(day).join(format!("{id}.wav")), b"RIFF").unwrap();
    }
    let now = SystemTime::now();
    let old = fs::File::options().write(true).open(d.join("2026/10/01/vc_old.wav")).unwrap();
    old.set_modified(now - Duration::from_secs(40 * 86_400)).unwrap();
    let deleted = sweep(&d, 30, now);
    assert_eq!(deleted, [("vc_old".to_string(), PathBuf::from("2026/10/01/vc_old.wav"))]);
    assert!(!d.join("2026/10").exists(), "its empty directories went too");
    assert!(d.join("2026/12/06/vc_new.wav").exists());
    assert!(sweep(&d, 30, now).is_empty());
    let _ = fs::remove_dir_all(&d);
}
