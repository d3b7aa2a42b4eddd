#!/usr/bin/env bash
# Set up everything pointsnet needs, idempotently: a Python virtual environment
# with the pinned packages, the pinned npm packages, (with --browser) Debian's
# chromium for the browser tests and (with --slither) slither in its own
# .venv-slither. Safe to run again: each step is skipped when its inputs have
# not changed.
set -euo pipefail
cd "$(dirname "$0")/.."

want_browser=0
want_slither=0
for arg in "$@"; do
  case "$arg" in
    --browser) want_browser=1 ;;
    --slither) want_slither=1 ;;
  esac
done

as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else "$@"; fi; }
apt_updated=0
apt_install() {
  if [[ $apt_updated -eq 0 ]]; then as_root apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "$@"
}

PYTHON=${PYTHON:-python3}
"$PYTHON" - <<'PY' || { echo "pointsnet needs Python >= 3.11 (found $("$PYTHON" --version))" >&2; exit 1; }
import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)
PY

# -- Python: .venv with the locked dependencies -------------------------------
stamp=.venv/.pointsnet-installed
inputs_hash=$(cat pyproject.toml requirements.lock | sha256sum | cut -c1-16)
if [[ ! -f $stamp || "$(cat "$stamp")" != "$inputs_hash" ]]; then
  if [[ ! -x .venv/bin/python ]]; then
    if ! "$PYTHON" -m venv .venv 2>/dev/null; then
      rm -rf .venv
      echo "python venv support missing: installing Debian's python3-venv" >&2
      apt_install python3-venv
      "$PYTHON" -m venv .venv
    fi
  fi
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -r requirements.lock
  .venv/bin/python -m pip install -q --no-deps -e .
  echo "$inputs_hash" > "$stamp"
fi

# -- npm: solc, anvil/forge binaries, OpenZeppelin, ethers ---------------------
npm_stamp=node_modules/.pointsnet-installed
npm_hash=$(cat package.json package-lock.json | sha256sum | cut -c1-16)
if [[ ! -f $npm_stamp || "$(cat "$npm_stamp")" != "$npm_hash" ]]; then
  command -v npm >/dev/null || { echo "pointsnet needs Node.js 20+ and npm" >&2; exit 1; }
  # --ignore-scripts: the native binaries come as plain packages; no install
  # script needs to run (and none may download anything).
  npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
  echo "$npm_hash" > "$npm_stamp"
fi

# -- chromium for the browser tests --------------------------------------------
# (and zbarimg, which the wallet tests use to decode the QR codes it draws)
if [[ $want_browser -eq 1 ]] && { [[ ! -x /usr/bin/chromium ]] || ! command -v zbarimg >/dev/null; }; then
  echo "installing Debian's chromium and zbar-tools for the browser tests" >&2
  apt_install chromium fonts-noto-cjk zbar-tools
fi

# -- slither for the contracts' static analysis (scripts/slither.sh) -----------
if [[ $want_slither -eq 1 ]]; then
  PYTHON="$PYTHON" scripts/slither.sh --install-only
fi
