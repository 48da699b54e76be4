#!/bin/sh
# `git ws-merge --test` with K slots against one at a time, side by side in one run:
# a real `git ws-run` of 44 one-line workstreams, two of which (ws-10 and ws-30) break the
# test only together (one culprit), and a test command that takes SLEEP seconds (default
# 1, standing for a real test suite). For each of --jobs 1 and --jobs K (default 3), REPS
# times (default 1, alternating): the wall time, the test runs and the batches (rounds of
# parallel tests), and the culprit found.
# Usage: scripts/bench-parallel-merge.sh [K]   (SLEEP=1 REPS=1 PROFILE=debug|release)
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
k=${1:-3}
sleep_s=${SLEEP:-1}
reps=${REPS:-1}
profile=${PROFILE:-debug}
if [ "$profile" = release ]; then
  (cd "$root" && cargo build --release --bins -q)
else
  (cd "$root" && cargo build --bins -q)
fi
bins=$root/target/$profile
tmp=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$tmp"' EXIT
export HOME="$tmp" GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1 PATH="$bins:$PATH"
export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@example.com
export GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@example.com
unset GIT_WS_DATABASE_URL GIT_DIR GIT_WORK_TREE 2>/dev/null || true
git init -q -b main "$tmp/repo"
cd "$tmp/repo"
mkdir -p src workstreams
i=0
while [ $i -lt 44 ]; do
  n=$(printf '%02d' $i)
  printf 'file %s\n' "$n" > "src/f$n.txt"
  printf '{"id": "ws-%s", "command": "printf \\"edited by ws-%s\\\\n\\" >> src/f%s.txt && mkdir -p added && echo new > added/ws-%s.txt"}\n' \
    "$n" "$n" "$n" "$n" > "workstreams/ws-$n.json"
  i=$((i + 1))
done
git add src && git commit -qm base
git ws-run --agents 3 -q >/dev/null
test="sleep $sleep_s; ! { [ -e added/ws-10.txt ] && [ -e added/ws-30.txt ]; }"
echo "## git ws-merge --test on 44 merges, one culprit (ws-30 with ws-10), a ${sleep_s}s test, $profile binaries, load $(cut -d' ' -f1 /proc/loadavg)"
r=0
while [ $r -lt "$reps" ]; do
  for jobs in 1 "$k"; do
    start=$(date +%s.%N)
    git ws-merge --format json --test "$test" --jobs "$jobs" >"$tmp/out.json" 2>"$tmp/err.txt" || true
    end=$(date +%s.%N)
    runs=$(grep -o '"test_runs": *[0-9]*' "$tmp/out.json" | grep -o '[0-9]*$')
    culprit=$(grep -B1 '"reason": *"breaks-tests"' "$tmp/out.json" | grep -o 'ws-[0-9]*' | head -n 1)
    batches=$(grep -o 'in [0-9]* batches' "$tmp/err.txt" | grep -o '[0-9]*' || echo "$runs")
    printf -- '- --jobs %s: %.2f s wall, %s test runs in %s batches, culprit %s\n' \
      "$jobs" "$(echo "$end - $start" | bc)" "$runs" "$batches" "$culprit"
  done
  r=$((r + 1))
done
