//! Integration tests: real temporary git repositories, the real binaries on PATH (run as
//! `git ws-run` / `git ws-report` through git's dispatch), a real SQLite file, and a real
//! throwaway PostgreSQL cluster for the PostgreSQL backend.

mod agents;
mod boundaries;
mod cli_snapshots;
mod colour;
mod common;
mod containment;
mod environments;
mod faults;
mod fixup;
mod help;
mod inputs;
mod integrate_run;
mod kills;
mod layers;
mod merge;
mod model_server;
mod pause;
mod pg;
mod pg_tls;
mod pgcluster;
mod pool;
mod queue;
mod readme;
mod real_agents;
mod reliability;
mod report;
mod review;
mod run;
mod sandbox;
mod signals;
mod sql;
mod stacked;
mod test_files;
