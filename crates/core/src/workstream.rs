//! Workstream task files: parsing and validating `workstreams/*.json` (ids, command/prompt,
//! dependencies, unknown-field warnings). Pure except [`load_dir`], which reads the directory.
//!
//! Every rejection is an [`InvalidWorkstream`] whose message starts with the file name, then
//! either `line:column` (JSON syntax) or the field, then the reason; all problems found in one
//! file are reported together, separated by `; `. Nothing here panics on any input: see the
//! fuzz tests at the bottom.

use crate::Invalid;
use serde::de::{IgnoredAny, MapAccess, Visitor};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fmt;
use std::io::Read;
use std::path::Path;
use std::time::Duration;

/// What a workstream runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `"command": "..."`, run by `sh -c`.
    Shell(String),
    /// `"command": ["prog", "arg", ...]`, run directly.
    Argv(Vec<String>),
    /// `"prompt": "..."`: sent to the agent command on stdin and in `WS_PROMPT`.
    Prompt(String),
}

/// A valid workstream.
#[derive(Debug, Clone, PartialEq)]
pub struct Workstream {
    pub id: String,
    pub title: Option<String>,
    pub action: Action,
    pub test: Option<String>,
    pub timeout: Option<Duration>,
    pub depends_on: Vec<String>,
    pub env: BTreeMap<String, String>,
    /// File name relative to the workstreams directory (e.g. `ws-01.json`).
    pub file: String,
    /// What loading it warned about (unknown fields, …), each naming the file; kept with the
    /// workstream's result so the report shows them.
    pub warnings: Vec<String>,
    /// `"agent"`: the preset that runs its prompt (else `--agent` / `ws.agent`, then the
    /// agent command).
    pub agent: Option<crate::agents::Preset>,
    /// `"retries"`: retries of transient failures (else `--retries`).
    pub retries: Option<u32>,
    /// `"max_cost_usd"`: stop the agent when what it spent passes this.
    pub max_cost_usd: Option<f64>,
}

/// A workstream file that did not parse or validate. `message` names the file and the
/// line:column (JSON syntax) or the field, and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidWorkstream {
    pub file: String,
    /// The id if one could be read and is itself valid and unique across the directory (so it
    /// can key a database row), else None (use the file name instead).
    pub id: Option<String>,
    pub message: String,
}

/// Result of loading a directory: valid workstreams (sorted by file name), invalid ones,
/// and warnings (unknown fields, …) each naming its file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Loaded {
    pub valid: Vec<Workstream>,
    pub invalid: Vec<InvalidWorkstream>,
    pub warnings: Vec<String>,
}

/// Longest accepted id, in characters.
pub const MAX_ID_LEN: usize = 100;

/// Longest accepted time limit (`timeout_secs`, [`parse_duration`]): 365 days. Larger values
/// are certainly mistakes, and they would overflow deadline arithmetic.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(365 * 24 * 3600);

/// Largest workstream file [`load_dir`] reads (4 MiB); bigger files are rejected unread.
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// The fields a workstream file may have; anything else is warned about and ignored.
pub const KNOWN_FIELDS: [&str; 11] = [
    "id",
    "title",
    "command",
    "prompt",
    "test",
    "timeout_secs",
    "depends_on",
    "env",
    "agent",
    "retries",
    "max_cost_usd",
];

/// Parse and validate one file's bytes on its own (no cross-file checks).
/// Returns the workstream plus warnings, or the rejection.
pub fn parse_workstream(
    file: &str,
    bytes: &[u8],
) -> Result<(Workstream, Vec<String>), InvalidWorkstream> {
    let reject = |message: String| InvalidWorkstream {
        file: file.to_string(),
        id: None,
        message: format!("{file}: {message}"),
    };
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).map_err(|e| {
        reject(format!(
            "not valid UTF-8 (invalid byte at offset {})",
            e.valid_up_to()
        ))
    })?;
    if text.trim().is_empty() {
        return Err(reject("file is empty (expected a JSON object)".to_string()));
    }
    let value: Value = serde_json::from_str(text).map_err(|e| json_error(file, &e))?;
    let obj = match value {
        Value::Object(obj) => obj,
        other => {
            return Err(reject(format!(
                "expected a JSON object at the top level, found {}",
                type_name(&other)
            )))
        }
    };
    // serde_json keeps the last of duplicate keys silently; an ambiguous file is rejected.
    serde_json::from_str::<NoDuplicateKeys>(text).map_err(|e| json_error(file, &e))?;
    from_object(file, obj)
}

/// Turn a serde_json error into `file:line:column: reason`.
fn json_error(file: &str, e: &serde_json::Error) -> InvalidWorkstream {
    let full = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    let reason = full.strip_suffix(&suffix).unwrap_or(&full);
    let message = if e.is_data() {
        format!("{file}:{}:{}: {reason}", e.line(), e.column())
    } else {
        format!("{file}:{}:{}: invalid JSON: {reason}", e.line(), e.column())
    };
    InvalidWorkstream {
        file: file.to_string(),
        id: None,
        message,
    }
}

/// Deserialises a JSON object's keys only, failing (with the position) on a repeated key.
struct NoDuplicateKeys;

impl<'de> serde::Deserialize<'de> for NoDuplicateKeys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeysVisitor;
        impl<'de> Visitor<'de> for KeysVisitor {
            type Value = NoDuplicateKeys;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut seen = HashSet::new();
                while let Some(key) = map.next_key::<String>()? {
                    if !seen.insert(key.clone()) {
                        return Err(serde::de::Error::custom(format_args!(
                            "field {} appears more than once",
                            quote(&key)
                        )));
                    }
                    map.next_value::<IgnoredAny>()?;
                }
                Ok(NoDuplicateKeys)
            }
        }
        d.deserialize_map(KeysVisitor)
    }
}

/// Validate the fields of a parsed top-level object: each field in its own step, every
/// problem collected (not just the first).
fn from_object(
    file: &str,
    mut obj: Map<String, Value>,
) -> Result<(Workstream, Vec<String>), InvalidWorkstream> {
    // `null` counts as absent.
    obj.retain(|_, v| !v.is_null());
    let warnings = unknown_field_warnings(file, &obj);
    let mut problems: Vec<String> = Vec::new();
    let id = id_field(&obj, &mut problems);
    let title = string_field(&obj, "title", false, &mut problems);
    let action = action_field(&obj, &mut problems);
    let test = string_field(&obj, "test", true, &mut problems);
    let timeout = timeout_field(&obj, &mut problems);
    let depends_on = depends_on_field(&obj, id.as_deref(), &mut problems);
    let env = env_field(&obj, &mut problems);
    let agent = agent_field(&obj, &mut problems);
    let retries = retries_field(&obj, &mut problems);
    let max_cost_usd = max_cost_field(&obj, &mut problems);
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

/// A warning for each field git-ws does not know, with the closest known name.
fn unknown_field_warnings(file: &str, obj: &Map<String, Value>) -> Vec<String> {
    let mut warnings = Vec::new();
    for key in obj.keys() {
        if !KNOWN_FIELDS.contains(&key.as_str()) {
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
            problems.push("field \"id\": missing (every workstream needs an id)".to_string());
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
            problems.push("needs exactly one of \"command\" and \"prompt\" (found neither)".into());
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
fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A user-supplied string for a message: JSON-quoted (control characters escaped) and cut to
/// 60 characters so a huge value cannot make a huge message.
fn quote(s: &str) -> String {
    const MAX: usize = 60;
    match s.char_indices().nth(MAX) {
        None => serde_json::to_string(s).unwrap_or_default(),
        Some((cut, _)) => {
            let q = serde_json::to_string(&s[..cut]).unwrap_or_default();
            format!("{}…\"", &q[..q.len() - 1])
        }
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

/// Seconds (from JSON or a duration string) to a Duration: positive, at least 1 ms, at most
/// [`MAX_TIMEOUT`]. The error completes a sentence about the value ("… must be positive").
fn secs_to_duration(secs: f64) -> Result<Duration, String> {
    if secs.is_nan() || secs <= 0.0 {
        return Err("must be positive".to_string());
    }
    if secs > MAX_TIMEOUT.as_secs_f64() {
        return Err(format!(
            "is too long (at most {} seconds = 365 days)",
            MAX_TIMEOUT.as_secs()
        ));
    }
    let d = Duration::try_from_secs_f64(secs).map_err(|e| e.to_string())?;
    if d < Duration::from_millis(1) {
        return Err("is too short (at least 1 ms)".to_string());
    }
    Ok(d)
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

/// Environment variable names: `[A-Za-z_][A-Za-z0-9_]*`, and not `WS_*` (set by git-ws).
fn validate_env_name(key: &str) -> Result<(), String> {
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

/// Cross-file validation: duplicate ids, `depends_on` naming unknown ids or forming a cycle.
/// The offending workstreams move to `invalid`; the rest stay valid.
///
/// - Duplicate ids (compared ignoring ASCII case, since branch refs and log files collide on
///   case-insensitive file systems): the first file by name keeps the id, later files become
///   invalid with `id: None`. An invalid file that had a valid id counts as a holder too.
/// - `depends_on` must name an id held by some file (valid, or invalid with `Some(id)`: the
///   runner fails those and skips their dependents).
/// - Every workstream on a dependency cycle is invalid (message shows the cycle); workstreams
///   merely depending on a cycle stay valid.
///
/// Both outputs are sorted by file name; warnings keep their order.
pub fn validate_set(
    parsed: Vec<Workstream>,
    invalid: Vec<InvalidWorkstream>,
    warnings: Vec<String>,
) -> Loaded {
    enum Entry {
        Valid(Workstream),
        Invalid(InvalidWorkstream),
    }
    impl Entry {
        fn file(&self) -> &str {
            match self {
                Entry::Valid(w) => &w.file,
                Entry::Invalid(i) => &i.file,
            }
        }
    }
    let mut entries: Vec<Entry> = parsed
        .into_iter()
        .map(Entry::Valid)
        .chain(invalid.into_iter().map(Entry::Invalid))
        .collect();
    entries.sort_by(|a, b| a.file().cmp(b.file()));

    // 1. Duplicate ids: the first file (by name) holds the id.
    let mut holders: HashMap<String, (String, String)> = HashMap::new(); // lower id -> (id, file)
    let mut valid: Vec<Workstream> = Vec::new();
    let mut out_invalid: Vec<InvalidWorkstream> = Vec::new();
    for entry in entries {
        let (id, file) = match &entry {
            Entry::Valid(w) => (Some(w.id.clone()), w.file.clone()),
            Entry::Invalid(i) => (i.id.clone(), i.file.clone()),
        };
        let Some(id) = id else {
            if let Entry::Invalid(i) = entry {
                out_invalid.push(i);
            }
            continue;
        };
        let lower = id.to_ascii_lowercase();
        let duplicate = holders.get(&lower).map(|(first_id, first_file)| {
            if *first_id == id {
                format!(
                    "field \"id\": duplicate id {} (already used by {first_file})",
                    quote(&id)
                )
            } else {
                format!(
                    "field \"id\": duplicate id {} (differs only in case from {} in {first_file})",
                    quote(&id),
                    quote(first_id)
                )
            }
        });
        match (entry, duplicate) {
            (Entry::Valid(w), None) => {
                holders.insert(lower, (id, file));
                valid.push(w);
            }
            (Entry::Invalid(i), None) => {
                holders.insert(lower, (id, file));
                out_invalid.push(i);
            }
            (Entry::Valid(w), Some(reason)) => out_invalid.push(InvalidWorkstream {
                message: format!("{}: {reason}", w.file),
                file: w.file,
                id: None,
            }),
            (Entry::Invalid(mut i), Some(reason)) => {
                i.id = None;
                i.message = format!("{}; {reason}", i.message);
                out_invalid.push(i);
            }
        }
    }

    // 2. Dependencies on ids nobody holds.
    let exact: HashSet<&str> = holders.values().map(|(id, _)| id.as_str()).collect();
    let mut unknown_dep: Vec<Option<String>> = Vec::with_capacity(valid.len());
    for w in &valid {
        let problems: Vec<String> = w
            .depends_on
            .iter()
            .filter(|d| !exact.contains(d.as_str()))
            .map(|d| match holders.get(&d.to_ascii_lowercase()) {
                Some((real, _)) => format!(
                    "field \"depends_on\": unknown workstream {} (did you mean {}?)",
                    quote(d),
                    quote(real)
                ),
                None => format!("field \"depends_on\": unknown workstream {}", quote(d)),
            })
            .collect();
        unknown_dep.push((!problems.is_empty()).then(|| problems.join("; ")));
    }
    let mut still_valid = Vec::with_capacity(valid.len());
    for (w, problem) in valid.into_iter().zip(unknown_dep) {
        match problem {
            Some(p) => out_invalid.push(InvalidWorkstream {
                message: format!("{}: {p}", w.file),
                file: w.file,
                id: Some(w.id),
            }),
            None => still_valid.push(w),
        }
    }
    let valid = still_valid;

    // 3. Cycles among the valid ones.
    let cycles = find_cycles(&valid);
    let mut final_valid = Vec::with_capacity(valid.len());
    for (i, w) in valid.into_iter().enumerate() {
        match &cycles[i] {
            Some(cycle) => out_invalid.push(InvalidWorkstream {
                message: format!("{}: field \"depends_on\": dependency cycle {cycle}", w.file),
                file: w.file,
                id: Some(w.id),
            }),
            None => final_valid.push(w),
        }
    }

    out_invalid.sort_by(|a, b| a.file.cmp(&b.file));
    Loaded {
        valid: final_valid,
        invalid: out_invalid,
        warnings,
    }
}

/// For each workstream, `Some(rendered cycle through it)` when it lies on a dependency cycle.
/// Tarjan's SCC algorithm (iterative: chains of 10,000 must not overflow the stack), then one
/// breadth-first search per cycle found, reused for every member of that cycle.
fn find_cycles(ws: &[Workstream]) -> Vec<Option<String>> {
    let n = ws.len();
    let index_of: HashMap<&str, usize> = ws
        .iter()
        .enumerate()
        .map(|(i, w)| (w.id.as_str(), i))
        .collect();
    let adj: Vec<Vec<usize>> = ws
        .iter()
        .map(|w| {
            w.depends_on
                .iter()
                .filter_map(|d| index_of.get(d.as_str()).copied())
                .collect()
        })
        .collect();

    let mut comp = vec![usize::MAX; n];
    let mut comp_count = 0;
    let mut index = vec![usize::MAX; n];
    let mut low = vec![0usize; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut next_index = 0;
    for root in 0..n {
        if index[root] != usize::MAX {
            continue;
        }
        let mut call: Vec<(usize, usize)> = vec![(root, 0)];
        index[root] = next_index;
        low[root] = next_index;
        next_index += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some(&mut (v, ref mut edge)) = call.last_mut() {
            if let Some(&w) = adj[v].get(*edge) {
                *edge += 1;
                if index[w] == usize::MAX {
                    index[w] = next_index;
                    low[w] = next_index;
                    next_index += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    call.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
            } else {
                call.pop();
                if let Some(&(u, _)) = call.last() {
                    low[u] = low[u].min(low[v]);
                }
                if low[v] == index[v] {
                    while let Some(x) = stack.pop() {
                        on_stack[x] = false;
                        comp[x] = comp_count;
                        if x == v {
                            break;
                        }
                    }
                    comp_count += 1;
                }
            }
        }
    }
    let mut comp_size = vec![0usize; comp_count];
    for &c in &comp {
        comp_size[c] += 1;
    }

    let mut result: Vec<Option<String>> = vec![None; n];
    for start in 0..n {
        if result[start].is_some() {
            continue;
        }
        let self_loop = adj[start].contains(&start);
        if comp_size[comp[start]] < 2 && !self_loop {
            continue;
        }
        // Shortest path start -> ... -> start inside the component.
        let path = if self_loop {
            vec![start]
        } else {
            let mut parent: HashMap<usize, usize> = HashMap::new();
            let mut queue = VecDeque::from([start]);
            let mut end = None;
            'bfs: while let Some(v) = queue.pop_front() {
                for &w in &adj[v] {
                    if comp[w] != comp[start] {
                        continue;
                    }
                    if w == start {
                        end = Some(v);
                        break 'bfs;
                    }
                    if let std::collections::hash_map::Entry::Vacant(e) = parent.entry(w) {
                        e.insert(v);
                        queue.push_back(w);
                    }
                }
            }
            let mut path = Vec::new();
            let mut cur = end.unwrap_or(start);
            while cur != start {
                path.push(cur);
                cur = parent[&cur];
            }
            path.push(start);
            path.reverse();
            path
        };
        for k in 0..path.len() {
            let member = path[k];
            if result[member].is_none() {
                let rotated: Vec<&str> = path[k..]
                    .iter()
                    .chain(&path[..k])
                    .map(|&i| ws[i].id.as_str())
                    .collect();
                result[member] = Some(render_cycle(&rotated));
            }
        }
    }
    result
}

/// `a -> b -> a`; long cycles are shortened to the first eight ids.
fn render_cycle(ids: &[&str]) -> String {
    const SHOWN: usize = 8;
    let mut out = String::new();
    for id in ids.iter().take(SHOWN) {
        out.push_str(id);
        out.push_str(" -> ");
    }
    if ids.len() > SHOWN {
        out.push_str(&format!("… ({} more) -> ", ids.len() - SHOWN));
    }
    out.push_str(ids[0]);
    out
}

/// Parse a duration: a sequence of `<number><unit>` parts (`90s`, `30m`, `2h`, `1h30m`,
/// `1h 30m`, `500ms`, `1d`), units `ms`, `s`, `m`, `h`, `d`; numbers may have a decimal part
/// (`1.5s`, `0.5h`); a bare number is seconds (`90`, `2.5`). The total must be positive, at
/// least 1 ms and at most [`MAX_TIMEOUT`] (365 days).
pub fn parse_duration(s: &str) -> Result<Duration, Invalid> {
    let bad = |reason: &str| Invalid::new(format!("invalid duration {}: {reason}", quote(s)));
    let text = s.trim();
    if text.is_empty() {
        return Err(Invalid::new(
            "invalid duration \"\": empty (expected e.g. 90s, 30m, 2h, 1h30m or 500ms)",
        ));
    }
    let bytes = text.as_bytes();
    let mut pos = 0;
    let mut total = 0.0f64;
    let mut parts = 0;
    while pos < bytes.len() {
        while pos < bytes.len() && bytes[pos] == b' ' {
            pos += 1;
        }
        let num_start = pos;
        while pos < bytes.len() && bytes[pos].is_ascii_digit() {
            pos += 1;
        }
        if pos < bytes.len() && bytes[pos] == b'.' {
            pos += 1;
            let frac_start = pos;
            while pos < bytes.len() && bytes[pos].is_ascii_digit() {
                pos += 1;
            }
            if pos == frac_start {
                return Err(bad("expected digits after '.'"));
            }
        }
        if pos == num_start || bytes[num_start] == b'.' {
            return Err(bad(
                "expected a number (e.g. 90s, 30m, 2h, 1h30m, 500ms or a bare number of seconds)",
            ));
        }
        let number: f64 = text[num_start..pos]
            .parse()
            .map_err(|_| bad("number out of range"))?;
        while pos < bytes.len() && bytes[pos] == b' ' {
            pos += 1;
        }
        let unit_start = pos;
        while pos < bytes.len() && bytes[pos].is_ascii_alphabetic() {
            pos += 1;
        }
        let unit = &text[unit_start..pos];
        let scale = match unit {
            "" if parts == 0 && pos == bytes.len() => 1.0,
            "" => return Err(bad("every number needs a unit (ms, s, m, h or d)")),
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            other => {
                return Err(bad(&format!(
                    "unknown unit {} (use ms, s, m, h or d)",
                    quote(other)
                )))
            }
        };
        total += number * scale;
        parts += 1;
        if pos < bytes.len() && !bytes[pos].is_ascii_digit() && bytes[pos] != b' ' {
            return Err(bad(&format!(
                "unexpected {} (expected e.g. 90s, 30m, 2h, 1h30m or 500ms)",
                quote(&text[pos..].chars().take(1).collect::<String>())
            )));
        }
    }
    secs_to_duration(total).map_err(|e| bad(&e))
}

/// Read every `*.json` file in `dir` (not recursive), parse and validate them all.
/// Errors only when the directory itself cannot be read. Hidden files, subdirectories and
/// other names are ignored; a file that cannot be read, is not a regular file or is larger
/// than [`MAX_FILE_BYTES`] becomes an [`InvalidWorkstream`].
pub fn load_dir(dir: &Path) -> std::io::Result<Loaded> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let lossy = name.to_string_lossy().into_owned();
        if lossy.starts_with('.') || !lossy.ends_with(".json") {
            continue;
        }
        names.push((lossy, name.to_str().is_some(), entry.path()));
    }
    names.sort();

    let mut parsed = Vec::new();
    let mut invalid = Vec::new();
    let mut warnings = Vec::new();
    for (name, utf8_name, path) in names {
        let reject = |reason: String| InvalidWorkstream {
            file: name.clone(),
            id: None,
            message: format!("{name}: {reason}"),
        };
        // Follows symlinks; a directory named `x.json` is skipped like any directory.
        let meta = match std::fs::metadata(&path) {
            Ok(m) if m.is_dir() => continue,
            Ok(m) => m,
            Err(e) => {
                invalid.push(reject(format!("failed to read file: {e}")));
                continue;
            }
        };
        if !utf8_name {
            invalid.push(reject("file name is not valid UTF-8".to_string()));
            continue;
        }
        if !meta.is_file() {
            invalid.push(reject("not a regular file".to_string()));
            continue;
        }
        if meta.len() > MAX_FILE_BYTES {
            invalid.push(reject(format!(
                "file is too large ({} bytes; at most {MAX_FILE_BYTES})",
                meta.len()
            )));
            continue;
        }
        let mut bytes = Vec::new();
        let read = std::fs::File::open(&path)
            .and_then(|f| f.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes));
        if let Err(e) = read {
            invalid.push(reject(format!("failed to read file: {e}")));
            continue;
        }
        if bytes.len() as u64 > MAX_FILE_BYTES {
            invalid.push(reject(format!(
                "file is too large (more than {MAX_FILE_BYTES} bytes)"
            )));
            continue;
        }
        match parse_workstream(&name, &bytes) {
            Ok((w, warns)) => {
                parsed.push(w);
                warnings.extend(warns);
            }
            Err(bad) => invalid.push(bad),
        }
    }
    Ok(validate_set(parsed, invalid, warnings))
}

/// Keep only the workstreams whose id is in `only` (plus nothing else: dependencies outside
/// the selection are treated as already satisfied — the scheduler does that — so `depends_on`
/// is left as written). Invalid files whose id is selected are kept so they are still
/// reported — when no usable id could be read, the file name without `.json` stands in
/// (`--only ws-03` keeps a broken `ws-03.json`); warnings are kept for kept files. Entries of `only` are trimmed, empty ones
/// ignored. Unknown ids in `only` are returned, in order, without repeats.
pub fn select_only(loaded: Loaded, only: &[String]) -> (Loaded, Vec<String>) {
    /// What `--only` matches an invalid file by: its id, else its file stem.
    fn selection_key(i: &InvalidWorkstream) -> Option<&str> {
        i.id.as_deref().or_else(|| i.file.strip_suffix(".json"))
    }

    let wanted: Vec<&str> = only
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .collect();
    let wanted_set: HashSet<&str> = wanted.iter().copied().collect();
    let mut found: HashSet<&str> = HashSet::new();

    let valid: Vec<Workstream> = loaded
        .valid
        .into_iter()
        .filter(|w| wanted_set.contains(w.id.as_str()))
        .collect();
    let invalid: Vec<InvalidWorkstream> = loaded
        .invalid
        .into_iter()
        .filter(|i| selection_key(i).is_some_and(|key| wanted_set.contains(key)))
        .collect();
    let kept_files: HashSet<&str> = valid
        .iter()
        .map(|w| w.file.as_str())
        .chain(invalid.iter().map(|i| i.file.as_str()))
        .collect();
    let warnings: Vec<String> = loaded
        .warnings
        .into_iter()
        .filter(|w| {
            w.split_once(": ")
                .is_some_and(|(file, _)| kept_files.contains(file))
        })
        .collect();
    for id in valid
        .iter()
        .map(|w| w.id.as_str())
        .chain(invalid.iter().filter_map(selection_key))
    {
        if let Some(&w) = wanted_set.get(id) {
            found.insert(w);
        }
    }
    let mut unknown = Vec::new();
    let mut reported = HashSet::new();
    for id in wanted {
        if !found.contains(id) && reported.insert(id) {
            unknown.push(id.to_string());
        }
    }
    (
        Loaded {
            valid,
            invalid,
            warnings,
        },
        unknown,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(file: &str, json: &str) -> (Workstream, Vec<String>) {
        parse_workstream(file, json.as_bytes())
            .unwrap_or_else(|e| panic!("{file} should parse: {}", e.message))
    }

    fn err(file: &str, json: &str) -> InvalidWorkstream {
        match parse_workstream(file, json.as_bytes()) {
            Ok(w) => panic!("{file} should be rejected: {w:?}"),
            Err(e) => e,
        }
    }

    fn ws(file: &str, id: &str, deps: &[&str]) -> Workstream {
        Workstream {
            id: id.to_string(),
            title: None,
            action: Action::Shell("true".to_string()),
            test: None,
            timeout: None,
            depends_on: deps.iter().map(|d| d.to_string()).collect(),
            env: BTreeMap::new(),
            file: file.to_string(),
            warnings: Vec::new(),
            agent: None,
            retries: None,
            max_cost_usd: None,
        }
    }

    fn bad(file: &str, id: Option<&str>) -> InvalidWorkstream {
        InvalidWorkstream {
            file: file.to_string(),
            id: id.map(str::to_string),
            message: format!("{file}: field \"test\": must not be empty"),
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
        let (w, warnings) = ok(
            "ws-01.json",
            r#"{"id":"a","command":"x","foo":1,"depend_on":[]}"#,
        );
        // Kept with the workstream too, so its result carries them.
        assert_eq!(w.warnings, warnings);
        assert_eq!(
            warnings,
            vec![
                "ws-01.json: unknown field \"depend_on\" (ignored; did you mean \"depends_on\"?)"
                    .to_string(),
                "ws-01.json: unknown field \"foo\" (ignored)".to_string(),
            ]
        );
        let (_, warnings) = ok("x.json", r#"{"id":"a","command":"x","timeout":5}"#);
        assert_eq!(
            warnings,
            vec!["x.json: unknown field \"timeout\" (ignored; did you mean \"timeout_secs\"?)"]
        );
    }

    #[test]
    fn syntax_errors_name_line_and_column() {
        let e = err("ws-03.json", "{\n  \"id\": \"a\"\n  \"command\": \"x\"\n}");
        assert_eq!(
            e.message,
            "ws-03.json:3:3: invalid JSON: expected `,` or `}`"
        );
        assert_eq!(e.id, None);
        let e = err("t.json", r#"{"id":"a","command":"x""#);
        assert!(e.message.starts_with("t.json:1:"), "{}", e.message);
        assert!(
            e.message.contains("invalid JSON: EOF while parsing"),
            "{}",
            e.message
        );
        let e = err("n.json", r#"{"id":"a","command":"x","timeout_secs":1e999}"#);
        assert!(e.message.contains("number out of range"), "{}", e.message);
        let e = err(
            "dup.json",
            "{\"id\":\"a\",\n\"id\":\"../b\",\"command\":\"x\"}",
        );
        assert_eq!(
            e.message,
            "dup.json:2:4: field \"id\" appears more than once"
        );
    }

    #[test]
    fn whole_file_problems() {
        assert_eq!(
            err("e.json", "").message,
            "e.json: file is empty (expected a JSON object)"
        );
        assert_eq!(
            err("e.json", " \n\t").message,
            "e.json: file is empty (expected a JSON object)"
        );
        assert!(err("u.json", "{\"id\":\"\u{e9}")
            .message
            .starts_with("u.json:1:"));
        assert_eq!(
            parse_workstream("u.json", b"{\"id\":\"a\xff\"}")
                .unwrap_err()
                .message,
            "u.json: not valid UTF-8 (invalid byte at offset 8)"
        );
        assert_eq!(
            err("arr.json", "[1,2]").message,
            "arr.json: expected a JSON object at the top level, found an array"
        );
        assert_eq!(
            err("s.json", "\"hi\"").message,
            "s.json: expected a JSON object at the top level, found a string"
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

    #[test]
    fn deep_nesting_is_rejected_without_overflow() {
        let deep_arrays = "[".repeat(10_000);
        let e = err("deep.json", &deep_arrays);
        assert!(e.message.starts_with("deep.json:1:"), "{}", e.message);
        assert!(
            e.message.contains("recursion limit exceeded"),
            "{}",
            e.message
        );
        let closed = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(err("deep.json", &closed)
            .message
            .contains("recursion limit exceeded"));
        let in_field = format!(r#"{{"id":"a","command":{}"#, "[".repeat(10_000));
        assert!(err("deep.json", &in_field)
            .message
            .contains("recursion limit exceeded"));
        let objects = format!("{}1{}", "{\"a\":".repeat(10_000), "}".repeat(10_000));
        assert!(err("deep.json", &objects)
            .message
            .contains("recursion limit exceeded"));
        // Nesting below the limit inside an unknown field is fine.
        let ok_nested = format!(
            r#"{{"id":"a","command":"x","extra":{}1{}}}"#,
            "[".repeat(100),
            "]".repeat(100)
        );
        assert_eq!(ok("ok.json", &ok_nested).1.len(), 1);
    }

    #[test]
    fn duration_grammar() {
        let secs = |s: &str| {
            parse_duration(s)
                .map(|d| d.as_secs_f64())
                .map_err(String::from)
        };
        assert_eq!(secs("90s"), Ok(90.0));
        assert_eq!(secs("30m"), Ok(1800.0));
        assert_eq!(secs("2h"), Ok(7200.0));
        assert_eq!(secs("1h30m"), Ok(5400.0));
        assert_eq!(secs("1h 30m"), Ok(5400.0));
        assert_eq!(secs(" 90 s "), Ok(90.0));
        assert_eq!(secs("500ms"), Ok(0.5));
        assert_eq!(secs("1.5s"), Ok(1.5));
        assert_eq!(secs("0.5h"), Ok(1800.0));
        assert_eq!(secs("1d"), Ok(86400.0));
        assert_eq!(secs("90"), Ok(90.0));
        assert_eq!(secs("2.5"), Ok(2.5));
        assert_eq!(secs("1m30s500ms"), Ok(90.5));
        for (input, reason) in [
            ("", "invalid duration \"\": empty (expected e.g. 90s, 30m, 2h, 1h30m or 500ms)"),
            ("0", "invalid duration \"0\": must be positive"),
            ("0s", "invalid duration \"0s\": must be positive"),
            ("0ms", "invalid duration \"0ms\": must be positive"),
            ("5x", "invalid duration \"5x\": unknown unit \"x\" (use ms, s, m, h or d)"),
            ("1h30", "invalid duration \"1h30\": every number needs a unit (ms, s, m, h or d)"),
            ("-5s", "invalid duration \"-5s\": expected a number (e.g. 90s, 30m, 2h, 1h30m, 500ms or a bare number of seconds)"),
            ("s", "invalid duration \"s\": expected a number (e.g. 90s, 30m, 2h, 1h30m, 500ms or a bare number of seconds)"),
            ("1.s", "invalid duration \"1.s\": expected digits after '.'"),
            (".5s", "invalid duration \".5s\": expected a number (e.g. 90s, 30m, 2h, 1h30m, 500ms or a bare number of seconds)"),
            ("5s!", "invalid duration \"5s!\": unexpected \"!\" (expected e.g. 90s, 30m, 2h, 1h30m or 500ms)"),
            ("400d", "invalid duration \"400d\": is too long (at most 31536000 seconds = 365 days)"),
            ("0.1ms", "invalid duration \"0.1ms\": is too short (at least 1 ms)"),
        ] {
            assert_eq!(
                parse_duration(input),
                Err(Invalid::new(reason)),
                "for {input:?}"
            );
        }
        let huge = format!("{}s", "9".repeat(400));
        assert!(parse_duration(&huge)
            .unwrap_err()
            .as_str()
            .contains("too long"));
        assert!(parse_duration("nan").is_err());
        assert!(parse_duration("inf").is_err());
    }

    #[test]
    fn duplicate_ids_first_file_wins() {
        let loaded = validate_set(
            vec![
                ws("b.json", "x", &[]),
                ws("a.json", "x", &[]),
                ws("c.json", "X", &[]),
            ],
            vec![],
            vec![],
        );
        assert_eq!(loaded.valid.len(), 1);
        assert_eq!(loaded.valid[0].file, "a.json");
        assert_eq!(
            loaded.invalid,
            vec![
                InvalidWorkstream {
                    file: "b.json".into(),
                    id: None,
                    message: "b.json: field \"id\": duplicate id \"x\" (already used by a.json)"
                        .into(),
                },
                InvalidWorkstream {
                    file: "c.json".into(),
                    id: None,
                    message: "c.json: field \"id\": duplicate id \"X\" (differs only in case from \"x\" in a.json)".into(),
                },
            ]
        );
    }

    #[test]
    fn invalid_files_with_ids_hold_their_id() {
        // a.json is invalid but had a valid id: it holds "x"; the later valid b.json loses.
        let loaded = validate_set(
            vec![ws("b.json", "x", &[]), ws("d.json", "dep", &["x"])],
            vec![
                bad("a.json", Some("x")),
                bad("c.json", Some("x")),
                bad("e.json", None),
            ],
            vec![],
        );
        assert_eq!(
            loaded
                .valid
                .iter()
                .map(|w| w.id.as_str())
                .collect::<Vec<_>>(),
            vec!["dep"],
            "depending on an invalid-with-id workstream is fine"
        );
        let summary: Vec<(&str, Option<&str>)> = loaded
            .invalid
            .iter()
            .map(|i| (i.file.as_str(), i.id.as_deref()))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("a.json", Some("x")),
                ("b.json", None),
                ("c.json", None),
                ("e.json", None)
            ]
        );
        assert_eq!(
            loaded.invalid[2].message,
            "c.json: field \"test\": must not be empty; field \"id\": duplicate id \"x\" (already used by a.json)"
        );
    }

    #[test]
    fn unknown_dependencies_invalidate() {
        let loaded = validate_set(
            vec![
                ws("a.json", "ws-01", &[]),
                ws("b.json", "ws-02", &["ws-01", "ws-99"]),
                ws("c.json", "ws-03", &["WS-01"]),
                ws("d.json", "ws-04", &["ws-02"]),
            ],
            vec![],
            vec!["a.json: unknown field \"foo\" (ignored)".into()],
        );
        let ids: Vec<&str> = loaded.valid.iter().map(|w| w.id.as_str()).collect();
        assert_eq!(
            ids,
            vec!["ws-01", "ws-04"],
            "ws-04 may depend on invalid ws-02"
        );
        assert_eq!(
            loaded.invalid[0].message,
            "b.json: field \"depends_on\": unknown workstream \"ws-99\""
        );
        assert_eq!(loaded.invalid[0].id.as_deref(), Some("ws-02"));
        assert_eq!(
            loaded.invalid[1].message,
            "c.json: field \"depends_on\": unknown workstream \"WS-01\" (did you mean \"ws-01\"?)"
        );
        assert_eq!(loaded.warnings.len(), 1);
    }

    #[test]
    fn cycles_invalidate_members_only() {
        let loaded = validate_set(
            vec![
                ws("1.json", "a", &["b"]),
                ws("2.json", "b", &["a"]),
                ws("3.json", "c", &["a"]),
                ws("4.json", "p", &["q"]),
                ws("5.json", "q", &["r"]),
                ws("6.json", "r", &["p", "c"]),
                ws("7.json", "s", &["s"]),
                ws("8.json", "t", &[]),
            ],
            vec![],
            vec![],
        );
        let ids: Vec<&str> = loaded.valid.iter().map(|w| w.id.as_str()).collect();
        assert_eq!(ids, vec!["c", "t"], "c only depends on a cycle member");
        let msgs: Vec<&str> = loaded.invalid.iter().map(|i| i.message.as_str()).collect();
        assert_eq!(
            msgs,
            vec![
                "1.json: field \"depends_on\": dependency cycle a -> b -> a",
                "2.json: field \"depends_on\": dependency cycle b -> a -> b",
                "4.json: field \"depends_on\": dependency cycle p -> q -> r -> p",
                "5.json: field \"depends_on\": dependency cycle q -> r -> p -> q",
                "6.json: field \"depends_on\": dependency cycle r -> p -> q -> r",
                "7.json: field \"depends_on\": dependency cycle s -> s",
            ]
        );
        assert!(loaded.invalid.iter().all(|i| i.id.is_some()));
    }

    #[test]
    fn long_cycles_and_chains_are_handled_quickly() {
        let n = 10_000;
        let id = |i: usize| format!("w{i:05}");
        let ring: Vec<Workstream> = (0..n)
            .map(|i| {
                let mut w = ws(&format!("{}.json", id(i)), &id(i), &[]);
                w.depends_on = vec![id((i + 1) % n)];
                w
            })
            .collect();
        let loaded = validate_set(ring, vec![], vec![]);
        assert!(loaded.valid.is_empty());
        assert_eq!(loaded.invalid.len(), n);
        assert_eq!(
            loaded.invalid[0].message,
            "w00000.json: field \"depends_on\": dependency cycle w00000 -> w00001 -> w00002 -> \
             w00003 -> w00004 -> w00005 -> w00006 -> w00007 -> … (9992 more) -> w00000"
        );
        let chain: Vec<Workstream> = (0..n)
            .map(|i| {
                let mut w = ws(&format!("{}.json", id(i)), &id(i), &[]);
                if i > 0 {
                    w.depends_on = vec![id(i - 1)];
                }
                w
            })
            .collect();
        let loaded = validate_set(chain, vec![], vec![]);
        assert_eq!(loaded.valid.len(), n);
    }

    #[test]
    fn load_dir_reads_only_json_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::write(
            p.join("ws-02.json"),
            r#"{"id":"ws-02","prompt":"do","depends_on":["ws-01"],"x":1}"#,
        )
        .unwrap();
        std::fs::write(p.join("ws-01.json"), r#"{"id":"ws-01","command":"true"}"#).unwrap();
        std::fs::write(p.join("ws-03.json"), "{\"id\": \"ws-03\",").unwrap();
        std::fs::write(p.join(".hidden.json"), "garbage").unwrap();
        std::fs::write(p.join("notes.txt"), "garbage").unwrap();
        std::fs::write(p.join("ws-01.json.bak"), "garbage").unwrap();
        std::fs::create_dir(p.join("sub.json")).unwrap();
        std::fs::write(p.join("sub.json").join("inner.json"), "garbage").unwrap();
        std::os::unix::fs::symlink(p.join("missing"), p.join("ws-04.json")).unwrap();
        std::os::unix::fs::symlink(p.join("ws-01.json"), p.join("ws-05.json")).unwrap();
        let big = vec![b' '; MAX_FILE_BYTES as usize + 1];
        std::fs::write(p.join("ws-06.json"), big).unwrap();

        let loaded = load_dir(p).unwrap();
        let valid: Vec<(&str, &str)> = loaded
            .valid
            .iter()
            .map(|w| (w.file.as_str(), w.id.as_str()))
            .collect();
        assert_eq!(
            valid,
            vec![("ws-01.json", "ws-01"), ("ws-02.json", "ws-02")]
        );
        let invalid: Vec<&str> = loaded.invalid.iter().map(|i| i.message.as_str()).collect();
        assert_eq!(invalid.len(), 4, "{invalid:?}");
        assert_eq!(
            invalid[0],
            "ws-03.json:1:15: invalid JSON: EOF while parsing a value"
        );
        assert!(
            invalid[1].starts_with("ws-04.json: failed to read file: "),
            "{}",
            invalid[1]
        );
        assert_eq!(
            invalid[2],
            "ws-05.json: field \"id\": duplicate id \"ws-01\" (already used by ws-01.json)"
        );
        assert_eq!(
            invalid[3],
            format!(
                "ws-06.json: file is too large ({} bytes; at most {MAX_FILE_BYTES})",
                MAX_FILE_BYTES + 1
            )
        );
        assert_eq!(
            loaded.warnings,
            vec!["ws-02.json: unknown field \"x\" (ignored)"]
        );

        assert!(load_dir(&p.join("nope")).is_err());
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(load_dir(empty.path()).unwrap(), Loaded::default());
    }

    #[test]
    fn select_only_keeps_named_workstreams() {
        let loaded = Loaded {
            valid: vec![
                ws("a.json", "a", &[]),
                ws("b.json", "b", &["a"]),
                ws("c.json", "c", &[]),
            ],
            invalid: vec![
                bad("d.json", Some("d")),
                bad("e.json", None),
                bad("f.json", None),
            ],
            warnings: vec![
                "a.json: unknown field \"x\" (ignored)".into(),
                "b.json: unknown field \"y\" (ignored)".into(),
            ],
        };
        let only: Vec<String> = ["b", " d", "zz", "", "b", "zz", "e", "f.json"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let (sel, unknown) = select_only(loaded, &only);
        assert_eq!(
            sel.valid,
            vec![ws("b.json", "b", &["a"])],
            "depends_on kept as written"
        );
        assert_eq!(
            sel.invalid,
            vec![bad("d.json", Some("d")), bad("e.json", None)]
        );
        assert_eq!(
            sel.warnings,
            vec!["b.json: unknown field \"y\" (ignored)".to_string()]
        );
        assert_eq!(unknown, vec!["zz".to_string(), "f.json".to_string()]);
    }

    // ---- hardening: deterministic fuzzing with a small xorshift PRNG ----

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
        fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
            &items[self.below(items.len())]
        }
    }

    const SEEDS: [&str; 4] = [
        r#"{"id":"ws-01","title":"t","command":"sh x.sh","test":"cargo test","timeout_secs":900,"depends_on":["ws-00"],"env":{"A":"b"}}"#,
        r#"{"id":"ws-02","prompt":"Do the thing","depends_on":["ws-01","ws-03"],"extra":[1,{"a":null}]}"#,
        r#"{"id":"ws-03","command":["cargo","build"],"timeout_secs":1.5,"env":{}}"#,
        "\u{feff}{\n  \"id\": \"ws-04\",\n  \"command\": \"true\"\n}\n",
    ];

    fn random_value(rng: &mut Rng, depth: usize) -> Value {
        let choice = if depth > 3 {
            rng.below(7)
        } else {
            rng.below(10)
        };
        match choice {
            0 => Value::Null,
            1 => Value::Bool(rng.below(2) == 0),
            2 => serde_json::json!(*rng.pick(&[0.0, -1.0, 1e308, -1e-300, 0.5, 1e-9, 3.0])),
            3 => serde_json::json!(*rng.pick(&[u64::MAX, 0, 1, 31_536_001])),
            4 => serde_json::json!(*rng.pick(&[i64::MIN, -5])),
            5 | 6 => Value::String(
                rng.pick(&[
                    "", "ws-01", "../x", "a/b", "\0", "WS_ID", ".", "é", " ", "ws-03",
                ])
                .to_string(),
            ),
            7 => Value::String("x".repeat(rng.below(5000))),
            8 => Value::Array(
                (0..rng.below(4))
                    .map(|_| random_value(rng, depth + 1))
                    .collect(),
            ),
            _ => {
                let mut m = Map::new();
                for _ in 0..rng.below(4) {
                    let k = rng.pick(&["A", "WS_X", "1", "", "id", "B_2"]).to_string();
                    m.insert(k, random_value(rng, depth + 1));
                }
                Value::Object(m)
            }
        }
    }

    fn mutate(rng: &mut Rng, seed: &str) -> Vec<u8> {
        let mut b = seed.as_bytes().to_vec();
        match rng.below(9) {
            0 => b.truncate(rng.below(b.len() + 1)),
            1 => {
                for _ in 0..1 + rng.below(4) {
                    let i = rng.below(b.len());
                    b[i] = rng.next() as u8;
                }
            }
            2 => {
                let i = rng.below(b.len() + 1);
                b.insert(i, *rng.pick(b"{}[]\",:0-.e\\\x00\xff"));
            }
            3 => {
                let i = rng.below(b.len());
                let j = (i + rng.below(20)).min(b.len());
                b.drain(i..j);
            }
            4 | 5 => {
                // Type swap: replace (or add) one field with a random value.
                let start = seed.trim_start_matches('\u{feff}');
                let mut v: Map<String, Value> = serde_json::from_str(start).unwrap();
                let field = rng.pick(&KNOWN_FIELDS).to_string();
                v.insert(field, random_value(rng, 0));
                b = serde_json::to_vec(&Value::Object(v)).unwrap();
            }
            6 => {
                // Deep nesting in a field, closed or not.
                let depth = *rng.pick(&[127, 128, 129, 1000, 10_000]);
                let open = rng.pick(&["[", "{\"a\":"]).repeat(depth);
                let close = if rng.below(2) == 0 {
                    String::new()
                } else if open.starts_with('[') {
                    format!("1{}", "]".repeat(depth))
                } else {
                    format!("1{}", "}".repeat(depth))
                };
                let field = rng.pick(&["command", "extra", "env", "depends_on"]);
                b = format!(r#"{{"id":"ws-09","{field}":{open}{close},"prompt":"p"}}"#)
                    .into_bytes();
            }
            7 => {
                // Huge numbers and long digit strings.
                let num = rng.pick(&[
                    "1e400",
                    "-1e400",
                    "123456789012345678901234567890",
                    "1e-400",
                    "0.0000001",
                ]);
                b = format!(r#"{{"id":"ws-10","command":"x","timeout_secs":{num}}}"#).into_bytes();
            }
            _ => {
                let other = rng.pick(&SEEDS).as_bytes();
                let cut = rng.below(b.len());
                b.truncate(cut);
                b.extend_from_slice(&other[rng.below(other.len())..]);
            }
        }
        b
    }

    fn check_outcome(file: &str, out: &Result<(Workstream, Vec<String>), InvalidWorkstream>) {
        match out {
            Ok((w, warnings)) => {
                assert_eq!(validate_id(&w.id), Ok(()));
                assert_eq!(w.file, file);
                assert!(!w.depends_on.contains(&w.id));
                let unique: HashSet<&String> = w.depends_on.iter().collect();
                assert_eq!(unique.len(), w.depends_on.len());
                assert!(w.depends_on.iter().all(|d| validate_id(d).is_ok()));
                assert!(w.env.keys().all(|k| validate_env_name(k).is_ok()));
                if let Some(t) = w.timeout {
                    assert!(t > Duration::ZERO && t <= MAX_TIMEOUT);
                }
                match &w.action {
                    Action::Shell(s) | Action::Prompt(s) => assert!(!s.trim().is_empty()),
                    Action::Argv(a) => assert!(!a.is_empty() && !a[0].is_empty()),
                }
                for warning in warnings {
                    assert!(warning.starts_with(&format!("{file}: ")), "{warning}");
                }
            }
            Err(e) => {
                assert_eq!(e.file, file);
                assert!(e.message.starts_with(&format!("{file}:")), "{}", e.message);
                assert!(e.message.len() > file.len() + 2, "{}", e.message);
                if let Some(id) = &e.id {
                    assert_eq!(validate_id(id), Ok(()));
                }
            }
        }
    }

    #[test]
    fn fuzz_parse_never_panics_and_always_explains() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut parsed = Vec::new();
        let mut invalid = Vec::new();
        let (mut n_ok, mut n_err) = (0, 0);
        for round in 0..6000 {
            let file = format!("f{round:04}.json");
            let bytes: Vec<u8> = if round % 2 == 0 {
                let len = rng.below(64);
                if round % 4 == 0 {
                    (0..len).map(|_| rng.next() as u8).collect()
                } else {
                    let alphabet = b"{}[]\":, 0123456789.eE-+truefalsnid\\u\n\xef\xbb\xbf";
                    (0..len).map(|_| *rng.pick(alphabet)).collect()
                }
            } else {
                let seed = *rng.pick(&SEEDS);
                mutate(&mut rng, seed)
            };
            let out = parse_workstream(&file, &bytes);
            check_outcome(&file, &out);
            match out {
                Ok((w, _)) => {
                    n_ok += 1;
                    parsed.push(w)
                }
                Err(e) => {
                    n_err += 1;
                    invalid.push(e)
                }
            }
        }
        assert!(
            n_ok > 100 && n_err > 1000,
            "fuzzing should hit both: {n_ok} ok, {n_err} err"
        );
        let total = parsed.len() + invalid.len();
        let loaded = validate_set(parsed, invalid, vec![]);
        assert_eq!(loaded.valid.len() + loaded.invalid.len(), total);
        for i in &loaded.invalid {
            assert!(
                i.message.starts_with(&format!("{}:", i.file)),
                "{}",
                i.message
            );
        }
    }

    /// Random sets of workstreams over a small id pool (so duplicates, unknown dependencies
    /// and cycles are common): validate_set's guarantees hold on every one.
    #[test]
    fn fuzz_validate_set_invariants() {
        let mut rng = Rng(42);
        let pool = ["a", "b", "c", "d", "e", "f", "A", "g"];
        for _ in 0..2000 {
            let n = rng.below(9);
            let mut valid = Vec::new();
            let mut invalid = Vec::new();
            for k in 0..n {
                let file = format!("{}.json", rng.below(20) * 10 + k);
                if rng.below(5) == 0 {
                    let id = (rng.below(2) == 0).then(|| rng.pick(&pool).to_string());
                    invalid.push(InvalidWorkstream {
                        message: format!("{file}: broken"),
                        file,
                        id,
                    });
                } else {
                    let id = *rng.pick(&pool);
                    let deps: Vec<&str> = (0..rng.below(3))
                        .map(|_| *rng.pick(&pool))
                        .filter(|d| *d != id)
                        .collect::<HashSet<_>>()
                        .into_iter()
                        .collect();
                    valid.push(ws(&file, id, &deps));
                }
            }
            let deps_by_file: HashMap<String, Vec<String>> = valid
                .iter()
                .map(|w| (w.file.clone(), w.depends_on.clone()))
                .collect();
            let loaded = validate_set(valid, invalid, vec![]);
            // The dependency graph among id holders that came in valid.
            let input_graph: HashMap<String, Vec<String>> = loaded
                .valid
                .iter()
                .map(|w| (w.file.as_str(), w.id.as_str()))
                .chain(
                    loaded
                        .invalid
                        .iter()
                        .filter_map(|i| Some((i.file.as_str(), i.id.as_deref()?))),
                )
                .filter_map(|(file, id)| Some((id.to_string(), deps_by_file.get(file)?.clone())))
                .collect();
            assert_eq!(loaded.valid.len() + loaded.invalid.len(), n);
            assert!(loaded.valid.windows(2).all(|p| p[0].file <= p[1].file));
            assert!(loaded.invalid.windows(2).all(|p| p[0].file <= p[1].file));
            let mut holders = HashSet::new();
            for id in loaded
                .valid
                .iter()
                .map(|w| &w.id)
                .chain(loaded.invalid.iter().filter_map(|i| i.id.as_ref()))
            {
                assert!(
                    holders.insert(id.to_ascii_lowercase()),
                    "duplicate holder {id}"
                );
            }
            let held: HashSet<&str> = loaded
                .valid
                .iter()
                .map(|w| w.id.as_str())
                .chain(loaded.invalid.iter().filter_map(|i| i.id.as_deref()))
                .collect();
            for w in &loaded.valid {
                assert!(w.depends_on.iter().all(|d| held.contains(d.as_str())));
            }
            // No cycle among the valid ones (Kahn).
            let valid_ids: HashSet<&str> = loaded.valid.iter().map(|w| w.id.as_str()).collect();
            let mut remaining: Vec<&Workstream> = loaded.valid.iter().collect();
            let mut done: HashSet<&str> = HashSet::new();
            while !remaining.is_empty() {
                let before = remaining.len();
                remaining.retain(|w| {
                    let ready = w
                        .depends_on
                        .iter()
                        .all(|d| !valid_ids.contains(d.as_str()) || done.contains(d.as_str()));
                    if ready {
                        done.insert(w.id.as_str());
                    }
                    !ready
                });
                assert!(
                    remaining.len() < before,
                    "cycle left among valid workstreams"
                );
            }
            // Every "dependency cycle" rejection really is on a cycle of the input graph.
            for i in &loaded.invalid {
                if i.message.contains("dependency cycle") {
                    let id = i.id.as_deref().unwrap();
                    let mut stack: Vec<&str> = input_graph[id].iter().map(|s| s.as_str()).collect();
                    let mut seen = HashSet::new();
                    let mut found = false;
                    while let Some(v) = stack.pop() {
                        if v == id {
                            found = true;
                            break;
                        }
                        if seen.insert(v) {
                            if let Some(next) = input_graph.get(v) {
                                stack.extend(next.iter().map(|s| s.as_str()));
                            }
                        }
                    }
                    assert!(found, "{} is not on a cycle", i.message);
                }
            }
        }
    }
}
