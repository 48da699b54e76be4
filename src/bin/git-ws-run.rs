//! `git ws-run`: run the workstreams (see `git_ws::cli::RunArgs`).

fn main() {
    std::process::exit(git_ws::cli::run_main());
}
