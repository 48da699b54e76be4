//! What an agent's own output says about how its attempt ended: the CLI's last error, in
//! its own words, and whether the output proves a failure although the CLI exited 0. Pure:
//! the caller passes the attempt's output (its tail). Samples of each case, printed by the
//! real CLIs, are in `fixtures/agents/<agent>/`.
//!
//! Failures each CLI reports while exiting 0 (so an exit status alone reads them as success):
//!
//! - Claude Code: a `result` with `is_error: true`; edits it was refused
//!   (`permission_denials` naming `Write`, `Edit`, `MultiEdit` or `NotebookEdit`, e.g. a
//!   worktree under `.git` in `acceptEdits` mode: "… which is a sensitive file").
//! - Codex CLI: `turn.failed`; `file_change` items that failed while none completed (a
//!   patch its sandbox refused). A patch it rejects before applying leaves no trace in
//!   `--json` output.
//! - Gemini CLI: a `result` with `status: "error"`; edit tools (`write_file`, `replace`)
//!   whose every result is an error.
//! - aider: a litellm error after the last `Tokens:` report (a rate limit once its own
//!   retries are spent, about 64 s; a rejected key), or "Only 3 reflections allowed" (its
//!   edits never applied).

use super::preset::Preset;
use serde_json::Value;
use std::collections::HashMap;

/// Longest message kept, in characters.
pub const MAX_MESSAGE_CHARS: usize = 400;

/// What the output says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reported {
    /// The CLI's own words for what went wrong, on one line.
    pub message: String,
    /// The output proves the attempt failed, whatever the exit status.
    pub failed: bool,
}

impl Reported {
    fn failed(message: impl AsRef<str>) -> Option<Reported> {
        Some(Reported {
            message: short(message.as_ref()),
            failed: true,
        })
    }

    fn said(message: impl AsRef<str>) -> Option<Reported> {
        Some(Reported {
            message: short(message.as_ref()),
            failed: false,
        })
    }
}

/// What `preset`'s `output` says went wrong, if anything.
pub fn reported(preset: Preset, output: &str) -> Option<Reported> {
    let found = match preset {
        Preset::Claude => claude(output),
        Preset::Codex => codex(output),
        Preset::Gemini => gemini(output),
        Preset::Aider => aider(output),
    };
    found.or_else(|| last_error_line(output).and_then(Reported::said))
}

/// The JSON objects among the lines (others are skipped).
fn objects(output: &str) -> impl Iterator<Item = Value> + '_ {
    output.lines().filter_map(|l| {
        let t = l.trim();
        if !t.starts_with('{') || t.len() > super::usage::MAX_LINE_BYTES {
            return None;
        }
        serde_json::from_str::<Value>(t)
            .ok()
            .filter(Value::is_object)
    })
}

const CLAUDE_EDIT_TOOLS: [&str; 4] = ["Write", "Edit", "MultiEdit", "NotebookEdit"];

fn claude(output: &str) -> Option<Reported> {
    let mut result = None;
    let mut last_assistant_error = None;
    let mut last_tool_error = None;
    for v in objects(output) {
        match v["type"].as_str() {
            Some("result") => result = Some(v),
            Some("assistant") if v["error"].is_string() => {
                last_assistant_error = text_of(&v["message"]["content"]);
            }
            Some("user") => {
                if let Some(items) = v["message"]["content"].as_array() {
                    for c in items {
                        if c["type"] == "tool_result" && c["is_error"] == true {
                            last_tool_error = text_of(&c["content"]);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    if let Some(r) = &result {
        let denied: Vec<String> = r["permission_denials"]
            .as_array()
            .map(|d| {
                d.iter()
                    .filter(|x| {
                        x["tool_name"]
                            .as_str()
                            .is_some_and(|t| CLAUDE_EDIT_TOOLS.contains(&t))
                    })
                    .map(|x| {
                        format!(
                            "{} {}",
                            x["tool_name"].as_str().unwrap_or_default(),
                            x["tool_input"]["file_path"].as_str().unwrap_or_default()
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        if r["is_error"] == true {
            let why = r["result"]
                .as_str()
                .map(str::to_string)
                .or_else(|| {
                    r["errors"].as_array().map(|e| {
                        e.iter()
                            .filter_map(Value::as_str)
                            .collect::<Vec<_>>()
                            .join("; ")
                    })
                })
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| r["subtype"].as_str().unwrap_or("error").to_string());
            return Reported::failed(why);
        }
        if !denied.is_empty() {
            let n = denied.len();
            return Reported::failed(format!(
                "{n} edit{} refused ({}): {}",
                if n == 1 { "" } else { "s" },
                denied.join(", "),
                last_tool_error.unwrap_or_else(|| "permission denied".to_string())
            ));
        }
        return None;
    }
    last_assistant_error.and_then(Reported::said)
}

fn codex(output: &str) -> Option<Reported> {
    let mut failed_turn = None;
    let mut last_error = None;
    let (mut changes_done, mut changes_failed) = (0, Vec::new());
    for v in objects(output) {
        match v["type"].as_str() {
            Some("turn.failed") => {
                failed_turn = v["error"]["message"].as_str().map(str::to_string);
            }
            Some("error") => last_error = v["message"].as_str().map(str::to_string),
            Some("item.completed") if v["item"]["type"] == "file_change" => {
                match v["item"]["status"].as_str() {
                    Some("completed") => changes_done += 1,
                    Some(_) => changes_failed.extend(
                        v["item"]["changes"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|c| c["path"].as_str().map(str::to_string)),
                    ),
                    None => {}
                }
            }
            _ => {}
        }
    }
    if let Some(m) = failed_turn {
        return Reported::failed(m);
    }
    if changes_done == 0 && !changes_failed.is_empty() {
        return Reported::failed(format!(
            "its patch could not be applied ({})",
            changes_failed.join(", ")
        ));
    }
    last_error.and_then(Reported::said)
}

const GEMINI_EDIT_TOOLS: [&str; 3] = ["write_file", "replace", "edit"];

fn gemini(output: &str) -> Option<Reported> {
    let mut tools: HashMap<String, String> = HashMap::new();
    let (mut edits_ok, mut edit_error) = (0, None);
    for v in objects(output) {
        match v["type"].as_str() {
            Some("tool_use") => {
                if let (Some(id), Some(name)) = (v["tool_id"].as_str(), v["tool_name"].as_str()) {
                    tools.insert(id.to_string(), name.to_string());
                }
            }
            Some("tool_result") => {
                let name = v["tool_id"]
                    .as_str()
                    .and_then(|id| tools.get(id))
                    .map(String::as_str)
                    .unwrap_or_default();
                if !GEMINI_EDIT_TOOLS.contains(&name) {
                    continue;
                }
                if v["status"] == "success" {
                    edits_ok += 1;
                } else {
                    edit_error = v["error"]["message"]
                        .as_str()
                        .or(v["output"].as_str())
                        .map(|m| format!("{name}: {m}"));
                }
            }
            Some("result") if v["status"] == "error" => {
                let m = v["error"]["message"].as_str().unwrap_or("error");
                return Reported::failed(m.lines().next().unwrap_or(m));
            }
            _ => {}
        }
    }
    match (edits_ok, edit_error) {
        (0, Some(m)) => Reported::failed(format!("its edits failed: {m}")),
        _ => None,
    }
}

fn aider(output: &str) -> Option<Reported> {
    let lines: Vec<&str> = output.lines().collect();
    let last_tokens = lines.iter().rposition(|l| l.contains("Tokens: "));
    let last_applied = lines
        .iter()
        .rposition(|l| l.starts_with("Applied edit to "));
    if let Some(i) = lines
        .iter()
        .rposition(|l| l.contains("Only 3 reflections allowed"))
    {
        if last_applied.is_none_or(|a| a < i) {
            return Reported::failed(lines[i].trim());
        }
    }
    let err = lines.iter().rposition(|l| {
        let t = l.trim_start();
        t.starts_with("litellm.") && t.contains("Error")
    })?;
    // The error wraps over lines up to a blank one; aider's own description follows.
    let paragraph: Vec<&str> = lines[err..]
        .iter()
        .take_while(|l| !l.trim().is_empty())
        .map(|l| l.trim())
        .filter(|l| !l.starts_with("Retrying in "))
        .collect();
    let message = paragraph.join(" ");
    if last_tokens.is_none_or(|t| t < err) {
        Reported::failed(message)
    } else {
        Reported::said(message)
    }
}

/// The last plain line that reads like an error (for a CLI that printed no structured
/// error): `Error…`, `…error:…`, Gemini CLI's untrusted-folder refusal. Stack frames and
/// JSON lines are skipped.
fn last_error_line(output: &str) -> Option<String> {
    output
        .lines()
        .rev()
        .map(crate::text::one_line)
        .filter(|l| !l.starts_with('{') && !l.starts_with("at "))
        .find(|l| {
            l.starts_with("Error")
                || l.contains("error:")
                || l.contains("Error:")
                || l.contains("not running in a trusted directory")
        })
}

/// The text of a message's content: a string, or its text blocks joined.
fn text_of(content: &Value) -> Option<String> {
    match content {
        Value::String(s) => Some(s.clone()),
        Value::Array(items) => {
            let t: Vec<&str> = items.iter().filter_map(|c| c["text"].as_str()).collect();
            (!t.is_empty()).then(|| t.join(" "))
        }
        _ => None,
    }
    .filter(|s| !s.trim().is_empty())
}

/// One line of at most [`MAX_MESSAGE_CHARS`] characters.
fn short(s: &str) -> String {
    let one = crate::text::one_line(s);
    if one.chars().count() <= MAX_MESSAGE_CHARS {
        return one;
    }
    let mut cut: String = one.chars().take(MAX_MESSAGE_CHARS - 1).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(file: &str) -> String {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures/agents")
            .join(file);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn failed(p: Preset, file: &str) -> String {
        let r = reported(p, &sample(file)).unwrap_or_else(|| panic!("{file}: nothing reported"));
        assert!(r.failed, "{file}: {r:?}");
        r.message
    }

    #[test]
    fn claude_code_refused_edits_and_api_errors() {
        // Claude Code 2.1.332 in a worktree under .git, acceptEdits: exit 0, nothing written.
        assert_eq!(
            failed(Preset::Claude, "claude/sensitive-file-denied.jsonl"),
            "1 edit refused (Write /tmp/explore/repo/.git/ws/agent-1/hello.txt): Claude \
             requested permissions to edit /tmp/explore/repo/.git/ws/agent-1/hello.txt which \
             is a sensitive file."
        );
        assert_eq!(
            failed(Preset::Claude, "claude/rate-limited-429.jsonl"),
            "API Error: Request rejected (429) · This request would exceed the rate limit for \
             your organization. Please try again later."
        );
        assert_eq!(
            failed(Preset::Claude, "claude/auth-failed-401.jsonl"),
            "Invalid API key · Fix external API key"
        );
        assert_eq!(
            failed(Preset::Claude, "claude/max-budget-model-usage.jsonl"),
            "Reached maximum budget ($0.001)"
        );
        assert_eq!(
            reported(
                Preset::Claude,
                &sample("claude/edit-partial-messages.jsonl")
            ),
            None
        );
        // Killed before its result: nothing to say (the timeout says it).
        assert_eq!(
            reported(Preset::Claude, &sample("claude/killed-mid-turn.jsonl")),
            None
        );
    }

    #[test]
    fn codex_turn_failures_and_failed_patches() {
        assert_eq!(
            failed(Preset::Codex, "codex/rate-limited-429.jsonl"),
            "exceeded retry limit, last status: 429 Too Many Requests"
        );
        assert!(failed(Preset::Codex, "codex/auth-failed-401.jsonl")
            .starts_with("unexpected status 401 Unauthorized: Incorrect API key provided"));
        assert_eq!(reported(Preset::Codex, &sample("codex/edit.jsonl")), None);
        // A rejected patch leaves no trace in codex's JSON.
        assert_eq!(
            reported(Preset::Codex, &sample("codex/patch-rejected.jsonl")),
            None
        );
        let refused = r#"{"type":"item.completed","item":{"id":"item_0","type":"file_change","changes":[{"path":"/w/a.txt","kind":"add"}],"status":"failed"}}
{"type":"turn.completed","usage":{"input_tokens":1,"output_tokens":1}}"#;
        assert_eq!(
            reported(Preset::Codex, refused),
            Some(Reported {
                message: "its patch could not be applied (/w/a.txt)".into(),
                failed: true
            })
        );
    }

    #[test]
    fn gemini_errors_failed_edits_and_the_untrusted_folder() {
        assert_eq!(
            failed(Preset::Gemini, "gemini/rate-limited-429.txt"),
            "[API Error: Resource has been exhausted (e.g. check quota).]"
        );
        assert!(failed(Preset::Gemini, "gemini/auth-failed-401.txt").contains("UNAUTHENTICATED"));
        assert_eq!(
            failed(Preset::Gemini, "gemini/replace-failed.jsonl"),
            "its edits failed: replace: Could not find an exact match for 'old_string' in \
             'src/lib.txt'. If previous edits modified the file or you are modifying lines \
             outside your recent read window, please use ReadFile to inspect the target lines \
             before retrying with an exact 'old_string'."
        );
        assert_eq!(
            reported(Preset::Gemini, &sample("gemini/create.jsonl")),
            None
        );
        // Exit 55 without --skip-trust: the message says what to do.
        let r = reported(Preset::Gemini, &sample("gemini/untrusted-folder.txt")).unwrap();
        assert!(!r.failed);
        assert!(r.message.contains("use `--skip-trust`"), "{r:?}");
    }

    #[test]
    fn aider_failures_behind_exit_0() {
        assert_eq!(
            failed(Preset::Aider, "aider/rate-limit-exhausted.txt"),
            "litellm.RateLimitError: RateLimitError: OpenAIException - Rate limit reached for \
             requests. Please try again in 1s. The API provider has rate limited you. Try again \
             later or check your quotas."
        );
        assert_eq!(
            failed(Preset::Aider, "aider/auth-failed-401.txt"),
            "litellm.AuthenticationError: AuthenticationError: OpenAIException - Incorrect API \
             key provided: sk-ws-***. You can find your API key at \
             https://platform.openai.com/account/api-keys. The API provider is not able to \
             authenticate you. Check your API key."
        );
        assert_eq!(
            reported(Preset::Aider, &sample("aider/edit-no-stream.txt")),
            None
        );
        // A rate limit aider got past is not a failure.
        let recovered =
            "litellm.RateLimitError: RateLimitError: slow down\nRetrying in 0.2 seconds...\n\
                         Tokens: 900 sent, 50 received. Cost: $0.0028 message, $0.0028 session.\n\
                         Applied edit to a.txt\n";
        assert!(!reported(Preset::Aider, recovered).unwrap().failed);
        let gave_up = "Applied edit to a.txt\nThe LLM did not conform to the edit format.\n\
                       Only 3 reflections allowed, stopping.\n";
        assert!(reported(Preset::Aider, gave_up).unwrap().failed);
    }

    #[test]
    fn messages_are_one_short_line() {
        let long = format!(
            "{{\"type\":\"turn.failed\",\"error\":{{\"message\":\"{}\\nsecond\"}}}}",
            "x".repeat(1000)
        );
        let m = reported(Preset::Codex, &long).unwrap().message;
        assert_eq!(m.chars().count(), MAX_MESSAGE_CHARS);
        assert!(m.ends_with('…') && !m.contains('\n'));
        assert_eq!(reported(Preset::Codex, "all fine\n"), None);
    }
}
