//! Integration tests: real temporary git repositories, the real binaries on PATH (run as
//! `git ws-run` / `git ws-report` through git's dispatch), a real SQLite file, and a real
//! throwaway PostgreSQL cluster for the PostgreSQL backend.

mod agents;
mod boundaries;
mod cli_snapshots;
mod common;
mod environments;
mod inputs;
mod layers;
mod merge;
mod pg;
mod pgcluster;
mod pool;
mod queue;
mod reliability;
mod report;
mod run;
mod sql;
mod test_files;
