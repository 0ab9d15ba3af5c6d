//! View tests: buffers with the styles that carry meaning (severity,
//! health, selection, highlighted policy lines, NO_COLOR), every screen at
//! the smallest and largest supported size, and insta snapshots of every
//! view at 120×40 on the `backend-oom` scenario fixture.

use super::*;
use crate::model::{
    Diagnosis, Finding, FindingKind, Location, PolicyScope, Severity, Snapshot, Subject,
};
use crate::playbook::Playbooks;
use crate::tui::app::{self, App, Cmd, Msg, Screen};
use crate::tui::chat as chat_mod;
use crate::tui::data::{self, Loaded, PolicyText, PolicyView, Scoped};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::style::{Color, Modifier};
use std::path::Path;
use std::sync::Arc;

const SCENARIO: &str = "fixtures/scenarios/backend-oom";

fn app_with(snapshot: Snapshot, theme: Theme) -> App {
    app_named("test", snapshot, theme)
}

fn app_named(source: &str, snapshot: Snapshot, theme: Theme) -> App {
    let books = Playbooks::built_in();
    let (mut app, _) = App::new(source, theme, false, books.clone());
    let loaded = data::prepare(snapshot, &books);
    app::update(&mut app, Msg::Loaded(Ok(Box::new(loaded))));
    app
}

/// The scenario fixture, read through the real collectors; `None` (with a
/// message) where the folder is absent.
fn scenario_app(theme: Theme) -> Option<App> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(SCENARIO);
    if !dir.is_dir() {
        eprintln!("skipping: {SCENARIO} is absent");
        return None;
    }
    // A relative path keeps absolute folders out of the snapshots.
    let snapshot = crate::collect::collect(&[Path::new(SCENARIO).to_path_buf()])
        .or_else(|_| crate::collect::collect(&[dir]))
        .expect("the scenario fixture loads");
    Some(app_named(SCENARIO, snapshot, theme))
}

/// Applies a message and runs its commands synchronously, as the worker would.
fn send(app: &mut App, msg: Msg) {
    let snapshot: Arc<Snapshot> = app.loaded().map(|l| l.snapshot.clone()).unwrap_or_default();
    let mut queue = vec![msg];
    while let Some(m) = queue.pop() {
        match app::update(app, m) {
            Some(Cmd::Inspect { api, op, cursor }) => queue.push(Msg::Inspected(Box::new(
                data::policy_view_at(&snapshot, &mut None, &api, &op, cursor),
            ))),
            Some(Cmd::Diagnose { generation, cursor }) => queue.push(Msg::Scoped(Box::new(
                data::scope_in_time(&snapshot, &mut None, &app.playbooks, generation, cursor),
            ))),
            // As the logs thread would: the scenario's files (else none).
            Some(Cmd::Logs(job)) => {
                let source = (app.source == SCENARIO).then(|| {
                    crate::collect::rows::RowSource::Paths(vec![Path::new(SCENARIO).to_path_buf()])
                });
                let (jobs, rx) = std::sync::mpsc::channel();
                let (out, msgs) = std::sync::mpsc::channel();
                if let crate::tui::logs::LogsJob::Query { id, .. } = &job {
                    let id = *id;
                    jobs.send(job).expect("queued");
                    jobs.send(crate::tui::logs::LogsJob::Page {
                        id,
                        start: 0,
                        len: 300,
                    })
                    .expect("queued");
                } else {
                    continue;
                }
                drop(jobs);
                crate::tui::logs::serve(source, &rx, &out);
                let mut got: Vec<Msg> = msgs.try_iter().collect();
                got.reverse();
                queue.extend(got);
            }
            // As the chat thread would: offline, about the cursor's window.
            Some(Cmd::Chat(line, window)) => {
                let inst = crate::tools::Instance::new(snapshot.as_ref().clone(), &app.playbooks);
                let reply = crate::tui::chat::reply(
                    &mut crate::llm::Conversation {
                        window,
                        ..Default::default()
                    },
                    &inst,
                    &crate::llm::Assistant::Offline,
                    &line,
                    &mut |_| {},
                );
                queue.push(Msg::ChatAnswer(Box::new(reply)));
            }
            _ => {}
        }
    }
}

fn keys(app: &mut App, text: &str) {
    for c in text.chars() {
        let code = match c {
            '\n' => KeyCode::Enter,
            '\t' => KeyCode::Tab,
            '\u{1b}' => KeyCode::Esc,
            c => KeyCode::Char(c),
        };
        send(app, Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)));
    }
}

fn draw(app: &App, w: u16, h: u16) -> Terminal<TestBackend> {
    let mut term = Terminal::new(TestBackend::new(w, h)).expect("test terminal");
    term.draw(|f| f.render_widget(app, f.area())).expect("draw");
    term
}

fn text(term: &Terminal<TestBackend>) -> String {
    let buf = term.backend().buffer();
    let mut s = String::new();
    for y in 0..buf.area.height {
        for x in 0..buf.area.width {
            s.push_str(buf[(x, y)].symbol());
        }
        s.push('\n');
    }
    s
}

/// Selects the first row whose text contains `needle` in the focused list.
fn select(app: &mut App, needle: &str) {
    keys(app, "g");
    let n = app.list_len(app.crumb().focus);
    for _ in 0..n {
        if row_text(app).contains(needle) {
            return;
        }
        keys(app, "j");
    }
    panic!("no row with {needle:?} on {:?}", app.screen());
}

fn row_text(app: &App) -> String {
    let i = app.selected(app.crumb().focus);
    match app.screen() {
        Screen::Operations => app.op_rows().get(i).map(|r| app::op_text(r)),
        Screen::Backends => app
            .backend_rows()
            .get(i)
            .map(|b| format!("{} {}", b.id, b.operations.join(" "))),
        Screen::Findings | Screen::Overview => {
            app.finding_rows().get(i).map(|f| app::finding_text(f))
        }
        Screen::Backend { id } => app
            .backend_ops(id)
            .get(i)
            .map(|e| format!("{}/{}", e.api, e.operation)),
        _ => None,
    }
    .unwrap_or_default()
}

fn finding(kind: FindingKind, sev: Severity, subject: Subject, summary: &str) -> Finding {
    Finding::new(kind, sev, subject, summary)
}

#[test]
fn finding_rows_carry_their_severity_colour_and_the_selection() {
    let t = Theme::COLOR;
    let crit = finding(
        FindingKind::BackendUnhealthy,
        Severity::Critical,
        Subject::backend("inv-app"),
        "x",
    );
    let med = finding(
        FindingKind::ErrorSpike,
        Severity::Medium,
        Subject::operation("inv", "get"),
        "y",
    );
    let mut got = Buffer::empty(Rect::new(0, 0, 40, 2));
    let rows = vec![finding_line(&crit, t), finding_line(&med, t)];
    list_rows(rows, Some(1), true, t, got.area, &mut got);

    let mut want = Buffer::with_lines([
        "CRIT backend_unhealthy backend inv-app  ",
        "MED  error_spike inv/get                ",
    ]);
    want.set_style(Rect::new(0, 0, 4, 1), t.severity(Severity::Critical));
    want.set_style(Rect::new(23, 0, 15, 1), t.dim());
    want.set_style(Rect::new(0, 1, 4, 1), t.severity(Severity::Medium));
    want.set_style(Rect::new(17, 1, 7, 1), t.dim());
    want.set_style(Rect::new(0, 1, 40, 1), t.selected());
    assert_eq!(got, want);
}

#[test]
fn a_policy_line_a_finding_points_at_is_highlighted() {
    let t = Theme::COLOR;
    let view = PolicyView {
        api: "inv".into(),
        operation: "get".into(),
        summary: vec![],
        cursor: None,
        in_force: None,
        docs: vec![PolicyText {
            scope: PolicyScope::Api("inv".into()),
            file: "p.xml".into(),
            first_line: 1,
            lines: vec![
                "<backend>".into(),
                "  <forward-request timeout=\"5\" />".into(),
            ],
        }],
        key_lines: vec![("p.xml".into(), 2, "forward-request".into())],
    };
    let f = finding(
        FindingKind::BackendTimeout,
        Severity::High,
        Subject::operation("inv", "get"),
        "t",
    );
    let lines = operation::policy_lines(&view, &[&f], t);
    let mut got = Buffer::empty(Rect::new(0, 0, 44, 5));
    ratatui::widgets::Paragraph::new(lines).render(got.area, &mut got);

    let mut want = Buffer::with_lines([
        format!("{:<44}", "Lines findings point at"),
        format!("{:<44}", "▶ api:inv:2 <forward-request timeout=\"5\" />"),
        format!("{:<44}", "── api:inv  p.xml ──"),
        format!("{:<44}", "    1 <backend>"),
        format!("{:<44}", "▶   2   <forward-request timeout=\"5\" />"),
    ]);
    want.set_style(Rect::new(0, 0, 23, 1), t.header());
    want.set_style(Rect::new(0, 1, 43, 1), t.highlight(Severity::High));
    want.set_style(Rect::new(0, 2, 20, 1), t.header());
    want.set_style(Rect::new(0, 3, 6, 1), t.dim());
    want.set_style(Rect::new(0, 4, 39, 1), t.highlight(Severity::High));
    assert_eq!(got, want);

    // A lint finding with a location marks its own line.
    let lint = finding(
        FindingKind::PolicyRisk,
        Severity::Medium,
        Subject::policy(PolicyScope::Api("inv".into())),
        "r",
    )
    .location(Location {
        file: "p.xml".into(),
        line: Some(1),
        column: None,
    });
    let lines = operation::policy_lines(&view, &[&lint], t);
    assert_eq!(lines[1].to_string(), "▶ api:inv:1 <backend>");
    assert_eq!(lines[3].style, t.highlight(Severity::Medium));
    assert_eq!(lines[4].style, ratatui::style::Style::new());
}

#[test]
fn operations_table_colours_health_and_errors() {
    let t = Theme::COLOR;
    let mut app = app_with(data::tests::incident(), t);
    keys(&mut app, ":ops\n");
    let term = draw(&app, 100, 8);
    let buf = term.backend().buffer();
    let screen = text(&term);
    let row = screen
        .lines()
        .position(|l| l.contains("orders-api/get-order"))
        .expect("row");
    let line: &str = screen.lines().nth(row).unwrap_or("");
    let x_of = |needle: &str| {
        let byte = line.find(needle).expect(needle);
        line[..byte].chars().count() as u16
    };
    let hx = x_of("unhealthy");
    assert_eq!(buf[(hx, row as u16)].style().fg, Some(Color::Red));
    assert!(
        buf[(hx, row as u16)]
            .style()
            .add_modifier
            .contains(Modifier::REVERSED),
        "selected row"
    );
    let other = screen
        .lines()
        .position(|l| l.contains("orders-api/list-orders"))
        .expect("row");
    let line2 = screen.lines().nth(other).unwrap_or("");
    let hx2 = line2[..line2.find("healthy").unwrap()].chars().count() as u16;
    assert_eq!(buf[(hx2, other as u16)].style().fg, Some(Color::Green));
}

#[test]
fn no_color_draws_without_any_colour_but_keeps_the_selection_visible() {
    let mut app = app_with(data::tests::incident(), Theme::PLAIN);
    for cmd in [
        "",
        ":ops\n",
        ":ops\n\n",
        ":backends\n",
        ":findings\n",
        ":changes\n",
        "?",
        "\u{1b}:chat\nwhat backends does my instance have\n",
    ] {
        keys(&mut app, "\u{1b}\u{1b}\u{1b}");
        if app.overlay.is_some() {
            keys(&mut app, "\u{1b}");
        }
        keys(&mut app, cmd);
        let term = draw(&app, 120, 40);
        let buf = term.backend().buffer();
        let mut reversed = false;
        for cell in buf.content() {
            let s = cell.style();
            assert!(
                s.fg.is_none_or(|c| c == Color::Reset) && s.bg.is_none_or(|c| c == Color::Reset),
                "a colour under NO_COLOR after {cmd:?}: {s:?} at {:?}",
                cell.symbol()
            );
            reversed |= s.add_modifier.contains(Modifier::REVERSED);
        }
        assert!(
            reversed,
            "nothing reversed after {cmd:?}: selection and bars need it"
        );
    }
}

/// Every screen at the smallest and the largest supported size: drawn
/// without panicking, breadcrumbs and key hints visible.
#[test]
fn every_view_fits_80x24_and_250x70() {
    let mut app = app_with(data::tests::incident(), Theme::COLOR);
    let flows: [(&str, &str); 9] = [
        ("", "Overview"),
        (":ops\n", "Operations"),
        (":ops\n\n", "orders-api/get-order"),
        (":backends\n", "Backends"),
        (":backends\n\n", "backend orders-app"),
        (":findings\n", "Findings"),
        (":changes\n", "Changes"),
        ("?", "Keys"),
        // Last: in the chat pane `:ov` would be text.
        (
            ":chat\nwhat backends does my instance have\n",
            "> what backends does my instance have",
        ),
    ];
    for (cmd, want) in flows {
        app.overlay = None;
        keys(&mut app, ":ov\n");
        keys(&mut app, cmd);
        for (w, h) in [(80, 24), (250, 70), (120, 40)] {
            let screen = text(&draw(&app, w, h));
            assert!(
                screen.contains(want),
                "{w}x{h} after {cmd:?}: no {want:?}\n{screen}"
            );
            assert!(screen.contains("apimedic"), "{w}x{h}: no top bar\n{screen}");
        }
    }
}

#[test]
fn tiny_terminals_do_not_panic() {
    let mut app = app_with(data::tests::incident(), Theme::COLOR);
    for cmd in [
        "",
        ":ops\n\n",
        ":backends\n\n",
        ":findings\n",
        ":changes\n",
        "?",
        "\u{1b}:chat\nwhy are requests to orders-api failing?\n",
    ] {
        keys(&mut app, cmd);
        for (w, h) in [(1, 1), (10, 3), (30, 8), (79, 23), (2, 6), (3, 40)] {
            draw(&app, w, h);
        }
    }
}

#[test]
fn the_verdict_is_the_diagnosis_verdict() {
    // Nothing to judge: UNKNOWN, never drawn healthy green.
    let d = crate::model::Diagnosis::default();
    assert_eq!(verdict(&d), ("UNKNOWN", None));
    assert_ne!(
        verdict_style(Theme::COLOR, &d),
        Theme::COLOR.health(crate::model::Health::Healthy)
    );
    // Every scenario: the dashboard's word is the one `diagnose` computes.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/scenarios");
    let mut seen = std::collections::BTreeSet::new();
    for e in std::fs::read_dir(&root).unwrap().flatten() {
        if !e.path().is_dir() {
            continue;
        }
        let s = crate::collect::collect(&[e.path()]).unwrap();
        let want = crate::playbook::diagnose(&s, &Default::default(), &Playbooks::built_in())
            .verdict
            .state;
        seen.insert(want.as_str());
        let app = app_with(s, Theme::PLAIN);
        let screen = text(&draw(&app, 140, 40));
        let word = want.as_str().to_ascii_uppercase();
        assert!(
            screen
                .lines()
                .next()
                .unwrap_or("")
                .contains(&format!("● {word}")),
            "{}: want {word}\n{screen}",
            e.path().display()
        );
    }
    assert!(!seen.is_empty());
    // Recovered reads as such, with when.
    let mut d = crate::model::Diagnosis::default();
    d.verdict.state = crate::model::VerdictState::Recovered;
    d.verdict.recovered_at = Some(crate::model::Timestamp(3_600_000));
    assert_eq!(verdict(&d), ("RECOVERED", None));
    assert_eq!(
        verdict_detail(&d).as_deref(),
        Some("recovered at 01:00 UTC")
    );
}

#[test]
fn gauges_say_n_a_without_the_metric() {
    let mut app = app_with(Snapshot::default(), Theme::COLOR);
    if let app::Load::Ready(l) = &mut app.load {
        l.scoped = Scoped {
            diagnosis: Diagnosis::default(),
            ..Scoped::default()
        };
    }
    let screen = text(&draw(&app, 120, 40));
    assert!(screen.contains("capacity n/a"), "{screen}");
    // Nothing to judge from: never a false all-clear.
    assert!(screen.contains("UNKNOWN"), "{screen}");
    assert!(!screen.contains("HEALTHY"), "{screen}");
}

#[test]
fn loading_frame_snapshot() {
    let (app, _) = App::new("demo", Theme::COLOR, false, Playbooks::default());
    insta::assert_snapshot!("loading", draw(&app, 80, 24).backend());
}

#[test]
fn plan_dialog_shows_the_dry_run_and_the_decision() {
    let mut app = app_with(data::tests::incident(), Theme::COLOR);
    let l: &Loaded = app.loaded().expect("loaded");
    let with_plan = l
        .scoped
        .diagnosis
        .findings
        .iter()
        .position(|f| {
            l.scoped
                .diagnosis
                .proposals
                .iter()
                .any(|p| p.finding == f.id)
        })
        .expect("a finding with a proposal");
    keys(&mut app, ":findings\n");
    for _ in 0..with_plan {
        keys(&mut app, "j");
    }
    keys(&mut app, "p");
    let screen = text(&draw(&app, 120, 40));
    assert!(screen.contains("Remediation plan"), "{screen}");
    assert!(screen.contains("DRY RUN: nothing is changed."), "{screen}");
    keys(&mut app, "Ay");
    let screen = text(&draw(&app, 120, 40));
    assert!(
        screen.contains("approved (record only, not executed: folder data)"),
        "{screen}"
    );
}

#[test]
fn dry_run_describes_each_action() {
    use crate::model::{Action, Proposal, Risk};
    let p = |action| Proposal {
        id: "x-1".into(),
        finding: "x".into(),
        title: "t".into(),
        action,
        risk: Risk::Low,
        preconditions: vec![],
        steps: vec![],
        ..Proposal::default()
    };
    let s = Snapshot::default();
    let scale = dialog::dry_run(
        &p(Action::ScaleOut {
            units: 1,
            from: Some(2),
        }),
        &s,
    );
    assert_eq!(
        scale[1],
        "would scale the gateway from 2 to 3 unit(s) (sku capacity)"
    );
    let timeout = dialog::dry_run(
        &p(Action::SetTimeout {
            scope: PolicyScope::Api("a".into()),
            seconds: 11,
            from: Some(5),
        }),
        &s,
    );
    assert_eq!(
        timeout[1],
        "would set <forward-request timeout=\"11\" /> in the api:a policy (now 5 s)"
    );
    let manual = dialog::dry_run(
        &p(Action::Manual {
            steps: vec!["look".into()],
        }),
        &s,
    );
    assert_eq!(manual[2], "  - look");
}

// ---- insta snapshots on the scenario fixture (120×40) ----

fn snap(app: &App, name: &str) {
    let term = draw(app, 120, 40);
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(&regex::escape(env!("CARGO_MANIFEST_DIR")), "[CRATE]");
    settings.bind(|| insta::assert_snapshot!(name, term.backend()));
}

/// The failing operation of the scenario: the worst by 5xx rate.
fn failing_op(app: &App) -> (String, String) {
    let mut rows: Vec<_> = app.loaded().expect("loaded").scoped.ops.iter().collect();
    rows.sort_by(|a, b| b.error_percent().total_cmp(&a.error_percent()));
    let worst = rows.first().expect("the scenario has operations");
    assert!(worst.errors > 0, "the scenario has a failing operation");
    (worst.api.clone(), worst.operation.clone())
}

#[test]
fn snapshots_of_every_view_on_backend_oom() {
    let Some(mut app) = scenario_app(Theme::COLOR) else {
        return;
    };
    snap(&app, "backend_oom_overview");

    keys(&mut app, ":ops\n");
    snap(&app, "backend_oom_operations");

    let (api, op) = failing_op(&app);
    select(&mut app, &format!("{api}/{op}"));
    keys(&mut app, "\n");
    assert_eq!(
        app.screen(),
        &Screen::Operation {
            api: api.clone(),
            op: op.clone()
        }
    );
    snap(&app, "backend_oom_operation");

    keys(&mut app, ":backends\n");
    snap(&app, "backend_oom_backends");
    select(&mut app, &format!("{api}/{op}"));
    keys(&mut app, "\n");
    assert!(matches!(app.screen(), Screen::Backend { .. }));
    snap(&app, "backend_oom_backend");

    keys(&mut app, ":findings\n");
    snap(&app, "backend_oom_findings");
    keys(&mut app, "p");
    snap(&app, "backend_oom_plan");
    keys(&mut app, "\u{1b}");

    keys(&mut app, ":changes\n");
    snap(&app, "backend_oom_changes");

    keys(&mut app, ":ov\n?");
    snap(&app, "backend_oom_help");
    keys(&mut app, "\u{1b}");

    // Before the incident: the window ends before the first anomaly.
    let start = app
        .findings()
        .iter()
        .filter(|f| f.kind.is_anomaly())
        .filter_map(|f| f.window)
        .map(|w| w.start.minute())
        .min()
        .expect("an anomaly window");
    let hhmm = crate::model::Timestamp::from_minute(start - 15).hhmm();
    keys(&mut app, &format!(":time {hhmm}\n"));
    assert_eq!(app.cursor, Some(start - 15));
    snap(&app, "backend_oom_overview_before_incident");
    keys(&mut app, "0");
    assert_eq!(app.cursor, None);
}

#[test]
fn snapshots_of_the_logs_view_from_the_failing_finding() {
    let Some(mut app) = scenario_app(Theme::COLOR) else {
        return;
    };
    keys(&mut app, ":findings\ng");
    let at = app
        .finding_rows()
        .iter()
        .position(|f| f.kind == FindingKind::ErrorSpike)
        .expect("the spike");
    keys(&mut app, &"j".repeat(at));
    let f = app.current_finding().expect("the spike").clone();
    assert_eq!(f.kind, FindingKind::ErrorSpike);
    keys(&mut app, "l");
    assert!(matches!(app.screen(), Screen::Logs { .. }));
    let v = app.logs.clone().expect("the logs view");
    assert!(v.progress.done, "{:?}", v.progress);
    let c = app.request_count(&f.id);
    assert!(v.progress.matched > 0);
    assert_eq!(
        Some(v.progress.matched),
        c.map(|c| c.requests),
        "every request behind the finding is listed"
    );
    let first = v.row(0).expect("a row").as_ref().expect("readable");
    assert!(
        first.origin.to_string().contains(".ndjson:"),
        "{:?}",
        first.origin
    );
    snap(&app, "backend_oom_logs");
    insta::assert_snapshot!("backend_oom_logs_80x24", draw(&app, 80, 24).backend());
    // The filter narrows to the failing rows, in a new scan.
    keys(&mut app, "/ 5\\d\\d \n");
    let v = app.logs.clone().expect("the logs view");
    assert!(v.progress.matched > 0 && v.progress.matched < c.map_or(0, |c| c.requests));
    let screen = text(&draw(&app, 120, 40));
    assert!(screen.contains("/ 5\\d\\d "), "{screen}");
    for i in 0..v.page.len().min(20) {
        let r = v.row(i).unwrap().as_ref().unwrap();
        assert!((500..600).contains(&r.response_code), "{r:?}");
    }
    // Esc clears the filter (all rows again), then goes back.
    keys(&mut app, "\u{1b}");
    assert_eq!(
        app.logs.as_ref().unwrap().progress.matched,
        c.map_or(0, |c| c.requests)
    );
    keys(&mut app, "\u{1b}");
    assert_eq!(app.screen(), &Screen::Findings);
}

/// The past judged by the past: before the policy change that shortened
/// the timeout, the timeout in force was 30 s, so nothing is "at risk"
/// for it; with all data the 5 s timeout is a finding again.
#[test]
fn time_travel_before_a_policy_change_uses_the_policy_of_then() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/scenarios/policy-timeout");
    if !dir.is_dir() {
        eprintln!("skipping: policy-timeout is absent");
        return;
    }
    let snapshot = crate::collect::collect(&[dir]).expect("loads");
    let mut app = app_with(snapshot, Theme::PLAIN);
    // A finding judging the 5 s timeout (APIM050 or any other).
    let apim050 = |app: &App| {
        app.findings()
            .iter()
            .any(|f| f.summary.contains("timeout 5 s") || f.summary.contains("timeout of 5 s"))
    };
    assert!(
        apim050(&app),
        "the 5 s timeout is a risk with today's policy"
    );
    keys(&mut app, ":time 10:30\n");
    assert!(app.cursor.is_some());
    assert!(
        !apim050(&app),
        "before the change the timeout was 30 s: {:?}",
        app.findings()
            .iter()
            .map(|f| &f.summary)
            .collect::<Vec<_>>()
    );
    let screen = text(&draw(&app, 120, 40));
    assert!(
        screen.contains("⟲ config as at the cursor: api:orders-api as before its 10:58 change"),
        "{screen}"
    );
    keys(&mut app, ":time 11:30\n");
    assert!(
        apim050(&app),
        "after the change the 5 s timeout is in force"
    );
    let screen = text(&draw(&app, 120, 40));
    assert!(!screen.contains("⟲ config"), "{screen}");
    keys(&mut app, "0");
    assert!(apim050(&app));
}

#[test]
fn logs_without_files_say_so() {
    let mut app = app_with(data::tests::incident(), Theme::PLAIN);
    keys(&mut app, ":ops\nl");
    let screen = text(&draw(&app, 80, 24));
    assert!(screen.contains("no files to read rows from"), "{screen}");
    assert!(screen.contains("logs of orders-api/"), "{screen}");
}

#[test]
fn the_verdict_stays_whole_at_80_columns_and_the_path_is_shortened() {
    let mut s = data::tests::incident();
    s.loaded.demo = None;
    let app = app_named(
        "/srv/exports/2026-03-06/contoso-prod-westeurope/apim/very-long-folder-name",
        s,
        Theme::PLAIN,
    );
    let screen = text(&draw(&app, 80, 24));
    let top = screen.lines().next().unwrap();
    assert!(top.contains("● UNHEALTHY"), "{top}");
    assert!(top.contains("…/"), "{top}");
    assert!(top.contains("UTC"), "{top}");
}

#[test]
fn multi_day_data_shows_dates_on_the_axis_and_in_the_findings() {
    let mut s = data::tests::incident();
    // Shift the traffic so it crosses midnight: 23:40 → 00:39.
    let shift = {
        let (first, _) = s.traffic.minute_range().unwrap();
        (first.div_euclid(1440) * 1440 + 1440 - 20) - first
    };
    for series in &mut s.traffic.series {
        series.minutes = std::mem::take(&mut series.minutes)
            .into_iter()
            .map(|(m, st)| (m + shift, st))
            .collect();
    }
    s.loaded.time_range = None;
    let mut app = app_with(s, Theme::PLAIN);
    let screen = text(&draw(&app, 120, 40));
    let (first, last) = app.range().unwrap();
    let d0 = crate::model::Timestamp::from_minute(first).to_rfc3339();
    let d1 = crate::model::Timestamp::from_minute(last).to_rfc3339();
    assert!(
        screen.contains(&format!("{} 23:40", &d0[5..10])),
        "{screen}"
    );
    assert!(
        screen.contains(&format!("{} 00:39", &d1[5..10])),
        "{screen}"
    );
    assert!(
        screen.contains(&format!("{} 00:39 UTC", &d1[..10])),
        "{screen}"
    );
    keys(&mut app, ":findings\n");
    let screen = text(&draw(&app, 120, 40));
    assert!(screen.contains(&d1[5..10]), "{screen}");
}

/// Issue #12.1: one row twenty years before the incident. Every series
/// the views chart is on the grid (at most `MAX_POINTS` points, days here),
/// not seven million minutes; the overview, operation and backend views
/// draw the incident's spike at the right end with the years on the axis;
/// the time cursor still steps by one minute within the data.
#[test]
fn rows_twenty_years_apart_keep_every_chart_bounded() {
    let mut s = data::tests::incident();
    let (first, last) = s.traffic.minute_range().unwrap();
    let long_ago = first - 20 * 365 * 1440;
    let r = crate::model::Request {
        time: crate::model::Timestamp::from_minute(long_ago),
        api_id: "orders-api",
        operation_id: "get-order",
        backend_id: "orders-app",
        response_code: 200,
        total_time_ms: 40,
        ..crate::model::Request::default()
    };
    s.traffic
        .add(&r, || crate::model::Origin::at_line("logs/old.csv", 2));
    s.loaded.time_range = None;
    let mut app = app_with(s, Theme::PLAIN);
    assert_eq!(app.range(), Some((long_ago, last)));
    let l = app.loaded().unwrap();
    assert!(l.grid.len <= data::MAX_POINTS, "{:?}", l.grid);
    assert_eq!(l.grid.step, 1440, "{:?}", l.grid);
    assert_eq!(l.total.len(), l.grid.len);
    // The incident's hour is one day's point: its busiest minute's rates.
    let end = l.total.last().unwrap();
    assert_eq!(end.requests, 40);
    assert_eq!(end.error_percent, Some(30.0));
    assert_eq!(l.total[0].requests, 1);

    let screen = text(&draw(&app, 120, 40));
    let year = |m: crate::model::Minute| crate::model::Timestamp::from_minute(m).to_rfc3339();
    assert!(screen.contains(&year(long_ago)[..10]), "{screen}");
    assert!(screen.contains(&year(last)[..10]), "{screen}");
    assert!(screen.contains('━'), "the spike is marked: {screen}");

    keys(&mut app, "[");
    assert_eq!(app.cursor, Some(last - 1));
    keys(&mut app, "[");
    assert_eq!(app.cursor, Some(last - 2));
    let screen = text(&draw(&app, 120, 40));
    assert!(screen.contains('▲'), "the cursor is drawn: {screen}");

    keys(&mut app, ":ops\n");
    select(&mut app, "orders-api/get-order");
    keys(&mut app, "\n");
    assert!(matches!(app.screen(), Screen::Operation { .. }));
    let screen = text(&draw(&app, 120, 40));
    assert!(screen.contains("requests/min"), "{screen}");
    assert!(screen.contains(&year(long_ago)[..10]), "{screen}");

    keys(&mut app, ":backends\n");
    select(&mut app, "orders-api/get-order");
    keys(&mut app, "\n");
    assert!(matches!(app.screen(), Screen::Backend { .. }));
    let screen = text(&draw(&app, 120, 40));
    assert!(screen.contains(&year(long_ago)[..10]), "{screen}");
}

#[test]
fn operations_show_4xx_and_429_beside_5xx() {
    let mut app = app_with(data::tests::incident(), Theme::PLAIN);
    keys(&mut app, ":ops\n");
    let screen = text(&draw(&app, 120, 40));
    assert!(screen.contains("4XX") && screen.contains("429"), "{screen}");
    keys(&mut app, ":backends\n");
    let screen = text(&draw(&app, 120, 40));
    assert!(screen.contains("orders-app.internal"), "{screen}");
    assert!(screen.contains("orders-api/get-order✗"), "{screen}");
    assert!(
        screen.contains("unhealthy 1/2") && !screen.contains("list-orders✗"),
        "only the failing route is unhealthy: {screen}"
    );
}

#[test]
fn snapshot_of_the_overview_at_80x24() {
    let Some(app) = scenario_app(Theme::COLOR) else {
        return;
    };
    insta::assert_snapshot!("backend_oom_overview_80x24", draw(&app, 80, 24).backend());
}

#[test]
fn scenario_evidence_names_raw_records_with_file_and_line() {
    let Some(mut app) = scenario_app(Theme::COLOR) else {
        return;
    };
    keys(&mut app, ":findings\n");
    let f = app
        .finding_rows()
        .into_iter()
        .find(|f| f.kind == FindingKind::ErrorSpike)
        .expect("a finding")
        .clone();
    let lines = findings::detail_lines(&app, &f);
    let all: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    assert!(all.iter().any(|l| l == "Evidence"), "{all:#?}");
    let located = regex::Regex::new(r"\S+\.\w+:\d+").expect("regex");
    assert!(
        all.iter().any(|l| located.is_match(l)),
        "no file:line in {all:#?}"
    );
}

// ---- the chat pane ----

#[test]
fn wrap_breaks_at_spaces_keeps_spacing_and_hangs_continuations() {
    use chat::wrap;
    assert_eq!(wrap("aaa bbb ccc", 7, 0), ["aaa bbb", "ccc"]);
    assert_eq!(wrap("abcdefghij", 4, 0), ["abcd", "efgh", "ij"]);
    assert_eq!(wrap("- one two three", 9, 2), ["- one two", "  three"]);
    assert_eq!(wrap("a  b   c", 10, 0), ["a  b   c"]);
    assert_eq!(wrap("    [id] x", 80, 4), ["    [id] x"]);
    assert_eq!(wrap("", 5, 0), [""]);
    assert_eq!(wrap("   ", 5, 0), [""]);
    assert_eq!(wrap("a\tb", 10, 0), ["a    b"]);
    assert_eq!(
        wrap("x abcdefgh", 4, 2),
        ["x", "  ab", "  cd", "  ef", "  gh"]
    );
    let text = "9 backends. - inventory-app (single https://inventory-app.kindsea-7d1e42.westeurope.azurecontainerapps.io): unhealthy; 285 requests, 40 5xx (14.0%) — søk";
    for width in 1..60 {
        for hang in [0, 2, 4] {
            let rows = wrap(text, width, hang);
            for r in &rows {
                assert!(
                    ratatui::text::Span::raw(r.as_str()).width() <= width.max(1),
                    "{width}/{hang}: {r:?} in {rows:?}"
                );
            }
            let words = |s: &str| s.split_whitespace().collect::<String>();
            assert_eq!(
                words(&rows.join(" ")),
                words(text),
                "nothing lost at {width}"
            );
        }
    }
}

#[test]
fn chat_transcript_styles_the_question_the_note_and_the_caveats() {
    use crate::llm::Answer;
    use crate::tui::chat::Entry;
    let t = Theme::COLOR;
    let mut app = app_with(data::tests::incident(), t);
    app.chat.entries = vec![
        Entry::Asked("why?".into()),
        Entry::Answer(Box::new(Answer {
            text: "orders-app fails 58% of requests".into(),
            checked: vec!["logs".into()],
            unchecked: vec!["probes".into()],
            confidence: "low".into(),
            note: Some("model down".into()),
            ..Answer::default()
        })),
    ];
    let (lines, starts) = chat::transcript_lines(&app, 20);
    assert_eq!(starts, [0, 1]);
    let mut got = Buffer::empty(Rect::new(0, 0, 20, lines.len() as u16));
    ratatui::widgets::Paragraph::new(lines).render(got.area, &mut got);
    let mut want = Buffer::with_lines([
        "> why?              ",
        "Note: model down    ",
        "orders-app fails 58%",
        "of requests         ",
        "Checked: logs       ",
        "Could not check:    ",
        "probes              ",
        "Confidence: low     ",
    ]);
    want.set_style(Rect::new(0, 0, 2, 1), t.cursor());
    want.set_style(Rect::new(2, 0, 4, 1), t.title());
    want.set_style(Rect::new(0, 1, 16, 1), t.note());
    want.set_style(Rect::new(0, 4, 9, 1), t.dim());
    want.set_style(Rect::new(0, 5, 16, 1), t.note());
    want.set_style(Rect::new(0, 7, 12, 1), t.dim());
    assert_eq!(got, want);
}

#[test]
fn chat_pane_shows_thinking_the_stream_and_the_cursor() {
    let t = Theme::COLOR;
    let mut app = app_with(data::tests::incident(), t);
    app.chat.engine = "model qwen".into();
    keys(&mut app, "a");
    for c in "why slow".chars() {
        app::update(
            &mut app,
            Msg::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)),
        );
    }
    // Sent without running it: the answer stays pending.
    let cmd = app::update(
        &mut app,
        Msg::Key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)),
    );
    assert_eq!(cmd, Some(Cmd::Chat("why slow".into(), None)));
    app::update(&mut app, Msg::ChatDelta("The p95 of orders-api".into()));
    keys(&mut app, "next");
    let term = draw(&app, 80, 24);
    let screen = text(&term);
    assert!(screen.contains("Overview › Chat"), "{screen}");
    assert!(screen.contains("> why slow"), "{screen}");
    assert!(screen.contains("The p95 of orders-api"), "{screen}");
    assert!(screen.contains("thinking… (model qwen)"), "{screen}");
    assert!(
        screen.contains("Chat · model qwen · 0 questions"),
        "{screen}"
    );
    // The input line: `> next` and the cursor cell after it, reversed.
    let buf = term.backend().buffer();
    let row = screen
        .lines()
        .position(|l| l.contains("│> next"))
        .expect("the input line") as u16;
    let cursor = buf[(1 + 6, row)].style();
    assert!(
        cursor.add_modifier.contains(Modifier::REVERSED),
        "{cursor:?}"
    );
    assert_eq!(
        buf[(1, row)].style().fg,
        Some(Color::Yellow),
        "the prompt mark"
    );
}

#[test]
fn a_long_answer_is_read_from_its_question_down_and_scrolls() {
    let mut app = app_with(data::tests::incident(), Theme::PLAIN);
    keys(
        &mut app,
        ":chat\n/help\nwhat backends does my instance have\n",
    );
    let screen = text(&draw(&app, 80, 12));
    assert!(
        screen.contains("> what backends does my instance have"),
        "the newest question heads the view:\n{screen}"
    );
    assert!(!screen.contains("> /help"), "{screen}");
    keys(&mut app, "\u{1b}");
    app.chat.view.offset = -chat_mod::PAGE;
    keys(&mut app, "a");
    let screen = text(&draw(&app, 80, 12));
    assert!(
        screen.contains("Commands:"),
        "PgUp shows the help above:\n{screen}"
    );
    let long = "word ".repeat(400);
    app.chat.entries.push(crate::tui::chat::Entry::Text(long));
    app.chat.view = Default::default();
    let screen = text(&draw(&app, 80, 12));
    assert!(
        screen.contains("lines "),
        "a position once it overflows:\n{screen}"
    );
}

#[test]
fn the_chat_answers_about_the_cursors_window_and_its_title_says_which() {
    let mut app = app_with(data::tests::incident(), Theme::COLOR);
    keys(&mut app, "[a");
    let w = app.cursor_window().expect("the cursor selects a window");
    assert_eq!(w.end, Timestamp::from_minute(app.cursor.unwrap() + 1));
    let screen = text(&draw(&app, 120, 30));
    let title = format!(
        "answers cover the time window {}–{} UTC",
        w.start.hhmm(),
        w.end.hhmm()
    );
    assert!(screen.contains(&title), "{screen}");
    keys(&mut app, "why");
    let cmd = app::update(
        &mut app,
        Msg::Key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)),
    );
    assert_eq!(cmd, Some(Cmd::Chat("why".into(), Some(w))));
    keys(&mut app, "\u{1b}0a");
    let screen = text(&draw(&app, 120, 30));
    assert!(
        !screen.contains("answers cover the time window"),
        "{screen}"
    );
    assert_eq!(app.cursor_window(), None, "all data again");
}

#[test]
fn a_long_input_line_keeps_the_cursor_in_view() {
    let mut app = app_with(data::tests::incident(), Theme::PLAIN);
    keys(&mut app, "a");
    keys(&mut app, &format!("START{}END", "x".repeat(200)));
    let input_row = |screen: &str| {
        screen
            .lines()
            .find(|l| l.starts_with("│> "))
            .unwrap_or_default()
            .to_string()
    };
    let row = input_row(&text(&draw(&app, 80, 24)));
    assert!(row.contains("xEND │"), "{row}");
    assert!(!row.contains("START"), "{row}");
    app::update(
        &mut app,
        Msg::Key(KeyEvent::new(KeyCode::Home, KeyModifiers::NONE)),
    );
    let row = input_row(&text(&draw(&app, 80, 24)));
    assert!(row.starts_with("│> START"), "{row}");
    assert!(!row.contains("END"), "{row}");
    keys(&mut app, "語");
    let row = input_row(&text(&draw(&app, 80, 24)));
    // A wide letter takes two cells (the second reads as blank here).
    assert!(row.starts_with("│> 語") && row.contains("START"), "{row}");
    assert_eq!(row.chars().last(), Some('│'), "the border is intact: {row}");
}

fn demo_app() -> App {
    let mut snapshot = crate::collect::collect_files(&crate::simulate::demo_files());
    snapshot.loaded.demo = Some(crate::simulate::DEMO.0.name().to_string());
    app_named("demo", snapshot, Theme::COLOR)
}

#[test]
fn snapshots_of_the_chat_pane_on_the_demo() {
    let mut app = demo_app();
    keys(&mut app, "a");
    insta::assert_snapshot!("demo_chat_welcome_80x24", draw(&app, 80, 24).backend());
    keys(&mut app, "what backends does my instance have\n");
    let screen = text(&draw(&app, 80, 24));
    assert!(screen.contains("inventory-app"), "{screen}");
    insta::assert_snapshot!("demo_chat_80x24", draw(&app, 80, 24).backend());
    keys(&mut app, "why are requests to inventory-api failing?\n");
    insta::assert_snapshot!("demo_chat_120x40", draw(&app, 120, 40).backend());
}
