//! The `$WS_METRICS` file: any command may write one JSON object there with what it spent
//! (`cost_usd`, `input_tokens`, `output_tokens`, `cached_input_tokens`, `turns`, `model`,
//! `session_id`; anything else is kept as it is). Whatever is wrong with the file — not
//! JSON, not an object, too big, a negative or non-numeric cost — gives a warning and is
//! left out; it never fails the workstream.

use crate::model::Usage;
use serde_json::{Map, Value};
use std::path::Path;

/// Largest metrics file read; a bigger one is ignored with a warning.
pub const MAX_METRICS_BYTES: u64 = 64 * 1024;
/// Longest string kept (model, session id).
const MAX_TEXT: usize = 200;

/// Read the metrics file at `path`: `(usage, warnings)`. No file, or an empty one, is no
/// usage and no warning.
pub fn read(path: &Path) -> (Option<Usage>, Vec<String>) {
    let name = path.display();
    match std::fs::metadata(path) {
        Err(_) => return (None, Vec::new()),
        Ok(m) if m.len() > MAX_METRICS_BYTES => {
            return (
                None,
                vec![format!(
                    "WS_METRICS file {name} is {} bytes, more than {MAX_METRICS_BYTES}: ignored",
                    m.len()
                )],
            )
        }
        Ok(_) => {}
    }
    match std::fs::read(path) {
        Ok(bytes) => parse(&bytes, &name.to_string()),
        Err(e) => (
            None,
            vec![format!("failed to read WS_METRICS file {name}: {e}")],
        ),
    }
}

/// Parse a metrics file's bytes (`name` for messages).
pub fn parse(bytes: &[u8], name: &str) -> (Option<Usage>, Vec<String>) {
    let mut warnings = Vec::new();
    if bytes.len() as u64 > MAX_METRICS_BYTES {
        warnings.push(format!(
            "WS_METRICS file {name} is {} bytes, more than {MAX_METRICS_BYTES}: ignored",
            bytes.len()
        ));
        return (None, warnings);
    }
    let text = String::from_utf8_lossy(bytes);
    if text.trim().is_empty() {
        return (None, warnings);
    }
    let obj: Map<String, Value> = match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(o)) => o,
        Ok(_) => {
            warnings.push(format!(
                "WS_METRICS file {name}: expected a JSON object: ignored"
            ));
            return (None, warnings);
        }
        Err(e) => {
            warnings.push(format!(
                "WS_METRICS file {name} is not valid JSON ({e}): ignored"
            ));
            return (None, warnings);
        }
    };
    let mut u = Usage {
        source: "metrics".to_string(),
        ..Usage::default()
    };
    let mut any = false;
    for (key, value) in obj {
        let bad = |what: &str| {
            format!(
                "WS_METRICS file {name}: field {key:?} {what} (got {}): ignored",
                short(&value)
            )
        };
        match key.as_str() {
            "cost_usd" => match value.as_f64() {
                Some(c) if c.is_finite() && c >= 0.0 => {
                    u.cost_usd = Some(c);
                    any = true;
                }
                _ => warnings.push(bad("must be a number of dollars, 0 or more")),
            },
            "input_tokens" | "output_tokens" | "cached_input_tokens" | "turns" => {
                match value.as_u64() {
                    Some(n) => {
                        let slot = match key.as_str() {
                            "input_tokens" => &mut u.input_tokens,
                            "output_tokens" => &mut u.output_tokens,
                            "cached_input_tokens" => &mut u.cached_input_tokens,
                            _ => &mut u.turns,
                        };
                        *slot = Some(n);
                        any = true;
                    }
                    None => warnings.push(bad("must be a whole number, 0 or more")),
                }
            }
            "model" | "session_id" => match value.as_str() {
                Some(s) if !s.trim().is_empty() => {
                    let s: String = s.chars().take(MAX_TEXT).collect();
                    if key == "model" {
                        u.model = Some(s);
                    } else {
                        u.session_id = Some(s);
                    }
                    any = true;
                }
                _ => warnings.push(bad("must be a non-empty string")),
            },
            _ => {
                u.extra.insert(key, value);
                any = true;
            }
        }
    }
    (any.then_some(u), warnings)
}

/// A value for a message: its JSON, cut to 40 characters.
fn short(v: &Value) -> String {
    let s = v.to_string();
    match s.char_indices().nth(40) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_fields_and_the_rest_as_is() {
        let (u, w) = parse(
            br#"{"cost_usd": 0.42, "input_tokens": 1200, "output_tokens": 300, "model": "m", "latency_ms": 12, "tags": ["a"]}"#,
            "m.json",
        );
        assert!(w.is_empty(), "{w:?}");
        let u = u.unwrap();
        assert_eq!(u.cost_usd, Some(0.42));
        assert_eq!((u.input_tokens, u.output_tokens), (Some(1200), Some(300)));
        assert_eq!(u.model.as_deref(), Some("m"));
        assert_eq!(u.source, "metrics");
        assert_eq!(u.extra["latency_ms"], 12);
        assert_eq!(u.extra["tags"], serde_json::json!(["a"]));
    }

    #[test]
    fn hostile_files_warn_and_never_fail() {
        let (u, w) = parse(b"\x00\xffgarbage", "g.json");
        assert!(u.is_none());
        assert!(w[0].contains("not valid JSON"), "{w:?}");
        let (u, w) = parse(b"[1, 2]", "a.json");
        assert!(
            u.is_none() && w[0].contains("expected a JSON object"),
            "{w:?}"
        );
        let (u, w) = parse(
            br#"{"cost_usd": -3, "input_tokens": 1.5, "output_tokens": -1, "model": 7, "turns": 2}"#,
            "n.json",
        );
        assert_eq!(w.len(), 4, "{w:?}");
        assert!(
            w[0].contains("\"cost_usd\"") && w[0].contains("-3"),
            "{w:?}"
        );
        let u = u.unwrap();
        assert_eq!((u.cost_usd, u.turns), (None, Some(2)));
        let huge = vec![b' '; (MAX_METRICS_BYTES + 1) as usize];
        let (u, w) = parse(&huge, "h.json");
        assert!(u.is_none() && w[0].contains("more than"), "{w:?}");
        assert_eq!(parse(b"  \n", "e.json"), (None, vec![]));
        let (u, w) = parse(br#"{"cost_usd": 1e400}"#, "inf.json");
        assert!(u.is_none() && !w.is_empty(), "{w:?}");
    }

    #[test]
    fn missing_file_is_no_usage() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(read(&d.path().join("none.json")), (None, vec![]));
        let p = d.path().join("big.json");
        std::fs::write(&p, vec![b'x'; 70_000]).unwrap();
        let (u, w) = read(&p);
        assert!(u.is_none() && w[0].contains("70000 bytes"), "{w:?}");
    }
}
