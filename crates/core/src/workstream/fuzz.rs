//! Hardening: deterministic fuzzing with a small xorshift PRNG. Random and mutated files
//! through [`parse_workstream`], random sets through [`validate_set`]: nothing panics, every
//! rejection explains itself, and the set's guarantees hold.

use super::fields::{validate_env_name, validate_id};
use super::test_util::ws;
use super::*;
use crate::text::MAX_TIMEOUT;
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};
use std::time::Duration;

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
            b = format!(r#"{{"id":"ws-09","{field}":{open}{close},"prompt":"p"}}"#).into_bytes();
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
