//! `git ws-review` in a real browser: Debian's Chromium, headless, loads the list, a run and
//! a workstream from the real server over a real run, and a live run's page while it goes
//! on; a hostile run renders with no script run; a request without the token is refused.
//! Screenshots of the pages are kept in `target/review-screenshots/`. Without Chromium the
//! tests skip with a message; with `CI=true` they fail instead.

use crate::common::Env;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The browser, or `None` (skip) outside CI.
fn chromium() -> Option<PathBuf> {
    let found = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file());
    if found.is_none() {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "CI=true and no Chromium (.ci/run installs Debian's chromium)"
        );
        eprintln!("skipping: no /usr/bin/chromium (apt-get install chromium; CI=true makes this a failure)");
    }
    found
}

/// A running `git ws-review`, killed on drop.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(env: &Env, args: &[&str]) -> Server {
        // Its own process group: git's wrapper and the server it starts die together.
        let mut child = env
            .command("git")
            .arg("ws-review")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://127.0.0.1:"))
            .unwrap_or_else(|| panic!("no URL in {line:?}"))
            .to_string();
        Server { child, url }
    }

    fn port(&self) -> u16 {
        let rest = self.url.trim_start_matches("http://127.0.0.1:");
        rest[..rest.find('/').unwrap()].parse().unwrap()
    }

    fn token(&self) -> &str {
        self.url.rsplit("token=").next().unwrap()
    }

    /// `path` with the token.
    fn at(&self, path: &str) -> String {
        format!(
            "http://127.0.0.1:{}{path}?token={}",
            self.port(),
            self.token()
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        crate::common::signal_group(self.child.id(), libc::SIGKILL);
        let _ = self.child.wait();
    }
}

fn browser(chrome: &Path, profile: &Path) -> Command {
    let mut c = Command::new(chrome);
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .stdin(Stdio::null());
    c
}

/// The DOM Chromium built from `url`, after load.
fn dom(chrome: &Path, profile: &Path, url: &str) -> String {
    let out = browser(chrome, profile)
        .args(["--dump-dom", url])
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        dom.contains("<html"),
        "chromium showed no page for {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    dom
}

/// A screenshot of `url`, kept as a test artefact.
fn screenshot(chrome: &Path, profile: &Path, url: &str, name: &str) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/review-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("{name}.png"));
    let _ = std::fs::remove_file(&file);
    let out = browser(chrome, profile)
        .arg("--window-size=1200,1600")
        .arg(format!("--screenshot={}", file.display()))
        .arg(url)
        .output()
        .unwrap();
    assert!(
        file.is_file() && std::fs::metadata(&file).unwrap().len() > 10_000,
        "no screenshot of {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The raw response to `GET path` with `host`, no token unless in the path.
fn raw_get(port: u16, host: &str, path: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn review_env() -> (Env, String) {
    let env = Env::new();
    env.ws_cmd("edit-a", "sed -i 's/^one$/ONE by a/' src/lib.txt");
    env.ws_cmd("edit-b", "sed -i 's/^one$/one by b/' src/lib.txt");
    env.ws(
        "hostile",
        serde_json::json!({
            "id": "hostile",
            "title": "<script>document.title='pwned'</script><img src=x onerror=\"document.title='pwned'\"> \u{202E}evil",
            "command": "echo '<script>document.title=1</script>' > page.html; echo done"
        }),
    );
    let out = env.ws_run(&["--agents", "2"]);
    out.expect(0);
    let run = out.run_id();
    (env, run)
}

#[test]
fn the_list_a_run_and_a_workstream_load_in_chromium_and_no_script_runs() {
    let Some(chrome) = chromium() else { return };
    let (env, run) = review_env();
    let server = Server::start(&env, &[]);
    let profile = tempfile::tempdir().unwrap();

    let list = dom(&chrome, profile.path(), &server.url);
    assert!(list.contains(&format!("<code>{run}</code>")), "{list}");
    assert!(list.contains("<label for=\"q\">Search runs</label>"));
    let none = dom(
        &chrome,
        profile.path(),
        &server.at("/").replace('?', "?q=no-such-run&"),
    );
    assert!(none.contains("No run matches"), "{none}");

    let run_page = dom(&chrome, profile.path(), &server.at(&format!("/run/{run}")));
    assert!(run_page.contains("<h2 id=\"overlaps-h\">Overlaps and conflicts</h2>"));
    assert!(
        run_page.contains("ONE by a") && run_page.contains("one by b"),
        "the conflict's hunk"
    );
    assert!(run_page.contains(&format!("href=\"/run/{run}/ws/edit-a\"")));
    assert!(run_page.contains("<svg class=\"timeline\""));
    // The hostile title is text: no script ran, no element was made of it.
    assert!(!run_page.contains("pwned</title>"), "a script ran");
    assert!(
        run_page.contains("&lt;script&gt;document.title="),
        "the title is shown as text"
    );
    assert!(!run_page.contains("<img"), "an element was made of a title");

    let ws = dom(
        &chrome,
        profile.path(),
        &server.at(&format!("/run/{run}/ws/edit-a")),
    );
    assert!(ws.contains("<caption>src/lib.txt</caption>"), "{ws}");
    // (Word marks need similar lines: the renderer's unit tests show them.)
    assert!(
        ws.contains("<tr class=\"del\">") && ws.contains("</span>ONE by a</td></tr>"),
        "the removed and added lines: {ws}"
    );
    assert!(ws.contains("<h2 id=\"commits-h\">Commits</h2>"));
    let split = dom(
        &chrome,
        profile.path(),
        &format!(
            "{}&layout=split",
            server.at(&format!("/run/{run}/ws/edit-a"))
        ),
    );
    assert!(split.contains("class=\"diff split\""));
    let hostile = dom(
        &chrome,
        profile.path(),
        &server.at(&format!("/run/{run}/ws/hostile")),
    );
    assert!(
        hostile.contains("&lt;script&gt;document.title=1&lt;/script&gt;"),
        "file content is text"
    );
    assert!(!hostile.contains("<title>1</title>") && !hostile.contains("pwned</title>"));

    screenshot(
        &chrome,
        profile.path(),
        &server.at(&format!("/run/{run}")),
        "run",
    );
    screenshot(
        &chrome,
        profile.path(),
        &format!(
            "{}&layout=split",
            server.at(&format!("/run/{run}/ws/edit-a"))
        ),
        "workstream",
    );
    screenshot(&chrome, profile.path(), &server.url, "runs");
}

#[test]
fn a_request_without_the_token_or_from_another_host_is_refused() {
    let env = Env::new();
    env.ws_cmd("one", "echo one > one.txt");
    env.ws_run(&[]).expect(0);
    let server = Server::start(&env, &["latest"]);
    let port = server.port();
    let host = format!("127.0.0.1:{port}");
    let no_token = raw_get(port, &host, "/");
    assert!(no_token.starts_with("HTTP/1.1 403"), "{no_token}");
    assert!(no_token.contains("needs the token"));
    let wrong = raw_get(port, &host, "/?token=0000");
    assert!(wrong.starts_with("HTTP/1.1 403"), "{wrong}");
    let rebinding = raw_get(
        port,
        "evil.example:80",
        &format!("/?token={}", server.token()),
    );
    assert!(rebinding.starts_with("HTTP/1.1 403"), "{rebinding}");
    let ok = raw_get(port, &host, &format!("/?token={}", server.token()));
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    assert!(ok.contains("Set-Cookie: ws_review="), "{ok}");
    assert!(
        ok.contains("Content-Security-Policy: default-src 'none'"),
        "{ok}"
    );
    // The log is served from the run's logs only.
    let run = server
        .url
        .split("/run/")
        .nth(1)
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_string();
    let log = raw_get(
        port,
        &host,
        &format!("/run/{run}/ws/one/log?token={}", server.token()),
    );
    assert!(
        log.starts_with("HTTP/1.1 200") && log.contains("text/plain"),
        "{log}"
    );
    let missing = raw_get(
        port,
        &host,
        &format!("/run/{run}/ws/nope?token={}", server.token()),
    );
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
    // It listens on loopback only.
    let addr = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let hex_port = format!(":{port:04X} ");
    let line = addr
        .lines()
        .find(|l| l.contains(&hex_port) && l.contains(" 0A "))
        .unwrap();
    assert!(
        line.split_whitespace()
            .nth(1)
            .unwrap()
            .starts_with("0100007F"),
        "{line}"
    );
}

/// The live page updates while a run progresses: each load while the run goes on shows
/// what has been recorded so far and reloads itself; once the run ends the page is static.
#[test]
fn the_page_of_a_live_run_reloads_until_the_run_ends() {
    let Some(chrome) = chromium() else { return };
    let env = Env::new();
    env.ws_cmd("quick", "echo quick > quick.txt");
    env.ws_cmd(
        "mid",
        "while [ ! -e \"$HOME/go-mid\" ]; do sleep 0.05; done; echo mid > mid.txt",
    );
    env.ws_cmd(
        "slow",
        "while [ ! -e \"$HOME/go\" ]; do sleep 0.05; done; echo slow > slow.txt",
    );
    let mut run = env
        .command("git")
        .args(["ws-run", "--agents", "3", "-q"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the run is recorded with its quick workstream done.
    let started = Instant::now();
    let run_id = loop {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the run never recorded quick"
        );
        if let Some(rows) = crate::common::try_sql(
            &env.db_path(),
            "SELECT run_id FROM agent_results WHERE workstream_id = 'quick'",
        ) {
            if let Some(r) = rows.first() {
                break r[0].clone();
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let server = Server::start(&env, &[&run_id]);
    let profile = tempfile::tempdir().unwrap();
    let live = dom(&chrome, profile.path(), &server.url);
    assert!(
        live.contains("http-equiv=\"refresh\""),
        "a live run's page reloads"
    );
    assert!(live.contains("Live: this page reloads"));
    assert!(live.contains("href=\"/run/") && live.contains("/ws/quick\""));
    assert!(!live.contains("/ws/mid\""), "mid is not recorded yet");
    // The run progresses: the next load of the live page shows mid, and still reloads.
    std::fs::write(env.home.join("go-mid"), "").unwrap();
    wait_for(30, "mid's result", || {
        crate::common::try_sql(
            &env.db_path(),
            "SELECT 1 FROM agent_results WHERE workstream_id = 'mid'",
        )
        .is_some_and(|r| !r.is_empty())
    });
    let later = dom(&chrome, profile.path(), &server.url);
    assert!(later.contains("/ws/mid\""), "the live page shows mid now");
    assert!(
        later.contains("http-equiv=\"refresh\""),
        "and still reloads"
    );
    assert!(!later.contains("/ws/slow\""), "slow still runs");
    std::fs::write(env.home.join("go"), "").unwrap();
    assert!(run.wait().unwrap().success());
    let done = dom(&chrome, profile.path(), &server.url);
    assert!(
        !done.contains("http-equiv=\"refresh\""),
        "a finished run's page is static"
    );
    assert!(
        done.contains("/ws/slow\""),
        "the slow workstream is on the page now"
    );
}

/// The raw response to one request with `headers` and a form `body` (POST when not empty).
fn raw(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut req =
        format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if method == "POST" {
        req.push_str(&format!(
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// `%XX` for everything but letters and digits.
fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A browser session with the server: the cookie the first visit set and the page's CSRF
/// token.
struct Session {
    port: u16,
    cookie: String,
    csrf: String,
}

impl Session {
    fn open(server: &Server, page: &str) -> Session {
        let port = server.port();
        let first = raw(
            port,
            "GET",
            &format!("{page}?token={}", server.token()),
            &[],
            "",
        );
        assert!(first.starts_with("HTTP/1.1 200"), "{first}");
        let cookie = first
            .lines()
            .find_map(|l| l.strip_prefix("Set-Cookie: "))
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string();
        let csrf = first
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .unwrap_or_else(|| panic!("no CSRF field on {page}: {first}"))
            .split('"')
            .next()
            .unwrap()
            .to_string();
        Session { port, cookie, csrf }
    }

    fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// POST `path` as the page's form does: cookie, CSRF field, same Origin.
    fn post(&self, path: &str, fields: &[(&str, &str)]) -> String {
        let mut body = format!("csrf={}", self.csrf);
        for (k, v) in fields {
            body.push_str(&format!("&{k}={}", form_encode(v)));
        }
        raw(
            self.port,
            "POST",
            path,
            &[("Cookie", &self.cookie), ("Origin", &self.origin())],
            &body,
        )
    }
}

fn review_actions(env: &Env) -> usize {
    env.sql("SELECT COUNT(*) FROM ws_review_actions")[0][0]
        .parse()
        .unwrap()
}

#[test]
fn actions_need_the_cookie_the_csrf_token_and_the_same_origin_and_a_get_changes_nothing() {
    let env = Env::new();
    env.ws_cmd("a", "echo a > a.txt");
    env.ws_cmd("b", "echo b > b.txt");
    let out = env.ws_run(&["--agents", "2"]);
    out.expect(0);
    let run = out.run_id();
    let server = Server::start(&env, &[&run]);
    let page = format!("/run/{run}/ws/a");
    let s = Session::open(&server, &page);
    let action = format!("{page}/leave-out");
    let port = s.port;
    let origin = s.origin();
    // Refused: no CSRF token, a wrong one, another origin, a cross-site fetch, no cookie
    // (the token in the URL is not enough), no origin information at all.
    let refused = [
        raw(
            port,
            "POST",
            &action,
            &[("Cookie", &s.cookie), ("Origin", &origin)],
            "x=1",
        ),
        raw(
            port,
            "POST",
            &action,
            &[("Cookie", &s.cookie), ("Origin", &origin)],
            "csrf=00",
        ),
        raw(
            port,
            "POST",
            &action,
            &[("Cookie", &s.cookie), ("Origin", "http://evil.example")],
            &format!("csrf={}", s.csrf),
        ),
        raw(
            port,
            "POST",
            &action,
            &[
                ("Cookie", &s.cookie),
                ("Origin", &origin),
                ("Sec-Fetch-Site", "cross-site"),
            ],
            &format!("csrf={}", s.csrf),
        ),
        raw(
            port,
            "POST",
            &format!("{action}?token={}", server.token()),
            &[("Origin", &origin)],
            &format!("csrf={}", s.csrf),
        ),
        raw(
            port,
            "POST",
            &action,
            &[("Cookie", &s.cookie)],
            &format!("csrf={}", s.csrf),
        ),
    ];
    for r in &refused {
        assert!(r.starts_with("HTTP/1.1 403"), "{r}");
    }
    // A GET of an action's address does nothing.
    let get = raw(port, "GET", &action, &[("Cookie", &s.cookie)], "");
    assert!(get.starts_with("HTTP/1.1 404"), "{get}");
    assert_eq!(review_actions(&env), 0, "a refused or GET request wrote");

    // Left out: ws-merge leaves it out, saying who and when.
    let done = s.post(&action, &[]);
    assert!(done.starts_with("HTTP/1.1 303"), "{done}");
    assert!(done.contains(&format!("Location: {page}\r\n")), "{done}");
    assert_eq!(review_actions(&env), 1);
    let who = env.sql("SELECT who, action FROM ws_review_actions");
    assert_eq!(who[0][1], "leave-out");
    let merge = env
        .command("git")
        .args(["ws-merge", &run, "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(merge.status.code(), Some(0), "{merge:?}");
    let it: serde_json::Value = serde_json::from_slice(&merge.stdout).unwrap();
    let excluded = it["excluded"].as_array().unwrap();
    assert_eq!(excluded.len(), 1, "{it}");
    assert_eq!(excluded[0]["workstream_id"], "a");
    assert_eq!(excluded[0]["reason"], "left-out-by-review");
    let detail = excluded[0]["detail"].as_str().unwrap();
    assert!(
        detail.starts_with(&format!("left out by {} at 20", who[0][0])),
        "{detail}"
    );
    let integration = format!("ws/{run}/integration");
    let tree = env.git(&["ls-tree", "--name-only", &integration]);
    assert!(tree.contains("b.txt") && !tree.contains("a.txt"), "{tree}");

    // Put back: merged again.
    let back = s.post(&format!("{page}/put-back"), &[]);
    assert!(back.starts_with("HTTP/1.1 303"), "{back}");
    let merge = env
        .command("git")
        .args(["ws-merge", &run, "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(merge.status.code(), Some(0), "{merge:?}");
    let it: serde_json::Value = serde_json::from_slice(&merge.stdout).unwrap();
    assert!(it["excluded"].as_array().unwrap().is_empty(), "{it}");
    let tree = env.git(&["ls-tree", "--name-only", &integration]);
    assert!(tree.contains("a.txt") && tree.contains("b.txt"), "{tree}");
    assert_eq!(review_actions(&env), 2);
}

#[test]
fn batched_comments_become_one_follow_up_that_resume_runs_from_the_branch() {
    let env = Env::new();
    env.ws(
        "p1",
        serde_json::json!({"id": "p1", "prompt": "make two loud"}),
    );
    // The agent: keeps every prompt it is given, and commits a change.
    let log = env.scratch("prompts.log");
    let agent = format!(
        "cat >> {}; echo '----' >> {}; echo \"$WS_ID\" >> agent.txt; git add -A; git commit -qm agent",
        log.display(),
        log.display()
    );
    env.git(&["config", "ws.sandbox", "off"]);
    let out = env.ws_run(&["--agents", "1", "--agent-cmd", &agent]);
    out.expect(0);
    let run = out.run_id();
    let server = Server::start(&env, &[&run]);
    let page = format!("/run/{run}/ws/p1");
    let s = Session::open(&server, &page);
    let bad = s.post(&format!("{page}/comments"), &[("comments", "just words")]);
    assert!(
        bad.starts_with("HTTP/1.1 400") && bad.contains("comment line 1"),
        "{bad}"
    );
    let sent = s.post(
        &format!("{page}/comments"),
        &[(
            "comments",
            "src/lib.txt:4: say FOUR\n  loudly\nagent.txt:1: why this file?\n",
        )],
    );
    assert!(sent.starts_with("HTTP/1.1 303"), "{sent}");
    let rows =
        env.sql("SELECT followup_id, workstream_id, start_branch, who FROM ws_review_followups");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0][0], "p1~review1");
    assert_eq!(rows[0][2], format!("ws/{run}/p1"));
    let comments = env.sql("SELECT path, line, body FROM ws_review_comments ORDER BY id");
    assert_eq!(comments.len(), 2);
    assert_eq!(comments[0], vec!["src/lib.txt", "4", "say FOUR\nloudly"]);

    let resumed = env.ws_run(&["--resume", &run, "--agent-cmd", &agent]);
    resumed.expect(0);
    assert_eq!(crate::common::status(&env, &run, "p1~review1"), "completed");
    let followup_branch = format!("ws/{run}/p1.review1");
    let original = format!("ws/{run}/p1");
    let is_ancestor = env
        .command("git")
        .args(["merge-base", "--is-ancestor", &original, &followup_branch])
        .status()
        .unwrap();
    assert!(
        is_ancestor.success(),
        "the follow-up starts from p1's branch"
    );
    assert_ne!(
        env.git(&["rev-parse", &original]),
        env.git(&["rev-parse", &followup_branch])
    );
    let agent_file = env.git(&["show", &format!("{followup_branch}:agent.txt")]);
    assert_eq!(agent_file, "p1\np1~review1\n");
    let prompts = std::fs::read_to_string(&log).unwrap();
    let second = prompts.split("----").nth(1).unwrap();
    assert!(second.contains("workstream p1 (branch ws/"), "{second}");
    assert!(
        second.contains("## Comment 1 — src/lib.txt:4\n\nsay FOUR\nloudly"),
        "{second}"
    );
    assert!(
        second.contains(">    4 | four") && second.contains("     3 | three"),
        "{second}"
    );
    assert!(
        second.contains("## Comment 2 — agent.txt:1\n\nwhy this file?"),
        "{second}"
    );
    assert!(second.contains(">    1 | p1"), "{second}");
    // Run once: a second resume has nothing to do; a second review makes ~review2.
    env.ws_run(&["--resume", &run, "--agent-cmd", &agent])
        .expect(0);
    assert_eq!(
        std::fs::read_to_string(&log)
            .unwrap()
            .matches("----")
            .count(),
        2
    );
    let again = s.post(
        &format!("{page}/comments"),
        &[("comments", "agent.txt:1: still?")],
    );
    assert!(again.starts_with("HTTP/1.1 303"), "{again}");
    let ids = env.sql("SELECT followup_id FROM ws_review_followups ORDER BY followup_id");
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[1][0], "p1~review2");
}

#[test]
fn chromium_shows_a_left_out_workstream_the_review_log_and_the_dry_run_plan() {
    let Some(chrome) = chromium() else { return };
    let env = Env::new();
    env.ws_cmd("a", "echo a > a.txt");
    env.ws_cmd("b", "echo b > b.txt");
    let out = env.ws_run(&["--agents", "2"]);
    out.expect(0);
    let run = out.run_id();
    let server = Server::start(&env, &[&run]);
    let profile = tempfile::tempdir().unwrap();
    let page = format!("/run/{run}/ws/a");
    let before = dom(&chrome, profile.path(), &server.at(&page));
    assert!(
        before.contains("The next <code>git ws-merge</code> merges it"),
        "{before}"
    );
    assert!(
        before.contains(&format!("action=\"{page}/leave-out\"")),
        "{before}"
    );
    assert!(
        before.contains("path:line: text"),
        "the comment format is documented"
    );
    let s = Session::open(&server, &page);
    assert!(s
        .post(&format!("{page}/leave-out"), &[])
        .starts_with("HTTP/1.1 303"));
    let after = dom(&chrome, profile.path(), &server.at(&page));
    assert!(
        after.contains("Left out of the next <code>git ws-merge</code> by "),
        "{after}"
    );
    assert!(
        after.contains(&format!("action=\"{page}/put-back\"")),
        "{after}"
    );
    let plan = s.post(&format!("/run/{run}/dry-run"), &[]);
    assert!(plan.starts_with("HTTP/1.1 200"), "{plan}");
    assert!(
        plan.contains("Integration plan (dry run)") && plan.contains("left-out-by-review"),
        "{plan}"
    );
    let run_page = dom(&chrome, profile.path(), &server.at(&format!("/run/{run}")));
    assert!(
        run_page.contains("<h2 id=\"review-h\">Review</h2>"),
        "{run_page}"
    );
    assert!(
        run_page.contains("a left out of the next git ws-merge"),
        "{run_page}"
    );
    assert!(
        run_page.contains("planned the integration onto HEAD: 1 merged, 1 left out"),
        "{run_page}"
    );
    assert_eq!(review_actions(&env), 2);
    // A batched review: one follow-up, shown on the page as sent.
    let sent = s.post(
        &format!("{page}/comments"),
        &[("comments", "a.txt:1: <b>louder</b>\nb.txt:1: not mine")],
    );
    assert!(sent.starts_with("HTTP/1.1 303"), "{sent}");
    let reviewed = dom(&chrome, profile.path(), &server.at(&page));
    assert!(
        reviewed.contains("2 comments sent as follow-up a~review1 (a live run runs it before it ends, else git ws-run --resume"),
        "{reviewed}"
    );
    assert_eq!(
        env.sql("SELECT COUNT(*) FROM ws_review_followups")[0][0],
        "1"
    );
    screenshot(
        &chrome,
        profile.path(),
        &server.at(&page),
        "workstream-review",
    );
}

/// The review tables on PostgreSQL: actions, marks and follow-ups as on SQLite.
#[test]
fn review_actions_and_follow_ups_are_kept_in_postgres_too() {
    use git_ws::db::{ReviewAction, ReviewComment};
    let Some(url) = crate::pgcluster::cluster().map(|c| c.database("review_actions")) else {
        return;
    };
    let mut db =
        git_ws::ConsolidationDatabase::open(url.parse::<git_ws::db::DbLocation>().unwrap())
            .unwrap();
    let info = git_ws::model::RunInfo {
        run_id: "ma-run-pg-review".to_string(),
        started_at: chrono::Utc::now(),
        finished_at: None,
        agents: 1,
        base: "b".repeat(40),
        base_rev: "HEAD".into(),
        repo_root: "/repo".into(),
        rerun_of: None,
    };
    let run = db.begin_run(&info).unwrap();
    let act = |action: &str| ReviewAction {
        workstream_id: Some("ws-1".into()),
        action: action.into(),
        who: "alice".into(),
        at: "2026-12-07T10:00:00Z".into(),
        detail: format!("{action} ws-1"),
    };
    db.record_review_action(&run, &act(ReviewAction::LEAVE_OUT))
        .unwrap();
    assert_eq!(db.left_out(&run).unwrap()["ws-1"].who, "alice");
    db.record_review_action(&run, &act(ReviewAction::PUT_BACK))
        .unwrap();
    assert!(db.left_out(&run).unwrap().is_empty());
    let c = [ReviewComment {
        path: "a.rs".into(),
        line: 3,
        body: "it's 'quoted'".into(),
    }];
    let id = db
        .add_review_followup(
            &run,
            "ws-1",
            "ws/r/ws-1",
            &c,
            &|id| format!("p {id}"),
            "bob",
            "t",
        )
        .unwrap();
    assert_eq!(id, "ws-1~review1");
    let f = db.review_followups(&run).unwrap();
    assert_eq!(
        (f[0].prompt.as_str(), f[0].who.as_str()),
        ("p ws-1~review1", "bob")
    );
    assert_eq!(db.review_actions(&run).unwrap().len(), 3);
    assert_eq!(
        crate::pgcluster::psql(&url, "SELECT path, line, body FROM ws_review_comments").unwrap(),
        vec![vec!["a.rs", "3", "it's 'quoted'"]]
    );
}

/// Wait up to `secs` for `cond`, saying `what` if it never holds.
fn wait_for(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let started = Instant::now();
    while !cond() {
        assert!(
            started.elapsed() < Duration::from_secs(secs),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The status of `ws` in `run`, if it has a result.
fn try_status(env: &Env, run: &str, ws: &str) -> Option<String> {
    crate::common::try_sql(
        &env.db_path(),
        &format!(
            "SELECT status FROM agent_results WHERE run_id = '{run}' AND workstream_id = '{ws}'"
        ),
    )?
    .first()
    .map(|r| r[0].clone())
}

/// The page after a POST: follow its `Location` with the session's cookie.
fn follow(s: &Session, response: &str) -> String {
    assert!(response.starts_with("HTTP/1.1 303"), "{response}");
    let location = response
        .lines()
        .find_map(|l| l.strip_prefix("Location: "))
        .unwrap()
        .trim()
        .to_string();
    raw(s.port, "GET", &location, &[("Cookie", &s.cookie)], "")
}

/// Comments sent while the run is live run in that run, on a free agent, from the reviewed
/// branch; comments sent once the run takes no more follow-ups (it is finishing) are left,
/// without a result, for `git ws-run --resume`, and the page says which happened.
#[test]
fn a_follow_up_sent_while_the_run_is_live_runs_in_that_run_and_a_late_one_waits_for_resume() {
    let env = Env::new();
    env.ws(
        "p1",
        serde_json::json!({"id": "p1", "prompt": "make two loud"}),
    );
    env.ws(
        "slow",
        serde_json::json!({"id": "slow", "prompt": "take your time"}),
    );
    // The agent: `slow` waits for $HOME/go; every prompt is kept; each commits a change.
    let log = env.scratch("prompts.log");
    let agent = format!(
        "if [ \"$WS_ID\" = slow ]; then while [ ! -e \"$HOME/go\" ]; do sleep 0.05; done; fi; \
         cat >> {0}; echo '----' >> {0}; echo \"$WS_ID\" >> agent.txt; git add -A; git commit -qm agent",
        log.display()
    );
    env.git(&["config", "ws.sandbox", "off"]);
    // The run ends with a notify command that waits for $HOME/release: the run is still
    // alive (its lock held) but takes no more follow-ups.
    env.git(&[
        "config",
        "ws.notifyCommand",
        "touch \"$HOME/notifying\"; while [ ! -e \"$HOME/release\" ]; do sleep 0.05; done",
    ]);
    let mut run = env
        .command("git")
        .args(["ws-run", "--agents", "2", "-q", "--agent-cmd", &agent])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut run_id = String::new();
    wait_for(60, "p1's result", || {
        let rows = crate::common::try_sql(
            &env.db_path(),
            "SELECT run_id FROM agent_results WHERE workstream_id = 'p1'",
        );
        match rows.and_then(|r| r.first().cloned()) {
            Some(r) => {
                run_id = r[0].clone();
                true
            }
            None => false,
        }
    });
    let run_id = run_id;
    let server = Server::start(&env, &[&run_id]);
    let page = format!("/run/{run_id}/ws/p1");
    let s = Session::open(&server, &page);

    // Live: the running coordinator picks it up while `slow` still runs.
    let sent = s.post(
        &format!("{page}/comments"),
        &[("comments", "agent.txt:1: again")],
    );
    assert!(sent.contains("?queued=p1~review1"), "{sent}");
    let shown = follow(&s, &sent);
    assert!(
        shown.contains(&format!(
            "Follow-up <code>p1~review1</code> queued: it runs now in the live run <code>{run_id}</code>."
        )),
        "{shown}"
    );
    wait_for(60, "the live run to run p1~review1", || {
        try_status(&env, &run_id, "p1~review1").is_some()
    });
    assert_eq!(
        try_status(&env, &run_id, "slow"),
        None,
        "it ran while the run was still going"
    );
    assert_eq!(
        try_status(&env, &run_id, "p1~review1").unwrap(),
        "completed"
    );
    let ran = follow(&s, &sent);
    assert!(
        ran.contains("ran: completed")
            && ran.contains(&format!("href=\"/run/{run_id}/ws/p1~review1\"")),
        "{ran}"
    );

    // Finishing: sent after the run stopped taking follow-ups, left for --resume.
    std::fs::write(env.home.join("go"), "").unwrap();
    wait_for(60, "the notify command", || {
        env.home.join("notifying").exists()
    });
    let late = s.post(
        &format!("{page}/comments"),
        &[("comments", "agent.txt:1: late")],
    );
    let shown = follow(&s, &late);
    assert!(
        shown.contains(&format!(
            "Follow-up <code>p1~review2</code> queued for <code>git ws-run --resume {run_id}</code>."
        )),
        "{shown}"
    );
    std::fs::write(env.home.join("release"), "").unwrap();
    assert!(run.wait().unwrap().success());
    assert_eq!(
        try_status(&env, &run_id, "p1~review2"),
        None,
        "not lost, not run"
    );

    // The live follow-up: on its own branch, from p1's, with p1's agent and the comments.
    let original = format!("ws/{run_id}/p1");
    let branch = format!("ws/{run_id}/p1.review1");
    let is_ancestor = env
        .command("git")
        .args(["merge-base", "--is-ancestor", &original, &branch])
        .status()
        .unwrap();
    assert!(is_ancestor.success(), "it starts from p1's branch");
    assert_eq!(
        env.git(&["show", &format!("{branch}:agent.txt")]),
        "p1\np1~review1\n"
    );
    let prompts = std::fs::read_to_string(&log).unwrap();
    assert!(prompts.contains("agent.txt:1\n\nagain"), "{prompts}");

    // --resume runs the late one, and only it.
    env.ws_run(&["--resume", &run_id, "--agent-cmd", &agent])
        .expect(0);
    assert_eq!(
        crate::common::status(&env, &run_id, "p1~review2"),
        "completed"
    );
    assert_eq!(
        std::fs::read_to_string(&log)
            .unwrap()
            .matches("----")
            .count(),
        4,
        "p1, slow, p1~review1, p1~review2: each once"
    );
}

/// The demo's review step (`fixtures/demo/run-demo.sh`, its last block): a comment posted to
/// `git ws-review` over HTTP as a browser posts it comes back, after `git ws-run --resume`,
/// as a completed follow-up with a commit on its own branch, started from the reviewed one.
#[test]
fn the_demo_sends_a_review_comment_that_comes_back_as_a_completed_follow_up() {
    if std::process::Command::new("curl")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "CI=true and no curl"
        );
        eprintln!("skipping: no curl");
        return;
    }
    let env = Env::new();
    let demo = env.scratch("demo");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo/run-demo.sh");
    let out = env
        .command("sh")
        .arg(&script)
        .arg("--no-install")
        .arg(&demo)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = stdout
        .split("==> git ws-review ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or_else(|| panic!("no review step: {stdout}"))
        .to_string();
    assert!(
        stdout.contains(&format!(
            "Follow-up release-notes~review1 queued for git ws-run --resume {run}."
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("==> follow-up release-notes~review1: completed"),
        "{stdout}"
    );
    let git = |args: &[&str]| {
        let o = env
            .command("git")
            .current_dir(&demo)
            .args(args)
            .output()
            .unwrap();
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).trim().to_string(),
        )
    };
    let db = demo.join(".state/multi_agent_consolidated.db");
    let rows = crate::common::sql(
        &db,
        &format!(
            "SELECT status FROM agent_results WHERE run_id = '{run}' AND workstream_id = 'release-notes~review1'"
        ),
    );
    assert_eq!(rows, vec![vec!["completed".to_string()]]);
    let branch = format!("ws/{run}/release-notes.review1");
    let original = format!("ws/{run}/release-notes");
    assert!(git(&["merge-base", "--is-ancestor", &original, &branch]).0);
    assert_ne!(
        git(&["rev-parse", &original]).1,
        git(&["rev-parse", &branch]).1
    );
    // The scripted agent wrote the review's prompt, with the comment, into NOTES.md.
    let notes = git(&["show", &format!("{branch}:NOTES.md")]).1;
    assert!(
        notes.contains("Add a line saying the notes cover txtkit 0.2.0 only."),
        "{notes}"
    );
    // The comment is stored with its file and line.
    let comments = crate::common::sql(&db, "SELECT path, line FROM ws_review_comments");
    assert_eq!(
        comments,
        vec![vec!["NOTES.md".to_string(), "1".to_string()]]
    );
}

/// The form controls (not hidden inputs) of `html` that no `<label for>` names and that have
/// no `aria-label`: each as its opening tag.
fn unlabelled(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    for tag in ["<input", "<textarea", "<select"] {
        for (i, _) in html.match_indices(tag) {
            let end = html[i..].find('>').map_or(html.len(), |e| i + e + 1);
            let el = &html[i..end];
            if el.contains("type=\"hidden\"") || el.contains("aria-label=\"") {
                continue;
            }
            let labelled = el
                .split("id=\"")
                .nth(1)
                .and_then(|r| r.split('"').next())
                .is_some_and(|id| html.contains(&format!("<label for=\"{id}\">")));
            if !labelled {
                out.push(el.to_string());
            }
        }
    }
    out
}

/// Every page of the review works with the keyboard and a screen reader: each form control
/// has a label, each page a skip link to its main content, each diff table a caption and
/// column headers, and focus is drawn on links, buttons and fields.
#[test]
fn every_control_is_labelled_and_every_page_has_a_skip_link_and_table_headers() {
    assert_eq!(
        unlabelled("<label for=\"a\">A</label><input id=\"a\"><textarea id=\"b\"></textarea><input type=\"hidden\" name=\"c\">"),
        ["<textarea id=\"b\">"],
        "the check finds a control without a label"
    );
    let (env, run) = review_env();
    let server = Server::start(&env, &[&run]);
    let page = format!("/run/{run}/ws/edit-a");
    let s = Session::open(&server, &page);
    let get = |path: &str| {
        let r = raw(s.port, "GET", path, &[("Cookie", &s.cookie)], "");
        assert!(r.starts_with("HTTP/1.1 200"), "{path}: {r}");
        r
    };
    let pages = [
        "/".to_string(),
        format!("/run/{run}"),
        page.clone(),
        format!("{page}?layout=split"),
        format!("/run/{run}/ws/hostile"),
    ];
    let mut controls = 0;
    for path in &pages {
        let html = get(path);
        assert_eq!(unlabelled(&html), Vec::<String>::new(), "{path}");
        controls += html.matches("<textarea").count() + html.matches("<input id=").count();
        assert!(
            html.contains("<a class=\"skip\" href=\"#main\">Skip to the content</a>")
                && html.contains("<main id=\"main\">"),
            "{path}: no skip link to the main content"
        );
        assert!(
            html.contains("button:focus,input:focus,textarea:focus"),
            "{path}: focus is not drawn on controls"
        );
        for (i, _) in html.match_indices("<table") {
            let table = &html[i..i + html[i..].find("</table>").unwrap()];
            assert!(
                table.contains("<caption>"),
                "{path}: a table without caption"
            );
            assert!(
                table.contains("<th scope=\"col\">") || table.contains("class=\"note\""),
                "{path}: a table without column headers: {}",
                &table[..table.len().min(300)]
            );
        }
    }
    assert!(
        controls >= 2,
        "the search field and the comments were checked"
    );
    let ws = get(&page);
    assert!(ws.contains("<thead class=\"sr\"><tr><th scope=\"col\">Old line</th>"));
    assert!(ws.contains("<label for=\"comments\">Review comments</label>"));
}

/// Whether a request line the trap saw is Chromium's own background traffic (its Google
/// services: time, sign-in, autofill, search), not a request from a page.
fn browser_traffic(line: &str) -> bool {
    let target = line.split_whitespace().nth(1).unwrap_or("");
    let host = target
        .trim_start_matches("http://")
        .split(['/', ':'])
        .next()
        .unwrap_or("");
    ["google.com", "googleapis.com", "gstatic.com", "gvt1.com"]
        .iter()
        .any(|d| host == *d || host.ends_with(&format!(".{d}")))
}

/// No page makes a request that leaves the machine: every page names nothing elsewhere,
/// and Chromium, with every request not to loopback sent to a trap proxy, loads every page
/// while the trap sees no request but the browser's own to its Google services (and it
/// sees a page's request to elsewhere, so it would).
#[test]
fn no_request_leaves_the_machine() {
    let Some(chrome) = chromium() else { return };
    let (env, run) = review_env();
    let server = Server::start(&env, &[]);
    let trap = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let trap_port = trap.local_addr().unwrap().port();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    {
        let seen = seen.clone();
        std::thread::spawn(move || {
            for conn in trap.incoming() {
                let Ok(mut c) = conn else { continue };
                let _ = c.set_read_timeout(Some(Duration::from_secs(2)));
                let mut buf = [0u8; 512];
                let n = c.read(&mut buf).unwrap_or(0);
                let line = String::from_utf8_lossy(&buf[..n])
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_string();
                seen.lock().unwrap().push(line);
            }
        });
    }
    let profile = tempfile::tempdir().unwrap();
    let load = |url: &str| {
        browser(&chrome, profile.path())
            .arg(format!("--proxy-server=http://127.0.0.1:{trap_port}"))
            .args(["--dump-dom", url])
            .output()
            .unwrap()
    };
    for path in [
        "/".to_string(),
        format!("/run/{run}"),
        format!("/run/{run}/ws/edit-a"),
        format!("/run/{run}/ws/edit-a?layout=split"),
        format!("/run/{run}/ws/hostile"),
    ] {
        let out = load(&server.at(&path));
        let dom = String::from_utf8_lossy(&out.stdout);
        assert!(dom.contains("<main id=\"main\">"), "{path} did not load");
        for attr in [
            "src=\"http",
            "src=\"//",
            "href=\"http",
            "href=\"//",
            "url(",
            "@import",
        ] {
            assert!(
                !dom.contains(attr),
                "{path} names something elsewhere: {attr}"
            );
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    let from_pages: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|l| !browser_traffic(l))
        .cloned()
        .collect();
    assert_eq!(
        from_pages,
        Vec::<String>::new(),
        "requests left the machine"
    );
    assert!(browser_traffic("CONNECT accounts.google.com:443 HTTP/1.1"));
    assert!(!browser_traffic("GET http://example.invalid/ HTTP/1.1"));
    // The trap works: a page elsewhere goes through it.
    load("http://example.invalid/");
    wait_for(10, "the trap to see a request elsewhere", || {
        seen.lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("example.invalid"))
    });
}
