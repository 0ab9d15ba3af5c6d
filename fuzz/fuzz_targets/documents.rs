//! Fuzzes the document dispatcher every file goes through (`parse_document`:
//! JSON and JSON Lines of every Azure shape, ARM templates, metrics, the
//! activity log, policy XML, YAML specifications, CSV), plain and gzipped.
//! It must never panic; every problem names the file; a gzip cut anywhere
//! keeps exactly the rows of the complete lines before the cut.
//!
//!     cargo +nightly fuzz run documents -- -max_total_time=60
#![no_main]

use apimedic::collect::parse_document;
use libfuzzer_sys::fuzz_target;
use std::io::{Read, Write};

fuzz_target!(|data: &[u8]| {
    let s = parse_document("fuzz.json", data);
    assert!(s.loaded.problems.iter().all(|p| p.origin.file == "fuzz.json"));
    assert!(s.loaded.rejected as usize >= s.loaded.problems.len());
    if data.starts_with(&[0x1f, 0x8b]) {
        return;
    }
    // The same bytes gzipped: the same rows.
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    let gz = e.finish().unwrap();
    let whole = parse_document("fuzz.json.gz", &gz);
    assert_eq!(whole.traffic.rows, s.traffic.rows, "gzip changes nothing");
    // Cut at a point the input picks: exactly what its decompressed prefix
    // gives (every complete row before the cut, nothing after).
    let cut = data.first().map_or(0, |&b| gz.len() * usize::from(b) / 256);
    let part = parse_document("fuzz.json.gz", &gz[..cut]);
    let mut prefix = Vec::new();
    let _ = flate2::read::MultiGzDecoder::new(&gz[..cut]).read_to_end(&mut prefix);
    assert!(data.starts_with(&prefix));
    if !prefix.starts_with(&[0x1f, 0x8b]) {
        let plain = parse_document("fuzz.json", &prefix);
        assert_eq!(part.traffic.rows, plain.traffic.rows);
    }
});
