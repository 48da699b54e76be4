#!/bin/sh
# Long loops of the agent worktree pool's reliability tests (the suite runs short ones):
#
#   scripts/stress.sh fresh 100        # 100 fresh repositories, 6 workstreams on 3 agents each
#   scripts/stress.sh consecutive 100  # 100 runs in a row in one repository, 9 workstreams
#   scripts/stress.sh crash 200        # 200 SIGKILLs of the coordinator at random instants,
#                                      # each followed by `git ws-run --resume latest`
#   scripts/stress.sh all 100          # all three
#
# Each loop counts every failure and reports them all at the end, e.g.
#   "fresh repositories: 0 spurious failure(s) in 100 runs"
#   "crash loop: 200 kills (…): 0 problem(s)"
# The crash loop prints its GIT_WS_CRASH_SEED; set it to replay the same kill instants.
set -eu
what=${1:-all}
n=${2:-100}
case "$what" in
    fresh) filters="pool::fresh_repositories" ;;
    consecutive) filters="pool::consecutive_runs" ;;
    crash) filters="pool::killed_at" ;;
    all) filters="pool::fresh_repositories pool::consecutive_runs pool::killed_at" ;;
    *) echo "usage: $0 [fresh|consecutive|crash|all] [N]" >&2; exit 2 ;;
esac
cd "$(dirname "$0")/.."
for f in $filters; do
    GIT_WS_LOOPS=$n cargo test --release --test integration -- --nocapture --test-threads 1 "$f" 2>&1 |
        grep -E "spurious failure|crash loop|^test |panicked|test result"
done
