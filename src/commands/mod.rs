//! One module per command, each holding that command's library-level logic: a clap-free
//! options struct and its entry function, the way the command line calls it (`cli/`
//! converts its flags into these options; the binaries only call `cli/`).
//!
//! - [`run`]: `git ws-run` (options, resolution, what a run starts from, the dry run); the
//!   engine it drives is [`crate::runner`].
//! - [`merge`]: `git ws-merge`, landing a run on an integration branch.
//! - [`report`]: `git ws-report`, listing runs and printing a run's sections.
//! - [`review`]: `git ws-review`, the local web server that shows runs and diffs.
//! - [`prune`]: `git ws-run --prune-worktrees` / `--prune-branches`.
//! - [`hooks`]: the post-merge hook: installing it (`git ws-run --install-hooks`) and what
//!   it records (`git ws-report --record-merges`).

pub mod hooks;
pub mod merge;
pub mod prune;
pub mod report;
pub mod review;
pub mod run;
