//! The logs view's data: which request rows a finding, an operation or a
//! backend stands for (`LogQuery`), and the logs thread that finds them.
//!
//! The collected snapshot keeps per-minute aggregates and a few samples,
//! not rows, so the logs thread scans the source again (`collect::rows`)
//! for the rows of the query's subject and window (and `/` filter), and
//! keeps only where each one is plus its sort keys: 40 bytes a row, never
//! the rows themselves. The screen asks for pages of the rows around the
//! selection; they are read back from the files on demand. A newer query
//! stops the scan it replaces; progress (rows matched so far) streams to
//! the screen while the scan runs.

use super::app::{Filter, Msg};
use crate::collect::rows::{Catalog, Loc, RowSource};
use crate::model::{Request, RequestRecord, Window, url_host};
use std::io::Write;
use std::sync::mpsc::{Receiver, Sender, TryRecvError};
use std::time::{Duration, Instant};

/// Columns the rows sort by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogColumn {
    Time,
    Status,
    Total,
    Backend,
}

impl LogColumn {
    pub const ALL: [LogColumn; 4] = [
        LogColumn::Time,
        LogColumn::Status,
        LogColumn::Total,
        LogColumn::Backend,
    ];

    pub fn name(self) -> &'static str {
        match self {
            LogColumn::Time => "time",
            LogColumn::Status => "status",
            LogColumn::Total => "total",
            LogColumn::Backend => "backend",
        }
    }

    pub fn parse(s: &str) -> Option<LogColumn> {
        match s.trim().to_ascii_lowercase().as_str() {
            "time" | "t" => Some(LogColumn::Time),
            "status" | "code" | "st" => Some(LogColumn::Status),
            "total" | "totaltime" | "ms" | "latency" => Some(LogColumn::Total),
            "backend" | "backendtime" | "be" => Some(LogColumn::Backend),
            _ => None,
        }
    }
}

/// The rows' order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogSort {
    pub column: LogColumn,
    pub descending: bool,
}

impl Default for LogSort {
    fn default() -> Self {
        LogSort {
            column: LogColumn::Time,
            descending: false,
        }
    }
}

/// Which rows: a subject, a window and a filter. Everything absent matches.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogQuery {
    /// What the rows are of, for the title: `finding …`, `api/op`, `backend …`.
    pub title: String,
    pub api: Option<String>,
    pub operation: Option<String>,
    /// A backend entity id: rows whose `BackendId` is it, or whose
    /// `BackendUrl` host is one of `hosts` (its URL's host).
    pub backend: Option<String>,
    pub hosts: Vec<String>,
    pub window: Option<Window>,
    /// The `/` filter as typed (`!` inverts), matched against [`row_text`].
    pub filter: Option<String>,
}

fn same(a: &Option<String>, b: &str) -> bool {
    a.as_deref().is_none_or(|a| a.eq_ignore_ascii_case(b))
}

impl LogQuery {
    /// Subject and window (the filter needs the row's text: [`row_text`]).
    pub fn matches(&self, r: &Request<'_>) -> bool {
        if let Some(w) = &self.window
            && !w.contains(r.time)
        {
            return false;
        }
        if !same(&self.api, r.api_id) || !same(&self.operation, r.operation_id) {
            return false;
        }
        match &self.backend {
            None => true,
            Some(b) => {
                r.backend_id.eq_ignore_ascii_case(b)
                    || r.backend_key().eq_ignore_ascii_case(b)
                    || (r.backend_id.is_empty() && {
                        let host = url_host(r.backend_url);
                        !host.is_empty() && self.hosts.iter().any(|h| h.eq_ignore_ascii_case(host))
                    })
            }
        }
    }
}

/// The text `/` matches in the logs view: every column shown, and the
/// correlation id, backend URL and error message.
pub fn row_text(r: &RequestRecord) -> String {
    let s = |o: &Option<String>| o.clone().unwrap_or_default();
    format!(
        "{} {} {} {} {} {} {}ms {}ms {} {} {} {} {}",
        r.time,
        s(&r.method),
        s(&r.url),
        r.response_code,
        s(&r.last_error_reason),
        s(&r.last_error_message),
        r.total_time_ms,
        r.backend_time_ms.map(|b| b.to_string()).unwrap_or_default(),
        r.origin,
        s(&r.correlation_id),
        s(&r.backend_url),
        r.api_id,
        r.operation_id,
    )
}

/// What the logs thread is asked to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogsJob {
    /// Find the rows of a query (stops a running scan).
    Query {
        id: u64,
        query: LogQuery,
        sort: LogSort,
    },
    /// Send rows `start..start + len` of query `id` in the current order.
    Page { id: u64, start: usize, len: usize },
    /// Reorder the rows of query `id`.
    Sort { id: u64, sort: LogSort },
    /// Write every row of query `id` to a file (`json`: one JSON array;
    /// `md`: a Markdown table).
    Export {
        id: u64,
        path: String,
        markdown: bool,
    },
}

/// How a scan stands.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogsProgress {
    pub id: u64,
    pub matched: u64,
    /// Rows read so far (all subjects).
    pub scanned: u64,
    /// Records that are not rows (each was reported when the data loaded).
    pub bad: u64,
    pub done: bool,
    /// Files holding rows that cannot be listed, with why.
    pub unlisted: Vec<String>,
    /// Why the scan could not finish (I/O), if so.
    pub error: Option<String>,
}

/// Some rows of a query, read back from the files.
#[derive(Clone, Debug, PartialEq)]
pub struct LogsPage {
    pub id: u64,
    pub start: usize,
    pub rows: Vec<Result<RequestRecord, String>>,
}

/// A row as it may be shown or written: secrets in its URLs and error
/// message (a `subscription-key` in a query string…) replaced by the one
/// redaction every output uses.
fn scrubbed(row: Result<RequestRecord, String>) -> Result<RequestRecord, String> {
    use crate::model::redact::scrub;
    row.map(|mut r| {
        for s in [&mut r.url, &mut r.backend_url, &mut r.last_error_message]
            .into_iter()
            .flatten()
        {
            *s = scrub(s);
        }
        r
    })
    .map_err(|e| scrub(&e))
}

/// Rows sent with a query's results before any page is asked for (the
/// screen counts the page at row 0 as asked for when it opens).
pub const FIRST_PAGE: usize = 300;

/// One row found: its sort keys and its place (40 bytes).
#[derive(Clone, Copy, Debug)]
struct Entry {
    time: i64,
    total: u32,
    backend: u32,
    status: u16,
    loc: Loc,
}

fn sort_entries(rows: &mut [Entry], sort: LogSort) {
    let key = |e: &Entry| -> i64 {
        match sort.column {
            LogColumn::Time => e.time,
            LogColumn::Status => i64::from(e.status),
            LogColumn::Total => i64::from(e.total),
            LogColumn::Backend => i64::from(e.backend),
        }
    };
    // Ties in time then file order, so equal keys read in a stable order.
    rows.sort_by(|a, b| {
        let ord = key(a).cmp(&key(b));
        let ord = if sort.descending { ord.reverse() } else { ord };
        ord.then(a.time.cmp(&b.time)).then(a.loc.cmp(&b.loc))
    });
}

/// The logs thread: serves jobs until every sender is gone. Without a
/// source (tests, data from elsewhere) every query ends at once, empty,
/// with an error saying why.
pub fn serve(source: Option<RowSource>, rx: &Receiver<LogsJob>, out: &Sender<Msg>) {
    let mut state = State::default();
    let mut pending: Option<LogsJob> = None;
    loop {
        let job = match pending.take() {
            Some(j) => j,
            None => match rx.recv() {
                Ok(j) => j,
                Err(_) => return,
            },
        };
        let go = match job {
            LogsJob::Query { id, query, sort } => {
                // The first page goes out with the rows, unasked.
                state = State {
                    id,
                    sort,
                    want: (0, FIRST_PAGE),
                    ..State::default()
                };
                match &source {
                    None => {
                        let p = LogsProgress {
                            id,
                            done: true,
                            error: Some("no files to read rows from".into()),
                            ..LogsProgress::default()
                        };
                        out.send(Msg::LogsProgress(p)).is_ok()
                    }
                    Some(src) => scan(&mut state, src, query, rx, out, &mut pending),
                }
            }
            LogsJob::Page { id, start, len } if id == state.id => {
                state.want = (start, len);
                state.send_page(out)
            }
            LogsJob::Sort { id, sort } if id == state.id => {
                state.sort = sort;
                sort_entries(&mut state.rows, sort);
                state.send_page(out)
            }
            LogsJob::Export { id, path, markdown } if id == state.id => {
                let msg = match state.export(&path, markdown) {
                    Ok(n) => Msg::Written(Ok(format!("wrote {n} rows to {path}"))),
                    Err(e) => Msg::Written(Err(format!("cannot write {path}: {e}"))),
                };
                out.send(msg).is_ok()
            }
            // For a query that is no longer the current one.
            LogsJob::Page { .. } | LogsJob::Sort { .. } | LogsJob::Export { .. } => true,
        };
        if !go {
            return;
        }
    }
}

#[derive(Default)]
struct State {
    id: u64,
    sort: LogSort,
    catalog: Option<Catalog>,
    rows: Vec<Entry>,
    /// The page last asked for.
    want: (usize, usize),
}

impl State {
    fn send_page(&self, out: &Sender<Msg>) -> bool {
        let (start, len) = self.want;
        let Some(cat) = self.catalog.as_ref().filter(|_| len > 0) else {
            return true;
        };
        let end = start.saturating_add(len).min(self.rows.len());
        let locs: Vec<Loc> = self
            .rows
            .get(start.min(end)..end)
            .unwrap_or_default()
            .iter()
            .map(|e| e.loc)
            .collect();
        let rows = cat.read(&locs).into_iter().map(scrubbed).collect();
        out.send(Msg::LogsPage(Box::new(LogsPage {
            id: self.id,
            start,
            rows,
        })))
        .is_ok()
    }

    fn export(&self, path: &str, markdown: bool) -> std::io::Result<usize> {
        let cat = self
            .catalog
            .as_ref()
            .ok_or_else(|| std::io::Error::other("the rows are not found yet"))?;
        let mut w = std::io::BufWriter::new(std::fs::File::create(path)?);
        if markdown {
            writeln!(
                w,
                "| time | method | url | status | reason | total ms | backend ms | correlation id | at |"
            )?;
            writeln!(w, "|---|---|---|---|---|---|---|---|---|")?;
        } else {
            writeln!(w, "[")?;
        }
        let mut n = 0usize;
        for chunk in self.rows.chunks(1000) {
            let locs: Vec<Loc> = chunk.iter().map(|e| e.loc).collect();
            for row in cat.read(&locs) {
                let r = scrubbed(row).map_err(std::io::Error::other)?;
                if markdown {
                    let cell = |s: &str| s.replace('|', "\\|");
                    let o = |s: &Option<String>| cell(s.as_deref().unwrap_or(""));
                    writeln!(
                        w,
                        "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                        r.time,
                        o(&r.method),
                        o(&r.url),
                        r.response_code,
                        o(&r.last_error_reason),
                        r.total_time_ms,
                        r.backend_time_ms.map(|b| b.to_string()).unwrap_or_default(),
                        o(&r.correlation_id),
                        cell(&r.origin.to_string()),
                    )?;
                } else {
                    if n > 0 {
                        writeln!(w, ",")?;
                    }
                    serde_json::to_writer(&mut w, &r)?;
                }
                n += 1;
            }
        }
        if !markdown {
            writeln!(w, "\n]")?;
        }
        w.flush()?;
        Ok(n)
    }
}

/// Scans every log file for the query's rows. Between blocks of rows it
/// answers page requests from what is found so far and sends progress; a
/// new query (or the UI gone) stops it. Returns false when the UI is gone.
fn scan(
    state: &mut State,
    source: &RowSource,
    query: LogQuery,
    rx: &Receiver<LogsJob>,
    out: &Sender<Msg>,
    pending: &mut Option<LogsJob>,
) -> bool {
    let catalog = Catalog::open(source);
    let filter = query.filter.as_deref().and_then(|f| Filter::parse(f).ok());
    let mut progress = LogsProgress {
        id: state.id,
        unlisted: catalog
            .unlisted
            .iter()
            .map(|p| format!("{}: {}", p.origin, p.message))
            .collect(),
        ..LogsProgress::default()
    };
    state.catalog = Some(catalog);
    let mut last_sent = Instant::now();
    let mut stop = false;
    let mut gone = false;
    let files = state.catalog.as_ref().map_or(0, |c| c.files.len());
    for i in 0..files {
        let Some(cat) = state.catalog.take() else {
            break;
        };
        let rows = &mut state.rows;
        let result = cat.scan(i, &mut |loc, row| {
            progress.scanned += 1;
            match row {
                Ok(r) if query.matches(r) => {
                    let keep = filter
                        .as_ref()
                        .is_none_or(|f| f.keeps(&row_text(&r.to_record(cat.origin(&loc)))));
                    if keep {
                        rows.push(Entry {
                            time: r.time.millis(),
                            total: r.total_time_ms,
                            backend: r.backend_time_ms.unwrap_or(0),
                            status: r.response_code,
                            loc,
                        });
                        progress.matched += 1;
                    }
                }
                Ok(_) => {}
                Err(_) => progress.bad += 1,
            }
            if progress.scanned.is_multiple_of(8192) {
                // Jobs that arrived meanwhile: a new query stops this scan.
                loop {
                    match rx.try_recv() {
                        Ok(LogsJob::Page { id, start, len }) if id == state.id => {
                            state.want = (start, len)
                        }
                        Ok(LogsJob::Sort { id, sort }) if id == state.id => state.sort = sort,
                        Ok(job @ LogsJob::Query { .. }) => {
                            *pending = Some(job);
                            stop = true;
                        }
                        Ok(_) => {}
                        Err(TryRecvError::Empty) => break,
                        Err(TryRecvError::Disconnected) => {
                            gone = true;
                            stop = true;
                            break;
                        }
                    }
                }
                if !stop && last_sent.elapsed() >= Duration::from_millis(200) {
                    last_sent = Instant::now();
                    gone = out.send(Msg::LogsProgress(progress.clone())).is_err();
                    stop = gone;
                }
            }
            !stop
        });
        if let Err(e) = result {
            progress.error = Some(format!(
                "{}: {e}; the rows before it are listed",
                cat.files[i].name
            ));
        }
        state.catalog = Some(cat);
        if stop {
            break;
        }
        // The first rows show while the rest are scanned (file order).
        if !state.rows.is_empty() && last_sent.elapsed() >= Duration::from_millis(200) {
            last_sent = Instant::now();
            if out.send(Msg::LogsProgress(progress.clone())).is_err() || !state.send_page(out) {
                return false;
            }
        }
    }
    if gone {
        return false;
    }
    if pending.is_some() {
        return true;
    }
    sort_entries(&mut state.rows, state.sort);
    progress.done = true;
    out.send(Msg::LogsProgress(progress)).is_ok() && state.send_page(out)
}

/// `y`: the text copied to the clipboard with OSC 52 (base64 inside the
/// escape sequence; terminals and tmux with `set-clipboard on` take it).
pub fn osc52(text: &str) -> String {
    format!("\x1b]52;c;{}\x07", base64(text.as_bytes()))
}

fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(c.get(1).copied().unwrap_or(0)) << 8)
            | u32::from(c.get(2).copied().unwrap_or(0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::mpsc::channel;

    #[test]
    fn rows_shown_carry_no_secret() {
        let r = RequestRecord {
            url: Some("https://gw/orders?subscription-key=0123456789abcdef0123456789abcdef".into()),
            ..RequestRecord::default()
        };
        let shown = scrubbed(Ok(r)).unwrap();
        let url = shown.url.unwrap();
        assert!(!url.contains("0123456789abcdef"), "{url}");
        assert!(
            url.starts_with("https://gw/orders?subscription-key="),
            "{url}"
        );
    }

    #[test]
    fn base64_matches_the_rfc_examples() {
        for (plain, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), enc, "{plain}");
        }
        assert_eq!(osc52("hi"), "\x1b]52;c;aGk=\x07");
    }

    fn line(second: u32, code: u16, op: &str, backend_url: &str, total: u32) -> String {
        format!(
            "{{\"TimeGenerated\":\"2024-05-18T06:{:02}:{:02}Z\",\"ResponseCode\":{code},\"ApiId\":\"orders-api\",\"OperationId\":\"{op}\",\"BackendUrl\":\"{backend_url}\",\"TotalTime\":{total},\"CorrelationId\":\"c{second}\"}}\n",
            40 + second / 60,
            second % 60
        )
    }

    fn source() -> RowSource {
        let mut text = String::new();
        for s in 0..600u32 {
            let (code, op) = if s % 10 == 0 {
                (503, "get-order")
            } else {
                (200, "list-orders")
            };
            text.push_str(&line(s, code, op, "https://orders-app.internal/x", s));
        }
        text.push_str(&line(600, 429, "get-order", "https://other.internal/x", 1));
        RowSource::Memory(Arc::new(vec![("logs/a.ndjson".into(), text.into_bytes())]))
    }

    fn run(jobs: Vec<LogsJob>) -> Vec<Msg> {
        let (tx, rx) = channel();
        let (otx, orx) = channel();
        for j in jobs {
            tx.send(j).unwrap();
        }
        drop(tx);
        serve(Some(source()), &rx, &otx);
        orx.try_iter().collect()
    }

    fn last_page(msgs: &[Msg]) -> &LogsPage {
        msgs.iter()
            .rev()
            .find_map(|m| match m {
                Msg::LogsPage(p) => Some(p.as_ref()),
                _ => None,
            })
            .expect("a page")
    }

    fn done(msgs: &[Msg]) -> &LogsProgress {
        msgs.iter()
            .rev()
            .find_map(|m| match m {
                Msg::LogsProgress(p) if p.done => Some(p),
                _ => None,
            })
            .expect("done")
    }

    #[test]
    fn a_query_finds_the_subjects_rows_in_its_window_and_pages_them() {
        let query = LogQuery {
            title: "t".into(),
            api: Some("ORDERS-API".into()),
            operation: Some("get-order".into()),
            ..LogQuery::default()
        };
        let msgs = run(vec![
            LogsJob::Query {
                id: 1,
                query: query.clone(),
                sort: LogSort::default(),
            },
            LogsJob::Page {
                id: 1,
                start: 0,
                len: 5,
            },
        ]);
        let p = done(&msgs);
        assert_eq!((p.matched, p.scanned, p.bad), (61, 601, 0));
        let page = last_page(&msgs);
        assert_eq!(page.rows.len(), 5);
        let first = page.rows[0].as_ref().unwrap();
        assert_eq!(first.correlation_id.as_deref(), Some("c0"));
        assert_eq!(first.origin.to_string(), "logs/a.ndjson:1");
        let second = page.rows[1].as_ref().unwrap();
        assert_eq!(second.origin.to_string(), "logs/a.ndjson:11");
        // The window: the minutes 06:41 and 06:42 hold seconds 60..180.
        let t0 = first.time.minute();
        let msgs = run(vec![LogsJob::Query {
            id: 2,
            query: LogQuery {
                window: Some(Window::minutes(t0 + 1, t0 + 3)),
                ..query
            },
            sort: LogSort::default(),
        }]);
        assert_eq!(done(&msgs).matched, 12);
    }

    #[test]
    fn backend_rows_match_by_id_or_url_host_and_filters_and_sorts_apply() {
        let query = LogQuery {
            backend: Some("orders-app".into()),
            hosts: vec!["orders-app.internal".into()],
            filter: Some("get-order".into()),
            ..LogQuery::default()
        };
        let msgs = run(vec![
            LogsJob::Query {
                id: 7,
                query,
                sort: LogSort {
                    column: LogColumn::Total,
                    descending: true,
                },
            },
            LogsJob::Page {
                id: 7,
                start: 0,
                len: 100,
            },
        ]);
        let p = done(&msgs);
        assert_eq!(p.matched, 60, "503s only; the 429 went to another host");
        let page = last_page(&msgs);
        let totals: Vec<u32> = page
            .rows
            .iter()
            .map(|r| r.as_ref().unwrap().total_time_ms)
            .collect();
        assert_eq!(totals.first(), Some(&590));
        assert!(totals.windows(2).all(|w| w[0] >= w[1]), "{totals:?}");
        // Reordering does not scan again.
        let msgs = run(vec![
            LogsJob::Query {
                id: 8,
                query: LogQuery::default(),
                sort: LogSort::default(),
            },
            LogsJob::Sort {
                id: 8,
                sort: LogSort {
                    column: LogColumn::Status,
                    descending: true,
                },
            },
            LogsJob::Page {
                id: 8,
                start: 0,
                len: 2,
            },
        ]);
        let page = last_page(&msgs);
        let codes: Vec<u16> = page
            .rows
            .iter()
            .map(|r| r.as_ref().unwrap().response_code)
            .collect();
        assert_eq!(codes, vec![503, 503]);
        assert_eq!(done(&msgs).matched, 601);
    }

    #[test]
    fn pages_of_a_replaced_query_are_not_sent() {
        let msgs = run(vec![
            LogsJob::Query {
                id: 1,
                query: LogQuery::default(),
                sort: LogSort::default(),
            },
            LogsJob::Query {
                id: 2,
                query: LogQuery {
                    operation: Some("get-order".into()),
                    ..LogQuery::default()
                },
                sort: LogSort::default(),
            },
            LogsJob::Page {
                id: 1,
                start: 0,
                len: 10,
            },
        ]);
        let p = done(&msgs);
        assert_eq!((p.id, p.matched), (2, 61));
        let last_done = msgs
            .iter()
            .rposition(|m| matches!(m, Msg::LogsProgress(p) if p.done))
            .unwrap();
        assert!(
            msgs[last_done..]
                .iter()
                .all(|m| !matches!(m, Msg::LogsPage(p) if p.id == 1)),
            "the page asked for the replaced query is not read"
        );
        assert_eq!(last_page(&msgs).id, 2, "the new query's first page");
    }

    #[test]
    fn export_writes_every_row_as_json_or_markdown() {
        let dir = std::env::temp_dir().join(format!("apimedic-logs-export-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let json = dir.join("rows.json").display().to_string();
        let md = dir.join("rows.md").display().to_string();
        let query = LogQuery {
            operation: Some("get-order".into()),
            ..LogQuery::default()
        };
        let msgs = run(vec![
            LogsJob::Query {
                id: 3,
                query,
                sort: LogSort::default(),
            },
            LogsJob::Export {
                id: 3,
                path: json.clone(),
                markdown: false,
            },
            LogsJob::Export {
                id: 3,
                path: md.clone(),
                markdown: true,
            },
        ]);
        let said: Vec<&String> = msgs
            .iter()
            .filter_map(|m| match m {
                Msg::Written(Ok(t)) => Some(t),
                _ => None,
            })
            .collect();
        assert_eq!(said.len(), 2, "{msgs:?}");
        assert!(said[0].starts_with("wrote 61 rows"), "{said:?}");
        let rows: Vec<serde_json::Value> =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        assert_eq!(rows.len(), 61);
        assert_eq!(rows[0]["origin"]["line"], 1);
        let text = std::fs::read_to_string(&md).unwrap();
        assert_eq!(text.lines().count(), 63);
        assert!(text.contains("| 503 |"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Peak resident memory since the last reset (VmHWM), in MB; the
    /// reset (`5` to `clear_refs`) makes each phase's peak its own.
    fn peak_mb(reset: bool) -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let kb = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0);
        if reset {
            let _ = std::fs::write("/proc/self/clear_refs", "5");
        }
        kb / 1024
    }

    /// Not a correctness test: the logs thread over the file named by
    /// APIMEDIC_BENCH_FILE, as the view drives it (benches/logs_view.sh
    /// runs it). Prints, per phase, the wall time and the peak resident
    /// memory of the phase: the index of every row (one 40-byte entry a
    /// row, sorted by time), a page from the middle, a re-sort, the rows
    /// of one operation, and a `/` filter rescan (APIMEDIC_BENCH_FILTER,
    /// default `tent`), each row formatted and matched.
    #[test]
    #[ignore = "benchmark: set APIMEDIC_BENCH_FILE; run by benches/logs_view.sh"]
    fn bench_logs_view() {
        let Ok(path) = std::env::var("APIMEDIC_BENCH_FILE") else {
            eprintln!("skipping: APIMEDIC_BENCH_FILE is not set");
            return;
        };
        let filter = std::env::var("APIMEDIC_BENCH_FILTER").unwrap_or_else(|_| "tent".into());
        let (tx, rx) = channel();
        let (otx, orx) = channel();
        let source = RowSource::Paths(vec![path.clone().into()]);
        let worker = std::thread::spawn(move || serve(Some(source), &rx, &otx));
        peak_mb(true);
        let mut rows = 0u64;
        let mut phase = |name: &str, job: LogsJob, wait_done: bool| -> LogsProgress {
            let id = match &job {
                LogsJob::Query { id, .. } | LogsJob::Page { id, .. } | LogsJob::Sort { id, .. } => {
                    *id
                }
                LogsJob::Export { id, .. } => *id,
            };
            let start = std::time::Instant::now();
            tx.send(job).unwrap();
            let mut progress = None;
            loop {
                match orx.recv().expect("the logs thread answers") {
                    Msg::LogsProgress(p) if p.id == id && p.done => {
                        progress = Some(p);
                        if !wait_done {
                            break;
                        }
                    }
                    Msg::LogsPage(p) if p.id == id && (!wait_done || progress.is_some()) => {
                        assert!(!p.rows.is_empty(), "{name}: an empty page");
                        break;
                    }
                    _ => {}
                }
            }
            let wall = start.elapsed().as_secs_f64();
            let p = progress.unwrap_or_default();
            if p.scanned > 0 {
                rows = p.scanned;
            }
            let matched = if p.scanned > 0 {
                format!("matched {:>9} of {rows}", p.matched)
            } else {
                String::new()
            };
            eprintln!(
                "{name:<34} wall {wall:7.3} s   peak RSS {:5} MB   {matched}",
                peak_mb(true)
            );
            p
        };
        let all = phase(
            "index of every row (time order)",
            LogsJob::Query {
                id: 1,
                query: LogQuery::default(),
                sort: LogSort::default(),
            },
            true,
        );
        assert!(all.matched > 0 && all.error.is_none(), "{all:?}");
        phase(
            "page of 300 from the middle",
            LogsJob::Page {
                id: 1,
                start: all.matched as usize / 2,
                len: FIRST_PAGE,
            },
            false,
        );
        phase(
            "re-sort by total time",
            LogsJob::Sort {
                id: 1,
                sort: LogSort {
                    column: LogColumn::Total,
                    descending: true,
                },
            },
            false,
        );
        phase(
            "rows of one operation",
            LogsJob::Query {
                id: 2,
                query: LogQuery {
                    api: Some("catalog-api".into()),
                    operation: Some("search-products".into()),
                    ..LogQuery::default()
                },
                sort: LogSort::default(),
            },
            true,
        );
        phase(
            &format!("`/{filter}` rescan of every row"),
            LogsJob::Query {
                id: 3,
                query: LogQuery {
                    filter: Some(filter.clone()),
                    ..LogQuery::default()
                },
                sort: LogSort::default(),
            },
            true,
        );
        drop(tx);
        worker.join().unwrap();
    }
}
