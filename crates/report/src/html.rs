//! The run as one self-contained HTML page: inline CSS, the timeline as inline SVG, no script
//! and nothing fetched from elsewhere (a Content-Security-Policy says so). Every value from
//! runs, agents and files goes through [`html`]; titles are capped as in every rendering.

use super::cells::{agent_cells, test_totals, AGENT_HEADERS};
use super::diff::{diff_html, DiffLayout};
use super::escape::html as h;
use super::markdown::{MAX_CONFLICT_DETAILS, MAX_ERROR_DETAILS, MAX_TABLE_ROWS};
use super::usage::{agent_usage_rows, summary_rows, AGENT_USAGE_HEADERS};
use std::fmt::Write as _;
use ws_core::model::Status;
use ws_core::text::{duration, one_line, plural, truncate};
use ws_core::view::{RunView, WorkstreamRow};

/// Titles are cut to this many columns on the page (the JSON has every character).
pub const MAX_HTML_TITLE_COLUMNS: usize = 120;

/// The policy every page carries: nothing from elsewhere, no script, no form target.
pub const CSP: &str =
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'self'";

const CSS: &str = r#"
:root{--fg:#1b1f24;--mut:#57606a;--bg:#fff;--alt:#f6f8fa;--line:#d0d7de;--ok:#1a7f37;--bad:#cf222e;--skip:#9a6700;--ins:#dafbe1;--del:#ffebe9;--insm:#aceebb;--delm:#ffcecb;--link:#0969da}
@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--mut:#9198a1;--bg:#0d1117;--alt:#161b22;--line:#30363d;--ok:#3fb950;--bad:#f85149;--skip:#d29922;--ins:#12261e;--del:#25171c;--insm:#1f6f3f;--delm:#8e1519;--link:#4493f8}}
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--fg);background:var(--bg)}
header,main,footer{max-width:1200px;margin:0 auto;padding:0 16px}header{padding-top:16px}
h1{font-size:22px;margin:8px 0}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid var(--line);padding-bottom:4px}h3{font-size:15px;margin:16px 0 6px}
a{color:var(--link)}a:focus,summary:focus,button:focus,input:focus,textarea:focus,select:focus{outline:2px solid var(--link);outline-offset:2px}
.skip{position:absolute;left:-9999px;top:0}.skip:focus{left:8px;top:8px;background:var(--bg);padding:4px 8px;z-index:1}
.sr th{position:absolute;width:1px;height:1px;padding:0;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap;border:0}
.notice{border-left:4px solid var(--link);background:var(--alt);padding:6px 10px}
nav ul{list-style:none;padding:0;margin:8px 0;display:flex;flex-wrap:wrap;gap:4px 14px}
code,pre,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12.5px}
pre{background:var(--alt);border:1px solid var(--line);padding:8px;overflow:auto;max-height:420px;white-space:pre-wrap;overflow-wrap:anywhere}
table{border-collapse:collapse;margin:6px 0 12px;width:100%}caption{text-align:left;font-weight:600;padding:4px 0}
th,td{border:1px solid var(--line);padding:3px 6px;text-align:left;vertical-align:top;overflow-wrap:anywhere}th{background:var(--alt)}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
dl.stats{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;margin:8px 0}dl.stats dt{color:var(--mut)}dl.stats dd{margin:0}
.st{font-weight:600}.st-completed{color:var(--ok)}.st-failed{color:var(--bad)}.st-skipped,.st-deferred{color:var(--skip)}
.verdict{font-size:15px}.muted{color:var(--mut)}.warn{color:var(--skip)}
details{border:1px solid var(--line);border-radius:4px;margin:6px 0;padding:4px 8px}details[open]{background:var(--bg)}summary{cursor:pointer}
svg.timeline{width:100%;height:auto;background:var(--alt);border:1px solid var(--line)}
svg .bar-completed{fill:var(--ok)}svg .bar-failed{fill:var(--bad)}svg .bar-skipped,svg .bar-deferred{fill:var(--skip)}svg text{fill:var(--fg);font-size:11px}svg line{stroke:var(--line)}
table.diff{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12.5px;table-layout:fixed}
table.diff col.ln{width:4.5em}table.diff td{border:none;padding:0 6px;white-space:pre-wrap}table.diff td.ln{width:4.5em;color:var(--mut);text-align:right;user-select:none}
table.diff tr.ins td.code,table.diff td.code.ins{background:var(--ins)}table.diff tr.del td.code,table.diff td.code.del{background:var(--del)}
table.diff tr.ins mark,table.diff td.ins mark{background:var(--insm);color:inherit}table.diff tr.del mark,table.diff td.del mark{background:var(--delm);color:inherit}
table.diff tr.hunk th{font-weight:400;color:var(--mut)}table.diff .sign{display:inline-block;width:1.2em;color:var(--mut)}
"#;

/// How a served page differs from the file: links to the server's own pages, and a
/// refresh while the run is live.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageOptions {
    /// Workstream links go to `<base><percent-encoded id>` instead of the page's anchors.
    pub workstream_base: Option<String>,
    /// Reload every this many seconds (a live run; no script involved).
    pub refresh_seconds: Option<u32>,
    /// A link back to the list of runs.
    pub home: Option<String>,
    /// `git ws-review`'s actions: the Review section with its forms.
    pub review: Option<ReviewForms>,
}

/// What a served page shows of the review and where its forms post (`git ws-review`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReviewForms {
    /// The server's CSRF token, sent back in a hidden field of every form.
    pub csrf: String,
    /// The page's own path: forms post to `<base>/<action>`.
    pub action_base: String,
    /// The workstream is left out of the next `git ws-merge`: by whom, when.
    pub left_out: Option<(String, String)>,
    /// The recorded actions to list, oldest first.
    pub actions: Vec<ReviewEntry>,
    /// A follow-up just sent from this page, and who runs it.
    pub followup: Option<FollowupNotice>,
}

/// What became of a follow-up sent from the page: shown once, after sending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowupNotice {
    pub id: String,
    pub run_id: String,
    pub state: FollowupState,
}

/// Who runs a follow-up, or how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FollowupState {
    /// The run is live: its coordinator runs it before it ends.
    Live,
    /// `git ws-run --resume RUN` runs it.
    Resume,
    /// A run several machines share: not run while it is live.
    Shared,
    /// It has a result already: its status and page.
    Ran { status: String, href: String },
}

/// The notice saying who runs the follow-up just sent (a live region: screen readers say it).
fn followup_notice(out: &mut String, n: &FollowupNotice) {
    let (id, run) = (h(&n.id), h(&n.run_id));
    let text = match &n.state {
        FollowupState::Live => {
            format!("Follow-up <code>{id}</code> queued: it runs now in the live run <code>{run}</code>.")
        }
        FollowupState::Resume => format!(
            "Follow-up <code>{id}</code> queued for <code>git ws-run --resume {run}</code>."
        ),
        FollowupState::Shared => format!(
            "Follow-up <code>{id}</code> recorded, not run now: <code>{run}</code> is a shared run, \
             whose workers do not pick up follow-ups while it is live."
        ),
        FollowupState::Ran { status, href } => format!(
            "Follow-up <a href=\"{}\"><code>{id}</code></a> ran: {}.",
            h(href),
            h(status)
        ),
    };
    let _ = write!(
        out,
        "<p role=\"status\" id=\"followup-state\" class=\"notice\">{text}</p>"
    );
}

/// One recorded review action as listed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReviewEntry {
    pub workstream_id: Option<String>,
    pub action: String,
    pub who: String,
    pub at: String,
    pub detail: String,
}

/// The format of the comments textarea, as the page documents it.
pub const COMMENT_FORMAT: &str = "one comment per line: path:line: text (e.g. src/lib.rs:42: handle the empty case); lines that do not start with path:line: continue the comment above";

fn csrf_field(out: &mut String, r: &ReviewForms) {
    let _ = write!(
        out,
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        h(&r.csrf)
    );
}

fn review_log(out: &mut String, r: &ReviewForms, with_workstream: bool) {
    if r.actions.is_empty() {
        out.push_str("<p>No review action yet.</p>");
        return;
    }
    let mut headers = vec!["When (UTC)", "Who", "Action"];
    if with_workstream {
        headers.push("Workstream");
    }
    headers.push("What");
    let rows: Vec<Vec<String>> = r
        .actions
        .iter()
        .map(|a| {
            let mut row = vec![h(&a.at), h(&a.who), h(&a.action)];
            if with_workstream {
                row.push(format!(
                    "<code>{}</code>",
                    h(a.workstream_id.as_deref().unwrap_or(""))
                ));
            }
            row.push(h(&a.detail));
            row
        })
        .collect();
    table(out, "Review actions, oldest first", &headers, &rows, &[]);
}

/// The run page's Review section: what reviewers did, and the dry-run button.
fn run_review(out: &mut String, r: &ReviewForms) {
    section(out, "review", "Review");
    review_log(out, r, true);
    let _ = write!(
        out,
        "<form method=\"post\" action=\"{}/dry-run\">",
        h(&r.action_base)
    );
    csrf_field(out, r);
    out.push_str("<button type=\"submit\">Plan the integration (git ws-merge --dry-run)</button></form></section>");
}

/// The workstream page's Review section: leave out or put back, batched comments.
fn workstream_review(out: &mut String, r: &ReviewForms) {
    section(out, "review", "Review");
    if let Some(n) = &r.followup {
        followup_notice(out, n);
    }
    match &r.left_out {
        Some((who, at)) => {
            let _ = write!(
                out,
                "<p class=\"warn\" id=\"merge-state\">Left out of the next <code>git ws-merge</code> by {} at {}.</p>",
                h(who),
                h(at)
            );
            let _ = write!(
                out,
                "<form method=\"post\" action=\"{}/put-back\">",
                h(&r.action_base)
            );
            csrf_field(out, r);
            out.push_str("<button type=\"submit\">Put back into the next merge</button></form>");
        }
        None => {
            out.push_str("<p id=\"merge-state\">The next <code>git ws-merge</code> merges it (if it completed).</p>");
            let _ = write!(
                out,
                "<form method=\"post\" action=\"{}/leave-out\">",
                h(&r.action_base)
            );
            csrf_field(out, r);
            out.push_str("<button type=\"submit\">Leave out of the next merge</button></form>");
        }
    }
    let _ = write!(
        out,
        "<form method=\"post\" action=\"{}/comments\"><p><label for=\"comments\">Review comments</label>: {}. \
         They are sent together as one follow-up workstream for the same agent, started from this \
         workstream's branch. A live run runs it before it ends; otherwise \
         <code>git ws-run --resume RUN</code> runs it.</p>",
        h(&r.action_base),
        h(COMMENT_FORMAT)
    );
    csrf_field(out, r);
    out.push_str("<textarea id=\"comments\" name=\"comments\" rows=\"8\" cols=\"100\" placeholder=\"src/lib.rs:42: handle the empty case\"></textarea><p><button type=\"submit\">Send to the agent</button></p></form>");
    review_log(out, r, false);
    out.push_str("</section>");
}

/// The page showing a planned integration (`git ws-merge --dry-run` from the review page).
pub fn plan_page(run_id: &str, it: &ws_core::model::IntegrationRecord, run_href: &str) -> String {
    let mut out = String::with_capacity(4_096);
    head_with(
        &mut out,
        &format!("Integration plan — git-ws run {run_id}"),
        None,
    );
    let _ = write!(
        out,
        "<header><p><a href=\"{}\">Run <code>{}</code></a></p><h1>Integration plan (dry run)</h1></header><main id=\"main\">",
        h(run_href),
        h(run_id)
    );
    let _ = write!(
        out,
        "<p id=\"plan\">Onto {} (<code>{}</code>) into <code>{}</code>: {} merged, {} left out. Nothing was written.</p>",
        h(&it.onto_rev),
        short(&it.onto),
        h(&it.branch),
        it.merges.len(),
        it.excluded.len()
    );
    let rows: Vec<Vec<String>> = it
        .merges
        .iter()
        .enumerate()
        .map(|(i, m)| {
            vec![
                (i + 1).to_string(),
                format!("<code>{}</code>", h(&m.workstream_id)),
                format!("<code>{}</code>", short(&m.tip)),
            ]
        })
        .collect();
    table(
        &mut out,
        "Merges, in order",
        &["#", "Workstream", "Tip"],
        &rows,
        &[0],
    );
    let rows: Vec<Vec<String>> = it
        .excluded
        .iter()
        .map(|x| {
            vec![
                format!("<code>{}</code>", h(&x.workstream_id)),
                h(&x.reason),
                h(&x.detail),
            ]
        })
        .collect();
    table(
        &mut out,
        "Left out",
        &["Workstream", "Reason", "Detail"],
        &rows,
        &[],
    );
    out.push_str("</main>");
    foot(&mut out);
    out
}

/// The whole page of one run, as the report file has it.
pub fn page(v: &RunView) -> String {
    page_with(v, &PageOptions::default())
}

/// The whole page of one run.
pub fn page_with(v: &RunView, o: &PageOptions) -> String {
    let mut out = String::with_capacity(16_384 + v.workstreams.len() * 1_500);
    head_with(
        &mut out,
        &format!("git-ws run {}", v.run_id),
        o.refresh_seconds,
    );
    out.push_str("<header>");
    if let Some(home) = &o.home {
        let _ = write!(out, "<p><a href=\"{}\">All runs</a></p>", h(home));
    }
    let _ = write!(
        out,
        "<h1>Run <code>{}</code></h1><p class=\"verdict\">{}</p>",
        h(&v.run_id),
        h(&v.verdict)
    );
    if o.refresh_seconds.is_some() {
        out.push_str("<p class=\"muted\" role=\"status\">Live: this page reloads every few seconds while the run goes on.</p>");
    }
    nav(&mut out, v);
    out.push_str("</header><main id=\"main\">");
    summary(&mut out, v);
    agents(&mut out, v);
    timeline(&mut out, v);
    workstreams(&mut out, v, o);
    errors(&mut out, v);
    files(&mut out, v);
    overlaps(&mut out, v);
    integration(&mut out, v);
    if let Some(r) = &o.review {
        run_review(&mut out, r);
    }
    tests(&mut out, v);
    recommendations(&mut out, v);
    details(&mut out, v);
    out.push_str("</main>");
    foot(&mut out);
    out
}

/// A page holding one table of plain-text cells (the list of runs): the first column is
/// shown as code.
pub fn list_page(title_text: &str, headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = String::with_capacity(4_096 + rows.len() * 200);
    head(&mut out, title_text);
    let _ = write!(out, "<main id=\"main\"><h1>{}</h1>", h(title_text));
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            r.iter()
                .enumerate()
                .map(|(i, c)| {
                    if i == 0 {
                        format!("<code>{}</code>", h(c))
                    } else {
                        h(c)
                    }
                })
                .collect()
        })
        .collect();
    if cells.is_empty() {
        out.push_str("<p>No runs recorded yet: run <code>git ws-run</code>.</p>");
    } else {
        table(&mut out, &h(title_text), headers, &cells, &[]);
    }
    out.push_str("</main>");
    foot(&mut out);
    out
}

/// `<!doctype html>` … `<body>`: the policy, the title and the style.
pub fn head(out: &mut String, title: &str) {
    head_with(out, title, None);
}

fn head_with(out: &mut String, title: &str, refresh: Option<u32>) {
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">\
         <meta name=\"referrer\" content=\"no-referrer\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">{}\
         <title>{}</title><style>{CSS}</style></head><body>\
         <a class=\"skip\" href=\"#main\">Skip to the content</a>",
        refresh
            .map(|s| format!("<meta http-equiv=\"refresh\" content=\"{s}\">"))
            .unwrap_or_default(),
        h(&truncate(&one_line(title), MAX_HTML_TITLE_COLUMNS))
    );
}

/// `s` as one URL path segment: every byte but the unreserved ones percent-encoded.
pub fn url_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// `</body></html>`, after a footer naming the tool.
pub fn foot(out: &mut String) {
    out.push_str(
        "<footer><p class=\"muted\">Written by git-ws; this page runs no script and loads \
         nothing from elsewhere.</p></footer></body></html>\n",
    );
}

fn nav(out: &mut String, v: &RunView) {
    let mut items = vec![
        ("summary", "Summary"),
        ("agents", "Agents"),
        ("timeline", "Timeline"),
        ("workstreams", "Workstreams"),
    ];
    if !v.errors.is_empty() || !v.warnings.is_empty() {
        items.push(("errors", "Errors"));
    }
    items.extend([
        ("files", "Files"),
        ("overlaps", "Overlaps and conflicts"),
        ("integration", "Integration"),
        ("tests", "Tests"),
        ("recommendations", "Recommendations"),
        ("details", "Details"),
    ]);
    out.push_str("<nav aria-label=\"Sections of the run\"><ul>");
    for (id, label) in items {
        let _ = write!(out, "<li><a href=\"#{id}\">{label}</a></li>");
    }
    out.push_str("</ul></nav>");
}

fn section(out: &mut String, id: &str, title: &str) {
    let _ = write!(
        out,
        "<section id=\"{id}\" aria-labelledby=\"{id}-h\"><h2 id=\"{id}-h\">{title}</h2>"
    );
}

/// A commit's first 12 hex digits, escaped.
fn short(sha: &str) -> String {
    h(&sha.chars().take(12).collect::<String>())
}

fn status(s: Status) -> String {
    let name = s.as_str();
    format!("<span class=\"st st-{name}\">{name}</span>")
}

/// The anchor of the `i`-th workstream's details: from its position, never its id.
fn anchor(i: usize) -> String {
    format!("ws-{i}")
}

fn title(w: &WorkstreamRow) -> String {
    w.title
        .as_deref()
        .map(|t| h(&truncate(&one_line(t), MAX_HTML_TITLE_COLUMNS)))
        .unwrap_or_default()
}

/// A table with a caption, from escaped header names and already-escaped cells.
fn table(
    out: &mut String,
    caption: &str,
    headers: &[&str],
    rows: &[Vec<String>],
    numeric: &[usize],
) {
    let _ = write!(out, "<table><caption>{caption}</caption><thead><tr>");
    for (i, hd) in headers.iter().enumerate() {
        let cls = if numeric.contains(&i) {
            " class=\"num\""
        } else {
            ""
        };
        let _ = write!(out, "<th scope=\"col\"{cls}>{}</th>", h(hd));
    }
    out.push_str("</tr></thead><tbody>");
    for r in rows {
        out.push_str("<tr>");
        for (i, c) in r.iter().enumerate() {
            let cls = if numeric.contains(&i) {
                " class=\"num\""
            } else {
                ""
            };
            let _ = write!(out, "<td{cls}>{c}</td>");
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
}

fn more(out: &mut String, shown: usize, total: usize, what: &str) {
    if total > shown {
        let _ = write!(
            out,
            "<p class=\"muted\">{} more {what} not shown (the JSON has them all).</p>",
            total - shown
        );
    }
}

fn summary(out: &mut String, v: &RunView) {
    section(out, "summary", "Summary");
    let mut rows: Vec<(&str, String)> = vec![
        ("State", h(&v.state)),
        ("Started", h(&v.timestamp)),
        (
            "Base",
            format!("{} (<code>{}</code>)", h(&v.base_rev), short(&v.base)),
        ),
        ("Agents", v.agent_count.to_string()),
        (
            "Workstreams",
            format!(
                "{} — {} completed, {} failed, {} skipped",
                v.total_workstreams, v.completed_count, v.failed_count, v.skipped_count
            ),
        ),
        (
            "Files / commits",
            format!(
                "{} ({} touched by more than one workstream) / {}",
                plural(v.total_files_modified, "file", "files"),
                v.overlapping_files,
                v.total_commits
            ),
        ),
        (
            "Errors / warnings",
            format!("{} / {}", v.total_errors, v.total_warnings),
        ),
        (
            "Wall / busy time",
            format!(
                "{} / {}{}",
                duration(v.wall_seconds),
                duration(v.busy_seconds),
                v.speedup
                    .map(|s| format!(" ({s:.1}× parallel)"))
                    .unwrap_or_default()
            ),
        ),
        ("Tests", h(&test_totals(v))),
    ];
    if let Some(r) = &v.rerun_of {
        rows.push(("Rerun of", format!("<code>{}</code>", h(r))));
    }
    rows.extend(summary_rows(v).into_iter().map(|(k, val)| (k, h(&val))));
    out.push_str("<dl class=\"stats\">");
    for (k, val) in rows {
        let _ = write!(out, "<dt>{}</dt><dd>{val}</dd>", h(k));
    }
    out.push_str("</dl></section>");
}

fn agents(out: &mut String, v: &RunView) {
    section(out, "agents", "Agents");
    let rows: Vec<Vec<String>> = v
        .agents
        .iter()
        .map(|a| agent_cells(&a.perf).iter().map(|c| h(c)).collect())
        .collect();
    table(
        out,
        "Per agent",
        &AGENT_HEADERS,
        &rows,
        &[1, 2, 3, 4, 5, 6, 7],
    );
    let usage: Vec<Vec<String>> = agent_usage_rows(v)
        .iter()
        .map(|r| r.iter().map(|c| h(c)).collect())
        .collect();
    if !usage.is_empty() {
        table(
            out,
            "Usage reported by the coding agents",
            &AGENT_USAGE_HEADERS,
            &usage,
            &[1, 2, 3, 4, 5],
        );
    }
    out.push_str("</section>");
}

/// Bar rows of the timeline drawn at most (the rest are listed as not shown).
const MAX_BARS: usize = MAX_TABLE_ROWS;

fn timeline(out: &mut String, v: &RunView) {
    section(out, "timeline", "Timeline");
    let t = &v.timeline;
    let bars: Vec<_> = t.bars.iter().take(MAX_BARS).collect();
    let (label_w, plot_w, row_h, top) = (180.0, 760.0, 16.0, 22.0);
    let height = top + row_h * bars.len().max(1) as f64 + 6.0;
    let span = t.span_seconds.max(0.001);
    let _ = write!(
        out,
        "<svg class=\"timeline\" viewBox=\"0 0 {} {height}\" role=\"img\" \
         aria-labelledby=\"timeline-desc\" xmlns=\"http://www.w3.org/2000/svg\">\
         <title id=\"timeline-desc\">When each of {} ran, over {}</title>",
        label_w + plot_w + 10.0,
        plural(t.bars.len(), "workstream", "workstreams"),
        duration(t.span_seconds)
    );
    // Ticks: about six, at a round step.
    let step = nice_step(span / 6.0);
    let mut x = 0.0;
    while x <= span + 1e-9 {
        let px = label_w + x / span * plot_w;
        let _ = write!(
            out,
            "<line x1=\"{px:.1}\" y1=\"{}\" x2=\"{px:.1}\" y2=\"{height}\"/>\
             <text x=\"{px:.1}\" y=\"12\" text-anchor=\"middle\">{}</text>",
            top - 4.0,
            duration(x)
        );
        x += step;
    }
    for (i, b) in bars.iter().enumerate() {
        let y = top + row_h * i as f64;
        let x0 = label_w + b.start_offset_seconds / span * plot_w;
        let w = ((b.end_offset_seconds - b.start_offset_seconds) / span * plot_w).max(2.0);
        let _ = write!(
            out,
            "<text x=\"4\" y=\"{:.1}\">{}</text><rect class=\"bar-{}\" x=\"{x0:.1}\" y=\"{:.1}\" \
             width=\"{w:.1}\" height=\"{:.1}\" rx=\"2\"><title>{} on {}: {} in {}</title></rect>",
            y + row_h * 0.75,
            h(&truncate(&one_line(&b.workstream_id), 28)),
            b.status.as_str(),
            y + 2.0,
            row_h - 4.0,
            h(&one_line(&b.workstream_id)),
            h(&b.agent_id),
            b.status.as_str(),
            duration(b.duration_seconds)
        );
    }
    out.push_str("</svg>");
    more(out, bars.len(), t.bars.len(), "bars");
    if !t.not_started.is_empty() {
        let rows: Vec<Vec<String>> = t
            .not_started
            .iter()
            .take(MAX_TABLE_ROWS)
            .map(|n| vec![h(&n.workstream_id), h(&n.reason)])
            .collect();
        table(out, "Never started", &["Workstream", "Why"], &rows, &[]);
    }
    out.push_str("</section>");
}

/// A round step (1, 2 or 5 × a power of ten) at least `raw` seconds.
fn nice_step(raw: f64) -> f64 {
    let raw = raw.max(0.001);
    let p = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * p)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * p)
}

fn workstreams(out: &mut String, v: &RunView, o: &PageOptions) {
    section(out, "workstreams", "Workstreams");
    let rows: Vec<Vec<String>> = v
        .workstreams
        .iter()
        .enumerate()
        .take(MAX_TABLE_ROWS)
        .map(|(i, w)| {
            let href = match &o.workstream_base {
                Some(base) => h(&format!("{base}{}", url_segment(&w.workstream_id))),
                None => format!("#{}", anchor(i)),
            };
            vec![
                format!(
                    "<a href=\"{href}\"><code>{}</code></a>",
                    h(&w.workstream_id)
                ),
                h(&w.agent_id),
                status(w.status),
                duration(w.duration_seconds),
                w.files_modified.len().to_string(),
                format!("+{} −{}", w.additions, w.deletions),
                w.commits_created.len().to_string(),
                if w.merged {
                    "yes".into()
                } else {
                    String::new()
                },
                title(w),
            ]
        })
        .collect();
    table(
        out,
        "Every workstream of the run",
        &[
            "Workstream",
            "Agent",
            "Status",
            "Duration",
            "Files",
            "Lines",
            "Commits",
            "Merged",
            "Title",
        ],
        &rows,
        &[3, 4, 6],
    );
    more(out, rows.len(), v.workstreams.len(), "workstreams");
    out.push_str("</section>");
}

fn errors(out: &mut String, v: &RunView) {
    if v.errors.is_empty() && v.warnings.is_empty() {
        return;
    }
    section(out, "errors", "Errors and warnings");
    if !v.errors_by_type.is_empty() {
        let rows: Vec<Vec<String>> = v
            .errors_by_type
            .iter()
            .map(|(k, n)| vec![h(k), n.to_string()])
            .collect();
        table(out, "Errors by type", &["Type", "Count"], &rows, &[1]);
    }
    for e in v.errors.iter().take(MAX_ERROR_DETAILS) {
        let _ = write!(
            out,
            "<h3><code>{}</code> on {} — {}</h3><p>{}</p>",
            h(&e.workstream_id),
            h(&e.agent_id),
            h(e.error_type.as_str()),
            h(&e.message)
        );
        if let Some(t) = &e.output_tail {
            let _ = write!(
                out,
                "<pre aria-label=\"Last lines of its output\">{}</pre>",
                h(&t.text)
            );
        }
    }
    more(
        out,
        v.errors.len().min(MAX_ERROR_DETAILS),
        v.errors.len(),
        "errors",
    );
    if !v.warnings.is_empty() {
        out.push_str("<h3>Warnings</h3><ul>");
        for w in v.warnings.iter().take(MAX_ERROR_DETAILS) {
            let _ = write!(
                out,
                "<li>{}{}</li>",
                w.workstream_id
                    .as_deref()
                    .map(|id| format!("<code>{}</code>: ", h(id)))
                    .unwrap_or_default(),
                h(&w.message)
            );
        }
        out.push_str("</ul>");
        more(
            out,
            v.warnings.len().min(MAX_ERROR_DETAILS),
            v.warnings.len(),
            "warnings",
        );
    }
    out.push_str("</section>");
}

fn files(out: &mut String, v: &RunView) {
    section(out, "files", "Files");
    let rows: Vec<Vec<String>> = v
        .files
        .iter()
        .take(MAX_TABLE_ROWS)
        .map(|f| {
            vec![
                format!("<code>{}</code>", h(&f.file.path)),
                h(&f.file.workstreams.join(", ")),
                format!("+{} −{}", f.file.additions, f.file.deletions),
                if f.overlap {
                    "<span class=\"warn\">overlap</span>".into()
                } else {
                    String::new()
                },
            ]
        })
        .collect();
    if rows.is_empty() {
        out.push_str("<p>No file was changed.</p>");
    } else {
        table(
            out,
            "Files changed",
            &["Path", "Workstreams", "Lines", ""],
            &rows,
            &[],
        );
        more(out, rows.len(), v.files.len(), "files");
    }
    out.push_str("</section>");
}

fn overlaps(out: &mut String, v: &RunView) {
    section(out, "overlaps", "Overlaps and conflicts");
    if v.conflicts.is_empty() && v.clean_overlaps.is_empty() {
        out.push_str("<p>No two workstreams changed the same file.</p>");
    }
    for c in v.conflicts.iter().take(MAX_CONFLICT_DETAILS) {
        let _ = write!(
            out,
            "<details><summary><span class=\"st st-failed\">conflict</span> <code>{}</code> and \
             <code>{}</code> in {}</summary><p>Merge <code>{}</code> first, then rebase \
             <code>{}</code>.</p>",
            h(&c.workstreams[0]),
            h(&c.workstreams[1]),
            h(&c.paths.join(", ")),
            h(&c.merge_first),
            h(&c.then_rebase)
        );
        for hunk in &c.hunks {
            let _ = write!(
                out,
                "<pre aria-label=\"Conflict in {}\">{}</pre>",
                h(&hunk.path),
                h(&hunk.text)
            );
        }
        out.push_str("</details>");
    }
    more(
        out,
        v.conflicts.len().min(MAX_CONFLICT_DETAILS),
        v.conflicts.len(),
        "conflicts",
    );
    if !v.clean_overlaps.is_empty() {
        let rows: Vec<Vec<String>> = v
            .clean_overlaps
            .iter()
            .take(MAX_TABLE_ROWS)
            .map(|p| {
                vec![
                    format!(
                        "<code>{}</code> and <code>{}</code>",
                        h(&p.workstreams[0]),
                        h(&p.workstreams[1])
                    ),
                    h(&p.paths.join(", ")),
                ]
            })
            .collect();
        table(
            out,
            "Overlaps that merge cleanly",
            &["Workstreams", "Paths"],
            &rows,
            &[],
        );
    }
    if !v.merge_order.is_empty() {
        let rows: Vec<Vec<String>> = v
            .merge_order
            .iter()
            .take(MAX_TABLE_ROWS)
            .map(|s| {
                vec![
                    s.position.to_string(),
                    format!("<code>{}</code>", h(&s.workstream_id)),
                    if s.clean {
                        "clean".into()
                    } else {
                        "<span class=\"st st-failed\">needs a rebase</span>".into()
                    },
                    h(&s.reason),
                ]
            })
            .collect();
        table(
            out,
            "Suggested merge order",
            &["#", "Workstream", "", "Why"],
            &rows,
            &[0],
        );
    }
    out.push_str("</section>");
}

fn integration(out: &mut String, v: &RunView) {
    section(out, "integration", "Integration");
    let Some(i) = &v.integration else {
        out.push_str("<p>Not integrated yet: <code>git ws-merge</code> builds the integration branch.</p></section>");
        return;
    };
    let _ = write!(
        out,
        "<p>{}<code>{}</code> onto {} (<code>{}</code>): {} merged, {} left out{}. Tip \
         <code>{}</code>{}.</p>",
        if i.dry_run { "Planned (dry run): " } else { "" },
        h(&i.branch),
        h(&i.onto_rev),
        short(&i.onto),
        i.merged.len(),
        i.excluded.len(),
        i.test_command
            .as_deref()
            .map(|t| format!(
                ", tested with <code>{}</code> in {}",
                h(t),
                plural(i.test_runs, "run", "runs")
            ))
            .unwrap_or_default(),
        short(&i.tip),
        if i.incomplete {
            " — <strong>the run was not finished</strong>"
        } else {
            ""
        }
    );
    if !i.excluded.is_empty() {
        let rows: Vec<Vec<String>> = i
            .excluded
            .iter()
            .map(|x| {
                vec![
                    format!("<code>{}</code>", h(&x.workstream_id)),
                    h(&x.reason),
                    h(&x.paths.join(", ")),
                    h(&x.detail),
                ]
            })
            .collect();
        table(
            out,
            "Left out",
            &["Workstream", "Why", "Paths", "Detail"],
            &rows,
            &[],
        );
    }
    if !i.tests.is_empty() {
        let rows: Vec<Vec<String>> = i
            .tests
            .iter()
            .map(|t| {
                vec![
                    format!("<code>{}</code>", short(&t.commit)),
                    h(&t.workstreams.join(", ")),
                    if t.passed {
                        "<span class=\"st st-completed\">passed</span>".into()
                    } else {
                        "<span class=\"st st-failed\">failed</span>".into()
                    },
                    duration(t.duration_seconds),
                ]
            })
            .collect();
        table(
            out,
            "Test runs",
            &["Commit", "With", "Result", "Time"],
            &rows,
            &[3],
        );
    }
    fixups(out, v);
    out.push_str("</section>");
}

/// The fix-up chains (`--fix-up`): one row per attempt, under its original workstream, with
/// why the branch before it was left out, where it started and what became of it.
fn fixups(out: &mut String, v: &RunView) {
    if v.fixups.is_empty() {
        return;
    }
    let mut rows: Vec<Vec<String>> = Vec::new();
    for c in &v.fixups {
        let skip = c
            .attempts
            .len()
            .saturating_sub(super::cells::MAX_SHOWN_ATTEMPTS);
        for (i, a) in c.attempts[skip..].iter().enumerate() {
            rows.push(vec![
                if i == 0 {
                    format!(
                        "<code>{}</code> ({}, {} of at most {})",
                        h(&c.workstream_id),
                        h(&c.state),
                        c.attempts.len(),
                        c.max_attempts
                    )
                } else {
                    String::new()
                },
                format!("<code>{}</code>", h(&a.followup_id)),
                h(&a.detail),
                format!("<code>{}</code>", short(&a.integration_tip)),
                h(&a.outcome),
            ]);
        }
    }
    table(
        out,
        "Fix-ups: left-out branches handed back to their agents",
        &["Workstream", "Attempt", "Why", "From tip", "Outcome"],
        &rows,
        &[],
    );
}

fn tests(out: &mut String, v: &RunView) {
    section(out, "tests", "Tests");
    let rows: Vec<Vec<String>> = v
        .workstreams
        .iter()
        .filter_map(|w| Some((w, w.tests.as_ref()?)))
        .take(MAX_TABLE_ROWS)
        .map(|(w, t)| {
            let n = |x: Option<u64>| x.map_or_else(|| "n/a".to_string(), |x| x.to_string());
            vec![
                format!("<code>{}</code>", h(&w.workstream_id)),
                format!("<code>{}</code>", h(&t.results.command)),
                if t.succeeded {
                    "<span class=\"st st-completed\">passed</span>".into()
                } else {
                    "<span class=\"st st-failed\">failed</span>".into()
                },
                n(t.results.passed),
                n(t.results.failed),
                n(t.results.skipped),
            ]
        })
        .collect();
    let _ = write!(out, "<p>{}</p>", h(&test_totals(v)));
    if !rows.is_empty() {
        table(
            out,
            "Tests per workstream",
            &[
                "Workstream",
                "Command",
                "Result",
                "Passed",
                "Failed",
                "Skipped",
            ],
            &rows,
            &[3, 4, 5],
        );
    }
    out.push_str("</section>");
}

fn recommendations(out: &mut String, v: &RunView) {
    section(out, "recommendations", "Recommendations");
    if v.recommendations.is_empty() {
        out.push_str("<p>None.</p>");
    } else {
        out.push_str("<ul>");
        for r in &v.recommendations {
            let _ = write!(out, "<li>{}</li>", h(r));
        }
        out.push_str("</ul>");
    }
    out.push_str("</section>");
}

fn details(out: &mut String, v: &RunView) {
    section(out, "details", "Workstream details");
    for (i, w) in v.workstreams.iter().enumerate().take(MAX_TABLE_ROWS) {
        let _ = write!(
            out,
            "<details id=\"{}\"><summary><code>{}</code> {} on {} in {}</summary>",
            anchor(i),
            h(&w.workstream_id),
            status(w.status),
            h(&w.agent_id),
            duration(w.duration_seconds)
        );
        let t = title(w);
        if !t.is_empty() {
            let _ = write!(out, "<p>{t}</p>");
        }
        out.push_str("<dl class=\"stats\">");
        if let Some(b) = &w.branch {
            let _ = write!(out, "<dt>Branch</dt><dd><code>{}</code></dd>", h(b));
        }
        if let Some(src) = &w.source_file {
            let _ = write!(out, "<dt>File</dt><dd><code>{}</code></dd>", h(src));
        }
        if let Some(c) = w.exit_code {
            let _ = write!(out, "<dt>Exit code</dt><dd>{c}</dd>");
        }
        if let Some(u) = &w.usage {
            if let Some(c) = u.cost_usd {
                let _ = write!(
                    out,
                    "<dt>Cost</dt><dd>{}</dd>",
                    h(&super::usage::fmt_usd(c))
                );
            }
        }
        if w.attempts.len() > 1 {
            let _ = write!(out, "<dt>Attempts</dt><dd>{}</dd>", w.attempts.len());
        }
        if let Some(l) = &w.log_path {
            let _ = write!(out, "<dt>Log</dt><dd><code>{}</code></dd>", h(l));
        }
        out.push_str("</dl>");
        for e in &w.errors {
            let _ = write!(
                out,
                "<p><span class=\"st st-failed\">{}</span> {}</p>",
                h(e.error_type.as_str()),
                h(&e.message)
            );
        }
        for warning in &w.warnings {
            let _ = write!(out, "<p class=\"warn\">{}</p>", h(warning));
        }
        if !w.files.is_empty() {
            out.push_str("<ul>");
            for f in &w.files {
                let _ = write!(
                    out,
                    "<li><code>{}</code> {} +{} −{}</li>",
                    h(&f.path),
                    f.kind.as_str(),
                    f.additions,
                    f.deletions
                );
            }
            out.push_str("</ul>");
        }
        if !w.commits_created.is_empty() {
            let _ = write!(
                out,
                "<p>Commits: {}</p>",
                w.commits_created
                    .iter()
                    .map(|c| format!("<code>{}</code>", short(c)))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
        }
        if let Some(t) = &w.output_tail {
            let _ = write!(
                out,
                "<pre aria-label=\"Last lines of the output of {}\">{}</pre>",
                h(&w.workstream_id),
                h(&t.text)
            );
        }
        out.push_str("</details>");
    }
    more(
        out,
        v.workstreams.len().min(MAX_TABLE_ROWS),
        v.workstreams.len(),
        "workstreams",
    );
    out.push_str("</section>");
}

/// One changed file of a workstream, as its page shows it.
#[derive(Debug, Clone, Copy)]
pub struct FileDiff<'a> {
    pub path: &'a str,
    /// The path before a rename.
    pub old_path: Option<&'a str>,
    pub old: Option<&'a str>,
    pub new: Option<&'a str>,
    /// Not text on one side: no line diff.
    pub binary: bool,
}

/// One commit of a workstream's branch.
#[derive(Debug, Clone, Copy)]
pub struct CommitRow<'a> {
    pub sha: &'a str,
    pub summary: &'a str,
    pub author: &'a str,
}

/// Everything the page of one workstream shows.
#[derive(Debug, Clone)]
pub struct WorkstreamPage<'a> {
    pub run: &'a RunView,
    pub row: &'a WorkstreamRow,
    pub files: Vec<FileDiff<'a>>,
    pub commits: Vec<CommitRow<'a>>,
    pub layout: DiffLayout,
    /// The run's page.
    pub run_href: String,
    /// The whole log, when it can be read.
    pub log_href: Option<String>,
    /// This page in the unified and in the side-by-side layout.
    pub layout_hrefs: (String, String),
    pub refresh_seconds: Option<u32>,
    /// Why the diffs are missing or cut, if they are.
    pub note: Option<String>,
    /// `git ws-review`'s actions on this workstream.
    pub review: Option<ReviewForms>,
}

/// The page of one workstream: status, errors, attempts, tests, usage, commits, the log and
/// every changed file's diff.
pub fn workstream_page(p: &WorkstreamPage<'_>) -> String {
    let w = p.row;
    let mut out = String::with_capacity(8_192);
    head_with(
        &mut out,
        &format!("{} — git-ws run {}", w.workstream_id, p.run.run_id),
        p.refresh_seconds,
    );
    let _ = write!(
        out,
        "<header><p><a href=\"{}\">Run <code>{}</code></a></p><h1><code>{}</code> {}</h1>",
        h(&p.run_href),
        h(&p.run.run_id),
        h(&w.workstream_id),
        status(w.status)
    );
    let t = title(w);
    if !t.is_empty() {
        let _ = write!(out, "<p>{t}</p>");
    }
    out.push_str("</header><main id=\"main\">");
    section(&mut out, "about", "About");
    out.push_str("<dl class=\"stats\">");
    let _ = write!(
        out,
        "<dt>Agent</dt><dd>{}{}</dd><dt>Duration</dt><dd>{}</dd><dt>Changes</dt><dd>{}, +{} −{}, {}</dd>",
        h(&w.agent_id),
        w.agent
            .as_deref()
            .map(|a| format!(" ({})", h(a)))
            .unwrap_or_default(),
        duration(w.duration_seconds),
        plural(w.files_modified.len(), "file", "files"),
        w.additions,
        w.deletions,
        plural(w.commits_created.len(), "commit", "commits")
    );
    if let Some(b) = &w.branch {
        let _ = write!(out, "<dt>Branch</dt><dd><code>{}</code></dd>", h(b));
    }
    if let Some(c) = w.exit_code {
        let _ = write!(out, "<dt>Exit code</dt><dd>{c}</dd>");
    }
    if let Some(u) = &w.usage {
        let mut parts = Vec::new();
        if let Some(c) = u.cost_usd {
            parts.push(super::usage::fmt_usd(c));
        }
        if let (Some(i), Some(o)) = (u.input_tokens, u.output_tokens) {
            parts.push(format!(
                "{} in, {} out",
                super::usage::fmt_count(i),
                super::usage::fmt_count(o)
            ));
        }
        if let Some(t) = u.turns {
            parts.push(plural(t as usize, "turn", "turns"));
        }
        if let Some(m) = &u.model {
            parts.push(m.clone());
        }
        let _ = write!(out, "<dt>Usage</dt><dd>{}</dd>", h(&parts.join(", ")));
    }
    if let Some(t) = &w.tests {
        let n = |x: Option<u64>| x.map_or_else(|| "n/a".to_string(), |x| x.to_string());
        let _ = write!(
            out,
            "<dt>Tests</dt><dd><code>{}</code>: {} ({} passed, {} failed, {} skipped)</dd>",
            h(&t.results.command),
            if t.succeeded { "passed" } else { "failed" },
            n(t.results.passed),
            n(t.results.failed),
            n(t.results.skipped)
        );
    }
    if let Some(href) = &p.log_href {
        let _ = write!(
            out,
            "<dt>Log</dt><dd><a href=\"{}\">the whole log</a></dd>",
            h(href)
        );
    }
    out.push_str("</dl>");
    for e in &w.errors {
        let _ = write!(
            out,
            "<p><span class=\"st st-failed\">{}</span> {}</p>",
            h(e.error_type.as_str()),
            h(&e.message)
        );
    }
    for warning in &w.warnings {
        let _ = write!(out, "<p class=\"warn\">{}</p>", h(warning));
    }
    if w.attempts.len() > 1 {
        let rows: Vec<Vec<String>> = w
            .attempts
            .iter()
            .map(|a| {
                vec![
                    a.attempt.to_string(),
                    h(&a.outcome),
                    duration(a.duration_seconds),
                    a.exit_code.map(|c| c.to_string()).unwrap_or_default(),
                    h(a.retry_reason.as_deref().unwrap_or("")),
                ]
            })
            .collect();
        table(
            &mut out,
            "Attempts",
            &["#", "Outcome", "Duration", "Exit", "Retried because"],
            &rows,
            &[0, 2, 3],
        );
    }
    if let Some(t) = &w.output_tail {
        let _ = write!(
            out,
            "<h3>Last lines of its output</h3><pre>{}</pre>",
            h(&t.text)
        );
    }
    out.push_str("</section>");
    if let Some(r) = &p.review {
        workstream_review(&mut out, r);
    }
    section(&mut out, "commits", "Commits");
    if p.commits.is_empty() {
        out.push_str("<p>No commit.</p>");
    } else {
        out.push_str("<ul>");
        for c in &p.commits {
            let _ = write!(
                out,
                "<li><code>{}</code> {} <span class=\"muted\">— {}</span></li>",
                short(c.sha),
                h(c.summary),
                h(c.author)
            );
        }
        out.push_str("</ul>");
    }
    out.push_str("</section>");
    section(&mut out, "diff", "Changes");
    let (unified, split) = &p.layout_hrefs;
    let _ = write!(
        out,
        "<p>Layout: {} · {}</p>",
        if p.layout == DiffLayout::Unified {
            "<strong>unified</strong>".to_string()
        } else {
            format!("<a href=\"{}\">unified</a>", h(unified))
        },
        if p.layout == DiffLayout::SideBySide {
            "<strong>side by side</strong>".to_string()
        } else {
            format!("<a href=\"{}\">side by side</a>", h(split))
        }
    );
    if let Some(n) = &p.note {
        let _ = write!(out, "<p class=\"warn\">{}</p>", h(n));
    }
    if p.files.is_empty() {
        out.push_str("<p>No file changed.</p>");
    }
    for f in &p.files {
        if let Some(from) = f.old_path {
            let _ = write!(
                out,
                "<p class=\"muted\">Renamed from <code>{}</code></p>",
                h(from)
            );
        }
        if f.binary {
            let _ = write!(
                out,
                "<table class=\"diff\"><caption>{}</caption><tbody><tr><td class=\"note\">Binary \
                 or very large file; its diff is not shown.</td></tr></tbody></table>",
                h(f.path)
            );
        } else {
            out.push_str(&diff_html(f.path, f.old, f.new, p.layout));
        }
    }
    out.push_str("</section></main>");
    foot(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::nice_step;

    #[test]
    fn review_forms_post_with_the_csrf_field_and_escape_what_they_list() {
        use super::{run_review, workstream_review, ReviewEntry, ReviewForms};
        let mut r = ReviewForms {
            csrf: "c0ffee".into(),
            action_base: "/run/r/ws/a\"b".into(),
            left_out: None,
            followup: None,
            actions: vec![ReviewEntry {
                workstream_id: Some("<a>".into()),
                action: "leave-out".into(),
                who: "<script>x</script>".into(),
                at: "2026-12-07T10:00:00Z".into(),
                detail: "d & e".into(),
            }],
        };
        let mut out = String::new();
        workstream_review(&mut out, &r);
        assert!(out.contains("<form method=\"post\" action=\"/run/r/ws/a&quot;b/leave-out\">"));
        assert!(out.contains("<input type=\"hidden\" name=\"csrf\" value=\"c0ffee\">"));
        assert!(out.contains("action=\"/run/r/ws/a&quot;b/comments\""));
        assert!(out.contains("path:line: text"));
        assert!(out.contains("&lt;script&gt;x&lt;/script&gt;") && !out.contains("<script>"));
        assert!(out.contains("d &amp; e"));
        r.left_out = Some(("<b>".into(), "then".into()));
        let mut out = String::new();
        workstream_review(&mut out, &r);
        assert!(
            out.contains("Left out of the next <code>git ws-merge</code> by &lt;b&gt; at then.")
        );
        assert!(out.contains("/put-back\">") && !out.contains("/leave-out\">"));
        let mut out = String::new();
        run_review(&mut out, &r);
        assert!(out.contains("<code>&lt;a&gt;</code>") && out.contains("/dry-run\">"));
    }

    #[test]
    fn ticks_fall_on_round_steps() {
        assert_eq!(nice_step(0.7), 1.0);
        assert_eq!(nice_step(1.5), 2.0);
        assert_eq!(nice_step(3.0), 5.0);
        assert_eq!(nice_step(40.0), 50.0);
        assert_eq!(nice_step(0.0), 0.001);
    }
}
