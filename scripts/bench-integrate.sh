#!/bin/sh
# `git ws-run --integrate --test` against the run then `git ws-merge --test`, side by side
# in one run: a backlog of N command workstreams (default 45) that each sleep WORK seconds
# (default 3) and add a file, one of which (ws-20, or the middle one of fewer) breaks the
# test, on 3 agents, with a test command that takes SLEEP seconds (default 1, standing for
# a real test suite). For
# each way it reports the time from the last agent finishing (the latest end_time in the
# database) to a tested integration branch (the command that makes it returns), and the
# test runs made after the last agent finished. Target for --integrate: at most one test
# run.
# Usage: scripts/bench-integrate.sh   (N=45 WORK=3 SLEEP=1 AGENTS=3 PROFILE=debug|release)
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
n=${N:-45}
work=${WORK:-3}
sleep_s=${SLEEP:-1}
agents=${AGENTS:-3}
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
culprit=$(printf 'ws-%02d' $((n > 20 ? 20 : n / 2)))
test="sleep $sleep_s; test ! -e added/$culprit.txt"

# A repository with the backlog: $1 is its directory.
backlog() {
  git init -q -b main "$1"
  mkdir -p "$1/src" "$1/workstreams"
  i=0
  while [ $i -lt "$n" ]; do
    k=$(printf '%02d' $i)
    printf 'file %s\n' "$k" > "$1/src/f$k.txt"
    printf '{"id": "ws-%s", "command": "sleep %s && printf \\"edited by ws-%s\\\\n\\" >> src/f%s.txt && mkdir -p added && echo new > added/ws-%s.txt"}\n' \
      "$k" "$work" "$k" "$k" "$k" > "$1/workstreams/ws-$k.json"
    i=$((i + 1))
  done
  (cd "$1" && git add src && git commit -qm base)
}

# "SECONDS|RUNS|LEFT-OUT": seconds from the run's last end_time to $2 (epoch seconds: when
# the tested integration branch was there), the test runs of the latest integration that
# started after the last end_time, and what it left out.
measure() {
  db=$1/.state/multi_agent_consolidated.db
  sqlite3 "$db" "
    WITH last AS (SELECT max(julianday(end_time)) AS t FROM agent_results),
         it AS (SELECT * FROM ws_integrations ORDER BY id DESC LIMIT 1)
    SELECT printf('%.2f', $2 - (last.t - 2440587.5) * 86400),
           (SELECT count(*) FROM ws_integration_tests x WHERE x.integration_id = it.id
              AND (x.started_at IS NULL OR julianday(x.started_at) >= last.t)),
           (SELECT group_concat(workstream_id || ' ' || reason, ', ') FROM ws_integration_steps s
              WHERE s.integration_id = it.id AND s.outcome = 'excluded')
    FROM it, last;"
}

echo "## $n workstreams (${work}s each, $culprit breaks the test) on $agents agents, a ${sleep_s}s test, $profile binaries, load $(cut -d' ' -f1 /proc/loadavg)"

backlog "$tmp/a"
start=$(date +%s.%N)
(cd "$tmp/a" && git ws-run --agents "$agents" -q --integrate --test "$test" >/dev/null 2>"$tmp/a.err") || true
end=$(date +%s.%N)
IFS='|' read -r secs runs left <<EOF2
$(measure "$tmp/a" "$end")
EOF2
printf -- '- ws-run --integrate --test: run %.1f s; last agent → tested integration branch %s s, %s test run(s) after the last agent, left out: %s\n' \
  "$(echo "$end - $start" | bc)" "$secs" "$runs" "${left:-nothing}"
total_a=$(sqlite3 "$tmp/a/.state/multi_agent_consolidated.db" "SELECT test_runs FROM ws_integrations ORDER BY id DESC LIMIT 1")

backlog "$tmp/b"
start=$(date +%s.%N)
(cd "$tmp/b" && git ws-run --agents "$agents" -q >/dev/null 2>&1) || true
(cd "$tmp/b" && git ws-merge --format json --test "$test" --jobs "$agents" >/dev/null 2>"$tmp/b.err") || true
end=$(date +%s.%N)
IFS='|' read -r secs runs left <<EOF2
$(measure "$tmp/b" "$end")
EOF2
printf -- '- ws-run, then ws-merge --test --jobs %s: both %.1f s; last agent → tested integration branch %s s, %s test run(s) after the last agent, left out: %s\n' \
  "$agents" "$(echo "$end - $start" | bc)" "$secs" "$runs" "${left:-nothing}"
echo "(--integrate made $total_a test runs in all, during the run, in spare pool worktrees)"
