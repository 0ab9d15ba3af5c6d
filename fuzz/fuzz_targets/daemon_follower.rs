//! Fuzzes the daemon's follower: bytes appended to a followed file in
//! pieces (long lines, NUL blocks, partial lines, truncation) must never
//! panic, never hand out a NUL or a partial line, never hold more than one
//! read window, and hand out each complete line at most once.
//!
//!     cargo +nightly fuzz run daemon_follower -- -max_total_time=60
#![no_main]

use apimedic::daemon::tail::{Follower, MAX_READ};
use libfuzzer_sys::fuzz_target;
use std::io::Write;

fuzz_target!(|data: &[u8]| {
    let path = std::env::temp_dir().join(format!("apimedic-fuzz-follow-{}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let Ok(mut file) = std::fs::File::create(&path) else {
        return;
    };
    let Ok(mut f) = Follower::open(path.clone(), None) else {
        return;
    };
    // The first byte picks where the input is cut into appends; a piece
    // that starts with 0xFF grows into a line longer than a read window.
    let step = usize::from(data.first().copied().unwrap_or(1)).max(1);
    let mut written: Vec<u8> = Vec::new();
    let mut handed = 0usize;
    for piece in data.get(1..).unwrap_or_default().chunks(step) {
        let bytes: Vec<u8> = if piece.first() == Some(&0xFF) {
            vec![b'x'; MAX_READ + piece.len()]
        } else {
            piece.to_vec()
        };
        if file.write_all(&bytes).is_err() {
            break;
        }
        written.extend_from_slice(&bytes);
        loop {
            let mut out = Vec::new();
            if f.poll(&mut out).is_err() {
                break;
            }
            if out.is_empty() {
                break;
            }
            for c in &out {
                assert!(!c.bytes.contains(&0), "a NUL was handed out");
                assert!(c.bytes.is_empty() || c.bytes.ends_with(b"\n"), "a partial line");
                handed += memchr_count(&c.bytes);
            }
        }
    }
    let lines = written.iter().filter(|b| **b == b'\n').count();
    assert!(handed <= lines, "{handed} lines handed out of {lines} written");
    let _ = std::fs::remove_file(&path);
});

fn memchr_count(b: &[u8]) -> usize {
    b.iter().filter(|x| **x == b'\n').count()
}
