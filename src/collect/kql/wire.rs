//! The two answer shapes, parsed into one `Table` (pure; no I/O):
//! - Log Analytics: `{"tables":[{"name","columns":[{"name","type"}],"rows"}]}`,
//!   a `PartialError` beside the data in a 200, errors as
//!   `{"error":{"code","message","innererror"?}}`;
//! - Azure Data Explorer v2: a JSON array of frames (`DataSetHeader`,
//!   `DataTable` or `TableHeader` + `TableFragment`s + `TableCompletion`,
//!   `DataSetCompletion`), errors after the 200 in `OneApiErrors`.
//!
//! Every failure is an `AnswerError` saying what was wrong; the caller adds
//! which query it answered and what to do.

use serde_json::Value;

/// A column's declared type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub kind: String,
}

/// The primary result of one query.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Table {
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Value>>,
}

/// What went wrong with an answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AnswerError {
    /// The service refused the query (status, code, message).
    Refused {
        status: u16,
        code: String,
        message: String,
    },
    /// The answer carried an error beside (possibly partial) data.
    Partial { code: String, message: String },
    /// The result was cut at the service's row or size limit.
    Truncated { message: String },
    /// The body is not the documented shape.
    Malformed(String),
}

impl std::fmt::Display for AnswerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AnswerError::Refused {
                status,
                code,
                message,
            } => write!(f, "HTTP {status} {code}: {message}"),
            AnswerError::Partial { code, message } => {
                write!(f, "partial answer ({code}): {message}")
            }
            AnswerError::Truncated { message } => write!(f, "result truncated: {message}"),
            AnswerError::Malformed(m) => write!(f, "malformed answer: {m}"),
        }
    }
}

/// Whether an error text means the row/size limit cut the result.
fn is_truncation(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    t.contains("e_query_result_set_too_large")
        || t.contains("result set has exceeded")
        || t.contains("truncat")
        || t.contains("limitsexceeded")
        || t.contains("exceeded the internal record count limit")
}

/// The most specific message in a OneAPI error object (innermost first).
fn one_api_message(e: &Value) -> (String, String) {
    let e = e.get("error").unwrap_or(e);
    let code = e
        .get("code")
        .and_then(Value::as_str)
        .unwrap_or("Error")
        .to_string();
    let mut parts: Vec<String> = Vec::new();
    let mut push = |s: Option<&str>| {
        if let Some(s) = s.filter(|s| !s.is_empty())
            && !parts.iter().any(|p| p == s)
        {
            parts.push(s.to_string());
        }
    };
    // An error's message (Log Analytics also says `@message`) and those of
    // its `innererror` chain, 8 deep at most.
    let mut chain = |top: &Value| {
        push(top.get("message").and_then(Value::as_str));
        push(top.get("@message").and_then(Value::as_str));
        let mut inner = top.get("innererror");
        for _ in 0..8 {
            let Some(i) = inner else { break };
            push(i.get("message").and_then(Value::as_str));
            inner = i.get("innererror");
        }
    };
    chain(e);
    if let Some(details) = e.get("details").and_then(Value::as_array) {
        for d in details.iter().take(5) {
            chain(d);
        }
    }
    (code, parts.join(" — "))
}

/// An error body of a non-2xx answer (either service's), as a refusal.
pub fn refusal(status: u16, body: &[u8]) -> AnswerError {
    let (code, message) = match serde_json::from_slice::<Value>(body) {
        Ok(v) if v.get("error").is_some() || v.get("code").is_some() => one_api_message(&v),
        _ => {
            let text = String::from_utf8_lossy(body);
            let text: String = text.chars().take(300).collect();
            ("Error".to_string(), text.trim().to_string())
        }
    };
    AnswerError::Refused {
        status,
        code,
        message,
    }
}

fn columns_of(v: &Value, name_key: &str, type_key: &str) -> Result<Vec<Column>, AnswerError> {
    let cols = v
        .as_array()
        .ok_or_else(|| AnswerError::Malformed("columns is not a list".into()))?;
    cols.iter()
        .map(|c| {
            let name = c.get(name_key).and_then(Value::as_str);
            let kind = c
                .get(type_key)
                .or_else(|| c.get("DataType"))
                .and_then(Value::as_str);
            match (name, kind) {
                (Some(n), Some(k)) => Ok(Column {
                    name: n.to_string(),
                    kind: k.to_ascii_lowercase(),
                }),
                _ => Err(AnswerError::Malformed(format!(
                    "a column without {name_key}/{type_key}: {c}"
                ))),
            }
        })
        .collect()
}

fn rows_of(v: Option<&Value>, width: usize, into: &mut Vec<Vec<Value>>) -> Result<(), AnswerError> {
    let Some(rows) = v else {
        return Err(AnswerError::Malformed("a table without rows".into()));
    };
    let Value::Array(rows) = rows else {
        return Err(AnswerError::Malformed("rows is not a list".into()));
    };
    for (i, r) in rows.iter().enumerate() {
        match r {
            Value::Array(cells) if cells.len() == width => into.push(cells.clone()),
            Value::Array(cells) => {
                return Err(AnswerError::Malformed(format!(
                    "row {} has {} cells for {width} columns",
                    i + 1,
                    cells.len()
                )));
            }
            _ => {
                return Err(AnswerError::Malformed(format!(
                    "row {} is not a list",
                    i + 1
                )));
            }
        }
    }
    Ok(())
}

/// A Log Analytics 200 body. An empty body (the service's answer to a
/// missing Content-Type) is malformed; a `PartialError` is an error, even
/// with rows: the data would be incomplete.
pub fn log_analytics(body: &[u8]) -> Result<Table, AnswerError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(AnswerError::Malformed(
            "empty body (the service answers so when the request lacks a JSON body or Content-Type)"
                .into(),
        ));
    }
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| AnswerError::Malformed(format!("not JSON: {e}")))?;
    if let Some(err) = v.get("error").filter(|e| !e.is_null()) {
        let (code, message) = one_api_message(err);
        if is_truncation(&message) || is_truncation(&code) {
            return Err(AnswerError::Truncated { message });
        }
        return Err(AnswerError::Partial { code, message });
    }
    let tables = v
        .get("tables")
        .and_then(Value::as_array)
        .ok_or_else(|| AnswerError::Malformed("no `tables` list".into()))?;
    let t = tables
        .iter()
        .find(|t| t.get("name").and_then(Value::as_str) == Some("PrimaryResult"))
        .or_else(|| tables.first())
        .ok_or_else(|| AnswerError::Malformed("`tables` is empty".into()))?;
    let columns = columns_of(
        t.get("columns")
            .ok_or_else(|| AnswerError::Malformed("a table without columns".into()))?,
        "name",
        "type",
    )?;
    let mut rows = Vec::new();
    rows_of(t.get("rows"), columns.len(), &mut rows)?;
    Ok(Table { columns, rows })
}

/// An ADX v2 body (the whole frame array).
pub fn adx_v2(body: &[u8]) -> Result<Table, AnswerError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| AnswerError::Malformed(format!("not JSON: {e}")))?;
    let frames = v
        .as_array()
        .ok_or_else(|| AnswerError::Malformed("not a list of frames".into()))?;
    let mut primary: Option<(i64, Table)> = None;
    let mut done = false;
    let errors = |e: Option<&Value>| -> Option<AnswerError> {
        let list = e?.as_array()?;
        let first = list.first()?;
        let (code, message) = one_api_message(first);
        Some(if is_truncation(&message) || is_truncation(&code) {
            AnswerError::Truncated { message }
        } else {
            AnswerError::Partial { code, message }
        })
    };
    for f in frames {
        let kind = f.get("FrameType").and_then(Value::as_str).unwrap_or("");
        let table_id = f.get("TableId").and_then(Value::as_i64);
        let is_primary = f.get("TableKind").and_then(Value::as_str) == Some("PrimaryResult");
        match kind {
            "DataTable" if is_primary && primary.is_none() => {
                let columns = columns_of(
                    f.get("Columns")
                        .ok_or_else(|| AnswerError::Malformed("a table without Columns".into()))?,
                    "ColumnName",
                    "ColumnType",
                )?;
                let mut rows = Vec::new();
                rows_of(f.get("Rows"), columns.len(), &mut rows)?;
                primary = Some((table_id.unwrap_or(-1), Table { columns, rows }));
            }
            "TableHeader" if is_primary && primary.is_none() => {
                let columns = columns_of(
                    f.get("Columns")
                        .ok_or_else(|| AnswerError::Malformed("a table without Columns".into()))?,
                    "ColumnName",
                    "ColumnType",
                )?;
                primary = Some((
                    table_id.unwrap_or(-1),
                    Table {
                        columns,
                        rows: Vec::new(),
                    },
                ));
            }
            "TableFragment" => {
                if let Some((id, t)) = primary.as_mut()
                    && table_id == Some(*id)
                {
                    if f.get("TableFragmentType").and_then(Value::as_str) == Some("DataReplace") {
                        t.rows.clear();
                    }
                    let width = t.columns.len();
                    rows_of(f.get("Rows"), width, &mut t.rows)?;
                }
            }
            "TableCompletion" => {
                if primary
                    .as_ref()
                    .is_some_and(|(id, _)| table_id == Some(*id))
                    && let Some(e) = errors(f.get("OneApiErrors"))
                {
                    return Err(e);
                }
            }
            "DataSetCompletion" => {
                if f.get("Cancelled").and_then(Value::as_bool) == Some(true) {
                    return Err(AnswerError::Partial {
                        code: "Cancelled".into(),
                        message: "the query was cancelled before it completed".into(),
                    });
                }
                if f.get("HasErrors").and_then(Value::as_bool) == Some(true) {
                    return Err(
                        errors(f.get("OneApiErrors")).unwrap_or(AnswerError::Partial {
                            code: "HasErrors".into(),
                            message: "the service reported errors without details".into(),
                        }),
                    );
                }
                done = true;
            }
            _ => {}
        }
    }
    if !done {
        return Err(AnswerError::Truncated {
            message: "the frame list ended without DataSetCompletion".into(),
        });
    }
    primary
        .map(|(_, t)| t)
        .ok_or_else(|| AnswerError::Malformed("no PrimaryResult table".into()))
}

/// Typed reads of one table's columns, by name.
pub struct Reader<'a> {
    table: &'a Table,
}

/// A column missing or of the wrong type, or a cell that does not read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShapeError(pub String);

impl<'a> Reader<'a> {
    pub fn new(table: &'a Table) -> Self {
        Reader { table }
    }

    /// The index of a column of one of `kinds`.
    pub fn column(&self, name: &str, kinds: &[&str]) -> Result<usize, ShapeError> {
        let Some(i) = self.table.columns.iter().position(|c| c.name == name) else {
            let have: Vec<&str> = self.table.columns.iter().map(|c| c.name.as_str()).collect();
            return Err(ShapeError(format!(
                "column `{name}` is missing (the answer has: {})",
                have.join(", ")
            )));
        };
        let kind = &self.table.columns[i].kind;
        if !kinds.iter().any(|k| k == kind) {
            return Err(ShapeError(format!(
                "column `{name}` is of type {kind}, expected {}",
                kinds.join(" or ")
            )));
        }
        Ok(i)
    }
}

/// Integer column types (KQL names; ADX v2 and LA both lower-cased here).
pub const INTEGER: &[&str] = &["long", "int", "int64", "int32", "decimal", "real"];
pub const STRING: &[&str] = &["string"];
pub const DATETIME: &[&str] = &["datetime"];
pub const DYNAMIC: &[&str] = &["dynamic"];

/// A cell as a non-negative count: JSON numbers or (as the spec example
/// sends them) decimal strings.
pub fn count(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| *f >= 0.0 && f.fract() == 0.0)
                .map(|f| f as u64)
        }),
        Value::String(s) => s.trim().parse::<u64>().ok().or_else(|| {
            s.trim()
                .parse::<f64>()
                .ok()
                .filter(|f| *f >= 0.0 && f.fract() == 0.0)
                .map(|f| f as u64)
        }),
        _ => None,
    }
}

/// A cell as text: null is empty.
pub fn text(v: &Value) -> Option<&str> {
    match v {
        Value::String(s) => Some(s),
        Value::Null => Some(""),
        _ => None,
    }
}

/// A `dynamic` cell as a list: ADX sends it as JSON, Log Analytics as a
/// string holding JSON.
pub fn list(v: &Value) -> Option<Vec<Value>> {
    match v {
        Value::Array(a) => Some(a.clone()),
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Array(a)) => Some(a),
            _ => None,
        },
        Value::Null => Some(Vec::new()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus(name: &str) -> Value {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/corpus/azure-rest")
            .join(name);
        let text = std::fs::read_to_string(&path).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    fn body(name: &str) -> Vec<u8> {
        serde_json::to_vec(&corpus(name)["response"]["body"]).unwrap()
    }

    #[test]
    fn log_analytics_answers_read_in_both_encodings() {
        for name in ["la-query-200-doc.json", "la-query-200-spec.json"] {
            let t = log_analytics(&body(name)).unwrap();
            assert!(!t.rows.is_empty(), "{name}");
            assert!(
                t.columns
                    .iter()
                    .all(|c| c.kind == c.kind.to_ascii_lowercase())
            );
        }
        let t = log_analytics(&body("la-query-200-apim-pushdown-per-minute.json")).unwrap();
        let r = Reader::new(&t);
        assert!(r.column("TimeGenerated", DATETIME).is_ok());
        assert_eq!(count(&Value::String("1180".into())), Some(1180));
        assert_eq!(count(&serde_json::json!(3.0)), Some(3));
        assert_eq!(count(&serde_json::json!(-1)), None);
    }

    #[test]
    fn partial_errors_and_refusals_are_errors() {
        let e = log_analytics(&body("la-query-200-partial-error.json")).unwrap_err();
        assert!(matches!(e, AnswerError::Truncated { .. }), "{e:?}");
        assert!(e.to_string().contains("500000"), "{e}");
        let e = refusal(400, &body("la-query-400-syntax-error.json"));
        assert_eq!(
            e.to_string(),
            "HTTP 400 BadArgumentError: The request had some invalid properties — Syntax Error"
        );
        let e = refusal(400, &body("adx-v2-query-400-semantic-error.json"));
        assert!(
            e.to_string()
                .contains("Failed to resolve table expression named 'aaa'"),
            "{e}"
        );
        assert!(matches!(log_analytics(b""), Err(AnswerError::Malformed(_))));
        assert!(matches!(
            log_analytics(b"{\"tables\": 3}"),
            Err(AnswerError::Malformed(_))
        ));
        let e = refusal(502, b"<html>bad gateway</html>");
        assert!(e.to_string().contains("bad gateway"));
    }

    #[test]
    fn adx_frames_read_and_partial_failures_surface() {
        let t = adx_v2(&body("adx-v2-query-200-two-tables.json")).unwrap();
        assert!(!t.columns.is_empty());
        let e = adx_v2(&body("adx-v2-query-200-partial-error.json")).unwrap_err();
        assert!(
            matches!(
                e,
                AnswerError::Truncated { .. } | AnswerError::Partial { .. }
            ),
            "{e:?}"
        );
        // Cut before DataSetCompletion.
        let mut frames = corpus("adx-v2-query-200-two-tables.json")["response"]["body"].clone();
        frames.as_array_mut().unwrap().pop();
        let e = adx_v2(&serde_json::to_vec(&frames).unwrap()).unwrap_err();
        assert!(matches!(e, AnswerError::Truncated { .. }), "{e:?}");
    }

    #[test]
    fn columns_are_checked_by_name_and_type() {
        let t = Table {
            columns: vec![
                Column {
                    name: "requests".into(),
                    kind: "long".into(),
                },
                Column {
                    name: "ApiId".into(),
                    kind: "long".into(),
                },
            ],
            rows: vec![],
        };
        let r = Reader::new(&t);
        assert_eq!(r.column("requests", INTEGER), Ok(0));
        let e = r.column("ApiId", STRING).unwrap_err();
        assert_eq!(e.0, "column `ApiId` is of type long, expected string");
        let e = r.column("Minute", DATETIME).unwrap_err();
        assert!(
            e.0.contains("missing") && e.0.contains("requests, ApiId"),
            "{}",
            e.0
        );
        assert_eq!(list(&Value::String("[\"1:2\"]".into())).unwrap().len(), 1);
    }
}
