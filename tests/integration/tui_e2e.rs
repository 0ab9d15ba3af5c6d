//! The real `apimedic tui` in tmux: a private server (own socket under
//! CARGO_TARGET_TMPDIR, no config), a fixed size, the screen polled against
//! a deadline, the server killed on drop. Skips with a message where tmux
//! is not installed (`.ci/run` installs it).

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(20);

pub(crate) struct Tmux {
    socket: PathBuf,
    /// Where the pane's shell writes the app's exit status: tmux can lose
    /// `pane_dead_status` when the pty closes before the child is reaped.
    status: PathBuf,
}

impl Tmux {
    /// Starts `args` of the built binary in a `width`×`height` pane, from
    /// the crate root; `None` when tmux is missing.
    pub(crate) fn start(test: &str, args: &[&str], width: u16, height: u16) -> Option<Tmux> {
        Tmux::start_env(test, &[], args, width, height)
    }

    /// As `start`, with `NAME=value` variables set for the app.
    pub(crate) fn start_env(
        test: &str,
        env: &[(&str, &str)],
        args: &[&str],
        width: u16,
        height: u16,
    ) -> Option<Tmux> {
        if Command::new("tmux").arg("-V").output().is_err() {
            eprintln!("skipping {test}: tmux is not installed (apt-get install tmux)");
            return None;
        }
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        let t = Tmux {
            socket: dir.join(format!("{test}.sock")),
            status: dir.join(format!("{test}.status")),
        };
        t.tm(&["kill-server"]);
        let _ = std::fs::remove_file(&t.status);
        let (w, h) = (width.to_string(), height.to_string());
        t.ok(&[
            "new-session",
            "-d",
            "-s",
            "e2e",
            "-x",
            &w,
            "-y",
            &h,
            "sleep 600",
        ]);
        t.ok(&["set-option", "-t", "e2e", "remain-on-exit", "on"]);
        let mut cmd: Vec<String> = env.iter().map(|(k, v)| format!("{k}='{v}'")).collect();
        if !cmd.is_empty() {
            cmd.insert(0, "env".to_string());
        }
        cmd.push(env!("CARGO_BIN_EXE_apimedic").to_string());
        cmd.extend(args.iter().map(|a| a.to_string()));
        // tmux runs the line with sh, which records the exit status.
        let line = format!("{}; echo $? > '{}'", cmd.join(" "), t.status.display());
        t.ok(&[
            "respawn-pane",
            "-k",
            "-c",
            env!("CARGO_MANIFEST_DIR"),
            "-t",
            "e2e",
            &line,
        ]);
        Some(t)
    }

    pub(crate) fn tm(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(["-f", "/dev/null"])
            .args(args)
            .output()
            .expect("run tmux")
    }

    pub(crate) fn ok(&self, args: &[&str]) {
        let out = self.tm(args);
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub(crate) fn screen(&self) -> String {
        String::from_utf8_lossy(&self.tm(&["capture-pane", "-p", "-t", "e2e"]).stdout).into_owned()
    }

    /// Polls until the screen shows `text`, failing with the screen at the deadline.
    pub(crate) fn wait_for(&self, text: &str) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let screen = self.screen();
            if screen.contains(text) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "no {text:?} on the screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Polls until `text` is gone from the screen.
    pub(crate) fn wait_gone(&self, text: &str) {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let screen = self.screen();
            if !screen.contains(text) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{text:?} stays on the screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Key names as tmux knows them: `Enter`, `Escape`, `j`…
    pub(crate) fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "e2e"];
        args.extend(keys);
        self.ok(&args);
    }

    /// Text typed as is.
    pub(crate) fn type_text(&self, text: &str) {
        self.ok(&["send-keys", "-t", "e2e", "-l", text]);
    }

    /// The app's exit status, once it has exited.
    pub(crate) fn wait_exit(&self) -> i32 {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Ok(text) = std::fs::read_to_string(&self.status)
                && let Ok(code) = text.trim().parse()
            {
                return code;
            }
            assert!(
                Instant::now() < deadline,
                "still running:\n{}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.tm(&["kill-server"]);
        let _ = std::fs::remove_file(&self.socket);
        let _ = std::fs::remove_file(&self.status);
    }
}

/// Open a scenario folder, go to the failing operation, see its finding;
/// help lists the keys; q exits 0.
#[test]
fn scenario_to_failing_operation_and_its_finding() {
    let Some(t) = Tmux::start(
        "tui_scenario",
        &["tui", "fixtures/scenarios/backend-oom"],
        120,
        40,
    ) else {
        return;
    };
    t.wait_for("Top findings");
    t.wait_for("UNHEALTHY");
    t.type_text(":ops");
    t.keys(&["Enter"]);
    t.wait_for("Operations (");
    t.type_text("/check-stock");
    t.keys(&["Enter"]);
    t.wait_for("/check-stock");
    t.keys(&["Enter"]);
    t.wait_for("Overview › Operations › inventory-api/check-stock");
    let screen = t.wait_for("Effective policy");
    let findings = screen
        .lines()
        .find(|l| l.contains("Findings ("))
        .unwrap_or_default()
        .to_string();
    assert!(
        !findings.contains("Findings (0)"),
        "no finding on the failing operation:\n{screen}"
    );
    assert!(
        screen.contains("CRIT") || screen.contains("HIGH"),
        "no severe finding shown:\n{screen}"
    );
    // Drill into the first finding: the findings view with its evidence.
    t.keys(&["Enter"]);
    t.wait_for("Evidence");
    t.keys(&["?"]);
    t.wait_for("Keys · Esc closes");
    t.wait_for("approve; live: ARM plan");
    // A lone Escape: sent together with the next key it would read as Alt.
    t.keys(&["Escape"]);
    t.wait_gone("Keys · Esc closes");
    t.keys(&["q"]);
    assert_eq!(t.wait_exit(), 0);
}

/// The demo starts without a folder, the time cursor moves, `:q` exits 0.
#[test]
fn demo_starts_steps_time_and_quits() {
    let Some(t) = Tmux::start("tui_demo", &["tui"], 80, 24) else {
        return;
    };
    t.wait_for("demo:");
    t.wait_for("Top findings");
    t.type_text("{");
    t.wait_for("▲");
    t.keys(&["0"]);
    t.type_text(":q");
    t.keys(&["Enter"]);
    assert_eq!(t.wait_exit(), 0);
}

/// `--readonly` hides the approve keys from help; a missing folder is an
/// error before the terminal is touched.
#[test]
fn readonly_hides_actions_and_a_missing_folder_fails_fast() {
    if let Some(t) = Tmux::start(
        "tui_readonly",
        &["tui", "--readonly", "fixtures/scenarios/backend-oom"],
        100,
        30,
    ) {
        t.wait_for("Top findings");
        t.keys(&["?"]);
        let screen = t.wait_for("Keys · Esc closes");
        assert!(!screen.contains("approve"), "{screen}");
        t.keys(&["Escape"]);
        t.wait_gone("Keys · Esc closes");
        t.keys(&["q"]);
        assert_eq!(t.wait_exit(), 0);
    }
    let out = Command::new(env!("CARGO_BIN_EXE_apimedic"))
        .args(["tui", "no/such/folder"])
        .output()
        .expect("run apimedic");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no/such/folder does not exist"), "{err}");
}

/// `--refresh` follows a live source: rows appended to the folder show up
/// without a restart (the top bar's time range grows).
#[test]
fn refresh_follows_a_live_folder() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("gateway.ndjson");
    let row = |minute: u32| {
        format!(
            "{{\"TimeGenerated\":\"2026-03-02T10:{minute:02}:05Z\",\"ApiId\":\"orders-api\",\"OperationId\":\"get-order\",\"ResponseCode\":200,\"BackendResponseCode\":200,\"TotalTime\":20,\"BackendTime\":15}}\n"
        )
    };
    let first: String = (0..5).map(row).collect();
    std::fs::write(&log, first).unwrap();
    let path = dir.path().to_str().unwrap().to_string();
    let Some(t) = Tmux::start("tui_refresh", &["tui", &path, "--refresh", "0.5"], 120, 40) else {
        return;
    };
    t.wait_for("10:00–10:04 UTC");
    let later: String = (30..33).map(row).collect();
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    std::io::Write::write_all(&mut f, later.as_bytes()).unwrap();
    t.wait_for("10:00–10:32 UTC");
    t.keys(&["q"]);
    assert_eq!(t.wait_exit(), 0);
}

/// The chat pane on the demo: `a` opens it, a question gets the offline
/// answer naming a demo backend, Esc goes back and `:chat` finds the
/// transcript kept.
#[test]
fn chat_pane_answers_about_the_demo_backends() {
    // --offline: an APIMEDIC_LLM_BASE_URL in the environment must not matter.
    let Some(t) = Tmux::start("tui_chat", &["tui", "--offline"], 80, 24) else {
        return;
    };
    t.wait_for("Top findings");
    t.keys(&["a"]);
    t.wait_for("Chat · offline · 0 questions");
    t.type_text("what backends does my instance have");
    t.wait_for("> what backends does my instance have");
    t.keys(&["Enter"]);
    let screen = t.wait_for("Chat · offline · 1 question");
    assert!(
        screen.contains("9 backends") && screen.contains("inventory-app"),
        "no answer naming the demo's backends:\n{screen}"
    );
    t.keys(&["Escape"]);
    t.wait_gone("Chat · offline");
    t.wait_for("Top findings");
    t.type_text(":chat");
    t.keys(&["Enter"]);
    t.wait_for("> what backends does my instance have");
    t.keys(&["Escape"]);
    t.wait_gone("Chat · offline");
    t.keys(&["q"]);
    assert_eq!(t.wait_exit(), 0);
}

/// A model that never answers holds up nothing: while the pane says
/// "thinking…" a second question is refused (the line kept), Esc goes back
/// and the dashboard moves; after the model's timeout the offline answer
/// arrives with a note, and the footer says where it is.
#[test]
fn a_silent_model_blocks_nothing() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let url = format!("http://{}/v1", listener.local_addr().expect("address"));
    // Accept connections and hold them open without a word.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming() {
            held.push(s);
        }
    });
    let Some(t) = Tmux::start(
        "tui_chat_silent",
        &[
            "tui",
            "--llm",
            "--llm-url",
            &url,
            "--llm-model",
            "silent",
            "--llm-timeout",
            "5",
            "--llm-steps",
            "1",
        ],
        100,
        30,
    ) else {
        return;
    };
    t.wait_for("Top findings");
    t.keys(&["a"]);
    t.wait_for("Chat · model silent · 0 questions");
    t.type_text("why is it slow?");
    t.keys(&["Enter"]);
    t.wait_for("thinking… (model silent)");
    t.type_text("second");
    t.keys(&["Enter"]);
    let screen = t.wait_for("still answering");
    assert!(screen.contains("> second"), "the line is kept:\n{screen}");
    t.keys(&["Escape"]);
    t.wait_gone("Chat · model silent");
    t.wait_for("chat: thinking…");
    t.type_text(":ops");
    t.keys(&["Enter"]);
    let screen = t.wait_for("Operations (");
    assert!(
        screen.contains("Overview › Operations"),
        "the dashboard moved while the model was silent:\n{screen}"
    );
    t.wait_for("the chat answer is in");
    t.keys(&["a"]);
    let screen = t.wait_for("Chat · model silent · 1 question");
    assert!(screen.contains("Note:"), "the fallback says so:\n{screen}");
    assert!(!screen.contains("thinking…"), "{screen}");
    t.keys(&["Escape"]);
    t.wait_gone("Chat · model silent");
    t.keys(&["q"]);
    assert_eq!(t.wait_exit(), 0);
}

/// Serves one streamed chat completion on loopback: `first` at once, the
/// rest once `release` fires. Returns the base URL.
fn stream_server(first: &'static str, rest: &'static str) -> (String, std::sync::mpsc::Sender<()>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let url = format!("http://{}/v1", listener.local_addr().expect("address"));
    let (release, wait) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        let Ok((mut tcp, _)) = listener.accept() else {
            return;
        };
        let mut reader = BufReader::new(&mut tcp);
        let mut length = 0usize;
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                break;
            }
            if let Some((k, v)) = line.split_once(':')
                && k.trim().eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0u8; length];
        let _ = reader.read_exact(&mut body);
        let chunk = |delta: serde_json::Value, finish: Option<&str>| {
            let c = serde_json::json!({"id": "c", "object": "chat.completion.chunk", "created": 0,
                "model": "streamer", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
            format!("data: {c}\n\n")
        };
        let mut out = String::from(
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\nconnection: close\r\n\r\n",
        );
        out.push_str(&chunk(
            serde_json::json!({"role": "assistant", "content": ""}),
            None,
        ));
        out.push_str(&chunk(serde_json::json!({"content": first}), None));
        let _ = tcp.write_all(out.as_bytes()).and_then(|_| tcp.flush());
        let _ = wait.recv();
        let mut out = chunk(serde_json::json!({"content": rest}), None);
        out.push_str(&chunk(serde_json::json!({}), Some("stop")));
        out.push_str("data: [DONE]\n\n");
        let _ = tcp.write_all(out.as_bytes()).and_then(|_| tcp.flush());
    });
    (url, release)
}

/// A model's answer shows in the pane as it is written: the first piece
/// with "thinking…" under it, then the whole answer as a turn.
#[test]
fn a_streamed_answer_shows_as_it_is_written() {
    let (url, release) = stream_server(
        "Backend inventory-app runs out of memory.\n",
        "Raise its memory limit, then restart it.",
    );
    let Some(t) = Tmux::start(
        "tui_chat_stream",
        &["tui", "--llm", "--llm-url", &url, "--llm-model", "streamer"],
        100,
        30,
    ) else {
        return;
    };
    t.wait_for("Top findings");
    t.keys(&["a"]);
    t.wait_for("Chat · model streamer · 0 questions");
    t.type_text("why is inventory failing?");
    t.keys(&["Enter"]);
    let screen = t.wait_for("Backend inventory-app runs out of memory.");
    assert!(
        screen.contains("thinking… (model streamer)"),
        "the first piece shows while the rest is written:\n{screen}"
    );
    assert!(!screen.contains("Raise its memory limit"), "{screen}");
    release.send(()).expect("the server waits");
    let screen = t.wait_for("Chat · model streamer · 1 question");
    assert!(
        screen.contains("Raise its memory limit, then restart it."),
        "{screen}"
    );
    assert!(!screen.contains("thinking…"), "{screen}");
    t.keys(&["Escape"]);
    t.wait_gone("Chat · model streamer");
    t.keys(&["q"]);
    assert_eq!(t.wait_exit(), 0);
}

/// `apimedic chat` on a terminal edits lines: Up recalls the last question,
/// the history survives a restart (in $XDG_STATE_HOME), Ctrl-C drops the
/// line being typed, Ctrl-D leaves with status 0.
#[test]
fn chat_repl_edits_lines_and_keeps_history() {
    let state = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("chat_repl_state");
    let _ = std::fs::remove_dir_all(&state);
    let state_s = state.display().to_string();
    let env = [("XDG_STATE_HOME", state_s.as_str())];
    let args = ["chat", "--offline"];
    let Some(t) = Tmux::start_env("chat_repl", &env, &args, 100, 30) else {
        return;
    };
    t.wait_for("/help for commands");
    t.type_text("what backends does my instance have");
    t.keys(&["Enter"]);
    t.wait_for("inventory-app");
    let prompt_line = |want: &str| {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let screen = t.screen();
            let last = screen.lines().rev().find(|l| !l.trim().is_empty());
            if last.map(str::trim_end) == Some(want) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the prompt line is not {want:?}:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    t.type_text("half a line");
    prompt_line("> half a line");
    // Ctrl-C drops the line (left on screen, as in a shell) for a fresh prompt.
    t.keys(&["C-c"]);
    prompt_line(">");
    t.keys(&["Up"]);
    prompt_line("> what backends does my instance have");
    t.keys(&["C-u", "C-d"]);
    assert_eq!(t.wait_exit(), 0);
    let saved = std::fs::read_to_string(state.join("apimedic/chat_history")).unwrap_or_default();
    assert!(
        saved.contains("what backends does my instance have"),
        "{saved}"
    );
    drop(t);
    // A new session finds the question in its history.
    let Some(t) = Tmux::start_env("chat_repl2", &env, &args, 100, 30) else {
        return;
    };
    t.wait_for("/help for commands");
    t.keys(&["Up"]);
    let screen = t.wait_for("> what backends does my instance have");
    assert!(!screen.contains("inventory-app"), "{screen}");
    t.keys(&["C-u", "C-d"]);
    assert_eq!(t.wait_exit(), 0);
}

/// The on-call flow: a finding → its request rows → a filter → copy the
/// row's correlation id (OSC 52, which tmux with `set-clipboard on` puts
/// in its paste buffer) → `:export` the rows → back.
#[test]
fn finding_to_its_rows_filter_and_copy() {
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("tui_rows_export.json");
    let _ = std::fs::remove_file(&out);
    let Some(t) = Tmux::start(
        "tui_rows",
        &["tui", "fixtures/scenarios/backend-oom"],
        120,
        40,
    ) else {
        return;
    };
    t.ok(&["set-option", "-g", "set-clipboard", "on"]);
    t.wait_for("Top findings");
    t.type_text(":findings");
    t.keys(&["Enter"]);
    let screen = t.wait_for("by story, cause first");
    // The first error spike in the list.
    let rows: Vec<&str> = screen
        .lines()
        .skip_while(|l| !l.contains("SEV  STORY"))
        .skip(1)
        .collect();
    let at = rows
        .iter()
        .position(|l| l.contains("error_spike"))
        .expect("an error spike in the list");
    for _ in 0..at {
        t.keys(&["j"]);
    }
    t.keys(&["l"]);
    let screen = t.wait_for("rows · by time");
    assert!(screen.contains("logs of finding"), "{screen}");
    t.wait_for("json:");
    t.keys(&["/"]);
    t.type_text("BackendConnectionFailure");
    t.keys(&["Enter"]);
    t.wait_for("Findings › logs of finding");
    t.wait_gone("scanning");
    let screen = t.wait_for("BackendConnecti");
    assert!(screen.contains("  /BackendConnectionFailure"), "{screen}");
    let time = regex::Regex::new(r"^│\d\d:\d\d:\d\d\.\d{3} ").expect("regex");
    let listed: Vec<&str> = screen.lines().filter(|l| time.is_match(l)).collect();
    assert!(!listed.is_empty(), "{screen}");
    assert!(
        listed.iter().all(|l| l.contains(" 502 ")),
        "only connection failures: {screen}"
    );
    t.keys(&["y"]);
    let screen = t.wait_for("copied ");
    let copied = screen
        .lines()
        .find_map(|l| l.split("copied ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the copied text")
        .to_string();
    assert_eq!(copied.len(), 36, "a correlation id: {copied}");
    let deadline = Instant::now() + DEADLINE;
    loop {
        let buffer = String::from_utf8_lossy(&t.tm(&["show-buffer"]).stdout).into_owned();
        if buffer.trim() == copied {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "tmux got no OSC 52 copy: {buffer:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    t.type_text(&format!(":export json {}", out.display()));
    t.keys(&["Enter"]);
    t.wait_for("rows to");
    let rows: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(&out).expect("written")).expect("JSON");
    assert!(!rows.is_empty());
    assert!(
        rows.iter()
            .all(|r| r["last_error_reason"] == "BackendConnectionFailure"),
        "{rows:?}"
    );
    assert!(rows.iter().any(|r| r["correlation_id"] == copied.as_str()));
    t.keys(&["Escape"]);
    t.wait_gone("/BackendConnectionFailure");
    t.keys(&["Escape"]);
    t.wait_for("by story, cause first");
    t.keys(&["q"]);
    assert_eq!(t.wait_exit(), 0);
    let _ = std::fs::remove_file(&out);
}

/// Time travel across a policy change: before the 10:58 write that cut
/// the timeout to 5 s, the analysis uses the 30 s policy of then (the
/// breadcrumbs say so) and reports nothing about a 5 s timeout; after it,
/// the 5 s timeout is judged again.
#[test]
fn time_travel_across_a_policy_change() {
    let Some(t) = Tmux::start(
        "tui_time_travel",
        &["tui", "fixtures/scenarios/policy-timeout"],
        120,
        40,
    ) else {
        return;
    };
    t.wait_for("Top findings");
    t.type_text(":findings");
    t.keys(&["Enter"]);
    t.wait_for("by story, cause first");
    t.keys(&["/"]);
    t.type_text("policy_risk");
    t.keys(&["Enter"]);
    t.wait_for("timeout 5 s");
    t.type_text(":time 2026-03-07 10:30");
    t.keys(&["Enter"]);
    let screen = t.wait_for("⟲ config as at the cursor: api:orders-api as before its 10:58 change");
    assert!(screen.contains("10:30 UTC of"), "{screen}");
    t.wait_gone("diagnosing");
    t.wait_gone("timeout 5 s");
    t.type_text(":time +60m");
    t.keys(&["Enter"]);
    t.wait_gone("⟲ config");
    t.wait_for("timeout 5 s");
    t.keys(&["0"]);
    t.wait_gone("UTC of");
    t.keys(&["q"]);
    assert_eq!(t.wait_exit(), 0);
}
