//! The scanner's first pass over a line: where its quotes are, and whether
//! it holds any backslash, 64 bytes at a time (SSE2 on
//! x86_64, a portable loop elsewhere); the search for a string's end the
//! template walk uses (over a line, or straight over a chunk's bytes,
//! where it also stops at newlines and non-ASCII bytes); and the split of a
//! chunk into lines, which checks each line for non-ASCII bytes in the same
//! pass. This file holds the scanner's
//! `unsafe` code and depends on nothing else in the crate, so the Miri
//! harness (`miri/`) runs it as it is, against a byte-by-byte reference.

/// What [`mark`] found in a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Marks {
    /// Quote positions written to the front of the buffer.
    pub count: usize,
    pub backslash: bool,
}

/// Lists the line's quote positions at the front of `quotes` (grown as
/// needed; slots past `count` hold junk) and says whether the line has any
/// backslash. `None` for a line of 4 GiB or more.
pub fn mark(quotes: &mut Vec<u32>, line: &[u8]) -> Option<Marks> {
    u32::try_from(line.len()).ok()?;
    let need = line.len() + 64;
    if quotes.len() < need {
        quotes.resize(need, 0);
    }
    let mut n = 0usize;
    let mut backslash = 0u64;
    let mut blocks = line.chunks_exact(64);
    let mut base = 0u32;
    for block in &mut blocks {
        let mut b = [0u8; 64];
        b.copy_from_slice(block);
        let (q, s, _) = masks64(&b);
        n = write_positions(quotes, n, base, q)?;
        backslash |= s;
        base = base.wrapping_add(64);
    }
    let rest = blocks.remainder();
    if !rest.is_empty() {
        // Spaces mark nothing.
        let mut b = [b' '; 64];
        if let Some(dst) = b.get_mut(..rest.len()) {
            dst.copy_from_slice(rest);
        }
        let (q, s, _) = masks64(&b);
        n = write_positions(quotes, n, base, q)?;
        backslash |= s;
    }
    Some(Marks {
        count: n,
        backslash: backslash != 0,
    })
}

/// Writes the positions of `mask`'s bits after `n` positions, eight per
/// step whatever the count (fewer mispredicted loop exits than one per
/// bit, and no popcount, which baseline x86_64 lacks); slots past the real
/// count get junk that is never read. The new count, or `None` if `out` is
/// too short (it is sized so it never is).
#[inline(always)]
fn write_positions(out: &mut [u32], mut n: usize, base: u32, mut mask: u64) -> Option<usize> {
    while mask != 0 {
        let slots = out.get_mut(n..n + 8)?;
        let mut written = 0;
        for slot in slots {
            *slot = base.wrapping_add(mask.trailing_zeros());
            written += usize::from(mask != 0);
            mask &= mask.wrapping_sub(1);
        }
        n += written;
    }
    Some(n)
}

/// Splits the first line off `data`: the line (without its `\n`), the same
/// line as text when it is all ASCII (checked in the same pass, so an ASCII
/// line needs no UTF-8 validation after), and what follows the `\n`. Sixteen
/// bytes at a time (SSE2 on x86_64) while sixteen remain.
#[inline]
pub fn next_line(data: &[u8]) -> (&[u8], Option<&str>, &[u8]) {
    let (end, ascii) = line_end(data);
    let line = data.get(..end).unwrap_or(data);
    let rest = data.get(end + 1..).unwrap_or_default();
    let text = if ascii {
        debug_assert!(line.is_ascii());
        // SAFETY: `line_end` found no byte >= 0x80 before `end`, so `line`
        // is ASCII, and ASCII is valid UTF-8.
        Some(unsafe { std::str::from_utf8_unchecked(line) })
    } else {
        None
    };
    (line, text, rest)
}

/// The index of the first `\n` in `data` (or its length), and whether every
/// byte before it is ASCII.
#[inline(always)]
fn line_end(data: &[u8]) -> (usize, bool) {
    let mut i = 0usize;
    let mut high = 0u32;
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{
            __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8,
        };
        while let Some(part) = data.get(i..i + 16) {
            // SAFETY: SSE2 is part of the x86_64 baseline; the load reads
            // the 16 bytes of `part` (exactly 16 long), unaligned.
            let (nl, h) = unsafe {
                let v = _mm_loadu_si128(part.as_ptr().cast::<__m128i>());
                let nl = _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(b'\n' as i8)));
                (nl as u32, _mm_movemask_epi8(v) as u32)
            };
            if nl != 0 {
                let k = nl.trailing_zeros();
                return (i + k as usize, (high | (h & ((1 << k) - 1))) == 0);
            }
            high |= h;
            i += 16;
        }
    }
    let (end, ascii) = line_end_portable(data.get(i..).unwrap_or_default());
    (i + end, ascii && high == 0)
}

/// Byte by byte: the tail of [`line_end`], its version off x86_64, and the
/// reference it is checked against.
pub fn line_end_portable(data: &[u8]) -> (usize, bool) {
    let end = data.iter().position(|&c| c == b'\n').unwrap_or(data.len());
    (end, data.get(..end).is_some_and(<[u8]>::is_ascii))
}

/// The index of the first `"` or `\` at or after `i`, sixteen bytes at a
/// time (SSE2 on x86_64) while sixteen remain, then byte by byte. A string
/// end is usually within the first sixteen bytes, so one compare finds it.
#[inline(always)]
pub fn quote_or_backslash(b: &[u8], i: usize) -> Option<usize> {
    first_stop::<false>(b, i)
}

/// The index of the first `"`, `\`, newline or byte >= 0x80 at or after
/// `i`: [`quote_or_backslash`] for a string read straight out of a chunk.
#[inline(always)]
pub fn string_stop(b: &[u8], i: usize) -> Option<usize> {
    first_stop::<true>(b, i)
}

/// The search behind both: `LINE` also stops at a newline or a byte
/// >= 0x80.
#[inline(always)]
fn first_stop<const LINE: bool>(b: &[u8], mut i: usize) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{
            __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128,
            _mm_set1_epi8,
        };
        while let Some(part) = b.get(i..i + 16) {
            // SAFETY: SSE2 is part of the x86_64 baseline; the load reads
            // the 16 bytes of `part` (exactly 16 long) and needs no
            // alignment.
            let m = unsafe {
                let v = _mm_loadu_si128(part.as_ptr().cast::<__m128i>());
                let q = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
                let s = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
                let mut hits = _mm_or_si128(q, s);
                if LINE {
                    let n = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\n' as i8));
                    // The high bit of a byte >= 0x80 is set in `v` itself.
                    hits = _mm_or_si128(hits, _mm_or_si128(n, v));
                }
                _mm_movemask_epi8(hits)
            };
            if m != 0 {
                return Some(i + m.trailing_zeros() as usize);
            }
            i += 16;
        }
    }
    first_stop_portable::<LINE>(b, i)
}

/// Byte by byte: the tail of [`quote_or_backslash`] and [`string_stop`],
/// their version off x86_64, and the reference they are checked against.
#[inline(always)]
pub fn first_stop_portable<const LINE: bool>(b: &[u8], i: usize) -> Option<usize> {
    b.get(i..)?
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || (LINE && (c == b'\n' || c >= 0x80)))
        .map(|p| i + p)
}

/// A plain ASCII string value read straight out of a chunk, starting after
/// its opening quote: its text and the index of its closing quote. `None`
/// when a backslash, a newline or a byte >= 0x80 comes first (or it does
/// not end): the row then goes the line way, which splits, validates and
/// unescapes. Sixteen bytes at a time (SSE2 on x86_64) while sixteen remain.
#[inline(always)]
pub fn ascii_string(b: &[u8], start: usize) -> Option<(&str, usize)> {
    let end = string_stop(b, start)?;
    if b.get(end) != Some(&b'"') {
        return None;
    }
    let text = b.get(start..end)?;
    debug_assert!(text.is_ascii());
    // SAFETY: `string_stop` stops at the first byte >= 0x80, and `end` is
    // that stop, so every byte of `text` is ASCII, which is valid UTF-8.
    Some((unsafe { std::str::from_utf8_unchecked(text) }, end))
}

/// The number token at `i` as text (its bytes are digits, signs, points
/// and exponent marks: loosely checked, the conversion of a used value
/// validates it) and the index after it.
#[inline(always)]
pub fn number_token(b: &[u8], i: usize) -> (&str, usize) {
    let mut end = i;
    while b
        .get(end)
        .is_some_and(|c| matches!(c, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
    {
        end += 1;
    }
    let token = b.get(i..end).unwrap_or_default();
    debug_assert!(token.is_ascii());
    // SAFETY: every byte of `token` matched one of the ASCII bytes above,
    // and ASCII is valid UTF-8.
    (unsafe { std::str::from_utf8_unchecked(token) }, end)
}

/// Quote, backslash and high-bit masks of 64 bytes.
#[cfg(target_arch = "x86_64")]
pub fn masks64(block: &[u8; 64]) -> (u64, u64, u64) {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8,
    };
    let (mut q, mut s, mut h) = (0u64, 0u64, 0u64);
    // SAFETY: SSE2 is part of the x86_64 baseline, so these intrinsics are
    // available on every x86_64 CPU; each load reads the 16 bytes of `part`
    // (a slice of exactly 16 bytes) and `_mm_loadu_si128` needs no alignment.
    unsafe {
        let quote = _mm_set1_epi8(b'"' as i8);
        let backslash = _mm_set1_epi8(b'\\' as i8);
        for (k, part) in block.chunks_exact(16).enumerate() {
            let v = _mm_loadu_si128(part.as_ptr().cast::<__m128i>());
            let shift = 16 * k;
            q |= u64::from(_mm_movemask_epi8(_mm_cmpeq_epi8(v, quote)) as u16) << shift;
            s |= u64::from(_mm_movemask_epi8(_mm_cmpeq_epi8(v, backslash)) as u16) << shift;
            h |= u64::from(_mm_movemask_epi8(v) as u16) << shift;
        }
    }
    (q, s, h)
}

/// Quote, backslash and high-bit masks of 64 bytes (portable version, and
/// the reference the SSE2 version is checked against).
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
pub fn masks64_portable(block: &[u8; 64]) -> (u64, u64, u64) {
    let (mut q, mut s, mut h) = (0u64, 0u64, 0u64);
    for (i, &c) in block.iter().enumerate() {
        q |= u64::from(c == b'"') << i;
        s |= u64::from(c == b'\\') << i;
        h |= u64::from(c >= 0x80) << i;
    }
    (q, s, h)
}

#[cfg(not(target_arch = "x86_64"))]
pub fn masks64(block: &[u8; 64]) -> (u64, u64, u64) {
    masks64_portable(block)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic mix of the bytes that matter.
    pub fn lines() -> Vec<Vec<u8>> {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let alphabet = [
            b'"', b'\\', b'a', b'{', b':', b' ', 0xc3, 0xa9, 0x80, 0xff, b'0', b'\n', b'-', b'e',
        ];
        let mut out = vec![Vec::new(), b"\"".to_vec(), vec![b'"'; 200]];
        for len in [1usize, 15, 16, 63, 64, 65, 127, 128, 129, 300] {
            for _ in 0..4 {
                out.push(
                    (0..len)
                        .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                        .collect(),
                );
            }
        }
        out
    }

    #[test]
    fn marks_match_a_byte_by_byte_reading() {
        let mut buf = Vec::new();
        for line in lines() {
            let m = mark(&mut buf, &line).unwrap();
            let want: Vec<u32> = (0..line.len() as u32)
                .filter(|&i| line[i as usize] == b'"')
                .collect();
            assert_eq!(&buf[..m.count], &want[..], "{line:?}");
            assert_eq!(m.backslash, line.contains(&b'\\'));
            let mut block = [b' '; 64];
            let k = line.len().min(64);
            block[..k].copy_from_slice(&line[..k]);
            assert_eq!(masks64(&block), masks64_portable(&block));
            let (end, ascii) = line_end_portable(&line);
            assert_eq!(line_end(&line), (end, ascii), "{line:?}");
            let (head, text, rest) = next_line(&line);
            assert_eq!(head, &line[..end]);
            assert_eq!(
                text,
                if ascii {
                    std::str::from_utf8(head).ok()
                } else {
                    None
                }
            );
            assert_eq!(rest, line.get(end + 1..).unwrap_or_default());
            for i in 0..=line.len() + 1 {
                assert_eq!(
                    quote_or_backslash(&line, i),
                    first_stop_portable::<false>(&line, i),
                    "{line:?} from {i}"
                );
                assert_eq!(
                    string_stop(&line, i),
                    first_stop_portable::<true>(&line, i),
                    "{line:?} from {i}"
                );
                let want = first_stop_portable::<true>(&line, i)
                    .filter(|&e| line[e] == b'"')
                    .map(|e| (std::str::from_utf8(&line[i..e]).unwrap(), e));
                assert_eq!(ascii_string(&line, i), want, "{line:?} from {i}");
                let end = line.get(i..).map_or(i, |r| {
                    i + r
                        .iter()
                        .take_while(|c| b"0123456789-+.eE".contains(c))
                        .count()
                });
                let want = (
                    std::str::from_utf8(line.get(i..end).unwrap_or_default()).unwrap(),
                    end,
                );
                assert_eq!(number_token(&line, i), want, "{line:?} from {i}");
            }
        }
    }
}
