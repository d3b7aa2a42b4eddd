#!/usr/bin/env bash
# Set up everything pointsnet needs, idempotently: a Python virtual environment
# with the pinned packages, the pinned npm packages, (with --browser) Debian's
# chromium for the browser tests and (with --slither) slither in its own
# .venv-slither. Safe to run again: each step is skipped when its inputs have
# not changed.
#
# System packages are installed with apt-get where there is one (Debian,
# Ubuntu). Elsewhere (macOS, other Linux distributions) nothing is installed
# behind your back: the script says what to install (Homebrew's command on
# macOS) and stops, or for the optional browser-test tools warns and goes on.
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
have_apt() { command -v apt-get >/dev/null && command -v dpkg >/dev/null; }
# where_to_get WHAT BREW OTHER: what to run on this system to install WHAT
where_to_get() {
  if [[ $(uname -s) == Darwin ]]; then
    echo "$1: on macOS install it with Homebrew (https://brew.sh): $2"
  else
    echo "$1: this system has no apt-get; install it with its package manager ($3)"
  fi
}
# first 16 hex digits of the SHA-256 of stdin (sha256sum on Linux, shasum on macOS)
hash16() {
  if command -v sha256sum >/dev/null; then sha256sum; else shasum -a 256; fi | cut -c1-16
}

PYTHON=${PYTHON:-python3}
if ! command -v "$PYTHON" >/dev/null || ! "$PYTHON" - <<'PY'; then
import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)
PY
  echo "pointsnet needs Python >= 3.11 (found: $("$PYTHON" --version 2>/dev/null || echo "no $PYTHON"))" >&2
  have_apt || where_to_get "Python 3.11+" "brew install python@3.12, then PYTHON=python3.12 make run" \
    "e.g. dnf install python3.12, then PYTHON=python3.12 make run" >&2
  exit 1
fi

# -- Python: .venv with the locked dependencies -------------------------------
stamp=.venv/.pointsnet-installed
inputs_hash=$(cat pyproject.toml requirements.lock | hash16)
if [[ ! -f $stamp || "$(cat "$stamp")" != "$inputs_hash" ]]; then
  if [[ ! -x .venv/bin/python ]]; then
    if ! "$PYTHON" -m venv .venv 2>/dev/null; then
      rm -rf .venv
      if ! have_apt; then
        where_to_get "Python's venv module (missing from $PYTHON)" "brew install python@3.12" \
          "the python3 package with its venv module" >&2
        exit 1
      fi
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
npm_hash=$(cat package.json package-lock.json | hash16)
if [[ ! -f $npm_stamp || "$(cat "$npm_stamp")" != "$npm_hash" ]]; then
  if ! command -v npm >/dev/null; then
    echo "pointsnet needs Node.js 20+ and npm" >&2
    where_to_get "Node.js 20+" "brew install node" "its nodejs and npm packages, 20 or later" >&2
    exit 1
  fi
  # --ignore-scripts: the native binaries come as plain packages; no install
  # script needs to run (and none may download anything). anvil and forge are
  # optional dependencies, one package per platform: npm installs the one whose
  # os/cpu match this machine (Linux x64/arm64, macOS x64/arm64, Windows x64).
  npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
  echo "$npm_hash" > "$npm_stamp"
fi

# -- chromium for the browser tests --------------------------------------------
# (and zbarimg, which the wallet tests use to decode the QR codes it draws)
if [[ $want_browser -eq 1 ]] && { [[ ! -x /usr/bin/chromium ]] || ! command -v zbarimg >/dev/null; }; then
  if have_apt; then
    echo "installing Debian's chromium and zbar-tools for the browser tests" >&2
    apt_install chromium fonts-noto-cjk zbar-tools
  else
    # not fatal: the browser tests skip themselves without /usr/bin/chromium
    where_to_get "the browser tests' chromium at /usr/bin/chromium and zbarimg" \
      "brew install zbar (the tests look for chromium at /usr/bin/chromium, so they skip)" \
      "chromium installed as /usr/bin/chromium, CJK fonts and zbar's zbarimg" >&2
    echo "going on without them: the browser tests will be skipped" >&2
  fi
fi

# -- slither for the contracts' static analysis (scripts/slither.sh) -----------
if [[ $want_slither -eq 1 ]]; then
  PYTHON="$PYTHON" scripts/slither.sh --install-only
fi
