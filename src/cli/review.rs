//! `git ws-review`'s front end: its clap definition and the conversion into
//! [`ReviewOptions`] (the server itself is [`crate::commands::review`]).

use crate::commands::review::{Review, ReviewOptions};
use crate::db::DbLocation;
use crate::error::EXIT_NOTHING_RAN;
use clap::Parser;
use std::io::Write as _;

/// Review runs in the browser: a local web server (127.0.0.1 only, a random token in the
/// URL) showing the runs, each run's summary, timeline, overlaps, conflicts and
/// integration, and every workstream's commits, diffs and log. A live run's pages update
/// as results are recorded. Pages run no script and load nothing from elsewhere. Forms on the
/// pages leave a workstream out of (or put it back into) the next `git ws-merge`, send batched
/// `path:line: text` comments back as one follow-up workstream `<id>~reviewN` (a live run
/// runs it before it ends; otherwise `git ws-run --resume RUN` runs it), and show the
/// `git ws-merge --dry-run` plan; every action is recorded with who and when.
#[derive(Debug, Parser)]
#[command(
    name = "git-ws-review",
    bin_name = "git ws-review",
    version,
    after_help = "Exit status: 130 stopped by Ctrl-C; 2 no database, a database that cannot be used, a port that cannot be bound, bad usage."
)]
pub struct ReviewArgs {
    /// Run to open first (`latest` works); without it, the list of runs
    pub run: Option<String>,
    /// Port on 127.0.0.1 [default: a free port]
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Open the page in the browser ($BROWSER, else xdg-open)
    #[arg(long)]
    pub open: bool,
    /// Database: an SQLite path or a postgres:// URL [default: env GIT_WS_DATABASE_URL, git
    /// config ws.database, else .state/multi_agent_consolidated.db at the repository root]
    #[arg(long, value_name = "PATH|URL")]
    pub db: Option<DbLocation>,
    #[command(flatten)]
    pub docs: super::docs::DocsArgs,
}

/// The `git-ws-review` binary: print the URL, then serve until stopped.
pub fn review_main() -> i32 {
    let args: ReviewArgs = super::docs::parse();
    if let Some(code) = args.docs.run("git ws-review") {
        return code;
    }
    // Started through git's wrapper: when the wrapper dies, so does the server.
    // SAFETY: prctl with PR_SET_PDEATHSIG and a signal number has no memory effects.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) };
    let cwd = match std::env::current_dir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("git ws-review: failed to read the current directory: {e}");
            return EXIT_NOTHING_RAN;
        }
    };
    let opts = ReviewOptions {
        cwd,
        run: args.run.clone(),
        port: args.port,
        db: args.db.clone(),
    };
    let server = match Review::bind(&opts) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("git ws-review: {}", crate::text::clean(&e.to_string()));
            return e.exit_code();
        }
    };
    let url = server.url(opts.run.as_deref());
    // Whoever reads the URL may stop reading: a closed stdout never stops the server.
    let mut out = std::io::stdout();
    let _ = writeln!(out, "git ws-review: serving on {url}");
    let _ = writeln!(
        out,
        "(127.0.0.1 only; the token in the URL is needed once per browser session; Ctrl-C stops)"
    );
    let _ = out.flush();
    if args.open {
        let opener = std::env::var("BROWSER").unwrap_or_else(|_| "xdg-open".to_string());
        if let Err(e) = std::process::Command::new(&opener)
            .arg(&url)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
        {
            eprintln!("git ws-review: failed to start {opener} (--open): {e}; open the URL above");
        }
    }
    server.serve()
}
