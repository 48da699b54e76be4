//! The fields of a workstream file, one step each: [`from_object`] reads every field of a
//! parsed top-level object and collects every problem (not just the first); the id and
//! environment-name rules live here too.

use super::{Action, InvalidWorkstream, Workstream, KNOWN_FIELDS, MAX_ID_LEN};
use crate::text::{quote, secs_to_duration};
use crate::Invalid;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

/// Validate the fields of a parsed top-level object: each field in its own step, every
/// problem collected (not just the first).
pub(super) fn from_object(
    file: &str,
    mut obj: Map<String, Value>,
) -> Result<(Workstream, Vec<String>), InvalidWorkstream> {
    // `null` counts as absent.
    obj.retain(|_, v| !v.is_null());
    let warnings = unknown_field_warnings(file, &obj);
    let mut problems: Vec<String> = Vec::new();
    let id = id_field(&obj, &mut problems);
    misspelled_depends_on(&obj, &mut problems);
    let title = string_field(&obj, "title", false, &mut problems);
    let action = action_field(&obj, &mut problems);
    let test = string_field(&obj, "test", true, &mut problems);
    let timeout = timeout_field(&obj, &mut problems);
    let depends_on = depends_on_field(&obj, id.as_deref(), &mut problems);
    let env = env_field(&obj, &mut problems);
    let agent = agent_field(&obj, &mut problems);
    let retries = retries_field(&obj, &mut problems);
    let max_cost_usd = max_cost_field(&obj, &mut problems);
    let sandbox = sandbox_field(&obj, &mut problems);
    let stack = stack_field(&obj, &mut problems);
    match (problems.is_empty(), id, action) {
        (true, Some(id), Some(action)) => Ok((
            Workstream {
                id,
                title,
                action,
                test,
                timeout,
                depends_on,
                env,
                file: file.to_string(),
                warnings: warnings.clone(),
                agent,
                retries,
                max_cost_usd,
                sandbox,
                stack,
            },
            warnings,
        )),
        (_, id, _) => Err(InvalidWorkstream {
            file: file.to_string(),
            id,
            message: format!("{file}: {}", problems.join("; ")),
        }),
    }
}

type Problems = Vec<String>;

/// Whether unknown field `key` is a misspelling of `depends_on` (`depends`, `dependsOn`,
/// `depend_on`, `depends-on`, `Depends_On`, …): an error, since ignoring it would drop the
/// dependency silently and run the workstream too early.
fn is_misspelled_depends_on(key: &str) -> bool {
    let squashed: String = key
        .chars()
        .filter(|c| !matches!(c, '_' | '-' | ' ' | '.'))
        .flat_map(char::to_lowercase)
        .collect();
    !KNOWN_FIELDS.contains(&key)
        && (squashed.starts_with("depend")
            || squashed == "dependencies"
            || squashed == "deps"
            || suggest_field(key) == Some("depends_on"))
}

/// A problem for each misspelled `depends_on` ([`is_misspelled_depends_on`]).
fn misspelled_depends_on(obj: &Map<String, Value>, problems: &mut Problems) {
    for key in obj.keys().filter(|k| is_misspelled_depends_on(k)) {
        problems.push(format!(
            "field {}: unknown; did you mean \"depends_on\"? (ignoring it would run this workstream without waiting for its dependencies)",
            quote(key)
        ));
    }
}

/// The unknown field of `obj` that was probably meant to be `wanted` (a required field that
/// is missing), for a "did you mean" hint.
fn misspelling_of<'o>(obj: &'o Map<String, Value>, wanted: &str) -> Option<&'o str> {
    obj.keys()
        .map(String::as_str)
        .filter(|k| !KNOWN_FIELDS.contains(k))
        .find(|k| suggest_field(k) == Some(wanted))
}

/// `; did you mean "command" for "comand"?` for the first of `wanted` that an unknown field
/// of `obj` is a misspelling of; empty when none is.
fn did_you_mean(obj: &Map<String, Value>, wanted: &[&str]) -> String {
    wanted
        .iter()
        .find_map(|w| {
            misspelling_of(obj, w).map(|k| format!("; did you mean \"{w}\" for {}?", quote(k)))
        })
        .unwrap_or_default()
}

/// A warning for each field git-ws does not know, with the closest known name (a
/// misspelled `depends_on` is an error instead: [`misspelled_depends_on`]).
fn unknown_field_warnings(file: &str, obj: &Map<String, Value>) -> Vec<String> {
    let mut warnings = Vec::new();
    for key in obj.keys() {
        if !KNOWN_FIELDS.contains(&key.as_str()) && !is_misspelled_depends_on(key) {
            let hint = match suggest_field(key) {
                Some(known) => format!("; did you mean \"{known}\"?"),
                None => String::new(),
            };
            warnings.push(format!(
                "{file}: unknown field {} (ignored{hint})",
                quote(key)
            ));
        }
    }
    warnings
}

fn id_field(obj: &Map<String, Value>, problems: &mut Problems) -> Option<String> {
    match obj.get("id") {
        None => {
            problems.push(format!(
                "field \"id\": missing (every workstream needs an id{})",
                did_you_mean(obj, &["id"])
            ));
            None
        }
        Some(Value::String(s)) => match validate_id(s) {
            Ok(()) => Some(s.clone()),
            Err(e) => {
                problems.push(format!("field \"id\": {e}"));
                None
            }
        },
        Some(other) => {
            problems.push(format!(
                "field \"id\": expected a string, found {}",
                type_name(other)
            ));
            None
        }
    }
}

/// `command` (a shell string or an argv array) or `prompt`: exactly one of them.
fn action_field(obj: &Map<String, Value>, problems: &mut Problems) -> Option<Action> {
    let command = command_field(obj, problems);
    let prompt = string_field(obj, "prompt", true, problems).map(Action::Prompt);
    match (obj.contains_key("command"), obj.contains_key("prompt")) {
        (true, true) => {
            problems.push("needs exactly one of \"command\" and \"prompt\" (found both)".into());
            None
        }
        (false, false) => {
            problems.push(format!(
                "needs exactly one of \"command\" and \"prompt\" (found neither{})",
                did_you_mean(obj, &["command", "prompt"])
            ));
            None
        }
        _ => command.or(prompt),
    }
}

fn command_field(obj: &Map<String, Value>, problems: &mut Problems) -> Option<Action> {
    match obj.get("command") {
        None => None,
        Some(Value::String(s)) => {
            if s.trim().is_empty() {
                problems.push("field \"command\": must not be empty".to_string());
            } else if s.contains('\0') {
                problems.push("field \"command\": must not contain NUL characters".to_string());
            }
            Some(Action::Shell(s.clone()))
        }
        Some(Value::Array(items)) => {
            let mut argv = Vec::with_capacity(items.len());
            if items.is_empty() {
                problems.push(
                    "field \"command\": an argv array must not be empty (give at least the program)"
                        .to_string(),
                );
            }
            for (i, item) in items.iter().enumerate() {
                match item {
                    Value::String(s) if s.contains('\0') => {
                        problems.push(format!(
                            "field \"command\": element {i} must not contain NUL characters"
                        ));
                    }
                    Value::String(s) if i == 0 && s.is_empty() => {
                        problems.push(
                            "field \"command\": the program (element 0) must not be empty"
                                .to_string(),
                        );
                    }
                    Value::String(s) => argv.push(s.clone()),
                    other => problems.push(format!(
                        "field \"command\": element {i}: expected a string, found {}",
                        type_name(other)
                    )),
                }
            }
            Some(Action::Argv(argv))
        }
        Some(other) => {
            problems.push(format!(
                "field \"command\": expected a string or an array of strings, found {}",
                type_name(other)
            ));
            None
        }
    }
}

fn timeout_field(obj: &Map<String, Value>, problems: &mut Problems) -> Option<Duration> {
    match obj.get("timeout_secs") {
        None => None,
        Some(Value::Number(n)) => match n.as_f64() {
            Some(secs) => match secs_to_duration(secs) {
                Ok(d) => Some(d),
                Err(e) => {
                    problems.push(format!("field \"timeout_secs\": {n} {e}"));
                    None
                }
            },
            None => {
                problems.push(format!(
                    "field \"timeout_secs\": {n} is not a usable number"
                ));
                None
            }
        },
        Some(other) => {
            problems.push(format!(
                "field \"timeout_secs\": expected a number of seconds, found {}",
                type_name(other)
            ));
            None
        }
    }
}

/// `depends_on`: valid ids, not the workstream itself, each once.
fn depends_on_field(
    obj: &Map<String, Value>,
    id: Option<&str>,
    problems: &mut Problems,
) -> Vec<String> {
    let mut depends_on: Vec<String> = Vec::new();
    match obj.get("depends_on") {
        None => {}
        Some(Value::Array(items)) => {
            let mut seen = HashSet::new();
            for (i, item) in items.iter().enumerate() {
                match item {
                    Value::String(dep) => {
                        if let Err(e) = validate_id(dep) {
                            problems.push(format!("field \"depends_on\": {e}"));
                        } else if Some(dep.as_str()) == id {
                            problems.push(format!(
                                "field \"depends_on\": a workstream cannot depend on itself ({})",
                                quote(dep)
                            ));
                        } else if seen.insert(dep.clone()) {
                            depends_on.push(dep.clone());
                        }
                    }
                    other => problems.push(format!(
                        "field \"depends_on\": element {i}: expected a workstream id string, found {}",
                        type_name(other)
                    )),
                }
            }
        }
        Some(other) => problems.push(format!(
            "field \"depends_on\": expected an array of workstream ids, found {}",
            type_name(other)
        )),
    }
    depends_on
}

fn env_field(obj: &Map<String, Value>, problems: &mut Problems) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    match obj.get("env") {
        None => {}
        Some(Value::Object(vars)) => {
            for (key, value) in vars {
                if let Err(e) = validate_env_name(key) {
                    problems.push(format!("field \"env\": {e}"));
                    continue;
                }
                match value {
                    Value::String(s) if s.contains('\0') => problems.push(format!(
                        "field \"env\": value of {} must not contain NUL characters",
                        quote(key)
                    )),
                    Value::String(s) => {
                        env.insert(key.clone(), s.clone());
                    }
                    other => problems.push(format!(
                        "field \"env\": value of {} must be a string, found {}",
                        quote(key),
                        type_name(other)
                    )),
                }
            }
        }
        Some(other) => problems.push(format!(
            "field \"env\": expected an object of NAME: \"value\" strings, found {}",
            type_name(other)
        )),
    }
    env
}

/// `agent`: a preset name, only with a `prompt`.
fn agent_field(obj: &Map<String, Value>, problems: &mut Problems) -> Option<crate::agents::Preset> {
    let agent = match obj.get("agent") {
        None => None,
        Some(Value::String(a)) => match crate::agents::Preset::parse(a) {
            Ok(p) => Some(p),
            Err(e) => {
                problems.push(format!("field \"agent\": {e}"));
                None
            }
        },
        Some(other) => {
            problems.push(format!(
                "field \"agent\": expected an agent name ({}), found {}",
                crate::agents::Preset::names(),
                type_name(other)
            ));
            None
        }
    };
    if agent.is_some() && obj.contains_key("command") {
        problems.push(
            "field \"agent\": only a workstream with a \"prompt\" runs an agent (this one has a \"command\")"
                .to_string(),
        );
    }
    agent
}

/// `"stack"`: a boolean, true when absent.
fn stack_field(obj: &Map<String, Value>, problems: &mut Problems) -> bool {
    match obj.get("stack") {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            problems.push(format!(
                "field \"stack\": expected true or false, found {}",
                type_name(other)
            ));
            true
        }
    }
}

fn retries_field(obj: &Map<String, Value>, problems: &mut Problems) -> Option<u32> {
    match obj.get("retries") {
        None => None,
        Some(Value::Number(n)) => match n.as_u64() {
            Some(r) if r <= u64::from(crate::agents::retry::MAX_RETRIES) => Some(r as u32),
            _ => {
                problems.push(format!(
                    "field \"retries\": {n} is not a whole number from 0 to {}",
                    crate::agents::retry::MAX_RETRIES
                ));
                None
            }
        },
        Some(other) => {
            problems.push(format!(
                "field \"retries\": expected a whole number, found {}",
                type_name(other)
            ));
            None
        }
    }
}

fn max_cost_field(obj: &Map<String, Value>, problems: &mut Problems) -> Option<f64> {
    match obj.get("max_cost_usd") {
        None => None,
        Some(Value::Number(n)) => match n.as_f64().map(crate::agents::check_budget) {
            Some(Ok(c)) => Some(c),
            _ => {
                problems.push(format!(
                    "field \"max_cost_usd\": {n} is not an amount of dollars more than 0"
                ));
                None
            }
        },
        Some(other) => {
            problems.push(format!(
                "field \"max_cost_usd\": expected a number of dollars, found {}",
                type_name(other)
            ));
            None
        }
    }
}

/// `"sandbox"`: one of [`crate::sandbox::Mode::NAMES`].
fn sandbox_field(
    obj: &Map<String, Value>,
    problems: &mut Problems,
) -> Option<crate::sandbox::Mode> {
    match obj.get("sandbox") {
        None => None,
        Some(Value::String(s)) => match crate::sandbox::Mode::parse(s) {
            Ok(m) => Some(m),
            Err(e) => {
                problems.push(format!("field \"sandbox\": {e}"));
                None
            }
        },
        Some(other) => {
            problems.push(format!(
                "field \"sandbox\": expected a string ({}), found {}",
                crate::sandbox::Mode::NAMES,
                type_name(other)
            ));
            None
        }
    }
}

/// An optional string field; `non_empty` rejects empty or whitespace-only strings.
fn string_field(
    obj: &Map<String, Value>,
    name: &str,
    non_empty: bool,
    problems: &mut Vec<String>,
) -> Option<String> {
    match obj.get(name)? {
        Value::String(s) => {
            if non_empty && s.trim().is_empty() {
                problems.push(format!("field \"{name}\": must not be empty"));
            } else if s.contains('\0') {
                problems.push(format!("field \"{name}\": must not contain NUL characters"));
            }
            Some(s.clone())
        }
        other => {
            problems.push(format!(
                "field \"{name}\": expected a string, found {}",
                type_name(other)
            ));
            None
        }
    }
}

/// `"a string"`, `a number`, … for error messages.
pub(super) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The known field an unknown one was probably meant to be.
fn suggest_field(key: &str) -> Option<&'static str> {
    let lower = key.to_ascii_lowercase();
    KNOWN_FIELDS.into_iter().find(|known| {
        lower == *known
            || (lower.len() >= 2 && edit_distance(&lower, known) <= (lower.len() / 4).max(1))
            || (lower.len() >= 4 && known.starts_with(lower.as_str()))
    })
}

/// Levenshtein distance, bounded work: strings longer than 40 bytes count as far apart.
fn edit_distance(a: &str, b: &str) -> usize {
    if a.len() > 40 || b.len() > 40 {
        return usize::MAX;
    }
    strsim::levenshtein(a, b)
}

/// Check an id: non-empty, at most 100 chars, only ASCII letters, digits, `.`, `_`, `-`,
/// not `.` or `..`. Because ids become branch names (`ws/<run>/<id>`) and file names, ids
/// that git refuses as a ref component are rejected too: starting or ending with `.`,
/// containing `..`, or ending with `.lock`.
pub fn validate_id(id: &str) -> Result<(), Invalid> {
    if id.is_empty() {
        return Err(Invalid::new("the id must not be empty"));
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(Invalid::new(format!(
            "{} is not a valid id (letters, digits, '.', '_', '-' only)",
            quote(id)
        )));
    }
    if id.len() > MAX_ID_LEN {
        return Err(Invalid::new(format!(
            "{} is not a valid id (too long: {} characters; at most {MAX_ID_LEN})",
            quote(id),
            id.len()
        )));
    }
    if id.starts_with('.') || id.ends_with('.') || id.contains("..") || id.ends_with(".lock") {
        return Err(Invalid::new(format!(
            "{} is not a valid id (it must not start or end with '.', contain \"..\" or end with \".lock\")",
            quote(id)
        )));
    }
    Ok(())
}

/// Check a run id before it becomes a path (`.state/logs/<run>/`, the report
/// `multi_agent_consolidated_<run>.md`) or a ref (`ws/<run>/<id>`): the rules of
/// [`validate_id`] (ASCII letters, digits, `.`, `_`, `-`; no `..`, no leading or trailing
/// `.`, no `.lock`; at most 100 characters), which every id git-ws hands out
/// (`ma-run-YYYYMMDD-HHMMSS`, with `-2`, `-3`, … when taken) satisfies. A run id read from a
/// database (which anyone with access to a shared one can write) goes through this first.
pub fn validate_run_id(run_id: &str) -> Result<(), Invalid> {
    validate_id(run_id).map_err(|e| {
        Invalid::new(format!(
            "{} is not a valid run id, refusing to use it as a file name or a branch name ({})",
            quote(run_id),
            e.to_string()
                .split_once(" (")
                .map_or("", |(_, why)| why.trim_end_matches(')'))
        ))
    })
}

/// Environment variable names: `[A-Za-z_][A-Za-z0-9_]*`, and not `WS_*` (set by git-ws).
pub(super) fn validate_env_name(key: &str) -> Result<(), String> {
    let mut bytes = key.bytes();
    let ok = match bytes.next() {
        Some(b) if b.is_ascii_alphabetic() || b == b'_' => {
            bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
        }
        _ => false,
    };
    if !ok {
        return Err(format!(
            "key {} is not a valid environment variable name (letters, digits, '_'; not starting with a digit)",
            quote(key)
        ));
    }
    if key.starts_with("WS_") {
        return Err(format!(
            "key {} is reserved (git-ws sets the WS_* variables itself)",
            quote(key)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{err, ok};
    use super::*;

    #[test]
    fn run_ids_that_would_climb_out_of_a_directory_are_refused() {
        assert_eq!(validate_run_id("ma-run-20261207-082957"), Ok(()));
        assert_eq!(validate_run_id("ma-run-20261207-082957-2"), Ok(()));
        for bad in [
            "x/../../../tmp/owned",
            "..",
            "a/b",
            "",
            "x\u{1b}[2J",
            "ref.lock",
        ] {
            let e = validate_run_id(bad).unwrap_err().to_string();
            assert!(e.contains("is not a valid run id"), "{e}");
            assert!(!e.contains('\u{1b}'), "{e}");
        }
    }

    #[test]
    fn parses_the_documented_example() {
        let (w, warnings) = ok(
            "ws-01.json",
            r#"{
              "id": "ws-01",
              "title": "Add retries to the HTTP client",
              "command": "sh scripts/fix-http.sh",
              "test": "cargo test -q",
              "timeout_secs": 900,
              "depends_on": ["ws-00"],
              "env": {"RUST_LOG": "info"}
            }"#,
        );
        assert!(warnings.is_empty());
        assert_eq!(w.id, "ws-01");
        assert_eq!(w.title.as_deref(), Some("Add retries to the HTTP client"));
        assert_eq!(w.action, Action::Shell("sh scripts/fix-http.sh".into()));
        assert_eq!(w.test.as_deref(), Some("cargo test -q"));
        assert_eq!(w.timeout, Some(Duration::from_secs(900)));
        assert_eq!(w.depends_on, vec!["ws-00".to_string()]);
        assert_eq!(w.env.get("RUST_LOG").map(String::as_str), Some("info"));
        assert_eq!(w.file, "ws-01.json");
    }

    #[test]
    fn the_sandbox_field_overrides_the_mode_and_names_bad_values() {
        let (w, _) = ok("a.json", r#"{"id":"a","command":"x","sandbox":"off"}"#);
        assert_eq!(w.sandbox, Some(crate::sandbox::Mode::Off));
        let (w, _) = ok("a.json", r#"{"id":"a","command":"x"}"#);
        assert_eq!(w.sandbox, None);
        let e = err("b.json", r#"{"id":"b","command":"x","sandbox":"docker"}"#);
        assert!(
            e.message
                .contains("field \"sandbox\": unknown sandbox \"docker\""),
            "{}",
            e.message
        );
        let e = err("c.json", r#"{"id":"c","command":"x","sandbox":false}"#);
        assert!(
            e.message.contains("field \"sandbox\": expected a string"),
            "{}",
            e.message
        );
    }

    #[test]
    fn the_stack_field_is_a_boolean_true_by_default() {
        let (w, warnings) = ok("a.json", r#"{"id":"a","command":"x"}"#);
        assert!(w.stack);
        assert!(warnings.is_empty(), "{warnings:?}");
        let (w, warnings) = ok("a.json", r#"{"id":"a","command":"x","stack":false}"#);
        assert!(!w.stack);
        assert!(warnings.is_empty(), "{warnings:?}");
        let e = err("b.json", r#"{"id":"b","command":"x","stack":"no"}"#);
        assert_eq!(
            e.message,
            "b.json: field \"stack\": expected true or false, found a string"
        );
    }

    #[test]
    fn agent_retries_and_budget_fields() {
        let (w, warnings) = ok(
            "a.json",
            r#"{"id":"a","prompt":"p","agent":"Codex","retries":3,"max_cost_usd":0.5}"#,
        );
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(w.agent, Some(crate::agents::Preset::Codex));
        assert_eq!((w.retries, w.max_cost_usd), (Some(3), Some(0.5)));
        let e = err(
            "b.json",
            r#"{"id":"b","command":"x","agent":"cursor","retries":-1,"max_cost_usd":0}"#,
        );
        assert_eq!(
            e.message,
            "b.json: field \"agent\": unknown agent \"cursor\" (known: claude, codex, aider, gemini); \
             field \"retries\": -1 is not a whole number from 0 to 20; \
             field \"max_cost_usd\": 0 is not an amount of dollars more than 0"
        );
        let e = err(
            "c.json",
            r#"{"id":"c","command":"x","agent":"claude","retries":"2"}"#,
        );
        assert!(
            e.message
                .contains("only a workstream with a \"prompt\" runs an agent"),
            "{}",
            e.message
        );
        assert!(
            e.message
                .contains("field \"retries\": expected a whole number, found a string"),
            "{}",
            e.message
        );
        let e = err(
            "d.json",
            r#"{"id":"d","prompt":"x","agent":1,"max_cost_usd":"1"}"#,
        );
        assert!(e.message.contains("field \"agent\": expected an agent name (claude, codex, aider, gemini), found a number"), "{}", e.message);
        assert!(
            e.message
                .contains("field \"max_cost_usd\": expected a number of dollars, found a string"),
            "{}",
            e.message
        );
    }

    #[test]
    fn argv_prompt_float_timeout_null_and_bom() {
        let (w, _) = ok(
            "a.json",
            r#"{"id":"a","command":["cargo","test"],"timeout_secs":1.5}"#,
        );
        assert_eq!(w.action, Action::Argv(vec!["cargo".into(), "test".into()]));
        assert_eq!(w.timeout, Some(Duration::from_millis(1500)));
        let (w, _) = ok(
            "b.json",
            r#"{"id":"b","prompt":"Fix it","command":null,"title":null}"#,
        );
        assert_eq!(w.action, Action::Prompt("Fix it".into()));
        assert_eq!(w.title, None);
        let (w, _) = ok("c.json", "\u{feff}{\"id\":\"c\",\"command\":\"true\"}");
        assert_eq!(w.id, "c");
        let (w, _) = ok(
            "d.json",
            r#"{"id":"d","command":"x","depends_on":["a","b","a"]}"#,
        );
        assert_eq!(w.depends_on, vec!["a".to_string(), "b".to_string()]);
    }

    #[test]
    fn unknown_fields_are_warnings() {
        let (w, warnings) = ok("ws-01.json", r#"{"id":"a","command":"x","foo":1}"#);
        // Kept with the workstream too, so its result carries them.
        assert_eq!(w.warnings, warnings);
        assert_eq!(
            warnings,
            vec!["ws-01.json: unknown field \"foo\" (ignored)".to_string()]
        );
        let (_, warnings) = ok("x.json", r#"{"id":"a","command":"x","timeout":5}"#);
        assert_eq!(
            warnings,
            vec!["x.json: unknown field \"timeout\" (ignored; did you mean \"timeout_secs\"?)"]
        );
    }

    #[test]
    fn a_misspelled_depends_on_is_an_error() {
        for key in [
            "depend_on",
            "depends",
            "dependsOn",
            "depends-on",
            "Depends_On",
            "dependencies",
            "deps",
        ] {
            let json = format!(r#"{{"id":"a","command":"x","{key}":["b"]}}"#);
            let e = err("w.json", &json);
            assert_eq!(
                e.message,
                format!(
                    "w.json: field \"{key}\": unknown; did you mean \"depends_on\"? \
                     (ignoring it would run this workstream without waiting for its dependencies)"
                ),
                "{key}"
            );
            assert_eq!(e.id.as_deref(), Some("a"));
        }
        // The right name, and unrelated unknown fields, still pass.
        ok(
            "w.json",
            r#"{"id":"a","command":"x","depends_on":[],"notes":1}"#,
        );
    }

    #[test]
    fn missing_required_fields_suggest_the_misspelled_one() {
        assert_eq!(
            err("c.json", r#"{"id":"a","comand":"x"}"#).message,
            "c.json: needs exactly one of \"command\" and \"prompt\" \
             (found neither; did you mean \"command\" for \"comand\"?)"
        );
        assert_eq!(
            err("p.json", r#"{"id":"a","promt":"x"}"#).message,
            "p.json: needs exactly one of \"command\" and \"prompt\" \
             (found neither; did you mean \"prompt\" for \"promt\"?)"
        );
        assert_eq!(
            err("i.json", r#"{"ID":"a","command":"x"}"#).message,
            "i.json: field \"id\": missing (every workstream needs an id; \
             did you mean \"id\" for \"ID\"?)"
        );
        // Nothing close: no hint.
        assert_eq!(
            err("n.json", r#"{"id":"a","zzz":"x"}"#).message,
            "n.json: needs exactly one of \"command\" and \"prompt\" (found neither)"
        );
    }

    #[test]
    fn bad_ids_are_rejected_and_never_kept() {
        for (id, reason) in [
            (
                "../x",
                "\"../x\" is not a valid id (letters, digits, '.', '_', '-' only)",
            ),
            (
                "a/b",
                "\"a/b\" is not a valid id (letters, digits, '.', '_', '-' only)",
            ),
            (
                "a b",
                "\"a b\" is not a valid id (letters, digits, '.', '_', '-' only)",
            ),
            (
                "é",
                "\"é\" is not a valid id (letters, digits, '.', '_', '-' only)",
            ),
            ("", "the id must not be empty"),
        ] {
            let json = format!(
                r#"{{"id":{},"command":"x"}}"#,
                serde_json::to_string(id).unwrap()
            );
            let e = err("ws-04.json", &json);
            assert_eq!(e.message, format!("ws-04.json: field \"id\": {reason}"));
            assert_eq!(e.id, None);
        }
        for id in [".", "..", ".hidden", "a..b", "end.", "x.lock"] {
            assert!(validate_id(id).is_err(), "{id} must be rejected");
        }
        assert!(validate_id(&"a".repeat(100)).is_ok());
        assert!(validate_id(&"a".repeat(101))
            .unwrap_err()
            .as_str()
            .contains("too long"));
        for id in ["ws-01", "A.b_c-9", "v1.2", "-x", "_"] {
            assert_eq!(validate_id(id), Ok(()), "{id}");
        }
        assert_eq!(
            err("i.json", r#"{"id":5,"command":"x"}"#).message,
            "i.json: field \"id\": expected a string, found a number"
        );
        assert_eq!(
            err("m.json", r#"{"command":"x"}"#).message,
            "m.json: field \"id\": missing (every workstream needs an id)"
        );
    }

    #[test]
    fn command_and_prompt_exactly_one() {
        let e = err("ws-05.json", r#"{"id":"a","command":"x","prompt":"y"}"#);
        assert_eq!(
            e.message,
            "ws-05.json: needs exactly one of \"command\" and \"prompt\" (found both)"
        );
        assert_eq!(e.id.as_deref(), Some("a"), "a valid id is kept");
        assert_eq!(
            err("n.json", r#"{"id":"a","title":"t"}"#).message,
            "n.json: needs exactly one of \"command\" and \"prompt\" (found neither)"
        );
        assert_eq!(
            err("n.json", r#"{"id":"a","command":[]}"#).message,
            "n.json: field \"command\": an argv array must not be empty (give at least the program)"
        );
        assert_eq!(
            err("n.json", r#"{"id":"a","command":["x",1]}"#).message,
            "n.json: field \"command\": element 1: expected a string, found a number"
        );
        assert_eq!(
            err("n.json", r#"{"id":"a","command":{"x":1}}"#).message,
            "n.json: field \"command\": expected a string or an array of strings, found an object"
        );
        assert_eq!(
            err("n.json", r#"{"id":"a","prompt":"  "}"#).message,
            "n.json: field \"prompt\": must not be empty"
        );
        assert_eq!(
            err("n.json", r#"{"id":"a","command":"a\u0000b"}"#).message,
            "n.json: field \"command\": must not contain NUL characters"
        );
    }

    #[test]
    fn field_types_and_values() {
        let cases = [
            (r#""title":3"#, "field \"title\": expected a string, found a number"),
            (r#""test":"""#, "field \"test\": must not be empty"),
            (r#""timeout_secs":0"#, "field \"timeout_secs\": 0 must be positive"),
            (r#""timeout_secs":-2.5"#, "field \"timeout_secs\": -2.5 must be positive"),
            (
                r#""timeout_secs":"30m""#,
                "field \"timeout_secs\": expected a number of seconds, found a string",
            ),
            (
                r#""timeout_secs":1e300"#,
                "field \"timeout_secs\": 1e+300 is too long (at most 31536000 seconds = 365 days)",
            ),
            (
                r#""timeout_secs":18446744073709551615"#,
                "field \"timeout_secs\": 18446744073709551615 is too long (at most 31536000 seconds = 365 days)",
            ),
            (r#""timeout_secs":1e-9"#, "field \"timeout_secs\": 1e-9 is too short (at least 1 ms)"),
            (
                r#""depends_on":"b""#,
                "field \"depends_on\": expected an array of workstream ids, found a string",
            ),
            (
                r#""depends_on":["b",null]"#,
                "field \"depends_on\": element 1: expected a workstream id string, found null",
            ),
            (
                r#""depends_on":["../b"]"#,
                "field \"depends_on\": \"../b\" is not a valid id (letters, digits, '.', '_', '-' only)",
            ),
            (
                r#""depends_on":["a"]"#,
                "field \"depends_on\": a workstream cannot depend on itself (\"a\")",
            ),
            (
                r#""env":{"WS_ID":"x"}"#,
                "field \"env\": key \"WS_ID\" is reserved (git-ws sets the WS_* variables itself)",
            ),
            (
                r#""env":{"1X":"x"}"#,
                "field \"env\": key \"1X\" is not a valid environment variable name (letters, digits, '_'; not starting with a digit)",
            ),
            (r#""env":{"A=B":"x"}"#, "field \"env\": key \"A=B\" is not a valid environment variable name (letters, digits, '_'; not starting with a digit)"),
            (r#""env":{"N":1}"#, "field \"env\": value of \"N\" must be a string, found a number"),
            (r#""env":["N"]"#, "field \"env\": expected an object of NAME: \"value\" strings, found an array"),
        ];
        for (field, reason) in cases {
            let json = format!(r#"{{"id":"a","command":"x",{field}}}"#);
            let e = err("f.json", &json);
            assert_eq!(e.message, format!("f.json: {reason}"), "for {field}");
            assert_eq!(e.id.as_deref(), Some("a"));
        }
        // Several problems are reported together.
        let e = err(
            "many.json",
            r#"{"id":"a/b","title":1,"env":{"ws_ok":"x","WS_X":"y"}}"#,
        );
        assert_eq!(
            e.message,
            "many.json: field \"id\": \"a/b\" is not a valid id (letters, digits, '.', '_', '-' only); \
             field \"title\": expected a string, found a number; \
             needs exactly one of \"command\" and \"prompt\" (found neither); \
             field \"env\": key \"WS_X\" is reserved (git-ws sets the WS_* variables itself)"
        );
        // Huge values are cut short in messages.
        let long = "x/".repeat(5000);
        let e = err("l.json", &format!(r#"{{"id":"{long}","command":"x"}}"#));
        assert!(e.message.len() < 200, "{}", e.message);
    }
}
