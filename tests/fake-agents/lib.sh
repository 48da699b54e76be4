# Shared by the fake agent CLIs in this directory (sourced, never run). They stand in for
# Claude Code, Codex CLI, Aider and Gemini CLI in tests: the same flags (anything else is
# refused the way the real CLI refuses it), the same structured output with usage, and the
# same rate-limit / overload failures, with no network.
#
# Environment (from the test or the workstream's "env"):
#   FAKE_AGENT_LOG    directory: each invocation writes <WS_ID>.<n>.argv (arguments, one per
#                     line, NUL-terminated) and <WS_ID>.<n>.env (WS_PORT, WS_AGENT_ID)
#   FAKE_FAILS        fail this many invocations of the workstream first (rate limit), then work
#   FAKE_COST         dollars the run reports (claude, aider); default 0.01
#   FAKE_STEPS        aider: steps, each reporting FAKE_COST more (default 1)
#   FAKE_SLEEP        seconds to sleep between steps (default 0)
#   FAKE_EXIT         exit with this status after the output (default 0)
#   FAKE_IDLE         1: change nothing in the worktree (an agent that did no work)
set -eu

: "${WS_ID:=fake}"
log_dir=${FAKE_AGENT_LOG:-${TMPDIR:-/tmp}}

# invocation NAME ARGS…: record the call; sets $n (1 for the first call of this workstream).
invocation() {
    _name=$1
    shift
    mkdir -p "$log_dir"
    n=1
    while [ -e "$log_dir/$WS_ID.$n.argv" ]; do
        n=$((n + 1))
    done
    {
        printf '%s\n' "$_name"
        for a in "$@"; do
            printf '%s\0' "$a"
        done
    } >"$log_dir/$WS_ID.$n.argv"
    printf 'WS_PORT=%s\nWS_AGENT_ID=%s\n' "${WS_PORT:-}" "${WS_AGENT_ID:-}" >"$log_dir/$WS_ID.$n.env"
}

# failing: true while this invocation should fail with a rate limit.
failing() {
    [ "$n" -le "${FAKE_FAILS:-0}" ]
}

# work PROMPT: what the agent "does": append the prompt to AGENT_WORK.md (left uncommitted).
work() {
    [ "${FAKE_IDLE:-0}" = 1 ] || printf '%s\n' "$1" >>AGENT_WORK.md
}

nap() {
    [ "${FAKE_SLEEP:-0}" = 0 ] || sleep "$FAKE_SLEEP"
}
