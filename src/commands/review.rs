//! `git ws-review`: a local web server over the run database and the repository — the list of
//! runs, a run's page, each workstream with its commits, diffs and log — bound to loopback,
//! every request checked for a random token, every page free of script — and the review
//! actions posted from its forms (leave out / put back, comments sent back as a follow-up, the
//! dry-run plan), each checked for the session cookie, a CSRF token and the same origin, and
//! recorded with who and when. Pages are rendered by `ws-report` from the same view
//! `git ws-report` prints; this file owns only HTTP and the actions.

use crate::db::{ConsolidationDatabase, DbLocation, ReviewAction, ReviewComment, RunState};
use crate::error::Error;
use crate::git::{Repo, RepoPaths};
use crate::layout::Layout;
use crate::report::{self, DiffLayout, PageOptions};
use crate::runner::followups::Pickup;
use crate::workspace::Workspace;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// What `git ws-review` is asked for.
#[derive(Debug, Clone, Default)]
pub struct ReviewOptions {
    /// Where the command runs (the repository, if any, is found from here).
    pub cwd: PathBuf,
    /// The run to open first (`latest` works); `None`: the list of runs.
    pub run: Option<String>,
    /// Port on 127.0.0.1; 0: a free one.
    pub port: u16,
    /// Database (flag); `None`: env, git config, the default.
    pub db: Option<DbLocation>,
}

/// The name of the cookie that carries the token after the first visit.
pub const COOKIE: &str = "ws_review";
/// A live run's pages reload this often.
pub const REFRESH_SECONDS: u32 = 2;
/// At most this many files of one workstream are diffed on its page.
pub const MAX_FILES: usize = 300;
/// At most this many runs are listed.
pub const MAX_RUNS: usize = 500;

/// The policy of every served page: nothing from elsewhere, no script, forms only to here.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; \
                   base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// A bound server, not yet serving.
pub struct Review {
    listener: TcpListener,
    state: Arc<State>,
}

struct State {
    token: String,
    /// Sent back in a hidden field of every form; a POST without it is refused.
    csrf: String,
    /// Who the actions are recorded as: `$USER`, else git's `user.name`.
    who: String,
    /// Where `git ws-merge --dry-run` runs from.
    cwd: PathBuf,
    port: u16,
    db: DbLocation,
    repo: Option<RepoPaths>,
    /// The logs of every run are under here; no other file is served.
    logs_root: Option<PathBuf>,
    /// The repository's layout: whether a run is live and takes follow-ups.
    layout: Option<Layout>,
}

impl Review {
    /// Find the database (as `git ws-report` does), bind 127.0.0.1:`port`, make the token.
    pub fn bind(opts: &ReviewOptions) -> Result<Review, Error> {
        let ws = Workspace::discover(&opts.cwd).ok();
        let db =
            match crate::workspace::locate_db(opts.db.as_ref(), &opts.cwd, ws.as_ref())? {
                Some(db) => db,
                None => return Err(Error::new(
                    "not inside a git repository: pass --db PATH|URL or run from the repository",
                )),
            };
        // Fail now, not on the first page, when the database cannot be read.
        ConsolidationDatabase::open_read_only(&db)?;
        let listener = TcpListener::bind(("127.0.0.1", opts.port)).map_err(|e| {
            Error::new(format!(
                "failed to listen on 127.0.0.1:{} (--port): {e}",
                opts.port
            ))
        })?;
        let port = listener
            .local_addr()
            .map_err(|e| Error::new(format!("failed to read the server's address: {e}")))?
            .port();
        Ok(Review {
            listener,
            state: Arc::new(State {
                token: new_token()?,
                csrf: new_token()?,
                who: reviewer(&opts.cwd),
                cwd: opts.cwd.clone(),
                port,
                db,
                logs_root: ws.as_ref().map(|w| w.layout.state_dir().join("logs")),
                layout: ws.as_ref().map(|w| w.layout.clone()),
                repo: ws.map(|w| w.repo),
            }),
        })
    }

    /// The URL to open: the run's page (or the list) with the token.
    pub fn url(&self, run: Option<&str>) -> String {
        let path = match run {
            Some(r) => format!("/run/{}", report::url_segment(r)),
            None => "/".to_string(),
        };
        format!(
            "http://127.0.0.1:{}{path}?token={}",
            self.state.port, self.state.token
        )
    }

    /// Serve until the process is stopped: one thread per connection.
    pub fn serve(self) -> ! {
        for conn in self.listener.incoming() {
            let Ok(stream) = conn else { continue };
            let state = Arc::clone(&self.state);
            std::thread::spawn(move || {
                let _ = handle(&state, stream);
            });
        }
        unreachable!("TcpListener::incoming never ends")
    }
}

/// Who records review actions: the OS user name (`$USER`), else git's `user.name`, else
/// `unknown`.
fn reviewer(cwd: &Path) -> String {
    if let Some(u) = std::env::var("USER").ok().filter(|u| !u.trim().is_empty()) {
        return u.trim().to_string();
    }
    std::process::Command::new("git")
        .args(["config", "user.name"])
        .current_dir(cwd)
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "unknown".to_string())
}

/// Now, RFC 3339 UTC to the second.
fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// 128 random bits, hex.
fn new_token() -> Result<String, Error> {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| Error::new(format!("failed to read /dev/urandom for the token: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Equal, in time that does not depend on where they differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// One parsed request: what the server needs of it.
#[derive(Debug, Default, PartialEq, Eq)]
struct Request {
    method: String,
    path: String,
    query: Vec<(String, String)>,
    host: Option<String>,
    cookie_token: Option<String>,
    origin: Option<String>,
    referer: Option<String>,
    sec_fetch_site: Option<String>,
    content_length: Option<usize>,
    /// The body's `application/x-www-form-urlencoded` fields (POST).
    form: Vec<(String, String)>,
}

impl Request {
    fn field(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// `%XX` and `+` decoded; `None` when the bytes are not UTF-8.
fn percent_decode(s: &str, plus_is_space: bool) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// `k=v&k=v`, each side percent-decoded; `None` when not UTF-8.
fn parse_form(raw: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    for pair in raw.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        out.push((percent_decode(k, true)?, percent_decode(v, true)?));
    }
    Some(out)
}

/// The largest form body accepted.
const MAX_BODY: usize = 1 << 20;

/// The request line and headers, at most 64 KiB of them.
fn parse(head: &str) -> Option<Request> {
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_string();
    let target = first.next()?;
    let (raw_path, raw_query) = target.split_once('?').unwrap_or((target, ""));
    let mut req = Request {
        method,
        path: raw_path.to_string(),
        ..Request::default()
    };
    req.query = parse_form(raw_query)?;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "host" => req.host = Some(value.to_string()),
            "origin" => req.origin = Some(value.to_string()),
            "referer" => req.referer = Some(value.to_string()),
            "sec-fetch-site" => req.sec_fetch_site = Some(value.to_ascii_lowercase()),
            "content-length" => req.content_length = Some(value.parse().ok()?),
            "cookie" => {
                for c in value.split(';') {
                    if let Some((k, v)) = c.trim().split_once('=') {
                        if k == COOKIE {
                            req.cookie_token = Some(v.to_string());
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Some(req)
}

struct Response {
    status: &'static str,
    content_type: &'static str,
    body: Vec<u8>,
    extra: Vec<String>,
}

impl Response {
    fn html(body: String) -> Response {
        Response {
            status: "200 OK",
            content_type: "text/html; charset=utf-8",
            body: body.into_bytes(),
            extra: Vec::new(),
        }
    }

    fn error(status: &'static str, sentence: &str) -> Response {
        let mut page = String::new();
        report::html_head(&mut page, status);
        page.push_str(&format!(
            "<main id=\"main\"><h1>{}</h1><p>{}</p></main>",
            report::escape_html(status),
            report::escape_html(sentence)
        ));
        report::html_foot(&mut page);
        Response {
            status,
            ..Response::html(page)
        }
    }
}

fn write_response(stream: &mut TcpStream, r: &Response, head_only: bool) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n\
         Content-Security-Policy: {CSP}\r\nX-Content-Type-Options: nosniff\r\n\
         Referrer-Policy: no-referrer\r\nX-Frame-Options: DENY\r\nCache-Control: no-store\r\n\
         Connection: close\r\n",
        r.status,
        r.content_type,
        r.body.len()
    );
    for h in &r.extra {
        head.push_str(h);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    if !head_only {
        stream.write_all(&r.body)?;
    }
    stream.flush()
}

fn handle(state: &State, mut stream: TcpStream) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
            break;
        }
        head.push_str(&line);
        if head.len() > 64 * 1024 {
            return write_response(
                &mut stream,
                &Response::error(
                    "431 Request Header Fields Too Large",
                    "The request is too large.",
                ),
                false,
            );
        }
    }
    let head = head.replace("\r\n", "\n").replace('\n', "\r\n");
    let Some(mut req) = parse(head.trim_end()) else {
        return write_response(
            &mut stream,
            &Response::error("400 Bad Request", "The request could not be read."),
            false,
        );
    };
    if let Some(n) = req.content_length.filter(|n| *n > 0) {
        if n > MAX_BODY {
            return write_response(
                &mut stream,
                &Response::error(
                    "413 Content Too Large",
                    "The form is too large (1 MiB at most).",
                ),
                false,
            );
        }
        let mut body = vec![0u8; n];
        reader.read_exact(&mut body)?;
        let form = std::str::from_utf8(&body).ok().and_then(parse_form);
        let Some(form) = form else {
            return write_response(
                &mut stream,
                &Response::error("400 Bad Request", "The form could not be read."),
                false,
            );
        };
        req.form = form;
    }
    let response = respond(state, &req);
    write_response(&mut stream, &response, req.method == "HEAD")
}

/// The response to one request: the checks first, then the page.
fn respond(state: &State, req: &Request) -> Response {
    // Only names of this machine's loopback reach the server (no DNS rebinding).
    let host_ok = req.host.as_deref().is_some_and(|h| {
        [
            format!("127.0.0.1:{}", state.port),
            format!("localhost:{}", state.port),
        ]
        .iter()
        .any(|ok| ok == h)
    });
    if !host_ok {
        return Response::error("403 Forbidden", "This server answers only on 127.0.0.1.");
    }
    let query_token = req.param("token");
    let authorised = query_token.is_some_and(|t| same(t, &state.token))
        || req
            .cookie_token
            .as_deref()
            .is_some_and(|t| same(t, &state.token));
    if !authorised {
        return Response::error(
            "403 Forbidden",
            "This page needs the token: open the URL git ws-review printed.",
        );
    }
    if req.method == "POST" {
        if let Some(why) = csrf_refusal(state, req) {
            return Response::error("403 Forbidden", &why);
        }
        return post(state, req);
    }
    if req.method != "GET" && req.method != "HEAD" {
        return Response::error(
            "405 Method Not Allowed",
            "Only GET, HEAD and POST are served.",
        );
    }
    let mut r = route(state, req);
    if query_token.is_some() {
        r.extra.push(format!(
            "Set-Cookie: {COOKIE}={}; Path=/; HttpOnly; SameSite=Strict",
            state.token
        ));
    }
    r
}

/// Why a POST is refused, if it is: it needs the session cookie (not only the token in the
/// URL), the form's CSRF token, and a same-origin request (its `Origin`, else
/// `Sec-Fetch-Site`, else `Referer`, says so).
fn csrf_refusal(state: &State, req: &Request) -> Option<String> {
    if !req
        .cookie_token
        .as_deref()
        .is_some_and(|t| same(t, &state.token))
    {
        return Some("An action needs the session cookie: open the URL git ws-review printed, then use the page's buttons.".into());
    }
    if !req.field("csrf").is_some_and(|t| same(t, &state.csrf)) {
        return Some(
            "The form's CSRF token is missing or wrong: reload the page and try again.".into(),
        );
    }
    let origins = [
        format!("http://127.0.0.1:{}", state.port),
        format!("http://localhost:{}", state.port),
    ];
    if let Some(site) = &req.sec_fetch_site {
        if site != "same-origin" {
            return Some(format!(
                "A request from another site ({site}) cannot act here."
            ));
        }
    }
    match (&req.origin, &req.sec_fetch_site, &req.referer) {
        (Some(o), _, _) if origins.iter().any(|ok| ok == o) => None,
        (Some(o), _, _) => Some(format!("A request from {o} cannot act here.")),
        (None, Some(_), _) => None,
        (None, None, Some(r)) if origins.iter().any(|ok| r.starts_with(&format!("{ok}/"))) => None,
        _ => Some(
            "An action needs an Origin, Sec-Fetch-Site or Referer header from this server.".into(),
        ),
    }
}

/// The path's segments, percent-decoded; a 400 response when they are not UTF-8.
fn segments(req: &Request) -> Result<Vec<String>, Response> {
    req.path
        .trim_start_matches('/')
        .split('/')
        .map(|s| percent_decode(s, false))
        .collect::<Option<Vec<String>>>()
        .ok_or_else(|| Response::error("400 Bad Request", "The address is not valid UTF-8."))
}

/// An error as a page: 404 for a run that does not exist, else 500.
fn failed(e: Error) -> Response {
    match &e {
        Error::Db(crate::db::DbError::NoSuchRun { .. }) => {
            Response::error("404 Not Found", &e.to_string())
        }
        _ => Response::error("500 Internal Server Error", &e.to_string()),
    }
}

fn route(state: &State, req: &Request) -> Response {
    let segments = match segments(req) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let parts: Vec<&str> = segments.iter().map(String::as_str).collect();
    let result = match parts.as_slice() {
        [""] => runs_page(state, req.param("q").unwrap_or("")),
        ["run", run] => run_page(state, run),
        ["run", run, "ws", id] => {
            workstream_page(state, run, id, req.param("layout"), req.param("queued"))
        }
        ["run", run, "ws", id, "log"] => log_file(state, run, id),
        _ => Ok(Response::error("404 Not Found", "No such page.")),
    };
    result.unwrap_or_else(failed)
}

/// The review actions (CSRF already checked): each is recorded with who and when.
fn post(state: &State, req: &Request) -> Response {
    let segments = match segments(req) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let parts: Vec<&str> = segments.iter().map(String::as_str).collect();
    let result = match parts.as_slice() {
        ["run", run, "ws", id, action @ ("leave-out" | "put-back")] => mark(state, run, id, action),
        ["run", run, "ws", id, "comments"] => {
            comments(state, run, id, req.field("comments").unwrap_or(""))
        }
        ["run", run, "dry-run"] => dry_run(state, run),
        _ => Ok(Response::error("404 Not Found", "No such action.")),
    };
    result.unwrap_or_else(failed)
}

/// After an action, back to the page (POST, redirect, GET: a reload does not repeat it).
fn see_other(location: String) -> Response {
    let mut r = Response::html(format!(
        "<!doctype html><title>Done</title><p><a href=\"{0}\">{0}</a></p>",
        report::escape_html(&location)
    ));
    r.status = "303 See Other";
    r.extra.push(format!("Location: {location}"));
    r
}

fn run_href(run_id: &str) -> String {
    format!("/run/{}", report::url_segment(run_id))
}

fn ws_href(run_id: &str, id: &str) -> String {
    format!("{}/ws/{}", run_href(run_id), report::url_segment(id))
}

/// The run's id and the workstream's branch (`None`: it has none), or a 404 page.
fn find_workstream(
    state: &State,
    spec: &str,
    id: &str,
) -> Result<Result<(String, Option<String>), Response>, Error> {
    let mut db = open_db(state)?;
    let run_id = db.resolve_run_id(spec)?;
    let found = db
        .results(&run_id)?
        .into_iter()
        .find(|r| r.workstream_id == id);
    Ok(match found {
        Some(r) => Ok((run_id, r.branch)),
        None => Err(Response::error(
            "404 Not Found",
            &format!("Run {run_id} has no workstream {id}."),
        )),
    })
}

/// The database for an action: opened for writing (never created).
fn open_db_for_writing(state: &State) -> Result<ConsolidationDatabase, Error> {
    Ok(ConsolidationDatabase::open_existing(&state.db)?)
}

fn mark(state: &State, spec: &str, id: &str, action: &str) -> Result<Response, Error> {
    let (run_id, _) = match find_workstream(state, spec, id)? {
        Ok(found) => found,
        Err(page) => return Ok(page),
    };
    let (action, detail) = if action == "leave-out" {
        (
            ReviewAction::LEAVE_OUT,
            format!("{id} left out of the next git ws-merge"),
        )
    } else {
        (
            ReviewAction::PUT_BACK,
            format!("{id} put back into the next git ws-merge"),
        )
    };
    open_db_for_writing(state)?.record_review_action(
        &run_id,
        &ReviewAction {
            workstream_id: Some(id.to_string()),
            action: action.to_string(),
            who: state.who.clone(),
            at: now(),
            detail,
        },
    )?;
    Ok(see_other(ws_href(&run_id, id)))
}

/// Lines of context around each commented line in the follow-up's prompt.
const PROMPT_CONTEXT: usize = 3;

fn comments(state: &State, spec: &str, id: &str, text: &str) -> Result<Response, Error> {
    let (run_id, branch) = match find_workstream(state, spec, id)? {
        Ok(found) => found,
        Err(page) => return Ok(page),
    };
    let parsed = match ws_core::review::parse_comments(text) {
        Ok(c) => c,
        Err(why) => {
            return Ok(Response::error(
                "400 Bad Request",
                &format!("{why}. Format: {}.", report::COMMENT_FORMAT),
            ))
        }
    };
    let (Some(branch), Some(paths)) = (branch, &state.repo) else {
        return Ok(Response::error(
            "409 Conflict",
            &format!("{id} has no branch here to start a follow-up from."),
        ));
    };
    let repo = Repo::open(paths)?;
    let mut with_context = Vec::new();
    for c in parsed {
        let context = repo.context_lines(&branch, &c.path, c.line, PROMPT_CONTEXT)?;
        with_context.push((c, context));
    }
    let prompt = ws_core::review::followup_prompt(id, &branch, &with_context);
    let stored: Vec<ReviewComment> = with_context
        .iter()
        .map(|(c, _)| ReviewComment {
            path: c.path.clone(),
            line: c.line as i64,
            body: c.text.clone(),
        })
        .collect();
    let followup = open_db_for_writing(state)?.add_review_followup(
        &run_id,
        id,
        &branch,
        &stored,
        &|_| prompt.clone(),
        &state.who,
        &now(),
    )?;
    // Back to the page, which says who runs it: the live run, or `--resume`.
    Ok(see_other(format!(
        "{}?queued={}",
        ws_href(&run_id, id),
        report::url_segment(&followup)
    )))
}

fn dry_run(state: &State, spec: &str) -> Result<Response, Error> {
    let run_id = open_db(state)?.resolve_run_id(spec)?;
    let mut opts = crate::commands::merge::MergeOptions::new(state.cwd.clone(), &run_id);
    opts.dry_run = true;
    opts.db = Some(state.db.clone());
    let outcome = match crate::commands::merge::merge(&opts, &mut |_| {}) {
        Ok(o) => o,
        Err(e) => {
            return Ok(Response::error(
                "409 Conflict",
                &format!("git ws-merge --dry-run {run_id}: {e}"),
            ))
        }
    };
    let it = &outcome.record;
    open_db_for_writing(state)?.record_review_action(
        &run_id,
        &ReviewAction {
            workstream_id: None,
            action: ReviewAction::DRY_RUN.to_string(),
            who: state.who.clone(),
            at: now(),
            detail: format!(
                "planned the integration onto {}: {} merged, {} left out",
                it.onto_rev,
                it.merges.len(),
                it.excluded.len()
            ),
        },
    )?;
    Ok(Response::html(report::plan_page(
        &run_id,
        it,
        &run_href(&run_id),
    )))
}

/// What the pages show of the review: the recorded actions (of one workstream, or all).
fn review_forms(
    db: &mut ConsolidationDatabase,
    state: &State,
    run_id: &str,
    workstream: Option<&str>,
    action_base: String,
) -> Result<report::ReviewForms, Error> {
    let actions = db.review_actions(run_id)?;
    let left_out = match workstream {
        Some(id) => db.left_out(run_id)?.remove(id).map(|a| (a.who, a.at)),
        None => None,
    };
    Ok(report::ReviewForms {
        csrf: state.csrf.clone(),
        action_base,
        left_out,
        followup: None,
        actions: actions
            .into_iter()
            .filter(|a| workstream.is_none() || a.workstream_id.as_deref() == workstream)
            .map(|a| report::ReviewEntry {
                workstream_id: a.workstream_id,
                action: a.action,
                who: a.who,
                at: a.at,
                detail: a.detail,
            })
            .collect(),
    })
}

fn open_db(state: &State) -> Result<ConsolidationDatabase, Error> {
    Ok(ConsolidationDatabase::open_read_only(&state.db)?)
}

fn runs_page(state: &State, q: &str) -> Result<Response, Error> {
    let runs = open_db(state)?.get_all_runs(MAX_RUNS)?;
    let needle = q.trim().to_lowercase();
    let mut page = String::new();
    report::html_head(&mut page, "git-ws runs");
    page.push_str("<main id=\"main\"><h1>Runs</h1><form method=\"get\" action=\"/\" role=\"search\"><label for=\"q\">Search runs</label> ");
    page.push_str(&format!(
        "<input id=\"q\" name=\"q\" type=\"search\" value=\"{}\"> <button type=\"submit\">Search</button></form>",
        report::escape_html(q)
    ));
    let rows: Vec<_> = runs
        .iter()
        .filter(|r| {
            needle.is_empty()
                || r.run_id.to_lowercase().contains(&needle)
                || r.state.as_str().contains(&needle)
                || r.timestamp.contains(&needle)
        })
        .collect();
    if rows.is_empty() {
        page.push_str("<p>No run matches.</p>");
    } else {
        page.push_str("<table><caption>Recorded runs, newest first</caption><thead><tr><th scope=\"col\">Run</th><th scope=\"col\">Started (UTC)</th><th scope=\"col\">State</th><th scope=\"col\" class=\"num\">Workstreams</th><th scope=\"col\" class=\"num\">Completed</th><th scope=\"col\" class=\"num\">Failed</th><th scope=\"col\" class=\"num\">Skipped</th></tr></thead><tbody>");
        for r in rows {
            let live = if r.state == RunState::Running {
                " <span class=\"muted\">(live)</span>"
            } else {
                ""
            };
            page.push_str(&format!(
                "<tr><td><a href=\"/run/{}\"><code>{}</code></a>{live}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                report::escape_html(&report::url_segment(&r.run_id)),
                report::escape_html(&r.run_id),
                report::escape_html(&r.timestamp.chars().take(19).collect::<String>().replace('T', " ")),
                r.state.as_str(),
                r.total_workstreams,
                r.completed_count,
                r.failed_count,
                r.skipped_count
            ));
        }
        page.push_str("</tbody></table>");
    }
    page.push_str("</main>");
    report::html_foot(&mut page);
    Ok(Response::html(page))
}

fn run_page(state: &State, spec: &str) -> Result<Response, Error> {
    let mut db = open_db(state)?;
    let run_id = db.resolve_run_id(spec)?;
    crate::workstream::validate_run_id(&run_id)?;
    let view = db.run_view(&run_id)?;
    let live = view.state == "running";
    let review = review_forms(&mut db, state, &run_id, None, run_href(&run_id))?;
    let page = report::render_html_with(
        &view,
        &PageOptions {
            workstream_base: Some(format!("/run/{}/ws/", report::url_segment(&run_id))),
            refresh_seconds: live.then_some(REFRESH_SECONDS),
            home: Some("/".to_string()),
            review: Some(review),
        },
    );
    Ok(Response::html(page))
}

/// What the page says of follow-up `queued` of workstream `id`, just sent: who runs it, or
/// how it ended. `None` when `queued` is no follow-up of it.
fn followup_notice(
    db: &mut ConsolidationDatabase,
    state: &State,
    view: &crate::view::RunView,
    id: &str,
    queued: &str,
) -> Result<Option<report::FollowupNotice>, Error> {
    let run_id = &view.run_id;
    let known = db
        .review_followups(run_id)?
        .into_iter()
        .any(|f| f.followup_id == queued && f.workstream_id == id);
    if !known {
        return Ok(None);
    }
    let state_now = match view.workstreams.iter().find(|w| w.workstream_id == queued) {
        Some(w) => report::FollowupState::Ran {
            status: w.status.as_str().to_string(),
            href: ws_href(run_id, queued),
        },
        None => match &state.layout {
            Some(layout) => match crate::runner::followups::pickup(db, layout, run_id)? {
                Pickup::Live => report::FollowupState::Live,
                Pickup::Resume => report::FollowupState::Resume,
                Pickup::Shared => report::FollowupState::Shared,
            },
            None => report::FollowupState::Resume,
        },
    };
    Ok(Some(report::FollowupNotice {
        id: queued.to_string(),
        run_id: run_id.clone(),
        state: state_now,
    }))
}

fn workstream_page(
    state: &State,
    spec: &str,
    id: &str,
    layout: Option<&str>,
    queued: Option<&str>,
) -> Result<Response, Error> {
    let mut db = open_db(state)?;
    let run_id = db.resolve_run_id(spec)?;
    crate::workstream::validate_run_id(&run_id)?;
    let view = db.run_view(&run_id)?;
    let Some(row) = view.workstreams.iter().find(|w| w.workstream_id == id) else {
        return Ok(Response::error(
            "404 Not Found",
            &format!("Run {run_id} has no workstream {id}."),
        ));
    };
    let layout = match layout {
        Some("split") => DiffLayout::SideBySide,
        _ => DiffLayout::Unified,
    };
    let (mut texts, mut commits, mut note) = (Vec::new(), Vec::new(), None);
    match (&state.repo, &row.branch) {
        (None, _) => note = Some("Outside the repository: no diff to show.".to_string()),
        (Some(_), None) => {}
        (Some(paths), Some(branch)) => match Repo::open(paths) {
            Ok(repo) => {
                match repo.file_texts(&view.base, branch, MAX_FILES + 1) {
                    Ok(t) => texts = t,
                    Err(e) => note = Some(format!("The branch {branch} cannot be read: {e}")),
                }
                commits = repo
                    .commits_since(&view.base, branch, 200)
                    .unwrap_or_default();
            }
            Err(e) => note = Some(format!("The repository cannot be opened: {e}")),
        },
    }
    if texts.len() > MAX_FILES {
        texts.truncate(MAX_FILES);
        note = Some(format!("Only the first {MAX_FILES} files are shown."));
    }
    let base = format!(
        "/run/{}/ws/{}",
        report::url_segment(&run_id),
        report::url_segment(id)
    );
    let log_href = row
        .log_path
        .as_deref()
        .filter(|p| allowed_log(state, Path::new(p)).is_some())
        .map(|_| format!("{base}/log"));
    let mut review = review_forms(&mut db, state, &run_id, Some(id), base.clone())?;
    if let Some(q) = queued {
        review.followup = followup_notice(&mut db, state, &view, id, q)?;
    }
    let page = report::workstream_page(&report::WorkstreamPage {
        run: &view,
        row,
        files: texts
            .iter()
            .map(|f| report::FileDiff {
                path: &f.path,
                old_path: f.old_path.as_deref(),
                old: f.old.as_deref(),
                new: f.new.as_deref(),
                binary: f.binary,
            })
            .collect(),
        commits: commits
            .iter()
            .map(|c| report::CommitRow {
                sha: &c.sha,
                summary: &c.summary,
                author: &c.author,
            })
            .collect(),
        layout,
        run_href: format!("/run/{}", report::url_segment(&run_id)),
        log_href,
        layout_hrefs: (base.clone(), format!("{base}?layout=split")),
        refresh_seconds: (view.state == "running").then_some(REFRESH_SECONDS),
        note,
        review: Some(review),
    });
    Ok(Response::html(page))
}

/// The log's real path when it lies under the logs directory; `None` otherwise.
fn allowed_log(state: &State, path: &Path) -> Option<PathBuf> {
    let root = state.logs_root.as_ref()?.canonicalize().ok()?;
    let real = path.canonicalize().ok()?;
    (real.starts_with(&root) && real.is_file()).then_some(real)
}

fn log_file(state: &State, spec: &str, id: &str) -> Result<Response, Error> {
    let mut db = open_db(state)?;
    let run_id = db.resolve_run_id(spec)?;
    let view = db.run_view(&run_id)?;
    let Some(path) = view
        .workstreams
        .iter()
        .find(|w| w.workstream_id == id)
        .and_then(|w| w.log_path.as_deref())
        .and_then(|p| allowed_log(state, Path::new(p)))
    else {
        return Ok(Response::error(
            "404 Not Found",
            "This workstream has no log here.",
        ));
    };
    let body = std::fs::read(&path)
        .map_err(|e| Error::new(format!("failed to read {}: {e}", path.display())))?;
    Ok(Response {
        status: "200 OK",
        content_type: "text/plain; charset=utf-8",
        body,
        extra: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_with_their_query_host_and_cookie() {
        let r = parse(
            "GET /run/ma%2Drun?q=a+b%21&token=abc HTTP/1.1\r\nHost: 127.0.0.1:9\r\nCookie: x=1; ws_review=tok\r\n",
        )
        .unwrap();
        assert_eq!(r.method, "GET");
        assert_eq!(r.path, "/run/ma%2Drun");
        assert_eq!(r.param("q"), Some("a b!"));
        assert_eq!(r.param("token"), Some("abc"));
        assert_eq!(r.host.as_deref(), Some("127.0.0.1:9"));
        assert_eq!(r.cookie_token.as_deref(), Some("tok"));
        assert_eq!(percent_decode("a%2Fb%", false).as_deref(), Some("a/b%"));
        assert_eq!(percent_decode("%ff", false), None);
    }

    #[test]
    fn tokens_compare_whole_and_are_random() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd") && !same("abc", "ab"));
        let (a, b) = (new_token().unwrap(), new_token().unwrap());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
    }
}
