//! Fuzzes the policy XML reader (`parse_policy`) and the file-level check
//! (`is_policy_xml`): never a panic on any text, entity bomb or deep nesting.
//!
//!     cargo +nightly fuzz run policy_xml -- -max_total_time=60
#![no_main]

use apimedic::analyze::policy::reader::parse_policy;
use apimedic::collect::policy_files::is_policy_xml;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse_policy(text);
    let _ = is_policy_xml("apis/a/policy.xml", text);
});
