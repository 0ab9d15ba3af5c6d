//! Fuzzes what a model endpoint streams back: server-sent-event bytes cut
//! at any point decode to the same events as when whole (the decoder is
//! linear and bounded), and the events through the chunk assembler and the
//! text shaper never panic, never exceed the reply's token budget, and the
//! shown pieces add up to the shaped text.
//!
//!     cargo +nightly fuzz run stream_assembler -- -max_total_time=60
#![no_main]

use apimedic::llm::client::{CHARS_PER_TOKEN, SseDecoder, StreamAssembler};
use apimedic::llm::stream::Shaper;
use libfuzzer_sys::fuzz_target;

fn decode(pieces: &[&[u8]]) -> Result<Vec<String>, String> {
    let mut d = SseDecoder::default();
    let mut out = Vec::new();
    for p in pieces {
        d.feed(p, &mut out)?;
    }
    d.finish(&mut out);
    Ok(out)
}

fuzz_target!(|data: &[u8]| {
    let cut = usize::from(data.first().copied().unwrap_or(0));
    let body = data.get(1..).unwrap_or_default();
    let whole = decode(&[body]);
    let pieces: Vec<&[u8]> = body.chunks(cut.max(1)).collect();
    let split = decode(&pieces);
    assert_eq!(whole, split, "where the bytes were cut changed the events");
    let Ok(events) = whole else { return };
    let budget = 64;
    let mut asm = StreamAssembler::with_budget(budget);
    let mut shaper = Shaper::default();
    let restore = |t: &str| t.to_string();
    let mut shown = String::new();
    shaper.begin_step(false);
    for e in events {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&e) else {
            continue;
        };
        if let Ok(Some(delta)) = asm.push(&v) {
            shown.push_str(&shaper.push(&delta, &restore));
        }
        if asm.is_cut() {
            break;
        }
    }
    shown.push_str(&shaper.end_step(true, &restore));
    assert_eq!(shown, shaper.text(), "the pieces add up to the text");
    if let Ok(c) = asm.finish() {
        let text = c.content.as_deref().map_or(0, str::len);
        let args: usize = c.tool_calls.iter().map(|t| t.arguments.len()).sum();
        assert!(text + args <= budget * CHARS_PER_TOKEN + 2 * c.tool_calls.len());
    }
});
