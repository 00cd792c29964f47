# Shared set-up for scripts/demo and scripts/test: Debian packages when missing, a virtual
# environment in .venv, and the project installed into it with the locked versions of
# constraints.txt (again only when pyproject.toml or constraints.txt changed).
# Sourced, not run: it sets VENV and PATH for the caller.

set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${EDGEWATCH_VENV:-$ROOT/.venv}"

# Debian packages: "command-or-file-to-check:package" pairs, installed together when any is missing.
ensure_debian() {
    local missing=() pair cmd pkg
    for pair in "$@"; do
        cmd="${pair%%:*}"; pkg="${pair##*:}"
        if ! command -v "$cmd" >/dev/null 2>&1 && [ ! -e "$cmd" ]; then missing+=("$pkg"); fi
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "edgewatch: please install these Debian packages first: ${missing[*]}" >&2
        return 1
    fi
    echo "edgewatch: installing Debian packages: ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # Debian starts some services on install; the tests start their own on free ports.
    for svc in mosquitto prometheus-node-exporter victoria-metrics influxdb postgresql nginx; do
        if command -v systemctl >/dev/null 2>&1; then systemctl stop "$svc" >/dev/null 2>&1 || true; fi
        service "$svc" stop >/dev/null 2>&1 || true
    done
}

ensure_venv() {
    local extras="$1"
    if [ ! -x "$VENV/bin/python" ]; then
        echo "edgewatch: creating the virtual environment $VENV" >&2
        python3 -m venv "$VENV"
        "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
    fi
    local stamp="$VENV/.edgewatch-installed-$extras"
    local digest
    # Reinstalled when the project's requirements or the locked versions (constraints.txt) change.
    digest="$(cat "$ROOT/pyproject.toml" "$ROOT/constraints.txt" | sha256sum | cut -d' ' -f1)"
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$digest" ]; then
        echo "edgewatch: installing edgewatch[$extras] into $VENV" >&2
        "$VENV/bin/python" -m pip install -q -c "$ROOT/constraints.txt" -e "$ROOT[$extras]"
        echo "$digest" >"$stamp"
    fi
    export PATH="$VENV/bin:$PATH"
}
