//! Hostile and broken input through the built binary, one test per case of
//! issue #12 (extreme timestamps, bombs and endless inputs, a truncated
//! `.gz`, archives, UTF-16 without a BOM, an empty TimeGenerated, a FIFO).
//! Every run is under a resource limit (RLIMIT_AS, the address space, set
//! with setrlimit in the child as `prlimit --as` would), so
//! a mechanism that sizes memory by a time span or by what a file claims
//! fails here instead of swapping the machine; and under a hang guard (the
//! run is killed after `HANG` and the test fails): not a timing test, a
//! bound on "never ends". The tmux cases skip with a message where tmux
//! is missing.

use super::cli::{root, stdout};
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The address-space limit every run gets: enough for the scenarios (the
/// binary maps ~300 MB of code, thread stacks and arenas), far below what
/// a span-sized allocation (33.5 GB for a year-9999 row) or a bomb read
/// whole (2+ GB) asks for.
const LIMIT: libc::rlim_t = 1536 << 20;
/// A run still going after this is hung.
const HANG: Duration = Duration::from_secs(120);

/// `apimedic ARGS` under the address-space limit and the hang guard.
fn limited(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_apimedic"));
    // SAFETY: setrlimit is async-signal-safe, as a pre_exec hook must be;
    // it only lowers the child's own limit.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: LIMIT,
                rlim_max: LIMIT,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.args(args)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("apimedic runs");
    // Drain the pipes on threads so a big output never blocks the child.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let o = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = out.read_to_end(&mut b);
        b
    });
    let e = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = err.read_to_end(&mut b);
        b
    });
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > HANG {
            let _ = child.kill();
            let _ = child.wait();
            panic!("apimedic {args:?} did not finish within {HANG:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output {
        status,
        stdout: o.join().unwrap(),
        stderr: e.join().unwrap(),
    }
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}); status {:?}\nstderr:\n{}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

fn problems(v: &serde_json::Value) -> Vec<String> {
    v["loaded"]["problems"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let o = &p["origin"];
            let at = match (o["line"].as_u64(), o["record"].as_u64()) {
                (Some(l), _) => format!(":{l}"),
                (None, Some(r)) => format!(" record {r}"),
                _ => String::new(),
            };
            format!(
                "{}{at}: {}",
                o["file"].as_str().unwrap_or(""),
                p["message"].as_str().unwrap_or("")
            )
        })
        .collect()
}

fn gateway_rows(v: &serde_json::Value) -> u64 {
    v["loaded"]["counts"]["gateway_logs"].as_u64().unwrap_or(0)
}

fn scenario(name: &str) -> String {
    format!("fixtures/scenarios/{name}")
}

/// A flat gateway row at `time`.
fn row(time: &str, code: u16) -> String {
    format!(
        r#"{{"TimeGenerated":"{time}","ApiId":"orders-api","OperationId":"get-order","BackendId":"orders-app","ResponseCode":{code},"BackendResponseCode":{code},"TotalTime":20,"BackendTime":15}}"#
    )
}

/// One extreme timestamp added to the policy-timeout scenario: the row is
/// rejected at its file and line saying why, and the scenario's findings
/// are all still there.
fn extreme_timestamp(stamp: &str, why: &str) {
    let dir = tempfile::tempdir().unwrap();
    let extra = dir.path().join("extreme.ndjson");
    let text = format!(
        "{}\n{}\n",
        row("2026-03-07T09:00:00Z", 200),
        row(stamp, 503)
    );
    std::fs::write(&extra, text).unwrap();
    let base = limited(
        &["diagnose", "--format", "json", &scenario("policy-timeout")],
        &[],
    );
    let out = limited(
        &[
            "diagnose",
            "--format",
            "json",
            &scenario("policy-timeout"),
            extra.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let (b, v) = (json(&base), json(&out));
    let p = problems(&v);
    let want = format!(
        "{}:2: TimeGenerated {stamp} is implausible",
        extra.display()
    );
    assert!(
        p.iter().any(|m| m.starts_with(&want) && m.contains(why)),
        "{want} / {why} in {p:#?}"
    );
    assert_eq!(
        gateway_rows(&v),
        gateway_rows(&b) + 1,
        "the good extra row counts"
    );
    let kinds = |v: &serde_json::Value| -> Vec<String> {
        let mut k: Vec<String> = v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| format!("{} {}", f["kind"], f["subject"]))
            .collect();
        k.sort();
        k
    };
    assert_eq!(kinds(&v), kinds(&b), "no finding lost or added");
    let range = &v["loaded"]["time_range"];
    assert_eq!(
        range, &b["loaded"]["time_range"],
        "the time range ignores the row"
    );
}

#[test]
fn a_year_9999_row_is_rejected_and_the_run_holds() {
    extreme_timestamp("9999-12-31T23:59:59Z", "after this machine's clock");
}

#[test]
fn a_dotnet_null_date_row_is_rejected_and_the_run_holds() {
    extreme_timestamp("0001-01-01T00:00:00Z", "before 2000-01-01");
}

#[test]
fn a_unix_epoch_row_is_rejected_and_the_run_holds() {
    extreme_timestamp("1970-01-01T00:00:00Z", "before 2000-01-01");
}

/// A row on the first day of each year 2000–2025, then a day of traffic
/// on 2026-03-07 with a 5xx burst at 06:40–07:09.
fn decades_apart(f: &Path) {
    let mut text = String::new();
    for year in 2000..2026 {
        text.push_str(&row(&format!("{year}-01-01T00:00:00Z"), 200));
        text.push('\n');
    }
    // Then a day of traffic with a 5xx burst in it.
    for m in 0..600 {
        for k in 0..10 {
            let code = if (400..430).contains(&m) && k < 6 {
                503
            } else {
                200
            };
            let t = format!("2026-03-07T{:02}:{:02}:{:02}Z", m / 60, m % 60, k * 5);
            text.push_str(&row(&t, code));
            text.push('\n');
        }
    }
    std::fs::write(f, text).unwrap();
}

/// Rows years apart but all plausible: the analysis axis follows the rows,
/// so this fits the limit and finds the spike at the end.
#[test]
fn rows_decades_apart_cost_rows_not_minutes() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("far.ndjson");
    decades_apart(&f);
    let out = limited(&["diagnose", "--format", "json", f.to_str().unwrap()], &[]);
    let v = json(&out);
    assert_eq!(gateway_rows(&v), 26 + 6000, "{:#?}", problems(&v));
    let spike = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "error_spike")
        .unwrap_or_else(|| panic!("no spike in {}", stdout(&out)));
    let start = spike["window"]["start"].as_str().unwrap();
    assert!(start.starts_with("2026-03-07T06:"), "{start}");
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// Complete lines in what a cut gzip yields before its error.
fn complete_lines_before_cut(gz: &[u8]) -> u64 {
    let mut d = flate2::read::MultiGzDecoder::new(gz);
    let mut out = Vec::new();
    let mut buf = [0u8; 1 << 14];
    loop {
        match d.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    out.iter().filter(|&&c| c == b'\n').count() as u64
}

/// A `.gz` cut in the middle keeps every complete row before the cut and
/// says how many; for a small file (read whole) and a big one (streamed).
fn truncated_gzip(rows: usize) {
    let mut text = String::new();
    for i in 0..rows {
        let t = format!(
            "2026-03-07T{:02}:{:02}:{:02}Z",
            (i / 3600) % 24,
            (i / 60) % 60,
            i % 60
        );
        text.push_str(&row(&t, 200));
        text.push('\n');
    }
    let gz = gzip(text.as_bytes());
    let cut = &gz[..gz.len() * 3 / 5];
    let want = complete_lines_before_cut(cut);
    assert!(want > 0 && (want as usize) < rows);
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("PT1H.json.gz");
    std::fs::write(&f, cut).unwrap();
    let out = limited(&["diagnose", "--format", "json", f.to_str().unwrap()], &[]);
    let v = json(&out);
    let p = problems(&v);
    assert_eq!(gateway_rows(&v), want, "{p:#?}");
    let said = format!("the {want} complete rows before the cut are used");
    assert!(
        p.iter()
            .any(|m| m.contains("gzip data is corrupt or truncated after") && m.contains(&said)),
        "{said} in {p:#?}"
    );
}

#[test]
fn a_small_truncated_gzip_keeps_the_rows_before_the_cut() {
    truncated_gzip(1_600);
}

#[test]
fn a_big_truncated_gzip_keeps_the_rows_before_the_cut() {
    truncated_gzip(60_000);
}

#[test]
fn a_gzip_of_zeros_is_refused_from_its_prefix() {
    // 1 GiB of zeros, about 1 MB compressed.
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bomb.json.gz");
    let mut e = flate2::write::GzEncoder::new(
        std::fs::File::create(&f).unwrap(),
        flate2::Compression::fast(),
    );
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..1024 {
        e.write_all(&zeros).unwrap();
    }
    e.finish().unwrap();
    let out = limited(&["diagnose", "--format", "json", f.to_str().unwrap()], &[]);
    let p = problems(&json(&out));
    assert!(p.iter().any(|m| m.contains("binary content")), "{p:#?}");
}

#[test]
fn a_gzip_bomb_of_log_rows_stops_at_the_ratio_cap() {
    // 512 MiB of one row repeated: about 258:1 at the default level (at
    // level 1 it is 145:1, under the cap, and simply streams through).
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("rows.json.gz");
    let mut e = flate2::write::GzEncoder::new(
        std::fs::File::create(&f).unwrap(),
        flate2::Compression::default(),
    );
    let line = format!("{}\n", row("2026-03-07T09:00:00Z", 200));
    let block = line.repeat((1 << 20) / line.len());
    for _ in 0..512 {
        e.write_all(block.as_bytes()).unwrap();
    }
    e.finish().unwrap();
    let out = limited(&["diagnose", "--format", "json", f.to_str().unwrap()], &[]);
    let v = json(&out);
    let p = problems(&v);
    assert!(
        p.iter().any(|m| m.contains("a likely decompression bomb")),
        "{p:#?}"
    );
    let rows = gateway_rows(&v);
    assert!(rows > 100_000, "rows before the cap are used: {rows}");
}

#[test]
fn a_gzip_of_one_endless_line_is_bounded() {
    // One 1 GiB line: no newline anywhere.
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("line.ndjson.gz");
    let mut e = flate2::write::GzEncoder::new(
        std::fs::File::create(&f).unwrap(),
        flate2::Compression::fast(),
    );
    e.write_all(format!("{}\n", row("2026-03-07T09:00:00Z", 200)).as_bytes())
        .unwrap();
    let junk = vec![b'x'; 1 << 20];
    for _ in 0..1024 {
        e.write_all(&junk).unwrap();
    }
    e.finish().unwrap();
    let out = limited(&["diagnose", "--format", "json", f.to_str().unwrap()], &[]);
    let v = json(&out);
    let p = problems(&v);
    assert!(!p.is_empty(), "the long line or the bomb is reported");
    assert_eq!(gateway_rows(&v), 1, "the row before it is kept: {p:#?}");
}

#[test]
fn dev_urandom_is_refused_from_its_prefix() {
    let out = limited(&["diagnose", "--format", "json", "/dev/urandom"], &[]);
    let p = problems(&json(&out));
    assert!(
        p.iter()
            .any(|m| m.starts_with("/dev/urandom: binary content")),
        "{p:#?}"
    );
}

#[test]
fn a_sparse_2gb_file_is_judged_from_its_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("sparse.json");
    let file = std::fs::File::create(&f).unwrap();
    file.set_len(2 << 30).unwrap();
    let out = limited(&["diagnose", "--format", "json", f.to_str().unwrap()], &[]);
    let p = problems(&json(&out));
    assert!(p.iter().any(|m| m.contains("binary content")), "{p:#?}");
}

#[test]
fn a_tar_archive_is_named_not_called_binary() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("gateway.ndjson"),
        row("2026-03-07T09:00:00Z", 200),
    )
    .unwrap();
    let tar = dir.path().join("export.tar");
    let made = Command::new("tar")
        .arg("-cf")
        .arg(&tar)
        .arg("-C")
        .arg(dir.path())
        .arg("gateway.ndjson")
        .status();
    if !made.is_ok_and(|s| s.success()) {
        eprintln!("skipping: tar is not installed");
        return;
    }
    let out = limited(
        &["diagnose", "--format", "json", tar.to_str().unwrap()],
        &[],
    );
    let p = problems(&json(&out));
    assert!(
        p.iter()
            .any(|m| m.contains("a tar archive: extract it (tar -xf)")),
        "{p:#?}"
    );
}

#[test]
fn utf16_logs_without_a_bom_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::new();
    for s in 0..30 {
        text.push_str(&row(&format!("2026-03-07T09:00:{s:02}Z"), 200));
        text.push_str("\r\n");
    }
    for (name, le) in [("le.json", true), ("be.json", false)] {
        let bytes: Vec<u8> = text
            .encode_utf16()
            .flat_map(|u| if le { u.to_le_bytes() } else { u.to_be_bytes() })
            .collect();
        let f = dir.path().join(name);
        std::fs::write(&f, bytes).unwrap();
        let out = limited(&["diagnose", "--format", "json", f.to_str().unwrap()], &[]);
        let v = json(&out);
        assert_eq!(gateway_rows(&v), 30, "{name}: {:#?}", problems(&v));
    }
}

#[test]
fn an_empty_time_generated_is_not_a_missing_column() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("gateway.ndjson");
    let text = format!(
        "{}\n{}\n{}\n",
        row("2026-03-07T09:00:00Z", 200),
        row("", 200),
        row("2026-03-07T09:00:01Z", 200)
    );
    std::fs::write(&f, text).unwrap();
    let csv = dir.path().join("gateway.csv");
    std::fs::write(
        &csv,
        "TimeGenerated,ApiId,OperationId,ResponseCode,TotalTime\n\
         2026-03-07T09:00:00Z,orders-api,get-order,200,20\n\
         ,orders-api,get-order,200,20\n",
    )
    .unwrap();
    for (file, line, rows) in [(&f, 2, 2), (&csv, 3, 1)] {
        let out = limited(
            &["diagnose", "--format", "json", file.to_str().unwrap()],
            &[],
        );
        let v = json(&out);
        let p = problems(&v);
        let want = format!("{}:{line}: TimeGenerated is empty", file.display());
        assert!(p.iter().any(|m| m.starts_with(&want)), "{want} in {p:#?}");
        assert!(!p.iter().any(|m| m.contains("column")), "{p:#?}");
        assert_eq!(gateway_rows(&v), rows);
    }
}

/// Opens a FIFO's write end once a reader has it open (a plain open would
/// block forever if the reader never comes); `None` after 60 s.
fn open_writer(path: &Path) -> Option<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let w = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path);
        match w {
            Ok(f) => {
                // Blocking writes from here on.
                let fd = std::os::unix::io::AsRawFd::as_raw_fd(&f);
                // SAFETY: fcntl on a descriptor this function owns.
                unsafe {
                    let flags = libc::fcntl(fd, libc::F_GETFL);
                    libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK);
                }
                return Some(f);
            }
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Err(_) => return None,
        }
    }
}

fn mkfifo(path: &Path) -> bool {
    Command::new("mkfifo")
        .arg(path)
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn a_fifo_without_a_writer_does_not_block_forever() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe.ndjson");
    if !mkfifo(&fifo) {
        eprintln!("skipping: mkfifo failed");
        return;
    }
    let out = limited(
        &["diagnose", "--format", "json", fifo.to_str().unwrap()],
        &[("APIMEDIC_PIPE_TIMEOUT", "1")],
    );
    let p = problems(&json(&out));
    assert!(
        p.iter()
            .any(|m| m.contains("nothing arrived") && m.contains("no writer")),
        "{p:#?}"
    );
}

#[test]
fn a_fifo_with_a_writer_is_read_to_its_end() {
    let dir = tempfile::tempdir().unwrap();
    let fifo: PathBuf = dir.path().join("pipe.ndjson");
    if !mkfifo(&fifo) {
        eprintln!("skipping: mkfifo failed");
        return;
    }
    let path = fifo.clone();
    let writer = std::thread::spawn(move || {
        let Some(mut w) = open_writer(&path) else {
            return;
        };
        for s in 0..50 {
            writeln!(w, "{}", row(&format!("2026-03-07T09:00:{s:02}Z"), 200)).unwrap();
        }
    });
    let out = limited(
        &["diagnose", "--format", "json", fifo.to_str().unwrap()],
        &[("APIMEDIC_PIPE_TIMEOUT", "30")],
    );
    writer.join().unwrap();
    let v = json(&out);
    assert_eq!(gateway_rows(&v), 50, "{:#?}", problems(&v));
}

use super::tui_e2e::Tmux;

/// The pid of the app the pane's shell started.
fn app_pid(t: &Tmux) -> Option<u32> {
    let out = t.tm(&["display", "-p", "-t", "e2e", "#{pane_pid}"]);
    let shell = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let children = std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children")).ok()?;
    children.split_whitespace().next()?.parse().ok()
}

fn pane_flag(t: &Tmux, flag: &str) -> String {
    let out = t.tm(&["display", "-p", "-t", "e2e", &format!("#{{{flag}}}")]);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// An abort (what a failed allocation does) or a kill from outside gives the
/// terminal back: the alternate screen is left, the cursor shown, the
/// terminal modes put back (`stty` run after it sees a cooked terminal), and
/// the process still ends by that signal.
fn tui_restores_the_terminal_on(signal: &str, code: i32) {
    let name = format!("tui_signal_{signal}");
    let Some(t) = Tmux::start(&name, &["--version"], 100, 30) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let status = dir.path().join("status");
    let stty = dir.path().join("stty");
    // The pane's shell outlives the app, so its terminal can be read after.
    let line = format!(
        "{} tui fixtures/scenarios/backend-oom; echo $? > '{}'; stty -a > '{}'; sleep 600",
        env!("CARGO_BIN_EXE_apimedic"),
        status.display(),
        stty.display()
    );
    let root = root().display().to_string();
    t.ok(&["respawn-pane", "-k", "-c", &root, "-t", "e2e", &line]);
    t.wait_for("Top findings");
    assert_eq!(
        pane_flag(&t, "alternate_on"),
        "1",
        "the dashboard uses the alternate screen"
    );
    assert_eq!(pane_flag(&t, "cursor_flag"), "0", "and hides the cursor");
    let pid = app_pid(&t).expect("the app's pid");
    let killed = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let modes = loop {
        if let Ok(m) = std::fs::read_to_string(&stty)
            && !m.is_empty()
        {
            break m;
        }
        assert!(
            Instant::now() < deadline,
            "the app did not end:\n{}",
            t.screen()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let ended = std::fs::read_to_string(&status).unwrap_or_default();
    assert_eq!(ended.trim(), code.to_string(), "ended by SIG{signal}");
    assert_eq!(
        pane_flag(&t, "alternate_on"),
        "0",
        "left the alternate screen"
    );
    assert_eq!(
        pane_flag(&t, "cursor_flag"),
        "1",
        "the cursor is shown again"
    );
    let words: Vec<&str> = modes.split_whitespace().collect();
    for mode in ["icanon", "echo", "isig", "icrnl"] {
        assert!(
            words.contains(&mode),
            "raw mode left on ({mode} missing):\n{modes}"
        );
    }
}

#[test]
fn tui_restores_the_terminal_on_abort() {
    tui_restores_the_terminal_on("ABRT", 134);
}

#[test]
fn tui_restores_the_terminal_on_sigterm() {
    tui_restores_the_terminal_on("TERM", 143);
}

/// `:` commands typed while the data is still loading run once it is: the
/// source is a FIFO whose writer waits until the command was typed.
#[test]
fn tui_keeps_commands_typed_while_loading() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("feed.ndjson");
    if !mkfifo(&fifo) {
        eprintln!("skipping: mkfifo failed");
        return;
    }
    let f = fifo.display().to_string();
    let Some(t) = Tmux::start_env(
        "tui_typeahead",
        &[("APIMEDIC_PIPE_TIMEOUT", "60")],
        &["tui", &f],
        100,
        30,
    ) else {
        return;
    };
    t.wait_for("Loading");
    t.type_text(":backends");
    t.keys(&["Enter"]);
    t.wait_for(":backends runs when the data is loaded");
    let mut w = open_writer(&fifo).expect("the dashboard reads the FIFO");
    for s in 0..40 {
        writeln!(w, "{}", row(&format!("2026-03-07T09:00:{s:02}Z"), 200)).unwrap();
    }
    drop(w);
    t.wait_for("Overview › Backends");
    t.type_text("q");
    assert_eq!(t.wait_exit(), 0);
}

/// The dashboard on rows decades apart, under the same address-space
/// limit (`ulimit -v` in the pane's shell): its charts are on a grid of
/// days, so it opens, draws the years on the axis, steps the time cursor
/// and quits cleanly. Before, each chart series was a dense array over the
/// 13.7 million minutes between the rows.
#[test]
fn tui_on_rows_decades_apart_fits_the_limit() {
    let Some(t) = Tmux::start("tui_decades", &["--version"], 120, 40) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("far.ndjson");
    decades_apart(&f);
    let status = dir.path().join("status");
    let line = format!(
        "ulimit -v {}; {} tui '{}'; echo $? > '{}'; sleep 600",
        LIMIT / 1024,
        env!("CARGO_BIN_EXE_apimedic"),
        f.display(),
        status.display()
    );
    let root = root().display().to_string();
    t.ok(&["respawn-pane", "-k", "-c", &root, "-t", "e2e", &line]);
    t.wait_for("Top findings");
    t.wait_for("2000-01-01");
    t.wait_for("2026-03-07");
    t.keys(&["["]);
    t.wait_for("▲");
    t.type_text("q");
    let deadline = Instant::now() + Duration::from_secs(20);
    let code = loop {
        if let Ok(text) = std::fs::read_to_string(&status)
            && let Ok(code) = text.trim().parse::<i32>()
        {
            break code;
        }
        assert!(Instant::now() < deadline, "still running:\n{}", t.screen());
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(code, 0, "{}", t.screen());
}
