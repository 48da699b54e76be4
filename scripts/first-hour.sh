#!/usr/bin/env bash
# A newcomer's first hour, scripted (issue 22): a fresh scratch repository (a small Python
# project), the git-ws binaries on PATH under a prefix of their own with NO man pages
# installed (HOME and MANPATH temporary, PATH without ~/.cargo/bin), and each step the issue
# names, checked to behave as described. Prints a transcript (each step: the command, its
# key output lines, PASS or FAIL) and exits 1 if any step failed.
#
# Usage: scripts/first-hour.sh [--bin DIR] [--keep]
#   --bin DIR  where git-ws-run & co. are (default: target/debug, built if missing); they
#              are hard-linked (else copied) into <scratch>/prefix/bin, as an install would
#   --keep     keep the scratch directory (its path is printed)
# FIRST_HOUR_SIGINT_LOOPS (default 3): how many Ctrl-Cs through `git ws-run` to try.
# Needs git, python3 and man (the --help step is skipped without man).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$root/target/debug"
keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) bin="$(cd "$2" && pwd)"; shift ;;
    --keep) keep=1 ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "first-hour.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
if [ ! -x "$bin/git-ws-run" ]; then
  if [ "$bin" = "$root/target/debug" ]; then (cd "$root" && cargo build --quiet --bins); else
    echo "first-hour.sh: no git-ws-run in $bin" >&2; exit 2
  fi
fi
S="$(mktemp -d "${TMPDIR:-/tmp}/first-hour.XXXXXX")"
if [ "$keep" = 1 ]; then echo "scratch: $S"; else trap 'rm -rf "$S"' EXIT; fi
T="$S/t"
mkdir -p "$S/prefix/bin" "$S/home" "$S/empty-man" "$T"
for b in git-ws-run git-ws-report git-ws-merge git-ws-review; do
  ln "$bin/$b" "$S/prefix/bin/$b" 2>/dev/null || cp "$bin/$b" "$S/prefix/bin/$b"
done
export HOME="$S/home" XDG_STATE_HOME="$S/home/.local/state" GIT_CONFIG_NOSYSTEM=1
export PATH="$S/prefix/bin:/usr/local/bin:/usr/bin:/bin" MANPATH="$S/empty-man"
export MANPAGER=cat PAGER=cat LC_ALL=C.UTF-8 COLUMNS=200
unset NO_COLOR GIT_WS_DATABASE_URL GIT_DIR GIT_WORK_TREE
git config --global user.name 'New Comer'
git config --global user.email new@example.com
git config --global init.defaultBranch main
git config --global advice.detachedHead false

pass=0 failed=0 failures=""
step() { printf '\n== %s\n' "$1"; STEP="$1"; }
# `run CMD…`: run it (eval), stdout in $T/out, stderr in $T/err, exit status in $code.
run() {
  printf '$ %s\n' "$*"
  set +e; eval "$*" >"$T/out" 2>"$T/err"; code=$?; set -e
  printf '  (exit %s)\n' "$code"
}
# `key PATTERN [N]`: show up to N (3) lines of the output matching PATTERN.
key() { grep -hE -- "$1" "$T/out" "$T/err" | head -"${2:-3}" | cut -c1-220 | sed 's/^/  | /' || true; }
# `ok CONDITION WHAT`: PASS when CONDITION (a shell test) holds, else FAIL with the output.
ok() {
  if eval "$1"; then
    printf '  PASS: %s\n' "$2"; pass=$((pass + 1))
  else
    printf '  FAIL: %s\n' "$2"; failed=$((failed + 1)); failures="$failures
  $STEP: $2"
    cat "$T/out" "$T/err" | head -25 | cut -c1-220 | sed 's/^/  ! /'
  fi
}
has() { grep -qE -- "$1" "$T/out" "$T/err"; }
hasnt() { ! grep -qE -- "$1" "$T/out" "$T/err"; }
latest() { git ws-report --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["run_id"])'; }
json() { python3 -c "import json,sys; d=json.load(open('$T/out')); print($1)"; }

# ------------------------------------------------------------------ a small Python project
cd "$S" && git init -q textkit && cd textkit
mkdir -p textkit tests
printf 'def slug(s):\n    return s.lower().replace(" ", "-")\n' >textkit/__init__.py
: >tests/__init__.py
cat >tests/test_slug.py <<'EOF'
import unittest
from textkit import slug

class SlugTest(unittest.TestCase):
    def test_lower(self):
        self.assertEqual(slug("A B"), "a-b")
    def test_plain(self):
        self.assertEqual(slug("ab"), "ab")
EOF
printf '# textkit\n' >README.md
git add . && git commit -qm 'textkit'

step "1. Help without a man page: -h works and the first use writes the man pages"
run git ws-run -h
ok '[ "$code" = 0 ] && has "Usage:"' "git ws-run -h prints the usage"
ok '[ -f "$S/prefix/share/man/man1/git-ws-run.1" ] && [ -f "$S/prefix/share/man/man1/git-ws-merge.1" ]' \
  "the first use wrote the man pages into <prefix>/share/man/man1"
if command -v man >/dev/null; then
  # MANPATH ending in ':' adds man's own search path, derived from PATH (<prefix>/bin).
  run MANPATH="$S/empty-man:" git ws-run --help
  key 'GIT-WS-RUN|git-ws-run' 2
  ok '[ "$code" = 0 ] && has "git-ws-run" && hasnt "No manual entry"' "git ws-run --help opens the man page"
else
  echo "  (man is not installed: --help not checked)"
fi
run git ws-run --agnets 2
key "-h|error" 3
ok '[ "$code" = 2 ] && has "'"'"'-h'"'"'|-h" && hasnt "try .--help."' "a usage error points to -h"

step "2. Every binary generates its man page and completions"
for b in git-ws-run git-ws-report git-ws-merge git-ws-review; do
  run "$b" --generate-man "$S/gen-man"
  ok '[ "$code" = 0 ] && [ -f "$S/gen-man/$b.1" ]' "$b --generate-man DIR writes $b.1"
  run "$b" --generate-completions bash
  ok '[ "$code" = 0 ] && has "_git_ws_"' "$b --generate-completions bash prints a completion script"
done

step "3. Dry runs that catch what will fail"
mkdir workstreams
run git ws-run --dry-run
key "workstream" 1
ok '[ "$code" = 2 ] && has "workstreams"' "an empty workstreams directory: exit 2 and a sentence"
printf '{"id": "a", "command": "true"}\n' >workstreams/a.JSON
run git ws-run --dry-run
key "JSON" 1
ok '[ "$code" = 2 ] && has "a.JSON"' "only a misnamed a.JSON: exit 2, naming it"
git ws-run >/dev/null 2>&1 || true
ok '[ ! -e .state/multi_agent_consolidated.db ] || [ -z "$(git ws-report --format json 2>/dev/null | python3 -c "import json,sys; print(json.load(sys.stdin) or \"\")" 2>/dev/null)" ]' \
  "and a real run records no empty run"
rm workstreams/a.JSON
printf '{"id": "typo", "comand": "true"}\n' >workstreams/typo.json
printf '{"id": "dep", "command": "true", "depends": ["typo"]}\n' >workstreams/dep.json
printf '{"id": "ask", "prompt": "Add a CLI."}\n' >workstreams/ask.json
printf '{"id": "fine", "command": "true"}\n' >workstreams/fine.json
run git ws-run --dry-run
key 'did you mean|depends|agent|valid' 6
ok '[ "$code" = 1 ] && has "did you mean \"command\" for \"comand\""' '"comand": a suggestion'
ok 'has "dep.json" && has "depends"' "a misspelled depends_on is an error naming it"
ok 'has "ask" && has "agent"' "a prompt with no agent configured is invalid"
valid=$(grep -oE '[0-9]+ valid' "$T/out" | grep -oE '[0-9]+' || echo x)
listed=$(grep -cE '^\s+\+' "$T/out" || true)
ok '[ "$valid" = 1 ] && [ "$listed" = 1 ] && has "3 invalid"' "the counts match the list (1 valid, planned 1; 3 invalid)"
rm workstreams/*.json

step "4. A run: stacked dependency, an agent's leftovers, unittest, zero-commit, quiet output"
cat >workstreams/cli-base.json <<'EOF'
{"id": "cli-base", "title": "A command line", "command": "printf 'from textkit import slug\\nimport sys\\nprint(slug(sys.argv[1]))\\n' > textkit/__main__.py"}
EOF
cat >workstreams/cli-use.json <<'EOF'
{"id": "cli-use", "title": "Use the command line in the README", "depends_on": ["cli-base"], "command": "test -f textkit/__main__.py && python3 -m textkit 'Hello World' >> README.md"}
EOF
cat >workstreams/tests.json <<'EOF'
{"id": "tests", "title": "One more test", "command": "printf '\\nclass More(unittest.TestCase):\\n    def test_dash(self):\\n        self.assertEqual(slug(\"a-b\"), \"a-b\")\\n' >> tests/test_slug.py", "test": "python3 -m unittest discover -s tests -t . -v"}
EOF
printf '{"id": "noop", "title": "Nothing to do", "command": "true"}\n' >workstreams/noop.json
printf '{"id": "notes", "title": "Write notes", "prompt": "Write NOTES.md."}\n' >workstreams/notes.json
cat >"$HOME/agent" <<'EOF'
#!/bin/sh
cat >/dev/null
echo "notes by the agent" > NOTES.md
EOF
chmod +x "$HOME/agent"
git config ws.agentCommand "$HOME/agent"
git add workstreams && git commit -qm workstreams
run git ws-run --agents 2
run_a=$(latest)
key 'completed|warnings' 3
ok '[ "$code" = 0 ]' "every workstream completed (exit 0), the stacked one included"
ok 'grep -q "Hello World\|hello-world" <(git show "ws/$run_a/cli-use:README.md")' \
  "cli-use saw cli-base's work (its branch holds textkit/__main__.py's output)"
ok 'has "warnings: 0" && hasnt "uncommitted changes"' "no warning for an agent's committed leftovers"
ok 'hasnt "Redistribute workload"' "no workload advice on a short run"
ok 'hasnt "removing agent worktrees"' "the summary does not say it removes the kept pool"
run git ws-report "$run_a" --format json
ok '[ "$(json "[w for w in d[\"workstreams\"] if w[\"workstream_id\"]==\"tests\"][0][\"tests\"][\"passed\"]")" = 3 ]' \
  "python unittest output parsed: 3 passed"
ok '[ "$(json "[w for w in d[\"workstreams\"] if w[\"workstream_id\"]==\"notes\"][0][\"notes\"]" | grep -c committed)" = 1 ]' \
  "the committed leftovers are a note on the workstream"

step "5. Output: plurals, colour, markdown, schema, tables"
run git ws-run --only noop
key 'completed|workstream' 3
ok 'hasnt "1 warnings|1 workstreams|all 1 workstream|1 errors|1 files|1 commits"' "plurals on a one-workstream run"
run_one=$(latest)
run git ws-report "$run_a" --color always
ok 'grep -q $'"'"'\033\['"'"' "$T/out"' "--color always colours"
run NO_COLOR=1 git ws-report "$run_a" --color auto
ok '! grep -q $'"'"'\033\['"'"' "$T/out"' "NO_COLOR: no colour"
run NO_COLOR=1 git ws-report "$run_a" --color always
ok 'grep -q $'"'"'\033\['"'"' "$T/out"' "--color always wins over NO_COLOR"
run git ws-report "$run_a" --color never
ok '! grep -q $'"'"'\033\['"'"' "$T/out"' "--color never: no colour"
run "git ws-report $run_a --format markdown > $T/review.md"
ok '[ "$code" = 0 ] && head -1 "$T/review.md" | grep -q "^# Multi-agent run" && [ "$(wc -l <"$T/review.md")" -gt 20 ]' \
  "--format markdown prints the report to stdout"
run git ws-report --format json
ok '[ "$(json "all(r.get(\"schema\") for r in d)")" = True ]' "the run list: schema on every run"

step "6. Null totals, full --errors"
printf '{"id": "untested", "command": "true", "test": "echo no counts here; exit 1"}\n' >workstreams/untested.json
printf '{"id": "spawn", "prompt": "Do it.", "agent": "claude"}\n' >workstreams/spawn.json
git add workstreams && git commit -qm more
run git ws-run --only untested,spawn
run_b=$(latest)
run git ws-report "$run_b" --format json
ok '[ "$(json "d[\"tests\"][\"passed\"]")" = None ] && [ "$(json "d[\"tests\"][\"failed\"]")" = None ]' \
  "run-level test totals are null when nothing was counted"
run git ws-report "$run_b" --errors
key 'SpawnError' 2
long=$(awk 'length > 120' "$T/out" | grep -c . || true)
ok 'has "SpawnError" && has "not installed or not on PATH; install it, or .*ws.agentCommand\)" && [ "$long" -gt 0 ] && hasnt "…$"' \
  "--errors prints a SpawnError's message, longer than 120 characters, in full with its fix"

step "7. ws-merge: counts, schema, tables; the hook counts what one merge brought in"
run git ws-run --install-hooks
run git ws-merge "$run_a" --dry-run
first=$(head -1 "$T/out")
echo "  | $first"
n_merge=$(head -1 "$T/out" | grep -oE '[0-9]+ to merge' | grep -oE '[0-9]+' || echo x)
n_listed=$(sed -n '/^would merge:/,/^$/p' "$T/out" | grep -cE '^ +[0-9]+\.' || true)
ok '[ "$code" = 0 ] && hasnt "^tip:" && [ "$n_merge" = "$n_listed" ] && [ "$n_merge" = 5 ]' \
  "--dry-run: its counts match its list ($n_merge to merge, $n_listed listed), and no tip"
run git ws-merge "$run_a" --test "'python3 -m unittest discover -s tests -t .'" --format json
ok '[ "$(json "d[\"schema\"]")" != None ] && [ "$(json "len(d[\"merged\"])")" = 5 ]' \
  "ws-merge --format json has schema; 5 merged (noop as a step with nothing to land)"
run git ws-report "$run_a" --integration
ok '[ "$code" = 0 ] && ! grep -qE "^#+ [A-Z]" "$T/out" && has "^merged:"' "--integration in table mode prints tables, no Markdown heading"
run git merge --ff-only "ws/$run_a/integration"
key '^ws:' 2
ok 'has "^ws: 4 workstreams merged — $run_a: cli-base, cli-use, notes, tests;" && hasnt "noop"' \
  "the hook names exactly the 4 merged, once each, with the run id, and no zero-commit branch"
ok 'has "; 0 completed branches still unmerged"' "still unmerged: 0 (the zero-commit noop branches of two runs are not counted)"

step "8. One Ctrl-C through git ws-run is one interrupt"
printf '{"id": "slow1", "command": "touch %s/go1; test -f %s/release || sleep 30"}\n' "$T" "$T" >workstreams/slow1.json
printf '{"id": "slow2", "command": "touch %s/go2; test -f %s/release || sleep 30"}\n' "$T" "$T" >workstreams/slow2.json
printf '{"id": "after", "command": "echo after > after.txt"}\n' >workstreams/after.json
git add workstreams && git commit -qm slow
# The workstreams say they started by a file here, which the sandbox must let them write.
git config --add ws.sandbox.allowWrite "$T"
loops="${FIRST_HOUR_SIGINT_LOOPS:-3}" clean=0
for i in $(seq 1 "$loops"); do
  rm -f "$T/go1" "$T/go2"
  set -m
  git ws-run --agents 2 --grace 300ms --only slow1,slow2,after >"$T/out" 2>"$T/err" &
  pid=$!
  set +m
  for _ in $(seq 1 300); do [ -e "$T/go1" ] && [ -e "$T/go2" ] && break; sleep 0.05; done
  kill -INT -- "-$pid"
  set +e; wait "$pid"; code=$?; set -e
  run_c=$(latest)
  state=$(git ws-report "$run_c" --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])')
  if [ "$code" = 130 ] && [ "$state" = interrupted ] && has "git ws-run --resume $run_c" &&
    hasnt "interrupted again|--resume RUN"; then clean=$((clean + 1)); fi
done
printf '$ git ws-run --agents 2 … ; Ctrl-C (SIGINT to its process group), %s times\n' "$loops"
key "resume" 2
ok '[ "$clean" = "$loops" ]' "$clean of $loops Ctrl-Cs stopped cleanly: exit 130, run interrupted, --resume <its id>"
run git ws-report "$run_c" --format markdown
key 'resume|rerun' 2
ok 'has "git ws-run --resume $run_c" && hasnt "rerun-failed"' "the interrupted run's report advises --resume <id>, not --rerun-failed"
touch "$T/release"
run git ws-run --resume "$run_c"
key 'completed' 1
ok '[ "$code" = 0 ] && [ "$(git ws-report "$run_c" --format json | python3 -c "import json,sys; print(json.load(sys.stdin)[\"state\"])")" = finished ]' \
  "git ws-run --resume <id> finishes the interrupted run"

printf '\n%s steps passed, %s failed\n' "$pass" "$failed"
if [ "$failed" != 0 ]; then printf 'failed:%s\n' "$failures"; exit 1; fi
