#!/bin/sh
# Long loops of the agent worktree pool's reliability tests (the suite runs short ones):
#
#   scripts/stress.sh fresh 100        # 100 fresh repositories, 6 workstreams on 3 agents each
#   scripts/stress.sh consecutive 100  # 100 runs in a row in one repository, 9 workstreams
#   scripts/stress.sh crash 200        # 200 SIGKILLs of the coordinator at random instants,
#                                      # each followed by `git ws-run --resume latest`
#   scripts/stress.sh all 100          # all three
#   scripts/stress.sh kills 20         # 20 SIGKILLs of git-ws-run and 20 of
#                                      # git-ws-merge --test 'sh probe.sh' at random instants,
#                                      # each followed by the next command: counts what of
#                                      # the killed one still runs and overlapping test runs
#                                      # (tests/integration/kills.rs)
#   scripts/stress.sh faults 10        # 10 rounds of the fault tests (tests/integration/
#                                      # faults.rs: a full disk under the database and the
#                                      # reports, under the spool too, under the logs and
#                                      # under the git objects, the SQLite file removed,
#                                      # locked, PostgreSQL stopped (local and shared runs),
#                                      # the coordinator killed while consolidating, the log
#                                      # cap while a command prints), with counts:
#                                      # "0 lost, 0 completed-without-record, 0 moved
#                                      # branches, 0 orphan processes"
#   scripts/stress.sh sigint 50        # 50 Ctrl-Cs to the process group of `git ws-run`
#                                      # (git's wrapper), half with a forwarded copy a few
#                                      # ms later: each must exit 130 and --resume must
#                                      # finish the run (tests/integration/signals.rs)
#   scripts/stress.sh queue 20         # 20 shared runs (PostgreSQL, bare remote, 3 clones),
#                                      # one worker SIGKILLed holding claims, one joiner
#                                      # interrupted (tests/integration/queue.rs)
#
# Each loop counts every failure and reports them all at the end, e.g.
#   "fresh repositories: 0 spurious failure(s) in 100 runs"
#   "crash loop: 200 kills (…): 0 problem(s)"
#   "ws-merge kill loop: 20 kills: 0 orphans, 0 overlapping tests (…)"
# The crash and kill loops print their GIT_WS_CRASH_SEED; set it to replay the same kill
# instants. STRESS_PROFILE=dev uses the debug build instead of a release one.
set -eu
what=${1:-all}
n=${2:-100}
case "$what" in
    fresh) filters="pool::fresh_repositories" ;;
    consecutive) filters="pool::consecutive_runs" ;;
    crash) filters="pool::killed_at" ;;
    all) filters="pool::fresh_repositories pool::consecutive_runs pool::killed_at" ;;
    kills) filters="kills::ws_run_killed kills::ws_merge_killed" ;;
    sigint) filters="signals::one_ctrl_c" ;;
    queue|faults) filters="" ;;
    *) echo "usage: $0 [fresh|consecutive|crash|all|kills|sigint|queue|faults] [N]" >&2; exit 2 ;;
esac
cd "$(dirname "$0")/.."
if [ "$what" = faults ]; then
    # Debug build (the one `cargo test` keeps warm). The tests mount a tmpfs: run as root;
    # CI=true makes a test that cannot mount fail instead of skip.
    # Orphans: after each round (the test binary has exited), every live process that
    # carries this round's STRESS_MARK and a git-ws command tag (GIT_WS_COMMAND, set on
    # everything git-ws starts) outlived the tool that started it. They are counted, then
    # killed.
    counts=$(mktemp)
    log=$(mktemp)
    failed=0
    orphans=0
    i=0
    while [ "$i" -lt "$n" ]; do
        i=$((i + 1))
        mark="faults-$$-$i"
        if ! STRESS_MARK=$mark GIT_WS_FAULT_COUNTS=$counts cargo test --test integration -- \
            --test-threads 2 faults:: >"$log" 2>&1; then
            failed=$((failed + 1))
            grep -E "panicked|assertion|left|right" "$log" | head -8
        fi
        sleep 1
        for env in /proc/[0-9]*/environ; do
            if grep -qz "^STRESS_MARK=$mark\$" "$env" 2>/dev/null &&
                grep -qz "^GIT_WS_COMMAND=" "$env" 2>/dev/null; then
                pid=${env#/proc/}
                pid=${pid%/environ}
                if ! grep -q '^[^)]*) Z' "/proc/$pid/stat" 2>/dev/null; then
                    orphans=$((orphans + 1))
                    echo "orphan after round $i: $pid $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)"
                    kill -9 "$pid" 2>/dev/null || true
                fi
            fi
        done
    done
    awk -v n="$n" -v failed="$failed" -v orphans="$orphans" '
        { runs++; lost += $2; cwr += $3; moved += $4; rerun += $5 }
        END {
            printf "faults: %d round(s), %d fault run(s): %d lost, %d completed-without-record, %d moved branches, %d orphan processes, %d re-run, %d failed round(s)\n",
                n, runs, lost, cwr, moved, orphans, rerun, failed
            exit (lost + cwr + moved + orphans + rerun + failed > 0)
        }' "$counts"
    status=$?
    rm -f "$counts" "$log"
    exit "$status"
fi
if [ "$what" = queue ]; then
    failed=0
    i=0
    while [ "$i" -lt "$n" ]; do
        i=$((i + 1))
        if ! GIT_WS_REQUIRE_PG=1 cargo test --release --test integration -- --test-threads 2 queue:: \
            >/tmp/git-ws-stress-queue.log 2>&1; then
            failed=$((failed + 1))
            grep -E "panicked|assertion|left|right" /tmp/git-ws-stress-queue.log | head -8
        fi
    done
    echo "shared runs: $failed failure(s) in $n iterations of tests/integration/queue.rs"
    [ "$failed" -eq 0 ]
    exit
fi
for f in $filters; do
    GIT_WS_LOOPS=$n cargo test --profile "${STRESS_PROFILE:-release}" --test integration -- --nocapture --test-threads 1 "$f" 2>&1 |
        grep -E "spurious failure|crash loop|kill loop|sigint loop|^test |panicked|test result"
done
