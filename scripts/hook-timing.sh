#!/bin/sh
# Time the post-merge hook's work (`git-ws-report --record-merges`, which finds merged,
# squashed and cherry-picked ws/ branches) on the demo repository.
# Builds the release binaries, runs the demo into a temporary directory, then, in order:
# a real `git merge --no-ff` of one completed workstream, a `git merge --squash` of another
# (the hook runs while the squash is staged) and its commit, a cherry-pick of a third; after
# each it runs the hook command 21 times and prints the median wall time in milliseconds.
# Usage: scripts/hook-timing.sh
set -eu
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin git-ws-run --bin git-ws-report
PATH="$(pwd)/target/release:$PATH"
export PATH
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1
export GIT_AUTHOR_NAME=T GIT_AUTHOR_EMAIL=t@t GIT_COMMITTER_NAME=T GIT_COMMITTER_EMAIL=t@t
sh fixtures/demo/run-demo.sh --no-install "$tmp/demo" >/dev/null 2>&1 || true
cd "$tmp/demo"
git-ws-run --install-hooks >/dev/null
branches=$(git for-each-ref --format='%(refname:short)' refs/heads/ws/ | head -n 40)
echo "ws/ branches: $(git for-each-ref refs/heads/ws/ | wc -l)"

median_ms() {
    i=0
    : >"$tmp/times"
    while [ $i -lt 21 ]; do
        s=$(date +%s%N)
        git-ws-report --record-merges >/dev/null 2>&1 || true
        e=$(date +%s%N)
        echo $(((e - s) / 1000)) >>"$tmp/times"
        i=$((i + 1))
    done
    sort -n "$tmp/times" | sed -n 11p | awk '{ printf "%.1f", $1 / 1000 }'
}

completed=$(git-ws-report latest | awk '$3 == "completed" { print $1 }')
used=
pick() { # a completed workstream's branch, not used yet, that merges cleanly onto HEAD
    for id in $completed; do
        b=$(git for-each-ref --format='%(refname:short)' "refs/heads/ws/*/$id" | head -n 1)
        [ -n "$b" ] || continue
        case " $used " in *" $b "*) continue ;; esac
        git merge-tree --write-tree HEAD "$b" >/dev/null 2>&1 && { echo "$b"; return; }
    done
}

echo "before any merge: $(median_ms) ms"
b=$(pick); used="$used $b"; git merge -q --no-ff -m "merge $b" "$b" | sed 's/^/  hook: /'
echo "after git merge --no-ff $b: $(median_ms) ms"
b=$(pick); used="$used $b"; git merge -q --squash "$b" 2>&1 | sed 's/^/  git and hook: /'
echo "while the squash of $b is staged: $(median_ms) ms"
git commit -qm "squash $b"
echo "after committing it: $(median_ms) ms"
b=$(pick); used="$used $b"
for c in $(git rev-list --reverse "HEAD..$b"); do
    git cherry-pick "$c" >/dev/null 2>&1 || { git cherry-pick --abort 2>/dev/null || true; }
done
echo "after cherry-picking $b: $(median_ms) ms"
echo "recorded as merged: $(git-ws-report latest 2>/dev/null | grep -o 'merged: [0-9]* of [0-9]* completed branches')"
