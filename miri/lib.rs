//! The Miri harness: the files of apimedic that hold `unsafe` code and
//! depend on nothing else in the crate, included as they are, with their own
//! unit tests, so `cargo +nightly miri test` checks every unsafe block in
//! them for undefined behaviour (out-of-bounds or misaligned reads, invalid
//! UTF-8 in a `str`, uninitialised memory).
//!
//! - the scanner's SSE2 passes (quotes, string ends, line split) and the
//!   `from_utf8_unchecked` of a line the split found ASCII.
//!
//! The other unsafe blocks call the OS (mmap, madvise, mallopt, poll,
//! sigaction, tcsetattr), which Miri cannot execute; the README's Tests
//! section says how those were checked.

#[path = "../src/collect/gateway_logs/scan/quotes.rs"]
pub mod quotes;
