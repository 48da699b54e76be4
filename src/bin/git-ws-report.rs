//! `git ws-report`: query recorded runs (see `git_ws::cli::report::ReportArgs`).

fn main() {
    std::process::exit(git_ws::cli::report::report_main());
}
