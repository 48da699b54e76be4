#!/bin/sh
# The incremental rebuild time of a one-line change: appends one line of code to FILE (an
# unused constant, so the crate's code really changes), runs
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
echo "the crates a change to $file rebuilds:"
printf '#[allow(dead_code)]\nconst REBUILD_TIME_0: u32 = 0;\n' >>"$file"
cargo build --locked -v 2>&1 | sed -n 's/^ *Compiling \([^ ]*\) .*/  \1/p'
times=""
i=1
while [ "$i" -le "$reps" ]; do
    printf '#[allow(dead_code)]\nconst REBUILD_TIME_%s: u32 = %s;\n' "$i" "$i" >>"$file"
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
