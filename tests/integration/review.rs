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

#[test]
fn the_page_of_a_live_run_reloads_until_the_run_ends() {
    let Some(chrome) = chromium() else { return };
    let env = Env::new();
    env.ws_cmd("quick", "echo quick > quick.txt");
    env.ws_cmd(
        "slow",
        "while [ ! -e \"$HOME/go\" ]; do sleep 0.05; done; echo slow > slow.txt",
    );
    let mut run = env
        .command("git")
        .args(["ws-run", "--agents", "2", "-q"])
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
