//! Fuzzes input framing: recognising content from a prefix (archives,
//! compressors, binary data, UTF-16 without a BOM), and the guard that turns
//! a failing or cut-short gzip stream into a clean end. Never a panic; the
//! guard yields a prefix of the real content and never more than the
//! decompression-ratio cap allows past its floor.
//!
//!     cargo +nightly fuzz run framing -- -max_total_time=60
#![no_main]

use apimedic::collect::input::{Counted, Guard, MAX_RATIO, RATIO_FROM, refuse, utf16_without_bom};
use libfuzzer_sys::fuzz_target;
use std::io::Read;

fuzz_target!(|data: &[u8]| {
    // UTF-16 text is never refused as binary for its NULs (an archive or
    // compressor magic before it still names what the file is).
    let refused = refuse(data);
    if let Some(le) = utf16_without_bom(data) {
        assert!(
            !refused.is_some_and(|why| why.starts_with("binary content")),
            "UTF-16 text refused as binary (le {le})"
        );
    }
    // Any bytes as a gzip stream: ends cleanly, whatever they are.
    let (counted, n) = Counted::new(data);
    let (mut g, seen) = Guard::new(flate2::read::MultiGzDecoder::new(counted), Some(n));
    let mut out = Vec::new();
    g.read_to_end(&mut out).unwrap();
    assert_eq!(seen.bytes(), out.len() as u64);
    let cap = RATIO_FROM.max(data.len() as u64 * MAX_RATIO) + (1 << 16);
    assert!((out.len() as u64) <= cap, "{} > {cap}", out.len());
});
