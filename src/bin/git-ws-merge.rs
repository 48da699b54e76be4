//! `git ws-merge`: land a run on an integration branch (see `git_ws::cli::merge::MergeArgs`).

fn main() {
    std::process::exit(git_ws::cli::merge::merge_main());
}
