//! One file's bytes into a JSON object: UTF-8 (a BOM is skipped), not empty, valid JSON
//! (errors at `file:line:column`), an object at the top level, no key twice. The object's
//! fields are then read by `fields`.

use super::fields::{from_object, type_name};
use super::{InvalidWorkstream, Workstream};
use crate::text::quote;
use serde::de::{IgnoredAny, MapAccess, Visitor};
use serde_json::Value;
use std::collections::HashSet;
use std::fmt;

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

#[cfg(test)]
mod tests {
    use super::super::test_util::{err, ok};
    use super::*;

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
}
