//! Input framing, the part of reading that must hold against hostile or
//! broken input before any format is known: opening a path without
//! blocking (a FIFO with no writer), waiting for a pipe or device with an
//! idle deadline, gzip with a cap on the decompression ratio, whole
//! documents with a cap on their size, and recognising what a file is from
//! a prefix only (archives, compressors, binary data, UTF-16 without a
//! BOM) so nothing is read whole to be refused.
//!
//! A read that fails part-way (a `.gz` cut short, a device error, a pipe
//! gone quiet, a bomb) ends the stream cleanly: the bytes before it are
//! parsed like a whole file, and the caller reports the cut with how much
//! was read, as Vector and Fluent Bit keep what they read before an error.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The largest document read whole (JSON, XML, YAML, CSV too small to
/// stream): 256 MiB after decompression. Logs of any size stream instead.
pub const MAX_DOCUMENT: u64 = 256 << 20;

/// Decompressed bytes per compressed byte above which a `.gz` is taken for
/// a decompression bomb (real gateway logs compress 5–30:1)...
pub const MAX_RATIO: u64 = 200;
/// ...once this much has come out of it.
pub const RATIO_FROM: u64 = 64 << 20;

/// How long a pipe, FIFO or device may stay silent (before its first byte,
/// or between two reads) before reading it stops: 10 s, or
/// `APIMEDIC_PIPE_TIMEOUT` seconds.
pub fn pipe_timeout() -> Duration {
    std::env::var("APIMEDIC_PIPE_TIMEOUT")
        .ok()
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map_or(Duration::from_secs(10), Duration::from_secs_f64)
}

/// Opens a path for reading without ever blocking in `open` (a FIFO with no
/// writer blocks a plain open forever). Regular files behave as usual.
pub fn open(path: &Path) -> io::Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
}

/// What a file given to read is: a regular file, or a stream (FIFO, device,
/// socket) read through [`Pipe`].
pub fn is_stream(file: &File) -> io::Result<bool> {
    let t = file.metadata()?.file_type();
    Ok(t.is_fifo() || t.is_char_device() || t.is_socket() || t.is_block_device())
}

/// A FIFO, device or socket read with an idle deadline. The descriptor is
/// non-blocking (see [`open`]): a read that would block waits in `poll` for
/// at most the deadline, then fails with `TimedOut`. Before its first byte a
/// FIFO with no writer reads as end of file, so the first read waits for
/// data (or the writer's close) first.
pub struct Pipe {
    file: File,
    idle: Duration,
    started: bool,
}

impl Pipe {
    pub fn new(file: File, idle: Duration) -> Pipe {
        Pipe {
            file,
            idle,
            started: false,
        }
    }

    /// Waits until the descriptor is readable or hung up; false on timeout.
    fn wait(&self) -> io::Result<bool> {
        let mut fds = libc::pollfd {
            fd: self.file.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = i32::try_from(self.idle.as_millis()).unwrap_or(i32::MAX);
        loop {
            // SAFETY: `fds` is one valid, initialised pollfd that lives for
            // the call, and the count passed is 1.
            let n = unsafe { libc::poll(&mut fds, 1, ms) };
            if n >= 0 {
                return Ok(n > 0);
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }

    fn timed_out(&self) -> io::Error {
        let what = if self.started {
            "no data"
        } else {
            "nothing arrived (a FIFO with no writer?)"
        };
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "{what} for {} s from a pipe or device (APIMEDIC_PIPE_TIMEOUT sets the wait)",
                self.idle.as_secs_f64()
            ),
        )
    }
}

impl Read for Pipe {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.started {
            if !self.wait()? {
                return Err(self.timed_out());
            }
            self.started = true;
        }
        loop {
            match self.file.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if !self.wait()? {
                        return Err(self.timed_out());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => return other,
            }
        }
    }
}

/// Counts the bytes read through it (the compressed side of a gzip stream).
pub struct Counted<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R> Counted<R> {
    pub fn new(inner: R) -> (Counted<R>, Arc<AtomicU64>) {
        let count = Arc::new(AtomicU64::new(0));
        (
            Counted {
                inner,
                count: count.clone(),
            },
            count,
        )
    }
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Why a stream ended before its natural end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cut {
    /// A read failed (a `.gz` cut short or corrupt, a device error, a pipe
    /// silent past its deadline).
    Error(String),
    /// More than [`MAX_RATIO`] decompressed bytes per compressed byte.
    Bomb { compressed: u64 },
}

/// What a [`Guard`] saw, readable after the stream is consumed.
#[derive(Clone, Debug, Default)]
pub struct Seen {
    state: Arc<Mutex<(u64, Option<Cut>)>>,
}

impl Seen {
    /// Bytes delivered to the reader.
    pub fn bytes(&self) -> u64 {
        self.state.lock().map_or(0, |s| s.0)
    }
    pub fn cut(&self) -> Option<Cut> {
        self.state.lock().ok().and_then(|s| s.1.clone())
    }
}

/// Ends a stream cleanly where it fails: a read error is recorded and read
/// as end of input, so every complete record before it is still parsed
/// (the partial one at the cut is reported by the format reader as a bad
/// line). With `compressed` (the compressed byte count of a gzip stream),
/// the stream also ends once it exceeds the decompression-ratio cap.
pub struct Guard<R> {
    inner: R,
    compressed: Option<Arc<AtomicU64>>,
    out: u64,
    done: bool,
    seen: Seen,
}

impl<R: Read> Guard<R> {
    pub fn new(inner: R, compressed: Option<Arc<AtomicU64>>) -> (Guard<R>, Seen) {
        let seen = Seen::default();
        (
            Guard {
                inner,
                compressed,
                out: 0,
                done: false,
                seen: seen.clone(),
            },
            seen,
        )
    }

    fn stop(&mut self, cut: Cut) {
        self.done = true;
        if let Ok(mut s) = self.seen.state.lock() {
            s.1 = Some(cut);
        }
    }
}

impl<R: Read> Read for Guard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done {
            return Ok(0);
        }
        loop {
            match self.inner.read(buf) {
                Ok(n) => {
                    self.out += n as u64;
                    if let Ok(mut s) = self.seen.state.lock() {
                        s.0 = self.out;
                    }
                    if let Some(c) = &self.compressed {
                        let compressed = c.load(Ordering::Relaxed);
                        if self.out > RATIO_FROM && self.out > compressed.saturating_mul(MAX_RATIO)
                        {
                            self.stop(Cut::Bomb { compressed });
                        }
                    }
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.stop(Cut::Error(e.to_string()));
                    return Ok(0);
                }
            }
        }
    }
}

/// Reads the rest of a document, at most [`MAX_DOCUMENT`] bytes in all
/// (`have` already read). `Err` with the size read when it is bigger.
pub fn read_document(reader: &mut dyn Read, mut have: Vec<u8>) -> Result<Vec<u8>, u64> {
    let room = MAX_DOCUMENT.saturating_sub(have.len() as u64);
    // A read error cannot happen behind a Guard; elsewhere it ends the read.
    let _ = reader.take(room + 1).read_to_end(&mut have);
    if have.len() as u64 > MAX_DOCUMENT {
        return Err(have.len() as u64);
    }
    Ok(have)
}

/// The kinds of content recognised from a file's first bytes that cannot
/// be read: archives, other compressors, binary data. `None` for text (and
/// for gzip, which is read).
pub fn refuse(head: &[u8]) -> Option<String> {
    let extract = |what: &str, how: &str| {
        format!("{what}: {how}, then give the extracted files or folder instead")
    };
    if head.starts_with(b"PK\x03\x04") {
        return Some(extract("a zip archive", "extract it (unzip)"));
    }
    if head.get(257..262) == Some(b"ustar") {
        return Some(extract("a tar archive", "extract it (tar -xf)"));
    }
    for (magic, what, tool) in [
        (&b"BZh"[..], "bzip2", "bunzip2"),
        (b"\xFD7zXZ\x00", "xz", "unxz"),
        (b"\x28\xB5\x2F\xFD", "zstd", "unzstd"),
        (b"7z\xBC\xAF\x27\x1C", "a 7-Zip archive", "7z x"),
        (b"\x1f\x8b", "gzip inside gzip", "gunzip it once more"),
    ] {
        if head.starts_with(magic) && (magic.len() > 3 || bzip2_level(head, magic)) {
            let what = if what.starts_with('a') || what.starts_with("gzip") {
                what.to_string()
            } else {
                format!("{what}-compressed data")
            };
            return Some(format!(
                "{what}: decompress it ({tool}) first; only gzip is read directly"
            ));
        }
    }
    if utf16_without_bom(head).is_some() {
        return None;
    }
    let probe = &head[..head.len().min(8192)];
    if memchr::memchr(0, probe).is_some() {
        return Some("binary content (NUL bytes): not a log, JSON, CSV or policy XML file".into());
    }
    None
}

/// `BZh` followed by a block-size digit (and gzip's two-byte magic, which
/// needs no more), so a text file starting with "BZh" is not refused.
fn bzip2_level(head: &[u8], magic: &[u8]) -> bool {
    match magic {
        b"BZh" => head.get(3).is_some_and(|c| (b'1'..=b'9').contains(c)),
        _ => true,
    }
}

/// Byte order of UTF-16 text written without a BOM, recognised by its
/// zero bytes: ASCII-range text in UTF-16LE has a NUL after every character,
/// in UTF-16BE before it. At least 16 units, nearly all of them one-sided.
pub fn utf16_without_bom(head: &[u8]) -> Option<bool> {
    let units = head.len().min(8192) / 2;
    if units < 16 {
        return None;
    }
    let (mut low_zero, mut high_zero, mut both) = (0usize, 0usize, 0usize);
    for c in head[..units * 2].chunks_exact(2) {
        match (c[0] == 0, c[1] == 0) {
            (false, true) => high_zero += 1,
            (true, false) => low_zero += 1,
            (true, true) => both += 1,
            (false, false) => {}
        }
    }
    // A NUL unit inside text is not UTF-16 text.
    if both * 100 > units {
        return None;
    }
    if high_zero * 10 >= units * 9 {
        Some(true)
    } else if low_zero * 10 >= units * 9 {
        Some(false)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    /// A reader that fails after `ok` bytes.
    struct Failing<'a>(&'a [u8]);
    impl Read for Failing<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                return Err(io::Error::other("device error"));
            }
            let n = buf.len().min(self.0.len()).min(7);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn a_read_error_ends_the_stream_with_everything_before_it() {
        let (mut g, seen) = Guard::new(Failing(b"line one\nline two\nline th"), None);
        let mut out = Vec::new();
        g.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"line one\nline two\nline th");
        assert_eq!(seen.bytes(), 25);
        assert_eq!(seen.cut(), Some(Cut::Error("device error".into())));
        assert_eq!(g.read(&mut [0; 4]).unwrap(), 0, "stays ended");
    }

    #[test]
    fn a_truncated_gzip_yields_every_byte_before_the_cut() {
        let text: String = (0..5000).map(|i| format!("row {i}\n")).collect();
        let gz = gzip(text.as_bytes());
        let cut = &gz[..gz.len() * 2 / 3];
        let (counted, n) = Counted::new(cut);
        let (mut g, seen) = Guard::new(flate2::read::MultiGzDecoder::new(counted), Some(n));
        let mut out = Vec::new();
        g.read_to_end(&mut out).unwrap();
        assert!(
            out.len() > text.len() / 3,
            "{} of {}",
            out.len(),
            text.len()
        );
        assert!(text.as_bytes().starts_with(&out), "a prefix, in order");
        assert!(
            matches!(seen.cut(), Some(Cut::Error(_))),
            "{:?}",
            seen.cut()
        );
    }

    #[test]
    fn a_gzip_bomb_stops_at_the_ratio_cap() {
        // 128 MiB of zeros compress about 1000:1.
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..128 {
            e.write_all(&zeros).unwrap();
        }
        let gz = e.finish().unwrap();
        let (counted, n) = Counted::new(&gz[..]);
        let (mut g, seen) = Guard::new(flate2::read::MultiGzDecoder::new(counted), Some(n));
        let mut sink = [0u8; 1 << 16];
        let mut total = 0u64;
        loop {
            let k = g.read(&mut sink).unwrap();
            if k == 0 {
                break;
            }
            total += k as u64;
        }
        assert!(total > RATIO_FROM && total < 128 << 20, "{total}");
        assert!(
            matches!(seen.cut(), Some(Cut::Bomb { .. })),
            "{:?}",
            seen.cut()
        );
        // An honest stream of the same size is not a bomb.
        let text: Vec<u8> = (0..3_000_000u32)
            .flat_map(|i| format!("{i:08x} {}\n", i.wrapping_mul(2_654_435_761)).into_bytes())
            .collect();
        let gz = gzip(&text);
        let (counted, n) = Counted::new(&gz[..]);
        let (mut g, seen) = Guard::new(flate2::read::MultiGzDecoder::new(counted), Some(n));
        let mut out = Vec::new();
        g.read_to_end(&mut out).unwrap();
        assert_eq!(out.len(), text.len());
        assert_eq!(seen.cut(), None);
    }

    #[test]
    fn documents_are_capped() {
        let mut big = io::repeat(b'a');
        assert_eq!(
            read_document(&mut big, b"xyz".to_vec()),
            Err(MAX_DOCUMENT + 1)
        );
        let mut small: &[u8] = b"def";
        assert_eq!(
            read_document(&mut small, b"abc".to_vec()),
            Ok(b"abcdef".to_vec())
        );
    }

    #[test]
    fn archives_compressors_and_binary_are_named_from_a_prefix() {
        let mut tar = vec![0u8; 512];
        tar[..9].copy_from_slice(b"logs.json");
        tar[257..263].copy_from_slice(b"ustar\0");
        let cases: [(&[u8], &str); 8] = [
            (&tar, "a tar archive: extract it (tar -xf)"),
            (b"PK\x03\x04rest", "a zip archive"),
            (
                b"BZh91AY&SY",
                "bzip2-compressed data: decompress it (bunzip2)",
            ),
            (b"\xFD7zXZ\x00\x00", "xz-compressed data"),
            (b"\x28\xB5\x2F\xFD\x00", "zstd-compressed data"),
            (b"7z\xBC\xAF\x27\x1C\x00", "a 7-Zip archive"),
            (b"\x1f\x8b\x08\x00", "gzip inside gzip"),
            (b"\x7fELF\x02\x01\x01\x00", "binary content (NUL bytes)"),
        ];
        for (head, want) in cases {
            let got = refuse(head).unwrap_or_default();
            assert!(got.starts_with(want), "{want}: {got}");
        }
        for text in [
            &b"BZh is a word\n"[..],
            b"{\"a\":1}\n",
            b"TimeGenerated,ApiId\n",
        ] {
            assert_eq!(refuse(text), None);
        }
    }

    #[test]
    fn utf16_without_a_bom_is_text_not_binary() {
        let text = r#"{"TimeGenerated":"2024-05-14T09:12:03Z","ResponseCode":200}"#;
        let le: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
        let be: Vec<u8> = text.encode_utf16().flat_map(u16::to_be_bytes).collect();
        assert_eq!(utf16_without_bom(&le), Some(true));
        assert_eq!(utf16_without_bom(&be), Some(false));
        assert_eq!(refuse(&le), None);
        assert_eq!(refuse(&be), None);
        assert_eq!(utf16_without_bom(text.as_bytes()), None);
        assert_eq!(utf16_without_bom(&[0u8; 4096]), None, "zeros are not text");
        assert!(refuse(&[0u8; 4096]).is_some());
    }

    #[test]
    fn a_fifo_without_a_writer_times_out_instead_of_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fifo");
        let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let f = open(&path).expect("open never blocks");
        assert!(is_stream(&f).unwrap());
        let mut p = Pipe::new(f, Duration::from_millis(200));
        let e = p.read(&mut [0u8; 16]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(e.to_string().contains("no writer"), "{e}");
        // With a writer, what it writes is read to its end.
        let f = open(&path).unwrap();
        let w = std::thread::spawn(move || {
            let mut w = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
            w.write_all(b"hello\nworld\n").unwrap();
        });
        let mut out = Vec::new();
        Pipe::new(f, Duration::from_secs(20))
            .read_to_end(&mut out)
            .unwrap();
        w.join().unwrap();
        assert_eq!(out, b"hello\nworld\n");
    }
}
