#!/bin/sh
# The merge engine against git itself, at length (not part of `cargo test`):
#   1. GIT_WS_DIFF_SEEDS generated scenarios (default 20) of GIT_WS_DIFF_BRANCHES branches
#      (default 30), every pair in both orders, against every git found (PATH,
#      /usr/local/bin/git, /usr/bin/git); then as many scenarios of a repository whose
#      checked-out .gitattributes give each file its own merge (union, binary, -merge,
#      text, the binary macro, a configured driver that succeeds and one that fails, an
#      unconfigured driver, conflict-marker-size), clean merged trees compared too, and
#      counted per attributed file;
#   2. with GIT_WS_DIFF_REPO=<a git repository>, realistic edits of that project's HEAD
#      (function edits, changelog entries, renames, deletes, new files; files its
#      .gitattributes give a merge attribute are edited as often as the biggest ones),
#      checked out so that its .gitattributes apply, the same way, with the precision and
#      recall of the engine's conflict prediction against git.
# GIT_WS_DIFF_PROFILE=debug runs the tests unoptimised (no release build).
# Usage: scripts/forecast-differential.sh [path/to/a/real/repository]
set -eu
cd "$(dirname "$0")/.."
if [ $# -gt 0 ]; then
  GIT_WS_DIFF_REPO=$(cd "$1" && pwd)
  export GIT_WS_DIFF_REPO
fi
profile=--release
if [ "${GIT_WS_DIFF_PROFILE:-release}" = debug ]; then
  profile=
fi
cargo test $profile -p ws-git --lib differential_many_seeds -- --ignored --nocapture 2>&1 | grep -E "ordered pairs|disagree|panicked|^seed|^attributes seed"
cargo test $profile -p ws-git --lib differential_per_attribute -- --ignored --nocapture 2>&1 | grep -E "per attribute|panicked"
if [ -n "${GIT_WS_DIFF_REPO:-}" ]; then
  cargo test $profile -p ws-git --lib differential_real_repository -- --ignored --nocapture 2>&1 | grep -E "ordered pairs|panicked|engine|merge attribute"
fi
