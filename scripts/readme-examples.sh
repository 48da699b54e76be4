#!/usr/bin/env bash
# The README's examples, made by the current code: builds fresh scratch repositories, runs
# the Quick start and the other examples with the git-ws binaries on PATH, normalizes what
# changes from one run to the next (run ids, times, durations, temporary paths, commit SHAs)
# into stable placeholders, and rewrites every block of README.md marked
#
#   <!-- example: NAME -->
#   ```…
#   (generated)
#   ```
#   <!-- /example -->
#
# Usage: scripts/readme-examples.sh [--check] [--bin DIR] [--readme FILE]
#   --bin DIR     where git-ws-run & co. are (default: target/debug, built if missing)
#   --check       change nothing: exit 1 with a diff when README.md is not what the code
#                 prints now (tests/integration/readme.rs runs this)
#   --readme FILE the README to rewrite or check (default: README.md)
# Needs git, perl and sh; runs offline in a few seconds.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$root/target/debug"
check=0
readme="$root/README.md"
while [ $# -gt 0 ]; do
  case "$1" in
    --check) check=1 ;;
    --bin) bin="$(cd "$2" && pwd)"; shift ;;
    --readme) readme="$2"; shift ;;
    -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "readme-examples.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
if [ ! -x "$bin/git-ws-run" ]; then
  if [ "$bin" = "$root/target/debug" ]; then
    (cd "$root" && cargo build --quiet --bins)
  else
    echo "readme-examples.sh: no git-ws-run in $bin" >&2
    exit 2
  fi
fi

scratch="$(mktemp -d "${TMPDIR:-/tmp}/readme-examples.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT
out="$scratch/out"
mkdir -p "$out" "$scratch/home" "$scratch/man"
# A newcomer's machine: nothing of the caller's git or git-ws configuration.
export HOME="$scratch/home" XDG_STATE_HOME="$scratch/home/.local/state"
export GIT_CONFIG_NOSYSTEM=1 NO_COLOR=1 COLUMNS=100 TZ=UTC LC_ALL=C
export PATH="$bin:$PATH"
unset GIT_WS_DATABASE_URL GIT_DIR GIT_WORK_TREE
export GIT_AUTHOR_DATE='2026-12-07T10:00:00Z' GIT_COMMITTER_DATE='2026-12-07T10:00:00Z'
git config --global user.name 'Ada Lovelace'
git config --global user.email ada@example.com
git config --global init.defaultBranch main
git config --global advice.detachedHead false
# The first use writes the man pages (or says once how to): not part of any example.
git-ws-run -h >/dev/null 2>&1 || true

# `show NAME CMD…`: append "$ CMD" and what it prints on stdout to example NAME; the exit
# status is kept in $status. `show2` shows stderr too (after stdout).
show() {
  local name="$1"; shift
  printf '$ %s\n' "$*" >>"$out/$name"
  set +e
  eval "$*" >>"$out/$name" 2>"$scratch/stderr"
  status=$?
  set -e
}
show2() {
  local name="$1"; shift
  printf '$ %s\n' "$*" >>"$out/$name"
  set +e
  eval "$*" >>"$out/$name" 2>&1
  status=$?
  set -e
}
# `file NAME PATH`: example NAME is the file at PATH.
file() { cat "$2" >"$out/$1"; }
latest() { git ws-report --format json | perl -ne 'print $1 and exit if /"run_id":\s*"([^"]+)"/'; }
fail() { echo "readme-examples.sh: $*" >&2; exit 1; }

# ---------------------------------------------------------------- the Quick start
mkdir -p "$scratch/me" && cd "$scratch/me"
git init -q project && cd project
printf '# project\n' >README.md
cat >test.sh <<'EOF'
#!/bin/sh
# The project's tests: the README has a title, and hello.sh (once there) says hello.
passed=0 failed=0
check() { if sh -c "$1"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: $1"; fi; }
check "grep -q '^# ' README.md"
if [ -f hello.sh ]; then check "sh hello.sh | grep -qx hello"; fi
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
EOF
git add . && git commit -qm 'a project'
mkdir workstreams
cat >workstreams/hello.json <<'EOF'
{
  "id": "hello",
  "title": "Add a hello script",
  "command": "printf 'echo hello\\n' > hello.sh",
  "test": "sh test.sh"
}
EOF
cat >workstreams/greet.json <<'EOF'
{
  "id": "greet",
  "title": "Greet the reader in the README",
  "prompt": "Add a line greeting the reader to README.md."
}
EOF
cat >"$HOME/my-agent" <<'EOF'
#!/bin/sh
# A stand-in for a coding agent, so the example runs offline: the prompt comes on stdin
# (and in $WS_PROMPT); it edits files in its worktree and leaves committing to git-ws.
echo "prompt: $(cat)"
echo 'Hello, reader!' >> README.md
EOF
chmod +x "$HOME/my-agent"
file quickstart-test test.sh
file quickstart-hello workstreams/hello.json
file quickstart-greet workstreams/greet.json
file quickstart-agent "$HOME/my-agent"
git add workstreams && git commit -qm 'two workstreams'
git config ws.agentCommand '~/my-agent'

show quickstart-dry-run git ws-run --dry-run
[ "$status" = 0 ] || fail "the Quick start's dry run exited $status"
show quickstart-run git ws-run --agents 2
[ "$status" = 0 ] || fail "the Quick start's run exited $status: $(cat "$scratch/stderr")"
run="$(latest)"
show quickstart-report git ws-report "$run"
show quickstart-merge git ws-merge "$run" --test "'sh test.sh'"
[ "$status" = 0 ] || fail "the Quick start's ws-merge exited $status: $(cat "$scratch/stderr")"
git ws-run --install-hooks >/dev/null
show2 quickstart-land git merge --ff-only -q "ws/$run/integration"
[ "$status" = 0 ] || fail "the Quick start's merge exited $status"
show quickstart-worktrees git worktree list
show quickstart-worktrees "git worktree list --porcelain | grep locked"

# ------------------------------------------- a failure, its rerun, and landing both
cd "$scratch/me" && git init -q rerun && cd rerun
printf '# rerun\n' >README.md
git add . && git commit -qm 'a project'
mkdir workstreams
printf '{"id": "docs", "command": "echo docs > docs.txt"}\n' >workstreams/docs.json
# `fix` fails until the flag is there (what a fix of its prompt or command would do).
printf '{"id": "fix", "command": "test -f %s/flag && echo fixed > fix.txt"}\n' "$scratch" \
  >workstreams/fix.json
git add workstreams && git commit -qm 'workstreams'
git ws-run -q --agents 2 >/dev/null 2>&1 && fail "the rerun example's first run should fail"
first="$(latest)"
touch "$scratch/flag"
show rerun-land git ws-run -q --rerun-failed "$first"
[ "$status" = 0 ] || fail "the rerun exited $status"
rerun="$(latest)"
[ "$rerun" != "$first" ] || fail "--rerun-failed made no new run"
show rerun-land git ws-merge -q "$first"
show rerun-land git ws-merge -q "$rerun" --onto "ws/$first/integration"
show rerun-land git merge --ff-only -q "ws/$rerun/integration"
show rerun-land git log --first-parent --format=%s
[ -f docs.txt ] && [ -f fix.txt ] || fail "landing the run and its rerun lost work"

# ----------------------------------------------- ws-merge: a conflict, a pair that breaks
cd "$scratch/me" && git init -q merge && cd merge
printf 'VERSION=0.1.0\n' >version.sh
printf 'echo wrap\n' >wrap.sh
cat >test.sh <<'EOF'
#!/bin/sh
# Every script the docs mention exists.
for f in $(grep -o '[a-z]*\.sh' docs.md 2>/dev/null); do [ -f "$f" ] || exit 1; done
EOF
git add . && git commit -qm 'a project'
mkdir workstreams
printf '{"id": "hotfix", "command": "printf %s > version.sh"}\n' "'VERSION=0.1.1\\n'" \
  >workstreams/hotfix.json
printf '{"id": "release", "command": "printf %s > version.sh && echo notes > NOTES"}\n' \
  "'VERSION=0.2.0\\n'" >workstreams/release.json
printf '{"id": "docs", "command": "echo \\"Run wrap.sh to wrap.\\" > docs.md"}\n' \
  >workstreams/docs.json
printf '{"id": "drop-wrap", "command": "git rm -q wrap.sh"}\n' >workstreams/drop-wrap.json
git add workstreams && git commit -qm 'workstreams'
git ws-run -q --agents 1 >/dev/null
show2 merge-example git ws-merge --test "'sh test.sh'" --jobs 1
[ "$status" = 1 ] || fail "the ws-merge example exited $status, not 1"
show report-example git ws-report latest --format markdown

# ------------------------------------------- the JSON contract: one fails, with a stray field
cd "$scratch/me" && git init -q json && cd json
printf '# json\n' >README.md
git add . && git commit -qm 'a project'
mkdir workstreams
printf '{"id": "docs", "title": "Write the docs", "command": "echo docs > docs.md"}\n' \
  >workstreams/docs.json
printf '{"id": "build", "title": "Build it", "command": "echo building; exit 3", "labels": ["ci"]}\n' \
  >workstreams/build.json
git add workstreams && git commit -qm 'workstreams'
git ws-run -q --agents 1 >/dev/null 2>&1 && fail "the JSON example's run should fail"
show json-example git ws-report latest --format json

# ----------------------- integrate as you go, a conflict handed back to its agent (--fix-up)
cd "$scratch/me" && git init -q integrate && cd integrate
printf '# txtkit\n\nSmall text tools.\n' >README.md
git add . && git commit -qm 'a project'
mkdir workstreams
printf '{"id": "tagline-short", "prompt": "Make the README title read `# txtkit: small text tools`."}\n' \
  >workstreams/tagline-short.json
printf '{"id": "tagline-tested", "prompt": "Make the README title read `# txtkit (tested)`."}\n' \
  >workstreams/tagline-tested.json
git add workstreams && git commit -qm 'workstreams'
cat >"$HOME/title-agent" <<'EOF'
#!/bin/sh
# Sets README.md's title line to the one the prompt quotes. A fix-up (<id>~fixK) starts from
# the integration's title: it keeps it and adds its own side's words, read from the
# conflict hunk in its prompt (the line after =======).
prompt=$(cat)
title=$(head -n 1 README.md)
case $WS_ID in
*~fix*) mine=$(printf '%s\n' "$prompt" | awk '/^=======$/ { getline; print; exit }')
        new="$title${mine#'# txtkit'}" ;;
*) new=$(printf '%s\n' "$prompt" | sed -n 's/.*`\(# [^`]*\)`.*/\1/p') ;;
esac
{ printf '%s\n' "$new"; tail -n +2 README.md; } >README.new && mv README.new README.md
EOF
chmod +x "$HOME/title-agent"
git config ws.agentCommand '~/title-agent'
show run-integrate-fixup git ws-run -q --agents 1 --integrate --fix-up 1
[ "$status" = 0 ] || fail "the --integrate --fix-up example exited $status: $(cat "$scratch/stderr")"
show run-integrate-fixup git ws-report latest --integration
title="$(git show "ws/$(latest)/integration:README.md" | head -n 1)"
[ "$title" = '# txtkit: small text tools (tested)' ] ||
  fail "the --integrate --fix-up example integrated the title '$title'"

# ------------------------------------------------------------------- normalize, rewrite
# Run ids, in order of appearance, become ma-run-20261207-1015NN; then times, durations,
# temporary paths and SHAs (each distinct commit one stable fake, short forms its prefix).
cd "$root"
if [ -n "${RAW_EXAMPLES:-}" ]; then rm -rf "$RAW_EXAMPLES"; cp -r "$out" "$RAW_EXAMPLES"; fi
SCRATCH="$scratch" perl -0777 -i -pe '
  BEGIN { our (%run, %sha, %nrun, $nsha); }
  my $s = $_;
  # Tables (a header, a line of dashes per column, rows to a blank line): cut into cells
  # at the columns of the dashes, so they are aligned again once normalized.
  my @l = split /\n/, $s, -1;
  for (my $i = 1; $i < @l; $i++) {
    next unless $l[$i] =~ /^-+(?:  -+)+$/;
    my @cols; while ($l[$i] =~ /-+/g) { push @cols, [$-[0], $+[0] - $-[0]] }
    my $cut = sub { my $x = shift; join "\x1f", map { my $c = $_->[0] >= length $x ? "" : substr($x, $_->[0], $_ == $cols[-1] ? length($x) : $_->[1]); $c =~ s/\s+$//; $c } @cols };
    $l[$i - 1] = $cut->($l[$i - 1]);
    $l[$i] = "\x1e";
    for (my $j = $i + 1; $j < @l && $l[$j] ne ""; $j++) { $l[$j] = $cut->($l[$j]) }
  }
  $s = join "\n", @l;
  my $tmp = $ENV{SCRATCH};
  $s =~ s{\Q$tmp\E/me}{/home/me}g;
  $s =~ s{\Q$tmp\E/home}{/home/me}g;
  $s =~ s{\Q$tmp\E}{/tmp/scratch}g;
  # Each repository has its own ids (two may be equal): a range of placeholders each.
  my ($group) = $ARGV =~ m{([a-z]+)-[^/]*$};
  my $hour = { quickstart => "10", rerun => "11", merge => "12" }->{$group} // "13";
  $s =~ s{ma-run-\d{8}-\d{6}(?:-\d+)?(?!\d)}{ $run{"$group $&"} //= sprintf("ma-run-20261207-%s15%02d", $hour, 10 * $nrun{$group}++); $run{"$group $&"} }ge;
  $s =~ s/\b\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\b/2026-12-07 10:15:00 UTC/g;
  $s =~ s/(\| [\d.]+m?s \| )\d+\.\d%( \| )/${1}90.0%$2/g;
  $s =~ s/\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)?/2026-12-07T10:15:00Z/g;
  $s =~ s/\bintegration-\d{8}-\d{6}(?:\.\d+)?/integration-20261207-101530.000/g;
  $s =~ s/\b1[78]\d{11}\b/1796638500000/g;
  my %num = (seconds => "0.35", speedup => "1.8", utilisation => "0.9", avg_duration => "0.35");
  $s =~ s{("(\w*?(seconds|speedup|utilisation|avg_duration)\w*)":\s*)-?\d+(?:\.\d+)?(?:[eE]-?\d+)?}{$1$num{$3}}g;
  $s =~ s/\b(?!0ms)\d+(?:\.\d+)?ms\b/350ms/g;
  $s =~ s/\b\d+\.\d+s\b/1.2s/g;
  $s =~ s/\b\d+(?:\.\d+)?x\b/1.8x/g;
  # A SHA is a token of 7 to 40 hex digits (digits only too: one short SHA in 27 is), but
  # not part of a longer name (a run id, a path) nor the placeholder time of the timeline.
  $s =~ s{(?<![\w-])(?<!\w\.)[0-9a-f]{7,40}(?![\w-])(?!\.\w)}{
    my $h = $&;
    if ($h ne "1796638500000") {
      # The same commit as a SHA seen before, shorter or longer: its fake, else a new one.
      my ($seen) = sort { length($b) <=> length($a) || $a cmp $b }
        grep { index($_, $h) == 0 || index($h, $_) == 0 } keys %sha;
      $sha{$h} //= defined $seen ? $sha{$seen}
        : unpack("H*", pack("N*", map { (++$nsha * 2654435761 + $_ * 40503) % 4294967296 } 1..5));
      substr($sha{$h}, 0, length $h);
    } else { $h }
  }ge;
  # The tables again: rows sorted by their first cell (two agents starting at once make
  # a tie of the start times that orders them), columns as wide as their widest cell.
  @l = split /\n/, $s, -1;
  for (my $i = 1; $i < @l; $i++) {
    next unless $l[$i] eq "\x1e";
    my $j = $i + 1; $j++ while $j < @l && $l[$j] ne "";
    my @rows = map { [split /\x1f/, $_, -1] } ($l[$i - 1], sort { (split /\x1f/, $a)[0] cmp (split /\x1f/, $b)[0] } @l[$i + 1 .. $j - 1]);
    my @w; for my $r (@rows) { for my $k (0 .. $#$r) { my $n = length $r->[$k]; $w[$k] = $n if !defined $w[$k] || $n > $w[$k] } }
    my $fmt = sub { my $r = shift; my $x = join "  ", map { sprintf "%-*s", $w[$_], $r->[$_] // "" } 0 .. $#w; $x =~ s/\s+$//; $x };
    splice @l, $i - 1, $j - $i + 1, $fmt->($rows[0]), join("  ", map { "-" x $_ } @w), map { $fmt->($_) } @rows[1 .. $#rows];
  }
  $s = join "\n", @l;
  $_ = $s;
' "$out"/*
if [ -n "${SHOW_EXAMPLES:-}" ]; then
  for f in "$out"/*; do printf '==== %s\n' "${f##*/}"; cat "$f"; done
fi

new="$scratch/README.new"
OUT="$out" perl -e '
  my ($in) = @ARGV; open my $f, "<", $in or die "$in: $!"; local $/; my $t = <$f>;
  my %seen;
  $t =~ s{(<!-- example: ([\w-]+) -->\n(`{3,})[^\n]*\n)(?:.*?\n)??(\3\n<!-- /example -->)}{
    my ($head, $name, $tail) = ($1, $2, $4);
    my $p = "$ENV{OUT}/$name";
    open my $g, "<", $p or die "README.md: no example named $name (scripts/readme-examples.sh makes none)\n";
    my $body = <$g>; $body =~ s/\n+\z//; $seen{$name} = 1;
    "$head$body\n$tail";
  }gse;
  opendir my $d, $ENV{OUT}; for (sort readdir $d) { next if /^\./; warn "README.md: example $_ is not used\n" unless $seen{$_} }
  print $t;
' "$readme" >"$new"

if [ "$check" = 1 ]; then
  if ! diff -u "$readme" "$new"; then
    echo "README.md's examples differ from what the code prints now: run scripts/readme-examples.sh" >&2
    exit 1
  fi
  echo "README.md's examples are what the code prints"
else
  if cmp -s "$readme" "$new"; then
    echo "README.md's examples are up to date"
  else
    cp "$new" "$readme"
    echo "README.md's examples rewritten"
  fi
fi
