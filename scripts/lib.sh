# Shared set-up for scripts/serve and scripts/test: a Python 3.11+ virtualenv in .venv.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

find_python() {
    for candidate in python3.13 python3.12 python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$candidate"
            return
        fi
    done
    echo "paperbridge needs Python 3.11 or newer; install it (e.g. apt-get install python3)" >&2
    exit 1
}

ensure_venv() {
    # Install exactly the lock ($1: requirements/serve.txt or requirements/test.txt): every
    # package pinned and checked against its hash, then paperbridge itself (editable) built
    # with the locked setuptools. Installs only when the lock or pyproject.toml changed since
    # the last install, so a restart needs no package index and starts at once. pyproject.toml
    # is part of the stamp because its entry points (the outputs, bridge/outputs.py) live in the
    # installed metadata, not in the source tree: a new or renamed output needs an install.
    local lock="$1"
    if [ ! -x .venv/bin/python ]; then
        "$(find_python)" -m venv .venv
    fi
    local stamp=".venv/.paperbridge-installed-$(basename "$lock" .txt)"
    local wanted
    wanted="$(cat "$lock" pyproject.toml | sha256sum | cut -d' ' -f1)"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ]; then
        return
    fi
    # --no-deps: the lock is the whole set, already resolved; pip only checks the hashes.
    .venv/bin/python -m pip install --quiet --require-hashes --no-deps -r "$lock"
    .venv/bin/python -m pip install --quiet --no-deps --no-build-isolation -e .
    echo "$wanted" > "$stamp"
}
