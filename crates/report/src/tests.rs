//! Every renderer on the fixture run (`ws_core::view::fixture`): whole outputs as insta
//! snapshots (`cargo insta review` shows a changed rendering as a diff), plus the structural
//! properties hostile input must never break.

use super::*;
use ws_core::text::width;
use ws_core::view::fixture;

/// Unescaped `|` in a Markdown line.
fn unescaped_pipes(line: &str) -> usize {
    let b = line.as_bytes();
    (0..b.len())
        .filter(|&i| {
            b[i] == b'|' && b[..i].iter().rev().take_while(|&&c| c == b'\\').count() % 2 == 0
        })
        .count()
}

/// Lines outside fenced blocks, asserting every fence closes; and the fences' info strings.
fn outside_fences(md: &str) -> (Vec<&str>, Vec<String>) {
    let mut outside = Vec::new();
    let mut infos = Vec::new();
    let mut open: Option<usize> = None;
    for line in md.lines() {
        let ticks = line.bytes().take_while(|&c| c == b'`').count();
        match open {
            None if ticks >= 3 => {
                open = Some(ticks);
                infos.push(line[ticks..].to_string());
            }
            None => outside.push(line),
            Some(n) if ticks >= n && line[ticks..].trim().is_empty() => open = None,
            Some(_) => {}
        }
    }
    assert!(open.is_none(), "unclosed fence");
    (outside, infos)
}

/// Every table keeps one column count on every row.
fn assert_tables_intact(md: &str) {
    let (outside, _) = outside_fences(md);
    let mut expected: Option<usize> = None;
    for line in outside {
        if line.starts_with('|') {
            let n = unescaped_pipes(line);
            match expected {
                None => expected = Some(n),
                Some(e) => assert_eq!(n, e, "row breaks its table: {line}"),
            }
        } else {
            expected = None;
        }
    }
}

#[test]
fn markdown_report_snapshot() {
    let md = markdown(&fixture::view());
    insta::assert_snapshot!("report", md);
}

#[test]
fn markdown_is_hostile_proof() {
    let md = markdown(&fixture::view());
    assert_tables_intact(&md);
    let (outside, infos) = outside_fences(&md);
    let h2: Vec<&str> = outside
        .iter()
        .filter(|l| l.starts_with("## "))
        .copied()
        .collect();
    let want: Vec<String> = Section::ALL
        .iter()
        .map(|s| format!("## {}", s.title()))
        .collect();
    assert_eq!(h2, want);
    for l in &outside {
        if l.starts_with('#') {
            assert!(l.starts_with("# Multi-agent") || l.starts_with("##"), "{l}");
        }
        assert!(!l.contains("</details>") && !l.contains("<script>"), "{l}");
        assert!(!l.contains("[x](javascript"), "{l}");
    }
    assert_eq!(
        infos,
        ["text", "text", "text", "text", "diff", "text", "mermaid"]
    );
    // Nothing from a terminal survives anywhere, fenced or not.
    assert!(
        !md.contains('\u{1b}') && !md.contains('\r'),
        "escape or CR left"
    );
    // No line is longer than a capped tail line (plus its marker): the 3,000-character title
    // is capped in the table and in the list of full titles, which says how long it is.
    let longest = md.lines().map(|l| l.chars().count()).max().unwrap();
    assert!(longest < 500, "{longest}");
    let title_row = md.lines().find(|l| l.starts_with("| ws-05 |")).unwrap();
    assert!(width(title_row) < 200, "{title_row}");
    let full = md.lines().find(|l| l.starts_with("- **ws-05**: ")).unwrap();
    assert!(width(full) < MAX_FULL_TITLE_COLUMNS + 80, "{full}");
    assert!(
        full.ends_with("_(3000 characters; the full title is in the JSON)_"),
        "{full}"
    );
    // The real error before the huge last line is shown, and the cut is said.
    assert!(md.contains("error: the real reason\nzzzz"));
    assert!(md.contains("(1 long line cut); the whole log: /repo/.state/logs/"));
}

#[test]
fn sections_are_the_reports_own() {
    let v = fixture::view();
    let md = markdown(&v);
    for s in Section::ALL {
        let sec = markdown_section(&v, s);
        assert!(sec.starts_with(&format!("## {}\n\n", s.title())));
        assert!(md.contains(sec.trim_end()), "{s:?}");
    }
    // Deterministic whatever the order of the results.
    let mut rs = fixture::results();
    rs.reverse();
    let c = fixture::consolidated();
    let mut again = RunView::build(ws_core::view::Input {
        consolidated: &c,
        results: &rs,
        merges: Some(&fixture::merges()),
        state: "finished",
    });
    again.set_integration(Some(fixture::integration()));
    assert_eq!(markdown(&again), md);
}

#[test]
fn json_snapshot() {
    insta::assert_snapshot!("json", json(&fixture::view()));
}

#[test]
fn json_sections_select_the_same_sections() {
    let v = fixture::view();
    let errors: serde_json::Value =
        serde_json::from_str(&json_sections(&v, &[Section::Errors])).unwrap();
    let all: serde_json::Value = serde_json::from_str(&json(&v)).unwrap();
    assert_eq!(errors, all["errors"]);
    assert!(errors.as_array().unwrap().len() >= 7);
    let two: serde_json::Value =
        serde_json::from_str(&json_sections(&v, &[Section::Agents, Section::Timeline])).unwrap();
    let keys: Vec<&String> = two.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["agents", "schema", "timeline"]);
    assert_eq!(two["timeline"], all["timeline"]);
    assert_eq!(all["schema"], 2);
    assert_eq!(two["schema"], 2);
}

#[test]
fn the_errors_section_prints_whole_messages() {
    let mut v = fixture::view();
    let long = format!(
        "{}fix: pass --agent NAME (the hint at the end)",
        "a long explanation ".repeat(10)
    );
    assert!(long.chars().count() > 200);
    v.errors[0].message = format!("{long}\nsecond line");
    let out = tables(&v, &[Section::Errors]);
    assert!(
        out.contains(&format!("{long} second line")),
        "the whole message, on one line:\n{out}"
    );
    // The overview's one-line error column stays cut.
    let overview = tables(&v, &[]);
    assert!(!overview.contains("(the hint at the end)"), "{overview}");
}

#[test]
fn terminal_tables_snapshots() {
    let v = fixture::view();
    insta::assert_snapshot!("table_overview", tables(&v, &[]));
    insta::assert_snapshot!("table_agents", tables(&v, &[Section::Agents]));
    insta::assert_snapshot!("table_errors", tables(&v, &[Section::Errors]));
    insta::assert_snapshot!("table_files", tables(&v, &[Section::Files]));
    insta::assert_snapshot!("table_timeline", tables(&v, &[Section::Timeline]));
    let integration = tables(&v, &[Section::Integration]);
    // Tables, not Markdown: no headings, no pipes, no emphasis.
    assert!(
        integration
            .lines()
            .all(|l| !l.starts_with("##") && !l.starts_with('|') && !l.contains("**")),
        "{integration}"
    );
    insta::assert_snapshot!("table_integration", integration);
}

#[test]
fn terminal_tables_stay_printable_and_aligned() {
    let v = fixture::view();
    let all = tables(
        &v,
        &[
            Section::Agents,
            Section::Errors,
            Section::Files,
            Section::Timeline,
        ],
    ) + &tables(&v, &[]);
    assert!(
        all.chars().all(|c| c == '\n' || !c.is_control()),
        "control character in a table"
    );
    // The files table: every row starts its columns where the header does (CJK included).
    let files = tables(&v, &[Section::Files]);
    let mut lines = files.lines();
    let header = lines.next().unwrap();
    let col = width(&header[..header.find("change").unwrap()]);
    for l in lines.skip(1) {
        let cut: String = l
            .chars()
            .scan(0, |w, c| {
                *w += unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
                Some((*w, c))
            })
            .take_while(|(w, _)| *w <= col)
            .map(|(_, c)| c)
            .collect();
        assert_eq!(width(&cut), col, "misaligned: {l}");
    }
}

#[test]
fn empty_run() {
    let mut info = fixture::run_info();
    info.finished_at = None;
    let c = ws_core::consolidate::consolidate(&info, &[], ws_core::model::MergeForecast::default());
    let md = render_markdown(&ReportModel {
        consolidated: &c,
        results: &[],
    });
    assert_tables_intact(&md);
    insta::assert_snapshot!("empty_report", md);
}

#[test]
fn ten_thousand_workstreams_are_capped() {
    use ws_core::model::{ChangeKind, ErrorType, FileChange, Status, WorkstreamResult, WsError};
    let t0 = fixture::t0();
    let n = 10_000usize;
    let rs: Vec<WorkstreamResult> = (0..n)
        .map(|i| {
            let st = if i % 10 == 0 {
                Status::Failed
            } else {
                Status::Completed
            };
            let mut r = WorkstreamResult::new(
                fixture::RUN,
                &ws_core::model::agent_name(i % 4 + 1),
                &format!("ws-{i}"),
                st,
            );
            r.start_time = Some(t0 + chrono::Duration::seconds((i / 4) as i64));
            r.end_time = Some(t0 + chrono::Duration::seconds((i / 4) as i64 + 1));
            r.duration_seconds = 1.0;
            r.title = Some(format!("task | {i}"));
            r.files = vec![FileChange {
                path: format!("f/{}", i / 2),
                old_path: None,
                kind: ChangeKind::Modified,
                additions: 1,
                deletions: 0,
            }];
            r.commits = vec![format!("{i:040x}")];
            if st == Status::Failed {
                r.errors
                    .push(WsError::new(ErrorType::CommandFailed, "boom").with_trace("tail"));
            }
            r
        })
        .collect();
    let c = ws_core::consolidate::consolidate(
        &fixture::run_info(),
        &rs,
        ws_core::model::MergeForecast::default(),
    );
    let md = render_markdown(&ReportModel {
        consolidated: &c,
        results: &rs,
    });
    assert_tables_intact(&md);
    let ws_rows = md
        .lines()
        .filter(|l| l.starts_with("| ws-") && l.contains("| task &#124;"))
        .count();
    assert_eq!(ws_rows, n);
    for note in [
        "_Showing 500 of 5000 files, overlapping files first; the database has them all._",
        "_Showing 500 of 10000 commits; the database has them all._",
        "_Showing 200 of 1000 errors; the database has them all._",
        "_Showing 500 of 10000 started workstreams; the database has them all._",
    ] {
        assert!(md.contains(note), "{note}");
    }
    let tasks = md
        .lines()
        .filter(|l| l.contains(" :done, t") || l.contains(" :crit, t"))
        .count();
    assert_eq!(tasks, 500);
}

/// The report as GitHub renders it: cmark-gfm, when installed, must see every table row
/// with its header's column count, and no raw HTML from agents.
#[test]
fn a_real_gfm_renderer_keeps_the_tables() {
    let Ok(out) = std::process::Command::new("cmark-gfm")
        .args(["--extension", "table", "--to", "html"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .expect("piped")
                .write_all(markdown(&fixture::view()).as_bytes())?;
            child.wait_with_output()
        })
    else {
        eprintln!("cmark-gfm is not installed (apt-get install cmark-gfm): checked by the pure table checks only");
        return;
    };
    assert!(out.status.success());
    let html = String::from_utf8(out.stdout).unwrap();
    for table in html.split("<table>").skip(1) {
        let table = &table[..table.find("</table>").unwrap()];
        let cols = table[..table.find("</tr>").unwrap()]
            .matches("</th>")
            .count();
        for row in table.split("<tr>").skip(2) {
            assert_eq!(row.matches("</td>").count(), cols, "{row}");
        }
    }
    assert!(!html.contains("<script>") && !html.contains("</details>"));
    let headings = html.matches("<h2>").count();
    assert_eq!(headings, Section::ALL.len());
    assert_eq!(html.matches("<h1>").count(), 1);
}

/// The fixture run with usage on three workstreams (one with a hostile model name) and a
/// retried, flaky one.
fn view_with_usage() -> RunView {
    use ws_core::model::{Attempt, Usage};
    let mut rs = fixture::results();
    let usage = |cost: Option<f64>, input: u64, model: &str| Usage {
        cost_usd: cost,
        input_tokens: Some(input),
        output_tokens: Some(input / 10),
        turns: Some(2),
        model: Some(model.into()),
        source: "test".into(),
        ..Usage::default()
    };
    let attempt = |n: u32, outcome: &str, reason: Option<&str>| Attempt {
        attempt: n,
        started_at: None,
        duration_seconds: 1.0,
        outcome: outcome.into(),
        exit_code: None,
        retry_reason: reason.map(str::to_string),
        backoff_seconds: reason.map(|_| 10.0),
        usage: None,
    };
    for r in rs.iter_mut() {
        match r.workstream_id.as_str() {
            "ws-01" => {
                r.agent = Some("claude".into());
                r.usage = Some(usage(Some(0.5), 12_000, "claude-sonnet-4-5"));
                r.attempts = vec![
                    attempt(1, "CommandFailed", Some("claude reported overloaded_error")),
                    attempt(2, "completed", None),
                ];
            }
            "ws-09" => {
                r.agent = Some("codex".into());
                r.usage = Some(usage(None, 3_000, "gpt | <b>x</b>"));
            }
            "ws-03" => {
                r.agent = Some("claude".into());
                r.usage = Some(usage(Some(1.25), 1_000, "claude-sonnet-4-5"));
            }
            _ => {}
        }
    }
    let c = fixture::consolidated();
    RunView::build(ws_core::view::Input {
        consolidated: &c,
        results: &rs,
        merges: Some(&fixture::merges()),
        state: "finished",
    })
}

#[test]
fn usage_and_retries_in_every_output() {
    let v = view_with_usage();
    let u = v.usage.as_ref().unwrap();
    assert_eq!(u.workstreams, 3);
    assert_eq!(u.total.cost_usd, Some(1.75));
    assert_eq!(u.total.input_tokens, Some(16_000));
    let per: Vec<(&str, usize, Option<f64>)> = u
        .by_agent
        .iter()
        .map(|a| (a.agent.as_str(), a.workstreams, a.usage.cost_usd))
        .collect();
    assert_eq!(per, vec![("claude", 2, Some(1.75)), ("codex", 1, None)]);

    let md = markdown(&v);
    assert_tables_intact(&md);
    assert!(
        md.contains("| Cost (reported by the agents) | $1.75 (3 of "),
        "{md}"
    );
    assert!(md.contains("| Tokens | 16,000 in / 1,600 out |"), "{md}");
    assert!(
        md.contains("| Retried / flaky workstreams | 1 / 1 |"),
        "{md}"
    );
    assert!(md.contains("### Usage per coding agent"));
    assert!(
        md.contains("| claude | 2 | \\$1.75 | 13,000 | 1,300 | 4 | claude-sonnet-4-5 |"),
        "{md}"
    );
    assert!(!md.contains("<b>"), "agent text is escaped");
    assert!(md.contains("### Retried workstreams"));
    let retried = md
        .lines()
        .find(|l| l.starts_with("- **ws-01** (claude)"))
        .unwrap();
    assert_eq!(
        retried,
        "- **ws-01** (claude): 2 attempts, completed (flaky); waited 10.0s; retried after: claude reported overloaded\\_error"
    );
    let ws_header = md.lines().find(|l| l.starts_with("| ID |")).unwrap();
    assert!(ws_header.ends_with("| Branch | Cost |"), "{ws_header}");

    let t = tables(&v, &[]);
    assert!(
        t.contains("cost: $1.75 (claude $1.75, codex n/a); tokens: 16,000 in / 1,600 out"),
        "{t}"
    );
    assert!(t.contains("retried: ws-01 (2 attempts, flaky)"), "{t}");
    let a = tables(&v, &[Section::Agents]);
    assert!(a.contains("coding agent  workstreams  cost"), "{a}");

    let j: serde_json::Value = serde_json::from_str(&json(&v)).unwrap();
    assert_eq!(j["usage"]["by_agent"][0]["agent"], "claude");
    assert_eq!(
        j["retries"][0]["reasons"][0],
        "claude reported overloaded_error"
    );
    let ws01 = j["workstreams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["workstream_id"] == "ws-01")
        .unwrap();
    assert_eq!(ws01["attempts"].as_array().unwrap().len(), 2);
    let summary: serde_json::Value =
        serde_json::from_str(&json_sections(&v, &[Section::Summary])).unwrap();
    assert_eq!(summary["usage"]["total"]["cost_usd"], 1.75);
    // Without usage the summary has no usage key at all (not null).
    let plain: serde_json::Value =
        serde_json::from_str(&json_sections(&fixture::view(), &[Section::Summary])).unwrap();
    assert!(plain.get("usage").is_none() && plain.get("retries").is_none());
}

#[test]
fn bidi_overrides_zero_width_and_escapes_reach_no_rendering() {
    let hostile = "evil\u{1b}]0;owned\u{7}\u{1b}[2J\u{202E}nosj.\u{200B}\u{2066}x\u{FEFF}";
    let mut rs = fixture::results();
    rs[0].workstream_id = format!("file:{hostile}.json");
    rs[0].title = Some(format!("{hostile} {}", "t".repeat(3_000)));
    let c = fixture::consolidated();
    let v = RunView::build(ws_core::view::Input {
        consolidated: &c,
        results: &rs,
        merges: Some(&fixture::merges()),
        state: "finished",
    });
    let md = markdown(&v);
    let all = tables(&v, &[]) + &tables(&v, &[Section::Workstreams]);
    for (what, out) in [("markdown", &md), ("tables", &all)] {
        for c in [
            '\u{1b}', '\u{7}', '\u{202E}', '\u{200B}', '\u{2066}', '\u{FEFF}',
        ] {
            assert!(!out.contains(c), "{what} keeps {c:?}");
        }
        let longest = out.lines().map(width).max().unwrap();
        assert!(longest < 500, "{what}: a line of {longest} columns");
    }
    assert!(md.contains("nosj."), "the visible text stays");
}

/// Elements that never close.
const VOID: [&str; 5] = ["meta", "br", "hr", "input", "col"];

/// Every element the page opens closes, in order (the SVG's `line` and self-closed elements
/// included); text outside tags holds no raw `<` or `>`.
fn assert_well_formed(page: &str) {
    let mut stack: Vec<String> = Vec::new();
    let mut rest = page.strip_prefix("<!doctype html>\n").expect("doctype");
    while let Some(i) = rest.find('<') {
        assert!(!rest[..i].contains('>'), "a raw > in text: {}", &rest[..i]);
        let end = rest[i..].find('>').expect("unclosed tag") + i;
        let tag = &rest[i + 1..end];
        rest = &rest[end + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            let open = stack
                .pop()
                .unwrap_or_else(|| panic!("</{name}> closes nothing"));
            assert_eq!(open, name, "</{name}> closes <{open}>");
            continue;
        }
        let name: String = tag
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        assert!(!name.is_empty(), "not a tag: <{tag}>");
        if name == "style" {
            let close = rest.find("</style>").expect("style closes");
            rest = &rest[close + "</style>".len()..];
            continue;
        }
        if !tag.ends_with('/') && !VOID.contains(&name.as_str()) {
            stack.push(name);
        }
    }
    assert!(!rest.contains('>'), "a raw > after the last tag");
    assert!(stack.is_empty(), "never closed: {stack:?}");
}

#[test]
fn html_page_snapshot_is_well_formed_and_shows_every_section() {
    let mut v = fixture::view();
    v.set_integration(Some(fixture::integration()));
    let page = render_html(&v);
    assert_well_formed(&page);
    for id in [
        "summary",
        "agents",
        "timeline",
        "workstreams",
        "files",
        "overlaps",
        "integration",
        "tests",
        "recommendations",
        "details",
    ] {
        assert!(
            page.contains(&format!("<section id=\"{id}\"")),
            "no {id} section"
        );
    }
    assert_eq!(
        page.matches("<details id=\"ws-").count(),
        v.workstreams.len(),
        "one details block per workstream"
    );
    assert_eq!(
        page.matches("<rect class=\"bar-").count(),
        v.timeline.bars.len()
    );
    insta::assert_snapshot!("html_page", page);
}

#[test]
fn html_page_runs_no_script_and_loads_nothing_from_elsewhere() {
    let page = render_html(&fixture::view());
    assert!(page.contains(&format!("content=\"{CSP}\"")));
    assert!(CSP.contains("default-src 'none'"));
    let lower = page.to_lowercase();
    // (The fixture's titles hold `javascript:` as text, which is harmless.)
    for banned in [
        "<script",
        "=\"javascript:",
        " src=",
        "<link",
        "@import",
        "url(",
        "<iframe",
        "<img",
    ] {
        assert!(!lower.contains(banned), "the page has {banned}");
    }
    // The only absolute URL is the SVG namespace, which is never fetched.
    let absolute = lower.matches("http://").count() + lower.matches("https://").count();
    let svg_namespace = lower
        .matches("xmlns=\"http://www.w3.org/2000/svg\"")
        .count();
    assert_eq!(absolute, svg_namespace, "an absolute URL on the page");
    // Links go to anchors on the page only.
    for (i, _) in page.match_indices("href=\"") {
        assert_eq!(&page[i + 6..i + 7], "#", "a link leaves the page");
    }
}

#[test]
fn hostile_values_are_escaped_and_capped_on_the_page() {
    let hostile = "<script>alert(1)</script>\u{1b}[2J\u{202E}<a href=\"javascript:x\">\u{200B}\"'&";
    let mut rs = fixture::results();
    rs[0].workstream_id = format!("file:{hostile}.json");
    rs[0].title = Some(format!("{hostile} {}", "t".repeat(3_000)));
    rs[1].agent_id = hostile.to_string();
    let c = fixture::consolidated();
    let v = RunView::build(ws_core::view::Input {
        consolidated: &c,
        results: &rs,
        merges: Some(&fixture::merges()),
        state: "finished",
    });
    let page = render_html(&v);
    assert_well_formed(&page);
    let lower = page.to_lowercase();
    assert!(!lower.contains("<script"), "a script element");
    assert!(!lower.contains("<a href=\"javascript"), "a javascript link");
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    for c in ['\u{1b}', '\u{202E}', '\u{200B}'] {
        assert!(!page.contains(c), "keeps {c:?}");
    }
    let longest_title = page.matches(&"t".repeat(MAX_HTML_TITLE_COLUMNS)).count();
    assert_eq!(longest_title, 0, "a title longer than the cap");
}

#[test]
fn a_thousand_workstream_page_shows_the_caps_and_stays_well_formed() {
    let base = fixture::results();
    let mut rs = Vec::new();
    for i in 0..1_000 {
        let mut r = base[i % base.len()].clone();
        r.workstream_id = format!("ws-{i:04}");
        rs.push(r);
    }
    let c = fixture::consolidated();
    let v = RunView::build(ws_core::view::Input {
        consolidated: &c,
        results: &rs,
        merges: None,
        state: "finished",
    });
    let page = render_html(&v);
    assert_well_formed(&page);
    assert_eq!(page.matches("<details id=\"ws-").count(), MAX_TABLE_ROWS);
    assert!(page.contains("500 more workstreams not shown"));
}

#[test]
fn a_runs_own_integration_says_when_each_merge_exclusion_and_test_happened() {
    let mut v = fixture::view();
    let mut it = fixture::integration();
    let at = |s: &str| Some(chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc());
    it.made_by = Some(ws_core::model::IntegrationRecord::MADE_BY_RUN.to_string());
    it.reused_tests = 0;
    it.merges[0].at = at("2026-12-07T10:00:01Z");
    it.merges[1].at = at("2026-12-07T10:00:05Z");
    it.excluded[0].at = at("2026-12-07T10:00:03Z");
    for t in &mut it.tests {
        t.started_at = at("2026-12-07T10:00:06Z");
    }
    v.set_integration(Some(it));
    let md = crate::markdown(&v);
    assert!(
        md.contains("Integrated as the run went (`git ws-run --integrate`)"),
        "{md}"
    );
    assert!(md.contains("| # | Workstream | Merged at | When |"), "{md}");
    assert!(
        md.contains("| 2 | ws-09 | 2222222 | 2026-12-07T10:00:05.000000Z |"),
        "{md}"
    );
    assert!(md.contains("_(2026-12-07T10:00:03.000000Z)_"), "{md}");
    assert!(md.contains("| Duration | Started |"), "{md}");
    // Without times (git ws-merge), the tables are as before.
    let mut plain = fixture::view();
    plain.set_integration(Some(fixture::integration()));
    let md = crate::markdown(&plain);
    assert!(md.contains("| # | Workstream | Merged at |\n"), "{md}");
    assert!(!md.contains("| Duration | Started |"), "{md}");
}

#[test]
fn the_html_page_shows_each_fix_up_chain_escaped_under_the_integration() {
    use ws_core::fixup::{FixupAttempt, FixupChain};
    let mut v = fixture::view();
    v.set_integration(Some(fixture::integration()));
    let plain = render_html(&v);
    assert!(!plain.contains("Fix-ups"), "no table without fix-ups");
    v.fixups = vec![FixupChain {
        workstream_id: "p1".into(),
        attempts: vec![
            FixupAttempt {
                followup_id: "p1~fix1".into(),
                attempt: 1,
                reason: "conflict".into(),
                detail: "conflicts with <p2> in a.txt".into(),
                integration_tip: "0123456789abcdef0123456789abcdef01234567".into(),
                at: "2026-12-07T10:00:00Z".into(),
                outcome: "breaks-tests".into(),
            },
            FixupAttempt {
                followup_id: "p1~fix2".into(),
                attempt: 2,
                reason: "breaks-tests".into(),
                detail: "the tests fail".into(),
                integration_tip: "89abcdef0123456789abcdef0123456789abcdef".into(),
                at: "2026-12-07T10:01:00Z".into(),
                outcome: "integrated".into(),
            },
        ],
        max_attempts: 2,
        state: "integrated".into(),
    }];
    let page = render_html(&v);
    assert_well_formed(&page);
    let at = page.find("<section id=\"integration\"").unwrap();
    let fix = page
        .find("Fix-ups: left-out branches")
        .expect("a fix-ups table");
    assert!(fix > at, "under the integration");
    assert!(page.contains("<code>p1</code> (integrated, 2 of at most 2)"));
    assert!(page.contains("<code>p1~fix2</code>"));
    assert!(page.contains("conflicts with &lt;p2&gt; in a.txt"));
    assert!(page.contains("<code>0123456789ab</code>"));
}
