//! Fuzzes the memory-mapped NDJSON reader (the default for a log file on
//! disk): the input, repeated to span several pages, is written to a file,
//! mapped and read with `parse_map`, which hands each folded chunk's whole
//! pages back to the kernel (the `unsafe` MADV_DONTNEED in
//! `collect/gateway_logs/stream.rs`). Under AddressSanitizer this is the
//! sanitizer pass over that block. The mapped read must load exactly what
//! the in-memory read of the same bytes loads.
//!
//!     cargo +nightly fuzz run mapped -- -max_total_time=120
#![no_main]

use apimedic::collect::gateway_logs::{LineFormat, parse_map, parse_ndjson};
use apimedic::model::{InputKind, LoadReport, Traffic};
use libfuzzer_sys::fuzz_target;
use std::io::Write;

/// Enough bytes for whole pages inside the chunk, so pages are released.
const AT_LEAST: usize = 4 * 4096;

fuzz_target!(|data: &[u8]| {
    let mut bytes = Vec::with_capacity(AT_LEAST + data.len() + 1);
    loop {
        bytes.extend_from_slice(data);
        bytes.push(b'\n');
        if bytes.len() >= AT_LEAST {
            break;
        }
    }
    let path = std::env::temp_dir().join(format!("apimedic-fuzz-mapped-{}", std::process::id()));
    {
        let mut f = std::fs::File::create(&path).expect("temp file");
        f.write_all(&bytes).expect("write");
    }
    let file = std::fs::File::open(&path).expect("reopen");
    // SAFETY: the file is private to this process and not changed while mapped.
    let map = unsafe { memmap2::Mmap::map(&file) }.expect("map");
    let mut mapped = Traffic::default();
    let mut mr = LoadReport::default();
    parse_map(LineFormat::Ndjson, "fuzz", &map, &mut mapped, &mut mr);
    drop(map);
    let _ = std::fs::remove_file(&path);

    let mut t = Traffic::default();
    let mut r = LoadReport::default();
    parse_ndjson("fuzz", &bytes, &mut t, &mut r);
    let accepted = |r: &LoadReport| r.counts.get(&InputKind::GatewayLogs).copied().unwrap_or(0);
    assert_eq!(
        (mapped.rows, accepted(&mr), mr.rejected),
        (t.rows, accepted(&r), r.rejected),
        "the mapped read differs from the in-memory read"
    );
});
