//! Whole-output snapshots of the three commands, the way jj's CLI tests read: each command
//! runs through git's own dispatch (`git ws-run …`) in a real temporary repository with
//! scripted `command` workstreams, and its command line, exit code, stdout and stderr are
//! rendered into one string and compared with `insta::assert_snapshot!`. A changed output
//! shows up as a reviewable diff of the whole thing (`cargo insta review`, or run with
//! `INSTA_UPDATE=always` and read the `.snap` files in `snapshots/`).
//!
//! What varies from one run to the next is redacted, and nothing else:
//! - paths: the repository → `[REPO]`, `$HOME` → `[HOME]`, the temporary directory → `[TMP]`;
//! - run ids → `[RUN1]`, `[RUN2]`… in order of first appearance;
//! - commit ids, full or abbreviated → `[C1]`, `[C2]`… per commit (so the same commit reads
//!   the same everywhere), `[SHA?]` for any other word of 7 to 40 hex digits (a commit id a
//!   dry run computes but never writes);
//! - dates → `[DATE]`, compact stamps (`20261207-071756.954`) → `[STAMP]`, epoch
//!   milliseconds → `[EPOCH]`;
//! - durations (`37ms`, `1.2s`, `1m5s`) → `[DUR]`, speed-ups (`0.85x`) → `[X]`, the
//!   utilisation column of a table → `[PCT]`, the JSON keys that hold measured times (`…seconds`,
//!   `speedup`, `utilisation`, `avg_duration`) → `[NUM]`, the timeline's axis format and tick
//!   interval (chosen from the run's length) → `[AXIS]`.
//!
//! Plain-text tables (a header, a dashed rule, rows) are cut into cells at the rule's columns,
//! each cell is redacted, and the table is re-aligned, so a duration that took one more digit
//! this time does not move every column after it.
//!
//! Order is made deterministic by one agent (`--agents 1`) and a fresh repository per test
//! (no duration history, so workstreams go in file order); colour is off (`NO_COLOR`, no tty).

use crate::common::Env;
use regex_automata::meta::Regex;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A repository and what has been seen in it: run ids and commits get stable labels in order of
/// first appearance.
struct Snap {
    env: Env,
    runs: Vec<String>,
    /// Full ids of the commits labelled so far; `[C1]` is `commits[0]`.
    commits: Vec<String>,
    /// Every commit object in the repository, refreshed after each command.
    known: Vec<String>,
}

/// Redaction patterns, compiled once.
struct Patterns {
    run_id: Regex,
    stamp: Regex,
    date: Regex,
    epoch: Regex,
    hex: Regex,
    json_time: Regex,
    json_axis: Regex,
    md_axis: Regex,
    duration: Regex,
    speedup: Regex,
    rule: Regex,
    md_rule: Regex,
}

fn patterns() -> &'static Patterns {
    static P: OnceLock<Patterns> = OnceLock::new();
    P.get_or_init(|| {
        let re = |p: &str| Regex::new(p).unwrap_or_else(|e| panic!("{p}: {e}"));
        Patterns {
            run_id: re(r"ma-run-[0-9]{8}-[0-9]{6}(?:-[0-9]+)?"),
            stamp: re(r"[0-9]{8}-[0-9]{6}(?:\.[0-9]+)?"),
            date: re(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?Z?(?: UTC)?"),
            epoch: re(r"(?-u:\b)1[0-9]{12}(?-u:\b)"),
            hex: re(r"(?-u:\b)[0-9a-f]{7,40}(?-u:\b)"),
            json_time: re(
                r#""[a-z_]*(?:seconds|speedup|utilisation|avg_duration)[a-z_]*": -?[0-9][0-9.eE+-]*"#,
            ),
            json_axis: re(r#""(?:tick_interval|axis_format)": "[^"]*""#),
            md_axis: re(r"(?:tickInterval|axisFormat) [^ ]+"),
            duration: re(
                r"(?-u:\b)(?:[0-9]+h)?(?:[0-9]+m)?[0-9]+(?:\.[0-9]+)?(?:ms|s)(?-u:\b)",
            ),
            speedup: re(r"(?-u:\b)[0-9]+\.[0-9]+x(?-u:\b)"),
            rule: re(r"^-+(?:  -+)+$"),
            md_rule: re(r"^\|(?: --- \|)+$"),
        }
    })
}

/// `text` with every match of `re` replaced by `f(match)`.
fn replace(re: &Regex, text: &str, mut f: impl FnMut(&str) -> String) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for m in re.find_iter(text) {
        out.push_str(&text[last..m.start()]);
        out.push_str(&f(&text[m.range()]));
        last = m.end();
    }
    out.push_str(&text[last..]);
    out
}

/// An argument as a shell would need it written.
fn quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@+%".contains(c));
    if plain {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// The 1-based index of the first of `items` that `pred` holds for, pushing `new` when none
/// does.
fn label_of(items: &mut Vec<String>, pred: impl Fn(&str) -> bool, new: &str) -> usize {
    match items.iter().position(|x| pred(x)) {
        Some(i) => i + 1,
        None => {
            items.push(new.to_string());
            items.len()
        }
    }
}

impl Snap {
    fn new(env: Env) -> Snap {
        Snap {
            env,
            runs: Vec::new(),
            commits: Vec::new(),
            known: Vec::new(),
        }
    }

    /// `git ARGS` in the repository (`ARGS[0]` is `ws-run`, `ws-report` or `ws-merge`),
    /// rendered and redacted.
    fn git(&mut self, args: &[&str]) -> String {
        let dir = self.env.repo.clone();
        self.git_in(&dir, args)
    }

    /// [`Snap::git`] in another directory.
    fn git_in(&mut self, dir: &Path, args: &[&str]) -> String {
        let out = self
            .env
            .command("git")
            .args(args)
            .current_dir(dir)
            .env("NO_COLOR", "1")
            .env("TERM", "dumb")
            .env("GIT_CEILING_DIRECTORIES", self.env.tmp.path())
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let code = out
            .status
            .code()
            .map_or_else(|| format!("signal {:?}", out.status), |c| c.to_string());
        self.refresh_commits();
        let line: Vec<String> = args.iter().map(|a| quote(a)).collect();
        let line = self.normalise(&line.join(" "));
        // Each stream on its own, so a table ending a stream ends there.
        let stdout = self.normalise(&newline_ended(&String::from_utf8_lossy(&out.stdout)));
        let stderr = self.normalise(&newline_ended(&String::from_utf8_lossy(&out.stderr)));
        format!("$ git {line}\nexit: {code}\n--- stdout\n{stdout}--- stderr\n{stderr}")
    }

    /// `git ARGS` in the repository as a setup step, not a snapshot: panics unless it exits
    /// with `code`.
    fn setup(&self, args: &[&str], code: i32) {
        let out = self.env.command("git").args(args).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(code),
            "git {args:?}\nstdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A file of the repository, redacted.
    fn file(&mut self, rel: &str) -> String {
        let text = std::fs::read_to_string(self.env.repo.join(rel))
            .unwrap_or_else(|e| panic!("{rel}: {e}"));
        self.refresh_commits();
        self.normalise(&text)
    }

    /// The run id labelled `[RUN<n>]`.
    fn run_id(&self, n: usize) -> &str {
        &self.runs[n - 1]
    }

    /// Refresh the list of every commit object in the repository (reachable or not: a merge
    /// tested and left out is still printed). Called after each command, before redacting.
    fn refresh_commits(&mut self) {
        let out = self
            .env
            .command("git")
            .args([
                "cat-file",
                "--batch-all-objects",
                "--batch-check=%(objectname) %(objecttype)",
            ])
            .output()
            .unwrap();
        self.known = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.strip_suffix(" commit"))
            .map(str::to_string)
            .collect();
    }

    /// Redact `text` (see the module documentation), re-aligning plain-text tables.
    fn normalise(&mut self, text: &str) -> String {
        let p = patterns();
        let lines: Vec<&str> = text.split('\n').collect();
        let mut out: Vec<String> = Vec::with_capacity(lines.len());
        let mut i = 0;
        while i < lines.len() {
            let next = lines.get(i + 1).copied().unwrap_or("");
            if !lines[i].trim().is_empty() && p.rule.is_match(next) {
                let end = (i + 2..lines.len())
                    .find(|&j| lines[j].is_empty())
                    .unwrap_or(lines.len());
                out.extend(self.table(&lines[i..end]));
                i = end;
            } else if lines[i].starts_with('|') && p.md_rule.is_match(next) {
                let end = (i + 2..lines.len())
                    .find(|&j| !lines[j].starts_with('|'))
                    .unwrap_or(lines.len());
                out.extend(self.markdown_table(&lines[i..end]));
                i = end;
            } else {
                out.push(self.redact(lines[i]));
                i += 1;
            }
        }
        out.join("\n")
    }

    /// A plain-text table (header, rule, rows) cut at the rule's columns, redacted cell by
    /// cell and re-aligned the way `render_table` aligns: two spaces between columns, no
    /// trailing spaces.
    fn table(&mut self, lines: &[&str]) -> Vec<String> {
        let rule: Vec<char> = lines[1].chars().collect();
        let starts: Vec<usize> = (0..rule.len())
            .filter(|&k| rule[k] == '-' && (k == 0 || rule[k - 1] == ' '))
            .collect();
        let cut = |line: &str| -> Vec<String> {
            let chars: Vec<char> = line.chars().collect();
            (0..starts.len())
                .map(|c| {
                    let from = starts[c].min(chars.len());
                    let to = starts
                        .get(c + 1)
                        .map_or(chars.len(), |&s| s.min(chars.len()));
                    chars[from..to]
                        .iter()
                        .collect::<String>()
                        .trim()
                        .to_string()
                })
                .collect()
        };
        let header = cut(lines[0]);
        let timed: Vec<bool> = header
            .iter()
            .map(|h| h.eq_ignore_ascii_case("utilisation"))
            .collect();
        let mut rows = vec![header.clone()];
        for line in &lines[2..] {
            let cells = cut(line)
                .iter()
                .zip(&timed)
                .map(|(cell, &timed)| {
                    if timed && !cell.is_empty() {
                        "[PCT]".to_string()
                    } else {
                        self.redact(cell)
                    }
                })
                .collect();
            rows.push(cells);
        }
        let mut widths = vec![0; starts.len()];
        for r in &rows {
            for (w, c) in widths.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        let render = |cells: &[String]| -> String {
            let mut l = String::new();
            for (k, c) in cells.iter().enumerate() {
                if k > 0 {
                    l.push_str("  ");
                }
                l.push_str(c);
                l.extend(std::iter::repeat_n(' ', widths[k] - c.chars().count()));
            }
            l.trim_end().to_string()
        };
        let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        let mut out = vec![render(&rows[0]), render(&rule)];
        out.extend(rows[1..].iter().map(|r| render(r)));
        out
    }

    /// A Markdown table: each row redacted, the utilisation column's cells → `[PCT]`.
    fn markdown_table(&mut self, lines: &[&str]) -> Vec<String> {
        let cells = |line: &str| -> Vec<String> {
            line.trim_start_matches("| ")
                .trim_end_matches(" |")
                .split(" | ")
                .map(str::to_string)
                .collect()
        };
        let timed: Vec<bool> = cells(lines[0])
            .iter()
            .map(|h| h.eq_ignore_ascii_case("utilisation"))
            .collect();
        let mut out = vec![self.redact(lines[0]), lines[1].to_string()];
        for line in &lines[2..] {
            if !timed.contains(&true) {
                out.push(self.redact(line));
                continue;
            }
            let row: Vec<String> = cells(line)
                .iter()
                .enumerate()
                .map(|(k, c)| {
                    if timed.get(k) == Some(&true) {
                        "[PCT]".to_string()
                    } else {
                        c.clone()
                    }
                })
                .collect();
            out.push(self.redact(&format!("| {} |", row.join(" | "))));
        }
        out
    }

    /// Redact one piece of text (no table handling).
    fn redact(&mut self, text: &str) -> String {
        let p = patterns();
        let mut s = text.to_string();
        let repo = self.env.repo.clone();
        let home = self.env.home.clone();
        let tmp = self.env.tmp.path().to_path_buf();
        for (path, label) in [(repo, "[REPO]"), (home, "[HOME]"), (tmp, "[TMP]")] {
            for form in path_forms(&path) {
                s = s.replace(&form, label);
            }
        }
        let runs = &mut self.runs;
        s = replace(&p.run_id, &s, |id| {
            format!("[RUN{}]", label_of(runs, |r| r == id, id))
        });
        s = replace(&p.date, &s, |_| "[DATE]".into());
        s = replace(&p.stamp, &s, |_| "[STAMP]".into());
        s = replace(&p.epoch, &s, |_| "[EPOCH]".into());
        // Measured times first: their digits after the point would read as an abbreviated id.
        s = replace(&p.json_time, &s, |m| {
            let key = m.split_once(": ").map_or(m, |(k, _)| k);
            format!("{key}: [NUM]")
        });
        let (known, commits) = (&self.known, &mut self.commits);
        let mut ids = String::with_capacity(s.len());
        let mut last = 0;
        for m in p.hex.find_iter(&s) {
            let hex = &s[m.range()];
            ids.push_str(&s[last..m.start()]);
            last = m.end();
            let decimal = s[..m.start()].ends_with('.') || s[m.end()..].starts_with('.');
            ids.push_str(&match known.iter().find(|c| c.starts_with(hex)) {
                Some(full) => format!("[C{}]", label_of(commits, |c| c == full, full)),
                // Part of a decimal number, not an id.
                None if decimal && hex.bytes().all(|b| b.is_ascii_digit()) => hex.to_string(),
                // An id of a commit never written (a dry run's); all-digit ones too, or one run
                // in a hundred would print a number here.
                None => "[SHA?]".into(),
            });
        }
        ids.push_str(&s[last..]);
        s = ids;
        s = replace(&p.json_axis, &s, |m| {
            let key = m.split_once(": ").map_or(m, |(k, _)| k);
            format!(r#"{key}: "[AXIS]""#)
        });
        s = replace(&p.md_axis, &s, |m| {
            let key = m.split_once(' ').map_or(m, |(k, _)| k);
            format!("{key} [AXIS]")
        });
        s = replace(&p.duration, &s, |_| "[DUR]".into());
        s = replace(&p.speedup, &s, |_| "[X]".into());
        s
    }
}

/// `path` as written, and canonicalised when that differs (a symlinked temporary directory).
fn path_forms(path: &Path) -> Vec<String> {
    let mut forms = vec![path.display().to_string()];
    if let Ok(canonical) = std::fs::canonicalize(path) {
        let c = canonical.display().to_string();
        if c != forms[0] {
            forms.insert(0, c);
        }
    }
    forms
}

fn newline_ended(s: &str) -> String {
    if s.is_empty() || s.ends_with('\n') {
        s.to_string()
    } else {
        format!("{s}\n[no newline at end]\n")
    }
}

/// The exit code line of a rendered command, for a test to check the setup went as meant.
fn exit_of(snapshot: &str) -> &str {
    snapshot
        .lines()
        .nth(1)
        .and_then(|l| l.strip_prefix("exit: "))
        .unwrap_or_default()
}

/// A repository whose two workstreams both complete: `lib` commits its own change, `docs`
/// leaves its change uncommitted (git-ws commits it, with a warning).
fn two_that_complete() -> Snap {
    let env = Env::new();
    env.ws_cmd(
        "docs",
        "mkdir -p docs && echo 'how to use it' > docs/usage.md",
    );
    env.ws_cmd(
        "lib",
        "echo 'nine' >> src/lib.txt && git add -A && git commit -qm 'lib: nine'",
    );
    Snap::new(env)
}

/// A repository where `bad` fails (exit 3, with output on both streams) and `good` completes.
fn one_that_fails() -> Snap {
    let env = Env::new();
    env.ws_cmd(
        "bad",
        "echo 'compiling widget'; echo 'error: widget.rs:3 expected ;' >&2; exit 3",
    );
    env.ws_cmd("good", "echo ok > good.txt");
    Snap::new(env)
}

#[test]
fn ws_run_all_complete_then_report_and_merge() {
    let mut s = two_that_complete();
    let run = s.git(&["ws-run", "--agents", "1"]);
    assert_eq!(exit_of(&run), "0", "{run}");
    insta::assert_snapshot!("ws_run_all_complete", run);
    insta::assert_snapshot!("ws_report_run", s.git(&["ws-report", "latest"]));
    insta::assert_snapshot!(
        "ws_report_tables",
        s.git(&["ws-report", "latest", "--agents", "--files", "--timeline"])
    );
    let id = s.run_id(1).to_string();
    insta::assert_snapshot!(
        "ws_report_json",
        s.git(&["ws-report", &id, "--format", "json"])
    );
    insta::assert_snapshot!(
        "ws_report_unknown_run",
        s.git(&["ws-report", "ma-run-typo"])
    );
    insta::assert_snapshot!("ws_report_bad_flag", s.git(&["ws-report", "--tabel"]));
    let merge = s.git(&["ws-merge"]);
    assert_eq!(exit_of(&merge), "0", "{merge}");
    insta::assert_snapshot!("ws_merge_clean", merge);
    insta::assert_snapshot!(
        "ws_report_integration",
        s.git(&["ws-report", "latest", "--integration"])
    );
    insta::assert_snapshot!(
        "ws_merge_bad_onto",
        s.git(&["ws-merge", "--onto", "no-such-rev"])
    );
    insta::assert_snapshot!("ws_merge_unknown_run", s.git(&["ws-merge", "no-such-run"]));
}

#[test]
fn ws_run_failure_then_report_and_rerun() {
    let mut s = one_that_fails();
    let run = s.git(&["ws-run", "--agents", "1"]);
    assert_eq!(exit_of(&run), "1", "{run}");
    insta::assert_snapshot!("ws_run_one_fails", run);
    let report = format!("reports/multi_agent_consolidated_{}.md", s.run_id(1));
    insta::assert_snapshot!("report_file_markdown", s.file(&report));
    insta::assert_snapshot!(
        "ws_report_errors",
        s.git(&["ws-report", "latest", "--errors"])
    );
    insta::assert_snapshot!(
        "ws_run_quiet_rerun_failed",
        s.git(&["ws-run", "--agents", "1", "-q", "--rerun-failed"])
    );
    insta::assert_snapshot!("ws_report_list", s.git(&["ws-report"]));
}

#[test]
fn ws_run_json() {
    let env = Env::new();
    env.ws_cmd(
        "only",
        "echo one > one.txt && git add one.txt && git commit -qm one",
    );
    let mut s = Snap::new(env);
    insta::assert_snapshot!(
        "ws_run_format_json",
        s.git(&["ws-run", "--agents", "1", "--format", "json"])
    );
}

#[test]
fn ws_run_bad_input() {
    let env = Env::new();
    env.ws_cmd("fine", "true");
    env.ws(
        "extra",
        serde_json::json!({"id": "extra", "command": "true", "bogus": 1}),
    );
    env.write("workstreams/broken.json", "{\"id\": \"broken\",\n");
    let mut s = Snap::new(env);
    insta::assert_snapshot!(
        "ws_run_invalid_workstream_file",
        s.git(&["ws-run", "--agents", "1"])
    );
    insta::assert_snapshot!("ws_run_unknown_flag", s.git(&["ws-run", "--agnets", "1"]));
    insta::assert_snapshot!("ws_run_zero_agents", s.git(&["ws-run", "--agents", "0"]));
}

#[test]
fn ws_run_dry_run_prints_the_plan() {
    let env = Env::new();
    env.ws_cmd("first", "echo 1 > first.txt");
    env.ws(
        "second",
        serde_json::json!({"id": "second", "command": "true", "depends_on": ["first"]}),
    );
    let mut s = Snap::new(env);
    insta::assert_snapshot!(
        "ws_run_dry_run",
        s.git(&["ws-run", "--agents", "1", "--dry-run"])
    );
}

#[test]
fn outside_a_repository() {
    let mut s = Snap::new(Env::new());
    let dir: PathBuf = s.env.scratch("not-a-repo");
    std::fs::create_dir_all(&dir).unwrap();
    let all = [
        s.git_in(&dir, &["ws-run", "--agents", "1"]),
        s.git_in(&dir, &["ws-report"]),
        s.git_in(&dir, &["ws-merge"]),
    ];
    insta::assert_snapshot!("not_a_repository", all.join("\n"));
}

/// `docs` merges cleanly; `readme-a` and `readme-b` change the same line of README.md.
fn with_a_conflict() -> Snap {
    let env = Env::new();
    env.write("README.md", "# Project\n\nA line everyone edits.\n");
    env.git(&["commit", "-qam", "readme"]);
    env.ws_cmd("docs", "mkdir -p docs && echo usage > docs/usage.md");
    env.ws_cmd(
        "readme-a",
        "printf '# Project\\n\\nA says so.\\n' > README.md",
    );
    env.ws_cmd(
        "readme-b",
        "printf '# Project\\n\\nB says otherwise.\\n' > README.md",
    );
    let s = Snap::new(env);
    s.setup(&["ws-run", "--agents", "1", "-q"], 0);
    s
}

#[test]
fn ws_merge_leaves_out_the_conflict_and_what_breaks_the_tests() {
    let mut s = with_a_conflict();
    insta::assert_snapshot!("ws_merge_dry_run", s.git(&["ws-merge", "--dry-run"]));
    let merge = s.git(&["ws-merge"]);
    assert_eq!(exit_of(&merge), "1", "{merge}");
    insta::assert_snapshot!("ws_merge_conflict_left_out", merge);
    insta::assert_snapshot!(
        "ws_merge_test_breaks",
        s.git(&["ws-merge", "--test", "test ! -e docs/usage.md"])
    );
    insta::assert_snapshot!(
        "ws_merge_test_fails_on_onto",
        s.git(&["ws-merge", "--test", "exit 1"])
    );
}

#[test]
fn redaction_is_stable_for_what_varies_and_keeps_the_rest() {
    let mut s = Snap::new(Env::new());
    s.refresh_commits();
    let head = s.env.git(&["rev-parse", "HEAD"]).trim().to_string();
    // Two runs of one table: the durations differ in width, the redacted tables do not.
    let table = |busy: &str, id: &str| {
        let w = busy.len().max(4);
        format!(
            "agent    busy{}  utilisation  run\n-------  {}  -----------  {}\nagent-1  {busy}  85.0%        {id}\n",
            " ".repeat(w - 4),
            "-".repeat(w),
            "-".repeat(id.len()),
        )
    };
    let a = s.normalise(&table("52ms", "ma-run-20261207-071658"));
    let b = s.normalise(&table("1.05s", "ma-run-20261207-071658"));
    assert_eq!(a, b);
    assert_eq!(
        a,
        "agent    busy   utilisation  run\n-------  -----  -----------  ------\nagent-1  [DUR]  [PCT]        [RUN1]\n"
    );
    let text = format!(
        "{head} {} ma-run-20261207-071658-2 abcdef1234 1234567890 \"wall_seconds\": 0.0153970629, 3.14159265 (50.0%) in 1m5s",
        &head[..10]
    );
    assert_eq!(
        s.normalise(&text),
        "[C1] [C1] [RUN2] [SHA?] [SHA?] \"wall_seconds\": [NUM], 3.14159265 (50.0%) in [DUR]"
    );
}
