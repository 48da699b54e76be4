#!/bin/sh
# sandbox-ratio.sh [PAIRS] — whole-run cost of the sandbox: warm `git ws-run` of 12 committing
# workstreams on 3 agents, alternating ws.sandbox=auto and ws.sandbox=off PAIRS times (8 by
# default) in one throwaway repository, then the medians and their ratio. Uses the git-ws
# binaries on PATH (e.g. after `sh fixtures/demo/run-demo.sh`).
set -eu
pairs=${1:-8}
dir=$(mktemp -d)
trap 'rm -rf "$dir" "$dir.ws-pool" "$(dirname "$dir")/.$(basename "$dir").ws-pool"' EXIT
cd "$dir"
git init -q
git config user.email bench@example.com
git config user.name bench
i=1
while [ $i -le 200 ]; do echo "line $i" >"f$i.txt"; i=$((i + 1)); done
mkdir workstreams
i=1
while [ $i -le 12 ]; do
    printf '{"id":"w%s","command":"echo change >> f%s.txt; git add -A; git commit -qm w%s"}\n' $i $i $i >"workstreams/w$i.json"
    i=$((i + 1))
done
git add -A
git commit -qm init
git ws-run -q --agents 3 >/dev/null 2>&1 || true # warm the pool
n=1
while [ $n -le "$pairs" ]; do
    for mode in auto off; do
        git config ws.sandbox $mode
        s=$(date +%s%N)
        git ws-run -q --agents 3 >/dev/null 2>&1 || { echo "git ws-run failed ($mode)" >&2; exit 1; }
        e=$(date +%s%N)
        echo "$mode $(((e - s) / 1000000))"
    done
    n=$((n + 1))
done | python3 -c '
import statistics, sys
d = {}
for line in sys.stdin:
    mode, ms = line.split()
    d.setdefault(mode, []).append(int(ms))
for mode, v in d.items():
    print(f"ws.sandbox={mode}: median {statistics.median(v):.0f} ms over {len(v)} runs (min {min(v)}, max {max(v)})")
ratio = statistics.median(d["auto"]) / statistics.median(d["off"])
print(f"ratio auto/off: {ratio:.3f}")
'
