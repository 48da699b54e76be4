//! `git ws-review`: review runs in the browser (see `git_ws::cli::review::ReviewArgs`).

fn main() {
    std::process::exit(git_ws::cli::review::review_main());
}
