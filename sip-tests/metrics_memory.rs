//! The process-wide metrics recorder does not keep histogram samples without bound when nothing scrapes
//! `/metrics`: some histograms take a sample per RTP packet, and the recorder holds each one until it is folded
//! into its buckets. Live heap bytes are counted by a global allocator while a million samples are recorded.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicI64, Ordering};

struct Live;

static LIVE: AtomicI64 = AtomicI64::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts the bytes live.
unsafe impl GlobalAlloc for Live {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as i64, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as i64, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as i64 - layout.size() as i64, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Live = Live;

#[test]
fn unscraped_histogram_samples_are_folded_not_kept() {
    let _handle = vocals::metrics::install().expect("the recorder installs");
    let histogram = metrics::histogram!(vocals::metrics::JITTER_HANDOFF);
    histogram.record(0.001);
    std::thread::sleep(vocals::metrics::UPKEEP * 2);
    let base = LIVE.load(Ordering::Relaxed);
    // 1,000,000 samples (one histogram's samples from 100 calls for 200 s): ~16 MB if they were all kept.
    for _ in 0..8 {
        for i in 0..125_000 {
            histogram.record(f64::from(i % 100) * 0.0001);
        }
        std::thread::sleep(vocals::metrics::UPKEEP * 2);
    }
    let after = LIVE.load(Ordering::Relaxed) - base;
    // Kept, they take ~16 MB. Folded, what stays is the last round's blocks (~2 MB), which the recorder frees
    // later (its buckets free through epochs).
    assert!(after < 6_000_000, "{after} bytes still live after 1,000,000 samples and the upkeep");
    // The counter does count.
    let probe = std::hint::black_box(vec![0u8; 4_000_000]);
    assert!(LIVE.load(Ordering::Relaxed) - base >= 4_000_000, "the counting allocator is not in use");
    drop(probe);
}
