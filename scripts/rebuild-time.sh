#!/bin/sh
# The incremental rebuild time of a one-line change: appends a comment line to FILE, runs
# `cargo build --locked` (the library and the three binaries, dev profile) and prints the
# seconds it took, REPS times; then the median. The file is restored at the end.
#   sh scripts/rebuild-time.sh crates/report/src/markdown.rs 5
# Run it from the root of a checkout whose target/ is warm (one `cargo build` first).
set -eu
file=${1:?usage: rebuild-time.sh FILE [REPS]}
reps=${2:-5}
[ -f "$file" ] || { echo "rebuild-time.sh: no such file: $file" >&2; exit 2; }
backup=$(mktemp)
cp "$file" "$backup"
trap 'cp "$backup" "$file"; rm -f "$backup"' EXIT
cargo build --locked -q
times=""
i=1
while [ "$i" -le "$reps" ]; do
    printf '// rebuild-time %s\n' "$i" >>"$file"
    start=$(date +%s.%N)
    cargo build --locked -q
    end=$(date +%s.%N)
    t=$(awk "BEGIN { printf \"%.2f\", $end - $start }")
    echo "run $i: ${t}s"
    times="$times $t"
    i=$((i + 1))
done
median=$(printf '%s\n' $times | sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}')
echo "median of $reps: ${median}s ($file)"
