#!/bin/sh
# The merge engine against git itself, at length (not part of `cargo test`):
#   1. GIT_WS_DIFF_SEEDS generated scenarios (default 20) of GIT_WS_DIFF_BRANCHES branches
#      (default 30), every pair in both orders, against every git found (PATH,
#      /usr/local/bin/git, /usr/bin/git);
#   2. with GIT_WS_DIFF_REPO=<a git repository>, realistic edits of that project's HEAD
#      (function edits, changelog entries, renames, deletes, new files), the same way.
# Usage: scripts/forecast-differential.sh [path/to/a/real/repository]
set -eu
cd "$(dirname "$0")/.."
if [ $# -gt 0 ]; then
  GIT_WS_DIFF_REPO=$(cd "$1" && pwd)
  export GIT_WS_DIFF_REPO
fi
cargo test --release --lib differential_many_seeds -- --ignored --nocapture 2>&1 | grep -E "ordered pairs|disagree|panicked|^seed"
if [ -n "${GIT_WS_DIFF_REPO:-}" ]; then
  cargo test --release --lib differential_real_repository -- --ignored --nocapture 2>&1 | grep -E "ordered pairs|panicked|engine"
fi
