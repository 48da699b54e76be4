#!/bin/sh
# Bump the pinned coding-agent CLIs to their registries' latest versions and rerun the tests
# that run them for real:
#
#   sh scripts/bump-agents.sh            # pin the latest, install them, run real_agents::
#   sh scripts/bump-agents.sh --check    # only print pinned vs latest
#
# The pins live in scripts/install-agents.sh (CLAUDE_VERSION, CODEX_VERSION, GEMINI_VERSION,
# AIDER_VERSION). After a green run, update the versions the README's preset table and
# fixtures/agents/README.md name as verified (and capture new samples if an output changed).
# Asks npm (`npm view PKG version`) and PyPI (`pip index versions aider-chat`) for the four
# packages only.
set -eu
cd "$(dirname "$0")/.."
script=scripts/install-agents.sh

pinned() { sed -n "s/^$1=\([^ ]*\).*/\1/p" "$script"; }
latest_npm() { npm view "$1" version 2>/dev/null; }
latest_pypi() {
    python3 -m pip index versions "$1" 2>/dev/null | sed -n "s/^$1 (\(.*\))$/\1/p"
}

changed=0
bump() { # VAR LATEST
    old=$(pinned "$1")
    if [ -z "$2" ]; then
        echo "$1: pinned $old, latest unknown (registry not reachable?)" >&2
        return
    fi
    if [ "$old" = "$2" ]; then
        echo "$1: $old (latest)"
    else
        echo "$1: $old -> $2"
        changed=1
        [ "${check:-0}" = 1 ] || sed -i "s/^$1=$old/$1=$2/" "$script"
    fi
}

check=0
[ "${1:-}" = "--check" ] && check=1
bump CLAUDE_VERSION "$(latest_npm @anthropic-ai/claude-code)"
bump CODEX_VERSION "$(latest_npm @openai/codex)"
bump GEMINI_VERSION "$(latest_npm @google/gemini-cli)"
bump AIDER_VERSION "$(latest_pypi aider-chat)"
[ "$check" = 1 ] && exit 0
[ "$changed" = 1 ] || echo "nothing to bump; rerunning the tests anyway"

sh "$script"
GIT_WS_REQUIRE_AGENTS=1 cargo test --test integration real_agents:: -- --test-threads 2
echo "all real-agent tests passed; now update the verified versions in README.md and" \
    "fixtures/agents/README.md, and commit $script"
