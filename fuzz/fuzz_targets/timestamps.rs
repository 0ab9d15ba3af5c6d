//! Fuzzes the timestamp parser and the plausibility check every reader
//! applies: never a panic (no overflow on any digits), and every plausible
//! instant prints as RFC 3339 that parses back to the same instant.
//!
//!     cargo +nightly fuzz run timestamps -- -max_total_time=60
#![no_main]

use apimedic::model::{check_plausible, parse_timestamp};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(t) = parse_timestamp(text) {
        let printed = t.to_rfc3339();
        match check_plausible(t) {
            Ok(_) => assert_eq!(parse_timestamp(&printed), Some(t), "{text} -> {printed}"),
            Err(why) => assert!(why.starts_with(&printed), "{why}"),
        }
    }
});
