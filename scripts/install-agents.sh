#!/bin/sh
# Install the real coding-agent CLIs, at pinned versions, into a cache directory, for the
# end-to-end tests (tests/integration/real_agents.rs) that run every preset against a
# scripted model server on 127.0.0.1:
#
#   sh scripts/install-agents.sh [DIR]     # default: $GIT_WS_AGENTS_DIR, else
#                                          # ~/.cache/git-ws/agents
#
# DIR/bin/{claude,codex,gemini,aider} are the entry points the tests put on PATH. Each CLI
# gets its own prefix (DIR/<name>-<version>/), so bumping one version leaves the others be,
# and a stamp file once it is complete: a second call with nothing to do takes well under a
# second. Needs node >= 20 with npm (the npm registry) and python >= 3.10 (a venv from PyPI).
# Claude Code's package says node >= 22, but it ships a native binary that its postinstall
# copies into place; it runs the same on node 20 (npm only warns: EBADENGINE).
#
# The versions verified with the test suite (scripts/bump-agents.sh changes them and reruns
# the tests):
CLAUDE_VERSION=2.1.332 # @anthropic-ai/claude-code
CODEX_VERSION=0.171.0  # @openai/codex
GEMINI_VERSION=0.61.0  # @google/gemini-cli
AIDER_VERSION=0.86.2   # aider-chat (PyPI)
set -eu

dir=${1:-${GIT_WS_AGENTS_DIR:-${HOME:?}/.cache/git-ws/agents}}
mkdir -p "$dir/bin"
dir=$(cd "$dir" && pwd)

# npm_cli NAME PACKAGE VERSION BIN: the package in DIR/NAME-VERSION, linked as DIR/bin/BIN.
npm_cli() {
    prefix="$dir/$1-$3"
    if [ ! -f "$prefix/.installed" ]; then
        echo "installing $2@$3 into $prefix" >&2
        rm -rf "$prefix"
        mkdir -p "$prefix"
        # Install scripts run: Claude Code's postinstall puts its native binary in place.
        npm install --prefix "$prefix" --no-audit --no-fund --no-save --loglevel=error \
            "$2@$3" >&2
        [ -x "$prefix/node_modules/.bin/$4" ] || {
            echo "install-agents: $2@$3 has no $4 executable" >&2
            exit 1
        }
        touch "$prefix/.installed"
    fi
    ln -sfn "$prefix/node_modules/.bin/$4" "$dir/bin/$4"
}

# The aider venv in DIR/aider-VERSION, linked as DIR/bin/aider.
aider_cli() {
    prefix="$dir/aider-$AIDER_VERSION"
    if [ ! -f "$prefix/.installed" ]; then
        echo "installing aider-chat==$AIDER_VERSION into $prefix" >&2
        py=$(command -v python3 || command -v python)
        rm -rf "$prefix"
        "$py" -m venv "$prefix"
        "$prefix/bin/python" -m pip install --quiet --disable-pip-version-check \
            "aider-chat==$AIDER_VERSION" >&2
        touch "$prefix/.installed"
    fi
    ln -sfn "$prefix/bin/aider" "$dir/bin/aider"
}

command -v npm >/dev/null || { echo "install-agents: npm is needed (node >= 20)" >&2; exit 1; }
npm_cli claude @anthropic-ai/claude-code "$CLAUDE_VERSION" claude
npm_cli codex @openai/codex "$CODEX_VERSION" codex
npm_cli gemini @google/gemini-cli "$GEMINI_VERSION" gemini
aider_cli

# The versions the tests read (and check against what the binaries say).
cat >"$dir/versions.txt" <<EOF
claude $CLAUDE_VERSION
codex $CODEX_VERSION
gemini $GEMINI_VERSION
aider $AIDER_VERSION
EOF
echo "agents in $dir/bin:"
sed 's/^/  /' "$dir/versions.txt"
