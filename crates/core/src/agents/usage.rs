//! Reading usage (cost, tokens, turns, model, session) from each preset's structured output,
//! line by line as it streams, and adding usages up. Pure: the caller feeds lines.
//!
//! Fields read, by agent (everything else in the output is ignored):
//!
//! - Claude Code, `--output-format stream-json`: `system`/`init` → `session_id`, `model`;
//!   while running, per API message id: `assistant` → `message.usage.{input_tokens,
//!   output_tokens, cache_read_input_tokens}`, and with `--include-partial-messages` the
//!   `stream_event`s `message_start` (the same) and `message_delta` → `usage.output_tokens`,
//!   the message's final count (an `assistant` event is written before it and says 1), so a
//!   run killed before its result still counts what it got; `result` → `total_cost_usd`,
//!   `num_turns`, `session_id`, `usage.{input_tokens, output_tokens,
//!   cache_read_input_tokens}` (or, when that is all zeros, as in a result stopped by
//!   `--max-budget-usd`, the sum of `modelUsage.*.{inputTokens, outputTokens,
//!   cacheReadInputTokens}`), `modelUsage` keys (the model), `subtype`
//!   (`error_max_budget_usd`), `is_error`.
//! - Codex CLI, `exec --json`: `thread.started` → `thread_id` (the session);
//!   `turn.completed` → `usage.{input_tokens, cached_input_tokens, output_tokens}`, summed
//!   over turns, one turn each. Codex reports no cost.
//! - Aider (plain text): `Model: NAME with …` / `Main model: NAME with …`; each
//!   `Tokens: N sent, [N cache write, N cache hit,] N received.` (summed; one turn each);
//!   `Cost: $X message, $Y session.` (`request` in older versions) → the last session cost.
//!   aider rounds what it prints: counts from 1,000 on (`2.6k`), costs to two decimals from
//!   $0.01 on and to about two significant digits below. The fields read from rounded text
//!   are listed in the usage's `extra.rounded` (`["cost_usd", "input_tokens", …]`). With
//!   `--no-stream` (the preset's) the counts are the API's; streamed, aider estimates them.
//! - Gemini CLI, `--output-format stream-json`: `init` → `session_id`, `model`; `result` →
//!   `stats.{input_tokens, output_tokens, cached}` (and `stats.models` keys for the model).
//!   Gemini reports no cost. Its `--output-format json` (one pretty-printed object, if
//!   `ws.agentArgs` asks for it) is read at the end: `session_id`, and per model in
//!   `stats.models` `tokens.{prompt, candidates, cached}`.

use super::preset::Preset;
use crate::model::Usage;
use serde_json::Value;
use std::collections::{BTreeSet, HashMap, HashSet};

/// One Claude API message's tokens.
#[derive(Debug, Clone, Copy, Default)]
struct MessageUsage {
    input: Option<u64>,
    output: Option<u64>,
    cached: Option<u64>,
}

/// Longest line parsed as JSON; longer lines (huge tool outputs) are skipped.
pub const MAX_LINE_BYTES: usize = 4 * 1024 * 1024;

/// Streaming state of one attempt's output for one preset.
#[derive(Debug, Clone)]
pub struct Parser {
    preset: Preset,
    usage: Usage,
    /// Any usage field seen at all.
    seen: bool,
    /// Claude: usage per API message id while running; the final result replaces the sums.
    messages: HashMap<String, MessageUsage>,
    /// Claude: the message being streamed (`message_start` seen, its `message_delta` not).
    current: Option<String>,
    /// Aider: fields read from rounded numbers.
    rounded: BTreeSet<&'static str>,
    /// Aider: the sum of its per-message costs (each printed with about two significant
    /// digits, so more precise than its session cost once that is past $0.01).
    aider_messages_usd: f64,
    /// Aider: how far that sum may be off (half a unit of each message cost's last digit).
    aider_messages_err: f64,
    final_result: bool,
    /// Claude stopped itself because of `--max-budget-usd`.
    over_budget: bool,
    /// Gemini: the output so far (up to [`MAX_WHOLE_BYTES`]), for `--output-format json`.
    whole: String,
}

/// Most output kept for parsing it whole at the end (Gemini's pretty-printed JSON).
const MAX_WHOLE_BYTES: usize = 1024 * 1024;

impl Parser {
    pub fn new(preset: Preset) -> Parser {
        Parser {
            preset,
            usage: Usage {
                source: preset.name().to_string(),
                ..Usage::default()
            },
            seen: false,
            messages: HashMap::new(),
            current: None,
            rounded: BTreeSet::new(),
            aider_messages_usd: 0.0,
            aider_messages_err: 0.0,
            final_result: false,
            over_budget: false,
            whole: String::new(),
        }
    }

    /// Feed one line of output (without its newline).
    pub fn line(&mut self, line: &str) {
        if line.len() > MAX_LINE_BYTES {
            return;
        }
        if self.preset == Preset::Gemini && self.whole.len() + line.len() < MAX_WHOLE_BYTES {
            self.whole.push_str(line);
            self.whole.push('\n');
        }
        match self.preset {
            Preset::Aider => self.aider(line),
            _ => {
                let t = line.trim();
                if !t.starts_with('{') {
                    return;
                }
                let Ok(Value::Object(v)) = serde_json::from_str::<Value>(t) else {
                    return;
                };
                let v = Value::Object(v);
                match self.preset {
                    Preset::Claude => self.claude(&v),
                    Preset::Codex => self.codex(&v),
                    Preset::Gemini => self.gemini(&v),
                    Preset::Aider => {}
                }
            }
        }
    }

    /// The output has ended: read what only the whole of it says (Gemini's JSON object).
    pub fn finish(&mut self) {
        if self.preset != Preset::Gemini || self.seen {
            return;
        }
        let Some(start) = self.whole.find('{') else {
            return;
        };
        let Ok(v) = serde_json::from_str::<Value>(self.whole[start..].trim_end()) else {
            return;
        };
        let Some(models) = v["stats"]["models"].as_object() else {
            return;
        };
        let u = &mut self.usage;
        set_str(&mut u.session_id, &v["session_id"]);
        for m in models.values() {
            let t = &m["tokens"];
            add_u64(&mut u.input_tokens, &t["prompt"]);
            add_u64(&mut u.output_tokens, &t["candidates"]);
            add_u64(&mut u.cached_input_tokens, &t["cached"]);
        }
        if let Some(m) = one_key(&v["stats"]["models"]) {
            u.model = Some(m);
        }
        self.seen = true;
    }

    /// What was reported so far; None when nothing was. Aider's fields read from rounded
    /// numbers are listed in `extra.rounded`.
    pub fn usage(&self) -> Option<Usage> {
        self.seen.then(|| {
            let mut u = self.usage.clone();
            if !self.rounded.is_empty() {
                let fields: Vec<String> = self.rounded.iter().map(|f| f.to_string()).collect();
                u.extra.insert("rounded".to_string(), Value::from(fields));
            }
            u
        })
    }

    /// Whether the agent stopped itself for its budget (Claude Code's result subtype
    /// `error_max_budget_usd`).
    pub fn over_budget(&self) -> bool {
        self.over_budget
    }

    fn claude(&mut self, v: &Value) {
        match v["type"].as_str() {
            Some("system") if v["subtype"] == "init" => {
                let u = &mut self.usage;
                set_str(&mut u.session_id, &v["session_id"]);
                set_str(&mut u.model, &v["model"]);
                self.seen |= u.model.is_some() || u.session_id.is_some();
            }
            Some("assistant") if !self.final_result => {
                let m = &v["message"];
                set_str(&mut self.usage.session_id, &v["session_id"]);
                if self.usage.model.is_none() {
                    set_str(&mut self.usage.model, &m["model"]);
                }
                if m["usage"].is_object() {
                    let id = m["id"].as_str().map(str::to_string);
                    self.claude_message(id, &m["usage"], false);
                }
            }
            Some("stream_event") if !self.final_result => {
                let e = &v["event"];
                match e["type"].as_str() {
                    Some("message_start") if e["message"]["usage"].is_object() => {
                        let id = e["message"]["id"].as_str().map(str::to_string);
                        self.current.clone_from(&id);
                        self.claude_message(id, &e["message"]["usage"], false);
                    }
                    Some("message_delta") if e["usage"].is_object() => {
                        let id = v["api_message_id"]
                            .as_str()
                            .map(str::to_string)
                            .or_else(|| self.current.clone());
                        self.claude_message(id, &e["usage"], true);
                    }
                    _ => {}
                }
            }
            Some("result") => {
                self.final_result = true;
                self.seen = true;
                if v["subtype"] == "error_max_budget_usd" {
                    self.over_budget = true;
                }
                let u = &mut self.usage;
                set_str(&mut u.session_id, &v["session_id"]);
                if let Some(c) = usd(&v["total_cost_usd"]) {
                    u.cost_usd = Some(c);
                }
                if let Some(n) = count(&v["num_turns"]) {
                    u.turns = Some(n);
                }
                let us = &v["usage"];
                let empty = ["input_tokens", "output_tokens", "cache_read_input_tokens"]
                    .iter()
                    .all(|k| count(&us[*k]).unwrap_or(0) == 0);
                let per_model = v["modelUsage"].as_object().filter(|m| {
                    m.values().any(|x| {
                        count(&x["inputTokens"]).unwrap_or(0)
                            + count(&x["outputTokens"]).unwrap_or(0)
                            > 0
                    })
                });
                match (per_model, us.is_object()) {
                    // Stopped by its budget: `usage` is all zeros, `modelUsage` has them.
                    (Some(models), _) if empty => {
                        let sum =
                            |k: &str| models.values().filter_map(|x| count(&x[k])).sum::<u64>();
                        u.input_tokens = Some(sum("inputTokens"));
                        u.output_tokens = Some(sum("outputTokens"));
                        u.cached_input_tokens = Some(sum("cacheReadInputTokens"));
                    }
                    (_, true) => {
                        u.input_tokens = count(&us["input_tokens"]).or(u.input_tokens);
                        u.output_tokens = count(&us["output_tokens"]).or(u.output_tokens);
                        u.cached_input_tokens =
                            count(&us["cache_read_input_tokens"]).or(u.cached_input_tokens);
                    }
                    _ => {}
                }
                if let Some(m) = one_key(&v["modelUsage"]) {
                    u.model = Some(m);
                }
            }
            _ => {}
        }
    }

    /// Claude: one message's usage as streamed (`id` None: a message of its own). An
    /// `assistant` event repeats a message (once per content block, and for parallel tool
    /// uses) with the usage of its start; a `message_delta` (`last`) gives the final output
    /// count.
    fn claude_message(&mut self, id: Option<String>, us: &Value, last: bool) {
        let key = id.unwrap_or_else(|| format!("#{}", self.messages.len()));
        let m = self.messages.entry(key).or_default();
        let output = count(&us["output_tokens"]);
        m.input = m.input.max(count(&us["input_tokens"]));
        m.cached = m.cached.max(count(&us["cache_read_input_tokens"]));
        m.output = if last {
            output.or(m.output)
        } else {
            m.output.max(output)
        };
        let sum = |f: fn(&MessageUsage) -> Option<u64>| {
            self.messages
                .values()
                .filter_map(f)
                .fold(None, |a: Option<u64>, n| {
                    Some(a.unwrap_or(0).saturating_add(n))
                })
        };
        self.usage.input_tokens = sum(|m| m.input);
        self.usage.output_tokens = sum(|m| m.output);
        self.usage.cached_input_tokens = sum(|m| m.cached);
        self.seen = true;
    }

    fn codex(&mut self, v: &Value) {
        let u = &mut self.usage;
        match v["type"].as_str() {
            Some("thread.started") => {
                set_str(&mut u.session_id, &v["thread_id"]);
                self.seen |= u.session_id.is_some();
            }
            Some("turn.completed") => {
                let us = &v["usage"];
                add_u64(&mut u.input_tokens, &us["input_tokens"]);
                add_u64(&mut u.cached_input_tokens, &us["cached_input_tokens"]);
                add_u64(&mut u.output_tokens, &us["output_tokens"]);
                u.turns = Some(u.turns.unwrap_or(0) + 1);
                self.seen = true;
            }
            _ => {}
        }
    }

    fn gemini(&mut self, v: &Value) {
        let u = &mut self.usage;
        match v["type"].as_str() {
            Some("init") => {
                set_str(&mut u.session_id, &v["session_id"]);
                set_str(&mut u.model, &v["model"]);
                self.seen |= u.model.is_some() || u.session_id.is_some();
            }
            Some("result") => {
                let st = &v["stats"];
                if st.is_object() {
                    u.input_tokens = count(&st["input_tokens"]).or(u.input_tokens);
                    u.output_tokens = count(&st["output_tokens"]).or(u.output_tokens);
                    u.cached_input_tokens = count(&st["cached"]).or(u.cached_input_tokens);
                    if let Some(m) = one_key(&st["models"]) {
                        u.model = Some(m);
                    }
                    self.seen = true;
                }
            }
            _ => {}
        }
    }

    fn aider(&mut self, line: &str) {
        let u = &mut self.usage;
        let l = line.trim_start_matches(['>', ' ']).trim_end();
        for prefix in ["Main model: ", "Model: "] {
            if let Some(rest) = l.strip_prefix(prefix) {
                if let Some((name, _)) = rest.split_once(" with ") {
                    u.model = Some(name.trim().to_string());
                    self.seen = true;
                }
            }
        }
        if let Some(i) = l.find("Tokens: ") {
            let rest = &l[i + "Tokens: ".len()..];
            let tokens = rest.split_once("Cost:").map_or(rest, |(t, _)| t);
            let (mut sent, mut received) = (None, None);
            for part in tokens.split(',') {
                let part = part.trim().trim_end_matches('.').trim();
                let rounded = part.ends_with("k sent")
                    || part.ends_with("k received")
                    || part.ends_with("k cache hit");
                if let Some(n) = part.strip_suffix(" sent") {
                    sent = aider_count(n);
                    if rounded {
                        self.rounded.insert("input_tokens");
                    }
                } else if let Some(n) = part.strip_suffix(" received") {
                    received = aider_count(n);
                    if rounded {
                        self.rounded.insert("output_tokens");
                    }
                } else if let Some(n) = part.strip_suffix(" cache hit") {
                    if let Some(n) = aider_count(n) {
                        u.cached_input_tokens = Some(u.cached_input_tokens.unwrap_or(0) + n);
                    }
                    if rounded {
                        self.rounded.insert("cached_input_tokens");
                    }
                }
            }
            if sent.is_some() || received.is_some() {
                u.input_tokens = Some(u.input_tokens.unwrap_or(0) + sent.unwrap_or(0));
                u.output_tokens = Some(u.output_tokens.unwrap_or(0) + received.unwrap_or(0));
                u.turns = Some(u.turns.unwrap_or(0) + 1);
                self.seen = true;
            }
        }
        if let Some(i) = l.find("Cost: $") {
            // "Cost: $0.0013 message, $0.0104 session." — the session total, cumulative.
            let rest = &l[i..];
            let message = rest
                .split_once(" message")
                .and_then(|(before, _)| aider_usd(before.rsplit_once('$')?.1));
            if let Some((m, decimals)) = message {
                self.aider_messages_usd += m;
                self.aider_messages_err += half_unit(decimals);
            }
            if let Some(j) = rest.find(" session") {
                let before = &rest[..j];
                if let Some((c, decimals)) = before.rsplit_once('$').and_then(|(_, v)| aider_usd(v))
                {
                    let messages = (self.aider_messages_usd, self.aider_messages_err);
                    u.cost_usd = Some(aider_session_cost(c, decimals, messages));
                    self.rounded.insert("cost_usd");
                    self.seen = true;
                }
            }
        }
    }
}

/// An amount aider printed (`0.0134`, `0.01`): the value and how many decimals it had.
fn aider_usd(text: &str) -> Option<(f64, usize)> {
    let t = text.trim();
    let c: f64 = t.parse().ok()?;
    let decimals = t.split_once('.').map_or(0, |(_, d)| d.len());
    (c.is_finite() && c >= 0.0).then_some((c, decimals))
}

/// Aider's session cost, as precise as its output allows: it prints the session's total to
/// 2 decimals from $0.01 on (`$0.01` for $0.0134), but each message's cost below $0.01 with
/// about two significant digits; their sum (`messages`: the sum and how far it may be off)
/// is used when it is more precise than the printed `session` (`decimals` decimals) and
/// rounds to it, else the printed value. Either is still rounded.
fn aider_session_cost(session: f64, decimals: usize, messages: (f64, f64)) -> f64 {
    let (sum, err) = messages;
    let half = half_unit(decimals);
    if sum > 0.0 && err < half && (sum - session).abs() <= half + 1e-12 {
        sum
    } else {
        session
    }
}

/// Half a unit of the last of `decimals` decimals: how far a number printed so may be off.
fn half_unit(decimals: usize) -> f64 {
    0.5 * 10f64.powi(-(decimals.min(12) as i32))
}

/// Aider's token counts: `797`, `2.3k`, `12k` (rounded by aider: an estimate).
fn aider_count(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mult) = match s.strip_suffix('k') {
        Some(n) => (n, 1000.0),
        None => (s, 1.0),
    };
    let v: f64 = num.trim().parse().ok()?;
    (v.is_finite() && v >= 0.0).then(|| (v * mult).round() as u64)
}

fn set_str(slot: &mut Option<String>, v: &Value) {
    if let Some(s) = v.as_str().filter(|s| !s.is_empty()) {
        *slot = Some(s.chars().take(200).collect());
    }
}

fn count(v: &Value) -> Option<u64> {
    v.as_u64()
}

fn usd(v: &Value) -> Option<f64> {
    v.as_f64().filter(|c| c.is_finite() && *c >= 0.0)
}

fn add_u64(slot: &mut Option<u64>, v: &Value) {
    if let Some(n) = count(v) {
        *slot = Some(slot.unwrap_or(0).saturating_add(n));
    }
}

/// The only key of an object (a per-model breakdown with one model).
fn one_key(v: &Value) -> Option<String> {
    let o = v.as_object()?;
    match o.len() {
        1 => o.keys().next().cloned(),
        0 => None,
        _ => Some(o.keys().cloned().collect::<Vec<_>>().join(", ")),
    }
}

/// `a` then `b` on top: the fields `b` has win, the rest stay (the `$WS_METRICS` file
/// overrides what the output said, field by field). Sources are joined with `+`.
pub fn overlay(a: Option<Usage>, b: Option<Usage>) -> Option<Usage> {
    match (a, b) {
        (None, x) | (x, None) => x,
        (Some(mut a), Some(b)) => {
            a.cost_usd = b.cost_usd.or(a.cost_usd);
            a.input_tokens = b.input_tokens.or(a.input_tokens);
            a.output_tokens = b.output_tokens.or(a.output_tokens);
            a.cached_input_tokens = b.cached_input_tokens.or(a.cached_input_tokens);
            a.turns = b.turns.or(a.turns);
            a.model = b.model.or(a.model);
            a.session_id = b.session_id.or(a.session_id);
            a.source = join_sources(&a.source, &b.source);
            a.extra.extend(b.extra);
            Some(a)
        }
    }
}

fn join_sources(a: &str, b: &str) -> String {
    let mut parts: Vec<&str> = a.split('+').chain(b.split('+')).collect();
    parts.retain(|p| !p.is_empty());
    let mut seen = HashSet::new();
    parts.retain(|p| seen.insert(*p));
    parts.join("+")
}

/// The sum of two usages (attempts of one workstream, workstreams of one agent, a run):
/// counts and costs add up, a field known on one side only is kept; models and sessions
/// are kept when they agree (models are listed, `a, b`, when they differ).
pub fn add(a: Option<&Usage>, b: Option<&Usage>) -> Option<Usage> {
    match (a, b) {
        (None, None) => None,
        (Some(x), None) | (None, Some(x)) => Some(x.clone()),
        (Some(a), Some(b)) => {
            let f = |x: Option<f64>, y: Option<f64>| match (x, y) {
                (None, None) => None,
                (x, y) => Some(x.unwrap_or(0.0) + y.unwrap_or(0.0)),
            };
            let n = |x: Option<u64>, y: Option<u64>| match (x, y) {
                (None, None) => None,
                (x, y) => Some(x.unwrap_or(0).saturating_add(y.unwrap_or(0))),
            };
            let model = match (&a.model, &b.model) {
                (Some(x), Some(y)) if x != y => {
                    let mut m: Vec<&str> = x.split(", ").chain(y.split(", ")).collect();
                    m.sort_unstable();
                    m.dedup();
                    Some(m.join(", "))
                }
                (x, y) => x.clone().or(y.clone()),
            };
            let session_id = match (&a.session_id, &b.session_id) {
                (Some(x), Some(y)) if x != y => None,
                (x, y) => x.clone().or(y.clone()),
            };
            let mut extra = a.extra.clone();
            for (k, v) in &b.extra {
                extra.entry(k.clone()).or_insert_with(|| v.clone());
            }
            Some(Usage {
                cost_usd: f(a.cost_usd, b.cost_usd),
                input_tokens: n(a.input_tokens, b.input_tokens),
                output_tokens: n(a.output_tokens, b.output_tokens),
                cached_input_tokens: n(a.cached_input_tokens, b.cached_input_tokens),
                turns: n(a.turns, b.turns),
                model,
                session_id,
                source: join_sources(&a.source, &b.source),
                extra,
            })
        }
    }
}

/// The sum of many usages; None when none reported anything.
pub fn sum<'a>(items: impl IntoIterator<Item = &'a Usage>) -> Option<Usage> {
    items
        .into_iter()
        .fold(None, |acc, u| add(acc.as_ref(), Some(u)))
}

/// Whether `u`'s cost was read from a rounded number (aider's, listed in `extra.rounded`):
/// reports show it as `≈$0.0134`.
pub fn cost_is_rounded(u: &Usage) -> bool {
    u.extra
        .get("rounded")
        .and_then(Value::as_array)
        .is_some_and(|a| a.iter().any(|f| f == "cost_usd"))
}

/// The key in a workstream's usage `extra` holding the turns of all its attempts, when a
/// retried attempt had turns of its own ([`add_attempt`]).
pub const TURNS_ALL_ATTEMPTS: &str = "turns_all_attempts";

/// A workstream's usage after one more attempt: what it spent (cost, tokens) is the sum of
/// every attempt, since each was paid for; its `turns` are those of the attempt that
/// produced the result (`attempt`, the latest), so a failed and retried attempt does not
/// make the work look longer. The sum of every attempt's turns, when it differs, is kept
/// as `extra.turns_all_attempts`. Each attempt's own usage keeps its own turns.
pub fn add_attempt(spent: Option<&Usage>, attempt: Option<&Usage>) -> Option<Usage> {
    let mut total = add(spent, attempt)?;
    let all_turns = total.turns;
    let earlier_all = spent.and_then(|s| {
        s.extra
            .get(TURNS_ALL_ATTEMPTS)
            .and_then(Value::as_u64)
            .or(s.turns)
    });
    total.turns = attempt.and_then(|a| a.turns);
    let all = match (earlier_all, attempt.and_then(|a| a.turns)) {
        (None, None) => None,
        (x, y) => Some(x.unwrap_or(0) + y.unwrap_or(0)),
    }
    .or(all_turns);
    total.extra.remove(TURNS_ALL_ATTEMPTS);
    if spent.is_some() && all.is_some() && all != total.turns {
        total.extra.insert(
            TURNS_ALL_ATTEMPTS.to_string(),
            Value::from(all.unwrap_or(0)),
        );
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(p: Preset, text: &str) -> Parser {
        let mut parser = Parser::new(p);
        for l in text.lines() {
            parser.line(l);
        }
        parser
    }

    #[test]
    fn aider_text_lines() {
        let p = feed(
            Preset::Aider,
            "Aider v0.86.1\nMain model: anthropic/claude-sonnet-4 with diff edit format, prompt cache\n\
             > Tokens: 797 sent, 74 received. Cost: $0.0013 request, $0.0013 session.\n\
             Tokens: 2.3k sent, 1.1k cache hit, 12k received. Cost: $0.05 message, $0.0513 session.\n",
        );
        let u = p.usage().unwrap();
        assert_eq!(u.model.as_deref(), Some("anthropic/claude-sonnet-4"));
        assert_eq!(u.input_tokens, Some(797 + 2300));
        assert_eq!(u.output_tokens, Some(74 + 12_000));
        assert_eq!(u.cached_input_tokens, Some(1100));
        assert_eq!(u.turns, Some(2));
        assert_eq!(u.cost_usd, Some(0.0513));
    }

    #[test]
    fn garbage_reports_nothing() {
        for p in Preset::ALL {
            let parser = feed(p, "hello\n{not json\n[1,2]\n{\"type\":\"unknown\"}\n");
            assert_eq!(parser.usage(), None, "{p}");
        }
    }

    #[test]
    fn claude_counts_a_message_once_and_the_result_wins() {
        let text = r#"{"type":"system","subtype":"init","session_id":"s1","model":"claude-sonnet-4-5"}
{"type":"assistant","message":{"id":"m1","model":"claude-sonnet-4-5","usage":{"input_tokens":10,"output_tokens":5}},"session_id":"s1"}
{"type":"assistant","message":{"id":"m1","model":"claude-sonnet-4-5","usage":{"input_tokens":10,"output_tokens":5}},"session_id":"s1"}
{"type":"assistant","message":{"id":"m2","usage":{"input_tokens":7,"output_tokens":3,"cache_read_input_tokens":100}},"session_id":"s1"}"#;
        let mut p = feed(Preset::Claude, text);
        let u = p.usage().unwrap();
        assert_eq!((u.input_tokens, u.output_tokens), (Some(17), Some(8)));
        assert_eq!(u.cost_usd, None);
        p.line(r#"{"type":"result","subtype":"error_max_budget_usd","is_error":true,"total_cost_usd":0.25,"num_turns":4,"session_id":"s1","usage":{"input_tokens":30,"output_tokens":9}}"#);
        let u = p.usage().unwrap();
        assert_eq!(u.cost_usd, Some(0.25));
        assert_eq!(
            (u.input_tokens, u.output_tokens, u.turns),
            (Some(30), Some(9), Some(4))
        );
        assert!(p.over_budget());
    }

    /// A sample from `fixtures/agents/`, fed line by line, then finished.
    fn sample(p: Preset, file: &str) -> (Parser, String) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join("fixtures/agents")
            .join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        let mut parser = feed(p, &text);
        parser.finish();
        (parser, text)
    }

    /// (cost, input, output, cached input, turns).
    type Counts = (
        Option<f64>,
        Option<u64>,
        Option<u64>,
        Option<u64>,
        Option<u64>,
    );

    fn tuple(u: &Usage) -> Counts {
        (
            u.cost_usd,
            u.input_tokens,
            u.output_tokens,
            u.cached_input_tokens,
            u.turns,
        )
    }

    #[test]
    fn claude_samples() {
        let (p, _) = sample(Preset::Claude, "claude/stream-json.jsonl");
        let u = p.usage().unwrap();
        assert_eq!(
            tuple(&u),
            (Some(0.0412718), Some(15), Some(263), Some(46367), Some(4))
        );
        assert_eq!(u.model.as_deref(), Some("claude-sonnet-4-5-20250929"));
        assert_eq!(
            u.session_id.as_deref(),
            Some("8f3c2a6e-51d4-4b7e-9a0c-2f1e6d3b7c90")
        );
        assert!(!p.over_budget());
        // Streamed so far (before the result line): the same tokens, each message once.
        let text = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../..")
                .join("fixtures/agents/claude/stream-json.jsonl"),
        )
        .unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let streamed = feed(Preset::Claude, &lines[..lines.len() - 1].join("\n"));
        let u = streamed.usage().unwrap();
        assert_eq!(tuple(&u), (None, Some(15), Some(263), Some(46367), None));

        let (p, _) = sample(Preset::Claude, "claude/json.json");
        let u = p.usage().unwrap();
        assert_eq!(
            tuple(&u),
            (Some(0.0034675), Some(3), Some(11), Some(13640), Some(1))
        );
        assert_eq!(u.model.as_deref(), Some("claude-sonnet-4-5-20250929"));

        let (p, text) = sample(Preset::Claude, "claude/max-budget.jsonl");
        assert!(p.over_budget());
        assert_eq!(p.usage().unwrap().cost_usd, Some(0.5217));
        assert_eq!(Preset::Claude.transient(Some(1), &text), None);

        let (p, text) = sample(Preset::Claude, "claude/overloaded.jsonl");
        assert_eq!(p.usage().unwrap().cost_usd, Some(0.0));
        assert!(Preset::Claude.transient(Some(1), &text).is_some());
    }

    #[test]
    fn codex_samples() {
        let (p, _) = sample(Preset::Codex, "codex/exec-json.jsonl");
        let u = p.usage().unwrap();
        assert_eq!(
            tuple(&u),
            (None, Some(24763), Some(122), Some(24448), Some(1))
        );
        assert_eq!(
            u.session_id.as_deref(),
            Some("0199a213-81c0-7800-8aa1-bbab2a035a53")
        );
        let (p, text) = sample(Preset::Codex, "codex/two-turns.jsonl");
        let u = p.usage().unwrap();
        assert_eq!(
            tuple(&u),
            (None, Some(38328), Some(971), Some(28416), Some(2))
        );
        assert_eq!(Preset::Codex.transient(Some(0), &text), None);
        let (_, text) = sample(Preset::Codex, "codex/rate-limited.jsonl");
        assert!(Preset::Codex.transient(Some(1), &text).is_some());
    }

    #[test]
    fn aider_samples() {
        let (p, _) = sample(Preset::Aider, "aider/message.txt");
        let u = p.usage().unwrap();
        assert_eq!(
            tuple(&u),
            (Some(0.02), Some(5400), Some(344), Some(1100), Some(2))
        );
        assert_eq!(
            u.model.as_deref(),
            Some("anthropic/claude-sonnet-4-20250514")
        );
        let (p, _) = sample(Preset::Aider, "aider/chat-history.md");
        assert_eq!(
            tuple(&p.usage().unwrap()),
            (Some(0.000032), Some(144), Some(18), None, Some(2))
        );
        let (p, text) = sample(Preset::Aider, "aider/rate-limited.txt");
        assert_eq!(p.usage().unwrap().model.as_deref(), Some("gpt-4o"));
        assert!(Preset::Aider.transient(Some(1), &text).is_some());
    }

    #[test]
    fn gemini_samples() {
        let (p, _) = sample(Preset::Gemini, "gemini/stream-json.jsonl");
        let u = p.usage().unwrap();
        assert_eq!(tuple(&u), (None, Some(50), Some(200), None, None));
        assert_eq!(u.model.as_deref(), Some("gemini-2.0-flash-exp"));
        assert_eq!(u.session_id.as_deref(), Some("abc123"));
        let (p, _) = sample(Preset::Gemini, "gemini/stream-json-models.jsonl");
        let u = p.usage().unwrap();
        assert_eq!(tuple(&u), (None, Some(24939), Some(20), Some(21263), None));
        assert_eq!(u.model.as_deref(), Some("gemini-2.5-pro"));
        let (p, _) = sample(Preset::Gemini, "gemini/json.json");
        let u = p.usage().unwrap();
        assert_eq!(tuple(&u), (None, Some(33904), Some(30), Some(21263), None));
        assert_eq!(u.model.as_deref(), Some("gemini-2.5-flash, gemini-2.5-pro"));
        let (_, text) = sample(Preset::Gemini, "gemini/rate-limited.jsonl");
        assert!(Preset::Gemini.transient(Some(1), &text).is_some());
        assert_eq!(Preset::Gemini.transient(Some(53), &text), None);
    }

    /// Samples printed by the real CLIs against the scripted model server of the
    /// integration tests (Claude Code 2.1.332, Codex CLI 0.171.0, Gemini CLI 0.61.0, aider
    /// 0.86.2), every response reporting 1000 input and 50 output tokens.
    #[test]
    fn real_cli_samples_give_the_servers_numbers() {
        // Read, Edit, final text: three responses.
        let (p, text) = sample(Preset::Claude, "claude/edit-partial-messages.jsonl");
        let u = p.usage().unwrap();
        assert_eq!(
            tuple(&u),
            (Some(0.015), Some(3000), Some(150), Some(0), Some(3))
        );
        assert_eq!(u.model.as_deref(), Some("claude-opus-5-5"));
        // Before the result, the message_delta events already give the output tokens (each
        // assistant event says 1).
        let lines: Vec<&str> = text.lines().collect();
        let streamed = feed(Preset::Claude, &lines[..lines.len() - 1].join("\n"));
        assert_eq!(
            tuple(&streamed.usage().unwrap()),
            (None, Some(3000), Some(150), Some(0), None)
        );
        // Killed on a timeout while waiting for its second response: the first one counts.
        let (p, _) = sample(Preset::Claude, "claude/killed-mid-turn.jsonl");
        assert_eq!(
            tuple(&p.usage().unwrap()),
            (None, Some(1000), Some(50), Some(0), None)
        );
        // Stopped by --max-budget-usd: `usage` is all zeros, `modelUsage` has the tokens.
        let (p, _) = sample(Preset::Claude, "claude/max-budget-model-usage.jsonl");
        assert!(p.over_budget());
        assert_eq!(
            tuple(&p.usage().unwrap()),
            (Some(0.005), Some(1000), Some(50), Some(0), Some(1))
        );

        let (p, _) = sample(Preset::Codex, "codex/edit.jsonl");
        assert_eq!(
            tuple(&p.usage().unwrap()),
            (None, Some(2000), Some(100), Some(0), Some(1))
        );
        let (p, _) = sample(Preset::Gemini, "gemini/create.jsonl");
        let u = p.usage().unwrap();
        assert_eq!(tuple(&u), (None, Some(2000), Some(100), Some(0), None));
        assert_eq!(u.model.as_deref(), Some("gemini-2.5-pro"));
        // aider prints 1000 as "1.0k" and its costs rounded: said so.
        let (p, _) = sample(Preset::Aider, "aider/edit-no-stream.txt");
        let u = p.usage().unwrap();
        assert_eq!(
            tuple(&u),
            (Some(0.006), Some(2000), Some(100), None, Some(2))
        );
        assert_eq!(
            u.extra["rounded"],
            serde_json::json!(["cost_usd", "input_tokens"])
        );
        assert_eq!(u.model.as_deref(), Some("openai/gpt-4o"));
    }

    #[test]
    fn real_cli_rate_limits_are_transient_and_rejected_keys_are_not() {
        for (p, file, transient) in [
            (Preset::Claude, "claude/rate-limited-429.jsonl", true),
            (Preset::Claude, "claude/auth-failed-401.jsonl", false),
            (Preset::Codex, "codex/rate-limited-429.jsonl", true),
            (Preset::Codex, "codex/at-capacity-503.jsonl", true),
            (Preset::Codex, "codex/auth-failed-401.jsonl", false),
            (Preset::Gemini, "gemini/rate-limited-429.txt", true),
            (Preset::Gemini, "gemini/overloaded-503.txt", true),
            (Preset::Gemini, "gemini/auth-failed-401.txt", false),
            (Preset::Aider, "aider/rate-limit-exhausted.txt", true),
            (Preset::Aider, "aider/auth-failed-401.txt", false),
        ] {
            let (_, text) = sample(p, file);
            // aider exits 0 either way; the others 1 (gemini: whatever node made of it).
            let code = if p == Preset::Aider { 0 } else { 1 };
            assert_eq!(
                p.transient(Some(code), &text).is_some(),
                transient,
                "{file}: {:?}",
                p.transient(Some(code), &text)
            );
        }
        let (_, text) = sample(Preset::Gemini, "gemini/rate-limited-429.txt");
        assert_eq!(
            Preset::Gemini.transient(Some(1), &text).as_deref(),
            Some("gemini reported RetryableQuotaError")
        );
    }

    #[test]
    fn sums_keep_what_is_known() {
        let a = Usage {
            cost_usd: Some(0.5),
            input_tokens: Some(10),
            model: Some("m1".into()),
            source: "claude".into(),
            ..Usage::default()
        };
        let b = Usage {
            output_tokens: Some(3),
            model: Some("m2".into()),
            source: "metrics".into(),
            ..Usage::default()
        };
        let s = sum([&a, &b, &a]).unwrap();
        assert_eq!(s.cost_usd, Some(1.0));
        assert_eq!(s.input_tokens, Some(20));
        assert_eq!(s.output_tokens, Some(3));
        assert_eq!(s.model.as_deref(), Some("m1, m2"));
        assert_eq!(s.source, "claude+metrics");
        assert_eq!(sum(std::iter::empty()), None);
        let o = overlay(Some(a.clone()), Some(b)).unwrap();
        assert_eq!(o.model.as_deref(), Some("m2"));
        assert_eq!(o.cost_usd, Some(0.5));
    }

    #[test]
    fn a_retried_attempt_adds_its_cost_and_tokens_but_not_its_turns() {
        let attempt = |turns: Option<u64>, cost: f64, input: u64| Usage {
            cost_usd: Some(cost),
            input_tokens: Some(input),
            output_tokens: Some(10),
            turns,
            source: "claude".into(),
            ..Usage::default()
        };
        // The first attempt failed after 1 turn (a 429), the second did the work in 2.
        let first = attempt(Some(1), 0.01, 100);
        let second = attempt(Some(2), 0.02, 200);
        let after_one = add_attempt(None, Some(&first)).unwrap();
        assert_eq!(after_one.turns, Some(1));
        assert!(after_one.extra.get(TURNS_ALL_ATTEMPTS).is_none());
        let after_two = add_attempt(Some(&after_one), Some(&second)).unwrap();
        assert_eq!(
            after_two.turns,
            Some(2),
            "the turns of the result's attempt"
        );
        assert_eq!(
            after_two.extra[TURNS_ALL_ATTEMPTS], 3,
            "all attempts, labelled"
        );
        assert_eq!(
            after_two.input_tokens,
            Some(300),
            "every attempt was paid for"
        );
        assert!((after_two.cost_usd.unwrap() - 0.03).abs() < 1e-9);
        // A third attempt: the labelled sum goes on from the earlier sum.
        let after_three = add_attempt(Some(&after_two), Some(&attempt(Some(4), 0.0, 1))).unwrap();
        assert_eq!(after_three.turns, Some(4));
        assert_eq!(after_three.extra[TURNS_ALL_ATTEMPTS], 7);
        // An attempt that reported no usage leaves the turns of the one before it unknown.
        let none_after = add_attempt(Some(&after_one), None).unwrap();
        assert_eq!(none_after.turns, None);
        assert_eq!(none_after.extra[TURNS_ALL_ATTEMPTS], 1);
        // Plain `add` (totals over workstreams) still sums turns.
        assert_eq!(add(Some(&first), Some(&second)).unwrap().turns, Some(3));
    }

    #[test]
    fn aider_cost_is_summed_from_its_message_costs_when_the_session_cost_is_cut_to_cents() {
        // $0.0045 + $0.0089 = $0.0134, which aider prints as a $0.01 session.
        let u = feed(
            Preset::Aider,
            "Tokens: 900 sent, 40 received. Cost: $0.0045 message, $0.0045 session.\n\
             Tokens: 1.8k sent, 80 received. Cost: $0.0089 message, $0.01 session.",
        )
        .usage()
        .unwrap();
        assert!(
            (u.cost_usd.unwrap() - 0.0134).abs() < 1e-9,
            "{:?}",
            u.cost_usd
        );
        assert_eq!(
            u.extra["rounded"],
            serde_json::json!(["cost_usd", "input_tokens"])
        );
        // Messages that do not add up to what aider says (a line lost): its session total.
        let u = feed(
            Preset::Aider,
            "Tokens: 10k sent, 1k received. Cost: $0.03 message, $0.05 session.",
        )
        .usage()
        .unwrap();
        assert_eq!(u.cost_usd, Some(0.05));
        assert_eq!(aider_session_cost(0.01, 2, (0.0134, 0.0001)), 0.0134);
        assert_eq!(aider_session_cost(0.01, 2, (0.02, 0.0001)), 0.01);
        assert_eq!(aider_session_cost(0.0045, 4, (0.0, 0.0)), 0.0045);
        // A message cost in cents is no more precise than the session's: the session's.
        assert_eq!(aider_session_cost(0.02, 2, (0.0181, 0.00505)), 0.02);
    }
}
