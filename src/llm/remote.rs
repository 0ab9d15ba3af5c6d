//! The tool-calling loop with a model: prepared context first, then at most
//! `max_steps` round trips in which the model may call the read-only tools.
//! Guards: a token budget on what is sent and on each reply, an overall
//! deadline, per-tool output caps, identical calls answered from memory,
//! malformed arguments answered with the parse error, unknown tools
//! (anything that would act) refused, and a final summary forced when a
//! limit is hit. Every message passes through one `Redactor`, then
//! `prompt::defang` (chat-template tokens in data are escaped). Replies are streamed when configured: their text goes to
//! `on_text` as it is written, restored and shaped by `stream::Shaper`.
//! When the endpoint fails, the offline answer is returned with a note
//! saying why.

use super::client::{ClientError, Completion, ModelClient, RemoteConfig};
use super::prompt;
use super::stream::Shaper;
use super::{Answer, Entities, offline};
use crate::model::redact::Redactor;
use crate::tools::{Instance, Tool};
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// Answers through the model, or offline with a note when it fails.
/// `on_text` gets the model's answer in pieces; they add up to the returned
/// answer's `text`. When the model fails, the offline answer is returned
/// (its note says why) and `on_text` has seen only what the model wrote
/// before it failed, often nothing.
pub async fn ask(
    cfg: &RemoteConfig,
    inst: &Instance,
    question: &str,
    previous: Option<&Entities>,
    on_text: &mut dyn FnMut(&str),
) -> Answer {
    let fallback = super::scrub_answer(offline::answer_in_context(inst, question, previous));
    let mut shown = false;
    let mut emit = |t: &str| {
        if !t.is_empty() {
            shown = true;
            on_text(t);
        }
    };
    let result = match tokio::time::timeout(
        cfg.deadline,
        converse(cfg, inst, question, &fallback, &mut emit),
    )
    .await
    {
        Ok(r) => r,
        Err(_) => Err(ClientError::Deadline(cfg.deadline)),
    };
    match result {
        Ok(a) => a,
        Err(e) => {
            let mut a = fallback;
            let when = if shown {
                " part-way through its answer"
            } else {
                ""
            };
            a.note = Some(format!(
                "the model at {} failed{when} ({e}); this is the offline answer",
                cfg.base_url
            ));
            a
        }
    }
}

/// One request, streamed or whole; its text goes through the shaper.
async fn request(
    client: &ModelClient,
    cfg: &RemoteConfig,
    body: &Value,
    shaper: &mut Shaper,
    redactor: &Redactor,
    emit: &mut dyn FnMut(&str),
) -> Result<Completion, ClientError> {
    let restore = |t: &str| redactor.restore(t);
    let offers_tools = body.get("tools").is_some();
    shaper.begin_step(offers_tools);
    let reply = if cfg.stream {
        let mut on_delta = |d: &str| emit(&shaper.push(d, &restore));
        client.complete_streaming(body, &mut on_delta).await?
    } else {
        let reply = client.complete(body).await?;
        emit(&shaper.push(reply.content.as_deref().unwrap_or(""), &restore));
        reply
    };
    let answer = reply.tool_calls.is_empty() || !offers_tools;
    emit(&shaper.end_step(answer, &restore));
    Ok(reply)
}

async fn converse(
    cfg: &RemoteConfig,
    inst: &Instance,
    question: &str,
    offline_answer: &Answer,
    emit: &mut dyn FnMut(&str),
) -> Result<Answer, ClientError> {
    let client = ModelClient::new(cfg)?;
    let mut redactor = Redactor::new(cfg.mask);
    let mut shaper = Shaper::default();
    let mut messages = vec![
        json!({"role": "system", "content": prompt::SYSTEM}),
        json!({"role": "user", "content": prompt::defang(&redactor.redact(&prompt::user_message(inst, offline_answer, question)))}),
    ];
    let tools = prompt::tools_json();
    let mut seen: BTreeSet<(String, String)> = BTreeSet::new();
    let mut used: Vec<String> = Vec::new();
    let mut refused: Vec<String> = Vec::new();
    let mut malformed: Vec<String> = Vec::new();
    let mut limit: Option<&str> = None;
    let mut answered = false;
    let mut cut = false;
    let steps = cfg.max_steps.max(1);
    for step in 0..steps {
        if prompt::estimate_tokens(&messages) > cfg.token_budget {
            limit = Some("token budget");
            break;
        }
        let last = step + 1 == steps;
        let mut body = json!({
            "model": cfg.model, "messages": messages, "temperature": 0, "max_tokens": cfg.reply_tokens,
        });
        if !last {
            body["tools"] = tools.clone();
            body["tool_choice"] = json!(if step == 0 {
                cfg.tool_choice.as_str()
            } else {
                "auto"
            });
            body["parallel_tool_calls"] = json!(false);
        }
        let reply = request(&client, cfg, &body, &mut shaper, &redactor, emit).await?;
        cut |= reply.cut;
        if reply.tool_calls.is_empty() || last {
            answered = reply.content.is_some();
            if !answered && last {
                limit = Some("step limit");
            }
            break;
        }
        messages.push(
            json!({"role": "assistant", "content": reply.content.clone().unwrap_or_default(),
            "tool_calls": reply.tool_calls.iter().map(|c| json!({"id": c.id, "type": "function",
                "function": {"name": c.name, "arguments": c.arguments}})).collect::<Vec<_>>()}),
        );
        for call in &reply.tool_calls {
            let args = match tool_arguments(&call.arguments) {
                Ok(a) => a,
                Err(e) => {
                    malformed.push(call.name.clone());
                    messages.push(json!({"role": "tool", "tool_call_id": call.id,
                        "content": format!("error: the arguments of this {} call are not usable ({e}); nothing was run. Call it again with a JSON object as its arguments.", prompt::defang(&redactor.redact(&crate::tools::head_tail(&call.name, 80))))}));
                    continue;
                }
            };
            let key = (call.name.clone(), args.to_string());
            let result = if !seen.insert(key) {
                "already called with these arguments: use the earlier result".to_string()
            } else {
                match Tool::from_call(&call.name, &args) {
                    Ok(tool) => {
                        used.push(tool.name().to_string());
                        tool.run(inst).text
                    }
                    Err(e) => {
                        refused.push(call.name.clone());
                        format!("refused: {e}. Nothing was executed; you can only propose.")
                    }
                }
            };
            messages.push(json!({"role": "tool", "tool_call_id": call.id,
                "content": prompt::wrap_tool_output(&call.name, &redactor.redact(&result))}));
        }
        if step + 2 == steps {
            limit = Some("step limit");
        }
    }
    if !answered || shaper.text().trim().is_empty() {
        // A limit was hit: ask once more for a summary without tools.
        messages.push(json!({"role": "user", "content": format!(
            "The {} is reached. Summarise what you found so far for the question, citing finding ids.",
            limit.unwrap_or("step limit"))}));
        let body = json!({"model": cfg.model, "messages": messages, "temperature": 0, "max_tokens": cfg.reply_tokens});
        let reply = request(&client, cfg, &body, &mut shaper, &redactor, emit).await?;
        cut |= reply.cut;
        if shaper.text().trim().is_empty() {
            return Err(ClientError::NoAnswer(format!(
                "the {} was reached ({} round trips) and the summary asked for then was empty",
                limit.unwrap_or("step limit"),
                steps
            )));
        }
    }
    let body = shaper.text().to_string();
    let mut answer = finish(inst, offline_answer, &body, used, refused, limit, cfg);
    let mut extra = Vec::new();
    if cut {
        extra.push(format!(
            "a reply reached its budget of {} tokens and was cut there",
            cfg.reply_tokens
        ));
    }
    if !malformed.is_empty() {
        malformed.dedup();
        extra.push(format!(
            "tool calls with malformed arguments (answered with the error): {}",
            malformed.join(", ")
        ));
    }
    if !extra.is_empty() {
        let note = answer.note.take().unwrap_or_default();
        answer.note = Some(
            std::iter::once(note)
                .chain(extra)
                .filter(|n| !n.is_empty())
                .collect::<Vec<_>>()
                .join("; "),
        );
    }
    // The additions (findings line, the no-change line) are shown too.
    emit(answer.text.strip_prefix(body.as_str()).unwrap_or(""));
    Ok(answer)
}

/// The model's shaped text checked against the diagnosis and completed;
/// the answer's text starts with `text` unchanged.
fn finish(
    inst: &Instance,
    offline_answer: &Answer,
    text: &str,
    used: Vec<String>,
    refused: Vec<String>,
    limit: Option<&str>,
    cfg: &RemoteConfig,
) -> Answer {
    let known: Vec<&str> = inst
        .diagnosis
        .findings
        .iter()
        .map(|f| f.id.as_str())
        .collect();
    let cited: Vec<String> = hex_ids(text);
    let valid: Vec<String> = cited
        .iter()
        .filter(|c| known.contains(&c.as_str()))
        .cloned()
        .collect();
    let invented: Vec<String> = cited
        .iter()
        .filter(|c| !known.contains(&c.as_str()))
        .cloned()
        .collect();
    // `text` is already shaped (restored, repeats dropped): only added to.
    let mut body = text.trim_end().to_string();
    if valid.is_empty() && !offline_answer.findings.is_empty() {
        let ids: Vec<String> = offline_answer
            .findings
            .iter()
            .take(5)
            .map(|i| format!("[{i}]"))
            .collect();
        body.push_str(&format!(
            "\n\nFindings behind this question (from the analysis): {}",
            ids.join(" ")
        ));
    }
    body.push_str("\n\napimedic changed nothing: remediations are proposals a person approves.");
    let mut notes = vec![format!("answered by {} at {}", cfg.model, cfg.base_url)];
    if let Some(l) = limit {
        notes.push(format!("{l} reached; summary of what was found so far"));
    }
    if !refused.is_empty() {
        notes.push(format!("refused tool calls: {}", refused.join(", ")));
    }
    if !invented.is_empty() {
        notes.push(format!(
            "the model cited ids that are not findings: {}",
            invented.join(", ")
        ));
    }
    let mut tools = used;
    tools.dedup();
    Answer {
        question: offline_answer.question.clone(),
        intents: offline_answer.intents.clone(),
        entities: offline_answer.entities.clone(),
        text: body,
        findings: if valid.is_empty() {
            offline_answer.findings.clone()
        } else {
            valid
        },
        tools,
        checked: offline_answer.checked.clone(),
        unchecked: offline_answer.unchecked.clone(),
        confidence: offline_answer.confidence.clone(),
        answered: true,
        note: Some(notes.join("; ")),
        refused,
    }
}

/// A tool call's arguments as a JSON object: empty text means no
/// arguments; anything else that is not a JSON object is an error the
/// model is told about (never silently `{}`).
fn tool_arguments(text: &str) -> Result<Value, String> {
    if text.trim().is_empty() {
        return Ok(json!({}));
    }
    match serde_json::from_str::<Value>(text) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(other) => Err(format!(
            "expected a JSON object, got {}",
            crate::tools::head_tail(&other.to_string(), 60)
        )),
        Err(e) => Err(format!("not JSON: {e}")),
    }
}

/// 16-hex-digit finding ids in a text.
fn hex_ids(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for w in text.split(|c: char| !c.is_ascii_hexdigit()) {
        if w.len() == 16 && !out.iter().any(|x| x == w) {
            out.push(w.to_ascii_lowercase());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_paragraphs_are_dropped_and_unknown_ids_noted() {
        let inst = Instance::default();
        let offline = Answer::default();
        let cfg = RemoteConfig::new("http://127.0.0.1:1/v1", "m");
        let text = super::super::stream::shape_whole("A.\n\nB [0123456789abcdef].\n\nA.", &|t| {
            t.to_string()
        });
        let a = finish(&inst, &offline, &text, vec![], vec![], None, &cfg);
        assert_eq!(a.text.matches("A.").count(), 1, "{}", a.text);
        assert!(
            a.note
                .as_deref()
                .is_some_and(|n| n.contains("not findings: 0123456789abcdef")),
            "{:?}",
            a.note
        );
    }

    #[test]
    fn finding_ids_are_found_in_text() {
        assert_eq!(
            hex_ids("see [d825790140885894] and 0123"),
            vec!["d825790140885894".to_string()]
        );
        assert!(hex_ids("no ids here").is_empty());
    }
}
