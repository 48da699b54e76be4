//! A scripted model server on 127.0.0.1 for the real coding-agent CLIs (std, threads and
//! serde_json only): a tiny HTTP/1.1 server that speaks just enough of each provider's API
//! for Claude Code, Codex CLI, Gemini CLI and aider to do a scripted piece of work.
//!
//! - Anthropic Messages (`POST …/v1/messages`, streaming SSE with `tool_use` blocks, and
//!   `…/count_tokens`) for Claude Code (`ANTHROPIC_BASE_URL`);
//! - the OpenAI Responses API (`POST …/responses`, SSE, `custom_tool_call` `apply_patch` or
//!   `function_call` `exec_command`) for Codex CLI (a `model_providers` entry);
//! - OpenAI Chat Completions (`POST …/chat/completions`, streamed chunks and a usage chunk)
//!   for aider through litellm (`OPENAI_API_BASE`, model `openai/…`): edits as aider's
//!   SEARCH/REPLACE blocks in the reply text;
//! - Gemini `…:streamGenerateContent?alt=sse` (and `:generateContent`, `:countTokens`) with
//!   `functionCall` parts for Gemini CLI (`GOOGLE_GEMINI_BASE_URL`).
//!
//! A request is scripted when its body holds a marker `WS-SCRIPT:<name>` (the prompt of a
//! workstream) and a [`Script`] was registered under that name. The script's actions (create
//! a file, edit a line) become the CLI's own tool calls, one per response, then the final
//! text; which step a request is at is read from the conversation it sends (the number of tool
//! results in it), so the server keeps no per-session state and a retried CLI starts over.
//! Every scripted response reports the script's usage numbers; [`ModelServer::served`] sums
//! what was served, so tests can compare with what git-ws recorded. Faults are injected on
//! demand, in order, each for a number of requests: an HTTP status (429 with `retry-after`,
//! 401, 503, …) with the provider's own error body, or a slow reply.
//!
//! Requests without a tool list (a CLI's side requests: titles, commit messages) get a short
//! text reply counted apart ([`Served::side_input_tokens`]). Every request is logged, one line
//! each (plus the start of its body) in [`ModelServer::log_path`]. Loops are bounded: at most
//! [`MAX_REQUESTS_PER_SCRIPT`] per script and [`MAX_CONNECTIONS`] at once; the server stops
//! when dropped.

#![allow(dead_code)]

use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Requests answered per script before the server refuses more (400): a CLI in a loop ends.
pub const MAX_REQUESTS_PER_SCRIPT: u32 = 60;
/// Connections served at once; more are refused with a 503.
pub const MAX_CONNECTIONS: usize = 64;
/// The marker in a prompt that names its script.
pub const MARKER: &str = "WS-SCRIPT:";
const MAX_HEADER_BYTES: usize = 64 * 1024;
const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;
/// An idle keep-alive connection is closed after this.
const IDLE: Duration = Duration::from_secs(20);

/// One change the scripted model asks the CLI to make, with the CLI's own tools.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Create a file (relative to the CLI's working directory) with this content.
    Write { path: String, content: String },
    /// Replace the whole line `old` by `new` in an existing file.
    Edit {
        path: String,
        old: String,
        new: String,
    },
}

/// A fault injected instead of (or before) a normal reply.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// This HTTP status, with the provider's error body; a 429 or 503 also carries
    /// `retry-after: <secs>`.
    Status { code: u16, retry_after_secs: u32 },
    /// A 429 the way each provider says an account's usage limit or quota was hit, with
    /// its reset this many seconds ahead: Anthropic `rate_limit_error` with
    /// `anthropic-ratelimit-unified-*` and `retry-after` headers; OpenAI
    /// `usage_limit_reached` with `resets_in_seconds` (Responses) or `insufficient_quota`
    /// (Chat Completions), with `retry-after`; Gemini `RESOURCE_EXHAUSTED` with a per-day
    /// `QuotaFailure` and `RetryInfo` `retryDelay`.
    UsageLimit { reset_in_secs: u32 },
    /// Wait this long, then reply normally.
    Slow(Duration),
    /// Reply normally (to place a fault after the first requests).
    Pass,
}

impl Fault {
    pub fn status(code: u16) -> Fault {
        Fault::Status {
            code,
            retry_after_secs: 0,
        }
    }
}

/// What the model does for one marker.
#[derive(Debug, Clone)]
pub struct Script {
    pub actions: Vec<Action>,
    /// The final answer.
    pub reply: String,
    /// Input and output tokens every scripted response reports.
    pub usage: (u64, u64),
    /// Faults, in order, each for so many requests carrying the marker.
    pub faults: Vec<(Fault, u32)>,
}

impl Script {
    pub fn new(actions: Vec<Action>) -> Script {
        Script {
            actions,
            reply: "Done.".to_string(),
            usage: (1000, 50),
            faults: Vec::new(),
        }
    }

    pub fn usage(mut self, input: u64, output: u64) -> Script {
        self.usage = (input, output);
        self
    }

    pub fn fault(mut self, f: Fault, times: u32) -> Script {
        self.faults.push((f, times));
        self
    }
}

/// What the server answered for one script.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Served {
    /// Every request that carried the marker.
    pub requests: u32,
    /// Scripted replies (tool calls and final answers).
    pub replies: u32,
    /// Faults injected.
    pub faults: u32,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Side requests with the marker but no tools, and their usage.
    pub side_requests: u32,
    pub side_input_tokens: u64,
    pub side_output_tokens: u64,
}

/// One logged request.
#[derive(Debug, Clone)]
pub struct Logged {
    pub method: String,
    pub path: String,
    pub script: Option<String>,
    pub status: u16,
    pub what: String,
}

struct ScriptState {
    script: Script,
    served: Served,
}

#[derive(Default)]
struct State {
    scripts: HashMap<String, ScriptState>,
    log: Vec<Logged>,
    total: u64,
}

struct Shared {
    state: Mutex<State>,
    stop: AtomicBool,
    connections: AtomicUsize,
    log_path: PathBuf,
    log_file: Mutex<Option<std::fs::File>>,
}

/// The server; stops when dropped.
pub struct ModelServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl ModelServer {
    /// Listen on a free port of 127.0.0.1; log requests to `log_path`.
    pub fn start(log_path: &Path) -> ModelServer {
        ModelServer::start_on(0, log_path)
    }

    /// Listen on 127.0.0.1:`port` (0: a free one).
    pub fn start_on(port: u16, log_path: &Path) -> ModelServer {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind 127.0.0.1");
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            stop: AtomicBool::new(false),
            connections: AtomicUsize::new(0),
            log_path: log_path.to_path_buf(),
            log_file: Mutex::new(std::fs::File::create(log_path).ok()),
        });
        let s = shared.clone();
        let accept = std::thread::spawn(move || accept_loop(listener, s));
        ModelServer {
            addr,
            shared,
            accept: Some(accept),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Register (or replace) the script for `WS-SCRIPT:<name>`.
    pub fn script(&self, name: &str, script: Script) {
        self.shared.state.lock().unwrap().scripts.insert(
            name.to_string(),
            ScriptState {
                script,
                served: Served::default(),
            },
        );
    }

    /// What was served for a script so far.
    pub fn served(&self, name: &str) -> Served {
        self.shared
            .state
            .lock()
            .unwrap()
            .scripts
            .get(name)
            .map(|s| s.served.clone())
            .unwrap_or_default()
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Logged> {
        self.shared.state.lock().unwrap().log.clone()
    }

    /// The request log, one line per request: for assertion messages.
    pub fn log_summary(&self) -> String {
        self.requests()
            .iter()
            .map(|l| {
                format!(
                    "{} {} [{}] -> {} {}",
                    l.method,
                    l.path,
                    l.script.as_deref().unwrap_or("-"),
                    l.status,
                    l.what
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub fn log_path(&self) -> &Path {
        &self.shared.log_path
    }
}

impl Drop for ModelServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(mut stream) = stream else { continue };
        if shared.connections.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            shared.connections.fetch_sub(1, Ordering::SeqCst);
            let _ = write_json(
                &mut stream,
                503,
                &[],
                &json!({"error": {"message": "too many connections"}}),
                true,
            );
            continue;
        }
        let s = shared.clone();
        std::thread::spawn(move || {
            let _ = serve_connection(stream, &s);
            s.connections.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn serve_connection(stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    stream.set_read_timeout(Some(IDLE))?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    while !shared.stop.load(Ordering::SeqCst) {
        let Some(req) = read_request(&mut reader)? else {
            return Ok(());
        };
        let close = req
            .header("connection")
            .is_some_and(|c| c.eq_ignore_ascii_case("close"));
        let reply = handle(shared, &req);
        send(&mut writer, reply, shared, close)?;
        if close {
            return Ok(());
        }
    }
    Ok(())
}

fn read_request(r: &mut BufReader<TcpStream>) -> std::io::Result<Option<Request>> {
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
    let mut line = String::new();
    // Skip blank lines between requests.
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        if !line.trim().is_empty() {
            break;
        }
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().ok_or_else(|| bad("no method"))?.to_string();
    let path = parts.next().ok_or_else(|| bad("no path"))?.to_string();
    let mut headers = Vec::new();
    let mut size = line.len();
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Err(bad("eof in headers"));
        }
        size += line.len();
        if size > MAX_HEADER_BYTES {
            return Err(bad("headers too long"));
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let mut req = Request {
        method,
        path,
        headers,
        body: Vec::new(),
    };
    if req
        .header("transfer-encoding")
        .is_some_and(|t| t.to_ascii_lowercase().contains("chunked"))
    {
        loop {
            line.clear();
            r.read_line(&mut line)?;
            let n = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|_| bad("bad chunk size"))?;
            if n == 0 {
                // Trailers, then the blank line.
                loop {
                    line.clear();
                    if r.read_line(&mut line)? == 0 || line.trim().is_empty() {
                        break;
                    }
                }
                break;
            }
            if req.body.len() + n > MAX_BODY_BYTES {
                return Err(bad("body too long"));
            }
            let start = req.body.len();
            req.body.resize(start + n, 0);
            r.read_exact(&mut req.body[start..])?;
            line.clear();
            r.read_line(&mut line)?;
        }
    } else if let Some(n) = req.header("content-length") {
        let n: usize = n.parse().map_err(|_| bad("bad content-length"))?;
        if n > MAX_BODY_BYTES {
            return Err(bad("body too long"));
        }
        req.body.resize(n, 0);
        r.read_exact(&mut req.body)?;
    }
    Ok(Some(req))
}

/// What to send back.
enum Reply {
    Json {
        status: u16,
        headers: Vec<(String, String)>,
        body: Value,
    },
    /// Server-sent events, each a chunk.
    Sse(Vec<String>),
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        529 => "Overloaded",
        _ => "Status",
    }
}

fn write_json(
    w: &mut TcpStream,
    status: u16,
    headers: &[(String, String)],
    body: &Value,
    close: bool,
) -> std::io::Result<()> {
    let body = body.to_string();
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
        reason(status),
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if close {
        head.push_str("connection: close\r\n");
    }
    head.push_str("\r\n");
    w.write_all(head.as_bytes())?;
    w.write_all(body.as_bytes())?;
    w.flush()
}

fn send(w: &mut TcpStream, reply: Reply, shared: &Shared, close: bool) -> std::io::Result<()> {
    match reply {
        Reply::Json {
            status,
            headers,
            body,
        } => write_json(w, status, &headers, &body, close),
        Reply::Sse(events) => {
            let mut head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
                 cache-control: no-cache\r\ntransfer-encoding: chunked\r\n"
                .to_string();
            if close {
                head.push_str("connection: close\r\n");
            }
            head.push_str("\r\n");
            w.write_all(head.as_bytes())?;
            for e in events {
                if shared.stop.load(Ordering::SeqCst) {
                    break;
                }
                write!(w, "{:x}\r\n{e}\r\n", e.len())?;
                w.flush()?;
            }
            w.write_all(b"0\r\n\r\n")?;
            w.flush()
        }
    }
}

/// Which API a request speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Api {
    Anthropic,
    Responses,
    Chat,
    Gemini { stream: bool },
}

fn handle(shared: &Shared, req: &Request) -> Reply {
    let path = req.path.split('?').next().unwrap_or("");
    let text = String::from_utf8_lossy(&req.body);
    let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
    let api = if path.ends_with("/count_tokens") {
        return log_reply(
            shared,
            req,
            None,
            "count_tokens",
            json_ok(json!({"input_tokens": 100})),
        );
    } else if path.ends_with(":countTokens") {
        return log_reply(
            shared,
            req,
            None,
            "countTokens",
            json_ok(json!({"totalTokens": 100})),
        );
    } else if path.ends_with("/messages") {
        Api::Anthropic
    } else if path.ends_with("/responses") {
        Api::Responses
    } else if path.ends_with("/chat/completions") {
        Api::Chat
    } else if path.ends_with(":streamGenerateContent") {
        Api::Gemini { stream: true }
    } else if path.ends_with(":generateContent") {
        Api::Gemini { stream: false }
    } else if req.method == "GET" && path.ends_with("/models") {
        let list = json!({"object": "list", "data": [], "models": []});
        return log_reply(shared, req, None, "models", json_ok(list));
    } else {
        let r = Reply::Json {
            status: 404,
            headers: vec![],
            body: json!({"error": {"message": format!("no such endpoint: {path}")}}),
        };
        return log_reply(shared, req, None, "unknown endpoint", r);
    };
    let model = match api {
        Api::Gemini { .. } => path
            .rsplit('/')
            .next()
            .and_then(|m| m.split(':').next())
            .unwrap_or("gemini")
            .to_string(),
        _ => body["model"].as_str().unwrap_or("model").to_string(),
    };
    let name = marker(&text);
    let has_tools = match api {
        Api::Anthropic | Api::Responses => body["tools"].as_array().is_some_and(|t| !t.is_empty()),
        Api::Gemini { .. } => body["tools"].as_array().is_some_and(|t| !t.is_empty()),
        // aider sends no tools; its side requests write commit messages (weak model).
        Api::Chat => !body["messages"][0]["content"]
            .as_str()
            .is_some_and(|s| s.contains("commit message")),
    };

    // Decide under the lock, then sleep and reply outside it.
    let decision = {
        let mut st = shared.state.lock().unwrap();
        st.total += 1;
        match name.as_deref().and_then(|n| st.scripts.get_mut(n)) {
            None => Decision::Unscripted,
            Some(s) => {
                s.served.requests += 1;
                if s.served.requests > MAX_REQUESTS_PER_SCRIPT {
                    Decision::Limit
                } else if let Some(f) = take_fault(&mut s.script.faults) {
                    s.served.faults += 1;
                    match f {
                        Fault::Pass => {
                            s.served.faults -= 1;
                            count(&mut s.served, has_tools, s.script.usage);
                            Decision::Script(s.script.clone())
                        }
                        Fault::Slow(d) => {
                            count(&mut s.served, has_tools, s.script.usage);
                            Decision::Slow(d, s.script.clone())
                        }
                        f => Decision::Fault(f),
                    }
                } else {
                    count(&mut s.served, has_tools, s.script.usage);
                    Decision::Script(s.script.clone())
                }
            }
        }
    };
    let script = match decision {
        Decision::Unscripted => None,
        Decision::Limit => {
            let r = error_reply(api, 400, 0, "WS-SCRIPT request limit reached");
            return log_reply(shared, req, name.as_deref(), "request limit", r);
        }
        Decision::Fault(Fault::Status {
            code,
            retry_after_secs,
        }) => {
            let r = error_reply(api, code, retry_after_secs, "");
            return log_reply(shared, req, name.as_deref(), "fault", r);
        }
        Decision::Fault(Fault::UsageLimit { reset_in_secs }) => {
            let r = usage_limit_reply(api, reset_in_secs);
            return log_reply(shared, req, name.as_deref(), "usage-limit fault", r);
        }
        Decision::Fault(Fault::Slow(_) | Fault::Pass) => unreachable!("these reply"),
        Decision::Slow(d, s) => {
            let until = Instant::now() + d;
            while Instant::now() < until && !shared.stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(20));
            }
            Some(s)
        }
        Decision::Script(s) => Some(s),
    };
    let (turn, what) = match (&script, has_tools) {
        (Some(s), true) => {
            let step = step_of(api, &body);
            let calls = tool_calls(api, &body, &s.actions);
            match calls.get(step) {
                Some(c) if api != Api::Chat => {
                    (Turn::Tool(c.clone()), format!("step {step}: tool call"))
                }
                _ if api == Api::Chat && step == 0 => (
                    Turn::Text(aider_edits(&s.actions, &s.reply)),
                    "step 0: edit blocks".to_string(),
                ),
                _ => (
                    Turn::Text(s.reply.clone()),
                    format!("step {step}: final text"),
                ),
            }
        }
        (Some(_), false) => (
            Turn::Text("Scripted work".to_string()),
            "side request".to_string(),
        ),
        (None, _) => (
            Turn::Text("Update files".to_string()),
            "unscripted".to_string(),
        ),
    };
    let usage = match (&script, has_tools) {
        (Some(s), true) => s.usage,
        _ => SIDE_USAGE,
    };
    let n = shared.state.lock().unwrap().total;
    let streaming = match api {
        Api::Anthropic | Api::Chat => body["stream"].as_bool().unwrap_or(false),
        Api::Responses => body["stream"].as_bool().unwrap_or(true),
        Api::Gemini { stream } => stream,
    };
    let r = render(api, streaming, &model, n, &turn, usage);
    log_reply(shared, req, name.as_deref(), &what, r)
}

/// Usage of a side request (no tools) or an unscripted one.
const SIDE_USAGE: (u64, u64) = (7, 3);

enum Decision {
    Unscripted,
    Limit,
    Fault(Fault),
    Slow(Duration, Script),
    Script(Script),
}

fn count(s: &mut Served, has_tools: bool, usage: (u64, u64)) {
    if has_tools {
        s.replies += 1;
        s.input_tokens += usage.0;
        s.output_tokens += usage.1;
    } else {
        s.side_requests += 1;
        s.side_input_tokens += SIDE_USAGE.0;
        s.side_output_tokens += SIDE_USAGE.1;
    }
}

fn take_fault(faults: &mut Vec<(Fault, u32)>) -> Option<Fault> {
    while let Some((f, n)) = faults.first_mut() {
        if *n == 0 {
            faults.remove(0);
            continue;
        }
        *n -= 1;
        return Some(f.clone());
    }
    None
}

fn json_ok(body: Value) -> Reply {
    Reply::Json {
        status: 200,
        headers: vec![],
        body,
    }
}

fn log_reply(shared: &Shared, req: &Request, script: Option<&str>, what: &str, r: Reply) -> Reply {
    let status = match &r {
        Reply::Json { status, .. } => *status,
        Reply::Sse(_) => 200,
    };
    let l = Logged {
        method: req.method.clone(),
        path: req.path.clone(),
        script: script.map(str::to_string),
        status,
        what: what.to_string(),
    };
    if let Some(f) = shared.log_file.lock().unwrap().as_mut() {
        let body = String::from_utf8_lossy(&req.body);
        let cut: String = body.chars().take(4000).collect();
        let _ = writeln!(
            f,
            "{} {} [{}] -> {} {}\n  {}\n",
            l.method,
            l.path,
            l.script.as_deref().unwrap_or("-"),
            l.status,
            l.what,
            cut
        );
    }
    shared.state.lock().unwrap().log.push(l);
    r
}

/// The script name after the first marker in the request.
fn marker(text: &str) -> Option<String> {
    let i = text.find(MARKER)?;
    let name: String = text[i + MARKER.len()..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        .collect();
    (!name.is_empty()).then_some(name)
}

/// How many tool results the conversation holds (aider: 0 while the edits are due).
fn step_of(api: Api, body: &Value) -> usize {
    let arr = |v: &Value| v.as_array().cloned().unwrap_or_default();
    match api {
        Api::Anthropic => arr(&body["messages"])
            .iter()
            .flat_map(|m| arr(&m["content"]))
            .filter(|c| c["type"] == "tool_result")
            .count(),
        Api::Responses => arr(&body["input"])
            .iter()
            .filter(|i| {
                matches!(
                    i["type"].as_str(),
                    Some("function_call_output" | "custom_tool_call_output")
                )
            })
            .count(),
        Api::Gemini { .. } => arr(&body["contents"])
            .iter()
            .flat_map(|c| arr(&c["parts"]))
            .filter(|p| p.get("functionResponse").is_some())
            .count(),
        // aider: the edits answer the prompt, and again once aider added the files they
        // mention to the chat; anything else (a reflection) gets the final text.
        Api::Chat => {
            let msgs = arr(&body["messages"]);
            let last_user = msgs
                .iter()
                .rev()
                .find(|m| m["role"] == "user")
                .map(|m| m["content"].to_string())
                .unwrap_or_default();
            if last_user.contains(MARKER) || last_user.contains("I added these files to the chat") {
                0
            } else {
                1
            }
        }
    }
}

/// One tool call: the tool's name and its arguments (or, for a custom tool, its input text).
#[derive(Debug, Clone)]
struct Call {
    name: String,
    args: Value,
    /// Responses API: a custom (freeform) tool, `args` is a string.
    custom: bool,
}

enum Turn {
    Tool(Call),
    Text(String),
}

/// The names of the tools a request offers.
fn tool_names(api: Api, body: &Value) -> Vec<String> {
    let arr = |v: &Value| v.as_array().cloned().unwrap_or_default();
    match api {
        Api::Gemini { .. } => arr(&body["tools"])
            .iter()
            .flat_map(|t| arr(&t["functionDeclarations"]))
            .filter_map(|f| f["name"].as_str().map(str::to_string))
            .collect(),
        _ => arr(&body["tools"])
            .iter()
            .filter_map(|t| t["name"].as_str().map(str::to_string))
            .collect(),
    }
}

/// The CLI's working directory, as its request states it.
fn cwd_of(text: &str) -> Option<String> {
    // JSON-escaped text: stop at a quote, a backslash (\n) or '<'.
    for (pat, stop) in [
        ("Primary working directory: ", "\\"),
        ("<cwd>", "<"),
        ("current working directory is: ", "\\"),
        ("working directory: ", "\\"),
    ] {
        if let Some(i) = text.find(pat) {
            let rest = &text[i + pat.len()..];
            let end = rest
                .find(|c: char| stop.contains(c) || c == '"')
                .unwrap_or(rest.len());
            let p = rest[..end].trim().trim_end_matches(['.', ',']);
            if p.starts_with('/') {
                return Some(p.to_string());
            }
        }
    }
    None
}

fn abs(cwd: &Option<String>, path: &str) -> String {
    match cwd {
        Some(c) => format!("{}/{path}", c.trim_end_matches('/')),
        None => path.to_string(),
    }
}

/// The script's actions as this CLI's tool calls, in order.
fn tool_calls(api: Api, body: &Value, actions: &[Action]) -> Vec<Call> {
    let names = tool_names(api, body);
    let has = |n: &str| names.iter().any(|x| x == n);
    let cwd = cwd_of(&body.to_string());
    let call = |name: &str, args: Value| Call {
        name: name.to_string(),
        args,
        custom: false,
    };
    let mut calls = Vec::new();
    for a in actions {
        match api {
            Api::Anthropic => match a {
                Action::Write { path, content } => calls.push(call(
                    "Write",
                    json!({"file_path": abs(&cwd, path), "content": content}),
                )),
                Action::Edit { path, old, new } => {
                    calls.push(call("Read", json!({"file_path": abs(&cwd, path)})));
                    calls.push(call(
                        "Edit",
                        json!({"file_path": abs(&cwd, path), "old_string": old, "new_string": new}),
                    ));
                }
            },
            Api::Responses => {
                let patch = match a {
                    Action::Write { path, content } => format!(
                        "*** Begin Patch\n*** Add File: {path}\n{}*** End Patch\n",
                        content.lines().map(|l| format!("+{l}\n")).collect::<String>()
                    ),
                    Action::Edit { path, old, new } => format!(
                        "*** Begin Patch\n*** Update File: {path}\n@@\n-{old}\n+{new}\n*** End Patch\n"
                    ),
                };
                let custom = body["tools"].as_array().is_some_and(|t| {
                    t.iter()
                        .any(|t| t["name"] == "apply_patch" && t["type"] == "custom")
                });
                if custom {
                    calls.push(Call {
                        name: "apply_patch".to_string(),
                        args: Value::String(patch),
                        custom: true,
                    });
                } else if has("apply_patch") {
                    calls.push(call("apply_patch", json!({"input": patch})));
                } else {
                    let cmd = match a {
                        Action::Write { path, content } => {
                            format!(
                                "printf '%s' '{}' > '{path}'",
                                content.replace('\'', "'\\''")
                            )
                        }
                        Action::Edit { path, old, new } => {
                            format!("sed -i 's/^{old}$/{new}/' '{path}'")
                        }
                    };
                    calls.push(call("exec_command", json!({"cmd": cmd})));
                }
            }
            Api::Gemini { .. } => match a {
                Action::Write { path, content } => calls.push(call(
                    "write_file",
                    json!({"file_path": abs(&cwd, path), "content": content}),
                )),
                Action::Edit { path, old, new } => calls.push(call(
                    "replace",
                    json!({"file_path": abs(&cwd, path), "old_string": old, "new_string": new,
                           "instruction": format!("Replace the line {old:?} by {new:?}.")}),
                )),
            },
            Api::Chat => {}
        }
    }
    calls
}

/// aider's SEARCH/REPLACE blocks for the actions, then the final text.
fn aider_edits(actions: &[Action], reply: &str) -> String {
    let mut s = String::from("Here are the changes.\n\n");
    for a in actions {
        let (path, search, replace) = match a {
            Action::Write { path, content } => (path, String::new(), content.clone()),
            Action::Edit { path, old, new } => (path, format!("{old}\n"), format!("{new}\n")),
        };
        let replace = if replace.ends_with('\n') {
            replace
        } else {
            format!("{replace}\n")
        };
        s.push_str(&format!(
            "{path}\n```\n<<<<<<< SEARCH\n{search}=======\n{replace}>>>>>>> REPLACE\n```\n\n"
        ));
    }
    s.push_str(reply);
    s
}

fn sse(event: Option<&str>, data: &Value) -> String {
    match event {
        Some(e) => format!("event: {e}\ndata: {data}\n\n"),
        None => format!("data: {data}\n\n"),
    }
}

/// The reply in the API's shape.
fn render(
    api: Api,
    stream: bool,
    model: &str,
    n: u64,
    turn: &Turn,
    (input, output): (u64, u64),
) -> Reply {
    match api {
        Api::Anthropic => {
            let id = format!("msg_ws_{n:06}");
            let (block, stop) = match turn {
                Turn::Tool(c) => (
                    json!({"type": "tool_use", "id": format!("toolu_ws_{n:06}"), "name": c.name, "input": c.args}),
                    "tool_use",
                ),
                Turn::Text(t) => (json!({"type": "text", "text": t}), "end_turn"),
            };
            let usage = json!({"input_tokens": input, "cache_creation_input_tokens": 0,
                               "cache_read_input_tokens": 0, "output_tokens": output});
            if !stream {
                return json_ok(json!({"id": id, "type": "message", "role": "assistant",
                    "model": model, "content": [block], "stop_reason": stop,
                    "stop_sequence": null, "usage": usage}));
            }
            let mut ev = vec![sse(
                Some("message_start"),
                &json!({"type": "message_start", "message": {"id": id, "type": "message",
                    "role": "assistant", "model": model, "content": [], "stop_reason": null,
                    "stop_sequence": null, "usage": {"input_tokens": input,
                    "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
                    "output_tokens": 1}}}),
            )];
            let (start, delta) = match turn {
                Turn::Tool(c) => (
                    json!({"type": "tool_use", "id": format!("toolu_ws_{n:06}"), "name": c.name, "input": {}}),
                    json!({"type": "input_json_delta", "partial_json": c.args.to_string()}),
                ),
                Turn::Text(t) => (
                    json!({"type": "text", "text": ""}),
                    json!({"type": "text_delta", "text": t}),
                ),
            };
            ev.push(sse(
                Some("content_block_start"),
                &json!({"type": "content_block_start", "index": 0, "content_block": start}),
            ));
            ev.push(sse(Some("ping"), &json!({"type": "ping"})));
            ev.push(sse(
                Some("content_block_delta"),
                &json!({"type": "content_block_delta", "index": 0, "delta": delta}),
            ));
            ev.push(sse(
                Some("content_block_stop"),
                &json!({"type": "content_block_stop", "index": 0}),
            ));
            ev.push(sse(
                Some("message_delta"),
                &json!({"type": "message_delta", "delta": {"stop_reason": stop,
                    "stop_sequence": null}, "usage": {"output_tokens": output}}),
            ));
            ev.push(sse(Some("message_stop"), &json!({"type": "message_stop"})));
            Reply::Sse(ev)
        }
        Api::Responses => {
            let rid = format!("resp_ws_{n:06}");
            let item = match turn {
                Turn::Tool(c) if c.custom => json!({"type": "custom_tool_call",
                    "id": format!("ctc_ws_{n:06}"), "call_id": format!("call_ws_{n:06}"),
                    "name": c.name, "input": c.args, "status": "completed"}),
                Turn::Tool(c) => json!({"type": "function_call", "id": format!("fc_ws_{n:06}"),
                    "call_id": format!("call_ws_{n:06}"), "name": c.name,
                    "arguments": c.args.to_string(), "status": "completed"}),
                Turn::Text(t) => json!({"type": "message", "id": format!("msg_ws_{n:06}"),
                    "role": "assistant", "status": "completed",
                    "content": [{"type": "output_text", "text": t, "annotations": []}]}),
            };
            let usage = json!({"input_tokens": input, "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": output, "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": input + output});
            let done = json!({"id": rid, "object": "response", "created_at": 1_800_000_000u64,
                "status": "completed", "model": model, "output": [item], "usage": usage});
            if !stream {
                return json_ok(done);
            }
            let mut ev = vec![sse(
                Some("response.created"),
                &json!({"type": "response.created", "sequence_number": 0, "response": {"id": rid,
                    "object": "response", "status": "in_progress", "model": model, "output": []}}),
            )];
            let mut added = item.clone();
            if let Turn::Text(t) = turn {
                added["content"] = json!([]);
                added["status"] = json!("in_progress");
                ev.push(sse(
                    Some("response.output_item.added"),
                    &json!({"type": "response.output_item.added", "sequence_number": 1,
                        "output_index": 0, "item": added}),
                ));
                ev.push(sse(
                    Some("response.output_text.delta"),
                    &json!({"type": "response.output_text.delta", "sequence_number": 2,
                        "item_id": item["id"], "output_index": 0, "content_index": 0, "delta": t}),
                ));
            } else {
                ev.push(sse(
                    Some("response.output_item.added"),
                    &json!({"type": "response.output_item.added", "sequence_number": 1,
                        "output_index": 0, "item": added}),
                ));
            }
            ev.push(sse(
                Some("response.output_item.done"),
                &json!({"type": "response.output_item.done", "sequence_number": 3,
                    "output_index": 0, "item": item}),
            ));
            ev.push(sse(
                Some("response.completed"),
                &json!({"type": "response.completed", "sequence_number": 4, "response": done}),
            ));
            Reply::Sse(ev)
        }
        Api::Chat => {
            let id = format!("chatcmpl-ws{n:06}");
            let text = match turn {
                Turn::Text(t) => t.clone(),
                Turn::Tool(_) => String::new(),
            };
            let usage = json!({"prompt_tokens": input, "completion_tokens": output,
                "total_tokens": input + output});
            if !stream {
                return json_ok(json!({"id": id, "object": "chat.completion",
                    "created": 1_800_000_000u64, "model": model, "choices": [{"index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop"}], "usage": usage}));
            }
            let chunk = |choices: Value, usage: Value| {
                let mut c = json!({"id": id, "object": "chat.completion.chunk",
                    "created": 1_800_000_000u64, "model": model, "choices": choices});
                if !usage.is_null() {
                    c["usage"] = usage;
                }
                sse(None, &c)
            };
            let mut ev = vec![chunk(
                json!([{"index": 0, "delta": {"role": "assistant", "content": ""},
                    "finish_reason": null}]),
                Value::Null,
            )];
            // The text in a few pieces, as a model streams it.
            let chars: Vec<char> = text.chars().collect();
            for piece in chars.chunks(200) {
                ev.push(chunk(
                    json!([{"index": 0, "delta": {"content": piece.iter().collect::<String>()},
                        "finish_reason": null}]),
                    Value::Null,
                ));
            }
            ev.push(chunk(
                json!([{"index": 0, "delta": {}, "finish_reason": "stop"}]),
                Value::Null,
            ));
            ev.push(chunk(json!([]), usage));
            ev.push("data: [DONE]\n\n".to_string());
            Reply::Sse(ev)
        }
        Api::Gemini { stream } => {
            let part = match turn {
                Turn::Tool(c) => json!({"functionCall": {"name": c.name, "args": c.args}}),
                Turn::Text(t) => json!({"text": t}),
            };
            let v = json!({"candidates": [{"content": {"role": "model", "parts": [part]},
                "finishReason": "STOP", "index": 0}],
                "usageMetadata": {"promptTokenCount": input, "candidatesTokenCount": output,
                    "totalTokenCount": input + output},
                "modelVersion": model, "responseId": format!("ws{n:06}")});
            if stream {
                Reply::Sse(vec![sse(None, &v)])
            } else {
                json_ok(v)
            }
        }
    }
}

/// A usage limit's 429, in the provider's own shape, resetting `secs` from now.
fn usage_limit_reply(api: Api, secs: u32) -> Reply {
    let reset_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        + u64::from(secs);
    let mut headers = vec![("retry-after".to_string(), secs.to_string())];
    let body = match api {
        Api::Anthropic => {
            for (k, v) in [
                ("anthropic-ratelimit-unified-status", "rejected".to_string()),
                ("anthropic-ratelimit-unified-reset", reset_epoch.to_string()),
                (
                    "anthropic-ratelimit-unified-5h-status",
                    "rejected".to_string(),
                ),
                (
                    "anthropic-ratelimit-unified-5h-reset",
                    reset_epoch.to_string(),
                ),
                (
                    "anthropic-ratelimit-unified-representative-claim",
                    "five_hour".to_string(),
                ),
            ] {
                headers.push((k.to_string(), v));
            }
            json!({"type": "error", "error": {"type": "rate_limit_error",
                "message": "This request would exceed your account's rate limit. Please try again later."}})
        }
        Api::Responses => json!({"error": {"type": "usage_limit_reached",
            "message": "The usage limit has been reached", "plan_type": "plus",
            "resets_at": reset_epoch, "resets_in_seconds": secs}}),
        Api::Chat => json!({"error": {"message":
            "You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.",
            "type": "insufficient_quota", "param": null, "code": "insufficient_quota"}}),
        Api::Gemini { .. } => json!({"error": {"code": 429,
        "message": "You exceeded your current quota, please check your plan and billing details.",
        "status": "RESOURCE_EXHAUSTED",
        "details": [
            {"@type": "type.googleapis.com/google.rpc.QuotaFailure",
             "violations": [{"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
               "quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
               "quotaDimensions": {"location": "global", "model": "gemini-2.5-pro"},
               "quotaValue": "50"}]},
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": format!("{secs}s")}
        ]}}),
    };
    Reply::Json {
        status: 429,
        headers,
        body,
    }
}

/// A fault's reply, in the provider's own error shape.
fn error_reply(api: Api, code: u16, retry_after: u32, message: &str) -> Reply {
    let mut headers = Vec::new();
    if matches!(code, 429 | 503 | 529) {
        headers.push(("retry-after".to_string(), retry_after.to_string()));
    }
    let body = match api {
        Api::Anthropic => {
            let (t, m) = match code {
                400 => ("invalid_request_error", message),
                401 => ("authentication_error", "invalid x-api-key"),
                429 => (
                    "rate_limit_error",
                    "This request would exceed the rate limit for your organization. Please try again later.",
                ),
                529 => ("overloaded_error", "Overloaded"),
                _ => ("api_error", "Internal server error"),
            };
            json!({"type": "error", "error": {"type": t, "message": m}})
        }
        Api::Responses | Api::Chat => {
            let (t, c, m) = match code {
                400 => ("invalid_request_error", "invalid_request", message),
                401 => (
                    "invalid_request_error",
                    "invalid_api_key",
                    "Incorrect API key provided: sk-ws-***. You can find your API key at https://platform.openai.com/account/api-keys.",
                ),
                429 => (
                    "requests",
                    "rate_limit_exceeded",
                    "Rate limit reached for requests. Please try again in 1s.",
                ),
                503 => ("server_error", "server_is_overloaded", "The server is overloaded."),
                _ => (
                    "server_error",
                    "server_error",
                    "The server had an error while processing your request.",
                ),
            };
            json!({"error": {"message": m, "type": t, "param": null, "code": c}})
        }
        Api::Gemini { .. } => {
            let (s, m) = match code {
                400 => ("INVALID_ARGUMENT", message),
                401 => (
                    "UNAUTHENTICATED",
                    "Request had invalid authentication credentials.",
                ),
                403 => ("PERMISSION_DENIED", "Permission denied."),
                429 => (
                    "RESOURCE_EXHAUSTED",
                    "Resource has been exhausted (e.g. check quota).",
                ),
                503 => (
                    "UNAVAILABLE",
                    "The model is overloaded. Please try again later.",
                ),
                _ => ("INTERNAL", "An internal error has occurred."),
            };
            json!({"error": {"code": code, "message": m, "status": s}})
        }
    };
    Reply::Json {
        status: code,
        headers,
        body,
    }
}

#[cfg(test)]
mod tests {
    //! The server on its own, with a plain client: the protocols' shapes, steps, usage and
    //! faults (the CLIs themselves are in `real_agents.rs`).
    use super::*;

    fn post(url: &str, path: &str, body: &Value) -> (u16, String) {
        let addr = url.trim_start_matches("http://");
        let mut s = TcpStream::connect(addr).unwrap();
        let b = body.to_string();
        write!(
            s,
            "POST {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
             content-length: {}\r\nconnection: close\r\n\r\n{b}",
            b.len()
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        let status = out[9..12].parse().unwrap();
        (status, out)
    }

    fn server() -> (tempfile::TempDir, ModelServer) {
        let tmp = tempfile::tempdir().unwrap();
        let s = ModelServer::start(&tmp.path().join("requests.log"));
        (tmp, s)
    }

    #[test]
    fn anthropic_tool_calls_follow_the_conversation_then_the_final_text() {
        let (_t, s) = server();
        s.script(
            "a",
            Script::new(vec![
                Action::Write {
                    path: "x.txt".into(),
                    content: "x\n".into(),
                },
                Action::Edit {
                    path: "y.txt".into(),
                    old: "1".into(),
                    new: "2".into(),
                },
            ])
            .usage(100, 10),
        );
        let user = json!({"role": "user", "content": [{"type": "text",
            "text": "Primary working directory: /w/k\nWS-SCRIPT:a please"}]});
        let tools = json!([{"name": "Write"}, {"name": "Edit"}, {"name": "Read"}]);
        let result = json!({"role": "user", "content": [{"type": "tool_result",
            "tool_use_id": "t", "content": "ok"}]});
        let mut msgs = vec![user];
        let mut seen = Vec::new();
        for _ in 0..4 {
            let (code, out) = post(
                &s.url(),
                "/v1/messages?beta=true",
                &json!({"model": "m", "stream": true, "tools": tools, "messages": msgs}),
            );
            assert_eq!(code, 200, "{out}");
            assert!(out.contains("transfer-encoding: chunked"));
            assert!(out.contains("\"output_tokens\":10"), "{out}");
            seen.push(out);
            msgs.push(json!({"role": "assistant", "content": []}));
            msgs.push(result.clone());
        }
        assert!(
            seen[0].contains("\\\"file_path\\\":\\\"/w/k/x.txt\\\""),
            "{}",
            seen[0]
        );
        assert!(seen[1].contains("\"name\":\"Read\""), "{}", seen[1]);
        assert!(seen[2].contains("\"name\":\"Edit\""), "{}", seen[2]);
        assert!(seen[3].contains("\"text\":\"Done.\""), "{}", seen[3]);
        let got = s.served("a");
        assert_eq!(
            (
                got.requests,
                got.replies,
                got.input_tokens,
                got.output_tokens
            ),
            (4, 4, 400, 40)
        );
        // A side request (no tools) is counted apart.
        let (code, _) = post(
            &s.url(),
            "/v1/messages",
            &json!({"model": "haiku", "messages": [{"role": "user", "content": "WS-SCRIPT:a"}]}),
        );
        assert_eq!(code, 200);
        assert_eq!(s.served("a").side_requests, 1);
        assert_eq!(s.served("a").input_tokens, 400);
    }

    #[test]
    fn faults_come_in_order_with_the_providers_error_shapes() {
        let (_t, s) = server();
        s.script(
            "f",
            Script::new(vec![])
                .fault(
                    Fault::Status {
                        code: 429,
                        retry_after_secs: 2,
                    },
                    2,
                )
                .fault(Fault::status(401), 1),
        );
        let body = json!({"contents": [{"role": "user", "parts": [{"text": "WS-SCRIPT:f"}]}],
            "tools": [{"functionDeclarations": [{"name": "write_file"}]}]});
        let path = "/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse";
        let (c1, o1) = post(&s.url(), path, &body);
        assert_eq!(c1, 429);
        assert!(
            o1.contains("retry-after: 2") && o1.contains("RESOURCE_EXHAUSTED"),
            "{o1}"
        );
        assert_eq!(post(&s.url(), path, &body).0, 429);
        let (c3, o3) = post(&s.url(), path, &body);
        assert_eq!(c3, 401);
        assert!(o3.contains("UNAUTHENTICATED"), "{o3}");
        let (c4, o4) = post(&s.url(), path, &body);
        assert_eq!(c4, 200);
        assert!(
            o4.contains("data: {") && o4.contains("\"promptTokenCount\":1000"),
            "{o4}"
        );
        let got = s.served("f");
        assert_eq!((got.requests, got.faults, got.replies), (4, 3, 1));
        // The OpenAI shapes.
        s.script("g", Script::new(vec![]).fault(Fault::status(429), 1));
        let (c, o) = post(
            &s.url(),
            "/v1/chat/completions",
            &json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "WS-SCRIPT:g"}]}),
        );
        assert_eq!(c, 429);
        assert!(o.contains("rate_limit_exceeded"), "{o}");
        assert!(
            s.log_summary().contains("[g] -> 429 fault"),
            "{}",
            s.log_summary()
        );
    }

    #[test]
    fn codex_gets_apply_patch_and_aider_gets_search_replace_blocks() {
        let (_t, s) = server();
        let actions = vec![
            Action::Write {
                path: "n.txt".into(),
                content: "new\n".into(),
            },
            Action::Edit {
                path: "src/lib.txt".into(),
                old: "three".into(),
                new: "THREE".into(),
            },
        ];
        s.script("c", Script::new(actions.clone()).usage(30, 3));
        let input = json!([{"type": "message", "role": "user",
            "content": [{"type": "input_text", "text": "WS-SCRIPT:c"}]}]);
        let tools = json!([{"type": "custom", "name": "apply_patch"}, {"type": "function", "name": "exec_command"}]);
        let (code, out) = post(
            &s.url(),
            "/v1/responses",
            &json!({"model": "gpt-5.5", "stream": true, "tools": tools, "input": input}),
        );
        assert_eq!(code, 200);
        assert!(out.contains("\"custom_tool_call\""), "{out}");
        assert!(out.contains("*** Add File: n.txt\\n+new\\n"), "{out}");
        assert!(out.contains("\"type\":\"response.completed\""), "{out}");
        assert!(out.contains("\"input_tokens\":30"), "{out}");

        let (code, out) = post(
            &s.url(),
            "/v1/chat/completions",
            &json!({"model": "gpt-4o", "stream": true, "messages": [
                {"role": "system", "content": "you edit"},
                {"role": "user", "content": "example"},
                {"role": "assistant", "content": "example reply"},
                {"role": "user", "content": "WS-SCRIPT:c"}]}),
        );
        assert_eq!(code, 200);
        let text: String = out
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .filter_map(|d| serde_json::from_str::<Value>(d).ok())
            .filter_map(|v| {
                v["choices"][0]["delta"]["content"]
                    .as_str()
                    .map(str::to_string)
            })
            .collect();
        assert!(
            text.contains("n.txt\n```\n<<<<<<< SEARCH\n=======\nnew\n>>>>>>> REPLACE\n```"),
            "{text}"
        );
        assert!(text.contains("<<<<<<< SEARCH\nthree\n=======\nTHREE\n>>>>>>> REPLACE"));
        assert!(out.contains("\"prompt_tokens\":30"), "{out}");
        assert!(out.contains("data: [DONE]"));
    }

    /// For trying a CLI by hand: `WS_MODEL_SERVER_PORT=18080 cargo test --test integration
    /// model_server::tests::serve -- --ignored --nocapture` serves the scripts `create`
    /// (a new file), `edit` (a line of src/lib.txt), `r429` (two 429s first), `r401` and
    /// `r503` for WS_MODEL_SERVER_SECS seconds (default 300), logging to
    /// /tmp/ws-model-server.log.
    #[test]
    #[ignore]
    fn serve() {
        let port = std::env::var("WS_MODEL_SERVER_PORT")
            .ok()
            .and_then(|p| p.parse().ok())
            .unwrap_or(18080);
        let secs = std::env::var("WS_MODEL_SERVER_SECS")
            .ok()
            .and_then(|p| p.parse().ok())
            .unwrap_or(300);
        let s = ModelServer::start_on(port, Path::new("/tmp/ws-model-server.log"));
        let write = || Action::Write {
            path: "hello.txt".into(),
            content: "hello\n".into(),
        };
        s.script("create", Script::new(vec![write()]));
        s.script(
            "edit",
            Script::new(vec![Action::Edit {
                path: "src/lib.txt".into(),
                old: "three".into(),
                new: "THREE".into(),
            }]),
        );
        s.script(
            "r429",
            Script::new(vec![write()]).fault(Fault::status(429), 2),
        );
        s.script(
            "r429x",
            Script::new(vec![write()]).fault(Fault::status(429), 100),
        );
        s.script(
            "r401",
            Script::new(vec![write()]).fault(Fault::status(401), 100),
        );
        s.script(
            "r503",
            Script::new(vec![write()]).fault(Fault::status(503), 2),
        );
        s.script(
            "badedit",
            Script::new(vec![Action::Edit {
                path: "src/lib.txt".into(),
                old: "no such line".into(),
                new: "x".into(),
            }]),
        );
        s.script(
            "outside",
            Script::new(vec![Action::Write {
                path: "/var/tmp/ws-outside.txt".into(),
                content: "x\n".into(),
            }]),
        );
        s.script(
            "slow",
            Script::new(vec![write()])
                .fault(Fault::Pass, 1)
                .fault(Fault::Slow(Duration::from_secs(30)), 1),
        );
        println!("serving on {} for {secs}s", s.url());
        std::thread::sleep(Duration::from_secs(secs));
        println!("{}", s.log_summary());
    }

    #[test]
    fn requests_per_script_are_bounded_and_the_server_stops_when_dropped() {
        let (_t, s) = server();
        s.script("loop", Script::new(vec![]));
        let body = json!({"model": "m", "tools": [{"name": "Write"}],
            "messages": [{"role": "user", "content": "WS-SCRIPT:loop"}]});
        for _ in 0..MAX_REQUESTS_PER_SCRIPT {
            assert_eq!(post(&s.url(), "/v1/messages", &body).0, 200);
        }
        assert_eq!(post(&s.url(), "/v1/messages", &body).0, 400);
        let url = s.url();
        drop(s);
        let addr = url.trim_start_matches("http://");
        assert!(
            TcpStream::connect(addr).is_err(),
            "still listening after drop"
        );
    }
}
